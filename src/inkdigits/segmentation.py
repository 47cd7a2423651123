"""Find the digits of a number: components, merge pieces, lines, drop marks, split touching digits.

Works on the binary ink mask of :mod:`inkdigits.preprocessing` (working
resolution). Each found digit is a :class:`Piece`: a box and the mask of its
pixels inside the box. Splitting touching digits asks a classifier (any
function from MNIST-style digits to probabilities) which cut reads best.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Classify = Callable[[np.ndarray], np.ndarray]  # (N, 28, 28) uint8 -> (N, 10) probabilities


@dataclass
class Piece:
    """Ink that belongs together: ``mask`` covers the box ``(x, y, w, h)``."""

    x: int
    y: int
    w: int
    h: int
    mask: np.ndarray  # bool (h, w)

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


def components(mask: np.ndarray) -> list[Piece]:
    """8-connected components of a binary mask."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, _area = (int(v) for v in stats[i])
        out.append(Piece(x, y, w, h, labels[y : y + h, x : x + w] == i))
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


def merge_pieces(pieces: list[Piece]) -> list[Piece]:
    """Join the parts of one digit: a detached bar of a 5, a broken 4, dotted strokes.

    Two pieces merge when one lies mostly above the other (strong horizontal
    overlap) and the vertical gap between them is small next to their heights.
    """
    items = sorted(pieces, key=lambda p: p.x)
    changed = True
    while changed:
        changed = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                a, b = items[i], items[j]
                tall = max(a.h, b.h)
                if _x_overlap(a, b) >= 0.5 and _y_gap(a, b) <= 0.25 * tall:
                    # not two stacked digits of different lines: merged height stays digit-like
                    merged = union(a, b)
                    if merged.h <= 1.6 * tall:
                        items[i] = merged
                        del items[j]
                        changed = True
                        break
            if changed:
                break
    return items


def group_lines(pieces: list[Piece]) -> list[list[Piece]]:
    """Rows of pieces, top to bottom, each left to right."""
    lines: list[list[Piece]] = []
    for p in sorted(pieces, key=lambda p: p.cy):
        for line in lines:
            top = np.median([q.y for q in line])
            bottom = np.median([q.y + q.h for q in line])
            overlap = min(bottom, p.y + p.h) - max(top, p.y)
            if overlap >= 0.4 * min(p.h, bottom - top):
                line.append(p)
                break
        else:
            lines.append([p])
    lines.sort(key=lambda line: min(q.y for q in line))
    return [sorted(line, key=lambda q: q.x) for line in lines]


def digit_height(line: list[Piece]) -> float:
    """The height of the line's digits: median of the taller half (punctuation is short)."""
    hs = sorted((p.h for p in line), reverse=True)
    return float(np.median(hs[: max(1, (len(hs) + 1) // 2)]))


def drop_marks(line: list[Piece]) -> list[Piece]:
    """Drop what is no digit: '.', ',', '-', '=' and underlines/baselines (short or flat)."""
    if not line:
        return line
    height = digit_height(line)
    keep = []
    for p in line:
        if p.h < 0.5 * height:  # '.', ',', '-', '=', specks on the line
            continue
        if p.w > 3.0 * p.h and p.h < 0.6 * height:  # underlines and printed rules
            continue
        keep.append(p)
    return keep


# --------------------------------------------------------------------------- touching digits


def _crop(piece: Piece, ink: np.ndarray, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
    soft = ink[piece.y : piece.y + piece.h, piece.x + x0 : piece.x + x1]
    return soft, piece.mask[:, x0:x1]


def _sub_piece(piece: Piece, x0: int, x1: int) -> Piece | None:
    m = piece.mask[:, x0:x1]
    rows = np.flatnonzero(m.any(axis=1))
    if len(rows) == 0:
        return None
    return Piece(
        piece.x + x0, piece.y + rows[0], x1 - x0, rows[-1] - rows[0] + 1, m[rows[0] : rows[-1] + 1]
    )


def candidate_cuts(piece: Piece, parts: int, keep: int = 3) -> list[list[int]]:
    """Column positions to cut ``piece`` into ``parts``: thin spots of the ink profile."""
    profile = piece.mask.sum(axis=0).astype(np.float32)
    profile = np.convolve(profile, np.ones(3) / 3, mode="same")
    options = []
    for k in range(1, parts):
        centre = piece.w * k / parts
        lo, hi = int(centre - 0.22 * piece.w / parts), int(centre + 0.22 * piece.w / parts) + 1
        lo, hi = max(1, lo), min(piece.w - 1, hi)
        cols = np.arange(lo, hi)
        if len(cols) == 0:
            return []
        best = cols[np.argsort(profile[lo:hi], kind="stable")[:keep]]
        options.append(sorted(set(best.tolist()) | {int(round(centre))}))
    # every combination (few: parts <= 3, keep <= 4)
    combos: list[list[int]] = [[]]
    for opts in options:
        combos = [c + [o] for c in combos for o in opts if not c or o > c[-1] + 2]
    return combos


def split_touching(
    line: list[Piece], ink: np.ndarray, classify: Classify, to_mnist: Callable
) -> list[Piece]:
    """Split pieces much wider than a digit, choosing the cut the classifier reads best."""
    if not line:
        return line
    height = digit_height(line)
    widths = [p.w for p in line if p.h >= 0.5 * height]
    typical = max(0.45 * height, float(np.median(widths)) if widths else 0.6 * height)
    out = []
    for p in line:
        if p.w < 1.35 * typical or p.w < 0.8 * height:
            out.append(p)
            continue
        best_parts, best_score = [p], _score([p], ink, classify, to_mnist)
        max_parts = min(4, max(2, int(round(p.w / (0.75 * typical)))))
        for parts in range(2, max_parts + 1):
            for cuts in candidate_cuts(p, parts):
                bounds = [0, *cuts, p.w]
                pieces = [_sub_piece(p, a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
                if any(q is None or q.h < 0.4 * height for q in pieces):
                    continue
                score = _score(pieces, ink, classify, to_mnist)  # type: ignore[arg-type]
                if score > best_score + 0.05:
                    best_parts, best_score = pieces, score  # type: ignore[assignment]
        out.extend(best_parts)
    return out


def _score(pieces: list[Piece], ink: np.ndarray, classify: Classify, to_mnist: Callable) -> float:
    """Mean log-confidence per expected digit width: favours readable, digit-sized parts."""
    digits = np.stack([to_mnist(ink[q.y : q.y + q.h, q.x : q.x + q.w], q.mask) for q in pieces])
    conf = classify(digits).max(axis=1)
    return float(np.mean(np.log(np.clip(conf, 1e-6, 1.0))))


def find_digits(
    mask: np.ndarray, ink: np.ndarray, classify: Classify, to_mnist: Callable
) -> list[list[Piece]]:
    """Everything above, in order: lines of digit pieces, top to bottom, left to right."""
    pieces = merge_pieces(drop_specks(components(mask)))
    lines = [drop_marks(line) for line in group_lines(pieces)]
    lines = [split_touching(line, ink, classify, to_mnist) for line in lines if line]
    return [line for line in lines if line]
