"""Lesson 10 §10: the SavedModel it writes by hand converts to the same TFLite model as the one-line route.

The lesson builds a SavedModel that holds only the forward pass at inference and the variables it reads, and
says that ``tf.lite.TFLiteConverter.from_keras_model`` (which exports the whole Keras model first) converts to
the same TFLite model. This pins that sentence on a small model with the layers that matter: preprocessing,
a convolution, BatchNormalization, pooling and a Dense head, with 8-bit weights as in the lesson.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

SIZE = 32


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="logits")(x))
    # BatchNormalization's moving statistics away from their initial values, as after training.
    batchnorm = model.layers[3]
    batchnorm.moving_mean.assign(np.linspace(-0.5, 0.5, 16).astype("float32"))
    batchnorm.moving_variance.assign(np.linspace(0.5, 2.0, 16).astype("float32"))
    return model


def _the_lessons_route(model, folder) -> bytes:
    serving = tf.Module()
    serving.weights = [weight.value for weight in model.weights]
    serving.predict = tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32)],
    )
    tf.saved_model.save(serving, str(folder), signatures=serving.predict)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def _the_one_line_route(model) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def _predict(tflite: bytes, images: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings(action="ignore", category=UserWarning):  # deprecated for ai-edge-litert
        interpreter = tf.lite.Interpreter(model_content=tflite)
    given = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(given, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(given, images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_the_lessons_savedmodel_converts_to_the_same_tflite_model(model, tmp_path):
    images = np.random.default_rng(0).uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32")
    by_hand = _the_lessons_route(model, tmp_path / "model.savedmodel")
    one_line = _the_one_line_route(model)
    assert abs(len(by_hand) - len(one_line)) <= 0.05 * len(one_line), (len(by_hand), len(one_line))
    np.testing.assert_array_equal(_predict(by_hand, images), _predict(one_line, images))
    # and both compute what Keras computes, up to the 8-bit weights
    keras_logits = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(_predict(by_hand, images), keras_logits, atol=0.05 * np.ptp(keras_logits))


@pytest.mark.skipif(
    tuple(int(part) for part in keras.__version__.split(".")[:2]) < (3, 13),
    reason="model.export(..., format='litert') arrived in Keras 3.13",
)
def test_keras_litert_export_gives_the_same_tflite_model(model, tmp_path):
    """The lesson names Keras's `model.export(file, format="litert")` as the other one-line route."""
    images = np.random.default_rng(1).uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32")
    exported = tmp_path / "model.tflite"
    model.export(str(exported), format="litert", optimizations=[tf.lite.Optimize.DEFAULT], verbose=False)
    by_hand = _the_lessons_route(model, tmp_path / "model.savedmodel")
    np.testing.assert_array_equal(_predict(exported.read_bytes(), images), _predict(by_hand, images))


def test_the_lessons_savedmodel_holds_the_trained_weights(model, tmp_path):
    """Without the weights tracked by the module, saving fails loudly rather than writing an empty model."""
    serving = tf.Module()
    serving.predict = tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32)],
    )
    with pytest.raises((AssertionError, ValueError), match="untracked"):
        tf.saved_model.save(serving, str(tmp_path / "untracked"), signatures=serving.predict)
