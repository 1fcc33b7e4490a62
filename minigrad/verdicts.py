"""The statistics of a sweep: per-point summaries, the strength chosen for a clean-error budget, and
a verdict on each empirical claim of the seed papers.  Pure functions of the cell records (the
dicts ``sweep.run_cell`` returns), so they can be tested on synthetic records with known answers.

Statistics.  Seeds are the unit of replication: every cell with the same seed shares the network's
initialisation and the example order, and all cells share the validation and test sets, so two
members are compared **paired over seeds**: d_s = error_A(s) − error_B(s) for each seed s where both
finished, and the 95% interval is the paired t interval  mean(d) ± t(0.975, n−1)·sd(d)/√n.
A single mean (the matched table) gets the one-sample t interval the same way.  With one seed
there is no interval and every verdict is "cannot tell".

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

MARGIN = 0.01  # 1 percentage point: the equivalence and non-inferiority margin
HOLDS, FAILS, UNSURE = "holds", "does not hold", "cannot tell"

# t(0.975, df) for df = 1..30; beyond, the normal quantile plus the usual 1/df correction.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(df: int) -> float:
    return _T975[df - 1] if df <= 30 else 1.960 + 2.4 / df


def interval(values) -> tuple:
    """(mean, lo, hi, n) of the 95% t interval of the mean; lo = hi = nan when n < 2."""
    v = [float(x) for x in values]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = sum(v) / n
    if n < 2:
        return mean, math.nan, math.nan, n
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, n


def verdict_less(lo: float, hi: float) -> str:
    if math.isnan(lo):
        return UNSURE
    return HOLDS if hi < 0 else FAILS if lo > 0 else UNSURE


def verdict_equivalent(lo: float, hi: float, margin: float = MARGIN) -> str:
    if math.isnan(lo):
        return UNSURE
    return HOLDS if -margin <= lo and hi <= margin else FAILS if lo > margin or hi < -margin else UNSURE


def verdict_not_worse(lo: float, hi: float, margin: float = MARGIN) -> str:
    if math.isnan(lo):
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


def ok(record: dict) -> bool:
    return record.get("status") == "ok"


def points(records) -> dict:
    """{member: {strength: [records sorted by seed]}} (strength None for a member with no knob)."""
    table = defaultdict(lambda: defaultdict(list))
    for r in records:
        c = r["config"]
        table[c["member"]][c["strength"]].append(r)
    return {m: {s: sorted(rs, key=lambda r: r["config"]["seed"]) for s, rs in by.items()} for m, by in table.items()}


def summary(cells: list, split: str, name: str) -> tuple:
    """(mean, lo, hi, n) of ``name`` on ``split`` over the finished seeds of one point."""
    return interval(metric(r, split, name) for r in cells if ok(r))


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


def choose(by_strength: dict, budget: float, robust: str = "pgd-linf") -> tuple:
    """The strength chosen on validation: among the strengths whose every seed finished and whose mean
    validation clean error is within ``budget``, the lowest mean validation ``robust`` error (ties: lower
    clean error, then the smaller strength).  Returns (strength, within_budget); with none within the
    budget, the finished strength of lowest validation clean error, marked (…, False); (None, False) if
    no strength finished at all."""
    finished = {s: cells for s, cells in by_strength.items() if cells and all(ok(r) for r in cells)}
    if not finished:
        return None, False

    def key(s):
        return (summary(finished[s], "valid", robust)[0], summary(finished[s], "valid", "clean")[0],
                -math.inf if s is None else s)
    inside = [s for s in finished if summary(finished[s], "valid", "clean")[0] <= budget + 1e-12]
    if inside:
        return min(inside, key=key), True
    return min(finished, key=lambda s: (summary(finished[s], "valid", "clean")[0], key(s))), False


def plain_budget(pts: dict, extra: float) -> float:
    """The default clean budget: plain's mean validation error plus ``extra`` (a fraction)."""
    cells = next(iter(pts.get("plain", {}).values()), [])
    mean = summary(cells, "valid", "clean")[0] if any(ok(r) for r in cells) else math.nan
    return mean + extra


def matched(pts: dict, budget: float) -> dict:
    """{member: (strength, within_budget)} chosen on validation for the clean budget."""
    return {m: choose(by, budget) for m, by in pts.items()}


def paired(a_cells: list, b_cells: list, split: str, name: str) -> tuple:
    """Paired t interval of error_A − error_B over the seeds where both finished."""
    b_by_seed = {r["config"]["seed"]: r for r in b_cells if ok(r)}
    diffs = [metric(r, split, name) - metric(b_by_seed[r["config"]["seed"]], split, name)
             for r in a_cells if ok(r) and r["config"]["seed"] in b_by_seed]
    return interval(diffs)


