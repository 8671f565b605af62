"""The maintainers' and instructors' commands: build, run, progress, test-env.

They are reached as ``tlcourse <command>`` (the student package forwards them here) or
``python -m tlcourse_tools <command>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tlcourse.cli import FAIL, OK, WARN, offline_asset_rows
from tlcourse.errors import TlcourseError


def cmd_test_env(args: argparse.Namespace) -> int:
    """Prepare the offline assets for `make test` and say what is missing (never fails)."""
    from tlcourse import env

    env.quiet_tensorflow()  # before the modules that import TensorFlow
    from tlcourse import models

    for name in models.FETCHABLE_FROM_REGISTRY:
        try:
            models.fetch([name])
        except TlcourseError as exc:
            print(f"{WARN} {name} could not be prepared, tests that need it will be skipped: {exc}")
    try:
        # The lessons' pretrained source CNN takes about a minute to train once; do it before the
        # notebooks run so that no lesson pays for it inside its own time budget.
        models.source_model(progress=False)
        print(f"{OK} source model (small CNN pretrained on Fashion-MNIST classes 0-4) ready")
    except TlcourseError as exc:
        print(f"{WARN} source model could not be prepared, lessons 01-05 will fail: {exc}")
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


COMMANDS = {"test-env": cmd_test_env, "build": cmd_build, "progress": cmd_progress, "run": cmd_run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlcourse", description=__doc__.splitlines()[0])
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TlcourseError as exc:
        print(f"{FAIL} {exc}", file=sys.stderr)
        return 2
