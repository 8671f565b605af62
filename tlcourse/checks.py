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
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-5 * (1 + float(np.abs(b).max())))


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


# =========================================================================== lesson 10
AT_LEAST_10 = 0.80  # validation accuracy of the head and of the fine-tuned model (chance: 1/3 on beans)
MAX_FINE_TUNE_LR_10 = 5e-4
_CONV_TYPES_10 = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D"}
_MIN_BASE_CONVS_10 = 10  # EfficientNet-Lite0 has 49; a small CNN from scratch has 3


def _image_hashes_10(images) -> list[bytes]:
    """One digest per image, on its pixels rounded to uint8 (float copies of the same image match)."""
    import hashlib

    import numpy as np

    x = np.asarray(images)
    if x.dtype != np.uint8:
        x = np.clip(np.round(x.astype(np.float64)), 0, 255).astype(np.uint8)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x.reshape(len(x), -1)]


def _read_batches_10(ds, name: str, split: str, data) -> tuple:
    """All (images, labels) of a batched dataset answer, checked on the way: (x, y, first batch size)."""
    import numpy as np
    import tensorflow as tf

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
            f"`{name}`'s images have shape {_shape_text(x.shape[1:])}, the model takes "
            f"{_shape_text(expected)}: keep data.{split}'s images as they are (data was loaded at IMAGE_SIZE)"
        )
    return x, y, len(xs[0])


@register("10.1")
def check_10_1(train_ds, val_ds, data) -> str:
    """Batched train/val pipelines: shapes, pixel range, integer labels, shuffling, and no test image."""
    import numpy as np

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
        f"{_shape_text(data.image_shape)} in [0, 255] with integer labels, train shuffled, no test image"
    )


def _base_layers_10(model) -> tuple[list, list]:
    """(convolution layers, BatchNormalization layers) inside the model, nested ones included."""
    leaves = [layer for layer in walk_layers(model) if not getattr(layer, "layers", None)]
    convs = [layer for layer in leaves if type(layer).__name__ in _CONV_TYPES_10]
    norms = [layer for layer in leaves if type(layer).__name__ == "BatchNormalization"]
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
    import keras
    import numpy as np

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
    import numpy as np

    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


@register("10.5")
def check_10_5(path, reloaded, model, data) -> str:
    """A .keras file of `model`, loaded back into `reloaded`: same predictions from all three."""
    import os
    import zipfile
    from pathlib import Path

    import keras

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
    expected = _call(model, images)
    if _max_difference_10(_call(reloaded, images), expected) > 1e-5:
        raise CheckFailed(
            "`reloaded` predicts differently from `model`: save `model` after training, then load that file"
        )
    from_file = keras.models.load_model(file, compile=False)
    if _max_difference_10(_call(from_file, images), expected) > 1e-5:
        raise CheckFailed(
            "the file at `path` holds a model that predicts differently from `model`: save it again with "
            "model.save(path) after training"
        )
    return "the .keras file loads back into a model that predicts exactly like `model`"


# =========================================================================== lesson 07
# ImageNet top-1 (%) as published (keras.io/api/applications; MobileNetV3 and EfficientNet-Lite READMEs);
# the exercise notebook shows the same table.
PUBLISHED_TOP1_07 = {
    "vgg16": 71.3, "resnet50": 74.9, "inception_v3": 77.9, "xception": 79.0, "mobilenet_v2": 71.3,
    "efficientnet_b0": 77.1, "mobilenet_v3_small": 68.1, "efficientnet_lite0": 75.1,
}  # fmt: skip


def _pick_base_07(max_params, *, strict: bool = False) -> str | None:
    from tlcourse import models

    fits = [info for info in models.catalog() if info.params < max_params or (info.params == max_params
                                                                             and not strict)]  # fmt: skip
    best = max(fits, key=lambda info: PUBLISHED_TOP1_07[info.name], default=None)
    return None if best is None else best.name


