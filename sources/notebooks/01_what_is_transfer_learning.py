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
# # 01 · What transfer learning is
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/01_what_is_transfer_learning.ipynb)
#
# **Time:** about 30 minutes (the experiment at the end takes 1–10 minutes depending on your machine).
#
# **You will learn:**
# - which costs of deep learning transfer learning avoids: data, compute, time and expertise;
# - the transfer learning workflow: pick a base → freeze it → add a head → train the head → (fine-tune) → evaluate,
#   and its first steps in plain Keras: a pretrained base from `keras.applications`, its preprocessing, a new head;
# - what a trained CNN computes layer by layer (edges → textures → parts), seen on a real photo;
# - how to run a fair first experiment: pretrained features + a small head against the *same* network
#   trained from scratch, with 1, 3 and 10 labels per class, over several seeds.
#
# **Prerequisites:** lesson 00; you know what a convolution layer and `model.fit` do.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
LABELS_PER_CLASS = (1, 3, 10)  # the x axis of the experiment in section 4
EPOCHS = None  # epochs for training from scratch in section 4; None = 3 × the budget's epochs

# %%
import tlcourse

course = tlcourse.setup("01", profile=PROFILE)
budget = course.budget

# %% [markdown]
# ## 1. What training from scratch costs
#
# Training a network from scratch means starting from random weights — lesson 00 showed what those know:
# nothing. Everything must then be learned from your own data, which is expensive in four ways:
#
# | cost | what it looked like for ImageNet models |
# |---|---|
# | **data** | ImageNet's ILSVRC-2012 training set has **1.28 million** labelled photos in 1,000 classes (Russakovsky et al., 2015), each label checked by people. |
# | **compute** | AlexNet took **five to six days on two GPUs** (Krizhevsky et al., 2012); ResNet-50 trains in **one hour — on 256 GPUs** (Goyal et al., 2017). |
# | **time** | Days to weeks of experiments before the first good model, repeated for every new task. |
# | **expertise** | Choosing an architecture, initialisation, learning rate schedule and regularisation; the NASNet architecture search alone used **500 GPUs for four days** (Zoph et al., 2018). |
#
# **Transfer learning** pays those costs once: someone trains a network on a large *source* task, and
# everyone else reuses its weights as the starting point for their own *target* task — often with a few
# hundred, or even a handful, of labelled examples. You will measure that on this machine in section 4.
#
# The seeds of this course list the situations where it is the go-to strategy: labelled data is limited, a
# related pretrained model exists, training from scratch is too costly, and the new task resembles a known one.
# The last condition matters: a base trained on very different data can help little or not at all
# (*negative transfer*, lesson 05).

# %% [markdown]
# ## 2. The workflow, in plain Keras
#
# Every transfer learning project in this course follows the same six steps:
#
# ```
#  1. pick a base        a network pretrained on a large, related source task
#  2. freeze it          base.trainable = False — its weights will not change
#  3. add a new head     a small layer (or two) mapping the base's features to YOUR classes (logits)
#  4. train the head     only the head's weights learn, on your (small) labelled set
#  5. fine-tune          optional: unfreeze the top of the base, train at a small learning rate (lesson 04)
#  6. evaluate           on a held-out test set, against a baseline trained from scratch
# ```
#
# Steps 2–4 are called **feature extraction** (lesson 03); step 5 is **fine-tuning** (lesson 04). Fine-tuning
# is one *way* to do transfer learning, not a synonym for it.
#
# Steps 1–3 take a few lines of Keras, the same at work as here. `keras.applications` holds the popular
# ImageNet CNNs; `include_top=False` leaves out their 1000-class classifier, and what remains is the **base**.
# Each family expects its inputs scaled the way it was trained, which its own `preprocess_input` does
# (MobileNetV2's maps [0, 255] to [−1, 1]; ResNet50's subtracts the ImageNet mean colour instead). The base
# outputs a grid of feature vectors; global average pooling turns it into one vector per image, and a
# `Dense` layer maps that vector to the new classes.


# %%
import keras
import numpy as np

# Keras downloads a base's ImageNet weights on first use. Offline it cannot, so this cell then builds the
# same network with random weights (weights=None): every shape and count below is the same.
weights = None if course.offline else "imagenet"
mobilenet = keras.applications.MobileNetV2(input_shape=(128, 128, 3), include_top=False, weights=weights)
mobilenet.trainable = False  # step 2: freeze — every weight inside the base stops learning

