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
# # 03 · Feature extraction
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/03_feature_extraction.ipynb)
#
# **Time:** about 40 minutes.
#
# **You will learn:**
# - to freeze a pretrained base in plain Keras and check it by counting trainable weights;
# - why the input must be preprocessed exactly as the base expects — and what a mismatch costs;
# - why a `GlobalAveragePooling2D` head beats a `Flatten` head;
# - the fast path, in plain Keras: compute the base's features once, batch by batch, and train the head on
#   them — and when you cannot (augmentation);
# - to read a confusion matrix and the model's worst mistakes.
#
# Prerequisites: lessons 01–02 (a frozen base + a new head, inductive transfer).

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
HEAD_EPOCHS = None  # epochs for the head in both training paths; None: max(budget.epochs, 4)
LEARNING_RATE = 3e-3  # Adam's learning rate for the head, the same in both paths

# %%
import time

import tlcourse

course = tlcourse.setup("03", profile=PROFILE)  # first: it quiets TensorFlow's start-up logs

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

budget = course.budget
epochs = HEAD_EPOCHS or max(budget.epochs, 4)

# %% [markdown]
# ## 1 · The data and the base
#
# Online we use `cats_vs_dogs` (23,262 photos, two classes — the seeds' use case); offline tlcourse
# announces a stand-in it can build without a network. Images arrive as `uint8` in [0, 255], resized
# to the profile's image size. The base is EfficientNet-Lite0 with its ImageNet weights: a small,
# fast CNN that works both online and offline.

# %%
data = tlcourse.data.load("cats_vs_dogs", image_size=budget.image_size)
print(data)
base = tlcourse.models.backbone("efficientnet_lite0", input_shape=(budget.image_size, budget.image_size, 3))
print(
    f"base: {base.name}, {base.count_params():,} parameters, output: a vector of {base.output.shape[-1]} numbers"
)

# %% [markdown]
# ## 2 · Freeze the base, add a new head — in plain Keras
#
# **Feature extraction** keeps every weight of the pretrained base as it is and trains only a new
# classifier ("head") on top. At work the base comes from `keras.applications`: `include_top=False` drops
# its ImageNet classifier, `pooling="avg"` ends it with global average pooling (section 3), and the
# EfficientNet models take raw [0, 255] pixels (they rescale inside). One attribute freezes it:
# `base.trainable = False` marks all of its weights as non-trainable, recursively through all its layers.
# Count before and after:


# %%
def parameters(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


# Keras downloads the ImageNet weights on first use. Offline it cannot, so this cell then builds the same
# network with random weights (weights=None): every shape and count below is the same.
effnet = keras.applications.EfficientNetB0(
    include_top=False,
    weights=None if course.offline else "imagenet",
    pooling="avg",
    input_shape=(budget.image_size, budget.image_size, 3),
)
print(f"trainable before freezing: {len(effnet.trainable_weights)} tensors, {parameters(effnet.trainable_weights):,} numbers")
effnet.trainable = False
print(f"trainable after freezing:  {len(effnet.trainable_weights)} tensors, {parameters(effnet.trainable_weights):,} numbers")
print(f"features per image: {effnet.output.shape[-1]}")

# %% [markdown]
# The rest of the lesson runs the same lines on `base`, EfficientNet-Lite0, whose ImageNet weights come
# with a Python package and so work offline too; any frozen `keras.applications` base drops in its place.

# %%
base.trainable = False
print(f"EfficientNet-Lite0 frozen: {parameters(base.trainable_weights):,} trainable numbers of {base.count_params():,}")

# %% [markdown]
# Now the head. We build the model on a fresh `Input`, call the frozen base (its BatchNormalization layers,
# frozen with it, normalise with their stored ImageNet statistics even when `fit()` runs the model in
# training mode — lesson 01; `training=False` is the Keras guide's convention, and lesson 04 shows why it
# is not what protects them once the base is unfrozen) and add a `Dense` layer with one output per class and **no activation**: it outputs *logits*, and the loss
# is told so with `from_logits=True`. (The seeds mix `softmax`/`sigmoid` outputs with losses in different
# ways; one convention end to end avoids a whole family of bugs.)


# %%
def in_graph_model(base, num_classes):
    inputs = keras.Input((budget.image_size, budget.image_size, 3))
    features = base(inputs, training=False)
    logits = keras.layers.Dense(num_classes, name="logits")(features)
    model = keras.Model(inputs, logits, name="frozen_base_with_head")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


tlcourse.reseed(0)
model = in_graph_model(base, data.num_classes)
print(
    f"trainable in the whole model: {parameters(model.trainable_weights):,} of {model.count_params():,} numbers"
)
for layer in model.layers:
    print(f"  {layer.name:24s} trainable weights: {parameters(layer.trainable_weights):>8,}")

# %% [markdown]
# Only the head trains: `features → logits` is a weight matrix of (feature size × classes) plus one bias
# per class.
#
# > ⚠️ **Pitfall — freezing after compiling.** `trainable` is read when the model is compiled. Change it
# > (freeze, unfreeze) *then* call `compile()` again, or Keras keeps training what it was told before.
# > And check: the count above is the cheapest test that you froze what you meant to freeze.

# %% [markdown]
# ## 3 · Pooling, not flattening
#
# The convolutional part of the base outputs a *feature map*: for each of a few × a few positions, a
# vector of channels. Two ways to turn it into one vector for the head:
#
# - `Flatten` keeps every position: the head gets positions × channels inputs — and needs a weight for
#   each of them, times each output.
# - `GlobalAveragePooling2D` (GAP) averages each channel over the positions: the head gets only
#   `channels` inputs, whatever the image size. The base returned by `tlcourse.models.backbone` already
#   ends with it.
#
# Let's count the head's parameters both ways for our image size and for a 224 × 224 input.

# %%
channels = base.output.shape[-1]  # GAP keeps one number per channel of the feature map
stride = 32  # EfficientNet (like ResNet, MobileNet, VGG) halves the resolution five times: 2**5
rows = []
for side in (budget.image_size, 224):
    grid = side // stride
    for pooling in ("Flatten", "GlobalAveragePooling2D"):
        head = keras.Sequential(
            [
                keras.Input((grid, grid, channels)),
                getattr(keras.layers, pooling)(),
                keras.layers.Dense(data.num_classes),
            ]
        )
        rows.append((side, f"{grid}×{grid}×{channels}", pooling, head.count_params()))
print(f"{'input':>6}  {'feature map':>12}  {'pooling':24}  head parameters")
for side, shape, pooling, count in rows:
    print(f"{side:>6}  {shape:>12}  {pooling:24}  {count:>10,}")
flatten_224, gap_224 = rows[2][3], rows[3][3]
print(f"at 224 px, Flatten needs {flatten_224 / gap_224:.0f}× the parameters of GAP")

# %% [markdown]
# GAP's head stays the same size at any resolution and has far fewer weights to fit from a small
# dataset, so it overfits less; it also does not care *where* in the image a feature fired, which is
# what a classifier wants. Two of the seeds put a `Flatten()` + `Dense(256)` head on VGG16/ResNet50 —
# with VGG16 at 224 px that is 7 × 7 × 512 × 256 ≈ 6.4 million weights in one layer. Use GAP.

# %% [markdown]
# ## 4 · Two ways to train the head
#
# With a frozen base, the base computes *exactly the same features* for an image in every epoch. Two
# ways to train follow:
#
# 1. **In the graph** (the TF tutorial's recipe): the base sits inside the model and `model.fit` runs
#    every image through it in every epoch.
# 2. **Cached features**: run the base once over the dataset, keep the feature vectors, and train the
#    head on them — an epoch is then a pass over a small matrix.
#
# Both train the same head (one `Dense` layer, same optimizer, learning rate, batch size and number of
# epochs) on the same images. We time them side by side, each from scratch — the cached path pays for
# its one pass of the base.


# %%
class EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch (the first one also pays for building the graph)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


train_batches = data.batches("train", batch_size=budget.batch_size)
test_batches = data.batches("test", batch_size=budget.batch_size)

tlcourse.reseed(0)
model = in_graph_model(base, data.num_classes)
in_graph_timer = EpochTimer()
started = time.perf_counter()
model.fit(train_batches, epochs=epochs, callbacks=[in_graph_timer], shuffle=False, verbose=2)
in_graph_seconds = time.perf_counter() - started
in_graph_acc = model.evaluate(test_batches, verbose=0)[1]
print(f"in the graph: {epochs} epochs in {in_graph_seconds:.1f} s, test accuracy {in_graph_acc:.1%}")

# %% [markdown]
# The cached path in plain Keras: one pass of the frozen base over the same `tf.data` pipeline, batch by
# batch (`predict_on_batch`), keeping each batch's features with its labels — the pipeline's order does not
# matter, they travel together, and no more than one batch of images is ever a float array — then a
# `Dense` head, the same as in the graph, trained on the arrays.


# %%
def features_of(base, batches):
    """One pass of a frozen base over a pipeline of (images, labels): the features (float32) and labels."""
    features, labels = [], []
    for images, batch_labels in batches:
        features.append(np.asarray(base.predict_on_batch(images), dtype="float32"))
        labels.append(batch_labels.numpy())
    return np.concatenate(features), np.concatenate(labels)


tlcourse.reseed(0)
started = time.perf_counter()
train_x, train_y = features_of(base, train_batches)
extraction_seconds = time.perf_counter() - started
head = keras.Sequential([keras.Input(train_x.shape[1:]), keras.layers.Dense(data.num_classes, name="logits")])
head.compile(
    optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
head.fit(train_x, train_y, epochs=epochs, batch_size=budget.batch_size, verbose=2)
cached_seconds = time.perf_counter() - started
test_x, test_y = features_of(base, test_batches)
cached_acc = head.evaluate(test_x, test_y, verbose=0)[1]
image_bytes = budget.image_size**2 * 3  # one RGB image in the pipeline, uint8
print(
    f"cached features: extraction {extraction_seconds:.1f} s + head, {cached_seconds:.1f} s in all, "
    f"test accuracy {cached_acc:.1%}"
)
print(
    f"{train_x.shape[0]} training images → features {train_x.shape}, {train_x.dtype}: "
    f"{train_x.nbytes / 2**20:.1f} MiB, {train_x.itemsize * train_x.shape[1]:,} bytes per image "
    f"against {image_bytes:,} for the image itself (uint8)"
)

# %% [markdown]
# Two kinds of cost hide in these totals: **one-off** costs (Keras builds a graph the first time a model
# trains or predicts; the data pipeline decodes and resizes the images on its first pass) and the
# **per-epoch** cost. The one-off costs are similar for both paths; the per-epoch cost is where they
# differ. We read it from the epochs after the first: the in-graph timer above, and three extra epochs
# of a copy of the cached head.

# %%
head_copy = keras.models.clone_model(head)
head_copy.compile(
    optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
)
head_timer = EpochTimer()
head_copy.fit(
    train_x, train_y, epochs=3, batch_size=budget.batch_size,
    callbacks=[head_timer], verbose=0,
)  # fmt: skip
in_graph_epoch = float(np.median(in_graph_timer.seconds[1:]))
head_epoch = float(np.median(head_timer.seconds[1:]))

speedup = in_graph_seconds / cached_seconds
speedup_per_epoch = in_graph_epoch / head_epoch
break_even = extraction_seconds / max(in_graph_epoch - head_epoch, 1e-9)
course.record("in_graph_acc", in_graph_acc)
course.record("cached_acc", cached_acc)
course.record("in_graph_seconds", in_graph_seconds)
course.record("cached_seconds", cached_seconds)
course.record("speedup", speedup)
course.record("in_graph_epoch_seconds", in_graph_epoch)
course.record("head_epoch_seconds", head_epoch)
course.record("extraction_seconds", extraction_seconds)
course.record("feature_bytes", {"dtype": str(train_x.dtype), "per_image": train_x.itemsize * train_x.shape[1],
                                "image_per_image": image_bytes})  # fmt: skip
course.record("speedup_per_epoch", speedup_per_epoch)
course.record("epochs", epochs)
print(
    f"accuracy: in the graph {in_graph_acc:.1%}, cached {cached_acc:.1%} "
    f"(difference {abs(in_graph_acc - cached_acc) * 100:.1f} points)"
)
print(
    f"wall time for {epochs} epochs, everything included: in the graph {in_graph_seconds:.1f} s, "
    f"cached {cached_seconds:.1f} s → {speedup:.1f}× faster"
)
print(
    f"one epoch after the first: in the graph {in_graph_epoch:.2f} s, cached head {head_epoch:.3f} s "
    f"→ {speedup_per_epoch:.0f}× faster per epoch"
)
print(f"the extraction ({extraction_seconds:.1f} s) has paid for itself after {break_even:.1f} epochs")

fig, axes = plt.subplots(1, 2, figsize=(10, 2.4))
axes[0].barh(
    ["cached features", "base in the graph"],
    [cached_seconds, in_graph_seconds],
    color=["tab:green", "tab:grey"],
)
axes[0].set_xlabel(f"seconds for {epochs} epochs, all included")
axes[0].set_title("Whole run")
axes[1].barh(
    ["cached features", "base in the graph"], [head_epoch, in_graph_epoch], color=["tab:green", "tab:grey"]
)
axes[1].set_xlabel("seconds per epoch (after the first)")
axes[1].set_title("One epoch")
fig.tight_layout()

# %% [markdown]
# The accuracies agree (both paths fit the same linear head to the same features; the order of the
# examples makes the small difference printed above). The wall times do not: an in-graph epoch runs the
# whole base over every image, a cached epoch only multiplies a small matrix — the per-epoch numbers
# above show the factor. The one-off costs (graph building, the first pass over the images, and for the
# cached path the extraction itself) weigh heavily in a short run on a small dataset; with real datasets
# and more epochs — or several heads to try — the per-epoch factor dominates the total.

# %% [markdown]
# The course's `tlcourse.train.extract_features(base, data, split=...)` is the same pass as a convenience:
# a progress bar, a check of the pixel range (section 5), and a cache on disk keyed by the base, its
# weights, the data, the split and the image size — a second call loads the features instead of
# computing them, and changing any of those computes them afresh. On the test split it gives the features
# computed by hand above:

# %%
test_features = tlcourse.train.extract_features(base, data, split="test", verbose=0)
again = tlcourse.train.extract_features(base, data, split="test", verbose=0)
helper_difference = float(np.abs(test_features.features - test_x).max())
course.record("helper_max_difference", helper_difference)
course.record("helper_same_labels", bool(np.array_equal(test_features.labels, test_y)))
print(
    f"largest difference from the features by hand: {helper_difference:.1e} "
    f"(features of size {np.abs(test_x).mean():.2f} on average); labels identical: "
    f"{np.array_equal(test_features.labels, test_y)}"
)
print(f"first call: {test_features.source} in {test_features.seconds:.2f} s; second call: {again.source} in {again.seconds:.3f} s")

# %% [markdown]
# ## 5 · Preprocessing that matches the base
#
# Every pretrained base expects its input scaled the way its training data was. The families in
# `keras.applications` disagree: MobileNetV2 wants [−1, 1], ResNet50 wants BGR channels minus the
# ImageNet mean ("caffe" style), EfficientNet takes [0, 255] and rescales inside. tlcourse puts the right
# preprocessing *inside* every base it builds, so you always feed raw [0, 255] pixels:

# %%
print(f"{'base':22s} {'input':>6}  preprocessing")
for info in tlcourse.models.catalog():
    print(f"{info.name:22s} {info.input_size:>6}  {info.preprocessing}")

# %% [markdown]
# What does a mismatch cost? A common bug copies `rescale=1./255` from an old tutorial (the seeds'
# `ImageDataGenerator`) into a pipeline whose base expects [0, 255]. We feed the *trained* cached head
# features of test images divided by 255 — the base now sees nearly black images:

# %%
y_test = test_features.labels
right = test_features.features  # computed above from raw [0, 255] pixels
dimmed_batches = test_batches.map(lambda images, labels: tf.cast(images, "float32") / 255.0)
wrong = base.predict(dimmed_batches, verbose=0)
right_acc = float(np.mean(head.predict(right, verbose=0).argmax(1) == y_test))
wrong_acc = float(np.mean(head.predict(wrong, verbose=0).argmax(1) == y_test))
course.record("preprocessing_right_acc", right_acc)
course.record("preprocessing_wrong_acc", wrong_acc)
print(f"test accuracy with the right input range [0, 255]: {right_acc:.1%}")
print(
    f"test accuracy with images divided by 255:          {wrong_acc:.1%}  (chance {1 / data.num_classes:.0%})"
)
print(f"mean feature value: right {right.mean():.3f}, wrong {wrong.mean():.3f}")

# %% [markdown]
# The printout shows the damage: the features of dimmed images are not the features the head was trained
# on. No error, no warning from Keras — just worse numbers. tlcourse's training helpers check the pixel
# range and stop such a run with an explanation:

# %%
try:
    few_images, few_labels = next(iter(test_batches))
    tlcourse.train.extract_features(
        base, (few_images.numpy() / 255.0, few_labels.numpy()), cache=False, verbose=0
    )
except tlcourse.TlcourseError as error:
    print(f"{type(error).__name__}: {error}")

# %% [markdown]
# > ⚠️ **Pitfall — preprocessing twice or not at all.** With `keras.applications` you call the family's
# > `preprocess_input` yourself (or put it in the model); with tlcourse bases it is already inside. Doing
# > both, or neither, gives the silent accuracy loss above. Put preprocessing *in the model* so that
# > training, evaluation and deployment cannot disagree.

# %% [markdown]
# ## 6 · Why augmentation needs the in-graph path
#
# Random augmentation (flips, rotations, zooms) shows the network a new version of each image in every
# epoch. The cached features were computed from *one* version of each image, so caching and
# augmentation do not mix: caching would freeze one random draw for good. Here are some random versions
# of one training image, and how far apart their features are:

# %%
augment = tlcourse.data.augmentation()
first_images, _ = next(iter(data.batches("train", batch_size=7, shuffle=False)))
x_train = first_images.numpy()  # seven training images as a numpy array
tlcourse.viz.augmentations(augment, x_train[0], n=6, seed=0)

# %%
views = np.stack([keras.ops.convert_to_numpy(augment(x_train[:1], training=True))[0] for _ in range(6)])
both = base.predict(np.concatenate([views, x_train[1:7].astype("float32")]), verbose=0)
view_features, other_features = both[:6], both[6:]


def mean_distance(features):
    """Mean Euclidean distance over all pairs of different rows."""
    distances = np.linalg.norm(features[:, None] - features[None], axis=-1)
    return float(distances[~np.eye(len(features), dtype=bool)].mean())


print(f"mean feature distance between versions of the same image: {mean_distance(view_features):.2f}")
print(f"mean feature distance between different images:           {mean_distance(other_features):.2f}")

# %% [markdown]
# Each version lands somewhere else in feature space (the distances above are not zero), which is exactly
# the variety augmentation is for. To use it, keep the base in the graph and augment on the fly:
# `data.batches("train", augment=augment)` applies it after the cache in the `tf.data` pipeline, or put
# the augmentation layers at the start of the model (they are active only when `training=True`). The
# price is the in-graph wall time measured above. A common compromise: cached features to choose a head
# quickly, then the in-graph path with augmentation (and later fine-tuning, lesson 04) for the final model.
#
# > ⚠️ **Pitfall — `.cache()` after random augmentation.** In a `tf.data` pipeline, caching *after* a
# > random map stores the first epoch's augmented images and replays them forever. Cache first, augment
# > after (that is the order `DataBundle.batches` uses). And `ImageDataGenerator`, used by the seeds, is
# > deprecated and no longer in Keras 3's `keras.preprocessing.image`: use preprocessing layers like the
# > ones above.

# %% [markdown]
# ## 7 · Linear or MLP head?
#
# A linear head (one `Dense`) draws straight boundaries in feature space; an MLP head adds a hidden
# `Dense(128, relu)` + `Dropout` and can bend them. On cached features trying both costs seconds. We
# compare them on the **validation** split (choosing on the test split would make its accuracy an
# optimistic estimate — lesson 05):

# %%
val_features = tlcourse.train.extract_features(base, data, split="val", verbose=0)
head_scores = {}
for kind in ("linear", "mlp"):
    candidate, _ = tlcourse.train.fit_head(
        train_x,
        train_y,
        num_classes=data.num_classes,
        head=kind,
        epochs=epochs,
        learning_rate=LEARNING_RATE,
        run_dir=False,
        verbose=0,
    )
    head_scores[kind] = float(
        np.mean(candidate.predict(val_features.features, verbose=0).argmax(1) == val_features.labels)
    )
    print(
        f"{kind:6s} head: validation accuracy {head_scores[kind]:.1%}, {candidate.count_params():,} parameters"
    )
course.record("head_val_acc", head_scores)
best_kind = max(head_scores, key=head_scores.get)
print(f"better on validation here: {best_kind}")

# %% [markdown]
# Which head wins depends on how separable the classes already are in the base's feature space and on
# how much data there is to fit the extra weights; with few examples per class, the linear head is the
# safer default. Decide on validation data, as above.

# %% [markdown]
# ## 8 · Where does it go wrong?
#
# Accuracy is one number; a **confusion matrix** shows which classes are taken for which (rows: true
# class, columns: predicted). The cached head gives it from the test features directly; for the pictures
# of the worst mistakes we use the in-graph model from section 4, which takes images.

# %%
tlcourse.viz.confusion(head, (test_features.features, test_features.labels), class_names=data.class_names)

# %% [markdown]
# The diagonal holds the correct answers; the largest off-diagonal cells are the pairs of classes the
# frozen features confuse most.

# %%
tlcourse.viz.predictions(model, test_batches, class_names=data.class_names, worst=True, n=12)

# %% [markdown]
# These are the most *confident* mistakes first. Look for patterns: ambiguous images, wrong labels in the
# data, or a class that only differs in details the frozen ImageNet features do not capture — that last
# case is what fine-tuning (lesson 04) addresses.

# %% [markdown]
# ## Your turn
#
# Open [`../exercises/03_feature_extraction.ipynb`](../exercises/03_feature_extraction.ipynb): freeze a
# base and attach a head so that exactly the head trains, compute and train on cached features, and reach
# the target accuracy on held-out data.
#
# ## Summary
#
# - `base.trainable = False` freezes every weight of the base; count trainable weights to check, and
#   recompile after changing it. Call the base with `training=False`.
# - Feed the base what it was trained on: put the matching preprocessing inside the model.
# - Pool (`GlobalAveragePooling2D`), don't flatten: a smaller head, independent of the image size.
# - With a frozen base and no augmentation, compute features once and train the head on them: same
#   accuracy, many times faster (measured above). Augmentation and fine-tuning need the in-graph path.
# - Choose the head (linear or MLP) on validation data; read the confusion matrix and the worst mistakes.
#
# ## Further reading
#
# - Keras guide: [Transfer learning & fine-tuning](https://keras.io/guides/transfer_learning/) (freezing,
#   `training=False`, the cats-vs-dogs recipe).
# - TensorFlow tutorial: [Transfer learning and fine-tuning](https://www.tensorflow.org/tutorials/images/transfer_learning).
# - M. Lin, Q. Chen, S. Yan, [Network In Network](https://arxiv.org/abs/1312.4400), 2013 — global average pooling.
# - M. Tan and Q. V. Le, [EfficientNet](https://arxiv.org/abs/1905.11946), ICML 2019.
# - J. Donahue et al., [DeCAF: A Deep Convolutional Activation Feature for Generic Visual Recognition](https://arxiv.org/abs/1310.1531),
#   ICML 2014 — frozen CNN features as a general-purpose representation.
#
# ## Questions
#
# 1. What does `base.trainable = False` change, and how do you check that it worked?
# 2. Why are cached features only valid while the base is frozen and there is no random augmentation?
# 3. A base expects inputs in [−1, 1] and you feed [0, 255]. Would you expect an error? What would you see?
# 4. How many weights does a `Flatten` → `Dense(10)` head have on a 7 × 7 × 1280 feature map, and with
#    GAP instead?
# 5. Why should the choice between a linear and an MLP head be made on the validation split?
