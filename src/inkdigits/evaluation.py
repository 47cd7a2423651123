"""Evaluate models: metrics, calibration, test-time augmentation, ensembles, comparisons.

The numbers live here; the pictures in ``inkdigits.plots`` and the HTML page in
``inkdigits.report``. A model is anything :func:`load_predictor` accepts: a run
folder, a ``.keras`` file or an ``.onnx`` file with its card.

    >>> from inkdigits import evaluation
    >>> pred = evaluation.load_predictor("runs/inkdigits-cnn")       # doctest: +SKIP
    >>> probs = pred.predict(images_uint8)                           # doctest: +SKIP
    >>> evaluation.metrics(probs, labels)["accuracy"]                # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import (
    Classifier,
    apply_temperature,
    calibration_of,
    check_digit_model,
    is_int8_file,
    load_card,
    model_path,
)
from .errors import ModelError

NUM_CLASSES = 10
ECE_BINS = 15


# --------------------------------------------------------------------------- metrics


def confusion_matrix(labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """(10, 10) counts: rows are the true digit, columns the prediction."""
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(cm, (labels.astype(np.int64), preds.astype(np.int64)), 1)
    return cm


def per_class(cm: np.ndarray) -> list[dict[str, float]]:
    """Precision, recall, F1 and support per digit; 0.0 where a ratio is undefined."""
    out = []
    for d in range(NUM_CLASSES):
        tp = cm[d, d]
        predicted, support = cm[:, d].sum(), cm[d, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(
            {
                "digit": d,
                "precision": float(precision),
                "recall": float(recall),
                "f1": float(f1),
                "support": int(support),
            }
        )
    return out


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true digit (probabilities clipped at 1e-12)."""
    p = np.clip(probs[np.arange(len(labels)), labels.astype(np.int64)], 1e-12, 1.0)
    return float(-np.log(p).mean())


