"""What only real CuPy can show (skipped without CuPy and a GPU; run alone with ``pytest -m gpu``).

Every op's forward, gradcheck and gradgradcheck already run on CuPy through the ``device``
fixture of conftest.py (test_ops.py's ``cuda`` parameter); this module adds only the checks
that need the real library: the arrays are ``cupy.ndarray``, and CuPy refuses NumPy arrays as
the strict device double does.
"""
import numpy as np
import pytest

from minigrad import backend
from minigrad.tensor import Tensor, grad

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cp(device_cuda):
    return pytest.importorskip("cupy")


@pytest.fixture(scope="module")
def device_cuda():
    from conftest import cuda_available  # the session's one answer (importing CuPy is slow)
    if not cuda_available():
        pytest.skip("cuda: CuPy with a visible GPU is not available")
    return "cuda"


def test_tensors_live_on_the_gpu(cp):
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True).to("cuda")
    assert isinstance(x.data, cp.ndarray) and x.device == "cuda"
    assert backend.get_array_module(x.data) is cp
    (g,) = grad((x * x).sum(), x)
    assert isinstance(g.data, cp.ndarray)
    np.testing.assert_allclose(backend.as_numpy(g.data), 2 * np.arange(6.0).reshape(2, 3))


def test_numpy_meeting_cupy_is_a_type_error_naming_both(cp):
    host, dev = Tensor(np.ones(3)), Tensor(cp.ones(3))
    with pytest.raises(TypeError) as info:
        host + dev
    assert "NumPy array" in str(info.value) and "CuPy array" in str(info.value)
