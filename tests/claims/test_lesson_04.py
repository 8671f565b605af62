"""Lesson 04's claims: fine-tuning the top of the base with BatchNorm frozen ends at least where feature
extraction was, and BN left trainable is worse or visibly drifts; fine-tuning on the cached outputs of the
frozen bottom is the same model; the stage schedule is Keras's CosineDecay; and, over three seeds,
discriminative learning rates and progressive unfreezing change how far the layers move but do not beat the
one-stage recipe beyond the seed-to-seed spread."""

import numpy as np

# Drift is measured in standard deviations of the stored statistics: mean |Δ moving_mean| / std per BN layer.
# With BN frozen it is exactly 0; 0.01 std is far above float round-off and a visible change in the plot.
DRIFT_THRESHOLD = 0.01


def test_fine_tuning_with_bn_frozen_is_at_least_feature_extraction(records):
    r = records("04")
    # The lesson: an accuracy on its test set is known to about ± one standard error, and the test of this
    # claim allows half of one (0.01 for 200 images at 0.9), no more.
    tolerance = 0.5 * r["accuracy_standard_error"]
    assert tolerance <= 0.5 / np.sqrt(r["n_test"]) + 1e-12
    assert r["acc_ft_bn_frozen"] >= r["acc_feature_extraction"] - tolerance, (
        f"fine-tuned {r['acc_ft_bn_frozen']:.3f} < feature extraction {r['acc_feature_extraction']:.3f} − {tolerance:.3f}"
    )


def test_bn_left_trainable_is_worse_or_drifts(records):
    r = records("04")
    assert r["bn_drift_frozen"] == 0.0, "BN layers with trainable=False must not move"
    worse = r["acc_bn_trainable"] < r["acc_ft_bn_frozen"]
    drifted = r["bn_drift"] > DRIFT_THRESHOLD
    assert worse or drifted, (
        f"BN trainable: accuracy {r['acc_bn_trainable']:.3f} vs {r['acc_ft_bn_frozen']:.3f} (frozen), "
        f"drift {r['bn_drift']:.4f} ≤ {DRIFT_THRESHOLD}"
    )


def test_training_false_does_not_protect_a_trainable_batchnorm_layer(records):
    change = records("04")["toy_bn_change"]
    assert change["trainable"] > 1e-3 and change["frozen"] == 0.0, change


def test_the_cached_bottom_trains_the_same_model(records):
    # Logits of the whole model on the images vs. the top on the cached bottom outputs, before and after
    # fine-tuning: float32 round-off only.
    assert records("04")["split_logit_difference"] < 1e-3


def test_the_stage_schedule_is_keras_cosine_decay(records):
    assert records("04")["stage_schedule_is_keras_cosine_decay"] is True


def test_frozen_maps_stay_and_fine_tuned_maps_change(records):
    change = records("04")["map_change"]
    assert change["frozen"] == 0.0 and change["fine_tuned"] > 0.0, change


def test_discriminative_rates_move_the_lower_block_about_a_tenth_as_far(records):
    ratio = records("04")["moved_ratio_9"]
    assert ratio["discriminative, lower block"] <= 0.3, ratio
    assert 0.5 <= ratio["discriminative, above it"] <= 2.0, ratio


def test_progressive_unfreezing_moves_the_late_group_less(records):
    ratio = records("04")["moved_ratio_9"]
    assert ratio["progressive, the late group"] < 1.0, ratio


def test_no_refinement_beats_one_stage_beyond_the_spread_over_three_seeds(records):
    r = records("04")
    recipes = r["recipes_9"]
    assert all(len(recipe["accuracies"]) >= 3 for recipe in recipes.values())
    spread = max(recipe["std"] for recipe in recipes.values())
    for name in ("progressive", "discriminative"):
        assert recipes[name]["gap_mean"] <= spread, (
            f"{name} beats one stage by {recipes[name]['gap_mean']:+.3f}, more than the spread {spread:.3f}"
        )
    largest = max(abs(recipes[name]["gap_mean"]) for name in ("progressive", "discriminative"))
    assert r["verdict_9"] == ("within" if largest <= spread else "beyond")
