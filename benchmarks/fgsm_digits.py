"""How much adversarial training lowers FGSM error on the embedded digits: a measurement, not a test.

Trains a Maxout 64-32x3-10 for ``--epochs`` epochs (default 30) of plain minibatch SGD (lr 0.1,
batch 32, seed 0) with three members of the family (plain, adv-pinf, gp-q1 at eps = 0.1) and
prints the test error on clean inputs and on FGSM inputs at eps = 0.1 and 0.2 (clipped to [0, 1]).
It used to live in tests/test_regularizers.py; the robust fact it shows (adv-pinf's FGSM error is
well below plain's) is stated at the end.  Needs scikit-learn (the digits).

    python benchmarks/fgsm_digits.py [--epochs 30]
"""
from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
from minigrad import datasets, nn
from minigrad import perturbations as P
from minigrad import regularizers as R


def sgd(objective, train, epochs, lr=0.1, batch_size=32, seed=0):
    model = nn.maxout_mlp(64, (32,), 3, 10, seed=seed)
    params = model.parameters() + objective.parameters()
    order = np.random.default_rng(seed)
    for _ in range(epochs):
        for xb, yb in datasets.minibatches(train, batch_size, seed=order):
            for p, g in zip(params, mg.grad(objective(model, xb, yb), params, allow_unused=True)):
                if g is not None:
                    p.data -= lr * g.data
    return model


def fgsm_error(model, data, eps):
    x_adv = P.fgsm(model, data.x, data.y, eps, clip=(0, 1)) if eps else data.x
    with mg.no_grad():
        return float(np.mean(model(mg.Tensor(x_adv)).numpy().argmax(1) != data.y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    train, test = datasets.load_digits()
    rows = {}
    for objective in (R.CrossEntropy(), R.AdversarialTraining(0.1, np.inf), R.GradientPenalty(0.1, np.inf)):
        model = sgd(objective, train, args.epochs)
        rows[objective.name] = [fgsm_error(model, test, e) for e in (0.0, 0.1, 0.2)]
    print(f"digits test error, maxout 64-32x3-10, {args.epochs} epochs SGD lr 0.1 batch 32, seed 0")
    print(f"{'member':<12}{'clean':>8}{'fgsm .1':>9}{'fgsm .2':>9}")
    for name, (e0, e1, e2) in rows.items():
        print(f"{name:<12}{e0:>8.3f}{e1:>9.3f}{e2:>9.3f}")
    plain, adv = rows["plain"], rows["adv-pinf"]
    print("adv-pinf below 0.8 x plain's FGSM error at both eps:", adv[1] < 0.8 * plain[1] and adv[2] < 0.8 * plain[2])


if __name__ == "__main__":
    main()
