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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/06_domain_adaptation.ipynb)
#
# # 06 · Domain adaptation — exercises
#
# Four tasks on the moves of lesson 06: a **gradient reversal layer**, the **CORAL loss**, **AdaBN** by
# hand, and **pseudo-labels** with a confidence threshold. About 30 minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at the objects you built (the layer, what your functions return, the statistics
# stored in your model), not at the text of your code: any correct answer passes. The lesson to read
# first is `notebooks/06_domain_adaptation.ipynb`.

# %%
# On Colab, install the course's helper package (on your machine `make lab` did it).
import sys

if "google.colab" in sys.modules:
    import subprocess

    package = "tlcourse @ git+https://github.com/tlcourse/tlcourse@main"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import tlcourse

course = tlcourse.setup("06")  # first: it quiets TensorFlow's start-up logs

import keras
import numpy as np
import tensorflow as tf

# %% [markdown]
# ## 06.1 A gradient reversal layer
#
# Write a Keras layer `GradientReversal` that DANN puts between the features and the domain
# classifier:
#
# - `GradientReversal(lambda_=0.5)` stores λ;
# - on the way **forward** it returns its input unchanged;
# - on the way **back** it multiplies the incoming gradient by **−λ**.
#
# Hint: inside `call`, define a function decorated with `@tf.custom_gradient` that returns
# `(tf.identity(x), grad_fn)`, where `grad_fn(upstream)` returns `-lambda_ * upstream`. Pass `**kwargs`
# on to `super().__init__`.


# %%
# BEGIN SOLUTION
class GradientReversal(keras.layers.Layer):
    def __init__(self, lambda_=1.0, **kwargs):
        super().__init__(**kwargs)
        self.lambda_ = lambda_

    def call(self, x):
        @tf.custom_gradient
        def reverse(x):
            return tf.identity(x), lambda upstream: -self.lambda_ * upstream

        return reverse(x)


# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("06.1")

# %% [markdown]
# ## 06.2 The CORAL loss
#
# Write `coral_loss(source_features, target_features)` for two NumPy arrays of shapes `(n_s, d)` and
# `(n_t, d)`. It returns one number:
#
# $$\ell_{\text{CORAL}} = \frac{1}{4d^2}\,\lVert C_S - C_T \rVert_F^2$$
#
# where each covariance is computed from **centred** features: `C = (x − mean)ᵀ (x − mean) / (n − 1)`,
# and $\lVert\cdot\rVert_F^2$ is the sum of the squared entries. The check compares it with a
# reference on random features, and checks that it is 0 when only the means of the two domains differ.


# %%
def coral_loss(source_features, target_features):
    # BEGIN SOLUTION
    def covariance(x):
        x = np.asarray(x, dtype="float64")
        centred = x - x.mean(axis=0, keepdims=True)
        return centred.T @ centred / (len(x) - 1)

    d = np.shape(source_features)[1]
    gap = covariance(source_features) - covariance(target_features)
    return float(np.sum(gap**2) / (4 * d * d))
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("06.2")

# %% [markdown]
# ## 06.3 AdaBN by hand
#
# Below, a small CNN with BatchNormalization is trained on Fashion-MNIST (the source) and tested on
# Fashion-MNIST-M (the target: the same garments blended onto photos). Build `adapted`: a **copy** of
# `source_model` whose BatchNorm layers store the **target's** statistics, computed from the unlabelled
# target images `x_target`.
#
# - `keras.models.clone_model(model)` copies the architecture; `set_weights(model.get_weights())` the
#   weights.
# - In training mode a BN layer stores `momentum · stored + (1 − momentum) · batch statistics`. Pass
#   `x_target` through the copy in batches of 256 with `training=True`, and before each batch set every BN
#   layer's `momentum` to `seen / (seen + len(batch))`, where `seen` counts the images already passed:
#   the stored statistics then become the average over **all** target images. (Online, `x_target` holds
#   tens of thousands of images: one batch of all of them would not fit in memory.)
# - `source_model` itself must keep its statistics.

