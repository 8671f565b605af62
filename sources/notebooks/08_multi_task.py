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
# # 08 · Multi-task learning
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/08_multi_task.ipynb)
#
# **Time:** about 30 minutes (the experiments take 1–10 minutes depending on your machine).
#
# **You will learn:**
# - what multi-task learning is: one shared base, several heads, each with its own loss;
# - how to build such a model with the Keras functional API: named outputs, and dicts of losses, loss
#   weights, labels and metrics;
# - how to compare it fairly with one single-task model per task, and what it saves (one base instead of two);
# - how loss weights decide which task the shared layers serve, and how a bad weighting hurts a task.
#
# **Prerequisites:** lessons 01 and 03 (a frozen base, cached features, a head with logits).

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
EPOCHS = None  # epochs for every model of sections 4–6; None = 5 × the budget's epochs (they train on cached features)
SHARED_UNITS = 64  # width of the shared layer that both tasks train

# %%
import tlcourse

course = tlcourse.setup("08", profile=PROFILE)
budget = course.budget

# %% [markdown]
# ## 1. One base, several heads
#
# So far every model had one job: one head, one loss. Often one input carries answers to several questions.
# A pet photo tells you the breed *and* whether it is a cat or a dog; a product photo tells you the exact item
# *and* its department. **Multi-task learning** (MTL) trains one network for all of them at once:
#
# ```
#                          ┌─> head "class" (Dense, logits) ──> loss_class ─┐
#   image ─> shared base ──┤                                               ├─> loss = w_class·loss_class + w_group·loss_group
#                          └─> head "group" (Dense, logits) ──> loss_group ─┘
# ```
#
# This is *hard parameter sharing* (Caruana, 1997; Ruder, 2017), the seeds' "one base model, multiple
# output tasks". Every task has its own head and its own loss; the total loss is a **weighted sum**, and
# the gradient of that sum is what the shared layers follow. So the shared layers learn features that serve
# all tasks together: a form of transfer *between* tasks, happening during training rather than after it.
# Why bother?
#
# - **Cost:** one base runs once per image and is stored once, instead of one base per task.
# - **Data:** a task with few labels can profit from features shaped by a task with many.
# - **Regularisation:** features that must serve two tasks are less free to overfit one of them.
#
# It can also hurt: tasks compete for the shared layers, and the loss weights decide who wins. Section 6
# shows that. In this lesson the shared base is a frozen pretrained network (as in lessons 01 and 03) plus a
# shared `Dense` layer that both tasks train.

# %% [markdown]
# ## 2. Two tasks from one set of labels
#
# Online we use the Oxford-IIIT Pet dataset: 37 breeds (task "class") and the species, cat or dog (task
# "group"). Offline the stand-in is Fashion-MNIST: the 10 items (task "class") and a coarser task we derive
# from them, **clothing / footwear / bag** (task "group"). In both cases the second label is a function of
# the first, so we derive it with a lookup table, one entry per class.

# %%
import keras
import numpy as np

dataset = tlcourse.data.load("oxford_iiit_pet", image_size=None if course.offline else budget.image_size)
if course.offline:  # the Fashion-MNIST stand-in: which department does the item belong to?
    GROUP_NAMES = ["clothing", "footwear", "bag"]
    department = {"Sandal": "footwear", "Sneaker": "footwear", "Ankle boot": "footwear", "Bag": "bag"}
    GROUP_OF_CLASS = np.array(
        [GROUP_NAMES.index(department.get(name, "clothing")) for name in dataset.class_names]
    )
else:  # Oxford-IIIT Pet: the dataset writes cat breeds with a capital letter, dog breeds without
    GROUP_NAMES = ["cat", "dog"]
    GROUP_OF_CLASS = np.array([0 if name[0].isupper() else 1 for name in dataset.class_names])
TASKS = {"class": dataset.num_classes, "group": len(GROUP_NAMES)}  # task name -> number of classes
print(dataset)
for group, name in enumerate(GROUP_NAMES):
    members = [c for c, g in zip(dataset.class_names, GROUP_OF_CLASS, strict=True) if g == group]
    print(
        f"group {group} {name:9s} ← {len(members)} classes: {', '.join(members[:6])}{' …' if len(members) > 6 else ''}"
    )

# %% [markdown]
# A few training images with both of their labels:

# %%
import matplotlib.pyplot as plt

x_train, y_train = dataset.arrays("train")
x_test, y_test = dataset.arrays("test")
labels = {"train": {"class": y_train, "group": GROUP_OF_CLASS[y_train]},
          "test": {"class": y_test, "group": GROUP_OF_CLASS[y_test]}}  # fmt: skip

