"""The command line: ``python -m minigrad COMMAND [options]`` (also installed as ``minigrad``)::

    python -m minigrad train --data digits --epochs 30 --batch-size 32 --hidden-dropout 0.5 --out runs/digits
    python -m minigrad train --epochs 40 --out runs/digits --resume      # continue that run to epoch 40
    python -m minigrad evaluate runs/digits/checkpoint.npz
    python -m minigrad compare                                          # the family side by side
    python -m minigrad sweep --quick                                    # strengths × seeds, with verdicts
    python -m minigrad reproduce maxout-mnist-pi --data-dir DIR         # a paper's experiment, its numbers beside

``COMMANDS`` is the one table of commands: each row names the flags (``flags.add_*``), how they become
specs (``flags.*_spec``) and the function that runs them.  Errors reach a person one way: every
``MinigradError`` (a bad value, a missing or invalid dataset, a damaged checkpoint, an unusable output
directory, a diverged run) and every file-system failure is one line on stderr with its exit code (see
``errors``: 2 usage, 3 data, 4 files, 5 diverged, 130 interrupted by Ctrl-C, 143 by SIGTERM); anything
else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from . import backend, compare, flags, reproduce, sweep, train
from .checkpoint import Checkpointing, last_good, load_checkpoint, read_checkpoint, write_atomically
from .errors import CheckpointError, InvalidArgument, MinigradError, Terminated
from .specs import DATASETS, blas_threads, check_device, load_dataset, prepare_out

RUN_FILES = ("checkpoint.npz", "metrics.json")
# What a resumed run may change: how far it goes and how it is carried out, not what it computes.
NOT_THE_RUN = ("epochs", "out", "device", "threads", "quiet", "resume", "overwrite")


# --- train ----------------------------------------------------------------------------------------
def _stored_flags(out):
    """(checkpoint path, its epoch, the flags its run was started with)."""
    found = last_good(out / "checkpoint.npz")
    if found is None:
        raise CheckpointError(f"--resume: neither {out / 'checkpoint.npz'} nor its .prev holds a good checkpoint")
    path, epoch = found
    stored = read_checkpoint(path)[2].get("args")  # the meta alone: no model is built just to read it
    if not isinstance(stored, dict):
        raise CheckpointError(f"--resume: {path} does not record the flags of its run")
    return path, epoch, stored


def _resume_flags(args, given: set, out):
    """Put the stored run's flags into ``args`` (keeping this command's --epochs, --out, --device,
    --threads, --quiet); a flag typed now that would change the run is refused, naming it."""
    path, epoch, stored = _stored_flags(out)
    if args.epochs is None or args.epochs <= epoch:
        raise InvalidArgument(f"--resume: {path} is already at epoch {epoch}; ask for more with --epochs")
    def same(a, b):
        return (list(a) if isinstance(a, (list, tuple)) else a) == (list(b) if isinstance(b, (list, tuple)) else b)
    changed = [d for d in sorted(given - set(NOT_THE_RUN)) if d in stored and not same(getattr(args, d), stored[d])]
    if changed:
        words = [f"--{d.replace('_', '-')} (now {getattr(args, d)}, the run's {stored[d]})" for d in changed]
        raise InvalidArgument(f"--resume continues the run in {out} with its own settings; {', '.join(words)} "
                              "would change it: drop the flag, or start a new run with another --out")
    for k, v in stored.items():
        if k not in NOT_THE_RUN and hasattr(args, k):
            setattr(args, k, v)
    if args.optimizer == "adam":
        args.momentum = None  # older checkpoints stored SGD's default momentum beside Adam
    return path


def run_train(args, given: set) -> int:
    if args.resume and args.out is None:
        args.subparser.error("--resume needs --out DIR, the run to continue")
    try:
        flags.train_specs(args)  # every flag checked before the output directory is touched
    except InvalidArgument as e:
        args.subparser.error(str(e))
    out = prepare_out(args.out, RUN_FILES, args.resume, args.overwrite) if args.out is not None else None
    resume_from = _resume_flags(args, given, out) if args.resume else None
    data, model_spec, optim_spec, run = flags.train_specs(args)
    check_device(run.device)
    train_set, valid_set, test_set = data.load()
    model = model_spec.build(train_set.image_shape, train_set.n_classes, run.seed, run.device)
    if out is None and not run.quiet:
        print("train: no --out given: the trained model is not saved", file=sys.stderr)
    optimizer = optim_spec.build(model.parameters())
    resume = load_checkpoint(resume_from, model, optimizer) if resume_from else None
    settings = {k: v for k, v in vars(args).items() if k not in ("handler", "subparser", "command", "spec",
                                                                 "default_epochs")}
    settings.update(units=list(model_spec.units), epochs=optim_spec.epochs,
                    momentum=list(optim_spec.momentum) if optim_spec.optimizer == "sgd" else None)
    report = {"data": data.name, "args": settings, "checkpoint": "checkpoint.npz",
              "sizes": {"train": len(train_set), "test": len(test_set), "valid": len(valid_set or ())}}

    def write_metrics(history, **more):  # beside every checkpoint, agreeing with it (same epoch)
        metrics = {**report, "epoch": history[-1]["epoch"] if history else 0, "history": history, **more}
        write_atomically(out / "metrics.json", lambda f: f.write(json.dumps(metrics, indent=1).encode()))

    saver = Checkpointing(out / "checkpoint.npz", {"data": data.name, "args": settings}, write_metrics) \
        if out else None
    start = time.perf_counter()
    with blas_threads(run.threads):
        history = train.fit(model, train.cross_entropy_objective, optimizer, train_set, valid_set,
                            epochs=optim_spec.epochs, batch_size=optim_spec.batch_size, seed=run.seed,
                            patience=args.patience, checkpoint=saver, progress=not run.quiet, resume=resume)
        test = train.evaluate(model, test_set)
    seconds = time.perf_counter() - start
    print(f"{test_set.name}: error {test.error:.2%} ({round(test.error * len(test_set))}/{len(test_set)}), "
          f"loss {test.loss:.4f}, after {len(history)} epochs in {seconds:.2f} s")
    if out:
        write_metrics(history, test=test._asdict(), seconds=seconds)
        print(f"wrote {out / 'checkpoint.npz'} and {out / 'metrics.json'}")
    return 0


# --- evaluate -------------------------------------------------------------------------------------
def evaluate_checkpoint(checkpoint: str, data: str | None = None, data_dir: str | None = None,
                        batch_size: int = 1000, device: str = "cpu") -> int:
    check_device(device)
    model, meta = load_checkpoint(checkpoint)
    name = data or meta.get("data")
    if name not in DATASETS:
        raise InvalidArgument(f"{checkpoint} does not say which dataset it was trained on: pass --data")
    stored_dir = (meta.get("args") or {}).get("data_dir") if name == meta.get("data") else None
    _, test_set = load_dataset(name, data_dir or stored_dir)
    result = train.evaluate(model.to(device), test_set, batch_size)
    print(f"{test_set.name}: error {result.error:.2%} ({round(result.error * len(test_set))}/{len(test_set)}), "
          f"loss {result.loss:.4f}  [{checkpoint}, epoch {meta.get('epoch')}]")
    return 0


def run_evaluate(args, given: set) -> int:
    return evaluate_checkpoint(args.checkpoint, args.data, args.data_dir, args.batch_size, args.device)


# --- the table of commands ------------------------------------------------------------------------
# name: (help, declares the flags, runs the parsed flags given the set of flags typed)
COMMANDS = {
    "train": ("train a Maxout network; write a checkpoint and metrics", flags.add_train_arguments, run_train),
    "evaluate": ("test error of a saved checkpoint", flags.add_evaluate_arguments, run_evaluate),
    "compare": ("train every member of the regularizer family on the same network and compare clean and "
                "adversarial test error", flags.add_compare_arguments,
                lambda args, given: compare.run(flags.compare_spec(args, args.argv))),
    "sweep": ("each member over strengths × seeds: trade-off frontiers, a matched-budget table, verdicts with "
              "intervals", flags.add_sweep_arguments, lambda args, given: sweep.run(flags.sweep_spec(args, args.argv))),
    "reproduce": ("one of the papers' experiments by its own recipe and protocol; the paper's numbers beside ours",
                  flags.add_reproduce_arguments,
                  lambda args, given: reproduce.run(flags.reproduce_spec(args, args.argv))),
}
CONTINUE = {"train": "the last good checkpoint is kept (--resume continues)",
            "evaluate": "nothing was written",
            "compare": "every finished member is kept (the same command continues)",
            "sweep": "every finished cell is kept (the same command continues)",
            "reproduce": "the last good epoch is kept (the same command continues)"}


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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minigrad", description="minigrad: train, evaluate and compare Maxout networks.",
        epilog="`python -m minigrad COMMAND --help` lists the flags of COMMAND.  Exit codes: 0 success, "
               "1 a bug (traceback), 2 bad usage, 3 data, 4 files, 5 diverged, 130 interrupted, 143 terminated.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name, (text, add_arguments, run) in COMMANDS.items():
        p = commands.add_parser(name, help=text, description=text, formatter_class=_HelpFormatter)
        add_arguments(p)
        p.set_defaults(handler=run, subparser=p)
    return parser


def _typed(subparser, words) -> set:
    """The dests of the flags typed in ``words`` (a namespace pre-filled with a marker keeps argparse
    from filling in defaults, so what is left unmarked was typed)."""
    marker = object()
    probe = argparse.Namespace(**{a.dest: marker for a in subparser._actions})
    subparser.parse_known_args(words, namespace=probe)
    return {k for k, v in vars(probe).items() if v is not marker}


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]) and run the subcommand; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # report an unknown flag with the subcommand's usage, not the top-level one
        getattr(args, "subparser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    words = argv[argv.index(args.command) + 1:]
    args.argv = words
    given = _typed(args.subparser, words)
    backend.keep_freed_memory()  # the user asked for heavy work: see its docstring
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return args.handler(args, given)
    except MinigradError as e:
        print(f"minigrad {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the file system failed under us (a full disk, a path that turned into a file)
        what = f" ({e.filename})" if e.filename else ""
        print(f"minigrad {args.command}: error: {e.strerror or e}{what}; {CONTINUE[args.command]}", file=sys.stderr)
        return 4
    except KeyboardInterrupt as e:
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"minigrad {args.command}: {how}; {CONTINUE[args.command]}", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
