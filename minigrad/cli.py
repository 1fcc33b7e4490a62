"""The command line: ``python -m minigrad COMMAND [options]`` (also installed as ``minigrad``).

    python -m minigrad train --data digits --epochs 30 --batch-size 32 --hidden-dropout 0.5 --out runs/digits
    python -m minigrad train --epochs 40 --out runs/digits --resume      # continue that run to epoch 40
    python -m minigrad evaluate runs/digits/checkpoint.npz
    python -m minigrad compare                                          # the family side by side

Each subcommand is a pair of functions, ``add_arguments(parser)`` and ``run(args) -> exit code``,
registered in ``build_parser`` with one ``add_command`` line; the flags they share are declared
once, in ``experiment``.  Errors reach a person one way: every ``MinigradError`` (a bad value, a
missing or invalid dataset, a damaged checkpoint, an unusable output directory, a diverged run)
is one line on stderr and its exit code (see ``errors``: 2 usage, 3 data, 4 files, 5 diverged,
130 interrupted); anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from . import experiment as X
from . import train
from .checkpoint import Checkpointing, last_good, load_checkpoint, read_checkpoint, write_atomically
from .errors import CheckpointError, InvalidArgument, MinigradError

RUN_FILES = ("checkpoint.npz", "metrics.json")


# --- train ----------------------------------------------------------------------------------------
def add_train_arguments(p):
    X.add_data_arguments(p)
    X.add_model_arguments(p, pieces=5)
    optimisation = X.add_optimizer_arguments(p, epochs=10, batch_size=100, lr=0.1)
    optimisation.add_argument(
        "--patience", type=X.positive_int, default=None, metavar="N",
        help="stop when the validation error has not improved for N epochs and keep the best epoch's "
             "parameters (needs --valid-fraction)")
    X.add_run_arguments(p, out=None, threads=None)
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last good checkpoint, with its own settings, "
                            "up to --epochs in all (bit for bit as if it had never stopped)")
    again.add_argument("--overwrite", action="store_true",
                       help="start again in an --out that holds a run (its files move to DIR/replaced/)")


def _resume_settings(args, out):
    """The stored run's flags, with this command's --epochs, --out, --device, --threads, --quiet."""
    found = last_good(out / "checkpoint.npz")
    if found is None:
        raise CheckpointError(f"--resume: neither {out / 'checkpoint.npz'} nor its .prev holds a good checkpoint")
    path, epoch = found
    stored = read_checkpoint(path)[2].get("args")  # the meta alone: no model is built just to read it
    if not isinstance(stored, dict):
        raise CheckpointError(f"--resume: {path} does not record the flags of its run")
    keep = {k: getattr(args, k) for k in ("epochs", "out", "device", "threads", "quiet", "resume", "overwrite",
                                         "handler", "subparser")}
    if args.epochs <= epoch:
        raise InvalidArgument(f"--resume: {path} is already at epoch {epoch}; ask for more with --epochs")
    for k, v in stored.items():
        setattr(args, k, v)
    for k, v in keep.items():
        setattr(args, k, v)
    return path


def run_train(args) -> int:
    if args.patience is not None and not args.valid_fraction:
        args.subparser.error("--patience needs a validation set: add --valid-fraction, e.g. 0.1")
    X.check_device(args.device)
    out = X.prepare_out(args.out, RUN_FILES, args.resume, args.overwrite) if args.out is not None else None
    if args.resume and out is None:
        args.subparser.error("--resume needs --out DIR, the run to continue")
    resume_from = _resume_settings(args, out) if args.resume else None
    train_set, valid_set, test_set = X.load_data(args)
    model = X.build_model(args, train_set.image_shape, train_set.n_classes)
    optimizer = X.build_optimizer(args, model.parameters())
    resume = load_checkpoint(resume_from, model, optimizer) if resume_from else None
    settings = X.settings(args)
    report = {"data": args.data, "args": settings, "checkpoint": "checkpoint.npz",
              "sizes": {"train": len(train_set), "test": len(test_set), "valid": len(valid_set or ())}}

    def write_metrics(history, **more):  # beside every checkpoint, agreeing with it (same epoch)
        metrics = {**report, "epoch": history[-1]["epoch"] if history else 0, "history": history, **more}
        write_atomically(out / "metrics.json", lambda f: f.write(json.dumps(metrics, indent=1).encode()))

    saver = Checkpointing(out / "checkpoint.npz", {"data": args.data, "args": settings}, write_metrics) \
        if out else None
    start = time.perf_counter()
    with X.blas_threads(args.threads):
        history = train.fit(model, train.cross_entropy_objective, optimizer, train_set, valid_set,
                            epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, patience=args.patience,
                            checkpoint=saver, progress=not args.quiet, resume=resume)
        test = train.evaluate(model, test_set)
    seconds = time.perf_counter() - start
    print(f"{test_set.name}: error {test.error:.2%} ({round(test.error * len(test_set))}/{len(test_set)}), "
          f"loss {test.loss:.4f}, after {len(history)} epochs in {seconds:.2f} s")
    if out:
        write_metrics(history, test=test._asdict(), seconds=seconds)
        print(f"wrote {out / 'checkpoint.npz'} and {out / 'metrics.json'}")
    return 0


# --- evaluate -------------------------------------------------------------------------------------
def add_evaluate_arguments(p):
    p.add_argument("checkpoint", help="a checkpoint.npz written by `train --out`")
    p.add_argument("--data", choices=X.DATASETS, default=None, help="dataset (none given: the one it was trained on)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="directory holding the IDX files (none given: the one it was trained from)")
    p.add_argument("--batch-size", type=X.positive_int, default=1000, metavar="B", help="examples per forward pass")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the arrays live")


def run_evaluate(args) -> int:
    X.check_device(args.device)
    model, meta = load_checkpoint(args.checkpoint)
    name = args.data or meta.get("data")
    if name not in X.DATASETS:
        args.subparser.error(f"{args.checkpoint} does not say which dataset it was trained on: pass --data")
    stored_dir = (meta.get("args") or {}).get("data_dir") if name == meta.get("data") else None
    _, test_set = X.load_dataset(name, args.data_dir or stored_dir)
    result = train.evaluate(model.to(args.device), test_set, args.batch_size)
    print(f"{test_set.name}: error {result.error:.2%} ({round(result.error * len(test_set))}/{len(test_set)}), "
          f"loss {result.loss:.4f}  [{args.checkpoint}, epoch {meta.get('epoch')}]")
    return 0


# --- the parser -----------------------------------------------------------------------------------
class _HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" once, only where there is a default worth showing and the help does
    not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS \
                or "default" in text:
            return text
        value = " ".join(map(str, action.default)) if isinstance(action.default, list) else action.default
        return f"{text} (default: {value})"


def add_command(commands, name: str, help: str, add_arguments, run):
    """Register subcommand ``name``: ``add_arguments(parser)`` declares its flags, ``run(args)``
    does the work and returns the exit code."""
    p = commands.add_parser(name, help=help, description=help, formatter_class=_HelpFormatter)
    add_arguments(p)
    p.set_defaults(handler=run, subparser=p)
    return p


def build_parser():
    from . import compare  # the top floor: cli dispatches to compare, compare never imports cli
    parser = argparse.ArgumentParser(
        prog="python -m minigrad", description="minigrad: train, evaluate and compare Maxout networks.",
        epilog="`python -m minigrad COMMAND --help` lists the flags of COMMAND.  Exit codes: 0 success, "
               "1 a bug (traceback), 2 bad usage, 3 data, 4 files, 5 diverged, 130 interrupted.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    add_command(commands, "train", "train a Maxout network; write a checkpoint and metrics",
                add_train_arguments, run_train)
    add_command(commands, "evaluate", "test error of a saved checkpoint", add_evaluate_arguments, run_evaluate)
    add_command(commands, "compare", "train every member of the regularizer family on the same network "
                "and compare clean and adversarial test error", compare.add_arguments, compare.run)
    add_command(commands, "sweep", "each member over strengths × seeds: trade-off frontiers, a matched-budget "
                "table, verdicts with intervals", *__import__("minigrad.sweep", fromlist=["COMMAND"]).COMMAND)
    return parser


def main(argv=None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]) and run the subcommand; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # report an unknown flag with the subcommand's usage, not the top-level one
        getattr(args, "subparser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except MinigradError as e:
        print(f"minigrad {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"minigrad {args.command}: interrupted; the last good checkpoint is kept (--resume continues)",
              file=sys.stderr)
        return 130
