"""Checks of lesson 02."""

from __future__ import annotations

import difflib

import numpy as np

from tlcourse import data, models
from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import ints_like, shape_text

SETTINGS_02 = {
    1: (
        "inductive",
        "the target classes (12 products) are not ImageNet's, and the target photos are labelled",
    ),
    2: (
        "transductive",
        "the task (find pedestrians) stays, the images look different, and no night image is labelled",
    ),
    3: (
        "inductive",
        "two new tasks (make and colour) are learned together, with labels for both: multi-task",
    ),
    4: (
        "unsupervised",
        "there are no labels anywhere, and the target task (grouping into clusters) needs none",
    ),
    5: (
        "transductive",
        "the task (transcribe speech) stays, the recordings sound different, and none is transcribed",
    ),
    6: ("inductive", "new classes (sandal … ankle boot) with 10 labelled images each: a new, labelled task"),
}
"""Lesson 02's exercise scenarios: the setting and the facts that decide it."""
_SETTING_CHOICES = ("inductive", "transductive", "unsupervised")
_SOURCE_CLASSES_02 = (0, 1, 2, 3, 4)


@register("02.1")
def check_02_1(settings) -> str:
    """Each scenario placed in Pan & Yang's table."""

    if not isinstance(settings, dict):
        raise CheckFailed(
            f"`settings` is a {type(settings).__name__}: make it a dict {{scenario number: setting}}, "
            "e.g. {1: 'inductive', 2: 'transductive', ...}"
        )
    answers = {}
    for key, value in settings.items():
        number = ints_like(key) if not isinstance(key, str) else (int(key) if key.strip().isdigit() else None)
        if number not in SETTINGS_02:
            raise CheckFailed(f"{key!r} is not a scenario number: use the numbers 1 to {len(SETTINGS_02)}")
        answers[number] = value.strip().lower() if isinstance(value, str) else value
    for number in SETTINGS_02:
        if number not in answers:
            raise CheckFailed(
                f"scenario {number} has no answer yet: add {number}: 'inductive', 'transductive' or 'unsupervised'"
            )
        given = answers[number]
        if given not in _SETTING_CHOICES:
            close = difflib.get_close_matches(str(given), _SETTING_CHOICES, n=1)
            suggestion = (
                f"did you mean {close[0]!r}?"
                if close
                else "use 'inductive', 'transductive' or 'unsupervised'"
            )
            raise CheckFailed(f"scenario {number}: {given!r} is not a setting: {suggestion}")
    for number, (correct, facts) in SETTINGS_02.items():
        if answers[number] != correct:
            raise CheckFailed(
                f"scenario {number} is not {answers[number]}. Apply the rule — a new task with target labels: "
                f"inductive; same task, new domain, no target labels: transductive; no labels at all: "
                f"unsupervised. Here: {facts}"
            )
    return f"all {len(SETTINGS_02)} scenarios are in the right setting"


def _test_accuracy(model, bundle, split: str = "test") -> float:

    x, y = bundle.arrays(split)
    return float(np.mean(np.asarray(model.predict(x, batch_size=256, verbose=0)).argmax(axis=1) == y))


def _one_number(value, *, what: str) -> float:

    if value is None:
        raise CheckFailed(f"{what} returned None: did you forget `return`?")
    if isinstance(value, (list, tuple, dict)) or (isinstance(value, np.ndarray) and value.size != 1):
        raise CheckFailed(
            f"{what} returned a {type(value).__name__}: return one number, the source accuracy minus the "
            "target accuracy"
        )
    try:
        return float(np.asarray(value).reshape(-1)[0]) if isinstance(value, np.ndarray) else float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} returned a {type(value).__name__}: return one number (a float)") from None


