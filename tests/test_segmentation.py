"""Segmentation rules on hand-made pieces: what is a mark, what belongs to a line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inkdigits.preprocessing import to_mnist
from inkdigits.segmentation import (
    WIDEST,
    Piece,
    candidate_segments,
    components,
    crops,
    drop_marks,
    fill_in,
    find_lines,
    group_lines,
    grow_into_faint,
    join_stacked,
    merge_pieces,
    split_piece,
    union,
    weak_labels,
    weak_links,
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


def shape(x: int, y: int, w: int, h: int, draw) -> Piece:
    """A piece whose mask ``draw(mask)`` paints (uint8, 1 = ink)."""
    m = np.zeros((h, w), np.uint8)
    draw(m)
    return Piece(x, y, w, h, m.astype(bool))


def ring(x: int, y: int, w: int, h: int) -> Piece:
    def draw(m):
        cv2.ellipse(m, (w // 2, h // 2), (w // 2 - 2, h // 2 - 2), 0, 0, 360, 1, 3)

    return shape(x, y, w, h, draw)


def test_small_zeros_low_on_the_line_are_digits_and_marks_are_not():
    digits = slanted_line(drop=0)
    end = digits[-1].x + digits[-1].w
    base = digits[-1].y + digits[-1].h  # the digits' baseline
    # two 0s written small at the end ("3400"): 0.43 of a digit tall, on the baseline
    zeros = [ring(end + 10 + 30 * i, base - 26, 26, 26) for i in range(2)]
    marks = [
        shape(end + 80, base - 10, 10, 10, lambda m: m.fill(1)),  # '.'
        shape(end + 100, base - 14, 8, 22, lambda m: m.fill(1)),  # ','
        # '=' whose strokes touch at the ends: it encloses a flat slit, no round hole
        shape(end + 120, base - 40, 30, 14, lambda m: cv2.rectangle(m, (0, 0), (29, 13), 1, 4)),
        shape(end + 160, base - 30, 24, 6, lambda m: m.fill(1)),  # '-'
    ]
    kept = drop_marks([*digits, *zeros, *marks])
    assert [p.box for p in kept] == [p.box for p in [*digits, *zeros]]


def test_a_row_of_small_zeros_is_no_rule():
    digits = slanted_line(drop=0)
    end, base = digits[-1].x + digits[-1].w, digits[-1].y + digits[-1].h

    def zeros(m):  # three touching 0s, 26 px tall: more than three times as wide as tall
        for i in range(3):
            cv2.ellipse(m, (13 + 24 * i, 13), (11, 11), 0, 0, 360, 1, 3)

    row = shape(end + 10, base - 26, 74, 26, zeros)
    rule = shape(end + 10, base - 8, 74, 8, lambda m: m.fill(1))  # an underline
    bar = shape(end + 10, base - 26, 74, 26, lambda m: cv2.rectangle(m, (0, 0), (73, 25), 1, 3))
    kept = [p.box for p in drop_marks([*digits, row])]
    assert row.box in kept
    assert rule.box not in [p.box for p in drop_marks([*digits, rule])]
    # a printed box around nothing has one flat hole, not a 0 for every two heights
    assert bar.box not in [p.box for p in drop_marks([*digits, bar])]


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


def block_chain(height: int, blocks: int = 5) -> tuple[Piece, np.ndarray]:
    """Digit-wide blocks joined by a bar, as one piece, and its ink."""
    mask = np.zeros((height, blocks * 28), bool)
    for i in range(blocks):
        mask[:, i * 28 + 4 : i * 28 + 24] = True
    mask[height // 2 - 2 : height // 2 + 2, :] = True
    return Piece(0, 0, mask.shape[1], height, mask), mask.astype(np.float32)


def test_a_chain_of_touching_digits_is_never_read_as_one():
    # five digit-wide blocks joined by a bar: far wider than any one digit, so
    # it is split even by a classifier that reads anything as a sure "2"
    height = 40
    chain, ink = block_chain(height)

    def sure_two(digits):
        p = np.full((len(digits), 10), 0.01 / 9, np.float32)
        p[:, 2] = 0.99
        return p

    parts = split_piece(chain, height, ink, sure_two, to_mnist)
    assert len(parts) >= 2
    assert all(p.w <= WIDEST * height for p in parts)


def best_split_by_search(cuts, segs, scores) -> tuple[float, list[tuple[int, int]]]:
    """The best segmentation found by trying every one (a test's oracle for split_piece)."""
    n = len(cuts)

    def paths(i: int):
        if i == n - 1:
            yield []
            return
        for j in range(i + 1, n):
            if (i, j) in segs:
                for rest in paths(j):
                    yield [(i, j), *rest]

    return max((sum(scores[k] for k in path), path) for path in paths(0))


@pytest.mark.parametrize("softmax", [True, False])
@pytest.mark.parametrize("seed", range(12))
def test_split_is_the_best_segmentation_and_reads_only_segments_that_may_be_in_it(seed, softmax):
    # a chain of three blocks, made-up readings of each segment (a digit model's
    # confidence from 0.1 to 1, a whole-digit check's from 1e-9 to 1): the
    # split scores as much as the best of all segmentations (a segment scores
    # log(confidence * check), at least log(1e-6)), and the classifier is
    # asked about only some of the segments. A model that gives no
    # probabilities (its largest output can be under 0.1) gets the same split.
    height = 40
    chain, ink = block_chain(height, 3)
    cuts, segs = candidate_segments(chain, height)
    digits = crops(list(segs.values()), ink, to_mnist)
    rng = np.random.default_rng(seed)
    made_up = {d.tobytes(): (rng.uniform(0.1, 1.0), 10 ** rng.uniform(-9, 0)) for d in digits}
    if not softmax:  # the segments the check likes best read 1e-4: the bound would mislead
        made_up = {k: (1e-4 if w > 1e-3 else 1.0, w) for k, (_, w) in made_up.items()}
    asked = []

    def classify(batch):
        asked.append(len(batch))
        p = np.zeros((len(batch), 10), np.float32)
        p[:, 0] = [made_up[d.tobytes()][0] for d in batch]
        if softmax:
            p[:, 1:] = (1 - p[:, :1]) / 9  # the first is the largest
        return p

    def check(batch):
        return np.array([made_up[d.tobytes()][1] for d in batch], np.float32)

    scores = {}
    for k, d in zip(segs, digits, strict=True):
        conf, p_whole = made_up[d.tobytes()]
        scores[k] = float(np.log(np.clip(np.float32(conf) * np.float32(p_whole), 1e-6, 1.0)))
    best, _ = best_split_by_search(cuts, segs, scores)
    parts = split_piece(block_chain(height, 3)[0], height, ink, classify, to_mnist, check)
    key_of = {q.box: k for k, q in segs.items()}
    assert sum(scores[key_of[p.box]] for p in parts) == pytest.approx(best, abs=1e-5)
    if softmax:
        assert 0 < sum(asked) < len(segs)


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


def test_fragments_of_one_thin_digit_join_when_fainter_ink_links_them():
    # a thin 6 broken by the threshold into its stem and its loop (geometry of
    # a generated photo where it was read as a 1): together 127 px tall where
    # the line's height estimate says 94, too tall for the fragment rule alone
    stem, loop = piece(0, 0, 40, 68), piece(0, 84, 88, 43)
    assert len(merge_pieces([stem, loop], 94.0)) == 2
    assert len(merge_pieces([stem, loop], 94.0, lambda a, b: False)) == 2
    (six,) = merge_pieces([stem, loop], 94.0, lambda a, b: True)
    assert six.box == (0, 0, 88, 127)
    # two whole digits joined by a faint ligature stay two digits
    two = [piece(0, 0, 50, 94), piece(60, 0, 50, 94)]
    assert len(merge_pieces(two, 94.0, lambda a, b: True)) == 2


def test_a_broken_piece_is_filled_with_the_fainter_ink_of_its_strokes():
    ink = np.zeros((60, 60), np.float32)
    ink[10:13, 10:40] = 1.0  # a 7: its bar
    ink[10:50, 37:40] = 1.0  # and its stem,
    ink[28:32, 37:40] = 0.4  # where the pen thinned out: below the threshold, above 0.6 of it
    mask = ink > 0.5
    (top, bottom) = sorted(components(mask), key=lambda q: q.y)
    p = union(top, bottom)
    filled = fill_in(p, weak_labels(ink, 0.5))
    assert filled.box == p.box and filled.area == p.area + 12  # the gap, and only it
    assert weak_links(weak_labels(ink, 0.5))(top, bottom)
    assert not weak_links(weak_labels(ink, 0.9))(top, bottom)  # 0.6 of 0.9 is above the gap's ink
    # faint ink joined to the strokes that would more than add a third: the
    # page's texture, not the gaps of a stroke; the piece stays as it was
    ink[13:45, 12:30] = 0.35
    assert fill_in(p, weak_labels(ink, 0.5)).area == p.area


def test_a_short_piece_grows_into_the_faint_digit_joined_to_it():
    # a thin 7 whose stem is fainter than the threshold: only its bar is a
    # piece, far too short for a digit beside the 1 of the line's height
    ink = np.zeros((100, 160), np.float32)
    ink[20:80, 20:24] = 1.0  # a 1, 60 px tall
    ink[20:24, 60:100] = 1.0  # the 7's bar
    ink[24:80, 96:100] = 0.4  # its stem: below the threshold 0.5, above 0.6 of it
    labels = weak_labels(ink, 0.5)
    one, bar = sorted(components(ink > 0.5), key=lambda q: q.x)
    grown = grow_into_faint([one, bar], labels, 60.0)
    assert grown[0] is one  # a digit's height: left as it is
    assert grown[1].box == (60, 20, 40, 60) and grown[1].area == 40 * 4 + 56 * 4
    # faint ink joined to another piece too is left alone (a smear to a
    # neighbour; here the stem's own strong foot, which merge_pieces joins)
    footed = ink.copy()
    footed[70:80, 96:100] = 1.0
    one, bar, foot = sorted(components(footed > 0.5), key=lambda q: (q.x, q.y))
    assert grow_into_faint([one, bar, foot], weak_labels(footed, 0.5), 60.0)[1:] == [bar, foot]
    # nor is faint ink far taller than a digit (a shadow's edge under a '-')
    shadow = ink.copy()
    shadow[:, 96:100] = 0.4
    shadow[20:24, 60:100] = 1.0
    assert grow_into_faint([one, bar], weak_labels(shadow, 0.5), 60.0)[1] is bar
    # nor faint ink rising far above the piece: a '.' low on the line under
    # the faint lines of a check's printed pattern
    dotted = np.zeros_like(ink)
    dotted[20:80, 20:24] = 1.0
    dotted[30:80, 62:64] = 0.4  # a faint pattern line
    dotted[30:32, 62:90] = 0.4
    dotted[72:80, 60:66] = 1.0  # the '.' on it
    one, dot = sorted(components(dotted > 0.5), key=lambda q: q.x)
    assert grow_into_faint([one, dot], weak_labels(dotted, 0.5), 60.0)[1] is dot
    # nor faint ink of a digit's height but wider than tall (a pale printed
    # box around a '-')
    boxed = np.zeros_like(ink)
    boxed[20:80, 20:24] = 1.0
    boxed[20:80, 40:140] = 0.4
    boxed[48:52, 60:90] = 1.0
    one, dash = sorted(components(boxed > 0.5), key=lambda q: q.x)
    assert grow_into_faint([one, dash], weak_labels(boxed, 0.5), 60.0)[1] is dash


def test_a_digits_fragment_grows_into_the_rest_of_the_digit():
    # a thin 4 whose stem and bar stay above the threshold where its arm and
    # the stem's foot fade below it: the piece is half the digit, taller than
    # a mark, and its crop was a fragment
    ink = np.zeros((100, 200), np.float32)
    ink[20:80, 20:24] = 1.0  # a 1, 60 px tall
    ink[20:50, 90:94] = 1.0  # the 4's stem, its upper half
    ink[46:50, 64:90] = 1.0  # its bar
    ink[50:80, 90:94] = 0.4  # the stem's foot: below the threshold 0.5, above 0.6 of it
    ink[20:46, 64:68] = 0.4  # the arm
    labels = weak_labels(ink, 0.5)
    one, four = sorted(components(ink > 0.5), key=lambda q: q.x)
    assert four.box == (64, 20, 30, 30)  # the arm's top at the stem's: its box is the stem's
    grown = grow_into_faint([one, four], labels, 60.0)
    assert grown[0] is one  # whole already: its faint ink reaches no further
    assert grown[1].box == (64, 20, 30, 60) and grown[1].area == four.area + 30 * 4 + 26 * 4
    # the digit found whole: its crop holds the 4, not a fragment
    assert grown[1].mask[60 - 20, 90 - 64] and grown[1].mask[30 - 20, 64 - 64]
    # faint ink that also joins another piece is left alone (a smear to a neighbour)
    smeared = ink.copy()
    smeared[78:80, 94:140] = 0.4
    smeared[40:80, 140:144] = 1.0
    one, four, other = sorted(components(smeared > 0.5), key=lambda q: q.x)
    assert grow_into_faint([one, four, other], weak_labels(smeared, 0.5), 60.0)[1] is four
    # faint ink far taller than a digit is left alone (a shadow's edge)
    shadow = ink.copy()
    shadow[:, 90:94] = np.maximum(shadow[:, 90:94], 0.4)
    one, four = sorted(components(shadow > 0.5), key=lambda q: q.x)
    assert grow_into_faint([one, four], weak_labels(shadow, 0.5), 60.0)[1] is four
    # a piece that is nearly the whole digit already keeps its box: a few
    # faint pixels at its ends change nothing
    nearly = np.zeros_like(ink)
    nearly[20:80, 20:24] = 1.0
    nearly[22:78, 90:94] = 1.0
    nearly[20:22, 90:94] = nearly[78:80, 90:94] = 0.4
    one, stem = sorted(components(nearly > 0.5), key=lambda q: q.x)
    assert grow_into_faint([one, stem], weak_labels(nearly, 0.5), 60.0)[1] is stem


def halves(x: int, y: int, w: int = 40, h: int = 60, gap: int = 3) -> list[Piece]:
    """The upper and lower halves of a digit-sized piece, ``gap`` px apart."""
    top = (h - gap) // 2
    return [piece(x, y, w, top), piece(x, y + top + gap, w, h - top - gap)]


def test_the_halves_of_a_digit_broken_across_join():
    # alone on the page, and amid a row of whole digits (which span both halves)
    for row in ([], [piece(100 + 60 * i, 100, 40, 60) for i in (0, 2, 3)]):
        got = join_stacked(row + halves(160, 100))
        assert len(got) == len(row) + 1
        assert (160, 100, 40, 60) in [p.box for p in got]


def test_the_halves_of_a_digit_broken_across_join_in_a_number_written_on_a_slope():
    # the digit before it sits higher (beside the upper half only), the one after lower
    row = [piece(100, 80, 40, 60), piece(220, 120, 40, 60)]
    got = join_stacked(row + halves(160, 100))
    assert sorted(p.box for p in got) == [(100, 80, 40, 60), (160, 100, 40, 60), (220, 120, 40, 60)]
    # with a piece beside the upper half only on the side of the one beside the
    # lower half only, the page shows two rows there: the halves stay apart
    rows = [*row, piece(280, 95, 40, 35)]
    assert len(join_stacked(rows + halves(160, 100))) == 5


def test_a_fragment_of_another_broken_digit_does_not_keep_the_halves_apart():
    # a thin pen breaks a 100 px 5 across, and the digits beside it into
    # pieces: fragments 55-60 px tall span both halves' rows beside a whole
    # 100 px digit; they are no digit's height
    row = [piece(215, 120, 15, 60), piece(260, 100, 40, 100), piece(310, 118, 15, 58)]
    got = join_stacked(row + halves(160, 100, h=100))
    assert sorted(p.box for p in got) == sorted([(160, 100, 40, 100)] + [p.box for p in row])
    # beside digits of their own height, two stacked digit-tall pieces stay apart
    row = [piece(100, 100, 40, 60), piece(220, 100, 40, 60)]
    assert len(join_stacked(row + halves(160, 100, h=115))) == 4


def test_two_rows_of_digits_written_close_stay_apart():
    # each digit of the upper row sits on one of the lower row, 5 px (a twelfth) apart:
    # pair by pair they look like the halves of one digit; the rows beside them tell
    # (wide digits: stacked, each pair is no narrower than one digit)
    upper = [piece(100 + 70 * i, 100, 55, 60) for i in range(4)]
    lower = [piece(100 + 70 * i, 165, 55, 60) for i in range(4)]
    assert len(join_stacked(upper + lower)) == 8
    assert len(join_stacked(upper[:1] + lower[:1])) == 1  # alone, nothing tells them apart
    # two lone digits stacked stay apart when together they are too narrow for one
    assert len(join_stacked([piece(100, 100, 25, 60), piece(100, 163, 25, 60)])) == 2


def zeros_and_a_one(one: float, noise: float = 0.0, zeros: int = 4) -> np.ndarray:
    """An ink map: ``zeros`` 0s (rings 60 px tall, full ink) and left of them a 1 (a
    stroke 4 px wide, 60 px tall) of ink ``one``, on paper of ink 0..``noise``."""
    ink = np.random.default_rng(0).uniform(0, noise, (100, 500)).astype(np.float32)
    for x in (170, 250, 330, 410)[:zeros]:
        cv2.ellipse(ink, (x, 50), (18, 30), 0, 0, 360, 1.0, 4)
    ink[20:80, 98:102] = np.maximum(ink[20:80, 98:102], one)
    return ink


def test_a_whole_digit_fainter_than_the_threshold_joins_its_line():
    threshold = 0.35

    def counts(ink: np.ndarray) -> list[int]:
        return [len(ln) for ln in find_lines(ink > threshold, ink, threshold, to_mnist=to_mnist)]

    ink = zeros_and_a_one(0.2)  # the 1 under the threshold, above 0.4 of it
    assert [len(ln) for ln in find_lines(ink > threshold, ink, threshold)] == [4]
    (line,) = find_lines(ink > threshold, ink, threshold, to_mnist=to_mnist)
    assert len(line) == 5 and line[0].box == (98, 20, 4, 60)
    assert line[0].digit is not None  # its crop, made once
    assert counts(zeros_and_a_one(0.13)) == [4]  # under 0.4 of the threshold: paper
    assert counts(zeros_and_a_one(0.2, zeros=1)) == [2]  # a two-digit number: "10"
    # on a noisy page the level rises above it (5 x the paper's 90th percentile)
    assert counts(zeros_and_a_one(0.2, noise=0.05)) == [4]
    assert counts(zeros_and_a_one(0.2, noise=0.02)) == [5]
    # a stroke mostly fainter still, strong in a short stretch only (the stem
    # of a faint 4 whose arm is lost): its crop has too little ink for a digit
    ink = zeros_and_a_one(0.15)
    ink[45:52, 98:102] = 0.33
    assert counts(ink) == [4]
    # two faint 1s are read; three are a texture
    ink = zeros_and_a_one(0.2)
    ink[20:80, 450:454] = 0.2
    assert counts(ink) == [6]
    ink[20:80, 290:294] = 0.2  # between two 0s
    assert counts(ink) == [4]
    # faint dashes stacked a digit's height apart are no digit: the stubs of a
    # ruled page's pale lines, cut where its margin strip was erased, read as
    # a 5 before the number (4 of 200 pages photographed a degree askew)
    ink = zeros_and_a_one(0.0)
    ink[20:23, 100:130] = 0.2
    ink[50:53, 100:131] = 0.2
    ink[77:80, 101:131] = 0.2
    assert counts(ink) == [4]
    ink[23:50, 100:103] = 0.2  # joined by a stroke: a faint 5 or an E, read
    assert counts(ink) == [5]
