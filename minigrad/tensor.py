"""The engine: Tensor, the recorded graph, and reverse-mode differentiation.

A ``Tensor`` wraps a raw array (NumPy, CuPy, or the strict device double).  When an op
is applied to tensors that require gradients, the result remembers the op that made
it (``tensor._op``), and the op remembers its input tensors: that chain *is* the graph.

``grad(outputs, inputs)`` walks the graph backwards.  Each op's ``backward`` returns
the gradients of its inputs **computed with minigrad ops on Tensors** (see ops.py),
so the backward pass is itself an ordinary computation.  With ``create_graph=True``
it is recorded like any forward pass and can be differentiated again: that is all
double backprop is.  With ``create_graph=False`` the very same code runs under
``no_grad()``, records nothing, and returns plain constant tensors.

This file knows no op by name; the arithmetic operators of Tensor are attached in
ops.py, next to the ops that implement them.
"""
from __future__ import annotations

import contextlib
import operator
import threading

import numpy as np

from . import backend
from .errors import InvalidDType

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Within this block ops record nothing: results are constants."""
    previous = is_grad_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous


@contextlib.contextmanager
def enable_grad(enabled: bool = True):
    previous = is_grad_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


class Tensor:
    """An array plus what is needed to differentiate through it.

    ``Tensor(data, requires_grad=False, dtype=None)``: Python floats become float32
    (minigrad trains in float32 by default); arrays keep their dtype exactly.

    The data must be real numbers: floating, integer or boolean (a constant mask, as comparisons
    give).  Strings, None, Python objects and complex numbers are refused with ``InvalidDType``,
    before and after ``dtype`` (``Tensor(["1"], dtype=float)`` does not parse text); only floating
    tensors can require grad.
    """

    __slots__ = ("data", "grad", "requires_grad", "_op", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if type(data) is np.ndarray and dtype is None:  # the common case: an op's result
            pass
        elif not hasattr(data, "dtype") or not hasattr(data, "shape"):
            try:
                data = np.asarray(data)
            except (ValueError, TypeError) as e:  # ragged nesting, [1, [2]]
                raise InvalidDType(f"Tensor: data must be a rectangular array of real numbers ({e})") from None
            if dtype is None and data.dtype.kind == "f":  # Python floats: float32 unless asked otherwise
                with np.errstate(over="ignore"):
                    small = data.astype(np.float32)
                if not np.array_equal(np.isfinite(small), np.isfinite(data)):  # 1e300 would become inf
                    raise InvalidDType(f"Tensor: {float(data[~np.isfinite(small) & np.isfinite(data)].flat[0])!r} is beyond "
                                       "float32's range (Python floats become float32); pass dtype=np.float64")
                data = small
        elif isinstance(data, np.generic):
            data = np.asarray(data)
        if data.dtype.kind not in _REAL_KINDS:
            raise _not_real(data)
        if dtype is not None and data.dtype != dtype:
            data = data.astype(dtype)
            if data.dtype.kind not in _REAL_KINDS:
                raise _not_real(data)
        if requires_grad and data.dtype.kind != "f":
            raise InvalidDType(f"Tensor: only floating tensors can require grad, got dtype {data.dtype}")
        self.data = data
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._op = None

    # -- plain properties -------------------------------------------------
    # attrgetter, not a lambda: read on every op, and a C getter costs no Python frame
    shape = property(operator.attrgetter("data.shape"))
    dtype = property(operator.attrgetter("data.dtype"))
    ndim = property(operator.attrgetter("data.ndim"))
    size = property(operator.attrgetter("data.size"))
    device = property(lambda self: backend.device_of(self.data))

    @property
    def xp(self):
        """The array module (numpy / cupy / strict double) that owns this tensor."""
        return backend.get_array_module(self.data)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.as_numpy(self.data)!r}{flag})"

    def item(self) -> float:
        if self.size != 1:
            raise ValueError(f"item: only a one-element tensor has an item, got shape {self.shape}")
        return backend.as_numpy(self.data).reshape(()).item()

    def numpy(self) -> np.ndarray:
        return backend.as_numpy(self.data)

    def detach(self) -> "Tensor":
        """The same values as a constant: no graph, no gradient flows through it."""
        return Tensor(self.data)

    def to(self, device: str) -> "Tensor":
        """A copy on ``device`` ('cpu', 'cuda', 'strict'); a leaf, like its source."""
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if self._op is not None and not flag:
            raise RuntimeError("requires_grad_: cannot turn off requires_grad on a non-leaf; use detach()")
        self.requires_grad = flag
        return self

    def backward(self, grad_output=None, create_graph: bool = False):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
        leaves = [t for t in _topological_order([self]) if t._op is None and t.requires_grad]
        grads = grad([self], leaves, None if grad_output is None else [grad_output],
                     create_graph=create_graph, allow_unused=True)
        for leaf, g in zip(leaves, grads):
            if g is not None:
                leaf.grad = g if leaf.grad is None else leaf.grad + g


_REAL_KINDS = "fiub"  # floating, signed and unsigned integer, boolean


def _not_real(data) -> InvalidDType:
    what = {"c": "complex numbers", "O": "Python objects (None, an int beyond 64 bits, a mixed list)",
            "U": "strings", "S": "bytes"}.get(data.dtype.kind, f"dtype {data.dtype}")
    return InvalidDType(f"Tensor: data must be real numbers (floating, integer or boolean), got {what}")


def unwrap(x):
    """The raw array inside a Tensor, or ``x`` itself: where data enters from outside the graph."""
    return x.data if isinstance(x, Tensor) else x


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Tensor as is; a raw array wrapped; a Python number as an array of ``like``'s dtype
    on ``like``'s device (so ``x * 2.0`` never promotes float32 to float64)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, np.generic)) and not isinstance(x, bool):
        # One rule for a Python number meeting a Tensor: it takes the Tensor's dtype, as long as
        # that changes nothing but float rounding.  A non-integer meeting an integer Tensor would
        # be truncated (2.5 -> 2), so it is refused; NumPy would promote instead, which breaks the
        # "no silent casts" rule in the other direction.
        if like.dtype.kind in "iub" and not (float(x).is_integer() and np.can_cast(np.min_scalar_type(int(x)),
                                                                                   like.dtype)):
            raise InvalidDType(f"{x!r} cannot meet a {like.dtype} Tensor without changing its value; "
                            "convert the Tensor to a float dtype first")
        return Tensor(like.xp.asarray(x, dtype=like.dtype))
    return Tensor(x)


_new = object.__new__


class Op:
    """Base of every primitive op.  A subclass defines

    - ``forward(self, *arrays) -> array`` on raw arrays, and may keep on ``self``
      whatever backward needs (constant masks as raw arrays);
    - ``backward(self, grad_output: Tensor) -> tuple`` of input gradients (Tensor or
      None), computed **only with minigrad ops**.  ``self.inputs`` are the input
      Tensors and ``self.output()`` rebuilds the output Tensor, so backward can
      differentiate through either; ``self.needs_grad[i]`` says which are wanted.

    ``Op.apply(*tensors, **params)`` runs forward and, when recording, links the graph.
    """

    inputs: tuple = ()
    needs_grad: tuple = ()
    differentiable = True  # False: backward exists but is not itself differentiable
    fresh_grads = False  # True: unrecorded, backward returns gradients in new arrays that nothing else holds

    def __init__(self, **params):
        self.__dict__.update(params)

    @classmethod
    def apply(cls, *inputs, **params) -> Tensor:
        # The hot path of every op: nothing here that an op on host arrays does not need.
        if cls.__init__ is Op.__init__:  # Op.__init__'s work without the call: the new kwargs dict is the op's
            op = _new(cls)
            op.__dict__ = params
        else:
            op = cls(**params)
        # One loop, not four comprehensions: in CPython 3.11 each comprehension is a function call.
        tensors, arrays, needs, host, wanted = [], [], [], True, False
        for t in inputs:
            if type(t) is not Tensor:
                t = as_tensor(t)
            tensors.append(t)
            arrays.append(t.data)
            needs.append(t.requires_grad)
            wanted = wanted or t.requires_grad
            host = host and type(t.data) is np.ndarray
        xp = np if host else backend.get_array_module(*arrays)  # refuses NumPy meeting CuPy, naming both
        result = op.forward(*arrays)
        if type(result) is not np.ndarray and isinstance(result, np.generic):
            result = xp.asarray(result)  # NumPy's scalars (x[0], a full reduction): keep the device
        if type(result) is np.ndarray and result.dtype.kind in _REAL_KINDS:
            out = _new(Tensor)  # what Tensor(result) makes, without its checks for foreign data
            out.data, out.grad, out.requires_grad, out._op = result, None, False, None
        else:
            out = Tensor(result)
        if wanted and getattr(_state, "enabled", True):
            op.inputs, op.needs_grad, op._out = tuple(tensors), tuple(needs), out.data
            out.requires_grad, out._op = True, op
        return out

    def output(self) -> Tensor:
        """The op's output as a graph node (made anew, so the op holds no cycle)."""
        t = Tensor(self._out, requires_grad=True)
        t._op = self
        return t

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output: Tensor):
        raise NotImplementedError


