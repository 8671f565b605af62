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
# # 10 · Capstone — plant disease detection
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/10_capstone_plant_disease.ipynb)
#
# **Time:** about 30 minutes for this walk-through, then 60–90 minutes for the exercise notebook, where you
# write the pipeline yourself.
#
# **You will learn:**
# - to run a transfer-learning project end to end on a folder of images: look at the data, set a baseline,
#   extract features, fine-tune with augmentation, and evaluate on the test split exactly once;
# - to choose between models on the validation split, and why the test split must not take part;
# - to look at the mistakes (which classes, which images, where the model looked with Grad-CAM);
# - to save the model as a `.keras` file, load it back and check that it predicts exactly the same;
# - to measure what deployment costs: the model's size and speed as TensorFlow Lite, with and without
#   post-training quantisation.
#
# **Prerequisites:** lessons 01–05 (frozen base + head, cached features, fine-tuning with BatchNorm frozen,
# the pitfalls).

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
IMAGE_SIZE = None  # image side in pixels; None: the budget's (offline: at most 64, the stand-in's own size)
TOP_LAYERS = 10  # layers with weights at the top of the base that fine-tuning unfreezes
FINE_TUNE_LR = 3e-4  # fine-tuning learning rate (the head on cached features uses 1e-2)

# %%
import tlcourse

course = tlcourse.setup("10", profile=PROFILE)  # first: it quiets TensorFlow's start-up logs
budget = course.budget

import time
import warnings

import keras
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import tensorflow as tf
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

# %% [markdown]
# ## 1 · The task
#
# The course's source material names one example of **inductive transfer** again and again: a network
# trained on ImageNet (its 1,000 everyday object classes) is reused to detect plant diseases from photos of
# leaves. The tasks differ, the target has labels, and far fewer of them. The recipe the slides give is: load a
# pretrained network, remove its 1,000-class layer, add a new classifier for the diseases, and train it by
# feature extraction or fine-tuning. This capstone does all of it, with the habits of the earlier lessons.
# Two choices differ from the slides: we use EfficientNet-Lite0 rather than ResNet50 (its real ImageNet
# weights are available offline, and it is much smaller: the cell below counts how much), and, as everywhere
# in this course, the new classifier sits on globally pooled features and outputs **logits** (many older
# tutorials put a `Flatten` + softmax head there; lessons 03 and 05 show why not).

# %%
image_size = IMAGE_SIZE or (min(budget.image_size, 64) if course.offline else budget.image_size)
base = tlcourse.models.backbone("efficientnet_lite0", input_shape=(image_size, image_size, 3))
resnet_params = tlcourse.models.base_info("resnet50").params  # Keras's documented count, without the top
smaller = resnet_params / base.count_params()
print(
    f"ResNet50 {resnet_params:,} weights, EfficientNet-Lite0 {base.count_params():,}: {smaller:.1f}× smaller"
)
course.record("times_smaller_than_resnet50", smaller)

# %% [markdown]
# Online the data is **beans** (Makerere University AI Lab): photos of bean leaves taken in Ugandan fields,
# labelled *angular leaf spot*, *bean rust* or *healthy*. Offline, `tlcourse.data.load("beans")` falls back to
# crops of scikit-image's bundled colour photos, one class per photo. It is the right offline stand-in here
# because it is the only one made of colour photographs, where ImageNet features fit, and several of its classes
# (grass, gravel, brick, tissue) are told apart by texture, as leaf lesions are.
#
# ## 2 · Your own folder of images
#
# At work the images come as files: one sub-folder per class, and ideally one folder per split. The course
# writes its data to disk in that layout, so the rest of the lesson reads a folder exactly as it would read
# yours. PNG keeps the pixels exact.

# %%
data = tlcourse.data.load("beans", image_size=image_size)
folder = tlcourse.env.cache_dir("folders") / f"{data.name}_{image_size}px"
for split in ("train", "val", "test"):
    images, labels = data.arrays(split)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = folder / split / data.class_names[label] / f"{i:05d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            keras.utils.save_img(path, image, scale=False)  # scale=True would stretch each image's contrast
