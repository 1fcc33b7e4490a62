"""Training diagnostics: the published signals that see a collapse coming, measured on a fixed probe.

``Diagnostics(x, y, eps)`` is a callable ``model -> {signal: float}`` that ``train.fit(...,
diagnostics=...)`` calls at the end of every epoch (model in eval mode) and records in the history
beside the loss, under ``record["diagnostics"]``.  The probe is a fixed batch from the training set (a
few hundred examples), and every random draw is made once, so a change between epochs is the model's::

    cosine        GradAlign's mean cos(g(x), g(x + η)), η ~ U[−ε, ε]^D drawn once (Andriushchenko &
                  Flammarion 2020: it falls as FGSM training overfits catastrophically)
    linearity     LLR's mean local linearity error γ(ε, x) at its maximiser (Qin et al. 2019)
    curvature     the mean top eigenvalue of each example's input Hessian ∇²ₓLᵢ, by power iteration on
                  ``hvp`` (Moosavi-Dezfooli et al. 2019)
    fgsm_error    the error at x + ε·sign g (FGSM)
    pgd_error     the error under PGD (``pgd_steps`` of ε/4 from a fixed random start): Wong, Rice &
                  Kolter's (2020) early stop watches it

Cost per epoch, for a probe of B examples: about (pgd_steps + llr_steps + 2·power_iterations + 6)
forward-and-backward passes over B examples, a few hundred steps' worth of a large epoch's thousands.
``signals`` picks a subset.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from . import validate
from .backend import as_numpy, to_device
from .curvature import GradAlign, LocalLinearity
from .diffops import hvp
from .perturbations import input_gradient, pgd
from .tensor import Tensor, no_grad, unwrap

SIGNALS = ("cosine", "linearity", "curvature", "fgsm_error", "pgd_error")


def top_hessian_eigenvalue(model, x, y, iterations=20, seed=0) -> np.ndarray:
    """The largest eigenvalue of each example's input Hessian ∇²ₓLᵢ, by ``iterations`` steps of power
    iteration on ``hvp`` of the summed loss (its Hessian is block diagonal, one block per example, so
    the whole batch iterates at once, each row normalised on its own).  For a Maxout network the
    Hessian is positive semi-definite (claim 9), so the dominant eigenvalue is the top one.  A raw
    host array in, a host array (batch,) out."""
    x = as_numpy(unwrap(x))
    device = model.device
    v = np.random.default_rng(seed).standard_normal(x.shape).astype(x.dtype)
    v /= np.linalg.norm(v.reshape(len(x), -1), axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
    top = np.zeros(len(x))
    for _ in range(iterations):
        _, hv = hvp(lambda xx: F.cross_entropy(model(xx), y, reduction="sum"),
                    Tensor(to_device(x, device)), Tensor(to_device(v, device)))
        hv = as_numpy(hv.data)
        top = (hv * v).reshape(len(x), -1).sum(axis=1)
        norms = np.linalg.norm(hv.reshape(len(x), -1), axis=1)
        v = (hv / np.maximum(norms, 1e-30).reshape((-1,) + (1,) * (x.ndim - 1))).astype(x.dtype)
    return top


class Diagnostics:
    """``model -> {signal: float}`` on the probe (x, y) at budget ε (see the module docstring)."""

    def __init__(self, x, y, eps, signals=SIGNALS, pgd_steps=10, llr_steps=10, power_iterations=10, seed=0):
        who = "Diagnostics"
        self.x, self.y = as_numpy(unwrap(x)), as_numpy(unwrap(y))
        if self.x.dtype.kind != "f" or len(self.x) == 0 or self.y.shape != self.x.shape[:1]:
            raise ValueError(f"{who}: the probe must be a non-empty float batch with one label per example, "
                             f"got x {self.x.dtype} {self.x.shape} and y of shape {self.y.shape}")
        self.eps = validate.number(eps, "eps", who, low=0, open_low=True)
        unknown = [s for s in signals if s not in SIGNALS]
        if unknown or not signals:
            raise ValueError(f"{who}: signals must be some of {', '.join(SIGNALS)}; got {list(signals)!r}")
        self.signals = tuple(signals)
        self.pgd_steps = validate.integer(pgd_steps, "pgd_steps", who, low=1)
        self.llr_steps = validate.integer(llr_steps, "llr_steps", who, low=0)
        self.power_iterations = validate.integer(power_iterations, "power_iterations", who, low=1)
        self.seed = validate.integer(seed, "seed", who, low=0)
        self.eta = np.random.default_rng([seed, 1]).uniform(-eps, eps, self.x.shape).astype(self.x.dtype)

    def _error(self, model, x) -> float:
        with no_grad():
            return float((as_numpy(model(Tensor(x)).data).argmax(axis=1) != as_numpy(self.y)).mean())

    def __call__(self, model) -> dict:
        x, y, out = to_device(self.x, model.device), to_device(self.y, model.device), {}
        g = input_gradient(model, x, y) if {"cosine", "fgsm_error"} & set(self.signals) else None
        if "cosine" in self.signals:
            g_eta = input_gradient(model, x + to_device(self.eta, model.device), y)
            out["cosine"] = float(as_numpy(GradAlign.cosine(g, g_eta).data).mean())
        if "linearity" in self.signals:
            llr = LocalLinearity(self.eps, steps=self.llr_steps, seed=self.seed)  # the same start each epoch
            delta = llr.maximiser(model, x, y)
            with no_grad():
                clean = F.cross_entropy(model(Tensor(x)), y, reduction="none")
                at = F.cross_entropy(model(Tensor(x) + delta), y, reduction="none")
                out["linearity"] = float(as_numpy(llr.linearity_error(at, clean, delta, g if g is not None
                                                                      else input_gradient(model, x, y)).data).mean())
        if "curvature" in self.signals:
            out["curvature"] = float(top_hessian_eigenvalue(model, self.x, y, self.power_iterations, self.seed).mean())
        if "fgsm_error" in self.signals:
            out["fgsm_error"] = self._error(model, x + self.eps * g.xp.sign(g.data))
        if "pgd_error" in self.signals:
            adv = pgd(model, x, y, self.eps, np.inf, self.pgd_steps, self.eps / 4, random_start=True, seed=self.seed)
            out["pgd_error"] = self._error(model, adv)
        return out


__all__ = ["SIGNALS", "Diagnostics", "top_hessian_eigenvalue"]
