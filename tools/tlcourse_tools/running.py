"""Run notebooks headless: one notebook in a fresh kernel, or the whole course into build/course."""

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

from tlcourse.errors import ConfigError
from tlcourse_tools.authoring import read_notebook, repo_root

__all__ = [
    "CourseRun",
    "LessonRun",
    "inject_parameters",
    "parameter_names",
    "parse_parameters",
    "run_course",
    "run_notebook",
]


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
    # The kernel imports the same tlcourse (and tools) as this process, installed or not.
    import tlcourse

    parents = [str(Path(tlcourse.__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1])]
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*dict.fromkeys([*parents, *paths])])
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
    sources = {path.stem: read_notebook(path) for path in paths}
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
