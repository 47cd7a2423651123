"""Reading latency on this CPU: one digit in a 640x480 photo, a 10-digit number, CLI cold start.

    python bench/read_latency.py [--repeats 50] [--model PATH]

In-process figures are medians over --repeats calls after a warm-up (the
image is decoded from PNG bytes each time: end to end; the one-digit photo
is also read as a JPEG, as a phone saves it), first in a plain
Python process, then with the allocator tuned as the `inkdigits` commands and
the server tune it (inkdigits._memory.tune_memory). The cold start is the
median wall time of 5 runs of `inkdigits read IMAGE` in a fresh process.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from inkdigits import data, synth
from inkdigits._memory import tune_memory
from inkdigits.reader import Reader


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(img: np.ndarray) -> bytes:
    """``img`` as a phone saves a photo: JPEG, quality 90."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def photo(rng, mnist, n_digits: int, height: int, spacing: str = "spaced") -> np.ndarray:
    s = synth.render(rng, mnist.test_images, mnist.test_labels, n_digits, height=height,
                     background="photo", dark=False, spacing=spacing, punctuation=False,
                     rotation=2.0, jpeg=0)  # fmt: skip
    return s.image


def fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Centre the sample on a w x h page of its own paper colour (a sample larger
    than the page keeps its middle, where the generator puts the writing)."""
    out = np.empty((h, w, 3), np.uint8)
    out[:] = np.median(img.reshape(-1, 3), axis=0).astype(np.uint8)
    ih, iw = min(h, img.shape[0]), min(w, img.shape[1])
    y, x = (h - ih) // 2, (w - iw) // 2
    sy, sx = (img.shape[0] - ih) // 2, (img.shape[1] - iw) // 2
    out[y : y + ih, x : x + iw] = img[sy : sy + ih, sx : sx + iw]
    return out


def timed(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--model", default=None)
    args = p.parse_args()
    mnist = data.load_mnist()
    rng = np.random.default_rng(0)
    reader = Reader(args.model)
    one_photo = fit(photo(rng, mnist, 1, 120), 640, 480)
    one, one_jpeg = png(one_photo), jpeg(one_photo)
    ten = png(fit(photo(rng, mnist, 10, 60), 1000, 300))
    # touching digits: the splitter reads every candidate segment (after the
    # two above, so their images stay what they were)
    joined = png(fit(photo(rng, mnist, 10, 60, "touching"), 1000, 300))
    for how in ("plain process", "allocator tuned"):
        if how == "allocator tuned" and not tune_memory():
            print("allocator tuning: not available here (not glibc)")
            break
        print(
            f"one digit, 640x480 photo (PNG bytes -> result), {how}: "
            f"{timed(lambda: reader.read_digit(one), args.repeats):.1f} ms median"
        )
        print(
            f"one digit, the same photo as a JPEG (quality 90), {how}: "
            f"{timed(lambda: reader.read_digit(one_jpeg), args.repeats):.1f} ms median"
        )
        print(
            f"10-digit number, 1000x300 photo, {how}:                "
            f"{timed(lambda: reader.read_number(ten), args.repeats):.1f} ms median"
        )
        print(
            f"10-digit number, touching, 1000x300 photo, {how}:       "
            f"{timed(lambda: reader.read_number(joined), args.repeats):.1f} ms median"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digit.png"
        path.write_bytes(one)
        cmd = [sys.executable, "-m", "inkdigits", "read", str(path)]
        if args.model:
            cmd += ["--model", args.model]
        cold = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            cold.append(time.perf_counter() - t)
    print(
        f"CLI cold start to first result (`inkdigits read`): "
        f"{statistics.median(cold):.2f} s median of 5"
    )


if __name__ == "__main__":
    main()
