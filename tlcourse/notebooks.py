"""Build the course's notebooks from their sources, run them headless, and report exercise progress.

The notebooks are written as jupytext "percent" Python files, which diff and review well:

- ``sources/notebooks/NN_name.py`` → ``notebooks/NN_name.ipynb`` (the lesson, no outputs);
- ``sources/solutions/NN_name.py`` → ``solutions/NN_name.ipynb`` (answers + nbgrader metadata; only
  the check cells keep their output, which nbval compares) and ``exercises/NN_name.ipynb`` (the
  answers replaced by ``# YOUR CODE HERE`` + ``raise NotImplementedError()``, no outputs).

A solution source needs no annotations beyond what the course already uses::

    # %% [markdown]
    # ## 00.3 Freeze a model

    # %%
    def freeze(model):
        # BEGIN SOLUTION
        model.trainable = False
        return model
        # END SOLUTION

    # %%
    # NBVAL_CHECK_OUTPUT
    tlcourse.check("00.3")

A code cell containing ``# BEGIN SOLUTION`` is an answer cell, a code cell starting with
``# NBVAL_CHECK_OUTPUT`` is a check cell; :func:`build` gives both nbgrader metadata whose
``grade_id`` comes from the check id (``answer-00-3``, ``check-00-3``; 1 point per check cell). A
cell header can override it: ``# %% nbgrader={"points": 2}``.
"""

from __future__ import annotations

import ast
import copy
import keyword
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.errors import ConfigError, TlcourseError

__all__ = [
    "BRANCH",
    "COLAB_BADGE",
    "REPO_URL",
    "CourseRun",
    "LessonRun",
    "NotebookProgress",
    "Progress",
    "build",
    "check_ids",
    "colab_badge",
    "colab_url",
    "exercise_notebook",
    "inject_parameters",
    "lesson_notebook",
    "parameter_names",
    "parse_parameters",
    "progress",
    "refresh_check_outputs",
    "run_course",
    "repo_root",
    "run_notebook",
    "solution_notebook",
    "strip_solutions",
]

REPO_URL = "https://github.com/tlcourse/tlcourse"
BRANCH = "main"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"

BEGIN_SOLUTION = "BEGIN SOLUTION"
END_SOLUTION = "END SOLUTION"
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
CHECK_CALL = re.compile(r"""check\(\s*["'](\d{2}\.\d+[a-z]?)["']""")
SOURCE_GLOB = "[0-9][0-9]_*.py"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CELL_METADATA_KEPT = (
    "tags",
    "nbgrader",
    "jupyter",
    "editable",
    "deletable",
    "slideshow",
    "collapsed",
    "scrolled",
)
TEST_ENV = {"TLCOURSE_OFFLINE": "1", "TLCOURSE_PROFILE": "ci"}


# =========================================================================== links
def colab_url(path: str | os.PathLike) -> str:
    """The "Open in Colab" address of a notebook of the repository.

    Examples
    --------
    >>> colab_url("notebooks/00_welcome.ipynb")
    'https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/00_welcome.ipynb'
    """
    repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/{Path(path).as_posix()}"


def colab_badge(path: str | os.PathLike) -> str:
    """Markdown for the Open-in-Colab badge of a notebook (for the first cell of a source).

    Examples
    --------
    >>> colab_badge("exercises/00_welcome.ipynb")[:40]
    '[![Open In Colab](https://colab.research'
    """
    return f"[![Open In Colab]({COLAB_BADGE})]({colab_url(path)})"


