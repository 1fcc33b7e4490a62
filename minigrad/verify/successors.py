"""The claims of the family's successors (issue 24), one public function each, measured on real data.

    claim11_gradalign_overfitting   GradAlign's cosine drops when FGSM training overfits catastrophically
    claim12_cure_curvature          CURE lowers the input Hessian's top eigenvalue against plain training
    claim13_llr_bound               L(x + δ) ≤ L(x) + δᵀg + γ holds on LLR's own maximiser (and beyond it)
    claim14_gradient_growth         ‖∇ₓL‖₁ at initialisation grows like √D (Simon-Gabriel et al. 2019)

Like claims.py, each returns its numbers (tests assert them, ``python -m minigrad.verify`` prints them)
and measures the library's own objects: ``GradAlign.cosine``, ``CURE``, ``LocalLinearity.maximiser`` and
``linearity_error``, ``perturbations.pgd``; the input Hessian's top eigenvalue is power iteration on
``diffops.hvp`` (``diagnostics.top_hessian_eigenvalue``, which ``train.fit``'s diagnostics record too).  Claims 11 and 12 train small Maxout networks on the 8×8 digits (scikit-learn's, bundled)
in seconds; claim 14 resizes Fashion-MNIST.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import datasets
from .. import functional as F
from .. import regularizers as R
from ..backend import as_numpy
from ..diagnostics import top_hessian_eigenvalue
from ..errors import DataNotFound as DatasetNotFoundError
from ..nn import maxout_mlp
from ..perturbations import input_gradient, loss_and_input_gradient, pgd, sample_ball
from ..tensor import Tensor, grad, no_grad


@dataclass
class Overfitting:
    """Claim 11, per epoch on a training probe: GradAlign's cosine, and the FGSM, PGD and clean errors.
    ``onset``: the first epoch at which PGD error exceeds FGSM error by ``gap`` or more (FGSM no longer
    finds what PGD finds: catastrophic overfitting), None if never; ``cos_before``: the largest cosine up
    to the onset; ``cos_after``: the mean cosine after it; ``correlation``: of the cosine with the gap."""
    cosine: np.ndarray
    fgsm_error: np.ndarray
    pgd_error: np.ndarray
    clean_error: np.ndarray
    onset: int | None
    cos_before: float
    cos_after: float
    correlation: float


@dataclass
class Curvature:
    """Claim 12: the top eigenvalue of each probe example's input Hessian ∇²ₓLᵢ after plain and after
    CURE training (same network, initialisation, data and batch order); ``ratio`` = mean CURE / mean
    plain; the two test errors."""
    plain: np.ndarray
    cure: np.ndarray
    ratio: float
    plain_error: float
    cure_error: float


@dataclass
class LinearityBound:
    """Claim 13: γᵢ at LLR's maximiser δᵢ, and the bound's slack L(x) + δ′ᵀg + γ − L(x + δ′) per
    example at δ′ = δ (``slack_at_maximiser``, ≥ 0 by construction: the claim), at PGD's worst case of
    the loss (``slack_at_pgd``) and the least over ``n_random`` uniform points of the ball
    (``slack_at_random``): those two hold only as far as the inner maximisation found the true γ."""
    gamma: np.ndarray
    slack_at_maximiser: np.ndarray
    slack_at_pgd: np.ndarray
    slack_at_random: np.ndarray
    n_random: int


@dataclass
class Growth:
    """Claim 14: mean ‖gᵢ‖₁ and ‖gᵢ‖₂ at initialisation for each input size D (over a batch and seeds);
    the least-squares slopes of their logs on log D: ≈ 1/2 and ≈ 0 (Simon-Gabriel et al.: ‖g‖_q grows
    like D^(1 − 1/q)/√D)."""
    dims: np.ndarray
    l1: np.ndarray
    l2: np.ndarray
    slope_l1: float
    slope_l2: float


def _slope(h, values) -> float:
    return float(np.polyfit(np.log(h), np.log(values), 1)[0])


def _error(model, x, y) -> float:
    with no_grad():
        return float((as_numpy(model(Tensor(x)).data).argmax(axis=1) != y).mean())


def _sgd(model, objective, data, epochs, lr, seed, after_epoch=None):
    """Minibatch SGD (batch 32) on ``model.parameters()``; ``after_epoch(epoch)`` after each epoch."""
    params, order = model.parameters(), np.random.default_rng(seed)
    for epoch in range(epochs):
        for xb, yb in datasets.minibatches(data, 32, seed=order):
            xb = xb.astype(params[0].dtype)  # a float64 model trains on float64 pixels
            for p, g in zip(params, grad(objective(model, xb, yb), params)):
                p.data -= lr * g.data
        if after_epoch is not None:
            after_epoch(epoch)
    return model


def claim11_gradalign_overfitting(eps=0.25, epochs=20, lr=0.1, probe=300, gap=0.3, seed=0) -> Overfitting:
    """FGSM training (``AdversarialTraining(ε, ∞, alpha=0)``, Goodfellow's step with no clean term) of
    a 64 → 64×3 → 10 Maxout net on the digits at a large ε.  After each epoch, on the first ``probe``
    training examples: GradAlign's cosine between g(x) and g(x + η), η ~ U[−ε, ε]^D (``GradAlign.cosine``),
    and the error under FGSM and under PGD (10 steps of ε/4 from a random start).  Catastrophic
    overfitting (Wong, Rice & Kolter 2020): FGSM error falls while PGD error does not; Andriushchenko &
    Flammarion (2020): the cosine falls with it."""
    train, _ = datasets.load_digits()
    x, y = train.x[:probe], train.y[:probe]
    model = maxout_mlp(64, (64,), 3, 10, seed=seed)
    rows = []

    def measure(epoch):
        g = input_gradient(model, x, y)
        eta = np.random.default_rng([seed, epoch]).uniform(-eps, eps, x.shape).astype(x.dtype)
        cos = float(np.mean(as_numpy(R.GradAlign.cosine(g, input_gradient(model, x + eta, y)).data)))
        adv = pgd(model, x, y, eps, np.inf, 10, eps / 4, random_start=True, seed=seed)
        rows.append((cos, _error(model, x + eps * np.sign(as_numpy(g.data)), y), _error(model, adv, y),
                     _error(model, x, y)))

    _sgd(model, R.AdversarialTraining(eps, np.inf, alpha=0.0), train, epochs, lr, seed, measure)
    cos, fgsm, pgd_err, clean = map(np.array, zip(*rows))
    over = np.flatnonzero(pgd_err - fgsm >= gap)
    onset = int(over[0]) if len(over) else None
    cut = epochs if onset is None else onset
    return Overfitting(cos, fgsm, pgd_err, clean, onset, float(cos[:cut + 1].max()),
                       float(cos[cut + 1:].mean()) if cut + 1 < epochs else float("nan"),
                       float(np.corrcoef(cos, pgd_err - fgsm)[0, 1]))


def _digits_pair(lam, epochs, lr, seed):
    """(plain model, CURE model, x, y, test x, test y): float64 Maxout nets trained from one
    initialisation in one batch order, and the digits in float64."""
    train, test = datasets.load_digits()
    eps1 = 0.1 * np.sqrt(64)  # the registry's h = ε√D at ε = 0.1: h·z = 0.1·sign g

    def net():
        return maxout_mlp(64, (64,), 3, 10, seed=seed, dtype=np.float64)
    plain = _sgd(net(), R.CrossEntropy(), train, epochs, lr, seed)
    cure = _sgd(net(), R.CURE(lam, eps1), train, epochs, lr, seed)
    return plain, cure, train.x.astype(np.float64), train.y, test.x.astype(np.float64), test.y


def claim12_cure_curvature(lam=1.0, epochs=5, lr=0.1, probe=200, seed=0, models=None) -> Curvature:
    """CURE (λ, h = ε√D at ε = 0.1) against plain training: the input Hessian's top eigenvalue per
    example on ``probe`` training examples (``top_hessian_eigenvalue``).  ``models``: what
    ``_digits_pair`` returned to an earlier call, to share the training."""
    plain, cure, x, y, test_x, test_y = models or _digits_pair(lam, epochs, lr, seed)
    x, y = x[:probe], y[:probe]
    top_plain, top_cure = top_hessian_eigenvalue(plain, x, y), top_hessian_eigenvalue(cure, x, y)
    return Curvature(top_plain, top_cure, float(top_cure.mean() / top_plain.mean()),
                     _error(plain, test_x, test_y), _error(cure, test_x, test_y))


def claim13_llr_bound(model, x, y, eps=0.1, steps=10, n_random=100, seed=0) -> LinearityBound:
    """Qin et al.'s bound L(x + δ′) ≤ L(x) + δ′ᵀg + γ(ε, x), γ the local linearity error found by
    ``LocalLinearity(ε, steps=steps).maximiser`` and measured by its ``linearity_error``: its slack at
    the maximiser itself, at the PGD worst case of the loss (20 steps of ε/8, the point where the bound
    matters for robustness), and at uniform points of the ℓ∞ ball."""
    llr = R.LocalLinearity(eps, steps=steps, seed=seed)
    losses, g = loss_and_input_gradient(model, x, y)
    clean = as_numpy(F.cross_entropy(model(Tensor(x)), y, reduction="none").data)
    delta = llr.maximiser(model, x, y)
    with no_grad():
        at = F.cross_entropy(model(Tensor(x) + delta), y, reduction="none")
        gamma = as_numpy(llr.linearity_error(at, Tensor(clean), delta, g).data)
    g = as_numpy(g.data)

    def slack(d):
        with no_grad():
            at = as_numpy(F.cross_entropy(model(Tensor(x + d)), y, reduction="none").data)
        return clean + (d * g).sum(axis=1) + gamma - at

    worst = pgd(model, x, y, eps, np.inf, 20, eps / 8, random_start=True, seed=seed) - x
    rng = np.random.default_rng(seed)
    rand = np.min([slack(sample_ball(x.shape, eps, np.inf, rng).astype(x.dtype)) for _ in range(n_random)], axis=0)
    return LinearityBound(gamma, slack(as_numpy(delta.data)), slack(worst), rand, n_random)


def resized_fashion_mnist(n=500, sizes=(14, 28, 56)):
    """The first ``n`` Fashion-MNIST test images at each side in ``sizes`` ({D: (x, y)}, D = side²):
    2×2 means to halve, pixel repetition to double (the pixels keep their range)."""
    _, test = datasets.load("fashion-mnist")
    images, y = test.x[:n].reshape(-1, 28, 28), test.y[:n]
    out = {}
    for side in sizes:
        if side == 28:
            im = images
        elif side < 28 and 28 % side == 0:
            k = 28 // side
            im = images.reshape(-1, side, k, side, k).mean(axis=(2, 4))
        elif side % 28 == 0:
            im = images.repeat(side // 28, axis=1).repeat(side // 28, axis=2)
        else:
            raise ValueError(f"resized_fashion_mnist: a side must divide 28 or be a multiple of it, got {side}")
        out[side * side] = (np.ascontiguousarray(im.reshape(len(im), -1)), y)
    return out


def claim14_gradient_growth(data=None, seeds=(0, 1, 2), units=(240, 240)) -> Growth:
    """Simon-Gabriel, Ollivier, Bottou, Schölkopf & Lopez-Paz (ICML 2019), "First-order adversarial
    vulnerability of neural networks and input dimension": at initialisation (weights ~ U(±1/√fan-in))
    ‖∇ₓL‖₁ grows like √D and ‖∇ₓL‖₂ stays put, so an ℓ∞ attack's first-order gain ε‖g‖₁ grows with the
    input size.  Measured on one data set resized (``resized_fashion_mnist``: D = 196, 784, 3136), one
    Maxout net (``units``, 5 pieces) per D and seed, the per-example norms averaged."""
    data = data or resized_fashion_mnist()
    dims = np.array(sorted(data))
    l1, l2 = [], []
    for d in dims:
        x, y = data[d]
        gs = [as_numpy(input_gradient(maxout_mlp(int(d), units, 5, 10, seed=s), x, y).data) for s in seeds]
        l1.append(np.mean([np.abs(g).sum(axis=1).mean() for g in gs]))
        l2.append(np.mean([np.linalg.norm(g, axis=1).mean() for g in gs]))
    l1, l2 = np.array(l1), np.array(l2)
    return Growth(dims, l1, l2, _slope(dims, l1), _slope(dims, l2))


def run_successors(seed=0) -> dict:
    """Claims 11–14 at their defaults ({name: result}); 12 and 13 share one plain/CURE training; 14 is
    the DatasetNotFoundError when Fashion-MNIST is not installed."""
    models = _digits_pair(1.0, 5, 0.1, seed)
    return {"11 GradAlign cos and CO": claim11_gradalign_overfitting(seed=seed),
            "12 CURE top eigenvalue": claim12_cure_curvature(models=models),
            "13 LLR bound": claim13_llr_bound(models[0], models[2][:200], models[3][:200], seed=seed),
            "14 |g|_1 ~ sqrt(D)": _or_missing(claim14_gradient_growth)}


def _or_missing(claim):
    """The claim's result, or the DatasetNotFoundError saying how to install its data (printed as a skip)."""
    try:
        return claim()
    except DatasetNotFoundError as e:
        return e
