"""The regularizer family: training objectives whose parameter gradient is the update.

Every member is an ``Objective``: a callable ``objective(model, x, y) -> loss Tensor``
(x: a raw array or constant Tensor on the model's device, floating point; y: integer
labels).  **The gradient of the returned loss with respect to the parameters is the
training direction**; for members that hold something constant (a perturbation, a
target distribution) the loss *value* is a surrogate whose θ-derivative, with those
quantities stopped, is that direction.  L is the batch mean of the per-example
cross-entropy; gᵢ = ∇ₓᵢLᵢ is each example's own input gradient (from the *summed*
loss, PAPERS.md §1), so every norm below is per example and every batch objective is
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

import numpy as np

from . import functional as F
from . import perturbations as P
from . import validate
from .objective import Combined, Frozen, HeldGradient, Objective, Scaled, data_loss, fmt
from .terms import Multitask, VirtualAdversarial
from .penalties import JacobianPenalty, SpectralPenalty, WassersteinPenalty
from .tensor import Tensor, enable_grad, grad, no_grad, unwrap


# --- plain loss and weight decay --------------------------------------------------------
class CrossEntropy(Objective):
    """L(θ) = (1/B) Σᵢ −log softmax(f(xᵢ; θ))[yᵢ]: the plain data loss."""

    includes_data_loss = True
    name = "plain"

    def __call__(self, model, x, y):
        return data_loss(model, x, y)


class WeightDecay(Objective):
    """R(θ) = l1·Σ|W| + (l2/2)·Σ W²  (a term; add it to a full objective).

    Over every parameter named ``weight`` (the Linear and Maxout matrices); biases are
    not decayed, as is conventional (a bias does not scale the function's slope).  The
    ½ makes the gradient l1·sign(W) + l2·W, so ``l2`` is the weight-decay coefficient of
    SGD (PyTorch's ``weight_decay=l2``).  abs′(0) = 0.  x and y are not used.
    Named 'l1', 'l2' or 'l1+l2' after the coefficients that are set.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = validate.number(l1, "l1", "WeightDecay", low=0)
        self.l2 = validate.number(l2, "l2", "WeightDecay", low=0)

    name = property(lambda self: "+".join(k for k in ("l1", "l2") if getattr(self, k)) or "no-decay")

    def settings(self):
        return ",".join(f"{k}={fmt(v)}" for k, v in (("l1", self.l1), ("l2", self.l2)) if v)

    def __call__(self, model, x=None, y=None):
        weights = [p for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] == "weight"]
        if not weights:
            raise ValueError("WeightDecay: the model has no parameter named 'weight'")
        terms = [F.sum(F.abs(w)) * self.l1 for w in weights if self.l1]
        terms += [F.sum(w * w) * (self.l2 / 2) for w in weights if self.l2]
        total = terms[0] if terms else F.sum(weights[0]) * 0.0  # l1 = l2 = 0: a zero on the graph
        for t in terms[1:]:
            total = total + t
        return total


# --- the explicit penalty: one class, three paper names ---------------------------------------
class InputGradientPenalty(Objective):
    """α·L + β·mean_i R(gᵢ),  gᵢ = ∇ₓᵢLᵢ,  R = ‖g‖_q  or  ‖g‖₂² (``squared=True``).

    The explicit-penalty face of the family, trained exactly by double backprop: g is taken with
    ``create_graph=True`` from the same forward pass as L, and ∇θ(β R(g)) = β (∂²L/∂θ∂x)·∇_g R.
    The norm is zero-safe: a zero gradient contributes 0, never NaN.  The paper names are
    ``GradientPenalty``, ``DataGrad`` and ``DoubleBackprop`` below: one implementation.
    """

    includes_data_loss = True

    def __init__(self, alpha, beta, q, squared=False, who="InputGradientPenalty"):
        self.alpha = validate.number(alpha, "alpha", who, low=0)
        self.beta = validate.number(beta, "beta", who, low=0)
        self.q = validate.exponent(q, "q", who)
        self.squared = bool(squared)
        if self.squared and self.q != 2:
            raise ValueError(f"{who}: squared=True is the squared l2 norm and needs q = 2, got q = {q}")

    name = property(lambda self: f"penalty-q{fmt(self.q)}{'-squared' if self.squared else ''}")

    def settings(self):
        return f"alpha={fmt(self.alpha)},beta={fmt(self.beta)}"

    def penalty(self, g: Tensor) -> Tensor:
        """R(gᵢ) per example, shape (batch,)."""
        return P.per_example_squared_norm(g) if self.squared else P.per_example_norm(g, self.q)

    def __call__(self, model, x, y):
        if not self.beta:  # no penalty: no second-order graph
            clean = data_loss(model, x, y)
            return clean if self.alpha == 1 else clean * self.alpha
        summed, g = P.loss_and_input_gradient(model, x, y, create_graph=True)
        clean = summed / len(y)
        return (clean if self.alpha == 1 else clean * self.alpha) + F.mean(self.penalty(g)) * self.beta


class GradientPenalty(InputGradientPenalty):
    """L + ε·mean_i ‖gᵢ‖_q,  q = dual_exponent(p): the linearised minimax objective itself.

    By Hölder, max_{‖r‖ₚ≤ε} gᵀr = ε‖g‖_q (Lyu, Huang & Liang 2015, eq. 5; PAPERS.md §1).
    p = ∞ penalises ‖g‖₁ (the FGSM member, 'gp-q1'), p = 2 ‖g‖₂ ('gp-q2'), p = 1 ‖g‖_∞."""

    def __init__(self, eps, p=np.inf):
        self.eps = validate.eps(eps, "eps", "GradientPenalty")
        self.p = validate.exponent(p, "p", "GradientPenalty")
        super().__init__(1.0, self.eps, P.dual_exponent(self.p), who="GradientPenalty")

    name = property(lambda self: f"gp-q{fmt(self.q)}")

    def settings(self):
        return f"eps={fmt(self.eps)}"


class DataGrad(InputGradientPenalty):
    """L_DG = α·L + β·mean_i R(Jᵢ),  Jᵢ = ∂Lᵢ/∂xᵢ,  R = ‖J‖₁ ('l1') or ‖J‖₂² ('l2'), exact.

    Ororbia, Kifer & Giles (2017), the DataGrad objective (PAPERS.md §2), by double backprop.
    DataGrad-L1 with α = 1, β = ε is ``GradientPenalty(ε, p=∞)``.  The finite-difference
    (perturbed-point) way to train it is ``DataGradFD``."""

    def __init__(self, alpha=1.0, beta=0.01, norm="l1"):
        self.norm = validate.choice(norm, ("l1", "l2"), "norm", "DataGrad")
        super().__init__(alpha, beta, 1 if norm == "l1" else 2, squared=norm == "l2", who="DataGrad")

    name = property(lambda self: f"datagrad-{self.norm}")


class DoubleBackprop(InputGradientPenalty):
    """L + λ·mean_i Σⱼ (∂Lᵢ/∂xᵢⱼ)²  (Drucker & LeCun 1992: E + λΣ(∂E/∂xᵢ)²).

    Exactly DataGrad-L2 with α = 1, β = λ."""

    def __init__(self, lam):
        self.lam = validate.number(lam, "lam", "DoubleBackprop", low=0)
        super().__init__(1.0, self.lam, 2, squared=True, who="DoubleBackprop")

    name = "double-backprop"

    def settings(self):
        return f"lam={fmt(self.lam)}"


# --- perturbed-point members --------------------------------------------------------------
class _PerturbedPoint(Objective):
    """w₀·L(x) + w₁·L(x + δ), the offset δ = δ(g) held constant (stop-gradient).

    ``__call__`` runs the clean forward once and sweeps it backward once, for both g and
    ∇θL(x) (handed on by ``HeldGradient``); the loss it returns then needs a backward pass
    through the perturbed forward only.  ``loss_at`` evaluates the same with a given δ."""

    includes_data_loss = True

    def _weights(self):  # (w₀, w₁)
        raise NotImplementedError

    def _offset(self, g: Tensor) -> Tensor:
        raise NotImplementedError

    def perturbation(self, model, x, y) -> Tensor:
        """The offset δ (a constant, shape of x) at which the perturbed loss is taken."""
        return self._offset(P.input_gradient(model, x, y)).detach()

    def loss_at(self, model, x, y, delta) -> Tensor:
        w0, w1 = self._weights()
        clean = data_loss(model, x, y) * w0
        if not w1:  # a zero weight costs no second forward
            return clean
        perturbed = data_loss(model, Tensor(unwrap(x)) + delta, y) * w1
        return perturbed + clean if w0 else perturbed

    def frozen(self, model, x, y):
        return Frozen(self, delta=self.perturbation(model, x, y))

    def __call__(self, model, x, y):
        x = unwrap(x)
        w0, w1 = self._weights()
        if not w1:  # no perturbed term: no input gradient either
            return data_loss(model, x, y) * w0
        if not w0:  # no clean term: the clean pass is needed for g only
            delta = self._offset(P.input_gradient(model, x, y)).detach()
            return data_loss(model, Tensor(x) + delta, y) * w1
        held, g = self._clean_term(model, x, y, w0)
        return data_loss(model, Tensor(x) + self._offset(g).detach(), y) * w1 + held

    @staticmethod
    def _clean_term(model, x, y, w0):
        """(w₀·L(x) as a ``HeldGradient``, g) from one forward and one backward pass.

        The backward is seeded with w₀/B, the weight the clean loss has in the objective, so
        ∇θ comes out exactly as a backward through w₀·(ΣL)/B would give it; g = that sweep's
        input gradient divided by w₀/B (exact when w₀/B is a power of two)."""
        xt = Tensor(x, requires_grad=True)
        params = [q for q in model.parameters() if q.requires_grad]
        with enable_grad():
            summed = F.cross_entropy(model(xt), y, reduction="sum")
            one = xt.xp.ones((), dtype=summed.dtype)
            seed = Tensor((one * w0) / xt.xp.asarray(len(y), dtype=summed.dtype))
            g, *grads = grad(summed, [xt, *params], grad_outputs=seed, allow_unused=True)
        with no_grad():
            value = (summed / len(y)) * w0
            g = g / seed
        if not params:
            return value, g
        return HeldGradient.apply(*params, value=value.data, grads=grads), g


class AdversarialTraining(_PerturbedPoint):
    """a·L(x) + (1 − a)·L(x + r*),  r* = argmax_{‖r‖ₚ ≤ ε} gᵀr held constant.

    The perturbed-point member of the family (Lyu, Huang & Liang 2015, eq. 4–6; PAPERS.md
    §1): linearising the inner max of min_θ Σ max_{‖r‖ₚ≤ε} L(x + r) gives the closed-form
    worst case r* = ``perturbations.worst_case(g, ε, p)`` per example.  Goodfellow,
    Shlens & Szegedy (2015, §6) is p = ∞ (r* = ε·sign g, FGSM) with a = 0.5, r*
    regenerated every minibatch and not clipped.  Gradient: a∇θL(x) + (1−a)∇θL(x + r*).
    For p = 1, ties in max|gᵢ| split ε evenly (``worst_case``'s rule).
    """

    def __init__(self, eps, p=np.inf, alpha=0.5):
        self.eps = validate.eps(eps, "eps", "AdversarialTraining")
        self.p = validate.exponent(p, "p", "AdversarialTraining")
        self.alpha = validate.number(alpha, "alpha", "AdversarialTraining", low=0, high=1)

    name = property(lambda self: f"adv-p{fmt(self.p)}")

    def settings(self):
        return f"eps={fmt(self.eps)}" + ("" if self.alpha == 0.5 else f",alpha={fmt(self.alpha)}")

    def _weights(self):
        return self.alpha, 1.0 - self.alpha

    def _offset(self, g):
        return P.worst_case(g, self.eps, self.p)


class DataGradFD(_PerturbedPoint):
    """DataGrad (α·L + β·mean R(J), R = ‖J‖₁ or ‖J‖₂²) trained at a perturbed point, step φ > 0.

    Since ∇θ(rᵀJ(θ)) = d/dφ ∇θL(x + φr)|₀ for a constant r = ∇_J R (sign J for L1, 2J for L2,
    per example),

        ∇θL_DG ≈ (α − β/φ)·∇θL(x) + (β/φ)·∇θL(x + φr),           error O(φ),

    realised as the surrogate loss (α − β/φ)·L(x) + (β/φ)·L(x + φr) with r stopped (Ororbia,
    Kifer & Giles 2017; PAPERS.md §2).  Jᵢ comes from the summed loss, so rᵢ is example i's
    own; the surrogate's gradient tends to ``DataGrad``'s as φ → 0 (PAPERS.md §4 claim 4).
    Its *gradient* is the point; its *value* ≈ α·L + β·mean rᵀJ, which is L_DG for L1 but
    counts the L2 penalty twice (rᵀJ = 2‖J‖₂²), so compare values only within one member.
    With r = sign J, α = 1, β = (1−a)ε, φ = ε this is exactly Goodfellow's a·L(x) +
    (1−a)·L(x + ε sign g) (PAPERS.md §4 claim 5).
    """

    def __init__(self, alpha=1.0, beta=0.01, norm="l1", phi=0.1):
        self.alpha = validate.number(alpha, "alpha", "DataGradFD", low=0)
        self.beta = validate.number(beta, "beta", "DataGradFD", low=0)
        self.norm = validate.choice(norm, ("l1", "l2"), "norm", "DataGradFD")
        self.phi = validate.number(phi, "phi", "DataGradFD", low=0, open_low=True)

    name = property(lambda self: f"datagrad-{self.norm}-fd")

    def settings(self):
        return f"alpha={fmt(self.alpha)},beta={fmt(self.beta)},phi={fmt(self.phi)}"

    def _weights(self):
        return self.alpha - self.beta / self.phi, self.beta / self.phi

    def _offset(self, g):  # φ·∇_J R
        return F.sign(g) * self.phi if self.norm == "l1" else g * (2 * self.phi)


__all__ = ["Objective", "Combined", "Scaled", "CrossEntropy", "WeightDecay", "InputGradientPenalty",
           "GradientPenalty", "DataGrad", "DoubleBackprop", "AdversarialTraining", "DataGradFD", "Multitask",
           "VirtualAdversarial", "JacobianPenalty", "SpectralPenalty", "WassersteinPenalty"]
