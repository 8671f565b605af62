"""Lesson 08's checks: the group lookup table, a two-head model, its dict compile, and training it."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from checkrun import run

from tlcourse.checks import check

CORRECT_GROUPS = [0, 0, 0, 0, 0, 1, 0, 1, 2, 1]


# --------------------------------------------------------------------------- 08.1
def test_08_1_accepts_the_lookup_table(capsys):
    assert run("08.1", capsys, group_of_class=np.array(CORRECT_GROUPS)).passed


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (["clothing"] * 5 + ["footwear", "clothing", "footwear", "bag", "footwear"], "holds names"),
        (np.array(CORRECT_GROUPS[:9]), "one entry per class"),
        (np.array([0, 0, 0, 0, 0, 1, 0, 1, 1, 1]), "a bag is its own group"),
        (np.array([0, 0, 0, 0, 0, 0, 0, 1, 2, 1]), "Sandal (class 5) should be footwear"),
        (np.array([1, 1, 1, 1, 1, 2, 1, 2, 3, 2]), "values other than 0, 1 and 2"),
    ],
)
def test_08_1_wrong_tables_get_specific_hints(capsys, answer, hint):
    result = run("08.1", capsys, group_of_class=answer)
    assert result.status == "failed" and hint in result.message, result.message


def test_08_1_stub_is_not_attempted(capsys):
    assert check("08.1", namespace={}).status == "not_attempted"
    capsys.readouterr()


# --------------------------------------------------------------------------- 08.2 and 08.3
def make_builder(
    *, activation=None, outputs="dict", head_hidden=False, unfreeze=False, names=("class", "group")
):
    def build_multi_task(base):
        if unfreeze:
            base.trainable = True
        images = keras.Input(shape=base.inputs[0].shape[1:])
        shared = keras.layers.Dense(16, activation="relu", name="shared")(base(images, training=False))
        heads = []
        for name, units in zip(names, (10, 3), strict=True):
            x = (
                keras.layers.Dense(8, activation="relu", name=f"{name}_hidden")(shared)
                if head_hidden
                else shared
            )
            heads.append(keras.layers.Dense(units, activation=activation, name=name)(x))
        out = dict(zip(names, heads, strict=True)) if outputs == "dict" else heads
        return keras.Model(images, out)

    return build_multi_task


def test_08_2_accepts_a_shared_base_with_two_named_heads(capsys):
    result = run("08.2", capsys, build_multi_task=make_builder())
    assert result.passed, result.message
    assert "shared Dense(16)" in result.message


@pytest.mark.parametrize(
    ("builder", "hint"),
    [
        (make_builder(outputs="list"), "return a dict of named outputs"),
        (make_builder(names=("item", "department")), "name them exactly 'class' and 'group'"),
        (make_builder(activation="softmax"), "activation='softmax'"),
        (make_builder(head_hidden=True), "no hidden layer of its own"),
        (make_builder(unfreeze=True), "keep the base frozen"),
        (lambda base: None, "returned None"),
    ],
)
def test_08_2_typical_mistakes(capsys, builder, hint):
    result = run("08.2", capsys, build_multi_task=builder)
    assert result.status == "failed" and hint in result.message, result.message


def make_compiler(*, loss="dict", from_logits=True, weights="dict", metrics="dict", keys=("class", "group")):
    def compile_multi_task(model):
        losses = {k: keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits) for k in keys}
        if loss == "string":
            losses = {k: "sparse_categorical_crossentropy" for k in keys}
        elif loss == "single":
            losses = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        elif loss == "categorical":
            losses = {k: keras.losses.CategoricalCrossentropy(from_logits=True) for k in keys}
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=3e-3),
            loss=losses,
            loss_weights={k: 1.0 for k in keys} if weights == "dict" else None,
            metrics={k: ["accuracy"] for k in keys} if metrics == "dict" else ["accuracy"],
        )
        return model

    return compile_multi_task


def test_08_3_accepts_dicts_of_losses_weights_and_metrics(capsys):
    result = run("08.3", capsys, compile_multi_task=make_compiler())
    assert result.passed, result.message


@pytest.mark.parametrize(
    ("compiler", "hint"),
    [
        (make_compiler(loss="single"), "`loss` is not a dict"),
        (make_compiler(loss="string"), "expects probabilities"),
        (make_compiler(from_logits=False), "from_logits=False"),
        (make_compiler(loss="categorical"), "one-hot labels"),
        (make_compiler(weights=None), "no loss_weights"),
        (make_compiler(metrics="list"), "metrics should be a dict"),
        (lambda model: None, "returned None"),
    ],
)
def test_08_3_typical_mistakes(capsys, compiler, hint):
    result = run("08.3", capsys, compile_multi_task=compiler)
    assert result.status == "failed" and hint in result.message, result.message


# --------------------------------------------------------------------------- 08.4
@pytest.fixture(scope="module")
def fashion():
    import tlcourse

    data = tlcourse.data.load("fashion_mnist")
    source = tlcourse.models.source_model(progress=False)
    base = keras.Model(source.inputs, source.get_layer("gap").output, name="pretrained_base")
    base.trainable = False
    return data, base


def two_head_model(base, *, train_with=None, epochs=15, data=None):
    keras.utils.set_random_seed(0)
    model = make_compiler()(make_builder()(base))
    if train_with is not None:
        x, y = data.arrays("train")
        model.fit(
            x, {"class": y, "group": np.asarray(train_with)[y]}, epochs=epochs, batch_size=32, verbose=0
        )
    return model


def test_08_4_accepts_a_trained_model_and_explains_the_typical_mistakes(capsys, fashion):
    data, base = fashion
    trained = two_head_model(base, train_with=CORRECT_GROUPS, data=data)
    assert run("08.4", capsys, model=trained).passed

    untrained = run("08.4", capsys, model=two_head_model(base))
    assert untrained.status == "failed" and "'class' head's accuracy" in untrained.message

    wrong_groups = [0, 0, 0, 0, 0, 2, 0, 2, 1, 2]  # footwear and bag swapped
    swapped = run("08.4", capsys, model=two_head_model(base, train_with=wrong_groups, data=data, epochs=5))
    assert swapped.status == "failed" and "group_of_class (08.1)" in swapped.message

    single = keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    one_output = run("08.4", capsys, model=single)
    assert one_output.status == "failed" and "return a dict of named outputs" in one_output.message
