"""tlcourse.viz: activations against hand-built probes, nested models, plots, the explorer, bad input."""

from __future__ import annotations

import datetime
import io
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import ipywidgets
import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tlcourse import viz  # noqa: E402
from tlcourse.errors import TlcourseError, VizError  # noqa: E402

RNG = np.random.default_rng(0)
IMAGE = RNG.uniform(0, 255, (32, 32, 3)).astype(np.float32)

# The cat in skimage's `chelsea` (300×451 pixels): its face from the brow to the chin and cheek to
# cheek, determined once by eye on the photo drawn with a pixel grid. Outside it: the blurred background
# right of x≈375, the lower-left corner, and the top of the head.
CHELSEA_CAT_BOX = {"top": 40, "bottom": 300, "left": 60, "right": 375}


def _conv_stack(name="base"):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name=f"{name}_conv1")(inputs)
    x = keras.layers.MaxPooling2D(name=f"{name}_pool")(x)
    x = keras.layers.Conv2D(8, 3, dilation_rate=2, name=f"{name}_conv2")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.Model(inputs, x, name=name)


@pytest.fixture(scope="module")
def plain():
    keras.utils.set_random_seed(1)
    base = _conv_stack("plain")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
    return keras.Model(base.inputs, keras.layers.Dense(3, name="head")(x), name="plain_classifier")


@pytest.fixture(scope="module")
def nested_functional():
    keras.utils.set_random_seed(2)
    base = _conv_stack("inner")
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="outer"), base


@pytest.fixture(scope="module")
def nested_sequential():
    keras.utils.set_random_seed(3)
    base = keras.Sequential(
        [
            keras.layers.Conv2D(4, 3, activation="relu", name="seq_conv1"),
            keras.layers.MaxPooling2D(name="seq_pool"),
            keras.layers.Conv2D(6, 3, activation="relu", name="seq_conv2"),
        ],
        name="seq_base",
    )
    base.build((None, 32, 32, 3))  # built from a shape: Sequential.input raises, .inputs works
    outer = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255.0),
            base,
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ],
        name="seq_outer",
    )
    return outer, base


@pytest.fixture(scope="module")
def mobilenet():
    keras.utils.set_random_seed(4)
    return keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=5)


# --------------------------------------------------------------------------- activations
def test_activations_equal_a_hand_built_probe(plain):
    names = ["plain_conv1", "plain_pool", "plain_relu"]
    maps = viz.feature_maps(plain, IMAGE, layers=names)
    probe = keras.Model(plain.inputs[0], [plain.get_layer(n).output for n in names])
    expected = probe(IMAGE[None])
    assert list(maps) == names
    for name, value in zip(names, expected, strict=False):
        assert maps[name].shape == tuple(value.shape[1:])
        np.testing.assert_allclose(maps[name], np.asarray(value)[0], rtol=1e-5, atol=1e-5)
    assert [maps.info[n].shape for n in names] == [(30, 30, 4), (15, 15, 4), (11, 11, 8)]


def test_base_nested_in_a_functional_classifier(nested_functional):
    outer, base = nested_functional
    names = ["inner_conv1", "inner_relu"]
    maps = viz.feature_maps(outer, IMAGE, layers=names)
    hand = keras.Model(base.inputs[0], [base.get_layer(n).output for n in names])(IMAGE[None] / 255.0)
    for name, value in zip(names, hand, strict=False):
        np.testing.assert_allclose(maps[name], np.asarray(value)[0], rtol=1e-5, atol=1e-5)


def test_sequential_base_nested_in_a_sequential(nested_sequential):
    outer, base = nested_sequential
    lonely = keras.Sequential([keras.layers.Conv2D(2, 3, name="lonely_conv")])
    lonely.build((None, 32, 32, 3))
    with pytest.raises((AttributeError, ValueError)):
        lonely.input  # noqa: B018 - the Keras 3 trap viz works around with .inputs[0]
    assert viz.feature_maps(lonely, IMAGE)["lonely_conv"].shape == (30, 30, 2)
    maps = viz.feature_maps(outer, IMAGE)
    assert list(maps) == ["seq_conv1", "seq_pool", "seq_conv2"]
    x = IMAGE[None] / 255.0
    for layer in base.layers:
        x = layer(x)
        np.testing.assert_allclose(maps[layer.name], np.asarray(x)[0], rtol=1e-5, atol=1e-5)


