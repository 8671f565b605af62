"""tlcourse.adapt: gradient reversal, λ schedule, CORAL, AdaBN, DANN, Deep CORAL, pseudo-labels."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tlcourse import adapt
from tlcourse.errors import ConfigError, DataError, ModelError


def _blobs(n, seed, *, scale=1.0, shift=0.0):
    """Two Gaussian classes in 4-D; the target domain is the same data rescaled and shifted."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4)) + np.where(y[:, None] == 1, 1.5, -1.5) * np.array([1.0, 1.0, 0.0, 0.0])
    return (x * scale + shift).astype("float32"), y.astype("int64")


def _bn_mlp(seed=0, *, momentum=0.99):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    x = keras.layers.BatchNormalization(momentum=momentum, name="bn_in")(inputs)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    x = keras.layers.BatchNormalization(momentum=momentum, name="bn_hidden")(x)
    x = keras.layers.Dense(8, activation="relu", name="features")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x), name="bn_mlp")


def _small_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Conv2D(6, 3, padding="same")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="tiny_cnn")


@pytest.fixture(scope="module")
def trained_source():
    """A BN classifier trained on the source blobs (well-converged moving statistics)."""
    model = _bn_mlp(0, momentum=0.9)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y = _blobs(512, 0)
    model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    return model


# --------------------------------------------------------------------------- gradient reversal
@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 2.5])
def test_gradient_reversal_gradient_is_minus_lambda_times_identity(lam):
    x = tf.constant(np.random.default_rng(1).normal(size=(5, 3)), dtype="float32")
    weights = tf.constant(np.random.default_rng(2).normal(size=(5, 3)), dtype="float32")
    layer = adapt.GradientReversal(lambda_=lam)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        reversed_out = layer(x)
        identity_out = tf.identity(x)
        loss_reversed = tf.reduce_sum(weights * tf.sin(reversed_out))
        loss_identity = tf.reduce_sum(weights * tf.sin(identity_out))
    np.testing.assert_array_equal(reversed_out.numpy(), x.numpy())  # forward: exactly the identity
    grad_reversed = tape.gradient(loss_reversed, x).numpy()
    grad_identity = tape.gradient(loss_identity, x).numpy()
    np.testing.assert_allclose(grad_reversed, -lam * grad_identity, rtol=1e-6, atol=1e-7)


def test_gradient_reversal_lambda_changes_inside_a_compiled_function():
    layer = adapt.GradientReversal(lambda_=1.0)

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(layer(x))
        return tape.gradient(y, x)

    x = tf.ones((2,))
    assert gradient(x).numpy().tolist() == [-1.0, -1.0]
    layer.lambda_ = 0.25  # a variable: the traced function sees the new value
    assert gradient(x).numpy().tolist() == [-0.25, -0.25]
    assert layer.lambda_ == 0.25
    assert not layer.trainable_weights


def test_gradient_reversal_round_trips_through_config():
    layer = adapt.GradientReversal(lambda_=0.7, name="grl")
    clone = adapt.GradientReversal.from_config(layer.get_config())
    assert clone.lambda_ == pytest.approx(0.7) and clone.name == "grl"


# --------------------------------------------------------------------------- λ schedule
def test_dann_lambda_schedule_matches_ganin_formula_and_rises_from_0_to_1():
    progress = np.linspace(0, 1, 21)
    values = adapt.dann_lambda_schedule(progress)
    np.testing.assert_allclose(values, 2 / (1 + np.exp(-10 * progress)) - 1)
    assert values[0] == 0.0 and values[-1] == pytest.approx(1.0, abs=1e-4)
    assert np.all(np.diff(values) > 0)
    assert adapt.dann_lambda_schedule(0.2, gamma=1.0) < adapt.dann_lambda_schedule(0.2, gamma=10.0)
    assert adapt.dann_lambda_schedule(1.0, max_lambda=0.5) == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_dann_lambda_schedule_rejects_progress_outside_0_1(bad):
    with pytest.raises(ConfigError, match="progress"):
        adapt.dann_lambda_schedule(bad)


