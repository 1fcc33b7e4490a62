r"""The statistics of a sweep: per-point summaries, the strength chosen for a clean-error budget, and
a verdict on each empirical claim of the seed papers.  Pure functions of the cell records (the
dicts ``sweep.run_cell`` returns), so they can be tested on synthetic records with known answers.
(A little over the ~400-line guide: the interval, the choice of strength and the claims that use both are
read together; the tables are ``sweep_report``'s.)

Two sources of noise.  Seeds are the unit of replication: every cell with the same seed shares the
network's initialisation and the example order, and all cells share the validation and test sets,
so two members are compared **paired over seeds**.  The test set is itself one sample of N examples,
the same for every cell, so a difference can also be an accident of which examples were drawn.  For
the paired difference of errors (A − B; one member alone: its error, B's terms dropped), with aₛᵢ and
bₛᵢ (0 or 1) whether cell s of A or of B got test example i wrong, and n seeds where both finished:
the difference per seed dₛ and per example δᵢ, the seeds' term (the sample variance of the dₛ, over n),
the test set's term (the sample variance of the δᵢ, over N), and the 95% interval are

    dₛ = mean_i (aₛᵢ − bₛᵢ),    δᵢ = mean_s (aₛᵢ − bₛᵢ)
    V_seed = var_s(dₛ) / n,      V_test = var_i(δᵢ) / N
    95% interval: mean(d) ± √(t(0.975, n − 1)² · V_seed + t(0.975, N − 1)² · V_test)

.. math::

   d_s = \frac1N \sum_i (a_{si} - b_{si}), \qquad \delta_i = \frac1n \sum_s (a_{si} - b_{si}),

   V_{\text{seed}} = \frac{\operatorname{var}_s(d_s)}{n}, \qquad
   V_{\text{test}} = \frac{\operatorname{var}_i(\delta_i)}{N},

   \bar d \pm \sqrt{t_{0.975,\,n-1}^2 \, V_{\text{seed}} + t_{0.975,\,N-1}^2 \, V_{\text{test}}}.

For one seed, the test term is McNemar's variance ((b + c)/N − (b − c)²/N²) / N, b and c the examples
only A or only B gets wrong; over seeds it is that of the seed-averaged outcome, because every seed is
scored on the same N examples (their test-set errors do not average out over seeds).  Both terms hold
the seed-by-example noise (an example one seed gets wrong and another right), so the sum errs wide, in
expectation by at most the seeds' term.  Each term keeps its own quantile (t with n − 1 degrees of
freedom for the seeds, ≈ 1.96 for N examples), added in quadrature: counting the test set never narrows
the seeds' t interval.  (Welch–Satterthwaite's pooled t(0.975, ν) would let 3 seeds borrow the test
term's degrees of freedom and narrow it, and more so when the seeds' variance came out small by chance.)
Analytic rather than a bootstrap: with 2–5 seeds a bootstrap over seeds has 3–126 distinct resamples,
and its percentile interval is far narrower than t(0.975, n − 1) allows.

Cells recorded without per-example outcomes (``result["wrong"]``, see ``pack_wrong``) get the binomial
approximation of the test term, ē(1 − ē) of A plus that of B, over N, from the mean errors ē, as if A's
and B's mistakes were independent: wider than the truth when they make the same mistakes, as members
do.  N is then the least common multiple of the reduced denominators of every error the cells store
(each is wrong / N): N or a divisor of it, so the term can only err wide.  Rows that used it say so.

No verdict from a zero-width interval (e.g. two members with identical predictions), from one seed,
or from a member chosen at the edge of its grid (``choose``): each is "cannot tell", with the reason.

Verdicts, from the interval [lo, hi] of the difference (errors as fractions; tables in points):

- "A beats B" (A's error lower): holds if hi < 0; does not hold if lo > 0; otherwise cannot tell.
- "A and B are equivalent": holds if the whole interval lies within ±MARGIN; does not hold if it
  lies entirely outside; otherwise cannot tell.
- "A does not cost B's accuracy" (non-inferiority): holds if hi ≤ MARGIN; does not hold if lo > MARGIN;
  otherwise cannot tell.
"""
from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction
from typing import NamedTuple

