"""Colab's runtime as a twin: constraint files made from Google's published ``pip freeze``, and the
``make test-colab`` run that installs the course into a copy of that runtime the way a student's first
cell does.

Google publishes the package list of Colab's GPU runtime (``googlecolab/backend-info``,
``pip-freeze.gpu.txt`` and ``os-info-gpu.txt``). :func:`constraints_from_freeze` turns one such list
into a pip/uv constraints file kept in ``tools/colab/`` and named with its date; one command
regenerates it from a newer list::

    python -m tlcourse_tools colab-constraints pip-freeze.gpu.txt --os-info os-info-gpu.txt --date 2026-08-19

:func:`run_twin` (``make test-colab``) then builds a virtual environment on the same Python minor
version holding Colab's versions of the packages the course touches, runs the lessons' own install
cell in it, fails if that cell changed any package already present, and runs the course's tests
there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tlcourse.errors import ConfigError

__all__ = [
    "Snapshot",
    "constraints_from_freeze",
    "find_python",
    "freeze_diff",
    "read_snapshot",
    "run_twin",
    "snapshots",
    "write_constraints",
]

TOOLS_DIR = Path(__file__).resolve().parents[1]
CONSTRAINTS_DIR = TOOLS_DIR / "colab"
FILE_PREFIX = "colab-gpu."

# Colab-preinstalled packages that the course touches besides its own dependencies: the kernel that
# runs the notebooks, pip (the install cell runs Colab's pip), and what the tests use that Colab ships.
KERNEL_AND_TOOLS = (
    "pip",
    "setuptools",
    "wheel",
    "ipykernel",
    "ipython",
    "jupyter_client",
    "jupyter_core",
    "traitlets",
    "widgetsnbextension",
    "jupyterlab_widgets",
    "pytest",
    "nbformat",
    "nbclient",
    "nbconvert",
    "jupytext",
    "psutil",
    "pillow",
)
# Installed after the install cell, at the versions the venv then holds (so nothing Colab has moves).
TEST_TOOLS = ("pytest-xdist", "pytest-timeout", "nbval")

_CUDA_ONLY = re.compile(r"cuda|-cu1\d($|-)|^nvidia-|^rapids-", re.IGNORECASE)
# Colab's own packages and Ubuntu's system builds: not installable from PyPI at these versions.
_COLAB_INTERNAL = {"google-colab", "python-apt", "dbus-python", "pygobject"}


def canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503).

    Examples
    --------
    >>> canonical("jupyter_client"), canonical("PyYAML"), canonical("ruamel.yaml")
    ('jupyter-client', 'pyyaml', 'ruamel-yaml')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


# =========================================================================== constraint files
def _drop_reason(line: str) -> str | None:
    name = re.split(r"\s*(==|@)", line, maxsplit=1)[0]
    if " @ " in line or "://" in line:
        return "installed from a URL"
    if canonical(name) in _COLAB_INTERNAL:
        return "Colab-internal or an Ubuntu system package"
    if _CUDA_ONLY.search(name):
        return "CUDA only"
    if "+" in line.split("==", 1)[-1]:
        return "a local build (" + line.split("+", 1)[1] + "), not on PyPI"
    if "==" not in line:
        return "not pinned to a version"
    return None


def constraints_from_freeze(freeze: str, *, date: str, python: str, source: str = "") -> str:
    """A constraints file from the text of Colab's ``pip freeze``: one ``name==version`` line per package
    that installs from PyPI; the others are listed in the header with the reason they were dropped.

    Parameters
    ----------
    freeze : str
        The published ``pip-freeze.gpu.txt``.
    date : str
        The snapshot's date (``YYYY-MM-DD``), written into the header.
    python : str
        The runtime's Python version (from ``os-info-gpu.txt``), written as ``# python: X.Y.Z``.
    source : str
        Where the freeze came from, for the header.

    Examples
    --------
    >>> text = constraints_from_freeze(
    ...     "# comment\\nkeras==3.13.2\\ntorch==2.11.0+cu128\\nnvidia-cudnn-cu12==9.19.0.56\\n"
    ...     "google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz\\n",
    ...     date="2026-08-19", python="3.13.15")
    >>> [line for line in text.splitlines() if not line.startswith("#")]
    ['keras==3.13.2']
    >>> read_snapshot(text).python
    '3.13.15'
    """
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ConfigError(f"Snapshot date {date!r} is not YYYY-MM-DD.", hint="Pass --date 2026-08-19.")
    if not re.fullmatch(r"3\.\d+\.\d+", python):
        raise ConfigError(f"Python version {python!r} is not X.Y.Z.", hint="Pass --python 3.13.15.")
    kept, dropped = [], []
    for raw in freeze.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        reason = _drop_reason(line)
        if reason:
            dropped.append(f"#   {re.split(r' @ |==', line)[0]}: {reason}")
        else:
            kept.append(line)
    if not kept:
        raise ConfigError("The freeze lists no package with a version.", hint="Pass Colab's pip-freeze.gpu.txt.")
    header = [
        f"# Colab's GPU runtime on {date}: the versions of its packages that install from PyPI.",
        "# Made from Google's published pip freeze"
        + (f" ({source})" if source else "")
        + " by `python -m tlcourse_tools colab-constraints`; do not edit by hand.",
        f"# python: {python}",
        f"# Dropped, {len(dropped)} lines (they cannot be installed from PyPI):",
        *dropped,
    ]
    return "\n".join(header + sorted(kept, key=str.lower)) + "\n"


def _python_from_os_info(text: str) -> str:
    match = re.search(r"^Python (3\.\d+\.\d+)", text, re.M)
    if not match:
        raise ConfigError("No 'Python 3.x.y' line in the os-info file.", hint="Pass Colab's os-info-gpu.txt.")
    return match.group(1)


def write_constraints(
    freeze_path: str | os.PathLike,
    *,
    date: str | None = None,
    python: str | None = None,
    os_info: str | os.PathLike | None = None,
    folder: str | os.PathLike = CONSTRAINTS_DIR,
) -> Path:
    """Write ``tools/colab/colab-gpu.<date>.txt`` from a published freeze (the command behind
    ``python -m tlcourse_tools colab-constraints``). ``date`` defaults to a ``YYYY-MM-DD`` in the
    freeze's file name, ``python`` to the version in ``os_info``."""
    freeze_path = Path(freeze_path)
    if date is None:
        found = re.search(r"\d{4}-\d{2}-\d{2}", freeze_path.name)
        if not found:
            raise ConfigError(
                f"{freeze_path.name} has no date in its name.", hint="Pass --date YYYY-MM-DD."
            )
        date = found.group(0)
    if python is None:
        if os_info is None:
            raise ConfigError("Which Python does this runtime have?", hint="Pass --os-info os-info-gpu.txt.")
        python = _python_from_os_info(Path(os_info).read_text(encoding="utf-8"))
    text = constraints_from_freeze(
        freeze_path.read_text(encoding="utf-8"),
        date=date,
        python=python,
        source="googlecolab/backend-info pip-freeze.gpu.txt",
    )
    target = Path(folder) / f"{FILE_PREFIX}{date}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One constraint file: its date, the runtime's Python and the pinned versions (canonical names)."""

    date: str
    python: str
    pins: Mapping[str, str]
    path: Path | None = None

    @property
    def python_minor(self) -> str:
        return ".".join(self.python.split(".")[:2])


