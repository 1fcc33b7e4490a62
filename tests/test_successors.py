"""The successors of issue 24 (trades, fgsm-rs, n-fgsm, gp-fd, gradalign, cure, llr): what the shared
tests of test_regularizers.py (first-order gradcheck of the frozen objective, frozen = objective) and
test_oracle_torch.py (PyTorch at 1e-10) do not say about them.

Second order: each frozen objective is a smooth function of θ away from kinks (random weights and
inputs), so its θ-Hessian passes ``gradgradcheck``: the double-backprop members (gradalign, cure, llr)
are differentiated a third time through the network, which is what makes their training step exact."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import members as M
from minigrad import perturbations as P
from minigrad import regularizers as R
from minigrad.backend import as_numpy

from test_regularizers import MEMBERS, assert_grads_close, param_grads, small_problem

INF = np.inf
SUCCESSORS = ["trades", "fgsm-rs", "n-fgsm", "gp-fd", "gp-fd-q1", "gradalign", "cure", "llr"]


@pytest.mark.parametrize("key", SUCCESSORS)
def test_second_order_gradient_of_the_frozen_objective(key):
    model, x, y = small_problem()
    frozen = MEMBERS[key](model).frozen(model, x, y)
    assert mg.gradgradcheck(lambda *params: frozen(model, x, y), model.parameters())


@pytest.mark.parametrize("p", [2, INF])
def test_gp_fd_fast_path_equals_the_rule_as_written(p):
    model, x, y = small_problem()
    objective = R.GradientPenaltyFD(0.3, 0.05, p)
    fast, slow = objective(model, x, y), objective.rule(model, x, y)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-13)
    assert_grads_close(param_grads(fast, model.parameters()), param_grads(slow, model.parameters()))


def test_gp_fd_tends_to_exact_datagrad_l2_at_first_order():
    # The docstring's relation: gp-fd(β, h, p = 2) -> DataGrad(1, β, 'l2') as h -> 0, error O(h), in
    # value and in θ-gradient (the value estimates ‖g‖₂ by Δ/h, so it is off by O(h) too).
    model, x, y = small_problem()
    params = model.parameters()
    exact_loss = R.DataGrad(1.0, 0.5, "l2")(model, x, y)
    exact = np.concatenate([g.ravel() for g in param_grads(exact_loss, params)])
    errors = []
    for h in (1e-2, 1e-3, 1e-4):
        loss = R.GradientPenaltyFD(0.5, h)(model, x, y)
        approx = np.concatenate([g.ravel() for g in param_grads(loss, params)])
        errors.append(np.linalg.norm(approx - exact) / np.linalg.norm(exact))
        assert loss.item() == pytest.approx(exact_loss.item(), rel=20 * h)
    for coarse, fine in zip(errors, errors[1:]):
        assert 5 < coarse / fine < 20, errors


def test_random_start_fgsm_offsets():
    model, x, y = small_problem()
    rs = R.FGSMRandomStart(0.1, seed=1).perturbation(model, x, y).data
    assert np.abs(rs).max() <= 0.1 + 1e-15 and np.isclose(np.abs(rs).max(), 0.1)
    noisy = R.NFGSM(0.1, seed=1).perturbation(model, x, y).data
    assert 0.1 < np.abs(noisy).max() <= 0.3 + 1e-15  # not clipped: up to (k + 1)ε
    # the step is taken from x + η: FGSM's sign at x + η, so δ − η is ±α everywhere
    nf = R.NFGSM(0.1, seed=2)
    eta = np.random.default_rng(nf.rng.bit_generator.seed_seq).uniform(-0.2, 0.2, x.shape)
    step = nf.perturbation(model, x, y).data - eta
    g = as_numpy(P.input_gradient(model, x + eta, y).data)
    np.testing.assert_allclose(step, 0.1 * np.sign(g), atol=1e-15)


def test_trades_and_llr_inner_maximisations_climb_and_stay_in_the_ball():
    model, x, y = small_problem()
    trades = R.TRADES(0.2, steps=5, seed=0)
    delta = trades.perturbation(model, x, y).data
    assert np.abs(delta).max() <= 0.2 + 1e-15
    log_p = mg.functional.log_softmax(model(mg.Tensor(x)))

    def kl(d):
        return mg.functional.sum(mg.functional.kl_divergence(log_p, mg.functional.log_softmax(model(mg.Tensor(x + d))))).item()
    assert kl(delta) > 10 * kl(np.zeros_like(x))
    llr = R.LocalLinearity(0.2, steps=0, seed=3)
    start = llr.maximiser(model, x, y)
    climbed = R.LocalLinearity(0.2, steps=10, seed=3).maximiser(model, x, y)
    losses, g = P.loss_and_input_gradient(model, x, y)

    def gamma(d):
        at = mg.functional.cross_entropy(model(mg.Tensor(x) + d), y, reduction="none")
        clean = mg.functional.cross_entropy(model(mg.Tensor(x)), y, reduction="none")
        return as_numpy(R.LocalLinearity.linearity_error(at, clean, d, g).data)
    assert np.abs(climbed.data).max() <= 0.2 + 1e-15
    assert gamma(climbed).sum() > gamma(start).sum()


def test_cure_direction_and_gradalign_cosine():
    g = mg.Tensor(np.array([[3.0, -1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]]))
    z = R.CURE.direction(g).data
    np.testing.assert_allclose(z[0], np.array([1, -1, 0, 1]) / np.sqrt(3))
    assert not z[1].any()  # a zero gradient: no direction, no penalty
    cos = R.GradAlign.cosine(g, g * 2.5).data
    np.testing.assert_allclose(cos, [1.0, 0.0])  # zero-safe: 0, not NaN
    assert R.GradAlign.cosine(g, -g).data[0] == pytest.approx(-1.0)


def test_zero_input_gradient_gives_no_nan():
    model, x, y = small_problem()
    for p in model.parameters():
        p.data = np.zeros_like(p.data)
    plain = param_grads(R.CrossEntropy()(model, x, y), model.parameters())
    for key in SUCCESSORS:
        grads = param_grads(MEMBERS[key](model)(model, x, y), model.parameters())
        assert all(np.isfinite(g).all() for g in grads), key
        if key not in ("fgsm-rs", "n-fgsm", "trades", "llr"):  # their offsets are not 0 at g = 0
            assert_grads_close(grads, plain, rtol=1e-12, atol=1e-15)


def test_names_reprs_and_registry_strengths():
    model, _, _ = small_problem()  # D = 6
    s = M.Strengths(eps=0.2, beta_l2=0.02, beta_trades=2.0, lam_align=0.5, lam_cure=0.3, lam_llr=4.0, seed=5)
    b = s.budgets(6)
    built = {name: M.member(name, model, s) for name in M.SUCCESSORS}
    assert [o.name for o in built.values()] == list(M.SUCCESSORS)
    assert repr(built["trades"]) == "trades(eps=0.2,beta=2)" and built["trades"].steps == 10
    assert repr(built["fgsm-rs"]) == "fgsm-rs(eps=0.2)" and built["fgsm-rs"].step == 0.25
    assert repr(built["n-fgsm"]) == "n-fgsm(eps=0.2)" and built["n-fgsm"].noise == 0.4
    assert (built["gp-fd"].beta, built["gp-fd"].h, built["gp-fd"].p) == (0.02, b["2"], 2)
    assert (built["gradalign"].eps, built["gradalign"].lam) == (0.2, 0.5)
    assert (built["cure"].lam, built["cure"].h) == (0.3, b["1"])
    assert (built["llr"].eps, built["llr"].lam, built["llr"].mu) == (0.2, 4.0, 3.0)
    assert R.GradientPenaltyFD(0.1, 0.1, p=INF).name == "gp-fd-q1"
    assert repr(R.NFGSM(0.1, k=3)) == "n-fgsm(eps=0.1,k=3)"
    assert set(M.SUCCESSORS) <= set(M.DEFAULT_GRIDS) and M.MEMBERS[-7:] == M.SUCCESSORS


@pytest.mark.parametrize("make, match", [
    (lambda: R.TRADES(-0.1), "TRADES: eps.*-0.1"),
    (lambda: R.TRADES(0.1, beta=-1), "TRADES: beta.*-1"),
    (lambda: R.TRADES(0.1, steps=0), "TRADES: steps.*0"),
    (lambda: R.FGSMRandomStart(0.1, alpha=-1), "FGSMRandomStart: alpha.*-1"),
    (lambda: R.NFGSM(0.1, k=-2), "NFGSM: k.*-2"),
    (lambda: R.GradientPenaltyFD(0.1, h=0), "GradientPenaltyFD: h.*0"),
    (lambda: R.GradientPenaltyFD(0.1, 0.1, p=0.5), "GradientPenaltyFD: p must be"),
    (lambda: R.GradAlign(0.1, lam="x"), "GradAlign: lam.*'x'"),
    (lambda: R.CURE(0.1, h=-1), "CURE: h.*-1"),
    (lambda: R.LocalLinearity(0.1, mu=-3), "LocalLinearity: mu.*-3"),
    (lambda: R.LocalLinearity(0.1, steps=1.5), "LocalLinearity: steps.*1.5"),
    (lambda: M.Strengths(lam_cure=-1), "Strengths: lam_cure.*-1"),
    (lambda: M.Strengths(beta_trades=float("nan")), "Strengths: beta_trades"),
])
def test_invalid_arguments_name_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()
