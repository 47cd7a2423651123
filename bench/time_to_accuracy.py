"""Time from a cold start to a target MNIST *test* accuracy on this machine's CPU.

The clock starts before anything is imported (Python start-up aside) and stops
when a check of the full 10,000-image test set reaches the target; it includes
importing TensorFlow, reading the data from disk, building the model and every
accuracy check on the way. Each seed runs in a fresh process.

    python bench/time_to_accuracy.py --target 0.99  --model fast-cnn --epochs 2 --seeds 0 1 2
    python bench/time_to_accuracy.py --target 0.995 --model inkdigits-cnn --epochs 4 --no-augment

What moves it: a small batch-norm model (fast-cnn), batch 256 with a one-cycle
schedule over exactly the epochs budgeted, Adam at a high peak rate, mixed
bfloat16 on a CPU with AVX512-BF16, data held in memory as arrays, and stopping
the moment the target is reached (checks every quarter epoch).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402


def child(args: argparse.Namespace) -> None:
    import numpy as np

    from inkdigits import training
    from inkdigits._backend import keras
    from inkdigits.config import TrainConfig

    if args.width:  # a fast-cnn variant, registered for this run only
        import dataclasses
        import functools

        from inkdigits import models

        base = models.REGISTRY["fast-cnn"]
        name = f"fast-cnn-w{args.width}-h{args.hidden}"
        builder = functools.partial(models.fast_cnn, args.width, args.hidden)
        models.REGISTRY[name] = dataclasses.replace(
            base, name=name, builder=builder, params=builder().count_params()
        )
        args.model = name
    cfg = training.resolve(
        TrainConfig(
            model=args.model,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            augment=args.augment,
            precision=args.precision,
        )
    )
    keras.utils.set_random_seed(cfg.seed)
    splits = training.load_splits(cfg)
    # All 60k training images: the test set is the target here, not model selection.
    x = training.to_model_input(np.concatenate([splits.x_train, splits.x_val]))
    y = training.one_hot(np.concatenate([splits.y_train, splits.y_val]))
    x_test, y_test = training.to_model_input(splits.x_test), splits.y_test
    steps = int(np.ceil(len(x) / cfg.batch_size))
    net = training.build_training_model(cfg, steps)
    clf = training.inference_model(net)
    every = max(1, steps // args.checks_per_epoch)
    result = {"reached": False, "seconds": None, "accuracy": 0.0, "epochs": 0.0}

    class Check(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % every and batch + 1 != steps:
                return
            acc = float(
                (clf.predict(x_test, batch_size=2000, verbose=0).argmax(1) == y_test).mean()
            )
            result["accuracy"] = max(result["accuracy"], acc)
            result["epochs"] = self.epoch + (batch + 1) / steps
            if acc >= args.target:
                result.update(reached=True, seconds=time.perf_counter() - T0)
                self.model.stop_training = True

    net.fit(x, y, batch_size=cfg.batch_size, epochs=cfg.epochs, verbose=0, callbacks=[Check()])
    result["total_seconds"] = time.perf_counter() - T0
    result["precision"] = cfg.precision
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--model", default="fast-cnn")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--precision", default="auto")
    p.add_argument("--checks-per-epoch", type=int, default=4)
    p.add_argument("--width", type=int, default=0, help="fast-cnn variant: first-layer width")
    p.add_argument("--hidden", type=int, default=0, help="fast-cnn variant: hidden dense units")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.seed is not None:
        child(args)
        return
    times = []
    for seed in args.seeds:
        argv = [a for a in sys.argv[1:]]
        if "--seeds" in argv:  # drop the list, pass one seed
            i = argv.index("--seeds")
            j = i + 1
            while j < len(argv) and not argv[j].startswith("--"):
                j += 1
            argv = argv[:i] + argv[j:]
        proc = subprocess.run(
            [sys.executable, __file__, *argv, "--seed", str(seed)],
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        r = json.loads(line[len("RESULT ") :])
        print(
            f"seed {seed}: {'reached' if r['reached'] else 'MISSED'} {100 * args.target:.2f}% "
            f"after {r['epochs']:.2f} epochs, "
            f"{r['seconds'] if r['seconds'] is not None else float('nan'):.1f} s from start "
            f"(best {100 * r['accuracy']:.2f}%, {r['precision']})",
            flush=True,
        )
        times.append(r["seconds"] if r["reached"] else float("inf"))
    label = f"fast-cnn width {args.width} hidden {args.hidden}" if args.width else args.model
    print(
        f"{label}: median time to {100 * args.target:.2f}% test accuracy over seeds "
        f"{args.seeds}: {statistics.median(times):.1f} s"
    )


if __name__ == "__main__":
    main()
