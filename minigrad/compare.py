"""``python -m minigrad compare``: the regularizer family side by side.

Trains the same Maxout network (same architecture, seed, optimiser, epochs, batch size) once per
member of the family, then evaluates each on the clean test set and under white-box attack: FGSM
(the fast gradient method for p = ∞), FGM for p = 2 and PGD for p = ∞, at several ε.

Nothing is lost.  Every flag is checked before the first member trains, and the output directory
is checked to be writable.  Each member's result is appended to ``results.jsonl`` (and its model
to ``models/<member>.npz``) as soon as it finishes, so a crash in member 12, or in the plots,
loses nothing; running the same command again with the same ``--out`` skips the members already
done (``--overwrite`` starts again; other settings in the same ``--out`` are refused).  At the end
it writes ``results.json`` (everything), ``results.md`` (the table, errors in percent),
``robustness.png`` (test error against ε, one line per member, one panel per attack; members with
identical results drawn as one line), ``perturbations.png`` (the closed-form worst case r* for
p = 1, 2, ∞ on a few test digits) and ``clean_vs_fgsm.png``.

Budgets.  Pixels lie in [0, 1].  ``--eps`` is the ℓ∞ training budget (default 0.1); the ℓ2 and
ℓ1 budgets default to ε·√D/2 and ε·√D (D pixels), so on 8×8 digits ε = 0.1 gives ε₂ = 0.4 and
ε₁ = 0.8.  ℓ2 attack radii scale the same way.  Every strength is a flag, and every value used
is written to results.json.
"""
from __future__ import annotations

import dataclasses

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import datasets
from . import experiment as X
from . import perturbations as P
from .backend import to_device
from .checkpoint import load_checkpoint, save_checkpoint, write_atomically
from .errors import OutputError
from .members import FAMILY, MEMBERS, Strengths, member
from .tensor import no_grad
from .train import evaluate, fit
from .verdicts import unstable

def strengths(args) -> Strengths:
    """The members' strengths, from the flags."""
    return Strengths(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Strengths)})


def attack_grid(n_features: int, quick: bool) -> dict:
    """Attack → list of ε.  ℓ2 radii scale with √D/8 (1 on 8×8 digits)."""
    s = math.sqrt(n_features) / 8
    if quick:
        return {"fgsm": [0.1], "fgm-l2": [round(1.0 * s, 3)], "pgd-linf": [0.1]}
    return {"fgsm": [0.05, 0.1, 0.2], "fgm-l2": [round(e * s, 3) for e in (0.25, 0.5, 1.0)],
            "pgd-linf": [0.05, 0.1, 0.2]}


ATTACKS = {"fgsm": ("fgm", np.inf), "fgm-l2": ("fgm", 2.0), "pgd-linf": ("pgd", np.inf),
           "fgm-l1": ("fgm", 1.0)}  # fgm-l1: used by sweep (each p under its own ball)


def attack_error(model, data, attack: str, eps: float, args, chunk: int = 1000) -> float:
    """Test error on adversarial examples made against ``model`` itself (white box)."""
    model.eval()
    kind, p = ATTACKS[attack]
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


def train_member(name: str, train_set, test_set, args, grid: dict, stream) -> tuple[dict, object]:
    """Train member ``name`` as every other member is trained; return (its result, its model)."""
    model = X.build_model(args, train_set.image_shape, train_set.n_classes)
    objective = member(name, model, strengths(args), n_features=train_set.x.shape[1])
    optimizer = X.build_optimizer(args, model.parameters() + objective.parameters())
    start = time.perf_counter()
    history = fit(model, objective, optimizer, train_set, epochs=args.epochs, batch_size=args.batch_size,
                  seed=args.seed, progress=stream)
    seconds = time.perf_counter() - start
    clean = evaluate(model, test_set)
    curve = [h["train_loss"] for h in history]  # a run whose loss rises far above its own minimum is
    result = {"member": name, "objective": repr(objective), "clean_error": clean.error,  # marked unstable
              "clean_loss": clean.loss, "train_seconds": seconds, "train_loss": curve,
              "unstable": unstable(curve), "attacks": {}}
    for attack, eps_list in grid.items():
        result["attacks"][attack] = {str(e): attack_error(model, test_set, attack, e, args) for e in eps_list}
    return result, model


