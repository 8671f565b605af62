"""Lesson 07's claims: at the smallest data fraction scratch < feature extraction ≤ fine-tuning (means over
seeds; "≤" within one standard error of the difference, which the lesson measures and prints), and the gap
between the best transfer recipe and scratch shrinks as the training set grows; feature extraction is the
cheapest recipe; one run moves with the seed; the speed is reported in the dtypes it ran in; and VGG16, with
its head, is several times larger than any other base, and larger but less accurate than the EfficientNets."""

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


def test_speed_is_reported_in_the_dtypes_it_ran_in(records):
    dtypes = records("07")["speed_dtypes"]
    compute = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(dtypes["precision"], "float32")
    assert (dtypes["compute"], dtypes["variables"]) == (compute, "float32"), dtypes


def test_vgg16_is_not_a_small_cnn(records):
    with_head = records("07")["with_head_millions"]
    assert abs(with_head["vgg16"] - 138.4) < 0.1, with_head  # keras.io/api/applications lists 138.4 M
    assert all(with_head["vgg16"] > 5 * value for name, value in with_head.items() if name != "vgg16"), (
        with_head
    )


def test_vgg16_is_larger_and_less_accurate_than_the_efficientnets(records):
    for small, facts in records("07")["vgg16_vs_efficientnets"].items():
        assert facts["params_ratio"] > 3 and facts["top1_difference"] < 0, (small, facts)


def test_feature_extraction_is_the_cheapest(records):
    costs = records("07")["costs"]
    for fraction in (str(f) for f in records("07")["fractions"]):
        scratch, extraction, fine_tuning = (
            costs[f"{recipe}@{fraction}"] for recipe in ("scratch", "feature_extraction", "fine_tuning")
        )
        assert extraction["trainable_params"] < min(
            scratch["trainable_params"], fine_tuning["trainable_params"]
        )
        assert extraction["wall_time"] < fine_tuning["wall_time"], (fraction, extraction, fine_tuning)


def test_one_run_moves_with_the_seed(records):
    seed_range = records("07")["seed_range_smallest"]
    assert max(seed_range.values()) >= 0.05, seed_range  # 5 points between the best and the worst seed