def repo_root() -> Path:
    """The course's checkout: the folder holding ``sources/`` next to the ``tlcourse`` package."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "sources").is_dir():
        raise ConfigError(
            f"{root} has no sources/ folder, so the notebooks cannot be built from here.",
            hint="Run this from a clone of the course repository (git clone " + REPO_URL + ").",
        )
    return root


# =========================================================================== conversion
def _new_notebook(cells: list):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata = nbformat.NotebookNode({"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})
    nb.cells = cells
    return nb


def _read_source(text: str) -> list:
    import jupytext
    import nbformat

    parsed = jupytext.reads(text, fmt="py:percent")
    cells = []
    for index, cell in enumerate(parsed.cells):
        metadata = {
            key: copy.deepcopy(cell.metadata[key]) for key in CELL_METADATA_KEPT if key in cell.metadata
        }
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(cell.source, metadata=metadata)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source, metadata=metadata)
        else:
            new = nbformat.v4.new_raw_cell(cell.source, metadata=metadata)
        new.id = f"cell-{index:02d}"  # stable ids: the same source gives the same bytes
        cells.append(new)
    return cells


def lesson_notebook(text: str):
    """A lesson notebook (no outputs) from the text of its percent-format source.

    Examples
    --------
    >>> nb = lesson_notebook("# %% [markdown]\\n# # Title\\n\\n# %%\\nx = 1\\n")
    >>> [(cell.cell_type, cell.source) for cell in nb.cells]
    [('markdown', '# Title'), ('code', 'x = 1')]
    """
    return _new_notebook(_read_source(text))


def check_ids(source: str) -> list[str]:
    """The check ids a cell's source calls ``check(...)`` with.

    Examples
    --------
    >>> check_ids('# NBVAL_CHECK_OUTPUT\\ntlcourse.check("03.2", model=model)')
    ['03.2']
    """
    return CHECK_CALL.findall(source)


def _is_check_cell(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARKER)


def _is_answer_cell(cell) -> bool:
    return cell.cell_type in ("code", "markdown") and BEGIN_SOLUTION in cell.source


def _nbgrader(*, solution: bool, grade: bool, grade_id: str, locked: bool, points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if grade:
        meta["points"] = points
    return meta


def _add_grading_metadata(cells: list, *, name: str) -> None:
    pending: list = []
    for cell in cells:
        if _is_answer_cell(cell):
            pending.append(cell)
        elif _is_check_cell(cell):
            ids = check_ids(cell.source)
            if not ids:
                raise ConfigError(
                    f"{name}: a check cell ({CHECK_MARKER}) calls no tlcourse.check(...).",
                    hint='Check cells look like `# NBVAL_CHECK_OUTPUT` then `tlcourse.check("00.1")`.',
                )
            slug = ids[0].replace(".", "-")
            overrides = cell.metadata.get("nbgrader", {})
            cell.metadata["nbgrader"] = {
                **_nbgrader(
                    solution=False, grade=True, grade_id=f"check-{slug}", locked=True, points=len(ids)
                ),
                **overrides,
            }
            for number, answer in enumerate(pending, start=1):
                suffix = f"-{number}" if len(pending) > 1 else ""
                answer.metadata["nbgrader"] = {
                    **_nbgrader(solution=True, grade=False, grade_id=f"answer-{slug}{suffix}", locked=False),
                    **answer.metadata.get("nbgrader", {}),
                }
            pending = []
    if pending:
        raise ConfigError(
            f"{name}: an answer cell (# {BEGIN_SOLUTION}) has no check cell after it.",
            hint="Follow every answer cell with a `# NBVAL_CHECK_OUTPUT` cell calling tlcourse.check(...).",
        )
    for cell in cells:
        if "nbgrader" in cell.metadata:
            cell.id = cell.metadata["nbgrader"]["grade_id"]


def _ordinals(nb) -> dict[str, int]:
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    return {cell.id: number for number, cell in enumerate(code, start=1)}


def _check_outputs(cell) -> list:
    """Only the stdout of a check cell, as one stream output (what nbval compares)."""
    import nbformat

    text = "".join(
        "".join(out.get("text", ""))
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stdout"
    )
    return [nbformat.v4.new_output("stream", name="stdout", text=text)] if text else []


_COLAB_FOLDER = re.compile(r"(https://colab\.research\.google\.com/github/[^)\s]+?/blob/[^/]+/)(\w+)/")


def _point_badge_at(nb, folder: str) -> None:
    """Make the first cell's Open-in-Colab link open this very notebook (in ``folder``).

    A solution's source links to its exercise, what students open; the generated solution and
    exercise each link to themselves, so a badge never opens a different notebook than its own.
    """
    if nb.cells and nb.cells[0].cell_type == "markdown":
        nb.cells[0].source = _COLAB_FOLDER.sub(rf"\g<1>{folder}/", nb.cells[0].source)


def solution_notebook(text: str, *, previous=None, name: str = "solution"):
    """A solutions notebook from its source: nbgrader metadata on answer and check cells, no outputs
    except the check cells' outputs kept from ``previous`` (the notebook on disk) where the cell's
    source is unchanged."""
    cells = _read_source(text)
    _add_grading_metadata(cells, name=name)
    nb = _new_notebook(cells)
    _point_badge_at(nb, "solutions")
    kept = {}
    if previous is not None:
        kept = {cell.source: cell for cell in previous.cells if _is_check_cell(cell) and cell.get("outputs")}
    ordinals = _ordinals(nb)
    for cell in nb.cells:
        if _is_check_cell(cell) and cell.source in kept:
            cell.outputs = _check_outputs(kept[cell.source])
            cell.execution_count = ordinals[cell.id] if cell.outputs else None
    return nb


def strip_solutions(source: str, *, markdown: bool = False) -> str:
    """Replace each ``BEGIN SOLUTION`` … ``END SOLUTION`` block by nbgrader's stub, keeping the indent.

    Examples
    --------
    >>> print(strip_solutions("def f(x):\\n    # BEGIN SOLUTION\\n    return 2 * x\\n    # END SOLUTION"))
    def f(x):
        # YOUR CODE HERE
        raise NotImplementedError()
    """
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN_SOLUTION in line:
            if inside:
                raise ConfigError(
                    "Nested BEGIN SOLUTION markers.", hint="Close each block with END SOLUTION."
                )
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            lines.extend(
                ["YOUR ANSWER HERE"]
                if markdown
                else [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
            )
        elif END_SOLUTION in line:
            if not inside:
                raise ConfigError(
                    "END SOLUTION without BEGIN SOLUTION.", hint="Open the block with BEGIN SOLUTION."
                )
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise ConfigError("BEGIN SOLUTION without END SOLUTION.", hint="Close the block with # END SOLUTION.")
    return "\n".join(lines)


def exercise_notebook(solution):
    """The exercise notebook made from a solutions notebook: stubs instead of answers, no outputs,
    check cells read-only."""
    nb = copy.deepcopy(solution)
    _point_badge_at(nb, "exercises")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if _is_answer_cell(cell):
            cell.source = strip_solutions(cell.source, markdown=cell.cell_type == "markdown")
        if cell.metadata.get("nbgrader", {}).get("locked"):
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
    return nb


def _dumps(nb) -> str:
    import nbformat

    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def _read(path: Path):
    import nbformat

    return nbformat.read(str(path), as_version=4) if path.exists() else None


# =========================================================================== running
def _kernel_manager(*, asynchronous: bool = False):
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager, KernelManager

    class CurrentEnvironment(KernelSpecManager):
        # The kernel runs in this interpreter's environment, whatever kernels are installed.
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="tlcourse",
                language="python",
            )

    # An asynchronous manager lets a Ctrl-C handler run while a cell runs (the blocking one waits for it).
    manager = AsyncKernelManager if asynchronous else KernelManager
    return manager(kernel_name="python3", kernel_spec_manager=CurrentEnvironment())


def _kernel_env(overrides: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides or {})
    # The kernel imports the same tlcourse as this process, installed or not.
    package_parent = str(Path(__file__).resolve().parents[1])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if package_parent not in paths:
        env["PYTHONPATH"] = os.pathsep.join([package_parent, *paths])
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def run_notebook(
    notebook,
    *,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    allow_errors: bool = True,
    timeout: int = 1200,
):
    """Execute a notebook (a path or a NotebookNode) in a fresh kernel of this Python environment.

    Parameters
    ----------
    notebook : path or NotebookNode
    cwd : path, optional
        The kernel's working directory (default: the notebook's folder, or the current one).
    env : mapping, optional
        Environment variables added to this process's (e.g. ``{"TLCOURSE_OFFLINE": "1"}``).
    allow_errors : bool
        Keep going after a cell raises (the error is stored as the cell's output).
    timeout : int
        Seconds allowed per cell.

    Returns
    -------
    NotebookNode
        The executed copy (the file is not changed).
    """
    import nbformat
    from nbclient import NotebookClient

    if isinstance(notebook, (str, os.PathLike)):
        path = Path(notebook)
        if not path.exists():
            raise ConfigError(
                f"No notebook at {path}.", hint="Check the path (exercises live in exercises/)."
            )
        nb = nbformat.read(str(path), as_version=4)
        cwd = cwd or path.resolve().parent
    else:
        nb = copy.deepcopy(notebook)
    client = NotebookClient(
        nb,
        km=_kernel_manager(),
        timeout=timeout,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd or Path.cwd())}},
    )
    client.execute(env=_kernel_env(env), cleanup_kc=True)  # shut the kernel down afterwards
    return nb


def _with_check_outputs(solution, executed, *, name: str):
    """Copy the executed check cells' stdout into ``solution``; fail if the solution does not pass."""
    ordinals = _ordinals(solution)
    results = {cell.id: cell for cell in executed.cells}
    problems = []
    for cell in executed.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {cell.id} raised {out.get('ename')}: {out.get('evalue')}")
    nb = copy.deepcopy(solution)
    for cell in nb.cells:
        if not _is_check_cell(cell):
            continue
        cell.outputs = _check_outputs(results[cell.id])
        cell.execution_count = ordinals[cell.id]
        printed = "".join(out.text for out in cell.outputs)
        for check_id in check_ids(cell.source):
            if f"✅ {check_id} " not in printed:
                problems.append(f"check {check_id} did not pass: {printed.strip() or 'no output'}")
    if problems:
        raise TlcourseError(
            f"{name} does not run cleanly: " + "; ".join(problems),
            hint="A solutions notebook must run without errors and pass every check; fix its source.",
        )
    return nb


def refresh_check_outputs(
    path: str | os.PathLike, *, env: Mapping[str, str] | None = None, timeout: int = 1200
):
    """Run a solutions notebook (TLCOURSE_OFFLINE=1, TLCOURSE_PROFILE=ci) and store its check cells'
    outputs, nothing else. ``path`` is ``solutions/NN_name.ipynb`` or its source. Returns the notebook."""
    path = Path(path)
    root = path.resolve().parents[1] if path.suffix == ".ipynb" else path.resolve().parents[2]
    source = root / "sources" / "solutions" / (path.stem + ".py")
    target = root / "solutions" / (path.stem + ".ipynb")
    if not source.exists():
        raise ConfigError(
            f"No source {source} for {target}.", hint="Solutions are built from sources/solutions/."
        )
    solution = solution_notebook(source.read_text(encoding="utf-8"), name=target.name)
    executed = run_notebook(solution, cwd=target.parent, env={**TEST_ENV, **(env or {})}, timeout=timeout)
    nb = _with_check_outputs(solution, executed, name=target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_dumps(nb), encoding="utf-8")
    return nb


def build(
    *,
    root: str | os.PathLike | None = None,
    lessons: Iterable[str] | None = None,
    execute: bool = False,
    check: bool = False,
) -> list[Path]:
    """Generate ``notebooks/``, ``solutions/`` and ``exercises/`` from ``sources/``.

    Parameters
    ----------
    root : path, optional
        The course checkout (default: the one this package lives in).
    lessons : iterable of str, optional
        Only these lesson numbers ("00", "03"); default all.
    execute : bool
        Also run each solutions notebook (offline, ``ci`` profile) to refresh its check outputs;
        otherwise they are kept from the notebook on disk where the check cell is unchanged.
    check : bool
        Write nothing; only report which files differ from what the build produces.

    Returns
    -------
    list of Path
        The files written (or, with ``check=True``, those that would change).
    """
    root = Path(root) if root is not None else repo_root()
    wanted = set(lessons) if lessons is not None else None
    changed: list[Path] = []

    def emit(path: Path, nb) -> None:
        text = _dumps(nb)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return
        changed.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

    def sources(kind: str) -> list[Path]:
        found = sorted((root / "sources" / kind).glob(SOURCE_GLOB))
        return [p for p in found if wanted is None or p.name[:2] in wanted]

    for source in sources("notebooks"):
        emit(root / "notebooks" / f"{source.stem}.ipynb", lesson_notebook(source.read_text(encoding="utf-8")))
    for source in sources("solutions"):
        target = root / "solutions" / f"{source.stem}.ipynb"
        solution = solution_notebook(
            source.read_text(encoding="utf-8"), previous=_read(target), name=target.name
        )
        if execute and not check:
            executed = run_notebook(solution, cwd=target.parent, env=TEST_ENV)
            solution = _with_check_outputs(solution, executed, name=target.name)
        emit(target, solution)
        emit(root / "exercises" / f"{source.stem}.ipynb", exercise_notebook(solution))
    return changed


# =========================================================================== progress
@dataclass
class NotebookProgress:
    """The checks of one executed exercise notebook."""

    path: Path
    results: list = field(default_factory=list)  # CheckResult, one per check id, in notebook order

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def passed(self) -> int:
        return sum(r.status == "passed" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    @property
    def not_attempted(self) -> int:
        return sum(r.status == "not_attempted" for r in self.results)


@dataclass
class Progress:
    """Checks passed per notebook; ``str(progress)`` is the table ``tlcourse progress`` prints."""

    notebooks: list[NotebookProgress]

    @property
    def passed(self) -> int:
        return sum(n.passed for n in self.notebooks)

    @property
    def total(self) -> int:
        return sum(n.total for n in self.notebooks)

    def table(self, *, details: bool = False) -> str:
        rows = [
            (n.path.name, f"{n.passed}/{n.total}", str(n.failed), str(n.not_attempted))
            for n in self.notebooks
        ]
        rows.append(
            (
                "total",
                f"{self.passed}/{self.total}",
                str(sum(n.failed for n in self.notebooks)),
                str(sum(n.not_attempted for n in self.notebooks)),
            )
        )
        header = ("notebook", "passed", "failed", "to do")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

        def line(row) -> str:
            return "  ".join(
                [
                    row[0].ljust(widths[0]),
                    *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)),
                ]
            )

        out = [line(header), "  ".join("-" * w for w in widths)]
        for notebook, row in zip(self.notebooks, rows, strict=False):
            out.append(line(row))
            if details:
                out.extend(f"    {result.line}" for result in notebook.results if not result.passed)
        out.extend(["  ".join("-" * w for w in widths), line(rows[-1])])
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _results_of(executed) -> list:
    from tlcourse.checks import CheckResult, parse_line

    printed = {}
    expected: list[str] = []
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        if _is_check_cell(cell):
            expected.extend(i for i in check_ids(cell.source) if i not in expected)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                for text_line in "".join(out.get("text", "")).splitlines():
                    result = parse_line(text_line)
                    if result is not None:
                        printed[result.check_id] = result
    return [printed.get(i) or CheckResult(i, "failed", "the check cell did not run") for i in expected]


