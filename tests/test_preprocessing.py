"""Preprocessing: every input form, bad input, MNIST fidelity, polarity, colour ink, properties."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from conftest import paper
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from inkdigits import preprocessing as pre
from inkdigits import synth
from inkdigits.preprocessing import ImageError


def png_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture(scope="module")
def seven(mnist) -> np.ndarray:
    """An MNIST test 7 (index 0), white on black, 28x28."""
    return mnist.test_images[0]


# --------------------------------------------------------------------------- input forms


def test_every_input_form_gives_the_same_digit(seven, tmp_path):
    rgb = paper(seven)
    im = Image.fromarray(rgb)
    p = tmp_path / "seven.png"
    im.save(p)
    ref = pre.preprocess(rgb).digit
    for src in (str(p), p, p.read_bytes(), bytearray(p.read_bytes()), im, rgb, rgb[..., 0]):
        np.testing.assert_array_equal(pre.preprocess(src).digit, ref)


@pytest.mark.parametrize("mode", ["L", "P", "LA", "RGBA", "CMYK", "I;16", "1", "I", "F"])
def test_image_modes_are_read(seven, mode):
    rgb = paper(seven)
    if mode == "I;16":
        im = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    elif mode == "1":  # a bilevel scan (thresholded, not dithered)
        im = Image.fromarray(rgb).convert("L").convert("1", dither=Image.Dither.NONE)
    elif mode in ("I", "F"):
        im = Image.fromarray(rgb[..., 0]).convert(mode)
    else:
        im = Image.fromarray(rgb).convert(mode)
    fmt = {"CMYK": "TIFF", "F": "TIFF", "I": "TIFF"}.get(mode, "PNG")
    out = pre.load_image(png_bytes(im, fmt))
    assert out.shape == (200, 200, 3) and out.dtype == np.uint8
    digit = pre.preprocess(out).digit
    ref = pre.preprocess(rgb).digit
    assert np.abs(digit.astype(int) - ref.astype(int)).mean() < 12, mode


@pytest.mark.parametrize("kind", ["L", "RGB", "RGBA", "RGBA-soft", "LA", "RGB-tRNS", "RGB16"])
def test_png_fast_decoders_give_pillows_pixels(kind):
    """PNG bytes take a fast decoder (libspng or OpenCV); the pixels must be Pillow's."""
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    rgba[..., 3] = 255 if kind != "RGBA-soft" else rgba[..., 3]
    if kind == "RGB16":  # 48-bit PNG written by OpenCV (BGR order, 16 bits per channel)
        ok, enc = cv2.imencode(".png", rgba[..., 2::-1].astype(np.uint16) * 257)
        blob = enc.tobytes()
    else:
        mode = {"RGBA-soft": "RGBA", "RGB-tRNS": "RGB"}.get(kind, kind)
        im = Image.fromarray(rgba).convert(mode)
        kw = {"transparency": tuple(int(v) for v in rgba[0, 0, :3])} if kind == "RGB-tRNS" else {}
        blob = png_bytes(im, **kw)
    via_pillow = pre.load_image(Image.open(io.BytesIO(blob)))  # never the fast path
    np.testing.assert_array_equal(pre.load_image(blob), via_pillow)
    if kind == "RGB-tRNS":  # the key colour is transparent: flattened onto the page
        assert tuple(via_pillow[0, 0]) in ((255, 255, 255), (0, 0, 0))


@pytest.mark.parametrize("writer", ["pillow", "opencv"])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_png_inflated_by_isal_gives_libspngs_pixels(writer, mode):
    """The photo's PNG inflated by ISA-L and handed to libspng stored: the same pixels.

    Noisy enough for several IDAT chunks (Pillow) and libpng's Average and
    Paeth filters (OpenCV), and an odd width.
    """
    spng = pytest.importorskip("pyspng")
    pytest.importorskip("isal")
    rng = np.random.default_rng(5)
    img = cv2.GaussianBlur(rng.integers(0, 256, (241, 333, 4), dtype=np.uint8), (0, 0), 1.5)
    img = Image.fromarray(img).convert(mode)
    if writer == "pillow":
        blob = png_bytes(img)
    else:
        arr = np.asarray(img)
        order = {"L": [], "RGB": [2, 1, 0], "RGBA": [2, 1, 0, 3]}[mode]
        blob = cv2.imencode(".png", arr[..., order] if order else arr)[1].tobytes()
    stored = pre._stored_png(blob)
    assert stored is not None and len(stored) > len(blob)  # inflated: every sample stored
    np.testing.assert_array_equal(spng.load(stored), np.asarray(img))
    np.testing.assert_array_equal(pre.load_image(blob), pre.load_image(img))


