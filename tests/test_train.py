"""tlcourse.train on tiny offline data: features, heads, fine-tuning stages, comparisons, bad input."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tlcourse
from tlcourse import train
from tlcourse.errors import ConfigError, DataError, TrainError
from tlcourse.train import Stage

SIZE = 16
CLASSES = 3
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def course(tmp_path_factory):
    old = os.environ.get("TLCOURSE_CACHE")
    os.environ["TLCOURSE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield tlcourse.setup(verbose=False, seed=0)
    if old is None:
        os.environ.pop("TLCOURSE_CACHE", None)
    else:
        os.environ["TLCOURSE_CACHE"] = old


def make_images(n: int, *, seed: int = 0, size: int = SIZE, classes: int = CLASSES):
    """uint8 RGB images whose class is the colour channel of a bright square, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 60, size=(n, size, size, 3)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 2 : size - 2, 2 : size - 2, label % 3] = 230
    return x, y.astype(np.int64)


def make_base(name: str = "tinybase", size: int = SIZE) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    h = keras.layers.Conv2D(8, 3, padding="same", name="conv_low")(h)
    h = keras.layers.BatchNormalization(name="bn_low")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(8, 3, padding="same", name="conv_top")(h)
    h = keras.layers.BatchNormalization(name="bn_top")(h)
    h = keras.layers.ReLU()(h)
    outputs = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, outputs, name=name)


def make_classifier(base: keras.Model, classes: int = CLASSES) -> keras.Model:
    inputs = keras.Input(base.inputs[0].shape[1:])
    logits = keras.layers.Dense(classes, dtype="float32", name="logits")(base(inputs, training=False))
    return keras.Model(inputs, logits, name="classifier")


@pytest.fixture(scope="module")
def images():
    return make_images(120, seed=0), make_images(60, seed=1)


def compiled_dense(units_out=CLASSES, loss=None):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(units_out)])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


# --------------------------------------------------------------------------- features
def test_extract_features_caches_and_is_invalidated_by_each_part_of_the_key(images):
    (x, y), _ = images
    keras.utils.set_random_seed(0)
    base = make_base()
    first = train.extract_features(base, (x, y), verbose=0)
    assert (
        first.source == "computed" and first.features.shape == (120, 8) and first.features.dtype == np.float32
    )
    np.testing.assert_array_equal(first.labels, y)
    np.testing.assert_allclose(first.features, base.predict(x, verbose=0), rtol=1e-5, atol=1e-5)

    assert train.extract_features(base, (x, y), verbose=0).source == "memory"
    train._FEATURE_CACHE.clear()
    from_disk = train.extract_features(base, (x, y), verbose=0)
    assert from_disk.source == "disk"
    np.testing.assert_array_equal(from_disk.features, first.features)

    # Unbatched and batched tf.data give the same features as arrays, in the same order.
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    feats, labels = train.extract_features(base, unbatched, cache=False, verbose=0)
    np.testing.assert_allclose(feats, first.features, rtol=1e-5, atol=1e-5)
    feats, labels = train.extract_features(base, unbatched.batch(7), cache=False, verbose=0)
    np.testing.assert_array_equal(labels, y)

    # Each part of the key invalidates: other data, an explicit key, other weights, other image size.
    assert train.extract_features(base, (x[:60], y[:60]), verbose=0).source == "computed"
    assert train.extract_features(base, (x, y), key="mine", verbose=0).source == "computed"
    assert train.extract_features(base, (x, y), key="mine", verbose=0).source == "memory"
    kernel = base.get_layer("conv_top").kernel
    kernel.assign(kernel.numpy() * 1.5)
    changed = train.extract_features(base, (x, y), verbose=0)
    assert changed.source == "computed" and not np.allclose(changed.features, first.features)
    big_base = make_base(size=24)
    big_base.set_weights(base.get_weights())
    x24 = tf.image.resize(x, (24, 24)).numpy().astype(np.uint8)
    assert train.extract_features(big_base, (x24, y), verbose=0).source == "computed"


