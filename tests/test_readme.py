"""The README's API tour is real code: run it (one epoch instead of ten)."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", readme(), re.S).group(1).strip().splitlines()
    assert first_block == ['pip install -e ".[tutorials]" && python -m minigrad compare',
                           'pip install -e ".[test,tutorials]" && python -m pytest -q']


@pytest.mark.slow
def test_api_tour_runs(capsys):
    pytest.importorskip("sklearn")
    code = re.search(r"```python\n(.*?)```", readme(), re.S).group(1)
    assert "epochs=10" in code
    exec(compile(code.replace("epochs=10", "epochs=1"), "README.md", "exec"), {})
    assert "Evaluation(error=" in capsys.readouterr().out
