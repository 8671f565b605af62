"""The checks: one stable line each, specific hints for typical wrong answers, never an exception."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from checkrun import run

from tlcourse import checks
from tlcourse.checks import CheckFailed, check, verify


def dense_model(*layers, input_shape=(32, 32, 3)):
    return keras.Sequential([keras.Input(input_shape), *layers])


# --------------------------------------------------------------------------- the mechanism
def test_missing_answer_is_not_attempted(capsys):
    result = check("00.1", namespace={})
    assert result.status == "not_attempted"
    assert capsys.readouterr().out == "⏳ 00.1 not attempted yet\n"


def test_answers_are_looked_up_in_the_callers_globals(capsys):
    namespace = {"model": dense_model(keras.layers.Flatten(), keras.layers.Dense(10))}
    exec('result = check("00.1")', {"check": check, **namespace}, namespace)
    assert namespace["result"].passed
    assert capsys.readouterr().out.startswith("✅ 00.1 ")


def test_stub_raising_not_implemented_is_not_attempted(capsys):
    def count_trainable_params(model):
        raise NotImplementedError()

    assert run("00.2", capsys, count_trainable_params=count_trainable_params).status == "not_attempted"


def test_an_exception_in_the_answer_becomes_a_hint(capsys):
    def count_trainable_params(model):
        return model.layers[7]

    result = run("00.2", capsys, count_trainable_params=count_trainable_params)
    assert result.status == "failed"
    assert "your answer raised IndexError" in result.message


def test_unknown_check_id_fails_without_raising(capsys):
    result = run("42.1", capsys)
    assert result.status == "failed" and "not a known check" in result.message
    assert check("hello", namespace={}).status == "failed"
    assert capsys.readouterr().out == "❌ hello is not a check id (use the form '00.1')\n"


def test_what_the_answer_prints_stays_out_of_the_line(capsys):
    def count_trainable_params(model):
        print("debugging...")
        return verify.count_params(model.trainable_weights)

    assert run("00.2", capsys, count_trainable_params=count_trainable_params).passed


def test_under_nbgrader_a_failed_check_raises(capsys, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="⏳ 00.1"):
        check("00.1", namespace={})
    assert check("00.1", model=dense_model(keras.layers.Flatten(), keras.layers.Dense(10))).passed


def test_result_is_not_displayed_twice_in_a_notebook():
    result = checks.CheckResult("00.1", "passed", "fine")
    assert result._ipython_display_() is None and str(result) == "✅ 00.1 fine"


# --------------------------------------------------------------------------- 00.1
def test_00_1_correct(capsys):
    model = dense_model(
        keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)
    )
    result = run("00.1", capsys, model=model)
    assert result.line == "✅ 00.1 model maps 32×32×3 images to 10 logits"


@pytest.mark.parametrize(
    ("make_answer", "hint"),
    [
        (
            lambda: dense_model(keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")),
            "softmax",
        ),
        (
            lambda: dense_model(keras.layers.Flatten(), keras.layers.Dense(10), keras.layers.Softmax()),
            "Softmax",
        ),
        (lambda: dense_model(keras.layers.Flatten(), keras.layers.Dense(1)), "outputs 1 numbers per image"),
        (lambda: dense_model(keras.layers.Dense(10)), "add Flatten() or GlobalAveragePooling2D()"),
        (
            lambda: dense_model(keras.layers.Flatten(), keras.layers.Dense(10), input_shape=(28, 28, 1)),
            "takes inputs of shape 28×28×1",
        ),
        (lambda: keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)]), "no input shape yet"),
        (lambda: [keras.layers.Flatten(), keras.layers.Dense(10)], "wrap them in keras.Sequential"),
        (lambda: keras.Sequential, "is the class Sequential"),
        (lambda: None, "is None"),
    ],
    ids=[
        "softmax-activation",
        "softmax-layer",
        "one-output",
        "no-flatten",
        "wrong-input",
        "unbuilt",
        "list",
        "class",
        "none",
    ],
)
def test_00_1_wrong_answers(capsys, make_answer, hint):
    result = run("00.1", capsys, model=make_answer())
    assert result.status == "failed"
    assert hint in result.message


# --------------------------------------------------------------------------- 00.2
def test_00_2_correct(capsys):
    def count_trainable_params(model):
        return int(sum(np.prod(w.shape) for w in model.trainable_weights))

    assert run("00.2", capsys, count_trainable_params=count_trainable_params).passed


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda model: model.count_params(), "counts all"),
        (lambda model: len(model.trainable_weights), "the number of weight tensors"),
        (
            lambda model: verify.count_params(w for w in model.trainable_weights if "kernel" in w.path),
            "misses the biases",
        ),
        (lambda model: None, "forget `return`"),
        (lambda model: [w.shape for w in model.trainable_weights], "returned a list"),
        (lambda model: 12, "returned 12"),
        (3, "should be a function"),
    ],
    ids=["all-params", "tensor-count", "kernels-only", "no-return", "list", "constant", "not-callable"],
)
def test_00_2_wrong_answers(capsys, answer, hint):
    result = run("00.2", capsys, count_trainable_params=answer)
    assert result.status == "failed"
    assert hint in result.message


# --------------------------------------------------------------------------- 00.3
def _transfer(*, preprocess="rescale", frozen=True, pool="avg", activation=None, base=None):
    """A model for 00.3 built the lesson's way, with one thing changed."""
    if base is None:
        base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
    base.trainable = not frozen
    inputs = keras.Input((96, 96, 3))
    scale = {"rescale": keras.layers.Rescaling(1 / 127.5, offset=-1), "unit": keras.layers.Rescaling(1 / 255)}
    x = scale[preprocess](inputs) if preprocess in scale else inputs
    x = base(x, training=False)
    pooling = {"avg": keras.layers.GlobalAveragePooling2D(), "max": keras.layers.GlobalMaxPooling2D()}
    x = pooling.get(pool, keras.layers.Flatten())(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation=activation)(x))


