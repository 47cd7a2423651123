"""Render MNIST training digits with the generator's draws the shipped model misreads most.

Session 41 (bench/digits_alone.py) found the digits misread when read alone
are the thin pen's (3.97%) and those under 40 px (1.04%), against 0.27-0.46%
for the other pens. This renders single MNIST *training* digits (never
validation or test) with the benchmark's generator, each either in the thin
pen at 40-300 px (60%) or 15-40 px tall (40%; the pens do not reach those),
heights log-uniform, everything else drawn as the generator draws it, and
cuts each out with the one-digit preprocessing, as `inkdigits render-digits`
does. Fine-tune with it (session 43; not shipped, see docs/BENCHMARKS.md):

    python bench/hard_digits.py --count 24000 --seed 1 --out runs/train/hard-s1.npz
    inkdigits render-digits --count 16000 --seed 5 --out runs/train/rendered-s5.npz
    inkdigits train --model inkdigits-cnn --init-from src/inkdigits/weights/model.onnx \\
        --extra-digits runs/train/rendered-s5.npz runs/train/hard-s1.npz --extra-repeat 1 1 \\
        --epochs 4 --lr 5e-4 --elastic 0.5 --seed 0 --out runs/train/ft-hard

About 25 minutes for 24,000 on two cores (1,000 in 62 s; thin-pen digits
up to 300 px are the slow ones).
"""

from __future__ import annotations

import argparse

import numpy as np

from inkdigits import synth
from inkdigits.cli import positive_int
from inkdigits.data import load_mnist
from inkdigits.extra import check_output, rendered_digits, save_crops

THIN_SHARE = 0.6  # of the renders in the thin pen; the rest are small digits
TALLEST = 300  # px, as the generator's


def hard_draw(rng: np.random.Generator) -> dict[str, float]:
    """The choices one render is forced to: the thin pen and a height from PEN_FROM to
    TALLEST, or a height from 15 px to PEN_FROM (log-uniform either way)."""
    if rng.random() < THIN_SHARE:
        low, high, force = synth.PEN_FROM, TALLEST, {"stroke": synth.PENS["thin"]}
    else:
        low, high, force = 15, synth.PEN_FROM, {}
    return {**force, "height": int(np.exp(rng.uniform(np.log(low), np.log(high))))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=positive_int, default=24000, help="renders (default 24000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=positive_int, default=2)
    p.add_argument("--out", required=True, help="the .npz to write (images, labels)")
    args = p.parse_args()
    check_output(args.out)  # before minutes of rendering
    s = load_mnist().split()
    images, labels = rendered_digits(
        s.x_train, s.y_train, args.count, args.seed, args.workers, draw=hard_draw
    )
    save_crops(args.out, images, labels)
    print(f"{len(images)} of {args.count} renders read as digits -> {args.out}",
          np.bincount(labels, minlength=10))  # fmt: skip


if __name__ == "__main__":
    main()
