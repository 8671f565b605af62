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
# # 02 · Inductive vs. transductive transfer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/02_inductive_vs_transductive.ipynb)
#
# **Time:** about 30 minutes (the code runs in under a minute on a laptop).
#
# **You will learn:**
# - to describe any transfer problem by its *domains* (what the inputs look like), its *tasks*
#   (what must be predicted) and *where the labels are*;
# - Pan & Yang's three settings — **inductive**, **transductive** and **unsupervised** transfer — and
#   how the familiar words (feature extraction, fine-tuning, multi-task learning, domain adaptation) fit in;
# - to place real projects in that table (a quiz);
# - to run one inductive transfer and to *measure* a domain gap: the same classifier on the same kind
#   of images, drawn differently.
#
# Prerequisites: lesson 01 (a frozen base + a new head).

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
LABELS_PER_CLASS = 10  # labelled target examples per class in the inductive demo

# %%
import tlcourse

course = tlcourse.setup("02", profile=PROFILE)  # first: it quiets TensorFlow's start-up logs

import keras
import matplotlib.pyplot as plt
import numpy as np

budget = course.budget

# %% [markdown]
# ## 1 · Domains, tasks and labels
#
# Every transfer problem has a **source** (where the knowledge comes from) and a **target** (where we
# want to use it). Pan & Yang (2010) describe each side with two things:
#
# - a **domain** — the kind of inputs *and how they are distributed*: "colour photos of everyday
#   objects", "grey 28 × 28 pictures of clothes", "movie reviews written in Hindi". Two domains differ
#   when the inputs are of a different kind (English vs. Hindi words) or when the same kind of input is
#   spread differently (product photos vs. phone snapshots of the same products).
# - a **task** — the labels and the function we want from inputs to labels: "which of 1000 objects",
#   "healthy or diseased leaf", "positive or negative review".
#
# Transfer learning means: use what was learned on the source (domain + task) to do better on the
# target, when the two differ in domain, in task, or in both. Which of them differ — and whether the
# *target* has labels — decides the setting:
#
# | setting | domains (source vs. target) | tasks (source vs. target) | labels in the source | labels in the target | the seeds' example | also known as |
# |---|---|---|---|---|---|---|
# | **inductive** | same or different | **different** (related) | usually yes | **yes** (often few) | ImageNet (1000 objects) → plant-disease photos (healthy / diseased) | feature extraction, fine-tuning, multi-task learning, self-taught learning (unlabelled source) |
# | **transductive** | **different** (related) | **same** | yes | **none** (only unlabelled target inputs) | English movie reviews → Hindi movie reviews, sentiment both times | domain adaptation, covariate shift, cross-lingual transfer |
# | **unsupervised** | different (related) | different (related) | no | no | — | clustering, dimensionality reduction with transferred features |
#
# Three remarks that the popular tutorials blur:
#
# - **Feature extraction and fine-tuning are *techniques*, not settings.** They are *how* you reuse a
#   network; inductive vs. transductive says *what problem* you have. One of the seeds lists "feature
#   extraction, fine-tuning, multi-task learning, domain adaptation" as four "types": the first two are
#   techniques (lessons 03 and 04), multi-task learning is an inductive setting where the tasks are
#   learned together (lesson 08), and domain adaptation is the transductive setting (lesson 06).
# - **"Transductive" needs unlabelled target data.** The word means the model may look at the very
#   target inputs it has to label — that is what domain-adaptation methods exploit. With no target
#   data at all you can only hope the source model generalises.
# - **English → Hindi is the harder kind of transductive transfer**: the inputs are not even the same
#   kind (different words, a different script), so Pan & Yang would say the *feature spaces* differ.
#   Cross-lingual models fix that by mapping both languages into one shared embedding space (lesson 09);
#   then only the distributions differ.

# %% [markdown]
# ## 2 · Quiz: which setting is it?
#
# For each scenario pick a setting from the drop-down; the feedback appears at once. No widgets where
# you are (a static preview, or a plain Python console)? The same scenarios are printed as text, and
# the cell after the quiz checks answers you type into a dictionary.

