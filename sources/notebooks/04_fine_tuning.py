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
# # 04 · Fine-tuning
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/04_fine_tuning.ipynb)
#
# **Time:** about 40 minutes (the training runs take 1–10 minutes depending on your machine).
#
# **You will learn:**
# - the two-stage recipe: train the new head first, then unfreeze the top layers of the base at a small
#   learning rate, with a fresh optimizer and a recompile — and why each of those matters;
# - why BatchNormalization must stay in inference mode while you fine-tune, and why in Keras 3
#   `training=False` alone does not guarantee it (set the BN layers' `trainable = False`);
# - how to measure BatchNorm statistics drifting when you get it wrong;
# - a warm-up + cosine schedule with Keras's own `CosineDecay`;
# - to train stage 2 fast by computing the frozen bottom of the base once (lesson 03's cache, one level down);
# - progressive unfreezing and discriminative learning rates, run against the one-stage recipe over three seeds;
# - how to read training curves across the stage boundary, and what fine-tuning does to the feature maps.
#
# **Prerequisites:** lesson 03 (feature extraction, cached features, linear heads).

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
IMAGE_SIZE = None  # image side in pixels; None: the budget's (offline: at most 64, Fashion-MNIST is 28 px)
TOP_LAYERS = 4  # how many layers with weights at the top of the base stage 2 unfreezes
FINE_TUNE_LR = 1e-4  # peak learning rate of stage 2 (stage 1, the head, uses 1e-2 on cached features)

# %%
import fnmatch

import tlcourse

course = tlcourse.setup("04", profile=PROFILE)  # first: it quiets TensorFlow's start-up logs

import keras
import matplotlib.pyplot as plt
import numpy as np

budget = course.budget

# %% [markdown]
# ## 1 · Feature extraction is not the end of the story
#
# In lesson 03 the pretrained base stayed frozen and only a new head learned. The base's features were
# made for ImageNet, though, and the top layers — the most task-specific ones — may not fit your task
# perfectly. **Fine-tuning** lets those top layers learn a little too. It is done in two stages:
#
# 1. **Stage 1 — the head.** Freeze the whole base and train the new head until it is good. A freshly
#    initialised head produces large, random errors; if the base were trainable at that moment, those
#    large gradients would flow into it and overwrite pretrained features before the head has learned
#    anything useful.
# 2. **Stage 2 — the top of the base.** Unfreeze the top N layers (the early layers — edges, textures — are
#    general and stay frozen) and keep training everything at a **small learning rate** (10–100× smaller),
#    so the pretrained weights move a little, not a lot.
#
# Between the stages you **make a fresh optimizer and call `compile()` again**. Two reasons:
# `compile()` (more precisely, the training step Keras builds on the first `fit` after it) fixes *which*
# variables the optimizer updates; changing `trainable` afterwards has no effect until you recompile. And an
# optimizer carries state — Adam keeps running averages of each weight's gradients, sized for the variables
# it has seen, and its own learning-rate schedule — that belongs to stage 1.
#
# Online this lesson fine-tunes an ImageNet base on `tf_flowers` (3,670 photos of five kinds of flower).
# Offline the target is Fashion-MNIST's classes 5–9 (sandal, shirt, sneaker, bag, ankle boot) and the base is
# EfficientNet-Lite0 with its real ImageNet weights. We need a base that *has* BatchNorm layers, which the
# small Fashion-MNIST source CNN of lessons 01–03 does not.

# %%
image_size = IMAGE_SIZE or (min(budget.image_size, 64) if course.offline else budget.image_size)
if course.offline:
    data = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], image_size=image_size)
else:
    data = tlcourse.data.load("tf_flowers", image_size=image_size)
print(data)
base = tlcourse.models.backbone("efficientnet_lite0", input_shape=(image_size, image_size, 3))
bn_layers = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
print(f"base: {base.name}, {base.count_params():,} parameters, {len(base.layers)} layers, "
      f"{len(bn_layers)} of them BatchNormalization")  # fmt: skip

# %% [markdown]
# ## 2 · Stage 1: train the head (feature extraction)
#
# Stage 1 is lesson 03's recipe: run the frozen base once over the images, cache the feature vectors, and
# train a linear head on them — epochs cost almost nothing. We stop it early, when the validation loss has
# not improved for 3 epochs (best weights restored): a head trained until it has memorised the training set
# leaves stage 2 nothing to learn from those images but noise. Then we put that trained head on the
# base, as one Keras model that takes images: `tlcourse.models.classifier(base, k)` builds
# `base → dropout → Dense(k)` with logits out, and both heads name their last layer `logits`, so the weights
# copy over.

