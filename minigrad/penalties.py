"""The explicit-penalty face of the family: members that penalise an input gradient, trained exactly by
double backprop (the penalty is built from gradients taken with ``create_graph=True`` from the same
forward pass as L, so its θ-gradient is a mixed second derivative).

- ``InputGradientPenalty`` α·L + β·mean R(gᵢ), and its three paper names: ``GradientPenalty`` (gp-q1,
  gp-q2), ``DataGrad`` (datagrad-l1, datagrad-l2), ``DoubleBackprop`` (double-backprop);
- the neighbours, each objective in its class: ``JacobianPenalty`` ('jacreg', the squared Frobenius
  norm of the logits' Jacobian: K backward passes with a graph), ``SpectralPenalty`` ('spectreg', its
  one-draw estimate: one backward) and ``WassersteinPenalty`` ('wasserstein-p1', 'wasserstein-p2', a
  power mean of the gradients' dual norms over the batch: one backward);
- the successors that penalise curvature (GradAlign, CURE, LLR) are the face's second module, ``curvature.py``.

Same conventions throughout: every member is an ``Objective``, each example's gradient comes from the
*summed* output so it is that example's own, every batch objective is a mean over the B examples.
f(x), K numbers, are the network's **logits** (the model's output, before the softmax that lives in the
loss), Jᵢ = ∂f(xᵢ)/∂xᵢ example i's Jacobian (K rows, D columns), gᵢ = ∇ₓᵢLᵢ its loss gradient.

Beyond classifiers: ``critic_gradient_penalty`` is the input-gradient penalty of a Wasserstein GAN's
critic at ``interpolates`` between real and generated points, two-sided (WGAN-GP) or one-sided
(WGAN-LP); tutorials/09_gradient_penalties_beyond_classifiers.py trains both.  (At the ~400-line guide:
each equation is written twice, for ``help()`` and for the docs site.)
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from . import perturbations as P
from . import validate
from .backend import as_numpy, device_of, to_device
from .objective import Frozen, Objective, child_seed, data_loss
from .tensor import Tensor, enable_grad, grad, no_grad, unwrap
from .validate import fmt


class InputGradientPenalty(Objective):
    r"""α·L + β·mean R(gᵢ), gᵢ = ∇ₓᵢLᵢ, R the norm ‖g‖_q or the squared ‖g‖₂² (``squared=True``):

        α·L + β·(1/B) Σᵢ R(gᵢ),    R(g) = ‖g‖_q  or  ‖g‖₂²

    .. math::

       \alpha L + \frac{\beta}{B} \sum_i R(g_i), \qquad R(g) = \|g\|_q \ \text{or}\ \|g\|_2^2.

    The explicit-penalty face of the family, trained exactly by double backprop: g is taken with
    ``create_graph=True`` from the same forward pass as L, so the penalty's θ-gradient is β times the
    mixed second derivative ∂²L/∂θ∂x applied to the gradient of R at g.  The norm is zero-safe: a zero
    gradient contributes 0, never NaN.  The paper names are ``GradientPenalty``, ``DataGrad`` and
    ``DoubleBackprop`` below: one implementation.
    """

    includes_data_loss = True

    def __init__(self, alpha, beta, q, squared=False):
        who = type(self).__name__
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
    r"""L + ε·mean ‖gᵢ‖_q, q = dual_exponent(p): the linearised minimax objective itself.

    By Hölder, the max of gᵀr over the ball ‖r‖ₚ ≤ ε is ε‖g‖_q (Lyu, Huang & Liang 2015, eq. 5;
    science page §1), so the linearised inner max is this penalty:

        max over ‖r‖ₚ ≤ ε of gᵀr = ε‖g‖_q,    L + ε·(1/B) Σᵢ ‖gᵢ‖_q,    1/p + 1/q = 1

    .. math::

       \max_{\|r\|_p \le \varepsilon} g^\top r = \varepsilon \|g\|_q, \qquad
       L + \frac{\varepsilon}{B} \sum_i \|g_i\|_q, \qquad \frac1p + \frac1q = 1.

    p = ∞ penalises ‖g‖₁ (the FGSM member, 'gp-q1'), p = 2 ‖g‖₂ ('gp-q2'), p = 1 the largest |gᵢⱼ|."""

    def __init__(self, eps, p=np.inf):
        self.eps = validate.eps(eps, "eps", "GradientPenalty")
        self.p = validate.exponent(p, "p", "GradientPenalty")
        super().__init__(1.0, self.eps, P.dual_exponent(self.p))

    name = property(lambda self: f"gp-q{fmt(self.q)}")

    def settings(self):
        return f"eps={fmt(self.eps)}"


class DataGrad(InputGradientPenalty):
    r"""The DataGrad objective α·L + β·mean R(Jᵢ), Jᵢ = ∂Lᵢ/∂xᵢ, R = ‖J‖₁ ('l1') or ‖J‖₂² ('l2'), exact:

        L_DG = α·L + β·(1/B) Σᵢ R(Jᵢ),    R(J) = ‖J‖₁  or  ‖J‖₂²

    .. math::

       L_{\mathrm{DG}} = \alpha L + \frac{\beta}{B} \sum_i R(J_i), \qquad
       J_i = \frac{\partial L_i}{\partial x_i}, \qquad R(J) = \|J\|_1 \ \text{or}\ \|J\|_2^2.

    Ororbia, Kifer & Giles (2017), the DataGrad objective (science page §2), by double backprop.
    DataGrad-L1 with α = 1, β = ε is ``GradientPenalty(ε, p=∞)``.  The finite-difference
    (perturbed-point) way to train it is ``DataGradFD``."""

    def __init__(self, alpha=1.0, beta=0.01, norm="l1"):
        self.norm = validate.choice(norm, ("l1", "l2"), "norm", "DataGrad")
        super().__init__(alpha, beta, 1 if norm == "l1" else 2, squared=norm == "l2")

    name = property(lambda self: f"datagrad-{self.norm}")


class DoubleBackprop(InputGradientPenalty):
    r"""L + λ·mean Σⱼ (∂Lᵢ/∂xᵢⱼ)², the squared input gradient (Drucker & LeCun 1992: E + λΣ(∂E/∂xᵢ)²):

        L + λ·(1/B) Σᵢ Σⱼ (∂Lᵢ/∂xᵢⱼ)²

    .. math::

       L + \frac{\lambda}{B} \sum_i \sum_j \Bigl(\frac{\partial L_i}{\partial x_{ij}}\Bigr)^2.

    Exactly DataGrad-L2 with α = 1, β = λ."""

    def __init__(self, lam):
        self.lam = validate.number(lam, "lam", "DoubleBackprop", low=0)
        super().__init__(1.0, self.lam, 2, squared=True)

    name = "double-backprop"

    def settings(self):
        return f"lam={fmt(self.lam)}"


def _logits_with_input(model, x):
    """(x as a leaf that requires grad, f(x)), recorded even inside a caller's no_grad()."""
    xt = Tensor(unwrap(x), requires_grad=True)
    with enable_grad():
        return xt, model(xt)


