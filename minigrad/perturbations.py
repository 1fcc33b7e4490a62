r"""Closed-form worst-case perturbations, and the attacks that use them.

Linearise the loss around x:  L(x + r) ≈ L(x) + gᵀr  with g = ∇ₓL.  Over the ball
‖r‖ₚ ≤ ε, Hölder's inequality gives (Lyu, Huang & Liang 2015, eq. 4–6)

    max over ‖r‖ₚ ≤ ε of gᵀr = ε‖g‖_q,      1/p + 1/q = 1,

.. math::

   \max_{\|r\|_p \le \varepsilon} g^\top r = \varepsilon \|g\|_q, \qquad \frac1p + \frac1q = 1,

attained at the worst case (science page §1)

    r*ᵢ = ε · sign(gᵢ) · |gᵢ|^(q−1) / ‖g‖_q^(q−1)          (1 < p < ∞)
    p = ∞ (q = 1):  r* = ε·sign(g)                          the fast gradient sign method
    p = 2 (q = 2):  r* = ε·g/‖g‖₂
    p = 1 (q = ∞):  r* = ε·sign(gₖ)·eₖ,  k = argmax |gᵢ|

.. math::

   r^*_i = \varepsilon \, \operatorname{sign}(g_i) \, \frac{|g_i|^{q-1}}{\|g\|_q^{q-1}} \quad (1 < p < \infty),

   r^*_{p=\infty} = \varepsilon \operatorname{sign}(g), \qquad
   r^*_{p=2} = \varepsilon \frac{g}{\|g\|_2}, \qquad
   r^*_{p=1} = \varepsilon \operatorname{sign}(g_k) e_k, \ k = \arg\max_i |g_i|.

Everything here is per example: norms run over all axes but the first (the batch).
Conventions: sign(0) = 0, and g = 0 gives r* = 0 for every p, with no NaN.  For p = 1
with several coordinates tied for the largest |gᵢ|, ε is split *evenly* among them
(any convex combination is optimal; the even split is the minimum-norm choice and
the one that keeps r*(p) continuous as p → 1⁺).

``worst_case`` computes that closed form, case by case, with minigrad ops: on a constant g
(a training step, an attack) they record nothing, and on a g that is part of a graph the
result can be differentiated (science page §4 claim 7); training holds it constant.  That r* is
ε times the gradient of the dual norm, ε times the gradient of ‖g‖_q with respect to g (Hölder's equality case), is a test.

The attacks build on it.  ``fgm`` takes the closed-form step once (``fgsm`` is its
p = ∞ member, Goodfellow et al. 2015); ``pgd`` iterates steepest-ascent steps and
projects back onto the ball (``project``, exact for p = 1, 2, ∞); ``sample_ball``
draws uniform points of the ball for PGD's random start and for tests.  Attacks return
raw arrays (the adversarial batch), not Tensors: they are data, not part of a graph.
Evaluate attacks with the model in eval mode (``model.eval()``): in training mode
dropout makes every gradient, hence every attack, random.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import functional as F
from . import validate
from .backend import device_of, get_array_module, to_device
from .errors import InvalidArgument
from .tensor import Tensor, as_tensor, enable_grad, grad, unwrap


class NonFiniteGradient(ValueError):
    """An input gradient holds NaN or inf: the model or the loss has diverged
    (``train.fit`` reports it as the step where training diverged)."""


def dual_exponent(p) -> float:
    """q with 1/p + 1/q = 1:  q = p/(p − 1);  p = 1 ↔ q = ∞,  p = ∞ ↔ q = 1."""
    return _dual(validate.exponent(p, "p", "dual_exponent"))


def _dual(p: float) -> float:
    return np.inf if p == 1 else 1.0 if p == np.inf else p / (p - 1)


def _flat(g: Tensor) -> Tensor:
    if g.ndim < 1:
        raise ValueError("per-example functions need a batch axis; got a 0-d array")
    return F.reshape(g, (g.shape[0], math.prod(g.shape[1:])))  # not −1: an empty batch has no −1


def per_example_norm(g, p) -> Tensor:
    """‖gᵢ‖ₚ for each example i (over all axes but the first); shape (batch,).
    (Over any axes: ``functional.lp_norm``.)  Exact to rounding for any finite g whose norm the dtype
    can hold (``LpNorm`` scales each row by its max |gᵢ| before powering); inf only when the norm itself
    exceeds the dtype's maximum (‖(3e38, 3e38)‖₂ in float32).  An empty batch gives shape (0,)."""
    return F.lp_norm(_flat(as_tensor(g)), p, axis=1)


