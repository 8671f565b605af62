"""``python -m bench``: measure tlcourse's speed ratios on this machine and write bench/RESULTS.md.

1. Feature caching vs. the TF tutorial's recipe (frozen base inside the model, ``model.fit`` E epochs).
2. Input pipeline: images/s training from a folder of JPEGs ÷ images/s on in-memory tensors, for
   the course's folder recipe (Keras's ``image_dataset_from_directory`` + cache, then shuffle, batch and
   prefetch), the same without cache, and the seeds' per-image Python generator (ImageDataGenerator's
   style).
3. Precision and compilation: mixed_bfloat16 (mixed_float16 on a GPU) vs float32, jit_compile on/off.
4. CI cost per lesson, read from what ``make test`` left in build/.
6. Seeding between runs (5 is ``python -m bench.grading``): a compiled model's next run after ``keras.utils.set_random_seed`` ÷ after
   ``tlcourse.reseed`` (the first empties TensorFlow's cache of instantiated functions).

Options: ``--reps N`` (default 3), ``--quick`` (smaller sizes, for a smoke run), ``--only 1,6``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

# The benchmarks use the offline stand-ins: the same data everywhere, figures comparable across machines.
os.environ.setdefault("TLCOURSE_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tlcourse  # noqa: E402
from tlcourse import train  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"


# --------------------------------------------------------------------------- helpers
def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def median(values) -> float:
    return float(statistics.median(values))


def machine() -> dict:
    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        text = Path("/proc/cpuinfo").read_text()
        models = [
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")
        ]
        flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
        info["cpu"] = models[0] if models else info["cpu"]
        info["avx512_bf16"] = "avx512_bf16" in flags
        info["amx_bf16"] = "amx_bf16" in flags
    except OSError:
        pass
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["ram_gib"] = round(int(mem) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        pass
    info["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    return info


def fashion_arrays(image_size: int, train_per_class: int, val_per_class: int):
    """Fashion-MNIST (RGB uint8) through tlcourse.data, subsampled per class, then resized.

    Only the chosen images are resized (with tlcourse.data's own resize), so a large
    ``image_size`` does not cost a resize of the whole profile-sized split.
    """
    from tlcourse import data

    bundle = data.load("fashion_mnist")
    (x, y), (xv, yv) = bundle.arrays("train"), bundle.arrays("val")
    resize = data._resizer(image_size)

    def per_class(xs, ys, k):
        keep = np.concatenate([np.flatnonzero(ys == c)[:k] for c in np.unique(ys)])
        found = [int(np.sum(ys[keep] == c)) for c in np.unique(ys)]
        if min(found) < k:
            raise RuntimeError(f"only {min(found)} images per class available, {k} asked")
        resized, labels = resize(tf.constant(xs[keep]), ys[keep])
        return resized.numpy(), labels

    return per_class(x, y, train_per_class), per_class(xv, yv, val_per_class), bundle.class_names


def make_base(image_size: int):
    """Offline EfficientNet-Lite0 (ImageNet weights) if it can be had, else MobileNetV2 with random weights."""
    from tlcourse import models

    try:
        base = models.backbone("efficientnet_lite0", input_shape=(image_size, image_size, 3))
        return base, "EfficientNet-Lite0 (ImageNet weights, offline)"
    except Exception as exc:  # any failure: the benchmark still runs on a stand-in base
        log(f"Lite0 unavailable ({type(exc).__name__}: {exc}); using MobileNetV2(weights=None)")
    base = models.backbone("mobilenet_v2", weights=None, input_shape=(image_size, image_size, 3))
    return base, "MobileNetV2 (random weights: Lite0 unavailable)"


# --------------------------------------------------------------------------- 1. feature caching
FEATURE_CACHING = {
    # The TF tutorial's workload (cats_vs_dogs: ~2000 train images at 160 px) scaled to fit the
    # bench's time budget; Fashion-MNIST is tlcourse's offline stand-in for cats_vs_dogs.
    "full": {"image_size": 160, "train_per_class": 120, "val_per_class": 30},
    "quick": {"image_size": 96, "train_per_class": 10, "val_per_class": 5},
}


def bench_feature_caching(reps: int, quick: bool) -> dict:
    """tlcourse's extract-once + fit_head vs. the tutorial's frozen base inside ``model.fit``.

    Same base object, images, resolution, head (dropout 0.2 + Dense, Adam 1e-3, batch 32), seed
    and E; both validate on the same images after every epoch. Each side's time covers all it
    needs, cold: the tutorial builds, compiles (traces) and fits its model; tlcourse extracts the
    train and val features with an empty feature cache (memory and disk) and a base that was
    never traced for extraction, then trains the head as a lesson does (no run folder: checkpoints
    are off unless asked for). An untimed call of the base (eager, then in a throwaway graph) first pays the
    process's one-time start-up (oneDNN kernels, graph runtime), which neither contender should
    carry in rep 0. Besides wall time, each side's process CPU time is recorded: on a machine
    shared with other work it is the steadier measure of the work each side does.
    """
    epochs, batch = 10, 32
    setup = FEATURE_CACHING["quick" if quick else "full"]
    size = setup["image_size"]
    (x, y), (xv, yv), _ = fashion_arrays(size, setup["train_per_class"], setup["val_per_class"])
    base, base_name = make_base(size)
    num_classes = int(y.max()) + 1
    log(f"1. feature caching: {base_name}, {len(x)} train + {len(xv)} val images at {size}px, E={epochs}")
    base(x[:batch], training=False)  # process warm-up, untimed (see the docstring)
    tf.function(lambda images: base(images, training=False))(x[:batch])
    rows = []
    for rep in range(reps):
        timings = {}

        def tutorial(rep=rep, timings=timings):
            start, cpu = time.perf_counter(), time.process_time()
            keras.utils.set_random_seed(rep)
            inputs = keras.Input((size, size, 3))
            h = base(inputs, training=False)
            h = keras.layers.Dropout(0.2)(h)
            model = keras.Model(inputs, keras.layers.Dense(num_classes, dtype="float32")(h))
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
                jit_compile=False,
            )
            # The tutorial's tf.data input pipeline: cache, shuffle, batch, prefetch.
            seed = int(np.random.randint(2**31 - 1))
            train_ds = tf.data.Dataset.from_tensor_slices((x, y)).cache().shuffle(len(x), seed=seed)
            train_ds = train_ds.batch(batch).prefetch(tf.data.AUTOTUNE)
            val_ds = (
                tf.data.Dataset.from_tensor_slices((xv, yv)).cache().batch(batch).prefetch(tf.data.AUTOTUNE)
            )
            history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            timings["tutorial"] = (seconds, cpu, history.history["val_accuracy"][-1])

        def cached(rep=rep, timings=timings):
            # Cold: no traced extraction function, no features in memory or on disk.
            train._EMBEDDERS.clear()
            train._FEATURE_CACHE.clear()
            stamp = f"{rep}-{time.time_ns()}"
            start, cpu = time.perf_counter(), time.process_time()
            feats = train.extract_features(base, (x, y), key=f"bench1-train-{stamp}", verbose=0)
            vfeats = train.extract_features(base, (xv, yv), key=f"bench1-val-{stamp}", verbose=0)
            _, history = train.fit_head(
                feats,
                val=vfeats,
                epochs=epochs,
                batch_size=batch,
                learning_rate=1e-3,
                dropout=0.2,
                seed=rep,
                verbose=0,
            )
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            timings["cached"] = (seconds, cpu, history.final("val_accuracy"))
            for key in (feats.key, vfeats.key):  # leave no bench features in the user's cache
                (tlcourse.env.cache_dir("features") / f"{base.name}-{key}.npz").unlink(missing_ok=True)
                train._FEATURE_CACHE.pop(key, None)

        for contender in (tutorial, cached) if rep % 2 == 0 else (cached, tutorial):
            contender()
        (t_tut, cpu_tut, acc_tut), (t_cache, cpu_cache, acc_cache) = timings["tutorial"], timings["cached"]
        rows.append(
            {
                "tutorial_s": t_tut,
                "cached_s": t_cache,
                "ratio": t_tut / t_cache,
                "tutorial_cpu_s": cpu_tut,
                "cached_cpu_s": cpu_cache,
                "cpu_ratio": cpu_tut / cpu_cache,
                "acc_tutorial": acc_tut,
                "acc_cached": acc_cache,
                "load": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None,
            }
        )
        log(
            f"   rep {rep}: tutorial {t_tut:.1f} s (acc {acc_tut:.3f}), "
            f"cached {t_cache:.1f} s (acc {acc_cache:.3f}) → {t_tut / t_cache:.2f}× "
            f"(CPU time {cpu_tut / cpu_cache:.2f}×, load {rows[-1]['load']})"
        )
    ratio = median([r["ratio"] for r in rows])
    # Signed: positive when the cached head is the more accurate one.
    gap = median([(r["acc_cached"] - r["acc_tutorial"]) * 100 for r in rows])
    return {
        "base": base_name,
        "epochs": epochs,
        "batch_size": batch,
        "image_size": size,
        "n_train": len(x),
        "n_val": len(xv),
        "rows": rows,
        "ratio": ratio,
        "cpu_ratio": median([r["cpu_ratio"] for r in rows]),
        "goal": 0.8 * epochs,
        "accuracy_gap_points": gap,
        "acc_tutorial": median([r["acc_tutorial"] for r in rows]),
        "acc_cached": median([r["acc_cached"] for r in rows]),
        "passed": ratio >= 0.8 * epochs and gap >= -1.0,
    }


# --------------------------------------------------------------------------- 2. input pipeline
class PerImageGenerator(keras.utils.PyDataset):
    """The seeds' recipe: ImageDataGenerator.flow_from_directory in spirit — PIL opens each file per batch."""

    def __init__(self, files, labels, image_size, batch_size=32, seed=0):
        super().__init__()
        self.files, self.labels = np.asarray(files), np.asarray(labels)
        self.image_size, self.batch_size = image_size, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.files))

    def __len__(self):
        return int(np.ceil(len(self.files) / self.batch_size))

    def __getitem__(self, index):
        from PIL import Image

        chosen = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        images = []
        for i in chosen:
            with Image.open(self.files[i]) as image:
                image = image.convert("RGB").resize((self.image_size, self.image_size), Image.BILINEAR)
                images.append(np.asarray(image, dtype=np.float32))
        return np.stack(images), self.labels[chosen]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.files))