import numpy as np

MARGIN = 0.01  # 1 percentage point: the equivalence and non-inferiority margin
HOLDS, FAILS, UNSURE = "holds", "does not hold", "cannot tell"
RULE = ("95% interval counting both sources of noise, the seeds and the test set's sampling of examples "
        "(each variance with its own t quantile, added in quadrature)")

# t(0.975, df) for df = 1..30; beyond, the normal quantile plus the usual 1/df correction.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(df: int) -> float:
    return _T975[df - 1] if df <= 30 else 1.960 + 2.4 / df


def interval(values) -> tuple:
    """(mean, lo, hi, n) of the 95% t interval of the mean over seeds only; lo = hi = nan when n < 2."""
    e = estimate(values)
    return e.mean, e.lo, e.hi, e.n


class Estimate(NamedTuple):
    """A mean over seeds with its 95% interval [lo, hi] and standard error se, the square root of the
    seeds' term plus the test set's (module docstring); ``test``: how the test term was found
    ("per-example", "binomial", or "" for none); ``reason``: why the interval cannot carry a verdict
    ("" if it can)."""
    mean: float
    lo: float
    hi: float
    n: int
    se: float = math.nan
    test: str = ""
    reason: str = ""


def estimate(values, test_var: float = 0.0, n_test: float = math.inf, test: str = "") -> Estimate:
    """The interval of the module docstring from the per-seed ``values`` and the test set's term
    ``test_var`` (measured on ``n_test`` examples).  ``test_var`` = 0: the seeds-only t interval."""
    v = np.asarray([float(x) for x in values])
    n = len(v)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, reason="no finished seed")
    mean = float(v.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, 1, test=test, reason="one seed: no interval")
    v_seed = float(v.var(ddof=1)) / n
    total = v_seed + test_var
    if not total > 1e-18:  # rounding, not noise: errors are counts over N ≤ 10⁶, so a real variance is ≥ 1e-13
        return Estimate(mean, mean, mean, n, 0.0, test, "zero-width interval (identical outcomes on every seed "
                        "and test example)")
    half = math.sqrt(t975(n - 1) ** 2 * v_seed + (t975(max(1, n_test - 1)) ** 2 * test_var if test_var else 0.0))
    return Estimate(mean, mean - half, mean + half, n, math.sqrt(total), test)


def verdict_less(lo: float, hi: float) -> str:
    if math.isnan(lo) or not hi > lo:
        return UNSURE
    return HOLDS if hi < 0 else FAILS if lo > 0 else UNSURE


def verdict_equivalent(lo: float, hi: float, margin: float = MARGIN) -> str:
    if math.isnan(lo) or not hi > lo:
        return UNSURE
    return HOLDS if -margin <= lo and hi <= margin else FAILS if lo > margin or hi < -margin else UNSURE


def verdict_not_worse(lo: float, hi: float, margin: float = MARGIN) -> str:
    if math.isnan(lo) or not hi > lo:
        return UNSURE
    return HOLDS if hi <= margin else FAILS if lo > margin else UNSURE


# --- reading cell records ------------------------------------------------------------------------
def metric(record: dict, split: str, name: str) -> float:
    """Error of a finished cell on ``split`` ('valid' or 'test'): name 'clean', or an attack
    ('fgsm', 'pgd-linf', 'fgm-l2', 'fgm-l1') at the sweep's training budget for it."""
    part = record["result"][split]
    if name == "clean":
        return part["clean_error"]
    return part["attacks"][name][str(record["config"]["budgets"][name])]


def pack_wrong(wrong) -> str:
    """Per-example outcomes as JSON-ready text: the hex of ``np.packbits`` of the wrong flags (8 a byte).
    A cell stores them as result["wrong"][split] = {"n": N, "clean": …, and each attack of
    config["budgets"] at its training budget: the very evaluations ``metric`` reads}."""
    return np.packbits(np.asarray(wrong, dtype=bool).ravel()).tobytes().hex()


