"""Validators: the one place where an argument is checked and its error message is worded.

Every public function of minigrad that takes a number, a count, a choice or a norm exponent checks it
here, before any work is spent, and every validator takes ``(value, what, who)`` in that order, and a
bad value gets one ``InvalidArgument`` (a ValueError) that names the function, the argument, what was
expected and what was given::

    worst_case: p must be a number >= 1 or inf, got 0.5

The command line builds its argument types from the same functions (``flags.flag``), so a flag and the
Python argument it feeds accept exactly the same values.  This module sits on the lowest floor (it
imports only NumPy and the standard library) so that every other floor may use it.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import InvalidArgument


def fmt(v) -> str:
    """A number as messages and reprs show it: 0.1, 1e-05, inf."""
    return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"


def _bounds(low, high, open_low, open_high) -> str:
    if high == math.inf and low == -math.inf:
        return ""
    if high == math.inf:
        return f" {'>' if open_low else '>='} {fmt(low)}"
    if low == -math.inf:
        return f" {'<' if open_high else '<='} {fmt(high)}"
    return f" in {'(' if open_low else '['}{fmt(low)}, {fmt(high)}{')' if open_high else ']'}"


def number(value, what: str, who: str, low=-math.inf, high=math.inf, open_low=False, open_high=False,
           finite=True) -> float:
    """A real number (not a bool) in the given interval, finite unless ``finite=False``; returned as float.

    ``finite=False`` admits +inf when ``high`` is inf (a norm exponent, a budget with no limit)."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)
    if ok:
        v = float(value)
        ok = (not math.isnan(v) and (math.isfinite(v) or not finite)
              and (v > low if open_low else v >= low) and (v < high if open_high else v <= high))
    if not ok:  # the message is worded only when it is needed (valid calls sit on training's hot path)
        kind = "a finite number" if finite and (low == -math.inf or high == math.inf) else "a number"
        raise InvalidArgument(f"{who}: {what} must be {kind}{_bounds(low, high, open_low, open_high)}, "
                              f"got {value!r}")
    return v


def integer(value, what: str, who: str, low=-math.inf, high=math.inf) -> int:
    """An int (a Python or NumPy integer, not a bool and not a float) in [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise InvalidArgument(f"{who}: {what} must be an integer{_bounds(low, high, False, False)}, got {value!r}")
    return int(value)


def choice(value, options, what: str, who: str):
    """One of ``options`` (compared with ==)."""
    if not any(value == o and type(value) is type(o) for o in options):
        raise InvalidArgument(f"{who}: {what} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def exponent(p, what: str, who: str) -> float:
    """A norm exponent: a number in [1, ∞] (the strings 'inf' and 'infinity' mean ∞)."""
    if isinstance(p, str) and p.lower() in ("inf", "infinity"):
        return math.inf
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not float(p) >= 1:
        raise InvalidArgument(f"{who}: {what} must be a number >= 1 or inf, got {p!r}")
    return float(p)


def eps(value, what: str, who: str) -> float:
    """A perturbation budget: a finite number >= 0."""
    return number(value, what, who, low=0)


def probability(value, what: str, who: str) -> float:
    """A rate in [0, 1): dropout probabilities, momentum, fractions that must leave something."""
    return number(value, what, who, low=0, high=1, open_high=True)


def sizes(values, what: str, who: str, low=1) -> tuple:
    """A non-empty sequence of integers >= low (layer widths, kernel sizes); a lone int is refused,
    so ``units=240`` is an error naming the fix rather than a confusing iteration over an int."""
    if isinstance(values, (numbers.Number, str, bytes)) or not hasattr(values, "__iter__"):
        raise InvalidArgument(f"{who}: {what} must be a sequence of integers >= {low}, e.g. ({values!r},), "
                         f"got {values!r}")
    out = tuple(integer(v, f"every entry of {what}", who, low=low) for v in values)
    if not out:
        raise InvalidArgument(f"{who}: {what} must not be empty")
    return out


def pair(value, what: str, who: str, low) -> tuple:
    """An int or a pair of ints (rows, cols), each >= low."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InvalidArgument(f"{who}: {what} must be an int or a pair (rows, cols), got {value!r}")
        return tuple(integer(v, what, who, low=low) for v in value)
    v = integer(value, what, who, low=low)
    return (v, v)


def pads(padding, what: str, who: str) -> tuple:
    """A padding: int, (rows, cols) or (top, bottom, left, right), each >= 0 → (t, b, l, r)."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(integer(v, what, who, low=0) for v in padding)
    ph, pw = pair(padding, what, who, 0)
    return (ph, ph, pw, pw)
