"""Every figure in a lesson's prose is computed by the lesson or listed here with where it comes from.

Markdown cannot format a variable, so a number typed into prose is either a fact with a source (a
dataset's size, a paper's result, an architecture's layer size) or a measurement that will go stale.
This test lists the first kind per lesson; a number that is in neither list fails here, and belongs
in a printed f-string computed by the lesson instead (issue #16 found "5× smaller" where the run gave
6.9×, and "30,000 images" where the split left 27,000).

Ignored: small counts (0-10 without a unit), code spans, section, lesson and exercise numbers, years.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_FIGURE = re.compile(
    r"(?<![\w.−-])(\d[\d,]*(?:\.\d+)?)(\s?(?:%|×|x\b|GB|MB|KB|px|ms|s\b|min\b|h\b|M\b|k\b|million\b))?"
)
_NOT_FIGURES = [
    r"`[^`]*`",  # code spans: arguments and names, not claims
    r"\(?https?://\S+",
    r"^#+\s*\d+(?:\.\d+)?\s*·",  # section headings
    r"\b(?:[Ll]essons?|[Ss]ections?|§|[Ee]xercises?|[Cc]hecks?|[Ss]eeds?|[Tt]able|[Ff]igure|[Ii]ssue)\s*#?\d+(?:\.\d+)?"
    r"(?:\s*(?:,|and|or|–|-)\s*\d+(?:\.\d+)?)*",
    r"\b\d\d\.\d\b",  # exercise ids such as 04.2
    r"\b(?:19|20)\d\d[a-z]?\b",  # years of citations
    r"\[\d+\]",
    r"\*\*Time:\*\*.*",  # the reading time the README's table repeats
]


def prose_figures(source: Path) -> list[str]:
    """The figures in the markdown cells of a jupytext percent-format lesson."""
    figures = []
    for cell in source.read_text().split("\n# %%")[1:]:
        if not cell.startswith(" [markdown]"):
            continue
        for line in cell.split("\n")[1:]:
            line = line[1:].strip() if line.startswith("#") else line
            for pattern in _NOT_FIGURES:
                line = re.sub(pattern, " ", line)
            for match in _FIGURE.finditer(line):
                number, unit = match.group(1).rstrip(","), (match.group(2) or "").strip()
                if not unit and "." not in number and int(number.replace(",", "")) <= 10:
                    continue
                figures.append(f"{number} {unit}".strip())
    return figures


# Figures each lesson states from a source, with the source. Keep it short: anything the lesson can
# compute, it prints instead.
ALLOWED: dict[str, dict[str, str]] = {
    "00": {
        "1,000": "ImageNet's classes (Russakovsky et al., 2015)",
        "1000": "ImageNet's classes",
        "1.28 million": "ImageNet's training photos (Russakovsky et al., 2015)",
        "2.16": "the TensorFlow release whose tf.keras is Keras 3 (its release notes)",
        "3 ×": "the Keras mixed-precision guide's speed-up on modern GPUs (keras.io/api/mixed_precision)",
        "224 px": "the input size ImageNet classifiers were trained at (keras.io/api/applications)",
        "120": "ImageNet's dog breeds",
        "281": "ImageNet's first domestic-cat class index (the check cell tests the prediction against it)",
        "285": "ImageNet's last domestic-cat class index",
        "967": "ImageNet's espresso class index",
    },
    "01": {
        "1,000": "ImageNet's classes (Russakovsky et al., 2015)",
        "1000": "ImageNet's classes",
        "1.28 million": "ImageNet's training photos (Russakovsky et al., 2015)",
        "1.28 M": "ImageNet's training photos",
        "256": "GPUs in Goyal et al. (2017)",
        "500": "GPUs in Zoph et al. (2018)",
        "255": "the range of raw RGB",
        "11 ×": "AlexNet's first kernel size (Krizhevsky et al., 2012)",
        "11": "AlexNet's first kernel size",
        "16": "channels a page of the explorer shows (viz.explore's page size)",
        "50": "the labelled-image counts the prose reasons about",
        "2,000": "hot-dog photos in d2l's fine-tuning section",
        "0.94": "d2l's fine-tuned test accuracy (section Fine-Tuning)",
        "0.85": "d2l's from-scratch test accuracy (section Fine-Tuning)",
    },
    "02": {
        "1000": "ImageNet's classes",
        "28 ×": "Fashion-MNIST's image side",
        "28": "Fashion-MNIST's image side",
        "22": "the volume of IEEE TKDE in the citation",
        "2,000": "a scenario in the quiz",
    },
    "03": {
        "23,262": "cats_vs_dogs' photos (the tfds catalog)",
        "255": "the range of raw RGB",
        "224 ×": "the input size ImageNet classifiers were trained at (keras.io/api/applications)",
        "224": "the input size ImageNet classifiers were trained at",
        "224 px": "the input size ImageNet classifiers were trained at",
        "7 ×": "VGG16's last feature map at 224 px, 7 × 7 × 512 (Simonyan and Zisserman, 2015)",
        "512 ×": "VGG16's last feature map's channels",
        "256": "the Dense(256) head of the seeds' VGG16 tutorials",
        "6.4 million": "7 × 7 × 512 × 256, the product the sentence shows",
        "1280": "EfficientNet-B0/Lite0's feature size (Tan and Le, 2019; the lesson prints it)",
    },
    "04": {
        "100 ×": "the usual fine-tuning learning-rate ratio (Keras guide, Transfer learning & fine-tuning: 1e-5 vs 1e-3)",
        "3,670": "tf_flowers' photos (the tfds catalog)",
        "20285": "the keras-team/keras issue number",
        "0 %": "the frozen layer's map change, asserted to be exactly 0 in tests/claims/test_lesson_04.py",
    },
    "05": {
        "256": "the MLP head's hidden units, set in the cell below it",
        "28": "Fashion-MNIST's image side",
        "28 ×": "Fashion-MNIST's image side",
        "28 px": "Fashion-MNIST's image side",
        "32": "EfficientNet-Lite0's minimum input side (models.base_info)",
        "32 px": "EfficientNet-Lite0's minimum input side",
        "255": "the range of raw RGB",
        "1.0": "the feature move (relative to the features' own size) the claims test asserts against",
        "100 ×": "the usual fine-tuning learning-rate ratio (lesson 04's recipe)",
        "60": "the bias experiment's heads and set sizes, set in its code cell",
        "200": "the bias experiment's repeats, set in its code cell",
        "20": "a number in an end-of-lesson question",
    },
    "08": {
        "37": "Oxford-IIIT Pet's breeds (Parkhi et al., 2012)",
        "0.01": "a loss weight the prose reasons about",
        "3.6": "ln 37, the starting loss of a 37-class softmax",
        "0.7": "ln 2, the starting loss of a 2-class softmax",
        "28": "the volume of Machine Learning in the Caruana (1997) citation",
    },
    "06": {
        "8 ×": "scikit-learn's digits are 8 × 8 scans",
        "28 ×": "MNIST's image side",
        "28": "MNIST's image side",
        "100": "steps a BatchNorm momentum of 0.99 averages over, 1 / (1 - 0.99)",
        "10 %": "chance with ten classes",
        "60,000": "MNIST's training images (Ganin et al., 2016)",
        "52.25 %": "Ganin et al. (2016), Table 2: source only",
        "76.66 %": "Ganin et al. (2016), Table 2: DANN",
        "95.96 %": "Ganin et al. (2016), Table 2: trained on the target",
    },
    "07": {
        "19": "VGG19's name",
        "3 ×": "VGG's 3×3 convolutions",
        "255": "the range of raw RGB",
        "50,000": "ImageNet's validation photos",
        "143.7 M": "VGG19's parameters with its top (keras.io/api/applications)",
        "10 ×": "the fine-tuning learning rate relative to the head's, a recipe the lesson sets",
        "5 %": "the online default of FRACTIONS (the lesson's parameters cell)",
        "25 %": "the online default of FRACTIONS",
        "10 MB": "a budget in an end-of-lesson question",
    },
    "09": {
        "3.3": "BERT's pretraining corpus in billions of words, 0.8 BooksCorpus + 2.5 Wikipedia (Devlin et al., 2019)",
        "384": "all-MiniLM-L6-v2's hidden size (its model card; the lesson's embeddings have this width)",
        "22 M": "all-MiniLM-L6-v2's parameters (its model card; section 5 prints the count)",
        "30,522": "BERT uncased's WordPiece vocabulary, the lines of the cached vocab.txt",
        "2307": "the id of 'great' in that vocab.txt (line 2308, ids count from 0)",
        "25,000": "IMDB's training reviews (Maas et al., 2011); expected, not measured: labelled so in the prose",
        "25,000 ×": "the same, in the arithmetic 25,000 × 74,849 × 4 bytes the prose shows",
        "74,849": "CountVectorizer's vocabulary on IMDB's training set (Müller & Guido, 2016, ch. 7); expected",
        "74,849 ×": "the same, in the arithmetic the prose shows",
        "7.5 GB": "25,000 × 74,849 × 4 bytes = 7.48e9 bytes, the arithmetic the prose shows; expected, not measured",
        "0.5": "chance with two balanced classes",
        "100": "languages of mBERT (104) and XLM-R (100; Conneau et al., 2020)",
        "50": "languages of paraphrase-multilingual-MiniLM-L12-v2 (Reimers & Gurevych, 2020)",
        "2.0": "wav2vec 2.0's name",
        "20 ms": "wav2vec 2.0's frame stride (Baevski et al., 2020)",
        "128": "XLS-R's pretraining languages (Babu et al., 2021)",
        "2, 3 or 4": "the fine-tuning epochs BERT's authors tried (Devlin et al., 2019, appendix A.3)",
    },
    "10": {
        "1,000": "ImageNet's classes (Russakovsky et al., 2015)",
        "255": "the range of raw RGB",
        "20285": "the number of the keras-team/keras issue the lesson cites",
        "0.9716": "the Keras guide Transfer learning & fine-tuning (keras-io guides/md/transfer_learning.md, "
        "published output at commit ef4cd45): validation accuracy of the frozen model after 20 epochs",
        "0.9789": "the same guide's published output: validation accuracy after 10 epochs of fine-tuning",
        "32 ×": "EfficientNet's output stride: a 224 px input gives 7 × 7 maps (Tan & Le, 2019, Table 1)",
        "32": "EfficientNet's output stride",
        "224 px": "the input size ImageNet classifiers were trained at (keras.io/api/applications)",
        "7 ×": "224 / 32, EfficientNet's last feature maps at 224 px (Tan & Le, 2019, Table 1)",
        "10 MB": "a budget in an end-of-lesson question",
        "50 ms": "a budget in an end-of-lesson question",
        "3.13": 'the Keras release that added model.export(..., format="litert") (Keras 3.13.0 release notes)',
    },
}


def test_the_scanner_finds_typed_figures_and_skips_the_rest():
    import tempfile

    text = (
        "# a lesson\n# %% [markdown]\n# ## 3 · Results\n# It is 5× smaller, 30,000 images, 0.5 points, as lesson 04 and "
        "exercise 04.2 show (Ganin et al., 2016); `Dense(128)` has 2 layers.\n# %%\nx = 123\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(text)
    assert prose_figures(Path(handle.name)) == ["5 ×", "30,000", "0.5"]
    Path(handle.name).unlink()


@pytest.mark.parametrize(
    "source", sorted(ROOT.glob("sources/notebooks/[0-9][0-9]_*.py")), ids=lambda p: p.stem
)
def test_every_figure_in_the_prose_is_computed_or_sourced(source):
    allowed = ALLOWED.get(source.name[:2], {})
    typed = sorted(set(prose_figures(source)) - set(allowed), key=prose_figures(source).index)
    assert not typed, (
        f"{source.name} states {typed} in its prose. Print each from the run (an f-string over what the "
        "lesson computed), or, for a fact with a source, add it with the source to ALLOWED in this file."
    )
