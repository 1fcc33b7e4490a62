"""What a sweep shows a person: progress over cells while it runs, then matched.md, verdicts.md and
frontier.png once its cells are in (see ``sweep``)."""
from __future__ import annotations

import json
import math
import time

from . import evaluation as E
from . import optional, plots
from . import verdicts as V
from .checkpoint import write_atomically

ROBUST = ("fgsm", "pgd-linf")


def describe(c: dict) -> str:
    """'member knob=strength seed s', the cell as a person names it."""
    strength = "" if c["strength"] is None else f" {c['knob']}={c['strength']:g}"
    return f"{c['member']}{strength} seed {c['seed']}"


class CellBar:
    """Progress over cells: done / running / failed and time left; tqdm's bar on a terminal, one
    line per finished cell elsewhere (a log, CI)."""

    def __init__(self, total: int, workers: int, stream):
        self.total, self.workers, self.stream, self.done, self.failed = total, workers, stream, 0, 0
        self.start, self.bar = time.perf_counter(), None
        if stream is not None and getattr(stream, "isatty", lambda: False)():
            tqdm = optional.maybe("tqdm")
            self.bar = tqdm.tqdm(total=total, file=stream, unit="cell") if tqdm and total else None

    def update(self, record: dict):
        self.done += 1
        self.failed += record["status"] != "ok"
        what = describe(record["config"])
        state = f"done {self.done}, running {min(self.workers, self.total - self.done)}, failed {self.failed}"
        if record["status"] != "ok" and self.stream is not None:
            message = f"cell {what}: {record['status']}: {record.get('error', '')[:300]}"
            self.bar.write(message, file=self.stream) if self.bar is not None else self.stream.write(message + "\n")
        if self.bar is not None:
            self.bar.set_postfix_str(state, refresh=False)
            self.bar.update(1)
        elif self.stream is not None:
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.done * (self.total - self.done)
            self.stream.write(f"[{self.done}/{self.total}] {what}: {record['status']} in {record['seconds']:.1f} s"
                              f" | {state} | {elapsed:.0f} s elapsed, ~{left:.0f} s left\n")
            self.stream.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def frontier_series(pts: dict, knobs: dict | None = None, chosen: dict | None = None, budget: float = math.inf,
                    grids: dict | None = None) -> list:
    """One series per member: strengths in order, and per strength the mean and standard error (seeds and
    test examples, ``verdicts.summary``) of the test clean and robust errors, with the point's health;
    ``chosen`` (member → verdicts.Choice) marks the matched point ("chosen", its index, and "edge"),
    ``budget`` the points whose validation clean error is over it ("over"), ``grids`` (member → the
    strengths planned before any extension) the points added beyond them ("added").  Members whose results
    are identical at every strength are one series named "a = b"."""
    def stats(cells, name):
        e = V.summary(cells, "test", name)
        return e.mean, 0.0 if math.isnan(e.se) else e.se
    knobs, chosen, grids, groups = knobs or {}, chosen or {}, grids or {}, {}
    for m, by in pts.items():
        name = m if knobs.get(m) is None else f"{m} ({knobs[m]})"
        order = sorted(by, key=lambda s: -math.inf if s is None else s)
        fingerprint = json.dumps([[_outcome(r) for r in by[s]] for s in order], sort_keys=True)
        pick = chosen.get(m)
        valid = [V.summary(by[s], "valid", "clean").mean for s in order]
        series = {"label": name, "members": [m], "strengths": order, "health": [V.health(by[s]) for s in order],
                  **{name: [stats(by[s], name) for s in order] for name in ("clean",) + ROBUST},
                  "chosen": order.index(pick.strength) if pick and pick.strength in by else None,
                  "edge": pick.edge if pick else "", "over": [v > budget + 1e-12 for v in valid],
                  "added": [m in grids and s not in grids[m] for s in order]}
        if fingerprint in groups:
            groups[fingerprint]["members"].append(m)
            groups[fingerprint]["label"] += f" = {name}"
        else:
            groups[fingerprint] = series
    return list(groups.values())


