#!/usr/bin/env python
"""Where a minigrad SGD step spends its time and memory, per objective (see step_time.py).

    python benchmarks/profile_step.py                       # batch 128, every objective
    python benchmarks/profile_step.py --objectives double-backprop --batch 1 --cprofile 25
    python benchmarks/profile_step.py --clock thread --detail 20   # 1 thread, CPU time: load-proof
    LD_PRELOAD=/tmp/alloccount.so python benchmarks/profile_step.py  # + malloc counts (alloccount.c)

For each objective it prints

- the step split by a per-Op timing hook into: GEMMs (MatMul.forward), the other ops' array work (their
  forward, by op), the Python of the ops' backward methods, Op.apply overhead, the engine (grad():
  topological order, accumulation, checks), the model/loss Python outside ops, and the SGD update;
  times are medians over ``--steps`` hooked steps, exclusive (a backward's time excludes the ops it
  calls), and the hook's own overhead is shown as the difference from an unhooked step;
- the non-GEMM time paired per step: each step minus its own products (only MatMul.forward timed), which a
  drifting machine disturbs less than the difference of two medians taken in different steps;
- deterministic counts: op calls by class, bytes of the arrays ops return, minor page faults per step,
  and, when alloccount.so is preloaded, malloc calls and bytes (all, and >= 64 KiB);
- the layout of the gradients returned (a non-contiguous weight gradient makes the update strided);
- with ``--cprofile N``, the top N functions of cProfile by own time.
"""
from __future__ import annotations

import argparse
import os
import sys

def _parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objectives", default="plain,adv-pinf,double-backprop,gp-q1,datagrad-l1-fd")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    p.add_argument("--clock", choices=("wall", "thread"), default="wall",
                   help="wall: perf_counter; thread: this thread's CPU time (implies --threads 1), "
                        "which a busy machine barely disturbs")
    p.add_argument("--detail", type=int, default=0, help="list the N slowest op calls by layout")
    p.add_argument("--cprofile", type=int, default=0, help="print the top N functions by own time")
    p.add_argument("--keep-freed-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="tune glibc's malloc as train.fit does (minigrad.keep_freed_memory), so freed arrays are "
                        "reused instead of faulted in again (default: on; --no-keep-freed-memory measures "
                        "glibc's defaults)")
    args = p.parse_args(argv)
    if args.clock == "thread":
        args.threads = 1
    return args


if __name__ == "__main__":
    _threads = str(_parse_args().threads)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import collections  # noqa: E402
import ctypes  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

clock = time.perf_counter

import minigrad as mg  # noqa: E402
from minigrad import tensor as mg_tensor  # noqa: E402
from minigrad.nn import maxout_mlp  # noqa: E402

try:
    from step_time import OBJECTIVES, _subclasses, data, flops, mg_objective  # noqa: E402
except ImportError:  # imported as benchmarks.profile_step
    from benchmarks.step_time import OBJECTIVES, _subclasses, data, flops, mg_objective  # noqa: E402


def _layout(a):
    """'float32(128,1200)C' / 'F' (transposed) / 'S' (other strides) / 's' for a 0-d array."""
    if not hasattr(a, "shape"):
        return type(a).__name__
    if a.ndim == 0:
        return f"{a.dtype}()"
    order = "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "S"
    return f"{a.dtype}{tuple(a.shape)}{order}".replace(" ", "")


OTHER = "other ops' array work"


