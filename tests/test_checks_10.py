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


def make_model(*, softmax: bool = False, classes: int = CLASSES, convs: int = 10, augment: bool = False):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255, name="preprocess")]
    for i in range(convs):
        layers += [keras.layers.Conv2D(4, 1, name=f"conv{i}"), keras.layers.BatchNormalization(name=f"bn{i}")]
    base = keras.Sequential([*layers, keras.layers.GlobalAveragePooling2D()], name="base")
    base.trainable = False
    inputs = keras.Input((SIZE, SIZE, 3))
    x = base(keras.layers.RandomFlip("horizontal")(inputs) if augment else inputs, training=False)
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


def trained_head(head_weights, learning_rate: float = 1e-3, *, augment: bool = False):
    model, base = make_model(augment=augment)
    model.set_weights(head_weights)
    compile_(model, learning_rate)
    return model, base


def unfreeze(base, which):
    base.trainable = True
    convs = [layer for layer in base.layers if isinstance(layer, keras.layers.Conv2D)]
    chosen = set(map(id, which(convs)))
    for layer in base.layers:
        layer.trainable = id(layer) in chosen


def fine_tuned(
    bundle, head_weights, *, which=lambda convs: convs[-3:], learning_rate=1e-4, fit=True, augment=True
):
    model, base = trained_head(head_weights, augment=augment)
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
    assert "new order every pass" in result.message


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
        (
            lambda b: b.batches("train").map(lambda x, y: (tf.concat([x[:1] // 2, x[1:]], 0), y)),
            lambda b: b.batches("val"),
            "of `train_ds`'s images differ from data.train's pixels",
        ),
        (lambda b: b.batches("train"), lambda b: b.batches("val").unbatch().batch(1), "batches of 1 image"),
        (  # image_dataset_from_directory(shuffle=True) then .cache(): the first epoch's order, every epoch
            lambda b: b.train.shuffle(90, seed=0).batch(16).cache(),
            lambda b: b.batches("val"),
            "same order in every pass",
        ),
        (
            lambda b: b.train.shuffle(90, seed=0, reshuffle_each_iteration=False).batch(16),
            lambda b: b.batches("val"),
            "same order in every pass",
        ),
    ],
)
def test_10_1_wrong_answers(capsys, bundle, train, val, hint):
    assert_fails(run("10.1", capsys, train_ds=train(bundle), val_ds=val(bundle), data=bundle), hint)


def test_10_1_stubs_are_not_attempted(capsys, bundle):
    assert run("10.1", capsys, data=bundle).status == "not_attempted"


# --------------------------------------------------------------------------- 10.2 the baseline from scratch
def scratch_cnn(*, epochs: int = 30, convs: int = 2):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255)]
    layers += [keras.layers.Conv2D(8, 3, padding="same", activation="relu") for _ in range(convs)]
    model = keras.Sequential([*layers, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(CLASSES)])
    compile_(model, 0.05)
    return model


@pytest.fixture(scope="module")
def baseline(bundle):
    model = scratch_cnn()
    model.fit(bundle.batches("train"), epochs=30, verbose=0)
    return model


def test_10_2_correct(capsys, bundle, baseline):
    result = run("10.2", capsys, baseline=baseline, data=bundle)
    assert result.passed, result.line
    assert result.message.startswith("baseline: a CNN from scratch, validation accuracy")


def test_10_2_untrained(capsys, bundle):
    assert_fails(run("10.2", capsys, baseline=scratch_cnn(), data=bundle), "has not been trained")


def test_10_2_the_pretrained_base_is_not_a_baseline(capsys, bundle, head_weights):
    model, _ = trained_head(head_weights)
    assert_fails(
        run("10.2", capsys, baseline=model, data=bundle), "has 10 convolution layers, like the pretrained"
    )


def test_10_2_frozen_weights(capsys, bundle):
    model = scratch_cnn()
    model.layers[1].trainable = False
    compile_(model, 0.05)
    model.fit(bundle.batches("train"), epochs=1, verbose=0)
    assert_fails(run("10.2", capsys, baseline=model, data=bundle), "weights of `baseline` are frozen")


def test_10_2_at_chance(capsys, bundle):
    model = scratch_cnn()
    model.layers[-1].set_weights([np.zeros((8, CLASSES)), np.array([2.0, 0.0, 0.0])])
    model.optimizer.iterations.assign(1)
    assert_fails(run("10.2", capsys, baseline=model, data=bundle), "chance is 0.33")