def unpack_wrong(text: str, n: int) -> np.ndarray:
    """The n wrong flags that ``pack_wrong`` packed, as a bool array."""
    if len(text) != 2 * ((n + 7) // 8):
        raise ValueError(f"unpack_wrong: {len(text)} hex digits cannot hold exactly {n} flags")
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8), count=n).astype(bool)


def wrong(record: dict, split: str, name: str):
    """The per-example wrong flags behind ``metric(record, split, name)``, or None for a cell recorded
    without them.  Flags that do not give the stored error are a bug, and raise."""
    part = record["result"].get("wrong", {}).get(split, {})
    if name not in part:
        return None
    flags, error = unpack_wrong(part[name], part["n"]), metric(record, split, name)
    if abs(flags.mean() - error) > 0.5 / part["n"]:
        raise ValueError(f"cell {record.get('key')}: its {split} {name} flags give an error of "
                         f"{flags.mean():.6f}, but it stores {error:.6f}")
    return flags


def n_examples(records, split: str) -> int:
    """N of ``split``: from the per-example flags, else the least common multiple of the reduced
    denominators of every error the records store (each is wrong / N; N or a divisor of it)."""
    denominators = set()
    for r in records:
        part = r["result"].get("wrong", {}).get(split)
        if part:
            return part["n"]
        errors = [r["result"][split]["clean_error"]] + [e for by in r["result"][split]["attacks"].values()
                                                         for e in by.values()]
        denominators |= {Fraction(e).limit_denominator(10 ** 6).denominator for e in errors}
    return math.lcm(*denominators) if denominators else 1


def ok(record: dict) -> bool:
    return record.get("status") == "ok"


def points(records) -> dict:
    """{member: {strength: [records sorted by seed]}} (strength None for a member with no knob)."""
    table = defaultdict(lambda: defaultdict(list))
    for r in records:
        c = r["config"]
        table[c["member"]][c["strength"]].append(r)
    return {m: {s: sorted(rs, key=lambda r: r["config"]["seed"]) for s, rs in by.items()} for m, by in table.items()}


def _both(a_cells: list, b_cells: list) -> list:
    """(a, b) record pairs of the seeds where both finished; b is None throughout for one member alone."""
    if b_cells is None:
        return [(r, None) for r in a_cells if ok(r)]
    b_by_seed = {r["config"]["seed"]: r for r in b_cells if ok(r)}
    return [(r, b_by_seed[r["config"]["seed"]]) for r in a_cells if ok(r) and r["config"]["seed"] in b_by_seed]


def paired(a_cells: list, b_cells, split: str, name: str) -> Estimate:
    """The interval of error_A − error_B over the seeds where both finished, counting the seeds and the
    test examples (module docstring); ``b_cells`` None: the interval of A's error alone."""
    pairs = _both(a_cells, b_cells)
    if not pairs:
        return estimate([])

    def value(a, b):
        return metric(a, split, name) - (0.0 if b is None else metric(b, split, name))
    values = [value(a, b) for a, b in pairs]
    flags = [[wrong(r, split, name) for r in pair if r is not None] for pair in pairs]
    if all(f is not None for fs in flags for f in fs):
        delta = np.mean([fs[0].astype(float) - (fs[1] if len(fs) > 1 else 0.0) for fs in flags], axis=0)
        return estimate(values, float(delta.var(ddof=1)) / len(delta), len(delta), "per-example")
    n_test = n_examples([r for pair in pairs for r in pair if r is not None], split)
    rates = [np.mean([metric(p[k], split, name) for p in pairs]) for k in ((0,) if b_cells is None else (0, 1))]
    return estimate(values, sum(e * (1 - e) for e in rates) / n_test, n_test, "binomial")


def summary(cells: list, split: str, name: str) -> Estimate:
    """The mean of ``name`` on ``split`` over the finished seeds of one point, with its interval."""
    return paired(cells, None, split, name)


def unstable(losses) -> bool:
    """True if some epoch's mean training loss exceeds 5 × the lowest earlier epoch loss + 0.5 nats."""
    lowest = math.inf
    for loss in losses:
        if loss > 5 * lowest + 0.5:
            return True
        lowest = min(lowest, loss)
    return False


def is_unstable(record: dict) -> bool:
    return ok(record) and unstable(h["train_loss"] for h in record["result"]["history"])


def health(cells: list) -> dict:
    """Counts of a point's seeds: finished, unstable (among the finished), diverged or failed."""
    return {"n": len(cells), "ok": sum(ok(r) for r in cells),
            "unstable": sum(is_unstable(r) for r in cells),
            "failed": sum(not ok(r) for r in cells)}


class Choice(NamedTuple):
    """A member's strength chosen on validation; ``edge``: "weakest" or "strongest" when it is that
    end of the member's grid (the best may lie beyond it), "" otherwise."""
    strength: float | None
    within_budget: bool
    edge: str = ""


def _mean(cells, split, name):
    return float(np.mean([metric(r, split, name) for r in cells]))


def choose(by_strength: dict, budget: float, robust: str = "pgd-linf") -> Choice:
    """The strength chosen on validation: among the strengths whose every seed finished and whose mean
    validation clean error is within ``budget``, the lowest mean validation ``robust`` error (ties: lower
    clean error, then the smaller strength).  With none within the budget, the finished strength of
    lowest validation clean error, marked within_budget False; (None, False) if no strength finished.

    At the edge: the chosen strength is the weakest or strongest of every strength tried (``by_strength``,
    failed ones included).  A grid extended until it crossed the budget, lost every seed, or stopped
    improving holds that stronger point, so the point chosen below it is not at the edge: the budget's
    own limit is never an edge.  A member with no knob (strength None) has none."""
    finished = {s: cells for s, cells in by_strength.items() if cells and all(ok(r) for r in cells)}
    if not finished:
        return Choice(None, False)

    def key(s):
        return _mean(finished[s], "valid", robust), _mean(finished[s], "valid", "clean"), -math.inf if s is None else s
    inside = [s for s in finished if _mean(finished[s], "valid", "clean") <= budget + 1e-12]
    if inside:
        s, within = min(inside, key=key), True
    else:
        s, within = min(finished, key=lambda s: (_mean(finished[s], "valid", "clean"), key(s))), False
    grid = sorted(v for v in by_strength if v is not None)
    edge = "" if s is None else "strongest" if s == grid[-1] else "weakest" if s == grid[0] else ""
    return Choice(s, within, edge)


def plain_budget(pts: dict, extra: float) -> float:
    """The default clean budget: plain's mean validation error plus ``extra`` (a fraction)."""
    cells = [r for r in next(iter(pts.get("plain", {}).values()), []) if ok(r)]
    return (_mean(cells, "valid", "clean") if cells else math.nan) + extra


def clean_budget(pts: dict, given: float | None = None) -> tuple:
    """(budget as a fraction, how it was set): ``given`` (percent), else plain's mean validation error
    + 1 point, else (no plain) the lowest validation error of any point + 1 point, else 1 (none)."""
    if given is not None:
        return given / 100, f"--clean-budget {given:g}"
    if "plain" in pts:
        budget, how = plain_budget(pts, 0.01), "plain's mean validation error + 1 point"
    else:
        budget = min((_mean([r for r in c if ok(r)], "valid", "clean") for by in pts.values() for c in by.values()
                      if any(ok(r) for r in c)), default=math.nan) + 0.01
        how = "no plain in this sweep: the lowest validation error of any point + 1 point"
    if math.isnan(budget):
        return 1.0, "no budget could be measured (every plain cell failed): none"
    return budget, how


def matched(pts: dict, budget: float) -> dict:
    """{member: Choice} chosen on validation for the clean budget."""
    return {m: choose(by, budget) for m, by in pts.items()}


