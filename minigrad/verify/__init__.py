"""Numerical verification of the science: the nine checkable claims of science page §4, and claim 10
(Gao et al.'s Wasserstein first-order expansion, the family's neighbours of ``penalties.py``)::

    claims.py    one public function per claim, returning the numbers (tests assert them,
                 tutorials print them), and ``run_all`` on ``demo_problem``
    regions.py   the linear regions of a Maxout network (activation patterns, the exact distance
                 to a kink), so a claim can show that no perturbation crossed a kink
    __main__.py  ``python -m minigrad.verify``: prints one line per claim

Everything is importable from ``minigrad.verify`` directly.
"""
from .claims import (EPS_VALUES, PHI_VALUES, Convergence, Holder, Identity, Limits, LocalHessian,
                     claim1_holder_optimality, claim2_limits, claim3_linearization, claim4_datagrad_fd,
                     claim5_goodfellow_equals_datagrad, claim6_perturbed_vs_penalty, claim7_stop_gradient,
                     claim8_gaussian_noise, claim9_local_hessian, claim10_wasserstein, demo_problem,
                     input_hessians, run_all)
from .regions import activation_pattern, local_jacobian, region_radius, same_region

__all__ = ["EPS_VALUES", "PHI_VALUES", "Convergence", "Holder", "Identity", "Limits", "LocalHessian",
           "claim1_holder_optimality", "claim2_limits", "claim3_linearization", "claim4_datagrad_fd",
           "claim5_goodfellow_equals_datagrad", "claim6_perturbed_vs_penalty", "claim7_stop_gradient",
           "claim8_gaussian_noise", "claim9_local_hessian", "claim10_wasserstein", "demo_problem",
           "input_hessians", "run_all",
           "activation_pattern", "local_jacobian", "region_radius", "same_region"]