def _notebook_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("*.ipynb") if not p.name.startswith(".")))
        elif path.suffix == ".ipynb" and path.exists():
            found.append(path)
        else:
            raise ConfigError(
                f"{path} is not a notebook or a folder of notebooks.",
                hint="Pass exercise notebooks, e.g. `tlcourse progress exercises/`.",
            )
    return found


def progress(
    paths: Iterable[str | os.PathLike], *, env: Mapping[str, str] | None = None, timeout: int = 1200
) -> Progress:
    """Run exercise notebooks headless (errors allowed) and count the checks each one passes.

    Parameters
    ----------
    paths : iterable of path
        Notebooks, or folders of notebooks.
    env : mapping, optional
        Extra environment variables for the kernels (e.g. ``{"TLCOURSE_PROFILE": "ci"}``).
    timeout : int
        Seconds allowed per cell.

    Returns
    -------
    Progress
        ``print(progress([...]))`` shows the table; ``.passed`` / ``.total`` sum it up.
    """
    from tlcourse.checks import CheckResult

    notebooks = []
    for path in _notebook_paths(paths):
        try:
            executed = run_notebook(path, env=env, timeout=timeout, allow_errors=True)
        except Exception as exc:  # a dead kernel or a timeout: every check of the notebook counts as failed
            unexecuted = _read(path)
            reason = " ".join(f"the notebook stopped ({type(exc).__name__}: {exc})".split())[:200]
            results = [CheckResult(r.check_id, "failed", reason) for r in _results_of(unexecuted)]
            notebooks.append(NotebookProgress(path, results))
            continue
        notebooks.append(NotebookProgress(path, _results_of(executed)))
    return Progress(notebooks)


