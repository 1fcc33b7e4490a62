"""The command line's flags, and the one place where a parsed argparse Namespace becomes specs.

Each command declares here exactly the flags its specs can honour, and ``*_spec(args)`` turns the
parsed flags into the frozen dataclasses of ``specs`` (and the command's own spec); nothing below this
module ever sees a Namespace.  Every flag's type is a ``validate`` function, so a flag accepts exactly
what the Python argument it feeds accepts, and a bad value is refused by the parser, before any work.

A flag whose default depends on another flag (``--quick``'s smaller run, the momentum of SGD) has the
default None here and is resolved when the spec is built, so a value the user typed always wins and a
flag that cannot apply (``--momentum`` with Adam) is refused instead of ignored.

(At the ~400-line guide: every command's flags are declared here, side by side, so that what each command
offers and what its specs honour can be read in one place.)
"""
from __future__ import annotations

import argparse
import os
import shlex

from . import datasets, nn, optim, validate
from .compare import QUICK_MEMBERS as COMPARE_QUICK, CompareSpec
from .errors import InvalidArgument
from .recipes import REGISTRY as RECIPES
from .reproduce import ReproduceSpec
from .members import DEFAULT_GRIDS, FAMILY, KNOBS, MEMBERS, NEIGHBOURS, Strengths
from .specs import ARCHITECTURES, DATASETS, DataSpec, ModelSpec, OptimSpec, RunSpec
from .sweep import QUICK_MEMBERS as SWEEP_QUICK, SweepSpec
from .validate import fmt


# --- flag types: a bad value becomes an argparse error naming the flag and the value --------------
def flag(kind, check, expected: str):
    """An argparse type: convert the text with ``kind``, then ``check(value)`` (a validator that
    raises InvalidArgument); the error says ``expected`` and repeats the text given."""
    def parse(text):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            return check(value)
        except InvalidArgument:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}") from None
    parse.__name__ = expected  # argparse names the type in some messages
    return parse


# Counts are bounded by what a run can use: 10⁶ epochs, steps or units is already beyond any machine's
# patience or memory, and an unbounded count (1e23 epochs) would run "forever" instead of being refused.
MAX_COUNT = 10**6
positive_int = flag(int, lambda v: validate.integer(v, "value", "flag", low=1, high=MAX_COUNT),
                    f"an integer in [1, {MAX_COUNT}]")
non_negative_int = flag(int, lambda v: validate.integer(v, "value", "flag", low=0, high=MAX_COUNT),
                        f"an integer in [0, {MAX_COUNT}]")
seed = flag(int, lambda v: validate.integer(v, "seed", "flag", low=0, high=2**63 - 1), "an integer >= 0")
positive_float = flag(float, lambda v: validate.number(v, "value", "flag", low=0, open_low=True),
                      "a finite number > 0")
non_negative_float = flag(float, lambda v: validate.number(v, "value", "flag", low=0), "a finite number >= 0")
probability = flag(float, lambda v: validate.probability(v, "value", "flag"), "a number in [0, 1)")
decay_factor = flag(float, lambda v: validate.number(v, "value", "flag", low=0, high=1, open_low=True),
                    "a number in (0, 1]")
pixel_budget = flag(float, lambda v: validate.number(v, "eps", "flag", low=0, high=1, open_low=True),
                    "a number in (0, 1] (pixels lie in [0, 1])")


def _or(value, default):
    return default if value is None else value


# --- the flags several commands share -------------------------------------------------------------
def add_data_arguments(p, valid=True, choices=DATASETS):
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=choices, default="digits",
                   help="digits (8x8, bundled with scikit-learn), mnist, fashion-mnist (IDX files), cifar10 "
                        "(the python-version batches, read without unpickling code)")
    g.add_argument("--data-dir", metavar="DIR", default=None,
                   help=f"directory holding the four IDX files or CIFAR-10's batches (default: "
                        f"${datasets.DATA_ENV}, or {datasets.FASHION_MNIST_DIR} for fashion-mnist)")
    if valid:
        g.add_argument("--valid-fraction", type=probability, default=0.0, metavar="F",
                       help="hold out this fraction of the training set for validation (0: none)")
    return g


