"""Datasets for the lessons: one small, typed :class:`DataBundle` whatever the source.

``load(name)`` gives ``train`` / ``val`` / ``test`` as unbatched ``tf.data.Dataset`` of
``(image uint8 [H, W, 3], label int64)`` (or ``(text tf.string, label int64)``). The splits never
overlap, and ``val`` always comes from the training data: the test split is never used for model
selection. ``bundle.batches("train")`` builds the input pipeline.

Data on this machine come first: Fashion-MNIST's files (Debian's, or those ``keras.datasets`` downloads)
and what tensorflow-datasets has prepared (``tlcourse fetch NAME``); otherwise tfds downloads the data
(into ``data_dir()/tfds`` when ``TLCOURSE_DATA_DIR`` is set). Offline, when the host does not answer or
the download fails, ``load`` says so in one line and uses its stand-in (``TFDS_DATASETS``); the last
``setup()``'s course then turns offline, so the lesson goes on as it does offline.

Always local: ``digits`` (scikit-learn's, upscaled to 28 × 28), ``photos`` (crops of scikit-image's photos,
one class per photo, each photo's tiles divided between the splits) and ``sentiment`` (≥ 400 sentences,
CC0); none holds an exact duplicate (the tests check). ``<image set>_m`` is a target domain made with the
MNIST-M recipe (``|patch − image|`` with a random patch of a bundled photo; seeded, cached);
``classes=[5, 6, 7, 8, 9]`` keeps those classes, relabelled 0..4; ``labels_per_class=10`` keeps 10
training examples per class, nested across k for one seed.

A folder of your own images, one sub-folder per class, needs no helper: Keras's
``image_dataset_from_directory`` lists and decodes it, ``cache()`` keeps the decoded images after the
first epoch and ``prefetch`` overlaps reading with training (``python -m bench --only 2`` measures it).
Cache single images, then shuffle and batch: a ``cache()`` after a shuffle replays the first epoch's
order in every epoch. Read the cache once completely before any partial read (a peek, a ``take``):
one stopped early can leave an in-memory cache of single images truncated (lesson 10).

>>> import pathlib, tempfile, numpy as np, keras, tensorflow as tf
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> for i in range(20):  # 10 images in each of two class folders, a/ and b/
...     (folder / "ab"[i % 2]).mkdir(exist_ok=True)
...     keras.utils.save_img(folder / "ab"[i % 2] / f"{i}.jpg", np.full((40, 40, 3), 12 * i, np.uint8))
>>> train, val = keras.utils.image_dataset_from_directory(
...     folder, validation_split=0.2, subset="both", seed=0, image_size=(32, 32), batch_size=None, verbose=False)
Using 16 files for training.
Using 4 files for validation.
>>> train = train.cache().shuffle(16, seed=0).batch(8).prefetch(tf.data.AUTOTUNE)
>>> [tuple(images.shape) for images, labels in train]
[(8, 32, 32, 3), (8, 32, 32, 3)]
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tlcourse import env
from tlcourse.errors import DataError, OfflineError, unknown_name

__all__ = ["DataBundle", "augmentation", "cached_datasets", "fetch", "load", "sample_photos"]

RECIPE_VERSION = 1  # bump when the *_m blending or the photos crops change: old caches are then ignored
FASHION_DIR = Path(os.environ.get("TLCOURSE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_FILES = ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
PHOTO_CLASSES = {  # class name -> skimage photo
    "cat": "chelsea", "coffee": "coffee", "astronaut": "astronaut", "rocket": "rocket",
    "galaxies": "hubble_deep_field", "tissue": "immunohistochemistry",
    "brick": "brick", "grass": "grass", "gravel": "gravel",
}  # fmt: skip
CLASSES = {  # the local sets' class names
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "digits": [str(d) for d in range(10)], "photos": list(PHOTO_CLASSES), "sentiment": ["negative", "positive"],
}  # fmt: skip
TFDS_DATASETS = {  # tensorflow-datasets name -> its offline stand-in
    "cats_vs_dogs": "fashion_mnist", "tf_flowers": "fashion_mnist", "oxford_iiit_pet": "fashion_mnist",
    "beans": "photos", "mnist": "digits", "imdb_reviews": "sentiment", "fashion_mnist": "fashion_mnist",
}  # fmt: skip
TEXT_DATASETS = {"sentiment", "imdb_reviews"}
KNOWN = sorted({*TFDS_DATASETS, *CLASSES} | {f"{n}_m" for n in {*TFDS_DATASETS, *CLASSES} - TEXT_DATASETS})
DIGITS_SIZE, PHOTOS_SIZE, PHOTOS_PER_CLASS = 28, 64, {"train": 60, "val": 20, "test": 20}
_SPLITS = ("train", "val", "test")
_FAILED: dict[str, str] = {}  # tfds name -> why its download failed in this session (not retried)


# --------------------------------------------------------------------------- the bundle
@dataclass
class DataBundle:
    """Three disjoint splits of one dataset, with what a lesson needs to know about them.

    ``name`` includes the view (``"fashion_mnist[5-9]@10"``); ``train``, ``val`` and ``test`` are
    unbatched ``tf.data.Dataset``; ``sizes`` counts each split; ``image_shape`` is ``(H, W, 3)``
    (``None`` for a side that varies, or for text); ``source`` says where the data came from.
    """

    name: str
    train: Any
    val: Any
    test: Any
    class_names: list[str]
    source: str
    sizes: dict[str, int]
    image_shape: tuple[int | None, int | None, int] | None
    batch_size: int = 32
    seed: int = 0
    _arrays: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _in_memory: tuple[str, ...] = field(default=(), repr=False)  # splits that are their arrays, as they are

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _split(self, split: str):
        if split not in _SPLITS:
            raise unknown_name("split", split, _SPLITS, error=DataError)
        return getattr(self, split)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """One split as numpy ``(x, y)``: images uint8 ``[n, H, W, 3]`` (texts: str), labels int64.

        Examples
        --------
        >>> x, y = load("digits", course=None).arrays("val")
        >>> x.dtype, x.shape[1:], y.dtype
        (dtype('uint8'), (28, 28, 3), dtype('int64'))
        """
        ds = self._split(split)
        if split not in self._arrays:
            if self.image_shape is not None and None in self.image_shape[:2]:
                raise DataError(
                    f"The images of {self.name!r} have different sizes: they cannot be stacked into one array.",
                    hint="Load it with image_size=..., e.g. load(name, image_size=160).",
                )
            parts = list(ds.batch(512).as_numpy_iterator())
            empty = (0,) if self.image_shape is None else (0, *self.image_shape)
            x = np.concatenate([p[0] for p in parts]) if parts else np.zeros(empty, np.uint8)
            y = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
            if self.image_shape is None:
                x = np.array([t.decode("utf-8") for t in x], dtype=object)
            self._arrays[split] = (x, y.astype(np.int64))
        return self._arrays[split]

    def batches(self, split: str, *, batch_size=None, shuffle=None, augment=None, image_size=None):
        """The input pipeline for one split.

        Resize (if ``image_size``) → ``cache()`` (unless the split is in memory already) → shuffle
        (train only by default) → batch → ``augment`` (a Keras layer, applied with ``training=True``
        after the cache, so every epoch sees new variants) → prefetch. Images stay in [0, 255]:
        preprocessing lives in the model.

        Examples
        --------
        >>> images, labels = next(iter(load("digits").batches("train", batch_size=8, image_size=32)))
        >>> tuple(images.shape), labels.dtype.name
        ((8, 32, 32, 3), 'int64')
        """
        import tensorflow as tf

        ds = self._split(split)
        resize = image_size is not None and self.image_shape is not None
        if resize:
            ds = ds.map(_resizer(image_size), num_parallel_calls=tf.data.AUTOTUNE)
        if resize or split not in self._in_memory:
            ds = ds.cache()
        if shuffle if shuffle is not None else split == "train":
            ds = ds.shuffle(max(1, min(self.sizes.get(split, 1), 10_000)), seed=self.seed)
        ds = ds.batch(batch_size or self.batch_size)
        if augment is not None:
            ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k} {v}" for k, v in self.sizes.items())
        shape = "text" if self.image_shape is None else "×".join(str(s or "?") for s in self.image_shape)
        return f"DataBundle({self.name!r}: {self.num_classes} classes, {shape}, {sizes}; {self.source})"


def _resize(image, size: int):
    import tensorflow as tf

    image = tf.image.resize(image, (size, size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _resizer(size: int | None):
    return lambda image, label: (image if size is None else _resize(image, size), label)


# --------------------------------------------------------------------------- options and views
def _caps(course) -> tuple[int | None, int | None, int]:
    """(train_per_class, eval_per_class, batch_size): the course's, the last setup's, TLCOURSE_PROFILE's."""
    budget = getattr(course or env.last_setup(), "budget", None)  # never runs setup() itself
    if budget is None and (profile := os.environ.get("TLCOURSE_PROFILE", "").strip()):
        if profile not in env.PROFILES:
            raise unknown_name("profile", profile, env.PROFILES)
        budget = env.PROFILES[profile]
    return (budget.train_per_class, budget.eval_per_class, budget.batch_size) if budget else (None, None, 32)


