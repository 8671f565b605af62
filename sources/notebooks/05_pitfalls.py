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
# Every pitfall is kept small (tiny subsets, few epochs) so that the whole notebook runs in about a minute
# on a laptop; the differences are still large enough to measure, and the course's tests check each one.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
LABELS_PER_CLASS = 10  # labelled training images per class: the small-data regime where pitfalls bite

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

import tlcourse

course = tlcourse.setup("05", profile=PROFILE)
budget = course.budget
results = {}  # pitfall → {"metric", "broken", "fixed"}: one recorded pair per pitfall


def record(pitfall, metric, broken, fixed, higher_is_better=True):
    results[pitfall] = {"metric": metric, "broken": float(broken), "fixed": float(fixed),
                        "higher_is_better": higher_is_better}  # fmt: skip
    course.record("pitfalls", results)
    print(f"{pitfall}: {metric} broken {broken:.3f} → fixed {fixed:.3f}")


# %% [markdown]
# ## The set-up
#
# The target task is Fashion-MNIST's classes 5–9 (sandal, shirt, sneaker, bag, ankle boot) with only
# `LABELS_PER_CLASS` labelled training images per class. Two pretrained bases are at hand:
#
# - a **near source**: the small CNN trained on Fashion-MNIST's *other* classes 0–4 (t-shirt, trouser,
#   pullover, dress, coat) — `tlcourse.models.source_model()`, the base of lessons 01–03;
# - a **distant source**: EfficientNet-Lite0 trained on ImageNet photos.

# %%
target = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=LABELS_PER_CLASS)
x_train, y_train = target.arrays("train")
x_val, y_val = target.arrays("val")
x_test, y_test = target.arrays("test")
print(target)
source = tlcourse.models.source_model()
source_base = tlcourse.models.headless(source)  # the source CNN without its old head: 128 features
print(f"near source: {source.name}, {source.count_params():,} parameters, "
      f"{tlcourse.models.source_facts(source)['test_accuracy']:.0%} on its own classes")  # fmt: skip
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def accuracy(model, x, y):
    return float(np.mean(model.predict(x, verbose=0, batch_size=256).argmax(axis=1) == y))


# %% [markdown]
# ## 1 · Overfitting a small dataset
#
# With 50 training images, a network can memorise them all: the training loss keeps falling while the
# validation loss turns around and climbs. The symptom is in the **validation loss curve**. The fixes are
# the standard regularisers: **dropout**, **early stopping** on the validation loss with the best weights
# restored, and **data augmentation** (random flips, rotations and zooms as Keras preprocessing layers —
# not `ImageDataGenerator`, which is deprecated, and never before a `.cache()`). To keep this fast, both
# runs train an MLP head (256 hidden units: plenty of room to memorise) on the near source's cached
# features; augmentation needs the images, so it is shown after the curves.

# %%
near_features = {split: source_base.predict(x, verbose=0)
                 for split, x in (("train", x_train), ("val", x_val), ("test", x_test))}  # fmt: skip
overfit_runs = {}
for name in ("broken", "fixed"):
    keras.utils.set_random_seed(0)
    mlp, history = tlcourse.train.fit_head(
        near_features["train"],
        y_train,
        val=(near_features["val"], y_val),
        head="mlp",
        hidden=256,
        dropout=0.0 if name == "broken" else 0.5,
        early_stopping=None if name == "broken" else 10,
        epochs=150,
        learning_rate=1e-2,
        run_dir=False,
        verbose=0,
    )
    mlp.compile(loss=loss)
    overfit_runs[name] = {"history": history.history,
                          "val_loss": float(np.ravel(mlp.evaluate(near_features["val"], y_val, verbose=0))[0])}  # fmt: skip

fig, ax = plt.subplots(figsize=(7, 3))
for name, color in (("broken", "tab:red"), ("fixed", "tab:green")):
    h = overfit_runs[name]["history"]
    ax.plot(h["loss"], color=color, linestyle=":", label=f"{name}: training loss")
    ax.plot(h["val_loss"], color=color, label=f"{name}: validation loss")
ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="No regularisation vs. dropout + early stopping")
ax.legend(fontsize=8)
fig.tight_layout()
plt.close(fig)
record("overfitting", "validation loss of the final model", overfit_runs["broken"]["val_loss"],
       overfit_runs["fixed"]["val_loss"], higher_is_better=False)  # fmt: skip
fig

# %% [markdown]
# The red dotted line (training loss without regularisation) dives towards zero while the red solid line
# (validation loss) rises after its minimum — the model becomes confidently wrong on new images. The fixed
# run drops half of the hidden units at random while training and stops when the validation loss has not
# improved for 10 epochs, keeping the best weights (the green lines end early).
#
# Augmentation attacks the cause — too few distinct images — by showing the network new random variants of
# each image at every epoch. In Keras it is a few layers, active only when called with `training=True`
# (`tlcourse.data.augmentation` builds them; `DataBundle.batches("train", augment=...)` applies them after
# the cache):

