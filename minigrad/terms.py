"""The data loss and the terms added to it that need no input gradient: the face of the family
computed by a forward pass alone (``regularizers.py`` is the family's front door and its table).

- ``CrossEntropy``: the plain data loss L, member 'plain';
- ``WeightDecay``: L1 / L2 weight decay, members 'l1' and 'l2' (added to L);
- ``Multitask``: DataGrad's reconstruction cue, member 'multitask' (added to L or to DataGrad).
"""
from __future__ import annotations

from . import functional as F
from . import validate
from .nn import Linear
from .objective import Objective, child_seed, data_loss
from .tensor import Tensor, unwrap
from .validate import fmt


class CrossEntropy(Objective):
    r"""The plain data loss, the mean cross-entropy of the batch:

        L(θ) = (1/B) Σᵢ −log softmax(f(xᵢ; θ))[yᵢ]

    .. math::

       L(\theta) = -\frac1B \sum_i \log \operatorname{softmax}\bigl(f(x_i; \theta)\bigr)_{y_i}.
    """

    includes_data_loss = True
    name = "plain"

    def __call__(self, model, x, y):
        return data_loss(model, x, y)


class WeightDecay(Objective):
    r"""L1 and L2 weight decay, a term (add it to a full objective):

        R(θ) = l1·Σ|W| + (l2/2)·Σ W²,    ∇_W R = l1·sign(W) + l2·W

    .. math::

       R(\theta) = l_1 \sum |W| + \frac{l_2}{2} \sum W^2, \qquad \nabla_W R = l_1 \operatorname{sign}(W) + l_2 W.

    Over every parameter named ``weight`` (the Linear and Maxout matrices); biases are
    not decayed, as is conventional (a bias does not scale the function's slope).  The
    ½ makes the gradient l1·sign(W) + l2·W, so ``l2`` is the weight-decay coefficient of
    SGD (PyTorch's ``weight_decay=l2``).  abs′(0) = 0.  x and y are not used.
    Named 'l1', 'l2' or 'l1+l2' after the coefficients that are set.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = validate.number(l1, "l1", "WeightDecay", low=0)
        self.l2 = validate.number(l2, "l2", "WeightDecay", low=0)

    name = property(lambda self: "+".join(k for k in ("l1", "l2") if getattr(self, k)) or "no-decay")

    def settings(self):
        return ",".join(f"{k}={fmt(v)}" for k, v in (("l1", self.l1), ("l2", self.l2)) if v)

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


class Multitask(Objective):
    r"""Reconstruct the input from hidden layer k: γ times the mean squared error of a decoder (a term):

        γ·(1/(B·D)) Σᵢ ‖dec(hₖ(xᵢ)) − xᵢ‖₂²

    .. math::

       \frac{\gamma}{B D} \sum_i \bigl\|\operatorname{dec}\bigl(h_k(x_i)\bigr) - x_i\bigr\|_2^2.

    The multitask cue of DataGrad (Ororbia et al. 2017, science page §2): a linear decoder
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