@register("07.1")
def check_07_1(pick_base) -> str:
    """A function picking the most accurate base of the catalogue under a parameter budget."""
    from tlcourse import models

    if not callable(pick_base):
        raise CheckFailed("`pick_base` should be a function: def pick_base(max_params): ...")
    params = {info.name: info.params for info in models.catalog()}
    budgets = (1_000_000, 5_000_000, params["mobilenet_v2"], 25_000_000, 100_000)
    for budget in budgets:
        expected = _pick_base_07(budget)
        returned = pick_base(budget)
        if hasattr(returned, "name") and hasattr(returned, "params"):
            returned = returned.name
            if returned == expected:
                raise CheckFailed(
                    "pick_base returned a BaseInfo: return the base's name (info.name), a string"
                )
        if returned == expected:
            continue
        where = f"for max_params={budget:,}"
        if expected is None:
            raise CheckFailed(
                f"pick_base returned {returned!r} {where}, but no base has that few parameters: return None "
                "when nothing fits"
            )
        if returned is None:
            raise CheckFailed(f"pick_base returned None {where}, but {expected} ({params[expected]:,}) fits")
        if returned not in params:
            raise CheckFailed(f"pick_base returned {returned!r} {where}: return a name from catalog()")
        if params[returned] > budget:
            raise CheckFailed(
                f"pick_base returned {returned} {where}, which has {params[returned]:,} parameters: drop every "
                "base above the budget first"
            )
        if params[expected] == budget and returned == _pick_base_07(budget, strict=True):
            raise CheckFailed(
                f"pick_base {where} missed {expected}, which has exactly that many parameters: a base at the "
                "budget fits (use <=, not <)"
            )
        if PUBLISHED_TOP1_07[returned] < PUBLISHED_TOP1_07[expected]:
            raise CheckFailed(
                f"pick_base returned {returned} {where}, but {expected} also fits and is more accurate "
                f"({PUBLISHED_TOP1_07[expected]} % vs {PUBLISHED_TOP1_07[returned]} %): among the bases that fit, "
                "take the highest PUBLISHED_TOP1"
            )
        raise CheckFailed(
            f"pick_base returned {returned!r} {where}; the most accurate base that fits is {expected}"
        )
    return f"pick_base takes the most accurate base under the budget (checked {len(budgets)} budgets)"


def _rows_07() -> list[dict]:
    accuracy = {
        ("scratch", 0.1): (0.31, 0.45, 0.38), ("scratch", 1.0): (0.78, 0.81, 0.75),
        ("transfer", 0.1): (0.70, 0.79, 0.76), ("transfer", 1.0): (0.88, 0.89, 0.91),
    }  # fmt: skip
    return [
        {"recipe": recipe, "fraction": fraction, "seed": seed, "accuracy": value}
        for (recipe, fraction), values in accuracy.items()
        for seed, value in enumerate(values)
    ]


@register("07.2")
def check_07_2(summarise) -> str:
    """mean ± sample std per (recipe, fraction) from raw comparison rows."""
    import numpy as np

    if not callable(summarise):
        raise CheckFailed("`summarise` should be a function: def summarise(rows): ...")
    rows = _rows_07()
    table = summarise([dict(row) for row in rows])
    if not isinstance(table, dict):
        raise CheckFailed(
            f"summarise returned a {type(table).__name__}: return a dict {{(recipe, fraction): (mean, std)}}"
        )
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["recipe"], row["fraction"]), []).append(row["accuracy"])
    if set(table) != set(groups):
        if set(table) == {recipe for recipe, _ in groups}:
            raise CheckFailed(
                "summarise grouped by recipe only: the keys must be (recipe, fraction) pairs — each fraction is "
                "a different experiment"
            )
        raise CheckFailed(
            f"summarise's keys are {sorted(map(str, table))[:4]}: use one key (recipe, fraction) per group, e.g. "
            "('scratch', 0.1)"
        )
    for key, values in groups.items():
        value = table[key]
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise CheckFailed(f"summarise gave {value!r} for {key}: give a pair (mean, std)")
        mean, std = (float(v) for v in value)
        sample_std, population_std = float(np.std(values, ddof=1)), float(np.std(values))
        if abs(mean - np.mean(values)) > 1e-6:
            if abs(std - np.mean(values)) < 1e-6:
                raise CheckFailed(f"summarise gave (std, mean) for {key}: the pair is (mean, std)")
            raise CheckFailed(f"the mean for {key} is wrong: average the accuracy over that group's seeds")
        if abs(std - population_std) < 1e-6 and abs(std - sample_std) > 1e-6:
            raise CheckFailed(
                f"the std for {key} is the population std (ddof=0): over a few seeds use the sample standard "
                "deviation, np.std(values, ddof=1)"
            )
        if abs(std - sample_std) > 1e-6:
            raise CheckFailed(
                f"the std for {key} is wrong: np.std(values, ddof=1) of that group's accuracies"
            )
    return "summarise gives mean ± sample std per (recipe, fraction) (4 groups of 3 seeds)"


