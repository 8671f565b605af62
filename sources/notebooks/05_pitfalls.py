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
# # 05 · Pitfalls
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/05_pitfalls.ipynb)
#
# **Time:** about 40 minutes.
#
# **You will learn** to recognise nine classic transfer-learning mistakes by their symptoms, each shown as a
# broken run next to the fixed one:
# - overfitting a small dataset; a wrong input size; preprocessing that does not match the base;
# - forgetting to freeze the base; BatchNorm statistics drifting; a learning rate that wipes out the
#   pretrained features;
# - a base from a distant domain (negative transfer); choosing the model on the test set; and mixing up
#   logits and probabilities.
#
# **Prerequisites:** lessons 01–04.
#
# Every pitfall is kept small (tiny subsets, few epochs, models compiled once and re-used across seeds); the
# differences are still large enough to measure, and the course's tests check each one.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
LABELS_PER_CLASS = 10  # labelled training images per class: the small-data regime where pitfalls bite
IMAGE_EPOCHS = 40  # epochs of the models trained on images (sections 1 and 4)

# %%
import tlcourse

course = tlcourse.setup("05", profile=PROFILE)
budget = course.budget

# %% [markdown]
# ## The set-up
#
# The target task is Fashion-MNIST's classes 5–9 (sandal, shirt, sneaker, bag, ankle boot) with only
# `LABELS_PER_CLASS` labelled training images per class. Two pretrained bases are at hand:
#
# - a **near source**: the small CNN trained on Fashion-MNIST's *other* classes 0–4 (t-shirt, trouser,
#   pullover, dress, coat) — `tlcourse.models.source_model()`, the base of lessons 01–03;
# - a **distant source**: EfficientNet-Lite0 trained on ImageNet photos.
#
# Each pitfall below records a *broken* run and a *fixed* one; `record` keeps the pair.

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

target = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=LABELS_PER_CLASS)
x_train, y_train = target.arrays("train")
x_val, y_val = target.arrays("val")
x_test, y_test = target.arrays("test")
print(target)
source = tlcourse.models.source_model()
source_base = tlcourse.models.headless(source)  # the source CNN without its old head: 128 features
source_facts = tlcourse.models.source_facts(source)
print(f"near source: {source.name}, {source.count_params():,} parameters, trained on "
      f"{source_facts['train_size']:,} images of {source_facts['dataset']}, "
      f"{source_facts['test_accuracy']:.0%} on its own classes")  # fmt: skip
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
results = {}  # pitfall → {"metric", "broken", "fixed"}: one recorded pair per pitfall


def record(pitfall, metric, broken, fixed, higher_is_better=True):
    results[pitfall] = {"metric": metric, "broken": float(broken), "fixed": float(fixed),
                        "higher_is_better": higher_is_better}  # fmt: skip
    course.record("pitfalls", results)
    print(f"{pitfall}: {metric} broken {broken:.3f} → fixed {fixed:.3f}")


def accuracy(model, x, y):
    return float(np.mean(model.predict(x, verbose=0, batch_size=256).argmax(axis=1) == y))


def batches(x, y, *, seed, batch_size=16):
    """(x, y) as a tf.data pipeline: cached, reshuffled every epoch, batched."""
    data = tf.data.Dataset.from_tensor_slices((x, y)).cache().shuffle(len(x), seed=seed)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def mean_std(values):
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


# %% [markdown]
# ## 1 · Overfitting a small dataset
#
# With so few training images, a network can memorise them all: the training loss keeps falling while the
# validation loss turns around and climbs. The symptom is in the **validation loss curve**. The fixes are
# the standard regularisers: **dropout**, **early stopping** on the validation loss with the best weights
# restored, and **data augmentation** (random flips, rotations and zooms as Keras preprocessing layers —
# not `ImageDataGenerator`, which is deprecated, and never before a `.cache()`). To keep this fast, the
# first two runs train an MLP head (256 hidden units: plenty of room to memorise) on the near source's
# cached features; augmentation needs the images, so it comes after the curves.

# %%
near_features = {split: source_base.predict(x, verbose=0)
                 for split, x in (("train", x_train), ("val", x_val), ("test", x_test))}  # fmt: skip
