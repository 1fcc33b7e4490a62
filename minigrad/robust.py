r"""Robust error under an attack suite, and the signs that the suite was fooled (gradient masking).

The robust error of a classifier f at budget ε is the fraction of examples for which *some* point
of S(x) = {‖x' − x‖ₚ ≤ ε, x' ∈ [0, 1]} is misclassified.  No attack computes it; each gives a lower
bound, and the suite reports the per-example worst case over its attacks (Croce & Hein 2020,
AutoAttack):

    error = (1/n) Σᵢ max_a 1[f(a(xᵢ)) ≠ yᵢ].

Two suites (``SUITES``):

- ``fast``: the one-step closed form (FGSM for p = ∞, FGM for p = 2) and PGD-10 from x with no
  restart and α = 2.5ε/10: what ``compare`` reported until now.
- ``strong``: PGD-CE and PGD-margin with random restarts (Madry et al. 2018; Carlini & Wagner
  2017), APGD-CE and APGD-T on the targeted DLR loss (Croce & Hein 2020) and Square, a black-box
  random search (Andriushchenko et al. 2020).  FAB-T, AutoAttack's fourth attack, is left out; the
  margin PGD and the scale-invariant DLR losses cover the minimal-margin direction it adds.

Default effort (``STRONG``): PGD 50 steps × 2 restarts on each loss, APGD 50 steps × 1 restart,
APGD-T against the top 3 classes, Square 1000 queries.  That is half of AutoAttack's 100 APGD steps,
a third of its 9 targets and a fifth of its 5000 queries, chosen so that a sweep can afford the suite
on 2 CPU cores: on the Maxout network 784 → 240×3 → 240×3 → 10 (FGSM-trained, ℓ∞ ε = 0.1) it took
about 200 s per 1000 examples on a busy 2-core machine, Square more than half of it, against 3 s
for PGD-10 and more than 5000 s for ART's default AutoAttack (benchmarks/attack_cost.py).  The
masking flag "not converged" is what tells whether that effort was enough.  Every attack runs on every example (so each attack's own
error is known, and per example which attack found it first, in suite order).

Masking flags (Athalye, Carlini & Wagner 2018; Carlini et al. 2019, "On Evaluating Adversarial
Robustness", §5): ``masking_flags`` reports, as information and never as an exception,

- black box beats white box: Square's error exceeds every gradient attack's by more than 1 point;
- large budget: the error at ℓ∞ ε = 0.5 (on [0, 1] pixels, every image can be moved to grey) is
  below 99 %;
- one step beats iterative: FGSM/FGM's error exceeds PGD-CE's by more than 1 point;
- not converged: doubling the gradient attacks' steps and restarts raises the error by more than
  1 point;
- zero gradient: more than 1 % of the examples have an input gradient of exactly 0 at x.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from . import attacks as A
from . import perturbations as P
from . import validate
from .errors import InvalidArgument

SUITES = ("strong", "fast")
STRONG = dict(steps=50, restarts=2, apgd_restarts=1, n_targets=3, queries=1000)
WHITE_BOX = ("pgd-ce", "pgd-margin", "apgd-ce", "apgd-t")
POINTS = 0.01  # every flag's threshold: 1 point of error (or 1 % of the examples)


@dataclasses.dataclass(frozen=True)
class RobustError:
    """What ``robust_error`` found.  ``error``: the per-example worst case; ``errors``: each attack's
    own error (suite order); ``found_by``: per example, the first attack that fooled it ("clean" if
    x itself is misclassified, None if nothing did); ``settings``: the suite's budget and effort."""
    suite: str
    eps: float
    p: float
    n: int
    clean_error: float
    error: float
    errors: dict
    found_by: list
    settings: dict
    seconds: dict

    def to_dict(self) -> dict:
        """JSON-ready (p = ∞ is written "inf")."""
        d = dataclasses.asdict(self)
        d["p"] = "inf" if self.p == math.inf else self.p
        return d