@register("07.3")
def check_07_3(comparison, winner) -> str:
    """A comparison over ≥ 2 recipes, fractions and seeds, and its winner at the smallest fraction."""
    import numpy as np

    rows = getattr(comparison, "rows", None)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise CheckFailed("`comparison` should be what tlcourse.train.compare(...) returns (it has .rows)")
    missing = {"recipe", "fraction", "seed", "accuracy"} - set(rows[0])
    if missing:
        raise CheckFailed(f"comparison.rows lack {sorted(missing)}: use tlcourse.train.compare")
    recipes = sorted({r["recipe"] for r in rows})
    fractions = sorted({r["fraction"] for r in rows})
    seeds = {r["seed"] for r in rows}
    if len(recipes) < 2:
        raise CheckFailed("the comparison has one recipe: pass both recipes to compare")
    if len(fractions) < 2:
        raise CheckFailed("the comparison has one data fraction: pass fractions=(small, large)")
    if len(seeds) < 2:
        raise CheckFailed(
            "the comparison ran one seed: a ranking from one run is noise; pass seeds=(0, 1, 2)"
        )
    if not all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows):
        raise CheckFailed(
            "comparison.rows hold accuracies outside [0, 1]: use tlcourse.train.compare's result"
        )

    def means(fraction):
        return {
            recipe: float(
                np.mean([r["accuracy"] for r in rows if r["recipe"] == recipe and r["fraction"] == fraction])
            )
            for recipe in recipes
        }

    at_smallest = means(fractions[0])
    expected = max(at_smallest, key=at_smallest.get)
    if not isinstance(winner, str):
        raise CheckFailed(
            f"`winner` is a {type(winner).__name__}: give the recipe's name, e.g. {recipes[0]!r}"
        )
    if winner not in recipes:
        raise CheckFailed(f"`winner` is {winner!r}, not one of the compared recipes {recipes}")
    if winner != expected:
        at_largest = means(fractions[-1])
        if winner == max(at_largest, key=at_largest.get):
            raise CheckFailed(
                f"{winner} wins at the largest fraction; the question is the smallest ({fractions[0]}), where "
                "labels are scarce"
            )
        raise CheckFailed(
            f"{winner} does not have the highest mean accuracy at fraction {fractions[0]}: compare the means "
            "over seeds (comparison.summary()), not single runs"
        )
    return f"{winner} wins at the smallest fraction ({len(recipes)} recipes, {len(seeds)} seeds)"


# =========================================================================== lesson 08
GROUP_OF_CLASS_08 = (0, 0, 0, 0, 0, 1, 0, 1, 2, 1)  # Fashion-MNIST: clothing 0, footwear 1, bag 2
TASKS_08 = {"class": 10, "group": 3}
AT_LEAST_08 = {"class": 0.65, "group": 0.85}


def _tiny_base_08(trainable: bool = False):
    """A small frozen image base (8×8×3 → 6 features) for trying the student's functions."""
    import keras

    images = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="tiny_rescale")(images)
    x = keras.layers.Conv2D(6, 3, name="tiny_conv")(x)
    features = keras.layers.GlobalAveragePooling2D(name="tiny_gap")(x)
    base = keras.Model(images, features, name="tiny_base")
    base.trainable = trainable
    return base


def _reference_multi_task_08(shared_units: int = 5):
    import keras

    base = _tiny_base_08()
    images = keras.Input((8, 8, 3))
    shared = keras.layers.Dense(shared_units, activation="relu", name="shared")(base(images, training=False))
    outputs = {task: keras.layers.Dense(n, name=task)(shared) for task, n in TASKS_08.items()}
    return keras.Model(images, outputs, name="reference_multi_task")


def _dict_outputs_08(model, x, *, name: str) -> dict:
    import numpy as np

    outputs = model(x, training=False)
    if not isinstance(outputs, dict):
        kind = "a list" if isinstance(outputs, (list, tuple)) else "one tensor"
        raise CheckFailed(
            f"`{name}` returns {kind}: return a dict of named outputs, keras.Model(inputs, "
            '{"class": class_logits, "group": group_logits})'
        )
    if set(outputs) != set(TASKS_08):
        raise CheckFailed(
            f"`{name}`'s outputs are named {sorted(outputs)}: name them exactly 'class' and 'group'"
        )
    return {task: np.asarray(value) for task, value in outputs.items()}


