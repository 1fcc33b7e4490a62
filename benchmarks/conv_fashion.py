#!/usr/bin/env python
"""A real run: the small conv Maxout preset on a Fashion-MNIST subset, plain and three family members.

    OPENBLAS_NUM_THREADS=1 python benchmarks/conv_fashion.py --train 10000 --epochs 2 --out runs/conv_fashion

Members (compare.py's defaults for ε = 0.1, pixels in [0, 1]):

    plain        L
    adv-pinf     0.5·L(x) + 0.5·L(x + 0.1·sign g)                    (Goodfellow et al., p = ∞)
    gp-q1        L + 0.1·meanᵢ‖gᵢ‖₁                                    (gradient penalty, q = 1, exact)
    datagrad-l1  L + 0.05·meanᵢ‖gᵢ‖₁                                   (DataGrad-L1, exact)

Each: ``nn.conv_maxout('small')`` seed 0, SGD lr 0.05 momentum 0.5 with the preset's max norms, batch
128, the first ``--train`` images of a fixed permutation of the training set.  Reported on the first
``--test`` test images: clean error, FGSM error at ε = 0.1 (clip to [0, 1]) and PGD-10 ℓ∞ error at ε = 0.1
on the first ``--pgd`` of them.  Results are written to ``--out``/results.json after each member.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from minigrad import datasets, nn, optim, train
from minigrad import perturbations as P
from minigrad.members import Strengths, member

EPS = 0.1
STRENGTHS = Strengths(eps=EPS, beta_l1=0.05)  # compare's defaults: the library's members, by name
MEMBERS = ("plain", "adv-pinf", "gp-q1", "datagrad-l1")


def subset(data, n, seed=0):
    idx = np.random.default_rng(seed).permutation(len(data))[:n]
    return datasets.Dataset(data.x[idx], data.y[idx], data.n_classes, data.image_shape, data.name)


def attack_error(model, data, attack, chunk=500):
    wrong = 0
    model.eval()
    for start in range(0, len(data), chunk):
        x, y = data.x[start:start + chunk], data.y[start:start + chunk]
        if attack == "fgsm":
            x_adv = P.fgsm(model, x, y, EPS, clip=(0.0, 1.0))
        else:
            x_adv = P.pgd(model, x, y, EPS, np.inf, steps=10, step_size=2.5 * EPS / 10, clip=(0.0, 1.0))
        wrong += int((model(x_adv).numpy().argmax(axis=1) != y).sum())
    return wrong / len(data)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=int, default=10000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--pgd", type=int, default=500)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--members", nargs="+", default=list(MEMBERS), choices=list(MEMBERS))
    p.add_argument("--out", default="runs/conv_fashion")
    args = p.parse_args()
    train_set, test_set = datasets.load_fashion_mnist()
    train_set, test_set = subset(train_set, args.train), subset(test_set, args.test, seed=1)
    os.makedirs(args.out, exist_ok=True)
    results = {"args": vars(args), "members": {}}
    for name in args.members:
        model = nn.conv_maxout("small", seed=0)
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
        t0 = time.perf_counter()
        train.fit(model, member(name, model, STRENGTHS, n_features=train_set.x.shape[1]), optimizer, train_set, epochs=args.epochs, batch_size=128,
                  progress=False)
        seconds = time.perf_counter() - t0
        row = {"train_s": round(seconds, 1), "clean": train.evaluate(model, test_set).error,
               "fgsm": attack_error(model, test_set, "fgsm"),
               "pgd10": attack_error(model, subset(test_set, args.pgd, seed=2), "pgd")}
        results["members"][name] = row
        print(f"{name:<12} train {row['train_s']:7.1f} s  clean {row['clean']:.3f}  FGSM(0.1) {row['fgsm']:.3f}  "
              f"PGD-10(0.1) {row['pgd10']:.3f}", flush=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
