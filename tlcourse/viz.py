"""Seeing inside the network: feature maps, filters, Grad-CAM, an interactive explorer, and the course's plots.

Every function returns a matplotlib ``Figure`` (or an object holding one, with the data behind it) and
never calls ``plt.show()``: the figure is closed in pyplot, so Jupyter displays it exactly once, when
it is the value of the cell. Assign it (``fig = viz.history(h)``) and show it later with ``fig``.

Models are probed in the Keras 3 way: the intermediate outputs of a base nested inside a classifier
(Functional or Sequential) are read through a probe built from the base's own ``inputs`` and called
on the tensor that feeds the base in the outer graph, so one probe model answers for every layer.
"""

from __future__ import annotations

import functools
import io
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import matplotlib.pyplot as plt  # importing pyplot lets Jupyter's inline backend register its formatters
import numpy as np

from tlcourse.env import say
from tlcourse.errors import VizError, unknown_name
from tlcourse.introspect import functional_graph, nodes_in_order, walk_layers

__all__ = [
    "FeatureMapExplorer",
    "FeatureMaps",
    "GradCam",
    "LayerInfo",
    "augmentations",
    "compare",
    "confusion",
    "embeddings",
    "feature_maps",
    "filters",
    "grad_cam",
    "history",
    "map_layers",
    "predictions",
]

FIGURE_WIDTH = 9.5  # inches: fits JupyterLab's default notebook width and Colab without scrolling
_MAX_CLASS_TICKS = 30

# Layers whose output is spatial but says nothing about what the network has learned.
_PLUMBING = (
    "InputLayer",
    "ZeroPadding2D",
    "Cropping2D",
    "Dropout",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "Rescaling",
    "Normalization",
    "Resizing",
    "CenterCrop",
    "Identity",
    "Preprocess",  # tlcourse.models' input scaling
)
_BLOCK_PATTERNS = [
    re.compile(p)
    for p in (
        r"^(conv\d+_block\d+)_",  # ResNet
        r"^(block_?\d+[a-z]?)_",  # EfficientNet, VGG, MobileNetV2
        r"^(expanded_conv(?:_\d+)?)_",  # MobileNetV3
        r"^(stem|top)_",  # EfficientNet stem and head
        r"^(stage\d+_(?:unit|block)\d+)_",
        r"^(mixed\d+)",  # Inception
    )
]


