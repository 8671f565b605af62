"""Seeing inside a network, and the course's plots: feature maps, Grad-CAM, an explorer, curves.

Plots follow scikit-learn's display style: a function draws on the ``ax=`` (or, for several panels,
``fig=``) it is given and returns it; without one it makes a figure (closed in pyplot, so Jupyter shows
it once, as the value of a cell) and returns that. Nested bases are probed through their own graphs.
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
import tensorflow as tf
from PIL import Image, ImageDraw
from scipy.special import expit, softmax  # installed with scikit-learn

from tlcourse.data import sample_photos
from tlcourse.env import reseed, say
from tlcourse.errors import VizError, unknown_name
from tlcourse.introspect import functional_graph, is_batchnorm, nodes_in_order

__all__ = ["FIGURE_WIDTH", "FeatureMapExplorer", "FeatureMaps", "GradCam", "LayerInfo", "augmentations"]
__all__ += ["compare", "confusion", "embeddings", "feature_maps", "grad_cam", "history", "predictions"]

FIGURE_WIDTH = 9.5  # inches: fits JupyterLab's and Colab's notebook width without scrolling
# Layers whose output is spatial but says nothing about what the network learned.
_PLUMBING = {"InputLayer", "ZeroPadding2D", "Cropping2D", "Dropout", "SpatialDropout2D", "Identity"}
_PLUMBING |= {"Rescaling", "Normalization", "Resizing", "CenterCrop", "Preprocess", "ResizeImages"}


# --------------------------------------------------------------------------- figures and pictures
def _figure(fig, width: float, height: float):
    """``fig`` when given, else a new figure, closed in pyplot so that Jupyter shows it once."""
    if fig is None:
        fig = plt.figure(figsize=(min(width, FIGURE_WIDTH), height), layout="constrained")
        plt.close(fig)
    return fig


def _axes(ax, width: float, height: float):
    """``(axes to draw on, what to return)``: ``ax`` twice when given, else new axes and their figure."""
    if ax is None:
        fig = _figure(None, width, height)
        return fig.subplots(), fig
    return ax, ax


def _png(picture) -> bytes:
    """PNG bytes of a figure, or of an image array."""
    buffer = io.BytesIO()
    if hasattr(picture, "figure"):
        picture.figure.savefig(buffer, format="png", bbox_inches="tight")
    else:
        Image.fromarray((_shown(picture) * 255).astype(np.uint8)).save(buffer, format="PNG", compress_level=1)
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
    viridis = (matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    gap, rows = 4, max(1, math.ceil(len(tiles) / columns))
    picture = Image.new("RGB", (columns * (tile + gap) - gap, rows * (tile + gap) - gap), "white")
    for k, (image, label) in enumerate(zip(tiles, labels, strict=True)):
        rgb = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        corner = (k % columns * (tile + gap), k // columns * (tile + gap))
        picture.paste(Image.fromarray(viridis[rgb] if rgb.ndim == 2 else rgb).resize((tile, tile), 0), corner)
        ImageDraw.Draw(picture).text((corner[0] + 3, corner[1] + 2), label, fill="white")
    return np.asarray(picture)


def _resize(image: np.ndarray, size) -> np.ndarray:
    """Bilinear resize of one (height, width, channels) image, as Keras' resizing layers do it."""
    return np.asarray(keras.ops.image.resize(np.asarray(image, np.float32)[None], tuple(size)))[0]


# --------------------------------------------------------------------------- the layers of a model
def _graph(model):
    if not isinstance(model, keras.Model):
        raise VizError(f"Expected a Keras model, got {type(model).__name__}.", hint="Pass the model itself.")
    if (graph := functional_graph(model)) is None and model.built and not isinstance(model, keras.Sequential):
        hint = "Build it with the Functional API or keras.Sequential, or look at the Functional base inside."
        raise VizError(f"Model {model.name!r} is a subclassed model: Keras keeps no graph of it.", hint=hint)
    if graph is None:
        hint = "Start it with keras.Input(shape=...), or call model.build((None, height, width, channels))."
        raise VizError(f"Model {model.name!r} was never built: its layers have no outputs yet.", hint=hint)
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


