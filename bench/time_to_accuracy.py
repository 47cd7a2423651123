"""Time from a cold start to a target MNIST *test* accuracy on this machine's CPU.

The clock starts before anything is imported (Python start-up aside) and stops
when a check of the full 10,000-image test set reaches the target; it includes
importing TensorFlow, reading the data from disk, building the model and every
accuracy check on the way. Each seed runs in a fresh process.

    python bench/time_to_accuracy.py --target 0.99 --model fast-cnn --seeds 0 1 2 \
        --checks-per-epoch 8 --first-check 1
    python bench/time_to_accuracy.py --target 0.995 --model inkdigits-cnn --epochs 3 \
        --no-augment --first-check 2 --seeds 0 1 2
    python bench/time_to_accuracy.py ... --loop fit     # the same run through Keras fit

What moves it: a small model that is cheap on this CPU (fast-cnn: two strided
batch-norm convolutions, 6.5 s per epoch), batch 256 with a one-cycle schedule
over exactly the epochs budgeted, Adam at a high peak rate, mixed bfloat16 on a
CPU with AVX512-BF16, data held in memory as tensors, a hand-written training
loop that runs many steps per call of one tf.function, no accuracy check
before it can pay (--first-check), and stopping the moment the target is
reached.
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
    every = -(-steps // args.checks_per_epoch)  # ceil: no extra check a few steps before the end
    first = int(args.first_check * steps)  # no check before this step (nothing to find yet)
    result = {"reached": False, "seconds": None, "accuracy": 0.0, "epochs": 0.0, "checks": 0}
    result["ready_seconds"] = time.perf_counter() - T0  # imports, data, model built

    def record(acc: float, step: int) -> bool:
        result["checks"] += 1
        result["accuracy"] = max(result["accuracy"], acc)
        result["epochs"] = step / steps
        if acc >= args.target:
            result.update(reached=True, seconds=time.perf_counter() - T0)
            return True
        return False

    if args.loop == "fit":
        check_fit(net, clf, cfg, x, y, x_test, y_test, steps, every, first, record)
    else:
        check_graph(net, clf, cfg, x, y, x_test, y_test, steps, every, first, record)
    result["total_seconds"] = time.perf_counter() - T0
    result["precision"] = cfg.precision
    print("RESULT " + json.dumps(result), flush=True)


def check_fit(net, clf, cfg, x, y, x_test, y_test, steps, every, first, record) -> None:
    """Keras `fit` with a callback that checks the test accuracy (`predict`)."""
    from inkdigits._backend import keras

    class Check(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            step = self.epoch * steps + batch + 1
            if step < first or ((batch + 1) % every and batch + 1 != steps):
                return
            pred = clf.predict(x_test, batch_size=2000, verbose=0).argmax(1)
            if record(float((pred == y_test).mean()), step):
                self.model.stop_training = True

    net.fit(x, y, batch_size=cfg.batch_size, epochs=cfg.epochs, verbose=0, callbacks=[Check()])


def check_graph(net, clf, cfg, x, y, x_test, y_test, steps, every, first, record) -> None:
    """The same training in a hand-written loop: chunks of steps run inside one tf.function.

    The same model, optimizer, schedule, loss and batch size as `fit`; the data
    stay in memory as tensors and are shuffled each epoch by index; between
    checks the Python side does nothing at all. The test accuracy is computed
    in a compiled function too.
    """
    import numpy as np
    import tensorflow as tf

    variables = net.trainable_variables
    opt, loss_fn, bs, n = net.optimizer, net.loss, cfg.batch_size, len(x)
    opt.build(variables)
    xs, ys = tf.constant(x), tf.constant(y)
    xt, yt = tf.constant(x_test), tf.constant(y_test.astype(np.int64))

    @tf.function
    def run(order, start, count):
        for i in tf.range(count):
            lo = (start + i) * bs
            idx = order[lo : tf.minimum(lo + bs, n)]
            xb, yb = tf.gather(xs, idx), tf.gather(ys, idx)
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, net(xb, training=True))
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    @tf.function
    def correct():
        total = tf.constant(0, tf.int64)
        for lo in range(0, len(x_test), 2000):
            p = clf(xt[lo : lo + 2000], training=False)
            total += tf.reduce_sum(tf.cast(tf.argmax(p, 1) == yt[lo : lo + 2000], tf.int64))
        return total

    gen = tf.random.Generator.from_seed(cfg.seed)
    marks = sorted({s for s in range(every, steps + 1, every)} | {steps})
    for epoch in range(cfg.epochs):
        order = tf.argsort(gen.uniform([n]))
        done = 0
        for mark in marks:
            if epoch * steps + mark < first:
                continue
            run(order, tf.constant(done), tf.constant(mark - done))
            done = mark
            acc = float(correct().numpy()) / len(x_test)
            if record(acc, epoch * steps + mark):
                return
        if done < steps:
            run(order, tf.constant(done), tf.constant(steps - done))


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--model", default="fast-cnn")
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--precision", default="auto")
    p.add_argument("--checks-per-epoch", type=int, default=4)
    p.add_argument(
        "--first-check", type=float, default=0.0, help="no check before this many epochs"
    )
    p.add_argument(
        "--loop", choices=["graph", "fit"], default="graph", help="hand-written loop or Keras fit"
    )
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
            f"(best {100 * r['accuracy']:.2f}%, {r['precision']}, {r['checks']} checks, "
            f"training began at {r['ready_seconds']:.1f} s)",
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
