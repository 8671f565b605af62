"""Memory and time plans: FLOPs and activations from traced graphs, the recorder that caps fits and counts
their steps, the extrapolation to the real datasets, and (after a dry run) every lesson within its limits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tlcourse_tools import plans, standin

from tlcourse import data

PLAN_FILE = os.environ.get("TLCOURSE_PLAN_FILE")  # set by `make dry-run` after its runs


# --------------------------------------------------------------------------- FLOPs and activations
def _conv_model(*, depthwise: bool = False, frozen: bool = False):
    inputs = keras.Input((16, 16, 3))
    if depthwise:
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="conv")(inputs)
    else:
        x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, use_bias=False, name="head")(x))
    model.get_layer("conv").trainable = not frozen
    return model


def test_forward_flops_are_the_textbook_count():
    spec = tf.TensorSpec([1, 16, 16, 3])
    cost = plans.model_cost(_conv_model(), spec, training=False)
    conv = 2 * 16 * 16 * 8 * (3 * 3 * 3)
    assert cost["dense_flops"] == conv + 2 * 8 * 10
    assert cost["depthwise_flops"] == 0
    depthwise = plans.model_cost(_conv_model(depthwise=True), spec, training=False)
    assert depthwise["depthwise_flops"] == 2 * 16 * 16 * 3 * 9
    assert cost["activation_bytes"] >= 16 * 16 * 8 * 4, "the conv output is an activation"
    assert cost["eager_bytes"] == 4 * (16 * 16 * 3 + 16 * 16 * 8 + 8 + 10), "every layer's output, eagerly"


def test_training_counts_backpropagation_only_where_gradients_flow():
    spec = tf.TensorSpec([1, 16, 16, 3])
    conv = 2 * 16 * 16 * 8 * 27
    trainable = plans.model_cost(_conv_model(), spec, training=True)
    frozen = plans.model_cost(_conv_model(frozen=True), spec, training=True)
    # Trainable conv: forward + gradient for its kernel (the input needs none) ≈ 2 × forward.
    assert 1.9 * conv < trainable["dense_flops"] < 2.2 * conv
    # A frozen conv is traced backwards too, but that part is pruned, as when the step runs.
    assert conv <= frozen["dense_flops"] < 1.1 * conv


def test_a_training_step_keeps_what_its_backward_pass_reads():
    def model(trainable: bool):
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", trainable=trainable)(inputs)
        x = keras.layers.Conv2D(4, 3, padding="same", trainable=trainable)(x)
        return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))

    spec = tf.TensorSpec([1, 16, 16, 3])
    trainable = plans.model_cost(model(True), spec, training=True)
    frozen = plans.model_cost(model(False), spec, training=True)
    assert trainable["kept_bytes"] >= 16 * 16 * 8 * 4, "the ReLU output, read by two gradients"
    assert frozen["kept_bytes"] <= 4 * 4, "only the pooled features, for the head's gradient"


def test_an_untraceable_input_gives_no_cost():
    assert plans.model_cost(_conv_model(), tf.TensorSpec([1, None, None, 3]), training=False) is None


# --------------------------------------------------------------------------- the recorder
@pytest.fixture
def recorder(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_OFFLINE", "0")
    rec = plans.Recorder({"report": str(tmp_path / "report.json"), "scale": 0.01, "min_per_class": 8,
                          "steps_per_epoch": 1, "costs": str(tmp_path / "costs.json")})  # fmt: skip
    rec.install()
    yield rec
    rec.uninstall()


def test_fit_runs_every_epoch_capped_to_one_step_and_counts_the_real_steps(recorder):
    x, y = np.random.rand(40, 16, 16, 3).astype("float32"), np.arange(40) % 10
    model = _conv_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    history = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.2, callbacks=[counter], verbose=0)
    assert len(history.history["loss"]) == 3, "every epoch runs"
    assert batches == [0, 0, 0], "one step an epoch"
    fit, evaluate = recorder.report["work"]
    assert (fit["kind"], fit["steps"], fit["batch"]) == ("fit", 3 * 4, 8)  # 32 training examples / 8
    assert (evaluate["kind"], evaluate["steps"]) == ("evaluate", 3 * 1)
    assert fit["optimizer_bytes"] > 0
    model.predict(x, batch_size=16, verbose=0)
    model(x[:5])
    assert [(w["kind"], w["steps"], w["batch"]) for w in recorder.report["work"][2:]] == [
        ("predict", 3, 16),
        ("call", 1, 5),
    ]
    assert keras.config.max_steps_per_epoch() is None, "the cap is lifted after the fit"


def test_predict_and_evaluate_run_one_step_count_the_real_ones_and_return_every_row(recorder):
    x, y = np.random.rand(40, 16, 16, 3).astype("float32"), np.arange(40) % 10
    model = _conv_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = []
    counter = keras.callbacks.LambdaCallback(on_predict_batch_end=lambda batch, logs: batches.append(batch))
    predictions = model.predict(x, batch_size=8, callbacks=[counter], verbose=0)
    assert batches == [0], "one step"
    assert predictions.shape == (40, 10), (
        "as many rows as the real predictions (host memory, the lesson's code)"
    )
    np.testing.assert_allclose(predictions[:8], model(x[:8]).numpy(), rtol=1e-5)
    from_dataset = model.predict(tf.data.Dataset.from_tensor_slices(x).batch(16), verbose=0)
    assert from_dataset.shape == (40, 10)
    model.evaluate(x, y, batch_size=8, verbose=0)
    assert [(w["kind"], w["steps"], w["batch"]) for w in recorder.report["work"] if w["kind"] != "call"] == [
        ("predict", 5, 8),
        ("predict", 3, 16),
        ("evaluate", 5, 8),
    ]
    assert keras.config.max_steps_per_epoch() is None


@pytest.mark.parametrize("as_arrays", [True, False])
def test_feature_extraction_runs_one_batch_and_keeps_the_real_labels(recorder, as_arrays):
    from tlcourse import train

    x, y = np.random.rand(40, 16, 16, 3).astype("float32"), np.arange(40) % 10
    base = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()]
    )
    data = (x, y) if as_arrays else tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    features = train.extract_features(base, data, batch_size=8, cache=False, verbose=0)
    assert features.features.shape == (40, 4) and features.features.dtype == np.float32
    np.testing.assert_array_equal(features.labels, y)
    np.testing.assert_allclose(features.features[:8], base(x[:8]).numpy(), rtol=1e-5)
    work = recorder.report["work"][0]  # then the direct call of the check above
    assert (work["kind"], work["steps"], work["batch"]) == ("predict", 5, 8)


def test_seeds_are_cut_short_and_the_work_of_their_loop_counts_as_the_real_count(recorder):
    from tlcourse import env

    recorder.config["max_seeds"] = 1
    recorder.uninstall()
    recorder.install()
    seeds = env.PROFILES["full"].seeds
    assert list(seeds) == [0] and seeds.real == (0, 1, 2)
    assert seeds[0] == 0 and list(seeds[1:]) == [1] and seeds[1:].real == (1, 2), "a slice still runs a seed"
    recorder.pre_run_cell()  # a new cell: list(seeds) above stood for a loop over the three seeds
    x = np.random.rand(8, 16, 16, 3).astype("float32")
    model = _conv_model()
    model.predict(x, verbose=0)
    for _ in seeds[1:]:
        model.predict(x, verbose=0)
    assert [w.get("repeat", 1.0) for w in recorder.report["work"]] == [1.0, 2.0]
    for _ in seeds:
        model.predict(x, verbose=0)
    assert recorder.report["work"][-1]["repeat"] == 3.0
    recorder.pre_run_cell()
    model.predict(x, verbose=0)
    assert "repeat" not in recorder.report["work"][-1], "a new cell starts at one"


def test_a_subclassed_model_keras_never_marks_built_is_recorded(recorder):
    """Like lesson 06's two-domain model: its own train_step, its layers built, itself never `built`."""

    class TwoHeads(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = keras.losses.sparse_categorical_crossentropy(y, self.dense(x), from_logits=True)
            grads = tape.gradient(loss, self.dense.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.dense.trainable_variables, strict=True))
            return {"loss": tf.reduce_mean(loss)}

    model = TwoHeads()
    model.dense.build((None, 4))
    assert not model.built  # count_params() raises on it
    name = recorder._signature(model, tf.TensorSpec([None, 4]), training=True)
    assert recorder.report["models"][name]["parameters"] == 4 * 3 + 3


