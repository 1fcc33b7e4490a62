"""Differential operators: each a few lines on top of the engine's ``grad``.

For f: ℝⁿ → ℝᵐ with Jacobian J = ∂f/∂x (m × n) at x, and, for scalar f, Hessian H = ∇²f:

=================  ==========================  ==================================================
operator           computes                    how, and what it costs (one forward = 1 unit)
=================  ==========================  ==================================================
``vjp``            uᵀJ        (n numbers)      one backward pass: ~2–3 units
``jvp``            J v        (m numbers)      the double-VJP trick: two backward passes, ~4–6 units
``hvp``            H v        (n numbers)      double backprop: ∇ₓ(∇ₓf · v), ~4–6 units
``jacobian``       J          (m × n)          m VJPs (rows) or n JVPs (columns)
``hessian``        H          (n × n)          n HVPs on one recorded gradient
``grad_fn``        x ↦ ∇f(x)                   a function, as in HIPS autograd / torch.func
=================  ==========================  ==================================================

Every operator takes ``f`` (Tensors in, a Tensor out) and ``inputs`` (one Tensor or array, or a
tuple of them); one input gives one result, a tuple gives a tuple.  An input that already requires
grad is used as it is, so the results stay differentiable with respect to it when
``create_graph=True``; anything else becomes a fresh leaf.  Check derivatives in float64.
"""
from __future__ import annotations

import numpy as np

from . import validate
from .backend import to_device
from .errors import InvalidArgument
from .tensor import Tensor, enable_grad, grad, unwrap

__all__ = ["vjp", "jvp", "hvp", "jacobian", "hessian", "grad_fn"]


def _leaves(inputs):
    single = not isinstance(inputs, (tuple, list))
    xs = (inputs,) if single else tuple(inputs)
    xs = tuple(x if isinstance(x, Tensor) and x.requires_grad else
               Tensor(unwrap(x), requires_grad=True) for x in xs)
    return xs, single


def _match(vectors, xs, single, who, what):
    vs = (vectors,) if single else tuple(vectors)
    if len(vs) != len(xs):
        raise ValueError(f"{who}: {len(xs)} {what} but {len(vs)} vectors")
    vs = tuple(v if isinstance(v, Tensor) else Tensor(v, dtype=x.dtype) for v, x in zip(vs, xs))
    for k, (v, x) in enumerate(zip(vs, xs)):
        if v.shape != x.shape:
            raise ValueError(f"{who}: vector {k} has shape {v.shape}, expected {x.shape} (its {what[:-1]}'s)")
    return vs


def _fill_none(grads, xs):
    # an input f does not use has derivative 0 (a zero, never a silent None)
    return tuple(Tensor(x.xp.zeros(x.shape, dtype=x.dtype)) if g is None else g for g, x in zip(grads, xs))


def _result(out, create_graph):
    return out if create_graph else out.detach()


def _call(f, xs):
    with enable_grad():
        out = f(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"f must return one Tensor, got {type(out).__name__}")
    return out


def vjp(f, inputs, v, create_graph: bool = False):
    """``(f(x), uᵀJ)``: the vector-Jacobian product, uᵀ∂f/∂x, with ``v`` = u shaped like f(x).

    One reverse pass; this is what ``grad`` computes with ``grad_outputs=u``.
    """
    xs, single = _leaves(inputs)
    out = _call(f, xs)
    (u,) = _match(v, (out,), True, "vjp", "outputs")
    gs = [None] * len(xs)
    if out.requires_grad:
        gs = grad(out, xs, grad_outputs=u, create_graph=create_graph, allow_unused=True)
    gs = _fill_none(gs, xs)
    return _result(out, create_graph), gs[0] if single else gs