# %%
source = tlcourse.data.load("fashion_mnist")
target = tlcourse.data.load("fashion_mnist_m")
x_source, y_source = source.arrays("train")
x_target, _ = target.arrays("train")  # unlabelled: the labels are dropped
x_target_test, y_target_test = target.arrays("test")  # only to measure

keras.utils.set_random_seed(0)
inputs = keras.Input((28, 28, 3))
x = keras.layers.Rescaling(1 / 255)(inputs)
for block, filters in enumerate((16, 32, 32)):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    if block < 2:
        x = keras.layers.MaxPooling2D()(x)
x = keras.layers.GlobalAveragePooling2D(name="features")(x)
source_model = keras.Model(inputs, keras.layers.Dense(10)(x), name="source_model")
source_model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=2e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
source_model.fit(x_source, y_source, batch_size=32, epochs=5, verbose=0)


def target_accuracy(model):
    logits = model.predict(x_target_test, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y_target_test))


print(f"source-only model on the target test set: {target_accuracy(source_model):.1%}")

# %%
# BEGIN SOLUTION
adapted = keras.models.clone_model(source_model)
adapted.set_weights(source_model.get_weights())
bn_layers = [layer for layer in adapted.layers if isinstance(layer, keras.layers.BatchNormalization)]
seen = 0
for start in range(0, len(x_target), 256):
    batch = x_target[start : start + 256].astype("float32")
    for layer in bn_layers:
        layer.momentum = seen / (seen + len(batch))
    adapted(batch, training=True)
    seen += len(batch)
for layer in bn_layers:
    layer.momentum = 0.9
# END SOLUTION
print(f"after AdaBN, on the target test set: {target_accuracy(adapted):.1%}")

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("06.3")

# %% [markdown]
# ## 06.4 Pseudo-labels with a confidence threshold
#
# Write `confident_pseudo_labels(logits, threshold)`: from a model's logits on unlabelled images
# (shape `(n, classes)`), return `(mask, labels)`:
#
# - `mask` — a boolean array of length `n`: `True` where the largest **softmax probability** is
#   ≥ `threshold`;
# - `labels` — the predicted classes (arg-max) of the kept examples only.
#
# Then look at the trade-off on the target: how many target test images does your AdaBN model keep at
# each threshold, and how many of their pseudo-labels are right? (We may peek at the test labels here
# because this is an exercise; in a real project you cannot.)


# %%
def confident_pseudo_labels(logits, threshold):
    # BEGIN SOLUTION
    logits = np.asarray(logits, dtype="float64")
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    mask = probabilities.max(axis=1) >= threshold
    return mask, probabilities.argmax(axis=1)[mask]
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("06.4")

# %%
model = adapted if "adapted" in globals() else source_model  # 06.3 may not be answered yet
logits = model.predict(x_target_test, batch_size=256, verbose=0)
for threshold in (0.5, 0.7, 0.9):
    try:
        mask, labels = confident_pseudo_labels(logits, threshold)
    except NotImplementedError:
        break
    if not mask.any():
        print(f"threshold {threshold}: keeps no target image")
        continue
    right = float(np.mean(labels == y_target_test[mask]))
    print(f"threshold {threshold}: keeps {np.mean(mask):.0%} of the target images, {right:.0%} of them right")

# %% [markdown]
# ## What next
#
# Put the pieces together as lesson 06 does: your `GradientReversal` (with λ in a variable) and your
# `coral_loss` (in `keras.ops`) become the second loss of its `TwoDomainModel.train_step`, and your
# pseudo-labels feed a few rounds of self-training. Try two rounds of self-training from `adapted` with
# the threshold you chose: label `x_target` with the model, keep the confident images, train one epoch on
# source + kept images, repeat. Does the target accuracy beat `adapted`'s?