def test_receptive_fields_follow_kernels_strides_and_dilations(plain):
    maps = viz.feature_maps(plain, IMAGE, layers=["plain_conv1", "plain_pool", "plain_conv2", "plain_relu"])
    # 3×3 conv: 3; 2×2 pool: 3+1 = 4, jump 2; 3×3 conv dilated by 2 at jump 2: 4 + 2·2·2 = 12.
    assert [maps.info[n].receptive_field for n in maps] == [(3, 3), (4, 4), (12, 12), (12, 12)]
    inputs = keras.Input((16, 16, 3))
    small, large = (
        keras.layers.Conv2D(2, 3, padding="same")(inputs),
        keras.layers.Conv2D(2, 5, padding="same")(inputs),
    )
    merged = keras.layers.Add(name="merged")([small, large])
    branches = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="after")(merged))
    maps = viz.feature_maps(branches, IMAGE[:16, :16], layers=["merged", "after"])
    assert [maps.info[n].receptive_field for n in maps] == [(5, 5), (7, 7)]  # the larger branch counts


def test_default_layers_walk_down_the_resolutions_from_the_first_convolution(mobilenet):
    maps = viz.feature_maps(mobilenet, RNG.uniform(0, 255, (96, 96, 3)))
    names = list(maps)
    assert names[0] == "Conv1_relu" and names[-1] == "out_relu"  # after the first convolution's activation
    sides = [maps.info[n].shape[0] for n in names]
    assert sides == [48, 24, 12, 6, 3]  # the last layer of each resolution, none twice
    assert all(n.startswith("block_") for n in names[1:-1]) and not any("BN" in n for n in names)
    fields = [maps.info[n].receptive_field[0] for n in names]
    assert fields == sorted(fields) and fields[0] == 3


def test_figure_has_one_row_per_layer_most_active_channels_first_and_skips_all_zero_ones():
    inputs = keras.Input((16, 16, 3))
    conv = keras.layers.Conv2D(5, 3, activation="relu", name="conv")
    model = keras.Model(inputs, conv(inputs))
    kernel, bias = conv.get_weights()
    kernel[..., 2] = 0.0
    bias[2] = 0.0
    kernel[..., 0] = np.abs(kernel[..., 0]) * 10  # the most active channel for a positive image
    conv.set_weights([kernel, bias])
    maps = viz.feature_maps(model, RNG.uniform(0, 1, (16, 16, 3)), max_channels=3)
    assert (
        maps.channels["conv"][0] == 0 and 2 not in maps.channels["conv"] and len(maps.channels["conv"]) == 3
    )
    image_row, conv_row = maps.figure.axes
    title = conv_row.get_title(loc="left")
    assert "conv" in title and "14×14×5" in title and "receptive field 3 px" in title
    assert "3 of 5 channels (1 all-zero skipped)" in title
    grid = conv_row.get_images()[0].get_array()  # three 80-px tiles, 4-px gaps, in ranked order
    assert grid.shape == (80, 3 * 80 + 2 * 4, 3)
    expected = viz._normalise(maps["conv"][..., maps.channels["conv"][1]])
    bottom_right = np.asarray(matplotlib.colormaps["viridis"](expected[-1, -1])[:3]) * 255
    np.testing.assert_allclose(grid[-1, 2 * 80 + 4 - 1], bottom_right, atol=1.5)
    assert image_row.get_title() == "input 16×16"
    assert maps.figure.get_suptitle().startswith("Feature maps of")
    assert maps._repr_png_().startswith(b"\x89PNG") and repr(maps).startswith(
        "FeatureMaps of these layers:\n  conv  ·  14×14×5"
    )


def test_plots_draw_on_the_axes_or_figure_they_are_given(plain):
    fig = plt.figure()
    left, right = fig.subplots(1, 2)
    rows = [{"recipe": "a", "fraction": 1, "accuracy": 0.5}]
    assert viz.compare(rows, ax=left) is left and len(left.patches) == 1
    model = _argmax_model()
    assert viz.confusion(model, (np.eye(3), np.arange(3)), ax=right) is right and right.images
    top, bottom = plt.figure().subfigures(2, 1)
    maps = viz.feature_maps(plain, IMAGE, fig=top)
    assert maps.figure is top and top.axes
    assert viz.history({"loss": [1.0, 0.5]}, fig=bottom) is bottom
    plt.close("all")


