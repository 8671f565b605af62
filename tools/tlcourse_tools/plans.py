"""Dry runs of the ``full`` and ``cpu`` profiles, and the memory and time plans made from them.

A dry run (``tlcourse run --profile full --dry-run``) runs every lesson end to end on the online code
path, with the network replaced by :mod:`tlcourse_tools.standin`, at the profile's real image sizes,
batch sizes and precision (``full`` pretends to be a Colab T4, so ``setup()`` picks ``mixed_float16``).
Only two things are cut: the datasets are served at a small scale, and each ``fit`` runs at most
``max_epochs`` epochs of ``steps_per_epoch`` steps (Keras's own ``keras.config.set_max_steps_per_epoch``;
the History it returns is padded to the epochs asked for) while the steps it would have taken are
counted. ``predict``/``evaluate`` and the feature extractor of ``tlcourse.train`` run ``steps_per_epoch``
steps as well and count the real ones; their outputs keep the real number of rows (the computed rows
repeated), so that host memory still grows with the data. A budget's seeds are cut to ``max_seeds``
(:class:`DryRunSeeds`) and the work that follows a loop over them in a cell counts as the real number of
seeds. No cell is skipped.

Each lesson runs twice: at a small scale of every dataset, and at four times that (far enough apart that a few kB per example stand out of the allocator's scatter). The kernel records (:class:`Recorder`):

- the high-water mark of its resident memory during each cell (``VmHWM``, reset before each cell);
- every ``data.load``: the sizes it returned, and (from :func:`standin.expected_sizes`) the sizes it
  would return against the real datasets;
- every ``fit``/``evaluate``/``predict`` and direct model call: steps, batch size, and the model's FLOPs
  and activations per example (from its traced graph), its parameters and optimizer state;
- what was downloaded, and how many examples were decoded.

:func:`lesson_plan` turns the two runs into one plan: each cell's memory is ``fixed + per_example × N``
through the two measured points, taken at the real ``N`` (the examples the lesson's loads return at
full size, after the profile's caps), and the largest cell is the planned host memory. Device memory
is the largest fit or prediction: parameters, gradients and optimizer state, and activations at its
batch size. T4 minutes are the counted steps (extrapolated the same way) times a per-step cost from
FLOPs at the efficiencies of ``t4_figures.json``, plus decoding, downloading and preparing the data.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DRY_RUN_ENV",
    "LIMITS",
    "Recorder",
    "figures",
    "lesson_plan",
    "start",
    "write_plans",
]

DRY_RUN_ENV = "TLCOURSE_DRY_RUN"  # JSON config of the dry run, set in the kernel's environment
FIGURES_FILE = Path(__file__).with_name("t4_figures.json")
GB = 1024**3
# What each profile must fit in: Colab has ≈12.7 GB of RAM and a T4 15 GB; a laptop is given 6 GB.
LIMITS = {"full": {"host_gb": 10.0, "device_gb": 12.0}, "cpu": {"host_gb": 6.0, "device_gb": None}}
COLAB = {"host_gb": 12.7, "device_gb": 15.0}  # what a Colab T4 runtime has
LARGEST_BATCH_SIZE = 512  # no lesson asks for a larger batch; a larger one is the whole data at once


def figures() -> dict:
    """The per-step costs and assumptions of the plans, each with its source (``t4_figures.json``)."""
    return json.loads(FIGURES_FILE.read_text(encoding="utf-8"))


# =========================================================================== memory of this process
def _status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in bytes (Linux), or an empty dict."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _release_free_memory() -> None:
    """Give the memory glibc keeps free for reuse back to the system (``malloc_trim``).

    TensorFlow decodes and resizes on many threads; glibc keeps what they free in per-thread arenas, so the
    resident size grows with the images decoded so far even when they are gone. A later cell, on Colab as
    here, reuses that free memory before asking for more: what it needs on top is its live memory. Trimming
    between cells makes each cell's start and high-water mark measure live memory, which is what the plan
    extrapolates.
    """
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux ≥ 4.0: VmHWM := VmRSS
        return True
    except OSError:
        return False


# =========================================================================== cost of a model
_DENSE_OPS = {"Conv2D", "MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "Conv2DBackpropInput",
              "Conv2DBackpropFilter", "Conv3D"}  # fmt: skip
_DEPTHWISE_OPS = {"DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropInput",
                  "DepthwiseConv2dNativeBackpropFilter"}  # fmt: skip


def _dims(tensor) -> list[int] | None:
    shape = tensor.shape
    if shape.rank is None or any(d is None for d in shape.as_list()):
        return None
    return shape.as_list()


def _op_flops(op) -> tuple[str, float]:
    """("dense" | "depthwise" | "", FLOPs) of one graph op, from its static shapes."""
    kind = op.type
    try:
        if kind in ("Conv2D", "Conv3D", "DepthwiseConv2dNative"):
            out, kernel = _dims(op.outputs[0]), _dims(op.inputs[1])
            if out is None or kernel is None:
                return "", 0.0
            window = math.prod(kernel[:-2])
            per_output = window * (kernel[-2] if kind != "DepthwiseConv2dNative" else 1)
            return ("depthwise" if kind == "DepthwiseConv2dNative" else "dense"), 2.0 * math.prod(
                out
            ) * per_output
        if kind in ("Conv2DBackpropInput", "Conv2DBackpropFilter"):
            grad, kernel = (
                _dims(op.inputs[2]),
                op.inputs[1] if kind == "Conv2DBackpropInput" else op.outputs[0],
            )
            kernel = _dims(kernel)
            if grad is None or kernel is None:
                return "", 0.0
            return "dense", 2.0 * math.prod(grad) * math.prod(kernel[:-1])
        if kind in ("DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter"):
            grad = _dims(op.inputs[2])
            kernel = _dims(op.inputs[1] if kind.endswith("Input") else op.outputs[0])
            if grad is None or kernel is None:
                return "", 0.0
            return "depthwise", 2.0 * math.prod(grad) * math.prod(kernel[:-2])
        if kind == "MatMul":
            a, b = _dims(op.inputs[0]), _dims(op.inputs[1])
            if a is None or b is None:
                return "", 0.0
            k = a[0] if op.get_attr("transpose_a") else a[1]
            n = b[0] if op.get_attr("transpose_b") else b[1]
            m = a[1] if op.get_attr("transpose_a") else a[0]
            return "dense", 2.0 * m * n * k
        if kind in ("BatchMatMulV2", "BatchMatMulV3"):
            a, out = _dims(op.inputs[0]), _dims(op.outputs[0])
            if a is None or out is None:
                return "", 0.0
            k = a[-2] if op.get_attr("adj_x") else a[-1]
            return "dense", 2.0 * math.prod(out) * k
        if kind == "Einsum":
            equation = op.get_attr("equation").decode()
            inputs, _ = equation.split("->")
            sizes: dict[str, int] = {}
            for letters, tensor in zip(inputs.split(","), op.inputs, strict=False):
                dims = _dims(tensor)
                if dims is None or "." in letters:
                    return "", 0.0
                sizes.update(zip(letters, dims, strict=False))
            return "dense", 2.0 * math.prod(sizes.values())
    except (ValueError, TypeError):
        return "", 0.0
    return "", 0.0


def _needed(graph) -> list:
    """The ops of a traced function that its outputs depend on (TensorFlow prunes the others when it runs)."""
    seen: set[str] = set()
    stack = [t.op for t in graph.outputs] + list(getattr(graph, "control_outputs", []))
    order = []
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        order.append(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return order


def _gradient(op) -> bool:
    return op.name.startswith(("gradient_tape/", "gradients/"))


def graph_cost(graph) -> dict[str, float]:
    """FLOPs (dense and depthwise) and activation bytes of a traced graph (batch of one).

    Only the ops the function's outputs need are counted: backpropagation into a frozen base is
    traced but pruned, as TensorFlow prunes it when the step runs. ``activation_bytes`` sums every
    float tensor; ``kept_bytes`` only the forward tensors that the backward pass reads (what a training
    step must hold at once); ``largest_bytes`` is the largest single tensor.
    """
    dense = depthwise = activations = kept = largest = 0.0
    needed = _needed(graph)
    names = {op.name for op in needed}
    for op in needed:
        kind, flops = _op_flops(op)
        if kind == "dense":
            dense += flops
        elif kind == "depthwise":
            depthwise += flops
        if op.type in ("Const", "VarHandleOp", "ReadVariableOp", "Placeholder", "Identity", "NoOp"):
            continue
        for out in op.outputs:
            dims = _dims(out)
            if dims is None or not out.dtype.is_floating:
                continue
            size = math.prod(dims) * out.dtype.size
            activations += size
            largest = max(largest, size)
            if not _gradient(op) and any(_gradient(c) and c.name in names for c in out.consumers()):
                kept += size
    return {"dense_flops": dense, "depthwise_flops": depthwise, "activation_bytes": activations,
            "kept_bytes": kept, "largest_bytes": largest}  # fmt: skip


def layer_output_bytes(model) -> float:
    """Bytes of every layer's output for one example: what an eager call of a functional model holds."""
    total = 0.0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            total += layer_output_bytes(layer)
            continue
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # a layer called more than once: no single output
            continue
        for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            shape = list(out.shape)[1:]
            if shape and all(d is not None for d in shape):
                size = 2 if "16" in str(out.dtype) else 4 if "32" in str(out.dtype) else 8
                total += math.prod(shape) * size
    return total


