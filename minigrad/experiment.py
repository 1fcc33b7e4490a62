"""What every command shares: its flags, their checks, the model and optimiser they describe, and
the output directory, each said once.

``cli`` (train, evaluate) and ``compare`` both build on this module; neither imports the other's
internals.  Every flag's type is a ``validate`` function, so a flag accepts exactly what the Python
argument it feeds accepts, and a bad value is refused by the parser, before any work.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import tempfile
from pathlib import Path

from . import backend, datasets, nn, optim, validate
from .errors import InvalidArgument, OutputError

DATASETS = datasets.NAMES + ("cifar10",)
ARCHITECTURES = ("mlp", "conv")


# --- flag types: a bad value becomes an argparse error naming the flag and the value --------------
def flag(kind, check, expected: str):
    """An argparse type: convert the text with ``kind``, then ``check(value)`` (a validator that
    raises InvalidArgument); the error says ``expected`` and repeats the text given."""
    def parse(text):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            return check(value)
        except InvalidArgument:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}") from None
    parse.__name__ = expected  # argparse names the type in some messages
    return parse


# Counts are bounded by what a run can use: 10⁶ epochs, steps or units is already beyond any machine's
# patience or memory, and an unbounded count (1e23 epochs) would run "forever" instead of being refused.
MAX_COUNT = 10**6
positive_int = flag(int, lambda v: validate.integer(v, "value", "flag", low=1, high=MAX_COUNT),
                    f"an integer in [1, {MAX_COUNT}]")
seed = flag(int, lambda v: validate.integer(v, "seed", "flag", low=0, high=2**63 - 1), "an integer >= 0")
positive_float = flag(float, lambda v: validate.number(v, "value", "flag", low=0, open_low=True),
                      "a finite number > 0")
non_negative_float = flag(float, lambda v: validate.number(v, "value", "flag", low=0), "a finite number >= 0")
probability = flag(float, lambda v: validate.probability(v, "value", "flag"), "a number in [0, 1)")
decay_factor = flag(float, lambda v: validate.number(v, "value", "flag", low=0, high=1, open_low=True),
                    "a number in (0, 1]")
pixel_budget = flag(float, lambda v: validate.number(v, "eps", "flag", low=0, high=1, open_low=True),
                    "a number in (0, 1] (pixels lie in [0, 1])")


# --- the flags every command shares ---------------------------------------------------------------
def add_data_arguments(p, valid=True):
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=DATASETS, default="digits",
                   help="digits (8x8, bundled with scikit-learn), mnist, fashion-mnist (IDX files), cifar10 "
                        "(the python-version batches, read without unpickling code)")
    g.add_argument("--data-dir", metavar="DIR", default=None,
                   help=f"directory holding the four IDX files or CIFAR-10's batches (default: "
                        f"${datasets.DATA_ENV}, or {datasets.FASHION_MNIST_DIR} for fashion-mnist)")
    if valid:
        g.add_argument("--valid-fraction", type=probability, default=0.0, metavar="F",
                       help="hold out this fraction of the training set for validation (0: none)")


def add_model_arguments(p, pieces: int):
    g = p.add_argument_group("model: a Maxout MLP, in -> Maxout(units x pieces) ... -> linear logits, "
                             "or a convolutional Maxout network")
    g.add_argument("--arch", choices=ARCHITECTURES, default="mlp",
                   help="mlp: the Maxout MLP below; conv: the convolutional Maxout network of --conv-preset")
    g.add_argument("--conv-preset", choices=tuple(nn.PRESETS), default="small",
                   help="small: 2 conv-maxout layers for 28x28 digits in minutes; cifar10: the Maxout paper's "
                        "CIFAR-10 network (three conv-maxout layers, dense Maxout 500x5)")
    g.add_argument("--units", type=positive_int, nargs="+", default=[240, 240], metavar="N",
                   help="Maxout units of each hidden layer")
    g.add_argument("--pieces", type=positive_int, default=pieces, metavar="K", help="linear pieces per Maxout unit")
    g.add_argument("--input-dropout", type=probability, default=0.0, metavar="P",
                   help="dropout rate of the input (the Maxout paper: 0.2)")
    g.add_argument("--hidden-dropout", type=probability, default=0.0, metavar="P",
                   help="dropout rate of each hidden layer (the Maxout paper: 0.5)")


def add_optimizer_arguments(p, epochs: int, batch_size: int, lr: float, adam=True):
    g = p.add_argument_group("optimisation")
    if adam:
        g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                       help="sgd: momentum ramped linearly over the run (see --momentum); adam: Kingma & Ba")
    g.add_argument("--epochs", type=positive_int, default=epochs, metavar="N", help="passes over the training set")
    g.add_argument("--batch-size", type=positive_int, default=batch_size, metavar="B", help="examples per step")
    g.add_argument("--lr", type=positive_float, default=lr, metavar="LR", help="learning rate")
    g.add_argument("--lr-decay", type=decay_factor, default=1.0, metavar="F",
                   help="multiply the learning rate by F after every epoch (1: constant)")
    g.add_argument("--momentum", type=probability, nargs=2, default=[0.5, 0.7], metavar=("START", "END"),
                   help="sgd momentum, ramped linearly from START to END over the epochs")
    g.add_argument("--max-col-norm", type=non_negative_float, default=optim.MAXOUT_MAX_COL_NORM, metavar="C",
                   help="bound the L2 norm of every weight column after each step (0: no bound)")
    return g


def add_run_arguments(p, out: str | None, threads: int | None):
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=seed, default=0, help="seeds initialisation, dropout, the example order, "
                   "the validation split and the regularizers' noise")
    g.add_argument("--out", metavar="DIR", default=out, help="output directory (created if missing)")
    g.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the arrays live")
    g.add_argument("--threads", type=positive_int, default=threads, metavar="N",
                   help="limit BLAS to N threads (none given: the BLAS library's own choice, one per core); "
                        "1 is much faster for small models or on a busy machine")
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


# --- what the flags describe ------------------------------------------------------------------------
MAX_PARAMETERS = 2**29  # 2 GiB of float32 weights, before gradients and optimiser state


def build_model(args, example_shape: tuple, n_classes: int):
    """The network the model flags describe, on ``args.device``: the Maxout MLP (refused before any
    allocation if its weights alone would not fit comfortably in memory) or a conv Maxout preset."""
    if getattr(args, "arch", "mlp") == "conv":
        try:
            return nn.conv_maxout(args.conv_preset, in_shape=example_shape, n_classes=n_classes,
                                  seed=args.seed).to(args.device)
        except InvalidArgument as e:
            raise InvalidArgument(f"--arch conv --conv-preset {args.conv_preset} does not fit examples of shape "
                                  f"{tuple(example_shape)}: {e}") from None
    widths = [math.prod(example_shape), *args.units]
    count = sum((a + 1) * b * args.pieces for a, b in zip(widths, widths[1:])) + (widths[-1] + 1) * n_classes
    if count > MAX_PARAMETERS:
        raise InvalidArgument(f"--units {' '.join(map(str, args.units))} --pieces {args.pieces} would make "
                              f"{count:,} parameters ({4 * count / 2**30:.0f} GiB of float32); "
                              f"the limit is {MAX_PARAMETERS:,}")
    return nn.maxout_mlp(math.prod(example_shape), tuple(args.units), args.pieces, n_classes,
                         input_dropout=args.input_dropout, hidden_dropout=args.hidden_dropout,
                         seed=args.seed).to(args.device)


def build_optimizer(args, params):
    """The optimiser the optimisation flags describe (SGD with a linear momentum ramp, or Adam)."""
    max_norm = args.max_col_norm or None
    lr = optim.ExponentialDecay(args.lr, args.lr_decay) if args.lr_decay != 1 else args.lr
    if getattr(args, "optimizer", "sgd") == "adam":
        return optim.Adam(params, lr=lr, max_col_norm=max_norm)
    momentum = optim.LinearRamp(*args.momentum, length=args.epochs)
    return optim.SGD(params, lr=lr, momentum=momentum, max_col_norm=max_norm)


def load_dataset(name: str, data_dir=None):
    """(train, test) by name: the IDX and embedded sets of ``datasets.load``, and CIFAR-10."""
    if name == "cifar10":
        from .cifar import load_cifar10  # a floor above datasets: it builds Datasets
        return load_cifar10(data_dir)
    return datasets.load(name, data_dir)


def load_data(args):
    """(train, valid or None, test) as the data flags say; the split is checked before any work."""
    train_set, test_set = load_dataset(args.data, args.data_dir)
    valid_set = None
    if getattr(args, "valid_fraction", 0):
        train_set, valid_set = datasets.train_valid_split(train_set, args.valid_fraction, seed=args.seed)
    return train_set, valid_set, test_set


def check_device(device: str):
    if device == "cuda" and not backend.cuda_available():
        raise InvalidArgument("--device cuda needs CuPy and a visible GPU (pip install 'minigrad[cuda]'); "
                              "use --device cpu")


def blas_threads(n):
    """Limit BLAS to n threads inside the block (None: no limit).  OpenBLAS starts one thread per
    core and they spin waiting for each other: with small matrices, or cores shared with other
    work, one thread was 5-15x faster here (2 busy cores)."""
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise InvalidArgument("--threads needs threadpoolctl (pip install threadpoolctl); "
                              "or set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS instead") from None
    return threadpool_limits(limits=n, user_api="blas")


def settings(args) -> dict:
    """The flags as JSON-ready data (what a result records to say how it was made)."""
    return {k: v for k, v in vars(args).items() if k not in ("handler", "subparser", "command")}


# --- the output directory ---------------------------------------------------------------------------
def prepare_out(path, run_files: tuple, resume: bool = False, overwrite: bool = False) -> Path:
    """Check an output directory before any work: creatable, a directory, writable.

    ``run_files``: the names that mark a previous run in it.  If one is there, refuse unless
    ``resume`` (continue it) or ``overwrite`` (the old files are moved into ``DIR/replaced/``, or
    ``replaced-2/``, ... when an earlier one is there: never deleted).  Returns the directory as a Path."""
    if not str(path).strip():  # Path("") is the current directory: never write there by accident
        raise OutputError("--out must name a directory, got an empty string")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"--out {out} cannot be written to ({e.strerror or e})") from None
    present = [name for name in run_files if (out / name).exists()]
    if resume and not present:
        raise OutputError(f"--resume: {out} holds no run to continue (no {run_files[0]})")
    if present and not (resume or overwrite):
        raise OutputError(f"--out {out} already holds a run ({', '.join(present)}); pass --resume to continue "
                          "it, --overwrite to start again (the old files move to replaced/), or another --out")
    if present and overwrite:  # into replaced/, or replaced-2/, ... if an earlier one is there
        aside = next(out / name for name in (f"replaced{'' if k == 1 else f'-{k}'}" for k in range(1, 10**6))
                     if not (out / name).exists())
        aside.mkdir()
        for name in present:
            shutil.move(str(out / name), str(aside / name))
    return out