overfit_epochs = 60
overfit_runs = {}
for name in ("broken", "fixed"):
    mlp, history = tlcourse.train.fit_head(
        near_features["train"],
        y_train,
        val=(near_features["val"], y_val),
        head="mlp",
        hidden=256,
        dropout=0.0 if name == "broken" else 0.5,
        early_stopping=None if name == "broken" else 10,
        epochs=overfit_epochs,
        learning_rate=1e-2,
        seed=0,
        run_dir=False,
        verbose=0,
    )
    h = history.history
    overfit_runs[name] = {
        "val_loss": float(loss(y_val, mlp.predict(near_features["val"], verbose=0))),  # the model kept
        "epochs_run": len(h["loss"]),
        "final_train_loss": h["loss"][-1],
        "lowest_val_loss": min(h["val_loss"]),
        "lowest_val_loss_epoch": int(np.argmin(h["val_loss"])) + 1,
        "last_val_loss": h["val_loss"][-1],
    }
    print(f"{name}: {len(h['loss'])} epochs, training loss {h['loss'][-1]:.3f} at the end; validation loss "
          f"lowest {min(h['val_loss']):.3f} (epoch {np.argmin(h['val_loss']) + 1}), last {h['val_loss'][-1]:.3f}")  # fmt: skip
    overfit_runs[name]["history"] = h

fig, ax = plt.subplots(figsize=(7, 3))
for name, color in (("broken", "tab:red"), ("fixed", "tab:green")):
    h = overfit_runs[name]["history"]
    ax.plot(
        range(1, len(h["loss"]) + 1), h["loss"], color=color, linestyle=":", label=f"{name}: training loss"
    )
    ax.plot(range(1, len(h["loss"]) + 1), h["val_loss"], color=color, label=f"{name}: validation loss")
ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="No regularisation vs. dropout + early stopping")
ax.legend(fontsize=8)
fig.tight_layout()
plt.close(fig)
record("overfitting", "validation loss of the final model", overfit_runs["broken"]["val_loss"],
       overfit_runs["fixed"]["val_loss"], higher_is_better=False)  # fmt: skip
course.record("overfitting_curves", {name: {k: v for k, v in run.items() if k != "history"}
                                     for name, run in overfit_runs.items()})  # fmt: skip
fig

# %% [markdown]
# The red dotted line (training loss without regularisation) dives towards zero while the red solid line
# (validation loss) rises after its minimum — the model becomes confidently wrong on new images. The fixed
# run drops half of the hidden units at random while training and stops when the validation loss has not
# improved for 10 epochs, keeping the best weights (the green lines end early). The printed lines give the
# epochs and losses of this run.
#
# Augmentation attacks the cause — too few distinct images — by showing the network new random variants of
# each image at every epoch. In Keras it is a few layers, active only when called with `training=True`
# (`tlcourse.data.augmentation` builds them; `DataBundle.batches("train", augment=...)` applies them after
# the cache). Six random variants of one training image:

# %%
augment = tlcourse.data.augmentation(rotation=0.05, zoom=0.1, contrast=0.1, seed=0)
tlcourse.viz.augmentations(augment, x_train[0], n=6, seed=0)

# %% [markdown]
# Does it help here? Augmentation needs the images, so the layers go **into the model**, in front of a
# frozen copy of the near source's base, with the same MLP head and learning rate as the broken run above.
# `fit()` calls the model with `training=True`, so every epoch sees new variants; `predict()` and
# `evaluate()` call it with `training=False`, so validation and test images pass unchanged. We train the
# model with and without the augmentation layers, `IMAGE_EPOCHS` epochs each, over the budget's seeds
# (one run on a handful of images proves little).
#
# Compiling a model costs more than training it on a handful of images, so each kind of model is built
# and compiled **once**; for every seed, `tlcourse.adapt.restart` gives it the weights of a freshly built
# twin (the pretrained base, a new random head) and a fresh optimizer state — the same as building a new
# model, without tracing its training step again.

# %%
from tqdm.auto import tqdm


def image_model(*, augmentation=None, trainable_base=False):
    """Images in, logits out: [augmentation →] a copy of the near source's base → the MLP head of above."""
    base = keras.models.clone_model(source_base)  # a copy: training it leaves source_base as it is
    base.set_weights(source_base.get_weights())
    base.trainable = trainable_base
    images = keras.Input(x_train.shape[1:])
    x = augmentation(images) if augmentation is not None else images  # active only with training=True
    hidden = keras.layers.Dense(256, activation="relu")(base(x, training=False))
    return keras.Model(images, keras.layers.Dense(target.num_classes)(hidden), name="image_model")


def base_of(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def compiled(model, learning_rate=1e-2):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss)
    return model


def train_seed(model, seed):
    """Restart `model` from a fresh twin's weights drawn with `seed`, then train it on the images."""
    tlcourse.reseed(seed)
    tlcourse.adapt.restart(model, image_model())  # augmentation layers have no weights to restart
    model.fit(batches(x_train, y_train, seed=seed), epochs=IMAGE_EPOCHS, shuffle=False, verbose=0)
    return model


