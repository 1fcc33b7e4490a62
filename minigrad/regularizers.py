"""The regularizer family: training objectives whose parameter gradient is the update.

Every member is an ``Objective``: a callable ``objective(model, x, y) -> loss Tensor``
(x: a raw array or constant Tensor on the model's device, floating point; y: integer
labels).  **The gradient of the returned loss with respect to the parameters is the
training direction**; for members that hold something constant (a perturbation, a
target distribution) the loss *value* is a surrogate whose θ-derivative, with those
quantities stopped, is that direction.  L is the batch mean of the per-example
cross-entropy; gᵢ = ∇ₓᵢLᵢ is each example's own input gradient (from the *summed*
loss, science page §1), so every norm below is per example and every batch objective is
a mean over examples.

Full objectives include the data loss L and can be trained alone; *terms* are meant to
be added to one (``CrossEntropy() + WeightDecay(l2=1e-4)``)::

    ============================  ==================================  ==============================  ====
    member (constructor): name    objective (mean over examples i)    computed as (GEMMs, 2 layers)   kind
    ============================  ==================================  ==============================  ====
    CrossEntropy(): plain         L = mean Lᵢ                         one forward (3+5)               full
    WeightDecay(l1, l2): l1, l2   l1·Σ|W| + (l2/2)·ΣW², weights only  no forward                      term
    AdversarialTraining(ε, p, a)  a·L(x) + (1−a)·L(x + r*),           one forward and one backward    full
      adv-p1, adv-p2, adv-pinf    r* = worst_case(g, ε, p), stopped   for g and ∇θL(x), one forward
                                                                      at x + r* (3+6+3+5 = 17)
    InputGradientPenalty(α, β, q) α·L + β·mean R(gᵢ), R = ‖g‖_q       double backprop, one forward
                                  or ‖g‖₂² (squared=True)
      GradientPenalty(ε, p)       L + ε·mean ‖gᵢ‖_q,  1/p + 1/q = 1                                   full
        gp-q1, gp-q2
      DataGrad(α, β, norm)        α·L + β·mean R(gᵢ),                                                 full
        datagrad-l1, -l2          R = ‖g‖₁ ('l1') or ‖g‖₂² ('l2')
      DoubleBackprop(λ)           L + λ·mean ‖gᵢ‖₂²                   = DataGrad(1, λ, 'l2')          full
        double-backprop
    DataGradFD(α, β, norm, φ)     the surrogate (α − β/φ)·L(x)        as AdversarialTraining (17)     full
      datagrad-l1-fd, -l2-fd      + (β/φ)·L(x + φr), r = ∇R(g) =
                                  sign g or 2g, stopped
    Multitask(decoder, γ, layer)  γ·MSE(decoder(h_layer(x)), x)       forward to the hidden layer     term
      multitask                   (terms.py)
    VirtualAdversarial(ε, ξ, K)   mean KL(p(·|x) ‖ p(·|x + r)),       K power iterations, then        term
      vat                         p(·|x) and r stopped; no labels     one forward at x + r
    JacobianPenalty(λ): jacreg    L + λ·mean ‖∂f(xᵢ)/∂xᵢ‖_F², f the   K backward passes with a        full
                                  logits (penalties.py)               graph (K classes)
    SpectralPenalty(λ, seed)      L + λ·mean ‖Jᵢᵀrᵢ‖₂², r ~ N(0, I)   one backward with a graph       full
      spectreg                    fresh each step (penalties.py)
    WassersteinPenalty(ε, p)      L + ε·(mean ‖gᵢ‖₂^q)^(1/q)          double backprop, one forward    full
      wasserstein-p1, -p2         (penalties.py)
    TRADES(ε, β, K): trades       L + β·mean KL(p(·|x) ‖ p(·|x + δ)), K PGD steps on the KL, then     full
                                  δ the KL's PGD maximiser, stopped   L and the KL (3+60+3+10 = 76)
    FGSMRandomStart(ε, α)         L(x + δ), δ = clip_ε(η + α·sign     g at x + η, then one step at    full
      fgsm-rs                     ∇ₓL(x + η)), η ~ U[−ε,ε]^D, α=1.25ε x + δ (3+3+3+5 = 14)
    NFGSM(ε, k, α): n-fgsm        the same with η ~ U[−kε, kε]^D,     as fgsm-rs (14)                 full
                                  k = 2, α = ε, not clipped
    GradientPenaltyFD(β, h, p)    L + β·mean ((Lᵢ(x+hdᵢ) − Lᵢ(x))/h)²  a shared clean pass, then a     full
      gp-fd                       d = worst_case(g, 1, p), stopped    forward at x + hd (3+3+3+10)
    GradAlign(ε, λ): gradalign    L(x + ε·sign g) + λ·(1 − mean       g at x, the FGSM step, double   full
                                  cos(g(x), g(x + η))), η ~ U[−ε,ε]^D backprop at x + η (6+8+17)
                                  g(x) stopped (curvature.py)
    CURE(λ, h): cure              L + λ·mean ‖g(x + hz) − g(x)‖₂²,    double backprop at x and at     full
                                  z = sign g/‖sign g‖₂ stopped        x + hz (34) (curvature.py)
    LocalLinearity(ε, λ, μ, K)    L + λ·mean |L(x + δ) − L(x) − δᵀg|  K steps on the linearity error, full
      llr                         + μ·mean |δᵀg|, δ its maximiser     then double backprop (85)
    ============================  ==================================  ==============================  ====

Each object's ``name`` is its canonical member name (``members.MEMBERS``: the names of compare,
the CLI, tables, plots and the benchmark); its repr adds the strengths: ``adv-pinf(eps=0.1)``.
``members.member(name, model, strengths)`` builds each named member as compare trains it.

Members compose: ``A + B`` is their sum (losses add, so gradients add), ``c * A`` weights
one by a constant c ≥ 0, and ``sum([...])`` works.  Adding two full objectives counts the
data loss twice, which is allowed (it is a different weighting), not an error.

Extra trainable parameters (Multitask's decoder) belong to the objective, not the
model: **an optimizer must update ``model.parameters() + objective.parameters()``**.
``objective.parameters()`` is empty for every other member and is collected through
sums.

For gradient checks, ``objective.frozen(model, x, y)`` returns the objective with every
stopped quantity computed once, at the current θ, and then held fixed: as a function
of θ its value has exactly the gradient the objective trains with at this θ (members
that stop nothing return themselves).  Perturbed-point members also expose
``perturbation(model, x, y)`` (the offset δ added to x) and ``loss_at(model, x, y, δ)``.
"""
from __future__ import annotations

from .adversarial import (TRADES, AdversarialTraining, DataGradFD, FGSMRandomStart, GradientPenaltyFD, NFGSM,
                          PerturbedPoint, RandomStartFGSM, VirtualAdversarial)
from .curvature import CURE, GradAlign, LocalLinearity
from .objective import Combined, Objective, Scaled
from .penalties import (DataGrad, DoubleBackprop, GradientPenalty, InputGradientPenalty, JacobianPenalty,
                        SpectralPenalty, WassersteinPenalty)
from .terms import CrossEntropy, Multitask, WeightDecay

__all__ = ["Objective", "Combined", "Scaled", "CrossEntropy", "WeightDecay", "InputGradientPenalty",
           "GradientPenalty", "DataGrad", "DoubleBackprop", "PerturbedPoint", "AdversarialTraining", "DataGradFD",
           "Multitask", "VirtualAdversarial", "JacobianPenalty", "SpectralPenalty", "WassersteinPenalty",
           "TRADES", "RandomStartFGSM", "FGSMRandomStart", "NFGSM", "GradientPenaltyFD", "GradAlign", "CURE",
           "LocalLinearity"]