fig, axes = plt.subplots(1, 8, figsize=(13, 2.4))
for ax, i in zip(axes, np.random.default_rng(0).choice(len(x_train), 8, replace=False), strict=True):
    ax.imshow(x_train[i])
    ax.set_title(
        f"{dataset.class_names[y_train[i]][:14]}\n{GROUP_NAMES[labels['train']['group'][i]]}", fontsize=9
    )
    ax.axis("off")
plt.close(fig)
fig

# %% [markdown]
# Each image now has two labels: the class above, the group below. The groups are not balanced, which
# matters when we read accuracies: a model that always answers the most common group is already right this
# often on the test set —

# %%
group_counts = np.bincount(labels["test"]["group"], minlength=len(GROUP_NAMES))
majority = float(group_counts.max() / group_counts.sum())
print("test images per group:", dict(zip(GROUP_NAMES, group_counts.tolist(), strict=True)))
print(f"majority baseline for 'group': {majority:.1%}; chance for 'class': {1 / dataset.num_classes:.1%}")
course.record("group_majority_baseline", majority)

# %% [markdown]
# > ⚠️ **Pitfall — reading an accuracy without its baseline.** An accuracy means something only next to what
# > a trivial answer gets. With unbalanced groups, a high "group" accuracy can be close to the majority
# > baseline printed above.
#
# ## 3. The shared base
#
# Offline, the base is the small CNN that lesson 01 pretrained on Fashion-MNIST classes 0–4, cut before its
# dense layers; online, MobileNetV2 pretrained on ImageNet. It is frozen, so its output for an image never
# changes: as in lesson 03 we run it **once** over the data and train everything else on the cached
# features. Section 5 puts the trained layers back on the base to get one model from images to both answers.

# %%
if course.offline:
    source = tlcourse.models.source_model()  # small_cnn trained on Fashion-MNIST classes 0-4; cached
    base = keras.Model(source.inputs, source.get_layer("gap").output, name="pretrained_base")
else:
    base = tlcourse.models.backbone("mobilenet_v2", input_shape=dataset.image_shape)
base.trainable = False
train_features = tlcourse.train.extract_features(base, dataset, split="train", verbose=0).features
test_features = tlcourse.train.extract_features(base, dataset, split="test", verbose=0).features
print(
    f"base: {base.name}, {base.count_params():,} parameters (frozen), {train_features.shape[1]} features per image"
)
print(f"features: train {train_features.shape}, test {test_features.shape}")

# %% [markdown]
# ## 4. Two heads with the functional API
#
# A `keras.Sequential` model has one output; several outputs need the **functional API**: call layers on
# tensors, then `keras.Model(inputs, outputs)`. In Keras 3 the outputs can be a **dict**, and its keys name
# the outputs. The same names then key everything else: the losses, the loss weights, the metrics and the
# labels given to `fit`. Each head is a `Dense` layer with no activation: logits, as everywhere in the course.


# %%
def build_heads(tasks, *, shared_units=SHARED_UNITS):
    """Cached features in, a dict of logits out: a shared Dense layer, then one Dense head per task."""
    features = keras.Input(shape=(train_features.shape[1],), name="features")
    shared = keras.layers.Dense(shared_units, activation="relu", name="shared")(features)
    shared = keras.layers.Dropout(0.3, name="dropout")(shared)
    outputs = {task: keras.layers.Dense(tasks[task], name=task)(shared) for task in tasks}
    return keras.Model(
        features, outputs, name="multi_task" if len(tasks) > 1 else f"only_{next(iter(tasks))}"
    )


def compile_heads(model, loss_weights=None):
    tasks = list(model.output.keys())
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=3e-3),
        loss={task: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for task in tasks},
        loss_weights=loss_weights or {task: 1.0 for task in tasks},
        metrics={task: ["accuracy"] for task in tasks},
    )
    return model


tlcourse.reseed(0)
multi_task = compile_heads(build_heads(TASKS))
multi_task.summary()

# %% [markdown]
# The summary shows one input, the shared layer, and two heads side by side, both fed by it. Now training:
# the labels are a dict with the same keys as the outputs. `fit` reports the weighted total `loss`, each
# task's own loss (`class_loss`, `group_loss`) and each task's metric (`class_accuracy`, `group_accuracy`).

# %%
import tensorflow as tf

epochs = EPOCHS or 5 * budget.epochs


def batches(features, task_labels, tasks, *, seed):
    """(features, {task: labels}) batches, reshuffled every epoch."""
    data = tf.data.Dataset.from_tensor_slices((features, {task: task_labels[task] for task in tasks}))
    return data.shuffle(len(features), seed=seed).batch(budget.batch_size).prefetch(tf.data.AUTOTUNE)