def _suite(suite, eps, p, steps, restarts, apgd_restarts, n_targets, queries, image_shape, seed):
    """name → attack(model, x, y), in suite order."""
    if suite == "fast":
        one = "fgsm" if p == math.inf else "fgm-l2"
        return {one: lambda m, x, y: P.fgm(m, x, y, eps, p, clip=(0.0, 1.0)),
                f"pgd-{'linf' if p == math.inf else 'l2'}": lambda m, x, y: A.pgd(
                    m, x, y, eps, p, steps=10, restarts=1, random_start=False, seed=seed)}
    return {
        "apgd-ce": lambda m, x, y: A.apgd(m, x, y, eps, p, steps, "ce", restarts=apgd_restarts, seed=seed),
        "apgd-t": lambda m, x, y: A.apgd(m, x, y, eps, p, steps, "dlr", n_targets=n_targets,
                                         restarts=apgd_restarts, seed=seed + 1),
        "pgd-ce": lambda m, x, y: A.pgd(m, x, y, eps, p, steps, restarts, "ce", seed=seed + 2),
        "pgd-margin": lambda m, x, y: A.pgd(m, x, y, eps, p, steps, restarts, "margin", seed=seed + 3),
        "square": lambda m, x, y: A.square(m, x, y, eps, p, queries, image_shape, seed=seed + 4),
    }


def robust_error(model, x, y, eps, p, suite="strong", image_shape=None, seed=0, *, steps=STRONG["steps"],
                 restarts=STRONG["restarts"], apgd_restarts=STRONG["apgd_restarts"],
                 n_targets=STRONG["n_targets"], queries=STRONG["queries"], batch_size=1000,
                 cascade=False) -> RobustError:
    """The robust error of ``model`` on (x, y) at budget ``eps`` in ℓ``p`` (2 or ∞) under ``suite``
    (module docstring: the suites, their defaults, the per-example worst case).

    x: host array (n, features...) in [0, 1]; y: labels.  ``image_shape``: a Dataset's, needed by
    Square (the strong suite).  The model runs in eval mode and is put back in its modes after.
    Everything is checked before the first attack; ``.to_dict()`` of the result is JSON-ready.
    ``cascade=True`` runs each attack only on the examples no earlier one fooled (AutoAttack's way:
    cheaper, the same worst case, but each attack's own error is then only what it added).
    """
    who = "robust_error"
    validate.choice(suite, SUITES, "suite", who)
    eps, p = A.check_budget(eps, p, who)
    effort = {k: validate.integer(v, k, who, low=1) for k, v in
              dict(steps=steps, restarts=restarts, apgd_restarts=apgd_restarts, queries=queries,
                   batch_size=batch_size).items()}
    n_targets = validate.integer(n_targets, "n_targets", who, low=1)
    x, y = A.check_batch(x, y, who)
    if suite == "strong":
        A.image_layout(image_shape, x, who)
    modes = [m.training for m in model.modules()]
    model.eval()
    try:
        n_classes = A.logits(model, x[:1]).shape[1]  # one example's forward pass: the class count
        if suite == "strong" and n_targets >= n_classes:
            raise InvalidArgument(f"{who}: n_targets must be below the number of classes ({n_classes}), "
                                  f"got {n_targets}")
        attacks = _suite(suite, eps, p, effort["steps"], effort["restarts"], effort["apgd_restarts"], n_targets,
                         effort["queries"], image_shape, seed)
        return _run(model, x, y, attacks, suite, eps, p, effort["batch_size"], settings=dict(
            {k: v for k, v in effort.items() if k != "batch_size"}, n_targets=n_targets, seed=seed,
            image_shape=None if image_shape is None else list(image_shape))
            if suite == "strong" else dict(steps=10, restarts=1, random_start=False, step_size=2.5 * eps / 10),
            cascade=validate.choice(cascade, (False, True), "cascade", who))
    finally:
        for m, mode in zip(model.modules(), modes):
            m.training = mode


def _run(model, x, y, attacks, suite, eps, p, batch_size, settings, cascade) -> RobustError:
    """Each attack on every example that x itself does not already fool; with ``cascade`` only on the
    examples no earlier attack fooled."""
    clean = np.concatenate([A.logits(model, x[i:i + batch_size]).argmax(1) != y[i:i + batch_size]
                            for i in range(0, len(x), batch_size)])
    wrong, seconds, done = {}, {}, clean.copy()
    for name, attack in attacks.items():
        start, miss = time.perf_counter(), clean.copy()
        for i in range(0, len(x), batch_size):
            keep = np.flatnonzero(~done[i:i + batch_size]) + i  # a clean mistake needs no attack
            if keep.size:
                x_adv = attack(model, x[keep], y[keep])
                miss[keep] = A.logits(model, x_adv).argmax(1) != y[keep]
        wrong[name], seconds[name] = miss, time.perf_counter() - start
        done = done | miss if cascade else done
    found = [("clean" if c else next((a for a in attacks if wrong[a][i]), None)) for i, c in enumerate(clean)]
    worst = np.any(np.stack(list(wrong.values())), axis=0)
    return RobustError(suite=suite, eps=eps, p=p, n=len(x), clean_error=float(clean.mean()),
                       error=float(worst.mean()), errors={a: float(w.mean()) for a, w in wrong.items()},
                       found_by=found, settings=settings, seconds=seconds)


