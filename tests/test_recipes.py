"""The recipes against their sources, field by field.

Each table below is one source: the values of pylearn2's scripts/papers/maxout/ yamls (and of the 2015 paper's
§6), written out literally, each mapped to the recipe field that must equal it.  Where minigrad cannot hold the
source's value, the row says so instead (``departs``): one of the recipe's departures must then state the
value, so a recipe can drift from its source only by saying how.  A failure names the yaml line it checks.
"""
from __future__ import annotations

import math
from operator import attrgetter

import numpy as np
import pytest

from minigrad import members, nn
from minigrad.errors import InvalidArgument
from minigrad.recipes import REGISTRY, Protocol, Recipe, Reported, recipe
from minigrad.specs import DataSpec, ModelSpec, OptimSpec
from minigrad.tensor import Tensor


# --- how a row is checked ------------------------------------------------------------------------------------
def eq(path, convert=lambda v: v, rel=1e-12):
    """The recipe field ``path`` (dotted, e.g. 'optim.lr') equals convert(source value)."""
    def check(r, value):
        actual, expected = attrgetter(path)(r), convert(value)
        ok = actual == expected if isinstance(expected, (str, bool, tuple)) or expected is None \
            else actual == pytest.approx(expected, rel=rel)
        return ok, f"{r.name}.{path} is {actual!r}; the source's value makes it {expected!r}"
    return check


def preset(key, index=None):
    """The conv preset the recipe names (nn.PRESETS) holds the source's layer at ``key`` (and ``index``)."""
    def check(r, value):
        entry = nn.PRESETS[r.model.conv_preset][key]
        actual = entry if index is None else entry[index]
        return actual == value, f"nn.PRESETS[{r.model.conv_preset!r}][{key!r}]" \
                                f"{'' if index is None else f'[{index}]'} is {actual!r}, the source has {value!r}"
    return check


def departs(*phrases):
    """minigrad cannot hold this value: some departure states it (every phrase, formatted with the value)."""
    def check(r, value):
        wanted = [p.format(v=value) for p in phrases]
        ok = any(all(w in d for w in wanted) for d in r.departures)
        return ok, f"{r.name} differs from the source here, but no departure mentions {wanted}"
    return check


def schedule_value(which, when, convert, rel):
    """The optimiser the recipe builds gives ``which`` ('lr' or 'momentum') = convert(source value) at
    ``when`` = (steps taken, epochs completed)."""
    def check(r, value):
        opt = r.optim.build([Tensor(np.zeros((2, 2), np.float32), requires_grad=True)])
        opt.steps, opt.epoch = when
        actual, expected = opt.value(getattr(opt, which)), convert(value)
        return actual == pytest.approx(expected, rel=rel), \
            f"{r.name}: {which} after {when[0]} steps / {when[1]} epochs is {actual!r}; the source has {expected!r}"
    return check


def keep(p):
    return 1 - p


