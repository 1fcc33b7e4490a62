#!/usr/bin/env python
"""Time one SGD step of the small conv Maxout preset in minigrad and PyTorch, side by side.

    python benchmarks/conv_step.py                   # batch 128, plain and gp-q1, 2 threads
    python benchmarks/conv_step.py --quick           # a smoke run: seconds, numbers meaningless
    python benchmarks/conv_step.py --threads 1 --rounds 7 --steps 10

The network is ``nn.conv_maxout('small')``: 28×28 → ConvMaxout 16×2 (5×5, pad 2, pool 3/2) → 32×2
(5×5, pad 2, pool 3/2) → Maxout 100×2 → 10.  Objectives (one SGD step each, lr 0.01, no max-norm):

    plain   L(x), the batch-mean cross-entropy
    gp-q1     L + λ·meanᵢ‖gᵢ‖₁, λ = 0.1, gᵢ = ∇ₓᵢ Σⱼ Lⱼ: the q = 1 gradient penalty (the p = ∞ member), exact by
            double backprop through conv, Maxout and max pooling

Both libraries first compute every objective in float64 from the same weights and must agree (losses and
parameter gradients to 1e-9 relative), then timing is interleaved: each round runs ``--steps`` minigrad
steps and ``--steps`` PyTorch steps, the order alternating.  Medians are over all timed steps.  Peak memory
is measured per library and objective in a fresh child process (Linux VmHWM, reset after building model and
batch, minus VmRSS then: the step's own high-water mark).  The last line estimates one epoch
(50,000 images) of the full CIFAR-10 preset from a few minigrad plain steps at ``--cifar-batch``.

Threads: OMP/OPENBLAS/MKL_NUM_THREADS are set to ``--threads`` before NumPy is imported, unless already set,
and torch.set_num_threads gets the same number.  The machine is shared: times are upper bounds.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time


def _parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="timed steps per library per round (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--objectives", default="plain,gp-q1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cifar-batch", type=int, default=32, help="batch of the CIFAR-10 epoch estimate (0: skip)")
    p.add_argument("--clock", choices=("wall", "process"), default="wall",
                   help="wall: perf_counter (default); process: this process's CPU time, which other programs "
                        "barely disturb (use it with --threads 1)")
    p.add_argument("--keep-freed-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="tune glibc's malloc first, as train.fit does (minigrad.keep_freed_memory), for both "
                        "libraries (default: on; --no-keep-freed-memory measures glibc's defaults, under which "
                        "every step faults its freed 40 MB window matrices in again)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--quick", action="store_true", help="batch 8, 1 step, 1 round, CIFAR batch 2")
    p.add_argument("--memory-child", nargs=2, metavar=("LIBRARY", "OBJECTIVE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.rounds, args.warmup, args.cifar_batch = 8, 1, 1, 1, 2
    return args


ARGS = _parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(ARGS.threads))
    # The minigrad beside this script, not whichever one is installed: a checkout's benchmark times that
    # checkout (two checkouts side by side, before and after a change, otherwise time the same code).
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import nn  # noqa: E402
from minigrad.members import Strengths, member  # noqa: E402

LAMBDA, LR = 0.1, 0.01
OBJECTIVES = ("plain", "gp-q1")


# --- minigrad ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def mg_objective(name):
    """The library's member by its canonical name (gp-q1's ε is λ), built once: not inside a timed step."""
    return member(name, None, Strengths(eps=LAMBDA), n_features=1)


def mg_step(name, model, x, y):
    params = model.parameters()
    loss = mg_objective(name)(model, x, y)
    for p, g in zip(params, mg.grad(loss, params)):
        p.data -= LR * g.data
    return loss


# --- PyTorch, the same network ------------------------------------------------------------------------
def torch_model(model, torch):
    """The conv Maxout Sequential in PyTorch with the same weights (Linear weights transposed)."""
    F = torch.nn.functional

    def tensor(a):
        return torch.from_numpy(mg.as_numpy(a.data).copy())

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.shape = model.layers[0].shape
            self.convs, self.specs = torch.nn.ParameterList(), []
            for layer in model.layers:
                if isinstance(layer, nn.ConvMaxout):
                    self.convs.append(torch.nn.Parameter(tensor(layer.weight)))
                    self.convs.append(torch.nn.Parameter(tensor(layer.bias)))
                    self.specs.append(layer)
            dense, out = model.layers[-2], model.layers[-1]
            self.dense_w = torch.nn.Parameter(tensor(dense.weight).T.contiguous())
            self.dense_b = torch.nn.Parameter(tensor(dense.bias))
            self.out_w = torch.nn.Parameter(tensor(out.weight).T.contiguous())
            self.out_b = torch.nn.Parameter(tensor(out.bias))
            self.units, self.pieces = dense.units, dense.pieces

        def ordered(self):
            """Parameters in minigrad's order (named_parameters would list the dense ones first)."""
            return list(self.convs) + [self.dense_w, self.dense_b, self.out_w, self.out_b]

        def forward(self, x):
            h = x.view(len(x), *self.shape)
            for i, lay in enumerate(self.specs):
                z = F.conv2d(h, self.convs[2 * i], self.convs[2 * i + 1], stride=lay.stride,
                             padding=(lay.padding[0], lay.padding[2]))
                h = z.view(len(x), lay.pieces, lay.channels, *z.shape[2:]).max(dim=1).values
                h = F.max_pool2d(h, lay.pool.kernel, lay.pool.stride, ceil_mode=True)
            h = F.linear(h.flatten(1), self.dense_w, self.dense_b)
            h = h.view(len(x), self.pieces, self.units).max(dim=1).values
            return F.linear(h, self.out_w, self.out_b)

    return Net()