print(f"{folder}: {', '.join(sorted(p.name for p in (folder / 'train').iterdir()))}")

# %% [markdown]
# `keras.utils.image_dataset_from_directory` lists such a folder, decodes the images, resizes them and labels
# each by its sub-folder. By default the labels follow the sub-folders' **alphabetical** order; `class_names`
# fixes the order (here the dataset's own, so label 0 means the same everywhere). With `batch_size=None` it
# gives single images: `cache()` keeps them decoded after the first pass, and only then does the training split
# get shuffled and everything batched, so every epoch sees a new order. (A `cache()` after a shuffle would
# store the first epoch's order and replay it in every epoch; the cell checks that two passes differ.)
# `prefetch` overlaps reading with training.
#
# One trap, met while writing this lesson: `tf.data` fills an in-memory cache during a pass, and a pass
# stopped early — a peek with `next(iter(ds))`, a `take(2)` — before the first complete one left this cache of
# single images holding only the images read so far, and every later epoch saw only those: a first run of this
# lesson trained its head on a few dozen images and scored chance before we caught it.
# So `from_folder` reads each split once, completely, as soon as it builds it; every later read, partial or
# not, then comes from a complete cache.

# %%
class_names = data.class_names


def from_folder(split, *, shuffle):
    ds = keras.utils.image_dataset_from_directory(
        folder / split,
        class_names=class_names,
        image_size=(image_size, image_size),
        batch_size=None,  # single images: cache them decoded, then shuffle, then batch
        shuffle=False,
        verbose=False,
    ).cache()
    count = sum(1 for _ in ds)  # one complete pass fills the cache now, before any partial read
    if shuffle:
        ds = ds.shuffle(count, seed=course.seed)  # after the cache: a new order every epoch
    return ds.batch(budget.batch_size).prefetch(tf.data.AUTOTUNE)


train_ds, val_ds = from_folder("train", shuffle=True), from_folder("val", shuffle=False)
first_pass, second_pass = ([int(y) for _, labels in train_ds for y in labels] for _ in range(2))
print(f"{len(first_pass)} training images per epoch; the second pass in a new order: {first_pass != second_pass}")
course.record("epoch_orders", {"images": len(first_pass), "train_split": data.sizes["train"],
                               "new_order": first_pass != second_pass})  # fmt: skip


def compile_classifier(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,  # XLA's compile time does not pay off in a few short epochs on a CPU (bench 3)
    )
    return model


images, labels = next(iter(train_ds))
print(f"a training batch: images {tuple(images.shape)} {images.dtype.name} in [{float(keras.ops.min(images)):.0f}, "
      f"{float(keras.ops.max(images)):.0f}], labels {tuple(labels.shape)} {labels.dtype.name}")  # fmt: skip

# %% [markdown]
# ## 3 · Explore the data
#
# Before any model: how many images per class and split, and what do they look like? An unbalanced set needs
# other metrics than accuracy; a set whose images look nothing like photos of objects may not suit ImageNet
# features. We only count the **test** files — the test images are not looked at until the end.

# %%
counts = {
    split: np.array([len(list((folder / split / name).glob("*.png"))) for name in class_names])
    for split in ("train", "val", "test")
}
fig, ax = plt.subplots(figsize=(9.5, 3))
positions = np.arange(len(class_names))
for i, (split, count) in enumerate(counts.items()):
    ax.bar(positions + (i - 1) * 0.27, count, width=0.27, label=f"{split} ({count.sum()})")
ax.set_xticks(positions, class_names, rotation=30, ha="right")
ax.set_ylabel("images")
ax.set_title("Images per class and split")
ax.legend()
plt.show()
balance = {split: count.max() / max(count.min(), 1) for split, count in counts.items()}
print("largest / smallest class:", ", ".join(f"{split} {ratio:.2f}" for split, ratio in balance.items()))

# %% [markdown]
# A ratio near 1 means the classes are balanced, so accuracy is a fair summary and chance level is one over the
# number of classes. Now the first training batch, with its labels:

# %%
shown_images = keras.ops.convert_to_numpy(images).astype("uint8")
fig, axes = plt.subplots(2, 8, figsize=(9.5, 3))
for ax, image, label in zip(axes.flat, shown_images, keras.ops.convert_to_numpy(labels), strict=False):
    ax.imshow(image)
    ax.set_title(class_names[label], fontsize=8)
    ax.axis("off")
fig.suptitle(f"Training images, {image_size}×{image_size} px")
plt.show()

# %% [markdown]
# Look for what separates the classes (colour, texture, shape) and for what does not (background, light). The
# model should learn the first and ignore the second; Grad-CAM at the end shows which it did.
#
# > ⚠️ **Pitfall — choosing with the test split.** Every decision below (epochs, learning rate, which model to
# > keep) is made on the **validation** split. Test accuracy measured after a choice made with it is optimistic.
# > The test split is used once, in section 7.
#
# ## 4 · Baseline: a small CNN from scratch
#
# A baseline tells us what transfer buys. We train the course's small CNN (three convolution blocks) from
# random weights on the same folder, for as many epochs as the head and the fine-tuning get together
# (`budget.epochs + budget.fine_tune_epochs`).

# %%
tlcourse.reseed(course.seed)
scratch = tlcourse.models.small_cnn((image_size, image_size, 3), len(class_names), name="scratch_cnn")
compile_classifier(scratch, 1e-3)
scratch_epochs = budget.epochs + budget.fine_tune_epochs
scratch_history = scratch.fit(
    train_ds, validation_data=val_ds, validation_freq=scratch_epochs, epochs=scratch_epochs, shuffle=False, verbose=0
)  # validation_freq: measure the validation split once, after the last epoch
val_acc = {"baseline": scratch_history.history["val_accuracy"][-1]}
print(f"small CNN from scratch ({scratch.count_params():,} weights), {scratch_epochs} epochs: "
      f"validation accuracy {val_acc['baseline']:.3f}")  # fmt: skip

# %% [markdown]
# ## 5 · Feature extraction: frozen base + new head
#
# `base` (section 1) is the pretrained network without its 1,000-class layer: raw RGB in [0, 255] in (the
# preprocessing is inside), one pooled feature vector per image out (its length is printed below), and
# frozen — `base.trainable = False`, proved by an empty `base.trainable_weights`. It does not change while the
# head trains, so its features are computed **once** per image (`tlcourse.train.extract_features` is lesson
# 03's `base.predict` over an unshuffled pass, cached on disk), and a `Dense` head trains on the arrays in
# seconds.


# %%
print(f"{base.name}: trainable tensors {len(base.trainable_weights)}")
# One pass of the frozen base over each split, in a fixed order, so each feature vector keeps its label.
train_f, train_y = tlcourse.train.extract_features(base, from_folder("train", shuffle=False), verbose=0)
val_f, val_y = tlcourse.train.extract_features(base, val_ds, verbose=0)
course.record("feature_rows", {"train": len(train_f), "val": len(val_f), "splits": dict(data.sizes)})
tlcourse.reseed(course.seed)
head = keras.Sequential(
    [
        keras.Input(train_f.shape[1:]),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(len(class_names), name="logits"),
    ]
)
compile_classifier(head, 1e-2)
head_epochs = 10 * budget.epochs  # a head on cached features: many cheap epochs
# The arrays through tf.data: Keras adds a fixed cost to every epoch over NumPy arrays (lesson 01).
train_features = tf.data.Dataset.from_tensor_slices((train_f, train_y)).shuffle(len(train_y), seed=course.seed)
val_features = tf.data.Dataset.from_tensor_slices((val_f, val_y)).batch(256)
head_history = head.fit(
    train_features.batch(budget.batch_size),  # reshuffled every epoch
    validation_data=val_features,
    epochs=head_epochs,
    shuffle=False,  # the dataset shuffles itself; fit's `shuffle` is for arrays
    verbose=0,
)
val_acc["extraction"] = head_history.history["val_accuracy"][-1]
print(
    f"features {train_f.shape}; linear head, {head_epochs} epochs: validation accuracy {val_acc['extraction']:.3f}"
)

