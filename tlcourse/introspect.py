"""What tlcourse needs to know about a Keras model, and every use of Keras' private API, in one place.

TensorFlow's private seed state (:func:`set_global_seeds`) is here too.

The layer walk, BatchNorm detection, finding the base inside a classifier, unfreezing, parameter
counts, and what the package remembers about a model live here. Anything that reaches into an
attribute Keras or keras-hub does not document (``_flatten_layers``, ``_nodes_by_depth``, ...) is a
function of this module, and ``tests/test_introspect.py`` pins each one against the Keras version it
was written for: a Keras upgrade that breaks one fails there, with the name of the function to fix.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import weakref
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tlcourse.errors import ModelError, unknown_name

__all__ = [
    "KERAS_WRITTEN_FOR",
    "Table",
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
    "set_global_seeds",
    "trainable_report",
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


def set_global_seeds(seed: int) -> None:
    """Set Keras's and TensorFlow's global seeds as ``keras.utils.set_random_seed(seed)`` does, without
    emptying TensorFlow's cache of instantiated functions.

    Private, Keras: the two global attributes of ``keras.src.backend.common.global_state`` that
    ``set_random_seed`` sets (``global_random_seed``; ``global_seed_generator``, dropped so that
    ``keras.random`` calls without a seed draw a new one from Python's ``random``). Private, TensorFlow:
    what ``tf.random.set_seed`` sets in the eager context (``_seed``, and ``_rng``, which draws the
    operation seeds of ops given none), leaving out its ``TFE_ContextClearCaches``. That call resets the
    state of *stateful* random kernels already created; Keras 3 draws all its randomness with stateless
    ops and seeds of its own, so its models, ``tf.data`` shuffles and ``fit`` are unaffected. Seeding
    Python's and NumPy's generators is the caller's part (:func:`tlcourse.env.reseed`).
    """
    import random

    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils
    from tensorflow.python.eager import context as tf_context

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    eager = tf_context.context()
    eager._seed = seed
    eager._rng = random.Random(seed)


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


# --------------------------------------------------------------------------- trainable vs. frozen, per block
class Table:
    """Rows that print as a text table, and as an HTML table in a notebook: subclasses give ``columns``,
    ``cells()`` (one tuple per row) and optionally a ``title``.

    Examples
    --------
    >>> class Sizes(Table):
    ...     columns = ("name", "params")
    ...     def cells(self):
    ...         return [("small", 10), ("large", 1000)]
    >>> print(Sizes())
    name   params
    -----  ------
    small  10
    large  1000
    """

    columns: tuple[str, ...] = ()
    title = ""

    def __repr__(self) -> str:
        rows = [self.columns, *self.cells()]
        widths = [max(len(str(c)) for c in col) for col in zip(*rows, strict=True)]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]  # fmt: skip
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(([self.title] if self.title else []) + lines)

    def _repr_html_(self) -> str:
        cells = ["".join(f"<td>{html.escape(str(c))}</td>" for c in row) for row in self.cells()]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        title = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        return f"{title}<table><thead><tr>{head}</tr></thead><tbody><tr>{'</tr><tr>'.join(cells)}</tr></tbody></table>"


_BLOCK = re.compile(
    r"^(stem|top|block_?\d+[a-z]?|conv\d+_block\d+|conv\d+(?=_|$)|expanded_conv(?:_\d+)?|Conv(?:_\d+)?)"
)


@dataclass(repr=False)  # the table is its repr
class _TrainableReport(Table):
    model_name: str
    rows: list[dict[str, Any]]
    columns = ("block", "layers", "trainable", "frozen", "state")

    trainable = property(lambda self: sum(r["trainable"] for r in self.rows))
    frozen = property(lambda self: sum(r["frozen"] for r in self.rows))
    title = property(lambda self: f"{self.model_name}: trainable vs. frozen parameters")

    def cells(self):
        rows = [
            (r["block"], r["layers"], f"{r['trainable']:,}", f"{r['frozen']:,}", r["state"])
            for r in self.rows
        ]
        return [
            *rows,
            ("total", sum(r["layers"] for r in self.rows), f"{self.trainable:,}", f"{self.frozen:,}", ""),
        ]


def trainable_report(model: keras.Model):
    """Trainable vs. frozen parameters per block (nested bases opened up), as a table whose ``rows``
    are dicts; BatchNorm's moving statistics count as frozen (gradients never train them).

    Examples
    --------
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="logits")])
    >>> report = trainable_report(model)
    >>> report.frozen, report.rows[-1]["block"], report.rows[-1]["state"]
    (0, 'logits', 'trainable')
    """
    rows: list[dict[str, Any]] = []

    def walk(layers, prefix: str, in_base: bool) -> None:
        block = "stem"  # inside a base, a layer outside a named block belongs to the block before it
        for layer in layers:
            if isinstance(layer, keras.Model):
                walk(layer.layers, f"{layer.name}/", True)
                continue
            if in_base and (merged := re.fullmatch(r"mixed(\d+)", layer.name)):
                block = f"mixed{int(merged[1]) + 1}"  # an Inception module ends in a concatenation
            if not layer.weights:
                continue
            block = match[1] if (match := _BLOCK.match(layer.name)) else block if in_base else layer.name
            if not rows or rows[-1]["block"] != prefix + block:
                rows.append({"block": prefix + block, "layers": 0, "trainable": 0, "frozen": 0, "bn": []})
            rows[-1]["layers"] += 1
            rows[-1]["trainable"] += count_params(layer.trainable_weights)
            rows[-1]["frozen"] += count_params(layer.non_trainable_weights)
            rows[-1]["bn"] += [layer.trainable] if is_batchnorm(layer) else []

    walk(model.layers, "", recall(model, "info") is not None)
    for row in rows:
        row["state"] = "frozen" if not row["trainable"] else "trainable" if not row["frozen"] else "partly"
        if row["bn"] and row["trainable"]:
            row["state"] += ", BN TRAINING" if any(row["bn"]) else ", BN frozen"
        del row["bn"]
    return _TrainableReport(model.name, rows)