inputs = keras.Input(shape=(128, 128, 3))  # raw RGB in [0, 255]
scaled = keras.applications.mobilenet_v2.preprocess_input(inputs)  # as MobileNetV2 was trained: [-1, 1]
grid = mobilenet(scaled)  # a grid of feature vectors
features = keras.layers.GlobalAveragePooling2D()(grid)  # one vector per image
logits = keras.layers.Dense(5)(features)  # step 3: a new head for 5 classes, logits out
model = keras.Model(inputs, logits)
shapes = {"image": inputs, "scaled": scaled, "base": grid, "pooled": features, "head": logits}
for name, tensor in shapes.items():
    print(f"{name:7s} {tuple(tensor.shape)}")


def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


trainable, frozen = count(model.trainable_weights), count(model.non_trainable_weights)
print(
    f"trainable parameters:     {trainable:>10,}  (the head: {features.shape[-1]} features × 5 classes + 5 biases)"
)
print(f"non-trainable parameters: {frozen:>10,}  (the frozen base)")
print(f"only {trainable / (trainable + frozen):.2%} of the weights will be trained")

# %% [markdown]
# Only the head's few thousand weights will be trained — that is why training a head is fast and needs
# little data. The head outputs **logits**, so the loss must be told so:
# `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.
#
# Why is there no `training=False` when the base is called? In Keras 3, a layer with `trainable = False`
# always runs in inference mode, and freezing the base froze all its layers: its BatchNormalization layers
# keep normalising with their stored ImageNet statistics even when `fit()` calls the model in training
# mode. Let's check on two photos — and see what the same call does, for a moment, with the base unfrozen:

# %%
photos = tlcourse.data.sample_photos()
two_photos = np.stack([keras.ops.image.resize(photos[name], (128, 128)) for name in ("chelsea", "coffee")])
extractor = keras.Model(inputs, features)  # the base with its preprocessing and pooling, without the head
stored = mobilenet.get_weights()  # BatchNorm's statistics are among them
inference = extractor(two_photos, training=False)


def call_in_training_mode():
    """How far the features, and the base's stored weights, move in one call in training mode (as in fit)."""
    features_moved = np.max(np.abs(extractor(two_photos, training=True) - inference))
    now = mobilenet.get_weights()
    weights_moved = max(np.max(np.abs(after - before)) for after, before in zip(now, stored, strict=True))
    return float(features_moved), float(weights_moved)


frozen = call_in_training_mode()
mobilenet.trainable = True  # unfrozen, as for fine-tuning
unfrozen = call_in_training_mode()
mobilenet.trainable = False
mobilenet.set_weights(stored)  # undo what the unfrozen call did to the statistics
print(f"frozen base:   features move by {frozen[0]:.3g}, stored weights by {frozen[1]:.3g}")
print(f"unfrozen base: features move by {unfrozen[0]:.3g}, stored weights by {unfrozen[1]:.3g}")
course.record("training_mode", {"frozen": frozen, "unfrozen": unfrozen})

# %% [markdown]
# Frozen, the base computes exactly the same thing in both modes and changes nothing. Unfrozen, its BatchNorm
# layers normalise with the statistics of the current batch and move their stored ones towards it — what
# fine-tuning on small batches must avoid. Older tutorials protect them by calling the base with
# `training=False`; in Keras 3 that flag does not survive `fit()` once the layers are trainable, so lesson 04
# keeps the BatchNorm layers `trainable = False` instead.
#
# > ⚠️ **Pitfall — copied code from older tutorials.** Many transfer learning tutorials (including the
# > seeds of this course) use `ImageDataGenerator` (deprecated in Keras 3; use `tf.data` and preprocessing
# > layers), put a `Flatten()` on top of the base (use global average pooling: far fewer parameters, any
# > input size), end in `Dense(..., activation="softmax")` with a loss that expects logits, or
# > `Dense(1, activation="sigmoid")` with `from_logits=True` (one convention end to end: logits out,
# > `from_logits=True`), and count on `training=False` to keep BatchNorm in inference mode while
# > fine-tuning — in Keras 3 only `trainable = False` on those layers does (lesson 04).
#
# The course's helper `tlcourse.models.backbone(name)` is these lines as one model: the base's preprocessing,
# the base, the pooling. Same network, same features (offline both are random, so the helper's copy first
# gets the same random weights):

