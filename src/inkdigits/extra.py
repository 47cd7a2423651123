"""Extra labelled digits for training: real handwriting, cut out by the reading pipeline.

A dataset of images with one box per digit (the ORAND-CAR-A layout: a
``boxes.json`` mapping each image file to ``{"digits": [{"digit": d,
"box_xywh": [x, y, w, h]}, ...]}``) becomes an ``.npz`` of MNIST-style
28x28 crops and labels, made exactly as the Reader makes the crops it
classifies (ink map, binarisation, ``to_mnist``), so a model trained with them
(``inkdigits train --extra-digits FILE``) learns what it will be shown.

A fixed share of the images is held out by a hash of the file name
(:func:`held_out`) and never cut into crops, so accuracy on it stays a fair
figure (bench/orand.py reports it separately).

:func:`rendered_digits` makes the same kind of file without a dataset: MNIST
*training* digits rendered as photos and scans by the benchmark's generator
(``inkdigits.synth``: paper, shadows, check patterns, blue ink, both
polarities, thin and thick pens, blur, JPEG) and cut back out by the Reader's
one-digit path (``preprocessing.preprocess``), so the model learns the
pipeline's own artefacts (broken thin strokes, thinned broad strokes) on
digits it is allowed to see; with ``numbers=True`` it does the same with
whole numbers, cut apart by the Reader's number steps.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from . import preprocessing as pre
from .config import ensure_writable_folder
from .errors import ConfigError, DataError

BOXES_FILE = "boxes.json"


def held_out(name: str) -> bool:
    """The fixed held-out 30% of a dataset: decided by the file name's hash, never the data."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10 < 3


def boxes_images(
    dataset: str | Path, include_held_out: bool = False
) -> Iterator[tuple[str, dict[str, Any], pre.InkMap]]:
    """(file name, its boxes.json entry, its ink map) for each image of a boxes dataset
    that has digit boxes, sorted by name, the held-out 30% left out unless asked for.

    Every digit's ``digit`` is checked and given as an int 0-9."""
    dataset = Path(dataset)
    index = dataset / BOXES_FILE
    if not index.is_file():
        raise DataError(f"{dataset}: no {BOXES_FILE} (one entry per image with digit boxes)")
    try:
        entries = json.loads(index.read_text())
    except ValueError as exc:
        raise DataError(f"{index}: not valid JSON ({exc})") from None
    for name, entry in sorted(entries.items()):
        if (held_out(name) and not include_held_out) or not entry.get("digits"):
            continue
        for d in entry["digits"]:
            d["digit"] = _digit_label(name, d)
        try:
            im = pre.ink_map(pre.load_image(dataset / name))
        except pre.ImageError as exc:
            raise DataError(f"{dataset / name}: {exc}") from None
        yield name, entry, im


def _digit_label(name: str, digit: dict[str, Any]) -> int:
    """A boxes.json digit's label as an int, or a DataError if it is not 0-9."""
    label = digit.get("digit")
    try:
        value = int(label)
    except (TypeError, ValueError):
        value = -1
    if not 0 <= value <= 9:
        raise DataError(f"{name}: digit label {label!r} is not 0-9")
    return value


def crops_from_boxes(
    dataset: str | Path, include_held_out: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 (N, 28, 28), labels (N,), source files) from a boxes dataset."""
    images, labels, files = [], [], []
    for name, entry, im in boxes_images(dataset, include_held_out):
        mask, _ = pre.binarize(im.ink)
        for d in entry["digits"]:
            label = d["digit"]
            x, y, w, h = (int(round(v * im.scale)) for v in d["box_xywh"])
            x, y = max(0, x), max(0, y)
            crop_mask = mask[y : y + h, x : x + w]
            if crop_mask.sum() < 4:  # nothing the reader would see as ink
                continue
            images.append(pre.to_mnist(im.ink[y : y + h, x : x + w], crop_mask))
            labels.append(label)
            files.append(name)
    if not images:
        raise DataError(f"{dataset}: no digit crops found")
    return np.stack(images), np.asarray(labels, np.uint8), files


RENDER_CHUNK = 500  # samples per seeded chunk: the output does not depend on the workers


def _render_chunk(
    args: tuple[np.ndarray, np.ndarray, int, int, int],
    draw: Callable[[np.random.Generator], dict[str, Any]] | None = None,
) -> tuple[np.ndarray, ...]:
    import cv2

    from .synth import render

    images, labels, seed, chunk, count = args
    cv2.setNumThreads(1)  # one process per core instead
    rng = np.random.default_rng([seed, chunk])
    xs, ys = [], []
    for _ in range(count):
        force = draw(rng) if draw else {}
        sample = render(rng, images, labels, 1, **force)
        got = pre.preprocess(sample.image)
        if got.box is not None:  # else the reader found no ink: nothing it would classify
            xs.append(got.digit)
            ys.append(int(sample.label))
    return np.asarray(xs, np.uint8).reshape(-1, 28, 28), np.asarray(ys, np.uint8)


def in_chunks(
    fn: Callable[[tuple[np.ndarray, np.ndarray, int, int, int]], Any],
    images: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Any]:
    """``fn``'s results on seeded chunks of RENDER_CHUNK of ``count`` samples, in order.

    Each chunk draws from ``default_rng([seed, chunk])``, so the output does
    not depend on how many ``workers`` (processes) run the chunks.
    """
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    jobs = []
    for chunk, start in enumerate(range(0, count, RENDER_CHUNK)):
        jobs.append((images, labels, seed, chunk, min(RENDER_CHUNK, count - start)))
    parts = []
    with ExitStack() as stack:
        run = map
        if workers > 1 and len(jobs) > 1:
            from concurrent.futures import ProcessPoolExecutor

            run = stack.enter_context(ProcessPoolExecutor(min(workers, len(jobs)))).map
        for job, part in zip(jobs, run(fn, jobs), strict=True):
            parts.append(part)
            if progress:
                progress(job[4])
    return parts


def _stacked(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The chunks' (digits, labels) joined in chunk order."""
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