def _spec_of(x):
    """A batch-of-one TensorSpec structure for model input ``x`` (arrays, tensors or a dataset's spec)."""
    import numpy as np
    import tensorflow as tf

    def one(item):
        if isinstance(item, tf.TensorSpec):
            shape, dtype = item.shape.as_list(), item.dtype
        else:
            array = item if hasattr(item, "shape") and hasattr(item, "dtype") else np.asarray(item)
            shape, dtype = list(array.shape), tf.as_dtype(array.dtype)
        if not shape:
            return None
        return tf.TensorSpec([1, *shape[1:]], dtype)

    return tf.nest.map_structure(one, x)


def model_cost(model, x_spec, *, training: bool) -> dict[str, float] | None:
    """Per-example FLOPs and activations of ``model`` (with gradients when ``training``), or None."""
    import tensorflow as tf

    flat = tf.nest.flatten(x_spec)
    if not flat or any(s is None or any(d is None for d in s.shape.as_list()) for s in flat):
        return None
    if len(flat) == 1 and not isinstance(x_spec, dict):
        x_spec = flat[0]
    variables = list(model.trainable_variables)

    def forward(x):
        return model(x, training=False)

    def step(x):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = tf.add_n([tf.reduce_sum(tf.cast(o, tf.float32)) for o in tf.nest.flatten(out)])
        return tape.gradient(loss, variables) if variables else loss

    try:
        graph = tf.function(step if training else forward).get_concrete_function(x_spec).graph
    except Exception as exc:  # a model that cannot be traced at batch one: no FLOPs for it
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    cost = graph_cost(graph)
    if not training:
        cost["eager_bytes"] = layer_output_bytes(model)
    return cost


# =========================================================================== the recorder (in the kernel)
def _pad_history(history, epochs: int) -> None:
    """Make a capped fit's History look like the full one: the last epoch's values repeated."""
    if history is None or not getattr(history, "epoch", None) or len(history.epoch) >= epochs:
        return
    if len(history.epoch) < (history.params or {}).get("epochs", epochs) - history.epoch[0]:
        return  # stopped early (EarlyStopping): a real run could stop there too
    missing = range(history.epoch[-1] + 1, epochs)
    history.epoch.extend(missing)
    for values in history.history.values():
        values.extend(values[-1:] * len(missing))
    if history.params is not None:
        history.params["epochs"] = epochs


def _first_rows(data, size: int | None):
    """The first ``size`` rows of every batched tensor in ``data`` (dense, ragged or sparse)."""
    if not size:
        return data
    import tensorflow as tf

    def first(t):
        if isinstance(t, tf.SparseTensor):
            shape = tf.cast(t.dense_shape, tf.int64)
            size_ = tf.concat([tf.minimum(shape[:1], size), shape[1:]], 0)
            return tf.sparse.slice(t, tf.zeros_like(shape), size_)
        if getattr(t, "shape", None) is not None and len(t.shape) and hasattr(t, "__getitem__"):
            return t[:size]
        return t

    return tf.nest.map_structure(first, data)


def _fill_rows(rows, n: int, *, offset: int = 0):
    """Rows ``offset`` … ``offset + n - 1`` made from the computed ``rows``: row ``i`` is ``rows[i % len(rows)]``,
    scaled by a factor within 1 % of 1 that depends on ``i`` only (the computed rows themselves unchanged).

    Exact repeats would make statistics over the rows degenerate (a covariance of two identical halves
    is 0, and lesson 06 divides by it); the factor depends on the row's index alone, so two paths that
    fill the same rows (``predict`` and ``tlcourse.train``'s feature extractor) still agree exactly.
    """
    import numpy as np

    rows = np.asarray(rows)
    if rows.ndim == 0 or len(rows) == 0 or len(rows) == n and offset == 0:
        return rows
    index = np.arange(offset, offset + n)
    out = rows[index % len(rows)]
    if np.issubdtype(out.dtype, np.floating):
        out = (out * _row_factors(index, len(rows), out.ndim)).astype(rows.dtype)
    return out


def _row_factors(index, computed: int, ndim: int):
    """The factor of each filled row (1 for the ``computed`` rows), shaped to broadcast over a row."""

    factor = 1 + 0.01 * (((index * 2654435761) % 1000) / 1000 - 0.5)
    factor[index < computed] = 1.0
    return factor.reshape(-1, *[1] * (ndim - 1))


def _repeat_rows(t, size: int, batch: int):
    """``t`` computed on ``size`` rows, filled to ``batch`` as :func:`_fill_rows` does (and differentiable)."""
    import numpy as np
    import tensorflow as tf

    if getattr(t, "shape", None) is None or not len(t.shape) or t.shape[0] != size:
        return t
    out = tf.gather(t, tf.range(batch) % size)
    if not t.dtype.is_floating:
        return out
    return out * tf.constant(_row_factors(np.arange(batch), size, len(t.shape)), dtype=t.dtype)


