"""Lesson 10's claims: on the held-out test split, a frozen ImageNet base + linear head (feature extraction)
beats the small CNN trained from scratch on the same images, and the model saved as a ``.keras`` file and
loaded back predicts exactly like the original."""


def test_feature_extraction_beats_the_scratch_baseline_on_the_test_split(records):
    lesson = records("10")
    extraction, baseline = lesson["extraction_test_acc"], lesson["baseline_test_acc"]
    assert extraction >= baseline + 0.05, (
        f"{lesson['dataset']}: extraction {extraction:.3f} vs scratch {baseline:.3f} "
        f"on {lesson['test_examples']} test images"
    )


def test_the_model_was_chosen_on_validation_and_evaluated_once(records):
    lesson = records("10")
    val = lesson["val_acc"]
    assert set(val) == {"baseline", "extraction", "fine-tuned"}
    assert val[lesson["chosen"]] == max(val.values()), f"chose {lesson['chosen']} with validation {val}"
    assert lesson["test_examples"] > 0


def test_reloaded_keras_file_gives_identical_predictions(records):
    lesson = records("10")
    assert lesson["reload_same_predictions"] is True
    assert lesson["reload_max_abs_diff"] <= 1e-5, (
        f"largest logit difference {lesson['reload_max_abs_diff']:.2e}"
    )