@register("08.1")
def check_08_1(group_of_class) -> str:
    """The lookup table class id → group (clothing 0, footwear 1, bag 2) for Fashion-MNIST."""
    import numpy as np

    if group_of_class is None:
        raise CheckFailed("`group_of_class` is None: assign the array to it")
    table = np.asarray(group_of_class)
    if table.dtype.kind in "USO":
        raise CheckFailed(
            "`group_of_class` holds names; use the group ids 0 (clothing), 1 (footwear), 2 (bag) so that "
            "group_of_class[y] gives integer labels"
        )
    if table.shape != (10,):
        raise CheckFailed(
            f"`group_of_class` has shape {table.shape}; it needs one entry per class: shape (10,)"
        )
    if table.dtype.kind not in "iu" and not np.all(table == np.round(table)):
        raise CheckFailed("`group_of_class` should contain whole numbers 0, 1 and 2")
    expected = np.array(GROUP_OF_CLASS_08)
    names = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    if set(table.tolist()) - {0, 1, 2}:
        raise CheckFailed("`group_of_class` contains values other than 0, 1 and 2: there are three groups")
    if table[8] == 1:
        raise CheckFailed("the Bag (class 8) is in group 1 (footwear): a bag is its own group, 2")
    wrong = [c for c in range(10) if table[c] != expected[c]]
    if wrong:
        details = ", ".join(f"{names[c]} (class {c}) should be {['clothing', 'footwear', 'bag'][expected[c]]}"
                            for c in wrong[:3])  # fmt: skip
        raise CheckFailed(f"`group_of_class` is wrong for {len(wrong)} class(es): {details}")
    return "group_of_class maps 6 clothing, 3 footwear and 1 bag class to groups 0, 1 and 2"


@register("08.2")
def check_08_2(build_multi_task) -> str:
    """A frozen base, one shared Dense layer, and two named logit heads on it, as a dict of outputs."""
    import numpy as np

    if not callable(build_multi_task):
        raise CheckFailed("`build_multi_task` should be a function: def build_multi_task(base): ...")
    base = _tiny_base_08()
    model = build_multi_task(base)
    if model is None:
        raise CheckFailed("build_multi_task returned None: end it with `return keras.Model(...)`")
    expect_model(model, name="build_multi_task(base)")
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    outputs = _dict_outputs_08(model, x, name="build_multi_task(base)")
    for task, units in TASKS_08.items():
        if outputs[task].ndim != 2 or outputs[task].shape[1] != units:
            raise CheckFailed(
                f"output '{task}' gives {outputs[task].shape[-1]} numbers per image; it needs {units}: "
                f"keras.layers.Dense({units}, name='{task}')"
            )
    layers = {layer.name: layer for layer in walk_layers(model)}
    for task in TASKS_08:
        layer = layers.get(task)
        activation = _activation_name(layer) if layer is not None else None
        if activation in _SQUASHING:
            raise CheckFailed(
                f"the '{task}' head has activation='{activation}': remove it so the head outputs logits "
                "(the loss uses from_logits=True)"
            )
        rows = outputs[task]
        if np.all(rows >= 0) and np.all(rows <= 1) and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3):
            raise CheckFailed(f"the '{task}' output is probabilities (rows sum to 1): remove the softmax")
    if "shared" not in layers:
        raise CheckFailed("there is no layer named 'shared': name the shared Dense layer name='shared'")
    shared = layers["shared"]
    trainable = _trainable_by_layer(model)
    in_base = {layer.name for layer in walk_layers(base)}
    if any(name in in_base for name in trainable):
        raise CheckFailed(
            "the base's weights are trainable in your model: keep the base frozen (it came frozen; do not set "
            "base.trainable = True) and call it with training=False"
        )
    extra = [name for name in trainable if name not in {"shared", *TASKS_08}]
    if extra:
        raise CheckFailed(
            f"layer(s) {', '.join(repr(n) for n in extra[:3])} also train: each head should be one Dense layer on "
            "the one shared layer, with no hidden layer of its own"
        )
    width = int(shared.kernel.shape[1])
    for task in TASKS_08:
        head = layers[task]
        if getattr(head, "kernel", None) is None or int(head.kernel.shape[0]) != width:
            raise CheckFailed(
                f"the '{task}' head does not sit on the shared layer: call it on the shared layer's output, "
                f"Dense({TASKS_08[task]}, name='{task}')(shared)"
            )
    expect_trainable(model, trainable=["shared", *TASKS_08], name="build_multi_task(base)")
    return (
        f"build_multi_task: frozen base → shared Dense({width}) → heads 'class' (10 logits) and 'group' (3 logits), "
        "outputs as a dict"
    )


def _compile_part_08(model, attribute: str):
    holder = getattr(model, "_compile_loss" if attribute == "loss_weights" else "_compile_metrics", None)
    return getattr(holder, "_user_loss_weights" if attribute == "loss_weights" else "_user_metrics", None)


