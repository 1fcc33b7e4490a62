"""``python -m minigrad compare``: the regularizer family side by side.

Trains the same Maxout network (same architecture, seed, optimiser, epochs, batch size)
once per member of the family, then evaluates each on the clean test set and under
attack: FGM for p = ∞ (FGSM) and p = 2, and PGD for p = ∞, at several ε.  Writes into
``--out``: ``results.json`` (everything), ``results.md`` (the table), ``robustness.png``
(test error against ε, one line per member, one panel per attack), ``perturbations.png``
(the closed-form worst case r* for p = 1, 2, ∞ on a few test digits) and
``clean_vs_fgsm.png`` (clean against FGSM error per member).

Budgets.  Pixels lie in [0, 1].  ``--eps`` is the ℓ∞ training budget (default 0.1); the ℓ2
and ℓ1 budgets default to ε·√D/2 and ε·√D (D pixels), so on 8×8 digits ε = 0.1 gives
ε₂ = 0.4 and ε₁ = 0.8.  ℓ2 attack radii scale the same way.  Every strength is a flag,
and every value used is written to results.json.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

from . import datasets, nn, optim
from . import perturbations as P
from . import regularizers as R
from .backend import to_device
from .tensor import no_grad
from .cli import _blas_threads, _check_device, positive_float, positive_int, probability
from .train import evaluate, fit

MEMBERS = ("plain", "l1", "l2", "adv-p1", "adv-p2", "adv-pinf", "gp-q1", "gp-q2",
           "datagrad-l1", "datagrad-l2", "datagrad-l1-fd", "datagrad-l2-fd",
           "double-backprop", "multitask", "multitask+datagrad", "vat")


def budgets(args, n_features: int) -> dict:
    """Training budgets per norm, from --eps/--eps2/--eps1 (see the module docstring)."""
    root = math.sqrt(n_features)
    return {"inf": args.eps, "2": args.eps2 or args.eps * root / 2, "1": args.eps1 or args.eps * root}


def make_objective(name: str, model, b: dict, args):
    """The objective of member ``name``.  Strengths come from ``args``; see ``--help``."""
    eps, eps2, eps1 = b["inf"], b["2"], b["1"]
    beta1, beta2 = args.beta_l1, args.beta_l2
    table = {
        "plain": lambda: R.CrossEntropy(),
        "l1": lambda: R.CrossEntropy() + R.WeightDecay(l1=args.l1),
        "l2": lambda: R.CrossEntropy() + R.WeightDecay(l2=args.l2),
        "adv-p1": lambda: R.AdversarialTraining(eps1, 1, alpha=0.5),
        "adv-p2": lambda: R.AdversarialTraining(eps2, 2, alpha=0.5),
        "adv-pinf": lambda: R.AdversarialTraining(eps, np.inf, alpha=0.5),
        "gp-q1": lambda: R.GradientPenalty(args.gp_scale * eps, np.inf),
        "gp-q2": lambda: R.GradientPenalty(args.gp_scale * eps2, 2),
        "datagrad-l1": lambda: R.DataGrad(1.0, beta1, norm="l1", method="exact"),
        "datagrad-l2": lambda: R.DataGrad(1.0, beta2, norm="l2", method="exact"),
        "datagrad-l1-fd": lambda: R.DataGrad(1.0, beta1, norm="l1", method="finite_difference", step=eps),
        "datagrad-l2-fd": lambda: R.DataGrad(1.0, beta2, norm="l2", method="finite_difference", step=eps),
        "double-backprop": lambda: R.DoubleBackprop(beta2),
        "multitask": lambda: R.CrossEntropy() + R.Multitask.for_model(model, args.gamma, seed=args.seed),
        "multitask+datagrad": lambda: (R.DataGrad(1.0, beta1, norm="l1", method="exact")
                                       + R.Multitask.for_model(model, args.gamma, seed=args.seed)),
        "vat": lambda: R.CrossEntropy() + R.VirtualAdversarial(eps2, seed=args.seed),
    }
    return table[name]()


def attack_grid(n_features: int, quick: bool) -> dict:
    """Attack → list of ε.  ℓ2 radii scale with √D/8 (1 on 8×8 digits)."""
    s = math.sqrt(n_features) / 8
    if quick:
        return {"fgm-inf": [0.1], "fgm-2": [round(1.0 * s, 3)], "pgd-inf": [0.1]}
    return {"fgm-inf": [0.05, 0.1, 0.2], "fgm-2": [round(e * s, 3) for e in (0.25, 0.5, 1.0)],
            "pgd-inf": [0.05, 0.1, 0.2]}


def attack_error(model, data, attack: str, eps: float, args, chunk: int = 1000) -> float:
    """Test error on adversarial examples made against ``model`` itself (white box)."""
    model.eval()
    kind, p = attack.split("-")
    p = np.inf if p == "inf" else float(p)
    wrong = 0
    for start in range(0, len(data), chunk):
        x = to_device(data.x[start:start + chunk], model.device)
        y = to_device(data.y[start:start + chunk], model.device)
        if kind == "fgm":
            x_adv = P.fgm(model, x, y, eps, p, clip=(0.0, 1.0))
        else:
            x_adv = P.pgd(model, x, y, eps, p, steps=args.pgd_steps, step_size=2.5 * eps / args.pgd_steps,
                          clip=(0.0, 1.0))
        with no_grad():
            wrong += int((model(x_adv).data.argmax(axis=1) != y).sum())
    return wrong / len(data)


def build_model(args, n_features: int, n_classes: int):
    return nn.maxout_mlp(n_features, tuple(args.units), args.pieces, n_classes,
                         input_dropout=args.input_dropout, hidden_dropout=args.hidden_dropout,
                         seed=args.seed).to(args.device)


def train_member(name: str, train_set, test_set, args, grid: dict, stream) -> dict:
    model = build_model(args, train_set.x.shape[1], train_set.n_classes)
    b = budgets(args, train_set.x.shape[1])
    objective = make_objective(name, model, b, args)
    params = model.parameters() + objective.parameters()
    optimizer = optim.SGD(params, lr=args.lr, momentum=optim.LinearRamp(0.5, 0.7, args.epochs),
                          max_col_norm=args.max_col_norm)
    start = time.perf_counter()
    fit(model, objective, optimizer, train_set, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, progress=stream)
    seconds = time.perf_counter() - start
    clean = evaluate(model, test_set)
    result = {"member": name, "objective": repr(objective), "clean_error": clean.error,
              "clean_loss": clean.loss, "train_seconds": seconds, "attacks": {}}
    for attack, eps_list in grid.items():
        result["attacks"][attack] = {str(e): attack_error(model, test_set, attack, e, args) for e in eps_list}
    result["model"] = model
    return result


def run(args) -> int:
    _check_device(args)
    with _blas_threads(args.threads):
        return _run(args)


def _run(args) -> int:
    if args.quick:
        args.epochs = min(args.epochs, 5)
        args.members = args.members or ["plain", "adv-pinf", "gp-q1", "datagrad-l1-fd", "multitask+datagrad"]
    members = args.members or list(MEMBERS)
    train_set, test_set = datasets.load(args.data, args.data_dir)
    train_set, test_set = _head(train_set, args.train_size), _head(test_set, args.test_size)
    grid = attack_grid(train_set.x.shape[1], args.quick)
    os.makedirs(args.out, exist_ok=True)
    stream = sys.stderr if args.progress else None
    results, started = [], time.perf_counter()
    for k, name in enumerate(members, start=1):
        print(f"[{k}/{len(members)}] {name}", file=sys.stderr, flush=True)
        results.append(train_member(name, train_set, test_set, args, grid, stream))
    total = time.perf_counter() - started
    models = {r["member"]: r.pop("model") for r in results}
    table = markdown_table(results, grid)
    print(table)
    print(f"\ntotal {total:.1f} s for {len(members)} members")
    meta = {"data": args.data, "n_train": len(train_set), "n_test": len(test_set), "threads": args.threads,
            "budgets": budgets(args, train_set.x.shape[1]), "attacks": grid, "total_seconds": total,
            "config": {k: v for k, v in vars(args).items() if k not in ("func", "command")}}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1, default=str)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(f"# compare on {args.data}\n\n{table}\n\ntotal {total:.1f} s; budgets {meta['budgets']}\n")
    from . import plots  # matplotlib only now, and only if installed
    written = plots.compare_figures(results, grid, models, test_set, meta["budgets"], args.out)
    print("wrote", ", ".join(["results.json", "results.md"] + written), "to", args.out)
    return 0


def _head(data, n):
    """The first ``n`` examples (all if n is None)."""
    if not n or n >= len(data):
        return data
    return datasets.Dataset(data.x[:n], data.y[:n], data.n_classes, data.image_shape, data.name)


def markdown_table(results: list, grid: dict) -> str:
    columns = [(a, e) for a, eps_list in grid.items() for e in eps_list]
    head = "| member | clean | " + " | ".join(f"{a} ε={e}" for a, e in columns) + " | train s |"
    rule = "|" + "---|" * (len(columns) + 3)
    rows = [f"| {r['member']} | {r['clean_error']:.3f} | "
            + " | ".join(f"{r['attacks'][a][str(e)]:.3f}" for a, e in columns)
            + f" | {r['train_seconds']:.1f} |" for r in results]
    return "\n".join([head, rule] + rows)


def add_arguments(p):
    """Flags of ``python -m minigrad compare``."""
    p.add_argument("--data", choices=["digits", "mnist", "fashion-mnist"], default="digits",
                   help="dataset (default: the embedded 8×8 digits)")
    p.add_argument("--data-dir", default=None, help="directory of the four IDX files (mnist, fashion-mnist)")
    p.add_argument("--members", nargs="+", choices=MEMBERS, default=None, metavar="MEMBER",
                   help="which members to train (default: all): " + ", ".join(MEMBERS))
    p.add_argument("--epochs", type=positive_int, default=30, help="epochs per member (default 30)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="minibatch size (default 32)")
    p.add_argument("--lr", type=positive_float, default=0.05, help="SGD learning rate (default 0.05)")
    p.add_argument("--units", type=positive_int, nargs="+", default=[240, 240],
                   help="Maxout units per hidden layer (default 240 240)")
    p.add_argument("--pieces", type=positive_int, default=3, help="pieces per Maxout unit (default 3)")
    p.add_argument("--input-dropout", type=probability, default=0.0, help="input dropout rate (default 0)")
    p.add_argument("--hidden-dropout", type=probability, default=0.0, help="hidden dropout rate (default 0)")
    p.add_argument("--max-col-norm", type=positive_float, default=1.9365,
                   help="max column norm after each step (Maxout paper: 1.9365)")
    p.add_argument("--eps", type=positive_float, default=0.1, help="ℓ∞ training budget (default 0.1)")
    p.add_argument("--eps2", type=positive_float, default=None, help="ℓ2 training budget (default eps·√D/2)")
    p.add_argument("--eps1", type=positive_float, default=None, help="ℓ1 training budget (default eps·√D)")
    p.add_argument("--gp-scale", type=positive_float, default=1.0,
                   help="gradient penalty weight as a multiple of the budget (default 1)")
    p.add_argument("--beta-l1", type=positive_float, default=0.05,
                   help="DataGrad-L1 β (default 0.05 = (1−a)ε of Goodfellow's a = 0.5, ε = 0.1)")
    p.add_argument("--beta-l2", type=positive_float, default=0.01,
                   help="DataGrad-L2 and double backprop β (default 0.01)")
    p.add_argument("--l1", type=positive_float, default=1e-4, help="L1 weight decay (default 1e-4)")
    p.add_argument("--l2", type=positive_float, default=1e-3, help="L2 weight decay (default 1e-3)")
    p.add_argument("--gamma", type=positive_float, default=1.0, help="multitask reconstruction weight (default 1)")
    p.add_argument("--pgd-steps", type=positive_int, default=10, help="PGD iterations (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation, order and noise (default 0)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to compute (default cpu)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="BLAS threads (default 1: for these small matrices a second thread only adds "
                        "synchronisation; raise it for MNIST-sized runs on an idle machine)")
    p.add_argument("--out", default="runs/compare", help="output directory (default runs/compare)")
    p.add_argument("--train-size", type=positive_int, default=None,
                   help="train on the first N training examples only (default: all)")
    p.add_argument("--test-size", type=positive_int, default=None,
                   help="evaluate on the first N test examples only (default: all)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 5 members, at most 5 epochs, one attack budget each")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
