"""Build the course's notebooks from their sources (``tlcourse build`` / ``make notebooks``).

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
import string
from collections.abc import Iterable
from pathlib import Path

from tlcourse.errors import ConfigError, TlcourseError

__all__ = [
    "BRANCH",
    "COLAB_BADGE",
    "COLAB_FLOORS",
    "INSTALL_PLACEHOLDER",
    "REPO_URL",
    "build",
    "check_ids",
    "colab_url",
    "exercise_notebook",
    "install_cell",
    "lesson_notebook",
    "repo_root",
    "solution_notebook",
    "strip_solutions",
]

REPO_URL = "https://github.com/tlcourse/tlcourse"
# The one ref that both the Open-in-Colab badge and the install cell use: change it here, then run
# `tlcourse build` and every notebook follows.
BRANCH = "main"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# The oldest TensorFlow and Keras the course runs on (pyproject.toml's floors; a test keeps them equal).
COLAB_FLOORS = {"tensorflow": "2.19", "keras": "3.10"}

# A source's first code cell is this one line; `build` writes INSTALL_CELL in its place.
INSTALL_PLACEHOLDER = (
    "# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)"
)
# The first code cell of every notebook. On Colab it installs tlcourse and whatever tlcourse needs that
# the runtime lacks, and nothing else: every package already installed is passed to pip as a constraint
# (its own version), so pip fails rather than upgrade or downgrade it, and no restart is needed.
# Elsewhere it does nothing. Colab shows it as a collapsed form (the @title line).
INSTALL_CELL_TEMPLATE = string.Template(
    r"""# @title Colab only: install the course (elsewhere this cell does nothing) { display-mode: "form" }
import sys

if "google.colab" in sys.modules:
    import importlib.metadata
    import os
    import re
    import socket
    import subprocess
    import tempfile

    COURSE = "tlcourse @ git+$repo@$ref"
    NEEDS = $needs

    class SetupProblem(Exception):
        def _render_traceback_(self):  # IPython prints this instead of a traceback
            return [f"❌ {self}"]

    def stop(problem, fix):
        raise SetupProblem(f"{problem}\n   Fix: {fix}")

    def freeze():  # {name: version} of every installed package, as pip sees them
        out = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
        pairs = [re.split(r"==| @ ", line, maxsplit=1) for line in out.splitlines() if line[:1] not in "#-"]
        return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}  # editable installs are left out

    def number(version):
        return tuple(int(part) for part in re.findall(r"\d+", version)[:2])

    before = freeze()
    if "tensorflow" not in before:
        stop("This runtime has no TensorFlow (Colab's TPU runtimes have none).",
             "Runtime → Change runtime type → T4 GPU, then run this cell again.")
    for name, floor in NEEDS.items():
        if number(before.get(name, "0")) < number(floor):
            stop(f"{name} {before.get(name)} is older than the course needs ({floor} or newer).",
                 "Runtime → Change runtime type → Runtime version: Latest, then run this cell again.")
    if os.environ.get("TF_USE_LEGACY_KERAS", "0").lower() in ("1", "true", "yes"):
        stop("TF_USE_LEGACY_KERAS switches on Keras 2; the course needs Keras 3.",
             "delete the line that sets it, then Runtime → Restart session and run the notebook again.")
    if "tlcourse" not in before:
        try:
            socket.create_connection(("pypi.org", 443), timeout=10).close()
        except OSError:
            stop("No internet connection; the course installs from GitHub and PyPI.",
                 "Runtime → Disconnect and delete runtime, reconnect, then run this cell again.")
        # Every installed package is pinned at its version: pip may add packages, never change one.
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
            pins.write("\n".join(f"{n}=={v}" for n, v in before.items() if "://" not in v))
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-c", pins.name, COURSE],
                             capture_output=True, text=True)
        if pip.returncode:
            said = pip.stdout + pip.stderr
            why = re.findall(r"\S.*(?:depends on|\(constraint\)|different Python|No matching).*", said)
            why = why[:3] or said.strip().splitlines()[-1:]
            stop("pip could not add the course without changing this runtime: " + "; ".join(why),
                 "Runtime → Change runtime type → Runtime version: Latest, then run this cell again.")
    after = freeze()
    changed = sorted(name for name in before if after.get(name) != before[name])
    if changed:  # the constraints prevent this; if it ever happens, say so
        print(f"⚠️ {', '.join(changed)} changed: Runtime → Restart session, then run the notebook again.")
    added = ", ".join(sorted(set(after) - set(before))) or "nothing"
    print(f"✅ tlcourse {importlib.metadata.version('tlcourse')} ready; added {added}; changed nothing else.")"""
)


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
# TensorFlow's thread pools are as wide as the machine, and their width changes training numerics in the last
# digits: a solution's check cell that stored "validation accuracy 0.77" printed 0.78 with 4 threads, and
# nbval compares check cells exactly. The stored outputs (`build --execute`), `make test` (its Makefile's
# THREADS_ENV) and the Colab twin therefore compute with 2 threads per pool on every machine.
PINNED_THREADS = {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2", "OMP_NUM_THREADS": "2"}
TEST_ENV = {**PINNED_THREADS, "TLCOURSE_OFFLINE": "1", "TLCOURSE_PROFILE": "ci"}


def install_cell(*, ref: str = BRANCH, repo: str = REPO_URL) -> str:
    """The Colab install cell that ``build`` writes into every notebook (see ``INSTALL_CELL_TEMPLATE``).

    Examples
    --------
    >>> cell = install_cell()
    >>> 'COURSE = "tlcourse @ git+https://github.com/tlcourse/tlcourse@main"' in cell
    True
    >>> cell.splitlines()[3]
    'if "google.colab" in sys.modules:'
    >>> fork = install_cell(ref="v1", repo="https://github.com/me/fork")
    >>> 'COURSE = "tlcourse @ git+https://github.com/me/fork@v1"' in fork
    True
    """
    return INSTALL_CELL_TEMPLATE.substitute(repo=repo, ref=ref, needs=repr(dict(COLAB_FLOORS)))


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


def repo_root() -> Path:
    """The course's checkout: the folder holding ``sources/``, ``tlcourse/`` and ``tools/``."""
    root = Path(__file__).resolve().parents[2]
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
        if new.cell_type == "code" and new.source.strip() == INSTALL_PLACEHOLDER:
            new.source = install_cell()
            new.metadata["cellView"] = "form"  # Colab shows the cell collapsed, as a titled form
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
    nb = _new_notebook(_read_source(text))
    _point_badge_at(nb, "notebooks")
    return nb


