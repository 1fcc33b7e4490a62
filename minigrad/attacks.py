r"""Iterative and black-box attacks: PGD with restarts, APGD (CE, DLR, targeted) and Square.

``perturbations`` holds the closed forms (the worst case r*, the projection onto the ball, uniform
points of the ball) and the one-step attacks; this module iterates them into the attacks a robust
error is judged by (the suite itself, and the signs of gradient masking, live in ``robust``).

Every attack here maximises a per-example loss ℓ over the feasible set

    S(x) = {x' : ‖x' − x‖ₚ ≤ ε,  0 ≤ x' ≤ 1},      p ∈ {2, ∞},

for the whole batch at once (no loop over examples), and returns the adversarial batch as a host
array of x's shape and dtype, inside S(x).  Where an example is misclassified at some point of the
run, that point is returned (success is sticky); otherwise the last or best iterate.  Gradients come
from the engine (``minigrad.grad`` of the summed loss: each row sees only its own loss); the
bookkeeping is NumPy.  The losses, with z the logits and π the classes sorted by decreasing zⱼ:

    ce       ℓ = −log softmax(z)_y
    margin   ℓ = max_{j≠y} zⱼ − z_y                                  (Carlini & Wagner 2017)
    dlr      ℓ = −(z_y − max_{j≠y} zⱼ) / (z_π₁ − z_π₃)                (Croce & Hein 2020, eq. 6)
    dlr-t    ℓ = −(z_y − z_t) / (z_π₁ − (z_π₃ + z_π₄)/2)              (targeted at class t, eq. 7)

DLR is invariant to a shift and a positive rescaling of the logits, which is why it still has a
gradient where softmax has saturated (logits ×10⁴ make float32 cross-entropy gradients exactly 0).
The chosen entries (y, the runner-up, π₁, π₃, π₄) are constant masks: the derivative of a sorted
value away from ties.  Each paper's formulas and numbers are restated in the project's docs.
"""
from __future__ import annotations

import math

import numpy as np

from . import functional as F
from . import perturbations as P
from . import validate
from .backend import as_numpy, to_device
from .errors import InvalidArgument
from .tensor import Tensor, enable_grad, grad, no_grad

LOSSES = ("ce", "margin", "dlr", "dlr-t")
_TINY = 1e-12  # keeps DLR's denominator away from 0 (AutoAttack's constant)


# --- checks (every public attack runs them before any work) -------------------------------------
def check_budget(eps, p, who):
    """(ε, p) for p ∈ {2, ∞}: ε > 0, and ε ≤ 1 for ℓ∞ (pixels lie in [0, 1], so a larger ℓ∞ ball
    is the whole box and the number is meaningless)."""
    p = validate.exponent(p, "p", who)
    if p not in (2.0, math.inf):
        raise InvalidArgument(f"{who}: p must be 2 or inf, got {p:g}")
    eps = validate.number(eps, "eps", who, low=0, high=1 if p == math.inf else math.inf, open_low=True)
    return eps, p


def check_batch(x, y, who):
    """x as a host floating array in the box [0, 1], no NaN; y as int64 labels, one per example."""
    x = as_numpy(x.data if isinstance(x, Tensor) else x)
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    y = np.asarray(as_numpy(y.data if isinstance(y, Tensor) else y))
    if x.dtype.kind != "f" or x.ndim < 2 or len(x) == 0:
        raise InvalidArgument(f"{who}: x must be a floating array (batch, features...) holding at least one "
                              f"example, got dtype {x.dtype} and shape {x.shape}")
    if np.isnan(x).any():
        raise InvalidArgument(f"{who}: x holds NaN (at example {int(np.isnan(x.reshape(len(x), -1)).any(1).argmax())})")
    if x.min() < 0 or x.max() > 1:
        raise InvalidArgument(f"{who}: x must lie in the box [0, 1] (attacks clip to it), got values in "
                              f"[{float(x.min()):g}, {float(x.max()):g}]")
    if y.shape != x.shape[:1] or y.dtype.kind not in "iu":
        raise InvalidArgument(f"{who}: y must be integer labels of shape {x.shape[:1]}, got {y.dtype} {y.shape}")
    return x, y.astype(np.int64)


def image_layout(image_shape, x, who):
    """(channels, height, width) of one example: ``image_shape`` is (H, W) or (C, H, W), as a Dataset
    gives it, and must hold exactly x's features."""
    if image_shape is None:
        raise InvalidArgument(f"{who}: needs image_shape, (H, W) or (C, H, W) (a Dataset's image_shape): "
                              "its squares are patches of an image")
    shape = validate.sizes(image_shape, "image_shape", who)
    if len(shape) not in (2, 3) or math.prod(shape) != math.prod(x.shape[1:]):
        raise InvalidArgument(f"{who}: image_shape must be (H, W) or (C, H, W) with {math.prod(x.shape[1:])} "
                              f"pixels in all, got {tuple(image_shape)}")
    return (1, *shape) if len(shape) == 2 else shape


