"""``python -m minigrad.verify``: run the claims of science page §4 (and claim 10) on the demo problem and print
one line per claim (the claims themselves are in verify/claims.py; this file only formats)."""
from __future__ import annotations

from .claims import Convergence, Holder, Identity, Limits, run_all


def row(result) -> str:
    if isinstance(result, Convergence):
        return (f"slope {result.slope:6.3f} (expected {result.expected_slope:g}); errors "
                f"{result.errors[0]:.2e} -> {result.errors[-1]:.2e}; same region: {result.same_region}")
    if isinstance(result, Holder):
        return (f"|‖r*‖-eps|/eps {result.norm_error:.1e}; |gᵀr*-eps‖g‖q| rel {result.value_error:.1e}; "
                f"best random - gᵀr* rel {result.excess:.2e}")
    if isinstance(result, Limits):
        return (f"sign exact {result.sign_exact}; p->inf slope {result.slope_inf:.3f}, dist "
                f"{result.dist_to_inf[-1]:.1e}; p->1 dist {result.dist_to_one[-1]:.1e}")
    if isinstance(result, Identity):
        return f"max |difference| {result.max_abs_diff:.1e} (relative {result.rel_diff:.1e})"
    return (f"|H - AᵀSA| {result.max_abs_diff:.1e}; asym {result.max_asymmetry:.1e}; min eig "
            f"{result.min_eigenvalue:.1e}; rank {result.max_rank} <= K-1 = {result.n_classes - 1}")


def report(results: dict) -> list:
    """One printed line per claim: its name and ``row``."""
    return [f"{name:28s} {row(result)}" for name, result in results.items()]


def main(seed: int = 0):
    for line in report(run_all(seed)):
        print(line)


if __name__ == "__main__":
    main()
