"""Neural-network ops: softmax family, Maxout, the lp norm, cross-entropy.

Some are fused primitives (one class, raw-array forward) because composing them from
small ops would be slow or numerically unsafe; their backward passes are still written
in minigrad ops, so they differentiate to any order.  ``log_softmax`` shows the
*grad-node* pattern: its first derivative is computed fast on raw arrays by a second
op, ``LogSoftmaxGrad``, whose own backward is in minigrad ops.

``from minigrad import functional as F`` also gives every primitive function of ops.py
(``F.exp``, ``F.matmul`` ...; the list is ``__all__``).
"""
from __future__ import annotations

import numpy as np

from . import backend, validate
from .ops import (abs, add, broadcast_to, concatenate, div, exp, getitem, log, matmul, max, maximum,  # noqa: A004
                  mean, minimum, mul, neg, power, relu, reshape, sigmoid, sign, softplus, sqrt, sub, sum,
                  sum_to, swapaxes, tanh, transpose, where)
from .errors import InvalidArgument
from .ops import MatMul, _keepdims_shape, _reduced_shape, matmul_grads, tie_weights
from .tensor import Op, as_tensor, unwrap


# --- softmax family ---------------------------------------------------------------
def _logsumexp_raw(xp, x, axis):
    # Subtract the max so no exp overflows; an all −inf slice keeps max 0 to avoid inf − inf.
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False)
    return m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))


class LogSumExp(Op):
    """y = log Σⱼ exp(xⱼ), computed as m + log Σ exp(x − m) with m = max x;
    ∂y/∂x = softmax(x) = exp(x − y)."""
    def forward(self, x):
        y = _logsumexp_raw(backend.get_array_module(x), x, self.axis)
        return y if self.keepdims else y.squeeze(self.axis)

    def backward(self, gy):
        x = self.inputs[0]
        shape = _keepdims_shape(x.shape, self.axis)
        return (reshape(gy, shape) * exp(x - reshape(self.output(), shape)),)


class LogSoftmax(Op):
    """y = x − logsumexp(x) (max-shifted: finite for logits like [−1000, 1]).

    Backward: ∂L/∂x = g − softmax(x)·Σⱼ gⱼ, computed by the grad node LogSoftmaxGrad."""
    def forward(self, x):
        return x - _logsumexp_raw(backend.get_array_module(x), x, self.axis)

    def backward(self, gy):
        return (LogSoftmaxGrad.apply(gy, self.output(), axis=self.axis),)


class LogSoftmaxGrad(Op):
    """gx = g − eʸ·Σⱼ gⱼ for y = log_softmax(x): log-softmax's backward as an op.

    Its own derivatives, with s = eʸ and S = Σⱼ gⱼ, for upstream h:
    ∂/∂g = h − Σⱼ hⱼsⱼ,   ∂/∂y = −h·s·S."""
    def forward(self, g, y):
        xp = backend.get_array_module(g, y)
        return g - xp.exp(y) * g.sum(axis=self.axis, keepdims=True)

    def backward(self, h):
        g, y = self.inputs
        s = exp(y)
        hg = h - sum(h * s, axis=self.axis, keepdims=True) if self.needs_grad[0] else None
        hy = -(h * s) * sum(g, axis=self.axis, keepdims=True) if self.needs_grad[1] else None
        return hg, hy


def logsumexp(x, axis=-1, keepdims=False):
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def log_softmax(x, axis=-1):
    """log softmax(x) along ``axis``: x − logsumexp(x)."""
    return LogSoftmax.apply(x, axis=axis)


def softmax(x, axis=-1):
    """exp(log_softmax(x)): never overflows."""
    return exp(log_softmax(x, axis))


