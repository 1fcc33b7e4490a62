r"""The penalty face's successors: members that penalise how the input gradient, or the loss itself,
departs from linearity across the ε-ball, trained exactly by double backprop.

- ``GradAlign``: the cosine between the input gradients at x and at a random point of the ball;
- ``CURE``: the change of the input gradient along the sign direction (a finite-difference curvature);
- ``LocalLinearity`` (LLR): the loss's largest deviation from its tangent plane in the ball.

They came after the seed papers, to keep FGSM-style training from collapsing (GradAlign) or to reach
adversarial training's robustness without its inner attack (CURE, LLR).  Same conventions as
``penalties.py``: gᵢ = ∇ₓᵢLᵢ from the *summed* loss (example i's own), norms per example, every batch
objective a mean over examples, perturbations and random draws held constant (stop-gradient), and
``frozen(model, x, y)`` holds them so that its θ-gradient is the training direction.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from . import perturbations as P
from . import validate
from .backend import device_of, to_device
from .objective import Frozen, Objective, child_seed, data_loss
from .tensor import Tensor, enable_grad, grad, unwrap
from .validate import fmt


def _uniform(rng, x, radius):
    """η ~ U[−radius, radius] with the shape, dtype and device of the raw array ``x``."""
    eta = rng.uniform(-radius, radius, x.shape).astype(x.dtype)
    return to_device(eta, device_of(x))


def _per_example_dot(a, b) -> Tensor:
    """aᵢᵀbᵢ per example, shape (batch,)."""
    flat = P._flat(a * b)
    return F.sum(flat, axis=1)


def _graph_at(model, x, y):
    """(per-example losses Lᵢ(x), their sum, g = ∇ₓ of the sum recorded with ``create_graph=True``):
    one forward pass, kept for double backprop.  The summed cross-entropy comes first, so an empty
    batch stops there (``cross_entropy``'s one check)."""
    xt = Tensor(unwrap(x), requires_grad=True)
    with enable_grad():
        logits = model(xt)
        summed = F.cross_entropy(logits, y, reduction="sum")
        (g,) = grad(summed, xt, create_graph=True)
        return F.cross_entropy(logits, y, reduction="none"), summed, g


class GradAlign(Objective):
    r"""L(x + ε·sign g(x)) + λ·(1 − mean cos(gᵢ(x), gᵢ(x + ηᵢ))),  ηᵢ ~ U[−ε, ε]ᴰ,  g(x) stopped.

    Andriushchenko & Flammarion (NeurIPS 2020), "Understanding and improving fast adversarial
    training": FGSM training collapses ("catastrophic overfitting") when the loss stops being
    linear in the ball, and the cosine between the input gradient at x and at a random point of the
    ball drops first; penalising 1 − cos keeps it aligned.

    .. math::

        \mathcal{L}(\theta) = \frac1B\sum_i L_i(x_i + \varepsilon\,\mathrm{sign}\,g_i(x_i))
            + \lambda\Big(1 - \frac1B\sum_i \cos\big(\mathrm{sg}[g_i(x_i)],\, g_i(x_i + \eta_i)\big)\Big)

    As in the authors' code, the FGSM point starts at x (no random start, step ε), g(x) and the FGSM
    offset are held constant, and only g(x + η) is differentiated (double backprop).  The cosine is
    normalize(a)ᵀnormalize(b) (``perturbations.normalize``): 0, with derivative 0, where a gradient is
    zero, so a dead network gives no NaN.  η is drawn afresh each call from ``self.rng`` (derived from
    ``seed``); ``frozen`` holds η, g(x) and the FGSM offset.
    """

    includes_data_loss = True
    name = "gradalign"

    def __init__(self, eps, lam=0.2, seed=0):
        self.eps = validate.eps(eps, "eps", "GradAlign")
        self.lam = validate.number(lam, "lam", "GradAlign", low=0)
        self.rng = np.random.default_rng(child_seed(seed, "gradalign"))

    def settings(self):
        return f"eps={fmt(self.eps)},lam={fmt(self.lam)}"

    def held(self, model, x, y) -> dict:
        """The stopped quantities: g(x), the FGSM offset ε·sign g(x), and the draw η."""
        x = unwrap(x)
        g = P.input_gradient(model, x, y).detach()
        return dict(g=g, delta=(F.sign(g) * self.eps).detach(), eta=_uniform(self.rng, x, self.eps))

    @staticmethod
    def cosine(a, b) -> Tensor:
        """cos(aᵢ, bᵢ) per example, shape (batch,), zero-safe (0 where either is 0)."""
        return _per_example_dot(P.normalize(a), P.normalize(b))

    def loss_at(self, model, x, y, g, delta, eta) -> Tensor:
        x = unwrap(x)
        perturbed = data_loss(model, Tensor(x) + delta, y)
        if not self.lam:
            return perturbed
        g_eta = P.input_gradient(model, x + eta, y, create_graph=True)
        return perturbed + (1 - F.mean(self.cosine(g, g_eta))) * self.lam

    def __call__(self, model, x, y):
        return self.loss_at(model, x, y, **self.held(model, x, y))

    def frozen(self, model, x, y):
        return Frozen(self, **self.held(model, x, y))


class CURE(Objective):
    r"""L(x) + λ·mean ‖gᵢ(x + h·zᵢ) − gᵢ(x)‖₂²,  zᵢ = sign gᵢ(x) / ‖sign gᵢ(x)‖₂, z stopped.

    Moosavi-Dezfooli, Fawzi, Uesato & Frossard (CVPR 2019), "Robustness via curvature regularization,
    and vice versa": robust training works by flattening the loss in x, so penalise the
    curvature directly.  By a finite difference along a high-curvature direction z,
    g(x + hz) − g(x) ≈ h·∇²ₓL z: the penalty is ≈ λh²‖Hz‖², H the input Hessian.

    .. math::

        \mathcal{L}(\theta) = \frac1B\sum_i L_i(x_i)
            + \lambda\,\frac1B\sum_i \big\| g_i(x_i + h z_i) - g_i(x_i) \big\|_2^2,
        \qquad z_i = \mathrm{sg}\Big[\frac{\mathrm{sign}\, g_i(x_i)}{\|\mathrm{sign}\, g_i(x_i)\|_2}\Big]

    Both gradients are differentiated (double backprop), z is held.  With h = ε·√D (the registry's
    choice, ``members``), h·z = ε·sign g wherever g has no zero coordinate: the change of the gradient
    on the way to the FGSM point of the ℓ∞ ball.  A zero gᵢ gives zᵢ = 0 and no penalty.  The clean
    forward is shared by L(x), g(x) and z.  Deterministic: ``frozen`` holds z.
    """

    includes_data_loss = True
    name = "cure"

    def __init__(self, lam, h):
        self.lam = validate.number(lam, "lam", "CURE", low=0)
        self.h = validate.number(h, "h", "CURE", low=0, open_low=True)

    def settings(self):
        return f"lam={fmt(self.lam)},h={fmt(self.h)}"

    @staticmethod
    def direction(g) -> Tensor:
        """z = sign g / ‖sign g‖₂ per example (0 where g = 0), a constant."""
        return P.normalize(F.sign(g.detach())).detach()

    def _value(self, model, x, y, z=None):
        _, summed, g = _graph_at(model, x, y)
        clean = summed / len(y)
        if not self.lam:
            return clean
        z = self.direction(g) if z is None else z
        diff = P.input_gradient(model, unwrap(x) + (z * self.h).data, y, create_graph=True) - g
        return clean + F.mean(P.per_example_squared_norm(diff)) * self.lam

    def loss_at(self, model, x, y, z) -> Tensor:
        return self._value(model, x, y, z)

    def __call__(self, model, x, y):
        return self._value(model, x, y)

    def frozen(self, model, x, y):
        return Frozen(self, z=self.direction(P.input_gradient(model, x, y)))


class LocalLinearity(Objective):
    r"""L(x) + λ·mean γᵢ + μ·mean |δᵢᵀgᵢ(x)|,  γᵢ = |Lᵢ(x + δᵢ) − Lᵢ(x) − δᵢᵀgᵢ(x)|,  δ stopped.

    Qin, Martens, Gowal, Krishnan, Dvijotham, Fawzi, De, Stanforth & Kohli (NeurIPS 2019),
    "Adversarial robustness through local linearization" ("LLR"): if the loss is nearly
    linear in the ball, its worst case there is nearly L(x) + max δᵀg, so penalise the local linearity
    error γ(ε, x), the max over ‖δ‖∞ ≤ ε of |L(x + δ) − L(x) − δᵀg|, and the first-order term at its maximiser.

    .. math::

        \mathcal{L}(\theta) = \frac1B\sum_i \Big[ L_i(x_i)
            + \lambda\,\big|L_i(x_i + \delta_i) - L_i(x_i) - \delta_i^\top g_i(x_i)\big|
            + \mu\,\big|\delta_i^\top g_i(x_i)\big| \Big],
        \quad \delta_i = \mathrm{sg}\Big[\arg\max_{\|\delta\|_\infty \le \varepsilon}
            \big|L_i(x_i + \delta) - L_i(x_i) - \delta^\top g_i(x_i)\big|\Big]

    δ (``maximiser``): from δ₀ ~ U[−ε, ε]ᴰ (drawn from ``self.rng``), ``steps`` signed-gradient
    ascent steps of size ``step_size`` (default ε/4) on the linearity error, each projected back
    into the ball, with L(x) and g(x) held at their values; it is then held constant and every
    other quantity is differentiated, g(x) by double backprop.  The clean forward is shared by
    L(x), g(x) and the inner loop.  abs′(0) = 0.  ``frozen`` holds δ.
    """

    includes_data_loss = True
    name = "llr"

    def __init__(self, eps, lam=4.0, mu=3.0, steps=10, step_size=None, seed=0):
        who = "LocalLinearity"
        self.eps = validate.eps(eps, "eps", who)
        self.lam = validate.number(lam, "lam", who, low=0)
        self.mu = validate.number(mu, "mu", who, low=0)
        self.steps = validate.integer(steps, "steps", who, low=0)
        self.step_size = (self.eps / 4 if step_size is None
                          else validate.number(step_size, "step_size", who, low=0, open_low=True))
        self.rng = np.random.default_rng(child_seed(seed, "llr"))

    def settings(self):
        return f"eps={fmt(self.eps)},lam={fmt(self.lam)},mu={fmt(self.mu)}"

    @staticmethod
    def linearity_error(losses_at, losses, delta, g) -> Tensor:
        """γᵢ = |Lᵢ(x + δᵢ) − Lᵢ(x) − δᵢᵀgᵢ| per example."""
        return F.abs(losses_at - losses - _per_example_dot(delta, g))

    def maximiser(self, model, x, y, losses=None, g=None) -> Tensor:
        """δ: the inner maximisation of the linearity error (a constant, shape of x)."""
        x = unwrap(x)
        if g is None:
            losses, _, g = _graph_at(model, x, y)
        losses, g = losses.detach(), g.detach()
        delta = _uniform(self.rng, x, self.eps)
        xp = g.xp
        for _ in range(self.steps):
            d = Tensor(delta, requires_grad=True)
            with enable_grad():
                at = F.cross_entropy(model(Tensor(x) + d), y, reduction="none")
                (ascent,) = grad(F.sum(self.linearity_error(at, losses, d, g)), d)
            delta = xp.clip(delta + self.step_size * xp.sign(ascent.data), -self.eps, self.eps)
        return Tensor(delta)

    def _value(self, model, x, y, delta=None):
        losses, summed, g = _graph_at(model, x, y)
        clean = summed / len(y)
        if not (self.lam or self.mu):
            return clean
        delta = self.maximiser(model, x, y, losses, g) if delta is None else delta
        at = F.cross_entropy(model(Tensor(unwrap(x)) + delta), y, reduction="none")
        gamma = self.linearity_error(at, losses, delta, g)
        return clean + F.mean(gamma) * self.lam + F.mean(F.abs(_per_example_dot(delta, g))) * self.mu

    def loss_at(self, model, x, y, delta) -> Tensor:
        return self._value(model, x, y, delta)

    def __call__(self, model, x, y):
        return self._value(model, x, y)

    def frozen(self, model, x, y):
        return Frozen(self, delta=self.maximiser(model, x, y))


__all__ = ["GradAlign", "CURE", "LocalLinearity"]
