"""tlcourse: the helper package of a transfer learning course for TensorFlow 2.16+ / Keras 3.

The lessons import it as ``import tlcourse`` and start with ``course = tlcourse.setup("NN")``.
Modules, one per concern: ``env`` (setup, profiles), ``data``, ``models``, ``train``, ``runs``
(resumable run folders), ``experiments`` (comparisons over seeds), ``viz``, ``adapt``, ``checks`` (one
module per lesson), ``cli``. The authoring,
running and grading tools are the separate ``tlcourse_tools`` package (``tools/``).
"""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tlcourse.env import Budget, Course, cache_dir, is_offline, reseed, say, setup  # noqa: E402
from tlcourse.errors import TlcourseError  # noqa: E402

if os.environ.get("TLCOURSE_SOCKET_GUARD", "").strip() in {"1", "true", "yes"}:
    from tlcourse.env import install_socket_guard

    install_socket_guard()

__all__ = ["Budget", "Course", "TlcourseError", "cache_dir", "check", "is_offline", "reseed", "say", "setup"]
_SUBMODULES = {
    "adapt",
    "checks",
    "cli",
    "data",
    "experiments",
    "introspect",
    "models",
    "runs",
    "train",
    "viz",
}


def __getattr__(name: str):
    # Submodules load on first use: `import tlcourse` stays fast and keras_hub is only
    # imported by the lessons that need it.
    if name in _SUBMODULES:
        return importlib.import_module(f"tlcourse.{name}")
    if name == "check":
        return importlib.import_module("tlcourse.checks").check
    raise AttributeError(f"module 'tlcourse' has no attribute {name!r}")