# --------------------------------------------------------------------------- figures
def _new_figure(width: float, height: float):
    fig = plt.figure(figsize=(min(width, FIGURE_WIDTH), height), layout="constrained")
    # Closed in pyplot so the inline backend does not show it at the end of the cell as well:
    # Jupyter shows the returned Figure once, through its display formatter.
    plt.close(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    return buffer.getvalue()


def _to_display(image: np.ndarray) -> np.ndarray:
    """An image as float RGB in [0, 1] (or grey HxW) for imshow, whatever its range."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.max(initial=0.0) > 1.5:
        image = image / 255.0
    elif image.min(initial=0.0) < 0:
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-12)
    return np.clip(image, 0.0, 1.0)


# --------------------------------------------------------------------------- model structure
def _keras():
    import keras

    return keras


def _ensure_graph(model):
    keras = _keras()
    if not isinstance(model, keras.Model):
        raise VizError(
            f"Expected a Keras model, got {type(model).__name__}.",
            hint="Pass the keras.Model itself (for example tlcourse.models.backbone('efficientnet_lite0')).",
        )
    graph = functional_graph(model)
    if graph is None:
        if isinstance(model, keras.Sequential) or not model.built:
            raise VizError(
                f"Model {model.name!r} was never built, so its layers have no outputs to look at yet.",
                hint="Start it with keras.Input(shape=...) as its first layer, or call "
                "model.build((None, height, width, channels)) before visualising it.",
            )
        raise VizError(
            f"Model {model.name!r} is a subclassed model: Keras keeps no graph of its layers to probe.",
            hint="Build it with the Functional API or keras.Sequential, or visualise the Functional base inside it.",
        )
    return graph


def _model_inputs(model) -> list:
    # Sequential.input raises when the model was built from a shape; .inputs always works once built.
    return list(_ensure_graph(model).inputs)


@dataclass(eq=False)
class _Entry:
    name: str
    layer: Any
    node: Any
    path: tuple  # models from the root down to the one whose graph holds ``node``
    group: str

    @property
    def shape(self) -> tuple:
        return tuple(self.node.output_tensors[0].shape)


def _block_of(name: str) -> str:
    for pattern in _BLOCK_PATTERNS:
        match = pattern.match(name)
        if match:
            return match.group(1)
    return name


def _walk(model, path=()) -> Iterable[_Entry]:
    graph = _ensure_graph(model)
    path = (*path, model)
    for node in nodes_in_order(graph):
        layer = node.operation
        if node.is_input:
            continue
        if functional_graph(layer) is not None and isinstance(layer, _keras().Model):
            yield from _walk(layer, path)
            continue
        yield _Entry(layer.name, layer, node, path, _block_of(layer.name))


def _is_spatial(entry: _Entry) -> bool:
    return len(entry.shape) == 4


def _kind(layer) -> str:
    return type(layer).__name__


def _is_conv(layer) -> bool:
    return hasattr(layer, "kernel_size") and hasattr(layer, "strides") and "Conv" in _kind(layer)


def _all_entries(model) -> list[_Entry]:
    seen, entries = set(), []
    for entry in _walk(model):
        if entry.name not in seen:  # a shared layer is shown at its first call
            seen.add(entry.name)
            entries.append(entry)
    return entries


def _map_entries(model) -> list[_Entry]:
    return [e for e in _all_entries(model) if _is_spatial(e) and _kind(e.layer) not in _PLUMBING]


def map_layers(model) -> list[str]:
    """Names of the layers of ``model`` (nested bases included) whose outputs are feature maps.

    Parameters
    ----------
    model : keras.Model
        A built Functional or Sequential model, possibly with a base nested inside.

    Returns
    -------
    list of str
        Layer names in the order the image flows through them.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> [name.split("_")[0] for name in map_layers(model)]
    ['conv2d', 'max']
    """
    return [e.name for e in _map_entries(model)]


def _resolve(model, layers, entries: list[_Entry] | None = None) -> list[_Entry]:
    entries = entries if entries is not None else _map_entries(model)
    everything = {e.name: e for e in _all_entries(model)}
    by_name = {e.name: e for e in entries}
    chosen = []
    for item in layers:
        name = item if isinstance(item, str) else getattr(item, "name", str(item))
        if name in by_name:
            chosen.append(by_name[name])
        elif name in everything:
            entry = everything[name]
            if not _is_spatial(entry):
                raise VizError(
                    f"Layer {name!r} outputs shape {entry.shape}: no spatial feature maps to draw.",
                    hint=f"Layers with maps: {_summarise(list(by_name))}.",
                )
            chosen.append(entry)
        else:
            err = unknown_name("layer", name, by_name, error=VizError)
            raise VizError(
                err.message,
                hint=f"{err.hint.split(' Known:')[0]} Layers with maps: {_summarise(list(by_name))}.".strip(),
            )
    return chosen


def _summarise(names: list[str], limit: int = 40) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return (
        ", ".join(names[: limit // 2])
        + f", … ({len(names) - limit} more) …, "
        + ", ".join(names[-limit // 2 :])
    )


def _default_entries(entries: list[_Entry], fields: dict, n: int = 6) -> list[_Entry]:
    """The first convolution (after its activation), then block outputs spread to the last block.

    Blocks come from the layer names (``block3b_*``, ``conv4_block2_*``, ...); layers of a plain CNN are
    blocks of their own. The last block at each resolution (cumulative stride) is preferred, so the rows
    walk down the resolutions, edges to parts.
    """
    if not entries:
        return []
    convs = [i for i, e in enumerate(entries) if _is_conv(e.layer)]
    start = convs[0] if convs else 0
    first = start
    activation = getattr(entries[start].layer, "activation", None)
    if convs and getattr(activation, "__name__", "linear") == "linear":
        for i in range(start + 1, len(entries)):
            if _is_conv(entries[i].layer):
                break
            if "Activation" in _kind(entries[i].layer) or "ReLU" in _kind(entries[i].layer):
                first = i
                break
    block_ends = []
    for i in range(first + 1, len(entries)):
        entry = entries[i]
        is_last_of_group = i == len(entries) - 1 or entries[i + 1].group != entry.group
        grouped = entry.group != entry.name
        informative = not grouped and (
            _is_conv(entry.layer)
            or any(k in _kind(entry.layer) for k in ("Activation", "ReLU", "Pool", "Add"))
        )
        if (grouped and is_last_of_group) or informative:
            block_ends.append(i)
    if not block_ends:
        return [entries[first]]

    def jump(i):
        return fields.get(entries[i].name, (None, (0, 0), False))[1]

    stage_end = {}
    for i in block_ends:
        stage_end[jump(i)] = i  # the last block end at each resolution
    stage_ends = [i for i in stage_end.values() if jump(i) != jump(first)] or list(stage_end.values())
    wanted = min(n - 1, len(block_ends))
    if len(stage_ends) >= wanted:
        picked = {stage_ends[round((k + 1) * len(stage_ends) / wanted) - 1] for k in range(wanted)}
    else:
        others = [i for i in block_ends if i not in stage_ends]
        extra = wanted - len(stage_ends)
        picked = set(stage_ends) | {
            others[round((k + 0.5) * len(others) / extra - 0.5)] for k in range(extra)
        }
    return [entries[first]] + [entries[i] for i in sorted(picked)]


# --------------------------------------------------------------------------- receptive fields
def _pair(value) -> tuple[int, int]:
    if value is None:
        return (1, 1)
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    return (int(value[0]), int(value[-1])) if len(value) >= 2 else (int(value[0]), int(value[0]))


def _geometry(layer):
    """(kernel, stride, dilation) per axis for layers that change the receptive field, else None."""
    kind = _kind(layer)
    if hasattr(layer, "kernel_size") and hasattr(layer, "strides"):
        return _pair(layer.kernel_size), _pair(layer.strides), _pair(getattr(layer, "dilation_rate", 1))
    if hasattr(layer, "pool_size") and "Global" not in kind:
        return _pair(layer.pool_size), _pair(layer.strides or layer.pool_size), (1, 1)
    return None


def _grow(rf, layer):
    size, jump, approx = rf
    kind = _kind(layer)
    geometry = _geometry(layer)
    if geometry is not None:
        kernel, stride, dilation = geometry
        if "Transpose" in kind:
            # A transposed convolution spreads each input pixel over `kernel` outputs: an estimate.
            return (size, tuple(j / s for j, s in zip(jump, stride, strict=False)), True)
        size = tuple(r + d * (k - 1) * j for r, k, d, j in zip(size, kernel, dilation, jump, strict=False))
        return (size, tuple(j * s for j, s in zip(jump, stride, strict=False)), approx)
    if "UpSampling" in kind:
        return (size, tuple(j / s for j, s in zip(jump, _pair(layer.size), strict=False)), approx)
    sublayers = walk_layers(layer)
    inner = [sub for sub in sublayers if _geometry(sub) is not None]
    if inner:
        # A custom block hides its graph: treat its convolutions and poolings as a chain (an estimate).
        for sub in inner:
            size, jump, _ = _grow((size, jump, approx), sub)
        return (size, jump, True)
    return (size, jump, approx)


def _receptive_fields(model, input_rfs=None) -> tuple[dict, list]:
    """Receptive field ((h, w), jump, approximate) of every layer's output, in input pixels.

    Branches merge by taking the larger field per axis, which is exact for the theoretical receptive
    field; custom layers with hidden sublayers and transposed convolutions are estimates.
    """
    graph = _ensure_graph(model)
    start = ((1, 1), (1, 1), False)
    fields = {
        id(t): rf for t, rf in zip(graph.inputs, input_rfs or [start] * len(graph.inputs), strict=False)
    }
    by_layer = {}
    for node in nodes_in_order(graph):
        if node.is_input:
            continue
        incoming = [fields.get(id(t), start) for t in node.input_tensors] or [start]
        merged = (
            tuple(max(rf[0][a] for rf in incoming) for a in range(2)),
            tuple(max(rf[1][a] for rf in incoming) for a in range(2)),
            any(rf[2] for rf in incoming),
        )
        layer = node.operation
        if functional_graph(layer) is not None and isinstance(layer, _keras().Model):
            inner, outs = _receptive_fields(layer, [merged] * len(functional_graph(layer).inputs))
            by_layer.update({k: v for k, v in inner.items() if k not in by_layer})
        else:
            outs = [_grow(merged, layer)] * len(node.output_tensors)
            by_layer.setdefault(layer.name, outs[0])
        for tensor, rf in zip(node.output_tensors, outs, strict=False):
            fields[id(tensor)] = rf
    return by_layer, [fields.get(id(t), start) for t in graph.outputs]


def _rf_text(rf) -> str:
    (h, w), _, approx = rf
    h, w = int(round(h)), int(round(w))
    return ("≈" if approx else "") + (f"{h} px" if h == w else f"{h}×{w} px")


@dataclass(frozen=True)
class LayerInfo:
    """What a row of ``feature_maps`` is about.

    Attributes
    ----------
    name : str
        Layer name.
    shape : tuple of int
        Output shape for this image, without the batch axis (height, width, channels).
    receptive_field : tuple of int
        Height and width, in input pixels, of the input patch one output position sees.
    approximate : bool
        True when the receptive field is an estimate (custom blocks, transposed convolutions).
    """

    name: str
    shape: tuple
    receptive_field: tuple
    approximate: bool = False

    def describe(self) -> str:
        rf = _rf_text((self.receptive_field, None, self.approximate))
        return f"{self.name}  ·  {'×'.join(map(str, self.shape))}  ·  receptive field {rf}"


# --------------------------------------------------------------------------- probing
def _symbolic_outputs(model, entries: list[_Entry], level: int = 0) -> dict:
    """Symbolic outputs of ``entries`` expressed in terms of ``model``'s own inputs."""
    keras = _keras()
    graph = _ensure_graph(model)
    result = {}
    nested: dict[int, list[_Entry]] = {}
    for entry in entries:
        if len(entry.path) == level + 1:
            result[entry.name] = entry.node.output_tensors[0]
        else:
            nested.setdefault(id(entry.path[level + 1]), []).append(entry)
    for group in nested.values():
        child = group[0].path[level + 1]
        inner = _symbolic_outputs(child, group, level + 1)
        child_inputs = _model_inputs(child)
        sub_probe = keras.Model(
            child_inputs if len(child_inputs) > 1 else child_inputs[0], list(inner.values())
        )
        node = next(n for n in nodes_in_order(graph) if n.operation is child)
        fed = node.input_tensors
        outs = sub_probe(fed if len(fed) > 1 else fed[0])
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        result.update(zip(inner.keys(), outs, strict=False))
    return {e.name: result[e.name] for e in entries}


def _probe(model, entries: list[_Entry]):
    """One multi-output model: the image in, every chosen layer's output out."""
    keras = _keras()
    outputs = _symbolic_outputs(model, entries)
    inputs = _model_inputs(model)
    return keras.Model(
        inputs if len(inputs) > 1 else inputs[0], list(outputs.values()), name="tlcourse_probe"
    )


def _run_probe(probe, batch: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    outs = probe(batch, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {name: np.asarray(out)[0] for name, out in zip(names, outs, strict=False)}


# --------------------------------------------------------------------------- images
def _load_image(image) -> np.ndarray:
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        from PIL import Image

        try:
            with Image.open(image) as pil:
                return np.asarray(pil.convert("RGB"))
        except OSError as err:
            raise VizError(
                f"Cannot read an image from {image!r}: {err}.", hint="Pass a PNG/JPEG path or an array."
            ) from err
    if hasattr(image, "numpy"):
        image = image.numpy()
    return np.asarray(image)


def _center_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top : top + side, left : left + side]


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    h, w = size
    channels = [Image.fromarray(image[..., c].astype(np.float32), mode="F") for c in range(image.shape[-1])]
    resized = [np.asarray(ch.resize((w, h), Image.BILINEAR)) for ch in channels]
    return np.stack(resized, axis=-1)


def _input_shape(model) -> tuple:
    inputs = _model_inputs(model)
    if len(inputs) != 1:
        raise VizError(
            f"Model {model.name!r} takes {len(inputs)} inputs; feature maps need a model with one image input.",
            hint="Visualise the image branch (a sub-model) on its own.",
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise VizError(
            f"Model {model.name!r} takes inputs of shape {shape}, not images (batch, height, width, channels).",
            hint="Feature maps need a convolutional model on images.",
        )
    return shape


def _prepare(model, image, *, quiet: bool = False, square_size: int | None = None) -> np.ndarray:
    """The image as a float32 batch of one that fits the model's input: converted and resized with a note."""
    _, height, width, channels = _input_shape(model)
    array = _load_image(image).astype(np.float32)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise VizError(f"Got a batch of {array.shape[0]} images; this shows one.", hint="Pass images[0].")
        array = array[0]
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise VizError(
            f"Expected an image of shape (height, width, channels) with 1, 3 or 4 channels, got {array.shape}.",
            hint="Channels go last in Keras; for a (3, H, W) array use np.moveaxis(image, 0, -1).",
        )
    notes = []
    have = array.shape[-1]
    if channels is not None and have != channels:
        if have == 4:
            array, have = array[..., :3], 3
            notes.append("dropped the alpha channel")
        if have == 1 and channels == 3:
            array = np.repeat(array, 3, axis=-1)
            notes.append("grey → RGB")
        elif have == 3 and channels == 1:
            array = (array @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
            notes.append("RGB → grey")
        elif have != channels:
            raise VizError(
                f"The image has {have} channels; model {model.name!r} expects {channels}.",
                hint="Convert the image to the model's channel count first.",
            )
    target = (height, width)
    if None in target and square_size is not None:
        array = _center_square(array)
        target = (square_size, square_size)
    if None not in target and tuple(array.shape[:2]) != target:
        notes.append(f"resized {array.shape[0]}×{array.shape[1]} → {target[0]}×{target[1]}")
        array = _resize(array, target)
    if notes and not quiet:
        say(f"adapted the image to model {model.name!r}: " + ", ".join(notes) + ".")
    return array[None]


_GEOMETRY_LAYERS = ("Resizing", "CenterCrop", "Cropping2D")


def _seen_image(model, batch: np.ndarray) -> np.ndarray:
    """The image as the model's first convolution sees it: after the resizing/cropping layers in front.

    Keras's cropping layers are applied as they are; any other resizing (a custom layer, say) is
    reproduced from the static size of the first convolution's input. Value scaling is left out, so
    the result still displays as a photo and maps, pixel for pixel, onto feature maps and heatmaps.
    """
    seen = batch
    for entry in _all_entries(model):
        if _is_conv(entry.layer) or _kind(entry.layer) == "ZeroPadding2D":
            height, width = tuple(entry.node.input_tensors[0].shape)[1:3]
            if height is not None and width is not None and seen.shape[1:3] != (height, width):
                seen = _resize(seen[0], (height, width))[None]
            break
        if _kind(entry.layer) in _GEOMETRY_LAYERS:
            seen = np.asarray(entry.layer(seen))
    return seen[0]


# --------------------------------------------------------------------------- feature maps
@dataclass(eq=False)
class FeatureMaps(Mapping):
    """Activations of chosen layers for one image, with the figure drawn from them.

    Behaves like a read-only dict ``{layer name: array (height, width, channels)}``.

    Attributes
    ----------
    activations : dict of str to numpy.ndarray
        Each layer's output for the image, batch axis removed.
    info : dict of str to LayerInfo
        Shape and receptive field of each layer.
    figure : matplotlib.figure.Figure
        One row per layer, most active channels first.
    """

    activations: dict
    info: dict
    figure: Any = field(repr=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.activations[name]

    def __iter__(self):
        return iter(self.activations)

    def __len__(self) -> int:
        return len(self.activations)

    def __repr__(self) -> str:
        rows = "\n".join(f"  {self.info[name].describe()}" for name in self.activations)
        return f"FeatureMaps of {len(self)} layers:\n{rows}"

    def _repr_png_(self) -> bytes:
        return _png(self.figure)


def _ranked_channels(activation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Channel indices, most active (mean absolute activation) first, and which ones are not all zero."""
    flat = np.abs(activation.reshape(-1, activation.shape[-1]))
    score = flat.mean(axis=0)
    alive = flat.max(axis=0) > 0
    order = np.argsort(-score, kind="stable")
    return order, alive[order]


def _normalise(channel: np.ndarray) -> np.ndarray:
    low, high = float(channel.min()), float(channel.max())
    return (channel - low) / (high - low) if high > low else np.zeros_like(channel)


def _layer_info(entry: _Entry, activation: np.ndarray, fields: dict) -> LayerInfo:
    rf = fields.get(entry.name, ((1, 1), (1, 1), True))
    (h, w), _, approx = rf
    return LayerInfo(entry.name, tuple(activation.shape), (int(round(h)), int(round(w))), bool(approx))


def feature_maps(model, image, *, layers=None, max_channels: int = 16) -> FeatureMaps:
    """Activations of a model's layers for one image, drawn as one figure: a row per layer.

    Each row shows the layer's name, output shape and receptive field, then its most active channels
    (largest mean absolute activation) first, each normalised on its own; all-zero channels are skipped.

    Parameters
    ----------
    model : keras.Model
        A built Functional or Sequential model: a base from ``tlcourse.models.backbone``, a classifier with
        a base nested inside, or a plain CNN.
    image : array-like, path or PIL image
        One image (height, width, channels), in the value range the model expects (the course's bases
        take raw 0–255 RGB). It is converted (grey ↔ RGB, alpha dropped) and resized to the model's
        input size with a note when needed.
    layers : list of str, optional
        Layer names (nested bases included). Default: the first convolution, then an even spread of block
        outputs (by the base's own block structure, e.g. ``block3b_add``) to the last block.
    max_channels : int, default 16
        Channels shown per layer.

    Returns
    -------
    FeatureMaps
        A mapping ``{layer name: activation array}`` with ``.info`` and ``.figure``.

    Notes
    -----
    The receptive field is computed from kernel sizes, strides and dilations along the graph (the larger
    field where branches merge). It is an estimate (marked ≈) for custom layers whose inner graph Keras
    does not expose and for transposed convolutions. It does not account for a ``Resizing`` layer in front.

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.MaxPooling2D(), keras.layers.Conv2D(8, 3, activation="relu")])
    >>> maps = feature_maps(model, np.random.default_rng(0).uniform(0, 1, (32, 32, 3)))
    >>> [(info.shape, info.receptive_field) for info in maps.info.values()]
    [((30, 30, 4), (3, 3)), ((15, 15, 4), (4, 4)), ((13, 13, 8), (8, 8))]
    """
    if max_channels < 1:
        raise VizError(f"max_channels must be at least 1, got {max_channels}.", hint="Try max_channels=16.")
    entries = _map_entries(model)
    if not entries:
        raise VizError(
            f"Model {model.name!r} has no layer with spatial feature maps.",
            hint="Feature maps come from convolutional layers on images.",
        )
    fields, _ = _receptive_fields(model)
    chosen = _default_entries(entries, fields) if layers is None else _resolve(model, layers, entries)
    batch = _prepare(model, image)
    names = [e.name for e in chosen]
    activations = _run_probe(_probe(model, chosen), batch, names)
    info = {e.name: _layer_info(e, activations[e.name], fields) for e in chosen}
    figure = _draw_feature_maps(model, _seen_image(model, batch), activations, info, max_channels)
    return FeatureMaps(activations, info, figure)


def _draw_feature_maps(model, image, activations, info, max_channels):
    columns = min(max_channels, 16)
    rows_per_layer = {
        name: max(1, math.ceil(min(max_channels, a.shape[-1]) / columns)) for name, a in activations.items()
    }
    tile = FIGURE_WIDTH / (columns + 0.5)
    height = sum(r * tile + 0.35 for r in rows_per_layer.values()) + 2.2
    fig = _new_figure(FIGURE_WIDTH, height)
    fig.suptitle(f"Feature maps of {model.name}: most active channels first, each normalised on its own")
    heights = [2.0] + [r * tile + 0.35 for r in rows_per_layer.values()]
    subfigs = fig.subfigures(len(heights), 1, height_ratios=heights)
    ax = subfigs[0].subplots()
    ax.imshow(_to_display(image))
    ax.set_title(f"input {image.shape[0]}×{image.shape[1]}", fontsize=9)
    ax.set_axis_off()
    for sub, (name, activation) in zip(subfigs[1:], activations.items(), strict=False):
        order, alive = _ranked_channels(activation)
        shown = order[alive][:max_channels]
        skipped = int((~alive).sum())
        title = info[name].describe()
        title += f"  ·  {len(shown)} of {activation.shape[-1]} channels" + (
            f" ({skipped} all-zero skipped)" if skipped else ""
        )
        sub.suptitle(title, fontsize=9, x=0.0, ha="left")
        if len(shown) == 0:
            ax = sub.subplots()
            ax.text(0.5, 0.5, "every channel is zero for this image", ha="center", va="center")
            ax.set_axis_off()
            continue
        grid = sub.subplots(rows_per_layer[name], columns, squeeze=False)
        for ax in grid.flat:
            ax.set_axis_off()
        for ax, channel in zip(grid.flat, shown, strict=False):
            ax.imshow(_normalise(activation[..., channel]), cmap="viridis", interpolation="nearest")
            ax.set_title(f"#{channel}", fontsize=6, pad=1)
    return fig


# --------------------------------------------------------------------------- filters
def filters(model, layer=None, *, max_filters: int = 64):
    """The kernels of a convolution as image tiles: RGB for a first layer, grey (mean over inputs) otherwise.

    Parameters
    ----------
    model : keras.Model
        A built model (nested bases included).
    layer : str, optional
        A convolution's name. Default: the first convolution.
    max_filters : int, default 64
        Tiles drawn at most.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 5)])
    >>> len(filters(model).axes)
    8
    """
    entries = _all_entries(model)
    convs = [e for e in entries if _is_conv(e.layer) and getattr(e.layer, "weights", None)]
    if layer is None:
        if not convs:
            raise VizError(
                f"Model {model.name!r} has no convolution.", hint="filters() shows convolution kernels."
            )
        entry = convs[0]
    else:
        (entry,) = _resolve(model, [layer], [e for e in entries if _is_spatial(e)])
        if entry not in convs:
            raise VizError(
                f"Layer {entry.name!r} is a {_kind(entry.layer)}, not a convolution: it has no kernels.",
                hint=f"Convolutions: {_summarise([e.name for e in convs])}.",
            )
    kernel = np.asarray(entry.layer.weights[0])  # (kh, kw, in, out) or (kh, kw, in, multiplier)
    depthwise = "Depthwise" in _kind(entry.layer)
    if depthwise:
        tiles = [kernel[:, :, i, 0] for i in range(kernel.shape[2])]
    elif kernel.shape[2] == 3:
        tiles = [kernel[:, :, :, i] for i in range(kernel.shape[3])]
    else:
        tiles = [kernel[:, :, :, i].mean(axis=2) for i in range(kernel.shape[3])]
    tiles = tiles[:max_filters]
    columns = min(8, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    size = FIGURE_WIDTH / columns
    fig = _new_figure(FIGURE_WIDTH, rows * size * 0.9 + 0.8)
    how = "RGB" if tiles[0].ndim == 3 else ("one per channel" if depthwise else "mean over input channels")
    fig.suptitle(f"Kernels of {entry.name}: {len(tiles)} of shape {'×'.join(map(str, kernel.shape))} ({how})")
    grid = fig.subplots(rows, columns, squeeze=False)
    for ax in grid.flat:
        ax.set_axis_off()
    for i, (ax, tile) in enumerate(zip(grid.flat, tiles, strict=False)):
        ax.imshow(_normalise(tile), cmap=None if tile.ndim == 3 else "gray", interpolation="nearest")
        ax.set_title(f"#{i}", fontsize=7)
    for ax in grid.flat[len(tiles) :]:
        fig.delaxes(ax)
    return fig


# --------------------------------------------------------------------------- Grad-CAM
@dataclass(eq=False)
class GradCam:
    """A Grad-CAM explanation of one prediction.

    Attributes
    ----------
    heatmap : numpy.ndarray
        (height, width) in [0, 1], the size of the image the model saw (after any resizing or
        cropping layers the model has in front, e.g. the centre crop of ``imagenet_classifier``).
    coarse : numpy.ndarray
        The same map at the layer's own resolution.
    class_index : int
        The class explained.
    class_name : str or None
    probability : float
        The model's probability for that class.
    layer : str
        The layer whose maps were weighted.
    image : numpy.ndarray
        The image the model saw (its own resizing/cropping applied), which ``heatmap`` covers pixel
        for pixel.
    figure : matplotlib.figure.Figure
        Image, heatmap, overlay.
    """

    heatmap: np.ndarray
    coarse: np.ndarray
    class_index: int
    class_name: str | None
    probability: float
    layer: str
    image: np.ndarray = field(repr=False)
    figure: Any = field(repr=False)

    @property
    def peak(self) -> tuple[int, int]:
        """(row, column) of the heatmap's maximum, in pixels of the image the model saw."""
        row, col = np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape)
        return int(row), int(col)

    def _repr_png_(self) -> bytes:
        return _png(self.figure)


def _probabilities(outputs: np.ndarray) -> np.ndarray:
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1 and outputs.size > 1 and outputs.min() >= 0 and abs(outputs.sum() - 1) < 1e-3:
        return outputs
    if outputs.size == 1:
        return np.array([1 / (1 + np.exp(-outputs.ravel()[0]))])
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _class_name(index: int, num_classes: int, class_names) -> str | None:
    if class_names is not None:
        return str(class_names[index])
    if num_classes == 1000:
        try:
            from tlcourse.models import decode_predictions

            one_hot = np.zeros((1, 1000), dtype=np.float32)
            one_hot[0, index] = 1.0
            return str(decode_predictions(one_hot, top=1)[0][0][1])
        except Exception:  # the names are a nicety: without them the index is shown
            return None
    return None


def _single_output(outputs):
    if isinstance(outputs, dict):
        outputs = next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return outputs


def grad_cam(model, image, *, class_index: int | None = None, layer=None, class_names=None) -> GradCam:
    """Grad-CAM: which parts of the image made the model pick a class, overlaid on the image.

    The maps of ``layer`` are weighted by the mean gradient of the class score (the logit) with respect
    to each channel; the positive part of the sum is the heatmap (Selvaraju et al., 2017).

    Parameters
    ----------
    model : keras.Model
        A classifier (logits or probabilities out), possibly with a base nested inside.
    image : array-like, path or PIL image
        One image in the value range the model expects; converted and resized with a note when needed.
    class_index : int, optional
        Class to explain. Default: the predicted class.
    layer : str, optional
        A layer with spatial maps. Default: the last one (the base's final feature maps).
    class_names : list of str, optional
        Names for the title; ImageNet names are found on their own for 1000-class models.

    Returns
    -------
    GradCam
        ``.heatmap`` (image-sized, in [0, 1]), ``.peak``, ``.figure`` and the class explained.

    Examples
    --------
    >>> import keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> cam = grad_cam(model, np.random.default_rng(0).uniform(0, 1, (32, 32, 3)), class_index=1)
    >>> cam.heatmap.shape, cam.layer.startswith("conv2d")
    ((32, 32), True)
    """
    import tensorflow as tf

    entries = _map_entries(model)
    if not entries:
        raise VizError(f"Model {model.name!r} has no layer with spatial maps.", hint="Grad-CAM needs a CNN.")
    entry = entries[-1] if layer is None else _resolve(model, [layer], entries)[0]
    batch = tf.constant(_prepare(model, image))
    target = entry.layer
    recorded = {}
    original_call = target.call

    @functools.wraps(original_call)
    def recording_call(*args, **kwargs):
        out = original_call(*args, **kwargs)
        tape.watch(out)
        recorded["maps"] = out
        return out

    # The layer may sit inside a nested base: recording its output during the whole model's call gives
    # the gradient of the class score through the real graph, whatever the nesting.
    target.call = recording_call
    try:
        with tf.GradientTape() as tape:
            outputs = tf.convert_to_tensor(_single_output(model(batch, training=False)))
            if outputs.shape.rank != 2:
                raise VizError(
                    f"Model {model.name!r} outputs shape {tuple(outputs.shape)}, not class scores.",
                    hint="Grad-CAM explains a classifier whose output is (batch, classes).",
                )
            num_classes = int(outputs.shape[-1])
            index = int(tf.argmax(outputs[0])) if class_index is None else int(class_index)
            if not 0 <= index < num_classes:
                raise VizError(
                    f"class_index {index} is out of range for {num_classes} classes.",
                    hint=f"Use 0 … {num_classes - 1}, or leave it out for the predicted class.",
                )
            score = outputs[:, index]
    finally:
        del target.call
    maps = recorded.get("maps")
    if maps is None:
        raise VizError(f"Layer {entry.name!r} was not used when the model ran.", hint="Pick another layer.")
    grads = tape.gradient(score, maps)
    if grads is None:
        raise VizError(
            f"The class score does not depend on layer {entry.name!r}.",
            hint="Pick a layer on the path from the input to the output.",
        )
    weights = tf.reduce_mean(grads, axis=(1, 2))  # one weight per channel
    coarse = tf.nn.relu(tf.reduce_sum(maps * weights[:, None, None, :], axis=-1))[0].numpy()
    coarse = coarse / coarse.max() if coarse.max() > 0 else coarse
    seen = _seen_image(model, batch.numpy())
    height, width = seen.shape[:2]
    heatmap = tf.image.resize(coarse[None, :, :, None], (height, width), method="bilinear")[
        0, :, :, 0
    ].numpy()
    heatmap = np.clip(heatmap, 0.0, 1.0)
    probability = float(_probabilities(outputs.numpy()[0])[index]) if num_classes > 1 else float("nan")
    name = _class_name(index, num_classes, class_names)
    fig = _draw_grad_cam(seen, heatmap, entry.name, index, name, probability)
    return GradCam(heatmap, coarse, index, name, probability, entry.name, seen, fig)


def _draw_grad_cam(image, heatmap, layer, index, name, probability):
    fig = _new_figure(FIGURE_WIDTH, 3.6)
    label = (
        f"class {index}"
        + (f" '{name}'" if name else "")
        + (f" (p = {probability:.2f})" if probability == probability else "")
    )
    fig.suptitle(f"Grad-CAM for {label} at layer {layer}")
    axes = fig.subplots(1, 3)
    shown = _to_display(image)
    axes[0].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
    axes[0].set_title("image")
    im = axes[1].imshow(heatmap, cmap="jet", vmin=0, vmax=1)
    axes[1].set_title("heatmap")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.02, label="importance")
    axes[2].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
    axes[2].imshow(heatmap, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    axes[2].plot(col, row, marker="+", color="white", markersize=12, mew=2)
    axes[2].set_title("overlay (+ = peak)")
    for ax in axes:
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    return fig


# --------------------------------------------------------------------------- explorer
def _sample_photos() -> dict[str, np.ndarray]:
    try:
        from tlcourse.data import sample_photos

        return dict(sample_photos())
    except (ImportError, AttributeError):
        import skimage.data

        photos = {}
        for name in ("chelsea", "coffee", "astronaut", "rocket"):
            photo = getattr(skimage.data, name)()
            photos[name] = photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, axis=-1)
        return photos