class DryRunSeeds(tuple):
    """A budget's seeds cut to the first ``cap`` in a dry run, that remember the seeds the lesson asked for.

    Iterating them (a loop over seeds, ``list(seeds)``, ``tuple(seeds)``) tells the recorder that the work
    that follows in the cell repeats ``len(real) / len(self)`` times in a real run. A slice cuts the real
    seeds and then caps them again, so that ``seeds[1:]`` still runs one seed (and stands for two).
    """

    def __new__(cls, real, *, cap: int, recorder=None):
        real = tuple(real)
        self = super().__new__(cls, real[: max(1, int(cap))])
        self.real, self.cap, self.recorder = real, max(1, int(cap)), recorder
        return self

    def __iter__(self):
        if self.recorder is not None and len(self):
            self.recorder.repeat_work(len(self.real) / len(self))
        return super().__iter__()

    def __getitem__(self, index):
        if isinstance(index, slice):
            return DryRunSeeds(self.real[index], cap=self.cap, recorder=self.recorder)
        return super().__getitem__(index)

    def __reduce__(self):  # pickled (a Budget sent to a worker) as the plain tuple it stands for
        return (tuple, (tuple(self),))


class Recorder:
    """What a dry-run kernel records: per-cell memory, data loads, steps and downloads.

    ``start()`` makes one from ``$TLCOURSE_DRY_RUN`` and installs it; the report is rewritten after
    every cell, so that a kernel that dies still leaves what it measured.
    """

    def __init__(self, config: Mapping[str, Any]):
        self.config = dict(config)
        self.report_path = Path(config["report"])
        self.steps_per_epoch = int(config.get("steps_per_epoch", 1))
        self.report: dict[str, Any] = {
            "config": self.config,
            "cells": [],
            "loads": [],
            "work": [],
            "models": {},
            "downloads": [],
            "reads": {},
            "errors": [],
        }
        self._costs_file = Path(config["costs"]) if config.get("costs") else None
        self._known_costs: dict[str, dict | None] = {}
        if self._costs_file is not None and self._costs_file.is_file():
            self._known_costs = json.loads(self._costs_file.read_text(encoding="utf-8"))
        self._depth = threading.local()
        self._cell_started = time.perf_counter()
        self._cell_cpu = time.process_time()
        self._cell_device = 0.0  # bytes of activations the cell's work keeps on the accelerator
        self._cell_number = 0  # cells run so far (the report's cells are numbered the same way)
        self._repeat = 1.0  # how many times the cell's work so far repeats in a real run (capped seeds)
        self.network = None

    # ----------------------------------------------------------------- cells
    def pre_run_cell(self, info=None) -> None:
        self._cell_number += 1
        _release_free_memory()
        _reset_high_water_mark()
        self._cell_started = time.perf_counter()
        self._cell_cpu = time.process_time()
        self._cell_device = 0.0
        self._repeat = 1.0
        self._cell_start_rss = _status().get("VmRSS", 0)

    def post_run_cell(self, result=None) -> None:
        status = _status()
        self.report["cells"].append(
            {
                "cell": self._cell_number,
                "hwm_gb": status.get("VmHWM", 0) / GB,
                "rss_gb": status.get("VmRSS", 0) / GB,
                "start_rss_gb": getattr(self, "_cell_start_rss", 0) / GB,
                "activations_gb": self._cell_device / GB,
                "seconds": round(time.perf_counter() - self._cell_started, 2),
                # CPU time of the kernel (all its threads): what the cell costs on an idle machine
                "cpu_seconds": round(time.process_time() - self._cell_cpu, 2),
            }
        )
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if error is not None and "failed" not in self.report:
            first = (str(error).strip().splitlines() or [""])[0]
            self.report["failed"] = (
                f"In [{self.report['cells'][-1]['cell']}]: {type(error).__name__}: {first}"[:300]
            )
        self.flush()

    def flush(self) -> None:
        if self.network is not None:
            self.report["downloads"] = list(self.network.downloads)
            from tlcourse_tools import standin

            self.report["reads"] = {name: self.network.reads(name) for name in standin.catalogue()}
        tmp = self.report_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.report, indent=1, default=str), encoding="utf-8")
        tmp.replace(self.report_path)

    # ----------------------------------------------------------------- models and work
    def _signature(self, model, x_spec, training: bool) -> str:
        import keras
        import tensorflow as tf

        shapes = [None if s is None else s.shape.as_list()[1:] for s in tf.nest.flatten(x_spec)]
        policy = keras.mixed_precision.global_policy().name
        trainable = int(sum(math.prod(w.shape) for w in model.trainable_weights))
        total = int(sum(math.prod(w.shape) for w in model.weights))  # count_params() needs model.built
        name = f"{model.name}:{total}:{trainable}:{json.dumps(shapes)}:{policy}:" + (
            "train" if training else "infer"
        )
        if name not in self.report["models"]:
            started = time.perf_counter()
            cost = self._known_costs.get(name)
            if cost is None:
                cost = model_cost(model, x_spec, training=training)
                self._known_costs[name] = cost
                self._save_costs()
            self.report["models"][name] = {
                "name": model.name,
                "parameters": total,
                "trainable": trainable,
                "input": shapes,
                "policy": policy,
                "cost": cost,
                "trace_seconds": round(time.perf_counter() - started, 2),
            }
        return name

    def _save_costs(self) -> None:
        if self._costs_file is not None:
            tmp = self._costs_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._known_costs), encoding="utf-8")
            tmp.replace(self._costs_file)

    def repeat_work(self, factor: float) -> None:
        """The rest of this cell's work stands for ``factor`` times as much (a loop over capped seeds)."""
        self._repeat = float(factor)

    def _record_work(self, kind: str, model, x_spec, *, steps: int, batch: int, extra=None) -> None:
        name = self._signature(model, x_spec, training=kind == "fit")
        entry = {
            "kind": kind,
            "model": name,
            "steps": int(steps),
            "batch": int(batch),
            "cell": self._cell_number,
        }
        if self._repeat != 1.0:
            entry["repeat"] = round(self._repeat, 4)
        if kind == "fit" and getattr(model, "optimizer", None) is not None:
            entry["optimizer_bytes"] = int(sum(math.prod(v.shape) * 4 for v in model.optimizer.variables))
        entry.update(extra or {})
        self.report["work"].append(entry)
        self._cell_device = max(self._cell_device, activation_bytes(self.report["models"][name], entry))

    def _count(self, data) -> tuple[int, int]:
        """(batches, largest batch) of a finite tf.data.Dataset, reading it all (its caches fill, as in a real epoch)."""
        return self._count_examples(data)[:2]

    def _count_examples(self, data) -> tuple[int, int, int]:
        """(batches, largest batch, examples) of a finite tf.data.Dataset, reading it all."""
        import tensorflow as tf

        # Plain graph code: AutoGraph cannot read these functions' source in a kernel, and would say so.
        @tf.autograph.experimental.do_not_convert
        def leading(*element):
            first = tf.nest.flatten(element)[0]
            return tf.cast(tf.shape(first)[0], tf.int64) if first.shape.rank else tf.constant(1, tf.int64)

        @tf.autograph.experimental.do_not_convert
        def add(state, n):
            return state[0] + 1, tf.maximum(state[1], n), state[2] + n

        zero = tf.constant(0, tf.int64)
        counted = data.map(leading).reduce((zero, zero, zero), add)
        return int(counted[0]), int(counted[1]), int(counted[2])

    def _steps_and_batch(self, x, batch_size, fraction: float = 1.0):
        """(steps per epoch, batch size, x spec) of fit/predict input ``x``."""
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            x_spec = spec[0] if isinstance(spec, tuple) else spec
            cardinality = int(x.cardinality())
            if cardinality == tf.data.INFINITE_CARDINALITY:
                return None, None, _spec_of(x_spec)
            steps, batch = self._count(x)
            return steps, batch, _spec_of(x_spec)
        if isinstance(x, (list, tuple)) and x and not hasattr(x[0], "shape"):
            return None, None, None
        try:
            first = tf.nest.flatten(x)[0]
            n = len(first)
        except (TypeError, IndexError):
            if hasattr(x, "__len__"):  # a PyDataset: batches
                return len(x), batch_size or 32, None
            return None, None, None
        batch = int(batch_size or 32)
        n_used = math.ceil(n * fraction) if fraction < 1 else n  # as Keras splits validation_split
        return math.ceil(n_used / batch), batch, _spec_of(x)

    def fit(self, original, model, *args, **kwargs):
        import inspect

        import keras

        bound = inspect.signature(original).bind(model, *args, **kwargs)
        arguments = {**{k: v.default for k, v in inspect.signature(original).parameters.items()
                        if v.default is not inspect.Parameter.empty}, **bound.arguments}  # fmt: skip
        x = arguments.get("x")
        split = float(arguments.get("validation_split") or 0.0)
        epochs = int(arguments.get("epochs") or 1) - int(arguments.get("initial_epoch") or 0)
        steps, batch, x_spec = self._steps_and_batch(x, arguments.get("batch_size"), 1 - split)
        if arguments.get("steps_per_epoch"):
            steps = int(arguments["steps_per_epoch"])
        val_steps = 0
        validation = arguments.get("validation_data")
        frequency = int(arguments.get("validation_freq") or 1)
        if validation is not None:
            import tensorflow as tf

            val_x = validation if isinstance(validation, tf.data.Dataset) else validation[0]
            val_batch = arguments.get("validation_batch_size") or arguments.get("batch_size")
            val_steps = (self._steps_and_batch(val_x, val_batch)[0] or 0) * math.ceil(
                max(epochs, 0) / frequency
            )
        elif split:
            n = len(keras.tree.flatten(x)[0])
            held = n - math.ceil(n * (1 - split))
            val_steps = math.ceil(held / int(arguments.get("batch_size") or 32)) * max(epochs, 0)
        initial = int(arguments.get("initial_epoch") or 0)
        if self.max_epochs and epochs > self.max_epochs:
            bound.arguments["epochs"] = initial + self.max_epochs
            if validation is not None and isinstance(frequency, int) and frequency > self.max_epochs:
                # A real run that validates every `frequency` epochs validates at least once; so does this one.
                bound.arguments["validation_freq"] = self.max_epochs
        previous = keras.config.max_steps_per_epoch()
        keras.config.set_max_steps_per_epoch(self.steps_per_epoch)
        self._compute_on_slices(model)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Limiting steps_per_epoch")
                history = original(*bound.args, **bound.kwargs)
        finally:
            keras.config.set_max_steps_per_epoch(previous)
        _pad_history(history, initial + epochs)
        if steps is not None and x_spec is not None:
            try:  # recording must never break the lesson
                self._record_work("fit", model, x_spec, steps=steps * max(epochs, 0), batch=batch or 32,
                                  extra={"epochs": epochs, "steps_per_epoch": steps})  # fmt: skip
                if val_steps:
                    self._record_work("evaluate", model, x_spec, steps=val_steps, batch=batch or 32)
            except Exception as exc:
                self.report["errors"].append(f"fit of {model.name}: {exc}"[:200])
        else:
            self.report["errors"].append(f"fit of {model.name}: could not count its steps")
        return history

    def _compute_on_slices(self, model) -> None:
        """Make ``model``'s train, test and predict steps compute on the first ``compute_batch`` examples.

        The data still arrive in batches of the real size (decoding, caches and host memory as in a real
        run) and the steps are counted at that size, but a CPU has no fast float16: one real step of
        EfficientNet-Lite0 at 224 px and batch 64 under ``mixed_float16`` takes minutes here. Device
        memory is planned from the real batch size, not from what runs here.
        """
        size = self.compute_batch
        if not size or getattr(model, "_tlcourse_dry_run_sliced", False):
            return
        for name in ("train_step", "test_step", "predict_step"):
            step = getattr(model, name)
            setattr(model, name, lambda data, _step=step: _step(_first_rows(data, size)))
        model._tlcourse_dry_run_sliced = True
        # Step functions traced before this point would still compute on whole batches.
        model.train_function = model.test_function = model.predict_function = None

    @property
    def compute_batch(self) -> int | None:
        return self.config.get("compute_batch")

    @property
    def max_epochs(self) -> int | None:
        return self.config.get("max_epochs")

    def _capped(self, original, *args, **kwargs):
        """Run ``original`` with every Keras epoch (fit, evaluate, predict) cut to the dry run's steps."""
        import keras

        previous = keras.config.max_steps_per_epoch()
        keras.config.set_max_steps_per_epoch(self.steps_per_epoch)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Limiting steps_per_epoch")
                return original(*args, **kwargs)
        finally:
            keras.config.set_max_steps_per_epoch(previous)

    def infer(self, kind: str, original, model, *args, **kwargs):
        """``predict``/``evaluate`` cut to the dry run's steps; the real steps are counted.

        ``predict`` returns as many rows as the real call would (the computed rows repeated), so that
        what the lesson does with them runs, and holds as much host memory, as with the real predictions.
        """
        import inspect

        import keras
        import numpy as np
        import tensorflow as tf

        bound = inspect.signature(original).bind(model, *args, **kwargs)
        if isinstance(bound.arguments.get("callbacks"), keras.callbacks.CallbackList):
            return original(model, *args, **kwargs)  # fit's own validation: fit counted its steps
        x = bound.arguments.get("x")
        batch = bound.arguments.get("batch_size") or 32
        steps = examples = x_spec = None
        try:
            if isinstance(x, tf.data.Dataset):
                spec = x.element_spec
                x_spec = _spec_of(spec[0] if isinstance(spec, tuple) else spec)
                # Known, or unknown (a filtered or capped split, as the cpu profile's): read it to count.
                if int(x.cardinality()) != tf.data.INFINITE_CARDINALITY:
                    steps, batch, examples = self._count_examples(x)
            else:
                steps, batch, x_spec = self._steps_and_batch(x, batch)
                examples = len(tf.nest.flatten(x)[0])
            if bound.arguments.get("steps") and steps is not None:
                steps = min(steps, int(bound.arguments["steps"]))
                examples = None
        except Exception as exc:  # recording must never break the lesson
            self.report["errors"].append(f"{kind} of {model.name}: {exc}"[:200])
            steps = None
        self._compute_on_slices(model)
        if steps is None:  # an input whose steps cannot be counted runs in full
            result = original(*bound.args, **bound.kwargs)
        else:
            result = self._capped(original, *bound.args, **bound.kwargs)
        if kind == "predict" and examples:

            def full(rows):
                rows = np.asarray(rows)
                if rows.ndim == 0 or len(rows) in (0, examples):
                    return rows
                return _fill_rows(rows, examples)

            result = tf.nest.map_structure(full, result)
        if steps is not None and x_spec is not None:
            try:
                self._record_work(kind, model, x_spec, steps=steps, batch=batch or 32)
            except Exception as exc:  # recording must never break the lesson
                self.report["errors"].append(f"{kind} of {model.name}: {exc}"[:200])
        else:
            self.report["errors"].append(f"{kind} of {model.name}: could not count its steps")
        return result

    def embedder(self, original, base, x_spec):
        """``tlcourse.train``'s feature extractor (a pass of a frozen base over every batch), capped.

        The first ``steps_per_epoch`` batches run the base; every later batch is still read from the
        data (decoding, caches) and gets the first batch's features repeated to its size, so that the
        features hold as much memory as the real ones. The steps are counted as they come.
        """
        import tensorflow as tf

        embed = original(base, x_spec)
        state: dict[str, Any] = {"entry": None, "first": None, "offset": 0}

        def capped(images):
            entry = state["entry"]
            batch = int(images.shape[0])
            if entry is None:
                try:
                    self._record_work("predict", base, _spec_of(images), steps=0, batch=batch)
                    state["entry"] = entry = self.report["work"][-1]
                except Exception as exc:  # recording must never break the lesson
                    self.report["errors"].append(f"features of {base.name}: {exc}"[:200])
                    state["entry"] = entry = {"steps": 0, "batch": batch}
            entry["steps"] += 1
            entry["batch"] = max(entry["batch"], batch)
            if entry["steps"] <= self.steps_per_epoch or state["first"] is None:
                out = embed(_first_rows(images, self.compute_batch))
                state["first"] = out.numpy()
            rows = _fill_rows(state["first"], batch, offset=state["offset"])
            state["offset"] += batch
            return tf.constant(rows)

        return capped

    def call(self, original, model, *args, **kwargs):
        import tensorflow as tf

        depth = getattr(self._depth, "value", 0)
        if depth or not tf.executing_eagerly() or not args:
            return original(model, *args, **kwargs)
        x = args[0]
        flat = tf.nest.flatten(x)
        if not flat or not all(
            hasattr(t, "shape") and not type(t).__name__.startswith("Keras") for t in flat
        ):
            return original(model, *args, **kwargs)
        self._depth.value = depth + 1
        batch = int(flat[0].shape[0]) if flat[0].shape else 1
        size = self.compute_batch
        try:
            if size and batch > size:  # computed on the first rows, repeated to the batch's size
                result = original(model, _first_rows(x, size), *args[1:], **kwargs)
                result = tf.nest.map_structure(lambda t: _repeat_rows(t, size, batch), result)
            else:
                result = original(model, *args, **kwargs)
        finally:
            self._depth.value = depth
        try:
            self._record_work("call", model, _spec_of(x), steps=1, batch=batch,
                              extra={"training": bool(kwargs.get("training"))})  # fmt: skip
        except Exception as exc:  # recording must never break the lesson
            self.report["errors"].append(f"call of {model.name}: {exc}"[:200])
        return result

    def predict_on_batch(self, original, model, x, *args, **kwargs):
        """``predict_on_batch`` computed on the batch's first rows (filled to its size), counted as one step."""
        import tensorflow as tf

        flat = tf.nest.flatten(x)
        shape = getattr(flat[0], "shape", None) if flat else None
        batch = int(shape[0]) if shape is not None and len(shape) else None
        size = self.compute_batch
        if batch and size and batch > size:
            result = original(model, _first_rows(x, size), *args, **kwargs)
            result = tf.nest.map_structure(lambda rows: _fill_rows(rows, batch), result)
        else:
            result = original(model, x, *args, **kwargs)
        try:
            self._record_work("predict", model, _spec_of(x), steps=1, batch=batch or 1)
        except Exception as exc:  # recording must never break the lesson
            self.report["errors"].append(f"predict_on_batch of {model.name}: {exc}"[:200])
        return result

    # ----------------------------------------------------------------- data.load
    def load(self, original, name, **kwargs):
        from tlcourse import data, env
        from tlcourse_tools import standin

        bundle = original(name, **kwargs)
        course = kwargs.get("course") or env.last_setup()
        budget = course.budget if course is not None else None
        if budget is None and os.environ.get("TLCOURSE_PROFILE"):
            budget = env.PROFILES[os.environ["TLCOURSE_PROFILE"]]
        caps = (budget.train_per_class, budget.eval_per_class) if budget is not None else (None, None)
        base = name[:-2] if name.endswith("_m") else name
        entry = {"name": name, "sizes": dict(bundle.sizes), "caps": list(caps),
                 "image_shape": list(bundle.image_shape) if bundle.image_shape else None,
                 "classes": kwargs.get("classes"), "labels_per_class": kwargs.get("labels_per_class"),
                 "cell": self._cell_number}  # fmt: skip
        if base in standin.catalogue() and bundle.source.startswith("tfds"):
            options = dict(val_fraction=kwargs.get("val_fraction", 0.1), classes=kwargs.get("classes"),
                           labels_per_class=kwargs.get("labels_per_class"), caps=caps)  # fmt: skip
            entry["real_sizes"] = standin.expected_sizes(standin.Network(), base, **options)
            expected = standin.expected_sizes(self.network, base, **options)
            if expected != dict(bundle.sizes):
                self.report["errors"].append(
                    f"data.load({name!r}) returned {bundle.sizes}, the stand-in expected {expected}"
                )
        else:
            entry["real_sizes"] = dict(bundle.sizes)
        self.report["loads"].append(entry)
        del data
        return bundle

    # ----------------------------------------------------------------- install
    def install(self) -> None:
        """Install the stand-in network and the recording wrappers in this process (``uninstall`` undoes)."""
        import functools

        import keras

        from tlcourse import data, env
        from tlcourse_tools import standin

        self.network = standin.Network(
            scale=float(self.config.get("scale", 1.0)),
            min_per_class=int(self.config.get("min_per_class", 0)),
            min_per_split=int(self.config.get("min_per_split", 0)),
            growth=int(self.config.get("growth", 1)),
            fail=self.config.get("fail", {}),
            wheelhouse=self.config.get("wheelhouse", []),
            cache=self.config.get("standin_cache"),
        )
        self._installed = standin.install(self.network)
        recorder = self

        def patch(owner, attr, method):
            original = getattr(owner, attr)

            @functools.wraps(original)
            def wrapper(*args, **kwargs):
                return method(original, *args, **kwargs)

            self._installed._set(owner, attr, wrapper)

        patch(keras.Model, "fit", self.fit)
        patch(keras.Model, "predict", functools.partial(self.infer, "predict"))
        patch(keras.Model, "evaluate", functools.partial(self.infer, "evaluate"))
        patch(keras.Model, "__call__", self.call)
        patch(keras.Model, "predict_on_batch", self.predict_on_batch)
        from tlcourse import train

        patch(train, "_embedder", self.embedder)
        if self.config.get("max_seeds"):  # the lessons' repeated seeds, cut short (the plan multiplies back)
            cap = int(self.config["max_seeds"])
            profiles = {name: budget.replace(seeds=DryRunSeeds(budget.seeds, cap=cap, recorder=self))
                        for name, budget in env.PROFILES.items()}  # fmt: skip
            self._installed._set(env, "PROFILES", profiles)
        original_load = data.load

        @functools.wraps(original_load)
        def load(name, **kwargs):
            return recorder.load(original_load, name, **kwargs)

        self._installed._set(data, "load", load)
        if self.config.get("pretend_t4"):
            t4 = env.DeviceInfo("GPU", "Tesla T4 (dry run on this CPU)", (7, 5))
            self._installed._set(env, "detect_devices", lambda: [t4])
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            shell = None
        if shell is not None:
            shell.events.register("pre_run_cell", self.pre_run_cell)
            shell.events.register("post_run_cell", self.post_run_cell)
            self._shell = shell
        self.flush()

    def uninstall(self) -> None:
        """Put back what ``install`` replaced."""
        shell = getattr(self, "_shell", None)
        if shell is not None:
            shell.events.unregister("pre_run_cell", self.pre_run_cell)
            shell.events.unregister("post_run_cell", self.post_run_cell)
        if getattr(self, "_installed", None) is not None:
            self._installed.uninstall()


