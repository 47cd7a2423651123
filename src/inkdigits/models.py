"""The model registry and the architectures (Keras 3 layers and keras.ops only).

Every model maps (B, 28, 28, 1) float32 in [0, 1] (ink high) to (B, 10)
softmax probabilities. A registered model comes with its training recipe,
the defaults ``inkdigits train --model NAME`` uses.

    >>> from inkdigits.models import build, REGISTRY
    >>> model = build("seed-cnn")          # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ._backend import keras
from .errors import ConfigError

layers, ops = keras.layers, keras.ops

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


@dataclass(frozen=True)
class Recipe:
    """A model's default training recipe."""

    epochs: int
    batch_size: int
    lr: float
    optimizer: str  # adam | adamw | rmsprop | sgd
    schedule: str  # constant | onecycle
    augment: bool
    weight_decay: float = 0.0
    patience: int | None = None
    stroke: float = 0.0  # pen-width augmentation (see RandomAffine)
    elastic: float = 0.0  # elastic distortion strength (see RandomAffine)
    warp: float = 1.0  # strength of the random affine warp (1 = RandomAffine's ranges)
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: how to build it and how to train it."""

    name: str
    description: str
    builder: Callable[[], keras.Model]
    recipe: Recipe
    params: int  # expected trainable + non-trainable parameter count
    classes: int = NUM_CLASSES  # outputs: the ten digits (+ NOT_WHOLE for whole-cnn)
    data: str = "mnist"  # what it learns from: "mnist" digits or "segments" (segment_data)


# --------------------------------------------------------------------------- augmentation


@keras.saving.register_keras_serializable(package="inkdigits")
class RandomAffine(layers.Layer):
    """One random affine warp per image, in training only (inference passes through).

    Rotation, isotropic scale, shear and translation are composed into a single
    projective transform, so the image is resampled once (cheaper and sharper
    than chaining RandomRotation, RandomZoom and RandomTranslation).

    ``stroke`` > 0 also varies the pen width before the warp: each image moves a
    random fraction t in [-stroke, stroke] of the way towards its 3x3 grey-level
    dilation (t > 0, thicker) or erosion (t < 0, thinner), the variation real
    pens and the reading pipeline's resampling produce.

    ``elastic`` > 0 adds Simard et al.'s (2003) elastic distortion to the warp:
    a random displacement field, uniform in [-1, 1] and smoothed by a Gaussian
    of sigma 4 px, scaled by ``34 * elastic`` px (their setting at 1.0), added
    to the affine map; the image is still resampled once (bilinear, zeros
    outside).
    """

    ELASTIC_SIGMA = 4.0
    ELASTIC_ALPHA = 34.0

    def __init__(
        self,
        rotation_deg: float = 10.0,
        scale: float = 0.1,
        shear: float = 0.15,
        translate: float = 0.1,
        seed: int | None = None,
        stroke: float = 0.0,
        elastic: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.stroke = stroke
        self.elastic = elastic
        self.rotation_deg = rotation_deg
        self.scale = scale
        self.shear = shear
        self.translate = translate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @classmethod
    def with_strength(cls, warp: float | None, **kwargs) -> RandomAffine:
        """The default ranges of rotation, scale, shear and translation times ``warp``."""
        w = 1.0 if warp is None else float(warp)
        return cls(
            rotation_deg=10.0 * w, scale=0.1 * w, shear=0.15 * w, translate=0.1 * w, **kwargs
        )

    def call(self, images, training=None):
        if not training:
            return images
        images = ops.cast(images, "float32")
        batch = ops.shape(images)[0]
        h, w = float(images.shape[1]), float(images.shape[2])

        def uniform(limit):
            return keras.random.uniform(
                (batch,), -limit, limit, dtype="float32", seed=self.seed_generator
            )

        if self.stroke > 0:
            t = ops.reshape(uniform(self.stroke), (-1, 1, 1, 1))
            dilated = ops.max_pool(images, 3, strides=1, padding="same")
            eroded = -ops.max_pool(-images, 3, strides=1, padding="same")
            target = ops.where(t > 0, dilated, eroded)
            images = images + ops.abs(t) * (target - images)
        angle = uniform(self.rotation_deg * math.pi / 180.0)
        zoom = 1.0 + uniform(self.scale)
        shear = uniform(self.shear)
        tx, ty = uniform(self.translate * w), uniform(self.translate * h)
        # Output pixel (x, y) samples input pixel M @ (x - c) + c - t, where
        # M = (R(angle) @ Shear) / zoom maps output to input coordinates.
        cos, sin = ops.cos(angle) / zoom, ops.sin(angle) / zoom
        a0, a1 = cos, cos * shear - sin
        b0, b1 = sin, sin * shear + cos
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        a2 = cx - a0 * cx - a1 * cy - tx
        b2 = cy - b0 * cx - b1 * cy - ty
        if self.elastic > 0:
            return self._sample(images, (a0, a1, a2, b0, b1, b2), self._displacement(batch))
        zeros = ops.zeros_like(angle)
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)  # (B, 8)
        return ops.image.affine_transform(
            images, transform, interpolation="bilinear", fill_mode="constant", fill_value=0.0
        )

    def _displacement(self, batch):
        """(B, H, W, 2) smooth random displacements in pixels (dx, dy)."""
        h, w = INPUT_SHAPE[0], INPUT_SHAPE[1]
        field = keras.random.uniform(
            (batch, h, w, 2), -1.0, 1.0, dtype="float32", seed=self.seed_generator
        )
        sigma = self.ELASTIC_SIGMA
        radius = int(math.ceil(3 * sigma))
        g = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
        g = ops.convert_to_tensor([v / sum(g) for v in g], dtype="float32")
        k = 2 * radius + 1
        # separable Gaussian, each of the two channels on its own (depthwise)
        kernel = ops.tile(ops.reshape(g, (k, 1, 1, 1)), (1, 1, 2, 1))
        field = ops.depthwise_conv(field, kernel, padding="same")
        kernel = ops.tile(ops.reshape(g, (1, k, 1, 1)), (1, 1, 2, 1))
        field = ops.depthwise_conv(field, kernel, padding="same")
        return field * (self.ELASTIC_ALPHA * self.elastic)

    @staticmethod
    def _sample(images, affine, shift):
        """Bilinear resampling at affine(x, y) + shift(x, y), zeros outside (one pass)."""
        a0, a1, a2, b0, b1, b2 = (ops.reshape(v, (-1, 1, 1)) for v in affine)
        batch = ops.shape(images)[0]
        h, w = INPUT_SHAPE[0], INPUT_SHAPE[1]
        yy, xx = ops.meshgrid(
            ops.arange(h, dtype="float32"), ops.arange(w, dtype="float32"), indexing="ij"
        )
        xs = a0 * xx + a1 * yy + a2 + shift[..., 0]  # (B, H, W): where each output pixel
        ys = b0 * xx + b1 * yy + b2 + shift[..., 1]  # samples the input
        x0, y0 = ops.floor(xs), ops.floor(ys)
        fx, fy = xs - x0, ys - y0
        flat = ops.reshape(images, (-1,))
        base = ops.reshape(ops.arange(batch, dtype="int32") * (h * w), (-1, 1, 1))
        out = 0.0
        for dy, wy in ((0.0, 1.0 - fy), (1.0, fy)):
            for dx, wx in ((0.0, 1.0 - fx), (1.0, fx)):
                xi, yi = x0 + dx, y0 + dy
                inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
                idx = base + ops.cast(ops.clip(yi, 0, h - 1) * w + ops.clip(xi, 0, w - 1), "int32")
                val = ops.take(flat, ops.reshape(idx, (-1,)))
                val = ops.reshape(val, ops.shape(xs))
                out = out + ops.where(inside, val, 0.0) * wx * wy
        return ops.expand_dims(out, -1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rotation_deg": self.rotation_deg,
            "scale": self.scale,
            "shear": self.shear,
            "translate": self.translate,
            "seed": self.seed,
            "stroke": self.stroke,
            "elastic": self.elastic,
        }


# --------------------------------------------------------------------------- architectures


def _head(x, name: str, classes: int = NUM_CLASSES):
    # Keep the classifier output float32 under mixed precision (stable softmax).
    return layers.Dense(classes, activation="softmax", dtype="float32", name=name)(x)


def seed_cnn() -> keras.Model:
    """The original project's CNN, layer for layer."""
    inputs = keras.Input(INPUT_SHAPE, name="input")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)  # (B, 28, 28, 32)
    x = layers.MaxPooling2D(2)(x)  # (B, 14, 14, 32)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)  # (B, 7, 7, 64)
    x = layers.Conv2D(128, 3, padding="same", activation="relu")(x)  # (B, 7, 7, 128)
    x = layers.Flatten()(x)  # (B, 6272)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, _head(x, "probs"), name="seed_cnn")


