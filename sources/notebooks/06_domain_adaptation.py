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
# # 06 · Domain adaptation
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/06_domain_adaptation.ipynb)
#
# **Time:** about 45 minutes (the code runs in well under a minute on a laptop in the `ci` profile).
#
# **You will learn:**
# - to set up a *transductive* transfer problem honestly: labelled source images, **unlabelled** target
#   images, and target labels used only to measure;
# - **AdaBN**: re-estimate BatchNormalization's statistics on the target (three lines of plain Keras);
# - **Deep CORAL** and **DANN** (a gradient reversal layer in Keras 3, with its λ schedule): train
#   features that look the same in both domains;
# - **pseudo-labelling** with a confidence threshold;
# - to judge a gain fairly (against a control with the same extra training, over several seeds), to find
#   out which ingredient of a method did the work (an *ablation*), and to recognise when adaptation fails.
#
# Prerequisites: lesson 02 (the domain gap, source → `*_m`) and lesson 04 (BatchNormalization in training
# and inference mode).

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
SOURCE = "mnist"  # the labelled source domain; the target is SOURCE + "_m" (try "fashion_mnist" too)
SOURCE_EPOCHS = None  # None: 3 epochs, or more until the network has taken at least 100 optimizer steps
ADAPT_EPOCHS = 3  # more epochs, for every adaptation method and for the control
CORAL_WEIGHT = 1.0  # weight of the CORAL loss next to the label loss
WIDTH = 16  # filters in the first convolution of the small network

# %%
import tlcourse

course = tlcourse.setup("06", profile=PROFILE)  # first: it quiets TensorFlow's start-up logs

import math
import time
from collections import Counter

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from keras import ops

from tlcourse import adapt

budget = course.budget

# %% [markdown]
# ## 1 · The problem: labels in one domain, images in the other
#
# Lesson 02 measured a **domain gap**: a classifier trained on clean images loses most of its accuracy
# when the same kind of images is blended onto photos (the MNIST-M recipe of Ganin et al., 2016: each
# pixel becomes `|photo patch − image|`). This lesson is about closing that gap **without a single target
# label** — the *transductive* setting: same task, different domain, labels only in the source.
#
# What each side contributes:
#
# | | images | labels |
# |---|---|---|
# | source (`SOURCE`) | ✔ train | ✔ train |
# | target (`SOURCE_m`) | ✔ train (unlabelled) | ✘ — test labels only to *measure* |
#
# Offline, `mnist` is replaced by scikit-learn's handwritten digits (8 × 8 scans, upscaled to 28 × 28);
# online it is the real MNIST, and the target is the course's MNIST-M.

# %%
source = tlcourse.data.load(SOURCE)
target = tlcourse.data.load(f"{SOURCE}_m")
x_source, y_source = source.arrays("train")
x_target, _ = target.arrays("train")  # the target's training labels are dropped here, for good
source_test = source.arrays("test")
target_test = target.arrays("test")  # labels used only to measure accuracy
class_names = source.class_names
print(source)
print(target)
print(f"training data: {len(x_source)} labelled source images, {len(x_target)} unlabelled target images")

# %%
fig, axes = plt.subplots(2, 10, figsize=(12, 2.8))
for column in range(10):
    index = int(np.flatnonzero(source_test[1] == column % source.num_classes)[0])
    for row, images in enumerate([source_test[0], target_test[0]]):
        axes[row, column].imshow(images[index])
        axes[row, column].set_axis_off()
    axes[0, column].set_title(class_names[source_test[1][index]], fontsize=9)
axes[0, 0].text(-8, 14, "source", rotation=90, va="center")
axes[1, 0].text(-8, 14, "target", rotation=90, va="center")
fig.suptitle("The same test images in both domains")
fig.tight_layout()

# %% [markdown]
# Where a photo patch is dark, the strokes stay brighter than the background, as in the source; where it
# is bright, `|patch − image|` *inverts* them. Colour and texture are new as well. A person reads both rows
# at once; a network trained on the top row has never seen anything like the bottom one.
#
# ## 2 · The baseline: a source-only network with BatchNorm
#
# Every method below starts from the same small CNN, written in plain Keras: three
# convolution → BatchNormalization → ReLU blocks, global average pooling (the layer named `"features"`:
# the image's feature vector), and a `Dense` layer giving **logits**.
#
# > ⚠️ **Pitfall — BatchNorm's default momentum on a short run.** `BatchNormalization(momentum=0.99)`
# > (the default) averages its statistics over the last ~100 steps and starts from mean 0, variance 1.
# > Trained for only a couple of hundred steps, the stored statistics still carry part of that
# > starting guess, and the model is worse in inference mode than in training. With few steps, use
# > `momentum=0.9`.


# %%
def bn_cnn(*, seed, width=WIDTH, name="bn_cnn"):
    """A small CNN with BatchNorm: images in [0, 255] → 10 logits; the layer "features" is the embedding."""
    tlcourse.reseed(seed)
    inputs = keras.Input(x_source.shape[1:])
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for block, filters in enumerate((width, 2 * width, 2 * width)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)  # BN adds the bias
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        if block < 2:
            x = keras.layers.MaxPooling2D()(x)
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    outputs = keras.layers.Dense(source.num_classes)(features)
    return keras.Model(inputs, outputs, name=name)


LABEL_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compiled(model, *, learning_rate=2e-3, loss=LABEL_LOSS):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss)
    # no metrics: each adds work to every training step, and `evaluate` below measures accuracy.
    # Create Adam's variables now: left to fit, they appear inside the first traced training step,
    # and TensorFlow then traces that step twice (a second or two wasted per model on a CPU).
    model.optimizer.build(model.trainable_variables)
    return model


def copy_of(model):
    """A new model with the same layers and weights (clone_model copies the architecture only)."""
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


batch_size = budget.batch_size
source_epochs = SOURCE_EPOCHS or max(3, math.ceil(100 / math.ceil(len(x_source) / batch_size)))
adapt_epochs = ADAPT_EPOCHS
steps = Counter()  # optimizer steps taken by each kind of training run, added up at the end
print(
    f"source training: {source_epochs} epochs; every adaptation method (and the control): {adapt_epochs} more"
)