class JacobianPenalty(Objective):
    r"""L + λ·mean of the squared Frobenius norm of ∂f(xᵢ)/∂xᵢ, f the logits: Varga, Csiszárik & Zombori
    (2017), "JacReg":

        L + λ·(1/B) Σᵢ ‖∂f(xᵢ)/∂xᵢ‖_F²,    ‖J‖_F² = Σₖ ‖∇ₓfₖ‖₂²

    .. math::

       L + \frac{\lambda}{B} \sum_i \Bigl\|\frac{\partial f(x_i)}{\partial x_i}\Bigr\|_F^2, \qquad
       \|J\|_F^2 = \sum_k \|\nabla_x f_k\|_2^2.

    The Frobenius regulariser of "Gradient regularization improves accuracy of discriminative
    models" (arXiv 1712.09936, §3): the squared Frobenius norm of the Jacobian of the logits with
    respect to the input, the sum over classes k of ‖∇ₓfₖ‖₂².  Exact: row k of every example's Jacobian is
    ∇ₓ Σᵢ fₖ(xᵢ) (examples do not interact, so the summed output gives each its own row), one
    backward pass per class, each recorded (``create_graph=True``) so the penalty can be
    differentiated with respect to θ.  Cost: a forward, K = n_classes backward passes with a graph,
    and a training step's backward through all K of them: about K times double backprop's
    (``SpectralPenalty`` estimates the same penalty at the cost of one).  Double backpropagation
    (``DoubleBackprop``) penalises instead the loss gradient gᵢ = Jᵢᵀ(pᵢ − e(yᵢ)), one direction of J
    (e(y) the one-hot vector of label y).
    """

    includes_data_loss = True
    name = "jacreg"

    def __init__(self, lam):
        self.lam = validate.number(lam, "lam", type(self).__name__, low=0)

    def settings(self):
        return f"lam={fmt(self.lam)}"

    def penalty(self, model, x) -> Tensor:
        """The squared Frobenius norm of Jᵢ per example, shape (batch,), a graph over θ."""
        return self._penalty(*_logits_with_input(model, x))

    @staticmethod
    def _penalty(xt, logits):
        total = None
        for k in range(logits.shape[1]):
            row = xt.xp.zeros(logits.shape, dtype=logits.dtype)
            row[:, k] = 1
            (jk,) = grad(logits, xt, grad_outputs=Tensor(row), create_graph=True)  # row k of every Jᵢ
            rows = P.per_example_squared_norm(jk)
            total = rows if total is None else total + rows
        return total

    def __call__(self, model, x, y):
        xt, logits = _logits_with_input(model, x)
        clean = F.cross_entropy(logits, y)
        return clean + F.mean(self._penalty(xt, logits)) * self.lam if self.lam else clean