# %%
features = {split: tlcourse.train.extract_features(base, data, split=split, verbose=0)
            for split in ("train", "val", "test")}  # fmt: skip
head, head_history = tlcourse.train.fit_head(
    features["train"],
    val=features["val"],
    epochs=20 * budget.epochs,
    learning_rate=1e-2,
    early_stopping=3,
    verbose=0,
)
model = tlcourse.models.classifier(base, data.num_classes)
model.get_layer("logits").set_weights(head.get_layer("logits").get_weights())
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
test_images, test_labels = data.arrays("test")


def accuracy(classifier, inputs, labels, batch=256):
    """Test accuracy, calling the model in inference mode on a few hundred inputs at a time."""
    logits = [keras.ops.convert_to_numpy(classifier(inputs[i : i + batch], training=False))
              for i in range(0, len(inputs), batch)]  # fmt: skip
    return float(np.mean(np.concatenate(logits).argmax(-1) == labels))


acc_feature_extraction = accuracy(head, features["test"].features, test_labels)
print(
    f"stage 1 ({head_history.epochs} epochs on cached features): test accuracy {acc_feature_extraction:.3f}"
)
course.record("acc_feature_extraction", acc_feature_extraction)
stage1_weights = model.get_weights()  # every weight, BatchNorm statistics included

# %% [markdown]
# That is our **feature-extraction** score: the number fine-tuning has to beat.
#
# ## 3 · BatchNorm: the layer with two modes
#
# A BatchNormalization layer normalises each channel with a mean and a variance. In **training mode** it
# uses the statistics of the current batch and updates its stored `moving_mean` / `moving_variance` a little
# towards them at every step; in **inference mode** it uses the stored statistics and changes nothing.
# The stored statistics of a pretrained base describe ImageNet activations, and the layers above were
# trained with exactly those. While fine-tuning on a small dataset, we want BN in inference mode: small
# batches of sandals and shirts give noisy statistics, and rewriting the stored ones shifts the input of
# every later layer — the network you carefully pretrained is no longer the one you are fine-tuning.
#
# Keras 3 decides the mode like this: a BN layer whose `trainable` is `False` **always** runs in inference
# mode. A trainable one follows the `training` flag — and `fit()` calls the model with `training=True`,
# which overrides a `training=False` written when the model was built for a base nested inside it
# (the Keras guide's wording misled many readers here; see keras-team/keras#20285). Let's see it on a tiny
# model in plain Keras: a "base" with a BN layer, nested in a model with `base(inputs, training=False)`, the
# way every transfer-learning tutorial writes it.


# %%
def tiny_model():
    tlcourse.reseed(0)
    tiny_base = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4), keras.layers.BatchNormalization(name="bn")],
        name="tiny_base",
    )
    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(2)(tiny_base(inputs, training=False))  # "inference mode", we hope
    return keras.Model(inputs, outputs), tiny_base.get_layer("bn")


x_toy = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 8)).astype("float32")
y_toy = np.arange(64) % 2
toy_change = {}
for bn_trainable in (True, False):
    toy, toy_bn = tiny_model()
    toy_bn.trainable = bn_trainable  # the base itself is trainable: we are fine-tuning it
    toy.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss=loss)
    before = toy_bn.moving_mean.numpy().copy()
    toy.fit(x_toy, y_toy, epochs=1, batch_size=16, verbose=0)
    toy_change[bn_trainable] = float(np.abs(toy_bn.moving_mean.numpy() - before).max())
    print(
        f"bn.trainable={bn_trainable!s:5}: moving_mean changed by up to {toy_change[bn_trainable]:.4f} during fit()"
    )
course.record("toy_bn_change", {"trainable": toy_change[True], "frozen": toy_change[False]})

# %% [markdown]
# With `training=False` in the model *and* a trainable BN layer, `fit()` still updated the moving mean.
# Only `bn.trainable = False` kept it fixed. So the rule for fine-tuning in Keras 3 is: **unfreeze the
# layers you want, then set every BatchNormalization layer's `trainable` back to `False`** (it also freezes
# BN's `gamma` and `beta`, which is what the Keras guide recommends).
#
# > ⚠️ **Pitfall — many tutorials skip this.** Code that does `base.trainable = True` and fine-tunes with
# > the same `base(inputs, training=False)` model (the seeds of this course among them) silently trains the
# > BN statistics too. Sometimes it works; on small datasets it often costs accuracy (section 6 measures it).

# %% [markdown]
# ## 4 · Stage 2 by hand: unfreeze the top N layers, keep BN frozen
#
# First in plain Keras: make the base trainable, re-freeze everything below the top `TOP_LAYERS` layers
# with weights, and re-freeze every BN layer. Then count what will learn.


# %%
def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


