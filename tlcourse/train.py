"""Training: cached features, safe fine-tuning, resumable runs and fair comparisons.

Every function here runs under the strategy and precision policy chosen by
:func:`tlcourse.setup` (``course.strategy``, ``course.precision``), scales the batch size
with the number of replicas, and checkpoints each epoch into a run directory so that
re-running a cell after a kernel restart continues where it stopped.

The verbs:

- :func:`extract_features` runs a frozen base once over a dataset and caches the embeddings.
- :func:`fit_head` trains a linear or MLP head on those embeddings.
- :func:`fine_tune` runs a list of :class:`Stage` s (head first, then the top of the base).
- :func:`fit` is ``model.fit`` with resumable checkpoints and checks of the data.
- :func:`compare` runs recipes with equal budgets over seeds and data fractions.

Scaling out uses ``tf.distribute`` only, never home-made distribution: ``setup()`` picks
``MirroredStrategy`` on several GPUs and ``TPUStrategy`` on a TPU (pod slice); these functions
build and compile under ``course.strategy.scope()`` and multiply the per-replica batch size by
``strategy.num_replicas_in_sync``, so the same lesson code runs unchanged on one CPU, several
GPUs or a TPU. Build your own models inside ``course.strategy.scope()`` too. The test suite
runs ``fit_head`` and ``fine_tune`` under ``MirroredStrategy`` over two logical CPU devices.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import math
import os
import shutil
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tlcourse import env
from tlcourse.errors import ConfigError, DataError, ModelError, TrainError, unknown_name
from tlcourse.introspect import (
    base_and_head,
    initial_epoch,
    optimizer_variable_index,
    recall,
    remember,
    trainable_params,
    unfreezable_layers,
    unfreeze,
    walk_layers,
)

__all__ = [
    "Comparison",
    "Features",
    "History",
    "Stage",
    "WarmupCosine",
    "compare",
    "default_stages",
    "discriminative",
    "extract_features",
    "fine_tune",
    "fit",
    "fit_head",
    "model_fingerprint",
    "weights_fingerprint",
]

_HEAD_LAYER_TYPES = (
    keras.layers.Dense,
    keras.layers.Dropout,
    keras.layers.Activation,
    keras.layers.Softmax,
    keras.layers.Flatten,
)


# --------------------------------------------------------------------------- small helpers
def _course():
    return env.current()


def _replicas() -> int:
    return getattr(_course().strategy, "num_replicas_in_sync", 1)


def _global_batch(batch_size: int | None) -> int:
    """Per-replica batch size (default: the profile's) times the number of replicas."""
    per_replica = batch_size or _course().budget.batch_size
    if int(per_replica) < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be a positive whole number.", hint="Try 32.")
    return int(per_replica) * _replicas()


def _jit_default(jit_compile: bool | str | None) -> bool | str:
    # Measured in bench/ (3): on this CPU XLA does not pay for itself on small models, so
    # "auto" means off on a CPU and Keras's own "auto" on a GPU/TPU.
    if jit_compile is not None and jit_compile != "auto":
        return bool(jit_compile)
    kinds = {d.kind for d in _course().devices}
    return "auto" if kinds & {"GPU", "TPU"} else False


def _sha(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, (bytes, bytearray, memoryview)):
            digest.update(bytes(part))
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _sample_bytes(array: np.ndarray, limit: int = 1 << 16) -> bytes:
    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.size > limit:
        flat = flat[:: max(1, flat.size // limit)][:limit]
    return np.ascontiguousarray(flat).tobytes()


def model_fingerprint(model: keras.Model) -> str:
    """A hash of the architecture: layer types in order and every weight's shape and dtype.

    Layer *names* are left out on purpose: Keras numbers them with a process-wide counter
    (``dense_3``), so the same code gives other names after a kernel restart.

    Examples
    --------
    >>> def make():
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model_fingerprint(make()) == model_fingerprint(make())
    True
    >>> other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    >>> model_fingerprint(make()) == model_fingerprint(other)
    False
    """
    layers = [type(layer).__name__ for layer in walk_layers(model)]
    weights = [[list(w.shape), str(w.dtype)] for w in model.weights]
    return _sha({"layers": layers, "weights": weights})[:16]


def weights_fingerprint(model: keras.Model, *, tensors: int = 3) -> str:
    """A cheap hash of the weight values: the shapes of all tensors and the bytes of a few.

    The first and last ``tensors`` weights (and the middle one) are hashed, sampled when large,
    which tells a pretrained base from a randomly initialised one and one seed from another.

    Examples
    --------
    >>> keras.utils.set_random_seed(0)
    >>> a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> keras.utils.set_random_seed(1)
    >>> b = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> weights_fingerprint(a) == weights_fingerprint(b)
    False
    """
    weights = list(model.weights)
    chosen = sorted(
        {*range(min(tensors, len(weights))), *range(max(0, len(weights) - tensors), len(weights))}
    )
    if weights:
        chosen.append(len(weights) // 2)
    digest = hashlib.sha256(json.dumps([list(w.shape) for w in weights]).encode())
    for index in sorted(set(chosen)):
        digest.update(_sample_bytes(keras.ops.convert_to_numpy(weights[index]).astype(np.float32)))
    return digest.hexdigest()[:16]


def _loss_kind(loss: Any) -> str | None:
    """'sparse', 'categorical' or None (a loss we do not check)."""
    if loss is None:
        return None
    name = loss if isinstance(loss, str) else type(loss).__name__
    if not isinstance(loss, str) and type(loss).__name__ == "function":
        name = getattr(loss, "__name__", "")
    name = name.lower().replace("_", "")
    if "sparsecategorical" in name:
        return "sparse"
    if "categoricalcrossentropy" in name or "categoricalfocal" in name:
        return "categorical"
    return None


def _output_units(model) -> int | None:
    try:
        shape = model.outputs[0].shape
    except (AttributeError, IndexError, ValueError, TypeError):
        return None
    return int(shape[-1]) if shape and shape[-1] is not None else None


def _expects_raw_pixels(model) -> bool:
    """Whether the model rescales raw [0, 255] pixels itself (tlcourse bases, Rescaling layers)."""
    for layer in walk_layers(model, include_self=True):
        if recall(layer, "info") is not None:
            return True
        if isinstance(layer, keras.layers.Rescaling):
            scale = np.asarray(layer.scale, dtype=np.float64).reshape(-1)
            return bool(scale.size and np.all(np.abs(scale) < 0.1))
    return False


def _check_pixels(model, x: np.ndarray, *, where: str) -> None:
    if x is None or x.ndim < 3 or not np.issubdtype(x.dtype, np.floating):
        return
    if x.size and float(np.nanmax(x)) <= 1.0 + 1e-6 and _expects_raw_pixels(model):
        raise DataError(
            f"The {where} yields float images in [{float(np.nanmin(x)):.2f}, {float(np.nanmax(x)):.2f}], "
            "but this model expects raw pixels in [0, 255] (uint8): it rescales them itself.",
            hint="Do not divide by 255 (or call a preprocess_input) before the model; "
            "feed the images as loaded. The base's preprocessing is inside the model.",
        )


def _check_labels(y: np.ndarray, *, loss_kind: str | None, num_classes: int | None, where: str) -> None:
    y = np.asarray(y)
    one_hot = y.ndim >= 2 and y.shape[-1] > 1
    if loss_kind == "sparse" and one_hot:
        raise DataError(
            f"The {where} labels are one-hot (shape {y.shape}), but the loss is sparse "
            "categorical cross-entropy, which expects integer class ids.",
            hint="Use loss=keras.losses.CategoricalCrossentropy(from_logits=True), "
            "or turn the labels into ids with y.argmax(-1).",
        )
    if loss_kind == "categorical" and not one_hot:
        raise DataError(
            f"The {where} labels are integer class ids (shape {y.shape}), but the loss is categorical "
            "cross-entropy, which expects one-hot labels.",
            hint="Use loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), "
            "or one-hot encode the labels with keras.utils.to_categorical(y, num_classes).",
        )
    if num_classes is None or y.size == 0:
        return
    if one_hot and y.shape[-1] != num_classes:
        raise DataError(
            f"The {where} labels are one-hot with {y.shape[-1]} classes, but the model has {num_classes} outputs.",
            hint=f"Build the head with num_classes={y.shape[-1]}.",
        )
    if not one_hot:
        if np.issubdtype(y.dtype, np.floating) and np.any(y != np.round(y)):
            raise DataError(
                f"The {where} labels are fractional floats; class ids must be whole numbers.",
                hint="Pass integer class ids 0..num_classes-1 (or one-hot rows with a categorical loss).",
            )
        high, low = int(np.max(y)), int(np.min(y))
        if low < 0 or high >= num_classes:
            raise DataError(
                f"The {where} labels go from {low} to {high}, but the model has {num_classes} outputs "
                f"(classes 0..{num_classes - 1}).",
                hint=f"Use num_classes={high + 1} (the number of classes in the data), "
                "or relabel the classes to 0..num_classes-1.",
            )


def _is_dataset(data) -> bool:
    return isinstance(data, tf.data.Dataset)


def _is_bundle(data) -> bool:
    return hasattr(data, "batches") and hasattr(data, "train") and not _is_dataset(data)


def _is_arrays(data) -> bool:
    return (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and not _is_dataset(data[0])
        and hasattr(data[0], "shape")
        and hasattr(data[1], "shape")
    )


def _to_numpy(value) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _first_batch(data, *, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The first (x, y) batch of a dataset or arrays; DataError when there is none."""
    if _is_arrays(data):
        x, y = data
        if len(x) == 0:
            raise DataError(
                f"The {where} is empty (0 examples).",
                hint="Check the split, the class filter and labels_per_class.",
            )
        if len(x) != len(y):
            raise DataError(
                f"The {where} has {len(x)} images but {len(y)} labels.", hint="Pass matching (x, y)."
            )
        return np.asarray(x[:64]), np.asarray(y)
    if not _is_dataset(data):
        raise DataError(
            f"The {where} is a {type(data).__name__}; expected a tf.data.Dataset of (x, y) or a tuple (x, y).",
            hint="Pass bundle.batches('train'), a tf.data.Dataset, or numpy arrays (x, y).",
        )
    if int(data.cardinality()) == 0:
        raise DataError(
            f"The {where} is empty (it yields no elements).",
            hint="Check the split, the class filter (classes=...) and labels_per_class; "
            "a .take(0) or a filter that drops everything gives an empty dataset.",
        )
    for element in data.take(1):
        if not isinstance(element, (tuple, list)) or len(element) < 2:
            raise DataError(
                f"The {where} yields single tensors, not (image, label) pairs.",
                hint="Map it to pairs: ds.map(lambda x: (x, label)) or zip images with labels.",
            )
        return _to_numpy(element[0]), _to_numpy(element[1])
    raise DataError(
        f"The {where} is empty (it yields no elements).",
        hint="Check the split, the class filter (classes=...) and labels_per_class.",
    )


def _check_training_data(model, data, *, where: str) -> None:
    x, y = _first_batch(data, where=where)
    _check_pixels(model, x, where=where)
    _check_labels(
        y, loss_kind=_loss_kind(getattr(model, "loss", None)), num_classes=_output_units(model), where=where
    )


def _data_fingerprint(data, *, probe: bool = True) -> str:
    """Identity of a dataset: arrays by (sampled) content; tf.data by spec, cardinality and first batches."""
    if _is_arrays(data):
        x, y = (np.asarray(a) for a in data)
        return _sha(list(x.shape), str(x.dtype), _sample_bytes(x, 1 << 18), list(y.shape), _sample_bytes(y))[
            :16
        ]
    if _is_dataset(data):
        parts = [repr(data.element_spec), int(data.cardinality())]
        if probe:
            for element in data.take(2):
                for tensor in tf.nest.flatten(element):
                    parts.append(_sample_bytes(_to_numpy(tensor), 1 << 16))
        return _sha(*parts)[:16]
    if _is_bundle(data):
        return _sha(
            getattr(data, "name", ""), getattr(data, "sizes", {}), getattr(data, "image_shape", None)
        )[:16]
    return _sha(repr(data))[:16]


def _atomic_write(path: Path, write: Callable[[Path], None], *, what: str, intact: str = "") -> None:
    """Write to a temporary file next to ``path`` and rename it: a failed write leaves the old file."""
    path = Path(path)
    # Keras insists on the suffixes of weight and model files, so the temporary name keeps them.
    suffix = "".join(path.suffixes)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name[: len(path.name) - len(suffix)]}{suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        full = exc.errno == errno.ENOSPC or "No space left" in str(exc)
        reason = "the disk is full" if full else f"{exc.strerror or exc}"
        raise TrainError(
            f"Could not write the {what} to {path}: {reason}.{(' ' + intact) if intact else ''}",
            hint="Free some disk space (or pass run_dir= on another disk) and run the same call again: "
            "it resumes from the last checkpoint."
            if full
            else "Check that the run directory is writable, then run the same call again.",
        ) from exc


def _write_json(path: Path, payload: Any, *, what: str, intact: str = "") -> None:
    _atomic_write(path, lambda p: p.write_text(json.dumps(payload, indent=1)), what=what, intact=intact)


# --------------------------------------------------------------------------- history
@dataclass
class History:
    """The combined history of one or several training stages.

    Attributes
    ----------
    history : dict of str to list of float
        Per-epoch metrics, concatenated across stages (like ``keras.callbacks.History.history``).
    stage_boundaries : list of int
        Epoch index where each stage starts (``[0, 3]``: stage 2 starts at epoch 3).
    stages : list of str
        A description of each stage.
    run_dir : Path or None
        Where the checkpoints live.

    Examples
    --------
    >>> h = History({"loss": [1.0, 0.5, 0.4]}, stage_boundaries=[0, 2], stages=["head", "top 10"])
    >>> h.epochs, h.final("loss")
    (3, 0.4)
    """

    history: dict[str, list[float]]
    stage_boundaries: list[int] = field(default_factory=lambda: [0])
    stages: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    resumed_from: int = 0

    @property
    def epochs(self) -> int:
        return max((len(v) for v in self.history.values()), default=0)

    @property
    def epoch(self) -> list[int]:
        return list(range(self.epochs))

    def final(self, metric: str = "val_accuracy") -> float:
        """The last value of ``metric``."""
        if metric not in self.history:
            raise unknown_name("metric", metric, self.history, error=TrainError)
        return float(self.history[metric][-1])

    def best(self, metric: str = "val_accuracy") -> float:
        """The best value of ``metric`` (lowest for losses, highest otherwise)."""
        if metric not in self.history:
            raise unknown_name("metric", metric, self.history, error=TrainError)
        values = np.asarray(self.history[metric], dtype=float)
        return float(np.nanmin(values) if "loss" in metric else np.nanmax(values))

    @classmethod
    def concatenate(cls, parts: Sequence[History], stages: Sequence[str], run_dir=None) -> History:
        keys = list(dict.fromkeys(k for part in parts for k in part.history))
        merged: dict[str, list[float]] = {k: [] for k in keys}
        boundaries = []
        start = 0
        for part in parts:
            boundaries.append(start)
            n = part.epochs
            for k in keys:
                merged[k].extend(part.history.get(k, [float("nan")] * n))
            start += n
        return cls(merged, stage_boundaries=boundaries, stages=list(stages), run_dir=run_dir)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v)
        return f"History({self.epochs} epochs, {len(self.stage_boundaries)} stage(s): {shown})"


# --------------------------------------------------------------------------- resumable fit
class _AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that never leaves a half-written checkpoint behind (disk full, kill)."""

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        intact = f"The checkpoint of epoch {self._saved_epoch} in {self.backup_dir} is intact."
        _atomic_write(
            Path(self._weights_path),
            lambda p: self.model.save_weights(str(p), overwrite=True),
            what=f"checkpoint of epoch {self._current_epoch}",
            intact=intact,
        )
        _write_json(
            Path(self._training_metadata_path),
            {"epoch": self._current_epoch, "batch": self._last_batch_seen},
            what="checkpoint metadata",
            intact=intact,
        )
        self._saved_epoch = self._current_epoch

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._saved_epoch = initial_epoch(self.model)


class _RunLog(keras.callbacks.Callback):
    """Keeps the history of every finished epoch on disk, and writes the best model as a .keras file.

    The best weights are kept in memory during the fit and saved once at its end: a full
    .keras file per epoch would cost more than an epoch of training a head on cached features.
    """

    def __init__(self, run: _Run, previous: dict[str, list[float]], monitor: str):
        super().__init__()
        self.run = run
        self.history = {k: list(v) for k, v in previous.items()}
        self.monitor = monitor
        self.best = math.inf
        self.best_weights = None
        if previous.get(monitor):
            self.best = float(np.nanmin(previous[monitor]))

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        _write_json(self.run.history_path, self.history, what="run history")
        value = (logs or {}).get(self.monitor)
        if value is not None and float(value) < self.best:
            self.best = float(value)
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.best_weights is None:
            return
        current = self.model.get_weights()
        self.model.set_weights(self.best_weights)
        try:
            _atomic_write(
                self.run.best_path,
                lambda p: self.model.save(str(p)),
                what="best model",
                intact="The previous best model is intact.",
            )
        finally:
            self.model.set_weights(current)


class _Run:
    """The files of one run directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.meta_path = self.root / "run.json"
        self.backup_dir = self.root / "backup"
        self.history_path = self.root / "history.json"
        self.best_path = self.root / "best.keras"
        self.final_path = self.root / "final.weights.h5"
        self.done_path = self.root / "done.json"

    def meta(self) -> dict:
        try:
            return json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return {}

    def has_checkpoint(self) -> bool:
        return (self.backup_dir / "latest.weights.h5").exists() or self.final_path.exists()

    def checkpoint_epoch(self) -> int:
        try:
            return int(json.loads((self.backup_dir / "training_metadata.json").read_text())["epoch"])
        except (OSError, ValueError, KeyError):
            return 0

    def done(self) -> dict | None:
        try:
            return json.loads(self.done_path.read_text())
        except (OSError, ValueError):
            return None

    def history(self, epochs: int | None = None) -> dict[str, list[float]]:
        try:
            stored = json.loads(self.history_path.read_text())
        except (OSError, ValueError):
            return {}
        if epochs is None:
            return stored
        return {k: v[:epochs] for k, v in stored.items()}

    def clear(self) -> None:
        for path in (self.meta_path, self.history_path, self.best_path, self.final_path, self.done_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        shutil.rmtree(self.backup_dir, ignore_errors=True)


def _auto_run_dir(model, train, epochs: int, extra: Any = None) -> Path:
    # The same call (architecture, initial weights, data, epochs) after a kernel restart
    # lands in the same folder; a different seed or dataset gets its own.
    course = _course()
    key = _sha(
        model_fingerprint(model),
        weights_fingerprint(model),
        _data_fingerprint(train, probe=False),
        epochs,
        extra,
    )[:12]
    return env.cache_dir("runs", course.lesson or "scratch") / f"{model.name}-{key}"


_IN_GRAPH_LIMIT = (
    256 * 2**20
)  # bytes: bigger arrays go to Keras as they are (graph constants max out at 2 GB)


def _array_dataset(data, global_batch: int, *, shuffle: bool):
    """numpy (x, y) as a cached, shuffled, batched tf.data pipeline; anything else unchanged.

    Measured: Keras's own array path costs ~5x more per epoch than a cached dataset, which
    dominates when training a head on cached features.
    """
    if not _is_arrays(data):
        return data
    x, y = (np.asarray(a) for a in data)
    if x.nbytes + y.nbytes > _IN_GRAPH_LIMIT:
        return _ArrayBatches(x, y, global_batch, shuffle)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        # Seeded from NumPy, which keras.utils.set_random_seed seeds: runs repeat exactly.
        ds = ds.shuffle(min(len(x), 10_000), seed=int(np.random.randint(2**31 - 1)))
    return ds.batch(global_batch).prefetch(tf.data.AUTOTUNE)


class _ArrayBatches(keras.utils.PyDataset):
    """Batches of large in-memory arrays (too big to become graph constants)."""

    def __init__(self, x, y, batch_size, shuffle):
        super().__init__()
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.order = np.random.permutation(len(x)) if shuffle else np.arange(len(x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        chosen = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return self.x[chosen], self.y[chosen]

    def on_epoch_end(self):
        if self.shuffle:
            self.order = np.random.permutation(len(self.x))


def fit(
    model: keras.Model,
    train,
    *,
    val=None,
    epochs: int,
    run_dir: str | os.PathLike | bool | None = None,
    batch_size: int | None = None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    early_stopping: int | None = None,
    resume: bool = True,
    verbose: str | int = "auto",
    key: str | None = None,
) -> History:
    """Train a compiled model, checkpointing every epoch so that a re-run resumes.

    Parameters
    ----------
    model : keras.Model
        A compiled model.
    train, val : tf.data.Dataset of batches, (x, y) numpy arrays or a DataBundle
        Training and validation data (``val`` optional; a DataBundle brings its own).
    epochs : int
        Total number of epochs (also after a resume).
    run_dir : path, None or False
        Where checkpoints go. None: a folder under ``cache_dir("runs")`` named after the model,
        its initial weights, the data and ``epochs`` (so the same cell after a kernel restart finds
        it). False: no checkpoints.
    batch_size : int, optional
        Per-replica batch size for numpy arrays (default: the profile's).
    early_stopping : int, optional
        Patience in epochs on the validation loss (best weights restored).
    resume : bool
        False starts over (the run directory is emptied).
    key : str, optional
        Extra identity of the run for the automatic run directory.

    Returns
    -------
    History
        Also covers epochs finished before a resume.

    Raises
    ------
    TrainError
        When the run directory holds another model's checkpoint (it is kept), or the disk is
        full while checkpointing (the previous checkpoint is kept).
    DataError
        Empty data, labels that do not match the loss or the number of outputs, [0, 1] images
        for a model that expects [0, 255].

    Examples
    --------
    >>> import numpy as np, keras
    >>> x, y = np.random.rand(64, 4).astype("float32"), np.arange(64) % 2
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> fit(model, (x, y), epochs=2, run_dir=False, verbose=0).epochs
    2
    """
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise TrainError(
            f"The model {model.name!r} is not compiled.",
            hint="Call model.compile(optimizer=..., loss=keras.losses.SparseCategoricalCrossentropy"
            "(from_logits=True), metrics=['accuracy']) first, or use tlcourse.train.fine_tune.",
        )
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ConfigError(f"epochs={epochs!r} must be a whole number ≥ 0.", hint="Try epochs=5.")
    if _is_bundle(train):
        bundle = train
        train = bundle.batches("train", batch_size=_global_batch(batch_size))
        if val is None:
            val = bundle.batches("val", batch_size=_global_batch(batch_size), shuffle=False)
    _check_training_data(model, train, where="training data")
    if val is not None:
        _check_training_data(model, val, where="validation data")
    if early_stopping and val is None:
        raise TrainError(
            "early_stopping needs validation data.",
            hint="Pass val=... (or a DataBundle), or drop early_stopping.",
        )

    fit_kwargs: dict[str, Any] = {"epochs": int(epochs), "verbose": verbose}
    # The pipelines shuffle themselves (Keras would only warn about shuffle=True on a dataset).
    fit_kwargs["shuffle"] = False
    fit_kwargs["x"] = _array_dataset(train, _global_batch(batch_size), shuffle=True)
    if val is not None:
        fit_kwargs["validation_data"] = _array_dataset(val, _global_batch(batch_size), shuffle=False)
    extra_callbacks = list(callbacks)
    if early_stopping:
        extra_callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=int(early_stopping), restore_best_weights=True
            )
        )
    monitor = "val_loss" if val is not None else "loss"

    if run_dir is False:
        keras_history = model.fit(callbacks=extra_callbacks, **fit_kwargs)
        return History({k: [float(v) for v in vs] for k, vs in keras_history.history.items()})

    fingerprint = model_fingerprint(model)
    root = Path(run_dir) if run_dir not in (None, True) else _auto_run_dir(model, train, epochs, key)
    root.mkdir(parents=True, exist_ok=True)
    run = _Run(root)
    meta = run.meta()
    if meta and meta.get("fingerprint") != fingerprint and run.has_checkpoint():
        raise TrainError(
            f"The run directory {root} holds a checkpoint of a different model "
            f"({meta.get('model', '?')}, fingerprint {meta.get('fingerprint')}; this model is "
            f"{model.name}, fingerprint {fingerprint}). Refusing to resume into it; the old checkpoint is kept.",
            hint="Pass another run_dir= for this model, or resume=False to delete the old run and start over.",
        )
    if not resume:
        run.clear()
    done = run.done()
    if done is not None and done.get("epochs") == int(epochs) and done.get("fingerprint") == fingerprint:
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # so that its saved state loads too
        model.load_weights(str(run.final_path))
        env.say(f"run already finished in {root}: loaded its weights (resume=False trains again).")
        return History(run.history(), run_dir=root, resumed_from=int(done.get("finished", epochs)))
    if done is not None:
        run.clear()
    _write_json(
        run.meta_path,
        {"fingerprint": fingerprint, "model": model.name, "epochs": int(epochs), "created": time.time()},
        what="run description",
    )
    start = run.checkpoint_epoch()
    previous = run.history(start) if start else {}
    if start:
        env.say(f"resuming {root.name} from epoch {start}/{epochs} (checkpoint in {root}).")
    backup = _AtomicBackupAndRestore(str(run.backup_dir), delete_checkpoint=False)
    log = _RunLog(run, previous, monitor)
    keras_history = model.fit(callbacks=[log, backup, *extra_callbacks], **fit_kwargs)
    stopped = start + len(next(iter(keras_history.history.values()), []))
    _atomic_write(run.final_path, lambda p: model.save_weights(str(p)), what="final weights")
    _write_json(
        run.done_path,
        {"epochs": int(epochs), "finished": stopped, "fingerprint": fingerprint},
        what="run summary",
    )
    shutil.rmtree(run.backup_dir, ignore_errors=True)
    return History(log.history, run_dir=root, resumed_from=start)


# --------------------------------------------------------------------------- features
@dataclass
class Features:
    """Embeddings of a dataset computed by a frozen base. Unpacks as ``features, labels``.

    Attributes
    ----------
    features : np.ndarray, shape (n, d), float32
    labels : np.ndarray, shape (n,) or (n, k)
    key : str
        The cache key (base, weights, data, split, image size, preprocessing).
    source : str
        "computed", "memory" or "disk".
    seconds : float
        Time it took to get them this time.
    """

    features: np.ndarray
    labels: np.ndarray
    key: str
    source: str = "computed"
    seconds: float = 0.0

    def __iter__(self):
        return iter((self.features, self.labels))

    def __len__(self) -> int:
        return len(self.features)

    def __repr__(self) -> str:
        return (
            f"Features({self.features.shape[0]} × {self.features.shape[1]}, labels {self.labels.shape}, "
            f"{self.source} in {self.seconds:.2f} s)"
        )


_FEATURE_CACHE: dict[str, Features] = {}


def _base_identity(base) -> dict:
    info = recall(base, "info")
    return {
        "name": base.name,
        "architecture": model_fingerprint(base),
        "weights": weights_fingerprint(base),
        "input": [None if d is None else int(d) for d in base.inputs[0].shape[1:]] if base.inputs else None,
        "preprocessing": getattr(info, "preprocessing", None),
        "policy": keras.mixed_precision.global_policy().name,
    }


def _as_dataset(data, *, rank: int | None, batch_size: int) -> tf.data.Dataset:
    """A batched tf.data.Dataset of (x, y) from arrays or a (batched or unbatched) dataset."""
    if _is_arrays(data):
        return tf.data.Dataset.from_tensor_slices(tuple(data)).batch(batch_size)
    spec = data.element_spec
    if not isinstance(spec, (tuple, list)) or len(spec) < 2:
        raise DataError(
            "The dataset yields single tensors, not (image, label) pairs.",
            hint="Map it to pairs: ds.map(lambda x: (x, label)).",
        )
    x_rank = spec[0].shape.rank
    if rank is not None and x_rank is not None and x_rank == rank - 1:
        return data.batch(batch_size)
    return data


def extract_features(
    base: keras.Model,
    data,
    *,
    split: str | None = None,
    cache: bool = True,
    batch_size: int | None = None,
    key: str | None = None,
    verbose: str | int = "auto",
) -> Features:
    """Run a frozen base once over a dataset and return (and cache) its embeddings.

    Parameters
    ----------
    base : keras.Model
        A model that maps images to feature vectors (e.g. ``tlcourse.models.backbone(...)``).
    data : tf.data.Dataset of (x, y), batched or not; (x, y) numpy arrays; or a DataBundle
        The images and labels. The order is kept: do not shuffle it.
    split : str, optional
        With a DataBundle: which split ("train", "val", "test"; default "train").
    cache : bool
        Keep the result in memory and under ``cache_dir("features")``; the key covers the base
        (name, architecture, a fingerprint of the weights), the data (``key`` or a fingerprint of
        the first batches and the cardinality), the split, the image size and the preprocessing.
    batch_size : int, optional
        Per-replica batch size for unbatched data (default: the profile's).
    key : str, optional
        A name for the dataset's identity (skips fingerprinting its first batches).

    Returns
    -------
    Features
        Unpacks as ``features, labels`` (float32 [n, d] and the labels as given).

    Examples
    --------
    >>> import numpy as np, keras
    >>> base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()], name="gap")
    >>> x, y = np.random.rand(10, 8, 8, 3).astype("float32"), np.arange(10) % 2
    >>> feats, labels = extract_features(base, (x, y), cache=False, verbose=0)
    >>> feats.shape, labels.shape
    ((10, 3), (10,))
    """
    started = time.perf_counter()
    global_batch = _global_batch(batch_size)
    if _is_bundle(data):
        split = split or "train"
        data_key = key or f"{getattr(data, 'name', 'bundle')}:{split}:{_data_fingerprint(data)}"
        data = data.batches(split, batch_size=global_batch, shuffle=False)
    else:
        data_key = key
    rank = len(base.inputs[0].shape) if getattr(base, "inputs", None) else None
    dataset = _as_dataset(data, rank=rank, batch_size=global_batch)
    if int(dataset.cardinality()) == 0:
        raise DataError(
            "The dataset to extract features from is empty.",
            hint="Check the split, the class filter and labels_per_class.",
        )
    x_first, _ = _first_batch(dataset, where="dataset")
    _check_pixels(base, x_first, where="dataset")
    cache_key = _sha(
        _base_identity(base),
        data_key or _data_fingerprint(dataset),
        int(dataset.cardinality()),
        split,
        list(x_first.shape[1:]),
        str(x_first.dtype),
    )[:24]
    path = env.cache_dir("features") / f"{base.name}-{cache_key}.npz"
    if cache and cache_key in _FEATURE_CACHE:
        hit = _FEATURE_CACHE[cache_key]
        return Features(hit.features, hit.labels, cache_key, "memory", time.perf_counter() - started)
    if cache and path.exists():
        try:
            with np.load(path) as stored:
                result = Features(stored["features"], stored["labels"], cache_key, "disk")
            result.seconds = time.perf_counter() - started
            _FEATURE_CACHE[cache_key] = result
            return result
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged file: compute again

    arrays = tuple(np.asarray(a) for a in data) if _is_arrays(data) else None
    features, labels = _predict_with_labels(
        base, dataset, verbose=verbose, arrays=arrays, batch_size=global_batch
    )
    if len(features) == 0:
        raise DataError("The dataset to extract features from is empty.", hint="Check the split and filters.")
    result = Features(features, labels, cache_key, "computed", time.perf_counter() - started)
    if cache:
        _FEATURE_CACHE[cache_key] = result
        try:
            _atomic_write(path, lambda p: _save_npz(p, features, labels), what="feature cache")
        except TrainError as exc:  # a cache that cannot be written is not worth failing a lesson for
            env.say(f"could not cache the features on disk ({exc.message}); they stay in memory.")
    return result


def _save_npz(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, features=features, labels=labels)


_WRAPPERS: dict[tuple, tuple[weakref.ref, keras.Model]] = {}


def _feature_wrapper(base, x_spec, y_spec) -> keras.Model:
    """base + a pass-through for the labels, one per (base, input spec, strategy): its traced
    predict function is reused for the next split instead of being traced again."""
    strategy = _course().strategy
    key = (id(base), repr(x_spec), repr(y_spec), id(strategy), keras.mixed_precision.global_policy().name)
    found = _WRAPPERS.get(key)
    if found is not None and found[0]() is base:
        return found[1]
    with strategy.scope():
        image_in = keras.Input(shape=tuple(x_spec.shape[1:]), dtype=x_spec.dtype)
        label_in = keras.Input(shape=tuple(y_spec.shape[1:]), dtype="float32")
        embedding = base(image_in, training=False)
        if len(embedding.shape) > 2:
            embedding = keras.layers.Flatten(dtype="float32")(embedding)
        embedding = keras.layers.Activation("linear", dtype="float32")(embedding)
        labels_out = keras.layers.Identity(dtype="float32")(label_in)
        wrapper = keras.Model([image_in, label_in], [embedding, labels_out], name=f"{base.name}_features")
    for stale in [k for k, (ref, _) in _WRAPPERS.items() if ref() is None]:
        del _WRAPPERS[stale]
    _WRAPPERS[key] = (weakref.ref(base), wrapper)
    return wrapper


_EMBEDDERS: dict[tuple, tuple[weakref.ref, Callable]] = {}


def _embedder(base, x_spec: tf.TensorSpec) -> Callable:
    """base → float32 ``[n, d]`` as one ``tf.function`` for any batch size.

    Traced once per (base, image shape and dtype, precision policy) and reused for every split
    and every later call: Keras's ``predict`` traces its step again for a short last batch, and
    once more for each new wrapper model. The function holds the base weakly (its graph keeps
    the variables), so a dropped base is not kept alive by this cache.
    """
    policy = keras.mixed_precision.global_policy().name
    key = (id(base), tuple(x_spec.shape[1:]), x_spec.dtype.name, policy)
    found = _EMBEDDERS.get(key)
    if found is not None and found[0]() is base:
        return found[1]
    base_ref = weakref.ref(base)

    @tf.function(input_signature=[tf.TensorSpec([None, *x_spec.shape[1:]], x_spec.dtype)])
    def embed(images):
        embedding = base_ref()(images, training=False)
        if len(embedding.shape) > 2:
            embedding = tf.reshape(embedding, [tf.shape(embedding)[0], -1])
        return tf.cast(embedding, tf.float32)

    for stale in [k for k, (ref, _) in _EMBEDDERS.items() if ref() is None]:
        del _EMBEDDERS[stale]
    _EMBEDDERS[key] = (base_ref, embed)
    return embed


def _progress(verbose, steps: int | None):
    level = 1 if verbose == "auto" else int(verbose)
    return keras.utils.Progbar(steps, verbose=level, unit_name="batch") if level else None


def _predict_with_labels(
    base, dataset: tf.data.Dataset, *, verbose, arrays=None, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """One pass of the frozen base over the data: (features float32 [n, d], labels as given).

    On one replica, a loop over the batches calls :func:`_embedder` (numpy arrays are sliced
    in place of going through tf.data; each batch keeps its labels beside its images); under a
    multi-replica strategy, Keras's ``predict`` on a wrapper model spreads the batches over the
    replicas.
    """
    if _replicas() > 1:
        return _predict_distributed(base, dataset, verbose=verbose)
    x_spec, y_spec = dataset.element_spec[:2]
    embed = _embedder(base, x_spec)
    if arrays is not None:
        x, y = arrays
        starts = range(0, len(x), batch_size)
        batches = ((x[i : i + batch_size], y[i : i + batch_size]) for i in starts)
        steps = len(starts)
    else:
        batches = (element[:2] for element in dataset.prefetch(tf.data.AUTOTUNE))
        steps = int(dataset.cardinality()) if int(dataset.cardinality()) > 0 else None
    progress = _progress(verbose, steps)
    features, labels = [], []
    for step, (x_batch, y_batch) in enumerate(batches, start=1):
        features.append(embed(x_batch).numpy())
        labels.append(_to_numpy(y_batch))
        if progress is not None:
            progress.update(step)
    if not features:
        return np.zeros((0, 0), np.float32), np.zeros((0,), y_spec.dtype.as_numpy_dtype)
    return np.concatenate(features), np.concatenate(labels)


def _predict_distributed(base, dataset: tf.data.Dataset, *, verbose) -> tuple[np.ndarray, np.ndarray]:
    # One pass over the data keeps images and labels in step even if the pipeline shuffles:
    # a wrapper model carries the labels through untouched next to the base's output.
    x_spec, y_spec = dataset.element_spec[:2]
    y_dtype = y_spec.dtype.as_numpy_dtype
    pairs = dataset.map(lambda x, y: ((x, tf.cast(y, tf.float32)),), num_parallel_calls=tf.data.AUTOTUNE)
    pairs = pairs.prefetch(tf.data.AUTOTUNE)
    wrapper = _feature_wrapper(base, x_spec, y_spec)
    features, labels = wrapper.predict(pairs, verbose=verbose)
    return np.asarray(features, dtype=np.float32), np.asarray(labels).astype(y_dtype)


# --------------------------------------------------------------------------- heads
def _as_xy(data, *, where: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(data, Features):
        return data.features, data.labels
    if _is_arrays(data):
        return np.asarray(data[0]), np.asarray(data[1])
    raise DataError(
        f"The {where} must be Features or a (features, labels) pair of arrays; got {type(data).__name__}.",
        hint="Pass the result of extract_features(...).",
    )


_HEAD_EVAL_BATCH = 1024  # rows of features per validation step in fit_head


def fit_head(
    features,
    labels=None,
    *,
    val=None,
    num_classes: int | None = None,
    head: str = "linear",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    seed: int = 0,
    dropout: float = 0.2,
    hidden: int = 128,
    early_stopping: int | None = None,
    run_dir: str | os.PathLike | bool | None = None,
    verbose: str | int = "auto",
) -> tuple[keras.Model, History]:
    """Train a classification head on cached embeddings.

    Parameters
    ----------
    features : Features or np.ndarray [n, d]
        From :func:`extract_features` (then ``labels`` comes with it).
    labels : np.ndarray, optional
        Integer class ids [n] or one-hot rows [n, k].
    val : Features or (features, labels), optional
        Validation embeddings.
    num_classes : int, optional
        Number of outputs (default: inferred from the labels); checked against them.
    head : {"linear", "mlp"}
        A single Dense layer, or Dense(hidden, relu) + Dropout + Dense.
    epochs, batch_size : int, optional
        Default: the profile's budget.
    learning_rate : float
    seed : int
        Seeds the head's initial weights and the shuffling.

    Returns
    -------
    (keras.Model, History)
        The head outputs logits (float32 even under mixed precision).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(200) % 2
    >>> x = (rng.normal(size=(200, 8)) + y[:, None] * 2).astype("float32")
    >>> head, history = fit_head(x, y, epochs=20, learning_rate=0.05, run_dir=False, verbose=0)
    >>> history.final("accuracy") > 0.9
    True
    """
    if labels is None:
        x, y = _as_xy(features, where="features")
    else:
        x, y = (
            np.asarray(features.features if isinstance(features, Features) else features),
            np.asarray(labels),
        )
    if x.ndim != 2:
        raise DataError(
            f"Features must be a 2-D array [examples, dimensions]; got shape {x.shape}.",
            hint="Use a base with pooling (a feature vector per image), e.g. tlcourse.models.backbone(...).",
        )
    if len(x) == 0:
        raise DataError(
            "There are no features to train on (0 examples).", hint="Check the split and filters."
        )
    if len(x) != len(y):
        raise DataError(
            f"{len(x)} feature rows but {len(y)} labels.", hint="Pass matching features and labels."
        )
    one_hot = y.ndim >= 2 and y.shape[-1] > 1
    inferred = int(y.shape[-1]) if one_hot else int(np.max(y)) + 1
    num_classes = inferred if num_classes is None else int(num_classes)
    _check_labels(y, loss_kind=None, num_classes=num_classes, where="training")
    if val is not None:
        xv, yv = _as_xy(val, where="validation features")
        _check_labels(yv, loss_kind=None, num_classes=num_classes, where="validation")
        # Validation does not depend on the batch size: a head on cached features is evaluated
        # in large batches, which saves per-step overhead after every epoch.
        eval_batch = max(_global_batch(batch_size), _HEAD_EVAL_BATCH)
        val = _array_dataset((xv, yv), eval_batch, shuffle=False)
    if head not in ("linear", "mlp"):
        raise unknown_name("head", head, ["linear", "mlp"])
    budget = _course().budget
    epochs = budget.epochs if epochs is None else epochs

    keras.utils.set_random_seed(seed)
    with _course().strategy.scope():
        layers: list[keras.layers.Layer] = [keras.Input((x.shape[1],))]
        if head == "mlp":
            layers += [keras.layers.Dense(hidden, activation="relu"), keras.layers.Dropout(dropout)]
        elif dropout:
            layers.append(keras.layers.Dropout(dropout))
        layers.append(keras.layers.Dense(num_classes, dtype="float32", name="logits"))
        model = keras.Sequential(layers, name=f"{head}_head")
        loss_cls = (
            keras.losses.CategoricalCrossentropy if one_hot else keras.losses.SparseCategoricalCrossentropy
        )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss=loss_cls(from_logits=True),
            metrics=["accuracy"],
            jit_compile=_jit_default(None),
        )
    history = fit(
        model,
        (x, y),
        val=val,
        epochs=int(epochs),
        batch_size=batch_size,
        run_dir=run_dir,
        early_stopping=early_stopping,
        verbose=verbose,
        key=f"head-seed{seed}",
    )
    history.stages = [f"{head} head, {epochs} epochs, lr {learning_rate:g}"]
    return model, history


# --------------------------------------------------------------------------- discriminative learning rates
_DISCRIMINATIVE_CLASSES: dict[type, type] = {}


class _LearningRateMultipliers:
    """Mixin for a Keras optimizer: each variable's step uses ``learning_rate × its multiplier``.

    The multiplier is applied inside ``update_step`` (not to the gradient), so it works for
    adaptive optimizers such as Adam, where scaling the gradient would cancel out.
    """

    def __init__(self, *args, variable_multipliers: Mapping[str, float] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.variable_multipliers = {str(k): float(v) for k, v in (variable_multipliers or {}).items()}
        self._multiplier_by_index: list[float] = []

    def build(self, variables):
        super().build(variables)
        self._multiplier_by_index = [self.variable_multipliers.get(v.path, 1.0) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._multiplier_by_index[optimizer_variable_index(self, variable)]
        if multiplier != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, multiplier)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["variable_multipliers"] = dict(self.variable_multipliers)
        return config


def _discriminative_class(optimizer_cls: type) -> type:
    if optimizer_cls not in _DISCRIMINATIVE_CLASSES:
        name = f"Discriminative{optimizer_cls.__name__}"
        cls = type(name, (_LearningRateMultipliers, optimizer_cls), {"__module__": __name__})
        _DISCRIMINATIVE_CLASSES[optimizer_cls] = keras.saving.register_keras_serializable("tlcourse", name)(
            cls
        )
    return _DISCRIMINATIVE_CLASSES[optimizer_cls]


for _cls in (keras.optimizers.Adam, keras.optimizers.AdamW, keras.optimizers.SGD, keras.optimizers.RMSprop):
    _discriminative_class(_cls)  # registered at import so that saved .keras files load again


def discriminative(optimizer: keras.optimizers.Optimizer, variable_multipliers: Mapping[str, float]):
    """A copy of ``optimizer`` whose step for each variable is scaled by its multiplier.

    Parameters
    ----------
    optimizer : keras.optimizers.Optimizer
        Adam, AdamW, SGD, RMSprop or any Keras 3 optimizer (not yet built).
    variable_multipliers : dict of str to float
        ``variable.path`` → multiplier (variables not listed: 1.0). :func:`fine_tune` builds
        this from a stage's ``lr_multipliers`` (layer names, globs, "base", "head").

    Examples
    --------
    >>> import numpy as np, keras
    >>> a, b = keras.Variable(np.zeros(2), name="a"), keras.Variable(np.zeros(2), name="b")
    >>> opt = discriminative(keras.optimizers.SGD(learning_rate=1.0), {b.path: 0.1})
    >>> opt.apply([np.ones(2), np.ones(2)], [a, b])
    >>> float(a.numpy()[0]), round(float(b.numpy()[0]), 6)
    (-1.0, -0.1)
    """
    if getattr(optimizer, "built", False):
        raise TrainError(
            "The optimizer has already been used (it holds state for other variables).",
            hint="Pass a fresh optimizer, e.g. keras.optimizers.Adam(learning_rate=1e-4).",
        )
    config = optimizer.get_config()
    config.pop("variable_multipliers", None)
    base_cls = type(optimizer)
    for cls in base_cls.__mro__:
        if cls in _DISCRIMINATIVE_CLASSES:
            base_cls = cls
            break
    return _discriminative_class(base_cls)(variable_multipliers=variable_multipliers, **config)


# --------------------------------------------------------------------------- schedules
@keras.saving.register_keras_serializable("tlcourse")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``learning_rate`` over ``warmup_steps``, then constant or cosine decay.

    Examples
    --------
    >>> s = WarmupCosine(1.0, total_steps=10, warmup_steps=2, cosine=True)
    >>> [round(float(s(i)), 3) for i in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """

    def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int = 0, cosine: bool = True):
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.cosine = bool(cosine)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        peak = self.learning_rate
        warm = keras.ops.minimum(1.0, (step + 1.0) / max(1, self.warmup_steps)) if self.warmup_steps else 1.0
        if self.cosine:
            span = max(1, self.total_steps - self.warmup_steps)
            progress = keras.ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            decay = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        else:
            decay = 1.0
        return peak * warm * decay

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "cosine": self.cosine,
        }


# --------------------------------------------------------------------------- fine-tuning
@dataclass(frozen=True)
class Stage:
    """One stage of a fine-tuning recipe.

    Parameters
    ----------
    epochs : int
    learning_rate : float
        Peak learning rate of this stage (a fresh optimizer is made for each stage).
    unfreeze : None, "all", int or str
        None: the head only (base frozen). "all": the whole base. int N: the top N layers of the
        base. str: the base from that layer name up. BatchNorm layers always stay frozen.
    warmup : float
        Epochs of linear warm-up.
    schedule : {"constant", "cosine"}
    lr_multipliers : dict of str to float, optional
        Discriminative learning rates: group → multiplier of ``learning_rate``. A group is
        "base", "head", a layer name, or a glob over layer names ("block6*").

    Examples
    --------
    >>> Stage(3, 1e-3)
    Stage(head only, 3 epochs, lr 0.001 constant)
    >>> Stage(2, 1e-4, unfreeze=20, schedule="cosine", warmup=1, lr_multipliers={"base": 0.1})
    Stage(top 20 layers of the base, 2 epochs, lr 0.0001 cosine, warm-up 1 epochs, multipliers {'base': 0.1})
    """

    epochs: int
    learning_rate: float
    unfreeze: None | str | int = None
    warmup: float = 0
    schedule: str = "constant"
    lr_multipliers: Mapping[str, float] | None = None

    def __post_init__(self):
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)) or self.epochs < 0:
            raise ConfigError(
                f"Stage epochs={self.epochs!r} must be a whole number ≥ 0.", hint="Try epochs=3."
            )
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ConfigError(
                f"Stage learning_rate={self.learning_rate!r} must be a positive number.",
                hint="Typical: 1e-3 for a head, 1e-5 to 1e-4 when the base is unfrozen.",
            )
        if self.schedule not in ("constant", "cosine"):
            raise unknown_name("schedule", self.schedule, ["constant", "cosine"])
        if self.warmup < 0 or (self.epochs and self.warmup > self.epochs):
            raise ConfigError(
                f"Stage warmup={self.warmup!r} must be between 0 and the stage's {self.epochs} epochs.",
                hint="warmup is counted in epochs.",
            )
        if isinstance(self.unfreeze, bool) or (
            self.unfreeze is not None and not isinstance(self.unfreeze, (str, int, np.integer))
        ):
            raise ConfigError(
                f"Stage unfreeze={self.unfreeze!r} is not understood.",
                hint='Use None (head only), "all", a number of top layers, or a layer name.',
            )
        if isinstance(self.unfreeze, (int, np.integer)) and self.unfreeze < 0:
            raise ConfigError(f"Stage unfreeze={self.unfreeze} must be ≥ 0.", hint="Top N layers: N ≥ 0.")

    def describe(self) -> str:
        if self.unfreeze is None or self.unfreeze == 0:
            what = "head only"
        elif self.unfreeze == "all":
            what = "all of the base"
        elif isinstance(self.unfreeze, (int, np.integer)):
            what = f"top {self.unfreeze} layers of the base"
        else:
            what = f"base from {self.unfreeze!r} up"
        text = f"{what}, {self.epochs} epochs, lr {self.learning_rate:g} {self.schedule}"
        if self.warmup:
            text += f", warm-up {self.warmup:g} epochs"
        if self.lr_multipliers:
            text += f", multipliers {dict(self.lr_multipliers)}"
        return text

    def __repr__(self) -> str:
        return f"Stage({self.describe()})"


def _apply_unfreeze(model, stage: Stage) -> None:
    spec = stage.unfreeze
    if spec is None or spec == 0:
        base, base_layers, head_layers = base_and_head(model)
        model.trainable = True
        for layer in [base, *base_layers] if base is not None else base_layers:
            layer.trainable = False
        return
    try:
        if spec == "all":
            unfreeze(model, split_head=True)
        elif isinstance(spec, str):
            unfreeze(model, from_layer=spec, split_head=True)
        else:
            # "top 20" of a base with fewer layers means all of them (small bases in tests and compare()).
            top = min(int(spec), len(unfreezable_layers(model, split_head=True)))
            unfreeze(model, top=top, split_head=True)
    except ModelError as exc:
        raise TrainError(exc.message, hint=exc.hint) from None


def _resolve_multipliers(model, multipliers: Mapping[str, float] | None) -> dict[str, float]:
    if not multipliers:
        return {}
    base, base_layers, head_layers = base_and_head(model)
    all_layers = walk_layers(model)
    resolved: dict[str, float] = {}
    # General groups first, then layer names and globs, so the specific ones win.
    order = sorted(multipliers.items(), key=lambda kv: 0 if kv[0] in ("base", "head") else 1)
    for group, factor in order:
        if group == "base":
            layers = [base] if base is not None else base_layers
        elif group == "head":
            layers = head_layers
        else:
            layers = [layer for layer in all_layers if fnmatch.fnmatchcase(layer.name, group)]
            if not layers:
                raise unknown_name(
                    "layer group",
                    group,
                    ["base", "head", *[layer.name for layer in model.layers]],
                    error=TrainError,
                )
        for layer in layers:
            for variable in layer.weights:
                resolved[variable.path] = float(factor)
    return resolved


def _steps_per_epoch(train, global_batch: int) -> int:
    if _is_arrays(train):
        return max(1, math.ceil(len(train[0]) / global_batch))
    cardinality = int(train.cardinality())
    if cardinality > 0:
        return cardinality
    return max(1, sum(1 for _ in train))


def _make_optimizer(name_or_factory, learning_rate) -> keras.optimizers.Optimizer:
    if callable(name_or_factory) and not isinstance(name_or_factory, str):
        return name_or_factory(learning_rate)
    choices = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    key = str(name_or_factory).lower()
    if key not in choices:
        raise unknown_name("optimizer", name_or_factory, choices)
    return choices[key](learning_rate=learning_rate)


def _split_data(data, *, batch_size: int | None, augment) -> tuple[Any, Any]:
    global_batch = _global_batch(batch_size)
    if _is_bundle(data):
        train = data.batches("train", batch_size=global_batch, augment=augment)
        val = data.batches("val", batch_size=global_batch, shuffle=False)
        return train, val
    if isinstance(data, (tuple, list)) and len(data) == 2 and not _is_arrays(data):
        return data[0], data[1]
    if _is_arrays(data) or _is_dataset(data):
        return data, None
    raise DataError(
        f"fine_tune cannot use data of type {type(data).__name__}.",
        hint="Pass a DataBundle (tlcourse.data.load(...)), a (train_ds, val_ds) pair of batched "
        "tf.data.Datasets, or ((x, y), (x_val, y_val)) arrays.",
    )


def _batched(data, model, global_batch: int):
    if data is None or _is_arrays(data):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and _is_arrays(tuple(data)):
        return tuple(data)
    if _is_dataset(data):
        rank = len(model.inputs[0].shape) if getattr(model, "inputs", None) else None
        return _as_dataset(data, rank=rank, batch_size=global_batch)
    return data


def default_stages() -> list[Stage]:
    """The two-stage recipe sized by the profile: head at 1e-3, then the top 20 layers at 1e-4 (cosine).

    Examples
    --------
    >>> [s.unfreeze for s in default_stages()]
    [None, 20]
    """
    budget = _course().budget
    return [
        Stage(budget.epochs, 1e-3),
        Stage(budget.fine_tune_epochs, 1e-4, unfreeze=20, schedule="cosine"),
    ]


def fine_tune(
    model: keras.Model,
    data,
    *,
    stages: Sequence[Stage] | None = None,
    batch_size: int | None = None,
    optimizer: str | Callable = "adam",
    loss: Any = None,
    metrics: Sequence[Any] = ("accuracy",),
    augment: keras.layers.Layer | None = None,
    early_stopping: int | None = None,
    run_dir: str | os.PathLike | bool | None = None,
    jit_compile: bool | str | None = None,
    verbose: str | int = "auto",
) -> History:
    """Train a classifier in stages: the head first, then more of the base at smaller learning rates.

    Each stage sets what is trainable (BatchNorm always frozen), makes a FRESH optimizer with the
    stage's schedule (and per-group learning-rate multipliers), recompiles and fits with
    checkpoints in ``run_dir/stage-N``.

    Parameters
    ----------
    model : keras.Model
        A classifier with logits out, e.g. ``tlcourse.models.classifier(base, k)``: the base is
        found as its largest nested model (or, in a flat model, everything before the trailing
        Dense/Dropout layers).
    data : DataBundle, (train_ds, val_ds) or ((x, y), (x_val, y_val))
        A bundle is batched here (``bundle.batches("train")``, ``("val")``).
    stages : list of Stage, optional
        Default: :func:`default_stages`.
    batch_size : int, optional
        Per-replica batch size (default: the profile's); scaled by the number of replicas.
    optimizer : "adam", "adamw", "sgd", "rmsprop" or callable(learning_rate) -> optimizer
    loss : optional
        Default: (sparse) categorical cross-entropy from logits, chosen by the label shape.
    augment : keras layer, optional
        Random augmentation applied to training batches of a DataBundle.
    early_stopping : int, optional
        Patience (epochs) on the validation loss within each stage.
    run_dir : path, None or False
        See :func:`fit`.
    jit_compile : bool or "auto", optional
        Default: off on a CPU (measured slower there), Keras's "auto" on accelerators.

    Returns
    -------
    History
        Concatenated over stages, with ``stage_boundaries`` and ``stages``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> keras.utils.set_random_seed(0)
    >>> base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
    ...                          keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D()])
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), base, keras.layers.Dense(2)])
    >>> x, y = np.random.rand(32, 8, 8, 3).astype("float32"), np.arange(32) % 2
    >>> h = fine_tune(model, ((x, y), (x, y)), stages=[Stage(1, 1e-3), Stage(1, 1e-4, unfreeze="all")],
    ...               run_dir=False, verbose=0)
    >>> h.stage_boundaries, base.layers[1].trainable
    ([0, 1], False)
    """
    stages = list(stages) if stages is not None else default_stages()
    if not stages or not all(isinstance(s, Stage) for s in stages):
        raise ConfigError(
            "stages must be a non-empty list of Stage objects.",
            hint="E.g. stages=[Stage(3, 1e-3), Stage(2, 1e-4, unfreeze=20)].",
        )
    global_batch = _global_batch(batch_size)
    train, val = _split_data(data, batch_size=batch_size, augment=augment)
    train, val = _batched(train, model, global_batch), _batched(val, model, global_batch)
    if early_stopping and val is None:
        raise TrainError("early_stopping needs validation data.", hint="Pass (train, val) or a DataBundle.")
    _, y_first = _first_batch(train, where="training data")
    one_hot = y_first.ndim >= 2 and y_first.shape[-1] > 1
    if loss is None:
        loss_cls = (
            keras.losses.CategoricalCrossentropy if one_hot else keras.losses.SparseCategoricalCrossentropy
        )
        loss = loss_cls(from_logits=True)
    units = _output_units(model)
    _check_labels(y_first, loss_kind=_loss_kind(loss), num_classes=units, where="training data")
    if units is not None and keras.mixed_precision.global_policy().compute_dtype != "float32":
        if model.outputs[0].dtype not in ("float32", tf.float32):
            env.say("the model's last layer is not float32 under mixed precision; logits may lose precision.")

    root = None
    if run_dir is not False:
        root = (
            Path(run_dir)
            if run_dir not in (None, True)
            else _auto_run_dir(model, train, sum(s.epochs for s in stages), [s.describe() for s in stages])
        )
    strategy = _course().strategy
    jit = _jit_default(jit_compile)
    steps = _steps_per_epoch(train, global_batch)
    parts: list[History] = []
    for number, stage in enumerate(stages, start=1):
        _apply_unfreeze(model, stage)
        schedule: Any = stage.learning_rate
        if stage.warmup or stage.schedule == "cosine":
            schedule = WarmupCosine(
                stage.learning_rate,
                total_steps=max(1, stage.epochs * steps),
                warmup_steps=int(round(stage.warmup * steps)),
                cosine=stage.schedule == "cosine",
            )
        with strategy.scope():
            opt = _make_optimizer(optimizer, schedule)
            multipliers = _resolve_multipliers(model, stage.lr_multipliers)
            if multipliers:
                opt = discriminative(opt, multipliers)
            model.compile(optimizer=opt, loss=loss, metrics=list(metrics), jit_compile=jit)
        if stage.epochs == 0:
            parts.append(History({}))
            continue
        part = fit(
            model,
            train,
            val=val,
            epochs=stage.epochs,
            batch_size=batch_size,
            run_dir=False if root is None else root / f"stage-{number}",
            early_stopping=early_stopping,
            verbose=verbose,
        )
        parts.append(part)
    return History.concatenate(
        parts, [f"stage {i}: {s.describe()}" for i, s in enumerate(stages, 1)], run_dir=root
    )


# --------------------------------------------------------------------------- comparisons
@dataclass
class Comparison:
    """The result of :func:`compare`: one row per run, and a summary over seeds.

    Examples
    --------
    >>> c = Comparison([
    ...     {"recipe": "a", "fraction": 1.0, "seed": 0, "accuracy": 0.8, "wall_time": 1.0, "trainable_params": 10},
    ...     {"recipe": "a", "fraction": 1.0, "seed": 1, "accuracy": 0.6, "wall_time": 1.0, "trainable_params": 10}])
    >>> s = c.summary()[0]
    >>> round(s["mean"], 2), round(s["std"], 3), s["n"]
    (0.7, 0.141, 2)
    """

    rows: list[dict[str, Any]]

    def summary(self) -> list[dict[str, Any]]:
        """Mean ± std (sample, ddof=1) of the accuracy per recipe × fraction, in first-seen order."""
        groups: dict[tuple, list[dict]] = {}
        for row in self.rows:
            groups.setdefault((row["recipe"], row["fraction"]), []).append(row)
        out = []
        for (recipe, fraction), rows in groups.items():
            acc = np.array([r["accuracy"] for r in rows], dtype=float)
            out.append(
                {
                    "recipe": recipe,
                    "fraction": fraction,
                    "mean": float(acc.mean()),
                    "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                    "n": len(acc),
                    "wall_time": float(np.mean([r["wall_time"] for r in rows])),
                    "trainable_params": int(np.median([r["trainable_params"] for r in rows])),
                }
            )
        return out

    def mean(self, recipe: str, fraction: float | None = None) -> float:
        """Mean accuracy of a recipe (at one fraction, or over all)."""
        acc = [
            r["accuracy"]
            for r in self.rows
            if r["recipe"] == recipe and (fraction is None or r["fraction"] == fraction)
        ]
        if not acc:
            raise unknown_name("recipe", recipe, {r["recipe"] for r in self.rows}, error=TrainError)
        return float(np.mean(acc))

    def table(self) -> str:
        lines = [
            f"{'recipe':<20} {'fraction':>8} {'accuracy':>15} {'seeds':>5} {'wall s':>7} {'trainable':>10}"
        ]
        for s in self.summary():
            lines.append(
                f"{s['recipe']:<20} {_fraction_label(s['fraction']):>8} {s['mean']:>7.3f} ± {s['std']:<5.3f} "
                f"{s['n']:>5} {s['wall_time']:>7.1f} {s['trainable_params']:>10,}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Comparison({len(self.rows)} runs)\n{self.table()}"


def _fraction_label(fraction) -> str:
    if isinstance(fraction, (int, np.integer)) and not isinstance(fraction, bool):
        return f"{fraction}/cls"
    return f"{float(fraction):.0%}"


def _subsample(x: np.ndarray, y: np.ndarray, fraction, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: an int ``k`` keeps k examples, a float keeps that fraction (at least one)."""
    rng = np.random.default_rng(seed)
    ids = y.argmax(-1) if y.ndim > 1 else y
    keep = []
    for cls in np.unique(ids):
        members = np.flatnonzero(ids == cls)
        if isinstance(fraction, (int, np.integer)) and not isinstance(fraction, bool):
            count = min(len(members), int(fraction))
        else:
            count = max(1, int(round(float(fraction) * len(members))))
        keep.append(rng.choice(members, size=count, replace=False))
    chosen = np.sort(np.concatenate(keep))
    return x[chosen], y[chosen]


def _materialise(data) -> tuple[np.ndarray, np.ndarray]:
    if _is_arrays(data):
        return np.asarray(data[0]), np.asarray(data[1])
    if _is_dataset(data):
        xs, ys = [], []
        for x, y in data.as_numpy_iterator():
            xs.append(x)
            ys.append(y)
        if not xs:
            raise DataError("A dataset given to compare() is empty.", hint="Check the split and filters.")
        spec_rank = data.element_spec[0].shape.rank
        if spec_rank is not None and xs[0].ndim == spec_rank and spec_rank >= 4:
            return np.concatenate(xs), np.concatenate(ys)
        return np.stack(xs), np.stack(ys)
    raise DataError(
        f"compare() cannot use {type(data).__name__} as a split.", hint="Pass arrays or a tf.data.Dataset."
    )


def _compare_splits(data):
    if _is_bundle(data):
        train, val = data.arrays("train"), data.arrays("val")
        test = data.arrays("test") if getattr(data, "sizes", {}).get("test", 1) else val
        return train, val, test
    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and not _is_arrays(data):
        splits = [_materialise(part) for part in data]
        return splits[0], splits[1], splits[-1]
    raise DataError(
        "compare() needs a DataBundle or (train, val[, test]) splits.",
        hint="Pass tlcourse.data.load(...) or ((x, y), (x_val, y_val), (x_test, y_test)).",
    )


def _fallback_small_cnn(input_shape, num_classes):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, dtype="float32"),
        ],
        name="small_cnn",
    )


def _builtin_recipe(name: str, base_factory, *, epochs: int, batch_size, verbose) -> Callable:
    def scratch(train, val, seed):
        keras.utils.set_random_seed(seed)
        x, y = train
        num_classes = int(y.max()) + 1 if y.ndim == 1 else y.shape[-1]
        with _course().strategy.scope():
            try:
                from tlcourse import models

                model = models.small_cnn(x.shape[1:], num_classes)
            except (ImportError, AttributeError):
                model = _fallback_small_cnn(x.shape[1:], num_classes)
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
                jit_compile=_jit_default(None),
            )
        fit(model, train, val=val, epochs=epochs, batch_size=batch_size, run_dir=False, verbose=verbose)
        return model

    def feature_extraction(train, val, seed):
        base = base_factory()
        feats = extract_features(base, train, batch_size=batch_size, verbose=verbose)
        vfeats = extract_features(base, val, batch_size=batch_size, verbose=verbose)
        num_classes = int(max(feats.labels.max(), vfeats.labels.max())) + 1
        head, _ = fit_head(
            feats,
            val=vfeats,
            num_classes=num_classes,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            run_dir=False,
            verbose=verbose,
        )
        with _course().strategy.scope():
            inputs = keras.Input(train[0].shape[1:], dtype=train[0].dtype)
            model = keras.Model(inputs, head(base(inputs, training=False)), name="feature_extraction")
        remember(model, trainable_params=trainable_params(head))
        return model

    def fine_tuning(train, val, seed):
        keras.utils.set_random_seed(seed)
        x, y = train
        num_classes = int(max(y.max(), val[1].max())) + 1
        with _course().strategy.scope():
            base = base_factory()
            try:
                from tlcourse import models

                model = models.classifier(base, num_classes)
            except (ImportError, AttributeError):
                inputs = keras.Input(x.shape[1:], dtype=x.dtype)
                model = keras.Model(inputs, keras.layers.Dense(num_classes, dtype="float32")(base(inputs)))
        head_epochs = max(1, epochs - epochs // 2)
        stages = [Stage(head_epochs, 1e-3), Stage(epochs - head_epochs, 1e-4, unfreeze=20, schedule="cosine")]
        fine_tune(model, (train, val), stages=stages, batch_size=batch_size, run_dir=False, verbose=verbose)
        return model

    recipes = {"scratch": scratch, "feature_extraction": feature_extraction, "fine_tuning": fine_tuning}
    if name not in recipes:
        raise unknown_name("recipe", name, recipes)
    if name != "scratch" and base_factory is None:
        raise ConfigError(
            f"The built-in recipe {name!r} needs a base.",
            hint="Pass base=lambda: tlcourse.models.backbone('efficientnet_lite0') (a factory: each run "
            "gets a fresh base).",
        )
    return recipes[name]


def _accuracy(model, test, batch_size: int) -> float:
    x, y = test
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    ids = y.argmax(-1) if y.ndim > 1 else y
    return float(np.mean(np.asarray(logits).argmax(-1) == ids))


def compare(
    recipes: Mapping[str, Callable | str] | Sequence[str],
    data,
    *,
    base: Callable[[], keras.Model] | None = None,
    seeds: Sequence[int] | int | None = None,
    fractions: Sequence[float | int] = (0.1, 1.0),
    epochs: int | None = None,
    batch_size: int | None = None,
    verbose: int = 0,
) -> Comparison:
    """Run training recipes with equal budgets and the same seeds across data fractions.

    Parameters
    ----------
    recipes : dict name → callable or built-in name, or a list of built-in names
        A callable gets ``(train, val, seed)`` with numpy ``(x, y)`` pairs and returns a trained model
        (logits out). Built-in: "scratch" (small CNN), "feature_extraction" (cached features +
        linear head), "fine_tuning" (head, then the top of the base); the last two need ``base``.
    data : DataBundle or (train, val[, test]) splits
        Accuracy is measured on test (a bundle's test split, else the last split given).
    base : callable, optional
        Factory returning a fresh base for the built-in transfer recipes.
    seeds : sequence of int or int
        Default: the profile's seeds. An int n means ``range(n)``.
    fractions : sequence of float or int
        Float: that fraction of the training set per class; int: that many examples per class.
    epochs : int, optional
        Every recipe's epoch budget (fine-tuning splits it between its two stages).

    Returns
    -------
    Comparison
        ``.rows`` (recipe, fraction, seed, accuracy, wall_time, trainable_params, n_train) and
        ``.summary()`` (mean ± std per recipe × fraction).

    Examples
    --------
    >>> import numpy as np, keras
    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(60) % 2
    >>> x = (rng.normal(size=(60, 4)) + 4 * y[:, None]).astype("float32")
    >>> def logistic(train, val, seed):
    ...     head, _ = fit_head(*train, epochs=20, learning_rate=0.05, seed=seed, run_dir=False, verbose=0)
    ...     return head
    >>> c = compare({"logistic": logistic}, ((x, y), (x, y)), seeds=2, fractions=(0.5,))
    >>> len(c.rows), c.mean("logistic") > 0.9
    (2, True)
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds or _course().budget.seeds)
    epochs = _course().budget.epochs if epochs is None else int(epochs)
    if isinstance(recipes, Mapping):
        named = dict(recipes)
    else:
        named = {str(r): r for r in recipes}
    if not named:
        raise ConfigError(
            "No recipes to compare.", hint='E.g. compare(["scratch", "feature_extraction"], data).'
        )
    runnable = {
        name: (
            _builtin_recipe(recipe, base, epochs=epochs, batch_size=batch_size, verbose=verbose)
            if isinstance(recipe, str)
            else recipe
        )
        for name, recipe in named.items()
    }
    train, val, test = _compare_splits(data)
    global_batch = _global_batch(batch_size)
    rows: list[dict[str, Any]] = []
    total = len(runnable) * len(fractions) * len(seeds)
    try:
        from tqdm.auto import tqdm

        progress = tqdm(total=total, desc="compare", disable=verbose is None)
    except ImportError:  # progress is a nicety
        progress = None
    for fraction in fractions:
        for seed in seeds:
            subset = _subsample(*train, fraction, seed)
            for name, recipe in runnable.items():
                keras.utils.set_random_seed(seed)
                started = time.perf_counter()
                model = recipe(subset, val, seed)
                wall = time.perf_counter() - started
                rows.append(
                    {
                        "recipe": name,
                        "fraction": fraction,
                        "seed": seed,
                        "accuracy": _accuracy(model, test, global_batch),
                        "wall_time": wall,
                        "trainable_params": recall(model, "trainable_params") or trainable_params(model),
                        "n_train": len(subset[0]),
                    }
                )
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(recipe=name, fraction=_fraction_label(fraction), seed=seed)
    if progress is not None:
        progress.close()
    return Comparison(rows)
