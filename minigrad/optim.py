"""Optimisers (SGD with momentum, Adam), schedules, and the max column- and kernel-norm constraints.

An optimiser holds a list of Parameters and updates their arrays in place::

    opt = SGD(model.parameters(), lr=0.1, momentum=LinearRamp(0.5, 0.7, length=10),
              max_col_norm=1.9365)
    grads = minigrad.grad(loss, model.parameters())
    opt.step(grads)               # or loss.backward(); opt.step(); opt.zero_grad()

Any hyperparameter that may change during training (lr, momentum) is a number or a
*schedule*: a callable t ↦ value, where t counts either steps taken or epochs completed
(``schedule.per``).  ``fit`` sets ``optimizer.epoch`` at the start of every epoch.

State (momentum buffers, Adam moments, counters) is created lazily on the first step, on
the parameter's own device, so a model may be moved with ``model.to('cuda')`` after its
optimiser is built.  ``state_dict()`` copies it to host NumPy arrays for a checkpoint and
``load_state_dict`` puts it back bit for bit.

Updates keep the parameter dtype: scalars are Python floats (NumPy 2 treats those as weak,
so float32 stays float32), and every update writes through ``out=`` into one scratch buffer
per parameter rather than allocating temporaries each step.
"""
from __future__ import annotations

import math

import numpy as np

from . import validate
from .errors import InvalidArgument
from .backend import as_numpy, get_array_module, to_device
from .tensor import Tensor, unwrap

MAXOUT_MAX_COL_NORM = 1.9365  # Goodfellow et al. 2013, permutation-invariant MNIST


# --- schedules ------------------------------------------------------------------------
class Schedule:
    """A hyperparameter as a function of t (steps taken, or epochs completed: ``per``)."""

    per = "step"

    def __call__(self, t: int) -> float:
        raise NotImplementedError

    def bounds(self) -> tuple[float, float]:
        """(inf, sup) of the values over every t >= 0, which an optimiser checks against the
        hyperparameter's domain before the first step.  This default knows only v(0): a schedule
        whose values move should say where they go."""
        v = float(self(0))
        return v, v

    def config(self) -> dict:
        """JSON-ready description, stored in checkpoint metadata."""
        return {"schedule": type(self).__name__, **vars(self)}


def _check_per(per):
    if per not in ("step", "epoch"):
        raise InvalidArgument(f"schedule: per must be 'step' or 'epoch', got {per!r}")
    return per


class ExponentialDecay(Schedule):
    """v(t) = max(start · factorᵗ, minimum).  The Maxout recipe decays the learning rate
    by a factor slightly below 1 each step (pylearn2's ExponentialDecay divides by 1.000004)."""

    def __init__(self, start: float, factor: float, per: str = "epoch", minimum: float = 0.0):
        self.start = validate.number(start, "start", "ExponentialDecay", low=0, open_low=True)
        self.factor = validate.number(factor, "factor", "ExponentialDecay", low=0, high=1, open_low=True)
        self.minimum = validate.number(minimum, "minimum", "ExponentialDecay", low=0)
        self.per = _check_per(per)

    def __call__(self, t):
        return max(self.start * self.factor ** t, self.minimum)

    def bounds(self):
        # v(0) is the largest value; below it the values fall towards the minimum (0 if none: approached,
        # never reached) unless the factor is 1.
        top = max(self.start, self.minimum)
        return (top if self.factor == 1 else self.minimum), top


class LinearRamp(Schedule):
    """v(t) = start for t ≤ delay, then linear to ``end`` at t = delay + length, then ``end``.

    The Maxout recipe ramps momentum 0.5 → 0.7: ``LinearRamp(0.5, 0.7, length=N)``; a
    linear learning-rate decay is ``LinearRamp(lr, lr_final, length=N)``."""

    def __init__(self, start: float, end: float, length: int, per: str = "epoch", delay: int = 0):
        self.start = validate.number(start, "start", "LinearRamp")
        self.end = validate.number(end, "end", "LinearRamp")
        self.length = validate.integer(length, "length", "LinearRamp", low=1)
        self.delay = validate.integer(delay, "delay", "LinearRamp", low=0)
        self.per = _check_per(per)

    def __call__(self, t):
        fraction = min(max(t - self.delay, 0) / self.length, 1.0)
        return self.start + fraction * (self.end - self.start)

    def bounds(self):
        return min(self.start, self.end), max(self.start, self.end)