history = multi_task.fit(batches(train_features, labels["train"], TASKS, seed=0), epochs=epochs, shuffle=False,
                          verbose=2)
print(sorted(history.history))

# %% [markdown]
# At the start each task's loss is about ln(number of classes) — the loss of a uniform guess — so the
# 10- or 37-class task contributes the larger share of the total. Prediction returns a dict too:


# %%
def accuracies(model, features, task_labels):
    logits = model.predict(features, verbose=0)
    return {task: float(np.mean(logits[task].argmax(axis=1) == task_labels[task])) for task in logits}


print(f"initial losses of a uniform guess: class ln({TASKS['class']}) = {np.log(TASKS['class']):.2f}, "
      f"group ln({TASKS['group']}) = {np.log(TASKS['group']):.2f}")  # fmt: skip
print(
    "test accuracy of the multi-task model:",
    {t: f"{a:.1%}" for t, a in accuracies(multi_task, test_features, labels["test"]).items()},
)

# %% [markdown]
# > ⚠️ **Pitfall — names that do not match.** The keys of `loss`, `loss_weights`, `metrics` and of the label
# > dict must be the output names. Keras 3 raises an error for an unknown key, but a list of outputs with a
# > list of losses is matched by *position*, and reordering one of them silently trains each head on the
# > other task's labels. Name the outputs and use dicts everywhere.
#
# ## 5. Multi-task vs. one model per task
#
# Is sharing the cost of a worse model? The fair comparison: for each task, the same architecture with only
# that task's head (its own shared layer, its own base), trained for the **same number of epochs** on the
# same examples, evaluated on the same test set — repeated over the budget's seeds, because one run can
# differ from another by a point or two by luck alone.

# %%
from tqdm.auto import tqdm

_compiled = {}


def train(tasks, seed, loss_weights=None):
    """A freshly initialised model for `tasks`, trained for `epochs` epochs with this seed."""
    # Compiling a new Keras model costs a second or two of tracing, more than training it on cached features.
    # So each kind of model is compiled once and, before each run, gets the random weights of a freshly built
    # twin (drawn with this seed) and a fresh optimizer state: the same as building a new model every time.
    key = (tuple(tasks), tuple(sorted((loss_weights or {}).items())))
    if key not in _compiled:
        model = compile_heads(build_heads(tasks), loss_weights)
        model.optimizer.build(model.trainable_variables)
        _compiled[key] = (model, [v.numpy() for v in model.optimizer.variables])
    model, optimizer_start = _compiled[key]
    tlcourse.reseed(seed)
    model.set_weights(build_heads(tasks).get_weights())
    for variable, value in zip(model.optimizer.variables, optimizer_start, strict=True):
        variable.assign(value)
    model.fit(batches(train_features, labels["train"], tasks, seed=seed), epochs=epochs, shuffle=False, verbose=0)
    return model


single_tasks = {task: {task: TASKS[task]} for task in TASKS}
rows = []
for seed in tqdm(budget.seeds, desc="multi-task vs single-task"):
    for task, accuracy in accuracies(train(TASKS, seed), test_features, labels["test"]).items():
        rows.append({"recipe": "multi-task", "task": task, "seed": seed, "accuracy": accuracy})
    for task, tasks in single_tasks.items():
        accuracy = accuracies(train(tasks, seed), test_features, labels["test"])[task]
        rows.append({"recipe": "single-task", "task": task, "seed": seed, "accuracy": accuracy})

# %%
fig = tlcourse.viz.compare(rows, by="task")
fig.axes[0].set_xlabel("task")
fig.axes[0].set_title(f"Test accuracy, mean ± std over {len(budget.seeds)} seeds ({epochs} epochs each)")
fig

# %%
results = {}
for recipe in ("multi-task", "single-task"):
    results[recipe] = {}
    for task in TASKS:
        values = [r["accuracy"] for r in rows if r["recipe"] == recipe and r["task"] == task]
        results[recipe][task] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)),
                                 "n": len(values)}  # fmt: skip
for task in TASKS:
    m, s = results["multi-task"][task], results["single-task"][task]
    print(f"{task:5s}: multi-task {m['mean']:.3f} ± {m['std']:.3f}   single-task {s['mean']:.3f} ± {s['std']:.3f}"
          f"   difference {100 * (m['mean'] - s['mean']):+.1f} points")  # fmt: skip
