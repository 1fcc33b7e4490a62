r"""Verify derivatives against central differences, in float64.

``gradcheck(f, inputs)`` compares the engine's vector-Jacobian product vᵀJ (one
backward pass, for a random upstream v) with the numerical derivative of the scalar
vᵀf(x) by central differences:

    ∂(vᵀf)/∂xᵢ ≈ [vᵀf(x + h·eᵢ) − vᵀf(x − h·eᵢ)] / 2h,        error O(h²).

.. math::

   \frac{\partial (v^\top f)}{\partial x_i} \approx
   \frac{v^\top f(x + h e_i) - v^\top f(x - h e_i)}{2h}, \qquad \text{error } O(h^2).

A random v tests every row of the Jacobian at once (a wrong entry survives only if v is
orthogonal to the error, which has probability zero).

``gradgradcheck(f, inputs)`` checks the second order the same way: it applies
gradcheck to the function (x, v) ↦ ∂(vᵀf)/∂x, built by ``grad(..., create_graph=True)``,
so it verifies the derivative of the backward pass with respect to the inputs *and*
to the upstream gradient v.

Both raise ``GradcheckError`` naming the worst element (analytic vs numeric).
"""
from __future__ import annotations

import numpy as np

from . import validate
from .backend import as_numpy, to_device
from .tensor import Tensor, enable_grad, grad, unwrap


class GradcheckError(AssertionError):
    """An analytic derivative disagrees with the finite-difference one."""


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _check_inputs(inputs, who):
    inputs = _as_tuple(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise ValueError(f"{who}: input {i} must be a Tensor with requires_grad=True")
        if x.dtype != np.float64:
            raise ValueError(f"{who}: input {i} has dtype {x.dtype}; run checks in float64 "
                             "(central differences in float32 carry ~1e-3 error)")
    return inputs


def _random_like(t: Tensor, rng) -> Tensor:
    return Tensor(to_device(rng.standard_normal(t.shape), t.device))


def _scalar(f, inputs, vs) -> float:
    with enable_grad():  # f may itself call grad(), e.g. a gradient penalty
        outs = _as_tuple(f(*inputs))
    return float(sum(np.sum(as_numpy(o.data) * as_numpy(v.data)) for o, v in zip(outs, vs)))


def _check_tolerances(eps, atol, rtol, who):
    validate.number(eps, "eps", who, low=0, open_low=True)  # a zero step divides by zero
    validate.number(atol, "atol", who, low=0)
    validate.number(rtol, "rtol", who, low=0)


def gradcheck(f, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              grad_outputs=None, seed: int = 0) -> bool:
    """Check the first derivative of ``f(*inputs)`` (a Tensor or tuple of Tensors).

    ``inputs``: float64 Tensors with requires_grad=True.  ``grad_outputs``: the upstream
    v (random by default).  Passes when |analytic − numeric| ≤ atol + rtol·|numeric|
    everywhere; returns True, or raises GradcheckError.
    """
    inputs = _check_inputs(inputs, "gradcheck")
    _check_tolerances(eps, atol, rtol, "gradcheck")
    rng = np.random.default_rng(seed)
    outs = _as_tuple(f(*inputs))
    vs = (tuple(_random_like(o, rng) for o in outs) if grad_outputs is None
          else tuple(Tensor(unwrap(v)) for v in _as_tuple(grad_outputs)))
    live = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    analytic = [None] * len(inputs)
    if live:
        analytic = grad([o for o, _ in live], inputs, [v for _, v in live], allow_unused=True)
    for i, x in enumerate(inputs):
        a = np.zeros(x.shape) if analytic[i] is None else as_numpy(analytic[i].data)
        n = _numeric(f, inputs, vs, i, eps)
        _compare(a, n, atol, rtol, f"input {i}")
    return True


def _numeric(f, inputs, vs, i, eps):
    x = inputs[i]
    original = x.data
    out = np.zeros(x.shape)
    try:
        for index in np.ndindex(*x.shape):
            values = []
            for step in (eps, -eps):
                data = original.copy()
                data[index] += step
                x.data = data
                values.append(_scalar(f, inputs, vs))
            out[index] = (values[0] - values[1]) / (2 * eps)
    finally:
        x.data = original
    return out


def _compare(analytic, numeric, atol, rtol, what):
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    bad = ~(excess <= 0)  # NaN counts as a failure
    if bad.any():
        worst = np.unravel_index(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)), excess.shape)
        raise GradcheckError(
            f"gradcheck: {what} at index {tuple(int(i) for i in worst)}: analytic "
            f"{analytic[worst]:.10g} vs numeric {numeric[worst]:.10g} "
            f"(allowed |difference| <= {atol:g} + {rtol:g}*|numeric|); "
            f"{int(bad.sum())} of {bad.size} elements out of tolerance")


def gradgradcheck(f, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check the second derivative of ``f``: gradcheck of (x, v) ↦ ∂(vᵀf)/∂x.

    ``grad_outputs``: the upstream gradients v (random by default); the check covers
    the derivative with respect to both ``inputs`` and v.
    """
    inputs = _check_inputs(inputs, "gradgradcheck")
    _check_tolerances(eps, atol, rtol, "gradgradcheck")
    rng = np.random.default_rng(seed + 1)
    outs = _as_tuple(f(*inputs))
    if grad_outputs is None:
        vs = tuple(Tensor(to_device(rng.standard_normal(o.shape), o.device), requires_grad=True)
                   for o in outs)
    else:
        vs = tuple(Tensor(unwrap(v), requires_grad=True)
                   for v in _as_tuple(grad_outputs))
    n = len(inputs)

    def first_derivative(*args):
        xs, v = args[:n], args[n:]
        outs = _as_tuple(f(*xs))
        live = [(o, g) for o, g in zip(outs, v) if o.requires_grad]
        if not live:
            return tuple(Tensor(x.xp.zeros(x.shape, dtype=x.dtype)) for x in xs)
        gs = grad([o for o, _ in live], xs, [g for _, g in live], create_graph=True, allow_unused=True)
        return tuple(Tensor(x.xp.zeros(x.shape, dtype=x.dtype)) if g is None else g
                     for x, g in zip(xs, gs))

    return gradcheck(first_derivative, inputs + vs, eps=eps, atol=atol, rtol=rtol, seed=seed + 2)
