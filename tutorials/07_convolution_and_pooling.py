# %% [markdown]
# # 07 · Convolution and pooling, twice differentiated
#
# A convolutional Maxout network (Goodfellow et al. 2013) needs three things the MLP did not: a
# convolution, a max over groups of channels, and max pooling.  minigrad builds all of them on **one
# linear adjoint pair**:
#
# * `unfold` (im2col) copies every sliding window of an image batch (N, C, H, W) into an array
#   (N, C, oh, ow, kh, kw): $U = A x$ for a 0/1 matrix $A$;
# * `fold` (col2im) scatter-adds windows back: $Y \mapsto A^\top Y$.
#
# For a linear map the vector-Jacobian product *is* the adjoint, so unfold's backward is fold and
# fold's backward is unfold.  The pair is closed under differentiation: any order of derivative of
# anything built on it needs no new code.  Then
#
# $$
# \begin{aligned}
# \texttt{conv2d}(x, W, b) &= \operatorname{unfold}(x)\, W^\top + b
#     && \text{(one matrix product)} \\
# \texttt{max_pool2d}(x) &= \max \text{ over each window of } \operatorname{unfold}(x) \\
# \text{channel Maxout} &= \text{functional.maxout over groups of channels}
# \end{aligned}
# $$

# %%
import os
import sys

import numpy as np

import minigrad as mg
from minigrad import conv as C
from minigrad import datasets, nn, optim, perturbations as P, plots, regularizers as R, train
from minigrad.tensor import Tensor

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. unfold and fold are adjoints
# $\langle \operatorname{unfold}(x), y \rangle = \langle x, \operatorname{fold}(y) \rangle$ for every
# $x$ and $y$: that identity is what "adjoint" means.  With
# overlapping windows (kernel 3, stride 2 here) a pixel sits in several windows, so fold(unfold(x)) is
# not x: it is x times the number of windows covering each pixel.

# %%
x = rng.standard_normal((2, 3, 7, 7))
u = C.unfold(Tensor(x), kernel=3, stride=2, padding=1)
y = rng.standard_normal(u.shape)
folded = C.fold(Tensor(y), (7, 7), kernel=3, stride=2, padding=1)
lhs, rhs = float(np.sum(u.numpy() * y)), float(np.sum(x * folded.numpy()))
print(f"unfold: {x.shape} -> {u.shape}")
print(f"<unfold(x), y> = {lhs:.12f}\n<x, fold(y)>   = {rhs:.12f}")
assert abs(lhs - rhs) < 1e-10 * abs(lhs)

# The engine agrees: the gradient of <unfold(x), y> with respect to x is fold(y), and the gradient of
# <fold(y), x> with respect to y is unfold(x).
xt, yt = Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)
(gx,) = mg.grad((C.unfold(xt, 3, 2, 1) * Tensor(y)).sum(), xt)
(gy,) = mg.grad((C.fold(yt, (7, 7), 3, 2, 1) * Tensor(x)).sum(), yt)
assert np.allclose(gx.numpy(), folded.numpy()) and np.allclose(gy.numpy(), u.numpy())
coverage = C.fold(C.unfold(Tensor(np.ones((1, 1, 7, 7))), 3, 2, 1), (7, 7), 3, 2, 1).numpy()[0, 0]
print("windows covering each pixel (fold(unfold(1))):\n", coverage.astype(int))

# %% [markdown]
# ## 2. Convolution is unfold plus one matrix product
# Checked against a loop written from the definition, then to first and second order by central
# differences (`gradcheck`, `gradgradcheck`, float64).

# %%
W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
out = C.conv2d(Tensor(x), Tensor(W), Tensor(b), stride=2, padding=1)
xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
loop = np.zeros(out.shape)
for i in range(out.shape[2]):
    for j in range(out.shape[3]):
        loop[:, :, i, j] = np.einsum("nckl,ockl->no", xp_[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3], W) + b
assert np.allclose(out.numpy(), loop)
small = [Tensor(rng.standard_normal(s), requires_grad=True) for s in ((1, 2, 5, 5), (3, 2, 3, 3), (3,))]
conv = lambda x_, w_, b_: C.conv2d(x_, w_, b_, stride=2, padding=1)  # noqa: E731
assert mg.gradcheck(conv, small) and mg.gradgradcheck(conv, small)
print("conv2d: loop definition, gradcheck and gradgradcheck pass")

# %% [markdown]
# ## 3. Pooling's second derivative is zero almost everywhere, yet the penalty's gradient flows
# Max pooling is piecewise linear: away from ties, its Jacobian is a constant 0/1 routing matrix
# (the winner of each window gets the gradient; ties are split evenly, as for every max in minigrad).
# So the derivative of the pooled gradient with respect to x is exactly 0:

# %%
xt = Tensor(rng.standard_normal((1, 1, 6, 6)), requires_grad=True)
v = Tensor(rng.standard_normal((1, 1, 3, 3)), requires_grad=True)  # the upstream gradient
(g,) = mg.grad((C.max_pool2d(xt, 3, 2, ceil_mode=True) * v).sum(), xt, create_graph=True)
w = Tensor(rng.standard_normal(g.shape))
h_x, h_v = mg.grad((g * w).sum(), [xt, v], allow_unused=True)
# g = routing(x)ᵀ v: no path from x (the routing is a constant), a linear one from v
print("∂(wᵀg)/∂x:", "no dependence at all (exactly 0)" if h_x is None else h_x)
print("∂(wᵀg)/∂v = routing applied to w:", h_v.numpy().ravel().round(3))
assert h_x is None and np.any(h_v.numpy())

