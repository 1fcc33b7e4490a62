"""Tests for minigrad.penalties beyond the family-wide ones of test_regularizers.py (gradcheck,
fast = frozen, strict device, zero gradient, names, validation run there for every member):
each penalty's *value* against an independent computation of its formula, the spectral
estimate's mean against the exact Frobenius norm, and the Wasserstein aggregation and budgets."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad import penalties as Q
from minigrad import perturbations as P
from minigrad import regularizers as R
from minigrad.backend import as_numpy

INF = np.inf


def small_problem(seed=0, batch=5):
    model = nn.maxout_mlp(in_features=6, units=(5,), pieces=3, n_classes=4, dtype=np.float64, seed=seed)
    rng = np.random.default_rng(100 + seed)
    return model, rng.random((batch, 6)), rng.integers(0, 4, batch)


def jacobians(model, x):
    """Jᵢ = ∂f(xᵢ)/∂xᵢ, (batch, K, D), one example at a time with diffops.jacobian."""
    return np.stack([as_numpy(mg.jacobian(lambda t: model(t), mg.Tensor(x[i:i + 1])).data)[0, :, 0]
                     for i in range(len(x))])


def test_jacobian_penalty_is_the_squared_frobenius_norm_of_the_logit_jacobian():
    model, x, y = small_problem()
    J = jacobians(model, x)
    exact = (J ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(as_numpy(R.JacobianPenalty(1.0).penalty(model, x).data), exact, rtol=1e-12)
    plain = R.CrossEntropy()(model, x, y).item()
    assert R.JacobianPenalty(0.3)(model, x, y).item() == pytest.approx(plain + 0.3 * exact.mean(), rel=1e-13)


def test_spectral_penalty_at_a_given_r_is_the_projected_jacobian():
    model, x, y = small_problem()
    J = jacobians(model, x)
    r = np.random.default_rng(1).standard_normal((len(x), 4))
    expected = (np.einsum("bk,bkd->bd", r, J) ** 2).sum(axis=1)
    np.testing.assert_allclose(as_numpy(R.SpectralPenalty(1.0).penalty(model, x, r).data), expected, rtol=1e-12)


def test_spectral_penalty_mean_over_draws_is_the_exact_frobenius_norm():
    # E ‖Jᵀr‖² = ‖J‖_F² for r ~ N(0, I): 20000 fresh draws per example (the batch tiled, one call),
    # each draw's mean within 4 standard errors of the exact value, and the draws really fresh.
    model, x, _ = small_problem()
    n = 20000
    spect = R.SpectralPenalty(1.0, seed=11)
    draws = as_numpy(spect.penalty(model, np.tile(x, (n, 1))).data).reshape(n, len(x))
    exact = as_numpy(R.JacobianPenalty(1.0).penalty(model, x).data)
    se = draws.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(draws.mean(axis=0) - exact) < 4 * se), (draws.mean(axis=0), exact, se)
    assert np.all(se < 0.02 * exact)  # the test can see a 10% error in the formula
    assert len(np.unique(draws[:, 0])) == n


def test_spectral_penalty_is_seeded_and_draws_afresh_each_call():
    model, x, y = small_problem()
    a, b = R.SpectralPenalty(0.1, seed=4), R.SpectralPenalty(0.1, seed=4)
    first = [a(model, x, y).item() for _ in range(3)]
    assert first == [b(model, x, y).item() for _ in range(3)]
    assert len(set(first)) == 3
    assert R.SpectralPenalty(0.1, seed=5)(model, x, y).item() != first[0]


def test_jacreg_and_spectreg_differ_from_double_backprop():
    # Double backprop penalises gᵢ = Jᵢᵀ(pᵢ − e_yᵢ), one direction of J, not all of it.
    model, x, y = small_problem()
    J = jacobians(model, x)
    p = as_numpy(mg.functional.softmax(model(x)).data)
    g = np.einsum("bk,bkd->bd", p - np.eye(4)[y], J)
    np.testing.assert_allclose(g, as_numpy(P.input_gradient(model, x, y).data), rtol=1e-12)
    assert (g ** 2).sum() < (J ** 2).sum()


@pytest.mark.parametrize("p, aggregate", [(1, np.max), (2, lambda a: np.sqrt(np.mean(a ** 2))),
                                          (3, lambda a: np.mean(a ** 1.5) ** (1 / 1.5)), (INF, np.mean)])
@pytest.mark.parametrize("ground", [1, 2, INF])
def test_wasserstein_penalty_aggregates_the_dual_norms(p, aggregate, ground):
    model, x, y = small_problem(batch=7)
    g = as_numpy(P.input_gradient(model, x, y).data)
    dual = {1: INF, 2: 2, INF: 1}[ground]
    a = np.linalg.norm(g, ord=dual, axis=1)
    plain = R.CrossEntropy()(model, x, y).item()
    value = R.WassersteinPenalty(0.2, p, ground=ground)(model, x, y).item()
    assert value == pytest.approx(plain + 0.2 * aggregate(a), rel=1e-13)


@pytest.mark.parametrize("ground", [1, 2, INF])
def test_wasserstein_infinity_is_lyus_per_example_penalty(ground):
    # W_∞ moves every example by at most ε: the per-example average of GradientPenalty(ε, ground).
    model, x, y = small_problem()
    a = R.WassersteinPenalty(0.2, INF, ground=ground)(model, x, y)
    b = R.GradientPenalty(0.2, ground)(model, x, y)
    assert a.item() == pytest.approx(b.item(), rel=1e-14)
    for ga, gb in zip(mg.grad(a, model.parameters()), mg.grad(b, model.parameters())):
        np.testing.assert_allclose(ga.data, gb.data, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("p", [1, 1.5, 2, 4, INF])
def test_transport_budgets_are_feasible_and_optimal(p):
    rng = np.random.default_rng(0)
    a = rng.random(9)
    eps, q = 0.3, P.dual_exponent(p)
    delta = Q.transport_budgets(a, eps, p)
    cost = delta.max() if p == INF else np.mean(delta ** p) ** (1 / p)
    assert cost == pytest.approx(eps, rel=1e-12) and (delta >= 0).all()
    bound = a.max() if q == INF else np.mean(a ** q) ** (1 / q)
    assert np.mean(delta * a) == pytest.approx(eps * bound, rel=1e-12)
    # No random feasible allocation does better (each scaled onto the constraint's boundary).
    trial = rng.random((5000, 9)) ** 3
    norm = trial.max(axis=1) if p == INF else np.mean(trial ** p, axis=1) ** (1 / p)
    assert (np.mean(trial / norm[:, None] * eps * a, axis=1) <= eps * bound * (1 + 1e-12)).all()


def test_transport_budgets_p1_puts_everything_on_the_largest_and_splits_ties_evenly():
    np.testing.assert_array_equal(Q.transport_budgets([0.1, 0.5, 0.2, 0.3], 0.1, 1), [0, 0.4, 0, 0])
    np.testing.assert_allclose(Q.transport_budgets([0.5, 0.1, 0.5, 0.3], 0.1, 1), [0.2, 0, 0.2, 0])
    np.testing.assert_array_equal(Q.transport_budgets(np.zeros(3), 0.1, 2), np.zeros(3))


@pytest.mark.parametrize("p", [1, 2, 3, INF])
def test_wasserstein_worst_case_attains_the_penalty_to_first_order(p):
    # mean gᵢᵀrᵢ over the maximiser is exactly ε·(mean ‖gᵢ‖_*^q)^(1/q), the penalty.
    model, x, y = small_problem(batch=6)
    g = as_numpy(P.input_gradient(model, x, y).data)
    w = R.WassersteinPenalty(0.2, p, ground=2)
    r = Q.wasserstein_worst_case(g, 0.2, p)
    assert np.mean((g * r).sum(axis=1)) == pytest.approx(0.2 * w.penalty(mg.Tensor(g)).item(), rel=1e-12)


# --- the critic of a Wasserstein GAN ---------------------------------------------------------------
class Critic(nn.Module):
    def __init__(self, seed=0):
        self.l1, self.l2 = nn.Linear(2, 8, seed=seed, dtype=np.float64), nn.Linear(8, 1, seed=seed + 1,
                                                                                     dtype=np.float64)

    def forward(self, x):
        return self.l2(mg.functional.tanh(self.l1(x)))


@pytest.mark.parametrize("one_sided", [False, True])
def test_critic_gradient_penalty_value_and_gradcheck(one_sided):
    critic = Critic()
    for p in critic.parameters():
        p.data = p.data * 3  # gradient norms on both sides of 1, so the one-sided max(0, ·) is exercised
    rng = np.random.default_rng(0)
    pts = Q.interpolates(rng.normal(size=(16, 2)), rng.normal(size=(16, 2)), rng)
    pen = Q.critic_gradient_penalty(critic, pts, one_sided)
    xt = mg.Tensor(pts, requires_grad=True)
    (g,) = mg.grad(critic(xt).sum(), xt)
    norms = np.linalg.norm(as_numpy(g.data), axis=1)
    assert (norms > 1).any() and (norms < 1).any()
    excess = np.maximum(norms - 1, 0) if one_sided else norms - 1
    np.testing.assert_allclose(as_numpy(pen.data), excess ** 2, rtol=1e-12)
    assert mg.gradcheck(lambda *params: Q.critic_gradient_penalty(critic, pts, one_sided).sum(),
                        critic.parameters())


def test_interpolates_lie_on_the_segments():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    x = Q.interpolates(real, fake, np.random.default_rng(2))
    t = np.random.default_rng(2).random((50, 1))
    np.testing.assert_allclose(x, t * real + (1 - t) * fake)
    with pytest.raises(ValueError, match="one shape"):
        Q.interpolates(real, fake[:3], rng)