# %%
QUIZ_CHOICES = ("inductive", "transductive", "unsupervised")
QUIZ = [
    (
        "A hospital has 800 labelled chest X-rays (normal / pneumonia) and an ImageNet CNN.",
        "inductive",
        "the task changes (1000 objects → 2 diagnoses) and the target has labels.",
    ),
    (
        "A sentiment model trained on labelled English reviews must score Hindi reviews; nobody has "
        "labelled any Hindi review.",
        "transductive",
        "same task (sentiment), different domain (language), no target labels — the seeds' example.",
    ),
    (
        "A digit reader trained on labelled MNIST must read digits blended onto colour photos "
        "(MNIST-M); you have those images, without labels.",
        "transductive",
        "same task (which digit), the inputs look different, target labels are missing.",
    ),
    (
        "One pretrained base, two heads: the breed of a pet and whether it is a cat or a dog, both labelled.",
        "inductive",
        "multi-task learning: new tasks, labelled target data.",
    ),
    (
        "Features from a network trained on unlabelled photos are used to cluster unlabelled satellite tiles.",
        "unsupervised",
        "no labels on either side; the target task (clustering) is unsupervised too.",
    ),
]


def quiz_feedback(number, answer):
    """One line of feedback for scenario `number` (1-based) answered with `answer`."""
    _, correct, why = QUIZ[number - 1]
    if answer not in QUIZ_CHOICES:
        return f"⏳ {number}. not answered yet"
    if answer == correct:
        return f"✅ {number}. {answer}: {why}"
    return f"❌ {number}. not {answer} — ask: do the tasks differ? does the target have labels?"


def check_quiz(answers):
    """Print feedback for a dict {scenario number: setting} and return the number right."""
    for number in range(1, len(QUIZ) + 1):
        print(quiz_feedback(number, answers.get(number)))
    return sum(answers.get(n) == QUIZ[n - 1][1] for n in range(1, len(QUIZ) + 1))


def quiz_text():
    lines = [f"{n}. {text}" for n, (text, _, _) in enumerate(QUIZ, start=1)]
    return "\n".join(["Which setting? (" + " / ".join(QUIZ_CHOICES) + ")", *lines])


def quiz_widget():
    """The quiz as ipywidgets: a drop-down per scenario, its feedback beside it."""
    import ipywidgets as widgets

    rows = []
    for number, (text, _, _) in enumerate(QUIZ, start=1):
        choice = widgets.Dropdown(options=["—", *QUIZ_CHOICES], value="—", layout={"width": "150px"})
        feedback = widgets.HTML()

        def show(change, number=number, feedback=feedback):
            feedback.value = quiz_feedback(number, change["new"])

        choice.observe(show, names="value")
        rows.append(
            widgets.VBox([widgets.HTML(f"<b>{number}.</b> {text}"), widgets.HBox([choice, feedback])])
        )
    return widgets.VBox(rows)


class WidgetOrText:
    """Shows a widget where widgets render (the display data ipywidgets 7 and 8 both produce), text elsewhere."""

    def __init__(self, widget, text):
        self.widget, self.text = widget, text

    def _repr_mimebundle_(self, **kwargs):
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        return {"application/vnd.jupyter.widget-view+json": view, "text/plain": self.text}


quiz = quiz_widget()
WidgetOrText(quiz, quiz_text())

# %% [markdown]
# No widgets? Type your answers here (scenario number → setting) and run the cell.

# %%
my_answers = {}  # e.g. {1: "inductive", 2: "transductive"}
right = check_quiz(my_answers)
print(f"{right}/{len(QUIZ)} right")

# %% [markdown]
# ## 3 · Inductive transfer, briefly
#
# Lesson 01 compared transfer with training from scratch in detail; here we only place it in the table.
# **Inductive** means: new task, labelled target data. The demo takes a network trained on a
# source task, removes its classifier, freezes the rest and trains a new head on a few labelled target
# examples.
#
# - Online the source is ImageNet and the target is `beans` — photos of bean leaves labelled *healthy*,
#   *angular leaf spot* or *bean rust*: the seeds' "ImageNet → plant disease" example, for real.
# - Offline the source is a small CNN trained on Fashion-MNIST classes 0–4 (T-shirt … coat) and the
#   target task is classes 5–9 (sandal … ankle boot): same domain (grey clothes pictures), different task.

# %%
if course.offline:
    source_classes = (0, 1, 2, 3, 4)
    source_net = tlcourse.models.source_model("fashion_mnist", classes=source_classes)
    # The base: everything up to the layer before the classifier (named "features" in this CNN).
    base = keras.Model(
        source_net.inputs, source_net.get_layer("features").output, name="fashion_0_4_features"
    )
    target = tlcourse.data.load("fashion_mnist", classes=[5, 6, 7, 8, 9], labels_per_class=LABELS_PER_CLASS)
