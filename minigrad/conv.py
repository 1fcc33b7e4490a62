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

    conv2d(x, W, b)   = W · reshape(unfold(x))ᵀ + b            one GEMM over all examples and positions
    max_pool2d(x)     = max over (a, b) of unfold(x) (+ −∞ on padding)      ``ops.max``: ties split evenly
    channel_maxout(x) = ``functional.maxout`` over groups of channels

.. math::

   \begin{aligned}
   \texttt{conv2d}(x, W, b) &= W\, \texttt{reshape}(\operatorname{unfold}(x))^\top + b
       && \text{one GEMM over all examples and positions} \\
   \texttt{max_pool2d}(x) &= \max_{(a, b)} \operatorname{unfold}(x) \quad (-\infty \text{ on padding})
       && \texttt{ops.max}\text{: ties split evenly} \\
   \texttt{channel_maxout}(x) &= \texttt{functional.maxout} \text{ over groups of channels}
   \end{aligned}

Derivatives, for the record, with W as the (out, C·kh·kw) matrix and G the gradient of Zᵀ: ∂conv/∂x =
fold(Wᵀ G) and ∂conv/∂W = G unfold(x): both bilinear, so the
second derivative of conv2d is exactly those products again.  Pooling is piecewise linear: away from ties
its Jacobian is a constant 0/1 routing (the winners), so its *own* second derivative is 0 almost
everywhere; a gradient penalty's parameter gradient still flows through the routing (which is linear in
the upstream gradient) and through the curvature of everything else (softmax, the products of weights).

Layout: images are NCHW at the interface; a conv weight is (out_channels, in_channels, kh, kw), PyTorch's
layout, so the max kernel norm is a norm per output filter over its last three axes.  Inside, every op
computes in the C01B layout (C, H, W, N), cuda-convnet's and pylearn2's: unfold reads x as (C, H, W, N) and
gives windows (C, kh, kw, oh, ow, N), so the one GEMM is Zᵀ = W · unfold(x)ᵀ with columns ordered (i, j, n),
and what conv2d, max_pool2d and ConvMaxout return is an NCHW *view* of C01B memory, handed to the next layer
without a copy.  With the example axis fastest, the window copy, ``fold``'s adds and the masks' passes run
over ow·N (or N) numbers at a time instead of ow, and channel Maxout's pieces are whole rows of Zᵀ.  Values
never depend on the layout of an input (tests/test_conv.py).  Forward loops run over kernel offsets
(kh·kw slices, in ``fold``) at most, never over examples or positions.
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


# --- the adjoint pair, in the C01B layout -----------------------------------------------------------
class Unfold(Op):
    """U = unfold(x) for x in the C01B layout (C, H, W, N):

        U[c, a, b, i, j, n] = x̃[c, i·sh + a, j·sw + b, n],     U of shape (C, kh, kw, oh, ow, N)

    (im2col; x̃ padded with ``fill``).  Linear with the default zero padding, U = A x, so ∂L/∂x = Aᵀ G =
    fold(G): the backward is the adjoint op, itself differentiable.  Max pooling pads with ``fill`` = −∞
    (padding must never win a window): U = A x + c is then affine, with the same derivative A, so the
    backward is fold all the same (and fold's backward is the linear, zero-padded unfold).

    The result is a read-only view of x̃, made a C01B-contiguous copy first when x is padded or not
    contiguous; only speed depends on x's memory layout, never values."""
    fill = 0.0

    def forward(self, x):
        xp = backend.get_array_module(x)
        (kh, kw), (sh, sw), (t, b, l, r) = self.kernel, self.stride, self.pads
        c, h, w, n = x.shape
        if t or b or l or r or not x.flags.c_contiguous:
            padded = xp.full((c, h + t + b, w + l + r, n), self.fill, dtype=x.dtype)
            padded[:, t:t + h, l:l + w] = x
        else:
            padded = x
        oh = (h + t + b - kh) // sh + 1
        ow = (w + l + r - kw) // sw + 1
        s = padded.strides
        return _windows(xp, padded, (c, kh, kw, oh, ow, n), (s[0], s[1], s[2], s[1] * sh, s[2] * sw, s[3]))

    def backward(self, gy):
        return (Fold.apply(gy, image=self.inputs[0].shape[1:3], kernel=self.kernel, stride=self.stride,
                           pads=self.pads),)


class Fold(Op):
    """x = fold(Y) for windows Y (C, kh, kw, oh, ow, N): scatter-add each window back where unfold took it
    from, then crop the padding (col2im; overlapping windows accumulate, in the order of the kernel
    offsets).  The adjoint of Unfold: ∂L/∂Y = unfold(G).  The result is C01B, (C, H, W, N)."""
    def forward(self, y):
        xp = backend.get_array_module(y)
        (kh, kw), (sh, sw), (t, b, l, r) = self.kernel, self.stride, self.pads
        c, oh, ow, n = y.shape[0], y.shape[3], y.shape[4], y.shape[5]
        h, w = self.image
        out = xp.zeros((c, h + t + b, w + l + r, n), dtype=y.dtype)
        if _offsets_vary_fastest(y):  # then each y[:, a, b] would be a sparse strided read: one copy first
            y = xp.ascontiguousarray(y)
        for a in range(kh):  # a loop over kernel offsets only: each step is one strided add, whose inner
            for bb in range(kw):  # runs are ow·N long (stride 1) or N long
                out[:, a:a + sh * (oh - 1) + 1:sh, bb:bb + sw * (ow - 1) + 1:sw] += y[:, a, bb]
        return out[:, t:t + h, l:l + w]

    def backward(self, gx):
        return (Unfold.apply(gx, kernel=self.kernel, stride=self.stride, pads=self.pads),)