# %%
packaged = tlcourse.models.backbone("mobilenet_v2", weights=weights, input_shape=(128, 128, 3))
if course.offline:
    packaged.set_weights(mobilenet.get_weights())
difference = float(np.max(np.abs(packaged(two_photos) - inference)))
print(f"features {tuple(inference.shape)}: largest difference, plain Keras vs. backbone: {difference:.1e}")
course.record("backbone_vs_plain_keras", difference)

# %% [markdown]
# The helper earns its place offline: `keras.applications` can only download its weights, while
# `tlcourse.models.backbone("efficientnet_lite0")` builds an ImageNet-trained EfficientNet-Lite0 whose
# weights come with a Python package — the base the rest of this lesson looks inside.
#
# ## 3. What a trained CNN computes, layer by layer
#
# Why can weights learned on ImageNet help with *your* photos? Because most of what a CNN learns is not
# specific to ImageNet's classes. Looking at a trained network (Zeiler & Fergus, 2014; Yosinski et al., 2014):
#
# - the **first layers** respond to edges, colour blobs and simple gradients — useful for any photo;
# - **middle layers** combine them into textures and repeated patterns (fur, mesh, stripes);
# - **late layers** respond to object parts and whole objects, and are the most specific to the source task.
#
# Let us check this on a real photo. `tlcourse.viz.feature_maps` runs one image through the base and shows
# the most active channels of a few layers, from the first convolution to the last block.

# %%
lite0 = tlcourse.models.backbone("efficientnet_lite0")
print(
    f"{lite0.name}: {lite0.count_params():,} parameters, {len(lite0.layers)} layers, output {lite0.output_shape}"
)
maps = tlcourse.viz.feature_maps(lite0, photos["chelsea"], max_channels=8)
maps.figure

# %% [markdown]
# Read the figure from top to bottom: the first rows are sharp, photo-like maps (each channel lights up
# along edges of one orientation or on one colour), the later rows are coarse grids in which a channel is
# active over a whole region such as the fur or the eyes. Each row's title gives the layer's output
# shape: the maps get smaller and more numerous as we go deeper. The *receptive field* printed next to it
# is how many input pixels one position of the map can see — it grows layer by layer, which is why deep
# channels can respond to whole parts.
#
# The first convolution's kernels can be drawn directly as small RGB images, because they act on the
# pixels themselves:

# %%
import matplotlib.pyplot as plt

first_conv = next(layer for layer in lite0.layers if isinstance(layer, keras.layers.Conv2D))
kernels = first_conv.kernel.numpy()  # (height, width, input channels, filters)
height, width, colours, how_many = kernels.shape
print(f"{first_conv.name}: {how_many} kernels of {height}×{width} pixels × {colours} colours")
fig, axes = plt.subplots(2, how_many // 2, figsize=(9.5, 1.6))
for i, ax in enumerate(axes.flat):
    kernel = kernels[..., i]
    ax.imshow((kernel - kernel.min()) / np.ptp(kernel))  # stretched to [0, 1] to show as colour
    ax.set_axis_off()
fig.suptitle(f"The {how_many} kernels of {first_conv.name}, each stretched to the full colour range")
plt.show()

# %% [markdown]
# Lite0's first kernels are tiny (the printout gives their size), so each can encode little more than a
# colour contrast or a simple light/dark edge; networks with larger first kernels, such as AlexNet's 11×11
# (Krizhevsky et al., 2012, figure 3), show the classic oriented edges and colour blobs. Either way, these are
# detectors that any photo needs, whatever the classes — that generality is what makes the lower layers
# reusable.
#
# A static figure shows a few layers; the **feature-map explorer** lets you walk through all of them. Pick
# an image (or upload your own photo), then move the *depth* slider or choose a layer: the panel on the right
# shows that layer's channels, 16 at a time (◀ ▶ turn the pages). Watch the maps shrink and become more
# abstract as you go deeper. (The explorer needs a live kernel: in a saved or rendered notebook it shows nothing.)

# %%
explorer = tlcourse.viz.FeatureMapExplorer(lite0)
explorer

# %% [markdown]
# ## 4. A first transfer experiment: pretrained features vs. training from scratch
#
# The claim of transfer learning is that with **few labels**, a network that starts from pretrained weights
# beats the same network starting from random weights. A fair test needs:
#
# - **the same architecture** for both, so that only the starting weights differ;
# - **new classes** in the target task, so the base cannot simply have memorised them;
# - **several seeds** (which examples get labelled, the initial weights), because with 5 or 50 training
#   images one lucky draw can swing accuracy by ten points or more (the run below prints by how much) — we
#   report mean ± standard deviation;
# - a **held-out test set** that neither recipe trains on.
#
# Offline, the source task is Fashion-MNIST's classes 0–4 (T-shirt, trouser, pullover, dress, coat), learned by
# a small CNN, and the target task is classes 5–9 (sandal, shirt, sneaker, bag, ankle boot), which the source
# network never saw. Online, the source is ImageNet and the target five kinds of flowers (`tf_flowers`).

# %%
if course.offline:
    source = tlcourse.models.source_model()  # small_cnn trained on classes 0-4; cached after the first run
    target = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9])
    # Cut the source network before its dense layers, the part most specific to its own five classes.
    base = keras.Model(source.inputs, source.get_layer("gap").output, name="source_features")
    architecture = "small_cnn"
    trained = tlcourse.models.source_facts(source)
    print(
        f"source: {trained['dataset']}, {trained['train_size']:,} labelled images, {trained['epochs']} epochs, "
        f"test accuracy {trained['test_accuracy']:.1%}; training it took {trained['train_seconds']:.0f} s"
    )
