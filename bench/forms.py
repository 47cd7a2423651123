"""Numbers written on forms: one digit to a box, or on a notebook's ruled page.

The generator of bench/realworld.py draws at most one printed line under an
amount; forms have more. ``synth.form`` writes 2-6 MNIST *test* digits in blue
pen, one to a cell, in a row of dark grey boxes or on a page ruled in light
blue with a red margin line:

    python bench/forms.py [--pages 200] [--seed 0] [--angles 0 1 3 5] [--papers ruled]

With --angles, each page is also read photographed askew: turned by each
angle in degrees (counter-clockwise) about its centre, its edges continued.
Prints, per paper and angle, how many numbers read exactly and the first misses.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from inkdigits import data, synth
from inkdigits.reader import Reader


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--pages", type=int, default=200)
    p.add_argument("--seed", type=int, default=0, help="pages use seeds seed .. seed + pages - 1")
    p.add_argument(
        "--angles", type=float, nargs="+", default=[0.0], help="turn each page by these degrees"
    )
    p.add_argument(
        "--papers",
        nargs="+",
        choices=synth.FORMS,
        default=list(synth.FORMS),
        help="read only these papers (default: all)",
    )
    args = p.parse_args()
    mnist = data.load_mnist()
    reader = Reader(min_confidence=0.0)
    for paper in args.papers:
        for angle in args.angles:
            misses = []
            for seed in range(args.seed, args.seed + args.pages):
                rng = np.random.default_rng(seed)
                page = synth.form(rng, mnist.test_images, mnist.test_labels, paper)
                got = reader.read_number(askew(page.image, angle)).number
                if got != page.label:
                    misses.append((seed, page.label, got))
            right = args.pages - len(misses)
            print(
                f"{paper}, {angle:g} degrees: {right}/{args.pages} read exactly "
                f"({100 * right / args.pages:.1f}%)"
            )
            for seed, label, got in misses[:8]:
                print(f"  seed {seed}: {label} read {got!r}")


def askew(img: np.ndarray, angle: float) -> np.ndarray:
    """``img`` turned by ``angle`` degrees about its centre, its edges continued."""
    if not angle:
        return img
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


if __name__ == "__main__":
    main()
