"""``python -m minigrad.verify``: run the claims of science page §4 (and claim 10) on the demo problem, and the
successors' claims 11–14 on the digits and Fashion-MNIST, and print one line per claim (the claims themselves
are in verify/claims.py and verify/successors.py; this file only formats)."""
from __future__ import annotations

import numpy as np

from .claims import Convergence, Holder, Identity, Limits, run_all
from .successors import Curvature, Growth, LinearityBound, Overfitting, run_successors


def successor_row(r) -> str:
    if isinstance(r, Overfitting):
        if r.onset is None:
            return f"no catastrophic overfitting in {len(r.cosine)} epochs; cos {r.cosine[0]:.3f} -> {r.cosine[-1]:.3f}"
        return (f"CO at epoch {r.onset} (FGSM err {r.fgsm_error[r.onset]:.2f}, PGD err {r.pgd_error[r.onset]:.2f}); "
                f"cos max {r.cos_before:.3f} before -> mean {r.cos_after:.3f} after; corr(cos, PGD-FGSM) "
                f"{r.correlation:.2f}")
    if isinstance(r, Curvature):
        return (f"top eig of the input Hessian, mean {r.plain.mean():.3f} plain -> {r.cure.mean():.3f} CURE "
                f"(ratio {r.ratio:.2f}); test error {r.plain_error:.3f} vs {r.cure_error:.3f}")
    if isinstance(r, LinearityBound):
        return (f"slack at LLR's maximiser min {r.slack_at_maximiser.min():.1e} (mean gamma {r.gamma.mean():.3f}); "
                f"holds at PGD's point for {np.mean(r.slack_at_pgd >= 0):.0%}, at {r.n_random} random points "
                f"for {np.mean(r.slack_at_random >= 0):.0%}")
    if isinstance(r, Growth):
        return (f"mean |g|_1 {' '.join(f'{v:.2f}' for v in r.l1)} at D = {' '.join(map(str, r.dims))}: slope "
                f"{r.slope_l1:.3f} (expected 0.5); |g|_2 slope {r.slope_l2:.3f} (expected 0)")
    return f"skipped: {r}"  # the data it needs is not installed


def row(result) -> str:
    if isinstance(result, (Overfitting, Curvature, LinearityBound, Growth, Exception)):
        return successor_row(result)
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
    for line in report({**run_all(seed), **run_successors(seed)}):
        print(line)


if __name__ == "__main__":
    main()
