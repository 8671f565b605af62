"""Training: cached features, heads, fine-tuning in stages, and ``model.fit`` with checks of the data.

- :func:`extract_features` runs a frozen base once over a dataset and caches the embeddings;
  :func:`fit_head` trains a linear or MLP head on them.
- :func:`fine_tune` runs a list of :class:`Stage` s: the head first, then the top of the base.
- :func:`fit` is ``model.fit`` with checks of the data, resumable on request (:mod:`tlcourse.runs`).

Models are built and compiled in ``course.strategy.scope()`` (see :func:`tlcourse.setup`) and the
per-replica batch size is multiplied by the number of replicas, so the same lesson runs on one CPU
or several GPUs; the tests run ``fit_head`` and ``fine_tune`` under ``MirroredStrategy``.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tlcourse import env, models, runs
from tlcourse.errors import ConfigError, DataError, ModelError, TrainError, unknown_name
from tlcourse.experiments import Comparison, compare  # lessons call tlcourse.train.compare
from tlcourse.introspect import (
    base_and_head,
    optimizer_variable_index,
    recall,
    remember,
    unfreezable_layers,
    unfreeze,
    walk_layers,
)

__all__ = [
    "Comparison",
    "Features",
    "History",
    "Stage",
    "compare",
    "discriminative",
    "extract_features",
    "fine_tune",
    "fit",
    "fit_head",
]


# --------------------------------------------------------------------------- small helpers
def _global_batch(batch_size: int | None) -> int:
    """Per-replica batch size (default: the profile's) times the number of replicas."""
    course = env.current()
    per_replica = batch_size or course.budget.batch_size
    if int(per_replica) < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be a positive whole number.", hint="Try 32.")
    return int(per_replica) * getattr(course.strategy, "num_replicas_in_sync", 1)


def _jit() -> bool | str:
    # Measured in bench/ (3): on a CPU, XLA does not pay for itself on small models.
    return "auto" if {d.kind for d in env.current().devices} & {"GPU", "TPU"} else False


def _is_dataset(data) -> bool:
    return isinstance(data, tf.data.Dataset)


def _is_bundle(data) -> bool:
    return hasattr(data, "batches") and not _is_dataset(data)


def _is_arrays(data) -> bool:
    pair = isinstance(data, (tuple, list)) and len(data) == 2
    return pair and all(hasattr(part, "shape") and not _is_dataset(part) for part in data)


# --------------------------------------------------------------------------- checks of the data
def _check_pixels(model, x: np.ndarray) -> None:
    """[0, 1] float images on their way into a model that rescales raw [0, 255] pixels itself."""
    for layer in walk_layers(model, include_self=True):
        rescaling = isinstance(layer, keras.layers.Rescaling)
        if recall(layer, "info") is not None or (rescaling and np.all(np.abs(np.asarray(layer.scale)) < 0.1)):
            if x.ndim == 4 and x.shape[-1] == 3:
                models.check_images(layer, x)
            return


def _check_labels(y, *, sparse_loss: bool | None, num_classes: int | None, where: str) -> None:
    """Labels that fit the loss (class ids or one-hot rows) and the number of outputs."""
    y = np.asarray(y)
    one_hot = y.ndim >= 2 and y.shape[-1] > 1
    if sparse_loss is not None and sparse_loss == one_hot:
        got, wants = ("one-hot", "integer class ids") if one_hot else ("integer class ids", "one-hot rows")
        loss = "SparseCategoricalCrossentropy" if sparse_loss else "CategoricalCrossentropy"
        raise DataError(
            f"The {where} labels are {got} (shape {y.shape}), but the loss, {loss}, expects {wants}.",
            hint="Use loss=keras.losses.CategoricalCrossentropy(from_logits=True) or turn the labels into ids "
            "with y.argmax(-1)."
            if one_hot
            else "Use loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), or one-hot encode "
            "the labels with keras.utils.to_categorical(y, num_classes).",
        )
    if num_classes is None or y.size == 0:
        return
    low, high = (0, y.shape[-1] - 1) if one_hot else (int(np.min(y)), int(np.max(y)))
    if low < 0 or high >= num_classes or (one_hot and high + 1 != num_classes):
        raise DataError(
            f"The {where} labels go from {low} to {high}, but the model has {num_classes} outputs "
            f"(classes 0..{num_classes - 1}).",
            hint=f"Use num_classes={high + 1} (the number of classes in the data), or relabel the classes.",
        )


def _first_batch(data, *, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The first (x, y) batch of a dataset or of arrays; a DataError when there is none."""
    if _is_arrays(data):
        if len(data[0]) != len(data[1]):
            raise DataError(f"The {where} has {len(data[0])} images but {len(data[1])} labels.")
        batches = [(np.asarray(data[0][:64]), np.asarray(data[1]))] if len(data[0]) else []
    elif _is_dataset(data) and isinstance(data.element_spec, tuple) and len(data.element_spec) >= 2:
        batches = [(np.asarray(x), np.asarray(y)) for x, y, *_ in data.take(1)]
    else:
        raise DataError(
            f"The {where} is a {type(data).__name__}; expected a tf.data.Dataset of (x, y) pairs or arrays (x, y).",
            hint="Pass bundle.batches('train'), a tf.data.Dataset of (image, label), or numpy arrays (x, y).",
        )
    if not batches:
        raise DataError(
            f"The {where} is empty (it yields no examples).",
            hint="Check the split, the class filter (classes=...) and labels_per_class.",
        )
    return batches[0]


def _check_training_data(model, data, *, where: str) -> None:
    x, y = _first_batch(data, where=where)
    _check_pixels(model, x)
    loss = getattr(model, "loss", None)
    name = str(loss if isinstance(loss, str) else getattr(loss, "__name__", type(loss).__name__)).lower()
    sparse = True if "sparse" in name else (False if "categorical" in name.replace("_", "") else None)
    units = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else None
    _check_labels(y, sparse_loss=sparse, num_classes=units, where=where)


# --------------------------------------------------------------------------- history
@dataclass
class History:
    """The history of one or several training stages (``history`` as in ``keras.callbacks.History``).

    ``stage_boundaries`` lists the epoch where each stage starts, ``stages`` describes them,
    ``run_dir`` is where the checkpoints are (if anywhere), ``resumed_from`` the epochs an earlier,
    interrupted run had done.

    Examples
    --------
    >>> h = History.concatenate([History({"loss": [1.0, 0.5]}), History({"loss": [0.4]})], ["head", "top"])
    >>> h.epochs, h.stage_boundaries, h.final("loss")
    (3, [0, 2], 0.4)
    """

    history: dict[str, list[float]]
    stage_boundaries: list[int] = field(default_factory=lambda: [0])
    stages: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    resumed_from: int = 0

    @property
    def epochs(self) -> int:
        return max((len(v) for v in self.history.values()), default=0)

    def final(self, metric: str = "val_accuracy") -> float:
        """The last value of ``metric``."""
        if metric not in self.history:
            raise unknown_name("metric", metric, self.history, error=TrainError)
        return float(self.history[metric][-1])

    @classmethod
    def concatenate(cls, parts: Sequence[History], stages: Sequence[str], run_dir=None) -> History:
        """One history of ``parts`` in order, with a stage boundary where each part starts."""
        keys = list(dict.fromkeys(k for part in parts for k in part.history))
        starts = np.cumsum([0] + [part.epochs for part in parts])[:-1].tolist()
        merged = {k: [v for p in parts for v in p.history.get(k, [math.nan] * p.epochs)] for k in keys}
        return cls(merged, stage_boundaries=starts, stages=list(stages), run_dir=run_dir)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v)
        return f"History({self.epochs} epochs, {len(self.stage_boundaries)} stage(s): {shown})"


# --------------------------------------------------------------------------- fit
# Bytes: bigger arrays go to Keras as they are (a graph constant maxes out at 2 GB).
_IN_GRAPH_LIMIT = 256 * 2**20


def _pipeline(data, batch: int, *, shuffle_seed: int | None) -> dict:
    """``model.fit`` arguments for the data: arrays become a cached tf.data pipeline (Keras's own array
    path costs ~5x more per epoch, which dominates a head on cached features); datasets stay as they are."""
    if not _is_arrays(data):
        return {"x": data}
    x, y = (np.asarray(a) for a in data)
    if x.nbytes + y.nbytes > _IN_GRAPH_LIMIT:
        return {"x": x, "y": y, "batch_size": batch, "shuffle": shuffle_seed is not None}
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    ds = ds if shuffle_seed is None else ds.shuffle(min(len(x), 10_000), seed=shuffle_seed)
    return {"x": ds.batch(batch).prefetch(tf.data.AUTOTUNE)}


def fit(
    model: keras.Model,
    train,
    *,
    val=None,
    epochs: int,
    batch_size: int | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    early_stopping: int | None = None,
    run_dir: str | os.PathLike | bool | None = None,
    resume: bool = True,
    verbose: str | int = "auto",
) -> History:
    """``model.fit`` with checks of the data, early stopping, and checkpoints when asked for.

    Parameters
    ----------
    model : keras.Model
        A compiled model.
    train, val : tf.data.Dataset of batches, (x, y) numpy arrays, or a DataBundle (brings its own val)
    batch_size : int, optional
        Per-replica batch size for arrays and bundles (default: the profile's).
    early_stopping : int, optional
        Patience in epochs on the validation loss (the best weights are restored).
    run_dir : None, a path or True
        None: no checkpoints. A path: a checkpoint every epoch (:func:`tlcourse.runs.resumable_fit`);
        the same call after a kernel restart resumes, or loads the finished result. True: a folder
        under ``cache_dir("runs")`` named after everything that decides the result (architecture,
        initial weights, optimizer and its configuration, loss, data, epochs, batch size, shuffling).
    resume : bool
        False empties the run directory and starts over.

    Examples
    --------
    >>> x, y = np.random.rand(64, 4).astype("float32"), np.arange(64) % 2
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> fit(model, (x, y), epochs=2, verbose=0).epochs
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
    batch = _global_batch(batch_size)
    if _is_bundle(train):
        bundle, train = train, train.batches("train", batch_size=batch)
        val = bundle.batches("val", batch_size=batch, shuffle=False) if val is None else val
    _check_training_data(model, train, where="training data")
    if val is not None:
        _check_training_data(model, val, where="validation data")
    elif early_stopping:
        raise TrainError("early_stopping needs validation data.", hint="Pass val=... or drop early_stopping.")
    shuffle_seed = int(np.random.randint(2**31 - 1))  # NumPy is seeded by reseed / set_random_seed
    kwargs = {"shuffle": False, **_pipeline(train, batch, shuffle_seed=shuffle_seed), "epochs": int(epochs)}
    if val is not None:
        val = _pipeline(val, batch, shuffle_seed=None)
        kwargs["validation_data"] = (val["x"], val["y"]) if "y" in val else val["x"]
    kwargs.update(verbose=verbose, callbacks=list(callbacks))
    if early_stopping:
        kwargs["callbacks"].append(
            keras.callbacks.EarlyStopping(patience=int(early_stopping), restore_best_weights=True)
        )
    if run_dir in (None, False):
        return History({k: [float(v) for v in vs] for k, vs in model.fit(**kwargs).history.items()})
    identity = runs.settings(model, train, epochs=epochs, batch=batch)
    if run_dir is True:
        key = runs.fingerprint(identity, runs.weights_fingerprint(model), shuffle_seed)[:12]
        name = re.sub(r"_\d+$", "", model.name)  # Keras numbers names in a process: dense_3
        run_dir = env.cache_dir("runs", env.current().lesson or "scratch") / f"{name}-{key}"
    history, start = runs.resumable_fit(model, kwargs, Path(run_dir), identity, resume=resume)
    return History(history, run_dir=Path(run_dir), resumed_from=start)


# --------------------------------------------------------------------------- features
@dataclass
class Features:
    """Embeddings computed by a frozen base: ``features`` float32 [n, d] and ``labels`` as given.

    Unpacks as ``features, labels``. ``key`` is the cache key, ``source`` "computed", "memory" or
    "disk", ``seconds`` the time it took this time.
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
        shape = "×".join(map(str, self.features.shape))
        return f"Features({shape}, labels {self.labels.shape}, {self.source} in {self.seconds:.2f} s)"


_FEATURE_CACHE: dict[str, Features] = {}
_EMBEDDERS: dict[tuple, tuple[weakref.ref, Callable]] = {}


def _embedder(base, x_spec: tf.TensorSpec) -> Callable:
    """base → float32 [n, d] as one ``tf.function`` for any batch size, traced once per (base, image
    spec, precision) and reused for every split (Keras's ``predict`` traces again for a short last
    batch). The base is held weakly: this cache does not keep a dropped base alive."""
    key = (id(base), tuple(x_spec.shape[1:]), x_spec.dtype.name, keras.mixed_precision.global_policy().name)
    found = _EMBEDDERS.get(key)
    if found is not None and found[0]() is base:
        return found[1]
    base_ref = weakref.ref(base)

    @tf.function(input_signature=[tf.TensorSpec([None, *x_spec.shape[1:]], x_spec.dtype)])
    def embed(images):
        embedding = base_ref()(images, training=False)
        return tf.cast(tf.reshape(embedding, [tf.shape(embedding)[0], -1]), tf.float32)

    for stale in [k for k, (ref, _) in _EMBEDDERS.items() if ref() is None]:
        del _EMBEDDERS[stale]
    _EMBEDDERS[key] = (base_ref, embed)
    return embed


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
        Images to feature vectors, e.g. ``tlcourse.models.backbone(...)`` (feature maps are flattened).
    data : DataBundle (with ``split``, default "train"), tf.data.Dataset of (x, y), or arrays (x, y)
        Labels stay in step with their images, whatever the order of the pipeline.
    cache : bool
        Keep the result in memory and under ``cache_dir("features")``, keyed by the base (name,
        architecture, weights), the data (``key``, or its size and first batches), the split, the
        image size and the precision policy.
    key : str, optional
        A name for the data, in place of fingerprinting its first batches.

    Examples
    --------
    >>> base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()])
    >>> x, y = np.random.rand(10, 8, 8, 3).astype("float32"), np.arange(10) % 2
    >>> feats, labels = extract_features(base, (x, y), cache=False, verbose=0)
    >>> feats.shape, labels.shape
    ((10, 3), (10,))
    """
    started = time.perf_counter()
    batch = _global_batch(batch_size)
    if _is_bundle(data):
        key = key or f"{data.name}:{split or 'train'}:{runs.data_identity(data)}"
        data = data.batches(split or "train", batch_size=batch, shuffle=False)
    elif _is_arrays(data):
        data = tf.data.Dataset.from_tensor_slices(tuple(np.asarray(a) for a in data))
    x_first, _ = _first_batch(data, where="dataset to extract features from")
    if x_first.ndim == len(base.inputs[0].shape) - 1:  # unbatched
        data = data.batch(batch)
        x_first = x_first[None]
    _check_pixels(base, x_first)
    base_id = [
        base.name,
        runs.architecture(base),
        runs.weights_fingerprint(base),
        keras.mixed_precision.global_policy().name,
    ]
    data_id = [key or runs.data_identity(data), int(data.cardinality()), split, list(x_first.shape[1:])]
    cache_key = runs.fingerprint(base_id, data_id, str(x_first.dtype))
    path = env.cache_dir("features") / f"{base.name}-{cache_key}.npz"
    if cache and cache_key in _FEATURE_CACHE:
        hit = _FEATURE_CACHE[cache_key]
        return Features(hit.features, hit.labels, cache_key, "memory", time.perf_counter() - started)
    if cache and path.exists():
        try:
            with np.load(path) as stored:
                result = Features(stored["features"], stored["labels"], cache_key, "disk")
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged file: compute again
        else:
            result.seconds = time.perf_counter() - started
            _FEATURE_CACHE[cache_key] = result
            return result
    # Runs on one device, also under a multi-GPU strategy: the pass over the data is done once.
    embed = _embedder(base, tf.TensorSpec(x_first.shape, x_first.dtype))
    level, steps = 1 if verbose == "auto" else int(verbose), max(int(data.cardinality()), 0) or None
    progress = keras.utils.Progbar(steps, verbose=level, unit_name="batch")  # silent at verbose=0
    features, labels = [], []
    for step, (x, y, *_) in enumerate(data.prefetch(tf.data.AUTOTUNE), start=1):
        features.append(embed(x).numpy())
        labels.append(y.numpy())
        progress.update(step)
    features, labels = np.concatenate(features), np.concatenate(labels)
    result = Features(features, labels, cache_key, "computed", time.perf_counter() - started)
    if cache:
        _FEATURE_CACHE[cache_key] = result
        try:
            save = lambda tmp: np.savez(tmp, features=result.features, labels=result.labels)  # noqa: E731
            runs.atomic_write(path, save, what="feature cache")
        except TrainError as exc:  # a cache that cannot be written is no reason to fail a lesson
            env.say(f"could not cache the features on disk ({exc.message}); they stay in memory.")
    return result


# --------------------------------------------------------------------------- heads
def fit_head(
    features,
    labels=None,
    *,
    val=None,
    num_classes: int | None = None,
    head: str = "linear",
    hidden: int = 128,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    seed: int = 0,
    dropout: float = 0.2,
    early_stopping: int | None = None,
    run_dir: str | os.PathLike | bool | None = None,
    verbose: str | int = "auto",
) -> tuple[keras.Model, History]:
    """Train a classification head on cached embeddings; returns ``(head, history)``.

    Parameters
    ----------
    features : Features (labels included), or an array [n, d] with ``labels`` (class ids or one-hot)
    val : Features or (features, labels), optional
        Validation embeddings, evaluated after every epoch.
    head : {"linear", "mlp"}
        Dropout + Dense, or Dense(hidden, relu) + Dropout + Dense; logits out, float32.
    num_classes, epochs : int, optional
        Default: from the labels (checked against them), and the profile's epochs.
    seed : int
        Seeds the initial weights and the shuffling.

    Examples
    --------
    >>> y = np.arange(200) % 2
    >>> x = (np.random.default_rng(0).normal(size=(200, 8)) + 2 * y[:, None]).astype("float32")
    >>> head, history = fit_head(x, y, epochs=20, learning_rate=0.05, verbose=0)
    >>> history.final("accuracy") > 0.9
    True
    """
    x, y = (features.features, features.labels) if labels is None else (features, labels)
    x, y = np.asarray(getattr(x, "features", x)), np.asarray(y)
    if x.ndim != 2 or len(x) == 0 or len(x) != len(y):
        raise DataError(
            f"A head needs features [examples, dimensions] and one label each: got {x.shape} and {len(y)} labels.",
            hint="Pass extract_features(...)'s result from a base with pooling, and check the split and filters.",
        )
    if head not in ("linear", "mlp"):
        raise unknown_name("head", head, ["linear", "mlp"])
    one_hot = y.ndim >= 2 and y.shape[-1] > 1
    num_classes = num_classes or (y.shape[-1] if one_hot else int(np.max(y)) + 1)
    _check_labels(y, sparse_loss=None, num_classes=num_classes, where="training")
    if val is not None:
        val = tuple(val)
        _check_labels(val[1], sparse_loss=None, num_classes=num_classes, where="validation")
    epochs = env.current().budget.epochs if epochs is None else int(epochs)
    env.reseed(seed)  # not keras.utils.set_random_seed: that empties TensorFlow's compiled steps
    with env.current().strategy.scope():
        layers = [
            keras.Input((x.shape[1],)),
            *([keras.layers.Dense(hidden, activation="relu")] * (head == "mlp")),
        ]
        layers += [keras.layers.Dropout(dropout)] if dropout else []
        model = keras.Sequential([*layers, keras.layers.Dense(num_classes, dtype="float32", name="logits")])
        remember(model, made_by="tlcourse.train.fit_head")  # exercise 03.3 asks for one built by hand
        loss = keras.losses.CategoricalCrossentropy if one_hot else keras.losses.SparseCategoricalCrossentropy
        model.compile(keras.optimizers.Adam(learning_rate), loss(from_logits=True), metrics=["accuracy"],
                      jit_compile=_jit())  # fmt: skip
    history = fit(
        model, (x, y), val=val, epochs=epochs, batch_size=batch_size,
        early_stopping=early_stopping, run_dir=run_dir, verbose=verbose,
    )  # fmt: skip
    history.stages = [f"{head} head, {epochs} epochs, lr {learning_rate:g}"]
    return model, history


# --------------------------------------------------------------------------- discriminative learning rates
class _LearningRateMultipliers:
    """Mixin for a Keras optimizer: each variable's step uses ``learning_rate × its multiplier``.

    Applied inside ``update_step``, not to the gradient, so it also works for Adam, whose
    normalised step would cancel a scaled gradient out.
    """

    def __init__(self, *args, variable_multipliers: Mapping[str, float] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.variable_multipliers = {str(k): float(v) for k, v in (variable_multipliers or {}).items()}

    def build(self, variables):
        super().build(variables)
        self._multiplier_by_index = [self.variable_multipliers.get(v.path, 1.0) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._multiplier_by_index[optimizer_variable_index(self, variable)]
        if multiplier != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, multiplier)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "variable_multipliers": dict(self.variable_multipliers)}


_DISCRIMINATIVE: dict[type, type] = {}


def _discriminative_class(optimizer_cls: type) -> type:
    if optimizer_cls not in _DISCRIMINATIVE:
        name = f"Discriminative{optimizer_cls.__name__}"
        cls = type(name, (_LearningRateMultipliers, optimizer_cls), {"__module__": __name__})
        _DISCRIMINATIVE[optimizer_cls] = keras.saving.register_keras_serializable("tlcourse", name)(cls)
    return _DISCRIMINATIVE[optimizer_cls]


for _cls in (keras.optimizers.Adam, keras.optimizers.AdamW, keras.optimizers.SGD, keras.optimizers.RMSprop):
    _discriminative_class(_cls)  # registered at import, so that saved .keras files load again


def discriminative(optimizer: keras.optimizers.Optimizer, variable_multipliers: Mapping[str, float]):
    """A copy of an unused ``optimizer`` whose step for each variable is scaled by its multiplier.

    ``variable_multipliers`` maps ``variable.path`` to a multiplier (1.0 for the others); the
    learning rate may be a schedule. :func:`fine_tune` builds it from a stage's ``lr_multipliers``.

    Examples
    --------
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
    plain = next((c for c in type(optimizer).__mro__ if c in _DISCRIMINATIVE), type(optimizer))
    config = {**optimizer.get_config(), "variable_multipliers": dict(variable_multipliers)}
    try:  # from_config rebuilds a learning-rate schedule from its config, which get_config made a dict
        return _discriminative_class(plain).from_config(config)
    except (TypeError, ValueError) as exc:
        raise TrainError(
            f"Could not rebuild the {type(optimizer).__name__} optimizer from its config: {exc}",
            hint="Register a custom LearningRateSchedule with @keras.saving.register_keras_serializable().",
        ) from None


# --------------------------------------------------------------------------- fine-tuning
@dataclass(frozen=True)
class Stage:
    """One stage of a fine-tuning recipe.

    Parameters
    ----------
    epochs : int
    learning_rate : float
        The peak (each stage gets a fresh optimizer).
    unfreeze : None, "all", int or str
        None: the head only. "all": the whole base. N: the top N layers with weights of the base.
        A layer name: the base from that layer up. BatchNorm layers always stay frozen.
    warmup : float
        Epochs of linear warm-up from 0 to the peak.
    schedule : {"constant", "cosine"}
        After the warm-up: keep the peak, or decay along a cosine to 0 at the stage's end.
    lr_multipliers : dict of str to float, optional
        Discriminative learning rates: a group ("base", "head", a layer name or a glob such as
        "block6*") → its multiplier of ``learning_rate``; the specific groups win.

    Examples
    --------
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
        if isinstance(self.learning_rate, bool) or not (
            isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0
        ):
            raise ConfigError(
                f"Stage learning_rate={self.learning_rate!r} must be a positive number.",
                hint="Typical: 1e-3 for a head, 1e-5 to 1e-4 when the base is unfrozen.",
            )
        if self.schedule not in ("constant", "cosine"):
            raise unknown_name("schedule", self.schedule, ["constant", "cosine"])
        if not 0 <= self.warmup <= max(self.epochs, 0) or (self.warmup and not self.epochs):
            raise ConfigError(f"Stage warmup={self.warmup!r} must be between 0 and its {self.epochs} epochs.")
        spec = self.unfreeze
        number = isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)
        if not (spec is None or isinstance(spec, str) or (number and spec >= 0)):
            raise ConfigError(
                f"Stage unfreeze={spec!r} is not understood.",
                hint='Use None (head only), "all", a number ≥ 0 of top layers, or a layer name.',
            )

    def describe(self) -> str:
        spec = self.unfreeze
        what = {None: "head only", 0: "head only", "all": "all of the base"}.get(spec)
        what = what or (
            f"top {spec} layers of the base" if isinstance(spec, int) else f"base from {spec!r} up"
        )
        text = f"{what}, {self.epochs} epochs, lr {self.learning_rate:g} {self.schedule}"
        text += f", warm-up {self.warmup:g} epochs" if self.warmup else ""
        return text + (f", multipliers {dict(self.lr_multipliers)}" if self.lr_multipliers else "")

    def __repr__(self) -> str:
        return f"Stage({self.describe()})"

    def learning_rate_for(self, steps_per_epoch: int):
        """The stage's learning rate: a float, or Keras's ``CosineDecay`` (which also warms up).

        Examples
        --------
        >>> schedule = Stage(2, 1.0, warmup=0.5, schedule="cosine").learning_rate_for(10)
        >>> [round(float(schedule(step)), 3) for step in (0, 5, 20)]
        [0.0, 1.0, 0.0]
        """
        if not self.warmup and self.schedule == "constant":
            return float(self.learning_rate)
        warmup = int(round(self.warmup * steps_per_epoch))
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else float(self.learning_rate),
            decay_steps=max(1, self.epochs * steps_per_epoch - warmup),
            alpha=0.0 if self.schedule == "cosine" else 1.0,  # alpha 1: no decay at all
            warmup_target=float(self.learning_rate) if warmup else None,
            warmup_steps=warmup,
        )
        remember(schedule, made_by="tlcourse.train.Stage")  # exercise 04.2 asks for one built by hand
        return schedule


def _set_trainable(model, spec) -> None:
    try:
        if not spec:
            base, base_layers, _ = base_and_head(model)
            model.trainable = True
            for layer in [base] if base is not None else base_layers:
                layer.trainable = False
        elif spec == "all" or isinstance(spec, str):
            unfreeze(model, from_layer=None if spec == "all" else spec, split_head=True)
        else:  # "top 20" of a smaller base means all of it
            unfreeze(
                model, top=min(int(spec), len(unfreezable_layers(model, split_head=True))), split_head=True
            )
    except ModelError as exc:
        raise TrainError(exc.message, hint=exc.hint) from None


def _resolve_multipliers(model, multipliers: Mapping[str, float]) -> dict[str, float]:
    """Layer groups → ``{variable.path: multiplier}``; "base" and "head" first, so the specific ones win."""
    base, base_layers, head_layers = base_and_head(model)
    groups = {"base": [base] if base is not None else base_layers, "head": head_layers}
    resolved: dict[str, float] = {}
    for group, factor in sorted(multipliers.items(), key=lambda item: item[0] not in groups):
        layers = groups.get(group) or [
            layer for layer in walk_layers(model) if fnmatch.fnmatchcase(layer.name, group)
        ]
        if not layers:
            names = ["base", "head", *(layer.name for layer in walk_layers(model))]
            raise unknown_name("layer group", group, names, error=TrainError)
        resolved.update({variable.path: float(factor) for layer in layers for variable in layer.weights})
    return resolved


def fine_tune(
    model: keras.Model,
    data,
    *,
    stages: Sequence[Stage],
    batch_size: int | None = None,
    optimizer: Callable = keras.optimizers.Adam,
    loss: Any = None,
    augment: keras.layers.Layer | None = None,
    early_stopping: int | None = None,
    run_dir: str | os.PathLike | bool | None = None,
    verbose: str | int = "auto",
) -> History:
    """Train a classifier in stages: the head first, then more of the base at smaller learning rates.

    For each stage: set what is trainable (BatchNorm always frozen), make a fresh optimizer with the
    stage's learning rate (Keras's ``CosineDecay`` for a warm-up or a cosine) and multipliers,
    recompile, and :func:`fit` (with ``run_dir``, into ``run_dir/stage-N``).

    Parameters
    ----------
    model : keras.Model
        A classifier with logits out, e.g. ``tlcourse.models.classifier(base, k)``: its base is its
        largest nested model (in a flat model, what comes before the trailing Dense/Dropout layers).
    data : DataBundle, (train_ds, val_ds), or ((x, y), (x_val, y_val))
        A bundle is batched here, and ``augment`` (a Keras layer) applied to its training batches.
    optimizer : callable(learning_rate=...) -> optimizer
        A Keras optimizer class (default Adam) or a function.
    loss : optional
        Default: (sparse) categorical cross-entropy from logits, chosen by the labels.

    Examples
    --------
    >>> keras.utils.set_random_seed(0)
    >>> base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
    ...                          keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D()])
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), base, keras.layers.Dense(2)])
    >>> x, y = np.random.rand(32, 8, 8, 3).astype("float32"), np.arange(32) % 2
    >>> h = fine_tune(model, ((x, y), (x, y)), stages=[Stage(1, 1e-3), Stage(1, 1e-4, unfreeze="all")], verbose=0)
    >>> h.stage_boundaries, base.layers[1].trainable
    ([0, 1], False)
    """
    if not stages or not all(isinstance(s, Stage) for s in stages):
        raise ConfigError(
            "stages must be a non-empty list of Stage objects.",
            hint="E.g. stages=[Stage(3, 1e-3), Stage(2, 1e-4, unfreeze=20)].",
        )
    if not callable(optimizer):
        raise ConfigError(
            f"optimizer={optimizer!r} is not callable.", hint="E.g. optimizer=keras.optimizers.SGD."
        )
    batch = _global_batch(batch_size)
    if _is_bundle(data):
        data = (
            data.batches("train", batch_size=batch, augment=augment),
            data.batches("val", batch_size=batch),
        )
    elif _is_arrays(data) or _is_dataset(data) or not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise DataError(
            f"fine_tune cannot use data of type {type(data).__name__} (training data alone?).",
            hint="Pass a DataBundle (tlcourse.data.load(...)), a (train_ds, val_ds) pair of batched "
            "tf.data.Datasets, or ((x, y), (x_val, y_val)) arrays.",
        )
    train, val = (tuple(part) if isinstance(part, list) else part for part in data)
    _, y_first = _first_batch(train, where="training data")
    if loss is None:
        one_hot = y_first.ndim >= 2 and y_first.shape[-1] > 1
        loss = (
            keras.losses.CategoricalCrossentropy if one_hot else keras.losses.SparseCategoricalCrossentropy
        )(from_logits=True)
    steps = math.ceil(len(train[0]) / batch) if _is_arrays(train) else int(train.cardinality())
    steps = steps if steps > 0 else sum(1 for _ in train)
    parts = []
    for number, stage in enumerate(stages, start=1):
        _set_trainable(model, stage.unfreeze)
        with env.current().strategy.scope():
            rate = stage.learning_rate_for(steps)
            opt = optimizer(learning_rate=rate)
            if stage.lr_multipliers:
                opt = discriminative(opt, _resolve_multipliers(model, stage.lr_multipliers))
            model.compile(optimizer=opt, loss=loss, metrics=["accuracy"], jit_compile=_jit())
        # With run_dir=True each stage's own settings and starting weights name its folder.
        folder = run_dir if run_dir in (None, False, True) else Path(run_dir) / f"stage-{number}"
        part = fit(
            model, train, val=val, epochs=stage.epochs, batch_size=batch_size,
            early_stopping=early_stopping, run_dir=folder, verbose=verbose,
        ) if stage.epochs else History({})  # fmt: skip
        parts.append(part)
    root = None if run_dir in (None, False, True) else Path(run_dir)
    return History.concatenate(
        parts, [f"stage {i}: {s.describe()}" for i, s in enumerate(stages, 1)], run_dir=root
    )