def read_snapshot(text: str, *, path: Path | None = None) -> Snapshot:
    python = re.search(r"^# python: (3\.\d+\.\d+)$", text, re.M)
    date = re.search(r"on (\d{4}-\d{2}-\d{2})", text)
    if not python or not date:
        raise ConfigError(
            f"{path or 'The constraints file'} lacks its '# python:' line or its date.",
            hint="Regenerate it with `python -m tlcourse_tools colab-constraints`.",
        )
    pins = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonical(name)] = version
    return Snapshot(date=date.group(1), python=python.group(1), pins=pins, path=path)


def snapshots(folder: str | os.PathLike = CONSTRAINTS_DIR) -> list[Snapshot]:
    """The constraint files in ``tools/colab/``, oldest first."""
    files = sorted(Path(folder).glob(f"{FILE_PREFIX}*.txt"))
    return [read_snapshot(p.read_text(encoding="utf-8"), path=p) for p in files]


def snapshot(which: str, folder: str | os.PathLike = CONSTRAINTS_DIR) -> Snapshot:
    """``"newest"``, ``"oldest"`` or a date."""
    known = snapshots(folder)
    if not known:
        raise ConfigError(f"No {FILE_PREFIX}*.txt in {folder}.", hint="Run `python -m tlcourse_tools colab-constraints`.")
    if which == "newest":
        return known[-1]
    if which == "oldest":
        return known[0]
    for snap in known:
        if snap.date == which:
            return snap
    raise ConfigError(
        f"No Colab snapshot dated {which}.", hint="Known: " + ", ".join(s.date for s in known) + "."
    )
