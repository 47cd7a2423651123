"""The one way an image becomes model input: any picture of a digit -> MNIST-style 28x28.

Everything that reads images (the CLI, the Python API, the server, the
benchmarks and the tests) goes through this module; nothing re-implements a
step. The stages, in order:

1. :func:`load_image` — path, bytes, PIL image or array -> RGB uint8; EXIF
   orientation, first frame of animations and multi-page files, 16-bit,
   palette, CMYK and alpha handled; a pixel limit is enforced *before* decoding.
2. :func:`ink_map` — colour to "ink" in [0, 1] (high = ink) keeping coloured
   ink, polarity detection, illumination/shadow correction by dividing out a
   background estimated with a morphological closing, light denoising.
3. :func:`binarize` — Otsu on the ink map with an absolute floor.
4. :func:`to_mnist` — how MNIST was made: stroke-width normalisation, ink
   bounding box, pad to a square, anti-aliased resample into 20x20, strongest
   ink scaled to 255, pasted into 28x28 with the centre of mass at the centre.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InkdigitsError

MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (decompression bombs)
WORK_SIDE = 1600  # images are read at most this many pixels on their long side
MNIST_BOX = 20  # MNIST digits fill a 20x20 box ...
MNIST_SIZE = 28  # ... inside a 28x28 image
MNIST_CENTER = 14.0  # where MNIST puts the centre of mass (measured: 13.99, 14.01)
MNIST_STROKE_RATIO = 0.11  # stroke width / box side of MNIST digits (median, measured)
STROKE_THIN, STROKE_THIN_TO = 0.06, 0.09  # thinner strokes are thickened to 0.09 of the side
STROKE_THICK, STROKE_THICK_TO = 0.22, 0.17  # thicker strokes are thinned to 0.17
PENS = (0.09, 0.13)  # MNIST's thinner and thicker pens, as shares of the box side
PEN_SIDE = 80  # digits larger than this are redrawn at this size (4x the 20x20 box)
INK_FLOOR = 0.12  # ink weaker than this (relative to the paper) is never ink
MIN_CONTRAST = 0.2  # an image whose strongest ink is below this holds no digit
POLARITY_CONTRAST = 0.2  # pixels this much lighter/darker than the local page count as ink
FAINT_CONTRAST = 0.12  # ... or this much, when no pixel passes POLARITY_CONTRAST either way
HOLLOW_CORE = 4  # page pixels (at quarter resolution) lifted by a wider window: hollowed strokes
HYSTERESIS = 0.6  # ink down to this share of the threshold joins the strokes it touches
# a number whose digits fall apart into several lines is read again at this share of
# the threshold, but never within RETRY_NOISE times the paper's 90th percentile
RETRY_SHARE, RETRY_NOISE = 0.5, 3.0


class ImageError(InkdigitsError):
    """The input is not a readable image, or is refused (too large, empty, ...)."""


class ImageTooLarge(ImageError):
    """The image has more pixels than the configured limit (refused before decoding)."""


# --------------------------------------------------------------------------- loading


ImageLike = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray


def _open(src: Any) -> Image.Image:
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise ImageError("empty input (0 bytes)")
        fh: Any = io.BytesIO(bytes(src))
        name = "<bytes>"
    else:
        p = Path(src)
        if not p.is_file():
            raise ImageError(f"{p}: no such file")
        if p.stat().st_size == 0:
            raise ImageError(f"{p}: empty file (0 bytes)")
        fh, name = str(p), str(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fh)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (unrecognised format)") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(
            f"{name}: image is above the limit of Pillow's decompression-bomb check; "
            "refused before decoding"
        ) from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot read image ({exc})") from None


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    a = arr.astype(np.float64)
    if np.issubdtype(arr.dtype, np.floating):
        hi = 1.0 if a.max(initial=0) <= 1.0 else 255.0
    else:  # 16/32-bit integers: use the type's range when the data needs it
        hi = 255.0 if a.max(initial=0) <= 255 else (65535.0 if a.max() <= 65535 else a.max())
    return np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _flatten_alpha(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite onto white if the opaque content is dark, onto black if it is light."""
    if int(alpha.min()) == 255:  # fully opaque (a canvas export): nothing to composite
        return np.ascontiguousarray(rgb)
    a = alpha.astype(np.float32)[..., None] / 255.0
    opaque = alpha > 127
    if opaque.any() and not opaque.all():
        content = rgb[opaque].mean()
        bg = 0.0 if content > 127 else 255.0
    else:
        bg = 255.0
    return np.clip(rgb.astype(np.float32) * a + bg * (1 - a), 0, 255).astype(np.uint8)


def _array_to_rgb(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        g = _to_uint8(arr)
        return np.stack([g, g, g], axis=-1)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        a8 = _to_uint8(arr)
        if arr.shape[2] == 4:
            return _flatten_alpha(a8[..., :3], a8[..., 3])
        return a8
    if arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
        a8 = _to_uint8(arr)
        g = _flatten_alpha(np.repeat(a8[..., :1], 3, axis=2), a8[..., 1])
        return g
    raise ImageError(f"array of shape {arr.shape} is not an image (expected HxW, HxWx3 or HxWx4)")


try:  # libspng: the same pixels as libpng, about 1.8x faster (a 280x280 drawing 0.95 -> 0.51 ms)
    import pyspng as _spng
except ImportError:  # optional (no wheel for every platform): OpenCV decodes instead
    _spng = None
try:  # ISA-L's inflate, about 2.5x faster than zlib's (see _stored_png)
    from isal import isal_zlib as _isal
except ImportError:  # optional: libspng inflates with zlib instead
    _isal = None

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 6: 4}  # colour type -> samples per pixel (L, RGB, RGBA)
_STORED_BLOCK = 65535  # the most bytes a stored deflate block holds


def _stored_png(png: bytes) -> bytes | None:
    """The same PNG with its image data inflated by ISA-L and stored uncompressed, or None.

    Most of a photo's PNG decoding is zlib's inflate (5.0 of libspng's 5.3 ms
    on the 594 kB PNG of a noisy 640x480 photo); ISA-L inflates it in about
    2 ms. libspng takes no inflated rows, so they go back to it as stored
    deflate blocks (a copy, with a new Adler-32 and CRC): libspng still
    unfilters every row and checks both sums, and the pixels are its own.
    Only for 8-bit, non-interlaced L, RGB and RGBA whose chunks are all in
    the file; the inflated size is capped at what the header announces (a
    stream that inflates past it is no image of that size). None sends the
    PNG to libspng as it is, which decodes it or says what is wrong; image
    data that does not inflate (a damaged file) raises :class:`ImageError`,
    where libspng would ignore the damage and return wrong pixels.
    """
    if _isal is None or len(png) < 45 or png[:16] != _PNG_SIGNATURE + b"\0\0\0\rIHDR":
        return None
    w, h, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", png, 16)
    if depth != 8 or interlace or colour not in _PNG_CHANNELS:
        return None
    size = h * (1 + w * _PNG_CHANNELS[colour])  # each row: its filter byte, then its samples
    view, pos, idat = memoryview(png), 33, []
    while True:
        if pos + 12 > len(png):
            return None  # truncated before IEND
        n, kind = struct.unpack_from(">I4s", png, pos)
        if pos + 12 + n > len(png):
            return None
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            idat.append(view[pos + 8 : pos + 8 + n])
        pos += 12 + n
    inflater = _isal.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), size + 1)
    except _isal.error as exc:  # libspng would decode on past it, into wrong pixels
        raise ImageError(f"cannot decode image: corrupt PNG data ({exc})") from None
    if len(raw) != size or not inflater.eof:
        return None
    rows = memoryview(raw)
    body = [b"\x78\x01"]  # a zlib header: deflate, 32K window, no dictionary
    for i in range(0, size, _STORED_BLOCK):
        k = min(_STORED_BLOCK, size - i)
        body += [struct.pack("<BHH", i + k == size, k, k ^ 0xFFFF), rows[i : i + k]]
    body.append(struct.pack(">I", _isal.adler32(raw)))
    crc = _isal.crc32(b"IDAT")
    for part in body:
        crc = _isal.crc32(part, crc)
    length = struct.pack(">I", sum(len(part) for part in body))
    iend = b"\0\0\0\0IEND\xaeB`\x82"
    return b"".join([png[:33], length, b"IDAT", *body, struct.pack(">I", crc), iend])


