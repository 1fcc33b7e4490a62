"""Engine semantics: the graph, grad(), backward(), no_grad, errors, pruning, dtypes, devices."""
import gc

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad import functional as F
from minigrad.tensor import Op, Tensor, grad, is_grad_enabled, no_grad


def t64(values, requires_grad=True, device="cpu"):
    return Tensor(backend.to_device(np.asarray(values, dtype=np.float64), device),
                  requires_grad=requires_grad)


def numpy_of(t):
    return backend.as_numpy(t.data)


# --- accumulation and broadcasting ------------------------------------------------------
def test_fan_out_accumulates_gradients(device):
    x = t64([0.5, -1.0, 2.0], device=device)
    a = t64([3.0, 4.0, 5.0], requires_grad=False, device=device)
    # x feeds three ops: x*a, and both operands of x*x
    (g,) = grad((x * a + x * x).sum(), x)
    np.testing.assert_allclose(numpy_of(g), [3 + 1.0, 4 - 2.0, 5 + 4.0])
    # the same tensor consumed by three separate subgraphs
    (g,) = grad(F.sum(x) + F.sum(x * x) + F.sum(F.exp(x)), x)
    xv = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(numpy_of(g), 1 + 2 * xv + np.exp(xv))


@pytest.mark.parametrize("bias_shape", [(3,), (1, 3), (4, 1), ()])
def test_broadcasting_is_undone_in_the_gradient(device, bias_shape):
    rng = np.random.default_rng(0)
    x = t64(rng.standard_normal((4, 3)), device=device)
    b = t64(rng.standard_normal(bias_shape), device=device)
    w = rng.standard_normal((4, 3))
    gx, gb = grad(((x + b) * t64(w, False, device)).sum(), [x, b])
    assert gx.shape == (4, 3) and gb.shape == bias_shape
    expected = {(3,): w.sum(0), (1, 3): w.sum(0, keepdims=True), (4, 1): w.sum(1, keepdims=True),
                (): w.sum()}[bias_shape]
    np.testing.assert_allclose(numpy_of(gb), expected)
    np.testing.assert_allclose(numpy_of(gx), w)


# --- create_graph ------------------------------------------------------------------------
def test_create_graph_gives_a_differentiable_gradient(device):
    x = t64([-1.5, 0.5, 2.0], device=device)
    (g,) = grad((x ** 3).sum(), x, create_graph=True)
    assert g.requires_grad
    np.testing.assert_allclose(numpy_of(g), 3 * np.array([-1.5, 0.5, 2.0]) ** 2)
    (h,) = grad(g.sum(), x)
    np.testing.assert_allclose(numpy_of(h), 6 * np.array([-1.5, 0.5, 2.0]))
    (h3,) = grad(grad(g.sum(), x, create_graph=True)[0].sum(), x)  # third order: 6
    np.testing.assert_allclose(numpy_of(h3), [6.0, 6.0, 6.0])


def test_without_create_graph_the_gradient_is_a_constant(device):
    x = t64([1.0, 2.0], device=device)
    (g,) = grad((x ** 3).sum(), x)
    assert not g.requires_grad and g._op is None
    with pytest.raises(RuntimeError, match="create_graph"):
        grad(g.sum(), x)


def test_create_graph_under_no_grad_records_nothing():
    x = t64([1.0, 2.0])
    y = (x ** 3).sum()
    with no_grad():
        (g,) = grad(y, x, create_graph=True)
    assert not g.requires_grad


