"""Lesson 01's claim: with 10 labels per class on new classes, frozen pretrained features + a head beat
the same architecture trained from scratch by at least 20 points (mean over 3 seeds)."""


def test_transfer_beats_scratch_by_20_points_at_10_labels_per_class(records):
    results = records("01")["accuracy"]["10"]
    transfer, scratch = results["transfer"], results["scratch"]
    assert transfer["n"] >= 3 and scratch["n"] >= 3, f"need ≥ 3 seeds, got {transfer['n']} and {scratch['n']}"
    gap = transfer["mean"] - scratch["mean"]
    assert gap >= 0.20, f"transfer {transfer['mean']:.3f} − scratch {scratch['mean']:.3f} = {gap:.3f} < 0.20"


def test_every_budget_point_was_measured(records):
    accuracy = records("01")["accuracy"]
    assert {"1", "3", "10"} <= set(accuracy)
    for k, results in accuracy.items():
        for recipe in ("transfer", "scratch"):
            assert 0.0 <= results[recipe]["mean"] <= 1.0, (k, recipe, results[recipe])