with_weights = [
    layer for layer in base.layers if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
]
top_names = {layer.name for layer in with_weights[-TOP_LAYERS:]}
base.trainable = True
for layer in base.layers:
    layer.trainable = layer.name in top_names
for layer in bn_layers:
    layer.trainable = False
print(f"top {TOP_LAYERS} layers: {', '.join(layer.name for layer in with_weights[-TOP_LAYERS:])}")
print(f"trainable: {count(model.trainable_weights):,} of {model.count_params():,} parameters "
      f"(head: {count(model.get_layer('logits').trainable_weights):,})")  # fmt: skip

# %% [markdown]
# `tlcourse.models.unfreeze` does the same in one line (`keep_batchnorm_frozen=True` is its default), and
# `tlcourse.models.trainable_report` prints what is trainable block by block — the state column says
# "BN frozen" where a block trains with its BatchNorm in inference mode. The same count, the helper's way:

# %%
base.trainable = False
tlcourse.models.unfreeze(model, top=TOP_LAYERS, keep_batchnorm_frozen=True)
print(f"trainable: {count(model.trainable_weights):,} parameters")
report = tlcourse.models.trainable_report(model)
report.rows = report.rows[-4:]  # the top blocks and the head; the blocks above are all frozen
report

# %% [markdown]
# ## 5 · A learning-rate schedule: warm-up, then cosine decay
#
# Even at a small learning rate, the first steps of stage 2 are the riskiest: Adam's running averages start
# empty, so its first updates are relatively large. A **warm-up** ramps the learning rate linearly from 0
# to its peak over the first steps; a **cosine decay** then lowers it smoothly to 0 by the end, so the last
# epochs only polish. Keras has both in one schedule, `keras.optimizers.schedules.CosineDecay`: it warms up
# from `initial_learning_rate` to `warmup_target` over `warmup_steps`, then decays over `decay_steps` —
# which count the steps *after* the warm-up. Pass it as `learning_rate=` to any optimizer. Here it is for
# stage 2, with half an epoch of warm-up:

# %%
fine_tune_epochs = budget.fine_tune_epochs
steps_per_epoch = int(np.ceil(data.sizes["train"] / budget.batch_size))
total_steps = fine_tune_epochs * steps_per_epoch
warmup_steps = round(0.5 * steps_per_epoch)  # as Stage(warmup=0.5) counts it
schedule = keras.optimizers.schedules.CosineDecay(
    0.0, decay_steps=total_steps - warmup_steps, warmup_target=FINE_TUNE_LR, warmup_steps=warmup_steps
)
steps = np.arange(total_steps + 1)
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.plot(steps, [float(schedule(s)) for s in steps])
for epoch in range(1, fine_tune_epochs):
    ax.axvline(epoch * steps_per_epoch, color="grey", linestyle=":")
ax.set(xlabel="training step of stage 2", ylabel="learning rate", title="Warm-up + cosine decay")
fig.tight_layout()
plt.close(fig)
fig

# %% [markdown]
# The rate climbs to its peak in the first half epoch and falls to zero at the last step (dotted lines:
# epoch boundaries). `tlcourse.train.Stage(..., warmup=0.5, schedule="cosine")` describes the same stage,
# and `tlcourse.train.fine_tune` builds exactly this `CosineDecay` for it:

# %%
stage2 = tlcourse.train.Stage(
    fine_tune_epochs, FINE_TUNE_LR, unfreeze=TOP_LAYERS, warmup=0.5, schedule="cosine"
)
same_schedule = stage2.learning_rate_for(steps_per_epoch).get_config() == schedule.get_config()
print(f"{stage2}\nthe same schedule as ours: {same_schedule}")
course.record("stage_schedule_is_keras_cosine_decay", same_schedule)

# %% [markdown]
# ## 6 · Stage 2, fast: compute the frozen bottom once
#
# Stage 2 trains only the top `TOP_LAYERS` layers and the head. Everything below them is frozen, its
# BatchNorm layers in inference mode, and we use no random augmentation: the bottom of the base computes
# *exactly the same* activations for an image in every epoch. That is lesson 03's caching argument one
# level down: cut the base where the trainable part begins, run the bottom once, and fine-tune a small model
# — the top of the base plus the head — on its outputs. Keras builds a model from any tensor of the base's
# graph; the cut must be a single tensor that everything above depends on (inside a residual block there are
# two), so we take the nearest one below the lowest unfrozen layer.
#
# The small model is made of the *same layer objects* as `model`: training it fine-tunes `model`. We check
# that both give the same logits. (With augmentation, or to fine-tune the whole base, there is nothing to
# cache: train `model` on the images, e.g. `fine_tune(model, data, stages=..., augment=...)`.)