# --- no_grad, detach ------------------------------------------------------------------------
def test_no_grad_records_nothing_and_restores_the_switch():
    x = t64([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2 + F.exp(x)
    assert is_grad_enabled()
    assert not y.requires_grad and y._op is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        grad(y.sum(), x)
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()


def test_detach_stops_the_gradient(device):
    x = t64([1.0, -2.0, 3.0], device=device)
    d = x.detach()
    assert not d.requires_grad and d._op is None
    np.testing.assert_array_equal(numpy_of(d), numpy_of(x))
    assert d.device == device
    (g,) = grad((d * x).sum(), x)  # d is a constant: d(d·x)/dx = d, not 2x
    np.testing.assert_allclose(numpy_of(g), [1.0, -2.0, 3.0])


# --- Tensor.backward -------------------------------------------------------------------------
def test_backward_accumulates_into_grad(device):
    x = t64([1.0, 2.0, 3.0], device=device)
    w = t64([0.5, 0.5, 0.5], device=device)
    c = t64([9.0, 9.0, 9.0], requires_grad=False, device=device)
    loss = (x * x * w + c).sum()
    loss.backward()
    np.testing.assert_allclose(numpy_of(x.grad), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(numpy_of(w.grad), [1.0, 4.0, 9.0])
    assert c.grad is None
    loss.backward()
    np.testing.assert_allclose(numpy_of(x.grad), [2.0, 4.0, 6.0])
    np.testing.assert_allclose(numpy_of(w.grad), [2.0, 8.0, 18.0])
    assert x.grad.device == device and x.grad.dtype == np.float64


def test_backward_of_a_non_scalar_takes_the_upstream_gradient():
    x = t64([1.0, 2.0])
    y = x * x
    with pytest.raises(RuntimeError, match="grad_outputs"):
        y.backward()
    y.backward(Tensor(np.array([1.0, 10.0])))
    np.testing.assert_allclose(numpy_of(x.grad), [2.0, 40.0])


# --- deep graphs ------------------------------------------------------------------------------
def test_deep_chain_has_no_recursion_limit():
    x = t64([1.0, 2.0])
    y = x
    for _ in range(5000):
        y = y * 1.0001
    (g,) = grad(y.sum(), x)
    np.testing.assert_allclose(numpy_of(g), [1.0001 ** 5000] * 2, rtol=1e-10)
    del y, g
    gc.collect()


def test_deep_chain_second_order():
    x = t64([0.5, -1.0])
    y = x
    for _ in range(1700):  # ~5000 ops: y = x + 1700 * 1e-3 x²
        y = y + (x * x) * 1e-3
    (g,) = grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(numpy_of(g), 1 + 3.4 * np.array([0.5, -1.0]), rtol=1e-10)
    (h,) = grad(g.sum(), x)
    np.testing.assert_allclose(numpy_of(h), [3.4, 3.4], rtol=1e-10)


# --- errors ----------------------------------------------------------------------------------------
def test_non_scalar_output_needs_grad_outputs():
    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad_outputs"):
        grad(x * 2, x)


def test_input_that_does_not_reach_the_output():
    x, unused = t64([1.0, 2.0]), t64([3.0])
    with pytest.raises(RuntimeError, match="does not reach"):
        grad((x * 2).sum(), [x, unused])
    gx, gu = grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(numpy_of(gx), [2.0, 2.0])


def test_input_that_does_not_require_grad():
    x, c = t64([1.0, 2.0]), t64([1.0, 2.0], requires_grad=False)
    with pytest.raises(RuntimeError, match="input 1 does not require grad"):
        grad((x * c).sum(), [x, c])


def test_grad_outputs_must_match_the_outputs():
    x = t64([1.0, 2.0])
    y = x * 3
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        grad(y, x, grad_outputs=Tensor(np.ones(3)))
    with pytest.raises(ValueError, match="2 grad_outputs"):
        grad(y, x, grad_outputs=[Tensor(np.ones(2)), Tensor(np.ones(2))])


def test_several_outputs_sum_their_vector_jacobian_products():
    x = t64([1.0, 2.0])
    gx = grad([x * 3, (x * x).sum()], x, grad_outputs=[Tensor(np.array([1.0, 2.0])), None])
    np.testing.assert_allclose(numpy_of(gx[0]), [3 + 2.0, 6 + 4.0])


BINARY_OPS = {
    "add": F.add, "sub": F.sub, "mul": F.mul, "div": F.div, "maximum": F.maximum,
    "minimum": F.minimum, "matmul": F.matmul, "power": F.power,
    "where": lambda a, b: F.where(np.array([True, False]), a, b),
    "concatenate": lambda a, b: F.concatenate([a, b]),
}


@pytest.mark.parametrize("op", BINARY_OPS.values(), ids=BINARY_OPS.keys())
def test_float32_meeting_float64_is_a_type_error(op):
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0], dtype=np.float64), requires_grad=True)
    with pytest.raises(TypeError, match="float32|float64"):
        op(a, b)
    with pytest.raises(TypeError, match="float32|float64"):
        op(b, a)