# What a member's result depends on: a rerun into the same --out reuses a result only if all agree.
_NOT_CONFIG = ("members", "out", "threads", "quiet", "overwrite", "device")


def _config(args, n_train: int, n_test: int) -> dict:
    config = {k: v for k, v in X.settings(args).items() if k not in _NOT_CONFIG}
    return {**config, "n_train": n_train, "n_test": n_test}


def _done(out: Path, config: dict) -> dict:
    """Members already finished in ``out/results.jsonl`` with this config (a torn last line, from a
    crash mid-write, is ignored: that member runs again)."""
    path, done = out / "results.jsonl", {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("config") != config:
            changed = sorted(k for k in set(config) | set(record.get("config", {}))
                             if config.get(k) != record.get("config", {}).get(k))
            raise OutputError(f"--out {out} holds results made with other settings ({', '.join(changed[:5])} "
                              "differ); use another --out, or --overwrite to start again")
        if (out / "models" / f"{record['member']}.npz").exists():
            done[record["member"]] = record["result"]
    return done


def _append(path: Path, record: dict):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run(args) -> int:
    X.check_device(args.device)
    if args.quick:
        args.epochs = min(args.epochs, 5)
        args.members = args.members or ["plain", "adv-pinf", "gp-q1", "datagrad-l1-fd", "multitask+datagrad"]
    members = list(dict.fromkeys(args.members or FAMILY))
    # Finished members are reused, not refused: only --overwrite moves them aside (to replaced/).
    out = X.prepare_out(args.out, ("results.jsonl", "models") if args.overwrite else (), overwrite=args.overwrite)
    train_set, test_set = X.load_dataset(args.data, args.data_dir)
    train_set, test_set = datasets.head(train_set, args.train_size), datasets.head(test_set, args.test_size)
    config = _config(args, len(train_set), len(test_set))
    done = _done(out, config)
    with X.blas_threads(args.threads):
        return _run(args, members, out, config, done, train_set, test_set)


def _run(args, members, out: Path, config: dict, done: dict, train_set, test_set) -> int:
    grid = attack_grid(train_set.x.shape[1], args.quick)
    stream = None if args.quiet else sys.stderr
    results, models, started = [], {}, time.perf_counter()
    (out / "models").mkdir(exist_ok=True)
    for k, name in enumerate(members, start=1):
        if name in done:
            print(f"[{k}/{len(members)}] {name}: done in an earlier run, reused", file=sys.stderr, flush=True)
            result, model = done[name], load_checkpoint(out / "models" / f"{name}.npz").model.to(args.device)
        else:
            print(f"[{k}/{len(members)}] {name}", file=sys.stderr, flush=True)
            result, model = train_member(name, train_set, test_set, args, grid, stream)
            save_checkpoint(out / "models" / f"{name}.npz", model, member=name)
            _append(out / "results.jsonl", {"member": name, "config": config, "result": result})
        results.append(result)
        models[name] = model
    total = time.perf_counter() - started
    table = markdown_table(results, grid)
    print(table)
    print(f"\ntotal {total:.1f} s for {len(members)} members")
    meta = {"data": args.data, "n_train": len(train_set), "n_test": len(test_set), "threads": args.threads,
            "budgets": strengths(args).budgets(train_set.x.shape[1]), "attacks": grid, "total_seconds": total,
            "config": config}
    write_atomically(out / "results.json", lambda f: f.write(
        json.dumps({"meta": meta, "results": results}, indent=1).encode()))
    b = meta["budgets"]
    write_atomically(out / "results.md", lambda f: f.write(
        (f"# compare on {args.data}\n\nTest error in percent, {len(test_set)} test examples; white-box attacks "
         f"at each ε.\n\n{table}\n\nTotal {total:.1f} s.  Training budgets: ℓ∞ ε = {b['inf']:g}, "
         f"ℓ2 ε = {b['2']:g}, ℓ1 ε = {b['1']:g}.\n").encode()))
    from . import plots  # matplotlib only now, and only if installed
    written = plots.compare_figures(results, grid, models, test_set, b, str(out))
    print("wrote", ", ".join(["results.jsonl", "results.json", "results.md"] + written), "to", out)
    return 0


def markdown_table(results: list, grid: dict) -> str:
    """One row per member: clean and attacked test error in percent, and the training time; a member whose
    training loss rose far above its own minimum (``verdicts.unstable``) is marked "(unstable)": its last
    epoch is not its verdict."""
    columns = [(a, e) for a, eps_list in grid.items() for e in eps_list]
    head = "| member | clean % | " + " | ".join(f"{a} ε={e} %" for a, e in columns) + " | train s |"
    rule = "|" + "---|" * (len(columns) + 3)
    rows = [f"| {r['member']}{' (unstable)' if r.get('unstable') else ''} | {100 * r['clean_error']:.1f} | "
            + " | ".join(f"{100 * r['attacks'][a][str(e)]:.1f}" for a, e in columns)
            + f" | {r['train_seconds']:.1f} |" for r in results]
    return "\n".join([head, rule] + rows)


def add_arguments(p):
    """Flags of ``python -m minigrad compare`` (the data, model, optimiser and run flags are
    ``experiment``'s, shared with ``train``; only the defaults differ)."""
    X.add_data_arguments(p, valid=False)
    g = p.add_argument_group("members and strengths")
    g.add_argument("--members", nargs="+", choices=MEMBERS, default=None, metavar="MEMBER",
                   help="which members to train (none given: the seeds' family, " + ", ".join(FAMILY)
                        + "); the neighbours " + ", ".join(MEMBERS[len(FAMILY):]) + " train when named")
    g.add_argument("--eps", type=X.pixel_budget, default=Strengths.eps, help="ℓ∞ training budget")
    g.add_argument("--eps2", type=X.positive_float, default=None, help="ℓ2 training budget (none given: eps·√D/2)")
    g.add_argument("--eps1", type=X.positive_float, default=None, help="ℓ1 training budget (none given: eps·√D)")
    g.add_argument("--gp-scale", type=X.positive_float, default=Strengths.gp_scale,
                   help="gradient penalty weight as a multiple of the budget")
    g.add_argument("--beta-l1", type=X.positive_float, default=Strengths.beta_l1,
                   help="DataGrad-L1 β (0.05 = (1−a)ε of Goodfellow's a = 0.5, ε = 0.1)")
    g.add_argument("--beta-l2", type=X.positive_float, default=Strengths.beta_l2, help="DataGrad-L2 and double backprop β")
    g.add_argument("--beta-jac", type=X.positive_float, default=Strengths.beta_jac,
                   help="JacReg and SpectReg λ (Varga et al.)")
    g.add_argument("--l1", type=X.positive_float, default=Strengths.l1, help="L1 weight decay")
    g.add_argument("--l2", type=X.positive_float, default=Strengths.l2, help="L2 weight decay")
    g.add_argument("--gamma", type=X.positive_float, default=Strengths.gamma, help="multitask reconstruction weight")
    g.add_argument("--pgd-steps", type=X.positive_int, default=10, help="PGD iterations")
    X.add_model_arguments(p, pieces=3)
    X.add_optimizer_arguments(p, epochs=30, batch_size=32, lr=0.05, adam=False)
    X.add_run_arguments(p, out="runs/compare", threads=1)
    g = p.add_argument_group("size of the run")
    g.add_argument("--train-size", type=X.positive_int, default=None,
                   help="train on the first N training examples only (none given: all)")
    g.add_argument("--test-size", type=X.positive_int, default=None,
                   help="evaluate on the first N test examples only (none given: all)")
    g.add_argument("--quick", action="store_true",
                   help="a smoke run: 5 members, at most 5 epochs, one attack budget each")
    g.add_argument("--overwrite", action="store_true",
                   help="train every member again, even those already done in --out")