def _flat_with_preprocess_input():
    inputs = keras.Input((96, 96, 3))
    x = keras.applications.mobilenet_v2.preprocess_input(inputs)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_tensor=x, pooling="avg")
    for layer in base.layers:
        layer.trainable = False
    return keras.Model(inputs, keras.layers.Dense(3)(base.output))


@pytest.mark.parametrize("build", [_transfer, _flat_with_preprocess_input], ids=["lesson", "flat"])
def test_00_3_correct(capsys, build):
    result = run("00.3", capsys, transfer_model=build())
    assert result.passed, result.message
    assert "frozen MobileNetV2, preprocessing inside" in result.message


def _packaged():
    from tlcourse import models

    base = models.backbone("mobilenet_v2", weights=None, input_shape=(96, 96, 3))
    return keras.Sequential([keras.Input((96, 96, 3)), base, keras.layers.Dense(3)])


@pytest.mark.parametrize(
    ("build", "hint"),
    [
        (lambda: _transfer(frozen=False), "the base is not frozen"),
        (lambda: _transfer(preprocess=None), "raw [0, 255] pixels"),
        (lambda: _transfer(preprocess="unit"), "trained on [-1, 1]"),
        (lambda: _transfer(pool="flatten"), "GlobalAveragePooling2D"),
        (lambda: _transfer(pool="max"), "computes something else"),
        (lambda: _transfer(activation="softmax"), "softmax"),
        (_packaged, "tlcourse.models.backbone"),
        (lambda: keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3)), "include_top=False"),
        (
            lambda: _transfer(
                base=keras.applications.MobileNetV3Small(
                    include_top=False, weights=None, input_shape=(96, 96, 3)
                )
            ),
            "no MobileNetV2 base",
        ),  # fmt: skip
        (
            lambda: dense_model(keras.layers.Flatten(), keras.layers.Dense(3), input_shape=(96, 96, 3)),
            "no MobileNetV2",
        ),
        (lambda: None, "is None"),
    ],
    ids=[
        "unfrozen",
        "no-preprocessing",
        "unit-range",
        "flatten",
        "max-pool",
        "softmax",
        "tlcourse",
        "top",
        "mobilenet-v3",
        "no-base",
        "none",
    ],  # fmt: skip
)
def test_00_3_wrong_answers(capsys, build, hint):
    result = run("00.3", capsys, transfer_model=build())
    assert result.status == "failed"
    assert hint in result.message, result.message


