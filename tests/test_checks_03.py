"""Lesson 03's checks: frozen base + pooled head, the loss for logits, a head on cached features."""

from __future__ import annotations

import keras
import pytest
from checkrun import run

from tlcourse import train
from tlcourse.checks.lesson_03 import _lesson_03_data

# --------------------------------------------------------------------------- 03.1
SHAPE = (32, 32, 3)


def tiny_conv_base():
    """A stand-in for EfficientNet's convolutional part: preprocessing inside, BatchNorm, a feature map."""
    inputs = keras.Input(SHAPE, name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="top_activation")(x)
    return keras.Model(inputs, x, name="conv_base")


def head_model(
    *, freeze=True, pooling="gap", activation=None, classes=4, rescale=False, hidden=0, freeze_head=False
):
    """The answer of 03.1 and its typical variations, as (model, conv_base)."""
    keras.utils.set_random_seed(0)
    conv_base = tiny_conv_base()
    conv_base.trainable = not freeze
    inputs = keras.Input(SHAPE)
    x = keras.layers.Rescaling(1 / 255)(inputs) if rescale else inputs
    x = conv_base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x) if pooling == "gap" else keras.layers.Flatten()(x)
    if hidden:
        x = keras.layers.Dense(hidden, activation="relu")(x)
    head = keras.layers.Dense(classes, activation=activation, name="head")
    model = keras.Model(inputs, head(x))
    if freeze_head:
        head.trainable = False
    return model, conv_base


def test_03_1_correct(capsys):
    model, conv_base = head_model()
    result = run("03.1", capsys, model=model, conv_base=conv_base, num_classes=4)
    assert result.line == (
        "✅ 03.1 model: raw pixels → frozen base (preprocessing inside) → global average pooling → "
        "Dense head (36 parameters) → 4 logits"
    )


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"pooling": "flatten"}, "flattens the 15×15×8 feature map"),
        ({"freeze": False}, "the base is not frozen: 240 of its parameters (layers 'stem_conv', 'stem_bn')"),
        ({"activation": "softmax"}, "activation='softmax'"),
        ({"rescale": True}, "do not rescale or preprocess the images before the base"),
        ({"hidden": 16}, "trains 2 layers after the base"),
        ({"freeze_head": True}, "'head' of `model` should be trainable"),
        ({"classes": 3}, "outputs 3 numbers per image, the task asks for 4"),
    ],
    ids=["flatten", "base-not-frozen", "softmax", "preprocessed-twice", "mlp-head", "head-frozen", "classes"],
)
def test_03_1_wrong_answers(capsys, options, hint):
    model, conv_base = head_model(**options)
    result = run("03.1", capsys, model=model, conv_base=conv_base, num_classes=4)
    assert result.status == "failed"
    assert hint in result.message


# --------------------------------------------------------------------------- 03.2
def compiled(loss):
    model, _ = head_model()
    if loss is not None:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=loss, metrics=["accuracy"])
    return model


def test_03_2_correct(capsys):
    result = run("03.2", capsys, model=compiled(keras.losses.SparseCategoricalCrossentropy(from_logits=True)))
    assert result.line == (
        "✅ 03.2 model is compiled with SparseCategoricalCrossentropy(from_logits=True), matching its logits"
    )


@pytest.mark.parametrize(
    ("make_loss", "hint"),
    [
        (lambda: None, "`model` is not compiled"),
        (
            lambda: "sparse_categorical_crossentropy",
            "loss='sparse_categorical_crossentropy', which expects probabilities",
        ),
        (
            lambda: keras.losses.SparseCategoricalCrossentropy(),
            "has from_logits=False: pass from_logits=True",
        ),
        (lambda: keras.losses.CategoricalCrossentropy(from_logits=True), "expects one-hot label rows"),
        (
            lambda: keras.losses.BinaryCrossentropy(from_logits=True),
            "BinaryCrossentropy is for one logit per image",
        ),
        (lambda: keras.losses.sparse_categorical_crossentropy, "compiled with the function"),
        (lambda: keras.losses.MeanSquaredError(), "MeanSquaredError is not a classification loss"),
    ],
    ids=["not-compiled", "string", "probabilities", "one-hot", "binary", "function", "mse"],
)
def test_03_2_wrong_answers(capsys, make_loss, hint):
    result = run("03.2", capsys, model=compiled(make_loss()))
    assert result.status == "failed"
    assert hint in result.message


