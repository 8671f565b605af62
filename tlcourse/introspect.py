"""What tlcourse needs to know about a Keras model, and every use of Keras' private API, in one place.

The layer walk, BatchNorm detection, finding the base inside a classifier, unfreezing, parameter
counts, and what the package remembers about a model live here. Anything that reaches into an
attribute Keras or keras-hub does not document (``_flatten_layers``, ``_nodes_by_depth``, ...) is a
function of this module, and ``tests/test_introspect.py`` pins each one against the Keras version it
was written for: a Keras upgrade that breaks one fails there, with the name of the function to fix.
"""

from __future__ import annotations

import json
import shutil
import weakref
from typing import Any

import keras
import numpy as np

from tlcourse.errors import ModelError, unknown_name

__all__ = [
    "KERAS_WRITTEN_FOR",
    "base_and_head",
    "batchnorm_layers",
    "count_params",
    "find_base",
    "functional_graph",
    "is_batchnorm",
    "keras_backup_epoch",
    "nodes_in_order",
    "recall",
    "remember",
    "trainable_params",
    "unfreezable_layers",
    "unfreeze",
    "walk_layers",
]

KERAS_WRITTEN_FOR = "3.10–3.15"
"""The Keras versions the private accesses below were written and tested for."""

# What the package knows about models it built (a base's BaseInfo, ...), keyed by the model itself:
# no attributes are added to Keras objects, and an entry goes away with its model.
_FACTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remember(model, **facts: Any) -> None:
    """Keep facts about ``model`` (e.g. ``remember(base, info=BaseInfo(...))``)."""
    _FACTS.setdefault(model, {}).update(facts)


def recall(model, key: str, default: Any = None) -> Any:
    """A fact kept by :func:`remember`, or ``default``."""
    try:
        return _FACTS.get(model, {}).get(key, default)
    except TypeError:  # not weak-referenceable: nothing was remembered about it
        return default


# --------------------------------------------------------------------------- the layer walk
def walk_layers(model, *, include_self: bool = False) -> list:
    """Every layer inside ``model``, nested models' layers included, depth first (as ``.layers`` lists them).

    Examples
    --------
    >>> inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")], name="inner")
    >>> outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2, name="head")])
    >>> [layer.name for layer in walk_layers(outer)]
    ['inner', 'd', 'head']
    """
    found = [model] if include_self else []
    for layer in getattr(model, "layers", None) or []:
        found.append(layer)
        found.extend(walk_layers(layer))
    return found


def is_batchnorm(layer) -> bool:
    """Whether ``layer`` is a BatchNormalization layer (whose statistics fine-tuning must protect)."""
    return isinstance(layer, keras.layers.BatchNormalization)


def batchnorm_layers(model) -> list:
    """The BatchNormalization layers inside ``model``, nested ones included."""
    return [layer for layer in walk_layers(model) if is_batchnorm(layer)]


def count_params(weights) -> int:
    """The number of scalars in a list of weights (``count_params(model.trainable_weights)``).

    Examples
    --------
    >>> count_params(keras.layers.Dense(3).build((None, 4)) or [np.zeros((4, 3)), np.zeros(3)])
    15
    """
    return int(sum(int(np.prod(tuple(weight.shape))) for weight in weights))


def trainable_params(model) -> int:
    """How many parameters of ``model`` training would change."""
    return count_params(model.trainable_weights)


# --------------------------------------------------------------------------- bases and heads
_HEAD_LAYER_TYPES = (
    keras.layers.Dense,
    keras.layers.Dropout,
    keras.layers.Activation,
    keras.layers.Softmax,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Flatten,
)


def find_base(model) -> keras.Model | None:
    """The pretrained base of ``model``: itself if it is a base tlcourse built, else the nested
    model with the most parameters; ``None`` for a flat model."""
    if recall(model, "info") is not None:
        return model
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.weights]
    tagged = [layer for layer in nested if recall(layer, "info") is not None]
    if tagged or nested:
        return max(tagged or nested, key=lambda m: m.count_params())
    return None


def base_and_head(model) -> tuple[keras.Model | None, list, list]:
    """``(base, base layers, head layers)`` of a classifier.

    With a nested base, the head is every other top-level layer; in a flat model the head is the
    trailing run of Dense, Dropout, pooling and activation layers, and the base is what comes before.
    """
    top = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    base = find_base(model)
    if base is model:
        return base, [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)], []
    if base is not None:
        inner = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
        return base, inner, [layer for layer in top if layer is not base]
    cut = len(top)
    while cut > 0 and isinstance(top[cut - 1], _HEAD_LAYER_TYPES):
        cut -= 1
    return None, top[:cut], top[cut:]


def _parts(model, *, split_head: bool) -> tuple:
    base, layers, head = base_and_head(model)
    if base is None and not split_head:  # a flat model is a base as a whole
        return None, layers + head, []
    return base, layers, head


