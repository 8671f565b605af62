"""Checks of lesson 00."""

from __future__ import annotations

import keras

from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    count_params,
    expect_all_frozen,
    expect_input_shape,
    expect_logits,
    expect_model,
    expect_output_shape,
    ints_like,
)


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


@register("00.3")
def check_00_3(freeze) -> str:
    """A function freezing a model in place, tried on a model with a nested base and BatchNorm."""

    if not callable(freeze):
        raise CheckFailed("`freeze` should be a function: def freeze(model): ...")
    base = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, name="conv_like"),
            keras.layers.BatchNormalization(name="bn"),
        ],
        name="base",
    )
    model = keras.Sequential([keras.Input((6,)), base, keras.layers.Dense(3, name="head")], name="model")
    before = [w.numpy().copy() for w in model.weights]
    returned = freeze(model)
    if returned is None:
        raise CheckFailed("freeze returned None: end it with `return model` so it can be used inline")
    if returned is not model:
        raise CheckFailed(
            "freeze returned a different model: freeze the model it was given (model.trainable = False) "
            "and return that same model"
        )
    expect_all_frozen(model, name="model")
    after = [w.numpy() for w in model.weights]
    if len(before) != len(after) or any((a != b).any() for a, b in zip(before, after, strict=False)):
        raise CheckFailed(
            "freeze changed the weights' values: freezing only stops training, keep the weights"
        )
    return "freeze leaves no trainable weight (nested base and BatchNorm included)"
