"""``python -m minigrad sweep``: each member over a grid of strengths × seeds, with trade-off frontiers,
a matched-budget table and verdicts on the seed papers' claims.

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

Each cell trains like ``compare`` trains a member (same network, optimiser, members registry), on the
training part of a split of the training set, and keeps the parameters of the epoch of lowest
validation error (``fit(patience=epochs)`` never stops early, then restores that epoch): the reported
epoch is chosen by validation error.  It is evaluated on validation and test, clean and under the
attack grid (``compare.attack_grid`` plus every attack at the training budgets ε, ε₂, ε₁).

Unstable (``verdicts.unstable``, judged from the stored curve): a run whose mean training loss at some
epoch exceeds ``5·m + 0.5`` nats, m the lowest epoch loss before it (the loss "rises far above its own
minimum": issue 12's collapse went 0.6 → 25; the epoch-to-epoch noise of a healthy run, 0.13 → 0.40,
does not count).  Marked in every table and drawn hollow in the frontier; a run that produces NaN/inf is
"diverged" and has no result.

Default strengths (``DEFAULT_GRIDS``): log-spaced grids chosen on the 64-pixel digits, from "no
effect" to "hurts clean error badly".  For an input of D features a penalty weight on the input
gradient is multiplied by 64/D: with per-pixel gradients of a size independent of D, ‖g‖₁ and ‖g‖₂²
grow like D, and so does gp-q2's ε₂‖g‖₂ (ε₂ = ε√D/2), so the penalty per unit of that growth stays put.
Pixel budgets (the adversarial and VAT ε) and weight decay need no scaling.

Outputs in ``--out``: ``cells/<key>.json`` (one per finished cell, key = hash of its config: rerunning
skips them, so a sweep resumes, and adding seeds or strengths reuses the rest), ``cells.jsonl`` (every
record as it arrived), ``command.txt``, ``frontier.png``, ``matched.md``, ``verdicts.md``.

(A little over the ~400-line guide: a cell's config, its runner and the three executors that must give it
bit-identical results are kept in one file so that that promise can be read in one place; the reports
and the statistics are ``sweep_report`` and ``verdicts``.)
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import sys
import time
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from . import datasets
from . import experiment as X
from .checkpoint import write_atomically
from .errors import InvalidArgument, MinigradError
from .members import MEMBERS, Strengths
from .sweep_report import CellBar, command_line, write_reports

D_REFERENCE = 64  # the digits' 8×8 pixels: where the default grids were chosen
# member -> (the Strengths field it sweeps, default grid at D = 64, exponent k of the 64/D scaling)
DEFAULT_GRIDS = {
    "plain": (None, (None,), 0),
    "l1": ("l1", (1e-5, 1e-4, 1e-3, 1e-2), 0),
    "l2": ("l2", (1e-4, 1e-3, 1e-2, 1e-1), 0),
    **{m: ("eps", (0.01, 0.03, 0.1, 0.3, 0.6), 0) for m in ("adv-p1", "adv-p2", "adv-pinf", "vat")},
    **{m: ("gp_scale", (0.1, 0.3, 1.0, 3.0, 10.0), 1) for m in ("gp-q1", "gp-q2")},
    **{m: ("beta_l1", (0.005, 0.015, 0.05, 0.15, 0.5), 1) for m in ("datagrad-l1", "datagrad-l1-fd",
                                                                      "multitask+datagrad")},
    **{m: ("beta_l2", (0.001, 0.01, 0.1, 1.0), 1) for m in ("datagrad-l2", "datagrad-l2-fd", "double-backprop")},
    "multitask": ("gamma", (0.1, 0.3, 1.0, 3.0, 10.0), 0),
}
KNOBS = {m: knob for m, (knob, _, _) in DEFAULT_GRIDS.items()}
QUICK_MEMBERS = ("plain", "adv-pinf", "gp-q1", "datagrad-l1", "datagrad-l1-fd")
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
FINAL = ("ok", "diverged", "failed")  # a cell with one of these is done; "error" (a bug) runs again


def default_strengths(name: str, n_features: int, quick: bool = False) -> list:
    """The member's default grid, its penalty weights scaled by (64/D)^k (3 significant digits)."""
    _, grid, k = DEFAULT_GRIDS[name]
    scale = (D_REFERENCE / n_features) ** k
    values = [None if v is None else float(f"{v * scale:.3g}") for v in grid]
    return values[1:3] if quick and len(values) > 2 else values


