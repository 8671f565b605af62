"""tlcourse.data: offline paths for real; the online path through tfds' mock data, and failing downloads."""

from __future__ import annotations

import hashlib
import socket

import numpy as np
import pytest

from tlcourse import data, env
from tlcourse.errors import DataError, OfflineError

LOOPBACK_PREFIXES = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail the test on any connection attempt to a non-loopback address."""
    attempts = []
    original = socket.socket.connect

    def guarded(sock, address, *args):
        host = address[0] if isinstance(address, tuple) else str(address)
        if sock.family == socket.AF_UNIX or str(host).startswith(LOOPBACK_PREFIXES):
            return original(sock, address, *args)
        attempts.append(address)
        raise AssertionError(f"network attempt to {address} during an offline test")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield attempts
    assert not attempts, attempts


@pytest.fixture(autouse=True)
def offline_ci(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    monkeypatch.setenv("TLCOURSE_PROFILE", "ci")
    monkeypatch.setenv("TLCOURSE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path_factory.getbasetemp() / "tfds"))  # nothing prepared
    monkeypatch.delenv("TLCOURSE_DATA_DIR", raising=False)
    monkeypatch.setattr(env, "_current", None)
    monkeypatch.setattr(env, "_answered", {})
    monkeypatch.setattr(data, "_FAILED", {})


def digests(x) -> set[bytes]:
    if x.dtype == object:
        return {hashlib.sha1(t.encode()).digest() for t in x}
    return {hashlib.sha1(row.tobytes()).digest() for row in x.reshape(len(x), -1)}


def assert_disjoint(bundle):
    hashed = {s: digests(bundle.arrays(s)[0]) for s in ("train", "val", "test")}
    assert not hashed["train"] & hashed["val"]
    assert not hashed["train"] & hashed["test"]
    assert not hashed["val"] & hashed["test"]


# --------------------------------------------------------------------------- offline, for real
def test_fashion_mnist_from_debian_files_with_ci_caps():
    bundle = data.load("fashion_mnist")
    assert bundle.source == "debian:dataset-fashion-mnist"
    assert bundle.sizes == {"train": 600, "val": 400, "test": 400}  # ci: 60 train / 40 eval per class
    x, y = bundle.arrays("train")
    assert x.dtype == np.uint8 and x.shape == (600, 28, 28, 3) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [60] * 10
    assert (x[..., 0] == x[..., 2]).all()  # grayscale repeated over 3 channels
    image, label = next(iter(bundle.train))
    assert image.dtype.name == "uint8" and label.dtype.name == "int64"
    assert bundle.class_names[9] == "Ankle boot"
    assert_disjoint(bundle)


def test_local_sets_hold_no_duplicates():
    x_train, _, x_test, _ = data._fashion_raw(data._fashion_dir())
    train = digests(x_train)
    assert len(train) == 60_000 and len(digests(x_test)) == 10_000
    assert not train & digests(x_test)
    x, _ = data._digits_raw()
    assert len(digests(x)) == len(x) == 1797
    texts, _ = data._sentiment_rows()
    assert len(set(texts)) == len(texts)


def test_fashion_mnist_files_in_the_course_data_folder(monkeypatch, tmp_path):
    """The four .gz files keras.datasets downloads, put in data_dir()/fashion-mnist, serve without Debian's."""
    debian = data._fashion_dir()
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in data.FASHION_FILES:
        (folder / f"{name}-ubyte.gz").symlink_to(debian / f"{name}-ubyte.gz")
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("TLCOURSE_DATA_DIR", str(tmp_path / "data"))
    bundle = data.load("fashion_mnist")
    assert bundle.source == f"files in {folder}" and bundle.sizes["train"] == 600
    assert any(
        row["name"] == "fashion_mnist" and row["path"] == str(folder) for row in data.cached_datasets()
    )


def test_uncapped_load_keeps_test_official_and_val_from_train(monkeypatch):
    monkeypatch.delenv("TLCOURSE_PROFILE")
    bundle = data.load("fashion_mnist", val_fraction=0.1)
    assert bundle.sizes == {"train": 54_000, "val": 6_000, "test": 10_000}
    assert_disjoint(bundle)