# --- losses and their input gradients ----------------------------------------------------------
def _pick(z, idx):
    """A one-hot mask of columns ``idx``: Σⱼ zⱼ·mask picks z_idx, differentiably in z."""
    mask = np.zeros(z.shape, z.dtype)
    mask[np.arange(len(idx)), idx] = 1
    return mask


def _loss(z: Tensor, y, kind, target=None) -> Tensor:
    """The per-example loss ``kind`` (module docstring) of logits z, shape (batch,)."""
    if kind == "ce":
        return F.cross_entropy(z, y, reduction="none")
    zd = as_numpy(z.data)
    order = np.argsort(-zd, axis=1)
    other = np.where(np.arange(zd.shape[1]) == y[:, None], -np.inf, zd).argmax(axis=1)  # max_{j≠y} zⱼ
    pick = (lambda idx: F.sum(z * to_device(_pick(zd, idx), z.device), axis=1))
    if kind == "margin":
        return pick(other) - pick(y)
    if kind == "dlr":
        return (pick(other) - pick(y)) / (pick(order[:, 0]) - pick(order[:, 2]) + _TINY)
    return (pick(target) - pick(y)) / (pick(order[:, 0]) - (pick(order[:, 2]) + pick(order[:, 3])) * 0.5 + _TINY)


def loss_and_gradient(model, x, y, kind="ce", target=None):
    """(ℓ per example, logits, ∇ₓℓ per example) at x, host arrays; one forward and one backward."""
    xt = Tensor(to_device(x, model.device), requires_grad=True)
    with enable_grad():  # an attack needs a graph even inside a caller's no_grad()
        z = model(xt)
        losses = _loss(z, y, kind, target)
        (g,) = grad(F.sum(losses), xt)
    return as_numpy(losses.data), as_numpy(z.data), as_numpy(g.data)


def logits(model, x):
    """The model's logits at x, a host array; no graph (a query of a black-box attack)."""
    with no_grad():
        return as_numpy(model(Tensor(to_device(x, model.device))).data)


def _margin(z, y):
    """z_y − max_{j≠y} zⱼ per example: negative where the example is misclassified (0 on a tie)."""
    rows = np.arange(len(y))
    return z[rows, y] - np.where(np.arange(z.shape[1]) == y[:, None], -np.inf, z).max(axis=1)


def _step(x_t, g, size, x, eps, p):
    """x_t + (steepest ascent of size ``size``), projected onto S(x) (ball, then box: clipping a point
    of the ball to the box only shrinks |x' − x| coordinatewise, so it stays in the ball)."""
    shape = x.shape
    move = P.worst_case(g.reshape(len(g), -1), 1.0, p).data * size.reshape(-1, 1)
    return _project(x_t.reshape(len(x), -1) + move.astype(x.dtype), x.reshape(len(x), -1), eps, p).reshape(shape)


def _project(x_new, x, eps, p):
    return np.clip(x + P.project(x_new - x, eps, p), 0, 1).astype(x.dtype)


def _start(x, eps, p, rng):
    """A uniform point of the ball around x, clipped to the box (Madry et al.'s random start)."""
    return np.clip(x + P.sample_ball(x.shape, eps, p, rng).astype(x.dtype), 0, 1)


