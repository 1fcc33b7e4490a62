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

import math

import numpy as np

from . import conv as C
from . import functional as F
from . import validate
from .errors import InvalidArgument
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
            raise InvalidArgument(f"load_state_dict: architecture mismatch: missing {missing}, "
                             f"unexpected {unexpected}")
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.shape or value.dtype != p.dtype:
                raise InvalidArgument(f"load_state_dict: {name} is {value.dtype}{list(value.shape)} in the "
                                 f"state but {p.dtype}{list(p.shape)} in the model")
        for name, p in params.items():
            p.data = to_device(np.array(state[name]), p.device)
            p.grad = None
        return self


class Linear(Module):
    """y = x W + b, W of shape (in_features, out_features).

    Initialisation: W ~ U(−a, a) with a = ``init_range``, by default 1/√in_features; b = 0.
    (pylearn2's ``irange``: the Maxout paper's MNIST network uses 0.005.)
    """

    def __init__(self, in_features: int, out_features: int, seed=None, dtype=np.float32, init_range=None):
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            validate.integer(n, name, type(self).__name__, low=1)
        a = 1.0 / np.sqrt(in_features) if init_range is None else \
            validate.number(init_range, "init_range", type(self).__name__, low=0, open_low=True)
        self.weight = Parameter(np.random.default_rng(seed).uniform(-a, a, (in_features, out_features)), dtype=dtype)
        self.bias = Parameter(np.zeros(out_features), dtype=dtype)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise InvalidArgument(f"{type(self).__name__}: expected input of shape (batch, {self.in_features}), "
                             f"got {x.shape}")
        return F.affine(x, self.weight, self.bias)  # x @ W + b, the bias added into the product


class Maxout(Linear):
    """h_j = max_k (x W + b)[k·units + j]: ``units`` Maxout units of ``pieces`` linear pieces.

    One GEMM to units·pieces columns, then ``functional.maxout`` over the pieces."""

    def __init__(self, in_features: int, units: int, pieces: int, seed=None, dtype=np.float32, init_range=None):
        validate.integer(pieces, "pieces", "Maxout", low=1)
        super().__init__(in_features, units * pieces, seed=seed, dtype=dtype, init_range=init_range)
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

    @property
    def n_inputs(self) -> int:
        """Features of one example: C·H·W for a conv network (it starts with Unflatten), else the first
        layer's in_features (what the ℓ2/ℓ1 budgets and the multitask decoder are sized by)."""
        if isinstance(self.layers[0], Unflatten):
            return math.prod(self.layers[0].shape)
        return next(layer for layer in self.layers if hasattr(layer, "in_features")).in_features

    def hidden_index(self, k: int = 0) -> int:
        """Position in ``layers`` of the k-th Maxout layer (whose output is hidden layer k)."""
        idx = [i for i, layer in enumerate(self.layers) if isinstance(layer, Maxout)]
        if k >= len(idx):
            raise InvalidArgument(f"hidden_index: the model has {len(idx)} Maxout layers, asked for #{k}")
        return idx[k]


def maxout_mlp(in_features: int = 784, units=(240, 240), pieces: int = 5, n_classes: int = 10,
               input_dropout: float = 0.0, hidden_dropout: float = 0.0, seed=0,
               dtype=np.float32, init_range=None) -> Sequential:
    """The permutation-invariant Maxout network: in → Maxout(units[0]×pieces) → ...
    → Linear(n_classes) logits (softmax lives in the loss).

    Defaults give the Maxout paper's MNIST net, 784 → 240×5 → 240×5 → 10; the paper adds
    dropout with input_dropout=0.2, hidden_dropout=0.5 (keep 0.8 / 0.5).  ``seed`` (int or
    Generator) makes initialisation and dropout masks reproducible.  ``init_range``: every weight
    ~ U(−r, r) (pylearn2's irange; the paper's 0.005), instead of each layer's 1/√fan-in.
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
                  dtype=np.dtype(dtype).name, **({} if init_range is None else {"init_range": init_range}))
    layers, width = [], in_features
    if input_dropout:
        layers.append(Dropout(input_dropout, seed=rng.spawn(1)[0]))
    for u in units:
        layers.append(Maxout(width, u, pieces, seed=rng, dtype=dtype, init_range=init_range))
        if hidden_dropout:
            layers.append(Dropout(hidden_dropout, seed=rng.spawn(1)[0]))
        width = u
    layers.append(Linear(width, n_classes, seed=rng, dtype=dtype, init_range=init_range))
    return Sequential(*layers, config=config)


def build(config: dict) -> Sequential:
    """Rebuild a model from its ``config`` (as stored in a checkpoint)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind == "conv_maxout":
        return conv_maxout(**config)
    if kind != "maxout_mlp":
        raise InvalidArgument(f"build: unknown model kind {kind!r}; expected 'maxout_mlp' or 'conv_maxout'")
    return maxout_mlp(**config)


