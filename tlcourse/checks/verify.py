"""Reusable verifiers for the checks: each measures one property of an answer and raises
:class:`~tlcourse.checks.core.CheckFailed` with a specific hint when it is wrong."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tlcourse import models
from tlcourse.checks.core import CheckFailed
from tlcourse.introspect import count_params, is_batchnorm, walk_layers


def shape_text(shape) -> str:
    return "×".join(str(d) for d in shape)


def expect_model(model: Any, *, name: str = "model"):
    """Fail unless ``model`` is a Keras model instance (returns it)."""

    if model is None:
        raise CheckFailed(f"`{name}` is None: assign the model you built to `{name}`")
    if isinstance(model, type) and issubclass(model, keras.Model):
        raise CheckFailed(
            f"`{name}` is the class {model.__name__}, not a model: call it, e.g. {model.__name__}([...])"
        )
    if isinstance(model, (list, tuple)):
        raise CheckFailed(
            f"`{name}` is a {type(model).__name__} of layers: wrap them in keras.Sequential([...])"
        )
    if not isinstance(model, keras.Model):
        raise CheckFailed(f"`{name}` is a {type(model).__name__}, not a keras.Model")
    return model


def expect_input_shape(model, shape: tuple[int, ...], *, name: str = "model") -> tuple:
    """Fail unless the model declares inputs of ``shape`` (batch dimension excluded)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise CheckFailed(
            f"`{name}` has no input shape yet: start it with keras.Input(shape={tuple(shape)}) "
            "so Keras builds it at once"
        )
    actual = tuple(inputs[0].shape[1:])
    if actual != tuple(shape):
        raise CheckFailed(
            f"`{name}` takes inputs of shape {shape_text(actual)}, the task asks for {shape_text(shape)}: "
            f"use keras.Input(shape={tuple(shape)})"
        )
    return actual


def call_model(model, x):

    output = model(x, training=False)
    if isinstance(output, (list, tuple, dict)):
        raise CheckFailed("the model has several outputs; this exercise expects one")
    return np.asarray(output)


