#!/usr/bin/env python
"""Time one SGD step of the Maxout MLP 784 → 240×5 → 240×5 → 10 in minigrad and PyTorch.

    python benchmarks/step_time.py                      # cpu, batch 128 and 1, all objectives
    python benchmarks/step_time.py --quick              # a smoke run: seconds, numbers meaningless
    python benchmarks/step_time.py --objectives plain,double-backprop --batch 128 --rounds 7 --steps 40

Members of the family (canonical names, minigrad/members.py), with the strengths
``STRENGTHS = Strengths(eps=0.1, beta_l1=0.01, beta_l2=0.1)``; L is the batch-mean cross-entropy:

    plain            L(x)
    adv-pinf         0.5·L(x) + 0.5·L(x + r),  r = ε·sign(g) held constant, ε = 0.1    (Goodfellow et al.)
    double-backprop  L + λ·meanᵢ‖gᵢ‖₂²,  λ = 0.1                                      (Drucker & LeCun)
    gp-q1            L + ε·meanᵢ‖gᵢ‖₁,   ε = 0.1: the q = 1 gradient-norm penalty, exact, by double backprop
    datagrad-l1-fd   DataGrad-L1 by the finite-difference perturbed-point update, α = 1, β = 0.01, φ = 0.1:
                     (α − β/φ)·L(x) + (β/φ)·L(x + φ·sign(g)) = 0.9·L(x) + 0.1·L(x + 0.1·sign(g))

gᵢ = ∇ₓᵢ Σⱼ Lⱼ is example i's input gradient, taken from the *summed* loss (PAPERS.md §1).  In adv-pinf and
datagrad-l1-fd one backward pass of the clean loss gives the parameter gradients *and* the input gradient
(17 matrix products per step, see README.md).

Two paths are timed for each member, in one process, interleaved:

* the **bare engine**: minigrad's objective (``members.member``), ``grad`` seeded with the learning rate
  and an in-place ``p -= g``, against the same in PyTorch (``torch.autograd.grad``, ``p.add_``), and the
  objective's matrix products alone (the GEMM ceiling);
* the **library path users run**: ``train.fit`` with the member and ``optim.SGD(momentum=0.5)`` over a
  dataset of exactly ``--steps`` batches (one ``fit`` call per round, so its per-epoch overhead counts),
  against the idiomatic PyTorch loop over the same shuffled batches: ``torch.optim.SGD(momentum=0.5)``,
  ``zero_grad``, ``torch.autograd.grad(..., create_graph=True)`` for the input gradient, ``backward``,
  ``step``.

Before any timing, every objective is run once in float64 in both libraries from the same weights, and the
losses and parameter gradients must agree (``check_agreement``); the script aborts if they do not.

Timing is interleaved: each round runs ``--steps`` minigrad steps, then ``--steps`` PyTorch steps (the
order alternating between rounds), then the objective's matrix products alone (the GEMM ceiling).  Medians
and interquartile ranges are over all timed steps of all rounds.  Threads: OMP/OPENBLAS/MKL_NUM_THREADS
are set to ``--threads`` (default 2) before NumPy is imported, unless already set in the environment, and
torch.set_num_threads is given the same number.  See benchmarks/README.md for the FLOP counts.
"""
from __future__ import annotations

import argparse
import os
import sys


