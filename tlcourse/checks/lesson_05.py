"""Checks of lesson 05."""

from __future__ import annotations

import numpy as np

from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    count_params,
    expect_from_logits,
    expect_input_shape,
    expect_logits,
    expect_model,
    expect_output_shape,
    expect_trainable,
    head_layer,
    trainable_by_layer,
    walk_layers,
)


def _same(a, b) -> bool:

    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-5 * (1 + float(np.abs(b).max())))


@register("05.1")
def check_05_1(fixed_model, base) -> str:
    """Raw [0, 255] pixels go through the base's own preprocessing exactly once, then a logits head."""

    expect_model(fixed_model, name="fixed_model")
    shape = tuple(base.inputs[0].shape[1:])
    expect_input_shape(fixed_model, shape, name="fixed_model")
    outputs = expect_output_shape(fixed_model, shape, 5, name="fixed_model")
    expect_logits(fixed_model, outputs, name="fixed_model")
    if not any(layer is base for layer in walk_layers(fixed_model)):
        raise CheckFailed("`fixed_model` does not use `base`: call base(...) inside it, then the Dense head")
    head = head_layer(fixed_model)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, *shape)).astype("float32")
    for scale, hint in (
        (1.0, None),
        (
            1 / 255,
            "the pixels are divided by 255 before the base, which divides them by 255 again (its layer "
            "'rescale'): the base sees almost black images. Remove your Rescaling and feed raw [0, 255] pixels",
        ),
        (
            255.0,
            "the pixels are multiplied by 255 before the base: it expects raw [0, 255] pixels as they come, "
            "so remove the extra scaling",
        ),
    ):
        if _same(outputs, head(base(x * scale, training=False))):
            if hint:
                raise CheckFailed(hint)
            return "fixed_model: raw [0, 255] pixels → base (which rescales them itself, once) → 5 logits"
    raise CheckFailed(
        "`fixed_model`'s logits are not head(base(raw pixels)): feed the images to `base` unchanged, its "
        "preprocessing is inside it"
    )


@register("05.2")
def check_05_2(head_model) -> str:
    """The logits head compiled with a cross-entropy that knows it gets logits (course convention)."""

    expect_model(head_model, name="head_model")
    width = int(head_model.inputs[0].shape[-1])
    outputs = np.asarray(head_model(np.random.default_rng(0).normal(size=(2, width)).astype("float32")))
    expect_logits(head_model, outputs, name="head_model")
    if not getattr(head_model, "compiled", False):
        raise CheckFailed("`head_model` is not compiled: call head_model.compile(optimizer=..., loss=...)")
    loss = head_model.loss
    kind = type(loss).__name__
    if not isinstance(loss, str) and kind not in ("SparseCategoricalCrossentropy", "function"):
        raise CheckFailed(
            f"{kind} does not fit class-id labels (0, 1, 2, …) and one logit per class: use "
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
        )
    if kind == "function":
        raise CheckFailed(
            "`head_model` was compiled with a loss function, which cannot be told about logits: pass "
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
        )
    expect_from_logits(head_model, name="head_model")
    return "head_model outputs logits and its loss is SparseCategoricalCrossentropy(from_logits=True)"


@register("05.3")
def check_05_3(classifier) -> str:
    """Only the head of the classifier is trainable: the base (every layer of it) is frozen."""
    expect_model(classifier, name="classifier")
    head = head_layer(classifier)
    trainable = trainable_by_layer(classifier)
    total = classifier.count_params()
    if not trainable:
        raise CheckFailed(
            f"nothing in `classifier` is trainable (0 of {total:,} parameters): you froze the head too. "
            "Freeze only the base (base.trainable = False) and leave the head trainable"
        )
    in_base = [name for name in trainable if name != head.name]
    if in_base:
        weighted = [
            layer.name
            for layer in walk_layers(classifier)
            if not getattr(layer, "layers", None) and layer.weights and layer.name != head.name
        ]
        count = count_params(classifier.trainable_weights)
        if len(in_base) == len(weighted):
            raise CheckFailed(
                f"{count:,} of {total:,} parameters of `classifier` are trainable: the whole base still trains "
                "with the new head. Set base.trainable = False (then compile)"
            )
        raise CheckFailed(
            f"layer(s) {', '.join(repr(n) for n in in_base[:3])} of the base are still trainable: freeze the "
            "whole base (base.trainable = False), not just some of its layers"
        )
    if head.name not in trainable:
        raise CheckFailed(f"the head '{head.name}' is frozen: leave it trainable")
    expect_trainable(classifier, trainable=[head.name], name="classifier")
    if not getattr(classifier, "compiled", False):
        raise CheckFailed("only the head is trainable now, but `classifier` is not compiled: compile it")
    return (
        f"only the head trains: {count_params(classifier.trainable_weights):,} of {total:,} parameters are "
        "trainable, the base is frozen"
    )


_SCORES_05 = (
    {
        "lr=1e-2": {"val": 0.80, "test": 0.88},
        "lr=1e-3": {"val": 0.86, "test": 0.82},
        "lr=1e-4": {"val": 0.74, "test": 0.76},
    },
    {
        "linear": {"val": 0.71, "test": 0.69},
        "mlp": {"val": 0.77, "test": 0.72},
        "mlp+dropout": {"val": 0.75, "test": 0.79},
        "mlp+augment": {"val": 0.66, "test": 0.70},
    },
)


@register("05.4")
def check_05_4(pick_best) -> str:
    """pick_best(scores) chooses by validation accuracy and reports the chosen config's test accuracy."""
    if not callable(pick_best):
        raise CheckFailed("`pick_best` should be a function: def pick_best(scores): ...")
    for scores in _SCORES_05:
        returned = pick_best({name: dict(row) for name, row in scores.items()})
        if not isinstance(returned, (tuple, list)) or len(returned) != 2:
            raise CheckFailed(
                f"pick_best returned {type(returned).__name__} {returned!r}: return a pair (name, test accuracy)"
            )
        name, reported = returned
        if name not in scores:
            raise CheckFailed(f"pick_best chose {name!r}, which is not one of the configurations in `scores`")
        by_val = max(scores, key=lambda key: scores[key]["val"])
        by_test = max(scores, key=lambda key: scores[key]["test"])
        if name == by_test and name != by_val:
            raise CheckFailed(
                f"pick_best chose {name!r}, the best on the TEST set: choose by validation accuracy, the test "
                "set must not influence any choice"
            )
        if name == min(scores, key=lambda key: scores[key]["val"]):
            raise CheckFailed(f"pick_best chose {name!r}, the WORST on validation: take the highest accuracy")
        if name != by_val:
            raise CheckFailed(
                f"pick_best chose {name!r}; the best validation accuracy is {by_val!r}'s: choose by 'val' alone"
            )
        try:
            reported = float(reported)
        except (TypeError, ValueError):
            raise CheckFailed(
                f"pick_best returned {reported!r} as the accuracy: return the chosen one's test accuracy (a number)"
            ) from None
        if reported == scores[name]["val"]:
            raise CheckFailed(
                "pick_best reports the validation accuracy of its choice: that score helped choose it, so it is "
                "optimistic. Report the chosen configuration's TEST accuracy"
            )
        if reported != scores[name]["test"]:
            raise CheckFailed(
                f"pick_best reports {reported:g}, not the test accuracy of {name!r}: report "
                "scores[chosen]['test']"
            )
    return "pick_best chooses on validation and reports the chosen configuration's test accuracy once"
