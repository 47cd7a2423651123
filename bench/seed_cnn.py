"""The original project's model and recipe (seed-cnn: RMSprop, 5 epochs, batch 64),
trained in float32 and in mixed bfloat16 side by side: test accuracy and seconds per epoch.

    python bench/seed_cnn.py [--seeds 0] [--out /tmp/bench-seed-cnn]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
from pathlib import Path

from inkdigits import training
from inkdigits.config import TrainConfig


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    p.add_argument("--model", default="seed-cnn")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-seed-cnn-"))
    try:
        for seed in args.seeds:
            for precision in args.precisions:
                out = root / f"{precision}-{seed}"
                cfg = TrainConfig(model=args.model, seed=seed, precision=precision)
                card = training.train(cfg, out, stream=io.StringIO(), verbose=0).card
                rows = training.read_metrics(out / "metrics.csv")
                per_epoch = statistics.median(r["seconds"] for r in rows)
                m = card["metrics"]
                print(
                    f"{args.model} seed {seed} {precision:15s} epochs {len(rows)}  "
                    f"test acc {100 * m['test_accuracy']:.2f}%  val acc "
                    f"{100 * m['val_accuracy']:.2f}%  median {per_epoch:.1f} s/epoch  "
                    f"total {card['training']['train_seconds']:.0f} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