def _collect_images(images, limit: int = 12) -> dict[str, np.ndarray]:
    """Named images from a dict, a list/array, a DataBundle (its test split) or a tf.data.Dataset."""
    if images is None:
        return {}
    if isinstance(images, Mapping):
        return {str(k): _load_image(v) for k, v in images.items()}
    class_names = getattr(images, "class_names", None)
    if hasattr(images, "test") and hasattr(images, "class_names"):
        images = images.test
    if hasattr(images, "take") and hasattr(images, "element_spec"):  # a tf.data.Dataset
        collected = {}
        for element in images.take(limit).as_numpy_iterator():
            x, y = element if isinstance(element, tuple) else (element, None)
            xs, ys = (x, y) if np.ndim(x) == 4 else (x[None], None if y is None else np.asarray(y)[None])
            for i in range(len(xs)):
                label = "" if ys is None else f": {class_names[int(ys[i])] if class_names else int(ys[i])}"
                collected[f"sample {len(collected)}{label}"] = xs[i]
                if len(collected) >= limit:
                    return collected
        return collected
    array = np.asarray(images) if not isinstance(images, (list, tuple)) else images
    if isinstance(array, np.ndarray) and array.ndim == 3:
        array = array[None]
    return {f"sample {i}": _load_image(img) for i, img in enumerate(list(array)[:limit])}


