"""Segmentation rules on hand-made pieces: what is a mark, what belongs to a line."""

from __future__ import annotations

import cv2
import numpy as np

from inkdigits.preprocessing import to_mnist
from inkdigits.segmentation import (
    WIDEST,
    Piece,
    candidate_segments,
    drop_marks,
    group_lines,
    split_piece,
)


def piece(x: int, y: int, w: int, h: int) -> Piece:
    return Piece(x, y, w, h, np.ones((h, w), bool))


def slanted_line(n: int = 4, height: int = 60, drop: int = 8) -> list[Piece]:
    """n digit-sized pieces, each ``drop`` px lower than the one before (a rotated photo)."""
    return [piece(100 + 70 * i, 100 + drop * i, 40, height) for i in range(n)]


def test_a_short_piece_low_on_a_slanted_line_is_a_mark():
    digits = slanted_line()
    # 0.6 of a digit tall, its top 0.55 of a digit below the tops of its neighbours
    comma = piece(100 + 70 * 2 - 20, 100 + 8 * 2 - 4 + 33, 10, 36)
    kept = drop_marks(sorted([*digits, comma], key=lambda p: p.x))
    assert [p.box for p in kept] == [p.box for p in digits]


def test_a_short_piece_high_on_the_line_is_kept():
    digits = slanted_line()
    # the same size, but level with the digits' tops: a digit written small (cents)
    small = piece(100 + 70 * 4, 100 + 8 * 4, 30, 36)
    assert small.box in [p.box for p in drop_marks([*digits, small])]


def test_a_comma_hanging_below_a_slanted_line_stays_in_it():
    digits = slanted_line(drop=12)
    # its top a little below the bottom of the digit before it (the line falls to the right)
    before = digits[1]
    comma = piece(before.x + before.w + 8, before.y + before.h + 4, 10, 30)
    lines = group_lines([*digits, comma])
    assert len(lines) == 1 and comma.box in [p.box for p in lines[0]]
    # a second line of digits under the first stays a line of its own
    below = [piece(p.x, p.y + 150, p.w, p.h) for p in digits]
    assert [len(line) for line in group_lines([*digits, *below])] == [4, 4]


def test_a_chain_of_touching_digits_is_never_read_as_one():
    # five digit-wide blocks joined by a bar: far wider than any one digit, so
    # it is split even by a classifier that reads anything as a sure "2"
    height = 40
    mask = np.zeros((height, 5 * 28), bool)
    for i in range(5):
        mask[:, i * 28 + 4 : i * 28 + 24] = True
    mask[height // 2 - 2 : height // 2 + 2, :] = True
    chain = Piece(0, 0, mask.shape[1], height, mask)
    ink = mask.astype(np.float32)

    def sure_two(digits):
        p = np.full((len(digits), 10), 0.01 / 9, np.float32)
        p[:, 2] = 0.99
        return p

    parts = split_piece(chain, height, ink, sure_two, to_mnist)
    assert len(parts) >= 2
    assert all(p.w <= WIDEST * height for p in parts)


def test_split_segments_follow_the_cuts():
    both = np.zeros((40, 30), np.uint8)
    cv2.line(both, (14, 0), (8, 39), 1, 3)
    cv2.line(both, (20, 0), (14, 39), 1, 3)
    both = both > 0
    pair = Piece(0, 0, both.shape[1], both.shape[0], both)
    cuts, segs = candidate_segments(pair, 40)
    for q in segs.values():  # every segment is ink of the piece, and inside it
        inside = both[q.y - pair.y : q.y - pair.y + q.h, q.x - pair.x : q.x - pair.x + q.w]
        assert q.mask.any() and not (q.mask & ~inside).any()
    assert cuts[0] == 0 and cuts[-1] == pair.w