# %%
lowest = base.layers.index(with_weights[-TOP_LAYERS])
for cut in reversed(base.layers[:lowest]):
    try:
        top = keras.Model(cut.output, base.output, name="top_of_base")
        break
    except ValueError:  # a tensor inside a residual block: the skip connection also needs an earlier one
        continue
bottom = keras.Model(base.inputs, cut.output, name="bottom_of_base")
arrays = {split: data.arrays(split) for split in ("train", "val", "test")}
cached = {
    split: bottom.predict(x, batch_size=budget.batch_size, verbose=0) for split, (x, _) in arrays.items()
}
labels = {split: y for split, (_, y) in arrays.items()}
inputs = keras.Input(cached["train"].shape[1:])
fast = keras.Model(
    inputs, model.get_layer("logits")(model.get_layer("head_dropout")(top(inputs))), name="fast"
)
probe = test_images[: budget.batch_size]
split_difference = float(
    np.abs(keras.ops.convert_to_numpy(model(probe) - fast(cached["test"][: len(probe)]))).max()
)
print(f"cut after {cut.name!r}: the bottom gives {cached['train'].shape[1:]} per image; "
      f"the top has {len(top.layers)} layers")  # fmt: skip
print(f"largest difference between the logits of model and of the cached path: {split_difference:.1e}")

# %% [markdown]
# Before training, we keep the feature maps of one test image at two depths of the base (an early layer
# that stays frozen, and the top conv layer, which is fine-tuned) to compare them afterwards. Then stage 2
# with `tlcourse.train.fine_tune` on the cached bottom outputs: for each `Stage` it sets what is trainable
# (BatchNorm always frozen), makes a fresh optimizer with the stage's schedule, recompiles and fits. Stage 1
# is already done, so we pass just the second stage.

# %%
probe_image = test_images[0]
early_layer, top_layer = with_weights[0].name, with_weights[-1].name
maps_before = tlcourse.viz.feature_maps(base, probe_image, layers=[early_layer, top_layer], max_channels=8)
stats_before = [(bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()) for bn in bn_layers]
train_cached, val_cached = (cached["train"], labels["train"]), (cached["val"], labels["val"])
tlcourse.reseed(0)
ft_history = tlcourse.train.fine_tune(fast, (train_cached, val_cached), stages=[stage2], verbose=0)
acc_ft_bn_frozen = accuracy(fast, cached["test"], test_labels)
after_difference = float(
    np.abs(keras.ops.convert_to_numpy(model(probe) - fast(cached["test"][: len(probe)]))).max()
)


def bn_drift(stats):
    """Per BN layer: mean |change of moving_mean| in units of the original standard deviation."""
    return np.array([np.mean(np.abs(bn.moving_mean.numpy() - mean) / np.sqrt(var + 1e-3))
                     for bn, (mean, var) in zip(bn_layers, stats, strict=True)])  # fmt: skip


drift_frozen = bn_drift(stats_before)
maps_after = tlcourse.viz.feature_maps(base, probe_image, layers=[early_layer, top_layer], max_channels=8)
fine_tuned_weights = model.get_weights()
print(f"fine-tuned, BN frozen: test accuracy {acc_ft_bn_frozen:.3f} (stage 1: {acc_feature_extraction:.3f}); "
      f"largest BN drift {drift_frozen.max():.4f}")  # fmt: skip
print(
    f"model, on the images, agrees with the cached path after training too: largest difference {after_difference:.1e}"
)
course.record("split_logit_difference", max(split_difference, after_difference))

# %% [markdown]
# And the broken twin: the same starting weights, the same top layers, epochs, schedule and seed — but the
# BN layers inside the unfrozen part are left trainable, as they are after `base.trainable = True` followed by
# re-freezing the lower layers (the recipe of many tutorials; `unfreeze(..., keep_batchnorm_frozen=False)`
# gives the same kind of model). They then run in training mode, like in the toy example. This time in plain
# Keras: compile with our `schedule` and `fit`.

# %%
model.set_weights(stage1_weights)
base.trainable = False
tlcourse.models.unfreeze(model, top=TOP_LAYERS)  # the same layers as above...
first_unfrozen = min(base.layers.index(base.get_layer(name)) for name in top_names)
for layer in bn_layers:
    layer.trainable = base.layers.index(layer) > first_unfrozen  # ...plus the BN layers among them
print(f"trainable BN layers: {sum(layer.trainable for layer in bn_layers)} of {len(bn_layers)}")
fast.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss=loss, metrics=["accuracy"])
tlcourse.reseed(0)
fast.fit(
    *train_cached,
    validation_data=val_cached,
    epochs=fine_tune_epochs,
    batch_size=budget.batch_size,
    verbose=0,
)
acc_bn_trainable = accuracy(fast, cached["test"], test_labels)
drift_trainable = bn_drift(stats_before)
print(
    f"fine-tuned, BN trainable: test accuracy {acc_bn_trainable:.3f}; largest BN drift {drift_trainable.max():.4f}"
)

