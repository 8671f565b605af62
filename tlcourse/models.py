"""Pretrained bases and the small models of the course: :func:`backbone` and :func:`catalog` (ImageNet
bases from keras.applications, or EfficientNet-Lite0 whose weights work offline), :func:`imagenet_classifier`,
:func:`classifier`, :func:`headless`, :func:`unfreeze`, :func:`trainable_report`, :func:`small_cnn`,
:func:`source_model`, :func:`text_encoder` (MiniLM offline), and :func:`fetch` for the offline caches.

Every image model here takes raw RGB in [0, 255] and does its own preprocessing, so a wrong one can never
sneak in between the data and the weights. Lesson 00 builds the same models in plain Keras first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
from keras import ops

from tlcourse import _pypi_weights as pypi
from tlcourse import data, env, introspect
from tlcourse.errors import DataError, ModelError, OfflineError, unknown_name
from tlcourse.introspect import Table, recall, remember, trainable_report, unfreeze

__all__ = ["BaseInfo", "Preprocess", "TextEncoder", "backbone", "base_info", "cached_assets", "catalog",
           "check_images", "classifier", "decode_predictions", "fetch", "headless", "imagenet_classifier",
           "small_cnn", "source_facts", "source_model", "text_encoder", "trainable_report", "unfreeze"]  # fmt: skip

_CODE_VERSION = "1"  # bump when a cached artefact (converted Lite0 or MiniLM, source model) would change
_LITE0 = "efficientnet_lite0"
_MODES = {"tf": "x / 127.5 - 1 (range [-1, 1])", "caffe": "RGB→BGR, minus the ImageNet mean (caffe)",
          "inside": "built into the keras.applications model"}  # fmt: skip
# keras.applications with include_top=False: builder, parameters (a test checks the small ones; the big
# ones are Keras' documented figures), input size, minimum size, preprocessing, feature length, and the
# weight file ({top}: "" with the ImageNet head; {rows}: MobileNetV2 has one file per input size).
_KERAS_APPS: dict[str, tuple] = {
    "mobilenet_v2": ("MobileNetV2", 2_257_984, 224, 32, "tf", 1280,
                     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}{top}.h5"),
    "mobilenet_v3_small": ("MobileNetV3Small", 939_120, 224, 32, "inside", 576,
                           "weights_mobilenet_v3_small_224_1.0_float{top}.h5"),
    "resnet50": ("ResNet50", 23_587_712, 224, 32, "caffe", 2048, "resnet50_weights_tf_dim_ordering_tf_kernels{top}.h5"),
    "efficientnet_b0": ("EfficientNetB0", 4_049_571, 224, 32, "inside", 1280, "efficientnetb0{top}.h5"),
    "vgg16": ("VGG16", 14_714_688, 224, 32, "caffe", 512, "vgg16_weights_tf_dim_ordering_tf_kernels{top}.h5"),
    "inception_v3": ("InceptionV3", 21_802_784, 299, 75, "tf", 2048,
                     "inception_v3_weights_tf_dim_ordering_tf_kernels{top}.h5"),
    "xception": ("Xception", 20_861_480, 299, 71, "tf", 2048, "xception_weights_tf_dim_ordering_tf_kernels{top}.h5"),
}  # fmt: skip
_NO_TOP = {"mobilenet_v2": "_no_top", "mobilenet_v3_small": "_no_top_v2"}  # the others: "_notop"
_MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)
FETCHABLE_FROM_REGISTRY = (_LITE0, "minilm")
FETCHABLE = (*FETCHABLE_FROM_REGISTRY, *_KERAS_APPS)


# --------------------------------------------------------------------------- the catalogue
@dataclass(frozen=True)
class BaseInfo:
    """What the course knows about one pretrained base.

    ``params`` counts the feature extractor (no ImageNet head); ``input_size`` is the side its
    ImageNet weights were trained at, ``min_size`` the smallest side it takes; ``preprocessing`` is
    what it does to raw [0, 255] RGB; ``feature_dim`` the length of its pooled features; ``offline``
    whether its weights are on this machine (or can be made without a network).

    Examples
    --------
    >>> info = base_info("resnet50")
    >>> info.params, info.input_size, info.preprocessing
    (23587712, 224, 'RGB→BGR, minus the ImageNet mean (caffe)')
    """

    name: str
    params: int
    input_size: int
    min_size: int
    preprocessing: str
    feature_dim: int
    offline: bool = False


def base_info(model_or_name) -> BaseInfo:
    """The :class:`BaseInfo` of a base name, or of a model :func:`backbone` / :func:`imagenet_classifier` built.

    Examples
    --------
    >>> base_info("inception_v3").input_size
    299
    >>> base_info(small_cnn((28, 28, 3), 2))
    Traceback (most recent call last):
    ...
    tlcourse.errors.ModelError: 'small_cnn' is not a base that tlcourse built.
      hint: Pass a model from tlcourse.models.backbone(...) or imagenet_classifier(...), or a base name.
    """
    if isinstance(model_or_name, str):
        if model_or_name == _LITE0:
            return BaseInfo(_LITE0, 3_413_024, 224, 32, _MODES["tf"], 1280, offline=_lite0_available())
        if model_or_name not in _KERAS_APPS:
            raise unknown_name("base model", model_or_name, [_LITE0, *_KERAS_APPS], error=ModelError)
        _, params, size, min_size, mode, dim, _ = _KERAS_APPS[model_or_name]
        offline = _keras_weights_file(model_or_name) is not None
        return BaseInfo(model_or_name, params, size, min_size, _MODES[mode], dim, offline=offline)
    if recall(model_or_name, "info") is None:
        raise ModelError(f"{getattr(model_or_name, 'name', model_or_name)!r} is not a base that tlcourse built.",
                         hint="Pass a model from tlcourse.models.backbone(...) or imagenet_classifier(...), "
                         "or a base name.")  # fmt: skip
    return recall(model_or_name, "info")


class _Catalog(Table, list):
    columns = ("name", "params (M)", "input", "min", "features", "preprocessing", "offline")

    def cells(self):
        return [(b.name, f"{b.params / 1e6:.1f}", b.input_size, b.min_size, b.feature_dim, b.preprocessing,
                 "yes" if b.offline else "no") for b in self]  # fmt: skip


def catalog() -> _Catalog:
    """The bases :func:`backbone` knows, as a list of :class:`BaseInfo` that shows as a table.

    Examples
    --------
    >>> [b.name for b in catalog()][:3]
    ['efficientnet_lite0', 'mobilenet_v2', 'mobilenet_v3_small']
    >>> print(repr(catalog()).splitlines()[0])
    name                params (M)  input  min  features  preprocessing                             offline
    """
    return _Catalog(base_info(name) for name in (_LITE0, *_KERAS_APPS))


# --------------------------------------------------------------------------- preprocessing
@keras.saving.register_keras_serializable(package="tlcourse")
class Preprocess(keras.layers.Layer):
    """Raw RGB in [0, 255] → what a base expects: the first layer of every base built here.

    ``mode="tf"``: ``x / 127.5 - 1``; ``"caffe"``: RGB→BGR minus the ImageNet mean; ``"inside"``:
    a cast (the base normalises by itself), as ``keras.applications.<base>.preprocess_input`` does.

    Examples
    --------
    >>> Preprocess("tf")(np.array([[0.0, 127.5, 255.0]])).numpy().tolist()
    [[-1.0, 0.0, 1.0]]
    """

    _CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise unknown_name("preprocessing mode", mode, _MODES, error=ModelError)
        self.mode = mode

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(
                self._CAFFE_MEAN_BGR, dtype=self.compute_dtype
            )
        return x / 127.5 - 1.0 if self.mode == "tf" else x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="tlcourse")
class _Resize(keras.layers.Layer):
    """Resize to ``size × size`` (bilinear, no cropping). Not ``keras.layers.Resizing``: in front of a
    grafted base, that one lets the BatchNorm layers behind it run in training mode on a bare ``model(x)``."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        return ops.image.resize(
            ops.cast(x, self.compute_dtype), (self.size, self.size), interpolation="bilinear"
        )

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def check_images(base, images):
    """Return ``images`` if they suit an RGB base, else raise a :class:`DataError` saying how to fix them.

    Checks three colour channels (grayscale and RGBA are caught), raw values in [0, 255] rather than
    [0, 1], and sides not below the base's minimum. ``base`` is a name or a model from :func:`backbone`.

    Examples
    --------
    >>> x = np.zeros((2, 64, 64, 3), "uint8")
    >>> check_images("mobilenet_v2", x) is x
    True
    >>> check_images("mobilenet_v2", x.astype("float32") / 255)
    Traceback (most recent call last):
    ...
    tlcourse.errors.DataError: The images are floats with maximum 0.0 ≤ 1.0, but the base expects raw RGB in [0, 255].
      hint: Multiply by 255 (images * 255.0): the preprocessing is inside the model.
    """
    info = base_info(base) if isinstance(base, str) else recall(base, "info")
    shape = tuple(images.shape)
    if len(shape) == 3 and shape[-1] not in (1, 3, 4):
        raise DataError(f"The images have shape {shape}: grayscale without a channel axis, but the base takes RGB.",
                        hint="Make 3 channels: np.repeat(images[..., None], 3, axis=-1).")  # fmt: skip
    if len(shape) != 4:
        raise DataError(f"Expected a batch of images (n, height, width, 3); got shape {shape}.",
                        hint="Add a batch axis for one image: images[None].")  # fmt: skip
    fixes = {1: ("1 channel (grayscale", "Make 3 channels: np.repeat(images, 3, axis=-1) (or tf.image.grayscale_to_rgb)."),
             4: ("4 channels (RGBA", "Drop the alpha channel: images[..., :3] (or PIL's image.convert('RGB')).")}  # fmt: skip
    if shape[-1] != 3:
        what, fix = fixes.get(shape[-1], (f"{shape[-1]} channels (not 3", "Pass RGB images."))
        raise DataError(f"The images have {what}, shape {shape}), but the base takes RGB.", hint=fix)
    min_size = info.min_size if info else 1
    if min(shape[1:3]) < min_size:
        raise DataError(f"The images are {shape[1]}×{shape[2]} px, below this base's minimum of {min_size} px.",
                        hint=f"Resize them: keras.layers.Resizing({min_size}, {min_size}) or load(..., image_size=...).")  # fmt: skip
    top = float(ops.convert_to_numpy(ops.max(images))) if shape[0] else 0.0
    if (
        np.issubdtype(np.dtype(getattr(images.dtype, "as_numpy_dtype", images.dtype)), np.floating)
        and top <= 1
    ):
        raise DataError(f"The images are floats with maximum {top:.1f} ≤ 1.0, but the base expects raw RGB in [0, 255].",
                        hint="Multiply by 255 (images * 255.0): the preprocessing is inside the model.")  # fmt: skip
    return images


