"""``python -m bench.grading``: grading a class, `tlcourse grade --workers 2` against serial nbgrader.

Writes section 5 of bench/RESULTS.md:

1. **Throughput**: the same 20 submissions of one exercise (14 right, 3 with a typical wrong answer,
   3 untouched), graded by ``nbgrader autograde`` (one at a time, as nbgrader does) and by
   ``tlcourse grade --workers 2`` (two Dask workers, each submission sandboxed), one after the
   other in one run. Goal: ≥ 1.7× on a 2-core machine. Both must give the same scores.
2. **Overhead** per submission beyond the notebook's own cell time (kernel start, sandbox,
   nbgrader's bookkeeping), from ``tlcourse grade``'s own timing. Goal: ≤ 5 s.
3. **Scaling on paper**: 300 students × 11 notebooks with N workers, from each lesson's measured
   time per notebook (its solution, graded once by ``tlcourse grade``) and the measured parallel
   efficiency.

Options: ``--lesson 00`` (the exercise of part 1), ``--students 20``, ``--skip-lessons`` (part 3 from
part 1's lesson only). Needs the grading extra (``pip install -e "tools[grading]"``).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TLCOURSE_OFFLINE", "1")
os.environ.setdefault("TLCOURSE_PROFILE", "ci")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import nbformat  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
SECTION = "5"
GOAL_SPEEDUP, GOAL_OVERHEAD = 1.7, 5.0
WORKER_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128)
# How docs/instructors.md says to run nbgrader (the same environment tlcourse grade gives its kernels).
NBGRADER_ENV = {
    "TLCOURSE_OFFLINE": "1",
    "TLCOURSE_PROFILE": "ci",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONWARNINGS": "ignore",
}

# A typical wrong answer per lesson (the same ones tests/grading_class.py uses for lessons 00–02).
WRONG = {
    "00": (
        "answer-00-1",
        "model = keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Flatten(),\n"
        "                          keras.layers.Dense(10, activation='softmax')])",
    ),
    "01": (
        "answer-01-1",
        'workflow = ["pick a base", "add a new head", "train the head", "freeze the base", "fine-tune", "evaluate"]',
    ),
    "02": (
        "answer-02-1",
        "settings = {1: 'inductive', 2: 'inductive', 3: 'inductive', 4: 'unsupervised', 5: 'transductive',"
        " 6: 'inductive'}",
    ),
}


def log(message: str) -> None:
    print(f"[bench.grading {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load() -> float:
    return os.getloadavg()[0]


def _solution(lesson: str) -> Path:
    (path,) = (ROOT / "solutions").glob(f"{lesson}_*.ipynb")
    return path


def make_class(submitted: Path, lesson: str, students: int) -> dict[str, str]:
    """``submitted/sNN/<lesson>/<notebook>``: 70 % right, 15 % one wrong answer, 15 % untouched."""
    solution = nbformat.read(str(_solution(lesson)), as_version=4)
    exercise = nbformat.read(str(ROOT / "exercises" / _solution(lesson).name), as_version=4)
    kinds = {}
    for index in range(students):
        share = index / students
        kind = "right" if share < 0.7 else ("wrong" if share < 0.85 else "untouched")
        nb = copy.deepcopy(exercise)
        if kind != "untouched":
            answers = {
                c.metadata["nbgrader"]["grade_id"]: c.source
                for c in solution.cells
                if c.metadata.get("nbgrader", {}).get("solution")
            }
            if kind == "wrong" and lesson in WRONG:
                grade_id, source = WRONG[lesson]
                answers[grade_id] = source
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in answers:
                    cell.source = answers[grade_id]
        student = f"s{index:02d}"
        path = submitted / student / lesson / _solution(lesson).name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        kinds[student] = kind
    return kinds


def serial_nbgrader(course_dir: Path, lesson: str, submitted: Path) -> dict:
    """``nbgrader autograde`` on the class, as an instructor runs it (timed: the autograde command)."""
    from nbgrader.api import Gradebook
    from tlcourse_tools.grading import course

    course.write_course(course_dir, [lesson])
    course.nbgrader(course_dir, "generate_assignment", lesson, "--create", "--force", env=NBGRADER_ENV)
    shutil.copytree(submitted, course_dir / "submitted")
    before = load()
    started = time.perf_counter()
    course.nbgrader(course_dir, "autograde", lesson, "--force", env=NBGRADER_ENV)
    seconds = time.perf_counter() - started
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        scores = {s.student_id: s.score for s in gradebook.assignment_submissions(lesson)}
    return {"seconds": seconds, "scores": scores, "load": (before, load())}


def tlcourse_grade(submitted: Path, lesson: str, out: Path, *, workers: int) -> dict:
    """``tlcourse grade --workers N``, end to end (course preparation and Dask start included)."""
    from tlcourse_tools.grading.batch import grade, overhead

    before = load()
    started = time.perf_counter()
    run = grade(submitted, assignment=lesson, out=out, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    outcomes = [o for o in run.outcomes if o["status"] == "graded"]
    return {
        "seconds": seconds,
        "scores": {o["student"]: o["score"] for o in run.outcomes},
        "overheads": [overhead(o) for o in outcomes],
        "kernel_starts": [o.get("kernel_start_seconds", 0.0) for o in outcomes],
        "notebook_seconds": [o["seconds"] for o in outcomes],
        "errors": [o["error"] for o in run.outcomes if o["status"] == "error"],
        "load": (before, load()),
        "isolation": outcomes[0]["isolation"]["describe"] if outcomes else "",
    }


def per_lesson_seconds(workdir: Path, lessons: list[str]) -> dict[str, float]:
    """Each lesson's solution graded once by ``tlcourse grade`` (1 worker): seconds per notebook."""
    seconds = {}
    for lesson in lessons:
        submitted = workdir / f"one-{lesson}"
        path = submitted / "solution" / lesson / _solution(lesson).name
        path.parent.mkdir(parents=True)
        shutil.copy(_solution(lesson), path)
        result = tlcourse_grade(submitted, lesson, workdir / f"out-{lesson}", workers=1)
        seconds[lesson] = (
            statistics.median(result["notebook_seconds"]) if result["notebook_seconds"] else math.nan
        )
        log(f"lesson {lesson}: {seconds[lesson]:.1f} s per notebook (load {load():.1f})")
    return seconds


