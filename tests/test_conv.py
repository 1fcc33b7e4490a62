"""Convolution and pooling (minigrad.conv), first and second order, on every device.

Each op is checked against a direct NumPy loop written from its definition (one loop per output
position, nothing shared with the implementation), by gradcheck and gradgradcheck in float64 over
random shapes, strides and paddings (windows that overlap: stride < kernel), and the pair unfold/fold
by the adjoint identity ⟨unfold(x), y⟩ = ⟨x, fold(y)⟩.  Pooling's checks draw inputs without ties:
values are a random permutation of a grid with spacing 0.05 plus jitter < 0.01, so any two entries
differ by more than gradcheck's step reaches (no max changes its winner under the perturbation).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minigrad import conv as C
from minigrad import checkpoint, grad, nn, optim
from minigrad.backend import as_numpy, to_device
from minigrad.gradcheck import gradcheck, gradgradcheck
from minigrad.tensor import Tensor

# a third of the profile's examples (8 under 'ci', 66 under 'thorough'): each one runs gradgradcheck
SETTINGS = settings(max_examples=max(8, settings.default.max_examples // 3))


# --- the definitions, as loops ---------------------------------------------------------------------
def pad(x, t, b, l, r, value=0.0):
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def unfold_loop(x, k, s, pads):
    (kh, kw), (sh, sw), (t, b, l, r) = k, s, pads
    xp = pad(x, t, b, l, r)
    n, c, H, W = xp.shape
    oh, ow = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.zeros((n, c, oh, ow, kh, kw))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
    return out


def conv_loop(x, w, bias, s, pads):
    (sh, sw), (t, b, l, r) = s, pads
    xp = pad(x, t, b, l, r)
    o, _, kh, kw = w.shape
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros((x.shape[0], o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w) + (0 if bias is None else bias)
    return out


def pool_loop(x, k, s, p, ceil_mode):
    """Windows start at i·s − p; out-of-range entries are ignored (−∞); ceil mode adds a last window
    when the input is not covered, unless it would start past the input and its leading padding."""
    n, c, H, W = x.shape
    sizes = []
    for size, kk, ss, pp in zip((H, W), k, s, p):
        span = size + 2 * pp - kk
        o = (-(-span // ss) if ceil_mode else span // ss) + 1
        if ceil_mode and (o - 1) * ss >= size + pp:
            o -= 1
        sizes.append(o)
    out = np.full((n, c) + tuple(sizes), -np.inf)
    for i in range(sizes[0]):
        for j in range(sizes[1]):
            r0, c0 = i * s[0] - p[0], j * s[1] - p[1]
            win = x[:, :, max(r0, 0):r0 + k[0], max(c0, 0):c0 + k[1]]
            out[:, :, i, j] = win.max(axis=(2, 3))
    return out


def channel_maxout_loop(x, pieces):
    ch = x.shape[1] // pieces
    return np.max(np.stack([x[:, q * ch:(q + 1) * ch] for q in range(pieces)]), axis=0)


# --- drawing cases ----------------------------------------------------------------------------------
@st.composite
def window_case(draw, pool=False):
    """(x shape, kernel, stride, padding) with the window fitting the padded input."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if pool:
        padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    else:
        padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
    lo = [max(kernel[0] - (2 * padding[0] if pool else padding[0] + padding[1]), 1),
          max(kernel[1] - (2 * padding[1] if pool else padding[2] + padding[3]), 1)]
    h, w = draw(st.integers(lo[0], lo[0] + 4)), draw(st.integers(lo[1], lo[1] + 4))
    return (n, c, h, w), kernel, stride, padding, draw(st.integers(0, 2**31 - 1))


def untied(shape, rng):
    """Entries pairwise ≥ 0.04 apart (a shuffled grid plus a jitter < 0.01): no ties, at any step."""
    size = math.prod(shape)
    grid = (rng.permutation(size) - size / 2) * 0.05
    return (grid + rng.uniform(0, 0.01, size)).reshape(shape)