def lenet5() -> keras.Model:
    """LeNet-5 (LeCun et al. 1998): tanh, average pooling, 6-16-120-84-10."""
    inputs = keras.Input(INPUT_SHAPE, name="input")
    # 'same' padding on 28x28 plays the role of the original 32x32 padded input.
    x = layers.Conv2D(6, 5, padding="same", activation="tanh")(inputs)  # (B, 28, 28, 6)
    x = layers.AveragePooling2D(2)(x)  # (B, 14, 14, 6)
    x = layers.Conv2D(16, 5, activation="tanh")(x)  # (B, 10, 10, 16)
    x = layers.AveragePooling2D(2)(x)  # (B, 5, 5, 16)
    x = layers.Flatten()(x)  # (B, 400)
    x = layers.Dense(120, activation="tanh")(x)
    x = layers.Dense(84, activation="tanh")(x)
    return keras.Model(inputs, _head(x, "probs"), name="lenet5")


def _conv_bn(x, filters: int, stride: int = 1, name: str = "", momentum: float = 0.99):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def inkdigits_cnn() -> keras.Model:
    """Our compact CNN: 3x3 conv stacks with batch norm, strided downsampling, dropout.

    Downsampling by stride-2 convolutions rather than a second full-resolution
    convolution plus pooling keeps most of the work at 14x14 and 7x7, which is
    what makes it affordable on a 2-core CPU.
    """
    inputs = keras.Input(INPUT_SHAPE, name="input")
    x = _conv_bn(inputs, 32, name="c1")  # (B, 28, 28, 32)
    x = _conv_bn(x, 32, stride=2, name="c2")  # (B, 14, 14, 32)
    x = _conv_bn(x, 64, name="c3")  # (B, 14, 14, 64)
    x = _conv_bn(x, 64, stride=2, name="c4")  # (B, 7, 7, 64)
    x = _conv_bn(x, 128, name="c5")  # (B, 7, 7, 128)
    x = _conv_bn(x, 128, name="c6")  # (B, 7, 7, 128)
    x = layers.GlobalAveragePooling2D()(x)  # (B, 128)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, _head(x, "probs"), name="inkdigits_cnn")