# --------------------------------------------------------------------------- bases
def _keras_weights_file(name: str, *, rows=224, cols=None, top: bool = False) -> Path | None:
    """The weight file keras.applications loads for this input size, if it is in Keras' cache."""
    if rows != (rows if cols is None else cols) or rows not in _MOBILENET_V2_SIZES:
        rows = 224  # what keras.applications.MobileNetV2 falls back to (the others have one file)
    file = _KERAS_APPS[name][6].format(rows=rows, top="" if top else _NO_TOP.get(name, "_notop"))
    path = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models" / file
    return path if path.is_file() else None


def _keras_app(name: str, inputs, *, weights, include_top: bool):
    """keras.applications' ``name`` on ``inputs``, with the weight file of this input size: loaded from
    Keras' cache when it is there, else downloaded by Keras, else (offline) a clear error at once."""
    path = weights and _keras_weights_file(name, rows=inputs.shape[1], cols=inputs.shape[2], top=include_top)
    if weights and not path and env.is_offline():
        raise OfflineError(f"The ImageNet weights of {name!r} are not on this machine, and tlcourse is offline.",
                           hint=f"Use backbone({_LITE0!r}) (real ImageNet weights that work offline), run "
                           f"`tlcourse fetch {name}` on a machine with internet, or pass weights=None.")  # fmt: skip
    # input_shape as well: given a tensor alone, MobileNetV2 picks its 224-px weights whatever the size.
    kwargs = dict(include_top=include_top, weights=None if path else weights, input_tensor=inputs,
                  input_shape=tuple(inputs.shape[1:]), classifier_activation=None)  # fmt: skip
    if name == "mobilenet_v3_small":
        kwargs["include_preprocessing"] = True
    try:
        model = getattr(keras.applications, _KERAS_APPS[name][0])(**kwargs)
    except Exception as exc:  # Keras' get_file raises a bare Exception (HTTP, DNS) or ValueError (bad hash)
        if path or not weights or not _is_download_failure(exc):
            raise
        reason = str(exc).splitlines()[0][-160:]
        raise OfflineError(f"The ImageNet weights of {name!r} could not be downloaded from "
                           f"storage.googleapis.com: {reason}",
                           hint=f"Try again later; meanwhile run with TLCOURSE_OFFLINE=1 (the lessons use their "
                           f"offline bases), or use backbone({_LITE0!r}), whose weights come from PyPI.") from None  # fmt: skip
    if path:
        model.load_weights(path)
    return model


