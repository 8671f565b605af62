# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/04_fine_tuning.ipynb)
#
# # 04 · Fine-tuning — exercises: unfreeze the top, schedule, two stages
#
# Three tasks on the core move of fine-tuning: **unfreeze the top layers** of a base while its
# BatchNormalization layers stay frozen, build a **warm-up + cosine** learning-rate schedule,
# and run the **two-stage recipe** — head first, then the top of the base at a small learning
# rate — until it beats feature extraction on held-out images. About 30 minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at the objects you built (the function, the schedule, the model), not at
# the text of your code: any correct answer passes. The lesson to read first is
# `notebooks/04_fine_tuning.ipynb`.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %%
import keras

import tlcourse

course = tlcourse.setup("04")
budget = course.budget

# %% [markdown]
# ## 04.1 Unfreeze the top N layers, keep BatchNorm frozen
#
# Write a function `unfreeze_top(base, n)` for stage 2. It receives a base that stage 1 left
# frozen (`base.trainable = False`) and must leave **exactly the top `n` layers with weights**
# trainable:
#
# - "layers with weights" are the layers whose `layer.weights` is not empty and that are not
#   `keras.layers.BatchNormalization`; the top ones are the **last** in `base.layers`;
# - every BatchNormalization layer ends up with `trainable = False` (in Keras 3 this, not
#   `training=False`, keeps it in inference mode during `fit()`);
# - all other layers are frozen; `n = 0` leaves the whole base frozen.
#
# Remember that a model with `trainable = False` hides the weights of every layer inside it:
# make the base trainable first, then freeze what must stay frozen. The check tries your
# function on a small conv + BatchNorm base with `n` = 2, 3 and 0.


# %%
def unfreeze_top(base, n):
    # BEGIN SOLUTION
    base.trainable = True
    weighted = [
        layer
        for layer in base.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    top = weighted[len(weighted) - n :]
    for layer in base.layers:
        layer.trainable = layer in top
    return base
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("04.1")

# %% [markdown]
# ## 04.2 A warm-up + cosine learning-rate schedule
#
# Build `schedule`, a Keras learning-rate schedule for a stage 2 of `TOTAL_STEPS` training
# steps: it rises linearly from about 0 to `PEAK_LR` over the first `WARMUP_STEPS` steps, then
# decays along a cosine to 0 at step `TOTAL_STEPS`.
#
# Either `tlcourse.train.WarmupCosine(peak, total_steps=..., warmup_steps=..., cosine=True)`
# (lesson 04, section 5) or Keras' own `keras.optimizers.schedules.CosineDecay` does it — read
# the latter's documentation carefully: its `decay_steps` count the steps *after* the warm-up.
# Calling `schedule(step)` gives the learning rate at that step; the check reads it at many
# steps.

# %%
PEAK_LR, WARMUP_STEPS, TOTAL_STEPS = 1e-4, 50, 500

# BEGIN SOLUTION
schedule = tlcourse.train.WarmupCosine(
    PEAK_LR, total_steps=TOTAL_STEPS, warmup_steps=WARMUP_STEPS, cosine=True
)
# END SOLUTION
print(
    "learning rate at steps 0, 25, 50, 275, 500:",
    ", ".join(f"{float(schedule(step)):.1e}" for step in (0, 25, 50, 275, 500)),
)

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("04.2")

# %% [markdown]
# ## 04.3 The two-stage recipe
#
# To keep the exercise fast, it uses the small set-up of lessons 01–03: the CNN pretrained on
# Fashion-MNIST's classes 0–4 (`source`) and, as the target, classes 5–9 at 28 px. `base` is the
# source without its old head (it outputs 128 features; its layers with weights are `conv1`,
# `conv2`, `conv3` and `features`).

# %%
data = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9])
x_train, y_train = data.arrays("train")
x_val, y_val = data.arrays("val")
source = tlcourse.models.source_model()
base = tlcourse.models.headless(source)
print(data)
print(f"base: {[layer.name for layer in base.layers if layer.weights]} → {base.output.shape[-1]} features")

# %% [markdown]
# Build `model` — raw 28×28×3 images in, 5 logits out (`base`, called with `training=False`,
# then a `Dense(5)` head, optionally a `Dropout` before it) — and train it in two stages:
#
# 1. **Stage 1, the head:** freeze `base`, compile (Adam, `SparseCategoricalCrossentropy(from_logits=True)`,
#    accuracy) and fit on `x_train, y_train` until the head is good (a learning rate of `1e-2`
#    and about 20 epochs work here).
# 2. **Stage 2, the top of the base:** unfreeze the top 2 layers with your `unfreeze_top`,
#    make a **fresh optimizer** with a learning rate 10–100× smaller (a constant one or a
#    schedule like yours; `1e-4` to `3e-4` works here), **compile again** and fit 5–10 more epochs.
#
# Pass `validation_data=(x_val, y_val)` to watch for overfitting; keep `verbose=0` if you like
# quiet cells. The check needs the bottom layers (`conv1`, `conv2`) unchanged, the top ones
# fine-tuned, and **at least 80 %** accuracy on the held-out test images — more than stage 1
# alone gets here.

# %%
# BEGIN SOLUTION
keras.utils.set_random_seed(0)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
base.trainable = False
inputs = keras.Input(shape=(28, 28, 3))
features = base(inputs, training=False)
logits = keras.layers.Dense(data.num_classes, name="head")(keras.layers.Dropout(0.2)(features))
model = keras.Model(inputs, logits, name="fine_tuned")

model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss=loss, metrics=["accuracy"])
stage1 = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=20, batch_size=32, verbose=0)

unfreeze_top(base, 2)
steps_per_epoch = -(-len(x_train) // 32)
stage2_schedule = tlcourse.train.WarmupCosine(
    3e-4, total_steps=10 * steps_per_epoch, warmup_steps=steps_per_epoch, cosine=True
)
model.compile(optimizer=keras.optimizers.Adam(learning_rate=stage2_schedule), loss=loss, metrics=["accuracy"])
stage2 = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=10, batch_size=32, verbose=0)
print(f"validation accuracy: after stage 1 {stage1.history['val_accuracy'][-1]:.2f}, "
      f"after stage 2 {stage2.history['val_accuracy'][-1]:.2f}")  # fmt: skip
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("04.3")

# %% [markdown]
# ## What next
#
# `tlcourse.train.fine_tune(model, data, stages=[...])` runs the same recipe from a list of
# `Stage`s (lesson 04, section 9): try a progressive version — unfreeze `features` for one
# epoch, then `conv3` too — and compare its validation accuracy with yours. Lesson 05 shows
# what goes wrong when a step of the recipe is skipped.