def _outcome(record: dict):
    """What a cell measured (its status, curve and errors), without the objective's name."""
    result = record.get("result") or {}
    return [record.get("status"), {k: v for k, v in result.items() if k != "objective"}]


def coincidences(pts: dict, series: list = ()) -> list:
    """'a@s ≡ b@t' for points of different members whose every seed's result is identical (e.g.
    adv-pinf at ε = 0.1 and datagrad-l1-fd at β = 0.05, science page §4 claim 5), except between members
    already drawn as one ``series``."""
    group = {m: i for i, s in enumerate(series) for m in s["members"]}
    seen, notes = {}, []
    for m, by in pts.items():
        for s, cells in by.items():
            if not cells or not all(V.ok(r) for r in cells):
                continue
            key = json.dumps([[r["config"]["seed"], r["result"]["test"]] for r in cells], sort_keys=True)
            label = m if s is None else f"{m}@{s:g}"
            if key in seen and seen[key][0] != m and group.get(seen[key][0], -1) != group.get(m, -2):
                notes.append(f"{seen[key][1]} ≡ {label}")
            seen.setdefault(key, (m, label))
    return notes


def write_reports(out, records: list, command: str, clean_budget, eps: float, n_features: int, knobs: dict,
                  grids: dict | None = None, suite: str = "fast") -> list:
    """Write matched.md, verdicts.md and frontier.png for the sweep ``command`` (as typed);
    ``clean_budget``: percent, or None for plain's + 1 point; ``eps``: the ℓ∞ training budget;
    ``knobs``: member → the name of its strength; ``grids``: member → the strengths planned before the
    grid was extended (its added points are marked); ``suite`` 'strong': the cells hold the strong suite's
    ℓ∞ error, shown beside PGD-10's with its masking flags, and every verdict is drawn under both."""
    pts = V.points(records)
    budget, how = V.clean_budget(pts, clean_budget)
    chosen = V.matched(pts, budget)
    ok_records = [r for r in records if V.ok(r)]
    seeds = max((len(c) for by in pts.values() for c in by.values()), default=0)
    b = records[0]["config"]["budgets"] if records else {}
    setting = (f"Test errors in percent, mean ± half-width of the {V.RULE}, over {seeds} seeds (paired seeds "
               f"share the initialisation and example order) and the {V.n_examples(ok_records, 'test')} test "
               f"examples.  Robust errors at the training budgets: FGSM and PGD-ℓ∞ "
               f"ε = {b.get('fgsm')}, FGM-ℓ2 ε₂ = {b.get('fgm-l2')}, FGM-ℓ1 ε₁ = {b.get('fgm-l1')} "
               f"(D = {n_features}).  "
               "Each run reports the epoch of lowest validation error.  Unstable: some epoch's training loss "
               "above 5 × the lowest earlier epoch loss + 0.5 nats.")
    matched = (f"# Members at a matched clean-error budget\n\n```\n{command}\n```\n\n{setting}\n\n"
               f"Strength chosen on validation: among the strengths where every seed finished and the mean "
               f"validation clean error is within the budget ({how}), the lowest mean validation PGD-ℓ∞ error.  "
               f"Reported on test.\n\n{matched_markdown(pts, chosen, budget, knobs)}\n")
    strong = suite == "strong" and any("strong" in r["result"]["test"] for r in ok_records)
    if strong:
        matched += f"\n## The strong suite beside PGD-10\n\n{strong_markdown(pts, chosen, records)}\n"
    rows = V.claims(pts, chosen, eps)
    verdicts = (f"# Verdicts on the seed papers' claims\n\n```\n{command}\n```\n\n{setting}\n\n"
                "Effect = error of A − error of B on test, in points, paired over seeds and test examples, "
                "with its 95% interval: mean(d) ± √(t(0.975, n − 1)²·V_seed + t(0.975, N − 1)²·V_test), "
                "V_seed = var over the n seeds of the per-seed difference / n, V_test = var over the N test "
                "examples of the seed-averaged per-example difference / N (McNemar's variance for one seed) "
                "(``minigrad.verdicts``).  Cells without per-example outcomes: V_test binomial, "
                "(ē_A(1 − ē_A) + ē_B(1 − ē_B))/N (their rows say so).  No verdict from a zero-width interval or "
                "from a member chosen at the edge of its grid (**at the edge**: cannot tell).  A beats B: holds if "
                "the interval is below 0, does not hold if above 0, cannot tell "
                f"otherwise.  Equivalence: holds if the interval lies within ±{100 * V.MARGIN:g} point, does not "
                f"hold if it lies outside.  Non-inferiority: holds if the upper end is ≤ {100 * V.MARGIN:g} point, "
                f"does not hold if the lower end is above it.  Members are at their matched strengths "
                f"(matched.md) unless a row says otherwise.\n\n"
                + (f"## Under the strong suite, side by side with the fast suite (FGSM, PGD-10, FGM)\n\n"
                   f"{side_by_side_markdown(rows, V.claims(pts, chosen, eps, V.STRONG_METRICS))}\n"
                   f"## Every verdict under the fast suite\n" if strong else "")
                + f"{verdicts_markdown(rows)}\n"
                f"## Stability of every point\n\n{stability_markdown(pts)}\n")
    written = []
    for name, text in (("matched.md", matched), ("verdicts.md", verdicts)):
        write_atomically(out / name, lambda f, t=text: f.write(t.encode()))
        written.append(name)
    plt = plots.pyplot()
    if plt is not None and records:
        series = frontier_series(pts, knobs, chosen, budget, grids)
        written.append(plots.frontier(plt, series, coincidences(pts, series), b, str(out)))
    return written