def _is_download_failure(exc: BaseException) -> bool:
    text = str(exc)
    return "URL fetch failure" in text or "corrupted file" in text or isinstance(exc, (OSError, TimeoutError))


def _input_shape(info: BaseInfo, input_shape) -> tuple:
    shape = (
        (info.input_size,) * 2 + (3,) if input_shape is None else tuple(np.atleast_1d(input_shape).tolist())
    )
    shape = (*shape, 3) if len(shape) == 2 else shape
    if len(shape) != 3 or shape[-1] != 3:
        raise ModelError(f"input_shape={input_shape!r} must be (height, width, 3): ImageNet bases take RGB.",
                         hint="e.g. (160, 160, 3); make grayscale RGB with np.repeat(images, 3, axis=-1).")  # fmt: skip
    if any(side is not None and side < info.min_size for side in shape[:2]):
        raise ModelError(f"input_shape={input_shape!r} is below the minimum of {info.name} ({info.min_size} px).",
                         hint=f"Use at least ({info.min_size}, {info.min_size}, 3); its weights were trained "
                         f"at {info.input_size} px.")  # fmt: skip
    return shape


def _graft(model: keras.Model, inputs, prefix) -> Any:
    """Copy ``model``'s layers and weights onto ``prefix(inputs)``: one flat graph of fresh layers. Flat
    keeps every conv layer reachable with ``get_layer`` (feature maps, Grad-CAM); fresh layers have one
    inbound node (so probes on ``base.inputs`` work) and fine-tuning the copy leaves the original alone."""
    feed = prefix(inputs)

    def call(layer, *args, **kwargs):
        return layer(*keras.tree.map_structure(lambda t: feed if t is inputs else t, args), **kwargs)

    plain = keras.Model(model.inputs, model.outputs)
    flat = keras.models.clone_model(plain, input_tensors=[inputs], call_function=call)
    for layer in plain.layers:
        if layer.weights:
            flat.get_layer(layer.name).set_weights(layer.get_weights())
    return flat.outputs[0] if len(flat.outputs) == 1 else flat.outputs


