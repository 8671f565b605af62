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
