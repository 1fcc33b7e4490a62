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


# --- every command the README shows runs: the long ones as a plan, or on tiny data ---------------------
def readme_commands() -> list:
    """Each `python -m minigrad …` command of the README (code blocks and inline code), in order, without
    comments; placeholder commands (DIR, N) are left out, `COMMAND --help` becomes every command's help."""
    found = []
    for line in readme().replace("\\\n", " ").splitlines():  # a command continued with \ is one line
        for text in re.findall(r"`(python -m minigrad[^`]*)`", line) or (
                [line[line.index("python -m minigrad"):]] if "python -m minigrad" in line and "`" not in line else []):
            words = text.split("#")[0].split()
            if "COMMAND" in words:
                found += [["python", "-m", "minigrad", c, "--help"] for c in ("train", "evaluate", "compare", "sweep", "reproduce")]
            elif not {"DIR", "N", "RECIPE", "MEMBER", "ADDR"} & set(words):
                found.append(words)
    return found


def tiny(words: list) -> list:
    """The same command, small enough for the test suite: a sweep as a plan, compare on a few examples,
    train with a tenth of the epochs (so a resumed run still asks for more than it has)."""
    command, argv = words[3], words[4:]
    if "--help" in argv or command == "evaluate":
        return argv and [command, *argv]
    if command == "sweep":
        return [command, *argv, "--plan"]
    if command == "reproduce":
        return [command, *argv, "--budget", "1", "--quiet", "--out", "reproduce-" + argv[0]]
    if command == "compare":
        return [command, *argv, "--train-size", "60", "--test-size", "30", "--epochs", "1", "--units", "8", "--quiet"]
    argv = [str(max(1, int(w) // 10)) if i and argv[i - 1] == "--epochs" else w for i, w in enumerate(argv)]
    return [command, *argv, "--units", "8", "--quiet"]


COMMANDS = [c for c in readme_commands() if c[2] == "minigrad"]


def test_the_readme_shows_commands_of_every_kind():
    assert {c[3] for c in COMMANDS} >= {"train", "evaluate", "compare", "sweep"}
    assert any(c[2] == "minigrad.verify" for c in readme_commands())


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path, monkeypatch, capsys):
    """In the README's order (the resumed run and the evaluation use the run before them), in one
    directory, as a user would type them."""
    pytest.importorskip("sklearn")
    from minigrad import cli, datasets, optional
    monkeypatch.chdir(tmp_path)
    for words in COMMANDS:
        argv = tiny(words)
        if "--dask" in argv and optional.maybe("dask.distributed") is None:
            continue  # the sweep extra is not installed here (pip install 'minigrad[sweep]'); CI installs it
        if "fashion-mnist" in argv:
            try:
                datasets.load("fashion-mnist")
            except FileNotFoundError:
                continue  # not installed here (apt-get install dataset-fashion-mnist); CI installs it
        if "--data-dir" in argv and not os.path.isdir(os.path.expanduser(argv[argv.index("--data-dir") + 1])):
            continue  # the user's own files (MNIST is not on this machine: it is never downloaded)
        if argv[-1] == "--help":
            with pytest.raises(SystemExit) as e:
                cli.main(argv)
            assert e.value.code == 0
            continue
        assert cli.main(argv) == 0, (" ".join(words), capsys.readouterr().err)


@pytest.mark.slow
def test_the_readme_verify_command_runs():
    """`python -m minigrad.verify`, as the README shows it: every claim prints a line."""
    import subprocess
    import sys
    assert any(c[2] == "minigrad.verify" and len(c) == 3 for c in readme_commands())
    done = subprocess.run([sys.executable, "-m", "minigrad.verify"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert sorted({int(line.split()[0]) for line in lines if line[:1].isdigit()}) == list(range(1, 15)), done.stdout
