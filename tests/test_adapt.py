"""tlcourse.adapt: accuracy per domain, and re-running a compiled model without re-tracing it.

The adaptation methods themselves live in lesson 06 (plain Keras); its claims tests check what they do.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tlcourse import adapt
from tlcourse.errors import ConfigError, DataError, ModelError


def _blobs(n, seed):
    """Two Gaussian classes in 4-D."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4)) + np.where(y[:, None] == 1, 1.5, -1.5) * np.array([1.0, 1.0, 0.0, 0.0])
    return x.astype("float32"), y.astype("int64")


def _bn_mlp(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x), name="bn_mlp")


def _compiled(model):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


# --------------------------------------------------------------------------- restart
def test_restart_trains_exactly_like_a_fresh_model_without_retracing():
    x, y = _blobs(128, 13)
    used = _compiled(_bn_mlp(0))
    used.fit(x, y, batch_size=32, epochs=2, verbose=0)
    step = used.train_function
    fresh = _compiled(_bn_mlp(1))
    assert adapt.restart(used, _bn_mlp(1)) is used
    assert int(used.optimizer.iterations) == 0
    assert all(not np.any(v.numpy()) for v in used.optimizer.variables if "momentum" in v.path)
    assert float(used.optimizer.learning_rate) == pytest.approx(1e-2)
    for model in (fresh, used):
        keras.utils.set_random_seed(5)
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert used.train_function is step  # the step traced by the first fit served again
    for a, b in zip(fresh.get_weights(), used.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_restart_accepts_a_weight_list_and_a_subclassed_two_domain_model():
    """Lesson 06 restarts its TwoDomainModel (a subclass with a custom train_step) from a fresh twin."""

    class Twin(keras.Model):
        def __init__(self, classifier, **kwargs):
            super().__init__(**kwargs)
            self.classifier = classifier
            self.weight = keras.Variable(0.5, trainable=False, name="weight")

        def call(self, x, training=False):
            return self.classifier(x, training=training)

    model = Twin(_bn_mlp(0))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    model.optimizer.build(model.trainable_variables)
    other = Twin(_bn_mlp(1))
    other.weight.assign(0.0)
    adapt.restart(model, other)  # from a twin ...
    assert float(model.weight.numpy()) == 0.0
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    third = Twin(_bn_mlp(2))
    adapt.restart(model, third.get_weights())  # ... or from its weights
    for a, b in zip(model.get_weights(), third.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_restart_keeps_loss_scaling_under_mixed_precision():
    x, y = _blobs(64, 3)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        used, fresh = _compiled(_bn_mlp(0)), _compiled(_bn_mlp(1))
        assert isinstance(used.optimizer, keras.optimizers.LossScaleOptimizer)
        used.fit(x, y, batch_size=16, epochs=1, verbose=0)
        adapt.restart(used, _bn_mlp(1))
        for model in (fresh, used):
            keras.utils.set_random_seed(5)
            model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert isinstance(used.optimizer, keras.optimizers.LossScaleOptimizer)
    for a, b in zip(fresh.get_weights(), used.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_restart_rejects_uncompiled_models_and_foreign_weights():
    with pytest.raises(ModelError, match="compiled"):
        adapt.restart(_bn_mlp(0), _bn_mlp(1))
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(ModelError, match="do not fit"):
        adapt.restart(_compiled(_bn_mlp(0)), other)
    with pytest.raises(ModelError, match="1 arrays"):
        adapt.restart(_compiled(_bn_mlp(0)), [np.zeros(3)])


# --------------------------------------------------------------------------- evaluate_domains
def _identity_classifier():
    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")(inputs))


def test_evaluate_domains_counts_correct_predictions_per_domain():
    model = _identity_classifier()
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 3.0]], dtype="float32")
    y = np.array([0, 1, 1, 1])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)

    class Bundle:  # anything with .arrays(split), like tlcourse.data.DataBundle
        def arrays(self, split):
            assert split == "test"
            return x, np.array([0, 0, 0, 0])

    result = adapt.evaluate_domains(model, (x, y), dataset, extra=Bundle())
    assert result == {"source": 0.75, "target": 0.75, "extra": 0.5}
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    assert adapt.evaluate_domains(model, unbatched, (x, y), batch_size=1) == {"source": 0.75, "target": 0.75}


def test_evaluate_domains_predicts_large_sets_in_batches():
    model = _identity_classifier()
    x = np.random.default_rng(0).normal(size=(5000, 2)).astype("float32")  # above the direct-call limit
    y = x.argmax(axis=1)
    assert adapt.evaluate_domains(model, (x, y), (x, 1 - y), batch_size=1024) == {
        "source": 1.0,
        "target": 0.0,
    }


def test_evaluate_domains_says_what_is_wrong_with_its_input():
    model = _identity_classifier()
    x = np.zeros((4, 2), dtype="float32")
    with pytest.raises(DataError, match="source: 4 images and 2 labels"):
        adapt.evaluate_domains(model, (x, np.zeros(2)), (x, np.zeros(4)))
    with pytest.raises(DataError, match="target: expected"):
        adapt.evaluate_domains(model, (x, np.zeros(4)), x)
    with pytest.raises(DataError, match="empty"):
        adapt.evaluate_domains(model, (x, np.zeros(4)), tf.data.Dataset.from_tensor_slices((x, x)).take(0))
    with pytest.raises(ConfigError, match="batch_size"):
        adapt.evaluate_domains(model, (x, np.zeros(4)), (x, np.zeros(4)), batch_size=0)


def test_the_module_ships_only_its_two_conveniences():
    """The methods of lesson 06 (and the answers of its exercises) are not in the package."""
    assert adapt.__all__ == ["evaluate_domains", "restart"]
    defined_here = {
        name
        for name, value in vars(adapt).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == adapt.__name__
    }
    assert defined_here == {"evaluate_domains", "restart"}
