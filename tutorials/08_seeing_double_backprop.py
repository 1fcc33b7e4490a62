# %% [markdown]
# # 08 · Seeing double backprop
#
# Tutorial 01 said it in words: every op's backward is written with minigrad ops, so a
# backward pass with `create_graph=True` is *recorded*, like a forward pass, and can be
# differentiated again.  This tutorial draws that record.  `minigrad.draw` turns the graph
# into a picture (DOT text, rendered by Graphviz's `dot` program: `apt-get install graphviz`) and
# colours the part a `create_graph=True` backward added apart from the forward part.
#
# Then the differential operators of `minigrad.diffops`, each a few lines on top of `grad`:
# `hvp` (a Hessian-vector product by double backprop) against a finite difference, and
# `hessian`, the dense input Hessian of the loss inside one Maxout linear region, where
# science page §4 claim 9 says it is $A^\top S A$: $A$ the local linear map from input to logits,
# $S = \operatorname{diag}(p) - p p^\top$ the softmax's curvature.
#
# Run as a script (`python tutorials/08_seeing_double_backprop.py`, add `--quick` for a fast
# run) or open as a notebook with jupytext.

# %%
import os
import shutil
import sys

import numpy as np

import minigrad as mg
from minigrad import diffops, functional as F, nn, plots, verify
from minigrad.graph_drawing import render

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
plt = plots.pyplot()  # None, with a message, if matplotlib is not installed


def show_graph(dot: str, name: str) -> str:
    """Render DOT text to FIGURES/name with Graphviz (render raises, naming the package, without it)."""
    path = render(dot, os.path.join(FIGURES, name), dpi=120)
    print("saved", name)
    return path


# %% [markdown]
# ## 1. The forward graph of a tiny Maxout network
# Four inputs, one Maxout layer of three units with two pieces each, a linear layer to three
# classes, softmax cross-entropy; two examples, float64.  We run the layers one by one to keep
# each layer's output: `draw` uses them to box the ops of each layer.
# Blue boxes are ops (with the shape and dtype of what they return), green the input,
# yellow the parameters, the double ellipse the output.

# %%
model = nn.maxout_mlp(4, (3,), pieces=2, n_classes=3, seed=0, dtype=np.float64)
x = mg.Tensor(np.random.default_rng(0).standard_normal((2, 4)), requires_grad=True)
y = np.array([0, 2])

layers, h = [], x
for i, layer in enumerate(model.layers):
    h = layer(h)
    layers.append((f"layer {i + 1}: {type(layer).__name__}", h))
loss = F.cross_entropy(h, y)
layers.append(("loss", loss))
names = dict(model.named_parameters(), x=x)

forward_dot = mg.draw(loss, names=names, layers=layers, title="the forward graph of L")
print(len(diffops.__all__), "differential operators;", forward_dot.count("->"), "edges in the forward graph")
forward_png = show_graph(forward_dot, "08_forward_graph.png")

# %% [markdown]
# ## 2. What a `create_graph=True` backward adds
# $g = \nabla_x L$, recorded.  The penalty $R = \|g\|_2^2$ (double backpropagation, Drucker & LeCun) is a
# function of g, so of the whole graph that computed it.  In the picture the forward graph is
# blue; orange is what the backward pass recorded: it runs back from the loss to x, layer by
# layer, under the forward ops it differentiates (dashed edges: forward values it reads, the
# weights Wᵀ and the log-softmax output).  Purple is the penalty applied to g.
#
# Look at what is *not* there: nothing of the forward graph after log-softmax is read by the
# backward (the derivative of the mean and of the label pick are constants), and the Maxout
# backward reads no forward value at all, only the 0/1 routing mask, a constant: that is why
# the Maxout network's input Hessian has no term from the max (section 4).

# %%
(g,) = mg.grad(loss, x, create_graph=True)
penalty = (g * g).sum()
double_dot = mg.draw(penalty, forward=loss, gradients=g, names=names, layers=layers,
                     title="R = ‖∇ₓL‖²: the forward graph (blue) and what backward recorded (orange)")
path = show_graph(double_dot, "08_double_backprop_graph.png")
if not QUICK:  # the README's copy, in tutorials/images
    images = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
    shutil.copyfile(path, os.path.join(images, "08_double_backprop_graph.png"))

# %% [markdown]
# The same graph with each layer collapsed to one node: how it scales to the Maxout MLP of the
# papers (two layers of 240 units: the size of the picture depends on the number of array
# ops, not on the units).

# %%
collapsed_png = show_graph(mg.draw(penalty, forward=loss, gradients=g, names=names, layers=layers, collapse=True),
                           "08_double_backprop_collapsed.png")

# %% [markdown]
# ## 3. The penalty's gradient flows through the recorded graph
# $\nabla_\theta R$ differentiates the orange part: it reaches every weight through both the forward ops
# and the backward ops that read them.  Checked against a central difference along a random
# direction of the first layer's weights.

# %%
R_grads = mg.grad(penalty, model.parameters())
for (name, p), gp in zip(model.named_parameters(), R_grads):
    print(f"‖∇R / ∂{name}‖ = {np.linalg.norm(gp.numpy()):.4f}")

W = model.layers[0].weight
d = np.random.default_rng(1).standard_normal(W.shape)


