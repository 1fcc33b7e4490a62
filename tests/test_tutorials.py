"""Every tutorial runs, as a plain script, in quick mode, writes its figures, and shows each of its
deliberate failures: a demo that is meant to fail asserts that it did (the tutorial raises if the
failure stops happening) and prints an ``EXPECTED FAILURE:`` line, counted here."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = sorted(glob.glob(os.path.join(ROOT, "tutorials", "[0-9][0-9]_*.py")))
# Tutorials that train on the digits, which come from scikit-learn.
NEEDS_SKLEARN = {"03", "05", "10", "11"}
# Tutorials that draw graphs with Graphviz's dot program (apt-get install graphviz).
NEEDS_DOT = {"08"}
# The deliberate failures each tutorial demonstrates, by the start of its file name.
EXPECTED_FAILURES = {
    "01": ["a constant gradient cannot be differentiated again",
           "gradcheck catches a backward that is off by 10%"],
    "02": ["naive log(softmax) gives -inf at logits [-1000, 1]"],
    "06": ["a host batch meeting device parameters is refused"],
    "10": ["PGD on the cross-entropy is fooled by logits scaled by 1e4"],
}


def test_tutorials_exist():
    assert len(TUTORIALS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[os.path.basename(p) for p in TUTORIALS])
def test_tutorial_runs_in_quick_mode(path, tmp_path):
    pytest.importorskip("matplotlib")
    if os.path.basename(path)[:2] in NEEDS_SKLEARN:
        pytest.importorskip("sklearn")
    if os.path.basename(path)[:2] in NEEDS_DOT and shutil.which("dot") is None:
        pytest.skip("needs Graphviz's dot (apt-get install graphviz)")
    env = dict(os.environ, MINIGRAD_QUICK="1", MINIGRAD_FIGURES=str(tmp_path), MPLBACKEND="Agg",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, path, "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{os.path.basename(path)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    figures = glob.glob(os.path.join(tmp_path, "*.png"))
    assert figures, f"{os.path.basename(path)} saved no figure"
    shown = [line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
             if line.startswith("EXPECTED FAILURE:")]
    assert shown == EXPECTED_FAILURES.get(os.path.basename(path)[:2], []), shown
