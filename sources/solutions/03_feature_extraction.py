# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/03_feature_extraction.ipynb)
#
# # 03 · Feature extraction — exercises: freeze, pool, cache
#
# Three tasks on the core move of feature extraction: put a **new head on a frozen base** (with
# pooling, not flattening, and the base's own preprocessing), **compile** it with the loss that
# matches its logits, and train a head on **cached features** until it classifies held-out
# images well. About 30 minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at the objects you built (the models, the features), not at the text of
# your code: any correct answer passes (one that calls the course's own helper for the very
# thing a task asks you to write does not). The lesson to read first is
# `notebooks/03_feature_extraction.ipynb`.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %%
import tlcourse

course = tlcourse.setup("03")  # first: it quiets TensorFlow's start-up logs

import keras
import numpy as np

budget = course.budget

# %% [markdown]
# The data and the base are lesson 03's: `cats_vs_dogs` online (offline, tlcourse announces a
# stand-in) at the profile's image size, and EfficientNet-Lite0 with its ImageNet weights. The
# base comes **unfrozen** here — freezing it is your job. `conv_base` is the same network
# without its final pooling layer: it outputs a feature map, a grid of channel vectors.

# %%
data = tlcourse.data.load("cats_vs_dogs", image_size=budget.image_size)
num_classes = data.num_classes
image_shape = (budget.image_size, budget.image_size, 3)
base = tlcourse.models.backbone("efficientnet_lite0", input_shape=image_shape, trainable=True)
conv_base = keras.Model(base.inputs, base.get_layer("top_activation").output, name="conv_base")
print(data)
print(f"conv_base: {image_shape} images → feature maps of shape {conv_base.output.shape[1:]}")
print(f"its first layers: {[layer.name for layer in conv_base.layers[:3]]}")

# %% [markdown]
# ## 03.1 Freeze the base, pool, add a head
#
# Build `model`: raw images of shape `image_shape` in, `num_classes` logits out.
#
# - Freeze `conv_base` (every weight of it, BatchNormalization included).
# - Call it with `training=False`.
# - Turn its feature map into one vector per image with `keras.layers.GlobalAveragePooling2D()`
#   — not `Flatten()`, whose head would need a weight per position and channel.
# - End with one `keras.layers.Dense(num_classes)`, no activation.
# - Feed the pixels as they come, in [0, 255]: the base's matching preprocessing is already its
#   second layer (`preprocess`). Rescaling them yourself would preprocess twice.
#
# Exactly the head must be trainable.

# %%
# BEGIN SOLUTION
conv_base.trainable = False
inputs = keras.Input(shape=image_shape)
feature_map = conv_base(inputs, training=False)
pooled = keras.layers.GlobalAveragePooling2D()(feature_map)
logits = keras.layers.Dense(num_classes, name="head")(pooled)
model = keras.Model(inputs, logits, name="feature_extractor")
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("03.1")

# %% [markdown]
# ## 03.2 Compile with the loss that matches the logits
#
# Compile `model` with Adam (`learning_rate=1e-3`), the accuracy metric, and the loss that
# fits *this* model and *these* labels: the model outputs one logit per class, and the labels
# are class ids (0, 1, 2, …), not one-hot rows. The loss must be told that it gets logits.

# %%
# BEGIN SOLUTION
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("03.2")

# %% [markdown]
# ## 03.3 Train a head on cached features, in plain Keras
#
# With a frozen base, every epoch would compute the same features again. Compute them once
# instead, as lesson 03 does by hand (section 4), and train the head on them:
#
# - `train_features, train_labels`: numpy arrays with the features of every training image under
#   `base` (the pooled base: one vector per image) and their labels — one pass over
#   `data.batches("train")`, calling `base.predict_on_batch` on each batch of images and keeping
#   each batch's labels with its features;
# - `head`: a Keras model, one `keras.layers.Dense(num_classes)` (logits) on vectors of that size,
#   compiled as in 03.2 and trained on those arrays (try 20–40 epochs and a learning rate of a few
#   thousandths).
#
# The check computes the features of the held-out **test** split itself and needs your head to
# reach **at least 70 %** accuracy on them. (The course's `tlcourse.train.extract_features` and
# `fit_head` do each step in a line; the check wants yours.)

# %%
# BEGIN SOLUTION
features, labels = [], []
for images, batch_labels in data.batches("train"):
    features.append(base.predict_on_batch(images))
    labels.append(batch_labels.numpy())
train_features, train_labels = np.concatenate(features), np.concatenate(labels)

keras.utils.set_random_seed(0)
head = keras.Sequential([keras.Input(train_features.shape[1:]), keras.layers.Dense(num_classes)])
head.compile(
    optimizer=keras.optimizers.Adam(learning_rate=3e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
history = head.fit(train_features, train_labels, epochs=30, batch_size=32, verbose=0)
print(f"train_features {train_features.shape} {train_features.dtype}, train_labels {train_labels.shape}")
print(f"training accuracy after 30 epochs: {history.history['accuracy'][-1]:.0%}")
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("03.3")

# %% [markdown]
# ## What next
#
# Your `head` and the `Dense` layer of your `model` are the same kind of layer on the same
# features: copy the trained weights over (`model.layers[-1].set_weights(head.layers[-1].get_weights())`)
# and `model` classifies images directly — that is how a head trained on cached features is
# deployed. Lesson 04 unfreezes the top of the base and fine-tunes it.