def test_png_isal_path_hands_back_what_it_does_not_decode(seven):
    """Truncated, interlaced, 16-bit and over-long PNGs: None (libspng and the others
    decode them or say what is wrong); damaged image data is reported, not read."""
    pytest.importorskip("isal")
    blob = png_bytes(Image.fromarray(paper(seven, 300)))
    assert pre._stored_png(blob) is not None
    assert pre._stored_png(blob[:-12]) is None  # no IEND
    assert pre._stored_png(blob[: len(blob) // 2]) is None
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0xFF  # inside the image data
    with pytest.raises(ImageError, match="corrupt PNG data"):
        pre.load_image(bytes(bad))  # libspng alone returns the image, 1% of its pixels wrong
    assert pre._stored_png(cv2.imencode(".png", np.zeros((9, 9), np.uint16))[1].tobytes()) is None

    def png(data: bytes, interlace: int = 0) -> bytes:  # a 10x10 grey PNG over ``data``
        ihdr = struct.pack(">IIBBBBB", 10, 10, 8, 0, 0, 0, interlace)
        chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")
        return pre._PNG_SIGNATURE + chunks

    small = png(zlib.compress(bytes(110)))  # 10 rows of a filter byte and 10 samples
    assert pre._stored_png(small) is not None
    assert pre.load_image(small).shape == (10, 10, 3)
    assert pre._stored_png(png(zlib.compress(bytes(110)), interlace=1)) is None
    assert pre._stored_png(png(zlib.compress(bytes(1 << 20)))) is None  # no 10x10 image
    assert pre._stored_png(png(zlib.compress(bytes(100)))) is None  # rows missing


def test_truncated_png_is_reported(seven):
    blob = png_bytes(Image.fromarray(paper(seven, 300)))
    with pytest.raises(ImageError, match="truncated or corrupt|cannot read"):
        pre.load_image(blob[: len(blob) // 2])


def test_transparent_drawing_is_flattened_onto_the_right_background(seven):
    # black strokes on a fully transparent canvas (what drawing apps export)
    alpha = cv2.resize(seven, (200, 200))
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., 3] = alpha
    out = pre.load_image(png_bytes(Image.fromarray(rgba, "RGBA")))
    assert out[0, 0].tolist() == [255, 255, 255] and out.min() < 40
    # white strokes on transparent: flattened onto black
    rgba[..., :3] = 255
    out = pre.load_image(png_bytes(Image.fromarray(rgba, "RGBA")))
    assert out[0, 0].tolist() == [0, 0, 0] and out.max() > 215


def test_animated_gif_and_multipage_tiff_use_the_first_frame(seven):
    first = Image.fromarray(paper(seven))
    second = Image.fromarray(np.full((200, 200, 3), 255, np.uint8))
    for fmt in ("GIF", "TIFF"):
        blob = png_bytes(first, fmt, save_all=True, append_images=[second])
        assert Image.open(io.BytesIO(blob)).n_frames == 2
        assert pre.preprocess(blob).box is not None, fmt  # the digit, not the blank page


def test_exif_orientation_is_applied(seven):
    im = Image.fromarray(paper(seven)).rotate(90, expand=True)  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    blob = png_bytes(im, "JPEG", exif=exif.tobytes(), quality=95)
    upright = pre.preprocess(paper(seven)).digit.astype(int)
    got = pre.preprocess(blob).digit.astype(int)
    assert np.abs(got - upright).mean() < 15


def _huge_png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100))
    return pre._PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + idat


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"", "empty input"),
        (b"hello, I am text", "not an image"),
        (_huge_png_header(20000, 20000), "above the limit"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "not an image"),
    ],
    ids=["zero-bytes", "text", "bomb", "png-garbage"],
)
def test_bad_bytes_are_refused_clearly(blob, message):
    with pytest.raises(ImageError, match=message):
        pre.load_image(blob)