def test_epochs_can_be_capped_and_the_history_still_covers_every_epoch(recorder):
    recorder.config["max_epochs"] = 2
    x, y = np.random.rand(24, 16, 16, 3).astype("float32"), np.arange(24) % 10
    model = _conv_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen = []
    counter = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    history = model.fit(x, y, batch_size=8, epochs=5, callbacks=[counter], verbose=0)
    assert seen == [0, 1], "two epochs run"
    assert history.epoch == [0, 1, 2, 3, 4] and len(history.history["loss"]) == 5
    assert history.history["loss"][2:] == [history.history["loss"][1]] * 3
    assert recorder.report["work"][0]["steps"] == 5 * 3, "the steps of all five epochs are counted"


def test_steps_compute_on_the_first_rows_of_real_size_batches(recorder):
    """A CPU has no fast float16: the dry run's steps compute on 2 rows, the batches and counts stay real."""
    recorder.config["compute_batch"] = 2
    seen = []

    class Spy(keras.Model):
        def train_step(self, data):
            seen.append(("train", int(data[0].shape[0])))
            return super().train_step(data)

        def predict_step(self, data):
            seen.append(("predict", int(tf.nest.flatten(data)[0].shape[0])))
            return super().predict_step(data)

    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = Spy(inputs, keras.layers.Dense(10)(pooled))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.rand(40, 16, 16, 3).astype("float32"), np.arange(40) % 10
    model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    predictions = model.predict(x, batch_size=8, verbose=0)
    assert ("train", 2) in seen and ("predict", 2) in seen and not any(n == 8 for _, n in seen)
    assert predictions.shape == (40, 10), "as many rows as the real predictions"
    filtered = (
        tf.data.Dataset.from_tensor_slices(x).filter(lambda image: True).batch(8)
    )  # cardinality unknown
    assert model.predict(filtered, verbose=0).shape == (40, 10), "also when the split's size is unknown"
    fit, predict = recorder.report["work"][:2]
    assert (fit["batch"], fit["steps"], predict["batch"]) == (8, 3 * 5, 8), "counted at the real batch size"
    # A direct call on a batch computes 2 rows and repeats them; gradients still flow through it.
    with tf.GradientTape() as tape:
        out = model(tf.constant(x[:6]))
        loss = tf.reduce_sum(out)
    assert (
        out.shape == (6, 10)
        and np.allclose(out[2], out[0], rtol=0.006)
        and not np.array_equal(out[2], out[0])
    )
    assert all(g is not None for g in tape.gradient(loss, model.trainable_variables))


