"""Training: ``fit`` and ``evaluate``.

An *objective* is any callable ``objective(model, x, y) -> scalar loss Tensor``, where x is a
constant float batch Tensor and y the int64 labels, both on the model's device.  Plain
cross-entropy is ``cross_entropy_objective``; every regularizer of the family has the same
signature and computes whatever input gradients it needs itself, so ``fit`` only ever calls
``objective(model, x, y)`` and differentiates the result with respect to the parameters the
optimiser updates (``model.parameters()``, plus ``objective.parameters()`` for an objective
that owns some, such as the multitask decoder).

Checkpoints (their format, and why they cannot lie) are ``checkpoint.py``'s; the progress bar is
``progress.py``'s.  This module is the loop: validate everything first, then step, check, save.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import functional as F
from . import validate
from .backend import get_array_module, keep_freed_memory, to_device
from .checkpoint import Checkpoint, Checkpointing, last_good
from .datasets import minibatches
from .errors import DataError, Diverged, InvalidArgument
from .perturbations import NonFiniteGradient
from .progress import Progress, epoch_summary
from .regularizers import CrossEntropy
from .tensor import Tensor, grad, no_grad


# The plain objective, the mean cross-entropy of the logits: the family's first member.
cross_entropy_objective = CrossEntropy()


class Evaluation(NamedTuple):
    error: float  # fraction of examples misclassified, in [0, 1]
    loss: float  # mean cross-entropy


class TrainingDiverged(Diverged):
    """The loss, a perturbation or the parameters became NaN or infinite.  Names the step, and
    the last good checkpoint only if one exists on disk and holds finite parameters.

    what: "loss" (the loss of this step; the parameters are those before it) or "parameters"
    (the loss stayed finite but an update made the parameters non-finite during the epoch)."""

    def __init__(self, value: float, epoch: int, batch: int, step: int, what: str = "loss"):
        super().__init__(value, epoch, batch, step)
        self.value, self.epoch, self.batch, self.step, self.what = value, epoch, batch, step, what
        self.checkpoint, self.checkpoint_epoch = None, None  # filled in by fit, from last_good()

    def __str__(self):
        where = (f"the last good checkpoint is {self.checkpoint} (end of epoch {self.checkpoint_epoch})"
                 if self.checkpoint else "no good checkpoint is on disk")
        if self.what == "parameters":
            return (f"fit: the parameters became NaN or inf during epoch {self.epoch} (the loss stayed finite, "
                    f"so an update diverged); nothing of this epoch was saved, and {where}.  "
                    "Try a smaller learning rate.")
        return (f"fit: the loss is {self.value} at epoch {self.epoch}, batch {self.batch} (step {self.step}); "
                f"training stopped before that update, and {where}.  Try a smaller learning rate.")


# --- modes ------------------------------------------------------------------------------------
def _modes(model) -> list:
    return [m.training for m in model.modules()]


def _restore_modes(model, modes):
    for m, mode in zip(model.modules(), modes):
        m.training = mode


@contextlib.contextmanager
def _warnings_unless_diverged():
    """Hold back the warnings raised during an epoch: shown when it ends, dropped if it diverged.

    NumPy's "overflow encountered in matmul" and the like, from deep inside ops, would otherwise precede
    the one TrainingDiverged line that names the step; from an epoch that ends (a warning from one's own
    objective, an overflow in the validation loss) they are shown as usual, once per place.  The caller's
    warning filters and ``np.errstate`` are untouched: ``np.errstate(all="raise")`` still stops fit at the
    first operation that overflows, and ``-W error`` still turns the first warning into an error."""
    with warnings.catch_warnings(record=True) as held:
        yield
    for w in held:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _check_data(model, data, who: str):
    """Refuse, before any work, a dataset that is empty or that the model cannot take."""
    if len(data) == 0:
        raise DataError(f"{who}: the dataset {data.name or ''} is empty".replace("  ", " "))
    modes = _modes(model)
    model.eval()
    try:
        with no_grad(), np.errstate(all="ignore"):  # a shape check: the values are not looked at
            model(Tensor(to_device(data.x[:1], model.device)))
    except (ValueError, TypeError) as e:
        raise DataError(f"{who}: the model does not take {data.name or 'this dataset'}'s examples "
                        f"(shape {data.x.shape[1:]}): {e}") from None
    finally:
        _restore_modes(model, modes)


# --- evaluation -------------------------------------------------------------------------------
def evaluate(model, data, batch_size: int = 1000) -> Evaluation:
    """Error rate and mean cross-entropy of ``model`` on ``data`` (a Dataset: x, y).

    Runs in eval mode (dropout off) under ``no_grad``, then puts every module back in the
    mode it was in."""
    _check_data(model, data, "evaluate")
    batch_size = validate.integer(batch_size, "batch_size", "evaluate", low=1)
    modes, device = _modes(model), model.device
    model.eval()
    wrong, loss_sum = 0, 0.0
    try:
        with no_grad():
            for xb, yb in minibatches(data, batch_size, shuffle=False):
                logits, y = model(Tensor(to_device(xb, device))), to_device(yb, device)
                loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
                wrong += int((logits.data.argmax(axis=1) != y).sum())
    finally:
        _restore_modes(model, modes)
    return Evaluation(error=wrong / len(data), loss=loss_sum / len(data))


# --- training ---------------------------------------------------------------------------------
class _Recorder:
    """The model as an objective sees it inside ``fit``: every call passes through, and the output
    for the clean batch ``x`` is kept, so the objective's own forward pass gives the training
    accuracy for free while the objective keeps its simple signature.  (A perturbed input is a
    different array and is ignored; an objective that never evaluates the clean batch yields no
    accuracy.)  Everything else (parameters, layers, device) is the model's own."""

    def __init__(self, model, x):
        self.model, self.x, self.outputs = model, x, []

    def __call__(self, inp, *args, **kwargs):
        out = self.model(inp, *args, **kwargs)
        if (inp.data if isinstance(inp, Tensor) else inp) is self.x:
            self.outputs.append(out)
        return out

    def __getattr__(self, name):
        return getattr(self.model, name)


