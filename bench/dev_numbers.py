"""Development numbers: read seeded generated numbers, keep every reading, compare runs.

The number reader's choices are made on generated numbers of development
seeds (10-13 by convention) and checked on fresh seeds no choice was made on
(14-17 and up), never on the benchmark's seeds (bench/realworld.py: 2026 and
2027). Every reading is written to a JSON file, so that two versions of the
reader can be compared number by number:

    python bench/dev_numbers.py --seeds 10 11 12 13 --out runs/dev/before.json
    # change the reader, then
    python bench/dev_numbers.py --seeds 10 11 12 13 --out runs/dev/after.json \\
        --compare runs/dev/before.json

Prints each seed as it is read (in order), then how many numbers were read
exactly, the misses by pen and spacing (the generator's pen only changes
digits at least synth.PEN_FROM px tall) and, with --compare, the numbers
gained and lost. Each seed is
``synth.dataset(seed, --count, MNIST test digits, numbers=True)``, read by the
Reader at min_confidence 0 (no rejection), as bench/realworld.py reads.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from inkdigits import data, synth
from inkdigits.reader import Reader, line_model_option

PEN_NAMES = {v: k for k, v in synth.PENS.items()}
NO_PEN = f"under {synth.PEN_FROM} px"


def pen_of(spec: dict[str, Any]) -> str:
    """The pen a generated number was written with, as it shows in its digits."""
    if spec["height"] < synth.PEN_FROM:
        return NO_PEN
    return PEN_NAMES.get(spec["stroke"], str(spec["stroke"]))


def read_seed(job: tuple[int, int, str | None, str | None, int]) -> list[dict[str, Any]]:
    """Every number of one seed as read: label, reading, confidence and how it was made."""
    seed, count, model, line_model, threads = job
    mnist = data.load_mnist()
    reader = Reader(
        model, min_confidence=0.0, threads=threads, line_model=line_model_option(line_model)
    )
    out = []
    for i, s in enumerate(synth.dataset(seed, count, mnist.test_images, mnist.test_labels, True)):
        r = reader.read_number(s.image)
        out.append(
            {
                "seed": seed,
                "index": i,
                "label": s.label,
                "read": r.number,
                "confidence": round(float(r.confidence), 5),
                "pen": pen_of(s.spec),
                "spacing": s.spec["spacing"],
                "height": s.spec["height"],
                "background": s.spec["background"],
            }
        )
    return out


def misses_table(rows: list[dict[str, Any]]) -> str:
    """Misses / numbers by pen (rows) and spacing (columns), as a Markdown table."""
    cells: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        for key in ((r["pen"], r["spacing"]), (r["pen"], "all"), ("all", r["spacing"])):
            cells[key][0] += r["read"] != r["label"]
            cells[key][1] += 1
    cells[("all", "all")] = [sum(r["read"] != r["label"] for r in rows), len(rows)]
    columns = [*synth.SPACINGS, "all"]
    pens = [NO_PEN, *synth.PENS]
    pens += sorted({r["pen"] for r in rows} - set(pens)) + ["all"]
    lines = ["| pen | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for pen in pens:
        row = []
        for col in columns:
            miss, n = cells.get((pen, col), (0, 0))
            row.append(f"{miss}/{n} ({100 * miss / n:.1f}%)" if n else "")
        if any(row):
            lines.append(f"| {pen} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def compare(rows: list[dict[str, Any]], old_path: Path) -> str:
    """Numbers gained and lost against an earlier run's readings of the same numbers."""
    old = {(r["seed"], r["index"]): r for r in json.loads(old_path.read_text())["readings"]}
    gained, lost, changed = [], [], 0
    for r in rows:
        key = (r["seed"], r["index"])
        before = old.get(key)
        if before is None:
            raise SystemExit(f"{old_path}: no reading of seed {key[0]} number {key[1]}")
        if before["label"] != r["label"]:
            raise SystemExit(
                f"{old_path}: seed {key[0]} number {key[1]} was {before['label']}, now "
                f"{r['label']}: another generator or count; read both with this one"
            )
        changed += before["read"] != r["read"]
        ok, was_ok = r["read"] == r["label"], before["read"] == r["label"]
        if ok and not was_ok:
            gained.append(f"{key[0]}#{key[1]} {r['label']} (was {before['read']!r})")
        elif was_ok and not ok:
            lost.append(f"{key[0]}#{key[1]} {r['label']} (now {r['read']!r})")
    right = sum(r["read"] == r["label"] for r in rows)
    was = sum(old[(r["seed"], r["index"])]["read"] == r["label"] for r in rows)
    text = [f"against {old_path}: {was} -> {right} ({len(gained)} gained, {len(lost)} lost, "
            f"{changed} read differently)"]  # fmt: skip
    text += [f"  gained {g}" for g in gained] + [f"  lost   {x}" for x in lost]
    return "\n".join(text)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12, 13])
    p.add_argument("--count", type=int, default=400, help="numbers per seed (default 400)")
    p.add_argument("--model", default=None, help="digit model (default: the shipped one)")
    p.add_argument(
        "--line-model", default=None, help="an .onnx line model, or `none` (default: the model's)"
    )
    p.add_argument("--workers", type=int, default=2, help="processes, one seed each (default 2)")
    p.add_argument("--out", type=Path, help="write every reading to this JSON file")
    p.add_argument("--compare", type=Path, help="an earlier --out of the same seeds and count")
    args = p.parse_args()
    if args.count < 1:
        p.error("--count must be at least 1")
    if args.compare is not None and not args.compare.is_file():
        p.error(f"--compare {args.compare}: no such file")
    workers = max(1, min(args.workers, len(args.seeds)))
    threads = 1 if workers > 1 else 2
    jobs = [(seed, args.count, args.model, args.line_model, threads) for seed in args.seeds]
    start = time.perf_counter()

    def done(part: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Say that a seed is read (each takes minutes), and pass its readings on."""
        right = sum(r["read"] == r["label"] for r in part)
        print(
            f"  seed {part[0]['seed']}: {right} of {len(part)} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        return part

    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = [done(part) for part in pool.map(read_seed, jobs)]
    else:
        parts = [done(read_seed(job)) for job in jobs]
    rows = [r for part in parts for r in part]
    right = sum(r["read"] == r["label"] for r in rows)
    seeds = " ".join(map(str, args.seeds))
    print(
        f"seeds {seeds}: {right} of {len(rows)} numbers read exactly "
        f"({100 * right / len(rows):.2f}%; {time.perf_counter() - start:.0f} s)"
    )
    print("\nmisses by pen and spacing:\n" + misses_table(rows))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"seeds": args.seeds, "count": args.count, "model": args.model,
                "line_model": args.line_model}  # fmt: skip
        args.out.write_text(json.dumps({**meta, "readings": rows}, indent=0) + "\n")
        print(f"\nreadings -> {args.out}")
    if args.compare is not None:
        print("\n" + compare(rows, args.compare))


if __name__ == "__main__":
    main()
