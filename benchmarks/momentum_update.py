#!/usr/bin/env python
"""What one SGD-with-momentum update of the Maxout MLP's 1.23 M parameters costs, in place in a step.

    python benchmarks/momentum_update.py              # 2 threads, 300 steps; ~1 minute

Why fit/bare in step_time.py cannot reach 1.05 for plain: the bare path's update is one pass, ``p -= g``
(the learning rate rides in the backward seed); ``optim.SGD(momentum)``'s v ← μ·v − η·g, θ ← θ + v is four
NumPy ufunc passes.  Each variant below is timed right after a real forward/backward of the plain member
(so the caches hold what a training step leaves in them), interleaved, median over the steps:

    p -= g                  the bare path (1 pass)
    optim.SGD.step          the library (4 passes, plus its Python)
    four passes inline      ηg into a scratch buffer, v *= μ, v -= scratch, p += v: optim.SGD's arithmetic
    four passes, chunked    the same over 16 Ki-element slices, so that each slice stays in L1/L2
    four passes, 2 threads  the same with each large array split between two threads
    three passes            η already in g (as if seeded into the backward): v *= μ, v -= g, p += v;
                            different rounding from optim.SGD, shown as the floor of a fused-seed design
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

LR, MU, CHUNK = 0.01, 0.5, 16384


def _four(p, g, v, s):
    np.multiply(g, LR, out=s)
    v *= MU
    v -= s
    p += v


def variants(params):
    """{name: update(gradients)}; each variant updates copies of the parameters of its own, so the
    model that makes the gradients never changes (and never diverges)."""
    arrays = [p.data.copy() for p in params]
    velocity = [np.zeros_like(a) for a in arrays]
    scratch = [np.empty_like(a) for a in arrays]
    sgd = optim.SGD([mg.Tensor(p.data.copy(), requires_grad=True) for p in params], lr=LR, momentum=MU)
    pool = ThreadPoolExecutor(1)
    small = np.empty(CHUNK, np.float32)

    def bare(gs):
        for p, g in zip(arrays, gs):
            p -= g

    def library(gs):
        sgd.step(gs)

    def inline(gs):
        for args in zip(arrays, gs, velocity, scratch):
            _four(*args)

    def chunked(gs):
        for p, g, v in zip(arrays, gs, velocity):
            p, g, v = p.reshape(-1), g.reshape(-1), v.reshape(-1)
            for a in range(0, p.size, CHUNK):
                b = min(a + CHUNK, p.size)
                _four(p[a:b], g[a:b], v[a:b], small[:b - a])

    def threaded(gs):
        pending = []
        for p, g, v, s in zip(arrays, gs, velocity, scratch):
            p, g, v, s = p.reshape(-1), g.reshape(-1), v.reshape(-1), s.reshape(-1)
            h = p.size // 2
            pending.append(pool.submit(_four, p[:h], g[:h], v[:h], s[:h]))
            _four(p[h:], g[h:], v[h:], s[h:])
        for f in pending:
            f.result()

    def three(gs):  # gs stands in for η·g here; the arithmetic differs from optim.SGD's
        for p, g, v in zip(arrays, gs, velocity):
            v *= MU
            v -= g
            p += v

    return {"p -= g": bare, "optim.SGD.step": library, "four passes inline": inline,
            "four passes, chunked": chunked, "four passes, 2 threads": threaded, "three passes": three}


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
        print(f"  {name:24s} {q[0]:6.3f} [{q[1]:.3f}–{q[2]:.3f}]   {q[0] / (base * 1e3):4.1f}× p -= g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