def attacks(n_features: int, eps: float, quick: bool) -> tuple[dict, dict]:
    """(attack grid, the training budget of each attack): compare's grid plus every attack at the
    training budgets ε, ε₂ = ε√D/2, ε₁ = ε√D."""
    from .compare import attack_grid
    b = Strengths(eps=eps).budgets(n_features)
    budgets = {"fgsm": eps, "pgd-linf": eps, "fgm-l2": round(b["2"], 4), "fgm-l1": round(b["1"], 4)}
    grid = {a: list(v) for a, v in attack_grid(n_features, quick).items()}
    for a, e in budgets.items():
        grid[a] = sorted(set(grid.get(a, [])) | {e})
    return grid, budgets


def cell_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


# --- one cell ---------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _data(name, data_dir, train_size, test_size, valid_fraction, split_seed):
    train, test = datasets.load(name, data_dir)
    train, test = datasets.head(train, train_size), datasets.head(test, test_size)
    train, valid = datasets.train_valid_split(train, valid_fraction, seed=split_seed)
    return train, valid, test


def run_cell(config: dict) -> dict:
    """Train and evaluate one cell; return its record (config, key, status, result or error, seconds).
    Never raises for a failure of the cell itself: divergence and bad values become the status."""
    start = time.perf_counter()
    record = {"key": cell_key(config), "config": config}
    try:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # the BLAS_ENV variables set for the workers are then the only limit
        limit = contextlib.nullcontext()
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
    from .compare import attack_error
    from .members import member
    from .train import evaluate, fit
    d = c["data"]
    train, valid, test = _data(d["name"], d["dir"], d["train_size"], d["test_size"], d["valid_fraction"],
                               d["split_seed"])
    ns = SimpleNamespace(**c["model"], **c["optim"], seed=c["seed"], device="cpu", optimizer="sgd",
                         pgd_steps=c["pgd_steps"])
    strengths = Strengths(**{"eps": c["eps"], "seed": c["seed"], **({c["knob"]: c["strength"]} if c["knob"] else {})})
    model = X.build_model(ns, train.image_shape, train.n_classes)
    objective = member(c["member"], model, strengths, n_features=train.x.shape[1])
    optimizer = X.build_optimizer(ns, model.parameters() + objective.parameters())
    epochs = c["optim"]["epochs"]
    history = fit(model, objective, optimizer, train, valid, epochs=epochs, batch_size=c["optim"]["batch_size"],
                  seed=c["seed"], patience=epochs, progress=False)
    curve = [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # timing is not a result
    best = min(curve, key=lambda h: (h["valid_error"], h["epoch"]))["epoch"]
    result = {"objective": repr(objective), "history": curve, "best_epoch": best}
    for split, data in (("valid", valid), ("test", test)):
        clean = evaluate(model, data)
        result[split] = {"clean_error": clean.error, "clean_loss": clean.loss, "attacks": {
            a: {str(e): attack_error(model, data, a, e, ns) for e in eps_list} for a, eps_list in c["attacks"].items()}}
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


def execute(configs: list, mode: str = "pool", workers: int = 1, address: str | None = None):
    """Yield each cell's record as it finishes.  mode: 'serial' (this process), 'pool' (a process pool
    of ``workers``), 'dask' (``address``: a scheduler, or 'local' to start a LocalCluster)."""
    if mode == "serial" or not configs:
        for c in configs:
            yield run_cell(c)
    elif mode == "pool":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with one_blas_thread_env():  # workers, spawned as cells are submitted, inherit it before NumPy loads
            pool = ProcessPoolExecutor(min(workers, len(configs)), mp_context=multiprocessing.get_context("spawn"))
            futures = {pool.submit(run_cell, c): c for c in configs}
        try:
            for f in as_completed(futures):
                yield _outcome(f, futures[f])
        finally:  # interrupted: do not wait for the running cells (their results would be dropped anyway)
            pool.shutdown(wait=False, cancel_futures=True)
    else:
        yield from _execute_dask(configs, workers, address)


def _execute_dask(configs, workers, address):
    from dask.distributed import Client, LocalCluster, as_completed
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
            for f in as_completed(list(futures)):
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
def add_arguments(p):
    """Flags of ``python -m minigrad sweep`` (data, model and optimiser flags are ``experiment``'s,
    with ``compare``'s defaults)."""
    X.add_data_arguments(p, valid=False)
    g = p.add_argument_group("data split and size")
    g.add_argument("--valid-fraction", type=X.probability, default=0.2, metavar="F",
                   help="fraction of the training set held out for validation (choosing epochs and strengths)")
    g.add_argument("--train-size", type=X.positive_int, default=None, metavar="N",
                   help="use the first N training examples (before the split; none given: all)")
    g.add_argument("--test-size", type=X.positive_int, default=None, metavar="N",
                   help="evaluate on the first N test examples (none given: all)")
    g = p.add_argument_group("members, strengths and seeds")
    g.add_argument("--members", nargs="+", choices=MEMBERS, default=None, metavar="MEMBER",
                   help="members to sweep (none given: all): " + ", ".join(MEMBERS))
    g.add_argument("--strengths", type=strength_list, nargs="+", default=None, metavar="S",
                   help="strengths used as given: numbers for every member, or MEMBER=V,V,... for one member "
                        "(a member not named: its default grid, penalty weights scaled by 64/D)")
    g.add_argument("--seeds", type=X.positive_int, default=3, metavar="N", help="seeds per strength")
    g.add_argument("--seed", type=X.seed, default=0, help="the first seed (seeds are SEED … SEED+N−1)")
    g.add_argument("--eps", type=X.pixel_budget, default=0.1,
                   help="ℓ∞ training budget, and the budget of the robust errors reported")
    g.add_argument("--pgd-steps", type=X.positive_int, default=10, help="PGD iterations")
    g.add_argument("--clean-budget", type=X.non_negative_float, default=None, metavar="POINTS",
                   help="clean validation error (percent) a member may reach at its chosen strength "
                        "(none given: plain's validation error + 1)")
    X.add_model_arguments(p, pieces=3)
    X.add_optimizer_arguments(p, epochs=30, batch_size=32, lr=0.05, adam=False)
    g = p.add_argument_group("execution")
    g.add_argument("--workers", type=X.positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="processes of the local pool (or LocalCluster workers), one BLAS thread each")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--serial", action="store_true", help="run the cells one after another in this process")
    where.add_argument("--dask", choices=("local",), default=None,
                       help="local: start a dask.distributed LocalCluster of --workers processes")
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://host:8786)")
    g = p.add_argument_group("run")
    g.add_argument("--out", metavar="DIR", default="runs/sweep",
                   help="output directory; finished cells in it are reused (the sweep resumes)")
    g.add_argument("--quick", action="store_true",
                   help="a smoke run: 5 members, two strengths, two seeds, tiny data and network, 8 epochs")
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-cell lines")


class GivenStrengths(tuple):
    """(member or None, [values]) as parsed from one --strengths word; prints as that word."""

    def __str__(self):
        return ("" if self[0] is None else f"{self[0]}=") + ",".join(f"{v:g}" for v in self[1])


def strength_list(text: str) -> GivenStrengths:
    """A flag type: 'V' (every member) → (None, [V]); 'MEMBER=V,V' → (MEMBER, [V, V])."""
    name, _, values = text.rpartition("=")
    if name and name not in MEMBERS:
        raise argparse.ArgumentTypeError(f"unknown member {name!r} (one of {', '.join(MEMBERS)})")
    return GivenStrengths((name or None, [X.positive_float(v) for v in values.split(",")]))


def strengths_of(args, name: str, n_features: int) -> list:
    """The member's strengths: those named for it in --strengths, else those given for every member,
    else its default grid."""
    if KNOBS[name] is None:
        return [None]
    given = args.strengths or []
    named = [v for member, values in given if member == name for v in values]
    for_all = [v for member, values in given if member is None for v in values]
    return named or for_all or default_strengths(name, n_features, args.quick)


def _check(args):
    """Every flag, before any work."""
    if args.arch != "mlp":  # the shared model flags offer it; a sweep's cells build Maxout MLPs only
        raise InvalidArgument(f"--arch {args.arch}: sweep trains Maxout MLPs only (compare and train take "
                              "--arch conv)")
    if not args.valid_fraction:
        raise InvalidArgument("--valid-fraction must be > 0: strengths and epochs are chosen on validation")
    if args.seed + args.seeds - 1 > 2**63 - 1:
        raise InvalidArgument(f"--seed {args.seed} --seeds {args.seeds} runs past the largest seed 2**63 - 1")
    if args.clean_budget is not None and args.clean_budget > 100:
        raise InvalidArgument(f"--clean-budget is in percent and must be <= 100, got {args.clean_budget:g}")
    if args.scheduler is not None:
        host, _, port = args.scheduler.rpartition("://")[2].rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgument(f"--scheduler must be an address like tcp://host:8786, got {args.scheduler!r}")
    strange = [m for m, _ in args.strengths or [] if m is not None and args.members and m not in args.members]
    if strange:
        raise InvalidArgument(f"--strengths names {', '.join(strange)}, not among --members")
    if args.dask or args.scheduler:
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise InvalidArgument("--dask and --scheduler need Dask: pip install 'minigrad[sweep]' "
                                  "(or drop the flag for the local process pool)") from None


def _quick(args):
    args.members = args.members or list(QUICK_MEMBERS)
    args.seeds, args.epochs, args.pgd_steps = 2, min(args.epochs, 8), min(args.pgd_steps, 5)
    args.train_size, args.test_size = args.train_size or 600, args.test_size or 300
    if args.units == [240, 240]:
        args.units = [48, 48]


def configs_for(args, members: list, n_features: int) -> list:
    """Every cell's config, in order: member, strength, seed."""
    grid, budgets = attacks(n_features, args.eps, args.quick)
    base = {"version": 1,  # bump when what a cell computes changes: old cells then stop matching
            "data": {"name": args.data, "dir": args.data_dir, "train_size": args.train_size,
                     "test_size": args.test_size, "valid_fraction": args.valid_fraction, "split_seed": 0},
            "model": {"units": list(args.units), "pieces": args.pieces, "input_dropout": args.input_dropout,
                      "hidden_dropout": args.hidden_dropout},
            "optim": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "lr_decay": args.lr_decay,
                      "momentum": list(args.momentum), "max_col_norm": args.max_col_norm},
            "eps": args.eps, "attacks": grid, "budgets": budgets, "pgd_steps": args.pgd_steps}
    configs = []
    for m in members:
        knob = KNOBS[m]
        values = [None] if knob is None else strengths_of(args, m, n_features)
        for s in dict.fromkeys(values):
            for seed in range(args.seed, args.seed + args.seeds):
                configs.append({**base, "member": m, "knob": knob, "strength": s, "seed": seed})
    return configs


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