@register("08.3")
def check_08_3(compile_multi_task) -> str:
    """A dict of from_logits losses, a dict of positive loss weights and a dict of metrics."""
    if not callable(compile_multi_task):
        raise CheckFailed("`compile_multi_task` should be a function: def compile_multi_task(model): ...")
    model = _reference_multi_task_08()
    returned = compile_multi_task(model)
    if returned is None:
        raise CheckFailed("compile_multi_task returned None: end it with `return model`")
    if returned is not model:
        raise CheckFailed(
            "compile_multi_task returned another model: compile the one it was given and return it"
        )
    if not getattr(model, "compiled", False):
        raise CheckFailed("the model is not compiled: call model.compile(optimizer=..., loss={...}, ...)")
    loss = model.loss
    if not isinstance(loss, dict):
        raise CheckFailed(
            "`loss` is not a dict: give each head its own loss, loss={'class': ..., 'group': ...}"
        )
    if set(loss) != set(TASKS_08):
        raise CheckFailed(
            f"the loss dict's keys are {sorted(loss)}: use the output names 'class' and 'group'"
        )
    for task in TASKS_08:
        value = loss[task]
        kind = type(value).__name__
        if not isinstance(value, str) and kind == "CategoricalCrossentropy":
            raise CheckFailed(
                f"loss['{task}'] is CategoricalCrossentropy, which expects one-hot labels; the labels are class "
                "ids: use keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
        expect_from_logits(value, name=f"loss['{task}']")
    weights = _compile_part_08(model, "loss_weights")
    if weights is None:
        raise CheckFailed(
            "no loss_weights: pass loss_weights={'class': 1.0, 'group': 1.0} (or other positive weights)"
        )
    if not isinstance(weights, dict) or set(weights) != set(TASKS_08):
        raise CheckFailed("loss_weights should be a dict keyed by the output names 'class' and 'group'")
    if any(not isinstance(w, (int, float)) or w <= 0 for w in weights.values()):
        raise CheckFailed("every loss weight must be a positive number: a weight of 0 switches a task off")
    metrics = _compile_part_08(model, "metrics")
    if not isinstance(metrics, dict) or set(metrics) != set(TASKS_08):
        raise CheckFailed(
            "metrics should be a dict keyed by the output names: metrics={'class': ['accuracy'], "
            "'group': ['accuracy']}"
        )
    shown = ", ".join(f"{task} {weights[task]:g}" for task in TASKS_08)
    return (
        f"compiled with one from_logits cross-entropy per head, loss weights ({shown}) and accuracy per head"
    )


@register("08.4")
def check_08_4(model) -> str:
    """The trained two-head model reaches the thresholds on held-out test images for both tasks."""
    import numpy as np

    from tlcourse import data

    expect_model(model, name="model")
    bundle = data.load("fashion_mnist")
    x_test, y_test = bundle.arrays("test")
    _dict_outputs_08(model, x_test[:2], name="model")
    predicted = model.predict(x_test, verbose=0)
    truth = {"class": y_test, "group": np.array(GROUP_OF_CLASS_08)[y_test]}
    accuracy = {
        task: float(np.mean(np.asarray(predicted[task]).argmax(axis=1) == truth[task])) for task in TASKS_08
    }
    for task, at_least in AT_LEAST_08.items():
        if accuracy[task] < at_least:
            extra = " and that the group labels come from group_of_class (08.1)" if task == "group" else ""
            raise CheckFailed(
                f"the '{task}' head's accuracy on held-out images is below {at_least:.0%}: train for more epochs "
                f"with a dict of labels {{'class': y_train, 'group': group_of_class[y_train]}}{extra}"
            )
    return (
        f"both heads work on {len(y_test)} held-out images: 'class' ≥ {AT_LEAST_08['class']:.0%}, "
        f"'group' ≥ {AT_LEAST_08['group']:.0%}"
    )


# =========================================================================== lesson 09
AT_LEAST_09 = 0.75
SENTENCES_09 = (
    "The unboxing was underwhelming.",
    "Great phone!",
    "I would not buy this kettle again, it leaks everywhere.",
)


@register("09.1")
def check_09_1(count_tokens, encoder) -> str:
    """A function counting the WordPiece tokens of a text (without [CLS], [SEP] or padding)."""
    import numpy as np

    if not callable(count_tokens):
        raise CheckFailed("`count_tokens` should be a function: def count_tokens(text): ...")
    for text in SENTENCES_09:
        expected = len(np.asarray(encoder.tokenizer(text)))
        returned = count_tokens(text)
        if returned is None:
            raise CheckFailed("count_tokens returned None: did you forget `return`?")
        value = _ints_like(returned)
        if value is None:
            raise CheckFailed(
                f"count_tokens returned a {type(returned).__name__}; it should return one whole number"
            )
        if value == expected:
            continue
        where = f"for {text!r} ({expected} tokens)"
        if value == expected + 2:
            raise CheckFailed(
                f"count_tokens returned {value} {where}: it counts [CLS] and [SEP] too; count the tokenizer's "
                "pieces, len(encoder.tokenizer(text))"
            )
        if value == getattr(encoder, "sequence_length", None):
            raise CheckFailed(
                f"count_tokens returned {value} {where}: that is the padded length; count the tokenizer's pieces"
            )
        if value == len(text.split()):
            raise CheckFailed(
                f"count_tokens returned {value} {where}: that is the number of words; WordPiece splits rare "
                "words and punctuation into more pieces — use encoder.tokenizer(text)"
            )
        if value == len(text):
            raise CheckFailed(f"count_tokens returned {value} {where}: that is the number of characters")
        raise CheckFailed(
            f"count_tokens returned {value} {where}: count the ids that encoder.tokenizer(text) returns"
        )
    return f"count_tokens counts WordPiece tokens correctly ({len(SENTENCES_09)} sentences)"


@register("09.2")
def check_09_2(cosine_similarity) -> str:
    """Cosine similarity of two vectors of any length."""
    import numpy as np

    if not callable(cosine_similarity):
        raise CheckFailed("`cosine_similarity` should be a function: def cosine_similarity(a, b): ...")
    a = np.array([3.0, 4.0, 0.0, 1.0], dtype="float32")
    b = np.array([1.0, 2.0, 2.0, -1.0], dtype="float32")
    cases = [(a, b), (a, 3 * a), (a, -a)]
    for u, v in cases:
        expected = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
        returned = cosine_similarity(u, v)
        if returned is None:
            raise CheckFailed("cosine_similarity returned None: did you forget `return`?")
        value = np.asarray(returned, dtype="float64")
        if value.size != 1:
            raise CheckFailed(
                f"cosine_similarity returned an array of shape {value.shape}; it should return one number"
            )
        value = float(value.reshape(()))
        if np.isclose(value, expected, atol=1e-4):
            continue
        if np.isclose(value, float(u @ v), atol=1e-3):
            raise CheckFailed(
                "cosine_similarity returned the plain dot product: divide it by the lengths of both vectors "
                "(np.linalg.norm); only unit-length vectors can skip that"
            )
        if np.isclose(value, 1 - expected, atol=1e-4):
            raise CheckFailed(
                "cosine_similarity returned 1 − cosine, the cosine distance: return the similarity"
            )
        if np.isclose(value, float(u @ v) / float(np.linalg.norm(u)), atol=1e-3) or np.isclose(
            value, float(u @ v) / float(np.linalg.norm(v)), atol=1e-3
        ):
            raise CheckFailed("cosine_similarity divides by one vector's length only: divide by both")
        raise CheckFailed(
            "cosine_similarity gives a wrong value: a · b / (‖a‖ ‖b‖); it is 1 for a and 3a, −1 for a and −a"
        )
    return "cosine_similarity is a·b / (‖a‖ ‖b‖): 1 for parallel, −1 for opposite vectors"


@register("09.3")
def check_09_3(head, encoder) -> str:
    """A linear head on sentence embeddings reaching the threshold on the held-out test sentences."""
    import numpy as np

    from tlcourse import data

    expect_model(head, name="head")
    width = head.inputs[0].shape[-1] if head.inputs else None
    if width is not None and int(width) != encoder.dim:
        raise CheckFailed(
            f"`head` takes {int(width)} inputs but an embedding has {encoder.dim} numbers: "
            f"start it with keras.Input(shape=({encoder.dim},))"
        )
    bundle = data.load("sentiment")
    texts, labels = bundle.arrays("test")
    embeddings = encoder.embed([str(t) for t in texts])
    outputs = np.asarray(head(embeddings[:2], training=False))
    if outputs.ndim != 2 or outputs.shape[1] != 2:
        raise CheckFailed(
            f"`head` outputs {outputs.shape[-1]} numbers per sentence: use keras.layers.Dense(2) for the two "
            "classes (negative, positive)"
        )
    expect_logits(head, outputs, name="head")
    expect_accuracy(head, embeddings, labels, at_least=AT_LEAST_09, name="head")
    return f"head reaches ≥ {AT_LEAST_09:.0%} on the embeddings of {len(labels)} held-out sentences"


# =========================================================================== lesson 06
def _reference_coral(source, target) -> float:
    import numpy as np

    def covariance(x):
        centred = x - x.mean(axis=0, keepdims=True)
        return centred.T @ centred / (len(x) - 1)

    d = source.shape[1]
    return float(np.sum(np.square(covariance(source) - covariance(target))) / (4.0 * d * d))


def _as_float(value, what: str) -> float:
    import numpy as np

    if value is None:
        raise CheckFailed(f"{what} returned None: did you forget `return`?")
    try:
        array = np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} should return one number, got a {type(value).__name__}") from None
    if array.size != 1:
        raise CheckFailed(f"{what} should return one number (a scalar), got shape {array.shape}")
    return float(array.reshape(()))