def test_numpy_meeting_the_strict_device_is_a_type_error_naming_both():
    host = Tensor(np.ones((2, 3)), requires_grad=True)
    dev = Tensor(backend.to_device(np.ones((2, 3)), "strict"), requires_grad=True)
    for a, b in [(host, dev), (dev, host)]:
        with pytest.raises(TypeError) as info:
            a + b
        assert "NumPy array" in str(info.value) and "strict-device array" in str(info.value)
    with pytest.raises(TypeError, match="NumPy array.*strict-device array|strict-device array.*NumPy array"):
        backend.get_array_module(np.ones(3), backend.to_device(np.ones(3), "strict"))
    # the double itself refuses, like CuPy, at the raw-array level
    with pytest.raises(TypeError, match="strict"):
        np.ones(3) + backend.to_device(np.ones(3), "strict")
    # Python scalars and 0-d host arrays go with anything
    assert backend.get_array_module(np.float64(2.0), np.array(1.0), dev.data) is backend.strict
    assert (dev * 2.0).device == "strict"


@pytest.mark.parametrize("data", [np.array([1, 2]), [1, 2], np.array([True, False])])
def test_integer_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="floating"):
        Tensor(data, requires_grad=True)


def test_requires_grad_cannot_be_turned_off_on_a_non_leaf():
    y = t64([1.0]) * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


class _NotTwice(Op):
    differentiable = False

    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return (gy * 2,)


def test_an_op_without_second_derivative_refuses_create_graph():
    x = t64([1.0, 2.0])
    (g,) = grad(_NotTwice.apply(x).sum(), x)
    np.testing.assert_allclose(numpy_of(g), [2.0, 2.0])
    with pytest.raises(RuntimeError, match="_NotTwice cannot be differentiated twice"):
        grad(_NotTwice.apply(x).sum(), x, create_graph=True)


class _WrongShape(Op):
    def forward(self, x):
        return x.sum()

    def backward(self, gy):
        return (gy,)  # forgot to broadcast back to the input's shape


def test_a_gradient_of_the_wrong_shape_is_refused():
    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"_WrongShape.backward.*shape \(\)"):
        grad(_WrongShape.apply(x), x)


class _OwnInit(Op):
    """An op with its own __init__: Op.apply must still run it (its fast path is for Op.__init__ alone)."""
    def __init__(self, **params):
        super().__init__(**params)
        self.scale = 3.0

    def forward(self, x):
        return x * (self.scale * self.k)

    def backward(self, gy):
        return (gy * (self.scale * self.k),)


def test_apply_runs_an_ops_own_init_and_keeps_its_parameters():
    x = t64([1.0, 2.0])
    y = _OwnInit.apply(x, k=2.0)
    np.testing.assert_allclose(numpy_of(y), [6.0, 12.0])
    (g,) = grad(y.sum(), x)
    np.testing.assert_allclose(numpy_of(g), [6.0, 6.0])
    assert y._op.k == 2.0 and _NotTwice.apply(x)._op.__dict__.keys() >= {"inputs", "needs_grad", "_out"}


# --- pruning: only what leads to a requested input is evaluated ------------------------------
class _Probe(Op):
    """y = a·b, recording which input gradients the engine asked for."""
    log: list = []

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        _Probe.log.append(self.needs_grad)
        a, b = self.inputs
        return (gy * b if self.needs_grad[0] else None, gy * a if self.needs_grad[1] else None)


class _CountingIdentity(Op):
    calls = 0

    def forward(self, w):
        return w.copy()

    def backward(self, gy):
        _CountingIdentity.calls += 1
        return (gy,)


