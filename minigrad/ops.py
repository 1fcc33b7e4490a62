"""The primitive ops: forward on raw arrays, backward in minigrad ops.

Read each class as one row of a derivative table.  ``forward`` computes y = f(x) with
the array module of its inputs; ``backward(gy)`` returns ∂L/∂x = (∂y/∂x)ᵀ gy written
with the functions of this file, so it is recorded when the caller asked for
``create_graph=True`` and any order of derivative follows.  Constants that carry no
gradient (masks, signs, tie weights) are kept as raw arrays.

Broadcasting: a binary op broadcasts its operands in forward; in backward the
gradient is summed back to each operand's shape by ``sum_to`` (itself an op whose
backward is ``broadcast_to``, and vice versa).

Composite and neural-network ops (log_softmax, maxout, lp_norm, cross_entropy ...)
live in functional.py.

Why one file of ~580 lines: it is the derivative table of the engine.  Every primitive is a
short class (forward, backward, docstring with its rule) and the rules refer to each other
(Sum's backward is broadcast_to, BroadcastTo's is sum_to, ...), so splitting the table would
scatter one lookup over several files.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from . import backend, gemm
from .errors import InvalidArgument
from .tensor import Op, Tensor, as_tensor, unwrap


def _binary(cls, a, b, **params):
    """Apply a binary op, wrapping Python numbers in the other operand's dtype and
    refusing float32 meeting float64 (no silent up- or down-cast)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.data.dtype == b.data.dtype:
        return cls.apply(a, b, **params)  # the common case: nothing to wrap, nothing to promote
    a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    b = as_tensor(b, like=a)
    floats = [t.dtype for t in (a, b) if t.dtype.kind == "f"]
    if len(floats) == 2 and floats[0] != floats[1]:
        raise TypeError(f"{cls.__name__.lower()}: dtypes differ ({a.dtype} and {b.dtype}); "
                        "cast one explicitly with Tensor(x.data.astype(...))")
    # float32 meeting an int64 array would promote to float64: refused too.  A bool mask, or an
    # integer type the float dtype holds exactly, keeps the float dtype and is fine.
    if floats and np.result_type(a.dtype, b.dtype) != floats[0]:
        raise TypeError(f"{cls.__name__.lower()}: {a.dtype} meeting {b.dtype} would promote to "
                        f"{np.result_type(a.dtype, b.dtype)}; cast one explicitly with Tensor(x.data.astype(...))")
    return cls.apply(a, b, **params)


# --- arithmetic -----------------------------------------------------------------
class Add(Op):
    """y = a + b;  ∂y/∂a = ∂y/∂b = 1."""
    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        a, b = self.inputs
        return (sum_to(gy, a.shape) if self.needs_grad[0] else None,
                sum_to(gy, b.shape) if self.needs_grad[1] else None)


class Sub(Op):
    """y = a − b;  ∂y/∂a = 1, ∂y/∂b = −1."""
    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        a, b = self.inputs
        return (sum_to(gy, a.shape) if self.needs_grad[0] else None,
                sum_to(-gy, b.shape) if self.needs_grad[1] else None)


class Mul(Op):
    """y = a·b;  ∂y/∂a = b, ∂y/∂b = a."""
    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy * b, a.shape) if self.needs_grad[0] else None
        gb = sum_to(gy * a, b.shape) if self.needs_grad[1] else None
        return ga, gb


class Div(Op):
    """y = a / b;  ∂y/∂a = 1/b, ∂y/∂b = −a/b²."""
    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy / b, a.shape) if self.needs_grad[0] else None
        gb = sum_to(-gy * a / (b * b), b.shape) if self.needs_grad[1] else None
        return ga, gb


class Neg(Op):
    """y = −x."""
    def forward(self, x):
        return -x

    def backward(self, gy):
        return (-gy,)


class PowScalar(Op):
    """y = xᶜ for a constant c;  ∂y/∂x = c·xᶜ⁻¹."""
    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        (x,) = self.inputs
        if self.c == 0:  # x⁰ = 1 is constant; c·x⁻¹ would give 0·∞ = NaN at x = 0
            return (Tensor(x.xp.zeros(x.shape, dtype=x.dtype)),)
        if self.c == 1:
            return (gy,)
        return (gy * (x ** (self.c - 1) * self.c),)