@register("06.1")
def check_06_1(GradientReversal) -> str:  # noqa: N803 — the answer is a class
    """A gradient reversal layer: identity forward, −λ × the gradient backward, λ set at construction."""
    import keras

    if not isinstance(GradientReversal, type) or not issubclass(GradientReversal, keras.layers.Layer):
        raise CheckFailed(
            "`GradientReversal` should be a class: class GradientReversal(keras.layers.Layer): ..."
        )
    for lambda_ in (0.5, 2.0):
        try:
            layer = GradientReversal(lambda_=lambda_)
        except (TypeError, ValueError) as exc:
            raise CheckFailed(
                f"GradientReversal(lambda_={lambda_}) failed ({exc}): accept lambda_ in __init__ and pass "
                "**kwargs on to super().__init__"
            ) from None
        expect_gradient_reversal(layer, factor=lambda_, name=f"GradientReversal(lambda_={lambda_})")
    return "GradientReversal is the identity forward and multiplies gradients by −λ (λ = 0.5 and 2)"


@register("06.2")
def check_06_2(coral_loss) -> str:
    """The CORAL loss: ||C_s − C_t||²_F / (4 d²), 0 for identical covariances, growing with the gap."""
    import numpy as np

    if not callable(coral_loss):
        raise CheckFailed(
            "`coral_loss` should be a function: def coral_loss(source_features, target_features): ..."
        )
    rng = np.random.default_rng(6)
    source = rng.normal(size=(64, 8)).astype("float32")
    target = (rng.normal(size=(48, 8)) * np.linspace(0.5, 2.0, 8) + 0.3).astype("float32")
    value = _as_float(coral_loss(source, target), "coral_loss")
    expected = _reference_coral(source.astype("float64"), target.astype("float64"))
    if not np.isclose(value, expected, rtol=1e-3, atol=1e-7):
        d = source.shape[1]
        if np.isclose(value, expected * 4 * d * d, rtol=1e-3):
            raise CheckFailed("coral_loss is 4·d² times too large: divide the squared Frobenius norm by 4 d²")
        if np.isclose(value, np.sqrt(expected * 4 * d * d) / (4 * d * d), rtol=1e-3):
            raise CheckFailed("coral_loss forgot to square: sum the *squared* differences of the covariances")
        if np.isclose(value, _uncentred_coral(source, target), rtol=1e-3):
            raise CheckFailed(
                "coral_loss does not centre the features: subtract each feature's mean before x.T @ x"
            )
        raise CheckFailed(
            f"coral_loss gives {value:.4g} where the reference gives {expected:.4g} on random features: "
            "C = (x − mean)ᵀ(x − mean) / (n − 1) per domain, then sum((C_s − C_t)²) / (4 d²)"
        )
    shifted = _as_float(coral_loss(source, source + 5.0), "coral_loss")
    if abs(shifted) > 1e-6:
        raise CheckFailed(
            "coral_loss is not 0 for two domains with the same covariance (only the means differ): "
            "centre each domain's features before computing its covariance"
        )
    closer = _as_float(coral_loss(source, 1.5 * source), "coral_loss")
    further = _as_float(coral_loss(source, 3.0 * source), "coral_loss")
    if not 0 < closer < further:
        raise CheckFailed("coral_loss should grow as the covariances move apart (try x vs 1.5·x and 3·x)")
    return "coral_loss matches the reference, is 0 for equal covariances and grows with the gap"


