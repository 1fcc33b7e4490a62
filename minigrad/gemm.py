"""One matrix product on the host, in the operand order the machine's BLAS runs fastest, measured.

A product C = A B can also be computed as its transpose, C = (Bᵀ Aᵀ)ᵀ: the same dot products, which
BLAS then runs with the roles of rows and columns swapped.  Which of the two is faster depends on the
shape, the operands' memory layouts and the kernel the BLAS picked for this CPU; on one AMD EPYC with
OpenBLAS 0.3.31 the transposed order ran a convolution's weight gradient (64 × 25 088)·(25 088 × 400) 26 %
faster and the MLP's input gradient (128 × 1200)·(1200 × 784) 7 % faster, while other products are faster
as written (``benchmarks/blas_kernels.py`` prints the table).  So nothing here is assumed:

* the first time a product of a given (shapes, layouts, dtype) is met, both orders are timed on its own
  operands (a few runs each, alternated); if the transposed order was at least 10 % faster, the timing is
  repeated at the key's ``RECHECK``-th product, and only a second win makes it the order of every later
  product of that key (a near tie, or one disturbed measurement on a busy machine, keeps the order as
  written);
* only where the two orders give **the same bits** on that first product: BLAS's summation order depends
  on the shapes and layouts, never on the values, so a key that agrees once agrees always, and training
  never depends on which order won (a BLAS whose two orders round differently keeps the order as written);
* only for products worth a measurement: at least 5·10⁷ FLOPs;
* only where the inner dimension is the longest, k ≥ m and k ≥ n (weight gradients, the input gradient of
  a wide layer): the result is then no larger than either operand.  The transposed order's result is
  copied back to C order (that copy is part of what is timed, so it wins only where it wins with the
  copy), and the measurement holds two more results for a moment; for a conv layer's forward product or
  its window gradient (6–40 MB results) that would raise a training step's peak memory by up to 140 MB
  (the small conv preset, ``benchmarks/conv_step.py``), so those are not measured.  (With the FLOP floor
  this also means k ≥ 293: a short inner dimension is never measured.)

``MINIGRAD_GEMM_ORDER=as-written`` turns the measurement off (every product as written; ``measured``, or
unset, is the default, and any other value is refused), and ``choices()`` lists what was chosen.  CuPy arrays and batched products always go as written.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .errors import InvalidArgument

MIN_FLOPS = 5e7
TRIALS = 3
MARGIN = 0.1  # the transposed order must be this much faster: a near tie is decided by noise, not the machine
RECHECK = 20  # a first win is confirmed by a second measurement at the key's 20th product
_CHOICES: dict = {}  # key -> True (transposed order) / False (as written) / int (products since a first win)


def _key(a, b):
    return (a.shape, b.shape, a.flags.c_contiguous, a.flags.f_contiguous, b.flags.c_contiguous,
            b.flags.f_contiguous, a.dtype.str)


def _transposed(a, b):
    return np.ascontiguousarray((b.T @ a.T).T)


def _measure(a, b, check_bits=True):
    """(product as written, whether the transposed order is faster and bit-identical)."""
    first = a @ b
    if check_bits and not np.array_equal(first, _transposed(a, b), equal_nan=True):
        return first, False
    times = {False: [], True: []}
    for _ in range(TRIALS):
        for flipped in (True, False):
            t0 = time.perf_counter()
            _transposed(a, b) if flipped else a @ b
            times[flipped].append(time.perf_counter() - t0)
    return first, min(times[True]) < (1 - MARGIN) * min(times[False])


ORDERS = ("measured", "as-written")  # the values of MINIGRAD_GEMM_ORDER (unset: measured)


def _order() -> str:
    order = os.environ.get("MINIGRAD_GEMM_ORDER") or "measured"
    if order not in ORDERS:
        raise InvalidArgument(f"MINIGRAD_GEMM_ORDER must be one of {', '.join(ORDERS)} (or unset), got {order!r}")
    return order


def matmul(a, b):
    """a @ b for host arrays, in the measured faster order where that is worth measuring (see above)."""
    if (type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2
            or a.shape[1] < max(a.shape[0], b.shape[1]) or 2.0 * a.shape[0] * a.shape[1] * b.shape[1] < MIN_FLOPS
            or _order() == "as-written"):
        return a @ b
    key = _key(a, b)
    choice = _CHOICES.get(key)
    if choice is None:  # first use: measure
        result, won = _measure(a, b)
        _CHOICES[key] = 1 if won else False
        return result
    if choice is True or choice is False:
        return _transposed(a, b) if choice else a @ b
    if choice + 1 < RECHECK:  # a first win, not yet confirmed: as written meanwhile
        _CHOICES[key] = choice + 1
        return a @ b
    result, _CHOICES[key] = _measure(a, b, check_bits=False)  # the bits agreed at the first use
    return result


def choices() -> dict:
    """{(m, k, n, layouts, dtype): 'transposed' or 'as written'} for every product measured so far."""
    def describe(key):
        (m, k), (_, n) = key[0], key[1]
        lay = lambda c, f: "C" if c else "F" if f else "S"  # noqa: E731
        return (m, k, n, lay(key[2], key[3]) + lay(key[4], key[5]), np.dtype(key[6]).name)
    return {describe(k): "transposed" if v is True else "as written" if v is False else "to confirm"
            for k, v in _CHOICES.items()}


def forget():
    """Drop every measured choice (the next product of each key is measured again)."""
    _CHOICES.clear()