def per_example_squared_norm(g) -> Tensor:
    """‖gᵢ‖₂² = Σⱼ gᵢⱼ² for each example i, shape (batch,): no square root, so smooth at gᵢ = 0.
    The square itself exceeds float32's maximum once ‖gᵢ‖₂ > 1.8e19 (inf then is the true value rounded)."""
    g = as_tensor(g)
    return F.sum(F.reshape(g * g, (g.shape[0], -1)), axis=1)


def worst_case(g, eps, p) -> Tensor:
    """r* = the argmax of gᵀr over ‖r‖ₚ ≤ ε, per example, in closed form (see the module docstring).

    ``g``: the input gradient, (batch, ...), a Tensor or array; the result has its shape,
    dtype and device.  Differentiable in g when g is part of a graph (claim 7); for a
    constant g (every training step) the ops below record nothing: no graph is built.
    """
    return _worst_case(_checked_gradient(g), validate.eps(eps, "eps", "worst_case"),
                       validate.exponent(p, "p", "worst_case"))


def _checked_gradient(g) -> Tensor:
    g = as_tensor(g)
    if g.dtype.kind != "f":
        raise InvalidArgument(f"worst_case: g must be floating point, got dtype {g.dtype}")
    if g.ndim < 1 or g.shape[0] == 0:
        raise InvalidArgument(f"worst_case: g must hold at least one example along its first axis, got shape "
                              f"{g.shape}")
    if not bool(g.xp.isfinite(g.data).all()):
        raise NonFiniteGradient("worst_case: g contains NaN or inf; the loss or its gradient has diverged")
    return g


def _worst_case(g: Tensor, eps: float, p: float) -> Tensor:
    """worst_case for a checked g and validated ε, p (callers that validated once use this)."""
    return F.reshape(_unit_worst_case(_flat(g), p) * eps, g.shape)


def _unit_worst_case(flat: Tensor, p: float) -> Tensor:
    """r*/ε for each row of ``flat``:  sign(gᵢ)·|gᵢ|^(q−1) / ‖g‖_q^(q−1),  q = dual of p.

    This is also ∇_g‖g‖_q (Hölder's equality case; tests/test_perturbations.py checks it
    against the engine's derivative of LpNorm).  Masks are constants; g = 0 gives 0."""
    xp, dtype = flat.xp, flat.dtype
    if p == np.inf:  # q = 1: the fast gradient sign method
        return F.sign(flat)
    if p == 1:  # q = ∞: all of ε on the largest |gᵢ|; tied maxima share it evenly (a g = 0 row: none)
        a = xp.abs(flat.data)
        top = ((a == a.max(axis=1, keepdims=True)) & (a > 0)).astype(dtype)
        return F.sign(flat) * (top / xp.maximum(top.sum(axis=1, keepdims=True), 1))
    q = _dual(p)
    # r* is homogeneous of degree 0 in g, so r*(g) = r*(g/m) for any constant m > 0, at every order of
    # derivative.  With m the power of two 2^(e−1) ≤ max|gᵢ| < 2^e of each row, the row lies in (−2, 2):
    # ‖g‖_q can neither overflow (g = 2e38 in float32 gave ‖g‖₂ = inf and r* = 0) nor underflow, and
    # dividing by a power of two is exact, so every other g keeps its rounding bit for bit.
    _, e = xp.frexp(xp.abs(flat.data).max(axis=1, keepdims=True))
    flat = flat / xp.ldexp(xp.ones_like(e, dtype=dtype), e - 1)
    # The op itself (p was validated by the caller).
    norm = F.LpNorm.apply(flat, p=q, axis=1, keepdims=True)
    nonzero = (norm.data > 0).astype(dtype)
    norm = norm + (1 - nonzero)  # ‖g‖_q, or 1 where g = 0 (then r* = 0, not 0/0)
    if p == 2:
        return flat / norm * nonzero
    a = F.abs(flat)
    zero = (a.data == 0).astype(dtype)
    # (|gᵢ|/‖g‖_q)^(q−1) rather than |gᵢ|^(q−1)/‖g‖_q^(q−1): the ratio lies in [0, 1], so tiny or huge g
    # cannot underflow into 0/0.  Where gᵢ = 0 the base is set to 1 and the result masked: value 0 and
    # derivative 0, instead of the infinite slope of |g|^(q−1) for q < 2.
    ratio = (a / norm + zero) ** (q - 1) * (1 - zero)
    return F.sign(flat) * ratio * nonzero