def start() -> Recorder | None:
    """Install the dry run described by ``$TLCOURSE_DRY_RUN`` in this kernel (run at kernel start)."""
    raw = os.environ.get(DRY_RUN_ENV)
    if not raw:
        return None
    config = json.loads(raw)
    from tlcourse import env

    env.quiet_tensorflow()  # TensorFlow's native start-up lines stay out of the lesson's first cells
    recorder = Recorder(config)
    recorder.install()
    return recorder


# =========================================================================== plans (in the parent)
def decode_costs(*, examples: int = 12) -> dict[str, float]:
    """Milliseconds to decode one example of each dataset on this machine's CPU.

    Colab's T4 runtime decodes on its CPUs too; the plan charges every example a lesson reads.
    """
    import statistics

    from tlcourse import env

    env.quiet_tensorflow()
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from tlcourse_tools import standin

    costs = {}
    with standin.install(standin.Network()):
        for name, facts in standin.catalogue().items():
            if facts.feature != "image":
                costs[name] = 0.0
                continue
            split = next(iter(facts.splits))
            raw = tfds.builder(name).as_dataset(split=f"{split}[:{examples}]", as_supervised=True,
                                                decoders={"image": tfds.decode.SkipDecoding()})  # fmt: skip
            encoded = [x for x, _ in raw]
            times = []
            for blob in encoded:  # CPU time, not wall time: the same on a busy machine
                started = time.process_time()
                tf.io.decode_image(blob, channels=3, expand_animations=False).numpy()
                times.append((time.process_time() - started) * 1000)
            costs[name] = round(statistics.median(times), 2)
    return costs


