"""Checks of lesson 06."""

from __future__ import annotations

import keras
import numpy as np

from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import expect_gradient_reversal, expect_model
from tlcourse.introspect import batchnorm_layers


def _reference_coral(source, target) -> float:

    def covariance(x):
        centred = x - x.mean(axis=0, keepdims=True)
        return centred.T @ centred / (len(x) - 1)

    d = source.shape[1]
    return float(np.sum(np.square(covariance(source) - covariance(target))) / (4.0 * d * d))


def _as_float(value, what: str) -> float:

    if value is None:
        raise CheckFailed(f"{what} returned None: did you forget `return`?")
    try:
        array = np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} should return one number, got a {type(value).__name__}") from None
    if array.size != 1:
        raise CheckFailed(f"{what} should return one number (a scalar), got shape {array.shape}")
    return float(array.reshape(()))


@register("06.1")
def check_06_1(GradientReversal) -> str:  # noqa: N803 — the answer is a class
    """A gradient reversal layer: identity forward, −λ × the gradient backward, λ set at construction."""

    if not isinstance(GradientReversal, type) or not issubclass(GradientReversal, keras.layers.Layer):
        raise CheckFailed(
            "`GradientReversal` should be a class: class GradientReversal(keras.layers.Layer): ..."
        )
    for lambda_ in (0.5, 2.0):
        try:
            layer = GradientReversal(lambda_=lambda_)
        except (TypeError, ValueError) as exc:
            raise CheckFailed(
                f"GradientReversal(lambda_={lambda_}) failed ({exc}): accept lambda_ in __init__ and pass "
                "**kwargs on to super().__init__"
            ) from None
        expect_gradient_reversal(layer, factor=lambda_, name=f"GradientReversal(lambda_={lambda_})")
    return "GradientReversal is the identity forward and multiplies gradients by −λ (λ = 0.5 and 2)"


@register("06.2")
def check_06_2(coral_loss) -> str:
    """The CORAL loss: ||C_s − C_t||²_F / (4 d²), 0 for identical covariances, growing with the gap."""

    if not callable(coral_loss):
        raise CheckFailed(
            "`coral_loss` should be a function: def coral_loss(source_features, target_features): ..."
        )
    rng = np.random.default_rng(6)
    source = rng.normal(size=(64, 8)).astype("float32")
    target = (rng.normal(size=(48, 8)) * np.linspace(0.5, 2.0, 8) + 0.3).astype("float32")
    value = _as_float(coral_loss(source, target), "coral_loss")
    expected = _reference_coral(source.astype("float64"), target.astype("float64"))
    if not np.isclose(value, expected, rtol=1e-3, atol=1e-7):
        d = source.shape[1]
        if np.isclose(value, expected * 4 * d * d, rtol=1e-3):
            raise CheckFailed("coral_loss is 4·d² times too large: divide the squared Frobenius norm by 4 d²")
        if np.isclose(value, np.sqrt(expected * 4 * d * d) / (4 * d * d), rtol=1e-3):
            raise CheckFailed("coral_loss forgot to square: sum the *squared* differences of the covariances")
        if np.isclose(value, _uncentred_coral(source, target), rtol=1e-3):
            raise CheckFailed(
                "coral_loss does not centre the features: subtract each feature's mean before x.T @ x"
            )
        raise CheckFailed(
            f"coral_loss gives {value:.4g} where the reference gives {expected:.4g} on random features: "
            "C = (x − mean)ᵀ(x − mean) / (n − 1) per domain, then sum((C_s − C_t)²) / (4 d²)"
        )
    shifted = _as_float(coral_loss(source, source + 5.0), "coral_loss")
    if abs(shifted) > 1e-6:
        raise CheckFailed(
            "coral_loss is not 0 for two domains with the same covariance (only the means differ): "
            "centre each domain's features before computing its covariance"
        )
    closer = _as_float(coral_loss(source, 1.5 * source), "coral_loss")
    further = _as_float(coral_loss(source, 3.0 * source), "coral_loss")
    if not 0 < closer < further:
        raise CheckFailed("coral_loss should grow as the covariances move apart (try x vs 1.5·x and 3·x)")
    return "coral_loss matches the reference, is 0 for equal covariances and grows with the gap"


def _uncentred_coral(source, target) -> float:

    d = source.shape[1]
    cs = source.T.astype("float64") @ source / (len(source) - 1)
    ct = target.T.astype("float64") @ target / (len(target) - 1)
    return float(np.sum(np.square(cs - ct)) / (4.0 * d * d))


