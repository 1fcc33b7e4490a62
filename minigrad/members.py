"""The family's members by name: the one table that maps a canonical name to an objective.

Every place that names a member (compare's tables and plots, the CLI, the benchmark, the
tutorials) uses these names, and every objective's ``name`` is one of them:

==============================  ==========================================================================
names                           member
==============================  ==========================================================================
plain, l1, l2                   the data loss, and it plus L1 / L2 weight decay
adv-p1, adv-p2, adv-pinf        adversarial training at r*(p); adv-pinf is Goodfellow's FGSM
gp-q1, gp-q2                    the explicit penalty ε‖∇ₓL‖_q (q = 1 is adv-pinf's dual)
datagrad-l1, datagrad-l2        DataGrad, exact (double backprop)
datagrad-l1-fd, datagrad-l2-fd  DataGrad by the finite-difference perturbed point, φ = ε
double-backprop                 Drucker & LeCun's λΣ(∂L/∂xᵢ)²
multitask, multitask+datagrad   the reconstruction cue, alone and with DataGrad-L1
vat                             virtual adversarial training (ε₂ budget)
jacreg, spectreg                Varga et al.'s λ times the squared Frobenius norm of ∂f/∂x (logits f),
                                and its one-draw estimate λ‖∇ₓ(rᵀf)‖₂²
wasserstein-p1, wasserstein-p2  Gao et al.'s ε times the power mean of order q of the ‖gᵢ‖₂ (the ℓ2
                                ground cost, ε₂ budget)
trades                          Zhang et al.'s L + β·KL(p(x) ‖ p(x′)), x′ a 10-step PGD on the KL
fgsm-rs, n-fgsm                 one FGSM step from a random start (Wong et al.; de Jorge et al.)
gp-fd                           Finlay & Oberman's β·‖g‖₂² by a finite difference, h = ε₂
gradalign, cure, llr            the curvature penalties: gradient alignment, CURE (h = ε√D), LLR
==============================  ==========================================================================

For example::

    objective = member("adv-pinf", model, Strengths(eps=0.1))

Budgets.  ``eps`` is the ℓ∞ budget; the ℓ2 and ℓ1 budgets default to ε·√D/2 and ε·√D (D input
features): on 8×8 digits ε = 0.1 gives ε₂ = 0.4 and ε₁ = 0.8 (``Strengths.budgets``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import regularizers as R
from . import validate
from .objective import Combined, Objective

# The unified family of the seed papers (what `compare` trains by default), then its neighbours
# (Varga et al.'s JacReg and SpectReg, Gao et al.'s Wasserstein penalty), trained when named.
FAMILY = ("plain", "l1", "l2", "adv-p1", "adv-p2", "adv-pinf", "gp-q1", "gp-q2",
          "datagrad-l1", "datagrad-l2", "datagrad-l1-fd", "datagrad-l2-fd",
          "double-backprop", "multitask", "multitask+datagrad", "vat")
NEIGHBOURS = ("jacreg", "spectreg", "wasserstein-p1", "wasserstein-p2")
# The successors the seed papers led to (issue 24): the perturbed point, then the curvature penalties.
SUCCESSORS = ("trades", "fgsm-rs", "n-fgsm", "gp-fd", "gradalign", "cure", "llr")
MEMBERS = FAMILY + NEIGHBOURS + SUCCESSORS


@dataclass(frozen=True)
class Strengths:
    """Every strength a member takes, with compare's defaults.

    eps, eps2, eps1: the ℓ∞, ℓ2 and ℓ1 training budgets (None: from eps, see ``budgets``);
    beta_l1, beta_l2: DataGrad's β for the L1 and L2 penalties (double-backprop's λ is beta_l2);
    beta_jac: the λ of jacreg and of spectreg (which estimates the same penalty);
    gp_scale: the gradient penalty's ε is gp_scale times the budget of its norm (so is the
    Wasserstein radius, on the ℓ2 budget: wasserstein-p∞ would be gp-q2);
    l1, l2: weight decay; gamma: the multitask weight; seed: the multitask decoder's and VAT's
    noise, and every successor's random draws (derived streams, independent of a model built with
    the same seed);
    beta_trades: TRADES's β; lam_align: GradAlign's λ; lam_cure: CURE's λ; lam_llr: LLR's λ, its μ
    being 0.75·lam_llr (Qin et al.'s 4 : 3).  gp-fd's β is beta_l2 (it estimates DataGrad-L2's
    penalty).

    Each field is checked in its own units when the Strengths is made: eps is a pixel budget in
    (0, 1] (pixels lie in [0, 1]); eps2 and eps1 are None or finite budgets > 0 (0 is refused, not
    read as "the default"); every weight is finite and >= 0; seed is an integer >= 0."""
    eps: float = 0.1
    eps2: float | None = None
    eps1: float | None = None
    beta_l1: float = 0.05
    beta_l2: float = 0.01
    beta_jac: float = 0.001
    gp_scale: float = 1.0
    l1: float = 1e-4
    l2: float = 1e-3
    gamma: float = 1.0
    beta_trades: float = 6.0
    lam_align: float = 0.2
    lam_cure: float = 0.1
    lam_llr: float = 1.0
    seed: int = 0

    def __post_init__(self):
        validate.number(self.eps, "eps (a pixel budget)", "Strengths", low=0, high=1, open_low=True)
        for name in ("eps2", "eps1"):
            if getattr(self, name) is not None:
                validate.number(getattr(self, name), f"{name} (None for the default)", "Strengths", low=0,
                                open_low=True)
        for name in ("beta_l1", "beta_l2", "beta_jac", "gp_scale", "l1", "l2", "gamma", "beta_trades",
                     "lam_align", "lam_cure", "lam_llr"):
            validate.number(getattr(self, name), name, "Strengths", low=0)
        validate.integer(self.seed, "seed", "Strengths", low=0)

    def budgets(self, n_features: int) -> dict:
        """{'inf': ε, '2': ε₂, '1': ε₁}, the defaults ε₂ = ε·√D/2 and ε₁ = ε·√D for D features."""
        root = math.sqrt(n_features)
        return {"inf": self.eps, "2": self.eps * root / 2 if self.eps2 is None else self.eps2,
                "1": self.eps * root if self.eps1 is None else self.eps1}


# --- default strengths: the one table behind compare's defaults and the sweep's grids ---------------
D_REFERENCE = 64  # the digits' 8×8 pixels: where the defaults and grids were chosen
# member -> (the Strengths field it sweeps, its grid at D = 64, the exponent k of its (64/D)^k scaling).
# Log-spaced from "no effect" to "hurts clean error badly" on the digits.  A penalty weight on the input
# gradient scales by 64/D: with per-pixel gradients of a size independent of D, ‖g‖₁ and ‖g‖₂² grow like D
# (and so do gp-q2's ε₂‖g‖₂, ε₂ = ε√D/2, and the Jacobian's ‖J‖_F²), so the penalty per unit of that
# growth stays put.  Pixel budgets (the adversarial and VAT ε) and weight decay need no scaling.
DEFAULT_GRIDS = {
    "plain": (None, (None,), 0),
    "l1": ("l1", (1e-5, 1e-4, 1e-3, 1e-2), 0),
    "l2": ("l2", (1e-4, 1e-3, 1e-2, 1e-1), 0),
    **{m: ("eps", (0.01, 0.03, 0.1, 0.3, 0.6), 0) for m in ("adv-p1", "adv-p2", "adv-pinf", "vat")},
    **{m: ("gp_scale", (0.1, 0.3, 1.0, 3.0, 10.0), 1) for m in ("gp-q1", "gp-q2", "wasserstein-p1", "wasserstein-p2")},
    **{m: ("beta_l1", (0.005, 0.015, 0.05, 0.15, 0.5), 1) for m in ("datagrad-l1", "datagrad-l1-fd",
                                                                      "multitask+datagrad")},
    **{m: ("beta_l2", (0.001, 0.01, 0.1, 1.0), 1) for m in ("datagrad-l2", "datagrad-l2-fd", "double-backprop")},
    "multitask": ("gamma", (0.1, 0.3, 1.0, 3.0, 10.0), 0),
    **{m: ("beta_jac", (1e-4, 1e-3, 1e-2, 1e-1), 1) for m in ("jacreg", "spectreg")},
    # The successors.  A pixel budget (fgsm-rs, n-fgsm) and the scale-free terms (TRADES's KL, GradAlign's
    # cosine) need no scaling; gp-fd estimates DataGrad-L2's β‖g‖₂², CURE's ‖Δg‖₂² and LLR's γ and |δᵀg|
    # (≈ ε‖g‖₁) grow like D, as the other input-gradient penalties do.
    **{m: ("eps", (0.01, 0.03, 0.1, 0.3, 0.6), 0) for m in ("fgsm-rs", "n-fgsm")},
    "trades": ("beta_trades", (1.0, 3.0, 6.0, 12.0), 0),
    "gp-fd": ("beta_l2", (0.001, 0.01, 0.1, 1.0), 1),
    "gradalign": ("lam_align", (0.05, 0.2, 0.5, 2.0), 0),
    "cure": ("lam_cure", (0.01, 0.1, 1.0, 10.0), 1),
    "llr": ("lam_llr", (0.1, 0.3, 1.0, 3.0, 10.0), 1),
}
KNOBS = {m: knob for m, (knob, _, _) in DEFAULT_GRIDS.items()}
SCALING = {knob: k for knob, _, k in DEFAULT_GRIDS.values() if knob}  # one exponent per field


def _scaled(value: float, k: int, n_features: int) -> float:
    """value·(64/D)ᵏ to 3 significant digits (value itself at D = 64)."""
    return float(f"{value * (D_REFERENCE / n_features) ** k:.3g}") if k else value


def default_grid(name: str, n_features: int, quick: bool = False) -> list:
    """Member ``name``'s default strengths for inputs of D = ``n_features`` (``DEFAULT_GRIDS``, scaled);
    ``quick``: its two middle values."""
    _, grid, k = DEFAULT_GRIDS[name]
    values = [None if v is None else _scaled(v, k, n_features) for v in grid]
    return values[1:3] if quick and len(values) > 2 else values


def default_strengths(n_features: int, **given) -> "Strengths":
    """compare's strengths for inputs of D = ``n_features``: each field's default scaled by the same rule
    as the grids, then the fields ``given``."""
    scaled = {f: _scaled(getattr(Strengths, f), k, n_features) for f, k in SCALING.items() if k}
    return Strengths(**{**scaled, **given})


def _n_features(model) -> int:
    try:
        return model.n_inputs  # a Sequential: C·H·W for a conv network, in_features for an MLP
    except (AttributeError, IndexError, StopIteration):
        raise ValueError("member: cannot tell the model's number of input features; pass n_features") from None


def member(name: str, model, strengths: Strengths = Strengths(), n_features: int | None = None) -> Objective:
    """The objective of member ``name`` for ``model`` (Multitask sizes its decoder from it), with
    ``strengths``; ``n_features`` (default: the model's input width) sets the ℓ2 and ℓ1 budgets."""
    if name not in MEMBERS:
        raise ValueError(f"member: name must be one of {', '.join(MEMBERS)}; got {name!r}")
    s = strengths
    b = s.budgets(_n_features(model) if n_features is None else n_features)
    eps, eps2, eps1 = b["inf"], b["2"], b["1"]
    table = {
        "plain": lambda: R.CrossEntropy(),
        "l1": lambda: Combined(R.CrossEntropy(), R.WeightDecay(l1=s.l1), name="l1"),
        "l2": lambda: Combined(R.CrossEntropy(), R.WeightDecay(l2=s.l2), name="l2"),
        "adv-p1": lambda: R.AdversarialTraining(eps1, 1, alpha=0.5),
        "adv-p2": lambda: R.AdversarialTraining(eps2, 2, alpha=0.5),
        "adv-pinf": lambda: R.AdversarialTraining(eps, np.inf, alpha=0.5),
        "gp-q1": lambda: R.GradientPenalty(s.gp_scale * eps, np.inf),
        "gp-q2": lambda: R.GradientPenalty(s.gp_scale * eps2, 2),
        "datagrad-l1": lambda: R.DataGrad(1.0, s.beta_l1, "l1"),
        "datagrad-l2": lambda: R.DataGrad(1.0, s.beta_l2, "l2"),
        "datagrad-l1-fd": lambda: R.DataGradFD(1.0, s.beta_l1, "l1", phi=eps),
        "datagrad-l2-fd": lambda: R.DataGradFD(1.0, s.beta_l2, "l2", phi=eps),
        "double-backprop": lambda: R.DoubleBackprop(s.beta_l2),
        "multitask": lambda: Combined(R.CrossEntropy(), R.Multitask.for_model(model, s.gamma, seed=s.seed),
                                      name="multitask"),
        "multitask+datagrad": lambda: Combined(R.DataGrad(1.0, s.beta_l1, "l1"),
                                               R.Multitask.for_model(model, s.gamma, seed=s.seed),
                                               name="multitask+datagrad"),
        "vat": lambda: Combined(R.CrossEntropy(), R.VirtualAdversarial(eps2, seed=s.seed), name="vat"),
        "jacreg": lambda: R.JacobianPenalty(s.beta_jac),
        "spectreg": lambda: R.SpectralPenalty(s.beta_jac, seed=s.seed),
        "wasserstein-p1": lambda: R.WassersteinPenalty(s.gp_scale * eps2, 1),
        "wasserstein-p2": lambda: R.WassersteinPenalty(s.gp_scale * eps2, 2),
        "trades": lambda: R.TRADES(eps, s.beta_trades, seed=s.seed),
        "fgsm-rs": lambda: R.FGSMRandomStart(eps, seed=s.seed),
        "n-fgsm": lambda: R.NFGSM(eps, seed=s.seed),
        "gp-fd": lambda: R.GradientPenaltyFD(s.beta_l2, h=eps2),
        "gradalign": lambda: R.GradAlign(eps, s.lam_align, seed=s.seed),
        "cure": lambda: R.CURE(s.lam_cure, h=eps1),
        "llr": lambda: R.LocalLinearity(eps, s.lam_llr, 0.75 * s.lam_llr, seed=s.seed),
    }
    return table[name]()


__all__ = ["FAMILY", "NEIGHBOURS", "SUCCESSORS", "MEMBERS", "Strengths", "member", "DEFAULT_GRIDS", "KNOBS",
           "default_grid",
           "default_strengths"]