def tensors(device, *arrays):
    return [Tensor(to_device(a, device), requires_grad=True) for a in arrays]


def pads4(padding):
    return padding if len(padding) == 4 else (padding[0], padding[0], padding[1], padding[1])


# --- unfold / fold ---------------------------------------------------------------------------------
@SETTINGS
@given(case=window_case())
def test_unfold_matches_loop_and_is_differentiable_twice(device, case):
    shape, k, s, p, seed = case
    x = np.random.default_rng(seed).standard_normal(shape)
    (tx,) = tensors(device, x)
    out = C.unfold(tx, k, s, p)
    assert out.device == device
    np.testing.assert_array_equal(as_numpy(out.data), unfold_loop(x, k, s, p))
    f = lambda t: C.unfold(t, k, s, p)  # noqa: E731
    assert gradcheck(f, [tx]) and gradgradcheck(f, [tx])


@SETTINGS
@given(case=window_case())
def test_unfold_and_fold_are_adjoint(device, case):
    shape, k, s, p, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    u = C.unfold(Tensor(to_device(x, device)), k, s, p)
    y = rng.standard_normal(u.shape)
    folded = C.fold(Tensor(to_device(y, device)), shape[2:], k, s, p)
    assert folded.shape == shape and folded.device == device
    lhs, rhs = np.sum(as_numpy(u.data) * y), np.sum(x * as_numpy(folded.data))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)
    (ty,) = tensors(device, y)
    f = lambda t: C.fold(t, shape[2:], k, s, p)  # noqa: E731
    assert gradcheck(f, [ty]) and gradgradcheck(f, [ty])


@SETTINGS
@given(case=window_case(), order=st.permutations(range(6)), flip=st.sets(st.integers(0, 5)),
       broadcast=st.booleans())
def test_fold_is_bit_identical_whatever_the_memory_layout_of_its_input(case, order, flip, broadcast):
    # fold adds from a strided view or first makes a copy, depending on the layout (a speed choice): the
    # values never depend on it.  Layouts: any axis order in memory, reversed axes (negative strides),
    # a broadcast axis (stride 0), and whatever length-1 axes the case brings.
    shape, k, s, p, seed = case
    u_shape = C.unfold(Tensor(np.zeros(shape)), k, s, p).shape
    memory = np.random.default_rng(seed).standard_normal([u_shape[i] for i in order])
    y = memory.transpose(np.argsort(order))  # logical (N, C, oh, ow, kh, kw), laid out as ``order``
    y = y[tuple(slice(None, None, -1) if i in flip else slice(None) for i in range(6))]
    if broadcast:
        y = np.broadcast_to(y[:1], y.shape)
    expected = C.fold(Tensor(np.ascontiguousarray(y)), shape[2:], k, s, p).data
    np.testing.assert_array_equal(C.fold(Tensor(y), shape[2:], k, s, p).data, expected)


@SETTINGS
@given(case=window_case(), order=st.permutations(range(4)), bias=st.booleans())
def test_conv_values_never_depend_on_the_memory_layout_of_the_input(case, order, bias):
    # unfold copies its input into a C01B buffer when it is padded or not C01B-contiguous, and reads it in
    # place otherwise (a speed choice): conv2d, max_pool2d and their gradients give the same bits for an
    # input laid out in memory in any axis order.
    shape, k, s, p, seed = case
    rng = np.random.default_rng(seed)
    memory = rng.standard_normal([shape[i] for i in order])
    x = memory.transpose(np.argsort(order))  # logical (N, C, H, W), laid out as ``order``
    w, b = rng.standard_normal((2, shape[1]) + k), rng.standard_normal(2) if bias else None

    def run(x):
        tx = Tensor(x, requires_grad=True)
        y = C.conv2d(tx, w, b, s, p)
        z = C.max_pool2d(tx, k, s) if all(kk <= n for kk, n in zip(k, shape[2:])) else y
        (g,) = grad((y * y).sum() + (z * z).sum(), [tx])
        return y.data, z.data, g.data

    for got, want in zip(run(x), run(np.ascontiguousarray(x))):
        np.testing.assert_array_equal(got, want)


