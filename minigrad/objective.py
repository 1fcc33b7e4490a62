"""What a training objective is, and how objectives compose (the base of the family).

An ``Objective`` is a callable ``objective(model, x, y) -> loss Tensor`` whose gradient with
respect to the parameters is the training direction.  ``A + B`` is their ``Combined`` sum
(losses add, so gradients add), ``c * A`` is ``Scaled`` by a constant c ≥ 0, and ``sum([...])``
works.  ``frozen(model, x, y)`` returns the objective with every stop-gradient quantity held
at the current θ (``Frozen``), which is what a gradient check differentiates.

The members themselves live in ``terms.py``, ``penalties.py`` (with ``curvature.py``, the successors'
penalties) and ``adversarial.py`` (by how each is computed), behind the one front door
``regularizers.py``; their canonical names and the table that builds each one from a few strengths
live in ``members.py``.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from . import functional as F
from . import validate
from .tensor import Op, Tensor, as_tensor, enable_grad, grad, no_grad, unwrap
from .validate import fmt


def child_seed(seed, purpose: str):
    """An independent stream for ``purpose`` derived from ``seed`` (an int, or a Generator used as is), so
    a decoder, a noise source or a random projection seeded like the model does not replay the model's own
    draws."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.SeedSequence([int(seed), sum(map(ord, purpose))])


def data_loss(model, x, y) -> Tensor:
    """L(x) = mean cross-entropy.  x: a raw array (a constant), or a Tensor, whose graph is kept
    (so ``loss_at`` can be differentiated through a perturbation that depends on θ, science page §4 claim 7)."""
    return F.cross_entropy(model(as_tensor(x)), y)


class Objective:
    """``objective(model, x, y) -> loss``; its θ-gradient is the training direction.

    ``name`` is the member's canonical name (the one of compare, the CLI, tables, plots and the
    benchmark: ``members.MEMBERS``); ``repr`` adds its strengths, e.g. ``adv-pinf(eps=0.1)``."""

    includes_data_loss = False  # True: a full objective, trainable alone
    name = "objective"

    def settings(self) -> str:
        """The strengths shown in the repr, 'eps=0.1' ('' for none)."""
        return ""

    def __repr__(self):
        s = self.settings()
        return f"{self.name}({s})" if s else self.name

    def __call__(self, model, x, y) -> Tensor:
        raise NotImplementedError

    def parameters(self) -> list:
        """Trainable parameters owned by the objective (give them to the optimizer too)."""
        return []

    def frozen(self, model, x, y) -> "Objective":
        """This objective with its stop-gradient quantities fixed at the current θ."""
        return self

    def start_epoch(self, epoch: int, history: list):
        """The hook ``train.fit`` calls before each epoch (1, 2, …), with the records of the epochs done
        (those of a resumed run's checkpoint included).  An objective whose weights follow a schedule
        (``warmup.WarmUp``) sets them here from these two alone, so a resumed run is bit for bit the run
        that never stopped; it returns {name: number} to record in the epoch's history as
        ``record["schedule"]``, or None (a fixed objective: nothing to do, nothing recorded)."""
        return None

    def __add__(self, other):
        if isinstance(other, numbers.Number) and other == 0:  # so sum([...]) works
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return Combined(self, other)

    def __radd__(self, other):
        return self.__add__(other)

    def __mul__(self, weight):
        if not isinstance(weight, numbers.Real):
            return NotImplemented
        return Scaled(weight, self)

    __rmul__ = __mul__


class Combined(Objective):
    """Σₖ objectiveₖ: losses add, so parameter gradients add.

    ``name`` joins the members' names with ' + ' unless a name is given (the registry names
    plain + l1 'l1', for instance)."""

    def __init__(self, *members, name: str | None = None):
        flat = []
        for m in members:
            if not isinstance(m, Objective):
                raise TypeError(f"Combined: members must be Objectives, got {m!r}")
            flat.extend(m.members if isinstance(m, Combined) else [m])
        full = [m.name for m in flat if m.includes_data_loss and not isinstance(m, Scaled)]
        if len(full) > 1:  # e.g. plain + gp-q1: the data loss counted twice
            warnings.warn(f"Combined: {' and '.join(full)} each include the data loss, so it is counted "
                          f"{len(full)} times; add terms (WeightDecay, Multitask, VirtualAdversarial) to a "
                          "full objective, or scale the members deliberately (c * member)", stacklevel=3)
        self.members, self._name = flat, name

    includes_data_loss = property(lambda self: any(m.includes_data_loss for m in self.members))
    name = property(lambda self: self._name or " + ".join(m.name for m in self.members))

    def __repr__(self):
        inner = " + ".join(map(repr, self.members))
        return f"{self._name}: {inner}" if self._name else inner

    def __call__(self, model, x, y):
        x = unwrap(x)
        total = self.members[0](model, x, y)
        for m in self.members[1:]:
            total = total + m(model, x, y)
        return total

    def parameters(self):
        seen, out = set(), []
        for p in (p for m in self.members for p in m.parameters()):
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def frozen(self, model, x, y):
        return Combined(*(m.frozen(model, x, y) for m in self.members), name=self._name)

    def start_epoch(self, epoch, history):
        notes = {}
        for m in self.members:
            notes.update(m.start_epoch(epoch, history) or {})
        return notes or None


