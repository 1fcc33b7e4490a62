"""Tests for minigrad.perturbations: the closed-form worst case r*(p), projections onto
lp balls, uniform sampling in them, and the FGM / FGSM / PGD attacks.

worst_case is checked against Hölder's inequality (PAPERS.md §1, §4 claims 1–2) by
hypothesis over g, ε and p, including p = 1 + 1e-3 and p = 1e4; projections against
an independent bisection and against the variational inequality that characterises a
Euclidean projection; attacks on a small Maxout net trained here for a few steps.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import functional as F
from minigrad import nn, no_grad, to_device
from minigrad.backend import as_numpy, device_of
from minigrad.datasets import synthetic
from minigrad.perturbations import (dual_exponent, fgm, fgsm, input_gradient, loss_and_input_gradient,
                                    normalize, per_example_norm, pgd, project, sample_ball, worst_case)
from minigrad.tensor import Tensor, grad

SPECIAL_P = [1.0, 1 + 1e-3, 1.5, 2.0, 3.0, 1e4, np.inf]
p_values = st.one_of(st.sampled_from(SPECIAL_P), st.floats(1.0, 100.0))
eps_values = st.floats(1e-3, 1e3)
# Entries of magnitude 0 or in [1e-6, 1e3]; zeros make sign(0) = 0 and whole zero examples
# appear.  Extreme magnitudes are covered by the scale-invariance test.
entries = st.floats(-1e3, 1e3).map(lambda v: 0.0 if abs(v) < 1e-6 else v)


def gradients(max_batch=4, max_dim=8):
    shapes = st.tuples(st.integers(1, max_batch), st.integers(1, max_dim))
    return shapes.flatmap(lambda s: hnp.arrays(np.float64, s, elements=entries))


def norms(a, p):
    return as_numpy(per_example_norm(a, p).data)


def wc(g, eps, p):
    return as_numpy(worst_case(g, eps, p).data)


# --- worst_case against Hölder --------------------------------------------------------------
@given(g=gradients(), eps=eps_values, p=p_values)
def test_worst_case_is_on_the_sphere_and_attains_the_dual_norm(g, eps, p):
    r, q = wc(g, eps, p), dual_exponent(p)
    live = np.abs(g).max(axis=1) > 0
    np.testing.assert_allclose(norms(r, p)[live], eps, rtol=1e-10)
    bound = eps * norms(g, q)
    np.testing.assert_allclose((g * r).sum(axis=1), bound, rtol=1e-10, atol=0)
    assert not np.isnan(r).any()
    assert (r[~live] == 0).all()


@given(g=gradients(), eps=eps_values, p=p_values)
def test_worst_case_is_eps_times_the_gradient_of_the_dual_norm(g, eps, p):
    # Hölder's equality case: r* = ε·∇_g‖g‖_q, per example.  worst_case writes the closed form;
    # the right side is the engine's own derivative of LpNorm (functional.py): two derivations.
    gt = Tensor(g, requires_grad=True)
    (d,) = grad(F.sum(per_example_norm(gt, dual_exponent(p))), gt)
    np.testing.assert_allclose(wc(g, eps, p), eps * as_numpy(d.data), rtol=1e-12, atol=1e-300)


def test_worst_case_on_a_constant_builds_no_graph():
    r = worst_case(np.random.default_rng(0).standard_normal((3, 4)), 0.1, 1.5)
    assert not r.requires_grad and r._op is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_is_the_p2_worst_case_of_unit_budget(dtype):
    g = np.random.default_rng(1).standard_normal((3, 2, 4)).astype(dtype)
    g[1] = 0
    n = normalize(g)
    assert n.dtype == dtype and n.shape == g.shape
    assert n.data.tobytes() == worst_case(g, 1.0, 2).data.tobytes()


@settings(max_examples=10)
@given(g=gradients(max_batch=3, max_dim=6), p=p_values, seed=st.integers(0, 2**16))
def test_no_feasible_point_beats_the_worst_case(g, p, seed):
    eps, q = 0.7, dual_exponent(p)
    value = (g * wc(g, eps, p)).sum(axis=1)
    bound = eps * norms(g, q)
    rng = np.random.default_rng(seed)
    n, (b, d) = 3000, g.shape
    inside = sample_ball((n * b, d), eps, p, rng).reshape(n, b, d)
    sphere = sample_ball((n * b, d), eps, p, rng, surface=True).reshape(n, b, d)
    for points in (inside, sphere):
        assert (np.einsum("nbd,bd->nb", points, g) <= bound * (1 + 1e-12) + 1e-300).all()
    # Sharper than random points: tiny moves of r* along the sphere never gain.
    r = wc(g, eps, p)
    moved = r + 1e-3 * eps * rng.standard_normal((200, b, d))
    moved = eps * moved / norms(moved.reshape(-1, d), p).reshape(200, b, 1)
    assert (np.einsum("nbd,bd->nb", moved, g) <= value * (1 + 1e-12) + 1e-300).all()
    np.testing.assert_allclose(value, bound, rtol=1e-10)


@given(g=gradients(), eps=eps_values, dtype=st.sampled_from([np.float32, np.float64]))
def test_p_inf_is_eps_sign_g_bitwise(g, eps, dtype):
    g = g.astype(dtype)
    r = wc(g, eps, np.inf)
    expected = (np.sign(g) * dtype(eps)).astype(dtype)
    assert r.dtype == dtype and r.tobytes() == expected.tobytes()


def test_continuity_toward_p_inf_and_p_1():
    g = np.random.default_rng(3).standard_normal((5, 9))  # no ties at the max
    eps = 0.4
    to_inf = [np.abs(wc(g, eps, p) - eps * np.sign(g)).max() for p in (10, 1e2, 1e3, 1e4, 1e6)]
    to_one = [np.abs(wc(g, eps, p) - wc(g, eps, 1)).max() for p in (1.5, 1.1, 1.01, 1.001, 1 + 1e-5)]
    assert np.all(np.diff(to_inf) < 0) and to_inf[-1] < 1e-4
    assert np.all(np.diff(to_one) < 0) and to_one[-1] < 1e-12


def test_ties_at_p_1_converge_to_the_even_split():
    # With t tied maxima r*(p) has t equal entries ε·t^(−1/p) → ε/t: an O(p − 1) approach.
    g = np.array([[2.0, -2.0, 2.0, 0.5]])
    eps = 1.0
    dist = [np.abs(wc(g, eps, p) - wc(g, eps, 1)).max() for p in (1.1, 1.01, 1.001, 1.0001)]
    np.testing.assert_allclose(wc(g, eps, 1), [[1 / 3, -1 / 3, 1 / 3, 0]], rtol=1e-15)
    assert np.all(np.diff(dist) < 0) and dist[-1] < 1e-4


def test_p_1_tie_rule_is_an_even_split():
    # Any convex combination of tied coordinates is optimal; minigrad splits ε evenly.
    g = np.array([[3.0, -3.0, 1.0, 0.0], [0.0, 0.0, 0.0, -5.0], [2.0, 2.0, 2.0, 2.0]])
    r = wc(g, 0.6, 1)
    expected = [[0.3, -0.3, 0, 0], [0, 0, 0, -0.6], [0.15, 0.15, 0.15, 0.15]]
    np.testing.assert_allclose(r, expected, rtol=1e-15, atol=0)


@given(g=gradients(), p=p_values, seed=st.integers(0, 2**16),
       c=st.one_of(st.floats(1e-3, 1e3), st.integers(-150, 150).map(lambda k: 10.0 ** k)))
def test_scale_invariance_and_permutation_equivariance(g, p, c, seed):
    r = wc(g, 0.5, p)
    np.testing.assert_allclose(wc(c * g, 0.5, p), r, rtol=1e-9, atol=1e-300)
    perm = np.random.default_rng(seed).permutation(g.shape[1])
    np.testing.assert_allclose(wc(g[:, perm], 0.5, p), r[:, perm], rtol=1e-12, atol=0)


@pytest.mark.parametrize("p", SPECIAL_P)
def test_zero_gradient_gives_zero_and_no_nan(p):
    g = np.zeros((3, 5))
    g[1] = [0.0, 1.0, -2.0, 0.0, 3.0]  # a batch mixing zero and non-zero examples
    r = wc(g, 0.5, p)
    assert (r[[0, 2]] == 0).all() and not np.isnan(r).any()
    np.testing.assert_allclose(norms(r, p)[1], 0.5, rtol=1e-12)


@pytest.mark.parametrize("p", SPECIAL_P)
def test_derivative_through_a_zero_gradient_is_finite(p):
    # Claim 7 differentiates r*(g); a zero example in the batch must not poison the rest.
    g = np.zeros((3, 5))
    g[1] = [0.0, 1.0, -2.0, 0.0, 3.0]
    gt = Tensor(g, requires_grad=True)
    weights = Tensor(np.random.default_rng(0).standard_normal(g.shape))
    (d,) = grad((worst_case(gt, 0.5, p) * weights).sum(), gt)
    assert np.isfinite(as_numpy(d.data)).all()


@pytest.mark.parametrize("p", SPECIAL_P)
def test_dtype_is_kept(p):
    g = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    r = worst_case(g, 0.1, p)
    assert r.dtype == np.float32
    np.testing.assert_allclose(norms(r.data, p), 0.1, rtol=1e-5)


@pytest.mark.parametrize("args, message", [
    ((np.ones((1, 3)), 0.1, 0.5), "worst_case: p must be a number >= 1 or inf, got 0.5"),
    ((np.ones((1, 3)), -0.1, 2), "eps must be a finite number >= 0"),
    ((np.array([[1.0, np.nan]]), 0.1, 2), "NaN"),
])
def test_worst_case_errors_are_clear(args, message):
    with pytest.raises(ValueError, match=message):
        worst_case(*args)


@pytest.mark.parametrize("p", SPECIAL_P)
def test_tiny_and_huge_gradients_keep_the_budget(p):
    # A confident float32 model can have |g| ~ 1e-25, whose squares underflow: the norms
    # inside worst_case must be formed after scaling by max|g| (r* is scale-invariant).
    for g in (np.array([[3e-170, -4e-170]]), np.array([[3e200, -4e200]]),
              np.array([[3e-25, -4e-25]], dtype=np.float32), np.array([[3e25, -4e25]], dtype=np.float32)):
        r = wc(g, 1.0, p)
        assert r.dtype == g.dtype and np.isfinite(r).all()
        np.testing.assert_allclose(norms(r, p), 1.0, rtol=1e-6)
        np.testing.assert_allclose(r, wc(np.array([[3.0, -4.0]], dtype=g.dtype), 1.0, p), rtol=1e-6)


# --- projections and sampling ------------------------------------------------------------
def l1_reference(v, eps):
    """Projection onto the ℓ1 ball by bisection on the threshold θ (no sorting): the map
    θ ↦ Σ max(|v| − θ, 0) is decreasing, and the projection soft-thresholds at its root."""
    out = v.copy()
    for i, row in enumerate(v):
        if np.abs(row).sum() <= eps:
            continue
        lo, hi = 0.0, np.abs(row).max()
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if np.maximum(np.abs(row) - mid, 0).sum() > eps else (lo, mid)
        out[i] = np.sign(row) * np.maximum(np.abs(row) - (lo + hi) / 2, 0)
    return out


@given(v=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 9)),
                    elements=st.floats(-10, 10)),
       eps=st.floats(0.0, 5.0), p=st.sampled_from([1, 2, np.inf]), seed=st.integers(0, 2**16))
def test_projection_is_a_projection(v, eps, p, seed):
    w = project(v, eps, p)
    assert (norms(w, p) <= eps * (1 + 1e-12) + 1e-15).all()
    np.testing.assert_allclose(project(w, eps, p), w, rtol=1e-12, atol=1e-12)  # idempotent
    inside = norms(v, p) <= eps
    assert w[inside].tobytes() == v[inside].tobytes()  # identity inside the ball, bitwise
    # The Euclidean projection onto a convex set C is characterised by (v − w)ᵀ(c − w) ≤ 0 ∀c ∈ C.
    c = sample_ball((500 * len(v), v.shape[1]), eps, p, seed).reshape(500, *v.shape)
    assert (np.einsum("bd,nbd->nb", v - w, c - w) <= 1e-9 * (1 + np.abs(v).sum())).all()
    if p == 1:
        np.testing.assert_allclose(w, l1_reference(v, eps), atol=1e-9)


def test_l1_projection_kkt_and_scipy():
    v = np.random.default_rng(1).standard_normal((6, 7)) * 3
    w = project(v, 1.3, 1)
    np.testing.assert_allclose(np.abs(w).sum(axis=1), 1.3, rtol=1e-12)
    theta = np.abs(v) - np.abs(w)  # KKT: one threshold θ ≥ 0 per example on the support,
    for t, wi, vi in zip(theta, w, v):  # |v| ≤ θ off it, and signs kept
        on = wi != 0
        np.testing.assert_allclose(t[on], t[on][0], rtol=1e-10)
        assert (np.abs(vi[~on]) <= t[on][0] + 1e-12).all() and (np.sign(wi[on]) == np.sign(vi[on])).all()
    optimize = pytest.importorskip("scipy.optimize")
    row = v[0]
    res = optimize.minimize(lambda z: ((z[:7] - row) ** 2).sum(), np.zeros(14), method="SLSQP",
                            constraints=[{"type": "ineq", "fun": lambda z: 1.3 - z[7:].sum()},
                                         {"type": "ineq", "fun": lambda z: z[7:] - z[:7]},
                                         {"type": "ineq", "fun": lambda z: z[7:] + z[:7]}],
                            options={"ftol": 1e-14, "maxiter": 500})
    np.testing.assert_allclose(w[0], res.x[:7], atol=1e-6)


def test_project_rejects_p_without_closed_form():
    with pytest.raises(ValueError, match="p = 1, 2 or inf, got p = 1.5"):
        project(np.ones((1, 3)), 1.0, 1.5)


@pytest.mark.parametrize("p", [1, 1 + 1e-3, 2, 3, 1e4, np.inf])
def test_sample_ball_is_uniform(p):
    # Uniform in a D-ball: (‖r‖ₚ/ε)^D ~ U(0, 1) (volume scales as radius^D), for any p.
    n, d, eps = 20000, 5, 0.3
    r = sample_ball((n, d), eps, p, 0)
    t = (norms(r, p) / eps) ** d
    assert t.max() <= 1 + 1e-12
    assert abs(t.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n) and abs(np.median(t) - 0.5) < 0.02
    assert abs((r > 0).mean() - 0.5) < 0.01
    np.testing.assert_allclose(norms(sample_ball((50, d), eps, p, 1, surface=True), p), eps, rtol=1e-12)
    if p in (1, 2):  # D = 2: E|r₁| = 1/3 in the diamond, 4/(3π) in the disc
        r2 = sample_ball((n, 2), 1.0, p, 2)
        assert abs(np.abs(r2[:, 0]).mean() - (1 / 3 if p == 1 else 4 / (3 * np.pi))) < 0.01


# --- attacks -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    """A small float64 Maxout net, 60 SGD steps on Gaussian blobs squeezed into [0, 1]."""
    data = synthetic(n=240, n_features=8, n_classes=3, seed=0, separation=1.5)
    x = data.x.astype(np.float64)
    x = (x - x.min()) / (x.max() - x.min())
    model = nn.maxout_mlp(8, (16,), 3, 3, seed=0, dtype=np.float64)
    for _ in range(60):
        params = model.parameters()
        for q, gq in zip(params, grad(F.cross_entropy(model(Tensor(x)), data.y), params)):
            q.data = q.data - 1.0 * gq.data
    return model.eval(), x[:64], data.y[:64]


def losses(model, x, y):
    return as_numpy(F.cross_entropy(model(Tensor(x)), y, reduction="none").data)


@pytest.mark.parametrize("p", [1, 1.5, 2, np.inf])
def test_fgm_raises_the_loss_within_budget_and_box(trained, p):
    model, x, y = trained
    for eps, clip in ((0.05, None), (0.1, (0.0, 1.0))):
        adv = fgm(model, x, y, eps, p, clip=clip)
        assert adv.dtype == x.dtype and adv.shape == x.shape
        assert (norms(adv - x, p) <= eps * (1 + 1e-12)).all()
        if clip:
            assert adv.min() >= 0 and adv.max() <= 1
        gain = losses(model, adv, y) - losses(model, x, y)
        assert gain.mean() > 0 and (gain > 0).mean() > 0.9


def test_fgsm_is_fgm_at_p_inf_and_works_under_no_grad(trained):
    model, x, y = trained
    with no_grad():  # evaluation loops often run under no_grad(); the attack needs gradients
        adv = fgsm(model, x, y, 0.1)
    np.testing.assert_array_equal(adv, fgm(model, x, y, 0.1, np.inf))
    g = as_numpy(input_gradient(model, x, y).data)
    np.testing.assert_array_equal(adv, x + 0.1 * np.sign(g))


def test_loss_and_input_gradient_share_one_forward(trained):
    model, x, y = trained
    summed, g = loss_and_input_gradient(model, x, y)
    assert summed.item() == pytest.approx(F.cross_entropy(model(Tensor(x)), y, reduction="sum").item(), rel=1e-14)
    np.testing.assert_array_equal(g.data, input_gradient(model, x, y).data)


def test_attacks_keep_dtype_and_device(trained, device):
    model, x, y = trained
    m32 = nn.maxout_mlp(8, (16,), 3, 3, seed=0, dtype=np.float32)
    m32.load_state_dict({k: v.astype(np.float32) for k, v in model.state_dict().items()})
    m32.to(device)
    x32 = to_device(x.astype(np.float32), device)
    for adv in (fgsm(m32, x32, y, 0.1), pgd(m32, x32, y, 0.1, 2, 3, 0.05, random_start=True, seed=0)):
        assert adv.dtype == np.float32 and device_of(adv) == device


@pytest.mark.parametrize("p", [1, 2, np.inf])
def test_pgd_respects_budget_and_box_and_beats_fgm(trained, p):
    model, x, y = trained
    eps = {1: 0.5, 2: 0.2, np.inf: 0.06}[p]
    # ℓ1 steepest ascent moves one coordinate per step, so a random start (noise spread over
    # every coordinate) costs it budget that 20 steps do not win back: start ℓ1 at x.
    start = p != 1
    adv = pgd(model, x, y, eps, p, steps=20, step_size=eps / 4, random_start=start, clip=(0, 1), seed=0)
    assert (norms(adv - x, p) <= eps * (1 + 1e-12)).all() and adv.min() >= 0 and adv.max() <= 1
    np.testing.assert_array_equal(adv, pgd(model, x, y, eps, p, 20, eps / 4, start, (0, 1), seed=0))
    one_step = fgm(model, x, y, eps, p, clip=(0, 1))
    assert losses(model, adv, y).mean() >= losses(model, one_step, y).mean()


@pytest.mark.parametrize("p", [2, np.inf])
def test_pgd_one_full_step_is_fgm(trained, p):
    model, x, y = trained
    np.testing.assert_allclose(pgd(model, x, y, 0.1, p, steps=1, step_size=0.1), fgm(model, x, y, 0.1, p),
                               rtol=0, atol=1e-15)


@pytest.mark.parametrize("p", [1, 2, np.inf])
def test_pgd_random_start_is_in_the_ball(trained, p):
    model, x, y = trained
    start = sample_ball(x.shape, 0.1, p, np.random.default_rng(5))
    assert (norms(start, p) <= 0.1 * (1 + 1e-12)).all() and (norms(start, p) > 0).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(eps=-1.0), "eps must be a finite number >= 0"),
    (dict(steps=0), "steps must be an integer >= 1, got 0"),
    (dict(step_size=0.0), "step_size must be a finite number > 0"),
    (dict(p=1.5), "p must be 1, 2 or inf"),
    (dict(p=0.5), "p must be a number >= 1 or inf, got 0.5"),
    (dict(clip=(1.0, 0.0)), "clip needs lo < hi"),
    (dict(clip=(0.2, 1.0)), "outside the clip box"),
    (dict(y=np.zeros(3, dtype=np.int64)), "one label per example"),
])
def test_attack_arguments_are_validated(trained, kwargs, message):
    model, x, y = trained
    args = dict(model=model, x=x, y=y, eps=0.1, p=2, steps=2, step_size=0.05, clip=None) | kwargs
    with pytest.raises(ValueError, match=message):
        pgd(**args)
    if not {"steps", "step_size"} & set(kwargs) and kwargs.get("p") != 1.5:
        args = {k: v for k, v in args.items() if k not in ("steps", "step_size")}
        with pytest.raises(ValueError, match=message):
            fgm(**args)
