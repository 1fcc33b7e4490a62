"""fit / evaluate / checkpoints: learning, determinism, bit-exact reload and resume, atomic
writes, divergence, early stopping and the progress output."""
import io
import json
import os
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import datasets, nn, optim, progress, train
from minigrad import functional as F
from minigrad.checkpoint import Checkpointing, load_checkpoint, save_checkpoint

DATA = datasets.synthetic(n=96, n_features=6, n_classes=3, seed=0)
VALID = datasets.synthetic(n=48, n_features=6, n_classes=3, seed=0)  # same blobs: same class means


def _model(seed=0, dropout=0.0):
    return nn.maxout_mlp(6, (8,), pieces=2, n_classes=3, hidden_dropout=dropout, seed=seed)


def _sgd(model):
    return optim.SGD(model.parameters(), lr=0.1, momentum=optim.LinearRamp(0.5, 0.7, 3), max_col_norm=1.9365)


def _fit(model, opt, epochs=3, **kw):
    kw = {"batch_size": 32, "progress": False, **kw}
    return train.fit(model, train.cross_entropy_objective, opt, DATA, epochs=epochs, **kw)


def _params(model):
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# --- evaluate and fit ---------------------------------------------------------------------------------
def test_evaluate_matches_a_direct_computation_and_restores_modes():
    model = nn.maxout_mlp(6, (8,), 2, 3, input_dropout=0.5, seed=0)
    model.layers[1].training = False  # a mixed state must come back as it was
    modes = [m.training for m in model.modules()]
    result = train.evaluate(model, DATA, batch_size=40)
    model.eval()
    logits = model(DATA.x).numpy().astype(np.float64)
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    assert result.error == pytest.approx(np.mean(logits.argmax(1) != DATA.y))
    assert result.loss == pytest.approx(-log_p[np.arange(len(DATA)), DATA.y].mean(), rel=1e-5)
    model.train()
    model.layers[1].training = False
    assert [m.training for m in model.modules()] == modes
    error, loss = train.evaluate(model, DATA)  # a (error, loss) named tuple
    assert (error, loss) == pytest.approx(tuple(result))
    assert all(p.grad is None for p in model.parameters())