def scaling(seconds: dict[str, float], efficiency: float, students: int = 300) -> list[tuple[int, float]]:
    """Hours to grade ``students`` × the lessons with N workers: total work ÷ (N × efficiency)."""
    work = students * sum(seconds.values())
    return [(n, work / (n * (efficiency if n > 1 else 1.0)) / 3600) for n in WORKER_COUNTS]


def section(results: dict) -> str:
    a, b = results["serial"], results["parallel"]
    speedup = a["seconds"] / b["seconds"]
    overheads = b["overheads"]
    efficiency = min(1.0, speedup / 2)
    lines = [
        "## 5. Grading a class: `tlcourse grade --workers 2` vs. serial `nbgrader autograde`",
        "",
        f"Measured {results['date']} by `python -m bench.grading` on {results['cores']} cores "
        f"(load average at the start {results['load_start']:.1f}).",
        "",
    ]
    if results["load_start"] > results["cores"]:
        lines += [
            f"⚠️ The machine was shared (load {results['load_start']:.1f} on {results['cores']} cores): absolute "
            "times are inflated; the ratio compares two runs one after the other, so it moves with the load.",
            "",
        ]
    lines += [
        f"- **Class**: {results['students']} submissions of exercise {results['lesson']} ({results['kinds']}), "
        "nbgrader's `submitted/<student>/<assignment>/` layout, `ci` profile, offline.",
        "- **Serial**: `nbgrader autograde` (nbgrader 0.9, `Execute.timeout` 900 s), timed around the command.",
        "- **tlcourse grade**: `--workers 2` (a Dask LocalCluster), timed end to end: building the course and "
        f"the release, starting Dask, grading; each submission sandboxed ({b['isolation']}).",
        "",
        "| | seconds | notebooks/min | load (1 min) before → after |",
        "|---|---|---|---|",
        f"| nbgrader autograde (serial) | {a['seconds']:.0f} | {60 * results['students'] / a['seconds']:.2f} | "
        f"{a['load'][0]:.1f} → {a['load'][1]:.1f} |",
        f"| tlcourse grade --workers 2 | {b['seconds']:.0f} | {60 * results['students'] / b['seconds']:.2f} | "
        f"{b['load'][0]:.1f} → {b['load'][1]:.1f} |",
        "",
        f"**Speed-up: {speedup:.2f}×** (goal ≥ {GOAL_SPEEDUP}×) {'✅' if speedup >= GOAL_SPEEDUP else '❌'}. "
        f"Same scores: {'yes' if results['same_scores'] else 'NO: ' + results['score_diff']}.",
        "",
        f"**Overhead per submission** beyond its cells' own time (kernel start, sandbox, nbgrader): median "
        f"{statistics.median(overheads):.1f} s, max {max(overheads):.1f} s (goal ≤ {GOAL_OVERHEAD:.0f} s) "
        f"{'✅' if statistics.median(overheads) <= GOAL_OVERHEAD else '❌'}; of which the kernel's start "
        f"(median) {statistics.median(b['kernel_starts']):.1f} s.",
        "",
    ]
    if b["errors"]:
        lines += [f"Errors: {'; '.join(b['errors'])}", ""]
    seconds = results["lesson_seconds"]
    lines += [
        "### Scaling on paper: 300 students × 11 notebooks",
        "",
        "Time per notebook (`ci` profile, the lesson's solution graded by `tlcourse grade`, one worker, "
        "overhead included):",
        "",
        "| lesson | " + " | ".join(seconds) + " | total |",
        "|---" * (len(seconds) + 2) + "|",
        "| seconds | "
        + " | ".join(f"{s:.0f}" for s in seconds.values())
        + f" | {sum(seconds.values()):.0f} |",
        "",
        f"Hours = 300 × {sum(seconds.values()):.0f} s ÷ (N × efficiency), with the efficiency measured above "
        f"({efficiency:.2f} = speed-up ÷ 2; taken as constant, i.e. one core and "
        f"{results['memory_gb']:.0f} GB per worker and no shared bottleneck: the scheduler hands out one task per "
        "notebook, minutes apart).",
        "",
        "| workers | " + " | ".join(str(n) for n, _ in scaling(seconds, efficiency)) + " |",
        "|---" * (len(WORKER_COUNTS) + 1) + "|",
        "| hours | " + " | ".join(f"{h:.2f}" for _, h in scaling(seconds, efficiency)) + " |",
        "",
        "The `cpu` profile trains longer (a laptop's budget): multiply by its time per notebook ÷ the `ci` one.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    previous = RESULTS.read_text() if RESULTS.is_file() else "# Benchmarks\n"
    parts = re.split(r"(?m)^(?=## )", previous)
    kept = [p for p in parts if not p.startswith(f"## {SECTION}. ")]
    RESULTS.write_text("".join(kept).rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", default="00")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--skip-lessons", action="store_true", help="part 3 from --lesson's time only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "load_start": load(),
        "lesson": args.lesson,
        "students": args.students,
        "memory_gb": 4.0,
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        workdir = Path(tmp)
        kinds = make_class(workdir / "submitted", args.lesson, args.students)
        counts = {k: list(kinds.values()).count(k) for k in ("right", "wrong", "untouched")}
        results["kinds"] = ", ".join(f"{n} {k}" for k, n in counts.items())
        log(f"serial nbgrader autograde of {args.students} submissions (load {load():.1f})")
        results["serial"] = serial_nbgrader(workdir / "course", args.lesson, workdir / "submitted")
        log(f"  {results['serial']['seconds']:.0f} s")
        log(f"tlcourse grade --workers 2 (load {load():.1f})")
        results["parallel"] = tlcourse_grade(workdir / "submitted", args.lesson, workdir / "out", workers=2)
        log(f"  {results['parallel']['seconds']:.0f} s")
        a, b = results["serial"]["scores"], results["parallel"]["scores"]
        results["same_scores"] = a == b
        results["score_diff"] = ", ".join(
            f"{s}: {a.get(s)} vs {b.get(s)}" for s in sorted(set(a) | set(b)) if a.get(s) != b.get(s)
        )
        lessons = (
            [args.lesson]
            if args.skip_lessons
            else [p.name[:2] for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))]
        )
        results["lesson_seconds"] = per_lesson_seconds(workdir, lessons)
    text = section(results)
    write_section(text)
    print(text)
    log(f"written: {RESULTS.relative_to(ROOT)} section {SECTION} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
