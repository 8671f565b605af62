"""Lesson 02's checks: the scenario quiz, the domain-gap function and the MNIST-M blend."""

from __future__ import annotations

import numpy as np
import pytest
from checkrun import run

from tlcourse.checks.lesson_02 import SETTINGS_02

CORRECT = {number: setting for number, (setting, _) in SETTINGS_02.items()}


# --------------------------------------------------------------------------- 02.1
def test_02_1_correct(capsys):
    assert (
        run("02.1", capsys, settings=dict(CORRECT)).line == "✅ 02.1 all 6 scenarios are in the right setting"
    )
    loose = {str(number): f" {setting.title()} " for number, setting in CORRECT.items()}
    assert run("02.1", capsys, settings=loose).passed


def test_02_1_hint_names_the_first_wrong_scenario_and_the_rule(capsys):
    result = run("02.1", capsys, settings=dict.fromkeys(CORRECT, "inductive"))
    assert result.status == "failed"
    assert result.message.startswith("scenario 2 is not inductive. Apply the rule")
    assert "same task, new domain, no target labels: transductive" in result.message
    assert "no night image is labelled" in result.message


@pytest.mark.parametrize(
    ("settings", "hint"),
    [
        ({**CORRECT, 4: "inductive"}, "scenario 4 is not inductive"),
        ({**CORRECT, 6: "transductive"}, "scenario 6 is not transductive"),
        (
            {**CORRECT, 2: "transductve"},
            "scenario 2: 'transductve' is not a setting: did you mean 'transductive'?",
        ),
        ({n: s for n, s in CORRECT.items() if n != 5}, "scenario 5 has no answer yet"),
        ({**CORRECT, 7: "inductive"}, "7 is not a scenario number"),
        (list(CORRECT.values()), "`settings` is a list: make it a dict"),
    ],
    ids=["unsupervised-as-inductive", "inductive-as-transductive", "typo", "missing", "extra", "list"],
)
def test_02_1_wrong_answers(capsys, settings, hint):
    result = run("02.1", capsys, settings=settings)
    assert result.status == "failed"
    assert hint in result.message


# --------------------------------------------------------------------------- 02.2
def accuracy(model, bundle, split="test"):
    x, y = bundle.arrays(split)
    return float(np.mean(model.predict(x, verbose=0).argmax(axis=-1) == y))


def right_gap(model, source, target):
    return accuracy(model, source) - accuracy(model, target)


def test_02_2_correct(capsys):
    result = run("02.2", capsys, domain_gap=right_gap)
    assert (
        result.line
        == "✅ 02.2 domain_gap = source − target accuracy on the test split (checked both ways round)"
    )


@pytest.mark.parametrize(
    ("domain_gap", "hint"),
    [
        (lambda m, s, t: accuracy(m, t) - accuracy(m, s), "wrong sign"),
        (lambda m, s, t: 100 * right_gap(m, s, t), "return a fraction (0.25)"),
        (lambda m, s, t: accuracy(m, s, "train") - accuracy(m, t, "train"), "measured on the train split"),
        (lambda m, s, t: (accuracy(m, s), accuracy(m, t)), "returned a tuple: return one number"),
        (lambda m, s, t: abs(right_gap(m, s, t)), "wrong number when source and target are swapped"),
        (lambda m, s, t: 0.5, "is not the source test accuracy minus the target test accuracy"),
        (lambda m, s, t: None, "forget `return`"),
    ],
    ids=["sign", "percent", "train-split", "tuple", "one-way-only", "constant", "none"],
)
def test_02_2_wrong_answers(capsys, domain_gap, hint):
    result = run("02.2", capsys, domain_gap=domain_gap)
    assert result.status == "failed"
    assert hint in result.message


def test_02_2_stub_is_not_attempted(capsys):
    def domain_gap(model, source, target):
        raise NotImplementedError()

    assert run("02.2", capsys, domain_gap=domain_gap).status == "not_attempted"


# --------------------------------------------------------------------------- 02.3
def right_blend(image, patch):
    return np.abs(patch.astype(np.int16) - image.astype(np.int16)).astype(np.uint8)


def in_place(image, patch):
    np.subtract(np.maximum(image, patch), np.minimum(image, patch), out=image)
    return image


def test_02_3_correct(capsys):
    result = run("02.3", capsys, blend=right_blend)
    assert (
        result.line
        == "✅ 02.3 blend computes |patch − image| per pixel and channel, as uint8 (the MNIST-M recipe)"
    )
    assert run(
        "02.3", capsys, blend=lambda image, patch: np.abs(image.astype(float) - patch).astype("uint8")
    ).passed


@pytest.mark.parametrize(
    ("blend", "hint"),
    [
        (lambda image, patch: np.abs(patch - image), "wraps around (3 − 5 gives 254)"),
        (lambda image, patch: patch.astype(np.int16) - image.astype(np.int16), "take the absolute value"),
        (lambda image, patch: np.abs(patch.astype(float) - image), "its dtype is float64: return uint8"),
        (lambda image, patch: ((image.astype(int) + patch) // 2).astype(np.uint8), "blend averages"),
        (in_place, "changed the image or the patch"),
        (lambda image, patch: right_blend(image, patch)[..., 0], "returned shape 28×28"),
        (lambda image, patch: None, "forget `return`"),
    ],
    ids=["uint8-wraparound", "no-abs", "float", "average", "in-place", "one-channel", "none"],
)
def test_02_3_wrong_answers(capsys, blend, hint):
    result = run("02.3", capsys, blend=blend)
    assert result.status == "failed"
    assert hint in result.message


# --------------------------------------------------------------------------- the lesson's quiz widget
def _quiz_cell() -> dict:
    """Run lesson 02's quiz cell (its functions, then the displayed object) and return its namespace."""
    import ast
    from pathlib import Path

    import jupytext

    source = Path(__file__).resolve().parents[1] / "sources" / "notebooks" / "02_inductive_vs_transductive.py"
    cell = next(c.source for c in jupytext.read(source).cells if "def quiz_widget" in c.source)
    *body, last = ast.parse(cell).body
    namespace: dict = {}
    exec(compile(ast.Module(body=body, type_ignores=[]), "quiz", "exec"), namespace)
    namespace["shown"] = eval(compile(ast.Expression(last.value), "quiz", "eval"), namespace)
    return namespace


def test_lesson_02_quiz_displays_and_answers_with_the_installed_ipywidgets():
    """Colab ships ipywidgets 7.7.1, JupyterLab 8: run with either on the path, the quiz must show and react."""
    from IPython.core.formatters import DisplayFormatter

    quiz = _quiz_cell()
    bundle, _ = DisplayFormatter().format(quiz["shown"])
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == quiz["quiz"].model_id
    assert bundle["text/plain"].startswith("Which setting?") and "5. Features" in bundle["text/plain"]
    rows = quiz["quiz"].children
    assert len(rows) == len(quiz["QUIZ"])
    choice, feedback = rows[1].children[1].children
    choice.value = "transductive"
    assert feedback.value.startswith("✅ 2. transductive")
    choice.value = "inductive"
    assert feedback.value.startswith("❌ 2. not inductive")
    assert quiz["check_quiz"]({1: "inductive", 2: "transductive"}) == 2
