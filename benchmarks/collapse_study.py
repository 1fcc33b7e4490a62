"""The collapse study (issue 24, item 4): which signals move before the training loss, and which remedy works.

Reads the ``results.json`` of ``python -m minigrad compare --diagnostics N`` runs (one directory per seed; the
commands are in RESULTS.md, "The collapse, explained") and prints three tables, computed only from the
recorded per-epoch curves and the final test errors:

1. **Lead times**, one row per collapsed run: the epoch the training loss moved, the epoch each signal moved,
   and its lead over the loss (loss epoch − signal epoch; > 0: the signal moved first) and over the
   collapse (collapse epoch − signal epoch).
2. **False alarms**: in the runs that did not collapse, how many times each signal moved anyway.
3. **Remedies**, one row per (member, strengths) over its seeds: how many seeds collapsed, and the final
   model's clean, FGSM and PGD-ℓ∞ test error at the training ε (where compare's attack grid has it: 0.05,
   0.1, 0.2) and the probe's PGD error at the training ε after the last epoch, mean with a 95 % interval.

The rules, fixed before the runs were read (the defaults of the flags):

- A series s₁ … s_T (one value per epoch) **moves** at the first epoch t > ``--history`` (3) at which s_t
  leaves the range of all its earlier values by more than ``--factor`` (1) times that range's width:
  s_t > hi + c·(hi − lo) or s_t < lo − c·(hi − lo), lo and hi the min and max of s₁ … s_{t−1}.  A steady
  trend never moves (each step is smaller than the range it has already covered); a jump does, and so does
  geometric growth of ×2 an epoch or more (×1.62, the golden ratio, at the first epoch tested).  Applied alike to the training loss and to every signal, in either
  direction.  The training loss is the mean over the epoch's steps; the signals are measured on the probe
  after the epoch's last step, so a lead of 0 means "the same epoch", not "earlier".  A run with a warm-up
  (``--warmup-epochs E``) is read from epoch E + 1 on (the range starts there, the first move can come at
  E + 1 + ``--history``): during the ramp its loss is another objective's, and rises by design.  (This
  clause was added after the first warm-up run, whose ramp the rule had called a move at epoch 4.)
- A run **collapsed** if (a) its loss is unstable, the project's rule (``verdicts.unstable``: some epoch's
  loss above 5 × the lowest earlier one + 0.5 nats; that epoch is the collapse epoch), or (b) it overfits
  catastrophically: at some epoch the probe's PGD error exceeds its FGSM error by more than ``--co-gap``
  (20 points), the one-step attack no longer finding what the iterative one finds (Wong et al. 2020).
- Intervals: ``verdicts.estimate`` over the seeds with the binomial term of the test set (the t interval of
  the seeds and the test set's sampling, added in quadrature; RESULTS.md's rule for the sweeps).  A paired
  difference against ``--against`` (a group label) is per seed, with both members' binomial terms.

    python benchmarks/collapse_study.py runs/collapse/penalty-x3-s0 runs/collapse/penalty-x3-s1 ...
    python benchmarks/collapse_study.py runs/collapse/co-e0.1-s0 --figure signals.png   # + the figure of them
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minigrad.verdicts import estimate, unstable  # noqa: E402

SIGNALS = ("cosine", "linearity", "curvature", "fgsm_error", "pgd_error")


def moved(series, factor: float = 1.0, history: int = 3, start: int = 0):
    """(epoch, '+' or '−') of the first epoch (1-based) that leaves the range of the earlier ones by more than
    ``factor`` × its width, testing only epochs after the first ``history``; None if it never does.
    ``start``: ignore the first ``start`` epochs altogether (a warm-up's ramp)."""
    s = [float(v) for v in series]
    for t in range(start + history, len(s)):
        lo, hi = min(s[start:t]), max(s[start:t])
        width = hi - lo
        if not math.isfinite(s[t]) or s[t] > hi + factor * width:
            return t + 1, "+"
        if s[t] < lo - factor * width:
            return t + 1, "−"
    return None


def unstable_epoch(losses):
    """The first epoch (1-based) whose loss exceeds 5 × the lowest earlier one + 0.5 (``verdicts.unstable``)."""
    for t in range(1, len(losses) + 1):
        if unstable(losses[:t]):
            return t
    return None


def co_epoch(diagnostics, gap: float = 0.2):
    """The first epoch (1-based) at which the probe's PGD error exceeds its FGSM error by more than ``gap``."""
    for t, d in enumerate(diagnostics, start=1):
        if d and d["pgd_error"] - d["fgsm_error"] > gap:
            return t
    return None


def load(dirs, members=None) -> list:
    """One dict per (directory, member): its run's settings and curves (``members``: only those)."""
    missing = [str(d) for d in dirs if not (pathlib.Path(d) / "results.json").is_file()]
    if missing:  # one line, before any run is read
        raise SystemExit(f"collapse_study: no results.json in {', '.join(missing)} (give compare --out directories)")
    runs = []
    for d in dirs:
        data = json.loads((pathlib.Path(d) / "results.json").read_text())
        config = data["meta"]["config"]
        for r in data["results"]:
            if members and r["member"] not in members:
                continue
            if not r.get("diagnostics"):
                raise SystemExit(f"{d}: {r['member']} has no diagnostics (run compare with --diagnostics N)")
            # the objective names the member's own strengths; the others in config["strengths"] do not matter
            setting = {k: v for k, v in config.items() if k not in ("seed", "n_train", "n_test", "strengths")}
            runs.append({"dir": str(d), "member": r["member"], "objective": r["objective"], "seed": config["seed"],
                         "eps": data["meta"]["strengths"]["eps"], "n_test": data["meta"]["n_test"],
                         "warmup": config.get("warmup", 0),
                         "setting": json.dumps({**setting, "member": r["member"]}, sort_keys=True),
                         "loss": r["train_loss"], "diagnostics": r["diagnostics"], "clean": r["clean_error"],
                         "attacks": r["attacks"]})
    _label(runs)
    return runs


def _label(runs):
    """Each run's group label: its objective, plus whatever else of its settings tells apart groups that
    share the objective (e.g. a warm-up, the epochs)."""
    settings = {}
    for r in runs:
        settings.setdefault(r["objective"], {}).setdefault(r["setting"], json.loads(r["setting"]))
    for r in runs:
        groups = list(settings[r["objective"]].values())
        mine = json.loads(r["setting"])
        differ = sorted(k for k in mine if any(json.dumps(g.get(k), sort_keys=True)
                                               != json.dumps(mine[k], sort_keys=True) for g in groups))
        extra = ", ".join(f"{k}={json.dumps(mine[k], sort_keys=True)}" for k in differ)
        fgsm = r["member"] == "gradalign" and r["objective"].endswith(",lam=0)")  # GradAlign's baseline
        r["label"] = ("FGSM alone = " if fgsm else "") + r["objective"] + (f" [{extra}]" if extra else "")


def analyse(run: dict, factor: float, history: int, gap: float) -> dict:
    """The run's collapse (kind and epoch), the epoch its loss moved, and each signal's move."""
    loss_unstable, co = unstable_epoch(run["loss"]), co_epoch(run["diagnostics"], gap)
    kind = "loss" if loss_unstable else "CO" if co else None
    start = run.get("warmup", 0)
    out = {"collapsed": kind, "collapse_epoch": loss_unstable or co,
           "loss_move": moved(run["loss"], factor, history, start)}
    for s in SIGNALS:
        out[s] = moved([d[s] for d in run["diagnostics"]], factor, history, start)
    return out


def _epoch(m) -> str:
    return "—" if m is None else f"{m[0]}{m[1]}"


def lead_table(runs, factor, history, gap) -> str:
    head = ("| run | seed | collapse (epoch) | loss moved | " + " | ".join(f"{s} (lead: loss / collapse)" for s in SIGNALS)
            + " |\n"
            + "|---" * (4 + len(SIGNALS)) + "|")
    rows = []
    for r in runs:
        a = analyse(r, factor, history, gap)
        if not a["collapsed"]:
            continue
        cells = []
        for s in SIGNALS:
            if a[s] is None:
                cells.append("—")
            else:
                over_loss = "n/a" if a["loss_move"] is None else f"{a['loss_move'][0] - a[s][0]:+d}"
                cells.append(f"{_epoch(a[s])} ({over_loss} / {a['collapse_epoch'] - a[s][0]:+d})")
        rows.append(f"| {r['label']} | {r['seed']} | {a['collapsed']} ({a['collapse_epoch']}) | "
                    f"{_epoch(a['loss_move'])} | " + " | ".join(cells) + " |")
    return head + "\n" + ("\n".join(rows) if rows else "| no run collapsed |" + " |" * (3 + len(SIGNALS)))


def summary_table(runs, factor, history, gap) -> str:
    """Per signal: in collapsed runs, how often it moved strictly before the loss and its leads; in the others,
    how often it moved at all (a false alarm)."""
    analysed = [analyse(r, factor, history, gap) for r in runs]
    hit = [a for a in analysed if a["collapsed"]]
    quiet = [a for a in analysed if not a["collapsed"]]
    lines = [f"| signal | moved before the loss ({len(hit)} collapsed runs) | leads over the loss | moved before "
             f"the collapse | leads over the collapse | moved without a collapse ({len(quiet)} runs) |",
             "|---|---|---|---|---|---|"]
    for s in ("loss",) + SIGNALS:
        key = "loss_move" if s == "loss" else s
        leads = [a["loss_move"][0] - a[key][0] for a in hit if a[key] is not None and a["loss_move"] is not None]
        ahead = [a["collapse_epoch"] - a[key][0] for a in hit if a[key] is not None]
        alarms = sum(a[key] is not None for a in quiet)
        lines.append(f"| {s} | {sum(v > 0 for v in leads)} of {len(hit)} | {', '.join(f'{v:+d}' for v in leads) or '—'} "
                     f"| {sum(v > 0 for v in ahead)} of {len(hit)} | {', '.join(f'{v:+d}' for v in ahead) or '—'} "
                     f"| {alarms} of {len(quiet)} |")
    return "\n".join(lines)


def _metrics(r) -> dict:
    eps = str(r["eps"])
    return {"clean": r["clean"], "fgsm": r["attacks"]["fgsm"].get(eps, math.nan),
            "pgd": r["attacks"]["pgd-linf"].get(eps, math.nan)}


def _fmt(e, signed: bool = False) -> str:
    """mean [lo, hi] in percent; the interval clipped to what an error (or a difference of two) can be."""
    f, low = ("+.1f", -1.0) if signed else (".1f", 0.0)
    if math.isnan(e.mean):
        return "—"
    if math.isnan(e.lo):
        return f"{100 * e.mean:{f}}"
    return f"{100 * e.mean:{f}} [{100 * max(e.lo, low):{f}}, {100 * min(e.hi, 1.0):{f}}]"


def r_probe(run) -> int:
    """The probe's size (compare's --diagnostics N)."""
    return int(json.loads(run["setting"])["diagnostics"])


def remedy_table(runs, factor, history, gap, against=None) -> str:
    groups = {}
    for r in runs:
        groups.setdefault(r["label"], []).append(r)
    lines = ["| member and strengths | seeds | collapsed (epoch per seed) | clean % | FGSM % at ε | PGD-ℓ∞ % at ε | "
             "probe PGD % at ε, last epoch | clean % per seed |" + (" Δclean vs ref | ΔPGD vs ref |" if against else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|---|" if against else "")]
    ref = {r["seed"]: _metrics(r) for r in groups.get(against, [])} if against else {}
    if against and not ref:
        raise SystemExit(f"--against {against!r}: no such group; the groups are {sorted(groups)}")
    for label, rs in groups.items():
        epochs = [analyse(r, factor, history, gap) for r in sorted(rs, key=lambda r: r["seed"])]
        collapsed = f"{sum(bool(a['collapsed']) for a in epochs)} of {len(rs)} (" + \
            ", ".join(str(a["collapse_epoch"]) if a["collapsed"] else "—" for a in epochs) + ")"
        cells = []
        for m in ("clean", "fgsm", "pgd"):
            v = [_metrics(r)[m] for r in rs]
            mean = float(np.mean(v))
            cells.append(_fmt(estimate(v, mean * (1 - mean) / rs[0]["n_test"], rs[0]["n_test"], "binomial")))
        per_seed = " / ".join(f"{100 * r['clean']:.1f}" for r in sorted(rs, key=lambda r: r["seed"]))
        probe = [r["diagnostics"][-1]["pgd_error"] for r in rs]  # the training probe, at the training ε
        cells.append(_fmt(estimate(probe, float(np.mean(probe)) * (1 - float(np.mean(probe))) / r_probe(rs[0]),
                                   r_probe(rs[0]), "binomial")))
        row = f"| {label} | {len(rs)} | {collapsed} | " + " | ".join(cells) + f" | {per_seed} |"
        if against:
            for m in ("clean", "pgd"):
                paired = [(_metrics(r)[m], ref[r["seed"]][m]) for r in rs if r["seed"] in ref]
                if not paired or label == against:
                    row += " — |"
                    continue
                a, b = np.array(paired).T
                var = (a.mean() * (1 - a.mean()) + b.mean() * (1 - b.mean())) / rs[0]["n_test"]
                row += f" {_fmt(estimate(a - b, var, rs[0]['n_test'], 'binomial'), signed=True)} |"
        lines.append(row)
    return "\n".join(lines)


def figure(runs, path) -> None:
    """compare's signals figure (``plots.signals``), one line per run, named by its group and seed."""
    from minigrad import plots
    plt = plots.pyplot()
    if plt is None:
        raise SystemExit("--figure needs matplotlib")
    path = pathlib.Path(path)
    lines = [{"member": f"{r['label']}, seed {r['seed']}", "train_loss": r["loss"], "diagnostics": r["diagnostics"]}
             for r in runs]
    plots.signals(plt, lines, str(path.parent), path.name)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", help="compare --out directories (results.json), one per seed")
    p.add_argument("--factor", type=float, default=1.0, help="a move leaves the earlier range by > factor × its width")
    p.add_argument("--history", type=int, default=3, help="epochs before a move can be called")
    p.add_argument("--co-gap", type=float, default=0.2, help="catastrophic overfitting: probe PGD − FGSM error above this")
    p.add_argument("--against", default=None, help="a group label: paired differences against it, per seed")
    p.add_argument("--members", nargs="+", default=None, help="read only these members of each run")
    p.add_argument("--per-epoch", action="store_true", help="also print every run's loss and signals per epoch")
    p.add_argument("--figure", default=None, metavar="PNG", help="draw the runs' loss and signals per epoch there "
                   "(plots.signals, one line per run)")
    args = p.parse_args(argv)
    runs = load(args.dirs, args.members)
    rules = (args.factor, args.history, args.co_gap)
    print(f"Rules: a move leaves the range of the earlier epochs by > {args.factor:g} × its width, from epoch "
          f"{args.history + 1}; collapse = unstable loss (5·min + 0.5) or probe PGD − FGSM error > {args.co_gap:g}.\n")
    print("Lead times (epoch moved, + up / − down; lead = loss epoch − signal epoch):\n")
    print(lead_table(runs, *rules), "\n")
    print(summary_table(runs, *rules), "\n")
    print("Final models, test error at the training ε (95 % interval: seeds and the test set's binomial term, "
          "clipped to [0, 100]):\n")
    print(remedy_table(runs, *rules, against=args.against))
    if args.figure:
        figure(runs, args.figure)
    if args.per_epoch:
        for r in runs:
            print(f"\n{r['label']} seed {r['seed']} ({r['dir']})")
            print("epoch  loss      " + "  ".join(f"{s:>10}" for s in SIGNALS))
            for t, (loss, d) in enumerate(zip(r["loss"], r["diagnostics"]), start=1):
                print(f"{t:5d}  {loss:8.4g}  " + "  ".join(f"{d[s]:10.4g}" for s in SIGNALS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
