"""Extra labelled digits: crops cut by the reading pipeline, held-out share, fine-tuning."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import SMOKE

from inkdigits import extra
from inkdigits.errors import ConfigError, DataError, ModelError


def test_held_out_share_is_about_30_percent_and_fixed():
    names = [f"images/a_car_{i:06d}.jpg" for i in range(2000)]
    share = np.mean([extra.held_out(n) for n in names])
    assert 0.27 < share < 0.33
    assert extra.held_out("images/a_car_000155.jpg") == extra.held_out("images/a_car_000155.jpg")


def test_crops_follow_the_boxes_and_skip_the_held_out_images(boxes_dataset):
    from inkdigits.reader import Reader

    root, labels = boxes_dataset
    images, got, files = extra.crops_from_boxes(root)
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(got, labels[:12])  # the held-out image (last) is left out
    assert len(set(files)) == 4
    # the crops look like what the model reads: it reads nearly all of them right
    assert (Reader().classify(images).argmax(1) == got).mean() >= 11 / 12
    everything, _, _ = extra.crops_from_boxes(root, include_held_out=True)
    assert len(everything) == 15


@pytest.mark.parametrize("bad", ["x", 12, None])
def test_a_boxes_label_that_is_no_digit_is_a_clear_error(boxes_dataset, bad):
    import json

    from inkdigits.line_data import lines_from_boxes

    root, _ = boxes_dataset
    entries = json.loads((root / "boxes.json").read_text())
    first = sorted(n for n in entries if not extra.held_out(n))[0]
    entries[first]["digits"][1]["digit"] = bad
    (root / "boxes.json").write_text(json.dumps(entries))
    for make in (extra.crops_from_boxes, lines_from_boxes):
        with pytest.raises(DataError, match=f"{first}: digit label {bad!r} is not 0-9"):
            make(root)


def test_crops_round_trip_and_bad_files(tmp_path):
    images = np.zeros((3, 28, 28), np.uint8)
    labels = np.array([1, 2, 3], np.uint8)
    extra.save_crops(tmp_path / "c.npz", images, labels)
    got_i, got_l = extra.load_crops(tmp_path / "c.npz")
    np.testing.assert_array_equal(got_l, labels)
    assert got_i.shape == (3, 28, 28)
    with pytest.raises(DataError, match="no such file"):
        extra.load_crops(tmp_path / "none.npz")
    np.savez(tmp_path / "float.npz", images=images.astype(np.float32), labels=labels)
    with pytest.raises(DataError, match="images must be uint8"):
        extra.load_crops(tmp_path / "float.npz")
    np.savez(tmp_path / "labels.npz", images=images, labels=np.array([1, 2, 12]))
    with pytest.raises(DataError, match="labels must be N digits 0-9"):
        extra.load_crops(tmp_path / "labels.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="not an .npz"):
        extra.load_crops(tmp_path / "junk.npz")
    with pytest.raises(DataError, match="no boxes.json"):
        extra.crops_from_boxes(tmp_path)


def test_crops_cli(run_cli, boxes_dataset, tmp_path):
    root, _ = boxes_dataset
    code, out, err = run_cli("crops", root, "--out", tmp_path / "crops.npz")
    assert code == 0, err
    assert out.startswith("12 digits from 4 images")
    assert extra.load_crops(tmp_path / "crops.npz")[0].shape == (12, 28, 28)


def test_rendered_digits_come_from_the_given_digits_and_do_not_depend_on_workers(
    mnist, monkeypatch
):
    from inkdigits.reader import Reader

    monkeypatch.setattr(extra, "RENDER_CHUNK", 4)  # 10 renders: 3 seeded chunks
    pick = np.isin(mnist.train_labels, [3, 7])
    images, labels = mnist.train_images[pick][:200], mnist.train_labels[pick][:200]
    one, y1 = extra.rendered_digits(images, labels, 10, seed=5, workers=1)
    two, y2 = extra.rendered_digits(images, labels, 10, seed=5, workers=2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(y1, y2)
    assert one.shape[1:] == (28, 28) and one.dtype == np.uint8 and len(one) >= 9
    assert set(y1.tolist()) <= {3, 7}
    assert len(set(y1.tolist())) == 2  # both digits drawn: the seed picks them, not a constant
    # rendered as photos, then cut out by the reader: it reads them as the digits they are
    assert (Reader().classify(one).argmax(1) == y1).mean() >= 0.8
    other, _ = extra.rendered_digits(images, labels, 10, seed=6)
    assert not np.array_equal(other, one)
    with pytest.raises(ConfigError, match="count must be at least 1"):
        extra.rendered_digits(images, labels, 0, seed=5)


def test_rendered_digits_force_what_draw_returns_on_every_render(mnist, monkeypatch):
    from inkdigits import synth

    seen = []

    def recording(rng, images, labels, n_digits=1, **force):
        seen.append(force)
        return render(rng, images, labels, n_digits, **force)

    render = synth.render
    monkeypatch.setattr(synth, "render", recording)  # workers=1: read in this process
    images, labels = mnist.train_images[:50], mnist.train_labels[:50]

    def draw(rng):
        return {"height": int(rng.integers(20, 30)), "stroke": -1.0}

    got, _ = extra.rendered_digits(images, labels, 3, seed=2, workers=1, draw=draw)
    assert len(seen) == 3 and len(got) == 3
    assert all(f["stroke"] == -1.0 and 20 <= f["height"] < 30 for f in seen)
    assert len({f["height"] for f in seen}) > 1  # drawn from each render's generator
    seen.clear()
    extra.rendered_digits(images, labels, 2, seed=2, workers=1)
    assert seen == [{}, {}]  # without draw, nothing is forced
    with pytest.raises(ConfigError, match="single-digit renders"):
        extra.rendered_digits(images, labels, 2, seed=2, numbers=True, draw=draw)


def test_number_digits_are_labelled_in_reading_order_and_only_when_all_are_found(
    mnist, monkeypatch
):
    from inkdigits import segmentation as seg
    from inkdigits.reader import Reader

    monkeypatch.setattr(extra, "RENDER_CHUNK", 3)  # 7 numbers: 3 seeded chunks
    pick = np.isin(mnist.train_labels, [3, 7])
    images, labels = mnist.train_images[pick][:300], mnist.train_labels[pick][:300]
    one, y1 = extra.rendered_digits(images, labels, 7, seed=4, workers=1, numbers=True)
    two, y2 = extra.rendered_digits(images, labels, 7, seed=4, workers=2, numbers=True)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(y1, y2)
    assert one.shape[1:] == (28, 28) and one.dtype == np.uint8 and len(one) == len(y1)
    assert len(one) >= 14  # 2-10 digits per number, most numbers found whole
    assert set(y1.tolist()) == {3, 7}
    # each crop carries its own digit's label: labels shifted or reversed would
    # agree with the reader on about half of them
    assert (Reader().classify(one).argmax(1) == y1).mean() >= 0.9

    found = seg.find_digits

    def one_missed(*args, **kwargs):
        lines, digits = found(*args, **kwargs)
        return lines, [(i, line[1:]) for i, line in digits]

    monkeypatch.setattr(seg, "find_digits", one_missed)
    none, y = extra.rendered_digits(images, labels, 3, seed=4, numbers=True)
    assert none.shape == (0, 28, 28) and len(y) == 0  # a digit missed: no label is sure


def test_render_digits_cli_writes_extra_digits(run_cli, mnist_dir, tmp_path):
    out = tmp_path / "rendered.npz"
    code, stdout, err = run_cli(
        "render-digits", "--count", "4", "--seed", "1", "--out", out, "--data-dir", mnist_dir
    )
    assert code == 0, err
    assert stdout.startswith(("4 of 4 renders read", "3 of 4 renders read"))
    images, labels = extra.load_crops(out)
    assert images.shape[1:] == (28, 28) and len(images) == len(labels)
    code, _, err = run_cli("render-digits", "--count", "0", "--out", out)
    assert code == 2 and "--count" in err
    code, stdout, err = run_cli(
        "render-digits", "--numbers", "--count", "3", "--seed", "1", "--out", out,
        "--data-dir", mnist_dir,
    )  # fmt: skip
    assert code == 0, err
    images, labels = extra.load_crops(out)
    assert stdout.startswith(f"{len(images)} digits cut from 3 renders") and len(images) >= 4


@pytest.mark.parametrize("command", ["render-digits", "crops"])
def test_unwritable_output_is_refused_before_any_work(run_cli, tmp_path, command, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(extra, "rendered_digits", no_work)
    monkeypatch.setattr(extra, "crops_from_boxes", no_work)
    (tmp_path / "file").write_text("not a folder")
    args = [command] + ([str(tmp_path)] if command == "crops" else [])
    for out, message in [(tmp_path / "file" / "x.npz", "cannot write"), (tmp_path, "is a folder")]:
        code, _, err = run_cli(*args, "--out", out)
        assert code == 1 and message in err, err
        assert "internal error" not in err


def test_fine_tune_with_extra_digits(smoke_run, boxes_dataset, tmp_path, mnist_dir):
    from inkdigits import training
    from inkdigits.config import TrainConfig

    base_run, base_card = smoke_run
    root, _ = boxes_dataset
    images, labels, _ = extra.crops_from_boxes(root)
    extra.save_crops(tmp_path / "crops.npz", images, labels)
    cfg = TrainConfig(
        **{**SMOKE, "train_subset": 500, "lr": 1e-3},
        data_dir=str(mnist_dir),
        precision="float32",
        extra_digits=str(tmp_path / "crops.npz"),
        extra_repeat=3,
        init_from=str(base_run / "best.keras"),
    )
    log = io.StringIO()
    card = training.train(cfg, tmp_path / "ft", stream=log).card
    assert "train images 536" in log.getvalue()  # 500 MNIST + 3 x 12 crops
    record = card["data"]["extra_digits"]
    assert record["images"] == 12 and record["repeat"] == 3
    assert record["sha256"] == extra.file_sha256(tmp_path / "crops.npz")
    assert card["training"]["config"]["init_from"].endswith("best.keras")
    # started from the smoke model, so one short epoch keeps it a working classifier
    assert card["metrics"]["test_accuracy"] > 0.9
    assert card["metrics"]["test_accuracy"] > base_card["metrics"]["test_accuracy"] - 0.03


def test_init_from_another_architecture_is_refused(smoke_run, tmp_path, mnist_dir):
    from inkdigits import training
    from inkdigits.config import TrainConfig

    base_run, _ = smoke_run  # a fast-cnn
    cfg = TrainConfig(
        **{**SMOKE, "model": "lenet5"},
        data_dir=str(mnist_dir),
        init_from=str(base_run / "best.keras"),
    )
    with pytest.raises(ConfigError, match="do not fit lenet5"):
        training.train(cfg, tmp_path / "bad", stream=io.StringIO())


def test_several_extra_digit_files_each_with_its_repeat(tmp_path, mnist_dir, monkeypatch, run_cli):
    from inkdigits import models, segment_data, training
    from inkdigits.config import TrainConfig

    rng = np.random.default_rng(0)
    files = []
    for i, n in enumerate((5, 7)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        files.append(str(tmp_path / f"x{i}.npz"))
        extra.save_crops(files[-1], images, np.full(n, i + 1, np.uint8))
    cfg = TrainConfig(train_subset=100, data_dir=str(mnist_dir), extra_digits=files,
                      extra_repeat=[1, 3])  # fmt: skip
    cfg.validate()
    s = training.load_splits(cfg)
    assert len(s.y_train) == 100 + 5 + 3 * 7
    assert (s.y_train[100:] == 1).sum() == 5 and (s.y_train[100:] == 2).sum() == 21
    assert len(training._extra_record(cfg)) == 2
    # one repeat for all files
    cfg.extra_repeat = 2
    assert len(training.load_splits(cfg).y_train) == 100 + 2 * 12
    with pytest.raises(ConfigError, match="one extra repeat for every"):
        TrainConfig(extra_digits=files, extra_repeat=[1, 2, 3]).validate()
    TrainConfig(extra_digits=files, extra_repeat=[2]).validate()  # one for all, as a list
    with pytest.raises(ConfigError, match="extra repeat must be >= 1"):
        TrainConfig(extra_digits=files, extra_repeat=[1, 0]).validate()
    code, _, err = run_cli("train", "--extra-digits", *files, "--extra-repeat", "1", "2", "3",
                           "--out", str(tmp_path / "never"))  # fmt: skip
    assert code == 1 and "one extra repeat for every" in err
    assert not (tmp_path / "never").exists()

    # a model that learns from segments draws its lines from the extra digits too,
    # rather than taking them as they are
    seen = {}

    def fake_segments(splits, seed, lines):
        seen["x_train"] = splits.x_train
        return splits

    monkeypatch.setattr(segment_data, "segment_splits", fake_segments)
    cfg = TrainConfig(model="whole-cnn", data_dir=str(mnist_dir), extra_digits=files[0])
    s = training.load_splits(cfg)
    assert len(seen["x_train"]) == len(s.x_train) == 55000 + 5
    assert "extra digits join" in training._data_name(cfg, models.get_spec("whole-cnn"))


def test_onnx_weights_give_back_the_shipped_model(mnist):
    # the export folded each batch norm into its convolution; unfolded from data
    # again, the Keras model computes what the ONNX file does
    from inkdigits import models
    from inkdigits.classifier import Classifier, shipped_model_path
    from inkdigits.from_onnx import load_onnx_weights

    path = shipped_model_path("float32")
    net = models.build("inkdigits-cnn")
    load_onnx_weights(path, net, mnist.train_images[:512, ..., None].astype(np.float32) / 255)
    x = mnist.test_images[:500, ..., None].astype(np.float32) / 255
    want = Classifier(path).predict_raw(x)
    np.testing.assert_allclose(net.predict(x, verbose=0), want, atol=1e-4)
    # in training mode (batch statistics) it starts where the shipped model is
    agree = (net(x, training=True).numpy().argmax(1) == want.argmax(1)).mean()
    assert agree >= 0.99
    with pytest.raises(ConfigError, match="int8"):
        load_onnx_weights(shipped_model_path("int8"), models.build("inkdigits-cnn"), x)
    with pytest.raises(ConfigError, match="convolutions"):
        load_onnx_weights(path, models.build("fast-cnn"), x)


def test_fine_tune_from_an_onnx_file(smoke_run, tmp_path, mnist_dir):
    from inkdigits import training
    from inkdigits.config import TrainConfig

    base_run, base_card = smoke_run  # a fast-cnn: batch norm, a hidden dense layer, the head
    cfg = TrainConfig(
        **{**SMOKE, "train_subset": 500, "lr": 1e-3},
        data_dir=str(mnist_dir),
        precision="float32",
        init_from=str(base_run / "model.onnx"),
    )
    card = training.train(cfg, tmp_path / "ft", stream=io.StringIO()).card
    assert card["training"]["config"]["init_from"].endswith("model.onnx")
    # from scratch, one epoch on 500 images reads well under 90%
    assert card["metrics"]["test_accuracy"] > base_card["metrics"]["test_accuracy"] - 0.03
    missing = TrainConfig(**SMOKE, data_dir=str(mnist_dir), init_from=str(tmp_path / "no.onnx"))
    with pytest.raises(ModelError, match="no such file"):
        training.train(missing, tmp_path / "missing", stream=io.StringIO())
