"""Train a registered model from a TrainConfig: augmentation, schedule, checkpoints, resume.

A run directory holds:

    config.json       the TrainConfig (with the recipe filled in)
    metrics.csv       one row per epoch
    state.json        where the run is (last finished epoch, best epoch, ...)
    checkpoint.keras  the training model with optimizer state, written every epoch
    best.keras        the model with the best validation accuracy so far (ties: the later)
    model.onnx        exported from best.keras, checked against Keras
    card.json         the model card

Every file is written to a temporary name and renamed, so killing a run at any
moment loses at most the epoch in progress; ``resume_run`` picks it up.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import data as data_mod
from . import models  # noqa: E402
from ._backend import keras  # noqa: E402
from .config import (
    PREPROCESSING,
    TrainConfig,
    ensure_writable_folder,
    to_model_input,
    write_json_atomic,
)
from .errors import ConfigError, ModelError

CALIBRATION = 4096  # training images that unfold the batch norms of an --init-from ONNX file
METRIC_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]


# --------------------------------------------------------------------------- helpers


def cpu_has_bf16() -> bool:
    """True if the CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve(config: TrainConfig) -> TrainConfig:
    """A copy of ``config`` with every recipe default filled in and validated."""
    config.validate()
    spec = models.get_spec(config.model)
    r = spec.recipe
    d = config.to_dict()
    for key in (
        "epochs",
        "batch_size",
        "lr",
        "optimizer",
        "schedule",
        "augment",
        "weight_decay",
        "stroke",
        "elastic",
        "warp",
        "label_smoothing",
    ):
        if d[key] is None:
            d[key] = getattr(r, key)
    if d["patience"] is None:
        d["patience"] = r.patience
    if d["teachers"]:
        from .classifier import load_teachers

        load_teachers(d["teachers"], spec.classes)
    if d["precision"] == "auto":
        d["precision"] = "mixed_bfloat16" if cpu_has_bf16() else "float32"
    out = TrainConfig.from_dict(d)
    out.validate()
    return out


def prepare_output_dir(out: Path, resume: bool) -> None:
    """Create ``out`` and prove it is writable; refuse to overwrite an earlier run."""
    if resume:
        if not (out / "config.json").is_file():
            raise ConfigError(f"{out} holds no run to resume (no config.json)")
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(
            f"{out} already holds files; pass --resume to continue it or another --out"
        )
    ensure_writable_folder(out)


def one_hot(labels: np.ndarray, classes: int = models.NUM_CLASSES) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels.astype(np.int64)]


def _save_atomic(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def load_keras(path: str | os.PathLike[str]) -> keras.Model:
    """Load a .keras file in Keras safe mode (no arbitrary code, never pickle)."""
    p = Path(path)
    if p.suffix != ".keras":
        raise ModelError(f"{p}: expected a .keras file")
    if not p.is_file():
        raise ModelError(f"{p}: no such file")
    try:
        return keras.saving.load_model(p, safe_mode=True, compile=True)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(f"{p}: not a loadable Keras model ({type(exc).__name__}: {exc})") from exc


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model; recorded in cards and logs."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("inkdigits", "numpy", "tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- model + optimizer


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer with its learning-rate schedule (one-cycle: warm-up then cosine)."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        warmup = max(1, int(0.15 * total))  # 15% warm-up, as one-cycle
        lr: Any = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=cfg.lr / 25.0,
            decay_steps=max(1, total - warmup),
            alpha=1e-3,
            warmup_target=cfg.lr,
            warmup_steps=warmup,
        )
    else:
        lr = cfg.lr
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg.weight_decay or 0.0)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if cfg.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True)