# --------------------------------------------------------------------------- reusable verifiers
def _base_and_head():
    base = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, name="conv"), keras.layers.BatchNormalization(name="bn")],
        name="base",
    )
    model = keras.Sequential([keras.Input((6,)), base, keras.layers.Dense(3, name="head")], name="clf")
    return base, model


def test_expect_trainable_exactly_as_expected():
    base, model = _base_and_head()
    base.trainable = False
    verify.expect_trainable(model, trainable=["head"])
    with pytest.raises(CheckFailed, match="'head' of `model` should be frozen"):
        verify.expect_trainable(model, trainable=[])
    base.trainable = True
    with pytest.raises(CheckFailed, match="'conv', 'bn' of `model` should be frozen"):
        verify.expect_trainable(model, trainable=["head"])
    model.get_layer("head").trainable = False
    with pytest.raises(CheckFailed, match="'head' of `model` should be trainable but are frozen"):
        verify.expect_trainable(model, trainable=["head", "base"])
    with pytest.raises(CheckFailed, match="no layer named tail"):
        verify.expect_trainable(model, trainable=["tail"])


def test_expect_batchnorm_frozen():
    base, model = _base_and_head()
    with pytest.raises(CheckFailed, match="1 of 1 BatchNormalization layers .* trainable"):
        verify.expect_batchnorm_frozen(model)
    base.get_layer("bn").trainable = False
    assert verify.expect_batchnorm_frozen(model) == 1


def test_expect_preprocessing():
    plain = dense_model(keras.layers.Flatten(), keras.layers.Dense(2))
    with pytest.raises(CheckFailed, match="no preprocessing layer"):
        verify.expect_preprocessing(plain)
    inner = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1)], name="pre"
    )
    assert verify.expect_preprocessing(dense_model(inner, keras.layers.Flatten())) == [inner.layers[0].name]


def test_expect_from_logits():
    model = dense_model(keras.layers.Flatten(), keras.layers.Dense(3))
    with pytest.raises(CheckFailed, match="not compiled"):
        verify.expect_from_logits(model)
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(CheckFailed, match=r"SparseCategoricalCrossentropy\(from_logits=True\)"):
        verify.expect_from_logits(model)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy())
    with pytest.raises(CheckFailed, match="from_logits=False"):
        verify.expect_from_logits(model)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    verify.expect_from_logits(model)


def test_expect_logits_catches_a_softmax_hidden_in_a_custom_layer():
    class Squash(keras.layers.Layer):
        def call(self, x):
            return keras.ops.softmax(x)

    model = dense_model(keras.layers.Flatten(), keras.layers.Dense(4), Squash())
    outputs = verify.expect_output_shape(model, (32, 32, 3), 4)
    with pytest.raises(CheckFailed, match="probabilities"):
        verify.expect_logits(model, outputs)


def test_expect_accuracy_on_arrays_and_datasets():
    # A fixed linear model whose logits are the inputs: accuracy is known exactly.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
    x = np.array([[2.0, 0.0], [0.0, 2.0], [3.0, 1.0], [1.0, 3.0]], dtype="float32")
    y = np.array([0, 1, 0, 0])
    assert verify.expect_accuracy(model, x, y, at_least=0.75) == pytest.approx(0.75)
    with pytest.raises(CheckFailed, match="below 0.80"):
        verify.expect_accuracy(model, x, y, at_least=0.8)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    assert verify.expect_accuracy(model, dataset, at_least=0.5) == pytest.approx(0.75)


class _Reversal(keras.layers.Layer):
    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        @tf.custom_gradient
        def reverse(inputs):
            return tf.identity(inputs), lambda upstream: -self.factor * upstream

        return reverse(x)


def test_expect_gradient_reversal():
    assert verify.expect_gradient_reversal(_Reversal(0.5), factor=0.5) == pytest.approx(0.5)
    with pytest.raises(CheckFailed, match="does not reverse"):
        verify.expect_gradient_reversal(keras.layers.Identity())
    with pytest.raises(CheckFailed, match="λ = 2, expected λ = 1"):
        verify.expect_gradient_reversal(_Reversal(2.0), factor=1.0)
    with pytest.raises(CheckFailed, match="changes its input"):
        verify.expect_gradient_reversal(keras.layers.Lambda(lambda x: -x))