def normalize(g) -> Tensor:
    """gᵢ/‖gᵢ‖₂ per example (0 where gᵢ = 0): the unit ℓ2 direction, r*(p = 2)/ε."""
    g = as_tensor(g)
    return F.reshape(_unit_worst_case(_flat(g), 2.0), g.shape)


class LossAndGradient(NamedTuple):
    """The summed loss Σᵢ Lᵢ (a graph over θ) and the per-example input gradients g."""
    summed_loss: Tensor
    input_gradient: Tensor


def loss_and_input_gradient(model, x, y, create_graph: bool = False, loss=F.cross_entropy) -> LossAndGradient:
    """(Σᵢ L(xᵢ, yᵢ), gᵢ = ∇ₓᵢ L) from one forward pass, so a caller needs no second one.

    g is taken from the *summed* loss: the gradient of a batch-mean loss is gᵢ/B, the right
    direction but a norm B times too small (science page §1).  ``create_graph=True`` keeps the
    graph, so a penalty on g can be differentiated (double backprop).
    """
    x = Tensor(unwrap(x), requires_grad=True)
    with enable_grad():  # an input gradient needs a graph even inside a caller's no_grad()
        summed = loss(model(x), y, reduction="sum")
        (g,) = grad(summed, x, create_graph=create_graph)
    return LossAndGradient(summed, g)


def input_gradient(model, x, y, create_graph: bool = False, loss=F.cross_entropy) -> Tensor:
    """gᵢ = ∇ₓᵢ L(xᵢ, yᵢ) for every example of the batch, shape of x (see ``loss_and_input_gradient``)."""
    return loss_and_input_gradient(model, x, y, create_graph, loss).input_gradient


# --- attacks -------------------------------------------------------------------------
def _batch(x, y, who):
    """x as a raw floating array with a batch axis, and y one label per example."""
    x = unwrap(x)
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    if x.dtype.kind != "f" or x.ndim < 1 or x.shape[0] == 0:
        raise InvalidArgument(f"{who}: x must be a floating array with a batch axis holding at least one "
                              f"example, got dtype {x.dtype} and shape {x.shape}")
    labels = unwrap(y)
    if getattr(labels, "shape", None) != x.shape[:1]:
        raise InvalidArgument(f"{who}: y must hold one label per example, shape {x.shape[:1]}, "
                         f"got shape {getattr(labels, 'shape', type(y).__name__)}")
    return x


def _check_clip(clip, x, who):
    """(lo, hi) with lo < hi, and x inside the box: then clipping x + r only shrinks
    every |rᵢ|, so the clipped point stays in the ℓp ball (for any p)."""
    if clip is None:
        return None
    try:
        lo, hi = (float(c) for c in clip)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: clip must be a pair (lo, hi) of numbers, got {clip!r}") from None
    if not lo < hi:
        raise ValueError(f"{who}: clip needs lo < hi, got ({lo}, {hi})")
    if x.size and (float(x.min()) < lo or float(x.max()) > hi):
        raise ValueError(f"{who}: x has values in [{float(x.min())}, {float(x.max())}], outside the "
                         f"clip box [{lo}, {hi}]; clipping could then move a point more than eps from x")
    return lo, hi


def _clip(x, box):
    return x if box is None else get_array_module(x).clip(x, box[0], box[1])


def fgm(model, x, y, eps, p, clip=None, loss=F.cross_entropy):
    """The fast gradient method: one closed-form step  x_adv = clip(x + r*(g, ε, p)).

    r* = the argmax of gᵀr over ‖r‖ₚ ≤ ε, with g = ∇ₓL per example (``worst_case``), the exact
    maximiser of the linearised loss (Lyu et al. 2015, eq. 4–6).  ``clip=(lo, hi)``
    keeps the result in the data box (x itself must lie in it).  Returns a raw array on
    x's device with x's dtype.  The model runs in whatever mode the caller set: use
    ``model.eval()`` to evaluate.
    """
    p, eps = validate.exponent(p, "p", "fgm"), validate.eps(eps, "eps", "fgm")
    x = _batch(x, y, "fgm")
    box = _check_clip(clip, x, "fgm")
    with enable_grad():  # an attack needs gradients even inside a caller's no_grad()
        g = input_gradient(model, x, y, loss=loss)
    return _clip(x + _worst_case(_checked_gradient(g), eps, p).data, box)