def build_training_model(
    cfg: TrainConfig, steps_per_epoch: int, calibration: np.ndarray | None = None
) -> keras.Model:
    """The registered model, wrapped with augmentation when the recipe uses it, compiled.

    ``calibration`` (model input, a few thousand training images) is needed to
    start from an ONNX file (see :mod:`inkdigits.from_onnx`).
    """
    keras.mixed_precision.set_dtype_policy(cfg.precision)
    try:
        base = models.build(cfg.model)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    if cfg.init_from and Path(cfg.init_from).suffix == ".onnx":
        from .from_onnx import load_onnx_weights

        load_onnx_weights(cfg.init_from, base, calibration)
    elif cfg.init_from:
        source = inference_model(load_keras(cfg.init_from))
        try:
            base.set_weights(source.get_weights())
        except ValueError as exc:
            raise ConfigError(
                f"--init-from {cfg.init_from}: its weights do not fit {cfg.model} ({exc})"
            ) from None
    if cfg.augment and not cfg.teachers:  # a distilled run's augmentation is in its data
        net = keras.Sequential(
            [
                keras.Input(models.INPUT_SHAPE),
                models.RandomAffine.with_strength(
                    cfg.warp, seed=cfg.seed, stroke=cfg.stroke or 0.0, elastic=cfg.elastic or 0.0
                ),
                base,
            ],
            name="train_wrapper",
        )
    else:
        net = base
    net.compile(
        optimizer=make_optimizer(cfg, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"],
        jit_compile=False,  # XLA is slower than oneDNN for these nets on CPU (measured)
    )
    return net


def inference_model(net: keras.Model) -> keras.Model:
    """The plain classifier inside a training wrapper (or the model itself)."""
    if net.name == "train_wrapper":
        return net.layers[-1]
    return net


# --------------------------------------------------------------------------- callbacks


@dataclass
class RunState:
    """Progress of a run, saved as state.json after every epoch."""

    epochs_done: int = 0
    best_epoch: int = 0
    best_val_accuracy: float = -1.0
    train_seconds: float = 0.0
    stopped_early: bool = False
    finished: bool = False

    def save(self, out: Path) -> None:
        write_json_atomic(out / "state.json", self.__dict__)

    @classmethod
    def load(cls, out: Path) -> RunState:
        p = out / "state.json"
        return cls(**json.loads(p.read_text())) if p.is_file() else cls()


def _lr_now(net: keras.Model) -> float:
    return float(keras.ops.convert_to_numpy(net.optimizer.learning_rate))


class EpochEnd(keras.callbacks.Callback):
    """Per epoch: one summary line, metrics.csv, checkpoint, best model, early stopping."""

    def __init__(self, out: Path, cfg: TrainConfig, state: RunState, stream=sys.stdout):
        super().__init__()
        self.out, self.cfg, self.state, self.stream = out, cfg, state, stream
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - self._t0
        n = epoch + 1
        row = {
            "epoch": n,
            "loss": float(logs.get("loss", float("nan"))),
            "accuracy": float(logs.get("accuracy", float("nan"))),
            "val_loss": float(logs.get("val_loss", float("nan"))),
            "val_accuracy": float(logs.get("val_accuracy", float("nan"))),
            "lr": _lr_now(self.model),
            "seconds": round(seconds, 2),
        }
        # a tie goes to the later epoch: trained longer, at a lower learning rate
        # (fine-tuning from the shipped student: epochs 1 and 6 both scored
        # 99.68% on validation; the development photos preferred the 6th)
        improved = row["val_accuracy"] >= self.state.best_val_accuracy
        if improved:
            self.state.best_val_accuracy = row["val_accuracy"]
            self.state.best_epoch = n
            _save_atomic(inference_model(self.model), self.out / "best.keras")
        _append_metrics(self.out / "metrics.csv", row)
        _save_atomic(self.model, self.out / "checkpoint.keras")
        self.state.epochs_done = n
        self.state.train_seconds += seconds
        patience = self.cfg.patience
        if patience is not None and n - self.state.best_epoch >= patience:
            self.state.stopped_early = True
            self.model.stop_training = True
        self.state.save(self.out)
        print(
            f"epoch {n:3d}/{self.cfg.epochs}  loss {row['loss']:.4f}  "
            f"acc {100 * row['accuracy']:6.2f}%  val_loss {row['val_loss']:.4f}  "
            f"val_acc {100 * row['val_accuracy']:6.2f}%  lr {row['lr']:.2e}  "
            f"{seconds:6.1f} s{'  *best' if improved else ''}"
            f"{'  (early stop)' if self.state.stopped_early else ''}",
            file=self.stream,
            flush=True,
        )


def _append_metrics(path: Path, row: dict[str, Any]) -> None:
    """Rewrite metrics.csv with one more row (atomically)."""
    rows = read_metrics(path)
    rows = [r for r in rows if int(r["epoch"]) < row["epoch"]] + [row]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(buf.getvalue())
    tmp.replace(path)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.csv (empty if absent)."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [
            {k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()}
            for r in csv.DictReader(fh)
        ]


# --------------------------------------------------------------------------- the run


@dataclass
class RunResult:
    """What a finished run produced."""

    out: Path
    card: dict[str, Any]


def _log_header(cfg: TrainConfig, n_train: int, stream) -> None:
    v = library_versions()
    print(
        f"inkdigits train  model {cfg.model}  epochs {cfg.epochs}  batch {cfg.batch_size}  "
        f"lr {cfg.lr:g}  {cfg.optimizer}/{cfg.schedule}  augment {cfg.augment}  "
        f"precision {cfg.precision}  seed {cfg.seed}  train images {n_train}",
        file=stream,
        flush=True,
    )
    print("versions  " + "  ".join(f"{k} {val}" for k, val in v.items()), file=stream, flush=True)


