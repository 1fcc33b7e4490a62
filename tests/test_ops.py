"""Every op, declaratively: one table of specs, one property test per check.

Each row of ``SPECS`` says how to draw an op's inputs (shapes, including broadcasting
pairs, and a value domain that stays away from the op's kinks), how to call the op, and
a NumPy reference.  Three hypothesis properties run every row on every device:

- ``test_forward_matches_numpy``: the value, shape, dtype and device of the result;
- ``test_gradcheck``: the first derivative against central differences;
- ``test_gradgradcheck``: the second derivative, with respect to the inputs and to the
  upstream gradient (``gradgradcheck`` differentiates (x, v) ↦ ∂(vᵀf)/∂x).

All checks run in float64 with gradcheck's default tolerances (atol 1e-5, rtol 1e-3,
step 1e-6): every domain below keeps values in [-3, 3] and at least 1e-3 from a kink,
so the O(h²) truncation error and the O(ε/h) rounding error are both far below them.

Kinks are avoided by resampling single elements (``.filter`` on the element strategy)
or by ``assume()`` on whole draws (ties, distinct maxima, |a − b| > 1e-3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import functional as F
from minigrad import ops
from minigrad.backend import as_numpy, to_device
from minigrad.gradcheck import gradcheck, gradgradcheck
from minigrad.tensor import Tensor, grad

KINK = 1e-3  # minimum distance from a kink (0 for |x|, a tie for max)


# --- drawing inputs -------------------------------------------------------------------
def reals(lo=-3.0, hi=3.0, away_from_zero=0.0):
    """Bounded finite floats; ``away_from_zero`` resamples elements with |x| <= it."""
    s = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if away_from_zero:
        s = s.filter(lambda v: abs(v) > away_from_zero)
    return s


NONZERO = reals(away_from_zero=KINK)
POSITIVE = reals(0.2, 3.0)          # log, sqrt, the base of a tensor power
SAFE_DIVISOR = reals(away_from_zero=0.5)


def arrays(shape, elements=None, unique=False):
    # fill=nothing(): every element is drawn on its own (the default fills most of the
    # array with one repeated value, which would be nothing but ties).
    return hnp.arrays(np.float64, shape, elements=elements if elements is not None else reals(),
                      fill=st.nothing(), unique=unique)


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=3):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def min_gap(values) -> float:
    """Smallest distance between two entries (inf for fewer than two)."""
    v = np.sort(np.ravel(values))
    return float(np.min(np.diff(v))) if v.size > 1 else np.inf


def distinct(x, axis=None):
    """True when the entries along ``axis`` (all of them for None) are at least KINK apart."""
    if axis is None:
        return min_gap(x) > KINK
    s = np.sort(np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis]), axis=-1)
    return s.shape[-1] < 2 or float(np.min(np.diff(s, axis=-1))) > KINK


@st.composite
def unary(draw, elements=None, shape=None, unique=False):
    return (draw(arrays(draw(shape or shapes()), elements, unique)),), {}


@st.composite
def binary(draw, a_elements=None, b_elements=None):
    """Two arrays of mutually broadcastable shapes (scalars and size-1 axes included)."""
    sa, sb = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                     max_side=3)).input_shapes
    return (draw(arrays(sa, a_elements)), draw(arrays(sb, b_elements))), {}


@st.composite
def separated_pair(draw):
    """Broadcastable (a, b) with |a − b| > KINK everywhere: no tie for maximum/minimum."""
    (a, b), _ = draw(binary())
    assume(np.min(np.abs(a - b), initial=np.inf) > KINK)
    return (a, b), {}


@st.composite
def an_axis(draw, ndim, tuples=True, none=True):
    """None, an int (negative too) or a tuple of distinct axes of an ndim-array."""
    kinds = (["none"] if none or ndim == 0 else []) + (["int"] if ndim else []) \
        + (["tuple"] if tuples and ndim else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


@st.composite
def reduction(draw, elements=None, distinct_along_axis=False, min_dims=0):
    x = draw(arrays(draw(shapes(min_dims=min_dims)), elements, unique=distinct_along_axis))
    axis = draw(an_axis(x.ndim))
    if distinct_along_axis:  # the maximum of every reduced slice is unique
        assume(distinct(x))
    return (x,), {"axis": axis, "keepdims": draw(st.booleans())}


@st.composite
def broadcast_pair(draw):
    """(small, big): ``small`` broadcasts to ``big`` (leading axes dropped, some axes 1)."""
    big = draw(shapes(max_dims=3))
    drop = draw(st.integers(0, len(big)))
    small = tuple(1 if draw(st.booleans()) else n for n in big[drop:])
    return small, big


@st.composite
def power_int(draw):
    # c = 0 at x = 0 is covered by test_conventions (its derivative there is exactly 0)
    c = draw(st.sampled_from([1, 2, 3, -1, -2]))
    elements = reals(away_from_zero=0.3) if c < 0 else reals()
    (x,), _ = draw(unary(elements))
    return (x,), {"c": c}


@st.composite
def power_real(draw):
    (x,), _ = draw(unary(POSITIVE))
    return (x,), {"c": draw(reals(-2.0, 3.0))}


@st.composite
def matmul_case(draw, kind):
    n, k, m, b = (draw(st.integers(1, 3)) for _ in range(4))
    a_shape, b_shape = {
        "2d": ((n, k), (k, m)),
        "batched": draw(st.sampled_from([((b, n, k), (b, k, m)), ((b, n, k), (k, m)),
                                          ((n, k), (b, k, m)), ((1, n, k), (b, k, m))])),
        "1d": draw(st.sampled_from([((k,), (k, m)), ((n, k), (k,)), ((k,), (b, k, m)),
                                     ((b, n, k), (k,))])),
        "vec_vec": ((k,), (k,)),
    }[kind]
    return (draw(arrays(a_shape)), draw(arrays(b_shape))), {}


@st.composite
def affine_case(draw):
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    return (draw(arrays((n, k))), draw(arrays((k, m))), draw(arrays((m,)))), {}


@st.composite
def where_case(draw):
    sc, sa, sb = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                         max_side=3)).input_shapes
    cond = draw(hnp.arrays(np.bool_, sc))
    return (draw(arrays(sa)), draw(arrays(sb))), {"cond": cond}


@st.composite
def reshape_case(draw):
    (x,), _ = draw(unary())
    s = x.shape
    target = draw(st.sampled_from([(-1,), s[::-1], (1,) + s, s + (1,), (x.size, 1), ()]))
    assume(target != () or x.size == 1)
    return (x,), {"shape": target}


@st.composite
def transpose_case(draw):
    (x,), _ = draw(unary())
    axes = draw(st.none() | st.permutations(range(x.ndim)).map(tuple))
    return (x,), {"axes": axes}


@st.composite
def broadcast_to_case(draw):
    small, big = draw(broadcast_pair())
    return (draw(arrays(small)),), {"shape": big}


@st.composite
def sum_to_case(draw):
    small, big = draw(broadcast_pair())
    return (draw(arrays(big)),), {"shape": small}


@st.composite
def basic_index_case(draw):
    x = draw(arrays(draw(shapes(min_dims=1, max_side=4))))
    index = draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    return (x,), {"index": index}


@st.composite
def advanced_index_case(draw):
    """Integer-array indexing with repeated indices: rows, columns, and label gathering."""
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    x = draw(arrays((rows, cols)))
    picks = st.integers(1, 5)
    kind = draw(st.sampled_from(["rows", "cols", "gather"]))
    if kind == "rows":    # x[idx], idx like [2, 0, 2]
        index = np.array(draw(st.lists(st.integers(0, rows - 1), min_size=1, max_size=5)))
    elif kind == "cols":  # x[:, idx]
        index = (slice(None), np.array(draw(st.lists(st.integers(0, cols - 1), min_size=1,
                                                     max_size=5))))
    else:                 # x[arange(B), y] with y labels; rows may repeat too
        n = draw(picks)
        index = (np.array(draw(st.lists(st.integers(0, rows - 1), min_size=n, max_size=n))),
                 np.array(draw(st.lists(st.integers(0, cols - 1), min_size=n, max_size=n))))
    return (x,), {"index": index}


@st.composite
def concatenate_case(draw):
    base = list(draw(shapes(min_dims=1)))
    axis = draw(st.integers(-len(base), len(base) - 1))
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        base[axis] = draw(st.integers(1, 3))
        parts.append(draw(arrays(tuple(base))))
    return tuple(parts), {"axis": axis}


@st.composite
def softmax_case(draw, keepdims=False):
    x = draw(arrays(draw(shapes(min_dims=1))))
    params = {"axis": draw(st.integers(-x.ndim, x.ndim - 1))}
    if keepdims:
        params["keepdims"] = draw(st.booleans())
    return (x,), params


@st.composite
def cross_entropy_case(draw, reduction):
    batch, classes = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    logits = draw(arrays((batch, classes)))
    labels = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)),
                      dtype=np.int64)
    return (logits,), {"labels": labels, "reduction": reduction}


@st.composite
def maxout_case(draw):
    pieces, units = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    z = draw(arrays(lead + (pieces * units,), unique=True))
    # the winning piece of every unit is unique (no tie within a unit's group)
    assume(distinct(z.reshape(lead + (pieces, units)), axis=-2))
    return (z,), {"pieces": pieces}


@st.composite
def lp_norm_case(draw, p):
    p = draw(st.floats(1.0, 10.0, exclude_min=True, exclude_max=True)) if p == "random" else p
    # Coordinates stay away from 0 unless p is 2 or inf: |x| has a kink at 0 for p = 1; for
    # 1 < p < 2 the second derivative |x|^(p-2) blows up there; for p > 2 it is continuous but
    # not differentiable at 0, so central differences of the gradient lose their O(h²)
    # accuracy (error ~h^(p-2): 1e-3 for p = 2.5).  test_conventions covers x_i = 0 exactly.
    kinky = p not in (2.0, np.inf)
    x = draw(arrays(draw(shapes(min_dims=1)), NONZERO if kinky else reals(), unique=p == np.inf))
    axis = draw(an_axis(x.ndim))
    # the norm itself has a kink where a reduced slice is all 0 (‖x‖ is |x| for one element)
    assume(np.min(np_lp_norm(x, p, axis, False)) > KINK)
    if p == np.inf:  # the largest |x| of every reduced slice is unique
        assume(distinct(np.abs(x)))
    return (x,), {"p": p, "axis": axis, "keepdims": draw(st.booleans())}


# --- NumPy references -----------------------------------------------------------------------
def np_log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def np_cross_entropy(logits, labels, reduction):
    losses = -np_log_softmax(logits)[np.arange(len(labels)), labels]
    return losses.sum() if reduction == "sum" else losses.mean()


def np_sum_to(x, shape):
    y = x.sum(axis=tuple(range(x.ndim - len(shape))))
    for i, n in enumerate(shape):
        if n == 1:
            y = y.sum(axis=i, keepdims=True)
    return y


def np_lp_norm(x, p, axis, keepdims):
    a = np.abs(x)
    if p == np.inf:
        return a.max(axis=axis, keepdims=keepdims)
    return (a ** p).sum(axis=axis, keepdims=keepdims) ** (1 / p)


def np_getitem(x, index):
    return x[index]


# --- the table ----------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    name: str
    draw: st.SearchStrategy          # -> (tuple of float64 arrays, dict of constant params)
    fn: Callable                     # fn(*tensors, **params) -> Tensor
    ref: Callable                    # ref(*arrays, **params) -> ndarray
    marks: tuple = field(default=())

    def param(self):
        return pytest.param(self, id=self.name, marks=self.marks)


SPECS = [
    # arithmetic, with broadcasting
    Spec("add", binary(), lambda a, b: a + b, np.add),
    Spec("sub", binary(), lambda a, b: a - b, np.subtract),
    Spec("mul", binary(), lambda a, b: a * b, np.multiply),
    Spec("div", binary(b_elements=SAFE_DIVISOR), lambda a, b: a / b, np.divide),
    Spec("neg", unary(), lambda x: -x, np.negative),
    Spec("power_scalar_int", power_int(), F.power, lambda x, c: x ** float(c)),
    Spec("power_scalar_real", power_real(), F.power, lambda x, c: x ** c),
    Spec("power_tensor", binary(POSITIVE, reals(-2.0, 2.0)), F.power, np.power),
    Spec("matmul_2d", matmul_case("2d"), F.matmul, np.matmul),
    Spec("matmul_batched", matmul_case("batched"), F.matmul, np.matmul),
    Spec("matmul_1d", matmul_case("1d"), F.matmul, np.matmul),
    Spec("matmul_vec_vec", matmul_case("vec_vec"), F.matmul, np.matmul),
    # elementwise functions
    Spec("exp", unary(), F.exp, np.exp),
    Spec("log", unary(POSITIVE), F.log, np.log),
    Spec("sqrt", unary(POSITIVE), F.sqrt, np.sqrt),
    Spec("abs", unary(NONZERO), F.abs, np.abs),
    Spec("sign", unary(NONZERO), F.sign, np.sign),
    Spec("relu", unary(NONZERO), F.relu, lambda x: np.maximum(x, 0)),
    Spec("tanh", unary(), F.tanh, np.tanh),
    Spec("sigmoid", unary(), F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    Spec("softplus", unary(), F.softplus, lambda x: np.log1p(np.exp(x))),
    Spec("maximum", separated_pair(), F.maximum, np.maximum),
    Spec("minimum", separated_pair(), F.minimum, np.minimum),
    Spec("where", where_case(), lambda a, b, cond: F.where(cond, a, b),
         lambda a, b, cond: np.where(cond, a, b)),
    # reductions
    Spec("sum", reduction(), F.sum, np.sum),
    Spec("mean", reduction(), F.mean, np.mean),
    Spec("max", reduction(distinct_along_axis=True), F.max, np.max),
    Spec("logsumexp", softmax_case(keepdims=True), F.logsumexp,
         lambda x, axis, keepdims: np.log(np.exp(x).sum(axis=axis, keepdims=keepdims))),
    # shapes and indexing
    Spec("reshape", reshape_case(), F.reshape, np.reshape),
    Spec("transpose", transpose_case(), F.transpose, np.transpose),
    Spec("broadcast_to", broadcast_to_case(), F.broadcast_to, np.broadcast_to),
    Spec("sum_to", sum_to_case(), F.sum_to, np_sum_to),
    Spec("getitem_basic", basic_index_case(), F.getitem, np_getitem),
    Spec("getitem_advanced", advanced_index_case(), F.getitem, np_getitem),
    Spec("concatenate", concatenate_case(), lambda *xs, axis: F.concatenate(xs, axis),
         lambda *xs, axis: np.concatenate(xs, axis)),
    # neural-network ops
    Spec("log_softmax", softmax_case(), F.log_softmax, np_log_softmax),
    Spec("softmax", softmax_case(), F.softmax,
         lambda x, axis: np.exp(np_log_softmax(x, axis))),
    Spec("cross_entropy_mean", cross_entropy_case("mean"), F.cross_entropy, np_cross_entropy),
    Spec("cross_entropy_sum", cross_entropy_case("sum"), F.cross_entropy, np_cross_entropy),
    Spec("affine", affine_case(), F.affine, lambda x, w, b: x @ w + b),
    Spec("maxout", maxout_case(), F.maxout,
         lambda z, pieces: z.reshape(z.shape[:-1] + (pieces, -1)).max(axis=-2)),
] + [
    Spec(f"lp_norm_p={p}", lp_norm_case(p), F.lp_norm, np_lp_norm)
    for p in (1.0, 1.5, 2.0, 3.0, np.inf, "random")
]

PARAMS = [s.param() for s in SPECS]


# --- running a spec -------------------------------------------------------------------------
def on_device(obj, device):
    """Constant parameters (labels, masks, index arrays) move with the tensors."""
    if isinstance(obj, np.ndarray):
        return to_device(obj, device)
    if isinstance(obj, tuple):
        return tuple(on_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: on_device(v, device) for k, v in obj.items()}
    return obj


def setup(spec, device, data):
    arrays_, params = data.draw(spec.draw, label=spec.name)
    tensors = tuple(Tensor(to_device(a, device), requires_grad=True) for a in arrays_)
    device_params = on_device(params, device)

    def f(*xs):
        return spec.fn(*xs, **device_params)

    return arrays_, params, tensors, f


@pytest.mark.parametrize("spec", PARAMS)
@given(data=st.data())
def test_forward_matches_numpy(spec, device, data):
    arrays_, params, tensors, f = setup(spec, device, data)
    out = f(*tensors)
    expected = np.asarray(spec.ref(*arrays_, **params))
    assert isinstance(out, Tensor)
    assert out.device == device, f"{spec.name}: result left the device"
    assert out.dtype == np.float64
    assert out.shape == expected.shape
    assert out.requires_grad
    np.testing.assert_allclose(as_numpy(out.data), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", PARAMS)
@given(data=st.data())
def test_gradcheck(spec, device, data):
    _, _, tensors, f = setup(spec, device, data)
    assert gradcheck(f, tensors)
    # gradients come back on the inputs' device, in their dtype and shape
    out = f(*tensors)
    v = Tensor(to_device(np.ones(out.shape), device))
    for x, g in zip(tensors, grad(out, tensors, grad_outputs=v, allow_unused=True)):
        if g is not None:
            assert (g.device, g.dtype, g.shape) == (device, x.dtype, x.shape)
            assert not g.requires_grad  # no create_graph: a constant


@pytest.mark.parametrize("spec", PARAMS)
@given(data=st.data())
def test_gradgradcheck(spec, device, data):
    _, _, tensors, f = setup(spec, device, data)
    assert gradgradcheck(f, tensors)


# --- a fast path that must not change a bit ---------------------------------------------------
@given(data=st.data())
def test_sum_to_over_a_short_inner_axis_is_numpys_sum_to_the_bit(data):
    """SumTo sums a 2–7 long axis that is not the last one as whole-slice adds (Maxout's pieces): the
    result must be NumPy's own reduction bit for bit, in float32 and float64, in any memory layout."""
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    shape = data.draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    axis = data.draw(st.integers(0, len(shape) - 2))
    shape[axis] = data.draw(st.integers(2, 7))
    x = data.draw(hnp.arrays(dtype, shape, elements=st.floats(-1e6, 1e6, width=32)))
    if data.draw(st.booleans()):
        x = np.asfortranarray(x)
    target = tuple(1 if i == axis else n for i, n in enumerate(shape))
    ours = ops._sum_slices(x, axis)  # the fast path itself (SumTo takes it from 2¹⁸ entries up)
    assert ours.dtype == x.dtype
    assert np.array_equal(ours, x.sum(axis=axis, keepdims=True)), (shape, axis)


def test_sum_to_takes_the_slice_path_on_a_large_array_and_it_agrees():
    x = np.random.default_rng(0).standard_normal((20000, 2, 16)).astype(np.float32)
    calls = []
    real = ops._sum_slices
    ops._sum_slices = lambda *a: calls.append(a[1]) or real(*a)
    try:
        ours = F.sum_to(Tensor(x), (20000, 1, 16)).data
    finally:
        ops._sum_slices = real
    assert calls == [1] and np.array_equal(ours, x.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("order", ["C", "transposed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxout_mask_is_made_the_gradients_dtype_once_with_the_same_bits(order, dtype):
    # MaxOverPieces keeps its 0/1 mask as booleans until the first backward, which turns it into the
    # gradient's dtype once (a float multiply is faster, and a double backward multiplies by it again):
    # the routed gradient is the same to the bit every time, and h follows z's memory order.
    rng = np.random.default_rng(0)
    z0 = rng.standard_normal((6, 12)).astype(dtype)
    if order == "transposed":
        z0 = np.ascontiguousarray(z0.T).T  # (6, 12) whose transpose is C-contiguous
    z = Tensor(z0, requires_grad=True)
    h = F.maxout(z, 3)
    assert h.data.flags.f_contiguous == (order == "transposed") and h._op.weights.dtype == bool
    gh = rng.standard_normal(h.shape).astype(dtype)
    hit = z0.reshape(6, 3, 4) == z0.reshape(6, 3, 4).max(axis=1, keepdims=True)
    expected = (gh.reshape(6, 1, 4) * hit).reshape(6, 12)
    for _ in range(2):
        (g,) = grad([h], [z], [Tensor(gh)])
        assert h._op.weights.dtype == dtype
        assert g.dtype == dtype and np.array_equal(np.ascontiguousarray(g.data).view(np.uint8), expected.view(np.uint8))


def test_broadcast_to_copies_a_small_host_result_and_views_a_large_one():
    # Up to 4096 entries BroadcastTo returns a copy (NumPy's broadcast_to costs 20-30 us a call between a
    # step's GEMMs); above, the read-only view it always was (no memory).  Same values, same errors.
    small = np.arange(3.0, dtype=np.float32).reshape(1, 3)
    y = F.broadcast_to(Tensor(small), (4, 3)).data
    assert y.base is None and y.flags.writeable and np.array_equal(y, np.broadcast_to(small, (4, 3)))
    big = np.arange(2049.0)
    y = F.broadcast_to(Tensor(big), (2, 2049)).data
    assert not y.flags.writeable and y.strides[0] == 0 and np.array_equal(y, np.broadcast_to(big, (2, 2049)))
    for shape, target in (((3,), (4,)), ((1, 3), (3,)), ((2, 1), (3,))):
        with pytest.raises(ValueError) as ours:
            F.broadcast_to(Tensor(np.ones(shape)), target)
        with pytest.raises(ValueError) as numpy:
            np.broadcast_to(np.ones(shape), target)
        assert str(ours.value) == str(numpy.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_is_matmul_then_add_to_the_bit_at_first_and_second_order(dtype):
    # F.affine (nn.Linear's x @ W + b as one op, the bias added into the product in place) gives the same
    # bits as the two ops it replaces: its value, its gradients, and the gradients of a penalty on ∇x,
    # with W plain and W a transposed view (MatMul's layout rule for its gradient).
    rng = np.random.default_rng(1)
    x0, b0 = rng.standard_normal((5, 7)).astype(dtype), rng.standard_normal(4).astype(dtype)
    for transposed, w0 in ((False, rng.standard_normal((7, 4)).astype(dtype)),
                           (True, rng.standard_normal((4, 7)).astype(dtype).T)):
        results = []
        for fn in (F.affine, lambda x, w, b: x @ w + b):
            x, w, b = (Tensor(a.copy(order="K"), requires_grad=True) for a in (x0, w0, b0))
            y = fn(x, w, b)
            gx, gw, gb = grad((y * y).sum(), [x, w, b], create_graph=True)
            second = grad((gx * gx).sum() + (gw * gb[None, :]).sum(), [x, w, b])
            results.append([y, gx, gw, gb, *second])
        assert type(F.affine(x, w, b)._op).__name__ == "Affine" and w.data.flags.c_contiguous != transposed
        for ours, theirs in zip(*results):
            assert ours.dtype == dtype and np.array_equal(ours.data, theirs.data) and \
                np.array_equal(np.signbit(ours.data), np.signbit(theirs.data))


def test_affine_leaves_what_is_not_a_batch_of_rows_to_matmul_and_add():
    x1, w = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones((3, 2)))
    y = F.affine(x1, w, Tensor(np.ones(2)))  # a vector: matmul's 1-d rule, then Add
    assert y.shape == (2,) and type(y._op).__name__ == "Add"
    with pytest.raises(TypeError, match="dtypes differ"):
        F.affine(Tensor(np.ones((2, 3), np.float32)), w, Tensor(np.ones(2)))
