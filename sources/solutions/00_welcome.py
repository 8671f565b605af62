# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/00_welcome.ipynb)
#
# # 00 · Welcome — exercises: the Keras you need for this course
#
# Three small tasks on the Keras objects every later lesson uses: a model that outputs
# **logits**, its **trainable parameters**, and a **pretrained base with a new head**, written in
# plain Keras. About 20 minutes.
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
# `notebooks/00_welcome.ipynb`.

# %%
# On Colab, install the course's helper package (on your machine `make lab` did it).
import sys

if "google.colab" in sys.modules:
    import subprocess

    package = "tlcourse @ git+https://github.com/tlcourse/tlcourse@main"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import tlcourse

course = tlcourse.setup("00")  # first: it quiets TensorFlow's start-up logs

import keras

# %% [markdown]
# ## 00.1 A model that outputs logits
#
# Build a `keras.Sequential` model named `model` that takes 32×32 colour images (shape
# `(32, 32, 3)`) and returns **10 logits** per image: one raw score per class.
#
# - Start it with `keras.Input(shape=(32, 32, 3))` so Keras knows the input shape at once.
# - Any layers may come in between (a `Flatten()` is enough), but each image must end up as
#   one vector.
# - The last layer is `keras.layers.Dense(10)` **without** an activation. Throughout the
#   course models output logits and the loss is told so with `from_logits=True`: one
#   convention end to end, and no softmax hidden anywhere.

# %%
# BEGIN SOLUTION
model = keras.Sequential(
    [
        keras.Input(shape=(32, 32, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ],
    name="tiny_cnn",
)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("00.1")

# %% [markdown]
# ## 00.2 Count the trainable parameters
#
# Training changes only a model's *trainable* parameters. Transfer learning is largely about
# choosing which ones those are, so you will count them often. Write a function
# `count_trainable_params(model)` that returns how many trainable numbers the model has.
#
# - `model.trainable_weights` lists the trainable weight tensors; each has a `.shape`.
# - A tensor of shape `(8, 4)` holds 32 numbers.
# - Frozen layers and BatchNormalization's moving mean and variance are weights too, but not
#   trainable ones: they must not be counted.
#
# The check tries your function on three small models, one with a frozen part.


# %%
def count_trainable_params(model):
    # BEGIN SOLUTION
    total = 0
    for weight in model.trainable_weights:
        size = 1
        for dim in weight.shape:
            size *= dim
        total += size
    return total
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("00.2")

# %% [markdown]
# ## 00.3 A pretrained base with a new head, in plain Keras
#
# Build `transfer_model`, the lesson's section 5 for a new task with **3 classes** and small
# **96×96** images, from `keras.applications` (not from `tlcourse`: this is the code you will write at
# work):
#
# - the base: `keras.applications.MobileNetV2` without its ImageNet head (`include_top=False`),
#   `weights=WEIGHTS` (set below) and `input_shape=(96, 96, 3)`;
# - frozen, so that only the new head can learn;
# - the model takes **raw** RGB in [0, 255]: MobileNetV2's preprocessing (what
#   `keras.applications.mobilenet_v2.preprocess_input` does) happens inside it;
# - one feature vector per image (pool the feature maps), then a `Dense` layer with 3 **logits**.
#
# The check builds its own MobileNetV2 with your base's weights and compares what both compute on the
# same images, so it sees whether the preprocessing, the pooling and the head are right.

# %%
# Online, MobileNetV2's ImageNet weights at 96 px (downloaded once); offline they cannot be had, so
# the base gets random weights: the model is built the same way, it just knows nothing yet.
WEIGHTS = None if course.offline else "imagenet"

# %%
# BEGIN SOLUTION
base = keras.applications.MobileNetV2(include_top=False, weights=WEIGHTS, input_shape=(96, 96, 3))
base.trainable = False
inputs = keras.Input(shape=(96, 96, 3))
x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)  # [0, 255] → [-1, 1], as preprocess_input
x = base(x, training=False)
x = keras.layers.GlobalAveragePooling2D()(x)
transfer_model = keras.Model(inputs, keras.layers.Dense(3)(x))
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("00.3")

# %% [markdown]
# ## What next
#
# Your model, your parameter count and your frozen base with a new head are the moves of the next
# lessons: lesson 01 trains such a head and compares it with the same network trained from scratch.
# Before you go, try your function on your model: `count_trainable_params(transfer_model)` should be
# 3 × 1,280 weights plus 3 biases.
