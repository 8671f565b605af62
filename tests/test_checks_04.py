"""Lesson 04's checks: unfreeze the top N with BatchNorm frozen, a warm-up + cosine schedule, two stages on a
base with BatchNorm, a progressive recipe."""

from __future__ import annotations

import math

import keras
import pytest
from checkrun import run

from tlcourse import data, models, train


def _is_bn(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


# --------------------------------------------------------------------------- 04.1
def correct(base, n):
    base.trainable = True
    weighted = [layer for layer in base.layers if layer.weights and not _is_bn(layer)]
    top = weighted[len(weighted) - n :]
    for layer in base.layers:
        layer.trainable = layer in top
    return base


def bn_left_trainable(base, n):
    base.trainable = True
    weighted = [layer for layer in base.layers if layer.weights and not _is_bn(layer)]
    for layer in weighted[: len(weighted) - n]:
        layer.trainable = False


def whole_base(base, n):
    base.trainable = True


def nothing(base, n):
    weighted = [layer for layer in base.layers if layer.weights and not _is_bn(layer)]
    for layer in weighted[len(weighted) - n :]:
        layer.trainable = True  # the base itself stays frozen


def one_too_many(base, n):
    correct(base, n + 1)


def counted_batchnorm(base, n):
    base.trainable = True
    weighted = [layer for layer in base.layers if layer.weights]
    top = weighted[len(weighted) - n :]
    for layer in base.layers:
        layer.trainable = layer in top and not _is_bn(layer)


def bottom(base, n):
    base.trainable = True
    weighted = [layer for layer in base.layers if layer.weights and not _is_bn(layer)]
    for layer in base.layers:
        layer.trainable = layer in weighted[:n]


def minus_zero_slice(base, n):
    base.trainable = True
    weighted = [layer for layer in base.layers if layer.weights and not _is_bn(layer)]
    top = weighted[-n:]
    for layer in base.layers:
        layer.trainable = layer in top


def test_04_1_correct(capsys):
    result = run("04.1", capsys, unfreeze_top=correct)
    assert result.line == (
        "✅ 04.1 unfreeze_top(base, n) leaves exactly the top n layers with weights trainable, BatchNorm frozen "
        "(tried n = 2, 3, 0)"
    )


def test_04_1_the_course_helper_is_not_the_answer(capsys):
    """The task is to write what tlcourse.models.unfreeze does; calling it is refused, and it stays usable."""
    result = run("04.1", capsys, unfreeze_top=lambda base, n: models.unfreeze(base, top=n))
    assert result.status == "failed" and "calls tlcourse.models.unfreeze" in result.message
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    base.trainable = False
    assert models.unfreeze(base, top=1).get_layer("d").trainable


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (bn_left_trainable, "BatchNormalization layer(s) 'bn1', 'bn2', 'bn3' are trainable"),
        (whole_base, "all 4 layers with weights are trainable: the whole base is unfrozen"),
        (nothing, "base.trainable is still False, so nothing can train"),
        (one_too_many, "the top 3 layers are trainable ('conv2', 'conv3', 'features'), the task asks for 2"),
        (counted_batchnorm, "you counted BatchNormalization layers among the top 2"),
        (bottom, "the bottom layer(s) 'conv1', 'conv2' are trainable"),
        (minus_zero_slice, "n=0 must leave the base frozen"),
        ("top 2", "`unfreeze_top` should be a function"),
    ],
    ids=[
        "bn-trainable",
        "whole-base",
        "nothing",
        "wrong-n",
        "counted-bn",
        "bottom",
        "minus-zero",
        "not-callable",
    ],
)
def test_04_1_wrong_answers(capsys, answer, hint):
    result = run("04.1", capsys, unfreeze_top=answer)
    assert result.status == "failed"
    assert hint in result.message


# --------------------------------------------------------------------------- 04.2
# 3 epochs of 1,000 images in batches of 32: 32 steps per epoch, a warm-up of 16 steps, 96 steps in all.
class LinearWarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        return 1e-4 * keras.ops.minimum(step / 16, keras.ops.clip((96 - step) / 80, 0.0, 1.0))


def cosine_decay(peak=1e-4, warmup=16, decay=80):
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=decay, warmup_target=peak, warmup_steps=warmup
    )


def test_04_2_correct(capsys):
    result = run("04.2", capsys, schedule=cosine_decay())
    assert result.line == (
        "✅ 04.2 schedule: linear warm-up to 0.0001 over 16 steps, then cosine decay to 0 at step 96"
    )


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda: 1e-4, "the number 0.0001, a constant learning rate"),
        (lambda: keras.optimizers.schedules.CosineDecay(1e-4, decay_steps=96), "there is no warm-up"),
        (
            lambda: keras.optimizers.schedules.CosineDecay(
                0.0, 80, alpha=1.0, warmup_target=1e-4, warmup_steps=16
            ),
            "stays at its peak after the warm-up",
        ),
        (lambda: cosine_decay(decay=96), "still 7% of its peak"),
        (lambda: cosine_decay(warmup=32, decay=64), "reaches its peak at step 32"),
        (lambda: cosine_decay(peak=1e-3), "peaks at 1.0e-03; the task asks for a peak of 0.0001"),
        (LinearWarmupLinearDecay, "does not decay along a cosine"),
        (lambda: "cosine", "`schedule` is a str"),
        (
            lambda: train.Stage(3, 1e-4, warmup=0.5, schedule="cosine").learning_rate_for(32),
            "comes from tlcourse.train.Stage",
        ),
    ],
    ids=[
        "constant",
        "no-warmup",
        "no-decay",
        "decay-steps-total",
        "long-warmup",
        "peak",
        "linear",
        "string",
        "the-course-helper",
    ],
)
def test_04_2_wrong_answers(capsys, make, hint):
    result = run("04.2", capsys, schedule=make())
    assert result.status == "failed"
    assert hint in result.message


