"""``python -m minigrad sweep``: each member over a grid of strengths × seeds, with trade-off frontiers,
a matched-budget table and verdicts on the seed papers' claims::

    python -m minigrad sweep --quick                                   # a smoke run, seconds
    python -m minigrad sweep --out runs/sweep-digits                   # every member, default grids, 3 seeds
    python -m minigrad sweep --members adv-pinf gp-q1 --strengths gp-q1=0.03,0.1 --seeds 5
    python -m minigrad sweep --dask local --workers 8                  # a dask.distributed LocalCluster
    python -m minigrad sweep --scheduler tcp://host:8786               # an existing Dask cluster

Cells run in a local process pool of ``--workers`` (default: the machine's cores), one after another
with ``--serial``, or on Dask (``pip install 'minigrad[sweep]'``); a remote cluster's workers need the
same minigrad, NumPy and data (``--data-dir`` as they see it) for results identical to a local run.

A **cell** is one (member, strength, seed).  Its config (a JSON-ready dict) holds everything the cell
needs: the data (name, sizes, the validation split's seed), the network, the optimiser, the training
ε and the attack grid.  ``run_cell(config)`` depends on nothing else and always uses one BLAS thread,
so the same config gives a bit-identical result in this process, in a process pool or on a Dask
worker.  Seeds vary the initialisation, the example order and the regularizers' noise; the training /
validation split and the test set are the same for every cell, so members are compared paired over
seeds.

``run(spec)`` takes a ``SweepSpec`` (``flags`` builds it from the command line).  Each cell trains like
``compare`` trains a member (same specs, optimiser, members registry), on the
training part of a split of the training set, and keeps the parameters of the epoch of lowest
validation error (``fit(patience=epochs)`` never stops early, then restores that epoch): the reported
epoch is chosen by validation error.  It is evaluated on validation and test, clean and under the
attack grid (``evaluation.grid_with_training_budgets``: the attack grid plus every attack at the
training budgets ε, ε₂, ε₁).

Unstable (``verdicts.unstable``, judged from the stored curve): a run whose mean training loss at some
epoch exceeds ``5·m + 0.5`` nats, m the lowest epoch loss before it (the loss "rises far above its own
minimum": issue 12's collapse went 0.6 → 25; the epoch-to-epoch noise of a healthy run, 0.13 → 0.40,
does not count).  Marked in every table and drawn hollow in the frontier; a run that produces NaN/inf is
"diverged" and has no result.

Default strengths: ``members.DEFAULT_GRIDS``, log-spaced grids chosen on the 64-pixel digits, from "no
effect" to "hurts clean error badly", penalty weights scaled by 64/D for D input features (the rule
that also gives compare's defaults, ``members.default_strengths``).

Outputs in ``--out``: ``cells/<key>.json`` (one per finished cell, key = hash of its config: rerunning
skips them, so a sweep resumes, and adding seeds or strengths reuses the rest), ``cells.jsonl`` (every
record as it arrived), ``command.txt``, ``frontier.png``, ``matched.md``, ``verdicts.md``.

(A little over the ~400-line guide: a cell's config, its runner and the three executors that must give it
bit-identical results are kept in one file so that that promise can be read in one place; the reports
and the statistics are ``sweep_report`` and ``verdicts``.)
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import evaluation, optional
from .checkpoint import interrupts_deferred, write_atomically
from .diagnostics import Diagnostics
from .errors import InvalidArgument, MinigradError, Terminated
from .members import KNOBS, Strengths, default_grid, member
from .specs import DataSpec, ModelSpec, OptimSpec, as_dict, prepare_out
from . import verdicts as V
from .grids import extensions
from .sweep_report import CellBar, write_reports
from .train import fit
from .warmup import WarmUp
from .verdicts import pack_wrong

QUICK_MEMBERS = ("plain", "adv-pinf", "gp-q1", "datagrad-l1", "datagrad-l1-fd")
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
FINAL = ("ok", "diverged", "failed")  # a cell with one of these is done; "error" (a bug) runs again
LAYOUT = {"cells": "dir", "cells.jsonl": "file", "command.txt": "file", "matched.md": "file", "verdicts.md": "file",
          "frontier.png": "file"}  # what a sweep writes in --out, checked before any cell runs
MIN_EXAMPLES = 10  # per part of the split: fewer, and a validation error is too coarse to choose anything by
VERSION = 2  # bump when what a cell computes changes: old cells then stop matching


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: each of ``members`` at each of its strengths × ``seeds`` seeds from ``seed``.
    ``strengths``: (member or None, values) pairs as given (None: for every member); a member not
    named takes its default grid.  ``mode``: 'serial', 'pool' (``workers`` processes) or 'dask'
    (``address``: a scheduler, or 'local').  ``clean_budget``: percent, None for plain's + 1 point."""
    data: DataSpec = DataSpec(valid_fraction=0.2)
    model: ModelSpec = ModelSpec()
    optim: OptimSpec = OptimSpec(epochs=30, batch_size=32, lr=0.05)
    members: tuple = QUICK_MEMBERS
    strengths: tuple = ()
    seeds: int = 3
    seed: int = 0
    eps: float = 0.1
    pgd_steps: int = 10
    clean_budget: float | None = None
    workers: int = 1
    mode: str = "pool"
    address: str | None = None
    out: str = "runs/sweep"
    quick: bool = False
    quiet: bool = False
    extend: int = 2
    plan: bool = False
    suite: str = "strong"
    diagnostics: int = 0
    warmup: int = 0  # > 0: each member ramped in from the plain loss over this many epochs (warmup.WarmUp)
    command: str = ""


