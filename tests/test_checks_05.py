"""Lesson 05's checks: preprocessing once, logits + from_logits, a frozen base, choosing on validation."""

from __future__ import annotations

import keras
import pytest
from checkrun import run


def tiny_base():
    """A stand-in for the source CNN's features: raw [0, 255] in, its own Rescaling inside."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(8, activation="relu", name="features")(x)
    return keras.Model(inputs, x, name="base")


# --------------------------------------------------------------------------- 05.1
def model_05_1(base, *, before=None, activation=None, classes=5, use_base=True):
    inputs = keras.Input((28, 28, 3))
    x = before(inputs) if before is not None else inputs
    x = base(x, training=False) if use_base else tiny_base()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation)(x))


def test_05_1_correct(capsys):
    base = tiny_base()
    result = run("05.1", capsys, fixed_model=model_05_1(base), base=base)
    assert result.line == (
        "✅ 05.1 fixed_model: raw [0, 255] pixels → base (which rescales them itself, once) → 5 logits"
    )


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"before": keras.layers.Rescaling(1 / 255)}, "divides them by 255 again (its layer 'rescale')"),
        ({"before": keras.layers.Rescaling(255.0)}, "the pixels are multiplied by 255 before the base"),
        ({"before": keras.layers.Rescaling(1 / 127.5, offset=-1)}, "are not head(base(raw pixels))"),
        ({"activation": "softmax"}, "activation='softmax'"),
        ({"classes": 10}, "outputs 10 numbers per image, the task asks for 5"),
        ({"use_base": False}, "`fixed_model` does not use `base`"),
    ],
    ids=["twice", "times-255", "other-scaling", "softmax", "classes", "other-base"],
)
def test_05_1_wrong_answers(capsys, options, hint):
    base = tiny_base()
    result = run("05.1", capsys, fixed_model=model_05_1(base, **options), base=base)
    assert result.status == "failed"
    assert hint in result.message


def test_05_1_broken_model_of_the_notebook_fails(capsys):
    base = tiny_base()
    broken = keras.Sequential(
        [keras.Input((28, 28, 3)), keras.layers.Rescaling(1 / 255), base, keras.layers.Dense(5)]
    )
    result = run("05.1", capsys, fixed_model=broken, base=base)
    assert "divides them by 255 again" in result.message


# --------------------------------------------------------------------------- 05.2
def head_model(loss, *, activation=None):
    model = keras.Sequential([keras.Input((128,)), keras.layers.Dense(5, activation=activation)])
    if loss is not None:
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def test_05_2_correct(capsys):
    result = run(
        "05.2", capsys, head_model=head_model(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    )
    assert result.line == (
        "✅ 05.2 head_model outputs logits and its loss is SparseCategoricalCrossentropy(from_logits=True)"
    )


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (
            lambda: head_model("sparse_categorical_crossentropy"),
            "loss='sparse_categorical_crossentropy', which",
        ),
        (lambda: head_model(keras.losses.SparseCategoricalCrossentropy()), "has from_logits=False"),
        (
            lambda: head_model(
                keras.losses.SparseCategoricalCrossentropy(from_logits=True), activation="softmax"
            ),
            "ends with activation='softmax'",
        ),
        (
            lambda: head_model("sparse_categorical_crossentropy", activation="softmax"),
            "remove it so the model outputs logits",
        ),
        (
            lambda: head_model(keras.losses.CategoricalCrossentropy(from_logits=True)),
            "CategoricalCrossentropy does not fit class-id labels",
        ),
        (lambda: head_model(keras.losses.sparse_categorical_crossentropy), "compiled with a loss function"),
        (lambda: head_model(None), "`head_model` is not compiled"),
    ],
    ids=[
        "string",
        "from-logits-false",
        "softmax-and-logits",
        "softmax-convention",
        "one-hot",
        "function",
        "none",
    ],
)
def test_05_2_wrong_answers(capsys, make, hint):
    result = run("05.2", capsys, head_model=make())
    assert result.status == "failed"
    assert hint in result.message


# --------------------------------------------------------------------------- 05.3
def classifier(*, fix="base", compile_it=True):
    base = tiny_base()
    inputs = keras.Input((28, 28, 3))
    model = keras.Model(inputs, keras.layers.Dense(5, name="head")(base(inputs, training=False)))
    if fix == "base":
        base.trainable = False
    elif fix == "all":
        model.trainable = False
    elif fix == "convolutions":
        base.get_layer("conv1").trainable = False
    elif fix == "head":
        model.get_layer("head").trainable = False
    if compile_it:
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_05_3_correct(capsys):
    result = run("05.3", capsys, classifier=classifier())
    assert (
        result.line == "✅ 05.3 only the head trains: 45 of 197 parameters are trainable, the base is frozen"
    )


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"fix": None}, "197 of 197 parameters of `classifier` are trainable: the whole base still trains"),
        (
            {"fix": "all"},
            "nothing in `classifier` is trainable (0 of 197 parameters): you froze the head too",
        ),
        ({"fix": "convolutions"}, "layer(s) 'features' of the base are still trainable"),
        ({"fix": "head"}, "the whole base still trains"),
        ({"compile_it": False}, "`classifier` is not compiled"),
    ],
    ids=["unfixed", "all-frozen", "partly-frozen", "head-frozen", "not-compiled"],
)
def test_05_3_wrong_answers(capsys, options, hint):
    result = run("05.3", capsys, classifier=classifier(**options))
    assert result.status == "failed"
    assert hint in result.message


# --------------------------------------------------------------------------- 05.4
def by_val(scores):
    chosen = max(scores, key=lambda name: scores[name]["val"])
    return chosen, scores[chosen]["test"]


def by_test(scores):
    chosen = max(scores, key=lambda name: scores[name]["test"])
    return chosen, scores[chosen]["test"]


def by_mean(scores):
    chosen = max(scores, key=lambda name: scores[name]["val"] + scores[name]["test"])
    return chosen, scores[chosen]["test"]


def reports_val(scores):
    chosen = max(scores, key=lambda name: scores[name]["val"])
    return chosen, scores[chosen]["val"]


def reports_best_test(scores):
    chosen = max(scores, key=lambda name: scores[name]["val"])
    return chosen, max(row["test"] for row in scores.values())


def lowest(scores):
    chosen = min(scores, key=lambda name: scores[name]["val"])
    return chosen, scores[chosen]["test"]


def test_05_4_correct(capsys):
    result = run("05.4", capsys, pick_best=by_val)
    assert result.line == (
        "✅ 05.4 pick_best chooses on validation and reports the chosen configuration's test accuracy once"
    )


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (by_test, "chose 'lr=1e-2', the best on the TEST set"),
        (by_mean, "the best on the TEST set"),
        (reports_val, "reports the validation accuracy of its choice"),
        (reports_best_test, "pick_best reports 0.88, not the test accuracy of 'lr=1e-3'"),
        (lowest, "the WORST on validation"),
        (
            lambda scores: max(scores, key=lambda name: scores[name]["val"]),
            "return a pair (name, test accuracy)",
        ),
        (lambda scores: ("best", 0.9), "'best', which is not one of the configurations"),
        (None, "`pick_best` should be a function"),
    ],
    ids=["by-test", "by-mean", "reports-val", "reports-best-test", "lowest", "name-only", "unknown", "none"],
)
def test_05_4_wrong_answers(capsys, answer, hint):
    result = run("05.4", capsys, pick_best=answer)
    assert result.status == "failed"
    assert hint in result.message
