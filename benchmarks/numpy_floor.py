#!/usr/bin/env python
"""How far below the engine's non-GEMM time NumPy itself can go: the step written by hand.

    python benchmarks/numpy_floor.py                 # 1 thread, thread CPU time, batch 128; ~1 minute
    python benchmarks/numpy_floor.py --rounds 5 --steps 60

``profile_step.py`` splits a bare-engine step (``step_time.mg_step``: the backward seeded with the learning
rate, then p -= g) into its matrix products and the rest, the *non-GEMM time*.  How much of that rest could
any NumPy program avoid?  This script answers with a floor: the same step written by hand, in NumPy, for the
Maxout MLP 784 → 240×5 → 240×5 → 10, with no graph, no ops and no engine: the forward with its caches, the
backward by the chain rule written out, the update.  It makes the passes over memory a careful person would
make, and no others:

* ``Affine``: the product, then the bias added into it in place; Maxout: ``pieces − 1`` maximums over the
  pieces-major blocks, one comparison for the mask (and the engine's tie check, one count);
* the loss: a stable log-softmax of the 10 logits; its gradient seeded with lr·weight/B directly;
* the backward: per layer two products, one bias sum, one multiply of the upstream gradient by the mask;
* adv-pinf and datagrad-l1-fd: one clean backward gives the parameter gradients and the input gradient g;
  x + ε·sign(g) in three in-place passes; the perturbed pass's gradients are added into the clean ones;
* double-backprop and gp-q1, L + β·(1/B) Σᵢ R(gᵢ) with R = ‖g‖₂² or ‖g‖₁: the backward of the backward
  derived by hand (``_penalty_grads``), 17 products as in the engine;
* the update: p -= g, one pass per parameter, as the bare engine's.

The products go through ``minigrad.gemm.matmul``, the engine's own, so both sides run the same GEMMs in the
same operand order; each step's non-GEMM time is that step minus its own products (paired, as
``profile_step.py`` does).

Before timing, the hand-written gradients are checked against the engine's in float64
(``check_agreement``: relative difference below 1e-12); the script stops if they differ.  For the two
penalties this is also an independent check of the engine's double backprop: there the gradients come from
a derivation on paper, not from a graph.  The engine and
the floor run interleaved in one process, ``--steps`` steps each per round; medians over all rounds.
"""
from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import time  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad.nn import maxout_mlp  # noqa: E402

try:
    from minigrad.gemm import matmul as _gemm
except ImportError:  # a checkout from before gemm.py: the product as written
    _gemm = np.matmul

try:
    import profile_step  # noqa: E402
    from step_time import data, mg_objective  # noqa: E402
except ImportError:  # imported as benchmarks.numpy_floor
    from benchmarks import profile_step  # noqa: E402
    from benchmarks.step_time import data, mg_objective  # noqa: E402

# The members as step_time.STRENGTHS makes them (check_agreement fails if the two ever drift apart):
# (w₀, w₁, ε) of w₀·L(x) + w₁·L(x + ε·sign g), plain with no perturbed term;
PERTURBED = {"plain": (1.0, 0.0, 0.0), "adv-pinf": (0.5, 0.5, 0.1), "datagrad-l1-fd": (0.9, 0.1, 0.1)}
# (β, ∂R/∂g) of L + β·(1/B) Σᵢ R(gᵢ).
PENALTIES = {"double-backprop": (0.1, lambda g: 2 * g), "gp-q1": (0.1, np.sign)}
MEMBERS = (*PERTURBED, *PENALTIES)
PIECES = 5


class Products:
    """The matrix products of a hand-written step, through the engine's gemm.matmul, with their time."""

    def __init__(self, clock):
        self.clock, self.spent = clock, 0.0

    def __call__(self, a, b):
        t0 = self.clock()
        try:
            return _gemm(a, b)
        finally:
            self.spent += self.clock() - t0


def _maxout(z):
    """(h, hit): the max over the pieces-major blocks of z's last axis, and where each block attains it."""
    u = z.shape[1] // PIECES
    h = np.maximum(z[:, :u], z[:, u:2 * u])
    for k in range(2, PIECES):
        np.maximum(h, z[:, k * u:(k + 1) * u], out=h)
    hit = z.reshape(len(z), PIECES, u) == h[:, None, :]
    if np.count_nonzero(hit) != h.size:  # the engine's tie check; ties split the gradient evenly
        hit = hit / hit.sum(axis=1, keepdims=True)
    return h, hit


def _forward(mm, p, x):
    """The logits and what the backward needs, for parameters p = [W₁, b₁, W₂, b₂, W₃, b₃]."""
    z1 = mm(x, p[0])
    z1 += p[1]
    h1, m1 = _maxout(z1)
    z2 = mm(h1, p[2])
    z2 += p[3]
    h2, m2 = _maxout(z2)
    z3 = mm(h2, p[4])
    z3 += p[5]
    return z3, (x, h1, m1, h2, m2)


