"""ORAND-CAR-A development set: whole-string exact match of real bank-check amounts.

    python bench/orand.py [--dir ../shared/data/orand-car-a-dev] [--model PATH] [--show 20]

The labels count digits only; the punctuation and dashes on the checks must be
ignored by the reader. The "unseen" part is a fixed 30% of the files (by a hash
of the file name) that fine-tuning must never use; its figure is reported
separately, with what rejecting the amounts read below a confidence buys there.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from realworld import print_rejection  # bench/realworld.py, beside this script

from inkdigits.extra import held_out as unseen
from inkdigits.reader import Reader, line_model_option

DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "orand-car-a-dev"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--model", default=None)
    p.add_argument("--show", type=int, default=0, help="print N failures")
    p.add_argument(
        "--line-model", default=None, help="an .onnx line model, or `none` (default: the model's)"
    )
    args = p.parse_args()
    rows = list(csv.DictReader(open(args.dir / "labels.csv")))
    reader = Reader(args.model, min_confidence=0.0, line_model=line_model_option(args.line_model))
    results = {"all": [], "unseen": []}
    fails, seconds, conf = [], [], []
    for row in rows:
        t = time.perf_counter()
        r = reader.read_number(args.dir / row["file"])
        seconds.append(time.perf_counter() - t)
        got = r.number.replace("\n", "")
        ok = got == row["label"]
        results["all"].append(ok)
        if unseen(row["file"]):
            results["unseen"].append(ok)
            conf.append(r.confidence)
        if not ok:
            fails.append((row["file"], row["label"], got))
    for part, oks in results.items():
        print(
            f"ORAND-CAR-A dev, {part:6s}: {100 * np.mean(oks):.2f}% exact ({sum(oks)}/{len(oks)})"
        )
    print(f"median {np.median(seconds) * 1e3:.1f} ms per image")
    print_rejection("unseen part", conf, results["unseen"])
    for f, want, got in fails[: args.show]:
        print(f"  {f}: {want} -> {got}")


if __name__ == "__main__":
    main()