# %%
def outputs(model, images, batch_size=512):
    """The model's outputs, calling it batch by batch: for a few hundred images faster than predict,
    which first traces a function for every new model."""
    return np.concatenate(
        [np.asarray(model(images[i : i + batch_size].astype("float32"), training=False), "float32")
         for i in range(0, len(images), batch_size)]
    )  # fmt: skip


def evaluate(model):
    """Accuracy on each domain's test set (the target labels only measure)."""
    return adapt.evaluate_domains(model, source_test, target_test, batch_size=512)


def train_source_only(seed, *, into=None, verbose=0):
    """A fresh network for this seed, trained on the source; `into`: re-use that compiled model (section 8)."""
    fresh = bn_cnn(seed=seed, name=f"source_only_{seed}")
    model = compiled(fresh) if into is None else adapt.restart(into, fresh)
    tlcourse.reseed(seed)
    model.fit(x_source, y_source, batch_size=batch_size, epochs=source_epochs, verbose=verbose)
    steps["source-only"] += int(model.optimizer.iterations)
    return model


seed = budget.seeds[0]
start = time.perf_counter()
source_only = train_source_only(seed, verbose=2)
results = {seed: {"source-only": evaluate(source_only)}}
print(f"trained in {time.perf_counter() - start:.1f} s")
print("source-only:", {k: f"{v:.1%}" for k, v in results[seed]["source-only"].items()})
feature_width = source_only.get_layer("features").output.shape[-1]
print(f"each image's feature vector (the layer 'features') has {feature_width} numbers")

# %% [markdown]
# The same network that is right on nearly every source image gets only a fraction of the target right
# (chance is 10%). That target accuracy is the number to beat.
#
# How far *could* we get? Training the same network on the target's labelled images gives an **upper
# bound** — one that uses exactly the labels we pretend not to have. It is only a yardstick: no method
# below reads those labels.

# %%
x_target_labelled, y_target_labelled = target.arrays("train")  # ⚠️ target labels: the yardstick only
train_on_target = compiled(bn_cnn(seed=seed, name="train_on_target"))
train_on_target.fit(
    x_target_labelled, y_target_labelled, batch_size=batch_size, epochs=source_epochs, verbose=0
)
steps["train-on-target"] += int(train_on_target.optimizer.iterations)
del x_target_labelled, y_target_labelled
as_trained = evaluate(train_on_target)["target"]
print(f"train-on-target (uses target labels): {as_trained:.1%} on the target test set")
course.record("train_on_target_moving_stats", as_trained)

# %% [markdown]
# Keep that number in mind; section 3 corrects it.
#
# ## 3 · AdaBN: re-estimate the BatchNorm statistics on the target
#
# A BatchNormalization layer normalises its input with a **mean and variance stored during training**
# — the *source's* statistics. Target images produce activations with other means and spreads, so every
# layer after the first receives inputs scaled in a way it never saw. **AdaBN** (Li et al., 2016) keeps
# every learned weight and replaces only those stored statistics by the target's. It needs target
# images, no labels, and no training.
#
# Plain Keras can do it with BatchNorm's own update rule. In training mode a BN layer normalises with the
# statistics of the *current batch* and updates its stored ones as
# `momentum · stored + (1 − momentum) · batch`. Choose the momentum before each batch as
# `seen / (seen + batch size)` — 0 for the first batch, then larger and larger — and the stored value
# becomes the **average over every image passed so far**: after the last batch, the target's mean. One
# forward pass over the target, batch by batch: no gradient, no optimizer, and only one batch in memory
# at a time (online the target holds tens of thousands of images: far too many for one batch).


# %%
def adabn(model, images, batch_size=256):
    """A copy of `model` whose BatchNorm layers store the statistics of `images` (no labels, no training)."""
    adapted = copy_of(model)
    bn_layers = [layer for layer in adapted.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momentum = [layer.momentum for layer in bn_layers]
    seen = 0
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], "float32")
        for layer in bn_layers:
            layer.momentum = seen / (seen + len(batch))  # stored := the average over all images so far
        adapted(batch, training=True)  # training mode: normalise with, and store, the batch statistics
        seen += len(batch)
    for layer, value in zip(bn_layers, momentum, strict=True):
        layer.momentum = value  # back to the training setting
    return adapted


adabn_model = adabn(source_only, x_target)
results[seed]["AdaBN"] = evaluate(adabn_model)
print("AdaBN:", {k: f"{v:.1%}" for k, v in results[seed]["AdaBN"].items()})

# %% [markdown]
# Two approximations hide in the batches. The stored variance is the average of the batches' variances,
# which leaves out how much the batch *means* differ from each other (for independent images, about
# 1 / batch size of the variance). And each layer receives its input normalised with the batch statistics
# of the layers before it, not yet with the final ones. How much does that change? One batch holding *all*
# the images gives the exact statistics; on a subset of the target small enough for one batch:


# %%
def stored(model):
    """Every BatchNorm layer's stored (mean, variance)."""
    return [(layer.moving_mean.numpy(), layer.moving_variance.numpy())
            for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]  # fmt: skip


subset = x_target[:1024]
exact = stored(adabn(source_only, subset, batch_size=len(subset)))  # one batch: the exact statistics
batched = stored(adabn(source_only, subset, batch_size=256))
pairs = list(zip(exact, batched, strict=True))
mean_gap = max(float(np.max(np.abs(m - m_batched) / np.sqrt(v))) for (m, v), (m_batched, _) in pairs)
variance_gap = max(float(np.max(np.abs(v_batched / v - 1))) for (_, v), (_, v_batched) in pairs)
print(f"{len(subset)} target images in batches of 256 vs one batch: stored means differ by at most "
      f"{mean_gap:.3f} standard deviations, stored variances by at most {variance_gap:.1%}")  # fmt: skip