# %% [markdown]
# The **extraction model** puts the trained head on the base, as one model that takes images;
# `tlcourse.models.classifier(base, k)` builds the same layers (`Dropout` + `Dense` "logits"), so the trained
# head's weights copy straight over.

# %%
extraction_model = tlcourse.models.classifier(base, len(class_names), name="extraction")
extraction_model.get_layer("logits").set_weights(head.get_layer("logits").get_weights())
compile_classifier(extraction_model, 1e-2)

# %% [markdown]
# ## 6 · Fine-tuning with augmentation, BatchNorm frozen
#
# Fine-tuning starts from the trained head (lesson 04's stage 1) and unfreezes the top `TOP_LAYERS` layers
# with weights of a **fresh copy** of the base at a small learning rate; the extraction model stays as it is.
# The BatchNormalization layers stay frozen: in Keras 3 that is what keeps them in inference mode during
# `fit()` — `training=False` alone is not enough (keras-team/keras#20285). Now that the base itself learns from
# a few hundred images, it can memorise them: **augmentation** layers in front of the base show it a new
# flipped, rotated, zoomed variant of each image every epoch. They are active only in training, so the model
# predicts on the unchanged image.

# %%
tlcourse.reseed(course.seed)
tuned_base = tlcourse.models.backbone("efficientnet_lite0", input_shape=(image_size, image_size, 3))
tuned_base.trainable = True
with_weights = [layer for layer in tuned_base.layers if layer.weights]
top = {
    id(layer)
    for layer in with_weights[-TOP_LAYERS:]
    if not isinstance(layer, keras.layers.BatchNormalization)
}
for layer in tuned_base.layers:
    layer.trainable = id(layer) in top
augment = keras.Sequential(
    [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1), keras.layers.RandomZoom(0.1)],
    name="augmentation",
)
inputs = keras.Input((image_size, image_size, 3))
x = tuned_base(augment(inputs), training=False)
x = keras.layers.Dropout(0.2)(x)
model = keras.Model(inputs, keras.layers.Dense(len(class_names), name="logits")(x), name="fine_tuned")
model.get_layer("logits").set_weights(head.get_layer("logits").get_weights())
schedule = keras.optimizers.schedules.CosineDecay(
    FINE_TUNE_LR, decay_steps=budget.fine_tune_epochs * len(train_ds)
)
compile_classifier(model, schedule)
tune_history = model.fit(
    train_ds, validation_data=val_ds, epochs=budget.fine_tune_epochs, shuffle=False, verbose=0
)
val_acc["fine-tuned"] = tune_history.history["val_accuracy"][-1]
report = tlcourse.introspect.trainable_report(model)
bn_layers = tlcourse.introspect.batchnorm_layers(tuned_base)
print(f"fine-tuned {budget.fine_tune_epochs} epochs: validation accuracy {val_acc['fine-tuned']:.3f}")
print(f"trainable parameters {report.trainable:,} of {report.trainable + report.frozen:,}; "
      f"trainable BatchNorm layers: {sum(layer.trainable for layer in bn_layers)} of {len(bn_layers)}")  # fmt: skip
course.record("trainable_batchnorm", sum(layer.trainable for layer in bn_layers))
course.record("augmentation_layers", [layer.__class__.__name__ for layer in augment.layers])

# %% [markdown]
# The curves of both stages, the head on cached features first, fine-tuning after the dotted line:

