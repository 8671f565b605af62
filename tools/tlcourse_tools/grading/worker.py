"""Grade one submission with nbgrader's autograde, its kernel in a sandbox (what a Dask task runs).

:func:`grade_submission` takes everything it needs as arguments (the notebook's bytes and the
course bundle), so it runs the same on a local worker and on a cluster's, and returns a plain
dict: one row per check, the score nbgrader gave, what happened, and how long it took.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tlcourse_tools.grading.kernel import Limits

__all__ = ["Job", "Settings", "grade_submission"]

PASSED, FAILED, NOT_ATTEMPTED, ERROR = "passed", "failed", "not attempted", "error"
_STATUS = {"passed": PASSED, "failed": FAILED, "not_attempted": NOT_ATTEMPTED}


@dataclass(frozen=True)
class Job:
    """One student's notebook for one assignment."""

    student: str
    assignment: str
    notebook: str  # the release's file name, e.g. "04_fine_tuning.ipynb"
    digest: str  # sha256 of content
    content: bytes = field(repr=False)
    origin: str = ""  # where it was found, for the report


@dataclass(frozen=True)
class Settings:
    profile: str = "ci"
    limits: Limits = field(default_factory=Limits)
    threads: int | None = None  # TensorFlow threads per kernel (None: TensorFlow decides)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _identity(job: Job) -> dict:
    """What every result row says about its submission."""
    return {"student": job.student, "assignment": job.assignment, "notebook": job.notebook,
            "digest": job.digest, "origin": job.origin}  # fmt: skip


def error_outcome(job: Job, reason: str, **extra) -> dict:
    """The result of a submission that could not be graded at all: one ``error`` row."""
    return {
        **_identity(job),
        "status": "error",
        "error": _one_line(reason, 500),
        "rows": [
            {"check": "", "grade_id": "", "status": ERROR, "points": 0.0, "max_points": 0.0, "hint": reason}
        ],
        "score": 0.0,
        "max_score": extra.pop("max_score", 0.0),
        "notes": [],
        **extra,
    }


# =========================================================================== reading nbgrader's result
_NOTE_PATTERNS = [
    (
        re.compile(r"Attribute 'points' for cell (\S+) has changed! \(should be: ([\d.]+), got: ([\d.]+)\)"),
        "{0}: points changed to {2} in the submission; the release's {1} used",
    ),
    (
        re.compile(r"Attribute 'checksum' for cell (\S+) has changed!"),
        "{0}: the locked cell was edited; the release's version was run",
    ),
    (
        re.compile(r"Attribute 'locked' for cell (\S+) has changed!"),
        "{0}: the cell was unlocked in the submission; locked again",
    ),
    (
        re.compile(r"Attribute 'cell_type' for cell (\S+) has changed!"),
        "{0}: the cell type was changed; the release's used",
    ),
    (re.compile(r"Missing grade cell (\S+) encountered"), "{0} was deleted; put back from the release"),
]


def _notes_from_log(log: str) -> list[str]:
    notes = []
    for line in log.splitlines():
        for pattern, template in _NOTE_PATTERNS:
            match = pattern.search(line)
            if match:
                notes.append(template.format(*match.groups()))
                break
    return list(dict.fromkeys(notes))


def _first_error(cell) -> tuple[str, str] | None:
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    # The grader's own errors say more than the KeyboardInterrupt of an interrupted cell.
    errors.sort(key=lambda o: o.get("ename") not in ("CellTimeoutError", "KernelDied", "NotRun"))
    return (errors[0].get("ename", "Error"), errors[0].get("evalue", "")) if errors else None


def _stderr(cell) -> str:
    return "".join(
        "".join(o.get("text", ""))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    )


def _check_lines(cell) -> dict:
    from tlcourse.checks import parse_line

    found = {}
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            for line in "".join(output.get("text", "")).splitlines():
                result = parse_line(line)
                if result is not None:
                    found[result.check_id] = result
    return found


