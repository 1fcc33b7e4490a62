"""Datasets for minigrad: image sets, an IDX reader/writer, splitting and batching.

A ``Dataset`` is an immutable pair ``x`` (float32, ``(N, D)``, images flattened,
pixels in [0, 1]) and ``y`` (int64 labels, ``(N,)``) plus ``n_classes``,
``image_shape`` and ``name``.  Sources: ``load_digits`` (scikit-learn's bundled
8x8 digits), ``load_mnist`` / ``load_fashion_mnist`` (the four standard IDX
files in a directory), ``synthetic`` (Gaussian blobs for tests).  Nothing is
ever downloaded: Fashion-MNIST comes from the Debian package
``dataset-fashion-mnist`` (four flat ``.gz`` files in
``/usr/share/datasets/fashion-mnist``) or a directory you name.

Only numpy and the standard library are imported at import time; scikit-learn
is imported by ``load_digits`` when called (``optional``), so everything else works without it.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np

from . import optional, validate
from .errors import DataError, DataNotFound, InvalidArgument

DATA_ENV = "MINIGRAD_DATA"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_FILES = {  # role -> standard file stem (each may also carry ".gz")
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_PLACE_HINT = ("place the four IDX files " + ", ".join(f"{s}[.gz]" for s in MNIST_FILES.values())
               + " in {dir} or set " + DATA_ENV)
_APT_HINT = "run `apt-get install dataset-fashion-mnist`, or "

# IDX type byte -> on-disk dtype.  IDX stores multi-byte numbers big-endian ('>').
_IDX_DTYPES = {code: np.dtype(t) for code, t in
               [(0x08, "u1"), (0x09, "i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")]}
_GZIP_MAGIC = b"\x1f\x8b"


NAMES = ("digits", "mnist", "fashion-mnist")  # what ``load`` knows, and the CLI's --data choices


# The errors of ``errors`` under the names this module had for them (kept so that imports keep working).
DatasetError = DataError  # corrupt, inconsistent or invalid data: names the file or the first bad index
DatasetNotFoundError = DataNotFound  # absent files: the message says how to get them


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """An immutable labelled dataset.

    x: float32, shape (N, D) -- one flattened example per row.
    y: int64, shape (N,) -- class index of each row, in [0, n_classes).
    image_shape: shape of one example before flattening, e.g. (28, 28).
    Validated at the door, so nothing downstream meets bad data: raises DatasetError if the
    shapes disagree, if a label is not an integer in [0, n_classes) (a float label such as 1.7
    is refused, not truncated; 2.0 is accepted), or if a pixel is NaN or infinite, naming the
    first bad index.
    """

    x: np.ndarray
    y: np.ndarray
    n_classes: int
    image_shape: tuple = ()
    name: str = ""

    def __post_init__(self):
        # Coerce once here so every consumer can rely on the dtypes.  The class
        # is frozen, hence object.__setattr__.
        who = self.name or "Dataset"
        n_classes = self.n_classes
        if isinstance(n_classes, (bool, np.bool_)) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
            raise DatasetError(f"{who}: n_classes must be an integer >= 1, got {n_classes!r}")
        object.__setattr__(self, "y", _labels(self.y, int(n_classes), who))
        object.__setattr__(self, "x", np.asarray(self.x, dtype=np.float32))
        finite = np.isfinite(self.x)
        if not finite.all():
            first = np.argwhere(~finite)[0]
            raise DatasetError(f"{who}: x[{', '.join(map(str, first))}] is {self.x[tuple(first)]}; "
                               "every input must be finite")
        if self.x.ndim != 2 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise DatasetError(f"{self.name or 'Dataset'}: expected x of shape (N, D) and y of "
                               f"shape (N,); got {self.x.shape} and {self.y.shape}")
        shape = tuple(self.image_shape) or (self.x.shape[1],)
        if math.prod(shape) != self.x.shape[1]:
            raise DatasetError(f"{self.name or 'Dataset'}: image_shape {shape} does not "
                               f"flatten to D={self.x.shape[1]}")
        object.__setattr__(self, "image_shape", shape)

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:  # the default would print both arrays in full
        return (f"Dataset(name={self.name!r}, n={len(self)}, x=float32{self.x.shape}, "
                f"n_classes={self.n_classes}, image_shape={self.image_shape})")


def _labels(y, n_classes: int, who: str) -> np.ndarray:
    """y as int64, refusing what a cast would silently change (1.7 → 1, NaN → INT64_MIN)."""
    y = np.asarray(y)
    if y.dtype.kind == "b" or y.dtype.kind not in "iuf":
        raise DatasetError(f"{who}: labels must be integers, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = ~(np.isfinite(y) & (y == np.round(y)))
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise DatasetError(f"{who}: label {y.ravel()[i]} at index {i} is not an integer")
    out = y.astype(np.int64)
    bad = (out < 0) | (out >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise DatasetError(f"{who}: label {out.ravel()[i]} at index {i} is outside [0, {n_classes})")
    return out


# --------------------------------------------------------------------------- IDX


def _read_maybe_gzip(path: Path) -> bytes:
    """Return the file's bytes, gunzipped if it starts with the gzip magic 1f 8b."""
    raw = path.read_bytes()
    # Sniff the content rather than trusting the extension: people gunzip files
    # and keep the name, or download raw files that end in ".gz".
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetError(f"{path}: corrupt gzip data ({e})") from None
    return raw


