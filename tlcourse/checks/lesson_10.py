"""Checks of lesson 10."""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    call_model,
    call_model_in_chunks,
    count_params,
    expect_accuracy,
    expect_batchnorm_frozen,
    expect_from_logits,
    expect_input_shape,
    expect_logits,
    expect_model,
    expect_output_shape,
    expect_preprocessing,
    shape_text,
    walk_layers,
)
from tlcourse.introspect import is_batchnorm

AT_LEAST_10 = 0.80  # validation accuracy of the head and of the fine-tuned model (chance: 1/3 on beans)
MAX_FINE_TUNE_LR_10 = 5e-4
_CONV_TYPES_10 = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D"}
_MIN_BASE_CONVS_10 = 10  # EfficientNet-Lite0 has 49; a small CNN from scratch has 3


def _image_hashes_10(images) -> list[bytes]:
    """One digest per image, on its pixels rounded to uint8 (float copies of the same image match)."""

    x = np.asarray(images)
    if x.dtype != np.uint8:
        # Round half up in float32: several times faster than np.round in float64 over every pixel of a split,
        # and the same bytes for the float copies of uint8 pixels this compares.
        x = (np.clip(x.astype(np.float32, copy=False), 0, 255) + np.float32(0.5)).astype(np.uint8)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x.reshape(len(x), -1)]


def _read_batches_10(ds, name: str, split: str, data) -> tuple:
    """All (images, labels) of a batched dataset answer, checked on the way: (x, y, first batch size)."""

    if not isinstance(ds, tf.data.Dataset):
        raise CheckFailed(
            f"`{name}` is a {type(ds).__name__}, not a tf.data.Dataset: read folder / '{split}' with "
            "keras.utils.image_dataset_from_directory"
        )
    spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise CheckFailed(f"`{name}` should yield (images, labels) pairs: keep data.{split}'s two parts")
    x_spec, y_spec = spec
    if x_spec.shape.rank == 3:
        raise CheckFailed(f"`{name}` yields single images, not batches: add .batch(budget.batch_size)")
    if x_spec.shape.rank != 4:
        raise CheckFailed(
            f"`{name}` yields images of rank {x_spec.shape.rank}: expected batches of shape "
            "(batch, height, width, 3); batch once"
        )
    if y_spec.shape.rank == 2 and (y_spec.shape[-1] or 0) > 1:
        raise CheckFailed(
            f"`{name}` yields one-hot labels: keep integer class ids (the loss is "
            "SparseCategoricalCrossentropy(from_logits=True))"
        )
    limit = 2 * data.sizes[split] + 1024
    xs, ys, count = [], [], 0
    for x, y in ds.as_numpy_iterator():
        xs.append(x)
        ys.append(y)
        count += len(x)
        if count > limit:
            raise CheckFailed(
                f"`{name}` yields more than twice the {split} split in one pass: remove .repeat() "
                "(Keras starts a new pass each epoch)"
            )
    if not xs:
        raise CheckFailed(f"`{name}` is empty: build it from data.{split}")
    x, y = np.concatenate(xs), np.concatenate(ys)
    expected = tuple(data.image_shape)
    if tuple(x.shape[1:]) != expected:
        raise CheckFailed(
            f"`{name}`'s images have shape {shape_text(x.shape[1:])}, the model takes "
            f"{shape_text(expected)}: keep data.{split}'s images as they are (data was loaded at IMAGE_SIZE)"
        )
    return x, y, len(xs[0])