def add_model_arguments(p, pieces: int, units_note: str = ""):
    g = p.add_argument_group("model: a Maxout MLP, in -> Maxout(units x pieces) ... -> linear logits, "
                             "or a convolutional Maxout network")
    g.add_argument("--arch", choices=ARCHITECTURES, default="mlp",
                   help="mlp: the Maxout MLP below; conv: the convolutional Maxout network of --conv-preset")
    g.add_argument("--conv-preset", choices=tuple(nn.PRESETS), default="small",
                   help="small: 2 conv-maxout layers for 28x28 digits in minutes; cifar10: the Maxout paper's "
                        "CIFAR-10 network (three conv-maxout layers, dense Maxout 500x5)")
    g.add_argument("--units", type=positive_int, nargs="+", default=None, metavar="N",
                   help=f"Maxout units of each hidden layer (default: 240 240{units_note})")
    g.add_argument("--pieces", type=positive_int, default=pieces, metavar="K", help="linear pieces per Maxout unit")
    g.add_argument("--input-dropout", type=probability, default=0.0, metavar="P",
                   help="dropout rate of the input (the Maxout paper: 0.2)")
    g.add_argument("--hidden-dropout", type=probability, default=0.0, metavar="P",
                   help="dropout rate of each hidden layer (the Maxout paper: 0.5)")
    g.add_argument("--init-range", type=positive_float, default=None, metavar="R",
                   help="MLP weights ~ U(-R, R) (pylearn2's irange; the Maxout paper: 0.005; none given: 1/sqrt(fan-in))")


def add_optimizer_arguments(p, epochs: int, batch_size: int, lr: float, epochs_note: str = ""):
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd: momentum ramped linearly over the run (see --momentum); adam: Kingma & Ba")
    g.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help=f"passes over the training set (default: {epochs}{epochs_note})")
    g.add_argument("--batch-size", type=positive_int, default=batch_size, metavar="B", help="examples per step")
    g.add_argument("--lr", type=positive_float, default=lr, metavar="LR", help="learning rate")
    g.add_argument("--lr-decay", type=decay_factor, default=1.0, metavar="F",
                   help="multiply the learning rate by F after every epoch (1: constant)")
    g.add_argument("--momentum", type=probability, nargs=2, default=None, metavar=("START", "END"),
                   help="sgd only: momentum, ramped linearly from START to END over the epochs (default: 0.5 0.7)")
    g.add_argument("--max-col-norm", type=non_negative_float, default=optim.MAXOUT_MAX_COL_NORM, metavar="C",
                   help="bound the L2 norm of every weight column after each step (0: no bound)")
    p.set_defaults(default_epochs=epochs)
    return g


def add_run_arguments(p, out: str | None, threads: int | None, split: bool = False):
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=seed, default=0, help="seeds initialisation, dropout, the example order"
                   + (", the validation split" if split else "") + " and the regularizers' noise")
    g.add_argument("--out", metavar="DIR", default=out, help="output directory (created if missing)")
    g.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the arrays live")
    g.add_argument("--threads", type=positive_int, default=threads, metavar="N",
                   help="limit BLAS to N threads (1 is much faster for small models or on a busy machine)"
                        + ("" if threads else "; none given: the BLAS library's own choice, one per core"))
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


# --- the shared flags as specs ----------------------------------------------------------------------
def model_spec(args, units=(240, 240)) -> ModelSpec:
    return ModelSpec(arch=args.arch, conv_preset=args.conv_preset, units=tuple(_or(args.units, units)),
                     pieces=args.pieces, input_dropout=args.input_dropout, hidden_dropout=args.hidden_dropout,
                     init_range=args.init_range)


def optim_spec(args, epochs=None) -> OptimSpec:
    if args.optimizer == "adam" and args.momentum is not None:
        raise InvalidArgument("--momentum applies to --optimizer sgd only (Adam has its own betas)")
    return OptimSpec(optimizer=args.optimizer, epochs=_or(args.epochs, _or(epochs, args.default_epochs)),
                     batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay,
                     momentum=tuple(_or(args.momentum, (0.5, 0.7))), max_col_norm=args.max_col_norm)


def run_spec(args) -> RunSpec:
    return RunSpec(seed=args.seed, device=args.device, threads=args.threads, out=args.out, quiet=args.quiet)


def typed_command(command: str, argv) -> str:
    """The command exactly as typed, to be recorded beside its results."""
    return shlex.join(["python", "-m", "minigrad", command, *argv])


