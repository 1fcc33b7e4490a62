"""`python -m minigrad reproduce`: the two-phase protocol's decisions on synthetic curves, a short run on
the digits and on Fashion-MNIST that writes its report, and a run stopped mid-phase-2 that resumes bit for
bit."""
import json

import numpy as np
import pytest

from minigrad import cli, datasets, reproduce
from minigrad.checkpoint import read_checkpoint


@pytest.mark.parametrize("metrics, patience, max_epochs, expected", [
    ([0.5, 0.4, 0.3], 2, 100, (False, 3)),                     # still improving
    ([0.5, 0.4, 0.45, 0.41], 2, 100, (True, 2)),               # best at 2, two epochs without a better one
    ([0.5, 0.4, 0.45], 2, 100, (False, 2)),                    # one epoch short of the patience
    ([0.5, 0.4, 0.4, 0.4], 2, 100, (True, 2)),                 # a tie is no improvement: the first is kept
    ([0.9, 0.8, 0.7], 100, 3, (True, 3)),                      # the epoch limit
    ([0.3] + [0.31] * 100, 100, 1000, (True, 1)),              # pylearn2's N = 100
])
def test_phase_1_stops_when_the_validation_metric_has_not_improved_for_patience_epochs(metrics, patience,
                                                                                       max_epochs, expected):
    assert reproduce.phase1_stop(metrics, patience, max_epochs) == expected


@pytest.mark.parametrize("objectives, target, max_epochs, stop", [
    ([0.9, 0.5], 0.4, 100, False), ([0.9, 0.5, 0.4], 0.4, 100, True), ([0.9, 0.3], 0.4, 100, True),
    ([0.9, 0.8], 0.1, 2, True), ([], 0.4, 100, False)])
def test_phase_2_stops_when_the_validation_objective_reaches_the_kept_training_objective(objectives, target,
                                                                                          max_epochs, stop):
    assert reproduce.phase2_stop(objectives, target, max_epochs) == stop


def test_the_wilson_interval_holds_the_rate_and_shrinks_with_n():
    lo, hi = reproduce.wilson(94, 10_000)
    assert lo < 0.0094 < hi and hi - lo < 0.004
    assert reproduce.wilson(0, 100)[0] == 0.0 and reproduce.wilson(100, 100)[1] == pytest.approx(1.0)


def _run(out, *extra, data="digits"):
    return cli.main(["reproduce", "maxout-mnist-pi", "--data", data, "--budget", "2", "--quiet", "--out", str(out),
                     *extra])


@pytest.mark.slow
def test_a_short_run_on_the_digits_writes_the_report(tmp_path):
    assert _run(tmp_path) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["budget"] == 2 and report["protocol"]["phase1_stop"] == "--budget"
    assert "**Shortened**" in (tmp_path / "report.md").read_text()
    lo, hi = report["measured"]["test error %"][1]
    assert lo <= report["measured"]["test error %"][0] <= hi
    assert (tmp_path / "curve.png").stat().st_size > 0


@pytest.mark.slow
def test_a_short_run_on_fashion_mnist_writes_the_report(tmp_path):
    try:
        datasets.load("fashion-mnist")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    assert cli.main(["reproduce", "maxout-mnist-pi", "--data", "fashion-mnist", "--budget", "2", "--quiet",
                     "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "No paper column" in text and "FGSM test error % at ε = 0.25" in text


@pytest.mark.slow
def test_a_run_stopped_mid_phase_2_resumes_bit_for_bit(tmp_path, monkeypatch):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert _run(whole, "--budget", "3") == 0
    real, calls = reproduce.objective_on, []

    def interrupted(*args):  # phase 2's second epoch is trained and checkpointed, then Ctrl-C
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)
    monkeypatch.setattr(reproduce, "objective_on", interrupted)
    assert _run(stopped, "--budget", "3") == 130
    state = json.loads((stopped / "protocol.json").read_text())
    assert state["phase"] == 2 and len(state["objectives"]) == 1
    monkeypatch.setattr(reproduce, "objective_on", real)
    assert _run(stopped, "--budget", "3") == 0
    a, b = read_checkpoint(whole / "checkpoint.npz"), read_checkpoint(stopped / "checkpoint.npz")
    for name in a[0]:
        np.testing.assert_array_equal(a[0][name], b[0][name], err_msg=name)
    ra, rb = (json.loads((d / "protocol.json").read_text()) for d in (whole, stopped))
    assert ra["metrics"] == rb["metrics"] and ra["objectives"] == rb["objectives"]
    assert json.loads((whole / "report.json").read_text())["measured"] == \
        json.loads((stopped / "report.json").read_text())["measured"]


def test_a_spec_only_recipe_and_an_unknown_one_are_refused(capsys):
    assert cli.main(["reproduce", "maxout-cifar10-no-aug", "--out", "/tmp/never"]) == 2
    assert "spec only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "nope"])
