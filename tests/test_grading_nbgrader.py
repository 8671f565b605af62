"""nbgrader's own commands on the course, unchanged: generate_assignment, autograde, generate_feedback.

An nbgrader course directory is built from the repository (``source/NN/`` = the solutions). For each
lesson, three students submit: the solution (full marks), the untouched release (0, no crash) and a
typical wrong answer (partial, with the check's hint in nbgrader's feedback HTML).

``make test`` covers three lessons (the cheapest, one of which trains a model); ``make test-grading``
(``TLCOURSE_GRADING_LESSONS=all``) covers all eleven.
"""

from __future__ import annotations

import html
import os
import shutil
import time

import nbformat
import pytest

pytest.importorskip("nbgrader")
pytest.importorskip("distributed")

import grading_class  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402
from tlcourse_tools.grading import course  # noqa: E402

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

# The cheapest exercises (their solutions take 12-14 s in the ci profile): 00 and 02, and 01, whose
# answer 01.3 trains a new head on the pretrained source CNN.
CI_LESSONS = ["00", "01", "02"]
_CHOSEN = os.environ.get("TLCOURSE_GRADING_LESSONS", "")  # "all", or e.g. "05,06"
LESSONS = grading_class.LESSONS if _CHOSEN == "all" else (_CHOSEN.split(",") if _CHOSEN else CI_LESSONS)
STUDENTS = ("solution", "untouched", "wrong")
# As docs/instructors.md says to run nbgrader: offline, the ci profile, and nothing on stderr that is not an
# error (nbgrader scores a test cell 0 when it writes to stderr; check 05.1 triggers a Keras UserWarning).
ENV = {
    "TLCOURSE_OFFLINE": "1",
    "TLCOURSE_PROFILE": "ci",
    "MPLBACKEND": "Agg",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONWARNINGS": "ignore",
}


@pytest.fixture(scope="module")
def nbgrader_course(tmp_path_factory):
    root = course.write_course(tmp_path_factory.mktemp("nbgrader") / "course", LESSONS)
    # One command per step for all the lessons ("*"), as an instructor grading a term would.
    course.nbgrader(root, "generate_assignment", "*", "--create", "--force", env=ENV)
    for lesson in LESSONS:
        (release,) = (root / "release" / lesson).glob("*.ipynb")
        submissions = {
            "solution": grading_class.read("solutions", lesson),
            "untouched": nbformat.read(str(release), as_version=4),
            "wrong": grading_class.wrong(lesson),
        }
        for student, nb in submissions.items():
            grading_class.write(nb, root / "submitted" / student / lesson / release.name)
    started = time.monotonic()
    course.nbgrader(root, "autograde", "*", "--force", env=ENV)
    print(f"nbgrader autograde of {len(LESSONS)} lessons × 3 students: {time.monotonic() - started:.0f} s")
    course.nbgrader(root, "generate_feedback", "*", "--force", env=ENV)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _cells(nb):
    return [(c.cell_type, c.source) for c in nb.cells]


@pytest.mark.parametrize("lesson", LESSONS)
def test_generate_assignment_gives_the_exercise_notebook(nbgrader_course, lesson):
    (release,) = (nbgrader_course / "release" / lesson).glob("*.ipynb")
    released = nbformat.read(str(release), as_version=4)
    exercise = grading_class.read("exercises", lesson)
    assert release.name == grading_class.notebook_path("exercises", lesson).name
    assert _cells(released) == _cells(exercise)
    stubs = [c.source for c in released.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert stubs and all("raise NotImplementedError()" in s for s in stubs)
    assert not any("BEGIN SOLUTION" in c.source for c in released.cells)
    for cell in released.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{cell.id} keeps an output in the release"


def _scores(root, lesson):
    (release,) = (root / "release" / lesson).glob("*.ipynb")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        return {
            student: (
                gradebook.find_submission(lesson, student).score,
                gradebook.find_submission(lesson, student).max_score,
            )
            for student in STUDENTS
        }


@pytest.mark.parametrize("lesson", LESSONS)
def test_autograde_scores_solution_full_untouched_zero_wrong_partial(nbgrader_course, lesson):
    scores = _scores(nbgrader_course, lesson)
    top = scores["solution"][1]
    assert top > 0
    assert scores["solution"][0] == top, scores
    assert scores["untouched"][0] == 0, scores
    assert 0 < scores["wrong"][0] < top, scores
    for student in STUDENTS:
        assert (nbgrader_course / "autograded" / student / lesson).is_dir(), f"{student} was not autograded"


@pytest.mark.parametrize("lesson", LESSONS)
def test_feedback_shows_the_checks_hint(nbgrader_course, lesson):
    _grade_id, _source, hint = grading_class.WRONG[lesson]
    (page,) = (nbgrader_course / "feedback" / "wrong" / lesson).glob("*.html")
    text = html.unescape(page.read_text(encoding="utf-8"))
    assert "❌" in text and hint in text
    (untouched,) = (nbgrader_course / "feedback" / "untouched" / lesson).glob("*.html")
    assert "⏳" in html.unescape(untouched.read_text(encoding="utf-8"))
