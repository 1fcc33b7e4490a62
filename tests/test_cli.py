"""The command line, called in-process through main(argv) and, for what only a real process
shows (exit status, no traceback), through `python -m minigrad`."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigrad.checkpoint import load_checkpoint
from minigrad import backend, cli, datasets, train

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--units", "16", "--pieces", "2", "--quiet"]
TRAIN_FLAGS = ["--data", "--data-dir", "--valid-fraction", "--units", "--arch", "--conv-preset", "--pieces", "--input-dropout", "--hidden-dropout", "--init-range",
               "--optimizer",
               "--epochs", "--batch-size", "--lr", "--lr-decay", "--momentum", "--max-col-norm", "--patience",
               "--seed", "--out", "--device", "--threads", "--quiet", "--resume", "--overwrite"]


def _python_m(*args, env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "minigrad", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _train_parser():
    return cli.build_parser().parse_known_args(["train"])[0].subparser  # each subcommand keeps its parser


def test_no_subcommand_prints_help(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "usage: python -m minigrad" in out and "train" in out and "evaluate" in out


def test_train_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in TRAIN_FLAGS:
        assert flag in out, flag
    for action in _train_parser()._actions:  # nothing undocumented slips in later
        assert action.help, action.option_strings
        assert any(s in TRAIN_FLAGS + ["-h", "--help"] for s in action.option_strings), action.option_strings


@pytest.mark.parametrize("argv, message", [
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--epochs", "0"], r"argument --epochs: must be an integer in \[1, 1000000\], got 0"),
    (["train", "--epochs", "two"], "argument --epochs: expected an integer, got 'two'"),
    (["train", "--lr", "-1"], "argument --lr: must be a finite number > 0, got -1"),
    (["train", "--data", "cifar"], "argument --data: invalid choice: 'cifar'"),
    (["train", "--input-dropout", "1.5"], r"argument --input-dropout: must be a number in \[0, 1\), got 1.5"),
    (["train", "--lr-decay", "1.1"], r"argument --lr-decay: must be a number in \(0, 1\], got 1.1"),
    (["train", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["train", "--patience", "3"], "--patience needs a validation set"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_flags_and_values_exit_2_with_usage(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m minigrad") and re.search(message, err), err


def test_missing_dataset_is_one_line_and_exit_3(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    assert cli.main(["train", "--data", "mnist"]) == 3
    assert cli.main(["train", "--data", "fashion-mnist", "--data-dir", str(tmp_path)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("minigrad train: error: mnist has no default location")
    assert err[1].startswith(f"minigrad train: error: no MNIST-style IDX files in {tmp_path}") and len(err) == 2


def test_a_real_process_exits_without_traceback():
    missing = _python_m("train", "--data", "mnist", env={datasets.DATA_ENV: ""})
    assert missing.returncode == 3 and "Traceback" not in missing.stderr and "mnist" in missing.stderr
    bad = _python_m("train", "--batch-size", "0")
    assert bad.returncode == 2 and "usage:" in bad.stderr and "Traceback" not in bad.stderr
    bare = _python_m()
    assert bare.returncode == 0 and "usage: python -m minigrad" in bare.stdout


@pytest.mark.skipif(backend.cuda_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(capsys):
    assert cli.main(["train", "--device", "cuda"]) == 2
    assert "--device cuda needs CuPy and a visible GPU" in capsys.readouterr().err


def test_one_epoch_on_digits_writes_a_checkpoint_and_metrics_that_reload(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--data", "digits", "--epochs", "1", "--out", str(out), "--seed", "3",
                     "--valid-fraction", "0.1", "--threads", "1", *SMALL]) == 0
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "metrics.json"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == "digits" and metrics["epoch"] == 1 and len(metrics["history"]) == 1
    assert metrics["args"]["units"] == [16] and metrics["sizes"] == {"train": 1213, "valid": 135, "test": 449}
    model, meta = load_checkpoint(out / "checkpoint.npz")
    assert meta["epoch"] == 1 and meta["seed"] == 3 and meta["config"]["units"] == [16]
    _, test_set = datasets.load_digits()
    assert train.evaluate(model, test_set) == pytest.approx(tuple(metrics["test"].values()))
    printed = capsys.readouterr().out
    assert "digits-test: error" in printed and "wrote" in printed
    assert cli.main(["evaluate", str(out / "checkpoint.npz")]) == 0  # the data name comes from the checkpoint
    assert f"error {metrics['test']['error']:.2%}" in capsys.readouterr().out


def test_train_on_mnist_format_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split, n in (("train", 60), ("t10k", 20)):
        images = rng.integers(0, 256, (n, 5, 5), dtype=np.uint8)
        datasets.save_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", images)  # gzip and raw files mixed
        datasets.save_idx(tmp_path / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    assert cli.main(["train", "--data", "mnist", "--data-dir", str(tmp_path), "--epochs", "2",
                     "--optimizer", "adam", "--lr", "0.001", "--input-dropout", "0.2", "--hidden-dropout", "0.5", *SMALL]) == 0
    assert "mnist-test: error" in capsys.readouterr().out


def test_evaluate_reports_an_unreadable_checkpoint(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "nope.npz"), "--data", "digits"]) == 4
    assert "nope.npz: no such checkpoint file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "evaluate", "compare"])
def test_help_shows_each_default_once(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    entries = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    assert len(entries) > 3
    for entry in entries:
        assert entry.count("default") <= 1, entry
    assert text.count("optimisation:") <= 1
