"""Lesson 10's claims: EfficientNet-Lite0 is 6.9× smaller than ResNet50; the folder pipeline gives every
epoch all training images in a new order, and later partial reads keep every image; on validation feature
extraction beats the small CNN from scratch and the model is chosen there; only the chosen model meets the
test split, far above chance; fine-tuning kept every BatchNorm layer frozen and used augmentation; the
``.keras`` file loads back to the same function; TFLite with 8-bit weights is several times smaller and keeps
almost every prediction."""

import pytest


def test_lite0_is_6_9_times_smaller_than_resnet50(records):
    lesson = records("10")
    assert lesson["times_smaller_than_resnet50"] == pytest.approx(6.9, abs=0.05)


def test_every_epoch_reads_all_training_images_in_a_new_order(records):
    lesson = records("10")
    orders = lesson["epoch_orders"]
    assert orders["new_order"] is True, orders
    assert orders["images"] == orders["train_split"], orders


def test_partial_reads_after_the_filling_pass_leave_every_image_in_the_cache(records):
    rows = records("10")["feature_rows"]  # extract_features peeks at its data before its full pass
    assert rows["train"] == rows["splits"]["train"] and rows["val"] == rows["splits"]["val"], rows


def test_feature_extraction_beats_the_scratch_baseline_on_validation(records):
    lesson = records("10")
    val = lesson["val_acc"]
    assert val["extraction"] >= val["baseline"] + 0.03, f"{lesson['dataset']}: {val}"


def test_the_model_was_chosen_on_validation(records):
    lesson = records("10")
    val = lesson["val_acc"]
    assert set(val) == {"baseline", "extraction", "fine-tuned"}
    assert val[lesson["chosen"]] == max(val.values()), f"chose {lesson['chosen']} with validation {val}"
    assert lesson["chosen"] != "baseline"


def test_the_chosen_model_is_far_above_chance_on_the_test_split(records):
    lesson = records("10")
    chance = 1 / lesson["classes"]
    assert lesson["test_acc"] >= 0.8 > 3 * chance, (
        f"test accuracy {lesson['test_acc']:.3f}, chance {chance:.3f}"
    )
    assert lesson["mistakes"] == round((1 - lesson["test_acc"]) * lesson["test_examples"])


def test_fine_tuning_kept_batchnorm_frozen_and_augmented(records):
    lesson = records("10")
    assert lesson["trainable_batchnorm"] == 0
    assert {"RandomFlip", "RandomRotation"} <= set(lesson["augmentation_layers"])


def test_reloaded_keras_file_gives_identical_predictions(records):
    lesson = records("10")
    assert lesson["reload_same_predictions"] is True
    assert lesson["reload_max_abs_diff"] <= 1e-5, (
        f"largest logit difference {lesson['reload_max_abs_diff']:.2e}"
    )


def test_tflite_with_8_bit_weights_is_several_times_smaller(records):
    deploy = records("10")["deploy"]
    assert deploy["tflite"] * 3 <= deploy["keras"], deploy


def test_tflite_with_8_bit_weights_keeps_almost_every_prediction(records):
    deploy = records("10")["deploy"]
    assert deploy["agree"] >= 0.95, deploy
    assert deploy["max_diff"] > 0, "8-bit weights changed no logit: was the model quantised?"