def torch_loss(name, net, x, y, torch):
    F = torch.nn.functional
    if name == "plain":
        return F.cross_entropy(net(x), y)
    x = x.detach().requires_grad_(True)
    total = F.cross_entropy(net(x), y, reduction="sum")
    (g,) = torch.autograd.grad(total, x, create_graph=True)
    return total / len(x) + LAMBDA * g.abs().flatten(1).sum(dim=1).mean()


def torch_step(name, net, x, y, torch):
    loss = torch_loss(name, net, x, y, torch)
    params = net.ordered()
    with torch.no_grad():
        for p, g in zip(params, torch.autograd.grad(loss, params)):
            p -= LR * g
    return loss


def data(batch, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((batch, 784)).astype(dtype), rng.integers(0, 10, batch)


def check_agreement(batch=4, seed=0):
    """{objective: (loss rel. error, worst parameter-gradient rel. error)} in float64."""
    import torch
    model = nn.conv_maxout("small", seed=seed, dtype=np.float64)
    net = torch_model(model, torch)
    x, y = data(batch, np.float64, seed)
    out = {}
    for name in OBJECTIVES:
        mine = mg_objective(name)(model, x, y)
        grads = [mg.as_numpy(g.data) for g in mg.grad(mine, model.parameters())]
        theirs = torch_loss(name, net, torch.from_numpy(x), torch.from_numpy(y), torch)
        tg = [g.numpy() for g in torch.autograd.grad(theirs, net.ordered())]
        tg = tg[:-4] + [tg[-4].T, tg[-3], tg[-2].T, tg[-1]]  # dense weights back to (in, out)
        errs = [np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300) for a, b in zip(grads, tg)]
        out[name] = (abs(mine.item() - theirs.item()) / abs(theirs.item()), max(errs))
    return out


# --- measuring ------------------------------------------------------------------------------------------
def _status_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _peak_child(library, name, batch, threads):
    """The step's high-water mark: VmHWM after two steps minus VmRSS before them, with the high-water mark
    reset first (``clear_refs`` 5; ru_maxrss would carry the parent's peak across fork and exec)."""
    x, y = data(batch, np.float32)
    model = nn.conv_maxout("small", seed=0)
    if library == "torch":
        import torch
        torch.set_num_threads(threads)
        net, tx, ty = torch_model(model, torch), torch.from_numpy(x), torch.from_numpy(y)
        step = lambda: torch_step(name, net, tx, ty, torch)  # noqa: E731
    else:
        step = lambda: mg_step(name, model, x, y)  # noqa: E731
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    for _ in range(2):
        step()
    print(json.dumps({"peak_mib": (_status_kib("VmHWM") - base) / 1024}))


