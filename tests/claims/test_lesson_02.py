"""Lesson 02's claims: the source-only model loses at least 20 points going from its source domain
(Fashion-MNIST) to the target domain made from the same images blended onto photo patches (``*_m``), and
not evenly: some classes lose far more than others. A frozen source + a new head learns new classes."""


def test_domain_gap_is_at_least_20_points(records):
    lesson = records("02")
    source, target, gap = lesson["source_acc"], lesson["target_acc"], lesson["gap"]
    assert abs(gap - (source - target)) < 1e-9, "the recorded gap is not source − target accuracy"
    assert source >= 0.80, f"the source model should be good on its own domain, got {source:.3f}"
    assert gap >= 0.20, f"source {source:.3f} − target {target:.3f} = {gap:.3f} < 0.20"


def test_inductive_demo_beats_chance(records):
    accuracy = records("02")["inductive_acc"]
    assert accuracy >= 0.20 + 0.20, f"a frozen source + head on 5 new classes reached only {accuracy:.3f}"


def test_the_drop_is_not_spread_evenly_over_the_classes(records):
    lesson = records("02")
    drops = lesson["drop_per_class"]
    assert len(drops) == 5
    spread = max(drops.values()) - min(drops.values())
    assert spread >= 0.10, f"the classes lost between {min(drops.values()):.3f} and {max(drops.values()):.3f}"
    # The per-class drops add up to the overall gap (the test split has the same number of images per class).
    assert abs(sum(drops.values()) / len(drops) - lesson["gap"]) < 0.05, (drops, lesson["gap"])
