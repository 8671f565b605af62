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
SOURCE_EPOCHS = None  # None: enough epochs to show the network ~5,000 source images (at least budget.epochs)
ADAPT_EPOCHS = None  # None: budget.epochs more, for every adaptation method and for the control
CORAL_WEIGHT = 1.0  # weight of the CORAL loss next to the label loss
WIDTH = 16  # filters in the first convolution of the small network

# %%
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

import tlcourse
from tlcourse import adapt

course = tlcourse.setup("06", profile=PROFILE)
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
    keras.utils.set_random_seed(seed)
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


def compiled(model, learning_rate=2e-3):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )  # no metrics: each adds work to every training step, and `evaluate` below measures accuracy
    # Create Adam's variables now: left to fit, they appear inside the first traced training step,
    # and TensorFlow then traces that step twice (a second or two wasted per model on a CPU).
    model.optimizer.build(model.trainable_variables)
    return model


source_epochs = SOURCE_EPOCHS or max(budget.epochs, round(5000 / len(x_source)))
adapt_epochs = ADAPT_EPOCHS or budget.epochs
batch_size = budget.batch_size
print(
    f"source training: {source_epochs} epochs; every adaptation method (and the control): {adapt_epochs} more"
)


# %%
def outputs(model, images, batch_size=512):
    """The model's outputs, calling it batch by batch: for a few hundred images faster than predict,
    which first traces a function for every new model."""
    return np.concatenate(
        [np.asarray(model(images[i : i + batch_size].astype("float32"), training=False))
         for i in range(0, len(images), batch_size)]
    )  # fmt: skip


def evaluate(model):
    """Accuracy on each domain's test set (the target labels only measure)."""
    return {
        domain: float(np.mean(np.argmax(outputs(model, x), axis=1) == y))
        for domain, (x, y) in [("source", source_test), ("target", target_test)]
    }


def train_source_only(seed, *, into=None, verbose=0):
    """A fresh network for this seed, trained on the source; `into`: re-use that compiled model (section 8)."""
    fresh = bn_cnn(seed=seed, name=f"source_only_{seed}")
    model = compiled(fresh) if into is None else adapt.restart(into, fresh)
    keras.utils.set_random_seed(seed)
    model.fit(x_source, y_source, batch_size=batch_size, epochs=source_epochs, verbose=verbose)
    return model


seed = budget.seeds[0]
start = time.perf_counter()
source_only = train_source_only(seed, verbose=2)
results = {seed: {"source-only": adapt.evaluate_domains(source_only, source_test, target_test)}}
print(f"trained in {time.perf_counter() - start:.1f} s")
print("source-only:", {k: f"{v:.1%}" for k, v in results[seed]["source-only"].items()})
# `evaluate` does the same as tlcourse.adapt.evaluate_domains

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
as_trained = evaluate(train_on_target)["target"]
precise = adapt.adabn(train_on_target, x_target_labelled)  # exact BN statistics of its own training images
upper_bound = evaluate(precise)["target"]
del x_target_labelled, y_target_labelled
print(f"train-on-target (uses target labels): {as_trained:.1%} on the target test set")
print(f"  ... with BatchNorm statistics recomputed over all its training images: {upper_bound:.1%}")
course.record("train_on_target", upper_bound)
course.record("train_on_target_moving_stats", as_trained)

# %% [markdown]
# The second number deserves a look. During training a BN layer stores an *exponential moving average*
# of the batch statistics, dominated by the last few batches. On textured, coloured target images the
# statistics vary a lot from batch to batch, so that average is a noisy estimate, and the model in
# inference mode is worse than it should be. Recomputing the statistics over all training images once
# training is over ("precise BN") fixes it — with exactly the tool of the next section. We take the
# corrected number as the ceiling.
#
# ## 3 · AdaBN: re-estimate the BatchNorm statistics on the target
#
# A BatchNormalization layer normalises its input with a **mean and variance stored during training**
# — the *source's* statistics. Target images produce activations with other means and spreads, so every
# layer after the first receives inputs scaled in a way it never saw. **AdaBN** (Li et al., 2016) keeps
# every learned weight and replaces only those stored statistics by the target's. It needs target
# images, no labels, and no training.
#
# In plain Keras it takes three moves. In training mode a BN layer normalises with the statistics of the
# *current batch* and updates its stored ones as `momentum · stored + (1 − momentum) · batch`. With
# `momentum = 0` the stored value becomes the batch's exactly; a single forward pass with all target
# images as **one** batch therefore stores the target's statistics, layer after layer (each layer
# already sees its input normalised by the adapted layers before it). No gradient, no optimizer.


