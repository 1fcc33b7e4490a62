"""The perturbed-point face of the family: members trained on the loss at x + δ, with the offset δ
computed from the input gradient g (or, for VAT, from the prediction alone) and held constant.

- ``AdversarialTraining``: δ = r* = worst_case(g, ε, p), members 'adv-p1', 'adv-p2', 'adv-pinf';
- ``DataGradFD``: DataGrad by a finite difference along δ = φ·r, r the gradient of the penalty R at g
  (sign g for L1, 2g for L2), 'datagrad-l1-fd', 'datagrad-l2-fd';
- ``VirtualAdversarial``: δ the direction that most changes the prediction, 'vat' (a term, no labels);
- the successors: ``TRADES`` (δ the PGD maximiser of a KL, 'trades'), ``FGSMRandomStart`` and ``NFGSM``
  (one FGSM step from a random start, 'fgsm-rs', 'n-fgsm'), ``GradientPenaltyFD`` (the squared
  gradient penalty by a finite difference along the held direction, 'gp-fd').

``regularizers.py`` is the family's front door and its table.  (A little over the ~400-line guide: the
perturbed-point face is one idea, ``PerturbedPoint.rule`` and its fast path, and its members read best together.)
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from . import perturbations as P
from . import validate
from .backend import device_of, to_device
from .objective import Frozen, Objective, child_seed, clean_pass, data_loss
from .tensor import Tensor, enable_grad, grad, no_grad, unwrap
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


# --- the successors: TRADES, FGSM with a random start (and N-FGSM), the finite-difference penalty ------
class TRADES(Objective):
    r"""L(x) + β·mean KL(p(·|xᵢ) ‖ p(·|x′ᵢ)),  x′ = the PGD maximiser of the KL in the ℓ∞ ε-ball, held.

    Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan (ICML 2019), "Theoretically principled trade-off between
    robustness and accuracy", Algorithm 1: the robust error splits into the natural error
    and a boundary error, whose surrogate is the KL between the predictions at x and at x′.

    .. math::

        \mathcal{L}(\theta) = \frac1B\sum_i \Big[ L_i(x_i) + \beta\,
            \mathrm{KL}\big(p_\theta(\cdot|x_i) \,\|\, p_\theta(\cdot|x_i + \delta_i)\big) \Big],
        \quad \delta_i = \mathrm{sg}\Big[\arg\max_{\|\delta\|_\infty\le\varepsilon}
            \mathrm{KL}\big(p(\cdot|x_i) \,\|\, p(\cdot|x_i + \delta)\big)\Big]

    x′ as in Algorithm 1: start at x + 0.001·N(0, I) (drawn from ``self.rng``), then ``steps`` signed
    gradient steps of size ``step_size`` (default ε/4) on the KL, each projected back into the ball;
    not clipped to a pixel box (the family's convention: x + δ is not clipped).  Unlike VAT, both
    predictions are differentiated: the target p(·|x) is not stopped, only δ is.  The clean forward is
    shared by L(x), the attack's target and the KL.  ``frozen`` holds δ.
    """

    includes_data_loss = True
    name = "trades"

    def __init__(self, eps, beta=6.0, steps=10, step_size=None, seed=0):
        self.eps = validate.eps(eps, "eps", "TRADES")
        self.beta = validate.number(beta, "beta", "TRADES", low=0)
        self.steps = validate.integer(steps, "steps", "TRADES", low=1)
        self.step_size = (self.eps / 4 if step_size is None
                          else validate.number(step_size, "step_size", "TRADES", low=0, open_low=True))
        self.rng = np.random.default_rng(child_seed(seed, "trades"))

    def settings(self):
        return f"eps={fmt(self.eps)},beta={fmt(self.beta)}"

    def perturbation(self, model, x, y=None, target=None) -> Tensor:
        """δ = x′ − x, a constant; ``target``: log p(·|x) if already computed."""
        x = unwrap(x)
        log_p = F.log_softmax(model(Tensor(x))).detach() if target is None else target.detach()
        noise = self.rng.standard_normal(x.shape).astype(x.dtype) * 0.001
        delta = to_device(noise, device_of(x))
        xp = log_p.xp
        for _ in range(self.steps):
            d = Tensor(delta, requires_grad=True)
            with enable_grad():
                kl = F.sum(F.kl_divergence(log_p, F.log_softmax(model(Tensor(x) + d))))
                (ascent,) = grad(kl, d)
            delta = xp.clip(delta + self.step_size * xp.sign(ascent.data), -self.eps, self.eps)
        return Tensor(delta)

    def _value(self, model, x, y, delta=None):
        x = unwrap(x)
        logits = model(Tensor(x))
        clean = F.cross_entropy(logits, y)  # first: an empty batch stops here
        if not self.beta:
            return clean
        log_p = F.log_softmax(logits)
        delta = self.perturbation(model, x, target=log_p) if delta is None else delta
        return clean + F.mean(F.kl_divergence(log_p, F.log_softmax(model(Tensor(x) + delta)))) * self.beta

    def loss_at(self, model, x, y, delta) -> Tensor:
        return self._value(model, x, y, delta)

    __call__ = _value

    def frozen(self, model, x, y):
        return Frozen(self, delta=self.perturbation(model, x, y))


class RandomStartFGSM(PerturbedPoint):
    r"""L(x + δ),  δ = η + α·sign ∇ₓL(x + η),  η ~ U[−ρ, ρ]ᴰ;  δ then clipped to the ε-ball or not.

    Fast adversarial training: one FGSM step from a random point of the ball, a single term at the
    perturbed point (w₀ = 0: no clean pass to share); ``FGSMRandomStart`` ('fgsm-rs': ρ = ε, α = 1.25ε,
    clipped) and ``NFGSM`` ('n-fgsm': ρ = 2ε, α = ε, not clipped).  The gradient is taken at x + η, not
    at x; η is drawn afresh each call from ``self.rng`` (from ``seed``); ``frozen`` holds δ, draw included.

    .. math::

        \mathcal{L}(\theta) = \frac1B\sum_i L_i(x_i + \delta_i),\qquad
        \delta_i = \mathrm{sg}\big[\Pi\big(\eta_i + \alpha\,\mathrm{sign}\,\nabla_x L_i(x_i + \eta_i)\big)\big]
    """

    def __init__(self, eps, step, noise, project, seed=0):
        who = type(self).__name__
        self.eps = validate.eps(eps, "eps", who)
        self.step = validate.number(step, "alpha", who, low=0)
        self.noise, self.project = noise, bool(project)
        self.rng = np.random.default_rng(child_seed(seed, self.name))

    def _weights(self):
        return 0.0, 1.0

    def perturbation(self, model, x, y) -> Tensor:
        x = unwrap(x)
        eta = to_device(self.rng.uniform(-self.noise, self.noise, x.shape).astype(x.dtype), device_of(x))
        g = P.input_gradient(model, x + eta, y)
        delta = eta + self.step * g.xp.sign(g.data)
        return Tensor(g.xp.clip(delta, -self.eps, self.eps) if self.project else delta)


class FGSMRandomStart(RandomStartFGSM):
    """FGSM with a random start: Wong, Rice & Kolter (ICLR 2020), "Fast is better than free", Algorithm 3:
    η ~ U[−ε, ε]ᴰ, δ = (η + α·sign ∇ₓL(x + η)) clipped to [−ε, ε], α = 1.25ε by default; L(x + δ)."""

    name = "fgsm-rs"

    def __init__(self, eps, alpha=None, seed=0):
        super().__init__(eps, 1.25 * eps if alpha is None else alpha, eps, True, seed)

    def settings(self):
        return f"eps={fmt(self.eps)}" + ("" if self.step == 1.25 * self.eps else f",alpha={fmt(self.step)}")


class NFGSM(RandomStartFGSM):
    """N-FGSM: de Jorge, Bibi, Volpi, Sanyal, Torr, Rogez & Dokania (NeurIPS 2022), "Make some noise":
    stronger noise and no clipping, η ~ U[−kε, kε]ᴰ (k = 2), δ = η + α·sign ∇ₓL(x + η), α = ε by
    default; ‖δ‖∞ reaches (k + 1)ε: the noise, not a projection, keeps the step from overfitting."""

    name = "n-fgsm"

    def __init__(self, eps, k=2.0, alpha=None, seed=0):
        self.k = validate.number(k, "k", "NFGSM", low=0)
        super().__init__(eps, eps if alpha is None else alpha, self.k * eps, False, seed)

    def settings(self):
        return f"eps={fmt(self.eps)}" + ("" if self.k == 2 else f",k={fmt(self.k)}")


class GradientPenaltyFD(PerturbedPoint):
    r"""L(x) + β·mean (Δᵢ/h)²,  Δᵢ = Lᵢ(x + h·dᵢ) − Lᵢ(x),  dᵢ = worst_case(gᵢ, 1, p) held.

    Finlay & Oberman (2019), "Scaleable input gradient regularization for adversarial robustness":
    the squared dual-norm penalty ‖g‖_q² without double backprop, since for the unit
    steepest-ascent direction d (gᵀd = ‖g‖_q) a forward difference gives Δ/h = ‖g‖_q + O(h).  Both
    L(x + hd) and L(x) are differentiated, d is held; first derivatives only, so it trains at the cost
    of a perturbed-point member.  The registry's h is the ℓ2 budget ε₂: then x + hd is adv-p2's point.

    .. math::

        \mathcal{L}(\theta) = \frac1B\sum_i \Big[ L_i(x_i) + \beta\,\Big(\frac{L_i(x_i + h d_i)
            - L_i(x_i)}{h}\Big)^2 \Big],\qquad d_i = \mathrm{sg}[\arg\max_{\|d\|_p\le1} g_i^\top d]

    How it relates to DataGrad-FD (``DataGradFD``): both are forward differences of the mixed derivative
    ∂²L/∂θ∂x along the same held direction.  For p = 2 gp-fd's θ-gradient 2β(Δᵢ/h)·(∇θLᵢ(x + hdᵢ) −
    ∇θLᵢ(x))/h tends, as h → 0, to β∇θ‖gᵢ‖₂², DataGrad-L2's (β) exact gradient, which DataGrad-L2-FD
    approximates as (β/φ)(∇θL(x + 2φg) − ∇θL(x)): the same point when hᵢ = 2φ‖gᵢ‖₂, weighted by
    2β‖gᵢ‖/hᵢ where gp-fd weighs 2β(Δᵢ/hᵢ)/hᵢ, equal to first order.  They differ in that gp-fd fixes
    the step's length (h, the same for every example) and trains its value, the penalty itself, while
    DataGrad-FD's step grows with ‖g‖ and its value is a linear surrogate.  Unsquared with p = ∞,
    L + ε·mean Δᵢ/h = (1 − ε/h)·L(x) + (ε/h)·L(x + h·sign g) is DataGradFD(1, ε, 'l1', φ = h) exactly.
    ``rule`` takes g in a pass of its own; ``__call__`` shares the clean forward (tests check they
    agree); no held gradient, so it is twice differentiable.
    """

    def __init__(self, beta, h, p=2.0):
        self.beta = validate.number(beta, "beta", "GradientPenaltyFD", low=0)
        self.h = validate.number(h, "h", "GradientPenaltyFD", low=0, open_low=True)
        self.p = validate.exponent(p, "p", "GradientPenaltyFD")

    name = property(lambda self: "gp-fd" if self.p == 2 else f"gp-fd-q{fmt(P.dual_exponent(self.p))}")

    def settings(self):
        return f"beta={fmt(self.beta)},h={fmt(self.h)}"

    def _offset(self, g):  # h·d
        return P.worst_case(g, self.h, self.p)

    def _penalised(self, losses, model, x, y, delta) -> Tensor:
        clean = F.mean(losses)
        if not self.beta:
            return clean
        diff = (F.cross_entropy(model(Tensor(x) + delta), y, reduction="none") - losses) / self.h
        return clean + F.mean(diff * diff) * self.beta

    def loss_at(self, model, x, y, delta) -> Tensor:
        x = unwrap(x)
        logits = model(Tensor(x))
        F.cross_entropy(logits, y, reduction="sum")  # an empty batch stops here
        return self._penalised(F.cross_entropy(logits, y, reduction="none"), model, x, y, delta)

    def rule(self, model, x, y):
        return self.loss_at(model, x, y, self.perturbation(model, x, y))

    def __call__(self, model, x, y):
        x = unwrap(x)
        xt = Tensor(x, requires_grad=True)
        with enable_grad():
            logits = model(xt)
            (g,) = grad(F.cross_entropy(logits, y, reduction="sum"), xt)
        losses = F.cross_entropy(logits, y, reduction="none")
        return self._penalised(losses, model, x, y, self._offset(g).detach())