# --- the tables ----------------------------------------------------------------------------------
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
    head = ("| member | strength (chosen on validation) | valid clean % | test clean % ± 95% | test FGSM % ± 95% | "
            "test PGD-ℓ∞ % ± 95% | seeds | notes |\n|---|---|---|---|---|---|---|---|")
    rows, binomial = [], False
    for m, (s, inside, edge) in chosen.items():
        if s is None and m != "plain":
            cells = [r for rs in pts[m].values() for r in rs]
            rows.append(f"| {m} | — | — | — | — | — | 0/{len(cells)} | "
                        "**every strength diverged or failed** |")
            continue
        cells, h = pts[m][s], V.health(pts[m][s])
        test = [V.summary(cells, "test", n) for n in ("clean", "fgsm", "pgd-linf")]
        binomial |= any(e.test == "binomial" for e in test)
        note = ", ".join(filter(None, [_health_note(h), "" if inside else "**over the budget**: the lowest "
                                       "validation clean error is shown",
                                       f"**at the edge**: the {edge} of its grid" if edge else ""]))
        strength = "—" if s is None else f"{knobs.get(m) or 'strength'} = {s:g}"
        rows.append(f"| {m} | {strength} | {_pct(V.summary(cells, 'valid', 'clean').mean)} | "
                    + " | ".join(_pct(e.mean, e.lo, e.hi) for e in test) + f" | {h['ok']}/{h['n']} | {note} |")
    return (head + "\n" + "\n".join(rows) + f"\n\n± : half-width of the {V.RULE}."
            + (" Cells recorded without per-example outcomes: the test-set term is binomial, ē(1 − ē)/N."
               if binomial else "") + f"\n\nClean-error budget on validation: {100 * budget:.2f} %.")


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
        out.append(f"| {r['comparison']} | {V.METRIC_NAMES.get(r['metric'], r['metric'])} | {effect} | {ci} | "
                   f"{r['n']} | **{r['verdict']}** | {r['note']} |")
    return "\n".join(out).strip() + "\n"