def _set_threads(threads: int | None) -> None:
    if threads:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised in this process
            pass


def load_splits(cfg: TrainConfig) -> data_mod.Splits:
    """The data of a run: fixed validation split; optional training subset.

    A model that learns from segments (whole-cnn) gets cut-outs of touching
    digits generated from each split's own digits (see segment_data); extra
    digits join the training digits those lines are drawn from, so the model
    also learns what their parts look like.
    """
    mnist = data_mod.load_mnist(cfg.data_dir)
    s = mnist.split(cfg.val_size)
    extra = None
    if cfg.extra_digits:
        from .extra import load_crops

        xs, ys = [], []
        for path, repeat in cfg.extra_sources():
            xe, ye = load_crops(path)
            xs.append(np.tile(xe, (repeat, 1, 1)))
            ys.append(np.tile(ye, repeat))
        extra = (np.concatenate(xs), np.concatenate(ys))
    segments = models.get_spec(cfg.model).data == "segments"
    if segments:
        from .segment_data import segment_splits

        if extra is not None:  # the lines are drawn from the extra digits too
            s = replace(
                s,
                x_train=np.concatenate([s.x_train, extra[0]]),
                y_train=np.concatenate([s.y_train, extra[1]]),
            )
        # a training subset of N segments needs about N / 20 lines
        lines = -(-cfg.train_subset // 20) if cfg.train_subset else None
        s = segment_splits(s, cfg.seed, lines)
    x_train, y_train = s.x_train, s.y_train
    if cfg.train_subset:
        x_train, y_train = x_train[: cfg.train_subset], y_train[: cfg.train_subset]
    if extra is not None and not segments:
        x_train = np.concatenate([x_train, extra[0]])
        y_train = np.concatenate([y_train, extra[1]])
    return data_mod.Splits(x_train, y_train, s.x_val, s.y_val, s.x_test, s.y_test)


def train(
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | None = None,
    stream=sys.stdout,
) -> RunResult:
    """Train (or resume) a run in ``out`` and write every artefact; see the module doc."""
    out = Path(out)
    prepare_output_dir(out, resume)
    if resume:
        cfg = TrainConfig.load(out / "config.json")
        if config.data_dir:  # the data may have moved since the run started
            cfg.data_dir = config.data_dir
        state = RunState.load(out)
    else:
        cfg = resolve(config)
        state = RunState()
        cfg.save(out / "config.json")
    _set_threads(cfg.threads)
    keras.utils.set_random_seed(cfg.seed)

    splits = load_splits(cfg)
    classes = models.get_spec(cfg.model).classes
    x_train, y_train = to_model_input(splits.x_train), one_hot(splits.y_train, classes)
    x_val, y_val = to_model_input(splits.x_val), one_hot(splits.y_val, classes)
    steps = int(np.ceil(len(x_train) / cfg.batch_size))
    _log_header(cfg, len(x_train), stream)

    if resume and state.finished:
        print(f"{out}: the run is already complete; re-exporting", file=stream)
    elif resume and (out / "checkpoint.keras").is_file():
        net = load_keras(out / "checkpoint.keras")
        print(f"resuming {out} after epoch {state.epochs_done}", file=stream, flush=True)
    else:
        if resume:
            print(f"{out}: no checkpoint yet; starting from epoch 1", file=stream)
        state = RunState()
        net = build_training_model(cfg, steps, x_train[:CALIBRATION])

    if not state.finished and state.epochs_done < cfg.epochs and not state.stopped_early:
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 0
        if cfg.teachers:
            from . import distill

            d = distill.prepare(out, x_train, cfg, stream)
            fit_data: dict[str, Any] = {
                "x": distill.ViewBatches(
                    d["views"], d["targets"], cfg.batch_size, cfg.seed, state.epochs_done
                )
            }
        else:
            fit_data = {"x": x_train, "y": y_train, "batch_size": cfg.batch_size}
        net.fit(
            **fit_data,
            epochs=cfg.epochs,
            initial_epoch=state.epochs_done,
            validation_data=(x_val, y_val),
            shuffle=True,
            verbose=verbose,
            callbacks=[EpochEnd(out, cfg, state, stream), *(callbacks or [])],
        )
    state.finished = True
    state.save(out)
    card = finalize(out, cfg, state, splits, stream)
    return RunResult(out, card)


def finalize(
    out: Path, cfg: TrainConfig, state: RunState, splits: data_mod.Splits, stream=sys.stdout
) -> dict[str, Any]:
    """Evaluate best.keras on validation and test, export ONNX, write card.json."""
    from . import export
    from .evaluation import calibration_record, log_loss

    best = load_keras(out / "best.keras")
    x_val, x_test = to_model_input(splits.x_val), to_model_input(splits.x_test)
    t0 = time.perf_counter()
    p_val = best.predict(x_val, batch_size=1000, verbose=0)
    p_test = best.predict(x_test, batch_size=1000, verbose=0)
    eval_seconds = time.perf_counter() - t0
    metrics = {
        "val_accuracy": accuracy(p_val, splits.y_val),
        "val_loss": log_loss(p_val, splits.y_val),
        "test_accuracy": accuracy(p_test, splits.y_test),
        "test_loss": log_loss(p_test, splits.y_test),
        "test_errors": int((p_test.argmax(1) != splits.y_test).sum()),
        "eval_seconds": round(eval_seconds, 3),
    }
    onnx_info = export.export_onnx(best, out / "model.onnx", cfg.model, x_test[:256])
    card = make_card(cfg, state, best, metrics, onnx_info, splits)
    card["calibration"] = calibration_record(p_val, splits.y_val)
    write_json_atomic(out / "card.json", card)
    from .quantize import add_int8

    try:
        card["int8"] = add_int8(out, splits, stream=stream)
    except ModelError as exc:  # the float32 model stands on its own
        print(f"int8 model not written: {exc}", file=stream, flush=True)
    print(
        f"done  best epoch {state.best_epoch}  val_acc {100 * metrics['val_accuracy']:.2f}%  "
        f"test_acc {100 * metrics['test_accuracy']:.2f}% ({metrics['test_errors']} errors)  "
        f"train {state.train_seconds:.0f} s  onnx parity {onnx_info['parity_max_abs_diff']:.1e}"
        f"  -> {out}",
        file=stream,
        flush=True,
    )
    return card


def _data_name(cfg: TrainConfig, spec: models.ModelSpec) -> str:
    if spec.data == "segments":
        from .segment_data import LINES

        return (
            "cut-outs of touching MNIST digits (inkdigits.segment_data; lines per split: "
            + ", ".join(f"{k} {v}" for k, v in LINES.items())
            + "; validation and test lines from the validation and test digits"
            + ("; extra digits join the training digits" if cfg.extra_digits else "")
            + ")"
        )
    return "MNIST" + (" + extra digits" if cfg.extra_digits else "")


def _extra_record(cfg: TrainConfig) -> dict[str, Any] | list[dict[str, Any]] | None:
    """What extra digits went in: one record per file (a list when there are several)."""
    if not cfg.extra_digits:
        return None
    from .extra import file_sha256, load_crops

    records = [
        {
            "file": Path(path).name,
            "sha256": file_sha256(path),
            "images": int(len(load_crops(path)[0])),
            "repeat": repeat,
        }
        for path, repeat in cfg.extra_sources()
    ]
    return records[0] if isinstance(cfg.extra_digits, str) else records


def _teacher_record(cfg: TrainConfig) -> list[dict[str, str | None]] | None:
    if not cfg.teachers:
        return None
    from .distill import teacher_record

    return teacher_record(cfg.teachers)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(axis=1) == labels).mean())


