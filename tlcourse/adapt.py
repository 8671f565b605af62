"""Domain adaptation: move a model from a labelled source domain to an unlabelled target domain.

Lesson 06 uses these helpers. None of them ever reads a target label: the target domain
contributes images only (labels are used by :func:`evaluate_domains`, to *measure*).

- :func:`adabn` re-estimates every BatchNormalization layer's statistics on target images.
- :func:`coral_loss` and :class:`DeepCORAL` align the covariances of source and target features.
- :class:`GradientReversal`, :func:`dann_lambda_schedule`, :class:`LambdaSchedule` and
  :class:`DANN` train features that a domain classifier cannot tell apart (Ganin et al., 2016).
- :func:`pseudo_label` and :func:`self_train` train on the model's own confident target predictions.
- :func:`evaluate_domains` reports accuracy on each domain.
- :func:`restart` (and ``into=`` of :func:`fit_coral` / :func:`fit_dann`) re-runs a compiled model
  from new weights without tracing its training step again.

Images go into the models as they come (uint8 or float in [0, 255]); scaling belongs inside the model.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tlcourse.errors import ConfigError, DataError, ModelError, unknown_name
from tlcourse.introspect import batchnorm_layers, walk_layers

__all__ = [
    "DANN",
    "DeepCORAL",
    "GradientReversal",
    "LambdaSchedule",
    "PseudoLabels",
    "adabn",
    "coral_loss",
    "dann_lambda_schedule",
    "domain_batches",
    "evaluate_domains",
    "fit_coral",
    "fit_dann",
    "pseudo_label",
    "restart",
    "self_train",
    "split_classifier",
]


# --------------------------------------------------------------------------- gradient reversal
@keras.saving.register_keras_serializable(package="tlcourse")
class GradientReversal(keras.layers.Layer):
    """Identity on the way forward; multiplies the gradient by ``-lambda_`` on the way back.

    Placed between a feature extractor and a domain classifier, it lets the domain classifier
    learn to tell the domains apart while pushing the features to make that impossible.
    ``lambda_`` lives in a (non-trainable) variable, so a callback such as
    :class:`LambdaSchedule` can change it during training without retracing.

    Parameters
    ----------
    lambda_ : float
        Strength of the reversed gradient (0 switches the adversarial signal off).

    Examples
    --------
    >>> import tensorflow as tf
    >>> layer = GradientReversal(lambda_=0.5)
    >>> x = tf.constant([1.0, -2.0, 3.0])
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = layer(x)
    ...     total = tf.reduce_sum(3.0 * y)
    >>> y.numpy().tolist(), tape.gradient(total, x).numpy().tolist()
    ([1.0, -2.0, 3.0], [-1.5, -1.5, -1.5])
    >>> layer.lambda_ = 2.0
    >>> layer.lambda_
    2.0
    """

    def __init__(self, lambda_: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self._lambda = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(float(lambda_)),
            trainable=False,
            dtype="float32",
            name="lambda",
        )

    @property
    def lambda_(self) -> float:
        return float(ops.convert_to_numpy(self._lambda))

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        self._lambda.assign(float(value))

    @property
    def lambda_variable(self):
        """The variable behind ``lambda_`` (for metrics and schedules inside compiled functions)."""
        return self._lambda

    def call(self, inputs):
        scaled = -ops.cast(self._lambda, inputs.dtype) * inputs
        # Forward: x + (s - s) == x exactly; backward: only -lambda * x carries a gradient.
        return ops.stop_gradient(inputs) + (scaled - ops.stop_gradient(scaled))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lambda_": self.lambda_}


def dann_lambda_schedule(progress, *, gamma: float = 10.0, max_lambda: float = 1.0):
    """Ganin et al.'s schedule for the reversal strength: ``2 / (1 + exp(-gamma * p)) - 1``.

    It starts at 0 (the domain classifier's gradients are noise before the features mean
    anything) and rises smoothly to ``max_lambda`` as training progresses.

    Parameters
    ----------
    progress : float or array-like
        Fraction of training done, in [0, 1].
    gamma : float
        Steepness (10 in the paper).
    max_lambda : float
        The value reached at the end of training.

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> dann_lambda_schedule(0.0)
    0.0
    >>> round(dann_lambda_schedule(0.5), 4)
    0.9866
    >>> dann_lambda_schedule([0.0, 0.1, 1.0]).round(3).tolist()
    [0.0, 0.462, 1.0]
    """
    p = np.asarray(progress, dtype="float64")
    if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise ConfigError(
            f"progress must lie in [0, 1], got {progress!r}.",
            hint="Pass the fraction of training done: step / total_steps.",
        )
    if gamma <= 0:
        raise ConfigError(f"gamma must be positive, got {gamma!r}.", hint="The paper uses gamma=10.")
    value = max_lambda * (2.0 / (1.0 + np.exp(-gamma * p)) - 1.0)
    return float(value) if value.ndim == 0 else value


def _reversal_layers(model) -> list[GradientReversal]:
    return [layer for layer in walk_layers(model, include_self=True) if isinstance(layer, GradientReversal)]


class LambdaSchedule(keras.callbacks.Callback):
    """Set every :class:`GradientReversal` layer's ``lambda_`` from :func:`dann_lambda_schedule`.

    Progress is counted over all the batches of ``fit`` (``per="batch"``) or per epoch.

    Parameters
    ----------
    gamma, max_lambda : float
        Passed to :func:`dann_lambda_schedule`.
    per : {"batch", "epoch"}
        How often to update.
    layers : list of GradientReversal, optional
        The layers to drive; by default every reversal layer inside the model being trained.

    Examples
    --------
    >>> import numpy as np
    >>> inputs = keras.Input((2,))
    >>> reversal = GradientReversal(lambda_=0.0)
    >>> model = keras.Model(inputs, keras.layers.Dense(1)(reversal(inputs)))
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> schedule = LambdaSchedule(per="epoch")
    >>> _ = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=3, verbose=0, callbacks=[schedule])
    >>> [round(v, 3) for v in schedule.values]
    [0.0, 0.987, 1.0]
    """

    def __init__(self, *, gamma: float = 10.0, max_lambda: float = 1.0, per: str = "batch", layers=None):
        super().__init__()
        if per not in ("batch", "epoch"):
            raise ConfigError(f"per must be 'batch' or 'epoch', got {per!r}.", hint="Use per='batch'.")
        self.gamma = gamma
        self.max_lambda = max_lambda
        self.per = per
        self._layers = layers
        self.values: list[float] = []

    def on_train_begin(self, logs=None):
        self._targets = list(self._layers) if self._layers is not None else _reversal_layers(self.model)
        if not self._targets:
            raise ModelError(
                "LambdaSchedule found no GradientReversal layer in the model.",
                hint="Put a GradientReversal layer before the domain head, or pass layers=[...].",
            )
        self._epochs = max(int(self.params.get("epochs") or 1), 1)
        self._steps = self.params.get("steps")

    def _set(self, progress: float) -> None:
        value = dann_lambda_schedule(
            min(max(progress, 0.0), 1.0), gamma=self.gamma, max_lambda=self.max_lambda
        )
        for layer in self._targets:
            layer.lambda_ = value
        self.values.append(value)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.per == "epoch" or not self._steps:
            self._set(epoch / max(self._epochs - 1, 1) if self.per == "epoch" else epoch / self._epochs)

    def on_train_batch_begin(self, batch, logs=None):
        if self.per == "batch" and self._steps:
            self._set((self._epoch * self._steps + batch) / (self._epochs * self._steps))


# --------------------------------------------------------------------------- CORAL
def coral_loss(source_features, target_features):
    """Deep CORAL loss: ``||C_s - C_t||_F^2 / (4 d^2)`` between the feature covariances.

    Parameters
    ----------
    source_features, target_features : tensor or array, shape (n, d)
        Features of a batch from each domain (the batch sizes may differ; each needs n ≥ 2).

    Returns
    -------
    scalar tensor
        0 when both covariance matrices are equal (whatever the means), growing with their gap.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> float(coral_loss(x, x + 5.0)) < 1e-6
    True
    >>> float(coral_loss(x, 3.0 * x)) > float(coral_loss(x, 2.0 * x)) > 0
    True
    """
    source = ops.convert_to_tensor(source_features)
    target = ops.convert_to_tensor(target_features)
    if len(source.shape) != 2 or len(target.shape) != 2:
        raise DataError(
            f"coral_loss expects 2-D features (n, d); got shapes {tuple(source.shape)} and {tuple(target.shape)}.",
            hint="Flatten or pool the feature maps first (e.g. GlobalAveragePooling2D).",
        )
    if source.shape[-1] != target.shape[-1]:
        raise DataError(
            f"Source and target features differ in width: {source.shape[-1]} vs {target.shape[-1]}.",
            hint="Compute both with the same feature extractor.",
        )
    source = ops.cast(source, "float32")
    target = ops.cast(target, "float32")
    d = ops.cast(ops.shape(source)[-1], "float32")

    def covariance(x):
        n = ops.cast(ops.shape(x)[0], "float32")
        centred = x - ops.mean(x, axis=0, keepdims=True)
        return ops.matmul(ops.transpose(centred), centred) / ops.maximum(n - 1.0, 1.0)

    gap = covariance(source) - covariance(target)
    return ops.sum(ops.square(gap)) / (4.0 * d * d)


# --------------------------------------------------------------------------- AdaBN
def _clone(model: keras.Model) -> keras.Model:
    try:
        twin = keras.models.clone_model(model)
    except Exception as exc:  # subclassed models without get_config cannot be cloned
        raise ModelError(
            f"Cannot clone {type(model).__name__} {model.name!r}: {exc}",
            hint="Use a functional or Sequential model (or give your subclass get_config/from_config).",
        ) from None
    twin.set_weights(model.get_weights())
    config = model.get_compile_config() if getattr(model, "compiled", False) else None
    if config:
        try:
            twin.compile_from_config(config)
        except Exception:  # a custom loss or metric that cannot be rebuilt: the caller compiles
            pass
    return twin


def _build_optimizer(model: keras.Model) -> None:
    """Create the optimizer's variables now, outside ``fit``.

    Left to ``fit``, they are created inside the first traced training step, and TensorFlow then
    traces that step twice (variables may only be created on a first trace): about a second per
    model on a CPU.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)