class Pow(Op):
    """y = aᵇ for tensors;  ∂y/∂a = b·aᵇ⁻¹, ∂y/∂b = aᵇ·log a (needs a > 0)."""
    def forward(self, a, b):
        return a ** b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy * b * a ** (b - 1), a.shape) if self.needs_grad[0] else None
        gb = sum_to(gy * self.output() * log(a), b.shape) if self.needs_grad[1] else None
        return ga, gb


class MatMul(Op):
    """Y = A @ B (batched over leading axes);  ∂L/∂A = G Bᵀ, ∂L/∂B = Aᵀ G.

    Each gradient is made in its input's memory layout: for an input that is a transposed
    view (a weight W used as Wᵀ, as in a backward pass) we form the transpose of the
    gradient, (Aᵀ G)ᵀ = Gᵀ A, contiguous, and return its transposed view, so the weight's
    gradient arrives contiguous and summing it with another stays a contiguous pass."""
    fresh_grads = True  # products (or their transposed views): new arrays

    def forward(self, a, b):
        if a.shape[-1] == 1:  # a product over a length-1 axis is an outer product: one multiply
            return a * b      # (NumPy's matmul does k = 1 in a scalar loop without BLAS: 4× slower)
        return gemm.matmul(a, b)  # as written, or as (Bᵀ Aᵀ)ᵀ where that measured faster, same bits

    def backward(self, gy):
        return matmul_grads(*self.inputs, gy, *self.needs_grad)


def matmul_grads(a, b, gy, need_a: bool, need_b: bool):
    """(∂L/∂A, ∂L/∂B) of Y = A @ B for ∂L/∂Y = gy, as MatMul's backward makes them (None where not needed)."""
    ga = (swapaxes(b @ swapaxes(gy)) if _transposed(a, gy) else sum_to(gy @ swapaxes(b), a.shape)) if need_a else None
    gb = (swapaxes(swapaxes(gy) @ a) if _transposed(b, gy) else sum_to(swapaxes(a) @ gy, b.shape)) if need_b else None
    return ga, gb


def _transposed(t, gy):
    """t is the transpose of a contiguous matrix (e.g. Wᵀ), in an unbatched product."""
    flags = getattr(t.data, "flags", None)
    return gy.ndim == t.ndim == 2 and flags is not None and flags.f_contiguous and not flags.c_contiguous


# --- elementwise functions ----------------------------------------------------------
class Exp(Op):
    """y = eˣ;  ∂y/∂x = y."""
    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, gy):
        return (gy * self.output(),)


class Log(Op):
    """y = log x;  ∂y/∂x = 1/x."""
    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return (gy / self.inputs[0],)


class Sqrt(Op):
    """y = √x;  ∂y/∂x = 1/(2y)."""
    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, gy):
        return (gy / (self.output() * 2),)


class Abs(Op):
    """y = |x|;  ∂y/∂x = sign(x), a constant, with abs′(0) = 0 (the minimum-norm subgradient)."""
    def forward(self, x):
        xp = backend.get_array_module(x)
        self.sign = xp.sign(x)
        return xp.abs(x)

    def backward(self, gy):
        return (gy * self.sign,)


class Sign(Op):
    """y = sign(x) with sign(0) = 0.  Piecewise constant: its derivative is exactly 0."""
    def forward(self, x):
        return backend.get_array_module(x).sign(x)

    def backward(self, gy):
        x = self.inputs[0]
        return (Tensor(x.xp.zeros(x.shape, dtype=x.dtype)),)


class Relu(Op):
    """y = max(x, 0);  ∂y/∂x = [x > 0], a constant mask (relu′(0) = 0)."""
    def forward(self, x):
        self.mask = (x > 0).astype(x.dtype)
        return x * self.mask

    def backward(self, gy):
        return (gy * self.mask,)


class Tanh(Op):
    """y = tanh x;  ∂y/∂x = 1 − y²."""
    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output()
        return (gy * (1 - y * y),)


class Sigmoid(Op):
    """y = σ(x) = 1/(1 + e⁻ˣ), as exp(−log(1 + e⁻ˣ)) so no exp overflows;  ∂y/∂x = y(1 − y)."""
    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.exp(-xp.logaddexp(0, -x)).astype(x.dtype, copy=False)

    def backward(self, gy):
        y = self.output()
        return (gy * y * (1 - y),)


