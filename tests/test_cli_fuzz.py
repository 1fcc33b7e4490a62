"""A hypothesis fuzz of the command line, in-process through ``cli.main(argv)`` on tiny data.

argv is drawn from every subcommand's flags, with values from their domains and from outside them
(negative, zero, NaN, inf, huge, empty, strings, paths to files, to missing directories, to a
directory under a file, to a directory that already holds a run).  Every run must end with exit 0,
or with a non-zero exit and one error line (argparse's usage + error for exit 2), never an exception
escaping ``main`` (a traceback); and it must leave every file that was in ``--out`` before it
byte-identical unless it succeeded (``--overwrite`` moves them, byte-identical, to replaced/)."""
import contextlib
import io
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigrad import cli, datasets

BAD_NUMBERS = ["0", "-1", "nan", "inf", "-inf", "1e400", "", "abc", "1.5", "99999999999999999999999", "0x10"]
GOOD = {
    "--epochs": ["1", "2"], "--batch-size": ["1", "7", "64"], "--lr": ["0.1", "1e-3", "1e38"],
    "--lr-decay": ["1", "0.9"], "--max-col-norm": ["0", "1.9365", "1e-30"], "--units": ["4", "3 2"],
    "--pieces": ["1", "2"], "--input-dropout": ["0", "0.2"], "--hidden-dropout": ["0", "0.5"],
    "--momentum": ["0.5 0.7", "0 0"], "--seed": ["0", "7"], "--valid-fraction": ["0", "0.2", "0.99"],
    "--patience": ["1", "3"], "--threads": ["1"], "--optimizer": ["sgd", "adam"],
    "--eps": ["0.1", "1"], "--eps2": ["0.5"], "--eps1": ["1"], "--gp-scale": ["1"], "--beta-l1": ["0.05"],
    "--beta-l2": ["0.01"], "--l1": ["1e-4"], "--l2": ["1e-3"], "--gamma": ["1"], "--pgd-steps": ["1", "2"],
    "--train-size": ["1", "20"], "--test-size": ["1", "5"], "--members": ["plain", "plain adv-pinf", "vat"],
    "--data": ["mnist"], "--device": ["cpu"], "--arch": ["mlp", "conv"], "--conv-preset": ["small", "cifar10"],
    "--strengths": ["0.1", "0.1 0.2", "adv-pinf=0.1,0.2", "gp-q1=0"], "--seeds": ["1", "2"], "--seed": ["0", "3"],
    "--clean-budget": ["1", "0"], "--workers": ["1", "2"],
}
TRAIN = ["--epochs", "--batch-size", "--lr", "--lr-decay", "--max-col-norm", "--units", "--pieces",
         "--input-dropout", "--hidden-dropout", "--momentum", "--seed", "--valid-fraction", "--patience",
         "--threads", "--optimizer", "--data", "--device", "--arch", "--conv-preset"]
COMPARE = ["--epochs", "--batch-size", "--lr", "--max-col-norm", "--units", "--pieces", "--seed", "--eps",
           "--eps2", "--eps1", "--gp-scale", "--beta-l1", "--beta-l2", "--l1", "--l2", "--gamma", "--pgd-steps",
           "--train-size", "--test-size", "--members", "--data", "--device", "--threads", "--arch"]
SWEEP = ["--epochs", "--batch-size", "--lr", "--units", "--pieces", "--eps", "--pgd-steps", "--train-size",
         "--test-size", "--valid-fraction", "--members", "--strengths", "--seeds", "--seed", "--clean-budget",
         "--workers", "--data", "--arch"]
SWITCHES = {"train": ["--resume", "--overwrite", "--quiet"], "compare": ["--overwrite", "--quiet", "--quick"],
            "sweep": ["--quiet", "--serial", "--quick"]}
OUT_KINDS = ["missing", "empty", "holds-run", "file", "under-file", ""]
CKPT_KINDS = ["good", "missing", "directory", "truncated", "random"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tiny MNIST-format data (30 + 10 images of 4x4) and a finished run to copy."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "data").mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 10)):
        datasets.save_idx(root / "data" / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 4, 4), np.uint8))
        datasets.save_idx(root / "data" / f"{split}-labels-idx1-ubyte", rng.integers(0, 3, n).astype(np.uint8))
    base = ["--data", "mnist", "--data-dir", str(root / "data"), "--units", "4", "--pieces", "2", "--quiet",
            "--threads", "1"]
    assert cli.main(["train", "--out", str(root / "run"), "--epochs", "1", *base]) == 0
    return root