def _softmax(z3):
    e = z3 - z3.max(axis=1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=1, keepdims=True)
    return e


def _loss_grad(z3, y, seed):
    """seed · ∂(Σᵢ Lᵢ)/∂z for the cross-entropy of the logits z3: seed·(softmax − onehot)."""
    e = _softmax(z3)
    e[np.arange(len(y)), y] -= 1
    e *= seed
    return e


def _route(g, mask):
    """A Maxout layer's backward: the gradient of h, (B, units), sent to the winning pieces, (B, pieces·units)."""
    return (g[:, None, :] * mask).reshape(len(g), -1)


def _gather(g, mask):
    """``_route``'s adjoint: each unit's pieces summed, weighted by the mask, (B, pieces·units) → (B, units)."""
    return (g.reshape(mask.shape) * mask).sum(axis=1)


def _backward(mm, p, cache, g3, need_x):
    """[∂W₁, ∂b₁, ∂W₂, ∂b₂, ∂W₃, ∂b₃] and (if need_x) ∂x, for the upstream gradient g3 of the logits."""
    x, h1, m1, h2, m2 = cache
    gw3, gb3 = mm(h2.T, g3), g3.sum(axis=0)
    gz2 = _route(mm(g3, p[4].T), m2)
    gw2, gb2 = mm(h1.T, gz2), gz2.sum(axis=0)
    gz1 = _route(mm(gz2, p[2].T), m1)
    gw1, gb1 = mm(x.T, gz1), gz1.sum(axis=0)
    return [gw1, gb1, gw2, gb2, gw3, gb3], (mm(gz1, p[0].T) if need_x else None)


def _penalty_grads(mm, name, p, x, y, scale):
    """The gradients of scale·(L + β·(1/B) Σᵢ R(gᵢ)), gᵢ = ∇ₓᵢ Σⱼ Lⱼ, by the chain rule through the backward.

    The first backward, to x only: δ₃ = softmax(z₃) − onehot, δ₂ = route₂(δ₃ W₃ᵀ), δ₁ = route₁(δ₂ W₂ᵀ),
    g = δ₁ W₁ᵀ.  With G = scale·β/B · ∂R/∂g, the penalty's gradient runs back through those products (the
    Maxout masks are constant: their second derivative is 0):

        ∂W₁ += Gᵀ δ₁,   d₁ = G W₁,   ∂W₂ += gather₁(d₁)ᵀ δ₂,   d₂ = gather₁(d₁) W₂,
        ∂W₃ += gather₂(d₂)ᵀ δ₃,   d₃ = gather₂(d₂) W₃,

    and reaches the logits through the softmax's Jacobian, s ⊙ (d₃ − Σⱼ sⱼ d₃ⱼ), where it joins the data
    loss's scale/B · δ₃ for one ordinary backward to every parameter."""
    beta, dR = PENALTIES[name]
    z3, cache = _forward(mm, p, x)
    _, h1, m1, h2, m2 = cache
    s = _softmax(z3)
    d3 = s.copy()
    d3[np.arange(len(y)), y] -= 1
    d2 = _route(mm(d3, p[4].T), m2)
    d1 = _route(mm(d2, p[2].T), m1)
    g = mm(d1, p[0].T)
    G = dR(g)
    G *= x.dtype.type(scale * beta) / x.dtype.type(len(y))
    gw1 = mm(G.T, d1)
    u2 = _gather(mm(G, p[0]), m1)
    gw2 = mm(u2.T, d2)
    u3 = _gather(mm(u2, p[2]), m2)
    gw3 = mm(u3.T, d3)
    d = mm(u3, p[4])
    d -= (s * d).sum(axis=1, keepdims=True)
    d *= s
    d3 *= x.dtype.type(scale) / x.dtype.type(len(y))
    d += d3
    grads, _ = _backward(mm, p, cache, d, need_x=False)
    for i, extra in ((0, gw1), (2, gw2), (4, gw3)):
        grads[i] += extra
    return grads


def floor_grads(mm, name, p, x, y, scale):
    """The gradients of scale·(the member's loss), by hand: the penalties by ``_penalty_grads``, the
    perturbed-point members as scale·(w₀·∇L(x) + w₁·∇L(x + ε·sign g)) (L the batch mean)."""
    if name in PENALTIES:
        return _penalty_grads(mm, name, p, x, y, scale)
    w0, w1, eps = PERTURBED[name]
    n = x.dtype.type(len(y))
    z3, cache = _forward(mm, p, x)
    grads, g = _backward(mm, p, cache, _loss_grad(z3, y, x.dtype.type(scale * w0) / n), need_x=bool(w1))
    if w1:
        xa = np.sign(g)
        xa *= x.dtype.type(eps)
        xa += x
        z3, cache = _forward(mm, p, xa)
        perturbed, _ = _backward(mm, p, cache, _loss_grad(z3, y, x.dtype.type(scale * w1) / n), need_x=False)
        for a, b in zip(grads, perturbed):
            a += b
    return grads