def _parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cpu: NumPy vs torch; cuda: CuPy vs torch-cuda (skipped when unavailable)")
    p.add_argument("--batch", default="128,1", help="comma-separated batch sizes (default 128,1)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per library per round (default 30)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing (default 5)")
    p.add_argument("--objectives", default="plain,adv-pinf,double-backprop,gp-q1,datagrad-l1-fd",
                   help="comma-separated subset of plain,adv-pinf,double-backprop,gp-q1,datagrad-l1-fd")
    p.add_argument("--threads", type=int, default=2, help="BLAS / OpenMP / torch threads (default 2)")
    p.add_argument("--clock", choices=("wall", "process"), default="wall",
                   help="wall: perf_counter (default); process: this process's CPU time, which other "
                        "programs on the machine barely disturb; use it with --threads 1 (with more "
                        "threads it counts the BLAS/OpenMP threads' spinning too)")
    p.add_argument("--keep-freed-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="set glibc's M_MMAP_THRESHOLD=32 MiB and M_TRIM_THRESHOLD=1 GiB first, as minigrad's "
                        "fit and commands do (minigrad.keep_freed_memory), so freed arrays are reused instead of "
                        "being faulted in again; affects both libraries (default: on; --no-keep-freed-memory "
                        "measures glibc's defaults, and sets MINIGRAD_SYSTEM_MALLOC=1 so fit does not apply it)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    p.add_argument("--momentum", type=float, default=0.5, help="SGD momentum of the library path (default 0.5)")
    p.add_argument("--no-torch", action="store_true", help="time minigrad only")
    p.add_argument("--no-fit", action="store_true", help="skip the library path (train.fit vs the torch loop)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--check-dtypes", action="store_true",
                   help="before timing, fail if any op of a float32 step touches a non-float32 float array")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: batch 8, 2 rounds of 3 steps; the numbers mean nothing")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.rounds, args.warmup = "8", 3, 2, 1
    return args


if __name__ == "__main__":  # threads must be fixed before NumPy (and its OpenBLAS) is imported
    _threads = str(_parse_args().threads)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ctypes  # noqa: E402
import gc  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import datasets, optim, train  # noqa: E402
from minigrad.members import Strengths, member  # noqa: E402
from minigrad.nn import maxout_mlp  # noqa: E402
from minigrad.backend import get_array_module  # noqa: E402
from minigrad.tensor import unwrap  # noqa: E402

IN, UNITS, PIECES, CLASSES = 784, 240, 5, 10
LAYERS = ((IN, UNITS * PIECES), (UNITS, UNITS * PIECES), (UNITS, CLASSES))  # (n_in, n_out) of each GEMM
STRENGTHS = Strengths(eps=0.1, beta_l1=0.01, beta_l2=0.1)
EPS, LAM = STRENGTHS.eps, STRENGTHS.beta_l2            # adv-pinf's and gp-q1's ε; double-backprop's λ
DG_ALPHA, DG_BETA, DG_PHI = 1.0, STRENGTHS.beta_l1, STRENGTHS.eps
OBJECTIVES = ("plain", "adv-pinf", "double-backprop", "gp-q1", "datagrad-l1-fd")
# (weight of L(x), weight of L(x + step·sign g), step) for the two perturbed-point members
PERTURBED = {"adv-pinf": (0.5, 0.5, EPS),
             "datagrad-l1-fd": (DG_ALPHA - DG_BETA / DG_PHI, DG_BETA / DG_PHI, DG_PHI)}
PENALTY = ("double-backprop", "gp-q1")


# --- the objectives, minigrad: the library's members -------------------------------------------
def mg_member(name, model):
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; expected one of {OBJECTIVES}")
    return member(name, model, STRENGTHS)


def mg_objective(name, model, params, x, y, scale=1.0, objective=None):
    """(loss Tensor, [(1, parameter gradients)]) of the library member ``name``.

    ``scale`` > 0 seeds the backward pass with ``scale`` instead of 1: the gradients then arrive
    already multiplied by it (the factor rides through the backward at the 10-wide logits, for
    free), so the SGD step (``scale`` = lr) is one in-place pass, p -= g, as torch's
    ``p.add_(g, alpha=-lr)`` is.  ``scale`` = 1 gives the plain gradients."""
    objective = objective or mg_member(name, model)
    loss = objective(model, x, y)
    return loss, [(1.0, mg.grad(loss, params, mg.Tensor(np.asarray(scale, dtype=x.dtype))))]


def mg_step(name, model, params, x, y, lr, objective=None):
    """One bare-engine SGD step: the gradients come scaled by lr (see mg_objective), so p -= g in
    place, one pass."""
    loss, terms = mg_objective(name, model, params, x, y, scale=lr, objective=objective)
    for _, grads in terms:
        for p, g in zip(params, grads):
            p.data -= g.data
    return loss


def mg_momentum_step(name, model, params, x, y, lr, momentum, buffers, objective=None):
    """The bare engine with the library path's update: ``grad`` seeded with 1, then SGD with momentum,
    v ← μ·v − η·g, θ ← θ + v, written inline as the same four in-place passes ``optim.SGD`` makes (so the
    same rounding).  fit / this = what ``fit``, ``optim`` and the objective classes cost beyond the
    arithmetic itself; fit / bare also counts the momentum arithmetic: three more passes over the
    parameters than ``p -= g`` (two more for adv-pinf and datagrad-l1-fd, whose bare path spends one pass
    scaling the held clean gradient by the learning-rate seed)."""
    loss, [(weight, grads)] = mg_objective(name, model, params, x, y, objective=objective)  # one term, weight 1
    for p, g, (v, scratch) in zip(params, grads, buffers):  # velocity and scratch, per parameter
        scaled = get_array_module(g.data).multiply(g.data, lr, out=scratch)
        v *= momentum
        v -= scaled
        p.data += v
    return loss


def mg_fit(name, model, x, y, batch, lr, momentum, objective=None):
    """The library path: ``train.fit`` for one epoch over (x, y) (exactly len(x)/batch batches) with the
    member and ``optim.SGD(momentum)``: what ``python -m minigrad train``/compare run per step."""
    objective = objective or mg_member(name, model)
    optimizer = optim.SGD(model.parameters() + objective.parameters(), lr=lr, momentum=momentum)
    data = datasets.Dataset(x, y, CLASSES, (), "bench")

    def run():
        train.fit(model, objective, optimizer, data, epochs=1, batch_size=batch, seed=0, progress=False)
    return run


# --- the objectives, PyTorch ---------------------------------------------------------------
def torch_model(mg_model, torch):
    """The same network in PyTorch with the same weights (minigrad stores W as (in, out))."""
    class MaxoutMLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.ModuleList(torch.nn.Linear(i, o) for i, o in LAYERS)

        def forward(self, x):
            for lin in self.lin[:-1]:
                z = lin(x)  # pieces-major: piece k of unit j is column k·units + j
                x = z.view(z.shape[0], PIECES, UNITS).max(1).values
            return self.lin[-1](x)

    dtype = {np.float32: torch.float32, np.float64: torch.float64}[mg_model.parameters()[0].dtype.type]
    net = MaxoutMLP().to(dtype)
    layers = [m for m in mg_model.layers if hasattr(m, "weight")]
    with torch.no_grad():
        for lin, layer in zip(net.lin, layers):
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.weight.data.T)))
            lin.bias.copy_(torch.from_numpy(layer.bias.data))
    return net