@register("10.1")
def check_10_1(train_ds, val_ds, data) -> str:
    """Batched train/val pipelines: shapes, pixel range, integer labels, a new order every pass, no test image."""

    hashes = {split: _image_hashes_10(data.arrays(split)[0]) for split in ("train", "val", "test")}
    test, val = set(hashes["test"]), set(hashes["val"])
    if train_ds is val_ds:
        raise CheckFailed("`train_ds` and `val_ds` are the same dataset: build val_ds from data.val")
    batch_sizes = {}
    for name, ds, split in (("train_ds", train_ds, "train"), ("val_ds", val_ds, "val")):
        x, y, batch_sizes[name] = _read_batches_10(ds, name, split, data)
        if x.min() < 0:
            raise CheckFailed(
                f"`{name}`'s pixels go below 0: they were normalised; keep raw [0, 255] pixels, the base "
                "preprocesses its input itself"
            )
        if x.max() <= 1.0:
            raise CheckFailed(
                f"`{name}`'s pixels are in [0, 1]: keep them in [0, 255], the base preprocesses its input "
                "itself (dividing by 255 here would preprocess twice)"
            )
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= data.num_classes:
            raise CheckFailed(
                f"`{name}`'s labels should be integer class ids 0…{data.num_classes - 1}: keep data.{split}'s labels"
            )
        if batch_sizes[name] < 2:
            raise CheckFailed(f"`{name}` has batches of 1 image: batch with .batch(budget.batch_size)")
        seen = _image_hashes_10(x)
        leaked = sum(h in test for h in seen)
        if leaked:
            raise CheckFailed(
                f"`{name}` contains {leaked} image(s) of the test split: build it from data.{split}; the test "
                "split is only for the final evaluation"
            )
        if split == "train" and any(h in val for h in seen):
            raise CheckFailed(
                "`train_ds` contains validation images: build it from data.train only, so validation stays "
                "held out"
            )
        own = set(hashes[split])
        labels_of = dict(zip(hashes[split], data.arrays(split)[1].tolist(), strict=True))
        wrong = sum(
            labels_of[h] != label for h, label in zip(seen, y.tolist(), strict=True) if h in labels_of
        )
        if wrong:
            raise CheckFailed(
                f"{wrong} of `{name}`'s labels differ from the class the image's folder names: the sub-folders "
                "are labelled in alphabetical order by default; pass class_names=data.class_names"
            )
        if not any(h in own for h in seen):
            raise CheckFailed(
                f"no image of `{name}` is one of data.{split}'s: build it from data.{split}, without augmentation "
                "or other changes to the pixels"
            )
        changed = sum(h not in own for h in seen)
        if changed:
            raise CheckFailed(
                f"{changed} of `{name}`'s images differ from data.{split}'s pixels: read them at IMAGE_SIZE, and "
                "write a folder with keras.utils.save_img(..., scale=False) (scale=True stretches each image's "
                "contrast)"
            )
        if len(seen) != data.sizes[split]:
            raise CheckFailed(
                f"`{name}` yields {len(seen)} images per pass, the {split} split has {data.sizes[split]}: use "
                "each image once (no .take(), .skip() or filter), and read a .cache() of single images once "
                "completely before any partial read such as next(iter(...)): one stopped early can leave it "
                "truncated"
            )
        if split == "train" and seen == hashes["train"]:
            raise CheckFailed(
                "`train_ds` is not shuffled: add .shuffle(data.sizes['train']) before .batch(...) so each "
                "epoch sees the images in a new order"
            )
        if split == "train" and _image_hashes_10(_read_batches_10(ds, name, split, data)[0]) == seen:
            raise CheckFailed(
                "`train_ds` gives the same order in every pass, so every epoch replays the first one's batches: "
                "a .cache() after the shuffle stores that order. Cache single decoded images first "
                "(image_dataset_from_directory(..., batch_size=None)), then .shuffle(...), .batch(...)"
            )
    return (
        f"train_ds and val_ds: batches of {batch_sizes['train_ds']} images "
        f"{shape_text(data.image_shape)} in [0, 255] with integer labels, train in a new order every pass, "
        "no test image"
    )


def _base_layers_10(model) -> tuple[list, list]:
    """(convolution layers, BatchNormalization layers) inside the model, nested ones included."""
    leaves = [layer for layer in walk_layers(model) if not getattr(layer, "layers", None)]
    convs = [layer for layer in leaves if type(layer).__name__ in _CONV_TYPES_10]
    norms = [layer for layer in leaves if is_batchnorm(layer)]
    return convs, norms


def _expect_pretrained_base_10(model, name: str = "model") -> list:
    convs, _ = _base_layers_10(model)
    if len(convs) < _MIN_BASE_CONVS_10:
        raise CheckFailed(
            f"`{name}` has {len(convs)} convolution layer(s): it should contain the pretrained base, "
            "tlcourse.models.backbone('efficientnet_lite0', input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))"
        )
    expect_preprocessing(model)
    return convs