course.record("acc_ft_bn_frozen", acc_ft_bn_frozen)
course.record("acc_bn_trainable", acc_bn_trainable)
course.record("bn_drift", float(drift_trainable.max()))
course.record("bn_drift_mean", float(drift_trainable.mean()))
course.record("bn_drift_frozen", float(drift_frozen.max()))
course.record("image_size", image_size)
course.record("top_layers", TOP_LAYERS)

# %%
fig, ax = plt.subplots(figsize=(8, 3))
depth = np.arange(1, len(bn_layers) + 1)
ax.bar(depth, drift_trainable, color="tab:red", label="BN trainable")
ax.plot(depth, drift_frozen, "k.", label="BN frozen (trainable=False)")
ax.set(xlabel="BatchNormalization layer (input → output)", ylabel="mean |Δ moving_mean| / std",
       title="How far fine-tuning moved each BN layer's stored mean")  # fmt: skip
ax.legend()
fig.tight_layout()
plt.close(fig)
fig

# %% [markdown]
# With `trainable=False` the stored statistics did not move at all (the black dots sit at zero). With the
# top BN layers left trainable, their stored statistics moved — not through gradients (a small learning rate
# does not protect them) but through the forward pass in training mode, which pulls them towards the
# statistics of the new data at every step. The numbers:

# %%
n_test = len(test_labels)
standard_error = float(np.sqrt(acc_feature_extraction * (1 - acc_feature_extraction) / n_test))
print(f"feature extraction (stage 1): {acc_feature_extraction:.3f}")
print(
    f"fine-tuning, BN frozen:       {acc_ft_bn_frozen:.3f}  ({acc_ft_bn_frozen - acc_feature_extraction:+.3f})"
)
print(
    f"fine-tuning, BN trainable:    {acc_bn_trainable:.3f}  ({acc_bn_trainable - acc_feature_extraction:+.3f})"
)
print(f"standard error of an accuracy measured on {n_test} test images: ±{standard_error:.3f} "
      f"(one test image is {100 / n_test:.2g} points)")  # fmt: skip
print(f"BN drift with BN trainable: mean {drift_trainable.mean():.4f}, max {drift_trainable.max():.4f} "
      f"standard deviations (BN frozen: {drift_frozen.max():.4f})")  # fmt: skip
course.record("accuracy_standard_error", standard_error)
course.record("n_test", n_test)

# %% [markdown]
# Read the lines above from this run: fine-tuning with BN frozen starts from the stage-1 model and changes
# it gently, so it should end at least where feature extraction was. On a test set this small an accuracy
# is only known to about ± the standard error printed (one test image is worth the points printed beside
# it), so the course's test of this claim allows a tolerance of half a standard error and no more. Leaving
# BN trainable changes the statistics the layers above were trained with; the test accuracy shows whether
# this run paid for it, and the drift is there in any case. The course's tests check both claims on every
# run.
#
# ## 7 · The training curves across the stage boundary
#
# `tlcourse.train.History.concatenate` joins the head's history (stage 1, on cached features) and stage 2's
# into one; `tlcourse.viz.history` draws it with the boundary marked.

# %%
model.set_weights(fine_tuned_weights)  # back to the good run (BN frozen)
for layer in bn_layers:
    layer.trainable = False
history = tlcourse.train.History.concatenate(
    [head_history, ft_history], stages=["stage 1: head", "stage 2: top layers"]
)
tlcourse.viz.history(history, stage_names=["head", "fine-tune"])

# %% [markdown]
# The head's curves flatten long before stage 1 ends: feature extraction has got what it can from fixed
# features. After the boundary the top layers start to adapt, with dropout before the head as in stage 1;
# watch the validation curves there — they should not jump. A sharp rise of the validation loss right after
# the boundary is the signature of a learning rate that is too high for stage 2 (lesson 05 shows one).
#
# ## 8 · What fine-tuning changed inside: feature maps before and after
#
# The early layer was frozen, the top layer fine-tuned. The feature maps of the same test image, before
# and after stage 2:

# %%
maps_before.figure

# %%
maps_after.figure

# %%
map_change = {}
for name in (early_layer, top_layer):
    change = np.abs(maps_after[name] - maps_before[name]).mean() / (np.abs(maps_before[name]).mean() + 1e-8)
    map_change[name] = float(change)
    print(f"{name:>30}: activations changed by {change:.1%} on average")
