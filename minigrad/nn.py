"""Layers: Module, Parameter, Linear, Maxout, Dropout, Sequential, and the Maxout MLP.

A ``Module`` owns ``Parameter``s (tensors that always require grad) and sub-modules,
found by walking its attributes in the order they were set.  ``state_dict()`` copies
every parameter to a host NumPy array under a dotted name; ``load_state_dict`` checks
names, shapes and dtypes before it copies anything back.

Weights are stored (in_features, out_features) so a layer is one GEMM, ``x @ W + b``,
with no transpose.  A Maxout layer (Goodfellow et al. 2013) is that GEMM to
units × pieces columns followed by a max over each unit's pieces; its columns are
*pieces-major* (piece k of unit j is column k·units + j), see ``functional.MaxOverPieces``.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from . import validate
from .backend import as_numpy, to_device
from .tensor import Tensor, as_tensor


class Parameter(Tensor):
    """A Tensor that is a trainable parameter: always a leaf that requires grad."""

    def __init__(self, data, dtype=None):
        super().__init__(data, requires_grad=True, dtype=dtype)


class Module:
    """Base of every layer.  Subclasses set parameters/sub-modules as attributes and
    define ``forward``; call the module itself to run it."""

    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}" if name != "layers" else str(i), item

    def named_parameters(self, prefix: str = ""):
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list:
        return [p for _, p in self.named_parameters()]

    def modules(self):
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, device: str) -> "Module":
        """Move every parameter to ``device`` ('cpu', 'cuda', 'strict') in place."""
        for p in self.parameters():
            p.data = to_device(p.data, device)
            p.grad = None
        return self

    @property
    def device(self) -> str:
        params = self.parameters()
        return params[0].device if params else "cpu"

    def state_dict(self) -> dict:
        """{dotted name: host NumPy copy of the parameter}."""
        return {name: as_numpy(p.data).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict):
        """Copy ``state`` into the parameters, after checking it matches exactly."""
        params = dict(self.named_parameters())
        missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(f"load_state_dict: architecture mismatch: missing {missing}, "
                             f"unexpected {unexpected}")
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.shape or value.dtype != p.dtype:
                raise ValueError(f"load_state_dict: {name} is {value.dtype}{list(value.shape)} in the "
                                 f"state but {p.dtype}{list(p.shape)} in the model")
        for name, p in params.items():
            p.data = to_device(np.array(state[name]), p.device)
            p.grad = None
        return self


class Linear(Module):
    """y = x W + b, W of shape (in_features, out_features).

    Initialisation: W ~ U(−a, a) with a = 1/√in_features, b = 0.
    """

    def __init__(self, in_features: int, out_features: int, seed=None, dtype=np.float32):
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            validate.integer(n, name, type(self).__name__, low=1)
        a = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(np.random.default_rng(seed).uniform(-a, a, (in_features, out_features)), dtype=dtype)
        self.bias = Parameter(np.zeros(out_features), dtype=dtype)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{type(self).__name__}: expected input of shape (batch, {self.in_features}), "
                             f"got {x.shape}")
        return x @ self.weight + self.bias


class Maxout(Linear):
    """h_j = max_k (x W + b)[k·units + j]: ``units`` Maxout units of ``pieces`` linear pieces.

    One GEMM to units·pieces columns, then ``functional.maxout`` over the pieces."""

    def __init__(self, in_features: int, units: int, pieces: int, seed=None, dtype=np.float32):
        validate.integer(pieces, "pieces", "Maxout", low=1)
        super().__init__(in_features, units * pieces, seed=seed, dtype=dtype)
        self.units, self.pieces = units, pieces

    def forward(self, x):
        return F.maxout(super().forward(x), self.pieces)


class Dropout(Module):
    """Inverted dropout: in training, zero each entry with probability p and scale the
    survivors by 1/(1 − p), so eval (the identity) needs no rescaling."""

    def __init__(self, p: float = 0.5, seed=None):
        p = validate.probability(p, "p", "Dropout")
        self.p, self.rng = p, np.random.default_rng(seed)

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = self.rng.random(x.shape) >= self.p
        mask = to_device((keep / (1 - self.p)).astype(x.dtype), x.device)
        return x * mask


class Sequential(Module):
    """Layers applied in order; ``layers[:hidden_index(k) + 1]`` reach hidden layer k (how the
    multitask reconstruction cue reads a hidden layer)."""

    def __init__(self, *layers, config: dict | None = None):
        self.layers = list(layers)
        self.config = config

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def hidden_index(self, k: int = 0) -> int:
        """Position in ``layers`` of the k-th Maxout layer (whose output is hidden layer k)."""
        idx = [i for i, layer in enumerate(self.layers) if isinstance(layer, Maxout)]
        if k >= len(idx):
            raise ValueError(f"hidden_index: the model has {len(idx)} Maxout layers, asked for #{k}")
        return idx[k]


def maxout_mlp(in_features: int = 784, units=(240, 240), pieces: int = 5, n_classes: int = 10,
               input_dropout: float = 0.0, hidden_dropout: float = 0.0, seed=0,
               dtype=np.float32) -> Sequential:
    """The permutation-invariant Maxout network: in → Maxout(units[0]×pieces) → ...
    → Linear(n_classes) logits (softmax lives in the loss).

    Defaults give the Maxout paper's MNIST net, 784 → 240×5 → 240×5 → 10; the paper adds
    dropout with input_dropout=0.2, hidden_dropout=0.5 (keep 0.8 / 0.5).  ``seed`` (int or
    Generator) makes initialisation and dropout masks reproducible.
    """
    who = "maxout_mlp"
    in_features = validate.integer(in_features, "in_features", who, low=1)
    units = validate.sizes(units, "units", who)
    pieces = validate.integer(pieces, "pieces", who, low=1)
    n_classes = validate.integer(n_classes, "n_classes", who, low=1)
    input_dropout = validate.probability(input_dropout, "input_dropout", who)
    hidden_dropout = validate.probability(hidden_dropout, "hidden_dropout", who)
    rng = np.random.default_rng(seed)
    config = dict(kind="maxout_mlp", in_features=in_features, units=list(units), pieces=pieces,
                  n_classes=n_classes, input_dropout=input_dropout, hidden_dropout=hidden_dropout,
                  dtype=np.dtype(dtype).name)
    layers, width = [], in_features
    if input_dropout:
        layers.append(Dropout(input_dropout, seed=rng.spawn(1)[0]))
    for u in units:
        layers.append(Maxout(width, u, pieces, seed=rng, dtype=dtype))
        if hidden_dropout:
            layers.append(Dropout(hidden_dropout, seed=rng.spawn(1)[0]))
        width = u
    layers.append(Linear(width, n_classes, seed=rng, dtype=dtype))
    return Sequential(*layers, config=config)


def build(config: dict) -> Sequential:
    """Rebuild a model from its ``config`` (as stored in a checkpoint)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind == "conv_maxout":
        return conv_maxout(**config)
    if kind != "maxout_mlp":
        raise ValueError(f"build: unknown model kind {kind!r}; expected 'maxout_mlp' or 'conv_maxout'")
    return maxout_mlp(**config)


# Convolutional layers live in convnets.py (which builds on the classes above).
from .convnets import Conv2d, ConvMaxout, Flatten, MaxPool2d, Unflatten, conv_maxout  # noqa: E402,F401