def unfreeze(
    model,
    *,
    top: int | None = None,
    from_layer: str | int | None = None,
    keep_batchnorm_frozen: bool = True,
    split_head: bool = False,
):
    """Make (part of) a base trainable again, for fine-tuning; returns ``model``.

    ``model`` is a base or a classifier holding one (its head is made trainable too).
    BatchNormalization layers stay ``trainable=False`` by default: in Keras 3 that is what keeps their
    moving statistics fixed during ``fit``; ``training=False`` alone does not (keras-team/keras#20285).
    Recompile the model afterwards. Lesson 04 writes this by hand before using it.

    Parameters
    ----------
    top : int, optional
        Unfreeze the last ``top`` layers with weights of the base (frozen BatchNorm layers are not
        counted).
    from_layer : str or int, optional
        Unfreeze the base from this layer (name or index in ``base.layers``) to its end.
    keep_batchnorm_frozen : bool
    split_head : bool
        A flat model is a base as a whole by default. With ``split_head=True`` a flat classifier's
        trailing Dense/Dropout/pooling layers are its head: trainable, and not counted in ``top``.

    Examples
    --------
    >>> base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="a"),
    ...                          keras.layers.BatchNormalization(name="bn"), keras.layers.Conv2D(4, 3, name="b")])
    >>> base.trainable = False
    >>> [layer.name for layer in unfreeze(base, top=1).layers if layer.trainable]
    ['b']
    """
    if top is not None and from_layer is not None:
        raise ModelError("Pass either top= or from_layer=, not both.", hint="e.g. unfreeze(base, top=20).")
    base, layers, head = _parts(model, split_head=split_head)
    model.trainable = True
    for layer in head:
        layer.trainable = True
    if base is not None:
        base.trainable = True
    weighted = [layer for layer in layers if layer.weights]
    candidates = unfreezable_layers(model, keep_batchnorm_frozen=keep_batchnorm_frozen, split_head=split_head)
    if top is not None:
        if not isinstance(top, (int, np.integer)) or isinstance(top, bool) or top < 0:
            raise ModelError(f"top={top!r} must be a whole number ≥ 0.", hint="e.g. top=20.")
        if top > len(candidates):
            raise ModelError(
                f"top={top} is more than the {len(candidates)} layers with weights of the base.",
                hint=f"Use top ≤ {len(candidates)}, or unfreeze(model) for all of them.",
            )
        chosen = candidates[len(candidates) - int(top) :] if top else []
    elif from_layer is not None:
        names = [layer.name for layer in layers]
        if isinstance(from_layer, (int, np.integer)):
            if not -len(layers) <= from_layer < len(layers):
                raise ModelError(
                    f"from_layer={from_layer} is outside the {len(layers)} layers of the base.",
                    hint=f"Use an index below {len(layers)} or a layer name.",
                )
            start = int(from_layer) % len(layers)
        elif from_layer in names:
            start = names.index(from_layer)
        else:
            raise unknown_name("layer of the base", from_layer, names, error=ModelError)
        after = {id(layer) for layer in layers[start:]}
        chosen = [layer for layer in candidates if id(layer) in after]
    else:
        chosen = candidates
    chosen_ids = {id(layer) for layer in chosen}
    for layer in weighted:
        layer.trainable = id(layer) in chosen_ids
    if keep_batchnorm_frozen:
        for layer in batchnorm_layers(model):
            layer.trainable = False
    return model


def unfreezable_layers(model, *, keep_batchnorm_frozen: bool = True, split_head: bool = False) -> list:
    """The layers of the base that ``unfreeze(model, top=N)`` counts, bottom to top."""
    _, layers, _ = _parts(model, split_head=split_head)
    return [
        layer for layer in layers if layer.weights and not (keep_batchnorm_frozen and is_batchnorm(layer))
    ]


# --------------------------------------------------------------------------- private API, pinned
def functional_graph(model):
    """The Functional graph holding ``model``'s layers and nodes, or None for a subclassed model.

    Private: ``Sequential._functional``, ``Functional._nodes_by_depth`` / ``_inputs``.
    """
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if hasattr(model, "_nodes_by_depth") and hasattr(model, "_inputs"):
        return model
    return None


def nodes_in_order(graph) -> list:
    """The nodes of a Functional graph, inputs first (private: ``_nodes_by_depth``)."""
    by_depth = graph._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def keras_backup_epoch(backup_dir) -> int:
    """The epoch ``keras.callbacks.BackupAndRestore(backup_dir, double_checkpoint=True)`` will resume
    from (0: none), after putting a torn checkpoint back the way Keras itself does.

    Private: the file layout of that callback (``latest.weights.h5``, ``training_metadata.json`` and
    their ``.bkp`` copies). Keras falls back to the copies only when the weights raise ``OSError``;
    metadata cut short by a kill or a full disk would raise ``ValueError`` instead, so both files are
    checked here before ``fit``.
    """
    from pathlib import Path

    folder = Path(backup_dir)
    weights, metadata = folder / "latest.weights.h5", folder / "training_metadata.json"

    def epoch(path) -> int | None:
        try:
            return int(json.loads(path.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    if weights.exists() and epoch(metadata) is None:
        previous = Path(f"{metadata}.bkp")
        if epoch(previous) is not None and Path(f"{weights}.bkp").exists():
            shutil.copyfile(f"{weights}.bkp", weights)
            shutil.copyfile(previous, metadata)
        else:  # nothing to go back to: start over rather than crash inside fit
            weights.unlink()
            metadata.unlink(missing_ok=True)
    return (epoch(metadata) or 0) if weights.exists() else 0


def optimizer_variable_index(optimizer, variable) -> int:
    """The position of ``variable`` in the optimizer's own list (private: ``_get_variable_index``)."""
    return optimizer._get_variable_index(variable)


def timm_efficientnet_config(architecture: str) -> dict:
    """keras-hub's EfficientNetBackbone arguments for a timm architecture name (private module
    ``keras_hub.src.utils.timm.convert_efficientnet``)."""
    from keras_hub.src.utils.timm import convert_efficientnet

    return convert_efficientnet.convert_backbone_config({"architecture": architecture})
