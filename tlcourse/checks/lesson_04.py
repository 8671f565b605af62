"""Checks of lesson 04: unfreeze the top N with BatchNorm frozen, a warm-up + cosine schedule, the
two-stage recipe on a base with BatchNorm, and a progressive, discriminative recipe of stages."""

from __future__ import annotations

import contextlib
import math
import numbers

import keras
import numpy as np

from tlcourse import data, env, introspect, models, train
from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    expect_from_logits,
    expect_input_shape,
    expect_logits,
    expect_model,
    expect_output_shape,
    trainable_by_layer,
)
from tlcourse.introspect import is_batchnorm, recall

TARGET_CLASSES_04 = (5, 6, 7, 8, 9)
IMAGE_SIZE_04 = 64
AT_LEAST_04 = 0.85
TOP_04 = 4
PEAK_LR_04, N_TRAIN_04, BATCH_04, EPOCHS_04 = 1e-4, 1000, 32, 3
STEPS_PER_EPOCH_04 = math.ceil(N_TRAIN_04 / BATCH_04)
TOTAL_STEPS_04 = EPOCHS_04 * STEPS_PER_EPOCH_04
WARMUP_STEPS_04 = STEPS_PER_EPOCH_04 // 2


def _reference_base_04(size: int = 12):
    """A small base like a pretrained CNN after stage 1: conv + BatchNorm blocks, frozen."""

    layers = [keras.Input((size, size, 3))]
    for i in (1, 2, 3):
        layers += [
            keras.layers.Conv2D(4, 3, padding="same", name=f"conv{i}"),
            keras.layers.BatchNormalization(name=f"bn{i}"),
            keras.layers.ReLU(name=f"relu{i}"),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(6, name="features")]
    base = keras.Sequential(layers, name="base")
    base.trainable = False
    return base


@contextlib.contextmanager
def _refusing_the_helper():
    """While the student's function runs, tlcourse's own unfreeze raises: the task is to write it."""

    class UsedTheHelper(Exception):
        pass

    def refuse(*args, **kwargs):
        raise UsedTheHelper

    saved = models.unfreeze, introspect.unfreeze
    models.unfreeze = introspect.unfreeze = refuse
    try:
        yield
    except UsedTheHelper:
        raise CheckFailed(
            "`unfreeze_top` calls tlcourse.models.unfreeze: write it yourself with base.trainable and "
            "layer.trainable (lesson 04, section 4); the helper is for after the exercise"
        ) from None
    finally:
        models.unfreeze, introspect.unfreeze = saved


def _names(names) -> str:
    return ", ".join(repr(name) for name in names)


@register("04.1")
def check_04_1(unfreeze_top) -> str:
    """unfreeze_top(base, n): exactly the top n layers with weights (BatchNorm not counted) trainable."""
    if not callable(unfreeze_top):
        raise CheckFailed("`unfreeze_top` should be a function: def unfreeze_top(base, n): ...")
    for n in (2, 3, 0):
        base = _reference_base_04()
        with _refusing_the_helper():
            unfreeze_top(base, n)
        layers = [layer for layer in base.layers if layer.weights]
        weighted = [layer.name for layer in layers if not is_batchnorm(layer)]
        expected = weighted[len(weighted) - n :]
        actual = [name for name in trainable_by_layer(base) if name in weighted]
        call = f"after unfreeze_top(base, {n})"
        if n == 0 and actual:
            raise CheckFailed(
                f"{call} layer(s) {_names(actual[:3])} are trainable: n=0 must leave the base frozen "
                "(careful: a_list[-0:] is the whole list, use a_list[len(a_list) - n:])"
            )
        if n and not base.trainable:
            raise CheckFailed(
                f"{call} base.trainable is still False, so nothing can train: set base.trainable = True first "
                "(it unfreezes every layer), then freeze again the layers below the top n"
            )
        if n and not actual:
            raise CheckFailed(f"{call} no layer of the base is trainable: make the top {n} layers trainable")
        if len(actual) == len(weighted) and n < len(weighted):
            raise CheckFailed(
                f"{call} all {len(weighted)} layers with weights are trainable: the whole base is unfrozen. Keep "
                f"only the top {n} trainable and set trainable = False on the others"
            )
        bn = [layer.name for layer in layers if is_batchnorm(layer) and layer.trainable]
        if bn:
            raise CheckFailed(
                f"{call} BatchNormalization layer(s) {_names(bn)} are trainable: set trainable = False on every "
                "BatchNormalization layer, so fit() keeps them in inference mode (keras-team/keras#20285)"
            )
        if actual == expected:
            continue
        with_bn = [layer.name for layer in layers][len(layers) - n :]
        if actual == [name for name in with_bn if name in weighted]:
            raise CheckFailed(
                f"{call} only {_names(actual)} are trainable: you counted BatchNormalization layers among the "
                f"top {n}; count only the layers with weights that are not BatchNormalization"
            )
        if actual == weighted[: len(actual)]:
            raise CheckFailed(
                f"{call} the bottom layer(s) {_names(actual)} are trainable: the top layers are the LAST ones in "
                "base.layers (the early ones hold general features and stay frozen)"
            )
        if actual == weighted[len(weighted) - len(actual) :]:
            raise CheckFailed(
                f"{call} the top {len(actual)} layers are trainable ({_names(actual)}), the task asks for {n}: "
                "check how you slice the list of layers with weights"
            )
        raise CheckFailed(
            f"{call} the trainable layers are {_names(actual)}; expected the top {n}: {_names(expected)}"
        )
    return (
        "unfreeze_top(base, n) leaves exactly the top n layers with weights trainable, BatchNorm frozen "
        "(tried n = 2, 3, 0)"
    )