else:
    base = tlcourse.models.backbone(
        "efficientnet_lite0", input_shape=(budget.image_size, budget.image_size, 3)
    )
    target = tlcourse.data.load("beans", image_size=budget.image_size, labels_per_class=LABELS_PER_CLASS)

base.trainable = False
print(target)
print(
    f"source → target: {base.name} → {target.name}; trainable weights in the base: {len(base.trainable_weights)}"
)

# %% [markdown]
# We compute the base's features once per image (lesson 03 explains why that is the fast path) and train
# a linear head on the few labelled target examples.

# %%
train_features = tlcourse.train.extract_features(base, target, split="train", verbose=0)
test_features = tlcourse.train.extract_features(base, target, split="test", verbose=0)
# A few examples make an epoch one or two steps: many short epochs at a brisk learning rate.
head, _ = tlcourse.train.fit_head(
    train_features,
    num_classes=target.num_classes,
    epochs=50,
    learning_rate=1e-2,
    dropout=0.0,
    run_dir=False,
    verbose=0,
)
test_logits = head.predict(test_features.features, verbose=0)
inductive_acc = float(np.mean(test_logits.argmax(axis=1) == test_features.labels))
course.record("inductive_acc", inductive_acc)
print(
    f"{len(train_features)} labelled target examples ({LABELS_PER_CLASS} per class) → "
    f"test accuracy {inductive_acc:.1%} on {len(test_features)} images (chance: {1 / target.num_classes:.0%})"
)

# %% [markdown]
# A handful of labels per class is enough for a useful classifier because the source network already
# knows which visual patterns matter; the new task only has to be read off its features.

# %% [markdown]
# ## 4 · Transductive transfer: the domain gap
#
# Now keep the **task** and change the **domain**. We take the source classifier itself (no new
# head) and show it the *same test images* blended onto random patches of colour photos — the
# recipe behind MNIST-M (Ganin et al., 2016): each pixel becomes `|photo patch − image|`. The labels do
# not change; a person reads the blended pictures without effort. How much accuracy does the model lose?

# %%
source_classes = (0, 1, 2, 3, 4)
source_net = tlcourse.models.source_model("fashion_mnist", classes=source_classes)
source_domain = tlcourse.data.load("fashion_mnist", classes=list(source_classes))
target_domain = tlcourse.data.load("fashion_mnist_m", classes=list(source_classes))
x_source, y_source = source_domain.arrays("test")
x_target, y_target = target_domain.arrays("test")
print(source_domain)
print(target_domain)
print("same labels, image for image:", bool(np.array_equal(y_source, y_target)))

# %%
fig, axes = plt.subplots(2, 8, figsize=(12, 4))
for column, index in enumerate(np.linspace(0, len(x_source) - 1, 8).astype(int)):
    for row, (images, domain) in enumerate([(x_source, "source"), (x_target, "target")]):
        axes[row, column].imshow(images[index])
        axes[row, column].set_axis_off()
        axes[row, column].set_title(f"{domain}\n{source_domain.class_names[y_source[index]]}", fontsize=8)
fig.suptitle("The same test images in the source domain (top) and the target domain (bottom)")
fig.tight_layout()

# %% [markdown]
# Every column is one test image, top as the source model saw its training data, bottom blended onto a
# photo: the shape that defines the class is still there, the background and colours are new.


# %%
predicted_source = source_net.predict(x_source, batch_size=256, verbose=0).argmax(axis=1)
predicted_target = source_net.predict(x_target, batch_size=256, verbose=0).argmax(axis=1)
source_acc = float(np.mean(predicted_source == y_source))
target_acc = float(np.mean(predicted_target == y_target))
gap = source_acc - target_acc
course.record("source_acc", source_acc)
course.record("target_acc", target_acc)
course.record("gap", gap)
print(f"accuracy on the source domain (test): {source_acc:.1%}")
print(f"accuracy on the target domain (test): {target_acc:.1%}")
print(f"domain gap: {gap * 100:.1f} points (chance is {1 / len(source_classes):.0%})")

