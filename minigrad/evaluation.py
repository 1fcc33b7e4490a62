"""How a trained model is judged: clean test error, and test error under white-box attack at a grid
of budgets.  One floor below the commands, so that ``compare`` and ``sweep`` (and anything else that
reports a robust error) measure it the same way.

The fast suite: FGSM (the fast gradient method for p = ∞), FGM for p = 2 and p = 1 (each under its own
ball), and PGD-ℓ∞ with ``pgd_steps`` steps of size 2.5·ε/steps, no random start.  Pixels lie in [0, 1]
and every adversarial input is clipped to that box.
"""
from __future__ import annotations

import math

import numpy as np

from . import perturbations as P
from .backend import as_numpy, to_device
from .members import Strengths
from .tensor import Tensor, no_grad
from .train import evaluate
from .verdicts import pack_wrong

# attack name -> (how, p)
ATTACKS = {"fgsm": ("fgm", np.inf), "fgm-l2": ("fgm", 2.0), "pgd-linf": ("pgd", np.inf), "fgm-l1": ("fgm", 1.0)}


def attack_grid(n_features: int, quick: bool) -> dict:
    """Attack → list of ε.  ℓ2 radii scale with √D/8 (1 on 8×8 digits)."""
    s = math.sqrt(n_features) / 8
    if quick:
        return {"fgsm": [0.1], "fgm-l2": [round(1.0 * s, 3)], "pgd-linf": [0.1]}
    return {"fgsm": [0.05, 0.1, 0.2], "fgm-l2": [round(e * s, 3) for e in (0.25, 0.5, 1.0)],
            "pgd-linf": [0.05, 0.1, 0.2]}


def grid_with_training_budgets(n_features: int, eps: float, quick: bool) -> tuple[dict, dict]:
    """(attack grid, the training budget of each attack): ``attack_grid`` plus every attack at the
    training budgets ε, ε₂ = ε√D/2, ε₁ = ε√D (``Strengths.budgets``)."""
    b = Strengths(eps=eps).budgets(n_features)
    budgets = {"fgsm": eps, "pgd-linf": eps, "fgm-l2": round(b["2"], 4), "fgm-l1": round(b["1"], 4)}
    grid = {a: list(v) for a, v in attack_grid(n_features, quick).items()}
    for a, e in budgets.items():
        grid[a] = sorted(set(grid.get(a, [])) | {e})
    return grid, budgets


def attack_wrong(model, data, attack: str, eps: float, pgd_steps: int = 10, chunk: int = 1000) -> np.ndarray:
    """Per test example: misclassified on the adversarial example made against ``model`` itself (white
    box), ``chunk`` examples at a time.  A bool array of len(data)."""
    model.eval()
    kind, p = ATTACKS[attack]
    wrong = []
    for start in range(0, len(data), chunk):
        x = to_device(data.x[start:start + chunk], model.device)
        y = to_device(data.y[start:start + chunk], model.device)
        if kind == "fgm":
            x_adv = P.fgm(model, x, y, eps, p, clip=(0.0, 1.0))
        else:
            x_adv = P.pgd(model, x, y, eps, p, steps=pgd_steps, step_size=2.5 * eps / pgd_steps, clip=(0.0, 1.0))
        with no_grad():
            wrong.append(as_numpy(model(x_adv).data.argmax(axis=1) != y))
    return np.concatenate(wrong) if wrong else np.zeros(0, dtype=bool)


def attack_error(model, data, attack: str, eps: float, pgd_steps: int = 10, chunk: int = 1000) -> float:
    """Test error on adversarial examples made against ``model`` itself: the mean of ``attack_wrong``."""
    return int(attack_wrong(model, data, attack, eps, pgd_steps, chunk).sum()) / len(data)


def clean_wrong(model, data, chunk: int = 1000) -> np.ndarray:
    """Per test example: misclassified as it is (eval mode, dropout off).  A bool array of len(data)."""
    model.eval()
    wrong = []
    with no_grad():
        for start in range(0, len(data), chunk):
            x = to_device(data.x[start:start + chunk], model.device)
            wrong.append(as_numpy(model(Tensor(x)).data.argmax(axis=1) != to_device(data.y[start:start + chunk],
                                                                                      model.device)))
    return np.concatenate(wrong) if wrong else np.zeros(0, dtype=bool)


def attack_errors(model, data, grid: dict, pgd_steps: int = 10) -> dict:
    """{attack: {str(ε): error}} over the grid."""
    return {a: {str(e): attack_error(model, data, a, e, pgd_steps) for e in eps_list} for a, eps_list in grid.items()}


def errors(model, data, grid: dict, pgd_steps: int = 10, keep: dict | None = None) -> dict:
    """Clean error and loss, and the attack grid's errors: {'clean_error', 'clean_loss', 'attacks'}.
    ``keep`` (attack → ε): also 'wrong', the per-example flags of the clean test and of those attacks at
    those budgets, packed as ``verdicts.pack_wrong`` ({'n', 'clean', attack: ...}); each error is then
    the mean of the flags it stores, so nothing is attacked twice."""
    clean = evaluate(model, data)
    if not keep:
        return {"clean_error": clean.error, "clean_loss": clean.loss,
                "attacks": attack_errors(model, data, grid, pgd_steps)}
    attacks, wrong = {}, {"n": len(data), "clean": pack_wrong(clean_wrong(model, data))}
    for a, eps_list in grid.items():
        attacks[a] = {}
        for e in eps_list:
            flags = attack_wrong(model, data, a, e, pgd_steps)
            attacks[a][str(e)] = int(flags.sum()) / len(data)
            if keep.get(a) == e:
                wrong[a] = pack_wrong(flags)
    return {"clean_error": clean.error, "clean_loss": clean.loss, "attacks": attacks, "wrong": wrong}
