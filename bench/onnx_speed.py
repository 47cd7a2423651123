"""Speed of a model through ONNX Runtime on this CPU: latency at batch 1, throughput at 1024.

    python bench/onnx_speed.py [--model PATH.onnx] [--threads 2] [--repeats 5]

Latency is the median of single-digit calls (after warm-up); throughput is
digits per second for batches of 1024 MNIST test digits. Each figure is the
median of --repeats rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

from inkdigits import data
from inkdigits.classifier import Classifier


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default=None, help="an .onnx with its card.json (default: shipped)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    clf = Classifier(args.model, threads=args.threads)
    x = clf.to_input(data.load_mnist().test_images)  # (10000, 28, 28, 1)
    run = clf.session.run
    name = clf.input_name
    for i in range(200):  # warm-up
        run(None, {name: x[i : i + 1]})

    lat, thr = [], []
    for _ in range(args.repeats):
        times = []
        for i in range(1000):
            t = time.perf_counter()
            run(None, {name: x[i : i + 1]})
            times.append(time.perf_counter() - t)
        lat.append(statistics.median(times) * 1e3)
        t = time.perf_counter()
        n = 0
        for i in range(0, 10240 - 1024 + 1, 1024):
            run(None, {name: x[i % 9000 : i % 9000 + 1024]})
            n += 1024
        thr.append(n / (time.perf_counter() - t))
    print(f"model {clf.path} ({clf.card['model']['name']}), {args.threads} threads")
    print(
        f"batch 1:    median latency {statistics.median(lat):.3f} ms per digit "
        f"(rounds: {', '.join(f'{v:.3f}' for v in lat)})"
    )
    print(
        f"batch 1024: median throughput {statistics.median(thr):,.0f} digits/s "
        f"(rounds: {', '.join(f'{v:,.0f}' for v in thr)})"
    )


if __name__ == "__main__":
    main()