def val_loss_and_test_accuracy(model):
    val_logits = model.predict(x_val, batch_size=256, verbose=0)
    return float(loss(y_val, val_logits)), accuracy(model, x_test, y_test)


plain_model = compiled(image_model())
augmented_model = compiled(image_model(augmentation=augment))  # the layers pictured above
augmentation_runs = {"without": {"val_loss": [], "test_accuracy": []},
                     "with": {"val_loss": [], "test_accuracy": []}}  # fmt: skip
frozen_weights = {}  # seed → the trained frozen-base model's weights (sections 4 and 6 start from them)
for seed in tqdm(budget.seeds, desc="with and without augmentation"):
    for name, model in (("without", plain_model), ("with", augmented_model)):
        train_seed(model, seed)
        val_loss, test_accuracy = val_loss_and_test_accuracy(model)
        augmentation_runs[name]["val_loss"].append(val_loss)
        augmentation_runs[name]["test_accuracy"].append(test_accuracy)
    frozen_weights[seed] = plain_model.get_weights()
for name, runs in augmentation_runs.items():
    print(f"{name:7s} augmentation: validation loss {mean_std(runs['val_loss'])}, "
          f"test accuracy {mean_std(runs['test_accuracy'])}  (mean ± std over {len(budget.seeds)} seeds)")  # fmt: skip
gain = {metric: np.mean(augmentation_runs["with"][metric]) - np.mean(augmentation_runs["without"][metric])
        for metric in ("val_loss", "test_accuracy")}  # fmt: skip
print(f"augmentation {'lowered' if gain['val_loss'] < 0 else 'raised'} the validation loss by {abs(gain['val_loss']):.3f} "
      f"and {'raised' if gain['test_accuracy'] > 0 else 'lowered'} the test accuracy by {abs(gain['test_accuracy']):.3f}")  # fmt: skip
course.record("augmentation", {**augmentation_runs, "epochs": IMAGE_EPOCHS, "seeds": list(budget.seeds)})

# %% [markdown]
# Read the last line: it says what this run shows. In the course's tests (the `ci` profile) augmentation
# lowers the validation loss in every seed — the model is less confidently wrong on images it has not seen
# — but it does **not** raise the test accuracy; it lowers it a little. Regularising is not the same as
# learning more: rotated, zoomed and contrast-shifted 28-pixel clothes are new images, but not necessarily
# the variations the test images hold. Augmentation is a bet on which variations matter; measure it on
# validation data like any other choice.

# %% [markdown]
# ## 2 · Wrong input size
#
# Every base has a smallest input it accepts (its downsampling steps must not shrink the image below one
# pixel) and a size it was trained at. Fashion-MNIST images are 28×28, below EfficientNet-Lite0's minimum of
# 32. Plain Keras raises an error deep inside the model (or, for a model built on `None × None` inputs,
# runs anyway); tlcourse stops at once with an error that says what to do:

# %%
try:
    tlcourse.models.backbone("efficientnet_lite0", input_shape=(28, 28, 3))
    wrong_size_error = None
except tlcourse.errors.TlcourseError as error:
    wrong_size_error = error
    print(f"{type(error).__name__}: {error}")
course.record("wrong_size_error", type(wrong_size_error).__name__ if wrong_size_error else None)

# %% [markdown]
# The fix is to resize the images (`tlcourse.data.load(..., image_size=...)` or a `keras.layers.Resizing`
# layer in the model). But *how much* matters too, and this part is silent: nothing fails if the images are
# just above the minimum, the features are simply poorer. We build the Lite0 base once for any input size
# and compare a linear head on its features at 32 px (the minimum) and at the size this profile uses.
#
# The features come out of a `tf.data` pipeline that resizes one batch at a time: at the `full` profile's
# size, all the resized test images at once would take gigabytes of memory, while their features are small
# (this run's sizes are printed below).

# %%
lite0 = tlcourse.models.backbone("efficientnet_lite0", input_shape=(None, None, 3))
good_size = min(budget.image_size, 64) if course.offline else budget.image_size


def lite0_features(images, size, *, scale=1.0):
    """Lite0's features of `images` resized to size × size (and multiplied by `scale`), batch by batch."""
    resize = keras.layers.Resizing(size, size)
    resized = (
        tf.data.Dataset.from_tensor_slices(images)
        .batch(64)
        .map(lambda batch: resize(tf.cast(batch, "float32")) * scale)
    )
    return lite0.predict(resized.prefetch(tf.data.AUTOTUNE), verbose=0)