# --- PGD -----------------------------------------------------------------------------------------
def pgd(model, x, y, eps, p, steps=50, restarts=2, loss="ce", random_start=True, step_size=None, seed=0):
    r"""Projected gradient ascent with random restarts (Madry et al. 2018, eq. 2 and §3):

    .. math::  x^{t+1} = \Pi_{S(x)}\big(x^t + \alpha\, s(\nabla_x \ell(x^t))\big),
               \quad s = \operatorname{sign} (p = \infty),\ g/\lVert g\rVert_2 (p = 2)

    i.e. x_{t+1} = Π_S(x_t + α·s(∇ℓ)), α = 2.5ε/steps unless ``step_size`` is given (Madry's
    rule: enough to cross the ball 2.5 times).  ``loss``: "ce" or "margin" (CW).  ``restarts``
    runs from independent uniform starts in the ball (``random_start``; without it, restart 1
    starts at x, as today's fast PGD-10 does), each restart only on the examples no earlier one
    has fooled.  Returns the first misclassified iterate per example, else the last iterate.
    """
    who = "pgd"
    eps, p = check_budget(eps, p, who)
    steps = validate.integer(steps, "steps", who, low=1)
    restarts = validate.integer(restarts, "restarts", who, low=1)
    validate.choice(loss, ("ce", "margin"), "loss", who)
    alpha = 2.5 * eps / steps if step_size is None else validate.number(step_size, "step_size", who, low=0,
                                                                        open_low=True)
    x, y = check_batch(x, y, who)
    rng = np.random.default_rng(seed)
    best = x.copy()
    alive = np.ones(len(x), bool)  # not fooled yet
    for r in range(restarts):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        x0, y0 = x[idx], y[idx]
        x_t = _start(x0, eps, p, rng) if random_start or r > 0 else x0.copy()
        out = x_t.copy()
        fooled = np.zeros(len(idx), bool)
        for _ in range(steps):
            _, z, g = loss_and_gradient(model, x_t, y0, loss)
            new = ~fooled & (z.argmax(1) != y0)
            out[new], fooled = x_t[new], fooled | new
            x_t = _step(x_t, g, np.full(len(idx), alpha, x.dtype), x0, eps, p)
        new = ~fooled & (logits(model, x_t).argmax(1) != y0)
        fooled |= new
        out[~fooled | new] = x_t[~fooled | new]
        best[idx] = out
        alive[idx[fooled]] = False
    return best


# --- APGD ----------------------------------------------------------------------------------------
def checkpoints(steps):
    """Croce & Hein's checkpoints wⱼ = ⌈pⱼ·N⌉: p₀ = 0, p₁ = 0.22, pⱼ₊₁ = pⱼ + max(pⱼ − pⱼ₋₁ − 0.03, 0.06)."""
    ps = [0.0, 0.22]
    while ps[-1] < 1:
        ps.append(ps[-1] + max(ps[-1] - ps[-2] - 0.03, 0.06))
    # rounded before the ceiling: 0.22 + 0.19 + 0.16 is 0.5700000000000001 in floats, and ⌈57.000…1⌉ = 58
    return sorted({math.ceil(round(q * steps, 9)) for q in ps if q <= 1} - {0})


def apgd(model, x, y, eps, p, steps=50, loss="ce", n_targets=0, restarts=1, seed=0, rho=0.75, momentum=0.75):
    r"""Auto-PGD (Croce & Hein 2020, Algorithm 1): PGD with momentum, a step size that halves when
    progress stalls, and the best point kept.

    .. math::  z^{k+1} = \Pi_S\big(x^k + \eta^k s(\nabla \ell(x^k))\big), \qquad
               x^{k+1} = \Pi_S\big(x^k + \alpha (z^{k+1} - x^k) + (1 - \alpha)(x^k - x^{k-1})\big)

    with α = ``momentum`` = 0.75 (α = 1 for the first step), η⁰ = 2ε.  At each checkpoint wⱼ
    (``checkpoints``) the step is halved, and the iterate reset to the best point x_max, for every
    example where (1) the loss rose in fewer than ρ·(wⱼ − wⱼ₋₁) of the steps since wⱼ₋₁ (ρ = 0.75),
    or (2) the step was not halved at wⱼ₋₁ and the best loss has not improved since.

    ``loss``: "ce" or "dlr"; ``n_targets`` > 0 runs the targeted APGD-T instead, on the targeted
    DLR loss against each of the n_targets classes ranked highest after y at x (the top-k).  Each
    run (restart × target) starts uniformly in the ball and attacks only the examples not yet
    fooled.  Returns the first misclassified iterate per example, else the best-loss point.
    """
    who = "apgd"
    eps, p = check_budget(eps, p, who)
    steps = validate.integer(steps, "steps", who, low=1)
    restarts = validate.integer(restarts, "restarts", who, low=1)
    validate.choice(loss, ("ce", "dlr"), "loss", who)
    x, y = check_batch(x, y, who)
    z0 = logits(model, x)
    n_targets = validate.integer(n_targets, "n_targets", who, low=0)
    if n_targets >= z0.shape[1]:
        raise InvalidArgument(f"{who}: n_targets must be below the number of classes ({z0.shape[1]}), "
                              f"got {n_targets}")
    if n_targets and z0.shape[1] < 4:
        raise InvalidArgument(f"{who}: the targeted DLR loss needs at least 4 classes, got {z0.shape[1]}")
    rng = np.random.default_rng(seed)
    ranked = np.argsort(-np.where(np.arange(z0.shape[1]) == y[:, None], -np.inf, z0), axis=1)
    best, alive = x.copy(), z0.argmax(1) == y
    runs = [(r, k) for k in range(max(n_targets, 1)) for r in range(restarts)]
    for r, k in runs:
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        target = ranked[idx, k] if n_targets else None
        out, fooled, _ = _apgd_run(model, x[idx], y[idx], eps, p, steps, "dlr-t" if n_targets else loss, target,
                                rng, rho, momentum)
        best[idx] = out
        alive[idx[fooled]] = False
    return best