def test_conv_layers_hand_on_c01b_memory_without_a_copy():
    # What conv2d, max_pool2d and ConvMaxout return is an NCHW view of C01B memory (C, H, W, N), and the
    # next layer's unfold reads that memory in place when it needs no padding.
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3, 9, 9)))
    layer = nn.ConvMaxout(3, 2, 2, 3, padding=1, pool=3, pool_stride=2, dtype=np.float64, seed=0)
    for y in (C.conv2d(x, rng.standard_normal((5, 3, 3, 3))), C.max_pool2d(x, 3, 2), layer(x)):
        assert y.data.transpose(1, 2, 3, 0).flags.c_contiguous
    y = C.conv2d(x, rng.standard_normal((5, 3, 3, 3)))
    u = C.unfold(y, 2)
    assert np.shares_memory(u.data, y.data)
    np.testing.assert_array_equal(u.data, unfold_loop(y.data, (2, 2), (1, 1), (0, 0, 0, 0)))


# --- conv2d ---------------------------------------------------------------------------------------------
@SETTINGS
@given(case=window_case(), out_channels=st.integers(1, 3), bias=st.booleans())
def test_conv2d_matches_loop_and_is_differentiable_twice(device, case, out_channels, bias):
    shape, k, s, p, seed = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((out_channels, shape[1]) + k), \
        rng.standard_normal(out_channels)
    tx, tw, tb = tensors(device, x, w, b)
    out = C.conv2d(tx, tw, tb if bias else None, s, p)
    assert out.device == device and out.dtype == np.float64
    np.testing.assert_allclose(as_numpy(out.data), conv_loop(x, w, b if bias else None, s, pads4(p)),
                               rtol=1e-10, atol=1e-12)
    inputs = [tx, tw, tb] if bias else [tx, tw]
    f = lambda *t: C.conv2d(t[0], t[1], t[2] if bias else None, s, p)  # noqa: E731
    assert gradcheck(f, inputs) and gradgradcheck(f, inputs)


# --- max pooling --------------------------------------------------------------------------------------
@SETTINGS
@given(case=window_case(pool=True), ceil_mode=st.booleans())
def test_max_pool2d_matches_loop_and_is_differentiable_twice(device, case, ceil_mode):
    shape, k, s, p, seed = case
    x = untied(shape, np.random.default_rng(seed))
    (tx,) = tensors(device, x)
    out = C.max_pool2d(tx, k, s, p, ceil_mode)
    assert out.device == device
    np.testing.assert_array_equal(as_numpy(out.data), pool_loop(x, k, s, p, ceil_mode))
    f = lambda t: C.max_pool2d(t, k, s, p, ceil_mode)  # noqa: E731
    assert gradcheck(f, [tx]) and gradgradcheck(f, [tx])


def test_max_pool2d_overlapping_windows_accumulate_and_ties_split_evenly(device):
    # 1×1×1×3 input [1, 3, 2], windows of 2 with stride 1: both windows pick the 3 → its gradient is 2.
    x = Tensor(to_device(np.array([[[[1.0, 3.0, 2.0]]]]), device), requires_grad=True)
    (g,) = grad(C.max_pool2d(x, (1, 2), 1).sum(), x)
    np.testing.assert_array_equal(as_numpy(g.data), [[[[0.0, 2.0, 0.0]]]])
    # a tie among the 4 entries of one window: each gets 1/4 (Chainer/PyTorch would give 1 to the first)
    x = Tensor(to_device(np.full((1, 1, 2, 2), 5.0), device), requires_grad=True)
    (g,) = grad(C.max_pool2d(x, 2).sum(), x)
    np.testing.assert_array_equal(as_numpy(g.data), np.full((1, 1, 2, 2), 0.25))