def peak_memory(library, name, args):
    out = subprocess.run([sys.executable, __file__, "--memory-child", library, name, "--batch", str(args.batch),
                          "--threads", str(args.threads)]
                         + ([] if args.keep_freed_memory else ["--no-keep-freed-memory"]), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def time_steps(args, torch):
    clock = time.process_time if args.clock == "process" else time.perf_counter
    x, y = data(args.batch, np.float32)
    model = nn.conv_maxout("small", seed=0)
    results = {}
    for name in args.objectives.split(","):
        runners = {"minigrad": lambda: mg_step(name, model, x, y)}
        if torch is not None:
            net, tx, ty = torch_model(model, torch), torch.from_numpy(x), torch.from_numpy(y)
            runners["torch"] = lambda: torch_step(name, net, tx, ty, torch)
        times = {lib: [] for lib in runners}
        for lib, run in runners.items():
            for _ in range(args.warmup):
                run()
        for r in range(args.rounds):
            for lib in (list(runners) if r % 2 == 0 else list(reversed(runners))):
                for _ in range(args.steps):
                    t0 = clock()
                    runners[lib]()
                    times[lib].append(clock() - t0)
        results[name] = {lib: float(np.median(t)) for lib, t in times.items()}
    return results


def cifar_epoch_estimate(batch):
    model = nn.conv_maxout("cifar10", seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.random((batch, 3072), dtype=np.float32), rng.integers(0, 10, batch)
    mg_step("plain", model, x, y)  # warm-up
    t0 = time.perf_counter()
    mg_step("plain", model, x, y)
    per_example = (time.perf_counter() - t0) / batch
    return per_example * 50_000


def main(args):
    if args.keep_freed_memory:
        mg.keep_freed_memory()
    if args.memory_child:
        return _peak_child(*args.memory_child, args.batch, args.threads)
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            print("torch not installed: minigrad only")
    if torch is not None:
        for name, (loss_err, grad_err) in check_agreement().items():
            if not (loss_err < 1e-9 and grad_err < 1e-9):
                sys.exit(f"conv_step: {name}: minigrad and PyTorch disagree (loss {loss_err:.2g}, grads {grad_err:.2g})")
        print("float64 agreement with PyTorch: ok (plain, gp-q1)")
    results = time_steps(args, torch)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import machine_info  # beside this script
    print("\n" + "\n".join(machine_info.lines(args.threads)))
    print(f"\nconv_maxout('small'), batch {args.batch}, {args.threads} thread(s), median of "
          f"{args.rounds}×{args.steps} steps; clock {args.clock}; malloc "
          f"{'keep-freed-memory (as fit)' if args.keep_freed_memory else 'system default'}")
    print(f"{'objective':<10}{'minigrad ms':>13}{'torch ms':>10}{'ratio':>8}{'mg peak MiB':>13}{'torch peak MiB':>16}")
    for name, t in results.items():
        tt = t.get("torch")
        mem = ("", "") if args.no_memory else (
            f"{peak_memory('minigrad', name, args):.0f}", f"{peak_memory('torch', name, args):.0f}" if tt else "")
        print(f"{name:<10}{t['minigrad'] * 1e3:>13.1f}{tt * 1e3 if tt else float('nan'):>10.1f}"
              f"{t['minigrad'] / tt if tt else float('nan'):>8.2f}{mem[0]:>13}{mem[1]:>16}")
    if args.cifar_batch:
        seconds = cifar_epoch_estimate(args.cifar_batch)
        print(f"\none epoch of conv_maxout('cifar10') (50,000 images, plain SGD), extrapolated from a step at "
              f"batch {args.cifar_batch}: {seconds / 3600:.2f} h ({seconds:.0f} s)")


if __name__ == "__main__":
    main(ARGS)
