"""Training data of the whole-digit check: labels follow whose ink a cut-out holds."""

from __future__ import annotations

import numpy as np
import pytest

from inkdigits import segment_data as sd
from inkdigits.classifier import Classifier
from inkdigits.segmentation import Piece


def _two_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two 10x10 solid 'digits' side by side: their layers, owner map, own masks, totals."""
    layers = np.zeros((2, 20, 40), np.float32)
    layers[0, 5:15, 5:15] = 1.0
    layers[1, 5:15, 15:25] = 1.0
    own = layers > 0.35
    return layers.argmax(axis=0), own, own.sum(axis=(1, 2))


def _piece(own: np.ndarray, x0: int, x1: int) -> Piece:
    mask = own.any(axis=0)[:, x0:x1]
    rows = np.flatnonzero(mask.any(axis=1))
    return Piece(x0, int(rows[0]), x1 - x0, len(rows), mask[rows[0] : rows[-1] + 1])


@pytest.mark.parametrize(
    "x0, x1, want",
    [
        (5, 15, 0),  # exactly the first digit
        (15, 25, 1),  # exactly the second
        (5, 25, -1),  # both: not one whole digit
        (5, 10, -1),  # half of the first
        (5, 17, None),  # the first and a sliver (17%) of the second: left out
    ],
)
def test_label_follows_whose_ink_the_cut_out_holds(x0, x1, want):
    owner, own, totals = _two_digits()
    assert sd._label(_piece(own, x0, x1), owner, own, totals) == want


def test_segments_repeat_with_the_seed_and_hold_both_kinds(mnist):
    images, labels = mnist.train_images[:500], mnist.train_labels[:500]
    x, y = sd.make_segments(images, labels, lines=30, seed=3)
    x2, y2 = sd.make_segments(images, labels, lines=30, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape[1:] == (28, 28) and x.dtype == np.uint8 and len(x) == len(y)
    assert (y == sd.NOT_WHOLE).sum() > 0 and (y < sd.NOT_WHOLE).sum() > 0


def test_whole_cut_outs_read_as_the_digit_they_are_labelled(mnist):
    """A cut-out labelled with a digit really holds it: the digit model reads it so."""
    x, y = sd.make_segments(mnist.test_images, mnist.test_labels, lines=60, seed=5)
    whole = y < sd.NOT_WHOLE
    read = Classifier().predict_proba(x[whole]).argmax(axis=1)
    assert whole.sum() >= 60
    assert (read == y[whole]).mean() >= 0.95
