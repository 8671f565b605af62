"""Lesson 01's checks: the workflow order, a frozen source base + new head, and the trained head."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from checkrun import run

from tlcourse import models
from tlcourse.checks.lesson_01 import WORKFLOW


# --------------------------------------------------------------------------- 01.1
def test_01_1_correct(capsys):
    result = run("01.1", capsys, workflow=list(WORKFLOW))
    assert result.passed and result.line.startswith("✅ 01.1 workflow: pick a base")


def test_01_1_freezing_and_adding_the_head_may_swap(capsys):
    swapped = ["pick a base", "add a new head", "freeze the base", "train the head", "fine-tune", "evaluate"]
    assert run("01.1", capsys, workflow=swapped).passed
    assert run("01.1", capsys, workflow=tuple(step.upper() for step in WORKFLOW)).passed


def _moved(step, to):
    steps = [s for s in WORKFLOW if s != step]
    steps.insert(to, step)
    return steps


@pytest.mark.parametrize(
    ("workflow", "hint"),
    [
        (_moved("fine-tune", 3), "fine-tune only once the head is trained"),
        (_moved("evaluate", 4), "'evaluate' is not the last step"),
        (_moved("train the head", 1), "'train the head' comes before 'add a new head'"),
        (
            ["pick a base", "add a new head", "train the head", "freeze the base", "fine-tune", "evaluate"],
            "freeze first",
        ),
        (_moved("pick a base", 2), "'pick a base' comes first"),
        (
            ["pick a base", "freeze the base", "add a new head", "train head", "fine-tune", "evaluate"],
            "did you mean 'train the head'?",
        ),
        (list(WORKFLOW[:4]) + ["evaluate"], "missing: 'fine-tune'"),
        (list(WORKFLOW) + ["evaluate"], "'evaluate' appears 2 times"),
        (" → ".join(WORKFLOW), "is a str: make it a list"),
    ],
    ids=[
        "fine-tune-first",
        "evaluate-early",
        "train-before-add",
        "train-before-freeze",
        "base-not-first",
        "typo",
        "missing",
        "repeated",
        "string",
    ],
)
def test_01_1_wrong_answers(capsys, workflow, hint):
    result = run("01.1", capsys, workflow=workflow)
    assert result.status == "failed"
    assert hint in result.message


def test_01_1_not_attempted(capsys):
    assert run("01.1", capsys).status == "not_attempted"


# --------------------------------------------------------------------------- 01.2
@pytest.fixture(scope="module")
def resnet():
    """One frozen ResNet50 (random weights: the check needs the network, not ImageNet's weights)."""
    base = keras.applications.ResNet50(input_shape=(128, 128, 3), include_top=False, weights=None)
    base.trainable = False
    return base


def resnet_classifier(
    base, *, scale=keras.applications.resnet50.preprocess_input, pool=None, activation=None
):
    inputs = keras.Input((128, 128, 3))
    grid = base(scale(inputs) if scale else inputs)
    features = (pool or keras.layers.GlobalAveragePooling2D())(grid)
    return keras.Model(inputs, keras.layers.Dense(5, activation=activation, name="head")(features))


def test_01_2_correct(capsys, resnet):
    result = run("01.2", capsys, classifier=resnet_classifier(resnet))
    assert result.line == (
        "✅ 01.2 classifier: raw RGB → ResNet50's own preprocessing → the frozen ResNet50 → pooled 2,048 features "
        "→ a trainable Dense head → 5 logits"
    )
    # The older way, with the base's layers in the outer graph (input_tensor=), and max pooling pass too.
    inputs = keras.Input((128, 128, 3))
    flat = keras.applications.ResNet50(
        include_top=False, weights=None, input_tensor=keras.applications.resnet50.preprocess_input(inputs)
    )
    for layer in flat.layers:
        layer.trainable = False
    pooled = keras.layers.GlobalMaxPooling2D()(flat.output)
    assert run("01.2", capsys, classifier=keras.Model(inputs, keras.layers.Dense(5)(pooled))).passed


def _unfrozen():
    base = keras.applications.ResNet50(input_shape=(128, 128, 3), include_top=False, weights=None)
    return resnet_classifier(base)


def _with_top():
    whole = keras.applications.ResNet50(input_shape=(128, 128, 3), weights=None)  # 1000 ImageNet scores
    whole.trainable = False
    inputs = keras.Input((128, 128, 3))
    scores = whole(keras.applications.resnet50.preprocess_input(inputs))
    return keras.Model(inputs, keras.layers.Dense(5)(scores))


def _packaged():
    base = models.backbone("resnet50", weights=None, input_shape=(128, 128, 3))
    return keras.Sequential([base, keras.layers.Dense(5)])


def _mobilenet():
    base = keras.applications.MobileNetV2(input_shape=(128, 128, 3), include_top=False, weights=None)
    base.trainable = False
    return resnet_classifier(base, scale=keras.applications.mobilenet_v2.preprocess_input)


@pytest.mark.parametrize(
    ("make_answer", "hint"),
    [
        (lambda base: resnet_classifier(base, scale=lambda x: x / 127.5 - 1), "MobileNetV2's preprocessing"),
        (lambda base: resnet_classifier(base, scale=None), "is fed the raw [0, 255] pixels"),
        (lambda base: resnet_classifier(base, scale=keras.layers.Rescaling(1 / 255)), "scaled to [0, 1]"),
        (
            lambda base: resnet_classifier(base, scale=lambda x: x - np.float32([123.68, 116.779, 103.939])),
            "not flipped to BGR",
        ),
        (lambda base: resnet_classifier(base, pool=keras.layers.Flatten()), "put GlobalAveragePooling2D()"),
        (lambda base: resnet_classifier(base, activation="softmax"), "activation='softmax'"),
        (lambda base: _unfrozen(), "should be frozen but still have trainable weights"),
        (lambda base: _with_top(), "still has its 1000-class top"),
        (lambda base: _packaged(), "uses the base or the preprocessing of tlcourse.models"),
        (lambda base: _mobilenet(), "has no ResNet50 inside"),
    ],
    ids=[
        "mobilenet-scaling",
        "no-scaling",
        "zero-one",
        "not-bgr",
        "flatten",
        "softmax",
        "base-not-frozen",
        "top-kept",
        "tlcourse-backbone",
        "other-base",
    ],
)
def test_01_2_wrong_answers(capsys, resnet, make_answer, hint):
    result = run("01.2", capsys, classifier=make_answer(resnet))
    assert result.status == "failed"
    assert hint in result.message


def test_01_2_not_attempted(capsys):
    assert run("01.2", capsys).status == "not_attempted"


def transfer_model(*, cut="gap", freeze=True, activation=None, classes=5, base_from=None):
    """An answer of 01.3 before training, and its variations; each call loads a fresh source model."""
    source = base_from or models.source_model(progress=False)
    if cut is None:  # keep the whole source, old classifier included
        base = source
    else:
        base = keras.Model(source.inputs, source.get_layer(cut).output, name="source_features")
    base.trainable = not freeze
    inputs = keras.Input((28, 28, 3))
    logits = keras.layers.Dense(classes, activation=activation, name="head")(base(inputs, training=False))
    return keras.Model(inputs, logits)


# --------------------------------------------------------------------------- 01.3
@pytest.fixture(scope="module")
def target_train():
    from tlcourse import data

    return data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=10).arrays("train")