def _layers(model, path: tuple = ()) -> dict[str, _Entry]:
    """Layer name → its (first) call, nested models' layers included, in the order the image meets them."""
    layers = {}
    for node in nodes_in_order(_graph(model)):
        if isinstance(node.operation, keras.Model) and functional_graph(node.operation) is not None:
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
    names = [getattr(item, "name", item) for item in names]
    listing = ", ".join(known if len(known) <= 24 else [*known[:12], "…", *known[-12:]])
    for name in names:
        if name not in everything:
            close = unknown_name("layer", name, known, error=VizError).hint.split("Known:")[0]
            raise VizError(f"Unknown layer {name!r}.", hint=f"{close}Layers with maps: {listing}.")
        if len(everything[name].shape) != 4:
            message = f"Layer {name!r} outputs {everything[name].shape}: no spatial feature maps."
            raise VizError(message, hint=f"Layers with maps: {listing}.")
    return [everything[name] for name in names]


# --------------------------------------------------------------------------- receptive fields
def _grow(rf, layer):
    """The receptive field ``((h, w), jump)`` in input pixels after ``layer`` (a custom layer counts as one
    that does not widen it: Keras does not expose what it computes)."""
    size, jump = rf
    if _is_conv(layer) or (hasattr(layer, "pool_size") and not type(layer).__name__.startswith("Global")):
        kernel = np.broadcast_to(getattr(layer, "kernel_size", None) or layer.pool_size, 2)
        stride = np.broadcast_to(layer.strides, 2)
        dilation = np.broadcast_to(getattr(layer, "dilation_rate", 1), 2)
        size = tuple(r + d * (k - 1) * j for r, k, d, j in zip(size, kernel, dilation, jump, strict=True))
        jump = tuple(j * s for j, s in zip(jump, stride, strict=True))
    return size, jump


def _receptive_fields(model, start=None) -> tuple[dict, list]:
    """Layer name → receptive field, and the fields of the outputs; where branches merge the larger one."""
    graph, one, by_name = _graph(model), ((1, 1), (1, 1)), {}
    fields = {id(t): rf for t, rf in zip(graph.inputs, start or [one] * len(graph.inputs), strict=True)}
    for node in (n for n in nodes_in_order(graph) if not n.is_input):
        incoming = [fields.get(id(t), one) for t in node.input_tensors] or [one]
        merged = tuple(tuple(max(rf[i][a] for rf in incoming) for a in (0, 1)) for i in (0, 1))
        if isinstance(node.operation, keras.Model) and functional_graph(node.operation) is not None:
            inner, outs = _receptive_fields(node.operation, [merged] * len(node.input_tensors))
            by_name.update({name: rf for name, rf in inner.items() if name not in by_name})
        else:
            outs = [_grow(merged, node.operation)] * len(node.output_tensors)
            by_name.setdefault(node.operation.name, outs[0])
        fields.update({id(t): rf for t, rf in zip(node.output_tensors, outs, strict=True)})
    return by_name, [fields.get(id(t), one) for t in graph.outputs]


def _default_layers(entries: list[_Entry], fields: dict, n: int = 6) -> list[_Entry]:
    """The first convolution (after its activation), then the last layer at each resolution, ``n`` in
    all at most: the rows walk down the resolutions, from edges to parts."""
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
    spread = [stages[round((k + 1) * len(stages) / (n - 1)) - 1] for k in range(n - 1)]
    return [entries[i] for i in [first, *(spread if len(stages) >= n else stages)]]


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


