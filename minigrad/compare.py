"""``python -m minigrad compare``: the regularizer family side by side.

Trains the same Maxout network (same architecture, seed, optimiser, epochs, batch size) once per
member of the family, then evaluates each on the clean test set and under white-box attack: FGSM
(the fast gradient method for p = ∞), FGM for p = 2 and PGD for p = ∞, at several ε.

Nothing is lost.  Every flag is checked before the first member trains, and the output directory
is checked to be writable.  Each member's result is appended to ``results.jsonl`` (and its model
to ``models/<member>.npz``) as soon as it finishes, so a crash in member 12, or in the plots,
loses nothing; running the same command again with the same ``--out`` skips the members already
done (``--overwrite`` starts again; other settings in the same ``--out`` are refused).  At the end
it writes ``results.json`` (everything), ``results.md`` (the table, errors in percent),
``robustness.png`` (test error against ε, one line per member, one panel per attack; members with
identical results drawn as one line), ``perturbations.png`` (the closed-form worst case r* for
p = 1, 2, ∞ on a few test digits) and ``clean_vs_fgsm.png``.

Budgets.  Pixels lie in [0, 1].  ``--eps`` is the ℓ∞ training budget (default 0.1); the ℓ2 and
ℓ1 budgets default to ε·√D/2 and ε·√D (D pixels), so on 8×8 digits ε = 0.1 gives ε₂ = 0.4 and
ε₁ = 0.8.  ℓ2 attack radii scale the same way.  The penalty weights default to the values chosen on
the 64-pixel digits scaled by 64/D (``members.default_strengths``, the rule of the sweep's grids).
Every strength is a flag, and every value used is written to results.json.

``run(spec)`` takes a ``CompareSpec``; ``flags`` builds it from the command line.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import evaluation, plots
from .checkpoint import load_checkpoint, save_checkpoint, write_atomically
from .diagnostics import Diagnostics
from .errors import OutputError
from .members import Strengths, default_strengths, member
from .specs import DataSpec, ModelSpec, OptimSpec, RunSpec, as_dict, blas_threads, check_device, prepare_out
from .train import fit
from .warmup import WarmUp
from .verdicts import unstable

QUICK_MEMBERS = ("plain", "adv-pinf", "gp-q1", "datagrad-l1-fd", "multitask+datagrad")
LAYOUT = {"models": "dir", "results.jsonl": "file", "results.json": "file", "results.md": "file",
          "robustness.png": "file", "perturbations.png": "file", "clean_vs_fgsm.png": "file", "signals.png": "file"}  # checked before work


@dataclass(frozen=True)
class CompareSpec:
    """One compare run: every member in ``members`` trained on the same data, network, optimiser and
    seed, at the strengths ``default_strengths(D, **strengths)``, then evaluated on the attack grid
    (``evaluation.attack_grid``, one budget per attack when ``quick``)."""
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    optim: OptimSpec = OptimSpec(epochs=30, batch_size=32, lr=0.05)
    run: RunSpec = RunSpec(out="runs/compare", threads=1)
    members: tuple = QUICK_MEMBERS
    strengths: dict = field(default_factory=dict)
    pgd_steps: int = 10
    suite: str = "strong"
    diagnostics: int = 0  # > 0: the collapse signals per epoch on the first N training examples
    warmup: int = 0  # > 0: each member ramped in from the plain loss over this many epochs (warmup.WarmUp)
    quick: bool = False
    overwrite: bool = False
    command: str = ""


def strengths(spec: CompareSpec, n_features: int) -> Strengths:
    """The members' strengths: the defaults at D = ``n_features``, then those given."""
    return default_strengths(n_features, seed=spec.run.seed, **spec.strengths)


