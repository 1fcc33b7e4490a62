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
be added to one (``CrossEntropy() + WeightDecay(l2=1e-4)``):

============================  ==================================  ==============================  ====
member (constructor)          objective (mean over examples i)    computed as                     kind
============================  ==================================  ==============================  ====
CrossEntropy()                L = mean Lᵢ                         one forward                     full
WeightDecay(l1, l2)           l1·Σ|W| + (l2/2)·ΣW², weights only  no forward                      term
AdversarialTraining(ε, p, a)  a·L(x) + (1−a)·L(x + r*),           one forward and backward to x,  full
                              r* = worst_case(g, ε, p), stopped   one forward at x + r*
GradientPenalty(ε, p)         L + ε·mean ‖gᵢ‖_q,  1/p + 1/q = 1   double backprop, one forward    full
DataGrad(α, β, norm,          α·L + β·mean R(gᵢ),                 'exact': double backprop;       full
         method, step=φ)      R = ‖g‖₁ ('l1') or ‖g‖₂² ('l2'),    'finite_difference': the
                              r = ∇R(g) = sign g or 2g            surrogate (α − β/φ)·L(x)
                                                                  + (β/φ)·L(x + φr), r stopped
DoubleBackprop(λ)             L + λ·mean ‖gᵢ‖₂²                   = exact DataGrad(1, λ, 'l2')    full
Multitask(decoder, γ, layer)  γ·MSE(decoder(h_layer(x)), x)       forward to the hidden layer     term
VirtualAdversarial(ε, ξ, K)   mean KL(p(·|x) ‖ p(·|x + r)),       K power iterations, then        term
                              p(·|x) and r stopped; no labels     one forward at x + r
============================  ==================================  ==============================  ====

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

import numbers
import warnings

import numpy as np

from . import functional as F
from . import perturbations as P
from .backend import device_of, to_device
from .nn import Linear
from .tensor import Tensor, grad, no_grad


