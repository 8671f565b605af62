"""Lesson 07's checks: a base under a parameter budget, mean ± std per (recipe, fraction), a comparison's winner."""

from __future__ import annotations

import numpy as np
import pytest
from checkrun import run

from tlcourse import models
from tlcourse.checks.lesson_07 import PUBLISHED_TOP1_07
from tlcourse.train import Comparison

CATALOGUE = models.catalog()


def _pick(max_params, *, strict=False, key=None):
    fits = [i for i in CATALOGUE if (i.params < max_params if strict else i.params <= max_params)]
    return max(fits, key=key or (lambda i: PUBLISHED_TOP1_07[i.name]), default=None)


# --------------------------------------------------------------------------- 07.1
def test_07_1_correct(capsys):
    def pick_base(max_params):
        best = _pick(max_params)
        return best.name if best else None

    result = run("07.1", capsys, pick_base=pick_base)
    assert result.passed and "most accurate base under the budget" in result.line


@pytest.mark.parametrize(
    ("pick_base", "hint"),
    [
        (lambda m: _pick(m), "return the base's name"),
        (lambda m: "xception", "drop every base above the budget"),
        (lambda m: (lambda b: b.name if b else None)(_pick(m, strict=True)), "use <=, not <"),
        (lambda m: (lambda b: b.name if b else None)(_pick(m, key=lambda i: -i.params)), "more accurate"),
        (
            lambda m: (lambda b: b.name if b else "mobilenet_v3_small")(_pick(m)),
            "return None when nothing fits",
        ),
        (lambda m: None, "fits"),
        ("mobilenet_v2", "should be a function"),
    ],
)
def test_07_1_wrong(capsys, pick_base, hint):
    result = run("07.1", capsys, pick_base=pick_base)
    assert not result.passed and hint in result.line, result.line


def test_07_1_not_attempted(capsys):
    def pick_base(max_params):
        raise NotImplementedError()

    assert run("07.1", capsys, pick_base=pick_base).line == "⏳ 07.1 not attempted yet"


# --------------------------------------------------------------------------- 07.2
def _groups(rows):
    groups = {}
    for row in rows:
        groups.setdefault((row["recipe"], row["fraction"]), []).append(row["accuracy"])
    return groups


def test_07_2_correct(capsys):
    def summarise(rows):
        return {k: (float(np.mean(v)), float(np.std(v, ddof=1))) for k, v in _groups(rows).items()}

    assert run("07.2", capsys, summarise=summarise).passed


def _by_recipe(rows):
    out = {}
    for row in rows:
        out.setdefault(row["recipe"], []).append(row["accuracy"])
    return {k: (np.mean(v), np.std(v, ddof=1)) for k, v in out.items()}


@pytest.mark.parametrize(
    ("summarise", "hint"),
    [
        (lambda rows: {k: (np.mean(v), np.std(v)) for k, v in _groups(rows).items()}, "ddof=1"),
        (_by_recipe, "grouped by recipe only"),
        (lambda rows: {k: (np.std(v, ddof=1), np.mean(v)) for k, v in _groups(rows).items()}, "(std, mean)"),
        (lambda rows: [(k, np.mean(v)) for k, v in _groups(rows).items()], "return a dict"),
        (lambda rows: {k: np.mean(v) for k, v in _groups(rows).items()}, "give a pair (mean, std)"),
    ],
)
def test_07_2_wrong(capsys, summarise, hint):
    result = run("07.2", capsys, summarise=summarise)
    assert not result.passed and hint in result.line, result.line


# --------------------------------------------------------------------------- 07.3
def _comparison(seeds=(0, 1, 2)):
    # "a" wins when data are scarce, "b" with all of them.
    means = {("a", 0.05): 0.7, ("b", 0.05): 0.6, ("a", 1.0): 0.85, ("b", 1.0): 0.9}
    return Comparison(
        [
            {"recipe": r, "fraction": f, "seed": s, "accuracy": m + 0.01 * s, "wall_time": 0.1,
             "trainable_params": 10, "n_train": 10}
            for (r, f), m in means.items()
            for s in seeds
        ]
    )  # fmt: skip


def test_07_3_correct(capsys):
    result = run("07.3", capsys, comparison=_comparison(), winner="a")
    assert result.passed and "a wins at the smallest fraction" in result.line


def test_07_3_first_seed_is_not_the_mean(capsys):
    comparison = _comparison()
    comparison.rows[0]["accuracy"] = (
        0.0  # seed 0 of "a" at 0.05 collapses: "a" still leads one seed, not the mean
    )
    comparison.rows[1]["accuracy"] = 0.5
    result = run("07.3", capsys, comparison=comparison, winner="a")
    assert not result.passed and "compare the means" in result.line


@pytest.mark.parametrize(
    ("answers", "hint"),
    [
        ({"comparison": _comparison(), "winner": "b"}, "the question is the smallest"),
        ({"comparison": _comparison(seeds=(0,)), "winner": "a"}, "one seed"),
        ({"comparison": _comparison(), "winner": 0}, "give the recipe's name"),
        ({"comparison": _comparison(), "winner": "scratch"}, "not one of the compared recipes"),
        ({"comparison": [1, 2], "winner": "a"}, "tlcourse.train.compare"),
    ],
)
def test_07_3_wrong(capsys, answers, hint):
    result = run("07.3", capsys, **answers)
    assert not result.passed and hint in result.line, result.line


def test_07_3_not_attempted(capsys):
    assert run("07.3", capsys, comparison=_comparison()).line == "⏳ 07.3 not attempted yet"
