"""Checkpoints that cannot lie: written only when finite, only atomically, the previous one kept.

A checkpoint is one ``.npz`` file (no pickle: ``np.load(..., allow_pickle=False)`` reads it):

    param/<name>   every parameter (host NumPy, exact dtype)
    optim/<name>   the optimiser's counters and buffers (momentum, Adam moments)
    meta           a JSON string: format, model config, optimiser config, epoch, seed,
                   history, and the dropout generators' states

Three rules keep a run's work safe:

1. **Finite or not at all.**  ``save_checkpoint`` checks every parameter and optimiser buffer
   first; a NaN or inf anywhere raises ``NonFiniteState`` and nothing on disk changes.
2. **Atomic.**  The bytes go to a temporary file beside the target, are fsynced, and are moved
   into place with ``os.replace``: a reader (or a crash) sees the old file or the new one,
   never half of one.
3. **The previous one kept.**  Before the new file replaces ``checkpoint.npz``, the old one is
   hard-linked (or copied) to ``checkpoint.prev.npz``; so even a checkpoint that is finite but
   bad (a run that diverged a moment later) never costs the one before it.

Anything that is not a readable checkpoint (truncated, empty, random bytes, another format, a
damaged meta entry) raises ``CheckpointError`` naming the file and what is wrong; a checkpoint
that does not fit the model names the entries that differ.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from . import nn
from .errors import CheckpointError, Diverged, Terminated

FORMAT = "minigrad-checkpoint"
FORMAT_VERSION = 1


class NonFiniteState(Diverged):
    """The parameters or the optimiser state hold NaN or inf; such a state is never written."""


# --- writing ----------------------------------------------------------------------------------
def write_atomically(path, write, keep_previous: bool = False) -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then move it onto ``path``
    with ``os.replace``.  On any error the temporary file is removed and ``path`` is left as it
    was; readers never see a half-written file.  ``keep_previous``: first keep the current
    ``path`` as ``previous_path(path)`` (by a hard link, so ``path`` itself never disappears)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        if keep_previous and path.exists():
            _keep(path, previous_path(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def previous_path(path) -> Path:
    """``run/checkpoint.npz`` → ``run/checkpoint.prev.npz``: where the one before is kept."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _keep(path: Path, prev: Path):
    # Link (or copy) under a temporary name, then rename over prev: prev is always whole.
    tmp = prev.with_name(f".{prev.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        try:
            os.link(path, tmp)
        except OSError:  # a file system without hard links
            shutil.copy2(path, tmp)
        os.replace(tmp, prev)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _rngs(model) -> list:
    # Dropout's generators: restoring them makes a resumed run draw the same masks.
    return [m.rng for m in model.modules() if isinstance(getattr(m, "rng", None), np.random.Generator)]


def _non_finite(arrays: dict) -> list:
    return [k for k, v in arrays.items()
            if np.issubdtype(v.dtype, np.inexact) and not np.isfinite(v).all()]


def save_checkpoint(path, model, optimizer=None, **metadata) -> Path:
    """Write parameters, optimiser state and metadata (JSON-ready keyword arguments such as epoch,
    seed, history) to ``path``: finite-checked, atomic, the previous file kept as
    ``previous_path(path)``.  Returns the path; raises NonFiniteState (writing nothing) if any
    parameter or optimiser buffer holds NaN or inf."""
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    bad = _non_finite(arrays)
    if bad:
        raise NonFiniteState(f"save_checkpoint: refusing to write {path}: {', '.join(bad[:3])}"
                             f"{' and more' if len(bad) > 3 else ''} hold NaN or inf")
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": getattr(model, "config", None),
            "optimizer": None if optimizer is None else optimizer.config(),
            "rng": [g.bit_generator.state for g in _rngs(model)], **metadata}
    arrays["meta"] = np.array(json.dumps(meta))
    return write_atomically(path, lambda f: np.savez(f, **arrays), keep_previous=True)


# --- reading ----------------------------------------------------------------------------------
class Checkpoint(NamedTuple):
    model: nn.Module
    meta: dict  # config, optimizer, epoch, seed, history, ...