def backbone(
    name: str = _LITE0, *, weights="imagenet", input_shape=None, trainable: bool = False
) -> keras.Model:
    """A pretrained base: raw RGB [0, 255] in, one pooled feature vector per image out (layer ``avg_pool``).

    What lesson 00 writes by hand: ``Input → preprocessing → keras.applications.<Base>(include_top=False)
    → GlobalAveragePooling2D``, frozen; flat, so ``get_layer`` reaches every conv layer.

    Parameters
    ----------
    name : str
        One of :func:`catalog`'s names; ``efficientnet_lite0`` has its ImageNet weights offline.
    weights : {"imagenet", None}
        ``None``: the same architecture with random weights (always available).
    input_shape : tuple, optional
        ``(height, width, 3)``, not below the base's minimum; default its own input size.
    trainable : bool
        ``False`` freezes the base; ``True`` is :func:`unfreeze` (BatchNorm stays frozen).

    Examples
    --------
    >>> base = backbone("mobilenet_v3_small", weights=None, input_shape=(64, 64, 3))
    >>> base.output.shape, base.trainable, base_info(base).min_size
    ((None, 576), False, 32)
    >>> backbone("mobilenet_v2", weights="random")
    Traceback (most recent call last):
    ...
    tlcourse.errors.ModelError: weights='random' is not supported.
      hint: Use weights="imagenet" or weights=None.
    """
    info = base_info(name)
    if weights not in ("imagenet", None):
        raise ModelError(f"weights={weights!r} is not supported.", hint='Use weights="imagenet" or weights=None.')  # fmt: skip
    inputs = keras.Input(_input_shape(info, input_shape), name="image")
    if name == _LITE0 and weights:
        full = _lite0_full_model()
        features = _graft(keras.Model(full.inputs, full.get_layer("avg_pool").output), inputs, lambda x: x)
    else:
        x = Preprocess(_KERAS_APPS[name][4] if name in _KERAS_APPS else "tf", name="preprocess")(inputs)
        if name == _LITE0:
            import keras_hub

            hub = keras_hub.models.EfficientNetBackbone(**introspect.timm_efficientnet_config(_LITE0))
            maps = _graft(hub, inputs, lambda _: x)
        else:
            maps = _keras_app(name, x, weights=weights, include_top=False).output
        features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(maps)
    model = keras.Model(inputs, features, name=name)
    remember(model, info=info)
    if trainable:
        return unfreeze(model)
    model.trainable = False
    return model


