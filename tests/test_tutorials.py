"""Every tutorial runs, as a plain script, in quick mode, and writes its figures."""
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = sorted(glob.glob(os.path.join(ROOT, "tutorials", "[0-9][0-9]_*.py")))


def test_tutorials_exist():
    assert len(TUTORIALS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[os.path.basename(p) for p in TUTORIALS])
def test_tutorial_runs_in_quick_mode(path, tmp_path):
    pytest.importorskip("matplotlib")
    env = dict(os.environ, MINIGRAD_QUICK="1", MINIGRAD_FIGURES=str(tmp_path), MPLBACKEND="Agg",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, path, "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{os.path.basename(path)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    figures = glob.glob(os.path.join(tmp_path, "*.png"))
    assert figures, f"{os.path.basename(path)} saved no figure"
