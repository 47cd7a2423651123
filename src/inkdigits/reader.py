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
from typing import Any

import numpy as np

from . import preprocessing as pre
from . import segmentation as seg
from .classifier import WHOLE_DIR, Classifier, check_digit_model, shipped_model_path
from .errors import ModelError

UNKNOWN = "?"
# Share of the 28x28 pixels above 50% grey in MNIST digits: 0.1st..99.9th percentile
# is 3.3%..30%. A preprocessed shape far outside it is a blob or a scribble.
COVERAGE_RANGE = (0.012, 0.36)
# a digit read less sure than this is read again with other pens (Reader.with_pens);
# at 0.8-1.0 the development digits' misses are the same, at 0.99 8% are read again
PEN_BELOW = 0.99
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
        """Probability that every digit is right: the product of the digit confidences."""
        confs = [d.confidence for line in self.digits for d in line]
        return float(np.prod(confs)) if confs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "lines": self.lines,
            "confidence": round(self.confidence, 6),
            "digits": [[d.to_dict() for d in line] for line in self.digits],
            "reason": self.reason,
        }


class Reader:
    """Reads digits and numbers with an ONNX model (the shipped one by default).

    ``whole_model`` is the whole-digit check used to split touching digits in
    numbers (a whole-cnn ONNX file; default: the shipped one; False: none, the
    digit classifier alone decides where to cut).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        min_confidence: float = 0.5,
        threads: int = 2,
        max_pixels: int = pre.MAX_PIXELS,
        whole_model: str | os.PathLike[str] | bool | None = None,
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
            reason = f"not sure (confidence {conf:.2f} < {threshold:.2f})"
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
        blob = pre.solid_blob(rgb, prepared.box, prepared.digit)
        gate = "not a digit (a solid blob)" if blob else not_a_digit(prepared.digit)
        return self._result(prepared.digit, probs, prepared.box, gate, min_confidence)

    def read_number(
        self, image: pre.ImageLike, min_confidence: float | None = None
    ) -> NumberResult:
        """Read every digit, line by line, left to right (``min_confidence`` as above)."""
        rgb = pre.load_image(image, self.max_pixels)
        im = pre.ink_map(rgb)
        mask, threshold = pre.binarize(im.ink)
        whole = self.whole if self.whole_check is not None else None
        lines = seg.find_digits(mask, im.ink, self.classify, pre.to_mnist, whole, threshold)
        if not lines:
            return NumberResult([], [], "no digit found (no ink)")
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
                box = pre.to_original(p.box, im.scale)
                row.append(
                    self._result(crops[k], probs[k], box, not_a_digit(crops[k]), min_confidence)
                )
                k += 1
            digits.append(row)
        found = [d for row in digits for d in row]
        # a filled shape reads as a 0 (hollowed by background correction) or as
        # 11 (a rectangle's sides): no digit, as read_digit says
        if len(found) <= BLOB_PIECES:
            shape = pre.blob_shape(rgb)  # the image's one blob, if any: found once
            if all(pre.on_blob(shape, d.box, d.image) for d in found):
                return NumberResult([], [], "not a digit (a solid blob)")
        return NumberResult(["".join(d.text for d in row) for row in digits], digits)

    def read(self, image: pre.ImageLike, mode: str = "auto") -> DigitResult | NumberResult:
        """``digit``, ``number``, or ``auto``: a number if more than one digit is found."""
        if mode == "digit":
            return self.read_digit(image)
        if mode == "number":
            return self.read_number(image)
        if mode != "auto":
            raise ValueError(f"mode must be digit, number or auto, got {mode!r}")
        result = self.read_number(image)
        if sum(len(line) for line in result.digits) == 1:
            return result.digits[0][0]
        if not result.digits:
            return self.read_digit(image)
        return result


def not_a_digit(digit: np.ndarray) -> str | None:
    """A reason if a preprocessed 28x28 cannot be a digit (a blob, a bare speck), else None."""
    coverage = float((digit > 127).mean())
    if coverage > COVERAGE_RANGE[1]:
        return f"not a digit (a solid blob: {100 * coverage:.0f}% ink)"
    if coverage < COVERAGE_RANGE[0]:
        return f"not a digit (too little ink: {100 * coverage:.1f}%)"
    return None


def read_digit(image: pre.ImageLike, **kwargs) -> DigitResult:
    """One-off convenience: ``Reader(**kwargs).read_digit(image)``."""
    return Reader(**kwargs).read_digit(image)


def read_number(image: pre.ImageLike, **kwargs) -> NumberResult:
    """One-off convenience: ``Reader(**kwargs).read_number(image)``."""
    return Reader(**kwargs).read_number(image)
