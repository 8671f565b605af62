# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Models and the performance comparison
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/07_models_and_comparison.ipynb)
#
# **Time:** about 35 minutes; the comparison in section 5 takes the longest, and prints its CPU time.
#
# **You will learn:**
# - what distinguishes the popular pretrained bases (VGG, ResNet, Inception, Xception, MobileNet, EfficientNet):
#   parameters, input size, preprocessing, speed and accuracy;
# - how to **measure** a base's speed on your own machine instead of trusting a table;
# - how to choose a base for a latency or memory budget, with a rule you can apply in three lines;
# - how to compare training from scratch, feature extraction and fine-tuning fairly: the same data
#   fractions, the same seeds, mean ± standard deviation.
#
# **Prerequisites:** lessons 03 (feature extraction) and 04 (fine-tuning).

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
BASES_TO_TIME = None  # names of bases to time in section 2; None = all (the ci profile: the two smallest)
FRACTIONS = None  # training-data fractions of section 5; None = (0.1, 1.0) offline, (0.05, 0.25) online
EPOCHS = (
    None  # training epochs per run in section 5; None = 3 × the budget's epochs offline, the budget's online
)

# %%
import tlcourse

course = tlcourse.setup("07", profile=PROFILE)  # first: it quiets TensorFlow's start-up logs

import time

import keras
import numpy as np

budget = course.budget
lesson_started = time.process_time()

# %% [markdown]
# ## 1. The catalogue of popular bases
#
# `keras.applications` ships a few dozen ImageNet networks; a handful of them cover most uses. The slide deck
# this course grew from lists them with one line each — VGG16/19 for "learning, baselines", ResNet as
# "general-purpose, stable", InceptionV3 for "multi-scale features", Xception as an "efficient deep CNN", and
# MobileNet for "mobile, lightweight" models — and one of its tutorials calls VGG16 "a small CNN". That last
# one is wrong, as the cell after the catalogue shows: VGG16 was a landmark in 2014 because it was simple (only
# 3×3 convolutions), not because it was small.
#
# `tlcourse.models.catalog()` lists the bases `tlcourse.models.backbone(name)` can build, with what you need
# to know before using one:
#
# - **params**: the parameters of the feature extractor (no ImageNet head). They set the memory the weights
#   take (4 bytes each in float32) and roughly the training cost.
# - **input**: the image side the ImageNet weights were trained at. Smaller inputs work down to **min**, but
#   the features get worse the further you go from the training size.
# - **preprocessing**: what the network expects its pixels to look like. `backbone()` puts it inside the
#   model, so you always feed raw [0, 255] RGB.
# - **offline**: whether the ImageNet weights are on this machine already.

# %%
catalogue = tlcourse.models.catalog()
catalogue