def _target_statistics(model, images, *, batch_size: int = 512) -> list:
    """Each BN layer's (mean, variance) over ``images`` once the layers before it hold the target's,
    measured on a copy of ``model`` (the reference for 06.3; ``model`` is left untouched)."""

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    layers = batchnorm_layers(copy)
    seen = 0
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], dtype="float32")
        for layer in layers:
            layer.momentum = seen / (seen + len(batch))  # stored := the running average over all images
        copy(batch, training=True)
        seen += len(batch)
    return [(np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)) for layer in layers]


@register("06.3")
def check_06_3(adapted, source_model, x_target) -> str:
    """AdaBN: a copy of the source model whose BN layers hold the target's statistics; original untouched."""

    expect_model(adapted, name="adapted")
    expect_model(source_model, name="source_model")
    if adapted is source_model:
        raise CheckFailed(
            "`adapted` is `source_model` itself: adapt a copy (keras.models.clone_model + set_weights) so "
            "that the source model keeps its own statistics"
        )
    mine = batchnorm_layers(adapted)
    original = batchnorm_layers(source_model)
    if not original:
        raise CheckFailed(
            "`source_model` has no BatchNormalization layer: use the model built in the notebook"
        )
    if len(mine) != len(original):
        raise CheckFailed(
            f"`adapted` has {len(mine)} BatchNormalization layers, `source_model` {len(original)}: copy the model"
        )
    images = np.asarray(x_target)
    source_stats = [np.asarray(layer.moving_mean) for layer in original]
    target_stats = _target_statistics(source_model, images)
    for index, ((mean, variance), layer) in enumerate(zip(target_stats, mine, strict=True), start=1):
        got_mean, got_variance = np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)
        scale = np.abs(mean).max() + 1e-3
        if np.allclose(got_mean, mean, atol=0.02 * scale) and np.allclose(
            got_variance, variance, rtol=0.05, atol=1e-4
        ):
            continue
        if np.allclose(got_mean, source_stats[index - 1], atol=1e-6):
            raise CheckFailed(
                f"BatchNorm layer {index} of `adapted` still holds the source's statistics: pass x_target "
                "through the copy with training=True, batch by batch, after setting every BN layer's momentum"
            )
        raise CheckFailed(
            f"BatchNorm layer {index} of `adapted` does not hold the target's statistics: pass ALL of x_target "
            "through the copy with training=True, and before each batch set every BN layer's momentum to "
            "seen / (seen + batch size) (momentum 0 on every batch keeps only the last batch)"
        )
    return f"`adapted` holds the target's statistics in its {len(mine)} BatchNorm layers"


@register("06.4")
def check_06_4(confident_pseudo_labels) -> str:
    """Pseudo-labels: softmax confidence ≥ threshold keeps an example; labels are the arg-max."""

    if not callable(confident_pseudo_labels):
        raise CheckFailed(
            "`confident_pseudo_labels` should be a function: def confident_pseudo_labels(logits, threshold): ..."
        )
    logits = np.array(
        [
            [4.0, 0.0, 0.0],
            [0.2, 0.0, 0.1],
            [0.0, 3.0, 0.0],
            [1.0, 0.95, 0.9],
            [1.0, 1.0, 5.0],
            [0.0, 0.5, 2.5],
        ],
        dtype="float32",
    )
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    threshold = 0.9
    expected_mask = probabilities.max(axis=1) >= threshold
    expected_labels = probabilities.argmax(axis=1)[expected_mask]
    returned = confident_pseudo_labels(logits, threshold)
    if returned is None:
        raise CheckFailed("confident_pseudo_labels returned None: return (mask, labels)")
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise CheckFailed("confident_pseudo_labels should return two things: (mask, labels)")
    mask, labels = (np.asarray(part) for part in returned)
    if mask.shape != (len(logits),):
        raise CheckFailed(
            f"the mask should have one entry per example ({len(logits)}), got shape {mask.shape}"
        )
    mask = mask.astype(bool)
    if not np.array_equal(mask, expected_mask):
        if np.array_equal(mask, logits.max(axis=1) >= threshold):
            raise CheckFailed(
                "the mask compares raw logits with the threshold: turn the logits into probabilities "
                "(softmax) first; the threshold is a probability"
            )
        if mask.all():
            raise CheckFailed(
                "the mask keeps every example: keep only those whose top probability ≥ threshold"
            )
        raise CheckFailed(
            "the mask keeps the wrong examples: keep those whose largest softmax probability is ≥ threshold"
        )
    if labels.shape == (len(logits),):
        raise CheckFailed("labels should hold only the kept examples' labels (apply the mask)")
    if not np.array_equal(labels.reshape(-1), expected_labels):
        raise CheckFailed("the labels are not the kept examples' arg-max classes")
    return (
        "confident_pseudo_labels keeps the examples with softmax confidence ≥ threshold, labelled by arg-max"
    )