def test_10_2_no_convolution(capsys, bundle):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(), keras.layers.Dense(CLASSES)]
    )
    assert_fails(run("10.2", capsys, baseline=model, data=bundle), "has no convolution layer")


# --------------------------------------------------------------------------- 10.3 feature extraction
def test_10_3_correct(capsys, bundle, head_weights):
    model, _ = trained_head(head_weights)
    result = run("10.3", capsys, extraction=model, data=bundle)
    assert result.passed, result.line
    assert result.message.startswith("extraction: frozen pretrained base + a head of 15 trainable parameters")


def test_10_3_base_not_frozen(capsys, bundle, head_weights):
    model, base = trained_head(head_weights)
    base.trainable = True
    assert_fails(
        run("10.3", capsys, extraction=model, data=bundle), "freeze the base with base.trainable = False"
    )


def test_10_3_softmax_head(capsys, bundle):
    model, _ = make_model(softmax=True)
    assert_fails(run("10.3", capsys, extraction=model, data=bundle), "activation='softmax'")


def test_10_3_wrong_number_of_classes(capsys, bundle):
    model, _ = make_model(classes=1000)
    assert_fails(run("10.3", capsys, extraction=model, data=bundle), "outputs 1000 numbers per image")


def test_10_3_everything_frozen(capsys, bundle):
    model, _ = make_model()
    model.trainable = False
    assert_fails(run("10.3", capsys, extraction=model, data=bundle), "has no trainable weight")


def test_10_3_no_pretrained_base(capsys, bundle):
    model, _ = make_model(convs=3)
    assert_fails(run("10.3", capsys, extraction=model, data=bundle), "has 3 convolution layer(s)")


def test_10_3_wrong_input_shape(capsys, bundle):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(CLASSES)])
    assert_fails(run("10.3", capsys, extraction=model, data=bundle), "takes inputs of shape 16×16×3")


def test_10_3_not_compiled(capsys, bundle, head_weights):
    model, _ = make_model()
    model.set_weights(head_weights)
    assert_fails(run("10.3", capsys, extraction=model, data=bundle), "is not compiled")


def test_10_3_loss_expects_probabilities(capsys, bundle, head_weights):
    model, _ = trained_head(head_weights)
    compile_(model, 1e-3, from_logits=False)
    assert_fails(run("10.3", capsys, extraction=model, data=bundle), "from_logits=False")


def test_10_3_head_not_trained(capsys, bundle):
    model, _ = make_model()
    model.get_layer("logits").set_weights([np.zeros((4, CLASSES)), np.array([2.0, 0.0, 0.0])])
    compile_(model, 1e-3)
    assert_fails(
        run("10.3", capsys, extraction=model, data=bundle), "accuracy on held-out data is below 0.80"
    )


# --------------------------------------------------------------------------- 10.4 fine-tuning
def test_10_4_correct(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights)
    result = run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle)
    assert result.passed, result.line
    assert result.message.startswith(
        "1 augmentation layer(s); top 3 convolution layers of the base fine-tuned, all 10"
    )


def test_10_4_batchnorm_left_trainable(capsys, bundle, head_weights):
    model, base = trained_head(head_weights, augment=True)
    unfreeze(base, lambda convs: convs[-3:])
    base.get_layer("bn9").trainable = True
    compile_(model, 1e-4)
    assert_fails(
        run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle),
        "1 of 10 BatchNormalization layers",
    )


def test_10_4_nothing_unfrozen(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, which=lambda convs: [], fit=False)
    assert_fails(
        run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle),
        "no layer of the base is trainable",
    )


def test_10_4_whole_base(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, which=lambda convs: convs, fit=False)
    assert_fails(
        run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle),
        "10 of the base's 10 convolution layers",
    )


def test_10_4_bottom_layers(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, which=lambda convs: convs[:3], fit=False)
    assert_fails(
        run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle),
        "'conv0' are not at the top of the base",
    )


def test_10_4_learning_rate_too_high(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, learning_rate=1e-2, fit=False)
    assert_fails(
        run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle), "the learning rate is 1e-02"
    )


def test_10_4_compiled_but_not_trained(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, fit=False)
    assert_fails(
        run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle),
        "has not been trained since it was last compiled",
    )


def test_10_4_schedule_is_read_at_its_peak(capsys, bundle, head_weights):
    model, base = trained_head(head_weights, augment=True)
    unfreeze(base, lambda convs: convs[-3:])
    steps = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=6)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.optimizer.iterations.assign(6)  # as after one epoch of 6 steps: the rate has decayed to 0
    assert_fails(
        run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle), "the learning rate is 1e-02"
    )