# --- mnist_pi.yaml, then mnist_pi_continued.yaml ------------------------------------------------------------
PI = "mnist_pi.yaml"
PI_CONT = "mnist_pi_continued.yaml"
STEPS_PER_EPOCH = 50_000 // 100
MNIST_PI = [
    (PI, "dataset MNIST train: stop", 50000, eq("protocol.split", lambda v: (v, 60000))),
    (PI, "monitoring 'valid' MNIST train: start, stop", (50000, 60000), eq("protocol.split")),
    (PI, "model: two Maxout layers h0, h1, then Softmax y", 2, eq("model.units", lambda v: (240,) * v)),
    (PI, "h0 num_units", 240, eq("model.units", lambda v: (v, 240))),
    (PI, "h1 num_units", 240, eq("model.units", lambda v: (240, v))),
    (PI, "h0/h1 num_pieces", 5, eq("model.pieces")),
    (PI, "h0/h1 irange", 0.005, eq("model.init_range")),
    (PI, "y (Softmax) irange", 0.005, eq("model.init_range")),
    (PI, "h0/h1 max_col_norm", 1.9365, eq("optim.max_col_norm")),
    (PI, "y (Softmax) max_col_norm", 1.9365, eq("optim.max_col_norm")),
    (PI, "model arch (an MLP)", "mlp", eq("model.arch")),
    (PI, "SGD batch_size", 100, eq("optim.batch_size")),
    (PI, "SGD learning_rate", 0.1, eq("optim.lr")),
    (PI, "SGD (learning_rule Momentum) init_momentum", 0.5, eq("optim.momentum", lambda v: (v, 0.7))),
    (PI, "MomentumAdjustor final_momentum", 0.7, eq("optim.momentum", lambda v: (0.5, v))),
    # pylearn2 counts monitor calls (one before training): epoch e trains with 0.5 + 0.2·min((e−1)/(250−1), 1)
    (PI, "MomentumAdjustor start, saturate", (1, 250), eq("optim.momentum_epochs", lambda v: v[1] - v[0])),
    (PI, "momentum of epoch 250 (saturate)", 0.7, schedule_value("momentum", (0, 249), float, 1e-12)),
    (PI, "Dropout input_include_probs {'h0': .8}", 0.8, eq("model.input_dropout", keep)),
    (PI, "Dropout default_input_include_prob (pylearn2's default)", 0.5, eq("model.hidden_dropout", keep)),
    (PI, "Dropout input_scales {'h0': 1.}", 1.0, departs("input_scales {v:.0f}")),
    (PI, "ExponentialDecay decay_factor (per update)", 1.000004, eq("optim.lr_decay", lambda v: 1 / v)),
    (PI, "ExponentialDecay is an update callback", "step", eq("optim.lr_decay_per")),
    (PI, "ExponentialDecay min_lr", 0.000001, eq("optim.lr_min")),
    (PI, "MonitorBased N", 100, eq("protocol.patience")),
    (PI, "MonitorBased / MonitorBasedSaveBest have no epoch cap", None, departs("no epoch cap")),
    (PI_CONT, "dataset MNIST train: all of it, 60000", 60000, eq("protocol.split", lambda v: (50000, v))),
    (PI_CONT, "a second stage (MatchChannel)", True, eq("protocol.phase2")),
    (PI_CONT, "MatchChannel prev_channel_name", "train_objective", departs("{v}")),
    (PI_CONT, "SGD batch_size", 100, eq("optim.batch_size")),
    (PI_CONT, "ExponentialDecay decay_factor", 1.000004, eq("optim.lr_decay", lambda v: 1 / v)),
    # the continued yaml's two constants are the schedules' values at the kept epoch (243) of the paper's run
    (PI_CONT, "learning_rate (after 243 epochs)", 0.0615082606673,
     schedule_value("lr", (243 * STEPS_PER_EPOCH, 243), float, 1e-6)),
    (PI_CONT, "init_momentum (of epoch 243)", 0.694376766682, schedule_value("momentum", (0, 242), float, 2e-6)),
    (PI_CONT, "no MomentumAdjustor: momentum held in phase 2", 0.694376766682, departs("no MomentumAdjustor",
                                                                                      "{v}")),
]
CLEAN_STOPPING = [(PI, "MonitorBased channel_name", "valid_y_misclass", eq("protocol.metric", lambda v: "error"))]

# --- Goodfellow, Shlens & Szegedy 2015, §6 (the paper, no yaml) ---------------------------------------------
G15 = "Goodfellow et al. 2015 §6"
GOODFELLOW2015 = [
    (G15, "adversarial objective α·J(x) + (1 − α)·J(x + ε sign ∇ₓJ), α = 0.5", "adv-pinf", eq("member")),
    (G15, "ε = 0.25", 0.25, eq("strengths", lambda v: {"eps": v})),
    (G15, "early stopping on the adversarial validation error", "adversarial-error", eq("protocol.metric")),
    (G15, "the adversarial validation error at ε = 0.25", 0.25, eq("protocol.metric_eps")),
    (G15, "the 1600-unit model for the adversarial stopping rule", 1600, departs("{v}-unit")),
]

# --- mnist.yaml, then mnist_continued.yaml ------------------------------------------------------------------
CONV = "mnist.yaml"
CONV_CONT = "mnist_continued.yaml"
CONV_LAYER = ("{v[0]} {v[1]} channels × {v[2]} pieces, {v[3]}×{v[3]} kernels, pad {v[4]}, {v[5]}×{v[5]} pools of "
              "stride {v[6]}, max kernel norm {v[7]}")
