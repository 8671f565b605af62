# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/08_multi_task.ipynb)
#
# # 08 · Multi-task learning — exercises: one base, two heads
#
# Four tasks on the core move of multi-task learning: **derive** a second task's labels from the
# first, **build** a model with one shared base and two named heads, **compile** it with a dict of
# losses and loss weights, and **train** it until both heads classify held-out images well.
# About 30 minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at the objects you built (the labels, the models), not at the text of your
# code: any correct answer passes. The lesson to read first is `notebooks/08_multi_task.ipynb`.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %%
import tlcourse

course = tlcourse.setup("08")
budget = course.budget

# %% [markdown]
# The data are Fashion-MNIST's 10 classes (online and offline), and the base is the small CNN that
# lesson 01 pretrained on classes 0–4, cut before its dense layers: 28×28×3 images in, 128 features
# out. It is already frozen.

# %%
import keras  # after tlcourse.setup(): it quiets TensorFlow's native start-up logs first
import numpy as np

data = tlcourse.data.load("fashion_mnist")
x_train, y_train = data.arrays("train")
source = tlcourse.models.source_model()
base = keras.Model(source.inputs, source.get_layer("gap").output, name="pretrained_base")
base.trainable = False
print(data)
print("classes:", data.class_names)

# %% [markdown]
# ## 08.1 Derive the second task's labels
#
# The second task sorts every item into a department: **0 = clothing, 1 = footwear, 2 = bag**.
# Sandals, sneakers and ankle boots are footwear, the bag is a bag, everything else is clothing.
#
# Make `group_of_class`: a NumPy array of 10 integers, where `group_of_class[c]` is the group of
# class `c` (the class ids are the positions in `data.class_names`). Then the group labels of any
# array of class labels `y` are simply `group_of_class[y]`.

# %%
# BEGIN SOLUTION
department = {"Sandal": 1, "Sneaker": 1, "Ankle boot": 1, "Bag": 2}
group_of_class = np.array([department.get(name, 0) for name in data.class_names])
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("08.1")

# %% [markdown]
# ## 08.2 One shared base, two named heads
#
# Write `build_multi_task(base)` that returns a functional Keras model:
#
# - input: images of the base's input shape (`base.inputs[0].shape[1:]`);
# - the frozen `base` (called with `training=False`), then **one** shared
#   `keras.layers.Dense(64, activation="relu", name="shared")` layer;
# - two heads on top of that same shared layer: `Dense(10, name="class")` and
#   `Dense(3, name="group")`, no activation (logits);
# - outputs as a **dict**: `{"class": ..., "group": ...}`.
#
# The check calls your function with a small stand-in base of its own, so use the `base` argument,
# not the global one.


# %%
def build_multi_task(base):
    # BEGIN SOLUTION
    images = keras.Input(shape=base.inputs[0].shape[1:])
    features = base(images, training=False)
    shared = keras.layers.Dense(64, activation="relu", name="shared")(features)
    outputs = {
        "class": keras.layers.Dense(10, name="class")(shared),
        "group": keras.layers.Dense(3, name="group")(shared),
    }
    return keras.Model(images, outputs, name="multi_task")
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("08.2")

# %% [markdown]
# ## 08.3 Compile with a dict of losses and loss weights
#
# Write `compile_multi_task(model)` that compiles a two-head model like yours and returns it:
#
# - an Adam optimizer (`learning_rate=3e-3` works well here);
# - `loss`: a dict with one loss per output name; the heads output logits and the labels are
#   integers, so each is `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`;
# - `loss_weights`: a dict with a positive weight per output name (1.0 each is a fine start);
# - `metrics`: a dict `{"class": ["accuracy"], "group": ["accuracy"]}`.


# %%
def compile_multi_task(model):
    # BEGIN SOLUTION
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=3e-3),
        loss={
            "class": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "group": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"class": 1.0, "group": 1.0},
        metrics={"class": ["accuracy"], "group": ["accuracy"]},
    )
    return model
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("08.3")

# %% [markdown]
# ## 08.4 Train both tasks at once
#
# Build `model` with your two functions on the real `base`, and train it on `x_train` with a **dict**
# of labels, one entry per output: the classes `y_train` and their groups `group_of_class[y_train]`.
# About 15 epochs with `batch_size=budget.batch_size` are enough. The check measures both heads on
# held-out test images: at least 65% for "class" and 85% for "group".

# %%
# BEGIN SOLUTION
keras.utils.set_random_seed(0)
model = compile_multi_task(build_multi_task(base))
history = model.fit(
    x_train,
    {"class": y_train, "group": group_of_class[y_train]},
    epochs=15,
    batch_size=budget.batch_size,
    verbose=0,
)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("08.4")

# %% [markdown]
# ## What next
#
# Try `loss_weights={"class": 0.01, "group": 1.0}` in `compile_multi_task`, train again and compare
# the "class" accuracy: the shared layer now serves the group task, as lesson 08 showed.