def R_at(Wvalue):
    saved, W.data = W.data, Wvalue
    xr = mg.Tensor(x.data, requires_grad=True)
    (gr,) = mg.grad(F.cross_entropy(model(xr), y), xr)
    W.data = saved
    return float((gr.numpy() ** 2).sum())


step = 1e-5
fd = (R_at(W.data + step * d) - R_at(W.data - step * d)) / (2 * step)
analytic = float((R_grads[0].numpy() * d).sum())
print(f"directional derivative of R along d: double backprop {analytic:.8f}, central difference {fd:.8f}")
assert abs(analytic - fd) <= 1e-6 * max(1.0, abs(fd))

# %% [markdown]
# ## 4. `hvp` against a finite difference
# `diffops.hvp(f, x, v)` returns $(f(x), Hv)$ with $Hv = \nabla_x(\nabla_x f \cdot v)$: one recorded
# backward, one backward through it; the $n \times n$ Hessian is never formed.  The finite difference
# of the gradient along $v$ must agree while $x \pm hv$ stays in one linear region.

# %%
def L(xv):
    return F.cross_entropy(model(xv), y, reduction="sum")


v = np.random.default_rng(2).standard_normal(x.shape)
_, Hv = diffops.hvp(L, x.numpy(), v)
grad_L = diffops.grad_fn(L)
fd_Hv = (grad_L(x.numpy() + step * v).numpy() - grad_L(x.numpy() - step * v).numpy()) / (2 * step)
print("Hv              =", np.round(Hv.numpy().ravel(), 6))
print("finite diff.    =", np.round(fd_Hv.ravel(), 6))
print(f"max |difference| = {np.abs(Hv.numpy() - fd_Hv).max():.2e}")
assert np.allclose(Hv.numpy(), fd_Hv, rtol=1e-5, atol=1e-8)

# %% [markdown]
# ## 5. The input Hessian inside one Maxout linear region (claim 9)
# With the winning pieces held fixed the network is linear, $\text{logits} = A x + c$, so the only
# curvature is the softmax's (science page §4 claim 9):
#
# $$
# \nabla_x^2 L_i = A^\top \left(\operatorname{diag}(p) - p p^\top\right) A.
# $$
#
# It is symmetric, positive semi-definite, and of rank at most $K - 1$
# ($\operatorname{diag}(p) - p p^\top$ annihilates the all-ones vector).
# `diffops.hessian` builds it densely, one HVP per column, for one example of
# `verify.demo_problem` (a point far from every kink), 10 inputs and 4 classes.

# %%
net, xs, ys = verify.demo_problem(seed=0, batch=1, in_features=10, n_classes=4)
x0 = xs[0:1]
Hx = diffops.hessian(lambda a: F.cross_entropy(net(a), ys, reduction="sum"), x0).numpy()[0, :, 0, :]
A = verify.local_jacobian(net, mg.Tensor(x0))[0]
p = F.softmax(net(mg.Tensor(x0))).numpy()[0]
AtSA = A.T @ (np.diag(p) - np.outer(p, p)) @ A
eigenvalues = np.linalg.eigvalsh(0.5 * (Hx + Hx.T))
print(f"max |H − AᵀSA| = {np.abs(Hx - AtSA).max():.2e}   max |H − Hᵀ| = {np.abs(Hx - Hx.T).max():.2e}")
print("eigenvalues:", np.array2string(eigenvalues, precision=4, suppress_small=True))
print(f"rank {np.linalg.matrix_rank(Hx)} ≤ K − 1 = {len(p) - 1}")
assert np.allclose(Hx, AtSA, rtol=1e-9, atol=1e-12) and eigenvalues.min() > -1e-10

if plt is not None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw=dict(width_ratios=[1.1, 1]))
    bound = np.abs(Hx).max()
    im = axes[0].imshow(Hx, cmap="RdBu_r", vmin=-bound, vmax=bound)
    axes[0].set_title("∇²ₓL by diffops.hessian (10 × 10)")
    axes[0].set_xlabel("input j")
    axes[0].set_ylabel("input i")
    fig.colorbar(im, ax=axes[0], shrink=0.85)
    magnitude = np.maximum(np.abs(eigenvalues[::-1]), 1e-18)  # log scale: the zeros are rounding
    colors = ["#3d85c6" if e > 1e-12 else "#bbbbbb" for e in eigenvalues[::-1]]
    axes[1].bar(np.arange(1, len(magnitude) + 1), magnitude, color=colors)
    axes[1].set_yscale("log")
    axes[1].set_ylim(1e-19, 1)
    axes[1].set_ylabel("|eigenvalue| (grey: zero up to rounding)")
    axes[1].set_title(f"its eigenvalues: {int((eigenvalues > 1e-12).sum())} positive, the rest 0 (K − 1 = {len(p) - 1})")
    axes[1].set_xlabel("eigenvalue index (largest first)")
    axes[1].grid(alpha=0.3)
    fig.suptitle("Inside one Maxout linear region the input Hessian is AᵀSA: symmetric, PSD, rank ≤ K − 1")
    fig.tight_layout()
    print("saved", os.path.basename(plots.save(fig, os.path.join(FIGURES, "08_local_hessian.png"))))
