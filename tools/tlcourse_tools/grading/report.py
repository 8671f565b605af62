"""The class report: one static ``report.html`` with its figures embedded.

It shows the score distribution, the pass rate of each check, the class's most frequent wrong
answers (the hints of failed checks, counted), the runtime of each submission, the errors with
their reasons, and what the grader noticed (edited check cells, changed points, blocked attempts).
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

from tlcourse_tools.grading.worker import ERROR, FAILED, NOT_ATTEMPTED, PASSED

__all__ = ["misconceptions", "pass_rates", "plot_pass_rates", "plot_runtimes", "plot_scores", "write_report"]

COLORS = {PASSED: "#2e7d32", FAILED: "#c62828", NOT_ATTEMPTED: "#9e9e9e", ERROR: "#ef6c00"}
STATUSES = (PASSED, FAILED, NOT_ATTEMPTED, ERROR)


def pass_rates(outcomes: list[dict]) -> dict[str, Counter]:
    """For each check (in notebook order), how many submissions ended in each status.

    Examples
    --------
    >>> rows = [{"check": "00.1", "status": "passed"}, {"check": "00.2", "status": "failed"}]
    >>> pass_rates([{"rows": rows}, {"rows": rows[:1]}])["00.1"][PASSED]
    2
    """
    counts: dict[str, Counter] = defaultdict(Counter)
    for outcome in outcomes:
        for row in outcome["rows"]:
            if row["check"]:
                counts[row["check"]][row["status"]] += 1
    return dict(counts)


def misconceptions(outcomes: list[dict], *, top: int = 15) -> list[tuple[str, str, int, list[str]]]:
    """The most frequent hints of failed checks: (check, hint, count, students), most frequent first.

    Examples
    --------
    >>> rows = [{"check": "00.1", "status": "failed", "hint": "softmax at the end"}]
    >>> misconceptions([{"student": "a", "rows": rows}, {"student": "b", "rows": rows}])
    [('00.1', 'softmax at the end', 2, ['a', 'b'])]
    """
    who: dict[tuple[str, str], list[str]] = defaultdict(list)
    for outcome in outcomes:
        for row in outcome["rows"]:
            if row["status"] == FAILED and row["hint"]:
                who[(row["check"], row["hint"])].append(outcome["student"])
    ranked = sorted(who.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(check, hint, len(students), students) for (check, hint), students in ranked[:top]]


def plot_scores(outcomes: list[dict], *, ax=None):
    """Bar chart of how many students got each score; returns the bars."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3))[1]
    maximum = max([o.get("max_score") or 0 for o in outcomes] + [1])
    counts = Counter(round(o["score"], 2) for o in outcomes)
    values = sorted(set(counts) | {float(v) for v in range(int(maximum) + 1)})
    bars = ax.bar([f"{v:g}" for v in values], [counts.get(v, 0) for v in values], color="#1565c0")
    ax.set_xlabel(f"score (out of {maximum:g})")
    ax.set_ylabel("students")
    ax.set_title("Score distribution")
    ax.yaxis.get_major_locator().set_params(integer=True)
    return bars


def plot_pass_rates(outcomes: list[dict], *, ax=None):
    """Stacked horizontal bars: per check, the share passed / failed / not attempted / error."""
    import matplotlib.pyplot as plt

    rates = pass_rates(outcomes)
    checks = list(rates)
    ax = ax or plt.subplots(figsize=(6, 0.5 + 0.45 * max(1, len(checks))))[1]
    left = [0.0] * len(checks)
    drawn = []
    for status in STATUSES:
        shares = [rates[c][status] / max(1, sum(rates[c].values())) for c in checks]
        drawn.append(ax.barh(checks, shares, left=left, color=COLORS[status], label=status))
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of submissions")
    ax.set_title("Pass rate per check")
    ax.legend(loc="upper center", fontsize="small", ncols=4, bbox_to_anchor=(0.5, -0.38), frameon=False)
    return drawn


def plot_runtimes(outcomes: list[dict], *, ax=None):
    """Per submission (sorted): the notebook's own cell time and the grading overhead on top."""
    import matplotlib.pyplot as plt

    from tlcourse_tools.grading.batch import overhead

    ordered = sorted(outcomes, key=lambda o: o.get("seconds", 0))
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    positions = range(len(ordered))
    cells = [o.get("cell_seconds", 0) for o in ordered]
    extra = [overhead(o) if o.get("cell_seconds") else o.get("seconds", 0) for o in ordered]
    drawn = [
        ax.bar(positions, cells, color="#1565c0", label="cells"),
        ax.bar(positions, extra, bottom=cells, color="#90caf9", label="kernel start, sandbox, nbgrader"),
    ]
    if len(ordered) <= 40:
        ax.set_xticks(list(positions), [o["student"] for o in ordered], rotation=90, fontsize="small")
    else:
        ax.set_xticks([])
        ax.set_xlabel("submissions, fastest first")
    ax.set_ylabel("seconds")
    ax.set_title("Runtime per submission")
    ax.legend(fontsize="small", frameon=False)
    return drawn