def torch_objective(name, model, params, x, y, torch):
    """(loss, [(weight, parameter gradients)]) for the bare-engine step.  The perturbed members take
    the parameter and input gradients of the clean loss from one backward (17 products, as minigrad's
    library does); the others are the idiomatic loss (``torch_loss``) differentiated once."""
    ce, grad = torch.nn.functional.cross_entropy, torch.autograd.grad
    if name in PERTURBED:
        a, b, step = PERTURBED[name]
        xt = x.detach().requires_grad_()
        clean = ce(model(xt), y)
        *g_clean, gx = grad(clean, params + [xt])
        adv = ce(model(x + step * gx.sign()), y)
        g_adv = grad(adv, params)
        return a * clean + b * adv, [(a, g_clean), (b, g_adv)]
    loss = torch_loss(name, model, x, y, torch)
    return loss, [(1.0, grad(loss, params))]


def torch_step(name, model, params, x, y, lr, torch):
    loss, terms = torch_objective(name, model, params, x, y, torch)
    with torch.no_grad():
        for weight, grads in terms:
            for p, g in zip(params, grads):
                p.add_(g, alpha=-lr * weight)
    return loss


def torch_loss(name, model, x, y, torch):
    """The idiomatic PyTorch loss of each member: one scalar, trained by loss.backward()."""
    ce = torch.nn.functional.cross_entropy
    if name == "plain":
        return ce(model(x), y)
    if name in PERTURBED:
        a, b, step = PERTURBED[name]
        xt = x.detach().requires_grad_()
        clean = ce(model(xt), y)
        (gx,) = torch.autograd.grad(clean, xt, retain_graph=True)  # the input gradient, a backward of its own
        return a * clean + b * ce(model(x + step * gx.sign()), y)
    if name not in PENALTY:
        raise ValueError(f"unknown objective {name!r}; expected one of {OBJECTIVES}")
    xt = x.detach().requires_grad_()
    summed = ce(model(xt), y, reduction="sum")
    (g,) = torch.autograd.grad(summed, xt, create_graph=True)
    penalty = LAM * g.pow(2).sum(dim=1) if name == "double-backprop" else EPS * g.abs().sum(dim=1)
    return summed / len(y) + penalty.mean()


