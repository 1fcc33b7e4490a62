"""Training: ``fit``, ``evaluate``, and checkpoints that survive a crash.

An *objective* is any callable ``objective(model, x, y) -> scalar loss Tensor``, where x is a
constant float batch Tensor and y the int64 labels, both on the model's device.  Plain
cross-entropy is ``cross_entropy_objective``; every regularizer of the family has the same
signature and computes whatever input gradients it needs itself, so ``fit`` only ever calls
``objective(model, x, y)`` and differentiates the result with respect to the parameters the
optimiser updates (``model.parameters()``, plus ``objective.parameters()`` for an objective
that owns some, such as the multitask decoder).

A checkpoint is one ``.npz`` file (no pickle: ``np.load(..., allow_pickle=False)`` reads it):

    param/<name>   every parameter (host NumPy, exact dtype)
    optim/<name>   the optimiser's counters and buffers (momentum, Adam moments)
    meta           a JSON string: format, model config, optimiser config, epoch, seed,
                   history, and the dropout generators' states

It is written to a temporary file in the target directory and moved into place with
``os.replace``, which is atomic: a crash mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import functional as F
from . import nn
from .backend import to_device
from .datasets import minibatches
from .perturbations import NonFiniteGradient
from .regularizers import CrossEntropy
from .tensor import Tensor, grad, no_grad

FORMAT = "minigrad-checkpoint"
FORMAT_VERSION = 1


# The plain objective, the mean cross-entropy of the logits: the family's first member.
cross_entropy_objective = CrossEntropy()


class Evaluation(NamedTuple):
    error: float  # fraction of examples misclassified, in [0, 1]
    loss: float  # mean cross-entropy


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite.  Names the step; the parameters are those before it."""

    def __init__(self, value: float, epoch: int, batch: int, step: int):
        super().__init__(value, epoch, batch, step)
        self.value, self.epoch, self.batch, self.step = value, epoch, batch, step
        self.checkpoint, self.checkpoint_epoch = None, None  # filled in by fit

    def __str__(self):
        where = (f"the last good checkpoint is {self.checkpoint} (end of epoch {self.checkpoint_epoch})"
                 if self.checkpoint else "no checkpoint was written before it")
        return (f"fit: the loss is {self.value} at epoch {self.epoch}, batch {self.batch} (step {self.step}); "
                f"training stopped before that update, and {where}.  Try a smaller learning rate.")


# --- modes ------------------------------------------------------------------------------------
def _modes(model) -> list:
    return [m.training for m in model.modules()]


def _restore_modes(model, modes):
    for m, mode in zip(model.modules(), modes):
        m.training = mode


# --- evaluation -------------------------------------------------------------------------------
def evaluate(model, data, batch_size: int = 1000) -> Evaluation:
    """Error rate and mean cross-entropy of ``model`` on ``data`` (a Dataset: x, y).

    Runs in eval mode (dropout off) under ``no_grad``, then puts every module back in the
    mode it was in."""
    if len(data) == 0:
        raise ValueError("evaluate: the dataset is empty")
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


# --- checkpoints ------------------------------------------------------------------------------
def write_atomically(path, write) -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then move it onto
    ``path`` with ``os.replace``.  On any error the temporary file is removed and ``path`` is
    left as it was; readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _rngs(model) -> list:
    # Dropout's generators: restoring them makes a resumed run draw the same masks.
    return [m.rng for m in model.modules() if isinstance(getattr(m, "rng", None), np.random.Generator)]


def save_checkpoint(path, model, optimizer=None, **metadata) -> Path:
    """Write parameters, optimiser state and metadata (JSON-ready keyword arguments such as
    epoch, seed, history) to ``path`` atomically.  Returns the path."""
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": getattr(model, "config", None),
            "optimizer": None if optimizer is None else optimizer.config(),
            "rng": [g.bit_generator.state for g in _rngs(model)], **metadata}
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    arrays["meta"] = np.array(json.dumps(meta))
    return write_atomically(path, lambda f: np.savez(f, **arrays))


class Checkpoint(NamedTuple):
    model: nn.Module
    meta: dict  # config, optimizer, epoch, seed, history, ...


