"""Checks for the exercises: inspect what the student built and say, in one line, whether it is right.

A check cell in an exercise notebook reads::

    # NBVAL_CHECK_OUTPUT
    tlcourse.check("00.1")

and prints exactly one stable line:

- ``✅ 00.1 <what is now true>``
- ``❌ 00.1 <what is wrong and where to look>``
- ``⏳ 00.1 not attempted yet`` while the answer is still the ``raise NotImplementedError()`` stub.

The check's answers are looked up by name in the notebook (a check registered as
``def check_00_1(model)`` reads the notebook's ``model``); pass them explicitly to
check something else: ``tlcourse.check("00.1", model=my_model)``. A check never
raises: any error inside it becomes a ❌ line with the error's message. The one exception is
grading: under nbgrader (``NBGRADER_EXECUTION=autograde`` or ``validate``) a check that did not
pass raises ``AssertionError`` after printing, because nbgrader scores a test cell by whether it
raised.

Lesson checks are written with the reusable verifiers below (``expect_*``): each returns what it
measured and raises :class:`CheckFailed` with a specific hint when the answer is wrong.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import numbers
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHECKS",
    "CheckFailed",
    "CheckResult",
    "MISSING",
    "NotAttempted",
    "check",
    "count_params",
    "expect_accuracy",
    "expect_all_frozen",
    "expect_batchnorm_frozen",
    "expect_from_logits",
    "expect_gradient_reversal",
    "expect_input_shape",
    "expect_logits",
    "expect_model",
    "expect_output_shape",
    "expect_preprocessing",
    "expect_trainable",
    "parse_line",
    "progress",
    "register",
    "walk_layers",
]

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not_attempted"
SYMBOLS = {PASSED: "✅", FAILED: "❌", NOT_ATTEMPTED: "⏳"}
LINE_PATTERN = re.compile(r"^(✅|❌|⏳) (\d{2}\.\d+[a-z]?) (.*)$")
CHECK_ID_PATTERN = re.compile(r"^\d{2}\.\d+[a-z]?$")
MAX_HINT = 300


class CheckFailed(Exception):
    """Raised by a verifier: the answer is wrong; the message is the hint shown after ❌."""


class NotAttempted(Exception):
    """Raised when an answer is missing or still the stub: the check prints ⏳."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()
"""The value of an answer the notebook has not defined (yet)."""


@dataclass(frozen=True)
class CheckResult:
    """What a check found. ``str(result)`` is the line it printed.

    Attributes
    ----------
    check_id : str
        "00.1"
    status : {"passed", "failed", "not_attempted"}
    message : str
        The stable fact (passed), the hint (failed) or "not attempted yet".
    """

    check_id: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def line(self) -> str:
        return f"{SYMBOLS[self.status]} {self.check_id} {self.message}"

    def __str__(self) -> str:
        return self.line

    def _ipython_display_(self) -> None:
        # The line is already printed; a check cell that ends with `tlcourse.check(...)` must
        # not show the result a second time (nbval compares the cell's output).
        pass


@dataclass(frozen=True)
class _Check:
    check_id: str
    function: Callable[..., str]


CHECKS: dict[str, _Check] = {}
"""The registered checks, by id ("00.1")."""