class SpectralPenalty(Objective):
    r"""L + λ·mean ‖Jᵢᵀrᵢ‖₂², rᵢ a standard normal draw of K numbers: Varga et al.'s "SpectReg"
    (arXiv 1712.09936, §3), f the logits, and an unbiased estimate of ``JacobianPenalty``'s:

        L + λ·(1/B) Σᵢ ‖∇ₓᵢ(rᵢᵀf(xᵢ))‖₂² = L + λ·(1/B) Σᵢ ‖Jᵢᵀrᵢ‖₂²,    rᵢ ~ N(0, I_K)
        E_r ‖Jᵀr‖² = tr(J E[rrᵀ] Jᵀ) = ‖J‖_F²

    .. math::

       L + \frac{\lambda}{B} \sum_i \bigl\|\nabla_{x_i}\bigl(r_i^\top f(x_i)\bigr)\bigr\|_2^2
         = L + \frac{\lambda}{B} \sum_i \|J_i^\top r_i\|_2^2, \qquad r_i \sim \mathcal N(0, I_K),

       \mathbb E_r \|J^\top r\|_2^2 = \operatorname{tr}\bigl(J \, \mathbb E[r r^\top] J^\top\bigr) = \|J\|_F^2,

    at the cost of one backward pass (``Jᵢᵀrᵢ`` for the whole batch is the input gradient of
    Σᵢ rᵢᵀf(xᵢ)) instead of K.  A fresh r, one per example, is drawn at every call from ``self.rng``,
    a generator derived from ``seed`` (reproducible, and independent of a model built with the same
    seed); the training direction is the θ-gradient at that draw.  ``frozen`` holds one draw
    (``loss_at(..., r=)``), which is what a gradient check differentiates.
    """

    includes_data_loss = True
    name = "spectreg"

    def __init__(self, lam, seed=0):
        self.lam = validate.number(lam, "lam", type(self).__name__, low=0)
        self.rng = np.random.default_rng(child_seed(seed, "spectreg"))

    def settings(self):
        return f"lam={fmt(self.lam)}"

    def draw(self, logits_shape, like) -> Tensor:
        """r, a standard normal draw of K numbers per example: shape (batch, K), the dtype and device of
        ``like``."""
        r = self.rng.standard_normal(logits_shape).astype(like.dtype)
        return Tensor(to_device(r, device_of(like.data)))

    def penalty(self, model, x, r=None) -> Tensor:
        """‖Jᵢᵀrᵢ‖₂² per example (r: (batch, K); none given: a fresh draw), a graph over θ."""
        xt, logits = _logits_with_input(model, x)
        return self._penalty(xt, logits, self.draw(logits.shape, logits) if r is None else r)

    @staticmethod
    def _penalty(xt, logits, r):
        (jr,) = grad(logits, xt, grad_outputs=Tensor(unwrap(r)), create_graph=True)
        return P.per_example_squared_norm(jr)

    def loss_at(self, model, x, y, r) -> Tensor:
        xt, logits = _logits_with_input(model, x)
        clean = F.cross_entropy(logits, y)
        return clean + F.mean(self._penalty(xt, logits, r)) * self.lam if self.lam else clean

    def __call__(self, model, x, y):
        xt, logits = _logits_with_input(model, x)
        clean = F.cross_entropy(logits, y)
        if not self.lam:  # no penalty: no draw, no second-order graph
            return clean
        return clean + F.mean(self._penalty(xt, logits, self.draw(logits.shape, logits))) * self.lam

    def frozen(self, model, x, y):
        with no_grad():  # only the logits' shape is needed, for the draw
            shape = model(Tensor(unwrap(x))).shape
        return Frozen(self, r=self.draw(shape, Tensor(unwrap(x))))


