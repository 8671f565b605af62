"""Seeing inside a network, and the course's plots: feature maps, Grad-CAM, an explorer, curves.

Plots follow scikit-learn's display style: a function draws on the ``ax=`` (or, for several panels,
``fig=``) it is given and returns it; without one it makes a figure and returns that. New figures are
closed in pyplot, so Jupyter shows each one once, as the value of a cell. ``feature_maps`` and
``grad_cam`` return their numbers with the figure.

A base nested in a classifier is probed through the graphs that :mod:`tlcourse.introspect` exposes: one
probe model, fed by the tensor that feeds the base, gives every chosen layer's output for an image.
"""

from __future__ import annotations

import functools
import html
import io
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
import matplotlib
import matplotlib.pyplot as plt  # importing pyplot registers Jupyter's inline formatters
import numpy as np

from tlcourse.env import say
from tlcourse.errors import VizError, unknown_name
from tlcourse.introspect import functional_graph, is_batchnorm, nodes_in_order, walk_layers

__all__ = ["FIGURE_WIDTH", "FeatureMapExplorer", "FeatureMaps", "GradCam", "LayerInfo", "augmentations"]
__all__ += ["compare", "confusion", "embeddings", "feature_maps", "grad_cam", "history", "predictions"]

FIGURE_WIDTH = 9.5  # inches: fits JupyterLab's and Colab's notebook width without scrolling
# Layers whose output is spatial but says nothing about what the network learned.
_PLUMBING = {"InputLayer", "ZeroPadding2D", "Cropping2D", "Dropout", "SpatialDropout2D", "GaussianNoise"}
_PLUMBING |= {"Rescaling", "Normalization", "Resizing", "CenterCrop", "Identity", "Preprocess"}
_PLUMBING |= {"ResizeImages"}


# --------------------------------------------------------------------------- figures and pictures
def _figure(fig, width: float, height: float):
    """``fig`` when given, else a new figure, closed in pyplot so that Jupyter shows it once."""
    if fig is None:
        fig = plt.figure(figsize=(min(width, FIGURE_WIDTH), height), layout="constrained")
        plt.close(fig)
    return fig


def _axes(ax, width: float, height: float):
    """``(axes to draw on, what to return)``: ``ax`` twice when given, else new axes and their figure."""
    if ax is not None:
        return ax, ax
    fig = _figure(None, width, height)
    return fig.subplots(), fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _shown(image) -> np.ndarray:
    """An image as float RGB (or grey H×W) in [0, 1] for ``imshow``, whatever its value range."""
    image = np.asarray(image, dtype=np.float32)
    image = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
    if image.max(initial=0.0) > 1.5:
        return np.clip(image / 255.0, 0.0, 1.0)
    return _normalise(image) if image.min(initial=0.0) < 0 else np.clip(image, 0.0, 1.0)