def _reset_optimizer(model: keras.Model) -> None:
    """Put the optimizer back in its just-built state (step 0, empty moments), keeping its variables."""
    optimizer = model.optimizer
    _build_optimizer(model)
    fresh = type(optimizer).from_config(optimizer.get_config())
    fresh.build(model.trainable_variables)
    if len(fresh.variables) != len(optimizer.variables):
        raise ModelError(
            f"Cannot restart the {type(optimizer).__name__} optimizer of {model.name!r}: it holds "
            f"{len(optimizer.variables)} variables, a fresh one {len(fresh.variables)}.",
            hint="Compile the model again instead (its training step is then traced again).",
        )
    for variable, value in zip(optimizer.variables, fresh.variables, strict=True):
        variable.assign(value)


def _copy_weights(source: keras.Model, destination: keras.Model, *, what: str) -> None:
    weights = source.get_weights()
    shapes = [tuple(v.shape) for v in destination.weights]
    if [np.shape(w) for w in weights] != shapes:
        raise ModelError(
            f"{what}: the new weights do not fit {destination.name!r} "
            f"({len(weights)} arrays vs {len(shapes)}, or different shapes).",
            hint="Re-use a model only with weights of the same architecture.",
        )
    destination.set_weights(weights)


def restart(model: keras.Model, weights) -> keras.Model:
    """Give a compiled model new weights and a fresh optimizer state, keeping its traced training step.

    ``fit`` traces a model's training step the first time it runs (one to two seconds for a small
    CNN on a CPU: often more than the training itself). To train the same architecture again —
    another seed, another starting point — restart the model you already have instead of
    compiling a new one. The optimizer restarts from step 0 with empty moments, exactly as if
    freshly built; its settings (learning rate, ...) stay.

    Parameters
    ----------
    model : keras.Model
        A compiled model (it is modified in place and returned).
    weights : keras.Model or list of arrays
        The new weights: a model of the same architecture, or ``get_weights()`` of one.

    Returns
    -------
    keras.Model
        ``model``.

    Examples
    --------
    >>> import numpy as np
    >>> def build():
    ...     return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model = build()
    >>> model.compile(optimizer="adam", loss="mse")
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), verbose=0)
    >>> step = model.train_function
    >>> other = build()
    >>> restarted = restart(model, other)
    >>> int(model.optimizer.iterations), all(np.array_equal(a, b) for a, b in zip(model.get_weights(), other.get_weights()))
    (0, True)
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), verbose=0)
    >>> model.train_function is step  # the traced step was re-used
    True
    """
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ModelError(
            f"restart needs a compiled model; {model.name!r} is not compiled.",
            hint="Compile it once (model.compile(...)); later runs re-use it through restart.",
        )
    if isinstance(weights, keras.Model):
        _copy_weights(weights, model, what="restart")
    else:
        weights = list(weights)
        shapes = [tuple(v.shape) for v in model.weights]
        if [np.shape(w) for w in weights] != shapes:
            raise ModelError(
                f"restart: {len(weights)} arrays do not fit the {len(shapes)} weights of {model.name!r}.",
                hint="Pass a model of the same architecture, or its get_weights().",
            )
        model.set_weights(weights)
    _reset_optimizer(model)
    return model