# --- the claims of the seed papers ---------------------------------------------------------------
ATTACK_OF_BALL = {"adv-pinf": "pgd-linf", "adv-p2": "fgm-l2", "adv-p1": "fgm-l1"}
METRIC_NAMES = {"clean": "clean", "fgsm": "FGSM", "pgd-linf": "PGD-ℓ∞", "fgm-l2": "FGM-ℓ2", "fgm-l1": "FGM-ℓ1"}


def _row(claim, comparison, name, stats, verdict, note=""):
    mean, lo, hi, n = stats
    return {"claim": claim, "comparison": comparison, "metric": name, "mean": mean, "lo": lo, "hi": hi, "n": n,
            "verdict": verdict, "note": note}


def _missing(claim, members, pts):
    absent = [m for m in members if m not in pts]
    return [_row(claim, " vs ".join(members), "", (math.nan,) * 3 + (0,), UNSURE,
                 f"not measured: {', '.join(absent)} not in this sweep")] if absent else []


def claims(pts: dict, chosen: dict, train_eps: float) -> list:
    """Every claim as rows (claim, comparison, metric, paired effect A − B on test with its interval,
    verdict).  Members are compared at their strengths chosen on validation (``chosen``), except where
    a claim names a setting (adversarial training's cost is measured at the training ε)."""
    def at(m):
        return pts[m].get(chosen[m][0], [])

    def label(m):
        s = chosen[m][0]
        return m if s is None else f"{m}@{s:g}"
    rows = []
    claim = "DataGrad-L1/-L2 beat L1 and L2 weight decay and multitask on clean and adversarial error"
    for a in ("datagrad-l1", "datagrad-l2"):
        for b in ("l1", "l2", "multitask"):
            if _missing(claim, (a, b), pts):
                rows += _missing(claim, (a, b), pts)
                continue
            for name in ("clean", "fgsm", "pgd-linf"):
                stats = paired(at(a), at(b), "test", name)
                rows.append(_row(claim, f"{label(a)} − {label(b)}", name, stats, verdict_less(*stats[1:3])))
    claim = "multitask + DataGrad is the most robust"
    me = "multitask+datagrad"
    if me not in pts or len(pts) < 2:
        rows += _missing(claim, (me, "another member"), pts) or [_row(claim, me, "", (math.nan,) * 3 + (0,),
                                                                      UNSURE, "no other member")]
    else:
        for name in ("fgsm", "pgd-linf"):
            pairs = {m: paired(at(me), at(m), "test", name) for m in pts if m != me}
            verdicts = [verdict_less(s[1], s[2]) for s in pairs.values()]
            overall = FAILS if FAILS in verdicts else HOLDS if verdicts and all(v == HOLDS for v in verdicts) \
                else UNSURE
            rival = max(pairs, key=lambda m: pairs[m][0])  # the closest competitor: largest A − B
            rows.append(_row(claim, f"{label(me)} − {label(rival)} (closest of {len(pairs)})", name, pairs[rival],
                             overall, "holds only if it beats every member"))
    claim = "adversarial training with p = 1, 2, ∞ improves robustness over plain, each under its own ball"
    for m, attack in ATTACK_OF_BALL.items():
        if _missing(claim, (m, "plain"), pts):
            rows += _missing(claim, (m, "plain"), pts)
            continue
        stats = paired(at(m), at("plain"), "test", attack)
        rows.append(_row(claim, f"{label(m)} − plain", attack, stats, verdict_less(*stats[1:3])))
    claim = "each p defends its own ball best"
    present = [m for m in ATTACK_OF_BALL if m in pts]
    for m in present if len(present) > 1 else []:
        attack = ATTACK_OF_BALL[m]
        pairs = {o: paired(at(m), at(o), "test", attack) for o in present if o != m}
        verdicts = [verdict_less(s[1], s[2]) for s in pairs.values()]
        overall = FAILS if FAILS in verdicts else HOLDS if all(v == HOLDS for v in verdicts) else UNSURE
        rival = max(pairs, key=lambda o: pairs[o][0])
        rows.append(_row(claim, f"{label(m)} − {label(rival)}", attack, pairs[rival], overall))
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
        rows.append(_row(claim, f"{where} − plain", "clean", stats, verdict_not_worse(*stats[1:3]),
                         "at the training ε" if s == train_eps else "at the matched strength"))
    claim = f"explicit penalty ≡ perturbed point to first order (equivalence, margin {100 * MARGIN:g} point)"
    # robust error under the ball each penalty's norm is dual to: ‖g‖₁ ↔ ℓ∞ (PGD), ‖g‖₂ ↔ ℓ2 (FGM)
    for exact, fd, attack in (("datagrad-l1", "datagrad-l1-fd", "pgd-linf"),
                              ("datagrad-l2", "datagrad-l2-fd", "fgm-l2")):
        if _missing(claim, (exact, fd), pts):
            rows += _missing(claim, (exact, fd), pts)
            continue
        for s in sorted(set(pts[exact]) & set(pts[fd])):
            for name in ("clean", attack):
                stats = paired(pts[exact][s], pts[fd][s], "test", name)
                rows.append(_row(claim, f"{exact} − {fd} at β = {s:g}", name, stats,
                                 verdict_equivalent(*stats[1:3])))
    for exact, perturbed, attack in (("gp-q1", "adv-pinf", "pgd-linf"), ("gp-q2", "adv-p2", "fgm-l2"),
                                     ("datagrad-l1", "datagrad-l1-fd", "pgd-linf"),
                                     ("datagrad-l2", "datagrad-l2-fd", "fgm-l2")):
        if exact in pts and perturbed in pts:  # each at its best point for the clean budget
            for name in ("clean", attack):
                stats = paired(at(exact), at(perturbed), "test", name)
                rows.append(_row(claim, f"{label(exact)} − {label(perturbed)}", name, stats,
                                 verdict_equivalent(*stats[1:3]), "each at its matched strength"))
    return rows


