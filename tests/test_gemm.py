"""gemm.matmul: a host product in the measured faster operand order, never changing a bit."""
import numpy as np
import pytest

from minigrad import gemm


@pytest.fixture(autouse=True)
def fresh_choices():
    gemm.forget()
    yield
    gemm.forget()


def operands(m, k, n, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m)).astype(dtype).T  # a transposed view, as a weight gradient's Xᵀ
    return a, rng.standard_normal((k, n)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_either_order_gives_the_product_as_written_bit_for_bit(dtype):
    a, b = operands(16, 8192, 400, dtype)
    expected = a @ b
    first = gemm.matmul(a, b)  # measures
    assert len(gemm.choices()) == 1
    for forced in (False, True):
        gemm._CHOICES[gemm._key(a, b)] = forced
        got = gemm.matmul(a, b)
        assert got.flags.c_contiguous and got.dtype == dtype
        assert np.array_equal(got, expected)
    assert np.array_equal(first, expected)


def test_an_order_that_rounds_differently_is_never_chosen(monkeypatch):
    a, b = operands(16, 8192, 400)
    real = gemm._transposed
    monkeypatch.setattr(gemm, "_transposed", lambda x, y: np.nextafter(real(x, y), np.inf))
    ticks = iter([0.0, 1.0, 1.0, 3.0] * gemm.TRIALS)  # and it would be the faster one
    monkeypatch.setattr(gemm.time, "perf_counter", lambda: next(ticks, 0.0))
    assert np.array_equal(gemm.matmul(a, b), a @ b)
    assert list(gemm.choices().values()) == ["as written"]


def test_the_faster_order_is_kept_once_a_second_measurement_confirms_it(monkeypatch):
    a, b = operands(16, 8192, 400)
    ticks = iter([0.0, 1.0, 1.0, 3.0] * (2 * gemm.TRIALS))  # transposed 1 s, as written 2 s, each trial
    monkeypatch.setattr(gemm.time, "perf_counter", lambda: next(ticks))
    gemm.matmul(a, b)
    assert list(gemm.choices().values()) == ["to confirm"]
    for _ in range(gemm.RECHECK - 1):
        gemm.matmul(a, b)
    assert list(gemm.choices().values()) == ["transposed"]
    ((m, k, n, layouts, dtype),) = gemm.choices()
    assert (m, k, n, layouts, dtype) == (16, 8192, 400, "FC", "float32")


def test_a_first_win_that_does_not_repeat_keeps_the_order_as_written(monkeypatch):
    a, b = operands(16, 8192, 400)
    ticks = iter([0.0, 1.0, 1.0, 3.0] * gemm.TRIALS + [0.0, 2.0, 2.0, 3.0] * gemm.TRIALS)  # then 2 s against 1 s
    monkeypatch.setattr(gemm.time, "perf_counter", lambda: next(ticks))
    for _ in range(gemm.RECHECK):
        assert np.array_equal(gemm.matmul(a, b), a @ b)
    assert list(gemm.choices().values()) == ["as written"]


def test_small_products_and_the_switch_go_as_written_unmeasured(monkeypatch):
    a, b = operands(128, 8, 1200)  # a short inner dimension
    assert np.array_equal(gemm.matmul(a, b), a @ b)
    a, b = operands(4, 2048, 4)  # long k but few FLOPs
    gemm.matmul(a, b)
    assert gemm.choices() == {}
    monkeypatch.setenv("MINIGRAD_GEMM_ORDER", "as-written")
    a, b = operands(16, 8192, 400)
    gemm.matmul(a, b)
    assert gemm.choices() == {}


def test_a_product_whose_result_outgrows_an_operand_goes_as_written_unmeasured():
    # k < max(m, n): the result (here a conv's window gradient, 400 × 6272) is larger than an operand, and
    # the transposed order's copy and the measurement's two extra results would raise peak memory.
    a, b = operands(400, 64, 6272)
    assert np.array_equal(gemm.matmul(a, b), a @ b)
    a, b = operands(6272, 64, 400)
    gemm.matmul(a, b)
    assert gemm.choices() == {}
    a, b = operands(400, 6272, 64)  # the same sizes with k the longest: measured
    gemm.matmul(a, b)
    assert len(gemm.choices()) == 1


def test_an_unknown_order_setting_is_refused_by_name(monkeypatch):
    from minigrad.errors import InvalidArgument
    monkeypatch.setenv("MINIGRAD_GEMM_ORDER", "as_written")
    a, b = operands(16, 8192, 400)
    with pytest.raises(InvalidArgument, match="MINIGRAD_GEMM_ORDER must be one of measured, as-written .*'as_written'"):
        gemm.matmul(a, b)
    monkeypatch.setenv("MINIGRAD_GEMM_ORDER", "measured")
    assert np.array_equal(gemm.matmul(a, b), a @ b)