def _decode_png_fast(src: Any, im: Image.Image) -> np.ndarray | None:
    """Plain 8-bit PNG bytes decoded by libspng or OpenCV (faster than Pillow, the same pixels).

    Only for what they all read identically: one frame, no EXIF orientation, no
    transparency key, L, RGB or RGBA; anything else (palette, 16-bit, APNG, a
    colour key, ...) goes through Pillow.
    """
    if not isinstance(src, (bytes, bytearray, memoryview)) or im.format != "PNG":
        return None
    if im.mode not in ("L", "RGB", "RGBA") or getattr(im, "n_frames", 1) > 1 or "exif" in im.info:
        return None
    if "transparency" in im.info:  # a colour key: Pillow makes it alpha (below)
        return None
    if _spng is not None:
        data = bytes(src)
        stored = _stored_png(data)  # raises for damaged image data
        try:
            arr = _spng.load(stored or data)
        except Exception:  # libspng refused it: let the others decode or explain
            arr = None
        if arr is not None and arr.dtype == np.uint8 and arr.ndim in (2, 3):
            return arr
    arr = cv2.imdecode(np.frombuffer(src, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint8:
        return None
    if arr.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB
        arr = cv2.cvtColor(arr, code)
    return arr


def load_image(src: ImageLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Any supported input -> RGB uint8 (H, W, 3), upright, alpha flattened.

    Raises :class:`ImageError` with a clear message for anything unreadable.
    """
    if isinstance(src, np.ndarray):
        if src.size == 0:
            raise ImageError("empty array")
        if src.shape[0] * src.shape[1] > max_pixels:
            raise ImageTooLarge(
                f"image has {src.shape[0] * src.shape[1]:,} pixels (limit {max_pixels:,})"
            )
        return _array_to_rgb(src)
    im = _open(src)
    w, h = im.size
    if w * h > max_pixels:
        raise ImageTooLarge(
            f"image is {w}x{h} = {w * h / 1e6:.1f} megapixels, above the limit of "
            f"{max_pixels / 1e6:g}; refused before decoding"
        )
    if w == 0 or h == 0:
        raise ImageError("image has no pixels")
    fast = _decode_png_fast(src, im)
    if fast is not None:
        return _array_to_rgb(fast)
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)  # animated GIF / multi-page TIFF: the first frame
        im.load()
        im = ImageOps.exif_transpose(im) or im
        mode = im.mode
        if mode == "P" or mode == "PA" or "transparency" in im.info:  # incl. a colour key
            im = im.convert("RGBA")
        elif mode == "CMYK" or mode == "YCbCr" or mode == "LAB" or mode == "HSV":
            im = im.convert("RGB")
        elif mode == "1":
            im = im.convert("L")
        arr = np.asarray(im)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"cannot decode image: truncated or corrupt ({exc})") from None
    return _array_to_rgb(arr)


# --------------------------------------------------------------------------- ink


@dataclass
class InkMap:
    """The ink of an image at working resolution, and how it maps back to the original."""

    ink: np.ndarray  # float32 (h, w) in [0, 1], 1 = strongest ink
    scale: float  # working pixels per original pixel (<= 1)
    inverted: bool  # True if the original was light ink on a dark background
    # uint8 (h, w), or None: how dark each pixel is in absolute terms, whatever
    # its page (0 = black; for light ink on a dark page, 255 minus how light):
    # strokes of one pen share a tone even where a shadow dims the page around them
    tone: np.ndarray | None = None
    # the page's window was widened: some ink was as wide as a fifth of the
    # image (a filled shape, or bold strokes cropped tight; see _Page.widened)
    widened: bool = False
    # the page was turned to make its printed rules level (see :func:`deskew`):
    # how, to map boxes back; None when it was not
    turn: Turn | None = None
    # otsu()'s level, once computed (not copied by dataclasses.replace: new ink)
    _otsu: float | None = field(default=None, init=False, repr=False, compare=False)

    def otsu(self) -> float:
        """:func:`otsu_level` of the ink, computed once: the frames' search and
        :func:`binarize` both need it."""
        if self._otsu is None:
            self._otsu = otsu_level(self.ink)
        return self._otsu

    def to_original(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box (x, y, w, h) in this map's pixels -> the box around it in the
        original image's (turned back first, if the page was turned)."""
        if self.turn is not None:
            box = self.turn.back_box(box)
        return to_original(box, self.scale)


@dataclass(frozen=True)
class Turn:
    """How :func:`deskew` turned a page: by ``angle`` degrees (counter-clockwise)."""

    angle: float
    back: np.ndarray  # 2x3 affine: turned pixels -> the unturned page's
    shape: tuple[int, int]  # the unturned page's (h, w)

    def back_box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """The box in the unturned page around ``box``'s four corners turned back."""
        x, y, w, h = box
        corners = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]], float)
        pts = corners @ self.back.T
        hh, ww = self.shape
        x0, y0 = (max(0, int(np.floor(v))) for v in pts.min(axis=0))
        x1 = min(ww, int(np.ceil(pts[:, 0].max())))
        y1 = min(hh, int(np.ceil(pts[:, 1].max())))
        return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


