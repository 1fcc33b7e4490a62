"""Interrupts and the file system: a sweep stopped by Ctrl-C or SIGTERM mid-cell exits at once, leaves
no process behind and keeps every finished cell; its rerun trains only the cells that never finished.
A full disk, or an output directory whose parts are of the wrong kind, is one line and exit 4."""
import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minigrad import cli

ROOT = Path(__file__).resolve().parents[1]
TINY_SWEEP = ["sweep", "--quick", "--members", "plain", "adv-pinf", "gp-q1", "--train-size", "300", "--test-size",
              "100", "--units", "16", "--epochs", "4", "--seeds", "3", "--workers", "2"]


def _sigint_as_default():
    """Run in the child before it starts: SIGINT back to its default disposition, as Ctrl-C in a terminal
    finds it.  A job that a non-interactive shell starts in the background inherits SIGINT ignored, and
    Python then keeps it ignored, so without this the test would depend on how its runner was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _living(pgid: int) -> list:
    """The processes of group ``pgid`` that still run (a zombie has ended; only its entry is left)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(stat.parent.name)
    return found


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_sweep_stops_at_once_and_keeps_every_finished_cell(tmp_path, sig, code):
    out = tmp_path / "s"
    argv = [sys.executable, "-m", "minigrad", *TINY_SWEEP, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_sigint_as_default)
    deadline = time.time() + 240
    while _lines(out / "cells.jsonl") < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    os.kill(proc.pid, sig)  # the sweep's own process; its workers are left for it to stop
    sent = time.time()
    err = proc.communicate(timeout=30)[1]
    elapsed = time.time() - sent
    assert proc.returncode == code, err
    assert elapsed < 2.0, f"the sweep took {elapsed:.1f} s to stop"
    for _ in range(20):  # the workers are gone; the resource tracker ends when it sees its pipe close
        if not _living(proc.pid):
            break
        time.sleep(0.1)
    assert not _living(proc.pid), "a process of the sweep outlived it"
    kept = len(list((out / "cells").glob("*.json")))
    assert kept >= 1 and "the same command continues" in err.splitlines()[-1]
    # The rerun finds every kept cell and runs only the others (stopped as soon as it says so).
    again = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    first = again.stderr.readline()
    os.kill(again.pid, signal.SIGTERM)
    again.communicate(timeout=30)
    total, earlier, to_run = map(int, re.search(r"(\d+) cells .*; (\d+) finished earlier, (\d+) to run", first).groups())
    assert (earlier, to_run) == (kept, total - kept), first


def test_a_full_disk_is_one_line_and_exit_4(tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "models" / "plain.npz"))
    monkeypatch.setattr("minigrad.compare.save_checkpoint", full)
    code = cli.main(["compare", "--members", "plain", "--epochs", "1", "--train-size", "50", "--test-size", "20",
                     "--units", "8", "--quiet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4 and len(err) == 2 and "No space left on device" in err[-1], err  # [1/1] plain, then the line


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_really_full_disk_is_one_line_and_exit_4(tmp_path, capsys):
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "64k"):
        pytest.skip("cannot mount a small tmpfs here (needs root and a mount namespace that allows it)")
    try:
        code = cli.main(["train", "--data", "digits", "--epochs", "1", "--units", "200", "200", "--quiet", "--out",
                         str(disk / "run")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 4 and len(err) == 1 and "No space left on device" in err[0], err
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.parametrize("command, entry, kind", [
    ("compare", "models", "file"), ("compare", "results.jsonl", "dir"),
    ("sweep", "cells", "file"), ("sweep", "cells.jsonl", "dir"), ("sweep", "cells", "dangling")])
def test_an_out_directory_whose_parts_are_the_wrong_kind_is_refused_before_any_work(tmp_path, capsys, command,
                                                                                     entry, kind):
    out = tmp_path / "out"
    out.mkdir()
    if kind == "file":
        (out / entry).write_text("not what the command writes")
    elif kind == "dir":
        (out / entry).mkdir()
    else:
        (out / entry).symlink_to(tmp_path / "nowhere")
    started = time.perf_counter()
    code = cli.main([command, "--quick", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4 and len(err) == 1 and entry in err[0], err
    assert time.perf_counter() - started < 5  # refused before anything trained


def test_a_dangling_link_as_out_names_the_problem(tmp_path, capsys):
    (tmp_path / "link").symlink_to(tmp_path / "nowhere" / "deeper")
    assert cli.main(["compare", "--quick", "--out", str(tmp_path / "link")]) == 4
    assert "symbolic link to nothing" in capsys.readouterr().err


def test_resume_refuses_a_flag_that_would_change_the_run(tmp_path, capsys):
    run = ["train", "--data", "digits", "--units", "8", "--epochs", "1", "--quiet", "--out", str(tmp_path / "r")]
    assert cli.main(run) == 0
    capsys.readouterr()
    assert cli.main(["train", "--out", str(tmp_path / "r"), "--resume", "--epochs", "2", "--units", "16",
                     "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--lr (now 0.5, the run's 0.1)" in err and "--units" in err
    # the same values, and flags that only say how far or how to run, are fine
    assert cli.main(["train", "--out", str(tmp_path / "r"), "--resume", "--epochs", "2", "--units", "8",
                     "--quiet"]) == 0


def test_quick_fills_in_only_what_was_not_given(tmp_path):
    from minigrad import flags
    args = cli.build_parser().parse_args(["sweep", "--quick", "--seeds", "5", "--epochs", "3"])
    spec = flags.sweep_spec(args)
    assert (spec.seeds, spec.optim.epochs, spec.model.units, spec.data.train_size) == (5, 3, (48, 48), 600)
    args = cli.build_parser().parse_args(["compare", "--quick", "--epochs", "7"])
    assert flags.compare_spec(args).optim.epochs == 7
