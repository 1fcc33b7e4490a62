"""warmup.WarmUp (issue 24 item 4's remedy): any member's weight ramped in from the plain loss, and the
``start_epoch`` hook through which ``fit`` tells it the epoch.  For every member: the gradient inside the
ramp is the gradient of its value, the value is the ramp's mix, t = 0 is the plain loss and t = 1 the
member, bit for bit; a resumed run is the run that never stopped; bad values are refused."""
import json

import numpy as np
import pytest

import minigrad as mg
from minigrad import cli, datasets, flags, nn, optim, train
from minigrad import members as M
from minigrad import regularizers as R
from minigrad.checkpoint import load_checkpoint
from minigrad.errors import InvalidArgument
from minigrad.warmup import WarmUp

from test_regularizers import assert_grads_close, param_grads, small_problem

STRENGTHS = M.Strengths(eps=0.1, gp_scale=1.0, beta_l1=0.1, beta_l2=0.1, beta_jac=0.1, lam_cure=0.5, seed=3)


def _member(name, model):
    return M.member(name, model, STRENGTHS, n_features=6)


def _at(objective, t_epoch):
    objective.start_epoch(t_epoch, [])
    return objective


# --- the ramp, for every member ------------------------------------------------------------------------
@pytest.mark.parametrize("name", M.MEMBERS)
def test_inside_the_ramp_the_gradient_is_the_gradient_of_the_value(name):
    model, x, y = small_problem()
    objective = _at(WarmUp(_member(name, model), 3), 2)  # t = 1/3, strictly inside
    assert objective.t == pytest.approx(1 / 3)
    frozen = objective.frozen(model, x, y)  # the member's random draws and stopped quantities held
    assert mg.gradcheck(lambda *params: frozen(model, x, y), model.parameters() + objective.parameters())


@pytest.mark.parametrize("name", M.MEMBERS)
def test_inside_the_ramp_the_value_and_training_gradient_are_the_mix(name):
    # (1 − t)·L + t·L_member, and the training direction is the frozen value's gradient, as for the member.
    model, x, y = small_problem()
    fast, slow = _at(WarmUp(_member(name, model), 3), 2), _at(WarmUp(_member(name, model), 3), 2)
    params = model.parameters()
    loss = fast(model, x, y)
    plain, alone = R.CrossEntropy()(model, x, y), _member(name, model)(model, x, y)
    assert loss.item() == pytest.approx(2 / 3 * plain.item() + 1 / 3 * alone.item(), rel=1e-12)
    frozen_loss = slow.frozen(model, x, y)(model, x, y)
    assert loss.item() == pytest.approx(frozen_loss.item(), rel=1e-13)
    assert_grads_close(param_grads(loss, params), param_grads(frozen_loss, params))


@pytest.mark.parametrize("name", M.MEMBERS)
def test_the_ends_of_the_ramp_are_the_plain_loss_and_the_member_bit_for_bit(name):
    model, x, y = small_problem()
    params = model.parameters()
    start, end = _at(WarmUp(_member(name, model), 4), 1), _at(WarmUp(_member(name, model), 4), 5)
    assert (start.t, end.t) == (0.0, 1.0)
    for warmed, alone in ((start, R.CrossEntropy()), (end, _member(name, model))):
        a, b = warmed(model, x, y), alone(model, x, y)
        assert a.item() == b.item()
        for ga, gb in zip(param_grads(a, params), param_grads(b, params)):
            np.testing.assert_array_equal(ga, gb)


def test_the_plain_end_computes_only_the_plain_loss_and_the_member_end_only_the_member():
    calls = []

    class Spy(R.CrossEntropy):
        name = "spy"

        def __call__(self, model, x, y):
            calls.append("member")
            return super().__call__(model, x, y)
    model, x, y = small_problem()
    objective = WarmUp(Spy(), 2)
    for epoch, expected in ((1, []), (2, ["member"]), (3, ["member"])):
        calls.clear()
        passes = []
        _at(objective, epoch)(lambda inp: passes.append(1) or model(inp), x, y)
        assert calls == expected and len(passes) == (2 if epoch == 2 else 1)


def test_the_weight_is_the_linear_ramp():
    objective = WarmUp(R.GradientPenalty(0.1, np.inf), 4)
    assert [objective.weight(e) for e in range(1, 8)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [WarmUp(R.CrossEntropy(), 0).weight(e) for e in (1, 2)] == [1.0, 1.0]  # E = 0: no warm-up
    assert WarmUp(R.GradientPenalty(0.1, np.inf), 3).t == 0.0  # fresh: epoch 1
    warmed = WarmUp(R.GradientPenalty(0.1, np.inf), 3)
    assert warmed.name == "gp-q1" and repr(warmed) == "gp-q1(eps=0.1) warmed up over 3 epochs"


# --- through fit: the hook, the history, resume ------------------------------------------------------------
DATA = datasets.synthetic(n=96, n_features=6, n_classes=3, seed=0)


def _run(epochs, objective_of=lambda m: WarmUp(R.GradientPenalty(0.3, np.inf), 3), **kw):
    model = nn.maxout_mlp(6, (8,), pieces=2, n_classes=3, hidden_dropout=0.3, seed=kw.pop("init", 0))
    objective = objective_of(model)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=optim.LinearRamp(0.5, 0.7, 5), max_col_norm=1.9365)
    resume = kw.pop("resume", None)
    ckpt = load_checkpoint(resume, model, opt) if resume else None
    history = train.fit(model, objective, opt, DATA, epochs=epochs, batch_size=32, seed=5, progress=False,
                        resume=ckpt, **kw)
    return model, history