def test_class_split_view_and_nested_label_subsets():
    one = data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=1, seed=3)
    ten = data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=10, seed=3)
    assert ten.name == "fashion_mnist[5-9]@10"
    assert ten.class_names == ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    x10, y10 = ten.arrays("train")
    assert np.bincount(y10).tolist() == [10] * 5
    assert digests(one.arrays("train")[0]) <= digests(x10)  # k=1 ⊂ k=10 for the same seed
    assert ten.sizes["test"] == 200  # test keeps the profile cap
    source = data.load("fashion_mnist", classes=[0, 1, 2, 3, 4])
    assert not digests(source.arrays("train")[0]) & digests(ten.arrays("test")[0])
    reordered = data.load("fashion_mnist", classes=[9, 5])
    assert reordered.name == "fashion_mnist[9,5]" and reordered.class_names == ["Ankle boot", "Sandal"]
    x, y = reordered.arrays("val")
    full_x, full_y = data._fashion_raw(data._fashion_dir())[:2]
    boot = {hashlib.sha1(r.tobytes()).digest() for r in full_x[full_y == 9]}
    assert all(
        hashlib.sha1(np.ascontiguousarray(img[..., 0]).tobytes()).digest() in boot for img in x[y == 0]
    )


@pytest.mark.parametrize("name", ["digits", "photos", "sentiment"])
def test_local_sets_are_disjoint_and_typed(name):
    bundle = data.load(name)
    assert_disjoint(bundle)
    x, y = bundle.arrays("test")
    assert set(np.unique(y)) == set(range(bundle.num_classes))
    if name == "sentiment":
        assert bundle.image_shape is None
        text, label = next(iter(bundle.train))
        assert text.dtype.name == "string" and label.dtype.name == "int64"
    else:
        assert x.dtype == np.uint8 and x.shape[1:] == bundle.image_shape and bundle.image_shape[2] == 3


def test_sentiment_csv_is_balanced_unique_and_large_enough():
    texts, labels = data._sentiment_rows()
    assert len(texts) >= 400 and len(set(texts)) == len(texts)
    assert labels.sum() * 2 == len(labels)


def test_sample_photos_are_rgb_uint8():
    photos = data.sample_photos()
    assert {"chelsea", "coffee", "astronaut", "rocket"} <= set(photos)
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in photos.values())


def test_mnist_m_recipe_is_abs_difference_seeded_and_cached(capsys):
    x = np.random.default_rng(0).integers(0, 256, size=(50, 28, 28, 3), dtype=np.uint8)
    patches = data._blend_with_photos(np.zeros_like(x), seed=4, salt=20)
    blended = data._blend_with_photos(x, seed=4, salt=20)
    assert np.array_equal(blended, np.abs(patches.astype(int) - x.astype(int)))
    assert not np.array_equal(patches, data._blend_with_photos(np.zeros_like(x), seed=5, salt=20))

    first = data.load("fashion_mnist_m", seed=1)
    built = capsys.readouterr().out
    assert "built fashion_mnist_m" in built
    again = data.load("fashion_mnist_m", seed=1)
    assert capsys.readouterr().out == ""  # read from the cache
    assert np.array_equal(first.arrays("test")[0], again.arrays("test")[0])
    base = data.load("fashion_mnist", seed=1)
    assert np.array_equal(first.arrays("test")[1], base.arrays("test")[1])
    assert not np.array_equal(first.arrays("test")[0], base.arrays("test")[0])
    assert first.name == "fashion_mnist_m" and first.image_shape == (28, 28, 3)
    assert_disjoint(first)
    assert any(row["name"] == "fashion_mnist_m" for row in data.cached_datasets())
    view = data.load("fashion_mnist_m", classes=[5, 6, 7, 8, 9], labels_per_class=2)
    assert view.name == "fashion_mnist_m[5-9]@2" and view.sizes["train"] == 10


def test_offline_standin_is_announced_in_one_line(capsys):
    bundle = data.load("cats_vs_dogs")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "offline: cats_vs_dogs → fashion_mnist stand-in" in lines[0]
    assert bundle.source == "debian:dataset-fashion-mnist"
    data.load("mnist_m", classes=[0, 1])
    lines = capsys.readouterr().out.strip().splitlines()
    assert "offline: mnist_m → digits_m stand-in" in lines[0]
    assert data.load("imdb_reviews").class_names == ["negative", "positive"]


def test_caps_follow_the_course_budget():
    course = type("C", (), {"budget": env.PROFILES["ci"].replace(train_per_class=5, eval_per_class=3)})()
    bundle = data.load("digits", course=course)
    assert bundle.sizes == {"train": 50, "val": 30, "test": 30}


def test_batches_pipeline_resizes_shuffles_and_augments():
    bundle = data.load("photos", labels_per_class=4)
    plain = bundle.batches("val", batch_size=16, image_size=32)
    images, labels = next(iter(plain))
    assert images.shape == (16, 32, 32, 3) and images.dtype.name == "uint8"
    assert [y.numpy().tolist() for _, y in plain] == [y.numpy().tolist() for _, y in plain]  # no shuffle
    augment = data.augmentation(seed=1)
    train = bundle.batches("train", batch_size=36, augment=augment)
    epoch1, epoch2 = (next(iter(train))[0].numpy() for _ in range(2))
    assert epoch1.shape == (36, 64, 64, 3) and not np.array_equal(epoch1, epoch2)
    assert [type(layer).__name__ for layer in augment.layers] == [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast"
    ]  # fmt: skip