# --- convolutional layers ---------------------------------------------------------------------
# The convolutional Maxout network (Goodfellow et al. 2013, §5.3 CIFAR-10).  The ops are
# ``minigrad.conv`` (unfold/fold and what is built on them); these are thin Modules holding
# parameters.  A conv network takes images (N, C, H, W) or the datasets' flattened rows (N, C·H·W):
# its first layer ``Unflatten(in_shape)`` restores the image shape, so the family (whose norms are
# per example over all of an example's coordinates) and the datasets' (N, D) arrays need no change.
# A layer's ``max_norm`` (the Maxout recipe's per-layer limits) is stored on its weight Parameter as
# ``weight.max_norm``; ``optim.SGD``/``Adam`` apply it after every step (max column norm for a 2-D
# weight, max kernel norm per output filter for a 4-D one), before any optimiser-wide value.
def _set_max_norm(param, max_norm, who):
    if max_norm is not None:
        param.max_norm = validate.number(max_norm, "max_norm", who, low=0, open_low=True)


class Unflatten(Module):
    """``(N, D)`` rows → ``(N, *shape)`` images; ``(N, *shape)`` passes through."""

    def __init__(self, shape):
        self.shape = validate.sizes(shape, "shape", "Unflatten")

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.shape[1:] == self.shape:
            return x
        if x.ndim != 2 or x.shape[1] != math.prod(self.shape):
            raise InvalidArgument(f"Unflatten: expected input of shape (N, {math.prod(self.shape)}) or "
                             f"(N, {', '.join(map(str, self.shape))}), got {x.shape}")
        return F.reshape(x, (x.shape[0],) + self.shape)


class Flatten(Module):
    """(N, ...) → (N, D)."""

    def forward(self, x):
        return C.flatten(x)


class Conv2d(Module):
    """y = conv2d(x, W, b): W (out_channels, in_channels, kh, kw), b (out_channels,).

    Initialisation as ``Linear``: W ~ U(−a, a), a = 1/√(in_channels·kh·kw), b = 0."""

    def __init__(self, in_channels: int, out_channels: int, kernel, stride=1, padding=0, seed=None,
                 dtype=np.float32, max_norm=None):
        who = type(self).__name__
        in_channels = validate.integer(in_channels, "in_channels", who, low=1)
        out_channels = validate.integer(out_channels, "out_channels", who, low=1)
        self.kernel = validate.pair(kernel, "kernel", who, 1)
        self.stride, self.padding = validate.pair(stride, "stride", who, 1), validate.pads(padding, "padding", who)
        fan_in = in_channels * self.kernel[0] * self.kernel[1]
        a = 1.0 / np.sqrt(fan_in)
        self.weight = Parameter(np.random.default_rng(seed).uniform(-a, a, (out_channels, in_channels) + self.kernel), dtype=dtype)
        self.bias = Parameter(np.zeros(out_channels), dtype=dtype)
        _set_max_norm(self.weight, max_norm, who)
        self.in_channels, self.out_channels = in_channels, out_channels

    def output_shape(self, in_shape):
        """(C, H, W) of the output for an input image of shape (C, H, W)."""
        t, b, l, r = self.padding
        return (self.out_channels,
                C.output_size(in_shape[1], self.kernel[0], self.stride[0], t, b),
                C.output_size(in_shape[2], self.kernel[1], self.stride[1], l, r))

    def forward(self, x):
        return C.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class MaxPool2d(Module):
    """max_pool2d(x, kernel, stride, padding, ceil_mode): overlapping windows allowed; ties split evenly."""

    def __init__(self, kernel, stride=None, padding=0, ceil_mode=False):
        who = "MaxPool2d"
        self.kernel = validate.pair(kernel, "kernel", who, 1)
        self.stride = self.kernel if stride is None else validate.pair(stride, "stride", who, 1)
        self.padding, self.ceil_mode = validate.pair(padding, "padding", who, 0), bool(ceil_mode)

    def output_shape(self, in_shape):
        return (in_shape[0],) + tuple(
            C.pool_padding(in_shape[1 + i], self.kernel[i], self.stride[i], self.padding[i], self.ceil_mode)[1]
            for i in range(2))

    def forward(self, x):
        return C.max_pool2d(x, self.kernel, self.stride, self.padding, self.ceil_mode)