def test_cover_all_output_size_of_the_cifar10_preset():
    # pylearn2 / cuda-convnet: 33 → pool 4 stride 2 → 16 (floor mode would give 15)
    assert C.output_size(33, 4, 2, 0, 0, ceil_mode=True) == 16
    assert C.output_size(33, 4, 2, 0, 0, ceil_mode=False) == 15
    shapes = [layer.output_shape for layer in nn.conv_maxout("cifar10").layers[1:4]]
    shape = (3, 32, 32)
    for f in shapes:
        shape = f(shape)
    assert shape == (192, 5, 5)


# --- channel Maxout and the ConvMaxout layer -------------------------------------------------------------
@SETTINGS
@given(case=window_case(), channels=st.integers(1, 2), pieces=st.integers(1, 3), pool=st.booleans())
def test_conv_maxout_layer_matches_loop_and_is_differentiable_twice(device, case, channels, pieces, pool):
    shape, k, s, p, seed = case
    rng = np.random.default_rng(seed)
    layer = nn.ConvMaxout(shape[1], channels, pieces, k, p, s, dtype=np.float64, seed=rng)
    x = rng.standard_normal(shape)
    w, b = as_numpy(layer.weight.data), rng.standard_normal(channels * pieces)
    z = conv_loop(x, w, b, s, pads4(p))
    h = channel_maxout_loop(z, pieces)
    # no ties among the pieces nor among the pooled values (a finite difference must not flip a winner)
    assume(np.min(np.diff(np.sort(z, axis=1), axis=1), initial=1) > 1e-3)
    assume(np.min(np.diff(np.sort(h.ravel())), initial=1) > 1e-3)
    expected = h
    if pool and min(h.shape[2:]) >= 2:
        layer.pool = nn.MaxPool2d(2, 1, ceil_mode=True)
        expected = pool_loop(h, (2, 2), (1, 1), (0, 0), True)
    layer.to(device)
    layer.bias.data = to_device(b, device)
    (tx,) = tensors(device, x)
    out = layer(tx)
    np.testing.assert_allclose(as_numpy(out.data), expected, rtol=1e-10, atol=1e-12)
    f = lambda t, w_, b_: layer_call(layer, t, w_, b_)  # noqa: E731
    inputs = [tx, layer.weight, layer.bias]
    assert gradcheck(f, inputs) and gradgradcheck(f, inputs)


def layer_call(layer, x, w, b):
    layer.weight, layer.bias = w, b
    return layer(x)


def test_channel_maxout_matches_loop(device):
    x = untied((2, 6, 3, 2), np.random.default_rng(0))
    (tx,) = tensors(device, x)
    np.testing.assert_array_equal(as_numpy(C.channel_maxout(tx, 3).data), channel_maxout_loop(x, 3))
    f = lambda t: C.channel_maxout(t, 3)  # noqa: E731
    assert gradcheck(f, [tx]) and gradgradcheck(f, [tx])


# --- a whole small conv Maxout network, second order ------------------------------------------------------
def test_conv_maxout_network_gradient_penalty_gradgradcheck():
    from minigrad import regularizers as R
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Unflatten((1, 6, 6)), nn.ConvMaxout(1, 2, 2, 3, 1, pool=3, pool_stride=2, seed=rng,
                                                                  dtype=np.float64),
                          nn.Flatten(), nn.Linear(2 * 3 * 3, 3, seed=rng, dtype=np.float64))
    x, y = rng.standard_normal((2, 36)), rng.integers(0, 3, 2)
    params = model.parameters()

    def penalty(*ps):
        for (name, _), p in zip(model.named_parameters(), ps):
            owner = model.layers[int(name.split(".")[0])]
            setattr(owner, name.split(".")[1], p)
        return R.GradientPenalty(0.3, 2)(model, x, y)
    assert gradcheck(penalty, params)


# --- errors, presets, the kernel-norm constraint ---------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda x: C.unfold(x, 0), "unfold: kernel must be an integer >= 1, got 0"),
    (lambda x: C.unfold(x, 5), "does not fit"),
    (lambda x: C.max_pool2d(x, 2, padding=2), "padding must be at most half the kernel"),
    (lambda x: C.conv2d(x, np.zeros((2, 3, 1, 1))), "weight must be (out_channels, 1, kh, kw)"),
    (lambda x: C.unfold(x.reshape(4, 4), 2), "expected images of shape (N, C, H, W)"),
])
def test_errors_name_the_argument(call, message):
    with pytest.raises(ValueError) as info:
        call(Tensor(np.zeros((1, 1, 4, 4))))
    assert message in str(info.value)


def test_presets_build_and_run():
    small = nn.conv_maxout("small")
    x = np.random.default_rng(0).random((2, 784), dtype=np.float32)
    assert small(x).shape == (2, 10) and small(x).dtype == np.float32
    rebuilt = nn.build(small.config)
    rebuilt.load_state_dict(small.state_dict())
    np.testing.assert_array_equal(rebuilt(x).numpy(), small(x).numpy())
    big = nn.conv_maxout("cifar10")
    norms = [getattr(p, "max_norm", None) for n, p in big.named_parameters() if n.endswith("weight")]
    assert norms == [0.9, 1.9365, 1.9365, 1.9, 1.9365]
    with pytest.raises(ValueError, match="preset must be one of"):
        nn.conv_maxout("vgg")
    assert nn.conv_maxout("small", in_shape=(8, 8)).config["in_shape"] == [1, 8, 8]  # a Dataset's image_shape


def test_max_kernel_norm_rescales_only_long_filters():
    w = np.zeros((3, 2, 2, 2))
    w[0] = 1.0                      # norm √8 > 2 → rescaled to 2
    w[1] = 0.1                      # short: untouched bit for bit
    before = w.copy()
    optim.max_kernel_norm_(w, 2.0)
    assert np.linalg.norm(w[0]) == pytest.approx(2.0)
    np.testing.assert_array_equal(w[1:], before[1:])
    with pytest.raises(ValueError, match="max_kernel_norm_: max_norm must be"):
        optim.max_kernel_norm_(w, 0)


def test_optimizers_apply_each_layers_max_norm():
    model = nn.conv_maxout("small", seed=1)
    for p in model.parameters():
        p.data[...] = 10.0
    opt = optim.SGD(model.parameters(), lr=0.1)  # zero gradients: only the max norms act
    opt.step([np.zeros_like(p.data) for p in model.parameters()])
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            axes = (1, 2, 3) if p.ndim == 4 else 0
            assert np.allclose(np.sqrt((p.data.astype(np.float64) ** 2).sum(axis=axes)), p.max_norm, rtol=1e-5)
    # an optimiser-wide max_kernel_norm for conv weights that carry none
    conv = nn.Conv2d(1, 2, 3, dtype=np.float64)
    conv.weight.data[...] = 1.0
    optim.Adam(conv.parameters(), lr=0.1, max_kernel_norm=0.5).step([np.zeros((2, 1, 3, 3)), np.zeros(2)])
    assert np.allclose(np.linalg.norm(conv.weight.data.reshape(2, -1), axis=1), 0.5)


def test_checkpoint_round_trip_rebuilds_the_conv_net(tmp_path):
    from minigrad import train
    model = nn.conv_maxout("small", in_shape=(8, 8), seed=2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", model, opt)
    loaded = checkpoint.load_checkpoint(path).model
    x = np.random.default_rng(0).random((3, 64), dtype=np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert loaded.layers[1].weight.max_norm == 0.9  # the preset's per-layer limits come back with it
