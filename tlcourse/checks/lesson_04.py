"""Checks of lesson 04."""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np

from tlcourse import data
from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    as_arrays,
    expect_accuracy,
    expect_from_logits,
    expect_input_shape,
    expect_logits,
    expect_model,
    expect_output_shape,
    holds,
    source_weights,
    trainable_by_layer,
)
from tlcourse.introspect import is_batchnorm

TARGET_CLASSES_04 = (5, 6, 7, 8, 9)
AT_LEAST_04 = 0.80
PEAK_LR_04, WARMUP_STEPS_04, TOTAL_STEPS_04 = 1e-4, 50, 500


def _reference_base_04():
    """A small base like a pretrained CNN after stage 1: conv + BatchNorm blocks, frozen."""

    layers = [keras.Input((12, 12, 3))]
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


def _names(names) -> str:
    return ", ".join(repr(name) for name in names)


@register("04.1")
def check_04_1(unfreeze_top) -> str:
    """unfreeze_top(base, n): exactly the top n layers with weights (BatchNorm not counted) trainable."""
    if not callable(unfreeze_top):
        raise CheckFailed("`unfreeze_top` should be a function: def unfreeze_top(base, n): ...")
    for n in (2, 3, 0):
        base = _reference_base_04()
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
    """A learning-rate schedule: linear warm-up to the peak over 50 steps, cosine decay to 0 at step 500."""

    if isinstance(schedule, numbers.Real):
        raise CheckFailed(
            f"`schedule` is the number {schedule:g}, a constant learning rate: build a schedule, e.g. "
            "tlcourse.train.WarmupCosine(...) or keras.optimizers.schedules.CosineDecay(...)"
        )
    if not callable(schedule):
        raise CheckFailed(
            f"`schedule` is a {type(schedule).__name__}: it should be a LearningRateSchedule (call it with a step)"
        )
    steps = sorted(set(range(0, TOTAL_STEPS_04 + 1, 5)) | {WARMUP_STEPS_04 - 1, 163})
    rates = {step: _rate(schedule, step) for step in steps}
    peak = max(rates.values())
    if peak <= 0:
        raise CheckFailed("`schedule` is never above 0: the learning rate must rise to its peak")
    peak_step = min(step for step, rate in rates.items() if rate >= 0.98 * peak)
    if not math.isclose(peak, PEAK_LR_04, rel_tol=0.05):
        raise CheckFailed(f"`schedule` peaks at {peak:.1e}; the task asks for a peak of {PEAK_LR_04:g}")
    if rates[0] >= 0.9 * peak:
        raise CheckFailed(
            f"`schedule` starts at its peak: there is no warm-up. Ramp it up from ~0 over the first "
            f"{WARMUP_STEPS_04} steps (warmup_steps={WARMUP_STEPS_04})"
        )
    if not WARMUP_STEPS_04 - 5 <= peak_step <= WARMUP_STEPS_04 + 5:
        raise CheckFailed(
            f"`schedule` reaches its peak at step {peak_step}; the warm-up should end at step {WARMUP_STEPS_04}"
        )
    after = [rates[step] for step in steps if step >= peak_step]
    if any(later > earlier * (1 + 1e-4) + 1e-12 for earlier, later in zip(after, after[1:], strict=False)):
        raise CheckFailed("`schedule` rises again after the warm-up: after the peak it should only decrease")
    end = rates[TOTAL_STEPS_04]
    if end >= 0.9 * peak:
        raise CheckFailed(
            f"`schedule` stays at its peak after the warm-up: add a cosine decay down to 0 at step {TOTAL_STEPS_04}"
        )
    if end > 0.01 * peak:
        raise CheckFailed(
            f"at step {TOTAL_STEPS_04} `schedule` is still {end / peak:.0%} of its peak: decay to 0 over the "
            f"{TOTAL_STEPS_04 - WARMUP_STEPS_04} steps after the warm-up (Keras' CosineDecay counts decay_steps "
            "after the warm-up)"
        )
    quarter = rates[163] / peak  # a quarter into the decay: cosine 0.85, linear 0.75
    if not 0.80 <= quarter <= 0.90:
        raise CheckFailed(
            "`schedule` does not decay along a cosine (a quarter into the decay it should still be at ~85 % of "
            "the peak): use a cosine decay, e.g. WarmupCosine(..., cosine=True)"
        )
    return (
        f"schedule: linear warm-up to {PEAK_LR_04:g} over {WARMUP_STEPS_04} steps, then cosine decay to 0 at "
        f"step {TOTAL_STEPS_04}"
    )


@register("04.3")
def check_04_3(model) -> str:
    """A two-stage fine-tuned source model: bottom layers unchanged, top layers moved, accuracy ≥ threshold."""
    expect_model(model, name="model")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise CheckFailed("`model` is not compiled: compile and fit it, stage 1 then stage 2")
    if int(model.optimizer.iterations.numpy()) == 0:
        raise CheckFailed(
            "`model` was compiled (again) but has not trained since: call model.fit(...) after compiling"
        )
    expect_from_logits(model, name="model")
    expect_input_shape(model, (28, 28, 3), name="model")
    outputs = expect_output_shape(model, (28, 28, 3), len(TARGET_CLASSES_04), name="model")
    expect_logits(model, outputs, name="model")
    reference = source_weights()
    arrays = as_arrays(model.weights)
    if holds(arrays, reference["logits"][0]):
        raise CheckFailed(
            "`model` still contains the source's own classifier (scores for the 5 old classes): build on `base`, "
            "the source without its head"
        )
    shapes = {array.shape for array in arrays}
    if any(reference[name][0].shape not in shapes for name in ("conv1", "conv2", "conv3")):
        raise CheckFailed("`model` does not contain the source's convolutions: build it on `base`")
    if not all(holds(arrays, reference[name][0]) for name in ("conv1", "conv2")):
        raise CheckFailed(
            "the bottom layers of `model` (conv1, conv2) changed: the whole base was fine-tuned. In stage 2 "
            "unfreeze only the top layers, the early ones hold general features"
        )
    if all(holds(arrays, reference[name][0]) for name in ("conv3", "features")):
        raise CheckFailed(
            "the top layers of the base (conv3, features) still hold the source's weights: stage 2 did not train "
            "them. Unfreeze them, compile again (a change of `trainable` takes effect at compile) and fit"
        )

    x_test, y_test = data.load("fashion_mnist", classes=list(TARGET_CLASSES_04)).arrays("test")
    expect_accuracy(model, x_test, y_test, at_least=AT_LEAST_04, name="model")
    return (
        f"model: head trained, top layers fine-tuned, bottom layers untouched; ≥ {AT_LEAST_04:.0%} on the "
        f"{len(y_test)} held-out test images"
    )
