"""Numerical verification of the science: the nine checkable claims of science page §4, claim 10
(Gao et al.'s Wasserstein first-order expansion, the family's neighbours of ``penalties.py``), and
claims 11–14 of the successors (``curvature.py``, ``adversarial.py``).  Its modules::

    claims.py    one public function per claim, returning the numbers (tests assert them,
                 tutorials print them), and ``run_all`` on ``demo_problem``
    regions.py   the linear regions of a Maxout network (activation patterns, the exact distance
                 to a kink), so a claim can show that no perturbation crossed a kink
    successors.py  claims 11–14, of the family's successors (issue 24), measured on real data: GradAlign's
                 cosine and catastrophic overfitting, CURE's curvature, LLR's bound, ‖∇ₓL‖₁ ~ √D
    __main__.py  ``python -m minigrad.verify``: prints one line per claim

Everything is importable from ``minigrad.verify`` directly.
"""
from .claims import (EPS_VALUES, PHI_VALUES, Convergence, Holder, Identity, Limits, LocalHessian,
                     claim1_holder_optimality, claim2_limits, claim3_linearization, claim4_datagrad_fd,
                     claim5_goodfellow_equals_datagrad, claim6_perturbed_vs_penalty, claim7_stop_gradient,
                     claim8_gaussian_noise, claim9_local_hessian, claim10_wasserstein, demo_problem,
                     input_hessians, run_all)
from .regions import activation_pattern, local_jacobian, region_radius, same_region
from .successors import (Curvature, Growth, LinearityBound, Overfitting, claim11_gradalign_overfitting,
                         claim12_cure_curvature, claim13_llr_bound, claim14_gradient_growth, resized_fashion_mnist,
                         run_successors)
from ..diagnostics import top_hessian_eigenvalue

__all__ = ["EPS_VALUES", "PHI_VALUES", "Convergence", "Holder", "Identity", "Limits", "LocalHessian",
           "claim1_holder_optimality", "claim2_limits", "claim3_linearization", "claim4_datagrad_fd",
           "claim5_goodfellow_equals_datagrad", "claim6_perturbed_vs_penalty", "claim7_stop_gradient",
           "claim8_gaussian_noise", "claim9_local_hessian", "claim10_wasserstein", "demo_problem",
           "input_hessians", "run_all",
           "activation_pattern", "local_jacobian", "region_radius", "same_region",
           "Curvature", "Growth", "LinearityBound", "Overfitting", "claim11_gradalign_overfitting",
           "claim12_cure_curvature", "claim13_llr_bound", "claim14_gradient_growth", "resized_fashion_mnist",
           "run_successors", "top_hessian_eigenvalue"]