course.record("adabn_batched_mean_gap", mean_gap)
course.record("adabn_batched_variance_gap", variance_gap)

# %% [markdown]
# Small enough to ignore. Now compare AdaBN's two accuracies with the source-only ones above: the target
# accuracy changes without any training — but not necessarily for the better. AdaBN corrects
# *statistics* (brightness, contrast, colour balance per channel); it cannot turn inverted strokes back
# into bright ones, which is much of this shift. And the *source* accuracy drops: the adapted copy
# normalises source images with target statistics, so it belongs to the target only.
#
# > ⚠️ **Pitfall — training mode switches on everything.** The pass runs the model with `training=True`:
# > a model with Dropout would also drop units during it. Use it on models without Dropout (like ours), or
# > set each Dropout layer's `rate` to 0 for the pass. And the loop above adapts the BN layers listed in
# > `model.layers`; a base nested inside the model has its own (`tlcourse.introspect.batchnorm_layers`
# > finds them all).
#
# The same function fixes the ceiling of section 2. During training a BN layer stores an *exponential
# moving average* of the batch statistics, dominated by the last few batches. On textured, coloured
# target images the statistics vary a lot from batch to batch, so that average is a noisy estimate, and
# the model in inference mode is worse than it should be. Recomputing the statistics over all its
# training images once training is over ("precise BN") is AdaBN applied to the model's own data:

# %%
upper_bound = evaluate(adabn(train_on_target, x_target))["target"]  # its training images, labels unused
print(f"train-on-target: {as_trained:.1%} with its moving-average statistics, {upper_bound:.1%} with "
      "statistics recomputed over all its training images")  # fmt: skip
course.record("train_on_target", upper_bound)

# %% [markdown]
# We take the corrected number as the ceiling.
#
# ## 4 · Deep CORAL: align the feature covariances
#
# AdaBN aligns each channel's mean and variance. **CORAL** (Sun & Saenko, 2016) aligns the
# *covariances* of the feature vectors — how the features vary *together* — and Deep CORAL trains the
# network to do so: the loss is the label loss on a source batch plus
#
# $$\ell_{\text{CORAL}} = \frac{1}{4d^2}\,\lVert C_S - C_T \rVert_F^2,$$
#
# where $C_S$ and $C_T$ are the $d \times d$ covariance matrices of the source and the target batch's
# features. Only target *images* enter this loss. In `keras.ops`, so that it can run inside training:


# %%
def coral_loss(source_features, target_features):
    """||C_S − C_T||²_F / (4 d²) between the covariances of two batches of feature vectors."""

    def covariance(x):
        x = ops.cast(x, "float32")  # under mixed precision the features arrive as float16
        centred = x - ops.mean(x, axis=0, keepdims=True)
        return ops.matmul(ops.transpose(centred), centred) / ops.cast(ops.shape(x)[0] - 1, "float32")

    d = ops.cast(ops.shape(source_features)[1], "float32")
    return ops.sum(ops.square(covariance(source_features) - covariance(target_features))) / (4.0 * d * d)


feature_model = keras.Model(source_only.inputs, source_only.get_layer("features").output)
source_features = outputs(feature_model, source_test[0])
target_features = outputs(feature_model, target_test[0])
half = len(source_features) // 2
across = float(coral_loss(source_features, target_features))
within = float(coral_loss(source_features[:half], source_features[half:]))
print(f"CORAL loss source vs target:            {across:.2e}")
print(f"CORAL loss source vs other source half: {within:.2e}  ({across / within:.0f} times smaller)")
course.record("coral_gap_across_domains", across)
course.record("coral_gap_within_source", within)

# %% [markdown]
# Two halves of the source test set have nearly the same covariance; the target's is far from it.
#
# ### The two-domain training step
#
# Deep CORAL needs a training step that `compile` cannot express: every batch holds labelled source
# images **and** unlabelled target images, and the loss has two parts. Keras lets a model override
# `train_step` (the Keras guide *Customizing what happens in `fit()`*); `fit` then calls it once per batch.
# The class below is the whole method — and, with another second loss, DANN in section 5:
#
# 1. one forward pass over the source and target images *together*, in training mode;
# 2. the label loss on the source half (the target has no labels), plus `weight` × an *alignment* loss
#    that compares the source half's features with the target half's;
# 3. gradients of the sum, one optimizer step.
#
# The weight lives in a non-trainable variable, not in a Python number: `fit` traces `train_step` once,
# and the traced step reads a variable afresh at every step, so the same compiled model can later run
# with another weight (section 5 meets the same trap with λ). `scale_loss` is there for mixed precision
# (on a GPU, `tlcourse.setup` turns on `mixed_float16`): Keras then wraps the optimizer in a
# `LossScaleOptimizer`, which scales the loss up before the gradients, so that small float16 gradients
# do not round to 0, and scales them back down in `apply_gradients`. In float32 it does nothing.


