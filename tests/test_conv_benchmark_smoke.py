"""Smoke test of benchmarks/conv_step.py: what it times is what it claims (no timing asserted)."""
import importlib.util
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "conv_step.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("conv_step", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_float64_agreement_with_pytorch(bench):
    pytest.importorskip("torch")
    report = bench.check_agreement(batch=3)
    assert set(report) == set(bench.OBJECTIVES)
    for name, (loss_err, grad_err) in report.items():
        assert loss_err < 1e-10 and grad_err < 1e-10, (name, loss_err, grad_err)
