"""Datasets for the lessons: one small, typed :class:`DataBundle` whatever the source.

``load(name)`` gives ``train`` / ``val`` / ``test`` as unbatched ``tf.data.Dataset`` of
``(image uint8 [H, W, 3], label int64)`` (or ``(text tf.string, label int64)``). The three
splits never overlap, and ``val`` always comes from the training data: the test split is
never used for model selection. ``bundle.batches("train")`` builds the input pipeline
(decode → resize → ``cache()`` → shuffle → batch → augment → prefetch).

Sources
-------
Online, through tensorflow-datasets: ``cats_vs_dogs``, ``tf_flowers``, ``beans``,
``oxford_iiit_pet``, ``mnist``, ``imdb_reviews`` and ``fashion_mnist``. Data already
prepared in the tfds data folder (``tlcourse fetch NAME``) is used offline too.
Offline (no network, or ``TLCOURSE_OFFLINE=1``) no download is attempted; ``load``
says in one line which stand-in it uses:

================  =====================  ==============================================
asked for         offline stand-in       why
================  =====================  ==============================================
fashion_mnist     (the same data)        Debian's ``dataset-fashion-mnist`` files
cats_vs_dogs      fashion_mnist          real photos are not shipped; a real 10-class set
tf_flowers        fashion_mnist          idem
oxford_iiit_pet   fashion_mnist          idem (class + clothing/footwear/bag tasks)
beans             photos                 real colour photos, texture-like classes
mnist             digits                 real handwriting (scikit-learn), 28 × 28
imdb_reviews      sentiment              English sentences written by the project
*_m               <stand-in>_m           the same MNIST-M recipe on the stand-in
================  =====================  ==============================================

Always local: ``digits`` (scikit-learn's 8 × 8 handwritten digits, upscaled to 28 × 28),
``photos`` (crops of scikit-image's bundled photos, one class per photo; each photo's
tiles are divided between the splits, so no pixel is shared across splits),
``sentiment`` (≥ 400 short labelled sentences, CC0, ``tlcourse/assets/sentiment.csv``).

Views
-----
``<image set>_m`` is a target domain made with the MNIST-M recipe: every image becomes
``|patch − image|`` per channel with a random patch of a bundled photo (seeded; cached in
``cache_dir("data")``). ``classes=[5, 6, 7, 8, 9]`` keeps those classes, relabelled 0..4
(name ``fashion_mnist[5-9]``); ``labels_per_class=10`` keeps 10 labelled training examples
per class (name ``fashion_mnist[5-9]@10``), nested across k for the same seed.
Profile caps (``course.budget.train_per_class`` / ``eval_per_class``) limit examples per class.

Fashion-MNIST has no exact duplicate image within or across its official train and test
files (checked by hashing all 70,000); duplicates in any array-backed set are dropped anyway.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tlcourse import env
from tlcourse.errors import DataError, OfflineError, unknown_name

__all__ = [
    "DataBundle",
    "RECIPE_VERSION",
    "augmentation",
    "cached_datasets",
    "fetch",
    "load",
    "load_folder",
    "sample_photos",
]

RECIPE_VERSION = 1  # bump when the *_m blending or the photos crops change: old caches are then ignored
# Debian's `dataset-fashion-mnist`; without it, the same files `tlcourse test-env` downloads into the cache.
_DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_DIR = Path(os.environ.get("TLCOURSE_FASHION_MNIST_DIR") or (_DEBIAN_FASHION if _DEBIAN_FASHION.is_dir() else env.cache_dir("data") / "fashion-mnist"))  # fmt: skip
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
DIGITS_SIZE = 28
PHOTOS_SIZE = 64
PHOTO_CLASSES = {  # class name -> skimage photo
    "cat": "chelsea",
    "coffee": "coffee",
    "astronaut": "astronaut",
    "rocket": "rocket",
    "galaxies": "hubble_deep_field",
    "tissue": "immunohistochemistry",
    "brick": "brick",
    "grass": "grass",
    "gravel": "gravel",
}
PHOTOS_PER_CLASS = {"train": 60, "val": 20, "test": 20}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclass(frozen=True)
class _TfdsSpec:
    splits: tuple[str, ...]
    standin: str
    text: bool = False


TFDS_DATASETS: dict[str, _TfdsSpec] = {
    "cats_vs_dogs": _TfdsSpec(("train",), "fashion_mnist"),
    "tf_flowers": _TfdsSpec(("train",), "fashion_mnist"),
    "beans": _TfdsSpec(("train", "validation", "test"), "photos"),
    "oxford_iiit_pet": _TfdsSpec(("train", "test"), "fashion_mnist"),
    "mnist": _TfdsSpec(("train", "test"), "digits"),
    "imdb_reviews": _TfdsSpec(("train", "test"), "sentiment", text=True),
    "fashion_mnist": _TfdsSpec(("train", "test"), "fashion_mnist"),
}
LOCAL_DATASETS = ("fashion_mnist", "digits", "photos", "sentiment")
TEXT_DATASETS = {"sentiment", "imdb_reviews"}
KNOWN = sorted(
    set(TFDS_DATASETS)
    | set(LOCAL_DATASETS)
    | {f"{n}_m" for n in (*TFDS_DATASETS, *LOCAL_DATASETS)} - {f"{n}_m" for n in TEXT_DATASETS}
)
_SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------- the bundle
@dataclass
class DataBundle:
    """Three disjoint splits of one dataset, with what a lesson needs to know about them.

    Attributes
    ----------
    name : str
        The dataset and its view, e.g. ``"fashion_mnist"``, ``"fashion_mnist[5-9]@10"``.
    train, val, test : tf.data.Dataset
        Unbatched ``(image uint8 [H, W, 3], label int64)`` or ``(text tf.string, label int64)``.
    class_names : list of str
    source : str
        ``"tfds"``, ``"folder"``, ``"debian:dataset-fashion-mnist"``, ``"sklearn"``,
        ``"skimage"`` or ``"tlcourse"``.
    sizes : dict
        Number of examples per split.
    image_shape : tuple or None
        ``(H, W, 3)`` (``None`` for a side that varies); ``None`` for text.
    skipped : dict
        Files ``load_folder`` skipped, by reason (``"corrupt"``, ``"not an image"``).
    """

    name: str
    train: Any
    val: Any
    test: Any
    class_names: list[str]
    source: str
    sizes: dict[str, int]
    image_shape: tuple[int | None, int | None, int] | None
    skipped: dict[str, list[str]] = field(default_factory=dict)
    batch_size: int = 32
    seed: int = 0
    _arrays: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

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
        >>> bundle = load("digits", course=None)
        >>> x, y = bundle.arrays("val")
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
            xs, ys = [], []
            for x, y in ds.batch(512).as_numpy_iterator():
                xs.append(x)
                ys.append(y)
            if xs:
                x = np.concatenate(xs)
                y = np.concatenate(ys).astype(np.int64)
            else:
                shape = (0,) if self.image_shape is None else (0, *self.image_shape)
                x = np.zeros(shape, dtype=object if self.image_shape is None else np.uint8)
                y = np.zeros((0,), np.int64)
            if self.image_shape is None:
                x = np.array([t.decode("utf-8") for t in x], dtype=object)
            self._arrays[split] = (x, y)
        return self._arrays[split]

    def batches(
        self,
        split: str,
        *,
        batch_size: int | None = None,
        shuffle: bool | None = None,
        augment=None,
        image_size: int | None = None,
    ):
        """The input pipeline for one split.

        Resize (if ``image_size``) → ``cache()`` → shuffle (train only by default) → batch →
        ``augment`` (a Keras layer, applied with ``training=True``, after the cache so every
        epoch sees new variants) → prefetch. Images stay in [0, 255]: preprocessing lives in
        the model.

        Examples
        --------
        >>> bundle = load("digits")
        >>> images, labels = next(iter(bundle.batches("train", batch_size=8, image_size=32)))
        >>> tuple(images.shape), labels.dtype.name
        ((8, 32, 32, 3), 'int64')
        """
        import tensorflow as tf

        ds = self._split(split)
        if image_size is not None and self.image_shape is not None:
            ds = ds.map(_resizer(image_size), num_parallel_calls=tf.data.AUTOTUNE)
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
        return (
            f"DataBundle({self.name!r}: {self.num_classes} classes, {shape}, {sizes}; source {self.source})"
        )


def _resizer(size: int):
    import tensorflow as tf

    def resize(image, label):
        image = tf.image.resize(image, (size, size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    return resize


# --------------------------------------------------------------------------- caps and options
def _caps(course) -> tuple[int | None, int | None, int]:
    """(train_per_class, eval_per_class, batch_size) from the course, the last setup, or TLCOURSE_PROFILE."""
    budget = None
    if course is not None:
        budget = course.budget
    elif env.last_setup() is not None:  # setup() already ran; never run it implicitly here
        budget = env.last_setup().budget
    else:
        profile = os.environ.get("TLCOURSE_PROFILE", "").strip()
        if profile:
            if profile not in env.PROFILES:
                raise unknown_name("profile", profile, env.PROFILES)
            budget = env.PROFILES[profile]
    if budget is None:
        return None, None, 32
    return budget.train_per_class, budget.eval_per_class, budget.batch_size


def _check_classes(classes, class_names: list[str], dataset: str) -> list[int] | None:
    if classes is None:
        return None
    chosen = [int(c) for c in classes]
    k = len(class_names)
    bad = [c for c in chosen if not 0 <= c < k]
    if bad:
        listing = ", ".join(f"{i}={n}" for i, n in enumerate(class_names))
        raise DataError(
            f"classes {bad} are out of range for {dataset!r}, which has {k} classes (0..{k - 1}).",
            hint=f"Choose among: {listing}.",
        )
    if len(set(chosen)) != len(chosen):
        raise DataError(f"classes {chosen} lists a class twice.", hint="Give each class id once.")
    if len(chosen) < 2:
        raise DataError(
            f"classes {chosen} keeps fewer than 2 classes; a classifier needs at least 2.",
            hint="e.g. classes=[5, 6, 7, 8, 9].",
        )
    return chosen


def _view_name(name: str, classes: list[int] | None, labels_per_class: int | None) -> str:
    if classes is not None:
        contiguous = classes == list(range(classes[0], classes[0] + len(classes)))
        inner = (
            f"{classes[0]}-{classes[-1]}" if contiguous and len(classes) > 2 else ",".join(map(str, classes))
        )
        name = f"{name}[{inner}]"
    if labels_per_class is not None:
        name = f"{name}@{labels_per_class}"
    return name


def _check_fraction(val_fraction: float) -> float:
    if not 0 < val_fraction < 0.5:
        raise DataError(
            f"val_fraction={val_fraction} must be between 0 and 0.5.",
            hint="The usual choice is 0.1 or 0.2.",
        )
    return float(val_fraction)


# --------------------------------------------------------------------------- array-backed sources
@lru_cache(maxsize=1)
def _fashion_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    def idx(path: Path) -> np.ndarray:
        with gzip.open(path, "rb") as f:
            raw = f.read()
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)

    files = {k: FASHION_DIR / f"{k}-ubyte.gz" for k in ("train-images-idx3", "train-labels-idx1")}
    files |= {k: FASHION_DIR / f"{k}-ubyte.gz" for k in ("t10k-images-idx3", "t10k-labels-idx1")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        hint = "Install Debian's copy: sudo apt-get install dataset-fashion-mnist"
        if not env.is_offline():
            hint += ", or download it once with `tlcourse fetch fashion_mnist`"
        raise DataError(f"Fashion-MNIST's files are missing ({missing[0]}).", hint=hint + ".")
    return (
        idx(files["train-images-idx3"]),
        idx(files["train-labels-idx1"]).astype(np.int64),
        idx(files["t10k-images-idx3"]),
        idx(files["t10k-labels-idx1"]).astype(np.int64),
    )


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = (digits.images * (255.0 / 16.0))[..., None].astype(np.float32)
    big = tf.image.resize(small, (DIGITS_SIZE, DIGITS_SIZE), method="bicubic").numpy()
    return np.clip(np.round(big[..., 0]), 0, 255).astype(np.uint8), digits.target.astype(np.int64)


def sample_photos() -> dict[str, np.ndarray]:
    """scikit-image's bundled photos as uint8 RGB arrays (grey textures repeated over 3 channels).

    Examples
    --------
    >>> photos = sample_photos()
    >>> photos["chelsea"].shape, photos["chelsea"].dtype
    ((300, 451, 3), dtype('uint8'))
    >>> sorted(photos)[:3]
    ['astronaut', 'brick', 'chelsea']
    """
    return {name: array.copy() for name, array in _photos_raw().items()}


@lru_cache(maxsize=1)
def _photos_raw() -> dict[str, np.ndarray]:
    import skimage.data

    photos = {}
    for name in PHOTO_CLASSES.values():
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        photos[name] = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    return photos


def _photos_splits(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Square crops of each photo; a 4 × 4 grid of tiles is divided 10 / 3 / 3 between the splits."""
    import tensorflow as tf

    out: dict[str, list] = {s: ([], []) for s in _SPLITS}
    photos = _photos_raw()
    for label, photo_name in enumerate(PHOTO_CLASSES.values()):
        photo = photos[photo_name]
        h, w = photo.shape[:2]
        rng = np.random.default_rng([RECIPE_VERSION, 7, label])  # fixed: the data does not vary with seed
        tiles = rng.permutation(16)
        tile_sets = {"train": tiles[:10], "val": tiles[10:13], "test": tiles[13:]}
        th, tw = h / 4, w / 4
        for split, chosen in tile_sets.items():
            n = PHOTOS_PER_CLASS[split]
            tile = rng.choice(chosen, size=n)
            side = rng.uniform(0.6, 1.0, size=n) * min(th, tw)
            top = (tile // 4) * th + rng.uniform(0, 1, n) * (th - side)
            left = (tile % 4) * tw + rng.uniform(0, 1, n) * (tw - side)
            flip = rng.uniform(size=n) < 0.5
            boxes = np.stack([top / h, left / w, (top + side) / h, (left + side) / w], axis=1)
            crops = tf.image.crop_and_resize(
                photo[None].astype(np.float32),
                boxes.astype(np.float32),
                np.zeros(n, np.int32),
                (PHOTOS_SIZE, PHOTOS_SIZE),
            ).numpy()
            crops = np.clip(np.round(crops), 0, 255).astype(np.uint8)
            crops[flip] = crops[flip, :, ::-1]
            out[split][0].append(crops)
            out[split][1].append(np.full(n, label, np.int64))
    return {s: (np.concatenate(xs), np.concatenate(ys)) for s, (xs, ys) in out.items()}


def _sentiment_rows() -> tuple[list[str], np.ndarray]:
    path = Path(__file__).parent / "assets" / "sentiment.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], np.array([int(r["label"]) for r in rows], np.int64)


def _hash_rows(x: np.ndarray) -> list[bytes]:
    if x.dtype == object:
        return [hashlib.blake2b(str(t).encode(), digest_size=16).digest() for t in x]
    flat = x.reshape(len(x), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


def _dedupe(*parts: tuple[np.ndarray, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Drop exact duplicates within and across parts (first occurrence wins, so the earlier part keeps it)."""
    seen: set[bytes] = set()
    out = []
    for x, y in parts:
        keep = []
        for i, h in enumerate(_hash_rows(x)):
            if h not in seen:
                seen.add(h)
                keep.append(i)
        keep = np.asarray(keep, dtype=np.int64)
        out.append((x[keep], y[keep]) if len(keep) != len(x) else (x, y))
    return out


def _per_class_order(y: np.ndarray, seed: int, salt: int) -> dict[int, np.ndarray]:
    """For each class, its indices in a seeded order (prefixes give nested subsets)."""
    order = {}
    for c in np.unique(y):
        rng = np.random.default_rng([seed, salt, int(c)])
        order[int(c)] = rng.permutation(np.flatnonzero(y == c))
    return order


def _stratified_split(y: np.ndarray, fraction: float, seed: int, salt: int) -> tuple[np.ndarray, np.ndarray]:
    keep, held = [], []
    for idx in _per_class_order(y, seed, salt).values():
        n_held = int(round(fraction * len(idx))) if len(idx) > 1 else 0
        n_held = max(n_held, 1) if len(idx) > 2 else n_held
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def _cap_indices(y: np.ndarray, per_class: int | None, seed: int, salt: int) -> np.ndarray:
    chosen = [
        idx[:per_class] if per_class is not None else idx for idx in _per_class_order(y, seed, salt).values()
    ]
    chosen = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    return np.random.default_rng([seed, salt, 99]).permutation(chosen)


def _array_parts(name: str, *, val_fraction: float, seed: int) -> tuple[dict, list[str], str, tuple | None]:
    """Raw splits for a local dataset: ({split: (x, y)}, class_names, source, native image shape)."""
    if name == "fashion_mnist":
        x_train, y_train, x_test, y_test = _fashion_raw()
        (x_train, y_train), (x_test, y_test) = _dedupe((x_train, y_train), (x_test, y_test))
        keep, held = _stratified_split(y_train, val_fraction, seed, salt=1)
        parts = {
            "train": (x_train[keep], y_train[keep]),
            "val": (x_train[held], y_train[held]),
            "test": (x_test, y_test),
        }
        return parts, list(FASHION_CLASSES), "debian:dataset-fashion-mnist", (28, 28, 3)
    if name == "digits":
        x, y = _dedupe(_digits_raw())[0]
        rest, test = _stratified_split(y, 0.2, 0, salt=2)  # the test split is fixed, whatever the seed
        keep, held = _stratified_split(y[rest], val_fraction, seed, salt=1)
        parts = {
            "train": (x[rest][keep], y[rest][keep]),
            "val": (x[rest][held], y[rest][held]),
            "test": (x[test], y[test]),
        }
        return parts, [str(d) for d in range(10)], "sklearn", (DIGITS_SIZE, DIGITS_SIZE, 3)
    if name == "photos":
        return _photos_splits(seed), list(PHOTO_CLASSES), "skimage", (PHOTOS_SIZE, PHOTOS_SIZE, 3)
    if name == "sentiment":
        texts, labels = _sentiment_rows()
        x, y = _dedupe((np.array(texts, dtype=object), labels))[0]
        rest, test = _stratified_split(y, 0.2, 0, salt=2)
        keep, held = _stratified_split(y[rest], val_fraction, seed, salt=1)
        parts = {
            "train": (x[rest][keep], y[rest][keep]),
            "val": (x[rest][held], y[rest][held]),
            "test": (x[test], y[test]),
        }
        return parts, ["negative", "positive"], "tlcourse", None
    raise AssertionError(name)


def _select(
    parts: dict,
    class_names: list[str],
    *,
    dataset: str,
    classes: list[int] | None,
    labels_per_class: int | None,
    caps: tuple[int | None, int | None],
    seed: int,
) -> tuple[dict, list[str]]:
    """Class view, relabelling, labels_per_class and profile caps on array splits."""
    out = {}
    for salt, split in enumerate(_SPLITS, start=10):
        x, y = parts[split]
        if classes is not None:
            mask = np.isin(y, classes)
            x, y = x[mask], y[mask]
            table = np.full(len(class_names), -1, np.int64)
            table[classes] = np.arange(len(classes))
            y = table[y]
        per_class = caps[0] if split == "train" else caps[1]
        if split == "train" and labels_per_class is not None:
            counts = np.bincount(y, minlength=len(classes or class_names))
            if labels_per_class > counts.min():
                raise DataError(
                    f"labels_per_class={labels_per_class} is more than {dataset!r} has: its smallest class has "
                    f"{counts.min()} training examples.",
                    hint=f"Use labels_per_class ≤ {counts.min()}.",
                )
            per_class = labels_per_class
        idx = _cap_indices(y, per_class, seed, salt)
        out[split] = (x[idx], y[idx])
    names = [class_names[c] for c in classes] if classes is not None else list(class_names)
    return out, names


def _to_rgb(x: np.ndarray) -> np.ndarray:
    if x.dtype == object:
        return x
    if x.ndim == 3:
        return np.repeat(x[..., None], 3, axis=-1)
    if x.shape[-1] == 1:
        return np.repeat(x, 3, axis=-1)
    return x


def _bundle_from_arrays(
    name: str,
    splits: dict,
    class_names: list[str],
    source: str,
    *,
    image_size: int | None,
    batch_size: int,
    seed: int,
) -> DataBundle:
    import tensorflow as tf

    datasets, arrays = {}, {}
    text = next(iter(splits.values()))[0].dtype == object
    for split, (x, y) in splits.items():
        x = _to_rgb(x)
        if text:
            ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(x), tf.string), y.astype(np.int64)))
        else:
            ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64)))
            if image_size is not None and x.shape[1:3] != (image_size, image_size):
                ds = ds.map(_resizer(image_size), num_parallel_calls=tf.data.AUTOTUNE)
            else:
                arrays[split] = (x, y.astype(np.int64))
        if text:
            arrays[split] = (x, y.astype(np.int64))
        datasets[split] = ds
    if text:
        shape = None
    elif image_size is not None:
        shape = (image_size, image_size, 3)
    else:
        shape = tuple(_to_rgb(splits["train"][0][:1]).shape[1:])
    return DataBundle(
        name=name,
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=class_names,
        source=source,
        sizes={s: int(len(splits[s][1])) for s in _SPLITS},
        image_shape=shape,
        batch_size=batch_size,
        seed=seed,
        _arrays=arrays,
    )


# --------------------------------------------------------------------------- tensorflow-datasets
def _tfds_data_dir() -> str | None:
    return os.environ.get("TFDS_DATA_DIR") or None


def _tfds_prepared(name: str) -> bool:
    """Whether tfds has this dataset on disk (no network: only the file system is read)."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=_tfds_data_dir())
    except Exception:  # an unreadable or partial data folder counts as "not prepared"
        return False
    return Path(builder.data_dir, "dataset_info.json").exists()


def _tfds_split_names(name: str, val_fraction: float) -> dict[str, str]:
    official = TFDS_DATASETS[name].splits
    if "validation" in official:
        return {"train": "train", "val": "validation", "test": "test"}
    p = max(1, int(round(val_fraction * 100)))
    if "test" in official:
        return {"train": f"train[:{100 - p}%]", "val": f"train[{100 - p}%:]", "test": "test"}
    return {
        "train": f"train[:{100 - 2 * p}%]",
        "val": f"train[{100 - 2 * p}%:{100 - p}%]",
        "test": f"train[{100 - p}%:]",
    }


def _tfds_bundle(
    name: str,
    *,
    image_size: int | None,
    classes: list[int] | None,
    labels_per_class: int | None,
    val_fraction: float,
    caps: tuple[int | None, int | None],
    batch_size: int,
    seed: int,
    download: bool,
) -> DataBundle:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=_tfds_data_dir())
    if download:
        builder.download_and_prepare()
    text = TFDS_DATASETS[name].text
    all_names = list(builder.info.features["label"].names)
    classes = _check_classes(classes, all_names, name)
    class_names = [all_names[c] for c in classes] if classes is not None else all_names
    k = len(class_names)
    decoders = None if text else {"image": tfds.decode.SkipDecoding()}
    datasets, sizes = {}, {}
    for salt, (split, tfds_split) in enumerate(_tfds_split_names(name, val_fraction).items(), start=10):
        ds = builder.as_dataset(split=tfds_split, as_supervised=True, shuffle_files=False, decoders=decoders)
        if classes is not None:
            table = np.full(len(all_names), -1, np.int64)
            table[classes] = np.arange(k)
            table_t = tf.constant(table)
            ds = ds.map(lambda x, y, t=table_t: (x, tf.gather(t, y))).filter(lambda x, y: y >= 0)
        per_class = caps[0] if split == "train" else caps[1]
        if split == "train" and labels_per_class is not None:
            per_class = labels_per_class
        if per_class is not None:
            ds = _cap_stream(
                ds.shuffle(1024, seed=seed * 1000 + salt, reshuffle_each_iteration=False), per_class, k
            )
        counts = (
            ds.map(lambda x, y: tf.one_hot(y, k, dtype=tf.int64))
            .reduce(tf.zeros([k], tf.int64), lambda a, b: a + b)
            .numpy()
        )
        if split == "train" and labels_per_class is not None and counts.min() < labels_per_class:
            raise DataError(
                f"labels_per_class={labels_per_class} is more than {name!r} has: its smallest class has "
                f"{counts.min()} training examples.",
                hint=f"Use labels_per_class ≤ {counts.min()}.",
            )
        if not text:
            ds = ds.map(_decoder(image_size), num_parallel_calls=tf.data.AUTOTUNE)
        datasets[split] = ds
        sizes[split] = int(counts.sum())
    if text:
        shape = None
    elif image_size is not None:
        shape = (image_size, image_size, 3)
    else:
        native = builder.info.features["image"].shape
        shape = (native[0], native[1], 3)
    return DataBundle(
        name=_view_name(name, classes, labels_per_class),
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=class_names,
        source="tfds",
        sizes=sizes,
        image_shape=shape,
        batch_size=batch_size,
        seed=seed,
    )


def _cap_stream(ds, per_class: int, num_classes: int):
    """Keep the first ``per_class`` examples of each class; stop reading once every class is full."""
    import tensorflow as tf

    def step(counts, element):
        x, y = element
        full_before = tf.reduce_all(counts >= per_class)
        keep = counts[y] < per_class
        counts = tf.tensor_scatter_nd_add(counts, [[y]], [1])
        return counts, (x, y, keep, full_before)

    ds = ds.scan(tf.zeros([num_classes], tf.int64), step)
    ds = ds.take_while(lambda x, y, keep, full: tf.logical_not(full))
    return ds.filter(lambda x, y, keep, full: keep).map(lambda x, y, keep, full: (x, y))


def _decoder(image_size: int | None):
    import tensorflow as tf

    def decode(encoded, label):
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        if image_size is not None:
            image = tf.image.resize(image, (image_size, image_size), antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image, label

    return decode


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
        members = np.flatnonzero(which == p)
        if len(members) == 0:
            continue
        top = rng.integers(0, photo.shape[0] - h + 1, size=len(members))
        left = rng.integers(0, photo.shape[1] - w + 1, size=len(members))
        rows = top[:, None] + np.arange(h)
        cols = left[:, None] + np.arange(w)
        patches = photo[rows[:, :, None], cols[:, None, :]]
        out[members] = np.abs(patches.astype(np.int16) - x[members].astype(np.int16)).astype(np.uint8)
    return out


def _domain_m(base: DataBundle, *, key_params: dict, seed: int) -> DataBundle:
    key = hashlib.sha1(
        json.dumps({**key_params, "recipe": RECIPE_VERSION}, sort_keys=True).encode()
    ).hexdigest()[:16]
    stem = key_params["name"].replace("/", "_")
    path = env.cache_dir("data") / f"{stem}_m-{key}.npz"
    cut = min((i for i in (base.name.find("["), base.name.find("@")) if i >= 0), default=len(base.name))
    name = f"{base.name[:cut]}_m{base.name[cut:]}"  # the view stays at the end: fashion_mnist_m[5-9]@10
    splits = {}
    if path.exists():
        with np.load(path) as cached:
            splits = {s: (cached[f"x_{s}"], cached[f"y_{s}"]) for s in _SPLITS}
    else:
        start = time.perf_counter()
        for salt, split in enumerate(_SPLITS, start=20):
            x, y = base.arrays(split)
            splits[split] = (_blend_with_photos(x, seed, salt), y)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp, **{f"x_{s}": splits[s][0] for s in _SPLITS}, **{f"y_{s}": splits[s][1] for s in _SPLITS}
        )
        tmp.replace(path)
        elapsed = time.perf_counter() - start
        total = sum(len(v[1]) for v in splits.values())
        env.say(
            f"built {name} ({total:,} images, MNIST-M recipe) in {elapsed:.1f} s; cached in {path.parent}"
        )
    bundle = _bundle_from_arrays(
        name,
        splits,
        base.class_names,
        f"{base.source}+mnist_m",
        image_size=None,
        batch_size=base.batch_size,
        seed=seed,
    )
    bundle.skipped = base.skipped
    return bundle


# --------------------------------------------------------------------------- load
def _standin_line(asked: str, used: str, reason: str) -> str:
    names = {"fashion_mnist": FASHION_CLASSES, "digits": [str(d) for d in range(10)],
             "photos": list(PHOTO_CLASSES), "sentiment": ["negative", "positive"]}[used.removesuffix("_m")]  # fmt: skip
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    return f"{reason}: {asked} → {used} stand-in ({len(names)} classes: {shown})"


def _resolve(name: str) -> tuple[str, str, str | None]:
    """(effective base name, how: "tfds" | "local" | "tfds-cached", announcement or None)."""
    offline = env.is_offline()
    if name in TFDS_DATASETS and not offline:
        return name, "tfds", None
    if name == "fashion_mnist" and (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        return name, "local", None
    if name in TFDS_DATASETS and _tfds_prepared(name):
        return name, "tfds-cached", None
    if name == "fashion_mnist":
        return name, "local", None  # raises a DataError that says how to install the files
    if name in TFDS_DATASETS:
        used = TFDS_DATASETS[name].standin
        return used, "local", _standin_line(name, used, "offline")
    return name, "local", None


def load(
    name: str,
    *,
    image_size: int | None = None,
    classes=None,
    labels_per_class: int | None = None,
    val_fraction: float = 0.1,
    course=None,
    seed: int = 0,
) -> DataBundle:
    """Load a dataset as a :class:`DataBundle` of three disjoint splits.

    Parameters
    ----------
    name : str
        ``fashion_mnist``, ``digits``, ``photos``, ``sentiment``, a tensorflow-datasets name
        (``cats_vs_dogs``, ``tf_flowers``, ``beans``, ``oxford_iiit_pet``, ``mnist``,
        ``imdb_reviews``), or ``<image set>_m`` for the MNIST-M target domain of an image set.
    image_size : int, optional
        Resize images to ``(image_size, image_size)``; default: native size.
    classes : sequence of int, optional
        Keep these original class ids, relabelled 0..k-1 in the given order.
    labels_per_class : int, optional
        Keep this many labelled training examples per class (seeded, nested across k).
    val_fraction : float
        Part of the training data held out for validation when the dataset has no
        validation split (and for test too when it has no test split).
    course : tlcourse.Course, optional
        Its budget caps examples per class; default: the last ``setup()``, else the
        profile named by ``TLCOURSE_PROFILE``, else no caps.
    seed : int
        Seeds the validation split, the subsets and the ``*_m`` patches.

    Examples
    --------
    >>> target = load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=10)
    >>> target.name, target.num_classes, target.sizes["train"]
    ('fashion_mnist[5-9]@10', 5, 50)
    >>> target.class_names[:2]
    ['Sandal', 'Shirt']
    """
    if not isinstance(name, str) or name not in KNOWN:
        raise unknown_name("dataset", name, KNOWN, error=DataError)
    val_fraction = _check_fraction(val_fraction)
    if labels_per_class is not None and (int(labels_per_class) != labels_per_class or labels_per_class < 1):
        raise DataError(f"labels_per_class={labels_per_class!r} must be a whole number ≥ 1.", hint="e.g. 10.")
    if image_size is not None and (int(image_size) != image_size or image_size < 8):
        raise DataError(f"image_size={image_size!r} must be a whole number ≥ 8.", hint="e.g. 96 or 160.")
    train_cap, eval_cap, batch_size = _caps(course)
    options = dict(image_size=image_size, classes=classes, labels_per_class=labels_per_class,
                   val_fraction=val_fraction, course=course, seed=seed)  # fmt: skip

    if name.endswith("_m"):
        base_name = name[:-2]
        used, how, line = _resolve(base_name)
        if line:
            env.say(line.replace(f"{base_name} → {used}", f"{name} → {used}_m"))
        base = _load_resolved(used, how, **options, caps=(train_cap, eval_cap), batch_size=batch_size)
        if base.image_shape is None:
            raise DataError(f"{name!r}: the MNIST-M recipe needs images.", hint=f"Use load({base_name!r}).")
        key_params = {"name": used, "how": how, "image_size": image_size, "classes": base.class_names,
                      "labels_per_class": labels_per_class, "val_fraction": val_fraction,
                      "caps": [train_cap, eval_cap], "seed": seed, "sizes": base.sizes}  # fmt: skip
        return _domain_m(base, key_params=key_params, seed=seed)

    used, how, line = _resolve(name)
    if line:
        env.say(line)
    return _load_resolved(used, how, **options, caps=(train_cap, eval_cap), batch_size=batch_size)


def _load_resolved(
    name: str,
    how: str,
    *,
    image_size,
    classes,
    labels_per_class,
    val_fraction,
    course,
    seed,
    caps,
    batch_size,
) -> DataBundle:
    del course
    if how in ("tfds", "tfds-cached"):
        return _tfds_bundle(
            name, image_size=image_size, classes=classes, labels_per_class=labels_per_class,
            val_fraction=val_fraction, caps=caps, batch_size=batch_size, seed=seed, download=how == "tfds",
        )  # fmt: skip
    parts, class_names, source, _ = _array_parts(name, val_fraction=val_fraction, seed=seed)
    chosen = _check_classes(classes, class_names, name)
    splits, names = _select(
        parts,
        class_names,
        dataset=name,
        classes=chosen,
        labels_per_class=labels_per_class,
        caps=caps,
        seed=seed,
    )
    return _bundle_from_arrays(
        _view_name(name, chosen, labels_per_class), splits, names, source,
        image_size=image_size, batch_size=batch_size, seed=seed,
    )  # fmt: skip


# --------------------------------------------------------------------------- a student's own folder
def load_folder(path, *, image_size: int = 224, val_fraction: float = 0.2, seed: int = 0) -> DataBundle:
    """Load a folder of images with one sub-folder per class.

    Files that are not images are skipped; images that cannot be decoded are skipped and
    counted (``bundle.skipped``); both are announced in one line. Of each class,
    ``val_fraction`` is held out for validation and as much again for test.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, keras
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for cls in ("ants", "bees"):
    ...     (root / cls).mkdir()
    ...     for i in range(5):
    ...         keras.utils.save_img(root / cls / f"{i}.png", np.full((20, 20, 3), 40 * i, np.uint8))
    >>> bundle = load_folder(root, image_size=32)
    >>> bundle.class_names, bundle.sizes
    (['ants', 'bees'], {'train': 6, 'val': 2, 'test': 2})
    """
    import tensorflow as tf

    val_fraction = _check_fraction(val_fraction)
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(
            f"The folder {str(root)!r} does not exist.", hint="Check the path (relative to the notebook)."
        )
    if not root.is_dir():
        raise DataError(
            f"{str(root)!r} is a file, not a folder.",
            hint="Pass the folder that holds one sub-folder per class.",
        )
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        loose = [p.name for p in root.iterdir() if p.is_file()][:3]
        raise DataError(
            f"{str(root)!r} has no class sub-folders"
            + (f" (it holds files such as {loose})." if loose else "."),
            hint="Put each class's images in its own sub-folder: folder/cats/1.jpg, folder/dogs/2.jpg, ...",
        )
    if len(class_dirs) < 2:
        raise DataError(
            f"{str(root)!r} has only one class sub-folder ({class_dirs[0].name!r}).",
            hint="A classifier needs at least two classes: add another sub-folder of images.",
        )
    skipped: dict[str, list[str]] = {"not an image": [], "corrupt": []}
    files, labels = [], []
    for label, folder in enumerate(class_dirs):
        for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            if file.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(str(file))
                labels.append(label)
            else:
                skipped["not an image"].append(str(file))

    def try_decode(file, label):
        image = tf.io.decode_image(tf.io.read_file(file), channels=3, expand_animations=False)
        return file, label, tf.shape(image)[0]

    good = tf.data.Dataset.from_tensor_slices((files, labels)) if files else None
    readable: set[str] = set()
    if good is not None:
        checked = good.map(try_decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
        readable = {f.decode() for f, _, _ in checked.as_numpy_iterator()}
    skipped["corrupt"] = [f for f in files if f not in readable]
    keep = [i for i, f in enumerate(files) if f in readable]
    files_arr = np.array([files[i] for i in keep], dtype=object)
    labels_arr = np.array([labels[i] for i in keep], np.int64)
    counts = np.bincount(labels_arr, minlength=len(class_dirs))
    empty = [class_dirs[c].name for c in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(
            f"Class folder(s) {empty} hold no readable image.",
            hint=f"Add images ({', '.join(IMAGE_EXTENSIONS)}) to them, or remove the empty folders.",
        )
    small = [class_dirs[c].name for c in np.flatnonzero(counts < 3)]
    if small:
        raise DataError(
            f"Class folder(s) {small} have fewer than 3 readable images: not enough for train, val and test.",
            hint="Add more images to every class (a few dozen each is a good start).",
        )
    rest, test = _stratified_split(labels_arr, val_fraction, seed, salt=2)
    keep_idx, val = _stratified_split(labels_arr[rest], val_fraction / (1 - val_fraction), seed, salt=1)
    index = {"train": rest[keep_idx], "val": rest[val], "test": test}
    if skipped["corrupt"] or skipped["not an image"]:
        env.say(
            f"load_folder: skipped {len(skipped['corrupt'])} corrupt image(s) and "
            f"{len(skipped['not an image'])} non-image file(s) in {root} (see bundle.skipped)"
        )

    def read(file, label):
        image = tf.io.decode_image(tf.io.read_file(file), channels=3, expand_animations=False)
        image = tf.image.resize(image, (image_size, image_size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    datasets = {}
    for split, idx in index.items():
        idx = np.random.default_rng([seed, 3]).permutation(idx)
        ds = tf.data.Dataset.from_tensor_slices((list(files_arr[idx]), labels_arr[idx]))
        datasets[split] = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return DataBundle(
        name=root.name,
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=[d.name for d in class_dirs],
        source="folder",
        sizes={s: int(len(i)) for s, i in index.items()},
        image_shape=(image_size, image_size, 3),
        skipped={k: v for k, v in skipped.items() if v},
        seed=seed,
    )


# --------------------------------------------------------------------------- augmentation
def augmentation(
    *, flip: bool = True, rotation: float = 0.1, zoom: float = 0.1, contrast: float = 0.1, seed=None
):
    """Random augmentation as Keras preprocessing layers (active only with ``training=True``).

    Examples
    --------
    >>> augment = augmentation(rotation=0.05)
    >>> [layer.__class__.__name__ for layer in augment.layers]
    ['RandomFlip', 'RandomRotation', 'RandomZoom', 'RandomContrast']
    """
    import keras

    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, seed=seed))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, seed=seed))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, seed=seed))
    return keras.Sequential(layers, name="augmentation")


# --------------------------------------------------------------------------- fetch and doctor
def fetch(name: str) -> dict[str, Any]:
    """Download and prepare a dataset for offline use (``tlcourse fetch NAME``).

    Datasets that ship with installed packages need nothing; tfds datasets are downloaded
    with tfds's own progress bars and checksum verification.

    Examples
    --------
    >>> fetch("digits")["source"]
    'sklearn'
    """
    if name not in KNOWN:
        raise unknown_name("dataset", name, KNOWN, error=DataError)
    base = name.removesuffix("_m")
    local = {"digits": "sklearn", "photos": "skimage", "sentiment": "tlcourse"}
    if base in local:
        return {"name": base, "source": local[base], "path": None, "bytes": 0, "downloaded": False}
    if base == "fashion_mnist" and (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        size = sum(p.stat().st_size for p in FASHION_DIR.glob("*.gz"))
        return {"name": base, "source": "debian:dataset-fashion-mnist", "path": str(FASHION_DIR), "bytes": size,
                "downloaded": False}  # fmt: skip
    if _tfds_prepared(base):
        return _tfds_entry(base, downloaded=False)
    if env.is_offline():
        raise OfflineError(
            f"Cannot download {base!r}: tlcourse is offline.",
            hint="Run `tlcourse fetch " + base + "` on a machine with internet (TFDS_DATA_DIR can point to a "
            "shared folder), or unset TLCOURSE_OFFLINE.",
        )
    import tensorflow_datasets as tfds

    start = time.perf_counter()
    tfds.builder(base, data_dir=_tfds_data_dir()).download_and_prepare()
    entry = _tfds_entry(base, downloaded=True)
    entry["seconds"] = round(time.perf_counter() - start, 1)
    return entry


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _tfds_entry(name: str, *, downloaded: bool) -> dict[str, Any]:
    import tensorflow_datasets as tfds

    folder = Path(tfds.builder(name, data_dir=_tfds_data_dir()).data_dir)
    return {
        "name": name,
        "source": "tfds",
        "path": str(folder),
        "bytes": _folder_bytes(folder),
        "downloaded": downloaded,
    }


def cached_datasets() -> list[dict[str, Any]]:
    """What ``load`` can use without network: rows of name, source, path and bytes (for ``tlcourse doctor``).

    Examples
    --------
    >>> rows = cached_datasets()
    >>> {"digits", "photos", "sentiment"} <= {row["name"] for row in rows}
    True
    """
    rows = [
        {"name": "digits", "source": "sklearn", "path": None, "bytes": 0},
        {"name": "photos", "source": "skimage", "path": None, "bytes": 0},
        {"name": "sentiment", "source": "tlcourse", "path": str(Path(__file__).parent / "assets" / "sentiment.csv"),
         "bytes": (Path(__file__).parent / "assets" / "sentiment.csv").stat().st_size},
    ]  # fmt: skip
    if (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        rows.append({"name": "fashion_mnist", "source": "debian:dataset-fashion-mnist", "path": str(FASHION_DIR),
                     "bytes": sum(p.stat().st_size for p in FASHION_DIR.glob("*.gz"))})  # fmt: skip
    for name in TFDS_DATASETS:
        if _tfds_prepared(name):
            entry = _tfds_entry(name, downloaded=False)
            entry.pop("downloaded")
            rows.append(entry)
    for file in sorted(env.cache_dir("data").glob("*_m-*.npz")):
        rows.append({"name": file.name.split("-")[0], "source": "tlcourse cache (MNIST-M recipe)",
                     "path": str(file), "bytes": file.stat().st_size})  # fmt: skip
    return rows
