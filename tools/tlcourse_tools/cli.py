"""The maintainers' and instructors' commands: build, run, progress, grade, test-env.

They are reached as ``tlcourse <command>`` (the student package forwards them here) or
``python -m tlcourse_tools <command>``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from tlcourse.cli import FAIL, OK, WARN, offline_asset_rows
from tlcourse.errors import TlcourseError


def cmd_test_env(args: argparse.Namespace) -> int:
    """Prepare the offline assets for `make test` and say what is missing (never fails)."""
    from tlcourse import env
    from tlcourse_tools import fashion

    # First, before tlcourse.data is imported (it decides where Fashion-MNIST lives when imported).
    fashion_ready, line = fashion.ensure()
    print(line)
    env.quiet_tensorflow()  # before the modules that import TensorFlow
    from tlcourse import models

    for name in models.FETCHABLE_FROM_REGISTRY:
        try:
            models.fetch([name])
        except TlcourseError as exc:
            print(f"{WARN} {name} could not be prepared, tests that need it will be skipped: {exc}")
    try:
        if not fashion_ready:
            raise TlcourseError("it is trained on Fashion-MNIST, which is missing (see above)")
        # The lessons' pretrained source CNN takes about a minute to train once; do it before the
        # notebooks run so that no lesson pays for it inside its own time budget.
        models.source_model(progress=False)
        print(f"{OK} source model (small CNN pretrained on Fashion-MNIST classes 0-4) ready")
    except TlcourseError as exc:
        print(f"{WARN} source model (lessons 01-05) could not be prepared: {exc}")
    for status, what, fix in offline_asset_rows():
        print(f"{status} {what}" + (f"  ({fix})" if fix and status != OK else ""))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from tlcourse_tools import authoring

    changed = authoring.build(lessons=args.lessons or None, execute=args.execute, check=args.check)
    verb = "differs" if args.check else "wrote"
    for path in changed:
        print(f"{verb} {path}")
    return 1 if args.check and changed else 0


def cmd_progress(args: argparse.Namespace) -> int:
    from tlcourse_tools.progress import progress

    result = progress(args.paths or sorted(Path("exercises").glob("*.ipynb")))
    print(result.table(details=args.details))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """0 when every lesson passed, 1 when one failed, 130 on Ctrl-C; --dry-run names plans over their limits."""
    from tlcourse_tools import running

    run = running.run_course(
        args.notebooks,
        profile=args.profile,
        parameters=running.parse_parameters(args.parameters),
        output=Path(args.output),
        timeout=args.timeout or (7200 if args.dry_run else 1800),
        keep_going=args.keep_going,
        dry_run=args.dry_run,
        plan_file=args.plan,
    )
    if run.interrupted:
        return 130
    if args.dry_run:
        from tlcourse_tools import plans

        over = [(row.name, plans.within_limits(row.plan)) for row in run.rows if row.plan]
        for name, problems in over:
            if problems:
                print(
                    f"{WARN} {name}: the plan exceeds the {args.profile} profile's limits: {'; '.join(problems)}"
                )
    return 0 if run.ok else 1


def cmd_colab_constraints(args: argparse.Namespace) -> int:
    from tlcourse_tools import colab

    path = colab.write_constraints(args.freeze, date=args.date, python=args.python, os_info=args.os_info)
    snap = colab.read_snapshot(path.read_text(encoding="utf-8"))
    print(f"{OK} wrote {path} (Python {snap.python}, {len(snap.pins)} packages pinned)")
    return 0


def cmd_colab_twin(args: argparse.Namespace) -> int:
    """0 when the install cell changed nothing and the tests passed (or the twin was skipped), else 1."""
    from tlcourse_tools import colab

    run = colab.run_twin(
        args.snapshot, suite=args.suite, jobs=args.jobs, pytest_args=shlex.split(args.pytest_args)
    )
    print(run.report())
    return 0 if run.ok else 1


def cmd_grade(args: argparse.Namespace) -> int:
    """0 when the class was graded (whatever the scores), 2 on a usage error."""
    import importlib.util

    if importlib.util.find_spec("nbgrader") is None or importlib.util.find_spec("distributed") is None:
        raise TlcourseError(
            "`tlcourse grade` needs nbgrader and Dask, which are not installed here.",
            hint='Install the grading extra: pip install -e "tools[grading]".',
        )
    from tlcourse_tools.grading.batch import grade

    run = grade(
        args.submitted,
        assignment=args.assignment,
        out=Path(args.out),
        workers=args.workers,
        scheduler=args.scheduler,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        memory_gb=args.memory,
        profile=args.profile,
    )
    print(run.table())
    for name, path in run.files.items():
        print(f"{name}: {path}")
    return 0


def add_commands(sub) -> None:
    """Add the maintainers' and instructors' subcommands to an ``argparse`` subparsers object."""
    sub.add_parser("test-env", help=argparse.SUPPRESS)
    build = sub.add_parser("build", help="regenerate notebooks/, solutions/ and exercises/ from sources/")
    build.add_argument("lessons", nargs="*", help="only these lesson numbers, e.g. 03 04 (default: all)")
    build.add_argument("--execute", action="store_true", help="re-run solutions to refresh check outputs")
    build.add_argument("--check", action="store_true", help="only say which notebooks are out of date")
    progress = sub.add_parser("progress", help="run exercise notebooks headless and count passed checks")
    progress.add_argument("paths", nargs="*", help="exercise notebooks (default: exercises/*.ipynb)")
    progress.add_argument("--details", action="store_true", help="list every check, not just the counts")
    run = sub.add_parser("run", help="run lessons headless into build/ as executed notebooks and HTML")
    run.add_argument(
        "notebooks", nargs="*", help="lessons to run: numbers (03), names or .ipynb paths (default: all)"
    )
    run.add_argument("--profile", default=None, help="full, cpu or ci (default: chosen by the machine)")
    run.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a name of the lessons' `parameters` cell, e.g. -p EPOCHS=2 -p PROFILE='\"ci\"' (repeatable)",
    )
    run.add_argument("--output", default="build/course", help="where to write the results")
    run.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds allowed per cell (default: 1800; 7200 for a dry run)",
    )
    run.add_argument(
        "--keep-going",
        action="store_true",
        help="run every cell even after one fails (default: stop the lesson)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="with --profile full or cpu: run the online code path against a network stand-in at two small "
        "dataset scales, one step per epoch, and write memory and time plans to OUTPUT/plan.json",
    )
    run.add_argument("--plan", default=None, help="with --dry-run: merge the plans into this file instead")

    constraints = sub.add_parser(
        "colab-constraints", help="make tools/colab/colab-gpu.<date>.txt from Colab's published pip freeze"
    )
    constraints.add_argument("freeze", help="googlecolab/backend-info's pip-freeze.gpu.txt")
    constraints.add_argument("--os-info", help="its os-info-gpu.txt (gives the Python version)")
    constraints.add_argument("--python", help="the runtime's Python version, X.Y.Z (instead of --os-info)")
    constraints.add_argument(
        "--date", help="the snapshot's date, YYYY-MM-DD (default: the one in the file name)"
    )
    twin = sub.add_parser(
        "colab-twin",
        help="install the course into a twin of Colab's runtime as its first cell does, then test it",
    )
    twin.add_argument("snapshot", nargs="?", default="newest", help="newest (default), oldest or a date")
    twin.add_argument(
        "--suite", choices=("colab", "full", "lessons"), default="full", help="what to run (default: full)"
    )
    twin.add_argument("--jobs", type=int, default=2, help="pytest-xdist workers (default: 2)")
    twin.add_argument(
        "--pytest-args",
        default="",
        help='run pytest with these instead, e.g. "notebooks/00_welcome.ipynb -k x"',
    )

    grade = sub.add_parser(
        "grade",
        help="autograde a class's submissions with nbgrader, in sandboxes, on Dask; write a gradebook and report",
    )
    grade.add_argument(
        "submitted",
        help="nbgrader's submitted/ folder (<student>/<assignment>/*.ipynb) or a folder of <student>.ipynb",
    )
    grade.add_argument("--assignment", required=True, help="the lesson number, 00 to 10")
    grade.add_argument("--out", required=True, help="where gradebook.csv, summary.csv and report.html go")
    grade.add_argument("--workers", type=int, default=2, help="local Dask worker processes (default: 2)")
    grade.add_argument("--scheduler", default=None, help="an existing Dask scheduler, e.g. tcp://host:8786")
    grade.add_argument(
        "--timeout", type=float, default=None, help="seconds per submission (default: 600 in ci, 3600 in cpu)"
    )
    grade.add_argument(
        "--cell-timeout", type=float, default=None, help="seconds per cell (default: the whole --timeout)"
    )
    grade.add_argument("--memory", type=float, default=4.0, help="GB of memory per submission (default: 4)")
    grade.add_argument(
        "--profile", choices=("ci", "cpu"), default="ci", help="the lessons' profile (default: ci)"
    )


COMMANDS = {
    "test-env": cmd_test_env,
    "build": cmd_build,
    "progress": cmd_progress,
    "run": cmd_run,
    "colab-constraints": cmd_colab_constraints,
    "colab-twin": cmd_colab_twin,
    "grade": cmd_grade,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlcourse", description=__doc__.splitlines()[0])
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TlcourseError as exc:
        print(f"{FAIL} {exc}", file=sys.stderr)
        return 2
