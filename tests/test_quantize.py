"""int8 models keep their weights in 7 bits: exact on CPUs with or without VNNI.

On a CPU without VNNI (AVX2 only) ONNX Runtime multiplies uint8 activations by
int8 weights in pairs summed in 16 bits; full-range weights overflow there (the
shipped default model read 80 MNIST test digits wrong instead of 29). Whatever
the test machine's CPU, the weights' range says whether that can happen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx  # the `train` extra, which `make test` installs
import pytest

from inkdigits.classifier import WHOLE_DIR, model_path, run_onnx, shipped_model_path
from inkdigits.config import to_model_input
from inkdigits.errors import ModelError
from inkdigits.quantize import quantize_static_int8, seven_bit_weights


def int8_weights(path: Path) -> list[np.ndarray]:
    """The int8 weights of a QDQ model's Conv, Gemm and MatMul operators."""
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dequant = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    out = []
    for node in model.graph.node:
        dq = dequant.get(node.input[1]) if node.op_type in ("Conv", "Gemm", "MatMul") else None
        if dq is not None and dq.input[0] in inits and inits[dq.input[0]].dtype == np.int8:
            out.append(inits[dq.input[0]])
    return out


def in_seven_bits(weights: list[np.ndarray]) -> bool:
    return bool(weights) and all(-64 <= w.min() and w.max() <= 64 for w in weights)


@pytest.mark.parametrize(
    "path, layers",
    [
        (shipped_model_path("int8"), 7),
        (shipped_model_path("int8", WHOLE_DIR), 6),
        (model_path("checks"), 7),
    ],
    ids=["default", "whole", "checks"],
)
def test_shipped_int8_models_keep_their_weights_in_seven_bits(path, layers):
    weights = int8_weights(path)
    assert len(weights) == layers and in_seven_bits(weights)
    assert max(int(np.abs(w).max()) for w in weights) == 64  # the range is used, not shrunk


def test_quantised_weights_take_seven_bits_and_old_models_convert(mnist, tmp_path):
    """``quantize_static_int8`` quantises to 7-bit weights; a model quantised as
    before (8-bit) converted by ``seven_bit_weights`` reads as its float32 original."""
    f32 = shipped_model_path("float32")
    calibration = mnist.train_images[:300]
    new, old, converted = tmp_path / "new.onnx", tmp_path / "old.onnx", tmp_path / "conv.onnx"
    quantize_static_int8(f32, new, calibration)
    quantize_static_int8(f32, old, calibration, reduce_range=False)
    assert in_seven_bits(int8_weights(new))
    assert max(int(np.abs(w).max()) for w in int8_weights(old)) == 127  # 8 bits
    assert seven_bit_weights(old, converted) == 7
    assert in_seven_bits(int8_weights(converted))
    x, y = to_model_input(mnist.test_images[:2000]), mnist.test_labels[:2000]
    want = run_onnx(f32, x).argmax(1)
    for path in (new, converted):
        read = run_onnx(path, x).argmax(1)
        assert (read == want).mean() >= 0.998
        assert (read == y).mean() >= (want == y).mean() - 0.002


@pytest.mark.parametrize(
    "path", [shipped_model_path("float32"), shipped_model_path("int8")], ids=["float32", "7-bit"]
)
def test_a_model_with_no_full_range_int8_weights_is_refused(path, tmp_path):
    """A float32 model has none to halve; a 7-bit one would lose a bit more."""
    out = tmp_path / "out.onnx"
    with pytest.raises(ModelError, match="no full-range int8 weights"):
        seven_bit_weights(path, out)
    assert not out.exists()