def torch_loop(name, net, x, y, batch, lr, momentum, torch, seed=0):
    """The idiomatic PyTorch training loop for one epoch over (x, y): shuffled minibatches,
    torch.optim.SGD(momentum), zero_grad / backward / step."""
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(seed)

    def run():
        net.train()
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = torch_loss(name, net, x[idx], y[idx], torch)
            loss.backward()
            optimizer.step()
            loss.item()  # as fit reads the loss every step
    return run


# --- agreement in float64 ----------------------------------------------------------------
def data(batch, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((batch, IN)).astype(dtype), rng.integers(0, CLASSES, batch)


def combined_grads(terms):
    return [sum(w * np.asarray(g[i]) for w, g in terms) for i in range(len(terms[0][1]))]


def check_agreement(objectives=OBJECTIVES, batch=16, rtol=1e-7, atol=1e-10, seed=0):
    """Run each objective once in float64 in minigrad and PyTorch from the same weights and return
    {objective: (relative loss difference, largest relative gradient difference)}; raise
    AssertionError naming the objective and tensor if any differs by more than rtol/atol.
    Without PyTorch installed, raises ImportError."""
    import torch
    model = maxout_mlp(seed=seed, dtype=np.float64)
    params = model.parameters()
    tnet = torch_model(model, torch)
    tparams = list(tnet.parameters())  # lin.0.weight, lin.0.bias, ...: same order as params
    x, y = data(batch, np.float64, seed)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    names = [n for n, _ in model.named_parameters()]
    report = {}
    for name in objectives:
        loss, terms = mg_objective(name, model, params, x, y)
        tloss, tterms = torch_objective(name, tnet, tparams, tx, ty, torch)
        grads = combined_grads([(w, [g.data for g in gs]) for w, gs in terms])
        tgrads = combined_grads([(w, [g.detach().numpy() for g in gs]) for w, gs in tterms])
        idiomatic = [g.detach().numpy() for g in torch.autograd.grad(torch_loss(name, tnet, tx, ty, torch), tparams)]
        for pname, a, b in zip(names, idiomatic, tgrads):  # the loop's loss trains the same direction
            if not np.allclose(a, b, rtol=rtol, atol=atol):
                raise AssertionError(f"{name}: the idiomatic torch loss's gradient of {pname} differs")
        loss_err = abs(loss.item() - tloss.item()) / max(abs(tloss.item()), 1e-300)
        if not np.isclose(loss.item(), tloss.item(), rtol=rtol, atol=atol):
            raise AssertionError(f"{name}: loss differs: minigrad {loss.item()!r}, torch {tloss.item()!r}")
        worst = 0.0
        for pname, g, tg in zip(names, grads, tgrads):
            tg = tg.T if tg.ndim == 2 else tg  # torch stores W as (out, in)
            if g.shape != tg.shape or not np.allclose(g, tg, rtol=rtol, atol=atol):
                diff = np.max(np.abs(g - tg)) if g.shape == tg.shape else float("nan")
                raise AssertionError(f"{name}: gradient of {pname} differs from PyTorch's: "
                                     f"max |diff| {diff:.3g}, max |torch| {np.max(np.abs(tg)):.3g}")
            worst = max(worst, float(np.max(np.abs(g - tg)) / max(np.max(np.abs(tg)), 1e-300)))
        report[name] = (loss_err, worst)
    return report


# --- the float64 debug check ----------------------------------------------------------------
def check_dtypes(objectives=OBJECTIVES, batch=8, dtype=np.float32):
    """Run each objective's step in ``dtype`` with every Op's forward and backward watched; raise
    AssertionError at the first op that receives, returns or keeps (a mask, a weight) a floating
    array of another dtype (a float64 leak: a Python or NumPy float64 scalar meeting a float32
    array), or if a parameter changes dtype.  Returns {objective: number of op calls checked}."""
    from minigrad.tensor import Op
    want = np.dtype(dtype)
    calls = [0]

    def wrap(cls, meth, fn):
        def wrapped(self, *args):
            out = fn(self, *args)
            outs = out if isinstance(out, tuple) else (out,)
            kept = [(f"{k}", v) for k, v in vars(self).items() if hasattr(v, "dtype")]
            seen = ([(f"input {i}", a) for i, a in enumerate(args)]
                    + [(f"output {i}", o) for i, o in enumerate(outs) if o is not None] + kept)
            for what, a in seen:
                a = unwrap(a)
                if getattr(a, "dtype", None) is not None and a.dtype.kind == "f" and a.dtype != want:
                    raise AssertionError(f"{cls.__name__}.{meth}: {what} is a {a.dtype} array of shape "
                                         f"{a.shape} in a {want.name} step")
            calls[0] += 1
            return out
        return wrapped

    originals = [(cls, meth, vars(cls)[meth]) for cls in _subclasses(Op)
                 for meth in ("forward", "backward") if meth in vars(cls)]
    report = {}
    try:
        for cls, meth, fn in originals:
            setattr(cls, meth, wrap(cls, meth, fn))
        for name in objectives:
            calls[0] = 0
            model = maxout_mlp(seed=0, dtype=dtype)
            params = model.parameters()
            x, y = data(batch, dtype)
            mg_step(name, model, params, x, y, 0.01)
            for pname, p in model.named_parameters():
                if p.dtype != want:
                    raise AssertionError(f"{name}: parameter {pname} became {p.dtype}")
            report[name] = calls[0]
    finally:
        for cls, meth, fn in originals:
            setattr(cls, meth, fn)
    return report


def _subclasses(cls):
    out, stack = [], [cls]
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(c.__subclasses__())
    return out


# --- FLOPs and the GEMM ceiling ----------------------------------------------------------------
def gemm_shapes(name, B):
    """The (m, k, n) of every matrix product one step must do (see README.md):
    fwd (B,i)@(i,o);  dW: (i,B)@(B,o);  dX: (B,o)@(o,i), for the three layers (i, o)."""
    fwd = [(B, i, o) for i, o in LAYERS]
    dW = [(i, B, o) for i, o in LAYERS]
    dX_all = [(B, o, i) for i, o in LAYERS]
    dX_hidden = dX_all[1:]  # the input x needs no gradient in a plain backward
    if name == "plain":
        return fwd + dW + dX_hidden
    if name in PERTURBED:  # clean pass with the input gradient, then the perturbed pass
        return (fwd + dW + dX_all) + (fwd + dW + dX_hidden)
    if name in PENALTY:
        # forward; first backward to x only (dX of every layer); the backward of that backward:
        # each  G @ Wᵀ  of it gives a dW-shaped and a fwd-shaped product; then the forward graph's
        # own backward (dW, and dX of the hidden layers), reached through the softmax.
        return fwd + dX_all + (dW + fwd) + (dW + dX_hidden)
    raise ValueError(name)


def flops(name, B):
    return sum(2 * m * k * n for m, k, n in gemm_shapes(name, B))


def gemm_operands(name, B, dtype, xp=np):
    """Arrays for each product, laid out as a step has them: dW = Xᵀ G takes a transposed view of
    the activations, dX = G Wᵀ a transposed view of the weight; outputs are preallocated."""
    rng = np.random.default_rng(0)
    fwd_like = {(B, i, o) for i, o in LAYERS}
    dx_like = {(B, o, i) for i, o in LAYERS}
    ops = []
    for m, k, n in gemm_shapes(name, B):
        a = xp.asarray(rng.random((m, k)).astype(dtype))
        b = xp.asarray(rng.random((k, n)).astype(dtype))
        if (m, k, n) in dx_like and (m, k, n) not in fwd_like:
            b = xp.asarray(rng.random((n, k)).astype(dtype)).T
        elif (m, k, n) not in fwd_like:  # dW: (i, B) @ (B, o)
            a = xp.asarray(rng.random((k, m)).astype(dtype)).T
        ops.append((a, b, xp.empty((m, n), dtype=dtype)))
    return ops


def time_gemms(ops, matmul, sync=lambda: None, multiply=None):
    """Run every product once.  A product over a length-1 axis (k = 1, batch 1's weight gradient)
    is an outer product; with ``multiply`` it is done as one, 4× faster than np.matmul (which does
    k = 1 in a scalar loop without BLAS), so the ceiling stays a ceiling."""
    for a, b, out in ops:
        if multiply is not None and a.shape[1] == 1:
            multiply(a, b, out=out)
        else:
            matmul(a, b, out=out)
    sync()


# --- peak memory --------------------------------------------------------------------------------
def _rss_peak_delta(fn):
    """Peak resident memory of fn() above the resident memory before it, in bytes (Linux: the
    high-water mark is reset by writing 5 to /proc/self/clear_refs; freed heap memory is first
    returned with malloc_trim so a step must fault in what it uses).  None where unsupported."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kb("VmRSS")
        fn()
        return (_status_kb("VmHWM") - before) * 1024
    except OSError:
        return None


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def _traced_peak(fn):
    """Peak bytes allocated through Python's tracemalloc (NumPy reports its buffers to it)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


# --- the timing loop ----------------------------------------------------------------------------
clock = time.perf_counter


def _busy_ticks():
    """(ticks all CPUs were busy, ticks this process ran) from /proc; None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:9]]
        with open("/proc/self/stat") as f:
            own = f.read()
        own = own[own.rindex(")") + 2:].split()
        return sum(v) - v[3] - v[4], int(own[11]) + int(own[12])
    except (OSError, ValueError, IndexError):
        return None


def _foreign_cores(start, stop, wall):
    """Mean number of cores that other processes kept busy over ``wall`` seconds."""
    if start is None or stop is None or wall <= 0:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((stop[0] - start[0]) - (stop[1] - start[1])) / ticks / wall)


def _quantiles(ts):
    q25, q50, q75 = np.percentile(np.asarray(ts) * 1e3, [25, 50, 75])
    return q50, q25, q75


def bench_one(name, B, args, torch, xp, sync):
    dtype = np.float32
    model = maxout_mlp(seed=0, dtype=dtype)
    objective = mg_member(name, model)
    x, y = data(B, dtype, seed=1)
    if xp is not np:
        model.to("cuda")
        x, y = xp.asarray(x), xp.asarray(y)
    params = model.parameters()

    def mg_run():
        mg_step(name, model, params, x, y, args.lr, objective)
        sync()

    runs = {"minigrad": mg_run}
    per_call = {}  # runs that do several steps per call: their step count
    if not args.no_fit:
        fit_model = maxout_mlp(seed=0, dtype=dtype)
        fx, fy = data(B * args.steps, dtype, seed=2)  # exactly --steps batches: one fit call per round
        if xp is not np:
            fit_model.to("cuda")
        fit_run = mg_fit(name, fit_model, fx, fy, B, args.lr, args.momentum, mg_member(name, fit_model))
        runs["fit"], per_call["fit"] = (lambda: (fit_run(), sync())), args.steps
        mom_model = maxout_mlp(seed=0, dtype=dtype)
        if xp is not np:
            mom_model.to("cuda")
        mom_params, mom_objective = mom_model.parameters(), mg_member(name, mom_model)
        buffers = [(xp.zeros_like(p.data), xp.empty_like(p.data)) for p in mom_params]

        def mom_run():
            mg_momentum_step(name, mom_model, mom_params, x, y, args.lr, args.momentum, buffers, mom_objective)
            sync()
        runs["bare+momentum"] = mom_run
    if torch is not None:
        tdev = "cuda" if args.device == "cuda" else "cpu"
        tnet = torch_model(maxout_mlp(seed=0, dtype=dtype), torch).to(tdev)
        tparams = list(tnet.parameters())
        xh, yh = data(B, dtype, seed=1)
        tx, ty = torch.from_numpy(xh).to(tdev), torch.from_numpy(yh).to(tdev)
        tsync = torch.cuda.synchronize if tdev == "cuda" else (lambda: None)

        def torch_run():
            torch_step(name, tnet, tparams, tx, ty, args.lr, torch)
            tsync()
        runs["torch"] = torch_run
        if not args.no_fit:
            lnet = torch_model(maxout_mlp(seed=0, dtype=dtype), torch).to(tdev)
            fxh, fyh = data(B * args.steps, dtype, seed=2)
            loop = torch_loop(name, lnet, torch.from_numpy(fxh).to(tdev), torch.from_numpy(fyh).to(tdev),
                              B, args.lr, args.momentum, torch)
            runs["torch loop"], per_call["torch loop"] = (lambda: (loop(), tsync())), args.steps

    gemm_ops = gemm_operands(name, B, dtype, xp)
    matmul = xp.matmul
    runs["gemm"] = lambda: time_gemms(gemm_ops, matmul, sync, xp.multiply)
    if torch is not None:
        tops = [tuple(torch.from_numpy(np.asarray(a if xp is np else xp.asnumpy(a))).to(tdev)
                      for a in op) for op in gemm_operands(name, B, dtype)]
        runs["torch gemm"] = lambda: time_gemms(tops, lambda a, b, out: torch.mm(a, b, out=out), tsync)

    times = {k: [] for k in runs}
    faults_per_step = {k: [] for k in runs}  # minor page faults: pages the allocator had given back
    for k, fn in runs.items():
        for _ in range(args.warmup if k not in per_call else 1):
            fn()
    order = list(runs)
    busy0, wall0 = _busy_ticks(), time.perf_counter()
    for r in range(args.rounds):
        for k in (order if r % 2 == 0 else order[::-1]):
            fn = runs[k]
            time.sleep(0.05)  # let the other library's spinning BLAS/OpenMP threads go to sleep
            if k not in per_call:
                fn()  # one untimed step after switching library
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            n = per_call.get(k, 1)  # a fit call or a torch loop is --steps steps: timed once per round
            for _ in range(args.steps // n):
                t = clock()
                fn()
                times[k].append((clock() - t) / n)
            faults_per_step[k].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
                                      / args.steps)
    row = {k: _quantiles(v) for k, v in times.items()}
    row["mg faults"] = float(np.median(faults_per_step["minigrad"]))
    row["foreign"] = _foreign_cores(busy0, _busy_ticks(), time.perf_counter() - wall0)
    if not args.no_memory and xp is np:
        row["mg traced MB"] = _traced_peak(mg_run) / 2**20
        row["mg rss MB"] = _mb(_rss_peak_delta(mg_run))
        if torch is not None:
            row["torch rss MB"] = _mb(_rss_peak_delta(runs["torch"]))
    return row


def _mb(b):
    return None if b is None else b / 2**20


def _fmt_ms(q):
    med, lo, hi = q
    return f"{med:7.2f} [{lo:6.2f}–{hi:6.2f}]"


def _fmt(v, spec):
    return "     -" if v is None else format(v, spec)


def main(argv=None):
    args = _parse_args(argv)
    try:  # enforce the thread count even when NumPy was imported before the environment was set
        from threadpoolctl import threadpool_limits
    except ImportError:
        return _main(args)
    with threadpool_limits(limits=args.threads):
        return _main(args)


def _main(args):
    if args.keep_freed_memory:
        mg.keep_freed_memory()
    else:
        os.environ["MINIGRAD_SYSTEM_MALLOC"] = "1"
    global clock
    clock = time.process_time if args.clock == "process" else time.perf_counter
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    for o in objectives:
        if o not in OBJECTIVES:
            sys.exit(f"step_time: unknown objective {o!r}; choose from {','.join(OBJECTIVES)}")
    batches = [int(b) for b in args.batch.split(",")]

    xp, sync = np, (lambda: None)
    if args.device == "cuda":
        if not mg.backend.cuda_available():
            print("step_time: --device cuda skipped: CuPy with a visible GPU is not available here")
            return 0
        import cupy
        xp, sync = cupy, cupy.cuda.Device().synchronize

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("step_time: PyTorch is not installed (pip install torch==2.13.0): timing minigrad only")
    if torch is not None:
        torch.set_num_threads(args.threads)
        if args.device == "cuda" and not torch.cuda.is_available():
            print("step_time: torch has no CUDA here: timing minigrad only")
            torch = None
        report = check_agreement(objectives)  # raises on disagreement: no timing of wrong code
        print("float64 agreement with PyTorch (relative loss diff, max relative grad diff):")
        for name, (le, ge) in report.items():
            print(f"  {name:15s} loss {le:.1e}  grads {ge:.1e}")
    if args.check_dtypes:
        n = check_dtypes(objectives)
        print("dtype check: every op of each float32 step saw float32 arrays only ("
              + ", ".join(f"{k}: {v} op calls" for k, v in n.items()) + ")")

    print(_environment(args, torch))
    header = (f"{'member':15s} {'batch':>5s} {'minigrad ms [IQR]':>24s} {'torch ms [IQR]':>24s} "
              f"{'ratio':>5s} {'MFLOP':>8s} {'mg GF/s':>7s} {'gemm ms':>7s} {'gemm GF/s':>9s} "
              f"{'%ceil':>5s} {'torch %ceil':>11s} {'mg MB':>6s} {'mg RSS':>6s} {'tch RSS':>7s} {'faults':>6s} "
              f"{'busy':>4s}")
    print(header)
    print("-" * len(header))
    for B in batches:
        for name in objectives:
            row = bench_one(name, B, args, torch, xp, sync)
            f = flops(name, B)
            mg_ms, gemm_ms = row["minigrad"][0], row["gemm"][0]
            t = row.get("torch")
            ratio = f"{mg_ms / t[0]:5.2f}" if t else "    -"
            tceil = (f"{100 * row['torch gemm'][0] / t[0]:10.0f}%" if t else "          -")
            print(f"{name:15s} {B:5d} {_fmt_ms(row['minigrad']):>24s} "
                  f"{_fmt_ms(t) if t else '-':>24s} {ratio} {f / 1e6:8.1f} "
                  f"{f / mg_ms / 1e6:7.1f} {gemm_ms:7.2f} {f / gemm_ms / 1e6:9.1f} "
                  f"{100 * gemm_ms / mg_ms:4.0f}% {tceil} {_fmt(row.get('mg traced MB'), '6.1f')} "
                  f"{_fmt(row.get('mg rss MB'), '6.1f')} {_fmt(row.get('torch rss MB'), '7.1f')} "
                  f"{row['mg faults']:6.0f} {_fmt(row.get('foreign'), '4.1f')}",
                  flush=True)
            if "fit" in row:
                loop = row.get("torch loop")
                fit_ms = row["fit"][0]
                print(f"{'':15s} {'':5s} library path: fit {_fmt_ms(row['fit'])}   torch loop "
                      f"{_fmt_ms(loop) if loop else '-'}   fit/loop {f'{fit_ms / loop[0]:.2f}' if loop else '-'}"
                      f"   fit/bare {fit_ms / mg_ms:.2f}", flush=True)
                mom = row["bare+momentum"]
                print(f"{'':15s} {'':5s} bare engine + the same momentum update {_fmt_ms(mom)}   "
                      f"fit/(bare+momentum) {fit_ms / mom[0]:.2f}   (bare+momentum)/bare {mom[0] / mg_ms:.2f}",
                      flush=True)
    return 0


def _machine_lines() -> list:
    """CPU, BLAS with its kernel, OS and date (benchmarks/machine_info.py, beside this script)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import machine_info
    return machine_info.lines()


def _environment(args, torch):
    lines = [f"device {args.device}; clock {args.clock}; malloc "
             f"{'keep-freed-memory' if args.keep_freed_memory else 'system default'}"
             f" (MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_')}); threads: OMP {os.environ.get('OMP_NUM_THREADS')}, OPENBLAS "
             f"{os.environ.get('OPENBLAS_NUM_THREADS')}, MKL {os.environ.get('MKL_NUM_THREADS')}"
             + (f", torch {torch.get_num_threads()}" if torch is not None else "")
             + f"; numpy {np.__version__}" + (f", torch {torch.__version__}" if torch is not None else "")]
    lines += _machine_lines()
    lines.append("library path (one row below each member): train.fit + optim.SGD(momentum) vs the idiomatic "
                 "torch loop (torch.optim.SGD(momentum), backward, step), one call of --steps batches per round; "
                 "fit/bare = fit ms / bare-engine minigrad ms (the acceptance bound is 1.05 at batch 128); "
                 "bare+momentum = the bare engine with the library path's SGD-momentum arithmetic inline")
    lines.append(f"{args.rounds} rounds × {args.steps} steps per library, interleaved; median "
                 "[25th–75th percentile] ms per step; ratio = minigrad/torch medians; gemm = the "
                 "objective's matrix products alone in NumPy (%ceil = gemm ms / minigrad ms; torch %ceil "
                 "uses torch.mm's time); MB = peak step memory (see README); faults = minor page faults per "
                 "minigrad step (pages malloc had returned to the system); busy = cores other programs "
                 "kept busy meanwhile (> 0.2: the timings are disturbed)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