# %%
both = {key: head_history.history[key] + tune_history.history[key] for key in ("accuracy", "val_accuracy")}
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(range(1, len(both["accuracy"]) + 1), both["accuracy"], label="training")
ax.plot(range(1, len(both["val_accuracy"]) + 1), both["val_accuracy"], label="validation")
ax.axvline(head_epochs + 0.5, color="grey", linestyle=":")
ax.set_xlabel("epoch (head, then fine-tuning)")
ax.set_ylabel("accuracy")
ax.legend()
plt.show()
change = val_acc["fine-tuned"] - val_acc["extraction"]
print(f"head: training accuracy {head_history.history['accuracy'][-1]:.3f}, validation {val_acc['extraction']:.3f}; "
      f"fine-tuning changed validation accuracy by {100 * change:+.1f} points")  # fmt: skip

# %% [markdown]
# The gap between the training and the validation curve is what the model cannot carry over to images it has
# not seen; a linear head on that many features fits a few hundred training images easily. Fine-tuning gives
# the top of the base the same opportunity, so on a small dataset it can go either way: the change printed
# above is this run's own. Even with thousands of images the gain is small — the Keras guide's cats-vs-dogs
# example moved from 0.9716 to 0.9789 in its published output. That is why we do not assume it helps: we
# measure, and choose on the validation split. Here are the three candidates, and the one we keep:

# %%
for name, acc in val_acc.items():
    print(f"{name:11s} validation accuracy {acc:.3f}")
chosen = max(val_acc, key=lambda name: (val_acc[name], name != "baseline", name == "extraction"))
final_model = {"baseline": scratch, "extraction": extraction_model, "fine-tuned": model}[chosen]
print(f"chosen on validation: {chosen} ({final_model.name})")

# %% [markdown]
# (On a tie we prefer the simpler transfer model: feature extraction.)
#
# ## 7 · The held-out test split, once
#
# The choice is made, so now — and only now — we read the test folder, and evaluate the chosen model on it,
# once. The other two candidates are not evaluated: a test number for each would invite choosing again.

# %%
test_ds = from_folder("test", shuffle=False)
test_x = np.concatenate([x for x, _ in test_ds.as_numpy_iterator()])
test_y = np.concatenate([y for _, y in test_ds.as_numpy_iterator()])
test_logits = keras.ops.convert_to_numpy(final_model(test_x, training=False))  # one batch: call the model
predicted = test_logits.argmax(axis=1)
test_acc = float(np.mean(predicted == test_y))
chance = 1 / len(class_names)
print(f"{chosen}: test accuracy {test_acc:.3f} on {len(test_y)} images (chance {chance:.3f})")
course.record("val_acc", val_acc)
course.record("chosen", chosen)
course.record("test_acc", test_acc)
course.record("test_examples", int(len(test_y)))
course.record("classes", len(class_names))
course.record("dataset", data.name)

# %% [markdown]
# Which classes does the chosen model confuse? Each row of the matrix is a true class, each column a
# predicted one; the diagonal holds the correct answers. scikit-learn draws it from the predictions we have.

# %%
matrix = confusion_matrix(test_y, predicted, labels=range(len(class_names)))
ConfusionMatrixDisplay(matrix, display_labels=class_names).plot(xticks_rotation=45, colorbar=False)
plt.show()
off_diagonal = matrix * (1 - np.eye(len(class_names), dtype=int))
true_class, predicted_class = np.unravel_index(off_diagonal.argmax(), matrix.shape)
mistakes = np.flatnonzero(predicted != test_y)
print(f"{len(mistakes)} mistakes on {len(test_y)} test images; most often: {class_names[true_class]!r} taken "
      f"for {class_names[predicted_class]!r} ({off_diagonal.max()} times)")  # fmt: skip
course.record("mistakes", int(len(mistakes)))

# %% [markdown]
# ## 8 · Grad-CAM on the mistakes
#
# Grad-CAM (Selvaraju et al., 2017) asks which parts of the image made the model pick a class. It takes the
# gradient of that class's logit with respect to the base's last feature maps, averages it over each map to
# get one weight per channel, and sums the maps with those weights (keeping the positive part): bright regions
# hold the evidence for the class. On a mistake it often tells *why*: the model looked at the background, at
# a part shared with another class, or at the right place but read it wrong. We explain the two most confident
# mistakes.