def test_truncated_file_is_reported(seven, tmp_path):
    blob = png_bytes(Image.fromarray(paper(seven, 400)), "JPEG", quality=95)
    p = tmp_path / "cut.jpg"
    p.write_bytes(blob[: len(blob) // 3])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        pre.load_image(p)


def test_pixel_limit_is_configurable(seven):
    with pytest.raises(ImageError, match="above the limit"):
        pre.load_image(png_bytes(Image.fromarray(paper(seven, 400))), max_pixels=100_000)


@pytest.mark.parametrize("bad", [np.zeros((0, 5)), np.zeros((4, 4, 7)), np.zeros((2, 2, 2, 2))])
def test_bad_arrays(bad):
    with pytest.raises(ImageError):
        pre.load_image(bad)


def test_missing_file():
    with pytest.raises(ImageError, match="no such file"):
        pre.load_image("/nonexistent/digit.png")


# --------------------------------------------------------------------------- MNIST fidelity


def test_mnist_digits_survive_preprocessing(mnist):
    x = mnist.test_images[:300]
    again = np.stack([pre.preprocess(img).digit for img in x])
    assert np.abs(again.astype(int) - x.astype(int)).mean() < 3.0  # grey levels out of 255


def test_output_follows_mnist_geometry(seven):
    d = pre.preprocess(paper(seven, 500)).digit
    ys, xs = np.nonzero(d > 30)
    assert max(np.ptp(ys), np.ptp(xs)) + 1 in (19, 20, 21)  # the 20x20 box (+- resampling)
    yy, xx = np.mgrid[:28, :28]
    cy, cx = (d * yy).sum() / d.sum(), (d * xx).sum() / d.sum()
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75
    assert d.max() == 255


@pytest.mark.parametrize(
    "ink, bg",
    [((20, 20, 20), (255, 255, 255)), ((30, 50, 170), (235, 222, 190)),
     ((190, 30, 30), (245, 240, 225)), ((240, 240, 240), (15, 15, 15)),
     ((15, 15, 20), (100, 98, 92)), ((210, 210, 200), (80, 82, 80))],
    ids=["black-on-white", "blue-on-beige", "red-on-cream", "white-on-black",
         "black-on-dim-grey-paper", "chalk-on-grey-board"],
)  # fmt: skip
def test_colour_and_polarity_give_the_same_digit(seven, ink, bg):
    ref = pre.preprocess(paper(seven)).digit.astype(int)
    got = pre.preprocess(paper(seven, ink=ink, bg=bg)).digit.astype(int)
    # 12, not less: blue ink's faint anti-aliased edge hardly darkens beige paper's
    # weakest channel, so its box comes out 2-3 px smaller than black ink's (11.7)
    assert np.abs(got - ref).mean() < 12


def test_shadow_across_the_page_is_removed(seven):
    rgb = paper(seven, 300, ink=(40, 45, 120), bg=(230, 220, 200)).astype(np.float32)
    ramp = np.linspace(1.0, 0.35, 300)[None, :, None]  # light from the left, dark on the right
    shadowed = (rgb * ramp).astype(np.uint8)
    ref = pre.preprocess(paper(seven, 300)).digit.astype(int)
    got = pre.preprocess(shadowed)
    assert got.box is not None
    assert np.abs(got.digit.astype(int) - ref).mean() < 15


def test_light_falling_toward_a_corner_is_no_ink(seven):
    # the page darkens toward the bottom-right corner (a lamp at the top left);
    # the background estimate must follow it to the image's edge, not leave a
    # dark band there for the digit finder to pick
    h = w = 300
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    light = 1.0 - 0.55 * ((yy + xx) / (h + w - 2)) ** 2
    page = paper(seven, 120).astype(np.float32)
    rgb = np.full((h, w, 3), 255, np.float32)
    rgb[40:160, 40:160] = page
    rgb = (rgb * light[..., None]).astype(np.uint8)
    im = pre.ink_map(rgb)
    assert not im.inverted
    assert float(im.ink[200:, 200:].max()) < pre.INK_FLOOR  # nothing near the dark corner
    got = pre.preprocess(rgb)
    assert got.box is not None and got.box[0] >= 40 and got.box[0] + got.box[2] <= 165


def test_dark_pen_on_a_dim_shadowed_photo_keeps_its_polarity(seven):
    # grey paper photographed in dim light (page ~0.33) with a brighter band:
    # the pen is only ~0.2 darker than the page in absolute terms, 60% relatively
    rgb = paper(seven, 300, ink=(34, 34, 34), bg=(85, 85, 85)).astype(np.float32)
    lift = 1.0 + 0.6 * np.clip((120 - np.arange(300)) / 60.0, 0, 1)  # lighter on the left
    rgb = np.clip(rgb * lift[None, :, None], 0, 255).astype(np.uint8)
    im = pre.ink_map(rgb)
    assert not im.inverted
    ref = pre.preprocess(paper(seven, 300)).digit.astype(int)
    assert np.abs(pre.preprocess(rgb).digit.astype(int) - ref).mean() < 15


@pytest.mark.parametrize("bg", [(85, 85, 85), (70, 72, 75)])
def test_blue_pen_on_dim_grey_paper_is_dark_ink(seven, bg):
    # saturated blue is lighter than dim grey paper in its strongest channel
    # (170 against 85), so its strokes counted as light ink as much as dark
    # and the page was taken for a board; in luminance the pen is darker
    rgb = paper(seven, 200, ink=(40, 55, 170), bg=bg)
    rgb = np.pad(rgb, ((100, 100), (100, 100), (0, 0)), mode="edge")
    assert not pre.ink_map(rgb).inverted
    ref = pre.preprocess(paper(seven, 200)).digit.astype(int)
    assert np.abs(pre.preprocess(rgb).digit.astype(int) - ref).mean() < 15


@pytest.mark.parametrize("seed", [259, 509, 27])
def test_dark_numbers_beside_a_shadow_s_edge_keep_their_polarity(mnist, seed):
    # photos of three dark digits on paper half in shadow (seed 259: lit paper
    # between the digits and the shadow's edge; 27: blue pen on dim paper):
    # the strokes pulled the opening background down, the lit paper around
    # them rose above it and the page was read as light ink on a dark board
    rng = np.random.default_rng(seed)
    sample = synth.render(rng, mnist.test_images, mnist.test_labels, 3, background="photo",
                          dark=False)  # fmt: skip
    assert not pre.ink_map(sample.image).inverted


@pytest.mark.parametrize("seed", [185, 261])
def test_small_light_numbers_on_a_shadowed_dark_photo_are_light_ink(mnist, seed):
    # seven light digits 16 px tall on a dark photo with a lit band across
    # it: the digits lift the closing background around them, so the page
    # beside them fell below it nearly as often as the digits rose (seed 261:
    # 122 falls, 181 rises; seed 185: 195 and 238 at the faint contrast) and
    # the page was read as dark ink, the digits as its paper. Against the
    # median page that halo does not fall (0 falls).
    rng = np.random.default_rng(seed)
    sample = synth.render(rng, mnist.test_images, mnist.test_labels, 7, background="photo",
                          dark=True, height=16)  # fmt: skip
    assert pre.ink_map(sample.image).inverted


@pytest.mark.parametrize("light_ink", [True, False], ids=["pale-pen-on-board", "pencil-on-grey"])
def test_faint_ink_finds_its_polarity(seven, light_ink):
    # pale yellow ink on a grey-blue board (a light-on-dark photo): its lightest
    # channel rises only 0.18 above the board's, under POLARITY_CONTRAST, so the
    # light ink was taken for no ink at all and nothing was read. A pencil on
    # grey paper, as faint the other way, must keep its polarity.
    ink, bg = ((232, 228, 190), (150, 165, 186)) if light_ink else ((155,) * 3, (200,) * 3)
    rgb = paper(seven, 160, ink=ink, bg=bg)
    rgb = np.pad(rgb, ((80, 80), (80, 80), (0, 0)), mode="edge")  # a page around the digit
    im = pre.ink_map(rgb)
    assert im.inverted == light_ink
    got = pre.preprocess(rgb)
    assert got.box is not None
    ref = pre.preprocess(paper(seven, 160)).digit.astype(int)
    assert np.abs(got.digit.astype(int) - ref).mean() < 15


def test_ink_levels_are_the_float_ratio_rounded_down():
    # 8-bit ink = floor(255 * min(num / max(den, 0.15 * 255), 1)): rounding up
    # instead lifted faint printed patterns over the ink floor
    num = np.array([[1, 51, 100, 0, 200]], np.uint8)
    den = np.array([[2, 255, 50, 0, 250]], np.uint8)
    got = pre._ratio(num, den)
    assert got.dtype == np.uint8
    assert got.tolist() == [[6, 51, 255, 0, 204]]  # 6.67 -> 6 (den floored at 38.25); 510 -> 255


def test_faint_strokes_joined_to_strong_ones_are_kept():
    ink = np.zeros((60, 100), np.float32)
    ink[10:50, 20:24] = 0.9  # a strong stroke
    ink[28:32, 24:45] = 0.3  # a faint stroke touching it (a 4's arm, a pen lifting)
    ink[10:50, 70:74] = 0.3  # the same faint ink on its own: no stroke
    mask = pre._hysteresis(ink, 0.45)  # a threshold above the faint ink (as Otsu on a photo)
    assert mask[30, 30] and mask[30, 44] and mask[10:50, 20:24].all()
    assert not mask[:, 60:].any()
    assert mask.sum() == 40 * 4 + 4 * 21


def test_thin_pen_on_a_big_photo_is_thickened(seven):
    big = cv2.resize(seven, (600, 600), interpolation=cv2.INTER_CUBIC)
    skeleton = cv2.erode(
        (big > 127).astype(np.uint8), np.ones((3, 3)), iterations=20
    )  # a few px wide
    thin = np.where(skeleton > 0, 0, 255).astype(np.uint8)
    assert skeleton.sum() > 500
    assert pre.stroke_width(skeleton > 0) < 0.04 * 600
    d = pre.preprocess(thin).digit
    sw = pre.stroke_width(d > 127)
    assert sw >= 1.5  # MNIST strokes are about 2.2 px wide at 28x28


def test_digit_on_a_densely_printed_page_is_found(seven):
    """A check's printed pattern (faint marks, each just above the next) is no part of the
    digit: merged first, they had chained into one page-sized piece."""
    page = np.full((600, 600, 3), (214, 228, 218), np.uint8)
    for y in range(10, 600, 38):
        for x in range(10 + (y // 38 % 2) * 20, 600, 42):
            cv2.ellipse(page, (x, y), (14, 7), 30, 0, 360, (182, 198, 188), -1)
    big = cv2.resize(seven, (150, 150), interpolation=cv2.INTER_CUBIC)
    ink = (big > 100)[..., None]
    spot = page[220:370, 220:370]
    spot[:] = np.where(ink, np.array((40, 50, 170), np.uint8), spot)  # blue pen
    got = pre.preprocess(page)
    ys, xs = np.nonzero(big > 100)
    want = (220 + xs.min(), 220 + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert got.box is not None and pre._iou(got.box, want) > 0.8
    clean = pre.preprocess(np.where(ink, 0, 255).astype(np.uint8)[..., 0]).digit
    assert np.abs(got.digit.astype(int) - clean).mean() < 12  # the same model input


@pytest.mark.parametrize("pen", ["thicker", "broad"])
@pytest.mark.parametrize("light_ink", [False, True], ids=["dark-on-white", "light-on-black"])
@pytest.mark.parametrize("idx", [2, 5, 7], ids=["1", "1b", "9"])
def test_bold_strokes_cropped_tight_are_ink_through_and_through(mnist, pen, light_ink, idx):
    # a bold digit with a margin a tenth of its height: a fifth of the image
    # (the page's window) is no wider than its strokes, which stayed in the
    # page's closing as "paper", so only their outlines were ink (a 1 read 0)
    alpha = np.pad(synth.digit_alpha(mnist.test_images[idx], 100, synth.PENS[pen]), 12)
    img = (255 * (alpha if light_ink else 1 - alpha)).astype(np.uint8)
    im = pre.ink_map(np.dstack([img] * 3))
    assert im.inverted == light_ink
    core = alpha >= 0.99  # inside the strokes, off their anti-aliased edges
    assert (im.ink[core] >= 0.5).mean() > 0.95


def test_a_forms_box_sides_are_erased_and_a_1_inside_kept():
    # three boxes 60 px wide, 80 tall; a straight 1 (a bar 4 px wide, 50 tall)
    # in the middle one: the sides touch the rules at both ends, the 1 neither
    page = np.full((160, 300, 3), 250, np.uint8)
    for x0 in (60, 120, 180):
        cv2.rectangle(page, (x0, 40), (x0 + 60, 120), (60, 60, 60), 2)
    page[55:105, 148:152] = 30
    im = pre.ink_map(page)
    erased = pre.erase_frames(im)
    for x in (60, 120, 180, 240):  # the sides, through their middle rows
        assert im.ink[60:100, x].min() > 0.5 and erased.ink[60:100, x].max() == 0
    assert np.array_equal(erased.ink[55:105, 146:154], im.ink[55:105, 146:154])  # the 1
    assert erased.ink[40, 70:230].min() > 0.5  # the rules stay (binarize removes them)
    # a page without rules is left as it is, the same object
    plain = pre.ink_map(paper(np.pad(np.full((20, 4), 255, np.uint8), 4), 200))
    assert pre.erase_frames(plain) is plain


def _ruled_page(margin_note: bool = False, lean: int = 0) -> np.ndarray:
    """A notebook's page, 200x400: pale rules (too pale for the threshold), a
    margin line from the top edge (at x 40) to the bottom one (at x 40 +
    ``lean``), a 7 written beside it, and with ``margin_note`` a mark written
    in the margin."""
    page = np.full((200, 400, 3), 250, np.uint8)
    page[20::40] = (215, 225, 245)  # pale blue rules, 1 px
    if lean:
        cv2.line(page, (40, 0), (40 + lean, 199), (200, 90, 90), 2, cv2.LINE_AA)
    else:
        page[:, 40:42] = (200, 90, 90)  # the red margin line
    cv2.line(page, (150, 60), (210, 60), (40, 40, 130), 5)
    cv2.line(page, (210, 60), (175, 140), (40, 40, 130), 5)
    if margin_note:
        cv2.circle(page, (20, 100), 8, (40, 40, 130), 3)
    return page


def test_a_margin_line_standing_alone_is_erased_with_its_empty_strip():
    # where the rules are too pale for the threshold the margin line stood alone,
    # from edge to edge: a 1 before the number (42 of 200 ruled pages), and
    # erased alone, the rules' stubs beyond it were read as a 5
    im = pre.ink_map(_ruled_page())
    mask, _ = pre.binarize(im.ink)
    assert mask[:, 40:42].all()  # the line, in the mask from edge to edge
    erased = pre.erase_frames(im)
    assert erased.ink[:, :44].max() == 0  # the line and the strip beyond it
    assert np.array_equal(erased.ink[:, 60:], im.ink[:, 60:])  # the 7 and the rules beside it
    # a note in the margin keeps its strip, and so the line: erased alone, it
    # would leave the rules' stubs beyond it standing alone
    im = pre.ink_map(_ruled_page(margin_note=True))
    assert pre.erase_frames(im) is im
    # a margin line photographed askew (2 degrees)
    im = pre.ink_map(_ruled_page(lean=7))
    erased = pre.erase_frames(im)
    assert erased.ink[:, :40].max() == 0 and erased.ink[-1, :49].max() == 0
    assert np.array_equal(erased.ink[:, 60:], im.ink[:, 60:])
    # a 1 cropped tight runs from edge to edge too, with nothing else to read
    one = pre.ink_map(paper(np.pad(np.full((40, 4), 255, np.uint8), ((0, 0), (10, 10))), 100))
    assert pre.erase_frames(one) is one
    # and so is a 1 cropped tight before shorter digits (an amount, "1000"):
    # it was erased with the empty strip before it, and "1000" read "000"; a
    # margin line is far thinner for its length
    amount = np.full((53, 160, 3), 245, np.uint8)
    cv2.line(amount, (22, 0), (19, 52), (40, 40, 40), 3)
    for x in (60, 90, 120):
        cv2.circle(amount, (x, 38), 8, (40, 40, 40), 3)
    im = pre.ink_map(amount)
    assert pre.erase_frames(im) is im


@pytest.mark.parametrize(("seed", "angle"), [(11, 1.0), (11, -3.0), (14, 1.0)])
def test_a_ruled_pages_margin_photographed_askew_is_erased(mnist, seed, angle):
    # a degree or more askew, the pale margin line came out of Otsu's threshold
    # in dashes (seed 11, whose rules are paler still), or the tilted rules'
    # stubs in its strip kept it (seed 14, rules dark enough for the threshold
    # but in dashes too): it stayed, and on many pages read as a 1 or a 5
    # before the number (155 of 200 ruled pages read right at 1 degree, 179 at 3)
    page = synth.form(np.random.default_rng(seed), mnist.test_images, mnist.test_labels, "ruled")
    h, w = page.image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    im = pre.ink_map(cv2.warpAffine(page.image, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
    cell = int(1.4 * page.spec["height"])  # the digits' cells start here; the line is at cell / 2
    assert (im.ink[:, : int(0.8 * cell)] > im.otsu()).any()
    erased = pre.erase_frames(im)
    mask, _ = pre.binarize(erased.ink, thr=erased.otsu())
    assert not mask[:, : int(0.8 * cell)].any()  # the line and its strip
    assert np.array_equal(erased.ink[:, cell:], im.ink[:, cell:])  # the digits as they were


def _seven(page: np.ndarray, x: int, y: int, size: int) -> None:
    """A 7 drawn ``size`` px tall with its top-left corner at (x, y)."""
    cv2.line(page, (x, y), (x + size * 2 // 3, y), (40, 40, 130), 5)
    cv2.line(page, (x + size * 2 // 3, y), (x + size // 4, y + size), (40, 40, 130), 5)


@pytest.mark.parametrize("angle", [0.0, 4.0, -7.0, 10.0])
def test_boxes_drawn_around_single_digits_are_erased(angle):
    # one box around a 7, and three boxes apart with a 7 in each, the last
    # one's bar touching its box: no rule half the page wide, so the boxes were
    # left, read as 0s or as 1s beside the digits ("5" in a box read "151");
    # and the same photographed askew (past about 5 degrees a box's corner
    # takes a tenth of each edge off its side: the box is turned level first)
    page = np.full((300, 700, 3), 250, np.uint8)
    cv2.rectangle(page, (40, 100), (140, 220), (60, 60, 60), 3)
    _seven(page, 65, 125, 70)
    for x0 in (250, 400, 550):
        cv2.rectangle(page, (x0, 100), (x0 + 110, 220), (60, 60, 60), 2)
        _seven(page, x0 + 25, 125, 70)
    cv2.line(page, (552, 125), (580, 125), (40, 40, 130), 5)  # the bar to the side
    if angle:
        m = cv2.getRotationMatrix2D((350, 150), angle, 1.0)
        page = cv2.warpAffine(page, m, (700, 300), borderMode=cv2.BORDER_REPLICATE)
    im = pre.ink_map(page)
    erased = pre.erase_frames(im)
    if not angle:
        for x in (40, 140, 250, 360, 400, 510, 550, 660):  # the boxes' sides
            assert im.ink[150:200, x].max() > 0.5 and erased.ink[120:200, x].max() == 0
        for y in (100, 220):  # their tops and bottoms
            assert erased.ink[y, 40:141].max() == 0 and erased.ink[y, 250:661].max() == 0
    mask, _ = pre.binarize(erased.ink)
    comps = pre.connected_components(mask.view(np.uint8))
    big = comps.stats[1:][comps.stats[1:, 4] > 100]
    assert len(big) == 4 and (big[:, 3] < 90).all()  # four 7s, nothing box-sized


@pytest.mark.parametrize("angle", [0.0, 6.0])
@pytest.mark.parametrize(
    "shape",
    ["ellipse", "rounded", "filled", "open"],
    ids=["a 0", "a square 0 with round corners", "a filled square", "a box with a side missing"],
)
def test_shapes_that_are_no_box_are_left(shape, angle):
    page = np.full((300, 400, 3), 250, np.uint8)
    ink = (40, 40, 130)
    if shape == "ellipse":
        cv2.ellipse(page, (200, 150), (45, 70), 0, 0, 360, ink, 5)
    elif shape == "rounded":  # straight sides, but a hand's round corners
        for a, b in (((170, 80), (230, 80)), ((170, 220), (230, 220))):
            cv2.line(page, a, b, ink, 5)
        for a, b in (((140, 110), (140, 190)), ((260, 110), (260, 190))):
            cv2.line(page, a, b, ink, 5)
        for c, start in (((170, 110), 180), ((230, 110), 270), ((230, 190), 0), ((170, 190), 90)):
            cv2.ellipse(page, c, (30, 30), 0, start, start + 90, ink, 5)
    elif shape == "filled":
        cv2.rectangle(page, (150, 80), (250, 220), ink, -1)
    else:
        cv2.line(page, (150, 80), (250, 80), ink, 3)
        cv2.line(page, (150, 80), (150, 220), ink, 3)
        cv2.line(page, (150, 220), (250, 220), ink, 3)
    if angle:  # photographed askew: not turned level into a box either
        m = cv2.getRotationMatrix2D((200, 150), angle, 1.0)
        page = cv2.warpAffine(page, m, (400, 300), borderMode=cv2.BORDER_REPLICATE)
    im = pre.ink_map(page)
    assert pre.erase_frames(im) is im


def test_pen_strokes_that_fill_a_checks_field_are_no_frame():
    # an amount field's two rules, and three straight stems from the top rule to
    # the bottom one (a check's 1s and 7s written to fill the field), unevenly
    # spaced: as thin and straight as a box's sides, but no row of boxes
    page = np.full((100, 300, 3), 250, np.uint8)
    page[19:21], page[79:81] = 60, 60
    for x in (60, 100, 190):
        page[21:79, x : x + 5] = 30
    im = pre.ink_map(page)
    assert pre.erase_frames(im) is im


def _page_with_rule(angle: float) -> tuple[np.ndarray, float]:
    """A 300x600 page: a rule 500 px long at about ``angle`` degrees (falling to
    the right when positive) and a 7 written above it; and the rule's angle as
    drawn (its ends on whole pixels)."""
    page = np.full((300, 600, 3), 250, np.uint8)
    rise = round(np.tan(np.deg2rad(angle)) * 250)
    cv2.line(page, (50, 200 - rise), (550, 200 + rise), (60, 60, 60), 2, cv2.LINE_AA)
    cv2.line(page, (260, 90), (330, 90), (30, 30, 30), 6)
    cv2.line(page, (330, 90), (290, 185), (30, 30, 30), 6)
    return page, float(np.rad2deg(np.arctan2(2 * rise, 500)))


@pytest.mark.parametrize("angle", [-6.0, -1.0, 0.5, 3.0])
def test_deskew_levels_a_tilted_rule_and_maps_boxes_back(angle):
    # a photo of a form is seldom square to it: at a degree of tilt the rule
    # falls through 9 rows, no row holds half the image, and it stays in the mask
    page, drawn = _page_with_rule(angle)
    im = pre.ink_map(page)
    tilted, _ = pre.binarize(im.ink)
    assert tilted.sum(axis=1).max() < 300 and tilted.sum() > 700  # the rule, in pieces, kept
    level = pre.deskew(im)
    assert level.turn is not None and abs(level.turn.angle - drawn) < 0.02
    mask, _ = pre.binarize(level.ink)
    # the rule is gone (a speck of its end left); the 7 (its bar 70 px, its
    # stem about 100) is what is left
    assert mask.sum(axis=1).max() < 90 and 0 < mask.sum() < 1600
    # the 7's box in the turned page maps back around it in the original
    comps = pre.connected_components(mask.view(np.uint8))
    seven = 1 + int(np.argmax(comps.stats[1:, 4]))
    assert comps.stats[seven, 4] > mask.sum() - 10
    bx, by, bw, bh = level.to_original(tuple(int(v) for v in comps.stats[seven, :4]))
    # (the 7 spans x 257-333, y 87-188; the box around its turned box is wider
    # by its height times the sine, taller by its width times the sine)
    sin = abs(np.sin(np.deg2rad(angle)))
    assert bx <= 259 and bx + bw >= 331 and by <= 89 and by + bh >= 186
    assert bw <= 77 + 102 * sin + 4 and bh <= 102 + 77 * sin + 4


def test_fit_line_is_not_pulled_by_strokes_crossing_the_rule():
    # a rule 500 px long at 1.72 degrees, and a digit's strokes crossing it (300
    # pixels in a 40x24 block): least squares tilts to them by half a degree,
    # the robust fit (as cv2.fitLine's Huber fit: 0.05 degrees) hardly
    rng = np.random.default_rng(1)
    x = np.arange(0, 500, 0.5)
    y = 0.03 * x + 100 + rng.normal(0, 0.7, len(x))
    xs = np.r_[x, rng.uniform(100, 140, 300)]
    ys = np.r_[y, rng.uniform(100, 124, 300)]
    vx, vy, x0, y0 = pre._fit_line(xs, ys)
    assert vx > 0 and abs(np.hypot(vx, vy) - 1) < 1e-6
    assert abs(np.degrees(np.arctan2(vy, vx)) - np.degrees(np.arctan(0.03))) < 0.12
    assert abs(y0 - (0.03 * x0 + 100)) < 0.5  # the point lies on the rule
    slope = np.polyfit(xs, ys, 1)[0]  # plain least squares
    assert abs(np.degrees(np.arctan(slope) - np.arctan(0.03))) > 0.4


def test_pages_without_a_tilted_rule_are_not_turned():
    for angle in (
        0.0,  # level: found as it is
        0.1,  # within a pixel over its length (drawn level)
        15.0,  # steeper than a photo's tilt: a stroke, not a rule
    ):
        page, _ = _page_with_rule(angle)
        im = pre.ink_map(page)
        assert pre.deskew(im) is im
    # a filled band as wide as a rule, slightly tilted: no rule, however many
    # pixels lie along it
    band = np.full((300, 600, 3), 250, np.uint8)
    cv2.fillPoly(band, [np.array([[50, 120], [550, 140], [550, 200], [50, 180]])], (30, 30, 30))
    im = pre.ink_map(band)
    assert pre.deskew(im) is im
    plain = pre.ink_map(paper(np.pad(np.full((20, 4), 255, np.uint8), 4), 200))
    assert pre.deskew(plain) is plain


def test_a_form_askew_is_turned_to_erase_its_frame_and_a_lone_rule_is_not():
    # three boxes 80 px wide, photographed 3 degrees askew: turned level, their
    # sides are found and erased; a lone rule as askew leaves the page as it was
    page = np.full((200, 400, 3), 250, np.uint8)
    for x0 in (80, 160, 240):
        cv2.rectangle(page, (x0, 50), (x0 + 80, 150), (60, 60, 60), 3)
    m = cv2.getRotationMatrix2D((200, 100), 3.0, 1.0)
    askew = cv2.warpAffine(page, m, (400, 200), borderMode=cv2.BORDER_REPLICATE)
    im = pre.ink_map(askew)
    erased = pre.erase_frames(im)
    assert erased.turn is not None and abs(erased.turn.angle + 3.0) < 0.1
    mask, _ = pre.binarize(erased.ink)
    assert mask.sum() < 50  # rules removed, sides erased: (almost) no ink left
    lone, _ = _page_with_rule(3.0)
    im = pre.ink_map(lone)
    assert pre.deskew(im).turn is not None  # a rule to level ...
    assert pre.erase_frames(im) is im  # ... but no frame: the page stays as it was


def test_broad_marker_stroke_is_thinned_into_mnist_range():
    """A 1 drawn with a broad marker (stroke a quarter of its height) reads as a 0 unless
    thinned: MNIST strokes are 0.08-0.16 of the digit's box side."""
    soft = np.zeros((204, 204), np.float32)
    soft[2:202, 70:134] = 1.0  # a bar 200 tall, 64 wide: stroke width 0.24 of its side
    mask = soft > 0.5
    assert pre.stroke_width(mask) > 0.23 * 200
    thinned = pre.normalise_stroke(soft, mask) > 0.5
    assert 0.15 * 200 < pre.stroke_width(thinned) <= 0.2 * 200
    assert thinned.any(axis=1).sum() >= 0.9 * 200  # and keeps its length


def test_pen_redraws_strokes_at_the_asked_width():
    """``pen`` redraws a stroke at that share of the box side, thicker or thinner."""
    soft = np.zeros((204, 204), np.float32)
    soft[2:202, 90:114] = 1.0  # a bar 200 tall, 24 wide: 0.12 of its side
    mask = soft > 0.5
    for pen in pre.PENS:
        redrawn = pre.normalise_stroke(soft, mask, pen) > 0.5
        side = max(redrawn.shape)  # redrawn at PEN_SIDE: the same shape, smaller
        assert side == pre.PEN_SIDE
        assert abs(pre.stroke_width(redrawn) - pen * side) <= 1.5, pen
        assert redrawn.any(axis=1).sum() >= 0.9 * side  # and keeps its length


def test_pen_views_of_large_digits_only(seven):
    """A digit drawn large gets one redrawn view per pen; one under 2 * MNIST_BOX px, none."""
    pens = pre.preprocess(paper(seven, 200)).pen_views()
    assert pens.shape == (len(pre.PENS), 28, 28) and pens.dtype == np.uint8
    # the thinner pen's view holds less ink than the thicker pen's
    thin, thick = (int((v > 127).sum()) for v in pens)
    assert thin < thick
    assert pre.preprocess(paper(seven, 30)).pen_views().shape == (0, 28, 28)
    assert pre.preprocess(np.full((50, 50), 255, np.uint8)).pen_views().shape == (0, 28, 28)


def test_blank_page_has_no_digit():
    for blank in (np.full((300, 400, 3), 255, np.uint8), np.zeros((50, 50), np.uint8)):
        got = pre.preprocess(blank)
        assert got.box is None and got.digit.max() == 0
    noisy = np.clip(np.random.default_rng(0).normal(235, 6, (300, 400)), 0, 255).astype(np.uint8)
    assert pre.preprocess(noisy).box is None  # sensor noise is no ink


# --------------------------------------------------------------------------- properties

SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(
    st.integers(1, 120), st.integers(1, 120),
    st.sampled_from([np.uint8, np.uint16, np.float32, bool]), st.integers(0, 2**31 - 1),
)  # fmt: skip
@example(1, 50, np.uint8, 300)  # a margin "rule" one pixel long: no slope to fit (LinAlgError)
def test_output_is_always_28x28_in_range(h, w, dtype, seed):
    rng = np.random.default_rng(seed)
    arr = rng.random((h, w)) * (65535 if dtype == np.uint16 else 255 if dtype == np.uint8 else 1)
    out = pre.preprocess(arr.astype(dtype))
    assert out.digit.shape == (28, 28) and out.digit.dtype == np.uint8
    x = out.digit.astype(np.float32) / 255
    assert 0.0 <= x.min() and x.max() <= 1.0


@SLOW
@given(
    idx=st.integers(0, 199), dx=st.integers(-40, 40), dy=st.integers(-40, 40),
    scale=st.floats(0.6, 3.0), pad=st.integers(0, 120),
)  # fmt: skip
def test_shift_scale_pad_rarely_change_the_model_input(mnist, idx, dx, dy, scale, pad):
    digit = mnist.test_images[idx]
    ref = pre.preprocess(paper(digit, 150)).digit.astype(int)
    size = max(20, int(150 * scale))
    canvas = np.full((size + 2 * pad + 100, size + 2 * pad + 100, 3), 255, np.uint8)
    y0, x0 = 50 + pad + dy // 2, 50 + pad + dx // 2
    canvas[y0 : y0 + size, x0 : x0 + size] = paper(digit, size)
    got = pre.preprocess(canvas).digit.astype(int)
    # the same model input up to the one-pixel shift of MNIST's integer centring
    assert shift_tolerant_diff(got, ref) < 14


def shift_tolerant_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference, minimised over shifts of up to one pixel."""
    return min(
        float(np.abs(np.roll(np.roll(a, dy, 0), dx, 1) - b).mean())
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )
