# %% [markdown]
# # 10 · Attacks that do not fool themselves
#
# A robust error is the fraction of examples for which *some* point of the ball
# ‖x′ − x‖ₚ ≤ ε (inside the pixel box [0, 1]) is misclassified.  No attack computes it: every attack
# is a lower bound, and a weak attack makes a model look robust.  So `minigrad.robust.robust_error`
# runs a suite and keeps, per example, the worst case over its attacks (Croce & Hein 2020):
#
# $$
# \mathrm{error} = \frac{1}{n} \sum_i \max_{a} \mathbf{1}\left[f(a(x_i)) \ne y_i\right].
# $$
#
# * the **fast** suite: FGSM (one closed-form step) and PGD-10 from x: what `compare` reported so far;
# * the **strong** suite: PGD with random restarts on the cross-entropy and on the CW margin
#   (Madry et al. 2018), APGD-CE and the targeted APGD-T on the DLR loss (Croce & Hein 2020), and
#   Square, a random search that needs forward passes only (Andriushchenko et al. 2020).
#
# A model can also *hide* its gradient (Athalye, Carlini & Wagner 2018): then gradient attacks fail
# and the model looks robust without being so.  `robust.masking_flags` looks for the signs that
# Carlini et al. (2019) list: a black-box attack beating the white-box ones, an error that does not
# reach ~100 % at a huge budget, a one-step attack beating an iterative one, an attack that has not
# converged, and input gradients that are exactly zero.

# %%
import os
import sys

import numpy as np

from minigrad import datasets, nn, optim, plots, train
from minigrad import attacks as A
from minigrad import regularizers as R
from minigrad import robust as RB

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
# The quick mode (the tests) attacks fewer digits with a third of the default effort.
EFFORT = dict(steps=20, restarts=1, queries=400) if QUICK else {}
N = 200 if QUICK else None

# %% [markdown]
# ## 1. A small Maxout network on the 8×8 digits

# %%
train_set, test_set = datasets.load_digits()
model = nn.maxout_mlp(64, (64,), 3, 10, seed=0)
train.fit(model, R.CrossEntropy(), optim.SGD(model.parameters(), lr=0.1, momentum=0.5), train_set,
          epochs=8 if QUICK else 20, batch_size=32, progress=False)
model.eval()
x, y = test_set.x[:N], test_set.y[:N]
print(f"clean test error on {len(x)} digits: {train.evaluate(model, datasets.Dataset(x, y, 10, (8, 8))).error:.1%}")

# %% [markdown]
# ## 2. The fast suite and the strong suite, at ℓ∞ ε = 0.1
# Each attack's own error, the worst case over the suite, and per example which attack found it
# first (in suite order).

# %%
eps = 0.1
results = {suite: RB.robust_error(model, x, y, eps, np.inf, suite, image_shape=test_set.image_shape,
                                  **(EFFORT if suite == "strong" else {}))
           for suite in RB.SUITES}
for suite, r in results.items():
    found = {a: r.found_by.count(a) for a in r.errors}
    print(f"{suite:>6}: worst case {r.error:.1%}   " + "   ".join(f"{a} {e:.1%}" for a, e in r.errors.items()))
    print(f"        found first by: {found}, clean mistakes {r.found_by.count('clean')}")
assert results["strong"].error >= results["fast"].error

# %% [markdown]
# ## 3. A masked model: the same network, logits × 10⁴
# Multiplying the logits by 10⁴ changes no decision, so the robust error is *exactly* the same.
# But softmax saturates in float32: for almost every example the cross-entropy is exactly 0 and so is
# its input gradient.  PGD on the cross-entropy then has nothing to follow.

# %%


class Scaled(nn.Module):
    """The same network with its logits multiplied by ``scale``."""

    def __init__(self, model, scale):
        self.model, self.scale = model, scale

    def forward(self, x):
        return self.model(x) * self.scale


masked = Scaled(model, 1e4)
pgd_ce = A.pgd(masked, x, y, eps, np.inf, steps=20, restarts=1)
pgd_error = float((A.logits(masked, pgd_ce).argmax(1) != y).mean())
print(f"PGD-CE against the masked model: {pgd_error:.1%}   (the same network's robust error: "
      f"{results['strong'].error:.1%})")
assert pgd_error < results["strong"].error - 0.1, "the masked model should have fooled PGD on the cross-entropy"
print("EXPECTED FAILURE: PGD on the cross-entropy is fooled by logits scaled by 1e4")

# %% [markdown]
# ## 4. The strong suite is not fooled, and the flags say why
# APGD-T's DLR loss, −(z_y − z_t)/(z_π₁ − (z_π₃ + z_π₄)/2), is invariant to the logits' scale, and
# Square needs no gradient at all: both still find the network's robust error.  The zero-gradient
# flag names the cause.

# %%
strong = RB.robust_error(masked, x, y, eps, np.inf, "strong", image_shape=test_set.image_shape, **EFFORT)
print("masked, strong suite: worst case", f"{strong.error:.1%}  ",
      "   ".join(f"{a} {e:.1%}" for a, e in strong.errors.items()))
assert abs(strong.error - results["strong"].error) <= 0.02
flags = RB.masking_flags(masked, x, y, eps, np.inf, image_shape=test_set.image_shape, result=strong)
print("flags of the masked model:", flags["flagged"], "—", flags["reason"])
assert flags["flags"]["zero_gradient"]
clean_flags = RB.masking_flags(model, x, y, eps, np.inf, image_shape=test_set.image_shape,
                               result=results["strong"])
print("flags of the plain model: ", clean_flags["flagged"], "—", clean_flags["reason"])

# %% [markdown]
# ## 5. Figure: each attack's error, plain network and masked network
# The cross-entropy attacks collapse on the masked network; the DLR, margin and Square columns do not,
# and so the worst case (the last bar) stays where it was.

# %%
plt = plots.pyplot()  # None, with a message, if matplotlib is not installed
if plt is not None:
    names = list(strong.errors) + ["worst case"]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for k, (label, r) in enumerate([("plain network", results["strong"]), ("logits × 10⁴", strong)]):
        values = [100 * r.errors[a] for a in strong.errors] + [100 * r.error]
        ax.bar(np.arange(len(names)) + 0.4 * k - 0.2, values, width=0.4, label=label)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel(f"test error % (ℓ∞ ε = {eps}, {len(x)} digits)")
    ax.set_title("The strong suite on a network and on its masked copy")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    print("saved", os.path.basename(plots.save(fig, os.path.join(FIGURES, "10_masked_model.png"))))