class Constant(Schedule):
    def __init__(self, value: float):
        self.value = validate.number(value, "value", "Constant")

    def __call__(self, t):
        return self.value


def as_schedule(value) -> Schedule:
    """A Schedule as is; a plain number as a Constant."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        return Constant(value)
    raise InvalidArgument(f"as_schedule: expected a number or a Schedule, got {value!r}")


def _hyperparameter(value, what: str, who: str, low: float, high: float = math.inf, open_high: bool = False):
    """A number in [low, high] (open at ``high`` if asked; lr > 0 is checked by the caller), or a
    Schedule whose values all lie there; returned as a Schedule.  Checked once, before the first step:
    momentum 1.5 would otherwise run 30 epochs to a loss of 6e5 without a word."""
    if not isinstance(value, Schedule):
        return as_schedule(validate.number(value, what, who, low=low, high=high, open_high=open_high))
    lo, hi = value.bounds()
    for end, v in (("least", lo), ("greatest", hi)):
        validate.number(v, f"the {end} value of {what}'s {type(value).__name__}", who, low=low, high=high,
                        open_high=open_high)
    return value


# --- the max column-norm constraint ---------------------------------------------------------
def _overflow_safe_norms(w, xp, axis):
    """‖·‖₂ over ``axis`` (kept), scaled by the largest |w| there first so that w·w cannot overflow."""
    big = xp.abs(w).max(axis=axis, keepdims=True)
    return big * xp.sqrt(((w / xp.maximum(big, xp.finfo(w.dtype).tiny)) ** 2).sum(axis=axis, keepdims=True))


def _clip_norms_(w, max_norm: float, axis):
    """Rescale in place every slice of ``w`` along ``axis`` whose L2 norm exceeds ``max_norm`` to norm
    exactly ``max_norm``; shorter slices are left bit-for-bit untouched.  The scale is
    c / max(‖wⱼ‖, c): exactly 1 for a short slice, and no division by a zero norm."""
    xp = get_array_module(w)
    with np.errstate(over="ignore"):  # an overflow is handled on the next lines
        norms = xp.sqrt((w * w).sum(axis=axis, keepdims=True))
    # w·w overflowed for huge but finite weights: without care such a slice gets norm inf and is
    # rescaled to exactly 0.  On the host, look first (the rescue is a pass over w, almost never needed);
    # on a device looking would cost a synchronisation every step, so select there instead.
    if xp is np:
        if np.isinf(norms).any():
            norms = _overflow_safe_norms(w, xp, axis)
    else:
        norms = xp.where(xp.isinf(norms), _overflow_safe_norms(w, xp, axis), norms)
    w *= max_norm / xp.maximum(norms, max_norm)
    return w


def max_norm_(weight, max_norm: float):
    """Rescale, in place, each column of ``weight`` (in, out) whose L2 norm exceeds ``max_norm``
    to norm exactly ``max_norm``; shorter columns are left bit-for-bit untouched.

    Column j holds the incoming weights of output unit (or Maxout piece) j, so this bounds
    ‖wⱼ‖₂ ≤ c for every unit (Srebro & Shraibman 2005; Hinton et al. 2012; Maxout uses
    c = 1.9365).  Returns the array.
    """
    w = unwrap(weight)
    if w.ndim != 2:
        raise ValueError(f"max_norm_: expected a weight matrix (in, out), got shape {w.shape}")
    # Finite: an infinite bound would compute inf/inf = NaN for every column (use None: no bound).
    validate.number(max_norm, "max_norm", "max_norm_", low=0, open_low=True)
    return _clip_norms_(w, max_norm, axis=0)


def max_kernel_norm_(weight, max_norm: float):
    """Rescale, in place, each output filter of a conv ``weight`` (out, in, kh, kw) whose L2 norm over
    (in, kh, kw) exceeds ``max_norm`` to norm exactly ``max_norm``; the others stay bit-for-bit.

    pylearn2's ``max_kernel_norm`` of the Maxout paper's conv layers (0.9 for the first CIFAR-10 layer,
    1.9365 for the next two): filter o is row o of the (out, in·kh·kw) matrix the convolution's GEMM
    uses, so this is ``max_norm_`` on that matrix's transpose.  Returns the array."""
    w = unwrap(weight)
    if w.ndim != 4:
        raise ValueError(f"max_kernel_norm_: expected a conv weight (out, in, kh, kw), got shape {w.shape}")
    max_norm = validate.number(max_norm, "max_norm", "max_kernel_norm_", low=0, open_low=True)
    return _clip_norms_(w, max_norm, axis=(1, 2, 3))


