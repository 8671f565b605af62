"""An nbgrader course directory built from the repository: ``source/NN/`` holds the solutions.

nbgrader's layout (https://nbgrader.readthedocs.io/en/stable/user_guide/philosophy.html)::

    course/
      nbgrader_config.py
      gradebook.db                         (made by generate_assignment)
      source/04/04_fine_tuning.ipynb       (the solution: answers between the markers)
      release/04/04_fine_tuning.ipynb      (what students get: the same as exercises/)
      submitted/<student>/04/04_fine_tuning.ipynb
      autograded/<student>/04/...
      feedback/<student>/04/04_fine_tuning.html

Assignment ids are the lesson numbers (``00`` … ``10``), one notebook each.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

from tlcourse.errors import ConfigError, TlcourseError
from tlcourse_tools import authoring

__all__ = ["ASSIGNMENT_TIMEOUT", "bundle", "generate", "nbgrader", "notebook_for", "write_course"]

COURSE_ID = "tlcourse"
ASSIGNMENT_TIMEOUT = 900  # seconds per cell: nbgrader's default (30 s) is shorter than TensorFlow's import

CONFIG = f'''\
# nbgrader's configuration for the tlcourse exercises (written by tlcourse_tools.grading).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "{COURSE_ID}"
# Exercises train models: nbgrader's default of 30 s per cell is too short.
c.Execute.timeout = {ASSIGNMENT_TIMEOUT}
# A student who deletes a check cell is graded by it anyway: nbgrader puts it back.
c.OverwriteCells.add_missing_cells = True
'''


def tool_path() -> str:
    """PATH with this Python's scripts first: nbgrader runs ``alembic`` to create its gradebook."""
    scripts = os.path.dirname(sys.executable)
    return os.pathsep.join([scripts, os.environ.get("PATH", "")])


def notebook_for(assignment: str, *, root: Path | None = None) -> Path:
    """The solutions notebook of an assignment id (a lesson number, ``"04"``)."""
    root = Path(root) if root is not None else authoring.repo_root()
    number = str(assignment).strip().zfill(2)
    found = sorted((root / "solutions").glob(f"{number}_*.ipynb"))
    if len(number) != 2 or not number.isdigit() or not found:
        known = ", ".join(p.name[:2] for p in sorted((root / "solutions").glob("[0-9][0-9]_*.ipynb")))
        raise ConfigError(
            f"No assignment {assignment!r}: assignment ids are the lesson numbers.",
            hint=f"Use one of {known}.",
        )
    return found[0]


def write_course(course: str | os.PathLike, assignments: Iterable[str], *, root: Path | None = None) -> Path:
    """Write ``nbgrader_config.py`` and ``source/NN/<lesson>.ipynb`` for each assignment.

    The source is the solutions notebook with its Colab badge pointing at ``exercises/`` (what
    students open), so that nbgrader's release equals the repository's exercise notebook.
    """
    import nbformat

    course = Path(course)
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    for assignment in assignments:
        solution = notebook_for(assignment, root=root)
        nb = nbformat.read(str(solution), as_version=4)
        authoring._point_badge_at(nb, "exercises")  # the same rewrite the build applies to exercises/
        target = course / "source" / solution.name[:2] / solution.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(target))
    return course


def nbgrader(course: str | os.PathLike, *args: str, env: dict | None = None, timeout: float | None = None):
    """Run the ``nbgrader`` command in ``course`` (``alembic`` on PATH); raise with its log if it fails."""
    command = [os.path.join(os.path.dirname(sys.executable), "nbgrader"), *args]
    full_env = {**os.environ, **(env or {}), "PATH": tool_path()}
    done = subprocess.run(
        command, cwd=course, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise TlcourseError(
            f"`nbgrader {' '.join(args)}` failed (exit {done.returncode}): {done.stderr[-2000:]}",
            hint="Read nbgrader's log above; `nbgrader --help-all` lists its options.",
        )
    return done


def generate(course: str | os.PathLike, assignment: str) -> Path:
    """``nbgrader generate_assignment`` with nbgrader's own converter, in this process; the release."""
    import logging
    import warnings

    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log
    from traitlets.config import Config

    course = Path(course).resolve()
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.course_id = COURSE_ID
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    converter = GenerateAssignment(coursedir=coursedir, config=config)
    converter.force = True
    converter.create_assignment = True
    converter.log.setLevel(logging.WARNING)
    previous = os.environ.get("PATH", "")
    os.environ["PATH"] = tool_path()  # nbgrader runs `alembic` to create the gradebook
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = capture_log(converter)
    finally:
        os.environ["PATH"] = previous
    if not result["success"]:
        raise TlcourseError(
            f"nbgrader generate_assignment {assignment} failed: {result.get('error', '')[-1500:]}",
            hint="The solutions notebook must carry nbgrader metadata: rebuild it with `tlcourse build`.",
        )
    (release,) = (course / "release" / assignment).glob("*.ipynb")
    return release


def bundle(course: str | os.PathLike, assignment: str) -> bytes:
    """The part of the course a worker needs to autograde one assignment, as a .tar.gz in memory."""
    course = Path(course)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("nbgrader_config.py", "gradebook.db", f"source/{assignment}", f"release/{assignment}"):
            if (course / name).exists():
                tar.add(course / name, arcname=name)
    return buffer.getvalue()


def unpack(data: bytes, target: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(target, filter="data")