def _run(model, entries: list[_Entry], batch: np.ndarray, probe=None) -> dict[str, np.ndarray]:
    """Every entry's output for a batch of one, through ``probe``: one model, the image in, those out."""
    probe = probe or _model(model, list(_symbolic(model, entries).values()))
    outs = probe(batch, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {e.name: np.asarray(out)[0] for e, out in zip(entries, outs, strict=True)}


def _prepare(model, image, *, quiet: bool = False) -> np.ndarray:
    """An image (or its path) as a float32 batch of one that fits ``model``'s input, with a note."""
    inputs = list(_graph(model).inputs)
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        hint = "Feature maps need a CNN with one image input: look at that branch alone."
        raise VizError(f"Model {model.name!r} does not take one batch of images.", hint=hint)
    height, width, channels = tuple(inputs[0].shape)[1:]
    image = keras.utils.load_img(image) if isinstance(image, str) or hasattr(image, "__fspath__") else image
    array, notes = np.asarray(image, np.float32), []
    array = array[0] if array.ndim == 4 and len(array) == 1 else array
    array = array[..., None] if array.ndim == 2 else array
    if array.ndim == 3 and array.shape[-1] == 1 and channels == 3:
        array, notes = np.repeat(array, 3, axis=-1), ["grey → RGB"]
    if array.ndim != 3 or (channels is not None and array.shape[-1] != channels):
        hint = "Pass one image (height, width, channels), e.g. images[0], or the path of a photo."
        raise VizError(f"Model {model.name!r} takes {channels}-channel images, got {array.shape}.", hint=hint)
    if None not in (height, width) and array.shape[:2] != (height, width):
        notes.append(f"resized {array.shape[0]}×{array.shape[1]} → {height}×{width}")
        array = _resize(array, (height, width))
    if notes and not quiet:
        say(f"adapted the image to model {model.name!r}: " + ", ".join(notes) + ".")
    return array[None]


# --------------------------------------------------------------------------- feature maps
@dataclass(frozen=True)
class LayerInfo:
    """A layer's output for one image: its ``shape`` (height, width, channels) and ``receptive_field``
    (height, width): the input pixels one position sees."""

    name: str
    shape: tuple
    receptive_field: tuple

    def describe(self) -> str:
        h, w = self.receptive_field
        size = f"{h} px" if h == w else f"{h}×{w} px"
        return f"{self.name}  ·  {'×'.join(map(str, self.shape))}  ·  receptive field {size}"


def _info(name: str, maps: np.ndarray, fields: dict) -> LayerInfo:
    return LayerInfo(name, tuple(maps.shape), tuple(int(round(v)) for v in fields.get(name, ((1, 1),))[0]))


class FeatureMaps(dict):
    """Activations of layers for one image, ``{layer name: (h, w, channels) array}``, with ``info`` (a
    LayerInfo per layer), ``channels`` (those drawn: most active first, none all zero) and ``figure``."""

    def __init__(self, activations: dict, info: dict, channels: dict, figure):
        super().__init__(activations)
        self.info, self.channels, self.figure = info, channels, figure

    def __repr__(self) -> str:
        return "\n  ".join(["FeatureMaps of these layers:", *map(LayerInfo.describe, self.info.values())])

    def _repr_png_(self) -> bytes:
        return _png(self.figure)


def _ranked(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Channel indices, most active (mean absolute activation) first, and whether each is not all zero."""
    flat = np.abs(maps.reshape(-1, maps.shape[-1]))
    order = np.argsort(-flat.mean(axis=0), kind="stable")
    return order, (flat.max(axis=0) > 0)[order]


def feature_maps(model, image, *, layers=None, max_channels: int = 16, fig=None) -> FeatureMaps:
    """Activations of a model's layers for one image, drawn a row per layer, most active channels first.

    ``model`` is a built Functional or Sequential CNN, possibly with a base nested inside; ``image`` is one
    image in the value range it expects (the course's bases take raw 0–255 RGB). ``layers`` default to
    the first convolution, then the last layer at each resolution (edges to parts); up to
    ``max_channels`` per layer are drawn, each normalised on its own, all-zero ones skipped.

    Returns
    -------
    FeatureMaps
        ``{layer: activations}`` with ``.info`` (shape, receptive field), ``.channels`` and ``.figure``.

    Examples
    --------
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.MaxPooling2D(), keras.layers.Conv2D(8, 3, activation="relu")])
    >>> maps = feature_maps(model, np.random.default_rng(0).uniform(0, 1, (32, 32, 3)))
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
    activations = _run(model, chosen, batch)
    info = {name: _info(name, maps, fields) for name, maps in activations.items()}
    ranked = {name: _ranked(maps) for name, maps in activations.items()}
    channels = {k: [int(c) for c in order[alive][:max_channels]] for k, (order, alive) in ranked.items()}
    heights = [2.2] + [math.ceil(max(len(c), 1) / 8) * 1.2 + 0.35 for c in channels.values()]
    fig = _figure(fig, FIGURE_WIDTH, sum(heights) + 0.4)
    fig.suptitle(f"Feature maps of {model.name}: most active channels first, each normalised on its own")
    axes = fig.subplots(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
    seen = _shown(batch[0])
    axes[0].imshow(seen, cmap="gray" if seen.ndim == 2 else None)
    axes[0].set_title(f"input {seen.shape[0]}×{seen.shape[1]}", fontsize=9)
    for ax, (name, maps) in zip(axes[1:], activations.items(), strict=True):
        zero, shown = int((~ranked[name][1]).sum()), channels[name]
        title = f"{info[name].describe()}  ·  {len(shown)} of {maps.shape[-1]} channels"
        ax.set_title(title + (f" ({zero} all-zero skipped)" if zero else ""), fontsize=9, loc="left")
        tiles = [_normalise(maps[..., c]) for c in shown]
        ax.imshow(_grid(tiles, [f"#{c}" for c in shown], columns=max(1, min(8, len(tiles))), tile=80))
    for ax in axes:
        ax.set_axis_off()
    return FeatureMaps(activations, info, channels, fig)


# --------------------------------------------------------------------------- Grad-CAM
@dataclass(eq=False)
class GradCam:
    """A Grad-CAM explanation: the ``heatmap`` in [0, 1] over ``image`` (as the model got it), the
    ``coarse`` map at the layer's resolution, the ``class_index`` and ``class_name`` explained, the
    model's ``probability`` for it, the ``layer`` used and the ``figure`` (image, heatmap, overlay)."""

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
    outputs = np.asarray(next(iter(outputs.values())) if isinstance(outputs, dict) else outputs, np.float64)
    if outputs.shape[-1] == 1:
        return np.concatenate([expit(-outputs), expit(outputs)], axis=-1)
    probabilities = outputs.min() >= 0 and np.allclose(outputs.sum(axis=-1), 1, atol=1e-3)
    return outputs if probabilities else softmax(outputs, axis=-1)


def grad_cam(model, image, *, class_index: int | None = None, layer=None, class_names=None, fig=None):
    """Grad-CAM: which parts of the image made a classifier pick a class (Selvaraju et al., 2017).

    The maps of ``layer`` (default: the last with maps) weighted by the mean gradient of the class score
    (default: the predicted class's logit) per channel, positive part: the heatmap. Returns a GradCam.

    Examples
    --------
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> cam = grad_cam(model, np.random.default_rng(0).uniform(0, 1, (32, 32, 3)), class_index=1)
    >>> cam.heatmap.shape, cam.class_index
    ((32, 32), 1)
    """
    if not (offered := _maps(model)):
        raise VizError(f"Model {model.name!r} has no layer with spatial maps.", hint="Explain a CNN.")
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
            outputs = model(batch, training=False)
            outputs = tf.convert_to_tensor([*outputs.values()][0] if isinstance(outputs, dict) else outputs)
            count = int(outputs.shape[-1]) if outputs.shape.rank == 2 else 0
            index = int(tf.argmax(outputs[0])) if class_index is None and count else int(class_index or 0)
            score = outputs[:, index] if 0 <= index < count else None
    finally:
        del entry.layer.call
    if score is None:
        what = f"class_index {index} is out of range for {count} classes" if count else "No class scores"
        hint = "Explain a classifier (output: batch × classes) with 0 ≤ class_index < classes."
        raise VizError(f"{what}: {model.name!r} outputs {tuple(outputs.shape)}.", hint=hint)
    if (grads := tape.gradient(score, recorded["maps"]) if "maps" in recorded else None) is None:
        raise VizError(f"The class score does not depend on layer {entry.name!r}.", hint="Pick another.")
    weights = tf.reduce_mean(grads, axis=(1, 2))  # one weight per channel
    coarse = tf.nn.relu(tf.reduce_sum(recorded["maps"] * weights[:, None, None, :], axis=-1))[0].numpy()
    coarse = coarse / coarse.max() if coarse.max() > 0 else coarse
    seen = batch.numpy()[0]
    heatmap = np.clip(_resize(coarse[..., None], seen.shape[:2])[..., 0], 0.0, 1.0)
    probability = float(_probabilities(outputs.numpy()[0])[index]) if count > 1 else float("nan")
    if class_names is None and count == 1000:  # ImageNet
        from tlcourse.models import decode_predictions

        class_names = {index: decode_predictions(np.eye(1000, dtype="float32")[[index]], top=1)[0][0][1]}
    name = None if class_names is None else str(class_names[index])
    fig = _figure(fig, FIGURE_WIDTH, 3.6)
    label = f"class {index}" + (f" '{name}'" if name else "") + (f" (p = {probability:.2f})" * (count > 1))
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

    It offers scikit-image's photos and ``images`` (name → image), and every layer with maps but
    BatchNormalization (its convolution's, rescaled); one probe computes them all for an image, so moving
    through layers and pages redraws one PNG in place. Works with ipywidgets 7 (Colab's) and 8.

    Examples
    --------
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.MaxPooling2D(), keras.layers.Conv2D(8, 3)])
    >>> explorer = FeatureMapExplorer(model, images={"noise": np.zeros((32, 32, 3))})
    >>> explorer.layer_dropdown.value = explorer.layer_names[-1]
    >>> explorer.depth_slider.value, explorer.activations("noise")[explorer.layer_names[-1]].shape
    (2, (13, 13, 8))
    """

    PER_PAGE = 16  # channels per page

    def __init__(self, model, *, images=None):
        import ipywidgets as widgets

        self.model, self._entries = model, [e for e in _maps(model) if not is_batchnorm(e.layer)]
        if not self._entries:
            raise VizError(f"Model {model.name!r} has no layer with spatial feature maps.", hint="Use a CNN.")
        self.layer_names, self._fields = [e.name for e in self._entries], _receptive_fields(model)[0]
        self.images = {**sample_photos(), **{str(k): np.asarray(v) for k, v in (images or {}).items()}}
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
        text = f"FeatureMapExplorer of {self.model.name!r} ({len(self.layer_names)} layers; needs a kernel)"
        return {"application/vnd.jupyter.widget-view+json": view, "text/plain": text}

    def activations(self, image: str | None = None) -> dict[str, np.ndarray]:
        """Every offered layer's maps for a named image (default: the one shown), computed once."""
        image = self.image_dropdown.value if image is None else image
        if image not in self._maps:
            self._probe = self._probe or _model(self.model, [*_symbolic(self.model, self._entries).values()])
            self._batches[image] = _prepare(self.model, self.images[image], quiet=True)
            self._maps[image] = _run(self.model, self._entries, self._batches[image], self._probe)
        return self._maps[image]

    def _on_upload(self, change) -> None:
        files = change.new  # ipywidgets 8: a tuple of dicts; 7: {name: {"metadata": …, "content": …}}
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
        started, layer = time.perf_counter(), self.layer_dropdown.value
        maps = self.activations()[layer]
        if new_image:
            self.thumbnail.value = _png(self._batches[self.image_dropdown.value][0])
        order, alive = _ranked(maps)
        pages = max(1, math.ceil(len(order) / self.PER_PAGE))
        self.page = page % pages
        shown = slice(self.page * self.PER_PAGE, (self.page + 1) * self.PER_PAGE)
        labels = [f"#{c}" + ("" if a else " (zero)") for c, a in zip(order[shown], alive[shown], strict=True)]
        self.view.value = _png(_grid([_normalise(maps[..., c]) for c in order[shown]], labels, columns=4))
        kind = self._entries[self.layer_names.index(layer)].kind
        self.last_update_seconds = time.perf_counter() - started
        about = f"<b>{_info(layer, maps, self._fields).describe()}</b> ({kind}) · channels by activity"
        self.header.value = f"{about}, page {self.page + 1}/{pages} · {self.last_update_seconds:.3f} s"


# --------------------------------------------------------------------------- training and comparison plots
def history(h, *, stage_names=None, fig=None):
    """Loss and metric curves per epoch, training and validation, with the training stages marked.

    ``h`` is what ``model.fit`` returned, its ``.history``, or ``tlcourse.train``'s History, whose stages
    (``.stage_boundaries``) are marked and named (``.stages``, or ``stage_names``). Returns the figure.

    Examples
    --------
    >>> fig = history({"loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.8, 0.7], "accuracy": [0.5, 0.7, 0.8]})
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'accuracy']
    """
    values = h if isinstance(h, Mapping) else getattr(h, "history", None)
    if not isinstance(values, Mapping) or not values:
        hint = "Pass what model.fit returned, its .history dict, or tlcourse.train's History."
        raise VizError(f"Cannot read a training history from {type(h).__name__}.", hint=hint)
    boundaries = [b for b in getattr(h, "stage_boundaries", None) or [] if b > 0]  # the first starts at 0
    names = list(stage_names or getattr(h, "stages", None) or [])
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

    ``table`` (rows, or ``tlcourse.train.compare``'s result) has ``recipe``, ``by`` and ``metric`` per run.

    Examples
    --------
    >>> rows = [{"recipe": r, "fraction": f, "accuracy": a + s / 10}
    ...         for r, a in (("scratch", 0.4), ("transfer", 0.8)) for f in (0.1, 1.0) for s in (0, 1)]
    >>> [round(float(bar.get_height()), 2) for bar in compare(rows).axes[0].patches]
    [0.45, 0.45, 0.85, 0.85]
    """
    rows = [dict(row) for row in getattr(table, "rows", table)]
    if not rows or any(key not in rows[0] for key in ("recipe", by, metric)):
        hint = f"Its columns: {', '.join(rows[0]) if rows else 'none, it is empty'}."
        raise VizError(f"The table needs the columns 'recipe', {by!r} and {metric!r}.", hint=hint)
    recipes = list(dict.fromkeys(str(r["recipe"]) for r in rows))
    levels = sorted(dict.fromkeys(r[by] for r in rows), key=lambda v: (isinstance(v, str), v))
    ax, result = _axes(ax, FIGURE_WIDTH, 4.2)
    width, counts = 0.8 / len(recipes), set()
    for i, recipe in enumerate(recipes):
        mine = [r for r in rows if str(r["recipe"]) == recipe]
        groups = [[float(r[metric]) for r in mine if r[by] == v] for v in levels]
        counts.update(len(g) for g in groups)
        means, spreads = [np.mean(g) for g in groups], [np.std(g, ddof=min(1, len(g) - 1)) for g in groups]
        x = np.arange(len(levels)) + (i - (len(recipes) - 1) / 2) * width
        bars = ax.bar(x, means, width, yerr=spreads, capsize=4, label=recipe)
        ax.bar_label(bars, labels=[f"{m:.2f}" for m in means], fontsize=7, padding=2)
    ax.set_xticks(np.arange(len(levels)), [str(v) for v in levels])
    ax.set(xlabel=by.replace("_", " "), ylabel=f"{metric} (mean ± std)")
    if "accuracy" in metric:
        ax.set_ylim(0, 1.08)
    seeds = "/".join(map(str, sorted(counts)))
    ax.set_title(f"{metric} by recipe and {by}: mean ± std over {seeds} seed(s)")
    ax.legend(title="recipe", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return result


# --------------------------------------------------------------------------- evaluation plots
def _classified(model, data, class_names):
    """``x``, ``y``, the predicted classes and their probabilities, and a name per class, from ``(x, y)``
    arrays or a batched tf.data.Dataset of pairs (integer or one-hot labels)."""
    if hasattr(data, "as_numpy_iterator"):
        pairs = list(data.as_numpy_iterator())
        data = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise VizError(f"Cannot read (x, y) from {type(data).__name__}.", hint="Pass (x, y) or a dataset.")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    y = (y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)).astype(int)
    probabilities = _probabilities(model.predict(x, batch_size=64, verbose=0))
    count = max(probabilities.shape[1], int(y.max()) + 1)
    if class_names is not None and len(class_names) < count:
        raise VizError(f"{len(class_names)} class names for {count} classes.", hint="Pass one per class.")
    names = list(map(str, class_names if class_names is not None else range(count)))[:count]
    return x, y, probabilities.argmax(axis=1), probabilities.max(axis=1), names


def confusion(model, data, *, class_names=None, normalize: str | None = None, ax=None):
    """The confusion matrix of a classifier on labelled data, drawn by scikit-learn's display.

    ``data`` is ``(x, y)`` arrays or a batched tf.data.Dataset; ``normalize`` is scikit-learn's (``"true"``,
    ``"pred"`` or ``"all"`` for shares instead of counts). Returns the figure, or ``ax``.

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
    options = dict(normalize=normalize, values_format=normalize and ".2f", include_values=len(names) <= 20)
    options.update(labels=range(len(names)), display_labels=names, ax=ax, cmap="Blues", xticks_rotation=45)
    ConfusionMatrixDisplay.from_predictions(y, predicted, **options)
    ax.set_title(f"Confusion matrix: accuracy {np.mean(predicted == y):.3f} on {len(y)} examples")
    return result


def predictions(model, data, *, class_names=None, worst: bool = True, n: int = 16, fig=None):
    """Images with a classifier's predicted and true class and its confidence, mistakes in red: with
    ``worst`` its most confident mistakes, then its least confident right answers, else the first ``n``.
    ``data`` is ``(x, y)`` arrays or a batched tf.data.Dataset. Returns the figure, or ``fig``.

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
        raise VizError(f"predictions() shows images, got inputs {x.shape[1:]}.", hint="Use confusion().")
    wrong = predicted != y
    order = np.lexsort((np.where(wrong, -confidence, confidence), ~wrong)) if worst else np.arange(len(y))
    order, columns = order[:n], min(4, n, len(y))
    fig = _figure(fig, FIGURE_WIDTH, math.ceil(len(order) / columns) * 2.6 + 0.6)
    which = f"most confident mistakes first ({wrong.sum()} of {len(y)} wrong)" if worst else "first examples"
    fig.suptitle(f"Predictions of {model.name}: {which}")
    axes = list(fig.subplots(math.ceil(len(order) / columns), columns, squeeze=False).flat)
    for ax in axes[len(order) :]:
        ax.remove()
    for ax, i in zip(axes, order, strict=False):
        picture, (colour, mark) = _shown(x[i]), ("crimson", "✗") if wrong[i] else ("seagreen", "✓")
        ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax.set(xticks=[], yticks=[])
        ax.set_title(f"{mark} pred: {names[predicted[i]]} ({confidence[i]:.2f})\ntrue: {names[y[i]]}")
        ax.title.set(fontsize=8, color=colour)
        for spine in ax.spines.values():
            spine.set(edgecolor=colour, linewidth=2.5 if wrong[i] else 1)
    return fig


def embeddings(
    features, labels, *, domains=None, method="pca", class_names=None, domain_names=None, seed=0, ax=None
):
    """A 2-D map of feature vectors (PCA, or t-SNE: clearer clusters, slower, on 3,000 points at most):
    colour = class, marker = domain (e.g. source vs. target). Returns the figure, or ``ax``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fig = embeddings(rng.normal(size=(40, 5)), np.arange(40) % 2, domains=np.arange(40) // 20)
    >>> fig.axes[0].get_xlabel()
    'PC 1'
    """
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    labels = np.asarray(labels).reshape(-1).astype(int)
    domains = np.zeros(len(x), int) if domains is None else np.asarray(domains).reshape(-1).astype(int)
    if not len(labels) == len(domains) == len(x):
        hint = "Pass one label (and one domain) per feature vector."
        raise VizError(f"{len(x)} feature vectors, {len(labels)} labels, {len(domains)} domains.", hint=hint)
    if method not in ("pca", "tsne"):
        raise unknown_name("method", method, ["pca", "tsne"], error=VizError)
    if method == "pca":
        from sklearn.decomposition import PCA

        reducer = PCA(n_components=2, random_state=seed)
        points = reducer.fit_transform(x)
        axis, detail = "PC", f"PCA, {reducer.explained_variance_ratio_.sum():.0%} of variance"
    else:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        keep = np.sort(np.random.default_rng(seed).permutation(len(x))[:3000])  # t-SNE is slow on a CPU
        x, labels, domains = x[keep], labels[keep], domains[keep]
        perplexity = float(min(30, max(2, (len(x) - 1) / 3)))
        with threadpool_limits(limits=1):  # next to TensorFlow's threads, t-SNE's OpenMP ones oversubscribe
            points = TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
        axis, detail = "t-SNE", f"t-SNE, perplexity {perplexity:g}"
    classes, ids, markers = np.unique(labels), [int(d) for d in np.unique(domains)], "o^sDvPX*"
    colours = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    names = list(map(str, class_names if class_names is not None else range(max(classes) + 1)))
    ax, result = _axes(ax, FIGURE_WIDTH, 6.0)
    for (m, d), (k, c) in ((md, kc) for md in enumerate(ids) for kc in enumerate(classes)):
        if (mask := (labels == c) & (domains == d)).any():
            style = dict(color=colours(k % colours.N), marker=markers[m % 8], linewidths=0, s=14, alpha=0.7)
            ax.scatter(*points[mask].T, **style)
    handle = functools.partial(matplotlib.lines.Line2D, [], [], linestyle="")
    by_class = [handle(marker="o", c=colours(k % colours.N), label=names[c]) for k, c in enumerate(classes)]
    ax.add_artist(ax.legend(handles=by_class, title="class", fontsize=8, loc=2, bbox_to_anchor=(1.01, 1)))
    if len(ids) > 1:
        dnames = domain_names or [f"domain {d}" for d in range(max(ids) + 1)]
        by_domain = [handle(marker=markers[m % 8], c="0.5", label=str(dnames[d])) for m, d in enumerate(ids)]
        ax.legend(handles=by_domain, title="domain", fontsize=8, loc="lower left", bbox_to_anchor=(1.01, 0))
    by = "colour = class" + (", marker = domain" if len(ids) > 1 else "")
    ax.set(xlabel=f"{axis} 1", ylabel=f"{axis} 2", title=f"Embeddings of {len(x)} examples ({detail}); {by}")
    return result


def augmentations(layer, image, *, n: int = 8, seed: int | None = None, ax=None):
    """An image and ``n`` random versions of it from an augmentation layer run with ``training=True``;
    ``seed`` seeds Keras's random generators first (:func:`tlcourse.reseed`). Returns the figure (or ``ax``) showing one picture:
    the original, then each version.

    Examples
    --------
    >>> fig = augmentations(keras.layers.RandomFlip("horizontal"), np.zeros((16, 16, 3)), n=3)
    >>> fig.axes[0].get_images()[0].get_array().shape  # 4 tiles of 112 px and 3 gaps of 4 px
    (112, 460, 3)
    """
    if seed is not None:
        reseed(seed)
    array = np.asarray(image, np.float32)
    array = array[..., None] if array.ndim == 2 else array
    if array.ndim != 3 or not callable(layer):
        hint = "Pass e.g. tlcourse.data.augmentation() and images[0]."
        raise VizError(f"Expected a layer and one image, got {layer!r}, {array.shape}.", hint=hint)
    versions = [array] + [np.asarray(layer(array[None], training=True))[0] for _ in range(n)]
    scale = 255.0 if array.max(initial=0) > 1.5 else 1.0
    tiles = [np.clip(v / scale, 0, 1).repeat(3 // v.shape[-1], axis=-1) for v in versions]
    columns = min(5, n + 1)
    ax, result = _axes(ax, FIGURE_WIDTH, math.ceil((n + 1) / columns) * FIGURE_WIDTH / columns + 0.5)
    ax.imshow(_grid(tiles, ["original"] + [f"#{k}" for k in range(1, n + 1)], columns=columns))
    ax.set_title(f"{n} random versions from {getattr(layer, 'name', type(layer).__name__)} (training=True)")
    ax.set_axis_off()
    return result
