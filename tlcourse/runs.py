"""Run folders: what identifies a training run, and resuming it after a kernel restart.

:func:`resumable_fit` is ``model.fit`` with Keras's ``BackupAndRestore(double_checkpoint=True)``: a
checkpoint every epoch, the one before it kept while the next is written, and ``run.json`` naming
the run's :func:`settings` so that a folder of another model or other settings is refused, never
overwritten. :func:`tlcourse.train.fit` uses it when given ``run_dir=``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tlcourse import env
from tlcourse.errors import TrainError
from tlcourse.introspect import keras_backup_epoch, walk_layers

__all__ = [
    "architecture",
    "atomic_write",
    "data_identity",
    "fingerprint",
    "resumable_fit",
    "settings",
    "weights_fingerprint",
]


def fingerprint(*parts: Any) -> str:
    """A short hash of JSON-able parts and bytes."""
    digest = hashlib.sha256()
    for part in parts:
        is_bytes = isinstance(part, bytes)
        digest.update(part if is_bytes else json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _sample(array, limit: int = 1 << 16) -> bytes:
    flat = np.ascontiguousarray(array).reshape(-1)
    return np.ascontiguousarray(flat[:: max(1, flat.size // limit)][:limit]).tobytes()


def architecture(model) -> str:
    # Layer types and weight shapes, not names: Keras numbers names per process (dense_3).
    weights = [[*w.shape, str(w.dtype)] for w in model.weights]
    return fingerprint([type(layer).__name__ for layer in walk_layers(model)], weights)


def weights_fingerprint(model) -> str:
    """A sample of the first, middle and last weights' values: tells one seed from another."""
    weights = list(model.weights)
    chosen = {0, 1, 2, len(weights) // 2, len(weights) - 2, len(weights) - 1}
    return fingerprint(
        *(_sample(keras.ops.convert_to_numpy(weights[i])) for i in sorted(chosen) if 0 <= i < len(weights))
    )


def data_identity(data) -> str:
    """Arrays by (sampled) content; tf.data by spec, size and first two batches; a bundle by name and sizes."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "shape"):
        return fingerprint(
            *([list(a.shape), str(a.dtype), _sample(a, 1 << 18)] for a in map(np.asarray, data))
        )
    if isinstance(data, tf.data.Dataset):
        first = [_sample(np.asarray(t)) for element in data.take(2) for t in tf.nest.flatten(element)]
        return fingerprint(repr(data.element_spec), int(data.cardinality()), *first)
    return fingerprint(getattr(data, "name", repr(data)), getattr(data, "sizes", None))


def _write_error(exc: OSError, *, what: str, path: Path, intact: str = "") -> TrainError:
    full = exc.errno == errno.ENOSPC or "No space left" in str(exc)
    return TrainError(
        f"Could not write the {what} to {path}: {'the disk is full' if full else exc}. {intact}".strip(),
        hint="Free some disk space (or pass run_dir= on another disk) and run the same call again: it "
        "resumes from the last checkpoint."
        if full
        else "Check that the run directory is writable, then run the same call again.",
    )


def atomic_write(path: Path, write: Callable[[Path], None], *, what: str) -> None:
    """Write next to ``path``, then rename: a failed write (full disk, kill) leaves the old file."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _write_error(exc, what=what, path=path) from exc


def _write_json(path: Path, payload: Any, *, what: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=1)), what=what)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def settings(model, data, *, epochs: int, batch: int) -> dict[str, str]:
    """What decides the result of training, besides the initial weights: each part hashed."""

    def config(thing) -> Any:  # Keras numbers the names of optimizers (adam_1): leave them out
        if isinstance(thing, str) or thing is None:
            return thing
        serialized = keras.saving.serialize_keras_object(thing)
        serialized.get("config", {}).pop("name", None)
        return serialized

    return {
        "architecture": architecture(model),
        "optimizer": fingerprint(config(model.optimizer)),
        "loss": fingerprint(config(model.loss)),
        "data": data_identity(data),
        "epochs and batch size": fingerprint(int(epochs), batch),
    }


class _EpochLog(keras.callbacks.Callback):
    """Keeps the history of every finished epoch on disk, so that a resumed run reports them all."""

    def __init__(self, path: Path, previous: dict[str, list[float]]):
        super().__init__()
        self.path, self.history = path, previous

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        _write_json(self.path, self.history, what="run history")


def resumable_fit(
    model, fit_kwargs: dict, root: Path, settings: dict, *, resume: bool
) -> tuple[dict[str, list[float]], int]:
    """``model.fit`` with Keras's ``BackupAndRestore(double_checkpoint=True)`` in ``root/backup``.

    ``run.json`` names the run's settings: a folder holding another run's checkpoint is refused and
    kept. A finished run (``done.json``) is loaded instead of trained again.
    """
    backup, history_path, final = root / "backup", root / "history.json", root / "final.weights.h5"
    meta_path, done_path = root / "run.json", root / "done.json"
    meta = _read_json(meta_path) or {}
    differs = [part for part in settings if meta.get(part) != settings[part]]
    if resume and differs and (backup.exists() or final.exists()):
        raise TrainError(
            f"The run directory {root} holds a checkpoint of a different model or different settings "
            f"(other {', '.join(differs)}). Refusing to resume into it; the old checkpoint is kept.",
            hint="Pass another run_dir= for this run, or resume=False to delete the old run and start over.",
        )
    if not resume or differs:
        for path in (meta_path, history_path, final, done_path):
            path.unlink(missing_ok=True)
        shutil.rmtree(backup, ignore_errors=True)
    elif (done := _read_json(done_path)) is not None:
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # so that its saved state loads too
        model.load_weights(str(final))
        env.say(f"this run already finished in {root}: loaded its weights (resume=False trains again).")
        return _read_json(history_path) or {}, done["finished"]
    root.mkdir(parents=True, exist_ok=True)
    _write_json(meta_path, {**settings, "model": model.name}, what="run description")
    start = keras_backup_epoch(backup)
    if start:
        env.say(f"resuming {root.name} from epoch {start}/{fit_kwargs['epochs']} (checkpoint in {backup}).")
    log = _EpochLog(history_path, {k: v[:start] for k, v in (_read_json(history_path) or {}).items()})
    restore = keras.callbacks.BackupAndRestore(str(backup), double_checkpoint=True, delete_checkpoint=False)
    try:
        keras_history = model.fit(**{**fit_kwargs, "callbacks": [log, restore, *fit_kwargs["callbacks"]]})
    except OSError as exc:  # a checkpoint could not be written: Keras keeps the one before it
        kept = keras_backup_epoch(backup)
        intact = f"The checkpoint of epoch {kept} in {backup} is intact." if kept else ""
        raise _write_error(exc, what=f"checkpoint of epoch {kept + 1}", path=backup, intact=intact) from exc
    finished = start + len(next(iter(keras_history.history.values()), []))
    atomic_write(final, lambda tmp: model.save_weights(str(tmp)), what="final weights")
    _write_json(done_path, {"finished": finished}, what="run summary")
    shutil.rmtree(backup, ignore_errors=True)
    return log.history, start
