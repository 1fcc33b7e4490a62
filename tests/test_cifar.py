"""CIFAR-10 loader (restricted unpickling, validation) and the GCN + ZCA preprocessing.

The tests write small batch files in the official format themselves: a pickled dict with b'data'
(uint8 (N, 3072)), b'labels' (list of ints), b'batch_label' and b'filenames' (bytes).
"""
import os
import pickle

import numpy as np
import pytest

from minigrad import cifar
from minigrad.datasets import DatasetError, DatasetNotFoundError


def write_batch(path, n, seed, protocol=2, override=None):
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"training batch", b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    batch.update(override or {})
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    return batch


@pytest.fixture
def cifar_dir(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    batches = {name: write_batch(d / name, 4, i) for i, name in enumerate(cifar.TRAIN_FILES + cifar.TEST_FILES)}
    return tmp_path, d, batches


def test_loads_the_official_format_into_datasets(cifar_dir):
    root, d, batches = cifar_dir
    train, test = cifar.load_cifar10(root)  # finds the cifar-10-batches-py subfolder
    assert (len(train), len(test)) == (20, 4)
    assert train.x.dtype == np.float32 and train.x.shape == (20, 3072) and train.image_shape == (3, 32, 32)
    assert train.n_classes == 10 and train.y.dtype == np.int64
    first = batches["data_batch_1"]
    np.testing.assert_array_equal(train.x[:4], first[b"data"] / np.float32(255))
    np.testing.assert_array_equal(train.y[:4], first[b"labels"])
    # CHW order: the first 1024 values of a row are the red plane
    assert train.x.reshape(-1, 3, 32, 32)[0, 0, 0, 1] == first[b"data"][0, 1] / np.float32(255)
    np.testing.assert_array_equal(test.y, batches["test_batch"][b"labels"])


def test_environment_variable_and_missing_directory(cifar_dir, monkeypatch, tmp_path_factory):
    root, d, _ = cifar_dir
    monkeypatch.setenv("MINIGRAD_DATA", str(d))
    assert len(cifar.load_cifar10()[0]) == 20
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DatasetNotFoundError, match="no CIFAR-10 batches"):
        cifar.load_cifar10(empty)
    monkeypatch.delenv("MINIGRAD_DATA")
    with pytest.raises(DatasetNotFoundError, match="cifar10 has no default location"):
        cifar.load_cifar10()


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"\x80\x02}q\x00(U\x04data"), "not a CIFAR-10 python batch"),  # truncated
    (lambda p: p.write_bytes(b"hello"), "not a CIFAR-10 python batch"),
    (lambda p: p.write_bytes(pickle.dumps({b"data": _Exploit()}, protocol=2)),
     "refusing to load global posix.system"),
    (lambda p: p.write_bytes(pickle.dumps([1, 2], protocol=2)), "expected a dict"),
    (lambda p: write_batch(p, 3, 0, override={b"data": np.zeros((3, 3071), np.uint8)}), "uint8 array of shape (N, 3072)"),
    (lambda p: write_batch(p, 3, 0, override={b"data": np.zeros((3, 3072), np.float32)}), "uint8 array"),
    (lambda p: write_batch(p, 3, 0, override={b"labels": [1, 2]}), "'labels' must be a list of 3 ints"),
    (lambda p: write_batch(p, 3, 0, override={b"labels": [1, 2, 10]}), "label 10 at index 2 is outside [0, 9]"),
    (lambda p: write_batch(p, 3, 0, override={b"labels": ["a", "b", "c"]}), "'labels' must hold ints"),
])
def test_a_bad_file_gets_one_error_naming_it(cifar_dir, make, message):
    root, d, _ = cifar_dir
    bad = d / "data_batch_3"
    make(bad)
    with pytest.raises(DatasetError) as info:
        cifar.load_cifar10(d)
    assert str(bad) in str(info.value) and message in str(info.value)


def test_python3_pickles_at_any_protocol_load(tmp_path):
    for protocol in (2, 4, 5):
        written = write_batch(tmp_path / "b", 2, protocol, protocol=protocol)
        data, labels = cifar.read_batch(tmp_path / "b")
        np.testing.assert_array_equal(data, written[b"data"])


def test_global_contrast_normalisation():
    x = np.random.default_rng(0).random((5, 12)).astype(np.float32)
    x[4] = 0.3  # a constant image: centred only, no division by zero
    g = cifar.global_contrast_normalize(x, scale=55)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(g[:4], axis=1), 55, rtol=1e-5)
    np.testing.assert_array_equal(g[4], 0)


def test_zca_whitens_the_training_set():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))  # correlated, full rank
    white = cifar.ZCA(filter_bias=0.0).fit(x)(x).astype(np.float64)
    np.testing.assert_allclose(white.T @ white / len(x), np.eye(6), atol=1e-4)
    zca = cifar.ZCA(filter_bias=0.1).fit(x)
    np.testing.assert_allclose(zca.matrix, zca.matrix.T)  # zero-phase: P symmetric
    lam = np.linalg.eigvalsh(np.cov(x.T, bias=True))
    white = zca(x).astype(np.float64)
    # the filter bias shrinks each whitened direction's variance to λ / (λ + 0.1)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(white.T @ white / len(x))), np.sort(lam / (lam + 0.1)),
                               rtol=1e-4)
    with pytest.raises(RuntimeError, match="call fit"):
        cifar.ZCA()(x)


def test_gcn_zca_is_fitted_on_the_training_set_only(cifar_dir):
    root, _, _ = cifar_dir
    train, test = cifar.load_cifar10(root)
    ptrain, ptest, zca = cifar.gcn_zca(train, test)
    assert ptrain.name == "cifar10-gcn-zca" and ptrain.x.shape == train.x.shape and ptrain.image_shape == (3, 32, 32)
    np.testing.assert_allclose(zca.mean, cifar.global_contrast_normalize(train.x).mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(ptest.x, zca(cifar.global_contrast_normalize(test.x)), rtol=1e-6)


@pytest.mark.slow
def test_compare_trains_a_conv_net_on_cifar10_files(cifar_dir, tmp_path, capsys):
    # The command line end to end: --data cifar10 reads the batches, --arch conv builds the small preset
    # for (3, 32, 32) images, and the perturbation figure draws colour images.
    pytest.importorskip("matplotlib")
    from minigrad import cli
    out = tmp_path / "run"
    assert cli.main(["compare", "--data", "cifar10", "--data-dir", str(cifar_dir[0]), "--arch", "conv",
                     "--members", "plain", "gp-q1", "--epochs", "1", "--train-size", "20", "--test-size", "6",
                     "--pgd-steps", "1", "--quiet", "--out", str(out)]) == 0
    for name in ("results.md", "robustness.png", "perturbations.png"):
        assert (out / name).stat().st_size > 0