# %%
class TwoDomainModel(keras.Model):
    """Trains `classifier` on batches ((source images, labels), target images):
    label loss on the source + weight × alignment(source features, target features)."""

    def __init__(self, classifier, alignment, *, weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier  # images → logits; calling this model calls it
        self.features = keras.Model(classifier.inputs, classifier.get_layer("features").output)
        self.head = classifier.layers[-1]  # features → logits
        self.alignment = alignment
        self.weight = keras.Variable(weight, trainable=False, name="alignment_weight")
        self.label_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.label_tracker = keras.metrics.Mean(name="label_loss")
        self.alignment_tracker = keras.metrics.Mean(name="alignment_loss")

    def call(self, images, training=False):
        return self.classifier(images, training=training)

    def train_step(self, data):
        (x_source, y_source), x_target = data
        n = ops.shape(x_source)[0]
        images = ops.cast(ops.concatenate([x_source, x_target], axis=0), "float32")
        with tf.GradientTape() as tape:
            features = self.features(images, training=True)  # ONE batch: BatchNorm sees both domains
            label_loss = self.label_loss(y_source, self.head(features[:n]))
            alignment_loss = self.alignment(features[:n], features[n:])
            loss = self.optimizer.scale_loss(label_loss + self.weight * alignment_loss)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        self.label_tracker.update_state(label_loss)
        self.alignment_tracker.update_state(alignment_loss)
        return {metric.name: metric.result() for metric in self.metrics}

    @property
    def metrics(self):  # what fit shows and resets every epoch
        return [self.label_tracker, self.alignment_tracker]


# %% [markdown]
# `fit` feeds it batches from both domains. Each domain is shuffled and repeated on its own with
# `tf.data`, and `zip` pairs a source batch with a target batch; an epoch is one pass over the source.
#
# A fair comparison also needs a **control**: the same network trained for the same extra epochs on the
# source alone. Without it, part of the "adaptation" gain may just be more training.

# %%
steps_per_epoch = len(x_source) // batch_size


def domain_batches(seed):
    """Endless pairs ((source images, labels), target images), each domain shuffled on its own."""
    source_part = tf.data.Dataset.from_tensor_slices((x_source, y_source)).shuffle(len(x_source), seed=seed)
    target_part = tf.data.Dataset.from_tensor_slices(x_target).shuffle(len(x_target), seed=seed + 1)
    return tf.data.Dataset.zip(
        source_part.repeat().batch(batch_size, drop_remainder=True),
        target_part.repeat().batch(batch_size, drop_remainder=True),
    ).prefetch(tf.data.AUTOTUNE)


def fit_two_domains(model, seed, callbacks=()):
    tlcourse.reseed(seed)
    model.fit(domain_batches(seed), epochs=adapt_epochs, steps_per_epoch=steps_per_epoch,
              callbacks=list(callbacks), shuffle=False, verbose=0)  # fmt: skip
    return model


def control_run(base, seed, *, into=None):
    """`base` trained on for adapt_epochs more epochs on the source alone."""
    model = compiled(copy_of(base), learning_rate=1e-3) if into is None else adapt.restart(into, base)
    tlcourse.reseed(seed)
    model.fit(x_source, y_source, batch_size=batch_size, epochs=adapt_epochs, verbose=0)
    steps["control (more source epochs)"] += int(model.optimizer.iterations)
    return model


def coral_run(base, seed, *, weight=CORAL_WEIGHT, into=None):
    """Deep CORAL from a copy of `base`; `weight=0` keeps the mixed batches and drops the CORAL loss."""
    fresh = TwoDomainModel(copy_of(base), coral_loss, weight=weight)
    model = compiled(fresh, learning_rate=1e-3, loss=None) if into is None else adapt.restart(into, fresh)
    fit_two_domains(model, seed)
    steps["Deep CORAL" if weight else "mixed batches (CORAL weight 0)"] += int(model.optimizer.iterations)
    return model


control = control_run(source_only, seed)
results[seed]["control (more source epochs)"] = evaluate(control)
coral = coral_run(source_only, seed)
results[seed]["Deep CORAL"] = evaluate(coral)
for method in ("source-only", "control (more source epochs)", "Deep CORAL"):
    print(
        f"{method:30s} target {results[seed][method]['target']:.1%}   source {results[seed][method]['source']:.1%}"
    )

# %%
history = coral.history.history
fig, ax = plt.subplots(figsize=(6, 3))
epochs_done = range(1, adapt_epochs + 1)
ax.plot(epochs_done, history["label_loss"], "o-", label="label loss (source)")
ax.plot(epochs_done, history["alignment_loss"], "s-", label="CORAL loss (source vs. target)")
ax.set_xticks(epochs_done)
ax.set_xlabel("epoch")
ax.set_yscale("log")
ax.set_title("Deep CORAL's two losses")
ax.legend()
fig.tight_layout()
ratio = history["label_loss"][-1] / history["alignment_loss"][-1]
print(f"last epoch: the label loss is {ratio:.0f} times the CORAL loss")
course.record("coral_label_to_coral_loss", ratio)

# %% [markdown]
# The label loss keeps the network classifying the source while the CORAL loss measures how far apart
# the feature covariances of the two domains still are (each point is an epoch's mean over its batches).
# Compare their sizes (the ratio is printed above): with `CORAL_WEIGHT = 1`, a CORAL loss far below the
# label loss barely moves the gradients. Compare it also with the value printed before training,
# measured with BatchNorm's stored *source* statistics: in training mode, the mixed batches normalise
# both domains together. Keep both observations in mind for the ablation below.
#
# Compare the CORAL and the control lines printed above the plot — the difference between them is what
# the target images contributed.
#
# ### Which part did the work? An ablation
#
# The target images enter Deep CORAL's training in **two** ways. One is the CORAL loss. The other is
# easy to miss: `train_step` passes source and target images through the network as **one** batch (the
# papers' set-up), so in training mode every BatchNormalization layer normalises with the statistics of
# the *mixture*, and the statistics it stores for inference become the mixture's too. The network keeps
# learning the source labels while its BN layers see target images.
#
# An **ablation** — the same run with one ingredient removed — separates the two: `weight=0` keeps the
# mixed batches and drops the loss.

# %%
coral_without_loss = coral_run(source_only, seed, weight=0.0)
results[seed]["mixed batches (CORAL weight 0)"] = evaluate(coral_without_loss)
for method in ("Deep CORAL", "mixed batches (CORAL weight 0)"):
    print(
        f"{method:30s} target {results[seed][method]['target']:.1%}   source {results[seed][method]['source']:.1%}"
    )
loss_part = results[seed]["Deep CORAL"]["target"] - results[seed]["mixed batches (CORAL weight 0)"]["target"]
print(f"what the CORAL loss itself adds on the target: {100 * loss_part:+.1f} points (seed {seed})")

# %% [markdown]
# If the two target accuracies are close, the gain over the control came from the **mixed batches**,
# not from aligning covariances: BatchNorm adapted while the network trained. That is still adaptation
# without a target label — but a different explanation from the one in the method's name, and only the
# ablation reveals it. One seed is not enough to tell a small difference from noise; section 8 repeats
# the ablation for every seed.
#
# ## 5 · DANN: features a domain classifier cannot tell apart
#
# **DANN** (Ganin et al., 2016) adds a second head, a **domain classifier**, that looks at the feature
# vector and guesses "source or target". The domain classifier is trained to guess well; the feature
# extractor is trained to make it guess *badly*. Both happen in one backward pass thanks to a **gradient
# reversal layer** between the features and the domain head: the identity on the way forward, a
# multiplication by −λ on the way back.
#
# In Keras 3 with TensorFlow, `tf.custom_gradient` writes it in a few lines:


# %%
class GradientReversal(keras.layers.Layer):
    """Identity forward; gradient × (−λ) backward. λ lives in a variable, `layer.lambda_`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lambda_ = self.add_weight(shape=(), initializer="zeros", trainable=False, name="lambda")

    def call(self, x):
        @tf.custom_gradient
        def reverse(x):
            return tf.identity(x), lambda upstream: -ops.cast(self.lambda_, upstream.dtype) * upstream

        return reverse(x)


reversal = GradientReversal()
reversal.lambda_.assign(0.5)
probe = tf.constant([[1.0, -2.0, 3.0]])
with tf.GradientTape() as tape:
    tape.watch(probe)
    passed = reversal(probe)
    total = tf.reduce_sum(2.0 * passed)
gradient = tape.gradient(total, probe).numpy()
print("forward:", passed.numpy().tolist(), " gradient:", gradient.tolist(), "(the identity's: 2.0)")
course.record("reversal_forward_is_identity", bool(np.array_equal(passed.numpy(), probe.numpy())))
course.record("reversal_gradient", gradient.tolist())

# %% [markdown]
# The forward pass returns `x` unchanged; the gradient is −0.5 × the identity's.
#
# > ⚠️ **Pitfall — λ as a Python number.** Inside `fit`, Keras compiles the training step once; a Python
# > float captured in it is frozen at its first value, so a schedule that later sets `layer.lambda_ = 0.8`
# > silently changes nothing. Keep λ in a non-trainable *variable*, as above, and `assign` new values:
# > the compiled step reads the variable every time.
#
# Ganin et al. do not switch the reversal on at full strength: early on the features mean little and the
# domain head's gradient is noise. λ rises from 0 to 1 as training progresses, as
# $\lambda(p) = \frac{2}{1 + e^{-10p}} - 1$ with $p$ the fraction of training done. A callback sets it
# before every batch:


# %%
def dann_lambda(progress, gamma=10.0):
    """Ganin et al.'s schedule for λ: 0 at the start of training, rising smoothly towards 1."""
    return 2.0 / (1.0 + np.exp(-gamma * progress)) - 1.0


class LambdaSchedule(keras.callbacks.Callback):
    """Sets the reversal's λ before every batch from the fraction of training done."""

    def __init__(self, variable, total_steps):
        super().__init__()
        self.variable, self.total_steps, self.step = variable, total_steps, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.variable.assign(dann_lambda(self.step / self.total_steps))
        self.step += 1


progress = np.linspace(0, 1, 101)
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot(progress, dann_lambda(progress))
ax.set_xlabel("fraction of training done p")
ax.set_ylabel("λ")
ax.set_title("DANN's reversal strength")
fig.tight_layout()
print(f"λ after a tenth of training: {dann_lambda(0.1):.2f}; half-way: {dann_lambda(0.5):.3f}")

# %% [markdown]
# Half-way through λ is already close to 1; the first tenth of training is a gentle start.
#
# DANN is then the two-domain step of section 4 with another alignment loss: how well a domain
# classifier, behind the reversal, tells the source features from the target features (binary
# cross-entropy, target = 1). Minimising it trains the domain classifier; the reversal turns the same
# gradient into "make it fail" for the feature extractor.


# %%
class DomainLoss(keras.layers.Layer):
    """DANN's alignment loss: a domain classifier behind a gradient reversal guesses "target?" from features."""

    def __init__(self, width, hidden=64, **kwargs):
        super().__init__(**kwargs)
        self.reversal = GradientReversal()
        self.classifier = keras.Sequential([
            keras.Input((width,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(1),  # a logit: target (1) or source (0)
        ])  # fmt: skip
        self.loss = keras.losses.BinaryCrossentropy(from_logits=True)

    def call(self, source_features, target_features):
        features = ops.concatenate([source_features, target_features], axis=0)
        is_target = ops.concatenate(
            [ops.zeros((ops.shape(source_features)[0], 1)), ops.ones((ops.shape(target_features)[0], 1))],
            axis=0,
        )
        return self.loss(is_target, self.classifier(self.reversal(features)))


def dann_run(base, seed, *, into=None):
    """DANN from a copy of `base`, with a fresh domain classifier and λ rising from 0."""
    tlcourse.reseed(seed)  # the domain classifier's first weights
    fresh = TwoDomainModel(copy_of(base), DomainLoss(feature_width))
    model = compiled(fresh, learning_rate=1e-3, loss=None) if into is None else adapt.restart(into, fresh)
    schedule = LambdaSchedule(model.alignment.reversal.lambda_, adapt_epochs * steps_per_epoch)
    fit_two_domains(model, seed, callbacks=[schedule])
    steps["DANN"] += int(model.optimizer.iterations)
    return model


dann = dann_run(source_only, seed)
results[seed]["DANN"] = evaluate(dann)
print(f"DANN: target {results[seed]['DANN']['target']:.1%}   source {results[seed]['DANN']['source']:.1%}")

# %%
history = dann.history.history
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(epochs_done, history["alignment_loss"], "o-", label="domain classifier's loss")
ax.plot(epochs_done, history["label_loss"], "^-", label="label loss (source)")
ax.plot(
    epochs_done, dann_lambda(np.array(epochs_done) / adapt_epochs), "s-", label="λ at the end of the epoch"
)
ax.axhline(np.log(2), color="grey", linestyle=":", linewidth=1)
ax.text(0.9, np.log(2), "ln 2: a coin flip", va="bottom", fontsize=8)
ax.set_xticks(epochs_done)
ax.set_xlabel("epoch")
ax.set_title("DANN: the domain classifier is pushed towards a coin flip")
ax.legend(fontsize=8)
fig.tight_layout()
print(
    f"domain classifier's loss in the last epoch: {history['alignment_loss'][-1]:.3f} (a coin flip: {np.log(2):.3f})"
)
course.record("dann_domain_loss_last_epoch", history["alignment_loss"][-1])

# %% [markdown]
# A domain classifier that can only guess has the loss of a coin flip, ln 2 (the dotted line): its
# features no longer say which domain an image came from. That is necessary, not sufficient: the
# features could be domain-blind *and* useless for the labels, which is why the source label loss is on
# the same plot.
#
# ## 6 · Pseudo-labelling: learn from your own confident guesses
#
# The simplest idea of all: let the model label the target images, keep the guesses it is confident about
# (max softmax probability ≥ a threshold), and train on source + those pseudo-labelled images. A higher
# threshold keeps fewer images but more of them are right. We can only *look* at that trade-off here
# because this is a course: below, the target **test** labels grade the pseudo-labels (they are never
# trained on).


# %%
def pseudo_label(model, images, threshold):
    """(mask, labels): which images the model classifies with softmax confidence ≥ threshold, and as what."""
    probabilities = ops.convert_to_numpy(ops.softmax(outputs(model, images), axis=-1))
    mask = probabilities.max(axis=1) >= threshold
    return mask, probabilities.argmax(axis=1)[mask]


thresholds = [0.5, 0.7, 0.8, 0.9, 0.95, 0.99]
kept_fraction, kept_accuracy = [], []
for threshold in thresholds:
    mask, labels = pseudo_label(adabn_model, target_test[0], threshold)
    kept_fraction.append(float(mask.mean()))
    kept_accuracy.append(float(np.mean(labels == target_test[1][mask])) if mask.any() else float("nan"))
fig, ax = plt.subplots(figsize=(5.5, 3))
ax.plot(thresholds, kept_fraction, "o-", label="fraction of target images kept")
ax.plot(thresholds, kept_accuracy, "s-", label="accuracy of the kept pseudo-labels")
ax.set_xlabel("confidence threshold")
ax.set_ylim(0, 1.05)
ax.set_title("Pseudo-labels of the AdaBN model on the target")
ax.legend(fontsize=8)
fig.tight_layout()
for threshold, fraction, accuracy in zip(thresholds, kept_fraction, kept_accuracy, strict=True):
    print(
        f"threshold {threshold:.2f}: "
        + (f"keeps {fraction:.0%}, of which {accuracy:.0%} right" if fraction else "keeps none")
    )
course.record("pseudo_thresholds", thresholds)
course.record("pseudo_kept_fraction", kept_fraction)
course.record("pseudo_kept_accuracy", kept_accuracy)

# %% [markdown]
# In principle, raising the threshold trades quantity for quality: fewer images, more of them right.
# Look at the printed numbers: when the starting model is as weak on the target as this one, few images
# pass a high threshold and even the confident guesses are often wrong — and training on wrong labels
# teaches the network its own mistakes (*confirmation bias*).
#
# **Self-training** repeats label → train for a few rounds, each round labelling the target with the
# model it has so far. Here, from the AdaBN model, two rounds of one epoch on source + confident target
# images (and the labels of each round counted, for the table in section 8):

# %%
student = compiled(copy_of(adabn_model), learning_rate=1e-3)
kept_per_round = []
tlcourse.reseed(seed)
for _ in range(2):
    mask, labels = pseudo_label(student, x_target, threshold=0.9)
    kept_per_round.append(int(mask.sum()))
    x_round = np.concatenate([x_source, x_target[mask]])
    y_round = np.concatenate([y_source, labels.astype(y_source.dtype)])
    student.fit(x_round, y_round, batch_size=batch_size, epochs=1, verbose=0)  # fit shuffles them
steps["self-training"] += int(student.optimizer.iterations)
results[seed]["AdaBN + pseudo-labels"] = evaluate(student)
print("pseudo-labelled target images kept per round:", kept_per_round)
print(f"AdaBN + pseudo-labels: target {results[seed]['AdaBN + pseudo-labels']['target']:.1%}")

# %% [markdown]
# ## 7 · What adaptation does to the features
#
# A picture of the feature vectors (the `"features"` layer) of test images from both domains, projected
# to 2-D: colour is the class, the marker the domain. Before adaptation the two domains tend to form
# separate groups; adaptation should bring the target points towards the source points *of the same
# class*.

# %%
method = "pca" if course.profile == "ci" else "tsne"  # t-SNE shows clusters better, but is much slower
both_images = np.concatenate([source_test[0], target_test[0]])
both_labels = np.concatenate([source_test[1], target_test[1]])
both_domains = np.repeat([0, 1], [len(source_test[0]), len(target_test[0])])
for name, extractor in [("source-only", feature_model), ("Deep CORAL", coral.features)]:
    fig = tlcourse.viz.embeddings(
        outputs(extractor, both_images), both_labels, domains=both_domains, method=method,
        class_names=class_names, domain_names=["source", "target"], seed=seed,
    )  # fmt: skip
    fig.suptitle(f"{name}: test features of both domains ({method.upper()})")
    display(fig)  # Jupyter's display(): show each figure inside the loop
print(f"each map squeezes {feature_width}-dimensional feature vectors into 2 dimensions")

# %% [markdown]
# Look at where the target markers sit relative to the source markers in the two maps. A 2-D projection
# of the feature space (its width is printed above) only hints at the real geometry, so trust the
# accuracies more than the pictures.
#
# ## 8 · Seeds: is the gain real?
#
# One run proves little: the baseline itself varies from seed to seed, and so do the methods. We repeat
# the whole pipeline for every seed of the budget — a fresh source-only network, then each method
# starting from it.
#
# > ⚠️ **Pitfall — tracing costs more than training here.** The first `fit` of every new model traces
# > its training step into a TensorFlow graph; for these small networks on a CPU that takes about as long
# > as the training itself (the first epoch printed in section 2 includes it). To train the same
# > architecture again, re-use the compiled model: `tlcourse.adapt.restart(model, new_weights)` loads the
# > weights of a freshly built twin and restarts the optimizer from step 0, keeping the traced step. The
# > run functions above take `into=` a model to re-use this way; the loop below re-uses the seed-0 models
# > (so after it they hold the last seed's weights), and the results are exactly those of new models.

# %%
start = time.perf_counter()
for other_seed in budget.seeds[1:]:
    base = train_source_only(other_seed, into=source_only)
    results[other_seed] = {
        "source-only": evaluate(base),
        "AdaBN": evaluate(adabn(base, x_target)),
        "control (more source epochs)": evaluate(control_run(base, other_seed, into=control)),
        "Deep CORAL": evaluate(coral_run(base, other_seed, into=coral)),
        "mixed batches (CORAL weight 0)": evaluate(
            coral_run(base, other_seed, weight=0.0, into=coral_without_loss)
        ),
        "DANN": evaluate(dann_run(base, other_seed, into=dann)),
    }
    print(f"seed {other_seed} done ({time.perf_counter() - start:.0f} s)")

# %%
seeds = list(budget.seeds)
methods = ["source-only", "control (more source epochs)", "AdaBN", "Deep CORAL", "mixed batches (CORAL weight 0)",
           "DANN"]  # fmt: skip
target_acc = {m: np.array([results[s][m]["target"] for s in seeds]) for m in methods}
source_acc = {m: np.array([results[s][m]["source"] for s in seeds]) for m in methods}
gain = {m: target_acc[m] - target_acc["source-only"] for m in methods}
print(f"{'method':30s} {'target acc':>14s} {'gain (points)':>15s} {'worst seed':>11s} {'source acc':>11s}")
for m in methods:
    print(
        f"{m:30s} {target_acc[m].mean():8.1%} ± {target_acc[m].std():4.1%} {100 * gain[m].mean():+15.1f}"
        f" {100 * gain[m].min():+11.1f} {source_acc[m].mean():11.1%}"
    )
pseudo_gain = results[seed]["AdaBN + pseudo-labels"]["target"] - results[seed]["source-only"]["target"]
print(f"{'AdaBN + pseudo-labels (seed ' + str(seed) + ')':30s} {results[seed]['AdaBN + pseudo-labels']['target']:8.1%}"
      f"{'':7s} {100 * pseudo_gain:+15.1f}")  # fmt: skip
print(f"{'train-on-target (uses labels)':30s} {upper_bound:8.1%}")

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
for offset, m in enumerate(methods):
    ax.scatter(np.full(len(seeds), offset) + np.linspace(-0.15, 0.15, len(seeds)), target_acc[m], s=40)
    ax.hlines(target_acc[m].mean(), offset - 0.3, offset + 0.3, color="black")
ax.axhline(upper_bound, color="grey", linestyle="--", linewidth=1)
ax.text(len(methods) - 0.5, upper_bound, "train-on-target (labels)", ha="right", va="bottom", fontsize=8)
ax.set_xticks(range(len(methods)), [m.replace(" (", "\n(") for m in methods], fontsize=8)
ax.set_ylabel("target test accuracy")
ax.set_title("Each dot is one seed; the bar is the mean")
fig.tight_layout()

# %%
best = max(["AdaBN", "Deep CORAL", "DANN"], key=lambda m: gain[m].mean())
over_control = target_acc[best] - target_acc["control (more source epochs)"]
print(f"best label-free method: {best}")
print(
    f"  gain over source-only: {100 * gain[best].mean():+.1f} points on average, {100 * gain[best].min():+.1f} on the worst seed"
)
print(
    f"  gain over the control: {100 * over_control.mean():+.1f} points on average, {100 * over_control.min():+.1f} on the worst seed"
)
spread = {m: 100 * np.ptp(target_acc[m]) for m in methods}
print(f"target accuracy range across seeds: DANN {spread['DANN']:.1f} points, Deep CORAL {spread['Deep CORAL']:.1f}, "
      f"source-only {spread['source-only']:.1f}")  # fmt: skip
loss_part = target_acc["Deep CORAL"] - target_acc["mixed batches (CORAL weight 0)"]
print(f"the CORAL loss itself (Deep CORAL − the same run with weight 0): {100 * loss_part.mean():+.1f} points"
      f" on average, from {100 * loss_part.min():+.1f} to {100 * loss_part.max():+.1f} across seeds")  # fmt: skip
print(f"share of the gap to train-on-target closed by {best}: "
      f"{gain[best].mean() / (upper_bound - target_acc['source-only'].mean()):.0%}")  # fmt: skip

course.record("seeds", seeds)
for m, key in [("source-only", "source_only"), ("control (more source epochs)", "control"), ("AdaBN", "adabn"),
               ("Deep CORAL", "coral"), ("mixed batches (CORAL weight 0)", "coral_no_loss"), ("DANN", "dann")]:  # fmt: skip
    course.record(f"{key}_target", target_acc[m].tolist())
    course.record(f"{key}_source", source_acc[m].tolist())
course.record("pseudo_target_seed0", results[seed]["AdaBN + pseudo-labels"]["target"])
course.record("pseudo_kept_per_round", kept_per_round)
course.record("best_method", best)
course.record("source_epochs", source_epochs)
course.record("adapt_epochs", adapt_epochs)

# %% [markdown]
# Read the table from the bottom up. Train-on-target is the ceiling (and uses labels). The control row
# shows how much of any gain extra source training alone would buy. The best label-free method's gain —
# on average and on its worst seed — is printed just above, together with how it compares with the
# control; the dots show how much each method moves from seed to seed. The "mixed batches" row is the
# ablation of section 4: the line about the CORAL loss says how much of Deep CORAL's result the loss
# itself accounts for, seed by seed — when it hovers around zero, credit the mixed BatchNorm batches, not
# the covariance alignment. Compare the ranges across seeds: adversarial training is a two-player game,
# and a DANN run can end with the feature extractor "winning" by destroying useful features (look at its
# source accuracy), or with the domain head never fooled.
#
# For scale: Ganin et al. report DANN on the real MNIST → MNIST-M with 60,000 images per domain going
# from 52.25% (source-only) to 76.66%, against 95.96% when training on the target — more than half of
# the gap closed. The last line printed above is the same ratio for this run.
#
# ### What this lesson costs
#
# Every training run above counted its optimizer steps. Their sum, times the time one step takes on a
# machine, is what the lesson's training costs there — the way to plan a run before paying for it:

# %%
images_per_step = {name: (2 if name in ("Deep CORAL", "mixed batches (CORAL weight 0)", "DANN") else 1) * batch_size
                   for name in steps}  # fmt: skip
print(f"{'training run':32s} {'optimizer steps':>15s} {'images per step':>16s}")
for name, count in steps.items():
    print(f"{name:32s} {count:15,d} {images_per_step[name]:16d}")
print(f"{'all of them (' + course.profile + ' profile)':32s} {sum(steps.values()):15,d}")
course.record(
    "steps",
    {name: {"steps": count, "images_per_step": images_per_step[name]} for name, count in steps.items()},
)
course.record("steps_total", sum(steps.values()))
course.record("source_train_images", len(x_source))
course.record("batch_size", batch_size)

# %% [markdown]
# ## 9 · When adaptation fails
#
# - **No labels, no validation.** Every setting in this notebook (epochs, CORAL weight, λ, threshold) would
#   normally be tuned on a labelled validation set — which, in the target domain, you do not have. Tuning
#   on the target test labels, as it is tempting to do, reports an optimistic number. Keep a small
#   labelled target set for *evaluation* only, or use proxies (source validation accuracy, domain
#   classifier loss) and accept their limits.
# - **The shift is too large.** Adaptation aligns *distributions*. When the inputs of one class in the
#   target look like another class in the source (inverted strokes, garments that lose their silhouette),
#   aligning the clouds can match the wrong classes together. Run this notebook with
#   `SOURCE = "fashion_mnist"` for a harder pair, and check whether the gain over the control survives.
# - **The labels shift too.** If the target's class proportions differ from the source's, forcing the
#   feature distributions to match moves target images into the wrong classes.
# - **Pseudo-labels from a weak model.** When the model is weak on the target, its confident guesses are
#   often confidently wrong (section 6), and self-training reinforces them.
# - **Unstable training.** DANN depends on the seed, λ's schedule and the learning rate; always report
#   several seeds (mean and worst case), as above.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/06_domain_adaptation.ipynb): you will write a gradient
# reversal layer, compute the CORAL loss, apply AdaBN in batches to a source-only model and measure
# what it does on the target, and choose a pseudo-labelling threshold.
#
# ## Summary
#
# - Transductive transfer = same task, labels only in the source. Target labels serve to *measure*, and a
#   train-on-target model, marked as such, gives the ceiling.
# - **AdaBN** replaces BatchNorm's stored statistics by the target's: no training, one forward pass in
#   training mode, batch by batch, with `momentum = seen / (seen + batch size)`.
# - **Deep CORAL** adds a loss matching the feature covariances of source and target batches; **DANN** a
#   domain classifier behind a gradient reversal layer (identity forward, −λ × gradient backward, λ in a
#   variable rising from 0 to 1). Both are one `train_step` over mixed source + target batches.
# - An **ablation** (the same run without one ingredient) tells which part of a method did the work —
#   here, the CORAL loss or the target images passing through BatchNorm in mixed batches.
# - **Pseudo-labelling** trains on confident guesses; the threshold trades quantity for quality.
# - Judge a method against a control with the same extra training, over several seeds; count the steps
#   a plan costs before running it.
#
# ## Further reading
#
# - Ganin et al., *Domain-Adversarial Training of Neural Networks*, JMLR 2016 (DANN, gradient reversal,
#   MNIST-M). https://arxiv.org/abs/1505.07818
# - Sun & Saenko, *Deep CORAL: Correlation Alignment for Deep Domain Adaptation*, ECCV 2016 workshops.
#   https://arxiv.org/abs/1607.01719
# - Li et al., *Revisiting Batch Normalization For Practical Domain Adaptation* (AdaBN), 2016.
#   https://arxiv.org/abs/1603.04779
# - Lee, *Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for Deep Neural Networks*,
#   ICML 2013 workshop.
# - Pan & Yang, *A Survey on Transfer Learning*, IEEE TKDE 2010 (the transductive setting).
#   https://doi.org/10.1109/TKDE.2009.191
# - Keras guide, *Customizing what happens in `fit()`* (TensorFlow backend):
#   https://keras.io/guides/custom_train_step_in_tensorflow/
# - TensorFlow guide on custom gradients (`tf.custom_gradient`):
#   https://www.tensorflow.org/guide/autodiff#custom_gradients
#
# ## Questions
#
# 1. Which data does each method of this lesson use: source images, source labels, target images, target
#    labels? Which one may *never* be used, and where did this notebook use it anyway (and why)?
# 2. AdaBN changes no trainable weight, yet changes the target accuracy. What exactly does it change, and
#    why does the source accuracy of the adapted copy fall?
# 3. Why does the gradient reversal layer need λ in a variable rather than a Python float when training
#    with `fit`?
# 4. A method gains 6 points over source-only, and the control gains 5. What would you report, and why?
# 5. Why can pseudo-labelling make a weak model worse? What does the confidence threshold change?
# 6. Deep CORAL with `weight=0` never computes a covariance, yet it trains on target images. Where
#    do they change the network? What would you conclude if it did as well as Deep CORAL over all seeds?
# 7. `TwoDomainModel.train_step` passes both domains through the network as one batch. What would change
#    if it called `self.features` twice, once per domain?