@dataclass
class Components:
    """8-connected components of a mask: ``stats`` rows as OpenCV's (x, y, w, h, area).

    Row ``i`` (1..n-1) is component ``i``, in full-image coordinates, numbered as
    ``cv2.connectedComponentsWithStats`` numbers them; row 0 (the background)
    is not meaningful.
    """

    n: int  # components + 1 (the background), as OpenCV counts
    stats: np.ndarray  # int32 (n, 5)
    labels: np.ndarray  # int32 labels of the box around all the ink only ...
    origin: tuple[int, int]  # ... whose top-left corner is here (x, y)

    def mask_of(self, i: int) -> np.ndarray:
        """Component ``i``'s pixels, bool, over its own box ``stats[i, :4]``."""
        x, y, w, h = (int(v) for v in self.stats[i, :4])
        ox, oy = self.origin
        return self.labels[y - oy : y - oy + h, x - ox : x - ox + w] == i

    def pixels(self, keep: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The pixels of every component ``i`` with ``keep[i]`` (``keep[0]``, the
        background, is ignored), bool, over the whole image of ``shape``."""
        keep = keep.copy()
        keep[0] = False
        (ox, oy), (h, w) = self.origin, self.labels.shape
        out = np.zeros(shape, bool)
        out[oy : oy + h, ox : ox + w] = keep[self.labels]
        return out


def connected_components(mask: np.ndarray) -> Components:
    """8-connected components of a 0/1 uint8 mask, the same as OpenCV's, several times faster.

    Labelling runs on the box around all the ink only (the statistics pass of
    OpenCV costs per pixel of the whole image: 1.0 ms for one digit in a
    640x480 photo, 0.17 ms on its box), with Grana's block-based algorithm
    asked for by name (OpenCV's default was 3x slower on a 280x280 drawing).
    """
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0:
        return Components(1, np.zeros((1, 5), np.int32), np.zeros((0, 0), np.int32), (0, 0))
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask[y : y + h, x : x + w], 8, cv2.CV_32S, cv2.CCL_GRANA
    )
    stats[:, 0] += x
    stats[:, 1] += y
    return Components(n, stats, labels, (x, y))


def ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) around the nonzero pixels of a 2-D bool or uint8 mask ((0, 0, 0, 0) if none).

    What ``np.nonzero`` and min/max give, several times faster.
    """
    if mask.dtype == bool:
        mask = mask.view(np.uint8)
    return cv2.boundingRect(mask)


def _odd(n: float) -> int:
    n = max(3, int(n))
    return n if n % 2 else n + 1


def _page_window(v: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``v`` at quarter resolution (as it is when under 64 px), the factor it was
    shrunk by, and the side of the window a page's level is taken over there:
    a fifth of the image, wider than any stroke of a digit that fits it."""
    h, w = v.shape
    f = 4 if min(h, w) >= 64 else 1
    small = (
        cv2.resize(v, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        if f > 1
        else v
    )
    return small, f, _odd(min(small.shape) / 5)


@dataclass
class _Page:
    """One polarity's page at quarter resolution (see :func:`_page_window`): the
    image with its ink dark (light ink inverted), its level without the strokes
    narrower than the window ``k``, and the factor ``f`` it was shrunk by."""

    page: np.ndarray
    level: np.ndarray
    k: int
    f: int
    dark_ink: bool
    shape: tuple[int, int]

    @classmethod
    def of(cls, v: np.ndarray, dark_ink: bool) -> _Page:
        small, f, k = _page_window(v)
        page = small if dark_ink else cv2.bitwise_not(small)  # light ink: the dual, inverted
        return cls(page, _page_level(page, k), k, f, dark_ink, v.shape[:2])

    def widened(self) -> _Page | None:
        """The page under strokes as wide as the window, or None when there are none.

        Strokes at least as wide as the window stay in the closing as dark
        "paper" and come out hollow, their outlines alone read as ink: a bold
        digit cropped tight, where a fifth of the image is no wider than a
        stroke (a 1 read as 0). A window twice as wide takes them out; the
        page's lighting (gradients, shadows wider than the window) stays as it
        was. Widened while that at least doubles the level of part of the page
        (more than HOLLOW_CORE pixels and a thousandth of it). For the ink the
        page was found to hold only: a band of lit paper between dark ones is
        such a "stroke" of light ink.
        """
        level, k = self.level, self.k
        while k < max(self.page.shape):
            wider = _page_level(self.page, _odd(2 * k))
            if np.count_nonzero(level < wider // 2) <= max(HOLLOW_CORE, level.size // 1000):
                break
            level, k = wider, _odd(2 * k)
        return None if k == self.k else replace(self, level=level, k=k)

    def background(self) -> np.ndarray:
        """Paper brightness without the strokes, at the image's size (uint8).

        8-bit resizes, morphology and blur are several times cheaper than
        float ones, and the ink map is quantised to 8 bits anyway.
        """
        h, w = self.shape
        bg = self.level if self.dark_ink else cv2.bitwise_not(self.level)
        lo, hi = float(bg.min()), float(bg.max())
        if lo == hi:  # a flat page (a drawing pad): blurring and resizing keep the constant
            return np.full((h, w), lo, bg.dtype)
        # only a light blur: a strong one would smear the edge of a shadow into "ink"
        bg = cv2.GaussianBlur(bg, (0, 0), 1.0)
        if self.f > 1:
            bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
        return bg


def _page_level(page: np.ndarray, k: int) -> np.ndarray:
    """``page`` (dark ink) without its dark strokes narrower than ``k``: a closing
    by a ``k``-square."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    # The page continued past the image's edge (replicated once, not per
    # pass): OpenCV's default border lets the two passes of a closing fill a
    # dark corner, and a lighting gradient falling toward the edge became a
    # band of "ink" along it.
    p = k // 2 + 1
    padded = cv2.copyMakeBorder(page, p, p, p, p, cv2.BORDER_REPLICATE)
    return cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[p:-p, p:-p]


def _median_page(v: np.ndarray) -> np.ndarray:
    """The page's local level whichever its ink: a median over a fifth of the image
    (at quarter resolution), uint8 like ``v``."""
    h, w = v.shape
    small, f, k = _page_window(v)
    med = cv2.medianBlur(small, min(k, 255))
    return cv2.resize(med, (w, h), interpolation=cv2.INTER_LINEAR) if f > 1 else med


_U8_LEVELS = np.arange(256, dtype=np.float32) * np.float32(1 / 255)  # as ink_map scales


def _median_u8(a: np.ndarray) -> float:
    """``np.median`` of uint8 levels scaled as in ink_map, from a histogram: same bits, faster."""
    cum = np.cumsum(np.bincount(a.ravel(), minlength=256))
    n = int(cum[-1])
    lo = int(np.searchsorted(cum, (n - 1) // 2, side="right"))  # sorted elements (n-1)//2 ...
    hi = int(np.searchsorted(cum, n // 2, side="right"))  # ... and n//2 (the same if n is odd)
    return float(np.mean(_U8_LEVELS[[lo, hi]]))


def _clearly_more(x: int, y: int) -> bool:
    """Polarity counts: ``x`` pixels are clearly more than ``y`` (and so more than 30)."""
    return x > 1.5 * max(y, 20)


def ink_map(rgb: np.ndarray, work_side: int = WORK_SIDE) -> InkMap:
    """RGB uint8 -> ink in [0, 1] (high = ink), polarity and shadows normalised."""
    h, w = rgb.shape[:2]
    scale = min(1.0, work_side / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    r, g, b = cv2.split(np.ascontiguousarray(rgb))
    # coloured ink (blue, red) is dark in its weakest channel
    dark, light = cv2.min(cv2.min(r, g), b), cv2.max(cv2.max(r, g), b)
    med_light = _median_u8(light[::3, ::3])  # the page's level (a subsample suffices)
    med_dark = _median_u8(dark[::3, ::3])
    # Both readings, each against its own local background (so shadows and
    # lighting cancel): dark ink on light paper, and light ink on a dark board.
    # Polarity: count the pixels clearly lighter than their local page and those
    # clearly darker: strokes are many such pixels of one kind; shadow edges give
    # a few of both kinds, and the gaps inside a bright digit only a few dark ones.
    # A dark page (a board; or grey paper in a dim photo) holds light ink unless
    # clearly more pixels are darker than it; a light one holds dark ink unless
    # clearly more are lighter. Each background is computed only when the
    # decision needs it. On a dim page (median below 0.45) darkness is counted
    # relative to the page's level, as the ink itself is (ink takes a share of
    # the light), so a dim photo of grey paper counts its strokes as a white
    # page does; elsewhere contrasts are absolute (relative ones would count the
    # shading of a mid-grey board, or the paper between the marks of a printed
    # pattern, as strokes).
    # All of it on 8-bit levels (0-255): OpenCV's saturating subtraction, and
    # ratios divided in float and rounded down (_ratio).
    # Pixels count as ink when they are clearly off their local page and the
    # page's median (so blur near strokes is no ink): by POLARITY_CONTRAST, and
    # by FAINT_CONTRAST when nothing passes that (pale ink on a grey board).
    # "x - y > c" on levels x/255, y/255 is "x8 - y8 > c8" (0.2 * 255 = 51).
    pages: dict[bool, _Page] = {}
    backgrounds: dict[bool, np.ndarray] = {}
    inks: dict[bool, np.ndarray] = {}
    denoise = min(dark.shape) >= 64  # salt noise of photos and scans; small inputs keep all

    def page_of(dark_ink: bool) -> _Page:  # each computed at most once
        if dark_ink not in pages:
            pages[dark_ink] = _Page.of(dark if dark_ink else light, dark_ink)
        return pages[dark_ink]

    def background(dark_ink: bool) -> np.ndarray:
        if dark_ink not in backgrounds:
            backgrounds[dark_ink] = page_of(dark_ink).background()
        return backgrounds[dark_ink]

    def ink_of(dark_ink: bool) -> np.ndarray:  # 255 * the ink map of that polarity, unfiltered
        if dark_ink not in inks:
            inks[dark_ink] = ink_against(dark_ink, background(dark_ink))
        return inks[dark_ink]

    def ink_against(dark_ink: bool, bg: np.ndarray) -> np.ndarray:
        if dark_ink:  # how much darker, relative to the page's level (0 on a black page)
            return _ratio(cv2.subtract(bg, dark), bg)
        # how much lighter, relative to the room left above the page
        return _ratio(cv2.subtract(light, bg), 255 - bg)

    def count(mask: np.ndarray) -> int:  # pixels of strokes, not of grain: median-filtered
        m = mask.view(np.uint8)
        return int(np.count_nonzero(cv2.medianBlur(m, 3) if denoise else m))

    def below(level: float) -> int:  # x8 < below(level) exactly when x8 / 255 < level
        return int(np.clip(np.ceil(level * 255), 0, 255))

    def above(level: float) -> int:  # x8 > above(level) exactly when x8 / 255 > level
        return int(np.clip(np.floor(level * 255), 0, 255))

    def rises(c: float = POLARITY_CONTRAST) -> int:  # clearly lighter than page and median
        off = cv2.subtract(light, background(False)) > int(c * 255)
        return count(off & (light > above(med_light + c)))

    def under_median(c: float) -> np.ndarray:  # darker than the median page by c, relative
        return dark < below(med_dark - c * max(med_dark, 0.15))

    def falls(relative: bool, c: float = POLARITY_CONTRAST) -> int:  # clearly darker
        c8 = int(c * 255)
        if relative:
            off = ink_of(True) >= c8  # rounded down: "ratio > c" to within a level
            page = under_median(c)
        else:
            off = cv2.subtract(background(True), dark) > c8
            page = dark < below(med_dark - c)
        return count(off & page)

    def median_counts(c: float, need_fall: bool = True) -> tuple[int, int]:
        # Dark strokes on lit paper pull the opening down around them, so near
        # a shadow's edge the paper passes for light ink; and light strokes on
        # a dark page lift the closing around them, so the page beside them
        # passes for dark ink. Against the median page (whichever the ink, the
        # page is most of a window) that paper neither rises nor falls, while
        # ink still does. Saturated blue ink on dim grey paper is lighter than
        # it in its strongest channel: light ink must also be lighter in
        # luminance. (falls, rises); with ``need_fall``, rises are counted only
        # when the falls pass 30 (0 otherwise).
        c8 = int(c * 255)
        page = _median_page(dark)
        off = _ratio(cv2.subtract(page, dark), page) >= c8
        fall = count(off & under_median(c))
        if need_fall and fall <= 30:  # no dark ink at all: the rises need not be counted
            return fall, 0
        lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        rise = count(
            (cv2.subtract(light, _median_page(light)) > c8)
            & (light > above(med_light + c))
            & (lum > _median_page(lum))
        )
        return fall, rise

    def median_says_dark(c: float) -> bool:
        return _clearly_more(*median_counts(c))

    # _clearly_more(x, y) needs x > 30: on a dark page the rises are counted
    # only when the falls pass that; on a light page both are counted, as
    # "no ink either way" sends the test to the fainter contrast
    if med_light < 0.45:
        fall = falls(relative=True)
        inverted = not (fall > 30 and _clearly_more(fall, rises()))
        if inverted and median_says_dark(POLARITY_CONTRAST):
            inverted = False
    else:  # on a near-white page nothing is lighter than the median by the contrast
        c = POLARITY_CONTRAST
        rise = rises() if med_light < 1.0 - c + 1e-3 else 0
        fall = falls(relative=False)
        if rise <= 30 and fall <= 30 and med_light < 1.0 - FAINT_CONTRAST:
            # no ink either way at that contrast: look again for fainter strokes
            # (yellowish ink on a grey-blue board rises 0.15-0.25 above it)
            c = FAINT_CONTRAST
            rise, fall = rises(c), falls(False, c)
        inverted = _clearly_more(rise, fall)
        if inverted and median_says_dark(c):
            inverted = False
        elif not inverted and rise > 30 and fall > 30 and not _clearly_more(fall, rise):
            # neither clearly more: light ink's halo on the closing (a shadow
            # beside small light digits) is taken as the median page sees it
            m_fall, m_rise = median_counts(c, need_fall=False)
            inverted = _clearly_more(m_rise, m_fall)
    # Ink relative to the local background, so shadows and lighting cancel out;
    # against a wider window if the strokes are as wide as the page's window
    wide = page_of(not inverted).widened()
    ink8 = ink_of(not inverted) if wide is None else ink_against(not inverted, wide.background())
    if denoise:
        ink8 = cv2.medianBlur(ink8, 3)
    tone = cv2.bitwise_not(light) if inverted else dark
    ink = ink8.astype(np.float32) * np.float32(1 / 255)
    return InkMap(ink, scale, inverted, tone, widened=wide is not None)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """255 * min(num / max(den, 0.15 * 255), 1), rounded down (uint8 in, uint8 out).

    The division in float32, so the ink's levels are those of the float ink
    map truncated to 8 bits (rounding instead lifted faint printed patterns
    over the ink floor).
    """
    r = cv2.divide(num.astype(np.float32), np.maximum(den, np.float32(38.25)), scale=255.0)
    return np.minimum(r, 255.0).astype(np.uint8)


def binarize(
    ink: np.ndarray, faint_strokes: bool = False, thr: float | None = None
) -> tuple[np.ndarray, float]:
    """Ink mask by Otsu on the ink map, never below INK_FLOOR; returns (mask, threshold).

    Printed rules (long, thin horizontal lines under amounts and on forms) are
    removed from the mask. ``faint_strokes`` also keeps weaker ink joined to
    the strokes (see :func:`_hysteresis`): right for one digit, wrong for a
    number, whose digits faint ligatures and smears would join (on the ORAND
    check amounts it cost 8 points of exact matches). ``thr``: the ink's
    :func:`otsu_level`, when already known (``InkMap.otsu``).
    """
    if float(ink.max(initial=0.0)) < MIN_CONTRAST:
        return np.zeros(ink.shape, bool), 1.0
    thr = otsu_level(ink) if thr is None else thr
    mask = _hysteresis(ink, thr) if faint_strokes else ink > thr
    return remove_rules(mask), thr


def otsu_level(ink: np.ndarray) -> float:
    """Otsu's threshold of the ink map (on its 8-bit levels), never below INK_FLOOR."""
    t, _ = cv2.threshold((ink * 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return max(float(t) / 255.0, INK_FLOOR)


def binarize_lower(ink: np.ndarray, thr: float) -> tuple[np.ndarray, float]:
    """Ink mask at a lower level than :func:`binarize`'s ``thr``; returns (mask, level).

    For a second reading when the first one's threshold broke thin, light
    digits into fragments: a single bold mark (an '=' written with a broad
    pen beside thin digits) lifts Otsu's threshold above most of their ink.
    The level is RETRY_SHARE of ``thr``, never below INK_FLOOR nor within
    RETRY_NOISE times the image's 90th percentile (mostly paper: its noise and
    texture). The level equals ``thr`` when nothing lower is allowed.
    """
    noise = RETRY_NOISE * float(np.percentile(ink, 90))
    level = min(thr, max(INK_FLOOR, RETRY_SHARE * thr, noise))
    return remove_rules(ink > level), level


def faint_level(thr: float) -> float:
    """How faint ink joined to strokes above ``thr`` may be (hysteresis's low threshold)."""
    return max(INK_FLOOR, HYSTERESIS * thr)


def _hysteresis(ink: np.ndarray, thr: float) -> np.ndarray:
    """Ink above ``thr``, and weaker ink (down to HYSTERESIS * thr) connected to it.

    One threshold keeps only the darkest parts of a faint or thin stroke (where
    lines cross, or the pen pressed): a 4 falls apart into blobs. Weaker pixels
    joined to strong ones are the rest of those strokes; weak ink on its own
    (a shadow, a smudge, paper texture) stays out.
    """
    strong = ink > thr
    low = faint_level(thr)
    if low >= thr:
        return strong
    comps = connected_components((ink > low).view(np.uint8))
    if comps.n < 2:
        return strong
    (ox, oy), labels = comps.origin, comps.labels
    h, w = labels.shape
    keep = np.zeros(comps.n, bool)
    keep[labels[strong[oy : oy + h, ox : ox + w]]] = True
    return comps.pixels(keep, strong.shape)


def remove_rules(mask: np.ndarray) -> np.ndarray:
    """Erase horizontal lines at least half the image wide and thin for their length."""
    h, w = mask.shape
    length = max(25, w // 2)
    if w < 50:
        return mask
    m8 = mask.astype(np.uint8)
    if int(cv2.reduce(m8, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).max()) < length:
        return mask  # no row holds that much ink: no rule (the opening would find none)
    runs = cv2.morphologyEx(
        m8, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1))
    )
    if not runs.any():
        return mask
    comps = connected_components(runs)
    n, stats = comps.n, comps.stats
    rules = np.zeros_like(mask)
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        # thickness of the ink around the run, column by column (median: digits crossing
        # the line do not count); a rule is thin for its length, a 7's bar is not
        pad = max(3, bw // 10)
        band = mask[max(0, y - pad) : y + bh + pad, x : x + bw]
        if float(np.median(band.sum(axis=0))) <= max(2.0, bw / 15):
            rules[y : y + bh, x : x + bw] |= comps.mask_of(i)
    if not rules.any():
        return mask
    rules = cv2.dilate(rules.astype(np.uint8), np.ones((3, 1), np.uint8)) > 0  # its soft edges
    return mask & ~rules


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The runs of True (or nonzero) in a 1-D array: (start, end) each, end excluded."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (flags != 0).astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _rules(mask: np.ndarray) -> np.ndarray | None:
    """The pixels of the printed rules :func:`remove_rules` erases (with their
    soft edges), or None when there is none."""
    removed = mask & ~remove_rules(mask)
    return removed if removed.any() else None


def erase_frames(im: InkMap) -> InkMap:
    """``im`` without the sides of a form's boxes (digits written one to a box)
    or the stretches of a notebook's margin line between its ruled lines (see
    :func:`_frame_sides`), erased from the ink itself: the faint strokes and
    the line model's view of a line read the ink, not a mask. Once the rules
    are gone those lines stand alone, as tall and thin as a 1, and were read
    as 1s between the digits. Where the ruled lines are too pale to be found,
    a margin line stands alone from edge to edge; it goes, with its strip of
    margin when nothing is written there (see :func:`_margin_lines`). Where
    there is neither, boxes drawn around single digits go (see
    :func:`_erase_boxes`). ``im`` itself when there are none (most images).

    A form photographed askew is turned level first (see :func:`deskew`), and
    kept turned only if that finds a frame: a single rule (a check's amount
    line) is dropped as a mark however it lies, and the straight lines of a
    check's printed security pattern cross its level writing at an angle (on
    the ORAND-CAR-A checks, turning to them cost 5 and 6 amounts of 706 with
    the default and the `checks` models).
    """
    h, w = im.ink.shape
    if w < 50 or float(im.ink.max(initial=0.0)) < MIN_CONTRAST:
        return im
    mask = im.ink > im.otsu()  # the ink the lines are looked for in
    turned = deskew(im, mask)
    if turned is not im:
        erased = _erase_level_frames(turned)
        if erased is not turned:
            return erased
    erased = _erase_level_frames(im, mask)
    return erased if erased is not im else _erase_boxes(im, mask)


BOX_SIDE = 15  # a box drawn around a digit is at least this many px on each side


def _erase_boxes(im: InkMap, mask: np.ndarray) -> InkMap:
    """``im`` without the boxes drawn around single digits: each a piece of ink
    that is a rectangle's outline (see :func:`_box_sides`), alone or with the
    digit inside touching it. A form's separate boxes (a gap between them),
    or one box, are shorter than the rules :func:`erase_frames` looks for;
    left, a box read as a 0 or as 1s around its digit ("5" in a box: "151").
    A box photographed askew is turned level to be tested (see
    :func:`_tilted_box_sides`). ``mask``: the ink above Otsu's threshold.
    """
    comps = connected_components(mask.view(np.uint8))
    sides = None
    for i in range(1, comps.n):
        x, y, bw, bh, area = (int(v) for v in comps.stats[i])
        if bw < BOX_SIDE or bh < BOX_SIDE or area > 0.6 * bw * bh:
            continue
        own = comps.mask_of(i)
        found = _box_sides(own)
        if found is None:
            found = _tilted_box_sides(own)
        if found is not None:
            if sides is None:
                sides = np.zeros_like(mask)
            sides[y : y + bh, x : x + bw] |= found
    # the lines' soft edges and anti-aliasing too, on every side
    return im if sides is None else _without(im, sides, (5, 5))


def _tilted_box_sides(own: np.ndarray) -> np.ndarray | None:
    """:func:`_box_sides` for a box photographed askew (1 to SKEW_MAX degrees,
    give or take half a degree of measuring): the piece is turned level by the
    tilt of the least-area rectangle around it, its sides are found there and
    turned back onto its own pixels. Level, the box test holds to 90% of each
    edge whatever the tilt was (tilted, a box's corner takes sin/(sin + cos)
    of each edge off its side: 8% at 5 degrees, 15% at 10). Only pieces whose
    convex hull fills 90% of that rectangle are turned: a box's does, a
    digit's seldom (an ellipse's fills 79%)."""
    h, w = own.shape
    b = max(3, min(h, w) // 6)
    # cheap first, for a piece about as tall as wide (one box, or a digit): a
    # box's sides ink the bands along its four edges (tilted by SKEW_MAX, along
    # most of them, the bands as deep as a side then falls); a digit's seldom
    if h <= 2 * w and w <= 2 * h:
        depth = b + int(np.tan(np.deg2rad(SKEW_MAX + 0.5)) * max(h, w))
        inked = (
            own[:depth].any(0),
            own[-depth:].any(0),
            own[:, :depth].any(1),
            own[:, -depth:].any(1),
        )
        if min(float(x.mean()) for x in inked) < 0.75:
            return None
    hull = cv2.convexHull(cv2.findNonZero(own.view(np.uint8)))
    (cx, cy), (rw, rh), a = cv2.minAreaRect(hull)  # the hull's is the piece's (and quicker)
    a = (a + 45.0) % 90.0 - 45.0  # the tilt, whichever way OpenCV reports it
    if not 1.0 <= abs(a) <= SKEW_MAX + 0.5 or cv2.contourArea(hull) < 0.9 * rw * rh:
        return None
    side = int(np.ceil(np.hypot(h, w))) + 2
    for angle in (a, -a):  # the first turns it level (OpenCV's sign convention varies)
        m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        m[:, 2] += (side / 2 - cx, side / 2 - cy)
        level = cv2.warpAffine(own.view(np.uint8) * np.uint8(255), m, (side, side)) > 127
        ys, xs = np.nonzero(level)
        y0, x0 = ys.min(), xs.min()
        found = _box_sides(level[y0 : ys.max() + 1, x0 : xs.max() + 1])
        if found is not None:
            out = np.zeros_like(level)
            out[y0 : y0 + found.shape[0], x0 : x0 + found.shape[1]] = found
            back = cv2.warpAffine(
                out.view(np.uint8) * np.uint8(255), m, (w, h), flags=cv2.WARP_INVERSE_MAP
            )
            return own & (cv2.dilate(back, np.ones((3, 3), np.uint8)) > 0)
    return None


def _box_sides(own: np.ndarray) -> np.ndarray | None:
    """The pixels of ``own`` (a piece of ink over its own box) that are a
    rectangle's four straight sides and the straight dividers between its
    cells, or None when it is no such outline.

    Each side is the outermost ink along one edge of the piece's box (see
    :func:`_box_side`): it must run along 90% of that edge, straight (within
    2 px of a line, at most SKEW_MAX from the edge: a photo's tilt) and thin
    (at most a third of the band it is looked for in, a sixth of the box's
    smaller side). No hand draws a 0 or a 4 that square. Dividers are
    straight, thin vertical lines from the top side to the bottom one that cut
    the box into cells of one width (to within 15%): a 1 written in a box
    seldom touches both its sides, and never at that spacing.
    """
    h, w = own.shape
    b = max(3, min(h, w) // 6)
    out = np.zeros_like(own)
    depths, widths = [], []  # how far into the box each side reaches, and how thick
    # the bands along the top, bottom, left and right edges, each seen from its edge
    # (a view of ``out`` the same way round receives the side's pixels)
    for band, dest in (
        (own[:b], out[:b]),
        (own[::-1][:b], out[::-1][:b]),
        (own.T[:b], out.T[:b]),
        (own.T[::-1][:b], out.T[::-1][:b]),
    ):
        side = _box_side(band)
        if side is None:
            return None
        pixels, depth, width = side
        dest |= pixels
        depths.append(depth)
        widths.append(width)
    top, bottom, left, right = depths
    if top + bottom >= h or left + right >= w:
        return None
    # dividers: runs of columns inked along 90% of the inside's height
    inside = own[top : h - bottom, left : w - right]
    runs = [
        (s, e) for s, e in _runs(inside.mean(axis=0) >= 0.9) if e - s <= max(3, 2 * max(widths))
    ]
    if runs:
        centres = [0.0] + [left + (s + e) / 2 for s, e in runs] + [float(w)]
        steps = np.diff(centres)
        if np.all(np.abs(steps / np.median(steps) - 1) <= 0.15):
            for s, e in runs:
                out[top : h - bottom, left + s : left + e] |= inside[:, s:e]
    return out


def _box_side(band: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """One side of a box in ``band``, the rows along one edge of a piece's box
    (row 0 at the edge): its pixels, how many rows of the band it reaches
    into, and its thickness; None when the outermost ink there is no straight,
    thin line along 90% of the edge. A photo's tilt is allowed (the line's
    slope up to SKEW_MAX), but 90% of the edge must lie on the line: past
    about 5 degrees a square box's corner, where the next side leaves the
    edge, takes more than a tenth of it (:func:`_tilted_box_sides` turns
    such a box level first)."""
    b, n = band.shape
    inked = band.any(axis=0)
    if inked.mean() < 0.9:
        return None
    cols = np.flatnonzero(inked).astype(np.float64)
    first = np.argmax(band, axis=0)[inked].astype(np.float64)  # the outermost ink
    width = int(np.median(band.sum(axis=0)[inked]))
    if 3 * width > b:
        return None
    # a straight line through the outermost ink (a box's corner, where the next
    # side leaves the edge, is off it: fitted again without what is off it)
    on = np.ones(len(cols), bool)
    for _ in range(2):
        slope, at0 = np.polyfit(cols[on], first[on], 1)
        on = np.abs(first - (slope * cols + at0)) <= 2
        if on.sum() < 0.9 * n or abs(slope) > np.tan(np.deg2rad(SKEW_MAX)):
            return None
    line = slope * np.arange(n) + at0  # its outer edge, column by column
    rows = np.arange(b)[:, None]
    pixels = band & (rows >= line[None, :] - 1) & (rows <= line[None, :] + width + 1)
    return pixels, int(np.ceil(line.max())) + width + 2, width


def _erase_level_frames(im: InkMap, mask: np.ndarray | None = None) -> InkMap:
    """:func:`erase_frames` for frames whose rules are level, and margin lines
    (``mask``: the ink above Otsu's threshold, when already known)."""
    h, w = im.ink.shape
    # no row with a rule's length of ink even at the floor, and no ink in the top
    # or the bottom row (a margin line runs through both): no frame (cheap, and
    # most images)
    floor = (im.ink > INK_FLOOR).view(np.uint8)
    long_row = int(cv2.reduce(floor, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).max()) >= max(25, w // 2)
    edge_to_edge = bool(floor[0].any() and floor[-1].any())
    if not (long_row or edge_to_edge):
        return im
    if mask is None:
        mask = im.ink > im.otsu()
    rules = _rules(mask) if long_row else None
    if rules is not None:
        sides = _frame_sides(mask & ~rules, rules)
    elif edge_to_edge:
        sides = _margin_lines(mask)
        if sides is None:  # a pale line photographed askew: dashes at Otsu's level
            sides = _margin_lines(mask, im.ink > max(INK_FLOOR, RETRY_SHARE * im.otsu()))
    else:
        sides = None
    # the lines' soft edges and anti-aliasing too, beside them
    return im if sides is None else _without(im, sides, (1, 5))


def _without(im: InkMap, pixels: np.ndarray, grow: tuple[int, int]) -> InkMap:
    """``im`` with no ink at ``pixels`` grown by a ``grow`` (rows, columns) rectangle."""
    gone = cv2.dilate(pixels.view(np.uint8), np.ones(grow, np.uint8)) > 0
    return replace(im, ink=np.where(gone, np.float32(0), im.ink))


FRAME_SIDE = 8  # straight vertical runs at least this long can be the sides of a frame
LINE_COVER = 0.8  # a line's columns hold ink over this share of its run's length


MARGIN_THIN = 25  # a margin line is at most 1/25 as wide as it is long (a 1 cropped tight is not)


def _margin_lines(mask: np.ndarray, low: np.ndarray | None = None) -> np.ndarray | None:
    """A straight, thin line from the image's top edge to its bottom edge, at
    most SKEW_MAX from upright, at most 1/MARGIN_THIN as wide as it is long,
    and at least twice as tall as any other ink: a
    notebook's margin line when its ruled lines are too pale for the
    threshold (otherwise :func:`_frame_sides` finds it between them). It stood
    alone, a 1 before the number. With it, the margin's strip between it and
    the edge. None when there is none, when nothing else is left to read (a 1
    cropped tight is such a line too), or when the strip is written in.

    ``low``: the ink at a lower level than ``mask``'s, to look for the line in
    (the other ink is still ``mask``'s). A pale line photographed askew falls
    across columns, its ink shared between two: at Otsu's level it comes out
    in dashes, each a 1 of its own.
    """
    h, w = mask.shape
    lines = mask if low is None else low
    rule = _find_rule(np.ascontiguousarray(lines.T), h)  # rows and columns swapped
    if rule is None or rule.start > 1 or rule.end < h - 1 or rule.width > h / MARGIN_THIN:
        return None
    # the line's column in each row, and its pixels (with their soft edges)
    centre = rule.at(np.arange(h, dtype=np.float64))[:, None]
    columns = np.arange(w)[None, :]
    line = np.abs(columns - centre) <= rule.width / 2 + 2
    rest = mask & ~line
    comps = connected_components(rest.view(np.uint8))
    tallest = int(comps.stats[1:, 3].max(initial=0))
    if not 0 < 2 * tallest <= h:
        return None
    # The margin's strip, between the line and the edge, holds the pale rules'
    # stubs: alone, stacked like a 5 or an E to the line model. It goes with
    # the line when nothing above the threshold is written in it: no ink, or
    # only dashes and specks at most the line's width plus 2 px tall (the
    # rules' stubs and the bits of them beside the line, when the rules are
    # dark enough for the threshold but too tilted to be found). Otherwise (a
    # note in the margin) the line stays too.
    ws, hs = comps.stats[:, 2], comps.stats[:, 3]
    dash = (ws > 3 * hs) | (hs <= rule.width + 2)
    written = comps.pixels(~dash, rest.shape)
    left = columns < centre
    if not (written & left).any():
        return line | left
    if not (written & ~left).any():
        return line | ~left
    return None


def _vertical_lines(mask: np.ndarray, length: int) -> list[tuple[int, int, int, np.ndarray]]:
    """Straight vertical runs of ink at least ``length`` px long that are thin
    for their length (a digit's stroke crossing them or touching them aside):
    (x, y, height, columns) each, ``columns`` the bool mask over the run's box
    of the columns inked along LINE_COVER of it."""
    m8 = mask.astype(np.uint8)
    if int(cv2.reduce(m8, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).max()) < length:
        return []  # no column holds that much ink: no run
    runs = cv2.morphologyEx(
        m8, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, length))
    )
    if not runs.any():
        return []
    comps = connected_components(runs)
    out = []
    for i in range(1, comps.n):
        x, y, bw, bh = (int(v) for v in comps.stats[i, :4])
        own = comps.mask_of(i)
        cols = own.sum(axis=0) >= LINE_COVER * bh
        if 1 <= int(cols.sum()) <= max(3, bh // 8):
            out.append((x, y, bh, own & cols[None, :]))
    return out


def _frame_sides(rest: np.ndarray, rules: np.ndarray) -> np.ndarray | None:
    """The vertical lines between the rules found (``rules``): the sides of the
    boxes of a form (digits written one to a box), a notebook's margin line
    crossing its ruled lines. None when there is none.

    A candidate is a straight vertical run of ink (``rest``: the ink without
    the rules) that is thin for its length and ends on a rule at both ends. A
    pen's stroke can be one too: a 1 or a 7's stem that fills a check's
    amount field from its top rule to its bottom one. So a candidate is a
    side only as part of a frame: one of three or more between the same rules
    evenly spaced (a row of boxes; a side not found leaves a gap of two), or
    in line with another between other rules (a margin crossing them). A run
    from a rule to the image's edge in line with a side is one too (the margin
    above the first rule and below the last).
    """
    h, _ = rest.shape
    near = cv2.dilate(rules.astype(np.uint8), np.ones((7, 1), np.uint8)) > 0  # 3 px above/below
    found = []  # (x, y, height, line) of the runs from a rule to a rule
    to_edge = []
    for x, y, bh, line in _vertical_lines(rest, FRAME_SIDE):
        bw = line.shape[1]
        top = y > 0 and bool(near[y - 1, x : x + bw].any())
        bottom = y + bh < h and bool(near[y + bh, x : x + bw].any())
        if top and bottom:
            found.append((x, y, bh, line))
        elif (top and y + bh == h) or (bottom and y == 0):
            to_edge.append((x, y, bh, line))

    def span(a: tuple, b: tuple) -> bool:
        """Whether runs ``a`` and ``b`` are between the same two rules (to within a
        tenth of their height: a digit's stroke on a rule moves a run's end)."""
        tol = max(4, min(a[2], b[2]) // 10)
        return abs(a[1] - b[1]) <= tol and abs(a[1] + a[2] - b[1] - b[2]) <= tol

    sides = np.zeros_like(rest)
    for f in found:
        x, y, bh, line = f
        steps = np.diff(sorted(g[0] for g in found if span(f, g)))
        # in steps of the shortest: a side not found (a digit's stroke along it)
        # leaves a step of two
        steps = steps / max(1, int(steps.min())) if len(steps) >= 2 else steps
        even = len(steps) >= 2 and bool(np.all(np.abs(steps - np.round(steps)) <= 0.15))
        aligned = any(abs(g[0] - x) <= 2 and not span(f, g) for g in found)
        if even or aligned:
            sides[y : y + bh, x : x + line.shape[1]] |= line
    if not sides.any():
        return None
    columns = sides.any(axis=0)
    for x, y, bh, line in to_edge:
        if columns[max(0, x - 2) : x + line.shape[1] + 2].any():
            sides[y : y + bh, x : x + line.shape[1]] |= line
    return sides


SKEW_MAX = 10.0  # printed rules tilted up to this many degrees are levelled ...
SKEW_MIN = 0.1  # ... from this many: closer to level, a rule is found as it is
SKEW_STEP = 0.25  # degrees between the angles first tried


def deskew(im: InkMap, mask: np.ndarray | None = None) -> InkMap:
    """``im`` turned so that its printed rules are level, or ``im`` itself when
    they already are or there is none (most images). :func:`erase_frames`
    turns a page only to find a frame.

    A phone photo of a form or a check is seldom square to the page: at a
    degree of tilt a rule half a page wide falls through 14 rows, no row holds
    it, and :func:`remove_rules` and :func:`erase_frames`, which look for
    level lines, found none. A form's boxes then stayed joined to its digits.
    The page is turned about its centre onto a canvas as wide and as tall as
    the turned page; ``turn`` maps the boxes found back. ``mask``: the ink
    above Otsu's threshold, when already known.
    """
    h, w = im.ink.shape
    if w < 50 or float(im.ink.max(initial=0.0)) < MIN_CONTRAST:
        return im
    angle = _skew(im.ink > im.otsu() if mask is None else mask)
    if angle is None or abs(angle) < SKEW_MIN:
        return im
    # (w, h) of the canvas: as tall as the turned page, as wide as the page was
    # (a rule half the image wide stays one; the turned page's corners, which
    # stick out by at most half its height times the sine, rarely hold ink)
    rad = np.deg2rad(angle)
    size = (w, int(np.ceil(h * abs(np.cos(rad)) + w * abs(np.sin(rad)))))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += ((size[0] - w) / 2, (size[1] - h) / 2)
    ink = cv2.warpAffine(im.ink, m, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    tone = None
    if im.tone is not None:  # the paper's own tone beyond the corners
        tone = cv2.warpAffine(
            im.tone, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    return replace(im, ink=ink, tone=tone, turn=Turn(angle, cv2.invertAffineTransform(m), (h, w)))


def _skew(mask: np.ndarray) -> float | None:
    """The angle in degrees (positive: falling to the right) of the longest
    straight, thin line at least half the image wide and tilted by at most
    SKEW_MAX (see :func:`_find_rule`), or None when there is none."""
    rule = _find_rule(mask, max(25, mask.shape[1] // 2))
    return None if rule is None or abs(rule.angle) > SKEW_MAX else rule.angle


@dataclass(frozen=True)
class _Rule:
    """A straight line of ink: y = y0 + x * slope through columns start..end-1."""

    y0: float
    slope: float
    start: int
    end: int
    width: float  # its median thickness, px

    @property
    def angle(self) -> float:
        return float(np.rad2deg(np.arctan(self.slope)))

    def at(self, xs: np.ndarray) -> np.ndarray:
        """The line's row at columns ``xs``."""
        return self.y0 + xs * self.slope


def _find_rule(mask: np.ndarray, length: int) -> _Rule | None:
    """The most voted straight, thin line at most SKEW_MAX from level that
    runs through 90% of ``length`` columns, or None when there is none.

    Candidates are found by a Hough transform of the mask at quarter
    resolution, SKEW_STEP apart; the first that is a rule is then fitted to
    its pixels at full resolution (see :func:`_rule_near`). A filled shape or
    a line of bold digits as wide gathers as many votes but is not thin.
    """
    h, w = mask.shape
    m8 = mask.view(np.uint8)
    if cv2.countNonZero(m8) < length:
        return None
    f = 4
    # INTER_AREA averages: any ink in a 4x4 block leaves it above 0 (a 1-px line too)
    small = cv2.resize(m8 * 255, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    candidates = cv2.HoughLines(
        small,
        1,
        np.deg2rad(SKEW_STEP),
        int(0.7 * length / f),
        None,
        0,
        0,
        np.deg2rad(90 - SKEW_MAX),
        np.deg2rad(90 + SKEW_MAX + SKEW_STEP / 2),
    )
    if candidates is None:
        return None
    ys, xs = np.nonzero(mask)
    for rho, theta in candidates[:5, 0]:
        # the line at full resolution (quarter-res pixel j spans f*j .. f*j + f - 1)
        ct, st = np.cos(theta), np.sin(theta)
        r = f * rho + (f - 1) / 2 * (ct + st)
        near = np.abs(xs * ct + ys * st - r) <= 2 * f
        if np.count_nonzero(near) < 0.7 * length:
            continue
        vx, vy, x0, y0 = _fit_line(xs[near], ys[near])
        if vx < np.cos(np.deg2rad(2 * SKEW_MAX)):
            continue  # the pixels lie along a steeper line: no rule
        rule = _rule_near(mask, x0, y0, vy / vx, length)
        if rule is not None:
            return rule
    return None


def _fit_line(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float, float]:
    """The line through these pixels (robust to a few strokes off it): its unit
    direction (vx >= 0) and a point on it.

    Orthogonal least squares reweighted by Huber's function (pixels more than
    HUBER_C px off the line weigh HUBER_C / distance), until it settles: the
    fit ``cv2.fitLine(..., DIST_HUBER)`` makes (on the forms' rules the same
    angles to 0.01 degrees), which takes about 1.3 us a pixel (0.7 ms for a
    line near a check's printed pattern) against about a tenth of that here."""
    x, y = xs.astype(np.float64), ys.astype(np.float64)
    w = np.ones_like(x)
    last = None
    for _ in range(20):  # until it settles (to 0.01 px and 0.001 degrees)
        total = float(w.sum())
        x0, y0 = float(w @ x) / total, float(w @ y) / total
        dx, dy = x - x0, y - y0
        # the direction of the weighted pixels' principal axis
        wdx, wdy = w * dx, w * dy
        theta = 0.5 * np.arctan2(2 * float(wdx @ dy), float(wdx @ dx) - float(wdy @ dy))
        if (
            last is not None
            and abs(theta - last[0]) < 2e-5
            and np.hypot(x0 - last[1], y0 - last[2]) < 0.01
        ):
            break
        last = (theta, x0, y0)
        off = np.abs(np.cos(theta) * dy - np.sin(theta) * dx)
        w = HUBER_C / np.maximum(off, HUBER_C)
    vx, vy = float(np.cos(theta)), float(np.sin(theta))
    return (-vx, -vy, x0, y0) if vx < 0 else (vx, vy, x0, y0)


HUBER_C = 1.345  # px: Huber's constant for unit noise (OpenCV's too)


def _rule_near(mask: np.ndarray, x0: float, y0: float, slope: float, length: int) -> _Rule | None:
    """The rule near the line through (x0, y0) of ``slope``, or None when there
    is no rule there.

    The mask is read in a band along the line, column by column. A rule is
    inked (within a pixel of the line) along a run of 90% of ``length``
    columns, and thin there: the ink across it is thinner than half the band
    (as in :func:`remove_rules`, the median over the run: digits crossing it
    do not count). Its slope is then fitted to the centres of its ink in the
    columns where it is alone (no thicker than its median): strokes crossing
    or touching it would pull the fit.
    """
    h, w = mask.shape
    pad = max(6, length // 40)
    xs = np.arange(w)
    offsets = np.arange(-pad, pad + 1)
    rows = np.rint(y0 + (xs - x0) * slope).astype(int)[None, :] + offsets[:, None]
    inside = (rows >= 0) & (rows < h)
    band = mask[np.clip(rows, 0, h - 1), xs[None, :]] & inside
    on = band[pad - 1 : pad + 2].any(axis=0).astype(np.uint8)
    # gaps narrower than the band bridged: a faint rule photographed askew
    # comes out of the threshold in dashes
    on = cv2.morphologyEx(on[None, :], cv2.MORPH_CLOSE, np.ones((1, pad), np.uint8))[0]
    runs = _runs(on)
    if not runs:
        return None
    a, b = max(runs, key=lambda r: r[1] - r[0])  # the longest (the first of equals)
    if b - a < 0.9 * length:
        return None
    run = band[:, a:b]
    thick = run.sum(axis=0)
    median = float(np.median(thick[thick > 0]))
    if median > pad:
        return None
    alone = (thick > 0) & (thick <= median)
    if np.count_nonzero(alone) < 2:  # no slope to fit (an image one pixel across)
        return None
    centres = (offsets @ run[:, alone]) / thick[alone] + rows[pad, a:b][alone]
    slope, y0 = np.polyfit(xs[a:b][alone].astype(np.float64), centres, 1)
    return _Rule(float(y0), float(slope), a, b, median)


# --------------------------------------------------------------------------- MNIST style


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary shape, 2 * area / perimeter (exact for long strokes)."""
    m = mask.astype(np.uint8)
    area = float(cv2.countNonZero(m))
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * area / max(perimeter, 1.0)


def normalise_stroke(soft: np.ndarray, mask: np.ndarray, pen: float | None = None) -> np.ndarray:
    """Thicken very thin strokes (or thin very thick ones) into MNIST's range of widths.

    MNIST's stroke width is 0.08-0.16 of the digit's box side (10th-90th
    percentile). Only strokes well outside that range are changed, and only
    back to its edge, so digits near the range never jump between two looks.
    ``pen`` (a share of the box side) redraws the strokes at exactly that
    width instead (see :func:`pen_views`), a crop larger than PEN_SIDE
    scaled down to it first.
    """
    side = max(mask.shape)
    if side < 2 * MNIST_BOX:  # too small to tell; resampling decides
        return soft
    sw = stroke_width(mask)
    if pen is not None:
        if side > PEN_SIDE:  # redrawn smaller: the same 20x20 at the end, a fraction of the work
            f = PEN_SIDE / side
            soft = cv2.resize(soft, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            side, sw = max(soft.shape), sw * f
        r = int(round((pen * side - sw) / 2))
        op = cv2.dilate if r > 0 else cv2.erode
        r = abs(r)
    elif sw < STROKE_THIN * side:
        r = int(round((STROKE_THIN_TO * side - sw) / 2))
        op = cv2.dilate
    elif sw > STROKE_THICK * side:
        r = int(round((sw - STROKE_THICK_TO * side) / 2))
        op = cv2.erode
    else:
        return soft
    if r < 1:
        return soft
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return op(soft, kernel)


# rows and columns of the 20x20 box, as float64 (what an integer grid is cast to), made once
_BOX_ROWS, _BOX_COLS = np.mgrid[:MNIST_BOX, :MNIST_BOX].astype(np.float64)
_BOX_ROWS.flags.writeable = _BOX_COLS.flags.writeable = False
_KERNEL_3X3 = np.ones((3, 3), np.uint8)


def to_mnist(
    soft: np.ndarray, mask: np.ndarray | None = None, pen: float | None = None
) -> np.ndarray:
    """A crop of one digit's ink (float, high = ink) -> MNIST-style uint8 (28, 28).

    ``mask`` marks the digit's pixels (default: ``soft > INK_FLOOR``); ink
    outside it (neighbouring marks) is dropped. ``pen``: see :func:`normalise_stroke`.
    """
    soft = np.asarray(soft, np.float32)
    if mask is None:
        mask = soft > INK_FLOOR
    bx, by, bw, bh = ink_box(mask)
    if bw == 0:
        return np.zeros((MNIST_SIZE, MNIST_SIZE), np.uint8)
    pad = 2  # keep the soft edge pixels just outside the mask
    y0, x0 = max(0, by - pad), max(0, bx - pad)
    y1, x1 = min(soft.shape[0], by + bh + pad), min(soft.shape[1], bx + bw + pad)
    soft, mask = soft[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    # the crop holds all of the mask and a margin, so dilating it is dilating the whole
    keep = cv2.dilate(mask.astype(np.uint8), _KERNEL_3X3)
    soft = cv2.copyTo(soft, keep)  # the ink there, zeros elsewhere (a new array)
    soft = normalise_stroke(soft, mask, pen)
    # tight box on the (possibly thickened) ink, then pad to a square
    bx, by, bw, bh = ink_box(soft > INK_FLOOR * float(soft.max()))
    soft = soft[by : by + bh, bx : bx + bw]
    h, w = soft.shape
    side = max(h, w)
    square = np.zeros((side, side), np.float32)
    oy, ox = (side - h) // 2, (side - w) // 2
    square[oy : oy + h, ox : ox + w] = soft
    interp = cv2.INTER_AREA if side > MNIST_BOX else cv2.INTER_LINEAR
    box = cv2.resize(square, (MNIST_BOX, MNIST_BOX), interpolation=interp)
    np.maximum(box, 0.0, out=box)
    peak = float(box.max())
    if peak <= 0:
        return np.zeros((MNIST_SIZE, MNIST_SIZE), np.uint8)
    box = box / peak * 255.0
    # paste so that the centre of mass lands at the centre (integer shift, as MNIST)
    total = box.sum()
    cy, cx = (box * _BOX_ROWS).sum() / total, (box * _BOX_COLS).sum() / total
    oy = int(round(MNIST_CENTER - cy))
    ox = int(round(MNIST_CENTER - cx))
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    ys0, xs0 = max(0, oy), max(0, ox)
    ys1, xs1 = min(MNIST_SIZE, oy + MNIST_BOX), min(MNIST_SIZE, ox + MNIST_BOX)
    out[ys0:ys1, xs0:xs1] = box[ys0 - oy : ys1 - oy, xs0 - ox : xs1 - ox]
    np.minimum(out, 254.5, out=out)  # no ink is negative: only the top needs a bound
    out += 0.5
    return out.astype(np.uint8)


def _no_views() -> np.ndarray:
    return np.zeros((0, MNIST_SIZE, MNIST_SIZE), np.uint8)


def pen_views(soft: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The digit redrawn at each of PENS' stroke widths: (len(PENS), 28, 28), or (0, 28, 28).

    A photo's pen is rarely MNIST's: the reader thickens or thins it only when
    it lies well outside MNIST's range (:func:`normalise_stroke`), and the
    pipeline's damage (a thin stroke broken, a thick loop closed) shows at one
    width more than at another. The reader averages the model over the digit
    as found and these views when it is unsure of the first (see
    ``reader.PEN_BELOW``): 45 instead of 50 misses of 4,000 development
    digits. A digit under 2 * MNIST_BOX pixels is not redrawn (upscaling it
    first did not help): no views.
    """
    _, _, w, h = ink_box(mask)
    if max(w, h) < 2 * MNIST_BOX:
        return _no_views()
    return np.stack([to_mnist(soft, mask, pen) for pen in PENS])


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two boxes (x, y, w, h)."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def solid_blob(
    rgb: np.ndarray,
    box: tuple[int, int, int, int] | None = None,
    view: np.ndarray | None = None,
    widened: bool = False,
) -> bool:
    """True if the image's main dark (or light) shape is a solid blob, not a stroke.

    Blobs are judged on a global threshold of the raw image: a large,
    hole-free shape filling most of its box. With ``box`` (where the digit was
    found, original pixels) the blob must be that ink: the shaded part of a
    photo is a large hole-free shape too, and a digit written on it is no
    blob. With ``view`` (the model's 28x28 of that ink) the blob must also be
    wider than the page's first window (``widened``: see ``InkMap.widened``),
    or its view hollowed out, or the ink found one side of the shape: a digit
    written with a broad marker is a hole-free shape filling most of its box
    too (a 9 or an 8 whose loops closed, a 1 like an ellipse), but on a page
    with room around it its strokes are narrower than a fifth of the image.
    """
    return on_blob(blob_shape(rgb), box, view, widened)


def blob_shape(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box (x, y, w, h, original pixels) of the image's main dark (or light)
    shape if it is a blob (large, hole-free, filling most of its box), else None.

    Found once per image; :func:`on_blob` then says whether a digit found there
    is that blob (see :func:`solid_blob`).
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # a power-of-two factor to at most 256 px: OpenCV's INTER_AREA is 3x faster
    # by 4 than by 3 (0.12 vs 0.41 ms on a 640x480 photo)
    f = 1 << max(0, (max(grey.shape) - 1) // 256).bit_length()
    if f > 1:
        h, w = grey.shape
        grey = cv2.resize(grey, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    if int(grey.max()) - int(grey.min()) < 50:
        return None
    _, mask = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if mask.mean() > 0.5:  # the minority is the object
        mask = 1 - mask
    comps = connected_components(mask.astype(np.uint8))
    n, stats = comps.n, comps.stats
    if n < 2:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = (int(v) for v in stats[i])
    if area < 0.02 * mask.size or not 0.4 <= w / h <= 2.5:
        return None
    if _hole_area(comps.mask_of(i)) > 0 or area / (w * h) <= 0.7:
        return None
    return (x * f, y * f, w * f, h * f)


def on_blob(
    shape: tuple[int, int, int, int] | None,
    box: tuple[int, int, int, int] | None = None,
    view: np.ndarray | None = None,
    widened: bool = False,
) -> bool:
    """Whether ink found at ``box`` (seen as ``view``) is the blob ``shape``
    (:func:`blob_shape`; None: the image has no blob). See :func:`solid_blob`."""
    if shape is None:
        return False
    rim = box is not None and _on_rim(box, shape)
    if box is not None and _iou(shape, box) < 0.5 and not rim:
        return False
    return view is None or rim or widened or _hole_area(view > 127) >= HOLLOWED * view.size


def _on_rim(box: tuple[int, int, int, int], shape: tuple[int, int, int, int]) -> bool:
    """Whether ``box`` is a side of the ``shape`` box: the edge that background
    correction leaves of a filled rectangle (its sides are what reads as a 1)."""
    bx, by, bw, bh = box
    sx, sy, sw, sh = shape
    tol = 0.05 * max(sw, sh)
    if bx < sx - tol or by < sy - tol or bx + bw > sx + sw + tol or by + bh > sy + sh + tol:
        return False
    near_x = min(abs(bx - sx), abs(bx + bw - sx - sw)) <= tol
    near_y = min(abs(by - sy), abs(by + bh - sy - sh)) <= tol
    side_x = near_x and bw <= 0.5 * sw and bh >= 0.5 * sh  # a left or right side
    side_y = near_y and bh <= 0.5 * sh and bw >= 0.5 * sw  # the top or the bottom
    return side_x or side_y


HOLLOWED = 0.02  # a hole this share of the 28x28 in the view of a hole-free shape: hollowed


def _hole_area(mask: np.ndarray) -> float:
    """Pixels of background enclosed by the mask's shape (its holes)."""
    contours, hierarchy = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    if hierarchy is None:
        return 0.0
    inner = [c for c, row in zip(contours, hierarchy[0], strict=True) if row[3] >= 0]
    return float(sum(max(cv2.contourArea(c), 1.0) for c in inner))


@dataclass
class Prepared:
    """The result of :func:`preprocess`: the model's view of one digit and where it was."""

    digit: np.ndarray  # uint8 (28, 28), MNIST style (white ink on black)
    box: tuple[int, int, int, int] | None  # (x, y, w, h) in original pixels; None: no ink
    inverted: bool  # the original had light ink on a dark background
    # the digit's ink and mask at working resolution, for :meth:`pen_views`
    crop: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    # the page's ink around the digit and the digit's piece there, for :meth:`line_view`
    window: tuple[np.ndarray, Any] | None = field(default=None, repr=False)
    widened: bool = False  # see InkMap.widened
    # the digit with the fragments its piece leaves out, (28x28, box), if there
    # are any (a thin pen's digit broken apart; see segmentation.with_fragments)
    fragments: tuple[np.ndarray, tuple[int, int, int, int]] | None = None

    def pen_views(self) -> np.ndarray:
        """The digit redrawn with MNIST's thinner and thicker pens (see :func:`pen_views`)."""
        return _no_views() if self.crop is None else pen_views(*self.crop)

    def line_view(self) -> np.ndarray | None:
        """The digit as a line model reads it (:func:`lines.line_view`: the ink map
        around its piece, faint strokes included), or None when no digit was found."""
        if self.window is None:
            return None
        from .lines import line_view

        ink, piece = self.window
        return line_view(ink, [piece])[0]


def preprocess(src: ImageLike, max_pixels: int = MAX_PIXELS) -> Prepared:
    """THE entry point for one digit: any image -> MNIST-style 28x28 uint8.

    The digit is the main piece of ink (its parts merged; specks, printed rules
    and marks dropped); use ``inkdigits.segmentation`` for several digits.
    """
    from .segmentation import Piece, components, drop_specks, main_piece, with_fragments

    im = erase_frames(ink_map(load_image(src, max_pixels)))
    mask, _ = binarize(im.ink, faint_strokes=True, thr=im.otsu())
    parts = drop_specks(components(mask))
    piece = main_piece(mask, im.ink, parts)
    if piece is None:
        return Prepared(np.zeros((MNIST_SIZE, MNIST_SIZE), np.uint8), None, im.inverted)

    def cut_out(piece: Piece) -> tuple[np.ndarray, tuple[int, int, int, int], tuple]:
        """The piece as the model sees it, its box in original pixels, and the
        ink around it with the piece's mask there (:func:`to_mnist` on the
        piece's neighbourhood only, which never looks further than 2 px beyond
        the mask: the same result as on the whole image, cheaper)."""
        m = 3
        y0, x0 = max(0, piece.y - m), max(0, piece.x - m)
        y1 = min(mask.shape[0], piece.y + piece.h + m)
        x1 = min(mask.shape[1], piece.x + piece.w + m)
        keep = np.zeros((y1 - y0, x1 - x0), bool)
        keep[piece.y - y0 : piece.y - y0 + piece.h, piece.x - x0 : piece.x - x0 + piece.w] = (
            piece.mask
        )
        bx, by, bw, bh = ink_box(piece.mask)
        box = im.to_original((piece.x + bx, piece.y + by, bw, bh))
        around = im.ink[y0:y1, x0:x1]
        return to_mnist(around, keep), box, (around, keep)

    digit, box, (around, keep) = cut_out(piece)
    more = with_fragments(piece, parts, im.ink)
    fragments = cut_out(more)[:2] if more is not None else None
    # the page around the piece, a digit height on every side: more than a line
    # view shows (lines.MARGIN and a quarter height), so its view is the same
    r = piece.h + 2
    wy0, wx0 = max(0, piece.y - r), max(0, piece.x - r)
    wy1 = min(mask.shape[0], piece.y + piece.h + r)
    wx1 = min(mask.shape[1], piece.x + piece.w + r)
    window = (im.ink[wy0:wy1, wx0:wx1].copy(), replace(piece, x=piece.x - wx0, y=piece.y - wy0))
    # a copy: a view would keep the whole page's ink map alive with the result
    crop = (around.copy(), keep)
    return Prepared(digit, box, im.inverted, crop, window, im.widened, fragments)


def to_original(box: tuple[int, int, int, int], scale: float) -> tuple[int, int, int, int]:
    """A box (x, y, w, h) at working resolution -> the same box in original pixels."""
    x, y, w, h = box
    s = 1.0 / scale
    return (
        int(round(x * s)),
        int(round(y * s)),
        max(1, int(round(w * s))),
        max(1, int(round(h * s))),
    )
