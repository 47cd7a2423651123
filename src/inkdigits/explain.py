"""Where a model looks: Grad-CAM for Keras models, occlusion sensitivity for any model.

Both return heat maps of shape (N, 28, 28) scaled to [0, 1] per digit.
Grad-CAM needs TensorFlow (the ``train`` extra); occlusion needs only a
``predict`` function, so it also explains ONNX models.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _normalise(maps: np.ndarray) -> np.ndarray:
    maps = np.maximum(maps, 0.0)
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0).astype(np.float32)


def last_conv_layer(model):
    """The last layer with a 4-D (B, H, W, C) output: Grad-CAM's feature maps."""
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is not None and len(shape) == 4 and type(layer).__name__ != "InputLayer":
            return layer
    raise ValueError(f"{model.name}: no convolutional feature maps for Grad-CAM")


def gradcam(model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) for float32 (N, 28, 28, 1) inputs and target classes."""
    import cv2
    import tensorflow as tf

    from ._backend import keras

    layer = last_conv_layer(model)
    probe = keras.Model(model.inputs, [layer.output, model.output])
    xt = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        feats, probs = probe(xt, training=False)  # (N, h, w, C), (N, 10)
        # log-probability of the target class: the pre-softmax score up to a shared constant
        score = tf.math.log(tf.gather(probs, classes, batch_dims=1) + 1e-12)
    grads = tape.gradient(score, feats)
    feats = tf.cast(feats, tf.float32).numpy()
    weights = tf.cast(grads, tf.float32).numpy().mean(axis=(1, 2), keepdims=True)  # (N,1,1,C)
    cams = (feats * weights).sum(axis=-1)  # (N, h, w)
    cams = np.stack([cv2.resize(c, (28, 28), interpolation=cv2.INTER_LINEAR) for c in cams])
    return _normalise(cams)


def occlusion(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    classes: np.ndarray,
    patch: int = 6,
    stride: int = 2,
) -> np.ndarray:
    """How much the target probability drops when a patch of the digit is blanked out.

    ``predict`` maps (M, 28, 28) uint8 digits to (M, 10) probabilities.
    """
    positions = [
        (y, x) for y in range(0, 28 - patch + 1, stride) for x in range(0, 28 - patch + 1, stride)
    ]
    maps = np.zeros((len(images), 28, 28), np.float32)
    counts = np.zeros((28, 28), np.float32)
    for y, x in positions:
        counts[y : y + patch, x : x + patch] += 1
    base = predict(images)[np.arange(len(images)), classes]
    for i, img in enumerate(images):
        batch = np.repeat(img[None], len(positions), axis=0)
        for k, (y, x) in enumerate(positions):
            batch[k, y : y + patch, x : x + patch] = 0
        drop = base[i] - predict(batch)[:, classes[i]]  # (P,)
        for k, (y, x) in enumerate(positions):
            maps[i, y : y + patch, x : x + patch] += drop[k]
    return _normalise(maps / np.maximum(counts, 1))