# %%
def adabn_by_hand(model, images):
    adapted = keras.models.clone_model(model)
    adapted.set_weights(model.get_weights())  # clone_model copies the architecture only
    bn_layers = [layer for layer in adapted.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in bn_layers:
        layer.momentum = 0.0  # stored statistics := this batch's statistics
    adapted(np.asarray(images, "float32"), training=True)  # ONE batch: every target image
    for layer in bn_layers:
        layer.momentum = 0.9
    return adapted


by_hand = adabn_by_hand(source_only, x_target)
with_helper = adapt.adabn(source_only, x_target)  # the same, accumulated batch by batch
largest = max(
    float(np.max(np.abs(a.moving_mean.numpy() - b.moving_mean.numpy())))
    for a, b in zip(by_hand.layers, with_helper.layers, strict=True)
    if isinstance(a, keras.layers.BatchNormalization)
)
print(f"largest difference between the two sets of stored means: {largest:.1e}")
results[seed]["AdaBN"] = evaluate(with_helper)
print("AdaBN:", {k: f"{v:.1%}" for k, v in results[seed]["AdaBN"].items()})

# %% [markdown]
# Both ways store the same statistics (the difference printed is rounding). Compare AdaBN's two numbers
# with the source-only ones above: the target accuracy changes without any training — but not
# necessarily for the better. AdaBN corrects *statistics* (brightness, contrast, colour balance per
# channel); it cannot turn inverted strokes back into bright ones, which is much of this shift. And the
# *source* accuracy drops: the adapted copy normalises source images with target statistics, so it
# belongs to the target only.
#
# > ⚠️ **Pitfall — one big batch.** The by-hand version needs every target image in memory at once, and
# > a model with Dropout would also drop units during that pass. `tlcourse.adapt.adabn` accumulates the
# > statistics batch by batch, with Dropout off, and leaves the original model untouched.
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
# features. Only target *images* enter this loss. First, how far apart are the two domains for the
# source-only network?

# %%
feature_model = keras.Model(source_only.inputs, source_only.get_layer("features").output)
source_features = outputs(feature_model, source_test[0])
target_features = outputs(feature_model, target_test[0])
half = len(source_features) // 2
print(
    f"CORAL loss source vs target:          {float(adapt.coral_loss(source_features, target_features)):.2e}"
)
print(
    "CORAL loss source vs other source half: "
    f"{float(adapt.coral_loss(source_features[:half], source_features[half:])):.2e}"
)

# %% [markdown]
# Two halves of the source test set have nearly the same covariance; the target's is far from it. Deep
# CORAL now continues training the source-only network for `adapt_epochs` epochs on batches holding
# labelled source images *and* unlabelled target images (`tlcourse.adapt.fit_coral` builds the model,
# `feature_layer="features"` says where to measure the covariance).
#
# A fair comparison needs a **control**: the same network trained for the same extra epochs on the
# source alone. Without it, part of the "adaptation" gain may just be more training.


# %%
def control_run(model, seed, *, into=None):
    if into is None:
        more = compiled(keras.models.clone_model(model), learning_rate=1e-3)
        more.set_weights(model.get_weights())
    else:
        more = adapt.restart(into, model)
    keras.utils.set_random_seed(seed)
    more.fit(x_source, y_source, batch_size=batch_size, epochs=adapt_epochs, verbose=0)
    return more


def coral_run(model, seed, *, coral_weight=CORAL_WEIGHT, into=None, verbose=0):
    keras.utils.set_random_seed(seed)
    return adapt.fit_coral(
        model, (x_source, y_source), x_target, feature_layer="features", coral_weight=coral_weight,
        epochs=adapt_epochs, batch_size=batch_size, learning_rate=1e-3, seed=seed, into=into, verbose=verbose,
    )  # fmt: skip


control = control_run(source_only, seed)
results[seed]["control (more source epochs)"] = evaluate(control)
coral = coral_run(source_only, seed, verbose=0)
results[seed]["Deep CORAL"] = evaluate(coral)
for method in ("source-only", "control (more source epochs)", "Deep CORAL"):
    print(
        f"{method:30s} target {results[seed][method]['target']:.1%}   source {results[seed][method]['source']:.1%}"
    )

# %%
fig, ax = plt.subplots(figsize=(6, 3))
epochs_done = range(1, adapt_epochs + 1)
ax.plot(epochs_done, coral.history.history["label_loss"], "o-", label="label loss (source)")
ax.plot(epochs_done, coral.history.history["coral_loss"], "s-", label="CORAL loss (source vs. target)")
ax.set_xticks(epochs_done)
ax.set_xlabel("epoch")
ax.set_yscale("log")
ax.set_title("Deep CORAL's two losses")
ax.legend()
fig.tight_layout()

# %% [markdown]
# The label loss keeps the network classifying the source while the CORAL loss measures how far apart
# the feature covariances of the two domains still are (each point is an epoch's mean over its batches).
# Compare their sizes: when the CORAL loss is orders of magnitude below the label loss, with
# `CORAL_WEIGHT = 1` it barely moves the gradients. Compare it also with the value printed before
# training, measured with BatchNorm's stored *source* statistics: in training mode, the mixed batches
# normalise both domains together. Keep both observations in mind for the ablation below.
#
# Compare the CORAL and the control lines printed above the plot — the difference between them is what
# the target images contributed.
#
# ### Which part did the work? An ablation
#
# The target images enter Deep CORAL's training in **two** ways. One is the CORAL loss. The other is
# easy to miss: with `batchnorm="mixed"` (the papers' set-up) source and target images pass through the
# network as **one** batch, so in training mode every BatchNormalization layer normalises with the
# statistics of the *mixture*, and the statistics it stores for inference become the mixture's too. The
# network keeps learning the source labels while its BN layers see target images.
#
# An **ablation** — the same run with one ingredient removed — separates the two: `coral_weight=0` keeps
# the mixed batches and drops the loss.

# %%
coral_without_loss = coral_run(source_only, seed, coral_weight=0.0)
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
class ReverseGradient(keras.layers.Layer):
    """Identity forward; gradient × (−lambda_) backward."""

    def __init__(self, lambda_=1.0, **kwargs):
        super().__init__(**kwargs)
        self.lambda_ = lambda_

    def call(self, x):
        @tf.custom_gradient
        def reverse(x):
            return tf.identity(x), lambda upstream: -self.lambda_ * upstream

        return reverse(x)


x = tf.constant([[1.0, -2.0, 3.0]])
with tf.GradientTape() as tape:
    tape.watch(x)
    y = ReverseGradient(lambda_=0.5)(x)
    total = tf.reduce_sum(2.0 * y)
print(
    "forward:",
    y.numpy().tolist(),
    " gradient:",
    tape.gradient(total, x).numpy().tolist(),
    "(identity gives 2.0)",
)

# %% [markdown]
# The forward pass returns `x` unchanged; the gradient is −0.5 × the identity's.
#
# > ⚠️ **Pitfall — λ as a Python number.** Inside `fit`, Keras compiles the training step once; a Python
# > float captured in it is frozen at its first value, so a schedule that later sets `layer.lambda_ = 0.8`
# > silently changes nothing. `tlcourse.adapt.GradientReversal` keeps λ in a non-trainable *variable*,
# > which the `LambdaSchedule` callback updates on every batch.
#
# Ganin et al. do not switch the reversal on at full strength: early on the features mean little and the
# domain head's gradient is noise. λ rises from 0 to 1 as training progresses, as
# $\lambda(p) = \frac{2}{1 + e^{-10p}} - 1$ with $p$ the fraction of training done:

# %%
progress = np.linspace(0, 1, 101)
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot(progress, adapt.dann_lambda_schedule(progress))
ax.set_xlabel("fraction of training done p")
ax.set_ylabel("λ")
ax.set_title("DANN's reversal strength")
fig.tight_layout()

# %% [markdown]
# Half-way through λ is already close to 1; the first tenth of training is a gentle start.
# `tlcourse.adapt.fit_dann` puts it together: a copy of our network split at `"features"`, a two-layer
# domain head behind a `GradientReversal` layer, the schedule as a callback.


# %%
def dann_run(model, seed, *, into=None, verbose=0):
    keras.utils.set_random_seed(seed)  # the domain head's initial weights
    return adapt.fit_dann(
        model, (x_source, y_source), x_target, feature_layer="features", epochs=adapt_epochs,
        batch_size=batch_size, learning_rate=1e-3, seed=seed, into=into, verbose=verbose,
    )  # fmt: skip


dann = dann_run(source_only, seed, verbose=0)
results[seed]["DANN"] = evaluate(dann)
print(f"DANN: target {results[seed]['DANN']['target']:.1%}   source {results[seed]['DANN']['source']:.1%}")

# %%
history = dann.history.history
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(epochs_done, history["domain_accuracy"], "o-", label="domain classifier accuracy")
ax.plot(epochs_done, history["lambda"], "s-", label="λ (mean over the epoch)")
ax.plot(epochs_done, history["accuracy"], "^-", label="label accuracy (source)")
ax.set_xticks(epochs_done)
ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
ax.set_xlabel("epoch")
ax.set_ylim(0, 1.05)
ax.set_title("DANN: the domain classifier is pushed towards a coin flip")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# A domain accuracy near 0.5 (the dotted line) means the features no longer say which domain an image
# came from. That is necessary, not sufficient: the features could be domain-blind *and* useless for the
# labels, which is why the source label accuracy is on the same plot.
#
# ## 6 · Pseudo-labelling: learn from your own confident guesses
#
# The simplest idea of all: let the source model label the target images, keep the guesses it is
# confident about (max softmax probability ≥ a threshold), and train on source + those pseudo-labelled
# images. A higher threshold keeps fewer images but more of them are right. We can only *look* at that
# trade-off here because this is a course: below, the target **test** labels grade the pseudo-labels
# (they are never trained on).

# %%
adabn_model = with_helper
thresholds = [0.5, 0.7, 0.8, 0.9, 0.95, 0.99]
kept_fraction, kept_accuracy = [], []
for threshold in thresholds:
    pseudo = adapt.pseudo_label(adabn_model, target_test[0], threshold=threshold)
    kept_fraction.append(float(pseudo.mask.mean()))
    correct = pseudo.labels == target_test[1][pseudo.mask]
    kept_accuracy.append(float(correct.mean()) if len(correct) else float("nan"))
fig, ax = plt.subplots(figsize=(5.5, 3))
ax.plot(thresholds, kept_fraction, "o-", label="fraction of target images kept")
ax.plot(thresholds, kept_accuracy, "s-", label="accuracy of the kept pseudo-labels")
ax.set_xlabel("confidence threshold")
ax.set_ylim(0, 1.05)
ax.set_title("Pseudo-labels of the AdaBN model on the target")
ax.legend(fontsize=8)
fig.tight_layout()
for threshold, fraction, accuracy in zip(thresholds, kept_fraction, kept_accuracy, strict=True):
    print(f"threshold {threshold:.2f}: keeps {fraction:.0%}, of which {accuracy:.0%} right")

# %% [markdown]
# In principle, raising the threshold trades quantity for quality: fewer images, more of them right.
# Look at the printed numbers: when the starting model is as weak on the target as this one, few images
# pass a high threshold and even the confident guesses are often wrong — and training on wrong labels
# teaches the network its own mistakes (*confirmation bias*). `tlcourse.adapt.self_train` runs rounds of label → train, with
# `max_per_class` so that one easy class cannot flood the pseudo-labelled set.

# %%
keras.utils.set_random_seed(seed)
self_trained = adapt.self_train(
    adabn_model, (x_source, y_source), x_target, threshold=0.9, rounds=2, max_per_class=len(x_target) // 20,
    batch_size=batch_size, seed=seed, verbose=0,
)  # fmt: skip
results[seed]["AdaBN + pseudo-labels"] = evaluate(self_trained)
print("pseudo-labelled target images kept per round:", self_trained.pseudo_label_counts)
print(f"AdaBN + pseudo-labels: target {results[seed]['AdaBN + pseudo-labels']['target']:.1%}")

# %% [markdown]
# ## 7 · What adaptation does to the features
#
# A picture of the feature vectors (the `"features"` layer) of test images from both domains, projected
# to 2-D: colour is the class, the marker the domain. Before adaptation the two domains tend to form
# separate groups; adaptation should bring the target points towards the source points *of the same
# class*.

# %%
method = "pca" if course.profile == "ci" else "tsne"  # t-SNE shows clusters better but takes minutes
both_images = np.concatenate([source_test[0], target_test[0]])
both_labels = np.concatenate([source_test[1], target_test[1]])
both_domains = np.repeat([0, 1], [len(source_test[0]), len(target_test[0])])
for name, extractor in [("source-only", feature_model), ("Deep CORAL", coral.feature_extractor)]:
    fig = tlcourse.viz.embeddings(
        outputs(extractor, both_images), both_labels, domains=both_domains, method=method,
        class_names=class_names, domain_names=["source", "target"], seed=seed,
    )  # fmt: skip
    fig.suptitle(f"{name}: test features of both domains ({method.upper()})")

# %% [markdown]
# Look at where the target markers sit relative to the source markers in the two maps. A 2-D projection
# of a 64-dimensional space only hints at the real geometry, so trust the accuracies more than the
# pictures.
#
# ## 8 · Seeds: is the gain real?
#
# One run proves little: the baseline itself varies from seed to seed, and so do the methods. We repeat
# the whole pipeline for every seed of the budget — a fresh source-only network, then each method
# starting from it.
#
# > ⚠️ **Pitfall — tracing costs more than training here.** The first `fit` of every new model traces
# > its training step into a TensorFlow graph: one to two seconds for these small networks on a CPU,
# > about as long as the training itself. To train the same architecture again, re-use the compiled
# > model: `tlcourse.adapt.restart(model, new_weights)` loads the weights and restarts the optimizer from
# > zero, and `fit_coral`/`fit_dann` take `into=` an earlier result. The loop below re-uses the seed-0
# > models this way (so after it they hold the last seed's weights); the results are exactly those of
# > new models.

# %%
start = time.perf_counter()
for other_seed in budget.seeds[1:]:
    base = train_source_only(other_seed, into=source_only)
    results[other_seed] = {
        "source-only": evaluate(base),
        "AdaBN": evaluate(adapt.adabn(base, x_target)),
        "control (more source epochs)": evaluate(control_run(base, other_seed, into=control)),
        "Deep CORAL": evaluate(coral_run(base, other_seed, into=coral)),
        "mixed batches (CORAL weight 0)": evaluate(
            coral_run(base, other_seed, coral_weight=0.0, into=coral_without_loss)
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
print(f"DANN's target accuracy ranges over {100 * np.ptp(target_acc['DANN']):.1f} points across seeds,"
      f" Deep CORAL's over {100 * np.ptp(target_acc['Deep CORAL']):.1f}")  # fmt: skip
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
# the covariance alignment. DANN's dots are usually the most spread: adversarial training is a two-player
# game, and a run can end with the feature extractor "winning" by destroying useful features, or with
# the domain head never fooled.
#
# For scale: Ganin et al. report DANN on the real MNIST → MNIST-M with 60,000 images per domain going
# from 52.25% (source-only) to 76.66%, against 95.96% when training on the target — more than half of
# the gap closed. The last line printed above is the same ratio for this run.
#
# ## 9 · When adaptation fails
#
# - **No labels, no validation.** Every setting in this notebook (epochs, CORAL weight, λ, threshold) would
#   normally be tuned on a labelled validation set — which, in the target domain, you do not have. Tuning
#   on the target test labels, as it is tempting to do, reports an optimistic number. Keep a small
#   labelled target set for *evaluation* only, or use proxies (source validation accuracy, domain
#   classifier accuracy) and accept their limits.
# - **The shift is too large.** Adaptation aligns *distributions*. When the inputs of one class in the
#   target look like another class in the source (inverted strokes, garments that lose their silhouette),
#   aligning the clouds can match the wrong classes together. Run this notebook with
#   `SOURCE = "fashion_mnist"` to see a harder pair: the gains shrink and the control catches up.
# - **The labels shift too.** If the target's class proportions differ from the source's, forcing the
#   feature distributions to match moves target images into the wrong classes.
# - **Pseudo-labels from a weak model.** Below roughly 50% target accuracy, confident guesses are often
#   confidently wrong, and self-training reinforces them.
# - **Unstable training.** DANN depends on the seed, λ's schedule and the learning rate; always report
#   several seeds (mean and worst case), as above.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/06_domain_adaptation.ipynb): you will write a gradient
# reversal layer, compute the CORAL loss, apply AdaBN to beat a source-only model on the target, and
# choose a pseudo-labelling threshold.
#
# ## Summary
#
# - Transductive transfer = same task, labels only in the source. Target labels serve to *measure*, and a
#   train-on-target model, marked as such, gives the ceiling.
# - **AdaBN** replaces BatchNorm's stored statistics by the target's: no training, a forward pass in
#   training mode with `momentum = 0` in plain Keras, `tlcourse.adapt.adabn` batch by batch.
# - **Deep CORAL** adds a loss matching the feature covariances of source and target batches.
# - An **ablation** (the same run without one ingredient) tells which part of a method did the work —
#   here, the CORAL loss or the target images passing through BatchNorm in mixed batches.
# - **DANN** trains the features against a domain classifier through a gradient reversal layer (identity
#   forward, −λ × gradient backward), with λ rising from 0 to 1; keep λ in a variable.
# - **Pseudo-labelling** trains on confident guesses; the threshold trades quantity for quality.
# - Judge a method against a control with the same extra training, over several seeds.
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
# 6. Deep CORAL with `coral_weight=0` never computes a covariance, yet it trains on target images. Where
#    do they change the network? What would you conclude if it did as well as Deep CORAL over all seeds?