# --------------------------------------------------------------------------- bad input
def test_unknown_layer_lists_the_valid_ones(plain):
    with pytest.raises(VizError) as err:
        viz.feature_maps(plain, IMAGE, layers=["plain_conv"])
    assert "plain_conv1" in err.value.hint and "plain_relu" in err.value.hint


def test_layer_without_spatial_output_says_which_have_maps(plain):
    with pytest.raises(VizError) as err:
        viz.feature_maps(plain, IMAGE, layers=["head"])
    assert "no spatial feature maps" in err.value.message and "plain_conv1" in err.value.hint


def test_wrong_size_and_channels_are_converted_with_a_note(plain, capsys):
    grey_big = RNG.uniform(0, 255, (64, 48)).astype(np.float32)
    maps = viz.feature_maps(plain, grey_big, layers=["plain_conv1"])
    note = capsys.readouterr().out
    assert "grey → RGB" in note and "64×48 → 32×32" in note
    assert maps["plain_conv1"].shape == (30, 30, 4)
    with pytest.raises(VizError, match=r"takes 3-channel images, got \(32, 32, 2\)"):
        viz.feature_maps(plain, np.zeros((32, 32, 2)))
    with pytest.raises(VizError, match=r"got \(2, 32, 32, 3\)") as err:
        viz.feature_maps(plain, np.zeros((2, 32, 32, 3)))
    assert "images[0]" in err.value.hint
    assert viz.feature_maps(plain, np.zeros((1, 32, 32, 3)))["plain_conv1"].shape == (30, 30, 4)


def test_an_image_file_is_read_by_its_path(plain, tmp_path):
    from PIL import Image

    Image.fromarray(IMAGE.astype(np.uint8)).save(tmp_path / "noise.png")
    from_file = viz.feature_maps(plain, tmp_path / "noise.png", layers=["plain_conv1"])
    from_array = viz.feature_maps(plain, IMAGE.astype(np.uint8), layers=["plain_conv1"])
    np.testing.assert_allclose(from_file["plain_conv1"], from_array["plain_conv1"], atol=1e-5)


def test_never_built_and_subclassed_models_raise_with_a_hint():
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3)])
    with pytest.raises(VizError) as err:
        viz.feature_maps(unbuilt, IMAGE)
    assert "never built" in err.value.message and "keras.Input" in err.value.hint

    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    custom = Custom()
    custom(IMAGE[None])
    with pytest.raises(VizError, match="subclassed"):
        viz.feature_maps(custom, IMAGE)
    assert issubclass(VizError, TlcourseError)