def train_member(name: str, train_set, test_set, spec: CompareSpec, grid: dict, stream) -> tuple[dict, object]:
    """Train member ``name`` as every other member is trained; return (its result, its model)."""
    model = spec.model.build(train_set.image_shape, train_set.n_classes, spec.run.seed, spec.run.device)
    objective = member(name, model, strengths(spec, train_set.x.shape[1]), n_features=train_set.x.shape[1])
    if spec.warmup:
        objective = WarmUp(objective, spec.warmup)
    optimizer = spec.optim.build(model.parameters() + objective.parameters())
    probe = Diagnostics(train_set.x[:spec.diagnostics], train_set.y[:spec.diagnostics],
                        strengths(spec, train_set.x.shape[1]).eps, seed=spec.run.seed) if spec.diagnostics else None
    start = time.perf_counter()
    history = fit(model, objective, optimizer, train_set, epochs=spec.optim.epochs, batch_size=spec.optim.batch_size,
                  seed=spec.run.seed, progress=stream, diagnostics=probe)
    seconds = time.perf_counter() - start
    clean = evaluation.evaluate(model, test_set)
    curve = [h["train_loss"] for h in history]  # a run whose loss rises far above its own minimum is
    result = {"member": name, "objective": repr(objective), "clean_error": clean.error,  # marked unstable
              "clean_loss": clean.loss, "train_seconds": seconds, "train_loss": curve,
              "unstable": unstable(curve), "attacks": {}}
    result["train_error"] = [h["train_error"] for h in history]  # per epoch, beside the loss
    if probe is not None:  # the collapse signals per epoch (diagnostics.Diagnostics), drawn in signals.png
        result["diagnostics"] = [h.get("diagnostics") for h in history]
    for attack, eps_list in grid.items():
        result["attacks"][attack] = {str(e): evaluation.attack_error(model, test_set, attack, e, spec.pgd_steps)
                                     for e in eps_list}
    if spec.suite == "strong":  # the robust error a verdict rests on, at the training ε, with the masking flags
        eps = strengths(spec, train_set.x.shape[1]).eps
        result["robust"], _ = evaluation.robust(model, test_set, eps, seed=spec.run.seed, flags="all")
    return result, model


def _config(spec: CompareSpec, n_train: int, n_test: int) -> dict:
    """What a member's result depends on: a rerun into the same --out reuses a result only if all agree
    (not the members, nor how the run is carried out: its output, threads, device, progress)."""
    return {"data": as_dict(spec.data), "model": as_dict(spec.model), "optim": as_dict(spec.optim),
            "seed": spec.run.seed, "strengths": dict(sorted(spec.strengths.items())), "pgd_steps": spec.pgd_steps,
            "suite": spec.suite, "diagnostics": spec.diagnostics,
            **({"warmup": spec.warmup} if spec.warmup else {}),  # absent: the config of runs before the flag
            "quick": spec.quick, "n_train": n_train, "n_test": n_test}


