"""How a trained model is judged: clean test error, and test error under white-box attack at a grid
of budgets.  One floor below the commands, so that ``compare`` and ``sweep`` (and anything else that
reports a robust error) measure it the same way.

The attack grid (the fast suite): FGSM (the fast gradient method for p = ∞), FGM for p = 2 and p = 1
(each under its own ball), and PGD-ℓ∞ with ``pgd_steps`` steps of size 2.5·ε/steps, no random start, at
several budgets: the curves of the robustness figure.  The strong suite (``robust``: PGD with restarts
on the cross-entropy and the margin, APGD-CE, APGD-T on the DLR loss, Square; ``minigrad.robust``) gives
the robust error a verdict rests on, at the training budget, with the masking flags beside it.  Pixels
lie in [0, 1] and every adversarial input is clipped to that box.
"""
from __future__ import annotations

import math

import numpy as np

from . import perturbations as P
from . import robust as R
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


def robust(model, data, eps: float, p: float = math.inf, suite: str = "strong", seed: int = 0,
           flags: str = "all", cascade: bool = False) -> tuple[dict, np.ndarray]:
    """(record, per-example wrong flags): the robust error of ``model`` on ``data`` at ``eps`` in ℓp under
    ``suite`` (``minigrad.robust``).  Every attack runs on every example, so each one's own error is known
    (``errors``); ``cascade`` runs each only on the examples no earlier one fooled (the same worst case, at a
    fraction of the cost, affordable inside a sweep; ``errors`` is then what each attack added).

    ``flags``: 'all' adds the masking flags (``robust.masking_flags``, about two more suites); 'cheap' only
    the fraction of zero input gradients, from which, with the attack grid's FGSM and PGD errors,
    ``flags_from`` gives the flags that need no further attack; 'none' neither.  The record is JSON-ready
    and names the suite, its budget, steps, restarts and queries."""
    x, y = data.x, data.y
    result = R.robust_error(model, x, y, eps, p, suite, image_shape=data.image_shape if suite == "strong" else None,
                            seed=seed, cascade=cascade)
    record = {"suite": suite, "eps": eps, "p": "inf" if p == math.inf else p, "n": result.n, "error": result.error,
              "cascade": cascade, "errors": result.errors, "settings": result.settings,
              "seconds": round(sum(result.seconds.values()), 2)}
    if suite == "strong" and flags == "all":
        record["masking"] = R.masking_flags(model, x, y, eps, p, data.image_shape, seed, result=result)
    elif suite == "strong" and flags == "cheap":
        record["zero_gradient"] = R.zero_gradient_fraction(model, x, y)
    return record, np.array([f is not None for f in result.found_by])


def flags_from(record: dict, one_step: float, iterative: float) -> dict:
    """The masking flags that a strong-suite ``record`` (flags='cheap') and the attack grid's one-step and
    PGD-10 errors at the same budget give without another attack: one step beats iterative, zero gradient,
    and, from a cascade, "black box adds": Square fools more than 1 % of the examples every gradient attack
    failed on (a weaker cousin of "black box beats white box", which needs Square's own error on every
    example).  The large-budget and not-converged flags need further attacks and are marked not computed."""
    errors = record["errors"]
    square = errors.get("square", 0.0) if record.get("cascade") else \
        errors.get("square", 0.0) - max(errors.get(a, 0.0) for a in R.WHITE_BOX)
    flags = {("black_box_adds" if record.get("cascade") else "black_box_beats_white_box"): square > R.POINTS,
             "one_step_beats_iterative": one_step > iterative + R.POINTS,
             "zero_gradient": record.get("zero_gradient", 0.0) > R.POINTS}
    flagged = [k for k, v in flags.items() if v]
    return {"flags": flags, "flagged": flagged, "not_computed": ["large_budget_below_99", "not_converged"],
            "reason": "; ".join(flagged) or "no sign of gradient masking among the flags computed"}