def _rate(schedule, step: int) -> float:

    value = schedule(step)
    return float(np.asarray(keras.ops.convert_to_numpy(value)).reshape(-1)[0])


@register("04.2")
def check_04_2(schedule) -> str:
    """A learning-rate schedule for 3 epochs of 1,000 images in batches of 32: linear warm-up to the peak over
    half an epoch (16 steps), cosine decay to 0 at the last step (96)."""

    if isinstance(schedule, numbers.Real):
        raise CheckFailed(
            f"`schedule` is the number {schedule:g}, a constant learning rate: build a schedule with "
            "keras.optimizers.schedules.CosineDecay(...)"
        )
    if not callable(schedule):
        raise CheckFailed(
            f"`schedule` is a {type(schedule).__name__}: it should be a LearningRateSchedule (call it with a step)"
        )
    if recall(schedule, "made_by") is not None:
        raise CheckFailed(
            f"`schedule` comes from {recall(schedule, 'made_by')}: build it yourself with "
            "keras.optimizers.schedules.CosineDecay, from the step counts of the task"
        )
    quarter = WARMUP_STEPS_04 + (TOTAL_STEPS_04 - WARMUP_STEPS_04) // 4
    rates = {step: _rate(schedule, step) for step in range(TOTAL_STEPS_04 + 1)}
    peak = max(rates.values())
    if peak <= 0:
        raise CheckFailed("`schedule` is never above 0: the learning rate must rise to its peak")
    peak_step = min(step for step, rate in rates.items() if rate >= 0.98 * peak)
    if not math.isclose(peak, PEAK_LR_04, rel_tol=0.05):
        raise CheckFailed(f"`schedule` peaks at {peak:.1e}; the task asks for a peak of {PEAK_LR_04:g}")
    if rates[0] >= 0.9 * peak:
        raise CheckFailed(
            f"`schedule` starts at its peak: there is no warm-up. Ramp it up from ~0 over the first half epoch "
            f"({WARMUP_STEPS_04} steps: an epoch is ceil({N_TRAIN_04} / {BATCH_04}) = {STEPS_PER_EPOCH_04} steps)"
        )
    if abs(peak_step - WARMUP_STEPS_04) > 1:
        raise CheckFailed(
            f"`schedule` reaches its peak at step {peak_step}; the warm-up should end after half an epoch, at "
            f"step {WARMUP_STEPS_04} (an epoch is ceil({N_TRAIN_04} / {BATCH_04}) = {STEPS_PER_EPOCH_04} steps)"
        )
    after = [rates[step] for step in rates if step >= peak_step]
    if any(later > earlier * (1 + 1e-4) + 1e-12 for earlier, later in zip(after, after[1:], strict=False)):
        raise CheckFailed("`schedule` rises again after the warm-up: after the peak it should only decrease")
    end = rates[TOTAL_STEPS_04]
    if end >= 0.9 * peak:
        raise CheckFailed(
            f"`schedule` stays at its peak after the warm-up: add a cosine decay down to 0 at step {TOTAL_STEPS_04}"
        )
    if end > 0.01 * peak:
        raise CheckFailed(
            f"at step {TOTAL_STEPS_04}, the last of {EPOCHS_04} epochs, `schedule` is still {end / peak:.0%} of its "
            f"peak: decay to 0 over the {TOTAL_STEPS_04 - WARMUP_STEPS_04} steps after the warm-up (CosineDecay's "
            "decay_steps count after the warm-up)"
        )
    if not 0.80 <= rates[quarter] / peak <= 0.90:  # a quarter into the decay: cosine 0.85, linear 0.75
        raise CheckFailed(
            "`schedule` does not decay along a cosine (a quarter into the decay it should still be at ~85 % of "
            "the peak): use keras.optimizers.schedules.CosineDecay"
        )
    return (
        f"schedule: linear warm-up to {PEAK_LR_04:g} over {WARMUP_STEPS_04} steps, then cosine decay to 0 at "
        f"step {TOTAL_STEPS_04}"
    )


