"""Lesson 10's checks (the capstone pipeline): each with a right answer and the typical wrong ones.

A toy bundle (3 classes told apart by colour, 8×8 px) and a tiny "pretrained" base (preprocessing + ten
1×1 convolutions with BatchNorm) stand in for beans and EfficientNet-Lite0, so every check runs in well
under a second.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from checkrun import run

from tlcourse.data import DataBundle

SIZE, CLASSES = 8, 3


def assert_fails(result, hint):
    assert result.status == "failed", result.line
    assert hint in result.message, result.line


# --------------------------------------------------------------------------- toy data and models
def _split(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(CLASSES), per_class)
    x = rng.integers(0, 80, size=(len(y), SIZE, SIZE, 3))
    for c in range(CLASSES):
        x[y == c, :, :, c] += 150  # each class is bright in its own channel
    order = rng.permutation(len(y))
    return x[order].astype(np.uint8), y[order].astype(np.int64)


@pytest.fixture(scope="module")
def bundle():
    splits = {"train": _split(30, 1), "val": _split(10, 2), "test": _split(10, 3)}
    datasets = {split: tf.data.Dataset.from_tensor_slices(xy) for split, xy in splits.items()}
    return DataBundle(
        name="toy",
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=["red", "green", "blue"],
        source="tlcourse",
        sizes={split: len(xy[1]) for split, xy in splits.items()},
        image_shape=(SIZE, SIZE, 3),
        batch_size=16,
        _arrays=splits,
    )


def make_model(*, softmax: bool = False, classes: int = CLASSES, convs: int = 10):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255, name="preprocess")]
    for i in range(convs):
        layers += [keras.layers.Conv2D(4, 1, name=f"conv{i}"), keras.layers.BatchNormalization(name=f"bn{i}")]
    base = keras.Sequential([*layers, keras.layers.GlobalAveragePooling2D()], name="base")
    base.trainable = False
    inputs = keras.Input((SIZE, SIZE, 3))
    x = base(inputs, training=False)
    outputs = keras.layers.Dense(classes, activation="softmax" if softmax else None, name="logits")(x)
    return keras.Model(inputs, outputs, name="toy_classifier"), base


def compile_(model, learning_rate: float, *, from_logits: bool = True):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )


@pytest.fixture(scope="module")
def head_weights(bundle):
    """Weights of the toy model after its head was trained (base frozen)."""
    model, _ = make_model()
    compile_(model, 0.05)
    model.fit(bundle.batches("train"), epochs=25, verbose=0)
    assert model.evaluate(bundle.batches("val"), verbose=0)[1] >= 0.9
    return model.get_weights()


def trained_head(head_weights, learning_rate: float = 1e-3):
    model, base = make_model()
    model.set_weights(head_weights)
    compile_(model, learning_rate)
    return model, base


def unfreeze(base, which):
    base.trainable = True
    convs = [layer for layer in base.layers if isinstance(layer, keras.layers.Conv2D)]
    chosen = set(map(id, which(convs)))
    for layer in base.layers:
        layer.trainable = id(layer) in chosen


def fine_tuned(bundle, head_weights, *, which=lambda convs: convs[-3:], learning_rate=1e-4, fit=True):
    model, base = trained_head(head_weights)
    unfreeze(base, which)
    compile_(model, learning_rate)
    if fit:
        model.fit(bundle.batches("train"), epochs=1, verbose=0)
    return model, base


# --------------------------------------------------------------------------- 10.1 the input pipeline
def test_10_1_correct(capsys, bundle):
    result = run("10.1", capsys, train_ds=bundle.batches("train"), val_ds=bundle.batches("val"), data=bundle)
    assert result.passed, result.line
    assert "batches of 16 images 8×8×3" in result.message and "no test image" in result.message


def test_10_1_plain_tf_data_passes(capsys, bundle):
    train_ds = bundle.train.shuffle(90).batch(32).prefetch(2)
    result = run("10.1", capsys, train_ds=train_ds, val_ds=bundle.val.batch(32), data=bundle)
    assert result.passed, result.line


@pytest.mark.parametrize(
    ("train", "val", "hint"),
    [
        (lambda b: b.train, lambda b: b.batches("val"), "yields single images, not batches"),
        (
            lambda b: b.batches("train"),
            lambda b: b.batches("test"),
            "`val_ds` contains 30 image(s) of the test",
        ),
        (
            lambda b: b.batches("test"),
            lambda b: b.batches("val"),
            "`train_ds` contains 30 image(s) of the test",
        ),
        (
            lambda b: b.batches("train", shuffle=False),
            lambda b: b.batches("val"),
            "`train_ds` is not shuffled",
        ),
        (
            lambda b: b.batches("train").map(lambda x, y: (tf.cast(x, tf.float32) / 255, y)),
            lambda b: b.batches("val"),
            "pixels are in [0, 1]",
        ),
        (
            lambda b: b.batches("train").map(lambda x, y: (x, tf.one_hot(y, CLASSES))),
            lambda b: b.batches("val"),
            "one-hot labels",
        ),
        (lambda b: b.arrays("train"), lambda b: b.batches("val"), "not a tf.data.Dataset"),
        (lambda b: b.batches("train").repeat(), lambda b: b.batches("val"), "remove .repeat()"),
        (
            lambda b: b.train.concatenate(b.val).shuffle(120).batch(16),
            lambda b: b.batches("val"),
            "`train_ds` contains validation images",
        ),
        (
            lambda b: b.batches("train").map(lambda x, y: (tf.image.flip_left_right(x) // 2 + 1, y)),
            lambda b: b.batches("val"),
            "no image of `train_ds` is one of data.train's",
        ),
        (lambda b: b.batches("train").take(2), lambda b: b.batches("val"), "yields 32 images per pass"),
        (lambda b: b.batches("train"), lambda b: b.batches("val").unbatch().batch(1), "batches of 1 image"),
    ],
)
def test_10_1_wrong_answers(capsys, bundle, train, val, hint):
    assert_fails(run("10.1", capsys, train_ds=train(bundle), val_ds=val(bundle), data=bundle), hint)


def test_10_1_stubs_are_not_attempted(capsys, bundle):
    assert run("10.1", capsys, data=bundle).status == "not_attempted"


# --------------------------------------------------------------------------- 10.2 frozen base + head
def test_10_2_correct(capsys, bundle):
    model, _ = make_model()
    result = run("10.2", capsys, model=model, data=bundle)
    assert result.passed, result.line
    assert result.message == "model: frozen pretrained base + a head of 15 trainable parameters, 3 logits out"


def test_10_2_base_not_frozen(capsys, bundle):
    model, base = make_model()
    base.trainable = True
    assert_fails(run("10.2", capsys, model=model, data=bundle), "layer(s) of the base are trainable")


def test_10_2_softmax_head(capsys, bundle):
    model, _ = make_model(softmax=True)
    assert_fails(run("10.2", capsys, model=model, data=bundle), "activation='softmax'")


def test_10_2_wrong_number_of_classes(capsys, bundle):
    model, _ = make_model(classes=1000)
    assert_fails(run("10.2", capsys, model=model, data=bundle), "outputs 1000 numbers per image")


def test_10_2_everything_frozen(capsys, bundle):
    model, _ = make_model()
    model.trainable = False
    assert_fails(run("10.2", capsys, model=model, data=bundle), "has no trainable weight")


def test_10_2_no_pretrained_base(capsys, bundle):
    model, _ = make_model(convs=3)
    assert_fails(run("10.2", capsys, model=model, data=bundle), "has 3 convolution layer(s)")


def test_10_2_wrong_input_shape(capsys, bundle):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(CLASSES)])
    assert_fails(run("10.2", capsys, model=model, data=bundle), "takes inputs of shape 16×16×3")


# --------------------------------------------------------------------------- 10.3 the head trained
def test_10_3_correct(capsys, bundle, head_weights):
    model, _ = trained_head(head_weights)
    result = run("10.3", capsys, model=model, data=bundle)
    assert result.passed, result.line


def test_10_3_not_compiled(capsys, bundle, head_weights):
    model, _ = make_model()
    model.set_weights(head_weights)
    assert_fails(run("10.3", capsys, model=model, data=bundle), "is not compiled")


def test_10_3_loss_expects_probabilities(capsys, bundle, head_weights):
    model, _ = trained_head(head_weights)
    compile_(model, 1e-3, from_logits=False)
    assert_fails(run("10.3", capsys, model=model, data=bundle), "from_logits=False")


def test_10_3_head_not_trained(capsys, bundle):
    model, _ = make_model()
    model.get_layer("logits").set_weights([np.zeros((4, CLASSES)), np.array([1.0, 0.0, 0.0])])
    compile_(model, 1e-3)
    assert_fails(run("10.3", capsys, model=model, data=bundle), "accuracy on held-out data is below 0.80")


def test_10_3_base_unfrozen_while_training_the_head(capsys, bundle, head_weights):
    model, base = trained_head(head_weights)
    base.trainable = True
    assert_fails(run("10.3", capsys, model=model, data=bundle), "freeze the base with base.trainable = False")


# --------------------------------------------------------------------------- 10.4 fine-tuning
def test_10_4_correct(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights)
    result = run("10.4", capsys, model=model, data=bundle)
    assert result.passed, result.line
    assert result.message.startswith("top 3 convolution layers of the base fine-tuned, all 10 BatchNorm")


def test_10_4_batchnorm_left_trainable(capsys, bundle, head_weights):
    model, base = trained_head(head_weights)
    unfreeze(base, lambda convs: convs[-3:])
    base.get_layer("bn9").trainable = True
    compile_(model, 1e-4)
    assert_fails(run("10.4", capsys, model=model, data=bundle), "1 of 10 BatchNormalization layers")


def test_10_4_nothing_unfrozen(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, which=lambda convs: [], fit=False)
    assert_fails(run("10.4", capsys, model=model, data=bundle), "no layer of the base is trainable")


def test_10_4_whole_base(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, which=lambda convs: convs, fit=False)
    assert_fails(run("10.4", capsys, model=model, data=bundle), "10 of the base's 10 convolution layers")


def test_10_4_bottom_layers(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, which=lambda convs: convs[:3], fit=False)
    assert_fails(run("10.4", capsys, model=model, data=bundle), "'conv0' are not at the top of the base")


def test_10_4_learning_rate_too_high(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, learning_rate=1e-2, fit=False)
    assert_fails(run("10.4", capsys, model=model, data=bundle), "the learning rate is 1e-02")


def test_10_4_compiled_but_not_trained(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, fit=False)
    assert_fails(
        run("10.4", capsys, model=model, data=bundle), "has not been trained since it was last compiled"
    )


def test_10_4_schedule_is_read_at_its_peak(capsys, bundle, head_weights):
    model, base = trained_head(head_weights)
    unfreeze(base, lambda convs: convs[-3:])
    steps = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=6)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.optimizer.iterations.assign(6)  # as after one epoch of 6 steps: the rate has decayed to 0
    assert_fails(run("10.4", capsys, model=model, data=bundle), "the learning rate is 1e-02")


def test_10_4_not_recompiled_after_unfreezing(capsys, bundle, head_weights):
    model, base = trained_head(head_weights, learning_rate=1e-4)
    model.fit(bundle.batches("train"), epochs=1, verbose=0)  # the optimizer now knows the head only
    unfreeze(base, lambda convs: convs[-3:])
    model.fit(bundle.batches("train"), epochs=1, verbose=0)
    assert_fails(run("10.4", capsys, model=model, data=bundle), "call model.compile(...) after unfreezing")


# --------------------------------------------------------------------------- 10.5 save and reload
@pytest.fixture
def final_model(bundle, head_weights):
    model, _ = trained_head(head_weights)
    return model


def test_10_5_correct(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "plant_disease.keras"
    final_model.save(path)
    reloaded = keras.models.load_model(path)
    result = run("10.5", capsys, path=path, reloaded=reloaded, model=final_model, data=bundle)
    assert result.passed, result.line
    result = run("10.5", capsys, path=str(path), reloaded=reloaded, model=final_model, data=bundle)
    assert result.passed, result.line


def test_10_5_legacy_h5(capsys, bundle, final_model, tmp_path):
    result = run("10.5", capsys, path=tmp_path / "m.h5", reloaded=final_model, model=final_model, data=bundle)
    assert_fails(result, "the legacy HDF5 format")


def test_10_5_weights_only(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "m.weights.h5"
    final_model.save_weights(path)
    result = run("10.5", capsys, path=path, reloaded=final_model, model=final_model, data=bundle)
    assert_fails(result, "it holds only the weights")


def test_10_5_never_saved(capsys, bundle, final_model, tmp_path):
    result = run(
        "10.5", capsys, path=tmp_path / "m.keras", reloaded=final_model, model=final_model, data=bundle
    )
    assert_fails(result, "there is no file at `path`")


def test_10_5_reloaded_is_the_model_itself(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "m.keras"
    final_model.save(path)
    result = run("10.5", capsys, path=path, reloaded=final_model, model=final_model, data=bundle)
    assert_fails(result, "`reloaded` is `model` itself")


def test_10_5_saved_before_the_last_change(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "m.keras"
    final_model.save(path)
    reloaded = keras.models.load_model(path)
    kernel, bias = final_model.get_layer("logits").get_weights()
    final_model.get_layer("logits").set_weights([kernel, bias + np.arange(CLASSES)])  # trained on afterwards
    result = run("10.5", capsys, path=path, reloaded=reloaded, model=final_model, data=bundle)
    assert_fails(result, "`reloaded` predicts differently from `model`")


def test_10_5_not_a_path(capsys, bundle, final_model):
    result = run("10.5", capsys, path=final_model, reloaded=final_model, model=final_model, data=bundle)
    assert_fails(result, "`path` is a Functional")


def test_10_5_not_a_keras_archive(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "m.keras"
    path.write_text("not a zip")
    result = run("10.5", capsys, path=path, reloaded=final_model, model=final_model, data=bundle)
    assert_fails(result, "is not a Keras 3 model archive")
