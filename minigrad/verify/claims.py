"""The nine numerically checkable claims of science page §4, and a tenth (the Wasserstein view of
the family's neighbours, ``penalties.py``), one public function each.

Each function measures its claim on a model and a batch (or on a gradient vector g)
and returns the numbers, so a tutorial can print them and a test can assert them.
A claim "X = Y + O(hᵏ)" is measured as errors |X − Y| over a decreasing sequence of h
(ε, φ or s) with the least-squares slope of log error on log h, which should be ≈ k
(``Convergence``).  Conventions follow science page §1 and §2: per-example norms, input
gradients from the summed loss (``input_gradient``), batch-mean training objectives.

Why float64, and why one linear region.  At ε = 1e-3 an O(ε²) effect is 1e-6 of the
loss: float32 (7 digits) cannot see it, so the model-based claims refuse float32.  A
Maxout network is piecewise linear in x; its only curvature in x is the softmax's
(claim 9).  If a perturbed point crosses a kink, the logits change by a different
linear map there and the asymptotics break (a bent log-log line), so every claim that
perturbs x reports ``same_region``: whether all perturbed points kept x's pattern of
winning pieces.  ``region_radius`` gives the exact distance to the nearest kink, which
``run_all`` uses to pick a batch that no perturbation takes out of its region.

    python -m minigrad.verify         # prints a table of all the claims (verify/__main__.py)

The claims measure the library's own objects: the objectives of ``regularizers`` (DataGrad,
DataGradFD, AdversarialTraining, GradientPenalty) and ``perturbations.worst_case``; nothing
here re-derives them.  The region geometry lives in verify/regions.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import functional as F
from .. import regularizers as R
from ..backend import as_numpy, to_device
from ..diffops import hvp
from ..nn import Dropout, maxout_mlp
from ..penalties import wasserstein_worst_case
from ..perturbations import dual_exponent, input_gradient, per_example_norm, sample_ball, worst_case
from ..tensor import Tensor, as_tensor, grad, unwrap
from .regions import local_jacobian, maxout_layers, region_radius, same_region

# O(ε²) at ε = 1e-3 is ~1e-7 of the loss, far above float64 rounding (1e-16); ε = 0.1 keeps
# ℓ∞ steps inside demo_problem's regions (ℓ∞ radius ≥ 0.3).  A forward difference at
# φ = 1e-4 has rounding error ~1e-12, below its O(φ) truncation error.
EPS_VALUES = tuple(np.geomspace(1e-1, 1e-3, 7))
PHI_VALUES = tuple(np.geomspace(1e-1, 1e-4, 7))


@dataclass
class Convergence:
    """errors[i] measured at h[i]; ``slope`` fits log errors = slope·log h + c (least
    squares) and should be ≈ ``expected_slope``; ``same_region``: no kink was crossed
    (None when the model is not a Maxout Sequential)."""
    claim: str
    h: np.ndarray
    errors: np.ndarray
    slope: float
    expected_slope: float
    same_region: bool | None
    details: dict = field(default_factory=dict)


@dataclass
class Holder:
    """Claim 1, relative to ε or ε‖g‖_q; all ≈ 0 (``excess`` ≤ 0 up to rounding)."""
    norm_error: float    # max |‖r*‖ₚ − ε| / ε
    value_error: float   # max |gᵀr* − ε‖g‖_q| / (ε‖g‖_q)
    excess: float        # max over random feasible r of (gᵀr − gᵀr*) / (ε‖g‖_q)
    n_random: int


@dataclass
class Limits:
    """Claim 2: distances (max |·|) of r*(p) to the p = ∞ and p = 1 members."""
    sign_exact: bool             # r*(∞) == ε·sign(g), bitwise
    large_p: np.ndarray
    dist_to_inf: np.ndarray      # ≈ (q − 1)·coef_inf: first order in q − 1 = 1/(p − 1)
    slope_inf: float             # slope of dist_to_inf on q − 1, ≈ 1
    coef_inf: float              # predicted ε·max|log uᵢ − log Σⱼuⱼ|, u = |g|/max|g|
    near_one: np.ndarray
    dist_to_one: np.ndarray      # ≤ bound_one: geometric in q − 1 = 1/(p − 1)
    bound_one: np.ndarray        # ε·(D − 1)·ρ^(q−1), ρ = second-largest |gᵢ| / largest


@dataclass
class Identity:
    """Claim 5: two routes to one parameter gradient."""
    max_abs_diff: float
    rel_diff: float              # max_abs_diff / max |gradient|


@dataclass
class LocalHessian:
    """Claim 9, worst example of the batch."""
    max_abs_diff: float          # |∇²ₓL (double backprop) − Aᵀ(diag p − ppᵀ)A|
    max_asymmetry: float
    min_eigenvalue: float
    max_rank: int
    n_classes: int


# --- helpers ----------------------------------------------------------------------------
def _slope(h, errors) -> float:
    h, e = np.asarray(h, dtype=float), np.asarray(errors, dtype=float)
    return float(np.polyfit(np.log(h), np.log(e), 1)[0]) if (e > 0).all() else float("nan")


def _prepare(model, x, who) -> Tensor:
    """x as a float64 constant on the model's device, after checking the model can resolve
    O(ε²): float64 parameters, and no dropout mask drawn (eval mode)."""
    x = unwrap(x)
    if x.dtype != np.float64 or any(q.dtype != np.float64 for q in model.parameters()):
        dts = sorted({str(q.dtype) for q in model.parameters()} | {str(x.dtype)})
        raise TypeError(f"{who}: needs a float64 model and x, got {dts}; float32 resolves ~1e-7 of the "
                        "loss, and O(eps^2) effects at eps = 1e-3 are ~1e-6 of it. Build the model with "
                        "dtype=np.float64")
    if any(isinstance(m, Dropout) and m.training and m.p > 0 for m in model.modules()):
        raise ValueError(f"{who}: the model is in training mode with dropout; call model.eval() first")
    return Tensor(to_device(x, model.device))


def _summed_loss(model, x, y, reduction="sum") -> Tensor:
    """Σᵢ Lᵢ (or per example, reduction='none'): the claims about L itself, not about an objective."""
    return F.cross_entropy(model(as_tensor(x)), y, reduction=reduction)


def _param_grad(model, objective) -> np.ndarray:
    """∇θ objective, all parameters flattened into one vector."""
    params = model.parameters()
    gs = grad(objective, params, allow_unused=True)
    return np.concatenate([np.zeros(q.size) if g is None else as_numpy(g.data).ravel()
                           for q, g in zip(params, gs)])


def input_hessians(model, x, y) -> np.ndarray:
    """∇²ₓLᵢ for every example (batch, D, D) by double backprop: D Hessian-vector
    products, each for the whole batch (the summed loss's Hessian is block diagonal)."""
    def summed(a):
        return _summed_loss(model, a, y)

    cols = []
    for j in range(x.shape[1]):
        e = x.xp.zeros(x.shape, dtype=x.dtype)
        e[:, j] = 1  # eⱼ for every example at once: the batch's Hessian is block diagonal
        cols.append(as_numpy(hvp(summed, x, Tensor(e))[1].data))   # Hᵢeⱼ for all i
    return np.stack(cols, axis=-1)


# --- the claims -------------------------------------------------------------------------
def _as_batch(g) -> np.ndarray:
    """g as (batch, coordinates): a 1-D vector is one example, not a batch of scalars."""
    g = as_numpy(unwrap(g))
    return g.reshape(1, -1) if g.ndim == 1 else g.reshape(len(g), -1)


def claim1_holder_optimality(g, eps, p, n_random=2000, seed=0) -> Holder:
    """Claim 1 (Hölder): ‖r*‖ₚ = ε and gᵀr* = ε‖g‖_q = the max of gᵀr over ‖r‖ₚ ≤ ε, for g ≠ 0.

    Checked against ``n_random`` random points of the sphere ‖r‖ₚ = ε per example
    (the linear maximum over the ball lies on the sphere)."""
    g = _as_batch(g)
    r, q = as_numpy(worst_case(g, eps, p).data), dual_exponent(p)
    value, bound = (g * r).sum(axis=1), eps * as_numpy(per_example_norm(g, q).data)
    live = bound > 0
    samples = sample_ball((n_random * len(g), g.shape[1]), eps, p, seed, surface=True)
    best = np.einsum("nbd,bd->nb", samples.reshape(n_random, *g.shape), g).max(axis=0)
    return Holder(norm_error=float(np.max(np.abs(as_numpy(per_example_norm(r, p).data)[live] - eps)) / eps),
                  value_error=float(np.max(np.abs(value - bound)[live] / bound[live])),
                  excess=float(np.max((best - value)[live] / bound[live])), n_random=n_random)


def claim2_limits(g, eps, large_p=(1e1, 1e2, 1e3, 1e4, 1e5),
                  near_one=(2.0, 1.5, 1.2, 1.1, 1.05, 1.02, 1.01, 1.003, 1.001)) -> Limits:
    """Claim 2: r*(∞) = ε·sign(g) exactly; r*(p) → r*(∞) as p → ∞, to first order in
    q − 1 (uᵢ^(q−1) = 1 + (q−1)·log uᵢ + ...), and r*(p) → r*(1) as p → 1⁺, geometrically
    (non-maximal coordinates shrink like (|gᵢ|/max|g|)^(q−1)).  ``bound_one`` holds for g
    without ties at the maximum; with t tied maxima the approach to the even split is only
    O(p − 1) (the tied entries are ε·t^(−1/p))."""
    g = _as_batch(g)
    r_inf, r_one = (as_numpy(worst_case(g, eps, p).data) for p in (np.inf, 1))

    def dist(p, ref):
        return float(np.abs(as_numpy(worst_case(g, eps, p).data) - ref).max())

    u = np.abs(g) / np.maximum(np.abs(g).max(axis=1, keepdims=True), 1e-300)
    logs = np.where(u > 0, np.log(np.where(u > 0, u, 1)) - np.log(u.sum(axis=1, keepdims=True)), 0)
    rho = np.where(u < 1, u, 0).max()
    qm1_inf = np.array([dual_exponent(p) - 1 for p in large_p])
    d_inf = np.array([dist(p, r_inf) for p in large_p])
    return Limits(sign_exact=r_inf.tobytes() == (eps * np.sign(g)).tobytes(), large_p=np.array(large_p),
                  dist_to_inf=d_inf, slope_inf=_slope(qm1_inf, d_inf), coef_inf=eps * float(np.abs(logs).max()),
                  near_one=np.array(near_one), dist_to_one=np.array([dist(p, r_one) for p in near_one]),
                  bound_one=np.array([eps * (g.shape[1] - 1) * rho ** (dual_exponent(p) - 1)
                                      for p in near_one]))


def claim3_linearization(model, x, y, p, eps_values=EPS_VALUES) -> Convergence:
    """Claim 3: L(x + r*) − L(x) − ε‖g‖_q = O(ε²), summed over the batch.

    Inside one linear region r* = ε·d with d fixed, so the ε² coefficient is
    ½ Σᵢ dᵢᵀ∇²ₓLᵢ dᵢ (for p = 2, d = ĝ: ½ĝᵀ∇²ₓLĝ), here by a Hessian-vector product;
    ``details['coef_measured']`` is residual/ε², which tends to it."""
    x = _prepare(model, x, "claim3_linearization")
    g = input_gradient(model, x, y)
    base = _summed_loss(model, x, y).item() + np.array(eps_values) * per_example_norm(g, dual_exponent(p)).sum().item()
    rs = [worst_case(g, e, p) for e in eps_values]
    res = np.array([_summed_loss(model, x + r, y).item() for r in rs]) - base
    d = worst_case(g, 1.0, p)
    _, Hd = hvp(lambda a: _summed_loss(model, a, y), x, d)  # Σᵢ ∇²ₓLᵢ dᵢ, by double backprop
    coef = 0.5 * float(np.sum(as_numpy(Hd.data * d.data)))
    measured = res / np.array(eps_values) ** 2
    return Convergence("3: L(x+r*) - L(x) - eps*||g||_q = O(eps^2)", np.array(eps_values), np.abs(res),
                       _slope(eps_values, np.abs(res)), 2.0, same_region(model, x, x + rs[0]),
                       dict(coef_hvp=coef, coef_measured=measured,
                            coef_rel_error=abs(measured[-1] - coef) / abs(coef)))


def claim4_datagrad_fd(model, x, y, norm="l1", phis=PHI_VALUES) -> Convergence:
    r"""Claim 4: for R = ‖J‖₁ (``norm='l1'``) or ‖J‖₂² ('l2') of J = ∇ₓL, per example,
    averaged over the batch, the DataGrad finite difference along r = ∇R(J) (R's gradient at J, held fixed)

        ∇θR ≈ [∇θL(x + φr) − ∇θL(x)] / φ          error O(φ)

    .. math::

       \nabla_\theta R \approx \frac{\nabla_\theta L(x + \varphi r) - \nabla_\theta L(x)}{\varphi},
       \qquad \text{error } O(\varphi),

    converges to the exact double-backprop gradient.  ``errors``: relative error
    ‖fd − exact‖/‖exact‖; ``details`` has the central difference (error O(φ²))."""
    x = _prepare(model, x, "claim4_datagrad_fd")
    if norm not in ("l1", "l2"):
        raise ValueError(f"claim4_datagrad_fd: norm must be 'l1' or 'l2', got {norm!r}")
    # The penalty alone: DataGrad with α = 0, β = 1 (exact), and DataGradFD with α = 0, β = 1, whose
    # surrogate gradient (α − β/φ)∇θL(x) + (β/φ)∇θL(x + φr) is then the forward difference itself.
    exact = _param_grad(model, R.DataGrad(0.0, 1.0, norm)(model, x, y))
    size = np.linalg.norm(exact)
    fds = [R.DataGradFD(0.0, 1.0, norm, phi=f) for f in phis]
    plus = [_param_grad(model, fd(model, x, y)) for fd in fds]
    # The backward difference is the same surrogate at x − φr: (∇θL(x − φr) − ∇θL(x))/φ.
    steps = [fd.perturbation(model, x, y) for fd in fds]
    minus = [_param_grad(model, fd.loss_at(model, x, y, -s)) for fd, s in zip(fds, steps)]
    fwd = np.array([np.linalg.norm(gp - exact) for gp in plus]) / size
    cen = np.array([np.linalg.norm((gp - gm) / 2 - exact) for gp, gm in zip(plus, minus)]) / size
    return Convergence(f"4: DataGrad-{norm} finite difference -> exact, error O(phi)", np.array(phis), fwd,
                       _slope(phis, fwd), 1.0, same_region(model, x, x + steps[0], x - steps[0]),
                       dict(central_errors=cen, central_slope=_slope(phis, cen)))


def claim5_goodfellow_equals_datagrad(model, x, y, eps=0.1, a=0.5) -> Identity:
    """Claim 5: Goodfellow et al.'s a·L(x) + (1−a)·L(x + ε·sign g) (``AdversarialTraining(ε, ∞, a)``)
    and the finite-difference DataGrad-L1 update (α − β/φ)∇θL(x) + (β/φ)∇θL(x + φr) with α = 1,
    β = (1−a)ε, φ = ε and r = ∇_J‖J‖₁ = sign J (``DataGradFD``) have one parameter gradient."""
    x = _prepare(model, x, "claim5_goodfellow_equals_datagrad")
    goodfellow = _param_grad(model, R.AdversarialTraining(eps, np.inf, alpha=a)(model, x, y))
    datagrad = _param_grad(model, R.DataGradFD(1.0, (1 - a) * eps, "l1", phi=eps)(model, x, y))
    diff = float(np.abs(goodfellow - datagrad).max())
    return Identity(max_abs_diff=diff, rel_diff=diff / float(np.abs(goodfellow).max()))


def claim6_perturbed_vs_penalty(model, x, y, p, eps_values=EPS_VALUES) -> Convergence:
    """Claim 6: ∇θ mean L(x + r*) (r* held constant) and ∇θ mean[L(x) + ε‖g‖_q] (double
    backprop) differ by O(ε²), not 0: the first-order terms agree because ∇_g‖g‖_q = r*/ε,
    the second-order term ½ε²∇θ(dᵀ∇²ₓL d) does not cancel.  ``details['ratios']`` =
    ‖difference‖/ε² settles to a constant."""
    x = _prepare(model, x, "claim6_perturbed_vs_penalty")
    errors, rs = [], []
    for e in eps_values:
        point = R.AdversarialTraining(e, p, alpha=0.0)  # mean L(x + r*), r* stopped
        rs.append(point.perturbation(model, x, y))
        perturbed = _param_grad(model, point(model, x, y))
        penalty = _param_grad(model, R.GradientPenalty(e, p)(model, x, y))
        errors.append(np.linalg.norm(perturbed - penalty))
    errors, eps_values = np.array(errors), np.array(eps_values)
    return Convergence("6: perturbed-point vs explicit-penalty gradient = O(eps^2)", eps_values, errors,
                       _slope(eps_values, errors), 2.0, same_region(model, x, x + rs[0]),
                       dict(ratios=errors / eps_values ** 2))


def claim7_stop_gradient(model, x, y, p, eps_values=EPS_VALUES) -> Convergence:
    """Claim 7: ∇θ mean L(x + r*(θ)) differentiated through r* = worst_case(g(θ)) minus the
    stop-gradient version is O(ε²) (the O(ε) term (∂r*/∂g)ᵀg vanishes: ‖g‖_q is
    1-homogeneous) for 1 < p < ∞, and exactly 0 for p = ∞ (sign has derivative 0)."""
    x = _prepare(model, x, "claim7_stop_gradient")
    g = input_gradient(model, x, y, create_graph=True)
    errors, rs = [], []
    for e in eps_values:
        point = R.AdversarialTraining(e, p, alpha=0.0)
        rs.append(worst_case(g, e, p))  # r*(θ), part of the graph
        through = _param_grad(model, point.loss_at(model, x, y, rs[-1]))
        stopped = _param_grad(model, point.loss_at(model, x, y, rs[-1].detach()))
        errors.append(np.linalg.norm(through - stopped))
    errors, eps_values = np.array(errors), np.array(eps_values)
    return Convergence("7: through r*(theta) vs stop-gradient = O(eps^2); 0 for p=inf", eps_values,
                       errors, _slope(eps_values, errors), 2.0, same_region(model, x, x + rs[0]),
                       dict(max_abs=float(errors.max()), ratios=errors / eps_values ** 2))


def claim8_gaussian_noise(model, x, y, sigmas=(0.1, 0.05, 0.025, 0.0125), n_samples=4000,
                          seed=0) -> Convergence:
    """Claim 8: E L(x + n) − L(x) = (s²/2)·tr∇²ₓL + O(s⁴), n ~ N(0, s²I), batch summed.

    Antithetic pairs ½[L(x+n) + L(x−n)] − L(x) cancel every odd order, leaving
    ½nᵀHn + O(s⁴); its mean over ``n_samples`` gives ``ratio`` → 1 (with ``ratio_se``).
    The residual E[...] − (s²/2)trH is estimated with the control variate ½nᵀHn, whose
    mean (s²/2)trH is known exactly: ``errors`` = |residual|, slope ≈ 4, and
    ``residual_se`` its standard error.  The same draws z are reused for every s = σ
    (n = s·z), so the slope compares like with like.  H by double backprop."""
    x = _prepare(model, x, "claim8_gaussian_noise")
    H, (B, D), x0 = input_hessians(model, x, y), x.shape, as_numpy(x.data)
    tr, L0 = float(np.trace(H, axis1=1, axis2=2).sum()), _summed_loss(model, x, y).item()
    z = np.random.default_rng(seed).standard_normal((n_samples, B, D))
    quad = 0.5 * np.einsum("nbi,bij,nbj->n", z, H, z)  # ½zᵀHz: ½nᵀHn = s²·quad
    labels = to_device(np.tile(as_numpy(unwrap(y)), n_samples), model.device)

    def batch_loss(points):  # Σ over the batch of L, for each of the n_samples noisy batches
        losses = _summed_loss(model, to_device(points.reshape(-1, D), model.device), labels, "none")
        return as_numpy(losses.data).reshape(n_samples, B).sum(axis=1)

    rows, same, root_n = [], True, np.sqrt(n_samples)
    for s in sigmas:
        anti = 0.5 * (batch_loss(x0 + s * z) + batch_loss(x0 - s * z)) - L0
        resid, expected = anti - s ** 2 * quad, 0.5 * s ** 2 * tr
        rows.append((anti.mean() / expected, anti.std() / root_n / expected, resid.mean(), resid.std() / root_n))
        same = same and same_region(model, np.tile(x0, (n_samples, 1)), (x0 + s * z).reshape(-1, D),
                                     (x0 - s * z).reshape(-1, D)) is not False
    ratio, ratio_se, resid, resid_se = (np.array(c) for c in zip(*rows))
    return Convergence("8: E L(x+n) - L(x) - (s^2/2) tr H = O(s^4)", np.array(sigmas), np.abs(resid),
                       _slope(sigmas, np.abs(resid)), 4.0, same if maxout_layers(model) else None,
                       dict(trace=tr, ratio=ratio, ratio_se=ratio_se, residual=resid, residual_se=resid_se))


def claim9_local_hessian(model, x, y) -> LocalHessian:
    """Claim 9: inside one linear region of a Maxout network with softmax cross-entropy,
    ∇²ₓLᵢ = Aᵢᵀ(diag pᵢ − pᵢpᵢᵀ)Aᵢ with Aᵢ = ∂logits/∂x from the active pieces:
    symmetric, positive semi-definite, rank ≤ K − 1 (diag p − ppᵀ annihilates 1)."""
    x = _prepare(model, x, "claim9_local_hessian")
    if maxout_layers(model) is None:
        raise TypeError("claim9_local_hessian: needs a Sequential of Linear/Maxout layers (e.g. maxout_mlp)")
    H, A = input_hessians(model, x, y), local_jacobian(model, x)
    p = as_numpy(F.softmax(model(x)).data)
    S = np.einsum("bk,kl->bkl", p, np.eye(p.shape[1])) - p[:, :, None] * p[:, None, :]
    H_A = np.transpose(A, (0, 2, 1)) @ S @ A
    return LocalHessian(max_abs_diff=float(np.abs(H - H_A).max()),
                        max_asymmetry=float(np.abs(H - np.transpose(H, (0, 2, 1))).max()),
                        min_eigenvalue=float(np.linalg.eigvalsh(0.5 * (H + np.transpose(H, (0, 2, 1)))).min()),
                        max_rank=int(max(np.linalg.matrix_rank(h) for h in H)), n_classes=p.shape[1])


def claim10_wasserstein(model, x, y, p, ground=2.0, eps_values=EPS_VALUES) -> Convergence:
    """Claim 10 (Gao, Chen & Kleywegt 2017): the worst case of the batch-mean loss over the order-p
    Wasserstein ball of radius ε around the batch (transport cost ‖·‖ = ℓ_ground) is, to first
    order, ``WassersteinPenalty(ε, p, ground)``: L + ε·(mean ‖gᵢ‖_*^q)^(1/q), error O(ε²).

    The worst case is found in closed form (``penalties.wasserstein_worst_case``): example i moves
    by rᵢ = worst_case(gᵢ, δᵢ, ground), so gᵢᵀrᵢ = δᵢ‖gᵢ‖_*, with the budgets δ maximising
    mean δᵢ‖gᵢ‖_* under (mean δᵢ^p)^(1/p) ≤ ε (Hölder: δᵢ ∝ ‖gᵢ‖_*^(q−1); p = 1: all on the
    largest ‖gᵢ‖_*, δ = B·ε there; p = ∞: δᵢ = ε).  ``errors``: the absolute difference of
    mean L(xᵢ + rᵢ) and the objective; ``details['budgets']``: the moves' sizes ‖rᵢ‖ at the largest ε."""
    x = _prepare(model, x, "claim10_wasserstein")
    g = input_gradient(model, x, y)
    moves = [to_device(wasserstein_worst_case(g, e, p, ground), model.device) for e in eps_values]
    worst = np.array([_summed_loss(model, x + r, y).item() / len(y) for r in moves])
    first = np.array([R.WassersteinPenalty(e, p, ground)(model, x, y).item() for e in eps_values])
    res, eps_values = np.abs(worst - first), np.array(eps_values)
    return Convergence(f"10: Wasserstein-{p:g} worst case - (L + penalty) = O(eps^2)", eps_values, res,
                       _slope(eps_values, res), 2.0, same_region(model, x, x + moves[0]),
                       dict(budgets=np.linalg.norm(as_numpy(moves[0]).reshape(len(y), -1), ord=ground, axis=1)))


# --- all at once ----------------------------------------------------------------------------
def demo_problem(seed=0, batch=4, in_features=6, units=(5, 5), pieces=3, n_classes=4, min_radius=0.3):
    """A float64 Maxout net (random biases, so kinks do not all meet at 0) and a batch of
    points whose ℓ∞ distance to a kink is ≥ ``min_radius`` (largest ε·‖d‖∞ used is 0.1),
    the best ``batch`` of 400 random candidates.  Returns (model, x, y)."""
    rng = np.random.default_rng(seed)
    model = maxout_mlp(in_features, units, pieces, n_classes, seed=rng, dtype=np.float64).eval()
    for layer in model.layers:
        layer.bias.data = rng.normal(0, 0.5, layer.bias.shape)
    pool = Tensor(rng.normal(0, 2, (400, in_features)))
    radius = region_radius(model, pool, np.inf)
    best = np.argsort(-radius)[:batch]
    if radius[best].min() < min_radius:
        raise RuntimeError(f"demo_problem: only found l-inf radius {radius[best].min():.3g} < {min_radius}")
    return model, pool.data[best], rng.integers(0, n_classes, batch)


def run_all(seed=0) -> dict:
    """All ten claims on ``demo_problem(seed)`` (claim 10 for p = 2 and p = 1); {name: result}."""
    model, x, y = demo_problem(seed)
    g = np.random.default_rng(seed).standard_normal((4, 10))
    return {"1 Holder p=1.5": claim1_holder_optimality(g, 0.3, 1.5),
            "2 limits": claim2_limits(g, 0.3),
            "3 linearization p=2": claim3_linearization(model, x, y, 2),
            "4 DataGrad FD l1": claim4_datagrad_fd(model, x, y, "l1"),
            "5 Goodfellow = DataGrad": claim5_goodfellow_equals_datagrad(model, x, y),
            "6 perturbed vs penalty p=2": claim6_perturbed_vs_penalty(model, x, y, 2),
            "7 stop-gradient p=2": claim7_stop_gradient(model, x, y, 2),
            "8 Gaussian noise": claim8_gaussian_noise(model, x, y),
            "9 local Hessian": claim9_local_hessian(model, x, y),
            "10 Wasserstein p=2": claim10_wasserstein(model, x, y, 2),
            "10 Wasserstein p=1": claim10_wasserstein(model, x, y, 1)}
