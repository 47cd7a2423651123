"""Training runs for real on a 2,000-image subset: artefacts, resume, repeatability, CLI errors."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import numpy as np
import pytest
from conftest import SMOKE

from inkdigits import training
from inkdigits._backend import keras
from inkdigits.config import TrainConfig
from inkdigits.errors import ModelError

ARTEFACTS = ["config.json", "metrics.csv", "state.json", "checkpoint.keras", "best.keras",
             "model.onnx", "model-int8.onnx", "card.json"]  # fmt: skip


def test_smoke_run_reaches_90_percent(smoke_run):
    out, card = smoke_run
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 1
    assert float(rows[0]["val_accuracy"]) > 0.90
    assert card["metrics"]["val_accuracy"] > 0.90
    assert card["metrics"]["test_accuracy"] > 0.90


def test_smoke_run_writes_every_artefact(smoke_run):
    out, card = smoke_run
    for name in ARTEFACTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not list(out.glob(".*tmp*")), "temporary files left behind"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "fast-cnn" and cfg["optimizer"] == "adam" and cfg["epochs"] == 1
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert list(rows[0]) == training.METRIC_FIELDS


def test_card_describes_the_model(smoke_run, mnist_dir):
    out, card = smoke_run
    assert card["model"]["name"] == "fast-cnn"
    assert card["model"]["parameters"] == 422_442
    assert card["onnx"]["sha256"] == hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    assert card["onnx"]["parity_max_abs_diff"] < 1e-4
    assert card["preprocessing"]["input_shape"] == [28, 28, 1]
    assert card["preprocessing"]["scale"] == pytest.approx(1 / 255)
    assert card["data"]["sha256"]["t10k-labels-idx1-ubyte.gz"].startswith("f7ae60f9")
    for key in ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "test_errors"):
        assert key in card["metrics"]
    assert card["training"]["train_seconds"] > 0
    assert {"tensorflow-cpu", "keras", "onnxruntime", "numpy"} <= set(card["versions"])
    assert json.loads((out / "card.json").read_text()) == card


def test_onnx_matches_keras_on_test_digits(smoke_run, mnist):
    from inkdigits.export import run_onnx

    out, _ = smoke_run
    x = (mnist.test_images[:300].astype(np.float32) / 255.0)[..., None]
    keras_probs = training.load_keras(out / "best.keras").predict(x, verbose=0)
    assert np.abs(run_onnx(out / "model.onnx", x) - keras_probs).max() < 1e-4


def test_int8_model_is_checked_and_recorded(smoke_run, mnist):
    from inkdigits.classifier import Classifier

    out, card = smoke_run
    int8 = card["int8"]
    assert int8["sha256"] == hashlib.sha256((out / "model-int8.onnx").read_bytes()).hexdigest()
    assert int8["val_accuracy"] >= card["metrics"]["val_accuracy"] - 0.001
    assert int8["test_argmax_agreement_with_float32"] > 0.98
    assert 0.5 < int8["calibration"]["temperature"] < 5
    clf = Classifier(out / "model-int8.onnx")
    assert clf.precision == "int8" and clf.temperature == int8["calibration"]["temperature"]
    acc = (clf.predict_proba(mnist.test_images).argmax(1) == mnist.test_labels).mean()
    assert acc == pytest.approx(int8["test_accuracy"], abs=2e-4)
    # the int8 model is smaller: int8 weights
    assert (out / "model-int8.onnx").stat().st_size < 0.5 * (out / "model.onnx").stat().st_size


def test_int8_model_losing_accuracy_is_refused(smoke_run, tmp_path, mnist, monkeypatch):
    import shutil

    from inkdigits import quantize
    from inkdigits.errors import ModelError

    out, _ = smoke_run
    run = tmp_path / "run"
    run.mkdir()
    for name in ("model.onnx", "card.json", "config.json"):
        shutil.copy(out / name, run / name)
    monkeypatch.setattr(quantize, "MAX_VAL_LOSS", -1.0)  # nothing can pass
    with pytest.raises(ModelError, match="not kept"):
        quantize.add_int8(run, mnist.split(5000))
    assert not (run / "model-int8.onnx").exists()
    assert "int8" not in json.loads((run / "card.json").read_text())  # no stale section


class StopAfterFirstEpoch(keras.callbacks.Callback):
    """Simulates Ctrl-C in the middle of epoch 2 (after epoch 1's checkpoint)."""

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == 1 and batch == 3:
            raise KeyboardInterrupt

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, mnist_dir):
    out = tmp_path / "run"
    cfg = TrainConfig(**{**SMOKE, "epochs": 2}, data_dir=str(mnist_dir), precision="float32")
    with pytest.raises(KeyboardInterrupt):
        training.train(cfg, out, callbacks=[StopAfterFirstEpoch()], stream=io.StringIO())
    state = json.loads((out / "state.json").read_text())
    assert state["epochs_done"] == 1 and not state["finished"]
    assert not (out / "model.onnx").exists()
    first_row = (out / "metrics.csv").read_text().splitlines()[1]
    steps_done = training.load_keras(out / "checkpoint.keras").optimizer.iterations.numpy()
    assert steps_done == 125  # 2000 images / batch 16: epoch 1 only

    log = io.StringIO()
    result = training.train(TrainConfig(), out, resume=True, stream=log)
    assert "resuming" in log.getvalue() and "after epoch 1" in log.getvalue()
    lines = (out / "metrics.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[1] == first_row  # epoch 1 kept, epoch 2 added
    assert result.card["training"]["epochs_run"] == 2
    assert training.load_keras(out / "checkpoint.keras").optimizer.iterations.numpy() == 250
    assert (out / "model.onnx").is_file()


def test_same_seed_repeats(tmp_path, mnist_dir, smoke_run):
    _, card = smoke_run
    cfg = TrainConfig(**SMOKE, data_dir=str(mnist_dir), precision="float32")
    again = training.train(cfg, tmp_path / "again", stream=io.StringIO()).card
    assert again["metrics"]["val_loss"] == pytest.approx(card["metrics"]["val_loss"], rel=1e-5)
    assert again["metrics"]["test_errors"] == card["metrics"]["test_errors"]


def test_keras_files_load_in_safe_mode_only(tmp_path):
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    with pytest.raises(ModelError, match="not a loadable Keras model"):
        training.load_keras(tmp_path / "lambda.keras")  # Lambda needs unsafe deserialisation
    import pickle

    (tmp_path / "evil.keras").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelError, match="not a loadable Keras model"):
        training.load_keras(tmp_path / "evil.keras")
    with pytest.raises(ModelError, match="expected a .keras file"):
        training.load_keras(tmp_path / "model.h5")


