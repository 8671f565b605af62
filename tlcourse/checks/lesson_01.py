"""Checks of lesson 01."""

from __future__ import annotations

import difflib

import keras
import numpy as np

from tlcourse import data
from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    SOURCE_CONVOLUTIONS,
    as_arrays,
    expect_accuracy,
    expect_from_logits,
    expect_input_shape,
    expect_logits,
    expect_model,
    expect_output_shape,
    expect_trainable,
    head_layer,
    holds,
    source_weights,
)
from tlcourse.introspect import functional_graph, nodes_in_order, recall, walk_layers

WORKFLOW = ("pick a base", "freeze the base", "add a new head", "train the head", "fine-tune", "evaluate")
"""The transfer learning workflow of lesson 01, in order ("freeze" and "add a new head" may swap)."""

TARGET_CLASSES_01 = (5, 6, 7, 8, 9)
AT_LEAST_01 = 0.70
RESNET_INPUT = (128, 128, 3)
RESNET_FEATURES = 2048  # the channels of ResNet50's last block, one pooled vector per image

# What a base might be fed instead of ResNet50's own preprocessing, and what to say about it.
_WRONG_SCALINGS = {
    "the raw [0, 255] pixels": lambda x: x,
    "pixels scaled to [0, 1]": lambda x: x / 255.0,
    "pixels scaled to [-1, 1], MobileNetV2's preprocessing": lambda x: x / 127.5 - 1.0,
    "RGB pixels minus the ImageNet mean, but not flipped to BGR": lambda x: (
        x - np.float32([123.68, 116.779, 103.939])
    ),
}


def _expect_source_features(model) -> None:
    """Fail unless ``model`` holds the source's convolutions, unchanged, and not its old classifier."""
    reference = source_weights()
    arrays = as_arrays(model.weights)
    if holds(arrays, reference["logits"][0]):
        raise CheckFailed(
            "`model` still contains the source's own classifier (its layer 'logits', scores for the 5 old "
            "classes): cut the source before it, at the layer 'gap' or 'features', and put the new head there"
        )
    if all(holds(arrays, reference[name][0]) for name in SOURCE_CONVOLUTIONS):
        return
    if any(layer.trainable_weights for layer in walk_layers(model) if layer.name in SOURCE_CONVOLUTIONS):
        raise CheckFailed(
            "the convolution weights of `model` are no longer the source model's: they trained along with the "
            "head. Rebuild the model, set base.trainable = False, then compile and fit"
        )
    raise CheckFailed(
        "the convolution layers of `model` do not hold the pretrained source weights: build the base from "
        "`source` (e.g. keras.Model(source.inputs, source.get_layer('gap').output)), not from a new network"
    )


@register("01.1")
def check_01_1(workflow) -> str:
    """The six workflow steps in an order that works."""

    if isinstance(workflow, str) or not isinstance(workflow, (list, tuple)):
        raise CheckFailed(
            f"`workflow` is a {type(workflow).__name__}: make it a list of the six step names from STEPS, in order"
        )
    steps = [step.strip().lower() if isinstance(step, str) else step for step in workflow]
    for step in steps:
        if step not in WORKFLOW:
            close = difflib.get_close_matches(str(step), WORKFLOW, n=1)
            suggestion = f": did you mean {close[0]!r}?" if close else ": copy the names from STEPS"
            raise CheckFailed(f"{step!r} is not one of the steps{suggestion}")
    repeated = [step for step in WORKFLOW if steps.count(step) > 1]
    if repeated:
        raise CheckFailed(f"{repeated[0]!r} appears {steps.count(repeated[0])} times: each step comes once")
    missing = [step for step in WORKFLOW if step not in steps]
    if missing:
        raise CheckFailed(
            f"`workflow` has {len(steps)} of the 6 steps; missing: {', '.join(repr(m) for m in missing)}"
        )
    at = {step: index for index, step in enumerate(steps)}
    if at["pick a base"] != 0:
        raise CheckFailed(
            f"`workflow` starts with {steps[0]!r}: everything starts from a network pretrained on a source "
            "task, so 'pick a base' comes first"
        )
    if at["train the head"] < at["add a new head"]:
        raise CheckFailed(
            "'train the head' comes before 'add a new head': a head must exist before it can train"
        )
    if at["train the head"] < at["freeze the base"]:
        raise CheckFailed(
            "'train the head' comes before 'freeze the base': freeze first, or your few labels train (and "
            "damage) the whole pretrained network"
        )
    if at["fine-tune"] < at["train the head"]:
        raise CheckFailed(
            "'fine-tune' comes before 'train the head': fine-tune only once the head is trained, because a "
            "random head sends large gradients into the base and wrecks its pretrained features"
        )
    if at["evaluate"] != len(WORKFLOW) - 1:
        raise CheckFailed(
            "'evaluate' is not the last step: evaluate on held-out data once all training (fine-tuning "
            "included) is done"
        )
    return (
        "workflow: pick a base → freeze the base and add a new head → train the head → fine-tune → evaluate"
    )