def imagenet_classifier(name: str = _LITE0, *, image_size: int | None = None) -> keras.Model:
    """The 1000-class ImageNet model of a base: raw RGB [0, 255] of any size in, logits out.

    Images are resized inside to ``image_size`` (default: the base's own) without cropping.
    Offline, ``efficientnet_lite0`` is the one whose weights are here.

    Examples
    --------
    >>> from skimage.data import chelsea
    >>> model = imagenet_classifier()
    >>> decode_predictions(model.predict(chelsea()[None], verbose=0), top=1)  # doctest: +ELLIPSIS
    [[(285, 'Egyptian_cat', ...)]]
    """
    info = base_info(name)
    size = int(image_size or info.input_size)
    allowed = _MOBILENET_V2_SIZES if name == "mobilenet_v2" else (info.input_size,)
    if name != _LITE0 and size not in allowed:
        raise ModelError(f"The ImageNet head of {name} takes {' or '.join(map(str, allowed))} px, not {size}.",
                         hint=f"Pass image_size={info.input_size}, or put a head of your own on backbone({name!r}).")  # fmt: skip
    _input_shape(info, (size, size, 3))
    inputs = keras.Input((None, None, 3), name="image")
    if name == _LITE0:
        outputs = _graft(_lite0_full_model(), inputs, _Resize(size, name="resize"))
    else:
        x = Preprocess(_KERAS_APPS[name][4], name="preprocess")(_Resize(size, name="resize")(inputs))
        outputs = _keras_app(name, x, weights="imagenet", include_top=True).output
    model = keras.Model(inputs, outputs, name=f"{name}_imagenet")
    remember(model, info=info)
    return model


def decode_predictions(logits_or_probs, *, top: int = 5) -> list[list[tuple[int, str, float]]]:
    """The ``top`` ImageNet classes of each row: ``(class_index, name, probability)``.

    Logits go through a softmax; rows that are probabilities already are kept. The class names
    come with keras-hub, so unlike ``keras.applications``' own this works offline.

    Examples
    --------
    >>> logits = np.zeros((1, 1000)); logits[0, 285] = 10.0
    >>> decode_predictions(logits, top=1)  # doctest: +ELLIPSIS
    [[(285, 'Egyptian_cat', 0.9566...)]]
    """
    scores = np.asarray(ops.convert_to_numpy(logits_or_probs), dtype="float64")
    if scores.ndim != 2 or scores.shape[1] != 1000:
        raise ModelError(f"Expected ImageNet scores of shape (n, 1000); got {scores.shape}.",
                         hint="Pass the output of imagenet_classifier(...).predict(images).")  # fmt: skip
    if not (scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)):
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
    from keras_hub.utils import imagenet_id_to_name  # imports TensorFlow Text: slow, so only when needed

    return [[(int(i), imagenet_id_to_name(int(i)), float(row[i])) for i in np.argsort(row)[::-1][:top]]
            for row in scores]  # fmt: skip


# --------------------------------------------------------------------------- EfficientNet-Lite0
def _lite0_keras_file() -> Path:
    return env.cache_dir("weights", _LITE0) / f"{_LITE0}_imagenet.v{_CODE_VERSION}.keras"


def _lite0_available() -> bool:
    return _lite0_keras_file().is_file() or pypi.find_package(pypi.LITE0, pypi.LITE0_PTH) is not None


def _convert_lite0(*, progress: bool = True) -> Path:
    """The cached Keras Lite0 classifier, made from the PyPI file once per machine with keras-hub's timm
    converter, flat and with its preprocessing inside like the other bases."""
    import keras_hub

    target = _lite0_keras_file()
    if target.is_file():
        return target
    preset = Path(tempfile.mkdtemp(prefix="timm_preset.", dir=target.parent))  # private: converters may race
    try:
        pypi.make_lite0_preset(preset, progress=progress)
        hub = keras_hub.models.ImageClassifier.from_preset(str(preset))
        inputs = keras.Input((None, None, 3), name="image")
        x = _graft(hub.backbone, inputs, Preprocess("tf", name="preprocess"))
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        model = keras.Model(
            inputs, keras.layers.Dense(1000, name="predictions", dtype="float32")(x), name=_LITE0
        )
        model.get_layer("predictions").set_weights(hub.get_layer("predictions").get_weights())
        _save_atomically(model, target)
    finally:
        shutil.rmtree(preset, ignore_errors=True)
    return target


def _lite0_full_model() -> keras.Model:
    """The converted Lite0 classifier (raw RGB in, 1000 logits out), loaded once per file: only grafted from."""
    return _load_once(str(_convert_lite0()))


@functools.cache
def _load_once(path: str) -> keras.Model:
    return keras.saving.load_model(path, compile=False)


def _save_atomically(model: keras.Model, target: Path) -> None:
    partial = target.with_name(f"{target.stem}.{os.getpid()}.partial.keras")
    model.save(partial)
    partial.replace(target)


