# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/02_inductive_vs_transductive.ipynb)
#
# # 02 · Inductive vs. transductive transfer — exercises: name the setting, measure the gap
#
# Three tasks: place six projects in Pan & Yang's table, **measure a domain gap** with a
# function of your own, and **make a target-domain image** with the MNIST-M recipe. About 25
# minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at the objects you built (the dictionary, what your functions return), not
# at the text of your code: any correct answer passes. The lesson to read first is
# `notebooks/02_inductive_vs_transductive.ipynb`.

# %%
# On Colab, install the course's helper package (on your machine `make lab` did it).
import sys

if "google.colab" in sys.modules:
    import subprocess

    package = "tlcourse @ git+https://github.com/tlcourse/tlcourse@main"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import tlcourse

course = tlcourse.setup("02")  # first: it quiets TensorFlow's start-up logs

import matplotlib.pyplot as plt
import numpy as np

# %% [markdown]
# ## 02.1 Which setting is it?
#
# For each project, ask three questions: does the **task** change (new classes, a new
# output)? does the **domain** change (inputs of another kind, or the same kind spread
# differently)? does the **target** have labels? Then pick *inductive*, *transductive* or
# *unsupervised*.
#
# 1. A start-up has an ImageNet CNN and 2,000 labelled photos of its own 12 products.
# 2. A pedestrian detector trained on labelled daytime street images must work at night;
#    there are thousands of night images from the same cameras, none of them labelled.
# 3. One pretrained base gets two heads, trained together on labelled photos: a car's make and
#    its colour.
# 4. Features of a network pretrained on unlabelled medical scans are used to group another
#    hospital's unlabelled scans into clusters.
# 5. A speech recogniser trained on transcribed studio recordings must transcribe phone calls in
#    the same language; there are hours of phone calls, none transcribed.
# 6. Lesson 02's demo: the Fashion-MNIST network for T-shirts … coats gets a new head for
#    sandals … ankle boots, with 10 labelled images per class.
#
# Make `settings` a dictionary from the scenario number to `"inductive"`, `"transductive"` or
# `"unsupervised"`.

# %%
# BEGIN SOLUTION
settings = {
    1: "inductive",
    2: "transductive",
    3: "inductive",
    4: "unsupervised",
    5: "transductive",
    6: "inductive",
}
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("02.1")

# %% [markdown]
# ## 02.2 Measure a domain gap
#
# The source model is lesson 02's small CNN, trained on Fashion-MNIST classes 0–4. Its target
# domain is the same test images blended onto photo patches (`fashion_mnist_m`): same task,
# same labels, another look.

# %%
source_net = tlcourse.models.source_model("fashion_mnist", classes=(0, 1, 2, 3, 4))
source_domain = tlcourse.data.load("fashion_mnist", classes=[0, 1, 2, 3, 4])
target_domain = tlcourse.data.load("fashion_mnist_m", classes=[0, 1, 2, 3, 4])
print(source_domain)
print(target_domain)

# %% [markdown]
# Write a function `domain_gap(model, source, target)` that returns the **domain gap**: the
# model's accuracy on the `source` bundle's test split minus its accuracy on the `target`
# bundle's test split, as a fraction (0.25 for 25 points).
#
# - `bundle.arrays("test")` gives the images and labels as numpy arrays.
# - The model outputs logits: the predicted class is the `argmax` over the last axis of
#   `model.predict(x, verbose=0)`.
# - Accuracy is the fraction of predicted classes equal to the labels.
#
# The check calls your function on the source model and both bundles — and once with the
# bundles swapped.


# %%
def domain_gap(model, source, target):
    # BEGIN SOLUTION
    def accuracy(bundle):
        x, y = bundle.arrays("test")
        predicted = model.predict(x, batch_size=256, verbose=0).argmax(axis=-1)
        return float(np.mean(predicted == y))

    return accuracy(source) - accuracy(target)
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("02.2")

# %% [markdown]
# ## 02.3 Make a target-domain image
#
# The MNIST-M recipe (Ganin et al., 2016) takes a random patch of a colour photo, the size of
# the image, and sets every pixel and channel to **|patch − image|**: where the garment is dark
# the photo shows through, where it is bright the photo's colours are inverted.
#
# Write `blend(image, patch)` for two `uint8` arrays of the same shape `(height, width, 3)` that
# returns the blended image as `uint8`, leaving its inputs unchanged.
#
# > ⚠️ **Pitfall — uint8 arithmetic.** `np.uint8(3) - np.uint8(5)` is 254, not −2: unsigned
# > integers wrap around. Convert to a signed type (`.astype(np.int16)`) before subtracting.


# %%
def blend(image, patch):
    # BEGIN SOLUTION
    difference = patch.astype(np.int16) - image.astype(np.int16)
    return np.abs(difference).astype(np.uint8)
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("02.3")

# %% [markdown]
# ## Try it on a real photo
#
# A test image of the source domain, a patch of the cat photo `chelsea` the size of the image,
# and the result of the recipe (this cell uses your `blend`).

# %%
x_source, y_source = source_domain.arrays("test")
image = x_source[0]
photo = tlcourse.data.sample_photos()["chelsea"]
patch = photo[100 : 100 + image.shape[0], 200 : 200 + image.shape[1]]
try:
    blended = blend(image, patch)
except NotImplementedError:
    blended = np.zeros_like(image)  # blend() is not written yet
fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
for ax, picture, title in zip(
    axes, [image, patch, blended], ["image", "photo patch", "|patch − image|"], strict=True
):
    ax.imshow(picture)
    ax.set_title(title)
    ax.set_axis_off()
fig.tight_layout()

# %% [markdown]
# ## What next
#
# `tlcourse.data.load("fashion_mnist_m")` applies this recipe to every image, with a random
# patch of a random bundled photo each time, and your `domain_gap` measured what it costs the
# source model. Lesson 06 closes part of that gap without a single target label.