# --- helpers -------------------------------------------------------------------------
def _child_seed(seed, purpose: str):
    """An independent stream for ``purpose`` derived from ``seed`` (an int or a Generator), so a
    decoder or a noise source seeded like the model does not replay the model's own draws."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.SeedSequence([int(seed), sum(map(ord, purpose))])


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _loss(model, x, y) -> Tensor:
    """L(x) = mean cross-entropy, x held constant."""
    return F.cross_entropy(model(Tensor(_data(x))), y)


def _clean_loss_and_gradient(model, x, y, create_graph: bool):
    """One forward pass gives both the batch-mean loss L(x), a graph over θ, and the
    per-example input gradients g."""
    g, summed = P.input_gradient(model, x, y, create_graph=create_graph, return_loss=True)
    return summed / len(y), g


def _per_example_sq(g: Tensor) -> Tensor:
    """‖gᵢ‖₂² per example, as Σ gᵢⱼ² (no square root, so smooth at g = 0)."""
    return F.sum(F.reshape(g * g, (g.shape[0], -1)), axis=1)


def _fmt(v) -> str:
    return "inf" if v == np.inf else f"{v:g}"


def _number(value, what: str, who: str, low=0.0, high=np.inf, open_low=False) -> float:
    """A finite real in [low, high] (or (low, high]); else ValueError naming the value."""
    bound = f"> {_fmt(low)}" if open_low else f">= {_fmt(low)}"
    if high != np.inf:
        bound = f"in {'(' if open_low else '['}{_fmt(low)}, {_fmt(high)}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{who}: {what} must be a number {bound}, got {value!r}")
    v = float(value)
    if not (np.isfinite(v) and (v > low if open_low else v >= low) and v <= high):
        raise ValueError(f"{who}: {what} must be a finite number {bound}, got {value!r}")
    return v


def _choice(value, options, what: str, who: str) -> str:
    if value not in options:
        raise ValueError(f"{who}: {what} must be one of {options}, got {value!r}")
    return value


def _count(value, what: str, who: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{who}: {what} must be an int >= 0, got {value!r}")
    return int(value)


# --- the base and composition ----------------------------------------------------------
class Objective:
    """``objective(model, x, y) -> loss``; its θ-gradient is the training direction."""

    includes_data_loss = False  # True: a full objective, trainable alone

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def __repr__(self):
        return self.name

    def __call__(self, model, x, y) -> Tensor:
        raise NotImplementedError

    def parameters(self) -> list:
        """Trainable parameters owned by the objective (give them to the optimizer too)."""
        return []

    def frozen(self, model, x, y) -> "Objective":
        """This objective with its stop-gradient quantities fixed at the current θ."""
        return self

    def __add__(self, other):
        if isinstance(other, numbers.Number) and other == 0:  # so sum([...]) works
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return Sum(self, other)

    def __radd__(self, other):
        return self.__add__(other)

    def __mul__(self, weight):
        if not isinstance(weight, numbers.Real):
            return NotImplemented
        return Scaled(weight, self)

    __rmul__ = __mul__


class Sum(Objective):
    """Σₖ objectiveₖ: losses add, so parameter gradients add."""

    def __init__(self, *members):
        flat = []
        for m in members:
            if not isinstance(m, Objective):
                raise TypeError(f"Sum: members must be Objectives, got {m!r}")
            flat.extend(m.members if isinstance(m, Sum) else [m])
        full = [m.name for m in flat if m.includes_data_loss and not isinstance(m, Scaled)]
        if len(full) > 1:  # e.g. CrossEntropy() + GradientPenalty(...): the data loss counted twice
            warnings.warn(f"Sum: {' and '.join(full)} each include the data loss, so it is counted "
                          f"{len(full)} times; add terms (WeightDecay, Multitask, VirtualAdversarial) to a "
                          "full objective, or scale the members deliberately (c * member)", stacklevel=3)
        self.members = flat

    includes_data_loss = property(lambda self: any(m.includes_data_loss for m in self.members))
    name = property(lambda self: " + ".join(m.name for m in self.members))

    def __call__(self, model, x, y):
        total = self.members[0](model, x, y)
        for m in self.members[1:]:
            total = total + m(model, x, y)
        return total

    def parameters(self):
        seen, out = set(), []
        for p in (p for m in self.members for p in m.parameters()):
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def frozen(self, model, x, y):
        return Sum(*(m.frozen(model, x, y) for m in self.members))


class Scaled(Objective):
    """c · objective, for a constant weight c >= 0."""

    def __init__(self, weight, member: Objective):
        self.weight = _number(weight, "weight", "Scaled")
        self.member = member

    includes_data_loss = property(lambda self: self.member.includes_data_loss)

    @property
    def name(self):
        inner = self.member.name
        return f"{_fmt(self.weight)}*" + (f"({inner})" if isinstance(self.member, Sum) else inner)

    def __call__(self, model, x, y):
        return self.member(model, x, y) * self.weight

    def parameters(self):
        return self.member.parameters()

    def frozen(self, model, x, y):
        return Scaled(self.weight, self.member.frozen(model, x, y))


class _Frozen(Objective):
    """``member.loss_at(model, x, y, **held)``: the member with ``held`` fixed (see frozen)."""

    def __init__(self, member, **held):
        self.member, self.held = member, held

    includes_data_loss = property(lambda self: self.member.includes_data_loss)
    name = property(lambda self: f"frozen({self.member.name})")

    def __call__(self, model, x, y):
        return self.member.loss_at(model, x, y, **self.held)

    def parameters(self):
        return self.member.parameters()


# --- plain loss and weight decay --------------------------------------------------------
class CrossEntropy(Objective):
    """L(θ) = (1/B) Σᵢ −log softmax(f(xᵢ; θ))[yᵢ]: the plain data loss."""

    includes_data_loss = True
    name = "ce"

    def __call__(self, model, x, y):
        return _loss(model, x, y)


class WeightDecay(Objective):
    """R(θ) = l1·Σ|W| + (l2/2)·Σ W²  (a term; add it to a full objective).

    Over every parameter named ``weight`` (the Linear and Maxout matrices); biases are
    not decayed, as is conventional (a bias does not scale the function's slope).  The
    ½ makes the gradient l1·sign(W) + l2·W, so ``l2`` is the weight-decay coefficient of
    SGD (PyTorch's ``weight_decay=l2``).  abs′(0) = 0.  x and y are not used.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _number(l1, "l1", "WeightDecay")
        self.l2 = _number(l2, "l2", "WeightDecay")

    @property
    def name(self):
        parts = [f"{k}={_fmt(v)}" for k, v in (("l1", self.l1), ("l2", self.l2)) if v]
        return f"wd({','.join(parts)})"

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


# --- perturbed-point members --------------------------------------------------------------
class _PerturbedPoint(Objective):
    """w₀·L(x) + w₁·L(x + δ), the offset δ = δ(g) held constant (stop-gradient).

    ``__call__`` takes L(x) and g from one forward pass; the loss it returns then needs
    a backward pass for θ only.  ``loss_at`` evaluates the same with a given δ."""

    includes_data_loss = True

    def _weights(self):  # (w₀, w₁)
        raise NotImplementedError

    def _offset(self, g: Tensor) -> Tensor:
        raise NotImplementedError

    def perturbation(self, model, x, y) -> Tensor:
        """The offset δ (a constant, shape of x) at which the perturbed loss is taken."""
        return self._offset(P.input_gradient(model, x, y)).detach()

    def loss_at(self, model, x, y, delta) -> Tensor:
        return self._mix(_loss(model, x, y), model, x, y, delta)

    def frozen(self, model, x, y):
        return _Frozen(self, delta=self.perturbation(model, x, y))

    def __call__(self, model, x, y):
        if not self._weights()[1]:  # no perturbed term: no input gradient either
            return _loss(model, x, y) * self._weights()[0]
        clean, g = _clean_loss_and_gradient(model, x, y, create_graph=False)
        return self._mix(clean, model, x, y, self._offset(g).detach())

    def _mix(self, clean, model, x, y, delta):
        w0, w1 = self._weights()
        if not w1:  # a zero weight costs no second forward
            return clean * w0
        perturbed = _loss(model, Tensor(_data(x)) + delta, y) * w1
        return perturbed + clean * w0 if w0 else perturbed


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
        self.eps = P.check_eps(eps, "AdversarialTraining")
        self.p = F.check_p(p, "AdversarialTraining")
        self.alpha = _number(alpha, "alpha", "AdversarialTraining", high=1.0)

    @property
    def name(self):
        extra = "" if self.alpha == 0.5 else f",alpha={_fmt(self.alpha)}"
        return f"adv-p{_fmt(self.p)}(eps={_fmt(self.eps)}{extra})"

    def _weights(self):
        return self.alpha, 1.0 - self.alpha

    def _offset(self, g):
        return P.worst_case(g, self.eps, self.p)


class DataGrad(_PerturbedPoint):
    """L_DG = α·L + β·mean_i R(Jᵢ),  Jᵢ = ∂Lᵢ/∂xᵢ,  R = ‖J‖₁ ('l1') or ‖J‖₂² ('l2').

    Ororbia, Kifer & Giles (2017), the DataGrad objective (PAPERS.md §2).
    ``method='exact'``: ∇θR = (∂²L/∂θ∂x)·∇_J R by double backprop: J is taken with
    ``create_graph=True`` and the penalty differentiated through it.

    ``method='finite_difference'`` (step φ > 0): since ∇θ(rᵀJ(θ)) = d/dφ ∇θL(x + φr)|₀ for a
    constant r = ∇_J R (sign J for L1, 2J for L2, per example),

        ∇θL_DG ≈ (α − β/φ)·∇θL(x) + (β/φ)·∇θL(x + φr),           error O(φ),

    realised as the surrogate loss (α − β/φ)·L(x) + (β/φ)·L(x + φr) with r stopped.  Jᵢ
    comes from the summed loss, so rᵢ is example i's own, and both sides are batch means:
    the surrogate's gradient tends to the exact one as φ → 0 (PAPERS.md §4 claim 4).  Its
    *gradient* is the point; its *value* ≈ α·L + β·mean rᵀJ, which is L_DG for L1 but
    counts the L2 penalty twice (rᵀJ = 2‖J‖₂²), so compare values only within a method.
    With r = sign J, α = 1, β = (1−a)ε, φ = ε this is exactly Goodfellow's a·L(x) +
    (1−a)·L(x + ε sign g) (PAPERS.md §4 claim 5).
    """

    def __init__(self, alpha=1.0, beta=0.01, norm="l1", method="exact", step=None):
        # step (φ) is used by method='finite_difference' only; validated whenever given.
        self.alpha = _number(alpha, "alpha", "DataGrad")
        self.beta = _number(beta, "beta", "DataGrad")
        self.norm = _choice(norm, ("l1", "l2"), "norm", "DataGrad")
        self.method = _choice(method, ("exact", "finite_difference"), "method", "DataGrad")
        if step is None and method == "finite_difference":
            raise ValueError("DataGrad: method='finite_difference' needs a step φ > 0, got None")
        self.step = None if step is None else _number(step, "step", "DataGrad", open_low=True)

    @property
    def name(self):
        fd = self.method == "finite_difference"
        tail = f",step={_fmt(self.step)}" if fd else ""
        return (f"datagrad-{self.norm}{'-fd' if fd else ''}"
                f"(alpha={_fmt(self.alpha)},beta={_fmt(self.beta)}{tail})")

    def penalty(self, g: Tensor) -> Tensor:
        """R(gᵢ) per example, shape (batch,)."""
        return P.lp_norm(g, 1) if self.norm == "l1" else _per_example_sq(g)

    def __call__(self, model, x, y):
        if self.method == "finite_difference":
            return super().__call__(model, x, y)
        if not self.beta:  # no penalty: no second-order graph
            return _loss(model, x, y) * self.alpha
        clean, g = _clean_loss_and_gradient(model, x, y, create_graph=True)
        return clean * self.alpha + F.mean(self.penalty(g)) * self.beta

    def frozen(self, model, x, y):
        return self if self.method == "exact" else super().frozen(model, x, y)

    def perturbation(self, model, x, y):
        if self.method == "exact":
            raise ValueError("DataGrad.perturbation: only method='finite_difference' has one")
        return super().perturbation(model, x, y)

    def _weights(self):
        return self.alpha - self.beta / self.step, self.beta / self.step

    def _offset(self, g):  # φ·∇_J R
        return F.sign(g) * self.step if self.norm == "l1" else g * (2 * self.step)


class DoubleBackprop(DataGrad):
    """L + λ·mean_i Σⱼ (∂Lᵢ/∂xᵢⱼ)²  (Drucker & LeCun 1992: E + λΣ(∂E/∂xᵢ)²).

    Exactly DataGrad-L2 computed by double backprop with α = 1, β = λ."""

    def __init__(self, lam):
        super().__init__(alpha=1.0, beta=_number(lam, "lam", "DoubleBackprop"), norm="l2")
        self.lam = self.beta

    name = property(lambda self: f"dbp(lam={_fmt(self.lam)})")


class GradientPenalty(Objective):
    """L + ε·mean_i ‖gᵢ‖_q,  q = dual_exponent(p): the explicit-penalty member.

    By Hölder, max_{‖r‖ₚ≤ε} gᵀr = ε‖g‖_q (Lyu, Huang & Liang 2015, eq. 5; PAPERS.md §1), so
    this is the linearised minimax objective itself, trained exactly: g is taken with
    ``create_graph=True`` and ∇θ(ε‖g‖_q) = ε (∂²L/∂θ∂x)·∂‖g‖_q/∂g by double backprop.
    p = ∞ penalises ‖g‖₁ (the FGSM member), p = 2 ‖g‖₂, p = 1 ‖g‖_∞.  The norm is zero-safe:
    a zero gradient contributes 0, never NaN.
    """

    includes_data_loss = True

    def __init__(self, eps, p=np.inf):
        self.eps = P.check_eps(eps, "GradientPenalty")
        self.p = F.check_p(p, "GradientPenalty")
        self.q = P.dual_exponent(self.p)

    name = property(lambda self: f"gp-p{_fmt(self.p)}(eps={_fmt(self.eps)})")

    def __call__(self, model, x, y):
        if not self.eps:  # no penalty: no second-order graph
            return _loss(model, x, y)
        clean, g = _clean_loss_and_gradient(model, x, y, create_graph=True)
        return clean + F.mean(P.lp_norm(g, self.q)) * self.eps


# --- terms that reach inside the model or carry no label -----------------------------------
class Multitask(Objective):
    """γ·(1/(B·D)) Σᵢ ‖dec(hₖ(xᵢ)) − xᵢ‖²: reconstruct the input from hidden layer k (a term).

    The multitask cue of DataGrad (Ororbia et al. 2017, PAPERS.md §2): a linear decoder
    (``nn.Linear(units → input_dim)``) maps hidden layer ``layer`` (the output of the k-th
    Maxout layer, ``model.activations(x)[model.hidden_index(k)]``) back to x.  The error is
    the mean squared error over examples *and* coordinates (PyTorch's ``mse_loss``), a
    choice that also suits inputs outside [0, 1].  Gradients reach both the encoder (the
    model up to layer k) and the decoder; the decoder belongs to this objective, so the
    optimizer must include ``objective.parameters()``.
    """

    def __init__(self, decoder, gamma, layer=0):
        if not callable(decoder) or not hasattr(decoder, "parameters"):
            raise TypeError(f"Multitask: decoder must be a Module (e.g. nn.Linear), got {decoder!r}")
        self.decoder = decoder
        self.gamma = _number(gamma, "gamma", "Multitask")
        self.layer = _count(layer, "layer", "Multitask")

    @classmethod
    def for_model(cls, model, gamma, layer=0, seed=0):
        """A Multitask term with a fresh ``nn.Linear`` decoder of the model's sizes, dtype and device.

        The decoder's initialisation is drawn from a stream *derived* from ``seed``: with the
        seed the model was built with, it would otherwise copy the first layer's weights."""
        hidden = model[model.hidden_index(layer)]
        first = model[model.hidden_index(0)]
        decoder = Linear(hidden.units, first.in_features, seed=_child_seed(seed, "multitask"),
                         dtype=first.weight.dtype)
        return cls(decoder.to(model.device), gamma, layer)

    name = property(lambda self: f"multitask(gamma={_fmt(self.gamma)})")

    def parameters(self):
        return self.decoder.parameters()

    def __call__(self, model, x, y=None):
        x = Tensor(_data(x))
        h = x
        for layer in model.layers[: model.hidden_index(self.layer) + 1]:
            h = layer(h)  # = model.activations(x)[idx], without running the layers above
        diff = self.decoder(h) - x
        return F.mean(diff * diff) * self.gamma


class VirtualAdversarial(Objective):
    """mean_i KL(p(·|xᵢ) ‖ p(·|xᵢ + rᵢ)), rᵢ = ε·dᵢ/‖dᵢ‖₂ (a label-free term).

    Miyato et al. (2016/2018), virtual adversarial training: r approximates the direction
    that most changes the prediction, the top eigenvector of the Hessian of
    d ↦ KL(p(·|x) ‖ p(·|x + d)) at d = 0, by K power iterations from a random unit d:

        d ← normalize(∇_d KL(p(·|x) ‖ p(·|x + ξd))),    then r = ε·d/‖d‖₂  (per example),

    with p(·|x) held constant throughout.  The term's gradient is −mean Σ p ∇θ log p(·|x + r)
    with p(·|x) and r stopped (Miyato's stop-gradient).  d₀ ~ N(0, I) is drawn from ``self.rng``,
    a generator derived from ``seed`` (a fresh draw per call, reproducible from the seed, and
    independent of a model built with the same seed), and moved to the data's device.  K = 0 gives a random direction.  Weight it with ``c * ...``.

    ξ: Miyato's 1e-6 in float64.  In float32, x + 1e-6·d rounds back to x for most pixels and
    the power iteration follows rounding noise, so the default there is 1e-3 (the direction then
    agrees with float64's to cosine 1.000 on digits; ``tests/test_regularizers.py`` checks it).
    """

    def __init__(self, eps, xi=None, power_iterations=1, seed=0):
        self.eps = P.check_eps(eps, "VirtualAdversarial")
        self.xi = None if xi is None else _number(xi, "xi", "VirtualAdversarial", open_low=True)
        self.power_iterations = _count(power_iterations, "power_iterations", "VirtualAdversarial")
        self.rng = np.random.default_rng(_child_seed(seed, "vat"))

    def step(self, dtype) -> float:
        """ξ for inputs of ``dtype`` (see the class docstring)."""
        if self.xi is not None:
            return self.xi
        return 1e-6 if np.dtype(dtype) == np.float64 else 1e-3

    name = property(lambda self: f"vat(eps={_fmt(self.eps)})")

    def target(self, model, x) -> Tensor:
        """log p(·|x), a constant."""
        with no_grad():
            return F.log_softmax(model(Tensor(_data(x))))

    def perturbation(self, model, x, y=None, target=None) -> Tensor:
        x = Tensor(_data(x))
        log_p = self.target(model, x) if target is None else target
        d0 = self.rng.standard_normal(x.shape).astype(x.dtype)
        d = P.worst_case(Tensor(to_device(d0, device_of(x.data))), 1.0, 2)  # unit ‖d‖₂
        for _ in range(self.power_iterations):
            probe = Tensor((d * self.step(x.dtype)).data, requires_grad=True)
            kl = F.sum(F.kl_divergence(log_p, F.log_softmax(model(x + probe))))
            (d,) = grad(kl, probe)  # the summed KL: each example's own gradient
            d = P.worst_case(d, 1.0, 2)
        return P.worst_case(d, self.eps, 2).detach()

    def loss_at(self, model, x, y, delta, target=None) -> Tensor:
        log_p = self.target(model, x) if target is None else target
        log_q = F.log_softmax(model(Tensor(_data(x)) + delta))
        return F.mean(F.kl_divergence(log_p, log_q))

    def __call__(self, model, x, y=None):
        log_p = self.target(model, x)
        return self.loss_at(model, x, y, self.perturbation(model, x, target=log_p), target=log_p)

    def frozen(self, model, x, y):
        log_p = self.target(model, x)
        return _Frozen(self, delta=self.perturbation(model, x, target=log_p), target=log_p)


__all__ = ["Objective", "Sum", "Scaled", "CrossEntropy", "WeightDecay", "AdversarialTraining",
           "GradientPenalty", "DataGrad", "DoubleBackprop", "Multitask", "VirtualAdversarial"]
