"""benchmarks/collapse_study.py: its rules on series with known answers, and its tables from synthetic runs
and from one tiny real compare run."""
import importlib.util
import json
import pathlib

import pytest

from minigrad import cli
from minigrad.cli import build_parser

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "collapse_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("collapse_study", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_steady_trend_never_moves_and_a_jump_does(study):
    assert study.moved([1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5]) is None      # a falling loss
    assert study.moved([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]) is None                 # a linear rise
    assert study.moved([1.0, 0.6, 0.5, 0.45, 0.4, 25.0, 254.0]) == (6, "+")    # the issue's collapse
    assert study.moved([0.99, 0.98, 0.99, 0.985, 0.5]) == (5, "−")              # a cosine that falls
    assert study.moved([1.5 ** k for k in range(12)]) is None                  # ×1.5 an epoch: the range keeps up
    assert study.moved([1.0, 2.0, 4.0, 8.0]) == (4, "+")                       # doubling does not
    assert study.moved([1.7 ** k for k in range(4)]) == (4, "+")               # nor ×1.7 at the first epoch tested
    assert study.moved([1.6 ** k for k in range(4)]) is None                   # ×1.6 there does not move
    assert study.moved([1.0, 1.0, 1.0, 9.0], history=3) == (4, "+")
    assert study.moved([1.0, 9.0, 1.0], history=3) is None                      # too early to call
    assert study.moved([0.5, 0.4, 0.3, float("nan")]) == (4, "+")
    ramp = [0.9, 1.0, 1.2, 1.9, 1.7, 1.65, 1.6, 1.62, 1.58]                  # a warm-up's loss rises by design
    assert study.moved(ramp) == (4, "+") and study.moved(ramp, start=3) is None
    assert study.moved(ramp + [30.0], start=3) == (10, "+")


def test_collapse_rules(study):
    assert study.unstable_epoch([1.0, 0.6, 0.4, 0.5, 25.0, 254.0]) == 5      # 25 > 5·0.4 + 0.5
    assert study.unstable_epoch([1.0, 0.6, 0.4, 2.4]) is None                  # 2.4 < 2.5
    d = [{"pgd_error": p, "fgsm_error": f} for p, f in ((0.5, 0.45), (0.6, 0.45), (0.9, 0.3))]
    assert study.co_epoch(d) == 3 and study.co_epoch(d, gap=0.7) is None


def _write_run(path, member, seed, loss, signals, clean=0.2, pgd=0.5, objective=None, warmup=0):
    diagnostics = [dict(zip(study_signals(), row)) for row in signals]
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps({
        "meta": {"config": {"seed": seed, "epochs": len(loss), "warmup": warmup, "diagnostics": 4, "n_train": 10,
                            "n_test": 100},
                 "strengths": {"eps": 0.1}, "n_test": 100},
        "results": [{"member": member, "objective": objective or member, "train_loss": loss, "diagnostics": diagnostics,
                     "clean_error": clean, "attacks": {"fgsm": {"0.1": pgd - 0.05}, "pgd-linf": {"0.1": pgd}}}]}))


def study_signals():
    return ("cosine", "linearity", "curvature", "fgsm_error", "pgd_error")


def test_tables_from_synthetic_runs(study, tmp_path, capsys):
    calm = [(0.99, 0.2, 0.1, 0.5, 0.55)] * 7
    rising = [(0.99, 0.2, 0.1, 0.5, 0.55)] * 4 + [(0.99, 0.2, 5.0, 0.5, 0.55)] * 3   # curvature jumps at epoch 5
    dirs = []
    for seed in (0, 1):
        _write_run(tmp_path / f"gp-s{seed}", "gp-q1", seed, [1.0, 0.7, 0.6, 0.55, 0.5, 30.0, 200.0], rising,
                   clean=0.8, pgd=0.9)
        _write_run(tmp_path / f"warm-s{seed}", "gp-q1", seed, [1.0, 0.7, 0.6, 0.55, 0.5, 0.45, 0.4], calm,
                   clean=0.25 + 0.01 * seed, pgd=0.5, warmup=3)
        dirs += [tmp_path / f"gp-s{seed}", tmp_path / f"warm-s{seed}"]
    runs = study.load(dirs)
    assert {r["label"] for r in runs} == {"gp-q1 [warmup=0]", "gp-q1 [warmup=3]"}
    assert study.main([str(d) for d in dirs] + ["--against", "gp-q1 [warmup=0]"]) == 0
    out = capsys.readouterr().out
    assert "| gp-q1 [warmup=0] | 0 | loss (6) | 6+ | — | — | 5+ (+1 / +1) | — | — |" in out
    assert "| curvature | 2 of 2 | +1, +1 | 2 of 2 | +1, +1 | 0 of 2 |" in out
    assert "| gp-q1 [warmup=0] | 2 | 2 of 2 (6, 6) | 80.0" in out
    assert "| gp-q1 [warmup=3] | 2 | 0 of 2 (—, —) | 25.5 [" in out
    assert "| 25.0 / 26.0 | -54.5 [-67.8, -41.2] | -40.0 [" in out  # the paired clean-error difference, per seed
    if pytest.importorskip("matplotlib"):
        assert study.main([str(d) for d in dirs] + ["--figure", str(tmp_path / "fig" / "s.png")]) == 0
        assert (tmp_path / "fig" / "s.png").stat().st_size > 0


@pytest.mark.slow
def test_reads_a_real_compare_run(study, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["compare", "--members", "plain", "gradalign", "--lam-align", "0", "--epochs", "4",
                     "--train-size", "200", "--test-size", "40", "--units", "8", "8", "--suite", "fast",
                     "--diagnostics", "20", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert study.main([str(out), "--per-epoch"]) == 0
    text = capsys.readouterr().out
    assert "FGSM alone = gradalign(eps=0.1,lam=0) seed 0" in text and "| plain | 1 |" in text
    assert study.main([str(out), "--members", "plain"]) == 0
    assert "gradalign" not in capsys.readouterr().out
    result = json.loads((out / "results.json").read_text())["results"][0]
    assert len(result["train_error"]) == 4


def test_lam_align_takes_zero_and_the_other_weights_do_not():
    parser = build_parser()
    args = parser.parse_args(["compare", "--lam-align", "0"])
    assert args.lam_align == 0.0
    with pytest.raises(SystemExit):
        parser.parse_args(["compare", "--lam-cure", "0"])


def test_a_directory_without_a_run_is_named_before_any_is_read(study, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=r"no results.json in .*empty, .*nope"):
        study.load([tmp_path / "empty", tmp_path / "nope"])