def test_grad_evaluates_only_the_requested_paths():
    _Probe.log.clear()
    _CountingIdentity.calls = 0
    x = t64([1.0, 2.0])
    w = t64([3.0, 4.0])  # a "parameter"
    w_used = _CountingIdentity.apply(w)
    loss = _Probe.apply(x, w_used).sum() + (_CountingIdentity.apply(w) ** 2).sum()
    (gx,) = grad(loss, [x])
    np.testing.assert_allclose(numpy_of(gx), [3.0, 4.0])
    assert _CountingIdentity.calls == 0, "a parameter-only branch was differentiated"
    assert _Probe.log == [(True, False)], "the gradient of the parameter was asked for"
    (gw,) = grad(loss, [w])
    np.testing.assert_allclose(numpy_of(gw), [1.0 + 6.0, 2.0 + 8.0])
    assert _CountingIdentity.calls == 2 and _Probe.log[-1] == (False, True)


# --- dtypes ----------------------------------------------------------------------------------------
def _f32(rng, shape, positive=False):
    v = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    return Tensor(v.astype(np.float32), requires_grad=True)


FLOAT32_CASES = {
    "add_broadcast": ([(3, 4), (4,)], lambda a, b: (a + b) * (a + b)),
    "mul_div_sub": ([(3, 4), (3, 1)], lambda a, b: (a * b - a) / (b * b + 1.0)),
    "power_scalar": ([(3, 4)], lambda a: (a * a + 0.5) ** 1.5),
    "power_tensor": ([(3, 4), (3, 4)], lambda a, b: F.power(a * a + 0.5, b)),
    "matmul": ([(3, 4), (4, 2)], F.matmul),
    "exp_log_sqrt": ([(3, 4)], lambda a: F.log(F.exp(a) + F.sqrt(a * a + 1.0))),
    "tanh_sigmoid_softplus": ([(3, 4)], lambda a: F.tanh(a) * F.sigmoid(a) + F.softplus(a)),
    "max_mean": ([(3, 4)], lambda a: F.max(a * a, axis=1) + F.mean(a * a, axis=0).sum()),
    "maximum_minimum_where": ([(3, 4), (3, 4)], lambda a, b: F.maximum(a * b, a) +
                              F.minimum(a * a, b * b) + F.where(np.eye(3, 4, dtype=bool), a * a, 0.0)),
    "getitem_concat": ([(3, 4)], lambda a: F.concatenate([a[np.array([0, 0, 2])] ** 2, a[1:] * a[1:]])),
    "log_softmax_logsumexp": ([(3, 4)], lambda a: F.log_softmax(a * a) + F.logsumexp(a * a, keepdims=True)),
    "cross_entropy": ([(3, 4)], lambda a: F.cross_entropy(a * a, np.array([0, 3, 1]))),
    "maxout": ([(3, 6)], lambda a: F.maxout(a * a, pieces=3)),
    "lp_norm": ([(3, 4)], lambda a: F.lp_norm(a, 3, axis=1) + F.lp_norm(a, 1.5) + F.lp_norm(a, np.inf)),
}


@pytest.mark.parametrize("name", FLOAT32_CASES)
def test_float32_stays_float32_through_double_backward(name):
    shapes, f = FLOAT32_CASES[name]
    rng = np.random.default_rng(1)
    xs = [_f32(rng, s) for s in shapes]
    out = f(*xs)
    assert out.dtype == np.float32
    v = Tensor(rng.standard_normal(out.shape).astype(np.float32))
    gs = grad(out, xs, grad_outputs=v, create_graph=True, allow_unused=True)
    for x, g in zip(xs, gs):
        assert g.dtype == np.float32 and np.all(np.isfinite(numpy_of(g)))
    live = [g for g in gs if g.requires_grad]
    assert live, "the backward pass recorded no graph"
    second = grad(sum((g * g).sum() for g in live), xs, allow_unused=True)
    for h in second:
        assert h is None or (h.dtype == np.float32 and np.all(np.isfinite(numpy_of(h))))
    assert any(h is not None for h in second)


