"""``import minigrad`` imports NumPy and nothing heavy: no GPU, plotting or ML framework."""
import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ["cupy", "torch", "matplotlib", "sklearn", "tqdm", "scipy"]
ROOT = Path(__file__).resolve().parents[1]


def modules_after(statement):
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_minigrad_imports_numpy_only():
    loaded = modules_after("import minigrad, minigrad.functional, minigrad.gradcheck")
    assert "numpy" in loaded and "minigrad" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"import minigrad pulled in {heavy}"


def test_the_check_can_see_a_heavy_import():
    # the probe itself works: a module imported by the statement does show up
    assert "fractions" in modules_after("import minigrad, fractions")