def write_jpeg_folder(root: Path, per_class: int) -> tuple[list[str], np.ndarray]:
    from PIL import Image

    from tlcourse import data

    bundle = data.load("fashion_mnist")
    x, y = bundle.arrays("train")
    files, labels = [], []
    for c, name in enumerate(bundle.class_names):
        folder = root / name.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for j, i in enumerate(np.flatnonzero(y == c)[:per_class]):
            path = folder / f"{j:05d}.jpg"
            Image.fromarray(x[i]).save(path, quality=90)
            files.append(str(path))
            labels.append(c)
    return files, np.asarray(labels, np.int64)


COURSE_RECIPE = "image_dataset_from_directory + cache, then shuffle, batch, prefetch (the course's recipe)"


def bench_input_pipeline(reps: int, quick: bool) -> dict:
    """Images/s training from a folder of JPEGs ÷ images/s from in-memory tensors, side by side.

    Every contender trains the same small CNN (float32 input, train step traced beforehand) for the
    same epochs; its clock runs from building its input pipeline (listing the folder included) to the
    end of training. CPU time (all threads) is recorded too: steadier than wall time on a shared machine.
    """
    from PIL import Image

    from tlcourse import models

    size, epochs, batch = 48, 2, 32
    per_class = 20 if quick else 100  # 1,000 images: each fit lasts long enough to time on a shared machine
    work = Path(tempfile.mkdtemp(prefix="tlcourse-bench-"))
    files, labels = write_jpeg_folder(work / "jpegs", per_class)
    n = len(files)
    log(f"2. input pipeline: {n} JPEGs ({size}px after resize), small_cnn, {epochs} epochs, batch {batch}")
    in_memory = np.stack(
        [np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)) for f in files]
    ).astype(np.float32)

    def model_for():
        keras.utils.set_random_seed(0)
        model = models.small_cnn((size, size, 3), 10)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        # Trace the train step outside the timing: every contender pays it alike otherwise.
        model.fit(
            np.zeros((batch, size, size, 3), np.float32), np.zeros(batch, np.int64), epochs=1, verbose=0
        )
        return model

    def timed(make_input):
        """(images/s, images per CPU second), from building the input to the end of training."""
        model = model_for()
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(make_input(), epochs=epochs, verbose=0)
        return n * epochs / (time.perf_counter() - start), n * epochs / (time.process_time() - cpu)

    def from_directory(batch_size=batch):
        return keras.utils.image_dataset_from_directory(
            work / "jpegs",
            image_size=(size, size),
            batch_size=batch_size,
            shuffle=True,
            seed=0,
            verbose=False,
        )

    def course_recipe():
        """Lesson 10's `from_folder`: single decoded images cached (filled by one complete pass), then a
        new order every epoch, batches, prefetch."""
        images = from_directory(batch_size=None).cache()
        count = sum(1 for _ in images)
        return images.shuffle(count, seed=0).batch(batch).prefetch(tf.data.AUTOTUNE)

    contenders = {
        "in-memory tensors": lambda: timed(
            lambda: (
                tf.data.Dataset.from_tensor_slices((in_memory, labels))
                .shuffle(n, seed=0)
                .batch(batch)
                .prefetch(tf.data.AUTOTUNE)
            )
        ),
        COURSE_RECIPE: lambda: timed(course_recipe),
        "image_dataset_from_directory (no cache)": lambda: timed(from_directory),
        "per-image Python generator": lambda: timed(lambda: PerImageGenerator(files, labels, size, batch)),
    }
    per_rep, loads = [], []
    for rep in range(reps):
        names = list(contenders) if rep % 2 == 0 else list(contenders)[::-1]
        per_rep.append({name: contenders[name]() for name in names})
        loads.append(round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None)
        shown = ", ".join(f"{k} {v[0]:.0f} img/s" for k, v in per_rep[-1].items())
        log(f"   rep {rep} (load {loads[-1]}): {shown}")
    out = {"n_images": n, "image_size": size, "epochs": epochs, "reps": reps, "contenders": {}}
    for name in contenders:
        out["contenders"][name] = {
            "images_per_s": median([r[name][0] for r in per_rep]),
            "ratio": median([r[name][0] / r["in-memory tensors"][0] for r in per_rep]),
            "cpu_ratio": median([r[name][1] / r["in-memory tensors"][1] for r in per_rep]),
        }
    out["loads"] = loads
    out["ratio"] = out["contenders"][COURSE_RECIPE]["ratio"]
    out["goal"] = 0.9
    out["passed"] = out["ratio"] >= 0.9
    shutil.rmtree(work, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- 3. precision and jit
def bench_precision(reps: int, quick: bool) -> dict:
    from tlcourse import models

    size, batch, steps = 64, 32, 8 if quick else 16
    gpu = bool(tf.config.list_physical_devices("GPU"))
    low = "mixed_float16" if gpu else "mixed_bfloat16"
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(batch * steps, size, size, 3)).astype(np.uint8)
    y = rng.integers(0, 10, size=batch * steps).astype(np.int64)
    builders = {
        "small_cnn": lambda: models.small_cnn((size, size, 3), 10),
        "mobilenet_v2 (all layers trainable)": lambda: models.classifier(
            models.unfreeze(models.backbone("mobilenet_v2", weights=None, input_shape=(size, size, 3))), 10
        ),
    }
    configs = [("float32", False), ("float32", True), (low, False), (low, True)]
    # XLA compiles for minutes on a CPU for the larger model, and measured far slower: no jit there.
    model_configs = {"small_cnn": configs, "mobilenet_v2 (all layers trainable)": configs[::2]}
    log(f"3. precision/jit: {list(builders)}, {steps} steps of {batch} at {size}px; {configs}")
    results: dict = {"low_precision": low, "models": {}}
    for model_name, build in builders.items():
        per_config: dict = {c: [] for c in configs}
        skipped: dict = {}
        chosen = model_configs[model_name]
        per_config = {c: [] for c in chosen}
        for rep in range(max(1, reps - 1)):
            for policy, jit in chosen if rep % 2 == 0 else chosen[::-1]:
                if (policy, jit) in skipped:
                    continue
                try:
                    keras.mixed_precision.set_global_policy(policy)
                    keras.utils.set_random_seed(0)
                    model = build()
                    model.compile(
                        optimizer=keras.optimizers.Adam(1e-3),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        jit_compile=jit,
                    )
                    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)  # trace/compile
                    # The larger model gets half the steps: the whole `python -m bench` must stay ≤ 10 min.
                    count = len(x) if model_name == "small_cnn" else len(x) // 2
                    start = time.perf_counter()
                    model.fit(x[:count], y[:count], batch_size=batch, epochs=1, verbose=0, shuffle=False)
                    per_config[(policy, jit)].append(count / (time.perf_counter() - start))
                except Exception as exc:  # unsupported on this machine: skip that configuration cleanly
                    skipped[(policy, jit)] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                    log(f"   {model_name} {policy} jit={jit} skipped: {skipped[(policy, jit)]}")
                finally:
                    keras.mixed_precision.set_global_policy("float32")
        speeds = {f"{p}{' + jit' if j else ''}": median(v) for (p, j), v in per_config.items() if v}
        base = speeds.get("float32")
        entry = {
            "images_per_s": speeds,
            "skipped": {f"{p}{' + jit' if j else ''}": m for (p, j), m in skipped.items()},
        }
        if base:
            entry["speedup_vs_float32"] = {k: v / base for k, v in speeds.items()}
        results["models"][model_name] = entry
        log(f"   {model_name}: " + ", ".join(f"{k} {v:.0f} img/s" for k, v in speeds.items()))
    return results