def test_10_4_not_recompiled_after_unfreezing(capsys, bundle, head_weights):
    model, base = trained_head(head_weights, learning_rate=1e-4, augment=True)
    model.fit(bundle.batches("train"), epochs=1, verbose=0)  # the optimizer now knows the head only
    unfreeze(base, lambda convs: convs[-3:])
    model.fit(bundle.batches("train"), epochs=1, verbose=0)
    assert_fails(
        run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle),
        "call model.compile(...) after unfreezing",
    )


def test_10_4_without_augmentation(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights, augment=False)
    assert_fails(
        run("10.4", capsys, fine_tuned=model, extraction=None, data=bundle), "has no augmentation layer"
    )


def test_10_4_the_extraction_model_itself(capsys, bundle, head_weights):
    model, _ = fine_tuned(bundle, head_weights)
    result = run("10.4", capsys, fine_tuned=model, extraction=model, data=bundle)
    assert_fails(result, "shares its weights with `extraction`")


# --------------------------------------------------------------------------- 10.5 choose, then test once
@pytest.fixture(scope="module")
def candidates(bundle, head_weights):
    constant = scratch_cnn()  # a baseline that always answers "red": a third right, the others learned more
    constant.layers[-1].set_weights([np.zeros((8, CLASSES)), np.array([2.0, 0.0, 0.0])])
    extraction, _ = trained_head(head_weights)
    tuned, _ = fine_tuned(bundle, head_weights)
    return {"baseline": constant, "extraction": extraction, "fine_tuned": tuned}


def accuracies(candidates, bundle, split):
    x, y = bundle.arrays(split)
    names = {"baseline": "baseline", "extraction": "extraction", "fine-tuned": "fine_tuned"}
    return {
        key: float(np.mean(candidates[name].predict(x, verbose=0).argmax(1) == y))
        for key, name in names.items()
    }


def test_10_5_correct(capsys, bundle, candidates):
    val = accuracies(candidates, bundle, "val")
    chosen = max(val, key=val.get)
    test = accuracies(candidates, bundle, "test")[chosen]
    result = run("10.5", capsys, val_acc=val, chosen=chosen, test_acc=test, data=bundle, **candidates)
    assert result.passed, result.line
    assert result.message.startswith(f"chose {chosen!r} on validation")


def test_10_5_chosen_not_the_best_on_validation(capsys, bundle, candidates):
    val = accuracies(candidates, bundle, "val")
    worst = min(val, key=val.get)
    assert val[worst] < max(val.values())
    test = accuracies(candidates, bundle, "test")[worst]
    result = run("10.5", capsys, val_acc=val, chosen=worst, test_acc=test, data=bundle, **candidates)
    assert_fails(result, f"`chosen` is {worst!r}, but")


def test_10_5_made_up_validation_numbers(capsys, bundle, candidates):
    val = {"baseline": 0.1, "extraction": 0.99, "fine-tuned": 0.98}
    result = run("10.5", capsys, val_acc=val, chosen="extraction", test_acc=0.9, data=bundle, **candidates)
    assert_fails(result, "val_acc['baseline'] is 0.100, but that model's validation accuracy is")


def test_10_5_missing_candidate(capsys, bundle, candidates):
    result = run("10.5", capsys, val_acc={"extraction": 1.0}, chosen="extraction", test_acc=1.0, data=bundle,
                 **candidates)  # fmt: skip
    assert_fails(result, "`val_acc` should be a dict with the keys")


def test_10_5_test_accuracy_of_another_model(capsys, bundle, candidates):
    val = accuracies(candidates, bundle, "val")
    chosen = max(val, key=val.get)
    test = accuracies(candidates, bundle, "test")
    other = next((n for n in test if abs(test[n] - test[chosen]) > 0.05), None)
    if other is None:
        pytest.skip("the toy candidates have the same test accuracy")
    result = run("10.5", capsys, val_acc=val, chosen=chosen, test_acc=test[other], data=bundle, **candidates)
    assert_fails(result, f"it is {other!r}'s")


# --------------------------------------------------------------------------- 10.6 the error analysis
@pytest.fixture(scope="module")
def facts(bundle, candidates):
    x, y = bundle.arrays("test")
    predicted = candidates["baseline"].predict(x, verbose=0).argmax(1)
    wrong = predicted != y
    names = sorted({bundle.class_names[c] for c in np.concatenate([y[wrong], predicted[wrong]])})
    return int(wrong.sum()), names


def analysis_run(capsys, bundle, candidates, text):
    return run("10.6", capsys, analysis=text, chosen="baseline", data=bundle, **candidates)


