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
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from . import preprocessing as pre
from .errors import DataError

BOXES_FILE = "boxes.json"


def held_out(name: str) -> bool:
    """The fixed held-out 30% of a dataset: decided by the file name's hash, never the data."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10 < 3


def crops_from_boxes(
    dataset: str | Path, include_held_out: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 (N, 28, 28), labels (N,), source files) from a boxes dataset."""
    dataset = Path(dataset)
    index = dataset / BOXES_FILE
    if not index.is_file():
        raise DataError(f"{dataset}: no {BOXES_FILE} (one entry per image with digit boxes)")
    try:
        entries = json.loads(index.read_text())
    except ValueError as exc:
        raise DataError(f"{index}: not valid JSON ({exc})") from None
    images, labels, files = [], [], []
    for name, entry in sorted(entries.items()):
        if held_out(name) and not include_held_out:
            continue
        try:
            im = pre.ink_map(pre.load_image(dataset / name))
        except pre.ImageError as exc:
            raise DataError(f"{dataset / name}: {exc}") from None
        mask, _ = pre.binarize(im.ink)
        for d in entry.get("digits", []):
            label = int(d["digit"])
            if not 0 <= label <= 9:
                raise DataError(f"{name}: digit label {label} is not 0-9")
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
