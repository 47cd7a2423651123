"""Find the digits of a number: components, merge pieces, lines, drop marks, split touching digits.

Works on the binary ink mask of :mod:`inkdigits.preprocessing` (working
resolution). Each found digit is a :class:`Piece`: a box and the mask of its
pixels inside the box. Splitting touching digits asks a classifier (any
function from MNIST-style digits to probabilities) which cut reads best.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from .preprocessing import INK_FLOOR, connected_components, faint_level

FILL_MAX = 1.35  # filling a broken piece may add at most this share of its ink (see fill_in)
BAR_COLUMNS = 0.9  # a flat piece with one run of ink in this share of its columns is a bar
# a single digit's fragments far from its main piece (see with_fragments): at
# least this share of its ink strength, at most this many times its size away
FRAGMENT_WEAK = 0.4
FRAGMENT_GAP = 1.0
FRAGMENT_MOST = 3.0  # ... and the digit they make at most this many times its size
WIDEST = 1.8  # the widest one digit can be, in digit heights (a 5 with a long bar: 1.5)
NARROWEST_PAIR = 0.4  # the narrowest two touching digits can be (two 1s), in digit heights
STACKED_GAP = 0.2  # halves of one digit this near (in the taller's heights) join (join_stacked)
STACKED_TALL = 2.2  # ... when together at most this many times the taller half's height
PAIR_PART = 0.75  # the shortest a digit of a narrow touching pair can be, in the pair's heights
SCORE_FLOOR = 1e-6  # the lowest probability a segment of a split scores (its log: -13.8)
LEAST_CONFIDENCE = 0.099  # the largest of ten probabilities is at least 0.1
MARK_SHORT = 0.4  # pieces shorter than this many digit heights are marks (see find_lines)
# a piece grows into the fainter ink joined to it when that ink makes one
# digit-sized shape: GROW_TALL (in digit heights) tall, not wider than tall;
# a piece too short for a digit (a thin 7's bar whose stem is fainter) when
# the faint ink reaches at most GROW_ABOVE above it; a taller one (a thin 4
# whose arm fades) when the faint ink makes it GROW_MORE digit heights taller
# or wider (see grow_into_faint)
GROW_TALL = (0.6, 1.3)
GROW_ABOVE = 0.2
GROW_MORE = 0.2
GROW_WIDE = 1.1  # ... and then the digit may be this many times as wide as tall (a round 0)
# whole digits the first look missed are looked for at ink down to FAINT_SEEK of
# the threshold, and at least FAINT_NOISE times the 90th percentile of the paper
# around them (see faint_digits)
FAINT_SEEK = 0.4
FAINT_NOISE = 5.0
FAINT_TALL = (0.7, 1.3)  # ... and are digits when this many digit heights tall
# the share of a preprocessed 28x28 that ink (above 50% grey) must cover, at least
# and at most, for it to be a digit. In MNIST digits its 0.1st..99.9th percentile
# is 3.3%..30%: a shape far outside it is a bare stroke or speck, or a blob
DIGIT_COVERAGE = (0.012, 0.36)
Classify = Callable[[np.ndarray], np.ndarray]  # (N, 28, 28) uint8 -> (N, 10) probabilities
Whole = Callable[[np.ndarray], np.ndarray]  # (N, 28, 28) uint8 -> (N,) P(one whole digit)


@dataclass
class Piece:
    """Ink that belongs together: ``mask`` covers the box ``(x, y, w, h)``."""

    x: int
    y: int
    w: int
    h: int
    mask: np.ndarray  # bool (h, w)
    digit: np.ndarray | None = field(default=None, repr=False, compare=False)  # see crops()

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def crops(pieces: list[Piece], ink: np.ndarray, to_mnist: Callable) -> np.ndarray:
    """The pieces as MNIST-style digits (N, 28, 28) uint8, each made once and kept on its piece.

    A piece the whole-digit check looked at and then kept is read again at the
    end; its 28x28 is not made twice.
    """
    for p in pieces:
        if p.digit is None:
            p.digit = to_mnist(ink[p.y : p.y + p.h, p.x : p.x + p.w], p.mask)
    return np.stack([p.digit for p in pieces])


def coverage(digit: np.ndarray) -> float:
    """The share of a preprocessed 28x28 (uint8) above 50% grey (see DIGIT_COVERAGE)."""
    return float((digit > 127).mean())


def components(mask: np.ndarray, min_area: int = 4) -> list[Piece]:
    """8-connected components of a binary mask (single pixels of noise skipped early)."""
    comps = connected_components(mask.astype(np.uint8))
    out = []
    for i in np.flatnonzero(comps.stats[1:, cv2.CC_STAT_AREA] >= min_area) + 1:
        x, y, w, h, _area = (int(v) for v in comps.stats[i])
        out.append(Piece(x, y, w, h, comps.mask_of(i)))
    return out


def drop_specks(pieces: list[Piece], rel: float = 0.015, min_area: int = 4) -> list[Piece]:
    """Remove noise: components far smaller than the largest one."""
    if not pieces:
        return []
    biggest = max(p.area for p in pieces)
    return [p for p in pieces if p.area >= max(min_area, rel * biggest)]


def union(a: Piece, b: Piece) -> Piece:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1, y1 = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
    m = np.zeros((y1 - y0, x1 - x0), bool)
    for p in (a, b):
        m[p.y - y0 : p.y - y0 + p.h, p.x - x0 : p.x - x0 + p.w] |= p.mask
    return Piece(x0, y0, x1 - x0, y1 - y0, m)


def _x_overlap(a: Piece, b: Piece) -> float:
    """Horizontal overlap as a fraction of the narrower piece."""
    inter = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    return max(0.0, inter) / max(1, min(a.w, b.w))


def _y_gap(a: Piece, b: Piece) -> int:
    return max(a.y, b.y) - min(a.y + a.h, b.y + b.h)  # negative when they overlap


def _x_gap(a: Piece, b: Piece) -> int:
    return max(a.x, b.x) - min(a.x + a.w, b.x + b.w)  # negative when they overlap


def _belong_together(
    a: Piece, b: Piece, height: float | None, linked: Callable[[Piece, Piece], bool] | None
) -> bool:
    tall = max(a.h, b.h)
    merged_h = max(a.y + a.h, b.y + b.h) - min(a.y, b.y)
    merged_w = max(a.x + a.w, b.x + b.w) - min(a.x, b.x)
    # one above the other: a 5's detached bar, a broken 4, the two strokes of a 7 with a bar
    if _x_overlap(a, b) >= 0.5 and _y_gap(a, b) <= 0.25 * tall and merged_h <= 1.6 * tall:
        return True
    # fragments of one thin or faint digit: both shorter than a digit, together digit-sized
    if height is not None and tall < 0.8 * height and _x_gap(a, b) <= 0.08 * height:
        if merged_w <= 0.85 * height and merged_h <= 1.25 * height:
            return True
    # fragments of one thin digit still joined by fainter ink (a pen line
    # that thins out): together at most 1.5 digits tall and not wider than tall
    if height is not None and linked is not None and tall < 0.8 * height:
        return merged_h <= 1.5 * height and merged_w <= 1.1 * merged_h and linked(a, b)
    return False


def merge_pieces(
    pieces: list[Piece],
    height: float | None = None,
    linked: Callable[[Piece, Piece], bool] | None = None,
) -> list[Piece]:
    """Join the parts of one digit: a detached bar of a 5, a broken 4, dotted strokes.

    ``height`` (the digits' typical height, if known) also lets fragments of a
    thin or faint digit join when together they make one digit-sized piece.
    """
    items = sorted(pieces, key=lambda p: p.x)
    changed = True
    while changed:
        changed = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                if _belong_together(items[i], items[j], height, linked):
                    items[i] = union(items[i], items[j])
                    del items[j]
                    changed = True
                    break
            if changed:
                break
    return items


def _share_rows(p: Piece, q: Piece) -> bool:
    """Whether two pieces overlap vertically by at least half the shorter one's height."""
    return min(p.y + p.h, q.y + q.h) - max(p.y, q.y) >= 0.5 * min(p.h, q.h)


def join_stacked(pieces: list[Piece]) -> list[Piece]:
    """Join the two halves of a digit broken across (a 5's bar and bowl, a 2's arc and foot).

    A thin pen that skips across a digit leaves two pieces, one on the other,
    nearly touching (at most STACKED_GAP of the taller apart, or overlapping
    as little); read as they are, they make two lines. Two rows of digits
    written close together look the same pair by pair, so a pair stays apart
    when the page shows two rows there: some other piece beside the upper
    half only, and on the same side of the pair some other piece beside the
    lower half only (beside a broken digit in a number, the neighbours span
    both halves; in a number written on a slope, those beside one half only
    are higher on one side and lower on the other). Two lone
    digits one on the other stay apart when together they are more than 2.5
    times as tall as wide (a digit broken across is rarely that narrow); an
    '=' (together less than 3/4 as tall as wide) stays two marks. A pair more
    than 1.25 times as tall as the digits beside both halves stays apart; only
    pieces at least 3/4 as tall as the page's tallest count as such digits (a
    thin pen breaks the others up too: beside a 5 broken across, a fragment
    of a broken 9 is no measure of how tall the digits are).
    """
    items = sorted(pieces, key=lambda p: p.x)
    while True:
        for i, j in _overlapping_in_x(items):
            merged = _stacked_halves(items, i, j)
            if merged is not None:
                items[i] = merged
                del items[j]
                items.sort(key=lambda p: p.x)
                break
        else:
            return items


def _overlapping_in_x(items: list[Piece]) -> Iterator[tuple[int, int]]:
    """Index pairs (i, j), i < j, of x-sorted pieces whose boxes overlap in x."""
    for i, a in enumerate(items):
        for j in range(i + 1, len(items)):
            if items[j].x >= a.x + a.w:
                break  # sorted by x: this piece and the ones after it are right of a
            yield i, j


def _stacked_halves(items: list[Piece], i: int, j: int) -> Piece | None:
    """items[i] and items[j] joined if they are the halves of one digit (see join_stacked)."""
    a, b = items[i], items[j]
    tall = max(a.h, b.h)
    if _x_overlap(a, b) < 0.3 or abs(_y_gap(a, b)) > STACKED_GAP * tall:
        return None  # not one on the other (side by side, or far apart)
    merged = union(a, b)
    if merged.h > STACKED_TALL * tall or not 0.75 * merged.w <= merged.h <= 2.5 * merged.w:
        return None  # too tall for one digit, flat ('='), or too narrow (two lone digits)
    upper, lower = (a, b) if a.y <= b.y else (b, a)
    # digit-sized pieces beside each half (specks and marks do not make a row)
    others = [p for k, p in enumerate(items) if k not in (i, j) and p.h >= 0.6 * min(a.h, b.h)]
    centre = merged.x + merged.w / 2

    def sides(half: Piece, other: Piece) -> set[bool]:
        """Which sides of the pair (True: right) have a piece beside ``half`` only."""
        return {
            p.x + p.w / 2 > centre
            for p in others
            if _share_rows(p, half) and not _share_rows(p, other)
        }

    if sides(upper, lower) & sides(lower, upper):
        return None  # two rows of digits
    # the digits beside both halves; a piece under 3/4 of the page's tallest is
    # no measure of a digit's height (a fragment of another thin digit broken up)
    tallest = max(p.h for p in items)
    mates = [
        p.h
        for p in others
        if p.h >= 0.75 * tallest and _share_rows(p, upper) and _share_rows(p, lower)
    ]
    if mates and merged.h > 1.25 * float(np.median(mates)):
        return None  # taller than the digits beside it
    return merged


def group_lines(pieces: list[Piece]) -> list[list[Piece]]:
    """Rows of pieces, top to bottom, each left to right.

    A piece joins the line whose nearest pieces (in x) overlap it vertically,
    so a line written at a slant (a rotated photo) stays one line. The last
    three pieces of a line are compared, not only the last: a comma hanging
    below the line barely overlaps the digit after it. A short piece (under
    3/4 of a neighbour's height) whose top is inside that neighbour's rows,
    or just below them on a slanted line, belongs with it however far it
    hangs below: a comma.
    """

    def overlap(p: Piece, q: Piece) -> float:
        if p.h < 0.75 * q.h and q.y <= p.y <= q.y + 1.2 * q.h:
            return 1.0
        return (min(q.y + q.h, p.y + p.h) - max(q.y, p.y)) / max(1, min(p.h, q.h))

    lines: list[list[Piece]] = []
    for p in sorted(pieces, key=lambda p: (p.x, p.y)):
        best, best_overlap = None, 0.0
        for line in lines:
            o = max(overlap(p, q) for q in line[-3:])
            q = line[-1]  # the line's rightmost piece so far
            gap = p.x - (q.x + q.w)
            if o >= 0.35 and gap < 3 * max(p.h, q.h) and o > best_overlap:
                best, best_overlap = line, o
        if best is None:
            lines.append([p])
        else:
            best.append(p)
    lines.sort(key=lambda line: float(np.median([q.cy for q in line])))
    return [sorted(line, key=lambda q: q.x) for line in lines]


def extent(line: list[Piece]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the box around the pieces (x1 and y1 exclusive)."""
    return (
        min(p.x for p in line),
        min(p.y for p in line),
        max(p.x + p.w for p in line),
        max(p.y + p.h for p in line),
    )


def digit_height(line: list[Piece]) -> float:
    """The height of the line's digits: median of the taller half (punctuation is short)."""
    hs = sorted((p.h for p in line), reverse=True)
    return float(np.median(hs[: max(1, (len(hs) + 1) // 2)]))


def drop_marks(line: list[Piece]) -> list[Piece]:
    """Drop what is no digit: '.', ',', '-', '=' and underlines/baselines (short or flat).

    A mark is short beside the digits, flat, or (a '.' or a ',' as tall as
    half a digit, its tail hanging below the line) short and starting in the
    lower half of the line, where no digit starts.
    """
    if not line:
        return line
    height = digit_height(line)
    tall = [p for p in line if p.h >= 0.75 * height]
    keep = []
    for p in line:
        # underlines, printed rules, dashes: even on a line of nothing else
        rule = _flat(p) and (p.h < 0.6 * height or _bar(p))
        short = p.h < 0.5 * height  # '.', ',', '-', '=', specks on the line
        low = p.h < 0.75 * height and tall and p.y > _top_of_line(tall, p.cx) + 0.45 * height
        if (rule or short or low) and not _small_loop(p, height):
            continue  # a mark, not a small digit
        keep.append(p)
    return keep


def _small_loop(p: Piece, height: float) -> bool:
    """Small digits with closed loops (the little 0s of "3400", "1.000"), never punctuation.

    No mark on an amount encloses background: '.', ',', '-' and '=' are
    strokes or dots. A piece at least a third of the digits' height with a
    round hole, neither flat nor narrow (a looped comma), is a digit written
    small; a flat one is a row of small 0s if it has a round hole for every
    two heights of its width (a rule has none).
    """
    if p.h < 0.3 * height or p.w < 0.6 * p.h:
        return False
    loops = _round_holes(p)
    if p.w <= 2.5 * p.h:
        return loops >= 1
    return loops >= max(2, p.w / (2 * p.h))


def _round_holes(p: Piece) -> int:
    """How many holes in the piece's ink are round enough for a 0, 6, 8 or 9."""
    outside = np.pad(~p.mask, 1, constant_values=True).view(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 0)  # what is left: background enclosed by ink
    n, _, stats, _ = cv2.connectedComponentsWithStats(outside, connectivity=4)
    return sum(
        area >= max(4, 0.04 * p.h * p.h) and h >= 0.3 * p.h and h >= 0.4 * w
        for _, _, w, h, area in stats[1:n]  # not the slit of an '=' whose ends touch
    )


def _top_of_line(tall: list[Piece], x: float) -> float:
    """Where the digits' tops are at column ``x``: between the nearest digit on each side.

    Interpolated, so a line written at a slant keeps its own top; beyond the
    first or last digit, that digit's top.
    """
    left = [p for p in tall if p.cx <= x]
    right = [p for p in tall if p.cx > x]
    a = max(left, key=lambda p: p.cx) if left else None
    b = min(right, key=lambda p: p.cx) if right else None
    if a is None or b is None:
        return float((a or b).y)
    return a.y + (b.y - a.y) * (x - a.cx) / (b.cx - a.cx)


# --------------------------------------------------------------------------- touching digits


def _sub_piece(piece: Piece, x0: int, x1: int) -> Piece | None:
    m = piece.mask[:, x0:x1]
    rows = np.flatnonzero(m.any(axis=1))
    if len(rows) == 0:
        return None
    return Piece(
        piece.x + x0, piece.y + rows[0], x1 - x0, rows[-1] - rows[0] + 1, m[rows[0] : rows[-1] + 1]
    )


def cut_candidates(piece: Piece, height: float, most: int = 28) -> list[int]:
    """Columns where touching digits may meet: thin spots of the ink profile."""
    profile = piece.mask.sum(axis=0).astype(np.float32)
    profile = np.convolve(profile, np.ones(3) / 3, mode="same")
    spacing = max(2, int(0.12 * height))
    cols = []
    for c in np.argsort(profile, kind="stable"):
        if 0 < c < piece.w and all(abs(c - d) >= spacing for d in cols):
            cols.append(int(c))
        if len(cols) >= most:
            break
    # evenly spaced cuts too, for digits that overlap rather than touch at a thin spot
    step = max(spacing, int(0.5 * height))
    cols += [
        c
        for c in range(step, piece.w - spacing, step)
        if all(abs(c - d) >= spacing // 2 for d in cols)
    ]
    return sorted(set(cols))


def candidate_segments(
    piece: Piece, height: float
) -> tuple[list[int], dict[tuple[int, int], Piece]]:
    """Where a wide piece may be cut, and the segments between two cuts that may be a digit.

    Returns the cut columns (0 and the piece's width included) and, keyed by
    the indices (i, j) of their two cuts, the segments wide and tall enough to
    be a digit. The whole piece is a candidate up to WIDEST digit heights wide:
    a 2 or 5 with a long bar can be half again as wide as it is tall.
    """
    cuts = [0, *cut_candidates(piece, height), piece.w]
    lo, hi = 0.18 * height, 1.35 * max(height, 1.0)
    segs: dict[tuple[int, int], Piece] = {}

    def candidate(i: int, j: int) -> None:
        if cuts[j] - cuts[i] < lo:
            return
        q = _sub_piece(piece, cuts[i], cuts[j])
        if q is not None and q.h >= 0.35 * height:
            segs[(i, j)] = q

    for i in range(len(cuts)):
        for j in range(i + 1, len(cuts)):
            if cuts[j] - cuts[i] > hi:
                break  # wider than a segment may be; the cuts only widen it further
            candidate(i, j)
    if hi < piece.w <= WIDEST * height:  # the whole piece, too wide for the loop: one wide digit
        candidate(0, len(cuts) - 1)
    return cuts, segs


def split_piece(
    piece: Piece,
    height: float,
    ink: np.ndarray,
    classify: Classify,
    to_mnist: Callable,
    whole: Whole | None = None,
) -> list[Piece]:
    """Best segmentation of a wide piece into digits (dynamic programming over cuts).

    Each candidate segment (see :func:`candidate_segments`) is read by the
    classifier; the segmentation with the highest sum of log-confidences wins,
    so a digit is split only where the parts read better than the whole.
    ``whole``, when given, says how likely each segment is one whole digit
    (rather than a part of one, or parts of two); its log is added to each
    segment's score. The classifier alone reads half a 0 as a confident 1.
    """
    cuts, segs = candidate_segments(piece, height)
    if not segs:
        return [piece]
    keys = list(segs)
    n = len(cuts)
    digits = crops(list(segs.values()), ink, to_mnist)
    if whole is None:
        conf = classify(digits).max(axis=1)
        may = np.ones(len(keys), bool)
    else:
        # The classifier's confidence (the largest of ten probabilities) lies
        # in [0.1, 1], so the check alone bounds each segment's score. Only
        # segments that may lie on the best segmentation are classified, and
        # of those only the ones the check gives at least SCORE_FLOOR: below it
        # a segment scores log(SCORE_FLOOR) whatever the classifier reads.
        conf = np.array(whole(digits))  # a copy: the classifier's part is multiplied in below
        high = np.log(np.clip(conf, SCORE_FLOOR, 1.0))
        low = np.log(np.clip(conf * LEAST_CONFIDENCE, SCORE_FLOOR, 1.0))
        may = _may_be_best(keys, high, low, n)
        read = may & (conf >= SCORE_FLOOR)
        if read.any():
            sure = classify(digits[read]).max(axis=1)
            if sure.min() < LEAST_CONFIDENCE:  # no probabilities (a model without a
                # softmax): no bound holds, and the other segments are read too
                rest = ~may & (conf >= SCORE_FLOOR)
                may = np.ones(len(keys), bool)
                if rest.any():
                    conf[rest] *= classify(digits[rest]).max(axis=1)
            conf[read] *= sure
    logs = np.log(np.clip(conf, SCORE_FLOOR, 1.0))
    score = {k: v for k, v, m in zip(keys, logs, may, strict=True) if m}
    best, back = _best_paths(score, n)
    if best[-1] == -np.inf:
        return [piece]
    out, j = [], n - 1
    while j > 0:
        i = back[j]
        out.append(segs[(i, j)])
        j = i
    return out[::-1]


def _best_paths(score: dict[tuple[int, int], float], n: int) -> tuple[list[float], list[int]]:
    """For each of ``n`` cuts, the best total score of segments from cut 0 to it,
    and the cut before it on that path (``score``: segment (i, j) -> its score)."""
    best = [-np.inf] * n
    back = [-1] * n
    best[0] = 0.0
    for j in range(1, n):
        for i in range(j):
            if (i, j) in score and best[i] > -np.inf and best[i] + score[(i, j)] > best[j]:
                best[j], back[j] = best[i] + score[(i, j)], i
    return best, back


def _may_be_best(
    keys: list[tuple[int, int]], high: np.ndarray, low: np.ndarray, n: int
) -> np.ndarray:
    """Which segments (cut pairs ``keys``) may lie on the best path from cut 0 to
    cut n - 1, when each scores between ``low`` and ``high``: those whose best
    path with every score at its highest reaches the best path's least score."""
    up = dict(zip(keys, map(float, high), strict=True))
    least = _best_paths(dict(zip(keys, map(float, low), strict=True)), n)[0][-1]
    if least == -np.inf:
        return np.ones(len(keys), bool)
    to = _best_paths(up, n)[0]  # from the left end to each cut
    rev = {(n - 1 - j, n - 1 - i): v for (i, j), v in up.items()}
    frm = _best_paths(rev, n)[0][::-1]  # from each cut to the right end
    # a margin for rounding: the split sums its scores in float32
    return np.array([to[i] + up[(i, j)] + frm[j] >= least - 1e-3 for i, j in keys])


def split_touching(
    line: list[Piece],
    ink: np.ndarray,
    classify: Classify,
    to_mnist: Callable,
    whole: Whole | None = None,
) -> list[Piece]:
    """Split the pieces of a line that hold more than one digit into the digits they hold.

    A piece much wider than the line's digits is tried; with a whole-digit
    check, so is any piece at least NARROWEST_PAIR digit heights wide that the
    check doubts is one whole digit (a 1 touching its neighbour makes a pair
    no wider than one digit). The whole piece stays a candidate of the split,
    so a digit the check wrongly doubts is still kept whole when it reads best so.
    Such a narrow piece is split only into parts at least PAIR_PART of its
    height: the long flag of a continental 1, cut off, reads as a 1 of its own.
    """
    if not line:
        return line
    height = digit_height(line)
    widths = [p.w for p in line if p.h >= 0.5 * height and p.w <= 1.1 * height]
    typical = float(np.median(widths)) if widths else 0.65 * height
    tried = [
        p.w >= max(1.4 * typical, 0.9 * height) or (p.h < 0.75 * height and p.w >= 1.5 * p.h)
        for p in line
    ]
    wide = list(tried)  # tried for their width alone
    if whole is not None:
        doubt = [i for i, p in enumerate(line) if not tried[i] and p.w >= NARROWEST_PAIR * height]
        if doubt:
            p_whole = whole(crops([line[i] for i in doubt], ink, to_mnist))
            for i, pw in zip(doubt, p_whole, strict=True):
                tried[i] = bool(pw < 0.5)
    out = []
    for p, t, w in zip(line, tried, wide, strict=True):
        if t:
            # a row of small digits ("1.000" with its 0s written small) by their own height
            own = p.h if p.h < 0.75 * height else height
            parts = split_piece(p, own, ink, classify, to_mnist, whole)
            if not w and any(q.h < PAIR_PART * p.h for q in parts):
                parts = [p]  # the flag of a 1, not a digit of a narrow pair
            out.extend(parts)
        else:
            out.append(p)
    return out


def _under(image: np.ndarray, piece: Piece) -> np.ndarray:
    """The values of ``image`` at the piece's pixels."""
    return image[piece.y : piece.y + piece.h, piece.x : piece.x + piece.w][piece.mask]


def ink_strength(piece: Piece, ink: np.ndarray) -> float:
    """Mean ink of the piece's pixels: strokes are strong, shadow edges and smudges weak."""
    return float(_under(ink, piece).mean())


WEAK = 0.55  # a piece whose ink is below this share of the strongest piece's is no stroke
# A weaker piece (down to SAME_PEN_WEAK of the strongest) is kept when it is
# written with the strongest piece's pen in a shadow that dims the page more
# than the ink (see :func:`_same_pen`). Paper, printed patterns and rules are
# far lighter than any pen's ink.
SAME_PEN_WEAK = 0.2
SAME_PEN_TONE = 0.4  # as dark as the pen to within this share of its contrast
SAME_PEN_EDGE = 0.1  # and darker by this share than the darker paper around it
TONE_PERCENTILE = 5  # a piece's tone: its darkest pixels' (this percentile)
# more faint pen-dark pieces than this, and than twice the pieces kept, are a
# dark texture in a shadow (a patterned cloth, print) or a noisy page's specks:
# no fragment is kept, and no piece of a digit's height either if those too are
# that many
SAME_PEN_MOST = 8


def _box(image: np.ndarray, piece: Piece, grow: int = 0) -> tuple[np.ndarray, int, int]:
    """``image`` over the piece's box grown by ``grow`` px on every side (clipped),
    and where the piece's box starts in it (x, y)."""
    y0, x0 = max(0, piece.y - grow), max(0, piece.x - grow)
    return (
        image[y0 : piece.y + piece.h + grow, x0 : piece.x + piece.w + grow],
        piece.x - x0,
        piece.y - y0,
    )


def _tone(piece: Piece, tone: np.ndarray) -> float:
    return float(np.percentile(_under(tone, piece), TONE_PERCENTILE))


def _same_pen(
    piece: Piece, own: float, pieces: list[Piece], tone: np.ndarray, pen: float, paper: float
) -> bool:
    """Whether a faint piece of tone ``own``, as dark as the pen of tone ``pen``
    (on paper of tone ``paper``; see drop_weak), is written with it in the
    shadow: darker than the darker paper just around it (``pieces``' ink left
    out), which the dark side of a shadow's edge (as dark as its paper) is not."""
    # the paper 3 to r px from its strokes (past their soft edges)
    r = max(6, piece.h // 8)
    around, x, y = _box(tone, piece, r)
    x0, y0 = piece.x - x, piece.y - y  # the box's corner in the image
    inside = np.zeros(around.shape, np.uint8)
    inside[y : y + piece.h, x : x + piece.w] = piece.mask
    near = cv2.dilate(inside, np.ones((5, 5), np.uint8))
    for q in pieces:  # other strokes near it are no paper either
        ax, ay = max(q.x, x0), max(q.y, y0)
        bx, by = min(q.x + q.w, x0 + around.shape[1]), min(q.y + q.h, y0 + around.shape[0])
        if q is not piece and ax < bx and ay < by:
            theirs = q.mask[ay - q.y : by - q.y, ax - q.x : bx - q.x].astype(np.uint8)
            near[ay - y0 : by - y0, ax - x0 : bx - x0] |= theirs
    ring = (cv2.dilate(inside, np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0) & (near == 0)
    if not ring.any():
        return False
    darker_paper = float(np.percentile(around[ring], 25))
    return own <= darker_paper - SAME_PEN_EDGE * (paper - pen)


def drop_weak(
    pieces: list[Piece],
    ink: np.ndarray,
    rel: float = WEAK,
    among: Callable[[Piece], bool] | None = None,
    tone: np.ndarray | None = None,
) -> list[Piece]:
    """Remove pieces whose ink is much fainter than the strongest piece's.

    ``among`` limits which pieces can set the bar (a single digit: not rules
    and dashes); when none of them is there, no piece is kept. With ``tone``
    (:attr:`preprocessing.InkMap.tone`), a fainter piece written with the
    strongest piece's pen in a shadow is kept (see :func:`_same_pen`).
    """
    strength = [ink_strength(p, ink) for p in pieces]
    bars = [(s, p) for p, s in zip(pieces, strength, strict=True) if among is None or among(p)]
    if not bars:
        return []
    bar, best = max(bars, key=lambda sp: sp[0])
    kept = [s >= rel * bar for s in strength]
    if tone is None or all(kept):
        return list(itertools.compress(pieces, kept))
    # the strongest piece's pen, and the paper around it (its box and as much again)
    pen = _tone(best, tone)
    paper = float(np.median(_box(tone, best, max(best.w, best.h))[0]))
    height = digit_height(list(itertools.compress(pieces, kept)))
    faint = [
        i
        for i, p in enumerate(pieces)
        if not kept[i] and strength[i] >= SAME_PEN_WEAK * bar and p.h <= 2 * height
    ]
    tones = {i: _tone(pieces[i], tone) for i in faint}
    dark = {i: t for i, t in tones.items() if t <= pen + SAME_PEN_TONE * (paper - pen)}
    most = max(SAME_PEN_MOST, 2 * sum(kept))
    if len(dark) > most:  # a dark texture in a shadow, or a noisy page's specks:
        # those stay out, and only pieces of a digit's height may be digits
        dark = {i: t for i, t in dark.items() if pieces[i].h >= 0.5 * height}
        if len(dark) > most:
            return list(itertools.compress(pieces, kept))
    pen_marks = [i for i, t in dark.items() if _same_pen(pieces[i], t, pieces, tone, pen, paper)]
    # a piece of a digit's height is a digit; shorter ones near each other are
    # the fragments of one, kept when together they are of a digit's height and
    # away from the digits kept (beside a digit, the specks of a noisy page are
    # as near to each other, and would join it)
    fragments = []
    for i in pen_marks:
        if pieces[i].h >= 0.5 * height:
            kept[i] = True
        else:
            fragments.append(i)
    near = 0.25 * height
    for group in _near_groups([pieces[i] for i in fragments], near):
        whole = functools.reduce(union, [pieces[fragments[k]] for k in group])
        if 0.5 * height <= whole.h <= 2 * height and not any(
            k and _box_gap(whole, p) <= near for p, k in zip(pieces, kept, strict=True)
        ):
            for k in group:
                kept[fragments[k]] = True
    return list(itertools.compress(pieces, kept))


def _near_groups(pieces: list[Piece], gap: float) -> list[list[int]]:
    """Indices of ``pieces`` grouped by nearness: boxes at most ``gap`` px apart,
    directly or through others of the group."""
    group = list(range(len(pieces)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i, a in enumerate(pieces):
        for j in range(i + 1, len(pieces)):
            if _box_gap(a, pieces[j]) <= gap:
                group[root(j)] = root(i)
    out: dict[int, list[int]] = {}
    for i in range(len(pieces)):
        out.setdefault(root(i), []).append(i)
    return list(out.values())


def _box_gap(a: Piece, b: Piece) -> int:
    """Pixels between two boxes (the larger of the x and y gaps; <= 0 when they overlap)."""
    return max(_x_gap(a, b), _y_gap(a, b))


def gather(
    main: Piece,
    others: list[Piece],
    reach: float = 0.25,
    largest: float = float("inf"),
    takes: Callable[[Piece], bool] | None = None,
) -> Piece:
    """The main piece of a single digit with the nearby pieces of the same digit.

    A thin or faint digit breaks into pieces (a 4 whose arm is detached, a 5
    whose flag is, a 3 in two arcs); an image of one digit holds no other
    digit, so a strong piece close to it is part of it, as long as the whole
    stays digit-shaped. A flat piece (a bar) must be no wider than the digit.
    Pieces are taken nearest first, each at most ``reach`` times the size of
    the digit gathered so far away, while the whole measures at most
    ``largest`` and each piece passes ``takes`` (see :func:`with_fragments`).
    """
    rest = list(others)
    while rest:
        size = max(main.w, main.h)
        near = []
        for q in rest:
            if _box_gap(main, q) > reach * size or (_flat(q) and q.w > size):
                continue
            w = max(main.x + main.w, q.x + q.w) - min(main.x, q.x)  # the two boxes' span
            h = max(main.y + main.h, q.y + q.h) - min(main.y, q.y)
            if w <= 1.5 * h and max(w, h) <= largest and (takes is None or takes(q)):
                near.append(q)
        if not near:
            return main
        q = min(near, key=lambda q: _box_gap(main, q))
        main = union(main, q)
        rest = [r for r in rest if r is not q]  # by identity: pieces compare their masks
    return main


def _flat(p: Piece) -> bool:
    """Much wider than tall: a rule or a dash, never a digit on its own."""
    return p.w > 3.0 * p.h


def _bar(p: Piece) -> bool:
    """A flat piece that is one stroke across (a dash, a rule, one bar of an '='):
    nearly every column holds one run of ink. Touching digits as wide have
    columns crossing two strokes or more (a loop, a bar above a foot)."""
    if not _flat(p):
        return False
    m = p.mask.astype(np.int8)
    starts = (np.diff(m, axis=0, prepend=0) == 1).sum(axis=0)  # runs per column
    return float(np.mean(starts == 1)) >= BAR_COLUMNS


def main_piece(
    mask: np.ndarray, ink: np.ndarray, pieces: list[Piece] | None = None
) -> Piece | None:
    """The one digit of a single-digit image: the biggest strong piece that is not a mark,
    with the pieces of the same digit near it (see :func:`gather`). ``pieces``: the
    mask's components without specks, when already found."""

    def solid(p: Piece) -> bool:
        return not _flat(p)

    if pieces is None:
        pieces = drop_specks(components(mask))
    # weak pieces go before merging too: merge_pieces would chain the marks of
    # a printed pattern, each above the next, into one page-sized piece
    pieces = drop_weak(pieces, ink, among=solid)
    pieces = drop_weak(merge_pieces(pieces), ink, among=solid)
    candidates = [p for p in pieces if solid(p)]
    if not candidates:
        return None
    best = max(candidates, key=lambda p: p.area * p.h * ink_strength(p, ink) ** 2)
    return gather(best, [p for p in pieces if p is not best])


def with_fragments(main: Piece, pieces: list[Piece], ink: np.ndarray) -> Piece | None:
    """A single digit's main piece with the fragments around it that it leaves out,
    or None when there are none.

    A thin or faint pen can break a digit into fragments far apart for their
    size: the loop of a 6 without its stem, a 2's bottom bar, the two arcs
    of a 3 (the stroke between them too faint to see). :func:`main_piece`
    keeps the pieces near its main piece only, so as not to take in marks
    beside a digit; this takes in every piece of ``pieces`` (the mask's
    components) at least FRAGMENT_WEAK as strong as the main piece and no
    further from the digit gathered so far than FRAGMENT_GAP times its size,
    nearest first, as long as the whole is no wider than 1.5 times its
    height and no larger than FRAGMENT_MOST times the main piece (a check's
    printed pattern around a digit almost wiped out is no part of it). The
    Reader reads it when the main piece alone reads unsurely, and keeps its
    reading when it is surer (see :meth:`Reader.read_digit`).
    """
    bar = FRAGMENT_WEAK * ink_strength(main, ink)
    rest = []
    for q in pieces:
        if _flat(q) and q.w > max(main.w, main.h):
            continue  # a rule or a dash, not a digit's stroke
        x, y = q.x - main.x, q.y - main.y
        inside = 0 <= x and 0 <= y and x + q.w <= main.w and y + q.h <= main.h
        if not (inside and (main.mask[y : y + q.h, x : x + q.w] & q.mask).any()):
            rest.append(q)  # not a part of the main piece
    strong: dict[int, bool] = {}  # measured only for the pieces within reach

    def is_strong(q: Piece) -> bool:
        if id(q) not in strong:
            strong[id(q)] = ink_strength(q, ink) >= bar
        return strong[id(q)]

    largest = FRAGMENT_MOST * max(main.w, main.h)
    grown = gather(main, rest, FRAGMENT_GAP, largest, is_strong)
    return None if grown is main else grown


def weak_labels(ink: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components (labels) of all ink, the faint included, for ``threshold``'s mask.

    A thin pen line thins out in places: one threshold breaks a 6 into its
    stem and bits of its loop, but the fainter ink between them is still
    there (down to the share of the threshold that hysteresis keeps).
    """
    faint = ink > faint_level(threshold)
    # labels only: OpenCV without the statistics pass (0.37 ms on a 1000x300
    # number photo) beats preprocessing.connected_components here (1.7 ms)
    return cv2.connectedComponents(faint.view(np.uint8), connectivity=8)[1]


def weak_links(labels: np.ndarray) -> Callable[[Piece, Piece], bool]:
    """Whether two pieces are joined by fainter ink (``labels`` from :func:`weak_labels`)."""

    def of(p: Piece) -> set[int]:
        return set(np.unique(_under(labels, p)).tolist())

    return lambda a, b: bool(of(a) & of(b) - {0})


def _broken(p: Piece) -> bool:
    """Whether the piece is made of more than one component (merged fragments)."""
    return cv2.connectedComponents(p.mask.view(np.uint8), connectivity=8)[0] > 2


def fill_in(p: Piece, labels: np.ndarray) -> Piece:
    """The piece with the fainter ink in its box that is joined to its strokes."""
    box = labels[p.y : p.y + p.h, p.x : p.x + p.w]
    own = np.unique(box[p.mask])
    own = own[own > 0]
    filled = p.mask | np.isin(box, own)
    if filled.sum() > FILL_MAX * p.mask.sum():  # faint background, not the gaps of a stroke
        return p
    return Piece(p.x, p.y, p.w, p.h, filled)


def grow_into_faint(pieces: list[Piece], labels: np.ndarray, height: float) -> list[Piece]:
    """Pieces grown into the fainter ink joined to them where it makes one digit.

    A thin pen line thins out below the threshold in places, and what is
    left above it is only part of the digit, while the fainter ink of the
    rest is still joined to it (``labels``: see :func:`weak_labels`). Either
    way the faint ink must make one digit's shape: GROW_TALL of ``height``
    tall, at most as wide as tall (GROW_WIDE times for a taller piece's:
    a round 0), and joined to no other piece (faint ink
    that reaches another digit is a smear or a ligature, not this digit's
    stroke).

    - A piece under MARK_SHORT ``height`` (a thin 7 whose bar alone is
      left: alone it is a mark and would be dropped) becomes that faint ink.
      The faint ink must hang from it, reaching at most GROW_ABOVE
      ``height`` above it: a '.' low on a check's line has the faint lines
      of its printed pattern above it (on ORAND-CAR-A, "5580." grew a 5),
      where the faded stroke of a digit's fragment (a 7's or a 5's bar, a
      stroke's strong start) runs down.
    - A piece of a digit's height or less but more than a mark (the stem
      and bar of a 4 whose arm fades, the stem of a 5 whose bar and bowl
      do) takes in that faint ink when it makes the piece at least
      GROW_MORE ``height`` taller or wider: its crop was a fragment. A few
      faint pixels along a whole digit's edges change nothing (a thin 4
      whose stem alone is a piece, made wider by its faint edges, read
      better as a 1).
    """
    lo, hi = GROW_TALL
    linked = weak_links(labels)
    out = []
    for p in pieces:
        short = p.h < MARK_SHORT * height
        if p.h < hi * height:
            own = np.unique(_under(labels, p))
            own = own[own > 0]
            grown = _grown(p, own, labels, height)
            if (
                grown is not None
                and lo * height <= grown.h <= hi * height
                and grown.w <= (1.0 if short else GROW_WIDE) * grown.h
                and (
                    grown.y >= p.y - GROW_ABOVE * height
                    if short
                    else max(grown.h - p.h, grown.w - p.w) >= GROW_MORE * height
                )
                and not any(q is not p and linked(p, q) for q in pieces)
            ):
                p = grown if short else union(p, grown)
        out.append(p)
    return out


def _grown(p: Piece, own: np.ndarray, labels: np.ndarray, height: float) -> Piece | None:
    """The faint ink of components ``own`` (``p``'s) as a piece, if it lies within
    GROW_TALL[1] ``height`` around ``p`` (None: it reaches further, a shadow or a smear)."""
    if len(own) == 0:
        return None
    r = int(GROW_TALL[1] * height) + 2
    rows, cols = labels.shape
    x0, y0 = max(0, p.x - r), max(0, p.y - r)
    x1, y1 = min(cols, p.x + p.w + r), min(rows, p.y + p.h + r)
    window = labels[y0:y1, x0:x1]  # holds p, so some of its rows hold ``own``
    faint = window == own[0] if len(own) == 1 else np.isin(window, own)
    # the extent from its rows and columns (np.nonzero of the window took 5x longer)
    in_rows, in_cols = faint.any(axis=1), faint.any(axis=0)
    top, bottom = int(in_rows.argmax()), len(in_rows) - 1 - int(in_rows[::-1].argmax())
    left, right = int(in_cols.argmax()), len(in_cols) - 1 - int(in_cols[::-1].argmax())
    box = (left, top, right - left + 1, bottom - top + 1)
    if _runs_out(box, (x0, y0, x1, y1), labels.shape):
        return None  # it reaches the window's edge inside the image
    mask = faint[top : bottom + 1, left : right + 1]
    return Piece(x0 + left, y0 + top, box[2], box[3], mask)


def _runs_out(
    box: tuple[int, int, int, int], window: tuple[int, int, int, int], shape: tuple[int, ...]
) -> bool:
    """Whether ``box`` (x, y, w, h in the window's own coordinates) touches an edge of
    ``window`` (x0, y0, x1, y1 in the image, x1 and y1 exclusive) that is not an
    edge of the image (``shape``: rows, cols)."""
    x, y, w, h = box
    x0, y0, x1, y1 = window
    rows, cols = shape[:2]
    return x == 0 < x0 or y == 0 < y0 or x0 + x + w == x1 < cols or y0 + y + h == y1 < rows


def find_lines(
    mask: np.ndarray,
    ink: np.ndarray,
    threshold: float | None = None,
    tone: np.ndarray | None = None,
    to_mnist: Callable | None = None,
) -> list[list[Piece]]:
    """Lines of pieces, top to bottom, left to right, marks and touching digits as found.

    Components, specks and weak ink dropped, pieces of one digit merged, the
    halves of a digit broken across joined, a piece too short for a digit
    grown into the faint digit hanging from it and a digit's fragment into the
    rest of it (:func:`grow_into_faint`), and
    marks far smaller than the digits anywhere on the page dropped; then
    grouped into lines.
    ``threshold`` (the mask's ink threshold, if known) lets fragments of a thin
    digit join when fainter ink still connects them (see :func:`weak_links`).
    ``tone`` (the ink map's) keeps faint digits of the same pen (see :func:`drop_weak`).
    With ``threshold``, ``to_mnist`` (:func:`preprocessing.to_mnist`) lets whole
    digits that this first look missed join their line (see :func:`faint_digits`).
    """
    pieces = merge_pieces(drop_weak(drop_specks(components(mask)), ink, tone=tone))
    if pieces:
        height = digit_height(pieces)
        labels = weak_labels(ink, threshold) if threshold is not None else None
        linked = weak_links(labels) if labels is not None else None
        for _ in range(3):
            pieces = merge_pieces(pieces, height, linked)
            taller = digit_height(pieces)
            if taller <= 1.05 * height:
                break
            height = taller
        if labels is not None:  # a piece made of fragments gets the faint ink between them
            pieces = [fill_in(p, labels) if _broken(p) else p for p in pieces]
        pieces = join_stacked(pieces)
        if labels is not None:
            pieces = grow_into_faint(pieces, labels, height)
        # marks far smaller than the digits anywhere on the page
        pieces = [p for p in pieces if p.h >= MARK_SHORT * height]
    lines = group_lines(pieces)
    if threshold is not None and to_mnist is not None and lines:
        taken = np.zeros(ink.shape, bool)
        for p in pieces:
            taken[p.y : p.y + p.h, p.x : p.x + p.w] |= p.mask
        lines = [
            sorted(line + faint_digits(line, ink, threshold, taken, to_mnist), key=lambda q: q.x)
            for line in lines
        ]
    return lines


def faint_digits(
    line: list[Piece],
    ink: np.ndarray,
    threshold: float,
    taken: np.ndarray,
    to_mnist: Callable,
) -> list[Piece]:
    """Whole digits beside or between a line's digits that the first look missed.

    A thin pen's lightest digit (a 1 written with a slighter hand than the
    rest) can stay below the threshold from end to end, or leave above it
    only specks and short fragments, dropped as noise and marks: the number
    loses a digit a person reads at once. This looks again, in the band of
    the line's digits and up to 2 digit heights beyond its ends, at ink down
    to FAINT_SEEK of the threshold and at least FAINT_NOISE times the 90th
    percentile of the band outside the line's pieces (a noisy or textured
    page raises the level until its texture stays out; never below the ink
    floor). A component found there is a digit when it is joined to no piece
    found (``taken``: their pixels), is FAINT_TALL digit heights tall within
    the rows of the line's digits, is a pen line rather than a blot (it
    covers at most half its box, or is as narrow as a 1's stroke), overlaps
    none of the line's pieces in x and is at most 1.5 digit heights from them, is
    not made of bars alone (dashes stacked: the stubs of a ruled page's pale
    lines beside its erased margin, see :func:`_bar`), and makes a readable
    digit (its MNIST-style crop, kept on the piece, has at least
    DIGIT_COVERAGE[0] ink: the stem alone of a faint 4 does not). More than
    two such digits in a line are a texture, and none is taken.
    """
    height = digit_height(line)
    # never empty (the tallest piece is at least the height), and one is
    # enough: a faint 1 before a bold 6 is a number too
    tall = [p for p in line if p.h >= 0.6 * height]
    rows, cols = ink.shape
    top, bottom = min(p.y for p in tall), max(p.y + p.h for p in tall)
    left, right = min(p.x for p in line), max(p.x + p.w for p in line)
    y0, y1 = max(0, top - int(0.3 * height)), min(rows, bottom + int(0.3 * height))
    x0, x1 = max(0, left - int(2 * height)), min(cols, right + int(2 * height))
    band = ink[y0:y1, x0:x1]
    paper = np.ones(band.shape, bool)  # the band but the pieces' boxes (and their edges)
    for p in line:
        paper[
            max(0, p.y - y0 - 2) : p.y - y0 + p.h + 2, max(0, p.x - x0 - 2) : p.x - x0 + p.w + 2
        ] = False
    noise = float(np.percentile(band[paper], 90)) if paper.any() else 0.0
    low = max(INK_FLOOR, FAINT_SEEK * threshold, FAINT_NOISE * noise)
    if low >= threshold:
        return []
    found = []
    for c in components(band > low):
        if _runs_out(c.box, (x0, y0, x1, y1), ink.shape):
            continue  # it runs out of the band: a shadow's edge or a texture
        c = Piece(x0 + c.x, y0 + c.y, c.w, c.h, c.mask)
        if not taken[c.y : c.y + c.h, c.x : c.x + c.w][c.mask].any():
            found.append(c)
    out = []
    for c in merge_pieces(drop_specks(found), height):
        if (
            FAINT_TALL[0] * height <= c.h <= FAINT_TALL[1] * height
            and c.w <= 1.1 * c.h
            and top - 0.25 * height <= c.y
            and c.y + c.h <= bottom + 0.25 * height
            and (c.area <= 0.5 * c.w * c.h or c.w <= 0.25 * c.h)
            and min(_x_gap(c, p) for p in line) <= 1.5 * height
            and not any(_x_gap(c, p) < 0 and _share_rows(c, p) for p in line)
            and not all(_bar(q) for q in components(c.mask))
        ):
            if coverage(crops([c], ink, to_mnist)[0]) >= DIGIT_COVERAGE[0]:
                out.append(c)  # its crop stays on it (crops)
    return out if len(out) <= 2 else []


def digits_of_line(
    line: list[Piece],
    ink: np.ndarray,
    classify: Classify,
    to_mnist: Callable,
    whole: Whole | None = None,
) -> list[Piece]:
    """The digits of one line of :func:`find_lines`: marks dropped, touching digits split."""
    line = drop_marks(line)
    return split_touching(line, ink, classify, to_mnist, whole) if line else line


def find_digits(
    mask: np.ndarray,
    ink: np.ndarray,
    classify: Classify,
    to_mnist: Callable,
    whole: Whole | None = None,
    threshold: float | None = None,
    tone: np.ndarray | None = None,
) -> tuple[list[list[Piece]], list[tuple[int, list[Piece]]]]:
    """Everything above, in order: the lines of :func:`find_lines` as found, and for
    each that holds digits, its index among them and its digit pieces (top to
    bottom, left to right)."""
    lines = find_lines(mask, ink, threshold, tone, to_mnist)
    found = []
    for i, line in enumerate(lines):
        digits = digits_of_line(line, ink, classify, to_mnist, whole)
        if digits:
            found.append((i, digits))
    return lines, found