def reliability(
    probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> list[dict[str, float]]:
    """Per confidence bin: count, mean confidence, accuracy (equal-width bins on [0, 1])."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": n,
                "confidence": float(conf[m].mean()) if n else 0.0,
                "accuracy": float(correct[m].mean()) if n else 0.0,
            }
        )
    return rows


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over the bins."""
    n = len(labels)
    return float(
        sum(
            r["count"] / n * abs(r["accuracy"] - r["confidence"])
            for r in reliability(probs, labels, bins)
        )
    )


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the NLL of softmax(log p / T) (search over log T)."""
    logp = np.log(np.clip(probs, 1e-30, 1.0))

    def nll(t: float) -> float:
        z = logp / t
        z = z - z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        return float((lse - z[np.arange(len(labels)), labels.astype(np.int64)]).mean())

    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = min(grid, key=nll)
    lo, hi = best / 1.07, best * 1.07  # refine around the best grid point (golden section)
    g = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float((lo + hi) / 2)


def metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy, errors, per-class precision/recall/F1/support, log loss and ECE."""
    preds = probs.argmax(axis=1)
    cm = confusion_matrix(labels, preds)
    return {
        "images": int(len(labels)),
        "accuracy": float((preds == labels).mean()),
        "errors": int((preds != labels).sum()),
        "log_loss": log_loss(probs, labels),
        "ece": expected_calibration_error(probs, labels),
        "per_class": per_class(cm),
    }


# --------------------------------------------------------------------------- models


@dataclass
class Predictor:
    """A loaded model: (N, 28, 28) uint8 ink-high digits -> (N, 10) raw probabilities."""

    path: Path
    kind: str  # "onnx" or "keras"
    predict_fn: Callable[[np.ndarray], np.ndarray]
    card: dict[str, Any] = field(default_factory=dict)
    keras_model: Any = None  # the Keras model (for Grad-CAM), when there is one
    run_dir: Path | None = None  # the run folder, when the model came from one

    @property
    def name(self) -> str:
        fallback = self.run_dir.name if self.run_dir else self.path.stem
        return str(self.card.get("model", {}).get("name", fallback))

    @property
    def temperature(self) -> float:
        return float(calibration_of(self.card, self.path).get("temperature", 1.0))

    def predict(self, images: np.ndarray) -> np.ndarray:
        x = (np.asarray(images, dtype=np.float32) / 255.0)[..., None]  # (N, 28, 28, 1)
        return self.predict_fn(x)


def _check_input_shape(shape: Sequence[Any], path: Path) -> None:
    if len(shape) != 4 or list(shape[1:]) != [28, 28, 1]:
        raise ModelError(
            f"{path}: model input shape {tuple(shape)} does not take MNIST digits "
            "(expected (N, 28, 28, 1))"
        )


def load_predictor(model: str | os.PathLike[str] | None = None) -> Predictor:
    """A run folder (its best.keras), a .keras or an .onnx file; None: the shipped model."""
    path = model_path(model)
    run_dir = None
    if path.is_dir():
        run_dir = path
        if (path / "best.keras").is_file():
            path = path / "best.keras"
        elif (path / "model.onnx").is_file():
            path = path / "model.onnx"
        else:
            raise ModelError(f"{run_dir}: neither best.keras nor model.onnx in this folder")
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    if path.suffix == ".onnx":
        clf = Classifier(path)
        _check_input_shape(clf.session.get_inputs()[0].shape, path)
        check_digit_model(clf.classes, path)
        return Predictor(path, "onnx", clf.predict_raw, clf.card, run_dir=run_dir)
    if path.suffix == ".keras":
        from .training import load_keras

        km = load_keras(path)
        _check_input_shape(km.input_shape, path)
        check_digit_model(int(km.output_shape[-1]), path)
        card = {}
        if path.with_name("card.json").is_file():
            card = load_card(path.with_name("model.onnx"))

        def run_keras(x: np.ndarray) -> np.ndarray:
            return np.asarray(km.predict(x, batch_size=1000, verbose=0), dtype=np.float32)

        return Predictor(path, "keras", run_keras, card, keras_model=km, run_dir=run_dir)
    raise ModelError(f"{path}: not a model (expected a run folder, a .keras or an .onnx file)")


# --------------------------------------------------------------------------- TTA + ensembles


def tta_variants(images: np.ndarray, shifts: int = 1, angles: Sequence[float] = (-8.0, 8.0)):
    """The digits as they are, shifted by +-``shifts`` pixels in x and y, and rotated."""
    import cv2

    yield images
    if shifts:
        for dx, dy in ((shifts, 0), (-shifts, 0), (0, shifts), (0, -shifts)):
            yield np.roll(np.roll(images, dy, axis=1), dx, axis=2)
    for angle in angles:
        m = cv2.getRotationMatrix2D((13.5, 13.5), angle, 1.0)
        yield np.stack([cv2.warpAffine(img, m, (28, 28), flags=cv2.INTER_LINEAR) for img in images])


def predict_tta(pred: Predictor, images: np.ndarray, **kwargs) -> np.ndarray:
    """Probabilities averaged over :func:`tta_variants` of the digits."""
    out = [pred.predict(v) for v in tta_variants(images, **kwargs)]
    return np.mean(out, axis=0)


def predict_ensemble(
    preds: Sequence[Predictor], images: np.ndarray, tta: bool = False
) -> np.ndarray:
    """The mean of several models' probabilities (each with TTA if asked)."""
    fn = predict_tta if tta else (lambda p, x: p.predict(x))
    return np.mean([fn(p, images) for p in preds], axis=0)


# --------------------------------------------------------------------------- one evaluation


@dataclass
class Evaluation:
    """Everything one `inkdigits evaluate` computed (pictures are drawn from it)."""

    predictor: Predictor
    split: str
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,)
    probs: np.ndarray  # (N, 10) raw probabilities of the single model
    calibrated: np.ndarray  # the same with the card's (or a fitted) temperature
    temperature: float
    results: dict[str, Any]  # metrics.json

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(axis=1)