def load_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian array.

    Layout: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), an ndim byte, ndim big-endian
    uint32 sizes, then the data in C order, big-endian.
    Returns an array of shape ``dims`` and the matching native dtype.
    Raises DatasetError naming the file on a bad magic number, unknown type,
    short header, truncated data or trailing bytes; FileNotFoundError if absent.
    """
    path = Path(path)
    raw = _read_maybe_gzip(path)
    if len(raw) < 4:
        raise DatasetError(f"{path}: file is {len(raw)} bytes; an IDX header needs at least 4")
    if raw[0] or raw[1]:
        magic = struct.unpack(">I", raw[:4])[0]
        raise DatasetError(f"{path}: bad magic number 0x{magic:08X}; expected 0x0000TTNN "
                           "(two zero bytes, type byte TT, ndim byte NN)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise DatasetError(f"{path}: unknown IDX type code 0x{code:02X}; expected one of {known}")
    if ndim == 0:
        raise DatasetError(f"{path}: ndim is 0; IDX arrays need at least one dimension")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DatasetError(f"{path}: header declares {ndim} dims ({header_len} header bytes) "
                           f"but the file has only {len(raw)} bytes")
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = _IDX_DTYPES[code]
    count = math.prod(dims)  # Python ints: no overflow for absurd headers
    expected, got = count * dtype.itemsize, len(raw) - header_len
    if got < expected:
        raise DatasetError(f"{path}: truncated: shape {dims} needs {expected} data bytes, got {got}")
    if got > expected:
        raise DatasetError(f"{path}: {got - expected} trailing bytes after the {expected} "
                           f"data bytes of shape {dims}")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header_len).reshape(dims)
    # astype copies into native byte order, which also makes the result writable
    # (frombuffer over bytes is read-only).
    return data.astype(dtype.newbyteorder("="))


def save_idx(path, array) -> None:
    """Write ``array`` as an IDX file; a path ending in ".gz" is gzip-compressed.

    array: any shape with ndim >= 1 and dtype uint8, int8, int16, int32,
    float32 or float64 (any byte order).  Raises TypeError for other dtypes,
    ValueError for 0-d arrays or dimensions that do not fit in uint32.
    """
    path, arr = Path(path), np.asarray(array)
    codes = [c for c, dt in _IDX_DTYPES.items() if dt.newbyteorder("=") == arr.dtype.newbyteorder("=")]
    if not codes:
        raise TypeError(f"{path}: IDX cannot store dtype {arr.dtype}; use one of "
                        "uint8, int8, int16, int32, float32, float64")
    if arr.ndim == 0 or max(arr.shape) >= 2**32:
        raise ValueError(f"{path}: IDX needs 1..255 dims each < 2**32; got shape {arr.shape}")
    header = bytes([0, 0, codes[0], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=_IDX_DTYPES[codes[0]]).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)  # mtime=0: byte-identical reruns
    path.write_bytes(payload)


# ------------------------------------------------------------------- MNIST-style


def _find_mnist_files(root: Path) -> dict | None:
    """Map role -> existing path for the four files in ``root``, or None if any is missing."""
    found = {}
    for role, stem in MNIST_FILES.items():
        hits = [root / (stem + ext) for ext in ("", ".gz") if (root / (stem + ext)).is_file()]
        if not hits:
            return None
        found[role] = hits[0]  # prefer the uncompressed file: it loads faster
    return found


def _resolve_mnist_dir(root: Path, subdirs: tuple, hint: str) -> Path:
    """Return ``root`` or the first of its named ``subdirs`` holding the four files.

    Only named subdirectories are searched (e.g. "fashion-mnist", or torchvision's
    "FashionMNIST/raw"), never "any subdir": a data dir holding both mnist/ and
    fashion-mnist/ must not silently hand back the wrong dataset.
    """
    for candidate in (root, *(root / s for s in subdirs)):
        if _find_mnist_files(candidate) is not None:
            return candidate
    raise DatasetNotFoundError(f"no MNIST-style IDX files in {root} (also looked in "
                               f"{', '.join(subdirs)} below it): " + hint.format(dir=root))


def _images_labels(img_path: Path, lbl_path: Path, n_classes: int) -> tuple:
    """Load and cross-check one images/labels file pair; return (x, y, image_shape)."""
    images, labels = load_idx(img_path), load_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{img_path}: expected 3-D uint8 images, got {images.ndim}-D {images.dtype}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DatasetError(f"{lbl_path}: expected 1-D integer labels, got {labels.ndim}-D {labels.dtype}")
    if len(images) == 0:
        raise DatasetError(f"{img_path} holds 0 images; a data set needs at least one example")
    if len(images) != len(labels):
        raise DatasetError(f"{img_path} has {len(images)} images but {lbl_path} has "
                           f"{len(labels)} labels; the counts must match")
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        raise DatasetError(f"{lbl_path}: label {labels[bad[0]]} at index {bad[0]} is outside "
                           f"[0, {n_classes - 1}] ({bad.size} bad labels in all)")
    # Convert then divide in place: avoids a float64 temporary of the whole set.
    x = images.reshape(len(images), -1).astype(np.float32)
    x /= 255.0
    return x, labels.astype(np.int64), images.shape[1:]


def load_mnist(root, kind: str = "mnist") -> tuple[Dataset, Dataset]:
    """Load (train, test) from a directory holding the four standard IDX files.

    Each file may be raw or ".gz"; ``kind`` only names the datasets.
    x: float32 (N, H*W) in [0, 1]; y: int64 (N,) in [0, 9].
    Raises DatasetNotFoundError if a file is missing, DatasetError (naming the
    files) for wrong dims/dtypes, mismatched counts or out-of-range labels.
    """
    root = Path(root)
    files = _find_mnist_files(root)
    if files is None:
        raise DatasetNotFoundError(f"no MNIST-style IDX files in {root}: " + _PLACE_HINT.format(dir=root))
    out = []
    for split in ("train", "test"):
        x, y, shape = _images_labels(files[f"{split}_images"], files[f"{split}_labels"], 10)
        out.append(Dataset(x, y, n_classes=10, image_shape=shape, name=f"{kind}-{split}"))
    if out[0].image_shape != out[1].image_shape:
        raise DatasetError(f"{files['test_images']}: image shape {out[1].image_shape} differs "
                           f"from {files['train_images']}'s {out[0].image_shape}")
    return out[0], out[1]


def load_fashion_mnist(root=None) -> tuple[Dataset, Dataset]:
    """Load Fashion-MNIST (train 60000, test 10000, 28x28, 10 classes).

    root: defaults to $MINIGRAD_DATA if set, else /usr/share/datasets/fashion-mnist
    (Debian package dataset-fashion-mnist: the four .gz files, flat).  The files
    may sit in ``root`` or in its subdir fashion-mnist/, fashion_mnist/ or FashionMNIST/raw/.
    Raises DatasetNotFoundError saying how to install it; see load_mnist for the rest.
    """
    root = Path(root or os.environ.get(DATA_ENV) or FASHION_MNIST_DIR)
    subdirs = ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw")
    return load_mnist(_resolve_mnist_dir(root, subdirs, _APT_HINT + _PLACE_HINT), "fashion-mnist")


# ------------------------------------------------------------------ other sources


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Load scikit-learn's bundled 8x8 digits (1797 images, 10 classes) as (train, test).

    x: float32 (N, 64), the 0..16 pixel values divided by 16; y: int64 (N,).
    Split rule: ``train_valid_split`` -- a permutation from
    ``np.random.default_rng(seed)``; the last round(test_fraction * 1797)
    permuted examples are the test set (449 for 0.25), the rest train.
    Not stratified.  Raises ImportError if scikit-learn is not installed.
    """
    validate.number(test_fraction, "test_fraction", "load_digits", low=0, high=1, open_low=True, open_high=True)
    validate.integer(seed, "seed", "load_digits", low=0)
    sklearn_datasets = optional.require("sklearn.datasets", "tutorials", "load_digits", package="scikit-learn")
    bunch = sklearn_datasets.load_digits()  # reads a file shipped inside sklearn; no network
    full = Dataset(bunch.data / 16.0, bunch.target, n_classes=10, image_shape=(8, 8), name="digits")
    train, test = train_valid_split(full, test_fraction, seed=seed)
    return (dataclasses.replace(train, name="digits-train"),
            dataclasses.replace(test, name="digits-test"))