class ConvMaxout(Conv2d):
    """Convolutional Maxout (pylearn2's MaxoutConvC01B): conv to channels·pieces filters → max over each
    channel's pieces → max pooling (cover-all by default, as cuda-convnet).

    Filters are pieces-major like ``nn.Maxout``: piece k of channel j is filter k·channels + j.  One bias
    per filter, shared by every position (pylearn2's ``tied_b=True``).  ``conv.conv2d`` → ``conv.channel_maxout``
    (whose pieces are contiguous blocks of the conv's C01B output) → ``conv.max_pool2d``; max over pieces and
    max over a pooling window commute, so pooling after the Maxout costs pieces× less."""

    def __init__(self, in_channels: int, channels: int, pieces: int, kernel, padding=0, stride=1,
                 pool=None, pool_stride=None, ceil_mode=True, seed=None, dtype=np.float32, max_norm=None):
        who = "ConvMaxout"
        pieces = validate.integer(pieces, "pieces", who, low=1)
        super().__init__(in_channels, channels * pieces, kernel, stride, padding, seed, dtype, max_norm)
        self.channels, self.pieces = channels, pieces
        self.pool = None if pool is None else MaxPool2d(pool, pool_stride, 0, ceil_mode)

    def output_shape(self, in_shape):
        shape = (self.channels,) + super().output_shape(in_shape)[1:]
        return shape if self.pool is None else self.pool.output_shape(shape)

    def forward(self, x):
        h = C.channel_maxout(C.conv2d(x, self.weight, self.bias, self.stride, self.padding), self.pieces)
        return h if self.pool is None else self.pool(h)


# (channels, pieces, kernel, padding, (pool, pool stride), max kernel norm) per conv layer;
# (units, pieces, max col norm) of the dense Maxout layer; the softmax layer's max col norm.
PRESETS = {
    # Goodfellow et al. 2013, CIFAR-10 (pylearn2 scripts/papers/maxout/cifar10.yaml), without dropout.
    "cifar10": dict(in_shape=(3, 32, 32),
                    conv=[(96, 2, 8, 4, (4, 2), 0.9), (192, 2, 8, 3, (4, 2), 1.9365),
                          (192, 2, 5, 3, (2, 2), 1.9365)],
                    dense=(500, 5, 1.9), out_max_norm=1.9365),
    # 28×28 digits in minutes on 2 cores: 28 → 28 → pool 14 → 14 → pool 7; 32·7·7 → 100×2 → 10.
    "small": dict(in_shape=(1, 28, 28),
                  conv=[(16, 2, 5, 2, (3, 2), 0.9), (32, 2, 5, 2, (3, 2), 1.9365)],
                  dense=(100, 2, 1.9), out_max_norm=1.9365),
}


def conv_maxout(preset: str = "small", in_shape=None, n_classes: int = 10, seed=0,
                dtype=np.float32) -> Sequential:
    """A convolutional Maxout network: Unflatten → ConvMaxout × L → Flatten → Maxout → Linear logits
    (softmax lives in the loss).

    ``preset``: 'cifar10', the Maxout paper's CIFAR-10 net (96×2 / 192×2 / 192×2 pieces, kernels 8, 8, 5,
    pads 4, 3, 3, pools 4/2, 4/2, 2/2; dense Maxout 500×5; max norms 0.9 / 1.9365 / 1.9365 / 1.9 / 1.9365),
    or 'small' (16×2 and 32×2 channels, kernels 5, pools 3/2; dense 100×2) for 28×28 digits.
    ``in_shape``: (C, H, W) of one example, or (H, W) for one channel, e.g. a Dataset's ``image_shape``
    (default: the preset's).  The paper's dropout is not included."""
    who = "conv_maxout"
    validate.choice(preset, tuple(PRESETS), "preset", who)
    spec = PRESETS[preset]
    shape = spec["in_shape"] if in_shape is None else validate.sizes(in_shape, "in_shape", who)
    if len(shape) == 2:  # a dataset's image_shape (H, W) of grey images
        shape = (1,) + shape
    if len(shape) != 3:
        raise InvalidArgument(f"{who}: in_shape must be (C, H, W) or (H, W), got {shape}")
    n_classes = validate.integer(n_classes, "n_classes", who, low=1)
    rng = np.random.default_rng(seed)
    config = dict(kind="conv_maxout", preset=preset, in_shape=list(shape), n_classes=n_classes,
                  dtype=np.dtype(dtype).name)
    layers = [Unflatten(shape)]
    for channels, pieces, kernel, padding, (pool, stride), max_norm in spec["conv"]:
        layer = ConvMaxout(shape[0], channels, pieces, kernel, padding, pool=pool, pool_stride=stride,
                           seed=rng, dtype=dtype, max_norm=max_norm)
        shape = layer.output_shape(shape)
        layers.append(layer)
    layers.append(Flatten())
    units, pieces, max_norm = spec["dense"]
    dense = Maxout(math.prod(shape), units, pieces, seed=rng, dtype=dtype)
    _set_max_norm(dense.weight, max_norm, who)
    out = Linear(units, n_classes, seed=rng, dtype=dtype)
    _set_max_norm(out.weight, spec["out_max_norm"], who)
    return Sequential(*layers, dense, out, config=config)