def _offsets_vary_fastest(y) -> bool:
    """In y (C, kh, kw, oh, ow, N), does an offset axis have a smaller stride than every other axis?
    (Axes of length 1 have no stride that matters.)  Only speed depends on the answer, never values."""
    def fastest(axes):
        return min((abs(y.strides[i]) for i in axes if y.shape[i] > 1), default=math.inf)
    return fastest((1, 2)) < fastest((0, 3, 4, 5))


def to_c01b(x):
    """(N, C, H, W) → (C, H, W, N), a view: the layout every conv op here computes in (cuda-convnet's and
    pylearn2's C01B).  Its inverse is ``from_c01b``; images handed back are NCHW views of C01B memory, so
    a stack of conv layers passes its activations on without a copy."""
    return F.transpose(x, (1, 2, 3, 0))


def from_c01b(x):
    """(C, H, W, N) → (N, C, H, W), a view (see ``to_c01b``)."""
    return F.transpose(x, (3, 0, 1, 2))


def unfold(x, kernel, stride=1, padding=0):
    """Sliding windows of x (N, C, H, W) → (N, C, oh, ow, kh, kw), a view; see ``Unfold``.

    ``padding``: int, (rows, cols) or (top, bottom, left, right), zeros."""
    x = _image(x, "unfold")
    kernel, stride = validate.pair(kernel, "kernel", "unfold", 1), validate.pair(stride, "stride", "unfold", 1)
    pads = validate.pads(padding, "padding", "unfold")
    for axis in range(2):
        output_size(x.shape[2 + axis], kernel[axis], stride[axis], pads[2 * axis], pads[2 * axis + 1])
    u = Unfold.apply(to_c01b(x), kernel=kernel, stride=stride, pads=pads)
    return F.transpose(u, (5, 0, 3, 4, 1, 2))


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
    x = Fold.apply(F.transpose(y, (1, 4, 5, 2, 3, 0)), image=image, kernel=kernel, stride=stride, pads=pads)
    return from_c01b(x)


# --- convolution -----------------------------------------------------------------------------------
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


def conv2d(x, weight, bias=None, stride=1, padding=0):
    r"""y[n, o, i, j] = b[o] + Σ over c, a, b of W[o, c, a, b] · x̃[n, c, i·sh + a, j·sw + b]  (cross-correlation,
    as every deep-learning library), for x (N, C, H, W), W (O, C, kh, kw), b (O,) or None.

    .. math::

       y_{n,o,i,j} = b_o + \sum_{c, a, b} W_{o,c,a,b} \, \tilde x_{n,\,c,\,i s_h + a,\,j s_w + b}

    Computed as unfold + one matrix product, Zᵀ = W unfold(x)ᵀ (+ b) with W reshaped to (O, C·kh·kw) and the
    columns of unfold(x)ᵀ ordered (i, j, n), example fastest: each output channel is one contiguous row
    (so channel Maxout's pieces are whole row blocks), and the window copy and ``fold`` move runs of ow·N
    numbers instead of ow.  Its derivatives are ∂L/∂x = fold(Wᵀ G) and ∂L/∂W = G unfold(x), produced by
    MatMul's and Unfold's backward (no conv-specific backward).  The result is an NCHW view of Zᵀ's C01B
    memory (see ``to_c01b``)."""
    x, weight, kernel, stride, pads = _conv_args(x, weight, stride, padding, "conv2d")
    u = Unfold.apply(to_c01b(x), kernel=kernel, stride=stride, pads=pads)  # (C, kh, kw, oh, ow, N)
    c, kh, kw, oh, ow, n = u.shape
    cols_t = F.reshape(u, (c * kh * kw, oh * ow * n))  # the one copy of the windows
    z_t = F.matmul(F.reshape(weight, (weight.shape[0], c * kh * kw)), cols_t)
    if bias is not None:
        z_t = z_t + F.reshape(bias, (weight.shape[0], 1))
    return from_c01b(F.reshape(z_t, (weight.shape[0], oh, ow, n)))


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
    windows = Unfold.apply(to_c01b(x), kernel=kernel, stride=stride, pads=(t, b, l, r), fill=-np.inf)
    # Kernel offsets first, as one contiguous copy: (kh·kw, C, oh, ow, N).  The max over the leading axis
    # is then kh·kw − 1 elementwise maximums of whole blocks, ~10× faster than reducing two short, strided
    # axes of the view.
    c, _, _, oh, ow, n = windows.shape
    stacked = F.reshape(F.transpose(windows, (1, 2, 0, 3, 4, 5)), (kernel[0] * kernel[1], c, oh, ow, n))
    return from_c01b(F.max(stacked, axis=0))


def channel_maxout(x, pieces: int):
    """h[n, j] = max_k x[n, k·channels + j] over groups of channels (pieces-major, as
    ``functional.maxout``): the Maxout of a convolutional layer, by the existing primitive.  On a conv2d
    output (C01B memory) each piece is a contiguous block of channels, so its passes run over whole blocks."""
    x = _image(x, "channel_maxout")
    pieces = validate.integer(pieces, "pieces", "channel_maxout", low=1)
    h = F.maxout(F.transpose(x, (0, 2, 3, 1)), pieces)
    return F.transpose(h, (0, 3, 1, 2))


def flatten(x):
    """(N, ...) → (N, D): one row per example."""
    x = as_tensor(x)
    return F.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


__all__ = ["unfold", "fold", "conv2d", "max_pool2d", "channel_maxout", "flatten", "output_size", "pool_padding",
           "to_c01b", "from_c01b", "Unfold", "Fold"]