def _uncentred_coral(source, target) -> float:
    import numpy as np

    d = source.shape[1]
    cs = source.T.astype("float64") @ source / (len(source) - 1)
    ct = target.T.astype("float64") @ target / (len(target) - 1)
    return float(np.sum(np.square(cs - ct)) / (4.0 * d * d))


def _batchnorm_inputs(model, images):
    """The exact mean and variance of every BN layer's input once the layers before it use the target's."""
    import numpy as np

    from tlcourse import adapt

    reference = adapt.adabn(model, images)
    layers = [layer for layer in walk_layers(reference) if _is_batchnorm(layer)]
    return [(np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)) for layer in layers]


def _is_batchnorm(layer) -> bool:
    import keras

    return isinstance(layer, keras.layers.BatchNormalization)


@register("06.3")
def check_06_3(adapted, source_model, x_target) -> str:
    """AdaBN: a copy of the source model whose BN layers hold the target's statistics; original untouched."""
    import numpy as np

    expect_model(adapted, name="adapted")
    expect_model(source_model, name="source_model")
    if adapted is source_model:
        raise CheckFailed(
            "`adapted` is `source_model` itself: adapt a copy (keras.models.clone_model + set_weights) so "
            "that the source model keeps its own statistics"
        )
    mine = [layer for layer in walk_layers(adapted) if _is_batchnorm(layer)]
    original = [layer for layer in walk_layers(source_model) if _is_batchnorm(layer)]
    if not original:
        raise CheckFailed(
            "`source_model` has no BatchNormalization layer: use the model built in the notebook"
        )
    if len(mine) != len(original):
        raise CheckFailed(
            f"`adapted` has {len(mine)} BatchNormalization layers, `source_model` {len(original)}: copy the model"
        )
    images = np.asarray(x_target)
    source_stats = [np.asarray(layer.moving_mean) for layer in original]
    target_stats = _batchnorm_inputs(source_model, images)
    for index, ((mean, variance), layer) in enumerate(zip(target_stats, mine, strict=True), start=1):
        got_mean, got_variance = np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)
        scale = np.abs(mean).max() + 1e-3
        if np.allclose(got_mean, mean, atol=0.02 * scale) and np.allclose(
            got_variance, variance, rtol=0.05, atol=1e-4
        ):
            continue
        if np.allclose(got_mean, source_stats[index - 1], atol=1e-6):
            raise CheckFailed(
                f"BatchNorm layer {index} of `adapted` still holds the source's statistics: run the target "
                "images through it in training mode (with momentum 0) or use tlcourse.adapt.adabn"
            )
        raise CheckFailed(
            f"BatchNorm layer {index} of `adapted` does not hold the target's statistics: one forward pass "
            "with ALL of x_target as one batch, training=True, momentum set to 0 on every BN layer"
        )
    return f"`adapted` holds the target's statistics in its {len(mine)} BatchNorm layers"