def _topological_order(outputs):
    """Tensors reachable from ``outputs`` through ops, inputs before users.

    Iterative depth-first search: deep graphs (long chains) hit no recursion limit.
    """
    order, seen = [], set()
    stack = [(t, False) for t in outputs if t.requires_grad]
    pop, push = stack.pop, stack.append
    while stack:
        t, expanded = pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        push((t, True))
        if t._op is not None:
            stack.extend([(i, False) for i in t._op.inputs if i.requires_grad and id(i) not in seen])
    return order


def grad(outputs, inputs, grad_outputs=None, create_graph: bool = False,
         allow_unused: bool = False):
    """Gradients of ``sum_k <grad_outputs[k], outputs[k]>`` with respect to each input.

    ``outputs``: a Tensor or a sequence of them; ``grad_outputs`` the matching upstream
    gradients (omitted only for scalar outputs, where it is 1).  Returns a tuple with
    one Tensor per input (None for an unused input when ``allow_unused``).

    ``create_graph=True`` records the backward pass so the result can be differentiated
    again (double backprop); otherwise results are constants.
    """
    outputs, inputs, grad_outputs = _check_arguments(outputs, inputs, grad_outputs)
    seeds = [_seed(out, g, k) for k, (out, g) in enumerate(zip(outputs, grad_outputs))]
    with_graph = create_graph and is_grad_enabled()
    grads = _backpropagate(outputs, seeds, inputs, with_graph)
    result = []
    for i, t in enumerate(inputs):
        g = grads.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {t.shape}) does not reach the outputs; "
                "pass allow_unused=True to get None for it")
        if g is not None and not with_graph:
            g = Tensor(g.data)  # a constant: the caller may not differentiate it again
        result.append(g)
    return tuple(result)


