"""The main job, `python -m minigrad compare`, end to end in quick mode."""
import json
import os

import pytest

from minigrad import cli

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    status = cli.main(["compare", "--quick", "--out", str(out),
                       "--members", "plain", "adv-pinf", "datagrad-l1-fd", "gp-q2"])
    assert status == 0
    with open(out / "results.json") as f:
        return out, json.load(f)


@pytest.mark.slow
def test_writes_every_output(quick_run):
    out, run = quick_run
    expected = ["results.json", "results.md"]
    if pytest.importorskip("matplotlib"):
        expected += ["robustness.png", "clean_vs_fgsm.png", "perturbations.png"]
    for name in expected:
        assert os.path.getsize(out / name) > 0, name
    assert [r["member"] for r in run["results"]] == ["plain", "adv-pinf", "datagrad-l1-fd", "gp-q2"]
    table = (out / "results.md").read_text()
    assert "| adv-pinf |" in table and "fgsm" in table


@pytest.mark.slow
def test_results_are_sane(quick_run):
    _, run = quick_run
    for r in run["results"]:
        assert 0 <= r["clean_error"] < 0.5, r  # five epochs on digits learn something
        for attack, by_eps in r["attacks"].items():
            for eps, error in by_eps.items():
                assert error >= r["clean_error"] - 0.02, (r["member"], attack, eps)  # attacks do not help


@pytest.mark.slow
def test_goodfellow_and_finite_difference_datagrad_train_identically(quick_run):
    # PAPERS.md claim 5, end to end: a·L(x) + (1−a)·L(x + ε sign g) and the DataGrad-L1
    # perturbed-point update with α = 1, β = (1−a)ε, φ = ε give the same parameter updates.
    _, run = quick_run
    results = {r["member"]: r for r in run["results"]}
    adv, fd = results["adv-pinf"], results["datagrad-l1-fd"]
    assert adv["clean_error"] == pytest.approx(fd["clean_error"], abs=1e-9)
    for attack, by_eps in adv["attacks"].items():
        assert by_eps == pytest.approx(fd["attacks"][attack], abs=0.01), attack


def test_unknown_member_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["compare", "--members", "nonsense"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_negative_budget_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["compare", "--eps", "-0.1"])
    assert e.value.code == 2
    assert "--eps" in capsys.readouterr().err


def test_a_run_whose_loss_climbs_is_marked_unstable():
    from minigrad import compare
    grid = {"fgsm": [0.1]}
    rows = [{"member": m, "clean_error": 0.1, "train_seconds": 1.0, "attacks": {"fgsm": {"0.1": 0.5}},
             "unstable": u} for m, u in (("plain", False), ("gp-q1", True))]
    table = compare.markdown_table(rows, grid)
    assert "| gp-q1 (unstable) |" in table and "| plain |" in table
    from minigrad.verdicts import unstable
    assert unstable([2.0, 0.6, 25.0]) and not unstable([2.0, 0.6, 0.5, 0.7])  # the collapse, and noise


@pytest.mark.slow
def test_the_strong_suite_and_its_masking_flags_are_in_every_output(quick_run):
    out, run = quick_run
    for r in run["results"]:
        robust = r["robust"]
        assert robust["suite"] == "strong" and robust["n"] == run["meta"]["n_test"]
        assert set(robust["errors"]) == {"apgd-ce", "apgd-t", "pgd-ce", "pgd-margin", "square"}
        assert robust["error"] >= max(robust["errors"].values())  # the per-example worst case
        assert set(robust["masking"]["flags"]) == {"black_box_beats_white_box", "large_budget_below_99",
                                                   "one_step_beats_iterative", "not_converged", "zero_gradient"}
    text = (out / "results.md").read_text()
    assert "strong ℓ∞ ε=0.1 %" in text and "masking flags" in text and "Square, 1000 queries" in text
    assert "Strong suite" in run["meta"]["suite"]


@pytest.mark.slow
def test_the_collapse_signals_are_recorded_per_epoch_and_drawn(tmp_path):
    out = tmp_path / "signals"
    assert cli.main(["compare", "--members", "plain", "adv-pinf", "--epochs", "3", "--train-size", "300",
                     "--test-size", "60", "--units", "16", "16", "--suite", "fast", "--diagnostics", "40",
                     "--quiet", "--out", str(out)]) == 0
    run = json.loads((out / "results.json").read_text())
    assert run["meta"]["config"]["diagnostics"] == 40
    for r in run["results"]:
        assert len(r["diagnostics"]) == 3
        assert set(r["diagnostics"][0]) == {"cosine", "linearity", "curvature", "fgsm_error", "pgd_error"}
    if pytest.importorskip("matplotlib"):
        assert (out / "signals.png").stat().st_size > 0
