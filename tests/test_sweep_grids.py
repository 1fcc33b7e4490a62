"""Grids that find each member's best: a choice at an end of the grid is extended, or marked at the edge."""
import json

import pytest

from minigrad import cli, grids
from minigrad import verdicts as V

TINY = ["sweep", "--serial", "--quiet", "--train-size", "400", "--test-size", "150", "--units", "16", "16",
        "--epochs", "3", "--seeds", "2", "--pgd-steps", "3", "--members", "plain", "adv-pinf"]


def test_a_step_continues_the_grid_geometrically():
    assert grids.step([0.01, 0.03, 0.1], "strongest", "eps") == 0.333
    assert grids.step([0.01, 0.03, 0.1], "weakest", "eps") == 0.00333
    assert grids.step([0.5], "strongest", "gp_scale") == 1.5
    assert grids.step([0.3, 0.6], "strongest", "eps") == 1.0   # a pixel budget stops at 1
    assert grids.step([0.6, 1.0], "strongest", "eps") is None


def _cells(tmp_path):
    return [json.loads(p.read_text()) for p in (tmp_path / "cells").glob("*.json")]


@pytest.mark.slow
def test_a_grid_cut_short_below_the_best_extends_itself(tmp_path):
    assert cli.main([*TINY, "--strengths", "adv-pinf=0.001", "--extend", "1", "--out", str(tmp_path)]) == 0
    tried = sorted({c["config"]["strength"] for c in _cells(tmp_path) if c["config"]["member"] == "adv-pinf"})
    # one step beyond the edge (ratio 3 from a grid of one); then, if the choice moved to the other end, one
    # step that way too: at most --extend 1 steps each way
    assert tried[tried.index(0.001):][:2] == [0.001, 0.003] and set(tried) <= {0.000333, 0.001, 0.003}
    matched = (tmp_path / "matched.md").read_text()
    assert "| adv-pinf |" in matched
    # A rerun decides the same and finds every cell finished: nothing is trained again.
    cells = len(_cells(tmp_path))
    assert cli.main([*TINY, "--strengths", "adv-pinf=0.001", "--extend", "1", "--out", str(tmp_path)]) == 0
    assert len(_cells(tmp_path)) == cells


@pytest.mark.slow
def test_a_grid_that_may_not_extend_marks_the_edge(tmp_path):
    assert cli.main([*TINY, "--strengths", "adv-pinf=0.001", "--extend", "0", "--out", str(tmp_path)]) == 0
    row = next(line for line in (tmp_path / "matched.md").read_text().splitlines() if line.startswith("| adv-pinf"))
    assert "at the edge" in row
    verdicts = (tmp_path / "verdicts.md").read_text()
    edge_rows = [line for line in verdicts.splitlines() if "adv-pinf" in line and "at the edge" in line]
    assert edge_rows and all("cannot tell" in line for line in edge_rows)


def test_extensions_stop_at_the_limit_and_inside_the_grid():
    def cell(member, s, seed, valid_clean, valid_pgd):
        res = {"clean_error": valid_clean, "clean_loss": 1.0, "attacks": {"pgd-linf": {"0.1": valid_pgd}}}
        return {"key": f"{member}{s}{seed}", "status": "ok", "config": {"member": member, "strength": s, "seed": seed,
                "knob": "eps", "eps": 0.1, "budgets": {"pgd-linf": 0.1}},
                "result": {"valid": res, "test": res, "history": [{"train_loss": 1.0}], "best_epoch": 1}}
    plain = [cell("plain", None, k, 0.10, 0.9) for k in range(2)]
    strong_is_best = [cell("adv-pinf", s, k, 0.10, 0.9 - s) for s in (0.01, 0.03) for k in range(2)]
    pts = V.points(plain + strong_is_best)
    planned = {"plain": [None], "adv-pinf": [0.01, 0.03]}
    knobs = {"plain": None, "adv-pinf": "eps"}
    assert grids.extensions(pts, 0.2, planned, 1, knobs) == [("adv-pinf", 0.09)]
    pts = V.points(plain + strong_is_best + [cell("adv-pinf", 0.09, k, 0.10, 0.5) for k in range(2)])
    assert grids.extensions(pts, 0.2, planned, 1, knobs) == []  # the limit: one step that way
    over = [cell("adv-pinf", 0.09, k, 0.5, 0.1) for k in range(2)]  # past the clean budget: chosen inside
    pts = V.points(plain + strong_is_best + over)
    assert V.matched(pts, 0.2)["adv-pinf"].edge == "" and grids.extensions(pts, 0.2, planned, 3, knobs) == []
