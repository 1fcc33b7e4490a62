"""Terms to add to a full objective: the multitask reconstruction cue and virtual adversarial
training (members of the family that reach inside the model or use no label; see
``regularizers.py`` for the family and ``objective.py`` for how terms and members add up).
"""
from __future__ import annotations


import numpy as np

from . import functional as F
from . import perturbations as P
from . import validate
from .backend import device_of, to_device
from .nn import Linear
from .objective import Frozen, Objective, child_seed, fmt
from .tensor import Tensor, grad, no_grad, unwrap


class Multitask(Objective):
    """γ·(1/(B·D)) Σᵢ ‖dec(hₖ(xᵢ)) − xᵢ‖²: reconstruct the input from hidden layer k (a term).

    The multitask cue of DataGrad (Ororbia et al. 2017, PAPERS.md §2): a linear decoder
    (``nn.Linear(units → input_dim)``, input_dim = C·H·W for images) maps hidden layer ``layer`` (the output of the k-th
    Maxout layer, ``model.layers[model.hidden_index(k)]``) back to x.  The error is
    the mean squared error over examples *and* coordinates (PyTorch's ``mse_loss``), a
    choice that also suits inputs outside [0, 1].  Gradients reach both the encoder (the
    model up to layer k) and the decoder; the decoder belongs to this objective, so the
    optimizer must include ``objective.parameters()``.
    """

    name = "multitask"

    def __init__(self, decoder, gamma, layer=0):
        if not callable(decoder) or not hasattr(decoder, "parameters"):
            raise TypeError(f"Multitask: decoder must be a Module (e.g. nn.Linear), got {decoder!r}")
        self.decoder = decoder
        self.gamma = validate.number(gamma, "gamma", "Multitask", low=0)
        self.layer = validate.integer(layer, "layer", "Multitask", low=0)

    @classmethod
    def for_model(cls, model, gamma, layer=0, seed=0):
        """A Multitask term with a fresh ``nn.Linear`` decoder of the model's sizes, dtype and device.

        The decoder's initialisation is drawn from a stream *derived* from ``seed``: with the
        seed the model was built with, it would otherwise copy the first layer's weights."""
        hidden = model[model.hidden_index(layer)]
        first = model[model.hidden_index(0)]
        decoder = Linear(hidden.units, model.n_inputs, seed=child_seed(seed, "multitask"), dtype=first.weight.dtype)
        return cls(decoder.to(model.device), gamma, layer)

    def settings(self):
        return f"gamma={fmt(self.gamma)}"

    def parameters(self):
        return self.decoder.parameters()

    def __call__(self, model, x, y=None):
        x = Tensor(unwrap(x))
        h = x
        for layer in model.layers[: model.hidden_index(self.layer) + 1]:
            h = layer(h)  # hidden layer k, without running the layers above it
        target = x if x.ndim == 2 else F.reshape(x, (x.shape[0], -1))  # images are compared as rows
        diff = self.decoder(h) - target
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
