"""Read digits and numbers from images: the Python API (ONNX Runtime, never TensorFlow).

    >>> from inkdigits import Reader
    >>> reader = Reader()                        # the shipped model   # doctest: +SKIP
    >>> reader.read_digit("seven.png").digit     # 7                   # doctest: +SKIP
    >>> reader.read_number("check.jpg").number   # '1250'              # doctest: +SKIP

Inputs can be a path, bytes, a PIL image or a numpy array. Confidences are
calibrated with the temperature in the model card. A digit whose confidence is
below ``min_confidence``, or ink that does not look like a digit, is reported
as unknown (``digit is None``, shown as ``?``) with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import preprocessing as pre
from . import segmentation as seg
from .classifier import (
    SHIPPED_MODELS,
    WHOLE_DIR,
    Classifier,
    check_digit_model,
    shipped_model_path,
)
from .errors import ModelError
from .lines import (
    BLANK,
    LINE_DIR,
    STEP,
    Geometry,
    LineModel,
    decode,
    line_view,
    others_of,
    single_digit_probabilities,
    string_probability,
)

UNKNOWN = "?"
# a digit read less sure than this is read again with other pens (Reader.with_pens);
# at 0.8-1.0 the development digits' misses are the same, at 0.99 8% are read again
PEN_BELOW = 0.99
# a digit whose crop has too little ink (a thin pen's fragment) is read when the
# line model, counting as many digits, joins the classifier in reading it at
# least this sure: the line model sees the faint ink the crop lost
READ_AS_SEEN = 0.5
BLOB_PIECES = 2  # what background correction leaves of a solid blob: a ring, or two sides


@dataclass
class DigitResult:
    """One digit: what was read, how sure, and where.

    ``digit`` is None when nothing was read (no ink, not a digit, or below
    the confidence threshold); ``reason`` then says why.
    """

    digit: int | None
    confidence: float  # calibrated probability of the best digit (0 if no ink)
    probabilities: list[float]  # the 10 calibrated probabilities (zeros if no ink)
    box: tuple[int, int, int, int] | None  # (x, y, w, h) in the original image's pixels
    reason: str | None = None  # why digit is None
    image: np.ndarray | None = field(default=None, repr=False)  # the 28x28 the model saw

    @property
    def text(self) -> str:
        return UNKNOWN if self.digit is None else str(self.digit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "digit": self.digit,
            "confidence": round(self.confidence, 6),
            "probabilities": [round(p, 6) for p in self.probabilities],
            "box": list(self.box) if self.box else None,
            "reason": self.reason,
        }


@dataclass
class NumberResult:
    """A number (or several lines of them): digit strings, per-digit details and confidence."""

    lines: list[str]  # one string per line, top to bottom; '?' for an unknown digit
    digits: list[list[DigitResult]]  # per line, left to right
    reason: str | None = None  # set when no digit was found at all
    # per line, the probability that it has as many digits as read: below 1
    # when the digit classifier and the line model count differently
    count_confidences: list[float] = field(default_factory=list)

    @property
    def number(self) -> str:
        """The lines joined by newlines ('' if nothing was found)."""
        return "\n".join(self.lines)

    @property
    def text(self) -> str:
        """For display on one line: the lines joined by ' / ', or '?' if nothing was found."""
        return " / ".join(self.lines) or UNKNOWN

    @property
    def confidence(self) -> float:
        """Probability that the number is right: the product of the digit confidences
        and of the lines' count confidences."""
        confs = [d.confidence for line in self.digits for d in line]
        return float(np.prod(confs) * np.prod(self.count_confidences)) if confs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "lines": self.lines,
            "confidence": round(self.confidence, 6),
            "digits": [[d.to_dict() for d in line] for line in self.digits],
            "count_confidences": [round(c, 6) for c in self.count_confidences],
            "reason": self.reason,
        }