def _normalise(array: np.ndarray) -> np.ndarray:
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def _grid(tiles, labels, *, columns: int, tile: int = 112) -> np.ndarray:
    """Tiles in [0, 1] (H×W coloured with viridis, H×W×3 as RGB) as one labelled uint8 RGB picture."""
    from PIL import Image, ImageDraw

    viridis = (matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    gap, rows = 4, max(1, math.ceil(len(tiles) / columns))
    picture = Image.new("RGB", (columns * (tile + gap) - gap, rows * (tile + gap) - gap), "white")
    for k, (image, label) in enumerate(zip(tiles, labels, strict=True)):
        rgb = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        corner = (k % columns * (tile + gap), k // columns * (tile + gap))
        picture.paste(Image.fromarray(viridis[rgb] if rgb.ndim == 2 else rgb).resize((tile, tile), 0), corner)
        ImageDraw.Draw(picture).text((corner[0] + 3, corner[1] + 2), label, fill="white")
    return np.asarray(picture)


def _encode_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((_shown(image) * 255).astype(np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _load(image) -> np.ndarray:
    """An image from an array, a tensor, a PIL image or a file path."""
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        from PIL import Image

        try:
            with Image.open(image) as pil:
                return np.asarray(pil.convert("RGB"))
        except OSError as err:
            raise VizError(
                f"Cannot read an image from {image!r}: {err}.", hint="Pass a PNG or JPEG."
            ) from err
    return np.asarray(image.numpy() if hasattr(image, "numpy") else image)


def _resize(image: np.ndarray, size) -> np.ndarray:
    """Bilinear resize of one (height, width, channels) image, as Keras' resizing layers do it."""
    return np.asarray(keras.ops.image.resize(np.asarray(image, np.float32)[None], tuple(size)))[0]


# --------------------------------------------------------------------------- the layers of a model
def _graph(model):
    if not isinstance(model, keras.Model):
        raise VizError(f"Expected a Keras model, got {type(model).__name__}.", hint="Pass the model itself.")
    graph = functional_graph(model)
    if graph is None:
        unbuilt = isinstance(model, keras.Sequential) or not model.built
        why = "was never built" if unbuilt else "is a subclassed model, whose graph Keras does not keep"
        raise VizError(
            f"Model {model.name!r} {why}: it has no layer outputs to look at.",
            hint="Start it with keras.Input(shape=...) or call model.build((None, height, width, channels))"
            if unbuilt
            else "Build it with the Functional API or keras.Sequential, or look at the Functional base inside.",
        )
    return graph


@dataclass(eq=False)
class _Entry:
    """A layer call: the layer, its graph node, and the models from the one probed to the node's."""

    layer: Any
    node: Any
    path: tuple
    name = property(lambda self: self.layer.name)
    kind = property(lambda self: type(self.layer).__name__)
    shape = property(lambda self: tuple(self.node.output_tensors[0].shape))


def _nested(layer) -> bool:
    return isinstance(layer, keras.Model) and functional_graph(layer) is not None


def _layers(model, path: tuple = ()) -> dict[str, _Entry]:
    """Layer name → its (first) call, nested models' layers included, in the order the image meets them."""
    layers: dict[str, _Entry] = {}
    for node in nodes_in_order(_graph(model)):
        if _nested(node.operation):
            for name, entry in _layers(node.operation, (*path, model)).items():
                layers.setdefault(name, entry)
        elif not node.is_input:
            layers.setdefault(node.operation.name, _Entry(node.operation, node, (*path, model)))
    return layers


def _maps(model) -> list[_Entry]:
    """The layers whose outputs are feature maps worth looking at."""
    return [e for e in _layers(model).values() if len(e.shape) == 4 and e.kind not in _PLUMBING]


def _is_conv(layer) -> bool:
    return "Conv" in type(layer).__name__ and hasattr(layer, "kernel_size")


def _resolve(model, names, offered: list[_Entry]) -> list[_Entry]:
    everything, known = _layers(model), [e.name for e in offered]
    listing = ", ".join(
        known if len(known) <= 30 else [*known[:15], f"… ({len(known) - 30} more) …", *known[-15:]]
    )
    for name in (getattr(item, "name", item) for item in names):
        if name not in everything:
            close = unknown_name("layer", name, known, error=VizError).hint.split("Known:")[0]
            raise VizError(f"Unknown layer {name!r}.", hint=f"{close}Layers with maps: {listing}.")
        if len(everything[name].shape) != 4:
            shape = everything[name].shape
            raise VizError(
                f"Layer {name!r} outputs {shape}: no spatial feature maps.", hint=f"Try: {listing}."
            )
    return [everything[getattr(item, "name", item)] for item in names]


# --------------------------------------------------------------------------- receptive fields
def _pair(value) -> tuple[int, int]:
    value = (value, value) if isinstance(value, int) else tuple(value)
    return int(value[0]), int(value[-1])


def _grow(rf, layer):
    """The receptive field ``((h, w), jump, approximate)``, in input pixels, after ``layer``."""
    (size, jump, approx), kind = rf, type(layer).__name__
    if _is_conv(layer) or (hasattr(layer, "pool_size") and not kind.startswith("Global")):
        kernel = _pair(getattr(layer, "kernel_size", None) or layer.pool_size)
        stride = _pair(layer.strides or layer.pool_size)
        dilation = _pair(getattr(layer, "dilation_rate", 1))
        size = tuple(r + d * (k - 1) * j for r, k, d, j in zip(size, kernel, dilation, jump, strict=True))
        return size, tuple(j * s for j, s in zip(jump, stride, strict=True)), approx or "Transpose" in kind
    inner = [sub for sub in walk_layers(layer) if _is_conv(sub) or hasattr(sub, "pool_size")]
    for sub in inner:  # a custom block hides its graph: its convolutions as a chain, an estimate
        size, jump, _ = _grow((size, jump, True), sub)
    return size, jump, approx or bool(inner) or "UpSampling" in kind


def _receptive_fields(model, start=None) -> tuple[dict, list]:
    """Layer name → receptive field, and the fields of the model's outputs. Where branches merge, the
    larger field per axis is kept: exact for the theoretical receptive field."""
    graph, one, by_name = _graph(model), ((1, 1), (1, 1), False), {}
    fields = {id(t): rf for t, rf in zip(graph.inputs, start or [one] * len(graph.inputs), strict=True)}
    for node in (n for n in nodes_in_order(graph) if not n.is_input):
        incoming = [fields.get(id(t), one) for t in node.input_tensors] or [one]
        size, jump = (tuple(max(rf[i][a] for rf in incoming) for a in (0, 1)) for i in (0, 1))
        merged = (size, jump, any(rf[2] for rf in incoming))
        if _nested(node.operation):
            inner, outs = _receptive_fields(node.operation, [merged] * len(node.input_tensors))
            by_name.update({name: rf for name, rf in inner.items() if name not in by_name})
        else:
            outs = [by_name.setdefault(node.operation.name, _grow(merged, node.operation))]
        fields.update({id(t): rf for t, rf in zip(node.output_tensors, outs * 8, strict=False)})
    return by_name, [fields.get(id(t), one) for t in graph.outputs]


def _default_layers(entries: list[_Entry], fields: dict, n: int = 6) -> list[_Entry]:
    """The first convolution (after its activation), then the last layer at each resolution, ``n`` at
    most: the rows walk down the resolutions, from edges to parts."""
    entries = [e for e in entries if not is_batchnorm(e.layer)]  # a BN map is its convolution's, rescaled
    first = next((i for i, e in enumerate(entries) if _is_conv(e.layer)), 0)
    if getattr(getattr(entries[first].layer, "activation", None), "__name__", "linear") == "linear":
        after = entries[first + 1 : first + 3]  # a linear convolution's activation follows it
        first += next((k + 1 for k, e in enumerate(after) if e.kind in ("Activation", "ReLU")), 0)
    if len(entries) - first <= n:  # a small CNN: all of it
        return entries[first:]
    jump = [fields.get(e.name, (None, (1, 1)))[1] for e in entries]
    last = {jump[i]: i for i in range(first, len(entries))}  # the last layer at each resolution
    stages = [i for i in last.values() if jump[i] != jump[first]]
    stages = (
        [stages[round((k + 1) * len(stages) / (n - 1)) - 1] for k in range(n - 1)]
        if len(stages) >= n
        else stages
    )
    return [entries[first]] + [entries[i] for i in stages]


# --------------------------------------------------------------------------- probing
def _model(model, outputs):
    inputs = list(_graph(model).inputs)
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs)


def _symbolic(model, entries: list[_Entry], level: int = 0) -> dict:
    """Symbolic outputs of ``entries`` in terms of ``model``'s inputs: a nested model's layers through a
    sub-probe called on the tensor that feeds the nested model in ``model``'s graph."""
    result, nested = {}, {}
    for entry in entries:
        if len(entry.path) == level + 1:
            result[entry.name] = entry.node.output_tensors[0]
        else:
            nested.setdefault(id(entry.path[level + 1]), []).append(entry)
    for group in nested.values():
        child = group[0].path[level + 1]
        inner = _symbolic(child, group, level + 1)
        fed = next(n for n in nodes_in_order(_graph(model)) if n.operation is child).input_tensors
        outs = _model(child, list(inner.values()))(fed[0] if len(fed) == 1 else fed)
        result.update(zip(inner, outs if isinstance(outs, (list, tuple)) else [outs], strict=True))
    return result


def _probe(model, entries: list[_Entry]):
    """One model: ``model``'s image in, every entry's output out."""
    return _model(model, list(_symbolic(model, entries).values()))


def _run(probe, entries: list[_Entry], batch: np.ndarray) -> dict[str, np.ndarray]:
    outs = probe(batch, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {e.name: np.asarray(out)[0] for e, out in zip(entries, outs, strict=True)}


def _prepare(model, image, *, quiet: bool = False, square: int | None = None) -> np.ndarray:
    """``image`` as a float32 batch of one that fits ``model``'s input: grey → RGB, alpha dropped, resized
    (to a centred ``square`` when the model takes any size), with a note saying so."""
    inputs = list(_graph(model).inputs)
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        hint = "Feature maps need a CNN with one image input: look at that branch alone."
        raise VizError(f"Model {model.name!r} does not take one batch of images.", hint=hint)
    height, width, channels = tuple(inputs[0].shape)[1:]
    array, notes = _load(image).astype(np.float32), []
    if array.ndim == 4 and len(array) != 1:
        raise VizError(f"Got a batch of {len(array)} images; this shows one.", hint="Pass images[0].")
    array = array.reshape(array.shape[1:]) if array.ndim == 4 else array.reshape(*array.shape[:2], -1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        hint = "Channels go last in Keras: np.moveaxis(image, 0, -1) moves them."
        raise VizError(f"Expected an image with 1, 3 or 4 channels, got {array.shape}.", hint=hint)
    if array.shape[-1] in (1, 4) and channels == 3:
        notes.append("grey → RGB" if array.shape[-1] == 1 else "dropped the alpha channel")
        array = np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array[..., :3]
    if channels is not None and array.shape[-1] != channels:
        hint = "Convert the image to the model's channel count first."
        raise VizError(
            f"The image has {array.shape[-1]} channels; {model.name!r} takes {channels}.", hint=hint
        )
    if height is None and square:
        top, left, side = *((np.array(array.shape[:2]) - min(array.shape[:2])) // 2), min(array.shape[:2])
        array, height, width = array[top : top + side, left : left + side], square, square
    if None not in (height, width) and array.shape[:2] != (height, width):
        notes.append(f"resized {array.shape[0]}×{array.shape[1]} → {height}×{width}")
        array = _resize(array, (height, width))
    if notes and not quiet:
        say(f"adapted the image to model {model.name!r}: " + ", ".join(notes) + ".")
    return array[None]


def _seen(model, batch: np.ndarray) -> np.ndarray:
    """The image as the first convolution sees it (after the model's own resizing and cropping, before
    any value scaling): it still looks like a photo and matches the maps and heatmaps pixel for pixel."""
    for entry in _layers(model).values():
        if entry.kind in ("CenterCrop", "Cropping2D", "Resizing"):
            batch = np.asarray(entry.layer(batch))
        elif _is_conv(entry.layer) or entry.kind == "ZeroPadding2D":
            size = tuple(entry.node.input_tensors[0].shape)[1:3]
            return _resize(batch[0], size) if None not in size and batch.shape[1:3] != size else batch[0]
    return batch[0]


# --------------------------------------------------------------------------- feature maps
@dataclass(frozen=True)
class LayerInfo:
    """A layer's output for one image: its ``shape`` (height, width, channels) and ``receptive_field``
    (height, width: the input pixels one position sees), ``approximate`` for custom blocks."""

    name: str
    shape: tuple
    receptive_field: tuple
    approximate: bool = False

    def describe(self) -> str:
        h, w = self.receptive_field
        size = ("≈" if self.approximate else "") + (f"{h} px" if h == w else f"{h}×{w} px")
        return f"{self.name}  ·  {'×'.join(map(str, self.shape))}  ·  receptive field {size}"


class FeatureMaps(dict):
    """Activations of layers for one image, ``{layer name: (h, w, channels) array}``, with ``info`` (a
    LayerInfo per layer), ``channels`` (those drawn: most active first, none all zero) and ``figure``."""

    def __init__(self, activations: dict, info: dict, channels: dict, figure):
        super().__init__(activations)
        self.info, self.channels, self.figure = info, channels, figure

    def __repr__(self) -> str:
        return f"FeatureMaps of {len(self)} layers:\n" + "\n".join(
            f"  {i.describe()}" for i in self.info.values()
        )

    def _repr_png_(self) -> bytes:
        return _png(self.figure)


def _ranked(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Channel indices, most active (mean absolute activation) first, and whether each is not all zero."""
    flat = np.abs(maps.reshape(-1, maps.shape[-1]))
    order = np.argsort(-flat.mean(axis=0), kind="stable")
    return order, (flat.max(axis=0) > 0)[order]


def _info(name: str, maps: np.ndarray, fields: dict) -> LayerInfo:
    (h, w), _, approx = fields.get(name, ((1, 1), None, True))
    return LayerInfo(name, tuple(maps.shape), (int(round(h)), int(round(w))), bool(approx))


def feature_maps(model, image, *, layers=None, max_channels: int = 16, fig=None) -> FeatureMaps:
    """Activations of a model's layers for one image, drawn a row per layer, most active channels first.

    Parameters
    ----------
    model : keras.Model
        A built Functional or Sequential model: a base, a classifier with a base inside, a plain CNN.
    image : array-like, path or PIL image
        One image in the value range the model expects (the course's bases take raw 0–255 RGB).
    layers : list of str, optional
        Default: the first convolution, then the last layer at each resolution, edges to parts.
    max_channels : int, default 16
        Channels drawn per layer, each normalised on its own; all-zero ones are skipped.
    fig : matplotlib Figure or SubFigure, optional

    Returns
    -------
    FeatureMaps
        ``{layer: activations}`` with ``.info`` (shape, receptive field), ``.channels`` and ``.figure``.

    Examples
    --------
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.MaxPooling2D(), keras.layers.Conv2D(8, 3, activation="relu")])
    >>> maps = feature_maps(model, np.random.default_rng(0).uniform(0, 1, (32, 32, 3)), layers=model.layers)
    >>> [(info.shape, info.receptive_field) for info in maps.info.values()]
    [((30, 30, 4), (3, 3)), ((15, 15, 4), (4, 4)), ((13, 13, 8), (8, 8))]
    """
    if max_channels < 1:
        raise VizError(f"max_channels must be at least 1, got {max_channels}.", hint="Try max_channels=16.")
    offered, fields = _maps(model), _receptive_fields(model)[0]
    if not offered:
        raise VizError(f"Model {model.name!r} has no layer with spatial feature maps.", hint="Use a CNN.")
    chosen = _default_layers(offered, fields) if layers is None else _resolve(model, layers, offered)
    batch = _prepare(model, image)
    activations = _run(_probe(model, chosen), chosen, batch)
    info = {name: _info(name, maps, fields) for name, maps in activations.items()}
    ranked = {name: _ranked(maps) for name, maps in activations.items()}
    channels = {
        name: [int(c) for c in order[alive][:max_channels]] for name, (order, alive) in ranked.items()
    }
    heights = [2.2] + [math.ceil(max(len(c), 1) / 8) * 1.2 + 0.35 for c in channels.values()]
    fig = _figure(fig, FIGURE_WIDTH, sum(heights) + 0.4)
    fig.suptitle(f"Feature maps of {model.name}: most active channels first, each normalised on its own")
    axes = fig.subplots(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
    seen = _shown(_seen(model, batch))
    axes[0].imshow(seen, cmap="gray" if seen.ndim == 2 else None)
    axes[0].set_title(f"input {seen.shape[0]}×{seen.shape[1]}", fontsize=9)
    for ax, (name, maps) in zip(axes[1:], activations.items(), strict=True):
        zero, shown = int((~ranked[name][1]).sum()), channels[name]
        title = f"{info[name].describe()}  ·  {len(shown)} of {maps.shape[-1]} channels"
        ax.set_title(title + (f" ({zero} all-zero skipped)" if zero else ""), fontsize=9, loc="left")
        tiles = [_normalise(maps[..., c]) for c in shown]
        ax.imshow(_grid(tiles, [f"#{c}" for c in shown], columns=max(1, min(8, len(tiles)))))
    for ax in axes:
        ax.set_axis_off()
    return FeatureMaps(activations, info, channels, fig)


# --------------------------------------------------------------------------- Grad-CAM
@dataclass(eq=False)
class GradCam:
    """A Grad-CAM explanation of one prediction: the ``heatmap`` in [0, 1], pixel for pixel over
    ``image`` (the image as the model saw it, after its own resizing), the ``coarse`` map at the layer's
    resolution, the ``class_index`` and ``class_name`` explained, the model's ``probability`` for it, the
    ``layer`` used, and the ``figure`` (image, heatmap, overlay)."""

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
        """(row, column) of the heatmap's maximum, in pixels of ``image``."""
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape))

    def _repr_png_(self) -> bytes:
        return _png(self.figure)


def _probabilities(outputs) -> np.ndarray:
    """Probabilities from a classifier's outputs: softmax of logits, sigmoid of one logit, or as they are."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.shape[-1] == 1:
        return np.concatenate([1 / (1 + np.exp(outputs)), 1 / (1 + np.exp(-outputs))], axis=-1)
    if outputs.min() >= 0 and np.allclose(outputs.sum(axis=-1), 1, atol=1e-3):
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _first_output(outputs):
    outputs = next(iter(outputs.values())) if isinstance(outputs, dict) else outputs
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def grad_cam(model, image, *, class_index: int | None = None, layer=None, class_names=None, fig=None):
    """Grad-CAM: which parts of the image made a classifier pick a class (Selvaraju et al., 2017).

    The maps of ``layer`` (default: the last with spatial maps) are weighted by the mean gradient of the
    class score (default: the predicted class's logit) per channel; the positive part of the sum is the
    heatmap. ImageNet's class names are found on their own for 1000-class models.

    Returns
    -------
    GradCam

    Examples
    --------
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> cam = grad_cam(model, np.random.default_rng(0).uniform(0, 1, (32, 32, 3)), class_index=1)
    >>> cam.heatmap.shape, cam.class_index
    ((32, 32), 1)
    """
    import tensorflow as tf

    offered = _maps(model)
    if not offered:
        raise VizError(
            f"Model {model.name!r} has no layer with spatial maps.", hint="Grad-CAM explains CNNs."
        )
    entry = offered[-1] if layer is None else _resolve(model, [layer], offered)[0]
    batch, recorded, original_call = tf.constant(_prepare(model, image)), {}, entry.layer.call

    @functools.wraps(original_call)
    def recording_call(*args, **kwargs):
        recorded["maps"] = maps = original_call(*args, **kwargs)
        tape.watch(maps)
        return maps

    # Recording the layer's output while the whole model runs gives the gradient through the real graph,
    # however deeply the layer is nested.
    entry.layer.call = recording_call
    try:
        with tf.GradientTape() as tape:
            outputs = tf.convert_to_tensor(_first_output(model(batch, training=False)))
            count = int(outputs.shape[-1]) if outputs.shape.rank == 2 else 0
            index = int(tf.argmax(outputs[0])) if class_index is None and count else int(class_index or 0)
            score = outputs[:, index] if 0 <= index < count else None
    finally:
        del entry.layer.call
    if score is None:
        what = f"class_index {index} is out of range for {count} classes" if count else "no class scores"
        hint = "Explain a classifier (output: batch × classes) with 0 ≤ class_index < classes."
        raise VizError(
            f"{what[0].upper()}{what[1:]}: {model.name!r} outputs {tuple(outputs.shape)}.", hint=hint
        )
    grads = tape.gradient(score, recorded["maps"]) if "maps" in recorded else None
    if grads is None:
        raise VizError(
            f"The class score does not depend on layer {entry.name!r}.", hint="Pick a layer on its path."
        )
    weights = tf.reduce_mean(grads, axis=(1, 2))  # one weight per channel
    coarse = tf.nn.relu(tf.reduce_sum(recorded["maps"] * weights[:, None, None, :], axis=-1))[0].numpy()
    coarse = coarse / coarse.max() if coarse.max() > 0 else coarse
    seen = _seen(model, batch.numpy())
    heatmap = np.clip(_resize(coarse[..., None], seen.shape[:2])[..., 0], 0.0, 1.0)
    probability = float(_probabilities(outputs.numpy()[0])[index]) if count > 1 else float("nan")
    if class_names is None and count == 1000:  # ImageNet
        from tlcourse.models import decode_predictions

        class_names = {index: decode_predictions(np.eye(1000, dtype="float32")[[index]], top=1)[0][0][1]}
    name = None if class_names is None else str(class_names[index])
    fig = _figure(fig, FIGURE_WIDTH, 3.6)
    label = (
        f"class {index}" + (f" '{name}'" if name else "") + (f" (p = {probability:.2f})" if count > 1 else "")
    )
    fig.suptitle(f"Grad-CAM for {label} at layer {entry.name}")
    axes, picture = fig.subplots(1, 3), _shown(seen)
    for ax, title in zip(axes, ("image", "heatmap", "overlay (+ = peak)"), strict=True):
        ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax.set(title=title, xlabel="x (pixels)", ylabel="y (pixels)")
    heat = axes[1].imshow(heatmap, cmap="jet", vmin=0, vmax=1)
    fig.colorbar(heat, ax=axes[1], fraction=0.046, label="importance")
    axes[2].imshow(heatmap, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    cam = GradCam(heatmap, coarse, index, name, probability, entry.name, seen, fig)
    axes[2].plot(cam.peak[1], cam.peak[0], marker="+", color="white", markersize=12, mew=2)
    return cam


# --------------------------------------------------------------------------- the explorer
class FeatureMapExplorer:
    """An ipywidgets explorer: pick an image (or upload one) and a layer, page through its channels.

    One probe computes every layer's maps for an image at once and keeps them, so moving through layers
    and pages redraws one PNG in place. Offers scikit-image's sample photos and ``images`` (a dict of
    name → image), and every layer with maps but BatchNormalization (its maps are its convolution's,
    rescaled). Works with ipywidgets 7 (Colab's) and 8.

    Examples
    --------
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.MaxPooling2D(), keras.layers.Conv2D(8, 3)])
    >>> explorer = FeatureMapExplorer(model, images={"noise": np.zeros((32, 32, 3))})
    >>> explorer.layer_dropdown.value = explorer.layer_names[-1]
    >>> explorer.depth_slider.value, explorer.activations("noise")[explorer.layer].shape
    (2, (13, 13, 8))
    """

    PER_PAGE, SIZE = 16, 224  # channels per page; the side of the photos when the model takes any size

    def __init__(self, model, *, images=None):
        import ipywidgets as widgets

        from tlcourse.data import sample_photos

        self.model, self._entries = model, [e for e in _maps(model) if not is_batchnorm(e.layer)]
        if not self._entries:
            raise VizError(f"Model {model.name!r} has no layer with spatial feature maps.", hint="Use a CNN.")
        self.layer_names, self._fields = [e.name for e in self._entries], _receptive_fields(model)[0]
        self.images = {
            **sample_photos(),
            **{str(name): _load(image) for name, image in (images or {}).items()},
        }
        self._maps, self._batches, self._probe, self.page, self.last_update_seconds = {}, {}, None, 0, 0.0
        self.image_dropdown = widgets.Dropdown(options=list(self.images), description="image")
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload")
        self.layer_dropdown = widgets.Dropdown(options=self.layer_names, description="layer")
        self.depth_slider = widgets.IntSlider(0, 0, len(self.layer_names) - 1, description="depth")
        widgets.link((self.layer_dropdown, "index"), (self.depth_slider, "value"))
        self.previous_button = widgets.Button(description="◀ channels", layout={"width": "110px"})
        self.next_button = widgets.Button(description="channels ▶", layout={"width": "110px"})
        self.header, self.view, self.thumbnail = widgets.HTML(), widgets.Image(), widgets.Image(width=160)
        self.image_dropdown.observe(lambda _: self._show(page=0, new_image=True), names="value")
        self.upload.observe(self._on_upload, names="value")
        self.depth_slider.observe(lambda _: self._show(page=0), names="value")
        self.previous_button.on_click(lambda _: self._show(page=self.page - 1))
        self.next_button.on_click(lambda _: self._show(page=self.page + 1))
        rows = [[self.image_dropdown, self.upload], [self.layer_dropdown, self.depth_slider]]
        rows += [[self.previous_button, self.next_button]]
        pictures = widgets.HBox([self.thumbnail, self.view], layout={"align_items": "flex-start"})
        self.widget = widgets.VBox([*(widgets.HBox(row) for row in rows), self.header, pictures])
        self._show(page=0, new_image=True)

    def _repr_mimebundle_(self, **kwargs) -> dict:
        # Jupyter's widget MIME type (what ipywidgets 7 and 8 both emit), and a line for other front-ends.
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        text = (
            f"FeatureMapExplorer of {self.model.name!r} ({len(self.layer_names)} layers): needs a live kernel"
        )
        return {"application/vnd.jupyter.widget-view+json": view, "text/plain": text}

    @property
    def layer(self) -> str:
        return self.layer_dropdown.value

    def activations(self, image: str | None = None) -> dict[str, np.ndarray]:
        """Every offered layer's maps for a named image (default: the one shown), computed once."""
        image = self.image_dropdown.value if image is None else image
        if image not in self._maps:
            self._probe = self._probe or _probe(self.model, self._entries)
            self._batches[image] = _prepare(self.model, self.images[image], quiet=True, square=self.SIZE)
            self._maps[image] = _run(self._probe, self._entries, self._batches[image])
        return self._maps[image]

    def _on_upload(self, change) -> None:
        from PIL import Image

        files = change.new  # ipywidgets 8: a tuple of dicts; 7: {file name: {"metadata": …, "content": …}}
        upload = (files[-1] if isinstance(files, (list, tuple)) else [*files.values()][-1]) if files else None
        name = upload and "upload: " + (upload.get("name") or upload["metadata"]["name"])
        try:
            with Image.open(io.BytesIO(bytes(upload["content"]))) as pil:
                self.images[name] = np.asarray(pil.convert("RGB"))
        except (OSError, TypeError):  # TypeError: the upload was cleared
            self.header.value = f"<b>Could not read {html.escape(name)} as an image.</b>" if name else ""
            return
        self._maps.pop(name, None)
        self.image_dropdown.options = list(self.images)
        if self.image_dropdown.value == name:  # the same name again: no change event
            self._show(page=0, new_image=True)
        self.image_dropdown.value = name

    def _show(self, *, page: int, new_image: bool = False) -> None:
        started, maps = time.perf_counter(), self.activations()[self.layer]
        if new_image:
            self.thumbnail.value = _encode_png(self._batches[self.image_dropdown.value][0])
        order, alive = _ranked(maps)
        pages = max(1, math.ceil(len(order) / self.PER_PAGE))
        self.page = page % pages
        shown = slice(self.page * self.PER_PAGE, (self.page + 1) * self.PER_PAGE)
        labels = [f"#{c}" + ("" if a else " (zero)") for c, a in zip(order[shown], alive[shown], strict=True)]
        self.view.value = _encode_png(
            _grid([_normalise(maps[..., c]) for c in order[shown]], labels, columns=4)
        )
        kind = self._entries[self.layer_names.index(self.layer)].kind
        self.last_update_seconds = time.perf_counter() - started
        self.header.value = (
            f"<b>{_info(self.layer, maps, self._fields).describe()}</b> ({kind}) · channels by activity, "
            f"page {self.page + 1}/{pages} · {self.last_update_seconds * 1000:.0f} ms"
        )


# --------------------------------------------------------------------------- training and comparison plots
def history(h, *, stage_boundaries=None, stage_names=None, fig=None):
    """Loss and metric curves per epoch, training and validation, with the training stages marked.

    ``h`` is what ``model.fit`` returned, its ``.history`` dict, or ``tlcourse.train``'s History: an
    object's ``.stage_boundaries`` (the epochs where a stage starts) and ``.stages`` (names) are marked
    unless ``stage_boundaries`` and ``stage_names`` are given. Returns the figure (or ``fig``), a panel
    per metric.

    Examples
    --------
    >>> fig = history({"loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.8, 0.7], "accuracy": [0.5, 0.7, 0.8]},
    ...               stage_boundaries=[2], stage_names=["head", "fine-tuning"])
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'accuracy']
    """
    values = h if isinstance(h, Mapping) else getattr(h, "history", None)
    if not isinstance(values, Mapping) or not values:
        hint = "Pass what model.fit returned, its .history dict, or tlcourse.train's History."
        raise VizError(f"Cannot read a training history from {type(h).__name__}.", hint=hint)
    boundaries = stage_boundaries if stage_boundaries is not None else getattr(h, "stage_boundaries", None)
    boundaries = [b for b in boundaries or [] if b > 0]  # a stage starting at epoch 0 is no boundary
    names = list(stage_names or getattr(h, "stage_names", None) or getattr(h, "stages", None) or [])
    names += [f"stage {i + 1}" for i in range(len(names), len(boundaries) + 1)]
    metrics = list(dict.fromkeys(k.removeprefix("val_") for k in values if k not in ("learning_rate", "lr")))
    fig = _figure(fig, FIGURE_WIDTH, 3.2 * math.ceil(len(metrics) / 3) + 0.5)
    stages = f" ({len(boundaries) + 1} stages)" if boundaries else ""
    fig.suptitle(f"Training history: {max(len(v) for v in values.values())} epochs{stages}")
    axes = list(fig.subplots(math.ceil(len(metrics) / 3), min(3, len(metrics)), squeeze=False).flat)
    for ax in axes[len(metrics) :]:
        ax.remove()
    for ax, metric in zip(axes, metrics, strict=False):
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "--s")):
            if key in values:
                ax.plot(range(1, len(values[key]) + 1), values[key], style, markersize=3, label=label)
        for boundary, name in zip(boundaries, names[1:], strict=False):
            ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=1.5)
            ax.text(boundary + 0.6, 0.98, name, transform=ax.get_xaxis_transform(), va="top", fontsize=8)
        if boundaries:
            ax.text(0.02, 0.02, names[0], transform=ax.transAxes, fontsize=8)
        ax.set(title=metric, xlabel="epoch", ylabel=metric)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def compare(table, *, metric: str = "accuracy", by: str = "fraction", ax=None):
    """Bars of a metric per recipe and ``by`` level: the mean ± standard deviation over seeds.

    ``table`` has a row per run with ``recipe``, ``by`` and ``metric``: a list of dicts, a dict of
    columns, a pandas DataFrame or ``tlcourse.train.compare``'s result. Returns the figure, or ``ax``.

    Examples
    --------
    >>> rows = [{"recipe": r, "fraction": f, "accuracy": a + s / 10}
    ...         for r, a in (("scratch", 0.4), ("transfer", 0.8)) for f in (0.1, 1.0) for s in (0, 1)]
    >>> [round(float(bar.get_height()), 2) for bar in compare(rows).axes[0].patches]
    [0.45, 0.45, 0.85, 0.85]
    """
    table = table.to_dict("records") if hasattr(table, "to_dict") else getattr(table, "rows", table)
    if isinstance(table, Mapping):  # columns
        table = [dict(zip(table, values, strict=True)) for values in zip(*table.values(), strict=True)]
    rows = [dict(row) for row in table]
    if not rows or any(key not in rows[0] for key in ("recipe", by, metric)):
        hint = f"Its columns: {', '.join(rows[0]) if rows else 'none, it is empty'}."
        raise VizError(f"The table needs the columns 'recipe', {by!r} and {metric!r}.", hint=hint)
    recipes = list(dict.fromkeys(str(r["recipe"]) for r in rows))
    levels = sorted(dict.fromkeys(r[by] for r in rows), key=lambda v: (isinstance(v, str), v))
    ax, result = _axes(ax, FIGURE_WIDTH, 4.2)
    width, counts = 0.8 / len(recipes), set()
    for i, recipe in enumerate(recipes):
        groups = [
            [float(r[metric]) for r in rows if str(r["recipe"]) == recipe and r[by] == v] for v in levels
        ]
        counts.update(len(g) for g in groups)
        means, spreads = (
            [np.mean(g) for g in groups],
            [np.std(g, ddof=1) if len(g) > 1 else 0 for g in groups],
        )
        x = np.arange(len(levels)) + (i - (len(recipes) - 1) / 2) * width
        bars = ax.bar(x, means, width, yerr=spreads, capsize=4, label=recipe)
        ax.bar_label(bars, labels=[f"{m:.2f}" for m in means], fontsize=7, padding=2)
    ax.set_xticks(np.arange(len(levels)), [str(v) for v in levels])
    ax.set(xlabel=by.replace("_", " "), ylabel=f"{metric} (mean ± std)")
    ax.set_title(f"{metric} by recipe and {by}: mean ± std over {'/'.join(map(str, sorted(counts)))} seed(s)")
    ax.legend(title="recipe", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    if metric.endswith("accuracy"):
        ax.set_ylim(0, 1.08)
    return result


# --------------------------------------------------------------------------- evaluation plots
def _classified(model, data, class_names):
    """``x``, ``y``, the predicted classes and their probabilities, and a name per class, from ``(x, y)``
    arrays or a tf.data.Dataset of pairs (batched or not; integer or one-hot labels)."""
    if hasattr(data, "as_numpy_iterator"):
        pairs = list(data.as_numpy_iterator())
        if not pairs or not all(isinstance(p, tuple) and len(p) >= 2 for p in pairs):
            raise VizError("The dataset must yield (x, y) pairs.", hint="Map it to (image, label) first.")
        join = (
            np.concatenate if np.ndim(pairs[0][1]) >= 1 and len(pairs[0][0]) == len(pairs[0][1]) else np.stack
        )
        data = join([p[0] for p in pairs]), join([p[1] for p in pairs])
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise VizError(f"Cannot read (x, y) from {type(data).__name__}.", hint="Pass (x, y) or a dataset.")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    y = (y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)).astype(int)
    probabilities = _probabilities(_first_output(model.predict(x, batch_size=64, verbose=0)))
    count = max(probabilities.shape[1], int(y.max()) + 1)
    if class_names is not None and len(class_names) < count:
        raise VizError(f"{len(class_names)} class names for {count} classes.", hint="Pass one per class.")
    names = (
        [str(n) for n in class_names][:count] if class_names is not None else [str(i) for i in range(count)]
    )
    return x, y, probabilities.argmax(axis=1), probabilities.max(axis=1), names