def _check_classes(classes, class_names: list[str], dataset: str) -> list[int] | None:
    if classes is None:
        return None
    chosen, k = [int(c) for c in classes], len(class_names)
    if bad := [c for c in chosen if not 0 <= c < k]:
        raise DataError(
            f"classes {bad} are out of range for {dataset!r}, which has {k} classes (0..{k - 1}).",
            hint=f"Choose among: {', '.join(f'{i}={n}' for i, n in enumerate(class_names))}.",
        )
    if len(set(chosen)) != len(chosen) or len(chosen) < 2:
        problem = "lists a class twice" if len(set(chosen)) != len(chosen) else "keeps fewer than 2 classes"
        raise DataError(
            f"classes {chosen} {problem}; a classifier needs 2 or more.", hint="e.g. [5, 6, 7, 8, 9]."
        )
    return chosen


def _check_labels(labels_per_class: int, counts, dataset: str) -> None:
    if labels_per_class > (smallest := int(np.min(counts))):
        raise DataError(
            f"labels_per_class={labels_per_class} is more than {dataset!r} has: its smallest class has "
            f"{smallest} training examples.",
            hint=f"Use labels_per_class ≤ {smallest}.",
        )


def _check_fraction(val_fraction: float) -> float:
    if not 0 < val_fraction < 0.5:
        raise DataError(f"val_fraction={val_fraction} must be between 0 and 0.5.", hint="Usually 0.1 or 0.2.")
    return float(val_fraction)


