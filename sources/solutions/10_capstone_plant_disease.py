# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/10_capstone_plant_disease.ipynb)
#
# # 10 · Capstone — plant disease detection — exercises
#
# This time you make the decisions. You read a **folder of images** as you would at work, train a
# **baseline from scratch**, build a **feature-extraction** model and a **fine-tuned** one (with
# augmentation), **choose** between the three on validation, evaluate the chosen one **once** on the test
# split, write a short **error analysis** with Grad-CAM, and **save** the model. The checks verify what you
# built and what you wrote, not how: any correct answer passes. About 60–90 minutes.
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
# correct answer passes. The checks of later tasks use the models of the earlier ones, so do the tasks in
# order. The lesson to read first is `notebooks/10_capstone_plant_disease.ipynb`.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %%
import tlcourse

course = tlcourse.setup("10")  # first: it quiets TensorFlow's start-up logs
budget = course.budget

import keras
import numpy as np
import tensorflow as tf

# %% [markdown]
# The data: `beans` online (bean-leaf photos: *angular leaf spot*, *bean rust*, *healthy*); offline the
# stand-in the lesson explains. Offline the images stay at the stand-in's own 64 px. The next cell writes
# them to a folder, one sub-folder per split and class — the layout your own images would have.

# %%
IMAGE_SIZE = min(budget.image_size, 64) if course.offline else budget.image_size
data = tlcourse.data.load("beans", image_size=IMAGE_SIZE)
folder = tlcourse.env.cache_dir("folders") / f"{data.name}_{IMAGE_SIZE}px"
for split in ("train", "val", "test"):
    for i, (image, label) in enumerate(zip(*data.arrays(split), strict=True)):
        path = folder / split / data.class_names[label] / f"{i:05d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            keras.utils.save_img(path, image, scale=False)  # scale=True would stretch each image's contrast
print(data)
print("folder:", folder, "with", sorted(p.name for p in folder.iterdir()))
print("classes:", data.class_names)

# %% [markdown]
# ## 10.1 Read the folder
#
# Build `train_ds` from `folder / "train"` and `val_ds` from `folder / "val"` with
# `keras.utils.image_dataset_from_directory`: images of `IMAGE_SIZE × IMAGE_SIZE`, batches of
# `budget.batch_size`, integer labels, the training split **shuffled**, the validation split not. Keep the
# pixels in [0, 255] (the pretrained base preprocesses its input itself). Label `k` must mean
# `data.class_names[k]`, as everywhere in the course — find the argument that fixes the label order. Add
# `.cache()` (decode once) and `.prefetch(tf.data.AUTOTUNE)`, and mind their order: every epoch must see the
# training images in a new order, and a cache after a shuffle replays the first epoch's order (the check reads
# `train_ds` twice). The test folder stays closed until 10.5.


# %%
# BEGIN SOLUTION
def from_folder(split, *, shuffle):
    ds = keras.utils.image_dataset_from_directory(
        folder / split,
        class_names=data.class_names,
        image_size=(IMAGE_SIZE, IMAGE_SIZE),
        batch_size=None,  # single images, cached decoded; shuffled and batched after the cache
        shuffle=False,
        verbose=False,
    ).cache()
    count = sum(1 for _ in ds)  # one complete pass fills the cache before any partial read (lesson 10)
    if shuffle:
        ds = ds.shuffle(count, seed=0)  # a new order every epoch
    return ds.batch(budget.batch_size).prefetch(tf.data.AUTOTUNE)


train_ds, val_ds = from_folder("train", shuffle=True), from_folder("val", shuffle=False)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.1")

# %% [markdown]
# ## 10.2 A baseline from scratch
#
# What does transfer buy? Build `baseline`, a small CNN trained from **random** weights: raw [0, 255] images
# in, `data.num_classes` logits out. Choose its layers yourself (a few `Conv2D` + pooling blocks after a
# `Rescaling(1 / 255)`, a global pooling, a `Dense` output with no activation), compile it with a loss that
# takes logits, and train it on `train_ds` for `budget.epochs + budget.fine_tune_epochs` epochs, validating on
# `val_ds`. It must beat chance (1 / number of classes) clearly.

