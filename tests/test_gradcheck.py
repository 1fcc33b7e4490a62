"""The checker itself: it passes correct ops and catches wrong first and second derivatives."""
import re

import numpy as np
import pytest

from minigrad import backend
from minigrad.gradcheck import GradcheckError, gradcheck, gradgradcheck
from minigrad.tensor import Op, Tensor


class Sin(Op):
    """Correct: sin′ = cos, written with an op, so any order follows."""
    def forward(self, x):
        return backend.get_array_module(x).sin(x)

    def backward(self, gy):
        return (gy * Cos.apply(self.inputs[0]),)


class Cos(Op):
    def forward(self, x):
        return backend.get_array_module(x).cos(x)

    def backward(self, gy):
        return (-(gy * Sin.apply(self.inputs[0])),)


class SinScaledWrong(Op):
    """Wrong first derivative: 0.9·cos."""
    def forward(self, x):
        return backend.get_array_module(x).sin(x)

    def backward(self, gy):
        return (gy * Cos.apply(self.inputs[0]) * 0.9,)


class SinWrongAtTwo(Op):
    """Wrong first derivative at flat index 2 only (1.5·cos there)."""
    def forward(self, x):
        return backend.get_array_module(x).sin(x)

    def backward(self, gy):
        x = self.inputs[0]
        scale = x.xp.ones(x.shape)
        scale.reshape(-1)[2] = 1.5
        return (gy * Cos.apply(x) * scale,)


class SinConstantCos(Op):
    """First derivative right, second wrong: cos(x) from the raw array is a constant, so
    the backward's derivative with respect to x is 0 instead of −v·sin x."""
    def forward(self, x):
        return backend.get_array_module(x).sin(x)

    def backward(self, gy):
        x = self.inputs[0]
        return (gy * Tensor(x.xp.cos(x.data)),)


class SinDetachedUpstream(Op):
    """First derivative right, second wrong with respect to the upstream gradient only:
    gy is detached, so ∂(backward)/∂v is 0 instead of cos x."""
    def forward(self, x):
        return backend.get_array_module(x).sin(x)

    def backward(self, gy):
        return (gy.detach() * Cos.apply(self.inputs[0]),)


class NanGrad(Op):
    def forward(self, x):
        return x * 1.0

    def backward(self, gy):
        return (gy * np.nan,)


def x64(device="cpu", shape=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    # in [0.2, 1.2]: cos and sin are well away from 0, so every error is visible
    return Tensor(backend.to_device(rng.uniform(0.2, 1.2, shape), device), requires_grad=True)


MESSAGE = re.compile(r"input (\d+) at index \(([\d, ]*)\): analytic (\S+) vs numeric (\S+)")


def parse(error):
    m = MESSAGE.search(str(error))
    assert m, f"message names no input/index/analytic/numeric: {error}"
    index = tuple(int(i) for i in m.group(2).split(",") if i.strip())
    return int(m.group(1)), index, float(m.group(3)), float(m.group(4))


def test_a_correct_op_passes_first_and_second_order(device):
    x = x64(device)
    assert gradcheck(Sin.apply, [x]) is True
    assert gradgradcheck(Sin.apply, [x]) is True
    assert gradgradcheck(lambda a: Sin.apply(a) * Cos.apply(a), [x]) is True


def test_a_wrong_first_derivative_is_caught(device):
    x = x64(device)
    with pytest.raises(GradcheckError) as info:
        gradcheck(SinScaledWrong.apply, [x])
    message = str(info.value)
    assert "analytic" in message and "numeric" in message and "index" in message
    i, index, analytic, numeric = parse(info.value)
    assert i == 0 and len(index) == 2
    assert analytic == pytest.approx(0.9 * numeric, rel=1e-5)
    assert "6 of 6 elements" in message


def test_the_message_names_the_wrong_element(device):
    x = x64(device, shape=(5,))
    with pytest.raises(GradcheckError) as info:
        gradcheck(SinWrongAtTwo.apply, [x])
    i, index, analytic, numeric = parse(info.value)
    assert (i, index) == (0, (2,))
    assert analytic == pytest.approx(1.5 * numeric, rel=1e-5)
    assert "1 of 5 elements" in str(info.value)


def test_the_upstream_gradient_is_honoured():
    x = x64(shape=(5,))
    v = np.array([1.0, -2.0, 0.0, 0.5, 3.0])  # blind to element 2, where the op is wrong
    assert gradcheck(SinWrongAtTwo.apply, [x], grad_outputs=[Tensor(v)])
    v[2] = 1.0
    with pytest.raises(GradcheckError, match=r"index \(2,\)"):
        gradcheck(SinWrongAtTwo.apply, [x], grad_outputs=[Tensor(v)])


def test_tolerances_are_honoured():
    x = x64()
    assert gradcheck(SinScaledWrong.apply, [x], rtol=0.2)  # 10% off, 20% allowed
    assert gradcheck(SinScaledWrong.apply, [x], atol=1.0, rtol=0.0)  # |0.1·v·cos x| < 1
    with pytest.raises(GradcheckError):
        gradcheck(SinScaledWrong.apply, [x], rtol=0.05)


def test_a_wrong_second_derivative_with_respect_to_the_input_is_caught(device):
    x = x64(device)
    assert gradcheck(SinConstantCos.apply, [x])  # the first order is right
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(SinConstantCos.apply, [x])
    message = str(info.value)
    assert "analytic" in message and "numeric" in message and "index" in message
    i, index, analytic, numeric = parse(info.value)
    assert i == 0 and analytic == 0.0 and abs(numeric) > 1e-3  # true value −v·sin x


def test_a_wrong_derivative_with_respect_to_the_upstream_gradient_is_caught(device):
    x = x64(device)
    assert gradcheck(SinDetachedUpstream.apply, [x])
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(SinDetachedUpstream.apply, [x])
    i, index, analytic, numeric = parse(info.value)
    assert i == 1, "the error is in the derivative with respect to v (gradgradcheck's input 1)"
    assert analytic == 0.0 and abs(numeric) > 1e-3  # true value w·cos x, w the outer upstream


def test_a_wrong_second_derivative_is_caught_with_given_upstream_gradients():
    x = x64()
    v = Tensor(np.full(x.shape, 0.7))
    with pytest.raises(GradcheckError, match="input 0"):
        gradgradcheck(SinConstantCos.apply, [x], grad_outputs=[v])


def test_nan_counts_as_a_failure():
    with pytest.raises(GradcheckError, match="nan"):
        gradcheck(NanGrad.apply, [x64()])


def test_several_inputs_and_outputs():
    a, b = x64(seed=1), x64(seed=2)

    def f(a, b):
        return Sin.apply(a) * b, Cos.apply(b)

    assert gradcheck(f, [a, b]) and gradgradcheck(f, [a, b])

    def wrong_in_second_output(a, b):
        return Sin.apply(a) * b, SinScaledWrong.apply(b)

    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(wrong_in_second_output, [a, b])


def test_float32_inputs_are_refused():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    for check in (gradcheck, gradgradcheck):
        with pytest.raises(ValueError, match="float32.*float64"):
            check(Sin.apply, [x])


def test_inputs_must_require_grad():
    with pytest.raises(ValueError, match="requires_grad=True"):
        gradcheck(Sin.apply, [Tensor(np.ones(3))])


def test_inputs_are_restored_after_the_check():
    x = x64()
    before = x.numpy().copy()
    with pytest.raises(GradcheckError):
        gradcheck(SinScaledWrong.apply, [x])
    np.testing.assert_array_equal(x.numpy(), before)
