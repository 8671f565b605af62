"""notebooks/, solutions/ and exercises/ are exactly what `tlcourse build` makes from sources/ (no execution)."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from tlcourse_tools import authoring

from tlcourse.checks import parse_line
from tlcourse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LESSON_SOURCES = sorted((ROOT / "sources" / "notebooks").glob(authoring.SOURCE_GLOB))
SOLUTION_SOURCES = sorted((ROOT / "sources" / "solutions").glob(authoring.SOURCE_GLOB))
REBUILD = "run `tlcourse build` (or `make notebooks`) and commit the result"


def read_notebook(path: Path):
    assert path.exists(), f"{path.relative_to(ROOT)} is missing: {REBUILD}"
    return nbformat.read(str(path), as_version=4)


def _same_text(path: Path, expected) -> None:
    assert path.read_text(encoding="utf-8") == authoring.dumps(expected), (
        f"{path.relative_to(ROOT)} differs from what its source builds: {REBUILD}"
    )


def _outputs(nb) -> list[tuple[str, list]]:
    return [(cell.id, cell.outputs) for cell in nb.cells if cell.cell_type == "code" and cell.outputs]


@pytest.mark.parametrize("source", LESSON_SOURCES, ids=lambda p: p.stem)
def test_lesson_notebook_is_built_from_its_source(source):
    path = ROOT / "notebooks" / f"{source.stem}.ipynb"
    nb = read_notebook(path)
    _same_text(path, authoring.lesson_notebook(source.read_text(encoding="utf-8")))
    assert _outputs(nb) == [], f"{path.name} stores outputs"
    assert all(cell.get("execution_count") is None for cell in nb.cells if cell.cell_type == "code")


@pytest.mark.parametrize("source", SOLUTION_SOURCES, ids=lambda p: p.stem)
def test_solution_notebook_is_built_from_its_source(source):
    path = ROOT / "solutions" / f"{source.stem}.ipynb"
    nb = read_notebook(path)
    _same_text(path, authoring.solution_notebook(source.read_text(encoding="utf-8"), previous=nb))
    check_cells = [cell for cell in nb.cells if authoring.is_check_cell(cell)]
    assert check_cells, f"{path.name} has no check cell"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell not in check_cells:
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name}: cell {cell.id} stores outputs"
            )
            continue
        # nbval compares a cell only when the saved one ran (execution_count set) and has the output.
        assert cell.outputs and cell.execution_count, (
            f"{path.name}: check cell {cell.id} has no stored output: run `tlcourse build --execute`"
        )
        assert [(o.output_type, o.get("name")) for o in cell.outputs] == [("stream", "stdout")]
        lines = [parse_line(line) for line in cell.outputs[0].text.splitlines()]
        assert [r.check_id for r in lines if r] == authoring.check_ids(cell.source)
        assert all(r is not None and r.passed for r in lines), f"{path.name}: the solution fails {cell.id}"


@pytest.mark.parametrize("source", SOLUTION_SOURCES, ids=lambda p: p.stem)
def test_solution_cells_carry_nbgrader_metadata(source):
    nb = read_notebook(ROOT / "solutions" / f"{source.stem}.ipynb")
    graded = {cell.id: cell.metadata["nbgrader"] for cell in nb.cells if "nbgrader" in cell.metadata}
    for cell in nb.cells:
        if authoring.is_check_cell(cell):
            meta = graded[cell.id]
            assert meta["grade"] and meta["locked"] and not meta["solution"] and meta["points"] >= 1
        elif cell.cell_type == "code" and "BEGIN SOLUTION" in cell.source:
            meta = graded[cell.id]
            assert meta["solution"] and not meta["grade"] and not meta["locked"]
    assert all(meta["schema_version"] == 3 for meta in graded.values())
    grade_ids = [meta["grade_id"] for meta in graded.values()]
    assert len(grade_ids) == len(set(grade_ids)) and all(gid.replace("-", "").isalnum() for gid in grade_ids)


@pytest.mark.parametrize("source", SOLUTION_SOURCES, ids=lambda p: p.stem)
def test_exercise_notebook_is_built_from_the_solutions(source):
    solution = read_notebook(ROOT / "solutions" / f"{source.stem}.ipynb")
    path = ROOT / "exercises" / f"{source.stem}.ipynb"
    nb = read_notebook(path)
    _same_text(path, authoring.exercise_notebook(solution))
    assert _outputs(nb) == [], f"{path.name} stores outputs"
    text = path.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text


def test_no_generated_notebook_without_a_source():
    for folder, sources in (
        ("notebooks", LESSON_SOURCES),
        ("solutions", SOLUTION_SOURCES),
        ("exercises", SOLUTION_SOURCES),
    ):
        stems = {p.stem for p in sources}
        orphans = [p.name for p in (ROOT / folder).glob("*.ipynb") if p.stem not in stems]
        assert not orphans, f"{folder}/ has notebooks without a source in sources/: {orphans}"


def test_build_in_check_mode_reports_nothing_to_do():
    assert authoring.build(root=ROOT, check=True) == []


# --------------------------------------------------------------------------- the conversion itself
SOURCE = """# %% [markdown]
# # 99 · Demo

