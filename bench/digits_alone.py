"""How well the benchmark's numbers could be read if every digit were found perfectly.

Each number of the real-world benchmark (bench/realworld.py: ``synth.dataset(
seed + 1, ...)``, 2-10 MNIST test digits) is rendered again once per digit with
every other mark left out: the same random draws, the same page, lighting,
blur, noise and JPEG, the digit where it was, and nothing beside it (the
other glyphs are drawn with no ink, so the layout is the same). The Reader
reads that image as one digit (``read_digit``). A number whose digits are all
read right that way would be read by a perfect segmentation feeding the
shipped digit reader; the share of such numbers bounds what finding digits
better can gain. The script also reads each number whole (``read_number``,
what the benchmark scores) and each digit's clean MNIST image with the
classifier, and prints:

- numbers read exactly, three ways: whole (the benchmark's figure), every
  digit alone, every digit's clean MNIST image;
- how the whole and the alone readings overlap (which numbers each gets);
- the digits read wrong alone, by pen and height, and the list of numbers
  with such a digit.

    python bench/digits_alone.py [--numbers 500] [--seed 2026] [--workers 2]
    python bench/digits_alone.py --whole-thin   # thin strokes kept whole, as bench/thin_pen.py

It takes about 2 s per number on one core (a 2-10-digit number is rendered
1 + its digits times and read as many times).
"""

from __future__ import annotations

import argparse
import collections
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from dev_numbers import pen_of  # bench/, beside this script

from inkdigits import data, synth
from inkdigits.reader import Reader

# the generator's own drawing, before _Alone patches it (forked workers import nothing again)
DIGIT_ALPHA, PUNCT_ALPHA = synth.digit_alpha, synth._punct_alpha


class _Alone:
    """The generator with only the ``keep``-th digit drawn (None: all of them)."""

    def __init__(self, whole_thin: bool) -> None:
        self.keep: int | None = None
        self.calls = 0
        self.digit_alpha = DIGIT_ALPHA
        self.punct_alpha = PUNCT_ALPHA
        if whole_thin:
            import thin_pen  # bench/, beside this script

            self.digit_alpha = thin_pen.whole_thin_pen(DIGIT_ALPHA)
        synth.digit_alpha = self._digit
        synth._punct_alpha = self._punct

    def _digit(self, *args: Any) -> np.ndarray:
        g = self.digit_alpha(*args)
        k, self.calls = self.calls, self.calls + 1
        return g if self.keep is None or k == self.keep else np.zeros_like(g)

    def _punct(self, *args: Any) -> np.ndarray:
        g = self.punct_alpha(*args)  # its random draws are made all the same
        return g if self.keep is None else np.zeros_like(g)

    def render(self, state: dict, images: np.ndarray, labels: np.ndarray, n: int, keep: int | None):
        rng = np.random.default_rng()
        rng.bit_generator.state = state
        self.keep, self.calls = keep, 0
        return synth.render(rng, images, labels, n)


_WORKER: dict[str, Any] = {}


def _init(whole_thin: bool, model: str | None) -> None:
    _WORKER["alone"] = _Alone(whole_thin)
    _WORKER["reader"] = Reader(model, min_confidence=0.0, threads=1)
    _WORKER["mnist"] = data.load_mnist()


def _read(job: tuple[int, dict, int]) -> dict[str, Any]:
    """One number: read whole, each digit alone, each digit's clean MNIST image."""
    index, state, n = job
    alone, reader, mnist = _WORKER["alone"], _WORKER["reader"], _WORKER["mnist"]
    images, labels = mnist.test_images, mnist.test_labels
    s = alone.render(state, images, labels, n, None)
    digits = []
    for k in range(n):
        one = alone.render(state, images, labels, n, k)
        if one.label != s.label or one.image.shape != s.image.shape:  # not the same draws
            raise RuntimeError(f"number {index}: digit {k} alone is not drawn as in the number")
        d = reader.read_digit(one.image)
        digits.append("?" if d.digit is None else str(d.digit))
    clean = reader.classify(images[s.spec["mnist_test_indices"]]).argmax(axis=1)
    return {
        "index": index,
        "label": s.label,
        "whole": reader.read_number(s.image).number,
        "alone": "".join(digits),
        "clean": "".join(map(str, clean)),
        "height": s.spec["height"],
        "pen": pen_of(s.spec),
        "spacing": s.spec["spacing"],
    }


def jobs(seed: int, count: int):
    """(index, generator state, digits) of each benchmark number, as synth.dataset draws them.

    Rendering is what moves the generator on (the pens draw no random
    numbers, so the unpatched generator moves it as the workers' does)."""
    mnist = data.load_mnist()
    rng = np.random.default_rng(seed)
    for i in range(count):
        n = int(rng.integers(2, 11))
        yield i, rng.bit_generator.state, n
        synth.render(rng, mnist.test_images, mnist.test_labels, n)


def report(rows: list[dict[str, Any]]) -> None:
    n = len(rows)
    whole = [r["whole"] == r["label"] for r in rows]
    alone = [r["alone"] == r["label"] for r in rows]
    clean = [r["clean"] == r["label"] for r in rows]
    print(f"numbers read exactly ({n}):")
    for what, ok in (("whole (the benchmark)", whole), ("every digit alone", alone),
                     ("every digit's clean MNIST image", clean)):  # fmt: skip
        print(f"  {what:34s} {sum(ok):4d}  {100 * sum(ok) / n:6.2f}%")
    both = collections.Counter(zip(whole, alone, strict=True))
    print(
        f"  whole and alone both right {both[True, True]}, whole only {both[True, False]}, "
        f"alone only {both[False, True]}, neither {both[False, False]}; "
        f"either: {100 * (n - both[False, False]) / n:.2f}%"
    )
    cells: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        for got, want, cl in zip(r["alone"], r["label"], r["clean"], strict=True):
            for key in (r["pen"], "all"):
                cells[key][0] += got != want
                cells[key][1] += 1
            if cl != want:
                cells["clean MNIST image misread"][0] += got != want
                cells["clean MNIST image misread"][1] += 1
    print("\ndigits read wrong alone, by pen (digits at least "
          f"{synth.PEN_FROM} px) or size:")  # fmt: skip
    for key in sorted(cells):
        bad, total = cells[key]
        print(f"  {key:28s} {bad:4d} of {total:5d}  {100 * bad / max(total, 1):5.2f}%")
    print("\nnumbers with a digit read wrong alone: label, alone, whole, height, pen, spacing")
    for r in rows:
        if r["alone"] != r["label"]:
            print(f"  {r['label']:>10s} {r['alone']:>10s} {r['whole']!r:>14s} "
                  f"{r['height']:4d} {r['pen']:12s} {r['spacing']}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--numbers", type=int, default=500)
    p.add_argument("--seed", type=int, default=2026, help="numbers: seed + 1, as realworld.py")
    p.add_argument("--model", default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--whole-thin", action="store_true", help="the thin pen's strokes kept whole")
    p.add_argument("--out", type=Path, default=None, help="write every reading here (JSON)")
    args = p.parse_args()
    with ProcessPoolExecutor(
        args.workers, initializer=_init, initargs=(args.whole_thin, args.model)
    ) as pool:
        numbers = jobs(args.seed + 1, args.numbers)
        rows = list(pool.map(_read, numbers, chunksize=4))
    if args.out:
        args.out.write_text(json.dumps(rows))
    report(rows)


if __name__ == "__main__":
    main()
