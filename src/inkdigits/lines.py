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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .classifier import load_card, onnx_session, shipped_model_path
from .errors import ConfigError, ModelError
from .segmentation import Piece, digit_height, extent

LINE_HEIGHT = 32  # the strip the line model reads
TEXT_HEIGHT = 22  # its digits' height in that strip
STEP = 4  # columns per output step of the line model
BLANK = 10  # the CTC blank: the eleventh output
MAX_SLANT = 15.0  # degrees: a line is deskewed by at most this much
MARGIN = 0.6  # digit heights of the page shown left and right of a line's pieces
SLANT_ASPECT = 2.5  # a line at least this many digit heights long is deskewed
PAD_TO = 32  # views are read padded to a multiple of this width, as in training
LINE_DIR = "line"  # the shipped line model's folder in inkdigits.weights
# how much the Reader trusts a line model and how it calibrates the fused
# confidences, unless the model's card says otherwise (see Reader._with_line_model);
# chosen for the shipped line model on development numbers (generator seeds 8
# and 9) and ORAND-CAR-A outside its held-out part
FUSION = {
    "same_weight": 0.5,
    "count_weight": 1.0,
    "count_penalty": -12.0,
    "drop_penalty": -5.0,
    "temperature": 1.8,
    "count_confidence": 0.72,
    # the line model learned numbers whose digits are about equally tall; on a
    # line whose tallest digit is more than this many times the median digit's
    # height (a "6.000" with small 0s) its count is trusted less
    "uneven_heights": 1.5,
    "uneven_count_weight": 0.5,
    # one digit (Reader.read_digit): the line model's reading of the digit's
    # view joins the classifier's with this weight, then this temperature
    # (chosen on development digits, generator seeds 6 and 7)
    "single_weight": 0.25,
    "single_temperature": 1.2,
    # the line model's own reading replaces the one both chose when it gives
    # its own at least this probability and the chosen one less than
    # sure_margin times that (chosen on development numbers, seeds 10-13,
    # keeping ORAND-CAR-A's amounts outside its held-out part as read)
    "sure_line": 0.95,
    "sure_margin": 0.001,
    # when the two models count differently and the line model's reading is
    # the chosen one with one digit more (a faint digit the segmentation
    # missed, a 1 joined to its neighbour), the line model's reading replaces
    # it if the line model gives the chosen one less than found_more times
    # its own probability (chosen on development numbers, seeds 14-21; with
    # the conditions of Reader._line_found_more checked on fresh seeds 30-33
    # and ORAND-CAR-A; 0 turns it off)
    "found_more": 0.05,
}


def check_fusion(fusion: dict[str, float] | None) -> None:
    """Raise ConfigError if ``fusion`` names a weight that FUSION does not have."""
    unknown = sorted(set(fusion or {}) - set(FUSION))
    if unknown:
        raise ConfigError(f"unknown fusion weight(s) {unknown}; known: {sorted(FUSION)}")


@dataclass
class Geometry:
    """Where a line view's columns lie in the ink map: ``x = x0 + column / scale``
    (before deskewing: ``angle`` is the line's slant in degrees, positive when
    it falls to the right, turned level about the ink's centre)."""

    x0: float
    scale: float
    angle: float
    columns: int  # the view's width


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


