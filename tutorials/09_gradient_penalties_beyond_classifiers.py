# %% [markdown]
# # 09 · Gradient penalties beyond classifiers
#
# Every member of the family penalises an input gradient of a classifier's loss.  The same
# machinery (a gradient recorded with `create_graph=True`, then differentiated again with
# respect to the parameters) is what makes a **Wasserstein GAN** train.
#
# A WGAN's critic D estimates the Wasserstein-1 distance between the data and the generator's
# samples, $W_1 = \max_{\|D\|_L \le 1} \mathbb{E}\, D(\text{real}) - \mathbb{E}\, D(\text{fake})$
# (Kantorovich–Rubinstein duality).  The Lipschitz constraint is enforced softly, with a penalty on
# $\|\nabla_x D\|_2$ at *interpolates* $\hat x = t \cdot \text{real} + (1 - t) \cdot \text{fake}$,
# $t \sim U(0, 1)$:
#
# * **WGAN-GP** (Gulrajani et al. 2017): $\lambda \, \mathbb{E} (\|\nabla_x D(\hat x)\|_2 - 1)^2$,
#   two-sided: it also pushes gradient norms *up* towards 1, where a 1-Lipschitz critic is allowed
#   to be flatter;
# * **WGAN-LP** (Petzka, Fischer & Lukovnikov 2018):
#   $\lambda \, \mathbb{E} \max(0, \|\nabla_x D(\hat x)\|_2 - 1)^2$, one-sided: it penalises only
#   what the Lipschitz constraint forbids.
#
# Both are `minigrad.penalties.critic_gradient_penalty` (one_sided=False / True), checked by
# `gradcheck` and against PyTorch in the tests.  The critic's loss is
#
# $$
# \operatorname{mean} D(\text{fake}) - \operatorname{mean} D(\text{real})
#     + \lambda \operatorname{mean} \operatorname{penalty}(\hat x),
# $$
#
# whose parameter gradient needs $\partial^2 D / \partial\theta\,\partial x$: double backprop, exactly as for DataGrad.  Here both
# critics are trained side by side on the classic toy problem, a mixture of eight Gaussians on a
# circle, with a small generator and critic built from `nn.Linear` and `functional.relu`.

# %%
import contextlib
import os
import sys
import time

import numpy as np

import minigrad as mg
from minigrad import functional as F
from minigrad import nn, optim, plots
from minigrad.errors import InvalidArgument
from minigrad.specs import blas_threads
from minigrad.penalties import critic_gradient_penalty, interpolates

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")

ITERATIONS = 30 if QUICK else 2000  # generator steps; the critic takes CRITIC_STEPS per generator step
CRITIC_STEPS, LAM, HIDDEN = 5, 10.0, 64
BATCH = 64 if QUICK else 256
SNAPSHOTS = sorted({0, ITERATIONS // 10, ITERATIONS // 3, ITERATIONS})

# %% [markdown]
# ## 1. The data: eight Gaussians on a circle of radius 2

# %%
MODES = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], axis=1)
STD = 0.05


def real_batch(rng, n=BATCH):
    return (MODES[rng.integers(0, 8, n)] + STD * rng.standard_normal((n, 2))).astype(np.float32)


# %% [markdown]
# ## 2. Generator and critic: three Linear layers with ReLU between them

# %%
class MLP(nn.Module):
    """in → HIDDEN → HIDDEN → out, ReLU between the layers (a critic's last layer is linear)."""

    def __init__(self, n_in, n_out, seed):
        rng = np.random.default_rng(seed)
        self.layers = [nn.Linear(n_in, HIDDEN, seed=rng), nn.Linear(HIDDEN, HIDDEN, seed=rng),
                       nn.Linear(HIDDEN, n_out, seed=rng)]

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


