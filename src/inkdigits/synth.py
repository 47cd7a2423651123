"""A seeded generator of realistic test images built from MNIST *test* digits only.

Single digits and 2-10-digit numbers are rendered onto varied backgrounds:
white paper; beige or grey paper photos with a lighting gradient and a shadow;
textured, patterned check-like backgrounds with a printed line — in both
polarities, in black or blue ink, at digit heights from 15 to 300 px, with thin
and thick strokes, rotation up to +-10 degrees, blur, JPEG compression and
noise; digits spaced, close or touching; punctuation ('.', ',', '-', '=') mixed
into numbers but not into their labels.

    >>> from inkdigits import synth, data
    >>> mnist = data.load_mnist()                                     # doctest: +SKIP
    >>> sample = synth.render(np.random.default_rng(0), mnist.test_images,
    ...                       mnist.test_labels, n_digits=4)          # doctest: +SKIP
    >>> sample.label, sample.image.shape                              # doctest: +SKIP

Every choice made for a sample is recorded in ``Sample.spec`` so a failure can
be reproduced and described. :func:`form` writes numbers on forms instead (a
row of boxes, a ruled page with a margin line; bench/forms.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

BACKGROUNDS = ("white", "photo", "check")
SPACINGS = ("spaced", "close", "touching")
# the pens (``stroke``: digit_alpha's erosion or dilation in MNIST pixels);
# a pen only changes digits at least PEN_FROM px tall
PENS = {"thin": -1.0, "default": 0.0, "thicker": 1.0, "broad": 2.0}
PEN_FROM = 40
PEN_DRAWS = ("thin", "default", "default", "thicker", "broad")  # render draws one of these
PUNCTUATION = (".", ",", "-", "=")
# written after a check amount so that nothing can be added to it ("30.000.-")
CHECK_TAILS = ("-", "=", ".-", ",-", "long", "~")
CHECK_TAIL_P = (0.25, 0.15, 0.15, 0.05, 0.3, 0.1)


@dataclass
class Sample:
    """One generated image: RGB uint8, the digit string it shows, and how it was made."""

    image: np.ndarray
    label: str
    spec: dict[str, Any] = field(default_factory=dict)


def digit_alpha(digit28: np.ndarray, height: int, stroke: float) -> np.ndarray:
    """An MNIST digit as an ink-coverage map (float 0..1) ``height`` px tall."""
    ys, xs = np.nonzero(digit28 > 20)
    crop = digit28[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255
    h, w = crop.shape
    width = max(1, int(round(w * height / h)))
    alpha = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)
    alpha = np.clip(alpha, 0, 1)
    r = int(round(abs(stroke) * height / 28))
    if r >= 1:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        alpha = (cv2.dilate if stroke > 0 else cv2.erode)(alpha, k)
    alpha = np.clip((alpha - 0.15) / 0.55, 0, 1)  # crisp pen-like edge
    return alpha


def _dot_size(height: int) -> int:
    """Side of the square holding the dot of a '.' or ',' for ``height``-px digits."""
    return max(2 * _pen(height), int(height * 0.18))


def _pen(height: int) -> int:
    """Pen width of punctuation marks for ``height``-px digits."""
    return max(2, int(round(height * 0.09)))


def _punct_alpha(mark: str, height: int, rng: np.random.Generator) -> np.ndarray:
    """A punctuation mark drawn at the scale of ``height``-px digits.

    A '.' is a dot and a ',' a dot with a tail 0.3 of a digit long, both at
    the top of their array: :func:`_layout` sits that dot on the baseline, so
    the comma's tail hangs below the line as a written comma does. A '-' or
    '=' is one or two strokes 0.35-0.7 of a digit wide.
    """
    t = _pen(height)
    if mark in ".,":
        size = _dot_size(height)
        a = np.zeros((size + (int(height * 0.3) if mark == "," else 0), size + 2), np.float32)
        cx, cy = a.shape[1] // 2, size // 2 + 1
        cv2.circle(a, (cx, cy), max(1, t), 1.0, -1)
        if mark == ",":
            cv2.line(a, (cx, cy), (max(0, cx - t), a.shape[0] - 1 - t // 2), 1.0, t)
        return a
    w = int(height * rng.uniform(0.35, 0.7))
    a = np.zeros((int(height * 0.45), w), np.float32)
    ys = [a.shape[0] // 2] if mark == "-" else [a.shape[0] // 3, 2 * a.shape[0] // 3]
    for y in ys:
        cv2.line(a, (1, y), (w - 2, y + int(rng.integers(-1, 2))), 1.0, t)
    return a


def _check_mark(mark: str, height: int, rng: np.random.Generator) -> np.ndarray:
    """A mark written on checks around an amount, at the scale of ``height``-px digits.

    A "long" dash (0.7-2 digits wide, slightly sloped), a "~" (a wavy dash),
    a "tick" or a "$" (an S with a bar through it).
    """
    t = max(2, int(round(_pen(height) * rng.uniform(0.7, 1.3))))
    if mark in ("long", "~"):
        w = int(height * rng.uniform(0.7, 2.0))
        a = np.zeros((int(height * 0.45), w), np.float32)
        xs = np.arange(2, w - 2)
        amp = height * rng.uniform(0.04, 0.1) if mark == "~" else 0.0
        slope = rng.uniform(-0.15, 0.15) * height
        ys = a.shape[0] / 2 + slope * (xs / w - 0.5) + amp * np.sin(xs / w * rng.uniform(3, 9))
        pts = np.stack([xs, np.clip(ys, t, a.shape[0] - t)], 1).astype(np.int32)
        cv2.polylines(a, [pts], False, 1.0, t)
        return a
    if mark == "tick":  # a tick before the amount, as on many Chilean checks
        w = int(height * rng.uniform(0.5, 0.9))
        a = np.zeros((height, w + 2 * t), np.float32)
        pts = [(t, int(height * rng.uniform(0.4, 0.7))), (int(w * 0.3) + t, height - t), (w + t, t)]
        cv2.polylines(a, [np.array(pts, np.int32)], False, 1.0, t)
        return a
    # "$": two arcs of an S and a vertical bar through them
    h = int(height * rng.uniform(0.9, 1.2))
    w = int(h * rng.uniform(0.45, 0.6))
    a = np.zeros((h, w + 2 * t), np.float32)
    cx, r = a.shape[1] // 2, (w // 2, h // 4)
    cv2.ellipse(a, (cx, h // 4 + t), r, 0, 90, 360, 1.0, t)
    cv2.ellipse(a, (cx, 3 * h // 4 - t), r, 0, -90, 180, 1.0, t)
    cv2.line(a, (cx, 0), (cx, h - 1), 1.0, t)
    return a


def _check_style(
    rng: np.random.Generator,
    images: np.ndarray,
    labels: np.ndarray,
    idx: np.ndarray,
    height: int,
    stroke: float,
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]], dict[str, Any]]:
    """Digits written as a check amount: the digit indices and glyphs, and what was done.

    Line-model training renders only (``render(..., check=True)``); the
    benchmark never draws them. Amounts often end in 0s (half of them), the
    0s or last digits written smaller and sometimes raised (cents), the
    thousands marked with '.' or ',', a dash, '=' or '.-' after the amount so
    that nothing can be added, and a '$' or a tick before it.
    """
    n = len(idx)
    idx = idx.copy()
    spec: dict[str, Any] = {}
    if n > 1 and rng.random() < 0.5:
        zeros = np.flatnonzero(labels == 0)
        z = int(rng.integers(1, min(4, n - 1) + 1))
        idx[n - z :] = rng.choice(zeros, z)
        spec["zeros"] = z
    small = int(rng.integers(1, min(3, n - 1) + 1)) if n > 1 and rng.random() < 0.3 else 0
    ratio, raised = float(rng.uniform(0.45, 0.8)), bool(rng.random() < 0.5)
    glyphs: list[tuple[np.ndarray, str]] = []
    for k, i in enumerate(idx):
        h = int(round(height * ratio)) if k >= n - small else height
        g = digit_alpha(images[i], max(h, 8), stroke if h >= PEN_FROM else 0.0)
        if k >= n - small and raised:  # empty rows below lift it off the baseline
            lift = int(rng.uniform(0.3, 1.0) * (height - g.shape[0]))
            g = np.vstack([g, np.zeros((lift, g.shape[1]), np.float32)])
        glyphs.append((g, "digit"))
    if small:
        spec["small"] = (small, round(ratio, 2), raised)
    if n >= 4 and rng.random() < 0.5:
        sep = str(rng.choice([".", ","]))
        for pos in range(n - 3, 0, -3):
            glyphs.insert(pos, (_punct_alpha(sep, height, rng), sep))
        spec["thousands"] = sep
    if rng.random() < 0.5:
        tail = str(rng.choice(CHECK_TAILS, p=CHECK_TAIL_P))
        for mark in [tail[0], "-"] if tail in (".-", ",-") else [tail]:
            if mark in PUNCTUATION:
                glyphs.append((_punct_alpha(mark, height, rng), mark))
            else:
                glyphs.append((_check_mark(mark, height, rng), mark))
        spec["tail"] = tail
    if rng.random() < 0.2:  # "$" and ticks stand on the baseline like digits
        lead = str(rng.choice(["$", "tick"]))
        glyphs.insert(0, (_check_mark(lead, height, rng), "$"))
        spec["lead"] = lead
    return idx, glyphs, spec


def _layout(
    rng: np.random.Generator, glyphs: list[tuple[np.ndarray, str]], height: int, spacing: str
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Place glyphs on one line; returns the ink layer and the digits' boxes.

    Each glyph is an ink array and what it is: "digit", or the punctuation
    mark it shows. Digits (and a check's '$' or tick) stand on the baseline,
    '.' and ',' sit their dot on it, '-', '=' and other strokes are at
    mid-height.
    """
    gap = {"spaced": (0.25, 0.7), "close": (0.04, 0.15), "touching": (-0.12, -0.03)}[spacing]
    margin = int(height * 0.6) + 4
    total = sum(g.shape[1] for g, _ in glyphs) + int(height * max(gap[1], 0.1)) * len(glyphs)
    layer = np.zeros((height * 2 + 2 * margin, total + 2 * margin), np.float32)
    x = margin
    base = margin + height  # baseline: the bottom of the digits
    boxes = []
    for g, kind in glyphs:
        gh, gw = g.shape
        jitter = int(rng.normal(0, 0.03) * height)
        if kind in ("digit", "$"):
            y = base - gh + jitter
        elif kind in ".,":
            y = base - _dot_size(height) + jitter
        else:  # dash, equals: mid-height
            y = base - int(0.55 * height)
        y = int(np.clip(y, 0, layer.shape[0] - gh))
        region = layer[y : y + gh, x : x + gw]
        np.maximum(region, g[: region.shape[0], : region.shape[1]], out=region)
        if kind == "digit":
            boxes.append((x, y, gw, gh))
        x += gw + int(rng.uniform(*gap) * height)
        x = max(x, margin)
    right = max(b[0] + b[2] for b in boxes) if boxes else x
    layer = layer[:, : min(layer.shape[1], max(x, right) + margin)]
    return layer, boxes


