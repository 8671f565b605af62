# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/01_what_is_transfer_learning.ipynb)
#
# # 01 · What transfer learning is — exercises: your first transfer
#
# Three tasks that walk through the first transfer of lesson 01 yourself: put the **workflow**
# in order, **build** a model from a frozen pretrained base and a new head, and **train** it on
# 10 labelled images per class until it classifies new images well. About 25 minutes.
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
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %%
import keras
import numpy as np

import tlcourse

course = tlcourse.setup("01")

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
# ## 01.2 A frozen base and a new head
#
# The source network below is the small CNN of lesson 01, trained on Fashion-MNIST's classes
# 0–4 (T-shirt, trouser, pullover, dress, coat). Your target task is classes 5–9 (sandal,
# shirt, sneaker, bag, ankle boot), which it has never seen. Its layers:

# %%
source = tlcourse.models.source_model()  # trained once on this machine, then loaded from the cache
for layer in source.layers:
    print(f"{layer.name:10s} {type(layer).__name__:24s} output {layer.output.shape}")

# %% [markdown]
# Build `model`: the source's **feature part**, frozen, with a **new head** for the 5 target
# classes.
#
# - Cut the source before its own classifier: `keras.Model(source.inputs,
#   source.get_layer("gap").output)` keeps everything up to global average pooling (the
#   layer `"features"` is a fine cut too). Call it `base`.
# - Freeze it: `base.trainable = False`.
# - Put it in a new model for 28×28×3 images that ends in `keras.layers.Dense(5)` — logits, no
#   activation. Call the base with `training=False`.
#
# Exactly the new head must be trainable. Print how many parameters train, and how many do not.

# %%
# BEGIN SOLUTION
base = keras.Model(source.inputs, source.get_layer("gap").output, name="source_features")
base.trainable = False

inputs = keras.Input(shape=(28, 28, 3))
features = base(inputs, training=False)
logits = keras.layers.Dense(5, name="head")(features)
model = keras.Model(inputs, logits, name="transfer")

trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
print(f"trainable: {trainable:,} parameters, frozen: {frozen:,}")
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("01.2")

# %% [markdown]
# ## 01.3 Train the head on 10 labels per class
#
# Here are the labelled target images: 10 per class, 50 in all. The check measures your model
# on the held-out **test** split of classes 5–9, which it loads itself — do not train on it.

# %%
target = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=10)
x_train, y_train = target.arrays("train")
print(target)
print(f"{len(x_train)} training images of {x_train.shape[1:]}, labels {sorted(set(y_train.tolist()))}")

# %% [markdown]
# Compile `model` and fit it on `x_train, y_train` so that it reaches **at least 70 %**
# accuracy on the test split.
#
# - The model outputs logits: `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.
# - `keras.optimizers.Adam(learning_rate=...)`: only a few hundred weights learn, so a learning
#   rate well above Adam's default of 0.001 is fine.
# - 50 images make one batch: an epoch is one step, so you need a few dozen epochs.
#   `verbose=0` keeps the output short.
# - Seed first with `keras.utils.set_random_seed(0)` to get the same result every run.

# %%
# BEGIN SOLUTION
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