def _check_arguments(outputs, inputs, grad_outputs):
    """grad's arguments as lists, after checking that there is a graph from inputs to outputs."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad; create it with requires_grad=True")
    for k, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"grad: output {k} does not require grad, so there is no graph to differentiate: "
                "it depends on no input with requires_grad=True, or it was computed under no_grad() "
                "or by a backward pass without create_graph=True")
    return outputs, inputs, grad_outputs


def _backpropagate(outputs, seeds, inputs, with_graph: bool) -> dict:
    """The reverse sweep: {id(tensor): gradient} for every tensor on a path to ``inputs``.

    Each op's backward runs once, in reverse topological order, after all its users have
    added their share to its output's gradient; with ``with_graph`` the sweep is recorded.  Unrecorded,
    shares are summed in place into a gradient array only the sweep holds (``owned``: returned by an op
    with ``fresh_grads``, or a sum the sweep made) until it is handed to a backward, which may pass it on."""
    order = _topological_order(outputs)
    wanted = _on_a_path_to(order, inputs)
    grads: dict[int, Tensor] = {}
    owned = None if with_graph else {}  # id -> Tensor (held, so an id is never reused meanwhile)
    for out, seed in zip(outputs, seeds):
        _accumulate(grads, out, seed, owned, False)  # the caller's seeds are never written to
    with enable_grad(with_graph):
        for t in reversed(order):
            op = t._op
            if op is None or id(t) not in wanted:
                continue
            g = grads.get(id(t))
            if g is None:
                continue
            if with_graph and not op.differentiable:
                raise RuntimeError(f"{type(op).__name__} cannot be differentiated twice")
            inputs = op.inputs
            op.needs_grad = tuple(map(wanted.__contains__, map(id, inputs)))  # wanted ones all require grad
            fresh = owned is not None and op.fresh_grads
            if owned:
                owned.pop(id(g), None)  # handed on: from here it may be another tensor's gradient too
            for x, gx in zip(inputs, op.backward(g)):
                if gx is not None and id(x) in wanted:
                    if gx.data.shape != x.data.shape or gx.data.dtype != x.data.dtype:
                        _wrong_grad(op, x, gx)
                    _accumulate(grads, x, gx, owned, fresh)
    return grads


def _seed(out: Tensor, g, k: int) -> Tensor:
    if g is None:
        if out.size != 1:
            raise RuntimeError(
                f"grad: output {k} has shape {out.shape}; a non-scalar output needs grad_outputs "
                "(the upstream gradient, same shape as the output)")
        return Tensor(out.xp.ones(out.shape, dtype=out.dtype))
    g = as_tensor(g)
    if g.shape != out.shape or g.dtype != out.dtype:
        raise ValueError(f"grad: grad_outputs[{k}] has shape {g.shape} and dtype {g.dtype}; the output "
                         f"has shape {out.shape} and dtype {out.dtype}: they must match")
    return g


def _on_a_path_to(order, inputs) -> set:
    """ids of the tensors whose gradient leads to some requested input (others are skipped)."""
    wanted = {id(t) for t in inputs}
    for t in order:  # inputs come before users
        if t._op is not None:
            for i in t._op.inputs:
                if id(i) in wanted:
                    wanted.add(id(t))
                    break
    return wanted


def _wrong_grad(op, x: Tensor, gx: Tensor):
    raise RuntimeError(f"{type(op).__name__}.backward returned a gradient of shape {gx.shape} dtype {gx.dtype} "
                       f"for an input of shape {x.shape} dtype {x.dtype}")


def _accumulate(grads: dict, t: Tensor, g: Tensor, owned, fresh: bool):
    # Fan-out: a tensor used twice receives the sum of both gradients.  Summed in place into an owned
    # host array (see _backpropagate): no new array, and the same bits, as IEEE addition commutes.
    previous = grads.get(id(t))
    if previous is not None and owned is not None and type(g.data) is type(previous.data) is np.ndarray:
        if id(previous) in owned:
            np.add(previous.data, g.data, out=previous.data)
            return
        if fresh:
            np.add(g.data, previous.data, out=g.data)
            previous = None
    if previous is not None:
        g, fresh = previous + g, True  # a sum the sweep made
    grads[id(t)] = g
    if fresh and owned is not None and type(g.data) is np.ndarray:
        owned[id(g)] = g
