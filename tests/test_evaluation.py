"""Evaluation: metrics against hand-computed values, calibration, TTA/ensembles, files, errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from inkdigits import evaluation as ev
from inkdigits.errors import ModelError


def one_hot_probs(preds, conf=0.9):
    p = np.full((len(preds), 10), (1 - conf) / 9, np.float32)
    p[np.arange(len(preds)), preds] = conf
    return p


def test_metrics_hand_computed_with_a_class_never_predicted():
    labels = np.array([0, 0, 1, 1, 2, 2])
    preds = np.array([0, 1, 1, 1, 0, 0])  # digit 2 is never predicted
    m = ev.metrics(one_hot_probs(preds), labels)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["errors"] == 3
    pc = {c["digit"]: c for c in m["per_class"]}
    # digit 0: tp 1, predicted 3, support 2
    assert pc[0]["precision"] == pytest.approx(1 / 3)
    assert pc[0]["recall"] == pytest.approx(1 / 2)
    assert pc[0]["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    # digit 1: tp 2, predicted 3, support 2
    assert pc[1]["precision"] == pytest.approx(2 / 3) and pc[1]["recall"] == 1.0
    # digit 2: never predicted -> precision 0 (not NaN), recall 0, F1 0
    assert (pc[2]["precision"], pc[2]["recall"], pc[2]["f1"], pc[2]["support"]) == (0, 0, 0, 2)
    assert pc[7]["support"] == 0 and pc[7]["f1"] == 0.0
    assert m["log_loss"] == pytest.approx(-(3 * np.log(0.9) + 3 * np.log(0.1 / 9)) / 6, rel=1e-5)


def test_confusion_matrix_rows_are_truth():
    cm = ev.confusion_matrix(np.array([3, 3, 5]), np.array([3, 5, 5]))
    assert cm[3, 3] == 1 and cm[3, 5] == 1 and cm[5, 5] == 1 and cm.sum() == 3


def test_ece_hand_computed():
    # 4 digits at confidence 0.9 (3 right) and 2 at 0.6 (both wrong)
    probs = np.concatenate([one_hot_probs([1, 1, 1, 1], 0.9), one_hot_probs([2, 2], 0.6)])
    labels = np.array([1, 1, 1, 0, 0, 0])
    expected = 4 / 6 * abs(0.75 - 0.9) + 2 / 6 * abs(0.0 - 0.6)
    assert ev.expected_calibration_error(probs, labels) == pytest.approx(expected, rel=1e-5)


def test_fit_temperature_recovers_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2.0, (20000, 10))
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in true_p])
    overconfident = np.exp(2.0 * logits)
    overconfident /= overconfident.sum(1, keepdims=True)  # = softmax(logits / 0.5)
    t = ev.fit_temperature(overconfident.astype(np.float32), labels)
    assert t == pytest.approx(2.0, rel=0.05)
    fixed = ev.apply_temperature(overconfident.astype(np.float32), t)
    assert ev.expected_calibration_error(fixed, labels) < ev.expected_calibration_error(
        overconfident, labels
    )


def test_tta_identity_and_ensemble_of_identical_models_equal_single(smoke_run, mnist):
    out, _ = smoke_run
    pred = ev.load_predictor(out / "model.onnx")
    images = mnist.test_images[:200]
    single = pred.predict(images)
    identity_tta = ev.predict_tta(pred, images, shifts=0, angles=())
    np.testing.assert_allclose(identity_tta, single, atol=1e-6)
    twin = ev.load_predictor(out / "model.onnx")
    np.testing.assert_allclose(ev.predict_ensemble([pred, twin], images), single, atol=1e-6)
    r = ev.evaluate(pred, images, mnist.test_labels[:200], tta=True, ensemble=[twin])
    assert r.results["ensemble"]["accuracy"] == pytest.approx(r.results["accuracy"])
    assert "tta" in r.results and "ensemble_tta" in r.results


def test_keras_and_onnx_predictors_agree(smoke_run, mnist):
    out, _ = smoke_run
    images = mnist.test_images[:100]
    k = ev.load_predictor(out).predict(images)  # run folder -> best.keras
    o = ev.load_predictor(out / "model.onnx").predict(images)
    np.testing.assert_allclose(k, o, atol=1e-4)


@pytest.mark.parametrize("name, content", [("model.onnx", b"junk"), ("model.keras", b"junk"),
                                           ("model.txt", b"junk")])  # fmt: skip
def test_not_a_model_fails_clearly(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    (tmp_path / "card.json").write_text("{}")
    with pytest.raises(ModelError, match=re.escape(str(p))):
        ev.load_predictor(p)


def test_model_with_wrong_input_shape_fails_clearly(tmp_path):
    from inkdigits._backend import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(tmp_path / "m.keras")
    with pytest.raises(ModelError, match=r"input shape \(None, 32, 32, 3\) does not take MNIST"):
        ev.load_predictor(tmp_path / "m.keras")


EXPECTED_FILES = {"metrics.json", "confusion_matrix.png", "confusion_matrix.csv", "curves.png",
                  "misclassified.png", "samples.png", "reliability.png", "gradcam.png",
                  "report.html"}  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(smoke_run, tmp_path_factory, mnist_dir):
    from inkdigits import cli

    run, _ = smoke_run
    out = tmp_path_factory.mktemp("eval")
    code = cli.main(["evaluate", "--model", str(run), "--data-dir", str(mnist_dir),
                     "--tta", "--out", str(out)])  # fmt: skip
    assert code == 0
    return out


def test_evaluate_writes_every_file(evaluated):
    names = {p.name for p in evaluated.iterdir()}
    assert EXPECTED_FILES <= names
    for name in EXPECTED_FILES:
        assert (evaluated / name).stat().st_size > 200, name
    assert not [n for n in names if n.startswith(".")], "temporary files left"


@pytest.mark.parametrize("name, min_w, min_h", [("confusion_matrix.png", 900, 400),
    ("curves.png", 800, 300), ("misclassified.png", 600, 100), ("samples.png", 600, 200),
    ("reliability.png", 800, 350), ("gradcam.png", 700, 300)])  # fmt: skip
def test_pngs_decode_with_sensible_sizes(evaluated, name, min_w, min_h):
    with Image.open(evaluated / name) as im:
        im.load()
        assert im.format == "PNG"
        assert im.width >= min_w and im.height >= min_h
        assert im.width <= 4000 and im.height <= 4000
        assert len(np.unique(np.asarray(im.convert("L")))) > 10  # not a blank canvas


def test_metrics_json_and_csv(evaluated, smoke_run):
    m = json.loads((evaluated / "metrics.json").read_text())
    _, card = smoke_run
    assert m["accuracy"] == pytest.approx(card["metrics"]["test_accuracy"], abs=1e-4)
    assert m["images"] == 10000 and len(m["per_class"]) == 10
    assert sum(c["support"] for c in m["per_class"]) == 10000
    assert 0 <= m["ece"] <= 1 and m["temperature"] > 0 and m["throughput_per_s"] > 0
    assert "tta" in m
    rows = (evaluated / "confusion_matrix.csv").read_text().strip().splitlines()
    assert len(rows) == 11
    assert sum(sum(map(int, r.split(",")[1:])) for r in rows[1:]) == 10000


def test_report_is_self_contained(evaluated):
    page = (evaluated / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") == 6
    assert "Model card" in page and "inkdigits evaluate" in page


def test_evaluate_calibrate_stores_temperature(smoke_run, tmp_path, mnist_dir, run_cli):
    import shutil

    src, _ = smoke_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    code, out, err = run_cli("evaluate", "--model", run / "model.onnx", "--calibrate",
                             "--data-dir", mnist_dir, "--out", tmp_path / "o")  # fmt: skip
    assert code == 0, err
    card = json.loads((run / "card.json").read_text())
    assert card["calibration"]["fitted"] is True
    assert card["calibration"]["val_ece_after"] <= card["calibration"]["val_ece_before"]
    assert f"temperature {card['calibration']['temperature']:.4f}" in out


def test_compare_runs(smoke_run, tmp_path, mnist_dir, run_cli):
    run, card = smoke_run
    code, out, _ = run_cli("evaluate", "--compare", run, run, "--data-dir", mnist_dir,
                           "--out", tmp_path)  # fmt: skip
    assert code == 0
    md = (tmp_path / "compare.md").read_text().splitlines()
    assert len(md) == 4 and "fast-cnn" in md[2] and "422,442" in md[2]
    csv_rows = (tmp_path / "compare.csv").read_text().splitlines()
    assert csv_rows[0].split(",") == ev.COMPARE_FIELDS and len(csv_rows) == 3


def test_evaluate_cli_wrong_file(run_cli, tmp_path, mnist_dir):
    bad = tmp_path / "notes.onnx"
    bad.write_text("hello")
    (tmp_path / "card.json").write_text("{}")
    code, _, err = run_cli("evaluate", "--model", bad, "--data-dir", mnist_dir, "--out", tmp_path)
    assert code == 1 and "not a loadable ONNX model" in err and "Traceback" not in err


def test_results_notebook_runs_on_a_tiny_model(smoke_run, tmp_path, mnist_dir, monkeypatch):
    import nbclient
    import nbformat
    from conftest import REPO

    run, _ = smoke_run
    monkeypatch.setenv("INKDIGITS_NOTEBOOK_MODEL", str(run))
    monkeypatch.setenv("INKDIGITS_NOTEBOOK_OUT", str(tmp_path / "nb"))
    monkeypatch.setenv("INKDIGITS_DATA_DIR", str(mnist_dir))
    nb = nbformat.read(REPO / "notebooks" / "results.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 6  # every figure shown inline
    text = "".join(o.get("text", "") for o in outputs)
    assert "single model" in text and "fast-cnn" in text
    assert (tmp_path / "nb" / "report.html").is_file()