course.record("map_change", {"frozen": map_change[early_layer], "fine_tuned": map_change[top_layer]})

# %% [markdown]
# The frozen early layer's maps are identical (0 % change); the fine-tuned top layer's maps changed — by
# the amount printed, which is modest because the learning rate was small and the training short. That is
# the intent: adapt the task-specific top, keep the general bottom.
#
# ## 9 · Progressive unfreezing and discriminative learning rates, measured
#
# Two refinements of stage 2, from ULMFiT (Howard & Ruder, 2018) and fastai:
#
# - **Progressive unfreezing**: instead of unfreezing N layers at once, unfreeze the top few, train an
#   epoch, then unfreeze more. Each newly unfrozen group joins when the layers above it have already
#   adapted, so it receives smaller, more meaningful gradients.
# - **Discriminative learning rates**: lower layers hold more general features and should move less, so give
#   them a smaller learning rate than the top layers and the head. A Keras optimizer has one learning rate;
#   `tlcourse.train.discriminative` wraps one so that each variable's step is multiplied by its group's factor
#   (inside the update, so it also works for Adam, whose normalised step would undo a scaled gradient).
#
# Both are lists of stages. We run each recipe and the one-stage recipe of section 6 from the same stage-1
# weights, for the same number of epochs, with the same three seeds (the seed sets the dropout masks and the
# order of the batches), on the cached bottom outputs: nine runs that would take minutes on the images.
#
# `fine_tune` compiles at every stage, and compiling costs Keras a trace of the training step — here more
# than a whole run. So we run the stages in plain Keras, as `fine_tune` does, but compile each stage **once**
# and train every seed with it, from that seed's starting weights and a fresh optimizer state (the values the
# optimizer had just after it was built). Progressive unfreezing's second stage starts from each seed's
# weights after the first; it gets its own warm-up, since its optimizer starts afresh.

# %%
epochs_9 = fine_tune_epochs
block = with_weights[-TOP_LAYERS].name.split("_")[0]  # the lower unfrozen block, e.g. "block7a"
Stage = tlcourse.train.Stage
recipes = {
    "one stage": [Stage(epochs_9, FINE_TUNE_LR, unfreeze=TOP_LAYERS, warmup=0.5, schedule="cosine")],
    "progressive": [Stage(1, FINE_TUNE_LR, unfreeze=TOP_LAYERS // 2, warmup=0.5),
                    Stage(epochs_9 - 1, FINE_TUNE_LR, unfreeze=TOP_LAYERS, warmup=0.5, schedule="cosine")],
    "discriminative": [Stage(epochs_9, FINE_TUNE_LR, unfreeze=TOP_LAYERS, warmup=0.5, schedule="cosine",
                             lr_multipliers={f"{block}*": 0.1})],
}  # fmt: skip
for name, stages in recipes.items():
    print(f"{name}: " + " → ".join(stage.describe() for stage in stages))


def run_stage(stage, starts):
    """Train one stage from each seed's starting weights, compiling once: [(weights, history)] per seed."""
    base.trainable = False
    tlcourse.models.unfreeze(fast, top=stage.unfreeze)  # BatchNorm stays frozen
    optimizer = keras.optimizers.Adam(learning_rate=stage.learning_rate_for(steps_per_epoch))
    if stage.lr_multipliers:  # {variable path: multiplier} for the layers each glob names
        multipliers = {
            variable.path: factor
            for glob, factor in stage.lr_multipliers.items()
            for layer in top.layers
            if fnmatch.fnmatch(layer.name, glob)
            for variable in layer.weights
        }
        optimizer = tlcourse.train.discriminative(optimizer, multipliers)
    fast.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    optimizer.build(fast.trainable_variables)
    fresh = [variable.numpy() for variable in optimizer.variables]
    done = []
    for seed, start in zip(budget.seeds, starts, strict=True):
        fast.set_weights(start)
        for variable, value in zip(optimizer.variables, fresh, strict=True):
            variable.assign(value)
        tlcourse.reseed(seed)
        fitted = fast.fit(*train_cached, validation_data=val_cached, epochs=stage.epochs,
                          batch_size=budget.batch_size, verbose=0)  # fmt: skip
        done.append((fast.get_weights(), fitted.history))
    return done


model.set_weights(stage1_weights)
stage1_fast = fast.get_weights()  # the top of the base and the head, as stage 1 left them
watched = [layer.name for layer in with_weights[-TOP_LAYERS:]]
start_kernels = {name: base.get_layer(name).kernel.numpy().copy() for name in watched}
runs = {}
for name, stages in recipes.items():
    states, histories = [stage1_fast] * len(budget.seeds), [[] for _ in budget.seeds]
    for stage in stages:
        results = run_stage(stage, states)
        states = [weights for weights, _ in results]
        for parts, (_, part) in zip(histories, results, strict=True):
            parts.append(tlcourse.train.History(part))
    runs[name] = []
    for seed, weights, parts in zip(budget.seeds, states, histories, strict=True):
        fast.set_weights(weights)
        moved = {layer: float(np.linalg.norm(base.get_layer(layer).kernel.numpy() - start)
                              / np.linalg.norm(start)) for layer, start in start_kernels.items()}  # fmt: skip
        history_9 = tlcourse.train.History.concatenate(parts, [stage.describe() for stage in recipes[name]])
        runs[name].append({"seed": seed, "test_accuracy": accuracy(fast, cached["test"], test_labels),
                           "history": history_9, "moved": moved})  # fmt: skip
model.set_weights(fine_tuned_weights)
summary = {}
for name, done in runs.items():
    acc = np.array([run["test_accuracy"] for run in done])
    gap = acc - np.array([run["test_accuracy"] for run in runs["one stage"]])  # same seeds: paired
    summary[name] = {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)), "accuracies": acc.tolist(),
                     "gap_mean": float(gap.mean()), "gap_std": float(gap.std(ddof=1))}  # fmt: skip
    versus = (
        ""
        if name == "one stage"
        else f"; minus one stage, seed by seed: {gap.mean():+.3f} ± {gap.std(ddof=1):.3f}"
    )
    print(
        f"{name:>15}: test accuracy {acc.mean():.3f} ± {acc.std(ddof=1):.3f} over seeds {list(budget.seeds)}{versus}"
    )

