"""Reading a whole line of digits at once: the line's view and CTC decoding.

The segmentation reader (:mod:`inkdigits.segmentation`) cuts a number into
digits and reads each one; when digits touch, it has to guess where one ends.
A line model reads the line as a whole instead: a small convolutional network
looks at the line, :func:`line_view`, deskewed and scaled so that its digits
are TEXT_HEIGHT px tall in a LINE_HEIGHT px strip, and gives for every
column step (4 px) the probabilities of the ten digits and of "nothing here"
(the CTC blank). :func:`decode` turns them into the digit string, each
digit's probability, and where in the strip it was read.

    view, geometry = line_view(ink, pieces)      # (32, W) float32 in [0, 1]
    probs = model(view[None, :, :, None])        # (1, W / 4, 11)
    text, confidences, columns = decode(probs[0])
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .classifier import load_card, onnx_session, shipped_model_path
from .errors import ModelError
from .segmentation import Piece, digit_height

LINE_HEIGHT = 32  # the strip the line model reads
TEXT_HEIGHT = 22  # its digits' height in that strip
STEP = 4  # columns per output step of the line model
BLANK = 10  # the CTC blank: the eleventh output
MAX_SLANT = 15.0  # degrees: a line is deskewed by at most this much
SLANT_ASPECT = 2.5  # a line at least this many digit heights long is deskewed
PAD_TO = 32  # views are read padded to a multiple of this width, as in training
LINE_DIR = "line"  # the shipped line model's folder in inkdigits.weights


@dataclass
class Geometry:
    """Where a line view's columns lie in the ink map: ``x = x0 + column / scale``
    (before deskewing: ``angle`` is the line's slant in degrees, positive when
    it falls to the right, turned level about the ink's centre)."""

    x0: float
    scale: float
    angle: float


def _slant(mask: np.ndarray, height: float) -> float:
    """The line's slant in degrees from its ink's second moments (0 for short lines)."""
    h, w = mask.shape
    if w < SLANT_ASPECT * height:
        return 0.0
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    if m["m00"] == 0:
        return 0.0
    angle = 0.5 * np.degrees(np.arctan2(2 * m["mu11"], m["mu20"] - m["mu02"]))
    return float(np.clip(angle, -MAX_SLANT, MAX_SLANT))


def line_view(ink: np.ndarray, line: list[Piece]) -> tuple[np.ndarray, Geometry]:
    """The line model's input for the pieces of one line: (LINE_HEIGHT, W) float32 in [0, 1].

    Only the line's own ink is kept (its pieces' masks, grown by a pixel), so
    other lines and the page's pattern are left out; punctuation found on
    the line stays in, as written. The strip is deskewed, scaled so that the
    line's digit height becomes TEXT_HEIGHT, centred on the ink's centre of
    mass, with 4 px on either side and W a multiple of STEP.
    """
    x0 = min(p.x for p in line)
    y0 = min(p.y for p in line)
    x1 = max(p.x + p.w for p in line)
    y1 = max(p.y + p.h for p in line)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for p in line:
        region = mask[p.y - y0 : p.y - y0 + p.h, p.x - x0 : p.x - x0 + p.w]
        region |= p.mask.astype(np.uint8)
    keep = cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0
    soft = np.where(keep, ink[y0:y1, x0:x1], 0.0).astype(np.float32)
    height = digit_height(line)
    angle = _slant(mask, height)
    scale = TEXT_HEIGHT / max(1.0, height)
    # scale first (area-averaged: a 300 px line shrinks 14x), then deskew
    sh = max(1, round(soft.shape[0] * scale))
    sw = max(1, round(soft.shape[1] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(soft, (sw, sh), interpolation=interp)
    total = float(small.sum())
    if total <= 0:
        return np.zeros((LINE_HEIGHT, 2 * STEP), np.float32), Geometry(x0, scale, 0.0)
    yy, xx = np.mgrid[:sh, :sw]
    cy, cx = float((small * yy).sum() / total), float((small * xx).sum() / total)
    rot = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    corners = np.array([[0, 0, 1], [sw, 0, 1], [0, sh, 1], [sw, sh, 1]], np.float64) @ rot.T
    left, right = corners[:, 0].min(), corners[:, 0].max()
    width = int(np.ceil((right - left + 8) / STEP)) * STEP
    rot[0, 2] += 4 - left
    rot[1, 2] += LINE_HEIGHT / 2 - cy
    view = cv2.warpAffine(small, rot, (width, LINE_HEIGHT), flags=cv2.INTER_LINEAR)
    peak = float(np.percentile(view[view > 0.05], 99)) if (view > 0.05).any() else 1.0
    view = np.clip(view / max(peak, 1e-3), 0.0, 1.0)
    return view.astype(np.float32), Geometry(x0 + (left - 4) / scale, scale, angle)


def decode(probs: np.ndarray) -> tuple[str, list[float], list[int]]:
    """Greedy CTC decoding of (T, 11) probabilities.

    Returns the digit string, each digit's probability (the highest of the
    steps that read it) and the step at which each digit is read best.
    """
    best = probs.argmax(axis=1)
    text: list[str] = []
    confs: list[float] = []
    steps: list[int] = []
    prev = BLANK
    for t, k in enumerate(best):
        if k != BLANK and k != prev:
            text.append(str(int(k)))
            confs.append(float(probs[t, k]))
            steps.append(t)
        elif k != BLANK and k == prev and probs[t, k] > confs[-1]:
            confs[-1] = float(probs[t, k])
            steps[-1] = t
        prev = int(k)
    return "".join(text), confs, steps


def string_probability(probs: np.ndarray, text: str) -> float:
    """P(text | line) under the CTC model: the sum over all its alignments (forward pass)."""
    labels = [int(c) for c in text]
    ext = [BLANK]
    for k in labels:
        ext += [k, BLANK]
    n = len(ext)
    alpha = np.zeros(n)
    alpha[0] = probs[0, BLANK]
    if n > 1:
        alpha[1] = probs[0, ext[1]]
    log_scale = 0.0
    for t in range(1, len(probs)):
        prev = alpha
        alpha = prev.copy()
        alpha[1:] += prev[:-1]
        skip = np.zeros(n)
        for s in range(2, n):
            if ext[s] != BLANK and ext[s] != ext[s - 2]:
                skip[s] = prev[s - 2]
        alpha = (alpha + skip) * probs[t, ext]
        c = alpha.sum()
        if c <= 0:
            return 0.0
        alpha /= c
        log_scale += np.log(c)
    end = alpha[-1] + (alpha[-2] if n > 1 else 0.0)
    return float(np.exp(log_scale) * end)


class LineModel:
    """A line model: an ONNX file taking (N, LINE_HEIGHT, W, 1) float32 views in [0, 1]
    and giving (N, W / STEP, 11) probabilities (the ten digits, then the blank)."""

    def __init__(self, model: str | os.PathLike[str] | None = None, threads: int = 2):
        path = Path(model) if model is not None else shipped_model_path(folder=LINE_DIR)
        if not path.is_file():
            raise ModelError(f"{path}: line model file not found")
        self.path = path
        self.card = load_card(path)
        blob = path.read_bytes()
        expected = self.card.get("onnx", {}).get("sha256")
        if expected and expected != hashlib.sha256(blob).hexdigest():
            raise ModelError(f"{path}: checksum does not match its card; the file is corrupt")
        self.session = onnx_session(blob, path, threads)
        inp = self.session.get_inputs()[0]
        if inp.shape[1] != LINE_HEIGHT or inp.shape[3] != 1:
            raise ModelError(f"{path}: input shape {inp.shape}, expected (N, {LINE_HEIGHT}, W, 1)")
        self.input_name = inp.name

    def probabilities(self, views: list[np.ndarray]) -> list[np.ndarray]:
        """(W_i / STEP, 11) probabilities for each view.

        Each view is read on its own, padded on the right to a multiple of
        PAD_TO columns as in training: padding is not neutral (the network's
        normalised activations over blank columns are not zero), so a line
        read in a batch beside a longer one would read slightly differently.
        """
        out = []
        for v in views:
            width = max(2 * PAD_TO, -(-v.shape[1] // PAD_TO) * PAD_TO)
            x = np.zeros((1, LINE_HEIGHT, width, 1), np.float32)
            x[0, :, : v.shape[1], 0] = v
            out.append(self.session.run(None, {self.input_name: x})[0][0, : v.shape[1] // STEP])
        return out
