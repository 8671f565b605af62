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
