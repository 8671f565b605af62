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


def test_class_accuracy_falls_as_its_weight_shrinks(records):
    """ "Read the figure from right to left: as its weight shrinks, the 'class' task loses accuracy"."""
    weights = records("08")["loss_weights"]
    by_weight = [weights[w]["class"] for w in ("1.0", "0.1", "0.01")]
    assert by_weight[0] > by_weight[1] > by_weight[2], weights


def test_the_group_task_hardly_moves(records):
    """ "The 'group' task hardly moves": within 2 points of the balanced run at every weight."""
    weights = records("08")["loss_weights"]
    balanced = weights["1.0"]["group"]
    assert all(abs(weights[w]["group"] - balanced) <= 0.02 for w in ("0.1", "0.01")), weights


def test_multi_task_beats_the_majority_on_both_tasks_in_every_recipe(records):
    r = records("08")
    for recipe in ("multi-task", "single-task"):
        assert r["accuracy"][recipe]["group"]["mean"] > r["group_majority_baseline"] + 0.2
        assert r["accuracy"][recipe]["class"]["mean"] > 0.5  # 10 classes: chance is 0.1