# --------------------------------------------------------------------------- 6. seeding between runs
def bench_reseed(reps: int, quick: bool) -> dict:
    """A short run after ``keras.utils.set_random_seed`` ÷ the same run after ``tlcourse.reseed``.

    Lessons compile a model once and train it again for each seed. ``set_random_seed`` ends with
    ``tf.random.set_seed``, which empties TensorFlow's cache of instantiated functions, so the next run
    prepares its training step again; ``reseed`` sets the same seeds and keeps it. Both give the same
    weights (checked here on the trained weights of every repetition).
    """
    from tlcourse import models

    size, batch, steps = 64, 16, 2 if quick else 4
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(batch * steps, size, size, 3)).astype("float32")
    y = rng.integers(0, 10, size=batch * steps).astype("int64")
    builders = {
        "small_cnn": lambda: models.small_cnn((size, size, 3), 10),
        "mobilenet_v2 (all layers trainable)": lambda: models.classifier(
            models.unfreeze(models.backbone("mobilenet_v2", weights=None, input_shape=(size, size, 3))), 10
        ),
    }
    seedings = {
        "keras.utils.set_random_seed": keras.utils.set_random_seed,
        "tlcourse.reseed": tlcourse.reseed,
    }
    log(f"6. seeding: {list(builders)}, one epoch of {steps} steps of {batch} at {size}px after each seeding")
    results: dict = {"steps": steps, "batch": batch, "image_size": size, "models": {}}
    for model_name, build in builders.items():
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        start_weights = model.get_weights()
        start_variables = [variable.numpy() for variable in model.variables]
        batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
        model.fit(batches, epochs=1, shuffle=False, verbose=0)  # trace once, untimed
        seconds: dict = {name: [] for name in seedings}
        same = True
        for rep in range(max(reps, 3)):
            order = list(seedings.items()) if rep % 2 == 0 else list(seedings.items())[::-1]
            trained = []
            for name, seeding in order:
                tlcourse.adapt.restart(model, start_weights)  # the same weights, a fresh optimizer ...
                for variable, value in zip(model.variables, start_variables, strict=True):
                    variable.assign(value)  # ... and dropout's seed state as it was
                seeding(rep)
                started = time.perf_counter()
                model.fit(batches, epochs=1, shuffle=False, verbose=0)
                seconds[name].append(time.perf_counter() - started)
                trained.append(model.get_weights())
            same = same and all(np.array_equal(a, b) for a, b in zip(*trained, strict=True))
        ratios = [
            a / b
            for a, b in zip(seconds["keras.utils.set_random_seed"], seconds["tlcourse.reseed"], strict=True)
        ]
        results["models"][model_name] = {
            "seconds": {name: median(values) for name, values in seconds.items()},
            "ratio": median(ratios),
            "same_weights": same,
        }
        log(f"   {model_name}: {median(ratios):.1f}× ({seconds}); same weights: {same}")
    return results