FILLER = "The model looked at the whole crop in the Grad-CAM maps and I would try more augmentation and epochs next time. "


def test_10_6_correct(capsys, bundle, candidates, facts):
    mistakes, names = facts
    named = f"It took {names[0]} for another class. " if names else ""
    text = f"The baseline makes {mistakes} mistakes on the test images. {named}{FILLER}"
    result = analysis_run(capsys, bundle, candidates, text)
    assert result.passed, result.line


def test_10_6_too_short(capsys, bundle, candidates):
    assert_fails(analysis_run(capsys, bundle, candidates, "It works well."), "write at least 30")


def test_10_6_no_measured_number(capsys, bundle, candidates, facts):
    _, names = facts
    text = (
        f"The baseline makes 987 mistakes. It took {names[0] if names else 'red'} for another class. {FILLER}"
    )
    assert_fails(analysis_run(capsys, bundle, candidates, text), "does not state the chosen model's number")


def test_10_6_no_class_named(capsys, bundle, candidates, facts):
    mistakes, names = facts
    if not mistakes:
        pytest.skip("the toy baseline makes no mistake")
    text = f"The baseline makes {mistakes} mistakes on the test images. Some classes were mixed up. {FILLER}"
    assert_fails(analysis_run(capsys, bundle, candidates, text), "names no class the model got wrong")


def test_10_6_nothing_about_where_it_looked(capsys, bundle, candidates, facts):
    mistakes, names = facts
    named = f"It took {names[0]} for another class. " if names else ""
    text = (
        f"The baseline makes {mistakes} mistakes on the test images. {named}"
        + "More data would help it. " * 6
    )
    assert_fails(analysis_run(capsys, bundle, candidates, text), "does not say where the model looked")


def test_10_6_not_text(capsys, bundle, candidates):
    assert_fails(analysis_run(capsys, bundle, candidates, 42), "`analysis` is a int")


# --------------------------------------------------------------------------- 10.7 save and reload
@pytest.fixture
def final_model(bundle, head_weights):
    model, _ = trained_head(head_weights)
    return model


def test_10_7_correct(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "plant_disease.keras"
    final_model.save(path)
    reloaded = keras.models.load_model(path)
    result = run("10.7", capsys, path=path, reloaded=reloaded, final_model=final_model, data=bundle)
    assert result.passed, result.line
    result = run("10.7", capsys, path=str(path), reloaded=reloaded, final_model=final_model, data=bundle)
    assert result.passed, result.line


def test_10_7_legacy_h5(capsys, bundle, final_model, tmp_path):
    result = run(
        "10.7", capsys, path=tmp_path / "m.h5", reloaded=final_model, final_model=final_model, data=bundle
    )
    assert_fails(result, "the legacy HDF5 format")


def test_10_7_weights_only(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "m.weights.h5"
    final_model.save_weights(path)
    result = run("10.7", capsys, path=path, reloaded=final_model, final_model=final_model, data=bundle)
    assert_fails(result, "it holds only the weights")


def test_10_7_never_saved(capsys, bundle, final_model, tmp_path):
    result = run(
        "10.7", capsys, path=tmp_path / "m.keras", reloaded=final_model, final_model=final_model, data=bundle
    )
    assert_fails(result, "there is no file at `path`")


def test_10_7_reloaded_is_the_model_itself(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "m.keras"
    final_model.save(path)
    result = run("10.7", capsys, path=path, reloaded=final_model, final_model=final_model, data=bundle)
    assert_fails(result, "`reloaded` is `final_model` itself")


def test_10_7_saved_before_the_last_change(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "m.keras"
    final_model.save(path)
    reloaded = keras.models.load_model(path)
    kernel, bias = final_model.get_layer("logits").get_weights()
    final_model.get_layer("logits").set_weights([kernel, bias + np.arange(CLASSES)])  # trained on afterwards
    result = run("10.7", capsys, path=path, reloaded=reloaded, final_model=final_model, data=bundle)
    assert_fails(result, "`reloaded` predicts differently from `final_model`")


def test_10_7_not_a_path(capsys, bundle, final_model):
    result = run("10.7", capsys, path=final_model, reloaded=final_model, final_model=final_model, data=bundle)
    assert_fails(result, "`path` is a Functional")


def test_10_7_not_a_keras_archive(capsys, bundle, final_model, tmp_path):
    path = tmp_path / "m.keras"
    path.write_text("not a zip")
    result = run("10.7", capsys, path=path, reloaded=final_model, final_model=final_model, data=bundle)
    assert_fails(result, "is not a Keras 3 model archive")