# %%
confidence = keras.ops.convert_to_numpy(keras.ops.softmax(test_logits)).max(axis=1)
shown = mistakes[np.argsort(-confidence[mistakes])][:2] if len(mistakes) else np.arange(1)
for index in shown:  # no mistake at all: explain a correct answer instead
    cam = tlcourse.viz.grad_cam(final_model, test_x[index], class_names=class_names)
    print(f"test image {index}: true {class_names[test_y[index]]!r}, predicted {cam.class_name!r} "
          f"(p = {cam.probability:.2f}); heat peak at {cam.peak}")  # fmt: skip
    display(cam.figure)  # Jupyter's display(): show each figure inside the loop
print(
    f"Grad-CAM maps at layer {cam.layer}: {cam.coarse.shape[0]}×{cam.coarse.shape[1]} cells for {image_size} px"
)

# %% [markdown]
# Read each overlay next to its title: if the heat sits on the object that defines the true class, the model
# looked in the right place and mixed the classes up; if it sits elsewhere, it learned a shortcut. An error
# analysis writes that down with the numbers: how many mistakes, which classes, and what the maps show — the
# exercise asks you for one. The heatmap is only as sharp as the layer's maps: the base shrinks an image 32×
# by its last layer, so small images give a few cells (printed above), and 224 px images give 7 × 7.
#
# ## 9 · Save the model, load it back
#
# A trained model is only useful if it survives the notebook. Keras 3 saves the whole model (architecture,
# weights, and the optimizer's state) in one `.keras` file (a zip archive). The course's own layers — the
# preprocessing inside the base, for example — are registered with Keras, so `keras.models.load_model` finds
# them once `tlcourse` has been imported.

# %%
path = tlcourse.env.cache_dir("models") / "plant_disease.keras"
final_model.save(path)
reloaded = keras.models.load_model(path)
after = keras.ops.convert_to_numpy(reloaded(test_x, training=False))
same = bool(np.array_equal(predicted, after.argmax(axis=1)))
max_diff = float(np.max(np.abs(test_logits - after)))
print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB; same predictions on {len(test_y)} test images: {same}, "
      f"largest logit difference {max_diff:.1e}")  # fmt: skip
course.record("reload_same_predictions", same)
course.record("reload_max_abs_diff", max_diff)

# %% [markdown]
# ## 10 · Size and speed for deployment
#
# A phone app or a small server wants a smaller file and a faster answer. **TensorFlow Lite** (now LiteRT)
# converts the model into one flat file that an interpreter runs on phones and microcontrollers;
# **post-training quantisation** (`optimizations=[tf.lite.Optimize.DEFAULT]`) stores each weight in 8 bits
# instead of 32, with no retraining. We convert the chosen model, and measure the file size, the time for one
# image, and whether the predictions on the test images stay the same. (Leaving out the `optimizations` line
# gives a float32 file that computes what Keras computes; it is about as large as the weights in the `.keras`
# file.)
#
# The converter wants every layer in float32. Under mixed precision (the `full` profile on a GPU) the model
# computes in float16, which it refuses ("'tf.RealDiv' op is neither a custom op nor a flex op"), and the
# course's dry runs met the same refusal for the ImageNet base's preprocessing layer in float32 on a laptop.
# So we always convert a float32 twin: the same layers, each rebuilt from its config with `dtype="float32"`,
# and the same weights.
#
# The converter's input is a **SavedModel**, TensorFlow's format for serving: functions with fixed input
# signatures, and the variables they read. We write one with just what the phone runs: the forward pass at
# inference, for a batch of any size, and the weights behind it. The one-line route,
# `tf.lite.TFLiteConverter.from_keras_model(model)` (or, from Keras 3.13, `model.export(file, format="litert")`),
# writes a SavedModel of the whole Keras model first, every layer's own state included, and converts it to the
# same TFLite model.

