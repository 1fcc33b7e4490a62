"""Grids that find each member's best: where the strength chosen on validation is an end of what was
tried, the sweep tries one step further that way, until the choice moves inside the grid.

One step continues the grid geometrically: beyond the strongest value by the ratio of its last two
values (the strongest squared over the one before it), below the weakest by the ratio of its first two
(the weakest squared over the one after it); a grid of one value steps by a factor of 3.  The choice
stops sitting at the edge, and the extension with it, when the new point crosses the clean-error budget,
stops improving the validation robust error, or loses every seed to divergence: each leaves the chosen
point inside the grid (``verdicts.choose``).  Otherwise it
stops at ``limit`` steps in each direction, or at a pixel budget of 1 (pixels lie in [0, 1]), and the
choice is reported **at the edge**, where a verdict can only be "cannot tell".

A pure function of the finished cells, so a resumed sweep makes the same decisions and finds the cells
it added already finished.
"""
from __future__ import annotations

import math

from . import verdicts as V


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def step(grid: list, edge: str, knob: str) -> float | None:
    """The next strength beyond ``edge`` ('strongest' or 'weakest') of the sorted ``grid``, or None when
    there is none (a pixel budget already at 1)."""
    if edge == "strongest":
        value = grid[-1] * (grid[-1] / grid[-2] if len(grid) > 1 else 3.0)
        if knob == "eps":  # a pixel budget cannot pass 1
            value = min(value, 1.0)
            if value <= grid[-1]:
                return None
    else:
        value = grid[0] / (grid[1] / grid[0] if len(grid) > 1 else 3.0)
    value = _round(value)
    return value if value not in grid and value > 0 and math.isfinite(value) else None


def extensions(pts: dict, budget: float, planned: dict, limit: int, knobs: dict) -> list:
    """[(member, strength)] to add: one step beyond the edge for every member whose choice sits at an
    end of its grid, while it has taken fewer than ``limit`` steps beyond ``planned`` (member → the
    strengths planned) in that direction."""
    adds = []
    for m, choice in V.matched(pts, budget).items():
        if not choice.edge or knobs.get(m) is None or m not in planned:
            continue
        grid = sorted(s for s in pts[m] if s is not None)
        plan = [s for s in planned[m] if s is not None]
        taken = sum(s > max(plan) for s in grid) if choice.edge == "strongest" else sum(s < min(plan) for s in grid)
        value = step(grid, choice.edge, knobs[m]) if taken < limit else None
        if value is not None:
            adds.append((m, value))
    return adds
