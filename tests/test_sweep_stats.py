"""The sweep's statistics and figure on synthetic records with known answers: intervals count both sources
of noise (seeds and the test set's examples), never carry a verdict at zero width, fall back to a stated
binomial term for cells recorded without per-example outcomes; no verdict is drawn at the edge of a member's
grid; the frontier figure holds the points where verdicts are drawn and marks chosen, edge and added points."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad import verdicts as V

BUDGETS = {"fgsm": 0.1, "pgd-linf": 0.1, "fgm-l2": 0.4, "fgm-l1": 0.8}


def flagged(member, strength, seed, clean, robust=None, valid=(0.1, 0.5), per_example=True):
    """A finished cell whose test outcomes are the wrong flags ``clean`` and ``robust`` (every attack),
    stored as per-example outcomes unless ``per_example`` is False; ``valid``: (clean, robust) errors."""
    robust = clean if robust is None else robust
    config = {"member": member, "strength": strength, "seed": seed, "knob": None if strength is None else "k",
              "budgets": BUDGETS}

    def split(c, r):
        return {"clean_error": c, "attacks": {a: {str(b): r} for a, b in BUDGETS.items()}}
    result = {"history": [{"train_loss": 1.0}], "valid": split(*valid),
              "test": split(float(np.mean(clean)), float(np.mean(robust)))}
    if per_example:
        result["wrong"] = {"test": {"n": len(clean), "clean": V.pack_wrong(clean),
                                    **{a: V.pack_wrong(robust) for a in BUDGETS}}}
    return {"key": f"{member}{strength}{seed}", "config": config, "status": "ok", "result": result}


def wrong_on(n, *ranges):
    flags = np.zeros(n, bool)
    for lo, hi in ranges:
        flags[lo:hi] = True
    return flags


def seeds_only(a_cells, b_cells, name="clean"):
    """The paired t interval over seeds alone: what the sweep used to report."""
    return V.interval([V.metric(a, "test", name) - V.metric(b, "test", name) for a, b in zip(a_cells, b_cells)])


# --- the record format ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 2000])
def test_wrong_flags_pack_to_hex_and_back(n):
    flags = np.random.default_rng(n).random(n) < 0.3
    text = V.pack_wrong(flags)
    assert isinstance(text, str) and len(text) == 2 * ((n + 7) // 8)
    assert np.array_equal(V.unpack_wrong(text, n), flags)
    with pytest.raises(ValueError, match="cannot hold exactly"):
        V.unpack_wrong(text, n + 8)


def test_flags_that_do_not_give_the_stored_error_raise():
    cell = flagged("plain", None, 0, wrong_on(100, (0, 10)))
    assert V.wrong(cell, "test", "clean").sum() == 10 and V.wrong(cell, "valid", "clean") is None
    cell["result"]["test"]["clean_error"] = 0.2
    with pytest.raises(ValueError, match="flags give an error of 0.100000, but it stores 0.200000"):
        V.wrong(cell, "test", "clean")


def test_the_test_size_of_old_records_is_read_from_their_errors():
    old = flagged("plain", None, 0, wrong_on(250, (0, 37)), wrong_on(250, (0, 120)), per_example=False)
    assert V.n_examples([old], "test") == 250  # 37/250 and 120/250 = 12/25: the lcm of 250 and 25
    assert V.n_examples([flagged("plain", None, 0, wrong_on(300, (0, 3)))], "test") == 300


# --- intervals with known answers ---------------------------------------------------------------------------
def test_a_zero_variance_pair_gives_no_verdict():
    a = [flagged("l1", 0.1, s, wrong_on(200, (0, 30))) for s in range(3)]
    e = V.paired(a, a, "test", "clean")
    assert (e.mean, e.lo, e.hi) == (0.0, 0.0, 0.0) and "zero-width" in e.reason
    assert V.verdict_less(e.lo, e.hi) == V.verdict_equivalent(e.lo, e.hi) == V.verdict_not_worse(e.lo, e.hi) \
        == V.UNSURE
    rounded = V.estimate([0.01, 0.1 - 0.09, 0.01])  # the same step on every seed, up to rounding
    assert rounded.lo == rounded.hi and "zero-width" in rounded.reason


def test_the_same_step_on_every_seed_is_not_certainty():
    """Issue 22: "+1.00 [+1.00, +1.00] does not hold" from 2 seeds.  A misses the 2 examples of 200 that
    B gets right, on both seeds: the seeds see no spread, the test set still does."""
    a = [flagged("l1", 0.1, s, wrong_on(200, (0, 32))) for s in range(2)]
    b = [flagged("l2", 0.1, s, wrong_on(200, (0, 30))) for s in range(2)]
    assert seeds_only(a, b)[1:3] == pytest.approx((0.01, 0.01))  # the old interval: zero width
    e = V.paired(a, b, "test", "clean")
    assert e.mean == pytest.approx(0.01) and e.lo < 0 < e.hi and e.test == "per-example"
    assert V.verdict_less(e.lo, e.hi) == V.UNSURE


def within_test_noise(n=400):
    """A wrong on examples 0–119, B on 60–171, so A has 8 more errors of 400 (+2 points) on every seed,
    plus 0–2 of its own: clear over seeds, but the members disagree on 112 examples."""
    extra = (0, 1, 0, 1, 2)
    a = [flagged("datagrad-l1", 0.05, s, wrong_on(n, (0, 120), (300, 300 + k))) for s, k in enumerate(extra)]
    b = [flagged("l1", 1e-4, s, wrong_on(n, (60, 172))) for s in range(len(extra))]
    return a, b


def test_a_difference_clear_over_seeds_but_within_test_set_noise_cannot_tell():
    a, b = within_test_noise()
    _, lo, hi, _ = seeds_only(a, b)
    assert 0 < lo < hi < 0.03  # over seeds alone, "A beats B" would not hold, confidently
    e = V.paired(a, b, "test", "clean")
    assert e.mean == pytest.approx(0.022) and e.lo < 0 < e.hi
    assert V.verdict_less(e.lo, e.hi) == V.UNSURE  # fails if the test-set term is dropped


def test_the_test_set_term_is_mcnemars_variance_and_what_a_bootstrap_over_examples_sees():
    a, b = within_test_noise()
    e = V.paired(a, b, "test", "clean")
    d = np.array([V.metric(x, "test", "clean") - V.metric(y, "test", "clean") for x, y in zip(a, b)])
    v_test = e.se ** 2 - d.var(ddof=1) / len(d)
    n, only_a, only_b = 400, 60 + 0.8, 52  # per example seed-averaged: A alone wrong on 60 (+ 0.8 on average)
    delta = np.mean([V.wrong(x, "test", "clean").astype(float) - V.wrong(y, "test", "clean") for x, y in zip(a, b)],
                    axis=0)
    assert v_test == pytest.approx(delta.var(ddof=1) / n)
    assert v_test == pytest.approx(((only_a + only_b) / n - ((only_a - only_b) / n) ** 2) / n, rel=0.02)
    draws = np.random.default_rng(0).integers(0, n, size=(4000, n))
    assert v_test == pytest.approx(delta[draws].mean(axis=1).var(), rel=0.1)


def test_a_clear_win_holds():
    a = [flagged("datagrad-l1", 0.05, s, wrong_on(2000, (0, 200 + s))) for s in range(3)]
    b = [flagged("l1", 1e-4, s, wrong_on(2000, (0, 800 - 3 * s))) for s in range(3)]
    e = V.paired(a, b, "test", "clean")
    assert e.mean == pytest.approx(-0.298) and e.hi < -0.25
    assert V.verdict_less(e.lo, e.hi) == V.HOLDS


def test_each_term_keeps_its_own_quantile():
    seeds = V.estimate([0.1, 0.2, 0.3])  # no test-set term: the t interval, t(0.975, 2)
    assert (seeds.hi - seeds.mean) / seeds.se == pytest.approx(4.303)
    tests = V.estimate([0.2, 0.2 + 1e-6, 0.2 - 1e-6], test_var=1e-4, n_test=2000)
    assert (tests.hi - tests.mean) / tests.se == pytest.approx(1.96, abs=0.01)
    both = V.estimate([0.1, 0.2, 0.3], test_var=0.01, n_test=2000)
    assert both.hi - both.mean == pytest.approx((4.303 ** 2 * 0.01 / 3 + 1.961 ** 2 * 0.01) ** 0.5, rel=1e-3)
    assert V.estimate([0.2]).reason == "one seed: no interval"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=2, max_size=8), st.floats(0, 0.05), st.integers(2, 10 ** 5))
def test_counting_the_test_set_never_narrows_the_seeds_interval(values, test_var, n_test):
    alone, both = V.estimate(values), V.estimate(values, test_var, n_test)
    assert both.hi - both.lo >= alone.hi - alone.lo - 1e-12 and both.mean == alone.mean


def test_cells_without_per_example_outcomes_use_the_binomial_term():
    a, b = within_test_noise()
    old = [flagged(r["config"]["member"], r["config"]["strength"], r["config"]["seed"],
                   V.wrong(r, "test", "clean"), per_example=False) for r in a]
    e = V.paired(old, b, "test", "clean")  # one side without outcomes: both sides binomial
    ea, eb = np.mean([V.metric(r, "test", "clean") for r in old]), 112 / 400
    d = np.array([V.metric(x, "test", "clean") - V.metric(y, "test", "clean") for x, y in zip(old, b)])
    assert e.test == "binomial" and e.se ** 2 == pytest.approx(d.var(ddof=1) / 5 + (ea * (1 - ea) + eb * (1 - eb))
                                                                / 400)
    assert V.verdict_less(e.lo, e.hi) == V.UNSURE
    # independence overstates the variance of members that err on the same examples
    assert e.se > V.paired(a, b, "test", "clean").se
    one = V.summary(old, "test", "clean")
    assert one.test == "binomial" and one.se ** 2 == pytest.approx(np.var([V.metric(r, "test", "clean") for r in old],
                                                                          ddof=1) / 5 + ea * (1 - ea) / 400)


# --- no verdict at the edge of a grid ---------------------------------------------------------------------
def point(member, strength, test_wrong, valid, seeds=3, n=1000):
    return [flagged(member, strength, s, wrong_on(n, (0, test_wrong + s)), valid=valid) for s in range(seeds)]


def test_choose_says_when_the_chosen_strength_is_an_end_of_its_grid():
    by = {0.01: point("l2", 0.01, 300, (0.10, 0.40)), 0.1: point("l2", 0.1, 200, (0.11, 0.30)),
          1.0: point("l2", 1.0, 100, (0.12, 0.20))}
    assert V.choose(by, budget=0.13) == (1.0, True, "strongest")  # still improving where the grid stops
    assert V.choose(by, budget=0.115) == (0.1, True, "")  # the budget stops it: 1.0 is over
    assert V.choose(by, budget=0.105) == (0.01, True, "weakest")
    assert V.choose(by, budget=0.05) == (0.01, False, "weakest")  # nothing within: the cleanest
    by[3.0] = [{**c, "status": "diverged"} for c in point("l2", 3.0, 0, (0.0, 0.0))]
    assert V.choose(by, budget=0.13) == (1.0, True, "")  # a stronger point was tried and lost every seed
    assert V.choose({None: point("plain", None, 300, (0.1, 0.5))}, 0.2) == (None, True, "")


def robust_claim(records):
    pts = V.points(records)
    rows = V.claims(pts, V.matched(pts, budget=0.13), 0.1)
    return [r for r in rows if r["claim"].startswith("DataGrad") and r["metric"] == "pgd-linf"]


def test_a_clear_win_at_the_edge_of_the_grid_cannot_tell_until_the_grid_goes_past_it():
    l1 = point("l1", 1e-4, 500, (0.10, 0.6)) + point("l1", 1e-3, 450, (0.11, 0.55)) \
        + point("l1", 1e-2, 480, (0.14, 0.5))
    dg = point("datagrad-l1", 0.05, 300, (0.11, 0.4)) + point("datagrad-l1", 0.15, 100, (0.12, 0.2))
    [row] = robust_claim(l1 + dg)
    assert row["comparison"] == "datagrad-l1@0.15 − l1@0.001" and row["mean"] < -0.3
    assert row["verdict"] == V.UNSURE
    assert "**at the edge**: datagrad-l1@0.15 is the strongest of its grid (else: holds)" in row["note"]
    [row] = robust_claim(l1 + dg + point("datagrad-l1", 0.5, 50, (0.2, 0.1)))  # extended past the budget
    assert row["verdict"] == V.HOLDS and "edge" not in row["note"]


def test_beating_every_member_needs_every_comparison_off_the_edge():
    me = point("multitask+datagrad", 0.05, 100, (0.11, 0.2)) + point("multitask+datagrad", 0.15, 100, (0.2, 0.2)) \
        + point("multitask+datagrad", 0.01, 100, (0.10, 0.3))
    plain = point("plain", None, 500, (0.10, 0.6))
    pts_rows = lambda recs: [r for r in V.claims(V.points(recs), V.matched(V.points(recs), 0.13), 0.1)
                             if r["claim"].startswith("multitask + DataGrad") and r["metric"] == "pgd-linf"]
    [row] = pts_rows(me + plain)
    assert row["verdict"] == V.HOLDS
    rival = point("adv-pinf", 0.1, 400, (0.12, 0.5))  # beaten clearly, but chosen at its grid's only point
    [row] = pts_rows(me + plain + rival)
    assert row["verdict"] == V.UNSURE and "adv-pinf@0.1 is the strongest of its grid (else: holds)" in row["note"]


def test_matched_table_states_its_rule_and_marks_the_edge():
    by = point("l2", 0.01, 300, (0.10, 0.40)) + point("l2", 0.1, 200, (0.11, 0.30))
    old = [flagged("plain", None, s, wrong_on(1000, (0, 300 + s)), per_example=False) for s in range(3)]
    pts = V.points(by + old)
    from minigrad.sweep_report import matched_markdown
    text = matched_markdown(pts, V.matched(pts, 0.13), 0.13, {"l2": "l2"})
    assert "± 95%" in text.splitlines()[0] and "seeds and the test set's sampling of examples" in text
    assert "| l2 | l2 = 0.1 |" in text and "**at the edge**: the strongest of its grid" in text
    assert "the test-set term is binomial" in text
    plain_row = next(line for line in text.splitlines() if line.startswith("| plain |"))
    e = V.summary(pts["plain"][None], "test", "clean")
    assert f"{100 * e.mean:.2f} ± {100 * (e.hi - e.lo) / 2:.2f}" in plain_row and e.hi - e.lo > 0.04


# --- the frontier figure ---------------------------------------------------------------------------------
def frontier_records():
    plain = point("plain", None, 100, (0.10, 0.6))
    gp = (point("gp-q1", 0.1, 110, (0.105, 0.5)) + point("gp-q1", 0.3, 130, (0.12, 0.4))
          + point("gp-q1", 1.0, 880, (0.6, 0.3)))  # 1.0: added by the extension, far over the budget
    adv = point("adv-pinf", 0.03, 105, (0.10, 0.55)) + point("adv-pinf", 0.1, 120, (0.11, 0.45))
    return plain + gp + adv


def test_frontier_series_marks_the_chosen_the_edge_the_over_budget_and_the_added_points():
    from minigrad.sweep_report import frontier_series
    pts = V.points(frontier_records())
    chosen = V.matched(pts, 0.125)
    series = {s["members"][0]: s for s in frontier_series(pts, {}, chosen, 0.125, {"gp-q1": [0.1, 0.3]})}
    gp, adv = series["gp-q1"], series["adv-pinf"]
    assert gp["strengths"] == [0.1, 0.3, 1.0] and gp["chosen"] == 1 and gp["edge"] == ""
    assert gp["over"] == [False, False, True] and gp["added"] == [False, False, True]
    assert adv["chosen"] == 1 and adv["edge"] == "strongest" and adv["added"] == [False, False]
    mean, se = gp["clean"][2]
    e = V.summary(pts["gp-q1"][1.0], "test", "clean")
    assert mean == pytest.approx(0.881) and se == pytest.approx(e.se) and se > 0.01  # ≈ √(0.88·0.12/1000)


def test_the_frontier_axes_hold_where_verdicts_are_drawn_and_far_points_sit_on_the_edge(tmp_path):
    from minigrad import plots
    from minigrad.sweep_report import frontier_series
    pts = V.points(frontier_records())
    series = frontier_series(pts, {}, V.matched(pts, 0.125), 0.125, {"gp-q1": [0.1, 0.3]})
    xlim, ylim = plots._frontier_window(series)
    assert xlim[0] <= 10 and 13.1 <= xlim[1] < 20  # every point within the budget; not the far one (88 %)
    assert plots._on_axes(88.1, 30.0, xlim, ylim)[2] == ">" and plots._on_axes(11.0, 11.5, xlim, ylim)[2] is None
    # nothing within the budget but plain: the chosen points (over it) still fill the axes
    over = V.points(point("plain", None, 100, (0.10, 0.6)) + point("gp-q1", 0.1, 200, (0.105, 0.5))
                    + point("gp-q1", 0.3, 300, (0.2, 0.4)))
    tight = frontier_series(over, {}, V.matched(over, 0.101), 0.101)
    assert tight[1]["chosen"] == 0 and tight[1]["over"][0] and plots._frontier_window(tight)[0][1] > 21
    plt = plots.pyplot()
    if plt is None:
        pytest.skip("matplotlib is not installed")
    assert plots.frontier(plt, series, ["a ≡ b"], BUDGETS, str(tmp_path)) == "frontier.png"
    assert (tmp_path / "frontier.png").stat().st_size > 10_000


def test_the_strong_suite_verdicts_cover_every_claim_with_the_metrics_a_cell_stores():
    """Every member of the family, the strong suite's l-inf error stored beside the fast attacks (as a sweep
    cell stores it): the claims under STRONG_METRICS read only what is there, row for row with the fast ones."""
    budgets = {**BUDGETS, "strong-linf": 0.1}

    def cell(member, seed):
        c = flagged(member, None if member == "plain" else 0.1, seed, wrong_on(100, (0, 10 + seed)))
        c["config"]["budgets"] = budgets
        c["config"]["knob"] = None if member == "plain" else "k"
        c["result"]["test"]["attacks"]["strong-linf"] = {"0.1": c["result"]["test"]["attacks"]["pgd-linf"]["0.1"]}
        c["result"]["wrong"]["test"]["strong-linf"] = c["result"]["wrong"]["test"]["pgd-linf"]
        return c
    from minigrad.members import FAMILY
    pts = V.points([cell(m, s) for m in FAMILY for s in range(3)])
    chosen = V.matched(pts, 1.0)
    fast, strong = V.claims(pts, chosen, 0.1), V.claims(pts, chosen, 0.1, V.STRONG_METRICS)
    assert len(fast) == len(strong) and any(r["metric"] == "strong-linf" for r in strong)
    assert {r["metric"] for r in strong} <= {"clean", "strong-linf", "fgm-l2", "fgm-l1"}