class Softplus(Op):
    """y = log(1 + eˣ), computed as logaddexp(0, x);  ∂y/∂x = σ(x)."""
    def forward(self, x):
        return backend.get_array_module(x).logaddexp(0, x).astype(x.dtype, copy=False)

    def backward(self, gy):
        return (gy * sigmoid(self.inputs[0]),)


class Maximum(Op):
    """y = max(a, b) elementwise.  Where a = b the gradient is split evenly, ½ to each
    (the minimum-norm subgradient; the tie convention of science page §6)."""
    def forward(self, a, b):
        xp = backend.get_array_module(a, b)
        self.share_a = (a > b).astype(a.dtype) + (a == b).astype(a.dtype) * a.dtype.type(0.5)
        return xp.maximum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy * self.share_a, a.shape) if self.needs_grad[0] else None
        gb = sum_to(gy * (1 - self.share_a), b.shape) if self.needs_grad[1] else None
        return ga, gb


class Where(Op):
    """y = cond ? a : b for a constant boolean ``cond``;  gradients routed by ``cond``."""
    def forward(self, a, b):
        return backend.get_array_module(self.cond, a, b).where(self.cond, a, b)

    def backward(self, gy):
        a, b = self.inputs
        zero = Tensor(gy.xp.zeros((), dtype=gy.dtype))
        ga = sum_to(where(self.cond, gy, zero), a.shape) if self.needs_grad[0] else None
        gb = sum_to(where(self.cond, zero, gy), b.shape) if self.needs_grad[1] else None
        return ga, gb


# --- reductions ---------------------------------------------------------------------
def _reduced_axes(shape, axis):
    if axis is None:
        return set(range(len(shape)))
    return {int(a) % len(shape) for a in (axis if isinstance(axis, (tuple, list)) else np.atleast_1d(axis))}


def _keepdims_shape(shape, axis):
    axes = _reduced_axes(shape, axis)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _reduced_shape(shape, axis):
    axes = _reduced_axes(shape, axis)
    return tuple(n for i, n in enumerate(shape) if i not in axes)


class Sum(Op):
    """y = Σ x over ``axis``;  ∂L/∂x = gy broadcast back over the summed axes."""
    def forward(self, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        x = self.inputs[0]
        return (broadcast_to(reshape(gy, _keepdims_shape(x.shape, self.axis)), x.shape),)


class Max(Op):
    """y = max x over ``axis``.  The gradient goes to the maximal entries; on ties it is
    split evenly among them (the minimum-norm subgradient).  The tie weights are a
    constant, so the second derivative is 0, as it is for a piecewise-linear function."""
    def forward(self, x):
        m = x.max(axis=self.axis, keepdims=True)
        self.weights = tie_weights(x == m, self.axis, m.size, x.dtype)
        return m if self.keepdims else m.reshape(_reduced_shape(x.shape, self.axis))

    def backward(self, gy):
        x = self.inputs[0]
        return (reshape(gy, _keepdims_shape(x.shape, self.axis)) * self.weights,)


def tie_weights(hit, axis, winners: int, dtype):
    """The routing of a max's gradient from its mask ``hit`` (True where an entry equals its max over
    ``axis``): the mask itself when there are exactly ``winners`` True entries (no ties, the usual case for
    real-valued data: no more passes), else each winner's even share, hit / (number of tied entries).
    Checked on the host only (on a GPU the count would cost a device sync): there the share is always made."""
    xp = backend.get_array_module(hit)
    if (xp is np or backend.device_of(hit) != "cuda") and int(xp.count_nonzero(hit)) == winners:
        return hit
    hit = hit.astype(dtype)
    return hit / hit.sum(axis=axis, keepdims=True)


def _sum_slices(x, axis):
    """x summed over ``axis`` (kept, length 1) slice by slice, in order: x₀ + x₁ + … ."""
    at = (slice(None),) * axis
    y = x[at + (slice(0, 1),)] + x[at + (slice(1, 2),)]
    for k in range(2, x.shape[axis]):
        y += x[at + (slice(k, k + 1),)]
    return y


# --- shapes -----------------------------------------------------------------------
class Reshape(Op):
    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, gy):
        return (reshape(gy, self.inputs[0].shape),)


class Transpose(Op):
    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        return (transpose(gy, tuple(np.argsort(self.axes))),)


