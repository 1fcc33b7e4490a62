# %% [markdown]
# # 03 · The worst case in closed form
#
# Adversarial robustness asks for the worst perturbation $r$ inside a budget:
# $\max_{\|r\|_p \le \varepsilon} L(x + r)$.  To first order $L(x + r) \approx L(x) + g^\top r$
# with $g = \nabla_x L$, and the inner problem becomes *linear*: maximise $g^\top r$ over a ball.
# Hölder's inequality solves it exactly (Lyu, Huang & Liang 2015; science page §1):
#
# $$
# \max_{\|r\|_p \le \varepsilon} g^\top r = \varepsilon \|g\|_q, \qquad \frac{1}{p} + \frac{1}{q} = 1,
# $$
#
# $$
# r^*_i = \varepsilon \, \operatorname{sign}(g_i) \, \frac{|g_i|^{q-1}}{\|g\|_q^{q-1}}.
# $$
#
# Why: $g^\top r \le \|g\|_q \|r\|_p \le \varepsilon \|g\|_q$ for every feasible $r$ (Hölder),
# and the $r^*$ above is feasible ($\|r^*\|_p = \varepsilon$, because $(q-1)p = q$) and reaches the
# bound ($g^\top r^* = \varepsilon \|g\|_q^q / \|g\|_q^{q-1}$).  Three members have names:
#
# * $p = \infty$ ($q = 1$): $r^* = \varepsilon \operatorname{sign}(g)$, the **fast gradient sign
#   method** of Goodfellow et al.;
# * $p = 2$ ($q = 2$): $r^* = \varepsilon g / \|g\|_2$, the scaled gradient;
# * $p = 1$ ($q = \infty$): all of $\varepsilon$ on the coordinate with the largest $|g_i|$
#   (ties: split evenly).

# %%
import os
import sys

import numpy as np

import minigrad as mg
from minigrad import datasets, nn, optim, perturbations as P, plots, regularizers as R, train, verify

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")

# %% [markdown]
# ## 1. The closed form on a random gradient, for several p

# %%
rng = np.random.default_rng(0)
g = rng.standard_normal((1, 10))
eps = 0.5
print(f"{'p':>6} {'q':>6} {'‖r*‖_p':>8} {'gᵀr*':>9} {'ε‖g‖_q':>9}")
for p in [1, 1.5, 2, 4, np.inf]:
    q = P.dual_exponent(p)
    r = P.worst_case(g, eps, p).numpy()
    print(f"{p:>6} {q:>6.3g} {P.per_example_norm(r, p).item():8.4f} {float((g * r).sum()):9.4f} "
          f"{eps * P.per_example_norm(g, q).item():9.4f}")

# %% [markdown]
# ## 2. No feasible perturbation does better
# `verify.claim1_holder_optimality` (science page §4 claim 1) draws thousands of random points of
# the $\ell_p$ ball and reports the best $g^\top r$ among them next to the closed form's.

# %%
for p in [1, 2, np.inf]:
    result = verify.claim1_holder_optimality(g[0], eps, p, n_random=500 if QUICK else 5000)
    print(f"p = {p}: {result}")

# %% [markdown]
# ## 3. FGSM is the p = ∞ member, exactly

# %%
assert np.array_equal(P.worst_case(g, eps, np.inf).numpy(), eps * np.sign(g))
print("worst_case(g, ε, ∞) == ε·sign(g): bit for bit")

# %% [markdown]
# ## 4. Between the named members: r*(p) moves continuously from p = 1 to p = ∞
# As $p \to 1^+$ the budget concentrates on the largest coordinate; as $p \to \infty$ it spreads to
# $\pm\varepsilon$ on every coordinate (science page §4 claim 2).

# %%
limits = verify.claim2_limits(g[0], eps)
print("exactly ε·sign(g) at p = ∞:", limits.sign_exact)
for p, d in zip(limits.large_p, limits.dist_to_inf):
    print(f"  p = {p:8.0f}:  max |r*(p) − r*(∞)| = {d:.2e}")
print(f"  log-log slope against q − 1: {limits.slope_inf:.3f} (first order)")
for p, d in zip(limits.near_one, limits.dist_to_one):
    print(f"  p = {p:6.3f}:  max |r*(p) − r*(1)| = {d:.2e}")

# %% [markdown]
# ## 5. On real digits: train a small Maxout network, then look at r* per p

# %%
train_set, test_set = datasets.load_digits()
model = nn.maxout_mlp(64, (64,), 3, 10, seed=0)
optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
train.fit(model, R.CrossEntropy(), optimizer, train_set, epochs=5 if QUICK else 20,
          batch_size=32, progress=False)
print("clean test error:", train.evaluate(model, test_set).error)

x, y = test_set.x[:6], test_set.y[:6]
model.eval()
budgets = {1: 2.0, 2: 1.0, np.inf: 0.1}  # comparable sizes on 64 pixels in [0, 1]
for p, e in budgets.items():
    x_adv = P.fgm(model, x, y, e, p, clip=(0, 1))
    print(f"FGM p = {p} (ε = {e}): error on these 6 digits {train.evaluate(model, datasets.Dataset(x_adv, y, 10, (8, 8), 'adv')).error:.2f}")

# %% [markdown]
# ## 6. Figure: the worst case for each p
# Rows: the digit, then r* for p = 1, 2, ∞ (red raises a pixel, blue lowers it), drawn by
# `minigrad.plots.worst_cases`, the same function `compare` uses.  p = 1
# spends everything on one pixel, p = ∞ touches every pixel by ±ε, p = 2 in between,
# following the gradient's shape.

# %%
plt = plots.pyplot()  # None, with a message, if matplotlib is not installed
if plt is not None:
    name = plots.worst_cases(plt, model, test_set, {"1": budgets[1], "2": budgets[2], "inf": budgets[np.inf]},
                             FIGURES, name="03_worst_case_per_p.png")
    print("saved", name)