# --------------------------------------------------------------------------- CLI errors


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["--model", "resnet9000"], 1, "unknown model 'resnet9000'; choose one of"),
        (["--epochs", "0"], 2, "argument --epochs: must be >= 1, got 0"),
        (["--batch-size", "-1"], 2, "argument --batch-size: must be >= 1, got -1"),
        (["--lr", "abc"], 2, "argument --lr: 'abc' is not a number"),
        (["--label-smoothing", "1.5"], 1, "label smoothing must lie in [0, 1)"),
        (["--warp", "3"], 1, "warp must be in [0, 2], got 3.0"),
        (["--resume"], 1, "--resume needs --out DIR"),
    ],
)
def test_train_cli_bad_values(run_cli, argv, code, message):
    rc, _, err = run_cli("train", *argv)
    assert rc == code
    assert message in err and "Traceback" not in err


def test_train_cli_unwritable_output(run_cli, tmp_path, mnist_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc, _, err = run_cli("train", "--model", "fast-cnn", "--out", blocker / "run",
                         "--data-dir", mnist_dir)  # fmt: skip
    assert rc == 1
    assert f"cannot write to output folder {blocker / 'run'}" in err


def test_train_cli_refuses_to_overwrite_a_run(run_cli, smoke_run):
    out, _ = smoke_run
    before = (out / "card.json").read_bytes()
    rc, _, err = run_cli("train", "--model", "fast-cnn", "--out", out)
    assert rc == 1 and "already holds files" in err
    assert (out / "card.json").read_bytes() == before


def test_list_models(run_cli):
    rc, out, _ = run_cli("train", "--list-models")
    assert rc == 0
    for name in ("seed-cnn", "lenet5", "inkdigits-cnn", "quick-cnn", "whole-cnn"):
        assert name in out


def test_recipe_fills_label_smoothing_and_warp_unless_given():
    from inkdigits.config import TrainConfig

    quick = training.resolve(TrainConfig(model="quick-cnn"))
    assert (quick.label_smoothing, quick.warp) == (0.1, 0.6)
    given = training.resolve(TrainConfig(model="quick-cnn", label_smoothing=0.0, warp=1.0))
    assert (given.label_smoothing, given.warp) == (0.0, 1.0)
    assert training.resolve(TrainConfig(model="inkdigits-cnn")).label_smoothing == 0.0


def test_best_epoch_is_the_best_validation_accuracy_and_a_tie_goes_to_the_later(
    tmp_path, monkeypatch
):
    saved = []
    monkeypatch.setattr(training, "_save_atomic", lambda model, path: saved.append(path.name))
    monkeypatch.setattr(training, "inference_model", lambda net: net)
    monkeypatch.setattr(training, "_lr_now", lambda net: 1e-3)
    state = training.RunState()
    cb = training.EpochEnd(tmp_path, TrainConfig(epochs=5), state, stream=io.StringIO())
    cb.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    for epoch, val in enumerate([0.9950, 0.9968, 0.9962, 0.9968, 0.9966]):
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(
            epoch, {"loss": 0.1, "accuracy": 0.99, "val_loss": 0.02, "val_accuracy": val}
        )
    # epochs 2 and 4 tie at the best accuracy: the later one, trained longer, is kept
    assert state.best_epoch == 4 and state.best_val_accuracy == 0.9968
    assert saved.count("best.keras") == 3  # epochs 1, 2 and 4
    assert state.epochs_done == 5