# =========================================================================== the whole course
def _lesson_paths(names: Iterable[str], root: Path) -> list[Path]:
    lessons = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return lessons
    chosen = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.exists():
            chosen.append(path)
            continue
        matches = [p for p in lessons if p.stem == name or p.name[:2] == name.zfill(2)]
        if not matches:
            from tlcourse.errors import unknown_name

            raise unknown_name("lesson", name, [p.stem for p in lessons])
        chosen.extend(matches)
    return chosen


PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def parse_parameters(items: Iterable[str]) -> dict[str, object]:
    """Read ``NAME=VALUE`` pairs (``tlcourse run -p``) as parameters for :func:`run_course`.

    A value is read as a Python literal (``2``, ``3e-4``, ``(1, 3)``, ``None``, ``'"ci"'``), as
    in papermill ``true``/``false``/``none`` are True/False/None too, and anything else is kept as
    text, so ``PROFILE=ci`` and ``PROFILE='"ci"'`` mean the same.

    Examples
    --------
    >>> parse_parameters(["EPOCHS=2", "PROFILE=ci", "LABELS_PER_CLASS=(1, 3)", "LR=3e-4", "FINE_TUNE=false"])
    {'EPOCHS': 2, 'PROFILE': 'ci', 'LABELS_PER_CLASS': (1, 3), 'LR': 0.0003, 'FINE_TUNE': False}
    """
    parameters: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or keyword.iskeyword(name) or not value.strip():
            raise ConfigError(
                f"-p {item}: a parameter is NAME=VALUE, e.g. -p EPOCHS=2 or -p PROFILE='\"ci\"'.",
                hint="NAME is a variable of the lesson's `parameters` cell, VALUE a Python literal or text.",
            )
        try:
            parameters[name] = ast.literal_eval(value.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            words = {"true": True, "false": False, "none": None, "null": None}
            parameters[name] = words.get(value.strip().lower(), value)
    return parameters


def _parameters_index(nb) -> int | None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.metadata.get("tags", []):
            return index
    return None


def _assigned_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name) and n.id not in names)
    return names