# --- optimisers -------------------------------------------------------------------------------
class Optimizer:
    """Base: parameters, step/epoch counters, lazily created per-parameter buffers.

    A subclass names its buffers in ``buffers`` and implements ``_update(i, p, g)`` on raw
    arrays; ``step`` feeds it and then applies the max-norm constraint.
    """

    buffers: tuple = ()

    def __init__(self, params, lr, max_col_norm: float | None = None, max_kernel_norm: float | None = None):
        who = type(self).__name__
        self.params = list(params)
        if not self.params:
            raise InvalidArgument(f"{who}: got an empty parameter list")
        seen = {}
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise InvalidArgument(f"{who}: parameter {i} is not a Tensor that requires grad")
            if id(p) in seen:  # it would be stepped twice per step
                raise InvalidArgument(f"{who}: parameter {i} ({p.dtype}{list(p.shape)}) is parameter "
                                      f"{seen[id(p)]} again; list each parameter once")
            seen[id(p)] = i
        for name, bound in (("max_col_norm", max_col_norm), ("max_kernel_norm", max_kernel_norm)):
            if bound is not None:  # None: no bound; an infinite bound would make NaN (inf/inf)
                validate.number(bound, f"{name} (None for no bound)", who, low=0, open_low=True)
        # lr > 0; a schedule may decay towards 0 (LinearRamp(lr, 0)) but never below, nor be 0 throughout.
        if not isinstance(lr, Schedule):
            validate.number(lr, "lr", who, low=0, open_low=True)
        self.lr = _hyperparameter(lr, "lr", who, low=0)
        if self.lr.bounds()[1] <= 0:
            raise InvalidArgument(f"{who}: lr's {type(lr).__name__} is 0 throughout; nothing would be learned")
        self.max_col_norm, self.max_kernel_norm = max_col_norm, max_kernel_norm
        self.steps, self.epoch = 0, 0
        self.state: dict[str, dict[int, object]] = {name: {} for name in self.buffers + ("scratch",)}

    def value(self, schedule: Schedule) -> float:
        """A schedule's value now (at this step or epoch)."""
        return float(schedule(self.epoch if schedule.per == "epoch" else self.steps))

    def _buffer(self, name: str, i: int):
        buf = self.state[name].get(i)
        if buf is None:
            buf = self.state[name][i] = get_array_module(self.params[i].data).zeros_like(self.params[i].data)
        return buf

    def step(self, grads=None):
        """Apply one update.  ``grads``: one gradient (Tensor, array or None to skip) per
        parameter, as returned by ``minigrad.grad(loss, params)``; default: each ``p.grad``."""
        if grads is None:
            grads = [p.grad for p in self.params]
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"{type(self).__name__}.step: {len(grads)} gradients for "
                             f"{len(self.params)} parameters")
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            g = unwrap(g)
            if g.shape != p.shape or g.dtype != p.dtype:
                raise ValueError(f"{type(self).__name__}.step: gradient {i} is {g.dtype}{list(g.shape)}, "
                                 f"parameter is {p.dtype}{list(p.shape)}")
            self._update(i, p.data, g)
        self.steps += 1
        for p in self.params:  # a Parameter's own max_norm (set by a layer, e.g. a preset) wins
            if p.ndim == 2 and (limit := getattr(p, "max_norm", None) or self.max_col_norm) is not None:
                max_norm_(p.data, limit)
            elif p.ndim == 4 and (limit := getattr(p, "max_norm", None) or self.max_kernel_norm) is not None:
                max_kernel_norm_(p.data, limit)

    def _update(self, i, p, g):
        raise NotImplementedError

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def config(self) -> dict:
        """Hyperparameters, JSON-ready (for checkpoint metadata)."""
        out = {"type": type(self).__name__, "max_col_norm": self.max_col_norm}
        if self.max_kernel_norm is not None:
            out["max_kernel_norm"] = self.max_kernel_norm
        for name, value in vars(self).items():
            if isinstance(value, Schedule):
                out[name] = value.value if isinstance(value, Constant) else value.config()
        return out

    def state_dict(self) -> dict:
        """{name: host NumPy array}: counters and every buffer (``velocity.3``: buffer of parameter 3)."""
        out = {"steps": np.array(self.steps, dtype=np.int64), "epoch": np.array(self.epoch, dtype=np.int64)}
        for name in self.buffers:
            for i, buf in sorted(self.state[name].items()):
                out[f"{name}.{i}"] = as_numpy(buf).copy()
        return out

    def load_state_dict(self, state: dict):
        """Restore what ``state_dict`` returned, after checking it fits these parameters."""
        who = f"{type(self).__name__}.load_state_dict"
        if "steps" not in state or "epoch" not in state:
            raise ValueError(f"{who}: the state has no 'steps'/'epoch' counters; is it an optimizer state?")
        buffers = {}
        for key, value in state.items():
            if key in ("steps", "epoch"):
                continue
            name, _, index = key.partition(".")
            if name not in self.buffers or not index.isdigit() or int(index) >= len(self.params):
                raise ValueError(f"{who}: unexpected entry {key!r}; {type(self).__name__} keeps buffers "
                                 f"{list(self.buffers)} for parameters 0..{len(self.params) - 1}")
            p, value = self.params[int(index)], np.asarray(value)
            if value.shape != p.shape or value.dtype != p.dtype:
                raise ValueError(f"{who}: {key} is {value.dtype}{list(value.shape)}, its parameter "
                                 f"is {p.dtype}{list(p.shape)}")
            buffers[name, int(index)] = to_device(np.array(value), p.device)
        self.steps, self.epoch = int(state["steps"]), int(state["epoch"])
        self.state = {name: {} for name in self.buffers + ("scratch",)}
        for (name, i), buf in buffers.items():
            self.state[name][i] = buf
        return self