# %%
# BEGIN SOLUTION
tlcourse.reseed(0)
baseline = keras.Sequential(
    [
        keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(128, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(data.num_classes),
    ],
    name="baseline",
)
baseline.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
baseline.fit(train_ds, validation_data=val_ds, epochs=budget.epochs + budget.fine_tune_epochs, verbose=0)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.2")

# %% [markdown]
# ## 10.3 Feature extraction
#
# Build and train `extraction`: EfficientNet-Lite0 pretrained on ImageNet, **frozen**, with a new head of
# `data.num_classes` **logits**, to a validation accuracy of at least 0.80, left **compiled** with a loss that
# takes logits. `tlcourse.models.backbone("efficientnet_lite0", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))` gives
# the frozen base (raw [0, 255] images in, one pooled feature vector out). Train the head however you like:
# `fit` on `train_ds` directly, or on features you computed once (lesson 03) and then copied into the model.

# %%
# BEGIN SOLUTION
base = tlcourse.models.backbone("efficientnet_lite0", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
cached = {}  # the base's features, computed once per image (an unshuffled pass keeps them with their labels)
for split, ds in (("train", from_folder("train", shuffle=False)), ("val", val_ds)):
    cached[split] = (base.predict(ds, verbose=0), np.concatenate([y for _, y in ds]))
tlcourse.reseed(0)
head = keras.Sequential([keras.Input((cached["train"][0].shape[1],)), keras.layers.Dropout(0.2),
                         keras.layers.Dense(data.num_classes, name="logits")])  # fmt: skip
head.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-2),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
# The features as tf.data pipelines: over NumPy arrays Keras adds a fixed cost to every epoch (lesson 01).
train_features = tf.data.Dataset.from_tensor_slices(cached["train"]).shuffle(len(cached["train"][1]), seed=0)
val_features = tf.data.Dataset.from_tensor_slices(cached["val"])
head.fit(train_features.batch(budget.batch_size), validation_data=val_features.batch(budget.batch_size),
         epochs=10 * budget.epochs, verbose=0)  # fmt: skip
inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
features = keras.layers.Dropout(0.2)(base(inputs, training=False))
extraction = keras.Model(
    inputs, keras.layers.Dense(data.num_classes, name="logits")(features), name="extraction"
)
extraction.get_layer("logits").set_weights(head.get_layer("logits").get_weights())
extraction.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-2),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.3")

# %% [markdown]
# ## 10.4 Fine-tuning, with augmentation
#
# Build `fine_tuned`, a **second** model (keep `extraction` as it is: it is a candidate in 10.5):
#
# - a fresh copy of the base, its **top 10 layers with weights** trainable and every **BatchNormalization**
#   layer frozen (in Keras 3 that is what keeps them in inference mode during `fit()`);
# - **augmentation** layers between the input and the base (`keras.layers.RandomFlip`, `RandomRotation`,
#   `RandomZoom`…: active only in training), since the base itself now learns from a few hundred images;
# - the head starting from the one you trained in 10.3 (copy its weights);
# - compiled with a fresh optimizer at a **small** learning rate (at most 5e-4) and trained
#   `budget.fine_tune_epochs` epochs. Its validation accuracy must stay at or above 0.80.

# %%
# BEGIN SOLUTION
tlcourse.reseed(0)
tuned_base = tlcourse.models.backbone("efficientnet_lite0", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
tuned_base.trainable = True
weighted = [
    layer
    for layer in tuned_base.layers
    if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
]
top = {id(layer) for layer in weighted[-10:]}
for layer in tuned_base.layers:
    layer.trainable = id(layer) in top
augment = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1)])
inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
features = keras.layers.Dropout(0.2)(tuned_base(augment(inputs), training=False))
fine_tuned = keras.Model(
    inputs, keras.layers.Dense(data.num_classes, name="logits")(features), name="fine_tuned"
)
fine_tuned.get_layer("logits").set_weights(extraction.get_layer("logits").get_weights())
fine_tuned.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-4),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
fine_tuned.fit(train_ds, validation_data=val_ds, epochs=budget.fine_tune_epochs, verbose=0)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.4")