def _aggregate(a: Tensor, q: float) -> Tensor:
    """The power mean of order q of a ≥ 0 of shape (B,): ‖a‖_q divided by B to the power 1/q; q = ∞:
    max aᵢ.  Zero-safe (``LpNorm``): a = 0 gives 0 with derivative 0, never NaN."""
    scale = 1.0 if q == np.inf else float(a.shape[0]) ** (-1.0 / q)
    return F.lp_norm(a, q) * scale


def transport_budgets(a, eps, p) -> np.ndarray:
    r"""Budgets δᵢ ≥ 0 maximising mean δᵢaᵢ (aᵢ ≥ 0) while their power mean of order p is at most ε
    (p = ∞: every δᵢ ≤ ε).

    Hölder on the uniform measure over the batch bounds mean δa by the power mean of δ of order p
    times that of a of order q, with equality when δᵢ to the power p is proportional to aᵢ to the power q,
    so (1 < p < ∞)

        δᵢ = ε·aᵢ^(q−1) / (mean_j aⱼ^q)^(1/p),    and then  mean δᵢaᵢ = ε·(mean aᵢ^q)^(1/q)

    .. math::

       \delta_i = \varepsilon \, \frac{a_i^{q-1}}{\bigl(\frac1B \sum_j a_j^q\bigr)^{1/p}}, \qquad
       \frac1B \sum_i \delta_i a_i = \varepsilon \Bigl(\frac1B \sum_i a_i^q\Bigr)^{1/q}.

    p = 1 (q = ∞): the whole budget on the largest aᵢ, which gets B·ε (tied maxima share it evenly:
    each of t gets B·ε/t), the others 0, giving ε·max aᵢ;  p = ∞ (q = 1): δᵢ = ε for all i, giving
    ε·mean aᵢ.  All a = 0: δ = 0 (nothing gains)."""
    a = np.asarray(a, dtype=float)
    p = validate.exponent(p, "p", "transport_budgets")
    eps = validate.eps(eps, "eps", "transport_budgets")
    if p == np.inf:
        return np.full_like(a, eps)
    if not a.any():
        return np.zeros_like(a)
    if p == 1:
        top = (a == a.max()).astype(float)
        return top * (len(a) * eps / top.sum())
    q = P.dual_exponent(p)
    u = a / a.max()  # scaled so a^q can neither overflow nor underflow
    return eps * u ** (q - 1) / np.mean(u ** q) ** (1 / p)


def wasserstein_worst_case(g, eps, p, ground=2.0) -> np.ndarray:
    """rᵢ = worst_case(gᵢ, δᵢ, ground), the budgets δ = ``transport_budgets`` of the dual norms of the gᵢ:
    the maximiser of the linearised loss mean gᵢᵀrᵢ over the moves whose ground norms have a power mean of
    order p of at most ε (the ground norm is ℓ-``ground``).  Per example, Hölder gives the max of gᵢᵀrᵢ
    over ‖rᵢ‖ ≤ δᵢ as δᵢ times the dual norm of gᵢ; the budgets then share ε across examples.  Returns a
    raw array, the shape of g."""
    g = unwrap(g)
    a = as_numpy(P.per_example_norm(g, P.dual_exponent(ground)).data)
    delta = transport_budgets(a, eps, p)
    unit = as_numpy(P.worst_case(g, 1.0, ground).data)
    return unit * delta.reshape((-1,) + (1,) * (unit.ndim - 1))