def linear_probe(train_features, test_features, epochs=60):
    head, _ = tlcourse.train.fit_head(train_features, y_train, num_classes=target.num_classes, epochs=epochs,
                                      learning_rate=1e-2, run_dir=False, verbose=0)  # fmt: skip
    return accuracy(head, test_features, y_test), head


lite0_train = {size: lite0_features(x_train, size) for size in (32, good_size)}
lite0_test = {size: lite0_features(x_test, size) for size in (32, good_size)}
resized_bytes = len(x_test) * good_size * good_size * 3 * 4  # float32
print(f"{len(x_test):,} test images at {good_size} px: {resized_bytes / 1e6:,.1f} MB resized at once, "
      f"{lite0_test[good_size].nbytes / 1e6:,.1f} MB as features")  # fmt: skip
size_accuracy, lite0_heads = {}, {}
for size in (32, good_size):
    size_accuracy[size], lite0_heads[size] = linear_probe(lite0_train[size], lite0_test[size])
record(
    "wrong_input_size", f"test accuracy, 32 px vs {good_size} px", size_accuracy[32], size_accuracy[good_size]
)

# %% [markdown]
# At the minimum size, the image shrinks to a single pixel long before the last block, and the pretrained
# filters — tuned to ImageNet objects a few hundred pixels across — see far less; the accuracy printed above
# shows the cost. Feed a base images close to the size it was trained at when you can afford it.
#
# ## 3 · Preprocessing that does not match the base
#
# Every base expects its inputs scaled the way its training data was. tlcourse's bases take raw RGB in
# [0, 255] and do the scaling inside the model. A very common mistake (the seeds do it with
# `ImageDataGenerator(rescale=1./255)`) is to scale images to [0, 1] *and* feed them to such a base: it then
# sees images that are almost uniformly black. tlcourse's training functions catch it:

# %%
resize_good = keras.layers.Resizing(good_size, good_size)
try:
    tlcourse.models.check_images(lite0, resize_good(x_train[:8].astype("float32")).numpy() / 255)
except tlcourse.errors.DataError as error:
    print(f"{type(error).__name__}: {error}")

# %% [markdown]
# Plain Keras would not complain. The broken run feeds [0, 1] images to the same base, the fixed run raw
# [0, 255] pixels (the features of section 2); both train the same linear head:

# %%
acc_scaled, _ = linear_probe(lite0_features(x_train, good_size, scale=1 / 255),
                             lite0_features(x_test, good_size, scale=1 / 255))  # fmt: skip
acc_raw, lite0_head = size_accuracy[good_size], lite0_heads[good_size]
record("preprocessing_mismatch", "test accuracy", acc_scaled, acc_raw)

# %% [markdown]
# The features of "black" images carry far less information, and the accuracy shows it. The bug is silent
# — no error, no warning — which is why the course keeps the preprocessing *inside* the model.
#
# ## 4 · Forgetting to freeze the base
#
# Forget `base.trainable = False` and `fit()` trains every weight of the base, with a freshly initialised
# head sending large random gradients into it, on a handful of images, at the learning rate meant for a new
# head. The first symptom is the count of trainable parameters, which you can check before training
# (`tlcourse.models.trainable_report(model)` shows it per block):

# %%
unfrozen_model = compiled(image_model(trainable_base=True))
trainable = {name: tlcourse.introspect.count_params(model.trainable_weights)
             for name, model in (("frozen", plain_model), ("unfrozen", unfrozen_model))}  # fmt: skip
print(
    f"trainable parameters: frozen base {trainable['frozen']:,}, forgotten freeze {trainable['unfrozen']:,}"
)

# %% [markdown]
# What does it cost? We train the unfrozen model exactly like the frozen one of section 1 (same head,
# learning rate, epochs and seeds), and measure three things: the test accuracy; how far the base's
# features moved (the change of its feature vectors on the test images, relative to their size: 0 means
# unchanged); and what the base still knows of its **source** task — the source model's own old head on top
# of the trained base, on test images of classes 0–4.

# %%
source_bundle = tlcourse.data.load("fashion_mnist", classes=[0, 1, 2, 3, 4])
x_source_test, y_source_test = source_bundle.arrays("test")
source_head = source.get_layer("logits")  # the source model's own classifier of its classes 0-4


def source_task_accuracy(base):
    features = base.predict(x_source_test, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(source_head(features), axis=1) == y_source_test))


def feature_change(base):
    moved = base.predict(x_test, batch_size=256, verbose=0)
    return float(np.linalg.norm(moved - near_features["test"]) / np.linalg.norm(near_features["test"]))