def _strided_stem(inputs, width: int):
    """5x5 stride-2 convolution, batch norm, ReLU: (B, 28, 28, 1) -> (B, 14, 14, width).

    Fast-moving batch-norm statistics: a run of one or two epochs must not
    evaluate with running averages that still remember the first steps.
    """
    x = layers.Conv2D(width, 5, strides=2, padding="same", use_bias=False, name="c1")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="c1_bn")(x)
    return layers.ReLU(name="c1_relu")(x)


def fast_cnn(width: int = 32, hidden: int = 128) -> keras.Model:
    """A small CNN tuned for time-to-accuracy: 99% test accuracy in about 2 epochs on 2 cores.

    Two strided convolutions (no pooling, nothing at full resolution after the
    first layer) then a dense layer: on this CPU it trains at 6.5 s per epoch,
    where a 3-layer conv+pool net of similar accuracy took 19 s
    (docs/BENCHMARKS.md, "Time to accuracy").
    """
    inputs = keras.Input(INPUT_SHAPE, name="input")
    x = _strided_stem(inputs, width)  # (B, 14, 14, w)
    x = _conv_bn(x, 2 * width, stride=2, name="c2", momentum=0.9)  # (B, 7, 7, 2w)
    x = layers.Flatten()(x)  # (B, 98w)
    if hidden:
        x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    return keras.Model(inputs, _head(x, "probs"), name="fast_cnn")


