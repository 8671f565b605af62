"""Lesson 05's claims: for each pitfall, the broken run is measurably worse than the fixed one, and the
prose's statements about each run (curves, spreads over seeds, what a forgotten freeze destroys) hold."""

import numpy as np
import pytest

PITFALLS = {
    # name: the smallest margin by which the fixed run must be better (in the recorded metric's units)
    "overfitting": 0.05,  # validation loss
    "wrong_input_size": 0.05,  # accuracy, 32 px vs the profile's size
    "preprocessing_mismatch": 0.10,  # accuracy
    "forgetting_to_freeze": 0.30,  # source-task accuracy the base keeps
    "batchnorm_drift": 0.01,  # accuracy after a training-mode epoch without weight updates
    "learning_rate_too_high": 0.05,  # accuracy, mean over seeds
    "distant_source": 0.05,  # accuracy
    "selection_on_test": 0.01,  # optimism, mean over 200 splits
    "logits_vs_probabilities": 0.10,  # accuracy
}


@pytest.mark.parametrize("pitfall", sorted(PITFALLS))
def test_broken_run_is_measurably_worse(records, pitfall):
    result = records("05")["pitfalls"].get(pitfall)
    assert result is not None, f"the lesson recorded no pair for {pitfall}"
    gain = (
        result["fixed"] - result["broken"]
        if result["higher_is_better"]
        else result["broken"] - result["fixed"]
    )
    assert gain >= PITFALLS[pitfall], (
        f"{pitfall} ({result['metric']}): broken {result['broken']:.4g}, fixed {result['fixed']:.4g}"
    )


def test_wrong_input_size_raises_a_clear_error(records):
    assert records("05")["wrong_size_error"] == "ModelError"


def test_batchnorm_frozen_does_not_move(records):
    r = records("05")
    assert r["batchnorm_drift_fixed"] == 0.0 and r["batchnorm_drift_broken"] > 0.0
    # "the accuracy is exactly that of the model we started from"
    assert r["pitfalls"]["batchnorm_drift"]["fixed"] == r["batchnorm_accuracy_before"]


def test_overfitting_curves_turn_around(records):
    """Unregularised: training loss dives, validation loss climbs after its minimum; the fixed run stops early."""
    curves = records("05")["overfitting_curves"]
    broken, fixed = curves["broken"], curves["fixed"]
    assert broken["final_train_loss"] < 0.1
    assert broken["last_val_loss"] > broken["lowest_val_loss"] + 0.3
    assert broken["lowest_val_loss_epoch"] < broken["epochs_run"] // 2
    assert fixed["epochs_run"] < broken["epochs_run"]
    assert fixed["val_loss"] == pytest.approx(fixed["lowest_val_loss"], rel=1e-3)  # best weights restored


def test_augmentation_is_measured_over_seeds(records):
    runs = records("05")["augmentation"]
    assert len(runs["seeds"]) >= 3
    for name in ("with", "without"):
        assert len(runs[name]["val_loss"]) == len(runs[name]["test_accuracy"]) == len(runs["seeds"])


def test_augmentation_lowers_validation_loss_in_every_seed(records):
    runs = records("05")["augmentation"]
    assert all(w < wo for w, wo in zip(runs["with"]["val_loss"], runs["without"]["val_loss"], strict=True)), (
        runs
    )


def test_augmentation_does_not_raise_test_accuracy(records):
    """The prose says so: in this small-data set-up augmentation regularises but does not lift accuracy."""
    runs = records("05")["augmentation"]
    assert np.mean(runs["with"]["test_accuracy"]) <= np.mean(runs["without"]["test_accuracy"]), runs


def test_forgetting_to_freeze_counts_the_base(records):
    trainable = records("05")["forgetting_to_freeze"]["trainable"]
    assert trainable["unfrozen"] > 3 * trainable["frozen"]


def test_forgetting_to_freeze_moves_the_features(records):
    """Features move about as far as their own size in every seed; the frozen base's do not move."""
    r = records("05")["forgetting_to_freeze"]
    assert len(r["unfrozen"]["feature_change"]) >= 3
    assert min(r["unfrozen"]["feature_change"]) > 0.5
    assert r["frozen"]["feature_change"] == [0.0]


def test_forgetting_to_freeze_forgets_the_source_task(records):
    """The unfrozen base scores about chance on its source task; the frozen one keeps the pretrained accuracy."""
    r = records("05")["forgetting_to_freeze"]
    assert r["source_before"] > 0.8
    assert all(a == r["source_before"] for a in r["frozen"]["source_accuracy"])
    assert max(r["unfrozen"]["source_accuracy"]) < r["chance"] + 0.1


def test_forgetting_to_freeze_gains_nothing_on_the_target(records):
    r = records("05")["forgetting_to_freeze"]
    assert len(r["unfrozen"]["test_accuracy"]) >= 3
    assert np.mean(r["unfrozen"]["test_accuracy"]) <= np.mean(r["frozen"]["test_accuracy"])


def test_high_learning_rate_falls_below_head_only_and_low_keeps_it(records):
    runs = records("05")["learning_rate_runs"]
    assert len(runs["head_only"]) >= 3
    head_only = np.mean(runs["head_only"])
    assert np.mean(runs["broken"]) < head_only - 0.1
    assert np.mean(runs["fixed"]) >= head_only - 0.02


def test_distant_source_recovers_when_upsampled(records):
    r = records("05")
    upsampled = r["distant_source_upsampled"]
    native = r["pitfalls"]["distant_source"]["broken"]
    assert upsampled["accuracy"] > native + 0.1  # "recovers a lot"
    assert upsampled["size_ratio"] > 10  # the near source is "a far smaller network"


def test_selection_on_validation_is_nearly_honest(records):
    assert abs(records("05")["pitfalls"]["selection_on_test"]["fixed"]) < 0.02


def test_softmax_with_from_logits_is_rescued_with_a_warning(records):
    runs = records("05")["logits_runs"]
    assert runs["softmax_from_logits"]["warned"] and not runs["fixed"]["warned"]
    assert runs["softmax_from_logits"]["accuracy"] == pytest.approx(runs["fixed"]["accuracy"], abs=0.02)