def cell_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


# --- one cell ---------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _data(data: DataSpec):
    return data.load()


def run_cell(config: dict) -> dict:
    """Train and evaluate one cell; return its record (config, key, status, result or error, seconds).
    Never raises for a failure of the cell itself: divergence and bad values become the status."""
    start = time.perf_counter()
    record = {"key": cell_key(config), "config": config}
    threadpoolctl = optional.maybe("threadpoolctl")  # without it, the BLAS_ENV variables set for the
    limit = threadpoolctl.threadpool_limits(limits=1, user_api="blas") if threadpoolctl else contextlib.nullcontext()
    try:
        with limit:
            record.update(status="ok", result=_train_and_evaluate(config))
    except FloatingPointError as e:  # TrainingDiverged, NonFiniteGradient
        record.update(status="diverged", error=" ".join(str(e).split()))
    except MinigradError as e:
        record.update(status="failed", error=" ".join(str(e).split()))
    except Exception as e:  # a bug: recorded, never stops the sweep, and retried on the next run
        record.update(status="error", error=f"{type(e).__name__}: {e}")
    record["seconds"] = time.perf_counter() - start
    return record


def _train_and_evaluate(c: dict) -> dict:
    train, valid, test = _data(DataSpec(**c["data"]))
    model_spec = ModelSpec(**{**c["model"], "units": tuple(c["model"]["units"])})
    optim_spec = OptimSpec(**{**c["optim"], "momentum": tuple(c["optim"]["momentum"])})
    strengths = Strengths(**{"eps": c["eps"], "seed": c["seed"], **({c["knob"]: c["strength"]} if c["knob"] else {})})
    model = model_spec.build(train.image_shape, train.n_classes, c["seed"])
    objective = member(c["member"], model, strengths, n_features=train.x.shape[1])
    if c.get("warmup"):
        objective = WarmUp(objective, c["warmup"])
    optimizer = optim_spec.build(model.parameters() + objective.parameters())
    epochs = optim_spec.epochs
    n = c.get("diagnostics", 0)  # the collapse signals per epoch, recorded in the history
    probe = Diagnostics(train.x[:n], train.y[:n], c["eps"], seed=c["seed"]) if n else None
    history = fit(model, objective, optimizer, train, valid, epochs=epochs, batch_size=optim_spec.batch_size,
                  seed=c["seed"], patience=epochs, progress=False, diagnostics=probe)
    curve = [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # timing is not a result
    best = min(curve, key=lambda h: (h["valid_error"], h["epoch"]))["epoch"]
    result = {"objective": repr(objective), "history": curve, "best_epoch": best}
    for split, data in (("valid", valid), ("test", test)):
        result[split] = evaluation.errors(model, data, c["attacks"], c["pgd_steps"],
                                          keep=c["budgets"] if split == "test" else None)
    result["wrong"] = {"test": result["test"].pop("wrong")}  # per example, for the verdicts' intervals
    if c.get("suite") == "strong":  # the strong suite on test, at the training ε: what the verdicts rest on
        record, wrong = evaluation.robust(model, test, c["eps"], seed=c["seed"], flags="cheap", cascade=True)
        record.pop("seconds")  # timing is not a result: the same config gives the same bytes anywhere
        result["test"]["attacks"]["strong-linf"] = {str(c["eps"]): record["error"]}
        result["test"]["strong"] = record
        result["wrong"]["test"]["strong-linf"] = pack_wrong(wrong)
    return result


# --- executing many cells ---------------------------------------------------------------------------
@contextlib.contextmanager
def one_blas_thread_env():
    """Workers started inside inherit one BLAS thread (set before their NumPy loads)."""
    saved = {k: os.environ.get(k) for k in BLAS_ENV}
    os.environ.update({k: "1" for k in BLAS_ENV})
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _ignore_interrupts():
    """A pool worker leaves Ctrl-C to the sweep, which stops it (a terminal sends SIGINT to the whole group)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(pool: ProcessPoolExecutor):
    """Cancel the queued cells and end the running ones now: their results could no longer be stored."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for w in workers:
        w.terminate()
    for w in workers:
        w.join(timeout=2)
        if w.is_alive():
            w.kill()


def execute(configs: list, mode: str = "pool", workers: int = 1, address: str | None = None):
    """Yield each cell's record as it finishes.  mode: 'serial' (this process), 'pool' (a process pool
    of ``workers``), 'dask' (``address``: a scheduler, or 'local' to start a LocalCluster).  Closed early
    (an interrupt, SIGTERM), it cancels the queued cells and stops the running ones at once."""
    if mode == "serial" or not configs:
        for c in configs:
            yield run_cell(c)
    elif mode == "pool":
        with one_blas_thread_env():  # workers, spawned as cells are submitted, inherit it before NumPy loads
            pool = ProcessPoolExecutor(min(workers, len(configs)), mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_ignore_interrupts)
            futures = {pool.submit(run_cell, c): c for c in configs}
        complete = False
        try:
            for f in as_completed(futures):
                yield _outcome(f, futures[f])
            complete = True
        finally:
            pool.shutdown(wait=True) if complete else _stop(pool)
    else:
        yield from _execute_dask(configs, workers, address)


def _execute_dask(configs, workers, address):
    distributed = optional.require("dask.distributed", "sweep", "--dask and --scheduler")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster
    with contextlib.ExitStack() as stack:
        if address == "local":
            stack.enter_context(one_blas_thread_env())
            target = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                      dashboard_address=None))
        else:
            target = address
        try:
            client = stack.enter_context(Client(target, timeout="20s"))
        except (OSError, TimeoutError) as e:
            raise InvalidArgument(f"--scheduler {address}: cannot connect to a Dask scheduler there ({e})") from None
        futures = {client.submit(run_cell, c, key=f"cell-{cell_key(c)}", pure=False): c for c in configs}
        try:
            for f in distributed.as_completed(list(futures)):
                yield _outcome(f, futures[f])
        finally:
            client.cancel(list(futures))