SCALAR_EXPRESSIONS = {
    "x*2.0": lambda x: x * 2.0, "2.0*x": lambda x: 2.0 * x, "x+1.5": lambda x: x + 1.5,
    "1.0-x": lambda x: 1.0 - x, "x/3.0": lambda x: x / 3.0, "3.0/x": lambda x: 3.0 / x,
    "x**2.0": lambda x: x ** 2.0, "2.0**x": lambda x: 2.0 ** x, "x*2": lambda x: x * 2,
    "x-1": lambda x: x - 1, "maximum(x,0.0)": lambda x: F.maximum(x, 0.0),
    "maximum(0.0,x)": lambda x: F.maximum(0.0, x), "minimum(x,1.0)": lambda x: F.minimum(x, 1.0),
    "minimum(1.0,x)": lambda x: F.minimum(1.0, x),
    "where(c,x,0.0)": lambda x: F.where(np.array([True, False]), x, 0.0),
}


@pytest.mark.parametrize("expr", SCALAR_EXPRESSIONS.values(), ids=SCALAR_EXPRESSIONS.keys())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_do_not_promote(expr, dtype):
    x = Tensor(np.array([1.0, 2.0], dtype=dtype), requires_grad=True)
    y = expr(x)
    assert y.dtype == dtype
    (g,) = grad(y.sum(), x)
    assert g.dtype == dtype


def test_python_floats_make_float32_and_arrays_keep_their_dtype():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.array([1.0])).dtype == np.float64
    assert Tensor(np.array([1.0]), dtype=np.float32).dtype == np.float32


# --- devices --------------------------------------------------------------------------------------
def test_results_and_gradients_stay_on_the_device(device):
    x = t64([[1.0, -2.0, 3.0], [0.5, 0.25, -1.0]], device=device)
    for y in [x[1], x[1, 2], x[:, 0], x.sum(), F.max(x), F.lp_norm(x, 3), x.sum() * 2.0]:
        assert y.device == device, f"result of shape {y.shape} left {device}"
        (g,) = grad(y.sum(), x)
        assert g.device == device, f"gradient for a result of shape {y.shape} left {device}"
    assert x.to(device).device == device


def test_to_and_back():
    x = t64([1.0, 2.0])
    s = x.to("strict")
    assert s.device == "strict" and s.requires_grad and s._op is None
    assert isinstance(s.data, backend.StrictArray)
    np.testing.assert_array_equal(s.to("cpu").numpy(), [1.0, 2.0])
    with pytest.raises(ValueError, match="device must be one of"):
        x.to("tpu")
    assert mg.as_numpy(s.data).__class__ is np.ndarray


def test_an_int64_array_does_not_promote_float32():
    # NumPy would silently make float32 * int64 a float64; minigrad refuses, naming both dtypes.
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float32 meeting int64"):
        x * np.arange(3)
    assert (x * np.array([True, False, True])).dtype == np.float32  # a mask keeps the dtype
    assert (x * 2).dtype == np.float32  # a Python int takes the tensor's dtype


# --- unrecorded fan-out sums in place, into arrays only the sweep holds -------------------------
class _Held(Op):
    """y = sum(w·c) with a held gradient: backward returns the same constant Tensor every time (as
    objective.HeldGradient hands on a gradient it holds)."""
    def forward(self, w):
        return (w * self.c).sum()

    def backward(self, gy):
        return (self.held,)


def _add_calls(monkeypatch):
    from minigrad import ops
    calls, forward = [], ops.Add.forward
    monkeypatch.setattr(ops.Add, "forward", lambda self, a, b: calls.append(a.shape) or forward(self, a, b))
    return calls


