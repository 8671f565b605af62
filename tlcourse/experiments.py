"""Comparisons: run training recipes on the same labelled subsets and seeds, and summarise them.

Lesson 07 compares training from scratch, feature extraction and fine-tuning this way over data
fractions and seeds; :func:`tlcourse.viz.compare` plots the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tlcourse import env
from tlcourse.errors import ConfigError, DataError
from tlcourse.introspect import trainable_params

__all__ = ["Comparison", "compare"]


@dataclass
class Comparison:
    """The result of :func:`compare`: one row per run, and a summary over seeds.

    Examples
    --------
    >>> rows = [{"recipe": "a", "fraction": 1.0, "seed": s, "accuracy": acc, "wall_time": 1.0,
    ...          "trainable_params": 10} for s, acc in enumerate((0.8, 0.6))]
    >>> s = Comparison(rows).summary()[0]
    >>> round(s["mean"], 2), round(s["std"], 3), s["n"]
    (0.7, 0.141, 2)
    """

    rows: list[dict[str, Any]]

    def summary(self) -> list[dict[str, Any]]:
        """Mean ± std (sample, ddof=1) of the accuracy per recipe × fraction, in first-seen order."""
        groups: dict[tuple, list[dict]] = {}
        for row in self.rows:
            groups.setdefault((row["recipe"], row["fraction"]), []).append(row)
        out = []
        for (recipe, fraction), rows in groups.items():
            acc = np.array([r["accuracy"] for r in rows], dtype=float)
            out.append({
                "recipe": recipe, "fraction": fraction, "mean": float(acc.mean()), "n": len(acc),
                "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "wall_time": float(np.mean([r["wall_time"] for r in rows])),
                "trainable_params": int(np.median([r["trainable_params"] for r in rows])),
            })  # fmt: skip
        return out

    def table(self) -> str:
        lines = [
            f"{'recipe':<20} {'fraction':>8} {'accuracy':>15} {'seeds':>5} {'wall s':>7} {'trainable':>10}"
        ]
        for s in self.summary():
            fraction = _fraction_label(s["fraction"])
            lines.append(
                f"{s['recipe']:<20} {fraction:>8} {s['mean']:>7.3f} ± {s['std']:<5.3f} {s['n']:>5} "
                f"{s['wall_time']:>7.1f} {s['trainable_params']:>10,}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Comparison({len(self.rows)} runs)\n{self.table()}"


def _fraction_label(fraction) -> str:
    return f"{fraction}/cls" if isinstance(fraction, (int, np.integer)) else f"{float(fraction):.0%}"


def _subsample(x: np.ndarray, y: np.ndarray, fraction, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: an int ``k`` keeps k examples, a float keeps that fraction (at least one)."""
    rng, ids, keep = np.random.default_rng(seed), (y.argmax(-1) if y.ndim > 1 else y), []
    for cls in np.unique(ids):
        members = np.flatnonzero(ids == cls)
        whole = isinstance(fraction, (int, np.integer))
        count = min(len(members), int(fraction)) if whole else max(1, round(float(fraction) * len(members)))
        keep.append(rng.choice(members, size=count, replace=False))
    chosen = np.sort(np.concatenate(keep))
    return x[chosen], y[chosen]


def compare(
    recipes: Mapping[str, Callable],
    data,
    *,
    seeds: Sequence[int] | int | None = None,
    fractions: Sequence[float | int] = (0.1, 1.0),
    batch_size: int | None = None,
    verbose: bool = True,
) -> Comparison:
    """Run training recipes on the same labelled subsets and seeds, and measure them on the test split.

    Parameters
    ----------
    recipes : dict of name → callable(train, val, seed) returning a trained model (logits out)
        ``train`` and ``val`` are numpy ``(x, y)`` pairs.
    data : DataBundle or ((x, y), (x_val, y_val), (x_test, y_test)) arrays
    seeds : sequence of int, or int n for ``range(n)``
        Default: the profile's seeds.
    fractions : sequence of float or int
        A float keeps that fraction of the training set per class; an int that many per class.

    Returns
    -------
    Comparison
        ``.rows`` (recipe, fraction, seed, accuracy, wall_time, trainable_params, n_train) and
        ``.summary()`` (mean ± std per recipe × fraction).

    Examples
    --------
    >>> y = np.arange(60) % 2
    >>> x = (np.random.default_rng(0).normal(size=(60, 4)) + 4 * y[:, None]).astype("float32")
    >>> from tlcourse.train import fit_head
    >>> def logistic(train, val, seed):
    ...     return fit_head(*train, epochs=20, learning_rate=0.05, seed=seed, verbose=0)[0]
    >>> c = compare({"logistic": logistic}, ((x, y), (x, y), (x, y)), seeds=2, fractions=(0.5,), verbose=False)
    >>> [(row["recipe"], row["seed"], row["n_train"]) for row in c.rows]
    [('logistic', 0, 30), ('logistic', 1, 30)]
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds or env.current().budget.seeds)
    if not recipes or not all(callable(r) for r in recipes.values()):
        raise ConfigError(
            "recipes must map names to functions (train, val, seed) → trained model.",
            hint='E.g. compare({"scratch": train_scratch, "extraction": train_head}, data).',
        )
    if hasattr(data, "arrays"):  # a DataBundle
        data = (
            data.arrays("train"),
            data.arrays("val"),
            data.arrays("test" if data.sizes.get("test") else "val"),
        )
    if not (isinstance(data, (tuple, list)) and len(data) == 3 and all(len(part) == 2 for part in data)):
        raise DataError(
            "compare() needs a DataBundle or (train, val, test) pairs of arrays.",
            hint="Pass tlcourse.data.load(...) or ((x, y), (x_val, y_val), (x_test, y_test)).",
        )
    (x, y), val, (x_test, y_test) = (tuple(np.asarray(a) for a in part) for part in data)
    truth, rows = (y_test.argmax(-1) if y_test.ndim > 1 else y_test), []
    with tqdm(
        total=len(recipes) * len(fractions) * len(seeds), desc="compare", disable=not verbose
    ) as progress:
        for fraction in fractions:
            for seed in seeds:
                subset = _subsample(x, y, fraction, seed)
                for name, recipe in recipes.items():
                    env.reseed(seed)  # keeps the recipes' traced steps (lesson 01)
                    started = time.perf_counter()
                    model = recipe(subset, val, seed)
                    wall = time.perf_counter() - started
                    logits = model.predict(
                        x_test, batch_size=batch_size or env.current().budget.batch_size, verbose=0
                    )
                    rows.append({
                        "recipe": name, "fraction": fraction, "seed": seed, "wall_time": wall,
                        "accuracy": float(np.mean(np.asarray(logits).argmax(-1) == truth)),
                        "trainable_params": trainable_params(model), "n_train": len(subset[0]),
                    })  # fmt: skip
                    progress.update(1)
    return Comparison(rows)