# %%
augment = tlcourse.data.augmentation(rotation=0.05, zoom=0.1, contrast=0.1, seed=0)
tlcourse.viz.augmentations(augment, x_train[0], n=6, seed=0)

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

# %% [markdown]
# The fix is to resize the images (`tlcourse.data.load(..., image_size=...)` or a `keras.layers.Resizing`
# layer in the model). But *how much* matters too, and this part is silent: nothing fails if the images are
# just above the minimum, the features are simply poorer. We build the Lite0 base once for any input size
# and compare a linear head on its features at 32 px (the minimum) and at the size this profile uses.

# %%
lite0 = tlcourse.models.backbone("efficientnet_lite0", input_shape=(None, None, 3))
good_size = min(budget.image_size, 64) if course.offline else budget.image_size
resize = {size: keras.layers.Resizing(size, size) for size in (32, good_size)}


def lite0_features(images, size, scale=1.0):
    resized = np.concatenate([resize[size](images[i : i + 256]).numpy() for i in range(0, len(images), 256)])
    return lite0.predict(resized * scale, batch_size=64, verbose=0)


def linear_probe(train_features, test_features, epochs=100):
    head, _ = tlcourse.train.fit_head(train_features, y_train, num_classes=target.num_classes, epochs=epochs,
                                      learning_rate=1e-2, run_dir=False, verbose=0)  # fmt: skip
    return accuracy(head, test_features, y_test), head


lite0_train = {size: lite0_features(x_train, size) for size in resize}
lite0_test = {size: lite0_features(x_test, size) for size in resize}
size_accuracy = {size: linear_probe(lite0_train[size], lite0_test[size])[0] for size in resize}
record(
    "wrong_input_size", f"test accuracy, 32 px vs {good_size} px", size_accuracy[32], size_accuracy[good_size]
)
course.record("wrong_size_error", type(wrong_size_error).__name__ if wrong_size_error else None)

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
try:
    tlcourse.models.check_images(lite0, resize[good_size](x_train[:8]).numpy() / 255)
except tlcourse.errors.DataError as error:
    print(f"{type(error).__name__}: {error}")

# %% [markdown]
# Plain Keras would not complain. The broken run feeds [0, 1] images to the same base, the fixed run raw
# [0, 255] pixels; both train the same linear head:

# %%
scaled_train, scaled_test = (lite0_features(x, good_size, scale=1 / 255) for x in (x_train, x_test))
acc_scaled, _ = linear_probe(scaled_train, scaled_test)
acc_raw, lite0_head = linear_probe(lite0_train[good_size], lite0_test[good_size])
record("preprocessing_mismatch", "test accuracy", acc_scaled, acc_raw)

# %% [markdown]
# The features of "black" images carry far less information, and the accuracy shows it. The bug is silent
# — no error, no warning — which is why the course keeps the preprocessing *inside* the model.
#
# ## 4 · Forgetting to freeze the base
#
# Forget `base.trainable = False` and `fit()` trains every weight of the base, with a freshly initialised
# head sending large random gradients into it, on 50 images, at the learning rate meant for a new head
# (1e-2). The first symptom is the count of trainable parameters; the second, often, a lower accuracy.


# %%
def source_classifier(trainable_base, seed=0):
    keras.utils.set_random_seed(seed)
    base = tlcourse.models.headless(tlcourse.models.source_model())
    base.trainable = trainable_base
    inputs = keras.Input(x_train.shape[1:])
    logits = keras.layers.Dense(target.num_classes, name="logits")(base(inputs, training=False))
    return keras.Model(inputs, logits, name="source_classifier")


def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


freeze_epochs = 30
freeze_runs, freeze_models = {}, {}
for name, trainable_base in (("broken", True), ("fixed", False)):
    net = source_classifier(trainable_base)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss=loss, metrics=["accuracy"])
    net.fit(x_train, y_train, epochs=freeze_epochs, batch_size=16, verbose=0)
    freeze_models[name] = net
    freeze_runs[name] = {"trainable": count(net.trainable_weights), "accuracy": accuracy(net, x_test, y_test)}
    print(f"{name}: {freeze_runs[name]['trainable']:,} trainable parameters, "
          f"test accuracy {freeze_runs[name]['accuracy']:.3f}")  # fmt: skip
record("forgetting_to_freeze", "trainable parameters", freeze_runs["broken"]["trainable"],
       freeze_runs["fixed"]["trainable"], higher_is_better=False)  # fmt: skip