# %% [markdown]
# The curves of every run (validation accuracy per epoch, thin lines; the dotted line is where progressive
# unfreezing adds its second group), and how far each unfrozen layer's kernel moved, relative to its size,
# averaged over the seeds:

# %%
fig, (ax_curves, ax_moved) = plt.subplots(1, 2, figsize=(11, 3.4))
colours = {"one stage": "tab:blue", "progressive": "tab:orange", "discriminative": "tab:green"}
for name, done in runs.items():
    for run in done:
        values = run["history"].history["val_accuracy"]
        ax_curves.plot(np.arange(1, len(values) + 1), values, color=colours[name], alpha=0.7,
                       label=name if run is done[0] else None)  # fmt: skip
boundary = runs["progressive"][0]["history"].stage_boundaries[1]
ax_curves.axvline(boundary + 0.5, color="grey", linestyle=":")
ax_curves.axhline(acc_feature_extraction, color="black", linewidth=0.8, label="stage 1 (test)")
ax_curves.set(
    xlabel="epoch of stage 2", ylabel="validation accuracy", title="Three recipes, three seeds each"
)
ax_curves.legend(fontsize=8)
positions = np.arange(len(watched))
for offset, (name, done) in zip((-0.27, 0, 0.27), runs.items(), strict=True):
    moved = [np.mean([run["moved"][layer] for run in done]) for layer in watched]
    ax_moved.bar(positions + offset, moved, width=0.27, color=colours[name], label=name)
ax_moved.set_xticks(positions, watched, rotation=20, fontsize=8)
ax_moved.set(ylabel="‖Δ kernel‖ / ‖kernel‖", title="How far each unfrozen layer moved")
ax_moved.legend(fontsize=8)
fig.tight_layout()
plt.close(fig)
fig