NUMBER_TALLEST = 160  # px: taller numbers cost more to render and are shrunk alike


def _number_chunk(args: tuple[np.ndarray, np.ndarray, int, int, int]) -> tuple[np.ndarray, ...]:
    import cv2

    from . import segmentation as seg
    from .reader import Reader
    from .synth import render

    images, labels, seed, chunk, count = args
    cv2.setNumThreads(1)  # one process per core instead
    reader = Reader(threads=1, line_model=False)
    rng = np.random.default_rng([seed, chunk])
    xs, ys = [], []
    for _ in range(count):
        n = int(rng.integers(2, 11))
        height = int(np.exp(rng.uniform(np.log(15), np.log(NUMBER_TALLEST))))
        sample = render(rng, images, labels, n, height=height)
        im, _, found = reader.find_digits(sample.image)
        if len(found) != 1 or len(found[0][1]) != n or im.turn is not None:
            # a digit missed, split or joined, or the page turned (its pieces not
            # where the generator put them): no sure label for its pieces
            continue
        pieces = found[0][1]
        centres = [x * im.scale for x in sample.spec["digit_x"]]
        if all(p.x <= c <= p.x + p.w for p, c in zip(pieces, centres, strict=True)):
            xs.append(seg.crops(pieces, im.ink, pre.to_mnist))
            ys.extend(int(d) for d in sample.label)
    digits = np.concatenate(xs) if xs else np.zeros((0, 28, 28), np.uint8)
    return digits, np.asarray(ys, np.uint8)


def rendered_digits(
    images: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    numbers: bool = False,
    draw: Callable[[np.random.Generator], dict[str, Any]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Digits from ``images`` rendered as photos and cut out by the Reader.

    ``count`` single digits, each cut out by the one-digit preprocessing (a
    render in which the reader finds no ink at all is left out); or, with
    ``numbers``, ``count`` numbers of 2-10 digits (spaced, close or touching,
    punctuation mixed in), each found by the Reader's own number steps
    (:meth:`Reader.find_digits` with the shipped digit model and whole-digit
    check), so each crop shows what the classifier is shown inside a number:
    its neighbours' edges, the cuts between touching digits. A number is kept
    only when the Reader finds it as one line of exactly its digits, each
    piece holding its digit's centre; its crops are then labelled in order.

    Returns (uint8 (N, 28, 28), labels (N,)). Reproducible from ``seed``
    (for numbers, with the same shipped models, which decide the cuts)
    whatever the number of ``workers`` (processes); ``progress`` gets the
    samples done. ``draw`` (single digits only; a picklable function) gets
    each render's random generator and returns the choices to force on it
    (``synth.render``'s keywords), e.g. bench/hard_digits.py's thin pen.
    """
    if draw is not None and numbers:
        raise ConfigError("draw forces the choices of single-digit renders, not of numbers")
    chunk = _number_chunk if numbers else functools.partial(_render_chunk, draw=draw)
    return _stacked(in_chunks(chunk, images, labels, count, seed, workers, progress))


def check_output(path: str | Path) -> None:
    """Fail now, before any work is done, if ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the .npz file to write")
    ensure_writable_folder(path.parent)


def save_crops(path: str | Path, images: np.ndarray, labels: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, images=images, labels=labels)
    tmp.replace(path)


def load_crops(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An ``.npz`` with ``images`` (N, 28, 28) uint8 and ``labels`` (N,) in 0-9, checked."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (extra digits)")
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not an .npz with 'images' and 'labels' arrays ({exc})") from None
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"{path}: images must be uint8 (N, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),) or not np.isin(labels, np.arange(10)).all():
        raise DataError(f"{path}: labels must be N digits 0-9 matching the images")
    return images, labels.astype(np.uint8)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
