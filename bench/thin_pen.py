"""How much of the number benchmark's gap is its thin pen breaking strokes.

The generator (``inkdigits.synth``) draws its thin pen by eroding an MNIST
glyph by one MNIST pixel (``synth.digit_alpha`` with stroke -1). Where the
writer's stroke was thinner than that, the erosion leaves a faint hairline
or nothing: the glyph breaks into pieces, which a real thin pen, drawing
the same path with a finer tip, does not do. This script measures that and
asks what the reader would read if the thin pen kept its strokes whole: the
same numbers (``synth.digit_alpha`` draws no random numbers, so every other
choice of the generator stays as it was) with each thin-pen glyph given
back the default glyph's centre line, drawn as wide as the thin pen's
strokes (at least 1.5 px) wherever the erosion left less.

    python bench/thin_pen.py breaks [--count 500]
    python bench/thin_pen.py realworld --digits 0 --numbers 500 --seed 2026
    python bench/thin_pen.py dev_numbers --seeds 10 11 12 13 --out runs/dev/x.json

``breaks`` prints, per digit height, the share of MNIST test digits that
the thin pen breaks into more pieces than the default pen (at half ink),
and the same with the strokes kept whole. ``realworld`` and
``dev_numbers`` run bench/realworld.py and bench/dev_numbers.py with their
own arguments on the generator with the whole thin pen. The benchmark
itself (``synth``) is not changed: this is an analysis of it.
"""

from __future__ import annotations

import argparse
import itertools
import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from inkdigits import data, synth
from inkdigits import preprocessing as pre

HEIGHTS = (50, 100, 200)


def skeleton(mask: np.ndarray) -> np.ndarray:
    """The centre lines of a boolean mask, one pixel wide (Zhang and Suen's thinning)."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p2, p3, p4 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:]
            p5, p6, p7 = img[2:, 2:], img[2:, 1:-1], img[2:, :-2]
            p8, p9 = img[1:-1, :-2], img[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            neighbours = sum(q.astype(np.int32) for q in ring[:8])
            rises = sum(((a == 0) & (b == 1)).astype(np.int32) for a, b in itertools.pairwise(ring))
            if step == 0:
                side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                side = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            gone = (img[1:-1, 1:-1] == 1) & (neighbours >= 2) & (neighbours <= 6)
            gone &= (rises == 1) & side
            if gone.any():
                changed = True
                img = img.copy()
                img[1:-1, 1:-1][gone] = 0
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def whole_thin(default: np.ndarray, thin: np.ndarray) -> np.ndarray:
    """The thin pen's glyph ``thin`` with its strokes kept whole: the default
    glyph's centre line, as wide as the thin pen's strokes (their mean width,
    :func:`preprocessing.stroke_width`, at least 1.5 px), wherever the
    erosion left less ink."""
    line = skeleton(default > 0.5).astype(np.float32)
    width = max(1.5, pre.stroke_width(thin > 0.5))
    r = int(round((width - 1) / 2))
    if r:
        line = cv2.dilate(line, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    return np.maximum(thin, np.clip(cv2.GaussianBlur(line, (3, 3), 0.5), 0, 1))


def pieces(alpha: np.ndarray) -> int:
    return cv2.connectedComponents((alpha > 0.5).astype(np.uint8))[0] - 1


def breaks(count: int) -> None:
    mnist = data.load_mnist()
    idx = np.random.default_rng(0).choice(len(mnist.test_images), count, replace=False)
    print(f"{count} MNIST test digits: share broken into more pieces than the default pen's")
    print("| height | thin pen | thin pen, strokes whole |\n| ---: | ---: | ---: |")
    for height in HEIGHTS:
        broken = kept_whole = 0
        for i in idx:
            default = synth.digit_alpha(mnist.test_images[i], height, 0.0)
            thin = synth.digit_alpha(mnist.test_images[i], height, synth.PENS["thin"])
            broken += pieces(thin) > pieces(default)
            kept_whole += pieces(whole_thin(default, thin)) > pieces(default)
        print(f"| {height} px | {broken / count:.1%} | {kept_whole / count:.1%} |")


def whole_thin_pen(drawn: Callable[[np.ndarray, int, float], np.ndarray]):
    """``drawn`` (``synth.digit_alpha``) with the thin pen's strokes kept whole."""

    def digit_alpha(digit28: np.ndarray, height: int, stroke: float) -> np.ndarray:
        alpha = drawn(digit28, height, stroke)
        return whole_thin(drawn(digit28, height, 0.0), alpha) if stroke < 0 else alpha

    return digit_alpha


def with_whole_thin_pen(script: str, args: list[str]) -> None:
    """Run bench/``script``.py with ``args`` on the generator with the whole thin pen."""
    # dev_numbers' worker processes are forked: they have it too
    synth.digit_alpha = whole_thin_pen(synth.digit_alpha)
    path = Path(__file__).with_name(f"{script}.py")
    sys.argv = [str(path), *args]
    runpy.run_path(str(path), run_name="__main__")


def main() -> None:
    what, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if what in ("realworld", "dev_numbers"):
        return with_whole_thin_pen(what, rest)  # their own arguments, --count included
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["breaks", "realworld", "dev_numbers"])
    parser.add_argument("--count", type=int, default=500, help="digits per height")
    breaks(parser.parse_args().count)


if __name__ == "__main__":
    main()