def register(check_id: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register a check function under ``check_id`` ("NN.K").

    The function takes the answers as parameters (named like the notebook's variables) and returns
    the stable fact printed after ✅; it raises :class:`CheckFailed` with a hint when the answer is
    wrong. (nbgrader's points live in the notebook: one per check cell unless its header says
    otherwise, see :mod:`tlcourse.notebooks`.)

    Examples
    --------
    >>> @register("99.1")
    ... def check_answer(answer):
    ...     if answer != 42:
    ...         raise CheckFailed(f"answer is {answer!r}; the question asks for the Answer")
    ...     return "answer is 42"
    >>> check("99.1", answer=41).passed
    ❌ 99.1 answer is 41; the question asks for the Answer
    False
    >>> del CHECKS["99.1"]
    """
    if not CHECK_ID_PATTERN.match(check_id):
        from tlcourse.errors import ConfigError

        raise ConfigError(f"Check id {check_id!r} is not of the form 'NN.K'.", hint="Use e.g. '03.2'.")

    def decorator(function: Callable[..., str]) -> Callable[..., str]:
        CHECKS[check_id] = _Check(check_id, function)
        return function

    return decorator


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_HINT else text[: MAX_HINT - 1] + "…"


def _is_stub(exc: BaseException) -> bool:
    # nbgrader's stub is `raise NotImplementedError()`; Keras' own NotImplementedErrors carry a message.
    return isinstance(exc, NotImplementedError) and not str(exc)


def _grading() -> bool:
    return os.environ.get("NBGRADER_EXECUTION", "").strip().lower() in {"autograde", "validate"}


def _lookup_answers(function: Callable[..., str], args: tuple, kwargs: dict, namespace: dict) -> dict:
    signature = inspect.signature(function)
    bound = signature.bind_partial(*args, **kwargs)
    for name, parameter in signature.parameters.items():
        if name in bound.arguments or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in namespace:
            bound.arguments[name] = namespace[name]
        elif parameter.default is parameter.empty:
            bound.arguments[name] = MISSING
    return dict(bound.arguments)


def _run(check_id: str, args: tuple, kwargs: dict, namespace: dict) -> CheckResult:
    registered = CHECKS.get(check_id)
    if registered is None:
        if not CHECK_ID_PATTERN.match(str(check_id)):
            return CheckResult(str(check_id), FAILED, "is not a check id (use the form '00.1')")
        known = ", ".join(sorted(CHECKS)) or "none"
        return CheckResult(check_id, FAILED, f"is not a known check (known: {_one_line(known)})")
    try:
        answers = _lookup_answers(registered.function, args, kwargs, namespace)
    except TypeError as exc:
        return CheckResult(check_id, FAILED, f"called with the wrong arguments: {_one_line(exc)}")
    if any(value is MISSING for value in answers.values()):
        return CheckResult(check_id, NOT_ATTEMPTED, "not attempted yet")
    chatter = io.StringIO()
    try:
        # Whatever the answer prints (Keras progress bars, the student's debugging) stays out of
        # the check's one line.
        with contextlib.redirect_stdout(chatter):
            fact = registered.function(**answers)
    except NotAttempted:
        return CheckResult(check_id, NOT_ATTEMPTED, "not attempted yet")
    except CheckFailed as exc:
        return CheckResult(check_id, FAILED, _one_line(exc))
    except Exception as exc:
        if _is_stub(exc):
            return CheckResult(check_id, NOT_ATTEMPTED, "not attempted yet")
        return CheckResult(check_id, FAILED, _one_line(f"your answer raised {type(exc).__name__}: {exc}"))
    return CheckResult(check_id, PASSED, _one_line(fact))


def check(check_id: str, *args: Any, namespace: dict | None = None, **answers: Any) -> CheckResult:
    """Run check ``check_id`` and print its one line (✅, ❌ with a hint, or ⏳).

    Parameters
    ----------
    check_id : str
        The exercise's number, e.g. "00.1".
    *args, **answers
        The answers to check. Those not given are looked up by name in ``namespace``.
    namespace : dict, optional
        Where to look answers up (default: the caller's globals, i.e. the notebook).

    Returns
    -------
    CheckResult
        ``.passed`` is True for ✅. Never raises (except under nbgrader grading, see the module).

    Examples
    --------
    >>> result = check("00.3", namespace={})  # no `freeze` defined yet
    ⏳ 00.3 not attempted yet
    >>> result.status, result.passed
    ('not_attempted', False)
    """
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    try:
        result = _run(str(check_id), args, answers, namespace)
    except Exception as exc:  # the last line of defence: a check must never crash a notebook
        result = CheckResult(str(check_id), FAILED, _one_line(f"the check itself failed: {exc}"))
    print(result.line, flush=True)
    if _grading() and not result.passed:
        raise AssertionError(result.line)
    return result


def parse_line(line: str) -> CheckResult | None:
    """Read a line printed by :func:`check` back (None if it is not one).

    Examples
    --------
    >>> parse_line("❌ 03.2 the base still has 10 trainable weights")
    CheckResult(check_id='03.2', status='failed', message='the base still has 10 trainable weights')
    >>> parse_line("hello") is None
    True
    """
    match = LINE_PATTERN.match(line.strip())
    if not match:
        return None
    status = {symbol: status for status, symbol in SYMBOLS.items()}[match.group(1)]
    return CheckResult(match.group(2), status, match.group(3))


def progress(paths, **options):
    """Run exercise notebooks headless and count the checks they pass (see :func:`tlcourse.notebooks.progress`)."""
    from tlcourse.notebooks import progress as run_progress

    return run_progress(paths, **options)


# =========================================================================== verifiers
def walk_layers(model) -> list:
    """Every layer inside ``model``, nested models' layers included (depth first, model excluded).

    Examples
    --------
    >>> from types import SimpleNamespace as Layer  # anything with `.layers` and `.name`
    >>> base = Layer(name="base", layers=[Layer(name="conv", layers=[])])
    >>> [layer.name for layer in walk_layers(Layer(name="model", layers=[base]))]
    ['base', 'conv']
    """
    found = []
    for layer in getattr(model, "layers", []) or []:
        found.append(layer)
        found.extend(walk_layers(layer))
    return found


def count_params(weights: Iterable) -> int:
    """Number of scalars in a list of weights (``count_params(model.trainable_weights)``)."""
    total = 0
    for weight in weights:
        size = 1
        for dim in weight.shape:
            size *= int(dim)
        total += size
    return total


def _shape_text(shape) -> str:
    return "×".join(str(d) for d in shape)


def expect_model(model: Any, *, name: str = "model"):
    """Fail unless ``model`` is a Keras model instance (returns it)."""
    import keras

    if model is None:
        raise CheckFailed(f"`{name}` is None: assign the model you built to `{name}`")
    if isinstance(model, type) and issubclass(model, keras.Model):
        raise CheckFailed(
            f"`{name}` is the class {model.__name__}, not a model: call it, e.g. {model.__name__}([...])"
        )
    if isinstance(model, (list, tuple)):
        raise CheckFailed(
            f"`{name}` is a {type(model).__name__} of layers: wrap them in keras.Sequential([...])"
        )
    if not isinstance(model, keras.Model):
        raise CheckFailed(f"`{name}` is a {type(model).__name__}, not a keras.Model")
    return model


def expect_input_shape(model, shape: tuple[int, ...], *, name: str = "model") -> tuple:
    """Fail unless the model declares inputs of ``shape`` (batch dimension excluded)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise CheckFailed(
            f"`{name}` has no input shape yet: start it with keras.Input(shape={tuple(shape)}) "
            "so Keras builds it at once"
        )
    actual = tuple(inputs[0].shape[1:])
    if actual != tuple(shape):
        raise CheckFailed(
            f"`{name}` takes inputs of shape {_shape_text(actual)}, the task asks for {_shape_text(shape)}: "
            f"use keras.Input(shape={tuple(shape)})"
        )
    return actual


def _call(model, x):
    import numpy as np

    output = model(x, training=False)
    if isinstance(output, (list, tuple, dict)):
        raise CheckFailed("the model has several outputs; this exercise expects one")
    return np.asarray(output)


def expect_output_shape(model, input_shape: tuple[int, ...], outputs: int, *, name: str = "model"):
    """Call the model on a batch of two inputs and fail unless it returns ``(2, outputs)``.

    Returns the outputs (numpy) for further checks.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, *input_shape)).astype("float32")
    y = _call(model, x)
    if y.ndim != 2:
        raise CheckFailed(
            f"`{name}` outputs shape {_shape_text(('batch', *y.shape[1:]))} per batch: add Flatten() or "
            "GlobalAveragePooling2D() before the last Dense so each image gets one vector"
        )
    if y.shape[1] != outputs:
        raise CheckFailed(
            f"`{name}` outputs {y.shape[1]} numbers per image, the task asks for {outputs}: "
            f"the last layer should be Dense({outputs})"
        )
    return y


_SQUASHING = {"softmax", "sigmoid", "log_softmax"}


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", None) or type(activation).__name__.lower()


def expect_logits(model, outputs=None, *, name: str = "model") -> None:
    """Fail if the model ends in softmax/sigmoid: the course keeps logits and uses ``from_logits=True``.

    ``outputs`` (numpy, optional) are outputs the model produced; rows that are all in [0, 1] and
    sum to 1 betray a softmax hidden anywhere.
    """
    import numpy as np

    layers = [layer for layer in walk_layers(model) if not getattr(layer, "layers", None)]
    if layers:
        last = layers[-1]
        kind = type(last).__name__
        activation = _activation_name(last)
        if (
            kind in {"Softmax"}
            or activation in _SQUASHING
            or (kind == "Activation" and activation in _SQUASHING)
        ):
            what = (
                "a Softmax layer"
                if kind == "Softmax"
                else f"activation='{activation}' in layer '{last.name}'"
            )
            raise CheckFailed(
                f"`{name}` ends with {what}: remove it so the model outputs logits "
                "(the loss then uses from_logits=True)"
            )
    if outputs is not None and outputs.ndim == 2 and outputs.shape[1] > 1:
        sums = outputs.sum(axis=1)
        if np.all(outputs >= 0) and np.all(outputs <= 1) and np.allclose(sums, 1.0, atol=1e-3):
            raise CheckFailed(
                f"`{name}`'s outputs are probabilities (each row sums to 1): remove the softmax so it "
                "outputs logits"
            )


def _trainable_by_layer(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for layer in walk_layers(model):
        if getattr(layer, "layers", None):
            continue  # a nested model: its leaves are counted
        own = count_params(layer.trainable_weights)
        if own:
            counts[layer.name] = own
    return counts


def expect_all_frozen(model, *, name: str = "model") -> None:
    """Fail unless the model has no trainable weight; the hint names the layers that still learn."""
    still = _trainable_by_layer(model)
    if not still and not model.trainable_weights:
        return
    bn_names = {layer.name for layer in walk_layers(model) if type(layer).__name__ == "BatchNormalization"}
    if still and set(still) <= bn_names:
        raise CheckFailed(
            f"only BatchNormalization layer(s) {', '.join(repr(n) for n in sorted(still))} of `{name}` are "
            "still trainable: they have weights too (gamma, beta); set `model.trainable = False` to freeze "
            "every layer"
        )
    names = ", ".join(f"'{n}' ({count:,})" for n, count in list(still.items())[:3])
    more = f" and {len(still) - 3} more" if len(still) > 3 else ""
    raise CheckFailed(
        f"{count_params(model.trainable_weights):,} parameters of `{name}` are still trainable, in layer(s) "
        f"{names}{more}: set `model.trainable = False` to freeze every layer, nested ones included"
    )


def expect_trainable(model, *, trainable: Iterable[str], name: str = "model") -> None:
    """Fail unless exactly the layers named in ``trainable`` have trainable weights (all others frozen).

    Nested layers count by their own names; naming a nested model makes all its layers count.
    """
    wanted = set(trainable)
    expected_leaves = set()
    for layer in walk_layers(model):
        if layer.name in wanted:
            expected_leaves.add(layer.name)
            expected_leaves.update(inner.name for inner in walk_layers(layer))
    unknown = wanted - {layer.name for layer in walk_layers(model)}
    if unknown:
        raise CheckFailed(
            f"`{name}` has no layer named {', '.join(sorted(unknown))}: did you rename the head?"
        )
    actual = _trainable_by_layer(model)
    should_be_frozen = [layer_name for layer_name in actual if layer_name not in expected_leaves]
    if should_be_frozen:
        raise CheckFailed(
            f"layer(s) {', '.join(repr(n) for n in should_be_frozen[:3])} of `{name}` should be frozen but "
            f"still have trainable weights: set their `trainable = False` (then compile again)"
        )
    # BatchNormalization may stay frozen inside a trainable part (that is how fine-tuning keeps it).
    frozen = [
        layer.name
        for layer in walk_layers(model)
        if layer.name in expected_leaves
        and not getattr(layer, "layers", None)
        and layer.weights
        and type(layer).__name__ != "BatchNormalization"
        and layer.name not in actual
    ]
    if frozen:
        raise CheckFailed(
            f"layer(s) {', '.join(repr(n) for n in frozen[:3])} of `{name}` should be trainable but are frozen: "
            "set `trainable = True` on them (then compile again)"
        )


def expect_batchnorm_frozen(model, *, name: str = "model") -> int:
    """Fail unless every BatchNormalization layer (nested ones too) has ``trainable = False``.

    In Keras 3, ``training=False`` alone does not keep BN in inference mode during fine-tuning:
    the layers must be frozen (keras-team/keras#20285). Returns the number of BN layers.
    """
    bn_layers = [layer for layer in walk_layers(model) if type(layer).__name__ == "BatchNormalization"]
    unfrozen = [layer.name for layer in bn_layers if layer.trainable]
    if unfrozen:
        raise CheckFailed(
            f"{len(unfrozen)} of {len(bn_layers)} BatchNormalization layers in `{name}` are trainable "
            f"(e.g. '{unfrozen[0]}'): set `layer.trainable = False` on every BatchNormalization layer so "
            "fine-tuning does not wreck their statistics"
        )
    return len(bn_layers)


_PREPROCESSING_TYPES = {"Rescaling", "Normalization", "Resizing", "CenterCrop"}


def expect_preprocessing(model, *, name: str = "model") -> list[str]:
    """Fail unless the model contains a preprocessing step (Rescaling, Normalization, a base's own
    preprocessing layer, ...). Returns the names of what was found."""
    found = [
        layer.name
        for layer in walk_layers(model)
        if type(layer).__name__ in _PREPROCESSING_TYPES
        or "preprocess" in layer.name.lower()
        or "ImageConverter" in type(layer).__name__
    ]
    if not found:
        raise CheckFailed(
            f"`{name}` has no preprocessing layer: put the base's preprocessing (e.g. keras.layers.Rescaling "
            "or the base's own preprocess step) inside the model so raw [0, 255] images work"
        )
    return found


def expect_from_logits(model_or_loss, *, name: str = "model") -> None:
    """Fail unless the (compiled model's) loss is a cross-entropy with ``from_logits=True``."""
    loss = getattr(model_or_loss, "loss", model_or_loss)
    if loss is None:
        raise CheckFailed(f"`{name}` is not compiled: call {name}.compile(loss=..., optimizer=...)")
    if isinstance(loss, str):
        raise CheckFailed(
            f"`{name}` was compiled with loss='{loss}', which expects probabilities: use "
            f"keras.losses.{_loss_class(loss)}(from_logits=True) because the model outputs logits"
        )
    config = {}
    if hasattr(loss, "get_config"):
        config = loss.get_config()
    if not config.get("from_logits", False):
        kind = type(loss).__name__
        raise CheckFailed(
            f"`{name}`'s loss {kind} has from_logits=False: pass from_logits=True because the model "
            "outputs logits"
        )


def _loss_class(text: str) -> str:
    return "".join(part.capitalize() for part in text.split("_"))


def expect_accuracy(model, x, y=None, *, at_least: float, name: str = "model", batch_size: int = 64) -> float:
    """Fail unless the model's accuracy on held-out data is ≥ ``at_least``; returns the accuracy.

    ``x`` is an array of inputs (with labels ``y``) or a ``tf.data.Dataset`` of (inputs, labels)
    batches. One output column means binary logits (positive when > 0).
    """
    import numpy as np

    if y is None:
        xs, ys = [], []
        for batch_x, batch_y in x:
            xs.append(_call(model, batch_x))
            ys.append(np.asarray(batch_y))
        predictions, labels = np.concatenate(xs), np.concatenate(ys)
    else:
        predictions = np.concatenate(
            [_call(model, x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        )
        labels = np.asarray(y)
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        predicted = predictions.argmax(axis=1)
    else:
        predicted = (predictions.reshape(-1) > 0).astype(labels.dtype)
    accuracy = float(np.mean(predicted == labels.reshape(-1)))
    if accuracy < at_least:
        raise CheckFailed(
            f"`{name}`'s accuracy on held-out data is below {at_least:.2f}: check the preprocessing, what is "
            "frozen, the learning rate and the number of epochs"
        )
    return accuracy


def expect_gradient_reversal(layer, *, factor: float | None = None, name: str = "layer") -> float:
    """Fail unless ``layer`` is the identity forward and multiplies gradients by ``-factor`` backward.

    Returns the measured factor (λ). ``factor=None`` accepts any positive λ.
    """
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.linspace(-1.0, 1.0, 6, dtype="float32").reshape(2, 3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    if y is None:
        raise CheckFailed(f"`{name}` returned None: return the input from call()")
    if not np.allclose(np.asarray(y), np.asarray(x), atol=1e-6):
        raise CheckFailed(f"`{name}` changes its input in the forward pass: it must return x unchanged")
    gradient = tape.gradient(y, x)
    if gradient is None:
        raise CheckFailed(f"`{name}` blocks the gradient: use tf.custom_gradient and return -λ · upstream")
    ratio = np.asarray(gradient).reshape(-1)
    if not np.allclose(ratio, ratio[0], atol=1e-6):
        raise CheckFailed(
            f"`{name}` scales gradients unevenly: multiply the upstream gradient by one constant"
        )
    measured = -float(ratio[0])
    if measured <= 0:
        raise CheckFailed(
            f"`{name}` does not reverse the gradient (it multiplies it by {-measured:+.2g}): return -λ · upstream"
        )
    if factor is not None and not np.isclose(measured, factor, rtol=1e-4):
        raise CheckFailed(f"`{name}` reverses the gradient with λ = {measured:.3g}, expected λ = {factor:g}")
    return measured


# =========================================================================== lesson 00
def _ints_like(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(value)
    if hasattr(value, "ndim") and getattr(value, "ndim", 1) == 0 and hasattr(value, "item"):
        return _ints_like(value.item())
    return None


def _reference_models() -> list:
    """Small models whose parameter counts tell the typical mistakes apart (fresh each call)."""
    import keras

    plain = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(3)], name="plain")
    with_bn = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(2, name="head"),
        ],
        name="with_batchnorm",
    )
    base = keras.Sequential([keras.Input((10,)), keras.layers.Dense(7, name="base_dense")], name="base")
    base.trainable = False
    partly_frozen = keras.Sequential(
        [keras.Input((10,)), base, keras.layers.Dense(3, name="head")], name="partly_frozen"
    )
    return [plain, with_bn, partly_frozen]


@register("00.1")
def check_00_1(model) -> str:
    """A model for 32×32×3 images with 10 logits out."""
    expect_model(model, name="model")
    expect_input_shape(model, (32, 32, 3), name="model")
    outputs = expect_output_shape(model, (32, 32, 3), 10, name="model")
    expect_logits(model, outputs, name="model")
    return "model maps 32×32×3 images to 10 logits"


@register("00.2")
def check_00_2(count_trainable_params) -> str:
    """A function counting a model's trainable parameters, tried on models where the mistakes differ."""
    if not callable(count_trainable_params):
        raise CheckFailed(
            "`count_trainable_params` should be a function: def count_trainable_params(model): ..."
        )
    for reference in _reference_models():
        expected = count_params(reference.trainable_weights)
        returned = count_trainable_params(reference)
        if returned is None:
            raise CheckFailed("count_trainable_params returned None: did you forget `return`?")
        value = _ints_like(returned)
        if value is None:
            raise CheckFailed(
                f"count_trainable_params returned a {type(returned).__name__}; it should return one whole number"
            )
        if value == expected:
            continue
        where = f"for the model '{reference.name}' ({expected:,} trainable parameters)"
        if value == reference.count_params():
            raise CheckFailed(
                f"count_trainable_params counts all {value:,} parameters {where}: leave out the non-trainable "
                "ones (frozen layers, BatchNorm's moving mean/variance) by counting model.trainable_weights"
            )
        if value == len(reference.trainable_weights):
            raise CheckFailed(
                f"count_trainable_params returned {value}, the number of weight tensors, {where}: add up the "
                "sizes of the tensors (the product of each tensor's shape)"
            )
        kernels_only = count_params(w for w in reference.trainable_weights if "kernel" in w.path)
        if value == kernels_only:
            raise CheckFailed(
                f"count_trainable_params returned {value:,} {where}: it misses the biases (and BatchNorm's "
                "gamma/beta); count every tensor in model.trainable_weights"
            )
        raise CheckFailed(
            f"count_trainable_params returned {value:,} {where}: add up the product of the shapes of "
            "model.trainable_weights"
        )
    return "count_trainable_params counts trainable parameters correctly (3 models, frozen parts included)"


@register("00.3")
def check_00_3(freeze) -> str:
    """A function freezing a model in place, tried on a model with a nested base and BatchNorm."""
    import keras

    if not callable(freeze):
        raise CheckFailed("`freeze` should be a function: def freeze(model): ...")
    base = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, name="conv_like"),
            keras.layers.BatchNormalization(name="bn"),
        ],
        name="base",
    )
    model = keras.Sequential([keras.Input((6,)), base, keras.layers.Dense(3, name="head")], name="model")
    before = [w.numpy().copy() for w in model.weights]
    returned = freeze(model)
    if returned is None:
        raise CheckFailed("freeze returned None: end it with `return model` so it can be used inline")
    if returned is not model:
        raise CheckFailed(
            "freeze returned a different model: freeze the model it was given (model.trainable = False) "
            "and return that same model"
        )
    expect_all_frozen(model, name="model")
    after = [w.numpy() for w in model.weights]
    if len(before) != len(after) or any((a != b).any() for a, b in zip(before, after, strict=False)):
        raise CheckFailed(
            "freeze changed the weights' values: freezing only stops training, keep the weights"
        )
    return "freeze leaves no trainable weight (nested base and BatchNorm included)"
# =========================================================================== lesson 01
WORKFLOW = ("pick a base", "freeze the base", "add a new head", "train the head", "fine-tune", "evaluate")
"""The transfer learning workflow of lesson 01, in order ("freeze" and "add a new head" may swap)."""

TARGET_CLASSES_01 = (5, 6, 7, 8, 9)
AT_LEAST_01 = 0.70
_SOURCE_CONVOLUTIONS = ("conv1", "conv2", "conv3")


def _as_arrays(weights) -> list:
    import keras
    import numpy as np

    return [np.asarray(keras.ops.convert_to_numpy(weight)) for weight in weights]


def _holds(arrays: list, reference) -> bool:
    import numpy as np

    return any(array.shape == reference.shape and np.array_equal(array, reference) for array in arrays)


_SOURCE_WEIGHTS: dict[str, list] = {}


def _source_weights() -> dict[str, list]:
    """The pretrained source model's weights by layer name, read once from the cached .keras file."""
    if not _SOURCE_WEIGHTS:
        from tlcourse import models

        source = models.source_model(progress=False)
        _SOURCE_WEIGHTS.update({layer.name: layer.get_weights() for layer in source.layers if layer.weights})
    return _SOURCE_WEIGHTS


def _expect_source_features(model, *, trained: bool) -> None:
    """Fail unless ``model`` holds the source's convolutions, unchanged, and not its old classifier."""
    reference = _source_weights()
    arrays = _as_arrays(model.weights)
    if _holds(arrays, reference["logits"][0]):
        raise CheckFailed(
            "`model` still contains the source's own classifier (its layer 'logits', scores for the 5 old "
            "classes): cut the source before it, at the layer 'gap' or 'features', and put the new head there"
        )
    if all(_holds(arrays, reference[name][0]) for name in _SOURCE_CONVOLUTIONS):
        return
    if trained:
        raise CheckFailed(
            "the convolution weights of `model` are no longer the source model's: they trained along with the "
            "head. Rebuild the model, set base.trainable = False, then compile and fit"
        )
    raise CheckFailed(
        "the convolution layers of `model` do not hold the pretrained source weights: build the base from "
        "`source` (e.g. keras.Model(source.inputs, source.get_layer('gap').output)), not from a new network"
    )


def _head_layer(model):
    """The last layer with weights (nested models' layers included): the head of a classifier."""
    leaves = [layer for layer in walk_layers(model) if not getattr(layer, "layers", None) and layer.weights]
    if not leaves:
        raise CheckFailed("`model` has no layer with weights: end it with a Dense layer, the new head")
    return leaves[-1]


@register("01.1")
def check_01_1(workflow) -> str:
    """The six workflow steps in an order that works."""
    import difflib

    if isinstance(workflow, str) or not isinstance(workflow, (list, tuple)):
        raise CheckFailed(
            f"`workflow` is a {type(workflow).__name__}: make it a list of the six step names from STEPS, in order"
        )
    steps = [step.strip().lower() if isinstance(step, str) else step for step in workflow]
    for step in steps:
        if step not in WORKFLOW:
            close = difflib.get_close_matches(str(step), WORKFLOW, n=1)
            suggestion = f": did you mean {close[0]!r}?" if close else ": copy the names from STEPS"
            raise CheckFailed(f"{step!r} is not one of the steps{suggestion}")
    repeated = [step for step in WORKFLOW if steps.count(step) > 1]
    if repeated:
        raise CheckFailed(f"{repeated[0]!r} appears {steps.count(repeated[0])} times: each step comes once")
    missing = [step for step in WORKFLOW if step not in steps]
    if missing:
        raise CheckFailed(
            f"`workflow` has {len(steps)} of the 6 steps; missing: {', '.join(repr(m) for m in missing)}"
        )
    at = {step: index for index, step in enumerate(steps)}
    if at["pick a base"] != 0:
        raise CheckFailed(
            f"`workflow` starts with {steps[0]!r}: everything starts from a network pretrained on a source "
            "task, so 'pick a base' comes first"
        )
    if at["train the head"] < at["add a new head"]:
        raise CheckFailed(
            "'train the head' comes before 'add a new head': a head must exist before it can train"
        )
    if at["train the head"] < at["freeze the base"]:
        raise CheckFailed(
            "'train the head' comes before 'freeze the base': freeze first, or your few labels train (and "
            "damage) the whole pretrained network"
        )
    if at["fine-tune"] < at["train the head"]:
        raise CheckFailed(
            "'fine-tune' comes before 'train the head': fine-tune only once the head is trained, because a "
            "random head sends large gradients into the base and wrecks its pretrained features"
        )
    if at["evaluate"] != len(WORKFLOW) - 1:
        raise CheckFailed(
            "'evaluate' is not the last step: evaluate on held-out data once all training (fine-tuning "
            "included) is done"
        )
    return (
        "workflow: pick a base → freeze the base and add a new head → train the head → fine-tune → evaluate"
    )


@register("01.2")
def check_01_2(model) -> str:
    """The source model's frozen feature part + a new trainable Dense head with 5 logits."""
    expect_model(model, name="model")
    expect_input_shape(model, (28, 28, 3), name="model")
    outputs = expect_output_shape(model, (28, 28, 3), len(TARGET_CLASSES_01), name="model")
    expect_logits(model, outputs, name="model")
    _expect_source_features(model, trained=False)
    expect_trainable(model, trainable=[_head_layer(model).name], name="model")
    return (
        f"model: the source's frozen features → a trainable Dense head "
        f"({count_params(model.trainable_weights):,} parameters) → 5 logits"
    )


@register("01.3")
def check_01_3(model) -> str:
    """The model of 01.2, trained on 10 labels per class, reaches the threshold on the held-out test split."""
    expect_model(model, name="model")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise CheckFailed(
            "`model` is not compiled yet: compile it (Adam, SparseCategoricalCrossentropy(from_logits=True)) "
            "and fit it on the 50 labelled training images"
        )
    expect_from_logits(model, name="model")
    if int(model.optimizer.iterations.numpy()) == 0:
        raise CheckFailed(
            "`model` is compiled but has not trained yet: call model.fit(x_train, y_train, ...)"
        )
    expect_input_shape(model, (28, 28, 3), name="model")
    _expect_source_features(model, trained=True)
    expect_trainable(model, trainable=[_head_layer(model).name], name="model")
    from tlcourse import data

    x_test, y_test = data.load("fashion_mnist", classes=list(TARGET_CLASSES_01)).arrays("test")
    expect_accuracy(model, x_test, y_test, at_least=AT_LEAST_01, name="model")
    return f"model reaches ≥ {AT_LEAST_01:.0%} on the {len(y_test)} held-out test images of classes 5–9"


# =========================================================================== lesson 02
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
    import difflib

    if not isinstance(settings, dict):
        raise CheckFailed(
            f"`settings` is a {type(settings).__name__}: make it a dict {{scenario number: setting}}, "
            "e.g. {1: 'inductive', 2: 'transductive', ...}"
        )
    answers = {}
    for key, value in settings.items():
        number = (
            _ints_like(key) if not isinstance(key, str) else (int(key) if key.strip().isdigit() else None)
        )
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
    import numpy as np

    x, y = bundle.arrays(split)
    return float(np.mean(np.asarray(model.predict(x, batch_size=256, verbose=0)).argmax(axis=1) == y))


def _one_number(value, *, what: str) -> float:
    import numpy as np

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
    from tlcourse import data, models

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
    import numpy as np

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
            f"blend returned shape {_shape_text(out.shape)} for a 28×28×3 image and patch: return one value per "
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


# =========================================================================== lesson 03
AT_LEAST_03 = 0.70


def _lesson_03_data():
    """The data of lesson 03, exactly as the notebooks load it."""
    from tlcourse import data, env

    return data.load("cats_vs_dogs", image_size=env.current().budget.image_size)


@register("03.1")
def check_03_1(model, conv_base, num_classes) -> str:
    """A frozen convolutional base, global average pooling and a trainable Dense head with logits."""
    import warnings

    import keras
    import numpy as np

    expect_model(model, name="model")
    shape = tuple(conv_base.inputs[0].shape[1:])
    expect_input_shape(model, shape, name="model")
    if any(type(layer).__name__ == "Flatten" for layer in walk_layers(model)):
        grid = _shape_text(conv_base.outputs[0].shape[1:])
        raise CheckFailed(
            f"`model` flattens the {grid} feature map: its head then needs a weight per position and channel; "
            "use keras.layers.GlobalAveragePooling2D() to get one number per channel"
        )
    outputs = expect_output_shape(model, shape, num_classes, name="model")
    expect_logits(model, outputs, name="model")
    in_base = {layer.name for layer in walk_layers(conv_base)} | {conv_base.name}
    trainable = _trainable_by_layer(model)
    still = [name for name in trainable if name in in_base]
    if still:
        total = sum(trainable[name] for name in still)
        raise CheckFailed(
            f"the base is not frozen: {total:,} of its parameters (layers {', '.join(repr(n) for n in still[:3])}"
            f"{' …' if len(still) > 3 else ''}) would train. Set conv_base.trainable = False"
        )
    head = [name for name in trainable if name not in in_base]
    if len(head) > 1:
        raise CheckFailed(
            f"`model` trains {len(head)} layers after the base ({', '.join(repr(n) for n in head[:3])}): the task "
            "asks for one Dense layer as the head"
        )
    expect_trainable(model, trainable=[_head_layer(model).name], name="model")
    expect_batchnorm_frozen(model, name="model")
    expect_preprocessing(model, name="model")
    # The logits must be head(GAP(base(raw pixels))): anything rescaling the pixels on the way shows here.
    x = np.random.default_rng(0).uniform(0, 255, size=(2, *shape)).astype("float32")
    with warnings.catch_warnings():  # Keras warns when a named input gets a bare tensor
        warnings.simplefilter("ignore")
        features = keras.ops.mean(conv_base(x, training=False), axis=(1, 2))
    expected = np.asarray(_head_layer(model)(features))
    if not np.allclose(outputs, expected, rtol=1e-3, atol=1e-3 * (1 + float(np.abs(expected).max()))):
        raise CheckFailed(
            "`model`'s logits are not head(pooled base features) of the raw [0, 255] pixels: do not rescale or "
            "preprocess the images before the base, its matching preprocessing is inside it"
        )
    return (
        f"model: raw pixels → frozen base (preprocessing inside) → global average pooling → Dense head "
        f"({count_params(model.trainable_weights):,} parameters) → {num_classes} logits"
    )


@register("03.2")
def check_03_2(model) -> str:
    """The model compiled with a cross-entropy that knows it gets logits and integer labels."""
    expect_model(model, name="model")
    if not getattr(model, "compiled", False):
        raise CheckFailed(
            "`model` is not compiled: call model.compile(optimizer=..., loss=..., metrics=['accuracy'])"
        )
    loss = model.loss
    if not isinstance(loss, str) and loss is not None:
        kind = type(loss).__name__
        if kind == "function":
            raise CheckFailed(
                f"`model` was compiled with the function {getattr(loss, '__name__', 'loss')}: pass a loss object "
                "that takes options, keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
        if kind == "CategoricalCrossentropy":
            raise CheckFailed(
                "CategoricalCrossentropy expects one-hot label rows, but the labels are class ids (0, 1, 2, …): "
                "use keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
        if kind.startswith("Binary"):
            raise CheckFailed(
                f"{kind} is for one logit per image (yes/no); this model outputs one logit per class: use "
                "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
        if kind != "SparseCategoricalCrossentropy":
            raise CheckFailed(
                f"{kind} is not a classification loss for class-id labels: use "
                "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
    expect_from_logits(model, name="model")
    return "model is compiled with SparseCategoricalCrossentropy(from_logits=True), matching its logits"


@register("03.3")
def check_03_3(head, train_features, base) -> str:
    """A head trained on cached features reaches the threshold on the held-out test split's features."""
    import numpy as np

    from tlcourse import train

    expect_model(head, name="head")
    bundle = _lesson_03_data()
    test = train.extract_features(base, bundle, split="test", verbose=0)
    train_x = getattr(train_features, "features", None)
    if train_x is None and isinstance(train_features, (tuple, list)) and len(train_features) == 2:
        train_x = train_features[0]
    if train_x is not None:
        train_x = np.asarray(train_x)
        if train_x.shape == test.features.shape and np.array_equal(train_x, test.features):
            raise CheckFailed(
                "`train_features` are the test split's features: train on split='train' and keep the test "
                "split for measuring"
            )
    width = head.inputs[0].shape[-1] if head.inputs else None
    if width is not None and int(width) != test.features.shape[1]:
        raise CheckFailed(
            f"`head` takes {int(width)} inputs but the base gives {test.features.shape[1]} features per image: "
            "train it on extract_features(base, data, split='train')"
        )
    outputs = np.asarray(head(test.features[:2], training=False))
    if outputs.ndim != 2 or outputs.shape[1] != bundle.num_classes:
        raise CheckFailed(
            f"`head` outputs {outputs.shape[-1]} numbers per image but the data has {bundle.num_classes} "
            "classes: pass num_classes=data.num_classes"
        )
    expect_logits(head, outputs, name="head")
    expect_accuracy(head, test.features, test.labels, at_least=AT_LEAST_03, name="head")
    return f"head reaches ≥ {AT_LEAST_03:.0%} on the cached features of the {len(test)} held-out test images"


# =========================================================================== lesson 04
TARGET_CLASSES_04 = (5, 6, 7, 8, 9)
AT_LEAST_04 = 0.80
PEAK_LR_04, WARMUP_STEPS_04, TOTAL_STEPS_04 = 1e-4, 50, 500


def _reference_base_04():
    """A small base like a pretrained CNN after stage 1: conv + BatchNorm blocks, frozen."""
    import keras

    layers = [keras.Input((12, 12, 3))]
    for i in (1, 2, 3):
        layers += [
            keras.layers.Conv2D(4, 3, padding="same", name=f"conv{i}"),
            keras.layers.BatchNormalization(name=f"bn{i}"),
            keras.layers.ReLU(name=f"relu{i}"),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(6, name="features")]
    base = keras.Sequential(layers, name="base")
    base.trainable = False
    return base


def _names(names) -> str:
    return ", ".join(repr(name) for name in names)


@register("04.1")
def check_04_1(unfreeze_top) -> str:
    """unfreeze_top(base, n): exactly the top n layers with weights (BatchNorm not counted) trainable."""
    if not callable(unfreeze_top):
        raise CheckFailed("`unfreeze_top` should be a function: def unfreeze_top(base, n): ...")
    for n in (2, 3, 0):
        base = _reference_base_04()
        unfreeze_top(base, n)
        layers = [layer for layer in base.layers if layer.weights]
        weighted = [layer.name for layer in layers if type(layer).__name__ != "BatchNormalization"]
        expected = weighted[len(weighted) - n :]
        actual = [name for name in _trainable_by_layer(base) if name in weighted]
        call = f"after unfreeze_top(base, {n})"
        if n == 0 and actual:
            raise CheckFailed(
                f"{call} layer(s) {_names(actual[:3])} are trainable: n=0 must leave the base frozen "
                "(careful: a_list[-0:] is the whole list, use a_list[len(a_list) - n:])"
            )
        if n and not base.trainable:
            raise CheckFailed(
                f"{call} base.trainable is still False, so nothing can train: set base.trainable = True first "
                "(it unfreezes every layer), then freeze again the layers below the top n"
            )
        if n and not actual:
            raise CheckFailed(f"{call} no layer of the base is trainable: make the top {n} layers trainable")
        if len(actual) == len(weighted) and n < len(weighted):
            raise CheckFailed(
                f"{call} all {len(weighted)} layers with weights are trainable: the whole base is unfrozen. Keep "
                f"only the top {n} trainable and set trainable = False on the others"
            )
        bn = [
            layer.name for layer in layers if type(layer).__name__ == "BatchNormalization" and layer.trainable
        ]
        if bn:
            raise CheckFailed(
                f"{call} BatchNormalization layer(s) {_names(bn)} are trainable: set trainable = False on every "
                "BatchNormalization layer, so fit() keeps them in inference mode (keras-team/keras#20285)"
            )
        if actual == expected:
            continue
        with_bn = [layer.name for layer in layers][len(layers) - n :]
        if actual == [name for name in with_bn if name in weighted]:
            raise CheckFailed(
                f"{call} only {_names(actual)} are trainable: you counted BatchNormalization layers among the "
                f"top {n}; count only the layers with weights that are not BatchNormalization"
            )
        if actual == weighted[: len(actual)]:
            raise CheckFailed(
                f"{call} the bottom layer(s) {_names(actual)} are trainable: the top layers are the LAST ones in "
                "base.layers (the early ones hold general features and stay frozen)"
            )
        if actual == weighted[len(weighted) - len(actual) :]:
            raise CheckFailed(
                f"{call} the top {len(actual)} layers are trainable ({_names(actual)}), the task asks for {n}: "
                "check how you slice the list of layers with weights"
            )
        raise CheckFailed(
            f"{call} the trainable layers are {_names(actual)}; expected the top {n}: {_names(expected)}"
        )
    return (
        "unfreeze_top(base, n) leaves exactly the top n layers with weights trainable, BatchNorm frozen "
        "(tried n = 2, 3, 0)"
    )


def _rate(schedule, step: int) -> float:
    import keras
    import numpy as np

    value = schedule(step)
    return float(np.asarray(keras.ops.convert_to_numpy(value)).reshape(-1)[0])


@register("04.2")
def check_04_2(schedule) -> str:
    """A learning-rate schedule: linear warm-up to the peak over 50 steps, cosine decay to 0 at step 500."""
    import math

    if isinstance(schedule, numbers.Real):
        raise CheckFailed(
            f"`schedule` is the number {schedule:g}, a constant learning rate: build a schedule, e.g. "
            "tlcourse.train.WarmupCosine(...) or keras.optimizers.schedules.CosineDecay(...)"
        )
    if not callable(schedule):
        raise CheckFailed(
            f"`schedule` is a {type(schedule).__name__}: it should be a LearningRateSchedule (call it with a step)"
        )
    steps = sorted(set(range(0, TOTAL_STEPS_04 + 1, 5)) | {WARMUP_STEPS_04 - 1, 163})
    rates = {step: _rate(schedule, step) for step in steps}
    peak = max(rates.values())
    if peak <= 0:
        raise CheckFailed("`schedule` is never above 0: the learning rate must rise to its peak")
    peak_step = min(step for step, rate in rates.items() if rate >= 0.98 * peak)
    if not math.isclose(peak, PEAK_LR_04, rel_tol=0.05):
        raise CheckFailed(f"`schedule` peaks at {peak:.1e}; the task asks for a peak of {PEAK_LR_04:g}")
    if rates[0] >= 0.9 * peak:
        raise CheckFailed(
            f"`schedule` starts at its peak: there is no warm-up. Ramp it up from ~0 over the first "
            f"{WARMUP_STEPS_04} steps (warmup_steps={WARMUP_STEPS_04})"
        )
    if not WARMUP_STEPS_04 - 5 <= peak_step <= WARMUP_STEPS_04 + 5:
        raise CheckFailed(
            f"`schedule` reaches its peak at step {peak_step}; the warm-up should end at step {WARMUP_STEPS_04}"
        )
    after = [rates[step] for step in steps if step >= peak_step]
    if any(later > earlier * (1 + 1e-4) + 1e-12 for earlier, later in zip(after, after[1:], strict=False)):
        raise CheckFailed("`schedule` rises again after the warm-up: after the peak it should only decrease")
    end = rates[TOTAL_STEPS_04]
    if end >= 0.9 * peak:
        raise CheckFailed(
            f"`schedule` stays at its peak after the warm-up: add a cosine decay down to 0 at step {TOTAL_STEPS_04}"
        )
    if end > 0.01 * peak:
        raise CheckFailed(
            f"at step {TOTAL_STEPS_04} `schedule` is still {end / peak:.0%} of its peak: decay to 0 over the "
            f"{TOTAL_STEPS_04 - WARMUP_STEPS_04} steps after the warm-up (Keras' CosineDecay counts decay_steps "
            "after the warm-up)"
        )
    quarter = rates[163] / peak  # a quarter into the decay: cosine 0.85, linear 0.75
    if not 0.80 <= quarter <= 0.90:
        raise CheckFailed(
            "`schedule` does not decay along a cosine (a quarter into the decay it should still be at ~85 % of "
            "the peak): use a cosine decay, e.g. WarmupCosine(..., cosine=True)"
        )
    return (
        f"schedule: linear warm-up to {PEAK_LR_04:g} over {WARMUP_STEPS_04} steps, then cosine decay to 0 at "
        f"step {TOTAL_STEPS_04}"
    )


@register("04.3")
def check_04_3(model) -> str:
    """A two-stage fine-tuned source model: bottom layers unchanged, top layers moved, accuracy ≥ threshold."""
    expect_model(model, name="model")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise CheckFailed("`model` is not compiled: compile and fit it, stage 1 then stage 2")
    if int(model.optimizer.iterations.numpy()) == 0:
        raise CheckFailed(
            "`model` was compiled (again) but has not trained since: call model.fit(...) after compiling"
        )
    expect_from_logits(model, name="model")
    expect_input_shape(model, (28, 28, 3), name="model")
    outputs = expect_output_shape(model, (28, 28, 3), len(TARGET_CLASSES_04), name="model")
    expect_logits(model, outputs, name="model")
    reference = _source_weights()
    arrays = _as_arrays(model.weights)
    if _holds(arrays, reference["logits"][0]):
        raise CheckFailed(
            "`model` still contains the source's own classifier (scores for the 5 old classes): build on `base`, "
            "the source without its head"
        )
    shapes = {array.shape for array in arrays}
    if any(reference[name][0].shape not in shapes for name in ("conv1", "conv2", "conv3")):
        raise CheckFailed("`model` does not contain the source's convolutions: build it on `base`")
    if not all(_holds(arrays, reference[name][0]) for name in ("conv1", "conv2")):
        raise CheckFailed(
            "the bottom layers of `model` (conv1, conv2) changed: the whole base was fine-tuned. In stage 2 "
            "unfreeze only the top layers, the early ones hold general features"
        )
    if all(_holds(arrays, reference[name][0]) for name in ("conv3", "features")):
        raise CheckFailed(
            "the top layers of the base (conv3, features) still hold the source's weights: stage 2 did not train "
            "them. Unfreeze them, compile again (a change of `trainable` takes effect at compile) and fit"
        )
    from tlcourse import data

    x_test, y_test = data.load("fashion_mnist", classes=list(TARGET_CLASSES_04)).arrays("test")
    expect_accuracy(model, x_test, y_test, at_least=AT_LEAST_04, name="model")
    return (
        f"model: head trained, top layers fine-tuned, bottom layers untouched; ≥ {AT_LEAST_04:.0%} on the "
        f"{len(y_test)} held-out test images"
    )


# =========================================================================== lesson 05
def _same(a, b) -> bool:
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-3, atol=1e-3 * (1 + float(np.abs(b).max())))


@register("05.1")
def check_05_1(fixed_model, base) -> str:
    """Raw [0, 255] pixels go through the base's own preprocessing exactly once, then a logits head."""
    import numpy as np

    expect_model(fixed_model, name="fixed_model")
    shape = tuple(base.inputs[0].shape[1:])
    expect_input_shape(fixed_model, shape, name="fixed_model")
    outputs = expect_output_shape(fixed_model, shape, 5, name="fixed_model")
    expect_logits(fixed_model, outputs, name="fixed_model")
    if not any(layer is base for layer in walk_layers(fixed_model)):
        raise CheckFailed("`fixed_model` does not use `base`: call base(...) inside it, then the Dense head")
    head = _head_layer(fixed_model)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, *shape)).astype("float32")
    for scale, hint in (
        (1.0, None),
        (
            1 / 255,
            "the pixels are divided by 255 before the base, which divides them by 255 again (its layer "
            "'rescale'): the base sees almost black images. Remove your Rescaling and feed raw [0, 255] pixels",
        ),
        (
            255.0,
            "the pixels are multiplied by 255 before the base: it expects raw [0, 255] pixels as they come, "
            "so remove the extra scaling",
        ),
    ):
        if _same(outputs, head(base(x * scale, training=False))):
            if hint:
                raise CheckFailed(hint)
            return "fixed_model: raw [0, 255] pixels → base (which rescales them itself, once) → 5 logits"
    raise CheckFailed(
        "`fixed_model`'s logits are not head(base(raw pixels)): feed the images to `base` unchanged, its "
        "preprocessing is inside it"
    )


@register("05.2")
def check_05_2(head_model) -> str:
    """The logits head compiled with a cross-entropy that knows it gets logits (course convention)."""
    import numpy as np

    expect_model(head_model, name="head_model")
    width = int(head_model.inputs[0].shape[-1])
    outputs = np.asarray(head_model(np.random.default_rng(0).normal(size=(2, width)).astype("float32")))
    expect_logits(head_model, outputs, name="head_model")
    if not getattr(head_model, "compiled", False):
        raise CheckFailed("`head_model` is not compiled: call head_model.compile(optimizer=..., loss=...)")
    loss = head_model.loss
    kind = type(loss).__name__
    if not isinstance(loss, str) and kind not in ("SparseCategoricalCrossentropy", "function"):
        raise CheckFailed(
            f"{kind} does not fit class-id labels (0, 1, 2, …) and one logit per class: use "
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
        )
    if kind == "function":
        raise CheckFailed(
            "`head_model` was compiled with a loss function, which cannot be told about logits: pass "
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
        )
    expect_from_logits(head_model, name="head_model")
    return "head_model outputs logits and its loss is SparseCategoricalCrossentropy(from_logits=True)"


@register("05.3")
def check_05_3(classifier) -> str:
    """Only the head of the classifier is trainable: the base (every layer of it) is frozen."""
    expect_model(classifier, name="classifier")
    head = _head_layer(classifier)
    trainable = _trainable_by_layer(classifier)
    total = classifier.count_params()
    if not trainable:
        raise CheckFailed(
            f"nothing in `classifier` is trainable (0 of {total:,} parameters): you froze the head too. "
            "Freeze only the base (base.trainable = False) and leave the head trainable"
        )
    in_base = [name for name in trainable if name != head.name]
    if in_base:
        weighted = [
            layer.name
            for layer in walk_layers(classifier)
            if not getattr(layer, "layers", None) and layer.weights and layer.name != head.name
        ]
        count = count_params(classifier.trainable_weights)
        if len(in_base) == len(weighted):
            raise CheckFailed(
                f"{count:,} of {total:,} parameters of `classifier` are trainable: the whole base still trains "
                "with the new head. Set base.trainable = False (then compile)"
            )
        raise CheckFailed(
            f"layer(s) {', '.join(repr(n) for n in in_base[:3])} of the base are still trainable: freeze the "
            "whole base (base.trainable = False), not just some of its layers"
        )
    if head.name not in trainable:
        raise CheckFailed(f"the head '{head.name}' is frozen: leave it trainable")
    expect_trainable(classifier, trainable=[head.name], name="classifier")
    if not getattr(classifier, "compiled", False):
        raise CheckFailed("only the head is trainable now, but `classifier` is not compiled: compile it")
    return (
        f"only the head trains: {count_params(classifier.trainable_weights):,} of {total:,} parameters are "
        "trainable, the base is frozen"
    )


_SCORES_05 = (
    {
        "lr=1e-2": {"val": 0.80, "test": 0.88},
        "lr=1e-3": {"val": 0.86, "test": 0.82},
        "lr=1e-4": {"val": 0.74, "test": 0.76},
    },
    {
        "linear": {"val": 0.71, "test": 0.69},
        "mlp": {"val": 0.77, "test": 0.72},
        "mlp+dropout": {"val": 0.75, "test": 0.79},
        "mlp+augment": {"val": 0.66, "test": 0.70},
    },
)


@register("05.4")
def check_05_4(pick_best) -> str:
    """pick_best(scores) chooses by validation accuracy and reports the chosen config's test accuracy."""
    if not callable(pick_best):
        raise CheckFailed("`pick_best` should be a function: def pick_best(scores): ...")
    for scores in _SCORES_05:
        returned = pick_best({name: dict(row) for name, row in scores.items()})
        if not isinstance(returned, (tuple, list)) or len(returned) != 2:
            raise CheckFailed(
                f"pick_best returned {type(returned).__name__} {returned!r}: return a pair (name, test accuracy)"
            )
        name, reported = returned
        if name not in scores:
            raise CheckFailed(f"pick_best chose {name!r}, which is not one of the configurations in `scores`")
        by_val = max(scores, key=lambda key: scores[key]["val"])
        by_test = max(scores, key=lambda key: scores[key]["test"])
        if name == by_test and name != by_val:
            raise CheckFailed(
                f"pick_best chose {name!r}, the best on the TEST set: choose by validation accuracy, the test "
                "set must not influence any choice"
            )
        if name == min(scores, key=lambda key: scores[key]["val"]):
            raise CheckFailed(f"pick_best chose {name!r}, the WORST on validation: take the highest accuracy")
        if name != by_val:
            raise CheckFailed(
                f"pick_best chose {name!r}; the best validation accuracy is {by_val!r}'s: choose by 'val' alone"
            )
        try:
            reported = float(reported)
        except (TypeError, ValueError):
            raise CheckFailed(
                f"pick_best returned {reported!r} as the accuracy: return the chosen one's test accuracy (a number)"
            ) from None
        if reported == scores[name]["val"]:
            raise CheckFailed(
                "pick_best reports the validation accuracy of its choice: that score helped choose it, so it is "
                "optimistic. Report the chosen configuration's TEST accuracy"
            )
        if reported != scores[name]["test"]:
            raise CheckFailed(
                f"pick_best reports {reported:g}, not the test accuracy of {name!r}: report "
                "scores[chosen]['test']"
            )
    return "pick_best chooses on validation and reports the chosen configuration's test accuracy once"
