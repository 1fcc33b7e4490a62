"""The op suite on real CuPy arrays (skipped without CuPy and a GPU).

test_ops.py already runs every spec on the ``cuda`` device of the fixture when a GPU is
there; this module is the explicit GPU run (``pytest -m gpu``): every spec's forward,
gradcheck and gradgradcheck on CuPy, plus what only real CuPy can show (the arrays are
cupy.ndarray, and CuPy refuses NumPy arrays like the strict double does).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad import backend
from minigrad.gradcheck import gradcheck, gradgradcheck
from minigrad.tensor import Tensor, grad

pytestmark = pytest.mark.gpu

cp = pytest.importorskip("cupy")
if not backend.cuda_available():
    pytest.skip("no GPU visible to CuPy", allow_module_level=True)

# the one op table (tests/ is on sys.path under pytest's default import mode)
from test_ops import PARAMS, setup  # noqa: E402


def test_tensors_live_on_the_gpu():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True).to("cuda")
    assert isinstance(x.data, cp.ndarray) and x.device == "cuda"
    assert backend.get_array_module(x.data) is cp
    (g,) = grad((x * x).sum(), x)
    assert isinstance(g.data, cp.ndarray)
    np.testing.assert_allclose(backend.as_numpy(g.data), 2 * np.arange(6.0).reshape(2, 3))


def test_numpy_meeting_cupy_is_a_type_error_naming_both():
    host, dev = Tensor(np.ones(3)), Tensor(cp.ones(3))
    with pytest.raises(TypeError) as info:
        host + dev
    assert "NumPy array" in str(info.value) and "CuPy array" in str(info.value)


@pytest.mark.parametrize("spec", PARAMS)
@given(data=st.data())
def test_gpu_gradcheck(spec, data):
    _, _, tensors, f = setup(spec, "cuda", data)
    assert f(*tensors).device == "cuda"
    assert gradcheck(f, tensors)


@pytest.mark.parametrize("spec", PARAMS)
@given(data=st.data())
def test_gpu_gradgradcheck(spec, data):
    _, _, tensors, f = setup(spec, "cuda", data)
    assert gradgradcheck(f, tensors)
