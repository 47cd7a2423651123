"""``inkdigits demo``: read MNIST test digits with the shipped ONNX model and draw a grid.

Needs only the core install (ONNX Runtime, no TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import data
from .classifier import Classifier

CELL = 112  # pixels per digit in the grid (28 x 4)
CAPTION = 26  # caption strip under each digit


@dataclass
class DemoResult:
    """What the demo read and where it drew it."""

    grid_path: Path
    labels: np.ndarray
    predictions: np.ndarray
    confidences: np.ndarray

    @property
    def correct(self) -> int:
        return int((self.labels == self.predictions).sum())


def draw_grid(
    images: np.ndarray,
    predictions: np.ndarray,
    confidences: np.ndarray,
    labels: np.ndarray | None,
    columns: int = 5,
) -> Image.Image:
    """A grid of digits, each captioned 'pred (conf%)'; wrong ones in red with the truth."""
    rows = int(np.ceil(len(images) / columns))
    grid = Image.new("RGB", (columns * CELL, rows * (CELL + CAPTION)), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=16)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        x0, y0 = c * CELL, r * (CELL + CAPTION)
        tile = Image.fromarray(255 - img).resize((CELL - 8, CELL - 8), Image.NEAREST)
        grid.paste(tile, (x0 + 4, y0 + 4))
        wrong = labels is not None and predictions[i] != labels[i]
        text = f"{predictions[i]}  {100 * confidences[i]:.1f}%"
        if wrong:
            text += f"  (is {labels[i]})"
        draw.text((x0 + 6, y0 + CELL), text, fill=(200, 0, 0) if wrong else (0, 110, 0), font=font)
    return grid


@dataclass
class ExampleRead:
    """One example image read by the demo."""

    file: Path
    expected: str | None
    read: str
    confidence: float
    annotated: Path


def read_examples(folder: str | Path, out_dir: str | Path) -> list[ExampleRead]:
    """Read every image in ``folder`` (auto mode) and write annotated copies to ``out_dir``."""
    import csv

    from .annotate import write_annotated
    from .preprocessing import load_image
    from .reader import Reader

    folder, out = Path(folder), Path(out_dir)
    labels = {}
    if (folder / "labels.csv").is_file():
        with open(folder / "labels.csv", newline="") as fh:
            labels = {r["file"]: r["label"] for r in csv.DictReader(fh)}
    reader = Reader()
    results = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in {".png", ".jpg", ".jpeg"}:
            continue
        rgb = load_image(path)
        result = reader.read(rgb, "auto")
        ann = write_annotated(rgb, result, out / f"{path.stem}.annotated.png")
        results.append(
            ExampleRead(path, labels.get(path.name), result.text, result.confidence, ann)
        )
    return results


def run_demo(
    out_dir: str | Path, count: int = 20, seed: int = 0, data_dir: str | None = None
) -> DemoResult:
    """Read ``count`` random MNIST test digits and write ``mnist_grid.png`` into ``out_dir``."""
    clf = Classifier()
    mnist = data.load_mnist(data_dir)
    idx = np.random.default_rng(seed).choice(len(mnist.test_labels), size=count, replace=False)
    images, labels = mnist.test_images[idx], mnist.test_labels[idx]
    probs = clf.predict_proba(images)
    preds, conf = probs.argmax(1), probs.max(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mnist_grid.png"
    tmp = out / ".mnist_grid.tmp.png"
    draw_grid(images, preds, conf, labels).save(tmp)
    tmp.replace(path)
    return DemoResult(path, labels, preds, conf)