def _apgd_run(model, x, y, eps, p, steps, loss, target, rng, rho, momentum):
    """One APGD run on a batch: (returned points, fooled mask, final step sizes η)."""
    n = len(x)
    eta = np.full(n, 2 * eps, x.dtype)
    x_k = _start(x, eps, p, rng)
    f, z, g = loss_and_gradient(model, x_k, y, loss, target)
    fooled = z.argmax(1) != y
    out = x_k.copy()
    x_best, f_best, g_best = x_k.copy(), f.copy(), g.copy()
    marks = checkpoints(steps)
    last_mark, rises, f_best_at_mark, halved_at_mark = 0, np.zeros(n), f_best.copy(), np.zeros(n, bool)
    x_prev, f_prev = x_k, f
    for k in range(1, steps + 1):
        z_next = _step(x_k, g, eta, x, eps, p)
        a = 1.0 if k == 1 else momentum
        x_next = _project((x_k + a * (z_next - x_k) + (1 - a) * (x_k - x_prev)).reshape(n, -1),
                          x.reshape(n, -1), eps, p).reshape(x.shape)
        x_prev, x_k = x_k, x_next
        f, z, g = loss_and_gradient(model, x_k, y, loss, target)
        new = ~fooled & (z.argmax(1) != y)
        out[new], fooled = x_k[new], fooled | new
        rises += f > f_prev
        f_prev = f
        up = f > f_best
        x_best[up], f_best[up], g_best[up] = x_k[up], f[up], g[up]
        if k in marks:
            stalled = rises < rho * (k - last_mark)                   # condition 1
            stalled |= ~halved_at_mark & (f_best <= f_best_at_mark)   # condition 2
            eta[stalled] /= 2
            x_k[stalled], g[stalled] = x_best[stalled], g_best[stalled]  # restart from the best point
            # a reset point carries no momentum (AutoAttack keeps the jump to x_max in x^k − x^{k−1})
            x_prev = np.where(stalled.reshape((-1,) + (1,) * (x.ndim - 1)), x_k, x_prev)
            last_mark, rises[:] = k, 0
            f_best_at_mark, halved_at_mark = f_best.copy(), stalled
    out[~fooled] = x_best[~fooled]
    return out, fooled, eta


# --- Square --------------------------------------------------------------------------------------
def square_fraction(i, queries, p_init=0.8):
    """AutoAttack's schedule for the fraction p of pixels a square covers at query i: p_init, halved at
    10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10 000 queries (rescaled to ``queries``)."""
    t = int(i / queries * 10000)
    return p_init / 2 ** sum(t > b for b in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000))


def square(model, x, y, eps, p, queries=1000, image_shape=None, seed=0, p_init=0.8):
    r"""The Square attack (Andriushchenko, Croce, Flammarion & Hein 2020): random search with square
    updates, forward passes only (so it cannot be fooled by a masked gradient).

    The loss is the margin m = z_y − max_{j≠y} zⱼ, to be driven below 0.  Each query draws one square
    of side s = round(√(p·H·W)) (p from ``square_fraction``) at a random position (shared by the
    batch, as in AutoAttack), and proposes per example

    .. math::  \ell_\infty:\ \delta_{\text{window}} \leftarrow \pm\varepsilon \text{ (one sign per channel)};
               \qquad \ell_2:\ \text{mass moved into the window, } \lVert\delta\rVert_2 = \varepsilon

    keeping the proposal only where it lowers m (ℓ∞, Alg. 1 with vertical-stripe init; ℓ2, Alg. 3
    with the centred "meta-pixel" pattern η and its mirrored half).  ``image_shape``: (H, W) or
    (C, H, W), a Dataset's; required.  Examples already misclassified are not queried again.
    """
    who = "square"
    eps, p = check_budget(eps, p, who)
    queries = validate.integer(queries, "queries", who, low=1)
    x, y = check_batch(x, y, who)
    c, h, w = image_layout(image_shape, x, who)
    rng = np.random.default_rng(seed)
    xi = x.reshape(len(x), c, h, w)
    if p == math.inf:
        delta = eps * rng.choice([-1.0, 1.0], size=(len(x), c, 1, w))  # vertical stripes
    else:
        delta = _square_l2_init(len(x), c, h, w, rng)
    x_best = _box(xi, delta, eps, p)
    m_best = _margin(logits(model, x_best.reshape(x.shape)), y)
    for i in range(1, queries):
        idx = np.flatnonzero(m_best > 0)
        if idx.size == 0:
            break
        frac = square_fraction(i, queries, p_init)
        delta = x_best[idx] - xi[idx]
        if p == math.inf:
            s = min(max(int(round(math.sqrt(frac * h * w))), 1), h - 1)
            r, q = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            delta[:, :, r:r + s, q:q + s] = eps * rng.choice([-1.0, 1.0], size=(len(idx), c, 1, 1))
        else:
            delta = _square_l2_step(delta, frac, eps, h, w, rng)
        x_new = _box(xi[idx], delta, eps, p)
        m = _margin(logits(model, x_new.reshape((len(idx),) + x.shape[1:])), y[idx])
        better = m < m_best[idx]
        x_best[idx[better]], m_best[idx[better]] = x_new[better], m[better]
    return x_best.reshape(x.shape)