def _expect_base_frozen_10(model, name: str = "model") -> int:
    """Fail unless only the head learns; returns the number of trainable parameters."""
    convs, norms = _base_layers_10(model)
    learning = [layer.name for layer in convs + norms if layer.trainable_weights]
    if learning:
        raise CheckFailed(
            f"{len(learning)} layer(s) of the base are trainable (e.g. '{learning[0]}'): freeze the base with "
            "base.trainable = False while the head learns"
        )
    trainable = count_params(model.trainable_weights)
    if trainable == 0:
        raise CheckFailed(
            f"`{name}` has no trainable weight: freeze the base only (base.trainable = False), not the whole "
            "model, so the head can learn"
        )
    return trainable


def _expect_trained_10(model, name: str) -> None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or int(optimizer.iterations) == 0:
        raise CheckFailed(
            f"`{name}` has not been trained since it was last compiled: compile it, then "
            f"{name}.fit(train_ds, validation_data=val_ds, epochs=...)"
        )


def _expect_image_classifier_10(model, data, name: str) -> None:
    """A Keras model taking the data's images and giving one logit per class."""
    expect_model(model, name=name)
    shape = tuple(data.image_shape)
    expect_input_shape(model, shape, name=name)
    expect_logits(model, expect_output_shape(model, shape, data.num_classes, name=name), name=name)


@register("10.2")
def check_10_2(baseline, data) -> str:
    """A CNN trained from random weights (no pretrained base), better than chance on validation."""
    _expect_image_classifier_10(baseline, data, "baseline")
    convs, _ = _base_layers_10(baseline)
    if not convs:
        raise CheckFailed("`baseline` has no convolution layer: build a small CNN (Conv2D + pooling blocks)")
    if len(convs) >= _MIN_BASE_CONVS_10:
        raise CheckFailed(
            f"`baseline` has {len(convs)} convolution layers, like the pretrained base: the baseline is a small CNN "
            "trained from random weights (three Conv2D blocks are enough), so it says what transfer buys"
        )
    frozen = count_params(baseline.non_trainable_weights) - sum(
        count_params(layer.non_trainable_weights) for layer in walk_layers(baseline) if is_batchnorm(layer)
    )
    if frozen > 0:
        raise CheckFailed(
            f"{frozen:,} weights of `baseline` are frozen: a model from scratch learns all its weights"
        )
    expect_from_logits(baseline, name="baseline")
    _expect_trained_10(baseline, "baseline")
    chance = 1 / data.num_classes
    accuracy = _accuracy_10(baseline, data, "val")
    if accuracy < 1.5 * chance:
        raise CheckFailed(
            f"`baseline`'s validation accuracy is {accuracy:.2f}, chance is {chance:.2f}: train it longer (epochs = "
            "budget.epochs + budget.fine_tune_epochs) with Adam at 1e-3, and keep Rescaling(1 / 255) at its input"
        )
    return f"baseline: a CNN from scratch, validation accuracy {accuracy:.2f} (chance {chance:.2f})"