def jvp(f, inputs, v, create_graph: bool = False):
    r"""``(f(x), J v)``: the Jacobian-vector product, by the double-VJP trick.

    For a dummy cotangent u (shaped like f(x)), g(u) = Jᵀu is *linear* in u and its own
    vector-Jacobian product with v is

        ∂(g(u) · v)/∂u = J v,

    .. math::

       \frac{\partial}{\partial u} \bigl(g(u) \cdot v\bigr) = J v,

    whatever u is (zero here).  So: record the backward pass g(u) with ``create_graph=True``,
    then differentiate it with respect to u.  Cost: the forward, a recorded backward and a
    second backward, about 4–6 forward passes' worth, with the backward graph held in
    memory; true forward mode (dual numbers) would need about 2–3 and no tape.  The trick
    needs every op on the path to be twice differentiable.
    """
    xs, single = _leaves(inputs)
    vs = _match(v, xs, single, "jvp", "inputs")
    out = _call(f, xs)
    if not out.requires_grad:
        return out, Tensor(out.xp.zeros(out.shape, dtype=out.dtype))
    u = Tensor(out.xp.zeros(out.shape, dtype=out.dtype), requires_grad=True)
    g = grad(out, xs, grad_outputs=u, create_graph=True, allow_unused=True)
    used = [(gi, vi) for gi, vi in zip(g, vs) if gi is not None and gi.requires_grad]
    if not used:  # f is constant in x along every used path: J v = 0
        return _result(out, create_graph), Tensor(out.xp.zeros(out.shape, dtype=out.dtype))
    (jv,) = grad([gi for gi, _ in used], u, grad_outputs=[vi for _, vi in used],
                 create_graph=create_graph, allow_unused=True)
    return _result(out, create_graph), _fill_none([jv], [out])[0]


def hvp(f, inputs, v, create_graph: bool = False):
    r"""``(f(x), H v)`` for scalar f: the Hessian-vector product by double backprop,

        H v = ∇ₓ(∇ₓf(x) · v),

    .. math::

       H v = \nabla_x \bigl(\nabla_x f(x) \cdot v\bigr),

    one backward recorded with ``create_graph=True`` and one backward through it: a few
    forward passes' worth, never the n × n matrix.  With several inputs H is the joint
    Hessian and ``v`` a tuple; the result is H v split the same way.
    """
    xs, single = _leaves(inputs)
    vs = _match(v, xs, single, "hvp", "inputs")
    out = _scalar(_call(f, xs), "hvp")
    gs = [(g, vi) for g, vi in zip(grad(out, xs, create_graph=True, allow_unused=True), vs)
          if g is not None and g.requires_grad]
    if not gs:  # f is affine in x: H = 0
        hv = _fill_none([None] * len(xs), xs)
    else:
        hv = _fill_none(grad([g for g, _ in gs], xs, grad_outputs=[vi for _, vi in gs],
                             create_graph=create_graph, allow_unused=True), xs)
    return _result(out, create_graph), hv[0] if single else hv


def _scalar(out, who):
    if out.size != 1:
        raise ValueError(f"{who}: f must return a scalar (one element), got shape {out.shape}")
    return out


def _check_size(n, max_size, who, what):
    if n > max_size:
        raise ValueError(f"{who}: the dense {what} would take {n} passes (input/output size {n} > "
                         f"max_size={max_size}); use {'hvp' if who == 'hessian' else 'vjp/jvp'} "
                         "products instead, or raise max_size")


def _unit(t, i):
    e = t.xp.zeros(t.size, dtype=t.dtype)
    e[i] = 1
    return Tensor(e.reshape(t.shape))


def jacobian(f, inputs, by: str = "rows", max_size: int = 4096):
    """J = ∂f/∂x as a dense Tensor of shape ``f(x).shape + x.shape`` (a tuple for several inputs).

    ``by='rows'``: one VJP per output element eᵢᵀJ (m backward passes on one recorded forward);
    ``by='columns'``: one JVP per input element J eⱼ (n double-VJPs).  Choose the smaller of m
    and n.  For small problems only: refuses more than ``max_size`` passes.  Constant result.
    """
    if by not in ("rows", "columns"):
        raise InvalidArgument(f"jacobian: by must be 'rows' or 'columns', got {by!r}")
    validate.integer(max_size, "max_size", "jacobian", low=1)
    xs, single = _leaves(inputs)
    out = _call(f, xs)
    if by == "rows":
        _check_size(out.size, max_size, "jacobian", "Jacobian")
        if not out.requires_grad:
            rows = [_fill_none([None] * len(xs), xs) for _ in range(out.size)]
        else:
            rows = [_fill_none(grad(out, xs, grad_outputs=_unit(out, i), allow_unused=True), xs)
                    for i in range(out.size)]
        J = tuple(np.stack([r[k].numpy() for r in rows]).reshape(out.shape + x.shape) for k, x in enumerate(xs))
    else:  # columns
        J = []
        for k, x in enumerate(xs):
            _check_size(x.size, max_size, "jacobian", "Jacobian")
            cols = []
            for j in range(x.size):
                v = tuple(_unit(x, j) if i == k else Tensor(xi.xp.zeros(xi.shape, dtype=xi.dtype))
                          for i, xi in enumerate(xs))
                cols.append(jvp(f, xs, v)[1].numpy())
            J.append(np.moveaxis(np.stack(cols), 0, -1).reshape(out.shape + x.shape))
    J = tuple(Tensor(_to(xs[k], j)) for k, j in enumerate(J))
    return J[0] if single else J


