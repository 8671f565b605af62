"""The ``tlcourse`` command: doctor and fetch for everyone; build, run, progress for maintainers.

Run ``tlcourse --help`` for the list. Every subcommand is a thin layer over a function of the
package, so everything it does can also be done from a notebook.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from tlcourse.errors import TlcourseError

OK, WARN, FAIL = "✅", "⚠️ ", "❌"


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def doctor_checks() -> list[tuple[str, str, str]]:
    """The checks ``tlcourse doctor`` prints, as (status, what, fix) rows."""
    from tlcourse import env

    rows: list[tuple[str, str, str]] = []
    try:
        versions = env.check_versions()
        rows.append((OK, f"TensorFlow {versions['tensorflow']}, Keras {versions['keras']}", ""))
    except TlcourseError as exc:
        rows.append((FAIL, exc.message, exc.hint or ""))
        return rows
    for module, what, fix in (
        ("jupyterlab", "JupyterLab", "make lab   (or pip install 'tlcourse[lab]')"),
        ("ipywidgets", "ipywidgets", "pip install ipywidgets"),
        ("jupyterlab_widgets", "the widgets extension for JupyterLab", "pip install jupyterlab_widgets"),
    ):
        present = importlib.util.find_spec(module) is not None
        rows.append((OK if present else FAIL, f"{what} {'installed' if present else 'missing'}", fix))
    devices = env.detect_devices()
    if any(d.kind in ("GPU", "TPU") for d in devices):
        rows.append((OK, f"accelerator visible: {devices[0].kind} {devices[0].name}", ""))
    else:
        rows.append(
            (
                WARN,
                "no GPU visible: lessons use the `cpu` profile (smaller images, fewer epochs)",
                "for the full profile open the lessons in Colab (Runtime → Change runtime type → T4 GPU)",
            )
        )
    cache = env.cache_dir()
    free = shutil.disk_usage(cache).free
    rows.append(
        (
            OK if free > 5 * 2**30 else WARN,
            f"{_human(free)} free for the cache at {cache} (it holds {_human(_folder_size(cache))})",
            "free some disk space or point TLCOURSE_CACHE at a larger disk",
        )
    )
    rows.extend(offline_asset_rows())
    mode = "offline (forced by TLCOURSE_OFFLINE=1)" if os.environ.get("TLCOURSE_OFFLINE") == "1" else None
    if mode is None:
        mode = "offline (the online sources did not answer)" if env.is_offline() else "online"
    rows.append((OK, f"data sources: {mode}", ""))
    return rows


def offline_asset_rows() -> list[tuple[str, str, str]]:
    """One row per offline asset: is it ready, and how to get it."""
    rows = []
    try:
        from tlcourse import models

        for name, path in models.cached_assets().items():
            rows.append(
                (OK, f"offline weights {name}: {path}", "")
                if path
                else (WARN, f"offline weights {name}: not prepared yet", f"tlcourse fetch {name}")
            )
    except ImportError as exc:
        rows.append((WARN, f"model assets unknown ({exc})", "make lab"))
    try:
        from tlcourse import data

        for item in data.cached_datasets():
            where = item["path"] or "bundled with its package"
            rows.append((OK, f"offline data {item['name']} ({item['source']}): {where}", ""))
        if not any(item["name"] == "fashion_mnist" for item in data.cached_datasets()):
            rows.append(
                (WARN, "offline data fashion_mnist: not available", "apt-get install dataset-fashion-mnist")
            )
    except ImportError as exc:
        rows.append((WARN, f"dataset assets unknown ({exc})", "make lab"))
    return rows


def cmd_doctor(args: argparse.Namespace) -> int:
    from tlcourse import env

    print(env.setup(verbose=False).report())
    print()
    failures = 0
    for status, what, fix in doctor_checks():
        print(f"{status} {what}")
        if fix and status != OK:
            print(f"     fix: {fix}")
        failures += status == FAIL
    return 1 if failures else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from tlcourse import env

    env.quiet_tensorflow()  # before the modules that import TensorFlow
    from tlcourse import data, models

    failed = []
    for name in args.names:
        try:
            if name in models.FETCHABLE:
                models.fetch([name])
            else:
                data.fetch(name)
            print(f"{OK} {name}")
        except TlcourseError as exc:
            print(f"{FAIL} {name}: {exc}")
            failed.append(name)
    return 1 if failed else 0


TOOLS_COMMANDS = ("build", "run", "progress", "grade", "test-env")


def build_parser(*, tools: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tlcourse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check this machine for the course and say how to fix problems")
    fetch = sub.add_parser("fetch", help="download datasets and weights for offline use")
    fetch.add_argument(
        "names", nargs="+", help="dataset or model names, e.g. efficientnet_lite0 minilm beans"
    )
    if tools and importlib.util.find_spec("tlcourse_tools") is not None:
        from tlcourse_tools.cli import add_commands

        add_commands(sub)
    return parser


COMMANDS = {"doctor": cmd_doctor, "fetch": cmd_fetch}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TOOLS_COMMANDS:
        if importlib.util.find_spec("tlcourse_tools") is None:
            print(
                f"{FAIL} `tlcourse {argv[0]}` is one of the maintainers' and instructors' tools, which are not "
                "installed here.\n  hint: in a clone of the course repository run `make test` (or "
                "`pip install -e tools`) to install them.",
                file=sys.stderr,
            )
            return 2
        from tlcourse_tools.cli import main as tools_main

        return tools_main(argv)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TlcourseError as exc:
        print(f"{FAIL} {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
