"""Errors that tlcourse raises: one message saying what was wrong, one hint saying how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "TlcourseError",
    "ConfigError",
    "DataError",
    "DependencyError",
    "ModelError",
    "OfflineError",
    "TrainError",
    "VizError",
    "unknown_name",
]


class TlcourseError(Exception):
    """Base class of every error tlcourse raises on purpose.

    Parameters
    ----------
    message : str
        What was wrong, in one sentence.
    hint : str, optional
        How to fix it.

    Examples
    --------
    >>> err = TlcourseError("No such lesson: 99.", hint="Lessons are numbered 00 to 10.")
    >>> print(err)
    No such lesson: 99.
      hint: Lessons are numbered 00 to 10.
    """

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing the whole TensorFlow-deep traceback.
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigError(TlcourseError, ValueError):
    """A profile, environment variable or option has a value tlcourse cannot use."""


class DependencyError(TlcourseError, ImportError):
    """A package is missing or has a version the course does not support."""


class DataError(TlcourseError, ValueError):
    """A dataset, folder, image or label is not what the call expects."""


class ModelError(TlcourseError, ValueError):
    """A model, base, layer or weight file is not what the call expects."""


class OfflineError(TlcourseError, RuntimeError):
    """Something needs the network, and tlcourse is offline."""


class TrainError(TlcourseError, RuntimeError):
    """Training cannot start or continue as asked."""


class VizError(TlcourseError, ValueError):
    """A plot or explorer cannot be drawn from what it was given."""


def unknown_name(
    kind: str, name: object, choices: Iterable[str], *, error: type[TlcourseError] = ConfigError
) -> TlcourseError:
    """Build the error for a name that is not among ``choices``, suggesting the closest ones.

    Examples
    --------
    >>> print(unknown_name("dataset", "fashion_minst", ["fashion_mnist", "digits"]))
    Unknown dataset 'fashion_minst'.
      hint: Did you mean 'fashion_mnist'? Known: digits, fashion_mnist.
    """
    choices = sorted(choices)
    close = difflib.get_close_matches(str(name), choices, n=3, cutoff=0.5)
    hint = f"Known: {', '.join(choices)}."
    if close:
        hint = "Did you mean " + " or ".join(repr(c) for c in close) + "? " + hint
    return error(f"Unknown {kind} {name!r}.", hint=hint)