def synthetic(n: int = 512, n_features: int = 20, n_classes: int = 3, seed: int = 0,
              separation: float = 2.0) -> Dataset:
    """Gaussian blobs for tests: one unit-variance blob per class.

    Class means are drawn from N(0, 1) and scaled by ``separation`` (bigger is
    easier).  Classes are balanced (sizes differ by at most one) and shuffled.
    x: float32 (n, n_features), not scaled to [0, 1]; y: int64 (n,).
    The same arguments always give the same data.  Raises InvalidArgument unless n, n_features and
    n_classes are integers >= 1, seed an integer >= 0 and separation a finite number >= 0.
    """
    for what, v in (("n", n), ("n_features", n_features), ("n_classes", n_classes)):
        validate.integer(v, what, "synthetic", low=1)
    validate.integer(seed, "seed", "synthetic", low=0)
    validate.number(separation, "separation", "synthetic", low=0)
    rng = np.random.default_rng(seed)
    means = separation * rng.normal(size=(n_classes, n_features))
    y = rng.permutation(np.arange(n) % n_classes)
    x = means[y] + rng.normal(size=(n, n_features))
    return Dataset(x, y, n_classes=n_classes, image_shape=(n_features,), name="synthetic")


# ---------------------------------------------------------------- splitting/batching


