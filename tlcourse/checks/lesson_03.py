"""Checks of lesson 03."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from tlcourse import data, env, train
from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    count_params,
    expect_batchnorm_frozen,
    expect_from_logits,
    expect_input_shape,
    expect_logits,
    expect_model,
    expect_output_shape,
    expect_preprocessing,
    expect_trainable,
    head_layer,
    shape_text,
    trainable_by_layer,
    walk_layers,
)
from tlcourse.introspect import recall

AT_LEAST_03 = 0.70


def _lesson_03_data():
    """The data of lesson 03, exactly as the notebooks load it."""

    return data.load("cats_vs_dogs", image_size=env.current().budget.image_size)


@register("03.1")
def check_03_1(model, conv_base, num_classes) -> str:
    """A frozen convolutional base, global average pooling and a trainable Dense head with logits."""

    expect_model(model, name="model")
    shape = tuple(conv_base.inputs[0].shape[1:])
    expect_input_shape(model, shape, name="model")
    if any(type(layer).__name__ == "Flatten" for layer in walk_layers(model)):
        grid = shape_text(conv_base.outputs[0].shape[1:])
        raise CheckFailed(
            f"`model` flattens the {grid} feature map: its head then needs a weight per position and channel; "
            "use keras.layers.GlobalAveragePooling2D() to get one number per channel"
        )
    outputs = expect_output_shape(model, shape, num_classes, name="model")
    expect_logits(model, outputs, name="model")
    in_base = {layer.name for layer in walk_layers(conv_base)} | {conv_base.name}
    trainable = trainable_by_layer(model)
    still = [name for name in trainable if name in in_base]
    if still:
        total = sum(trainable[name] for name in still)
        raise CheckFailed(
            f"the base is not frozen: {total:,} of its parameters (layers {', '.join(repr(n) for n in still[:3])}"
            f"{' …' if len(still) > 3 else ''}) would train. Set conv_base.trainable = False"
        )
    head = [name for name in trainable if name not in in_base]
    if len(head) > 1:
        raise CheckFailed(
            f"`model` trains {len(head)} layers after the base ({', '.join(repr(n) for n in head[:3])}): the task "
            "asks for one Dense layer as the head"
        )
    expect_trainable(model, trainable=[head_layer(model).name], name="model")
    expect_batchnorm_frozen(model, name="model")
    expect_preprocessing(model, name="model")
    # The logits must be head(GAP(base(raw pixels))): anything rescaling the pixels on the way shows here.
    x = np.random.default_rng(0).uniform(0, 255, size=(2, *shape)).astype("float32")
    with warnings.catch_warnings():  # Keras warns when a named input gets a bare tensor
        warnings.simplefilter("ignore")
        features = keras.ops.mean(conv_base(x, training=False), axis=(1, 2))
    expected = np.asarray(head_layer(model)(features))
    if not np.allclose(outputs, expected, rtol=1e-3, atol=1e-3 * (1 + float(np.abs(expected).max()))):
        raise CheckFailed(
            "`model`'s logits are not head(pooled base features) of the raw [0, 255] pixels: do not rescale or "
            "preprocess the images before the base, its matching preprocessing is inside it"
        )
    return (
        f"model: raw pixels → frozen base (preprocessing inside) → global average pooling → Dense head "
        f"({count_params(model.trainable_weights):,} parameters) → {num_classes} logits"
    )


@register("03.2")
def check_03_2(model) -> str:
    """The model compiled with a cross-entropy that knows it gets logits and integer labels."""
    expect_model(model, name="model")
    if not getattr(model, "compiled", False):
        raise CheckFailed(
            "`model` is not compiled: call model.compile(optimizer=..., loss=..., metrics=['accuracy'])"
        )
    loss = model.loss
    if not isinstance(loss, str) and loss is not None:
        kind = type(loss).__name__
        if kind == "function":
            raise CheckFailed(
                f"`model` was compiled with the function {getattr(loss, '__name__', 'loss')}: pass a loss object "
                "that takes options, keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
        if kind == "CategoricalCrossentropy":
            raise CheckFailed(
                "CategoricalCrossentropy expects one-hot label rows, but the labels are class ids (0, 1, 2, …): "
                "use keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
        if kind.startswith("Binary"):
            raise CheckFailed(
                f"{kind} is for one logit per image (yes/no); this model outputs one logit per class: use "
                "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
        if kind != "SparseCategoricalCrossentropy":
            raise CheckFailed(
                f"{kind} is not a classification loss for class-id labels: use "
                "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
    expect_from_logits(model, name="model")
    return "model is compiled with SparseCategoricalCrossentropy(from_logits=True), matching its logits"


@register("03.3")
def check_03_3(head, train_features, train_labels, base) -> str:
    """Features computed by hand (arrays, one per training image) and a Keras head trained on them reach the
    threshold on the held-out test split's features; the course's extract_features and fit_head are refused."""

    if isinstance(train_features, train.Features):
        raise CheckFailed(
            "`train_features` come from tlcourse.train.extract_features: compute them yourself, one pass of "
            "base.predict_on_batch over data.batches('train') (lesson 03, section 4)"
        )
    expect_model(head, name="head")
    if recall(head, "made_by") is not None:
        raise CheckFailed(
            f"`head` comes from {recall(head, 'made_by')}: build it with keras.Sequential, compile it and fit it "
            "on your arrays yourself"
        )
    train_x, train_y = np.asarray(train_features), np.asarray(train_labels)
    if train_x.ndim != 2 or train_y.ndim != 1 or len(train_x) != len(train_y):
        raise CheckFailed(
            f"`train_features` should be [images, features] and `train_labels` [images], of the same length; got "
            f"{train_x.shape} and {train_y.shape}: np.concatenate the per-batch arrays"
        )
    bundle = _lesson_03_data()
    test = train.extract_features(base, bundle, split="test", verbose=0)
    if train_x.shape == test.features.shape and np.allclose(train_x, test.features, atol=1e-4):
        raise CheckFailed(
            "`train_features` are the test split's features: use data.batches('train') and keep the test split "
            "for measuring"
        )
    if train_x.shape[1] != test.features.shape[1] or len(train_x) != bundle.sizes["train"]:
        raise CheckFailed(
            f"`train_features` are {train_x.shape}; `base` gives {test.features.shape[1]} features for each of the "
            f"{bundle.sizes['train']} training images: one pass of base.predict_on_batch over data.batches('train')"
        )
    width = head.inputs[0].shape[-1] if head.inputs else None
    if width is not None and int(width) != test.features.shape[1]:
        raise CheckFailed(
            f"`head` takes {int(width)} inputs but the base gives {test.features.shape[1]} features per image: "
            "build it on keras.Input(train_features.shape[1:])"
        )
    outputs = np.asarray(head(test.features[:2], training=False))
    if outputs.ndim != 2 or outputs.shape[1] != bundle.num_classes:
        raise CheckFailed(
            f"`head` outputs {outputs.shape[-1]} numbers per image but the data has {bundle.num_classes} "
            "classes: end it with Dense(num_classes)"
        )
    expect_logits(head, outputs, name="head")
    accuracy = float(np.mean(np.asarray(head.predict(test.features, verbose=0)).argmax(-1) == test.labels))
    if accuracy < AT_LEAST_03:
        raise CheckFailed(
            f"`head` gets {accuracy:.0%} of the held-out test images, below {AT_LEAST_03:.0%}: train longer or at a "
            "higher learning rate, and keep each batch's labels with its features (a second pass over a "
            "shuffled pipeline comes in another order)"
        )
    return f"head reaches ≥ {AT_LEAST_03:.0%} on the cached features of the {len(test)} held-out test images"
