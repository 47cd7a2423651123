"""Training data for the line model: rendered numbers as the reader's pipeline sees them.

Each sample is a number of 1-10 MNIST digits rendered by :func:`synth.render`
(backgrounds, ink, pens, rotation, blur, noise, JPEG, spacing from spaced to
touching, punctuation), put through the reader's own steps (``ink_map``,
``binarize``, ``segmentation.find_lines``) and cut out as
:func:`lines.line_view`. A render whose ink the pipeline does not find as
exactly one line is left out: the line model is asked only about lines.

Only training digits go in (the caller passes them); the benchmark renders
MNIST *test* digits.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from . import preprocessing as pre
from . import segmentation as seg
from . import synth
from .errors import ConfigError
from .extra import boxes_images, in_chunks
from .lines import LINE_HEIGHT, STEP, LineModel, decode, line_view, others_of

RENDER_TALLEST = 120  # px: the tallest digits rendered for training
WIDEST = 384  # px: views stored this wide at most (wider ones are squeezed)


def _lines_in(im: pre.InkMap) -> list[list[seg.Piece]]:
    """The lines the Reader finds in an ink map (binarised as it binarises them)."""
    mask, threshold = pre.binarize(im.ink)
    return seg.find_lines(mask, im.ink, threshold, im.tone)


def views_of(rgb: np.ndarray, digit_x: list[float] | None = None) -> list[np.ndarray]:
    """The line views of an image, as the reader makes them (top to bottom).

    With ``digit_x`` (the digits' centres, in the image's columns), an image
    whose lines leave any of them out (a faint small digit the reader drops)
    gives no views.
    """
    im = pre.ink_map(rgb)
    lines = _lines_in(im)
    if digit_x is not None:
        boxes = [seg.extent(line) for line in lines]
        for x in digit_x:
            if not any(x0 <= x * im.scale <= x1 for x0, _, x1, _ in boxes):
                return []
    return [line_view(im.ink, line, others_of(lines, i))[0] for i, line in enumerate(lines)]


def _shortest(pen: str | None) -> int:
    """The shortest digits rendered: a pen shows only on digits PEN_FROM px tall or more."""
    return 15 if pen is None else synth.PEN_FROM


def _lines_chunk(
    args: tuple[np.ndarray, np.ndarray, int, int, int],
    check: float = 0.0,
    pen: str | None = None,
    tallest: int = RENDER_TALLEST,
):
    images, labels, seed, chunk, count = args
    cv2.setNumThreads(1)  # one process per core instead
    rng = np.random.default_rng([seed, chunk])
    shortest = _shortest(pen)
    force = {} if pen is None else {"stroke": synth.PENS[pen]}
    views, texts = [], []
    for _ in range(count):
        n = int(rng.integers(1, 11))
        # heights up to ``tallest`` (RENDER_TALLEST by default: a taller render
        # costs several times as much and is shrunk to TEXT_HEIGHT just the same)
        height = int(np.exp(rng.uniform(np.log(shortest), np.log(tallest))))
        if check and rng.random() < check:
            sample = synth.render(rng, images, labels, n, height=height, check=True, **force)
            found = views_of(sample.image, sample.spec["digit_x"])
        else:
            sample = synth.render(rng, images, labels, n, height=height, **force)
            found = views_of(sample.image)
        if len(found) == 1:
            views.append(found[0])
            texts.append(sample.label)
    return views, texts


def rendered_lines(
    images: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    check: float = 0.0,
    pen: str | None = None,
    tallest: int = RENDER_TALLEST,
) -> tuple[list[np.ndarray], list[str]]:
    """Up to ``count`` (view, label) pairs from ``count`` renders of 1-10 digits.

    A share ``check`` of them is written as check amounts (``synth.render``'s
    ``check``: trailing 0s, small or raised last digits, thousands marks, a
    dash or '=' after the amount, a '$' or tick before it); of those, a
    render whose lines leave out any of its digits is dropped. ``pen`` (one
    of ``synth.PENS``) draws every number with that pen, its digits between
    ``synth.PEN_FROM`` and ``tallest`` px tall (a pen shows only on digits
    that tall): more of the pens the line model reads worst. Digits are at
    most ``tallest`` px tall (RENDER_TALLEST by default). Reproducible from
    ``seed`` whatever the number of ``workers``.
    """
    if pen is not None and pen not in synth.PENS:
        raise ConfigError(f"unknown pen {pen!r}; one of {', '.join(synth.PENS)}")
    shortest = _shortest(pen)
    if tallest <= shortest:
        raise ConfigError(f"the tallest digits must be over {shortest} px, got {tallest}")
    fn = partial(_lines_chunk, check=check, pen=pen, tallest=tallest)
    parts = in_chunks(fn, images, labels, count, seed, workers, progress)
    return [v for p in parts for v in p[0]], [t for p in parts for t in p[1]]


def spike_offset(
    model: LineModel, images: np.ndarray, labels: np.ndarray, count: int = 300, seed: int = 0
) -> float:
    """Where ``model`` reads a digit, in output steps from the digit's centre (median).

    A CTC model marks each digit at one step, not necessarily at its centre:
    the shipped line model marks them about 3.5 steps (14 view columns, 0.6
    of a digit) to the left. The Reader shifts the boxes it draws where the
    line model reads by this much. Measured on ``count`` rendered numbers
    (2-10 digits of ``images``) found as one line that the model reads with
    the right number of digits.
    """
    rng = np.random.default_rng(seed)
    offsets: list[float] = []
    for _ in range(count):
        n = int(rng.integers(2, 11))
        height = int(np.exp(rng.uniform(np.log(15), np.log(RENDER_TALLEST))))
        sample = synth.render(rng, images, labels, n, height=height)
        im = pre.ink_map(sample.image)
        lines = _lines_in(im)
        if len(lines) != 1:
            continue
        view, g = line_view(im.ink, lines[0])
        _, _, steps = decode(model.probabilities([view])[0])
        if len(steps) != n:
            continue
        for t, x in zip(steps, sample.spec["digit_x"], strict=True):
            centre = ((x * im.scale - g.x0) * g.scale - STEP / 2) / STEP
            offsets.append(t - centre)
    if not offsets:
        raise ValueError("the line model read none of the rendered numbers right")
    return float(np.median(offsets))


def pack(views: list[np.ndarray], texts: list[str]) -> dict[str, np.ndarray]:
    """Views and labels as arrays for an .npz: uint8 (N, LINE_HEIGHT, WIDEST), widths, labels."""
    x = np.zeros((len(views), LINE_HEIGHT, WIDEST), np.uint8)
    widths = np.zeros(len(views), np.int32)
    for i, v in enumerate(views):
        if v.shape[1] > WIDEST:
            v = cv2.resize(v, (WIDEST, LINE_HEIGHT), interpolation=cv2.INTER_AREA)
        x[i, :, : v.shape[1]] = np.clip(v * 255 + 0.5, 0, 255).astype(np.uint8)
        widths[i] = v.shape[1]
    return {"x": x, "widths": widths, "labels": np.array(texts)}


def left_to_right(digits: list[dict]) -> list[dict]:
    """A boxes.json entry's digits in reading order: by box centre, left to right."""
    return sorted(digits, key=lambda d: d["box_xywh"][0] + d["box_xywh"][2] / 2)


