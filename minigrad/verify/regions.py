"""The linear regions of a Maxout network: where its piecewise-linear map has one linear piece.

A Maxout network is piecewise linear in x: fixing the winning piece of every unit (the
*activation pattern*) fixes an affine map x ↦ logits, valid on a convex polytope of inputs.
The claims of science page §4 that perturb x (verify/claims.py) must stay inside one such region,
or the asymptotics they measure bend; these functions say where the regions are.

    activation_pattern(model, x)   the winning pieces, per example and layer
    same_region(model, x, *xs)     did every perturbed batch keep x's pattern?
    local_jacobian(model, x)       A = ∂logits/∂x inside x's region
    region_radius(model, x, p)     the exact ℓp distance from x to the region's boundary
"""
from __future__ import annotations

import numpy as np

from ..backend import as_numpy
from ..nn import Dropout, Linear, Maxout, Sequential
from ..perturbations import dual_exponent
from ..tensor import unwrap


def maxout_layers(model):
    """The Linear and Maxout layers of a Sequential of Linear, Maxout and Dropout layers, else None."""
    ok = isinstance(model, Sequential) and all(isinstance(m, (Linear, Dropout)) for m in model.layers)
    return [m for m in model.layers if not isinstance(m, Dropout)] if ok else None


def activation_pattern(model, x):
    """The winning piece of every Maxout unit, per example: a list of (batch, units) int
    arrays, one per Maxout layer (None if the model is not a Sequential of Linear, Maxout
    and Dropout layers).  Two points with equal patterns lie in one linear region."""
    layers = maxout_layers(model)
    if layers is None:
        return None
    h, pattern = as_numpy(unwrap(x)), []
    for layer in layers:
        z = h @ as_numpy(layer.weight.data) + as_numpy(layer.bias.data)
        if isinstance(layer, Maxout):
            z = z.reshape(len(z), layer.pieces, layer.units)  # pieces-major columns
            pattern.append(z.argmax(axis=1))
            z = z.max(axis=1)
        h = z
    return pattern


def same_region(model, x, *perturbed):
    """True if every batch in ``perturbed`` has x's activation pattern (None: not a Maxout net)."""
    # A region (fixed pattern) is a convex polytope: if x + ε_max·d is in x's region, so is
    # x + ε·d for every ε ≤ ε_max; checking the largest perturbation suffices.
    base = activation_pattern(model, x)
    if base is None:
        return None
    return all(all(np.array_equal(a, b) for a, b in zip(base, activation_pattern(model, xp)))
               for xp in perturbed)


def _local_maps(model, x):
    """Per example, the Jacobian of each layer's input w.r.t. x with the active pieces held
    fixed; yields (layer, M (batch, D, in), z (batch, out) pre-activations)."""
    layers, h = maxout_layers(model), as_numpy(unwrap(x))
    M = np.broadcast_to(np.eye(h.shape[1]), (len(h),) + (h.shape[1],) * 2)
    for layer in layers:
        W, z = as_numpy(layer.weight.data), h @ as_numpy(layer.weight.data) + as_numpy(layer.bias.data)
        yield layer, M, z
        if isinstance(layer, Maxout):
            k = z.reshape(len(z), layer.pieces, layer.units).argmax(axis=1)
            cols = k * layer.units + np.arange(layer.units)    # the winning columns
            W = np.transpose(W[:, cols], (1, 0, 2))            # (batch, in, units)
            h = np.take_along_axis(z, cols, axis=1)
        else:
            h = z
        M = M @ W


def local_jacobian(model, x) -> np.ndarray:
    """A = ∂logits/∂x (batch, K, D) inside x's linear region, from the active pieces."""
    *_, (layer, M, _) = _local_maps(model, x)
    return np.transpose(M @ as_numpy(layer.weight.data), (0, 2, 1))


def region_radius(model, x, p) -> np.ndarray:
    """Per example, the ℓp distance from x to the boundary of its linear region.

    With the pattern fixed every pre-activation is affine in x, so the region is the
    polytope {z_win(x) ≥ z_a(x) for every unit and losing piece a}; the distance to one
    face is the margin z_win − z_a over the dual norm ‖∇ₓ(z_win − z_a)‖_q.
    """
    q, radius = dual_exponent(p), np.full(len(x), np.inf)
    for layer, M, z in _local_maps(model, x):
        if not isinstance(layer, Maxout):
            continue
        P, U = layer.pieces, layer.units
        z = z.reshape(len(z), P, U)
        k = z.argmax(axis=1)
        W = as_numpy(layer.weight.data).reshape(-1, P, U)
        w_win = np.take_along_axis(W[None], k[:, None, None, :], axis=2)   # (batch, in, 1, units)
        normal = np.einsum("bdi,bipu->bdpu", M, w_win - W[None])
        margin = np.take_along_axis(z, k[:, None, :], axis=1) - z
        dist = margin / np.maximum(np.linalg.norm(normal, ord=q, axis=1), 1e-300)
        dist[np.broadcast_to(np.arange(P)[None, :, None] == k[:, None, :], dist.shape)] = np.inf
        radius = np.minimum(radius, dist.reshape(len(z), -1).min(axis=1))
    return radius