def _to(x, array):
    return to_device(array, x.device)


def hessian(f, x, max_size: int = 2048):
    """H = ∇²ₓf for scalar f, dense, shape ``x.shape + x.shape``: column j is H eⱼ.

    The gradient g = ∇ₓf is recorded once (``create_graph=True``); then n = x.size backward
    passes through it give the columns (each an HVP, about the cost of 2–3 forwards).  Time
    O(n · cost(f)), memory O(n²): for small inputs (refuses n > ``max_size``).  Exact
    symmetry is not imposed; for a twice-differentiable f it holds to rounding.
    """
    validate.integer(max_size, "max_size", "hessian", low=1)
    (x,), _ = _leaves(x)
    _check_size(x.size, max_size, "hessian", "Hessian")
    out = _scalar(_call(f, (x,)), "hessian")
    (g,) = grad(out, x, create_graph=True, allow_unused=True)
    if g is None or not g.requires_grad:  # f is affine (or constant) in x
        return Tensor(x.xp.zeros(x.shape + x.shape, dtype=x.dtype))
    cols = [_fill_none(grad(g, x, grad_outputs=_unit(x, j), allow_unused=True), (x,))[0].numpy()
            for j in range(x.size)]
    H = np.moveaxis(np.stack(cols), 0, -1).reshape(x.shape + x.shape)
    return Tensor(_to(x, H))


def grad_fn(f, argnums=0):
    """The function ``(*args) -> ∂f/∂args[argnums]`` for scalar f (HIPS autograd's ``grad``,
    ``torch.func.grad``).  ``argnums`` an int gives one gradient, a tuple gives a tuple.

    Arguments that already require grad keep their graph and the result is recorded
    (``create_graph=True``), so ``grad_fn(grad_fn(f))`` is the second derivative of a scalar
    function; otherwise the result is a constant.
    """
    if not callable(f):
        raise InvalidArgument(f"grad_fn: f must be a function, got {f!r}")
    if isinstance(argnums, (tuple, list)):
        nums = tuple(validate.integer(k, "every entry of argnums", "grad_fn") for k in argnums)
        if not nums:
            raise InvalidArgument("grad_fn: argnums must not be empty")
    else:
        nums = (validate.integer(argnums, "argnums (an int or a tuple of ints)", "grad_fn"),)

    def gradient(*args):
        for k in nums:
            if not -len(args) <= k < len(args):
                raise IndexError(f"grad_fn: argnums {k} is out of range for {len(args)} arguments")
        args = list(args)
        nested = any(isinstance(args[k], Tensor) and args[k].requires_grad for k in nums)
        xs, _ = _leaves(tuple(args[k] for k in nums))
        for k, x in zip(nums, xs):
            args[k] = x
        out = _scalar(_call(f, args), "grad_fn")
        if not out.requires_grad:
            gs = _fill_none([None] * len(xs), xs)
        else:
            gs = _fill_none(grad(out, xs, create_graph=nested, allow_unused=True), xs)
        return gs if isinstance(argnums, (tuple, list)) else gs[0]

    gradient.__name__ = f"grad_of_{getattr(f, '__name__', 'f')}"
    gradient.__doc__ = f"Gradient of {getattr(f, '__name__', 'f')} with respect to argument(s) {argnums}."
    return gradient