# --------------------------------------------------------------------------- 4. CI cost per lesson
def bench_ci_cost() -> dict:
    """Seconds per lesson notebook in the ci profile, from what `make test` left in build/."""
    build = ROOT / "build"
    per_notebook: dict[str, float] = {}
    source = None
    for name in ("timings.json", "durations.json", "records/timings.json"):
        path = build / name
        if path.is_file():
            try:
                loaded = json.loads(path.read_text())
                per_notebook = {str(k): float(v) for k, v in loaded.items() if isinstance(v, (int, float))}
                source = str(path.relative_to(ROOT))
                break
            except (OSError, ValueError):
                continue
    if not per_notebook:
        for path in sorted(build.glob("**/*.xml")) if build.is_dir() else []:
            try:
                tree = ET.parse(path)
            except (ET.ParseError, OSError):
                continue
            for case in tree.iter("testcase"):
                # nbval's items (one per cell) have the notebook as their class; tests that merely take a
                # notebook's path as a parameter do not run it.
                notebook = case.get("classname", "")
                if notebook.endswith(".ipynb"):
                    per_notebook[notebook] = per_notebook.get(notebook, 0.0) + float(case.get("time", 0) or 0)
            if per_notebook:
                source = str(path.relative_to(ROOT))
                break
    if not per_notebook:
        return {
            "available": False,
            "message": "no timings found in build/: run `make test` first "
            "(with pytest's --junitxml=build/junit.xml, or a build/timings.json of notebook → seconds).",
        }
    return {
        "available": True,
        "source": source,
        "seconds": dict(sorted(per_notebook.items())),
        "over_60s": [k for k, v in per_notebook.items() if v > 60],
        "goal_s": 60,
    }