class FeatureMapExplorer:
    """An ipywidgets explorer of feature maps: image, layer (dropdown and depth slider), channel pages.

    One probe model computes every layer's maps for an image at once; they are cached per (model,
    image), so moving through layers and pages only redraws one PNG in place (no figure pile-up).

    Parameters
    ----------
    model : keras.Model
        A built model (a base, a classifier with a base nested inside, or a plain CNN).
    images : dict, list, array, DataBundle or tf.data.Dataset, optional
        Extra images (dataset samples) besides the bundled sample photos and uploaded files.
    compare_with : keras.Model, optional
        A second model with the same layer names (e.g. the base before fine-tuning): a toggle switches.
    labels : tuple of two str, optional
        Names of the two models on the toggle. Default: ("after", "before") — ``model`` is usually the
        fine-tuned one and ``compare_with`` the original.
    layers : list of str, optional
        Layers offered. Default: every layer with feature maps.
    channels_per_page : int, default 16
    image_size : int, default 224
        Side the photos are cropped/resized to when the model accepts any size.
    include_samples : bool, default True
        Offer the bundled sample photos (chelsea, coffee, ...).

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.MaxPooling2D(), keras.layers.Conv2D(8, 3)])
    >>> explorer = FeatureMapExplorer(model, images={"noise": np.zeros((32, 32, 3))}, include_samples=False)
    >>> explorer.layer_dropdown.value = explorer.layer_names[-1]
    >>> explorer.depth_slider.value
    2
    """

    def __init__(
        self,
        model,
        images=None,
        *,
        compare_with=None,
        labels: tuple[str, str] | None = None,
        layers=None,
        channels_per_page: int = 16,
        image_size: int = 224,
        include_samples: bool = True,
    ):
        import ipywidgets as widgets

        entries = _map_entries(model)
        if not entries:
            raise VizError(f"Model {model.name!r} has no layer with spatial feature maps.", hint="Use a CNN.")
        self._entries = entries if layers is None else _resolve(model, layers, entries)
        self.layer_names = [e.name for e in self._entries]
        self._models = [model]
        self._entries_of = [self._entries]
        if compare_with is not None:
            try:
                self._entries_of.append(_resolve(compare_with, self.layer_names))
            except VizError as err:
                raise VizError(
                    f"compare_with does not have the same layers as model: {err.message}",
                    hint="Compare two versions of the same architecture (e.g. before and after fine-tuning).",
                ) from err
            self._models.append(compare_with)
        self._labels = list(labels or ("after", "before"))[: len(self._models)]
        self._probes: dict[int, Any] = {}
        self._fields, _ = _receptive_fields(model)
        self._image_size = image_size
        self._per_page = channels_per_page
        self._cache: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        self._batches: dict[str, np.ndarray] = {}
        self.images = {**(_sample_photos() if include_samples else {}), **_collect_images(images)}
        if not self.images:
            raise VizError("No images to explore.", hint="Pass images=..., or keep include_samples=True.")
        self.page = 0
        self.last_update_seconds = 0.0
        self._syncing = False
        self.image_dropdown = widgets.Dropdown(options=list(self.images), description="image")
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload")
        self.layer_dropdown = widgets.Dropdown(options=self.layer_names, description="layer")
        self.depth_slider = widgets.IntSlider(
            value=0, min=0, max=len(self.layer_names) - 1, description="depth", continuous_update=False
        )
        self.previous_button = widgets.Button(description="◀ channels", layout=widgets.Layout(width="110px"))
        self.next_button = widgets.Button(description="channels ▶", layout=widgets.Layout(width="110px"))
        self.model_toggle = widgets.ToggleButtons(options=self._labels, description="model")
        self.header = widgets.HTML()
        self.thumbnail = widgets.Image(format="png", width=160)
        self.view = widgets.Image(format="png")
        self.image_dropdown.observe(self._on_image, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.layer_dropdown.observe(self._on_layer_name, names="value")
        self.depth_slider.observe(self._on_depth, names="value")
        self.model_toggle.observe(lambda _: self._update(), names="value")
        self.previous_button.on_click(lambda _: self._turn(-1))
        self.next_button.on_click(lambda _: self._turn(+1))
        controls = [
            widgets.HBox([self.image_dropdown, self.upload]),
            widgets.HBox([self.layer_dropdown, self.depth_slider]),
            widgets.HBox(
                [self.previous_button, self.next_button] + ([self.model_toggle] if compare_with else [])
            ),
        ]
        self.widget = widgets.VBox(
            [
                *controls,
                self.header,
                widgets.HBox([self.thumbnail, self.view], layout=widgets.Layout(align_items="flex-start")),
            ]
        )
        self._update(image_changed=True)

    # ---- display
    def _ipython_display_(self):
        # Displaying the widget itself works on ipywidgets 7 (Colab) and 8 alike.
        from IPython.display import display

        display(self.widget)

    # ---- state
    @property
    def layer(self) -> str:
        return self.layer_dropdown.value

    @property
    def model_index(self) -> int:
        return self._labels.index(self.model_toggle.value)

    def activations(self, image: str | None = None, model_index: int | None = None) -> dict[str, np.ndarray]:
        """Every offered layer's maps for a named image (computed once, then cached)."""
        image = self.image_dropdown.value if image is None else image
        index = self.model_index if model_index is None else model_index
        key = (index, image)
        if key not in self._cache:
            if index not in self._probes:
                import tensorflow as tf

                probe = _probe(self._models[index], self._entries_of[index])
                # Traced once (every image is brought to one size): a forward pass then takes tens of
                # milliseconds instead of the ~1 s of running ~150 layers eagerly on a busy CPU.
                self._probes[index] = tf.function(
                    functools.partial(probe, training=False), reduce_retracing=True
                )
            if image not in self._batches:
                self._batches[image] = _prepare(
                    self._models[0], self.images[image], quiet=True, square_size=self._image_size
                )
            self._cache[key] = _run_probe(self._probes[index], self._batches[image], self.layer_names)
        return self._cache[key]

    # ---- callbacks
    def _on_image(self, _change):
        self.page = 0
        self._update(image_changed=True)

    def _on_upload(self, change):
        from PIL import Image

        files = change["new"]
        if not files:
            return
        upload = files[-1] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        name = f"upload: {upload['name']}"
        try:
            with Image.open(io.BytesIO(bytes(upload["content"]))) as pil:
                self.images[name] = np.asarray(pil.convert("RGB"))
        except OSError:
            self.header.value = f"<b>Could not read {upload['name']} as an image.</b>"
            return
        self._batches.pop(name, None)
        self._cache = {k: v for k, v in self._cache.items() if k[1] != name}
        self.image_dropdown.options = list(self.images)
        self.image_dropdown.value = name

    def _on_layer_name(self, change):
        if self._syncing:
            return
        self._syncing = True
        self.depth_slider.value = self.layer_names.index(change["new"])
        self._syncing = False
        self.page = 0
        self._update()

    def _on_depth(self, change):
        if self._syncing:
            return
        self._syncing = True
        self.layer_dropdown.value = self.layer_names[change["new"]]
        self._syncing = False
        self.page = 0
        self._update()

    def _turn(self, step: int):
        channels = self.activations()[self.layer].shape[-1]
        pages = max(1, math.ceil(channels / self._per_page))
        self.page = (self.page + step) % pages
        self._update()

    # ---- drawing
    def _update(self, image_changed: bool = False):
        started = time.perf_counter()
        maps = self.activations()[self.layer]
        if image_changed:
            self.thumbnail.value = _encode_png(_to_uint8(self._batches[self.image_dropdown.value][0]))
        order, alive = _ranked_channels(maps)
        channels = maps.shape[-1]
        pages = max(1, math.ceil(channels / self._per_page))
        page = order[self.page * self._per_page : (self.page + 1) * self._per_page]
        self.view.value = _encode_png(_tile_channels(maps, page, alive[self.page * self._per_page :]))
        entry = self._entries[self.layer_names.index(self.layer)]
        info = _layer_info(entry, maps, self._fields)
        self.last_update_seconds = time.perf_counter() - started
        self.header.value = (
            f"<b>{info.name}</b> ({_kind(entry.layer)}) · output {'×'.join(map(str, info.shape))} · "
            f"receptive field {_rf_text((info.receptive_field, None, info.approximate))} · "
            f"channels by activity, page {self.page + 1}/{pages} · "
            + (f"{self._labels[self.model_index]} · " if len(self._models) > 1 else "")
            + f"{self.last_update_seconds * 1000:.0f} ms"
        )


def _to_uint8(image: np.ndarray) -> np.ndarray:
    shown = _to_display(image)
    return (shown * 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _colormap_lut(name: str = "viridis") -> np.ndarray:
    return (matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def _tile_channels(
    maps: np.ndarray, channels: Sequence[int], alive: Sequence[bool], tile: int = 112
) -> np.ndarray:
    """A grid of the given channels, each normalised on its own and coloured, as one uint8 RGB image."""
    from PIL import Image, ImageDraw

    columns = 4
    rows = max(1, math.ceil(len(channels) / columns))
    gap = 4
    canvas = np.full((rows * (tile + gap), columns * (tile + gap), 3), 255, dtype=np.uint8)
    lut = _colormap_lut()
    for k, channel in enumerate(channels):
        coloured = lut[(_normalise(maps[..., channel]) * 255).astype(np.uint8)]
        resized = np.asarray(Image.fromarray(coloured).resize((tile, tile), Image.NEAREST))
        r, c = divmod(k, columns)
        canvas[r * (tile + gap) : r * (tile + gap) + tile, c * (tile + gap) : c * (tile + gap) + tile] = (
            resized
        )
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for k, channel in enumerate(channels):
        r, c = divmod(k, columns)
        label = f"#{channel}" + ("" if k >= len(alive) or alive[k] else " (zero)")
        draw.text((c * (tile + gap) + 3, r * (tile + gap) + 2), label, fill=(255, 255, 255))
    return np.asarray(picture)


def _encode_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


# --------------------------------------------------------------------------- training plots
def history(h, *, stage_boundaries: Sequence[int] | None = None, stage_names: Sequence[str] | None = None):
    """Loss and metric curves per epoch, train and validation, with training stages marked.

    Parameters
    ----------
    h : keras.callbacks.History, dict or object with ``.history``
        ``{metric: [value per epoch]}``; ``val_*`` keys are drawn with their training twins. An object with
        ``.stage_boundaries`` (epoch indices where a new stage starts) gets those marked.
    stage_boundaries : list of int, optional
        Overrides ``h.stage_boundaries``.
    stage_names : list of str, optional
        One name per stage (boundaries + 1), e.g. ["head", "fine-tuning"].

    Returns
    -------
    matplotlib.figure.Figure
        One panel per metric.

    Examples
    --------
    >>> fig = history({"loss": [1.0, 0.6, 0.5, 0.3], "val_loss": [1.1, 0.8, 0.7, 0.6],
    ...                "accuracy": [0.5, 0.7, 0.8, 0.9], "val_accuracy": [0.4, 0.6, 0.7, 0.7]},
    ...               stage_boundaries=[2], stage_names=["head", "fine-tuning"])
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'accuracy']
    """
    values = h if isinstance(h, Mapping) else getattr(h, "history", None)
    if not isinstance(values, Mapping) or not values:
        raise VizError(
            f"Cannot read a training history from {type(h).__name__}.",
            hint="Pass what model.fit returned, its .history dict, or tlcourse.train's combined history.",
        )
    boundaries = list(
        stage_boundaries if stage_boundaries is not None else getattr(h, "stage_boundaries", []) or []
    )
    # tlcourse.train's History lists where every stage starts, the first at epoch 0: only the
    # later ones are boundaries worth a line.
    boundaries = [b for b in boundaries if b > 0]
    names = (
        stage_names
        if stage_names is not None
        else getattr(h, "stage_names", None) or getattr(h, "stages", None)
    )
    metrics = [k for k in values if not k.startswith("val_") and k not in ("learning_rate", "lr")]
    metrics += [k[4:] for k in values if k.startswith("val_") and k[4:] not in values]
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    fig = _new_figure(FIGURE_WIDTH, 3.2 * rows + 0.5)
    epochs_total = max(len(v) for v in values.values())
    stages = f" ({len(boundaries) + 1} stages)" if boundaries else ""
    fig.suptitle(f"Training history: {epochs_total} epochs{stages}")
    axes = fig.subplots(rows, columns, squeeze=False).flat
    axes = list(axes)
    for ax in axes[len(metrics) :]:
        fig.delaxes(ax)
    for ax, metric in zip(axes, metrics, strict=False):
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "--s")):
            if key in values:
                series = np.asarray(values[key], dtype=float)
                ax.plot(np.arange(1, len(series) + 1), series, style, markersize=3, label=label)
        for i, boundary in enumerate(boundaries):
            ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=1.5)
            name = names[i + 1] if names and len(names) > i + 1 else f"stage {i + 2}"
            ax.text(
                boundary + 0.6,
                0.98,
                name,
                transform=ax.get_xaxis_transform(),
                va="top",
                fontsize=8,
                color="dimgrey",
            )
        if names and boundaries:
            ax.text(0.02, 0.02, names[0], transform=ax.transAxes, fontsize=8, color="dimgrey")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8, loc="best")
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def _rows(table) -> list[dict]:
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # a pandas DataFrame
        return list(table.to_dict("records"))
    if hasattr(table, "rows") and not isinstance(table, Mapping):
        table = table.rows
    if isinstance(table, Mapping):  # columns: {"recipe": [...], "accuracy": [...]}
        keys = list(table)
        return [
            dict(zip(keys, values, strict=False)) for values in zip(*(table[k] for k in keys), strict=False)
        ]
    rows = [dict(row) if isinstance(row, Mapping) else dict(vars(row)) for row in table]
    return rows