def quick_cnn(
    width: int = 48, hidden: int = 128, classes: int = NUM_CLASSES, name: str = "quick_cnn"
) -> keras.Model:
    """fast-cnn with one more 3x3 convolution at each resolution: 99.5% in 4 epochs.

    Still nothing at full resolution but the first (strided) layer, so an
    epoch costs about 29 s on 2 cores; with light augmentation and label
    smoothing it passes 99.5% test accuracy after 4 of a 5-epoch one-cycle
    budget (docs/BENCHMARKS.md, "Time to accuracy").
    """
    inputs = keras.Input(INPUT_SHAPE, name="input")
    x = _strided_stem(inputs, width)  # (B, 14, 14, w)
    x = _conv_bn(x, width, name="c2", momentum=0.9)  # (B, 14, 14, w)
    x = _conv_bn(x, 2 * width, stride=2, name="c3", momentum=0.9)  # (B, 7, 7, 2w)
    x = _conv_bn(x, 2 * width, name="c4", momentum=0.9)  # (B, 7, 7, 2w)
    x = layers.Flatten()(x)  # (B, 98w)
    x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    return keras.Model(inputs, _head(x, "probs", classes), name=name)


def whole_cnn() -> keras.Model:
    """Is this cut-out one whole digit? quick-cnn (width 32) with an eleventh class.

    Classes 0-9: the segment holds that digit whole; 10 (NOT_WHOLE): a part of
    a digit, or parts of two (see inkdigits.segment_data).
    """
    return quick_cnn(width=32, classes=NUM_CLASSES + 1, name="whole_cnn")


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "seed-cnn",
            "the original project's CNN and its recipe (RMSprop, 5 epochs, batch 64)",
            seed_cnn,
            Recipe(
                epochs=5,
                batch_size=64,
                lr=1e-3,
                optimizer="rmsprop",
                schedule="constant",
                augment=False,
            ),
            params=904_522,
        ),
        ModelSpec(
            "lenet5",
            "LeNet-5 (1998) as a reference point",
            lenet5,
            Recipe(
                epochs=10,
                batch_size=128,
                lr=1e-3,
                optimizer="adam",
                schedule="onecycle",
                augment=False,
            ),
            params=61_706,
        ),
        ModelSpec(
            "fast-cnn",
            "small CNN for time-to-accuracy runs",
            fast_cnn,
            Recipe(
                epochs=3,
                batch_size=256,
                lr=4e-3,
                optimizer="adam",
                schedule="onecycle",
                augment=False,
            ),
            params=422_442,
        ),
        ModelSpec(
            "quick-cnn",
            "fast-cnn with two more convolutions, for time to 99.5%",
            quick_cnn,
            Recipe(
                epochs=5,
                batch_size=256,
                lr=4e-3,
                optimizer="adam",
                schedule="onecycle",
                augment=True,
                warp=0.6,
                label_smoothing=0.1,
            ),
            params=751_034,
        ),
        ModelSpec(
            "whole-cnn",
            "is a cut-out of touching digits one whole digit? (splits touching digits)",
            whole_cnn,
            Recipe(
                epochs=6,
                batch_size=256,
                lr=3e-3,
                optimizer="adam",
                schedule="onecycle",
                augment=True,
                warp=0.5,
            ),
            params=469_035,
            classes=NUM_CLASSES + 1,
            data="segments",
        ),
        ModelSpec(
            "inkdigits-cnn",
            "our compact BN CNN with augmentation; the shipped default model",
            inkdigits_cnn,
            Recipe(
                epochs=60,
                batch_size=128,
                lr=3e-3,
                optimizer="adamw",
                schedule="onecycle",
                augment=True,
                weight_decay=1e-2,
                patience=None,
                stroke=0.5,
            ),
            params=289_066,
        ),
    ]
}


def get_spec(name: str) -> ModelSpec:
    """The registered spec for ``name``; a clear error lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(REGISTRY)}") from None


def build(name: str) -> keras.Model:
    """Build the registered architecture ``name`` (under the current dtype policy)."""
    return get_spec(name).builder()