def evaluate(
    predictor: Predictor,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    split: str = "test",
    val: tuple[np.ndarray, np.ndarray] | None = None,
    tta: bool = False,
    ensemble: Sequence[Predictor] = (),
) -> Evaluation:
    """Evaluate one model (and optionally TTA and an ensemble) on ``images``.

    If the card has no fitted temperature and ``val`` is given, a temperature is
    fitted on the validation digits (never on the evaluated split).
    """
    t0 = time.perf_counter()
    probs = predictor.predict(images)
    seconds = time.perf_counter() - t0
    temperature, fitted_now = predictor.temperature, False
    if not calibration_of(predictor.card, predictor.path).get("fitted") and val is not None:
        temperature, fitted_now = fit_temperature(predictor.predict(val[0]), val[1]), True
    calibrated = apply_temperature(probs, temperature)
    results: dict[str, Any] = {
        "model": str(predictor.path),
        "model_name": predictor.name,
        "split": split,
        **metrics(probs, labels),
        "ece_calibrated": expected_calibration_error(calibrated, labels),
        "log_loss_calibrated": log_loss(calibrated, labels),
        "temperature": temperature,
        "temperature_fitted_on": "validation" if fitted_now or temperature != 1.0 else None,
        "eval_seconds": round(seconds, 4),
        "throughput_per_s": round(len(labels) / seconds, 1) if seconds > 0 else None,
    }
    if tta:
        p = predict_tta(predictor, images)
        results["tta"] = {k: v for k, v in metrics(p, labels).items() if k != "per_class"}
    if ensemble:
        members = [predictor, *ensemble]
        p = predict_ensemble(members, images)
        results["ensemble"] = {
            "members": [str(m.path) for m in members],
            **{k: v for k, v in metrics(p, labels).items() if k != "per_class"},
        }
        if tta:
            p = predict_ensemble(members, images, tta=True)
            results["ensemble_tta"] = {
                k: v for k, v in metrics(p, labels).items() if k != "per_class"
            }
    return Evaluation(predictor, split, images, labels, probs, calibrated, temperature, results)


def calibration_record(p_val: np.ndarray, y_val: np.ndarray) -> dict[str, Any]:
    """Temperature scaling fitted on validation probabilities: the card's ``calibration``."""
    t = fit_temperature(p_val, y_val)
    return {
        "temperature": round(t, 5),
        "fitted": True,
        "fitted_on": "validation split",
        "val_ece_before": round(expected_calibration_error(p_val, y_val), 5),
        "val_ece_after": round(expected_calibration_error(apply_temperature(p_val, t), y_val), 5),
    }


def write_calibration(predictor: Predictor, record: dict[str, Any]) -> Path:
    """Store a :func:`calibration_record` in the model's card.json (atomically)."""
    from .config import write_json_atomic

    card_path = predictor.path.with_name("card.json")
    if not card_path.is_file():
        raise ModelError(f"{predictor.path}: no card.json beside it to store the temperature in")
    card = json.loads(card_path.read_text())
    if is_int8_file(card, predictor.path):
        card["int8"]["calibration"] = record
    else:
        card["calibration"] = record
    write_json_atomic(card_path, card)
    predictor.card = card
    return card_path


# --------------------------------------------------------------------------- compare runs


COMPARE_FIELDS = ["run", "model", "parameters", "epochs", "train_seconds", "test_accuracy",
                  "test_errors", "ece"]  # fmt: skip


def compare_runs(
    run_dirs: Sequence[str | os.PathLike[str]], images: np.ndarray, labels: np.ndarray
) -> list[dict[str, Any]]:
    """One row per run folder: model, parameters, epochs, train time, test accuracy, ECE.

    Accuracy and ECE are recomputed from each run's model.onnx on ``images``
    (calibrated with the card's temperature), not copied from the card.
    """
    rows = []
    for d in map(Path, run_dirs):
        if not (d / "model.onnx").is_file():
            raise ModelError(f"{d}: not a finished run folder (no model.onnx)")
        clf = Classifier(d / "model.onnx")
        probs = clf.predict_proba(images)
        card = clf.card
        rows.append(
            {
                "run": str(d),
                "model": card.get("model", {}).get("name", "?"),
                "parameters": card.get("model", {}).get("parameters"),
                "epochs": card.get("training", {}).get("epochs_run"),
                "train_seconds": card.get("training", {}).get("train_seconds"),
                "test_accuracy": float((probs.argmax(1) == labels).mean()),
                "test_errors": int((probs.argmax(1) != labels).sum()),
                "ece": expected_calibration_error(probs, labels),
            }
        )
    return rows


def compare_markdown(rows: list[dict[str, Any]]) -> str:
    head = "| run | model | parameters | epochs | train time | test accuracy | errors | ECE |"
    lines = [head, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['model']} | {r['parameters']:,} | {r['epochs']} | "
            f"{r['train_seconds']:.0f} s | {100 * r['test_accuracy']:.2f}% | {r['test_errors']} | "
            f"{100 * r['ece']:.2f}% |"
        )
    return "\n".join(lines) + "\n"
