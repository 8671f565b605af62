"""Lesson 03's claims: a head trained on cached features matches the head trained with the frozen base
inside the model within 2 points, and trains at least 5× faster per epoch (both measured side by side
over the same epochs; the whole-run ratio, one-off costs included, must at least favour caching);
extract_features gives the features computed by hand; the cached features are float32 and smaller than the
images they come from."""


def test_cached_head_matches_in_graph_head_within_2_points(records):
    lesson = records("03")
    cached, in_graph = lesson["cached_acc"], lesson["in_graph_acc"]
    assert abs(cached - in_graph) <= 0.02, f"cached {cached:.3f} vs in-graph {in_graph:.3f}"
    assert in_graph > 1.5 / 10, f"the in-graph head did not learn ({in_graph:.3f})"


def test_cached_features_train_at_least_5x_faster_per_epoch(records):
    lesson = records("03")
    per_epoch = lesson["in_graph_epoch_seconds"] / lesson["head_epoch_seconds"]
    assert abs(per_epoch - lesson["speedup_per_epoch"]) < 1e-6 * per_epoch
    assert per_epoch >= 5, (
        f"in-graph epoch {lesson['in_graph_epoch_seconds']:.2f} s vs cached head epoch "
        f"{lesson['head_epoch_seconds']:.3f} s = {per_epoch:.1f}× < 5×"
    )


def test_cached_run_is_faster_end_to_end(records):
    lesson = records("03")
    assert lesson["cached_seconds"] < lesson["in_graph_seconds"], (
        f"{lesson['epochs']} epochs: cached {lesson['cached_seconds']:.1f} s, in-graph {lesson['in_graph_seconds']:.1f} s"
    )


def test_wrong_preprocessing_costs_accuracy(records):
    lesson = records("03")
    assert lesson["preprocessing_wrong_acc"] < lesson["preprocessing_right_acc"] - 0.2


def test_extract_features_gives_the_features_computed_by_hand(records):
    lesson = records("03")
    assert lesson["helper_same_labels"]
    assert lesson["helper_max_difference"] <= 1e-4, lesson["helper_max_difference"]


def test_cached_features_are_float32_and_smaller_than_the_images(records):
    sizes = records("03")["feature_bytes"]
    assert sizes["dtype"] == "float32"
    assert sizes["per_image"] < sizes["image_per_image"], sizes