def parameter_names(nb) -> list[str] | None:
    """The names the notebook's cell tagged ``parameters`` assigns (None when it has no such cell)."""
    index = _parameters_index(nb)
    return None if index is None else _assigned_names(nb.cells[index].source)


def _check_parameters(notebooks: Mapping[str, object], parameters: Mapping[str, object]) -> None:
    """Raise ConfigError, naming the ``-p``, when a notebook's ``parameters`` cell lacks a name."""
    defined = {name: parameter_names(nb) for name, nb in notebooks.items()}
    for key, value in parameters.items():
        flag = f"-p {key}={value!r}"
        for name, names in defined.items():
            if names is None:
                raise ConfigError(
                    f"{flag}: {name} has no cell tagged `parameters`, so it takes no parameters.",
                    hint="Run it without -p, or tag the cell that holds its settings `parameters`.",
                )
            if key not in names:
                having = [other for other, them in defined.items() if them and key in them]
                hint = f"Use one of {', '.join(names) or 'none'}"
                if having:
                    hint += f", or run only the lessons that define {key}: {' '.join(having)}"
                raise ConfigError(
                    f"{flag}: the `parameters` cell of {name} does not define {key}; "
                    f"it defines {', '.join(names) or 'nothing'}.",
                    hint=hint + ".",
                )


