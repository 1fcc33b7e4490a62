"""The command line: ``python -m minigrad COMMAND [options]`` (also installed as ``minigrad``).

    python -m minigrad train --data digits --epochs 30 --batch-size 32 --dropout 0 0.5 --out runs/digits
    python -m minigrad evaluate runs/digits/checkpoint.npz

Each subcommand is a pair of functions, ``add_arguments(parser)`` and ``run(args) -> exit
code``, registered in ``build_parser`` with one ``add_command`` line.  Exit codes: 0 success,
1 a runtime failure (missing dataset, diverged training) reported in one line without a
traceback, 2 a bad flag or value (argparse prints the usage).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from . import backend, datasets, nn, optim, train

DATASETS = ("digits", "mnist", "fashion-mnist")


# --- argument types: a bad value becomes an argparse error naming the flag and the value ----------
def _number(kind, ok, expected: str):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value
    return parse


positive_int = _number(int, lambda v: v >= 1, ">= 1")
positive_float = _number(float, lambda v: v > 0, "> 0")
non_negative_float = _number(float, lambda v: v >= 0, ">= 0")
probability = _number(float, lambda v: 0 <= v < 1, "in [0, 1)")  # dropout rates, fractions, momentum
decay_factor = _number(float, lambda v: 0 < v <= 1, "in (0, 1]")


class CommandError(Exception):
    """A failure to report in one line, without a traceback (exit code 1)."""


# --- train ----------------------------------------------------------------------------------------
def add_train_arguments(p: argparse.ArgumentParser):
    data = p.add_argument_group("data")
    data.add_argument("--data", choices=DATASETS, default="digits",
                      help="dataset: digits (8x8, bundled with scikit-learn), mnist, fashion-mnist")
    data.add_argument("--data-dir", metavar="DIR", default=None,
                      help="directory holding the four IDX files for mnist/fashion-mnist "
                           f"(default: ${datasets.DATA_ENV}, or {datasets.FASHION_MNIST_DIR} for fashion-mnist)")
    data.add_argument("--valid-fraction", type=probability, default=0.0, metavar="F",
                      help="hold out this fraction of the training set for validation (0: none)")
    model = p.add_argument_group("model: a Maxout MLP, in -> Maxout(units x pieces) ... -> linear logits")
    model.add_argument("--units", type=positive_int, nargs="+", default=[240, 240], metavar="N",
                       help="Maxout units of each hidden layer")
    model.add_argument("--pieces", type=positive_int, default=5, metavar="K", help="linear pieces per Maxout unit")
    model.add_argument("--dropout", type=probability, nargs=2, default=[0.0, 0.0], metavar=("P_IN", "P_HID"),
                       help="dropout rates of the input and of each hidden layer (the Maxout paper: 0.2 0.5)")
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                     help="sgd: momentum ramped linearly over the run (see --momentum); adam: Kingma & Ba")
    opt.add_argument("--epochs", type=positive_int, default=10, metavar="N", help="passes over the training set")
    opt.add_argument("--batch-size", type=positive_int, default=100, metavar="B", help="examples per step")
    opt.add_argument("--lr", type=positive_float, default=0.1, metavar="LR", help="learning rate")
    opt.add_argument("--lr-decay", type=decay_factor, default=1.0, metavar="F",
                     help="multiply the learning rate by F after every epoch (1: constant)")
    opt.add_argument("--momentum", type=probability, nargs=2, default=[0.5, 0.7], metavar=("START", "END"),
                     help="sgd momentum, ramped linearly from START to END over the epochs")
    opt.add_argument("--max-col-norm", type=non_negative_float, default=optim.MAXOUT_MAX_COL_NORM, metavar="C",
                     help="bound the L2 norm of every weight column after each step (0: no bound)")
    opt.add_argument("--patience", type=positive_int, default=None, metavar="N",
                     help="stop when the validation error has not improved for N epochs and keep the best "
                          "epoch's parameters (needs --valid-fraction)")
    run = p.add_argument_group("run")
    run.add_argument("--seed", type=int, default=0,
                     help="seeds initialisation, dropout, the example order and the validation split")
    run.add_argument("--out", metavar="DIR", default=None,
                     help="write DIR/checkpoint.npz (after every epoch) and DIR/metrics.json (at the end)")
    run.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the arrays live")
    run.add_argument("--threads", type=positive_int, default=None, metavar="N",
                     help="limit BLAS to N threads (default: the BLAS library's own choice, usually one per "
                          "core); 1 is much faster for small models or on a busy machine")
    run.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def _build_optimizer(args, params):
    max_norm = args.max_col_norm or None
    lr = optim.ExponentialDecay(args.lr, args.lr_decay) if args.lr_decay != 1 else args.lr
    if args.optimizer == "adam":
        return optim.Adam(params, lr=lr, max_col_norm=max_norm)
    momentum = optim.LinearRamp(*args.momentum, length=args.epochs)
    return optim.SGD(params, lr=lr, momentum=momentum, max_col_norm=max_norm)


def run_train(args) -> int:
    if args.patience is not None and not args.valid_fraction:
        args.subparser.error("--patience needs a validation set: add --valid-fraction, e.g. 0.1")
    _check_device(args)
    train_set, test_set = datasets.load(args.data, args.data_dir)
    valid_set = None
    if args.valid_fraction:
        train_set, valid_set = datasets.train_valid_split(train_set, args.valid_fraction, seed=args.seed)
    model = nn.maxout_mlp(train_set.x.shape[1], args.units, args.pieces, train_set.n_classes,
                          input_dropout=args.dropout[0], hidden_dropout=args.dropout[1], seed=args.seed)
    model.to(args.device)
    optimizer = _build_optimizer(args, model.parameters())
    out = Path(args.out) if args.out else None
    settings = {k: v for k, v in vars(args).items() if k not in ("handler", "subparser")}
    start = time.perf_counter()
    with _blas_threads(args.threads):
        history = train.fit(model, train.cross_entropy_objective, optimizer, train_set, valid_set,
                            epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, patience=args.patience,
                            checkpoint=out / "checkpoint.npz" if out else None, progress=not args.quiet,
                            metadata={"data": args.data, "args": settings})
        test = train.evaluate(model, test_set)
    seconds = time.perf_counter() - start
    print(f"{test_set.name}: error {test.error:.2%} ({round(test.error * len(test_set))}/{len(test_set)}), "
          f"loss {test.loss:.4f}, after {len(history)} epochs in {seconds:.2f} s")
    if out:
        metrics = {"data": args.data, "args": settings, "sizes": {"train": len(train_set), "test": len(test_set),
                   "valid": len(valid_set) if valid_set else 0}, "epochs_run": len(history),
                   "seconds": seconds, "test": test._asdict(), "history": history, "checkpoint": "checkpoint.npz"}
        train.write_atomically(out / "metrics.json", lambda f: f.write(json.dumps(metrics, indent=1).encode()))
        print(f"wrote {out / 'checkpoint.npz'} and {out / 'metrics.json'}")
    return 0


def _blas_threads(n):
    # OpenBLAS starts one thread per core and they spin waiting for each other: with small
    # matrices, or cores shared with other work, one thread was 5-15x faster here (2 busy cores).
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise CommandError("--threads needs threadpoolctl (pip install threadpoolctl); "
                           "or set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS instead") from None
    return threadpool_limits(limits=n, user_api="blas")


def _check_device(args):
    if args.device == "cuda" and not backend.cuda_available():
        raise CommandError("--device cuda needs CuPy and a visible GPU (pip install 'minigrad[cuda]'); "
                           "use --device cpu")


# --- evaluate -------------------------------------------------------------------------------------
def add_evaluate_arguments(p: argparse.ArgumentParser):
    p.add_argument("checkpoint", help="a checkpoint.npz written by `train --out`")
    p.add_argument("--data", choices=DATASETS, default=None, help="dataset (default: the one it was trained on)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="directory holding the IDX files (default: the one it was trained from)")
    p.add_argument("--batch-size", type=positive_int, default=1000, metavar="B", help="examples per forward pass")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the arrays live")


def run_evaluate(args) -> int:
    _check_device(args)
    try:
        model, meta = train.load_checkpoint(args.checkpoint)
    except (OSError, ValueError) as e:
        raise CommandError(f"cannot load {args.checkpoint}: {e}") from None
    name = args.data or meta.get("data")
    if name is None:
        args.subparser.error(f"{args.checkpoint} does not say which dataset it was trained on: pass --data")
    _, test_set = datasets.load(name, args.data_dir or meta.get("args", {}).get("data_dir"))
    result = train.evaluate(model.to(args.device), test_set, args.batch_size)
    print(f"{test_set.name}: error {result.error:.2%} ({round(result.error * len(test_set))}/{len(test_set)}), "
          f"loss {result.loss:.4f}  [{args.checkpoint}, epoch {meta.get('epoch')}]")
    return 0


# --- the parser -----------------------------------------------------------------------------------
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" only where there is a default worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False) or isinstance(action, argparse._HelpAction):
            return action.help
        return super()._get_help_string(action)


def add_command(commands, name: str, help: str, add_arguments, run):
    """Register subcommand ``name``: ``add_arguments(parser)`` declares its flags, ``run(args)``
    does the work and returns the exit code."""
    p = commands.add_parser(name, help=help, description=help,
                            formatter_class=_HelpFormatter)
    add_arguments(p)
    p.set_defaults(handler=run, subparser=p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minigrad", description="minigrad: train and evaluate Maxout networks.",
        epilog="`python -m minigrad COMMAND --help` lists the flags of COMMAND.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    add_command(commands, "train", "train a Maxout network; write a checkpoint and metrics",
                add_train_arguments, run_train)
    add_command(commands, "evaluate", "test error of a saved checkpoint", add_evaluate_arguments, run_evaluate)
    from . import compare  # here, not at the top: compare builds on this module's argument types
    add_command(commands, "compare", "train every member of the regularizer family on the same network "
                "and compare clean and adversarial test error", compare.add_arguments, compare.run)
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
    except (datasets.DatasetNotFoundError, datasets.DatasetError, train.TrainingDiverged, CommandError) as e:
        print(f"minigrad {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minigrad {args.command}: interrupted", file=sys.stderr)
        return 130
