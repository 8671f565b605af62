"""Grade a class: find the submissions, autograde them on Dask, keep what is graded, write the gradebook.

``tlcourse grade SUBMITTED --assignment 04 --out grades/`` calls :func:`grade`. The work is one Dask
task per submission (:func:`tlcourse_tools.grading.worker.grade_submission`), on a ``LocalCluster``
of ``--workers`` processes by default or on an existing cluster (``--scheduler tcp://host:8786``).

- **Resumable.** Each result is written to ``OUT/results/<student>.json`` as soon as it arrives,
  keyed by the sha256 of the submitted notebook, the release and the profile; a re-run skips the
  submissions whose key is unchanged and regrades the others.
- **A worker that dies** (killed, out of memory outside the sandbox) has its submission retried once
  on another worker (Dask's ``allowed-failures``, set to 1 for the local cluster); a second death
  marks it ``error`` and the batch goes on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.errors import ConfigError
from tlcourse_tools.grading.kernel import GiB, Limits
from tlcourse_tools.grading.worker import ERROR, FAILED, NOT_ATTEMPTED, PASSED, Job, Settings, error_outcome

__all__ = ["GradeRun", "find_submissions", "grade", "write_gradebook"]

PROFILE_TIMEOUT = {"ci": 600, "cpu": 3600}
GRADEBOOK_COLUMNS = ["student", "assignment", "check", "status", "points", "hint"]
SUMMARY_COLUMNS = [
    "student",
    "assignment",
    "score",
    "max_score",
    "percent",
    "passed",
    "failed",
    "not_attempted",
    "errors",
    "status",
    "seconds",
    "cell_seconds",
    "overhead_seconds",
    "error",
    "notes",
]
# One retry after a worker dies; each worker holds only the task it runs, so that a dying worker takes
# no queued submission down with it; and a killed worker's nanny waits for its restart (Dask's default
# of 15 s is shorter than a worker's start on a busy machine, after which the cluster drops the worker).
LOCAL_CLUSTER_CONFIG = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.deploy.lost-worker-timeout": "30 minutes",
}
KILLED_TWICE = (
    "the worker grading it died twice (killed, or out of memory outside the sandbox); it was retried once"
)


# =========================================================================== finding submissions
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.name.startswith("."))


def find_submissions(submitted: str | os.PathLike, *, assignment: str, notebook: str) -> list[Job]:
    """The submissions in ``submitted``, one :class:`Job` per student.

    Two layouts are read:

    - nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb`` (``submitted`` may also be
      the course folder that holds ``submitted/``);
    - a flat folder of notebooks named by student: ``alice.ipynb``, ``bob.ipynb``.

    A student folder without a notebook, or with several that are not the release's, gives a job
    without content, graded as an ``error`` with the reason.
    """
    folder = Path(submitted)
    if (folder / "submitted").is_dir():
        folder = folder / "submitted"
    if not folder.is_dir():
        raise ConfigError(
            f"{folder} is not a folder of submissions.",
            hint="Pass nbgrader's submitted/ folder (submitted/<student>/<assignment>/*.ipynb) or a folder "
            "of notebooks named by student (alice.ipynb).",
        )
    jobs: list[Job] = []
    students = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    nested = [s for s in students if (s / assignment).is_dir()]
    for student in nested:
        found = _notebooks(student / assignment)
        chosen = [p for p in found if p.name == notebook] or (found if len(found) == 1 else [])
        if not chosen:
            reason = (
                f"no notebook in {student.name}/{assignment}/"
                if not found
                else f"{len(found)} notebooks in {student.name}/{assignment}/ and none is {notebook}"
            )
            jobs.append(Job(student.name, assignment, notebook, "", b"", origin=reason))
            continue
        data = chosen[0].read_bytes()
        jobs.append(Job(student.name, assignment, notebook, _digest(data), data, origin=str(chosen[0])))
    for path in _notebooks(folder):
        data = path.read_bytes()
        jobs.append(Job(path.stem, assignment, notebook, _digest(data), data, origin=str(path)))
    names = [job.student for job in jobs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"{folder} holds two submissions for {', '.join(duplicates)}.",
            hint="Keep one notebook per student: either submitted/<student>/<assignment>/ or <student>.ipynb.",
        )
    if not jobs:
        raise ConfigError(
            f"No submissions of assignment {assignment} in {folder}.",
            hint=f"Expected {folder}/<student>/{assignment}/{notebook} or {folder}/<student>.ipynb.",
        )
    return jobs


# =========================================================================== results on disk
def _key(job: Job, release: str, profile: str) -> dict:
    return {"digest": job.digest, "release": release, "profile": profile}


def _result_path(out: Path, student: str) -> Path:
    return out / "results" / f"{student}.json"


def _load(out: Path, job: Job) -> dict | None:
    try:
        return json.loads(_result_path(out, job.student).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _save(out: Path, outcome: dict, key: dict) -> None:
    autograded = outcome.pop("autograded", None)
    if autograded:
        path = out / "autograded" / f"{outcome['student']}.ipynb"
        path.write_text(autograded, encoding="utf-8")
        path.chmod(0o600)
    outcome["key"] = key
    path = _result_path(out, outcome["student"])
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(outcome, indent=1, ensure_ascii=False), encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)  # atomic: a killed grader never leaves half a result


def write_gradebook(out: Path, outcomes: list[dict]) -> tuple[Path, Path]:
    """``gradebook.csv`` (one row per student × check) and ``summary.csv`` (one row per student)."""
    gradebook, summary = out / "gradebook.csv", out / "summary.csv"
    with gradebook.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, GRADEBOOK_COLUMNS)
        writer.writeheader()
        for outcome in outcomes:
            for row in outcome["rows"]:
                writer.writerow(
                    {
                        "student": outcome["student"],
                        "assignment": outcome["assignment"],
                        "check": row["check"],
                        "status": row["status"],
                        "points": f"{row['points']:g}",
                        "hint": row["hint"],
                    }
                )
    with summary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, SUMMARY_COLUMNS)
        writer.writeheader()
        for outcome in outcomes:
            statuses = [row["status"] for row in outcome["rows"]]
            max_score = outcome.get("max_score") or 0.0
            writer.writerow(
                {
                    "student": outcome["student"],
                    "assignment": outcome["assignment"],
                    "score": f"{outcome['score']:g}",
                    "max_score": f"{max_score:g}",
                    "percent": f"{100 * outcome['score'] / max_score:.0f}" if max_score else "0",
                    "passed": statuses.count(PASSED),
                    "failed": statuses.count(FAILED),
                    "not_attempted": statuses.count(NOT_ATTEMPTED),
                    "errors": statuses.count(ERROR),
                    "status": outcome["status"],
                    "seconds": f"{outcome.get('seconds', 0):.1f}",
                    "cell_seconds": f"{outcome.get('cell_seconds', 0):.1f}",
                    "overhead_seconds": f"{overhead(outcome):.1f}",
                    "error": outcome.get("error", ""),
                    "notes": "; ".join(outcome.get("notes", [])),
                }
            )
    for path in (gradebook, summary):
        path.chmod(0o600)
    return gradebook, summary


def overhead(outcome: dict) -> float:
    """Seconds beyond the notebook's own cells: kernel start, sandbox, nbgrader's bookkeeping."""
    if not outcome.get("cell_seconds"):
        return 0.0
    return max(0.0, outcome.get("seconds", 0.0) - outcome["cell_seconds"])


# =========================================================================== the run
@dataclass
class GradeRun:
    """What :func:`grade` did; ``print(run)`` shows the per-student table."""

    assignment: str
    out: Path
    outcomes: list[dict]
    graded: int = 0  # graded in this run
    reused: int = 0  # kept from an earlier run (unchanged submissions)
    seconds: float = 0.0
    files: dict = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(o["status"] == "error" for o in self.outcomes)

    def table(self) -> str:
        width = max([len("student"), *(len(o["student"]) for o in self.outcomes)])
        lines = [f"{'student'.ljust(width)}  score  status  seconds", "-" * (width + 27)]
        for o in self.outcomes:
            score = f"{o['score']:g}/{o.get('max_score') or 0:g}"
            lines.append(
                f"{o['student'].ljust(width)}  {score:>5}  {o['status']:<6}  {o.get('seconds', 0):7.1f}"
            )
        lines.append(
            f"{len(self.outcomes)} submissions: {self.graded} graded now, {self.reused} unchanged since the "
            f"last run, {self.errors} with errors; {self.seconds:.0f} s"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _prepare_course(assignment: str, workdir: Path) -> tuple[bytes, str, str, float]:
    """The course bundle for the workers, the notebook's name, the release's digest and its points."""
    import nbformat

    from tlcourse_tools.grading import course

    solution = course.notebook_for(assignment)
    folder = course.write_course(workdir / "course", [assignment])
    release = course.generate(folder, assignment)
    points = sum(
        float(cell.metadata["nbgrader"].get("points") or 0)
        for cell in nbformat.read(str(release), as_version=4).cells
        if cell.metadata.get("nbgrader", {}).get("grade")
    )
    return course.bundle(folder, assignment), solution.name, _digest(release.read_bytes()), points


def _start_dask(workers: int, scheduler: str | None, *, connect_timeout: str = "30s"):
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=connect_timeout), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"No Dask scheduler answers at {scheduler} ({type(exc).__name__}: {exc}).",
                hint="Check the address (tcp://host:8786) and that the scheduler runs, or leave --scheduler out "
                "to grade with local workers.",
            ) from None
    with dask.config.set(LOCAL_CLUSTER_CONFIG):  # read by the scheduler when it starts
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=0,  # the sandbox limits each submission; the worker itself stays small
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    return Client(cluster), cluster


def grade(
    submitted: str | os.PathLike,
    *,
    assignment: str,
    out: str | os.PathLike,
    workers: int = 2,
    scheduler: str | None = None,
    timeout: float | None = None,
    cell_timeout: float | None = None,
    memory_gb: float = 4.0,
    processes: int = 512,
    profile: str = "ci",
    progress: bool = True,
    on_submit: Callable | None = None,
) -> GradeRun:
    """Autograde every submission of ``assignment`` in ``submitted``; write the gradebook to ``out``.

    Parameters
    ----------
    submitted : path
        nbgrader's ``submitted/`` folder, or a folder of notebooks named by student.
    assignment : str
        The lesson number, ``"00"`` … ``"10"``.
    out : path
        Where ``gradebook.csv``, ``summary.csv``, ``report.html``, ``results/`` and ``autograded/`` go
        (readable by its owner only).
    workers : int
        Processes of the local Dask cluster (ignored with ``scheduler``).
    scheduler : str, optional
        Address of an existing Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    timeout : float, optional
        Wall-clock seconds per submission (default: 600 in ``ci``, 3600 in ``cpu``).
    cell_timeout : float, optional
        Seconds per cell (default: the whole ``timeout``); a cell over it is interrupted.
    memory_gb : float
        Memory per submission.
    processes : int
        Processes and threads per submission (a fork bomb stops there).
    profile : {"ci", "cpu"}
        The lessons' profile the notebooks run in.
    on_submit : callable, optional
        Called with the Dask client once the tasks are submitted (tests use it to watch the workers).

    Returns
    -------
    GradeRun
    """
    import dask
    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    from tqdm.auto import tqdm

    from tlcourse_tools.grading import report
    from tlcourse_tools.grading.kernel import sweep
    from tlcourse_tools.grading.sandbox import probe

    started = time.monotonic()
    assignment = str(assignment).strip().zfill(2)
    if profile not in PROFILE_TIMEOUT:
        raise ConfigError(
            f"--profile {profile}: grading runs in 'ci' or 'cpu'.", hint="Use --profile ci or cpu."
        )
    if workers < 1:
        raise ConfigError(f"--workers {workers}: at least one worker is needed.", hint="Use --workers 2.")
    out = Path(out)
    for folder in (out, out / "results", out / "autograded"):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    limits = Limits(
        seconds=float(timeout or PROFILE_TIMEOUT[profile]),
        cell_seconds=float(cell_timeout) if cell_timeout else None,
        memory_bytes=int(memory_gb * GiB),
        processes=processes,
    )
    with tempfile.TemporaryDirectory(prefix="tlcourse-course-") as workdir:
        bundle, notebook, release, points = _prepare_course(assignment, Path(workdir))
    jobs = find_submissions(submitted, assignment=assignment, notebook=notebook)
    isolation = probe()
    if progress:
        print(f"isolation here: {isolation.describe()}")
        for line in isolation.missing:
            print(f"  not available: {line}")
    outcomes: dict[str, dict] = {}
    todo: list[Job] = []
    for job in jobs:
        if not job.content:
            outcome = error_outcome(job, job.origin)
            _save(out, outcome, _key(job, release, profile))
            outcomes[job.student] = outcome
            continue
        previous = _load(out, job)
        # Reused when unchanged, unless the grading itself failed (a dead worker): that is regraded.
        if previous and previous.get("key") == _key(job, release, profile) and not previous.get("retry"):
            outcomes[job.student] = previous
        else:
            todo.append(job)
    run = GradeRun(assignment, out, [], reused=len(jobs) - len(todo))
    if todo:
        # Dask reads lost-worker-timeout when it loses a worker, not when the cluster starts: keep it set.
        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            client, cluster = _start_dask(workers, scheduler)
            try:
                threads = max(1, (os.cpu_count() or 1) // workers) if cluster is not None else None
                settings = Settings(profile=profile, limits=limits, threads=threads)
                # The course bundle (a few KB) travels inside each task rather than scattered once: scattered
                # data dies with the workers that hold it, a task's arguments stay with the scheduler.
                futures = {
                    client.submit(
                        _grade_task,
                        job,
                        bundle,
                        settings,
                        key=f"grade-{assignment}-{job.student}-{job.digest[:12]}",
                        pure=False,
                    ): job
                    for job in todo
                }
                if on_submit is not None:
                    on_submit(client)
                bar = tqdm(
                    total=len(futures), desc=f"grading {assignment}", unit="notebook", disable=not progress
                )
                for future in as_completed(futures):
                    job = futures[future]
                    try:
                        outcome = future.result()
                    except KilledWorker:
                        outcome = error_outcome(job, KILLED_TWICE, retry=True)
                    except Exception as exc:
                        reason = f"grading failed on the worker: {type(exc).__name__}: {exc}"
                        outcome = error_outcome(job, reason, retry=True)
                    _save(out, outcome, _key(job, release, profile))
                    outcomes[job.student] = outcome
                    run.graded += 1
                    bar.update()
                bar.close()
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
                    sweep()  # what killed workers' sandboxes left on this machine
    run.outcomes = [outcomes[job.student] for job in sorted(jobs, key=lambda j: j.student)]
    for outcome in run.outcomes:
        outcome.pop("autograded", None)
        if not outcome.get("max_score"):
            outcome["max_score"] = points  # a submission that could not run is out of the same total
    gradebook, summary = write_gradebook(out, run.outcomes)
    run.seconds = time.monotonic() - started
    page = report.write_report(out / "report.html", run.outcomes, assignment=assignment, isolation=isolation)
    run.files = {"gradebook": gradebook, "summary": summary, "report": page}
    return run


def _grade_task(job: Job, bundle: bytes, settings: Settings) -> dict:
    from tlcourse_tools.grading.worker import grade_submission

    return grade_submission(job, bundle, settings)