def fgsm(model, x, y, eps, clip=None, loss=F.cross_entropy):
    """The fast gradient sign method (Goodfellow et al. 2015): x + ε·sign(∇ₓL), the p = ∞
    member of ``fgm``."""
    return fgm(model, x, y, eps, np.inf, clip=clip, loss=loss)


def project(r, eps, p):
    """Euclidean projection of every example's r onto the ball ‖r‖ₚ ≤ ε:
    the v with ‖v‖ₚ ≤ ε nearest r in ‖·‖₂, exact for p ∈ {1, 2, ∞}.

    p = ∞: clip each coordinate to [−ε, ε];  p = 2: r·min(1, ε/‖r‖₂);
    p = 1: soft-thresholding vᵢ = sign(rᵢ)·max(|rᵢ| − θ, 0), with θ ≥ 0 chosen so that
    ‖v‖₁ = ε, found by sorting (Duchi, Shalev-Shwartz, Singer & Chandra 2008, Fig. 1).
    An example already in the ball is returned unchanged.  Other p have no closed-form
    projection and raise ValueError.  Takes and returns a raw array (or a Tensor's data).
    """
    p, eps = validate.exponent(p, "p", "project"), validate.eps(eps, "eps", "project")
    r = unwrap(r)
    if not hasattr(r, "dtype") or r.dtype.kind != "f" or r.ndim < 1:
        raise ValueError(f"project: r must be a floating array with a batch axis, got {type(r).__name__} "
                         f"{getattr(r, 'dtype', '')} {getattr(r, 'shape', '')}")
    xp, flat = get_array_module(r), r.reshape(len(r), -1)
    if p == np.inf:
        out = xp.clip(flat, -eps, eps)
    elif p == 2:
        # Each row over the power of two m = 2^(e−1) ≤ max|rᵢ| < 2^e (exact): u·u cannot overflow, even for
        # r = 2e38 in float32, and every other r keeps its rounding bit for bit.
        _, e = xp.frexp(xp.abs(flat).max(axis=1, keepdims=True))
        m = xp.ldexp(xp.ones_like(e, dtype=r.dtype), e - 1)
        u = flat / m
        n = xp.sqrt((u * u).sum(axis=1, keepdims=True))  # ‖r‖₂ / m
        # Outside: scale to the sphere; inside (or r = 0): r exactly.
        out = xp.where(n > eps / m, u * (eps / xp.where(n > 0, n, 1)).astype(r.dtype), flat)
    elif p == 1:
        out = _project_l1(flat, eps, xp)
    else:
        raise ValueError(f"project: exact projection is implemented for p = 1, 2 or inf, got p = {p} "
                         "(the lp ball for other p has no closed-form projection)")
    return out.reshape(r.shape)


def _project_l1(flat, eps, xp):
    a = xp.abs(flat)
    outside = a.sum(axis=1, keepdims=True) > eps
    u = -xp.sort(-a, axis=1)  # |r| in decreasing order
    css = xp.cumsum(u, axis=1)
    j = xp.arange(1, flat.shape[1] + 1, dtype=flat.dtype)
    # ρ = the largest j with u_j > (Σ_{i≤j} u_i − ε)/j: the coordinates that survive
    # thresholding.  j = 1 always qualifies (u₁ > u₁ − ε), which rounding can hide when
    # ε ≪ u₁, so it is set explicitly.
    alive = u - (css - eps) / j > 0
    alive[:, 0] = True
    rho = flat.shape[1] - xp.argmax(alive[:, ::-1], axis=1)
    theta = (xp.take_along_axis(css, (rho - 1)[:, None], axis=1) - eps) / rho[:, None]
    shrunk = xp.sign(flat) * xp.maximum(a - theta.astype(flat.dtype), 0)
    # θ is a difference of sums, so ‖shrunk‖₁ may exceed ε by a few ulps of max|r| (a lot
    # relative to a tiny ε): scale that excess away, so the result is always feasible.
    n1 = xp.abs(shrunk).sum(axis=1, keepdims=True)
    shrunk = shrunk * xp.minimum(1, eps / xp.where(n1 > 0, n1, 1)).astype(flat.dtype)
    return xp.where(outside, shrunk, flat)


