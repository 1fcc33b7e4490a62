"""The perturbed-point face of the family: members trained on the loss at x + δ, with the offset δ
computed from the input gradient g (or, for VAT, from the prediction alone) and held constant.

- ``AdversarialTraining``: δ = r* = worst_case(g, ε, p), members 'adv-p1', 'adv-p2', 'adv-pinf';
- ``DataGradFD``: DataGrad by a finite difference along δ = φ·r, r the gradient of the penalty R at g
  (sign g for L1, 2g for L2), 'datagrad-l1-fd', 'datagrad-l2-fd';
- ``VirtualAdversarial``: δ the direction that most changes the prediction, 'vat' (a term, no labels).

``regularizers.py`` is the family's front door and its table.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from . import perturbations as P
from . import validate
from .backend import device_of, to_device
from .objective import Frozen, Objective, child_seed, clean_pass, data_loss
from .tensor import Tensor, grad, no_grad, unwrap
from .validate import fmt


class PerturbedPoint(Objective):
    """w₀·L(x) + w₁·L(x + δ), the offset δ = δ(g) held constant (stop-gradient).

    ``rule`` is the definition, word for word; ``__call__`` computes the same faster, sharing the
    clean pass; ``loss_at`` evaluates it at a given δ."""

    includes_data_loss = True

    def _weights(self):  # (w₀, w₁)
        raise NotImplementedError

    def _offset(self, g: Tensor) -> Tensor:
        raise NotImplementedError

    def perturbation(self, model, x, y) -> Tensor:
        """The offset δ (a constant, shape of x) at which the perturbed loss is taken."""
        return self._offset(P.input_gradient(model, x, y)).detach()

    def loss_at(self, model, x, y, delta) -> Tensor:
        """w₀·L(x) + w₁·L(x + δ) for a given δ (a term whose weight is 0 costs no forward)."""
        w0, w1 = self._weights()
        clean = data_loss(model, x, y) * w0 if w0 or not w1 else None
        if not w1:
            return clean
        perturbed = data_loss(model, Tensor(unwrap(x)) + delta, y) * w1
        return perturbed + clean if w0 else perturbed

    def frozen(self, model, x, y):
        return Frozen(self, delta=self.perturbation(model, x, y))

    def rule(self, model, x, y):
        """The objective as its formula reads: δ from the input gradient, then ``loss_at``."""
        _, w1 = self._weights()
        return self.loss_at(model, x, y, self.perturbation(model, x, y) if w1 else None)

    def __call__(self, model, x, y):
        """``rule``, with the clean pass shared: one forward and one backward through the clean
        loss give both g and ∇θL(x) (``objective.clean_pass``), so a step of a two-layer Maxout net
        costs 17 matrix products instead of 19.  Same value and parameter gradient as ``rule``
        (tests/test_regularizers.py checks it)."""
        w0, w1 = self._weights()
        if not (w0 and w1):  # one term only: nothing to share
            return self.rule(model, x, y)
        x = unwrap(x)
        held, g = clean_pass(model, x, y, w0)
        return data_loss(model, Tensor(x) + self._offset(g).detach(), y) * w1 + held


class AdversarialTraining(PerturbedPoint):
    r"""a·L(x) + (1 − a)·L(x + r*), r* the argmax of gᵀr over ‖r‖ₚ ≤ ε, held constant:

        a·L(x) + (1 − a)·L(x + r*),    r* = argmax over ‖r‖ₚ ≤ ε of gᵀr

    .. math::

       a L(x) + (1 - a) L(x + r^*), \qquad r^* = \arg\max_{\|r\|_p \le \varepsilon} g^\top r.

    The perturbed-point member of the family (Lyu, Huang & Liang 2015, eq. 4–6; science page §1):
    linearising the inner max of the minimax problem (over θ, the sum over examples of the max of
    L(x + r) over ‖r‖ₚ ≤ ε) gives the closed-form worst case r* = ``perturbations.worst_case(g, ε, p)``
    per example.  Goodfellow, Shlens & Szegedy (2015, §6) is p = ∞ (r* = ε·sign g, FGSM) with a = 0.5,
    r* regenerated every minibatch and not clipped.  Gradient: a∇θL(x) + (1−a)∇θL(x + r*).
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