def test_fit_on_a_dataset_reads_it_whole_first_so_that_its_cache_fills(recorder):
    seen = tf.Variable(0, dtype=tf.int64)

    def example(i):
        with tf.control_dependencies([seen.assign_add(1)]):
            return tf.ones([16, 16, 3]), i % 10

    ds = tf.data.Dataset.range(50).map(example)
    model = _conv_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(ds.cache().batch(16), epochs=2, verbose=0)
    assert int(seen.numpy()) == 50, "read once, then served from the cache"
    assert recorder.report["work"][0]["steps"] == 2 * 4


def test_loads_are_recorded_with_their_real_sizes(recorder):
    from types import SimpleNamespace

    from tlcourse import env

    data.load("beans", image_size=32, course=SimpleNamespace(budget=env.PROFILES["cpu"]))
    (entry,) = recorder.report["loads"]
    assert entry["real_sizes"] == {"train": 900, "val": 133, "test": 128}  # 300 a class; val, test: all
    assert sum(entry["sizes"].values()) < 100
    assert recorder.report["errors"] == []
    recorder.flush()
    assert json.loads(Path(recorder.report_path).read_text())["downloads"][0]["name"] == "beans"


# --------------------------------------------------------------------------- plans from two runs
def test_extrapolation_is_a_line_through_the_two_runs():
    assert plans._extrapolate(1.0, 2.0, 100, 200, 1000) == pytest.approx(10.0)
    assert plans._extrapolate(1.0, 1.02, 100, 200, 1000, noise=0.05) == 1.02, "flat within noise"
    assert plans._extrapolate(2.0, 1.0, 100, 200, 1000) == 2.0, "memory does not shrink with more data"
    assert plans._extrapolate(1.0, 3.0, 100, 100, 1000) == 3.0, "no slope from equal sizes"


def _report(scale: float, *, hwm: list[float], steps: int, pretend_t4: bool = True) -> dict:
    model = {"parameters": 1_000_000, "trainable": 1_000_000, "policy": "mixed_float16",
             "cost": {"dense_flops": 1e9, "depthwise_flops": 0.0, "kept_bytes": 1e7, "largest_bytes": 1e6}}  # fmt: skip
    n = int(1000 * scale)
    return {
        "config": {"scale": scale, "pretend_t4": pretend_t4},
        "cells": [
            {"cell": i + 1, "hwm_gb": h, "start_rss_gb": 0.5, "activations_gb": 0.0}
            for i, h in enumerate(hwm)
        ],
        "loads": [{"name": "x", "sizes": {"train": n}, "real_sizes": {"train": 1000}}],
        "work": [{"kind": "fit", "model": "m", "steps": steps, "batch": 64, "optimizer_bytes": 8_000_000}],
        "models": {"m": model},
        "downloads": [{"kind": "tfds", "name": "beans", "url": "u", "bytes": 100 * 2**20}],
        "reads": {"beans": n},
        "errors": [],
    }


