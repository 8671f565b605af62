"""Checks of lesson 00."""

from __future__ import annotations

import keras
import numpy as np
from keras.applications.mobilenet_v2 import preprocess_input

from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    call_model,
    count_params,
    expect_input_shape,
    expect_logits,
    expect_model,
    expect_output_shape,
    head_layer,
    ints_like,
)
from tlcourse.introspect import recall, walk_layers
from tlcourse.models import Preprocess


def _reference_models() -> list:
    """Small models whose parameter counts tell the typical mistakes apart (fresh each call)."""

    plain = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(3)], name="plain")
    with_bn = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(2, name="head"),
        ],
        name="with_batchnorm",
    )
    base = keras.Sequential([keras.Input((10,)), keras.layers.Dense(7, name="base_dense")], name="base")
    base.trainable = False
    partly_frozen = keras.Sequential(
        [keras.Input((10,)), base, keras.layers.Dense(3, name="head")], name="partly_frozen"
    )
    return [plain, with_bn, partly_frozen]


@register("00.1")
def check_00_1(model) -> str:
    """A model for 32×32×3 images with 10 logits out."""
    expect_model(model, name="model")
    expect_input_shape(model, (32, 32, 3), name="model")
    outputs = expect_output_shape(model, (32, 32, 3), 10, name="model")
    expect_logits(model, outputs, name="model")
    return "model maps 32×32×3 images to 10 logits"


@register("00.2")
def check_00_2(count_trainable_params) -> str:
    """A function counting a model's trainable parameters, tried on models where the mistakes differ."""
    if not callable(count_trainable_params):
        raise CheckFailed(
            "`count_trainable_params` should be a function: def count_trainable_params(model): ..."
        )
    for reference in _reference_models():
        expected = count_params(reference.trainable_weights)
        returned = count_trainable_params(reference)
        if returned is None:
            raise CheckFailed("count_trainable_params returned None: did you forget `return`?")
        value = ints_like(returned)
        if value is None:
            raise CheckFailed(
                f"count_trainable_params returned a {type(returned).__name__}; it should return one whole number"
            )
        if value == expected:
            continue
        where = f"for the model '{reference.name}' ({expected:,} trainable parameters)"
        if value == reference.count_params():
            raise CheckFailed(
                f"count_trainable_params counts all {value:,} parameters {where}: leave out the non-trainable "
                "ones (frozen layers, BatchNorm's moving mean/variance) by counting model.trainable_weights"
            )
        if value == len(reference.trainable_weights):
            raise CheckFailed(
                f"count_trainable_params returned {value}, the number of weight tensors, {where}: add up the "
                "sizes of the tensors (the product of each tensor's shape)"
            )
        kernels_only = count_params(w for w in reference.trainable_weights if "kernel" in w.path)
        if value == kernels_only:
            raise CheckFailed(
                f"count_trainable_params returned {value:,} {where}: it misses the biases (and BatchNorm's "
                "gamma/beta); count every tensor in model.trainable_weights"
            )
        raise CheckFailed(
            f"count_trainable_params returned {value:,} {where}: add up the product of the shapes of "
            "model.trainable_weights"
        )
    return "count_trainable_params counts trainable parameters correctly (3 models, frozen parts included)"


_SIZE_00_3, _CLASSES_00_3 = 96, 3


def _pretrained_base_00_3(model, reference):
    """The layers of ``model`` that play MobileNetV2's, by name, or a CheckFailed naming what is off."""
    leaves = {layer.name: layer for layer in walk_layers(model) if not getattr(layer, "layers", None)}
    if any(isinstance(layer, Preprocess) for layer in leaves.values()) or any(
        recall(layer, "info") is not None for layer in walk_layers(model, include_self=True)
    ):
        raise CheckFailed(
            "transfer_model uses the base that tlcourse.models.backbone builds: this task is the plain Keras "
            "behind it, keras.applications.MobileNetV2(include_top=False, ...) with a head of your own"
        )
    dense = [layer for layer in leaves.values() if isinstance(layer, keras.layers.Dense)]
    if any(layer.units == 1000 for layer in dense):
        raise CheckFailed(
            "transfer_model still has ImageNet's 1,000-class head: build the base with include_top=False"
        )
    wanted = [layer for layer in reference.layers if layer.weights]
    missing = [layer.name for layer in wanted if layer.name not in leaves]
    if missing or any(
        [w.shape for w in leaves[layer.name].weights] != [w.shape for w in layer.weights] for layer in wanted
    ):
        raise CheckFailed(
            "transfer_model has no MobileNetV2 base for 96×96 images: use "
            "keras.applications.MobileNetV2(include_top=False, weights=WEIGHTS, input_shape=(96, 96, 3))"
        )
    return {layer.name: leaves[layer.name] for layer in wanted}


