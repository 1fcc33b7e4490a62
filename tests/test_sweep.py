"""`python -m minigrad sweep`: identical cells whatever runs them, resume, verdicts with known answers,
the reports on a tiny sweep, and --quick end to end."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import minigrad
from minigrad import cli, flags, sweep
from minigrad.members import KNOBS, default_grid
from minigrad import verdicts as V
from minigrad.sweep_report import coincidences, frontier_series

pytest.importorskip("sklearn")
ROOT = Path(minigrad.__file__).resolve().parent.parent
TINY = ["--train-size", "240", "--test-size", "80", "--epochs", "2", "--units", "16", "--pgd-steps", "2"]


def tiny_configs(*extra):
    args = cli.build_parser().parse_args(["sweep", *TINY, *extra])
    return sweep.configs_for(flags.sweep_spec(args), 64)


def results(records):
    return {r["key"]: json.dumps(r["result"], sort_keys=True) for r in records}


# --- the same config gives the same bytes, whatever executes it ----------------------------------------
@pytest.mark.slow
def test_serial_pool_and_dask_give_byte_identical_cells():
    configs = tiny_configs("--members", "plain", "datagrad-l1", "--strengths", "0.05", "--seeds", "2")
    assert len(configs) == 4
    serial = list(sweep.execute(configs, "serial"))
    assert all(r["status"] == "ok" for r in serial), [r.get("error") for r in serial]
    pool = list(sweep.execute(configs, "pool", workers=2))
    assert results(pool) == results(serial)
    pytest.importorskip("dask.distributed")
    dask = list(sweep.execute(configs, "dask", workers=2, address="local"))
    assert results(dask) == results(serial)


def test_a_failed_cell_is_recorded_not_raised():
    bad = {**tiny_configs("--members", "adv-pinf", "--strengths", "0.1", "--seeds", "1")[0], "strength": -1.0}
    record = sweep.run_cell(bad)
    assert record["status"] == "failed" and "eps (a pixel budget) must be" in record["error"]


# --- resume --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_resume_after_a_kill_recomputes_only_unfinished_cells(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    flags = ["sweep", *TINY, "--epochs", "6", "--members", "plain", "adv-pinf", "--strengths", "0.03", "0.1",
             "--seeds", "3", "--serial", "--extend", "0", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "minigrad", *flags], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list((out / "cells").glob("*.json"))) < 2 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    kept = {p.name: p.read_bytes() for p in (out / "cells").glob("*.json")}
    total = 3 + 2 * 3
    if len(kept) >= total:
        pytest.skip("the sweep finished before it could be killed")
    ran = []
    real = sweep.run_cell
    monkeypatch.setattr(sweep, "run_cell", lambda c: ran.append(sweep.cell_key(c)) or real(c))
    assert cli.main(flags[:-2] + ["--out", str(out), "--quiet"]) == 0
    assert len(ran) == total - len(kept)
    assert not set(ran) & {name[:-5] for name in kept}
    assert all((out / "cells" / name).read_bytes() == data for name, data in kept.items())
    # adding a seed reuses every finished cell and runs only the new ones
    ran.clear()
    assert cli.main([*flags[:-2], "--seeds", "4", "--out", str(out), "--quiet"]) == 0
    assert len(ran) == 3
    # cells.jsonl alone (the raw log, e.g. copied elsewhere) is enough to resume
    lost = sorted((out / "cells").glob("*.json"))[:4]
    for path in lost:
        path.unlink()
    ran.clear()
    assert cli.main([*flags[:-2], "--seeds", "4", "--out", str(out), "--quiet"]) == 0
    assert ran == [] and all(path.exists() for path in lost)


# --- verdicts on synthetic cells with known answers ------------------------------------------------------
def cell(member, strength, seed, clean, pgd, valid_clean=None, status="ok", unstable=False):
    config = {"member": member, "strength": strength, "seed": seed, "knob": None if strength is None else "k",
              "budgets": {"fgsm": 0.1, "pgd-linf": 0.1, "fgm-l2": 0.4, "fgm-l1": 0.8}}
    if status != "ok":
        return {"key": f"{member}{strength}{seed}", "config": config, "status": status, "error": "boom"}

    def split(c):
        return {"clean_error": c, "attacks": {"fgsm": {"0.1": pgd - 0.01}, "pgd-linf": {"0.1": pgd},
                                              "fgm-l2": {"0.4": pgd}, "fgm-l1": {"0.8": pgd}}}
    return {"key": f"{member}{strength}{seed}", "config": config, "status": "ok",
            "result": {"history": [{"train_loss": v} for v in ((2.0, 0.5, 9.0) if unstable else (2.0, 0.5))],
                       "valid": split(clean if valid_clean is None else valid_clean),
                       "test": split(clean)}}


NOISE = (0.004, -0.006, 0.002, 0.005, -0.003)


def member_cells(member, strength, clean, pgd, noise=NOISE):
    return [cell(member, strength, s, clean + n, pgd + n) for s, n in enumerate(noise)]


def test_interval_and_the_three_verdicts():
    mean, lo, hi, n = V.interval([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and hi - mean == pytest.approx(4.303 / 3 ** 0.5)
    assert V.verdict_less(-0.05, -0.01) == V.HOLDS and V.verdict_less(0.01, 0.05) == V.FAILS
    assert V.verdict_less(-0.01, 0.01) == V.UNSURE and V.verdict_less(float("nan"), float("nan")) == V.UNSURE
    assert V.verdict_equivalent(-0.005, 0.005) == V.HOLDS and V.verdict_equivalent(0.02, 0.05) == V.FAILS
    assert V.verdict_equivalent(-0.005, 0.03) == V.UNSURE
    assert V.verdict_not_worse(-0.02, 0.004) == V.HOLDS and V.verdict_not_worse(0.02, 0.04) == V.FAILS


def claim_rows(records, claim_start, metric="pgd-linf"):
    pts = V.points(records)  # one strength per member: at its grid's edge, which tests/test_sweep_stats.py tests
    chosen = {m: c._replace(edge="") for m, c in V.matched(pts, 1.0).items()}
    rows = V.claims(pts, chosen, 0.1)
    return [r for r in rows if r["claim"].startswith(claim_start) and r["metric"] == metric]


def test_clear_win_clear_loss_and_tie_within_noise():
    tie_noise = (0.03, -0.03, 0.02, -0.025, 0.004)
    records = (member_cells("datagrad-l1", 0.05, 0.02, 0.20)  # clearly more robust than l1
               + member_cells("l1", 1e-4, 0.02, 0.40)
               + member_cells("l2", 1e-3, 0.02, 0.10, noise=NOISE[::-1])  # clearly more robust than datagrad-l1
               + member_cells("multitask", 1.0, 0.02, 0.20, noise=tie_noise))  # the same within noise
    rows = {r["comparison"].split(" − ")[1].split("@")[0]: r for r in claim_rows(records, "DataGrad")}
    assert rows["l1"]["verdict"] == V.HOLDS and rows["l1"]["mean"] == pytest.approx(-0.2)
    assert rows["l2"]["verdict"] == V.FAILS and rows["l2"]["lo"] > 0
    assert rows["multitask"]["verdict"] == V.UNSURE and rows["multitask"]["lo"] < 0 < rows["multitask"]["hi"]


def test_most_robust_needs_to_beat_everyone():
    base = member_cells("multitask+datagrad", 0.05, 0.02, 0.20) + member_cells("plain", None, 0.02, 0.50)
    [row] = claim_rows(base, "multitask + DataGrad")
    assert row["verdict"] == V.HOLDS
    [row] = claim_rows(base + member_cells("adv-pinf", 0.1, 0.02, 0.10), "multitask + DataGrad")
    assert row["verdict"] == V.FAILS and "adv-pinf" in row["comparison"]


def test_the_strength_is_chosen_on_validation_within_the_budget():
    by = {0.01: member_cells("l2", 0.01, 0.02, 0.30), 0.1: member_cells("l2", 0.1, 0.05, 0.10),
          1.0: [cell("l2", 1.0, s, 0.02, 0.01, status="diverged" if s == 0 else "ok") for s in range(3)]}
    assert V.choose(by, budget=0.06)[:2] == (0.1, True)  # most robust within the budget
    assert V.choose(by, budget=0.03)[:2] == (0.01, True)  # 0.1 is over it; 1.0 diverged in one seed
    assert V.choose(by, budget=0.001)[:2] == (0.01, False)  # nothing within: the cleanest, marked
    assert V.health(by[1.0]) == {"n": 3, "ok": 2, "unstable": 0, "failed": 1}


def test_unstable_rule():
    assert not V.unstable([2.0, 0.5, 0.3, 0.32, 0.25])
    assert V.unstable([2.0, 0.6, 0.6, 25.0, 254.0])  # the gp-q1 collapse of issue 12
    assert not V.unstable([2.3, 2.4, 2.2])
    assert not V.unstable([0.187, 0.131, 0.13, 0.153, 0.131, 0.402, 0.136])  # noise of a healthy run (digits)
    assert V.health([cell("l2", 0.1, 0, 0.1, 0.2, unstable=True)])["unstable"] == 1


def test_default_strengths_scale_penalties_with_the_input_dimension():
    assert default_grid("datagrad-l1", 64) == [0.005, 0.015, 0.05, 0.15, 0.5]
    assert default_grid("datagrad-l1", 784) == pytest.approx([v * 64 / 784 for v in
                                                                         (0.005, 0.015, 0.05, 0.15, 0.5)], rel=5e-3)
    assert default_grid("adv-pinf", 784) == default_grid("adv-pinf", 64)  # pixel budgets
    assert default_grid("plain", 784) == [None]
    assert default_grid("gp-q1", 64, quick=True) == [0.3, 1.0]


def test_identical_members_are_one_series_and_coincident_points_are_named():
    a = member_cells("adv-pinf", 0.1, 0.02, 0.2)
    b = [{**r, "config": {**r["config"], "member": "datagrad-l1-fd", "strength": 0.05}} for r in a]
    c = [{**r, "config": {**r["config"], "member": "vat"}} for r in a]
    d = member_cells("l2", 0.1, 0.02, 0.3)
    pts = V.points(a + b + c + d)
    assert coincidences(pts) == ["adv-pinf@0.1 ≡ datagrad-l1-fd@0.05", "adv-pinf@0.1 ≡ vat@0.1"]
    # the same points make one entry, whatever the strengths are called
    series = frontier_series(pts, KNOBS)
    assert [s["label"] for s in series] == ["adv-pinf (eps) = datagrad-l1-fd (beta_l1) = vat (eps)", "l2 (l2)"]
    assert coincidences(pts, series) == []  # drawn as one entry already
    renamed = [{**r, "result": {**r["result"], "objective": "double-backprop(beta=0.1)"}} for r in d]
    d2 = [{**r, "config": {**r["config"], "member": "double-backprop"}} for r in renamed]
    merged = frontier_series(V.points(d + d2), KNOBS)
    assert [s["label"] for s in merged] == ["l2 (l2) = double-backprop (beta_l2)"]


# --- the command -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    started = time.perf_counter()
    assert cli.main(["sweep", "--quick", "--workers", "2", "--quiet", "--out", str(out)]) == 0
    return out, time.perf_counter() - started


@pytest.mark.slow
def test_quick_writes_every_output(quick_run):
    out, seconds = quick_run
    assert seconds < 60
    names = ["cells.jsonl", "command.txt", "matched.md", "verdicts.md"]
    if pytest.importorskip("matplotlib"):
        names.append("frontier.png")
    for name in names:
        assert (out / name).stat().st_size > 0, name
    lines = (out / "cells.jsonl").read_text().splitlines()
    assert len(lines) == len(list((out / "cells").glob("*.json"))) == 2 + 4 * 2 * 2
    assert (out / "command.txt").read_text().startswith("python -m minigrad sweep")


@pytest.mark.slow
def test_quick_tables(quick_run):
    out, _ = quick_run
    matched = (out / "matched.md").read_text()
    for m in sweep.QUICK_MEMBERS:
        assert f"| {m} |" in matched
    assert "± " in matched and "Clean-error budget on validation" in matched
    verdicts = (out / "verdicts.md").read_text()
    assert "paired over seeds and test examples" in verdicts and "explicit penalty ≡ perturbed point" in verdicts
    assert "## Stability of every point" in verdicts
    # PAPERS.md claim 5 end to end: Goodfellow's FGSM training ≡ DataGrad-L1 by the perturbed point
    assert "adv-pinf@0.1 ≡ datagrad-l1-fd@0.05" in " ".join(
        coincidences(V.points(json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines())))


@pytest.mark.parametrize("flags, code", [
    (["--valid-fraction", "0"], 2), (["--scheduler", "nonsense"], 2), (["--strengths", "-1"], 2),
    (["--seeds", "0"], 2), (["--clean-budget", "150"], 2), (["--serial", "--dask", "local"], 2),
    (["--members", "plain", "--strengths", "l1=0.1"], 2)])
def test_bad_flags_are_refused_before_any_work(tmp_path, flags, code):
    try:
        status = cli.main(["sweep", "--quick", "--out", str(tmp_path / "o"), *flags])
    except SystemExit as e:
        status = e.code
    assert status == code
    assert not (tmp_path / "o" / "cells").exists()


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    assert cli.main(["sweep", "--quick", "--out", str(tmp_path / "f")]) == 4


def test_reports_show_diverged_cells(tmp_path):
    from minigrad.sweep_report import write_reports
    records = (member_cells("plain", None, 0.02, 0.5) + member_cells("adv-pinf", 0.1, 0.025, 0.2)
               + [cell("adv-pinf", 0.3, s, 0.1, 0.1, status="diverged" if s < 2 else "ok") for s in range(5)]
               + [cell("gp-q1", 1.0, s, 0, 0, status="diverged") for s in range(5)])
    written = write_reports(tmp_path, records, "python -m minigrad sweep --out X", None, 0.1, 64, KNOBS)
    matched = (tmp_path / "matched.md").read_text()
    assert "| gp-q1 | — |" in matched and "every strength diverged or failed" in matched
    assert "| adv-pinf | eps = 0.1 |" in matched  # 0.3 would be more robust, but two seeds diverged
    verdicts = (tmp_path / "verdicts.md").read_text()
    assert "| adv-pinf | 0.3 | 3/5 | 0 | 2 |" in verdicts and "| gp-q1 | 1 | 0/5 | 0 | 5 |" in verdicts
    if pytest.importorskip("matplotlib"):
        assert "frontier.png" in written and (tmp_path / "frontier.png").stat().st_size > 0


def test_strengths_for_every_member_or_for_one():
    configs = tiny_configs("--members", "plain", "l2", "adv-pinf", "--strengths", "0.2", "adv-pinf=0.05,0.1")
    points = sorted({(c["member"], c["strength"]) for c in configs}, key=str)
    assert points == [("adv-pinf", 0.05), ("adv-pinf", 0.1), ("l2", 0.2), ("plain", None)]
    args = cli.build_parser().parse_args(["sweep", "--strengths", "gp-q1=0.5", "1e-3"])
    assert " ".join(map(str, args.strengths)) == "gp-q1=0.5 0.001"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["sweep", "--strengths", "nonsense=1"])


def test_a_dead_worker_makes_an_error_record_that_the_next_run_retries():
    from concurrent.futures import Future
    config = tiny_configs("--members", "plain", "--seeds", "1")[0]
    future = Future()
    future.set_exception(RuntimeError("killed"))
    record = sweep._outcome(future, config)
    assert record["status"] == "error" and "killed" in record["error"] and "error" not in sweep.FINAL


@pytest.mark.slow
def test_quick_writes_the_strong_suite_beside_pgd10(quick_run):
    out, _ = quick_run
    matched, verdicts = (out / "matched.md").read_text(), (out / "verdicts.md").read_text()
    assert "## The strong suite beside PGD-10" in matched and "masking flags (cells)" in matched
    assert "Square with 1000 queries" in matched
    assert "side by side with the fast suite" in verdicts and ("survives" in verdicts or "flips" in verdicts)
    cell = json.loads(next((out / "cells").glob("*.json")).read_text())
    assert cell["result"]["test"]["strong"]["suite"] == "strong" and "strong-linf" in cell["result"]["wrong"]["test"]


def test_a_sweep_cell_records_the_collapse_signals_when_asked():
    plain = tiny_configs("--members", "plain", "--seeds", "1")[0]
    assert "diagnostics" not in plain  # off: the cells' keys are those of sweeps before the option
    config = tiny_configs("--members", "plain", "--seeds", "1", "--diagnostics", "30", "--suite", "fast")[0]
    record = sweep.run_cell(config)
    assert record["status"] == "ok", record.get("error")
    assert all(set(h["diagnostics"]) >= {"cosine", "pgd_error"} for h in record["result"]["history"])
