r"""Convolution and pooling, differentiable to any order, built on one linear adjoint pair.

``unfold`` (im2col) gathers the sliding windows of an image batch x of shape (N, C, H, W):

    U[n, c, i, j, a, b] = x̃[n, c, i·sh + a, j·sw + b],      x̃ = x zero-padded (top, bottom, left, right)

.. math::

   U_{n,c,i,j,a,b} = \tilde x_{n,\,c,\,i s_h + a,\,j s_w + b},
   \qquad \tilde x = x \text{ zero-padded (top, bottom, left, right)}

an array of shape (N, C, oh, ow, kh, kw) with oh = (H + pt + pb − kh) // sh + 1 (likewise ow).
It is linear, U = A x, and its adjoint ``fold`` (col2im) scatter-adds windows back:

    fold(Y)[n, c, h, w] = Σ over i, j, a, b with i·sh + a = h + pt, j·sw + b = w + pl of Y[n, c, i, j, a, b],

.. math::

   \operatorname{fold}(Y)_{n,c,h,w} = \sum_{\substack{i, j, a, b:\ i s_h + a = h + p_t \\ j s_w + b = w + p_l}}
   Y_{n,c,i,j,a,b},

that is Aᵀ Y, so ⟨unfold(x), Y⟩ = ⟨x, fold(Y)⟩ (tests/test_conv.py checks it).  For a linear map the
vector-Jacobian product *is* the adjoint: Unfold.backward(G) = fold(G) and Fold.backward(G) = unfold(G).
Each backward is the other op, so the pair is closed under differentiation and every order follows with
no new derivative code.  Everything else here is composed of that pair and existing primitives:

    conv2d(x, W, b)   = reshape(unfold(x)) @ Wᵀ + b            one GEMM over all examples and positions
    max_pool2d(x)     = max over (a, b) of unfold(x) (+ −∞ on padding)      ``ops.max``: ties split evenly
    channel_maxout(x) = ``functional.maxout`` over groups of channels

.. math::

   \begin{aligned}
   \texttt{conv2d}(x, W, b) &= \texttt{reshape}(\operatorname{unfold}(x))\, W^\top + b
       && \text{one GEMM over all examples and positions} \\
   \texttt{max_pool2d}(x) &= \max_{(a, b)} \operatorname{unfold}(x) \quad (-\infty \text{ on padding})
       && \texttt{ops.max}\text{: ties split evenly} \\
   \texttt{channel_maxout}(x) &= \texttt{functional.maxout} \text{ over groups of channels}
   \end{aligned}

Derivatives, for the record, with W as the (out, C·kh·kw) matrix: ∂conv/∂x = fold(G W) and
∂conv/∂W = Gᵀ unfold(x): both bilinear, so the
second derivative of conv2d is exactly those products again.  Pooling is piecewise linear: away from ties
its Jacobian is a constant 0/1 routing (the winners), so its *own* second derivative is 0 almost
everywhere; a gradient penalty's parameter gradient still flows through the routing (which is linear in
the upstream gradient) and through the curvature of everything else (softmax, the products of weights).

Layout: images are NCHW; a conv weight is (out_channels, in_channels, kh, kw), PyTorch's layout, so the
max kernel norm is a norm per output filter over its last three axes.  Forward loops run over kernel
offsets (kh·kw slices, in ``fold``) at most, never over examples or positions.
"""
from __future__ import annotations

import math

import numpy as np

from . import backend
from . import functional as F
from . import validate
from .errors import InvalidArgument
from .tensor import Op, as_tensor


# --- argument handling ------------------------------------------------------------------------
def _image(x, who):
    x = as_tensor(x)
    if x.ndim != 4:
        raise InvalidArgument(f"{who}: expected images of shape (N, C, H, W), got shape {x.shape}")
    return x