# --------------------------------------------------------------------------- heads
def classifier(base: keras.Model, num_classes: int, *, head: str = "linear", dropout: float = 0.2,
               name: str | None = None) -> keras.Model:  # fmt: skip
    """Put a new head on a base: ``base → (GAP) → dropout → [Dense 256 relu → dropout] → Dense(logits)``.

    The base is nested as one layer and called with ``training=False``, so ``base.trainable`` and
    :func:`unfreeze` act on it. The logits layer is float32 under mixed precision; train with
    ``SparseCategoricalCrossentropy(from_logits=True)``. ``head`` is ``"linear"`` or ``"mlp"``.

    Examples
    --------
    >>> base = backbone("mobilenet_v3_small", weights=None, input_shape=(64, 64, 3))
    >>> model = classifier(base, 5, head="mlp")
    >>> model.output.shape, model.layers[-1].dtype_policy.name
    ((None, 5), 'float32')
    >>> classifier(base, 1)
    Traceback (most recent call last):
    ...
    tlcourse.errors.ModelError: num_classes=1: a classifier needs at least 2 classes.
      hint: For a yes/no task use num_classes=2 with SparseCategoricalCrossentropy(from_logits=True).
    """
    _check_classes(num_classes)
    if head not in ("linear", "mlp"):
        raise unknown_name("head", head, ("linear", "mlp"), error=ModelError)
    if not 0 <= dropout < 1:
        raise ModelError(f"dropout={dropout!r} must be in [0, 1).", hint="e.g. 0.2.")
    inputs = keras.Input(base.inputs[0].shape[1:], name="image")
    x = base(inputs, training=False)
    if len(x.shape) not in (2, 4):
        raise ModelError(f"The base gives outputs of shape {x.shape}; a head needs feature vectors.",
                         hint="Pass a base that ends in feature maps or vectors, e.g. backbone(...).")  # fmt: skip
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x) if len(x.shape) == 4 else x
    if head == "mlp":
        x = keras.layers.Dropout(dropout, name="head_dropout_1")(x) if dropout else x
        x = keras.layers.Dense(256, activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x) if dropout else x
    logits = keras.layers.Dense(int(num_classes), name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=name or f"{base.name}_classifier")


def _check_classes(num_classes) -> None:
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ModelError(f"num_classes={num_classes!r}: a classifier needs at least 2 classes.",
                         hint="For a yes/no task use num_classes=2 with SparseCategoricalCrossentropy(from_logits=True).")  # fmt: skip


def headless(model: keras.Model, *, layer: str | None = None) -> keras.Model:
    """The feature part of a classifier: its inputs up to ``layer`` (default: the layer before the
    last Dense and its Dropout), sharing the classifier's layers and weights.

    Examples
    --------
    >>> headless(small_cnn((28, 28, 3), 5)).output.shape, headless(small_cnn((28, 28, 3), 5), layer="pool2").output.shape
    ((None, 128), (None, 7, 7, 64))
    """
    names = [lay.name for lay in model.layers]
    if layer is None:
        dense = [i for i, lay in enumerate(model.layers) if isinstance(lay, keras.layers.Dense)]
        if not dense:
            raise ModelError(f"{model.name} has no Dense layer to cut off.", hint="Pass layer=<name>.")
        cut = dense[-1] - 1
        while isinstance(model.layers[cut], keras.layers.Dropout):
            cut -= 1
        layer = names[cut]
    elif layer not in names:
        raise unknown_name(f"layer of {model.name}", layer, names, error=ModelError)
    return keras.Model(model.inputs, model.get_layer(layer).output, name=f"{model.name}_features")


