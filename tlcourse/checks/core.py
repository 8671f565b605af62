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
import importlib
import inspect
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tlcourse.errors import ConfigError

__all__ = [
    "CHECKS",
    "CheckFailed",
    "CheckResult",
    "MISSING",
    "NotAttempted",
    "check",
    "parse_line",
    "register",
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
    otherwise, see ``tlcourse_tools.authoring``.)

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


def _load_lesson(check_id: str) -> None:
    """Import the module that registers the checks of ``check_id``'s lesson (``03.2`` → ``lesson_03``).

    Lessons' checks load on first use, so that ``import tlcourse`` does not import every lesson's
    dependencies; a lesson without checks simply registers nothing.
    """
    lesson = check_id.split(".")[0]
    if any(known.startswith(lesson + ".") for known in CHECKS):
        return
    with contextlib.suppress(ModuleNotFoundError):
        importlib.import_module(f"tlcourse.checks.lesson_{lesson}")


def _run(check_id: str, args: tuple, kwargs: dict, namespace: dict) -> CheckResult:
    if CHECK_ID_PATTERN.match(check_id):
        _load_lesson(check_id)
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
        namespace = inspect.currentframe().f_back.f_globals
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
