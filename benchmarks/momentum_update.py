#!/usr/bin/env python
"""What one SGD-with-momentum update of the Maxout MLP's 1.23 M parameters costs, in place in a step.

    python benchmarks/momentum_update.py              # 2 threads, 300 steps; ~1 minute

Why fit/bare in step_time.py stays above 1.05 for plain: the bare path's update is one pass, ``p -= g``
(the learning rate rides in the backward seed); ``optim.SGD(momentum)``'s v ← μ·v − η·g, θ ← θ + v is four
NumPy ufunc passes.  Each variant below is timed right after a real forward/backward of the plain member
(so the caches hold what a training step leaves in them), the variants interleaved, median over the steps.
Each variant updates parameter, velocity and scratch arrays of its own (copies; the model that makes the
gradients never changes), so no variant finds another's arrays in cache:

    p -= g                   the bare path (1 pass)
    optim.SGD.step           the library (4 passes, plus its Python, ~20 µs)
    four passes inline       ηg into a scratch buffer, v *= μ, v -= scratch, p += v: optim.SGD's arithmetic
    four passes, g as scratch  the same with ηg written over the gradient (no scratch array: one array
                             less in cache; a library could do it only where it owns the gradient)
    four passes, chunks N    the same over slices of N elements, so that a slice's four arrays stay in L2
    four passes, 2 threads   the same with each array split between this thread and a second one
    three passes             η already in g (as if seeded into the backward): v *= μ, v -= g, p += v;
                             a different rounding from optim.SGD's, shown as the floor of that design
Every "four passes" variant rounds exactly as optim.SGD does (tests/test_benchmark_smoke.py checks inline).
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "2")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import functional as F, optim  # noqa: E402
from minigrad.nn import maxout_mlp  # noqa: E402

LR, MU = 0.01, 0.7  # μ = 0.7: the end of the Maxout ramp (0.5 would make μ·v exact)


def _four(p, g, v, s, lr=LR, mu=MU):
    np.multiply(g, lr, out=s)
    v *= mu
    v -= s
    p += v


def variants(params):
    """{name: update(gradients)}, each on arrays of its own."""
    def own():
        return ([p.data.copy() for p in params], [np.zeros_like(p.data) for p in params],
                [np.empty_like(p.data) for p in params])
    pool = ThreadPoolExecutor(1)
    runs = {}

    arrays, _, _ = own()

    def bare(gs, arrays=arrays):
        for p, g in zip(arrays, gs):
            p -= g
    runs["p -= g"] = bare

    sgd = optim.SGD([mg.Tensor(p.data.copy(), requires_grad=True) for p in params], lr=LR, momentum=MU)
    runs["optim.SGD.step"] = sgd.step

    def inline(gs, state=own()):
        for p, v, s, g in zip(*state, gs):
            _four(p, g, v, s)
    runs["four passes inline"] = inline

    def in_gradient(gs, state=own()):  # the timed gradients are fresh copies: writing over them is safe
        for p, v, _, g in zip(*state, gs):
            _four(p, g, v, g)
    runs["four passes, g as scratch"] = in_gradient

    for chunk in (16384, 131072):
        def chunked(gs, state=own(), chunk=chunk, small=np.empty(chunk, np.float32)):
            for p, v, _, g in zip(*state, gs):
                p, g, v = p.reshape(-1), g.reshape(-1), v.reshape(-1)
                for a in range(0, p.size, chunk):
                    b = min(a + chunk, p.size)
                    _four(p[a:b], g[a:b], v[a:b], small[:b - a])
        runs[f"four passes, chunks {chunk // 1024}Ki"] = chunked

    def threaded(gs, state=own()):
        pending = []
        for p, v, s, g in zip(*state, gs):
            p, g, v, s = p.reshape(-1), g.reshape(-1), v.reshape(-1), s.reshape(-1)
            h = p.size // 2
            pending.append(pool.submit(_four, p[:h], g[:h], v[:h], s[:h]))
            _four(p[h:], g[h:], v[h:], s[h:])
        for f in pending:
            f.result()
    runs["four passes, 2 threads"] = threaded

    def three(gs, state=own()):  # gs stands in for η·g here; the arithmetic differs from optim.SGD's
        for p, v, _, g in zip(*state, gs):
            v *= MU
            v -= g
            p += v
    runs["three passes"] = three
    return runs


def main(steps=300, warmup=20):
    model = maxout_mlp(seed=0, dtype=np.float32)
    params = model.parameters()
    rng = np.random.default_rng(0)
    x, y = rng.random((128, 784), dtype=np.float32), rng.integers(0, 10, 128)
    runs = variants(params)
    times = {k: [] for k in runs}
    for step in range(steps):
        for name, update in runs.items():
            loss = F.cross_entropy(model(mg.Tensor(x)), y)
            gs = [g.data for g in mg.grad(loss, params)]
            t = time.perf_counter()
            update(gs)
            if step >= warmup:
                times[name].append(time.perf_counter() - t)
    n = sum(p.size for p in params)
    print(f"{n / 1e6:.2f} M float32 parameters, after a plain forward/backward at batch 128; "
          f"{steps - warmup} steps, median [25th–75th percentile] ms")
    base = float(np.median(times["p -= g"]))
    for name, ts in times.items():
        q = np.percentile(ts, [50, 25, 75]) * 1e3
        print(f"  {name:27s} {q[0]:6.3f} [{q[1]:.3f}–{q[2]:.3f}]   {q[0] / (base * 1e3):4.1f}× p -= g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
