"""Numbers written on forms: one digit to a box, or on a notebook's ruled page.

The generator of bench/realworld.py draws at most one printed line under an
amount; forms have more. ``synth.form`` writes 2-6 MNIST *test* digits in blue
pen, one to a cell, in a row of dark grey boxes or on a page ruled in light
blue with a red margin line:

    python bench/forms.py [--pages 200] [--seed 0]

Prints, per paper, how many numbers read exactly and the first misses.
"""

from __future__ import annotations

import argparse

import numpy as np

from inkdigits import data, synth
from inkdigits.reader import Reader


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--pages", type=int, default=200)
    p.add_argument("--seed", type=int, default=0, help="pages use seeds seed .. seed + pages - 1")
    args = p.parse_args()
    mnist = data.load_mnist()
    reader = Reader(min_confidence=0.0)
    for paper in synth.FORMS:
        misses = []
        for seed in range(args.seed, args.seed + args.pages):
            rng = np.random.default_rng(seed)
            page = synth.form(rng, mnist.test_images, mnist.test_labels, paper)
            got = reader.read_number(page.image).number
            if got != page.label:
                misses.append((seed, page.label, got))
        right = args.pages - len(misses)
        print(f"{paper}: {right}/{args.pages} read exactly ({100 * right / args.pages:.1f}%)")
        for seed, label, got in misses[:8]:
            print(f"  seed {seed}: {label} read {got!r}")


if __name__ == "__main__":
    main()
