"""CIFAR-10 from the standard python-version batches, read without executing pickled code, and the
Maxout paper's preprocessing (global contrast normalisation, then ZCA whitening).

Files: ``data_batch_1`` … ``data_batch_5`` (training, 10000 images each) and ``test_batch`` (10000), as
unpacked from ``cifar-10-python.tar.gz``: each a pickled dict with ``b'data'`` (uint8, (10000, 3072): the
1024 red, then green, then blue values of one 32×32 image per row, rows of pixels in order, i.e. CHW
flattened) and ``b'labels'`` (a list of 10000 ints in [0, 10)).  Nothing is downloaded: point
``load_cifar10(root)`` (or ``$MINIGRAD_DATA``) at the directory holding the batches or their
``cifar-10-batches-py/`` folder.

Safety: ``pickle.load`` runs whatever callables a file names.  ``_RestrictedUnpickler`` admits only the
globals those files need to rebuild a NumPy array (``numpy…multiarray._reconstruct``, ``numpy.ndarray``,
``numpy.dtype``, and ``numpy…numeric._frombuffer`` of pickle protocol 5) and ``_codecs.encode`` (how Python 3 writes bytes at pickle protocol 2); every other
global is refused before anything is called, and the result must be a dict of the documented shape.
A wrong, truncated or hostile file gets one ``DatasetError`` naming it.

Preprocessing (Goodfellow et al. 2013, §5.3, pylearn2's ``GlobalContrastNormalization(scale=55)`` and
``ZCA(filter_bias=0.1)``), fitted on the training set only:

    GCN:  x ← 55 · (x − mean(x)) / max(‖x − mean(x)‖₂, 1e-8)        per example (each row gets norm 55)
    ZCA:  x ← (x − μ) P,   P = V diag(1/√(λ + 0.1)) Vᵀ,   V diag(λ) Vᵀ = (1/N) Σ (xᵢ − μ)(xᵢ − μ)ᵀ

The network then sees whitened inputs, so a perturbation budget ε (and every norm the family takes of
x or ∇ₓL) is measured in that space, not in [0, 1] pixels; say so wherever ε is printed.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from . import validate
from .errors import InvalidArgument
from .datasets import DATA_ENV, Dataset, DatasetError, DatasetNotFoundError

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
IMAGE_SHAPE = (3, 32, 32)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_SUBDIRS = ("", "cifar-10-batches-py", "cifar10", "cifar-10")
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, str, ints and NumPy arrays; refuses every other global."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def read_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file → (uint8 images (N, 3072), int64 labels (N,)), validated.

    Raises DatasetError naming ``path`` for anything that is not such a file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        # encoding='bytes': the official files were written by Python 2, whose str fields become bytes
        batch = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # any unpickling failure, truncation, refused global ...
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{path}: not a CIFAR-10 python batch (a {type(batch).__name__}, expected a dict)")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype}{list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {got}")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data):
        raise DatasetError(f"{path}: 'labels' must be a list of {len(data)} ints, got "
                           f"{type(labels).__name__} of length {len(labels) if hasattr(labels, '__len__') else '?'}")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in labels):
        raise DatasetError(f"{path}: 'labels' must hold ints")
    labels = np.asarray(labels, dtype=np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= len(CLASSES)))
    if bad.size:
        raise DatasetError(f"{path}: label {labels[bad[0]]} at index {bad[0]} is outside [0, {len(CLASSES) - 1}]")
    return data, labels


def find_cifar10(root=None) -> Path:
    """The directory holding the six batch files: ``root``, else $MINIGRAD_DATA, or a subfolder of it
    named cifar-10-batches-py, cifar10 or cifar-10."""
    base = root or os.environ.get(DATA_ENV)
    hint = ("unpack cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and pass its "
            f"cifar-10-batches-py directory, or set {DATA_ENV}")
    if not base:
        raise DatasetNotFoundError(f"cifar10 has no default location: {hint}")
    for sub in _SUBDIRS:
        d = Path(base) / sub
        if all((d / name).is_file() for name in TRAIN_FILES + TEST_FILES):
            return d
    raise DatasetNotFoundError(f"no CIFAR-10 batches ({', '.join(TRAIN_FILES + TEST_FILES)}) in {base} "
                               f"(also looked in {', '.join(s for s in _SUBDIRS if s)}): {hint}")


def load_cifar10(root=None) -> tuple[Dataset, Dataset]:
    """(train 50000, test 10000) as ``Dataset``s: x float32 (N, 3072) in [0, 1] (CHW order, so
    ``x.reshape(-1, 3, 32, 32)`` is the image batch), image_shape (3, 32, 32), 10 classes."""
    d = find_cifar10(root)
    out = []
    for names, split in ((TRAIN_FILES, "train"), (TEST_FILES, "test")):
        parts = [read_batch(d / name) for name in names]
        x = np.concatenate([p[0] for p in parts]).astype(np.float32) / np.float32(255)
        y = np.concatenate([p[1] for p in parts])
        out.append(Dataset(x, y, len(CLASSES), IMAGE_SHAPE, name="cifar10"))
    return out[0], out[1]


# --- the Maxout paper's preprocessing -----------------------------------------------------------------
def global_contrast_normalize(x, scale: float = 55.0, min_divisor: float = 1e-8) -> np.ndarray:
    """x ← scale · (x − mean) / ‖x − mean‖₂ per row (pylearn2's GCN with sqrt_bias 0, use_std False); a
    row with norm below ``min_divisor`` (a constant image) is only centred.  Returns float32 (N, D)."""
    scale = validate.number(scale, "scale", "global_contrast_normalize", low=0, open_low=True)
    min_divisor = validate.number(min_divisor, "min_divisor", "global_contrast_normalize", low=0)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InvalidArgument(f"global_contrast_normalize: expected rows (N, D), got shape {x.shape}")
    x = x - x.mean(axis=1, keepdims=True)
    norms = np.sqrt((x * x).sum(axis=1, keepdims=True)) / scale
    norms[norms < min_divisor] = 1.0
    return (x / norms).astype(np.float32)


class ZCA:
    """ZCA whitening fitted on training rows: x ↦ (x − μ) P with P = V diag((λ + bias)^(−½)) Vᵀ, from the
    eigendecomposition V diag(λ) Vᵀ of the (1/N) covariance; ``filter_bias`` (0.1 in the Maxout paper)
    keeps the many near-zero eigenvalues of image data from being amplified into noise.

    P is symmetric, so whitened data stays in pixel space ("zero-phase"): it looks like edges."""

    def __init__(self, filter_bias: float = 0.1):
        self.filter_bias = validate.number(filter_bias, "filter_bias", "ZCA", low=0)
        self.mean = self.matrix = None

    def fit(self, x) -> "ZCA":
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise InvalidArgument(f"ZCA.fit: expected at least 2 rows (N, D), got shape {x.shape}")
        self.mean = x.mean(axis=0)
        centred = x - self.mean
        eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / len(x))
        eigenvalues = np.maximum(eigenvalues, 0)  # roundoff can make the smallest slightly negative
        self.matrix = (vectors / np.sqrt(eigenvalues + self.filter_bias)) @ vectors.T
        return self

    def __call__(self, x) -> np.ndarray:
        if self.matrix is None:
            raise RuntimeError("ZCA: call fit(train_x) before transforming")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise InvalidArgument(f"ZCA: expected rows (N, {len(self.mean)}), got shape {x.shape}")
        return ((x - self.mean) @ self.matrix).astype(np.float32)


def gcn_zca(train: Dataset, test: Dataset, scale: float = 55.0, filter_bias: float = 0.1):
    """The Maxout paper's CIFAR-10 preprocessing: GCN on every example, ZCA fitted on ``train`` only and
    applied to both.  Returns (train, test, zca); the datasets are named '<name>-gcn-zca' and their
    values are no longer in [0, 1]: ε is measured in this whitened space."""
    zca = ZCA(filter_bias).fit(global_contrast_normalize(train.x, scale))
    out = [Dataset(zca(global_contrast_normalize(d.x, scale)), d.y, d.n_classes, d.image_shape,
                   name=f"{d.name}-gcn-zca") for d in (train, test)]
    return out[0], out[1], zca