class WassersteinPenalty(Objective):
    r"""L + ε times the power mean of order q of the dual norms of the gᵢ, 1/p + 1/q = 1: Gao, Chen &
    Kleywegt (2017), "Wasserstein distributional robustness and regularization" (arXiv 1712.06050,
    Theorem 1/eq. 5).

    The worst case over the order-p Wasserstein ball of radius ε around the empirical distribution
    of the batch, with transport cost ‖x − x'‖ (the *ground* norm, ℓ-``ground``, default ℓ2, whose
    dual norm is ℓ2 again by default), is to first order

        sup over W_p(Q, P_B) ≤ ε of E_Q L = mean_i Lᵢ + ε·(mean_i ‖gᵢ‖_*^q)^(1/q) + O(ε²),

    .. math::

       \sup_{W_p(Q, P_B) \le \varepsilon} \mathbb E_Q L
         = \frac1B \sum_i L_i + \varepsilon \Bigl(\frac1B \sum_i \|g_i\|_*^q\Bigr)^{1/q} + O(\varepsilon^2),

    gᵢ = ∇ₓᵢLᵢ (from the summed loss).  p = 1 (q = ∞): ε times the largest dual norm (all the transport
    budget on the most sensitive example); p = 2: ε times their root mean square; p = ∞ (q = 1):
    ε times their mean, which is Lyu et al.'s ``GradientPenalty(ε, p=ground)``: the same dual norm, a
    different aggregation over the data.  The maximiser is ``wasserstein_worst_case``
    (science page §4 claim 10).  The aggregate runs over the minibatch, the empirical distribution a
    step sees, so for p < ∞ the penalty depends on the batch size (p = 1: the max over more examples).
    Trained exactly by double backprop.
    """

    includes_data_loss = True

    def __init__(self, eps, p=2.0, ground=2.0):
        who = "WassersteinPenalty"
        self.eps = validate.eps(eps, "eps", who)
        self.p = validate.exponent(p, "p", who)
        self.ground = validate.exponent(ground, "ground", who)
        self.q, self.dual = P.dual_exponent(self.p), P.dual_exponent(self.ground)

    name = property(lambda self: f"wasserstein-p{fmt(self.p)}"
                    + ("" if self.ground == 2 else f"-l{fmt(self.ground)}"))

    def settings(self):
        return f"eps={fmt(self.eps)}"

    def penalty(self, g: Tensor) -> Tensor:
        """The power mean of order q of the dual norms of the gᵢ, a scalar."""
        return _aggregate(P.per_example_norm(g, self.dual), self.q)

    def __call__(self, model, x, y):
        if not self.eps:
            return F.cross_entropy(model(Tensor(unwrap(x))), y)
        summed, g = P.loss_and_input_gradient(model, x, y, create_graph=True)
        return summed / len(y) + self.penalty(g) * self.eps


# --- beyond classifiers: the critic of a Wasserstein GAN ----------------------------------------------
def interpolates(real, fake, rng) -> np.ndarray:
    """x̂ᵢ = tᵢ·realᵢ + (1 − tᵢ)·fakeᵢ, tᵢ ~ U(0, 1) from ``rng`` (Gulrajani et al. 2017, Alg. 1): where
    a gradient-penalised critic's input gradient is taken.  Raw arrays in, a raw array out."""
    real, fake = unwrap(real), unwrap(fake)
    if real.shape != fake.shape:
        raise ValueError(f"interpolates: real and fake must have one shape, got {real.shape} and {fake.shape}")
    t = rng.random((real.shape[0],) + (1,) * (real.ndim - 1)).astype(real.dtype)
    return t * real + (1 - t) * fake


def critic_gradient_penalty(critic, points, one_sided=False) -> Tensor:
    """(‖∇ₓD(x̂ᵢ)‖₂ − 1)² per point, shape (batch,): the two-sided penalty of WGAN-GP (Gulrajani,
    Ahmed, Arjovsky, Dumoulin & Courville 2017, eq. 3); ``one_sided=True``: max(0, ‖∇ₓD(x̂ᵢ)‖₂ − 1)²,
    the Lipschitz penalty of WGAN-LP (Petzka, Fischer & Lukovnikov 2018, eq. 8), which only
    pushes a gradient norm down (a 1-Lipschitz critic may be flatter than 1).

    ``critic`` maps (batch, ...) to (batch, 1) or (batch,); each point's gradient is its own (from
    the summed output).  Recorded with ``create_graph=True``, so a critic loss
    mean D(fake) − mean D(real) + λ·mean(penalty) is trained exactly by double backprop.  The
    norm is zero-safe (``LpNorm``) and max(0, ·) uses relu′(0) = 0."""
    xt = Tensor(unwrap(points), requires_grad=True)
    with enable_grad():
        (g,) = grad(F.sum(critic(xt)), xt, create_graph=True)
        excess = P.per_example_norm(g, 2) - 1
        if one_sided:
            excess = F.relu(excess)
        return excess * excess


__all__ = ["JacobianPenalty", "SpectralPenalty", "WassersteinPenalty", "transport_budgets",
           "wasserstein_worst_case", "interpolates", "critic_gradient_penalty"]