else:
    architecture = "efficientnet_lite0"
    base = tlcourse.models.backbone(
        architecture, weights="imagenet", input_shape=(budget.image_size, budget.image_size, 3)
    )
    target = tlcourse.data.load("tf_flowers", image_size=budget.image_size)
    print(f"source: ImageNet, 1.28 M labelled photos; base {architecture}")
base.trainable = False
print(target)

# %% [markdown]
# **Transfer** needs the base's features of every image once: the base is frozen, so they never change.
# `tlcourse.train.extract_features` runs the base over a split in inference mode and caches the result
# (lesson 03 explains why this is the fastest way to train a head).

# %%
import time

started = time.perf_counter()
pool = tlcourse.train.extract_features(base, target, split="train", verbose=0)
test = tlcourse.train.extract_features(base, target, split="test", verbose=0)
extract_seconds = time.perf_counter() - started
x_pool, y_pool = target.arrays("train")
x_test, y_test = target.arrays("test")
print(f"features: train pool {pool.features.shape}, test {test.features.shape} ({extract_seconds:.1f} s)")

# %% [markdown]
# The two recipes, given the same labelled examples:
#
# - **transfer**: a linear head on the frozen features. A linear head is a multinomial logistic regression,
#   so we train it to convergence with scikit-learn's `LogisticRegression`, which takes milliseconds
#   (section 2 built the same head as a Keras `Dense` layer; lesson 03 trains it in Keras);
# - **scratch**: the same architecture with random weights, every layer trainable, trained with Adam for
#   `epochs` epochs — the same short training budget at every labels-per-class setting.

# %%
import tensorflow as tf
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

epochs = EPOCHS or 3 * budget.epochs
num_classes = target.num_classes


