"""The line model's side of reading: line views, CTC decoding and string probabilities."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inkdigits import preprocessing as pre
from inkdigits import segmentation as seg
from inkdigits import synth
from inkdigits.errors import ConfigError, ModelError
from inkdigits.line_data import WIDEST, lines_from_boxes, views_of
from inkdigits.line_training import Batches, augment, targets
from inkdigits.lines import (
    BLANK,
    FUSION,
    LINE_HEIGHT,
    STEP,
    TEXT_HEIGHT,
    LineModel,
    decode,
    line_view,
    single_digit_probabilities,
    string_probability,
)
from inkdigits.reader import _tempered, shipped_line_model


def steps(*labels: int, sure: float = 0.9) -> np.ndarray:
    """(T, 11) probabilities reading ``labels[t]`` at step t with probability ``sure``."""
    p = np.full((len(labels), BLANK + 1), (1 - sure) / BLANK)
    p[np.arange(len(labels)), labels] = sure
    return p


def test_decoding_collapses_repeats_and_keeps_digits_a_blank_separates():
    text, confs, at = decode(steps(BLANK, 1, 1, BLANK, 1, 0, 0, BLANK, 7))
    assert text == "1107"
    assert at == [1, 4, 5, 8]
    assert confs == pytest.approx([0.9] * 4)
    assert decode(steps(BLANK, BLANK)) == ("", [], [])


def test_string_probability_sums_every_alignment():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(BLANK + 1), size=4)
    for text in ["", "3", "33", "31", "313"]:
        brute = 0.0
        for path in itertools.product(range(BLANK + 1), repeat=len(probs)):
            kept = [k for i, k in enumerate(path) if k != BLANK and (i == 0 or path[i - 1] != k)]
            if "".join(map(str, kept)) == text:
                brute += float(np.prod(probs[np.arange(len(probs)), path]))
        assert string_probability(probs, text) == pytest.approx(brute, rel=1e-9), text


def test_single_digit_probabilities_are_the_one_digit_strings_probabilities():
    rng = np.random.default_rng(1)
    cases = [rng.dirichlet(np.ones(BLANK + 1), size=t) for t in (1, 2, 5, 40)]
    # a long, mostly blank line whose steps' product leaves float64's range
    # unless scaled as it goes: one 6 at step 150
    long = rng.dirichlet(np.ones(BLANK + 1) * 0.05, size=300) * 1e-3
    long[:, BLANK] += 1 - long.sum(axis=1)
    long[150] = steps(6, sure=0.7)[0]
    cases.append(long)
    for probs in cases:
        want = [string_probability(probs, str(k)) for k in range(10)]
        assert max(want) > 1e-200
        np.testing.assert_allclose(single_digit_probabilities(probs), want, rtol=1e-9)
    assert single_digit_probabilities(long).argmax() == 6
    sure = single_digit_probabilities(steps(BLANK, 4, 4, BLANK))
    assert sure.argmax() == 4 and sure[4] > 0.5 and sure[7] < 1e-3
    # two digits read: every one-digit reading is unlikely
    assert single_digit_probabilities(steps(BLANK, 4, BLANK, 7, BLANK)).max() < 0.05


def line_of(mnist, indices, height: int, angle: float) -> tuple[np.ndarray, list[seg.Piece]]:
    """MNIST test digits side by side, ``height`` px tall, turned by ``angle`` degrees."""
    glyphs = []
    for i in indices:
        d = mnist.test_images[i].astype(np.float32) / 255
        glyphs.append(cv2.resize(d, (height, height), interpolation=cv2.INTER_LINEAR))
    row = np.concatenate(glyphs, axis=1)
    canvas = np.zeros((row.shape[0] + 2 * height, row.shape[1] + 2 * height), np.float32)
    canvas[height:-height, height:-height] = row
    rot = cv2.getRotationMatrix2D((canvas.shape[1] / 2, canvas.shape[0] / 2), angle, 1.0)
    ink = cv2.warpAffine(canvas, rot, canvas.shape[::-1])
    mask, threshold = pre.binarize(ink)
    lines = seg.find_lines(mask, ink, threshold)
    assert len(lines) == 1
    return ink, lines[0]


@pytest.mark.parametrize("angle", [0.0, 8.0, -8.0])
def test_a_line_view_is_level_and_its_digits_text_height(mnist, angle):
    ink, line = line_of(mnist, range(6), 80, angle)
    view, geometry = line_view(ink, line)
    assert view.shape[0] == LINE_HEIGHT and view.shape[1] % STEP == 0
    assert view.dtype == np.float32 and 0.0 <= view.min() and 0.9 <= view.max() <= 1.0
    # the slant as measured: falling to the right is positive (image rows grow downwards)
    assert geometry.angle == pytest.approx(-angle, abs=2.0)
    # level: the ink's rows span about the digits' height, not the slanted line's
    rows = np.flatnonzero(view.max(axis=1) > 0.3)
    assert rows[-1] - rows[0] + 1 <= 1.25 * TEXT_HEIGHT
    # and all six digits are in it, none cut off at either end
    cols = np.flatnonzero(view.max(axis=0) > 0.3)
    assert cols[0] >= 2 and cols[-1] <= view.shape[1] - 3


def test_the_lines_of_a_boxes_dataset_skip_its_held_out_images(boxes_dataset):
    root, labels = boxes_dataset
    views, texts = lines_from_boxes(root)
    # four images kept (one 3-digit line each), the fifth is held out
    assert texts == ["".join(str(d) for d in labels[i : i + 3]) for i in range(0, 12, 3)]
    assert all(v.shape[0] == LINE_HEIGHT for v in views)


def test_reshuffled_lines_redraw_each_kept_image_s_own_digits_in_its_own_hand(boxes_dataset):
    from inkdigits.line_data import mixed_lines_from_boxes
    from inkdigits.reader import Reader

    root, labels = boxes_dataset
    views, texts = mixed_lines_from_boxes(root, per_image=5, seed=3)
    assert len(views) == len(texts) == 20  # 5 for each of the 4 kept images, none held out
    for k in range(4):
        own = {str(d) for d in labels[3 * k : 3 * k + 3]}
        for text in texts[5 * k : 5 * k + 5]:
            assert 2 <= len(text) <= 5 and set(text) <= own
    assert len(set(texts)) > 10  # new amounts, not the images' own over again
    assert texts != mixed_lines_from_boxes(root, per_image=5, seed=4)[1]
    again = mixed_lines_from_boxes(root, per_image=5, seed=3)
    assert again[1] == texts
    assert all(np.array_equal(a, b) for a, b in zip(again[0], views, strict=True))
    # each view shows its label's digits: the Reader reads (nearly) all of them so
    reader = Reader(line_model=False)
    read = [reader.read_number(np.uint8(255 - 255 * v)).number for v in views]
    pairs = list(zip(read, texts, strict=True))
    assert sum(r == t for r, t in pairs) >= 18, pairs


def test_line_model_trains_exports_and_reads_each_line_as_alone(run_cli, tmp_path, mnist_dir):
    lines = tmp_path / "lines.npz"
    code, out, _ = run_cli(
        "line-data", "--count", "64", "--seed", "0", "--out", str(lines),
        "--data-dir", str(mnist_dir),
    )  # fmt: skip
    assert code == 0 and "renders found as one line" in out
    run = tmp_path / "run"
    code, out, _ = run_cli(
        "train-line", "--data", str(lines), "--out", str(run), "--epochs", "1", "--augment",
        "--spike-count", "6", "--data-dir", str(mnist_dir),
    )  # fmt: skip
    assert code == 0, out
    card = json.loads((run / "card.json").read_text())
    # where it marks digits is measured on renders, or it says why not (one epoch
    # on 64 lines reads few numbers right)
    assert ("spike_offset" in card["input"]) != ("spike offset not measured" in out), out
    assert card["kind"] == "line" and card["onnx"]["parity_max_abs_diff"] < 1e-4
    assert card["training"]["augment"] is True
    # the card names its data by checksum as well as by path
    assert card["training"]["data_sha256"] == [hashlib.sha256(lines.read_bytes()).hexdigest()]
    model = LineModel(run / "model.onnx")
    with np.load(lines) as d:
        x, widths = d["x"], d["widths"]
    short, long = np.argmin(widths), np.argmax(widths)
    a = x[short, :, : widths[short]].astype(np.float32) / 255
    b = x[long, :, : widths[long]].astype(np.float32) / 255
    alone = model.probabilities([a])[0]
    together = model.probabilities([a, b])
    assert alone.shape == (a.shape[1] // STEP, BLANK + 1)
    assert together[1].shape == (b.shape[1] // STEP, BLANK + 1)
    assert np.allclose(alone.sum(axis=1), 1.0, atol=1e-5)
    # a line read beside a longer one reads exactly as alone (padding is not neutral)
    assert np.abs(together[0] - alone).max() < 1e-6
    # a line-rnn starts from this line-cnn and reads through the same loader
    rnn = tmp_path / "rnn"
    code, out, _ = run_cli(
        "train-line", "--data", str(lines), "--out", str(rnn), "--epochs", "1",
        "--architecture", "line-rnn", "--init-from", str(run / "best.keras"),
        "--fusion", "count_penalty=-3", "--spike-count", "0",
    )  # fmt: skip
    assert code == 0, out
    card = json.loads((rnn / "card.json").read_text())
    assert "spike_offset" not in card["input"] and LineModel(rnn / "model.onnx").spike_offset == 0
    assert card["architecture"] == "line-rnn" and card["onnx"]["parity_max_abs_diff"] < 1e-4
    rnn_model = LineModel(rnn / "model.onnx")
    assert rnn_model.probabilities([a])[0].shape == alone.shape
    # the fusion weight given goes into the card and the Reader's weights; the rest keep theirs
    assert card["fusion"] == {"count_penalty": -3.0}
    assert rnn_model.fusion == {**FUSION, "count_penalty": -3.0}
    assert "fusion" not in json.loads((run / "card.json").read_text())
    for bad, message in [("count_penalty", "give KEY=VALUE"), ("penalty=-3", "unknown fusion")]:
        code, _, err = run_cli(
            "train-line", "--data", str(lines), "--out", str(tmp_path / "bad"),
            "--fusion", bad,
        )  # fmt: skip
        assert code != 0 and message in err and not (tmp_path / "bad" / "card.json").exists()
    # a shipped line-cnn's ONNX file (the `checks` pair's) starts a line-cnn
    # where it is: one epoch at a tiny learning rate still reads the lines as it does
    shipped = Path(shipped_line_model("checks"))
    ft = tmp_path / "ft"
    code, out, _ = run_cli(
        "train-line", "--data", str(lines), "--out", str(ft), "--epochs", "1", "--lr", "1e-6",
        "--init-from", str(shipped), "--spike-count", "0",
    )  # fmt: skip
    assert code == 0, out
    assert json.loads((ft / "card.json").read_text())["training"]["init_from"] == str(shipped)
    views = [x[i, :, : widths[i]].astype(np.float32) / 255 for i in range(len(x))]
    both = zip(LineModel(ft / "model.onnx").probabilities(views),
               LineModel(shipped).probabilities(views), strict=True)  # fmt: skip
    same = [decode(p)[0] == decode(q)[0] for p, q in both]
    assert np.mean(same) >= 0.9
    # and a line-cnn cannot start from a line-rnn
    code, _, err = run_cli(
        "train-line", "--data", str(lines), "--out", str(tmp_path / "back"), "--epochs", "1",
        "--init-from", str(rnn / "best.keras"),
    )  # fmt: skip
    assert code != 0 and "a line-rnn cannot start a line-cnn" in err


def test_a_line_rnn_started_from_a_line_cnn_keeps_every_layer_below_its_lstm(tmp_path):
    from inkdigits.line_training import build, start_from

    cnn = build(seed=1)
    cnn.save(tmp_path / "cnn.keras")
    rnn = build(seed=2, architecture="line-rnn")
    fresh = [w.copy() for w in rnn.get_weights()]
    start_from(rnn, tmp_path / "cnn.keras")
    shared = len(cnn.get_weights()) - 2  # all but the output layer's kernel and bias
    for a, b in zip(cnn.get_weights()[:shared], rnn.get_weights()[:shared], strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(fresh[0], rnn.get_weights()[0])  # the first conv was copied
    # the LSTM and the output layer keep their own start
    for a, b in zip(fresh[shared:], rnn.get_weights()[shared:], strict=True):
        assert np.array_equal(a, b)


def rendered_views(mnist, seed: int, count: int) -> tuple[list[np.ndarray], list[str]]:
    """Line views of up to ``count`` rendered numbers found as one line, and their labels."""
    rng = np.random.default_rng(seed)
    views, labels = [], []
    for _ in range(count):
        s = synth.render(rng, mnist.test_images, mnist.test_labels, int(rng.integers(2, 8)))
        im = pre.ink_map(s.image)
        mask, _ = pre.binarize(im.ink)
        lines = seg.find_lines(mask, im.ink)
        if len(lines) == 1:
            views.append(line_view(im.ink, lines[0])[0])
            labels.append(s.label)
    return views, labels


def test_a_shipped_line_cnns_onnx_file_gives_back_its_weights(mnist):
    # the export folded each batch norm into its convolution and moved the 1-D
    # convolutions' and the output's biases after reshapes; imported back, the
    # Keras line-cnn computes what the ONNX file does
    from inkdigits.from_onnx import load_onnx_weights
    from inkdigits.line_training import build, start_from

    views, _ = rendered_views(mnist, 3, 12)
    assert len(views) >= 6
    x = np.zeros((len(views), 32, 256, 1), np.float32)
    for i, v in enumerate(views):
        x[i, :, : min(256, v.shape[1]), 0] = v[:, :256]
    shipped = LineModel(shipped_line_model("checks"))
    assert shipped.card["architecture"] == "line-cnn"
    net = build(seed=0)
    start_from(net, shipped.path, x)
    got = _tempered(np.asarray(net.predict(x, verbose=0)), 1.0)  # the softmax
    want = np.stack([shipped.session.run(None, {shipped.input_name: x[i : i + 1]})[0][0]
                     for i in range(len(x))])  # fmt: skip
    np.testing.assert_allclose(got, want, atol=1e-4)
    with pytest.raises(ConfigError, match="convolutions"):  # another architecture
        load_onnx_weights(shipped.path, build(seed=0, architecture="line-rnn"), x)
    with pytest.raises(ValueError, match="calibration"):
        start_from(build(seed=0), shipped.path)


def test_check_amounts_label_only_their_digits_and_say_where_they_are(mnist):
    rng = np.random.default_rng(4)
    images, labels = mnist.test_images, mnist.test_labels
    seen = set()
    for _ in range(40):
        n = int(rng.integers(1, 11))
        s = synth.render(rng, images, labels, n, height=40, check=True)
        style = s.spec["check"]
        seen |= set(style)
        # the marks ($, ticks, dashes, thousands marks) are drawn but not labelled
        assert s.label == "".join(str(labels[i]) for i in s.spec["mnist_test_indices"])
        assert len(s.label) == n == len(s.spec["digit_x"])
        assert s.label.endswith("0" * style.get("zeros", 0))
        assert s.spec["digit_x"] == sorted(s.spec["digit_x"])  # left to right, |angle| <= 10
        assert 0 < min(s.spec["digit_x"]) and max(s.spec["digit_x"]) < s.image.shape[1]
    assert seen == {"zeros", "small", "thousands", "tail", "lead"}


def test_a_render_whose_digits_the_lines_leave_out_gives_no_view(mnist):
    rng = np.random.default_rng(0)
    s = synth.render(rng, mnist.test_images, mnist.test_labels, 3, height=40, check=True,
                     background="white", rotation=0.0, blur=0.0, noise=0.0, jpeg=0)  # fmt: skip
    assert len(views_of(s.image, s.spec["digit_x"])) == 1
    # a digit centre beyond the ink found (a faint small 0 the reader dropped)
    assert views_of(s.image, [*s.spec["digit_x"], s.image.shape[1] - 2.0]) == []


def test_line_data_writes_check_amounts_and_refuses_a_share_outside_0_1(
    run_cli, tmp_path, mnist_dir
):
    out = tmp_path / "checks.npz"
    args = ["line-data", "--count", "6", "--seed", "1", "--out", out, "--data-dir", mnist_dir]
    code, stdout, _ = run_cli(*args, "--check", "1")
    assert code == 0 and "renders found as one line" in stdout
    with np.load(out) as d:
        assert len(d["labels"]) >= 4 and all(t.isdigit() for t in d["labels"])
    code, _, err = run_cli(*args, "--check", "1.5")
    assert code != 0 and "must lie in [0, 1]" in err
    code, _, err = run_cli(*args, "--mix", "3")
    assert code != 0 and "give --boxes DIR" in err


def test_line_data_draws_every_number_with_the_pen_it_is_asked_for(mnist):
    from inkdigits.cli import build_parser
    from inkdigits.line_data import rendered_lines

    def lines(pen: str) -> tuple[list[np.ndarray], list[str]]:
        return rendered_lines(mnist.test_images, mnist.test_labels, 8, seed=5, pen=pen)

    thin, broad = lines("thin"), lines("broad")
    # the same numbers (the pen is the only choice forced), written with each pen
    assert thin[1] == broad[1] and len(thin[1]) >= 6
    for t, b in zip(thin[0], broad[0], strict=True):
        # at one text height, a broad pen's strokes cover more of the view
        assert (b > 0.5).sum() > 1.4 * (t > 0.5).sum()
    with pytest.raises(ConfigError, match="unknown pen"):
        rendered_lines(mnist.test_images, mnist.test_labels, 2, seed=5, pen="felt")
    with pytest.raises(ConfigError, match="must be over 40 px"):  # a pen shows from 40 px
        rendered_lines(mnist.test_images, mnist.test_labels, 2, seed=5, pen="thin", tallest=40)
    # the command line offers the generator's pens (named there, not imported: cold start)
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    (pen,) = [a for a in sub.choices["line-data"]._actions if a.dest == "pen"]
    assert pen.choices == list(synth.PENS)


def test_line_data_mix_writes_reshuffled_lines_of_a_boxes_dataset(run_cli, boxes_dataset):
    root, _ = boxes_dataset
    out = root / "mix.npz"
    code, stdout, _ = run_cli("line-data", "--boxes", str(root), "--mix", "2", "--out", str(out))
    assert code == 0 and "8 reshuffled lines" in stdout
    with np.load(out) as d:
        assert len(d["labels"]) == 8 and d["x"].shape[1] == LINE_HEIGHT


def test_line_data_writes_numbers_with_the_digits_it_is_given(run_cli, tmp_path, mnist):
    from inkdigits.extra import save_crops

    crops = tmp_path / "crops.npz"
    sevens = mnist.test_images[mnist.test_labels == 7][:30]
    save_crops(crops, sevens, np.full(len(sevens), 7, np.uint8))
    out = tmp_path / "lines.npz"
    args = ["line-data", "--count", "8", "--seed", "2", "--out", out, "--digits", crops]
    code, stdout, _ = run_cli(*args)
    assert code == 0 and "renders found as one line" in stdout
    with np.load(out) as d:  # every number is written with the crops: all 7s
        assert len(d["labels"]) >= 6 and all(set(t) == {"7"} for t in d["labels"])
    code, _, err = run_cli(*args, "--boxes", tmp_path)
    assert code != 0 and "do not go together" in err
    code, _, err = run_cli(*args[:-1], tmp_path / "none.npz")
    assert code != 0 and "no such file" in err


def test_a_line_cropped_tight_to_its_ink_gets_the_same_view_as_on_a_page(mnist):
    # ORAND's amounts are cut out tightly: the first digit can touch the image's
    # edge. The view adds the blank margin the line model saw around every
    # training line (without it, the model dropped first digits).
    ink, line = line_of(mnist, range(5), 60, 0.0)
    x0, y0, x1, y1 = seg.extent(line)
    tight = np.ascontiguousarray(ink[y0:y1, x0:x1])
    mask, threshold = pre.binarize(tight)
    lines = seg.find_lines(mask, tight, threshold)
    assert len(lines) == 1
    page, _ = line_view(ink, line)
    cropped, geometry = line_view(tight, lines[0])
    assert abs(cropped.shape[1] - page.shape[1]) <= STEP
    ours = np.flatnonzero(cropped.max(axis=0) > 0.3)
    theirs = np.flatnonzero(page.max(axis=0) > 0.3)
    # the same blank margin (0.6 digit heights, 13 columns) before and after the ink
    assert ours[0] >= 0.5 * TEXT_HEIGHT and abs(ours[0] - theirs[0]) <= 2
    assert abs((cropped.shape[1] - ours[-1]) - (page.shape[1] - theirs[-1])) <= STEP + 2
    # columns still map to the image: the margin lies left of its first column
    assert geometry.x0 < 0


def test_augmented_lines_keep_every_digit_in_view_and_differ_each_time(mnist):
    # a line of ten MNIST digits, about 350 px wide: near the widest a view is stored
    view = np.zeros((LINE_HEIGHT, WIDEST), np.uint8)
    for k in range(10):
        view[2:30, 16 + 34 * k : 44 + 34 * k] |= mnist.test_images[k]
    ink = np.flatnonzero(view.max(axis=0) > 0)
    width = int(ink[-1]) + 1  # cropped to the ink on the right: the hardest case
    rng = np.random.default_rng(0)
    widths = []
    for _ in range(200):
        out, w = augment(view, width, rng)
        assert out.shape == view.shape and out.dtype == np.uint8
        columns = np.flatnonzero(out.max(axis=0) > 0)
        # no ink pushed out of the stored view nor right of the width the batch pads to
        assert columns[-1] < min(w, WIDEST - 1)
        # restretched, not cut: the ink spans 0.8-1.2 times as far, and thinning keeps it
        span = (columns[-1] - columns[0]) / (ink[-1] - ink[0])
        assert 0.75 < span < 1.25 and 0.3 < out.sum() / view.sum() < 2.2
        widths.append(w)
    assert min(widths) < 0.9 * width and max(widths) >= WIDEST - 2  # stretched both ways
    a = Batches(view[None], np.array([width]), targets(np.array(["0123456789"])), 1, True, 5, True)
    b = Batches(view[None], np.array([width]), targets(np.array(["0123456789"])), 1, True, 5, True)
    plain = Batches(view[None], np.array([width]), targets(np.array(["0123456789"])), 1, True)
    first, again = a[0][0], a[0][0]
    n = min(first.shape[2], again.shape[2])
    assert np.abs(first[:, :, :n] - again[:, :, :n]).max() > 0.1  # a new draw each use
    assert np.array_equal(first, b[0][0])  # the same seed draws the same lines
    # without augment the ink stays where it is (only its strength varies)
    x = plain[0][0]
    assert x.shape[2] == 352 and np.array_equal(x[0, :, :, 0] > 0, view[:, : x.shape[2]] > 0)


def test_the_shipped_line_models_card_says_where_it_marks_digits(mnist):
    from inkdigits.line_data import spike_offset

    model = LineModel()
    measured = spike_offset(model, mnist.train_images, mnist.train_labels, count=40, seed=7)
    # about 3.5 steps left of each digit's centre; the card holds what 300 renders measured
    assert model.spike_offset < -2
    assert abs(measured - model.spike_offset) < 0.5


def test_boxes_where_the_line_model_reads_hold_their_digits(mnist):
    from inkdigits.reader import Reader

    reader = Reader(min_confidence=0.0)
    rng = np.random.default_rng(11)
    held = total = 0
    for _ in range(12):
        n = int(rng.integers(3, 8))
        sample = synth.render(rng, mnist.test_images, mnist.test_labels, n, spacing="close")
        im, raw, _ = reader.find_digits(sample.image)
        if len(raw) != 1:
            continue
        view, geometry = line_view(im.ink, raw[0])
        probs = reader.line_model.probabilities([view])[0]
        text, _, marks = decode(probs)
        if len(text) != n:
            continue
        row = reader._line_digits(raw[0], marks, probs[:, :BLANK], geometry, im, None)
        for d, x in zip(row, sample.spec["digit_x"], strict=True):
            held += d.box[0] <= x <= d.box[0] + d.box[2]
            total += 1
    # without the model's spike offset the boxes sat 0.6 of a digit to the left
    assert total >= 30 and held >= 0.95 * total, (held, total)


def test_joined_line_models_read_each_step_with_their_probabilities_multiplied(
    run_cli, tmp_path, mnist
):
    from inkdigits.line_ensemble import geometric_mean
    from inkdigits.line_training import build, start_from

    default, checks = LineModel(), LineModel(shipped_line_model("checks"))
    out = tmp_path / "joint"
    code, text, err = run_cli(
        "line-ensemble", str(checks.path), str(default.path), "--weights", "2", "1",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    joint = LineModel(out / "model.onnx")
    views, labels = rendered_views(mnist, 5, 16)
    assert len(views) >= 8
    got = joint.probabilities(views)
    want = [
        geometric_mean([p, q], [2 / 3, 1 / 3])
        for p, q in zip(checks.probabilities(views), default.probabilities(views), strict=True)
    ]
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and np.abs(g - w).max() < 1e-5
        assert np.allclose(g.sum(axis=1), 1.0, atol=1e-5)
    # it reads the numbers (the product is no blur of two readings)
    read = [decode(p)[0] for p in got]
    assert np.mean([r == t for r, t in zip(read, labels, strict=True)]) >= 0.8, (read, labels)
    card = joint.card
    assert card["architecture"] == "line-ensemble"
    assert card["ensemble"]["weights"] == pytest.approx([2 / 3, 1 / 3])
    members = card["ensemble"]["members"]
    assert [m["sha256"] for m in members] == [
        hashlib.sha256(Path(m.path).read_bytes()).hexdigest() for m in (checks, default)
    ]
    offset = (2 * checks.spike_offset + default.spike_offset) / 3
    assert joint.spike_offset == pytest.approx(offset, abs=0.01)
    # the first member's fusion weights are the joint model's unless given
    assert card["fusion"] == checks.card["fusion"] and joint.fusion == checks.fusion
    # `train-line --init-from` the joint file starts a line-cnn from its line-cnn
    # member (here the `checks` one), a line-rnn from none (it has no line-rnn)
    x = np.zeros((len(views), LINE_HEIGHT, 256, 1), np.float32)
    for i, v in enumerate(views):
        x[i, :, : min(256, v.shape[1]), 0] = v[:, :256]
    net = build(seed=0)
    start_from(net, out / "model.onnx", x)
    got = _tempered(np.asarray(net.predict(x, verbose=0)), 1.0)
    want = np.concatenate([checks.session.run(None, {checks.input_name: x[i : i + 1]})[0]
                           for i in range(len(x))])  # fmt: skip
    np.testing.assert_allclose(got, want, atol=1e-4)
    with pytest.raises(ModelError, match="no line-rnn among its members"):
        start_from(build(seed=0, architecture="line-rnn"), out / "model.onnx", x)

    # models that mark digits at different steps are not multiplied, nor is one model
    late = tmp_path / "late"
    late.mkdir()
    (late / "model.onnx").write_bytes(Path(checks.path).read_bytes())
    late_card = dict(checks.card, input={**checks.card["input"], "spike_offset": 0.5})
    (late / "card.json").write_text(json.dumps(late_card))
    bad = tmp_path / "bad"
    for models, extra, message in [
        ([checks.path, late / "model.onnx"], [], "different steps"),
        ([checks.path], [], "at least two"),
        ([checks.path, default.path], ["--weights", "1"], "1 weights for 2"),
        ([checks.path, default.path], ["--fusion", "penalty=-3"], "unknown fusion"),
        ([late / "model.onnx", default.path], [], "would overwrite"),
    ]:
        where = late if message == "would overwrite" else bad
        code, _, err = run_cli(
            "line-ensemble", *map(str, models), *extra, "--out", str(where)
        )  # fmt: skip
        assert code != 0 and message in err, err
        assert not (bad / "model.onnx").exists()
    assert (late / "model.onnx").read_bytes() == Path(checks.path).read_bytes()