def _done(out: Path, config: dict) -> dict:
    """Members already finished in ``out/results.jsonl`` with this config (a torn last line, from a
    crash mid-write, is ignored: that member runs again)."""
    path, done = out / "results.jsonl", {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("config") != config:
            changed = sorted(k for k in set(config) | set(record.get("config", {}))
                             if config.get(k) != record.get("config", {}).get(k))
            raise OutputError(f"--out {out} holds results made with other settings ({', '.join(changed[:5])} "
                              "differ); use another --out, or --overwrite to start again")
        if (out / "models" / f"{record['member']}.npz").exists():
            done[record["member"]] = record["result"]
    return done


def _append(path: Path, record: dict):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run(spec: CompareSpec) -> int:
    """Train and evaluate every member of ``spec`` (reusing those already finished in its output
    directory), then write the tables and figures; returns the exit code."""
    check_device(spec.run.device)
    # Finished members are reused, not refused: only --overwrite moves them aside (to replaced/).
    out = prepare_out(spec.run.out, ("results.jsonl", "models") if spec.overwrite else (), overwrite=spec.overwrite,
                      layout=LAYOUT)
    train_set, _, test_set = spec.data.load()
    config = _config(spec, len(train_set), len(test_set))
    done = _done(out, config)
    with blas_threads(spec.run.threads):
        return _run(spec, out, config, done, train_set, test_set)


def _run(spec: CompareSpec, out: Path, config: dict, done: dict, train_set, test_set) -> int:
    members, n_features = spec.members, train_set.x.shape[1]
    grid = evaluation.attack_grid(n_features, spec.quick)
    stream = None if spec.run.quiet else sys.stderr
    results, models, started = [], {}, time.perf_counter()
    (out / "models").mkdir(exist_ok=True)
    for k, name in enumerate(members, start=1):
        if name in done:
            print(f"[{k}/{len(members)}] {name}: done in an earlier run, reused", file=sys.stderr, flush=True)
            result, model = done[name], load_checkpoint(out / "models" / f"{name}.npz").model.to(spec.run.device)
        else:
            print(f"[{k}/{len(members)}] {name}", file=sys.stderr, flush=True)
            result, model = train_member(name, train_set, test_set, spec, grid, stream)
            save_checkpoint(out / "models" / f"{name}.npz", model, member=name)
            _append(out / "results.jsonl", {"member": name, "config": config, "result": result})
        results.append(result)
        models[name] = model
    total = time.perf_counter() - started
    table = markdown_table(results, grid)
    print(table)
    print(f"\ntotal {total:.1f} s for {len(members)} members")
    b = strengths(spec, n_features).budgets(n_features)
    meta = {"data": spec.data.name, "n_train": len(train_set), "n_test": len(test_set), "threads": spec.run.threads,
            "budgets": b, "strengths": as_dict(strengths(spec, n_features)), "attacks": grid,
            "suite": suite_note(results),
            "total_seconds": total, "command": spec.command, "config": config}
    write_atomically(out / "results.json", lambda f: f.write(
        json.dumps({"meta": meta, "results": results}, indent=1).encode()))
    write_atomically(out / "results.md", lambda f: f.write(
        (f"# compare on {spec.data.name}\n\n" + (f"```\n{spec.command}\n```\n\n" if spec.command else "")
         + f"Test error in percent, {len(test_set)} test examples; white-box attacks "
         f"at each ε.\n\n{table}\n\n{suite_note(results)}\n\nTotal {total:.1f} s.  Training budgets: "
         f"ℓ∞ ε = {b['inf']:g}, ℓ2 ε = {b['2']:g}, ℓ1 ε = {b['1']:g}.\n").encode()))
    written = plots.compare_figures(results, grid, models, test_set, b, str(out))
    print("wrote", ", ".join(["results.jsonl", "results.json", "results.md"] + written), "to", out)
    return 0


def markdown_table(results: list, grid: dict) -> str:
    """One row per member: clean and attacked test error in percent, the strong suite's robust error and its
    masking flags (where it ran), and the training time; a member whose training loss rose far above its own
    minimum (``verdicts.unstable``) is marked "(unstable)": its last epoch is not its verdict."""
    columns = [(a, e) for a, eps_list in grid.items() for e in eps_list]
    strong = next((r["robust"] for r in results if r.get("robust")), None)
    head = "| member | clean % | " + " | ".join(f"{a} ε={e} %" for a, e in columns) + \
        (f" | strong ℓ∞ ε={strong['eps']:g} % | masking flags" if strong else "") + " | train s |"
    rule = "|" + "---|" * (len(columns) + 3 + 2 * bool(strong))

    def robust_cells(r):
        if not strong:
            return " "
        if not r.get("robust"):
            return " | — | — "
        flagged = r["robust"].get("masking", {}).get("flagged", [])
        return f" | {100 * r['robust']['error']:.1f} | {', '.join(f.replace('_', ' ') for f in flagged) or 'none'} "
    rows = [f"| {r['member']}{' (unstable)' if r.get('unstable') else ''} | {100 * r['clean_error']:.1f} | "
            + " | ".join(f"{100 * r['attacks'][a][str(e)]:.1f}" for a, e in columns) + robust_cells(r)
            + f"| {r['train_seconds']:.1f} |" for r in results]
    return "\n".join([head, rule] + rows)


def suite_note(results: list) -> str:
    """What the strong suite was, in words, for the tables and the JSON's readers."""
    strong = next((r["robust"] for r in results if r.get("robust")), None)
    if strong is None:
        return "Attacks: the fast suite only (FGSM, FGM-ℓ2, PGD-ℓ∞ with 10 steps, no random start)."
    c = strong["settings"]
    return (f"Strong suite (``minigrad.robust``), ℓ∞ at the training ε = {strong['eps']:g}, every attack on every one "
            f"of the {strong['n']} test examples, per-example worst case: APGD-CE and APGD-T (DLR loss, the "
            f"{c['n_targets']} most likely other classes), {c['steps']} steps × {c['apgd_restarts']} restart; PGD on the "
            f"cross-entropy and on the margin, {c['steps']} steps × {c['restarts']} restarts from random starts; "
            f"Square, {c['queries']} queries.  Masking flags (a flag is information, not an error): black box beats "
            "white box, error at ℓ∞ ε = 0.5 below 99 %, one step beats iterative, doubling steps and restarts "
            "raises the error, more than 1 % of zero input gradients.")