def floor_step(mm, name, p, x, y, lr):
    """One hand-written bare step: the gradients seeded with lr, then p -= g in place."""
    for q, g in zip(p, floor_grads(mm, name, p, x, y, lr)):
        q -= g


def check_agreement(names=MEMBERS, batch=16, seed=0, rtol=1e-12):
    """{member: largest relative difference} between the hand-written gradients and the engine's, in
    float64 from the same weights; AssertionError naming the member if one exceeds rtol."""
    out = {}
    for name in names:
        model = maxout_mlp(seed=seed, dtype=np.float64)
        params = model.parameters()
        x, y = data(batch, np.float64, seed=seed + 1)
        _, [(_, engine)] = mg_objective(name, model, params, x, y, scale=0.5)
        hand = floor_grads(Products(time.perf_counter), name, [q.data.copy() for q in params], x, y, 0.5)
        out[name] = max(float(np.abs(a - b.data).max() / np.abs(b.data).max()) for a, b in zip(hand, engine))
        if out[name] > rtol:
            raise AssertionError(f"numpy_floor: the hand-written {name} step differs from the engine's "
                                 f"by {out[name]:.2e} (relative) > {rtol:.0e}")
    return out


def measure(name, batch, steps, rounds, clock, lr=0.01):
    """(engine, floor): each step's non-GEMM time in seconds, paired with its own products, interleaved."""
    profile_step.clock = clock
    model = maxout_mlp(seed=0)
    params = model.parameters()
    hand = [q.data.copy() for q in params]
    x, y = data(batch, np.float32, seed=1)
    mm = Products(clock)
    for _ in range(3):  # warm up both, and let gemm.py measure its choices
        profile_step.step_parts(name, model, params, x, y, lr)
        floor_step(mm, name, hand, x, y, lr)
    engine, floor = [], []
    for r in range(rounds):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            if side == 0:
                engine += profile_step._non_gemm_paired(name, model, params, x, y, lr, steps)
                continue
            for _ in range(steps):
                mm.spent = 0.0
                t0 = clock()
                floor_step(mm, name, hand, x, y, lr)
                floor.append(clock() - t0 - mm.spent)
    return np.array(engine), np.array(floor)


def _positive(text):
    """An argparse type: an integer ≥ 1, or one line naming the value."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", default=",".join(MEMBERS))
    p.add_argument("--batch", type=_positive, default=128)
    p.add_argument("--steps", type=_positive, default=40, help="steps per side per round (default 40)")
    p.add_argument("--rounds", type=_positive, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--clock", choices=("thread", "wall"), default="thread",
                   help="thread: this thread's CPU time (default; needs OPENBLAS_NUM_THREADS=1); wall")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.members.split(",")]
    unknown = [n for n in names if n not in MEMBERS]
    if unknown:
        sys.exit(f"numpy_floor: no hand-written step for {unknown[0]!r}; choose from {','.join(MEMBERS)}")
    if args.clock == "thread" and os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        sys.exit("numpy_floor: --clock thread needs OPENBLAS_NUM_THREADS=1 (the BLAS work must run on this thread)")
    mg.keep_freed_memory()
    import machine_info  # beside this script
    print("\n".join(machine_info.lines(int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))))
    agreement = check_agreement(names)
    print("float64 agreement, hand-written vs engine gradients (largest relative difference): "
          + ", ".join(f"{n} {d:.1e}" for n, d in agreement.items()))
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    print(f"batch {args.batch}; clock {args.clock}; {args.rounds} rounds x {args.steps} steps per side; "
          "non-GEMM time per step, median [quartiles] ms")
    print(f"{'member':16s} {'engine':>22s} {'NumPy by hand':>22s} {'engine / hand':>14s}")
    for name in names:
        engine, floor = measure(name, args.batch, args.steps, args.rounds, clock)
        q = lambda v: f"{np.median(v) * 1e3:6.3f} [{np.percentile(v, 25) * 1e3:.3f}–{np.percentile(v, 75) * 1e3:.3f}]"  # noqa: E731
        print(f"{name:16s} {q(engine):>22s} {q(floor):>22s} {np.median(engine) / np.median(floor):13.2f}×",
              flush=True)


if __name__ == "__main__":
    main()