# %%
import tlcourse

# %%
def double(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("99.1")

# %% nbgrader={"points": 3}
# BEGIN SOLUTION
answer = 42
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("99.2")
"""


def test_build_of_a_small_course(tmp_path):
    (tmp_path / "sources" / "solutions").mkdir(parents=True)
    (tmp_path / "sources" / "notebooks").mkdir(parents=True)
    (tmp_path / "sources" / "solutions" / "99_demo.py").write_text(SOURCE)
    (tmp_path / "sources" / "notebooks" / "99_demo.py").write_text("# %% [markdown]\n# # Lesson\n")
    written = authoring.build(root=tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "exercises/99_demo.ipynb",
        "notebooks/99_demo.ipynb",
        "solutions/99_demo.ipynb",
    ]
    assert authoring.build(root=tmp_path) == [], "a second build changes nothing (same bytes)"

    solution = nbformat.read(str(tmp_path / "solutions" / "99_demo.ipynb"), as_version=4)
    exercise = nbformat.read(str(tmp_path / "exercises" / "99_demo.ipynb"), as_version=4)
    ids = [cell.id for cell in solution.cells]
    assert ids == ["cell-00", "cell-01", "answer-99-1", "check-99-1", "answer-99-2", "check-99-2"]
    assert [cell.id for cell in exercise.cells] == ids
    assert exercise.cells[2].source == "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert exercise.cells[4].source == "# YOUR CODE HERE\nraise NotImplementedError()"
    assert solution.cells[4].metadata["nbgrader"]["grade_id"] == "answer-99-2"
    assert solution.cells[5].metadata["nbgrader"]["points"] == 1
    assert exercise.cells[3].metadata["editable"] is False
    assert solution.metadata["kernelspec"]["name"] == "python3"


def test_check_outputs_survive_a_rebuild_only_while_the_check_cell_is_unchanged(tmp_path):
    nb = authoring.solution_notebook(SOURCE)
    executed = copy.deepcopy(nb)
    for cell in executed.cells:
        if authoring.is_check_cell(cell):
            check_id = authoring.check_ids(cell.source)[0]
            cell.outputs = [
                nbformat.v4.new_output("stream", name="stdout", text=f"✅ {check_id} fine\n"),
                nbformat.v4.new_output("stream", name="stderr", text="TensorFlow noise\n"),
            ]
    kept = authoring._with_check_outputs(authoring.solution_notebook(SOURCE), executed, name="demo")
    rebuilt = authoring.solution_notebook(SOURCE, previous=kept)
    assert authoring.dumps(rebuilt) == authoring.dumps(kept)
    assert [c.execution_count for c in rebuilt.cells if c.cell_type == "code"] == [None, None, 3, None, 5]
    assert [o.name for c in rebuilt.cells for o in c.get("outputs", [])] == ["stdout", "stdout"]
    changed = authoring.solution_notebook(
        SOURCE.replace('check("99.2")', 'check("99.2")  # edited'), previous=kept
    )
    assert [bool(c.get("outputs")) for c in changed.cells if authoring.is_check_cell(c)] == [True, False]


def test_a_failing_solution_is_refused():
    nb = authoring.solution_notebook(SOURCE)
    for cell in nb.cells:
        if authoring.is_check_cell(cell):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="❌ 99.1 wrong\n")]
    with pytest.raises(Exception, match="check 99.1 did not pass"):
        authoring._with_check_outputs(authoring.solution_notebook(SOURCE), nb, name="demo")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("# %%\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "has no check cell after it"),
        ("# %%\n# NBVAL_CHECK_OUTPUT\nprint(1)\n", "calls no tlcourse.check"),
        (
            "# %%\n# BEGIN SOLUTION\nx = 1\n\n# %%\n# NBVAL_CHECK_OUTPUT\ntlcourse.check('99.1')\n",
            "without END",
        ),
    ],
)
def test_authoring_mistakes_are_explained(source, message):
    with pytest.raises(ConfigError, match=message):
        authoring.exercise_notebook(authoring.solution_notebook(source))


def test_colab_links():
    assert authoring.colab_url(Path("exercises") / "00_welcome.ipynb").endswith(
        "tlcourse/tlcourse/blob/main/exercises/00_welcome.ipynb"
    )
