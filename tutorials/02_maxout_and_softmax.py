# %% [markdown]
# # 02 · Maxout and softmax: the layers, their derivatives, and two conventions
#
# The papers train Maxout networks with a softmax output.  This tutorial opens both up:
#
# * a **Maxout unit** takes the max of `pieces` affine functions, $h = \max_k (x^\top W_k + b_k)$:
#   a learned convex, piecewise-linear activation.  Its derivative routes the upstream
#   gradient to the winning piece; on a **tie** minigrad splits it evenly.
# * **log-softmax** is computed as $x - \operatorname{logsumexp}(x)$ with the max subtracted first, so it
#   stays finite at logits like [−1000, 1]; cross-entropy comes from it, never from
#   log(softmax(x)).
# * Both are differentiable twice, and the second derivative of the loss with respect
#   to the input is what the gradient penalties of the later tutorials train on.

# %%
import os
import sys

import numpy as np

import minigrad as mg
from minigrad import functional as F
from minigrad import nn, plots

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")

# %% [markdown]
# ## 1. One Maxout unit in one dimension
# Three pieces: $z_1 = -x - 1$, $z_2 = 0.3x$, $z_3 = 2x - 2$.  minigrad stores pieces
# *pieces-major*: for `units` units, piece k of unit j is column k·units + j.  With one
# unit, column k is simply piece k.

# %%
xs = np.linspace(-3, 3, 61 if QUICK else 301)
slopes, offsets = np.array([-1.0, 0.3, 2.0]), np.array([-1.0, 0.0, -2.0])
x = mg.Tensor(xs[:, None], requires_grad=True)
z = x * mg.Tensor(slopes[None, :]) + mg.Tensor(offsets[None, :])  # (N, 3 pieces)
h = F.maxout(z, pieces=3)  # (N, 1)
(dh,) = mg.grad(h.sum(), x)
print("h at x = -2, 0, 2 :", h.numpy()[[np.argmin(abs(xs - v)) for v in (-2, 0, 2)], 0])
print("slopes seen by the gradient:", sorted({float(s) for s in np.round(dh.numpy().ravel(), 6)}))

# %% [markdown]
# ## 2. The tie convention
# At a point where two pieces are equal the max has no derivative.  minigrad returns
# the *minimum-norm subgradient*: the gradient split evenly among the tied pieces.
# The same rule holds for `max` and `maximum`.

# %%
z_tie = mg.Tensor(np.array([[1.0, 3.0, 3.0]]), requires_grad=True)  # pieces 2 and 3 tie
(g,) = mg.grad(F.maxout(z_tie, pieces=3).sum(), z_tie)
print("gradient at a tie:", g.numpy())
assert np.allclose(g.numpy(), [[0, 0.5, 0.5]])

# %% [markdown]
# ## 3. A Maxout layer is one GEMM and a max
# `nn.Maxout(in, units, pieces)` multiplies by a (in, units·pieces) matrix once, then
# takes the max over each unit's pieces.  We check its first and second derivatives
# by central differences in float64.

# %%
layer = nn.Maxout(4, units=3, pieces=2, seed=0, dtype=np.float64)
inp = mg.Tensor(np.random.default_rng(1).standard_normal((5, 4)), requires_grad=True)
print("output shape:", layer(inp).shape)
print("gradcheck (input and weights):",
      mg.gradcheck(lambda x, w: F.maxout(x @ w + layer.bias, 2), [inp, layer.weight]))
print("gradgradcheck:",
      mg.gradgradcheck(lambda x, w: F.maxout(x @ w + layer.bias, 2), [inp, layer.weight]))

# %% [markdown]
# ## 4. log-softmax without overflow
# $\operatorname{softmax}(x)_i = e^{x_i} / \sum_j e^{x_j}$.  Naively, $e^{1000}$ overflows.  Subtracting
# the max first changes nothing mathematically (it cancels) and keeps every exponential $\le 1$.

# %%
logits = np.array([[-1000.0, 1.0]])
with np.errstate(all="ignore"):
    naive = np.log(np.exp(logits) / np.exp(logits).sum())
stable = F.log_softmax(mg.Tensor(logits)).numpy()
print("naive log(softmax):", naive, "   minigrad log_softmax:", stable)
assert not np.all(np.isfinite(naive)), "the naive formula should have overflowed to -inf"
print("EXPECTED FAILURE: naive log(softmax) gives -inf at logits [-1000, 1]")
assert np.all(np.isfinite(stable))

lg = mg.Tensor(logits, requires_grad=True)
loss = F.cross_entropy(lg, np.array([0]))  # the model is 1001 nats wrong
(g,) = mg.grad(loss, lg, create_graph=True)
(gg,) = mg.grad((g * g).sum(), lg)
print("CE =", loss.item(), " dCE/dlogits =", g.numpy(), " d|g|²/dlogits =", gg.numpy())

# %% [markdown]
# ## 5. The Hessian of cross-entropy with respect to the logits
# For $L = -\log \operatorname{softmax}(z)_y$, $\nabla_z^2 L = \operatorname{diag}(p) - p p^\top$ with
# $p = \operatorname{softmax}(z)$: symmetric, positive semi-definite, rank $K - 1$.  Build it row by row with Hessian-vector products.

# %%
K = 4
z0 = np.random.default_rng(2).standard_normal((1, K))
zt = mg.Tensor(z0, requires_grad=True)
(gz,) = mg.grad(F.cross_entropy(zt, np.array([1])), zt, create_graph=True)
H = np.stack([mg.grad(gz[0, i], zt)[0].numpy()[0] for i in range(K)])
p = np.exp(z0[0] - np.log(np.exp(z0[0]).sum()))
print("max |H − (diag p − ppᵀ)| =", np.abs(H - (np.diag(p) - np.outer(p, p))).max())
print("eigenvalues:", np.round(np.linalg.eigvalsh(H), 8))

# %% [markdown]
# ## 6. Figure: a Maxout unit and its derivative

# %%
plt = plots.pyplot()  # None, with a message, if matplotlib is not installed

if plt is not None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for k in range(3):
        axes[0].plot(xs, slopes[k] * xs + offsets[k], "--", lw=1, label=f"piece {k + 1}")
    axes[0].plot(xs, h.numpy()[:, 0], "k", lw=2.5, label="maxout = max of pieces")
    axes[0].set_ylim(-3, 5)
    axes[0].set_title("A Maxout unit: a learned convex activation")
    axes[0].legend(fontsize=7)
    axes[1].step(xs, dh.numpy()[:, 0], "k", where="mid")
    axes[1].set_title("Its derivative: the winning piece's slope")
    for ax in axes:
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    print("saved", os.path.basename(plots.save(fig, os.path.join(FIGURES, "02_maxout_unit.png"))))