# %%
# With their ImageNet heads. VGG16's is Flatten (7×7×512 values) → Dense 4096 → Dense 4096 → Dense 1000; the
# others pool their feature maps and have one Dense 1000 (MobileNetV3 adds a small 1×1 convolution first).
params = {info.name: info.params for info in catalogue}  # without the head
vgg16_head = (7 * 7 * 512 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 1000
with_head = {info.name: info.params + (info.feature_dim + 1) * 1000 for info in catalogue}
with_head["vgg16"] = params["vgg16"] + vgg16_head
runner_up = max((name for name in with_head if name != "vgg16"), key=with_head.get)
print(f"VGG16 with its head: {with_head['vgg16'] / 1e6:.1f} M parameters, {vgg16_head / 1e6:.1f} M of them in the "
      f"head (keras.io lists 138.4 M)")  # fmt: skip
print(f"the next largest, {runner_up}: {with_head[runner_up] / 1e6:.1f} M → VGG16 is "
      f"{with_head['vgg16'] / with_head[runner_up]:.1f}× larger")  # fmt: skip
course.record("with_head_millions", {name: round(value / 1e6, 2) for name, value in with_head.items()})

# %% [markdown]
# > ⚠️ **Pitfall — mixing up preprocessing.** VGG16 and ResNet50 expect "caffe" preprocessing (BGR channel
# > order, ImageNet mean subtracted), MobileNetV2, InceptionV3 and Xception expect pixels scaled to [-1, 1], and
# > EfficientNet and MobileNetV3 rescale inside the model. Feed one the other's input and it still runs — it
# > just sees subtly wrong images and its accuracy drops (lesson 05 shows by how much). Keep the preprocessing
# > *inside* the model, as `backbone()` does, and the question never comes up.
#
# ## 2. Measuring speed on your machine
#
# Published timings are measured on someone else's hardware, at someone else's batch size. What matters is
# the speed **here**, so we measure it. Speed does not depend on the weights' values, so we build each base
# with `weights=None` (random weights: no download needed) at this profile's image size and time the forward
# pass on a small batch. In plain Keras that is: build, run once to warm up (the first call traces the
# graph), then time a few calls.

# %%
SPEED_BATCH = 8


def images_per_second(name, *, image_size, batch_size=SPEED_BATCH, repeats=3):
    """Forward-pass throughput of one base: (images per wall-clock second, CPU ms per image)."""
    base = tlcourse.models.backbone(name, weights=None, input_shape=(image_size, image_size, 3))
    images = (
        np.random.default_rng(0).integers(0, 256, (batch_size, image_size, image_size, 3)).astype("float32")
    )
    base.predict_on_batch(images)  # warm-up: builds and traces the forward pass
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        base.predict_on_batch(images)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return repeats * batch_size / wall, 1000 * cpu / (repeats * batch_size)


by_size = sorted(catalogue, key=lambda info: info.params)
if BASES_TO_TIME is None:
    # The ci profile has a minute for the whole lesson: only the two smallest bases fit in it.
    BASES_TO_TIME = [info.name for info in (by_size[:2] if course.profile == "ci" else by_size)]
image_size = max(budget.image_size, max(info.min_size for info in catalogue if info.name in BASES_TO_TIME))

speed = {}
for name in BASES_TO_TIME:
    speed[name] = images_per_second(name, image_size=image_size)
    print(f"{name:<20} {speed[name][0]:7.1f} images/s   {speed[name][1]:6.1f} CPU ms per image")
policy = keras.config.dtype_policy()  # what setup() chose: float32 on a CPU, mixed_float16 on a recent GPU
print(f"(batch {SPEED_BATCH}, {image_size}×{image_size} px, computing in {policy.compute_dtype} with "
      f"{policy.variable_dtype} weights, {course.device})")  # fmt: skip
course.record("speed_dtypes", {"precision": course.precision, "compute": policy.compute_dtype,
                               "variables": policy.variable_dtype})  # fmt: skip
course.record("speed_image_size", image_size)
course.record("images_per_second", {name: round(v[0], 2) for name, v in speed.items()})
course.record("cpu_ms_per_image", {name: round(v[1], 2) for name, v in speed.items()})

# %% [markdown]
# Two numbers per base: **images per second** of wall-clock time, which is what a user waiting for a
# prediction feels, and **CPU milliseconds per image**, which stays meaningful when other programs share the
# processor (wall-clock speed then drops, CPU time much less). Run the cell again on your own machine: on a
# GPU every number changes, and the ranking may too — depthwise convolutions (MobileNet, EfficientNet) are
# cheap in operations but not always fast on every device.
#
# ## 3. Speed against accuracy
#
# Accuracy we cannot measure here: that would need ImageNet's 50,000 validation photos. So we take the
# **published** ImageNet top-1 accuracies, each from its source, and say so on the plot. They are single
# centre crops at each model's own input size.

# %%
PUBLISHED_TOP1 = {  # ImageNet top-1 accuracy (%), as published — NOT measured in this notebook
    "vgg16": 71.3,  # keras.io/api/applications table
    "resnet50": 74.9,  # keras.io/api/applications table
    "inception_v3": 77.9,  # keras.io/api/applications table
    "xception": 79.0,  # keras.io/api/applications table
    "mobilenet_v2": 71.3,  # keras.io/api/applications table
    "efficientnet_b0": 77.1,  # keras.io/api/applications table
    "mobilenet_v3_small": 68.1,  # keras.io/api/applications/mobilenet (MobileNetV3 table)
    "efficientnet_lite0": 75.1,  # github.com/tensorflow/tpu, models/official/efficientnet/lite README
}
SOURCES = "keras.io/api/applications; tensorflow/tpu EfficientNet-Lite README"
course.record("published_top1", PUBLISHED_TOP1)

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7.5, 4.5))
for info in catalogue:
    measured = info.name in speed
    ax.scatter(
        info.params / 1e6, PUBLISHED_TOP1[info.name], s=60, color="C0" if measured else "0.6", zorder=3
    )
    label = info.name + (f"\n{speed[info.name][0]:.0f} img/s here" if measured else "")
    ax.annotate(label, (info.params / 1e6, PUBLISHED_TOP1[info.name]), textcoords="offset points",
                xytext=(6, -4), fontsize=8)  # fmt: skip