def _by_path(weights) -> dict[str, np.ndarray]:
    return {w.path: np.asarray(keras.ops.convert_to_numpy(w)) for w in weights}


@register("04.3")
def check_04_3(model, stage1_weights) -> str:
    """The two-stage recipe on EfficientNet-Lite0 (BatchNorm inside): stage 1 left the base alone, stage 2 moved
    the top 4 layers with weights and nothing else of the base, BN statistics included, and ended no more than one
    standard error below stage 1 on the held-out test images, at ≥ 85 %."""
    expect_model(model, name="model")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise CheckFailed("`model` is not compiled: compile and fit it, stage 1 then stage 2")
    if int(model.optimizer.iterations.numpy()) == 0:
        raise CheckFailed(
            "`model` was compiled (again) but has not trained since: call model.fit(...) after compiling"
        )
    expect_from_logits(model, name="model")
    shape = (IMAGE_SIZE_04, IMAGE_SIZE_04, 3)
    expect_input_shape(model, shape, name="model")
    expect_logits(
        model, expect_output_shape(model, shape, len(TARGET_CLASSES_04), name="model"), name="model"
    )
    pristine = models.backbone("efficientnet_lite0", input_shape=shape)
    reference = _by_path(pristine.weights)
    final = _by_path(model.weights)
    if not set(reference) <= set(final):
        raise CheckFailed("`model` does not contain the EfficientNet-Lite0 `base`: build it on `base`")
    if not isinstance(stage1_weights, list) or len(stage1_weights) != len(model.weights):
        raise CheckFailed(
            "`stage1_weights` should be model.get_weights() taken right after stage 1, before stage 2"
        )
    stage1 = {w.path: np.asarray(value) for w, value in zip(model.weights, stage1_weights, strict=True)}
    if any(not np.array_equal(stage1[path], value) for path, value in reference.items()):
        raise CheckFailed(
            "in `stage1_weights` the base already differs from the pretrained one: stage 1 trains the head only "
            "(base frozen), and stage1_weights must be taken before stage 2"
        )
    bn = [layer for layer in pristine.layers if is_batchnorm(layer)]
    moved_bn = [
        layer.name
        for layer in bn
        if any(not np.array_equal(final[w.path], reference[w.path]) for w in layer.weights)
    ]
    if moved_bn:
        raise CheckFailed(
            f"{len(moved_bn)} BatchNormalization layers of the base changed in stage 2 (e.g. '{moved_bn[0]}'): set "
            "trainable = False on every BatchNormalization layer after unfreezing, so fit() keeps them in "
            "inference mode (keras-team/keras#20285)"
        )
    weighted = [layer for layer in pristine.layers if layer.weights and not is_batchnorm(layer)]

    def moved(layer) -> bool:
        return any(not np.array_equal(final[w.path], reference[w.path]) for w in layer.weights)

    below = [layer.name for layer in weighted[:-TOP_04] if moved(layer)]
    if below:
        raise CheckFailed(
            f"layers below the top {TOP_04} changed (e.g. '{below[-1]}'): in stage 2 unfreeze only the top "
            f"{TOP_04} layers with weights, the early ones hold general features"
        )
    if not any(moved(layer) for layer in weighted[-TOP_04:]):
        raise CheckFailed(
            f"the top {TOP_04} layers of the base still hold their pretrained weights: stage 2 did not train them. "
            "Unfreeze them, compile again (a change of `trainable` takes effect at compile) and fit"
        )
    x_test, y_test = data.load(
        "fashion_mnist", classes=list(TARGET_CLASSES_04), image_size=IMAGE_SIZE_04
    ).arrays("test")

    def accuracy() -> float:
        logits = [np.asarray(model(x_test[i : i + 100], training=False)) for i in range(0, len(x_test), 100)]
        return float(np.mean(np.concatenate(logits).argmax(-1) == y_test))

    after = accuracy()
    current = model.get_weights()
    model.set_weights(stage1_weights)
    before = accuracy()
    model.set_weights(current)
    tolerance = math.sqrt(before * (1 - before) / len(y_test))  # one standard error of the accuracy
    if after < before - tolerance:
        raise CheckFailed(
            f"after stage 2 `model` gets {after:.1%} of the test images, stage 1 alone got {before:.1%}: stage 2 "
            "made it worse. Use a learning rate 10-100× smaller than the head's, with a warm-up"
        )
    if after < AT_LEAST_04:
        raise CheckFailed(
            f"`model` gets {after:.1%} of the held-out test images, below {AT_LEAST_04:.0%}: train the head well in "
            "stage 1 (on cached features), then fine-tune gently"
        )
    return (
        f"model: only the top {TOP_04} layers of the base moved, BatchNorm statistics untouched; within a standard error of stage 1 "
        f"and ≥ {AT_LEAST_04:.0%} on the {len(y_test)} held-out test images"
    )


