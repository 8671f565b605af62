"""Lesson 04's checks: unfreeze the top N with BatchNorm frozen, a warm-up + cosine schedule, two stages."""

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


def test_04_1_helper_passes(capsys):
    """tlcourse's own helper is a correct answer too."""
    result = run("04.1", capsys, unfreeze_top=lambda base, n: models.unfreeze(base, top=n))
    assert result.passed


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
class LinearWarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        up = (step + 1) / 50
        down = keras.ops.clip((500 - step) / 450, 0.0, 1.0)
        return 1e-4 * keras.ops.minimum(up, down)


def cosine_decay(peak=1e-4, warmup=50, decay=450):
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=decay, warmup_target=peak, warmup_steps=warmup
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: train.WarmupCosine(1e-4, total_steps=500, warmup_steps=50, cosine=True),
        lambda: cosine_decay(),
    ],
    ids=["WarmupCosine", "keras-CosineDecay"],
)
def test_04_2_correct(capsys, make):
    result = run("04.2", capsys, schedule=make())
    assert result.line == (
        "✅ 04.2 schedule: linear warm-up to 0.0001 over 50 steps, then cosine decay to 0 at step 500"
    )


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda: 1e-4, "the number 0.0001, a constant learning rate"),
        (lambda: keras.optimizers.schedules.CosineDecay(1e-4, decay_steps=500), "there is no warm-up"),
        (
            lambda: train.WarmupCosine(1e-4, total_steps=500, warmup_steps=50, cosine=False),
            "stays at its peak after the warm-up",
        ),
        (lambda: cosine_decay(decay=500), "still 2% of its peak"),
        (lambda: cosine_decay(warmup=100, decay=400), "reaches its peak at step 100"),
        (lambda: cosine_decay(peak=1e-3), "peaks at 1.0e-03; the task asks for a peak of 0.0001"),
        (LinearWarmupLinearDecay, "does not decay along a cosine"),
        (lambda: "cosine", "`schedule` is a str"),
    ],
    ids=["constant", "no-warmup", "no-decay", "decay-steps-total", "long-warmup", "peak", "linear", "string"],
)
def test_04_2_wrong_answers(capsys, make, hint):
    result = run("04.2", capsys, schedule=make())
    assert result.status == "failed"
    assert hint in result.message


def test_04_2_quarter_point_separates_cosine_from_linear():
    """The check's cosine test: a quarter into the decay, cosine is at ~85 %, linear at 75 %."""
    progress = (163 - 50) / 450
    assert 0.80 <= 0.5 * (1 + math.cos(math.pi * progress)) <= 0.90
    assert not 0.80 <= 1 - progress <= 0.90


# --------------------------------------------------------------------------- 04.3
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def target():
    bundle = data.load("fashion_mnist", classes=[5, 6, 7, 8, 9])
    return bundle.arrays("train"), bundle.arrays("val")


def build(*, activation=None):
    keras.utils.set_random_seed(0)
    base = models.headless(models.source_model(progress=False))
    base.trainable = False
    inputs = keras.Input((28, 28, 3))
    x = keras.layers.Dropout(0.2)(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(5, activation=activation, name="head")(x))
    return model, base


@pytest.fixture(scope="module")
def stage1_weights(target):
    (x, y), _ = target
    model, _ = build()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=LOSS, metrics=["accuracy"])
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    return model.get_weights()


def after_stage1(stage1_weights):
    model, base = build()
    model.set_weights(stage1_weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=LOSS, metrics=["accuracy"])
    return model, base


def stage2(model, x, y, *, learning_rate=3e-4, epochs=10, recompile=True):
    if recompile:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=LOSS, metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def test_04_3_correct(capsys, target, stage1_weights):
    (x, y), _ = target
    model, base = after_stage1(stage1_weights)
    models.unfreeze(base, top=2)
    stage2(model, x, y)
    result = run("04.3", capsys, model=model)
    assert result.line == (
        "✅ 04.3 model: head trained, top layers fine-tuned, bottom layers untouched; ≥ 80% on the 200 held-out "
        "test images"
    )


def test_04_3_stage1_only(capsys, target, stage1_weights):
    (x, y), _ = target
    model, _ = after_stage1(stage1_weights)
    model.fit(x[:32], y[:32], epochs=1, verbose=0)  # trained: the optimizer has taken a step
    result = run("04.3", capsys, model=model)
    assert "the top layers of the base (conv3, features) still hold the source's weights" in result.message


def test_04_3_recompiled_but_stage2_not_run(capsys, target, stage1_weights):
    (x, y), _ = target
    model, base = after_stage1(stage1_weights)
    models.unfreeze(base, top=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-4), loss=LOSS, metrics=["accuracy"])
    result = run("04.3", capsys, model=model)
    assert "was compiled (again) but has not trained since" in result.message


def test_04_3_unfrozen_without_recompiling(capsys, target, stage1_weights):
    """Keras keeps the train step it built at the first fit: `trainable` changed later is silently ignored."""
    (x, y), _ = target
    model, base = after_stage1(stage1_weights)
    model.fit(x[:64], y[:64], batch_size=32, verbose=0)
    models.unfreeze(base, top=2)
    model.fit(x[:64], y[:64], batch_size=32, verbose=0)  # same batch shapes: no retrace, no error
    result = run("04.3", capsys, model=model)
    assert "compile again (a change of `trainable` takes effect at compile)" in result.message


def test_04_3_whole_base(capsys, target, stage1_weights):
    (x, y), _ = target
    model, base = after_stage1(stage1_weights)
    base.trainable = True
    stage2(model, x[:64], y[:64], epochs=1)
    result = run("04.3", capsys, model=model)
    assert (
        "the bottom layers of `model` (conv1, conv2) changed: the whole base was fine-tuned" in result.message
    )


def test_04_3_skipped_stage1(capsys, target):
    (x, y), _ = target
    model, base = build()
    models.unfreeze(base, top=2)
    stage2(model, x[:32], y[:32], learning_rate=1e-5, epochs=1)
    result = run("04.3", capsys, model=model)
    assert "`model`'s accuracy on held-out data is below 0.80" in result.message


def test_04_3_compiled_not_trained(capsys):
    model, _ = build()
    model.compile(optimizer="adam", loss=LOSS)
    result = run("04.3", capsys, model=model)
    assert "was compiled (again) but has not trained since" in result.message


def test_04_3_softmax_head(capsys, target):
    (x, y), _ = target
    model, _ = build(activation="softmax")
    stage2(model, x[:32], y[:32], epochs=1)
    result = run("04.3", capsys, model=model)
    assert "activation='softmax'" in result.message


def test_04_3_old_classifier_kept(capsys, target):
    (x, y), _ = target
    source = models.source_model(progress=False)
    source.trainable = False
    inputs = keras.Input((28, 28, 3))
    model = keras.Model(inputs, keras.layers.Dense(5)(source(inputs)))
    stage2(model, x[:32], y[:32], epochs=1)
    result = run("04.3", capsys, model=model)
    assert "still contains the source's own classifier" in result.message


def test_04_3_not_compiled(capsys):
    model, _ = build()
    result = run("04.3", capsys, model=model)
    assert "`model` is not compiled" in result.message