def _chunk_10(data) -> int:
    """Images per direct call: about 4 M input numbers (256 images at 64 px, 27 at 224 px). A direct call's
    cost is mostly per call (each layer runs eagerly), so few large calls beat many small ones."""
    shape = getattr(data, "image_shape", None)
    if not shape or None in shape:
        return 32
    return int(np.clip((1 << 22) // int(np.prod(shape)), 16, 256))


def _logits_10(model, data, split: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = data.arrays(split)
    return call_model_in_chunks(model, x, _chunk_10(data)), y


def _accuracy_10(model, data, split: str) -> float:
    predictions, y = _logits_10(model, data, split)
    return float(np.mean(predictions.argmax(axis=1) == y))


@register("10.3")
def check_10_3(extraction, data) -> str:
    """A pretrained base (frozen) + a head with one logit per class, trained to AT_LEAST_10 on validation."""
    _expect_image_classifier_10(extraction, data, "extraction")
    _expect_pretrained_base_10(extraction, "extraction")
    head = _expect_base_frozen_10(extraction, "extraction")
    expect_from_logits(extraction, name="extraction")
    expect_accuracy(extraction, _val_batches_10(data), at_least=AT_LEAST_10, name="extraction")
    return (
        f"extraction: frozen pretrained base + a head of {head:,} trainable parameters, validation accuracy "
        f"≥ {AT_LEAST_10:.2f}; loss from logits"
    )


def _val_batches_10(data):
    return data.batches("val", batch_size=_chunk_10(data), shuffle=False)


def _largest_learning_rate_10(optimizer) -> float:

    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        steps = np.unique(np.linspace(0, max(int(optimizer.iterations), 1), 21).astype(int))
        return max(float(keras.ops.convert_to_numpy(schedule(int(step)))) for step in steps)
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


@register("10.4")
def check_10_4(fine_tuned, extraction, data) -> str:
    """A second model: augmentation, top layers of the base trainable, BatchNorm frozen, small rate, trained."""
    expect_model(fine_tuned, name="fine_tuned")
    if fine_tuned is extraction or _shares_weights_10(fine_tuned, extraction):
        raise CheckFailed(
            "`fine_tuned` shares its weights with `extraction`: build it on a fresh copy of the base, "
            "tlcourse.models.backbone(...) again, so the extraction model stays a candidate to compare"
        )
    model = fine_tuned
    convs = _expect_pretrained_base_10(model, "fine_tuned")
    norms = expect_batchnorm_frozen(model, name="fine_tuned")
    random_layers = [layer for layer in walk_layers(model) if type(layer).__name__.startswith("Random")]
    if not random_layers:
        raise CheckFailed(
            "`fine_tuned` has no augmentation layer: put e.g. keras.layers.RandomFlip('horizontal') and "
            "RandomRotation(0.1) between the input and the base (active only while training)"
        )
    learning = [i for i, layer in enumerate(convs) if layer.trainable_weights]
    if not learning:
        raise CheckFailed(
            "no layer of the base is trainable: set base.trainable = True, then trainable = False on all but the "
            "top 10 layers with weights (BatchNorm stays frozen), and compile again"
        )
    if len(learning) > len(convs) // 2:
        raise CheckFailed(
            f"{len(learning)} of the base's {len(convs)} convolution layers are trainable: unfreeze only the top "
            "ones (e.g. the last 10 with weights); the early layers' general features stay frozen"
        )
    if learning != list(range(len(convs) - len(learning), len(convs))):
        raise CheckFailed(
            f"trainable layer(s) such as '{convs[learning[0]].name}' are not at the top of the base: unfreeze the "
            "LAST layers of base.layers, the ones nearest the head"
        )
    expect_from_logits(model)
    optimizer = model.optimizer
    rate = _largest_learning_rate_10(optimizer)
    if rate > MAX_FINE_TUNE_LR_10:
        raise CheckFailed(
            f"the learning rate is {rate:.0e}: fine-tuning needs a small one (at most {MAX_FINE_TUNE_LR_10:.0e}, "
            "e.g. 1e-4) or the first updates wipe out the pretrained features; compile again"
        )
    if int(optimizer.iterations) == 0:
        raise CheckFailed(
            "`fine_tuned` has not been trained since it was last compiled: call fine_tuned.fit(train_ds, "
            "validation_data=val_ds, epochs=budget.fine_tune_epochs)"
        )
    updated = {variable.path for variable in getattr(optimizer, "_trainable_variables", None) or []}
    if updated:
        stale = [
            convs[i].name for i in learning if any(w.path not in updated for w in convs[i].trainable_weights)
        ]
        if stale:
            raise CheckFailed(
                f"the optimizer never updated the unfrozen layer(s) '{stale[0]}'…: a changed `trainable` takes "
                "effect at the next compile; call model.compile(...) after unfreezing, then model.fit(...)"
            )
    expect_accuracy(model, _val_batches_10(data), at_least=AT_LEAST_10, name="fine_tuned")
    return (
        f"{len(random_layers)} augmentation layer(s); top {len(learning)} convolution layers of the base fine-tuned, all {norms} BatchNorm layers frozen, "
        f"learning rate ≤ {MAX_FINE_TUNE_LR_10:.0e}, validation accuracy ≥ {AT_LEAST_10:.2f}"
    )


def _max_difference_10(a, b) -> float:

    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _shares_weights_10(a, b) -> bool:
    if not isinstance(b, keras.Model):
        return False
    mine = {id(w) for w in a.weights}
    return any(id(w) in mine for w in b.weights)


MODELS_10 = ("baseline", "extraction", "fine-tuned")
_TOLERANCE_10 = 0.02  # accuracies may be read from the last epoch's logs, or measured again


def _measured_10(models, data, split: str) -> dict[str, float]:
    return {name: _accuracy_10(model, data, split) for name, model in models.items()}


@register("10.5")
def check_10_5(val_acc, chosen, test_acc, baseline, extraction, fine_tuned, data) -> str:
    """The validation accuracies, the choice made on them, and the chosen model's test accuracy."""
    models = dict(zip(MODELS_10, (baseline, extraction, fine_tuned), strict=True))
    if not isinstance(val_acc, dict) or set(val_acc) != set(MODELS_10):
        raise CheckFailed(
            f"`val_acc` should be a dict with the keys {list(MODELS_10)}: one validation accuracy per candidate"
        )
    measured = _measured_10(models, data, "val")
    for name in MODELS_10:
        if not isinstance(val_acc[name], (int, float, np.floating)):
            raise CheckFailed(
                f"val_acc[{name!r}] is a {type(val_acc[name]).__name__}: give the accuracy as a number"
            )
        if abs(float(val_acc[name]) - measured[name]) > _TOLERANCE_10:
            raise CheckFailed(
                f"val_acc[{name!r}] is {float(val_acc[name]):.3f}, but that model's validation accuracy is "
                f"{measured[name]:.3f}: measure it on val_ds (model.evaluate or the last epoch's val_accuracy)"
            )
    if chosen not in MODELS_10:
        raise CheckFailed(f"`chosen` is {chosen!r}: name one of {list(MODELS_10)}")
    best = max(float(v) for v in val_acc.values())
    if float(val_acc[chosen]) < best - 1e-9:
        tested = _measured_10(models, data, "test")
        used_test = tested[chosen] == max(tested.values())
        raise CheckFailed(
            f"`chosen` is {chosen!r}, but {max(val_acc, key=val_acc.get)!r} has the higher validation accuracy"
            + (": it looks chosen on the test split, which then no longer measures the model honestly"
               if used_test else ": choose the best on validation")
        )  # fmt: skip
    if not isinstance(test_acc, (int, float, np.floating)):
        raise CheckFailed(
            f"`test_acc` is a {type(test_acc).__name__}: the chosen model's test accuracy, a number"
        )
    tested = {chosen: _accuracy_10(models[chosen], data, "test")}  # the others only to explain a mismatch
    if abs(float(test_acc) - tested[chosen]) > _TOLERANCE_10:
        tested = _measured_10(models, data, "test")
        other = [n for n in MODELS_10 if n != chosen and abs(float(test_acc) - tested[n]) <= _TOLERANCE_10]
        raise CheckFailed(
            f"`test_acc` is {float(test_acc):.3f}, the chosen model's test accuracy is not: "
            + (f"it is {other[0]!r}'s; " if other else "")
            + "evaluate the chosen model once on the test folder (shuffle=False), e.g. with .evaluate(test_ds)"
        )
    return f"chose {chosen!r} on validation ({float(val_acc[chosen]):.3f}); its test accuracy {tested[chosen]:.3f}"


_LOOKED_10 = (
    "grad-cam",
    "gradcam",
    "heat",
    "looked",
    "look at",
    "attention",
    "focus",
    "background",
    "region",
)


def _numbers_10(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


@register("10.6")
def check_10_6(analysis, chosen, baseline, extraction, fine_tuned, data) -> str:
    """An error analysis with substance: the mistake count or test accuracy, the confused classes, Grad-CAM."""
    if not isinstance(analysis, str):
        raise CheckFailed(f"`analysis` is a {type(analysis).__name__}: write your analysis as a string")
    words = analysis.split()
    if len(words) < 30:
        raise CheckFailed(
            f"`analysis` has {len(words)} words: write at least 30 — how many mistakes, which classes, what "
            "Grad-CAM showed, what you would change"
        )
    if chosen not in MODELS_10:
        raise CheckFailed(f"`chosen` is {chosen!r}: finish 10.5 first")
    model = dict(zip(MODELS_10, (baseline, extraction, fine_tuned), strict=True))[chosen]
    logits, y = _logits_10(model, data, "test")
    predicted = logits.argmax(axis=1)
    mistakes = int(np.sum(predicted != y))
    accuracy = 1 - mistakes / len(y)
    numbers = _numbers_10(analysis)
    facts = {mistakes, round(100 * accuracy), round(100 * accuracy, 1)}
    if not any(n in facts or abs(n - accuracy) < 0.006 for n in numbers):
        raise CheckFailed(
            "`analysis` does not state the chosen model's number of test mistakes or its test accuracy: put the "
            "numbers you measured in it (count the mistakes with predicted != labels)"
        )
    lower = analysis.lower()
    wrong = sorted(
        {data.class_names[c] for c in np.concatenate([y[predicted != y], predicted[predicted != y]])}
    )
    if mistakes and not any(name.lower() in lower for name in wrong):
        raise CheckFailed(
            "`analysis` names no class the model got wrong: say which true class was taken for which (the "
            "confusion matrix's off-diagonal cells)"
        )
    if not any(word in lower for word in _LOOKED_10):
        raise CheckFailed(
            "`analysis` does not say where the model looked: run tlcourse.viz.grad_cam on a mistake and describe "
            "the heatmap (on the object, or on the background?)"
        )
    return f"analysis: {len(words)} words, with the measured numbers ({mistakes} mistakes), the classes and Grad-CAM"


@register("10.7")
def check_10_7(path, reloaded, final_model, data) -> str:
    """A .keras file of `final_model`, loaded back into `reloaded`: same predictions from all three."""

    if not isinstance(path, (str, os.PathLike)):
        raise CheckFailed(
            f"`path` is a {type(path).__name__}: it should be the file name, e.g. path = 'plant_disease.keras'"
        )
    file = Path(path)
    if file.name.endswith(".weights.h5"):
        raise CheckFailed(
            "`path` names a .weights.h5 file: it holds only the weights; save the whole model with "
            "model.save('plant_disease.keras')"
        )
    if file.suffix in (".h5", ".hdf5"):
        raise CheckFailed(
            f"`path` ends in {file.suffix}, the legacy HDF5 format: use a name ending in .keras (Keras 3's format)"
        )
    if file.suffix != ".keras":
        raise CheckFailed("`path` must end in .keras: model.save picks the format from the file name")
    if not file.is_file():
        raise CheckFailed("there is no file at `path`: save the model there with model.save(path)")
    try:
        with zipfile.ZipFile(file) as archive:
            members = set(archive.namelist())
    except zipfile.BadZipFile:
        members = set()
    if not {"config.json", "model.weights.h5"} <= members:
        raise CheckFailed("the file at `path` is not a Keras 3 model archive: write it with model.save(path)")
    expect_model(reloaded, name="reloaded")
    if reloaded is final_model:
        raise CheckFailed(
            "`reloaded` is `final_model` itself: load the file into a new model with reloaded = keras.models.load_model(path)"
        )
    model = final_model
    expect_model(model, name="final_model")
    images, _ = next(iter(data.batches("val", batch_size=16, shuffle=False)))
    expected = call_model(model, images)
    if _max_difference_10(call_model(reloaded, images), expected) > 1e-5:
        raise CheckFailed(
            "`reloaded` predicts differently from `final_model`: save `final_model` after training, then load that file"
        )
    from_file = keras.models.load_model(file, compile=False)
    if _max_difference_10(call_model(from_file, images), expected) > 1e-5:
        raise CheckFailed(
            "the file at `path` holds a model that predicts differently from `final_model`: save it again with "
            "model.save(path) after training"
        )
    return "the .keras file loads back into a model that predicts exactly like `final_model`"