class OpTimer:
    """Exclusive wall time of every Op's forward/backward, of Op.apply, and of grad()."""

    def __init__(self, detail=False):
        self.detail = detail
        self.t = collections.defaultdict(float)
        self.n = collections.Counter()
        self.out_bytes = collections.Counter()
        self.stack = []
        self.saved = []
        self.calls = collections.Counter()   # (op, input layouts, output layout) -> time
        self.ncalls = collections.Counter()

    def _wrap(self, key, fn, count_bytes=False):
        timer = self

        def wrapped(*args, **kwargs):
            t0 = clock()
            timer.stack.append(0.0)
            try:
                out = fn(*args, **kwargs)
            finally:
                dt = clock() - t0
                child = timer.stack.pop()
                timer.t[key] += dt - child
                timer.n[key] += 1
                if timer.stack:
                    timer.stack[-1] += dt
            if count_bytes and hasattr(out, "nbytes"):
                if out.base is None:  # a view (Reshape, Transpose, ...) allocates nothing
                    timer.out_bytes[key[0]] += out.nbytes
                if timer.detail:
                    ins = tuple(_layout(a) for a in args[1:])
                    timer.calls[(key[0], ins, _layout(out))] += dt - child
                    timer.ncalls[(key[0], ins, _layout(out))] += 1
            return out
        return wrapped

    def __enter__(self):
        for cls in _subclasses(mg.Op):
            for meth in ("forward", "backward"):
                if meth in vars(cls):
                    fn = vars(cls)[meth]
                    self.saved.append((cls, meth, fn))
                    setattr(cls, meth, self._wrap((cls.__name__, meth), fn, meth == "forward"))
        apply = vars(mg.Op)["apply"]
        self.saved.append((mg.Op, "apply", apply))
        mg.Op.apply = classmethod(self._wrap(("Op", "apply"), apply.__func__))
        hooked = self._wrap(("engine", "grad"), mg_tensor.grad)
        # every module that calls grad() by its own name: the engine, the family, and this script's step
        owners = [m for n, m in sorted(sys.modules.items())
                  if (n == "minigrad" or n.startswith("minigrad.")) and getattr(m, "grad", None) is mg_tensor.grad]
        for owner in owners:
            self.saved.append((owner, "grad", owner.grad))
            owner.grad = hooked
        return self

    def __exit__(self, *exc):
        for owner, name, fn in reversed(self.saved):
            setattr(owner, name, fn)
        self.saved.clear()

    def reset(self):
        self.t.clear()
        self.n.clear()
        self.out_bytes.clear()
        self.calls.clear()
        self.ncalls.clear()


def step_parts(name, model, params, x, y, lr):
    """One bare-engine step as step_time.py times it (``mg_step``: the backward seeded with lr, then
    p -= g in place, one pass), as (objective time, update time)."""
    t0 = clock()
    loss, terms = mg_objective(name, model, params, x, y, scale=lr)
    t1 = clock()
    for _, grads in terms:
        for p, g in zip(params, grads):
            p.data -= g.data
    t2 = clock()
    return t1 - t0, t2 - t1


def _non_gemm_paired(name, model, params, x, y, lr, steps):
    """Each step's time minus its own GEMMs, with only MatMul.forward timed (two clock reads per product).

    The unhooked median minus the hooked run's GEMM median subtracts two numbers taken in different
    steps; on a shared machine the GEMMs (70 % of a step) drift by more than the whole difference.
    Pairing each step with its own products cancels that drift."""
    forward = vars(mg.ops.MatMul)["forward"]
    spent = [0.0]

    def timed(self, a, b):
        t0 = clock()
        try:
            return forward(self, a, b)
        finally:
            spent[0] += clock() - t0
    mg.ops.MatMul.forward = timed
    try:
        out = []
        for _ in range(steps):
            spent[0] = 0.0
            total = sum(step_parts(name, model, params, x, y, lr))
            out.append(total - spent[0])
    finally:
        mg.ops.MatMul.forward = forward
    return out


def _alloc_counter():
    try:
        f = ctypes.CDLL(None).alloc_stats
    except AttributeError:
        return None
    buf = (ctypes.c_ulonglong * 5)()

    def read():
        f(buf)
        return np.array(list(buf), dtype=np.int64)
    return read