def zero_gradient_fraction(model, x, y) -> float:
    """The fraction of examples whose cross-entropy input gradient at x is exactly 0 everywhere."""
    _, _, g = A.loss_and_gradient(model, x, y, "ce")
    return float((np.abs(g.reshape(len(g), -1)).max(axis=1) == 0).mean())


def masking_flags(model, x, y, eps, p, image_shape=None, seed=0, result: RobustError | None = None,
                  **effort) -> dict:
    """The signs of gradient masking (module docstring) for ``model`` at (eps, p), computed with the
    strong suite (``result``, if given, is reused: it must be the strong suite at this eps and p).

    Returns {"flags": {name: bool}, "values": {name: the numbers compared}, "flagged": [names],
    "reason": one line}.  Costs about three strong suites (the suite itself unless given, a cheap
    one-step attack, the doubled gradient attacks, and the suite once at ℓ∞ ε = 0.5)."""
    who = "masking_flags"
    eps, p = A.check_budget(eps, p, who)
    x, y = A.check_batch(x, y, who)
    if result is None:
        result = robust_error(model, x, y, eps, p, "strong", image_shape, seed, **effort)
    elif result.suite != "strong" or result.eps != eps or result.p != p:
        raise InvalidArgument(f"{who}: result must be the strong suite at eps={eps:g}, p={p:g}, got the "
                              f"{result.suite} suite at eps={result.eps:g}, p={result.p:g}")
    cfg = dict(result.settings)
    fast = robust_error(model, x, y, eps, p, "fast", seed=seed)
    robust = np.array([f is None for f in result.found_by])  # more effort can only add these
    doubled = 0.0
    if robust.any():
        doubled = robust_error(model, x[robust], y[robust], eps, p, "strong", image_shape, seed + 100,
                               steps=2 * cfg["steps"], restarts=2 * cfg["restarts"],
                               apgd_restarts=2 * cfg["apgd_restarts"], n_targets=cfg["n_targets"],
                               queries=cfg["queries"], cascade=True).error * robust.mean()
    large = robust_error(model, x, y, 0.5, math.inf, "strong", image_shape, seed, cascade=True,
                         **{k: cfg[k] for k in STRONG})
    white = max(result.errors[a] for a in WHITE_BOX)
    union = result.error + doubled
    one_step = next(iter(fast.errors.values()))
    values = {"square": result.errors["square"], "white_box": white, "large_budget_error": large.error,
              "one_step": one_step, "pgd_ce": result.errors["pgd-ce"], "error": result.error,
              "error_doubled": float(union), "zero_gradient": zero_gradient_fraction(model, x, y)}
    flags = {"black_box_beats_white_box": values["square"] > white + POINTS,
             "large_budget_below_99": large.error < 0.99,
             "one_step_beats_iterative": one_step > values["pgd_ce"] + POINTS,
             "not_converged": values["error_doubled"] > result.error + POINTS,
             "zero_gradient": values["zero_gradient"] > POINTS}
    why = {"black_box_beats_white_box": f"Square {values['square']:.1%} > white box {white:.1%} + 1 pt",
           "large_budget_below_99": f"error at l-inf eps=0.5 is {large.error:.1%} < 99%",
           "one_step_beats_iterative": f"one-step {one_step:.1%} > PGD-CE {values['pgd_ce']:.1%} + 1 pt",
           "not_converged": f"doubling steps and restarts: {result.error:.1%} -> {values['error_doubled']:.1%}",
           "zero_gradient": f"zero input gradient on {values['zero_gradient']:.1%} of examples (> 1%)"}
    flagged = [k for k, v in flags.items() if v]
    return {"flags": flags, "values": values, "flagged": flagged,
            "reason": "; ".join(why[k] for k in flagged) or "no sign of gradient masking"}
