"""Shared test configuration: hypothesis profiles and the ``device`` fixture.

Hypothesis profiles (choose with the environment variable HYPOTHESIS_PROFILE):

- ``ci`` (default): few examples, derandomized, so a CI run is fast and reproducible;
- ``thorough``: 200 examples per property, random seeds: run it before a release,
  ``HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_ops.py``.

``device`` runs a test on every array backend: plain NumPy ("cpu"), the strict device
double of backend.py ("strict": a NumPy array that, like CuPy, refuses to meet a host
array), and real CuPy ("cuda", marked ``gpu``; skipped unless a GPU is present).
"""
import os

import pytest
from hypothesis import HealthCheck, settings

from minigrad import backend

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=20,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=200,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_CUDA = None


def cuda_available() -> bool:
    """Asked once per session (it imports CuPy, which is slow)."""
    global _CUDA
    if _CUDA is None:
        _CUDA = backend.cuda_available()
    return _CUDA


# Session scope: hypothesis refuses function-scoped fixtures in @given tests (the
# fixture would not be reset between examples); a device name needs no resetting.
@pytest.fixture(scope="session",
                params=["cpu", "strict", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    if request.param == "cuda" and not cuda_available():
        pytest.skip("cuda: CuPy with a visible GPU is not available")
    return request.param