# --- train -------------------------------------------------------------------------------------------
def add_train_arguments(p):
    add_data_arguments(p)
    add_model_arguments(p, pieces=5)
    optimisation = add_optimizer_arguments(p, epochs=10, batch_size=100, lr=0.1)
    optimisation.add_argument(
        "--patience", type=positive_int, default=None, metavar="N",
        help="stop when the validation error has not improved for N epochs and keep the best epoch's "
             "parameters (needs --valid-fraction)")
    add_run_arguments(p, out=None, threads=None, split=True)
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last good checkpoint, with its own settings, "
                            "up to --epochs in all (bit for bit as if it had never stopped)")
    again.add_argument("--overwrite", action="store_true",
                       help="start again in an --out that holds a run (its files move to DIR/replaced/)")


def train_specs(args) -> tuple[DataSpec, ModelSpec, OptimSpec, RunSpec]:
    if args.patience is not None and not args.valid_fraction:
        raise InvalidArgument("--patience needs a validation set: add --valid-fraction, e.g. 0.1")
    data = DataSpec(name=args.data, dir=args.data_dir, valid_fraction=args.valid_fraction, split_seed=args.seed)
    return data, model_spec(args), optim_spec(args), run_spec(args)


# --- evaluate ----------------------------------------------------------------------------------------
def add_evaluate_arguments(p):
    p.add_argument("checkpoint", help="a checkpoint.npz written by `train --out`")
    p.add_argument("--data", choices=DATASETS, default=None, help="dataset (none given: the one it was trained on)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="directory holding the IDX files (none given: the one it was trained from)")
    p.add_argument("--batch-size", type=positive_int, default=1000, metavar="B", help="examples per forward pass")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the arrays live")


# --- compare -----------------------------------------------------------------------------------------
def add_suite_argument(g, what: str):
    g.add_argument("--suite", choices=("strong", "fast"), default="strong",
                   help=f"strong: PGD with restarts on the cross-entropy and the margin, APGD-CE, APGD-T (DLR), Square "
                        f"(minigrad.robust) for {what}; fast: the attack grid alone (FGSM, FGM, PGD-10)")


def add_diagnostics_argument(g):
    g.add_argument("--diagnostics", type=lambda t: 0 if t.strip() == "0" else positive_int(t), default=0, metavar="N",
                   help="record, every epoch, the signals that see a collapse coming (GradAlign's cosine, LLR's "
                        "linearity error, the input Hessian's top eigenvalue, FGSM and PGD error) on the first N "
                        "training examples (0: none; a few hundred is typical)")


def add_warmup_argument(g):
    g.add_argument("--warmup-epochs", type=non_negative_int, default=0,
                   metavar="E", help="ramp each member in from the plain loss over the first E epochs: "
                   "(1 − t)·L + t·L_member, t = (e − 1)/E at epoch e, the member alone from epoch E + 1 "
                   "(warmup.WarmUp; the remedy for a penalty that collapses, Zhao et al. 2024; 0: none)")


def _warmup(args, epochs: int) -> int:
    if args.warmup_epochs and args.warmup_epochs >= epochs:
        raise InvalidArgument(f"--warmup-epochs {args.warmup_epochs} leaves no epoch of the {epochs} at the member's "
                              f"full weight (it reaches it at epoch E + 1); give fewer, or more --epochs")
    return args.warmup_epochs


def add_strength_arguments(g):
    """One flag per field of ``Strengths`` (none given: the member's default at the data's D)."""
    g.add_argument("--eps", type=pixel_budget, default=None, help=f"ℓ∞ training budget (default: {Strengths.eps})")
    g.add_argument("--eps2", type=positive_float, default=None, help="ℓ2 training budget (none given: eps·√D/2)")
    g.add_argument("--eps1", type=positive_float, default=None, help="ℓ1 training budget (none given: eps·√D)")
    for name, what in (("gp_scale", "gradient penalty weight as a multiple of the budget"),
                       ("beta_l1", "DataGrad-L1 β (0.05 = (1−a)ε of Goodfellow's a = 0.5, ε = 0.1)"),
                       ("beta_l2", "DataGrad-L2 and double backprop β"),
                       ("beta_jac", "JacReg and SpectReg λ (Varga et al.)"),
                       ("l1", "L1 weight decay"), ("l2", "L2 weight decay"), ("gamma", "multitask reconstruction weight"),
                       ("beta_trades", "TRADES β (Zhang et al.)"), ("lam_align", "GradAlign λ (Andriushchenko & Flammarion)"),
                       ("lam_cure", "CURE λ (Moosavi-Dezfooli et al.)"), ("lam_llr", "LLR λ; its μ is 0.75·λ (Qin et al.)")):
        scaled = DEFAULT_SCALED.get(name)
        note = f"{fmt(getattr(Strengths, name))}" + (" × 64/D, D the input's features" if scaled else "")
        # GradAlign at λ = 0 is FGSM training alone (one step of ε from x, no clean term): the baseline it
        # is the remedy for, so --lam-align takes 0; every other weight is refused at 0 as before.
        zero = name == "lam_align"
        g.add_argument(f"--{name.replace('_', '-')}", type=non_negative_float if zero else positive_float, default=None,
                       help=f"{what} (default: {note}" + ("; 0: FGSM training alone, step ε from x)" if zero else ")"))


DEFAULT_SCALED = {knob: k for knob, _, k in DEFAULT_GRIDS.values() if knob and k}


def add_compare_arguments(p):
    add_data_arguments(p, valid=False)
    g = p.add_argument_group("members and strengths")
    g.add_argument("--members", nargs="+", choices=MEMBERS, default=None, metavar="MEMBER",
                   help="which members to train (none given: the seeds' family, " + ", ".join(FAMILY)
                        + "; with --quick, " + ", ".join(COMPARE_QUICK) + "); the neighbours "
                        + ", ".join(NEIGHBOURS) + " train when named")
    add_strength_arguments(g)
    g.add_argument("--pgd-steps", type=positive_int, default=10, help="PGD iterations of the attack grid")
    add_suite_argument(g, "each member's robust error at the training ε, with the masking flags")
    add_diagnostics_argument(g)
    add_warmup_argument(g)
    add_model_arguments(p, pieces=3)
    add_optimizer_arguments(p, epochs=30, batch_size=32, lr=0.05, epochs_note="; at most 5 with --quick")
    add_run_arguments(p, out="runs/compare", threads=1)
    g = p.add_argument_group("size of the run")
    g.add_argument("--train-size", type=positive_int, default=None,
                   help="train on the first N training examples only (none given: all)")
    g.add_argument("--test-size", type=positive_int, default=None,
                   help="evaluate on the first N test examples only (none given: all)")
    g.add_argument("--quick", action="store_true",
                   help="a smoke run: 5 members, 5 epochs, one attack budget each (flags given still rule)")
    g.add_argument("--overwrite", action="store_true",
                   help="train every member again, even those already done in --out")


def strength_overrides(args) -> dict:
    """The Strengths fields given as flags (the others take the member's default at the data's D)."""
    return {f: getattr(args, f) for f in Strengths.__dataclass_fields__ if f != "seed" and getattr(args, f) is not None}


def compare_spec(args, argv=()) -> CompareSpec:
    members = tuple(dict.fromkeys(args.members or (COMPARE_QUICK if args.quick else FAMILY)))
    optim = optim_spec(args, epochs=5 if args.quick else None)
    return CompareSpec(
        data=DataSpec(name=args.data, dir=args.data_dir, train_size=args.train_size, test_size=args.test_size),
        model=model_spec(args), optim=optim, run=run_spec(args),
        members=members, strengths=strength_overrides(args), pgd_steps=args.pgd_steps, suite=args.suite,
        diagnostics=args.diagnostics, warmup=_warmup(args, optim.epochs), quick=args.quick,
        overwrite=args.overwrite, command=typed_command("compare", argv))


# --- sweep -------------------------------------------------------------------------------------------
class GivenStrengths(tuple):
    """(member or None, (values...)) as parsed from one --strengths word; prints as that word."""

    def __str__(self):
        return ("" if self[0] is None else f"{self[0]}=") + ",".join(f"{v:g}" for v in self[1])


def strength_list(text: str) -> GivenStrengths:
    """A flag type: 'V,V' (every member) → (None, (V, V)); 'MEMBER=V,V' → (MEMBER, (V, V)).  A member
    with no strength to sweep, an empty name, and a value outside the knob's units are refused."""
    name, eq, values = text.partition("=")
    if not eq:
        name, values = None, text
    elif name not in MEMBERS:
        raise argparse.ArgumentTypeError(f"unknown member {name!r} in {text!r} (one of {', '.join(MEMBERS)})")
    elif KNOBS[name] is None:
        raise argparse.ArgumentTypeError(f"{name} has no strength to sweep (it is the plain loss); drop {text!r}")
    parsed = tuple(positive_float(v) for v in values.split(","))
    if name is not None and KNOBS[name] == "eps" and max(parsed) > 1:
        raise argparse.ArgumentTypeError(f"{name}'s strength is a pixel budget in (0, 1] (pixels lie in [0, 1]), "
                                         f"got {text}")
    return GivenStrengths((name, tuple(dict.fromkeys(parsed))))


def add_sweep_arguments(p):
    add_data_arguments(p, valid=False)
    g = p.add_argument_group("data split and size")
    g.add_argument("--valid-fraction", type=probability, default=0.2, metavar="F",
                   help="fraction of the training set held out for validation (choosing epochs and strengths)")
    g.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                   help="use the first N training examples (before the split; none given: all; 600 with --quick)")
    g.add_argument("--test-size", type=positive_int, default=None, metavar="N",
                   help="evaluate on the first N test examples (none given: all; 300 with --quick)")
    g = p.add_argument_group("members, strengths and seeds")
    g.add_argument("--members", nargs="+", choices=MEMBERS, default=None, metavar="MEMBER",
                   help="members to sweep (none given: all; with --quick, " + ", ".join(SWEEP_QUICK) + "): "
                        + ", ".join(MEMBERS))
    g.add_argument("--strengths", type=strength_list, nargs="+", default=None, metavar="S",
                   help="strengths used as given: numbers for every member, or MEMBER=V,V,... for one member "
                        "(a member not named: its default grid, penalty weights scaled by 64/D)")
    g.add_argument("--seeds", type=positive_int, default=None, metavar="N", help="seeds per strength (default: 3; "
                   "2 with --quick)")
    g.add_argument("--seed", type=seed, default=0, help="the first seed (seeds are SEED … SEED+N−1)")
    g.add_argument("--eps", type=pixel_budget, default=0.1,
                   help="ℓ∞ training budget, and the budget of the robust errors reported")
    g.add_argument("--pgd-steps", type=positive_int, default=None, help="PGD iterations (default: 10; 5 with --quick)")
    add_suite_argument(g, "the test split's robust error at --eps, and the verdicts side by side with the fast suite's")
    add_diagnostics_argument(g)
    add_warmup_argument(g)
    g.add_argument("--clean-budget", type=non_negative_float, default=None, metavar="POINTS",
                   help="clean validation error (percent) a member may reach at its chosen strength "
                        "(none given: plain's validation error + 1)")
    g.add_argument("--extend", type=lambda t: 0 if t.strip() == "0" else positive_int(t), default=None, metavar="N",
                   help="where the strength chosen is an end of the member's grid, try up to N more strengths "
                        "that way, one at a time (0: never; default: 2, 0 with --quick; see minigrad/grids.py)")
    add_model_arguments(p, pieces=3, units_note="; 48 48 with --quick")
    add_optimizer_arguments(p, epochs=30, batch_size=32, lr=0.05, epochs_note="; 8 with --quick")
    g = p.add_argument_group("execution")
    g.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="processes of the local pool (or LocalCluster workers), one BLAS thread each")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--serial", action="store_true", help="run the cells one after another in this process")
    where.add_argument("--dask", choices=("local",), default=None,
                       help="local: start a dask.distributed LocalCluster of --workers processes")
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://host:8786)")
    g = p.add_argument_group("run")
    g.add_argument("--out", metavar="DIR", default="runs/sweep",
                   help="output directory; finished cells in it are reused (the sweep resumes)")
    g.add_argument("--quick", action="store_true",
                   help="a smoke run: 5 members, two strengths, two seeds, tiny data and network, 8 epochs "
                        "(flags given still rule)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-cell lines")
    g.add_argument("--plan", action="store_true",
                   help="print the cells this command would run (member, strength, seed, finished or not) and "
                        "train nothing")


