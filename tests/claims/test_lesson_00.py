"""Lesson 00's claims: the ImageNet classifier of the run names scikit-image's `chelsea` a cat and `coffee`
espresso, its random-weight twin does not see a cat, and the plain-Keras lines (preprocessing as a layer, a
frozen base with a pooled Dense head) compute what `tlcourse.models.backbone` does."""

# ImageNet-1k class indices 281-285: tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat; 967: espresso.
IMAGENET_CATS = range(281, 286)
ESPRESSO = 967


def test_chelsea_is_named_a_cat(records):
    chelsea = records("00")["chelsea_top1"]
    assert chelsea["index"] in IMAGENET_CATS, f"chelsea's top-1 is {chelsea}, not an ImageNet cat class"
    assert 0.0 < chelsea["prob"] <= 1.0


def test_coffee_is_named_espresso(records):
    coffee = records("00")["coffee_top1"]
    assert coffee["index"] == ESPRESSO, f"coffee's top-1 is {coffee}, not espresso"


def test_the_same_architecture_with_random_weights_does_not_see_a_cat(records):
    random = records("00")["chelsea_top1_random"]
    assert random["index"] not in IMAGENET_CATS, f"random weights named chelsea {random}"


def test_a_rescaling_layer_is_mobilenet_v2s_preprocess_input(records):
    assert records("00")["rescaling_vs_preprocess_input"] < 1e-5


def test_the_plain_keras_base_is_what_backbone_builds(records):
    assert records("00")["backbone_vs_plain_keras_relative_difference"] < 1e-4


def test_only_the_new_head_is_trainable(records):
    counts = records("00")["transfer_model_trainable"]
    assert counts["trainable"] == 2 * 1280 + 2, counts  # a Dense(2) on MobileNetV2's 1,280 pooled features
    assert counts["total"] > 100 * counts["trainable"], counts