def _outcome(future, config: dict) -> dict:
    """The cell's record; a worker that died under it (killed, out of memory) makes an "error" record,
    which the next run retries, instead of stopping the sweep."""
    try:
        return future.result()
    except Exception as e:
        return {"key": cell_key(config), "config": config, "status": "error", "seconds": 0.0,
                "error": f"the worker running it failed: {type(e).__name__}: {e}"}


# --- the command ------------------------------------------------------------------------------------
def strengths_of(spec: SweepSpec, name: str, n_features: int) -> list:
    """The member's strengths: those named for it, else those given for every member, else its default
    grid (``members.default_grid``)."""
    if KNOBS[name] is None:
        return [None]
    named = [v for m, values in spec.strengths if m == name for v in values]
    for_all = [v for m, values in spec.strengths if m is None for v in values]
    return named or for_all or default_grid(name, n_features, spec.quick)


def configs_for(spec: SweepSpec, n_features: int) -> list:
    """Every planned cell's config (the specs as data, and the cell's member, strength and seed), in order:
    member, strength, seed."""
    grid, budgets = evaluation.grid_with_training_budgets(n_features, spec.eps, spec.quick)
    if spec.suite == "strong":
        budgets = {**budgets, "strong-linf": spec.eps}
    base = {"version": VERSION, "data": as_dict(spec.data), "model": as_dict(spec.model), "optim": as_dict(spec.optim),
            "eps": spec.eps, "attacks": grid, "budgets": budgets, "pgd_steps": spec.pgd_steps, "suite": spec.suite,
            **({"diagnostics": spec.diagnostics} if spec.diagnostics else {}),  # absent: the keys of cells before
            **({"warmup": spec.warmup} if spec.warmup else {})}  # so cells with and without a warm-up never mix
    return [c for m in spec.members for s in dict.fromkeys(strengths_of(spec, m, n_features))
            for c in _cells(spec, base, m, s)]