def trained(target_train, *, freeze=True, loss=None, epochs=30, learning_rate=3e-2, fit=True, **structure):
    keras.utils.set_random_seed(0)
    model = transfer_model(freeze=freeze, **structure)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    if fit:
        model.fit(*target_train, epochs=epochs, batch_size=50, verbose=0)
    return model


def _frozen_everything():
    model = transfer_model()
    model.trainable = False
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.optimizer.iterations.assign(1)  # as if fitted: the check looks at what is frozen next
    return model


def test_01_3_correct(capsys, target_train):
    result = run("01.3", capsys, model=trained(target_train))
    assert result.line == "✅ 01.3 model reaches ≥ 70% on the 200 held-out test images of classes 5–9"


@pytest.mark.parametrize(
    ("make_answer", "hint"),
    [
        (lambda data: transfer_model(), "`model` is not compiled yet"),
        (lambda data: trained(data, fit=False), "has not trained yet: call model.fit"),
        (
            lambda data: trained(data, loss="sparse_categorical_crossentropy", epochs=1),
            "loss='sparse_categorical_crossentropy', which expects probabilities",
        ),
        (
            lambda data: trained(data, freeze=False, epochs=2, learning_rate=1e-3),
            "no longer the source model's: they trained along with the head",
        ),
        (lambda data: trained(data, epochs=1, learning_rate=1e-4), "accuracy on held-out data is below 0.70"),
        (lambda data: transfer_model(activation="softmax"), "activation='softmax'"),
        (lambda data: transfer_model(classes=10), "outputs 10 numbers per image, the task asks for 5"),
        (lambda data: trained(data, cut=None, epochs=1), "still contains the source's own classifier"),
        (
            lambda data: trained(data, base_from=models.small_cnn((28, 28, 3), 5), epochs=1),
            "do not hold the pretrained source weights",
        ),
        (lambda data: _frozen_everything(), "'head' of `model` should be trainable"),
    ],
    ids=[
        "not-compiled",
        "not-fitted",
        "loss-expects-probabilities",
        "base-trained-too",
        "too-little-training",
        "softmax",
        "ten-classes",
        "old-classifier-kept",
        "random-base",
        "head-frozen",
    ],
)
def test_01_3_wrong_answers(capsys, target_train, make_answer, hint):
    result = run("01.3", capsys, model=make_answer(target_train))
    assert result.status == "failed"
    assert hint in result.message
