"""Knowledge distillation: train one network on what an ensemble of teachers says.

An ensemble of several full-length runs reads MNIST better than any one of
them (six runs: 99.78%, one: 99.69%), but costs six times as much to run. A
student network of the same size can learn much of that difference when it is
trained to match the ensemble's probabilities, on the same augmented images
the teachers saw, instead of the one-hot labels ("function matching", Hinton
et al. 2015; Beyer et al. 2022).

Running six teachers beside the student at every step would triple the
training time on two cores, so the teachers are run once, before training,
through ONNX Runtime, on ``views`` fixed augmented copies of every training
image (the recipe's own augmentation: pen width, affine warp and elastic
distortion). Each epoch the student sees every training image once, through
one of its views chosen at random. The targets are the teachers' averaged
probabilities, softened by ``temperature`` (softmax(log p / T)).

The views and targets are stored in the run folder (``distill.npz``) so that
``--resume`` continues with exactly the same data.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import keras
from .classifier import apply_temperature, load_teachers
from .config import TrainConfig

DISTILL_FILE = "distill.npz"


def make_views(x: np.ndarray, cfg: TrainConfig, views: int) -> np.ndarray:
    """(views, N, 28, 28) uint8: ``views`` augmented copies of float (N, 28, 28, 1) images."""
    from . import models

    layer = models.RandomAffine.with_strength(
        cfg.warp, seed=cfg.seed + 7919, stroke=cfg.stroke or 0.0, elastic=cfg.elastic or 0.0
    )
    out = np.empty((views, len(x), 28, 28), np.uint8)
    for v in range(views):
        for i in range(0, len(x), 1024):
            warped = keras.ops.convert_to_numpy(layer(x[i : i + 1024], training=True))
            out[v, i : i + 1024] = np.clip(np.rint(warped[..., 0] * 255.0), 0, 255)
    return out


def teacher_targets(views: np.ndarray, teachers: list[str], temperature: float) -> np.ndarray:
    """(views, N, 10) float16: the teachers' mean probabilities, softened by ``temperature``."""
    k, n = views.shape[:2]
    flat = views.reshape(k * n, 28, 28)
    mean = np.zeros((k * n, 10), np.float64)
    for teacher in load_teachers(teachers):
        for i in range(0, len(flat), 8192):
            mean[i : i + 8192] += teacher.predict_raw(flat[i : i + 8192])
    mean /= len(teachers)
    soft = apply_temperature(mean.astype(np.float32), temperature)
    return soft.reshape(k, n, 10).astype(np.float16)


def prepare(out: Path, x: np.ndarray, cfg: TrainConfig, stream=sys.stdout) -> dict[str, Any]:
    """The views and targets of a distillation run: from ``out`` if already made, else made."""
    path = out / DISTILL_FILE
    if path.is_file():
        with np.load(path) as f:
            return {"views": f["views"], "targets": f["targets"]}
    t0 = time.perf_counter()
    views = make_views(x, cfg, cfg.distill_views)
    t1 = time.perf_counter()
    targets = teacher_targets(views, cfg.teachers or [], cfg.distill_temperature)
    t2 = time.perf_counter()
    print(
        f"distillation data: {cfg.distill_views} views of {len(x)} images in {t1 - t0:.0f} s, "
        f"targets from {len(cfg.teachers or [])} teachers in {t2 - t1:.0f} s",
        file=stream,
        flush=True,
    )
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, views=views, targets=targets)
    os.replace(tmp, path)
    return {"views": views, "targets": targets}


class ViewBatches(keras.utils.PyDataset):
    """Batches of (one random view per image, its soft targets), reshuffled every epoch."""

    def __init__(
        self, views: np.ndarray, targets: np.ndarray, batch_size: int, seed: int, epoch: int = 0
    ):
        super().__init__()
        self.views, self.targets, self.batch_size, self.seed = views, targets, batch_size, seed
        self.k, self.n = views.shape[:2]
        self.epoch = epoch
        self._draw()

    def _draw(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.order = rng.permutation(self.n)
        self.choice = rng.integers(0, self.k, self.n)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        v = self.choice[idx]
        x = self.views[v, idx].astype(np.float32)[..., None] / np.float32(255.0)
        return x, self.targets[v, idx].astype(np.float32)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._draw()


def teacher_record(teachers: list[str]) -> list[dict[str, str | None]]:
    """For the card: each teacher's file and checksum (None if the file has gone since)."""
    return [
        {
            "file": str(p),
            "sha256": hashlib.sha256(Path(p).read_bytes()).hexdigest()
            if Path(p).is_file()
            else None,
        }
        for p in teachers
    ]
