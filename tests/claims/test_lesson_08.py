"""Lesson 08's claim: one multi-task model (one base, two heads) matches two single-task models within
3 points on each task (mean over the budget's seeds, same epochs), with one base instead of two; and a
loss weighting that starves a task costs it accuracy."""


def test_multi_task_matches_single_task_within_3_points(records):
    accuracy = records("08")["accuracy"]
    for task in ("class", "group"):
        multi, single = accuracy["multi-task"][task], accuracy["single-task"][task]
        assert multi["n"] >= 3 and single["n"] >= 3, (
            f"{task}: need ≥ 3 seeds, got {multi['n']} and {single['n']}"
        )
        gap = abs(multi["mean"] - single["mean"])
        assert gap <= 0.03, (
            f"{task}: multi-task {multi['mean']:.3f} vs single-task {single['mean']:.3f} ({gap:.3f})"
        )


def test_one_base_instead_of_two(records):
    params = records("08")["params"]
    saved = params["single_task_total"] - params["multi_task"]
    assert saved == params["base"] + params["shared_layer"], params
    assert params["base"] > 0 and params["multi_task"] < params["single_task_total"]


def test_a_starved_task_loses_accuracy(records):
    weights = records("08")["loss_weights"]
    balanced, starved = weights["1.0"]["class"], weights["0.01"]["class"]
    assert balanced - starved >= 0.03, f"class accuracy {balanced:.3f} (w=1) vs {starved:.3f} (w=0.01)"
    assert records("08")["accuracy"]["multi-task"]["group"]["mean"] > records("08")["group_majority_baseline"]
