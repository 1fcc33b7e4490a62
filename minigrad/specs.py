"""What a run is, as data: small frozen dataclasses that the commands are built from and pass down.

A command turns its flags into specs once (``flags``), and from then on the library sees specs or
plain arguments, never an argparse namespace.  Each spec builds what it describes::

    DataSpec   which data set, how much of it, the validation split   -> .load()  (train, valid, test)
    ModelSpec  the network: a Maxout MLP or a conv Maxout preset      -> .build(shape, classes, seed)
    OptimSpec  the optimiser, its schedules and the epochs and batch  -> .build(params)
    RunSpec    the seed, where the arrays live, BLAS threads, output, progress

and ``as_dict`` turns any spec into JSON-ready data: what a result records to say how it was made,
and what a sweep cell's config is made of.  The output directory and the BLAS thread limit, which
every command shares, are here too.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import backend, datasets, nn, optim, optional
from .cifar import load_cifar10
from .errors import InvalidArgument, OutputError

DATASETS = datasets.NAMES + ("cifar10",)
ARCHITECTURES = ("mlp", "conv")
MAX_PARAMETERS = 2**29  # 2 GiB of float32 weights, before gradients and optimiser state


def as_dict(spec) -> dict:
    """A spec (or a spec of specs) as JSON-ready data: tuples become lists."""
    def plain(v):
        return [plain(x) for x in v] if isinstance(v, (tuple, list)) else v
    return {k: (as_dict(v) if dataclasses.is_dataclass(v) else plain(v))
            for k, v in ((f.name, getattr(spec, f.name)) for f in dataclasses.fields(spec))}


def load_dataset(name: str, data_dir=None):
    """(train, test) by name: the IDX and embedded sets of ``datasets.load``, and CIFAR-10."""
    if name == "cifar10":
        return load_cifar10(data_dir)
    return datasets.load(name, data_dir)


@dataclass(frozen=True)
class DataSpec:
    """A data set (``name`` in DATASETS, read from ``dir``), its first ``train_size`` / ``test_size``
    examples (None: all), and a validation split of ``valid_fraction`` of the training part (0: none),
    drawn with ``split_seed``."""
    name: str = "digits"
    dir: str | None = None
    train_size: int | None = None
    test_size: int | None = None
    valid_fraction: float = 0.0
    split_seed: int = 0

    def load(self):
        """(train, valid or None, test); a missing or bad file is one clear error before any work."""
        train, test = load_dataset(self.name, self.dir)
        train, test = datasets.head(train, self.train_size), datasets.head(test, self.test_size)
        valid = None
        if self.valid_fraction:
            train, valid = datasets.train_valid_split(train, self.valid_fraction, seed=self.split_seed)
        return train, valid, test


@dataclass(frozen=True)
class ModelSpec:
    """The network: a Maxout MLP, in -> Maxout(units[0] × pieces) -> ... -> linear logits, with dropout
    on the input and the hidden layers; or (``arch='conv'``) the conv Maxout network ``conv_preset``."""
    arch: str = "mlp"
    conv_preset: str = "small"
    units: tuple = (240, 240)
    pieces: int = 3
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    init_range: float | None = None  # every weight ~ U(−r, r) (pylearn2's irange); None: 1/√fan-in

    def build(self, example_shape: tuple, n_classes: int, seed: int, device: str = "cpu"):
        """The network on ``device``; an MLP whose weights alone would not fit comfortably in memory
        is refused before any allocation."""
        if self.arch == "conv":
            try:
                return nn.conv_maxout(self.conv_preset, in_shape=example_shape, n_classes=n_classes,
                                      seed=seed).to(device)
            except InvalidArgument as e:
                raise InvalidArgument(f"--arch conv --conv-preset {self.conv_preset} does not fit examples of "
                                      f"shape {tuple(example_shape)}: {e}") from None
        widths = [math.prod(example_shape), *self.units]
        count = sum((a + 1) * b * self.pieces for a, b in zip(widths, widths[1:])) + (widths[-1] + 1) * n_classes
        if count > MAX_PARAMETERS:
            raise InvalidArgument(f"--units {' '.join(map(str, self.units))} --pieces {self.pieces} would make "
                                  f"{count:,} parameters ({4 * count / 2**30:.0f} GiB of float32); "
                                  f"the limit is {MAX_PARAMETERS:,}")
        return nn.maxout_mlp(math.prod(example_shape), tuple(self.units), self.pieces, n_classes,
                             input_dropout=self.input_dropout, hidden_dropout=self.hidden_dropout,
                             seed=seed, init_range=self.init_range).to(device)


@dataclass(frozen=True)
class OptimSpec:
    """The optimiser: SGD with momentum ramped linearly from ``momentum[0]`` to ``momentum[1]`` over
    ``momentum_epochs`` epochs (None: the whole run), or Adam (which has no momentum knob); the learning
    rate times ``lr_decay`` after each epoch (``lr_decay_per='step'``: after each step; pylearn2 divides by
    1.000004 a step), never below ``lr_min``; every weight column's L2 norm bounded by ``max_col_norm``
    after each step (0: none)."""
    optimizer: str = "sgd"
    epochs: int = 10
    batch_size: int = 100
    lr: float = 0.1
    lr_decay: float = 1.0
    momentum: tuple = (0.5, 0.7)
    max_col_norm: float = optim.MAXOUT_MAX_COL_NORM
    lr_decay_per: str = "epoch"
    lr_min: float = 0.0
    momentum_epochs: int | None = None

    def build(self, params):
        max_norm = self.max_col_norm or None
        lr = self.lr if self.lr_decay == 1 else optim.ExponentialDecay(self.lr, self.lr_decay, per=self.lr_decay_per,
                                                                       minimum=self.lr_min)
        if self.optimizer == "adam":
            return optim.Adam(params, lr=lr, max_col_norm=max_norm)
        momentum = optim.LinearRamp(*self.momentum, length=self.momentum_epochs or self.epochs)
        return optim.SGD(params, lr=lr, momentum=momentum, max_col_norm=max_norm)


@dataclass(frozen=True)
class RunSpec:
    """How a run is carried out, not what it computes: ``seed`` (initialisation, dropout, example order,
    the regularizers' noise), ``device``, BLAS ``threads`` (None: the library's own choice), the output
    directory ``out`` (None: nothing written) and ``quiet`` (no progress)."""
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    out: str | None = None
    quiet: bool = False


# --- what every command shares: the device, BLAS threads, the output directory -------------------------
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
    threadpoolctl = optional.require("threadpoolctl", "tutorials", "--threads")
    return threadpoolctl.threadpool_limits(limits=n, user_api="blas")


def prepare_out(path, run_files: tuple, resume: bool = False, overwrite: bool = False, layout: dict | None = None
                ) -> Path:
    """Check an output directory before any work: creatable, a directory, writable, its name valid UTF-8,
    and each entry of ``layout`` (name → 'dir' or 'file', what the command will write there) either
    absent or of that kind; the 'dir' entries are created.

    ``run_files``: the names that mark a previous run in it.  If one is there, refuse unless
    ``resume`` (continue it) or ``overwrite`` (the old files are moved into ``DIR/replaced/``, or
    ``replaced-2/``, ... when an earlier one is there: never deleted).  Returns the directory as a Path."""
    if not str(path).strip():  # Path("") is the current directory: never write there by accident
        raise OutputError("--out must name a directory, got an empty string")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 reach Python as surrogates, which cannot be printed
        raise OutputError(f"--out {ascii(str(path))} is not valid UTF-8; choose a name of UTF-8 text") from None
    out = Path(path)
    if out.is_symlink() and not out.exists():
        raise OutputError(f"--out {out} is a symbolic link to nothing (dangling, or a loop)")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"--out {out} cannot be written to ({e.strerror or e})") from None
    for name, kind in (layout or {}).items():
        entry = out / name
        if entry.is_symlink() and not entry.exists():
            raise OutputError(f"--out {out}: {entry} is a symbolic link to nothing; remove it")
        if entry.exists() and entry.is_dir() != (kind == "dir"):
            raise OutputError(f"--out {out}: {entry} is a {'directory' if entry.is_dir() else 'file'}, but this "
                              f"command writes a {'directory' if kind == 'dir' else 'file'} there; move it away")
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
    for name, kind in (layout or {}).items():
        if kind == "dir":
            (out / name).mkdir(exist_ok=True)
    return out