class Reader:
    """Reads digits and numbers with an ONNX model (the shipped one by default).

    ``whole_model`` is the whole-digit check used to split touching digits in
    numbers (a whole-cnn ONNX file; default: the shipped one; False: none, the
    digit classifier alone decides where to cut). ``line_model`` reads each
    line of a number as a whole (see :mod:`inkdigits.lines`; default: the
    shipped one that goes with ``model``, see :func:`shipped_line_model`;
    False: none, numbers are read digit by digit only).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        min_confidence: float = 0.5,
        threads: int = 2,
        max_pixels: int = pre.MAX_PIXELS,
        whole_model: str | os.PathLike[str] | bool | None = None,
        line_model: str | os.PathLike[str] | bool | None = None,
    ):
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must lie in [0, 1], got {min_confidence}")
        self.classifier = Classifier(model, threads=threads)
        check_digit_model(self.classifier.classes, self.classifier.path)
        if whole_model is None or whole_model is True:
            shipped = shipped_model_path(folder=WHOLE_DIR)
            whole_model = shipped if shipped.is_file() else False
        self.whole_check = Classifier(whole_model, threads=threads) if whole_model else None
        if self.whole_check is not None and self.whole_check.classes != 11:
            raise ModelError(
                f"{self.whole_check.path}: a whole-digit check has 11 outputs (the digits and "
                f"'not one whole digit'), this model has {self.whole_check.classes}"
            )
        self.min_confidence = min_confidence
        self.max_pixels = max_pixels
        if line_model is None or line_model is True:
            line_model = shipped_line_model(model)
        self.line_model = LineModel(line_model) if line_model else None

    @property
    def card(self) -> dict[str, Any]:
        return self.classifier.card

    def classify(self, digits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 10) for MNIST-style uint8 (N, 28, 28) digits."""
        return self.classifier.predict_proba(digits)

    def with_pens(self, probs: np.ndarray, pens: Callable[[int], np.ndarray]) -> np.ndarray:
        """``probs`` (N, 10) of digits as found, the unsure ones averaged with their pen views.

        A digit read below PEN_BELOW is read again redrawn with MNIST's thinner
        and thicker pens (``pens(i)``: digit i's views, see
        ``preprocessing.pen_views``), all in one batch, and its probabilities
        become the mean over the three views. Confident digits (about 92%)
        keep theirs: averaging them changed none of the development digits.
        """
        out = probs.copy()
        unsure = [(i, pens(i)) for i in np.flatnonzero(probs.max(axis=1) < PEN_BELOW)]
        unsure = [(i, v) for i, v in unsure if len(v)]
        if not unsure:
            return out
        redrawn = self.classify(np.concatenate([v for _, v in unsure]))
        k = 0
        for i, v in unsure:
            out[i] = (probs[i] + redrawn[k : k + len(v)].sum(axis=0)) / (1 + len(v))
            k += len(v)
        return out

    def with_line_view(self, probs: np.ndarray, view: np.ndarray | None) -> np.ndarray:
        """One digit's ``probs`` (10,) joined with the line model's reading of its ``view``.

        The line model reads the ink around the digit, faint strokes included,
        where the classifier sees only what binarisation kept (a thin pen's 0
        whose sides fade is a C to it). The line model's probability that the
        view holds just digit k (over all CTC alignments, normalised over the
        ten) joins the classifier's as ``p(k) * q(k) ** single_weight``, the
        product then tempered by ``single_temperature`` (the line model's
        card's fusion). :meth:`read_digit` asks this only of digits read
        less than PEN_BELOW sure: on the development digits, joining the
        sure ones too changed none of them.
        """
        if view is None:
            return probs
        single = single_digit_probabilities(self.line_model.probabilities([view])[0])
        total = float(single.sum())
        if total <= 0.0:  # it reads no single digit there at all: the classifier alone
            return probs
        fusion = self.line_model.fusion
        fused = np.log(np.clip(probs, 1e-9, 1.0))
        fused += fusion["single_weight"] * np.log(single / total + 1e-6)
        return _tempered(fused, fusion["single_temperature"]).astype(probs.dtype)

    def whole(self, digits: np.ndarray) -> np.ndarray:
        """How likely each MNIST-style uint8 (N, 28, 28) cut-out is one whole digit (N,)."""
        if self.whole_check is None:
            return np.ones(len(digits), np.float32)
        return 1.0 - self.whole_check.predict_proba(digits)[:, -1]

    def _result(
        self,
        digit_img: np.ndarray,
        probs: np.ndarray,
        box,
        gated: str | None,
        min_confidence: float | None,
    ) -> DigitResult:
        best = int(probs.argmax())
        conf = float(probs[best])
        reason = gated
        threshold = self.min_confidence if min_confidence is None else min_confidence
        if reason is None and conf < threshold:
            d = decimals_apart(conf, threshold)
            reason = f"not sure (confidence {conf:.{d}f} < {threshold:.{d}f})"
        return DigitResult(
            None if reason else best, conf, [float(p) for p in probs], box, reason, digit_img
        )

    def read_digit(self, image: pre.ImageLike, min_confidence: float | None = None) -> DigitResult:
        """Read one digit: the main piece of ink in the image is taken as that digit.

        ``min_confidence`` overrides the Reader's threshold for this call.
        """
        rgb = pre.load_image(image, self.max_pixels)
        prepared = pre.preprocess(rgb, self.max_pixels)
        if prepared.box is None:
            return DigitResult(
                None, 0.0, [0.0] * 10, None, "no digit found (no ink)", prepared.digit
            )
        probs = self.classify(prepared.digit[None])
        probs = self.with_pens(probs, lambda _: prepared.pen_views())[0]
        if self.line_model is not None and probs.max() < PEN_BELOW:
            probs = self.with_line_view(probs, prepared.line_view())
        digit, box = prepared.digit, prepared.box
        if probs.max() < PEN_BELOW and prepared.fragments is not None:
            # unsure: the piece may be a fragment of a digit a thin pen broke
            # apart; the digit with its fragments wins when it reads more surely
            joined = self.classify(prepared.fragments[0][None])[0]
            if joined.max() > probs.max():
                probs, (digit, box) = joined, prepared.fragments
        blob = pre.solid_blob(rgb, box, digit, prepared.widened)
        gate = "not a digit (a solid blob)" if blob else not_a_digit(digit)
        return self._result(digit, probs, box, gate, min_confidence)

    def find_digits(
        self, rgb: np.ndarray
    ) -> tuple[pre.InkMap, list[list[seg.Piece]], list[tuple[int, list[seg.Piece]]]]:
        """Where :meth:`read_number` finds digits in an RGB image: its ink map, its
        lines as found (the line model sees them whole) and, for those with
        digits, the line's index and its digit pieces (see ``seg.find_digits``)."""
        im = pre.erase_frames(pre.ink_map(rgb))
        mask, threshold = pre.binarize(im.ink, thr=im.otsu())
        whole = self.whole if self.whole_check is not None else None
        raw_lines, found_lines = seg.find_digits(
            mask, im.ink, self.classify, pre.to_mnist, whole, threshold, im.tone
        )
        if len(found_lines) > 1:
            # several lines: rows of digits, or one row of light digits broken
            # into fragments at a threshold lifted by bolder ink; the fragments
            # join into fewer lines at a lower level (see pre.binarize_lower)
            mask, level = pre.binarize_lower(im.ink, threshold)
            if level < threshold:
                lower = seg.find_digits(
                    mask, im.ink, self.classify, pre.to_mnist, whole, level, im.tone
                )
                if lower[1] and len(lower[1]) < len(found_lines):
                    raw_lines, found_lines = lower
        return im, raw_lines, found_lines

    def read_number(
        self, image: pre.ImageLike, min_confidence: float | None = None
    ) -> NumberResult:
        """Read every digit, line by line, left to right (``min_confidence`` as above)."""
        rgb = pre.load_image(image, self.max_pixels)
        im, raw_lines, found_lines = self.find_digits(rgb)
        lines = [d for _, d in found_lines]
        if not lines:
            why = "only marks: dashes, dots, rules" if raw_lines else "no ink"
            return NumberResult([], [], f"no digit found ({why})")
        pieces = [p for line in lines for p in line]
        crops = seg.crops(pieces, im.ink, pre.to_mnist)

        def pens(i: int) -> np.ndarray:
            p = pieces[i]
            return pre.pen_views(im.ink[p.y : p.y + p.h, p.x : p.x + p.w], p.mask)

        probs = self.with_pens(self.classify(crops), pens)
        k = 0
        digits: list[list[DigitResult]] = []
        for line in lines:
            row = []
            for p in line:
                box = im.to_original(p.box)
                row.append(
                    self._result(crops[k], probs[k], box, not_a_digit(crops[k]), min_confidence)
                )
                k += 1
            digits.append(row)
        counts = [1.0] * len(digits)
        if self.line_model is not None:
            views = [
                line_view(im.ink, raw_lines[i], others_of(raw_lines, i)) for i, _ in found_lines
            ]
            line_probs = self.line_model.probabilities([v for v, _ in views])
            fused = [
                self._with_line_model(row, raw_lines[i], probs, geometry, im, min_confidence)
                for row, (i, _), (_, geometry), probs in zip(
                    digits, found_lines, views, line_probs, strict=True
                )
            ]
            digits = [row for row, _ in fused]
            counts = [count for _, count in fused]
        found = [d for row in digits for d in row]
        # a filled shape wider than the page's first window (a disk, a scribbled
        # block) is no digit, as read_digit says (see pre.solid_blob)
        if len(found) <= BLOB_PIECES:
            shape = pre.blob_shape(rgb)  # the image's one blob, if any: found once
            if all(pre.on_blob(shape, d.box, d.image, im.widened) for d in found):
                return NumberResult([], [], "not a digit (a solid blob)")
        lines_read = ["".join(d.text for d in row) for row in digits]
        return NumberResult(lines_read, digits, count_confidences=counts)

    def _with_line_model(
        self,
        row: list[DigitResult],
        line: list[seg.Piece],
        probs: np.ndarray,
        geometry: Geometry,
        im: pre.InkMap,
        min_confidence: float | None,
    ) -> tuple[list[DigitResult], float]:
        """One line's digits as the digit classifier and the line model read them together,
        and the probability that the line has as many digits as that.

        When both find as many digits, each digit's probabilities become the
        normalised product of the classifier's and the line model's (at the
        step where it reads that digit best), the latter raised to the line
        model's ``same_weight``; a digit whose crop has too little ink for a
        digit (a thin pen's fragment: its faint strokes fell below the
        threshold) is then read, not refused, if the two together read it at
        least READ_AS_SEEN sure. When they disagree on how many digits there
        are, the reading with the higher joint score wins: the classifier's
        own reading scores its log-probability plus ``count_weight`` times its
        log-probability under the line model; so does each reading of the
        classifier's digits but one (a mark it took for a digit), plus
        ``drop_penalty``; the line model's reading scores ``count_weight``
        times its own, plus ``count_penalty`` per digit of difference. On a
        line whose digits are far from equally tall (the tallest over
        ``uneven_heights`` times the median), unlike the numbers
        the line model learned from, ``uneven_count_weight`` replaces
        ``count_weight``. Either way, the line model's own reading replaces
        the chosen one when the line model is sure of its reading and sure
        that the chosen one is wrong (see :meth:`_line_is_sure`), and when
        the two count differently and its reading is the chosen one with one
        digit more that it prefers (see :meth:`_line_found_more`), except on
        such an uneven line (the joint line model is sure of wrong readings
        of a "3.000" with small 0s: "3009"). The
        weights are the line model's (its card's ``fusion``, chosen on
        development sets; see LineModel).

        The confidences are calibrated on development lines: the fused
        log-probabilities (and the line model's own, when its reading wins)
        are divided by ``temperature``; when the two models count differently,
        the line's count is taken to be right with probability
        ``count_confidence`` whichever reading wins, and when they count
        alike, with probability 1.
        """
        fusion = self.line_model.fusion

        temperature = fusion["temperature"]
        text, _, steps = decode(probs)
        digit_probs = probs[:, :BLANK]
        per_step = digit_probs / np.clip(digit_probs.sum(axis=1, keepdims=True), 1e-9, None)

        def theirs() -> np.ndarray:
            """The line model's own reading: each step's digits, tempered."""
            return _tempered(np.log(np.clip(per_step, 1e-12, None)), temperature)

        heights = [d.box[3] for d in row if d.box is not None]
        uneven = len(heights) > 1 and max(heights) > fusion["uneven_heights"] * np.median(heights)
        if len(text) == len(row):
            fused = [
                np.log(np.clip(d.probabilities, 1e-6, 1.0))
                + fusion["same_weight"] * np.log(np.clip(per_step[t], 1e-6, 1.0))
                for d, t in zip(row, steps, strict=True)
            ]
            chosen = [_tempered(f, temperature) for f in fused]
            if not uneven and self._line_is_sure(probs, text, chosen):
                own = theirs()
                chosen = [own[t] for t in steps]
            out = []
            for d, p in zip(row, chosen, strict=True):
                gate = d.reason if d.reason and not d.reason.startswith("not sure") else None
                if gate and gate.startswith(TOO_LITTLE_INK) and float(p.max()) >= READ_AS_SEEN:
                    gate = None  # the line model reads a digit there: its faint ink
                out.append(self._result(d.image, p, d.box, gate, min_confidence))
            return out, 1.0
        weight = fusion["uneven_count_weight" if uneven else "count_weight"]

        def line_score(digits: str) -> float:
            """``weight`` times the log-probability of ``digits`` under the line model."""
            return weight * np.log(max(string_probability(probs, digits), 1e-30))

        # each of the classifier's digits as it reads it, and its log-probability
        chars = [str(int(np.argmax(d.probabilities))) for d in row]
        logs = [np.log(max(float(np.max(d.probabilities)), 1e-6)) for d in row]

        def scored(keep: list[int], penalty: float) -> tuple[float, list[DigitResult]]:
            """The reading of the classifier's digits ``keep``: their log-probabilities
            plus the line model's score of their string."""
            score = sum(logs[k] for k in keep) + line_score("".join(chars[k] for k in keep))
            return score + penalty, [row[k] for k in keep]

        # the classifier's reading, and the same without one of its pieces (a
        # tail stroke or a mark it took for a digit)
        every = list(range(len(row)))
        readings = [scored(every, 0.0)]
        if len(row) > 1:
            drop = fusion["drop_penalty"]
            readings += [scored(every[:j] + every[j + 1 :], drop) for j in every]
        ours_score, ours = max(readings, key=lambda r: r[0])
        theirs_score = line_score(text)
        theirs_score += fusion["count_penalty"] * abs(len(text) - len(row))
        ours_probs = [d.probabilities for d in ours]
        if (ours_score >= theirs_score or not text) and (
            uneven
            or not (
                self._line_is_sure(probs, text, ours_probs)
                or self._line_found_more(probs, text, steps, ours, line, geometry, im)
            )
        ):
            return ours, fusion["count_confidence"]
        digits = self._line_digits(line, steps, theirs(), geometry, im, min_confidence)
        return digits, fusion["count_confidence"]

    def _line_is_sure(self, probs: np.ndarray, text: str, digits: list) -> bool:
        """Whether the line model's own reading ``text`` replaces the reading
        ``digits`` (each digit's probabilities) the two models chose together.

        It does when the line model gives its reading at least ``sure_line``
        probability (its CTC probability, every alignment) and the chosen one
        less than ``sure_margin`` times that: the line model is sure, and sure
        that the other reading is wrong. On development numbers the line model
        is right in most of the digits the two models read differently.
        """
        fusion = self.line_model.fusion
        ours = "".join(str(int(np.argmax(p))) for p in digits)
        if not text or ours == text:
            return False
        sure = string_probability(probs, text)
        if sure < fusion["sure_line"]:
            return False
        return string_probability(probs, ours) < fusion["sure_margin"] * sure

    def _line_found_more(
        self,
        probs: np.ndarray,
        text: str,
        steps: list[int],
        digits: list[DigitResult],
        line: list[seg.Piece],
        geometry: Geometry,
        im: pre.InkMap,
    ) -> bool:
        """Whether the line model's reading ``text`` (read at ``steps``) is the
        chosen reading ``digits`` with one digit more, found where the
        segmentation can have missed one, and the line model gives the chosen
        reading less than ``found_more`` times the probability of its own.

        The extra digit must lie within the chosen digits' span, between two of
        them (a faint digit the segmentation missed) or inside a box at least
        as wide as it is tall (a 1 joined to its neighbour, two digits taken
        for one): on check amounts the line model reads a tail after the
        amount as a digit, and a 1 with a long flag as "11". On development
        numbers (seeds 10-33) this never turned a right reading wrong; it
        mended 14 of 9,600 (docs/BENCHMARKS.md, session 42).
        """
        margin = self.line_model.fusion["found_more"]
        ours = "".join(str(int(np.argmax(d.probabilities))) for d in digits)
        boxes = [d.box for d in digits if d.box is not None]
        if not margin or not boxes or len(text) != len(ours) + 1:
            return False
        extra = [i for i in range(len(text)) if text[:i] + text[i + 1 :] == ours]
        if not extra:
            return False
        if string_probability(probs, ours) >= margin * string_probability(probs, text):
            return False
        lo = min(x for x, _, _, _ in boxes)
        hi = max(x + w for x, _, w, _ in boxes)
        middle = (min(p.y for p in line) + max(p.y + p.h for p in line)) / 2
        for i in extra:
            x = im.to_original((self._step_x(geometry, steps[i]), middle, 1, 1))[0]
            holding = [b for b in boxes if b[0] <= x <= b[0] + b[2]]
            if lo <= x <= hi and all(w >= h for _, _, w, h in holding):
                return True
        return False

    def _step_x(self, geometry: Geometry, step: int) -> float:
        """The ink map's column where the line model reads a digit at ``step``:
        moved by the model's ``spike_offset`` (a step is not the digit's centre)."""
        lag = self.line_model.spike_offset
        return geometry.x0 + ((step - lag) * STEP + STEP / 2) / geometry.scale

    def _line_digits(
        self,
        line: list[seg.Piece],
        steps: list[int],
        per_step: np.ndarray,
        geometry: Geometry,
        im: pre.InkMap,
        min_confidence: float | None,
    ) -> list[DigitResult]:
        """Digits where the line model reads them: boxes between its steps' midpoints.

        A step is where the model marks a digit, which is not the digit's
        centre: each is moved by the model's ``spike_offset`` first.
        """
        xs = [self._step_x(geometry, t) for t in steps]
        x_lo = max(0.0, geometry.x0)
        x_hi = min(float(im.ink.shape[1]), geometry.x0 + geometry.columns / geometry.scale)
        y_lo = min(p.y for p in line)
        y_hi = max(p.y + p.h for p in line)
        half = 0.5 * seg.digit_height(line) * 0.7  # half a typical digit's width
        out = []
        for i, (x, t) in enumerate(zip(xs, steps, strict=True)):
            a = (xs[i - 1] + x) / 2 if i else x - half
            b = (x + xs[i + 1]) / 2 if i + 1 < len(xs) else x + half
            a = int(min(max(x_lo, round(a)), im.ink.shape[1] - 1))
            b = max(int(min(x_hi, round(b))), a + 1)
            near = [p for p in line if p.x < b and p.x + p.w > a]
            y0 = min((p.y for p in near), default=y_lo)
            y1 = max((p.y + p.h for p in near), default=y_hi)
            mask = np.zeros((y1 - y0, b - a), bool)
            for p in near:
                xa, xb = max(a, p.x), min(b, p.x + p.w)
                mask[p.y - y0 : p.y - y0 + p.h, xa - a : xb - a] |= p.mask[:, xa - p.x : xb - p.x]
            image = pre.to_mnist(im.ink[y0:y1, a:b], mask if mask.any() else None)
            box = im.to_original((a, y0, b - a, y1 - y0))
            out.append(self._result(image, per_step[t], box, None, min_confidence))
        return out

    def read(self, image: pre.ImageLike, mode: str = "auto") -> DigitResult | NumberResult:
        """``digit``, ``number``, or ``auto``: a number if more than one digit is found,
        else the one digit as :meth:`read_digit` reads it."""
        if mode == "digit":
            return self.read_digit(image)
        if mode == "number":
            return self.read_number(image)
        if mode != "auto":
            raise ValueError(f"mode must be digit, number or auto, got {mode!r}")
        rgb = pre.load_image(image, self.max_pixels)  # decoded once for both readings
        result = self.read_number(rgb)
        if sum(len(line) for line in result.digits) > 1:
            return result
        # one digit or none: read as one digit, which reads single digits better
        # (more of a faint digit's ink, and the line model's view of it)
        digit = self.read_digit(rgb)
        if digit.box is None and result.digits:
            return result.digits[0][0]
        return digit


