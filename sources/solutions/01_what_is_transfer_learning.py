# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/01_what_is_transfer_learning.ipynb)
#
# # 01 · What transfer learning is — exercises: your first transfer
#
# Three tasks that walk through the first transfer of lesson 01 yourself: put the **workflow**
# in order, **load a base** from `keras.applications` with the preprocessing it needs, and
# **transfer** a pretrained network to new classes with 10 labelled images per class until it
# classifies new images well. About 25 minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at the objects you built (the model, what your function returns), not at
# the text of your code: any correct answer passes. The lesson to read first is
# `notebooks/01_what_is_transfer_learning.ipynb`.

# %%
# On Colab, install the course's helper package (on your machine `make lab` did it).
import sys

if "google.colab" in sys.modules:
    import subprocess

    package = "tlcourse @ git+https://github.com/tlcourse/tlcourse@main"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import tlcourse

course = tlcourse.setup("01")  # first: it quiets TensorFlow's start-up logs

import keras
import numpy as np

# %% [markdown]
# ## 01.1 The workflow, in order
#
# Every transfer learning project in this course follows the same six steps. Here they are,
# shuffled:

# %%
STEPS = ["train the head", "evaluate", "freeze the base", "pick a base", "fine-tune", "add a new head"]

# %% [markdown]
# Make `workflow` the list of these six names (copy them exactly) in the order you would do
# them. Think about what each step needs to have happened before it: what must exist before
# it can be trained, what must not change while the head learns, and what is measured when.

# %%
# BEGIN SOLUTION
workflow = ["pick a base", "freeze the base", "add a new head", "train the head", "fine-tune", "evaluate"]
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("01.1")

# %% [markdown]
# ## 01.2 A base from `keras.applications`, with the preprocessing it needs
#
# The lesson loaded MobileNetV2 and scaled the images with MobileNetV2's own `preprocess_input`.
# Now do the same for **ResNet50**: build `classifier`, a model for 5 classes that
#
# - takes raw RGB images of 128×128 pixels, values in [0, 255];
# - scales them the way ResNet50 was trained — look up what `preprocess_input` does for this
#   family on keras.io (*Keras Applications*): it is **not** MobileNetV2's scaling;
# - runs them through `keras.applications.ResNet50` without its 1000-class top, **frozen**;
# - turns the base's grid of features into one vector per image, and ends in a new `Dense`
#   layer with 5 outputs (logits, no activation).
#
# Use `weights="imagenet"` where you are online; offline (as in the course's tests) the weights
# cannot be downloaded, so use `weights=None`: the check only needs the right network, not
# trained weights. `course.offline` tells you which.

# %%
# BEGIN SOLUTION
resnet = keras.applications.ResNet50(
    input_shape=(128, 128, 3), include_top=False, weights=None if course.offline else "imagenet"
)
resnet.trainable = False

inputs = keras.Input(shape=(128, 128, 3))
scaled = keras.applications.resnet50.preprocess_input(inputs)  # RGB → BGR, minus the ImageNet mean
features = keras.layers.GlobalAveragePooling2D()(resnet(scaled))
classifier = keras.Model(inputs, keras.layers.Dense(5)(features))
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("01.2")

# %% [markdown]
# ## 01.3 Transfer to new classes and reach 70 %
#
# The source network below is the small CNN of lesson 01, trained on Fashion-MNIST's classes
# 0–4 (T-shirt, trouser, pullover, dress, coat). Your target task is classes 5–9 (sandal,
# shirt, sneaker, bag, ankle boot), which it has never seen, with only 10 labelled images per
# class. Its layers, and the target data:

# %%
source = tlcourse.models.source_model()  # trained once on this machine, then loaded from the cache
for layer in source.layers:
    print(f"{layer.name:10s} {type(layer).__name__:24s} output {layer.output.shape}")
target = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=10)
x_train, y_train = target.arrays("train")
print(target)
print(f"{len(x_train)} training images of {x_train.shape[1:]}, labels {sorted(set(y_train.tolist()))}")

# %% [markdown]
# Build `model` from the source network and train it so that it reaches **at least 70 %** on
# the held-out test split of classes 5–9 (the check loads it itself: do not train on it).
#
# - Keep the part of the source that computes general features and drop what is specific to
#   its own five classes: which layer is the last one worth keeping?
# - Only the new head may learn: with 50 images, a trainable base would forget what it knows.
# - Compile and fit yourself: choose the loss for a model that outputs logits, a learning
#   rate and a number of epochs (50 images make a single batch). Seed first with
#   `keras.utils.set_random_seed(0)` to get the same result every run, and pass `verbose=0`.

# %%
# BEGIN SOLUTION
base = keras.Model(source.inputs, source.get_layer("gap").output, name="source_features")
base.trainable = False

inputs = keras.Input(shape=(28, 28, 3))
model = keras.Model(inputs, keras.layers.Dense(5, name="head")(base(inputs)), name="transfer")

keras.utils.set_random_seed(0)
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=3e-2),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
history = model.fit(x_train, y_train, epochs=30, batch_size=50, verbose=0)
print(f"training accuracy after {len(history.history['loss'])} epochs: {history.history['accuracy'][-1]:.0%}")
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("01.3")

# %% [markdown]
# ## What next
#
# Lesson 01 compared this recipe with the same network trained from scratch. Try it yourself:
# build `tlcourse.models.small_cnn((28, 28, 3), 5)` (random weights, everything trainable), train
# it on the same 50 images and compare the test accuracies — then try 1 and 3 labels per class.
# Lesson 02 places what you just did in the taxonomy of transfer learning: a new task with a few
# labels is *inductive* transfer.