def _resnet_input(classifier):
    """A model from ``classifier``'s input to what enters its ResNet50 (nested, or flat via input_tensor=)."""
    layers = walk_layers(classifier)
    if not any(layer.name == "conv1_conv" for layer in layers):
        raise CheckFailed(
            "`classifier` has no ResNet50 inside: make the base with keras.applications.ResNet50(include_top=False, "
            "...) and call it on the scaled images"
        )
    if any(layer.name == "predictions" for layer in layers):
        raise CheckFailed(
            "the ResNet50 in `classifier` still has its 1000-class top ('predictions'): build it with "
            "include_top=False, so that your Dense(5) is the only classifier"
        )
    if any(recall(layer, "info") is not None for layer in layers) or any(
        type(layer).__name__ == "Preprocess" for layer in layers
    ):
        raise CheckFailed(
            "`classifier` uses the base or the preprocessing of tlcourse.models: build them yourself with "
            "keras.applications.ResNet50 and keras.applications.resnet50.preprocess_input"
        )
    nested = [
        layer
        for layer in classifier.layers
        if any(inner.name == "conv1_conv" for inner in walk_layers(layer))
    ]
    if nested:
        node = next(n for n in nodes_in_order(functional_graph(classifier)) if n.operation is nested[0])
        return keras.Model(classifier.inputs[0], node.input_tensors[0])
    return keras.Model(classifier.inputs[0], classifier.get_layer("conv1_pad").input)


def _expect_resnet_preprocessing(classifier) -> None:
    """Fail unless what enters the ResNet50 is ``resnet50.preprocess_input`` of the raw pixels."""
    x = np.random.default_rng(1).uniform(0, 255, size=(2, *RESNET_INPUT)).astype("float32")
    fed = np.asarray(_resnet_input(classifier)(x))
    expected = np.asarray(keras.applications.resnet50.preprocess_input(x.copy()))
    if fed.shape == expected.shape and np.allclose(fed, expected, atol=1e-2):
        return
    for what, scaling in _WRONG_SCALINGS.items():
        if fed.shape == expected.shape and np.allclose(fed, scaling(x), atol=1e-2):
            raise CheckFailed(
                f"the ResNet50 in `classifier` is fed {what}: ResNet50 was trained on BGR pixels minus the "
                "ImageNet mean, which keras.applications.resnet50.preprocess_input computes"
            )
    raise CheckFailed(
        "what enters the ResNet50 in `classifier` is not its preprocessing: put "
        "keras.applications.resnet50.preprocess_input between the input and the base, and nothing else"
    )


@register("01.2")
def check_01_2(classifier) -> str:
    """keras.applications' ResNet50, frozen, fed its own preprocessing, pooled, with a new 5-logit head."""
    expect_model(classifier, name="classifier")
    expect_input_shape(classifier, RESNET_INPUT, name="classifier")
    outputs = expect_output_shape(classifier, RESNET_INPUT, len(TARGET_CLASSES_01), name="classifier")
    expect_logits(classifier, outputs, name="classifier")
    _resnet_input(classifier)
    head = head_layer(classifier)
    width = int(head.weights[0].shape[0])
    if width != RESNET_FEATURES:
        raise CheckFailed(
            f"the head of `classifier` reads {width:,} numbers per image, ResNet50's grid pooled gives "
            f"{RESNET_FEATURES:,}: put GlobalAveragePooling2D() between the base and the Dense layer"
        )
    expect_trainable(classifier, trainable=[head.name], name="classifier")
    _expect_resnet_preprocessing(classifier)
    return (
        "classifier: raw RGB → ResNet50's own preprocessing → the frozen ResNet50 → pooled "
        f"{RESNET_FEATURES:,} features → a trainable Dense head → 5 logits"
    )


@register("01.3")
def check_01_3(model) -> str:
    """The source's frozen features + a new head, trained on 10 labels per class, reach the threshold on the
    held-out test split."""
    expect_model(model, name="model")
    expect_input_shape(model, (28, 28, 3), name="model")
    expect_logits(
        model, expect_output_shape(model, (28, 28, 3), len(TARGET_CLASSES_01), name="model"), name="model"
    )
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise CheckFailed(
            "`model` is not compiled yet: compile it (Adam, SparseCategoricalCrossentropy(from_logits=True)) "
            "and fit it on the 50 labelled training images"
        )
    expect_from_logits(model, name="model")
    if int(model.optimizer.iterations.numpy()) == 0:
        raise CheckFailed(
            "`model` is compiled but has not trained yet: call model.fit(x_train, y_train, ...)"
        )
    _expect_source_features(model)
    expect_trainable(model, trainable=[head_layer(model).name], name="model")

    x_test, y_test = data.load("fashion_mnist", classes=list(TARGET_CLASSES_01)).arrays("test")
    expect_accuracy(model, x_test, y_test, at_least=AT_LEAST_01, name="model")
    return f"model reaches ≥ {AT_LEAST_01:.0%} on the {len(y_test)} held-out test images of classes 5–9"