def sweep_spec(args, argv=()) -> SweepSpec:
    quick = args.quick
    seeds = _or(args.seeds, 2 if quick else 3)
    if args.seed + seeds - 1 > 2**63 - 1:
        raise InvalidArgument(f"--seed {args.seed} --seeds {seeds} runs past the largest seed 2**63 - 1")
    if not args.valid_fraction:
        raise InvalidArgument("--valid-fraction must be > 0: strengths and epochs are chosen on validation")
    if args.clean_budget is not None and args.clean_budget > 100:
        raise InvalidArgument(f"--clean-budget is in percent and must be <= 100, got {args.clean_budget:g}")
    if args.scheduler is not None:
        host, _, port = args.scheduler.rpartition("://")[2].rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgument(f"--scheduler must be an address like tcp://host:8786, got {args.scheduler!r}")
    members = tuple(dict.fromkeys(args.members or (SWEEP_QUICK if quick else MEMBERS)))
    given = tuple(args.strengths or ())
    named = [m for m, _ in given if m is not None]
    twice = sorted({m for m in named if named.count(m) > 1})
    if twice:
        raise InvalidArgument(f"--strengths names {', '.join(twice)} more than once: give all its values in one "
                              "word, MEMBER=V,V,...")
    strange = [m for m in named if m not in members]
    if strange:
        raise InvalidArgument(f"--strengths names {', '.join(strange)}, not among --members")
    for_all = [v for m, values in given if m is None for v in values]
    pixel = [m for m in members if KNOBS[m] == "eps" and m not in named]
    if for_all and pixel and max(for_all) > 1:
        raise InvalidArgument(f"--strengths {','.join(f'{v:g}' for v in for_all)} applies to {', '.join(pixel)}, "
                              "whose strength is a pixel budget in (0, 1]: name the members, MEMBER=V,...")
    data = DataSpec(name=args.data, dir=args.data_dir, train_size=_or(args.train_size, 600 if quick else None),
                    test_size=_or(args.test_size, 300 if quick else None), valid_fraction=args.valid_fraction,
                    split_seed=0)
    mode = "serial" if args.serial else "dask" if args.dask or args.scheduler else "pool"
    optim = optim_spec(args, epochs=8 if quick else None)
    return SweepSpec(
        data=data, model=model_spec(args, units=(48, 48) if quick else (240, 240)),
        optim=optim, members=members, strengths=given, seeds=seeds,
        seed=args.seed, eps=args.eps, pgd_steps=_or(args.pgd_steps, 5 if quick else 10),
        clean_budget=args.clean_budget, workers=args.workers, mode=mode, address=args.scheduler or args.dask,
        out=args.out, quick=quick, quiet=args.quiet, extend=_or(args.extend, 0 if quick else 2), plan=args.plan,
        suite=args.suite, diagnostics=args.diagnostics, warmup=_warmup(args, optim.epochs),
        command=typed_command("sweep", argv))


