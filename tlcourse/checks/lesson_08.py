"""Checks of lesson 08."""

from __future__ import annotations

import keras
import numpy as np

from tlcourse import data
from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import (
    SQUASHING,
    activation_name,
    expect_from_logits,
    expect_model,
    expect_trainable,
    trainable_by_layer,
    walk_layers,
)

GROUP_OF_CLASS_08 = (0, 0, 0, 0, 0, 1, 0, 1, 2, 1)  # Fashion-MNIST: clothing 0, footwear 1, bag 2
TASKS_08 = {"class": 10, "group": 3}
AT_LEAST_08 = {"class": 0.65, "group": 0.85}


def _tiny_base_08(trainable: bool = False):
    """A small frozen image base (8×8×3 → 6 features) for trying the student's functions."""

    images = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="tiny_rescale")(images)
    x = keras.layers.Conv2D(6, 3, name="tiny_conv")(x)
    features = keras.layers.GlobalAveragePooling2D(name="tiny_gap")(x)
    base = keras.Model(images, features, name="tiny_base")
    base.trainable = trainable
    return base


def _reference_multi_task_08(shared_units: int = 5):

    base = _tiny_base_08()
    images = keras.Input((8, 8, 3))
    shared = keras.layers.Dense(shared_units, activation="relu", name="shared")(base(images, training=False))
    outputs = {task: keras.layers.Dense(n, name=task)(shared) for task, n in TASKS_08.items()}
    return keras.Model(images, outputs, name="reference_multi_task")


def _dict_outputs_08(model, x, *, name: str) -> dict:

    outputs = model(x, training=False)
    if not isinstance(outputs, dict):
        kind = "a list" if isinstance(outputs, (list, tuple)) else "one tensor"
        raise CheckFailed(
            f"`{name}` returns {kind}: return a dict of named outputs, keras.Model(inputs, "
            '{"class": class_logits, "group": group_logits})'
        )
    if set(outputs) != set(TASKS_08):
        raise CheckFailed(
            f"`{name}`'s outputs are named {sorted(outputs)}: name them exactly 'class' and 'group'"
        )
    return {task: np.asarray(value) for task, value in outputs.items()}


@register("08.1")
def check_08_1(group_of_class) -> str:
    """The lookup table class id → group (clothing 0, footwear 1, bag 2) for Fashion-MNIST."""

    if group_of_class is None:
        raise CheckFailed("`group_of_class` is None: assign the array to it")
    table = np.asarray(group_of_class)
    if table.dtype.kind in "USO":
        raise CheckFailed(
            "`group_of_class` holds names; use the group ids 0 (clothing), 1 (footwear), 2 (bag) so that "
            "group_of_class[y] gives integer labels"
        )
    if table.shape != (10,):
        raise CheckFailed(
            f"`group_of_class` has shape {table.shape}; it needs one entry per class: shape (10,)"
        )
    if table.dtype.kind not in "iu" and not np.all(table == np.round(table)):
        raise CheckFailed("`group_of_class` should contain whole numbers 0, 1 and 2")
    expected = np.array(GROUP_OF_CLASS_08)
    names = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    if set(table.tolist()) - {0, 1, 2}:
        raise CheckFailed("`group_of_class` contains values other than 0, 1 and 2: there are three groups")
    if table[8] == 1:
        raise CheckFailed("the Bag (class 8) is in group 1 (footwear): a bag is its own group, 2")
    wrong = [c for c in range(10) if table[c] != expected[c]]
    if wrong:
        details = ", ".join(f"{names[c]} (class {c}) should be {['clothing', 'footwear', 'bag'][expected[c]]}"
                            for c in wrong[:3])  # fmt: skip
        raise CheckFailed(f"`group_of_class` is wrong for {len(wrong)} class(es): {details}")
    return "group_of_class maps 6 clothing, 3 footwear and 1 bag class to groups 0, 1 and 2"


@register("08.2")
def check_08_2(build_multi_task) -> str:
    """A frozen base, one shared Dense layer, and two named logit heads on it, as a dict of outputs."""

    if not callable(build_multi_task):
        raise CheckFailed("`build_multi_task` should be a function: def build_multi_task(base): ...")
    base = _tiny_base_08()
    model = build_multi_task(base)
    if model is None:
        raise CheckFailed("build_multi_task returned None: end it with `return keras.Model(...)`")
    expect_model(model, name="build_multi_task(base)")
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    outputs = _dict_outputs_08(model, x, name="build_multi_task(base)")
    for task, units in TASKS_08.items():
        if outputs[task].ndim != 2 or outputs[task].shape[1] != units:
            raise CheckFailed(
                f"output '{task}' gives {outputs[task].shape[-1]} numbers per image; it needs {units}: "
                f"keras.layers.Dense({units}, name='{task}')"
            )
    layers = {layer.name: layer for layer in walk_layers(model)}
    for task in TASKS_08:
        layer = layers.get(task)
        activation = activation_name(layer) if layer is not None else None
        if activation in SQUASHING:
            raise CheckFailed(
                f"the '{task}' head has activation='{activation}': remove it so the head outputs logits "
                "(the loss uses from_logits=True)"
            )
        rows = outputs[task]
        if np.all(rows >= 0) and np.all(rows <= 1) and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3):
            raise CheckFailed(f"the '{task}' output is probabilities (rows sum to 1): remove the softmax")
    if "shared" not in layers:
        raise CheckFailed("there is no layer named 'shared': name the shared Dense layer name='shared'")
    shared = layers["shared"]
    trainable = trainable_by_layer(model)
    in_base = {layer.name for layer in walk_layers(base)}
    if any(name in in_base for name in trainable):
        raise CheckFailed(
            "the base's weights are trainable in your model: keep the base frozen (it came frozen; do not set "
            "base.trainable = True) and call it with training=False"
        )
    extra = [name for name in trainable if name not in {"shared", *TASKS_08}]
    if extra:
        raise CheckFailed(
            f"layer(s) {', '.join(repr(n) for n in extra[:3])} also train: each head should be one Dense layer on "
            "the one shared layer, with no hidden layer of its own"
        )
    width = int(shared.kernel.shape[1])
    for task in TASKS_08:
        head = layers[task]
        if getattr(head, "kernel", None) is None or int(head.kernel.shape[0]) != width:
            raise CheckFailed(
                f"the '{task}' head does not sit on the shared layer: call it on the shared layer's output, "
                f"Dense({TASKS_08[task]}, name='{task}')(shared)"
            )
    expect_trainable(model, trainable=["shared", *TASKS_08], name="build_multi_task(base)")
    return (
        f"build_multi_task: frozen base → shared Dense({width}) → heads 'class' (10 logits) and 'group' (3 logits), "
        "outputs as a dict"
    )