gaps = {
    task: abs(results["multi-task"][task]["mean"] - results["single-task"][task]["mean"]) for task in TASKS
}
print(f"multi-task within 3 points of single-task on every task: {all(gap <= 0.03 for gap in gaps.values())}")
course.record("accuracy", results)
course.record("epochs", epochs)

# %% [markdown]
# The bars are the mean test accuracy over the seeds, the whiskers one standard deviation; the printed
# differences are in percentage points; compare each with the standard deviations next to it, which show how
# much two seeds of the *same* recipe differ. The last line answers the question of this section: is one
# multi-task model as good as two single-task models, to within 3 points on each task? (The course's tests
# check it.) When it is, one model did the work of two.
#
# ### What one base instead of two saves
#
# To use the models we put the trained layers back on the frozen base: one model from images to both
# answers, against two single-task models that each carry their own copy of the base.


# %%
def on_images(heads):
    """The frozen base followed by trained heads: an image model with the heads' outputs."""
    image = keras.Input(shape=dataset.image_shape, name="image")
    return keras.Model(image, heads(base(image)), name=f"{heads.name}_on_images")


multi_task_model = on_images(train(TASKS, budget.seeds[0]))
single_task_models = {task: on_images(train(tasks, budget.seeds[0])) for task, tasks in single_tasks.items()}
params = {
    "multi_task": multi_task_model.count_params(),
    "single_task_total": sum(model.count_params() for model in single_task_models.values()),
    "base": base.count_params(),
    "shared_layer": multi_task_model.get_layer("multi_task").get_layer("shared").count_params(),
}
print(
    f"multi-task model:        {params['multi_task']:>12,} parameters (one base + one shared layer + 2 heads)"
)
for task, model in single_task_models.items():
    print(f"single-task '{task}' model: {model.count_params():>10,} parameters")
print(f"two single-task models:  {params['single_task_total']:>12,} parameters — "
      f"{params['single_task_total'] - params['multi_task']:,} more: a second base and a second shared layer")  # fmt: skip
course.record("params", params)

# %% [markdown]
# At prediction time the saving is the same: one pass through the base answers both questions. Here is
# the multi-task model on a few test images — one call, a dict with both answers:

# %%
logits = multi_task_model.predict(x_test[:6], verbose=0)
for i in range(6):
    guess_class, guess_group = logits["class"][i].argmax(), logits["group"][i].argmax()
    print(f"true: {dataset.class_names[y_test[i]]:>18s} / {GROUP_NAMES[GROUP_OF_CLASS[y_test[i]]]:9s}"
          f"   predicted: {dataset.class_names[guess_class]:>18s} / {GROUP_NAMES[guess_group]}")  # fmt: skip

# %% [markdown]
# The two heads answer independently, so they can disagree (a class from one group, a group from another);
# when that matters you can derive the group from the class head instead — or keep both and treat a
# disagreement as a sign that the model is unsure.
#
# ## 6. When multi-task learning hurts: the loss weights
#
# The total loss is `w_class · loss_class + w_group · loss_group`. With Adam, a head's own weights barely care
# about its loss weight: Adam divides each gradient by its recent size, so scaling one task's loss by 0.01
# scales its head's gradients *and* their size alike, and the step stays the same. The weights matter
# where the tasks **meet**: the shared layer follows the sum of both gradients, and a task with a tiny weight
# is drowned out — the shared features then serve the other task only. Let us starve the "class" task.

# %%
sweep = {}
for weight in (0.01, 0.1):
    loss_weights = {"class": weight, "group": 1.0}
    sweep[weight] = accuracies(train(TASKS, budget.seeds[0], loss_weights), test_features, labels["test"])
balanced = {
    r["task"]: r["accuracy"] for r in rows if r["recipe"] == "multi-task" and r["seed"] == budget.seeds[0]
}
sweep[1.0] = balanced
for weight in sorted(sweep):
    print(
        f"w_class = {weight:<5} w_group = 1:  class {sweep[weight]['class']:.3f}   group {sweep[weight]['group']:.3f}"
    )
drop = balanced["class"] - sweep[0.01]["class"]
print(f"starving the class task (w_class = 0.01) costs it {100 * drop:.1f} points; "
      f"the group task changes by {100 * (sweep[0.01]['group'] - balanced['group']):+.1f}")  # fmt: skip
course.record("loss_weights", {str(w): acc for w, acc in sweep.items()})

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.4))
weights = sorted(sweep)
for task in TASKS:
    ax.plot(weights, [sweep[w][task] for w in weights], "o-", label=f"task '{task}'")