# --- tables ------------------------------------------------------------------------------------------
def _pct(mean, lo=math.nan, hi=math.nan) -> str:
    if math.isnan(mean):
        return "—"
    if math.isnan(lo):
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} ± {100 * (hi - lo) / 2:.2f}"


def _health_note(h: dict) -> str:
    notes = []
    if h["failed"]:
        notes.append(f"**diverged/failed {h['failed']}/{h['n']}**")
    if h["unstable"]:
        notes.append(f"unstable {h['unstable']}/{h['n']}")
    return ", ".join(notes)


def matched_markdown(pts: dict, chosen: dict, budget: float, knobs: dict) -> str:
    head = ("| member | strength (chosen on validation) | valid clean % | test clean % | test FGSM % | "
            "test PGD-ℓ∞ % | seeds | notes |\n|---|---|---|---|---|---|---|---|")
    rows = []
    for m, (s, inside) in chosen.items():
        if s is None and m != "plain":
            cells = [r for rs in pts[m].values() for r in rs]
            rows.append(f"| {m} | — | — | — | — | — | 0/{len(cells)} | "
                        "**every strength diverged or failed** |")
            continue
        cells, h = pts[m][s], health(pts[m][s])
        note = ", ".join(filter(None, [_health_note(h), "" if inside else "**over the budget**: the lowest "
                                       "validation clean error is shown"]))
        strength = "—" if s is None else f"{knobs.get(m) or 'strength'} = {s:g}"
        rows.append(f"| {m} | {strength} | {_pct(summary(cells, 'valid', 'clean')[0])} | "
                    + " | ".join(_pct(*summary(cells, "test", n)[:3]) for n in ("clean", "fgsm", "pgd-linf"))
                    + f" | {h['ok']}/{h['n']} | {note} |")
    return head + "\n" + "\n".join(rows) + f"\n\nClean-error budget on validation: {100 * budget:.2f} %."


def verdicts_markdown(rows: list) -> str:
    out, last = [], None
    for r in rows:
        if r["claim"] != last:
            out += ["", f"### {r['claim']}", "",
                    "| comparison (A − B) | error | effect, points | 95% interval | seeds | verdict | note |",
                    "|---|---|---|---|---|---|---|"]
            last = r["claim"]
        effect = "—" if math.isnan(r["mean"]) else f"{100 * r['mean']:+.2f}"
        ci = "—" if math.isnan(r["lo"]) else f"[{100 * r['lo']:+.2f}, {100 * r['hi']:+.2f}]"
        out.append(f"| {r['comparison']} | {METRIC_NAMES.get(r['metric'], r['metric'])} | {effect} | {ci} | "
                   f"{r['n']} | **{r['verdict']}** | {r['note']} |")
    return "\n".join(out).strip() + "\n"


def stability_markdown(pts: dict) -> str:
    rows = ["| member | strength | finished | unstable | diverged or failed |", "|---|---|---|---|---|"]
    for m, by in pts.items():
        for s in sorted(by, key=lambda v: -math.inf if v is None else v):
            h = health(by[s])
            rows.append(f"| {m} | {'—' if s is None else f'{s:g}'} | {h['ok']}/{h['n']} | {h['unstable']} | "
                        f"{h['failed']} |")
    return "\n".join(rows)