def _toy_data_04(size: int = 12):
    rng = np.random.default_rng(0)
    y = np.arange(96) % 3
    x = rng.uniform(0, 1, size=(96, size, size, 3)).astype("float32")
    x[np.arange(96), 2:-2, 2:-2, y] += 1.0
    return x, y


@register("04.4")
def check_04_4(progressive) -> str:
    """A list of three Stages: the head alone (2 epochs, 1e-3); the top layer (1 epoch, 1e-4, warm-up half an
    epoch); the top 2 layers (2 epochs, 1e-4, warm-up then cosine) with the base at a tenth of the head's rate.
    Run on a small conv + BatchNorm classifier, each stage must move what it says and nothing else."""
    if not isinstance(progressive, (list, tuple)) or not all(isinstance(s, train.Stage) for s in progressive):
        raise CheckFailed(
            "`progressive` should be a list of tlcourse.train.Stage(...) objects, one per stage"
        )
    if len(progressive) != 3:
        raise CheckFailed(f"`progressive` has {len(progressive)} stages; the task asks for 3")
    env.reseed(0)
    base = _reference_base_04()
    inputs = keras.Input((12, 12, 3))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(base(inputs, training=False)))
    x, y = _toy_data_04()
    names = ["conv1", "conv2", "conv3", "features"]
    wanted = [set(), {"features"}, {"conv3", "features"}]
    for number, (stage, moves) in enumerate(zip(progressive, wanted, strict=True), start=1):
        before = {name: base.get_layer(name).kernel.numpy().copy() for name in names}
        head_before = model.get_layer("head").kernel.numpy().copy()
        bn_before = [w.numpy().copy() for layer in base.layers if is_batchnorm(layer) for w in layer.weights]
        train.fine_tune(model, ((x, y), (x, y)), stages=[stage], batch_size=32, verbose=0)
        moved = {
            name for name in names if not np.array_equal(base.get_layer(name).kernel.numpy(), before[name])
        }
        if moved != moves:
            what = ", ".join(sorted(moved)) or "no layer of the base"
            should = ", ".join(sorted(moves)) or "none (the head alone)"
            raise CheckFailed(
                f"stage {number} ({stage.describe()}) trained {what}; it should train {should}: check its unfreeze="
            )
        if np.array_equal(model.get_layer("head").kernel.numpy(), head_before):
            raise CheckFailed(f"stage {number} did not train the head: every stage trains the head too")
        bn_after = [w.numpy() for layer in base.layers if is_batchnorm(layer) for w in layer.weights]
        if any(not np.array_equal(a, b) for a, b in zip(bn_before, bn_after, strict=True)):
            raise CheckFailed(
                f"stage {number} changed BatchNorm statistics: fine_tune keeps them frozen, do you?"
            )
    epochs = [stage.epochs for stage in progressive]
    rates = [stage.learning_rate for stage in progressive]
    if epochs != [2, 1, 2] or not np.allclose(rates, [1e-3, 1e-4, 1e-4]):
        raise CheckFailed(f"the stages last {epochs} epochs at learning rates {rates}; the task asks for "
                          "[2, 1, 2] epochs at [0.001, 0.0001, 0.0001]")  # fmt: skip
    if progressive[0].warmup or not (progressive[1].warmup and progressive[2].warmup):
        raise CheckFailed(
            "stages 2 and 3 each start a fresh optimizer: give each a warm-up (warmup=0.5), not stage 1"
        )
    if progressive[2].schedule != "cosine" or progressive[1].schedule != "constant":
        raise CheckFailed('only stage 3 decays: schedule="cosine" there, the default "constant" before')
    multipliers = (
        model.optimizer.variable_multipliers if hasattr(model.optimizer, "variable_multipliers") else {}
    )
    base_rates = {multipliers.get(w.path, 1.0) for w in base.trainable_weights}
    head_rates = {multipliers.get(w.path, 1.0) for w in model.get_layer("head").weights}
    if base_rates != {0.1} or head_rates != {1.0}:
        raise CheckFailed(
            "stage 3 should train the base at a tenth of the head's learning rate: "
            'lr_multipliers={"base": 0.1} (the head keeps 1)'
        )
    return (
        "progressive: the head alone, then the top layer, then the top two with the base at a tenth of the "
        "head's rate; each stage moved exactly what it should, BatchNorm untouched"
    )