def test_extract_features_traces_the_base_once_for_every_split_and_batch_size(images):
    (x, y), (xv, yv) = images
    base = make_base("traced_once")
    # 120 in batches of 32 ends with a short batch; then other sizes, a tf.data pipeline, another split.
    first = train.extract_features(base, (x, y), batch_size=32, cache=False, verbose=0)
    again = train.extract_features(base, (x, y), batch_size=7, cache=False, verbose=0)
    piped = train.extract_features(
        base, tf.data.Dataset.from_tensor_slices((x, y)).batch(16), cache=False, verbose=0
    )
    val = train.extract_features(base, (xv, yv), cache=False, verbose=0)
    [embed] = [fn for ref, fn in train._EMBEDDERS.values() if ref() is base]
    assert embed.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(again.features, first.features, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(piped.features, first.features, rtol=1e-5, atol=1e-5)
    assert val.features.shape == (60, 8)
    assert first.labels.dtype == np.int64 and piped.labels.dtype == np.int64
    np.testing.assert_array_equal(piped.labels, y)


# --------------------------------------------------------------------------- heads
def test_fit_head_linear_and_mlp_learn_and_one_hot_labels_work():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    centres = rng.normal(size=(3, 16)) * 3
    x = (centres[y] + rng.normal(size=(300, 16))).astype("float32")
    head, history = train.fit_head(
        x[:200], y[:200], val=(x[200:], y[200:]), epochs=6, learning_rate=0.05, verbose=0
    )
    assert history.final("val_accuracy") > 0.9
    assert head.layers[-1].dtype_policy.name == "float32" and head.output_shape == (None, 3)
    mlp, history = train.fit_head(
        x,
        keras.utils.to_categorical(y, 3),
        head="mlp",
        epochs=4,
        learning_rate=0.02,
        verbose=0,
    )
    assert history.final("accuracy") > 0.9 and len(mlp.layers) == 3
    with pytest.raises(ConfigError, match="Unknown head"):
        train.fit_head(x, y, head="linearr", epochs=1)


# --------------------------------------------------------------------------- fine-tuning
def _kernel(model, name):
    return model.get_layer("tinybase").get_layer(name).kernel.numpy().copy()


def test_fine_tune_two_stages_freeze_what_they_should_with_a_fresh_optimizer(images, monkeypatch):
    (x, y), (xv, yv) = images
    keras.utils.set_random_seed(0)
    base = make_base()
    model = make_classifier(base)
    bn_mean = base.get_layer("bn_top").moving_mean.numpy().copy()
    low0, top0 = _kernel(model, "conv_low"), _kernel(model, "conv_top")

    stages = [Stage(2, 1e-2), Stage(2, 1e-3, unfreeze=1, warmup=1, schedule="cosine")]
    seen = {}

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.setdefault("optimizers", []).append(self.model.optimizer)
            seen.setdefault("trainable", []).append({w.path for w in self.model.trainable_weights})

    spy_fit = train.fit

    def fit_with_spy(*args, callbacks=(), **kwargs):
        return spy_fit(*args, callbacks=[*callbacks, Spy()], **kwargs)

    train.fit = fit_with_spy
    try:
        history = train.fine_tune(
            model, ((x, y), (xv, yv)), stages=stages, batch_size=16, run_dir=True, verbose=0
        )
    finally:
        train.fit = spy_fit

    assert history.stage_boundaries == [0, 2] and history.epochs == 4 and len(history.stages) == 2
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    first, second = seen["trainable"]
    assert first == {"logits/kernel", "logits/bias"}
    assert second == first | {"conv_top/kernel", "conv_top/bias"}
    assert seen["optimizers"][0] is not seen["optimizers"][1]
    # Stage 2's optimizer is fresh: it counts only its own steps (8 steps of 16 over 2 epochs).
    assert int(model.optimizer.iterations.numpy()) == 2 * int(np.ceil(120 / 16))
    # Cosine decays to 0 at the end of stage 2.
    assert float(model.optimizer.learning_rate.numpy()) < 1e-5
    # Stage 1 never touched the base; stage 2 moved only the top conv; BN statistics never moved.
    assert not np.allclose(_kernel(model, "conv_top"), top0)
    np.testing.assert_array_equal(_kernel(model, "conv_low"), low0)
    np.testing.assert_array_equal(base.get_layer("bn_top").moving_mean.numpy(), bn_mean)
    assert not base.get_layer("bn_top").trainable and not base.get_layer("bn_low").trainable
    assert history.history["loss"][-1] < history.history["loss"][0]
    # With run_dir=True, the same cell after a kernel restart (same seed → same initial weights, same
    # data and settings) finds the finished run directories: it loads the result instead of training.
    keras.utils.set_random_seed(0)
    rebuilt = make_classifier(make_base())

    def no_training(*args, **kwargs):
        raise AssertionError("the finished run was trained again")

    monkeypatch.setattr(keras.Model, "fit", no_training)
    again = train.fine_tune(
        rebuilt, ((x, y), (xv, yv)), stages=stages, batch_size=16, run_dir=True, verbose=0
    )
    monkeypatch.undo()
    assert again.history == history.history and again.stage_boundaries == [0, 2]
    for trained, loaded in zip(model.weights, rebuilt.weights, strict=True):
        np.testing.assert_array_equal(trained.numpy(), loaded.numpy())


def test_discriminative_learning_rates_apply_their_ratios():
    # Adam's first step moves every weight by ≈ lr·sign(g), whatever the gradient's size:
    # so the ratio of the steps is the ratio of the learning rates (scaling gradients would not do it).
    a = keras.Variable(np.zeros(4, "float32"), name="a")
    b = keras.Variable(np.zeros(4, "float32"), name="b")
    opt = train.discriminative(keras.optimizers.Adam(learning_rate=0.01), {b.path: 0.1})
    opt.apply([np.full(4, 3.0, "float32"), np.full(4, 50.0, "float32")], [a, b])
    np.testing.assert_allclose(a.numpy(), -0.01, rtol=1e-3)
    np.testing.assert_allclose(b.numpy(), -0.001, rtol=1e-3)
    # It survives a .keras round trip (the class is registered).
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert restored.variable_multipliers == {b.path: 0.1}


def test_fine_tune_uses_per_group_multipliers(images):
    (x, y), _ = images
    keras.utils.set_random_seed(0)
    base = make_base()
    model = make_classifier(base)
    low0, top0 = _kernel(model, "conv_low"), _kernel(model, "conv_top")
    head0 = model.get_layer("logits").kernel.numpy().copy()
    stage = Stage(1, 1e-2, unfreeze="all", lr_multipliers={"base": 0.5, "conv_low": 0.0})
    train.fine_tune(
        model, ((x, y), (x, y)), stages=[stage], optimizer=keras.optimizers.SGD, batch_size=32, verbose=0
    )
    np.testing.assert_array_equal(_kernel(model, "conv_low"), low0)  # multiplier 0: frozen by its lr
    assert not np.allclose(_kernel(model, "conv_top"), top0)
    assert not np.allclose(model.get_layer("logits").kernel.numpy(), head0)
    assert model.optimizer.variable_multipliers["conv_top/kernel"] == 0.5
    with pytest.raises(TrainError, match="Unknown layer group"):
        train.fine_tune(model, ((x, y), (x, y)), stages=[Stage(1, 1e-3, lr_multipliers={"nope": 0.1})])


def test_a_stage_with_multipliers_and_a_schedule_keeps_its_schedule(images):
    # Issue #14: the schedule went through get_config() as a plain dict, which the optimizer refused.
    (x, y), _ = images
    keras.utils.set_random_seed(0)
    model = make_classifier(make_base())
    stage = Stage(2, 1e-2, unfreeze="all", warmup=0.5, schedule="cosine", lr_multipliers={"base": 0.1})
    history = train.fine_tune(model, ((x, y), (x, y)), stages=[stage], batch_size=30, verbose=0)
    assert np.all(np.isfinite(history.history["loss"])) and history.epochs == 2
    optimizer = model.optimizer
    assert type(optimizer).__name__ == "DiscriminativeAdam"
    assert optimizer.variable_multipliers["conv_top/kernel"] == 0.1
    assert "logits/kernel" not in optimizer.variable_multipliers
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    # 4 steps per epoch: warm-up to the peak over 2 steps, then a cosine down to 0 at step 8.
    rates = [float(schedule(step)) for step in (0, 2, 5, 8)]
    np.testing.assert_allclose(rates, [0.0, 1e-2, 1e-2 * 0.5 * (1 + np.cos(np.pi * 3 / 6)), 0.0], atol=1e-7)
    assert float(optimizer.learning_rate) < 1e-6  # training went through all 8 steps


def test_run_folders_are_off_unless_asked_for_and_named_by_every_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_CACHE", str(tmp_path / "cache"))
    x, y = np.random.default_rng(0).random((40, 4), "float32"), np.arange(40) % 3

    def run(learning_rate, run_dir):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.compile(
            keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        return model, train.fit(model, (x, y), epochs=2, run_dir=run_dir, verbose=0)

    run(1e-2, None)
    assert not (tmp_path / "cache" / "runs").exists()
    first, history = run(1e-2, True)
    assert history.run_dir.parent.parent == tmp_path / "cache" / "runs"
    # The same settings again: the finished run is loaded, not trained again.
    monkeypatch.setattr(keras.Model, "fit", lambda *a, **k: pytest.fail("trained again"))
    again, history_again = run(1e-2, True)
    monkeypatch.undo()
    monkeypatch.setenv("TLCOURSE_CACHE", str(tmp_path / "cache"))
    assert history_again.run_dir == history.run_dir and history_again.history == history.history
    np.testing.assert_array_equal(again.get_weights()[0], first.get_weights()[0])
    # Another learning rate is another run (lesson 10's baseline used to reload the old weights).
    _, other = run(1e-3, True)
    assert other.run_dir != history.run_dir
    # A folder given by name refuses a run of other settings, and keeps what it holds.
    run(1e-2, tmp_path / "mine")
    with pytest.raises(TrainError, match="other optimizer"):
        run(1e-3, tmp_path / "mine")
    assert (tmp_path / "mine" / "done.json").exists()


def test_fine_tune_stops_early_on_validation_and_takes_a_bundle(images):
    (x, y), _ = images

    class Bundle:  # the DataBundle contract of tlcourse.data, on arrays
        name, class_names, source = "toy", ["r", "g", "b"], "tlcourse"
        sizes = {"train": 120, "val": 120, "test": 0}
        image_shape = (SIZE, SIZE, 3)
        num_classes = 3
        train = tf.data.Dataset.from_tensor_slices((x, y))
        val = tf.data.Dataset.from_tensor_slices((x, (y + 1) % 3))  # the wrong labels: val loss only grows
        test = train.take(0)
        calls = []

        def batches(self, split, *, batch_size=None, shuffle=None, augment=None, image_size=None):
            self.calls.append((split, batch_size))
            return getattr(self, split).batch(batch_size)

    bundle = Bundle()
    keras.utils.set_random_seed(0)
    model = make_classifier(make_base())
    history = train.fine_tune(
        model, bundle, stages=[Stage(12, 3e-2)], early_stopping=1, batch_size=20, verbose=0
    )
    assert history.epochs < 12
    assert ("train", 20) in bundle.calls and ("val", 20) in bundle.calls


def test_stage_validation():
    with pytest.raises(ConfigError, match="learning_rate"):
        Stage(1, 0)
    with pytest.raises(ConfigError, match="Unknown schedule"):
        Stage(1, 1e-3, schedule="cosin")
    with pytest.raises(ConfigError, match="unfreeze"):
        Stage(1, 1e-3, unfreeze=True)


# --------------------------------------------------------------------------- compare
def test_compare_runs_recipes_on_the_same_subsets_and_seeds(images):
    (x, y), (xv, yv) = images
    calls = []

    def linear(train_xy, val_xy, seed):
        calls.append((len(train_xy[0]), seed, train_xy[0][:2].tobytes()))
        model = keras.Sequential(
            [
                keras.Input((SIZE, SIZE, 3)),
                keras.layers.Rescaling(1 / 255),
                keras.layers.GlobalAveragePooling2D(),
            ]
            + [keras.layers.Dense(3)]
        )
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        train.fit(model, train_xy, epochs=2, verbose=0)
        return model

    def extraction(train_xy, val_xy, seed):
        base = make_base()
        head, _ = train.fit_head(
            train.extract_features(base, train_xy, cache=False, verbose=0), epochs=2, seed=seed
        )
        inputs = keras.Input((SIZE, SIZE, 3))
        return keras.Model(inputs, head(base(inputs)))

    result = train.compare(
        {"linear": linear, "extraction": extraction, "again": linear},
        ((x, y), (xv, yv), (xv, yv)),
        seeds=(0, 1),
        fractions=(4,),
        verbose=False,
    )
    assert len(result.rows) == 6
    assert all(r["n_train"] == 12 and 0 <= r["accuracy"] <= 1 and r["wall_time"] > 0 for r in result.rows)
    # Both calls of one seed saw the same subset; the two seeds saw different ones.
    assert [c[:2] for c in calls] == [(12, 0), (12, 0), (12, 1), (12, 1)]
    assert calls[0][2] == calls[1][2] != calls[2][2]
    params = {r["recipe"]: r["trainable_params"] for r in result.rows}
    assert params["linear"] == 3 * 3 + 3 and params["extraction"] > params["linear"]
    summary = result.summary()
    assert len(summary) == 3 and all(s["n"] == 2 for s in summary)
    assert "extraction" in repr(result) and "±" in repr(result)
    with pytest.raises(ConfigError, match="recipes must map"):
        train.compare({"scratch": "scratch"}, ((x, y), (xv, yv), (xv, yv)), seeds=1, fractions=(2,))


# --------------------------------------------------------------------------- bad input
def test_labels_that_do_not_match_the_loss():
    x = np.random.rand(20, 4).astype("float32")
    y = np.arange(20) % 3
    with pytest.raises(DataError, match="one-hot") as info:
        train.fit(compiled_dense(), (x, keras.utils.to_categorical(y, 3)), epochs=1)
    assert "CategoricalCrossentropy" in info.value.hint
    categorical = compiled_dense(loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    with pytest.raises(DataError, match="integer class ids") as info:
        train.fit(categorical, (x, y), epochs=1)
    assert "to_categorical" in info.value.hint


def test_num_classes_that_do_not_match_the_data():
    x = np.random.rand(20, 4).astype("float32")
    y = np.arange(20) % 5
    with pytest.raises(DataError, match="go from 0 to 4") as info:
        train.fit_head(x, y, num_classes=3, epochs=1)
    assert "num_classes=5" in info.value.hint
    with pytest.raises(DataError, match="3 outputs"):
        train.fit(compiled_dense(units_out=3), (x, y), epochs=1)


def test_float_images_where_raw_pixels_are_expected(images):
    (x, y), _ = images
    scaled = x.astype("float32") / 255
    with pytest.raises(DataError, match=r"\[0, 255\]") as info:
        train.extract_features(make_base(), (scaled, y), cache=False)
    assert "Multiply by 255" in info.value.hint
    with pytest.raises(DataError, match="floats"):
        train.fine_tune(make_classifier(make_base()), ((scaled, y), (scaled, y)), stages=[Stage(1, 1e-3)])


def test_empty_datasets():
    empty = tf.data.Dataset.from_tensor_slices((np.zeros((0, 4), "float32"), np.zeros((0,), "int64")))
    with pytest.raises(DataError, match="empty"):
        train.fit(compiled_dense(), empty.batch(4), epochs=1)
    with pytest.raises(DataError, match="empty"):
        train.fit(compiled_dense(), empty.batch(4).filter(lambda a, b: False), epochs=1)
    with pytest.raises(DataError, match="empty"):
        train.extract_features(make_base(), (np.zeros((0, SIZE, SIZE, 3), "uint8"), np.zeros(0)), cache=False)
    with pytest.raises(DataError, match="needs features"):
        train.fit_head(np.zeros((0, 4)), np.zeros(0), num_classes=2)


class StopAt(keras.callbacks.Callback):
    """Simulates an interrupted run: raises when an epoch begins."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_foreign_checkpoint_is_refused_and_kept(tmp_path):
    x = np.random.rand(40, 4).astype("float32")
    y = np.arange(40) % 3
    with pytest.raises(KeyboardInterrupt):
        train.fit(compiled_dense(), (x, y), epochs=4, run_dir=tmp_path, callbacks=[StopAt(2)], verbose=0)
    before = _files(tmp_path)
    assert "backup/latest.weights.h5" in before
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16), keras.layers.Dense(CLASSES)])
    other.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(TrainError, match="different model") as info:
        train.fit(other, (x, y), epochs=4, run_dir=tmp_path, verbose=0)
    assert "run_dir" in info.value.hint
    assert _files(tmp_path) == before
    # The same architecture (a fresh instance, other layer names) resumes at epoch 2.
    history = train.fit(compiled_dense(), (x, y), epochs=4, run_dir=tmp_path, verbose=0)
    assert history.resumed_from == 2 and history.epochs == 4


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    x = np.random.rand(40, 4).astype("float32")
    y = np.arange(40) % 3
    model = compiled_dense()
    real_save_weights = keras.Model.save_weights
    calls = {"n": 0}

    def save_weights_until_disk_full(self, filepath, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 2:
            Path(filepath).write_bytes(b"partial")  # a half-written file, as a full disk leaves it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save_weights(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights_until_disk_full)
    with pytest.raises(TrainError, match="disk is full") as info:
        train.fit(model, (x, y), epochs=4, run_dir=tmp_path, verbose=0)
    assert "epoch 1" in info.value.message and "intact" in info.value.message
    assert "Free some disk space" in info.value.hint
    monkeypatch.undo()
    # Keras's BackupAndRestore(double_checkpoint=True) copied the epoch-1 checkpoint aside before
    # writing the next one: the half-written file is not all there is.
    meta = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert meta["epoch"] == 1
    assert (tmp_path / "backup" / "latest.weights.h5").read_bytes() == b"partial"
    shutil.copyfile(tmp_path / "backup" / "latest.weights.h5.bkp", tmp_path / "kept.weights.h5")
    kept = compiled_dense()
    kept.optimizer.build(kept.trainable_variables)
    kept.load_weights(str(tmp_path / "kept.weights.h5"))  # a whole checkpoint: weights and Adam's state
    # Run again: Keras falls back to the copy, and training resumes after epoch 1.
    history = train.fit(compiled_dense(), (x, y), epochs=4, run_dir=tmp_path, verbose=0)
    assert history.resumed_from == 1 and history.epochs == 4


def test_model_not_compiled():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(TrainError, match="not compiled"):
        train.fit(model, (np.zeros((4, 4)), np.zeros(4)), epochs=1)


# --------------------------------------------------------------------------- distribution
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import tlcourse
    from tlcourse import env, train
    sys.path.insert(0, sys.argv[2])
    from test_train import make_base, make_classifier, make_images

    course = tlcourse.setup(verbose=False, seed=0)
    course.strategy = env.choose_strategy(course.devices, logical_devices=["/cpu:0", "/cpu:1"])
    x, y = make_images(64)
    with course.strategy.scope():
        base = make_base()
        model = make_classifier(base)
    feats = train.extract_features(base, (x, y), cache=False, verbose=0)
    head, head_history = train.fit_head(feats, epochs=2, batch_size=8, verbose=0)
    stages = [train.Stage(1, 1e-2), train.Stage(1, 1e-3, unfreeze="all", lr_multipliers={"base": 0.5})]
    history = train.fine_tune(model, ((x, y), (x, y)), stages=stages, batch_size=8,
                              run_dir=sys.argv[1], verbose=0)
    print(json.dumps({
        "replicas": course.replicas,
        "head_strategy": type(head.distribute_strategy).__name__,
        "model_strategy": type(model.distribute_strategy).__name__,
        "features": list(feats.features.shape),
        "head_losses": head_history.history["loss"],
        "fine_tune_losses": history.history["loss"],
        "boundaries": history.stage_boundaries,
    }))
    """
)


def test_fit_head_and_fine_tune_run_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    env_vars = {**os.environ, "TLCOURSE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), str(ROOT / "tests")],
        capture_output=True,
        text=True,
        timeout=400,
        env=env_vars,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["head_strategy"] == result["model_strategy"] == "MirroredStrategy"
    assert result["features"] == [64, 8]
    assert result["boundaries"] == [0, 1]
    assert all(np.isfinite(result["head_losses"] + result["fine_tune_losses"]))