def inject_parameters(nb, parameters: Mapping[str, object], *, name: str = "the notebook"):
    """A copy of ``nb`` with a cell tagged ``injected-parameters`` right after its ``parameters`` cell.

    This is what papermill does, so an executed notebook shows the values it ran with. A cell
    injected by an earlier run is replaced. Every name must be assigned in the ``parameters`` cell.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("EPOCHS = 5")])
    >>> nb.cells[0].metadata["tags"] = ["parameters"]
    >>> print(inject_parameters(nb, {"EPOCHS": 2}).cells[1].source)
    # Parameters
    EPOCHS = 2
    """
    import nbformat

    _check_parameters({name: nb}, parameters)
    nb = copy.deepcopy(nb)
    nb.cells = [cell for cell in nb.cells if INJECTED_TAG not in cell.metadata.get("tags", [])]
    if parameters:
        lines = "".join(f"{key} = {value!r}\n" for key, value in parameters.items())
        cell = nbformat.v4.new_code_cell("# Parameters\n" + lines.rstrip("\n"))
        cell.metadata["tags"] = [INJECTED_TAG]
        cell.id = INJECTED_TAG
        nb.cells.insert(_parameters_index(nb) + 1, cell)
    return nb


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool = False) -> str:
    space = " " * max(0, width - _width(text))
    return space + text if right else text + space


@dataclass
class LessonRun:
    """How one notebook of :func:`run_course` went."""

    name: str  # the notebook's stem, e.g. "03_feature_extraction"
    status: str  # "passed" or "failed"
    seconds: float  # running time of the notebook's cells
    error: str = ""  # the first error, e.g. "In [7]: ValueError: images must be 3-D"
    title: str = ""  # the lesson's heading
    notebook: Path | None = None  # the executed copy
    html: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "passed"


@dataclass
class CourseRun:
    """What :func:`run_course` ran; ``print(run)`` shows the table, ``run.ok`` says whether all passed."""

    rows: list[LessonRun]
    output: Path
    interrupted: bool = False  # stopped by Ctrl-C
    not_run: list[str] = field(default_factory=list)  # lessons left when it was stopped

    @property
    def ok(self) -> bool:
        return not self.interrupted and not self.not_run and all(row.ok for row in self.rows)

    @property
    def passed(self) -> int:
        return sum(row.ok for row in self.rows)

    @property
    def seconds(self) -> float:
        return sum(row.seconds for row in self.rows)

    def table(self) -> str:
        header = ("lesson", "status", "seconds", "first error")
        rows = [
            (row.name, "✅" if row.ok else "❌", f"{row.seconds:.1f}", _clip(row.error, 100))
            for row in self.rows
        ]
        total = ("total", f"{self.passed}/{len(self.rows)}", f"{self.seconds:.1f}", "")
        widths = [max(_width(row[i]) for row in [header, *rows, total]) for i in range(3)]

        def line(row) -> str:
            cells = [_pad(row[0], widths[0]), _pad(row[1], widths[1]), _pad(row[2], widths[2], right=True)]
            return "  ".join([*cells, row[3]]).rstrip()

        rule = "  ".join("-" * w for w in [*widths, len(header[3])])
        out = [line(header), rule, *(line(row) for row in rows), rule, line(total)]
        if self.interrupted:
            left = f": {', '.join(self.not_run)} did not run" if self.not_run else ""
            out.append(f"stopped by Ctrl-C{left}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _title(nb, default: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for text_line in cell.source.splitlines():
                if text_line.startswith("# "):
                    return text_line[2:].strip()
    return default


def _first_error(nb, exc: BaseException | None, *, running: int, interrupted: bool) -> str:
    """``In [n]: Name: first line of the message`` for the first error of an executed notebook."""
    for cell in nb.cells:
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                count = cell.get("execution_count") or "?"
                return f"In [{count}]: {out.get('ename')}: {_first_line(out.get('evalue', ''))}"
    if exc is None and not interrupted:
        return ""
    where = f"In [{running}]: " if running else ""
    if interrupted:
        return where + "KeyboardInterrupt: stopped by Ctrl-C"
    return where + f"{type(exc).__name__}: {_first_line(str(exc))}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _execute(nb, *, cwd: Path, env: Mapping[str, str], timeout: int, keep_going: bool, log, on_cell):
    """Run ``nb`` in place in a fresh kernel that is shut down afterwards, even on Ctrl-C.

    Returns (the exception that stopped it or None, whether Ctrl-C stopped it).
    """
    import asyncio
    import signal
    from contextlib import asynccontextmanager

    from nbclient import NotebookClient

    class Client(NotebookClient):
        @asynccontextmanager
        async def async_setup_kernel(self, **kwargs):
            async with super().async_setup_kernel(**kwargs):
                task = asyncio.current_task()

                def stop() -> None:  # Ctrl-C: stop the notebook, kill its kernel, keep what ran
                    self.interrupted = True
                    self.shutdown_kernel = "immediate"
                    task.cancel()

                try:  # replaces nbclient's handler, which kills the kernel but lets the run go on
                    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop)
                except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
                    pass
                yield

    client = Client(
        nb,
        km=_kernel_manager(asynchronous=True),
        timeout=timeout,
        allow_errors=keep_going,
        resources={"metadata": {"path": str(cwd)}},
        on_cell_execute=on_cell,
    )
    client.interrupted = False
    try:
        client.execute(env=_kernel_env(env), cleanup_kc=True, stdout=log, stderr=log)
    except (Exception, asyncio.CancelledError) as exc:
        return exc, client.interrupted
    except KeyboardInterrupt:  # Ctrl-C outside the event loop's handler (kernel start-up)
        if client.km is not None:
            client.shutdown_kernel = "immediate"
            try:
                client._cleanup_kernel()
            except Exception:  # it is going away anyway
                pass
        raise
    return None, client.interrupted


