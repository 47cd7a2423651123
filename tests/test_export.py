"""Keras -> ONNX export: parity, the graph's interface, nothing written on failure."""

from __future__ import annotations

import numpy as np
import pytest

from inkdigits import export, models
from inkdigits._backend import keras
from inkdigits.errors import ModelError


@pytest.fixture
def x():
    return np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)


def test_export_parity_and_interface(tmp_path, x):
    import onnxruntime as ort

    keras.mixed_precision.set_dtype_policy("float32")
    model = models.build("lenet5")
    info = export.export_onnx(model, tmp_path / "m.onnx", "lenet5", x)
    assert info["parity_max_abs_diff"] < export.PARITY_TOLERANCE
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    assert inp.name == "input" and inp.shape[1:] == [28, 28, 1]
    assert out.name == "probs" and out.shape[1:] == [10]
    probs = sess.run(None, {"input": x})[0]
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), atol=1e-5)


def test_mixed_precision_model_exports_as_float32(tmp_path, x):
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = models.build("fast-cnn")
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    info = export.export_onnx(model, tmp_path / "m.onnx", "fast-cnn", x)
    assert info["parity_max_abs_diff"] < export.PARITY_TOLERANCE
    assert info["argmax_agreement_with_trained_model"] >= 0.9  # bf16 vs f32 compute


def test_failed_parity_writes_nothing(tmp_path, x, monkeypatch):
    keras.mixed_precision.set_dtype_policy("float32")
    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)
    with pytest.raises(ModelError, match="differs from Keras"):
        export.export_onnx(models.build("lenet5"), tmp_path / "m.onnx", "lenet5", x)
    assert list(tmp_path.iterdir()) == []
