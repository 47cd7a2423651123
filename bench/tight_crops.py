"""Digits and numbers cropped tight: how little paper around the ink the reader needs.

People crop their photos to the writing, and a drawing program's canvas is
often filled by one bold digit; the generator of bench/realworld.py always
leaves a tenth of the writing's size or more of paper around it. Here clean
MNIST *test* digits (black on white, ``synth.digit_alpha`` in each of the
generator's pens, 40-120 px tall) are read with the margin around their ink
a given share of their height, and clean numbers (2-7 digits, 80 px tall)
cut 8 px around their ink:

    python bench/tight_crops.py [--digits 300] [--numbers 60]

Prints, per pen, the digits read right at each margin (``Reader.read_digit``;
in brackets those refused, e.g. as "not a digit (a solid blob)") and the
tight numbers read exactly (``Reader.read_number``).
"""

from __future__ import annotations

import argparse

import numpy as np

from inkdigits import data, synth
from inkdigits.reader import Reader

MARGINS = (0.1, 0.25, 0.5, 1.0)  # paper on each side, as a share of the digit's height
NUMBER = dict(background="white", dark=False, spacing="spaced", punctuation=False, rotation=0.0,
              blur=0.0, noise=2.0, jpeg=0, height=80)  # fmt: skip


def digits(reader: Reader, mnist: data.Mnist, pen: str, margin: float, n: int) -> tuple[int, int]:
    """How many of ``n`` digits in ``pen`` with ``margin`` of paper read right, and
    how many were refused (no digit read: "not a digit (a solid blob)" and the like)."""
    rng = np.random.default_rng(0)
    idx = rng.choice(len(mnist.test_images), n, replace=False)
    heights = rng.integers(40, 121, n)
    right = refused = 0
    for i, h in zip(idx, heights, strict=True):
        alpha = synth.digit_alpha(mnist.test_images[i], int(h), synth.PENS[pen])
        page = (255 * (1 - np.pad(alpha, int(margin * h) + 2))).astype(np.uint8)
        got = reader.read_digit(page).digit
        right += got == mnist.test_labels[i]
        refused += got is None
    return right, refused


def numbers(reader: Reader, mnist: data.Mnist, pen: str, n: int) -> int:
    """How many of ``n`` numbers in ``pen``, cut 8 px around their ink, read exactly."""
    right = 0
    for seed in range(n):
        rng = np.random.default_rng(seed)
        s = synth.render(
            rng, mnist.test_images, mnist.test_labels, int(rng.integers(2, 8)),
            stroke=synth.PENS[pen], **NUMBER,
        )  # fmt: skip
        ys, xs = np.nonzero(s.image.min(axis=2) < 128)
        crop = s.image[max(0, ys.min() - 8) : ys.max() + 8, max(0, xs.min() - 8) : xs.max() + 8]
        right += reader.read_number(crop).number == s.label
    return right


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--digits", type=int, default=300)
    p.add_argument("--numbers", type=int, default=60)
    args = p.parse_args()
    mnist = data.load_mnist()
    reader = Reader(min_confidence=0.0)
    head = " | ".join(f"margin {m:g}" for m in MARGINS)
    print(f"| pen | {head} | numbers cut 8 px around |")
    print("| --- |" + " ---: |" * (len(MARGINS) + 1))
    for pen in synth.PENS:
        cells = []
        for m in MARGINS:
            right, refused = digits(reader, mnist, pen, m, args.digits)
            cells.append(f"{right}/{args.digits}" + (f" ({refused} refused)" if refused else ""))
        cells.append(f"{numbers(reader, mnist, pen, args.numbers)}/{args.numbers}")
        print(f"| {pen} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