freeze_runs = {"frozen": {"test_accuracy": augmentation_runs["without"]["test_accuracy"],  # section 1
                          "feature_change": [feature_change(base_of(plain_model))],
                          "source_accuracy": [source_task_accuracy(base_of(plain_model))]},
               "unfrozen": {"test_accuracy": [], "feature_change": [], "source_accuracy": []}}  # fmt: skip
for seed in tqdm(budget.seeds, desc="forgetting to freeze"):
    train_seed(unfrozen_model, seed)
    runs = freeze_runs["unfrozen"]
    runs["test_accuracy"].append(accuracy(unfrozen_model, x_test, y_test))
    runs["feature_change"].append(feature_change(base_of(unfrozen_model)))
    runs["source_accuracy"].append(source_task_accuracy(base_of(unfrozen_model)))
source_before = source_task_accuracy(source_base)
print(
    f"the pretrained base on its source task: {source_before:.3f} (chance {1 / len(source_bundle.class_names):.3f})"
)
for name, runs in freeze_runs.items():
    print(f"{name:8s}: test accuracy {mean_std(runs['test_accuracy'])}, feature change "
          f"{np.mean(runs['feature_change']):.3f}, source-task accuracy {np.mean(runs['source_accuracy']):.3f}")  # fmt: skip
record("forgetting_to_freeze", "source-task accuracy the base keeps",
       np.mean(freeze_runs["unfrozen"]["source_accuracy"]), np.mean(freeze_runs["frozen"]["source_accuracy"]))  # fmt: skip
course.record("forgetting_to_freeze", {**freeze_runs, "trainable": trainable, "source_before": source_before,
                                       "chance": 1 / len(source_bundle.class_names)})  # fmt: skip

# %% [markdown]
# Three lines, three symptoms. The unfrozen base's features moved about as far as their own size (a change
# near 1.0): it is no longer the pretrained base. Its old head, put back on top, now scores about chance on
# the source task, where the frozen base keeps exactly the pretrained accuracy: what pretraining learned was
# overwritten, not built on. And that bought nothing on the target task: the test accuracy is no better than
# with the frozen base (in the course's tests it is lower on average; compare the spreads). With a handful
# of images, the base's parameters can only fit those images. Freeze the base for stage 1; unfreeze it, if
# at all, only after the head is trained and with a small learning rate (pitfall 6).
#
# ## 5 · BatchNorm statistics drifting
#
# Lesson 04 measured this in depth. The short version: a BatchNormalization layer that is trainable runs in
# training mode during `fit()` and rewrites its stored mean and variance from the new data — *even when the
# learning rate is zero*, because those statistics are not learned by gradients. We take the Lite0 base with
# its trained head (the fixed run of pitfall 3) and do exactly what `fit()` does in its forward pass — call
# the base with `training=True` on one epoch of batches — but without updating any weight (as with
# `learning_rate=0.0`): once with the BN layers trainable, once with `trainable=False`.

# %%
resized_train = resize_good(x_train.astype("float32"))
bn_layers = [layer for layer in lite0.layers if isinstance(layer, keras.layers.BatchNormalization)]
lite0_weights = lite0.get_weights()
bn_runs = {}
for name, bn_trainable in (("broken", True), ("fixed", False)):
    lite0.set_weights(lite0_weights)
    for layer in bn_layers:
        layer.trainable = bn_trainable
    means_before = [layer.moving_mean.numpy().copy() for layer in bn_layers]
    # What fit() does in its forward pass, without any weight update (= learning rate 0): one epoch of
    # batches of 16 through the base in training mode.
    for i in range(0, len(resized_train), 16):
        lite0(resized_train[i : i + 16], training=True)
    drift = max(
        float(np.abs(layer.moving_mean.numpy() - mean).max())
        for layer, mean in zip(bn_layers, means_before, strict=True)
    )
    bn_runs[name] = accuracy(lite0_head, lite0_features(x_test, good_size), y_test)
    print(f"{name}: BN trainable={bn_trainable}, largest change of a moving mean {drift:.4f}, "
          f"test accuracy {bn_runs[name]:.3f}")  # fmt: skip
    course.record(f"batchnorm_drift_{name}", drift)
lite0.set_weights(lite0_weights)
for layer in bn_layers:
    layer.trainable = False
print(f"before: test accuracy {acc_raw:.3f}")
course.record("batchnorm_accuracy_before", acc_raw)
record(
    "batchnorm_drift",
    "test accuracy after one epoch in training mode, no weight updates",
    bn_runs["broken"],
    bn_runs["fixed"],
)

