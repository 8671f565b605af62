"""Lesson 02's claim: the source-only model loses at least 20 points going from its source domain
(Fashion-MNIST) to the target domain made from the same images blended onto photo patches (``*_m``)."""


def test_domain_gap_is_at_least_20_points(records):
    lesson = records("02")
    source, target, gap = lesson["source_acc"], lesson["target_acc"], lesson["gap"]
    assert abs(gap - (source - target)) < 1e-9, "the recorded gap is not source − target accuracy"
    assert source >= 0.80, f"the source model should be good on its own domain, got {source:.3f}"
    assert gap >= 0.20, f"source {source:.3f} − target {target:.3f} = {gap:.3f} < 0.20"


def test_inductive_demo_beats_chance(records):
    accuracy = records("02")["inductive_acc"]
    assert accuracy >= 0.20 + 0.20, f"a frozen source + head on 5 new classes reached only {accuracy:.3f}"