# %%
lower = [layer for layer in watched if layer.startswith(block)]
upper = [layer for layer in watched if layer not in lower]
late = [layer for layer in watched[: TOP_LAYERS - TOP_LAYERS // 2]]  # what progressive unfreezes second


def mean_moved(name, layers):
    return float(np.mean([run["moved"][layer] for run in runs[name] for layer in layers]))


moved_ratio = {
    "discriminative, lower block": mean_moved("discriminative", lower) / mean_moved("one stage", lower),
    "discriminative, above it": mean_moved("discriminative", upper) / mean_moved("one stage", upper),
    "progressive, the late group": mean_moved("progressive", late) / mean_moved("one stage", late),
}
for what, ratio in moved_ratio.items():
    print(f"{what}: moved {ratio:.2f}× as far as with one stage")
spread = max(summary[name]["std"] for name in runs)
largest_gap = max(abs(summary[name]["gap_mean"]) for name in ("progressive", "discriminative"))
verdict = "within" if largest_gap <= spread else "beyond"
print(
    f"largest difference from one stage: {largest_gap:.3f} — {verdict} the seed-to-seed spread ({spread:.3f})"
)
course.record("recipes_9", {name: {k: v for k, v in s.items()} for name, s in summary.items()})
course.record("moved_ratio_9", moved_ratio)
course.record("verdict_9", verdict)
course.record("epochs_9", epochs_9)

# %% [markdown]
# Read the printout of this run. The mechanisms did what they say: with discriminative learning rates the
# lower unfrozen block moved about a tenth as far as with one stage, and the layers above it about as far;
# with progressive unfreezing the group that joined late moved less, having trained for fewer epochs. What
# that bought in accuracy is the line above the figure: on a few hundred training images and a few epochs,
# compare the differences with the seed-to-seed spread before you believe any of them. The refinements were
# made for long fine-tuning runs of whole networks (ULMFiT fine-tunes a language model for many epochs); on a
# small task with the top few layers unfrozen, one well-scheduled stage is a hard baseline to beat.
#
# > ⚠️ **Pitfall — forgetting to recompile.** Changing `layer.trainable` after `compile()` does nothing to
# > training until you call `compile()` again; `fine_tune` recompiles at every stage for you.
#
# > ⚠️ **Pitfall — too high a learning rate in stage 2.** The pretrained weights are the valuable part. A
# > learning rate suitable for a fresh head (1e-3) can wipe them out in a few steps when the base is
# > unfrozen; start 10–100× lower.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/04_fine_tuning.ipynb): you will unfreeze the top of a base
# with BatchNorm kept frozen, set up a warm-up + cosine schedule, run the two-stage recipe on a base with
# BatchNorm until it beats stage 1 on held-out images, and write a progressive-unfreezing recipe.
#
# ## Summary
#
# - Fine-tuning = stage 1 (head only, base frozen) + stage 2 (top N layers of the base unfrozen, learning
#   rate 10–100× smaller). Make a fresh optimizer and recompile between stages.
# - In Keras 3 a BatchNormalization layer with `trainable=False` always runs in inference mode; passing
#   `training=False` when building the model does **not** survive `fit()` for a trainable BN layer. Set BN
#   layers `trainable=False` after unfreezing (`tlcourse.models.unfreeze` does it by default).
# - BN left trainable moves the stored statistics through the forward pass, whatever the learning rate;
#   measured above, together with its effect on test accuracy.
# - Warm-up protects the first steps of stage 2; cosine decay ends training gently: Keras's `CosineDecay`
#   does both.
# - With the bottom frozen and no augmentation, compute the bottom once and fine-tune the top on its outputs.
# - Progressive unfreezing and discriminative learning rates change how far each layer moves (measured);
#   whether that changes accuracy is a question for your data, answered over seeds.
#
# ## Further reading
#
# - Keras guide *Transfer learning & fine-tuning* (BatchNorm section): https://keras.io/guides/transfer_learning/
# - keras-team/keras#20285, on `training=False` and `trainable` for BatchNorm in Keras 3:
#   https://github.com/keras-team/keras/issues/20285
# - Keras API: `keras.optimizers.schedules.CosineDecay` (warm-up and decay):
#   https://keras.io/api/optimizers/learning_rate_schedules/cosine_decay/
# - Ioffe & Szegedy, *Batch Normalization*, ICML 2015. https://arxiv.org/abs/1502.03167
# - Howard & Ruder, *Universal Language Model Fine-tuning for Text Classification* (ULMFiT: discriminative
#   learning rates, gradual unfreezing), ACL 2018. https://arxiv.org/abs/1801.06146
# - Loshchilov & Hutter, *SGDR: Stochastic Gradient Descent with Warm Restarts* (cosine schedules), ICLR 2017.
#   https://arxiv.org/abs/1608.03983
# - Goyal et al., *Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour* (warm-up), 2017.
#   https://arxiv.org/abs/1706.02677
# - Kornblith, Shlens & Le, *Do Better ImageNet Models Transfer Better?*, CVPR 2019.
#   https://arxiv.org/abs/1805.08974
# - TensorFlow tutorial *Transfer learning and fine-tuning*:
#   https://www.tensorflow.org/tutorials/images/transfer_learning
#
# ## Questions
#
# 1. Why train the head before unfreezing any layer of the base? What would the first gradients into the
#    base look like otherwise?
# 2. Name two reasons to create a fresh optimizer and call `compile()` again between the stages.
# 3. In Keras 3, what exactly decides whether a BatchNormalization layer uses batch statistics during
#    `fit()`? Why is `base(inputs, training=False)` not enough once the base is trainable?
# 4. In section 6, the learning rate was small, yet the BN statistics moved quite a lot. Why does a small
#    learning rate not protect them?
# 5. Why is training on the cached outputs of the frozen bottom the same training as on the images — and
#    which change to the recipe would make it different?
# 6. What problem does a warm-up solve, and why does it matter more for Adam than for plain SGD?