def _compile_part_08(model, attribute: str):
    holder = getattr(model, "_compile_loss" if attribute == "loss_weights" else "_compile_metrics", None)
    return getattr(holder, "_user_loss_weights" if attribute == "loss_weights" else "_user_metrics", None)


@register("08.3")
def check_08_3(compile_multi_task) -> str:
    """A dict of from_logits losses, a dict of positive loss weights and a dict of metrics."""
    if not callable(compile_multi_task):
        raise CheckFailed("`compile_multi_task` should be a function: def compile_multi_task(model): ...")
    model = _reference_multi_task_08()
    returned = compile_multi_task(model)
    if returned is None:
        raise CheckFailed("compile_multi_task returned None: end it with `return model`")
    if returned is not model:
        raise CheckFailed(
            "compile_multi_task returned another model: compile the one it was given and return it"
        )
    if not getattr(model, "compiled", False):
        raise CheckFailed("the model is not compiled: call model.compile(optimizer=..., loss={...}, ...)")
    loss = model.loss
    if not isinstance(loss, dict):
        raise CheckFailed(
            "`loss` is not a dict: give each head its own loss, loss={'class': ..., 'group': ...}"
        )
    if set(loss) != set(TASKS_08):
        raise CheckFailed(
            f"the loss dict's keys are {sorted(loss)}: use the output names 'class' and 'group'"
        )
    for task in TASKS_08:
        value = loss[task]
        kind = type(value).__name__
        if not isinstance(value, str) and kind == "CategoricalCrossentropy":
            raise CheckFailed(
                f"loss['{task}'] is CategoricalCrossentropy, which expects one-hot labels; the labels are class "
                "ids: use keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            )
        expect_from_logits(value, name=f"loss['{task}']")
    weights = _compile_part_08(model, "loss_weights")
    if weights is None:
        raise CheckFailed(
            "no loss_weights: pass loss_weights={'class': 1.0, 'group': 1.0} (or other positive weights)"
        )
    if not isinstance(weights, dict) or set(weights) != set(TASKS_08):
        raise CheckFailed("loss_weights should be a dict keyed by the output names 'class' and 'group'")
    if any(not isinstance(w, (int, float)) or w <= 0 for w in weights.values()):
        raise CheckFailed("every loss weight must be a positive number: a weight of 0 switches a task off")
    metrics = _compile_part_08(model, "metrics")
    if not isinstance(metrics, dict) or set(metrics) != set(TASKS_08):
        raise CheckFailed(
            "metrics should be a dict keyed by the output names: metrics={'class': ['accuracy'], "
            "'group': ['accuracy']}"
        )
    shown = ", ".join(f"{task} {weights[task]:g}" for task in TASKS_08)
    return (
        f"compiled with one from_logits cross-entropy per head, loss weights ({shown}) and accuracy per head"
    )


@register("08.4")
def check_08_4(model) -> str:
    """The trained two-head model reaches the thresholds on held-out test images for both tasks."""

    expect_model(model, name="model")
    bundle = data.load("fashion_mnist")
    x_test, y_test = bundle.arrays("test")
    _dict_outputs_08(model, x_test[:2], name="model")
    predicted = model.predict(x_test, verbose=0)
    truth = {"class": y_test, "group": np.array(GROUP_OF_CLASS_08)[y_test]}
    accuracy = {
        task: float(np.mean(np.asarray(predicted[task]).argmax(axis=1) == truth[task])) for task in TASKS_08
    }
    for task, at_least in AT_LEAST_08.items():
        if accuracy[task] < at_least:
            extra = " and that the group labels come from group_of_class (08.1)" if task == "group" else ""
            raise CheckFailed(
                f"the '{task}' head's accuracy on held-out images is below {at_least:.0%}: train for more epochs "
                f"with a dict of labels {{'class': y_train, 'group': group_of_class[y_train]}}{extra}"
            )
    return (
        f"both heads work on {len(y_test)} held-out images: 'class' ≥ {AT_LEAST_08['class']:.0%}, "
        f"'group' ≥ {AT_LEAST_08['group']:.0%}"
    )
