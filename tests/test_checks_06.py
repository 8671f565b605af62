"""Lesson 06's checks: the correct answer passes, typical wrong answers get their specific hint."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from checkrun import run

from tlcourse.checks import check


def failed_with(result, text):
    assert result.status == "failed", result.line
    assert text in result.message, result.message


# --------------------------------------------------------------------------- 06.1 gradient reversal
def reversal_layer(scale):
    """A layer class whose backward pass multiplies by scale(lambda_)."""

    class Layer(keras.layers.Layer):
        def __init__(self, lambda_=1.0, **kwargs):
            super().__init__(**kwargs)
            self.lambda_ = lambda_

        def call(self, x):
            @tf.custom_gradient
            def op(x):
                return tf.identity(x), lambda upstream: scale(self.lambda_) * upstream

            return op(x)

    return Layer


def test_06_1_correct(capsys):
    assert run("06.1", capsys, GradientReversal=reversal_layer(lambda lam: -lam)).passed


def test_06_1_wrong_answers(capsys):
    failed_with(run("06.1", capsys, GradientReversal=reversal_layer(lambda lam: lam)), "does not reverse")
    failed_with(run("06.1", capsys, GradientReversal=reversal_layer(lambda lam: -1.0)), "expected λ = 0.5")

    class Doubles(keras.layers.Layer):
        def __init__(self, lambda_=1.0, **kwargs):
            super().__init__(**kwargs)

        def call(self, x):
            return 2.0 * x

    failed_with(run("06.1", capsys, GradientReversal=Doubles), "changes its input")

    class NoLambda(keras.layers.Layer):
        def call(self, x):
            return x

    failed_with(run("06.1", capsys, GradientReversal=NoLambda), "accept lambda_")
    failed_with(run("06.1", capsys, GradientReversal=lambda x: x), "should be a class")


# --------------------------------------------------------------------------- 06.2 CORAL loss
def coral(*, centre=True, square=True, normalise=True):
    def loss(source, target):
        def covariance(x):
            x = np.asarray(x, dtype="float64")
            c = x - x.mean(axis=0) if centre else x
            return c.T @ c / (len(x) - 1)

        gap = covariance(source) - covariance(target)
        total = np.sum(gap**2) if square else np.sqrt(np.sum(gap**2))
        d = np.shape(source)[1]
        return total / (4 * d * d) if normalise else total

    return loss


def test_06_2_correct(capsys):
    assert run("06.2", capsys, coral_loss=coral()).passed


def test_06_2_wrong_answers(capsys):
    failed_with(run("06.2", capsys, coral_loss=coral(normalise=False)), "4·d² times too large")
    failed_with(run("06.2", capsys, coral_loss=coral(square=False)), "forgot to square")
    failed_with(run("06.2", capsys, coral_loss=coral(centre=False)), "does not centre")
    failed_with(run("06.2", capsys, coral_loss=lambda s, t: None), "returned None")
    failed_with(run("06.2", capsys, coral_loss=lambda s, t: np.ones(3)), "one number")


# --------------------------------------------------------------------------- 06.3 AdaBN
@pytest.fixture(scope="module")
def bn_setup():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(),
            keras.layers.Dense(4),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.Dense(3),
        ],
        name="source_model",
    )
    rng = np.random.default_rng(0)
    model(rng.normal(size=(64, 6)).astype("float32"), training=True)  # some source statistics
    x_target = rng.normal(2.0, 3.0, size=(200, 6)).astype("float32")
    return model, x_target


def by_hand(model, x_target, *, batch_size=None, momentum=None, layers=None):
    """AdaBN as the lesson writes it: batches in training mode, momentum = seen / (seen + batch).

    ``momentum`` fixes the momentum instead (a wrong answer); ``layers`` adapts only the first ones.
    """
    adapted = keras.models.clone_model(model)
    adapted.set_weights(model.get_weights())
    bns = [layer for layer in adapted.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in bns[layers:] if layers else []:
        layer.trainable = False  # left out of the adaptation
    batch_size = batch_size or len(x_target)
    seen = 0
    for start in range(0, len(x_target), batch_size):
        batch = x_target[start : start + batch_size]
        for layer in bns:
            layer.momentum = seen / (seen + len(batch)) if momentum is None else momentum
        adapted(batch, training=True)
        seen += len(batch)
    return adapted


def test_06_3_correct(capsys, bn_setup):
    model, x_target = bn_setup
    for batch_size in (None, 64):  # one batch, or batch by batch
        adapted = by_hand(model, x_target, batch_size=batch_size)
        assert run("06.3", capsys, adapted=adapted, source_model=model, x_target=x_target).passed


def test_06_3_reference_leaves_the_source_model_alone(capsys, bn_setup):
    model, x_target = bn_setup
    before = [weight.copy() for weight in model.get_weights()]
    momentum = [
        layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    run("06.3", capsys, adapted=by_hand(model, x_target), source_model=model, x_target=x_target)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert momentum == [
        layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]


def test_06_3_wrong_answers(capsys, bn_setup):
    model, x_target = bn_setup
    failed_with(
        run("06.3", capsys, adapted=model, source_model=model, x_target=x_target), "is `source_model`"
    )
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    failed_with(
        run("06.3", capsys, adapted=copy, source_model=model, x_target=x_target), "still holds the source"
    )
    failed_with(
        run(
            "06.3",
            capsys,
            adapted=by_hand(model, x_target, momentum=0.9),
            source_model=model,
            x_target=x_target,
        ),
        "does not hold the target's statistics",
    )
    last_batch_only = by_hand(model, x_target, batch_size=64, momentum=0.0)
    failed_with(
        run("06.3", capsys, adapted=last_batch_only, source_model=model, x_target=x_target),
        "keeps only the last batch",
    )
    failed_with(
        run(
            "06.3", capsys, adapted=by_hand(model, x_target, layers=1), source_model=model, x_target=x_target
        ),
        "layer 2",
    )
    failed_with(run("06.3", capsys, adapted="model", source_model=model, x_target=x_target), "adapted")


# --------------------------------------------------------------------------- 06.4 pseudo-labels
def softmax(logits):
    logits = np.asarray(logits, dtype="float64")
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def right(logits, threshold):
    p = softmax(logits)
    mask = p.max(axis=1) >= threshold
    return mask, p.argmax(axis=1)[mask]


def test_06_4_correct(capsys):
    assert run("06.4", capsys, confident_pseudo_labels=right).passed


def test_06_4_wrong_answers(capsys):
    def raw_logits(logits, threshold):
        logits = np.asarray(logits)
        mask = logits.max(axis=1) >= threshold
        return mask, logits.argmax(axis=1)[mask]

    def keeps_all(logits, threshold):
        return np.ones(len(logits), bool), np.asarray(logits).argmax(axis=1)

    def unmasked_labels(logits, threshold):
        mask, _ = right(logits, threshold)
        return mask, softmax(logits).argmax(axis=1)

    def wrong_labels(logits, threshold):
        mask, labels = right(logits, threshold)
        return mask, labels + 1

    failed_with(run("06.4", capsys, confident_pseudo_labels=raw_logits), "raw logits")
    failed_with(run("06.4", capsys, confident_pseudo_labels=keeps_all), "keeps every example")
    failed_with(run("06.4", capsys, confident_pseudo_labels=unmasked_labels), "only the kept")
    failed_with(run("06.4", capsys, confident_pseudo_labels=wrong_labels), "arg-max")
    failed_with(run("06.4", capsys, confident_pseudo_labels=lambda logits, t: None), "returned None")


def test_stubs_are_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError()

    assert run("06.2", capsys, coral_loss=stub).status == "not_attempted"
    assert run("06.4", capsys, confident_pseudo_labels=stub).status == "not_attempted"
    assert check("06.3", namespace={}).status == "not_attempted"
    capsys.readouterr()


def test_the_package_ships_no_answer_of_these_exercises():
    """The answers to 06.1-06.4 are written by the student (and in lesson 06), never shipped by tlcourse."""
    import importlib
    import pkgutil

    import tlcourse

    answers = {"GradientReversal", "coral_loss", "adabn", "pseudo_label", "confident_pseudo_labels"}
    for module_info in pkgutil.walk_packages(tlcourse.__path__, "tlcourse."):
        if module_info.name.startswith("tlcourse.checks"):
            continue  # the checks hold private references to compare answers with
        module = importlib.import_module(module_info.name)
        assert not answers & set(vars(module)), f"{module_info.name} ships {answers & set(vars(module))}"
    from tlcourse.checks import lesson_06

    source = inspect.getsource(lesson_06)  # no hint sends the student to a helper, no check calls one
    assert "tlcourse.adapt" not in source and "import adapt" not in source