def _value(draw, name):
    if draw(st.booleans()) and draw(st.booleans()):  # a quarter of the values come from outside
        return [draw(st.sampled_from(BAD_NUMBERS))]
    return draw(st.sampled_from(GOOD[name])).split()


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(["train", "compare", "evaluate", "sweep"]))
    if command == "evaluate":
        argv = ["evaluate", draw(st.sampled_from(CKPT_KINDS))]
        for name in draw(st.lists(st.sampled_from(["--batch-size", "--data", "--device"]), unique=True)):
            argv += [name, *(_value(draw, name) if name != "--batch-size" else [draw(st.sampled_from(
                ["1", "1000", *BAD_NUMBERS]))])]
        return argv
    pool = {"train": TRAIN, "compare": COMPARE, "sweep": SWEEP}[command]
    flags = draw(st.lists(st.sampled_from(pool), unique=True, max_size=6))
    argv = [command]
    for name in flags:
        argv += [name, *_value(draw, name)]
    argv += draw(st.lists(st.sampled_from(SWITCHES[command]), unique=True, max_size=2))
    argv += ["--out", draw(st.sampled_from(OUT_KINDS))]
    return argv


def _materialise(argv, world, scratch: Path):
    """Replace the placeholders by real paths; fill in the defaults that keep a run tiny."""
    argv = list(argv)
    out_kind = argv[argv.index("--out") + 1] if "--out" in argv else None
    if out_kind is not None:
        target = {"missing": scratch / "new" / "deeper", "empty": scratch / "empty", "holds-run": scratch / "run",
                  "file": scratch / "a-file", "under-file": scratch / "a-file" / "sub", "": ""}[out_kind]
        argv[argv.index("--out") + 1] = str(target)
    if argv[0] == "evaluate":
        kind = argv[1]
        path = {"good": scratch / "run" / "checkpoint.npz", "missing": scratch / "none.npz", "directory": scratch,
                "truncated": scratch / "truncated.npz", "random": scratch / "random.npz"}[kind]
        argv[1] = str(path)
    (scratch / "empty").mkdir()
    (scratch / "a-file").write_text("not a directory")
    shutil.copytree(world / "run", scratch / "run")
    raw = (scratch / "run" / "checkpoint.npz").read_bytes()
    (scratch / "truncated.npz").write_bytes(raw[: len(raw) // 3])
    (scratch / "random.npz").write_bytes(np.random.default_rng(1).bytes(200))
    if "--data" in argv[1:] and argv[argv.index("--data") + 1] == "mnist" and "--data-dir" not in argv:
        argv += ["--data-dir", str(world / "data")]
    if argv[0] in ("train", "compare", "sweep") and "--data" not in argv:
        argv += ["--data", "mnist", "--data-dir", str(world / "data")]
    if argv[0] == "sweep":  # one member, one seed, one epoch, in this process unless the draw asked otherwise
        for name, value in (("--members", "plain"), ("--seeds", "1"), ("--epochs", "1"), ("--pgd-steps", "1")):
            if name not in argv:
                argv += [name, value]
        if "--workers" not in argv and "--serial" not in argv:
            argv += ["--serial"]
    if argv[0] == "compare":
        for name, value in (("--members", "plain"), ("--epochs", "1"), ("--pgd-steps", "1")):
            if name not in argv:
                argv += [name, value]
    if argv[0] == "train" and "--units" not in argv:
        argv += ["--units", "4"]
    return argv


def _snapshot(directory: Path) -> dict:
    if not directory.is_dir():
        return {}
    return {p.relative_to(directory): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@settings(max_examples=int(os.environ.get("MINIGRAD_FUZZ_EXAMPLES", 150)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(argv=command_lines())
def test_the_command_line_never_shows_a_traceback_and_never_loses_files(world, argv):
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        argv = _materialise(argv, world, scratch)
        out = Path(argv[argv.index("--out") + 1]) if "--out" in argv and argv[argv.index("--out") + 1] else None
        before = _snapshot(out) if out else {}
        err = io.StringIO()
        with contextlib.chdir(scratch), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # overflow warnings from huge learning rates
            try:
                code = cli.main(argv)  # any other exception escapes here: that is a traceback, a failure
            except SystemExit as e:  # argparse: usage, then one error line
                code = e.code
        lines = err.getvalue().strip().splitlines()
        if code == 2 and lines and lines[0].startswith("usage:"):
            assert lines[-1].startswith("python -m minigrad"), (argv, lines)
        elif code != 0:
            assert code in (2, 3, 4, 5), (argv, code, lines)
            assert lines and lines[-1].startswith(f"minigrad {argv[0]}: error: "), (argv, lines)
        if code != 0 and out is not None:
            after = _snapshot(out)
            for path, content in before.items():
                moved = "--overwrite" in argv and any(after.get(Path(d) / path) == content
                                                      for d in ("replaced", "replaced-2", "replaced-3"))
                assert after.get(path) == content or moved, (argv, path)