def profile(name, B, steps, cprofile_top=0, lr=0.01, detail=0):
    model = maxout_mlp(seed=0)
    params = model.parameters()
    x, y = data(B, np.float32, seed=1)
    for _ in range(3):
        step_parts(name, model, params, x, y, lr)
    plain = [sum(step_parts(name, model, params, x, y, lr)) for _ in range(steps)]
    paired = _non_gemm_paired(name, model, params, x, y, lr, steps)

    # deterministic counts over one step
    alloc = _alloc_counter()
    flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a0 = alloc() if alloc else None
    n = 5
    for _ in range(n):
        step_parts(name, model, params, x, y, lr)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt0) / n
    allocs = (alloc() - a0) / n if alloc else None

    rows = collections.defaultdict(list)
    call_times, call_counts = collections.defaultdict(list), {}
    counts = None
    with OpTimer(detail=bool(detail)) as timer:
        for i in range(steps):
            timer.reset()
            t_obj, t_upd = step_parts(name, model, params, x, y, lr)
            total = t_obj + t_upd
            gemm = timer.t[("MatMul", "forward")]
            other_fwd = sum(v for (c, m), v in timer.t.items() if m == "forward" and c != "MatMul")
            bwd_py = sum(v for (c, m), v in timer.t.items() if m == "backward")
            apply = timer.t[("Op", "apply")]
            engine = timer.t[("engine", "grad")]
            rows["GEMM (MatMul.forward)"].append(gemm)
            rows[OTHER].append(other_fwd)
            rows["backward methods (Python)"].append(bwd_py)
            rows["Op.apply overhead"].append(apply)
            rows["engine grad() own"].append(engine)
            rows["model/loss Python outside ops"].append(t_obj - gemm - other_fwd - bwd_py - apply - engine)
            rows["SGD update"].append(t_upd)
            rows["total (hooked)"].append(total)
            for (c, m), v in timer.t.items():
                if m == "forward" and c != "MatMul":
                    rows[f"  {c}.forward"].append(v)
            if i == 0:
                counts = (collections.Counter({k: v for k, v in timer.n.items()}),
                          dict(timer.out_bytes))
            for k, v in timer.calls.items():
                call_times[k].append(v)
                call_counts[k] = timer.ncalls[k]

    # layout of the gradients
    loss, terms = mg_objective(name, model, params, x, y)
    layouts = []
    for pname, g in zip([k for k, _ in model.named_parameters()], terms[-1][1]):
        d = g.data
        if not d.flags.c_contiguous:
            layouts.append(f"{pname}: NOT C-contiguous (strides {d.strides})")

    out = io.StringIO()
    med_plain = np.median(plain) * 1e3
    med_hooked = np.median(rows["total (hooked)"]) * 1e3
    print(f"== {name}, batch {B}: unhooked step median {med_plain:.2f} ms "
          f"(min {np.min(plain) * 1e3:.2f}); hooked {med_hooked:.2f} ms; "
          f"{flops(name, B) / 1e6:.0f} MFLOP of GEMM", file=out)
    work = sum(np.median(rows[k]) for k in ("GEMM (MatMul.forward)", OTHER, "SGD update"))
    python = np.median(plain) - work
    print(f"  array work: GEMM {np.median(rows['GEMM (MatMul.forward)']) * 1e3:.3f} ms, other ops "
          f"{np.median(rows[OTHER]) * 1e3:.3f} ms, SGD update "
          f"{np.median(rows['SGD update']) * 1e3:.3f} ms; Python/engine overhead (unhooked step minus "
          f"array work) {python * 1e3:.3f} ms = {100 * python / np.median(plain):.0f}%", file=out)
    q1, med, q3 = np.percentile(paired, [25, 50, 75]) * 1e3
    print(f"  non-GEMM, paired (each step minus its own GEMMs; only MatMul.forward timed): median {med:.3f} ms "
          f"(quartiles {q1:.3f}-{q3:.3f}); unpaired (unhooked median minus hooked GEMM median): "
          f"{(np.median(plain) - np.median(rows['GEMM (MatMul.forward)'])) * 1e3:.3f} ms", file=out)
    print("  hooked breakdown (the hook adds its own cost, mostly to Op.apply):", file=out)
    for k, v in rows.items():
        if k.startswith("  ") and np.median(v) * 1e3 < 0.05:
            continue
        med = np.median(v) * 1e3
        print(f"  {k:34s} {med:7.3f} ms  {100 * med / med_hooked:5.1f}%", file=out)
    n_calls, out_bytes = counts
    fw = {c: k for (c, m), k in n_calls.items() if m == "forward"}
    print(f"  op forward calls: {sum(fw.values())}: "
          + ", ".join(f"{c} {k}" for c, k in sorted(fw.items(), key=lambda t: -t[1])), file=out)
    print(f"  backward calls: {sum(k for (c, m), k in n_calls.items() if m == 'backward')}; "
          f"grad() calls: {n_calls[('engine', 'grad')]}", file=out)
    print(f"  bytes returned by op forwards: {sum(out_bytes.values()) / 2**20:.1f} MiB: "
          + ", ".join(f"{c} {b / 2**20:.1f}" for c, b in sorted(out_bytes.items(), key=lambda t: -t[1])
                      if b >= 2**18), file=out)
    print(f"  minor page faults per step: {faults:.0f} ({faults * 4 / 1024:.1f} MiB of 4 KiB pages)", file=out)
    if allocs is not None:
        print(f"  malloc per step: {allocs[0]:.0f} calls, {allocs[1] / 2**20:.1f} MiB; >= 64 KiB: "
              f"{allocs[2]:.0f} calls, {allocs[3] / 2**20:.1f} MiB", file=out)
    if detail:
        print(f"  slowest op forwards (op, input layouts -> output; calls per step; median ms per step):",
              file=out)
        top = sorted(call_times.items(), key=lambda kv: -np.median(kv[1]))[:detail]
        for (op, ins, o), v in top:
            print(f"    {np.median(v) * 1e3:7.3f}  x{call_counts[(op, ins, o)]:<2d} {op}({', '.join(ins)}) -> {o}",
                  file=out)
    print("  gradient layout: " + ("; ".join(layouts) if layouts else "all C-contiguous"), file=out)
    if cprofile_top:
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(steps):
            step_parts(name, model, params, x, y, lr)
        pr.disable()
        s = io.StringIO()
        st = pstats.Stats(pr, stream=s).sort_stats("tottime")
        st.print_stats(cprofile_top)
        total_calls = st.total_calls / steps
        print(f"  cProfile: {total_calls:.0f} Python function calls per step", file=out)
        body = s.getvalue().split("\n")
        start = next(i for i, line in enumerate(body) if "ncalls" in line)
        print("\n".join("    " + line for line in body[start:start + cprofile_top + 1]), file=out)
    return out.getvalue()


def main(argv=None):
    args = _parse_args(argv)
    global clock
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    if args.clock == "thread" and os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        sys.exit("profile_step: --clock thread needs OPENBLAS_NUM_THREADS=1 (the BLAS work must run "
                 "on this thread)")
    if args.keep_freed_memory:
        mg.keep_freed_memory()
    import machine_info  # beside this script (on sys.path above)
    print("\n".join(machine_info.lines(args.threads)))
    print(f"clock {args.clock}; threads: OPENBLAS {os.environ.get('OPENBLAS_NUM_THREADS')}; malloc "
          f"{'keep-freed-memory (as fit)' if args.keep_freed_memory else 'system default'}; "
          f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_')}")
    names = [n.strip() for n in args.objectives.split(",")]
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        sys.exit(f"profile_step: unknown member {unknown[0]!r}; choose from {','.join(OBJECTIVES)}")
    for name in names:
        print(profile(name, args.batch, args.steps, args.cprofile, detail=args.detail), flush=True)


if __name__ == "__main__":
    main()