def load_checkpoint(path, model=None, optimizer=None) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``/``fit``.

    model: load into this model (its architecture must match), or None to rebuild one on the
    CPU from the stored config.  optimizer: if given, its state is restored too (same kind,
    same parameters).  Values come back bit for bit.  Raises ValueError on a mismatch.
    """
    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z.files:
            raise ValueError(f"load_checkpoint: {path} is not a minigrad checkpoint (no 'meta' entry)")
        meta = json.loads(str(z["meta"]))
        params = {k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")}
        optim = {k[len("optim/"):]: z[k] for k in z.files if k.startswith("optim/")}
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"load_checkpoint: {path} has format {meta.get('format')!r} version "
                         f"{meta.get('version')!r}; expected {FORMAT!r} version {FORMAT_VERSION}")
    saved_optimizer = (meta.get("optimizer") or {}).get("type")
    if optimizer is not None and saved_optimizer != type(optimizer).__name__:  # checked before anything changes
        raise ValueError(f"load_checkpoint: {path} holds {saved_optimizer or 'no'} optimizer state, "
                         f"not {type(optimizer).__name__}")
    if model is None:
        if meta.get("config") is None:
            raise ValueError(f"load_checkpoint: {path} stores no model config; pass the model to load into")
        model = nn.build(meta["config"])
    try:
        model.load_state_dict(params)
    except ValueError as e:
        raise ValueError(f"load_checkpoint: {path} holds a different architecture (config {meta.get('config')}) "
                         f"than the model (config {getattr(model, 'config', None)}): {e}") from None
    for g, state in zip(_rngs(model), meta.get("rng", [])):
        g.bit_generator.state = state
    if optimizer is not None:
        optimizer.load_state_dict(optim)
    return Checkpoint(model, meta)


# --- progress ---------------------------------------------------------------------------------
def _import_tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class _Progress:
    """Per-batch bar and one summary line per epoch on ``stream`` (None: silent).

    On a terminal the bar is tqdm's if installed, else a single line redrawn in place at most
    5 times a second.  Off a terminal (a log file, a pipe, CI) there is no bar at all, only the
    epoch lines: a bar redrawn with '\\r' would write thousands of lines into a log.
    """

    def __init__(self, stream, epochs: int):
        self.stream, self.epochs, self.bar, self.drawn = stream, epochs, None, False
        self.live = stream is not None and getattr(stream, "isatty", lambda: False)()
        self.tqdm = _import_tqdm() if self.live else None

    def start(self, epoch: int, n_batches: int):
        self.desc, self.n, self.last_draw = f"epoch {epoch}/{self.epochs}", n_batches, 0.0
        if self.tqdm is not None:
            self.bar = self.tqdm(total=n_batches, desc=self.desc, file=self.stream, leave=False, unit="batch")

    def update(self, batch: int, loss: float, error: float | None):
        if not self.live:
            return
        stats = f"loss {loss:.4f}" + ("" if error is None else f", acc {1 - error:.2%}")
        if self.bar is not None:
            self.bar.set_postfix_str(stats, refresh=False)
            self.bar.update(1)
        elif batch in (1, self.n) or time.monotonic() - self.last_draw > 0.2:
            self.last_draw, self.drawn = time.monotonic(), True
            filled = 20 * batch // self.n
            self.stream.write(f"\r{self.desc} [{'#' * filled}{'.' * (20 - filled)}] {batch}/{self.n} {stats}")
            self.stream.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.drawn:
            self.stream.write("\r\033[K")  # erase the fallback bar's line
            self.drawn = False

    def line(self, text: str):
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()


def _summary(record: dict, epochs: int) -> str:
    def part(name, loss, error):
        return f"{name} loss {loss:.4f}" + ("" if error is None else f", error {error:.2%}")
    parts = [part("train", record["train_loss"], record["train_error"])]
    if "valid_error" in record:
        parts.append(part("valid", record["valid_loss"], record["valid_error"]))
    parts.append(f"lr {record['lr']:.4g} | {record['seconds']:.2f} s")
    return f"epoch {record['epoch']}/{epochs}: " + " | ".join(parts)


# --- training ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _watch_outputs(model, x, outputs: list):
    """Record the model's output whenever it is called on the batch array ``x`` itself.

    The objective's own forward pass on the clean batch gives the training accuracy for free,
    and the objective keeps its simple signature.  (A perturbed input is a different array and
    is ignored; an objective that never evaluates the clean batch yields no accuracy.)"""
    forward = model.forward

    def watched(inp, *args, **kwargs):
        out = forward(inp, *args, **kwargs)
        if (inp.data if isinstance(inp, Tensor) else inp) is x:
            outputs.append(out)
        return out

    model.forward = watched  # an instance attribute shadows the method while the objective runs
    try:
        yield
    finally:
        del model.forward


def _train_epoch(model, objective, optimizer, data, valid, batch_size, rng, epoch, bar) -> dict:
    """One pass over ``data``, then the validation set; returns the epoch's history record."""
    params, device = optimizer.params, model.device  # the model's, plus any the objective owns
    record, start = {"epoch": epoch, "lr": optimizer.value(optimizer.lr)}, time.perf_counter()
    loss_sum = wrong = seen = scored = 0
    model.train()
    bar.start(epoch, -(-len(data) // batch_size))
    for b, (xb, yb) in enumerate(minibatches(data, batch_size, shuffle=True, seed=rng), start=1):
        x, y, outputs = Tensor(to_device(xb, device)), to_device(yb, device), []
        with _watch_outputs(model, x.data, outputs):
            try:
                loss = objective(model, x, y)
            except NonFiniteGradient:  # a perturbation from a diverged gradient: the same failure
                raise TrainingDiverged(math.nan, epoch, b, optimizer.steps + 1) from None
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise TypeError(f"fit: the objective must return a scalar loss Tensor, got {loss!r:.80}")
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(value, epoch, b, optimizer.steps + 1)
        optimizer.step(grad(loss, params, allow_unused=True))
        loss_sum, seen = loss_sum + value * len(yb), seen + len(yb)
        if outputs:
            wrong += int((outputs[-1].data.argmax(axis=1) != y).sum())
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
        initial_epoch: int = 0, history: list | None = None, metadata: dict | None = None) -> list:
    """Train ``model`` for epochs ``initial_epoch + 1 … epochs``; return the history.

    Each step: ``loss = objective(model, x, y)`` on a minibatch moved to the model's device,
    its gradient with respect to ``optimizer.params``, ``optimizer.step``.  The loss is checked
    first: NaN or ±inf raises TrainingDiverged naming the epoch, batch and step, with the
    parameters as they were before it and the last good checkpoint left on disk.

    train, valid: Datasets (x float32 (N, D), y int64 (N,)).
    seed: epoch e visits the examples in an order drawn from ``default_rng([seed, e])``, so a
    rerun, or a resumed run, sees the same batches.
    patience: with ``valid``, stop once the validation error has not improved for this many
    epochs, and give back the parameters of the best epoch.
    checkpoint: a path, written atomically after every epoch (``save_checkpoint``) with the
    epoch, seed, history and the JSON-ready ``metadata``.
    progress: True (stderr), a text stream, or False.
    initial_epoch, history: to resume, the checkpoint's ``epoch`` and ``history``.
    Returns one dict per epoch: epoch, lr, train_loss, train_error (running, in training mode,
    from the objective's own forward pass; None if it never evaluates the clean batch),
    valid_loss and valid_error (given ``valid``), seconds.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 0 <= initial_epoch <= epochs:
        raise ValueError(f"fit: need integers 0 <= initial_epoch <= epochs, got {initial_epoch}, {epochs}")
    if patience is not None and (valid is None or patience < 1):
        raise ValueError(f"fit: patience={patience} needs a validation set and must be >= 1")
    owned = getattr(objective, "parameters", lambda: [])()
    missing = [p for p in owned if not any(p is q for q in optimizer.params)]
    if missing:  # they would silently never train (e.g. the multitask decoder)
        raise ValueError(f"fit: the objective owns {len(missing)} parameters that the optimizer does not "
                         "update; build it with model.parameters() + objective.parameters()")
    stream = sys.stderr if progress is True else (progress or None)
    bar, history, modes = _Progress(stream, epochs), list(history or []), _modes(model)
    stopper, saved, meta = _EarlyStopping(patience) if patience else None, None, dict(metadata or {})
    try:
        for epoch in range(initial_epoch + 1, epochs + 1):
            optimizer.epoch = epoch - 1  # epoch schedules count completed epochs
            try:
                record = _train_epoch(model, objective, optimizer, train, valid, batch_size,
                                      np.random.default_rng([seed, epoch]), epoch, bar)
            except TrainingDiverged as e:
                e.checkpoint, e.checkpoint_epoch = (checkpoint, saved) if saved else (None, None)
                raise
            history.append(record)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, **meta, epoch=epoch, seed=seed, history=history)
                saved = epoch
            bar.line(_summary(record, epochs))
            if stopper and stopper.stop(model, epoch, record["valid_error"]):
                bar.line(f"early stop: no better validation error for {patience} epochs")
                break
    finally:
        bar.close()
        _restore_modes(model, modes)
    if stopper and stopper.epoch is not None and stopper.epoch != history[-1]["epoch"]:
        model.load_state_dict(stopper.state)
        bar.line(f"restored the parameters of epoch {stopper.epoch} (validation error {stopper.error:.2%})")
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, **meta, epoch=history[-1]["epoch"], seed=seed,
                            history=history, best_epoch=stopper.epoch)
    return history