def head(data: Dataset, n) -> Dataset:
    """The first ``n`` examples of ``data`` (all of them if n is None or at least its length); n is an
    integer >= 1 (0 would be "none" to some readers and "all" to others, and -5 a slice from the end)."""
    if n is None:
        return data
    if validate.integer(n, "n", "head", low=1) >= len(data):
        return data
    return dataclasses.replace(data, x=data.x[:n], y=data.y[:n])


def train_valid_split(data: Dataset, valid_fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split ``data`` into (train, valid) by a seeded random permutation.

    The last round(valid_fraction * N) entries of
    ``np.random.default_rng(seed).permutation(N)`` are valid, the rest train,
    so the two are disjoint and together cover ``data``.  Raises ValueError
    unless both parts would be non-empty.
    """
    validate.number(valid_fraction, "valid_fraction", "train_valid_split", low=0, high=1, open_low=True,
                    open_high=True)
    validate.integer(seed, "seed", "train_valid_split", low=0)
    n = len(data)
    n_valid = round(valid_fraction * n)
    if not 0 < valid_fraction < 1 or not 0 < n_valid < n:
        raise InvalidArgument(f"train_valid_split: valid_fraction={valid_fraction} gives {n_valid} of {n} "
                              f"{data.name or ''} examples for validation; both parts must be non-empty")
    perm = np.random.default_rng(seed).permutation(n)
    parts = perm[: n - n_valid], perm[n - n_valid:]
    return tuple(dataclasses.replace(data, x=data.x[idx], y=data.y[idx], name=f"{data.name}-{tag}")
                 for idx, tag in zip(parts, ("train", "valid")))


def minibatches(data: Dataset, batch_size: int, shuffle: bool = True, seed=None,
                drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) batches covering ``data`` once (one epoch).

    x: float32 (B, D), y: int64 (B,), B = batch_size except possibly the last
    batch, which is dropped when ``drop_last``.  ``seed`` may be None, an int,
    or a np.random.Generator (reuse one across epochs to get a new order each
    epoch).  Raises ValueError (immediately, not on first next()) unless
    batch_size is an int >= 1 (and seed None, a Generator, or an int >= 0).
    """
    validate.integer(batch_size, "batch_size", "minibatches", low=1)
    if not (seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence))):
        validate.integer(seed, "seed (None, a Generator or an integer)", "minibatches", low=0)
    rng = np.random.default_rng(seed)  # passes a Generator through unchanged
    order = rng.permutation(len(data)) if shuffle else np.arange(len(data))
    stop = len(data) - len(data) % batch_size if drop_last else len(data)
    return _batches(data, order, batch_size, stop)


def _batches(data: Dataset, order: np.ndarray, batch_size: int, stop: int):
    # A separate generator so minibatches() validates eagerly.  Whole batches are
    # gathered by fancy indexing -- no Python loop over individual examples.
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield data.x[idx], data.y[idx]


def load(name: str, data_dir=None) -> tuple[Dataset, Dataset]:
    """Load (train, test) by name: 'digits', 'mnist' or 'fashion-mnist'.

    data_dir: where the IDX files are ('mnist' and 'fashion-mnist'); falls back
    to $MINIGRAD_DATA.  'mnist' has no system default, so one of the two is
    required (else DatasetNotFoundError).  Unknown names raise InvalidArgument.
    """
    if name == "digits":
        return load_digits()
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir)
    if name == "mnist":
        root = data_dir or os.environ.get(DATA_ENV)
        if not root:
            raise DatasetNotFoundError("mnist has no default location: pass data_dir or "
                                       + _PLACE_HINT.format(dir="a directory"))
        return load_mnist(_resolve_mnist_dir(Path(root), ("mnist", "MNIST/raw"), _PLACE_HINT))
    raise InvalidArgument(f"load: unknown dataset {name!r}; expected one of {', '.join(NAMES)}")
