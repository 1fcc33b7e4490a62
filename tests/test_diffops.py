"""The differential operators against central differences in float64, at random shapes.

f(x, W) = tanh(x W) · c + softplus(x)ᵀ(x ⊙ x) is smooth (no kinks), non-linear in both
arguments and couples them, so every block of J and H is non-trivial.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad import backend, diffops as D, functional as F, nn, ops, verify
from minigrad.tensor import Tensor

H = 1e-6
TOL = dict(rtol=1e-5, atol=1e-7)

sizes = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.integers(0, 2 ** 16))


def problem(sizes):
    """x (b, n), W (n, m), c (m,): a vector function F (b, m) and a scalar function S."""
    b, n, m, seed = sizes
    rng = np.random.default_rng(seed)
    x, W, c = rng.standard_normal((b, n)), rng.standard_normal((n, m)) / np.sqrt(n), rng.standard_normal(m)

    def vec(x, W):
        return ops.tanh(ops.matmul(x, W)) * Tensor(c) + ops.sum(ops.softplus(x) * x * x, axis=1, keepdims=True)

    def scal(x, W):
        return ops.sum(vec(x, W) * vec(x, W)) + ops.sum(ops.exp(0.3 * x))

    return rng, x, W, vec, scal


def num(f, *args):
    return f(*[Tensor(a) for a in args]).numpy()


def fd_directional(f, args, k, v):
    """(f(.., a_k + hv, ..) − f(.., a_k − hv, ..)) / 2h"""
    plus = [a + H * v if i == k else a for i, a in enumerate(args)]
    minus = [a - H * v if i == k else a for i, a in enumerate(args)]
    return (num(f, *plus) - num(f, *minus)) / (2 * H)


def fd_gradient(f, args, k):
    a = args[k]
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[i] = 1
        g[i] = fd_directional(f, args, k, e).item()
    return g


@given(sizes)
def test_vjp_matches_finite_differences(s):
    rng, x, W, vec, _ = problem(s)
    u = rng.standard_normal((x.shape[0], W.shape[1]))
    out, (ux, uW) = D.vjp(vec, (x, W), u)
    np.testing.assert_allclose(out.numpy(), num(vec, x, W), rtol=1e-12)
    scalar = lambda a, b: ops.sum(vec(a, b) * Tensor(u))  # noqa: E731 - uᵀf
    np.testing.assert_allclose(ux.numpy(), fd_gradient(scalar, [x, W], 0), **TOL)
    np.testing.assert_allclose(uW.numpy(), fd_gradient(scalar, [x, W], 1), **TOL)


@given(sizes)
def test_jvp_matches_finite_differences(s):
    rng, x, W, vec, _ = problem(s)
    vx, vW = rng.standard_normal(x.shape), rng.standard_normal(W.shape)
    _, jv = D.jvp(vec, (x, W), (vx, vW))
    expected = fd_directional(vec, [x, W], 0, vx) + fd_directional(vec, [x, W], 1, vW)
    np.testing.assert_allclose(jv.numpy(), expected, **TOL)
    _, jv_x = D.jvp(lambda a: vec(a, Tensor(W)), x, vx)  # one input: one result
    np.testing.assert_allclose(jv_x.numpy(), fd_directional(vec, [x, W], 0, vx), **TOL)


@given(sizes)
def test_jvp_and_vjp_are_adjoint(s):
    # uᵀ(J v) = (uᵀJ) v: the two products read the same matrix from two sides
    rng, x, W, vec, _ = problem(s)
    u, v = rng.standard_normal((x.shape[0], W.shape[1])), rng.standard_normal(x.shape)
    f = lambda a: vec(a, Tensor(W))  # noqa: E731
    _, jv = D.jvp(f, x, v)
    _, uj = D.vjp(f, x, u)
    assert np.isclose(np.sum(u * jv.numpy()), np.sum(uj.numpy() * v), rtol=1e-10, atol=1e-12)


@given(sizes)
def test_hvp_matches_finite_difference_of_the_gradient(s):
    rng, x, W, _, scal = problem(s)
    vx, vW = rng.standard_normal(x.shape), rng.standard_normal(W.shape)
    value, (hx, hW) = D.hvp(scal, (x, W), (vx, vW))
    assert value.size == 1 and not value.requires_grad
    gradient = D.grad_fn(scal, (0, 1))
    grads = lambda a, b, k: gradient(a, b)[k].numpy()  # noqa: E731
    for k, hk in enumerate((hx, hW)):
        plus = grads(x + H * vx, W + H * vW, k)
        minus = grads(x - H * vx, W - H * vW, k)
        np.testing.assert_allclose(hk.numpy(), (plus - minus) / (2 * H), **TOL)


@given(sizes)
def test_jacobian_rows_and_columns_match_finite_differences(s):
    _, x, W, vec, _ = problem(s)
    f = lambda a: vec(a, Tensor(W))  # noqa: E731
    rows, cols = D.jacobian(f, x), D.jacobian(f, x, by="columns")
    assert rows.shape == (x.shape[0], W.shape[1]) + x.shape
    expected = np.zeros(rows.shape)
    for j in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[j] = 1
        expected[(...,) + j] = fd_directional(vec, [x, W], 0, e)
    np.testing.assert_allclose(rows.numpy(), expected, **TOL)
    np.testing.assert_allclose(cols.numpy(), rows.numpy(), rtol=1e-12, atol=1e-14)


@given(sizes)
def test_hessian_matches_finite_differences_and_is_symmetric(s):
    _, x, W, _, scal = problem(s)
    f = lambda a: scal(a, Tensor(W))  # noqa: E731
    Hx = D.hessian(f, x).numpy()
    n = x.size
    assert Hx.shape == x.shape + x.shape
    Hm = Hx.reshape(n, n)
    np.testing.assert_allclose(Hm, Hm.T, rtol=1e-12, atol=1e-12)  # symmetry, to rounding
    gradient = D.grad_fn(f)
    expected = np.zeros((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1
        e = e.reshape(x.shape)
        expected[:, j] = ((gradient(x + H * e).numpy() - gradient(x - H * e).numpy()) / (2 * H)).ravel()
    np.testing.assert_allclose(Hm, expected, **TOL)


@given(sizes)
def test_grad_fn_matches_finite_differences(s):
    _, x, W, _, scal = problem(s)
    gx, gW = D.grad_fn(scal, argnums=(0, 1))(x, W)
    np.testing.assert_allclose(gx.numpy(), fd_gradient(scal, [x, W], 0), **TOL)
    np.testing.assert_allclose(gW.numpy(), fd_gradient(scal, [x, W], 1), **TOL)
    only_W = D.grad_fn(scal, argnums=1)(x, W)
    np.testing.assert_allclose(only_W.numpy(), gW.numpy(), rtol=1e-12)
    assert not only_W.requires_grad  # plain arguments: a constant result


@given(st.floats(-2, 2))
def test_grad_fn_nests(x0):
    f = lambda x: ops.tanh(x) * x ** 3  # noqa: E731
    d2 = D.grad_fn(D.grad_fn(f))(np.float64(x0))
    t = np.tanh(x0)
    s2 = 1 - t * t  # tanh' ; tanh'' = −2 t s2
    exact = -2 * t * s2 * x0 ** 3 + 2 * s2 * 3 * x0 ** 2 + t * 6 * x0
    assert np.isclose(d2.item(), exact, rtol=1e-10, atol=1e-12)


def test_hessian_is_the_local_maxout_hessian_of_claim9():
    # inside one linear region the input Hessian of one example's loss is AᵀSA (PAPERS.md §4, claim 9)
    model, x, y = verify.demo_problem(seed=0, batch=1)
    x = Tensor(x)
    A = verify.local_jacobian(model, x)[0]
    p = F.softmax(model(x)).numpy()[0]
    S = np.diag(p) - np.outer(p, p)
    Hx = D.hessian(lambda a: F.cross_entropy(model(a), y, reduction="sum"), x.numpy()).numpy()
    np.testing.assert_allclose(Hx[0, :, 0, :], A.T @ S @ A, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Hx[0, :, 0, :], verify.input_hessians(model, x, y)[0], rtol=1e-12, atol=1e-14)


def test_operators_run_on_the_strict_device(device):
    x = Tensor(backend.to_device(np.array([0.3, -1.2, 0.7]), device))
    f = lambda a: ops.sum(ops.exp(a) * a)  # noqa: E731
    Hx = D.hessian(f, x)
    assert Hx.device == device
    _, hv = D.hvp(f, x, Tensor(backend.to_device(np.ones(3), device)))
    np.testing.assert_allclose(backend.as_numpy(hv.data), backend.as_numpy(Hx.data).sum(axis=1), rtol=1e-12)


def test_unused_input_and_constant_function_give_zeros():
    x, z = np.array([1.0, 2.0]), np.array([3.0])
    _, (gx, gz) = D.vjp(lambda a, b: a * 2.0, (x, z), np.ones(2))
    assert np.array_equal(gz.numpy(), [0.0]) and np.array_equal(gx.numpy(), [2.0, 2.0])
    assert np.array_equal(D.hessian(lambda a: ops.sum(a * 3.0), x).numpy(), np.zeros((2, 2)))
    _, jv = D.jvp(lambda a: a * 3.0, x, np.ones(2))
    np.testing.assert_allclose(jv.numpy(), [3.0, 3.0])


def test_errors_name_the_problem():
    x = np.ones(3)
    with pytest.raises(ValueError, match="hessian: f must return a scalar"):
        D.hessian(lambda a: a * a, x)
    with pytest.raises(ValueError, match="max_size=2"):
        D.hessian(lambda a: ops.sum(a * a), x, max_size=2)
    with pytest.raises(ValueError, match=r"vector 0 has shape \(2,\), expected \(3,\)"):
        D.hvp(lambda a: ops.sum(a * a), x, np.ones(2))
    with pytest.raises(ValueError, match="by must be 'rows' or 'columns'"):
        D.jacobian(lambda a: a, x, by="diagonal")
    with pytest.raises(IndexError, match="argnums 2 is out of range for 2 arguments"):
        D.grad_fn(lambda a, b: ops.sum(a * b), argnums=2)(x, x)


def test_maxout_mlp_gradient_of_hvp_is_recorded_with_create_graph():
    # hvp(create_graph=True) can itself be differentiated: d/dθ (vᵀ H v), as claim 6's O(ε²) term needs
    model = nn.maxout_mlp(4, (3,), 2, 3, seed=0, dtype=np.float64)
    x, y, v = np.random.default_rng(0).standard_normal((2, 4)), np.array([0, 2]), np.ones((2, 4))
    _, hv = D.hvp(lambda a: F.cross_entropy(model(a), y, reduction="sum"), x, v, create_graph=True)
    assert hv.requires_grad
    ops.sum(hv * Tensor(v)).backward()
    assert all(p.grad is not None for p in model.parameters())