course.record("forgetting_to_freeze_accuracy", {k: v["accuracy"] for k, v in freeze_runs.items()})

# %% [markdown]
# With the base frozen, only the head's few hundred parameters learn; without, the whole CNN does, on 50
# images, starting from a random head. Compare the two accuracies printed above. The parameter count is the
# symptom you can check before training (`tlcourse.models.trainable_report(model)` shows it per block);
# the accuracy cost depends on the base, the learning rate and the data, and pitfall 6 shows how bad it can
# get.
#
# ## 5 · BatchNorm statistics drifting
#
# Lesson 04 measured this in depth. The short version: a BatchNormalization layer that is trainable runs in
# training mode during `fit()` and rewrites its stored mean and variance from the new data — *even when the
# learning rate is zero*, because those statistics are not learned by gradients. We take the Lite0 model
# with its trained head (the fixed model of pitfall 3) and do exactly what `fit()` does in its forward
# pass — call the model with `training=True` on one epoch of batches — but without updating any weight
# (as with `learning_rate=0.0`): once with the BN layers trainable, once with `trainable=False`.

# %%
resized_train = resize[good_size](x_train).numpy()
resized_test = np.concatenate(
    [resize[good_size](x_test[i : i + 256]).numpy() for i in range(0, len(x_test), 256)]
)
bn_layers = [layer for layer in lite0.layers if isinstance(layer, keras.layers.BatchNormalization)]
lite0_weights = lite0.get_weights()
inputs = keras.Input((good_size, good_size, 3))
bn_model = keras.Model(inputs, lite0_head(lite0(inputs, training=False)))
bn_runs = {}
for name, bn_trainable in (("broken", True), ("fixed", False)):
    lite0.set_weights(lite0_weights)
    for layer in bn_layers:
        layer.trainable = bn_trainable
    means_before = [layer.moving_mean.numpy().copy() for layer in bn_layers]
    # What fit() does in its forward pass, without any weight update (= learning rate 0): one epoch of
    # batches of 16 through the model in training mode.
    for i in range(0, len(resized_train), 16):
        bn_model(resized_train[i : i + 16], training=True)
    drift = max(
        float(np.abs(layer.moving_mean.numpy() - mean).max())
        for layer, mean in zip(bn_layers, means_before, strict=True)
    )
    bn_runs[name] = accuracy(bn_model, resized_test, y_test)
    print(f"{name}: BN trainable={bn_trainable}, largest change of a moving mean {drift:.4f}, "
          f"test accuracy {bn_runs[name]:.3f}")  # fmt: skip
    course.record(f"batchnorm_drift_{name}", drift)
lite0.set_weights(lite0_weights)
for layer in bn_layers:
    layer.trainable = False
record(
    "batchnorm_drift",
    "test accuracy after one epoch in training mode, no weight updates",
    bn_runs["broken"],
    bn_runs["fixed"],
)

# %% [markdown]
# With frozen BN nothing can change without weight updates, and the accuracy is exactly that of the
# model we started from. With trainable BN, one epoch on 50 images moved the stored statistics, and the head — trained on features computed with the ImageNet statistics — now reads shifted
# features. Fix: after unfreezing, set every BatchNormalization layer's `trainable = False`
# (`tlcourse.models.unfreeze` does it by default).
#
# ## 6 · A learning rate that wipes out the pretrained features
#
# Fine-tuning (lesson 04) unfreezes the base *after* the head is trained and uses a learning rate 10–100×
# smaller than for the head. Use a head-sized or larger learning rate on the unfrozen base and a few steps
# overwrite what pretraining took hours to learn. Both runs start from the same frozen-base model with a
# trained head (pitfall 4's fixed run), unfreeze the whole source CNN and train for a few epochs: at `1e-2` (broken) and `1e-4`
# (fixed).

# %%
lr_epochs = 5
start = freeze_models["fixed"]  # stage 1, the head on the frozen base: pitfall 4's fixed run
start_weights = start.get_weights()
acc_head_only = accuracy(start, x_test, y_test)
lr_runs = {}
for name, learning_rate in (("broken", 1e-2), ("fixed", 1e-4)):
    net = source_classifier(trainable_base=True)
    net.set_weights(start_weights)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss)
    net.fit(x_train, y_train, epochs=lr_epochs, batch_size=16, verbose=0)
    lr_runs[name] = accuracy(net, x_test, y_test)
print(f"after stage 1 (head only): {acc_head_only:.3f}")
record("learning_rate_too_high", "test accuracy after fine-tuning", lr_runs["broken"], lr_runs["fixed"])

