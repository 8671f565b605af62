"""Checks of lesson 07."""

from __future__ import annotations

import numpy as np

from tlcourse import models
from tlcourse.checks.core import CheckFailed, register

# ImageNet top-1 (%) as published (keras.io/api/applications; MobileNetV3 and EfficientNet-Lite READMEs);
# the exercise notebook shows the same table.
PUBLISHED_TOP1_07 = {
    "vgg16": 71.3, "resnet50": 74.9, "inception_v3": 77.9, "xception": 79.0, "mobilenet_v2": 71.3,
    "efficientnet_b0": 77.1, "mobilenet_v3_small": 68.1, "efficientnet_lite0": 75.1,
}  # fmt: skip


def _pick_base_07(max_params, *, strict: bool = False) -> str | None:
    fits = [info for info in models.catalog() if info.params < max_params or (info.params == max_params
                                                                             and not strict)]  # fmt: skip
    best = max(fits, key=lambda info: PUBLISHED_TOP1_07[info.name], default=None)
    return None if best is None else best.name


@register("07.1")
def check_07_1(pick_base) -> str:
    """A function picking the most accurate base of the catalogue under a parameter budget."""

    if not callable(pick_base):
        raise CheckFailed("`pick_base` should be a function: def pick_base(max_params): ...")
    params = {info.name: info.params for info in models.catalog()}
    budgets = (1_000_000, 5_000_000, params["mobilenet_v2"], 25_000_000, 100_000)
    for budget in budgets:
        expected = _pick_base_07(budget)
        returned = pick_base(budget)
        if hasattr(returned, "name") and hasattr(returned, "params"):
            returned = returned.name
            if returned == expected:
                raise CheckFailed(
                    "pick_base returned a BaseInfo: return the base's name (info.name), a string"
                )
        if returned == expected:
            continue
        where = f"for max_params={budget:,}"
        if expected is None:
            raise CheckFailed(
                f"pick_base returned {returned!r} {where}, but no base has that few parameters: return None "
                "when nothing fits"
            )
        if returned is None:
            raise CheckFailed(f"pick_base returned None {where}, but {expected} ({params[expected]:,}) fits")
        if returned not in params:
            raise CheckFailed(f"pick_base returned {returned!r} {where}: return a name from catalog()")
        if params[returned] > budget:
            raise CheckFailed(
                f"pick_base returned {returned} {where}, which has {params[returned]:,} parameters: drop every "
                "base above the budget first"
            )
        if params[expected] == budget and returned == _pick_base_07(budget, strict=True):
            raise CheckFailed(
                f"pick_base {where} missed {expected}, which has exactly that many parameters: a base at the "
                "budget fits (use <=, not <)"
            )
        if PUBLISHED_TOP1_07[returned] < PUBLISHED_TOP1_07[expected]:
            raise CheckFailed(
                f"pick_base returned {returned} {where}, but {expected} also fits and is more accurate "
                f"({PUBLISHED_TOP1_07[expected]} % vs {PUBLISHED_TOP1_07[returned]} %): among the bases that fit, "
                "take the highest PUBLISHED_TOP1"
            )
        raise CheckFailed(
            f"pick_base returned {returned!r} {where}; the most accurate base that fits is {expected}"
        )
    return f"pick_base takes the most accurate base under the budget (checked {len(budgets)} budgets)"


def _rows_07() -> list[dict]:
    accuracy = {
        ("scratch", 0.1): (0.31, 0.45, 0.38), ("scratch", 1.0): (0.78, 0.81, 0.75),
        ("transfer", 0.1): (0.70, 0.79, 0.76), ("transfer", 1.0): (0.88, 0.89, 0.91),
    }  # fmt: skip
    return [
        {"recipe": recipe, "fraction": fraction, "seed": seed, "accuracy": value}
        for (recipe, fraction), values in accuracy.items()
        for seed, value in enumerate(values)
    ]


@register("07.2")
def check_07_2(summarise) -> str:
    """mean ± sample std per (recipe, fraction) from raw comparison rows."""

    if not callable(summarise):
        raise CheckFailed("`summarise` should be a function: def summarise(rows): ...")
    rows = _rows_07()
    table = summarise([dict(row) for row in rows])
    if not isinstance(table, dict):
        raise CheckFailed(
            f"summarise returned a {type(table).__name__}: return a dict {{(recipe, fraction): (mean, std)}}"
        )
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["recipe"], row["fraction"]), []).append(row["accuracy"])
    if set(table) != set(groups):
        if set(table) == {recipe for recipe, _ in groups}:
            raise CheckFailed(
                "summarise grouped by recipe only: the keys must be (recipe, fraction) pairs — each fraction is "
                "a different experiment"
            )
        raise CheckFailed(
            f"summarise's keys are {sorted(map(str, table))[:4]}: use one key (recipe, fraction) per group, e.g. "
            "('scratch', 0.1)"
        )
    for key, values in groups.items():
        value = table[key]
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise CheckFailed(f"summarise gave {value!r} for {key}: give a pair (mean, std)")
        mean, std = (float(v) for v in value)
        sample_std, population_std = float(np.std(values, ddof=1)), float(np.std(values))
        if abs(mean - np.mean(values)) > 1e-6:
            if abs(std - np.mean(values)) < 1e-6:
                raise CheckFailed(f"summarise gave (std, mean) for {key}: the pair is (mean, std)")
            raise CheckFailed(f"the mean for {key} is wrong: average the accuracy over that group's seeds")
        if abs(std - population_std) < 1e-6 and abs(std - sample_std) > 1e-6:
            raise CheckFailed(
                f"the std for {key} is the population std (ddof=0): over a few seeds use the sample standard "
                "deviation, np.std(values, ddof=1)"
            )
        if abs(std - sample_std) > 1e-6:
            raise CheckFailed(
                f"the std for {key} is wrong: np.std(values, ddof=1) of that group's accuracies"
            )
    return "summarise gives mean ± sample std per (recipe, fraction) (4 groups of 3 seeds)"


@register("07.3")
def check_07_3(comparison, winner) -> str:
    """A comparison over ≥ 2 recipes, fractions and seeds, and its winner at the smallest fraction."""

    rows = getattr(comparison, "rows", None)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise CheckFailed("`comparison` should be what tlcourse.train.compare(...) returns (it has .rows)")
    missing = {"recipe", "fraction", "seed", "accuracy"} - set(rows[0])
    if missing:
        raise CheckFailed(f"comparison.rows lack {sorted(missing)}: use tlcourse.train.compare")
    recipes = sorted({r["recipe"] for r in rows})
    fractions = sorted({r["fraction"] for r in rows})
    seeds = {r["seed"] for r in rows}
    if len(recipes) < 2:
        raise CheckFailed("the comparison has one recipe: pass both recipes to compare")
    if len(fractions) < 2:
        raise CheckFailed("the comparison has one data fraction: pass fractions=(small, large)")
    if len(seeds) < 2:
        raise CheckFailed(
            "the comparison ran one seed: a ranking from one run is noise; pass seeds=(0, 1, 2)"
        )
    if not all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows):
        raise CheckFailed(
            "comparison.rows hold accuracies outside [0, 1]: use tlcourse.train.compare's result"
        )

    def means(fraction):
        return {
            recipe: float(
                np.mean([r["accuracy"] for r in rows if r["recipe"] == recipe and r["fraction"] == fraction])
            )
            for recipe in recipes
        }

    at_smallest = means(fractions[0])
    expected = max(at_smallest, key=at_smallest.get)
    if not isinstance(winner, str):
        raise CheckFailed(
            f"`winner` is a {type(winner).__name__}: give the recipe's name, e.g. {recipes[0]!r}"
        )
    if winner not in recipes:
        raise CheckFailed(f"`winner` is {winner!r}, not one of the compared recipes {recipes}")
    if winner != expected:
        at_largest = means(fractions[-1])
        if winner == max(at_largest, key=at_largest.get):
            raise CheckFailed(
                f"{winner} wins at the largest fraction; the question is the smallest ({fractions[0]}), where "
                "labels are scarce"
            )
        raise CheckFailed(
            f"{winner} does not have the highest mean accuracy at fraction {fractions[0]}: compare the means "
            "over seeds (comparison.summary()), not single runs"
        )
    return f"{winner} wins at the smallest fraction ({len(recipes)} recipes, {len(seeds)} seeds)"