def check_ids(source: str) -> list[str]:
    """The check ids a cell's source calls ``check(...)`` with.

    Examples
    --------
    >>> check_ids('# NBVAL_CHECK_OUTPUT\\ntlcourse.check("03.2", model=model)')
    ['03.2']
    """
    return CHECK_CALL.findall(source)


def is_check_cell(cell) -> bool:
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
        elif is_check_cell(cell):
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


_COLAB_LINK = re.compile(r"(https://colab\.research\.google\.com/github/[^)\s]+?/blob/)[^/]+/\w+/")


def _point_badge_at(nb, folder: str) -> None:
    """Make the first cell's Open-in-Colab link open this very notebook (in ``folder``) at ``BRANCH``,
    the ref the install cell installs.

    A solution's source links to its exercise, what students open; the generated solution and
    exercise each link to themselves, so a badge never opens a different notebook than its own.
    """
    if nb.cells and nb.cells[0].cell_type == "markdown":
        nb.cells[0].source = _COLAB_LINK.sub(rf"\g<1>{BRANCH}/{folder}/", nb.cells[0].source)


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
        kept = {cell.source: cell for cell in previous.cells if is_check_cell(cell) and cell.get("outputs")}
    ordinals = _ordinals(nb)
    for cell in nb.cells:
        if is_check_cell(cell) and cell.source in kept:
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


def dumps(nb) -> str:
    import nbformat

    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def read_notebook(path: Path):
    import nbformat

    return nbformat.read(str(path), as_version=4) if path.exists() else None


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
        if not is_check_cell(cell):
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
        text = dumps(nb)
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
            source.read_text(encoding="utf-8"), previous=read_notebook(target), name=target.name
        )
        if execute and not check:
            from tlcourse_tools.running import run_notebook  # running imports this module

            executed = run_notebook(solution, cwd=target.parent, env=TEST_ENV)
            solution = _with_check_outputs(solution, executed, name=target.name)
        emit(target, solution)
        emit(root / "exercises" / f"{source.stem}.ipynb", exercise_notebook(solution))
    return changed