@register("02.2")
def check_02_2(domain_gap) -> str:
    """A function measuring a model's domain gap: source minus target accuracy on the test split."""
    if not callable(domain_gap):
        raise CheckFailed("`domain_gap` should be a function: def domain_gap(model, source, target): ...")

    model = models.source_model(classes=_SOURCE_CLASSES_02, progress=False)
    source = data.load("fashion_mnist", classes=list(_SOURCE_CLASSES_02))
    target = data.load("fashion_mnist_m", classes=list(_SOURCE_CLASSES_02))
    expected = _test_accuracy(model, source) - _test_accuracy(model, target)
    gap = _one_number(domain_gap(model, source, target), what="domain_gap")

    def near(value):
        return abs(gap - value) <= 1e-3

    if not near(expected):
        if near(-expected):
            raise CheckFailed(
                "domain_gap has the wrong sign: return the source accuracy minus the target accuracy (a positive "
                "gap means the model does worse on the target domain)"
            )
        if near(100 * expected):
            raise CheckFailed(
                "domain_gap returned points (e.g. 25.0): return a fraction (0.25), like the accuracies"
            )
        for split in ("train", "val"):
            if near(_test_accuracy(model, source, split) - _test_accuracy(model, target, split)):
                raise CheckFailed(
                    f"domain_gap measured on the {split} split: use the held-out test split, bundle.arrays('test')"
                )
        raise CheckFailed(
            "domain_gap's result is not the source test accuracy minus the target test accuracy the check "
            "measured: accuracy = mean(argmax(model.predict(x), axis=1) == y) on each bundle's 'test' split"
        )
    swapped = _one_number(domain_gap(model, target, source), what="domain_gap")
    if abs(swapped + expected) > 1e-3:
        raise CheckFailed(
            "domain_gap gives the wrong number when source and target are swapped: compute it from the model "
            "and the two bundles it is given, not from values measured elsewhere"
        )
    return "domain_gap = source − target accuracy on the test split (checked both ways round)"


@register("02.3")
def check_02_3(blend) -> str:
    """The MNIST-M recipe for one image: |patch − image| per pixel and channel, uint8."""

    if not callable(blend):
        raise CheckFailed("`blend` should be a function: def blend(image, patch): ...")
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(28, 28, 3), dtype=np.uint8)
    patch = rng.integers(0, 256, size=(28, 28, 3), dtype=np.uint8)
    image_before, patch_before = image.copy(), patch.copy()
    returned = blend(image, patch)
    if returned is None:
        raise CheckFailed("blend returned None: did you forget `return`?")
    if not (np.array_equal(image, image_before) and np.array_equal(patch, patch_before)):
        raise CheckFailed(
            "blend changed the image or the patch it was given: compute a new array and return it"
        )
    out = np.asarray(returned)
    if out.shape != image.shape:
        raise CheckFailed(
            f"blend returned shape {shape_text(out.shape)} for a 28×28×3 image and patch: return one value per "
            "pixel and channel"
        )
    wide_image, wide_patch = image.astype(np.int64), patch.astype(np.int64)
    expected = np.abs(wide_patch - wide_image)
    if np.array_equal(out.astype(np.int64), expected):
        if out.dtype != np.uint8:
            raise CheckFailed(
                f"blend's values are right but its dtype is {out.dtype}: return uint8 (.astype(np.uint8)), "
                "the images' own type"
            )
        return "blend computes |patch − image| per pixel and channel, as uint8 (the MNIST-M recipe)"
    if np.array_equal(out, patch - image) or np.array_equal(out, image - patch):
        raise CheckFailed(
            "blend subtracts in uint8, which wraps around (3 − 5 gives 254): convert to a signed type first "
            "(.astype(np.int16)), take np.abs, then convert back to uint8"
        )
    if np.array_equal(out.astype(np.int64), wide_patch - wide_image) or np.array_equal(
        out.astype(np.int64), wide_image - wide_patch
    ):
        raise CheckFailed("blend returns negative differences: take the absolute value, |patch − image|")
    if np.allclose(out.astype(np.float64), (wide_patch + wide_image) / 2, atol=1):
        raise CheckFailed(
            "blend averages the image and the patch: the recipe is the absolute difference |patch − image|"
        )
    raise CheckFailed("blend does not compute |patch − image| for every pixel and channel")
