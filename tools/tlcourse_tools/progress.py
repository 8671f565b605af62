"""Exercise progress: run exercise notebooks headless and count the checks each one passes."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.checks import CheckResult, parse_line
from tlcourse.errors import ConfigError
from tlcourse_tools.authoring import check_ids, is_check_cell, read_notebook
from tlcourse_tools.running import run_notebook

__all__ = ["NotebookProgress", "Progress", "progress"]


# =========================================================================== progress
@dataclass
class NotebookProgress:
    """The checks of one executed exercise notebook."""

    path: Path
    results: list = field(default_factory=list)  # CheckResult, one per check id, in notebook order

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def passed(self) -> int:
        return sum(r.status == "passed" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    @property
    def not_attempted(self) -> int:
        return sum(r.status == "not_attempted" for r in self.results)


@dataclass
class Progress:
    """Checks passed per notebook; ``str(progress)`` is the table ``tlcourse progress`` prints."""

    notebooks: list[NotebookProgress]

    @property
    def passed(self) -> int:
        return sum(n.passed for n in self.notebooks)

    @property
    def total(self) -> int:
        return sum(n.total for n in self.notebooks)

    def table(self, *, details: bool = False) -> str:
        rows = [
            (n.path.name, f"{n.passed}/{n.total}", str(n.failed), str(n.not_attempted))
            for n in self.notebooks
        ]
        rows.append(
            (
                "total",
                f"{self.passed}/{self.total}",
                str(sum(n.failed for n in self.notebooks)),
                str(sum(n.not_attempted for n in self.notebooks)),
            )
        )
        header = ("notebook", "passed", "failed", "to do")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

        def line(row) -> str:
            return "  ".join(
                [
                    row[0].ljust(widths[0]),
                    *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)),
                ]
            )

        out = [line(header), "  ".join("-" * w for w in widths)]
        for notebook, row in zip(self.notebooks, rows, strict=False):
            out.append(line(row))
            if details:
                out.extend(f"    {result.line}" for result in notebook.results if not result.passed)
        out.extend(["  ".join("-" * w for w in widths), line(rows[-1])])
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _results_of(executed) -> list:
    printed = {}
    expected: list[str] = []
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        if is_check_cell(cell):
            expected.extend(i for i in check_ids(cell.source) if i not in expected)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                for text_line in "".join(out.get("text", "")).splitlines():
                    result = parse_line(text_line)
                    if result is not None:
                        printed[result.check_id] = result
    return [printed.get(i) or CheckResult(i, "failed", "the check cell did not run") for i in expected]


def _notebook_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("*.ipynb") if not p.name.startswith(".")))
        elif path.suffix == ".ipynb" and path.exists():
            found.append(path)
        else:
            raise ConfigError(
                f"{path} is not a notebook or a folder of notebooks.",
                hint="Pass exercise notebooks, e.g. `tlcourse progress exercises/`.",
            )
    return found


def progress(
    paths: Iterable[str | os.PathLike], *, env: Mapping[str, str] | None = None, timeout: int = 1200
) -> Progress:
    """Run exercise notebooks headless (errors allowed) and count the checks each one passes.

    Parameters
    ----------
    paths : iterable of path
        Notebooks, or folders of notebooks.
    env : mapping, optional
        Extra environment variables for the kernels (e.g. ``{"TLCOURSE_PROFILE": "ci"}``).
    timeout : int
        Seconds allowed per cell.

    Returns
    -------
    Progress
        ``print(progress([...]))`` shows the table; ``.passed`` / ``.total`` sum it up.
    """
    notebooks = []
    for path in _notebook_paths(paths):
        try:
            executed = run_notebook(path, env=env, timeout=timeout, allow_errors=True)
        except Exception as exc:  # a dead kernel or a timeout: every check of the notebook counts as failed
            unexecuted = read_notebook(path)
            reason = " ".join(f"the notebook stopped ({type(exc).__name__}: {exc})".split())[:200]
            results = [CheckResult(r.check_id, "failed", reason) for r in _results_of(unexecuted)]
            notebooks.append(NotebookProgress(path, results))
            continue
        notebooks.append(NotebookProgress(path, _results_of(executed)))
    return Progress(notebooks)