def read_checkpoint(path) -> tuple[dict, dict, dict]:
    """The raw contents of a checkpoint file: (params, optimiser arrays, meta), each validated.
    Raises CheckpointError for anything that is not a readable minigrad checkpoint."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file (try {path / 'checkpoint.npz'})")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a minigrad checkpoint")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:4] != b"PK\x03\x04":  # every .npz is a zip archive; we never try pickle
        what = "a single NumPy array (.npy)" if magic == b"\x93NUMPY" else f"not an .npz archive (it starts {magic!r})"
        raise CheckpointError(f"{path} is not a minigrad checkpoint: {what}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise CheckpointError(f"{path} is an .npz file but not a minigrad checkpoint (no 'meta' entry)")
            raw_meta = z["meta"]
            params = {k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")}
            optim = {k[len("optim/"):]: z[k] for k in z.files if k.startswith("optim/")}
    except CheckpointError:
        raise
    except ValueError:  # an entry that needs pickle (object arrays): not ours, and never unpickled
        raise CheckpointError(f"{path} is not a minigrad checkpoint: it holds Python objects, not plain arrays") \
            from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is truncated or damaged ({type(e).__name__}: {str(e)[:100]}); "
                              f"its previous version, if any, is {previous_path(path).name}") from None
    try:
        meta = json.loads(str(raw_meta))
    except (json.JSONDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: its meta entry is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its meta entry is a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format {meta.get('format')!r} version {meta.get('version')!r}; "
                              f"expected {FORMAT!r} version {FORMAT_VERSION}")
    return params, optim, meta


def _mismatch(model, params: dict, config) -> str:
    """Which entries differ between a model and a checkpoint (config, then parameters), in words."""
    own = {k: v.shape for k, v in model.state_dict().items()}
    mine = getattr(model, "config", None)
    lines = []
    if isinstance(config, dict) and isinstance(mine, dict):
        lines += [f"{k}: {config.get(k)!r} in the checkpoint, {mine.get(k)!r} in the model"
                  for k in sorted(set(config) | set(mine)) if json.dumps(config.get(k)) != json.dumps(mine.get(k))]
    if len(own) != len(params) or any(k not in own or own[k] != params[k].shape for k in params):
        lines += [f"{k}: missing from the checkpoint" for k in own if k not in params]
        lines += [f"{k}: in the checkpoint, not in the model" for k in params if k not in own]
        lines += [f"{k}: shape {params[k].shape} in the checkpoint, {own[k]} in the model"
                  for k in own if k in params and params[k].shape != own[k]]
    return "; ".join(lines[:4]) + ("; ..." if len(lines) > 4 else "")


def load_checkpoint(path, model=None, optimizer=None) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``/``fit``.

    model: load into this model (its architecture must match), or None to rebuild one on the CPU
    from the stored config.  optimizer: if given, its state is restored too (same kind, same
    parameters).  Values come back bit for bit.  Raises CheckpointError on a damaged file or a
    mismatch; nothing is changed before every check has passed."""
    params, optim, meta = read_checkpoint(path)
    saved_optimizer = (meta.get("optimizer") or {}).get("type")
    if optimizer is not None and saved_optimizer != type(optimizer).__name__:
        raise CheckpointError(f"{path} holds {saved_optimizer or 'no'} optimizer state, "
                              f"not {type(optimizer).__name__}")
    if model is None:
        if meta.get("config") is None:
            raise CheckpointError(f"{path} stores no model config; pass the model to load into")
        try:
            model = nn.build(meta["config"])
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: its model config {meta['config']} cannot be built ({e})") from None
    difference = _mismatch(model, params, meta.get("config"))
    if difference:
        raise CheckpointError(f"{path} holds a different architecture than the model: {difference}")
    bad = _non_finite(params)
    if bad:
        raise CheckpointError(f"{path}: parameter {bad[0]} holds NaN or inf (not a good checkpoint)")
    try:
        model.load_state_dict(params)
        for g, state in zip(_rngs(model), meta.get("rng", [])):
            g.bit_generator.state = state
        if optimizer is not None:
            optimizer.load_state_dict(optim)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path} does not fit: {e}") from None
    return Checkpoint(model, meta)


def last_good(path) -> tuple[Path, int] | None:
    """The newest readable, finite checkpoint among ``path`` and ``previous_path(path)``, as
    (path, epoch); None if neither is one.  What a diverged run's message points to."""
    for candidate in (Path(path), previous_path(path)):
        try:
            params, _, meta = read_checkpoint(candidate)
        except CheckpointError:
            continue
        if not _non_finite(params):
            return candidate, meta.get("epoch")
    return None



# --- a run's files, written as one ---------------------------------------------------------------
@dataclasses.dataclass
class Checkpointing:
    """Where and how ``fit`` saves after every epoch.

    path: the checkpoint file (``previous_path(path)`` keeps the one before).
    metadata: JSON-ready entries stored in every checkpoint (the data set, the command's flags).
    after_save: called with the history right after each checkpoint, inside the same section that
    Ctrl-C cannot split, so that files derived from it (``metrics.json``) always agree with it."""
    path: Path
    metadata: dict = dataclasses.field(default_factory=dict)
    after_save: Callable[[list], None] | None = None

    def save(self, model, optimizer, **entries):
        with interrupts_deferred():
            save_checkpoint(self.path, model, optimizer, **self.metadata, **entries)
            if self.after_save is not None:
                self.after_save(entries.get("history", []))


@contextlib.contextmanager
def interrupts_deferred():
    """Hold back Ctrl-C (SIGINT) and SIGTERM until the block is done, then raise them (SIGTERM as
    ``Terminated``): a checkpoint and the files that describe it are written together or not at all.
    (SIGKILL cannot be held back; the atomic renames are what protect against it.)  Outside the main
    thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if signal.SIGTERM in caught:
            raise Terminated
        if caught:
            raise KeyboardInterrupt