class Scaled(Objective):
    """c · objective, for a constant weight c >= 0."""

    def __init__(self, weight, member: Objective):
        self.weight = validate.number(weight, "weight", "Scaled", low=0)
        self.member = member

    includes_data_loss = property(lambda self: self.member.includes_data_loss)

    def _show(self, inner: str) -> str:
        return f"{fmt(self.weight)}*" + (f"({inner})" if isinstance(self.member, Combined) else inner)

    name = property(lambda self: self._show(self.member.name))

    def __repr__(self):
        return self._show(repr(self.member))

    def __call__(self, model, x, y):
        return self.member(model, x, y) * self.weight

    def parameters(self):
        return self.member.parameters()

    def frozen(self, model, x, y):
        return Scaled(self.weight, self.member.frozen(model, x, y))

    def start_epoch(self, epoch, history):
        return self.member.start_epoch(epoch, history)


class Frozen(Objective):
    """``member.loss_at(model, x, y, **held)``: the member with ``held`` fixed (see ``frozen``)."""

    def __init__(self, member, **held):
        self.member, self.held = member, held

    includes_data_loss = property(lambda self: self.member.includes_data_loss)
    name = property(lambda self: f"frozen({self.member.name})")

    def __call__(self, model, x, y):
        return self.member.loss_at(model, x, y, **self.held)

    def parameters(self):
        return self.member.parameters()


class HeldGradient(Op):
    """A loss term whose value and parameter gradient were computed already: y = ``value``,
    ∂y/∂θₖ = ``grads[k]`` (constants).

    A perturbed-point member takes g = ∇ₓL(x) and ∇θL(x) from *one* backward pass through the
    clean forward; this op hands that ∇θL(x) to the caller's backward pass, so the clean graph is
    not swept twice (17 matrix products per step for a two-layer Maxout net instead of 19).  Its
    backward is constant in θ, so asking for a second derivative is an error, never a silent 0."""

    differentiable = False

    def forward(self, *params):
        return self.value

    def backward(self, gy):
        # In every training step the held term is added straight into the loss being differentiated,
        # so gy is exactly 1: hand the gradients on without a pass over each parameter-sized array
        # (checked on host arrays only; a device array would cost a synchronisation to look at).
        if isinstance(gy.data, np.ndarray) and gy.data.size == 1 and gy.data.item() == 1:
            return tuple(self.grads)
        return tuple(None if g is None else gy * g for g in self.grads)


def clean_pass(model, x, y, weight):
    """(weight·L(x) as a ``HeldGradient`` term, g = ∇ₓ of the summed loss) from one forward and one
    backward pass: the fast path of the perturbed-point members, beside the plain rule
    ``perturbations.loss_and_input_gradient`` (tests/test_regularizers.py checks that they agree).

    The backward is seeded with weight/B, the weight the clean loss has in the objective, so ∇θ comes
    out exactly as a backward through weight·(ΣL)/B would give it; g = that sweep's input gradient
    divided by weight/B (exact when weight/B is a power of two)."""
    xt = Tensor(x, requires_grad=True)
    params = [q for q in model.parameters() if q.requires_grad]
    with enable_grad():
        summed = F.cross_entropy(model(xt), y, reduction="sum")
        one = xt.xp.ones((), dtype=summed.dtype)
        seed = Tensor((one * weight) / xt.xp.asarray(len(y), dtype=summed.dtype))
        g, *grads = grad(summed, [xt, *params], grad_outputs=seed, allow_unused=True)
    with no_grad():
        value = (summed / len(y)) * weight
        g = g / seed
    if not params:
        return value, g
    return HeldGradient.apply(*params, value=value.data, grads=grads), g