def compare(table, *, metric: str = "accuracy", by: str = "fraction"):
    """Bar chart of a metric per recipe and data fraction: mean ± std over seeds.

    Parameters
    ----------
    table : list of dict, dict of columns, or pandas DataFrame
        Rows with keys ``recipe``, ``fraction`` (or ``by``), ``seed`` and the metric, as
        ``tlcourse.train.compare`` returns them.
    metric : str, default "accuracy"
    by : str, default "fraction"
        The column on the x axis.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> rows = [{"recipe": r, "fraction": f, "seed": s, "accuracy": a}
    ...         for r, base in (("scratch", 0.4), ("transfer", 0.8)) for f in (0.1, 1.0)
    ...         for s, a in ((0, base), (1, base + 0.1))]
    >>> fig = compare(rows)
    >>> len(fig.axes[0].patches)
    4
    """
    rows = _rows(table)
    if not rows:
        raise VizError("The table is empty.", hint="Run tlcourse.train.compare(...) first.")
    for key in ("recipe", by, metric):
        if key not in rows[0]:
            raise VizError(f"The table has no column {key!r}.", hint=f"Columns: {', '.join(rows[0])}.")
    recipes = list(dict.fromkeys(str(r["recipe"]) for r in rows))
    levels = sorted(dict.fromkeys(r[by] for r in rows), key=lambda v: (isinstance(v, str), v))
    fig = _new_figure(FIGURE_WIDTH, 4.2)
    ax = fig.subplots()
    width = 0.8 / len(recipes)
    seeds = set()
    for i, recipe in enumerate(recipes):
        means, stds = [], []
        for level in levels:
            values = np.array(
                [float(r[metric]) for r in rows if str(r["recipe"]) == recipe and r[by] == level]
            )
            seeds.add(len(values))
            means.append(values.mean() if len(values) else np.nan)
            stds.append(values.std(ddof=1) if len(values) > 1 else 0.0)
        positions = np.arange(len(levels)) + (i - (len(recipes) - 1) / 2) * width
        bars = ax.bar(positions, means, width, yerr=stds, capsize=4, label=recipe)
        ax.bar_label(bars, labels=[f"{m:.2f}" for m in means], fontsize=7, padding=2)
    ax.set_xticks(np.arange(len(levels)), [str(level) for level in levels])
    ax.set_xlabel(by.replace("_", " "))
    ax.set_ylabel(f"{metric} (mean ± std)")
    n = "/".join(str(s) for s in sorted(seeds))
    ax.set_title(f"{metric} by recipe and {by}: mean ± std over {n} seed(s)")
    ax.legend(title="recipe", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    if metric.endswith("accuracy"):
        ax.set_ylim(0, 1.08)
    return fig


# --------------------------------------------------------------------------- evaluation plots
def _arrays(data, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
    elif hasattr(data, "as_numpy_iterator"):
        xs, ys, count = [], [], 0
        for element in data.as_numpy_iterator():
            if not isinstance(element, tuple) or len(element) < 2:
                raise VizError("The dataset must yield (x, y) pairs.", hint="Map it to (image, label) first.")
            x, y = element[0], element[1]
            if np.ndim(y) == 0 or (np.ndim(x) == 3 and np.ndim(y) <= 1 and len(np.shape(y)) == 0):
                x, y = x[None], np.asarray(y)[None]
            xs.append(x)
            ys.append(y)
            count += len(x)
            if limit and count >= limit:
                break
        if not xs:
            raise VizError("The dataset is empty.", hint="Check the split you passed.")
        x, y = np.concatenate(xs), np.concatenate(ys)
    else:
        raise VizError(
            f"Cannot read (x, y) from {type(data).__name__}.",
            hint="Pass a batched tf.data.Dataset of (x, y) or a tuple of arrays (x, y).",
        )
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)  # one-hot labels
    return x, y.reshape(-1).astype(int)


def _predict(model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    outputs = np.concatenate(
        [
            np.asarray(_single_output(model(x[i : i + batch_size], training=False)))
            for i in range(0, len(x), batch_size)
        ]
    )
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        p = 1 / (1 + np.exp(-outputs.reshape(-1)))
        return np.stack([1 - p, p], axis=1)
    return _probabilities(outputs)


def _names(class_names, count: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(count)]
    if len(class_names) < count:
        raise VizError(
            f"{len(class_names)} class names for {count} classes.", hint="Pass one name per class."
        )
    return [str(n) for n in class_names]


def confusion(model, data, *, class_names=None, normalize: bool = True):
    """Confusion matrix of a classifier on labelled data: counts written, colours by row share.

    Parameters
    ----------
    model : keras.Model
        Logits (or probabilities) out.
    data : tf.data.Dataset or tuple
        Batched ``(x, y)`` pairs, or ``(x, y)`` arrays; integer or one-hot labels.
    class_names : list of str, optional
    normalize : bool, default True
        Colour each cell by its share of the true class (recall per row).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x, y = np.random.default_rng(0).normal(size=(30, 4)), np.arange(30) % 3
    >>> confusion(model, (x, y), class_names=["a", "b", "c"]).axes[0].get_xlabel()
    'predicted class'
    """
    x, y = _arrays(data)
    probs = _predict(model, x)
    predicted = probs.argmax(axis=1)
    count = max(probs.shape[1], int(y.max()) + 1)
    names = _names(class_names, count)[:count]
    matrix = np.zeros((count, count), dtype=int)
    np.add.at(matrix, (y, predicted), 1)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = min(FIGURE_WIDTH, max(4.5, 0.45 * count + 2.5))
    fig = _new_figure(side + 1.0, side)
    ax = fig.subplots()
    im = ax.imshow(shares if normalize else matrix, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="share of true class" if normalize else "count")
    if count <= 20:
        for i in range(count):
            for j in range(count):
                value = shares[i, j] if normalize else matrix[i, j] / max(matrix.max(), 1)
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value > 0.5 else "black",
                )
    ticks = (
        np.arange(count)
        if count <= _MAX_CLASS_TICKS
        else np.linspace(0, count - 1, _MAX_CLASS_TICKS).astype(int)
    )
    ax.set_xticks(ticks, [names[t] for t in ticks], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, [names[t] for t in ticks], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = float((predicted == y).mean())
    ax.set_title(f"Confusion matrix: accuracy {accuracy:.3f} on {len(y)} examples")
    return fig


def predictions(model, data, *, class_names=None, worst: bool = True, n: int = 16):
    """A grid of images with predicted and true classes and confidence; mistakes in red.

    Parameters
    ----------
    model : keras.Model
    data : tf.data.Dataset or tuple
        Batched ``(x, y)`` pairs of images, or ``(x, y)`` arrays.
    class_names : list of str, optional
    worst : bool, default True
        Show the most confident mistakes first (then the least confident correct answers);
        otherwise the first ``n`` examples.
    n : int, default 16

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> x, y = np.random.default_rng(0).uniform(size=(10, 8, 8, 1)), np.arange(10) % 2
    >>> len(predictions(model, (x, y), n=6).axes)
    6
    """
    x, y = _arrays(data)
    if x.ndim not in (3, 4):
        raise VizError(
            f"predictions() shows images; got inputs of shape {x.shape[1:]}.", hint="Use confusion()."
        )
    probs = _predict(model, x)
    predicted = probs.argmax(axis=1)
    confidence = probs[np.arange(len(y)), predicted]
    wrong = predicted != y
    names = _names(class_names, max(probs.shape[1], int(y.max()) + 1))
    if worst:
        mistakes = np.flatnonzero(wrong)[np.argsort(-confidence[wrong], kind="stable")]
        right = np.flatnonzero(~wrong)[np.argsort(confidence[~wrong], kind="stable")]
        order = np.concatenate([mistakes, right])[:n]
    else:
        order = np.arange(min(n, len(y)))
    columns = min(4, len(order))
    rows = math.ceil(len(order) / columns)
    fig = _new_figure(FIGURE_WIDTH, rows * 2.6 + 0.6)
    kind = (
        f"most confident mistakes first ({int(wrong.sum())} of {len(y)} wrong)" if worst else "first examples"
    )
    fig.suptitle(f"Predictions of {model.name}: {kind}")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[len(order) :]:
        fig.delaxes(ax)
    for ax, i in zip(axes.flat, order, strict=False):
        shown = _to_display(x[i])
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        colour = "crimson" if wrong[i] else "seagreen"
        mark = "✗" if wrong[i] else "✓"
        ax.set_title(
            f"{mark} pred: {names[predicted[i]]} ({confidence[i]:.2f})\ntrue: {names[y[i]]}",
            fontsize=8,
            color=colour,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(2.5 if wrong[i] else 1)
    return fig


_MARKERS = ["o", "^", "s", "D", "v", "P", "X", "*"]


def embeddings(
    features,
    labels,
    *,
    domains=None,
    method: str = "pca",
    class_names=None,
    domain_names=None,
    seed: int = 0,
    max_points: int = 3000,
    tsne_iterations: int = 1000,
):
    """2-D map of feature vectors: colour = class, marker = domain (source vs. target).

    Parameters
    ----------
    features : array-like, shape (n, ...)
        Feature vectors (flattened if they have more axes).
    labels : array-like of int, shape (n,)
    domains : array-like of int, shape (n,), optional
        Domain of each point (e.g. 0 = source, 1 = target).
    method : {"pca", "tsne"}
    class_names, domain_names : list of str, optional
    seed : int, default 0
    max_points : int, default 3000
        A random subset is drawn beyond this (t-SNE is slow on a CPU).
    tsne_iterations : int, default 1000
        Optimisation steps of t-SNE (at least 250).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> fig = embeddings(rng.normal(size=(40, 5)), np.arange(40) % 2, domains=np.arange(40) // 20,
    ...                  domain_names=["source", "target"])
    >>> fig.axes[0].get_xlabel()
    'PC 1'
    """
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    labels = np.asarray(labels).reshape(-1).astype(int)
    domains = None if domains is None else np.asarray(domains).reshape(-1).astype(int)
    if len(labels) != len(x) or (domains is not None and len(domains) != len(x)):
        raise VizError(
            f"{len(x)} feature vectors but {len(labels)} labels"
            + ("" if domains is None else f" and {len(domains)} domains")
            + ".",
            hint="Pass one label (and one domain) per feature vector.",
        )
    if method not in ("pca", "tsne"):
        raise unknown_name("method", method, ["pca", "tsne"], error=VizError)
    if len(x) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
        say(f"embeddings: drew {max_points} of {len(x)} points at random.")
        x, labels = x[keep], labels[keep]
        domains = None if domains is None else domains[keep]
    if method == "pca":
        from sklearn.decomposition import PCA

        reducer = PCA(n_components=2, random_state=seed)
        points = reducer.fit_transform(x)
        explained = reducer.explained_variance_ratio_
        axis_names = [f"PC {i + 1}" for i in range(2)]
        detail = f"PCA, {explained.sum():.0%} of variance"
    else:
        import inspect

        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(x) - 1) / 3)))
        steps = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"  # sklearn < 1.5
        tsne = TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed, **{steps: tsne_iterations}
        )
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        # One thread: next to TensorFlow's thread pools, t-SNE's OpenMP threads oversubscribe a small
        # CPU and run 10-100× slower.
        with threadpool_limits(limits=1):
            points = tsne.fit_transform(x)
        axis_names = ["t-SNE 1", "t-SNE 2"]
        detail = f"t-SNE, perplexity {perplexity:g}"
    classes = np.unique(labels)
    names = _names(class_names, int(classes.max()) + 1)
    colours = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    domain_ids = [None] if domains is None else list(np.unique(domains))
    fig = _new_figure(FIGURE_WIDTH, 6.0)
    ax = fig.subplots()
    for d in domain_ids:
        for k, c in enumerate(classes):
            mask = (labels == c) if d is None else (labels == c) & (domains == d)
            if mask.any():
                ax.scatter(
                    points[mask, 0],
                    points[mask, 1],
                    s=14,
                    alpha=0.7,
                    color=colours(k % colours.N),
                    marker=_MARKERS[0 if d is None else domain_ids.index(d) % len(_MARKERS)],
                    linewidths=0,
                )
    class_handles = [
        matplotlib.lines.Line2D(
            [], [], marker="o", linestyle="", color=colours(k % colours.N), label=names[c]
        )
        for k, c in enumerate(classes)
    ]
    legend = ax.legend(
        handles=class_handles, title="class", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1)
    )
    if domains is not None:
        ax.add_artist(legend)
        dnames = domain_names or [f"domain {d}" for d in range(int(max(domain_ids)) + 1)]
        handles = [
            matplotlib.lines.Line2D(
                [], [], marker=_MARKERS[i % len(_MARKERS)], linestyle="", color="grey", label=str(dnames[d])
            )
            for i, d in enumerate(domain_ids)
        ]
        ax.legend(handles=handles, title="domain", fontsize=8, loc="lower left", bbox_to_anchor=(1.01, 0))
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    by = "colour = class" + ("" if domains is None else ", marker = domain")
    ax.set_title(f"Embeddings of {len(x)} examples ({detail}); {by}")
    return fig


