"""Distillation: views and soft targets, per-epoch batches, a run that resumes, CLI errors."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from conftest import SMOKE
from test_training import StopAfterFirstEpoch

from inkdigits import distill, training
from inkdigits.classifier import apply_temperature, run_onnx, shipped_model_path
from inkdigits.config import TrainConfig

TEACHER = shipped_model_path("float32")
WHOLE = TEACHER.parent / "whole" / "model.onnx"  # 11 outputs: not a digit model


def test_teacher_targets_average_the_teachers_then_soften(mnist):
    int8 = shipped_model_path("int8")
    # the two teachers (float32 and int8) agree closely; take the digits where they differ most
    x = mnist.test_images[:2000, ..., None].astype(np.float32) / 255.0
    gap = np.abs(run_onnx(TEACHER, x) - run_onnx(int8, x)).max(1)
    pick = np.argsort(gap)[-64:]
    views, x = mnist.test_images[None, pick], x[pick]
    p = run_onnx(TEACHER, x)
    one = distill.teacher_targets(views, [str(TEACHER)], 1.0)
    assert one.shape == (1, 64, 10) and one.dtype == np.float16
    np.testing.assert_allclose(one[0], p, atol=1e-3)
    mean = (p + run_onnx(int8, x)) / 2
    assert np.abs(mean - p).max() > 1e-3  # the two teachers differ
    two = distill.teacher_targets(views, [str(TEACHER), str(int8)], 2.0)
    np.testing.assert_allclose(two[0], apply_temperature(mean, 2.0), atol=1e-3)
    assert (two[0].argmax(1) == mean.argmax(1)).all()
    assert two[0].max(1).mean() < one[0].max(1).mean()  # softer, same answers


def test_views_are_augmented_copies_the_teacher_still_reads(mnist):
    x = mnist.test_images[:200, ..., None].astype(np.float32) / 255.0
    cfg = TrainConfig(seed=3, warp=1.0, stroke=0.5, elastic=0.5)
    views = distill.make_views(x, cfg, 2)
    assert views.shape == (2, 200, 28, 28) and views.dtype == np.uint8
    assert not np.array_equal(views[0], views[1])  # each view its own warp
    assert np.abs(views[0].astype(int) - mnist.test_images[:200]).mean() > 5  # really warped
    np.testing.assert_array_equal(views, distill.make_views(x, cfg, 2))  # seeded
    t = distill.teacher_targets(views, [str(TEACHER)], 2.0)
    assert (t.argmax(-1) == mnist.test_labels[None, :200]).mean() > 0.97  # still the same digits


def test_view_batches_show_every_image_once_per_epoch_through_one_view():
    k, n = 3, 50
    views = np.zeros((k, n, 28, 28), np.uint8)
    views[:, :, 0, 0] = np.arange(n)[None]  # pixel (0, 0): which image
    views[:, :, 0, 1] = np.arange(k)[:, None]  # pixel (0, 1): which view
    targets = np.zeros((k, n, 10), np.float16)
    targets[:, :, 0] = np.arange(n)[None] / 100
    targets[:, :, 1] = np.arange(k)[:, None] / 10
    batches = distill.ViewBatches(views, targets, batch_size=16, seed=5)
    assert len(batches) == 4

    def epoch(b):
        xs, ys = zip(*(b[i] for i in range(len(b))), strict=True)
        x, y = np.concatenate(xs), np.concatenate(ys)
        image = np.rint(x[:, 0, 0, 0] * 255).astype(int)
        view = np.rint(x[:, 0, 1, 0] * 255).astype(int)
        assert x.shape == (n, 28, 28, 1) and x.dtype == np.float32 and x.max() <= 1.0
        np.testing.assert_allclose(y[:, 0], image / 100, atol=1e-3)  # targets of that image
        np.testing.assert_allclose(y[:, 1], view / 10, atol=1e-3)  # ... and of that view
        return image, view

    image0, view0 = epoch(batches)
    assert sorted(image0) == list(range(n))  # every image once
    assert len(set(view0)) == k  # views drawn at random
    batches.on_epoch_end()
    image1, view1 = epoch(batches)
    assert sorted(image1) == list(range(n))
    assert not np.array_equal(image0, image1)  # a new order
    assert not np.array_equal(view0[np.argsort(image0)], view1[np.argsort(image1)])  # new views
    resumed = distill.ViewBatches(views, targets, batch_size=16, seed=5, epoch=1)
    np.testing.assert_array_equal(epoch(resumed)[0], image1)  # a resumed run sees the same


def test_distilled_run_learns_resumes_and_records_its_teachers(tmp_path, mnist_dir):
    out = tmp_path / "kd"
    cfg = TrainConfig(**{**SMOKE, "epochs": 2}, data_dir=str(mnist_dir), precision="float32",
                      teachers=[str(TEACHER)], distill_views=2)  # fmt: skip
    log = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        training.train(cfg, out, callbacks=[StopAfterFirstEpoch()], stream=log)
    assert "distillation data: 2 views of 2000 images" in log.getvalue()
    made = (out / distill.DISTILL_FILE).read_bytes()

    log = io.StringIO()
    card = training.train(TrainConfig(), out, resume=True, stream=log).card
    assert "after epoch 1" in log.getvalue()
    assert "distillation data" not in log.getvalue()  # the stored views and targets, reused
    assert (out / distill.DISTILL_FILE).read_bytes() == made
    assert card["metrics"]["val_accuracy"] > 0.90 and card["metrics"]["test_accuracy"] > 0.90
    sha = hashlib.sha256(TEACHER.read_bytes()).hexdigest()
    assert card["training"]["teachers"] == [{"file": str(TEACHER), "sha256": sha}]
    saved = json.loads((out / "config.json").read_text())
    assert saved["teachers"] == [str(TEACHER)] and saved["distill_views"] == 2


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["--teachers", "missing.onnx"], 1, "teacher missing.onnx: expected an existing .onnx"),
        (["--teachers", str(WHOLE)], 1, "the model has 11 outputs, not the ten digits"),
        (
            ["--model", "whole-cnn", "--teachers", str(TEACHER)],
            1,
            "distillation trains a digit model (10 classes); this model has 11",
        ),
        (["--distill-views", "0"], 2, "argument --distill-views: must be >= 1, got 0"),
        (["--distill-temperature", "-1"], 2, "argument --distill-temperature: must be > 0"),
    ],
)
def test_train_cli_bad_distillation_values(run_cli, tmp_path, argv, code, message):
    rc, _, err = run_cli("train", "--out", tmp_path / "run", *argv)
    assert rc == code
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_teacher_record_survives_a_teacher_moved_after_training(tmp_path):
    gone = tmp_path / "gone.onnx"
    sha = hashlib.sha256(TEACHER.read_bytes()).hexdigest()
    assert distill.teacher_record([str(TEACHER), str(gone)]) == [
        {"file": str(TEACHER), "sha256": sha},
        {"file": str(gone), "sha256": None},
    ]
