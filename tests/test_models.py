"""Every registered model: output shape, parameter count, no NaN, gradients, a step learns."""

from __future__ import annotations

import numpy as np
import pytest

from inkdigits import models
from inkdigits._backend import keras
from inkdigits.errors import ConfigError

NAMES = list(models.REGISTRY)


@pytest.fixture(autouse=True)
def _float32_policy():
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize("name", NAMES)
def test_build_shape_params_no_nan(name):
    model = models.build(name)
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (3, models.REGISTRY[name].classes)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert model.count_params() == models.REGISTRY[name].params


@pytest.mark.parametrize("name", NAMES)
def test_every_weight_gets_a_gradient(name):
    import tensorflow as tf

    model = models.build(name)
    x = np.random.default_rng(1).random((8, 28, 28, 1), dtype=np.float32)
    y = np.eye(models.REGISTRY[name].classes, dtype=np.float32)[np.arange(8) % 10]
    with tf.GradientTape() as tape:
        loss = keras.losses.categorical_crossentropy(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads, strict=True) if g is None]
    assert missing == []
    zero = [
        v.path
        for v, g in zip(model.trainable_variables, grads, strict=True)
        if not np.any(np.asarray(g))
    ]
    assert zero == []


@pytest.mark.parametrize("name", NAMES)
def test_one_training_step_lowers_the_loss(name, mnist):
    keras.utils.set_random_seed(0)
    model = models.build(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    x = (mnist.train_images[:64].astype(np.float32) / 255.0)[..., None]
    y = np.eye(models.REGISTRY[name].classes, dtype=np.float32)[mnist.train_labels[:64]]
    before = float(model.evaluate(x, y, verbose=0))
    model.train_on_batch(x, y)
    after = float(model.evaluate(x, y, verbose=0))
    assert after < before


def test_seed_cnn_is_the_original_architecture():
    model = models.build("seed-cnn")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D",
        "Flatten", "Dense", "Dense", "Dropout", "Dense",
    ]  # fmt: skip
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 64, 128]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [128, 64, 10]
    assert models.REGISTRY["seed-cnn"].recipe.optimizer == "rmsprop"
    assert models.REGISTRY["seed-cnn"].recipe.epochs == 5
    assert models.REGISTRY["seed-cnn"].recipe.batch_size == 64


def test_random_affine_identity_at_inference_and_warps_in_training():
    layer = models.RandomAffine(seed=3)
    x = np.zeros((4, 28, 28, 1), np.float32)
    x[:, 10:18, 12:16] = 1.0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    assert y.shape == x.shape
    assert 0.0 <= y.min() and y.max() <= 1.0 + 1e-6
    assert not np.allclose(y, x)
    # ink mass is roughly preserved (scale within +-10% -> area within about +-21%)
    ratio = y.sum(axis=(1, 2, 3)) / x.sum(axis=(1, 2, 3))
    assert np.all((ratio > 0.75) & (ratio < 1.3))


def test_warp_strength_scales_every_range_and_round_trips():
    layer = models.RandomAffine.with_strength(0.6, seed=0)
    assert (layer.rotation_deg, layer.scale, layer.shear, layer.translate) == pytest.approx(
        (6.0, 0.06, 0.09, 0.06)
    )
    again = models.RandomAffine.from_config(layer.get_config())
    assert again.rotation_deg == pytest.approx(6.0) and again.translate == pytest.approx(0.06)
    default = models.RandomAffine.with_strength(None)
    assert (default.rotation_deg, default.shear) == (10.0, 0.15)


def test_random_affine_zero_ranges_is_identity():
    layer = models.RandomAffine(rotation_deg=0, scale=0, shear=0, translate=0, seed=0)
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=True)), x, atol=1e-5)


def test_stroke_augmentation_thickens_and_thins_strokes():
    """With only the pen-width change on, some images gain ink and some lose it."""
    layer = models.RandomAffine(rotation_deg=0, scale=0, shear=0, translate=0, seed=1, stroke=1.0)
    x = np.zeros((64, 28, 28, 1), np.float32)
    x[:, 6:22, 12:15] = 1.0  # a vertical bar three pixels wide
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    mass = y.sum(axis=(1, 2, 3)) / x[0].sum()
    assert mass.max() > 1.3 and mass.min() < 0.7  # thicker and thinner both happen
    assert 0.0 <= y.min() and y.max() <= 1.0 + 1e-6
    # the pen-width change never moves the stroke: its column profile stays centred
    cols = y.sum(axis=(1, 3))
    centre = (cols * np.arange(28)).sum(axis=1) / cols.sum(axis=1)
    np.testing.assert_allclose(centre, 13.0, atol=1e-4)
    config = layer.get_config()
    assert config["stroke"] == 1.0
    assert models.RandomAffine.from_config(config).stroke == 1.0


def test_elastic_sampler_matches_the_affine_warp_without_displacement(mnist):
    """The one-pass sampler used with elastic distortion reads pixels as affine_transform does."""
    x = (mnist.test_images[:16].astype(np.float32) / 255.0)[..., None]
    rng = np.random.default_rng(4)
    angle, zoom = rng.uniform(-0.2, 0.2, 16), 1 + rng.uniform(-0.1, 0.1, 16)
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    a2, b2 = rng.uniform(-3, 3, 16), rng.uniform(-3, 3, 16)
    params = [v.astype(np.float32) for v in (cos, -sin, a2, sin, cos, b2)]
    zeros = np.zeros(16, np.float32)
    ref = keras.ops.image.affine_transform(
        x, np.stack([*params, zeros, zeros], axis=1), "bilinear", "constant", 0.0
    )
    got = models.RandomAffine._sample(x, params, np.zeros((16, 28, 28, 2), np.float32))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), ref, atol=1e-4)


def test_elastic_distortion_bends_strokes_locally():
    """Elastic alone moves pixels by a few px, differently across the image, keeping the ink."""
    layer = models.RandomAffine(rotation_deg=0, scale=0, shear=0, translate=0, seed=2, elastic=1.0)
    x = np.zeros((32, 28, 28, 1), np.float32)
    x[:, 4:24, 12:16] = 1.0  # a vertical bar
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    assert np.isfinite(y).all() and 0.0 <= y.min() and y.max() <= 1.0 + 1e-6
    mass = y.sum(axis=(1, 2, 3)) / x[0].sum()
    # ink kept, locally stretched or squeezed: the field's slope is about std / sigma = 0.3
    assert 0.5 < mass.min() and mass.max() < 2.0 and abs(np.median(mass) - 1) < 0.1
    # the bar's centre moves by different amounts in its top and bottom halves: a bend,
    # which no affine warp of this layer (all ranges 0) could make
    cols = np.arange(28)
    top, bottom = y[:, 4:14, :, 0].sum(axis=1), y[:, 14:24, :, 0].sum(axis=1)
    shift = (top * cols).sum(1) / top.sum(1) - (bottom * cols).sum(1) / bottom.sum(1)
    assert np.abs(shift).max() > 0.5 and np.abs(shift).mean() < 4
    disp = keras.ops.convert_to_numpy(layer._displacement(8))
    assert 0.5 < np.abs(disp).mean() < 3  # Simard's alpha 34, sigma 4: about a pixel or two
    assert models.RandomAffine.from_config(layer.get_config()).elastic == 1.0


def test_unknown_model_lists_known_names():
    with pytest.raises(ConfigError, match="unknown model 'resnet9000'; choose one of: seed-cnn"):
        models.get_spec("resnet9000")