# --- the claims of the seed papers ---------------------------------------------------------------
ATTACK_OF_BALL = {"adv-pinf": "pgd-linf", "adv-p2": "fgm-l2", "adv-p1": "fgm-l1"}
# The strong suite's robust error (minigrad.robust, ℓ∞ at the training ε: what a sweep cell stores) in place
# of FGSM and PGD-10; FGM-ℓ2 and FGM-ℓ1 keep the fast suite (a sweep runs the strong suite under ℓ∞ only).
STRONG_METRICS = {"fgsm": "strong-linf", "pgd-linf": "strong-linf"}
METRIC_NAMES = {"clean": "clean", "fgsm": "FGSM", "pgd-linf": "PGD-ℓ∞", "fgm-l2": "FGM-ℓ2", "fgm-l1": "FGM-ℓ1",
                "strong-linf": "strong ℓ∞", "strong-l2": "strong ℓ2"}


def _row(claim, comparison, name, stats, verdict, note="", edges=(), fair=None):
    """One verdict row.  ``edges``: the members it uses at the edge of their grid; ``fair``: the verdict
    once those are discounted (default: cannot tell if there are any), shown with what it would be."""
    fair = (UNSURE if edges else verdict) if fair is None else fair
    notes = [note, stats.reason, "test-set term binomial (no per-example outcomes)" if stats.test == "binomial" else ""]
    if edges:
        notes.append("**at the edge**: " + ", ".join(edges) + (f" (else: {verdict})" if fair != verdict else ""))
    return {"claim": claim, "comparison": comparison, "metric": name, "mean": stats.mean, "lo": stats.lo,
            "hi": stats.hi, "n": stats.n, "verdict": fair, "note": "; ".join(filter(None, notes))}


def _missing(claim, members, pts):
    absent = [m for m in members if m not in pts]
    return [_row(claim, " vs ".join(members), "", estimate([]), UNSURE,
                 f"not measured: {', '.join(absent)} not in this sweep")] if absent else []


def _overall(verdicts) -> str:
    """Beats every rival: holds if every pair holds, does not hold if any pair does not."""
    return FAILS if FAILS in verdicts else HOLDS if verdicts and all(v == HOLDS for v in verdicts) else UNSURE