def test_lambda_schedule_callback_updates_every_batch():
    inputs = keras.Input((2,))
    reversal = adapt.GradientReversal(lambda_=0.0)
    model = keras.Model(inputs, keras.layers.Dense(1)(reversal(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    schedule = adapt.LambdaSchedule(gamma=10.0)
    model.fit(np.zeros((16, 2)), np.zeros((16, 1)), batch_size=4, epochs=2, verbose=0, callbacks=[schedule])
    assert len(schedule.values) == 8  # 4 batches × 2 epochs
    assert schedule.values[0] == 0.0
    assert np.all(np.diff(schedule.values) > 0)
    assert reversal.lambda_ == pytest.approx(schedule.values[-1])
    assert schedule.values[-1] == pytest.approx(adapt.dann_lambda_schedule(7 / 8))


def test_lambda_schedule_needs_a_reversal_layer():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ModelError, match="GradientReversal"):
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0, callbacks=[adapt.LambdaSchedule()])


# --------------------------------------------------------------------------- CORAL
def test_coral_loss_is_zero_for_identical_covariances():
    x = np.random.default_rng(0).normal(size=(200, 6)).astype("float32")
    assert float(adapt.coral_loss(x, x)) == 0.0
    assert float(adapt.coral_loss(x, x + 7.0)) < 1e-6  # same data shifted: same covariance
    assert float(adapt.coral_loss(x, x[::-1])) < 1e-6  # order does not matter


def test_coral_loss_grows_monotonically_with_the_covariance_gap():
    x = np.random.default_rng(0).normal(size=(300, 5)).astype("float32")
    scales = [1.0, 1.2, 1.5, 2.0, 3.0, 5.0]
    losses = [float(adapt.coral_loss(x, s * x)) for s in scales]
    assert losses[0] < 1e-7
    assert all(b > a for a, b in zip(losses, losses[1:], strict=False))
    # and it is the Deep CORAL formula
    cov = np.cov(x, rowvar=False)
    expected = np.sum((cov - 4.0 * cov) ** 2) / (4 * 5**2)
    assert float(adapt.coral_loss(x, 2.0 * x)) == pytest.approx(expected, rel=1e-4)


def test_coral_loss_rejects_mismatched_features():
    with pytest.raises(DataError, match="width"):
        adapt.coral_loss(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(DataError, match="2-D"):
        adapt.coral_loss(np.zeros((4, 3, 3)), np.zeros((4, 3, 3)))


# --------------------------------------------------------------------------- AdaBN
def _bn_inputs(model, layer_name, images):
    probe = keras.Model(model.inputs, model.get_layer(layer_name).input)
    values = probe.predict(images, verbose=0)
    return values.reshape(-1, values.shape[-1])


def test_adabn_leaves_the_source_model_untouched_and_adopts_target_statistics():
    model = _small_cnn(0)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    source = rng.integers(0, 120, size=(64, 8, 8, 3)).astype("uint8")
    model.fit(source, rng.integers(0, 3, 64), epochs=2, batch_size=16, verbose=0)
    before = [w.copy() for w in model.get_weights()]
    target = rng.integers(100, 255, size=(150, 8, 8, 3)).astype("uint8")

    adapted = adapt.adabn(model, target, batch_size=32)

    assert adapted is not model
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    for name in ("bn1", "bn2"):  # bn2's inputs already pass through the adapted bn1
        inputs = _bn_inputs(adapted, name, target)
        layer = adapted.get_layer(name)
        np.testing.assert_allclose(layer.moving_mean.numpy(), inputs.mean(axis=0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.moving_variance.numpy(), inputs.var(axis=0), rtol=1e-3, atol=1e-5)
        assert not np.allclose(layer.moving_mean.numpy(), model.get_layer(name).moving_mean.numpy())
    assert adapted.compiled  # compile settings carried over
    assert adapted.get_layer("bn1").call.__func__ is keras.layers.BatchNormalization.call  # un-patched


def test_adabn_ignores_labels_in_a_dataset_and_rejects_models_without_batchnorm():
    model = _small_cnn(1)
    images = np.random.default_rng(3).integers(0, 255, size=(40, 8, 8, 3)).astype("uint8")
    garbage_labels = np.arange(40)
    from_array = adapt.adabn(model, images)
    from_dataset = adapt.adabn(model, tf.data.Dataset.from_tensor_slices((images, garbage_labels)).batch(7))
    for a, b in zip(from_array.get_weights(), from_dataset.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="BatchNormalization"):
        adapt.adabn(plain, np.zeros((4, 4)))
    with pytest.raises(DataError):
        adapt.adabn(model, np.zeros((0, 8, 8, 3)))


def test_adabn_undoes_an_affine_domain_shift(trained_source):
    source = _blobs(400, 1)
    target = _blobs(400, 1, scale=2.0, shift=-8.0)
    before = adapt.evaluate_domains(trained_source, source, target)
    adapted = adapt.adabn(trained_source, target[0])  # images only
    after = adapt.evaluate_domains(adapted, source, target)
    assert before["source"] > 0.9
    assert before["target"] < 0.75
    assert after["target"] > before["target"] + 0.15
    assert after["target"] == pytest.approx(before["source"], abs=0.05)


# --------------------------------------------------------------------------- DANN and Deep CORAL
def test_split_classifier_shares_weights_and_reproduces_the_output():
    model = _bn_mlp(0)
    features, head = adapt.split_classifier(model, feature_layer="features")
    x = _blobs(8, 0)[0]
    np.testing.assert_allclose(head(features(x)).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    assert features.output_shape == (None, 8)
    with pytest.raises(ModelError, match="layer"):
        adapt.split_classifier(model, feature_layer="featurs")
    with pytest.raises(ModelError):
        adapt.split_classifier(model, feature_layer=-1)


def test_dann_trains_without_touching_the_classifier_and_logs_its_losses(trained_source):
    before = [w.copy() for w in trained_source.get_weights()]
    source = _blobs(256, 2)
    target_images = _blobs(256, 3, scale=2.0, shift=1.0)[0]
    with tf.distribute.get_strategy().scope():
        dann = adapt.fit_dann(
            trained_source,
            source,
            target_images,
            feature_layer="features",
            epochs=3,
            batch_size=32,
            verbose=0,
        )
    logs = dann.history.history
    assert {"loss", "label_loss", "accuracy", "domain_loss", "domain_accuracy", "lambda"} <= set(logs)
    assert logs["lambda"][0] < logs["lambda"][1] < logs["lambda"][2] <= 1.0
    assert all(np.isfinite(logs["domain_loss"]))
    assert dann.lambda_ == pytest.approx(adapt.dann_lambda_schedule(23 / 24), rel=1e-5)
    for old, new in zip(before, trained_source.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert dann.predict(source[0][:5], verbose=0).shape == (5, 2)
    classifier = dann.as_classifier()
    np.testing.assert_allclose(
        classifier.predict(source[0][:5], verbose=0), dann.predict(source[0][:5], verbose=0)
    )
    assert adapt.evaluate_domains(dann, source, source)["source"] > 0.85


def test_dann_domain_head_is_trained_against_reversed_features():
    """λ = 0: the features are not pushed at all by the domain loss; λ > 0: they move."""
    x_source, y_source = _blobs(64, 4)
    x_target = _blobs(64, 5, shift=3.0)[0]
    batch = ((tf.constant(x_source), tf.constant(y_source)), tf.constant(x_target))

    def feature_gradient(lam):
        keras.utils.set_random_seed(0)
        features = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu")])
        head = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
        dann = adapt.DANN(features, head, lambda_=lam)
        with tf.GradientTape() as tape:
            f = features(tf.concat([batch[0][0], batch[1]], 0))
            loss = dann._adaptation_loss(f[:64], f[64:], training=True)
        return tape.gradient(loss, features.trainable_variables[0]).numpy()

    np.testing.assert_array_equal(feature_gradient(0.0), 0.0)
    np.testing.assert_allclose(feature_gradient(2.0), 2.0 * feature_gradient(1.0), rtol=1e-5, atol=1e-7)
    assert np.abs(feature_gradient(1.0)).sum() > 0


def test_two_domain_models_reject_plain_batches():
    features = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    head = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    model = adapt.DeepCORAL(features, head)
    model.compile(optimizer="adam")
    x, y = _blobs(32, 0)
    with pytest.raises(DataError, match="x_target"):
        model.fit(x, y, epochs=1, verbose=0)


def test_deep_coral_shrinks_the_covariance_gap():
    source = _blobs(256, 6)
    target_images = _blobs(256, 7, scale=4.0)[0]
    keras.utils.set_random_seed(0)
    classifier = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="features"), keras.layers.Dense(2)]
    )
    model = adapt.fit_coral(
        classifier,
        source,
        target_images,
        coral_weight=10.0,
        epochs=6,
        batch_size=64,
        learning_rate=1e-2,
        verbose=0,
    )
    logs = model.history.history
    assert logs["coral_loss"][-1] < 0.5 * logs["coral_loss"][0]
    assert logs["accuracy"][-1] > 0.8
    loaded = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(loaded, adapt.DeepCORAL) and loaded.coral_weight == 10.0


# --------------------------------------------------------------------------- pseudo-labels
def test_pseudo_label_keeps_only_confident_predictions(trained_source):
    target_images = _blobs(300, 8, scale=1.3)[0]
    loose = adapt.pseudo_label(trained_source, target_images, threshold=0.6)
    strict = adapt.pseudo_label(trained_source, target_images, threshold=0.95)
    assert loose.mask.shape == strict.mask.shape == (300,)
    assert strict.mask.sum() < loose.mask.sum()
    assert np.all(loose.mask[strict.mask])  # strict ⊂ loose
    assert np.all(strict.confidence[strict.mask] >= 0.95)
    assert np.all(strict.confidence[~strict.mask] < 0.95)
    np.testing.assert_array_equal(strict.images, target_images[strict.mask])
    probabilities = tf.nn.softmax(trained_source.predict(target_images, verbose=0)).numpy()
    np.testing.assert_array_equal(strict.labels, probabilities.argmax(-1)[strict.mask])
    capped = adapt.pseudo_label(trained_source, target_images, threshold=0.6, max_per_class=10)
    assert np.bincount(capped.labels).max() <= 10
    with pytest.raises(ConfigError, match="threshold"):
        adapt.pseudo_label(trained_source, target_images, threshold=1.0)


def test_self_train_returns_a_new_model_trained_on_confident_target_images(trained_source):
    before = [w.copy() for w in trained_source.get_weights()]
    source = _blobs(200, 9)
    target_images = _blobs(200, 10, scale=1.5, shift=0.5)[0]
    tuned = adapt.self_train(
        trained_source, source, target_images, threshold=0.9, rounds=2, batch_size=32, verbose=0
    )
    assert tuned is not trained_source
    assert len(tuned.pseudo_label_counts) == 2 and all(0 < c <= 200 for c in tuned.pseudo_label_counts)
    for old, new in zip(before, trained_source.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert any(not np.array_equal(a, b) for a, b in zip(before, tuned.get_weights(), strict=True))


# --------------------------------------------------------------------------- evaluation
def test_evaluate_domains_counts_correct_predictions_per_domain():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")(inputs))
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 3.0]], dtype="float32")
    y = np.array([0, 1, 1, 1])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)

    class Bundle:  # anything with .arrays(split), like tlcourse.data.DataBundle
        def arrays(self, split):
            assert split == "test"
            return x, np.array([0, 0, 0, 0])

    result = adapt.evaluate_domains(model, (x, y), dataset, extra=Bundle())
    assert result == {"source": 0.75, "target": 0.75, "extra": 0.5}
    with pytest.raises(DataError):
        adapt.evaluate_domains(model, (x, y[:2]), (x, y))


