"""Which array library holds the numbers: NumPy on the host, CuPy on a GPU.

minigrad never asks "are we on the GPU?" globally.  Every op looks at the arrays it
was handed (``get_array_module(*arrays)``) and uses that module's functions, so the
same code runs on ``numpy.ndarray`` and ``cupy.ndarray``.  Mixing the two is a bug
(an implicit device transfer, or a crash deep inside CuPy), so it is refused here
with a TypeError that names both arrays.

There is no GPU in CI.  To still catch host/device mistakes there, this module has a
*strict device double*: ``StrictArray`` is an ``ndarray`` subclass that, like CuPy,
refuses to meet a plain NumPy array in an operation, and ``strict`` is the module that
creates such arrays (``strict.zeros``, ``strict.asarray`` ...), playing CuPy's role.
``to_device(x, "strict")`` moves an array onto it.  The whole op suite runs on it.

CuPy is imported lazily: ``import minigrad`` imports NumPy only.
"""
from __future__ import annotations

import ctypes
import os

import sys
import types

import numpy as np

DEVICES = ("cpu", "cuda", "strict")


class StrictArray(np.ndarray):
    """A NumPy array that pretends to live on another device.

    Any ufunc or array function that mixes it with a plain ``ndarray`` (0-d arrays
    and Python/NumPy scalars excepted, as in CuPy) raises TypeError; results of
    operations on StrictArrays stay StrictArrays.
    """

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_mixing(ufunc.__name__, inputs + tuple(kwargs.get("out", ())))
        inputs = tuple(i.view(np.ndarray) if isinstance(i, StrictArray) else i for i in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, StrictArray) else o
                                  for o in kwargs["out"])
        result = getattr(ufunc, method)(*inputs, **kwargs)
        return _rewrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        _refuse_mixing(func.__name__, _flatten(args) + _flatten(tuple(kwargs.values())))
        args = _unwrap(args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return _rewrap(func(*args, **kwargs))


def _flatten(items):
    out = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.extend(_flatten(item))
        else:
            out.append(item)
    return tuple(out)


def _unwrap(obj):
    if isinstance(obj, StrictArray):
        return obj.view(np.ndarray)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o) for o in obj)
    return obj


def _rewrap(result):
    if isinstance(result, np.generic):  # a reduction's scalar: CuPy gives a 0-d device array
        result = np.asarray(result)
    if isinstance(result, np.ndarray) and not isinstance(result, StrictArray):
        return result.view(StrictArray)
    if isinstance(result, tuple):
        return tuple(_rewrap(r) for r in result)
    return result


def _refuse_mixing(name, items):
    hosts = [i for i in items if type(i) is np.ndarray and i.ndim > 0]
    if hosts:
        raise TypeError(
            f"{name}: a NumPy array of shape {hosts[0].shape} met a strict-device array; "
            "move it with minigrad.to_device(x, 'strict') first (CuPy would refuse this too)")


def _make_strict_module():
    """A module over NumPy whose creation functions return StrictArrays."""
    ns = types.ModuleType("minigrad.backend.strict")
    for name in dir(np):
        if not name.startswith("_"):
            setattr(ns, name, getattr(np, name))
    creators = ("zeros", "ones", "empty", "full", "arange", "eye", "zeros_like", "ones_like",
                "empty_like", "full_like", "asarray", "array", "ascontiguousarray")
    for name in creators:
        setattr(ns, name, _strict_creator(getattr(np, name)))
    ns.__name__ = "minigrad.backend.strict"
    return ns


def _strict_creator(fn):
    def create(*args, **kwargs):
        return _rewrap(np.asarray(fn(*_unwrap(args), **kwargs)))
    create.__name__ = fn.__name__
    return create


strict = _make_strict_module()


def _cupy():
    """The cupy module if it has already been imported (never imports it)."""
    return sys.modules.get("cupy")


def device_of(a) -> str:
    """'cpu', 'cuda' or 'strict' for an array (anything else counts as host data)."""
    if isinstance(a, StrictArray):
        return "strict"
    cp = _cupy()
    if cp is not None and isinstance(a, cp.ndarray):
        return "cuda"
    return "cpu"


def get_array_module(*arrays):
    """numpy, cupy or the strict double: the module that owns ``arrays``.

    Scalars and 0-d NumPy arrays go with anything.  A NumPy array of rank >= 1 next
    to a device array raises TypeError naming both.
    """
    for a in arrays:  # the common case, all host arrays, decided at once (a loop: no generator frame)
        if type(a) is not np.ndarray:
            break
    else:
        return np
    device, owner = "cpu", None
    for a in arrays:
        if isinstance(a, (int, float, bool, np.generic)) or a is None:
            continue
        d = device_of(a)
        if d == "cpu" and getattr(a, "ndim", 0) == 0:
            continue
        if owner is None or d == device:
            device, owner = d, (owner if owner is not None else a)
            continue
        raise TypeError(
            f"mixed arrays: a {_describe(owner)} met a {_describe(a)}; "
            "move both to one device with minigrad.to_device(x, device)")
    if device == "strict":
        return strict
    if device == "cuda":
        return _cupy()
    return np


def _describe(a) -> str:
    kind = {"cpu": "NumPy array", "cuda": "CuPy array", "strict": "strict-device array"}[device_of(a)]
    return f"{kind} of shape {tuple(getattr(a, 'shape', ()))} and dtype {getattr(a, 'dtype', type(a))}"


def to_device(a, device: str):
    """Copy ``a`` to ``device`` ('cpu', 'cuda' or 'strict'); no copy if already there."""
    if device not in DEVICES:
        raise ValueError(f"to_device: device must be one of {DEVICES}, got {device!r}")
    if device_of(a) == device:
        return a
    host = as_numpy(a)
    if device == "cpu":
        return host
    if device == "strict":
        return np.asarray(host).view(StrictArray)
    try:
        import cupy
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise RuntimeError("to_device(..., 'cuda') needs CuPy: pip install 'minigrad[cuda]'") from e
    return cupy.asarray(host)


def as_numpy(a) -> np.ndarray:
    """The value as a plain NumPy array on the host (a copy from the GPU if needed)."""
    if isinstance(a, StrictArray):
        return a.view(np.ndarray)
    cp = _cupy()
    if cp is not None and isinstance(a, cp.ndarray):
        return cp.asnumpy(a)
    return np.asarray(a)


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU (imports CuPy: call only when asked)."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory for reuse instead of giving it back to the system.

    A training step allocates and frees the same few MB-sized arrays every step.  With glibc's
    default (dynamic) thresholds those are unmapped or trimmed off the heap when freed, so the next
    step faults the same pages in again: on the Maxout MLP's adversarial and double-backprop steps,
    4,400–7,800 page faults (17–30 MB) per step, +45–50% step time with one thread, +65–85%
    with two.
    Same effect as MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 in the
    environment; process-wide, so it is never done on import: ``train.fit`` and the commands call it,
    where the user has asked for heavy work.  Off glibc (or with MINIGRAD_SYSTEM_MALLOC=1) it does nothing.
    Returns True when the settings were applied."""
    if os.environ.get("MINIGRAD_SYSTEM_MALLOC") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**30))


def scatter_add(xp, target, index, values):
    """target[index] += values with repeated indices accumulated (np.add.at / cupyx)."""
    if xp is np or xp is strict:
        np.add.at(target, index, values)
    else:  # pragma: no cover - needs a GPU
        import cupyx
        cupyx.scatter_add(target, index, values)
    return target