ax.set_xscale("log")
ax.set_xlabel("parameters of the feature extractor (millions, log scale)")
ax.set_ylabel("ImageNet top-1 accuracy (%) — published")
ax.set_title("Size vs. published accuracy (blue: speed measured here)")
ax.text(0.99, 0.02, f"accuracy: published figures ({SOURCES}), not measured here",
        transform=ax.transAxes, ha="right", fontsize=7, color="0.4")  # fmt: skip
ax.grid(alpha=0.3)
fig

# %%
for small in ("efficientnet_b0", "efficientnet_lite0"):
    print(
        f"vgg16 has {params['vgg16'] / params[small]:.1f}× the parameters of {small} and "
        f"{PUBLISHED_TOP1['vgg16'] - PUBLISHED_TOP1[small]:+.1f} points of published top-1 accuracy"
    )
course.record("vgg16_vs_efficientnets", {small: {"params_ratio": params["vgg16"] / params[small],
                                                 "top1_difference": PUBLISHED_TOP1["vgg16"] - PUBLISHED_TOP1[small]}
                                         for small in ("efficientnet_b0", "efficientnet_lite0")})  # fmt: skip

# %% [markdown]
# More parameters do not buy more accuracy: VGG16's feature extractor is several times the size of either
# EfficientNet's, and its published accuracy is lower (the cell above). Ten years of architecture research
# (residual connections, depthwise separable convolutions, compound scaling) went into moving up and to the
# left. VGG19 is not in the catalogue: keras.io lists it with more parameters than VGG16 (143.7 M with its
# head) and the same top-1 accuracy (71.3 %).
#
# > ⚠️ **Pitfall — ImageNet accuracy is not your accuracy.** A base that wins on ImageNet is not guaranteed
# > to win on *your* data, especially far from photos (X-rays, satellite images, clothes on a white
# > background). Use the published numbers to shortlist two or three bases, then compare them on your task.
#
# ## 4. Choosing a base for a budget
#
# A deployment gives you **constraints**: a latency (each image must be classified within so many
# milliseconds), a memory limit (the weights must fit on a device), sometimes "it must work offline". The
# rule is simple:
#
# 1. drop every base that breaks a constraint;
# 2. among the rest, take the one with the best (published, then your own) accuracy;
# 3. if nothing is left, relax a constraint — a smaller input size makes every base faster.
#
# Memory for the weights is parameters × 4 bytes in float32 (× 2 in float16). Latency is what you measured.


# %%
def choose_base(catalogue, top1, *, max_megabytes=None, min_images_per_second=None, speeds=None,
                offline_only=False):  # fmt: skip
    """The most accurate base that meets every budget (None if none does)."""
    fits = []
    for info in catalogue:
        megabytes = info.params * 4 / 1e6
        if max_megabytes is not None and megabytes > max_megabytes:
            continue
        if min_images_per_second is not None:
            if speeds is None or info.name not in speeds or speeds[info.name] < min_images_per_second:
                continue  # unmeasured counts as too slow: a budget you cannot check is not met
        if offline_only and not info.offline:
            continue
        fits.append(info)
    return max(fits, key=lambda info: (top1[info.name], -info.params), default=None)


measured_speed = {name: value[0] for name, value in speed.items()}
for limit in (5, 20, 100):
    best = choose_base(catalogue, PUBLISHED_TOP1, max_megabytes=limit)
    print(
        f"weights ≤ {limit:>3} MB → {best.name} ({best.params * 4 / 1e6:.0f} MB, {PUBLISHED_TOP1[best.name]} %)"
    )