@register("06.4")
def check_06_4(confident_pseudo_labels) -> str:
    """Pseudo-labels: softmax confidence ≥ threshold keeps an example; labels are the arg-max."""
    import numpy as np

    if not callable(confident_pseudo_labels):
        raise CheckFailed(
            "`confident_pseudo_labels` should be a function: def confident_pseudo_labels(logits, threshold): ..."
        )
    logits = np.array(
        [
            [4.0, 0.0, 0.0],
            [0.2, 0.0, 0.1],
            [0.0, 3.0, 0.0],
            [1.0, 0.95, 0.9],
            [1.0, 1.0, 5.0],
            [0.0, 0.5, 2.5],
        ],
        dtype="float32",
    )
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    threshold = 0.9
    expected_mask = probabilities.max(axis=1) >= threshold
    expected_labels = probabilities.argmax(axis=1)[expected_mask]
    returned = confident_pseudo_labels(logits, threshold)
    if returned is None:
        raise CheckFailed("confident_pseudo_labels returned None: return (mask, labels)")
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise CheckFailed("confident_pseudo_labels should return two things: (mask, labels)")
    mask, labels = (np.asarray(part) for part in returned)
    if mask.shape != (len(logits),):
        raise CheckFailed(
            f"the mask should have one entry per example ({len(logits)}), got shape {mask.shape}"
        )
    mask = mask.astype(bool)
    if not np.array_equal(mask, expected_mask):
        if np.array_equal(mask, logits.max(axis=1) >= threshold):
            raise CheckFailed(
                "the mask compares raw logits with the threshold: turn the logits into probabilities "
                "(softmax) first; the threshold is a probability"
            )
        if mask.all():
            raise CheckFailed(
                "the mask keeps every example: keep only those whose top probability ≥ threshold"
            )
        raise CheckFailed(
            "the mask keeps the wrong examples: keep those whose largest softmax probability is ≥ threshold"
        )
    if labels.shape == (len(logits),):
        raise CheckFailed("labels should hold only the kept examples' labels (apply the mask)")
    if not np.array_equal(labels.reshape(-1), expected_labels):
        raise CheckFailed("the labels are not the kept examples' arg-max classes")
    return (
        "confident_pseudo_labels keeps the examples with softmax confidence ≥ threshold, labelled by arg-max"
    )