def claims(pts: dict, chosen: dict, train_eps: float, metrics: dict | None = None) -> list:
    """Every claim as rows (claim, comparison, metric, paired effect A − B on test with its interval,
    verdict).  Members are compared at their strengths chosen on validation (``chosen``: Choice), except
    where a claim names a setting (adversarial training's cost is measured at the training ε).  A pair
    that uses a member chosen at the edge of its grid cannot give holds or does not hold.  ``metrics``
    replaces an attack by another (``STRONG_METRICS``: each robust error by the strong suite's)."""
    swap = metrics or {}

    def at(m):
        return pts[m].get(chosen[m][0], [])

    def label(m):
        s = chosen[m][0]
        return m if s is None else f"{m}@{s:g}"

    def edges(*members):
        return [f"{label(m)} is the {chosen[m].edge} of its grid" for m in members if chosen[m].edge]
    rows = []
    claim = "DataGrad-L1/-L2 beat L1 and L2 weight decay and multitask on clean and adversarial error"
    for a in ("datagrad-l1", "datagrad-l2"):
        for b in ("l1", "l2", "multitask"):
            if _missing(claim, (a, b), pts):
                rows += _missing(claim, (a, b), pts)
                continue
            for name in (swap.get(n, n) for n in ("clean", "fgsm", "pgd-linf")):  # row for row with the fast suite
                stats = paired(at(a), at(b), "test", name)
                rows.append(_row(claim, f"{label(a)} − {label(b)}", name, stats, verdict_less(stats.lo, stats.hi),
                                 edges=edges(a, b)))

    def against(claim, me, rivals, name, note=""):  # me beats every rival
        pairs = {o: paired(at(me), at(o), "test", name) for o in rivals}
        raw = {o: verdict_less(s.lo, s.hi) for o, s in pairs.items()}
        fair = {o: UNSURE if edges(me, o) else v for o, v in raw.items()}
        rival = max(pairs, key=lambda o: pairs[o].mean)  # the closest competitor: largest A − B
        used = edges(me, *[o for o in rivals if raw[o] != UNSURE or o == rival])
        return _row(claim, f"{label(me)} − {label(rival)}" + (f" (closest of {len(pairs)})" if note else ""), name,
                    pairs[rival], _overall(raw.values()), note, used, _overall(fair.values()))
    claim = "multitask + DataGrad is the most robust"
    me = "multitask+datagrad"
    if me not in pts or len(pts) < 2:
        rows += _missing(claim, (me, "another member"), pts) or [_row(claim, me, "", estimate([]), UNSURE,
                                                                      "no other member")]
    else:
        rows += [against(claim, me, [m for m in pts if m != me], name, "holds only if it beats every member")
                 for name in (swap.get(n, n) for n in ("fgsm", "pgd-linf"))]
    claim = "adversarial training with p = 1, 2, ∞ improves robustness over plain, each under its own ball"
    ball = {m: swap.get(a, a) for m, a in ATTACK_OF_BALL.items()}
    for m, attack in ball.items():
        if _missing(claim, (m, "plain"), pts):
            rows += _missing(claim, (m, "plain"), pts)
            continue
        stats = paired(at(m), at("plain"), "test", attack)
        rows.append(_row(claim, f"{label(m)} − plain", attack, stats, verdict_less(stats.lo, stats.hi),
                         edges=edges(m)))
    claim = "each p defends its own ball best"
    present = [m for m in ball if m in pts]
    rows += [against(claim, m, [o for o in present if o != m], ball[m]) for m in present
             if len(present) > 1]
    if len(present) < 2:
        rows += _missing(claim, tuple(ATTACK_OF_BALL), pts)
    claim = ("adversarial training (p = ∞) does not cost clean accuracy "
             f"(non-inferiority, margin {100 * MARGIN:g} point)")
    if _missing(claim, ("adv-pinf", "plain"), pts):
        rows += _missing(claim, ("adv-pinf", "plain"), pts)
    else:
        s = train_eps if train_eps in pts["adv-pinf"] else chosen["adv-pinf"][0]
        stats = paired(pts["adv-pinf"].get(s, []), at("plain"), "test", "clean")
        where = "adv-pinf" if s is None else f"adv-pinf@{s:g}"
        rows.append(_row(claim, f"{where} − plain", "clean", stats, verdict_not_worse(stats.lo, stats.hi),
                         "at the training ε" if s == train_eps else "at the matched strength",
                         [] if s == train_eps else edges("adv-pinf")))
    claim = f"explicit penalty ≡ perturbed point to first order (equivalence, margin {100 * MARGIN:g} point)"
    # robust error under the ball each penalty's norm is dual to: ‖g‖₁ ↔ ℓ∞ (PGD), ‖g‖₂ ↔ ℓ2 (FGM)
    for exact, fd, attack in (("datagrad-l1", "datagrad-l1-fd", "pgd-linf"),
                              ("datagrad-l2", "datagrad-l2-fd", "fgm-l2")):
        if _missing(claim, (exact, fd), pts):
            rows += _missing(claim, (exact, fd), pts)
            continue
        for s in sorted(set(pts[exact]) & set(pts[fd])):
            for name in ("clean", swap.get(attack, attack)):
                stats = paired(pts[exact][s], pts[fd][s], "test", name)
                rows.append(_row(claim, f"{exact} − {fd} at β = {s:g}", name, stats,
                                 verdict_equivalent(stats.lo, stats.hi)))
    for exact, perturbed, attack in (("gp-q1", "adv-pinf", "pgd-linf"), ("gp-q2", "adv-p2", "fgm-l2"),
                                     ("datagrad-l1", "datagrad-l1-fd", "pgd-linf"),
                                     ("datagrad-l2", "datagrad-l2-fd", "fgm-l2")):
        if exact in pts and perturbed in pts:  # each at its best point for the clean budget
            for name in ("clean", swap.get(attack, attack)):
                stats = paired(at(exact), at(perturbed), "test", name)
                rows.append(_row(claim, f"{label(exact)} − {label(perturbed)}", name, stats,
                                 verdict_equivalent(stats.lo, stats.hi), "each at its matched strength",
                                 edges(exact, perturbed)))
    return rows