def output_size(size, kernel, stride, pad_before, pad_after=None, ceil_mode=False):
    """Number of window positions along one axis.

    floor mode: ⌊(n + p₀ + p₁ − k)/s⌋ + 1.  ceil mode (pylearn2's and cuda-convnet's *cover-all* pooling):
    ⌈(n + p₀ + p₁ − k)/s⌉ + 1, minus one if the last window would start in the trailing padding (as
    PyTorch), so every window covers at least one real entry and the whole input is covered."""
    pad_after = pad_before if pad_after is None else pad_after
    span = size + pad_before + pad_after - kernel
    if span < 0:
        raise InvalidArgument(f"window of size {kernel} does not fit an axis of size {size} padded by "
                         f"{pad_before} + {pad_after}")
    if not ceil_mode:
        return span // stride + 1
    n = -(-span // stride) + 1
    if (n - 1) * stride >= size + pad_before:
        n -= 1
    return n


def _windows(xp, a, shape, strides):
    if xp is np or xp is backend.strict:  # a read-only view: the windows overlap, so no writes through it
        return np.lib.stride_tricks.as_strided(a, shape, strides, subok=True, writeable=False)
    return xp.lib.stride_tricks.as_strided(a, shape, strides)  # pragma: no cover - needs a GPU


# --- the adjoint pair -----------------------------------------------------------------------------
class Unfold(Op):
    """U = unfold(x): U[n,c,i,j,a,b] = x̃[n, c, i·sh + a, j·sw + b] (im2col; x̃ padded with ``fill``).

    Linear with the default zero padding, U = A x, so ∂L/∂x = Aᵀ G = fold(G): the backward is the adjoint
    op, itself differentiable.  Max pooling pads with ``fill`` = −∞ (padding must never win a window):
    U = A x + c is then affine, with the same derivative A, so the backward is fold all the same (and
    fold's backward is the linear, zero-padded unfold)."""
    fill = 0.0

    def forward(self, x):
        xp = backend.get_array_module(x)
        (kh, kw), (sh, sw), (t, b, l, r) = self.kernel, self.stride, self.pads
        n, c, h, w = x.shape
        if t or b or l or r:
            padded = xp.full((n, c, h + t + b, w + l + r), self.fill, dtype=x.dtype)
            padded[:, :, t:t + h, l:l + w] = x
        else:
            padded = x
        oh = (h + t + b - kh) // sh + 1
        ow = (w + l + r - kw) // sw + 1
        s = padded.strides
        return _windows(xp, padded, (n, c, oh, ow, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]))

    def backward(self, gy):
        return (Fold.apply(gy, image=self.inputs[0].shape[2:], kernel=self.kernel, stride=self.stride,
                           pads=self.pads),)


class Fold(Op):
    """x = fold(Y): scatter-add each window back where unfold took it from, then crop the padding
    (col2im; overlapping windows accumulate).  The adjoint of Unfold: ∂L/∂Y = unfold(G)."""
    def forward(self, y):
        xp = backend.get_array_module(y)
        (kh, kw), (sh, sw), (t, b, l, r) = self.kernel, self.stride, self.pads
        n, c, oh, ow = y.shape[:4]
        h, w = self.image
        out = xp.zeros((n, c, h + t + b, w + l + r), dtype=y.dtype)
        y = y.transpose(4, 5, 0, 1, 2, 3)  # offsets first: y[a, b] is the (N, C, oh, ow) block of one offset
        if _offsets_vary_fastest(y):  # then each y[a, b] would be a sparse strided read: one copy first
            y = xp.ascontiguousarray(y)
        for a in range(kh):  # a loop over kernel offsets only: each step is one strided add
            for bb in range(kw):
                out[:, :, a:a + sh * (oh - 1) + 1:sh, bb:bb + sw * (ow - 1) + 1:sw] += y[a, bb]
        return out[:, :, t:t + h, l:l + w]

    def backward(self, gx):
        return (Unfold.apply(gx, kernel=self.kernel, stride=self.stride, pads=self.pads),)


def _offsets_vary_fastest(y) -> bool:
    """In y (kh, kw, N, C, oh, ow), does an offset axis have a smaller stride than every other axis?
    (Axes of length 1 have no stride that matters.)  Only speed depends on the answer, never values."""
    def fastest(axes):
        return min((abs(y.strides[i]) for i in axes if y.shape[i] > 1), default=math.inf)
    return fastest((0, 1)) < fastest((2, 3, 4, 5))