def _x(report: Mapping, cell: int | None = None) -> float:
    """Examples the lesson's loads returned (those made up to ``cell``, when given: a cell can hold no more)."""
    return float(sum(sum(e["sizes"].values()) for e in _loads_upto(report, cell)))


def _x_real(report: Mapping, cell: int | None = None) -> float:
    return float(sum(sum(e["real_sizes"].values()) for e in _loads_upto(report, cell)))


def _loads_upto(report: Mapping, cell: int | None) -> list:
    loads = report["loads"]
    if cell is None or any("cell" not in e for e in loads):  # a report from before loads knew their cell
        return loads
    return [e for e in loads if e["cell"] <= cell]


def _extrapolate(a: float, b: float, xa: float, xb: float, x: float, *, noise: float = 0.0) -> float:
    """The value at ``x`` of the line through (xa, a) and (xb, b); flat when the slope is within noise."""
    if xb <= xa or abs(b - a) <= noise:
        return max(a, b)
    slope = max(0.0, (b - a) / (xb - xa))
    return max(a, b) + slope * (x - max(xa, xb))


def step_seconds(model: Mapping, kind: str, batch: int, figures_: Mapping) -> float:
    """T4 seconds of one step of ``kind`` ("fit", "evaluate", "predict", "call") at ``batch``."""
    cost = model.get("cost") or {}
    policy = "mixed_float16" if model.get("policy") == "mixed_float16" else "float32"
    dense = figures_["dense_tflops"][policy] * 1e12
    factor = figures_["depthwise_factor"][policy] if cost.get("depthwise_flops") else 1.0
    flops = (cost.get("dense_flops") or 0.0) + (cost.get("depthwise_flops") or 0.0)
    overhead = figures_["step_overhead_ms"]["train" if kind == "fit" else "predict"] / 1000
    return batch * flops / (dense * factor) + overhead