def augmentations(layer, image, *, n: int = 8, seed: int | None = None):
    """The image next to ``n`` random versions from an augmentation layer (run with ``training=True``).

    Parameters
    ----------
    layer : keras.layers.Layer
        E.g. ``tlcourse.data.augmentation()`` or a ``keras.Sequential`` of Random* layers.
    image : array-like
        One image (height, width, channels).
    n : int, default 8
    seed : int, optional
        Seeds Keras's random generators first, for a reproducible figure.

    Returns
    -------
    matplotlib.figure.Figure
        ``n + 1`` panels: the original, then each augmented version.

    Examples
    --------
    >>> import keras, numpy as np
    >>> flip = keras.layers.RandomFlip("horizontal")
    >>> len(augmentations(flip, np.zeros((16, 16, 3)), n=3).axes)
    4
    """
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    array = _load_image(image).astype(np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise VizError(
            f"Expected one image (height, width, channels), got shape {array.shape}.",
            hint="Pass images[0] for one image of a batch.",
        )
    if not callable(layer):
        raise VizError(
            f"{type(layer).__name__} is not a layer.", hint="Pass e.g. tlcourse.data.augmentation()."
        )
    versions = [np.asarray(layer(array[None], training=True))[0] for _ in range(n)]
    columns = min(5, n + 1)
    rows = math.ceil((n + 1) / columns)
    aspect = array.shape[0] / array.shape[1]
    fig = _new_figure(FIGURE_WIDTH, rows * (FIGURE_WIDTH / columns) * aspect + 0.8)
    fig.suptitle(f"{n} random versions from {getattr(layer, 'name', type(layer).__name__)} (training=True)")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[n + 1 :]:
        fig.delaxes(ax)
    scale = 255.0 if array.max(initial=0) > 1.5 else 1.0
    for k, (ax, version) in enumerate(zip(axes.flat, [array, *versions], strict=False)):
        shown = np.clip(version / scale, 0, 1)
        shown = shown[..., 0] if shown.shape[-1] == 1 else shown
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        ax.set_title("original" if k == 0 else f"#{k}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
