"""What lesson 06 (domain adaptation) uses around its methods: accuracy per domain, and re-runs without re-tracing.

The methods themselves — AdaBN, the CORAL loss, the two-domain training step of Deep CORAL and DANN,
gradient reversal, pseudo-labels — are written in plain Keras in lesson 06, so that you can lift
them out of it; this module does not ship them (the exercises ask you to write them).

- :func:`evaluate_domains` reports a classifier's accuracy on each domain's labelled test data.
- :func:`restart` trains a compiled model again from new weights without tracing its training step
  again: the lesson re-runs every method for several seeds.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tlcourse.errors import ConfigError, DataError, ModelError

__all__ = ["evaluate_domains", "restart"]


# --------------------------------------------------------------------------- re-using a traced model
def _weights_of(weights, model: keras.Model) -> list:
    """``weights`` (a model or a list of arrays) as a list that fits ``model``, or a clear error."""
    arrays = weights.get_weights() if isinstance(weights, keras.Model) else list(weights)
    shapes = [tuple(variable.shape) for variable in model.weights]
    if [tuple(np.shape(array)) for array in arrays] != shapes:
        raise ModelError(
            f"restart: the new weights do not fit {model.name!r} ({len(arrays)} arrays for its "
            f"{len(shapes)} weights, or other shapes).",
            hint="Pass a model of the same architecture (built the same way), or its get_weights().",
        )
    return arrays


def _reset_optimizer(model: keras.Model) -> None:
    """Put the optimizer back in its just-built state (step 0, empty moments), keeping its variables."""
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    fresh = type(optimizer).from_config(optimizer.get_config())
    fresh.build(model.trainable_variables)
    if [tuple(v.shape) for v in fresh.variables] != [tuple(v.shape) for v in optimizer.variables]:
        raise ModelError(
            f"Cannot restart the {type(optimizer).__name__} optimizer of {model.name!r}: a fresh one "
            f"holds {len(fresh.variables)} variables, this one {len(optimizer.variables)}.",
            hint="Compile the model again instead (its training step is then traced again).",
        )
    for variable, value in zip(optimizer.variables, fresh.variables, strict=True):
        variable.assign(value)


def restart(model: keras.Model, weights) -> keras.Model:
    """Give a compiled model new weights and a fresh optimizer, keeping its traced training step.

    ``fit`` traces a model's training step the first time it runs: one to two seconds for a small
    CNN on a CPU, often more than the training itself. To train the same architecture again — for
    another seed, from another starting point — restart the model you have instead of compiling a
    new one. The optimizer starts again from step 0 with empty moments, as if freshly built; its
    settings (learning rate, loss scaling, ...) stay. Training then gives exactly what a new model
    would.

    Parameters
    ----------
    model : keras.Model
        A compiled model; it is changed in place and returned.
    weights : keras.Model or list of arrays
        The new weights: a model built the same way (not necessarily compiled), or its ``get_weights()``.

    Returns
    -------
    keras.Model
        ``model``.

    Raises
    ------
    ModelError
        If ``model`` is not compiled, or the weights do not fit it.

    Examples
    --------
    >>> import numpy as np
    >>> def build():
    ...     return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model = build()
    >>> model.compile(optimizer="adam", loss="mse")
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), verbose=0)
    >>> step = model.train_function
    >>> other = build()
    >>> _ = restart(model, other)
    >>> int(model.optimizer.iterations)
    0
    >>> all(np.array_equal(a, b) for a, b in zip(model.get_weights(), other.get_weights()))
    True
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), verbose=0)
    >>> model.train_function is step  # the traced step served again
    True
    """
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ModelError(
            f"restart needs a compiled model; {model.name!r} is not compiled.",
            hint="Compile it once (model.compile(...)); later runs re-use it through restart.",
        )
    model.set_weights(_weights_of(weights, model))
    _reset_optimizer(model)
    return model


# --------------------------------------------------------------------------- evaluation
_DIRECT_CALL_LIMIT = 4096  # up to this many images, direct calls beat tracing predict's function


def _logits(model: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    if len(images) > _DIRECT_CALL_LIMIT:
        return np.asarray(model.predict(images, batch_size=batch_size, verbose=0), dtype="float32")
    # A few hundred images: calling the model batch by batch skips tracing predict's function
    # (about half a second per new model on a CPU), which costs more than the forward passes.
    inputs = getattr(model, "inputs", None)
    dtype = inputs[0].dtype if inputs else "float32"  # what predict would feed the model
    chunks = [
        ops.convert_to_numpy(model(ops.convert_to_tensor(images[i : i + batch_size], dtype), training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks).astype("float32")


def _labelled(data, domain: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` from a pair of arrays, a dataset of pairs, or a bundle's test split."""
    if hasattr(data, "arrays") and callable(data.arrays):
        return data.arrays("test")
    if isinstance(data, tf.data.Dataset):
        pairs = [(np.asarray(x), np.asarray(y)) for x, y in data]
        if not pairs:
            raise DataError(f"{domain}: the dataset is empty.", hint="Pass at least one (image, label) pair.")
        join = np.concatenate if pairs[0][1].ndim >= 1 else np.stack  # batched or not
        return join([x for x, _ in pairs]), join([y for _, y in pairs])
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError(
            f"{domain}: expected (images, labels), a tf.data.Dataset of them, or a DataBundle; "
            f"got {type(data).__name__}.",
            hint="E.g. bundle.arrays('test').",
        )
    images, labels = np.asarray(data[0]), np.asarray(data[1])
    if len(images) != len(labels) or len(images) == 0:
        raise DataError(
            f"{domain}: {len(images)} images and {len(labels)} labels.",
            hint="Pass as many labels as images, and at least one.",
        )
    return images, labels


def evaluate_domains(
    model: keras.Model, source, target, *, batch_size: int = 256, **others
) -> dict[str, float]:
    """Accuracy of ``model`` on each domain: ``{"source": ..., "target": ..., **others}``.

    Labels are used here only to *measure*; no adaptation method of lesson 06 reads the target's.

    Parameters
    ----------
    model : keras.Model
        A classifier returning logits (or probabilities: only the arg-max matters).
    source, target, **others : (images, labels), tf.data.Dataset or DataBundle
        Labelled evaluation data per domain (a bundle contributes its ``test`` split).
    batch_size : int
        Images per forward pass.

    Returns
    -------
    dict of str to float

    Examples
    --------
    >>> import numpy as np
    >>> inputs = keras.Input((2,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")(inputs))
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32")
    >>> evaluate_domains(model, (x, np.array([0, 1])), (x, np.array([1, 1])))
    {'source': 1.0, 'target': 0.5}
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError(
            f"batch_size={batch_size!r} must be a whole number ≥ 1.", hint="Try batch_size=256."
        )
    results = {}
    for domain, data in {"source": source, "target": target, **others}.items():
        images, labels = _labelled(data, domain)
        predicted = _logits(model, images, int(batch_size)).argmax(axis=-1)
        results[domain] = float(np.mean(predicted == labels.reshape(-1)))
    return results