CONV_LAYER_SHORT = "{v[0]} {v[1]} × {v[2]}, {v[3]}×{v[3]}, pad {v[4]}, pool {v[5]}/{v[6]}, {v[7]}"
MNIST_CONV = [
    (CONV, "dataset MNIST train: start, stop; valid: 50000, 60000", (50000, 60000), eq("protocol.split")),
    (CONV, "model arch (conv maxout)", "conv", eq("model.arch")),
    (CONV, "h0: name, num_channels, num_pieces, kernel_shape, pad, pool_shape, pool_stride, max_kernel_norm",
     ("h0", 48, 2, 8, 0, 4, 2, 0.9), departs(CONV_LAYER)),
    (CONV, "h1: the same", ("h1", 48, 2, 8, 3, 4, 2, 1.9365), departs(CONV_LAYER_SHORT)),
    (CONV, "h2: the same", ("h2", 24, 4, 5, 3, 2, 2, 1.9365), departs(CONV_LAYER_SHORT)),
    (CONV, "y (Softmax) max_col_norm", 1.9365, preset("out_max_norm")),
    (CONV, "y (Softmax) max_col_norm", 1.9365, eq("optim.max_col_norm")),
    (CONV, "no dense Maxout layer before the softmax", None, departs("no dense hidden layer")),
    (CONV, "irange (every layer)", 0.005, departs("U(−{v}, {v})")),
    (CONV, "Dropout input_include_probs {'h0': .8}", 0.8, departs("{v} on the input")),
    (CONV, "Dropout default_input_include_prob", 0.5, departs("{v} on the inputs of")),
    (CONV, "MLP batch_size", 128, eq("optim.batch_size")),
    (CONV, "SGD learning_rate", 0.05, eq("optim.lr")),
    (CONV, "Momentum init_momentum", 0.5, eq("optim.momentum", lambda v: (v, 0.7))),
    (CONV, "MomentumAdjustor final_momentum", 0.7, eq("optim.momentum", lambda v: (0.5, v))),
    (CONV, "MomentumAdjustor start, saturate", (1, 250), eq("optim.momentum_epochs", lambda v: v[1] - v[0])),
    (CONV, "ExponentialDecay decay_factor (per update)", 1.00004, eq("optim.lr_decay", lambda v: 1 / v)),
    (CONV, "ExponentialDecay is an update callback", "step", eq("optim.lr_decay_per")),
    (CONV, "ExponentialDecay min_lr", 0.000001, eq("optim.lr_min")),
    (CONV, "MonitorBased N", 100, eq("protocol.patience")),
    (CONV_CONT, "a second stage on all 60000 images", True, eq("protocol.phase2")),
    (CONV_CONT, "ChannelTarget on valid_y_nll", "ChannelTarget", departs("{v}", "valid_y_nll")),
]

# --- cifar10_no_aug_valid.yaml (the validation run), then cifar10_no_aug.yaml -------------------------------
CV = "cifar10_no_aug_valid.yaml"
CF = "cifar10_no_aug.yaml"
CIFAR10_NO_AUG = [
    (CV, "dataset: start 0, stop 40000; valid: start 40000, stop 50000", (40000, 50000), eq("protocol.split")),
    (CV, "model arch (conv maxout)", "conv", eq("model.arch")),
    (CV, "input_space Conv2DSpace shape [32, 32], num_channels 3", (3, 32, 32), preset("in_shape")),
    # (num_channels, num_pieces, kernel_shape, pad, (pool_shape, pool_stride), max_kernel_norm)
    (CV, "h0", (96, 2, 8, 4, (4, 2), 0.9), preset("conv", 0)),
    (CV, "h1", (192, 2, 8, 3, (4, 2), 1.9365), preset("conv", 1)),
    (CV, "h2", (192, 2, 5, 3, (2, 2), 1.9365), preset("conv", 2)),
    (CV, "h3 Maxout num_units, num_pieces, max_col_norm", (500, 5, 1.9), preset("dense")),
    (CV, "y (Softmax) max_col_norm", 1.9365, preset("out_max_norm")),
    (CV, "irange (every layer)", 0.005, departs("U(−{v}, {v})")),
    (CV, "h0-h2 W_lr_scale, b_lr_scale", 0.05, departs("W_lr_scale and b_lr_scale {v}")),
    (CV, "Dropout input_include_probs {'h0': .8}", 0.8, departs("{v} on the input")),
    (CV, "Dropout default_input_include_prob", 0.5, departs("{v} on the inputs of")),
    (CV, "MLP batch_size", 128, eq("optim.batch_size")),
    (CV, "SGD learning_rate", 0.17, eq("optim.lr")),
    (CV, "Momentum init_momentum", 0.5, eq("optim.momentum", lambda v: (v, 0.6))),
    (CV, "MomentumAdjustor final_momentum", 0.6, eq("optim.momentum", lambda v: (0.5, v))),
    (CV, "MomentumAdjustor start, saturate", (1, 250), eq("optim.momentum_epochs", lambda v: v[1] - v[0])),
    (CV, "LinearDecayOverEpoch decay_factor: the final lr", 0.01, eq("optim.lr_min", lambda v: 0.17 * v)),
    (CV, "LinearDecayOverEpoch: lr of epoch 1 (start)", 0.17, schedule_value("lr", (0, 0), float, 1e-12)),
    (CV, "LinearDecayOverEpoch: lr from epoch 500 (saturate)", 0.17 * 0.01,
     schedule_value("lr", (0, 499), float, 1e-9)),
    (CV, "LinearDecayOverEpoch (linear, not exponential)", "LinearDecayOverEpoch", departs("{v}")),
    (CV, "MonitorBased channel_name", "valid_y_misclass", eq("protocol.metric", lambda v: "error")),
    (CV, "MonitorBased N", 100, eq("protocol.patience")),
    (CF, "EpochCounter max_epochs, from a fresh start on all 50000", 785, departs("{v} epochs", "fresh")),
    (CF, "dataset: all 50000 training images", 50000, eq("protocol.split", lambda v: (40000, v))),
]

