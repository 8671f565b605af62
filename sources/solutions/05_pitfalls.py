# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/05_pitfalls.ipynb)
#
# # 05 · Pitfalls — exercises: diagnose and fix
#
# Four broken set-ups, each with one of the classic transfer-learning mistakes of lesson 05:
# images **preprocessed twice**, a logits head with a loss that expects **probabilities**, a
# base left **unfrozen**, and a model **chosen on the test set**. Each time, find the mistake
# and fix it. About 25 minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at the objects you built (the models, what your function returns), not at
# the text of your code: any correct answer passes. The lesson to read first is
# `notebooks/05_pitfalls.ipynb`.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %%
import tlcourse

course = tlcourse.setup("05")

# %% [markdown]
# All four tasks use lesson 05's near source: the small CNN pretrained on Fashion-MNIST's classes
# 0–4. `base` is that network without its old head: raw 28×28×3 images in [0, 255] in, 128
# features out. Like every base in this course, it does its own preprocessing — its second layer,
# `rescale`, divides the pixels by 255.

# %%
import keras  # after tlcourse.setup(): it quiets TensorFlow's native start-up logs first
import numpy as np

source = tlcourse.models.source_model()
base = tlcourse.models.headless(source)
base.trainable = False
print([f"{layer.name} ({type(layer).__name__})" for layer in base.layers[:3]])

# %% [markdown]
# ## 05.1 Preprocessing that does not match the base
#
# Someone "normalised" the images the way many tutorials do, then put the pretrained base and a
# new head after it:

# %%
broken_model = keras.Sequential(
    [keras.Input(shape=(28, 28, 3)), keras.layers.Rescaling(1 / 255), base, keras.layers.Dense(5)],
    name="broken_model",
)
pixels = np.random.default_rng(0).uniform(0, 255, size=(8, 28, 28, 3)).astype("float32")
inside = keras.Model(broken_model.inputs, broken_model.layers[0].output)  # what reaches the base
print(f"the base receives pixels up to {float(np.max(inside(pixels))):.3f} (it expects up to 255)")

# %% [markdown]
# Nothing crashes, but the base sees almost black images and its features are poor. Build
# `fixed_model`: raw [0, 255] images of shape (28, 28, 3) in, `base` (called with
# `training=False`), then a `keras.layers.Dense(5)` head with logits out — with the pixels
# scaled exactly once, by the base itself.

# %%
# BEGIN SOLUTION
inputs = keras.Input(shape=(28, 28, 3))
fixed_model = keras.Model(inputs, keras.layers.Dense(5)(base(inputs, training=False)), name="fixed_model")
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("05.1")

# %% [markdown]
# ## 05.2 Logits and a loss that expects probabilities
#
# This head outputs logits (no activation on its last layer), but it is compiled with the
# string loss, whose default is `from_logits=False`: the loss reads the raw scores — negative ones
# included — as probabilities. Nothing crashes; the model learns the wrong thing.
#
# Fix it **keeping the course's convention**: the head still outputs logits (no softmax), and
# `head_model` is compiled again (Adam, the accuracy metric) with the loss that is told so. The
# labels are class ids (0, 1, 2, …). The broken set-up:

# %%
head_model = keras.Sequential([keras.Input(shape=(128,)), keras.layers.Dense(5)], name="head_model")
head_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
print(f"last layer's activation: {head_model.layers[-1].activation.__name__}; loss: {head_model.loss!r}")

# %%
# BEGIN SOLUTION
head_model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("05.2")

# %% [markdown]
# ## 05.3 Forgetting to freeze the base
#
# `build_classifier()` puts a new head on a fresh copy of the source's features — and forgets to
# freeze them:


# %%
def build_classifier():
    features = tlcourse.models.headless(tlcourse.models.source_model())
    inputs = keras.Input(shape=(28, 28, 3))
    logits = keras.layers.Dense(5, name="head")(features(inputs, training=False))
    return keras.Model(inputs, logits, name="classifier")


unfrozen = build_classifier()
print(
    f"trainable: {tlcourse.introspect.count_params(unfrozen.trainable_weights):,} of {unfrozen.count_params():,}"
)

# %% [markdown]
# With a few labelled images and a random head, `fit()` would train all those parameters. Make
# `classifier = build_classifier()` and fix it so that **only the head** trains — every layer of
# the base frozen, the head trainable — then compile it (Adam,
# `SparseCategoricalCrossentropy(from_logits=True)`). The check counts the trainable parameters.
# Hint: the base is the nested model inside `classifier` (`classifier.layers`).

# %%
# BEGIN SOLUTION
classifier = build_classifier()
nested_base = next(layer for layer in classifier.layers if isinstance(layer, keras.Model))
nested_base.trainable = False
classifier.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("05.3")

# %% [markdown]
# ## 05.4 Choosing on the test set
#
# You trained several configurations and measured each on the validation and the test split:
#
# ```python
# scores = {"lr=1e-2": {"val": 0.80, "test": 0.88}, "lr=1e-3": {"val": 0.86, "test": 0.82}, ...}
# ```
#
# Write `pick_best(scores)` returning a pair `(name, accuracy)`: the configuration you keep and
# the accuracy you would **report** for it. Choose so that the reported number is an honest
# estimate of how the chosen model does on new images (lesson 05, pitfall 8). The check tries
# your function on two tables.


# %%
def pick_best(scores):
    # BEGIN SOLUTION
    chosen = max(scores, key=lambda name: scores[name]["val"])
    return chosen, scores[chosen]["test"]
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("05.4")

# %% [markdown]
# ## What next
#
# Each fix here is one line; the hard part is noticing the mistake. Keep the symptoms of lesson
# 05's summary table at hand: the trainable-parameter count before training, a validation curve
# that turns around, a test score too good to be true. Lesson 06 moves on to domain adaptation.
