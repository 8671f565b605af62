"""Checks of lesson 01."""

from __future__ import annotations

import difflib

from tlcourse import data
from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    SOURCE_CONVOLUTIONS,
    as_arrays,
    count_params,
    expect_accuracy,
    expect_from_logits,
    expect_input_shape,
    expect_logits,
    expect_model,
    expect_output_shape,
    expect_trainable,
    head_layer,
    holds,
    source_weights,
)

WORKFLOW = ("pick a base", "freeze the base", "add a new head", "train the head", "fine-tune", "evaluate")
"""The transfer learning workflow of lesson 01, in order ("freeze" and "add a new head" may swap)."""

TARGET_CLASSES_01 = (5, 6, 7, 8, 9)
AT_LEAST_01 = 0.70


def _expect_source_features(model, *, trained: bool) -> None:
    """Fail unless ``model`` holds the source's convolutions, unchanged, and not its old classifier."""
    reference = source_weights()
    arrays = as_arrays(model.weights)
    if holds(arrays, reference["logits"][0]):
        raise CheckFailed(
            "`model` still contains the source's own classifier (its layer 'logits', scores for the 5 old "
            "classes): cut the source before it, at the layer 'gap' or 'features', and put the new head there"
        )
    if all(holds(arrays, reference[name][0]) for name in SOURCE_CONVOLUTIONS):
        return
    if trained:
        raise CheckFailed(
            "the convolution weights of `model` are no longer the source model's: they trained along with the "
            "head. Rebuild the model, set base.trainable = False, then compile and fit"
        )
    raise CheckFailed(
        "the convolution layers of `model` do not hold the pretrained source weights: build the base from "
        "`source` (e.g. keras.Model(source.inputs, source.get_layer('gap').output)), not from a new network"
    )


@register("01.1")
def check_01_1(workflow) -> str:
    """The six workflow steps in an order that works."""

    if isinstance(workflow, str) or not isinstance(workflow, (list, tuple)):
        raise CheckFailed(
            f"`workflow` is a {type(workflow).__name__}: make it a list of the six step names from STEPS, in order"
        )
    steps = [step.strip().lower() if isinstance(step, str) else step for step in workflow]
    for step in steps:
        if step not in WORKFLOW:
            close = difflib.get_close_matches(str(step), WORKFLOW, n=1)
            suggestion = f": did you mean {close[0]!r}?" if close else ": copy the names from STEPS"
            raise CheckFailed(f"{step!r} is not one of the steps{suggestion}")
    repeated = [step for step in WORKFLOW if steps.count(step) > 1]
    if repeated:
        raise CheckFailed(f"{repeated[0]!r} appears {steps.count(repeated[0])} times: each step comes once")
    missing = [step for step in WORKFLOW if step not in steps]
    if missing:
        raise CheckFailed(
            f"`workflow` has {len(steps)} of the 6 steps; missing: {', '.join(repr(m) for m in missing)}"
        )
    at = {step: index for index, step in enumerate(steps)}
    if at["pick a base"] != 0:
        raise CheckFailed(
            f"`workflow` starts with {steps[0]!r}: everything starts from a network pretrained on a source "
            "task, so 'pick a base' comes first"
        )
    if at["train the head"] < at["add a new head"]:
        raise CheckFailed(
            "'train the head' comes before 'add a new head': a head must exist before it can train"
        )
    if at["train the head"] < at["freeze the base"]:
        raise CheckFailed(
            "'train the head' comes before 'freeze the base': freeze first, or your few labels train (and "
            "damage) the whole pretrained network"
        )
    if at["fine-tune"] < at["train the head"]:
        raise CheckFailed(
            "'fine-tune' comes before 'train the head': fine-tune only once the head is trained, because a "
            "random head sends large gradients into the base and wrecks its pretrained features"
        )
    if at["evaluate"] != len(WORKFLOW) - 1:
        raise CheckFailed(
            "'evaluate' is not the last step: evaluate on held-out data once all training (fine-tuning "
            "included) is done"
        )
    return (
        "workflow: pick a base → freeze the base and add a new head → train the head → fine-tune → evaluate"
    )


@register("01.2")
def check_01_2(model) -> str:
    """The source model's frozen feature part + a new trainable Dense head with 5 logits."""
    expect_model(model, name="model")
    expect_input_shape(model, (28, 28, 3), name="model")
    outputs = expect_output_shape(model, (28, 28, 3), len(TARGET_CLASSES_01), name="model")
    expect_logits(model, outputs, name="model")
    _expect_source_features(model, trained=False)
    expect_trainable(model, trainable=[head_layer(model).name], name="model")
    return (
        f"model: the source's frozen features → a trainable Dense head "
        f"({count_params(model.trainable_weights):,} parameters) → 5 logits"
    )


@register("01.3")
def check_01_3(model) -> str:
    """The model of 01.2, trained on 10 labels per class, reaches the threshold on the held-out test split."""
    expect_model(model, name="model")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise CheckFailed(
            "`model` is not compiled yet: compile it (Adam, SparseCategoricalCrossentropy(from_logits=True)) "
            "and fit it on the 50 labelled training images"
        )
    expect_from_logits(model, name="model")
    if int(model.optimizer.iterations.numpy()) == 0:
        raise CheckFailed(
            "`model` is compiled but has not trained yet: call model.fit(x_train, y_train, ...)"
        )
    expect_input_shape(model, (28, 28, 3), name="model")
    _expect_source_features(model, trained=True)
    expect_trainable(model, trainable=[head_layer(model).name], name="model")

    x_test, y_test = data.load("fashion_mnist", classes=list(TARGET_CLASSES_01)).arrays("test")
    expect_accuracy(model, x_test, y_test, at_least=AT_LEAST_01, name="model")
    return f"model reaches ≥ {AT_LEAST_01:.0%} on the {len(y_test)} held-out test images of classes 5–9"
