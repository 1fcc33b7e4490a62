"""Tests for minigrad.datasets: IDX I/O, MNIST-style loading, splits and batching.

All MNIST-style tests run on tiny fake IDX directories written here, so they
need no downloads; the real Fashion-MNIST test runs only where the Debian
package dataset-fashion-mnist is installed.
"""

import gzip
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import datasets as ds
from minigrad.datasets import DatasetError, DatasetNotFoundError

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_fake_mnist(root: Path, n_train=5, n_test=3, gz=False, seed=0):
    """Write the four standard IDX files with random 4x3 images; return the arrays."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 4, 3), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 4, 3), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, arr in arrays.items():
        ds.save_idx(root / (stem + (".gz" if gz else "")), arr)
    return arrays


# ----------------------------------------------------------------------- IDX I/O


@settings(max_examples=60, deadline=None)
@given(data=st.data(), suffix=st.sampled_from(["", ".gz"]))
def test_idx_round_trip(data, suffix):
    dtype = np.dtype(data.draw(st.sampled_from(IDX_DTYPES)))
    arr = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)))
    with tempfile.TemporaryDirectory() as d:  # tmp_path is not reset between examples
        path = Path(d) / f"a.idx{suffix}"
        ds.save_idx(path, arr)
        assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
        back = ds.load_idx(path)
    assert back.dtype == dtype and back.dtype.isnative
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)  # treats NaN == NaN


def test_load_idx_reads_big_endian_known_bytes(tmp_path):
    # Hand-written file, so a reader and writer that agree on the wrong byte
    # order cannot pass: int16 type 0x0B, 1 dim of size 3, values 1, -2, 258.
    raw = bytes([0, 0, 0x0B, 1, 0, 0, 0, 3, 0, 1, 0xFF, 0xFE, 1, 2])
    arr = ds.load_idx(write_bytes(tmp_path / "k.idx", raw))
    assert arr.tolist() == [1, -2, 258] and arr.dtype == np.int16
    arr[0] = 5  # result must be writable (not a view of immutable bytes)
    ds.save_idx(tmp_path / "k2.idx", np.array([1, -2, 258], dtype="<i2"))
    assert (tmp_path / "k2.idx").read_bytes() == raw


def test_gzip_detected_by_content_not_extension(tmp_path):
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3)
    ds.save_idx(tmp_path / "a.gz", arr)
    gz_named_plain = write_bytes(tmp_path / "plain_name", (tmp_path / "a.gz").read_bytes())
    ds.save_idx(tmp_path / "raw", arr)
    raw_named_gz = write_bytes(tmp_path / "raw_name.gz", (tmp_path / "raw").read_bytes())
    np.testing.assert_array_equal(ds.load_idx(gz_named_plain), arr)
    np.testing.assert_array_equal(ds.load_idx(raw_named_gz), arr)


HEADER_U8_2x3 = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3])


@pytest.mark.parametrize("name, raw, pattern", [
    ("badmagic.idx", bytes([1, 0, 8, 1, 0, 0, 0, 1, 7]), r"bad magic number 0x01000801"),
    ("badmagic2.idx", bytes([0, 1, 8, 1, 0, 0, 0, 1, 7]), r"bad magic number 0x00010801"),
    ("badtype.idx", bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 7]), r"unknown IDX type code 0x07"),
    ("zerodim.idx", bytes([0, 0, 0x08, 0]), r"ndim is 0"),
    ("tiny.idx", bytes([0, 0]), r"at least 4"),
    ("shorthdr.idx", bytes([0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0]), r"declares 3 dims \(16 header bytes\).*only 10"),
    ("trunc.idx", HEADER_U8_2x3 + bytes(5), r"truncated.*needs 6 data bytes, got 5"),
    ("trail.idx", HEADER_U8_2x3 + bytes(8), r"2 trailing bytes"),
    ("trunc16.idx", bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 0]), r"needs 4 data bytes, got 3"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_rejects_bad_files(tmp_path, name, raw, pattern, gz):
    path = write_bytes(tmp_path / name, gzip.compress(raw) if gz else raw)
    with pytest.raises(DatasetError, match=pattern) as err:
        ds.load_idx(path)
    assert name in str(err.value)


def test_load_idx_rejects_corrupt_gzip(tmp_path):
    good = gzip.compress(HEADER_U8_2x3 + bytes(6))
    path = write_bytes(tmp_path / "cut.gz", good[:-10])
    with pytest.raises(DatasetError, match="cut.gz.*corrupt gzip"):
        ds.load_idx(path)


def test_load_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        ds.load_idx(tmp_path / "nope.idx")


@pytest.mark.parametrize("arr, exc", [
    (np.zeros(3, dtype=np.int64), TypeError),
    (np.zeros(3, dtype=np.complex64), TypeError),
    (np.array(5, dtype=np.uint8), ValueError),
])
def test_save_idx_rejects(tmp_path, arr, exc):
    with pytest.raises(exc, match="x.idx"):
        ds.save_idx(tmp_path / "x.idx", arr)
    assert not (tmp_path / "x.idx").exists()


# ------------------------------------------------------------------- MNIST-style


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_fake_dir(tmp_path, gz):
    arrays = make_fake_mnist(tmp_path, gz=gz)
    train, test = ds.load_mnist(tmp_path)
    assert (len(train), len(test)) == (5, 3)
    assert train.x.shape == (5, 12) and test.x.shape == (3, 12)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert 0.0 <= train.x.min() and train.x.max() <= 1.0
    assert train.image_shape == (4, 3) and train.n_classes == 10
    assert (train.name, test.name) == ("mnist-train", "mnist-test")
    expected = arrays["train-images-idx3-ubyte"].reshape(5, -1) / np.float32(255)
    np.testing.assert_allclose(train.x, expected, rtol=1e-6)
    np.testing.assert_array_equal(test.y, arrays["t10k-labels-idx1-ubyte"])


def test_load_mnist_count_mismatch(tmp_path):
    make_fake_mnist(tmp_path)
    ds.save_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DatasetError) as err:
        ds.load_mnist(tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte has 5 images" in msg
    assert "train-labels-idx1-ubyte has 4 labels" in msg


def test_load_mnist_label_out_of_range(tmp_path):
    make_fake_mnist(tmp_path)
    ds.save_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 10, 3], dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte: label 10 at index 1"):
        ds.load_mnist(tmp_path)


@pytest.mark.parametrize("stem, arr, pattern", [
    ("train-images-idx3-ubyte", np.zeros((5, 12), np.uint8), "expected 3-D uint8 images, got 2-D"),
    ("train-images-idx3-ubyte", np.zeros((5, 4, 3), np.float32), "got 3-D float32"),
    ("train-labels-idx1-ubyte", np.zeros((5, 1), np.uint8), "expected 1-D integer labels"),
])
def test_load_mnist_rejects_wrong_arrays(tmp_path, stem, arr, pattern):
    make_fake_mnist(tmp_path)
    ds.save_idx(tmp_path / stem, arr)
    with pytest.raises(DatasetError, match=f"{stem}: .*{pattern}"):
        ds.load_mnist(tmp_path)


def test_load_mnist_missing_file(tmp_path):
    make_fake_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"t10k-images-idx3-ubyte\[\.gz\].*MINIGRAD_DATA") as err:
        ds.load_mnist(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_load_fashion_mnist_missing_mentions_apt(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIGRAD_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        ds.load_fashion_mnist(tmp_path / "empty")
    assert "MINIGRAD_DATA" in str(err.value) and "empty" in str(err.value)


def test_load_fashion_mnist_env_override(tmp_path, monkeypatch):
    arrays = make_fake_mnist(tmp_path / "fake", gz=True)
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "fake"))
    train, test = ds.load_fashion_mnist()
    assert train.name == "fashion-mnist-train" and len(test) == 3
    np.testing.assert_array_equal(train.y, arrays["train-labels-idx1-ubyte"])


def test_load_fashion_mnist_searches_named_subdir_only(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    make_fake_mnist(tmp_path / "mnist", n_train=7)
    with pytest.raises(DatasetNotFoundError):  # must not pick up plain MNIST
        ds.load_fashion_mnist()
    make_fake_mnist(tmp_path / "fashion-mnist", n_train=6)
    assert len(ds.load_fashion_mnist()[0]) == 6
    assert len(ds.load("mnist")[0]) == 7  # and 'mnist' prefers mnist/


@pytest.mark.skipif(not ds.FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("MINIGRAD_DATA", raising=False)
    train, test = ds.load_fashion_mnist()
    assert train.x.shape == (60000, 784) and test.x.shape == (10000, 784)
    assert train.image_shape == (28, 28) and train.x.max() == 1.0
    assert np.bincount(train.y).tolist() == [6000] * 10


def test_load_dispatch(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIGRAD_DATA", raising=False)
    with pytest.raises(ValueError, match="digits, mnist, fashion-mnist"):
        ds.load("cifar10")
    with pytest.raises(DatasetNotFoundError, match="data_dir"):
        ds.load("mnist")
    make_fake_mnist(tmp_path)
    train, _ = ds.load("mnist", data_dir=tmp_path)
    assert train.name == "mnist-train"
    assert ds.load("fashion-mnist", data_dir=tmp_path)[0].name == "fashion-mnist-train"


# ------------------------------------------------------------------------ digits


def test_load_digits():
    sk = pytest.importorskip("sklearn.datasets")
    train, test = ds.load_digits()
    assert (len(train), len(test)) == (1348, 449) and train.x.shape[1] == 64
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.x.min() == 0.0 and train.x.max() == 1.0 and test.x.max() <= 1.0
    # The documented rule: last round(0.25 * 1797) of default_rng(0).permutation are test.
    full = sk.load_digits()
    perm = np.random.default_rng(0).permutation(1797)
    np.testing.assert_array_equal(test.y, full.target[perm[-449:]])
    np.testing.assert_allclose(train.x, full.data[perm[:-449]] / 16, rtol=1e-6)
    # Deterministic, seed-dependent, and a partition of the full set.
    again = ds.load_digits()
    np.testing.assert_array_equal(again[1].x, test.x)
    assert not np.array_equal(ds.load_digits(seed=1)[1].y, test.y)
    rows = lambda d: Counter(map(bytes, np.c_[d.x, d.y].astype(np.float32)))
    assert rows(train) + rows(test) == Counter(map(bytes, np.c_[full.data / 16, full.target].astype(np.float32)))


def test_load_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn...` fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        ds.load_digits()


def test_module_does_not_import_sklearn():
    code = "import sys, minigrad.datasets; sys.exit('sklearn' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root,
                          env={"PYTHONPATH": str(root)}).returncode == 0


# -------------------------------------------------------- synthetic, split, batches


def test_synthetic_deterministic_and_balanced():
    a, b = ds.synthetic(seed=3), ds.synthetic(seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, ds.synthetic(seed=4).x)
    assert a.x.shape == (512, 20) and a.x.dtype == np.float32 and a.y.dtype == np.int64
    assert np.bincount(a.y).tolist() == [171, 171, 170]
    with pytest.raises(ValueError):
        ds.synthetic(n=0)


def test_synthetic_separation_makes_classes_separable():
    d = ds.synthetic(n=300, separation=10.0)
    means = np.stack([d.x[d.y == k].mean(0) for k in range(3)])
    nearest = np.argmin(((d.x[:, None, :] - means) ** 2).sum(-1), axis=1)
    assert (nearest == d.y).mean() > 0.99


def test_train_valid_split_partitions():
    d = ds.Dataset(np.arange(20.0)[:, None], np.arange(20) % 2, n_classes=2, name="t")
    tr, va = ds.train_valid_split(d, 0.25, seed=1)
    assert (len(tr), len(va)) == (15, 5) and (tr.name, va.name) == ("t-train", "t-valid")
    assert sorted(np.r_[tr.x[:, 0], va.x[:, 0]].tolist()) == list(range(20))
    np.testing.assert_array_equal(tr.y, tr.x[:, 0].astype(int) % 2)  # rows stay aligned
    for bad in (0.0, 1.0, 0.01):  # 0.01 * 20 rounds to 0 validation examples
        with pytest.raises(ValueError):
            ds.train_valid_split(d, bad)


def test_dataset_validates_and_coerces():
    d = ds.Dataset(np.ones((3, 4), np.float64), np.array([0, 1, 2], np.uint8), n_classes=3)
    assert d.x.dtype == np.float32 and d.y.dtype == np.int64 and len(d) == 3
    assert d.image_shape == (4,)
    with pytest.raises(DatasetError):
        ds.Dataset(np.ones((3, 4)), np.zeros(2), n_classes=2)
    with pytest.raises(DatasetError, match="image_shape"):
        ds.Dataset(np.ones((3, 4)), np.zeros(3), n_classes=2, image_shape=(3, 3))


def indexed(n):
    """A dataset whose x and y both hold the example's index, to track batches."""
    return ds.Dataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n), n_classes=n)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 60), bs=st.integers(1, 70), drop_last=st.booleans(), shuffle=st.booleans())
def test_minibatches_cover_epoch(n, bs, drop_last, shuffle):
    batches = list(ds.minibatches(indexed(n), bs, shuffle=shuffle, seed=0, drop_last=drop_last))
    sizes = [len(y) for _, y in batches]
    full = n // bs
    assert sizes == [bs] * full + ([] if drop_last or n % bs == 0 else [n % bs])
    seen = np.concatenate([y for _, y in batches]) if batches else np.array([], int)
    assert len(set(seen.tolist())) == len(seen)  # no example twice
    assert len(seen) == (full * bs if drop_last else n)  # and none missing
    for x, y in batches:
        np.testing.assert_array_equal(x[:, 0], y)
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))


def test_minibatches_seeding():
    order = lambda **kw: np.concatenate([y for _, y in ds.minibatches(indexed(50), 8, **kw)])
    np.testing.assert_array_equal(order(seed=7), order(seed=7))
    assert not np.array_equal(order(seed=7), order(seed=8))
    rng = np.random.default_rng(0)
    assert not np.array_equal(order(seed=rng), order(seed=rng))  # new order each epoch


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "4", None])
def test_minibatches_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        ds.minibatches(indexed(5), bad)  # raises on the call, before iterating