def make_card(
    cfg: TrainConfig,
    state: RunState,
    model: keras.Model,
    metrics: dict[str, Any],
    onnx_info: dict[str, Any],
    splits: data_mod.Splits,
) -> dict[str, Any]:
    """The model card: everything needed to trust and to use model.onnx on its own."""
    spec = models.get_spec(cfg.model)
    data_dir = data_mod.find_data_dir(cfg.data_dir)
    checksums = {}
    if data_dir is not None:
        for key in data_mod.FILES:
            check = data_mod.check_file(data_dir, key)
            checksums[data_mod.FILES[key].name] = check.actual
    return {
        "format": "inkdigits-model-card/1",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": cfg.model,
            "description": spec.description,
            "architecture": model.name,
            "parameters": int(model.count_params()),
            "layers": [type(layer).__name__ for layer in model.layers],
        },
        "preprocessing": PREPROCESSING,
        "onnx": onnx_info,
        "metrics": metrics,
        "training": {
            "config": cfg.to_dict(),
            "epochs_run": state.epochs_done,
            "best_epoch": state.best_epoch,
            "stopped_early": state.stopped_early,
            "train_seconds": round(state.train_seconds, 1),
            "train_images": int(len(splits.x_train)),
            "teachers": _teacher_record(cfg),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        },
        "data": {
            "name": _data_name(cfg, spec),
            "extra_digits": _extra_record(cfg),
            "sha256": checksums,
            "validation": {
                "size": int(len(splits.x_val)),
                "seed": data_mod.VAL_SEED,
                "method": "stratified, per class"
                + ("; segments cut from those digits" if spec.data == "segments" else ""),
            },
        },
        "versions": library_versions(),
    }