ax.axhline(majority, color="gray", linestyle=":", label="group majority baseline")
ax.set_xscale("log")
ax.set_xlabel("loss weight of the 'class' task (group task: 1)")
ax.set_ylabel("test accuracy")
ax.set_title(f"Loss weights decide what the shared layer learns (seed {budget.seeds[0]})")
ax.legend(fontsize=8)
plt.close(fig)
fig

# %% [markdown]
# Read the figure from right to left: as its weight shrinks, the "class" task loses accuracy although its
# own head trained for just as long, because the shared layer it depends on has been shaped by the other
# task. The "group" task hardly moves — it did not need the class task's help. The printed numbers give
# the size of the effect in this run.
#
# > ⚠️ **Pitfall — summing losses of different scales.** Equal weights are not neutral: a 37-class loss starts
# > at ln 37 ≈ 3.6, a 2-class loss at ln 2 ≈ 0.7, and a regression loss in squared pixels could be in the
# > thousands. Look at each task's loss in the training log and choose weights that make the tasks
# > contribute comparably — or learn them: *uncertainty weighting* (Kendall et al., 2018) and *GradNorm*
# > (Chen et al., 2018) adjust the weights during training.
#
# Other ways multi-task learning hurts, and what to do:
#
# - **Unrelated or conflicting tasks** (negative transfer between tasks): if the tasks need different
#   features, sharing forces a compromise. Which tasks help each other is an empirical question (Standley et
#   al., 2020); measure against single-task models as in section 5.
# - **Too little shared capacity:** tasks compete for a small shared layer (try `SHARED_UNITS = 8` in the
#   parameters cell and run the notebook again).
# - **Different amounts of data:** if one task has far more labelled examples, it dominates the shared
#   layers unless its weight (or its sampling rate) is lowered.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/08_multi_task.ipynb): you will derive the second task's labels,
# build a two-head model with named outputs, compile it with dicts of losses and weights, and train it.
#
# ## Summary
#
# - Multi-task learning trains one shared base with one head and one loss per task; the total loss is a
#   weighted sum, and the shared layers follow its gradient.
# - In Keras 3: the functional API with a dict of named outputs, and dicts with the same keys for `loss`,
#   `loss_weights`, `metrics` and the labels.
# - Compared fairly (same epochs, same data, over seeds), one multi-task model can do the work of two
#   single-task models with one base instead of two (the parameter counts printed in section 5). Section 5's
#   last printed line says whether it stayed within 3 points on both tasks in your run; the course's tests
#   check it in the `ci` profile (the Fashion-MNIST stand-in, 3 seeds). For the Oxford-IIIT Pet run of the
#   `full` profile it is what we expect, not something the course measures: breed and species are closely
#   related tasks, the case where hard parameter sharing is known to work well (Caruana, 1997; Ruder, 2017),
#   while which tasks help each other remains an empirical question (Standley et al., 2020).
# - Loss weights decide whom the shared layers serve: a starved task loses accuracy even though its own
#   head trains normally. Choose weights that balance the tasks' losses, and always compare with single-task
#   baselines.
#
# ## Further reading
#
# - Caruana, *Multitask Learning*, Machine Learning 28, 1997. https://doi.org/10.1023/A:1007379606734
# - Ruder, *An Overview of Multi-Task Learning in Deep Neural Networks*, 2017.
#   https://arxiv.org/abs/1706.05098
# - Kendall, Gal & Cipolla, *Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and
#   Semantics*, CVPR 2018. https://arxiv.org/abs/1705.07115
# - Chen, Badrinarayanan, Lee & Rabinovich, *GradNorm: Gradient Normalization for Adaptive Loss Balancing in
#   Deep Multitask Networks*, ICML 2018. https://arxiv.org/abs/1711.02257
# - Standley et al., *Which Tasks Should Be Learned Together in Multi-task Learning?*, ICML 2020.
#   https://arxiv.org/abs/1905.07553
# - Parkhi, Vedaldi, Zisserman & Jawahar, *Cats and Dogs*, CVPR 2012 (the Oxford-IIIT Pet dataset).
#   https://www.robots.ox.ac.uk/~vgg/data/pets/
# - Keras guide *The Functional API* (models with multiple inputs and outputs):
#   https://keras.io/guides/functional_api/
#
# ## Questions
#
# 1. Draw a multi-task model with two heads. Which weights receive gradients from both losses, and which from
#    only one?
# 2. In Keras 3, which four things must be keyed by the output names when you compile and fit a model with a
#    dict of outputs?
# 3. Why must the comparison with single-task models use the same number of epochs, the same examples and
#    several seeds?
# 4. How many parameters did the multi-task model save in your run, and where do they come from?
# 5. With Adam, why does a task's loss weight matter for the shared layer but hardly for the task's own head?