# %%
names = source_domain.class_names
per_class = [
    (np.mean(predicted_source[y_source == c] == c), np.mean(predicted_target[y_target == c] == c))
    for c in range(len(names))
]
fig, ax = plt.subplots(figsize=(7, 3.2))
positions = np.arange(len(names))
ax.bar(positions - 0.2, [s for s, _ in per_class], width=0.4, label="source domain")
ax.bar(positions + 0.2, [t for _, t in per_class], width=0.4, label="target domain (blended)")
ax.set_xticks(positions, names)
ax.set_ylabel("test accuracy")
ax.set_ylim(0, 1)
ax.set_title("The same classifier, class by class, before and after the domain shift")
ax.legend(loc="lower right")
fig.tight_layout()

# %%
drops = [float(s - t) for s, t in per_class]
worst, mildest = int(np.argmax(drops)), int(np.argmin(drops))
print(f"largest drop:  {names[worst]} ({per_class[worst][0]:.0%} → {per_class[worst][1]:.0%})")
print(f"smallest drop: {names[mildest]} ({per_class[mildest][0]:.0%} → {per_class[mildest][1]:.0%})")
course.record("drop_per_class", dict(zip(names, drops, strict=True)))

# %% [markdown]
# The drop is not spread evenly: the printout above names the class that suffers most and the one that
# suffers least. The network only
# ever saw garments on a black background; once the background is textured and coloured, some of the
# cues it relied on are gone or drowned out.
#
# This is the transductive setting in one picture: same task, same labels, a different input
# distribution — and target labels we pretend not to have. Lesson 06 closes part of the gap *without
# target labels*, using only the unlabelled blended images (AdaBN, CORAL, DANN, pseudo-labels).
#
# > ⚠️ **Pitfall — measuring on the wrong domain.** A validation split drawn from the source data says
# > nothing about the target domain: here it would report the source accuracy printed above while the
# > model serves blended images at the target accuracy. Whenever the data you deploy on may differ from
# > the data you trained on, keep a small *labelled* sample of the real target data just for evaluation.
#
# > ⚠️ **Pitfall — more source epochs do not close a domain gap.** The source model is already good on
# > its own domain; training it longer fits the source *better*, not the target. The remedies change the
# > data (augmentation towards the target look) or use the target inputs (domain adaptation).

# %% [markdown]
# ## Your turn
#
# Open [`../exercises/02_inductive_vs_transductive.ipynb`](../exercises/02_inductive_vs_transductive.ipynb):
# classify more scenarios, and measure the domain gap of a model of your own.
#
# ## Summary
#
# - A transfer problem is described by its source and target **domains** (inputs and their
#   distribution), **tasks** (labels and the mapping) and **where the labels are**.
# - **Inductive**: the task changes and the target has (a few) labels — feature extraction and
#   fine-tuning on a new labelled dataset, multi-task learning.
# - **Transductive**: the task stays, the domain changes, the target has no labels — domain adaptation,
#   cross-lingual transfer.
# - **Unsupervised**: no labels on either side.
# - The domain gap is measurable: the same classifier lost the number of points printed above when the
#   same images were blended onto photos.
#
# ## Further reading
#
# - S. J. Pan and Q. Yang, [A Survey on Transfer Learning](https://doi.org/10.1109/TKDE.2009.191),
#   IEEE TKDE 22(10), 2010 — the taxonomy used here (its Table 1 and Figure 2).
# - Y. Ganin et al., [Domain-Adversarial Training of Neural Networks](https://arxiv.org/abs/1505.07818),
#   JMLR 2016 — MNIST-M and the source-only baseline.
# - J. Yosinski et al., [How transferable are features in deep neural networks?](https://arxiv.org/abs/1411.1792),
#   NeurIPS 2014.
# - Keras guide: [Transfer learning & fine-tuning](https://keras.io/guides/transfer_learning/).
# - TensorFlow Datasets: [beans](https://www.tensorflow.org/datasets/catalog/beans).
#
# ## Questions
#
# 1. What two things make up a *domain*, and what two make up a *task*?
# 2. You fine-tune an ImageNet network on 2,000 labelled photos of your own products. Which setting is
#    that, and why is "fine-tuning" not the answer to that question?
# 3. Why does transductive transfer need (unlabelled) target inputs, and what could a method do with them?
# 4. In section 4, which parts of the problem stayed the same and which changed? Why is the drop in
#    accuracy called a *domain* gap?
# 5. English → Hindi sentiment is called cross-lingual transfer. What makes it harder than the
#    Fashion-MNIST → blended Fashion-MNIST shift?