def test_fit_learns_and_records_history():
    model = _model()
    history = train.fit(model, train.cross_entropy_objective, _sgd(model), DATA, VALID, epochs=4,
                        batch_size=16, progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert set(history[0]) == {"epoch", "lr", "train_loss", "train_error", "valid_loss", "valid_error", "seconds"}
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["valid_error"] < 0.1 and history[-1]["train_error"] < 0.2
    assert all(m.training for m in model.modules())
    json.dumps(history)  # JSON-ready, for metrics files and checkpoint metadata


def test_fit_on_a_device_moves_the_batches(device):
    model = _model().to(device)
    history = _fit(model, optim.Adam(model.parameters(), lr=0.01), epochs=2)
    assert model.device == device and history[-1]["train_loss"] < history[0]["train_loss"]
    assert train.evaluate(model, VALID).error < 0.5


def test_objective_contract_and_accuracy_from_the_objectives_own_forward_pass():
    seen = []

    def objective(model, x, y):
        seen.append((type(x), x.dtype, type(y), y.dtype, x.requires_grad))
        return F.cross_entropy(model(mg.Tensor(x.data.copy())), y)  # never evaluates the clean batch itself

    model = _model()
    history = train.fit(model, objective, _sgd(model), DATA, epochs=1, batch_size=32, progress=False)
    assert seen[0] == (mg.Tensor, np.float32, np.ndarray, np.int64, False)
    assert history[0]["train_error"] is None  # no output on the batch array: no accuracy, and no guess
    with pytest.raises(TypeError, match="must return a scalar loss Tensor"):
        train.fit(model, lambda m, x, y: m(x), _sgd(model), DATA, epochs=1, progress=False)
    with pytest.raises(ValueError, match="patience=2 needs a validation set"):
        train.fit(model, objective, _sgd(model), DATA, epochs=1, patience=2)


def test_fit_updates_every_parameter_the_optimizer_holds_including_the_objectives():
    temperature = nn.Parameter(np.array(1.0, dtype=np.float32))  # owned by the objective, not the model

    def objective(model, x, y):
        return F.cross_entropy(model(x) * temperature, y)

    model = _model()
    opt = optim.SGD(model.parameters() + [temperature], lr=0.1)
    train.fit(model, objective, opt, DATA, epochs=1, batch_size=32, progress=False)
    assert temperature.numpy() != 1.0


# --- determinism --------------------------------------------------------------------------------------
def test_same_seed_same_parameters_different_seed_different():
    def run(seed):
        model = _model(seed, dropout=0.3)
        _fit(model, _sgd(model), epochs=2, seed=seed)
        return _params(model)

    first, again, other = run(3), run(3), run(4)
    _assert_same(first, again)
    assert not any(np.array_equal(first[k], other[k]) for k in first if first[k].ndim == 2)


# --- checkpoints -------------------------------------------------------------------------------------
def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    model = _model(dropout=0.3)
    opt = _sgd(model)
    path = tmp_path / "ckpt.npz"
    history = _fit(model, opt, epochs=2, checkpoint=Checkpointing(path, {"data": "synthetic"}), seed=7)
    with np.load(path, allow_pickle=False) as z:  # loadable without pickle
        assert "meta" in z.files and any(k.startswith("optim/velocity.") for k in z.files)
    clone = _model(seed=1, dropout=0.3)
    clone_opt = _sgd(clone)
    ckpt = load_checkpoint(path, clone, clone_opt)
    _assert_same(_params(model), _params(clone))
    for i, v in opt.state["velocity"].items():  # momentum buffers, bit for bit
        np.testing.assert_array_equal(v, clone_opt.state["velocity"][i])
    assert (clone_opt.steps, clone_opt.epoch) == (opt.steps, opt.epoch)
    assert ckpt.meta["epoch"] == 2 and ckpt.meta["seed"] == 7 and ckpt.meta["data"] == "synthetic"
    assert ckpt.meta["history"] == json.loads(json.dumps(history)) and ckpt.meta["config"] == model.config
    rebuilt = load_checkpoint(path).model  # no model given: rebuilt from the stored config
    _assert_same(_params(model), _params(rebuilt))


def test_resume_from_a_checkpoint_equals_training_straight_through(tmp_path):
    straight = _model(dropout=0.3)
    _fit(straight, _sgd(straight), epochs=3, seed=5)
    first = _model(dropout=0.3)
    _fit(first, _sgd(first), epochs=2, seed=5, checkpoint=tmp_path / "c.npz")
    resumed = _model(seed=9, dropout=0.3)  # different init and dropout state: all of it is restored
    opt = _sgd(resumed)
    ckpt = load_checkpoint(tmp_path / "c.npz", resumed, opt)
    _fit(resumed, opt, epochs=3, seed=5, resume=ckpt)
    _assert_same(_params(straight), _params(resumed))


def test_loading_into_another_architecture_or_optimizer_is_a_clear_error(tmp_path):
    model = _model()
    save_checkpoint(tmp_path / "c.npz", model, _sgd(model), epoch=0)
    with pytest.raises(ValueError, match=r"different architecture .*units: \[8\] in the checkpoint, \[9\] in the model.*shape \(6, 16\)"):
        load_checkpoint(tmp_path / "c.npz", nn.maxout_mlp(6, (9,), 2, 3))
    with pytest.raises(ValueError, match="holds SGD optimizer state, not Adam"):
        load_checkpoint(tmp_path / "c.npz", _model(), optim.Adam(_model().parameters()))
    np.savez(tmp_path / "other.npz", w=np.ones(2))
    with pytest.raises(ValueError, match="not a minigrad checkpoint"):
        load_checkpoint(tmp_path / "other.npz")


@pytest.mark.parametrize("fail", ["savez", "replace"])
def test_an_interrupted_write_leaves_the_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch, fail):
    model = _model()
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, model, epoch=1)
    old = path.read_bytes()
    for p in model.parameters():
        p.data = p.data + 1

    def savez_midway(f, **arrays):  # half the bytes reach the disk, then the process "dies"
        f.write(b"PK\x03\x04 partial zip")
        raise KeyboardInterrupt

    def replace_fails(src, dst):
        raise OSError("disk full")

    if fail == "savez":
        monkeypatch.setattr(np, "savez", savez_midway)
    else:
        monkeypatch.setattr(os, "replace", replace_fails)
    with pytest.raises((KeyboardInterrupt, OSError)):
        save_checkpoint(path, model, epoch=2)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temp file left behind
    assert path.read_bytes() == old
    assert load_checkpoint(path).meta["epoch"] == 1


# --- divergence and early stopping -------------------------------------------------------------------
def test_nan_loss_stops_with_the_step_named_and_the_last_good_checkpoint_kept(tmp_path):
    calls = []

    def objective(model, x, y):  # 96 examples / 32 = 3 batches an epoch: step 5 is epoch 2, batch 2
        calls.append(1)
        loss = train.cross_entropy_objective(model, x, y)
        return loss * float("nan") if len(calls) == 5 else loss

    model = _model()
    opt, path = _sgd(model), tmp_path / "ckpt.npz"
    message = r"nan at epoch 2, batch 2 \(step 5\).*ckpt.npz \(end of epoch 1\)"
    with pytest.raises(train.TrainingDiverged, match=message) as e:
        train.fit(model, objective, opt, DATA, epochs=3, batch_size=32, checkpoint=path, progress=False)
    assert (e.value.epoch, e.value.batch, e.value.step) == (2, 2, 5)
    assert opt.steps == 4 and all(np.isfinite(p.numpy()).all() for p in model.parameters())
    ckpt = load_checkpoint(path)
    assert ckpt.meta["epoch"] == 1 and all(np.isfinite(v).all() for v in ckpt.model.state_dict().values())
    calls.clear()
    with pytest.raises(train.TrainingDiverged, match="no good checkpoint is on disk"):
        train.fit(_model(), lambda m, x, y: objective(m, x, y) * float("inf"), _sgd(model), DATA,
                  epochs=1, progress=False)