def read_grades(course: Path, job: Job) -> tuple[list[dict], list[str]]:
    """One row per check, from nbgrader's gradebook (points) and the autograded notebook (lines)."""
    import nbformat
    from nbgrader.api import Gradebook

    from tlcourse_tools.authoring import check_ids

    notebook_id = Path(job.notebook).stem
    release = nbformat.read(str(course / "release" / job.assignment / job.notebook), as_version=4)
    graded = nbformat.read(
        str(course / "autograded" / job.student / job.assignment / job.notebook), as_version=4
    )
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in graded.cells}
    order = [
        c.metadata["nbgrader"]["grade_id"]
        for c in release.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    ]
    rows, notes = [], []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for grade_id in order:
            source = gradebook.find_source_cell(grade_id, notebook_id, job.assignment).source
            grade = gradebook.find_grade(grade_id, notebook_id, job.assignment, job.student)
            max_points = float(grade.max_score)
            points = float(grade.auto_score or 0.0)
            cell = by_id.get(grade_id)
            lines = _check_lines(cell) if cell is not None else {}
            error = _first_error(cell) if cell is not None else ("Missing", "the check cell was not run")
            ids = check_ids(source) or [grade_id]
            for check_id in ids:
                line = lines.get(check_id)
                if line is not None:
                    status = _STATUS[line.status]
                    hint = "" if status == PASSED else line.message
                else:
                    status = ERROR
                    hint = f"{error[0]}: {error[1]}" if error else "the check printed nothing"
                share = points / len(ids)
                if status == PASSED and share < max_points / len(ids):
                    # nbgrader's score is the grade: a check that printed ✅ in a cell that also wrote
                    # to stderr (or raised after it) gets 0 there, and the row says why.
                    stderr = _one_line(_stderr(cell), 150)
                    why = (
                        f"it wrote to stderr: {stderr}"
                        if stderr
                        else (f"it raised {error[0]}: {error[1]}" if error else "of its output")
                    )
                    status, hint = ERROR, f"passed, but nbgrader scored the cell {points:g} because {why}"
                rows.append(
                    {
                        "check": check_id,
                        "grade_id": grade_id,
                        "status": status,
                        "points": round(share, 4),
                        "max_points": round(max_points / len(ids), 4),
                        "hint": _one_line(hint),
                    }
                )
    # Cells of the student's (answers, added cells) that raised: what they tried and why it failed.
    for index, cell in enumerate(graded.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        error = _first_error(cell)
        if error and error[0] not in ("NotImplementedError", "NotRun"):
            where = meta.get("grade_id") or f"cell {index + 1}"
            notes.append(_one_line(f"{where} raised {error[0]}: {error[1]}", 240))
    return rows, notes


# =========================================================================== one submission
_EXCEPTION_LINE = re.compile(r"^(?:\[ERROR\] )?([A-Za-z_.]*(?:Error|Exception|Exit)\b:? .*)$")
_GENERIC = ("There was an error processing", "Please see the", "See the log", "There were errors")


def _failure_reason(log: str, error: str) -> str:
    """The lines of nbgrader's log that say why a notebook could not be autograded."""
    lines = [line.strip() for line in f"{log}\n{error}".splitlines() if line.strip()]
    specific = [
        line.removeprefix("[ERROR]").strip()
        for line in lines
        if line.startswith("[ERROR]") and "Traceback" not in line and not any(g in line for g in _GENERIC)
    ]
    exceptions = [match.group(1) for line in lines if (match := _EXCEPTION_LINE.match(line))]
    parts = list(dict.fromkeys(specific[:1] + exceptions[-1:]))
    return _one_line(" ".join(parts) or "unknown (see the worker's log)", 400)


def _configure(sandbox_id: str, settings: Settings, course: Path):
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        DeduplicateIds,
        IgnorePattern,
        LimitOutput,
        OverwriteCells,
        OverwriteKernelspec,
        SaveAutoGrades,
    )
    from traitlets.config import Config

    from tlcourse_tools.grading.course import COURSE_ID
    from tlcourse_tools.grading.kernel import SandboxedExecute

    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.course_id = COURSE_ID
    config.OverwriteCells.add_missing_cells = True
    config.Autograde.sanitize_preprocessors = [
        ClearOutput,
        DeduplicateIds,
        OverwriteKernelspec,
        OverwriteCells,
        CheckCellMetadata,
    ]
    # nbgrader's own pipeline, with its Execute replaced by the sandboxed one (late penalties: none).
    config.Autograde.autograde_preprocessors = [
        SandboxedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        CheckCellMetadata,
    ]
    config.SandboxedExecute.sandbox_id = sandbox_id
    config.SandboxedExecute.budget = float(settings.limits.seconds)
    config.SandboxedExecute.cell_budget = float(settings.limits.cell_seconds or 0)
    per_cell = settings.limits.cell_seconds or settings.limits.seconds
    config.SandboxedExecute.error_on_timeout = {
        "ename": "CellTimeoutError",
        "evalue": f"still running after {per_cell:.0f} s, interrupted",
        "traceback": [f"CellTimeoutError: still running after {per_cell:.0f} s, interrupted"],
    }
    config.SandboxedExecute.max_cell_output = settings.limits.cell_output_bytes
    config.SandboxedExecute.interrupt_on_timeout = True
    config.SandboxedExecute.raise_on_iopub_timeout = False
    config.SandboxedExecute.iopub_timeout = 30
    config.SandboxedExecute.shutdown_kernel = "immediate"  # graded: no need to wait for a clean exit
    config.SandboxKernelManager.sandbox_id = sandbox_id
    return config