def _background(
    rng: np.random.Generator, kind: str, shape: tuple[int, int], dark: bool
) -> np.ndarray:
    h, w = shape
    if kind == "white":
        base = np.full((h, w, 3), rng.uniform(238, 255), np.float32)
    elif kind == "photo":
        tint = np.array([rng.uniform(205, 240), rng.uniform(195, 230), rng.uniform(165, 215)])
        if rng.random() < 0.35:  # grey paper
            tint = np.full(3, rng.uniform(170, 215))
        base = np.broadcast_to(tint, (h, w, 3)).astype(np.float32).copy()
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * gx / w + np.sin(angle) * gy / h
        ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-6)
        light = 1.0 - rng.uniform(0.15, 0.45) * ramp  # lighting gradient
        # a soft-edged shadow across part of the page (a hand or a phone)
        x0 = rng.uniform(0.2, 0.8) * w
        slope = rng.uniform(-1.5, 1.5)
        edge = (gx - x0 - slope * (gy - h / 2)) / max(4.0, 0.05 * w)
        shadow = 1.0 - rng.uniform(0.2, 0.5) / (1.0 + np.exp(-edge))
        base *= (light * shadow)[..., None]
        base += rng.normal(0, 2.0, (h, w, 1))  # paper grain
    else:  # check: pale colour, a fine guilloche pattern
        tint = np.array([rng.uniform(200, 235), rng.uniform(220, 245), rng.uniform(215, 245)])
        base = np.broadcast_to(tint, (h, w, 3)).astype(np.float32).copy()
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
        period = rng.uniform(6, 14)
        wave = np.sin(gx / period + 3 * np.sin(gy / (period * 2.3))) * np.sin(gy / (period * 0.9))
        base -= (rng.uniform(10, 25) * (wave > 0.6))[..., None]
    if dark:  # a blackboard or a dark screen: light ink on a dark background
        base = 255.0 - base * rng.uniform(0.75, 0.9)
    return base