TABLES = {
    "maxout-mnist-pi": MNIST_PI + CLEAN_STOPPING,
    "goodfellow2015-adv": MNIST_PI + GOODFELLOW2015,
    **{f"family-{m}": MNIST_PI + CLEAN_STOPPING for m in members.MEMBERS if m not in ("plain", "adv-pinf")},
    "maxout-mnist-conv": MNIST_CONV,
    "maxout-cifar10-no-aug": CIFAR10_NO_AUG,
}
ROWS = [(name, *row) for name, rows in TABLES.items() for row in rows]


@pytest.mark.parametrize("name, source, line, value, check", ROWS,
                         ids=[f"{n}|{s}|{l}" for n, s, l, _, _ in ROWS])
def test_recipe_matches_its_source(name, source, line, value, check):
    ok, message = check(recipe(name), value)
    assert ok, f"{source}: {line}: {value!r}: {message}"


def test_every_recipe_has_a_table():
    assert set(TABLES) == set(REGISTRY), "a recipe without a source table, or a table without a recipe"


# --- the registry's shape -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(REGISTRY))
def test_recipe_is_well_formed(name):
    r = recipe(name)
    assert isinstance(r, Recipe) and r.name == name
    assert isinstance(r.source, str) and r.source.strip(), f"{name}: no source"
    assert isinstance(r.departures, tuple) and r.departures, f"{name}: no departures stated"
    for d in r.departures:
        assert isinstance(d, str) and d.strip(), f"{name}: a departure is not a non-empty string: {d!r}"
    assert isinstance(r.data, DataSpec) and isinstance(r.model, ModelSpec) and isinstance(r.optim, OptimSpec)
    assert isinstance(r.protocol, Protocol)
    assert r.member in members.MEMBERS
    assert r.protocol.split[0] < r.protocol.split[1]
    for rep in r.reported:
        assert isinstance(rep, Reported) and rep.source.strip() and rep.what.strip(), f"{name}: {rep}"
        assert math.isfinite(rep.value) and 0 <= rep.value <= 100, f"{name}: {rep}"


def test_reported_numbers():
    """The papers' numbers (PAPERS.md; the Maxout paper's Tables 1-3, Goodfellow et al. 2015 §6)."""
    got = {(n, rep.value) for n, r in REGISTRY.items() for rep in r.reported}
    assert {("maxout-mnist-pi", 0.94), ("goodfellow2015-adv", 0.84), ("goodfellow2015-adv", 89.4),
            ("goodfellow2015-adv", 17.9), ("maxout-mnist-conv", 0.45), ("maxout-cifar10-no-aug", 11.68)} <= got
    assert all(not r.reported for n, r in REGISTRY.items() if n.startswith("family-")), \
        "the seed papers trained no family-* run: no paper column"


def test_family_recipes():
    expected = {f"family-{m}" for m in members.MEMBERS if m not in ("plain", "adv-pinf")}
    assert expected == {n for n in REGISTRY if n.startswith("family-")}
    strengths = {k: v for k, v in vars(members.default_strengths(784)).items() if k != "seed" and v is not None}
    base = recipe("maxout-mnist-pi")
    for name in expected:
        r = recipe(name)
        assert r.member == name.removeprefix("family-")
        assert r.strengths == strengths, f"{name}: strengths {r.strengths}, the sweep's rule gives {strengths}"
        assert (r.model, r.optim, r.protocol, r.data) == (base.model, base.optim, base.protocol, base.data), name


def test_unknown_recipe_names_the_registry():
    with pytest.raises(InvalidArgument) as e:
        recipe("nope")
    assert "'nope'" in str(e.value) and all(n in str(e.value) for n in REGISTRY)


def test_conv_recipes_are_specs_only():
    for name in ("maxout-mnist-conv", "maxout-cifar10-no-aug"):
        r = recipe(name)
        assert r.runnable is False, f"{name} must be runnable=False: days of CPU here"
        # the conv builder ignores these: a spec must not claim what the run will not do
        assert (r.model.input_dropout, r.model.hidden_dropout, r.model.init_range) == (0.0, 0.0, None), name
    assert all(r.runnable for n, r in REGISTRY.items() if n not in ("maxout-mnist-conv", "maxout-cifar10-no-aug"))


def test_recipes_are_frozen():
    r = recipe("maxout-mnist-pi")
    with pytest.raises(AttributeError):
        r.name = "other"  # type: ignore[misc]