def _cells(spec: SweepSpec, base: dict, member_name: str, strength) -> list:
    """The cells of one (member, strength), one per seed; ``base``: any cell's config (its shared part)."""
    shared = {k: v for k, v in base.items() if k not in ("member", "knob", "strength", "seed")}
    return [{**shared, "member": member_name, "knob": KNOBS[member_name], "strength": strength, "seed": seed}
            for seed in range(spec.seed, spec.seed + spec.seeds)]


def finished(out: Path, configs: list) -> dict:
    """{key: record} of the cells already in ``out/cells`` with a final status (ok, diverged, failed);
    a cell missing there but logged in ``out/cells.jsonl`` (a torn last line is skipped) is restored."""
    done, logged = {}, {}
    if (out / "cells.jsonl").exists():
        for line in (out / "cells.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                logged[record.get("key")] = record
    for c in configs:
        key, path = cell_key(c), out / "cells" / f"{cell_key(c)}.json"
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = logged.get(key)
            if record is not None and record.get("config") == c and record.get("status") in FINAL:
                text = json.dumps(record, sort_keys=True)
                write_atomically(path, lambda f: f.write(text.encode()))
        if record is not None and record.get("config") == c and record.get("status") in FINAL:
            done[key] = record
    return done


def store(out: Path, record: dict):
    """The cell's own file (atomically), then a line in cells.jsonl: a result is kept as soon as it exists."""
    text = json.dumps(record, sort_keys=True)
    write_atomically(out / "cells" / f"{record['key']}.json", lambda f: f.write(text.encode()))
    with open(out / "cells.jsonl", "a") as f:
        f.write(text + "\n")


def _where(spec: SweepSpec) -> str:
    local = "a LocalCluster of " + str(spec.workers) + " workers"
    return {"serial": "in this process", "pool": f"on a pool of {spec.workers} processes",
            "dask": f"on Dask ({spec.address if spec.address != 'local' else local})"}[spec.mode]


def plan(spec: SweepSpec, out: Path, configs: list) -> str:
    """The cells the command would run, one line each (member, strength, seed, finished or not)."""
    done = finished(out, configs) if out.is_dir() else {}
    lines = [f"{'member':<20} {'strength':<22} {'seed':>5}  status"]
    for c in configs:
        strength = "—" if c["strength"] is None else f"{c['knob']}={c['strength']:g}"
        lines.append(f"{c['member']:<20} {strength:<22} {c['seed']:>5}  "
                     f"{'finished' if cell_key(c) in done else 'to run'}")
    lines.append(f"{len(configs)} cells ({len(spec.members)} members), {len(done)} finished, "
                 f"{len(configs) - len(done)} to run {_where(spec)}; then up to {spec.extend} more strengths each "
                 "way for a member chosen at an end of its grid (decided from the results)")
    return "\n".join(lines)


def _run_cells(out: Path, todo: list, spec: SweepSpec, records: dict, total: int):
    """Run ``todo`` and store each record as it arrives; an interrupt stops the workers and is raised on."""
    print(f"sweep: {total} cells ({len(spec.members)} members × strengths × {spec.seeds} seeds); "
          f"{total - len(todo)} finished earlier, {len(todo)} to run {_where(spec)}",
          file=sys.stderr, flush=True)
    bar = CellBar(len(todo), 1 if spec.mode == "serial" else spec.workers, None if spec.quiet else sys.stderr)
    cells = execute(todo, spec.mode, spec.workers, spec.address)
    try:
        for record in cells:
            with interrupts_deferred():  # a cell's file and its log line are written together
                store(out, record)
            records[record["key"]] = record
            bar.update(record)
    finally:
        cells.close()
        bar.close()


def run(spec: SweepSpec) -> int:
    """Run (or resume) the sweep, extend the grids where the choice sits at an end (``grids``), and write
    its reports; returns the exit code."""
    out = Path(spec.out) if spec.plan else prepare_out(spec.out, (), layout=LAYOUT)  # a plan writes nothing
    if spec.mode == "dask":
        optional.require("dask.distributed", "sweep", "--dask and --scheduler")
    train, valid, _ = _data(spec.data)
    if min(len(train), len(valid)) < MIN_EXAMPLES:
        raise InvalidArgument(f"the data leaves {len(train)} training and {len(valid)} validation examples; a sweep "
                              f"needs at least {MIN_EXAMPLES} of each to choose epochs and strengths (raise "
                              "--train-size or --valid-fraction)")
    n_features = train.x.shape[1]
    configs = configs_for(spec, n_features)
    if spec.plan:
        print(plan(spec, out, configs))
        return 0
    with open(out / "command.txt", "a") as f:
        f.write(spec.command + "\n")
    planned = {m: strengths_of(spec, m, n_features) for m in spec.members}
    records, start = dict(finished(out, configs)), time.perf_counter()
    try:
        todo = [c for c in configs if cell_key(c) not in records]
        for _ in range(2 * spec.extend + 1):  # at most extend steps each way, one step a round
            _run_cells(out, todo, spec, records, len(configs))
            pts = V.points([records[cell_key(c)] for c in configs])
            adds = extensions(pts, V.clean_budget(pts, spec.clean_budget)[0], planned, spec.extend, KNOBS)
            if not adds:
                break
            print("sweep: the choice sits at an end of its grid for " + ", ".join(f"{m} (trying {KNOBS[m]}={v:g})"
                  for m, v in adds), file=sys.stderr, flush=True)
            more = [c for m, v in adds for c in _cells(spec, configs[0], m, v)]
            configs += more
            records.update(finished(out, more))
            todo = [c for c in more if cell_key(c) not in records]
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (errors.Terminated): the workers are stopped, every cell kept
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"sweep: {how}; {len(records)} of {len(configs)} cells are kept in {out / 'cells'}; "
              "the same command continues", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    keys = [cell_key(c) for c in configs]
    written = write_reports(out, [records[k] for k in keys], spec.command, spec.clean_budget, spec.eps, n_features,
                            KNOBS, grids=planned, suite=spec.suite)
    if "matched.md" in written:
        print((out / "matched.md").read_text().split("\n\n", 3)[-1].strip())  # the table, as compare prints its own
    failed = sum(records[k]["status"] != "ok" for k in keys)
    print(f"sweep: {len(configs)} cells in {time.perf_counter() - start:.1f} s ({failed} diverged or failed); "
          f"wrote {', '.join(written)} to {out}", file=sys.stderr)
    return 0