def confusion(model, data, *, class_names=None, normalize: str | None = None, ax=None):
    """The confusion matrix of a classifier on labelled data, drawn by scikit-learn's ``ConfusionMatrixDisplay``.

    ``data`` is ``(x, y)`` arrays or a tf.data.Dataset of pairs; ``normalize`` is scikit-learn's
    (``"true"``, ``"pred"`` or ``"all"`` for shares instead of counts). Returns the figure, or ``ax``.

    Examples
    --------
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x, y = np.random.default_rng(0).normal(size=(30, 4)), np.arange(30) % 3
    >>> confusion(model, (x, y), class_names=["a", "b", "c"]).axes[0].get_xlabel()
    'Predicted label'
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    _, y, predicted, _, names = _classified(model, data, class_names)
    side = min(FIGURE_WIDTH, max(4.5, 0.45 * len(names) + 2.5))
    ax, result = _axes(ax, side + 1.0, side)
    options = dict(
        normalize=normalize, values_format=".2f" if normalize else "d", include_values=len(names) <= 20
    )
    ConfusionMatrixDisplay.from_predictions(
        y,
        predicted,
        labels=range(len(names)),
        display_labels=names,
        ax=ax,
        cmap="Blues",
        xticks_rotation=45,
        **options,
    )
    ax.set_title(f"Confusion matrix: accuracy {np.mean(predicted == y):.3f} on {len(y)} examples")
    return result


def predictions(model, data, *, class_names=None, worst: bool = True, n: int = 16, fig=None):
    """Images with the predicted and true class and the confidence; mistakes in red.

    ``data`` is ``(x, y)`` arrays or a tf.data.Dataset of pairs. With ``worst`` the most confident
    mistakes come first, then the least confident right answers; else the first ``n``. Returns the
    figure, or ``fig``.

    Examples
    --------
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> x, y = np.random.default_rng(0).uniform(size=(10, 8, 8, 1)), np.arange(10) % 2
    >>> len(predictions(model, (x, y), n=6).axes)
    6
    """
    x, y, predicted, confidence, names = _classified(model, data, class_names)
    if x.ndim not in (3, 4):
        raise VizError(
            f"predictions() shows images, got inputs of shape {x.shape[1:]}.", hint="Use confusion()."
        )
    wrong = predicted != y
    order = (
        np.lexsort((np.where(wrong, -confidence, confidence), ~wrong))[:n]
        if worst
        else np.arange(n)[: len(y)]
    )
    columns = min(4, len(order))
    fig = _figure(fig, FIGURE_WIDTH, math.ceil(len(order) / columns) * 2.6 + 0.6)
    which = (
        f"most confident mistakes first ({int(wrong.sum())} of {len(y)} wrong)" if worst else "first examples"
    )
    fig.suptitle(f"Predictions of {model.name}: {which}")
    axes = list(fig.subplots(math.ceil(len(order) / columns), columns, squeeze=False).flat)
    for ax in axes[len(order) :]:
        ax.remove()
    for ax, i in zip(axes, order, strict=False):
        picture, colour, mark = _shown(x[i]), "crimson" if wrong[i] else "seagreen", "✗" if wrong[i] else "✓"
        ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax.set(xticks=[], yticks=[])
        ax.set_title(
            f"{mark} pred: {names[predicted[i]]} ({confidence[i]:.2f})\ntrue: {names[y[i]]}", color=colour
        )
        ax.title.set_fontsize(8)
        for spine in ax.spines.values():
            spine.set(edgecolor=colour, linewidth=2.5 if wrong[i] else 1)
    return fig


def embeddings(features, labels, *, domains=None, method="pca", class_names=None, domain_names=None, seed=0,
               max_points=3000, ax=None):  # fmt: skip
    """A 2-D map of feature vectors (PCA, or t-SNE: clearer clusters, slower): colour = class,
    marker = domain (e.g. source vs. target). Beyond ``max_points`` a random subset is drawn.
    Returns the figure, or ``ax``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> embeddings(rng.normal(size=(40, 5)), np.arange(40) % 2, domains=np.arange(40) // 20).axes[0].get_xlabel()
    'PC 1'
    """
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    labels = np.asarray(labels).reshape(-1).astype(int)
    domains = np.zeros(len(x), int) if domains is None else np.asarray(domains).reshape(-1).astype(int)
    if not len(labels) == len(domains) == len(x):
        hint = "Pass one label (and one domain) per feature vector."
        raise VizError(
            f"{len(x)} feature vectors, {len(labels)} labels and {len(domains)} domains.", hint=hint
        )
    if method not in ("pca", "tsne"):
        raise unknown_name("method", method, ["pca", "tsne"], error=VizError)
    if len(x) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
        say(f"embeddings: drew {max_points} of {len(x)} points at random.")
        x, labels, domains = x[keep], labels[keep], domains[keep]
    if method == "pca":
        from sklearn.decomposition import PCA

        reducer = PCA(n_components=2, random_state=seed)
        points = reducer.fit_transform(x)
        axis, detail = "PC", f"PCA, {reducer.explained_variance_ratio_.sum():.0%} of variance"
    else:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        perplexity = float(min(30, max(2, (len(x) - 1) / 3)))
        with threadpool_limits(limits=1):  # next to TensorFlow's threads, t-SNE's OpenMP ones oversubscribe
            points = TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
        axis, detail = "t-SNE", f"t-SNE, perplexity {perplexity:g}"
    classes, domain_ids, markers = np.unique(labels), [int(d) for d in np.unique(domains)], "o^sDvPX*"
    colours = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    names = (
        [str(n) for n in class_names]
        if class_names is not None
        else [str(c) for c in range(max(classes) + 1)]
    )
    ax, result = _axes(ax, FIGURE_WIDTH, 6.0)
    for (m, d), (k, c) in ((md, kc) for md in enumerate(domain_ids) for kc in enumerate(classes)):
        if (mask := (labels == c) & (domains == d)).any():
            style = dict(color=colours(k % colours.N), marker=markers[m % 8], linewidths=0, s=14, alpha=0.7)
            ax.scatter(*points[mask].T, **style)
    handle = functools.partial(matplotlib.lines.Line2D, [], [], linestyle="")
    by_class = [
        handle(marker="o", color=colours(k % colours.N), label=names[c]) for k, c in enumerate(classes)
    ]
    ax.add_artist(
        ax.legend(handles=by_class, title="class", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    )
    if len(domain_ids) > 1:
        dnames = domain_names or [f"domain {d}" for d in range(max(domain_ids) + 1)]
        by_domain = [
            handle(marker=markers[m % 8], color="grey", label=dnames[d]) for m, d in enumerate(domain_ids)
        ]
        ax.legend(handles=by_domain, title="domain", fontsize=8, loc="lower left", bbox_to_anchor=(1.01, 0))
    by = "colour = class" + (", marker = domain" if len(domain_ids) > 1 else "")
    ax.set(xlabel=f"{axis} 1", ylabel=f"{axis} 2", title=f"Embeddings of {len(x)} examples ({detail}); {by}")
    return result


def augmentations(layer, image, *, n: int = 8, seed: int | None = None, ax=None):
    """An image and ``n`` random versions of it from an augmentation layer, run with ``training=True``.

    ``layer`` is e.g. ``tlcourse.data.augmentation()`` or a ``keras.Sequential`` of Random* layers;
    ``seed`` seeds Keras's random generators first, for a figure that is the same every run. Returns the
    figure (or ``ax``), one picture: the original, then each version.

    Examples
    --------
    >>> fig = augmentations(keras.layers.RandomFlip("horizontal"), np.zeros((16, 16, 3)), n=3)
    >>> fig.axes[0].get_images()[0].get_array().shape  # 4 tiles of 112 px and 3 gaps of 4 px
    (112, 460, 3)
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    array = _load(image).astype(np.float32)
    array = array[..., None] if array.ndim == 2 else array
    if array.ndim != 3 or not callable(layer):
        hint = "Pass e.g. tlcourse.data.augmentation() and images[0]."
        raise VizError(
            f"Expected a layer and one image, got {type(layer).__name__}, {array.shape}.", hint=hint
        )
    versions = [array] + [np.asarray(layer(array[None], training=True))[0] for _ in range(n)]
    scale = 255.0 if array.max(initial=0) > 1.5 else 1.0
    tiles = [np.clip(v / scale, 0, 1).repeat(3 // v.shape[-1], axis=-1) for v in versions]
    columns = min(5, n + 1)
    ax, result = _axes(ax, FIGURE_WIDTH, math.ceil((n + 1) / columns) * FIGURE_WIDTH / columns + 0.5)
    ax.imshow(_grid(tiles, ["original"] + [f"#{k}" for k in range(1, n + 1)], columns=columns))
    ax.set_title(f"{n} random versions from {getattr(layer, 'name', type(layer).__name__)} (training=True)")
    ax.set_axis_off()
    return result
