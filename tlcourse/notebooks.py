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

import copy
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
    "NotebookProgress",
    "Progress",
    "build",
    "check_ids",
    "colab_badge",
    "colab_url",
    "exercise_notebook",
    "lesson_notebook",
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
def _kernel_manager():
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class CurrentEnvironment(KernelSpecManager):
        # The kernel runs in this interpreter's environment, whatever kernels are installed.
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="tlcourse",
                language="python",
            )

    return KernelManager(kernel_name="python3", kernel_spec_manager=CurrentEnvironment())


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
    client.execute(env=_kernel_env(env))
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


def run_course(
    names: Iterable[str] = (),
    *,
    profile: str | None = None,
    output: str | os.PathLike = "build/course",
    timeout: int = 1800,
) -> bool:
    """Run lessons headless and save the executed notebooks (and HTML when nbconvert is installed).

    Parameters
    ----------
    names : iterable of str
        Lesson numbers ("03"), stems ("03_feature_extraction") or notebook paths; default all lessons.
    profile : {"full", "cpu", "ci"}, optional
        Sets ``TLCOURSE_PROFILE`` for the kernels (default: chosen by the machine).
    output : path
        Folder for the executed notebooks.
    timeout : int
        Seconds allowed per cell.

    Returns
    -------
    bool
        True when every lesson ran without an error.
    """
    import time

    import nbformat

    root = repo_root()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    env = {"TLCOURSE_PROFILE": profile} if profile else {}
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        HTMLExporter = None
    all_ok = True
    for path in _lesson_paths(names, root):
        started = time.monotonic()
        executed = run_notebook(path, env=env, timeout=timeout, allow_errors=True)
        errors = [
            f"{cell.id}: {o.ename}: {o.evalue}"
            for cell in executed.cells
            for o in cell.get("outputs", [])
            if o.get("output_type") == "error"
        ]
        nbformat.write(executed, str(out / path.name))
        if HTMLExporter is not None:
            html, _ = HTMLExporter().from_notebook_node(executed)
            (out / f"{path.stem}.html").write_text(html, encoding="utf-8")
        seconds = time.monotonic() - started
        status = "✅" if not errors else "❌"
        print(f"{status} {path.name} ({seconds:.0f} s)" + (f": {errors[0]}" if errors else ""), flush=True)
        all_ok = all_ok and not errors
    if HTMLExporter is None:
        print("ℹ️  tlcourse: nbconvert is not installed, so no HTML was written (pip install nbconvert).")
    return all_ok
