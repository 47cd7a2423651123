"""Training data for the whole-digit check: cut-outs of touching handwritten digits.

Splitting touching digits (``segmentation.split_piece``) reads every segment
between two candidate cuts; the digit classifier alone reads half a 0 as a
confident 1 and two touching digits as a confident 8. The whole-digit model
(registry name ``whole-cnn``) is trained on exactly what the splitter sees:
lines of 1-3 MNIST digits placed close or touching, binarised, cut at the
splitter's candidate cuts, and each segment put through the reading
pipeline's ``to_mnist``. A segment holding one digit whole (at least 88% of
its ink, at most 8% foreign ink) is labelled with that digit; a segment with
less than 60% of every digit, or more than 25% foreign ink, is labelled
NOT_WHOLE (10); the ones in between are left out.

    from inkdigits.segment_data import make_segments
    x, y = make_segments(images, labels, lines=3000, seed=0)   # (N, 28, 28) uint8, (N,)

Only training and validation digits are used to train it; the test digits
give its test figure, as for the digit models.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import segmentation as seg
from .data import Splits
from .preprocessing import to_mnist
from .synth import digit_alpha

NOT_WHOLE = 10  # the eleventh class: not one whole digit
LINES = {"train": 6000, "val": 600, "test": 1000}  # generated lines per split
SPLIT_SEEDS = {"val": 1_000_001, "test": 1_000_002}  # fixed: every run is judged alike
WHOLE_SHARE, PART_SHARE = 0.88, 0.60  # share of a digit's ink in the segment
CLEAN, MIXED = 0.08, 0.25  # share of the segment's ink from other digits


def _line(rng: np.random.Generator, images: np.ndarray):
    """1-3 digits on one line, close or touching: (ink, per-digit ink layers, indices)."""
    k = int(rng.choice([1, 2, 2, 3, 3]))
    height = int(rng.integers(22, 90))
    stroke = float(rng.choice([-1.0, 0.0, 0.0, 1.0, 2.0])) if height >= 40 else 0.0
    idx = rng.integers(0, len(images), k)
    glyphs = [digit_alpha(images[i], height, stroke) for i in idx]
    margin = height
    width = sum(g.shape[1] for g in glyphs) + 2 * margin + height
    layers = np.zeros((k, 2 * height + 2 * margin, width), np.float32)  # (k, H, W)
    x = margin
    for d, g in enumerate(glyphs):
        gh, gw = g.shape
        y = margin + height - gh + int(rng.normal(0, 0.04) * height)
        layers[d, y : y + gh, x : x + gw] = g
        x = max(margin, x + gw + int(rng.uniform(-0.18, 0.06) * height))
    ink = layers.max(axis=0)
    if rng.random() < 0.5:
        ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.3, 1.0))
    ink = np.clip(ink + rng.normal(0, 0.03, ink.shape), 0, 1).astype(np.float32)
    return ink, layers, idx, height


def _label(q: seg.Piece, owner: np.ndarray, own: np.ndarray, totals: np.ndarray) -> int | None:
    """The digit index ``q`` holds whole, -1 if it holds none, None if in between."""
    window = (slice(q.y, q.y + q.h), slice(q.x, q.x + q.w))
    n = int(q.mask.sum())
    counts = np.bincount(owner[window][q.mask], minlength=len(totals))
    share = (own[:, window[0], window[1]] & q.mask).sum(axis=(1, 2)) / totals
    best = int(np.argmax(share))
    foreign = 1.0 - counts[best] / n
    if share[best] >= WHOLE_SHARE and foreign <= CLEAN:
        return best
    if share[best] < PART_SHARE or foreign > MIXED:
        return -1
    return None


def make_segments(
    images: np.ndarray, labels: np.ndarray, lines: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled segments from ``lines`` generated lines: (N, 28, 28) uint8 and (N,) in 0..10."""
    rng = np.random.default_rng(seed)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for _ in range(lines):
        ink, layers, idx, height = _line(rng, images)
        mask = ink > rng.uniform(0.25, 0.5)
        owner = layers.argmax(axis=0)
        own = layers > 0.35
        totals = np.maximum(own.sum(axis=(1, 2)), 1)
        for p in seg.drop_specks(seg.components(mask)):
            if p.h < 0.5 * height:
                continue
            if p.w >= 0.9 * height:
                segments = list(seg.candidate_segments(p, height)[1].values())
            else:
                segments = [p]
            kept = []
            for q in segments:
                which = _label(q, owner, own, totals)
                if which is not None:
                    kept.append(q)
                    ys.append(NOT_WHOLE if which < 0 else int(labels[idx[which]]))
            if kept:
                xs.extend(seg.crops(kept, ink, to_mnist))
    return np.stack(xs), np.asarray(ys, np.int64)


def segment_splits(digits: Splits, seed: int, train_lines: int | None = None) -> Splits:
    """Segments cut from each split's own digits: training lines vary with ``seed``."""
    lines = min(train_lines or LINES["train"], LINES["train"])
    x_train, y_train = make_segments(digits.x_train, digits.y_train, lines, seed)
    x_val, y_val = make_segments(digits.x_val, digits.y_val, LINES["val"], SPLIT_SEEDS["val"])
    x_test, y_test = make_segments(digits.x_test, digits.y_test, LINES["test"], SPLIT_SEEDS["test"])
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test)