# --------------------------------------------------------------------------- 03.3
@pytest.fixture(scope="module")
def pixels_base():
    """A cheap base for lesson 03's data: 8×8 average-pooled pixels (432 numbers per 96-px image)."""
    size = _lesson_03_data().image_shape[0]
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.AveragePooling2D(8),
            keras.layers.Flatten(),
        ],
        name="pooled_pixels",
    )


@pytest.fixture(scope="module")
def features(pixels_base):
    bundle = _lesson_03_data()
    return {
        split: train.extract_features(pixels_base, bundle, split=split, verbose=0)
        for split in ("train", "test")
    }


def by_hand(x, y, *, epochs=40, activation=None):
    """A Dense head built, compiled and trained in plain Keras, as the exercise asks."""
    keras.utils.set_random_seed(0)
    head = keras.Sequential(
        [keras.Input(x.shape[1:]), keras.layers.Dense(int(y.max()) + 1, activation=activation)]
    )
    head.compile(
        optimizer=keras.optimizers.Adam(learning_rate=3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=activation is None),
    )
    if epochs:
        head.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return head


def answer(split_features, **options):
    """(head, train_features, train_labels) trained by hand on one split's features."""
    x, y = split_features.features, split_features.labels
    return by_hand(x, y, **options), x, y


def test_03_3_correct(capsys, pixels_base, features):
    head, x, y = answer(features["train"])
    result = run("03.3", capsys, head=head, train_features=x, train_labels=y, base=pixels_base)
    assert result.line == "✅ 03.3 head reaches ≥ 70% on the cached features of the 400 held-out test images"


def shuffled(split_features):
    x, y = split_features.features, split_features.labels
    return by_hand(x, y[::-1]), x, y[::-1]  # labels in another order than the features


def helper_head(split_features):
    head, _ = train.fit_head(split_features, epochs=5, run_dir=False, verbose=0)
    return head, split_features.features, split_features.labels


@pytest.mark.parametrize(
    ("make_answer", "hint"),
    [
        (lambda f: (*answer(f["train"])[:1], f["train"], None), "come from tlcourse.train.extract_features"),
        (lambda f: helper_head(f["train"]), "comes from tlcourse.train.fit_head"),
        (lambda f: answer(f["test"]), "`train_features` are the test split's features"),
        (lambda f: answer(f["train"], activation="softmax"), "activation='softmax'"),
        (
            lambda f: (
                by_hand(f["train"].features[:, :100], f["train"].labels),
                *answer(f["train"], epochs=0)[1:],
            ),
            "`head` takes 100 inputs but the base gives 432 features",
        ),
        (lambda f: answer(f["train"], epochs=0), "below 70%"),
        (lambda f: shuffled(f["train"]), "keep each batch's labels with its features"),
        (lambda f: (*answer(f["train"], epochs=0)[:2], f["train"].labels[:10]), "of the same length"),
        (
            lambda f: (
                by_hand(f["train"].features, f["train"].labels % 2),
                *answer(f["train"], epochs=0)[1:],
            ),
            "has 10 classes",
        ),  # fmt: skip
    ],
    ids=[
        "helper-features",
        "helper-head",
        "trained-on-test",
        "softmax",
        "other-features",
        "untrained",
        "shuffled-labels",
        "lengths",
        "two-classes",
    ],  # fmt: skip
)
def test_03_3_wrong_answers(capsys, pixels_base, features, make_answer, hint):
    head, train_features, train_labels = make_answer(features)
    result = run(
        "03.3", capsys, head=head, train_features=train_features, train_labels=train_labels, base=pixels_base
    )
    assert result.status == "failed"
    assert hint in result.message, result.message
