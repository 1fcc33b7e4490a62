"""Hessian-vector products through a Maxout + softmax network, by double backprop.

Network (functional ops only):  x (B=3, D=5) → x W1 + b1 → maxout(pieces=3, units=4)
→ · W2 + b2 (K=3 logits) → cross-entropy, summed over the batch.

- Hv = ∇ₓ(gᵀv) with g = ∇ₓL (create_graph) equals the central difference of g along v;
- PAPERS.md §4 claim 9: inside one linear region of the Maxout network the input Hessian of
  each example is Aᵀ(diag(p) − ppᵀ)A, A the local linear map x ↦ logits (the winning piece's
  columns of W1, then W2); it is symmetric, positive semi-definite and of rank ≤ K − 1.
"""
import numpy as np
import pytest

from minigrad import backend
from minigrad import functional as F
from minigrad.tensor import Tensor, grad

B, D, PIECES, UNITS, K = 3, 5, 3, 4, 3


def make_problem(seed, device):
    rng = np.random.default_rng(seed)
    values = {
        "x": rng.standard_normal((B, D)),
        "W1": rng.standard_normal((D, PIECES * UNITS)) / np.sqrt(D),
        "b1": 0.1 * rng.standard_normal(PIECES * UNITS),
        "W2": 2 * rng.standard_normal((UNITS, K)) / np.sqrt(UNITS),
        "b2": 0.1 * rng.standard_normal(K),
        "y": rng.integers(0, K, B),
    }
    on = {k: backend.to_device(v, device) for k, v in values.items()}
    params = {k: Tensor(on[k], requires_grad=True) for k in ("W1", "b1", "W2", "b2")}
    return values, params, on["y"]


def loss(x, params, y):
    z = F.matmul(x, params["W1"]) + params["b1"]
    h = F.maxout(z, pieces=PIECES)
    logits = F.matmul(h, params["W2"]) + params["b2"]
    return F.cross_entropy(logits, y, reduction="sum")


def input_gradient(x_values, params, y, device, create_graph=False):
    x = Tensor(backend.to_device(x_values, device), requires_grad=True)
    (g,) = grad(loss(x, params, y), [x], create_graph=create_graph)
    return x, g


def hvp(x_values, v, params, y, device):
    x, g = input_gradient(x_values, params, y, device, create_graph=True)
    assert g.requires_grad
    (hv,) = grad((g * Tensor(backend.to_device(v, device))).sum(), [x])
    assert hv.device == device
    return backend.as_numpy(hv.data)


def min_margin(values):
    """Smallest gap between the winning piece and the runner-up over all units."""
    z = values["x"] @ values["W1"] + values["b1"]
    s = np.sort(z.reshape(B, PIECES, UNITS), axis=1)
    return float(np.min(s[:, -1] - s[:, -2]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hessian_vector_product_matches_central_difference(device, seed):
    values, params, y = make_problem(seed, device)
    v = np.random.default_rng(100 + seed).standard_normal((B, D))
    h = 1e-5
    # x ± hv stays in one linear region: no piece's pre-activation moves by half the margin
    assert min_margin(values) > 4 * h * np.abs(v @ values["W1"]).max()
    analytic = hvp(values["x"], v, params, y, device)
    g_plus = backend.as_numpy(input_gradient(values["x"] + h * v, params, y, device)[1].data)
    g_minus = backend.as_numpy(input_gradient(values["x"] - h * v, params, y, device)[1].data)
    numeric = (g_plus - g_minus) / (2 * h)
    assert np.abs(analytic).max() > 1e-3  # not vacuously zero
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def full_hessian(values, params, y, device):
    """(B, D, B, D): column (i, d) is H e_{i,d}, one HVP each."""
    H = np.zeros((B, D, B, D))
    for i in range(B):
        for d in range(D):
            e = np.zeros((B, D))
            e[i, d] = 1.0
            H[:, :, i, d] = hvp(values["x"], e, params, y, device)
    return H


def claim_9_hessian(values, i):
    """Aᵀ(diag p − ppᵀ)A for example i, A = ∂logits/∂x in the current linear region."""
    z = values["x"][i] @ values["W1"] + values["b1"]
    winner = np.argmax(z.reshape(PIECES, UNITS), axis=0)          # winning piece of each unit
    columns = winner * UNITS + np.arange(UNITS)                     # pieces-major layout
    A = (values["W1"][:, columns] @ values["W2"]).T                 # (K, D)
    logits = z[columns] @ values["W2"] + values["b2"]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return A.T @ (np.diag(p) - np.outer(p, p)) @ A


@pytest.mark.parametrize("seed", [0, 1])
def test_input_hessian_is_AT_Hp_A_symmetric_psd_low_rank(device, seed):
    values, params, y = make_problem(seed, device)
    assert min_margin(values) > 1e-6  # a generic point: no tie between pieces
    H = full_hessian(values, params, y, device)
    for i in range(B):
        for j in range(B):
            if i != j:  # summed losses of separate examples: no cross terms
                np.testing.assert_array_equal(H[i, :, j, :], 0.0)
        Hi = H[i, :, i, :]
        np.testing.assert_allclose(Hi, claim_9_hessian(values, i), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Hi, Hi.T, rtol=1e-12, atol=1e-14)
        eigenvalues = np.linalg.eigvalsh((Hi + Hi.T) / 2)
        assert eigenvalues.min() >= -1e-10
        assert eigenvalues.max() > 1e-3  # not vacuously zero
        rank = np.linalg.matrix_rank(Hi, tol=1e-9 * max(1.0, np.abs(eigenvalues).max()))
        assert rank <= K - 1 < D