def call_model_in_chunks(model, x, batch_size: int):
    """:func:`call_model` over an array, ``batch_size`` inputs per call, the outputs joined."""
    return np.concatenate([call_model(model, x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def expect_output_shape(model, input_shape: tuple[int, ...], outputs: int, *, name: str = "model"):
    """Call the model on a batch of two inputs and fail unless it returns ``(2, outputs)``.

    Returns the outputs (numpy) for further checks.
    """

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, *input_shape)).astype("float32")
    y = call_model(model, x)
    if y.ndim != 2:
        raise CheckFailed(
            f"`{name}` outputs shape {shape_text(('batch', *y.shape[1:]))} per batch: add Flatten() or "
            "GlobalAveragePooling2D() before the last Dense so each image gets one vector"
        )
    if y.shape[1] != outputs:
        raise CheckFailed(
            f"`{name}` outputs {y.shape[1]} numbers per image, the task asks for {outputs}: "
            f"the last layer should be Dense({outputs})"
        )
    return y


SQUASHING = {"softmax", "sigmoid", "log_softmax"}


def activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", None) or type(activation).__name__.lower()


def expect_logits(model, outputs=None, *, name: str = "model") -> None:
    """Fail if the model ends in softmax/sigmoid: the course keeps logits and uses ``from_logits=True``.

    ``outputs`` (numpy, optional) are outputs the model produced; rows that are all in [0, 1] and
    sum to 1 betray a softmax hidden anywhere.
    """

    layers = [layer for layer in walk_layers(model) if not getattr(layer, "layers", None)]
    if layers:
        last = layers[-1]
        kind = type(last).__name__
        activation = activation_name(last)
        if (
            kind in {"Softmax"}
            or activation in SQUASHING
            or (kind == "Activation" and activation in SQUASHING)
        ):
            what = (
                "a Softmax layer"
                if kind == "Softmax"
                else f"activation='{activation}' in layer '{last.name}'"
            )
            raise CheckFailed(
                f"`{name}` ends with {what}: remove it so the model outputs logits "
                "(the loss then uses from_logits=True)"
            )
    if outputs is not None and outputs.ndim == 2 and outputs.shape[1] > 1:
        sums = outputs.sum(axis=1)
        if np.all(outputs >= 0) and np.all(outputs <= 1) and np.allclose(sums, 1.0, atol=1e-3):
            raise CheckFailed(
                f"`{name}`'s outputs are probabilities (each row sums to 1): remove the softmax so it "
                "outputs logits"
            )


def trainable_by_layer(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for layer in walk_layers(model):
        if getattr(layer, "layers", None):
            continue  # a nested model: its leaves are counted
        own = count_params(layer.trainable_weights)
        if own:
            counts[layer.name] = own
    return counts


def expect_all_frozen(model, *, name: str = "model") -> None:
    """Fail unless the model has no trainable weight; the hint names the layers that still learn."""
    still = trainable_by_layer(model)
    if not still and not model.trainable_weights:
        return
    bn_names = {layer.name for layer in walk_layers(model) if is_batchnorm(layer)}
    if still and set(still) <= bn_names:
        raise CheckFailed(
            f"only BatchNormalization layer(s) {', '.join(repr(n) for n in sorted(still))} of `{name}` are "
            "still trainable: they have weights too (gamma, beta); set `model.trainable = False` to freeze "
            "every layer"
        )
    names = ", ".join(f"'{n}' ({count:,})" for n, count in list(still.items())[:3])
    more = f" and {len(still) - 3} more" if len(still) > 3 else ""
    raise CheckFailed(
        f"{count_params(model.trainable_weights):,} parameters of `{name}` are still trainable, in layer(s) "
        f"{names}{more}: set `model.trainable = False` to freeze every layer, nested ones included"
    )


def expect_trainable(model, *, trainable: Iterable[str], name: str = "model") -> None:
    """Fail unless exactly the layers named in ``trainable`` have trainable weights (all others frozen).

    Nested layers count by their own names; naming a nested model makes all its layers count.
    """
    wanted = set(trainable)
    expected_leaves = set()
    for layer in walk_layers(model):
        if layer.name in wanted:
            expected_leaves.add(layer.name)
            expected_leaves.update(inner.name for inner in walk_layers(layer))
    unknown = wanted - {layer.name for layer in walk_layers(model)}
    if unknown:
        raise CheckFailed(
            f"`{name}` has no layer named {', '.join(sorted(unknown))}: did you rename the head?"
        )
    actual = trainable_by_layer(model)
    should_be_frozen = [layer_name for layer_name in actual if layer_name not in expected_leaves]
    if should_be_frozen:
        raise CheckFailed(
            f"layer(s) {', '.join(repr(n) for n in should_be_frozen[:3])} of `{name}` should be frozen but "
            f"still have trainable weights: set their `trainable = False` (then compile again)"
        )
    # BatchNormalization may stay frozen inside a trainable part (that is how fine-tuning keeps it).
    frozen = [
        layer.name
        for layer in walk_layers(model)
        if layer.name in expected_leaves
        and not getattr(layer, "layers", None)
        and layer.weights
        and not is_batchnorm(layer)
        and layer.name not in actual
    ]
    if frozen:
        raise CheckFailed(
            f"layer(s) {', '.join(repr(n) for n in frozen[:3])} of `{name}` should be trainable but are frozen: "
            "set `trainable = True` on them (then compile again)"
        )


def expect_batchnorm_frozen(model, *, name: str = "model") -> int:
    """Fail unless every BatchNormalization layer (nested ones too) has ``trainable = False``.

    In Keras 3, ``training=False`` alone does not keep BN in inference mode during fine-tuning:
    the layers must be frozen (keras-team/keras#20285). Returns the number of BN layers.
    """
    bn_layers = [layer for layer in walk_layers(model) if is_batchnorm(layer)]
    unfrozen = [layer.name for layer in bn_layers if layer.trainable]
    if unfrozen:
        raise CheckFailed(
            f"{len(unfrozen)} of {len(bn_layers)} BatchNormalization layers in `{name}` are trainable "
            f"(e.g. '{unfrozen[0]}'): set `layer.trainable = False` on every BatchNormalization layer so "
            "fine-tuning does not wreck their statistics"
        )
    return len(bn_layers)


_PREPROCESSING_TYPES = {"Rescaling", "Normalization", "Resizing", "CenterCrop"}


def expect_preprocessing(model, *, name: str = "model") -> list[str]:
    """Fail unless the model contains a preprocessing step (Rescaling, Normalization, a base's own
    preprocessing layer, ...). Returns the names of what was found."""
    found = [
        layer.name
        for layer in walk_layers(model)
        if type(layer).__name__ in _PREPROCESSING_TYPES
        or "preprocess" in layer.name.lower()
        or "ImageConverter" in type(layer).__name__
    ]
    if not found:
        raise CheckFailed(
            f"`{name}` has no preprocessing layer: put the base's preprocessing (e.g. keras.layers.Rescaling "
            "or the base's own preprocess step) inside the model so raw [0, 255] images work"
        )
    return found


def expect_from_logits(model_or_loss, *, name: str = "model") -> None:
    """Fail unless the (compiled model's) loss is a cross-entropy with ``from_logits=True``."""
    loss = getattr(model_or_loss, "loss", model_or_loss)
    if loss is None:
        raise CheckFailed(f"`{name}` is not compiled: call {name}.compile(loss=..., optimizer=...)")
    if isinstance(loss, str):
        raise CheckFailed(
            f"`{name}` was compiled with loss='{loss}', which expects probabilities: use "
            f"keras.losses.{_loss_class(loss)}(from_logits=True) because the model outputs logits"
        )
    config = {}
    if hasattr(loss, "get_config"):
        config = loss.get_config()
    if not config.get("from_logits", False):
        kind = type(loss).__name__
        raise CheckFailed(
            f"`{name}`'s loss {kind} has from_logits=False: pass from_logits=True because the model "
            "outputs logits"
        )


def _loss_class(text: str) -> str:
    return "".join(part.capitalize() for part in text.split("_"))


def expect_accuracy(model, x, y=None, *, at_least: float, name: str = "model", batch_size: int = 64) -> float:
    """Fail unless the model's accuracy on held-out data is ≥ ``at_least``; returns the accuracy.

    ``x`` is an array of inputs (with labels ``y``) or a ``tf.data.Dataset`` of (inputs, labels)
    batches. One output column means binary logits (positive when > 0).
    """

    if y is None:
        xs, ys = [], []
        for batch_x, batch_y in x:
            xs.append(call_model(model, batch_x))
            ys.append(np.asarray(batch_y))
        predictions, labels = np.concatenate(xs), np.concatenate(ys)
    else:
        predictions = call_model_in_chunks(model, x, batch_size)
        labels = np.asarray(y)
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        predicted = predictions.argmax(axis=1)
    else:
        predicted = (predictions.reshape(-1) > 0).astype(labels.dtype)
    accuracy = float(np.mean(predicted == labels.reshape(-1)))
    if accuracy < at_least:
        raise CheckFailed(
            f"`{name}`'s accuracy on held-out data is below {at_least:.2f}: check the preprocessing, what is "
            "frozen, the learning rate and the number of epochs"
        )
    return accuracy


def expect_gradient_reversal(layer, *, factor: float | None = None, name: str = "layer") -> float:
    """Fail unless ``layer`` is the identity forward and multiplies gradients by ``-factor`` backward.

    Returns the measured factor (λ). ``factor=None`` accepts any positive λ.
    """

    x = tf.constant(np.linspace(-1.0, 1.0, 6, dtype="float32").reshape(2, 3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    if y is None:
        raise CheckFailed(f"`{name}` returned None: return the input from call()")
    if not np.allclose(np.asarray(y), np.asarray(x), atol=1e-6):
        raise CheckFailed(f"`{name}` changes its input in the forward pass: it must return x unchanged")
    gradient = tape.gradient(y, x)
    if gradient is None:
        raise CheckFailed(f"`{name}` blocks the gradient: use tf.custom_gradient and return -λ · upstream")
    ratio = np.asarray(gradient).reshape(-1)
    if not np.allclose(ratio, ratio[0], atol=1e-6):
        raise CheckFailed(
            f"`{name}` scales gradients unevenly: multiply the upstream gradient by one constant"
        )
    measured = -float(ratio[0])
    if measured <= 0:
        raise CheckFailed(
            f"`{name}` does not reverse the gradient (it multiplies it by {-measured:+.2g}): return -λ · upstream"
        )
    if factor is not None and not np.isclose(measured, factor, rtol=1e-4):
        raise CheckFailed(f"`{name}` reverses the gradient with λ = {measured:.3g}, expected λ = {factor:g}")
    return measured


# --------------------------------------------------------------------------- shared by several lessons
def ints_like(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(value)
    if hasattr(value, "ndim") and getattr(value, "ndim", 1) == 0 and hasattr(value, "item"):
        return ints_like(value.item())
    return None


SOURCE_CONVOLUTIONS = ("conv1", "conv2", "conv3")


def as_arrays(weights) -> list:

    return [np.asarray(keras.ops.convert_to_numpy(weight)) for weight in weights]


def holds(arrays: list, reference) -> bool:

    return any(array.shape == reference.shape and np.array_equal(array, reference) for array in arrays)


_SOURCE_WEIGHTS: dict[str, list] = {}


def source_weights() -> dict[str, list]:
    """The pretrained source model's weights by layer name, read once from the cached .keras file."""
    if not _SOURCE_WEIGHTS:
        source = models.source_model(progress=False)
        _SOURCE_WEIGHTS.update({layer.name: layer.get_weights() for layer in source.layers if layer.weights})
    return _SOURCE_WEIGHTS


def head_layer(model):
    """The last layer with weights (nested models' layers included): the head of a classifier."""
    leaves = [layer for layer in walk_layers(model) if not getattr(layer, "layers", None) and layer.weights]
    if not leaves:
        raise CheckFailed("`model` has no layer with weights: end it with a Dense layer, the new head")
    return leaves[-1]
