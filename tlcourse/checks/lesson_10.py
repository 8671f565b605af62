"""Checks of lesson 10."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    call_model,
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
        x = np.clip(np.round(x.astype(np.float64)), 0, 255).astype(np.uint8)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x.reshape(len(x), -1)]


def _read_batches_10(ds, name: str, split: str, data) -> tuple:
    """All (images, labels) of a batched dataset answer, checked on the way: (x, y, first batch size)."""

    if not isinstance(ds, tf.data.Dataset):
        raise CheckFailed(
            f"`{name}` is a {type(ds).__name__}, not a tf.data.Dataset: build it from data.{split}, "
            f"e.g. data.{split}.batch(budget.batch_size)"
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
    """Batched train/val pipelines: shapes, pixel range, integer labels, shuffling, and no test image."""

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
        if not any(h in own for h in seen):
            raise CheckFailed(
                f"no image of `{name}` is one of data.{split}'s: build it from data.{split}, without augmentation "
                "or other changes to the pixels"
            )
        if len(seen) != data.sizes[split]:
            raise CheckFailed(
                f"`{name}` yields {len(seen)} images per pass, the {split} split has {data.sizes[split]}: use "
                "each image once (no .take(), .skip() or filter)"
            )
        if split == "train" and seen == hashes["train"]:
            raise CheckFailed(
                "`train_ds` is not shuffled: add .shuffle(data.sizes['train']) before .batch(...) so each "
                "epoch sees the images in a new order"
            )
    return (
        f"train_ds and val_ds: batches of {batch_sizes['train_ds']} images "
        f"{shape_text(data.image_shape)} in [0, 255] with integer labels, train shuffled, no test image"
    )


def _base_layers_10(model) -> tuple[list, list]:
    """(convolution layers, BatchNormalization layers) inside the model, nested ones included."""
    leaves = [layer for layer in walk_layers(model) if not getattr(layer, "layers", None)]
    convs = [layer for layer in leaves if type(layer).__name__ in _CONV_TYPES_10]
    norms = [layer for layer in leaves if is_batchnorm(layer)]
    return convs, norms


def _expect_pretrained_base_10(model) -> list:
    convs, _ = _base_layers_10(model)
    if len(convs) < _MIN_BASE_CONVS_10:
        raise CheckFailed(
            f"`model` has {len(convs)} convolution layer(s): it should contain the pretrained base, "
            "tlcourse.models.backbone('efficientnet_lite0', input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))"
        )
    expect_preprocessing(model)
    return convs


def _expect_base_frozen_10(model) -> int:
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
            "`model` has no trainable weight: freeze the base only (base.trainable = False), not the whole "
            "model, so the head can learn"
        )
    return trainable


@register("10.2")
def check_10_2(model, data) -> str:
    """A pretrained base (frozen) + a head with one logit per class."""
    expect_model(model)
    shape = tuple(data.image_shape)
    expect_input_shape(model, shape)
    outputs = expect_output_shape(model, shape, data.num_classes)
    expect_logits(model, outputs)
    _expect_pretrained_base_10(model)
    head = _expect_base_frozen_10(model)
    return (
        f"model: frozen pretrained base + a head of {head:,} trainable parameters, "
        f"{data.num_classes} logits out"
    )


def _val_batches_10(data):
    return data.batches("val", shuffle=False)


@register("10.3")
def check_10_3(model, data) -> str:
    """The head trained to AT_LEAST_10 on the validation split, base still frozen, loss from logits."""
    expect_model(model)
    _expect_pretrained_base_10(model)
    _expect_base_frozen_10(model)
    expect_from_logits(model)
    expect_accuracy(model, _val_batches_10(data), at_least=AT_LEAST_10)
    return f"the head reaches validation accuracy ≥ {AT_LEAST_10:.2f} with the base frozen; loss from logits"


def _largest_learning_rate_10(optimizer) -> float:

    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        steps = np.unique(np.linspace(0, max(int(optimizer.iterations), 1), 21).astype(int))
        return max(float(keras.ops.convert_to_numpy(schedule(int(step)))) for step in steps)
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


@register("10.4")
def check_10_4(model, data) -> str:
    """Top layers of the base trainable, BatchNorm frozen, recompiled with a small rate, trained, accurate."""
    expect_model(model)
    convs = _expect_pretrained_base_10(model)
    norms = expect_batchnorm_frozen(model)
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
            "`model` has not been trained since it was last compiled: call model.fit(train_ds, "
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
    expect_accuracy(model, _val_batches_10(data), at_least=AT_LEAST_10)
    return (
        f"top {len(learning)} convolution layers of the base fine-tuned, all {norms} BatchNorm layers frozen, "
        f"learning rate ≤ {MAX_FINE_TUNE_LR_10:.0e}, validation accuracy ≥ {AT_LEAST_10:.2f}"
    )


def _max_difference_10(a, b) -> float:

    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


@register("10.5")
def check_10_5(path, reloaded, model, data) -> str:
    """A .keras file of `model`, loaded back into `reloaded`: same predictions from all three."""

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
    if reloaded is model:
        raise CheckFailed(
            "`reloaded` is `model` itself: load the file into a new model with reloaded = keras.models.load_model(path)"
        )
    images, _ = next(iter(data.batches("val", batch_size=16, shuffle=False)))
    expected = call_model(model, images)
    if _max_difference_10(call_model(reloaded, images), expected) > 1e-5:
        raise CheckFailed(
            "`reloaded` predicts differently from `model`: save `model` after training, then load that file"
        )
    from_file = keras.models.load_model(file, compile=False)
    if _max_difference_10(call_model(from_file, images), expected) > 1e-5:
        raise CheckFailed(
            "the file at `path` holds a model that predicts differently from `model`: save it again with "
            "model.save(path) after training"
        )
    return "the .keras file loads back into a model that predicts exactly like `model`"