def _box(xi, delta, eps, p):
    """x + δ with δ inside the ball (ℓ2: rescaled onto the sphere ‖δ‖₂ = ε), clipped to the box."""
    if p == 2:
        norm = np.sqrt((delta ** 2).sum(axis=(1, 2, 3), keepdims=True))
        delta = delta * eps / np.maximum(norm, _TINY)
    return np.clip(xi + np.clip(delta, -eps, eps) if p == math.inf else xi + delta, 0, 1).astype(xi.dtype)


def _eta_rectangle(a, b):
    """AutoAttack's centred pattern: nested rectangles weighted 1/(k+1)², unit ℓ2 norm."""
    d = np.zeros((a, b))
    ca, cb = a // 2, b // 2
    for k in range(max(ca, cb) + 1):
        d[max(ca - k, 0):min(ca + k + 1, a), max(cb - k, 0):min(cb + k + 1, b)] += 1.0 / (k + 1) ** 2
    return d / np.sqrt((d ** 2).sum())


def _eta(s, rng):
    """Two mirrored halves (+, −) of the centred pattern in an s×s square, transposed at random."""
    d = np.concatenate([_eta_rectangle(s // 2, s), -_eta_rectangle(s - s // 2, s)])
    d /= np.sqrt((d ** 2).sum())
    return d.T if rng.random() < 0.5 else d


def _square_l2_init(n, c, h, w, rng):
    """A grid of ±η patterns of side H//5 (Andriushchenko et al., Alg. 3's initialisation)."""
    delta, s = np.zeros((n, c, h, w)), max(h // 5, 1)
    start = (h - s * (h // s)) // 2
    for r in range(start, h - s + 1, s):
        for q in range(start, w - s + 1, s):
            delta[:, :, r:r + s, q:q + s] += _eta_rectangle(s, s) * rng.choice([-1.0, 1.0], size=(n, c, 1, 1))
    return delta


def _square_l2_step(delta, frac, eps, h, w, rng):
    """Move the mass of a second window into the first, plus a fresh ±η pattern (Alg. 3's update)."""
    n, c = delta.shape[:2]
    s = min(max(int(round(math.sqrt(frac * h * w))), 3), h - 1)
    if s % 2 == 0 and s < h - 1:  # an odd side: the pattern has a centre
        s += 1
    r1, q1, r2, q2 = (int(v) for v in rng.integers(0, h - s + 1, size=4))
    w1, w2 = (slice(r1, r1 + s), slice(q1, q1 + s)), (slice(r2, r2 + s), slice(q2, q2 + s))
    norm_window = np.sqrt((delta[:, :, w1[0], w1[1]] ** 2).sum(axis=(2, 3), keepdims=True))
    union = np.zeros((h, w), bool)
    union[w1], union[w2] = True, True
    mass_windows = (delta ** 2 * union).sum(axis=(2, 3), keepdims=True)
    free = np.maximum(eps ** 2 - (delta ** 2).sum(axis=(1, 2, 3), keepdims=True), 0) / c
    new = _eta(s, rng) * rng.choice([-1.0, 1.0], size=(n, c, 1, 1)) + delta[:, :, w1[0], w1[1]] / (norm_window + _TINY)
    new *= np.sqrt(free + mass_windows) / np.sqrt((new ** 2).sum(axis=(2, 3), keepdims=True))
    delta = delta.copy()
    delta[:, :, w2[0], w2[1]] = 0
    delta[:, :, w1[0], w1[1]] = new
    return delta