def lines_from_boxes(dataset: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """The lines of a boxes dataset (outside its held-out 30%) with their digit strings.

    The label is the digits read left to right by box centre. An image the
    Reader finds as several lines gives the line holding most of its digit
    boxes' centres; one where that line misses any of them is left out.
    """
    views, texts = [], []
    for _, entry, im in boxes_images(dataset):
        boxes = [d["box_xywh"] for d in entry["digits"]]
        digits = left_to_right(entry["digits"])
        centres = [((x + w / 2) * im.scale, (y + h / 2) * im.scale) for x, y, w, h in boxes]
        view = _line_holding(im, centres)
        if view is not None:
            views.append(view)
            texts.append("".join(str(d["digit"]) for d in digits))
    return views, texts


def _line_holding(im: pre.InkMap, centres: list[tuple[float, float]]) -> np.ndarray | None:
    """The view of the line (as the Reader finds lines in ``im``) holding most of
    ``centres``, or None if it misses any of them."""
    best, most = None, 0
    lines = _lines_in(im)
    for i, line in enumerate(lines):
        x0, y0, x1, y1 = seg.extent(line)
        inside = sum(x0 <= cx <= x1 and y0 <= cy <= y1 for cx, cy in centres)
        if inside > most:
            best, most = i, inside
    if best is None or most < len(centres):
        return None
    return line_view(im.ink, lines[best], others_of(lines, best))[0]


def _reshuffled(a: np.ndarray, cuts: list[int], pick: np.ndarray) -> np.ndarray:
    """``a`` with the strips between ``cuts`` replaced by strips ``pick`` (left to right)."""
    strips = [a[:, cuts[i] : cuts[i + 1]] for i in pick]
    parts = [a[:, : cuts[0]], *strips, a[:, cuts[-1] :]]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def mixed_lines_from_boxes(
    dataset: str | Path, per_image: int, seed: int = 0
) -> tuple[list[np.ndarray], list[str]]:
    """New amounts in each image's own hand: ``per_image`` lines per image of a boxes
    dataset (outside its held-out 30%), each its digits reshuffled.

    An image's ink map is cut into vertical strips: what lies left of its first
    digit box (a '$', a tick), one strip per digit (cut halfway between
    neighbouring boxes, so a thousands mark goes with a digit) and what lies
    right of its last box (the '.-', '=' or '/' after an amount). A new line
    is the left strip, 1-8 digit strips drawn with replacement (as many as the
    image has, give or take: -1 to +2) and the right strip, side by side; its
    label is the drawn strips' digits. The Reader's own steps find it and cut
    its view, as for :func:`lines_from_boxes`. Deterministic for a given seed.
    """
    views, texts = [], []
    for k, (_, entry, im) in enumerate(boxes_images(dataset)):
        rng = np.random.default_rng([seed, k])
        digits = left_to_right(entry["digits"])
        boxes = [[v * im.scale for v in d["box_xywh"]] for d in digits]
        width = im.ink.shape[1]
        cuts = [max(0, int(round(boxes[0][0])))]
        for (x, _, w, _), (x_next, *_) in itertools.pairwise(boxes):
            cuts.append(int(round((x + w + x_next) / 2)))
        cuts.append(min(width, int(round(boxes[-1][0] + boxes[-1][2]))))
        if any(b <= a for a, b in itertools.pairwise(cuts)):
            continue  # boxes out of order or empty strips: nothing clean to cut
        strips = len(cuts) - 1
        for _ in range(per_image):
            n = int(np.clip(strips + rng.integers(-1, 3), 1, 8))
            pick = rng.integers(0, strips, n)
            tone = None if im.tone is None else _reshuffled(im.tone, cuts, pick)
            mixed = pre.InkMap(_reshuffled(im.ink, cuts, pick), im.scale, im.inverted, tone)
            centres, x = [], cuts[0]
            for i in pick:
                bx, by, bw, bh = boxes[i]
                centres.append((x + bx + bw / 2 - cuts[i], by + bh / 2))
                x += cuts[i + 1] - cuts[i]
            view = _line_holding(mixed, centres)
            if view is not None:
                views.append(view)
                texts.append("".join(str(digits[i]["digit"]) for i in pick))
    return views, texts


def save_lines(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write :func:`pack`'s arrays to ``path`` (.npz) atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