fastest = max(measured_speed.values())
fast_pick = choose_base(catalogue, PUBLISHED_TOP1, min_images_per_second=fastest / 2, speeds=measured_speed)
print(f"≥ {fastest / 2:.0f} images/s here → {fast_pick.name}")
offline_pick = choose_base(catalogue, PUBLISHED_TOP1, offline_only=True)
print(f"offline only → {offline_pick.name if offline_pick else 'nothing: fetch weights first'}")
course.record("choice_20mb", choose_base(catalogue, PUBLISHED_TOP1, max_megabytes=20).name)

# %% [markdown]
# The printed choices follow the rule: a tighter memory budget moves you down to the mobile-sized networks,
# and the speed budget is checked against *your* measurement, not a table. Notice that a base never timed
# counts as too slow — an unmeasured latency is not a met latency.
#
# ## 5. Scratch vs. feature extraction vs. fine-tuning, across data fractions
#
# The second half of the lesson compares **training recipes** rather than architectures. Three ways to get a
# classifier for a new task:
#
# - **scratch**: a network with random weights, every layer trained on your data;
# - **feature extraction**: a pretrained base, frozen, and a new linear head on its features (lesson 03);
# - **fine-tuning**: the same frozen base + head first, then the base unfrozen and trained a little further at
#   a small learning rate (lesson 04).
#
# A fair comparison holds everything else fixed: the same architecture, the same labelled examples for each
# recipe within a run, the same test set, the same number of epochs, and several **seeds** — which examples
# get labelled and the initial weights both vary with the seed, so we report the mean ± standard deviation.
# And we repeat it at several **data fractions**, because the answer depends on how much labelled data you
# have.
#
# Offline, the source task is Fashion-MNIST's classes 0–4 learned by a small CNN (`source_model()`, the base
# of lessons 01–05), and the target is classes 5–9, which that network never saw. Online, the base is
# EfficientNet-Lite0 with ImageNet weights and the target `tf_flowers`.

# %%
if course.offline:
    target = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9])
    FRACTIONS = FRACTIONS or (0.1, 1.0)
    EPOCHS = EPOCHS or 3 * budget.epochs

    def new_base():
        """The source CNN up to its pooled conv features (a fresh copy from the cached file)."""
        return tlcourse.models.headless(tlcourse.models.source_model(progress=False), layer="gap")

    def new_scratch_model():
        return tlcourse.models.small_cnn(target.image_shape, target.num_classes)

    UNFREEZE_TOP = None  # the small source CNN: fine-tune all of it
else:
    target = tlcourse.data.load("tf_flowers", image_size=budget.image_size)
    FRACTIONS = FRACTIONS or (0.05, 0.25)
    EPOCHS = EPOCHS or budget.epochs

    def new_base():
        return tlcourse.models.backbone("efficientnet_lite0", input_shape=target.image_shape)

    def new_scratch_model():
        random_base = tlcourse.models.backbone(
            "efficientnet_lite0", weights=None, input_shape=target.image_shape
        )
        # Random weights have nothing to protect: everything trains, BatchNorm included.
        tlcourse.models.unfreeze(random_base, keep_batchnorm_frozen=False)
        return tlcourse.models.classifier(random_base, target.num_classes)

    UNFREEZE_TOP = 20  # a big ImageNet base: fine-tune its top layers, BatchNorm stays frozen
print(target)
print(f"fractions {FRACTIONS}, {EPOCHS} epochs per run, seeds {list(budget.seeds)}")

# %% [markdown]
# `tlcourse.train.compare(recipes, data, fractions=..., seeds=...)` runs every recipe on every fraction for
# every seed: it draws the labelled subset for (fraction, seed), hands it to each recipe as numpy arrays
# `(x, y)`, measures the returned model's accuracy on the test split and keeps one row per run. A recipe is
# just a function `(train, val, seed) → trained model`. We write our three in plain Keras, so you see every
# step:
#
# - scratch and fine-tuning train with Adam for the same number of epochs. Compiling a Keras model costs a
#   couple of seconds of tracing, more than a short run, so each recipe compiles **one** model and, before
#   every run, resets its weights and optimizer state (exactly equivalent to building a new model);
# - the linear head of feature extraction is a multinomial logistic regression, so we fit it to convergence
#   with scikit-learn on the frozen features (milliseconds), then copy it into the Keras head;
# - fine-tuning starts from that same head, unfreezes the base and continues at a 10× smaller learning rate.
#   Every batch has the same size (the epochs are laid end to end), so Keras traces the training step once.

