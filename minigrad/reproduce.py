"""``python -m minigrad reproduce RECIPE``: one of the papers' experiments (``recipes``) run by its own
protocol, and a report of the paper's numbers beside the measured ones::

    python -m minigrad reproduce maxout-mnist-pi --data-dir ~/mnist           # Goodfellow et al. 2013, Table 1
    python -m minigrad reproduce goodfellow2015-adv --data fashion-mnist --budget 20

The two phases (``recipes.Protocol``) run one epoch at a time through ``train.fit``, each epoch resumed
from the checkpoint the previous one wrote, so a run stopped anywhere (Ctrl-C, SIGTERM, a killed process,
a diverged epoch) continues bit for bit with the same command: the state of the protocol (phase, kept
epoch, target) is in ``protocol.json`` beside ``checkpoint.npz`` and the kept parameters in ``best.npz``.
``--budget N`` caps each phase at N epochs for a quick look, and the report says it was shortened.

Outputs in ``--out``: ``report.md`` and ``report.json`` (the paper's numbers and the measured ones, each
test error with its 95 % Wilson interval over the test images, the stop of each phase, the wall time),
``curve.png`` (the training objective and the validation metric per epoch, the phases marked).
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import evaluation, plots
from .checkpoint import Checkpointing, interrupts_deferred, load_checkpoint, save_checkpoint, write_atomically
from .datasets import Dataset
from .errors import InvalidArgument
from .members import default_strengths, member
from .recipes import recipe as find_recipe
from .specs import DataSpec, blas_threads, prepare_out
from .train import evaluate, fit

LAYOUT = {"checkpoint.npz": "file", "best.npz": "file", "protocol.json": "file", "report.md": "file",
          "report.json": "file", "curve.png": "file"}
FGSM_EPS = (0.1, 0.25)  # the report's FGSM test errors (Goodfellow et al. 2015 use ε = 0.25 on MNIST)


@dataclass(frozen=True)
class ReproduceSpec:
    """Run recipe ``recipe`` on ``data`` (None: the recipe's own), at most ``budget`` epochs a phase (None:
    the protocol's own stopping rules), with ``seed``; outputs in ``out``."""
    recipe: str
    data: str | None = None
    data_dir: str | None = None
    budget: int | None = None
    seed: int = 0
    threads: int | None = None
    out: str = "runs/reproduce"
    quiet: bool = False
    command: str = ""


# --- the protocol's two decisions, as pure functions of the curves ------------------------------------
def phase1_stop(metrics: list, patience: int, max_epochs: int) -> tuple[bool, int]:
    """(stop now?, the kept epoch) after epochs 1..len(metrics) with these validation metrics: keep the
    first epoch of the lowest metric; stop when it is ``patience`` epochs old or at ``max_epochs``."""
    best = 1 + int(np.argmin(metrics))
    return len(metrics) - best >= patience or len(metrics) >= max_epochs, best


def phase2_stop(objectives: list, target: float, max_epochs: int) -> bool:
    """Stop phase 2 once the validation objective has fallen to ``target`` (the phase-1 training objective
    at the kept epoch: pylearn2's MatchChannel), or after ``max_epochs`` epochs."""
    return bool(objectives) and (objectives[-1] <= target or len(objectives) >= max_epochs)


def wilson(wrong: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of an error rate wrong / n."""
    if n == 0:
        return math.nan, math.nan
    p = wrong / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# --- one run ------------------------------------------------------------------------------------------
def rows(data: Dataset, start: int, stop: int, name: str) -> Dataset:
    return dataclasses.replace(data, x=data.x[start:stop], y=data.y[start:stop], name=name)


def split(train: Dataset, protocol) -> tuple[Dataset, Dataset, Dataset, str]:
    """(phase-1 train, validation, phase-2 train) by the recipe's index split; a smaller training set
    (the embedded digits) keeps the split's proportion (5/6 : 1/6 for 50 000 : 10 000)."""
    a, b = protocol.split
    if len(train) < b:
        a, b = round(len(train) * a / b), len(train)
        how = f"images 0–{a} train, {a}–{b} validate (the recipe's {protocol.split[0]}:{protocol.split[1]} scaled)"
    else:
        how = f"images 0–{a} train, {a}–{b} validate, as the recipe"
    return rows(train, 0, a, "train"), rows(train, a, b, "valid"), rows(train, 0, b, "train+valid"), how


def metric(model, valid: Dataset, protocol) -> float:
    if protocol.metric == "adversarial-error":
        return evaluation.attack_error(model, valid, "fgsm", protocol.metric_eps)
    return evaluate(model, valid).error


def objective_on(model, objective, data: Dataset, batch: int = 500) -> float:
    """The training objective's mean value on ``data`` (dropout on, as in training): pylearn2's
    'valid_objective'.  (The graph each batch builds is dropped: no step is taken.)"""
    model.train()
    total = 0.0
    for start in range(0, len(data), batch):
        x, y = data.x[start:start + batch], data.y[start:start + batch]
        total += objective(model, x, y).item() * len(y)
    model.eval()
    return total / len(data)


def _state(out: Path) -> dict:
    path = out / "protocol.json"
    return json.loads(path.read_text()) if path.exists() else {"phase": 1, "metrics": [], "objectives": []}


def _save_state(out: Path, state: dict):
    write_atomically(out / "protocol.json", lambda f: f.write(json.dumps(state, indent=1).encode()))


def _start_phase2(out: Path, model, optimizer, state: dict, name: str, seed: int):
    """Phase 2 starts from the kept epoch: its parameters and optimiser state (so the learning rate and
    momentum continue from there, as mnist_pi_continued.yaml sets them) become the checkpoint that the
    next epoch resumes.  Idempotent: a run stopped half-way through it does it again."""
    kept = load_checkpoint(out / "best.npz", model, optimizer)
    if (out / "checkpoint.npz").exists() and load_checkpoint(out / "checkpoint.npz").meta.get("epoch") == kept.meta["epoch"]:
        return
    save_checkpoint(out / "checkpoint.npz", model, optimizer, epoch=kept.meta["epoch"], history=kept.meta["history"],
                    recipe=name, seed=seed)


def run(spec: ReproduceSpec) -> int:
    """Run (or resume) the recipe and write its report; returns the exit code."""
    r = find_recipe(spec.recipe)
    if not r.runnable:
        raise InvalidArgument(f"reproduce: {r.name} is a spec only ({r.departures[0] if r.departures else ''}); "
                              "this machine cannot afford to run it in full")
    out = prepare_out(spec.out, (), layout=LAYOUT)
    data = DataSpec(name=spec.data or r.data.name, dir=spec.data_dir)
    train_all, _, test = data.load()
    train, valid, everything, how = split(train_all, r.protocol)
    model = r.model.build(train.image_shape, train.n_classes, spec.seed)
    strengths = default_strengths(train.x.shape[1], seed=spec.seed, **r.strengths)
    objective = member(r.member, model, strengths, n_features=train.x.shape[1])
    if objective.parameters():
        raise InvalidArgument(f"reproduce: {r.member}'s own parameters are not checkpointed yet; its recipe "
                              "cannot be resumed")
    optimizer = r.optim.build(model.parameters())
    p, budget = r.protocol, spec.budget
    max1 = min(p.max_epochs, budget or p.max_epochs)
    max2 = min(p.phase2_max_epochs, budget or p.phase2_max_epochs)
    settings = {"recipe": r.name, "data": data.name, "seed": spec.seed, "budget": budget}
    state = _state(out)
    if state.get("settings", settings) != settings:
        raise InvalidArgument(f"reproduce: {out} holds a run with other settings ({state['settings']}); use another "
                              "--out")
    state["settings"] = settings
    saver = Checkpointing(out / "checkpoint.npz", {"recipe": r.name})
    stream = None if spec.quiet else sys.stderr
    start, history = time.perf_counter(), []
    with blas_threads(spec.threads):
        while state["phase"] in (1, 2):
            if state["phase"] == 2 and not state["objectives"]:
                _start_phase2(out, model, optimizer, state, r.name, spec.seed)
            resume = load_checkpoint(out / "checkpoint.npz", model, optimizer) if (out / "checkpoint.npz").exists() \
                else None
            done = resume.meta["epoch"] if resume else 0
            expected = len(state["metrics"]) if state["phase"] == 1 else state["best_epoch"] + len(state["objectives"])
            if done == expected:  # train one more epoch
                history = fit(model, objective, optimizer, train if state["phase"] == 1 else everything, valid,
                              epochs=done + 1, batch_size=r.optim.batch_size, seed=spec.seed, checkpoint=saver,
                              progress=stream, resume=resume)
            else:  # stopped after the epoch's checkpoint, before its validation: judge that epoch now
                history = resume.meta["history"]
            record = history[-1]
            with interrupts_deferred():  # the protocol's state always agrees with the checkpoint beside it
                if state["phase"] == 1:
                    state["metrics"].append(metric(model, valid, p))
                    stop, best = phase1_stop(state["metrics"], p.patience, max1)
                    if best == len(state["metrics"]):
                        save_checkpoint(out / "best.npz", model, optimizer, epoch=record["epoch"], history=history)
                        state.update(best_epoch=record["epoch"], target=record["train_loss"])
                    if stop:
                        n = len(state["metrics"])
                        state.update(phase1_epochs=n, phase1_history=history, phase1_stop="patience" if
                                     n - best >= p.patience else "--budget" if budget and n >= budget else "max_epochs")
                        state["phase"] = 2 if p.phase2 else "done"
                else:
                    state["objectives"].append(objective_on(model, objective, valid))
                    if phase2_stop(state["objectives"], state["target"], max2):
                        state["phase2_stop"] = "target" if state["objectives"][-1] <= state["target"] else \
                            "--budget" if budget and len(state["objectives"]) >= budget else "max_epochs"
                        state["phase"] = "done"
                state["seconds"] = state.get("seconds", 0.0) + record["seconds"]
                _save_state(out, state)
    if not p.phase2:
        load_checkpoint(out / "best.npz", model, optimizer)
    final = load_checkpoint(out / "checkpoint.npz").meta.get("history") or history
    kept = state.get("best_epoch", 0)
    curve = [dict(h, phase=1) for h in state.get("phase1_history", final)] + \
        [dict(h, phase=2) for h in final if "phase1_history" in state and h["epoch"] > kept]
    report = _report(r, spec, data, how, model, test, state, curve, time.perf_counter() - start)
    _write(out, report, curve, state)
    print(report["markdown"])
    return 0


def _report(r, spec, data, how, model, test, state, curve, seconds) -> dict:
    wrong = int(evaluation.clean_wrong(model, test).sum())
    measured = {"test error %": (100 * wrong / len(test), [100 * v for v in wilson(wrong, len(test))])}
    for eps in FGSM_EPS:
        w = int(evaluation.attack_wrong(model, test, "fgsm", eps).sum())
        measured[f"FGSM test error % at ε = {eps:g}"] = (100 * w / len(test), [100 * v for v in wilson(w, len(test))])
    paper = data.name == r.data.name
    lines = [f"# reproduce {r.name} on {data.name}", "", f"```\n{spec.command}\n```" if spec.command else "",
             f"Recipe: {r.source}.  Member: {r.member}.  Data: {how}; {len(test)} test images.",
             f"Phase 1: {state.get('phase1_epochs')} epochs, kept epoch {state.get('best_epoch')} (validation "
             f"{r.protocol.metric}{'' if r.protocol.metric_eps is None else f' at ε = {r.protocol.metric_eps}'}), "
             f"stopped by {state.get('phase1_stop')}.  Phase 2: {len(state.get('objectives', []))} epochs on "
             f"train+valid, stopped by {state.get('phase2_stop', '—')} (target: validation objective ≤ "
             f"{state.get('target', math.nan):.4f}).  Training time {state.get('seconds', 0):.0f} s.",
             "" if spec.budget is None else f"**Shortened**: at most {spec.budget} epochs a phase (--budget), not "
             "the protocol's stopping rules: not the paper's experiment.", "",
             "| quantity | paper | measured (95 % Wilson interval) | source |", "|---|---|---|---|"]
    reported = {x.what: x for x in r.reported} if paper else {}
    for what, (value, (lo, hi)) in measured.items():
        source = reported.pop(what).source if what in reported else ""
        paper_value = next((f"{x.value:g}" for x in r.reported if x.what == what), "") if paper else ""
        lines.append(f"| {what} | {paper_value or '—'} | {value:.2f} [{lo:.2f}, {hi:.2f}] | {source} |")
    for x in reported.values():
        lines.append(f"| {x.what} | {x.value:g} | not measured by this recipe | {x.source} |")
    if not paper:
        lines.append(f"\nNo paper column: the recipe's data set is {r.data.name}, this run's is {data.name}.")
    lines += ["", "Departures from the source:", *[f"- {d}" for d in r.departures]]
    return {"recipe": r.name, "data": data.name, "command": spec.command, "budget": spec.budget,
            "measured": measured, "paper": {x.what: [x.value, x.source] for x in r.reported} if paper else {},
            "protocol": {k: v for k, v in state.items() if k != "settings"}, "wall_seconds": seconds,
            "markdown": "\n".join(lines)}


def _write(out: Path, report: dict, curve: list, state: dict):
    write_atomically(out / "report.md", lambda f: f.write((report["markdown"] + "\n").encode()))
    write_atomically(out / "report.json", lambda f: f.write(json.dumps(
        {k: v for k, v in report.items() if k != "markdown"}, indent=1).encode()))
    plots.reproduce_curve(curve, state, str(out))