def test_fit_tells_the_objective_the_epoch_and_records_the_weight():
    _, history = _run(5)
    assert [h["schedule"]["warmup"] for h in history] == [0.0, 1 / 3, 2 / 3, 1.0, 1.0]
    _, plain = _run(2, objective_of=lambda m: R.GradientPenalty(0.3, np.inf))
    assert "schedule" not in plain[0]  # a fixed objective records nothing
    # inside a sum (a WarmUp plus weight decay) the hook still reaches it
    _, summed = _run(2, objective_of=lambda m: WarmUp(R.GradientPenalty(0.3, np.inf), 2) + R.WeightDecay(l2=1e-3))
    assert [h["schedule"]["warmup"] for h in summed] == [0.0, 0.5]


def test_a_warm_up_resumed_from_a_checkpoint_equals_training_straight_through(tmp_path):
    straight, history = _run(5)
    _run(2, checkpoint=tmp_path / "c.npz")  # stopped inside the ramp, at t = 1/3
    resumed, resumed_history = _run(5, init=9, resume=tmp_path / "c.npz")  # a fresh WarmUp, at t = 0
    for p, q in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(json.loads(json.dumps(history))) == drop(resumed_history)


def test_a_warm_up_changes_training_and_the_member_alone_does_not():
    warmed, _ = _run(2)
    alone, _ = _run(2, objective_of=lambda m: R.GradientPenalty(0.3, np.inf))
    plain, _ = _run(1, objective_of=lambda m: R.CrossEntropy())
    first, _ = _run(1)  # epoch 1 of a warm-up is the plain loss, bit for bit
    for p, q in zip(plain.parameters(), first.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    assert any(not np.array_equal(p.numpy(), q.numpy()) for p, q in zip(warmed.parameters(), alone.parameters()))


# --- bad values: one clear error, before any work --------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: WarmUp(R.GradientPenalty(0.1, 2), -1), r"WarmUp: epochs must be an integer >= 0, got -1"),
    (lambda: WarmUp(R.GradientPenalty(0.1, 2), 1.5), r"WarmUp: epochs must be an integer >= 0, got 1.5"),
    (lambda: WarmUp(R.GradientPenalty(0.1, 2), True), r"WarmUp: epochs must be an integer >= 0, got True"),
    (lambda: WarmUp(R.WeightDecay(l2=0.1), 3), r"WarmUp: member must be a full objective that includes the data loss, got l2\(l2=0.1\)"),
    (lambda: WarmUp(lambda model, x, y: None, 3), r"WarmUp: member must be an Objective"),
    (lambda: WarmUp(WarmUp(R.CrossEntropy(), 2), 3), r"WarmUp: .* is warmed up already"),
    (lambda: WarmUp(R.CrossEntropy(), 2).weight(0), r"WarmUp.weight: epoch must be an integer >= 1, got 0"),
])
def test_bad_values_are_refused_with_one_clear_error(make, message):
    with pytest.raises(InvalidArgument, match=message):
        make()


@pytest.mark.parametrize("argv, message", [
    (["--warmup-epochs", "-1"], "--warmup-epochs: must be an integer in [0, 1000000], got -1"),
    (["--warmup-epochs", "1.5"], "--warmup-epochs: expected an integer, got '1.5'"),
    (["--warmup-epochs", "8", "--epochs", "8"], "--warmup-epochs 8 leaves no epoch of the 8 at the member's full"),
])
@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_bad_warm_up_flags_are_refused_before_any_work(tmp_path, capsys, command, argv, message):
    try:
        code = cli.main([command, *argv, "--out", str(tmp_path / "out"), "--quiet"])
    except SystemExit as e:  # the parser's refusal
        code = e.code
    assert code != 0 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- the commands: the flag reaches the objective and the config -------------------------------------------
def _spec(command, *argv):
    args = cli.build_parser().parse_args([command, *argv])
    return (flags.compare_spec if command == "compare" else flags.sweep_spec)(args)


def test_sweep_cells_with_and_without_a_warm_up_never_mix():
    from minigrad import sweep
    without = sweep.configs_for(_spec("sweep", "--members", "gp-q1", "--seeds", "1"), 64)
    warmed = sweep.configs_for(_spec("sweep", "--members", "gp-q1", "--seeds", "1", "--warmup-epochs", "5"), 64)
    assert "warmup" not in without[0] and all(c["warmup"] == 5 for c in warmed)  # absent: the keys of before
    assert not {sweep.cell_key(c) for c in without} & {sweep.cell_key(c) for c in warmed}


@pytest.mark.slow
def test_a_sweep_cell_trains_its_member_warmed_up():
    from minigrad import sweep
    config = sweep.configs_for(_spec("sweep", "--members", "gp-q1", "--seeds", "1", "--strengths", "0.3",
                                     "--warmup-epochs", "2", "--epochs", "3", "--train-size", "240", "--test-size",
                                     "80", "--units", "16", "--pgd-steps", "2", "--suite", "fast"), 64)[0]
    record = sweep.run_cell(config)
    assert record["status"] == "ok", record.get("error")
    assert [h["schedule"]["warmup"] for h in record["result"]["history"]] == [0.0, 0.5, 1.0]
    assert record["result"]["objective"].endswith("warmed up over 2 epochs")


@pytest.mark.slow
def test_compare_trains_each_member_warmed_up_and_records_it(tmp_path):
    out = tmp_path / "warm"
    assert cli.main(["compare", "--members", "plain", "gp-q1", "--epochs", "3", "--warmup-epochs", "2",
                     "--train-size", "120", "--test-size", "40", "--units", "8", "--suite", "fast", "--quiet",
                     "--out", str(out)]) == 0
    run = json.loads((out / "results.json").read_text())
    assert run["meta"]["config"]["warmup"] == 2
    assert all(r["objective"].endswith("warmed up over 2 epochs") for r in run["results"])