def render(
    rng: np.random.Generator,
    images: np.ndarray,
    labels: np.ndarray,
    n_digits: int = 1,
    **force: Any,
) -> Sample:
    """Render one sample of ``n_digits`` random digits from ``images``; ``force`` fixes choices.

    ``check=True`` writes the digits as a check amount (see :func:`_check_style`:
    for training the line model; the benchmark never uses it).
    """
    check = bool(force.pop("check", False))
    spec: dict[str, Any] = {
        "n_digits": n_digits,
        "height": int(np.exp(rng.uniform(np.log(15), np.log(300)))),
        "background": str(rng.choice(BACKGROUNDS, p=[0.35, 0.4, 0.25])),
        "dark": bool(rng.random() < 0.15),
        "ink": str(rng.choice(["black", "blue"])),
        "stroke": float(rng.choice([PENS[k] for k in PEN_DRAWS])),
        "rotation": float(rng.uniform(-10, 10)),
        "blur": float(rng.choice([0.0, rng.uniform(0.3, 1.2)])),
        "noise": float(rng.uniform(0, 8)),
        "jpeg": int(rng.choice([0, rng.integers(40, 95)])),
        "spacing": str(rng.choice(SPACINGS, p=[0.5, 0.3, 0.2])),
        "punctuation": bool(n_digits > 1 and rng.random() < 0.4),
    }
    spec.update(force)
    if spec["background"] == "check":
        spec["dark"] = False
    height = int(spec["height"])
    if n_digits > 1:  # keep whole numbers a sensible width
        height = min(height, int(2600 / n_digits))
        spec["height"] = height
    idx = rng.integers(0, len(images), n_digits)
    if check:
        idx, glyphs, spec["check"] = _check_style(rng, images, labels, idx, height, spec["stroke"])
    else:
        glyphs = [
            (digit_alpha(images[i], height, spec["stroke"] if height >= PEN_FROM else 0.0), "digit")
            for i in idx
        ]
    spec["mnist_test_indices"] = [int(i) for i in idx]
    if spec["punctuation"] and "thousands" not in spec.get("check", {}):
        mark = str(rng.choice(PUNCTUATION))
        mark = str(spec.get("mark", mark))  # a forced mark leaves the random stream as it was
        pos = int(rng.integers(1, n_digits + 1))  # inside or after the number
        pos += int("lead" in spec.get("check", {}))  # not between a '$' and the digits
        glyphs.insert(pos, (_punct_alpha(mark, height, rng), mark))
        spec["mark"] = mark
    label = "".join(str(int(labels[i])) for i in idx)
    layer, boxes = _layout(rng, glyphs, height, spec["spacing"] if n_digits > 1 else "spaced")
    # canvas with room around the text (a photo is bigger than its writing)
    lh, lw = layer.shape
    pad = int(rng.uniform(0.1, 1.0) * max(lh, 0.5 * lw)) + 8
    canvas = np.zeros((lh + 2 * pad, lw + 2 * pad), np.float32)
    canvas[pad : pad + lh, pad : pad + lw] = layer
    if spec["background"] == "check":  # a printed baseline under the amount
        y = pad + (lh // 2) + int(0.62 * height)
        t = max(1, height // 25)
        spec["printed_line"] = True
        line = np.zeros_like(canvas)
        cv2.line(line, (pad // 2, y), (canvas.shape[1] - pad // 2, y), 1.0, t)
    else:
        line = None
    m = cv2.getRotationMatrix2D((canvas.shape[1] / 2, canvas.shape[0] / 2), spec["rotation"], 1.0)
    canvas = cv2.warpAffine(canvas, m, (canvas.shape[1], canvas.shape[0]), flags=cv2.INTER_LINEAR)
    # where each digit's centre ended up (image columns), to check that the
    # reader found them all and to label what it cut out
    spec["digit_x"] = [float(m[0] @ (x + w / 2 + pad, y + h / 2 + pad, 1)) for x, y, w, h in boxes]
    alpha = np.clip(canvas, 0, 1)[..., None]
    bg = _background(rng, spec["background"], canvas.shape, spec["dark"])
    if line is not None:
        bg = bg * (1 - 0.55 * line[..., None]) + 40 * line[..., None]
    if spec["ink"] == "blue":
        ink = np.array([rng.uniform(20, 60), rng.uniform(30, 80), rng.uniform(120, 190)])
    else:
        ink = np.full(3, rng.uniform(10, 60))
    if spec["dark"]:
        ink = 255.0 - ink * 0.4
    img = bg * (1 - alpha) + ink * alpha
    if spec["blur"] > 0:
        img = cv2.GaussianBlur(img, (0, 0), spec["blur"] * max(1.0, height / 60))
    img = img + rng.normal(0, spec["noise"], img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if spec["jpeg"]:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(spec["jpeg"]))
        img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return Sample(img, label, spec)


def dataset(seed: int, count: int, images: np.ndarray, labels: np.ndarray, numbers: bool):
    """``count`` samples, reproducible from ``seed``: single digits, or 2-10-digit numbers."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(2, 11)) if numbers else 1
        yield render(rng, images, labels, n)


FORMS = ("boxes", "apart", "ruled")


def form(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, paper: str) -> Sample:
    """2-6 digits in blue pen, one to a cell 1.4 digits wide, written on a form.

    ``paper="boxes"``: a row of boxes drawn in dark grey, the digits inside
    (their sides would read as 1s if left); ``"apart"``: the same boxes with a
    gap of 0.3 of a box between them; ``"ruled"``: a notebook's page ruled in
    light blue every 0.9 digit heights, with a red margin line. Digits 30-120
    px tall, the default pen, no rotation or blur: what is tested is the paper.
    """
    if paper not in FORMS:
        raise ValueError(f"unknown paper {paper!r}; one of {', '.join(FORMS)}")
    n, h = int(rng.integers(2, 7)), int(rng.integers(30, 120))
    idx = rng.integers(0, len(images), n)
    cell = int(h * 1.4)
    step = cell + (int(0.3 * cell) if paper == "apart" else 0)  # from one box to the next
    page = np.full((cell * 3, step * n + 2 * cell, 3), (245, 243, 235), np.float32)
    if paper in ("boxes", "apart"):
        for j in range(n):
            x0 = cell + step * j
            cv2.rectangle(
                page, (x0, cell - h // 5), (x0 + cell, 2 * cell), (60, 60, 60), max(1, h // 30)
            )
    else:
        for y in range(int(h * 0.45), page.shape[0], int(h * 0.9)):
            page[y : y + 2] = (150, 180, 230)
        page[:, cell // 2 : cell // 2 + 2] = (230, 120, 120)
    alpha = np.zeros(page.shape[:2], np.float32)
    for j, i in enumerate(idx):
        g = digit_alpha(images[i], h, 0.0)
        y0, x0 = (
            cell + (cell - g.shape[0]) // 2 - h // 10,
            cell + step * j + (cell - g.shape[1]) // 2,
        )
        alpha[y0 : y0 + g.shape[0], x0 : x0 + g.shape[1]] = g
    img = page * (1 - alpha[..., None]) + np.array([30, 40, 120], np.float32) * alpha[..., None]
    img += rng.normal(0, 3, img.shape)
    label = "".join(str(int(labels[i])) for i in idx)
    spec = {"paper": paper, "n_digits": n, "height": h, "mnist_test_indices": [int(i) for i in idx]}
    return Sample(np.clip(img, 0, 255).astype(np.uint8), label, spec)