def test_unrecorded_fan_out_is_summed_in_place_with_the_same_bits(monkeypatch):
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    x, w = Tensor(x0), Tensor(w0, requires_grad=True)
    loss = (x @ w).sum() + ((x * 2) @ w).sum()
    calls = _add_calls(monkeypatch)
    (gw,) = grad(loss, w)
    assert calls == []  # the second product's share went into the first's array: no Add, no new array
    ones = np.ones((5, 4), np.float32)
    assert np.array_equal(gw.data, x0.T @ ones + (x0 * 2).T @ ones)
    (gw2,) = grad(loss, w, create_graph=True)  # recorded: the sum is an Add in the graph
    assert calls == [(3, 4)] and np.array_equal(gw2.data, gw.data)
    b = Tensor(np.zeros(4, np.float32), requires_grad=True)  # F.affine's three gradients are new arrays too
    loss = F.affine(x, w, b).sum() + F.affine(x * 2, w, b).sum()
    calls.clear()
    gw3, gb = grad(loss, [w, b])
    assert calls == [] and np.array_equal(gw3.data, gw.data) and np.array_equal(gb.data, np.full(4, 10, np.float32))


@pytest.mark.parametrize("first", ["through the Add", "direct"])
def test_a_gradient_handed_on_unchanged_is_never_summed_into(first):
    # t = a + b passes its (owned) gradient on to a and b as one array; a's other share must not land in b's.
    rng = np.random.default_rng(1)
    a, b = t64(rng.standard_normal((2, 3))), t64(rng.standard_normal((2, 3)))
    w1, w2 = Tensor(rng.standard_normal((3, 4))), Tensor(rng.standard_normal((3, 5)))
    terms = [((a + b) @ w1).sum(), (a @ w2).sum()]
    loss = terms[0] + terms[1] if first == "through the Add" else terms[1] + terms[0]
    ga, gb = grad(loss, [a, b])
    g1, g2 = np.ones((2, 4)) @ w1.data.T, np.ones((2, 5)) @ w2.data.T
    np.testing.assert_allclose(numpy_of(gb), g1, rtol=1e-15)
    np.testing.assert_allclose(numpy_of(ga), g1 + g2, rtol=1e-15)


@pytest.mark.parametrize("first", ["held", "product"])
def test_held_gradients_and_seeds_are_never_written_to(first):
    rng = np.random.default_rng(2)
    w = t64(rng.standard_normal((3, 4)))
    x, c = Tensor(rng.standard_normal((2, 3))), rng.standard_normal((3, 4))
    held = Tensor(rng.standard_normal((3, 4)))
    kept = held.data.copy()
    terms = [_Held.apply(w, c=c, held=held), (x @ w).sum()]
    loss = terms[0] + terms[1] if first == "held" else terms[1] + terms[0]
    expected = kept + x.data.T @ np.ones((2, 4))
    for _ in range(2):  # the same graph swept twice gives the same gradient
        (gw,) = grad(loss, w)
        np.testing.assert_allclose(numpy_of(gw), expected, rtol=1e-15)
        assert np.array_equal(held.data, kept)
    # a seed: y1's own seed is its first share, then y2 = y1·v's product adds to it
    y1 = x @ w
    seed1, seed2 = Tensor(np.ones((2, 4))), Tensor(np.ones((2, 2)))
    v = Tensor(rng.standard_normal((4, 2)))
    (g1,) = grad([y1, y1 @ v], [y1], [seed1, seed2]) if first == "held" else grad([y1 @ v, y1], [y1], [seed2, seed1])
    np.testing.assert_allclose(numpy_of(g1), 1 + np.ones((2, 2)) @ v.data.T, rtol=1e-15)
    assert np.array_equal(seed1.data, np.ones((2, 4))) and np.array_equal(seed2.data, np.ones((2, 2)))


@pytest.mark.parametrize("wrong", ["shape", "dtype"])
def test_a_backward_returning_a_wrong_gradient_is_named(wrong):
    # The sweep checks every gradient an op's backward returns against its input, and names the op.
    class Bad(Op):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            g = gy.data[:1] if wrong == "shape" else gy.data.astype(np.float64)
            return (mg.Tensor(g),)
    x = mg.Tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Bad\.backward returned a gradient of shape \(1,\)|Bad\.backward "
                                           r"returned a gradient of shape \(3,\) dtype float64"):
        mg.grad(Bad.apply(x).sum(), x)