def test_a_lesson_plan_from_two_runs():
    small = _report(0.1, hwm=[1.0, 1.5], steps=10)  # 100 examples
    large = _report(0.2, hwm=[1.0, 2.0], steps=20)  # 200 examples
    row = plans.lesson_plan("03", "full", small, large)
    assert row["host_ram_gb_measured"] == 2.0
    assert row["host_ram_gb_planned"] == pytest.approx(2.0 + 0.5 / 100 * 800, abs=0.01)  # cell 2 at 1000
    assert row["downloads_mb"] == 100
    f = plans.figures()
    step = 64 * 1e9 / (f["dense_tflops"]["mixed_float16"] * 1e12) + f["step_overhead_ms"]["train"] / 1000
    assert row["t4_minutes_by_part"]["compute"] == pytest.approx(
        100 * step / 60, abs=0.01
    )  # 100 steps at 1000
    expected_device = (4e6 + 4e6 + 8e6 + (1e7 + 2e6) * 64) * f["device_overhead_gb"]["factor"] / 2**30
    assert row["device_ram_gb_planned"] == pytest.approx(
        expected_device + f["device_overhead_gb"]["value"], abs=0.01
    )
    assert set(row) >= {"lesson", "profile", "status", "host_ram_gb_measured", "host_ram_gb_planned",
                        "device_ram_gb_planned", "t4_minutes_planned", "downloads_mb"}  # fmt: skip


def test_a_cell_grows_with_the_data_loaded_so_far_not_with_what_later_cells_load():
    """Lesson 02: a cell on a small dataset grew a little; a large dataset loaded in a later cell must not scale it."""

    def report(scale, hwm):
        out = _report(scale, hwm=hwm, steps=10)
        out["loads"][0]["cell"] = 1  # 100 or 200 examples of 1000, loaded in cell 1
        out["loads"].append({"name": "big", "sizes": {"train": int(10_000 * scale)}, "real_sizes": {"train": 100_000},
                             "cell": 2})  # fmt: skip
        return out

    row = plans.lesson_plan("02", "full", report(0.1, [1.5, 1.0]), report(0.2, [2.0, 1.0]))  # cell 2 flat
    assert row["host_ram_gb_planned"] == pytest.approx(2.0 + 0.5 / 100 * 800, abs=0.01), "cell 1 at its 1000"


def test_a_whole_dataset_fed_as_one_batch_grows_with_the_data_and_a_filled_batch_does_not():
    def run(n, test_batch, whole_batch):
        return {"work": [{"kind": "call", "model": "m", "steps": 1, "batch": test_batch, "cell": 7},
                         {"kind": "call", "model": "m", "steps": 1, "batch": whole_batch, "cell": 9}]}  # fmt: skip

    small, large = run(100, 47, 600), run(200, 64, 1200)  # chunks of 64 (47: all the small test set had)
    batches = [batch for _, batch in plans._real_batches(small, large, 100, 200, 3000)]
    assert batches == [64, 18000]
    small, large = run(100, 23, 600), run(200, 47, 1200)  # chunks of 64 that neither run filled
    assert [batch for _, batch in plans._real_batches(small, large, 100, 200, 3000)] == [47, 18000]
    # Lesson 06's `x_target[:1024]`: grew with the data until the slice capped it; not a whole split.
    small, large = run(100, 47, 600), run(200, 64, 1024)
    small["loads"], large["loads"] = [{"sizes": {"train": 600}}], [{"sizes": {"train": 1200}}]
    assert [batch for _, batch in plans._real_batches(small, large, 100, 200, 3000)] == [64, 1024]
    large["work"][1]["batch"] = 1200  # the whole split
    assert [batch for _, batch in plans._real_batches(small, large, 100, 200, 3000)] == [64, 18000]


def test_on_a_laptop_the_activations_count_as_host_memory():
    small = _report(0.1, hwm=[1.0, 1.5], steps=10, pretend_t4=False)
    large = _report(0.2, hwm=[1.0, 2.0], steps=20, pretend_t4=False)
    for report in (small, large):
        report["work"][0]["cell"] = 2
    row = plans.lesson_plan("03", "cpu", small, large)
    activations = (1e7 + 2e6) * 64 / 2**30  # kept + two largest, at the fit's batch of 64
    on_t4 = plans.lesson_plan("03", "full", {**small, "config": {"pretend_t4": True}},
                              {**large, "config": {"pretend_t4": True}})  # fmt: skip
    assert row["host_ram_gb_planned"] == pytest.approx(on_t4["host_ram_gb_planned"] + activations, abs=0.02)