# %%
def float32_twin(model):
    """`model` rebuilt layer by layer in float32, with its weights: what TFLite converts."""

    def in_float32(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    twin = keras.models.clone_model(model, clone_function=in_float32, recursive=True)
    twin.set_weights(model.get_weights())
    return twin


export_model = float32_twin(final_model)
print(f"exporting a float32 twin of {final_model.name} (the model computes in "
      f"{keras.mixed_precision.global_policy().compute_dtype})")  # fmt: skip
# The SavedModel: one function, the forward pass at inference, and the tf.Variable behind each Keras weight.
serving = tf.Module()
serving.weights = [weight.value for weight in export_model.weights]
serving.predict = tf.function(
    lambda images: export_model(images, training=False),
    input_signature=[tf.TensorSpec((None, image_size, image_size, 3), tf.float32)],
)
saved_model_dir = path.with_suffix(".savedmodel")
tf.saved_model.save(serving, str(saved_model_dir), signatures=serving.predict)
converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
converter.optimizations = [tf.lite.Optimize.DEFAULT]  # post-training quantisation of the weights to 8 bits
tflite_file = path.with_suffix(".tflite")
tflite_file.write_bytes(converter.convert())

# tf.lite.Interpreter is deprecated in favour of the ai-edge-litert package, which has the same API.
with warnings.catch_warnings(action="ignore", category=UserWarning):
    interpreter = tf.lite.Interpreter(model_path=str(tflite_file))
given, answer = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]


def tflite_predict(batch):
    if interpreter.get_input_details()[0]["shape"][0] != len(batch):
        interpreter.resize_tensor_input(given, batch.shape)
        interpreter.allocate_tensors()
    interpreter.set_tensor(given, batch)
    interpreter.invoke()
    return interpreter.get_tensor(answer)


def timed_ms(predict, images):
    """The median milliseconds for one image, as an app sends them (the first call, a warm-up, left out)."""
    times = []
    for image in images.astype("float32"):
        start = time.perf_counter()
        predict(image[None])
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times[1:]))


lite_logits = tflite_predict(test_x.astype("float32"))  # the whole test split in one call
timed = test_x[: budget.batch_size // 2]  # a few images are enough for a median
lite_ms = timed_ms(tflite_predict, timed)
keras_ms = timed_ms(final_model.predict_on_batch, timed)
sizes = {"keras": path.stat().st_size / 1e6, "tflite": tflite_file.stat().st_size / 1e6}
agree = float(np.mean(lite_logits.argmax(axis=1) == predicted))
lite_diff = float(np.max(np.abs(lite_logits - test_logits)))
print(
    f".keras file           {sizes['keras']:5.1f} MB, {keras_ms:6.1f} ms per image (Keras, predict_on_batch)"
)
print(f"TFLite, 8-bit weights {sizes['tflite']:5.1f} MB, {lite_ms:6.1f} ms per image (TFLite interpreter)")
print(f"{sizes['keras'] / sizes['tflite']:.1f}× smaller; same class as Keras on {agree:.1%} of {len(test_y)} test "
      f"images; largest logit difference {lite_diff:.2f}, for logits spanning {np.ptp(test_logits):.1f}")  # fmt: skip
course.record(
    "deploy", {**sizes, "keras_ms": keras_ms, "tflite_ms": lite_ms, "agree": agree, "max_diff": lite_diff}
)

# %% [markdown]
# The 8-bit file is several times smaller (printed above). Its weights are rounded, so its logits move, and
# the agreement says how many test images changed class as a result. Timings of one image on a shared
# machine are noisy; measure them on the device you deploy to. Quantising the activations as well (with a
# representative dataset) makes integer-only models for microcontrollers and accelerators: see the LiteRT
# guide below.
#
# ## 11 · A new image
#
# Now two new images: a held-out test leaf, and a photo that belongs to no class at all — scikit-image's
# cameraman. The model's input is a batch of `image_size × image_size` RGB images in [0, 255], so the grey photo
# is resized and repeated over three channels first.

# %%
camera = np.repeat(skimage.data.camera()[..., None], 3, axis=-1).astype("float32")
camera = keras.ops.convert_to_numpy(keras.ops.image.resize(camera[None], (image_size, image_size)))[0]
new_images = np.stack([test_x[0].astype("float32"), camera])
probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(reloaded(new_images, training=False)))
for title, p in zip(("held-out test image", "cameraman (no class)"), probabilities, strict=True):
    print(f"{title:21s} → {class_names[p.argmax()]!r} with p = {p.max():.2f}")