# %% [markdown]
# A gradient penalty $\varepsilon \|\nabla_x L\|$ still has a useful parameter gradient through a pooled network: ∇ₓL is a
# product of the softmax's curvature, the weights, and the (constant) routings, so it depends on every
# weight even though no layer has curvature of its own in x.  The gradient of the penalty with respect
# to the convolution's filters is not zero, and it is right: `gradcheck` differentiates the penalty
# itself (whose computation already contains one backward pass) by central differences, and
# `gradgradcheck` checks the network's second derivative in x and in the upstream gradient.

# %%
tiny = nn.Sequential(nn.Unflatten((1, 8, 8)),
                     nn.ConvMaxout(1, 2, 2, 3, 1, pool=3, pool_stride=2, seed=rng, dtype=np.float64),
                     nn.Flatten(), nn.Linear(2 * 4 * 4, 3, seed=rng, dtype=np.float64))
xs, ys = rng.random((4, 64)), rng.integers(0, 3, 4)
penalty = R.GradientPenalty(0.5, np.inf)  # L + ε·mean‖gᵢ‖₁, the p = ∞ member


def objective(*params):
    for (name, _), p in zip(tiny.named_parameters(), params):
        setattr(tiny[int(name.split(".")[0])], name.split(".")[1], p)
    return penalty(tiny, xs, ys)


grads = mg.grad(objective(*tiny.parameters()), tiny.parameters())
print("‖∂ penalty / ∂ conv filters‖ =", float(np.linalg.norm(grads[0].numpy())))
assert np.linalg.norm(grads[0].numpy()) > 0
assert mg.gradcheck(objective, tiny.parameters())
assert mg.gradgradcheck(lambda x_: tiny(x_), [Tensor(xs, requires_grad=True)])
print("gradient penalty through conv, Maxout and pooling: gradcheck and gradgradcheck pass")

# %% [markdown]
# ## 4. A small conv Maxout network on images, and its worst cases
# `nn.conv_maxout('small')` is 28×28 → ConvMaxout 16×2 (5×5, pool 3/2, cover-all) → 32×2 → Maxout 100×2
# → 10.  We train it briefly on Fashion-MNIST when installed (`apt-get install dataset-fashion-mnist`),
# otherwise on scikit-learn's 8×8 digits, then draw r*(p) for p = 1, 2, ∞: norms are per image over
# all its pixels, the same `worst_case` as for the MLP.

# %%
try:
    train_set, test_set = datasets.load_fashion_mnist()
    in_shape = (1, 28, 28)
    n_train = 512 if QUICK else 4000
    budgets = {"1": 5.0, "2": 1.5, "inf": 0.1}
except datasets.DatasetNotFoundError:
    train_set, test_set = datasets.load_digits()
    in_shape = (1, 8, 8)
    n_train = len(train_set.y)
    budgets = {"1": 2.0, "2": 1.0, "inf": 0.1}
sub = np.random.default_rng(0).permutation(len(train_set.y))[:n_train]
train_set = datasets.Dataset(train_set.x[sub], train_set.y[sub], train_set.n_classes, train_set.image_shape,
                             train_set.name)
model = nn.conv_maxout("small", in_shape=in_shape, seed=0)
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
train.fit(model, R.CrossEntropy(), optimizer, train_set, epochs=1 if QUICK else 3, batch_size=64,
          progress=False)
test_small = datasets.Dataset(test_set.x[:1000], test_set.y[:1000], test_set.n_classes, test_set.image_shape,
                              test_set.name)
print(f"{train_set.name}: clean test error on 1000 images after {n_train} training images:",
      train.evaluate(model, test_small).error)

plt = plots.pyplot()
if plt is not None:
    name = plots.worst_cases(plt, model, test_set, budgets, FIGURES, name="07_conv_worst_cases.png")
    print("saved", name)
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
    img = test_set.x[0].reshape(in_shape)
    pad = 2
    u = C.unfold(Tensor(img[None].astype(np.float64)), 5, 2, pad)
    back = C.fold(u, in_shape[1:], 5, 2, pad).numpy()[0, 0]
    cover = C.fold(C.unfold(Tensor(np.ones((1,) + in_shape)), 5, 2, pad), in_shape[1:], 5, 2, pad).numpy()[0, 0]
    assert np.allclose(back, img[0] * cover)
    for ax, (title, picture, cmap) in zip(axes, [("x", img[0], "gray_r"), ("fold(unfold(x))", back, "gray_r"),
                                                 ("windows per pixel\n(kernel 5, stride 2, pad 2)", cover, "viridis")]):
        shown = ax.imshow(picture, cmap=cmap)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes[2], fraction=0.046)
    fig.suptitle("fold is unfold's adjoint, not its inverse: overlapping windows add up", fontsize=9)
    print("saved", os.path.basename(plots.save(fig, os.path.join(FIGURES, "07_fold_unfold.png"))))
