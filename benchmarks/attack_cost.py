"""What a robust error costs: the strong suite against PGD-10 and against ART's AutoAttack, in one run.

One model, one set of examples, three evaluations, each timed and reported per 1000 examples:

- minigrad's strong suite (``robust.robust_error``, its default effort: PGD-CE and PGD-margin 50 steps
  × 2 restarts, APGD-CE 50 steps, APGD-T 50 steps × 3 targets, Square 1000 queries; every attack on
  every example);
- PGD-10, the iterative half of the fast suite (``attacks.pgd``, 10 steps from x, α = 2.5ε/10);
- ART 1.20.1's AutoAttack with its default attacks (APGD-CE and APGD-DLR 5 × 100 steps, DeepFool,
  Square 5 × 5000 queries, each on the examples still robust) on the PyTorch twin of the same network
  (float32, ``torch.set_num_threads`` = the same thread count).

The network is the Maxout MLP 784 → 240×3 → 240×3 → 10, trained for ``--epochs`` with FGSM adversarial
training (p = ∞, ε = 0.1: a model on which attacks have work to do); the data are the 8×8 digits
blown up to 28×28 (each pixel a 3×3 block, a 2-pixel border), so no download is needed: trained on
the first 797 of the 1797 digits (shuffled with seed 0), attacked on up to ``--n`` of the other 1000.
The budget is ℓ∞ ε = 0.1.  The table names the CPU, the BLAS and its kernel, the threads and the date.

ART's default AutoAttack is the slow part: on 200 examples, on a 2-core machine shared with other jobs
(2026-12-06), its APGD-CE took 151 s, APGD-DLR 106 s, DeepFool 82 s and the first of Square's five
restarts 651 s (it predicts on every example at each of its 5000 queries); the strong suite took 40 s.

    python benchmarks/attack_cost.py                     # 1000 examples, 2 threads: hours (ART)
    python benchmarks/attack_cost.py --n 200             # a rougher number, sooner
    python benchmarks/attack_cost.py --quick             # a smoke run: seconds, numbers meaningless
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

from minigrad import attacks as A
from minigrad import datasets, nn, optim, train
from minigrad import regularizers as R
from minigrad import robust as RB

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine_info  # noqa: E402  (benchmarks/machine_info.py, beside this script)

EPS = 0.1


def digits_28(seed=0):
    """The 1797 digits as 28×28 images in [0, 1], shuffled: (x float32 (1797, 784), y int64)."""
    train_set, test_set = datasets.load("digits")
    x = np.concatenate([train_set.x, test_set.x]).reshape(-1, 8, 8)
    y = np.concatenate([train_set.y, test_set.y])
    big = np.pad(np.kron(x, np.ones((3, 3), np.float32)), ((0, 0), (2, 2), (2, 2)))
    order = np.random.default_rng(seed).permutation(len(y))
    return big.reshape(len(y), 784)[order].astype(np.float32), y[order]


def trained_model(x, y, epochs, units=(240, 240)):
    model = nn.maxout_mlp(784, units, 3, 10, seed=0)
    data = datasets.Dataset(x, y, n_classes=10, image_shape=(28, 28), name="digits-28")
    train.fit(model, R.AdversarialTraining(EPS), optim.SGD(model.parameters(), lr=0.05, momentum=0.5), data,
              epochs=epochs, batch_size=32, progress=False)
    return model.eval()


def torch_twin(model):
    """The same network in PyTorch (float32): Linear weights transposed, Maxout as a view and a max."""
    import torch

    class Maxout(torch.nn.Module):
        def __init__(self, linear, pieces):
            super().__init__()
            self.linear, self.pieces = linear, pieces

        def forward(self, x):
            z = self.linear(x)
            return z.view(len(x), self.pieces, -1).max(dim=1).values

    layers = [torch.nn.Flatten()]
    for layer in model.layers:
        lin = torch.nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(layer.weight.data).T.copy()))
            lin.bias.copy_(torch.from_numpy(np.asarray(layer.bias.data).copy()))
        layers.append(Maxout(lin, layer.pieces) if isinstance(layer, nn.Maxout) else lin)
    return torch.nn.Sequential(*layers).eval()


def art_autoattack(model, x, y, threads, quick):
    """(error, seconds) of ART's AutoAttack on the twin; its default attacks unless ``quick``."""
    import torch
    from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier
    torch.set_num_threads(threads)
    np.random.seed(0)
    classifier = PyTorchClassifier(torch_twin(model), loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
                                   nb_classes=10, clip_values=(0.0, 1.0))
    attacks = None if not quick else [AutoProjectedGradientDescent(
        classifier, norm=np.inf, eps=EPS, eps_step=2 * EPS, max_iter=2, nb_random_init=1, verbose=False)]
    auto = AutoAttack(classifier, norm=np.inf, eps=EPS, eps_step=2 * EPS, attacks=attacks, batch_size=500)
    start = time.perf_counter()
    x_adv = auto.generate(x.reshape(-1, 1, 28, 28), y)
    seconds = time.perf_counter() - start
    return float((A.logits(model, x_adv.reshape(x.shape).astype(x.dtype)).argmax(1) != y).mean()), seconds