# --------------------------------------------------------------------------- small models
def small_cnn(input_shape, num_classes: int, *, name: str = "small_cnn") -> keras.Model:
    """The small CNN of the scratch-vs-transfer comparisons: raw [0, 255] in, logits out.

    ``Rescaling(1/255) → 3 × (Conv 3×3 + ReLU [+ MaxPool]) → GAP "gap" → Dense 128 "features" →
    Dropout → Dense "logits"``. :func:`headless` cuts it at ``features``.

    Examples
    --------
    >>> small_cnn((28, 28, 3), 10).count_params()
    111050
    """
    _check_classes(num_classes)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape[:2]) < 8:
        raise ModelError(f"input_shape={input_shape!r} must be (height ≥ 8, width ≥ 8, channels).",
                         hint="e.g. (28, 28, 3).")  # fmt: skip
    inputs = keras.Input(shape, name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{i}")(x) if i < 3 else x
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(128, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    logits = keras.layers.Dense(int(num_classes), name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=name)


def source_model(name: str = "fashion_mnist", *, classes: Sequence[int] = (0, 1, 2, 3, 4), epochs: int = 5,
                 seed: int = 0, progress: bool = True) -> keras.Model:  # fmt: skip
    """:func:`small_cnn` trained on the source classes of a dataset, cached as a ``.keras`` file.

    Trained once per machine and arguments, on all the source data whatever the profile, then
    loaded from ``cache_dir("models")``; :func:`source_facts` tells what it was trained on.

    Examples
    --------
    >>> model = source_model(progress=False)
    >>> model.output.shape, source_facts(model)["class_names"][:2]
    ((None, 5), ['T-shirt/top', 'Trouser'])
    """
    classes = [int(c) for c in classes]
    if len(classes) < 2:
        raise ModelError(f"classes={classes!r}: a source task needs at least 2 classes.", hint="e.g. (0, 1, 2, 3, 4).")  # fmt: skip
    if int(epochs) != epochs or epochs < 1:
        raise ModelError(f"epochs={epochs!r} must be a whole number ≥ 1.", hint="e.g. epochs=5.")
    key = json.dumps({"name": name, "classes": classes, "epochs": int(epochs), "seed": int(seed),
                      "code": _CODE_VERSION, "keras": keras.__version__.split(".")[0]}, sort_keys=True)  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    path = env.cache_dir("models") / f"source_{name}_{'-'.join(map(str, classes))}_{epochs}e_s{seed}_{digest}.keras"  # fmt: skip
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        full = SimpleNamespace(budget=env.PROFILES["full"])  # the source model always sees all of its data
        bundle = data.load(name, classes=classes, course=full, seed=seed)
        (x, y), val, test = bundle.arrays("train"), bundle.arrays("val"), bundle.arrays("test")
        if progress:
            env.say(f"training the source model on {bundle.name} ({len(x)} images, {epochs} epochs; cached after)")  # fmt: skip
        keras.utils.set_random_seed(seed)
        model = small_cnn(x.shape[1:], len(classes), name=f"source_{name}")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])  # fmt: skip
        started = time.perf_counter()
        model.fit(x, y, validation_data=val, epochs=int(epochs), batch_size=128, verbose=1 if progress else 0)
        seconds = time.perf_counter() - started
        _, accuracy = model.evaluate(*test, batch_size=256, verbose=0)
        _save_atomically(model, path)
        meta_path.write_text(json.dumps({"dataset": bundle.name, "class_names": bundle.class_names,
                                         "train_size": int(len(x)), "epochs": int(epochs), "seed": int(seed),
                                         "train_seconds": round(seconds, 1), "test_accuracy": round(float(accuracy), 4)}))  # fmt: skip
    model = keras.saving.load_model(path, compile=False)
    remember(model, source=json.loads(meta_path.read_text()))
    return model


def source_facts(model) -> dict:
    """What :func:`source_model` recorded about a source model: dataset, classes, epochs, test accuracy.

    Examples
    --------
    >>> source_facts(source_model(progress=False))["test_accuracy"] > 0.85
    True
    """
    if recall(model, "source") is None:
        raise ModelError("This model did not come from tlcourse.models.source_model().", hint="Use source_model().")  # fmt: skip
    return recall(model, "source")


# --------------------------------------------------------------------------- text encoder
def _minilm_dir() -> Path:
    return env.cache_dir("weights") / f"minilm.v{_CODE_VERSION}"