class DataGradFD(PerturbedPoint):
    r"""DataGrad (α·L + β·mean R(J), R = ‖J‖₁ or ‖J‖₂²) trained at a perturbed point, step φ > 0.

    For a constant r, the gradient of R at J (sign J for L1, 2J for L2, per example), the θ-gradient
    of rᵀJ(θ) is the derivative in φ at 0 of ∇θL(x + φr), so a finite difference gives the
    DataGrad gradient:

        ∇θ(rᵀJ(θ)) = d/dφ ∇θL(x + φr) at φ = 0,
        ∇θL_DG ≈ (α − β/φ)·∇θL(x) + (β/φ)·∇θL(x + φr),           error O(φ),

    .. math::

       \nabla_\theta \bigl(r^\top J(\theta)\bigr)
         &= \frac{d}{d\varphi} \nabla_\theta L(x + \varphi r) \Big|_{\varphi=0}, \\
       \nabla_\theta L_{\mathrm{DG}} &\approx \Bigl(\alpha - \frac{\beta}{\varphi}\Bigr) \nabla_\theta L(x)
         + \frac{\beta}{\varphi} \nabla_\theta L(x + \varphi r) + O(\varphi),

    realised as the surrogate loss (α − β/φ)·L(x) + (β/φ)·L(x + φr) with r stopped (Ororbia,
    Kifer & Giles 2017; science page §2).  Jᵢ comes from the summed loss, so rᵢ is example i's
    own; the surrogate's gradient tends to ``DataGrad``'s as φ → 0 (science page §4 claim 4).
    Its *gradient* is the point; its *value* ≈ α·L + β·mean rᵀJ, which is DataGrad's objective for L1
    but counts the L2 penalty twice (rᵀJ = 2‖J‖₂²), so compare values only within one member.
    With r = sign J, α = 1, β = (1−a)ε, φ = ε this is exactly Goodfellow's a·L(x) +
    (1−a)·L(x + ε sign g) (science page §4 claim 5).
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


class VirtualAdversarial(Objective):
    r"""mean KL(p(·|xᵢ) ‖ p(·|xᵢ + rᵢ)), rᵢ = ε·dᵢ/‖dᵢ‖₂ (a label-free term).

    Miyato et al. (2016/2018), virtual adversarial training: r approximates the direction
    that most changes the prediction, the top eigenvector of the Hessian of
    d ↦ KL(p(·|x) ‖ p(·|x + d)) at d = 0, by K power iterations from a random unit d:

        d ← normalize(∇_d KL(p(·|x) ‖ p(·|x + ξd))),    then r = ε·d/‖d‖₂  (per example),

    .. math::

       d \leftarrow \frac{\nabla_d \operatorname{KL}\bigl(p(\cdot|x) \,\|\, p(\cdot|x + \xi d)\bigr)}
                         {\bigl\|\nabla_d \operatorname{KL}\bigl(p(\cdot|x) \,\|\, p(\cdot|x + \xi d)\bigr)\bigr\|_2},
       \qquad r = \varepsilon \frac{d}{\|d\|_2},

    with p(·|x) held constant throughout.  The term's gradient is −mean Σ p ∇θ log p(·|x + r)
    with p(·|x) and r stopped (Miyato's stop-gradient).  d₀ ~ N(0, I) is drawn from ``self.rng``,
    a generator derived from ``seed`` (a fresh draw per call, reproducible from the seed, and
    independent of a model built with the same seed), and moved to the data's device.  K = 0
    gives a random direction.  Weight it with ``c * ...``.

    ξ (``probe_size``): Miyato's 1e-6 in float64.  In float32, x + 1e-6·d rounds back to x for
    most pixels and the power iteration follows rounding noise, so the default there is 1e-3 (the
    direction then agrees with float64's to cosine 1.000 on digits; ``tests/test_regularizers.py``
    checks it).
    """

    name = "vat"

    def __init__(self, eps, xi=None, power_iterations=1, seed=0):
        self.eps = validate.eps(eps, "eps", "VirtualAdversarial")
        self.xi = None if xi is None else validate.number(xi, "xi", "VirtualAdversarial", low=0, open_low=True)
        self.power_iterations = validate.integer(power_iterations, "power_iterations", "VirtualAdversarial",
                                                 low=0)
        self.rng = np.random.default_rng(child_seed(seed, "vat"))

    def settings(self):
        return f"eps={fmt(self.eps)}"

    def probe_size(self, dtype) -> float:
        """ξ for inputs of ``dtype`` (see the class docstring)."""
        if self.xi is not None:
            return self.xi
        return 1e-6 if np.dtype(dtype) == np.float64 else 1e-3

    def target(self, model, x) -> Tensor:
        """log p(·|x), a constant."""
        with no_grad():
            return F.log_softmax(model(Tensor(unwrap(x))))

    def perturbation(self, model, x, y=None, target=None) -> Tensor:
        x = Tensor(unwrap(x))
        log_p = self.target(model, x) if target is None else target
        d0 = self.rng.standard_normal(x.shape).astype(x.dtype)
        d = P.normalize(Tensor(to_device(d0, device_of(x.data))))  # unit ‖d‖₂
        for _ in range(self.power_iterations):
            probe = Tensor((d * self.probe_size(x.dtype)).data, requires_grad=True)
            kl = F.sum(F.kl_divergence(log_p, F.log_softmax(model(x + probe))))
            (d,) = grad(kl, probe)  # the summed KL: each example's own gradient
            d = P.normalize(d)
        # d is a unit vector already; normalising it once more, as r*(p = 2) = ε·d/‖d‖₂ does,
        # keeps the rounding (hence the published vat rows) of the runs in RESULTS.md.
        return (P.normalize(d) * self.eps).detach()

    def loss_at(self, model, x, y, delta, target=None) -> Tensor:
        log_p = self.target(model, x) if target is None else target
        log_q = F.log_softmax(model(Tensor(unwrap(x)) + delta))
        return F.mean(F.kl_divergence(log_p, log_q))

    def __call__(self, model, x, y=None):
        x = unwrap(x)
        log_p = self.target(model, x)
        return self.loss_at(model, x, y, self.perturbation(model, x, target=log_p), target=log_p)

    def frozen(self, model, x, y):
        log_p = self.target(model, x)
        return Frozen(self, delta=self.perturbation(model, x, target=log_p), target=log_p)