def test_fetch_and_cached_datasets_offline():
    assert data.fetch("digits")["source"] == "sklearn"
    assert data.fetch("fashion_mnist")["source"] == "debian:dataset-fashion-mnist"
    with pytest.raises(OfflineError, match="Cannot download 'tf_flowers' from download.tensorflow.org"):
        data.fetch("tf_flowers")
    names = {row["name"] for row in data.cached_datasets()}
    assert {"digits", "photos", "sentiment", "fashion_mnist"} <= names


def test_missing_fashion_files_explain_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DataError, match="Fashion-MNIST's files are missing") as info:
        data.load("fashion_mnist")
    assert "apt-get install dataset-fashion-mnist" in info.value.hint
    assert "keras.datasets.fashion_mnist.load_data()" in info.value.hint


def test_data_dir_holds_tfds_data_and_the_course_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCOURSE_DATA_DIR", str(tmp_path / "drive"))
    assert data._builder("mnist").data_dir.startswith(str(tmp_path / "drive" / "tfds"))
    data.load("digits_m", labels_per_class=2)
    assert len(list((tmp_path / "drive").glob("digits_m-*.npz"))) == 1


# --------------------------------------------------------------------------- online code path (mocked tfds)
@pytest.fixture
def online(monkeypatch):
    import tensorflow_datasets.testing as tfds_testing  # tfds 4.9.10 does not import it with tfds

    monkeypatch.setenv("TLCOURSE_OFFLINE", "0")
    with tfds_testing.mock_data(num_examples=16):
        yield


def test_tfds_image_dataset_online(online, capsys):
    bundle = data.load("cats_vs_dogs", image_size=32)
    assert capsys.readouterr().out == ""
    assert bundle.source == "tfds" and bundle.class_names == ["cat", "dog"]
    x, y = bundle.arrays("train")
    assert x.shape[1:] == (32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert bundle.sizes["train"] == len(y) <= 2 * 60
    assert data._tfds_split_names(["train"], 0.1) == {
        "train": "train[:80%]", "val": "train[80%:90%]", "test": "train[90%:]"
    }  # fmt: skip
    assert data._tfds_split_names(["train", "test"], 0.1)["val"] == "train[90%:]"
    assert data._tfds_split_names(["train", "validation", "test"], 0.1)["val"] == "validation"


def test_tfds_views_and_text_online(online):
    flowers = data.load("tf_flowers", classes=[4, 0], image_size=24)
    assert flowers.class_names == ["roses", "dandelion"] and flowers.name == "tf_flowers[4,0]"
    assert set(np.unique(flowers.arrays("test")[1])) <= {0, 1}
    reviews = data.load("imdb_reviews")
    text, label = next(iter(reviews.train))
    assert text.dtype.name == "string" and label.dtype.name == "int64" and reviews.image_shape is None
    mnist_m = data.load("mnist_m", image_size=28)
    assert mnist_m.name == "mnist_m" and mnist_m.source == "tfds+mnist_m"


def test_prepared_tfds_data_is_used_offline(online, monkeypatch, capsys):
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    monkeypatch.setattr(data, "_tfds_prepared", lambda name: name == "tf_flowers")
    bundle = data.load("tf_flowers", image_size=16)
    assert bundle.source == "tfds" and capsys.readouterr().out == ""
    assert data.fetch("tf_flowers")["source"] == "tfds"


def test_download_hosts_come_from_the_tfds_builders():
    assert data._tfds_hosts("cats_vs_dogs") == ["download.microsoft.com"]
    assert data._tfds_hosts("imdb_reviews") == ["ai.stanford.edu:80"]
    assert data._tfds_hosts("oxford_iiit_pet")[0].endswith("robots.ox.ac.uk")


# --------------------------------------------------------------------------- a host is down
def a_course():
    return env.Course(profile="ci", budget=env.PROFILES["ci"], offline=False, colab=False, devices=[],
                      precision="float32", strategy=None, seed=0, versions={}, lesson="zz")  # fmt: skip


@pytest.fixture
def downloads(monkeypatch):
    """tfds' download_and_prepare, recording its calls and raising what the test sets in ``error``."""
    import tensorflow_datasets as tfds

    calls, error = [], [None]

    def download_and_prepare(builder, *args, download_dir=None, **kwargs):
        calls.append((builder.name, download_dir))
        raise error[0]

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download_and_prepare)
    return calls, error