def activation_bytes(model: Mapping, entry: Mapping) -> float:
    """Bytes of activations one step of ``entry`` holds at its batch size.

    A fit keeps the forward tensors its backward pass reads; a direct, eager call of a functional
    Keras model keeps every layer's output until it returns; ``predict`` and ``evaluate`` run as graphs
    that free each tensor once used (two of the largest at a time). Each also holds two of its
    largest tensors in flight.
    """
    cost = model.get("cost") or {}
    batch = entry["batch"]
    in_flight = 2.0 * cost.get("largest_bytes", 0.0)
    if entry["kind"] == "fit":
        return (cost.get("kept_bytes", 0.0) + in_flight) * batch
    if entry["kind"] == "call":
        return max(cost.get("eager_bytes", 0.0), in_flight) * batch
    return in_flight * batch


def device_bytes(model: Mapping, entry: Mapping) -> float:
    """Device memory of one step: weights, and for a fit gradients and optimizer state, plus activations."""
    parameters = 4.0 * model.get("parameters", 0)
    total = parameters + activation_bytes(model, entry)
    if entry["kind"] == "fit":
        trainable = 4.0 * model.get("trainable", 0)
        total += trainable + entry.get("optimizer_bytes", 2 * trainable)
    return total


def _real_batches(
    small: Mapping, large: Mapping, xa: float, xb: float, x_real: float
) -> list[tuple[dict, int]]:
    """Each step of the larger run with the batch it would have at the real size.

    A step is matched with the same step of the smaller run (same cell, kind, model and order). When its
    batch grew with the data and is larger than any batch size a lesson asks for (the whole dataset as one
    batch), it keeps growing; otherwise (a batch size the data fills, or did not fill yet) it stays.
    """

    def key(entry, seen):
        k = (entry.get("cell"), entry["kind"], entry["model"])
        seen[k] = seen.get(k, 0) + 1
        return (*k, seen[k])

    seen: dict = {}
    before = {key(e, seen): e for e in small["work"]}
    seen = {}
    out = []
    growth = xb / xa if xa else 1.0
    splits = {n for load in large.get("loads", []) for n in load["sizes"].values()}
    splits |= {sum(load["sizes"].values()) for load in large.get("loads", [])}
    for entry in large["work"]:
        match = before.get(key(entry, seen))
        batch = entry["batch"]
        grew = match and match["batch"] and growth > 1 and batch / match["batch"] >= 0.9 * growth
        # ... and is a whole split as loaded (lesson 06's `x_target[:1024]` grew until its slice capped it)
        whole = not splits or batch in splits
        if grew and whole and batch > LARGEST_BATCH_SIZE:
            batch = int(round(batch * x_real / xb))
        out.append((entry, batch))
    return out


