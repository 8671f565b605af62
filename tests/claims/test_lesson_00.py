"""Lesson 00's claim: the (offline) ImageNet classifier names scikit-image's `chelsea` a cat."""

# ImageNet-1k class indices 281-285: tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat.
IMAGENET_CATS = range(281, 286)


def test_chelsea_is_named_a_cat(records):
    chelsea = records("00")["chelsea_top1"]
    assert chelsea["index"] in IMAGENET_CATS, f"chelsea's top-1 is {chelsea}, not an ImageNet cat class"
    assert 0.0 < chelsea["prob"] <= 1.0


def test_the_same_architecture_with_random_weights_does_not_see_a_cat(records):
    random = records("00")["chelsea_top1_random"]
    assert random["index"] not in IMAGENET_CATS, f"random weights named chelsea {random}"