def _batchnorm_layers(model) -> list[keras.layers.BatchNormalization]:
    return batchnorm_layers(model)


def _as_images(images, what: str = "target_images") -> np.ndarray:
    if isinstance(images, tf.data.Dataset):
        chunks = []
        for element in images:
            x = element[0] if isinstance(element, (tuple, list)) else element
            chunks.append(np.asarray(x))
        if not chunks:
            raise DataError(f"{what} is an empty dataset.", hint="Pass at least one image.")
        first = chunks[0]
        images = np.stack(chunks) if first.ndim == 3 else np.concatenate(chunks)
    images = np.asarray(images)
    if images.ndim < 2 or len(images) == 0:
        raise DataError(
            f"{what} must be a non-empty batch of images, got shape {images.shape}.",
            hint="Pass an array (n, height, width, channels), e.g. bundle.arrays('train')[0].",
        )
    return images


def adabn(model: keras.Model, target_images, *, batch_size: int = 256, verbose: bool = False) -> keras.Model:
    """AdaBN: a copy of ``model`` whose BatchNormalization statistics are the target domain's.

    Each BN layer's moving mean and variance are replaced by the exact mean and variance of
    its inputs on ``target_images`` (no labels), layer after layer, so that every layer sees
    inputs already normalised by the adapted layers before it. Dropout stays off. The original
    model is left untouched; the copy keeps its compile settings when they can be rebuilt.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential model containing BatchNormalization layers.
    target_images : array (n, h, w, c) or tf.data.Dataset
        Unlabelled target images (a dataset may yield images or (image, label) pairs; labels are ignored).
    batch_size : int
        Images per forward pass.
    verbose : bool
        Show a progress bar per BN layer.

    Returns
    -------
    keras.Model
        The adapted copy.

    Examples
    --------
    >>> import numpy as np
    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.BatchNormalization()(inputs)))
    >>> target = np.random.default_rng(0).normal(5.0, 2.0, size=(500, 3)).astype("float32")
    >>> adapted = adabn(model, target)
    >>> bn = adapted.layers[1]
    >>> np.allclose(bn.moving_mean.numpy(), target.mean(axis=0), atol=1e-4)
    True
    >>> model.layers[1].moving_mean.numpy().tolist()  # the original is unchanged
    [0.0, 0.0, 0.0]
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}.", hint="Try batch_size=256.")
    images = _as_images(target_images)
    if not _batchnorm_layers(model):
        raise ModelError(
            f"Model {model.name!r} has no BatchNormalization layer, so AdaBN has nothing to adapt.",
            hint="AdaBN needs BN layers; try tlcourse.adapt.DeepCORAL or DANN instead.",
        )
    adapted = _clone(model)
    layers = _batchnorm_layers(adapted)
    steps = math.ceil(len(images) / batch_size)
    for index, layer in enumerate(layers):
        axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
        sums: dict[str, Any] = {"n": 0, "s": 0.0, "ss": 0.0}
        original_call = layer.call

        # Record the layer's inputs during eager forward passes: unlike a probe model, this also
        # reaches BN layers inside nested models. One pass per BN layer keeps the statistics exact.
        def recording_call(inputs, *args, _call=original_call, _axis=axis, _sums=sums, **kwargs):
            x = np.asarray(ops.convert_to_numpy(inputs), dtype="float64")
            x = np.moveaxis(x, _axis, -1).reshape(-1, x.shape[_axis])
            _sums["n"] += x.shape[0]
            _sums["s"] = _sums["s"] + x.sum(axis=0)
            _sums["ss"] = _sums["ss"] + np.square(x).sum(axis=0)
            return _call(inputs, *args, **kwargs)

        layer.call = recording_call
        try:
            if verbose:
                print(f"AdaBN {index + 1}/{len(layers)}: {layer.name}", flush=True)
            bar = keras.utils.Progbar(steps, verbose=1 if verbose else 0, unit_name="batch")
            for step, start in enumerate(range(0, len(images), batch_size)):
                adapted(ops.convert_to_tensor(images[start : start + batch_size], "float32"), training=False)
                bar.update(step + 1)
        finally:
            del layer.call
        mean = sums["s"] / sums["n"]
        variance = np.maximum(sums["ss"] / sums["n"] - np.square(mean), 0.0)
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    return adapted


# --------------------------------------------------------------------------- two-domain models
def split_classifier(classifier: keras.Model, *, feature_layer: str | int = -2):
    """Split a chain-shaped classifier into a feature extractor and a head (sharing the weights).

    Parameters
    ----------
    classifier : keras.Model
        A Sequential model, or a functional model whose layers form a single chain.
    feature_layer : str or int
        The last layer of the feature extractor, by name or index (default: the one before the
        output layer).

    Returns
    -------
    (keras.Model, keras.Model)
        ``features`` maps images to feature vectors; ``head`` maps those to logits.

    Examples
    --------
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(2)])
    >>> features, head = split_classifier(model)
    >>> features.output_shape, head.output_shape
    ((None, 3), (None, 2))
    """
    layers = [layer for layer in classifier.layers if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(feature_layer, str):
        names = [layer.name for layer in layers]
        if feature_layer not in names:
            raise unknown_name("layer", feature_layer, names, error=ModelError)
        cut = names.index(feature_layer)
    else:
        cut = feature_layer if feature_layer >= 0 else len(layers) + feature_layer
    if not 0 <= cut < len(layers) - 1:
        raise ModelError(
            f"feature_layer={feature_layer!r} leaves no layer for the head (the model has {len(layers)} layers).",
            hint="Name a layer before the last one, e.g. the pooling or flatten layer.",
        )
    for layer in layers[1:]:
        nodes = getattr(layer, "_inbound_nodes", [])
        if nodes and len(nodes[0].input_tensors) != 1:
            raise ModelError(
                f"Layer {layer.name!r} has several inputs, so {classifier.name!r} is not a simple chain.",
                hint="Build DANN/DeepCORAL from your own feature extractor and head models instead.",
            )
    inputs = keras.Input(classifier.inputs[0].shape[1:], dtype=classifier.inputs[0].dtype)
    x = inputs
    for layer in layers[: cut + 1]:
        x = layer(x)
    features = keras.Model(inputs, x, name=f"{classifier.name}_features")
    head_inputs = keras.Input(x.shape[1:])
    y = head_inputs
    for layer in layers[cut + 1 :]:
        y = layer(y)
    head = keras.Model(head_inputs, y, name=f"{classifier.name}_head")
    return features, head


class _TwoDomainModel(keras.Model):
    """A classifier trained on batches ``((x_source, y_source), x_target)``; calls give label logits."""

    def __init__(
        self, feature_extractor: keras.Model, label_head: keras.Model, *, batchnorm: str = "mixed", **kwargs
    ):
        super().__init__(**kwargs)
        if batchnorm not in ("mixed", "per_domain"):
            raise ConfigError(
                f"batchnorm must be 'mixed' or 'per_domain', got {batchnorm!r}.",
                hint="'mixed' normalises source and target together; 'per_domain' separately (then use adabn).",
            )
        self.batchnorm = batchnorm
        self.feature_extractor = feature_extractor
        self.label_head = label_head
        self.label_loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.label_loss_tracker = keras.metrics.Mean(name="label_loss")
        self.source_accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @classmethod
    def from_classifier(cls, classifier: keras.Model, *, feature_layer: str | int = -2, **kwargs):
        """Build from a chain-shaped classifier (a copy of it: the original keeps its weights)."""
        features, head = split_classifier(_clone(classifier), feature_layer=feature_layer)
        return cls(features, head, **kwargs)

    def as_classifier(self, *, name: str | None = None) -> keras.Model:
        """A plain functional classifier (images → logits) sharing this model's layers and weights.

        Use it with :func:`adabn`, :func:`pseudo_label`, :func:`self_train` or to save a ``.keras`` file.
        """
        inputs = keras.Input(
            self.feature_extractor.inputs[0].shape[1:], dtype=self.feature_extractor.inputs[0].dtype
        )
        outputs = self.label_head(self.feature_extractor(inputs))
        return keras.Model(inputs, outputs, name=name or f"{self.name}_classifier")

    def call(self, inputs, training=False):
        return self.label_head(self.feature_extractor(inputs, training=training), training=training)

    def _unpack(self, data):
        if (
            not isinstance(data, (tuple, list))
            or len(data) != 2
            or not isinstance(data[0], (tuple, list))
            or len(data[0]) != 2
        ):
            raise DataError(
                f"{type(self).__name__} trains on batches ((x_source, y_source), x_target).",
                hint="Build them with tlcourse.adapt.domain_batches(source, target_images).",
            )
        (x_source, y_source), x_target = data
        return x_source, y_source, x_target

    def _replicas(self) -> float:
        return float(tf.distribute.get_strategy().num_replicas_in_sync)

    def _adaptation_loss(self, source_features, target_features, training: bool):
        raise NotImplementedError

    def train_step(self, data):
        x_source, y_source, x_target = self._unpack(data)
        x_source = ops.cast(x_source, "float32")
        x_target = ops.cast(x_target, "float32")
        n_source = ops.shape(x_source)[0]
        with tf.GradientTape() as tape:
            if (
                self.batchnorm == "mixed"
            ):  # one pass: BatchNorm normalises the mixed batch (the papers' set-up)
                features = self.feature_extractor(
                    ops.concatenate([x_source, x_target], axis=0), training=True
                )
                source_features, target_features = features[:n_source], features[n_source:]
            else:  # each domain normalised by its own batch statistics (domain-specific BN, as in AdaBN)
                source_features = self.feature_extractor(x_source, training=True)
                target_features = self.feature_extractor(x_target, training=True)
            logits = self.label_head(source_features, training=True)
            label_loss = ops.mean(self.label_loss_fn(y_source, logits))
            adaptation_loss = self._adaptation_loss(source_features, target_features, training=True)
            total = label_loss + adaptation_loss
            if self.losses:  # weight regularisers of the extractor or heads
                total = total + ops.cast(ops.sum(ops.stack(self.losses)), "float32")
            scaled = self.optimizer.scale_loss(total / self._replicas())
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, self.trainable_variables, strict=True) if g is not None]
        )
        self.total_loss_tracker.update_state(total)
        self.label_loss_tracker.update_state(label_loss)
        self.source_accuracy.update_state(y_source, logits)
        return self._logs()

    def test_step(self, data):
        x, y = data[0], data[1]
        logits = self(ops.cast(x, "float32"), training=False)
        loss = ops.mean(self.label_loss_fn(y, logits))
        self.total_loss_tracker.update_state(loss)
        self.label_loss_tracker.update_state(loss)
        self.source_accuracy.update_state(y, logits)
        return {
            "loss": self.total_loss_tracker.result(),
            "label_loss": self.label_loss_tracker.result(),
            "accuracy": self.source_accuracy.result(),
        }

    @property
    def metrics(self):
        # Only our trackers: fit resets them each epoch, and the logs show exactly these.
        return [
            self.total_loss_tracker,
            self.label_loss_tracker,
            self.source_accuracy,
            *self._extra_metrics(),
        ]

    def _extra_metrics(self) -> list:
        return []

    def _logs(self) -> dict[str, Any]:
        return {m.name: m.result() for m in self.metrics}

    def get_config(self) -> dict[str, Any]:
        return {
            "feature_extractor": keras.saving.serialize_keras_object(self.feature_extractor),
            "label_head": keras.saving.serialize_keras_object(self.label_head),
            "batchnorm": self.batchnorm,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("feature_extractor", "label_head", "domain_head"):
            if key in config and isinstance(config[key], dict):
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return cls(**config)


def _default_domain_head(width: int, hidden: int) -> keras.Model:
    inputs = keras.Input((width,))
    x = keras.layers.Dense(hidden, activation="relu")(inputs)
    x = keras.layers.Dense(hidden, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x), name="domain_head")


@keras.saving.register_keras_serializable(package="tlcourse")
class DANN(_TwoDomainModel):
    """Domain-adversarial neural network (Ganin et al., 2016).

    A feature extractor feeds a label head (trained on labelled source images) and, through a
    :class:`GradientReversal` layer, a domain head that learns to tell source from target.
    The reversal makes the feature extractor *maximise* the domain loss, so the features
    become domain-invariant. Train on batches ``((x_source, y_source), x_target)``
    (see :func:`domain_batches`); calling the model returns label logits.

    Parameters
    ----------
    feature_extractor : keras.Model
        Images → feature vectors (n, d).
    label_head : keras.Model
        Features → class logits.
    domain_head : keras.Model, optional
        Features → one domain logit (target = 1); default: a two-layer MLP of width ``domain_hidden``.
    lambda_ : float
        Initial reversal strength (a :class:`LambdaSchedule` callback usually drives it from 0 to 1).
    domain_weight : float
        Weight of the domain loss in the total loss.
    domain_hidden : int
        Width of the default domain head.
    batchnorm : {"mixed", "per_domain"}
        "mixed" (the paper's set-up) passes source and target through the feature extractor as one
        batch; "per_domain" normalises each domain with its own batch statistics (domain-specific
        BatchNorm) — then finish with :func:`adabn` on ``model.as_classifier()`` so that inference
        uses the target's statistics.

    Logs ``label_loss``, ``accuracy`` (on source), ``domain_loss``, ``domain_accuracy`` and ``lambda``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> features = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu")])
    >>> head = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    >>> dann = DANN(features, head)
    >>> dann.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
    >>> source = (rng.normal(size=(64, 4)), rng.integers(0, 2, 64))
    >>> data = domain_batches(source, rng.normal(1.0, size=(64, 4)), batch_size=16)
    >>> history = dann.fit(data, epochs=2, steps_per_epoch=4, callbacks=[LambdaSchedule()], shuffle=False, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'domain_accuracy', 'domain_loss', 'label_loss', 'lambda', 'loss']
    >>> dann.predict(source[0][:3], verbose=0).shape
    (3, 2)
    """

    def __init__(
        self,
        feature_extractor: keras.Model,
        label_head: keras.Model,
        domain_head: keras.Model | None = None,
        *,
        lambda_: float = 0.0,
        domain_weight: float = 1.0,
        domain_hidden: int = 64,
        **kwargs,
    ):
        super().__init__(feature_extractor, label_head, **kwargs)
        width = feature_extractor.output_shape[-1]
        if not isinstance(width, int):
            raise ModelError(
                "The feature extractor's output needs a known width (n, d).",
                hint="End it with Flatten or GlobalAveragePooling2D.",
            )
        self.domain_head = domain_head or _default_domain_head(width, domain_hidden)
        self.reversal = GradientReversal(lambda_, name="gradient_reversal")
        self.domain_weight = float(domain_weight)
        self.domain_hidden = int(domain_hidden)
        self.domain_loss_fn = keras.losses.BinaryCrossentropy(from_logits=True, reduction="none")
        self.domain_loss_tracker = keras.metrics.Mean(name="domain_loss")
        self.domain_accuracy = keras.metrics.BinaryAccuracy(name="domain_accuracy", threshold=0.0)
        self.lambda_tracker = keras.metrics.Mean(name="lambda")

    def _extra_metrics(self) -> list:
        return [self.domain_loss_tracker, self.domain_accuracy, self.lambda_tracker]

    @property
    def lambda_(self) -> float:
        return self.reversal.lambda_

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        self.reversal.lambda_ = value

    def _adaptation_loss(self, source_features, target_features, training: bool):
        features = ops.concatenate([source_features, target_features], axis=0)
        domains = ops.concatenate(
            [ops.zeros((ops.shape(source_features)[0], 1)), ops.ones((ops.shape(target_features)[0], 1))],
            axis=0,
        )
        logits = ops.cast(self.domain_head(self.reversal(features), training=training), "float32")
        loss = ops.mean(self.domain_loss_fn(domains, logits))
        self.domain_loss_tracker.update_state(loss)
        self.domain_accuracy.update_state(domains, logits)
        self.lambda_tracker.update_state(self.reversal.lambda_variable)
        return self.domain_weight * loss

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "domain_head": keras.saving.serialize_keras_object(self.domain_head),
            "lambda_": self.lambda_,
            "domain_weight": self.domain_weight,
            "domain_hidden": self.domain_hidden,
        }


@keras.saving.register_keras_serializable(package="tlcourse")
class DeepCORAL(_TwoDomainModel):
    """Deep CORAL (Sun & Saenko, 2016): label loss on source + ``coral_weight`` × :func:`coral_loss`.

    Train on batches ``((x_source, y_source), x_target)`` (see :func:`domain_batches`); calling
    the model returns label logits. Logs ``label_loss``, ``accuracy`` (on source) and ``coral_loss``.

    Parameters
    ----------
    feature_extractor, label_head : keras.Model
        Images → features (n, d), features → logits.
    coral_weight : float
        Weight of the CORAL term (the paper balances it so both losses are of similar size at the end).
    align : {"features", "logits"}
        Align the covariances of the feature vectors, or of the logits as in the paper (its fc8).
    batchnorm : {"mixed", "per_domain"}
        As in :class:`DANN`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> features = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu")])
    >>> head = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    >>> model = DeepCORAL(features, head, coral_weight=5.0)
    >>> model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
    >>> data = domain_batches((rng.normal(size=(64, 4)), rng.integers(0, 2, 64)), rng.normal(size=(64, 4)) * 3)
    >>> sorted(model.fit(data, epochs=1, steps_per_epoch=2, shuffle=False, verbose=0).history)
    ['accuracy', 'coral_loss', 'label_loss', 'loss']
    """

    def __init__(
        self,
        feature_extractor: keras.Model,
        label_head: keras.Model,
        *,
        coral_weight: float = 1.0,
        align: str = "features",
        **kwargs,
    ):
        super().__init__(feature_extractor, label_head, **kwargs)
        if align not in ("features", "logits"):
            raise ConfigError(
                f"align must be 'features' or 'logits', got {align!r}.", hint="Use align='features'."
            )
        self.coral_weight = float(coral_weight)
        self.align = align
        self.coral_tracker = keras.metrics.Mean(name="coral_loss")

    def _extra_metrics(self) -> list:
        return [self.coral_tracker]

    def _adaptation_loss(self, source_features, target_features, training: bool):
        if self.align == "logits":
            source_features = self.label_head(source_features, training=training)
            target_features = self.label_head(target_features, training=training)
        loss = coral_loss(source_features, target_features)
        self.coral_tracker.update_state(loss)
        return self.coral_weight * loss

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "coral_weight": self.coral_weight, "align": self.align}


def domain_batches(source, target_images, *, batch_size: int | None = None, seed: int = 0) -> tf.data.Dataset:
    """Endless batches ``((x_source, y_source), x_target)`` for :class:`DANN` and :class:`DeepCORAL`.

    Both domains are shuffled and repeated independently, so the smaller one cycles.

    Parameters
    ----------
    source : (images, labels) arrays
        The labelled source domain.
    target_images : array or tf.data.Dataset
        Unlabelled target images (labels in a dataset are dropped).
    batch_size : int, optional
        Images per domain per batch (default: the course budget's).
    seed : int
        Shuffling seed.

    Examples
    --------
    >>> import numpy as np
    >>> data = domain_batches((np.zeros((10, 2)), np.arange(10)), np.ones((7, 2)), batch_size=4)
    >>> (xs, ys), xt = next(iter(data))
    >>> xs.shape, ys.shape, xt.shape
    (TensorShape([4, 2]), TensorShape([4]), TensorShape([4, 2]))
    """
    x_source, y_source = _as_labelled(source, "source")
    x_target = _as_images(target_images)
    batch_size = batch_size or _budget_batch_size()
    src = (
        tf.data.Dataset.from_tensor_slices((x_source, y_source))
        .shuffle(len(x_source), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size, drop_remainder=True)
    )
    tgt = (
        tf.data.Dataset.from_tensor_slices(x_target)
        .shuffle(len(x_target), seed=seed + 1, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size, drop_remainder=True)
    )
    return tf.data.Dataset.zip((src, tgt)).prefetch(tf.data.AUTOTUNE)


def _budget_batch_size() -> int:
    from tlcourse.env import current

    return current().budget.batch_size


def _as_labelled(data, what: str) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(data, "arrays") and callable(data.arrays):
        return data.arrays("train" if what == "source" else "test")
    if isinstance(data, tf.data.Dataset):
        xs, ys = [], []
        for x, y in data:
            xs.append(np.asarray(x))
            ys.append(np.asarray(y))
        if not xs:
            raise DataError(f"{what} is an empty dataset.", hint="Pass at least one (image, label) pair.")
        batched = np.asarray(ys[0]).ndim >= 1
        return (np.concatenate(xs), np.concatenate(ys)) if batched else (np.stack(xs), np.stack(ys))
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError(
            f"{what} must be an (images, labels) pair, a tf.data.Dataset of them, or a DataBundle.",
            hint="E.g. bundle.arrays('test').",
        )
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if len(x) != len(y) or len(x) == 0:
        raise DataError(
            f"{what} has {len(x)} images and {len(y)} labels.",
            hint="Pass as many labels as images (and at least one).",
        )
    return x, y


def _fit_two_domains(
    model: _TwoDomainModel,
    source,
    target_images,
    *,
    epochs: int | None,
    batch_size: int | None,
    learning_rate: float,
    steps_per_epoch: int | None,
    callbacks,
    seed: int,
    verbose,
) -> _TwoDomainModel:
    x_source, y_source = _as_labelled(source, "source")
    batch_size = batch_size or _budget_batch_size()
    if epochs is None:
        from tlcourse.env import current

        epochs = current().budget.epochs
    if len(x_source) < batch_size:
        raise DataError(
            f"The source domain has {len(x_source)} images, fewer than one batch of {batch_size}.",
            hint="Use a smaller batch_size.",
        )
    steps = steps_per_epoch or max(len(x_source) // batch_size, 1)
    data = domain_batches((x_source, y_source), target_images, batch_size=batch_size, seed=seed)
    if not getattr(model, "compiled", False):
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate))
    _build_optimizer(model)
    model.fit(
        data,
        epochs=epochs,
        steps_per_epoch=steps,
        callbacks=list(callbacks or []),
        shuffle=False,
        verbose=verbose,
    )
    return model


def _restart_two_domains(into, cls, classifier, *, feature_layer, learning_rate, settings: dict[str, Any]):
    """Load ``classifier`` into an earlier result ``into`` (same architecture and settings) to train it again."""
    if not isinstance(into, cls):
        raise ConfigError(
            f"into must be a {cls.__name__} returned by an earlier call, got {type(into).__name__}.",
            hint=f"Pass the {cls.__name__} to re-use, or leave into=None to build a new one.",
        )
    for name, value in settings.items():
        if getattr(into, name) != value:
            raise ConfigError(
                f"into was built with {name}={getattr(into, name)!r}, this call asks for {name}={value!r}.",
                hint="Settings are frozen into the traced training step: re-use a model built with the "
                "same ones, or leave into=None.",
            )
    features, head = split_classifier(_clone(classifier), feature_layer=feature_layer)
    _copy_weights(features, into.feature_extractor, what="into's feature extractor")
    _copy_weights(head, into.label_head, what="into's label head")
    if isinstance(into, DANN):  # a freshly initialised domain head, λ back to 0
        into.domain_head.set_weights(keras.models.clone_model(into.domain_head).get_weights())
        into.lambda_ = 0.0
    if getattr(into, "compiled", False):
        into.optimizer.learning_rate = learning_rate
        _reset_optimizer(into)
    return into


def fit_dann(
    classifier: keras.Model,
    source,
    target_images,
    *,
    feature_layer: str | int = -2,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    gamma: float = 10.0,
    max_lambda: float = 1.0,
    domain_weight: float = 1.0,
    domain_hidden: int = 64,
    batchnorm: str = "mixed",
    steps_per_epoch: int | None = None,
    seed: int = 0,
    verbose="auto",
    into: DANN | None = None,
) -> DANN:
    """Train a :class:`DANN` built from (a copy of) ``classifier`` with the λ schedule.

    Parameters
    ----------
    classifier : keras.Model
        A chain-shaped classifier giving logits (e.g. ``tlcourse.models.small_cnn``), fresh or
        already trained on the source; it is copied, never modified.
    source : (images, labels) or DataBundle
        Labelled source data (a bundle's ``train`` split).
    target_images : array or tf.data.Dataset
        Unlabelled target images.
    feature_layer : str or int
        Where the domain head branches off (see :func:`split_classifier`).
    epochs, batch_size : int, optional
        Default: the course budget's.
    batchnorm : {"mixed", "per_domain"}
        How BatchNorm layers normalise during training (see :class:`DANN`).
    learning_rate, gamma, max_lambda, domain_weight, domain_hidden, steps_per_epoch, seed, verbose
        Training settings; ``gamma``/``max_lambda`` shape :func:`dann_lambda_schedule`; ``seed``
        seeds the shuffling (call ``keras.utils.set_random_seed`` too for a reproducible domain head).
    into : DANN, optional
        A model returned by an earlier call with the same architecture and settings, to train
        again instead of building a new one: it receives ``classifier``'s weights, a freshly
        initialised domain head and a fresh optimizer state, and keeps its traced training step
        (see :func:`restart`). It is overwritten and returned.

    Returns
    -------
    DANN
        The trained model (``model.history`` holds the logs).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clf = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    >>> dann = fit_dann(clf, (rng.normal(size=(64, 4)), rng.integers(0, 2, 64)), rng.normal(size=(64, 4)),
    ...                 epochs=2, batch_size=16, verbose=0)
    >>> dann.history.history["lambda"][-1] > dann.history.history["lambda"][0]
    True
    """
    if into is None:
        model = DANN.from_classifier(
            classifier,
            feature_layer=feature_layer,
            domain_weight=domain_weight,
            domain_hidden=domain_hidden,
            batchnorm=batchnorm,
        )
    else:
        model = _restart_two_domains(
            into,
            DANN,
            classifier,
            feature_layer=feature_layer,
            learning_rate=learning_rate,
            settings={"domain_weight": float(domain_weight), "batchnorm": batchnorm},
        )
    schedule = LambdaSchedule(gamma=gamma, max_lambda=max_lambda, per="batch")
    return _fit_two_domains(
        model,
        source,
        target_images,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        steps_per_epoch=steps_per_epoch,
        callbacks=[schedule],
        seed=seed,
        verbose=verbose,
    )


def fit_coral(
    classifier: keras.Model,
    source,
    target_images,
    *,
    feature_layer: str | int = -2,
    coral_weight: float = 1.0,
    align: str = "features",
    batchnorm: str = "mixed",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    verbose="auto",
    into: DeepCORAL | None = None,
) -> DeepCORAL:
    """Train a :class:`DeepCORAL` model built from (a copy of) ``classifier``.

    Parameters are those of :func:`fit_dann`, with ``coral_weight`` and ``align`` of :class:`DeepCORAL`
    (``into``: an earlier DeepCORAL with the same architecture, ``coral_weight``, ``align`` and
    ``batchnorm``, trained again from ``classifier``'s weights without re-tracing).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clf = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    >>> model = fit_coral(clf, (rng.normal(size=(64, 4)), rng.integers(0, 2, 64)), rng.normal(size=(64, 4)),
    ...                   epochs=1, batch_size=16, verbose=0)
    >>> model.predict(np.zeros((2, 4)), verbose=0).shape
    (2, 2)
    """
    if into is None:
        model = DeepCORAL.from_classifier(
            classifier,
            feature_layer=feature_layer,
            coral_weight=coral_weight,
            align=align,
            batchnorm=batchnorm,
        )
    else:
        settings = {"coral_weight": float(coral_weight), "align": align, "batchnorm": batchnorm}
        model = _restart_two_domains(
            into,
            DeepCORAL,
            classifier,
            feature_layer=feature_layer,
            learning_rate=learning_rate,
            settings=settings,
        )
    return _fit_two_domains(
        model,
        source,
        target_images,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        steps_per_epoch=steps_per_epoch,
        callbacks=[],
        seed=seed,
        verbose=verbose,
    )


# --------------------------------------------------------------------------- pseudo-labelling
class PseudoLabels(NamedTuple):
    """The confident part of a model's predictions on unlabelled images.

    ``images`` and ``labels`` hold the kept examples; ``confidence`` (max softmax probability)
    and ``mask`` (kept or not) cover every input image.
    """

    images: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    mask: np.ndarray


_DIRECT_CALL_LIMIT = 4096  # up to this many images, direct calls beat tracing predict's function


def _predict_logits(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    if len(images) > _DIRECT_CALL_LIMIT:
        return np.asarray(model.predict(images, batch_size=batch_size, verbose=0), dtype="float32")
    # A few hundred images: calling the model batch by batch skips tracing predict's function
    # (about half a second per new model on a CPU), which costs more than the forward passes.
    inputs = getattr(model, "inputs", None)
    dtype = inputs[0].dtype if inputs else "float32"  # what predict would feed the model
    chunks = [
        ops.convert_to_numpy(
            model(ops.convert_to_tensor(images[start : start + batch_size], dtype), training=False)
        )
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks).astype("float32")


def pseudo_label(
    model: keras.Model,
    target_images,
    *,
    threshold: float = 0.9,
    max_per_class: int | None = None,
    batch_size: int = 256,
) -> PseudoLabels:
    """Keep the target images the model classifies with softmax confidence ≥ ``threshold``.

    Parameters
    ----------
    model : keras.Model
        A classifier returning logits.
    target_images : array or tf.data.Dataset
        Unlabelled target images.
    threshold : float
        Minimum max-softmax probability, in [0, 1).
    max_per_class : int, optional
        Keep at most this many (the most confident) per predicted class, so the easiest class
        cannot flood the pseudo-labelled set.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    PseudoLabels
        ``(images, labels, confidence, mask)``.

    Examples
    --------
    >>> import numpy as np
    >>> inputs = keras.Input((2,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")(inputs))
    >>> x = np.array([[5.0, 0.0], [0.0, 5.0], [0.1, 0.0]], dtype="float32")
    >>> result = pseudo_label(model, x, threshold=0.9)
    >>> result.labels.tolist(), result.mask.tolist()
    ([0, 1], [True, True, False])
    """
    if not 0.0 <= threshold < 1.0:
        raise ConfigError(
            f"threshold must lie in [0, 1), got {threshold!r}.", hint="Typical values: 0.8-0.95."
        )
    images = _as_images(target_images)
    logits = _predict_logits(model, images, batch_size)
    probabilities = np.asarray(ops.convert_to_numpy(ops.softmax(logits, axis=-1)))
    confidence = probabilities.max(axis=-1)
    predicted = probabilities.argmax(axis=-1)
    mask = confidence >= threshold
    if max_per_class is not None:
        for label in np.unique(predicted[mask]):
            chosen = np.flatnonzero(mask & (predicted == label))
            if len(chosen) > max_per_class:
                drop = chosen[np.argsort(-confidence[chosen], kind="stable")[max_per_class:]]
                mask[drop] = False
    return PseudoLabels(images[mask], predicted[mask].astype("int64"), confidence, mask)


def self_train(
    model: keras.Model,
    source,
    target_images,
    *,
    threshold: float = 0.9,
    rounds: int = 2,
    epochs: int = 1,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    max_per_class: int | None = None,
    seed: int = 0,
    verbose="auto",
) -> keras.Model:
    """Self-training: a few rounds of training on source + confidently pseudo-labelled target images.

    Each round labels the target images with the current model (:func:`pseudo_label`), then
    trains on the labelled source images plus the kept target images. Works on a copy.

    Parameters
    ----------
    model : keras.Model
        A trained source classifier returning logits (left untouched).
    source : (images, labels) or DataBundle
        Labelled source data.
    target_images : array or tf.data.Dataset
        Unlabelled target images.
    threshold, max_per_class
        Passed to :func:`pseudo_label`.
    rounds, epochs : int
        Rounds of pseudo-labelling, and epochs of training per round.
    batch_size : int, optional
        Default: the course budget's.
    learning_rate : float
        Adam's learning rate (used when the copy has no compile settings).
    seed : int
        Shuffling seed.

    Returns
    -------
    keras.Model
        The self-trained copy; ``model.pseudo_label_counts`` lists how many target images each round kept.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clf = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> x = rng.normal(size=(40, 2)).astype("float32"); y = (x[:, 0] > 0).astype("int64")
    >>> tuned = self_train(clf, (x, y), x + 0.5, threshold=0.0, rounds=1, batch_size=8, verbose=0)
    >>> tuned.pseudo_label_counts
    [40]
    """
    if rounds < 1 or epochs < 1:
        raise ConfigError("rounds and epochs must be ≥ 1.", hint="Try rounds=2, epochs=1.")
    x_source, y_source = _as_labelled(source, "source")
    images = _as_images(target_images)
    batch_size = batch_size or _budget_batch_size()
    student = _clone(model)
    student.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    _build_optimizer(student)
    counts = []
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        kept = pseudo_label(student, images, threshold=threshold, max_per_class=max_per_class)
        counts.append(int(kept.mask.sum()))
        x = np.concatenate([x_source, kept.images.astype(x_source.dtype)])
        y = np.concatenate([y_source.astype("int64"), kept.labels])
        order = rng.permutation(len(x))
        student.fit(x[order], y[order], batch_size=batch_size, epochs=epochs, verbose=verbose)
    student.pseudo_label_counts = counts
    return student


# --------------------------------------------------------------------------- evaluation
def evaluate_domains(
    model: keras.Model, source, target, *, batch_size: int = 256, **others
) -> dict[str, float]:
    """Accuracy of ``model`` on each domain: ``{"source": ..., "target": ..., **others}``.

    Parameters
    ----------
    model : keras.Model
        A classifier returning logits (or probabilities: only the arg-max matters).
    source, target, **others : (images, labels), tf.data.Dataset or DataBundle
        Labelled evaluation data per domain (a bundle contributes its ``test`` split).
        Labels are used here only to *measure*; no adaptation step reads them.

    Examples
    --------
    >>> import numpy as np
    >>> inputs = keras.Input((2,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")(inputs))
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32")
    >>> evaluate_domains(model, (x, np.array([0, 1])), (x, np.array([1, 1])))
    {'source': 1.0, 'target': 0.5}
    """
    results = {}
    for name, data in {"source": source, "target": target, **others}.items():
        if hasattr(data, "arrays") and callable(data.arrays):
            x, y = data.arrays("test")
        else:
            x, y = _as_labelled(data, name)
        predictions = _predict_logits(model, x, batch_size).argmax(axis=-1)
        results[name] = float(np.mean(predictions == y.reshape(-1)))
    return results