def _view_name(name: str, classes: list[int] | None, labels_per_class: int | None) -> str:
    if classes is not None:
        run = classes == list(range(classes[0], classes[0] + len(classes))) and len(classes) > 2
        name += f"[{classes[0]}-{classes[-1]}]" if run else f"[{','.join(map(str, classes))}]"
    return name if labels_per_class is None else f"{name}@{labels_per_class}"


# --------------------------------------------------------------------------- local sources
def _fashion_dir() -> Path | None:
    """The folder with Fashion-MNIST's four files: Debian's, ``data_dir()/fashion-mnist`` or Keras's."""
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    for folder in (FASHION_DIR, env.data_dir() / "fashion-mnist", keras_home / "datasets" / "fashion-mnist"):
        if all((folder / f"{name}-ubyte.gz").is_file() for name in FASHION_FILES):
            return folder
    return None


@lru_cache(maxsize=1)
def _fashion_raw(folder: Path) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test) read from the IDX files in ``folder``."""
    arrays = []
    for name in FASHION_FILES:
        with gzip.open(folder / f"{name}-ubyte.gz", "rb") as f:
            raw = f.read()
        dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(raw[3])]
        array = np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).reshape(dims)
        arrays.append(array.astype(np.int64) if "labels" in name else array)
    return tuple(arrays)


def _fashion_source(folder: Path | None) -> str:
    """Where the files in ``folder`` come from; without a folder, the error that says how to get them."""
    if folder is None:
        fetch_it = "" if env.forced_offline() else ", or download it with `tlcourse fetch fashion_mnist`"
        raise DataError(
            f"Fashion-MNIST's files are missing (looked in {FASHION_DIR} and {env.data_dir() / 'fashion-mnist'}).",
            hint="Install Debian's copy (sudo apt-get install dataset-fashion-mnist), or run "
            f"`python -c 'import keras; keras.datasets.fashion_mnist.load_data()'` once online{fetch_it}.",
        )
    return "debian:dataset-fashion-mnist" if folder == FASHION_DIR else f"files in {folder}"


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = (digits.images * (255.0 / 16.0))[..., None].astype(np.float32)
    big = tf.image.resize(small, (DIGITS_SIZE, DIGITS_SIZE), method="bicubic").numpy()
    return np.clip(np.round(big[..., 0]), 0, 255).astype(np.uint8), digits.target.astype(np.int64)


def _sentiment_rows() -> tuple[np.ndarray, np.ndarray]:
    with open(Path(__file__).parent / "assets" / "sentiment.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return np.array([r["text"] for r in rows], object), np.array([int(r["label"]) for r in rows], np.int64)


def sample_photos() -> dict[str, np.ndarray]:
    """scikit-image's bundled photos as uint8 RGB arrays (grey textures repeated over 3 channels).

    Examples
    --------
    >>> photos = sample_photos()
    >>> photos["chelsea"].shape, photos["chelsea"].dtype, sorted(photos)[:3]
    ((300, 451, 3), dtype('uint8'), ['astronaut', 'brick', 'chelsea'])
    """
    return {name: array.copy() for name, array in _photos_raw().items()}


@lru_cache(maxsize=1)
def _photos_raw() -> dict[str, np.ndarray]:
    import skimage.data

    photos = {name: getattr(skimage.data, name)() for name in PHOTO_CLASSES.values()}
    photos = {k: np.repeat(v[..., None], 3, axis=-1) if v.ndim == 2 else v for k, v in photos.items()}
    return {k: np.ascontiguousarray(v[..., :3]).astype(np.uint8) for k, v in photos.items()}


def _photos_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Square crops of each photo; a 4 × 4 grid of tiles is divided 10 / 3 / 3 between the splits."""
    import tensorflow as tf

    out: dict[str, tuple[list, list]] = {s: ([], []) for s in _SPLITS}
    for label, photo in enumerate(_photos_raw()[name] for name in PHOTO_CLASSES.values()):
        h, w = photo.shape[:2]
        rng = np.random.default_rng([RECIPE_VERSION, 7, label])  # fixed: the data does not vary with seed
        tiles = rng.permutation(16)
        th, tw = h / 4, w / 4
        for split, chosen in {"train": tiles[:10], "val": tiles[10:13], "test": tiles[13:]}.items():
            n = PHOTOS_PER_CLASS[split]
            tile = rng.choice(chosen, size=n)
            side = rng.uniform(0.6, 1.0, size=n) * min(th, tw)
            top = (tile // 4) * th + rng.uniform(0, 1, n) * (th - side)
            left = (tile % 4) * tw + rng.uniform(0, 1, n) * (tw - side)
            flip = rng.uniform(size=n) < 0.5
            boxes = np.stack([top / h, left / w, (top + side) / h, (left + side) / w], axis=1)
            crops = tf.image.crop_and_resize(photo[None].astype(np.float32), boxes.astype(np.float32),
                                             np.zeros(n, np.int32), (PHOTOS_SIZE, PHOTOS_SIZE)).numpy()  # fmt: skip
            crops = np.clip(np.round(crops), 0, 255).astype(np.uint8)
            crops[flip] = crops[flip, :, ::-1]
            out[split][0].append(crops)
            out[split][1].append(np.full(n, label, np.int64))
    return {s: (np.concatenate(xs), np.concatenate(ys)) for s, (xs, ys) in out.items()}


# --------------------------------------------------------------------------- splits and caps
def _per_class_order(y: np.ndarray, seed: int, salt: int) -> list[np.ndarray]:
    """For each class, its indices in a seeded order (prefixes give nested subsets)."""
    classes = np.unique(y).tolist()
    return [np.random.default_rng([seed, salt, c]).permutation(np.flatnonzero(y == c)) for c in classes]


def _stratified_split(y: np.ndarray, fraction: float, seed: int, salt: int) -> tuple[np.ndarray, np.ndarray]:
    keep, held = [], []
    for idx in _per_class_order(y, seed, salt):
        n_held = int(round(fraction * len(idx))) if len(idx) > 1 else 0
        n_held = max(n_held, 1) if len(idx) > 2 else n_held
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def _three_way(y: np.ndarray, test_fraction: float, test_seed: int, val_fraction: float, seed: int) -> dict:
    """Indices of train / val / test, stratified; val is ``val_fraction`` of what test leaves."""
    rest, test = _stratified_split(y, test_fraction, test_seed, salt=2)
    keep, val = _stratified_split(y[rest], val_fraction, seed, salt=1)
    return {"train": rest[keep], "val": rest[val], "test": test}


def _local_splits(name: str, val_fraction: float, seed: int) -> tuple[dict, str]:
    """The three splits of a local dataset, {split: (x, y)}, and where they came from."""
    if name == "photos":
        return _photos_splits(), "skimage"
    if name == "fashion_mnist":
        source = _fashion_source(folder := _fashion_dir())
        x, y, x_test, y_test = _fashion_raw(folder)
        keep, held = _stratified_split(y, val_fraction, seed, salt=1)  # the official test split stays
        return {"train": (x[keep], y[keep]), "val": (x[held], y[held]), "test": (x_test, y_test)}, source
    x, y = _digits_raw() if name == "digits" else _sentiment_rows()
    index = _three_way(y, 0.2, 0, val_fraction, seed)  # the test split is fixed, whatever the seed
    return {s: (x[i], y[i]) for s, i in index.items()}, "sklearn" if name == "digits" else "tlcourse"


def _select(parts: dict, k_all: int, *, dataset: str, classes, labels_per_class, caps, seed) -> dict:
    """Class view (relabelled 0..k-1), labels_per_class and profile caps on array splits."""
    out = {}
    for salt, split in enumerate(_SPLITS, start=10):
        x, y = parts[split]
        rows = np.arange(len(y))
        if classes is not None:  # only the labels are selected here: the images are copied once, at the end
            table = np.full(k_all, -1, np.int64)
            table[classes] = np.arange(len(classes))
            rows = np.flatnonzero(np.isin(y, classes))
            y = table[y[rows]]
        per_class = caps[split != "train"]
        if split == "train" and labels_per_class is not None:
            _check_labels(labels_per_class, np.bincount(y, minlength=len(classes or range(k_all))), dataset)
            per_class = labels_per_class
        idx = np.concatenate([i[:per_class] for i in _per_class_order(y, seed, salt)] or [np.zeros(0, int)])
        idx = np.random.default_rng([seed, salt, 99]).permutation(idx)
        out[split] = (x[rows[idx]], y[idx])
    return out


def _bundle_from_arrays(
    name, splits: dict, class_names, source, *, image_size, batch_size, seed
) -> DataBundle:
    import tensorflow as tf

    datasets, arrays, shape = {}, {}, None
    for split, (x, y) in splits.items():
        text, y = x.dtype == object, y.astype(np.int64)
        if not text and not (x.ndim == 4 and x.shape[-1] == 3):
            x = np.repeat(x.reshape(*x.shape[:3], 1), 3, axis=-1)  # grayscale → RGB
        datasets[split] = tf.data.Dataset.from_tensor_slices(
            (tf.constant(list(x), tf.string) if text else x, y)
        )
        if not text and image_size is not None and x.shape[1:3] != (image_size, image_size):
            datasets[split] = datasets[split].map(_resizer(image_size), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            arrays[split] = (x, y)
        shape = None if text else (image_size or x.shape[1], image_size or x.shape[2], 3)
    sizes = {s: int(len(splits[s][1])) for s in _SPLITS}
    return DataBundle(name, *(datasets[s] for s in _SPLITS), list(class_names), source, sizes, shape, batch_size=batch_size,
                      seed=seed, _arrays=arrays, _in_memory=tuple(arrays))  # fmt: skip


# --------------------------------------------------------------------------- tensorflow-datasets
def _tfds():
    """``tensorflow_datasets``, imported so that it works where the installed protobuf is older than the
    one that generated tensorflow-metadata's code.

    Colab's runtime of 2026-08-19 ships protobuf 5.29.6 and tensorflow-metadata 1.21.0, whose code was
    generated by protobuf 6.31.1 (it declares only ``protobuf>=4.25.2``): protobuf's version check then
    refuses to load it and ``import tensorflow_datasets`` is left without ``builder``. The messages load
    fine with protobuf 5 (checked in the Colab twin, ``make test-colab``), so for that mismatch alone the
    check is switched off (protobuf's own ``TEMPORARILY_DISABLE_PROTOBUF_VERSION_CHECK``), never a
    package changed on the student's runtime.
    """
    try:
        import tensorflow_metadata.proto.v0.schema_pb2  # noqa: F401 (the first message tfds loads)
    except ImportError:
        pass  # importing tfds below says what is missing
    except Exception as exc:  # protobuf's runtime_version.VersionError
        if "Gencode/Runtime versions" not in str(exc):
            raise
        os.environ["TEMPORARILY_DISABLE_PROTOBUF_VERSION_CHECK"] = "true"
    import tensorflow_datasets as tfds

    return tfds


def _builder(name: str):
    """tfds's builder, in ``data_dir()/tfds`` when TLCOURSE_DATA_DIR is set (else TFDS_DATA_DIR or tfds's own)."""
    tfds = _tfds()

    folder = str(env.data_dir() / "tfds") if os.environ.get("TLCOURSE_DATA_DIR", "").strip() else None
    return tfds.builder(name, data_dir=folder or os.environ.get("TFDS_DATA_DIR"))


def _tfds_prepared(name: str) -> bool:
    """Whether tfds has this dataset on disk (only the file system is read)."""
    try:
        return name in TFDS_DATASETS and Path(_builder(name).data_dir, "dataset_info.json").exists()
    except Exception:  # an unreadable or partial data folder counts as "not prepared"
        return False


def _tfds_hosts(name: str) -> list[str]:
    """The hosts tfds downloads ``name`` from ("host", or "host:port" unless 443), from its checksums file."""
    hosts = []
    for url in _builder(name).url_infos or {}:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (80 if parts.scheme == "http" else 443)
        hosts.append(parts.hostname if port == 443 else f"{parts.hostname}:{port}")
    return list(dict.fromkeys(hosts))


def _shown(hosts: list[str]) -> str:
    return ", ".join(h.split(":")[0] for h in hosts) or "its host"


def _download(name: str) -> str | None:
    """Let tfds download and prepare ``name``: None when that worked, else what went wrong, in a few words."""
    tfds = _tfds()
    from tensorflow_datasets.core.download import download_manager, extractor

    local = str(env.cache_dir("downloads")) if os.environ.get("TLCOURSE_DATA_DIR", "").strip() else None
    try:  # with TLCOURSE_DATA_DIR (a Drive folder, say) the archives stay on the local disk
        _builder(name).download_and_prepare(download_dir=local)
    except (OSError, tfds.download.DownloadError, download_manager.NonMatchingChecksumError,
            extractor.ExtractError) as exc:  # fmt: skip
        text = f"{type(exc).__name__}: {exc}".lower()
        if code := re.search(r"http code: (\d+)", text):
            return f"HTTP {code[1]}"
        if "checksum" in text:
            return "checksum mismatch"
        timeout = "timeout" in text or "timed out" in text
        return "timed out" if timeout else "no connection" if "connect" in text else type(exc).__name__
    return None


def _tfds_split_names(official, val_fraction: float) -> dict[str, str]:
    """tfds split specs for train / val / test; the splits a dataset lacks come from the end of train."""
    p = max(1, int(round(val_fraction * 100)))
    if "validation" in official:
        return {"train": "train", "val": "validation", "test": "test"}
    if "test" in official:
        return {"train": f"train[:{100 - p}%]", "val": f"train[{100 - p}%:]", "test": "test"}
    return {"train": f"train[:{100 - 2 * p}%]", "val": f"train[{100 - 2 * p}%:{100 - p}%]",
            "test": f"train[{100 - p}%:]"}  # fmt: skip


def _tfds_bundle(
    name, *, image_size, classes, labels_per_class, val_fraction, caps, batch_size, seed
) -> DataBundle:
    import tensorflow as tf

    tfds = _tfds()
    builder = _builder(name)
    text, all_names = name in TEXT_DATASETS, list(builder.info.features["label"].names)
    classes = _check_classes(classes, all_names, name)
    class_names = [all_names[c] for c in classes] if classes is not None else all_names
    k, table = len(class_names), np.full(len(all_names), -1, np.int64)
    if classes is not None:
        table[classes] = np.arange(k)
    datasets, sizes = {}, {}
    for salt, (split, tfds_split) in enumerate(
        _tfds_split_names(builder.info.splits, val_fraction).items(), 10
    ):
        ds = builder.as_dataset(split=tfds_split, as_supervised=True, shuffle_files=False,
                                decoders=None if text else {"image": tfds.decode.SkipDecoding()})  # fmt: skip
        if classes is not None:
            ds = ds.map(lambda x, y: (x, tf.gather(table, y))).filter(lambda image, label: label >= 0)
        per_class = labels_per_class if split == "train" and labels_per_class else caps[split != "train"]
        if per_class is not None:
            ds = _cap_stream(
                ds.shuffle(1024, seed=seed * 1000 + salt, reshuffle_each_iteration=False), per_class, k
            )
        counts = ds.map(lambda x, y: tf.one_hot(y, k, dtype=tf.int64)).reduce(tf.zeros([k], tf.int64), tf.add)
        if split == "train" and labels_per_class is not None:
            _check_labels(labels_per_class, counts.numpy(), name)
        datasets[split] = ds if text else ds.map(_decoder(image_size), num_parallel_calls=tf.data.AUTOTUNE)
        sizes[split] = int(counts.numpy().sum())
    native = None if text else builder.info.features["image"].shape
    shape = None if text else (image_size, image_size, 3) if image_size else (native[0], native[1], 3)
    return DataBundle(_view_name(name, classes, labels_per_class), *(datasets[s] for s in _SPLITS), class_names, "tfds", sizes,
                      shape, batch_size=batch_size, seed=seed)  # fmt: skip


def _cap_stream(ds, per_class: int, num_classes: int):
    """Keep the first ``per_class`` examples of each class; stop reading once every class is full."""
    import tensorflow as tf

    def step(counts, element):
        x, y = element
        full_before = tf.reduce_all(counts >= per_class)
        return tf.tensor_scatter_nd_add(counts, [[y]], [1]), (x, y, counts[y] < per_class, full_before)

    ds = ds.scan(tf.zeros([num_classes], tf.int64), step)
    ds = ds.take_while(lambda x, y, keep, full: tf.logical_not(full))
    return ds.filter(lambda x, y, keep, full: keep).map(lambda image, label, keep, full: (image, label))


def _decoder(image_size: int | None):
    import tensorflow as tf

    resize = _resizer(image_size)
    return lambda data, label: resize(tf.io.decode_image(data, channels=3, expand_animations=False), label)


# --------------------------------------------------------------------------- MNIST-M recipe
def _blend_with_photos(x: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """|patch − image| per channel, each image with a random patch of a random bundled photo."""
    import tensorflow as tf

    n, h, w = x.shape[:3]
    photos = list(_photos_raw().values())
    for i, photo in enumerate(photos):
        if photo.shape[0] < h or photo.shape[1] < w:
            scale = max(h / photo.shape[0], w / photo.shape[1])
            size = (int(np.ceil(photo.shape[0] * scale)), int(np.ceil(photo.shape[1] * scale)))
            photos[i] = np.clip(tf.image.resize(photo, size).numpy(), 0, 255).astype(np.uint8)
    rng = np.random.default_rng([seed, RECIPE_VERSION, salt])
    which = rng.integers(0, len(photos), size=n)
    out = np.empty((n, h, w, 3), np.uint8)
    for p, photo in enumerate(photos):
        if len(members := np.flatnonzero(which == p)) == 0:
            continue
        top = rng.integers(0, photo.shape[0] - h + 1, size=len(members))
        left = rng.integers(0, photo.shape[1] - w + 1, size=len(members))
        rows, cols = top[:, None] + np.arange(h), left[:, None] + np.arange(w)
        patches = photo[rows[:, :, None], cols[:, None, :]]
        out[members] = np.abs(patches.astype(np.int16) - x[members].astype(np.int16)).astype(np.uint8)
    return out


def _domain_m(base: DataBundle, key: list, seed: int) -> DataBundle:
    """The MNIST-M view of ``base``, cached in ``data_dir()`` under a hash of everything that shaped it."""
    digest = hashlib.sha1(json.dumps([*key, RECIPE_VERSION]).encode()).hexdigest()[:16]
    path = env.data_dir() / f"{key[0]}_m-{digest}.npz"
    cut = min((i for i in (base.name.find("["), base.name.find("@")) if i >= 0), default=len(base.name))
    name = f"{base.name[:cut]}_m{base.name[cut:]}"  # the view stays at the end: fashion_mnist_m[5-9]@10
    if path.exists():
        with np.load(path) as cached:
            splits = {s: (cached[f"x_{s}"], cached[f"y_{s}"]) for s in _SPLITS}
    else:
        start = time.perf_counter()
        splits = {s: (_blend_with_photos(base.arrays(s)[0], seed, salt), base.arrays(s)[1])
                  for salt, s in enumerate(_SPLITS, start=20)}  # fmt: skip
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **{f"{xy}_{s}": splits[s][i] for s in _SPLITS for i, xy in enumerate("xy")})
        tmp.replace(path)
        total, seconds = sum(base.sizes.values()), time.perf_counter() - start
        env.say(
            f"built {name} ({total:,} images, MNIST-M recipe) in {seconds:.1f} s; cached in {path.parent}"
        )
    return _bundle_from_arrays(name, splits, base.class_names, f"{base.source}+mnist_m", image_size=None,
                               batch_size=base.batch_size, seed=seed)  # fmt: skip


# --------------------------------------------------------------------------- load
def _resolve(name: str, asked: str, course) -> tuple[str, str]:
    """(the dataset to load, "local" or "tfds"), saying in one line when a stand-in replaces ``asked``.

    Data on disk first; online, the dataset's own hosts are probed (once per session) and tfds
    downloads it; when a host does not answer or the download fails, the course turns offline.
    """
    if name in ("digits", "photos", "sentiment") or (name == "fashion_mnist" and _fashion_dir()):
        return name, "local"
    if _tfds_prepared(name):
        return name, "tfds"
    course = course or env.last_setup()
    offline = getattr(course, "offline", None)  # before setup(): only TLCOURSE_OFFLINE, no general probe
    if offline if offline is not None else env.forced_offline():
        why = "offline"
    elif name in _FAILED:
        why = _FAILED[name]
    elif down := env.unreachable(_tfds_hosts(name)):
        why = f"{_shown(down)} did not answer"
    elif (failure := _download(name)) is None:
        return name, "tfds"
    else:
        why = _FAILED[name] = f"{_shown(_tfds_hosts(name))} failed ({failure})"
    if (
        standin := TFDS_DATASETS[name]
    ) == name:  # Fashion-MNIST without its files: the error says how to get them
        return name, "local"
    if why != "offline" and isinstance(course, env.Course):
        course.offline = True  # the lesson goes on as it does offline
    names, used = CLASSES[standin], f"{standin}_m" if asked.endswith("_m") else standin
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    tail = "" if why == "offline" else "; the lesson continues offline"
    env.say(f"{why}: {asked} → {used} stand-in ({len(names)} classes: {shown}){tail}")
    return standin, "local"


def load(name: str, *, image_size: int | None = None, classes=None, labels_per_class: int | None = None,
         val_fraction: float = 0.1, course=None, seed: int = 0) -> DataBundle:  # fmt: skip
    """Load a dataset as a :class:`DataBundle` of three disjoint splits.

    Parameters
    ----------
    name : str
        ``fashion_mnist``, ``digits``, ``photos``, ``sentiment``, a tfds name in ``TFDS_DATASETS``
        (``cats_vs_dogs``, ``beans``, ...), or ``<image set>_m`` for the MNIST-M target domain.
    image_size : int, optional
        Resize images to ``(image_size, image_size)``; default: native size.
    classes : sequence of int, optional
        Keep these original class ids, relabelled 0..k-1 in the given order.
    labels_per_class : int, optional
        Keep this many labelled training examples per class (seeded, nested across k).
    val_fraction : float
        Part of the training data held out for validation when the dataset has no validation
        split (and for test too when it has no test split).
    course : tlcourse.Course, optional
        Its budget caps examples per class; default: the last ``setup()``, else the profile named
        by ``TLCOURSE_PROFILE``, else no caps.
    seed : int
        Seeds the validation split, the subsets and the ``*_m`` patches.

    Examples
    --------
    >>> target = load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=10)
    >>> target.name, target.num_classes, target.sizes["train"], target.class_names[:2]
    ('fashion_mnist[5-9]@10', 5, 50, ['Sandal', 'Shirt'])
    """
    if not isinstance(name, str) or name not in KNOWN:
        raise unknown_name("dataset", name, KNOWN, error=DataError)
    val_fraction = _check_fraction(val_fraction)
    if labels_per_class is not None and (int(labels_per_class) != labels_per_class or labels_per_class < 1):
        raise DataError(f"labels_per_class={labels_per_class!r} must be a whole number ≥ 1.", hint="e.g. 10.")
    if image_size is not None and (int(image_size) != image_size or image_size < 8):
        raise DataError(f"image_size={image_size!r} must be a whole number ≥ 8.", hint="e.g. 96 or 160.")
    *caps, batch_size = _caps(course)
    base_name = name[:-2] if name.endswith("_m") else name
    used, how = _resolve(base_name, name, course)
    view = dict(labels_per_class=labels_per_class, caps=caps, seed=seed)
    if how == "tfds":
        bundle = _tfds_bundle(used, image_size=image_size, classes=classes, val_fraction=val_fraction,
                              batch_size=batch_size, **view)  # fmt: skip
    else:
        parts, source = _local_splits(used, val_fraction, seed)
        chosen = _check_classes(classes, CLASSES[used], used)
        splits = _select(parts, len(CLASSES[used]), dataset=used, classes=chosen, **view)
        names = [CLASSES[used][c] for c in chosen] if chosen is not None else CLASSES[used]
        bundle = _bundle_from_arrays(_view_name(used, chosen, labels_per_class), splits, names, source,
                                     image_size=image_size, batch_size=batch_size, seed=seed)  # fmt: skip
    if name == base_name:
        return bundle
    if bundle.image_shape is None:
        raise DataError(f"{name!r}: the MNIST-M recipe needs images.", hint=f"Use load({base_name!r}).")
    key = [used, how, image_size, bundle.name, val_fraction, caps, seed, bundle.sizes]
    return _domain_m(bundle, key, seed)


# --------------------------------------------------------------------------- augmentation
def augmentation(
    *, flip: bool = True, rotation: float = 0.1, zoom: float = 0.1, contrast: float = 0.1, seed=None
):
    """Random augmentation as Keras preprocessing layers (active only with ``training=True``).

    Examples
    --------
    >>> [layer.__class__.__name__ for layer in augmentation(rotation=0.05).layers]
    ['RandomFlip', 'RandomRotation', 'RandomZoom', 'RandomContrast']
    """
    import keras

    layers = [keras.layers.RandomFlip("horizontal", seed=seed)] if flip else []
    layers += [keras.layers.RandomRotation(rotation, seed=seed)] if rotation else []
    layers += [keras.layers.RandomZoom(zoom, seed=seed)] if zoom else []
    layers += [keras.layers.RandomContrast(contrast, seed=seed)] if contrast else []
    return keras.Sequential(layers, name="augmentation")


# --------------------------------------------------------------------------- fetch and doctor
def cached_datasets() -> list[dict[str, Any]]:
    """What ``load`` can use without network: rows of name, source, path and bytes (``tlcourse doctor``).

    Examples
    --------
    >>> {"digits", "photos", "sentiment"} <= {row["name"] for row in cached_datasets()}
    True
    """
    sentiment = Path(__file__).parent / "assets" / "sentiment.csv"
    found = [("digits", "sklearn", None), ("photos", "skimage", None), ("sentiment", "tlcourse", sentiment)]
    if folder := _fashion_dir():
        found.append(("fashion_mnist", _fashion_source(folder), folder))
    found += [(name, "tfds", Path(_builder(name).data_dir)) for name in TFDS_DATASETS if _tfds_prepared(name)]
    found += [(f.name.split("-")[0], "MNIST-M recipe cache", f) for f in env.data_dir().glob("*_m-*")]
    return [{"name": name, "source": source, "path": path and str(path),
             "bytes": sum(p.stat().st_size for p in [path, *path.rglob("*")] if p.is_file()) if path else 0}
            for name, source, path in found]  # fmt: skip


def fetch(name: str) -> dict[str, Any]:
    """Download and prepare a dataset for offline use (``tlcourse fetch NAME``): its row of ``cached_datasets``.

    Data on this machine need nothing; tfds downloads the others with its progress bars and checksums.

    Examples
    --------
    >>> fetch("digits")["source"]
    'sklearn'
    """
    if name not in KNOWN:
        raise unknown_name("dataset", name, KNOWN, error=DataError)
    base = name[:-2] if name.endswith("_m") else name
    if row := next((r for r in cached_datasets() if r["name"] == base), None):
        return row
    if env.is_offline():
        raise OfflineError(f"Cannot download {base!r} from {_shown(_tfds_hosts(base))}: tlcourse is offline.",
                           hint=f"Run `tlcourse fetch {base}` where there is internet, or unset TLCOURSE_OFFLINE.")  # fmt: skip
    if failure := _download(base):
        raise DataError(f"Downloading {base!r} from {_shown(_tfds_hosts(base))} failed ({failure}).",
                        hint="Try again later; meanwhile the lessons use its offline stand-in.")  # fmt: skip
    return next(r for r in cached_datasets() if r["name"] == base)