class BroadcastTo(Op):
    """A small host result (≤ 4096 entries: a mean's gradient) is a copy, 6 µs between a step's GEMMs where
    NumPy's ``broadcast_to`` (Python building an iterator) takes 20–30; a large one stays a read-only view."""
    def forward(self, x):
        if type(x) is np.ndarray and x.ndim <= len(self.shape) and math.prod(self.shape) <= 4096:
            y = np.empty(self.shape, dtype=x.dtype)
            with contextlib.suppress(ValueError):  # shapes that do not broadcast: broadcast_to's error below
                np.copyto(y, x)
                return y
        return backend.get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return (sum_to(gy, self.inputs[0].shape),)


class SumTo(Op):
    """Sum ``x`` down to ``shape``: the adjoint of broadcasting.

    A short inner axis (2 to 7 entries, not the last: Maxout's pieces) is summed as that many − 1
    whole-slice adds, in order: NumPy reduces such an axis one slice after another too (its pairwise
    summation starts at 8 terms), so the sum is the same to the bit, 1.4–3.6× faster than its
    reduction with its short inner loops on a convolution's (N·oh·ow, 2, 16) pieces; below 2¹⁸ entries the
    slices' Python costs more than it saves (tests/test_ops.py checks the bits)."""
    def forward(self, x):
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(self.shape) if n == 1 and x.shape[lead + i] != 1)
        if x.size >= 1 << 18 and len(axes) == 1 and 2 <= x.shape[axes[0]] <= 7 and axes[0] < x.ndim - 1 \
                and backend.get_array_module(x) is np:
            return _sum_slices(x, axes[0]).reshape(self.shape)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape)

    def backward(self, gy):
        return (broadcast_to(gy, self.inputs[0].shape),)


class GetItem(Op):
    """y = x[index] (basic or advanced indexing; e.g. picking each row's label)."""
    def forward(self, x):
        return x[self.index]

    def backward(self, gy):
        return (ScatterAdd.apply(gy, index=self.index, shape=self.inputs[0].shape),)


class ScatterAdd(Op):
    """y = zeros(shape) with y[index] += g, repeated indices accumulated: GetItem's adjoint."""
    def forward(self, g):
        xp = backend.get_array_module(g)
        y = xp.zeros(self.shape, dtype=g.dtype)
        return backend.scatter_add(xp, y, self.index, g)

    def backward(self, gy):
        return (gy[self.index],)


class Concatenate(Op):
    def forward(self, *xs):
        return backend.get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        grads, start = [], 0
        for x in self.inputs:
            index = [slice(None)] * gy.ndim
            index[self.axis] = slice(start, start + x.shape[self.axis])
            grads.append(gy[tuple(index)])
            start += x.shape[self.axis]
        return tuple(grads)


# --- the functions users call ------------------------------------------------------
def add(a, b): return _binary(Add, a, b)
def sub(a, b): return _binary(Sub, a, b)
def mul(a, b): return _binary(Mul, a, b)
def div(a, b): return _binary(Div, a, b)
def neg(x): return Neg.apply(x)
def exp(x): return Exp.apply(x)
def log(x): return Log.apply(x)
def sqrt(x): return Sqrt.apply(x)
def abs(x): return Abs.apply(x)  # noqa: A001 - the op's name
def sign(x): return Sign.apply(x)
def relu(x): return Relu.apply(x)
def tanh(x): return Tanh.apply(x)
def sigmoid(x): return Sigmoid.apply(x)
def softplus(x): return Softplus.apply(x)
def maximum(a, b): return _binary(Maximum, a, b)
def minimum(a, b):
    a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    return -maximum(-a, -as_tensor(b, like=a))


def power(x, c):
    """xᶜ: a constant exponent (a Python number) or a tensor exponent."""
    if isinstance(c, Tensor):
        return _binary(Pow, x, c)
    return PowScalar.apply(x, c=c)