def stability_markdown(pts: dict) -> str:
    rows = ["| member | strength | finished | unstable | diverged or failed |", "|---|---|---|---|---|"]
    for m, by in pts.items():
        for s in sorted(by, key=lambda v: -math.inf if v is None else v):
            h = V.health(by[s])
            rows.append(f"| {m} | {'—' if s is None else f'{s:g}'} | {h['ok']}/{h['n']} | {h['unstable']} | "
                        f"{h['failed']} |")
    return "\n".join(rows)


def strong_markdown(pts: dict, chosen: dict, records: list) -> str:
    """Each chosen member's test error under the strong suite (ℓ∞, the training ε) beside PGD-10's, the gap,
    and the masking flags its cells raised (``evaluation.flags_from``)."""
    suite = next((r["result"]["test"]["strong"] for r in records if V.ok(r) and "strong" in r["result"]["test"]), {})
    cfg = suite.get("settings", {})
    rows = ["| member | PGD-10 % ± 95% | strong % ± 95% | strong − PGD-10, points | masking flags (cells) |",
            "|---|---|---|---|---|"]
    for m, choice in chosen.items():
        cells = [r for r in pts[m].get(choice.strength, []) if V.ok(r) and "strong" in r["result"]["test"]]
        if not cells:
            continue
        pgd, strong = V.summary(cells, "test", "pgd-linf"), V.summary(cells, "test", "strong-linf")
        flagged = {}
        for r in cells:
            t = r["result"]["test"]
            for f in E.flags_from(t["strong"], V.metric(r, "test", "fgsm"), V.metric(r, "test", "pgd-linf"))["flagged"]:
                flagged[f] = flagged.get(f, 0) + 1
        rows.append(f"| {m} | {_pct(pgd.mean, pgd.lo, pgd.hi)} | {_pct(strong.mean, strong.lo, strong.hi)} | "
                    f"{100 * (strong.mean - pgd.mean):+.2f} | "
                    + (", ".join(f"{f} ({k}/{len(cells)})" for f, k in flagged.items()) or "none") + " |")
    return ("\n".join(rows) + f"\n\nStrong suite (``minigrad.robust``), ℓ∞ at ε = {suite.get('eps')}, on all "
            f"{suite.get('n')} test examples, attacks in cascade: APGD-CE and APGD-T (DLR, {cfg.get('n_targets')} "
            f"targets) with {cfg.get('steps')} steps × {cfg.get('apgd_restarts')} restart, PGD on the cross-entropy "
            f"and on the margin with {cfg.get('steps')} steps × {cfg.get('restarts')} restarts and a random start, "
            f"Square with {cfg.get('queries')} queries.  Flags computed per cell: black box adds (Square fools more "
            "than 1 % of the examples every gradient attack failed on), one step beats iterative (FGSM above "
            "PGD-10 by more than 1 point), zero input gradient (on more than 1 % of the examples); the large-budget "
            "and not-converged flags need more attacks (`compare` computes all five).")


def side_by_side_markdown(fast: list, strong: list) -> str:
    """Each verdict under the fast suite and under the strong suite, and whether it survives or flips."""
    rows = ["| claim | comparison | fast: error, effect, verdict | strong: error, effect, verdict | |",
            "|---|---|---|---|---|"]
    for a, b in zip(fast, strong):
        if a["metric"] == b["metric"]:
            continue  # clean error, or an attack with no strong counterpart: the same row twice
        def cell(r):
            effect = "—" if math.isnan(r["mean"]) else f"{100 * r['mean']:+.2f}"
            return f"{V.METRIC_NAMES.get(r['metric'], r['metric'])} {effect}, **{r['verdict']}**"
        change = "survives" if a["verdict"] == b["verdict"] else "**flips**"
        rows.append(f"| {a['claim']} | {b['comparison']} | {cell(a)} | {cell(b)} | {change} |")
    return "\n".join(rows)