def machine(threads) -> list:
    """CPU (lscpu's model name), BLAS and its kernel (threadpoolctl), OS, threads, date."""
    return machine_info.lines(threads)


def run(n, epochs, threads, quick, with_art=True) -> dict:
    """{evaluation: (error, seconds, seconds per 1000 examples)} and the machine lines."""
    x, y = digits_28()
    units = (16, 16) if quick else (240, 240)
    model = trained_model(x[:797] if not quick else x[:64], y[:797] if not quick else y[:64], epochs, units)
    xa, ya = x[797:797 + n], y[797:797 + n]
    effort = dict(steps=2, restarts=1, queries=5, n_targets=1) if quick else {}
    rows = {}
    start = time.perf_counter()
    strong = RB.robust_error(model, xa, ya, EPS, math.inf, "strong", image_shape=(28, 28), **effort)
    rows["minigrad strong suite"] = (strong.error, time.perf_counter() - start)
    print(f"strong suite: {rows['minigrad strong suite']}, per attack {strong.seconds}", flush=True)
    start = time.perf_counter()
    x_adv = A.pgd(model, xa, ya, EPS, math.inf, steps=10, restarts=1, random_start=False)
    rows["minigrad PGD-10"] = (float((A.logits(model, x_adv).argmax(1) != ya).mean()), time.perf_counter() - start)
    print(f"PGD-10: {rows['minigrad PGD-10']}", flush=True)
    if with_art:
        rows["ART AutoAttack (default)" if not quick else "ART AutoAttack (quick)"] = art_autoattack(
            model, xa, ya, threads, quick)
    return {"rows": {k: (e, s, 1000 * s / len(xa)) for k, (e, s) in rows.items()}, "n": len(xa),
            "strong": strong, "machine": machine(threads)}


def table(result) -> str:
    lines = [f"| evaluation (ℓ∞ ε = {EPS}, {result['n']} examples) | error % | s | s per 1000 examples |",
             "|---|---|---|---|"]
    lines += [f"| {k} | {100 * e:.1f} | {s:.1f} | {per:.1f} |" for k, (e, s, per) in result["rows"].items()]
    rows = result["rows"]
    art = next((v for k, v in rows.items() if k.startswith("ART")), None)
    if art:
        lines.append(f"\nratio strong suite / ART AutoAttack: {rows['minigrad strong suite'][1] / art[1]:.2f}")
    lines.append("strong suite per attack (s): " + ", ".join(f"{a} {s:.1f}" for a, s in result["strong"].seconds.items()))
    return "\n".join(lines + [""] + result["machine"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="examples attacked (at most 1000)")
    p.add_argument("--epochs", type=int, default=5, help="epochs of FGSM adversarial training")
    p.add_argument("--threads", type=int, default=2, help="BLAS and torch threads")
    p.add_argument("--no-art", action="store_true", help="skip ART (not installed, or not wanted)")
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, numbers meaningless")
    args = p.parse_args(argv)
    n, epochs = (8, 1) if args.quick else (min(args.n, 1000), args.epochs)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=args.threads):
            result = run(n, epochs, args.threads, args.quick, not args.no_art)
    else:
        result = run(n, epochs, args.threads, args.quick, not args.no_art)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