def sample_ball(shape, eps, p, rng=None, surface=False) -> np.ndarray:
    """Random points of the ℓp ball {‖r‖ₚ ≤ ε}, one per example: a float64 host array of
    ``shape`` (batch, ...), norms over all axes but the first.

    Uniform in the ball (``surface=False``):

    - p = ∞: a uniform box, rᵢ ~ U(−ε, ε);
    - p = 2: r = ε·U^(1/D)·z/‖z‖₂ with z Gaussian: a uniform direction, and the radius law
      P(‖r‖ ≤ tε) = t^D of the D-dimensional ball;
    - other p (p = 1 included): Barthe, Guédon, Mendelson & Naor (2005): with zᵢ i.i.d. of
      density ∝ exp(−|t|ᵖ) and w ~ Exp(1), r = ε·z/(‖z‖ₚᵖ + w)^(1/p) is uniform in the
      ball.  |zᵢ| is drawn as Gamma(1 + 1/p)^(1/p)·U, which equals Gamma(1/p)^(1/p) in law
      and cannot underflow for large p.  (p = 1: z is Laplace, "Laplace direction".)

    ``surface=True`` gives points on the sphere ‖r‖ₚ = ε instead (p = ∞: one coordinate
    at ±ε; finite p: ε·z/‖z‖ₚ, the cone measure) — in any case feasible points.
    """
    p, eps = validate.exponent(p, "p", "sample_ball"), validate.eps(eps, "eps", "sample_ball")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n, d = shape[0], int(np.prod(shape[1:], dtype=np.int64))
    if p == np.inf:
        r = rng.uniform(-1.0, 1.0, (n, d))
        if surface:
            r[np.arange(n), rng.integers(d, size=n)] = rng.choice([-1.0, 1.0], size=n)
    elif p == 2:
        z = rng.standard_normal((n, d))
        radius = 1.0 if surface else rng.random((n, 1)) ** (1.0 / d)
        r = radius * z / np.linalg.norm(z, axis=1, keepdims=True)
    else:
        z = rng.gamma(1 + 1 / p, size=(n, d)) ** (1 / p) * rng.random((n, d))
        z *= rng.choice([-1.0, 1.0], size=(n, d))
        w_root = 0.0 if surface else rng.exponential(size=(n, 1)) ** (1 / p)
        m = np.maximum(np.abs(z).max(axis=1, keepdims=True), w_root)  # scale by m: no under/overflow
        r = z / (m * (((np.abs(z) / m) ** p).sum(axis=1, keepdims=True) + (w_root / m) ** p) ** (1 / p))
    return (eps * r).reshape(shape)


def pgd(model, x, y, eps, p, steps, step_size, random_start=False, clip=None, seed=None,
        loss=F.cross_entropy):
    r"""Projected gradient ascent on the loss over the ℓp ball around x (Madry et al. 2018):

        xₜ₊₁ = clip(x + Proj[‖·‖ₚ ≤ ε](xₜ + r*(gₜ, step_size, p) − x)),

    .. math::

       x_{t+1} = \operatorname{clip}\Bigl(x + \Pi_{\|\cdot\|_p \le \varepsilon}
       \bigl(x_t + r^*(g_t, \mathrm{step\_size}, p) - x\bigr)\Bigr),

    each step the steepest-ascent direction for the norm (``worst_case`` with budget
    ``step_size``; for p = 1 that moves one coordinate per step — correct, but slow),
    then the exact projection (``project``) and the box.  Clipping after projecting stays
    in the ball because x is in the box (see ``clip``).  p must be 1, 2 or ∞.
    ``random_start``: x₀ uniform in the ball (``sample_ball``, drawn with ``seed``).
    The whole batch moves at once: no loop over examples.  Returns a raw array on x's
    device with x's dtype; the model runs in the mode the caller set (use eval).
    """
    p, eps = validate.exponent(p, "p", "pgd"), validate.eps(eps, "eps", "pgd")
    if p not in (1, 2, np.inf):
        raise ValueError(f"pgd: p must be 1, 2 or inf (the norms with an exact projection), got {p}")
    steps = validate.integer(steps, "steps", "pgd", low=1)
    step_size = validate.number(step_size, "step_size", "pgd", low=0, open_low=True)
    x = _batch(x, y, "pgd")
    box = _check_clip(clip, x, "pgd")
    x_adv = x
    if random_start:
        start = sample_ball(x.shape, eps, p, np.random.default_rng(seed)).astype(x.dtype)
        x_adv = _clip(x + to_device(start, device_of(x)), box)
    for _ in range(steps):
        with enable_grad():
            g = input_gradient(model, x_adv, y, loss=loss)
        step = _worst_case(_checked_gradient(g), step_size, p).data
        x_adv = _clip(x + project(x_adv + step - x, eps, p), box)
    return x_adv
