"""The Python API at its edges (issue 20): every number the library accepts is checked where it is
accepted, and a bad one gets one line of minigrad's own (``MinigradError``) naming the function, the
argument and what was expected; never a traceback from deep inside, a silent default, or a wrong result.

Three parts: a table of rows (one or more per case of the issue), hypothesis properties that draw
values from inside and outside each domain (non-finite, negative, zero, huge, non-numeric) and check
that exactly the good ones are accepted, and the numerics at the dtype's edge (``worst_case``,
``per_example_norm`` and ``project`` exact for finite inputs up to the dtype's maximum).
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import datasets, nn, ops, optim
from minigrad import functional as F
from minigrad import perturbations as P
from minigrad import regularizers as R
from minigrad.errors import InvalidArgument, InvalidDType, MinigradError
from minigrad.members import MEMBERS, Strengths, member


def _param(shape=(2, 2)):
    return mg.Tensor(np.ones(shape), requires_grad=True)


def _data(n=10):
    rng = np.random.default_rng(0)
    return datasets.Dataset(rng.random((n, 4)), np.arange(n) % 3, 3)


def _model():
    return nn.maxout_mlp(4, (5,), 2, 3, seed=0)


_EMPTY_X, _EMPTY_Y = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
_x = np.ones(3)
_sum_sq = lambda a: ops.sum(a * a)  # noqa: E731

ROWS = {
    # optimisers: lr, momentum, betas, eps, schedules, a parameter listed twice
    "SGD lr nan": (lambda: optim.SGD([_param()], lr=float("nan")), "SGD: lr must be a finite number > 0, got nan"),
    "SGD lr -0.1": (lambda: optim.SGD([_param()], lr=-0.1), "SGD: lr must be a finite number > 0, got -0.1"),
    "SGD lr 0": (lambda: optim.SGD([_param()], lr=0), "SGD: lr must be a finite number > 0, got 0"),
    "SGD lr inf": (lambda: optim.SGD([_param()], lr=math.inf), "lr must be a finite number > 0, got inf"),
    "SGD lr a string": (lambda: optim.SGD([_param()], lr="0.1"), "lr must be a finite number > 0, got '0.1'"),
    "SGD momentum 1.5": (lambda: optim.SGD([_param()], lr=0.1, momentum=1.5),
                         r"SGD: momentum must be a number in \[0, 1\), got 1.5"),
    "SGD momentum 1": (lambda: optim.SGD([_param()], lr=0.1, momentum=1), r"momentum must be a number in \[0, 1\)"),
    "SGD momentum -0.1": (lambda: optim.SGD([_param()], lr=0.1, momentum=-0.1), r"momentum must be a number in"),
    "SGD momentum nan": (lambda: optim.SGD([_param()], lr=0.1, momentum=float("nan")), "momentum must be"),
    "SGD momentum ramp to 1.2": (lambda: optim.SGD([_param()], lr=0.1, momentum=optim.LinearRamp(0.5, 1.2, 3)),
                                 r"the greatest value of momentum's LinearRamp must be a number in \[0, 1\), "
                                 r"got 1.2"),
    "SGD lr ramp below 0": (lambda: optim.SGD([_param()], lr=optim.LinearRamp(0.1, -0.1, 3)),
                            "the least value of lr's LinearRamp must be a finite number >= 0, got -0.1"),
    "SGD lr Constant(0)": (lambda: optim.SGD([_param()], lr=optim.Constant(0.0)), "lr's Constant is 0 throughout"),
    "SGD a parameter twice": (lambda: (lambda w: optim.SGD([w, _param((3,)), w], lr=0.1))(_param()),
                              r"SGD: parameter 2 \(float64\[2, 2\]\) is parameter 0 again"),
    "Adam a parameter twice": (lambda: (lambda w: optim.Adam([w, w]))(_param()), "Adam: parameter 1 .* again"),
    "SGD no parameters": (lambda: optim.SGD([], lr=0.1), "SGD: got an empty parameter list"),
    "SGD a non-parameter": (lambda: optim.SGD([np.ones(2)], lr=0.1), "parameter 0 is not a Tensor"),
    "Adam lr nan": (lambda: optim.Adam([_param()], lr=float("nan")), "Adam: lr must be a finite number > 0"),
    "Adam beta2 1": (lambda: optim.Adam([_param()], betas=(0.9, 1.0)),
                     r"Adam: betas\[1\] must be a number in \[0, 1\), got 1.0"),
    "Adam beta1 -0.1": (lambda: optim.Adam([_param()], betas=(-0.1, 0.9)), r"betas\[0\] must be"),
    "Adam beta nan": (lambda: optim.Adam([_param()], betas=(0.9, float("nan"))), r"betas\[1\] must be"),
    "Adam betas one number": (lambda: optim.Adam([_param()], betas=0.9), r"betas must be a pair \(beta1, beta2\)"),
    "Adam eps 0": (lambda: optim.Adam([_param()], eps=0), "Adam: eps must be a finite number > 0, got 0"),
    "Adam eps inf": (lambda: optim.Adam([_param()], eps=math.inf), "Adam: eps must be a finite number > 0"),
    "ExponentialDecay factor 0": (lambda: optim.ExponentialDecay(0.1, 0), r"factor must be a number in \(0, 1\]"),
    "ExponentialDecay start nan": (lambda: optim.ExponentialDecay(float("nan"), 0.9), "start must be"),
    "ExponentialDecay minimum -1": (lambda: optim.ExponentialDecay(0.1, 0.9, minimum=-1), "minimum must be"),
    "LinearRamp length 0": (lambda: optim.LinearRamp(0.5, 0.7, 0), "LinearRamp: length must be an integer >= 1"),
    "LinearRamp length 2.5": (lambda: optim.LinearRamp(0.5, 0.7, 2.5), "length must be an integer"),
    "LinearRamp delay -1": (lambda: optim.LinearRamp(0.5, 0.7, 3, delay=-1), "delay must be an integer >= 0"),
    "LinearRamp end inf": (lambda: optim.LinearRamp(0.5, math.inf, 3), "end must be a finite number"),
    "schedule per batch": (lambda: optim.LinearRamp(0, 1, 3, per="batch"), "per must be 'step' or 'epoch'"),
    # datasets
    "head 0": (lambda: datasets.head(_data(), 0), "head: n must be an integer >= 1, got 0"),
    "head -5": (lambda: datasets.head(_data(), -5), "head: n must be an integer >= 1, got -5"),
    "head 2.5": (lambda: datasets.head(_data(), 2.5), "head: n must be an integer >= 1, got 2.5"),
    "head '3'": (lambda: datasets.head(_data(), "3"), "head: n must be an integer"),
    "head True": (lambda: datasets.head(_data(), True), "head: n must be an integer"),
    "train_valid_split nan": (lambda: datasets.train_valid_split(_data(), float("nan")),
                              r"valid_fraction must be a number in \(0, 1\), got nan"),
    "train_valid_split seed -1": (lambda: datasets.train_valid_split(_data(), 0.5, seed=-1),
                                  "train_valid_split: seed must be an integer >= 0"),
    "synthetic n 2.5": (lambda: datasets.synthetic(n=2.5), "synthetic: n must be an integer >= 1, got 2.5"),
    "synthetic n_classes 0": (lambda: datasets.synthetic(n_classes=0), "n_classes must be an integer >= 1"),
    "synthetic separation nan": (lambda: datasets.synthetic(separation=float("nan")), "separation must be"),
    "synthetic seed -1": (lambda: datasets.synthetic(seed=-1), "synthetic: seed must be an integer >= 0"),
    "load_digits test_fraction 1": (lambda: datasets.load_digits(test_fraction=1.0),
                                    r"load_digits: test_fraction must be a number in \(0, 1\)"),
    "minibatches seed -1": (lambda: datasets.minibatches(_data(), 2, seed=-1), "minibatches: seed .* >= 0"),
    # Strengths, in each member's units
    "Strengths eps2 0": (lambda: Strengths(eps2=0.0), r"Strengths: eps2 \(None for the default\) must be a "
                                                      r"finite number > 0, got 0.0"),
    "Strengths eps1 0": (lambda: Strengths(eps1=0), "Strengths: eps1 .* > 0, got 0"),
    "Strengths eps 5": (lambda: Strengths(eps=5), r"Strengths: eps \(a pixel budget\) must be a number in \(0, 1\]"),
    "Strengths eps 0": (lambda: Strengths(eps=0.0), r"eps \(a pixel budget\) must be a number in \(0, 1\]"),
    "Strengths eps nan": (lambda: Strengths(eps=float("nan")), r"eps \(a pixel budget\) must be"),
    "Strengths eps2 inf": (lambda: Strengths(eps2=math.inf), "eps2 .* must be a finite number > 0, got inf"),
    "Strengths gamma -1": (lambda: Strengths(gamma=-1), "Strengths: gamma must be a finite number >= 0, got -1"),
    "Strengths l2 inf": (lambda: Strengths(l2=math.inf), "Strengths: l2 must be a finite number >= 0"),
    "Strengths beta_l1 a string": (lambda: Strengths(beta_l1="0.1"), "beta_l1 must be a finite number >= 0"),
    "Strengths seed -1": (lambda: Strengths(seed=-1), "Strengths: seed must be an integer >= 0, got -1"),
    "Strengths seed 1.5": (lambda: Strengths(seed=1.5), "Strengths: seed must be an integer >= 0, got 1.5"),
    # diffops and draw
    "hessian max_size nan": (lambda: mg.hessian(_sum_sq, _x, max_size=float("nan")),
                             "hessian: max_size must be an integer >= 1, got nan"),
    "hessian max_size 0": (lambda: mg.hessian(_sum_sq, _x, max_size=0), "max_size must be an integer >= 1, got 0"),
    "hessian max_size 2.5": (lambda: mg.hessian(_sum_sq, _x, max_size=2.5), "max_size must be an integer"),
    "jacobian max_size inf": (lambda: mg.jacobian(lambda a: a, _x, max_size=math.inf),
                              "jacobian: max_size must be an integer >= 1, got inf"),
    "jacobian by diagonal": (lambda: mg.jacobian(lambda a: a, _x, by="diagonal"), "by must be 'rows' or 'columns'"),
    "grad_fn argnums 0.5": (lambda: mg.grad_fn(_sum_sq, argnums=0.5), "grad_fn: argnums .* must be an integer"),
    "grad_fn f not callable": (lambda: mg.grad_fn(3.0), "grad_fn: f must be a function"),
    "draw 3.0": (lambda: mg.draw(3.0), "draw: outputs must be a Tensor or a list of Tensors, got 3.0"),
    "draw a list holding a number": (lambda: mg.draw([mg.Tensor([1.0]), 3.0]), "draw: outputs must be a Tensor"),
    "draw max_nodes 0": (lambda: mg.draw(_param() * 2, max_nodes=0), "draw: max_nodes must be an integer >= 1"),
    # the Tensor constructor: real numbers only
    "Tensor of strings": (lambda: mg.Tensor(["a", "b"]), "Tensor: data must be real numbers .* got strings"),
    "Tensor(None)": (lambda: mg.Tensor(None), "got Python objects"),
    "Tensor of complex": (lambda: mg.Tensor(np.array([1 + 2j])), "got complex numbers"),
    "Tensor dtype complex": (lambda: mg.Tensor(np.ones(2), dtype=np.complex64), "got complex numbers"),
    "Tensor text parsed by dtype": (lambda: mg.Tensor(["1"], dtype=np.float32), "got strings"),
    "Tensor of bytes": (lambda: mg.Tensor(b"ab"), "got bytes"),
    "Tensor ragged": (lambda: mg.Tensor([[1.0], [1.0, 2.0]]), "must be a rectangular array of real numbers"),
    "Tensor mixed objects": (lambda: mg.Tensor([1.0, None]), "got Python objects"),
    "Tensor 1e300 into float32": (lambda: mg.Tensor([1.0, 1e300]), "Tensor: 1e[+]300 is beyond float32's range"),
    "Tensor datetime": (lambda: mg.Tensor(np.array(["2020-01-01"], dtype="datetime64[D]")), "got dtype datetime64"),
    "complex cannot require grad": (lambda: mg.Tensor(np.array([1j]), requires_grad=True), "got complex numbers"),
    "bool cannot require grad": (lambda: mg.Tensor([True], requires_grad=True),
                                 "only floating tensors can require grad, got dtype bool"),
    # empty batches
    "cross_entropy mean of an empty batch": (lambda: F.cross_entropy(np.zeros((0, 3), np.float32), _EMPTY_Y),
                                             r"cross_entropy: the batch is empty \(logits of shape \(0, 3\)\); "
                                             "reduction='mean' needs at least one example"),
    "cross_entropy sum of an empty batch": (lambda: F.cross_entropy(np.zeros((0, 3), np.float32), _EMPTY_Y,
                                                                    reduction="sum"), "reduction='sum' needs"),
    "GradientPenalty on an empty batch": (lambda: R.GradientPenalty(0.1, np.inf)(_model(), _EMPTY_X, _EMPTY_Y),
                                          "cross_entropy: the batch is empty"),
    "VirtualAdversarial alone on an empty batch": (lambda: R.VirtualAdversarial(0.3)(_model(), _EMPTY_X, _EMPTY_Y),
                                                   "mean: there is nothing to average over"),
    "Multitask alone on an empty batch": (lambda: R.Multitask.for_model(_model(), 1.0)(_model(), _EMPTY_X,
                                                                                       _EMPTY_Y),
                                          "an empty batch has no mean"),
    "mean of nothing": (lambda: ops.mean(mg.Tensor(np.zeros((0, 3)))), r"mean: .*shape \(0, 3\)"),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_value_is_one_line_of_our_own(name):
    call, fragment = ROWS[name]
    with pytest.raises(MinigradError, match=fragment) as e:
        call()
    assert isinstance(e.value, (InvalidArgument, InvalidDType)), type(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", MEMBERS)
def test_every_member_refuses_an_empty_batch(name):
    model = _model()
    with pytest.raises(InvalidArgument, match="cross_entropy: the batch is empty"):
        member(name, model)(model, _EMPTY_X, _EMPTY_Y)


# --- defined results at the edges ----------------------------------------------------------------------
def test_defined_results():
    d = _data(10)
    assert datasets.head(d, None) is d and datasets.head(d, 100) is d and len(datasets.head(d, 3)) == 3
    assert datasets.head(d, np.int64(4)).y.tolist() == d.y[:4].tolist()
    assert Strengths(eps2=0.5, eps1=None).budgets(64) == {"inf": 0.1, "2": 0.5, "1": 0.8}
    assert F.cross_entropy(np.zeros((0, 3), np.float32), _EMPTY_Y, reduction="none").shape == (0,)
    assert P.per_example_norm(_EMPTY_X, 2).shape == (0,)
    mask = mg.Tensor([True, False])  # a boolean Tensor is a constant mask (what comparisons give)
    assert mask.dtype == bool and not mask.requires_grad
    p = _param()
    optim.SGD([p], lr=optim.LinearRamp(0.1, 0.0, 10, per="step"))  # a decay to 0 is a schedule's right
    optim.SGD([p], lr=optim.ExponentialDecay(0.1, 0.5), momentum=optim.LinearRamp(0.5, 0.7, 3))
    assert mg.hessian(_sum_sq, _x, max_size=np.int64(3)).shape == (3, 3)


# --- hypothesis: exactly the good values are accepted --------------------------------------------------
ODD = [float("nan"), math.inf, -math.inf, 1e400, -1e400, 0, 0.0, -0.0, -1, -1e-300, 5e-324, 1, 1.0, 1.5, 2.5,
       1e308, True, False, None, "0.1", "", [0.1], (0.5,), np.float32(0.25), np.int64(3), np.nan, 1j, object()]
numbers = st.one_of(st.sampled_from(ODD), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-10**20, 10**20))


def _real(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _outcome(call, who):
    """True if the call was accepted; False if refused with one line naming ``who``."""
    try:
        call()
    except MinigradError as e:
        assert str(e).startswith(f"{who}:") and "\n" not in str(e), str(e)
        return False
    return True


@given(lr=numbers, momentum=numbers)
def test_sgd_takes_exactly_a_finite_lr_above_0_and_momentum_in_0_1(lr, momentum):
    ok = (_real(lr) and math.isfinite(lr) and lr > 0 and _real(momentum) and 0 <= momentum < 1)
    assert _outcome(lambda: optim.SGD([_param()], lr=lr, momentum=momentum), "SGD") == ok


@given(b1=numbers, b2=numbers, eps=numbers)
def test_adam_takes_exactly_betas_in_0_1_and_a_finite_eps_above_0(b1, b2, eps):
    ok = _real(b1) and 0 <= b1 < 1 and _real(b2) and 0 <= b2 < 1 and _real(eps) and math.isfinite(eps) and eps > 0
    assert _outcome(lambda: optim.Adam([_param()], betas=(b1, b2), eps=eps), "Adam") == ok


@given(start=numbers, end=numbers)
def test_a_momentum_ramp_is_checked_over_its_whole_range(start, end):
    if not (_real(start) and _real(end) and math.isfinite(start) and math.isfinite(end)):
        assert not _outcome(lambda: optim.LinearRamp(start, end, 3), "LinearRamp")
        return
    ok = 0 <= min(start, end) and max(start, end) < 1
    assert _outcome(lambda: optim.SGD([_param()], lr=0.1, momentum=optim.LinearRamp(start, end, 3)), "SGD") == ok


@given(n=numbers)
def test_head_takes_exactly_none_or_an_integer_from_1(n):
    ok = isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
    assert _outcome(lambda: datasets.head(_data(), n), "head") == ok


@given(field=st.sampled_from(["eps", "eps2", "eps1", "beta_l1", "beta_l2", "beta_jac", "gp_scale", "l1", "l2",
                              "gamma", "seed"]), value=numbers)
def test_strengths_take_exactly_values_in_their_units(field, value):
    finite = _real(value) and math.isfinite(value)
    ok = {"eps": finite and 0 < value <= 1,
          "eps2": value is None or (finite and value > 0), "eps1": value is None or (finite and value > 0),
          "seed": isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0,
          }.get(field, finite and value >= 0)
    assert _outcome(lambda: Strengths(**{field: value}), "Strengths") == ok


@given(max_size=numbers)
def test_hessian_takes_exactly_an_integer_max_size_from_1(max_size):
    ok = isinstance(max_size, (int, np.integer)) and not isinstance(max_size, bool) and max_size >= 1
    accepted = _outcome(lambda: mg.hessian(_sum_sq, np.ones(1), max_size=max_size), "hessian")
    assert accepted == ok


@given(data=st.one_of(numbers, st.lists(numbers, min_size=1, max_size=3)))
def test_a_tensor_holds_real_numbers_or_is_refused(data):
    try:
        t = mg.Tensor(data)
    except InvalidDType as e:
        assert str(e).startswith("Tensor:") and "\n" not in str(e)
        return
    assert t.dtype.kind in "fiub"


# --- numerics at the dtype's edge ---------------------------------------------------------------------
P_VALUES = [1.0, 1.5, 2.0, 3.0, np.inf]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", P_VALUES)
def test_worst_case_is_exact_up_to_the_dtype_maximum(dtype, p):
    # 2e38 in float32 at p = 2 gave ‖g‖₂ = inf and r* = 0 (with only an overflow warning).
    big, tiny = np.finfo(dtype).max, np.finfo(dtype).smallest_subnormal
    direction = np.array([[0.6, -0.8, 0.0]], np.float64)
    reference = P.worst_case(direction, 0.1, p).numpy()
    for g in (np.array([[2e38, 2e38, 1.0], [3e38, -3e38, 0.0]], dtype) if dtype == np.float32 else
              np.array([[1e308, 1e308, 1.0], [-1.5e308, 1.7e308, 0.0]], dtype),
              np.array([[big, -big, big]], dtype), np.array([[tiny, -tiny, 0]], dtype),
              (direction * (big / 2)).astype(dtype)):
        with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow, not even a warned one
            r = P.worst_case(g, 0.1, p).numpy()
        assert r.dtype == dtype and np.isfinite(r).all()
        np.testing.assert_allclose(P.per_example_norm(r.astype(np.float64), p).numpy(), 0.1, rtol=1e-6)
    np.testing.assert_allclose(r, reference, rtol=1e-6, atol=1e-30)


@given(exponent=st.integers(-1074, 1023), p=st.sampled_from(P_VALUES), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_worst_case_is_scale_free_over_the_whole_dtype_range(exponent, p, seed, dtype):
    # g = c·u for a power of two c anywhere in the dtype's range (subnormal to the maximum), max|u| = 1;
    # the reference direction is g/c formed exactly in float64.
    info = np.finfo(dtype)
    exponent = int(np.clip(exponent, info.minexp - info.nmant, info.maxexp - 1))
    u = np.random.default_rng(seed).uniform(-1, 1, (2, 5))
    u[:, 0] = 1
    c = 2.0 ** exponent
    g = (u * c).astype(dtype)  # finite: |g| <= c < the maximum
    with np.errstate(over="raise", invalid="raise"):
        r = P.worst_case(g, 0.25, p).numpy()
    reference = P.worst_case(g.astype(np.float64) / c, 0.25, p).numpy()
    np.testing.assert_allclose(r, reference, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", P_VALUES)
def test_per_example_norm_is_exact_whenever_the_norm_is_representable(dtype, p):
    big = np.finfo(dtype).max
    u = np.array([[0.25, -0.5, 0.125, 0.0]])  # ‖u‖ₚ ≤ 0.875: c·‖u‖ₚ stays below the maximum
    for c in (big, np.finfo(dtype).smallest_normal * 2.0 ** 10, 1.0):
        g = (u * c).astype(dtype)
        with np.errstate(over="raise", under="ignore"):
            n = P.per_example_norm(g, p).numpy()
        np.testing.assert_allclose(n, (P.per_example_norm(u, p).numpy() * c).astype(dtype), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_project_onto_the_l2_ball_is_exact_up_to_the_dtype_maximum(dtype):
    big = np.finfo(dtype).max
    r = np.array([[big, -big, 0.0], [big / 4, big / 2, 1.0]], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = P.project(r, 0.5, 2)
    np.testing.assert_allclose(np.linalg.norm(out.astype(np.float64), axis=1), 0.5, rtol=1e-6)
    np.testing.assert_allclose(out[0], [0.5 / 2 ** 0.5, -0.5 / 2 ** 0.5, 0], rtol=1e-6)


@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_worst_case_keeps_its_derivatives_at_huge_gradients(p):
    # r*(c·g) = r*(g), so D r*(c·g) = D r*(g)/c and the second derivative scales by 1/c²: the power-of-two
    # scaling inside worst_case must not cut the graph or change a derivative, at the dtype's edge either.
    g = np.array([[0.3, -0.7, 0.2], [0.0, 1.0, -0.5]])
    w = np.random.default_rng(0).standard_normal(g.shape)
    v = np.random.default_rng(1).standard_normal(g.shape)
    c = 2.0 ** 515  # g·g overflows float64 unless scaled; 1/c² (2^-1030) is still representable, barely

    def derivatives(g):
        gt = mg.Tensor(g, requires_grad=True)
        (d,) = mg.grad((P.worst_case(gt, 0.5, p) * mg.Tensor(w)).sum(), gt, create_graph=True)
        (h,) = mg.grad((d * mg.Tensor(v)).sum(), gt)
        return d.numpy(), h.numpy()

    d1, h1 = derivatives(g)
    dc, hc = derivatives(g * c)
    np.testing.assert_allclose(dc * c, d1, rtol=1e-12)
    np.testing.assert_allclose(hc * c * c, h1, rtol=1e-9)  # hc is subnormal: 44 bits left
    assert np.abs(h1).max() > 0  # a real second derivative, not a silent zero