def test_04_2_quarter_point_separates_cosine_from_linear():
    """The check's cosine test: a quarter into the decay (step 36), cosine is at ~85 %, linear at 75 %."""
    progress = (36 - 16) / 80
    assert 0.80 <= 0.5 * (1 + math.cos(math.pi * progress)) <= 0.90
    assert not 0.80 <= 1 - progress <= 0.90


# --------------------------------------------------------------------------- 04.3
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def target():
    bundle = data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], image_size=64)
    return bundle.arrays("train")


@pytest.fixture(scope="module")
def lite0():
    """The exercise's base and a model after stage 1 (a head trained on cached features)."""
    keras.utils.set_random_seed(0)
    base = models.backbone("efficientnet_lite0", input_shape=(64, 64, 3))
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Dropout(0.2)(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(5, name="head")(x))
    return base, model


@pytest.fixture(scope="module")
def stage1(target, lite0):
    (x, y), (base, model) = target, lite0
    head = keras.Sequential([keras.Input((1280,)), keras.layers.Dropout(0.2), keras.layers.Dense(5)])
    head.compile(optimizer=keras.optimizers.Adam(1e-2), loss=LOSS)
    head.fit(base.predict(x, verbose=0), y, epochs=20, batch_size=32, verbose=0)
    model.get_layer("head").set_weights(head.layers[-1].get_weights())
    return model.get_weights()


def stage2(lite0, stage1, x, y, *, top=4, bn_frozen=True, learning_rate=3e-5, epochs=1):
    base, model = lite0
    model.set_weights(stage1)
    base.trainable = True
    weighted = [
        layer
        for layer in base.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    for layer in base.layers:
        layer.trainable = layer in weighted[len(weighted) - top :] or (
            not bn_frozen and isinstance(layer, keras.layers.BatchNormalization)
        )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=LOSS, metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def test_04_3_correct(capsys, target, lite0, stage1):
    model = stage2(lite0, stage1, *target)
    result = run("04.3", capsys, model=model, stage1_weights=stage1)
    assert result.line == (
        "✅ 04.3 model: only the top 4 layers of the base moved, BatchNorm statistics untouched; within a standard "
        "error of stage 1 and ≥ 85% on the 200 held-out test images"
    )


@pytest.mark.parametrize(
    ("change", "hint"),
    [
        ({"bn_frozen": False}, "BatchNormalization layers of the base changed in stage 2"),
        ({"top": 60}, "layers below the top 4 changed"),
        ({"learning_rate": 3e-2}, "stage 2 made it worse"),
    ],
    ids=["bn-trainable", "whole-base", "learning-rate-too-high"],
)
def test_04_3_wrong_stage_2(capsys, target, lite0, stage1, change, hint):
    (x, y) = target
    model = stage2(lite0, stage1, x[:96], y[:96], **change)
    result = run("04.3", capsys, model=model, stage1_weights=stage1)
    assert result.status == "failed" and hint in result.message, result.message


def test_04_3_stage1_weights_taken_too_late(capsys, target, lite0, stage1):
    (x, y) = target
    model = stage2(lite0, stage1, x[:64], y[:64])
    result = run("04.3", capsys, model=model, stage1_weights=model.get_weights())
    assert "the base already differs from the pretrained one" in result.message


def test_04_3_stage_2_skipped(capsys, target, lite0, stage1):
    (x, y), (base, model) = target, lite0
    model.set_weights(stage1)
    base.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=LOSS)
    model.fit(x[:32], y[:32], verbose=0)  # the head only
    result = run("04.3", capsys, model=model, stage1_weights=stage1)
    assert "the top 4 layers of the base still hold their pretrained weights" in result.message


def test_04_3_compiled_not_trained(capsys, lite0, stage1):
    _, model = lite0
    model.compile(optimizer="adam", loss=LOSS)
    result = run("04.3", capsys, model=model, stage1_weights=stage1)
    assert "was compiled (again) but has not trained since" in result.message


# --------------------------------------------------------------------------- 04.4
Stage = train.Stage
PROGRESSIVE = [
    Stage(2, 1e-3),
    Stage(1, 1e-4, unfreeze=1, warmup=0.5),
    Stage(2, 1e-4, unfreeze=2, warmup=0.5, schedule="cosine", lr_multipliers={"base": 0.1}),
]


def test_04_4_correct(capsys):
    result = run("04.4", capsys, progressive=PROGRESSIVE)
    assert result.passed, result.message


@pytest.mark.parametrize(
    ("recipe", "hint"),
    [
        ("stages", "should be a list of tlcourse.train.Stage"),
        (PROGRESSIVE[:2], "has 2 stages; the task asks for 3"),
        ([PROGRESSIVE[0], Stage(1, 1e-4, unfreeze=2, warmup=0.5), PROGRESSIVE[2]], "stage 2 (top 2 layers"),
        ([Stage(2, 1e-3, unfreeze="all"), *PROGRESSIVE[1:]], "stage 1 (all of the base"),
        (
            [*PROGRESSIVE[:2], Stage(2, 1e-4, unfreeze=2, warmup=0.5, schedule="cosine")],
            "a tenth of the head's",
        ),
        ([PROGRESSIVE[0], Stage(1, 1e-4, unfreeze=1), PROGRESSIVE[2]], "give each a warm-up"),
    ],
    ids=["not-a-list", "two-stages", "wrong-unfreeze", "base-in-stage-1", "no-multipliers", "no-warmup"],
)
def test_04_4_wrong_answers(capsys, recipe, hint):
    result = run("04.4", capsys, progressive=recipe)
    assert result.status == "failed" and hint in result.message, result.message
