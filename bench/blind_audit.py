"""Blind audit: could a person read the numbers the Reader misreads?

    python bench/blind_audit.py panels [--seeds 12 13] [--count 400] [--controls 10] [--out DIR]
    python bench/blind_audit.py score READINGS [--out DIR]

``panels`` renders the real-world generator's numbers (inkdigits.synth, the
benchmark's generator; use development seeds, never the benchmark's 2026),
reads them with the shipped Reader (no rejection), and keeps every miss and
``--controls`` numbers it read right per seed. Each is cut out around its
digits (the generator centres the writing; rotation allowed for), scaled to
fit 1120x260 and drawn on a panel with an id only: no label, no reading.
The panels are shuffled (seeded) into ``DIR/blind_NN.png``, four per file;
``DIR/key.json`` holds the answers. Transcribe the panels without opening the
key: one line per panel, ``id digits certainty`` (certainty: sure, mid,
unsure or no; ``?`` for a digit you cannot read; ``#`` starts a comment).

``score`` compares such a transcription with the key: how many misses and
controls were read as written, and the share of all numbers read right by
the Reader or by the person (what a reader that read everything legible
would at most add). The transcription of session 23 is
``bench/audit/numbers-s12-13.txt`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import cv2
import numpy as np

from inkdigits import data, synth
from inkdigits.reader import Reader

PANEL = (300, 1120)  # height, width of one panel
FIT = (260, 1100)  # the cut-out is scaled to fit this


def cut_out(sample: synth.Sample) -> np.ndarray:
    """The writing of a rendered number: its digits' span plus 1.2 digit heights, and
    enough rows for the height and a rotation of up to about 10 degrees."""
    xs, h = sample.spec["digit_x"], sample.spec["height"]
    rows, cols = sample.image.shape[:2]
    x0, x1 = max(0, int(min(xs) - 1.2 * h)), min(cols, int(max(xs) + 1.2 * h))
    dy = 1.1 * h + 0.18 * (x1 - x0) / 2
    y0, y1 = max(0, int(rows / 2 - dy)), min(rows, int(rows / 2 + dy))
    crop = sample.image[y0:y1, x0:x1]
    scale = min(FIT[1] / crop.shape[1], FIT[0] / crop.shape[0])
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=shrink)


def panels(seeds: list[int], count: int, controls: int, out: Path) -> None:
    mnist = data.load_mnist()
    reader = Reader(min_confidence=0.0)
    rng = np.random.default_rng(123)
    items = []
    for seed in seeds:
        samples = list(synth.dataset(seed, count, mnist.test_images, mnist.test_labels, True))
        got = [reader.read_number(s.image).number for s in samples]
        right = [i for i, s in enumerate(samples) if got[i] == s.label]
        chosen = set(rng.choice(right, controls, replace=False).tolist())
        for i, s in enumerate(samples):
            if got[i] != s.label or i in chosen:
                items.append((seed, i, s.label, got[i], got[i] != s.label, cut_out(s)))
        print(f"seed {seed}: {count - len(right)} misses of {count}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    key, drawn = [], []
    for k, j in enumerate(rng.permutation(len(items))):
        seed, i, label, got, miss, crop = items[j]
        key.append(dict(id=k, seed=seed, i=i, label=label, got=got, miss=miss))
        canvas = np.full((*PANEL, 3), 255, np.uint8)
        canvas[: crop.shape[0], : crop.shape[1]] = crop
        cv2.putText(canvas, f"#{k}", (5, 292), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 0, 0), 2)
        drawn.append(canvas)
    (out / "key.json").write_text(json.dumps(key, indent=1))
    blank = np.full((*PANEL, 3), 255, np.uint8)
    for g in range(0, len(drawn), 4):
        four = drawn[g : g + 4] + [blank] * (4 - len(drawn[g : g + 4]))
        page = cv2.cvtColor(np.vstack(four), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(out / f"blind_{g // 4:02d}.png"), page)
    print(f"{len(items)} panels ({sum(it[4] for it in items)} misses) in {out}/")


def read_transcription(path: Path) -> dict[int, tuple[str, str]]:
    """``{id: (digits, certainty)}`` from a transcription file."""
    out = {}
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            out[int(fields[0])] = (fields[1], fields[2] if len(fields) > 2 else "")
    return out


def score(readings: Path, out: Path, totals: dict[int, int]) -> None:
    key = json.loads((out / "key.json").read_text())
    mine = read_transcription(readings)
    missing = [k["id"] for k in key if k["id"] not in mine]
    if missing:
        raise SystemExit(f"{readings}: no reading for panels {missing}")
    tally = collections.Counter()
    for k in key:
        digits, certainty = mine[k["id"]]
        kind = "miss" if k["miss"] else "control"
        right = digits == k["label"]
        tally[kind, right] += 1
        tally[kind, certainty, right] += 1
    for kind, plural in (("miss", "misses"), ("control", "controls")):
        n = tally[kind, True] + tally[kind, False]
        by = ", ".join(
            f"{c} {tally[kind, c, True]}/{tally[kind, c, True] + tally[kind, c, False]}"
            for c in ("sure", "mid", "unsure", "no")
            if tally[kind, c, True] + tally[kind, c, False]
        )
        print(f"{plural} read as written: {tally[kind, True]} of {n} ({by})")
    seeds = sorted({k["seed"] for k in key})
    count = sum(totals[s] for s in seeds)
    misses = tally["miss", True] + tally["miss", False]
    either = count - misses + tally["miss", True]
    print(
        f"numbers of seeds {seeds} ({count}): the Reader {count - misses}, "
        f"the Reader or the person {either} ({100 * either / count:.2f}%)"
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("panels")
    a.add_argument("--seeds", type=int, nargs="+", default=[12, 13])
    a.add_argument("--count", type=int, default=400, help="numbers per seed")
    a.add_argument("--controls", type=int, default=10, help="numbers read right, per seed")
    a.add_argument("--out", type=Path, default=Path("out/audit"))
    b = sub.add_parser("score")
    b.add_argument("readings", type=Path)
    b.add_argument("--count", type=int, default=400, help="numbers per seed, as for panels")
    b.add_argument("--out", type=Path, default=Path("out/audit"))
    args = p.parse_args()
    if args.command == "panels":
        panels(args.seeds, args.count, args.controls, args.out)
    else:
        key = json.loads((args.out / "key.json").read_text())
        score(args.readings, args.out, {k["seed"]: args.count for k in key})


if __name__ == "__main__":
    main()
