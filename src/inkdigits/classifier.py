"""The ONNX digit classifier: a model.onnx plus its card.json, run by ONNX Runtime.

This is the reading side's only model code; it never imports TensorFlow.

    >>> clf = Classifier()                     # the shipped model  # doctest: +SKIP
    >>> clf.predict_proba(images).shape        # (N, 10)            # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, ModelError

WEIGHTS_PACKAGE = "inkdigits.weights"
MODEL_FILE = "model.onnx"  # float32, exported from Keras and checked against it
INT8_FILE = "model-int8.onnx"  # its int8 quantisation (see inkdigits.quantize)
CARD_FILE = "card.json"
WHOLE_DIR = "whole"  # the shipped whole-digit model (whole-cnn), used to split touching digits
# digit models shipped besides the default, by name: ``Reader("checks")``, ``--model checks``
SHIPPED_MODELS = {"checks": "checks"}  # also fine-tuned on handwritten check amounts (ORAND)


def run_onnx(path: str | os.PathLike[str], x: np.ndarray, threads: int = 2) -> np.ndarray:
    """Probabilities from any ONNX model file for a float32 (N, 28, 28, 1) batch."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def shipped_model_path(precision: str = "auto", folder: str = "") -> Path:
    """The shipped default model inside the installed package.

    ``auto`` is the int8 model when one is shipped (about twice as fast, the
    same accuracy; see the card's ``int8`` section), else the float32 one.
    ``folder`` picks another shipped model: ``WHOLE_DIR`` is the whole-digit check.
    """
    weights = resources.files(WEIGHTS_PACKAGE)
    if folder:
        weights = weights.joinpath(folder)
    f32 = Path(str(weights.joinpath(MODEL_FILE)))
    int8 = Path(str(weights.joinpath(INT8_FILE)))
    if precision == "float32":
        return f32
    if precision == "int8":
        return int8
    if precision != "auto":
        raise ValueError(f"precision must be auto, int8 or float32, got {precision!r}")
    return int8 if int8.is_file() else f32


def model_path(model: str | os.PathLike[str] | None) -> Path:
    """Where a model given by the user is: None is the shipped default, a shipped
    model's name (SHIPPED_MODELS) is that model unless a file or folder of that
    name exists, anything else is a path."""
    if model is None:
        return shipped_model_path()
    path = Path(model)
    if str(model) in SHIPPED_MODELS and not path.exists():
        return shipped_model_path(folder=SHIPPED_MODELS[str(model)])
    return path


def is_int8_file(card: dict[str, Any], path: Path) -> bool:
    """Whether ``path`` is the int8 model that ``card`` describes."""
    return (card.get("int8") or {}).get("file") == Path(path).name


def calibration_of(card: dict[str, Any], path: Path) -> dict[str, Any]:
    """The calibration record for this file (the int8 model has its own temperature)."""
    if is_int8_file(card, path):
        return card["int8"].get("calibration", {})
    return card.get("calibration", {})


def check_digit_model(classes: int, path: str | os.PathLike[str]) -> None:
    """Raise ModelError unless the model answers with the ten digits."""
    if classes != 10:
        raise ModelError(
            f"{path}: the model has {classes} outputs, not the ten digits "
            "(whole-cnn is the splitter's whole-digit check, not a digit reader)"
        )


def load_teachers(paths: list[str], student_classes: int = 10) -> list[Classifier]:
    """The teachers of a distillation run: digit models (.onnx with their cards)."""
    if student_classes != 10:
        raise ConfigError(
            f"distillation trains a digit model (10 classes); this model has {student_classes}"
        )
    teachers = []
    for p in paths:
        if Path(p).suffix != ".onnx" or not Path(p).is_file():
            raise ConfigError(f"teacher {p}: expected an existing .onnx file")
        c = Classifier(p)
        check_digit_model(c.classes, p)
        teachers.append(c)
    return teachers


def load_card(model_path: Path) -> dict[str, Any]:
    """The card.json beside ``model_path``; a missing card is an error (it holds the constants)."""
    card_path = model_path.with_name(CARD_FILE)
    if not card_path.is_file():
        raise ModelError(f"{model_path}: no {CARD_FILE} beside it (the model card is required)")
    try:
        return json.loads(card_path.read_text())
    except ValueError as exc:
        raise ModelError(f"{card_path}: not valid JSON ({exc})") from exc


def onnx_session(blob: bytes, path: Path, threads: int):
    """An ONNX Runtime CPU session (no spin-waiting) for the model ``path`` holding ``blob``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # No spin-waiting between runs: the Reader runs three models in turn, and
    # each idle session's spinning threads would take the CPU from the next
    # (a touching number read with the line model: 120 ms spinning, 66 without).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: not a loadable ONNX model ({exc})") from exc


class Classifier:
    """Classifies MNIST-style 28x28 digits with an ONNX model described by its card."""

    def __init__(self, model: str | os.PathLike[str] | None = None, threads: int = 2):
        path = model_path(model)
        if not path.is_file():
            hint = (
                " (run `make train` to create the shipped model)"
                if model is None
                else f" (give an .onnx file, or a shipped model: {', '.join(SHIPPED_MODELS)})"
            )
            raise ModelError(f"{path}: model file not found{hint}")
        self.path = path
        self.card = load_card(path)
        blob = path.read_bytes()
        self.precision = "int8" if is_int8_file(self.card, path) else "float32"
        section = self.card["int8"] if self.precision == "int8" else self.card.get("onnx", {})
        expected = section.get("sha256")
        actual = hashlib.sha256(blob).hexdigest()
        if expected and expected != actual:
            raise ModelError(
                f"{path}: checksum {actual} does not match its card ({expected}); "
                "the file is corrupt or the card belongs to another model"
            )
        self.session = onnx_session(blob, path, threads)
        inp = self.session.get_inputs()[0]
        if list(inp.shape[1:]) != [28, 28, 1]:
            raise ModelError(f"{path}: input shape {inp.shape}, expected (N, 28, 28, 1)")
        self.input_name = inp.name
        self.classes = int(self.session.get_outputs()[0].shape[-1])
        pre = self.card.get("preprocessing", {})
        self.scale = float(pre.get("scale", 1.0 / 255.0))
        self.temperature = float(calibration_of(self.card, path).get("temperature", 1.0))

    def to_input(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 ink-high images -> the model's float32 (N, 28, 28, 1) input."""
        x = np.asarray(images)
        if x.ndim == 2:
            x = x[None]
        if x.ndim == 3:
            x = x[..., None]
        if x.shape[1:] != (28, 28, 1):
            raise ModelError(f"expected images of shape (N, 28, 28), got {np.shape(images)}")
        if x.dtype == np.uint8:
            return x.astype(np.float32) * np.float32(self.scale)
        return x.astype(np.float32)

    def predict_raw(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The model's own probabilities (N, 10; whole-cnn: 11), before temperature scaling."""
        x = self.to_input(images)
        out = [
            self.session.run(None, {self.input_name: x[i : i + batch_size]})[0]
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.classes), np.float32)

    def predict_proba(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Calibrated probabilities (N, 10) for uint8 (N, 28, 28) or float (N, 28, 28, 1) input."""
        return apply_temperature(self.predict_raw(images, batch_size), self.temperature)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probabilities as softmax(log(p) / T); T = 1 leaves them unchanged."""
    if temperature == 1.0:
        return probs
    logits = np.log(np.clip(probs, 1e-30, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