def _autograde(course: Path, job: Job, config) -> dict:
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = job.assignment
    coursedir.student_id = job.student
    app = Autograde(coursedir=coursedir, config=config)
    app.force = True
    app.create_student = True
    app.log.setLevel(logging.WARNING)
    app.log.propagate = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's warnings about nbgrader's sessions
        return capture_log(app)


def _grade(job: Job, bundle: bytes, settings: Settings, scratch: Path) -> dict:
    import nbformat

    from tlcourse_tools.grading.course import unpack
    from tlcourse_tools.grading.kernel import Sandbox

    try:
        text = job.content.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return error_outcome(job, f"not a notebook: the file is not valid JSON ({exc})")
    try:
        nbformat.reads(text, as_version=4)
    except Exception as exc:
        return error_outcome(job, f"not a notebook: {_one_line(exc, 200)}")
    course = scratch / "course"
    course.mkdir(mode=0o700)
    unpack(bundle, course)
    submitted = course / "submitted" / job.student / job.assignment / job.notebook
    submitted.parent.mkdir(parents=True)
    submitted.write_bytes(job.content)
    sandbox = Sandbox(scratch, limits=settings.limits, profile=settings.profile, threads=settings.threads)
    try:
        sandbox.start(files_from=course / "source" / job.assignment)
        result = _autograde(course, job, _configure(sandbox.id, settings, course))
    finally:
        sandbox.close()
    log = result.get("log", "")
    notes = _notes_from_log(log)
    isolation = {"mode": sandbox.isolation.mode, "describe": sandbox.isolation.describe()}
    if not result["success"]:
        reason = _failure_reason(log, result.get("error", ""))
        if "Kernel died before replying" in reason or "starting new kernel" in reason:
            reason += f" (kernel log: {sandbox.kernel_log() or 'empty'})"
        return error_outcome(
            job, f"nbgrader could not autograde it: {reason}", notes=notes, isolation=isolation
        )
    rows, cell_notes = read_grades(course, job)
    notes += cell_notes
    notes += [
        f"{cell}: output beyond {settings.limits.cell_output_bytes // 1024} KB dropped"
        for cell in sandbox.truncated_cells
    ]
    graded = course / "autograded" / job.student / job.assignment / job.notebook
    return {
        **_identity(job),
        "status": "graded",
        "error": "",
        "rows": rows,
        "score": round(sum(r["points"] for r in rows), 4),
        "max_score": round(sum(r["max_points"] for r in rows), 4),
        "notes": list(dict.fromkeys(notes)),
        "cell_seconds": round(sandbox.cell_seconds, 2),
        "kernel_start_seconds": round(sandbox.kernel_start_seconds, 2),
        "uid": sandbox.uid,
        "isolation": isolation,
        "autograded": graded.read_text(encoding="utf-8") if graded.exists() else None,
    }


def grade_submission(job: Job, bundle: bytes, settings: Settings) -> dict:
    """Autograde one submission in a sandbox; never raises for anything the student did.

    Returns
    -------
    dict
        ``rows`` (check, status, points, max_points, hint), ``score``, ``max_score``, ``status``
        ("graded" or "error"), ``error``, ``notes``, ``seconds`` (wall clock), ``cell_seconds``
        (the notebook's own cell time), ``worker`` and ``isolation``.
    """
    started = time.monotonic()
    from tlcourse_tools.grading.kernel import scratch_base, sweep

    sweep()
    scratch = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=scratch_base()))
    try:
        outcome = _grade(job, bundle, settings, scratch)
    except Exception as exc:  # the grader's own failure: say so, keep the batch going
        outcome = error_outcome(job, f"the grader failed: {type(exc).__name__}: {exc}", retry=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    outcome["seconds"] = round(time.monotonic() - started, 2)
    outcome.setdefault("cell_seconds", 0.0)
    outcome["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    outcome["settings"] = {"profile": settings.profile, **asdict(settings.limits)}
    with contextlib.suppress(Exception):
        from tlcourse_tools.grading.sandbox import probe

        outcome.setdefault("isolation", {"mode": probe().mode, "describe": probe().describe()})
        outcome["isolation"]["missing"] = list(probe().missing)
    return outcome