# %%
from sklearn.linear_model import LogisticRegression

loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compiled(model, learning_rate):
    """Compile once and remember the optimizer's initial state, to restart from it before each run."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=["accuracy"]
    )
    model.optimizer.build(model.trainable_variables)
    return model, model.get_weights(), [v.numpy() for v in model.optimizer.variables]


def restart(state, weights=None):
    model, initial_weights, optimizer_state = state
    model.set_weights(initial_weights if weights is None else weights)
    for variable, value in zip(model.optimizer.variables, optimizer_state, strict=True):
        variable.assign(value)
    return model


def train_for_epochs(model, x, y, seed):
    """EPOCHS passes over (x, y), reshuffled each time, cut into full batches only."""
    steps = -(-len(x) * EPOCHS // budget.batch_size)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(x)) for _ in range(EPOCHS + 1)])
    order = np.resize(order, steps * budget.batch_size)
    model.fit(x[order], y[order], epochs=1, batch_size=budget.batch_size, shuffle=False, verbose=0)


frozen_base = new_base()
frozen_base.trainable = False
extraction_model = tlcourse.models.classifier(frozen_base, target.num_classes)

finetune_model = tlcourse.models.classifier(new_base(), target.num_classes)
tlcourse.models.unfreeze(finetune_model, top=UNFREEZE_TOP)  # BatchNorm (if any) stays frozen
finetune_state = compiled(finetune_model, learning_rate=1e-4)
scratch_state = compiled(new_scratch_model(), learning_rate=1e-3)


def linear_head(x, y):
    """Logistic regression on the frozen features, as the weights of the Keras head."""
    features = frozen_base.predict(x, batch_size=256, verbose=0)
    head = LogisticRegression(max_iter=1000).fit(features, y)
    return [head.coef_.T.astype("float32"), head.intercept_.astype("float32")]


def scratch(train, val, seed):
    tlcourse.reseed(seed)
    model = restart(scratch_state, new_scratch_model().get_weights())  # fresh random weights for this seed
    train_for_epochs(model, *train, seed)
    return model


def feature_extraction(train, val, seed):
    extraction_model.get_layer("logits").set_weights(linear_head(*train))
    return extraction_model


def fine_tuning(train, val, seed):
    tlcourse.reseed(seed)
    model = restart(finetune_state)
    model.get_layer("logits").set_weights(linear_head(*train))  # stage 1: the converged head
    train_for_epochs(model, *train, seed)  # stage 2: everything unfrozen, small learning rate
    return model


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


print(
    f"trainable parameters — scratch {trainable_params(scratch_state[0]):,}, extraction head "
    f"{trainable_params(extraction_model):,}, fine-tuning {trainable_params(finetune_model):,}"
)

# %%
compare_started = time.process_time()
comparison = tlcourse.train.compare(
    {"scratch": scratch, "feature_extraction": feature_extraction, "fine_tuning": fine_tuning},
    target,
    fractions=FRACTIONS,
    seeds=budget.seeds,
)
compare_cpu = time.process_time() - compare_started
print(comparison.table())
print(f"({len(comparison.rows)} runs, {compare_cpu:.0f} s of CPU time)")

# %%
fig = tlcourse.viz.compare(comparison, metric="accuracy", by="fraction")
fig.axes[0].set_xlabel("fraction of the labelled training set")
fig

# %% [markdown]
# Each group of bars is one data fraction of the profile's labelled training set; the whiskers are one standard
# deviation over the seeds. The summary below prints, per fraction, how many images that was and the gap
# between the best transfer recipe and scratch: the gap is widest at the smallest fraction and narrows at the
# largest, where scratch has more examples to learn features of its own (the course's tests check both on
# every run). The `full` profile (online: tf_flowers and EfficientNet-Lite0 with ImageNet weights, fractions
# 5 % and 25 %) is expected to show the same pattern: pretraining helps most when labels are scarce, and
# training from scratch narrows the gap as data grows (He, Girshick & Dollár, *Rethinking ImageNet
# Pre-training*, 2019; Kornblith, Shlens & Le, 2019, below).

# %%
summary = {(s["recipe"], s["fraction"]): s for s in comparison.summary()}
results = {}
for fraction in FRACTIONS:
    row = {recipe: summary[(recipe, fraction)] for recipe in ("scratch", "feature_extraction", "fine_tuning")}
    best = max(row["feature_extraction"]["mean"], row["fine_tuning"]["mean"])
    results[str(fraction)] = {
        **{recipe: {"mean": s["mean"], "std": s["std"], "n": s["n"]} for recipe, s in row.items()},
        "n_train": int(next(r["n_train"] for r in comparison.rows if r["fraction"] == fraction)),
        "gap": best - row["scratch"]["mean"],
    }
    print(
        f"fraction {fraction:>5}: {results[str(fraction)]['n_train']:>5} images   "
        f"scratch {row['scratch']['mean']:.3f} ± {row['scratch']['std']:.3f}   "
        f"extraction {row['feature_extraction']['mean']:.3f} ± {row['feature_extraction']['std']:.3f}   "
        f"fine-tuning {row['fine_tuning']['mean']:.3f} ± {row['fine_tuning']['std']:.3f}   "
        f"gap (best transfer − scratch) {results[str(fraction)]['gap']:+.3f}"
    )
smallest, largest = str(min(FRACTIONS)), str(max(FRACTIONS))
course.record("comparison", results)
course.record("fractions", [float(f) for f in FRACTIONS])
course.record("epochs", EPOCHS)
course.record("rows", [{k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in r.items()}
                       for r in comparison.rows])  # fmt: skip

# %% [markdown]
# How sure can we be that fine-tuning beats feature extraction at the smallest fraction? The two means
# differ by less than their spread over seeds, so we compare the difference with its **standard error**
# (the standard deviations divided by √seeds, combined): a difference inside one standard error is a tie at
# this number of seeds, not a win.

# %%
fe, ft = results[smallest]["feature_extraction"], results[smallest]["fine_tuning"]
standard_error = float(np.sqrt(fe["std"] ** 2 / fe["n"] + ft["std"] ** 2 / ft["n"]))
difference = ft["mean"] - fe["mean"]
verdict = "fine-tuning ahead" if difference > standard_error else "a tie within one standard error"
print(f"at fraction {smallest}: fine-tuning − extraction = {difference:+.3f}, standard error {standard_error:.3f}"
      f" → {verdict}")  # fmt: skip
print(
    f"gap (best transfer − scratch): {results[smallest]['gap']:+.3f} at fraction {smallest}, "
    f"{results[largest]['gap']:+.3f} at fraction {largest}"
)
course.record("finetune_minus_extraction_se", standard_error)

by_seed = {recipe: [r["accuracy"] for r in comparison.rows if r["recipe"] == recipe and r["fraction"] == min(FRACTIONS)]
           for recipe in ("scratch", "feature_extraction", "fine_tuning")}  # fmt: skip
seed_range = {recipe: float(np.ptp(values)) for recipe, values in by_seed.items()}
print(
    f"at fraction {smallest}, one run's accuracy moved with the seed by up to "
    + ", ".join(f"{100 * value:.0f} points ({recipe})" for recipe, value in seed_range.items())
)
costs = {(s["recipe"], str(s["fraction"])): {"wall_time": s["wall_time"], "trainable_params": s["trainable_params"]}
         for s in comparison.summary()}  # fmt: skip
for recipe in ("scratch", "feature_extraction", "fine_tuning"):
    cost = costs[(recipe, largest)]
    print(
        f"{recipe:<19} at fraction {largest}: {cost['wall_time']:5.1f} s per run, "
        f"{cost['trainable_params']:>9,} trainable parameters"
    )
course.record("seed_range_smallest", seed_range)
course.record("costs", {f"{recipe}@{fraction}": cost for (recipe, fraction), cost in costs.items()})

# %% [markdown]
# Three lessons in these numbers:
#
# 1. **Transfer matters most when labels are scarce.** The gap printed above is largest at the smallest
#    fraction; with more data the network trained from scratch learns features of its own and the gap shrinks.
# 2. **Fine-tuning against feature extraction is decided by the noise here**: the cell above says whether
#    fine-tuning's lead is more than one standard error. With a small learning rate and a short budget it
#    moves the pretrained weights only slightly. With more data (and online, with a big ImageNet base)
#    fine-tuning has more to gain, and more to lose with a too-high learning rate (lesson 04).
# 3. **Feature extraction is the cheapest**: it trains the fewest parameters (the head only), and it takes
#    less time than fine-tuning, which does the same work and then trains further (the last lines above).
#
# > ⚠️ **Pitfall — a comparison from one seed.** With a few dozen training images the accuracy of one run
# > moves with the seed, by as much as the cell above printed. Never rank recipes (or bases) from a single
# > run: repeat, report mean ± std, and treat differences within the noise as ties.
#
# > ⚠️ **Pitfall — choosing on the test set.** We *report* on the test split. If you pick a recipe, a base or
# > a learning rate by looking at test accuracy, that accuracy is no longer an honest estimate; choose on the
# > validation split (lesson 05).

# %%
lesson_cpu = time.process_time() - lesson_started
print(f"CPU time of this notebook after set-up: {lesson_cpu:.0f} s (the comparison: {compare_cpu:.0f} s)")
course.record("cpu_seconds", round(lesson_cpu, 1))

# %% [markdown]
# ## Your turn
#
# Open [the exercise notebook](../exercises/07_models_and_comparison.ipynb): you will pick a base for a memory
# budget from the catalogue, compute a mean ± std table from raw runs, and run a small comparison of your own
# and read off the winner.
#
# ## Summary
#
# - The popular bases differ in parameters, input size and preprocessing ("caffe", [-1, 1], or built in), as
#   the catalogue shows — keep the preprocessing inside the model.
# - More parameters do not mean more accuracy: VGG16 is large and, by the published figures, among the least
#   accurate; EfficientNets are small and accurate.
# - Measure speed on your own hardware (forward pass, fixed batch, after a warm-up) and choose a base by
#   dropping those that break a budget and taking the most accurate of the rest.
# - Compare recipes with the same data, seeds and epochs, over several data fractions, and report mean ± std:
#   here transfer beat scratch by the most at the smallest fraction, and the gap narrowed at the largest.
#
# ## Further reading
#
# - Keras Applications (the table of published accuracies, sizes and timings): https://keras.io/api/applications/
# - Simonyan & Zisserman, *Very Deep Convolutional Networks for Large-Scale Image Recognition* (VGG), 2014.
#   https://arxiv.org/abs/1409.1556
# - He, Zhang, Ren & Sun, *Deep Residual Learning for Image Recognition* (ResNet), 2015.
#   https://arxiv.org/abs/1512.03385
# - Chollet, *Xception: Deep Learning with Depthwise Separable Convolutions*, 2016. https://arxiv.org/abs/1610.02357
# - Sandler et al., *MobileNetV2: Inverted Residuals and Linear Bottlenecks*, 2018. https://arxiv.org/abs/1801.04381
# - Tan & Le, *EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks*, 2019.
#   https://arxiv.org/abs/1905.11946
# - Kornblith, Shlens & Le, *Do Better ImageNet Models Transfer Better?*, CVPR 2019. https://arxiv.org/abs/1805.08974
#
# ## Questions
#
# 1. Why does this notebook measure speed with random weights, and why is that still a fair measurement?
# 2. Which base would you choose for a phone app whose model must be under 10 MB, and why? Which number on
#    the plot is measured here and which is not?
# 3. What are the three steps of the rule for choosing a base under a budget? What do you do when no base fits?
# 4. Why does the comparison repeat each recipe over several seeds, and when is a difference between two
#    recipes a tie?
# 5. In your run, at which fraction was the gap between transfer and scratch largest? Why does it shrink as
#    the training set grows?