def _train_epoch(model, objective, optimizer, data, valid, batch_size, rng, epoch, bar) -> dict:
    """One pass over ``data``, then the validation set; returns the epoch's history record."""
    params, device = optimizer.params, model.device  # the model's, plus any the objective owns
    record, start = {"epoch": epoch, "lr": optimizer.value(optimizer.lr)}, time.perf_counter()
    loss_sum = wrong = seen = scored = 0
    model.train()
    bar.start(epoch, -(-len(data) // batch_size))
    for b, (xb, yb) in enumerate(minibatches(data, batch_size, shuffle=True, seed=rng), start=1):
        x, y = Tensor(to_device(xb, device)), to_device(yb, device)
        recorder = _Recorder(model, x.data)
        try:
            loss = objective(recorder, x, y)
        except NonFiniteGradient:  # a perturbation from a diverged gradient: the same failure
            raise TrainingDiverged(math.nan, epoch, b, optimizer.steps + 1) from None
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise TypeError(f"fit: the objective must return a scalar loss Tensor, got {loss!r:.80}")
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(value, epoch, b, optimizer.steps + 1)
        optimizer.step(grad(loss, params, allow_unused=True))
        loss_sum, seen = loss_sum + value * len(yb), seen + len(yb)
        if recorder.outputs:
            wrong += int((recorder.outputs[-1].data.argmax(axis=1) != y).sum())
            scored += len(yb)
        bar.update(b, loss_sum / seen, wrong / scored if scored else None)
    bar.close()
    record["train_loss"], record["train_error"] = loss_sum / seen, (wrong / scored if scored else None)
    if valid is not None:
        record["valid_error"], record["valid_loss"] = evaluate(model, valid)
    record["seconds"] = time.perf_counter() - start
    return record


class _EarlyStopping:
    """Remembers the epoch of lowest validation error, and its parameters."""

    def __init__(self, patience: int):
        self.patience, self.error, self.epoch, self.state = patience, math.inf, None, None

    def stop(self, model, epoch: int, error: float) -> bool:
        if error < self.error:
            self.error, self.epoch, self.state = error, epoch, model.state_dict()
            return False
        return epoch - self.epoch >= self.patience


def fit(model, objective, optimizer, train, valid=None, epochs: int = 10, batch_size: int = 100, *,
        seed: int = 0, patience: int | None = None, checkpoint=None, progress=True,
        resume: Checkpoint | None = None, diagnostics=None) -> list:
    """Train ``model`` for epochs ``1 … epochs`` (or, resuming, the ones after the checkpoint's);
    return the history.

    Each step: ``loss = objective(model, x, y)`` on a minibatch moved to the model's device, its
    gradient with respect to ``optimizer.params``, ``optimizer.step``.  The loss is checked first:
    NaN or ±inf raises TrainingDiverged naming the epoch, batch and step, with the parameters as
    they were before it.  At the end of each epoch the parameters are checked too (an update can
    make them non-finite while the loss was finite); a non-finite state is never saved, and the
    error names the last good checkpoint on disk, if there is one.  The warnings an epoch raises (NumPy's
    overflow ones, say) are shown when it ends, and dropped if it diverged: the error reports it once.

    Everything is validated before the first step: the sizes, the data (non-empty, shaped as the
    model takes it), the optimizer (it must update the objective's own parameters).

    train, valid: Datasets (x float32 (N, ...), y int64 (N,)).
    seed: epoch e visits the examples in an order drawn from ``default_rng([seed, e])``, so a
    rerun, or a resumed run, sees the same batches.
    patience: with ``valid``, stop once the validation error has not improved for this many
    epochs, and give back the parameters of the best epoch.
    checkpoint: a path, or a ``checkpoint.Checkpointing`` (path, metadata, a hook for files that
    must agree with it); saved after every epoch with the epoch, seed and history.
    progress: True (stderr), a text stream, or False.
    resume: a ``Checkpoint`` loaded (with this model and optimizer) from a run of the same
    objective and seed: training continues after its epoch, bit for bit as if never stopped.
    Returns one dict per epoch: epoch, lr, train_loss, train_error (running, in training mode,
    from the objective's own forward pass; None if it never evaluates the clean batch),
    valid_loss and valid_error (given ``valid``), seconds.

    diagnostics: a callable ``model -> {name: number}`` (``diagnostics.Diagnostics``: the signals that
    see a collapse coming, on a fixed probe), called after each epoch with the model in eval mode;
    recorded as ``record["diagnostics"]`` (not counted in ``seconds``).

    Schedules: before each epoch fit calls ``objective.start_epoch(epoch, history)`` if the objective has
    one (``Objective.start_epoch``; ``warmup.WarmUp`` ramps a member's weight), with the records of the
    epochs done, a resumed checkpoint's included: a schedule that depends only on these is resumed bit for
    bit.  What it returns ({name: number}, or None) is recorded as ``record["schedule"]``.

    The first call tunes glibc's allocator for the run (``backend.keep_freed_memory``: no page faults
    for re-allocated arrays; ``MINIGRAD_SYSTEM_MALLOC=1`` opts out).
    """
    keep_freed_memory()
    epochs = validate.integer(epochs, "epochs", "fit", low=0)
    batch_size = validate.integer(batch_size, "batch_size", "fit", low=1)
    first = 0 if resume is None else validate.integer(resume.meta.get("epoch"), "the resumed epoch", "fit", 0)
    if first > epochs:
        raise InvalidArgument(f"fit: the checkpoint is at epoch {first}, past epochs={epochs}; "
                              "ask for more epochs to continue it")
    if patience is not None and (valid is None or validate.integer(patience, "patience", "fit", low=1) < 1):
        raise InvalidArgument(f"fit: patience={patience} needs a validation set")
    _check_data(model, train, "fit")
    if diagnostics is not None and not callable(diagnostics):
        raise InvalidArgument(f"fit: diagnostics must be a callable model -> dict, got {diagnostics!r:.80}")
    if valid is not None:
        _check_data(model, valid, "fit (validation set)")
    owned = getattr(objective, "parameters", lambda: [])()
    missing = [p for p in owned if not any(p is q for q in optimizer.params)]
    if missing:  # they would silently never train (e.g. the multitask decoder)
        raise InvalidArgument(f"fit: the objective owns {len(missing)} parameters that the optimizer does not "
                              "update; build it with model.parameters() + objective.parameters()")
    saver = checkpoint if isinstance(checkpoint, Checkpointing) or checkpoint is None \
        else Checkpointing(Path(checkpoint))
    stream = sys.stderr if progress is True else (progress or None)
    bar, modes = Progress(stream, epochs), _modes(model)
    history = list(resume.meta.get("history", [])) if resume is not None else []
    stopper = _EarlyStopping(patience) if patience else None
    start_epoch = getattr(objective, "start_epoch", None)  # a schedule (warmup.WarmUp) is told the epoch
    try:
        for epoch in range(first + 1, epochs + 1):
            optimizer.epoch = epoch - 1  # epoch schedules count completed epochs
            schedule = start_epoch(epoch, history) if start_epoch is not None else None
            try:
                with _warnings_unless_diverged():
                    record = _train_epoch(model, objective, optimizer, train, valid, batch_size,
                                          np.random.default_rng([seed, epoch]), epoch, bar)
                    if schedule:
                        record["schedule"] = {str(k): float(v) for k, v in schedule.items()}
                    _check_finite(model, optimizer, epoch)
                    if diagnostics is not None:
                        record["diagnostics"] = _diagnose(model, diagnostics)
            except TrainingDiverged as e:
                e.checkpoint, e.checkpoint_epoch = (last_good(saver.path) if saver else None) or (None, None)
                raise
            history.append(record)
            if saver is not None:
                saver.save(model, optimizer, epoch=epoch, seed=seed, history=history)
            bar.line(epoch_summary(record, epochs))
            if stopper and stopper.stop(model, epoch, record["valid_error"]):
                bar.line(f"early stop: no better validation error for {patience} epochs")
                break
    finally:
        bar.close()
        _restore_modes(model, modes)
    if stopper and stopper.epoch is not None and stopper.epoch != history[-1]["epoch"]:
        model.load_state_dict(stopper.state)
        bar.line(f"restored the parameters of epoch {stopper.epoch} (validation error {stopper.error:.2%})")
        if saver is not None:
            saver.save(model, optimizer, epoch=history[-1]["epoch"], seed=seed, history=history,
                       best_epoch=stopper.epoch)
    return history


def _diagnose(model, diagnostics) -> dict:
    """``diagnostics(model)`` in eval mode, as {name: float} (a history record is plain JSON)."""
    modes = _modes(model)
    model.eval()
    try:
        return {str(k): float(v) for k, v in diagnostics(model).items()}
    finally:
        _restore_modes(model, modes)


def _check_finite(model, optimizer, epoch: int):
    """An update can make the parameters NaN while the loss was finite (the loss is computed
    before the update): look once per epoch, before anything is saved."""
    for p in optimizer.params:
        if not bool(get_array_module(p.data).isfinite(p.data).all()):
            raise TrainingDiverged(math.nan, epoch, -1, optimizer.steps, what="parameters")
