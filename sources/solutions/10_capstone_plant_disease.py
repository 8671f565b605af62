# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/10_capstone_plant_disease.ipynb)
#
# # 10 · Capstone — plant disease detection — exercises
#
# You build the capstone's pipeline yourself, one step per task: the **input pipeline** (without test
# leakage), a **frozen pretrained base with a new head**, the **head trained** to a target accuracy,
# **fine-tuning** with BatchNorm frozen, and a **`.keras` file** that loads back to the same model. Each
# check verifies what you built before you move on. About 60–90 minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at the objects you built (datasets, models, files), not at the text of your code: any
# correct answer passes. The checks of later tasks use the `model` of the earlier ones, so do the tasks in
# order. The lesson to read first is `notebooks/10_capstone_plant_disease.ipynb`.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %%
import keras
import tensorflow as tf

import tlcourse

course = tlcourse.setup("10")
budget = course.budget

# %% [markdown]
# The data: `beans` online (bean-leaf photos: *angular leaf spot*, *bean rust*, *healthy*); offline the
# stand-in the lesson explains. Offline the images stay at the stand-in's own 64 px.

# %%
IMAGE_SIZE = min(budget.image_size, 64) if course.offline else budget.image_size
data = tlcourse.data.load("beans", image_size=IMAGE_SIZE)
print(data)
print("classes:", data.class_names)

# %% [markdown]
# ## 10.1 The input pipeline
#
# `data.train`, `data.val` and `data.test` are **unbatched** `tf.data.Dataset`s of `(image, label)`:
# images `uint8` of shape `(IMAGE_SIZE, IMAGE_SIZE, 3)` in [0, 255], labels integer class ids. Build:
#
# - `train_ds`: the training split, **shuffled**, in batches of `budget.batch_size`;
# - `val_ds`: the validation split, in batches, not shuffled.
#
# Keep the pixels in [0, 255] (the pretrained base preprocesses its input itself) and the labels as
# integers. The test split stays out of both: it is for the final evaluation only. Useful methods:
# `.cache()`, `.shuffle(buffer_size)`, `.batch(n)`, `.prefetch(tf.data.AUTOTUNE)` — `data.batches(split)`
# does all of that for you, if you prefer.

# %%
# BEGIN SOLUTION
train_ds = (
    data.train.cache()
    .shuffle(data.sizes["train"], seed=0)
    .batch(budget.batch_size)
    .prefetch(tf.data.AUTOTUNE)
)
val_ds = data.val.cache().batch(budget.batch_size).prefetch(tf.data.AUTOTUNE)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.1")

# %% [markdown]
# ## 10.2 A frozen pretrained base with a new head
#
# Build `model`: EfficientNet-Lite0 pretrained on ImageNet as the base, **frozen**, with a new head that
# outputs `data.num_classes` **logits**.
#
# - `tlcourse.models.backbone("efficientnet_lite0", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))` gives the base
#   without its 1,000-class layer: raw [0, 255] images in, one pooled feature vector per image out. Keep it
#   in a variable `base`: task 10.4 unfreezes part of it.
# - Freeze it with `base.trainable = False` and call it with `base(inputs, training=False)`.
# - The head: `Dropout(0.2)` then `Dense(data.num_classes, name="logits")`, no activation.
#
# (`tlcourse.models.classifier(base, data.num_classes)` builds the same head, if you prefer.)

# %%
# BEGIN SOLUTION
base = tlcourse.models.backbone("efficientnet_lite0", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
base.trainable = False
inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
features = base(inputs, training=False)
features = keras.layers.Dropout(0.2)(features)
outputs = keras.layers.Dense(data.num_classes, name="logits")(features)
model = keras.Model(inputs, outputs, name="plant_disease")
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.2")

# %% [markdown]
# ## 10.3 Train the head
#
# Train the head of `model` so that its accuracy on the **validation** split reaches at least 0.80, with
# the base still frozen, and leave `model` **compiled** with
# `keras.losses.SparseCategoricalCrossentropy(from_logits=True)` (the model outputs logits).
#
# Two ways, both fine:
#
# - the direct one: `model.compile(...)`, then `model.fit(train_ds, validation_data=val_ds, epochs=...)`
#   (each epoch runs the whole base over every image);
# - the fast one from lesson 03: compute the base's features once with `tlcourse.train.extract_features`,
#   train a head on them with `tlcourse.train.fit_head`, and copy its `logits` layer's weights into
#   `model.get_layer("logits")`; then compile `model`.

# %%
# BEGIN SOLUTION
cached = {
    split: tlcourse.train.extract_features(base, data, split=split, verbose=0) for split in ("train", "val")
}
head, head_history = tlcourse.train.fit_head(
    cached["train"],
    val=cached["val"],
    epochs=20 * budget.epochs,
    learning_rate=1e-2,
    run_dir=False,
    verbose=0,
)
model.get_layer("logits").set_weights(head.get_layer("logits").get_weights())
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
print(f"head: validation accuracy {head_history.final('val_accuracy'):.3f}")
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.3")

# %% [markdown]
# ## 10.4 Fine-tune the top of the base, BatchNorm frozen
#
# Now let the top of the base learn too:
#
# 1. Make the **top 10 layers with weights** of `base` trainable, leaving every other layer frozen —
#    and every **BatchNormalization** layer frozen (`trainable = False`), even among the top ones: in Keras 3
#    that is what keeps them in inference mode during `fit()`.
# 2. **Compile again** (a changed `trainable` takes effect at the next compile) with a fresh optimizer and a
#    **small** learning rate, 10–100× below the head's (at most 5e-4).
# 3. Train `budget.fine_tune_epochs` epochs on `train_ds`, validating on `val_ds`. The validation accuracy
#    must stay at or above 0.80.
#
# Setting `base.trainable = True` makes *every* layer inside it trainable; set each layer's `trainable`
# afterwards. (`tlcourse.models.unfreeze(model, top=10)` does steps 1's bookkeeping, if you prefer.)

# %%
# BEGIN SOLUTION
base.trainable = True
weighted = [
    layer for layer in base.layers if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
]
top = {id(layer) for layer in weighted[-10:]}
for layer in base.layers:
    layer.trainable = id(layer) in top
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-4),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.fit(train_ds, validation_data=val_ds, epochs=budget.fine_tune_epochs, verbose=2)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.4")

# %% [markdown]
# ## 10.5 Save the model and load it back
#
# Save `model` as a Keras 3 **`.keras`** file at `path`, and load it back into `reloaded` with
# `keras.models.load_model`. The check compares the predictions of `model`, `reloaded` and the file.
#
# `path` may be any file name ending in `.keras`, e.g. `"plant_disease.keras"` next to this notebook; the
# solution keeps it in the course's cache folder. (`.h5` is the old format; `.weights.h5` holds weights only,
# not the model.)

# %%
# BEGIN SOLUTION
path = tlcourse.env.cache_dir("models") / "my_plant_disease.keras"
model.save(path)
reloaded = keras.models.load_model(path)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.5")

# %% [markdown]
# ## What next
#
# Your model is on disk and loads back to the same function. Try it on an image of your own:
# `reloaded(np.asarray(image)[None])` with the image resized to `IMAGE_SIZE × IMAGE_SIZE` RGB in [0, 255],
# and `keras.ops.softmax` on the logits for probabilities. Then look at its mistakes on the validation split
# with `tlcourse.viz.predictions(reloaded, val_ds, class_names=data.class_names)` and explain one of them
# with `tlcourse.viz.grad_cam`. Only when you are done choosing, evaluate once on `data.batches("test")`.