def run(args) -> int:
    _check(args)
    if args.quick:
        _quick(args)
    members = list(dict.fromkeys(args.members or MEMBERS))
    mode = "serial" if args.serial else "dask" if args.dask or args.scheduler else "pool"
    out = X.prepare_out(args.out, ())
    train, _, _ = _data(args.data, args.data_dir, args.train_size, args.test_size, args.valid_fraction, 0)
    configs = configs_for(args, members, train.x.shape[1])
    keys = [cell_key(c) for c in configs]
    with open(out / "command.txt", "a") as f:
        f.write(command_line(args) + "\n")
    done = finished(out, configs)
    todo = [c for c, k in zip(configs, keys) if k not in done]
    where = {"serial": "in this process", "pool": f"on a pool of {args.workers} processes",
             "dask": f"on Dask ({args.scheduler or 'a LocalCluster of ' + str(args.workers) + ' workers'})"}[mode]
    print(f"sweep: {len(configs)} cells ({len(members)} members × strengths × {args.seeds} seeds); "
          f"{len(done)} finished earlier, {len(todo)} to run {where}", file=sys.stderr, flush=True)
    stream = None if args.quiet else sys.stderr
    bar, records, start = CellBar(len(todo), 1 if mode == "serial" else args.workers, stream), dict(done), \
        time.perf_counter()
    try:
        for record in execute(todo, mode, args.workers, args.scheduler or args.dask):
            store(out, record)
            records[record["key"]] = record
            bar.update(record)
    except KeyboardInterrupt:
        bar.close()
        print(f"sweep: interrupted; {len(records)} of {len(configs)} cells are kept in {out / 'cells'}; "
              "the same command continues", file=sys.stderr)
        return 130
    bar.close()
    seconds = time.perf_counter() - start
    written = write_reports(out, [records[k] for k in keys], args, train.x.shape[1], KNOBS)
    if "matched.md" in written:
        print((out / "matched.md").read_text().split("\n\n", 3)[-1].strip())  # the table, as compare prints its own
    failed = sum(records[k]["status"] != "ok" for k in keys)
    print(f"sweep: {len(todo)} cells ran in {seconds:.1f} s ({failed} of {len(configs)} diverged or failed); "
          f"wrote {', '.join(written)} to {out}", file=sys.stderr)
    return 0


COMMAND = (add_arguments, run)  # what cli.build_parser registers
