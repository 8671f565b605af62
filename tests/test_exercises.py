"""Every exercise notebook runs end to end as handed out: each check says ⏳ or ❌, none crashes.

(nbgrader's "validate --invert" idea: the unanswered notebook must not pass, and must not break.)
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from tlcourse_tools import authoring, running
from tlcourse_tools import progress as exercise_progress

from tlcourse.checks import parse_line
from tlcourse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.notebook


def _stdout(cell) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercise_runs_and_no_check_passes_or_crashes(path):
    executed = running.run_notebook(path, env=authoring.TEST_ENV, allow_errors=True, timeout=600)
    checked = []
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if cell.metadata.get("nbgrader", {}).get("solution"):
            # The stub is the only error an unanswered notebook may raise.
            assert [e.ename for e in errors] in ([], ["NotImplementedError"]), f"{cell.id}: {errors}"
            continue
        assert not errors, f"{path.name}: cell {cell.id} crashed: {errors[0].ename}: {errors[0].evalue}"
        if authoring.is_check_cell(cell):
            lines = _stdout(cell).splitlines()
            results = [parse_line(line) for line in lines]
            assert all(results), f"{path.name}: check cell {cell.id} printed more than its lines: {lines}"
            assert [r.check_id for r in results] == authoring.check_ids(cell.source)
            assert all(r.status in ("not_attempted", "failed") for r in results), lines
            checked.extend(results)
    assert checked, f"{path.name} has no check cell"


def _answer(nb, grade_id: str, source: str) -> None:
    cell = next(c for c in nb.cells if c.id == grade_id)
    cell.source = source


def test_progress_counts_passed_checks_per_notebook(tmp_path):
    exercise = nbformat.read(str(ROOT / "exercises" / "00_welcome.ipynb"), as_version=4)
    # A student who got 00.3 right, 00.1 wrong (softmax at the end) and has not tried 00.2.
    _answer(
        exercise,
        "answer-00-1",
        "model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),"
        " keras.layers.Dense(10, activation='softmax')])",
    )
    _answer(
        exercise,
        "answer-00-3",
        "base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))\n"
        "base.trainable = False\ninputs = keras.Input((96, 96, 3))\n"
        "x = keras.layers.GlobalAveragePooling2D()(base(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)))\n"
        "transfer_model = keras.Model(inputs, keras.layers.Dense(3)(x))",
    )
    nbformat.write(exercise, str(tmp_path / "00_welcome.ipynb"))

    result = exercise_progress.progress([tmp_path / "00_welcome.ipynb"], env=authoring.TEST_ENV, timeout=600)
    (row,) = result.notebooks
    assert (row.passed, row.failed, row.not_attempted, row.total) == (1, 1, 1, 3)
    assert [r.status for r in row.results] == ["failed", "not_attempted", "passed"]
    assert "softmax" in row.results[0].message
    table = result.table(details=True)
    assert "00_welcome.ipynb" in table and "1/3" in table and "❌ 00.1" in table
    assert str(result).splitlines()[-1].split()[:2] == ["total", "1/3"]


def test_progress_refuses_what_is_not_a_notebook(tmp_path):
    with pytest.raises(ConfigError, match="not a notebook"):
        exercise_progress.progress([tmp_path / "missing.ipynb"])