def lesson_plan(lesson: str, profile: str, small: Mapping, large: Mapping, *, status: str = "ok") -> dict:
    """The plan of one lesson and profile, from its dry runs at two scales (``small``, ``large``).

    Host memory, cell by cell: the high-water mark less the activations of the cell's steps is
    ``fixed + per_example × N`` through the two runs, taken at the real N; the activations are added
    back at their real batch sizes (on a T4 they live in GPU memory instead). The largest cell is the plan.
    """
    f = figures()
    xa, xb, x_real = _x(small), _x(large), _x_real(large)
    on_gpu = bool(large["config"].get("pretend_t4"))
    steps = _real_batches(small, large, xa, xb, x_real)

    # What the dry run's steps computed on: the first `compute_batch` rows of each batch (none of the real
    # batch's activations were ever in its memory, so none are taken out of what it measured).
    computed = large["config"].get("compute_batch")

    def activations_by_cell(report, batches=None) -> dict:
        out: dict = {}
        pairs = batches if batches is not None else [
            (e, min(e["batch"], computed) if computed else e["batch"]) for e in report["work"]
        ]  # fmt: skip
        for entry, batch in pairs:
            model = report["models"].get(entry["model"], {})
            size = activation_bytes(model, {**entry, "batch": batch}) / GB
            out[entry.get("cell")] = max(out.get(entry.get("cell"), 0.0), size)
        return out

    acts_a, acts_b, acts_real = (
        activations_by_cell(small),
        activations_by_cell(large),
        activations_by_cell(large, steps),
    )

    def base(cell, acts) -> float:
        return max(cell.get("start_rss_gb", 0.0), cell["hwm_gb"] - acts.get(cell["cell"], 0.0))

    noise = 0.05  # GB: the allocator's scatter between two runs of the same cell
    planned = 0.0
    for a, b in zip(small["cells"], large["cells"], strict=False):
        # A cell's memory grows with the data loaded so far, not with what later cells load.
        ca, cb, c_real = _x(small, b["cell"]), _x(large, b["cell"]), _x_real(large, b["cell"])
        fixed = _extrapolate(base(a, acts_a), base(b, acts_b), ca, cb, c_real, noise=noise)
        planned = max(planned, fixed + (0.0 if on_gpu else acts_real.get(b["cell"], 0.0)))
    measured = max((c["hwm_gb"] for c in large["cells"]), default=0.0)
    # Never below what the dry run itself held at a fraction of the data (weights, even those a T4 holds,
    # pass through host memory on their way to the device).
    planned = max(planned, measured)

    def seconds(report) -> dict[str, float]:
        out = {"compute": 0.0}
        for entry in report["work"]:
            model = report["models"].get(entry["model"], {})
            repeat = entry.get("repeat", 1.0)  # work of a loop over seeds the dry run cut short
            out["compute"] += repeat * entry["steps"] * step_seconds(model, entry["kind"], entry["batch"], f)
        decode_ms = report["config"].get("decode_ms", {})
        reads = sum(n * decode_ms.get(name, 4.0) for name, n in report.get("reads", {}).items())
        out["decode"] = reads / 1000 / f["colab_cpus"]["value"]
        return out

    time_a, time_b = seconds(small), seconds(large)
    compute = _extrapolate(time_a["compute"], time_b["compute"], xa, xb, x_real)
    decode = _extrapolate(time_a["decode"], time_b["decode"], xa, xb, x_real)
    downloads = {entry["url"]: entry for entry in large.get("downloads", [])}
    download_bytes = sum(d["bytes"] for d in downloads.values())
    from tlcourse_tools import standin

    prepare = 0.0
    decode_ms = large["config"].get("decode_ms", {})
    for name in {e["name"] for e in downloads.values() if e["kind"] == "tfds"}:
        facts = standin.catalogue()[name]
        per_example = f["prepare_ms_per_example"]["text" if facts.feature == "text" else "image"]
        per_example += f["prepare_ms_per_example"]["decode_factor"] * decode_ms.get(name, 0.0)
        prepare += sum(facts.splits.values()) * per_example / 1000
    download = download_bytes / 2**20 / f["download_mb_per_s"]["value"]
    # Device: the largest step at its real batch size (a whole dataset fed as one batch grows with it).
    device_peak = max(
        (device_bytes(large["models"].get(e["model"], {}), {**e, "batch": batch}) for e, batch in steps),
        default=0.0,
    )
    factor, context = f["device_overhead_gb"]["factor"], f["device_overhead_gb"]["value"]
    device_gb = device_peak * factor / GB + context if device_peak else 0.0
    return {
        "lesson": lesson,
        "profile": profile,
        "status": status,
        "host_ram_gb_measured": round(measured, 2),
        "host_ram_gb_planned": round(planned, 2),
        "device_ram_gb_planned": round(device_gb, 2),
        "t4_minutes_planned": round((compute + decode + download + prepare) / 60, 1),
        "downloads_mb": round(download_bytes / 2**20, 1),
        "t4_minutes_by_part": {
            "compute": round(compute / 60, 2),
            "decode": round(decode / 60, 2),
            "download": round(download / 60, 2),
            "prepare": round(prepare / 60, 2),
        },  # fmt: skip
        "examples": {"dry_run": [xa, xb], "real": x_real},
        "errors": list(small.get("errors", []))
        + [e for e in large.get("errors", []) if e not in small.get("errors", [])],
    }


