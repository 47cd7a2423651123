"""Draw what was read onto the image: a box per digit with the digit and its confidence."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .reader import DigitResult, NumberResult


def annotate(rgb: np.ndarray, result: DigitResult | NumberResult) -> np.ndarray:
    """A copy of ``rgb`` (H, W, 3 uint8) with boxes and labels; green sure, orange unknown."""
    out = rgb.copy()
    digits = (
        [result] if isinstance(result, DigitResult) else [d for row in result.digits for d in row]
    )
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 400))
    scale = max(0.4, max(h, w) / 900)
    for d in digits:
        if d.box is None:
            continue
        x, y, bw, bh = d.box
        colour = (40, 170, 60) if d.digit is not None else (255, 140, 0)
        cv2.rectangle(out, (x, y), (x + bw - 1, y + bh - 1), colour, thick)
        label = f"{d.text} {100 * d.confidence:.0f}%"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y - 4 if y - th - 4 > 0 else min(h - 2, y + bh + th + 4)
        cv2.rectangle(out, (x, ty - th - 3), (x + tw + 4, ty + base - 1), colour, -1)
        cv2.putText(out, label, (x + 2, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thick, cv2.LINE_AA)  # fmt: skip
    return out


def write_annotated(rgb: np.ndarray, result: DigitResult | NumberResult, path: Path) -> Path:
    """Write the annotated image as PNG (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    ok = cv2.imwrite(str(tmp), cv2.cvtColor(annotate(rgb, result), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"cannot write {path}")
    tmp.replace(path)
    return path
