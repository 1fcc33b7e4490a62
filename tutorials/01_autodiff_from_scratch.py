# %% [markdown]
# # 01 · Autodiff from scratch: graphs, backward, and gradients of gradients
#
# minigrad records every operation on tensors that require gradients.  The record is a
# graph: each result remembers the op that made it, each op remembers its inputs.
# `minigrad.grad(outputs, inputs)` walks that graph backwards, applying each op's
# local derivative (the chain rule, in reverse).
#
# The one idea that makes *second* derivatives work: every op's backward is written
# with minigrad ops.  Ask for `create_graph=True` and the backward pass is recorded like
# any forward pass, so you can differentiate it again.  That is double backprop, and it
# is what the gradient-penalty regularizers of this library are built on.
#
# Run as a script (`python tutorials/01_autodiff_from_scratch.py`, add `--quick` for a fast
# run) or open as a notebook with jupytext.

# %%
import os
import sys

import numpy as np

import minigrad as mg
from minigrad import functional as F, plots

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")

# %% [markdown]
# ## 1. A graph and its backward pass
# $f(x, w) = \sum \tanh(w \cdot x)$.  Each intermediate tensor knows the op that produced it.

# %%
x = mg.Tensor([0.5, -1.0, 2.0], requires_grad=True)
w = mg.Tensor(1.5, requires_grad=True)
y = F.tanh(w * x).sum()
print("f =", y.item())
print("y was made by", type(y._op).__name__, "from", [type(t._op).__name__ for t in y._op.inputs])

dx, dw = mg.grad(y, [x, w])
# ∂f/∂x = w (1 − tanh²(w x)),  ∂f/∂w = Σ x (1 − tanh²(w x))
t = np.tanh(1.5 * x.numpy())
print("dx =", dx.numpy(), " expected", 1.5 * (1 - t**2))
print("dw =", dw.item(), " expected", float(np.sum(x.numpy() * (1 - t**2))))
assert np.allclose(dx.numpy(), 1.5 * (1 - t**2), rtol=1e-6)

# %% [markdown]
# `Tensor.backward()` does the same and stores the results in `.grad` of every leaf, as
# in PyTorch.  Gradients accumulate when a tensor is used more than once (fan-out).

# %%
a = mg.Tensor(3.0, requires_grad=True)
(a * a + a).backward()  # d/da (a² + a) = 2a + 1 = 7
print("a.grad =", a.grad.item())
assert a.grad.item() == 7.0

# %% [markdown]
# ## 2. create_graph: derivatives of derivatives
# With `create_graph=True` the gradient is itself a node of a graph.  Differentiate
# tanh four times and compare with the closed forms.

# %%
xs = mg.Tensor(np.linspace(-3, 3, 61 if QUICK else 201), requires_grad=True)
derivatives = [F.tanh(xs)]
for order in range(1, 4):
    (d,) = mg.grad(derivatives[-1].sum(), xs, create_graph=True)
    derivatives.append(d)

th = np.tanh(xs.numpy())
closed = [th, 1 - th**2, -2 * th * (1 - th**2), (1 - th**2) * (6 * th**2 - 2)]
for k, (d, c) in enumerate(zip(derivatives, closed)):
    print(f"order {k}: max |autodiff − closed form| = {np.max(np.abs(d.numpy() - c)):.2e}")
    assert np.allclose(d.numpy(), c, atol=1e-5)

# %% [markdown]
# Without `create_graph` the result is a constant: it cannot be differentiated again,
# and minigrad says so rather than returning a silent zero.

# %%
(g,) = mg.grad(F.tanh(xs).sum(), xs)
try:
    mg.grad(g.sum(), xs)
except RuntimeError as e:
    print("RuntimeError:", str(e)[:110], "...")
    print("EXPECTED FAILURE: a constant gradient cannot be differentiated again")
else:
    raise AssertionError("differentiating a gradient taken without create_graph should have failed")

# %% [markdown]
# ## 3. A Hessian-vector product, checked against finite differences
# For a scalar $L(x)$, $Hv = \nabla_x(\nabla_x L \cdot v)$: one backward with `create_graph=True`,
# one more backward, never forming the Hessian.  Check:
#
# $$
# Hv \approx \frac{\nabla L(x + hv) - \nabla L(x - hv)}{2h}.
# $$

# %%
rng = np.random.default_rng(0)
W = mg.Tensor(rng.standard_normal((5, 4)))
x0 = rng.standard_normal(5)
v = rng.standard_normal(5)


def loss(x):
    return F.logsumexp(F.tanh(x @ W), axis=0)


def gradient(x_np):
    x = mg.Tensor(x_np, requires_grad=True)
    return mg.grad(loss(x), x)[0].numpy()


x = mg.Tensor(x0, requires_grad=True)
(g,) = mg.grad(loss(x), x, create_graph=True)
(hv,) = mg.grad((g * mg.Tensor(v)).sum(), x)
h = 1e-5
fd = (gradient(x0 + h * v) - gradient(x0 - h * v)) / (2 * h)
print("Hv (double backprop):", np.round(hv.numpy(), 6))
print("Hv (finite diff.)   :", np.round(fd, 6))
print("max difference:", np.max(np.abs(hv.numpy() - fd)))
assert np.allclose(hv.numpy(), fd, atol=1e-7)

# %% [markdown]
# ## 4. gradcheck and gradgradcheck
# The library checks its own ops the same way: central differences in float64, for a
# random upstream vector, at first and second order (the second order also checks the
# derivative with respect to the upstream gradient).

# %%
f = lambda x: F.softplus(x @ W) * 2.0  # noqa: E731
inp = mg.Tensor(rng.standard_normal((3, 5)), requires_grad=True)
print("gradcheck:", mg.gradcheck(f, [inp]), " gradgradcheck:", mg.gradgradcheck(f, [inp]))

# %% [markdown]
# A wrong derivative does not get past it.  Here is an op whose backward is off by 10%:

# %%
from minigrad.tensor import Op  # noqa: E402


class WrongSquare(Op):
    def forward(self, x):
        return x * x

    def backward(self, gy):
        return (gy * self.inputs[0] * 1.8,)  # should be 2x


try:
    mg.gradcheck(lambda x: WrongSquare.apply(x), [inp])
except mg.GradcheckError as e:
    print("GradcheckError:", e)
    print("EXPECTED FAILURE: gradcheck catches a backward that is off by 10%")
else:
    raise AssertionError("gradcheck should have rejected WrongSquare's derivative")

# %% [markdown]
# ## 5. A picture: tanh and its derivatives by repeated autodiff

# %%
plt = plots.pyplot()  # None, with a message, if matplotlib is not installed

if plt is not None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = ["tanh x", "1st derivative", "2nd derivative", "3rd derivative"]
    for d, name in zip(derivatives, names):
        ax.plot(xs.numpy(), d.numpy(), label=name)
    ax.set_xlabel("x")
    ax.set_title("Derivatives of tanh by repeated double backprop")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    print("saved", os.path.basename(plots.save(fig, os.path.join(FIGURES, "01_tanh_derivatives.png"))))