# %% [markdown]
# With frozen BN nothing can change without weight updates, and the accuracy is exactly that of the
# model we started from. With trainable BN, one epoch on a handful of images moved the stored statistics,
# and the head — trained on features computed with the ImageNet statistics — now reads shifted features.
# Fix: after unfreezing, set every BatchNormalization layer's `trainable = False` (`tlcourse.models.unfreeze`
# does it by default).
#
# ## 6 · A learning rate that wipes out the pretrained features
#
# Fine-tuning (lesson 04) unfreezes the base *after* the head is trained and uses a learning rate 10–100×
# smaller than for the head. Use a head-sized or larger learning rate on the unfrozen base and a few steps
# overwrite what pretraining took hours to learn. For each seed, both runs start from the frozen-base model
# of section 1 with its trained head, unfreeze the whole base and train for a few epochs: at `1e-2` (broken)
# and `1e-4` (fixed). The unfrozen model of section 4 is restarted from those weights, so nothing is compiled
# again; only its learning rate changes.

# %%
lr_epochs = 3
lr_runs = {"head_only": [], "broken": [], "fixed": []}
for seed in budget.seeds:
    plain_model.set_weights(frozen_weights[seed])  # stage 1: the head trained on the frozen base
    lr_runs["head_only"].append(accuracy(plain_model, x_test, y_test))
    for name, learning_rate in (("broken", 1e-2), ("fixed", 1e-4)):
        tlcourse.reseed(seed)
        tlcourse.adapt.restart(unfrozen_model, frozen_weights[seed])
        unfrozen_model.optimizer.learning_rate.assign(learning_rate)
        unfrozen_model.fit(batches(x_train, y_train, seed=seed), epochs=lr_epochs, shuffle=False, verbose=0)
        lr_runs[name].append(accuracy(unfrozen_model, x_test, y_test))
for name, accuracies in lr_runs.items():
    print(f"{name:9s}: test accuracy {mean_std(accuracies)}  per seed {np.round(accuracies, 3).tolist()}")
record("learning_rate_too_high", "test accuracy after fine-tuning", np.mean(lr_runs["broken"]),
       np.mean(lr_runs["fixed"]))  # fmt: skip
course.record("learning_rate_runs", lr_runs)

# %% [markdown]
# The fixed runs keep (or slightly improve) the accuracy of the head-only models; the broken ones, with
# every weight of the base taking large steps on a handful of images, fall below it — the pretrained
# features are partly destroyed.
#
# ## 7 · A base from a distant domain: negative transfer
#
# Transfer works when the source resembles the target. ImageNet photos (colour, textures, objects a few
# hundred pixels across) are a distant source for 28-pixel grayscale clothes; a CNN trained on other
# Fashion-MNIST classes is a near one. When the source is too distant, transfer can be worse than a better
# matched source, or even than training a small network from scratch. We compare the two sources with the
# same linear head and the same labelled images, each at the images' own resolution (28 px; 32 px, the
# smallest Lite0 accepts). Pitfall 2 already computed the Lite0 numbers.

# %%
acc_near, _ = linear_probe(near_features["train"], near_features["test"])
size_ratio = lite0.count_params() / source_base.count_params()
print(f"distant source, ImageNet Lite0 ({lite0.count_params():,} parameters), 32 px: {size_accuracy[32]:.3f}")
print(f"near source, Fashion-MNIST 0–4 CNN ({source_base.count_params():,} parameters, {size_ratio:.0f}× fewer; "
      f"trained on {source_facts['train_size']:,} images), 28 px: {acc_near:.3f}")  # fmt: skip
print(
    f"distant source upsampled to {good_size} px (≈{(good_size / 32) ** 2:.0f}× the compute of 32 px): {acc_raw:.3f}"
)
record("distant_source", "test accuracy of a linear head, native resolution", size_accuracy[32], acc_near)
course.record("distant_source_upsampled", {"image_size": good_size, "accuracy": acc_raw, "near": acc_near,
                                           "size_ratio": size_ratio})  # fmt: skip

