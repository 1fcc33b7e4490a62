# %% [markdown]
# # 04 · One objective, two faces
#
# Tutorial 03 found the worst case in closed form.  Plug it back in:
#
# $$
# \max_{\|r\|_p \le \varepsilon} L(x + r) = L(x) + \varepsilon \|\nabla_x L\|_q + O(\varepsilon^2).
# $$
#
# So the robust objective can be trained in two ways (Lyu et al. 2015; Ororbia et al. 2017):
#
# * **perturbed point** (adversarial training): take the gradient at $x + r^*$, with $r^*$ held
#   constant;
# * **explicit penalty**: minimise $L(x) + \varepsilon \|\nabla_x L\|_q$, whose parameter gradient
#   is a mixed second derivative: that is what double backprop is for.
#
# DataGrad adds a third: the penalty's gradient by a *finite difference* along r, which
# is a perturbed point again.  This tutorial measures how these agree, with the public
# functions of `minigrad.verify` (each one a numbered claim of science page §4), in float64.
# The claims measure the library's own objectives (`regularizers.AdversarialTraining`,
# `GradientPenalty`, `DataGrad`, `DataGradFD`) and `perturbations.worst_case`: the numbers
# below are those of the objectives you train with, not of a copy.

# %%
import os
import sys

import numpy as np

from minigrad import plots, regularizers as R, verify

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")

# A small float64 Maxout network and a batch lying well inside one linear region
# (Maxout nets are piecewise linear; crossing a kink would break the asymptotics).
model, x, y = verify.demo_problem(seed=0)
print(model.config)

# %% [markdown]
# ## 1. The linearisation is second-order accurate (claim 3)
# $L(x + r^*) - L(x) - \varepsilon \|g\|_q = O(\varepsilon^2)$: the log-log slope is 2
# (science page §4 claim 3).  For $p = 2$ the $\varepsilon^2$ coefficient is
# $\tfrac12 \hat g^\top \nabla_x^2 L \, \hat g$, computed here by a Hessian-vector product.

# %%
lin = {p: verify.claim3_linearization(model, x, y, p) for p in (1, 2, np.inf)}
for p, c in lin.items():
    print(f"p = {p}: slope {c.slope:.4f} (expected {c.expected_slope}), same region: {c.same_region}")

# %% [markdown]
# ## 2. Perturbed point and penalty differ at O(ε²), not zero (claim 6)
# $\|\nabla_\theta L(x + r^*) - \nabla_\theta (L + \varepsilon \|g\|_q)\| / \varepsilon^2$ settles to
# a constant as $\varepsilon \to 0$ (science page §4 claim 6).

# %%
faces = {p: verify.claim6_perturbed_vs_penalty(model, x, y, p) for p in (1, 2, np.inf)}
for p, c in faces.items():
    print(f"p = {p}: slope {c.slope:.4f};  ‖difference‖/ε² = {np.round(c.errors / c.h ** 2, 5)}")

# %% [markdown]
# ## 3. Holding r* constant is allowed, at O(ε²) (claim 7)
# The perturbed-point gradient treats $r^*(\theta)$ as a constant.  Differentiating through it
# changes the update only at $O(\varepsilon^2)$ for $p = 2$, and not at all for $p = \infty$
# ($\operatorname{sign}(g)$ is piecewise constant in $\theta$; science page §4 claim 7).

# %%
stop = {p: verify.claim7_stop_gradient(model, x, y, p) for p in (2, np.inf)}
print("p = 2: slope", round(stop[2].slope, 4), "  p = ∞: largest difference", stop[np.inf].errors.max())

# %% [markdown]
# ## 4. DataGrad's finite difference converges to double backprop at O(φ) (claim 4)
#
# $$
# \nabla_\theta R \approx \frac{\nabla_\theta L(x + \varphi r) - \nabla_\theta L(x)}{\varphi},
# \qquad r = \nabla_J R.
# $$
#
# A forward difference: slope 1 (science page §4 claim 4).

# %%
fd = {norm: verify.claim4_datagrad_fd(model, x, y, norm) for norm in ("l1", "l2")}
for norm, c in fd.items():
    print(f"DataGrad-{norm.upper()}: slope {c.slope:.4f} (expected {c.expected_slope})")

# %% [markdown]
# ## 5. Goodfellow's adversarial training *is* finite-difference DataGrad-L1 (claim 5)
# $a L(x) + (1-a) L(x + \varepsilon \operatorname{sign} g)$ has the gradient of the DataGrad update
# with $\alpha = 1$, $\beta = (1-a)\varepsilon$, $\varphi = \varepsilon$.  Not approximately: to
# rounding (science page §4 claim 5).

# %%
same = verify.claim5_goodfellow_equals_datagrad(model, x, y, eps=0.1, a=0.5)
print(same)
print("as objectives:", repr(R.AdversarialTraining(0.1, np.inf, alpha=0.5)), "≡",
      repr(R.DataGradFD(1.0, 0.05, norm="l1", phi=0.1)))
assert same.rel_diff < 1e-12

# %% [markdown]
# ## 6. Figure: the convergence plots
# Left: the linearisation residual and the perturbed-point/penalty gap, slope 2.
# Right: the DataGrad finite-difference error, slope 1.

# %%
plt = plots.pyplot()  # None, with a message, if matplotlib is not installed

if plt is not None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for p, c in lin.items():
        axes[0].loglog(c.h, c.errors, "o-", label=f"claim 3, linearisation, p = {p}")
    for p, c in faces.items():
        axes[0].loglog(c.h, c.errors, "s--", label=f"claim 6, perturbed vs penalty, p = {p}")
    h = lin[2].h
    axes[0].loglog(h, lin[2].errors[0] * (h / h[0]) ** 2, "k:", label="slope 2")
    axes[0].set_xlabel("ε")
    axes[0].set_title("O(ε²): one objective, two faces")
    for norm, c in fd.items():
        axes[1].loglog(c.h, c.errors, "o-", label=f"claim 4, DataGrad-{norm.upper()} FD error")
    phi = fd["l1"].h
    axes[1].loglog(phi, fd["l1"].errors[0] * phi / phi[0], "k:", label="slope 1")
    axes[1].set_xlabel("φ (finite-difference step)")
    axes[1].set_title("O(φ): DataGrad's perturbed point → double backprop")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    print("saved", os.path.basename(plots.save(fig, os.path.join(FIGURES, "04_convergence.png"))))