def write_plans(rows: Sequence[Mapping], path: str | os.PathLike) -> Path:
    """Merge ``rows`` into the plan file (one object per lesson and profile) and return its path."""
    path = Path(path)
    existing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    keyed = {(r["lesson"], r["profile"]): r for r in existing}
    keyed.update({(r["lesson"], r["profile"]): dict(r) for r in rows})
    merged = [keyed[k] for k in sorted(keyed)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return path


def within_limits(row: Mapping) -> list[str]:
    """What a plan row exceeds (empty when it fits its profile's limits)."""
    limits = LIMITS.get(row["profile"], {})
    problems = []
    if row["status"] != "ok":
        problems.append(f"status {row['status']}")
    if limits.get("host_gb") is not None and row["host_ram_gb_planned"] > limits["host_gb"]:
        problems.append(f"host {row['host_ram_gb_planned']} GB > {limits['host_gb']} GB")
    if limits.get("device_gb") is not None and row["device_ram_gb_planned"] > limits["device_gb"]:
        problems.append(f"device {row['device_ram_gb_planned']} GB > {limits['device_gb']} GB")
    return problems


def replan(output: str | os.PathLike, *, plan_file: str | os.PathLike | None = None) -> list[dict]:
    """Plans again from the reports a dry run left in ``output/dry-run`` (after a change to the figures)."""
    folder = Path(output) / "dry-run"
    decode_ms = decode_costs()  # measured again: the figures may have changed since the run
    rows = []
    for small_path in sorted(folder.glob("*-*-0/report.json")):
        lesson, profile = small_path.parent.name.split("-")[:2]
        large_path = small_path.parents[1] / f"{lesson}-{profile}-1" / "report.json"
        small = json.loads(small_path.read_text(encoding="utf-8"))
        large = json.loads(large_path.read_text(encoding="utf-8")) if large_path.is_file() else small
        for report in (small, large):
            report["config"]["decode_ms"] = decode_ms
        status = large.get("failed") or small.get("failed") or "ok"
        rows.append(lesson_plan(lesson, profile, small, large, status=status))
    if plan_file is not None:
        write_plans(rows, plan_file)
    return rows


def markdown(rows: Sequence[Mapping]) -> str:
    """The plan rows as the Markdown page ``docs/plans.md`` (the same rows give the same page).

    Examples
    --------
    >>> row = {"lesson": "03", "profile": "full", "status": "ok", "host_ram_gb_measured": 5.7,
    ...        "host_ram_gb_planned": 13.1, "device_ram_gb_planned": 2.0, "t4_minutes_planned": 5.4,
    ...        "downloads_mb": 786.7}
    >>> print(markdown([row]).splitlines()[-1])
    | 03 | full | ok | **13.1** ⚠️ Colab | 2.0 | 5.4 | 787 | 5.7 | – |
    """
    lines = [
        "# Memory and time plans per lesson (generated)",
        "",
        "Written by `make dry-run` from `build/course/plan.json`; regenerate this page from that file with",
        "`python -m tlcourse_tools.plans table build/course/plan.json docs/plans.md`. How the plans are made:",
        "[instructors.md](instructors.md#will-it-fit-on-colab-dry-runs-make-dry-run).",
        "",
        f"Flags: ⚠️ Colab, over what Colab has ({COLAB['host_gb']} GB of RAM, {COLAB['device_gb']} GB on a T4); "
        "⚠️ margin, over the limit the tests hold the plans to "
        + ", ".join(
            f"{p}: host {v['host_gb']} GB" + (f", device {v['device_gb']} GB" if v["device_gb"] else "")
            for p, v in LIMITS.items()
        )
        + ". Host and device are planned peaks at the real dataset sizes; T4 minutes are planned for a",
        "Colab T4 (compute, decoding, downloads and tfds preparation); the dry run's own high-water mark is",
        "the last column.",
        "",
        "| lesson | profile | status | host RAM, GB | device memory, GB | T4 minutes | downloads, MB | "
        "host RAM in the dry run, GB | dry run, s (wall / CPU) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def flagged(value, profile: str, kind: str) -> str:
        colab = COLAB[f"{kind}_gb"] if profile == "full" else None
        limit = LIMITS.get(profile, {}).get(f"{kind}_gb")
        if colab is not None and value > colab:
            return f"**{value:.1f}** ⚠️ Colab"
        if limit is not None and value > limit:
            return f"**{value:.1f}** ⚠️ margin"
        return f"{value:.1f}"

    for row in sorted(rows, key=lambda r: (r["profile"] != "full", r["profile"], r["lesson"])):
        status = row["status"] if row["status"] == "ok" else f"failed: {row['status']}".replace("|", "/")
        lines.append(
            f"| {row['lesson']} | {row['profile']} | {status} | "
            f"{flagged(row['host_ram_gb_planned'], row['profile'], 'host')} | "
            f"{flagged(row['device_ram_gb_planned'], row['profile'], 'device')} | "
            f"{row['t4_minutes_planned']:.1f} | {row['downloads_mb']:.0f} | {row['host_ram_gb_measured']:.1f} | "
            + ("{wall} / {cpu} |".format(**row["dry_run_s"]) if "dry_run_s" in row else "– |")
        )
    spent = [row["dry_run_s"] for row in rows if "dry_run_s" in row]
    if spent:
        lines += [
            "",
            f"The dry runs above took {sum(s['wall'] for s in spent)} s of wall time and "
            f"{sum(s['cpu'] for s in spent)} s of CPU time in their kernels (wall time grows with the machine's "
            "load; CPU time over the cores is what an idle machine would need, plus each kernel's start).",
        ]
    return "\n".join(lines) + "\n"


def _page_rows(text: str) -> list[dict]:
    """The rows of a page :func:`markdown` wrote, read back (flags dropped)."""

    def number(cell: str) -> float:
        return float(re.search(r"-?[\d.]+", cell).group())

    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 9 or not re.fullmatch(r"\d\d", cells[0]):
            continue
        row = {
            "lesson": cells[0],
            "profile": cells[1],
            "status": cells[2].removeprefix("failed: "),
            "host_ram_gb_planned": number(cells[3]),
            "device_ram_gb_planned": number(cells[4]),
            "t4_minutes_planned": number(cells[5]),
            "downloads_mb": number(cells[6]),
            "host_ram_gb_measured": number(cells[7]),
        }
        if "/" in cells[8]:
            wall, cpu = (int(part) for part in cells[8].split("/"))
            row["dry_run_s"] = {"wall": wall, "cpu": cpu}
        rows.append(row)
    return rows


def write_markdown(plan_file: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write :func:`markdown` of a plan file to ``path`` and return it.

    Lessons the plan file lacks keep their rows from the page already at ``path``: a dry run of a few
    lessons (``make dry-run LESSONS="01 09"`` on a fresh clone) updates theirs and leaves the others.
    """
    rows = json.loads(Path(plan_file).read_text(encoding="utf-8"))
    path = Path(path)
    if path.is_file():
        planned = {(row["lesson"], row["profile"]) for row in rows}
        kept = _page_rows(path.read_text(encoding="utf-8"))
        rows = [*rows, *(row for row in kept if (row["lesson"], row["profile"]) not in planned)]
    path.write_text(markdown(rows), encoding="utf-8")
    return path


if __name__ == "__main__":
    # python -m tlcourse_tools.plans table PLAN_FILE MARKDOWN   (the page docs/plans.md)
    # python -m tlcourse_tools.plans OUTPUT [PLAN_FILE]         (plan again from a dry run's reports)
    import sys

    if sys.argv[1] == "table":
        print(write_markdown(sys.argv[2], sys.argv[3]))
    else:
        for row in replan(sys.argv[1], plan_file=sys.argv[2] if len(sys.argv) > 2 else None):
            print(json.dumps(row))