# --------------------------------------------------------------------------- report
def _not_measured(result) -> str:
    return "Not run this time (see `--only`)." if result is None else f"Skipped: {result}"


def fmt_ratio(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def write_results(info: dict, results: dict, total_s: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` (`make bench`). Ratios are measured side by side in one run "
        "(contenders alternate within each repetition); medians over the repetitions.",
        "",
        "## Machine",
        "",
    ]
    for key, value in info.items():
        lines.append(f"- **{key}**: {value}")
    lines += ["", f"Whole run: {total_s:.0f} s.", ""]
    load = info.get("load_average_at_start")
    if load and info.get("cores") and load[0] > info["cores"]:
        lines += [
            f"⚠️ The machine was shared (load average {load[0]:.1f} on {info['cores']} cores at the start): "
            "absolute times are inflated and noisy; the ratios are side by side, but still noisier "
            "than on an idle machine.",
            "",
        ]
    lines += [
        "Ratios are the median of the per-repetition ratios; images/s columns are medians of their own.",
        "",
    ]

    r1 = results.get("1")
    lines += ["## 1. Feature caching vs. the TF tutorial's recipe", ""]
    if isinstance(r1, dict) and "ratio" in r1:
        lines += [
            f"Measured {info['date']}, {len(r1['rows'])} repetitions (contenders alternate).",
            "",
            f"- **Data**: {r1['n_train']} train + {r1['n_val']} val images (Fashion-MNIST, tlcourse's "
            "offline stand-in for the tutorial's cats_vs_dogs, balanced classes), resized to "
            f"{r1['image_size']} px; the same uint8 arrays for both sides.",
            f"- **Base**: {r1['base']}, frozen, inference mode; the same object for both sides.",
            f"- **Head and training**: dropout 0.2 + Dense(10) on the pooled features, Adam 1e-3, "
            f"batch {r1['batch_size']}, E = {r1['epochs']} epochs, validation on the val images after every "
            "epoch; the same seed on both sides (same initial head weights and shuffling order).",
            "- **Tutorial** (TF's transfer-learning tutorial): the base inside the model, "
            "`model.fit(train_ds, validation_data=val_ds, epochs=E)` on a `from_tensor_slices → cache → "
            "shuffle → batch → prefetch` pipeline. The tutorial's augmentation layers are left out on "
            "both sides: with them the two would not do the same job.",
            "- **tlcourse**: `extract_features` on train and val (cold: empty feature cache in memory and "
            "on disk, extraction function not yet traced; includes writing the cache file) + `fit_head` "
            "for E epochs, called as the lessons call it (no run folder: checkpoints are off unless asked for).",
            "- **Timing**: each side end to end, from building its model to the trained head. The "
            "process's one-time start-up (first oneDNN / graph execution) is paid by an untimed call "
            "before rep 0. CPU s = the process's CPU time (all threads).",
            "",
            "| rep | tutorial s | tlcourse s | speed-up | CPU s tutorial | CPU s tlcourse | CPU-time ratio "
            "| val acc tutorial | val acc tlcourse | load (1 min) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for i, row in enumerate(r1["rows"]):
            load = row.get("load")
            lines.append(
                f"| {i} | {row['tutorial_s']:.1f} | {row['cached_s']:.1f} | {row['ratio']:.2f}× | "
                f"{row['tutorial_cpu_s']:.1f} | {row['cached_cpu_s']:.1f} | {row['cpu_ratio']:.2f}× | "
                f"{row['acc_tutorial']:.3f} | {row['acc_cached']:.3f} | "
                f"{'—' if load is None else f'{load:.1f}'} |"
            )
        lines += [
            "",
            f"**Median speed-up {r1['ratio']:.2f}×** (goal ≥ {r1['goal']:.0f}×; CPU-time ratio "
            f"{r1['cpu_ratio']:.2f}×). Validation accuracy: tutorial {r1['acc_tutorial']:.3f}, tlcourse "
            f"{r1['acc_cached']:.3f}; median signed gap (tlcourse − tutorial) "
            f"{r1['accuracy_gap_points']:+.1f} points (goal ≥ −1). {'✅' if r1['passed'] else '❌'}",
            "",
        ]
    else:
        lines += [_not_measured(r1), ""]

    r2 = results.get("2")
    lines += ["## 2. Input pipeline efficiency", ""]
    if isinstance(r2, dict) and "contenders" in r2:
        lines += [
            f"{r2['n_images']} Fashion-MNIST JPEGs in class folders, resized to {r2['image_size']}px, "
            f"`small_cnn` (float32 input), {r2['epochs']} epochs; each contender is timed from building its "
            "input pipeline (listing the folder included) to the end of training, decoding included; the "
            f"train step is traced beforehand for every contender alike. Medians of {r2.get('reps', 3)} "
            "repetitions, contenders in alternating order; 1-minute load average after each repetition: "
            f"{r2.get('loads')} on {os.cpu_count()} cores. The last column divides by the process's CPU "
            "time (all threads) instead of wall time: steadier on a shared machine.",
            "",
            "The course's folder pipeline is Keras's own, as lesson 10 writes it: "
            "`keras.utils.image_dataset_from_directory(..., batch_size=None).cache()` (single decoded images, "
            "the cache filled by one complete pass), then `.shuffle(n).batch(b).prefetch(tf.data.AUTOTUNE)`: "
            "a new order every epoch (see `tlcourse/data.py`).",
            "",
            "| pipeline | images/s | ÷ in-memory | ÷ in-memory, images per CPU second |",
            "|---|---|---|---|",
        ]
        for name, row in r2["contenders"].items():
            lines.append(
                f"| {name} | {row['images_per_s']:.0f} | {row['ratio']:.2f} | {fmt_ratio(row.get('cpu_ratio'))} |"
            )
        lines += [
            "",
            f"**The course's recipe ÷ in-memory = {r2['ratio']:.2f}** (goal ≥ 0.9). {'✅' if r2['passed'] else '❌'}",
            "",
        ]
    else:
        lines += [_not_measured(r2), ""]

    r3 = results.get("3")
    lines += ["## 3. Precision and compilation (training throughput)", ""]
    if isinstance(r3, dict) and "models" in r3:
        for model_name, entry in r3["models"].items():
            lines += [f"**{model_name}**", "", "| configuration | images/s | vs float32 |", "|---|---|---|"]
            for key, speed in entry["images_per_s"].items():
                ratio = entry.get("speedup_vs_float32", {}).get(key)
                lines.append(f"| {key} | {speed:.0f} | {fmt_ratio(ratio)} |")
            for key, message in entry.get("skipped", {}).items():
                lines.append(f"| {key} | skipped: {message} | — |")
            lines.append("")
        lines += [
            "tlcourse's default: `jit_compile` off on a CPU, Keras's \"auto\" on a GPU/TPU; "
            "the precision policy is `setup()`'s choice (float32 on a CPU).",
            "",
        ]
    else:
        lines += [_not_measured(r3), ""]

    r4 = results.get("4")
    lines += ["## 4. CI cost per lesson (ci profile)", ""]
    if isinstance(r4, dict) and r4.get("available"):
        lines += [
            f"From `{r4['source']}` (goal ≤ {r4['goal_s']} s each).",
            "",
            "| notebook | seconds |",
            "|---|---|",
        ]
        for name, seconds in r4["seconds"].items():
            lines.append(f"| {name} | {seconds:.1f}{' ❌' if seconds > r4['goal_s'] else ''} |")
        lines.append("")
    elif isinstance(r4, dict):
        lines += [r4["message"], ""]
    else:
        lines += [_not_measured(r4), ""]

    r6 = results.get("6")
    lines += ["## 6. Seeding between runs: `keras.utils.set_random_seed` vs `tlcourse.reseed`", ""]
    if isinstance(r6, dict) and "models" in r6:
        lines += [
            f"A compiled model trained again after seeding (as the lessons do for each seed): one epoch of "
            f"{r6['steps']} steps of {r6['batch']} images at {r6['image_size']} px, timed from the seeding call's "
            "return to the end of `fit`; the training step was traced once before, untimed. "
            "`set_random_seed` ends with `tf.random.set_seed`, which empties TensorFlow's cache of instantiated "
            "functions; `reseed` sets the same seeds and keeps it.",
            "",
            "| model | after set_random_seed s | after reseed s | ratio | same trained weights |",
            "|---|---|---|---|---|",
        ]
        for model_name, entry in r6["models"].items():
            secs = entry["seconds"]
            lines.append(
                f"| {model_name} | {secs['keras.utils.set_random_seed']:.2f} | {secs['tlcourse.reseed']:.2f} | "
                f"{entry['ratio']:.1f}× | {entry['same_weights']} |"
            )
        passed = all(e["ratio"] > 1 and e["same_weights"] for e in r6["models"].values())
        lines += ["", f"Goal: reseed's run faster and the weights identical. {'✅' if passed else '❌'}", ""]
    else:
        lines += [_not_measured(r6), ""]
    text = _keep_unmeasured_sections("\n".join(lines), results)
    RESULTS.write_text(text)
    return text


_KEPT_NOTE = "_Not measured by the latest run (`--only`): kept from the run of {date}._"


def _sections(text: str) -> dict[str, str]:
    """The numbered ``## N. …`` sections of a RESULTS.md, by number (each up to the next ``## ``)."""
    return {
        match.group(1): chunk.rstrip("\n") + "\n"
        for chunk in re.split(r"(?m)^(?=## )", text)
        if (match := re.match(r"## (\d+)\. ", chunk))
    }


def _keep_unmeasured_sections(text: str, results: dict) -> str:
    """With ``--only``, the benchmarks not run keep their section from the previous RESULTS.md."""
    if not RESULTS.is_file():
        return text
    previous = RESULTS.read_text()
    old = _sections(previous)
    date = re.search(r"(?m)^- \*\*date\*\*: (.+)$", previous)
    for key, section in _sections(text).items():
        if key in results or key not in old:
            continue
        kept = old[key]
        if "_Not measured by the latest run" not in kept:
            heading, _, body = kept.partition("\n")
            note = _KEPT_NOTE.format(date=date.group(1) if date else "an earlier date")
            kept = f"{heading}\n\n{note}\n{body}"
        text = text.replace(section, kept)
    produced = _sections(text)
    for key, section in old.items():
        if key not in produced:  # written by another module, e.g. section 5 by `python -m bench.grading`
            text = text.rstrip("\n") + "\n\n" + section
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    parser.add_argument("--only", default="1,2,3,4,6", help="comma-separated benchmark numbers")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    tlcourse.setup(verbose=True, seed=0)
    info = machine()
    results: dict = {}
    benches = {
        "1": lambda: bench_feature_caching(args.reps, args.quick),
        "2": lambda: bench_input_pipeline(args.reps, args.quick),
        "3": lambda: bench_precision(args.reps, args.quick),
        "4": bench_ci_cost,
        "6": lambda: bench_reseed(args.reps, args.quick),
    }
    for key in args.only.split(","):
        key = key.strip()
        try:
            results[key] = benches[key]()
        except Exception as exc:  # one failing benchmark must not lose the others' results
            traceback.print_exc()
            results[key] = f"failed: {type(exc).__name__}: {exc}"
    total = time.perf_counter() - started
    write_results(info, results, total)
    print()
    print("=" * 72)
    if isinstance(results.get("1"), dict):
        r1 = results["1"]
        print(
            f"1. feature caching speed-up: {r1['ratio']:.2f}× (goal ≥ {r1['goal']:.0f}×; CPU time "
            f"{r1['cpu_ratio']:.2f}×), accuracy gap (tlcourse − tutorial) "
            f"{r1['accuracy_gap_points']:+.1f} points"
        )
    if isinstance(results.get("2"), dict):
        for name, row in results["2"]["contenders"].items():
            print(
                f"2. {name}: {row['images_per_s']:.0f} img/s, ÷ in-memory {row['ratio']:.2f} "
                f"(by CPU time {row['cpu_ratio']:.2f})"
            )
    if isinstance(results.get("3"), dict):
        for model_name, entry in results["3"]["models"].items():
            shown = ", ".join(f"{k} {v:.2f}×" for k, v in entry.get("speedup_vs_float32", {}).items())
            print(f"3. {model_name}: {shown}")
    if isinstance(results.get("4"), dict):
        r4 = results["4"]
        print(
            "4. "
            + (
                f"{len(r4['seconds'])} notebooks timed, over 60 s: {r4['over_60s']}"
                if r4.get("available")
                else r4["message"]
            )
        )
    if isinstance(results.get("6"), dict):
        for model_name, entry in results["6"]["models"].items():
            print(f"6. {model_name}: a run after set_random_seed ÷ after reseed {entry['ratio']:.1f}×")
    print(f"written: {RESULTS.relative_to(ROOT)}  ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