@register("00.3")
def check_00_3(transfer_model) -> str:
    """A frozen keras.applications MobileNetV2 with its preprocessing inside, pooled, and a new Dense head
    with 3 logits; compared with a reference that computes the same with the student's own weights."""
    model = expect_model(transfer_model, name="transfer_model")
    expect_input_shape(model, (_SIZE_00_3, _SIZE_00_3, 3), name="transfer_model")
    reference = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(_SIZE_00_3, _SIZE_00_3, 3)
    )
    base = _pretrained_base_00_3(model, reference)
    learning = [name for name, layer in base.items() if layer.trainable_weights]
    if learning:
        raise CheckFailed(
            f"the base is not frozen ({len(learning)} of its layers would train, e.g. '{learning[0]}'): set "
            "base.trainable = False"
        )
    outputs = expect_output_shape(model, (_SIZE_00_3, _SIZE_00_3, 3), _CLASSES_00_3, name="transfer_model")
    expect_logits(model, outputs, name="transfer_model")
    head = head_layer(model)
    if not isinstance(head, keras.layers.Dense) or not head.trainable_weights:
        raise CheckFailed("transfer_model should end in a new, trainable Dense(3) layer: the head")
    if head.kernel.shape[0] != 1280:
        raise CheckFailed(
            f"the head gets {head.kernel.shape[0]:,} numbers per image, MobileNetV2's pooled features are "
            "1,280: add keras.layers.GlobalAveragePooling2D() between the base and the Dense layer"
        )
    if count_params(model.trainable_weights) != count_params(head.trainable_weights):
        raise CheckFailed("only the new head should be trainable: freeze every other layer with weights")
    for layer in reference.layers:
        if layer.weights:
            layer.set_weights(base[layer.name].get_weights())
    images = np.random.default_rng(1).uniform(0, 255, (2, _SIZE_00_3, _SIZE_00_3, 3)).astype("float32")
    outputs = call_model(model, images)
    if _same(outputs, _head_on(reference, head, preprocess_input(images.copy()))):
        return "transfer_model: a frozen MobileNetV2, preprocessing inside, pooled features and 3 logits"
    if _same(outputs, _head_on(reference, head, images)):
        raise CheckFailed(
            "transfer_model gives the base raw [0, 255] pixels: put MobileNetV2's preprocessing inside "
            "(keras.layers.Rescaling(1 / 127.5, offset=-1), or preprocess_input on the inputs)"
        )
    if _same(outputs, _head_on(reference, head, images / 255)):
        raise CheckFailed(
            "transfer_model scales pixels to [0, 1], but MobileNetV2 was trained on [-1, 1]: use "
            "Rescaling(1 / 127.5, offset=-1), which is what its preprocess_input does"
        )
    raise CheckFailed(
        "transfer_model computes something else than preprocessing → MobileNetV2 → average pooling → Dense: "
        "keep exactly those steps, in that order (the lesson's section 5)"
    )


def _head_on(reference, head, x):
    """``head`` on the average-pooled feature maps of ``reference`` (a MobileNetV2) for inputs ``x``."""
    features = np.asarray(reference(x, training=False)).mean(axis=(1, 2))
    return np.asarray(head(features))


def _same(outputs, expected) -> bool:
    """Equal up to float error, relative to their size: a MobileNetV2 with random weights (offline) gives
    features of order 1e-11, which an absolute tolerance would not tell apart."""
    return bool(np.abs(outputs - expected).max() <= 1e-3 * np.abs(expected).max())