def labelled_subset(k, seed):
    """The indices of k labelled training examples per class, drawn with this seed."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(y_pool == c), k, replace=False) for c in range(num_classes)]
    )


def build_scratch_model(input_shape):
    """The target architecture with random weights, every layer trainable."""
    if course.offline:
        return tlcourse.models.small_cnn(input_shape, num_classes)
    random_base = tlcourse.models.backbone(architecture, weights=None, input_shape=input_shape)
    # Everything learns, BatchNorm included: random weights have nothing to protect.
    random_base.trainable = True
    return keras.Sequential([random_base, keras.layers.Dense(num_classes)])


_compiled = {}


def train_from_scratch(images, labels, seed, epochs):
    # Compiling a new Keras model costs a couple of seconds of tracing, more than a short run itself. So we
    # compile one model and, before each run, give it the random weights of a freshly built twin (drawn with
    # this seed) and its optimizer's initial state: exactly equivalent to building a new model every time.
    if images.shape[1:] not in _compiled:
        model = build_scratch_model(images.shape[1:])
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.optimizer.build(model.trainable_variables)
        _compiled[images.shape[1:]] = (model, [v.numpy() for v in model.optimizer.variables])
    model, optimizer_start = _compiled[images.shape[1:]]
    tlcourse.reseed(seed)  # not keras.utils.set_random_seed: see "Seeds without starting over" below
    model.set_weights(build_scratch_model(images.shape[1:]).get_weights())
    for variable, value in zip(model.optimizer.variables, optimizer_start, strict=True):
        variable.assign(value)
    # A tf.data pipeline rather than NumPy arrays: Keras adds a fixed cost to every epoch over arrays,
    # more than these tiny epochs take themselves.
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images), seed=seed)
    # The dataset reshuffles itself every epoch; fit's own `shuffle` is for arrays only.
    model.fit(batches.batch(budget.batch_size), epochs=epochs, shuffle=False, verbose=0)
    return model


def accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=1) == labels))


rows = []
runs = [(k, seed) for k in LABELS_PER_CLASS for seed in budget.seeds]
for k, seed in tqdm(runs, desc="transfer vs scratch"):
    chosen = labelled_subset(k, seed)
    started = time.perf_counter()
    with threadpool_limits(limits=1):  # scikit-learn's threads would fight TensorFlow's for the same cores
        head = LogisticRegression(max_iter=2000).fit(pool.features[chosen], y_pool[chosen])
    rows.append({"recipe": "transfer", "fraction": k, "seed": seed, "seconds": time.perf_counter() - started,
                 "accuracy": accuracy(head.decision_function(test.features), y_test)})  # fmt: skip
    started = time.perf_counter()
    net = train_from_scratch(x_pool[chosen], y_pool[chosen], seed, epochs)
    rows.append({"recipe": "scratch", "fraction": k, "seed": seed, "seconds": time.perf_counter() - started,
                 "accuracy": accuracy(net.predict(x_test, batch_size=256, verbose=0), y_test)})  # fmt: skip

# %%
fig = tlcourse.viz.compare(rows, by="fraction")
fig.axes[0].set_xlabel("labelled training examples per class")
fig.axes[0].set_title(f"Test accuracy, mean ± std over {len(budget.seeds)} seeds (scratch: {epochs} epochs)")
fig

# %%
results = {}
for k in LABELS_PER_CLASS:
    results[str(k)] = {}
    for recipe in ("transfer", "scratch"):
        values = [r["accuracy"] for r in rows if r["recipe"] == recipe and r["fraction"] == k]
        results[str(k)][recipe] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)),
                                   "n": len(values)}  # fmt: skip
    t, s = results[str(k)]["transfer"], results[str(k)]["scratch"]
    print(
        f"{k:>2} labels/class: transfer {t['mean']:.2f} ± {t['std']:.2f}   scratch {s['mean']:.2f} ± {s['std']:.2f}"
        f"   difference {t['mean'] - s['mean']:+.2f}"
    )
spread = max(
    (np.ptp([r["accuracy"] for r in rows if r["recipe"] == recipe and r["fraction"] == k]), recipe, k)
    for recipe in ("transfer", "scratch") for k in LABELS_PER_CLASS
)  # fmt: skip
print(f"chance level: {1 / num_classes:.2f}; scratch trained for {epochs} epochs")
print(f"largest spread between seeds: {spread[0] * 100:.0f} points ({spread[1]}, {spread[2]} labels/class)")
course.record("accuracy", results)
course.record("largest_seed_spread", float(spread[0]))
course.record("scratch_epochs", epochs)

# %% [markdown]
# The bars are the mean test accuracy over the seeds, the whiskers one standard deviation. Compare each
# pair of bars with the printed differences: a frozen base that was trained on *other* classes gives a linear
# head features good enough to classify new classes from a handful of examples, while the network that has
# to learn its features from those same few images, under a short training budget, lags behind.
#
# ### What it cost — and what happens if scratch trains longer
#
# Training a network from scratch is a lot more work per example than fitting a head on features. The
# timings below come from this run:

# %%
seconds = {recipe: float(np.mean([r["seconds"] for r in rows if r["recipe"] == recipe]))
           for recipe in ("transfer", "scratch")}  # fmt: skip
print(
    f"transfer: {extract_seconds:.1f} s to extract all features once, then {seconds['transfer']:.3f} s per head"
)
print(f"scratch:  {seconds['scratch']:.2f} s per run ({epochs} epochs)")
if course.offline:
    print(f"the source network itself took {trained['train_seconds']:.0f} s to train, once, on this machine")
course.record("seconds_per_run", seconds)

# %% [markdown]
# ### Seeds without starting over
#
# `train_from_scratch` seeds each run with `tlcourse.reseed(seed)`, not with Keras's
# `keras.utils.set_random_seed(seed)`. Both set the same seeds: Python's `random` (Keras draws the seeds of
# its initial weights and random layers from it), NumPy's, Keras's and TensorFlow's (`tf.data` shuffles use
# it). But `set_random_seed` sets TensorFlow's with `tf.random.set_seed`, which also empties TensorFlow's
# cache of prepared functions: the next `fit` of *every* model traced so far is prepared again, which can
# cost more than a short run itself. `reseed` sets the same seed and keeps the cache, so a run gives exactly
# the same numbers. Without the package, `random.seed(seed)` and `np.random.seed(seed)` give a model you build
# afterwards the same initial weights (shuffles then follow TensorFlow's seed as it was). Both ways below, on
# the compiled scratch model:

# %%
chosen = labelled_subset(min(LABELS_PER_CLASS), budget.seeds[0])
seedings = {"keras.utils.set_random_seed": keras.utils.set_random_seed, "tlcourse.reseed": tlcourse.reseed}
run_seconds, first_weights = {name: [] for name in seedings}, {}
for name, seeding in [*seedings.items()] * 2:  # twice each, alternating; the faster of the two counts
    seeding(0)
    first_weights[name] = build_scratch_model(x_pool.shape[1:]).get_weights()
    seeding(0)
    started = time.perf_counter()
    train_from_scratch(x_pool[chosen], y_pool[chosen], budget.seeds[0], epochs)
    run_seconds[name].append(time.perf_counter() - started)
run_seconds = {name: min(times) for name, times in run_seconds.items()}
same_weights = all(np.array_equal(a, b) for a, b in zip(*first_weights.values(), strict=True))
for name, value in run_seconds.items():
    print(f"one scratch run after {name + '(0)':31s} {value:.2f} s")
print(f"the same initial weights from both: {same_weights}")
course.record("reseed", {"seconds": run_seconds, "same_weights": same_weights})

# %% [markdown]
# The first run pays for preparing the training step again; the second finds it ready. The larger the
# model, the larger the cost: seconds for lesson 09's text encoder on a CPU. From here on the lessons seed
# their loops over seeds with `tlcourse.reseed`.
#
# Is the scratch network just short of training? Let us give it **five times as many epochs** at the
# largest labels-per-class setting and see how far it gets.

# %%
k_max = max(LABELS_PER_CLASS)
longer = []
for seed in tqdm(budget.seeds, desc=f"scratch, {5 * epochs} epochs"):
    chosen = labelled_subset(k_max, seed)
    net = train_from_scratch(x_pool[chosen], y_pool[chosen], seed, 5 * epochs)
    longer.append(accuracy(net.predict(x_test, batch_size=256, verbose=0), y_test))
transfer_mean, short_mean = results[str(k_max)]["transfer"]["mean"], results[str(k_max)]["scratch"]["mean"]
gap_closed = (np.mean(longer) - short_mean) / (transfer_mean - short_mean)
print(
    f"{k_max} labels/class: scratch with {5 * epochs} epochs {np.mean(longer):.2f} ± {np.std(longer, ddof=1):.2f}"
    f"  (with {epochs} epochs: {short_mean:.2f}; transfer {transfer_mean:.2f})"
)
print(f"the longer training closed {gap_closed:.0%} of the gap between scratch and transfer")
course.record("scratch_longer", {"epochs": 5 * epochs, "mean": float(np.mean(longer)), "gap_closed": float(gap_closed),
                                 "std": float(np.std(longer, ddof=1)), "n": len(longer)})  # fmt: skip

# %% [markdown]
# Compare the two scratch numbers above with the transfer number. Part of what transfer buys is **compute and
# time**: with five times the epochs the network trained from scratch improves, and on this easy target it
# closes much of the gap (the share is printed above). On Fashion-MNIST, where a sandal and a bag differ in
# their outline, a small CNN can learn a lot from 50 images if you let it train long enough.
#
# What the `full` profile is expected to show on real photos — this run does not measure it: a base with
# millions of weights learns far less from 50 flower photos than from ImageNet's 1.28 million, so the gap
# should stay wide. Published runs with more data point the same way: in *Dive into Deep Learning* (Zhang et
# al., section "Fine-Tuning"), a ResNet-18 trained on 2,000 hot-dog photos for the same number of epochs
# reached 0.94 test accuracy fine-tuned from ImageNet and 0.85 from scratch. With thousands of images and
# long training, scratch can catch up on some datasets (Kornblith, Shlens & Le, 2019): how much transfer
# buys is something to measure, as lesson 07 does over data fractions.
#
# > ⚠️ **Pitfall — comparing unequal things.** A "transfer wins" result means something only if both recipes
# > used the same architecture, the same labelled examples, the same test set and a stated training budget,
# > repeated over seeds. With 5–50 training images a single run proves nothing: look at the error bars.
#
# > ⚠️ **Pitfall — a distant source.** Transfer helps when the source resembles the target. An ImageNet
# > base is a weak start for tiny grayscale images of clothes, which is why the offline version of this
# > lesson transfers from other Fashion-MNIST classes instead; lesson 05 shows what a bad match does.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/01_what_is_transfer_learning.ipynb): you will put the workflow's
# steps in order, load a different `keras.applications` base with the preprocessing *it* needs, and turn the
# Fashion-MNIST source network into a classifier for new classes that reaches a target accuracy.
#
# ## Summary
#
# - Training from scratch costs data (ImageNet: 1.28 M labelled photos), compute (GPU-days), time and
#   expertise. Transfer learning pays them once and reuses the result.
# - A trained CNN's early layers detect edges and colours, middle layers textures, late layers parts and
#   objects; the early and middle features are useful far beyond the source task.
# - The workflow: pick a base → freeze → new head → train the head → optionally fine-tune → evaluate. In
#   Keras: `keras.applications.<Base>(include_top=False, weights="imagenet")`, its own `preprocess_input`,
#   global average pooling and a `Dense` head; `base.trainable = False` also keeps its BatchNorm layers in
#   inference mode.
# - Measured here: with few labels and a short training budget, pretrained features + a linear head beat the
#   same architecture trained from scratch by the margins printed above, in a fraction of the training time;
#   given five times the epochs, scratch closes much of the gap on this easy target — transfer saves compute too.
#
# ## Further reading
#
# - Yosinski, Clune, Bengio & Lipson, *How transferable are features in deep neural networks?*, NeurIPS 2014.
#   https://arxiv.org/abs/1411.1792
# - Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*, ECCV 2014.
#   https://arxiv.org/abs/1311.2901
# - Pan & Yang, *A Survey on Transfer Learning*, IEEE TKDE 2010. https://doi.org/10.1109/TKDE.2009.191
# - Krizhevsky, Sutskever & Hinton, *ImageNet Classification with Deep Convolutional Neural Networks*,
#   NeurIPS 2012.
# - Goyal et al., *Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour*, 2017.
#   https://arxiv.org/abs/1706.02677
# - Zoph, Vasudevan, Shlens & Le, *Learning Transferable Architectures for Scalable Image Recognition*,
#   CVPR 2018. https://arxiv.org/abs/1707.07012
# - Kornblith, Shlens & Le, *Do Better ImageNet Models Transfer Better?*, CVPR 2019.
#   https://arxiv.org/abs/1805.08974
# - Zhang, Lipton, Li & Smola, *Dive into Deep Learning*, section "Fine-Tuning". https://d2l.ai/chapter_computer-vision/fine-tuning.html
# - Keras API reference *Keras Applications* (each base and its `preprocess_input`): https://keras.io/api/applications/
# - Keras guide *Transfer learning & fine-tuning*: https://keras.io/guides/transfer_learning/
# - TensorFlow tutorial *Transfer learning and fine-tuning*:
#   https://www.tensorflow.org/tutorials/images/transfer_learning
#
# ## Questions
#
# 1. Name the four costs of training from scratch that transfer learning avoids, with one number for each.
# 2. Which layers of a CNN learn the most general features, and what do they respond to?
# 3. List the six steps of the workflow. Which of them are "feature extraction", and which is "fine-tuning"?
# 4. Why must the scratch baseline use the *same* architecture, and why do we repeat the experiment over seeds?
# 5. In your run, at which labels-per-class budget was the gap between transfer and scratch largest, and why
#    would you expect it to shrink with more labels?