def _html_exporter():
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        return None
    return HTMLExporter(embed_images=True)


def _write_index(run: CourseRun, *, profile: str | None, parameters: Mapping[str, object]) -> Path:
    import datetime
    import html

    rows = []
    for row in run.rows:
        target = row.html or row.notebook
        link = (
            f'<a href="{html.escape(target.name)}">{html.escape(row.title or row.name)}</a>'
            if target
            else html.escape(row.title or row.name)
        )
        notebook = f'<a href="{html.escape(row.notebook.name)}">.ipynb</a>' if row.notebook else ""
        rows.append(
            f"<tr class={row.status}><td>{link}</td><td>{'✅' if row.ok else '❌'}</td>"
            f"<td class=num>{row.seconds:.1f}</td><td><code>{html.escape(row.error)}</code></td>"
            f"<td>{notebook}</td></tr>"
        )
    for name in run.not_run:
        rows.append(
            f"<tr class=skipped><td>{html.escape(name)}</td><td>–</td><td></td><td>not run</td><td></td></tr>"
        )
    settings = [f"profile {profile or os.environ.get('TLCOURSE_PROFILE') or 'chosen by the machine'}"]
    settings += [f"{key} = {value!r}" for key, value in parameters.items()]
    stopped = " Stopped by Ctrl-C." if run.interrupted else ""
    when = datetime.datetime.now().isoformat(timespec="seconds")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tlcourse: course run</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .4em .6em; text-align: left; vertical-align: top; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.failed td {{ background: #fff3f3; }}
</style>
</head>
<body>
<h1>Course run</h1>
<p>{run.passed} of {len(run.rows)} lessons passed in {run.seconds:.0f} s ({html.escape(", ".join(settings))};
{when}).{stopped}</p>
<table>
<thead><tr><th>lesson</th><th>status</th><th>seconds</th><th>first error</th><th>notebook</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</body>
</html>
"""
    path = run.output / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _run_lesson(
    path: Path, nb, *, out: Path, env, timeout: int, keep_going: bool, exporter, bar, metadata: dict
) -> tuple[LessonRun, bool]:
    """Execute one notebook and write its executed copy and HTML: (its row, whether Ctrl-C stopped it)."""
    import time

    import nbformat

    title = _title(nb, path.stem)
    total = sum(1 for cell in nb.cells if cell.cell_type == "code" and cell.source.strip())
    started_cells = [0]

    def on_cell(**_) -> None:
        started_cells[0] += 1
        bar.set_postfix_str(f"cell {started_cells[0]}/{total}")

    bar.set_description_str(path.stem, refresh=False)
    bar.set_postfix_str(f"cell 0/{total}")
    started = time.monotonic()
    exc, interrupted = None, False
    try:
        with open(out / "logs" / f"{path.stem}.log", "w", encoding="utf-8") as log:
            exc, interrupted = _execute(
                nb,
                cwd=path.resolve().parent,
                env=env,
                timeout=timeout,
                keep_going=keep_going,
                log=log,
                on_cell=on_cell,
            )
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.monotonic() - started
    error = _first_error(nb, exc, running=started_cells[0], interrupted=interrupted)
    if "DeadKernelError" in error:
        error += f" (see logs/{path.stem}.log)"
    row = LessonRun(path.stem, "failed" if error else "passed", seconds, error, title)
    nb.metadata["tlcourse"] = {**metadata, "status": row.status, "seconds": round(seconds, 1), "error": error}
    try:
        row.notebook = out / f"{path.stem}.ipynb"
        nbformat.write(nb, str(row.notebook))
        if exporter is not None:
            resources = {"metadata": {"name": title, "path": str(path.resolve().parent)}}
            html, _ = exporter.from_notebook_node(nb, resources=resources)
            row.html = out / f"{path.stem}.html"
            row.html.write_text(html, encoding="utf-8")
    except KeyboardInterrupt:
        interrupted = True
    return row, interrupted


def run_course(
    names: Iterable[str | os.PathLike] = (),
    *,
    profile: str | None = None,
    parameters: Mapping[str, object] | None = None,
    output: str | os.PathLike = "build/course",
    timeout: int = 1800,
    keep_going: bool = False,
    show_progress: bool | None = None,
) -> CourseRun:
    """Run lessons headless into ``output``: executed notebooks, HTML, an ``index.html`` and a table.

    Each notebook runs in a fresh kernel of this Python environment (its folder as working
    directory) and stops at its first error unless ``keep_going``. ``output`` receives
    ``NN_name.ipynb`` (executed), ``NN_name.html`` (when nbconvert is installed),
    ``index.html`` (status, seconds and first error of each lesson, linking its HTML) and
    ``logs/NN_name.log`` (what the kernel process printed). Ctrl-C stops the running lesson,
    shuts its kernel down and still writes what ran.

    Parameters
    ----------
    names : iterable of str or path
        Lesson numbers ("03"), stems ("03_feature_extraction") or notebook paths; default all lessons.
    profile : {"full", "cpu", "ci"}, optional
        Sets ``TLCOURSE_PROFILE`` for the kernels (default: chosen by the machine). A ``PROFILE``
        parameter, when given, wins over it.
    parameters : mapping, optional
        Values for names of each notebook's ``parameters`` cell (e.g. ``{"EPOCHS": 2}``), injected
        papermill-style in a cell tagged ``injected-parameters`` right after it. Every notebook run
        must define every name; see :func:`parse_parameters` for ``NAME=VALUE`` text.
    output : path
        Folder for the results (created).
    timeout : int
        Seconds allowed per cell.
    keep_going : bool
        Run every cell even after one raised (default: stop the lesson at its first error).
    show_progress : bool, optional
        Show a progress bar over the lessons with a cell counter (default: when stderr is a terminal).

    Returns
    -------
    CourseRun
        One :class:`LessonRun` per notebook in ``.rows``; ``.ok`` is True when every one passed.
        The table (``print(run)``) is printed at the end.

    Raises
    ------
    ConfigError
        For an unknown lesson or profile, or a parameter a notebook does not define, before anything runs.
    """
    from tqdm.auto import tqdm

    from tlcourse.env import PROFILES
    from tlcourse.errors import unknown_name

    if profile is not None and profile not in PROFILES:
        raise unknown_name("profile", profile, PROFILES)
    parameters = dict(parameters or {})
    if isinstance(names, (str, os.PathLike)):
        names = [names]
    paths = _lesson_paths([str(name) for name in names], repo_root())
    sources = {path.stem: _read(path) for path in paths}
    _check_parameters(sources, parameters)
    out = Path(output)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    env = {"TLCOURSE_PROFILE": profile} if profile else {}
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    exporter = _html_exporter()

    def say(text: str) -> None:
        tqdm.write(text, file=sys.stdout)
        sys.stdout.flush()

    if exporter is None:
        say("ℹ️  nbconvert is not installed, so no HTML is written (pip install nbconvert).")
    run = CourseRun(rows=[], output=out)
    disable = None if show_progress is None else not show_progress
    with tqdm(total=len(paths), unit="lesson", disable=disable, file=sys.stderr, dynamic_ncols=True) as bar:
        for position, path in enumerate(paths):
            nb = inject_parameters(sources[path.stem], parameters, name=path.stem)
            row, interrupted = _run_lesson(
                path,
                nb,
                out=out,
                env=env,
                timeout=timeout,
                keep_going=keep_going,
                exporter=exporter,
                bar=bar,
                metadata={"profile": profile, "parameters": {k: repr(v) for k, v in parameters.items()}},
            )
            run.rows.append(row)
            bar.update()
            say(
                f"{'✅' if row.ok else '❌'} {row.name} ({row.seconds:.1f} s)"
                + (f": {row.error}" if row.error else "")
            )
            if interrupted:
                run.interrupted = True
                run.not_run = [p.stem for p in paths[position + 1 :]]
            _write_index(run, profile=profile, parameters=parameters)
            if interrupted:
                break
    print("\n" + run.table(), flush=True)
    print(f"\nResults in {out}: open {out / 'index.html'}.", flush=True)
    return run
