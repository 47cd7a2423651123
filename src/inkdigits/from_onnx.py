"""Put an ONNX export's weights back into its Keras architecture, to fine-tune a shipped model.

The shipped models are ONNX files; ``inkdigits train --init-from model.onnx``
starts from one. The export (tf2onnx) folded every batch normalisation into
the convolution before it (kernel and bias), so the batch norms are unfolded
again from data: each gets the mean and variance of its convolution's output
on a batch of training images as its statistics, and scale and offset such
that it gives back exactly what the folded layer gave,

    gamma * (x - mean) / sqrt(var + eps) + beta = x + bias,
    gamma = sqrt(var + eps), beta = mean + bias.

The Keras model then computes what the ONNX file computes (the tests check
it on the shipped model to 1e-4), and in training mode batch statistics near those means and
variances leave it nearly unchanged, so fine-tuning starts where the shipped
model is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._backend import keras
from .errors import ConfigError, ModelError


def _onnx_layers(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], list]:
    """The (kernel, bias) of each Conv and each MatMul(+Add) node, in graph order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    convs, dense = [], []
    for n in graph.node:
        if n.op_type == "Conv":
            if n.input[1] not in init:
                raise ConfigError(
                    f"--init-from {path}: its convolutions' weights are computed, not stored "
                    "(a quantised int8 model?); start from the float32 model.onnx"
                )
            w = init[n.input[1]]
            if len(n.input) > 2:
                b = init[n.input[2]]
            else:  # a 1-D convolution's bias is added after it, once it is reshaped back
                b = _bias_after(consumers, init, n.output[0], w.shape[0])
            convs.append((w, b))
        elif n.op_type == "MatMul" and n.input[1] in init:
            w = init[n.input[1]]  # its bias: added next, or after a reshape (a 3-D input)
            dense.append((w, _bias_after(consumers, init, n.output[0], w.shape[1])))
    return convs, dense


def _bias_after(consumers: dict, init: dict, output: str, channels: int) -> np.ndarray:
    """The bias a graph adds to a layer's ``output`` downstream (through reshapes
    and transposes, before any other layer or activation), or zeros: the first
    Add with a stored operand of ``channels`` values. ``consumers``: the nodes
    that take each tensor name as an input."""
    frontier = [output]
    while frontier:
        name = frontier.pop()
        for n in consumers.get(name, []):
            if n.op_type == "Add":
                stored = [init[i] for i in n.input if i in init and init[i].size == channels]
                if stored:
                    return stored[0].reshape(channels)
            if n.op_type in ("Conv", "Relu", "MatMul", "Softmax", "MaxPool"):
                continue
            frontier.extend(n.output)
    return np.zeros(channels, np.float32)


def _keras_kernel(w: np.ndarray, layer) -> np.ndarray:
    """An ONNX convolution kernel (out, in, kh, kw) in the layout of ``layer``: a
    Conv2D's (kh, kw, in, out), or a Conv1D's (k, in, out) from an ONNX (out, in,
    1, k) (a 1-D convolution is exported as a 2-D one of height 1)."""
    if isinstance(layer, keras.layers.Conv1D):
        return w[:, :, 0, :].transpose(2, 1, 0)
    return w.transpose(2, 3, 1, 0)


def load_onnx_weights(
    path: str | os.PathLike[str], model: keras.Model, calibration: np.ndarray | None
) -> None:
    """Set ``model``'s weights from the ONNX export of the same architecture.

    ``calibration``: model input float32 (digits (N, 28, 28, 1), or line views
    (N, 32, W, 1) for a line model), a few hundred to a few thousand training
    images, for the batch norms' statistics (see the module doc).
    Raises ModelError if there is no such file, ConfigError if the file's
    layers do not fit the model's, ValueError without ``calibration``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"--init-from {path}: no such file")
    if calibration is None:
        raise ValueError("starting from an ONNX file needs calibration inputs")
    convs, dense = _onnx_layers(path)
    layers = model.layers
    conv_types = keras.layers.Conv2D | keras.layers.Conv1D
    k_convs = [i for i, layer in enumerate(layers) if isinstance(layer, conv_types)]
    k_dense = [layer for layer in layers if isinstance(layer, keras.layers.Dense)]
    other = [
        layer.name
        for layer in layers
        if layer.weights
        and not isinstance(layer, conv_types | keras.layers.Dense | keras.layers.BatchNormalization)
    ]
    if other or len(convs) != len(k_convs) or len(dense) != len(k_dense):
        raise ConfigError(
            f"--init-from {path}: {len(convs)} convolutions and {len(dense)} dense layers, "
            f"the model has {len(k_convs)} and {len(k_dense)}"
            + (f" and layers this import does not know ({', '.join(other)})" if other else "")
        )
    norms = []  # (convolution, its batch norm, the folded bias) to unfold from data
    for (w, b), i in zip(convs, k_convs, strict=True):
        conv = layers[i]
        kernel = _keras_kernel(w, conv)
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        bn = nxt if isinstance(nxt, keras.layers.BatchNormalization) else None
        _assign(path, conv, [kernel] if bn is not None else [kernel, b])
        if bn is not None:
            eps = bn.epsilon
            one, zero = np.ones_like(b), np.zeros_like(b)
            _assign(path, bn, [one, b, zero, one - eps])  # identity plus the bias, for now
            norms.append((conv, bn, b))
    for (w, b), layer in zip(dense, k_dense, strict=True):
        _assign(path, layer, [w, b])
    if norms:
        probe = keras.Model(model.inputs, [conv.output for conv, _, _ in norms])
        outs = probe.predict(calibration, batch_size=256, verbose=0)
        for out, (_, bn, b) in zip(outs if len(norms) > 1 else [outs], norms, strict=True):
            out = np.asarray(out, np.float64)
            mean, var = out.mean(axis=(0, 1, 2)), out.var(axis=(0, 1, 2))
            gamma = np.sqrt(var + bn.epsilon)
            _assign(path, bn, [gamma, mean + b, mean, var])


def _assign(path: Path, layer, values: list[np.ndarray]) -> None:
    shapes = [tuple(v.shape) for v in layer.weights]
    if shapes != [tuple(np.shape(v)) for v in values]:
        raise ConfigError(
            f"--init-from {path}: layer {layer.name} has weights {shapes}, the file gives "
            f"{[tuple(np.shape(v)) for v in values]}"
        )
    layer.set_weights([np.asarray(v, np.float32) for v in values])
