"""Closed-form worst-case perturbations, and the attacks that use them.

Linearise the loss around x:  L(x + r) ≈ L(x) + gᵀr  with g = ∇ₓL.  Over the ball
‖r‖ₚ ≤ ε, Hölder's inequality gives (Lyu, Huang & Liang 2015, eq. 4–6)

    max_{‖r‖ₚ ≤ ε} gᵀr = ε‖g‖_q,      1/p + 1/q = 1,

attained at the worst case

    r*ᵢ = ε · sign(gᵢ) · |gᵢ|^(q−1) / ‖g‖_q^(q−1)          (1 < p < ∞)
    p = ∞ (q = 1):  r* = ε·sign(g)                          the fast gradient sign method
    p = 2 (q = 2):  r* = ε·g/‖g‖₂
    p = 1 (q = ∞):  r* = ε·sign(g_k)·e_k,  k = argmax |gᵢ|

Everything here is per example: norms run over all axes but the first (the batch).
Conventions: sign(0) = 0, and g = 0 gives r* = 0 for every p, with no NaN.  For p = 1
with several coordinates tied for the largest |gᵢ|, ε is split *evenly* among them
(any convex combination is optimal; the even split is the minimum-norm choice and
the one that keeps r*(p) continuous as p → 1⁺).

``worst_case`` is written in minigrad ops, so it can be differentiated (PAPERS.md §4
claim 7); training holds it constant (``.detach()``).
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .tensor import Tensor, as_tensor, grad


def dual_exponent(p) -> float:
    """q with 1/p + 1/q = 1:  q = p/(p − 1);  p = 1 ↔ q = ∞,  p = ∞ ↔ q = 1."""
    p = F.check_p(p, "dual_exponent")
    if p == 1:
        return np.inf
    if p == np.inf:
        return 1.0
    return p / (p - 1)


def _flat(g: Tensor) -> Tensor:
    if g.ndim < 1:
        raise ValueError("per-example functions need a batch axis; got a 0-d array")
    return F.reshape(g, (g.shape[0], -1))


def lp_norm(g, p) -> Tensor:
    """‖gᵢ‖ₚ for each example i (over all axes but the first); shape (batch,)."""
    return F.lp_norm(_flat(as_tensor(g)), p, axis=1)


def check_eps(eps, who="worst_case") -> float:
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: eps must be a number >= 0, got {eps!r}") from None
    if not (eps >= 0 and np.isfinite(eps)):
        raise ValueError(f"{who}: eps must be a finite number >= 0, got {eps}")
    return eps


def worst_case(g, eps, p) -> Tensor:
    """r* = argmax_{‖r‖ₚ ≤ ε} gᵀr per example, in closed form (see the module docstring).

    ``g``: the input gradient, (batch, ...), a Tensor or array; the result has its shape,
    dtype and device.  Differentiable in g when g is part of a graph.
    """
    p = F.check_p(p, "worst_case")
    eps = check_eps(eps)
    g = as_tensor(g)
    if g.dtype.kind != "f":
        raise TypeError(f"worst_case: g must be floating point, got dtype {g.dtype}")
    if not bool(g.xp.isfinite(g.data).all()):
        raise ValueError("worst_case: g contains NaN or inf; the loss or its gradient has diverged")
    flat = _flat(g)
    xp = g.xp
    if p == np.inf:
        r = F.sign(flat) * eps
    elif p == 1:
        a = xp.abs(flat.data)
        top = ((a == a.max(axis=1, keepdims=True)) & (a > 0)).astype(g.dtype)
        share = top / xp.maximum(top.sum(axis=1, keepdims=True), 1)  # ties: an even split
        r = F.sign(flat) * (share * g.dtype.type(eps))
    elif p == 2:
        n = F.lp_norm(flat, 2, axis=1, keepdims=True)
        r = flat * eps / (n + (n.data == 0).astype(g.dtype))  # g = 0 gives 0, not 0/0
    else:
        r = _worst_case_general(flat, eps, dual_exponent(p))
    return F.reshape(r, g.shape)


def _worst_case_general(flat: Tensor, eps: float, q: float) -> Tensor:
    # Divide by m = max|g| first: r* is scale-invariant in g, and |g/m|^(q−1) cannot
    # overflow or underflow to all-zero however large q is (p close to 1).
    a = F.abs(flat)
    m = F.max(a, axis=1, keepdims=True)
    u = a / (m + (m.data == 0).astype(a.dtype))
    zero = (u.data == 0).astype(a.dtype)
    u_pow = (u + zero) ** (q - 1) * (1 - zero)  # uᵢ^(q−1), and 0 with a 0 derivative at 0
    n = F.lp_norm(u, q, axis=1, keepdims=True) ** (q - 1)
    return F.sign(flat) * u_pow * eps / (n + (n.data == 0).astype(a.dtype))


def input_gradient(model, x, y, create_graph: bool = False, loss=F.cross_entropy) -> Tensor:
    """gᵢ = ∇ₓᵢ L(xᵢ, yᵢ) for every example of the batch, shape of x.

    Taken from the *summed* loss: the gradient of a batch-mean loss is gᵢ/B, the right
    direction but a norm B times too small (PAPERS.md §1).  ``create_graph=True`` keeps
    the graph, so a penalty on g can be differentiated (double backprop).
    """
    x = Tensor(x.data if isinstance(x, Tensor) else x, requires_grad=True)
    (g,) = grad(loss(model(x), y, reduction="sum"), x, create_graph=create_graph)
    return g
