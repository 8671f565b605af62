"""Lesson 07's claims: at the smallest data fraction scratch < feature extraction ≤ fine-tuning (means over
seeds; "≤" within one standard error of the difference, which the lesson measures and prints), and the gap
between the best transfer recipe and scratch shrinks as the training set grows."""

import math


def _comparison(records):
    recorded = records("07")
    comparison = recorded["comparison"]
    fractions = sorted(float(f) for f in recorded["fractions"])
    assert len(fractions) >= 2, f"need ≥ 2 data fractions, got {fractions}"
    return comparison, str(fractions[0]), str(fractions[-1])


def test_ranking_at_the_smallest_fraction(records):
    comparison, smallest, _ = _comparison(records)
    results = comparison[smallest]
    scratch, extraction, fine_tuning = (results[r] for r in ("scratch", "feature_extraction", "fine_tuning"))
    assert min(scratch["n"], extraction["n"], fine_tuning["n"]) >= 3, "need ≥ 3 seeds per recipe"
    assert scratch["mean"] < extraction["mean"], (scratch, extraction)
    # Fine-tuning starts from the feature-extraction head; a lower mean is accepted only within the
    # standard error of the difference measured over the seeds (the lesson prints it).
    standard_error = math.sqrt(
        extraction["std"] ** 2 / extraction["n"] + fine_tuning["std"] ** 2 / fine_tuning["n"]
    )
    assert fine_tuning["mean"] >= extraction["mean"] - standard_error, (
        extraction,
        fine_tuning,
        standard_error,
    )
    assert scratch["mean"] < fine_tuning["mean"], (scratch, fine_tuning)


def test_the_gap_shrinks_as_data_grows(records):
    comparison, smallest, largest = _comparison(records)

    def gap(fraction):
        results = comparison[fraction]
        best = max(results["feature_extraction"]["mean"], results["fine_tuning"]["mean"])
        return best - results["scratch"]["mean"]

    assert comparison[smallest]["n_train"] < comparison[largest]["n_train"]
    assert gap(largest) < gap(smallest), (
        f"gap {gap(smallest):.3f} at {smallest} vs {gap(largest):.3f} at {largest}"
    )


def test_speed_was_measured_and_accuracies_are_labelled_published(records):
    recorded = records("07")
    assert recorded["images_per_second"], "no base was timed"
    assert all(value > 0 for value in recorded["images_per_second"].values())
    assert set(recorded["images_per_second"]) <= set(recorded["published_top1"])
    assert all(50 < top1 < 90 for top1 in recorded["published_top1"].values())