def cross_entropy(logits, labels, reduction="mean"):
    """L = −log softmax(logits)[label], per row; ``reduction`` 'mean', 'sum' or 'none'.

    Built from log_softmax, never log(softmax): at logits [−1000, 1] it stays exact.
    ``labels`` are integer class indices, shape (batch,).

    An empty batch is refused for 'mean' and 'sum' (InvalidArgument): its mean is 0/0, and every
    member of the family divides a summed loss by the batch size, so this one check is where an
    empty batch stops, whichever objective it was given to.  'none' returns the empty (0,) losses.
    """
    logits = as_tensor(logits)
    labels = unwrap(labels)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (batch, classes), got shape {logits.shape}")
    if getattr(labels, "shape", None) != logits.shape[:1] or labels.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: labels must be integers of shape {logits.shape[:1]}, "
                         f"got {getattr(labels, 'dtype', type(labels))} of shape {getattr(labels, 'shape', '?')}")
    # Checked on the host only: on a GPU it would cost two device syncs per call (labels from
    # minigrad.datasets are validated when loaded).
    if len(labels) and backend.device_of(labels) != "cuda" and (
            int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        raise ValueError(f"cross_entropy: labels must lie in [0, {logits.shape[1] - 1}], "
                         f"got values from {int(labels.min())} to {int(labels.max())}")
    validate.choice(reduction, ("mean", "sum", "none"), "reduction", "cross_entropy")
    if not len(labels) and reduction != "none":
        raise InvalidArgument(f"cross_entropy: the batch is empty (logits of shape {logits.shape}); "
                              f"reduction={reduction!r} needs at least one example")
    xp = logits.xp
    picked = log_softmax(logits)[xp.arange(len(labels)), labels]
    losses = -picked
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


# --- the affine map of a layer ---------------------------------------------------------------
class Affine(Op):
    """y = x W + b for x (batch, in), W (in, out), b (out,): the product, then b added into it in place,
    so one array and one pass fewer than ``x @ W + b``, and the same numbers.

    ∂L/∂x = G Wᵀ and ∂L/∂W = xᵀ G are MatMul's (``ops.matmul_grads``, the same ops, so the same bits at
    every order), ∂L/∂b = Σ over the batch of G (``sum_to``), as the separate Add's would be."""
    fresh_grads = True  # products and a sum over the batch: new arrays

    def forward(self, x, w, b):
        y = MatMul.forward(self, x, w)  # a fresh array (looked up on MatMul: a timing hook there sees it)
        y += b
        return y

    def backward(self, gy):
        x, w, b = self.inputs
        gx, gw = matmul_grads(x, w, gy, self.needs_grad[0], self.needs_grad[1])
        return gx, gw, (sum_to(gy, b.shape) if self.needs_grad[2] else None)


def affine(x, w, b):
    """x @ w + b as one op (``Affine``) for a batch of rows; anything else goes through ``@`` and ``+``,
    with their broadcasting and their errors."""
    x, w, b = as_tensor(x), as_tensor(w), as_tensor(b)
    if (x.ndim == 2 and w.ndim == 2 and b.ndim == 1 and x.shape[1] == w.shape[0] and b.shape[0] == w.shape[1]
            and x.dtype == w.dtype == b.dtype and x.dtype.kind == "f"):
        return Affine.apply(x, w, b)
    return x @ w + b


# --- Maxout ------------------------------------------------------------------------
class MaxOverPieces(Op):
    """h = max over k of z[..., k, :] for z seen as (..., pieces, units), *pieces-major*:
    piece k of unit j is column k·units + j of the last axis.

    Pieces-major keeps each piece a contiguous block, so the max is ``pieces − 1``
    elementwise maximums over blocks instead of a strided reduction.
    ∂h/∂z routes the gradient to the winning piece; ties split it evenly (the
    minimum-norm subgradient).  The routing weights are a constant: second derivative 0.
    """
    def forward(self, z):
        xp, u = backend.get_array_module(z), self.units
        blocks = [z[..., k * u:(k + 1) * u] for k in range(self.pieces)]
        h = xp.maximum(blocks[0], blocks[1]) if self.pieces > 1 else blocks[0].copy()
        for block in blocks[2:]:
            xp.maximum(h, block, out=h)
        hit = z.reshape(z.shape[:-1] + (self.pieces, u)) == h[..., None, :]  # (..., pieces, units)
        self.weights = tie_weights(hit, -2, h.size, z.dtype)  # the mask, or an even split among tied pieces
        return h

    def backward(self, gh):
        if self.weights.dtype != gh.dtype:
            # The 0/1 mask, made a float array once, here: a float-by-float multiply is 1.6× faster than one
            # that casts the mask on the fly, and a double backward multiplies by it twice more.  Same bits.
            self.weights = self.weights.astype(gh.dtype)
        return (RouteToPieces.apply(gh, weights=self.weights, units=self.units, shape=self.inputs[0].shape),)


class RouteToPieces(Op):
    """gz[..., k·units + j] = gh[..., j] · w[..., k, j]: MaxOverPieces' backward as one op (the grad node),
    with w its constant routing weights.  Linear in gh; its adjoint, for upstream H, sums each unit's
    pieces, ∂/∂gh[..., j] = Σₖ H[..., k·units + j] · w[..., k, j], written in minigrad ops (the very ops
    the unfused reshape · w → reshape would record, so the same bits at every order)."""
    def forward(self, gh):
        return (gh.reshape(gh.shape[:-1] + (1, self.units)) * self.weights).reshape(self.shape)

    def backward(self, big):
        gh = self.inputs[0]
        return (reshape(sum_to(reshape(big, self.weights.shape) * self.weights, gh.shape[:-1] + (1, self.units)),
                        gh.shape),)


def maxout(z, pieces: int):
    """Maxout over the last axis of ``z`` (pieces-major layout; see ``MaxOverPieces``)."""
    z = as_tensor(z)
    validate.integer(pieces, "pieces", "maxout", low=1)
    if z.shape[-1] % pieces:
        raise ValueError(f"maxout: last axis of size {z.shape[-1]} is not a multiple of pieces={pieces}")
    return MaxOverPieces.apply(z, pieces=pieces, units=z.shape[-1] // pieces)


# --- the lp norm -------------------------------------------------------------------------
class LpNorm(Op):
    r"""y = ‖x‖ₚ = (Σᵢ|xᵢ|ᵖ)^(1/p) over ``axis``, for p ≥ 1 including p = ∞ (max |xᵢ|).

    .. math::

       \|x\|_p = \Bigl(\sum_i |x_i|^p\Bigr)^{1/p}, \qquad
       \frac{\partial \|x\|_p}{\partial x_i} = \operatorname{sign}(x_i) \frac{|x_i|^{p-1}}{\|x\|_p^{p-1}}

    ∂y/∂xᵢ = sign(xᵢ)·|xᵢ|ᵖ⁻¹ / yᵖ⁻¹    (p = 1: sign(xᵢ);  p = ∞: sign(xᵢ) on the
    largest |xᵢ|, ties split evenly).

    Zero-safety (science page §6): at x = 0 the norm has no derivative; we take the
    minimum-norm subgradient 0, and we write the gradient so that its own derivative
    there is 0 too.  Likewise a single coordinate xᵢ = 0 contributes 0 for 1 < p < 2,
    where |xᵢ|ᵖ⁻¹ would otherwise have an infinite derivative.  No NaN or inf comes
    out, at any order.
    """
    def forward(self, x):
        xp, p, axis = backend.get_array_module(x), self.p, self.axis
        a = xp.abs(x)
        if p == 1:
            y = a.sum(axis=axis, keepdims=True)
        else:
            y = a.max(axis=axis, keepdims=True)
            if p != np.inf:  # scale by the max so |x|ᵖ can neither overflow nor underflow
                m = xp.where(y > 0, y, 1).astype(x.dtype, copy=False)
                u = a / m
                y = m * (xp.sqrt((u * u).sum(axis=axis, keepdims=True)) if p == 2 else
                         (u ** p).sum(axis=axis, keepdims=True) ** (1 / p))
        self.nonzero = (y > 0).astype(x.dtype)
        return y if self.keepdims else y.reshape(_reduced_shape(x.shape, axis))

    def backward(self, gy):
        x, p = self.inputs[0], self.p
        shape = _keepdims_shape(x.shape, self.axis)
        gy = reshape(gy, shape)
        # sign(x) as the op (derivative exactly 0), not a raw array: the result keeps its graph,
        # so differentiating it again gives zeros rather than "no graph" (worst_case relies on it).
        if p == 1:
            return (gy * sign(x),)
        if p == np.inf:
            a = x.xp.abs(x.data)
            top = (a == a.max(axis=self.axis, keepdims=True)).astype(x.dtype) * self.nonzero
            share = top / x.xp.maximum(top.sum(axis=self.axis, keepdims=True), 1)
            return (gy * sign(x) * share,)
        y = reshape(self.output(), shape) + (1 - self.nonzero)  # y, or 1 where y = 0
        if p == 2:
            return (gy * x / y * self.nonzero,)
        a = abs(x)
        zero = (a.data == 0).astype(x.dtype)
        # (|x|/y)^(p−1) rather than |x|^(p−1)/y^(p−1): the ratio is in [0, 1], so tiny or huge
        # x cannot underflow into 0/0.  Where xᵢ = 0 the base is set to 1 and the result
        # masked: value 0 and derivative 0, instead of the infinite slope of |x|^(p−1), p < 2.
        ratio = (a / y + zero) ** (p - 1) * (1 - zero)
        return (gy * sign(x) * ratio * self.nonzero,)


def lp_norm(x, p=2, axis=None, keepdims=False):
    """‖x‖ₚ over ``axis`` (all axes by default), zero-safe at every order; see ``LpNorm``.
    (Per example, over all axes but the batch: ``perturbations.per_example_norm``.)"""
    x = as_tensor(x)
    p = validate.exponent(p, "p", "lp_norm")
    axis = tuple(axis) if isinstance(axis, list) else axis
    return LpNorm.apply(x, p=p, axis=axis, keepdims=keepdims)


def kl_divergence(log_p, log_q, axis=-1):
    """KL(p ‖ q) = Σ p (log p − log q) per row, from log-probabilities."""
    return sum(exp(log_p) * (log_p - log_q), axis=axis)


# The primitives of ops.py, re-exported so that ``F`` is the one namespace of differentiable functions,
# then the composite ops of this file.
__all__ = ["abs", "add", "broadcast_to", "concatenate", "div", "exp", "getitem", "log", "matmul", "max",
           "maximum", "mean", "minimum", "mul", "neg", "power", "relu", "reshape", "sigmoid", "sign",
           "softplus", "sqrt", "sub", "sum", "sum_to", "swapaxes", "tanh", "transpose", "where",
           "LogSumExp", "LogSoftmax", "LogSoftmaxGrad", "Affine", "MaxOverPieces", "RouteToPieces", "LpNorm",
           "logsumexp", "log_softmax", "softmax", "cross_entropy", "affine", "maxout", "lp_norm", "kl_divergence"]
