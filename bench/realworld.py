"""The real-world benchmark: read generated photos, scans and checks (inkdigits.synth).

Single digits and 2-10-digit numbers built from MNIST *test* digits only, on
white paper, shadowed paper photos and patterned check backgrounds, both
polarities, black and blue ink, 15-300 px digits, thin/thick strokes,
rotation, blur, JPEG, noise, spacing from spaced to touching, punctuation.

    python bench/realworld.py [--digits 2000] [--numbers 500] [--seed 2026] [--model PATH]

Prints single-digit accuracy, whole-number exact match, a breakdown by
condition, and the rejection tables (what share of digits, and of numbers,
set aside as unsure buys what error rate on the rest).
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

from inkdigits import data, synth
from inkdigits.reader import Reader, line_model_option


def rejection_table(conf: np.ndarray, correct: np.ndarray) -> list[tuple[float, float, float]]:
    """(threshold, share rejected, error rate on the accepted) for a few thresholds."""
    rows = []
    for t in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
        keep = conf >= t
        rejected = 1 - keep.mean()
        err = 1 - correct[keep].mean() if keep.any() else 0.0
        rows.append((t, float(rejected), float(err)))
    return rows


def print_rejection(what: str, conf: list[float], correct: list[bool]) -> None:
    """The rejection table of ``what`` (reading confidences and whether each was right)."""
    print(f"\nrejection ({what}): threshold, share rejected, error rate on the rest")
    for t, rej, err in rejection_table(np.array(conf), np.array(correct)):
        print(f"  {t:4.2f}  {100 * rej:6.2f}%  {100 * err:6.2f}%")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--digits", type=int, default=2000)
    p.add_argument("--numbers", type=int, default=500)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--model", default=None)
    p.add_argument("--show-failures", type=int, default=0, help="print the spec of N failures")
    p.add_argument(
        "--line-model", default=None, help="an .onnx line model, or `none` (default: the model's)"
    )
    args = p.parse_args()
    mnist = data.load_mnist()
    reader = Reader(
        args.model, min_confidence=0.0, line_model=line_model_option(args.line_model)
    )  # accuracy without rejection; table below

    by = collections.defaultdict(lambda: [0, 0])
    conf, correct, seconds = [], [], []
    for s in synth.dataset(args.seed, args.digits, mnist.test_images, mnist.test_labels, False):
        t = time.perf_counter()
        r = reader.read_digit(s.image)
        seconds.append(time.perf_counter() - t)
        ok = r.text == s.label
        conf.append(r.confidence)
        correct.append(ok)
        for key in ("background", "ink", "spacing"):
            by[f"digit {key}={s.spec[key]}"][0] += ok
            by[f"digit {key}={s.spec[key]}"][1] += 1
        size = (
            "15-40px"
            if s.spec["height"] < 40
            else "40-120px"
            if s.spec["height"] < 120
            else "120-300px"
        )
        by[f"digit height {size}"][0] += ok
        by[f"digit height {size}"][1] += 1
        by[f"digit polarity {'light-on-dark' if s.spec['dark'] else 'dark-on-light'}"][0] += ok
        by[f"digit polarity {'light-on-dark' if s.spec['dark'] else 'dark-on-light'}"][1] += 1
    if correct:
        print(
            f"single digits: {np.mean(correct) * 100:.2f}% of {len(correct)} read correctly "
            f"(median {np.median(seconds) * 1e3:.1f} ms per image)"
        )

    failures, nsec, nconf, ncorrect = [], [], [], []
    for s in synth.dataset(args.seed + 1, args.numbers, mnist.test_images, mnist.test_labels, True):
        t = time.perf_counter()
        r = reader.read_number(s.image)
        nsec.append(time.perf_counter() - t)
        ok = r.number == s.label
        nconf.append(r.confidence)
        ncorrect.append(ok)
        for key in ("background", "spacing", "punctuation"):
            by[f"number {key}={s.spec[key]}"][0] += ok
            by[f"number {key}={s.spec[key]}"][1] += 1
        if not ok:
            failures.append((s.label, r.number, s.spec))
    if ncorrect:
        print(
            f"numbers: {100 * np.mean(ncorrect):.2f}% of {len(ncorrect)} read exactly "
            f"(median {np.median(nsec) * 1e3:.1f} ms per image)"
        )
    print("\nby condition:")
    for key in sorted(by):
        ok, n = by[key]
        print(f"  {key:40s} {100 * ok / n:6.2f}%  ({n})")
    if correct:
        print_rejection("single digits", conf, correct)
    if ncorrect:
        print_rejection("numbers", nconf, ncorrect)
    for label, got, spec in failures[: args.show_failures]:
        spec = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in spec.items()
                if k != "mnist_test_indices"}  # fmt: skip
        print(f"  FAIL {label} -> {got!r}  {spec}")


if __name__ == "__main__":
    main()