def _png(plot, outcomes) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = 1.2 + 0.4 * len(pass_rates(outcomes)) if plot is plot_pass_rates else 3.2
    figure, ax = plt.subplots(figsize=(7, height))
    plot(outcomes, ax=ax)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="{plot.__name__}" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;width:100%}td,th{border:1px solid #ddd;padding:.3em .5em;
text-align:left;vertical-align:top}th{background:#f5f5f5}img{max-width:100%}.muted{color:#666}
"""


def write_report(path: str | Path, outcomes: list[dict], *, assignment: str, isolation=None) -> Path:
    """Write the class report for ``outcomes`` (the results :func:`~tlcourse_tools.grading.grade` keeps)."""
    from tlcourse_tools.grading.batch import overhead

    path = Path(path)
    graded = [o for o in outcomes if o["status"] == "graded"]
    scores = [o["score"] for o in outcomes]
    maximum = max([o.get("max_score") or 0 for o in outcomes] + [0])
    mean = sum(scores) / len(scores) if scores else 0.0
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Assignment {assignment}: class report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Assignment {html.escape(assignment)}: class report</h1>",
        f"<p>{len(outcomes)} submissions, {len(graded)} graded, {len(outcomes) - len(graded)} could not be run; "
        f"mean score {mean:.2f} of {maximum:g}. <span class='muted'>Written "
        f"{datetime.now().strftime('%Y-%m-%d %H:%M')} by <code>tlcourse grade</code>.</span></p>",
    ]
    if isolation is not None:
        parts.append(f"<p class='muted'>Isolation: {html.escape(isolation.describe())}.")
        parts.extend(f"<br>Not available: {html.escape(line)}" for line in isolation.missing)
        parts.append("</p>")
    if outcomes:
        parts += ["<h2>Score distribution</h2>", _png(plot_scores, outcomes)]
    if any(row["check"] for o in outcomes for row in o["rows"]):
        rates = pass_rates(outcomes)
        parts += ["<h2>Pass rate per check</h2>", _png(plot_pass_rates, outcomes)]
        parts.append(
            _table(
                ["check", "passed", "failed", "not attempted", "error"],
                [[c, *(counts[s] for s in STATUSES)] for c, counts in rates.items()],
            )
        )
    common = misconceptions(outcomes)
    parts.append("<h2>Most frequent wrong answers</h2>")
    parts.append(
        _table(
            ["check", "hint the students saw", "students", "who"],
            [[c, h, n, ", ".join(s[:12]) + (" …" if len(s) > 12 else "")] for c, h, n, s in common],
        )
        if common
        else "<p>No check failed.</p>"
    )
    if outcomes:
        parts += ["<h2>Runtime per submission</h2>", _png(plot_runtimes, outcomes)]
    errors = [o for o in outcomes if o["status"] == "error" or any(r["status"] == ERROR for r in o["rows"])]
    parts.append("<h2>Errors</h2>")
    rows = []
    for o in errors:
        if o["status"] == "error":
            rows.append([o["student"], "(whole submission)", o["error"]])
        else:
            rows.extend([o["student"], r["check"], r["hint"]] for r in o["rows"] if r["status"] == ERROR)
    parts.append(_table(["student", "check", "reason"], rows) if rows else "<p>None.</p>")
    noted = [[o["student"], note] for o in outcomes for note in o.get("notes", [])]
    parts.append("<h2>What the grader noticed</h2>")
    parts.append(
        "<p class='muted'>Edited or deleted check cells, changed points (nbgrader restores them from the "
        "release), and cells of the student's that raised (e.g. a blocked file or network access).</p>"
    )
    parts.append(_table(["student", "note"], noted) if noted else "<p>Nothing.</p>")
    parts.append("<h2>Submissions</h2>")
    parts.append(
        _table(
            ["student", "score", "status", "seconds", "cells (s)", "overhead (s)"],
            [
                [
                    o["student"],
                    f"{o['score']:g}/{o.get('max_score') or 0:g}",
                    o["status"],
                    f"{o.get('seconds', 0):.1f}",
                    f"{o.get('cell_seconds', 0):.1f}",
                    f"{overhead(o):.1f}",
                ]
                for o in outcomes
            ],
        )
    )
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    path.chmod(0o600)
    return path