# %% [markdown]
# The fixed run keeps (or slightly improves) the accuracy of the head-only model; the broken one, with
# every weight of the base taking large steps on 50 images, falls below it — the pretrained features are
# partly destroyed.
#
# ## 7 · A base from a distant domain: negative transfer
#
# Transfer works when the source resembles the target. ImageNet photos (colour, textures, objects a few
# hundred pixels across) are a distant source for 28-pixel grayscale clothes; a CNN trained on other
# Fashion-MNIST classes is a near one. When the source is too distant, transfer can be worse than a better
# matched source, or even than training a small network from scratch (this course measured ImageNet features
# + a linear head losing to a small scratch CNN on 8×8 handwritten digits). We compare the two sources with
# the same linear head and the same 50 labelled images, each at the images' own resolution (28 px; 32 px,
# the smallest Lite0 accepts). Pitfall 2 already computed the Lite0 numbers.

# %%
acc_near, _ = linear_probe(near_features["train"], near_features["test"])
print(f"distant source, ImageNet Lite0 ({lite0.count_params():,} parameters), 32 px: {size_accuracy[32]:.3f}")
print(
    f"near source, Fashion-MNIST 0–4 CNN ({source_base.count_params():,} parameters), 28 px: {acc_near:.3f}"
)
print(
    f"distant source upsampled to {good_size} px (≈{(good_size / 32) ** 2:.0f}× the compute of 32 px): {acc_raw:.3f}"
)
record("distant_source", "test accuracy of a linear head, native resolution", size_accuracy[32], acc_near)
course.record("distant_source_upsampled", {"image_size": good_size, "accuracy": acc_raw})

# %% [markdown]
# At the images' own resolution the near source — a network 30× smaller, trained on 30,000 images of
# related things — gives the better features. Read the third line, too: upsampled to a size closer to what
# ImageNet networks were trained at, the distant base recovers a lot (compare it with the near source's
# score yourself). A distant source is not hopeless, but it costs more compute to get its knowledge out, and
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
# To measure the bias we need a third, fresh set of images to tell the truth. We train 20 linear heads
# (near-source features; 4 regularisation strengths × 5 random subsets of the training images; with
# scikit-learn's `LogisticRegression`, which is fast enough to repeat this many times), then repeat 30
# times: shuffle the held-out images into a "test" set of 60 and a "validation" set of 60 and a fresh set
# of the rest.
#
# - broken: select the best head on the test set, report its test accuracy;
# - fixed: select on the validation set, report the test accuracy.
#
# The **optimism** of a protocol is its reported accuracy minus the winner's accuracy on the fresh images.

# %%
from sklearn.linear_model import LogisticRegression

held_out_features = np.concatenate([source_base.predict(x, verbose=0) for x in (x_val, x_test)])
held_out_labels = np.concatenate([y_val, y_test])
rng = np.random.default_rng(0)
heads = []
for c in (0.01, 0.1, 1.0, 10.0):
    for _ in range(5):
        subset = rng.choice(len(y_train), size=len(y_train) * 3 // 5, replace=False)
        heads.append(
            LogisticRegression(C=c, max_iter=2000).fit(near_features["train"][subset], y_train[subset])
        )
correct = np.stack([head.predict(held_out_features) == held_out_labels for head in heads])  # heads × images
optimism = {"broken": [], "fixed": []}
for _ in range(30):
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
record("selection_on_test", "optimism (reported − fresh accuracy), mean of 30 splits",
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
    keras.utils.set_random_seed(0)
    head = keras.Sequential([keras.Input((near_features["train"].shape[1],)),
                             keras.layers.Dense(target.num_classes, activation=activation)])  # fmt: skip
    head.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits))  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = head.fit(near_features["train"], y_train, epochs=30, batch_size=16, verbose=0)
    warned = any("from_logits=True" in str(w.message) for w in caught)
    logits_runs[name] = {
        "loss": h.history["loss"][-1],
        "accuracy": accuracy(head, near_features["test"], y_test),
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
    if r["metric"] == "trainable parameters":
        ax.set_yscale("log")
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
# > ⚠️ **Pitfall — trusting one run.** With 50 training images, accuracies move by several points from one
# > random subset to the next. Before concluding that one recipe beats another, repeat over seeds (lesson 01)
# > and look at the spread.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/05_pitfalls.ipynb): three broken set-ups to diagnose and fix.
#
# ## Summary
#
# | pitfall | symptom | fix |
# |---|---|---|
# | overfitting small data | validation loss rises while training loss falls | augmentation layers, dropout, early stopping (restore best weights) |
# | wrong input size | an error, or silently poorer features | resize to at least the base's minimum, ideally near its training size |
# | preprocessing mismatch | low accuracy, no error | preprocessing inside the model, raw [0, 255] in |
# | forgetting to freeze | huge trainable-parameter count | `base.trainable = False` before stage 1 |
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