# %% [markdown]
# At the images' own resolution the near source — a far smaller network, trained on far fewer images of
# related things (the second line gives both numbers) — gives the better features. Read the third line,
# too: upsampled to a size closer to what ImageNet networks were trained at, the distant base recovers a lot
# (compare it with the near source's score yourself). A distant source is not hopeless, but it costs more compute to get its knowledge out, and
# you cannot know in advance whether it will win. Compare candidate sources, and a from-scratch baseline
# (lesson 01), on validation data before trusting transfer.
#
# ## 8 · Choosing on the test set
#
# You try several configurations (learning rates, heads, regularisation) and keep the best. If "best" means
# best *on the test set*, the test score of the winner is no longer an honest estimate: the winner was
# picked partly because it got lucky on those particular test images. The fix is a separate **validation**
# split for every choice, and the test set used **once**, at the end.
#
# To measure the bias we need a third, fresh set of images to tell the truth. We train 60 linear heads
# (near-source features; 6 regularisation strengths × 10 random subsets of the training images; with
# scikit-learn's `RidgeClassifier`, a linear classifier fitted in closed form, fast enough to train this
# many), then repeat 200 times: shuffle the held-out images into a "test" set of 60, a "validation" set of
# 60 and a fresh set of the rest.
#
# - broken: select the best head on the test set, report its test accuracy;
# - fixed: select on the validation set, report the test accuracy.
#
# The **optimism** of a protocol is its reported accuracy minus the winner's accuracy on the fresh images.

# %%
from sklearn.linear_model import RidgeClassifier

held_out_features = np.concatenate([near_features["val"], near_features["test"]])
held_out_labels = np.concatenate([y_val, y_test])
rng = np.random.default_rng(0)
heads = []
for alpha in (1000.0, 100.0, 10.0, 1.0, 0.1, 0.01):  # regularisation strength
    for _ in range(10):
        subset = rng.choice(len(y_train), size=len(y_train) * 3 // 5, replace=False)
        heads.append(RidgeClassifier(alpha=alpha).fit(near_features["train"][subset], y_train[subset]))
correct = np.stack([head.predict(held_out_features) == held_out_labels for head in heads])  # heads × images
optimism = {"broken": [], "fixed": []}
for _ in range(200):
    order = rng.permutation(len(held_out_labels))
    test_part, val_part, fresh_part = order[:60], order[60:120], order[120:]
    chosen_on_test = correct[:, test_part].mean(axis=1).argmax()
    chosen_on_val = correct[:, val_part].mean(axis=1).argmax()
    optimism["broken"].append(
        correct[chosen_on_test, test_part].mean() - correct[chosen_on_test, fresh_part].mean()
    )
    optimism["fixed"].append(
        correct[chosen_on_val, test_part].mean() - correct[chosen_on_val, fresh_part].mean()
    )
print(
    f"{len(heads)} heads, fresh-set accuracy from {correct.mean(axis=1).min():.3f} to {correct.mean(axis=1).max():.3f}"
)
record("selection_on_test", "optimism (reported − fresh accuracy), mean of 200 splits",
       np.mean(optimism["broken"]), np.mean(optimism["fixed"]), higher_is_better=False)  # fmt: skip

# %% [markdown]
# Selecting on the test set reports an accuracy higher than the winner really has (positive optimism); with
# a separate validation set the test accuracy is, on average, honest (optimism near zero). The more
# configurations you try and the smaller the test set, the larger the bias.
#
# ## 9 · Logits vs. probabilities
#
# The course's convention: models output **logits** and the loss is told so with `from_logits=True`. The
# seeds (like many tutorials) end the model with `activation="softmax"` (or `"sigmoid"`) and use the loss's
# default `from_logits=False` instead. Both conventions work on their own; mixing them does not:
#
# - **logits out, `from_logits=False`** (e.g. `loss="sparse_categorical_crossentropy"` on a model without
#   softmax): the loss treats raw scores — negative ones included — as probabilities. Nothing crashes; the
#   model learns something, but not what you asked for.
# - **softmax out, `from_logits=True`**: the loss would apply softmax a second time. Keras 3 on the
#   TensorFlow backend notices when the softmax is the model's last operation, warns, and uses the scores
#   before it — don't count on it: other backends or a softmax that is not the very last operation are not
#   rescued.

# %%
import warnings

logits_runs = {}
setups = {"broken": (None, False), "fixed": (None, True), "softmax_from_logits": ("softmax", True)}
for name, (activation, from_logits) in setups.items():
    tlcourse.reseed(0)
    head = keras.Sequential([keras.Input((near_features["train"].shape[1],)),
                             keras.layers.Dense(target.num_classes, activation=activation)])  # fmt: skip
    head.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits))  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = head.fit(batches(near_features["train"], y_train, seed=0), epochs=30, shuffle=False, verbose=0)
    warned = any("from_logits=True" in str(w.message) for w in caught)
    logits_runs[name] = {
        "loss": h.history["loss"][-1],
        "accuracy": accuracy(head, near_features["test"], y_test),
        "warned": warned,
    }
    print(f"{name:20s} activation={activation!s:8s} from_logits={from_logits!s:5s}  final training loss "
          f"{logits_runs[name]['loss']:.3f}, test accuracy {logits_runs[name]['accuracy']:.3f}"
          f"{'  (Keras warned)' if warned else ''}")  # fmt: skip