def unfold(x, kernel, stride=1, padding=0):
    """Sliding windows of x (N, C, H, W) → (N, C, oh, ow, kh, kw); see ``Unfold``.

    ``padding``: int, (rows, cols) or (top, bottom, left, right), zeros."""
    x = _image(x, "unfold")
    kernel, stride = validate.pair(kernel, "kernel", "unfold", 1), validate.pair(stride, "stride", "unfold", 1)
    pads = validate.pads(padding, "padding", "unfold")
    for axis in range(2):
        output_size(x.shape[2 + axis], kernel[axis], stride[axis], pads[2 * axis], pads[2 * axis + 1])
    return Unfold.apply(x, kernel=kernel, stride=stride, pads=pads)


def fold(y, image, kernel, stride=1, padding=0):
    """Adjoint of ``unfold``: windows y (N, C, oh, ow, kh, kw) summed back into images of size
    ``image`` = (H, W); see ``Fold``."""
    y = as_tensor(y)
    who = "fold"
    kernel, stride = validate.pair(kernel, "kernel", who, 1), validate.pair(stride, "stride", who, 1)
    pads, image = validate.pads(padding, "padding", who), validate.pair(image, "image", who, 1)
    expect = tuple(output_size(image[i], kernel[i], stride[i], pads[2 * i], pads[2 * i + 1]) for i in range(2))
    if y.ndim != 6 or y.shape[2:4] != expect or y.shape[4:] != kernel:
        raise InvalidArgument(f"fold: expected windows of shape (N, C, {expect[0]}, {expect[1]}, {kernel[0]}, "
                         f"{kernel[1]}) for image {image}, got {y.shape}")
    return Fold.apply(y, image=image, kernel=kernel, stride=stride, pads=pads)


# --- convolution -----------------------------------------------------------------------------------
def _columns(x, kernel, stride, pads):
    """unfold(x) as the GEMM's left operand: (N·oh·ow, C·kh·kw), plus (N, oh, ow)."""
    u = Unfold.apply(x, kernel=kernel, stride=stride, pads=pads)
    n, c, oh, ow, kh, kw = u.shape
    # Stored transposed, (C·kh·kw, N·oh·ow) contiguous: the copy reads x's rows in order, and the gradient
    # comes back in the same layout, in which fold reads one offset's block as C contiguous runs of N·oh·ow.
    cols_t = F.reshape(F.transpose(u, (1, 4, 5, 0, 2, 3)), (c * kh * kw, n * oh * ow))
    return F.transpose(cols_t), (n, oh, ow)


def _conv_args(x, weight, stride, padding, who):
    x, weight = _image(x, who), as_tensor(weight)
    if weight.ndim != 4 or weight.shape[1] != x.shape[1]:
        raise InvalidArgument(f"{who}: weight must be (out_channels, {x.shape[1]}, kh, kw) for input "
                         f"{x.shape}, got {weight.shape}")
    kernel = weight.shape[2:]
    stride, pads = validate.pair(stride, "stride", who, 1), validate.pads(padding, "padding", who)
    for axis in range(2):
        output_size(x.shape[2 + axis], kernel[axis], stride[axis], pads[2 * axis], pads[2 * axis + 1])
    return x, weight, kernel, stride, pads


def conv2d_rows(x, weight, bias=None, stride=1, padding=0):
    """The convolution before its final transpose: rows (N·oh·ow, out_channels) and (N, oh, ow).

    One GEMM: Z = unfold(x) Wᵀ (+ b), with W reshaped to (out, C·kh·kw).  Channel Maxout can act on
    these rows directly (its pieces are columns), which saves two transposes."""
    x, weight, kernel, stride, pads = _conv_args(x, weight, stride, padding, "conv2d")
    cols, nhw = _columns(x, kernel, stride, pads)
    z = F.matmul(cols, F.transpose(F.reshape(weight, (weight.shape[0], -1))))
    if bias is not None:
        z = z + bias
    return z, nhw


def _rows_to_image(z, nhw):
    n, oh, ow = nhw
    return F.transpose(F.reshape(z, (n, oh, ow, z.shape[-1])), (0, 3, 1, 2))