class TextEncoder:
    """A pretrained text encoder: sentences in, mean-pooled, L2-normalised embeddings out.

    ``backbone`` is the keras-hub transformer (token ids → one vector per token), ``tokenizer`` its
    tokenizer; sentences longer than ``sequence_length`` tokens are cut.

    Examples
    --------
    >>> encoder = text_encoder("minilm", sequence_length=16)
    >>> encoder, encoder.inputs(["Hello world."])["token_ids"][0, :4].tolist()
    (TextEncoder('minilm', dim=384, sequence_length=16), [101, 7592, 2088, 1012])
    """

    def __init__(self, name: str, backbone, tokenizer, *, sequence_length: int = 128):
        import keras_hub

        self.name, self.backbone, self.tokenizer = name, backbone, tokenizer
        self.sequence_length = int(sequence_length)
        start = getattr(tokenizer, "cls_token_id", None) or getattr(tokenizer, "start_token_id", None)
        end = getattr(tokenizer, "sep_token_id", None) or getattr(tokenizer, "end_token_id", None)
        self.pad_id = int(getattr(tokenizer, "pad_token_id", 0) or 0)
        self._packer = keras_hub.layers.StartEndPacker(start_value=start, end_value=end, pad_value=self.pad_id,
                                                       sequence_length=self.sequence_length)  # fmt: skip
        self._segments = "segment_ids" in {t.name for t in getattr(backbone, "inputs", None) or []}

    @property
    def dim(self) -> int:
        return int(self.backbone.hidden_dim)

    def inputs(self, sentences: Sequence[str]) -> dict[str, np.ndarray]:
        """Token ids, padding mask (and segment ids) for a list of sentences."""
        if isinstance(sentences, str):
            raise DataError(
                "The encoder takes a list of sentences, not one string.", hint='Use embed(["..."]).'
            )
        ids = ops.convert_to_numpy(self._packer(self.tokenizer(list(sentences)))).astype("int32")
        features = {"token_ids": ids, "padding_mask": ids != self.pad_id}
        return {**features, "segment_ids": np.zeros_like(ids)} if self._segments else features

    def embed(self, sentences: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embeddings of shape ``(len(sentences), dim)``, each of unit length (cosine = dot product)."""
        features = self.inputs(sentences)
        chunks = []
        for start in range(0, len(features["token_ids"]), batch_size):
            batch = {k: v[start : start + batch_size] for k, v in features.items()}
            out = self.backbone(batch, training=False)
            tokens = ops.convert_to_numpy(out["sequence_output"] if isinstance(out, dict) else out)
            mask = batch["padding_mask"][..., None].astype(tokens.dtype)
            pooled = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
            chunks.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), "float32")

    def __repr__(self) -> str:
        return f"TextEncoder({self.name!r}, dim={self.dim}, sequence_length={self.sequence_length})"


def text_encoder(name: str = "minilm", *, sequence_length: int = 128) -> TextEncoder:
    """A pretrained sentence encoder: ``"minilm"`` (all-MiniLM-L6-v2, works offline) or a keras-hub preset.

    Examples
    --------
    >>> encoder = text_encoder("minilm")
    >>> a, b, c = encoder.embed(["A man is playing a guitar.", "Someone plays the guitar.", "Stocks fell."])
    >>> bool(a @ b > a @ c + 0.4)
    True
    """
    import keras_hub

    if name == "minilm":
        folder = str(pypi.make_minilm_preset(_minilm_dir()))
        return TextEncoder(name, keras_hub.models.BertBackbone.from_preset(folder),
                           keras_hub.models.BertTokenizer.from_preset(folder), sequence_length=sequence_length)  # fmt: skip
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
        raise unknown_name("text encoder", name, ("minilm",), error=ModelError)
    if env.is_offline():
        raise OfflineError(f"The keras-hub preset {name!r} needs a download, and tlcourse is offline.",
                           hint='Use text_encoder("minilm") (works offline after `tlcourse fetch minilm`).')  # fmt: skip
    try:
        backbone, tokenizer = (keras_hub.models.Backbone.from_preset(name),
                               keras_hub.tokenizers.Tokenizer.from_preset(name))  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        raise ModelError(f"keras-hub has no usable preset {name!r} ({exc}).",
                         hint='See keras_hub.models.Backbone.presets, e.g. "bert_tiny_en_uncased".') from None  # fmt: skip
    return TextEncoder(name, backbone, tokenizer, sequence_length=sequence_length)


# --------------------------------------------------------------------------- fetch and doctor
def fetch(names: str | Iterable[str], *, progress: bool = True) -> dict[str, Path]:
    """Download and convert weights into the caches, for an offline classroom; returns name → cached path.

    ``efficientnet_lite0`` and ``minilm`` come from PyPI wheels (pip checks their sha256, the weight
    files inside are pinned); keras.applications names need internet.

    Examples
    --------
    >>> fetch([], progress=False)
    {}
    >>> fetch("minilm", progress=False)["minilm"].name
    'minilm.v1'
    """
    done = {}
    for name in [names] if isinstance(names, str) else list(names):
        if name not in FETCHABLE:
            raise unknown_name("model to fetch", name, FETCHABLE, error=ModelError)
        if name == _LITE0:
            done[name] = _convert_lite0(progress=progress)
        elif name == "minilm":
            done[name] = pypi.make_minilm_preset(_minilm_dir(), progress=progress)
        elif env.is_offline():
            raise OfflineError(f"{name!r} weights come from storage.googleapis.com, and tlcourse is offline.",
                               hint=f"Run `tlcourse fetch {name}` where there is internet; offline, use {_LITE0}.")  # fmt: skip
        else:
            for top in (False, True):
                _keras_app(name, keras.Input((*[_KERAS_APPS[name][2]] * 2, 3)), weights="imagenet", include_top=top)  # fmt: skip
            done[name] = _keras_weights_file(name)
    return done


def cached_assets() -> dict[str, Path | None]:
    """What is ready for offline use: name → cached file or folder, or None (``tlcourse doctor``).

    Examples
    --------
    >>> sorted(cached_assets())[:2]
    ['efficientnet_b0', 'efficientnet_lite0']
    """
    packaged = {_LITE0: (_lite0_keras_file(), pypi.LITE0, pypi.LITE0_PTH),
                "minilm": (_minilm_dir() / "model.safetensors", pypi.MINILM, pypi.MINILM_SAFETENSORS)}  # fmt: skip
    ready = {name: path if path.is_file() else (pypi.find_package(*where) or (None, None))[1]
             for name, (path, *where) in packaged.items()}  # fmt: skip
    return {**ready, **{name: _keras_weights_file(name) for name in _KERAS_APPS}}