def test_limits():
    row = {
        "lesson": "09",
        "profile": "full",
        "status": "ok",
        "host_ram_gb_planned": 23.0,
        "device_ram_gb_planned": 2,
    }
    assert plans.within_limits(row) == ["host 23.0 GB > 10.0 GB"]
    assert plans.within_limits({**row, "profile": "cpu", "host_ram_gb_planned": 5.0}) == []


def test_every_figure_names_its_source():
    figures = plans.figures()
    assert all("source" in value for key, value in figures.items() if key != "about")


def test_write_plans_merges_by_lesson_and_profile(tmp_path):
    path = tmp_path / "plan.json"
    plans.write_plans(
        [{"lesson": "03", "profile": "full", "x": 1}, {"lesson": "03", "profile": "cpu", "x": 2}], path
    )
    plans.write_plans([{"lesson": "03", "profile": "full", "x": 3}], path)
    assert json.loads(path.read_text()) == [{"lesson": "03", "profile": "cpu", "x": 2},
                                            {"lesson": "03", "profile": "full", "x": 3}]  # fmt: skip


# --------------------------------------------------------------------------- the plans of the dry runs
def _planned_rows():
    if not PLAN_FILE or not Path(PLAN_FILE).is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason="no plans: `make dry-run` makes them"))]
    rows = json.loads(Path(PLAN_FILE).read_text(encoding="utf-8"))
    return [pytest.param(row, id=f"{row['lesson']}-{row['profile']}") for row in rows]


@pytest.mark.parametrize("row", _planned_rows())
def test_each_lesson_fits_its_profile_by_plan(row):
    """full: host ≤ 10 GB (Colab has ≈12.7 GB), device ≤ 12 GB (a T4 has 15 GB); cpu: host ≤ 6 GB."""
    assert plans.within_limits(row) == [], json.dumps(row, indent=1)


def test_the_stand_in_knows_what_the_plans_load():
    assert set(standin.catalogue()) == set(data.TFDS_DATASETS)


def test_the_plan_table_flags_what_colab_cannot_hold_and_what_exceeds_the_margin(tmp_path):
    def row(lesson, profile, host, device, **extra):
        return {"lesson": lesson, "profile": profile, "status": "ok", "host_ram_gb_measured": 1.0,
                "host_ram_gb_planned": host, "device_ram_gb_planned": device, "t4_minutes_planned": 3.0,
                "downloads_mb": 10.0, **extra}  # fmt: skip

    rows = [row("05", "full", 13.5, 2.0), row("03", "full", 11.0, 16.0, dry_run_s={"wall": 90, "cpu": 40}),
            row("04", "full", 2.0, 12.5), row("03", "cpu", 7.0, 0.0), {**row("09", "full", 1, 1), "status": "x | y"}]  # fmt: skip
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(rows))
    page = plans.write_markdown(plan_file, tmp_path / "plans.md").read_text(encoding="utf-8")
    table = [line for line in page.splitlines() if line.startswith("| 0")]
    assert [line.split(" | ")[:2] for line in table] == [
        ["| 03", "full"], ["| 04", "full"], ["| 05", "full"], ["| 09", "full"], ["| 03", "cpu"]
    ]  # fmt: skip
    assert "| **11.0** ⚠️ margin | **16.0** ⚠️ Colab |" in table[0] and table[0].endswith("| 90 / 40 |")
    assert "| 2.0 | **12.5** ⚠️ margin |" in table[1]
    assert "| **13.5** ⚠️ Colab |" in table[2] and "failed: x / y" in table[3]
    assert "| **7.0** ⚠️ margin | 0.0 |" in table[4], "a laptop has no Colab limit, only the 6 GB margin"
    assert "took 90 s of wall time and 40 s of CPU time" in page
    assert plans.markdown(rows) == page, "the same plans give the same page"
    # A dry run of one lesson later replaces its row and keeps the others, totals included.
    new_04 = row("04", "full", 3.0, 4.0, dry_run_s={"wall": 10, "cpu": 5})
    plan_file.write_text(json.dumps([new_04]))
    again = plans.write_markdown(plan_file, tmp_path / "plans.md").read_text(encoding="utf-8")
    assert again == plans.markdown([*(r for r in rows if r["lesson"] != "04"), new_04])
    assert "took 100 s of wall time and 45 s of CPU time" in again