def matmul(a, b):
    """A @ B.  A 1-D operand is treated as a row (left) or column (right) vector."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one axis, got {a.shape} @ {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape}")
    if a.ndim == 1 or b.ndim == 1:  # NumPy's rule: promote to a matrix, then drop that axis
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + a.shape[:-1][-1:] * (a.ndim > 1) \
            + b.shape[-1:] * (b.ndim > 1)
        a2 = reshape(a, (1,) + a.shape) if a.ndim == 1 else a
        b2 = reshape(b, b.shape + (1,)) if b.ndim == 1 else b
        return reshape(_binary(MatMul, a2, b2), shape)
    return _binary(MatMul, a, b)


def where(cond, a, b):
    """cond ? a : b; ``cond`` is a constant (boolean array or Tensor)."""
    return _binary(Where, a, b, cond=unwrap(cond))


def sum(x, axis=None, keepdims=False):  # noqa: A001
    return Sum.apply(x, axis=_axis(axis), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Σx / n over ``axis``; a mean over no elements (n = 0, an empty batch) is refused, not 0/0 = NaN."""
    x = as_tensor(x)
    n = x.size if axis is None else math.prod(x.shape[a] for a in np.atleast_1d(axis))
    if n == 0:
        raise InvalidArgument(f"mean: there is nothing to average over (shape {x.shape}, axis {axis}); "
                              "an empty batch has no mean")
    return sum(x, axis, keepdims) / n


def max(x, axis=None, keepdims=False):  # noqa: A001
    return Max.apply(x, axis=_axis(axis), keepdims=keepdims)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def reshape(x, shape):
    x = as_tensor(x)
    shape = tuple(shape) if not isinstance(shape, int) else (shape,)
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        shape = tuple(x.size // known if n == -1 else n for n in shape)
    if math.prod(shape) != x.size:
        raise ValueError(f"reshape: cannot reshape {x.shape} ({x.size} elements) to {shape}")
    return x if shape == x.shape else Reshape.apply(x, shape=shape)


def transpose(x, axes=None):
    x = as_tensor(x)
    n = x.data.ndim
    axes = tuple(range(n - 1, -1, -1)) if axes is None else tuple([a % n for a in axes])
    return Transpose.apply(x, axes=axes)


def swapaxes(x):
    """Swap the last two axes (the matrix transpose of a batch of matrices)."""
    n = x.data.ndim
    return Transpose.apply(x, axes=(1, 0) if n == 2 else tuple(range(n - 2)) + (n - 1, n - 2))


def broadcast_to(x, shape):
    x = as_tensor(x)
    return x if tuple(shape) == x.shape else BroadcastTo.apply(x, shape=tuple(shape))


def sum_to(x, shape):
    x = as_tensor(x)
    return x if tuple(shape) == x.shape else SumTo.apply(x, shape=tuple(shape))


def getitem(x, index):
    index = tuple(map(unwrap, index)) if isinstance(index, tuple) else unwrap(index)
    return GetItem.apply(x, index=index)


def concatenate(xs, axis=0):
    xs = [as_tensor(x) for x in xs]
    dtypes = sorted({str(x.dtype) for x in xs})
    if len(dtypes) > 1:
        raise TypeError(f"concatenate: dtypes differ ({', '.join(dtypes)}); cast explicitly first")
    axis = axis % xs[0].ndim
    return Concatenate.apply(*xs, axis=axis)


def _install_operators():
    """Give Tensor its Python operators, so ``a * b + c`` builds the graph."""
    T = Tensor
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = lambda a, b: sub(a, b)
    T.__rsub__ = lambda a, b: sub(b, a)
    T.__mul__ = lambda a, b: mul(a, b)
    T.__rmul__ = lambda a, b: mul(b, a)
    T.__truediv__ = lambda a, b: div(a, b)
    T.__rtruediv__ = lambda a, b: div(b, a)
    T.__neg__ = neg
    T.__pow__ = lambda a, c: power(a, c)
    T.__rpow__ = lambda a, b: power(as_tensor(b, like=a), a)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__getitem__ = getitem
    for name in ("lt", "le", "gt", "ge"):  # comparisons give constant boolean tensors
        setattr(T, f"__{name}__", _comparison(name))
    T.sum, T.mean, T.max = sum, mean, max
    T.reshape = lambda x, *shape: reshape(x, shape[0] if len(shape) == 1 else shape)
    T.transpose = lambda x, *axes: transpose(x, (axes[0] if len(axes) == 1 else axes) or None)
    T.T = property(lambda x: transpose(x))
    T.exp, T.log, T.sqrt, T.abs, T.sign = exp, log, sqrt, abs, sign
    T.relu, T.tanh, T.sigmoid = relu, tanh, sigmoid


def _comparison(name):
    def compare(a, b):
        b = unwrap(b)
        return Tensor(getattr(a.data, f"__{name}__")(b))
    return compare


_install_operators()
