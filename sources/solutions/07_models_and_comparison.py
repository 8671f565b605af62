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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/07_models_and_comparison.ipynb)
#
# # 07 · Models and the performance comparison — exercises
#
# Three tasks on choosing a base and comparing recipes: pick the base that fits a **memory budget**, turn
# raw runs into a **mean ± std table**, and run a small **comparison** of your own and read off the winner.
# About 20 minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at the objects you built (your functions, the comparison), not at the text of your
# code: any correct answer passes. The lesson to read first is `notebooks/07_models_and_comparison.ipynb`.

# %%
# On Colab, install the course's helper package (on your machine `make lab` did it).
import sys

if "google.colab" in sys.modules:
    import subprocess

    package = "tlcourse @ git+https://github.com/tlcourse/tlcourse@main"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import tlcourse

course = tlcourse.setup("07")  # first: it quiets TensorFlow's start-up logs

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression

# %% [markdown]
# ## 07.1 Pick a base for a memory budget
#
# Here are the catalogue and the **published** ImageNet top-1 accuracies the lesson used (from
# keras.io/api/applications and the MobileNetV3 and EfficientNet-Lite READMEs):

# %%
catalogue = tlcourse.models.catalog()
PUBLISHED_TOP1 = {
    "vgg16": 71.3, "resnet50": 74.9, "inception_v3": 77.9, "xception": 79.0, "mobilenet_v2": 71.3,
    "efficientnet_b0": 77.1, "mobilenet_v3_small": 68.1, "efficientnet_lite0": 75.1,
}  # fmt: skip
catalogue

# %% [markdown]
# Write `pick_base(max_params)` that returns the **name** (a string) of the most accurate base (highest
# `PUBLISHED_TOP1`) among those of `catalogue` with **at most** `max_params` parameters (`info.params`),
# or `None` when no base is that small. The check tries several budgets, including one exactly equal to a
# base's parameter count.

# %%
# BEGIN SOLUTION
def pick_base(max_params):
    fits = [info for info in catalogue if info.params <= max_params]
    if not fits:
        return None
    return max(fits, key=lambda info: PUBLISHED_TOP1[info.name]).name


# END SOLUTION
print(pick_base(5_000_000))

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("07.1")

# %% [markdown]
# ## 07.2 Mean ± std from raw runs
#
# `tlcourse.train.compare` returns one row per run: a dict with `recipe`, `fraction`, `seed` and
# `accuracy`. Write `summarise(rows)` returning a dict that maps each `(recipe, fraction)` pair to a tuple
# `(mean, std)` of the accuracy over its seeds. Use the **sample** standard deviation (`ddof=1`): with three
# seeds we estimate the spread from a sample, and `ddof=0` would understate it.

# %%
example_rows = [
    {"recipe": "scratch", "fraction": 0.1, "seed": 0, "accuracy": 0.40},
    {"recipe": "scratch", "fraction": 0.1, "seed": 1, "accuracy": 0.30},
    {"recipe": "transfer", "fraction": 0.1, "seed": 0, "accuracy": 0.80},
    {"recipe": "transfer", "fraction": 0.1, "seed": 1, "accuracy": 0.70},
]


# BEGIN SOLUTION
def summarise(rows):
    groups = {}
    for row in rows:
        groups.setdefault((row["recipe"], row["fraction"]), []).append(row["accuracy"])
    return {key: (float(np.mean(values)), float(np.std(values, ddof=1))) for key, values in groups.items()}


# END SOLUTION
summarise(example_rows)

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("07.2")

# %% [markdown]
# ## 07.3 A mini comparison: who wins when labels are scarce?
#
# Two recipes are ready below, both a linear head fitted with scikit-learn's logistic regression:
#
# - `pixels`: on the raw pixels, shrunk to 7×7 (a model trained from scratch, the simplest one there is);
# - `source_features`: on the frozen features of the lesson's source CNN (trained on Fashion-MNIST
#   classes 0–4), for the target classes 5–9 — transfer.
#
# Run `tlcourse.train.compare` with both recipes on `target`, at `fractions=(0.05, 1.0)` with the seeds
# `(0, 1, 2)`, and store the result as `comparison`. Then set `winner` to the **name** of the recipe with the
# highest **mean** accuracy at the **smallest** fraction (`comparison.summary()` has the means).

# %%
target = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9])
base = tlcourse.models.headless(tlcourse.models.source_model(progress=False), layer="gap")
base.trainable = False


def linear_model(feature_model, name):
    """feature_model + a Dense head whose weights come from a logistic regression (built once)."""
    model = tlcourse.models.classifier(feature_model, target.num_classes, dropout=0.0, name=name)

    def recipe(train, val, seed):
        features = feature_model.predict(train[0], batch_size=256, verbose=0)
        head = LogisticRegression(max_iter=500).fit(features, train[1])
        model.get_layer("logits").set_weights([head.coef_.T.astype("float32"), head.intercept_.astype("float32")])
        return model

    return recipe


# 28×28 pixels averaged down to 7×7: a small, fast input for the logistic regression.
flatten = keras.Sequential([keras.Input(target.image_shape), keras.layers.Rescaling(1 / 255),
                            keras.layers.AveragePooling2D(4), keras.layers.Flatten()], name="pixels")  # fmt: skip
pixels = linear_model(flatten, "pixels")
source_features = linear_model(base, "source_features")

# %%
# BEGIN SOLUTION
comparison = tlcourse.train.compare(
    {"pixels": pixels, "source_features": source_features}, target, fractions=(0.05, 1.0), seeds=(0, 1, 2)
)
print(comparison.table())
smallest = min(row["fraction"] for row in comparison.rows)
winner = max((s for s in comparison.summary() if s["fraction"] == smallest), key=lambda s: s["mean"])["recipe"]
# END SOLUTION
print("winner at the smallest fraction:", winner)

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("07.3")

# %% [markdown]
# Look at the table again. On Fashion-MNIST a linear model on (shrunk) pixels is a strong baseline, and with
# the few labelled images per class of the smallest fraction the two recipes' spreads over seeds may overlap:
# compare the difference of the means with their standard deviations before calling a winner (lesson 07,
# section 5). At the largest fraction, compare the two means again. A stronger scratch model needs far more
# data than a linear one — that is where transfer pays, as the lesson's comparison shows.