def test_unreachable_host_falls_back_without_downloading(monkeypatch, downloads, capsys):
    """TLCOURSE_OFFLINE unset: the dataset's own host is probed, fails, and the lesson goes on offline."""
    calls, _ = downloads
    probed = []

    def unreachable(address, *args, **kwargs):
        probed.append(address)
        raise OSError(101, "Network is unreachable")

    monkeypatch.delenv("TLCOURSE_OFFLINE")
    monkeypatch.setattr(socket, "create_connection", unreachable)
    course = a_course()
    bundle = data.load("cats_vs_dogs", image_size=32, course=course)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [
        "ℹ️  tlcourse: download.microsoft.com did not answer: cats_vs_dogs → fashion_mnist stand-in "
        "(10 classes: T-shirt/top, Trouser, Pullover, Dress, Coat, …); the lesson continues offline"
    ]
    assert bundle.class_names[0] == "T-shirt/top" and bundle.image_shape == (32, 32, 3)
    assert course.offline is True and calls == []
    assert probed == [("download.microsoft.com", 443)]
    data.load("cats_vs_dogs", image_size=32, course=a_course())
    assert probed == [("download.microsoft.com", 443)]  # the host's answer is kept for the session


@pytest.mark.parametrize(
    ("error", "why"),
    [
        ("connection", "no connection"),
        ("404", "HTTP 404"),
        ("checksum", "checksum mismatch"),
        ("timeout", "timed out"),
    ],
)
def test_failed_download_falls_back_to_the_standin(downloads, monkeypatch, capsys, error, why):
    import requests
    from tensorflow_datasets.core.download import download_manager

    url = "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip"
    calls, raised = downloads
    raised[0] = {
        "connection": requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='download.microsoft.com', port=443): Max retries exceeded "
            "(Caused by NewConnectionError('Failed to establish a new connection: [Errno -2] Name or service not known'))"
        ),
        "404": __import__("tensorflow_datasets").download.DownloadError(
            f"Failed to get url {url}. HTTP code: 404."
        ),
        "checksum": download_manager.NonMatchingChecksumError(
            f"Artifact {url}, downloaded to /tmp/x, has wrong checksum"
        ),
        "timeout": requests.exceptions.ReadTimeout(
            "HTTPSConnectionPool(host='download.microsoft.com'): Read timed out."
        ),
    }[error]
    course = a_course()
    monkeypatch.setenv("TLCOURSE_OFFLINE", "0")  # forced online: no probe, the download itself fails
    bundle = data.load("cats_vs_dogs_m", course=course)
    again = data.load("cats_vs_dogs")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == (
        f"ℹ️  tlcourse: download.microsoft.com failed ({why}): cats_vs_dogs_m → fashion_mnist_m stand-in "
        "(10 classes: T-shirt/top, Trouser, Pullover, Dress, Coat, …); the lesson continues offline"
    )
    assert bundle.name == "fashion_mnist_m" and again.name == "fashion_mnist"
    assert course.offline is True and calls == [("cats_vs_dogs", None)]  # a failed download is not retried


def test_with_a_data_dir_the_archives_stay_on_the_local_disk(downloads, monkeypatch, tmp_path, capsys):
    calls, raised = downloads
    raised[0] = TimeoutError("timed out")
    monkeypatch.setenv("TLCOURSE_OFFLINE", "0")
    monkeypatch.setenv("TLCOURSE_DATA_DIR", str(tmp_path / "drive"))
    data.load("tf_flowers", image_size=32)
    assert calls == [("tf_flowers", str(env.cache_dir("downloads")))]
    assert (
        "download.tensorflow.org failed (timed out): tf_flowers → fashion_mnist stand-in"
        in capsys.readouterr().out
    )


def test_fetch_says_which_host_failed(downloads, monkeypatch):
    import tensorflow_datasets as tfds

    _, raised = downloads
    raised[0] = tfds.download.DownloadError(
        "Failed to get url http://ai.stanford.edu/x.tar.gz. HTTP code: 503."
    )
    monkeypatch.setenv("TLCOURSE_OFFLINE", "0")
    with pytest.raises(
        DataError, match=r"Downloading 'imdb_reviews' from ai.stanford.edu failed \(HTTP 503\)"
    ):
        data.fetch("imdb_reviews")


# --------------------------------------------------------------------------- bad input
def test_unknown_dataset_suggests_the_closest():
    with pytest.raises(DataError) as info:
        data.load("fashion_minst")
    assert "fashion_mnist" in info.value.hint


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"classes": [3, 10]}, "out of range"),
        ({"classes": [3, 3]}, "twice"),
        ({"classes": [3]}, "fewer than 2"),
        ({"labels_per_class": 7000}, "more than"),
        ({"val_fraction": 0.7}, "between 0 and 0.5"),
    ],
)
def test_bad_options_raise_data_errors_with_hints(options, message):
    with pytest.raises(DataError, match=message) as info:
        data.load("fashion_mnist", **options)
    assert info.value.hint