print(f"(the test image's true class: {class_names[test_y[0]]!r})")

# %% [markdown]
# > ⚠️ **Pitfall — a classifier always answers.** The cameraman is not a leaf, yet the model names one of its
# > classes, sometimes with high confidence: softmax probabilities say which known class fits best, not whether
# > the input belongs to any. A deployed disease detector needs a guard for that — a "not a leaf" class trained
# > on such images, or a threshold on the confidence checked on out-of-distribution photos.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/10_capstone_plant_disease.ipynb): this time you make the decisions.
# You read a folder with `image_dataset_from_directory`, train your own baseline, build the extraction and
# the fine-tuned model, choose between them on validation, evaluate once on the test split, write a short
# error analysis with Grad-CAM, and save the model — with a check after each step.
#
# ## Summary
#
# - A project runs: folder → explore → baseline → feature extraction → fine-tuning (with augmentation) → one
#   evaluation on the test split → mistakes → export. Each step's number is measured, not assumed.
# - `keras.utils.image_dataset_from_directory` reads one sub-folder per class; pass `class_names` to fix the
#   label order. `cache()` the decoded images *before* shuffling the training split (only it), then batch and
#   `prefetch`.
# - The baseline (a small CNN from scratch) says what transfer buys. Choose models, epochs and learning rates on
#   the validation split; touch the test split once, at the end, with the chosen model.
# - Confusion matrices say *which* classes are mixed up, Grad-CAM shows where the model looked.
# - `model.save("name.keras")` + `keras.models.load_model(...)` round-trips the whole model; check it by
#   comparing predictions. TFLite with post-training quantisation makes the file several times smaller; measure
#   whether predictions change. A classifier always picks one of its classes, even for an image of nothing it knows.
#
# ## Further reading
#
# - The beans dataset: https://www.tensorflow.org/datasets/catalog/beans and https://github.com/AI-Lab-Makerere/ibean
# - Mohanty, Hughes & Salathé, *Using Deep Learning for Image-Based Plant Disease Detection*, Frontiers in
#   Plant Science, 2016. https://doi.org/10.3389/fpls.2016.01419
# - Hughes & Salathé, *An open access repository of images on plant health to enable the development of mobile
#   disease diagnostics* (PlantVillage), 2015. https://arxiv.org/abs/1511.08060
# - Selvaraju et al., *Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization*,
#   ICCV 2017. https://arxiv.org/abs/1610.02391
# - Keras guide *Save, serialize, and export models*: https://keras.io/guides/serialization_and_saving/
# - Keras guide *Transfer learning & fine-tuning*: https://keras.io/guides/transfer_learning/
# - Keras API *Image data loading* (`image_dataset_from_directory`): https://keras.io/api/data_loading/image/
# - LiteRT (TensorFlow Lite) *Post-training quantization*: https://ai.google.dev/edge/litert/models/post_training_quantization
#
# ## Questions
#
# 1. Why do we train a from-scratch baseline at all, when we expect transfer to win?
# 2. In section 6 we picked the final model on the validation split. What would go wrong if we had picked the
#    model with the best *test* accuracy, and then reported that accuracy?
# 3. Grad-CAM shows a mistake whose heat lies on the background. What would you change in the data or the
#    training to fix that kind of mistake?
# 4. The reloaded model gives identical predictions. What does a `.keras` file contain that a
#    `.weights.h5` file does not, and why does `import tlcourse` matter for loading this one?
# 5. Your app must fit in 10 MB and answer in 50 ms on a phone. Would you ship the `.keras` file or the TFLite
#    file of section 10, and what would you measure on the phone before you trust it?
# 6. The model called the cameraman a class it knows. Propose two ways to make a deployed plant-disease app
#    answer "this is not a bean leaf".
