#!/usr/bin/env python
"""Which OpenBLAS kernel and which operand layout run minigrad's matrix products fastest on this CPU?

    python benchmarks/blas_kernels.py                          # every kernel below, 1 thread, CPU-time clock
    python benchmarks/blas_kernels.py --threads 2 --clock wall # as a 2-thread step runs them (quiet machine)
    python benchmarks/blas_kernels.py --kernels default --quick

NumPy's OpenBLAS picks a kernel for the CPU it finds (threadpoolctl names it: ``architecture``); the
environment variable ``OPENBLAS_CORETYPE`` overrides the choice, so each kernel is timed in a child process
of its own.  For every distinct product of one SGD step (the Maxout MLP 784 → 240×5 → 240×5 → 10 at batch
128, and the small conv Maxout preset at batch 128), four ways to lay it out are timed:

    A @ B       with each operand in the layout a step has it (dW = Xᵀ G on a transposed view, dX = G Wᵀ on
                a transposed weight, the conv's window matrix stored transposed)
    (Bᵀ Aᵀ)ᵀ    the same product computed as its transpose (what ``MatMul.backward`` does for a transposed
                weight), with the other operand orders
    A' @ B      the transposed operand copied contiguous first (the copy counted)
    A @ B'      likewise for the right operand

and the table prints GFLOP/s per product and layout, with the best marked.  The products' values are the
same in every layout up to rounding; minigrad's choice is the first column except where ``MatMul.backward``
already forms the transpose.  Medians of ``--repeat`` runs after one warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

KERNELS = ("default", "Haswell", "SkylakeX", "Zen", "Sandybridge")
# (name, m, k, n, left transposed?, right transposed?): one row per distinct product of a step
PRODUCTS = [
    ("mlp fwd 1", 128, 784, 1200, False, False),
    ("mlp dW 1", 784, 128, 1200, True, False),
    ("mlp dX 1", 128, 1200, 784, False, True),
    ("mlp fwd 2", 128, 240, 1200, False, False),
    ("mlp dW 2", 240, 128, 1200, True, False),
    ("mlp dX 2", 128, 1200, 240, False, True),
    ("conv1 fwd", 100352, 25, 32, True, True),
    ("conv1 dW", 32, 100352, 25, True, True),
    ("conv2 fwd", 25088, 400, 64, True, True),
    ("conv2 dW", 64, 25088, 400, True, True),
    ("conv2 dcols", 400, 64, 25088, True, True),
]


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kernels", default=",".join(KERNELS), help="comma-separated OPENBLAS_CORETYPE values "
                   "('default': let OpenBLAS choose)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("thread", "wall"), default="thread",
                   help="thread: this thread's CPU time (needs --threads 1; load-proof); wall: perf_counter")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="MLP products only, 2 repeats (a smoke run)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.clock == "thread" and a.threads != 1:
        p.error("--clock thread needs --threads 1 (the other BLAS threads' time would not be counted)")
    if a.quick:
        a.repeat = 2
    return a


def _child(args):
    import numpy as np
    try:
        from threadpoolctl import threadpool_info
        info = next((i for i in threadpool_info() if i.get("internal_api") == "openblas"), {})
    except ImportError:
        info = {}
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    rng = np.random.default_rng(0)

    def operand(rows, cols, transposed):
        a = rng.random((cols, rows) if transposed else (rows, cols), dtype=np.float32)
        return a.T if transposed else a

    def timed(fn):
        fn()
        runs = []
        for _ in range(args.repeat):
            t0 = clock()
            fn()
            runs.append(clock() - t0)
        return float(np.median(runs))

    rows = []
    for name, m, k, n, ta, tb in PRODUCTS[:6] if args.quick else PRODUCTS:
        a, b = operand(m, k, ta), operand(k, n, tb)
        ways = {
            "A@B": lambda: a @ b,
            "(BtAt)t": lambda: (b.T @ a.T).T,
            "copyA@B": lambda: np.ascontiguousarray(a) @ b,
            "A@copyB": lambda: a @ np.ascontiguousarray(b),
        }
        rows.append({"product": name, "mflop": 2 * m * k * n / 1e6,
                     "seconds": {w: timed(f) for w, f in ways.items()}})
    print(json.dumps({"architecture": info.get("architecture"), "version": info.get("version"), "rows": rows}))


def main(argv=None):
    args = _args(argv)
    if args.child:
        return _child(args)
    results = {}
    for kernel in args.kernels.split(","):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
        env.pop("OPENBLAS_CORETYPE", None)
        if kernel != "default":
            env["OPENBLAS_CORETYPE"] = kernel
        cmd = [sys.executable, __file__, "--child", "--threads", str(args.threads), "--clock", args.clock,
               "--repeat", str(args.repeat)] + (["--quick"] if args.quick else [])
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"blas_kernels: the child for kernel {kernel} failed:\n{done.stderr[-2000:]}")
        results[kernel] = json.loads(done.stdout.strip().splitlines()[-1])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import machine_info  # beside this script
    print("\n".join(machine_info.lines(args.threads, with_blas=False)))  # each child names its kernel below
    print(f"{args.threads} thread(s), clock {args.clock}, median of {args.repeat}; GFLOP/s "
          "(higher is better), * = the best layout of the row, ! = the best kernel for the product")
    for kernel, r in results.items():
        print(f"  kernel {kernel}: OpenBLAS {r['version']} runs {r['architecture']}")
    ways = list(next(iter(results.values()))["rows"][0]["seconds"])
    print(f"\n{'product':<12}{'MFLOP':>8}  {'kernel':<12}" + "".join(f"{w:>10}" for w in ways))
    for i, row in enumerate(next(iter(results.values()))["rows"]):
        best_kernel = max(results, key=lambda kk: row["mflop"] / 1e3 / min(results[kk]["rows"][i]["seconds"].values()))
        for kernel, r in results.items():
            secs = r["rows"][i]["seconds"]
            best = min(secs, key=secs.get)
            cells = "".join(f"{row['mflop'] / 1e3 / s:>9.1f}{'*' if w == best else ' '}" for w, s in secs.items())
            print(f"{row['product'] if kernel == next(iter(results)) else '':<12}"
                  f"{format(row['mflop'], '.0f') if kernel == next(iter(results)) else '':>8}  "
                  f"{kernel + ('!' if kernel == best_kernel else ''):<12}{cells}")


if __name__ == "__main__":
    main()