class SGD(Optimizer):
    r"""Stochastic gradient descent with (classical) momentum, as in the Maxout recipe:

        v ← μ·v − η·g,      θ ← θ + v

    .. math::

       v \leftarrow \mu v - \eta g, \qquad \theta \leftarrow \theta + v

    (Sutskever et al. 2013, eq. 1).  η = ``lr`` and μ = ``momentum`` may be schedules;
    the Maxout paper ramps μ from 0.5 to 0.7.  momentum=0 is plain SGD, θ ← θ − η·g.
    """

    buffers = ("velocity",)

    def __init__(self, params, lr=0.01, momentum=0.0, max_col_norm: float | None = None,
                 max_kernel_norm: float | None = None):
        super().__init__(params, lr, max_col_norm, max_kernel_norm)
        self.momentum = _hyperparameter(momentum, "momentum", "SGD", low=0, high=1, open_high=True)

    def _update(self, i, p, g):
        lr, mu = self.value(self.lr), self.value(self.momentum)
        scaled = get_array_module(g).multiply(g, lr, out=self._buffer("scratch", i))
        if mu == 0 and i not in self.state["velocity"]:  # plain SGD needs no velocity buffer
            p -= scaled
            return
        v = self._buffer("velocity", i)
        v *= mu
        v -= scaled
        p += v


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1), with t the step number starting at 1:

        m ← β₁m + (1−β₁)g,   v ← β₂v + (1−β₂)g²,
        θ ← θ − η · m̂ / (√v̂ + ε),   m̂ = m/(1−β₁ᵗ),  v̂ = v/(1−β₂ᵗ).
    """

    buffers = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 max_col_norm: float | None = None, max_kernel_norm: float | None = None):
        super().__init__(params, lr, max_col_norm, max_kernel_norm)
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise InvalidArgument(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(validate.probability(b, f"betas[{k}]", "Adam") for k, b in enumerate(betas))
        self.eps = validate.number(eps, "eps", "Adam", low=0, open_low=True)

    def config(self) -> dict:
        return {**super().config(), "betas": list(self.betas), "eps": self.eps}

    def _update(self, i, p, g):
        (b1, b2), t = self.betas, self.steps + 1
        xp, m, v, tmp = get_array_module(g), self._buffer("m", i), self._buffer("v", i), self._buffer("scratch", i)
        m *= b1
        m += xp.multiply(g, 1 - b1, out=tmp)
        v *= b2
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        # √v̂ + ε = √v / √(1−β₂ᵗ) + ε; bias corrections are Python floats: float32 stays float32.
        xp.sqrt(v, out=tmp)
        tmp *= 1 / math.sqrt(1 - b2 ** t)
        tmp += self.eps
        xp.divide(m, tmp, out=tmp)
        tmp *= self.value(self.lr) / (1 - b1 ** t)
        p -= tmp