def line_view(
    ink: np.ndarray, line: list[Piece], others: Sequence[Piece] = ()
) -> tuple[np.ndarray, Geometry]:
    """The line model's input for the pieces of one line: (LINE_HEIGHT, W) float32 in [0, 1].

    The view shows the ink map itself around the line's pieces (MARGIN digit
    heights more on either side, a quarter above and below, blank where that
    runs off the image), not only the pieces: faint strokes the binarisation
    lost, which the digit-by-digit reading cannot see, are still there for
    the line model. Pieces of ``others`` (the page's other lines) are
    blanked out. The strip is deskewed, scaled so that the line's digit
    height becomes TEXT_HEIGHT, centred on the line's ink, and cut to
    LINE_HEIGHT rows; W is a multiple of STEP. The line's own ink is scaled
    so that its strongest (99th percentile) is 1.
    """
    height = digit_height(line)
    bx0, by0, bx1, by1 = extent(line)
    # the window around the line; where it runs off the image (a tightly cropped
    # amount), blank paper is added, as the model saw around every training line
    x0 = int(bx0 - MARGIN * height)
    x1 = int(np.ceil(bx1 + MARGIN * height))
    y0 = int(by0 - 0.25 * height)
    y1 = int(np.ceil(by1 + 0.25 * height))
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for p in line:
        mask[p.y - y0 : p.y - y0 + p.h, p.x - x0 : p.x - x0 + p.w] |= p.mask.astype(np.uint8)
    soft = np.zeros((y1 - y0, x1 - x0), np.float32)
    ay, by = max(0, y0), min(ink.shape[0], y1)
    ax, bx = max(0, x0), min(ink.shape[1], x1)
    soft[ay - y0 : by - y0, ax - x0 : bx - x0] = ink[ay:by, ax:bx]
    for p in others:
        ax, bx = max(x0, p.x), min(x1, p.x + p.w)
        ay, by = max(y0, p.y), min(y1, p.y + p.h)
        if ax < bx and ay < by:
            theirs = p.mask[ay - p.y : by - p.y, ax - p.x : bx - p.x]
            theirs = cv2.dilate(theirs.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            soft[ay - y0 : by - y0, ax - x0 : bx - x0][theirs] = 0.0
    own = soft[mask > 0]
    peak = float(np.percentile(own, 99)) if own.size else 1.0
    angle = _slant(mask, height)
    scale = TEXT_HEIGHT / max(1.0, height)
    # scale first (area-averaged: a 300 px line shrinks 14x), then deskew
    sh = max(1, round(soft.shape[0] * scale))
    sw = max(1, round(soft.shape[1] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(soft, (sw, sh), interpolation=interp)
    small_own = cv2.resize(np.where(mask > 0, soft, 0.0), (sw, sh), interpolation=interp)
    total = float(small_own.sum())
    if total <= 0:
        return np.zeros((LINE_HEIGHT, 2 * STEP), np.float32), Geometry(x0, scale, 0.0, 2 * STEP)
    yy, xx = np.mgrid[:sh, :sw]
    cy, cx = float((small_own * yy).sum() / total), float((small_own * xx).sum() / total)
    rot = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    corners = np.array([[0, 0, 1], [sw, 0, 1], [0, sh, 1], [sw, sh, 1]], np.float64) @ rot.T
    left, right = corners[:, 0].min(), corners[:, 0].max()
    width = int(np.ceil((right - left) / STEP)) * STEP
    rot[0, 2] -= left
    rot[1, 2] += LINE_HEIGHT / 2 - cy
    view = cv2.warpAffine(small, rot, (width, LINE_HEIGHT), flags=cv2.INTER_LINEAR)
    view = np.clip(view / max(peak, 1e-3), 0.0, 1.0)
    return view.astype(np.float32), Geometry(x0 + left / scale, scale, angle, width)


def others_of(lines: list[list[Piece]], i: int) -> list[Piece]:
    """The pieces of every line but line ``i``."""
    return [p for j, line in enumerate(lines) if j != i for p in line]


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
    # a digit may be reached straight from the digit before it (skipping the
    # blank between) unless it repeats that digit
    can_skip = np.array([s >= 2 and ext[s] != BLANK and ext[s] != ext[s - 2] for s in range(n)])
    alpha = np.zeros(n)
    alpha[0] = probs[0, BLANK]
    if n > 1:
        alpha[1] = probs[0, ext[1]]
    log_scale = 0.0
    for t in range(1, len(probs)):
        prev = alpha
        alpha = prev.copy()
        alpha[1:] += prev[:-1]
        alpha[2:] += np.where(can_skip[2:], prev[:-2], 0.0)
        alpha = alpha * probs[t, ext]
        c = alpha.sum()
        if c <= 0:
            return 0.0
        alpha /= c
        log_scale += np.log(c)
    end = alpha[-1] + (alpha[-2] if n > 1 else 0.0)
    return float(np.exp(log_scale) * end)


def single_digit_probabilities(probs: np.ndarray) -> np.ndarray:
    """P(the line reads as the one digit k), k = 0..9, under the CTC model: (10,).

    :func:`string_probability` of each one-digit string at once: its
    alignments are blanks, then k at one or more steps in a row, then blanks.
    """
    blank, digits = probs[:, BLANK].astype(np.float64), probs[:, :BLANK].astype(np.float64)
    before = blank[0]  # blanks only so far (the same for every k)
    inside = digits[0].copy()  # k read at the latest step
    after = np.zeros(BLANK)  # k read, then blanks
    log_scale = 0.0
    for t in range(1, len(probs)):
        inside, after = (before + inside) * digits[t], (inside + after) * blank[t]
        before = before * blank[t]
        c = max(before, float(inside.max()), float(after.max()))
        if c <= 0:
            return np.zeros(BLANK)
        before, inside, after = before / c, inside / c, after / c
        log_scale += np.log(c)
    return np.exp(log_scale) * (inside + after)


class LineModel:
    """A line model: an ONNX file taking (N, LINE_HEIGHT, W, 1) float32 views in [0, 1]
    and giving (N, W / STEP, 11) probabilities (the ten digits, then the blank).

    ``fusion`` holds how the Reader weighs it against the digit classifier
    (see ``Reader._with_line_model``): its card's ``fusion`` entries, else
    FUSION's.
    """

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
        self.fusion = {**FUSION, **self.card.get("fusion", {})}
        # where it marks a digit, in steps from the digit's centre (its card's,
        # measured by line_data.spike_offset; 0 for a card without one)
        self.spike_offset = float(self.card.get("input", {}).get("spike_offset", 0.0))

    def probabilities(self, views: list[np.ndarray]) -> list[np.ndarray]:
        """(W_i / STEP, 11) probabilities for each view (LINE_HEIGHT rows, float ink in [0, 1]:
        a `line-data` file's uint8 views divided by 255).

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
