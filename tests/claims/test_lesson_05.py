"""Lesson 05's claims: for each pitfall, the broken run is measurably worse than the fixed one."""

import pytest

PITFALLS = {
    # name: the smallest margin by which the fixed run must be better (in the recorded metric's units)
    "overfitting": 0.05,  # validation loss
    "wrong_input_size": 0.05,  # accuracy, 32 px vs the profile's size
    "preprocessing_mismatch": 0.10,  # accuracy
    "forgetting_to_freeze": 10_000,  # trainable parameters
    "batchnorm_drift": 0.01,  # accuracy after a training-mode epoch without weight updates
    "learning_rate_too_high": 0.05,  # accuracy
    "distant_source": 0.05,  # accuracy
    "selection_on_test": 0.01,  # optimism, mean over 30 splits
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