def train(one_sided, seed=0):
    """WGAN with the two-sided (GP) or one-sided (LP) penalty; returns the models and the history."""
    rng = np.random.default_rng(seed)
    gen, critic = MLP(2, 2, seed), MLP(2, 1, seed + 100)
    # Adam with β₁ = 0.5, β₂ = 0.9, the WGAN-GP recipe
    g_opt = optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.9))
    c_opt = optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    fixed_z = rng.standard_normal((1000, 2)).astype(np.float32)
    history = {"samples": {}, "w1": [], "grad_norm": []}
    for it in range(ITERATIONS + 1):
        if it in SNAPSHOTS:
            with mg.no_grad():
                history["samples"][it] = gen(fixed_z).numpy()
        if it == ITERATIONS:
            break
        for _ in range(CRITIC_STEPS):
            real = real_batch(rng)
            with mg.no_grad():
                fake = gen(rng.standard_normal((BATCH, 2)).astype(np.float32)).numpy()
            gap = F.mean(critic(fake)) - F.mean(critic(real))  # −(estimate of W₁)
            penalty = F.mean(critic_gradient_penalty(critic, interpolates(real, fake, rng), one_sided))
            c_opt.step(mg.grad(gap + penalty * LAM, critic.parameters()))
        history["w1"].append(-gap.item())
        fake = gen(rng.standard_normal((BATCH, 2)).astype(np.float32))
        g_opt.step(mg.grad(-F.mean(critic(fake)), gen.parameters()))
    return gen, critic, history


def gradient_norms(critic, gen, rng, n=2000):
    """‖∇ₓD(x̂)‖₂ at fresh interpolates between real and generated points."""
    with mg.no_grad():
        fake = gen(rng.standard_normal((n, 2)).astype(np.float32)).numpy()
    x = mg.Tensor(interpolates(real_batch(rng, n), fake, rng), requires_grad=True)
    (g,) = mg.grad(F.sum(critic(x)), x)
    return np.linalg.norm(g.numpy(), axis=1)


def modes_covered(samples, radius=0.25, min_share=0.02):
    """How many of the 8 modes hold at least ``min_share`` of the samples within ``radius``."""
    d = np.linalg.norm(samples[:, None, :] - MODES[None], axis=2)
    near = (d < radius)
    return int((near.mean(axis=0) >= min_share).sum()), float(near.any(axis=1).mean())


# %% [markdown]
# ## 3. Train both, side by side

# %%
def one_thread():
    """One BLAS thread: on 64-wide matrices threads only wait for each other (5-15x slower on busy cores)."""
    try:
        return blas_threads(1)
    except InvalidArgument:  # no threadpoolctl
        return contextlib.nullcontext()


runs = {}
for label, one_sided in (("WGAN-GP (two-sided)", False), ("WGAN-LP (one-sided)", True)):
    start = time.perf_counter()
    with one_thread():
        gen, critic, history = train(one_sided)
    norms = gradient_norms(critic, gen, np.random.default_rng(1))
    covered, on_mode = modes_covered(history["samples"][ITERATIONS])
    runs[label] = dict(gen=gen, critic=critic, history=history, norms=norms)
    print(f"{label}: {time.perf_counter() - start:.1f} s; W1 estimate {np.mean(history['w1'][-20:]):.3f}; "
          f"‖∇D‖ at interpolates: median {np.median(norms):.2f}, share > 1: {np.mean(norms > 1):.2f}; "
          f"modes covered {covered}/8, samples within 0.25 of a mode {on_mode:.0%}")
    assert np.isfinite(history["w1"]).all()
    if not QUICK:  # the generator has found the eight modes
        assert covered == 8, (label, covered)

# %% [markdown]
# ## 4. Figures: samples over training, the critic, and its gradient norms
# Top rows: the generator's samples (orange) against the data (grey) at a few iterations.
# Bottom row: each critic's values, the histogram of ‖∇ₓD‖₂ at interpolates, and the critic's
# estimate of W₁ (a running mean), which falls as the generator learns.  The two-sided penalty pulls the norms *to* 1, from both sides; the one-sided
# penalty lets them fall below 1 and only caps them.

# %%
plt = plots.pyplot()