record("logits_vs_probabilities", "test accuracy", logits_runs["broken"]["accuracy"],
       logits_runs["fixed"]["accuracy"])  # fmt: skip
course.record("logits_runs", logits_runs)

# %% [markdown]
# The broken run's numbers above come from a loss that measured the wrong thing. The softmax +
# `from_logits=True` line shows Keras's rescue on this backend. One convention end to end: no activation on
# the last layer, `from_logits=True` in the loss, `softmax` only when you want to *read* probabilities.
#
# ## All nine at a glance

# %%
names = list(results)
fig, axes = plt.subplots(1, len(names), figsize=(2.0 * len(names), 3.2))
for ax, name in zip(axes, names, strict=True):
    r = results[name]
    ax.bar(["broken", "fixed"], [r["broken"], r["fixed"]], color=["tab:red", "tab:green"])
    ax.set_title(name.replace("_", "\n"), fontsize=8)
    ax.set_ylabel(("↑ " if r["higher_is_better"] else "↓ ") + r["metric"][:28], fontsize=6)
    ax.tick_params(labelsize=7)
fig.suptitle("Each pitfall: broken run vs. fixed run (arrow: which direction is better)")
fig.tight_layout()
plt.close(fig)
for name in names:
    r = results[name]
    better = r["fixed"] > r["broken"] if r["higher_is_better"] else r["fixed"] < r["broken"]
    print(f"{name:24s} {r['metric']:55s} broken {r['broken']:10.3f}  fixed {r['fixed']:10.3f}  "
          f"fixed better: {better}")  # fmt: skip
fig

# %% [markdown]
# In every panel the green bar is on the better side; the table above gives the numbers of this run.
#
# > ⚠️ **Pitfall — trusting one run.** With so few training images, accuracies move by several points from one
# > random subset to the next. Before concluding that one recipe beats another, repeat over seeds (lesson 01)
# > and look at the spread.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/05_pitfalls.ipynb): four broken set-ups to diagnose and fix.
#
# ## Summary
#
# | pitfall | symptom | fix |
# |---|---|---|
# | overfitting small data | validation loss rises while training loss falls | augmentation layers, dropout, early stopping (restore best weights) |
# | wrong input size | an error, or silently poorer features | resize to at least the base's minimum, ideally near its training size |
# | preprocessing mismatch | low accuracy, no error | preprocessing inside the model, raw [0, 255] in |
# | forgetting to freeze | huge trainable-parameter count; the base forgets its source task | `base.trainable = False` before stage 1 |
# | BN statistics drift | accuracy changes even without weight updates | BN layers `trainable = False` after unfreezing |
# | learning rate too high | accuracy falls when fine-tuning starts | 10–100× smaller rate for stage 2, warm-up |
# | distant source | transfer no better than scratch | a related source, or compare with a scratch baseline |
# | choosing on the test set | test score too good to be true | validation split for choices, test once |
# | logits vs. probabilities | a loss that measures the wrong thing (silently) | no softmax in the model, `from_logits=True` |
#
# ## Further reading
#
# - Keras guide *Transfer learning & fine-tuning*: https://keras.io/guides/transfer_learning/
# - Keras preprocessing layers (augmentation): https://keras.io/api/layers/preprocessing_layers/
# - Rosenstein, Marx, Kaelbling & Dietterich, *To transfer or not to transfer*, NIPS 2005 workshop on
#   inductive transfer.
# - Wang, Dai, Póczos & Carbonell, *Characterizing and Avoiding Negative Transfer*, CVPR 2019.
#   https://arxiv.org/abs/1811.09751
# - Cawley & Talbot, *On Over-fitting in Model Selection and Subsequent Selection Bias in Performance
#   Evaluation*, JMLR 2010. https://jmlr.org/papers/v11/cawley10a.html
# - Srivastava et al., *Dropout: A Simple Way to Prevent Neural Networks from Overfitting*, JMLR 2014.
#   https://jmlr.org/papers/v15/srivastava14a.html
#
# ## Questions
#
# 1. Which curve tells you that a model overfits, and what three remedies did this lesson use?
# 2. A base is fed images scaled to [0, 1] although it expects [0, 255]. Why is there no error, and how do
#    you notice?
# 3. Why did the BatchNorm model change although no weight was updated by a gradient?
# 4. You tried 20 configurations and report the best one's test accuracy. Why is that number too
#    optimistic, and what should you have done?
# 5. A model ends with `Dense(5)` (no activation) and is compiled with
#    `loss="sparse_categorical_crossentropy"`. What goes wrong, and what are the two ways to fix it?
