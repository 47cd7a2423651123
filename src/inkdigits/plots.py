"""The evaluation pictures (matplotlib, Agg backend): each function writes one PNG.

Needs the ``train`` extra (matplotlib). Every figure is written to a temporary
name and renamed, so a crash never leaves a half-written PNG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110


def _save(fig, path: Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    tmp.replace(path)
    return path


def confusion_matrix_png(cm: np.ndarray, path: Path, title: str = "") -> Path:
    """Two annotated heat maps side by side: counts, and rows normalised to 100%."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0) * 100
    for ax, mat, label, fmt in (
        (axes[0], cm, "count", "d"),
        (axes[1], norm, "% of the true digit", ".1f"),
    ):
        shown = np.log1p(mat) if fmt == "d" else mat  # log scale keeps the few errors visible
        ax.imshow(shown, cmap="Blues")
        for i in range(10):
            for j in range(10):
                v = mat[i, j]
                if v == 0:
                    continue
                text = format(int(v) if fmt == "d" else v, fmt)
                dark = shown[i, j] > shown.max() * 0.55
                ax.text(j, i, text, ha="center", va="center", fontsize=7.5,
                        color="white" if dark else ("#b00020" if i != j else "black"))  # fmt: skip
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted digit")
        ax.set_ylabel("true digit")
        ax.set_title(f"confusion matrix ({label})")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def curves_png(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Training and validation loss and accuracy per epoch (from a run's metrics.csv)."""
    epochs = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    a.plot(epochs, [r["loss"] for r in rows], "o-", label="training", ms=3)
    a.plot(epochs, [r["val_loss"] for r in rows], "o-", label="validation", ms=3)
    a.set_yscale("log")
    a.set_xlabel("epoch")
    a.set_ylabel("loss (log scale)")
    a.set_title("loss")
    b.plot(epochs, [100 * r["accuracy"] for r in rows], "o-", label="training", ms=3)
    b.plot(epochs, [100 * r["val_accuracy"] for r in rows], "o-", label="validation", ms=3)
    best = max(r["val_accuracy"] for r in rows)
    b.set_ylim(max(90.0, 100 * min(r["val_accuracy"] for r in rows[len(rows) // 3 :]) - 0.5), 100)
    b.axhline(100 * best, color="grey", lw=0.8, ls="--")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy (%)")
    b.set_title(f"accuracy (best validation {100 * best:.2f}%)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def digit_grid_png(
    images: np.ndarray,
    captions: list[str],
    path: Path,
    title: str = "",
    wrong: np.ndarray | None = None,
    columns: int = 10,
) -> Path:
    """A grid of digits (dark ink on white) with a caption under each; wrong ones in red."""
    n = max(1, len(images))
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.15, rows * 1.35 + 0.4))
    axes = np.atleast_1d(axes).reshape(-1)
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
        bad = wrong is not None and bool(wrong[i])
        ax.set_title(captions[i], fontsize=7.5, color="#b00020" if bad else "#1b5e20")
    if not len(images):
        axes[0].text(0.5, 0.5, "none", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def reliability_png(
    before: list[dict[str, float]],
    after: list[dict[str, float]],
    ece_before: float,
    ece_after: float,
    temperature: float,
    path: Path,
) -> Path:
    """Reliability diagrams before and after temperature scaling, with bin counts."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, rows, name, ece in (
        (axes[0], before, "raw", ece_before),
        (axes[1], after, f"temperature {temperature:.2f}", ece_after),
    ):
        centers = [(r["low"] + r["high"]) / 2 for r in rows]
        width = rows[0]["high"] - rows[0]["low"]
        acc = [r["accuracy"] if r["count"] else np.nan for r in rows]
        ax.bar(centers, acc, width=width * 0.95, color="#4c72b0", edgecolor="white",
               label="accuracy in bin")  # fmt: skip
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        for c, r in zip(centers, rows, strict=True):
            if r["count"]:
                ax.text(c, 0.02, str(r["count"]), rotation=90, fontsize=6.5, color="white",
                        ha="center", va="bottom")  # fmt: skip
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}: ECE {100 * ece:.2f}%")
        ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def saliency_png(
    images: np.ndarray,
    heatmaps: np.ndarray,
    captions: list[str],
    wrong: np.ndarray,
    path: Path,
    method: str,
) -> Path:
    """Each digit next to its heat map overlay (pairs of columns)."""
    n = len(images)
    cols = 4  # digit+overlay pairs per row
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols * 2, figsize=(cols * 2 * 1.3, rows * 1.5 + 0.5))
    axes = np.atleast_2d(axes)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        a, b = axes[r, 2 * c], axes[r, 2 * c + 1]
        a.axis("off")
        b.axis("off")
        if k >= n:
            continue
        a.imshow(images[k], cmap="gray_r", vmin=0, vmax=255)
        a.set_title(captions[k], fontsize=7.5, color="#b00020" if wrong[k] else "#1b5e20")
        b.imshow(images[k], cmap="gray", vmin=0, vmax=255)
        b.imshow(heatmaps[k], cmap="jet", alpha=0.5, vmin=0, vmax=1)
        b.set_title("where it looked", fontsize=7)
    fig.suptitle(f"{method}: correct (green) and wrong (red) digits", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