# --------------------------------------------------------------------------- filters and Grad-CAM
def _red_detector():
    """A CNN whose class 0 score is the amount of red: Grad-CAM for class 0 must point at red pixels."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(2, 1, activation="relu", name="colours")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("colours").set_weights(
        [np.array([[[[1, 0], [-1, 0], [-1, 1]]]], "float32"), np.zeros(2, "float32")]
    )
    model.get_layer("logits").set_weights([np.array([[1, -1], [-1, 1]], "float32"), np.zeros(2, "float32")])
    return model


def test_grad_cam_points_at_the_evidence_also_when_nested():
    detector = _red_detector()
    image = np.zeros((32, 32, 3), np.float32)
    image[:, :, 2] = 0.05  # a faint blue background
    image[20:28, 4:12] = (1.0, 0.0, 0.0)  # a red square
    cam = viz.grad_cam(detector, image, class_index=0)
    row, col = cam.peak
    assert 20 <= row < 28 and 4 <= col < 12
    logits = np.asarray(detector(image[None]))[0]
    assert cam.class_index == 0 and cam.layer == "colours"
    assert np.isclose(cam.probability, np.exp(logits[0]) / np.exp(logits).sum())
    assert len(cam.figure.axes) == 4  # image, heatmap (+ colour bar), overlay
    assert "Grad-CAM for class 0" in cam.figure.get_suptitle()

    inputs = keras.Input((32, 32, 3))
    nested = keras.Model(inputs, detector(inputs), name="wrapper")
    again = viz.grad_cam(nested, image, class_names=["red", "blue"])
    assert again.class_name == "red"
    np.testing.assert_allclose(again.heatmap, cam.heatmap, atol=1e-6)
    with pytest.raises(VizError, match="out of range"):
        viz.grad_cam(detector, image, class_index=5)


def _lite0():
    try:
        from tlcourse import models

        return models.imagenet_classifier("efficientnet_lite0")
    except (ImportError, AttributeError) as err:
        pytest.skip(f"tlcourse.models.imagenet_classifier is not available yet: {err}")
    except TlcourseError as err:
        pytest.skip(f"the offline EfficientNet-Lite0 weights could not be prepared here: {err}")


def test_grad_cam_on_chelsea_with_lite0_peaks_inside_the_cat():
    import skimage.data

    model = _lite0()
    chelsea = skimage.data.chelsea()
    cam = viz.grad_cam(model, chelsea)
    assert "cat" in (cam.class_name or "").lower()
    assert cam.heatmap.shape == chelsea.shape[:2]  # the classifier takes any size and resizes inside
    row, col = cam.peak
    box = CHELSEA_CAT_BOX
    assert box["top"] <= row < box["bottom"] and box["left"] <= col < box["right"], (row, col)


# --------------------------------------------------------------------------- plots
class _CombinedHistory:
    def __init__(self):
        self.history = {
            "loss": [1.0, 0.7, 0.6, 0.4, 0.3],
            "val_loss": [1.1, 0.9, 0.8, 0.7, 0.7],
            "accuracy": [0.4, 0.6, 0.7, 0.8, 0.9],
            "val_accuracy": [0.3, 0.5, 0.6, 0.7, 0.7],
        }
        self.stage_boundaries = [3]


def test_history_marks_stage_boundaries():
    fig = viz.history(_CombinedHistory(), stage_names=["head", "fine-tuning"])
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    for ax in fig.axes:
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == ax.get_title()
        vertical = [line for line in ax.lines if list(line.get_xdata()) == [3.5, 3.5]]
        assert len(vertical) == 1
        assert len(ax.lines) == 3  # train, validation, boundary
        assert "fine-tuning" in [t.get_text() for t in ax.texts]
    plain_dict = viz.history({"loss": [1.0, 0.5]})
    assert len(plain_dict.axes) == 1
    keras_history = keras.callbacks.History()
    keras_history.history = {"loss": [1.0, 0.5], "val_loss": [1.2, 0.6]}
    assert len(viz.history(keras_history).axes[0].lines) == 2
    with pytest.raises(VizError):
        viz.history([1, 2, 3])


def test_compare_draws_mean_and_std_per_recipe_and_fraction():
    rows = []
    for recipe, base in (("scratch", 0.4), ("feature extraction", 0.7), ("fine-tuning", 0.8)):
        for fraction in (0.1, 1.0):
            for seed, delta in enumerate((-0.05, 0.0, 0.05)):
                rows.append(
                    {
                        "recipe": recipe,
                        "fraction": fraction,
                        "seed": seed,
                        "accuracy": base + fraction / 10 + delta,
                        "wall_time": 1.0,
                        "trainable_params": 10,
                    }
                )
    fig = viz.compare(rows)
    ax = fig.axes[0]
    assert len(ax.patches) == 6
    heights = sorted(round(p.get_height(), 4) for p in ax.patches)
    assert heights == sorted([0.41, 0.5, 0.71, 0.8, 0.81, 0.9])
    error_bars = [c for c in ax.containers if hasattr(c, "has_yerr") and c.has_yerr]
    assert len(error_bars) == 3
    segments = error_bars[0].lines[2][0].get_segments()
    assert np.isclose(segments[0][1][1] - segments[0][0][1], 2 * np.std([-0.05, 0, 0.05], ddof=1))
    assert ax.get_xlabel() == "fraction" and "mean ± std over 3 seed" in ax.get_title()

    class Comparison:  # what tlcourse.train.compare returns: the rows as .rows
        pass

    comparison = Comparison()
    comparison.rows = rows
    assert len(viz.compare(comparison).axes[0].patches) == 6
    with pytest.raises(VizError, match="needs the columns"):
        viz.compare([{"recipe": "a", "fraction": 1}])


def _argmax_model(classes=3):
    model = keras.Sequential([keras.Input((classes,)), keras.layers.Dense(classes, use_bias=False)])
    model.layers[0].set_weights([np.eye(classes, dtype="float32") * 5])
    return model


def test_confusion_counts_match_predictions():
    model = _argmax_model()
    predicted = np.array([0, 0, 1, 2, 2, 2, 1, 0])
    truth = np.array([0, 1, 1, 2, 2, 0, 1, 0])
    x = np.eye(3, dtype="float32")[predicted]
    data = tf.data.Dataset.from_tensor_slices((x, truth)).batch(3)
    fig = viz.confusion(model, data, class_names=["a", "b", "c"])
    ax = fig.axes[0]
    expected = np.zeros((3, 3), int)
    np.add.at(expected, (truth, predicted), 1)
    written = np.array([int(t.get_text()) for t in ax.texts]).reshape(3, 3)
    np.testing.assert_array_equal(written, expected)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted label", "True label")  # scikit-learn's display
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert "accuracy 0.750 on 8" in ax.get_title()
    assert len(fig.axes) == 2  # matrix + colour bar


def test_predictions_show_the_most_confident_mistakes_first():
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, use_bias=False)]
    )
    model.layers[-1].set_weights([np.stack([np.ones(16), -np.ones(16)], axis=1).astype("float32")])
    brightness = np.array([0.9, 0.1, -0.5, -0.2, 0.4, -0.8], "float32")  # > 0 → class 0
    x = np.ones((6, 4, 4, 1), "float32") * brightness[:, None, None, None]
    y = np.array([1, 1, 1, 1, 0, 1])  # mistakes: 0 (very confident), 1 (barely)
    fig = viz.predictions(model, (x, y), class_names=["bright", "dark"], n=4)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 4
    assert titles[0].startswith("✗ pred: bright") and "true: dark" in titles[0]
    assert titles[1].startswith("✗ pred: bright") and titles[2].startswith("✓")
    assert matplotlib.colors.same_color(fig.axes[0].title.get_color(), "crimson")
    assert "2 of 6 wrong" in fig.get_suptitle()
    first = viz.predictions(model, (x, y), worst=False, n=6)
    assert len(first.axes) == 6


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embeddings_colour_by_class_and_mark_by_domain(method):
    features = np.concatenate([RNG.normal(0, 1, (30, 8)), RNG.normal(4, 1, (30, 8))])
    labels = np.tile([0, 1, 2], 20)
    domains = np.repeat([0, 1], 30)
    fig = viz.embeddings(
        features,
        labels,
        domains=domains,
        method=method,
        class_names=["a", "b", "c"],
        domain_names=["source", "target"],
    )
    ax = fig.axes[0]
    assert len(ax.collections) == 6  # 3 classes × 2 domains
    markers = {c.get_paths()[0].vertices.shape for c in ax.collections}
    assert len(markers) == 2
    assert len(ax.get_legend().get_texts()) == 2  # domains (the class legend is an extra artist)
    assert "marker = domain" in ax.get_title() and ax.get_xlabel() in ("PC 1", "t-SNE 1")
    with pytest.raises(VizError):
        viz.embeddings(features, labels[:10])


def test_augmentations_shows_original_and_n_versions():
    image = np.zeros((16, 16, 3), np.float32)
    image[:, :4] = 255.0  # bright on the left: a horizontal flip moves it right
    fig = viz.augmentations(keras.layers.RandomFlip("horizontal"), image, n=7, seed=0)
    grid = fig.axes[0].get_images()[0].get_array()
    assert grid.shape == (2 * 112 + 4, 5 * 112 + 4 * 4, 3)  # 8 tiles in rows of 5
    tiles = [grid[r * 116 : r * 116 + 112, c * 116 : c * 116 + 112] for r in range(2) for c in range(5)][:8]
    flipped = [float(tile[-20:, -28:].mean()) > 200 for tile in tiles]  # bright bottom-right corner
    assert not flipped[0] and any(flipped[1:]) and not all(flipped[1:])
    assert "7 random versions" in fig.axes[0].get_title()


def test_figures_are_returned_not_left_open_in_pyplot(plain):
    before = set(plt.get_fignums())
    viz.history({"loss": [1.0, 0.5]})
    viz.feature_maps(plain, IMAGE)
    assert set(plt.get_fignums()) == before  # so Jupyter shows each figure once, as the cell's value
    for fig in (viz.history({"loss": [1.0]}), viz.compare([{"recipe": "a", "fraction": 1, "accuracy": 1}])):
        assert fig.get_size_inches()[0] <= viz.FIGURE_WIDTH


# --------------------------------------------------------------------------- explorer
def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _upload(widget, name: str, content: bytes) -> None:
    """What the browser sends when a file is picked: ipywidgets 8 sets ``value``; 7 sets ``metadata`` and
    ``data`` and then bumps a counter, from which the kernel side computes the read-only ``value``."""
    if ipywidgets.__version__.startswith("7."):
        widget.metadata = [{"name": name, "type": "image/png", "size": len(content), "lastModified": 0}]
        widget.data = [content]
        widget._counter += 1
    else:
        now = datetime.datetime.now(datetime.timezone.utc)
        file = {"name": name, "type": "image/png", "size": len(content), "last_modified": now}
        widget.value = ({**file, "content": memoryview(content)},)


def test_explorer_updates_in_place_when_widgets_change(nested_functional):
    outer, base = nested_functional
    images = {"noise": IMAGE, "ramp": np.linspace(0, 255, 32 * 32 * 3, dtype="float32").reshape(32, 32, 3)}
    explorer = viz.FeatureMapExplorer(outer, images=images)
    assert explorer.layer_names == ["inner_conv1", "inner_pool", "inner_conv2", "inner_relu"]  # no BN
    assert {"chelsea", "coffee", "noise", "ramp"} <= set(explorer.images)
    assert explorer.activations("chelsea")["inner_conv1"].shape == (30, 30, 4)  # resized to the 32×32 input
    explorer.image_dropdown.value = "noise"
    first = bytes(explorer.view.value)
    assert first.startswith(b"\x89PNG") and "inner_conv1" in explorer.header.value

    explorer.layer_dropdown.value = "inner_conv2"
    assert explorer.depth_slider.value == 2 and bytes(explorer.view.value) != first
    assert "inner_conv2" in explorer.header.value and "page 1/1" in explorer.header.value

    explorer.depth_slider.value = 3
    assert explorer.layer_dropdown.value == "inner_relu"
    assert "receptive field 12 px" in explorer.header.value
    shown = bytes(explorer.view.value)
    explorer.next_button.click()  # 8 channels fit on one page: the page turns round to itself
    assert explorer.page == 0 and "page 1/1" in explorer.header.value

    explorer.image_dropdown.value = "ramp"
    assert bytes(explorer.view.value) != shown and explorer.page == 0
    expected = keras.Model(base.inputs[0], base.get_layer("inner_relu").output)(images["ramp"][None] / 255.0)
    np.testing.assert_allclose(explorer.activations()["inner_relu"], np.asarray(expected)[0], atol=1e-5)
    assert set(explorer._maps) == {explorer.image_dropdown.options[0], "noise", "ramp", "chelsea"}

    from PIL import Image

    upload = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(upload, format="PNG")
    _upload(explorer.upload, "grey.png", upload.getvalue())
    assert explorer.image_dropdown.value == "upload: grey.png"
    assert explorer.activations()["inner_relu"].shape == (11, 11, 8)
    assert _png_size(bytes(explorer.view.value))[0] > 200
    _upload(explorer.upload, "notes.png", b"not an image")
    assert "Could not read upload: notes.png" in explorer.header.value


def test_explorer_pages_through_channels_and_shows_in_jupyter(plain):
    explorer = viz.FeatureMapExplorer(plain)
    explorer.PER_PAGE = 3
    explorer.depth_slider.value = explorer.layer_names.index("plain_conv2")
    assert "page 1/3" in explorer.header.value
    explorer.next_button.click()
    explorer.next_button.click()
    explorer.next_button.click()
    assert explorer.page == 0
    explorer.previous_button.click()
    assert "page 3/3" in explorer.header.value
    from IPython.core.formatters import DisplayFormatter

    bundle, _ = DisplayFormatter().format(explorer)  # what Jupyter (and Colab's ipywidgets 7) displays
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    assert "FeatureMapExplorer of 'plain_classifier'" in bundle["text/plain"]
    with pytest.raises(VizError, match="no layer with spatial feature maps"):
        viz.FeatureMapExplorer(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


def test_history_reads_tlcourse_train_history_directly():
    from tlcourse.train import History

    h = History(
        {"loss": [1.0, 0.6, 0.5, 0.4], "val_loss": [1.1, 0.8, 0.7, 0.6]},
        stage_boundaries=[0, 2],
        stages=["stage 1: head", "stage 2: top 10"],
    )
    fig = viz.history(h)
    (ax,) = fig.axes
    lines = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert [line.get_xdata()[0] for line in lines] == [2.5]
    assert "stage 2: top 10" in [t.get_text() for t in ax.texts]
    assert "2 stages" in fig.get_suptitle()