def conv2d(x, weight, bias=None, stride=1, padding=0):
    r"""y[n, o, i, j] = b[o] + Σ over c, a, b of W[o, c, a, b] · x̃[n, c, i·sh + a, j·sw + b]  (cross-correlation,
    as every deep-learning library), for x (N, C, H, W), W (O, C, kh, kw), b (O,) or None.

    .. math::

       y_{n,o,i,j} = b_o + \sum_{c, a, b} W_{o,c,a,b} \, \tilde x_{n,\,c,\,i s_h + a,\,j s_w + b}

    Computed as unfold + one matrix product; its derivatives are ∂L/∂x = fold(G W) and
    ∂L/∂W = Gᵀ unfold(x), produced by MatMul's and Unfold's backward (no conv-specific backward)."""
    z, nhw = conv2d_rows(x, weight, bias, stride, padding)
    return _rows_to_image(z, nhw)


# --- pooling and channel Maxout --------------------------------------------------------------------
def pool_padding(size, kernel, stride, padding, ceil_mode):
    """(top-or-left, bottom-or-right) padding one axis needs, and its output size: the extra trailing
    padding ceil mode asks for is reported as padding (filled with −∞ for max pooling)."""
    out = output_size(size, kernel, stride, padding, padding, ceil_mode)
    after = max((out - 1) * stride + kernel - size - padding, 0)
    return (padding, after), out


def max_pool2d(x, kernel, stride=None, padding=0, ceil_mode=False):
    """y[n, c, i, j] = the max over a, b of x̃[n, c, i·sh + a, j·sw + b], x̃ padded with −∞; windows may overlap
    (stride < kernel).  ``ceil_mode=True`` is pylearn2's / cuda-convnet's cover-all size (see
    ``output_size``), used by the Maxout paper's CIFAR-10 network.

    Built as ``ops.max`` over the window offsets of ``unfold(x)``: on ties the gradient is split evenly
    among the tied entries (the minimum-norm subgradient, as every max in minigrad; Chainer and PyTorch
    give it all to the first index).  The routing weights are constants, so the second derivative is 0
    almost everywhere, and the backward is ``fold`` of routed gradients: differentiable again."""
    who = "max_pool2d"
    x = _image(x, who)
    kernel = validate.pair(kernel, "kernel", who, 1)
    stride = kernel if stride is None else validate.pair(stride, "stride", who, 1)
    ph, pw = validate.pair(padding, "padding", who, 0)
    if 2 * ph > kernel[0] or 2 * pw > kernel[1]:
        raise InvalidArgument(f"{who}: padding must be at most half the kernel, got padding {(ph, pw)} for "
                         f"kernel {kernel}")
    (t, b), _ = pool_padding(x.shape[2], kernel[0], stride[0], ph, ceil_mode)
    (l, r), _ = pool_padding(x.shape[3], kernel[1], stride[1], pw, ceil_mode)
    # Padded entries must never win: −∞ there (every window holds at least one real entry, see
    # ``output_size``), a constant that takes no gradient.
    windows = Unfold.apply(x, kernel=kernel, stride=stride, pads=(t, b, l, r), fill=-np.inf)
    # Kernel offsets first, as one contiguous copy: (kh·kw, N, C, oh, ow).  The max over the leading axis
    # is then kh·kw − 1 elementwise maximums of whole blocks, ~10× faster than reducing the two short,
    # strided trailing axes of the view.
    n, c, oh, ow = windows.shape[:4]
    stacked = F.reshape(F.transpose(windows, (4, 5, 0, 1, 2, 3)), (kernel[0] * kernel[1], n, c, oh, ow))
    return F.max(stacked, axis=0)


def channel_maxout(x, pieces: int):
    """h[n, j] = max_k x[n, k·channels + j] over groups of channels (pieces-major, as
    ``functional.maxout``): the Maxout of a convolutional layer, by the existing primitive."""
    x = _image(x, "channel_maxout")
    pieces = validate.integer(pieces, "pieces", "channel_maxout", low=1)
    h = F.maxout(F.transpose(x, (0, 2, 3, 1)), pieces)
    return F.transpose(h, (0, 3, 1, 2))


def flatten(x):
    """(N, ...) → (N, D): one row per example."""
    x = as_tensor(x)
    return F.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


__all__ = ["unfold", "fold", "conv2d", "conv2d_rows", "max_pool2d", "channel_maxout", "flatten",
           "output_size", "pool_padding", "Unfold", "Fold"]
