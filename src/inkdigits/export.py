"""Keras -> ONNX export, verified against the Keras model's own outputs.

The exported graph is always float32 (a mixed-precision model is rebuilt in
float32 with the same weights first), takes ``input`` of shape (N, 28, 28, 1)
and returns (N, 10) probabilities.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import models  # noqa: E402
from ._backend import keras, quiet_native_stderr  # noqa: E402
from .classifier import run_onnx  # noqa: E402, F401 (re-exported)
from .config import PREPROCESSING  # noqa: E402
from .errors import ModelError  # noqa: E402

OPSET = 17
PARITY_TOLERANCE = 1e-4  # max abs difference in probabilities, ONNX vs Keras


def float32_copy(model: keras.Model, name: str) -> keras.Model:
    """The registered architecture ``name`` in float32 carrying ``model``'s weights."""
    keras.mixed_precision.set_dtype_policy("float32")
    clone = models.build(name)
    clone.set_weights(model.get_weights())
    return clone


def export_onnx(
    model: keras.Model, path: str | os.PathLike[str], name: str, check_inputs: np.ndarray
) -> dict[str, Any]:
    """Write ``model`` as ONNX to ``path`` (atomically) and check it on ``check_inputs``.

    Raises ModelError if ONNX Runtime's outputs differ from Keras's by more
    than PARITY_TOLERANCE; returns the facts for the model card.
    """
    import tensorflow as tf
    import tf2onnx

    path = Path(path)
    f32 = float32_copy(model, name)
    spec = (
        tf.TensorSpec((None, *models.INPUT_SHAPE), tf.float32, name=PREPROCESSING["input_name"]),
    )

    @tf.function(input_signature=spec)
    def forward(x):
        return {"probs": f32(x, training=False)}

    tmp = path.with_name(f".{path.name}.tmp")
    with quiet_native_stderr():  # grappler's "Starting new session" lines
        tf2onnx.convert.from_function(
            forward, input_signature=spec, opset=OPSET, output_path=str(tmp)
        )
    try:
        diff = parity(f32, tmp, check_inputs)
        if diff > PARITY_TOLERANCE:
            raise ModelError(
                f"ONNX export differs from Keras by {diff:.2e} "
                f"(> {PARITY_TOLERANCE:g}); not written"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    # Agreement with the model as trained (bfloat16 compute, if mixed precision).
    ref = model.predict(check_inputs, verbose=0)
    onnx_out = run_onnx(path, check_inputs)
    return {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "opset": OPSET,
        "input": PREPROCESSING["input_name"],
        "output": "probs",
        "parity_max_abs_diff": float(diff),
        "parity_images": int(len(check_inputs)),
        "argmax_agreement_with_trained_model": float((ref.argmax(1) == onnx_out.argmax(1)).mean()),
    }


def parity(model: keras.Model, onnx_path: str | os.PathLike[str], x: np.ndarray) -> float:
    """Max abs difference between Keras and ONNX Runtime probabilities on ``x``."""
    ref = model.predict(x, verbose=0)
    return float(np.abs(run_onnx(onnx_path, x) - ref).max())
