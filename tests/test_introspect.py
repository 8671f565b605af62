"""tlcourse.introspect: the one home of Keras' private API, each use pinned here.

When a Keras or keras-hub upgrade breaks one of these tests, the function named in the test is the
one line to fix; nothing else in the package reaches into undocumented attributes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import keras
import numpy as np
import pytest

from tlcourse import introspect

ROOT = Path(__file__).resolve().parents[1]
WRITTEN_FOR = f"written for Keras {introspect.KERAS_WRITTEN_FOR}, running Keras {keras.__version__}"


def _nested():
    inner = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
        ],
        name="inner",
    )
    inputs = keras.Input((8, 8, 3))
    x = inner(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x)), inner


def test_functional_graph_of_sequential_and_functional_models():
    model, inner = _nested()
    for candidate in (model, inner):
        graph = introspect.functional_graph(candidate)
        assert graph is not None, (
            f"Sequential._functional / Functional._nodes_by_depth changed ({WRITTEN_FOR})"
        )
        nodes = introspect.nodes_in_order(graph)
        assert nodes[0].is_input, f"Functional._nodes_by_depth no longer puts inputs deepest ({WRITTEN_FOR})"
        operations = {node.operation.name for node in nodes}
        assert operations >= {layer.name for layer in candidate.layers}


def test_subclassed_model_has_no_graph():
    class Net(keras.Model):
        def call(self, x):
            return x

    assert introspect.functional_graph(Net()) is None


def test_optimizer_variable_index():
    a, b = keras.Variable(np.zeros(2), name="a"), keras.Variable(np.zeros(3), name="b")
    optimizer = keras.optimizers.Adam()
    optimizer.build([a, b])
    assert [introspect.optimizer_variable_index(optimizer, v) for v in (a, b)] == [0, 1], (
        f"Optimizer._get_variable_index changed ({WRITTEN_FOR})"
    )


def test_timm_efficientnet_config():
    config = introspect.timm_efficientnet_config("efficientnet_lite0")
    assert {"stackwise_kernel_sizes", "stackwise_num_repeats"} <= set(config), (
        f"keras_hub.src.utils.timm.convert_efficientnet changed ({WRITTEN_FOR})"
    )


def test_walk_layers_finds_nested_batchnorm_in_order():
    model, inner = _nested()
    names = [
        layer.name
        for layer in introspect.walk_layers(model)
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    assert names[:3] == ["inner", "conv", "bn"] and names[-1] == "head"
    assert introspect.batchnorm_layers(model) == [inner.get_layer("bn")]
    assert introspect.find_base(model) is inner
    base, layers, head = introspect.base_and_head(model)
    assert base is inner and [layer.name for layer in layers] == ["conv", "bn"]
    assert [layer.name for layer in head][-1] == "head"


def test_unfreeze_keeps_batchnorm_frozen_and_counts_only_layers_with_weights():
    model, inner = _nested()
    inner.trainable = False
    introspect.unfreeze(model, top=1)
    assert inner.get_layer("conv").trainable and not inner.get_layer("bn").trainable
    assert model.get_layer("head").trainable
    assert introspect.trainable_params(model) == introspect.count_params(model.trainable_weights) > 0


def test_remember_keeps_facts_without_touching_the_model():
    model, _ = _nested()
    before = set(vars(model))
    introspect.remember(model, info="a base")
    assert introspect.recall(model, "info") == "a base" and set(vars(model)) == before
    assert introspect.recall(keras.layers.Dense(2), "info") is None


def test_set_global_seeds_sets_what_set_random_seed_sets_without_clearing_tensorflows_cache(monkeypatch):
    import random

    import tensorflow as tf
    from keras.src.utils import rng_utils

    def draws():
        dense = keras.layers.Dense(3)
        dense.build((None, 4))
        unseeded = keras.random.normal((2,))  # keras.random without a seed: Keras's global generator
        return dense.kernel.numpy(), keras.ops.convert_to_numpy(unseeded), tf.compat.v1.get_seed(None)

    keras.utils.set_random_seed(7)
    by_keras = draws()
    keras.random.normal((5,))  # move the generators on
    tf.compat.v1.get_seed(None)
    monkeypatch.setattr(tf.random, "set_seed", lambda seed: pytest.fail("TensorFlow's cache was emptied"))
    random.seed(7)
    np.random.seed(7)
    introspect.set_global_seeds(7)
    again = draws()
    assert rng_utils.get_random_seed() == 7, WRITTEN_FOR
    assert np.array_equal(by_keras[0], again[0]) and np.array_equal(by_keras[1], again[1]), WRITTEN_FOR
    assert by_keras[2] == again[2] == (7, by_keras[2][1]), (
        f"TensorFlow's (global, operation) seeds; {WRITTEN_FOR}"
    )


def _private_attributes(path: Path) -> list[str]:
    """``obj._name`` accesses on objects other than ``self``/``cls`` (what this module exists for)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in {"self", "cls", "super"}:
                continue
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super":
                continue
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    return found


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (ROOT / "tlcourse").rglob("*.py") if p.name != "introspect.py"),
    ids=lambda p: str(p.relative_to(ROOT / "tlcourse")),
)
def test_no_private_keras_api_outside_introspect(path):
    text = path.read_text(encoding="utf-8")
    assert "keras_hub.src" not in text and "keras.src" not in text, "private Keras modules: use introspect"
    foreign = [
        hit
        for hit in _private_attributes(path)
        # The package's own private names (tlcourse modules and classes) are fine.
        if not any(f".{name}" in hit for name in _OWN_PRIVATE_NAMES)
    ]
    assert foreign == [], f"private attributes used outside tlcourse/introspect.py: {foreign}"


# Private names that belong to tlcourse itself (module-level helpers reached across its own modules,
# attributes of its own classes); anything else with a leading underscore is someone else's API.
_OWN_PRIVATE_NAMES = ("_tlcourse_guard", "_env_flag", "_env_int")