def test_early_stopping_stops_and_restores_the_best_epoch(tmp_path, monkeypatch):
    errors, snapshots = iter([0.5, 0.3, 0.4, 0.45, 0.2]), []

    def scripted_evaluate(model, data, batch_size=1000):
        snapshots.append(_params(model))
        return train.Evaluation(next(errors), 1.0)

    monkeypatch.setattr(train, "evaluate", scripted_evaluate)
    model = _model()
    history = _fit(model, _sgd(model), epochs=5, valid=VALID, patience=2, checkpoint=tmp_path / "c.npz")
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]  # epochs 3 and 4 did not beat epoch 2
    _assert_same(_params(model), snapshots[1])
    meta = load_checkpoint(tmp_path / "c.npz").meta
    assert meta["best_epoch"] == 2 and meta["epoch"] == 4


# --- progress output ---------------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_off_a_terminal_is_one_line_per_epoch():
    log = io.StringIO()
    model = _model()
    _fit(model, _sgd(model), epochs=2, batch_size=8, progress=log)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 2
    assert lines[1].startswith("epoch 2/2: train loss ") and "error" in lines[1]


def test_progress_on_a_terminal_without_tqdm_redraws_one_line(monkeypatch):
    monkeypatch.setattr(progress.optional, "maybe", lambda name: None)
    tty = _Terminal()
    model = _model()
    _fit(model, _sgd(model), epochs=1, batch_size=8, progress=tty)
    out = tty.getvalue()
    assert "\repoch 1/1 [" in out and "12/12 loss" in out and "acc" in out
    assert out.count("\n") == 1  # the bar never scrolls: only the epoch summary ends a line


def test_progress_on_a_terminal_uses_tqdm_when_installed():
    pytest.importorskip("tqdm")
    tty = _Terminal()
    model = _model()
    _fit(model, _sgd(model), epochs=1, batch_size=8, progress=tty)
    assert "epoch 1/1" in tty.getvalue() and "batch" in tty.getvalue()


def test_divergence_inside_adversarial_training_is_reported_as_a_diverged_step():
    # With NaN parameters the perturbation is computed from a NaN gradient before the loss exists;
    # fit still reports the step, not a ValueError from deep inside the objective.
    from minigrad import regularizers as R
    data = datasets.synthetic(n=64, n_features=6, n_classes=3, seed=0)
    model = nn.maxout_mlp(6, (4,), 2, 3, seed=0)
    model.parameters()[0].data[...] = np.nan
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with pytest.raises(train.TrainingDiverged, match="epoch 1, batch 1"):
            train.fit(model, R.AdversarialTraining(0.1), optim.SGD(model.parameters(), lr=0.1), data,
                      epochs=1, batch_size=32, progress=False)
    assert not shown  # and says so once: no NumPy RuntimeWarning on the way


def test_an_overflowing_run_raises_one_error_and_no_numpy_warnings():
    # lr = 1e38 overflows the weights' matrix products within two steps; NumPy's "overflow encountered"
    # and "invalid value" warnings would precede the error with lines from inside ops.
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        model = _model()
        with pytest.raises(train.TrainingDiverged, match="at epoch 1, batch 2"):
            train.fit(model, train.cross_entropy_objective, optim.SGD(model.parameters(), lr=1e38), DATA,
                      epochs=1, batch_size=32, progress=False)
    assert not shown


def test_warnings_of_an_epoch_that_ends_are_shown_and_the_callers_settings_rule():
    def objective(model, x, y):  # one's own code warns, but the loss stays finite
        np.log(np.zeros(1) - 1)
        return train.cross_entropy_objective(model, x, y)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")  # Python's default: once per place
        model = _model()
        train.fit(model, objective, _sgd(model), DATA, epochs=1, batch_size=32, progress=False)
    assert [str(w.message) for w in shown] == ["invalid value encountered in log"]
    before = np.geterr()
    model = _model()
    with np.errstate(all="raise"), pytest.raises(FloatingPointError, match="overflow"):
        # the caller asked to stop at the first overflowing operation: fit does not override it
        train.fit(model, train.cross_entropy_objective, optim.SGD(model.parameters(), lr=1e38), DATA,
                  epochs=1, batch_size=32, progress=False)
    assert np.geterr() == before


def test_objective_parameters_missing_from_the_optimizer_are_refused():
    from minigrad import regularizers as R
    data = datasets.synthetic(n=32, n_features=6, n_classes=3, seed=0)
    model = nn.maxout_mlp(6, (4,), 2, 3, seed=0)
    objective = R.CrossEntropy() + R.Multitask.for_model(model, 1.0)
    with pytest.raises(ValueError, match="objective owns 2 parameters"):
        train.fit(model, objective, optim.SGD(model.parameters(), lr=0.1), data, epochs=1, progress=False)
    train.fit(model, objective, optim.SGD(model.parameters() + objective.parameters(), lr=0.1), data,
              epochs=1, progress=False)
