# %% [markdown]
# # 05 · Reproducing the papers: the family side by side
#
# The papers train Maxout networks with each member of the family and compare clean and
# adversarial test error.  `python -m minigrad compare` does the same on one network with
# equal budgets: same architecture, seed, optimiser, epochs and batch size for every
# member; then every trained model is attacked with its own gradients (white box):
# FGSM (FGM with p = ∞), FGM with p = 2, and 10-step PGD with p = ∞.
#
# This tutorial runs it (in quick mode: five members, two epochs, a subset of the digits;
# the full run is the README's first command) and reads the results.  What the papers
# claim, qualitatively (science page §5; their exact tables are not available):
#
# 1. adversarial training (Goodfellow et al.) cuts FGSM error sharply, at little or no
#    cost in clean error;
# 2. DataGrad-L1/L2 (Ororbia et al.) beat plain L1/L2 weight decay under attack, and
#    multitask + DataGrad is the most robust;
# 3. finite-difference DataGrad-L1 with β = (1−a)ε, φ = ε *is* Goodfellow's objective.

# %%
import json
import os
import sys

from minigrad import cli

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
OUT = os.path.join(FIGURES, "05_compare")

# %% [markdown]
# ## 1. Run the comparison
# Exactly what `python -m minigrad compare --out ...` runs.

# %%
argv = ["compare", "--out", os.path.relpath(OUT), "--quiet"] + (["--quick"] if QUICK else [])  # relative: it is printed
status = cli.main(argv)
assert status == 0

# %% [markdown]
# ## 2. Read the results
# `results.json` holds every number, the budgets and the full configuration.

# %%
with open(os.path.join(OUT, "results.json")) as f:
    run = json.load(f)
results = {r["member"]: r for r in run["results"]}
print("budgets used for training:", run["meta"]["budgets"])
fgsm_eps = run["meta"]["attacks"]["fgsm"][len(run["meta"]["attacks"]["fgsm"]) // 2]
print(f"\n{'member':>20} {'clean':>7} {'FGSM ε=' + str(fgsm_eps):>12}")
for name, r in results.items():
    print(f"{name:>20} {r['clean_error']:7.3f} {r['attacks']['fgsm'][str(fgsm_eps)]:12.3f}")

# %% [markdown]
# ## 3. What matches, checked rather than asserted by eye
# Claim 3 of the list above holds exactly, whatever the training length: the two
# members get identical parameter updates at every step, so identical results.

# %%
if "adv-pinf" in results and "datagrad-l1-fd" in results:
    a, d = results["adv-pinf"], results["datagrad-l1-fd"]
    print("adv-pinf and datagrad-l1-fd: clean", a["clean_error"], "vs", d["clean_error"],
          "| FGSM", a["attacks"]["fgsm"], "vs", d["attacks"]["fgsm"])
    assert abs(a["clean_error"] - d["clean_error"]) < 0.01

plain = results["plain"]["attacks"]["fgsm"][str(fgsm_eps)]
for name in ("adv-pinf", "datagrad-l1", "gp-q1", "multitask+datagrad"):
    if name in results:
        mine = results[name]["attacks"]["fgsm"][str(fgsm_eps)]
        print(f"{name:>20}: FGSM error {mine:.3f} vs plain {plain:.3f} "
              f"({'lower' if mine < plain else 'not lower'})")

# %% [markdown]
# In quick mode two epochs on 512 digits say little; the full run's table and an honest
# reading of it are in RESULTS.md.  The figures the run wrote:
#
# * `robustness.png`: test error against ε, one line per member, one panel per attack;
# * `clean_vs_fgsm.png`: clean and FGSM error per member;
# * `perturbations.png`: r* for p = 1, 2, ∞ on test digits, from the plain model.

# %%
for name in ("robustness.png", "clean_vs_fgsm.png", "perturbations.png"):
    path = os.path.join(OUT, name)
    print(name, "written" if os.path.exists(path) else "MISSING (is matplotlib installed?)")
# Copy the main figure next to the other tutorials' figures.
if os.path.exists(os.path.join(OUT, "robustness.png")):
    import shutil
    shutil.copy(os.path.join(OUT, "robustness.png"), os.path.join(FIGURES, "05_robustness.png"))
    shutil.copy(os.path.join(OUT, "clean_vs_fgsm.png"), os.path.join(FIGURES, "05_clean_vs_fgsm.png"))
