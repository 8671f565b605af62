# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/04_fine_tuning.ipynb)
#
# # 04 · Fine-tuning — exercises: unfreeze the top, schedule, two stages, progressive
#
# Four tasks on the core moves of fine-tuning: **unfreeze the top layers** of a base while its
# BatchNormalization layers stay frozen, build a **warm-up + cosine** learning-rate schedule with
# Keras, run the **two-stage recipe** on a base with BatchNorm — head first, then the top of the
# base at a small learning rate — without losing what stage 1 reached, and write a **progressive,
# discriminative** recipe of stages. About 40 minutes.
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
# the text of your code: any correct answer passes (one that calls the course's own helper for the very
# thing the task asks you to write does not). The lesson to read first is
# `notebooks/04_fine_tuning.ipynb`.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %%
import tlcourse

course = tlcourse.setup("04")  # first: it quiets TensorFlow's start-up logs

import keras

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
# Stage 2 of a recipe runs `EPOCHS` epochs over `N_TRAIN` images in batches of `BATCH`. Build
# `schedule`, a Keras learning-rate schedule for it: it rises linearly from 0 to `PEAK_LR` over
# the first **half epoch**, then decays along a cosine to 0 at the **last step** of stage 2.
#
# Work out the step counts from these numbers first (an epoch is as many steps as it takes
# batches to cover the images), then use `keras.optimizers.schedules.CosineDecay` — read its
# documentation carefully: its `decay_steps` count the steps *after* the warm-up. Calling
# `schedule(step)` gives the learning rate at that step; the check reads it at every step.

# %%
import math

PEAK_LR, N_TRAIN, BATCH, EPOCHS = 1e-4, 1000, 32, 3

# BEGIN SOLUTION
steps_per_epoch = math.ceil(N_TRAIN / BATCH)
warmup_steps = steps_per_epoch // 2
total_steps = EPOCHS * steps_per_epoch
schedule = keras.optimizers.schedules.CosineDecay(
    0.0, decay_steps=total_steps - warmup_steps, warmup_target=PEAK_LR, warmup_steps=warmup_steps
)
# END SOLUTION
print(
    "learning rate at steps 0, 8, 16, 56, 96:",
    ", ".join(f"{float(schedule(s)):.1e}" for s in (0, 8, 16, 56, 96)),
)

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("04.2")

# %% [markdown]
# ## 04.3 The two-stage recipe, on a base with BatchNorm
#
# The base is the lesson's EfficientNet-Lite0 (ImageNet weights; 49 of its layers are
# BatchNormalization) at 64 px, and the target Fashion-MNIST's classes 5–9, as in the lesson.

# %%
data = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], image_size=64)
x_train, y_train = data.arrays("train")
x_val, y_val = data.arrays("val")
base = tlcourse.models.backbone("efficientnet_lite0", input_shape=(64, 64, 3))
print(data)
print(f"base: {base.name}, {sum(isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers)} "
      "BatchNormalization layers, frozen")  # fmt: skip

# %% [markdown]
# Build `model` — raw 64×64×3 images in, 5 logits out: `base` called with `training=False`, a
# `Dropout`, then a `Dense(5)` head — and train it in two stages:
#
# 1. **Stage 1, the head, on cached features** (lesson 03): compute the base's features of
#    `x_train` once with `base.predict`, train the same head on them — `Dropout` and `Dense(5)`
#    (a learning rate of `1e-2` and about 20 epochs work here) — and copy the `Dense` weights into
#    `model`'s head. Then keep
#    `stage1_weights = model.get_weights()`: the check measures what stage 1 alone reached.
# 2. **Stage 2, the top of the base:** unfreeze the top 4 layers with your `unfreeze_top`,
#    make a **fresh optimizer** with a learning rate 100–1000× smaller than the head's (a warm-up
#    like yours helps; `3e-5` works here), **compile again** and fit 2 epochs on the images.
#
# The check needs stage 1 to have left the base alone, stage 2 to have moved the top 4 layers
# with weights and nothing else of the base — **BatchNorm statistics included** —, at least
# **85 %** on the held-out test images, and **no loss against stage 1 alone** beyond one standard
# error of the test accuracy (about 2 points on 200 images): on this little data, fine-tuning the
# top of this base gains little over stage 1 — as measured in the lesson — while a careless stage 2
# loses a lot.

# %%
# BEGIN SOLUTION
keras.utils.set_random_seed(0)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
features = base.predict(x_train, verbose=0)
head = keras.Sequential(
    [keras.Input(features.shape[1:]), keras.layers.Dropout(0.2), keras.layers.Dense(data.num_classes)]
)
head.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss=loss)
head.fit(features, y_train, epochs=20, batch_size=32, verbose=0)

inputs = keras.Input(shape=(64, 64, 3))
pooled = base(inputs, training=False)
logits = keras.layers.Dense(data.num_classes, name="head")(keras.layers.Dropout(0.2)(pooled))
model = keras.Model(inputs, logits, name="fine_tuned")
model.get_layer("head").set_weights(head.layers[-1].get_weights())
stage1_weights = model.get_weights()

unfreeze_top(base, 4)
steps_per_epoch = math.ceil(len(x_train) / 32)
stage2_schedule = keras.optimizers.schedules.CosineDecay(
    0.0,
    decay_steps=2 * steps_per_epoch - steps_per_epoch // 2,
    warmup_target=3e-5,
    warmup_steps=steps_per_epoch // 2,
)
model.compile(optimizer=keras.optimizers.Adam(learning_rate=stage2_schedule), loss=loss, metrics=["accuracy"])
stage2 = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=2, batch_size=32, verbose=0)
print(f"validation accuracy after stage 2: {stage2.history['val_accuracy'][-1]:.2f}")
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("04.3")

# %% [markdown]
# ## 04.4 Progressive unfreezing with discriminative learning rates
#
# `tlcourse.train.fine_tune(model, data, stages=[...])` runs a recipe written as a list of
# `tlcourse.train.Stage`s (lesson 04, section 9). Write `progressive`, a recipe of three stages:
#
# 1. the head alone, 2 epochs at `1e-3`;
# 2. the top layer of the base with weights, 1 epoch at `1e-4`, with half an epoch of warm-up;
# 3. the top 2 layers, 2 epochs at `1e-4`, with half an epoch of warm-up and then a cosine decay,
#    and discriminative learning rates: the whole base at a tenth of the head's rate.
#
# Every stage starts a fresh optimizer; BatchNorm stays frozen throughout. The check runs your
# recipe with `fine_tune` on a small conv + BatchNorm classifier and looks at what each stage
# moved.

# %%
Stage = tlcourse.train.Stage
# BEGIN SOLUTION
progressive = [
    Stage(2, 1e-3),
    Stage(1, 1e-4, unfreeze=1, warmup=0.5),
    Stage(2, 1e-4, unfreeze=2, warmup=0.5, schedule="cosine", lr_multipliers={"base": 0.1}),
]
# END SOLUTION
for number, stage in enumerate(progressive, start=1):
    print(f"stage {number}: {stage.describe()}")

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("04.4")

# %% [markdown]
# ## What next
#
# Run your `progressive` recipe on the model of 04.3 (from `stage1_weights`), over a few
# seeds, and compare it with your two stages: lesson 04's section 9 shows how, and what to
# expect on this little data. Lesson 05 shows what goes wrong when a step of the recipe is
# skipped.