def decimals_apart(value: float, other: float, least: int = 2, most: int = 6) -> int:
    """The fewest decimals, at least ``least``, that show ``value`` and ``other`` apart
    (a confidence of 0.99987 under a threshold of 0.9999 is not "1.00 < 1.00")."""
    d = least
    while d < most and f"{value:.{d}f}" == f"{other:.{d}f}":
        d += 1
    return d


def shipped_line_model(model: str | os.PathLike[str] | None) -> Path | bool:
    """The shipped line model that goes with digit model ``model``, or False if none is shipped.

    A shipped digit model (``checks``) has its own line model when one is
    shipped in its folder (``checks/line``); any other model gets the default.
    """
    name = str(model) if model is not None else ""
    if name in SHIPPED_MODELS and not Path(name).exists():
        own = shipped_model_path(folder=f"{SHIPPED_MODELS[name]}/{LINE_DIR}")
        if own.is_file():
            return own
    shipped = shipped_model_path(folder=LINE_DIR)
    return shipped if shipped.is_file() else False


def line_model_option(text: str | None) -> str | bool | None:
    """A ``--line-model`` option's value as Reader's ``line_model``: None (the
    digit model's own), False for ``none``, or the path given."""
    return {None: None, "none": False}.get(text, text)


def _tempered(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities (last axis) from log-probabilities divided by ``temperature``."""
    p = np.exp((log_probs - log_probs.max(axis=-1, keepdims=True)) / temperature)
    return p / p.sum(axis=-1, keepdims=True)


TOO_LITTLE_INK = "not a digit (too little ink"  # how not_a_digit says it, up to the share


def not_a_digit(digit: np.ndarray) -> str | None:
    """A reason if a preprocessed 28x28 cannot be a digit (a blob, a bare speck), else None."""
    coverage = seg.coverage(digit)
    if coverage > seg.DIGIT_COVERAGE[1]:
        return f"not a digit (a solid blob: {100 * coverage:.0f}% ink)"
    if coverage < seg.DIGIT_COVERAGE[0]:
        return f"{TOO_LITTLE_INK}: {100 * coverage:.1f}%)"
    return None


def read_digit(image: pre.ImageLike, **kwargs) -> DigitResult:
    """One-off convenience: ``Reader(**kwargs).read_digit(image)``."""
    return Reader(**kwargs).read_digit(image)


def read_number(image: pre.ImageLike, **kwargs) -> NumberResult:
    """One-off convenience: ``Reader(**kwargs).read_number(image)``."""
    return Reader(**kwargs).read_number(image)