def test_per_domain_batchnorm_trains_and_round_trips(trained_source):
    source = _blobs(128, 11)
    target_images = _blobs(128, 12, scale=2.0, shift=-3.0)[0]
    model = adapt.fit_coral(
        trained_source,
        source,
        target_images,
        feature_layer="features",
        batchnorm="per_domain",
        epochs=1,
        batch_size=32,
        verbose=0,
    )
    assert model.batchnorm == "per_domain"
    assert np.isfinite(model.history.history["coral_loss"][-1])
    adapted = adapt.adabn(model.as_classifier(), target_images)
    bn_in = next(layer for layer in adapted._flatten_layers() if layer.name == "bn_in")
    np.testing.assert_allclose(bn_in.moving_mean.numpy(), target_images.mean(axis=0), rtol=1e-4, atol=1e-4)
    config = model.get_config()
    assert config["batchnorm"] == "per_domain"
    with pytest.raises(ConfigError, match="batchnorm"):
        adapt.DeepCORAL(model.feature_extractor, model.label_head, batchnorm="separate")


# --------------------------------------------------------------------------- re-using compiled models
def _compiled_mlp(seed):
    model = _bn_mlp(seed, momentum=0.9)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_restart_trains_exactly_like_a_fresh_model_without_retracing():
    x, y = _blobs(128, 13)
    used = _compiled_mlp(0)
    used.fit(x, y, batch_size=32, epochs=2, verbose=0)
    step = used.train_function
    fresh = _compiled_mlp(1)
    adapt.restart(used, _bn_mlp(1, momentum=0.9))
    assert int(used.optimizer.iterations) == 0
    assert all(not np.any(v.numpy()) for v in used.optimizer.variables if "momentum" in v.path)
    assert float(used.optimizer.learning_rate) == pytest.approx(1e-2)
    for model in (fresh, used):
        keras.utils.set_random_seed(5)
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert used.train_function is step  # the step traced by the first fit served again
    for a, b in zip(fresh.get_weights(), used.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_restart_rejects_uncompiled_models_and_foreign_weights():
    with pytest.raises(ModelError, match="compiled"):
        adapt.restart(_bn_mlp(0), _bn_mlp(1))
    with pytest.raises(ModelError, match="do not fit"):
        adapt.restart(_compiled_mlp(0), _small_cnn(0))
    with pytest.raises(ModelError, match="arrays"):
        adapt.restart(_compiled_mlp(0), [np.zeros(3)])


@pytest.mark.parametrize("fit", [adapt.fit_coral, adapt.fit_dann])
def test_into_retrains_an_earlier_result_exactly_like_a_new_one(trained_source, fit):
    source = _blobs(128, 14)
    target_images = _blobs(128, 15, scale=2.0)[0]
    other = _compiled_mlp(3)
    other.fit(*_blobs(128, 16), batch_size=32, epochs=2, verbose=0)
    settings = dict(feature_layer="features", epochs=2, batch_size=32, verbose=0)
    earlier = fit(trained_source, source, target_images, seed=0, **settings)
    step = earlier.train_function
    keras.utils.set_random_seed(7)
    fresh = fit(other, source, target_images, seed=1, **settings)
    keras.utils.set_random_seed(7)
    again = fit(other, source, target_images, seed=1, into=earlier, **settings)
    assert again is earlier and again.train_function is step
    for a, b in zip(fresh.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert fresh.history.history.keys() == again.history.history.keys()
    for key, values in fresh.history.history.items():  # the logged means may differ in the last bit
        np.testing.assert_allclose(values, again.history.history[key], rtol=1e-5)


def test_into_rejects_other_settings_and_architectures(trained_source):
    source = _blobs(64, 17)
    target_images = _blobs(64, 18)[0]
    settings = dict(feature_layer="features", epochs=1, batch_size=32, verbose=0)
    coral = adapt.fit_coral(trained_source, source, target_images, **settings)
    with pytest.raises(ConfigError, match="coral_weight"):
        adapt.fit_coral(trained_source, source, target_images, coral_weight=0.0, into=coral, **settings)
    with pytest.raises(ConfigError, match="DANN"):
        adapt.fit_dann(trained_source, source, target_images, into=coral, **settings)
    wider = _bn_mlp(0)
    wider = keras.Model(wider.inputs, keras.layers.Dense(3)(wider.get_layer("features").output))
    with pytest.raises(ModelError, match="do not fit"):
        adapt.fit_coral(wider, source, target_images, into=coral, **settings)
