"""Checks for the exercises, one module per lesson.

- :mod:`tlcourse.checks.core`: ``check``, ``register`` and the one-line results;
- :mod:`tlcourse.checks.verify`: reusable verifiers (``expect_*``) shared by the lessons;
- ``tlcourse.checks.lesson_NN``: the checks of lesson NN, loaded on first use.

A lesson's exercise notebook calls ``tlcourse.check("03.2")``; see :mod:`tlcourse.checks.core`.
"""

from tlcourse.checks.core import (
    CHECKS,
    MISSING,
    CheckFailed,
    CheckResult,
    NotAttempted,
    check,
    parse_line,
    register,
)

__all__ = [
    "CHECKS",
    "MISSING",
    "CheckFailed",
    "CheckResult",
    "NotAttempted",
    "check",
    "parse_line",
    "register",
]