# --- reproduce ---------------------------------------------------------------------------------------
def add_reproduce_arguments(p):
    p.add_argument("recipe", choices=tuple(RECIPES), metavar="RECIPE",
                   help="one of: " + ", ".join(RECIPES) + " (minigrad/recipes.py: each with its source and departures)")
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=DATASETS, default=None,
                   help="run the recipe on another data set (none given: the recipe's own, e.g. mnist); the report "
                        "then has no paper column")
    g.add_argument("--data-dir", metavar="DIR", default=None,
                   help=f"directory holding the four IDX files (default: ${datasets.DATA_ENV}, or "
                        f"{datasets.FASHION_MNIST_DIR} for fashion-mnist)")
    g = p.add_argument_group("run")
    g.add_argument("--budget", type=positive_int, default=None, metavar="EPOCHS",
                   help="at most EPOCHS epochs a phase, for a quick look (the report says it was shortened)")
    g.add_argument("--seed", type=seed, default=0, help="seeds initialisation, dropout and the example order")
    g.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="limit BLAS to N threads (none given: the BLAS library's own choice, one per core)")
    g.add_argument("--out", metavar="DIR", default=None,
                   help="output directory (default: runs/reproduce-RECIPE-DATA); a run in it is continued")
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def reproduce_spec(args, argv=()) -> ReproduceSpec:
    data = args.data or RECIPES[args.recipe].data.name
    return ReproduceSpec(recipe=args.recipe, data=args.data, data_dir=args.data_dir, budget=args.budget, seed=args.seed,
                         threads=args.threads, out=args.out or f"runs/reproduce-{args.recipe}-{data}",
                         quiet=args.quiet, command=typed_command("reproduce", argv))