# %% [markdown]
# ## 10.5 Choose, then test once
#
# You have three candidates: `baseline`, `extraction` and `fine_tuned`.
#
# - Put their validation accuracies in `val_acc`, a dict with the keys `"baseline"`, `"extraction"` and
#   `"fine-tuned"`.
# - Set `chosen` to the key of the model you keep, chosen **on validation**.
# - Only now read `folder / "test"` (not shuffled), and set `test_acc` to the **chosen** model's accuracy on
#   it. Evaluate that one model once: the other test numbers would only tempt you to choose again.

# %%
# BEGIN SOLUTION
candidates = {"baseline": baseline, "extraction": extraction, "fine-tuned": fine_tuned}
val_acc = {name: model.evaluate(val_ds, verbose=0)[1] for name, model in candidates.items()}
chosen = max(val_acc, key=val_acc.get)
test_ds = from_folder("test", shuffle=False)
test_acc = candidates[chosen].evaluate(test_ds, verbose=0)[1]
print(val_acc, chosen, test_acc)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.5")

# %% [markdown]
# ## 10.6 Error analysis
#
# Look at the chosen model's mistakes on the test split: count them, find which true classes it takes for
# which (a confusion matrix: `sklearn.metrics.confusion_matrix`), and run `tlcourse.viz.grad_cam(model, image,
# class_names=data.class_names)` on two of them. Then write `analysis`, a few sentences (at least 30 words):
# how many mistakes or what test accuracy, **which classes** were confused, **where the model looked** on the
# mistakes, and what you would try next. The check verifies your numbers against the model and that the
# classes you name are ones it got wrong.

# %%
# BEGIN SOLUTION
final_model = candidates[chosen]
test_x = np.concatenate([x for x, _ in test_ds])
test_y = np.concatenate([y for _, y in test_ds])
predicted = final_model.predict(test_x, verbose=0).argmax(axis=1)
wrong = np.flatnonzero(predicted != test_y)
pairs = [(data.class_names[test_y[i]], data.class_names[predicted[i]]) for i in wrong]
for i in wrong[:2]:
    cam = tlcourse.viz.grad_cam(final_model, test_x[i], class_names=data.class_names)
    display(cam.figure)
analysis = (
    f"The {chosen} model makes {len(wrong)} mistakes on {len(test_y)} test images. "
    + (f"It took {pairs[0][0]} for {pairs[0][1]}" + (f" and {pairs[1][0]} for {pairs[1][1]}" if len(pairs) > 1 else "") + ". "
       if pairs else "It confused no class. ")
    + "On these mistakes the Grad-CAM heat lies on the texture of the whole crop rather than on one object, so "
    "the model read a texture it shares with another class; more varied crops or fine-tuning longer could help."
)  # fmt: skip
print(analysis)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.6")

# %% [markdown]
# ## 10.7 Save the model and load it back
#
# Set `final_model` to the chosen model (10.6 may have done it), save it as a Keras 3 **`.keras`** file at
# `path`, and load it back into `reloaded` with `keras.models.load_model`. The check compares the
# predictions of `final_model`, `reloaded` and the file. `path` may be any file name ending in `.keras`, e.g.
# `"plant_disease.keras"` next to this notebook. (`.h5` is the old format; `.weights.h5` holds weights only.)

# %%
# BEGIN SOLUTION
final_model = candidates[chosen]
path = tlcourse.env.cache_dir("models") / "my_plant_disease.keras"
final_model.save(path)
reloaded = keras.models.load_model(path)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("10.7")

# %% [markdown]
# ## What next
#
# Your model is on disk and loads back to the same function. Point `image_dataset_from_directory` at a folder
# of your own photos (one sub-folder per class) and run the same steps. Then make the file small: convert it
# to TFLite with `converter.optimizations = [tf.lite.Optimize.DEFAULT]`, as section 10 of the lesson does
# (`tf.lite.TFLiteConverter.from_keras_model(final_model)` is the one-line route), and measure its size, its
# speed and whether its predictions on your test images stay the same.
