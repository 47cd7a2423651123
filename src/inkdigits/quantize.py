"""int8 quantisation of an exported model: ``model.onnx`` -> ``model-int8.onnx``.

Static quantisation with ONNX Runtime of every operator but the softmax (QDQ
format, per-channel int8 weights in 7 bits, uint8 activations), calibrated on
training images only. The weights keep to [-64, 64] (ONNX Runtime's
``reduce_range``): on a CPU without VNNI (AVX2 only) ONNX Runtime multiplies
uint8 by int8 in pairs summed in 16 bits, which full-range weights overflow;
the shipped default model made 80 MNIST test errors there instead of 29.
With 7-bit weights the sums fit, and every CPU computes the same result.
The int8 model is checked on the validation and test splits and gets its own
section in the card (checksum, accuracy, agreement with float32, calibration
temperature); it is refused if it loses more than ``MAX_VAL_LOSS`` validation
accuracy.
Needs the ``onnx`` package (the ``train`` extra); reading an int8 model needs
only ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import run_onnx
from .config import PREPROCESSING, to_model_input, write_json_atomic
from .errors import ModelError

INT8_FILE = "model-int8.onnx"
CALIBRATION_IMAGES = 2000
MAX_VAL_LOSS = 0.001  # at most 0.1 points of validation accuracy


def _op_types(path: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


def quantize_static_int8(
    src: Path, dst: Path, calibration: np.ndarray, reduce_range: bool = True
) -> None:
    """Write the int8 (QDQ) version of ``src`` to ``dst`` (atomically).

    ``reduce_range=False`` gives full-range (8-bit) weights, as inkdigits
    quantised before: inexact on CPUs without VNNI (see the module's docstring).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    x = to_model_input(calibration)
    name = PREPROCESSING["input_name"]

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(x):
                return None
            batch = x[self.i : self.i + 100]
            self.i += 100
            return {name: batch}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        out = Path(tmp) / "int8.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=reduce_range,  # 7-bit weights: exact on CPUs without VNNI (above)
            # everything but the softmax: probabilities quantised to 1/255 steps
            # (many exact zeros and ones) would wreck the calibration, and
            # quantising only the convolutions was measured 20% slower.
            op_types_to_quantize=_op_types(prepared) - {"Softmax"},
        )
        staged = dst.with_name(f".{dst.name}.tmp")
        staged.write_bytes(out.read_bytes())
        os.replace(staged, dst)


def seven_bit_weights(src: Path, dst: Path) -> int:
    """Write ``src``, an int8 QDQ model with full-range weights, to ``dst`` with
    its weights in 7 bits, as :func:`quantize_static_int8` now quantises.

    For an int8 model whose float32 original is gone (the shipped ``checks``
    model): each int8 weight is halved (rounded) and its scale doubled, and
    the int32 bias of the same operator likewise, so that the bias keeps the
    scale of input times weight that ONNX Runtime's fused kernels assume. The
    activations' quantisation is unchanged. Weights already in 7 bits are
    left as they are. Returns how many weight tensors were changed; raises
    ModelError if the model has none to change.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    dequant = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}

    def rescale(dq, dtype) -> bool:
        values, scale = inits.get(dq.input[0]), inits.get(dq.input[1])
        if values is None or scale is None or len(consumers[dq.input[1]]) != 1:
            return False
        q = numpy_helper.to_array(values)
        if q.dtype != dtype or (dtype == np.int8 and np.abs(q.astype(np.int16)).max() <= 64):
            return False  # not this kind, or already 7-bit weights
        half = np.round(q.astype(np.float64) / 2)
        if dtype == np.int8:
            half = np.clip(half, -64, 64)
        values.CopyFrom(numpy_helper.from_array(half.astype(dtype), values.name))
        s = numpy_helper.to_array(scale)
        scale.CopyFrom(numpy_helper.from_array((s * 2).astype(s.dtype), scale.name))
        return True

    changed = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        weight = dequant.get(node.input[1])
        if weight is None or not rescale(weight, np.int8):
            continue
        changed += 1
        bias = dequant.get(node.input[2]) if len(node.input) > 2 else None
        if bias is not None:
            rescale(bias, np.int32)
    if not changed:
        raise ModelError(
            f"{src}: no full-range int8 weights of a Conv, Gemm or MatMul to change "
            "(a float32 model, or one already in 7 bits)"
        )
    staged = dst.with_name(f".{dst.name}.tmp")
    onnx.save(model, str(staged))
    os.replace(staged, dst)
    return changed


def add_int8(run_dir: Path, splits, stream=None) -> dict[str, Any]:
    """Quantise ``run_dir/model.onnx``, check it, and record it in ``run_dir/card.json``.

    ``splits`` are the run's data splits (calibration uses the first training
    images; accuracy is measured on validation and test). Returns the card's
    ``int8`` section; raises ModelError if the int8 model loses too much.
    """
    from .evaluation import calibration_record

    run_dir = Path(run_dir)
    src, card_path = run_dir / "model.onnx", run_dir / "card.json"
    for p in (src, card_path):
        if not p.is_file():
            raise ModelError(f"{run_dir}: no {p.name} (quantise a finished run folder)")
    card = json.loads(card_path.read_text())
    dst = run_dir / INT8_FILE
    quantize_static_int8(src, dst, splits.x_train[:CALIBRATION_IMAGES])
    x_test = to_model_input(splits.x_test)
    p_val = run_onnx(dst, to_model_input(splits.x_val))
    p_test = run_onnx(dst, x_test)
    p_test_f32 = run_onnx(src, x_test)
    val_acc = float((p_val.argmax(1) == splits.y_val).mean())
    f32_val = float(card["metrics"]["val_accuracy"])
    if val_acc < f32_val - MAX_VAL_LOSS:
        dst.unlink()
        if card.pop("int8", None) is not None:  # a stale section from an earlier quantisation
            write_json_atomic(card_path, card)
        raise ModelError(
            f"int8 model loses {100 * (f32_val - val_acc):.2f} points of validation accuracy "
            f"({100 * val_acc:.2f}% vs {100 * f32_val:.2f}%); not kept"
        )
    section = {
        "file": INT8_FILE,
        "sha256": hashlib.sha256(dst.read_bytes()).hexdigest(),
        "method": "ONNX Runtime static quantisation of all but the softmax, QDQ, "
        "per-channel int8 weights in 7 bits (reduce_range), uint8 activations",
        "calibration_images": int(min(CALIBRATION_IMAGES, len(splits.x_train))),
        "val_accuracy": val_acc,
        "test_accuracy": float((p_test.argmax(1) == splits.y_test).mean()),
        "test_errors": int((p_test.argmax(1) != splits.y_test).sum()),
        "test_argmax_agreement_with_float32": float(
            (p_test.argmax(1) == p_test_f32.argmax(1)).mean()
        ),
        "calibration": calibration_record(p_val, splits.y_val),
    }
    card["int8"] = section
    write_json_atomic(card_path, card)
    if stream is not None:
        print(
            f"int8  val_acc {100 * val_acc:.2f}%  test_acc {100 * section['test_accuracy']:.2f}% "
            f"({section['test_errors']} errors)  agreement with float32 "
            f"{100 * section['test_argmax_agreement_with_float32']:.2f}%  -> {dst}",
            file=stream,
            flush=True,
        )
    return section
