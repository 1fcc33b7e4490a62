"""Fault injection in real subprocesses: a SIGKILL in the middle of a checkpoint write, and Ctrl-C
(SIGINT) in the middle of training followed by ``--resume``."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from minigrad.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}

# Writes a good checkpoint (epoch 1), changes the weights, then dies by SIGKILL at the chosen point
# of the second write: after the new bytes are on disk but before any rename ("fsync"), or after
# the previous file was kept but before the new one is moved into place ("replace").
KILL_DURING_WRITE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from minigrad import nn, optim
    from minigrad import checkpoint as C
    path, where = sys.argv[1], sys.argv[2]
    model = nn.maxout_mlp(5, (7,), 2, 3, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    C.save_checkpoint(path, model, opt, epoch=1)
    for p in model.parameters():
        p.data += 1.0
    real_fsync, real_replace = os.fsync, os.replace
    def die(*args):
        os.kill(os.getpid(), signal.SIGKILL)
    if where == "fsync":
        os.fsync = lambda fd: (real_fsync(fd), die())
    else:
        os.replace = lambda src, dst: die() if str(dst) == path else real_replace(src, dst)
    C.save_checkpoint(path, model, opt, epoch=2)
""")


def _sigint_as_default():
    """SIGINT at its default in the child, whatever the runner's (see test_interrupts._sigint_as_default)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_loadable_and_exact(tmp_path, where):
    path = tmp_path / "checkpoint.npz"
    done = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, str(path), where], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    ckpt = load_checkpoint(path)
    assert ckpt.meta["epoch"] == 1
    from minigrad import nn
    fresh = nn.maxout_mlp(5, (7,), 2, 3, seed=0)  # the weights the good checkpoint was written from
    for (k, v), (k2, v2) in zip(ckpt.model.state_dict().items(), fresh.state_dict().items()):
        assert k == k2 and np.array_equal(v, v2), k


def _train(out, *extra):
    return [sys.executable, "-m", "minigrad", "train", "--data", "digits", "--units", "24", "--pieces", "2",
            "--batch-size", "4", "--hidden-dropout", "0.3", "--epochs", "4", "--seed", "3", "--quiet",
            "--out", str(out), *extra]


@pytest.mark.slow
def test_sigint_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    pytest.importorskip("sklearn")
    straight = subprocess.run(_train(tmp_path / "straight"), env=ENV, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr

    out = tmp_path / "interrupted"
    proc = subprocess.Popen(_train(out), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_default)
    deadline = time.monotonic() + 120
    while not (out / "metrics.json").exists() and time.monotonic() < deadline:  # end of epoch 1
        time.sleep(0.005)
    time.sleep(0.05)  # into epoch 2
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err  # interrupted mid-run, not finished
    assert "interrupted; the last good checkpoint is kept" in err and "Traceback" not in err
    epoch = load_checkpoint(out / "checkpoint.npz").meta["epoch"]
    assert 1 <= epoch < 4
    assert json.loads((out / "metrics.json").read_text())["epoch"] == epoch  # the pair agrees

    resumed = subprocess.run(_train(out, "--resume"), env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.npz")
    b = load_checkpoint(out / "checkpoint.npz")
    assert a.meta["epoch"] == b.meta["epoch"] == 4
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert np.array_equal(v, w), k  # bit for bit
    assert [h["train_loss"] for h in a.meta["history"]] == [h["train_loss"] for h in b.meta["history"]]
