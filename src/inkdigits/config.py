"""Typed configuration. Every field has a one-line doc; a run writes its config as config.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

# What the models are fed; recorded in every model card so reading never guesses.
PREPROCESSING: dict[str, Any] = {
    "input_name": "input",
    "input_shape": [28, 28, 1],  # (H, W, C) after the batch axis: NHWC
    "dtype": "float32",
    "scale": 1.0 / 255.0,  # pixel (0..255, ink high) * scale -> model input in [0, 1]
    "ink": "high",  # white digit on black background, as MNIST
    "digit_box": 20,  # the digit is resampled into a 20x20 box (MNIST)
    "centering": "center_of_mass",  # then pasted so its centre of mass is at (14, 14)
    "output": "probabilities",  # softmax over the digits 0-9
}


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) ink-high images -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (images.astype(np.float32) * np.float32(PREPROCESSING["scale"]))[..., None]


@dataclass
class TrainConfig:
    """How to train one model; written next to the run's outputs as config.json."""

    model: str = "inkdigits-cnn"
    """registered architecture name (see `inkdigits train --list-models`)"""
    epochs: int | None = None
    """passes over the training split; None takes the model's recipe"""
    batch_size: int | None = None
    """images per optimisation step; None takes the model's recipe"""
    lr: float | None = None
    """peak learning rate; None takes the model's recipe"""
    optimizer: str | None = None
    """adam, adamw, rmsprop or sgd; None takes the model's recipe"""
    schedule: str | None = None
    """learning-rate schedule: constant or onecycle (warm-up then cosine decay)"""
    augment: bool | None = None
    """random rotation/scale/shear/translation during training; None takes the recipe"""
    stroke: float | None = None
    """augmentation: random pen-width change, a fraction in [0, 1] of a 3x3
    dilation/erosion (0 = off); None takes the recipe"""
    elastic: float | None = None
    """augmentation: elastic distortion strength in [0, 2] (1 = Simard et al.'s
    alpha 34, sigma 4; 0 = off); None takes the recipe"""
    warp: float | None = None
    """augmentation: strength of the random affine warp in [0, 2] (1 = rotation
    ±10°, scale ±10%, shear ±0.15, translation ±10%); None takes the recipe"""
    label_smoothing: float | None = None
    """label smoothing for the cross-entropy (0 = off); None takes the recipe"""
    weight_decay: float | None = None
    """decoupled weight decay for adamw; None takes the recipe"""
    precision: str = "auto"
    """float32, mixed_bfloat16, or auto (bfloat16 if the CPU has AVX512-BF16/AMX)"""
    patience: int | None = None
    """early stopping: stop after this many epochs without a better validation accuracy"""
    seed: int = 0
    """seeds Python, NumPy and the backend so a run repeats"""
    train_subset: int | None = None
    """use only the first N training images (smoke tests, quick experiments)"""
    val_size: int = 5000
    """size of the fixed stratified validation split carved from the training set"""
    data_dir: str | None = None
    """MNIST folder; None looks up INKDIGITS_DATA_DIR, then the cache"""
    extra_digits: str | list[str] | None = None
    """.npz files of extra labelled 28x28 digits mixed into the training split
    (see `inkdigits crops` and `inkdigits render-digits`); None: MNIST only"""
    extra_repeat: int | list[int] = 1
    """how many times each extra digit appears per epoch: one number for every
    file, or one per file"""
    init_from: str | None = None
    """start from this .keras model's weights (same architecture), or from its
    float32 .onnx export (a shipped model.onnx): fine-tuning"""
    threads: int | None = None
    """CPU threads for the backend (None: all cores)"""
    teachers: list[str] | None = None
    """distillation: .onnx digit models whose averaged probabilities on augmented
    copies of the training images are the targets (see inkdigits.distill); None:
    train on the labels"""
    distill_views: int = 10
    """distillation: fixed augmented copies of each training image"""
    distill_temperature: float = 2.0
    """distillation: the teachers' probabilities are softened as softmax(log p / T)"""
    extra: dict[str, Any] = field(default_factory=dict)
    """free-form notes carried into the card"""

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field."""
        checks = [
            (self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (
                self.batch_size is None or self.batch_size >= 1,
                f"batch size must be >= 1, got {self.batch_size}",
            ),
            (self.lr is None or self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (
                self.stroke is None or 0.0 <= self.stroke <= 1.0,
                f"stroke must be in [0, 1], got {self.stroke}",
            ),
            (
                self.elastic is None or 0.0 <= self.elastic <= 2.0,
                f"elastic must be in [0, 2], got {self.elastic}",
            ),
            (
                self.warp is None or 0.0 <= self.warp <= 2.0,
                f"warp must be in [0, 2], got {self.warp}",
            ),
            (
                self.label_smoothing is None or 0.0 <= self.label_smoothing < 1.0,
                f"label smoothing must lie in [0, 1), got {self.label_smoothing}",
            ),
            (
                self.precision in ("auto", "float32", "mixed_bfloat16"),
                f"precision must be auto, float32 or mixed_bfloat16, got {self.precision!r}",
            ),
            (
                self.patience is None or self.patience >= 1,
                f"patience must be >= 1, got {self.patience}",
            ),
            (
                self.train_subset is None or self.train_subset >= 100,
                f"train subset must be >= 100 images, got {self.train_subset}",
            ),
            (
                all(r >= 1 for r in _as_list(self.extra_repeat)),
                f"extra repeat must be >= 1, got {self.extra_repeat}",
            ),
            (
                len(_as_list(self.extra_repeat)) in (1, len(_as_list(self.extra_digits))),
                f"give one extra repeat for every extra digits file, or one for all: "
                f"{len(_as_list(self.extra_digits))} files, repeats {self.extra_repeat}",
            ),
            (
                self.distill_views >= 1,
                f"distillation views must be >= 1, got {self.distill_views}",
            ),
            (
                self.distill_temperature > 0,
                f"distillation temperature must be > 0, got {self.distill_temperature}",
            ),
            (
                self.schedule in (None, "constant", "onecycle"),
                f"schedule must be constant or onecycle, got {self.schedule!r}",
            ),
            (
                self.optimizer in (None, "adam", "adamw", "rmsprop", "sgd"),
                f"optimizer must be adam, adamw, rmsprop or sgd, got {self.optimizer!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def extra_sources(self) -> list[tuple[str, int]]:
        """The extra digits files, each with how many times its digits appear per epoch."""
        files = _as_list(self.extra_digits)
        repeats = _as_list(self.extra_repeat)
        return list(zip(files, repeats * len(files) if len(repeats) == 1 else repeats, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown config fields {sorted(unknown)}")
        return cls(**d)

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the run config ({exc})") from exc


def _as_list(value: Any) -> list:
    """A config field that takes one value or a list of them, as a list (None: empty)."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file beside ``path``, then rename over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def ensure_writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written in it (else ConfigError)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConfigError(f"cannot write to output folder {folder} ({reason})") from None