if plt is not None:
    n_snap = len(SNAPSHOTS)
    fig, axes = plt.subplots(3, max(n_snap, 3), figsize=(3.1 * max(n_snap, 3), 9.3), squeeze=False)
    data = real_batch(np.random.default_rng(2), 1000)
    for row, (label, run) in enumerate(runs.items()):
        for col, it in enumerate(SNAPSHOTS):
            ax = axes[row, col]
            ax.scatter(data[:, 0], data[:, 1], s=3, c="0.6", label="data")
            s = run["history"]["samples"][it]
            ax.scatter(s[:, 0], s[:, 1], s=3, c="tab:orange", alpha=0.6, label="generated")
            ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal", title=f"{label}\niteration {it}",
                   xlabel="x₁", ylabel="x₂")
            ax.title.set_fontsize(9)
        axes[row, 0].legend(fontsize=7, loc="lower center", markerscale=3, ncol=2, bbox_to_anchor=(0.5, -0.02))
        for col in range(n_snap, axes.shape[1]):
            axes[row, col].axis("off")
    grid = np.linspace(-3, 3, 121, dtype=np.float32)
    xx, yy = np.meshgrid(grid, grid)
    for col, (label, run) in enumerate(runs.items()):
        ax = axes[2, col]
        with mg.no_grad():
            values = run["critic"](np.stack([xx.ravel(), yy.ravel()], axis=1)).numpy().reshape(xx.shape)
        cs = ax.contourf(xx, yy, values, levels=20, cmap="viridis")
        fig.colorbar(cs, ax=ax, fraction=0.046, label="critic D(x)")
        ax.scatter(MODES[:, 0], MODES[:, 1], c="white", s=25, marker="x", label="modes")
        ax.set(aspect="equal", title=f"{label}: critic", xlabel="x₁", ylabel="x₂")
        ax.title.set_fontsize(9)
    ax = axes[2, 2]
    bins = np.linspace(0, max(2.0, max(r["norms"].max() for r in runs.values())), 60)
    for (label, run), color in zip(runs.items(), ("tab:blue", "tab:red")):
        ax.hist(run["norms"], bins=bins, alpha=0.55, color=color, label=label)
    ax.axvline(1.0, color="k", ls="--", lw=1, label="‖∇D‖ = 1")
    ax.set(xlabel="‖∇ₓD(x̂)‖₂ at interpolates", ylabel="count (of 2000 points)",
           title="gradient norms of the final critics")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    ax = axes[2, 3]
    for (label, run), color in zip(runs.items(), ("tab:blue", "tab:red")):
        w1 = np.asarray(run["history"]["w1"])
        window = max(1, len(w1) // 50)  # a running mean: one step's estimate is noisy
        ax.plot(np.convolve(w1, np.ones(window) / window, mode="valid"), color=color, label=label)
    ax.set(xlabel="generator step", ylabel="mean D(real) − mean D(fake)",
           title="the critic's estimate of W₁ during training")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"WGAN on eight Gaussians, λ = {LAM:g}, {ITERATIONS} generator steps "
                 f"({CRITIC_STEPS} critic steps each)", fontsize=11)
    fig.tight_layout()
    path = plots.save(fig, os.path.join(FIGURES, "09_wgan_gp_vs_lp.png"))
    print("saved", os.path.basename(path))
    if not QUICK:  # the README's copy, in tutorials/images
        import shutil
        shutil.copyfile(path, os.path.join(os.path.dirname(os.path.abspath(__file__)), "images",
                                           "09_wgan_gp_vs_lp.png"))

# %% [markdown]
# ## 5. What to take away
# * The critic's penalty is the family's penalty turned around: a target norm of 1 instead of 0,
#   at interpolates instead of data points, on a critic instead of a loss; the training step is
#   the same double backprop.
# * The two-sided penalty (GP) forces $\|\nabla D\| \approx 1$ almost everywhere between the distributions; the
#   one-sided penalty (LP) only forbids norms above 1, so its histogram has a tail below 1: a
#   flatter critic where nothing needs to be transported.  Petzka et al. argue this is the
#   penalty that the Lipschitz constraint actually calls for, and that it trains more stably.
#   In this run (one seed, so an illustration, not a measurement) LP's samples reach the circle
#   of modes sooner and its W₁ estimate falls smoothly where GP's oscillates.
