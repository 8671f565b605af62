"""Lesson 01's claims, read from what its run recorded.

- A frozen base runs in inference mode even when called in training mode (as ``fit()`` calls it) and
  changes nothing; the same base unfrozen does not (its BatchNorm layers use and store the batch's
  statistics).
- ``tlcourse.models.backbone`` computes the same features as the plain Keras lines (preprocessing, base,
  pooling).
- With 10 labels per class on new classes, frozen pretrained features + a head beat the same architecture
  trained from scratch by at least 20 points (mean over ≥ 3 seeds), and fitting a head takes less time
  than a scratch run.
- With 5 or 50 training images, seeds swing accuracy by ten points or more.
- Five times the epochs close at least half ("much") of the gap between scratch and transfer.
- ``tlcourse.reseed`` draws the same initial weights as ``keras.utils.set_random_seed``, and a scratch run
  after it is faster than after ``set_random_seed`` (which makes TensorFlow prepare the step again).
"""


def test_a_frozen_base_ignores_training_mode_and_an_unfrozen_one_does_not(records):
    frozen, unfrozen = records("01")["training_mode"]["frozen"], records("01")["training_mode"]["unfrozen"]
    # (how far the features moved, how far the stored weights moved) in one call with training=True
    assert frozen == [0.0, 0.0], f"the frozen base moved (features, weights) by {frozen} in training mode"
    assert unfrozen[0] >= 1e-2 and unfrozen[1] > 0, f"the unfrozen base moved only by {unfrozen}"


def test_backbone_gives_the_features_of_the_plain_keras_lines(records):
    difference = records("01")["backbone_vs_plain_keras"]
    assert difference <= 1e-4, f"backbone and the plain Keras lines differ by {difference}"


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


def test_a_head_is_fitted_in_a_fraction_of_a_scratch_run(records):
    seconds = records("01")["seconds_per_run"]
    assert seconds["transfer"] < seconds["scratch"], seconds


def test_seeds_swing_accuracy_by_ten_points_or_more(records):
    spread = records("01")["largest_seed_spread"]
    assert spread >= 0.10, f"the largest spread between seeds is {spread:.3f}"


def test_five_times_the_epochs_close_much_of_the_gap(records):
    lesson = records("01")
    longer, short = lesson["scratch_longer"], lesson["accuracy"]["10"]["scratch"]
    assert longer["n"] >= 3 and longer["epochs"] == 5 * lesson["scratch_epochs"]
    assert longer["mean"] > short["mean"], f"{longer['mean']:.3f} ≤ {short['mean']:.3f}"
    assert longer["gap_closed"] >= 0.5, (
        f"the longer training closed only {longer['gap_closed']:.0%} of the gap"
    )


def test_reseed_draws_the_same_weights_and_keeps_the_prepared_step(records):
    reseed = records("01")["reseed"]
    assert reseed["same_weights"], "tlcourse.reseed and keras.utils.set_random_seed drew different weights"
    after_keras, after_reseed = (
        reseed["seconds"]["keras.utils.set_random_seed"],
        reseed["seconds"]["tlcourse.reseed"],
    )
    assert after_keras > after_reseed, (
        f"after set_random_seed {after_keras:.2f} s, after reseed {after_reseed:.2f} s"
    )
