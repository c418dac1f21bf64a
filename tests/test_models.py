"""Tests of solvers.models and solvers.upsampling.

Independent answers used: the published parameter counts (Hoyer et al. 2019), TensorFlow's own
``tf.image.resize`` and Keras layers (UpSampling2D, Conv2D, Conv2DTranspose), central finite
differences of gradients for every second derivative, and matrix identities for the initializers.
"""
from __future__ import annotations

import dataclasses
import os
import random
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from solvers.flat import ParameterSpec  # noqa: E402
from solvers.models import (  # noqa: E402
    CNNConfig, CNNModel, ImageModel, PixelModel, _global_normalization)
from solvers.upsampling import bilinear_interpolation_matrix, bilinear_upsample  # noqa: E402

# A tiny architecture for fast tests (same structure as the paper's: 5 blocks, resizes 1,2,2,2,1).
TINY = CNNConfig(latent_size=4, dense_channels=2, conv_filters=(4, 3, 2, 2, 1))


def _problem(width: int = 16, height: int = 8, volume_fraction: float = 0.4, mask=None):
    if mask is None:
        mask = np.ones((height, width), bool)
    return types.SimpleNamespace(width=width, height=height, mask=mask,
                                 volume_fraction=volume_fraction, name="t")


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


# --------------------------------------------------------------------------------------------
# Upsampling


@pytest.mark.parametrize("factor", [1, 2, 4])
@pytest.mark.parametrize("shape", [(1, 3, 5, 2), (2, 4, 4, 3), (1, 1, 7, 1), (1, 8, 4, 16)])
def test_bilinear_upsample_matches_tf_image_resize(factor, shape):
    # tf.image.resize computes in float32 whatever the input dtype; with dyadic inputs (k/64,
    # |k| <= 512) and factors 1, 2, 4 (weights multiples of 1/8) every intermediate is exact in
    # float32, so the two must agree to float64 rounding.
    x = np.random.default_rng(0).integers(-512, 513, size=shape) / 64.0
    ours = bilinear_upsample(tf.constant(x), factor)
    expected = tf.image.resize(tf.constant(x), (shape[1] * factor, shape[2] * factor),
                               method="bilinear")
    keras_layer = keras.layers.UpSampling2D((factor, factor), interpolation="bilinear",
                                            dtype="float64")(tf.constant(x))
    assert ours.dtype == tf.float64
    assert ours.shape == (shape[0], shape[1] * factor, shape[2] * factor, shape[3])
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.numpy(), keras_layer.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("factor", [2, 3])
def test_bilinear_upsample_random_input_and_matrix_form(factor):
    x = np.random.default_rng(1).normal(size=(2, 5, 3, 4))
    ours = bilinear_upsample(tf.constant(x), factor).numpy()
    # float32 reference: agreement to float32 rounding only.
    expected = tf.image.resize(tf.constant(x), (5 * factor, 3 * factor)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)
    # The same map as explicit 1-D matrices: rows sum to 1, at most two nonzeros per row.
    rows, cols = bilinear_interpolation_matrix(5, factor), bilinear_interpolation_matrix(3, factor)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-15)
    assert ((rows != 0).sum(axis=1) <= 2).all()
    np.testing.assert_allclose(ours, np.einsum("ih,jw,bhwc->bijc", rows, cols, x), atol=1e-14)


def _hvp_and_fd(function, x0: np.ndarray, direction: np.ndarray, step: float):
    """HVP by nested GradientTape, and the central difference of the gradient along ``v``."""
    x = tf.Variable(x0)

    def gradient(point):
        x.assign(point)
        with tf.GradientTape() as tape:
            value = function(x)
        return tape.gradient(value, x).numpy()

    x.assign(x0)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            value = function(x)
        grad = inner.gradient(value, x)
        projected = tf.reduce_sum(grad * direction)
    hvp = outer.gradient(projected, x)
    fd = (gradient(x0 + step * direction) - gradient(x0 - step * direction)) / (2 * step)
    return (None if hvp is None else hvp.numpy()), fd


def _nonlinear_scalar(shape, factor, resize):
    weights = tf.constant(np.random.default_rng(3).normal(
        size=(shape[0], shape[1] * factor, shape[2] * factor, shape[3])))

    def function(x):
        up = resize(x, factor)
        return tf.reduce_sum(weights * tf.sin(tf.cast(up, tf.float64)))

    return function


@pytest.mark.parametrize("factor", [2, 3])
def test_bilinear_upsample_hessian_vector_product_vs_finite_differences(factor):
    shape = (1, 4, 3, 2)
    rng = np.random.default_rng(2)
    x0, direction = rng.normal(size=shape), rng.normal(size=shape)
    function = _nonlinear_scalar(shape, factor, bilinear_upsample)
    hvp, fd = _hvp_and_fd(function, x0, direction, step=1e-5)
    # Central differences: truncation O(step^2 * |f'''|) ~ 1e-10, rounding ~ 1e-16 / step ~ 1e-11.
    assert hvp is not None
    assert _relative_error(hvp, fd) <= 1e-6
    # Exact answer from the matrices: H v = U^T diag(-w sin(U x)) U v.
    rows = bilinear_interpolation_matrix(shape[1], factor)
    cols = bilinear_interpolation_matrix(shape[2], factor)
    up = lambda a: np.einsum("ih,jw,bhwc->bijc", rows, cols, a)  # noqa: E731
    down = lambda a: np.einsum("ih,jw,bijc->bhwc", rows, cols, a)  # noqa: E731
    weights = np.random.default_rng(3).normal(size=up(x0).shape)
    exact = down(-weights * np.sin(up(x0)) * up(direction))
    assert _relative_error(hvp, exact) <= 1e-12


def test_tf_image_resize_has_no_second_derivative():
    # The trap this module avoids: nested tapes through tf.image.resize give None (silently) for
    # the Hessian-vector product, although the gradient exists. If TensorFlow ever registers a
    # correct gradient for ResizeBilinearGrad, this test fails and the workaround can be revisited.
    shape = (1, 4, 3, 2)
    rng = np.random.default_rng(2)
    x0, direction = rng.normal(size=shape), rng.normal(size=shape)

    def resize(x, factor):
        return tf.image.resize(x, (x.shape[1] * factor, x.shape[2] * factor), method="bilinear")

    hvp, fd = _hvp_and_fd(_nonlinear_scalar(shape, 2, resize), x0, direction, step=1e-3)
    assert np.linalg.norm(fd) > 1e-2  # the true HVP is far from zero
    assert hvp is None or _relative_error(hvp, fd) > 1e-3


def test_global_normalization_second_derivative_and_the_tf_nn_moments_trap():
    shape = (1, 6, 4, 3)
    rng = np.random.default_rng(6)
    x0, direction = rng.normal(size=shape), rng.normal(size=shape)
    weights = tf.constant(rng.normal(size=shape))

    def moments_normalization(x):  # the paper's formula through tf.nn.moments
        mean, variance = tf.nn.moments(x, axes=[0, 1, 2, 3])
        return (x - mean) * tf.math.rsqrt(variance + 1e-6)

    ours, fd = _hvp_and_fd(lambda x: tf.reduce_sum(weights * tf.sin(_global_normalization(x))),
                           x0, direction, step=1e-5)
    assert _relative_error(ours, fd) <= 1e-6
    # Same values, same gradient, wrong second derivative: tf.nn.moments takes the variance
    # around stop_gradient(mean).
    x = tf.constant(x0)
    np.testing.assert_allclose(moments_normalization(x), _global_normalization(x), atol=1e-12)
    theirs, fd = _hvp_and_fd(lambda x: tf.reduce_sum(weights * tf.sin(moments_normalization(x))),
                             x0, direction, step=1e-5)
    assert _relative_error(theirs, fd) > 1e-4


def test_bilinear_upsample_rejects_bad_input():
    with pytest.raises(ValueError, match="factor"):
        bilinear_upsample(tf.zeros((1, 2, 2, 1), tf.float64), 0)
    with pytest.raises(ValueError, match="factor"):
        bilinear_upsample(tf.zeros((1, 2, 2, 1), tf.float64), 1.5)
    with pytest.raises(ValueError, match="batch, height, width, channels"):
        bilinear_upsample(tf.zeros((2, 2, 1), tf.float64), 2)


# --------------------------------------------------------------------------------------------
# Architecture


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
@pytest.mark.parametrize("width, height, expected", [(32, 64, 567_553), (128, 128, 1_936_641)])
def test_parameter_count_matches_the_paper(width, height, expected, upsampling):
    model = CNNModel(_problem(width, height), seed=0, config=CNNConfig(upsampling=upsampling))
    specs, variables = model.parameter_specs, model.variables
    assert sum(spec.size for spec in specs) == expected == model.num_parameters
    assert sum(int(np.prod(v.shape)) for v in variables) == expected
    assert [spec.shape for spec in specs] == [tuple(v.shape) for v in variables]
    assert all(v.dtype == tf.float64 and v.trainable for v in variables)
    assert len({spec.name for spec in specs}) == len(specs)
    kernel_kind = "conv_kernel" if upsampling == "bilinear" else "conv_transpose_kernel"
    assert {spec.kind for spec in specs} == {"dense_kernel", "bias", kernel_kind, "offset",
                                             "latent"}
    assert specs[0] == ParameterSpec("dense/kernel", (128, (width // 8) * (height // 8) * 32),
                                     "dense_kernel")
    assert specs[-1] == ParameterSpec("latent", (128,), "latent")
    assert isinstance(model, ImageModel)


def test_variable_order_and_names_are_fixed():
    names = [spec.name for spec in CNNModel(_problem(), seed=0, config=TINY).parameter_specs]
    blocks = [[f"conv_{i}/kernel", f"conv_{i}/bias", f"offset_{i}"] for i in range(5)]
    assert names == ["dense/kernel", "dense/bias", *sum(blocks, []), "latent"]
    no_offsets = CNNConfig(latent_size=4, dense_channels=2, conv_filters=(4, 3, 2, 2, 1),
                           offset_scale=0, upsampling="transpose")
    names = [spec.name for spec in CNNModel(_problem(), seed=0, config=no_offsets).parameter_specs]
    assert names == ["dense/kernel", "dense/bias",
                     *sum([[f"conv_transpose_{i}/kernel", f"conv_transpose_{i}/bias"]
                           for i in range(5)], []), "latent"]


def _keras_reference(model: CNNModel) -> np.ndarray:
    """The same network built from Keras layers (as the paper's code did) with our weights."""
    config, problem = model.config, model.problem
    total = config.total_resize
    values = {spec.name: v.numpy() for spec, v in zip(model.parameter_specs, model.variables)}
    dense = keras.layers.Dense(values["dense/kernel"].shape[1], dtype="float64")
    dense.build((1, config.latent_size))
    dense.set_weights([values["dense/kernel"], values["dense/bias"]])
    net = dense(values["latent"][None, :])
    net = tf.reshape(net, (1, problem.height // total, problem.width // total, -1))
    for index, (resize, filters) in enumerate(zip(config.resizes, config.conv_filters)):
        net = tf.tanh(net)
        if config.upsampling == "bilinear":
            net = keras.layers.UpSampling2D((resize, resize), interpolation="bilinear",
                                            dtype="float64")(net)
            layer, prefix = keras.layers.Conv2D(filters, config.kernel_size, padding="same",
                                                dtype="float64"), "conv"
        else:
            layer, prefix = keras.layers.Conv2DTranspose(
                filters, config.kernel_size, strides=resize, padding="same",
                dtype="float64"), "conv_transpose"
        mean, variance = tf.nn.moments(net, axes=[0, 1, 2, 3])
        net = (net - mean) / tf.sqrt(variance + 1e-6)
        layer.build(net.shape)
        layer.set_weights([values[f"{prefix}_{index}/kernel"], values[f"{prefix}_{index}/bias"]])
        net = layer(net) + config.offset_scale * values[f"offset_{index}"]
    return net.numpy()[0, :, :, 0]


@pytest.mark.parametrize("upsampling, tolerance", [("bilinear", 1e-5), ("transpose", 1e-12)])
def test_forward_pass_matches_keras_layers(upsampling, tolerance):
    # UpSampling2D rounds through float32 (tf.image.resize), hence the looser bilinear tolerance.
    config = CNNConfig(latent_size=8, dense_channels=4, conv_filters=(6, 5, 4, 3, 1),
                       upsampling=upsampling)
    model = CNNModel(_problem(24, 16), seed=5, config=config)
    rng = np.random.default_rng(4)
    for variable in model.variables:  # nonzero biases and offsets, so that every term counts
        variable.assign(variable + 0.1 * rng.normal(size=variable.shape))
    z = model()
    assert z.dtype == tf.float64 and z.shape == (16, 24)
    np.testing.assert_allclose(z.numpy(), _keras_reference(model), rtol=0,
                               atol=tolerance * np.abs(z.numpy()).max())


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
@pytest.mark.parametrize("width, height, config", [(16, 8, TINY), (32, 64, CNNConfig())],
                         ids=["tiny-16x8", "paper-32x64"])
def test_cnn_hessian_vector_product_vs_finite_differences(upsampling, width, height, config):
    config = dataclasses.replace(config, upsampling=upsampling)
    model = CNNModel(_problem(width, height), seed=1, config=config)
    variables = model.variables
    sizes = [int(np.prod(v.shape)) for v in variables]
    rng = np.random.default_rng(5)
    weights = tf.constant(rng.normal(size=(height, width)))
    theta0 = np.concatenate([v.numpy().ravel() for v in variables])
    theta0 = theta0 + 0.1 * rng.normal(size=theta0.shape)  # leave the zero-initialized point
    direction = rng.normal(size=theta0.shape)
    direction /= np.linalg.norm(direction)

    def assign(theta):
        for variable, part in zip(variables, np.split(theta, np.cumsum(sizes)[:-1])):
            variable.assign(part.reshape(variable.shape))

    def loss():
        return tf.reduce_sum(weights * tf.sin(model()))

    def flat_gradient(theta):
        assign(theta)
        with tf.GradientTape() as tape:
            value = loss()
        return np.concatenate([g.numpy().ravel() for g in tape.gradient(value, variables)])

    assign(theta0)
    pieces = [tf.constant(p.reshape(v.shape))
              for v, p in zip(variables, np.split(direction, np.cumsum(sizes)[:-1]))]
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            value = loss()
        grads = inner.gradient(value, variables)
        projected = tf.add_n([tf.reduce_sum(g * p) for g, p in zip(grads, pieces)])
    hvp_parts = outer.gradient(projected, variables)
    assert all(part is not None for part in hvp_parts)
    hvp = np.concatenate([part.numpy().ravel() for part in hvp_parts])
    step = 1e-5
    fd = (flat_gradient(theta0 + step * direction) - flat_gradient(theta0 - step * direction))
    fd /= 2 * step
    # Central differences: truncation O(step^2) ~ 1e-10 relative, rounding ~ 1e-11.
    assert np.linalg.norm(fd) > 1e-3
    assert _relative_error(hvp, fd) <= 1e-6


def test_initialization_statistics():
    config = CNNConfig()
    model = CNNModel(_problem(32, 64), seed=3, config=config)
    values = {spec.name: v.numpy() for spec, v in zip(model.parameter_specs, model.variables)}
    kernel = values["dense/kernel"]  # (128, 1024): orthogonal rows of norm gain
    gain = np.sqrt(1024 / 128)
    np.testing.assert_allclose(kernel @ kernel.T, gain ** 2 * np.eye(128), atol=1e-10)
    # VarianceScaling(1, fan_in, truncated normal): std sqrt(1/fan_in), |w| < 2/0.8796 * std.
    conv = values["conv_1/kernel"]  # (5, 5, 128, 64), fan_in = 5*5*128
    std = np.sqrt(1 / (25 * 128))
    assert abs(conv.std() / std - 1) < 0.02
    assert np.abs(conv).max() <= 2 / 0.87962566103423978 * std + 1e-12
    assert abs(values["latent"].std() - 1) < 0.3 and values["latent"].shape == (128,)
    for name, value in values.items():
        if name.endswith("bias") or name.startswith("offset"):
            assert not value.any(), name


def test_seed_reproducibility_does_not_depend_on_python_random():
    random.seed(1)
    first = [v.numpy() for v in CNNModel(_problem(), seed=7, config=TINY).variables]
    random.seed(2)  # Keras initializers without a seed would draw from here
    tf.random.set_seed(3)
    np.random.seed(4)
    second = [v.numpy() for v in CNNModel(_problem(), seed=7, config=TINY).variables]
    other = [v.numpy() for v in CNNModel(_problem(), seed=8, config=TINY).variables]
    for a, b in zip(first, second):
        assert a.tobytes() == b.tobytes()
    random_parts = [i for i, a in enumerate(first) if a.any()]
    assert len(random_parts) == 1 + 5 + 1  # dense kernel, 5 conv kernels, latent
    for i in random_parts:
        assert not np.array_equal(first[i], other[i])


def test_output_follows_the_variables_and_has_image_shape():
    model = CNNModel(_problem(16, 8), seed=0, config=TINY)
    z0 = model().numpy()
    assert z0.shape == (8, 16) and np.isfinite(z0).all()
    model.variables[-1].assign_add(tf.ones_like(model.variables[-1]))
    assert not np.allclose(model().numpy(), z0)
    assert model.volume_constraint is True


def test_pixel_model():
    mask = np.ones((6, 10), bool)
    mask[2:4, 3:7] = False
    problem = _problem(10, 6, volume_fraction=0.3, mask=mask)
    model = PixelModel(problem)
    z = model()
    assert z.dtype == tf.float64 and z.shape == (6, 10)
    np.testing.assert_array_equal(z.numpy(), 0.3 * mask)
    assert model.volume_constraint is True
    assert PixelModel(problem, volume_constraint=False).volume_constraint is False
    assert model.parameter_specs == (ParameterSpec("pixels", (6, 10), "pixels"),)
    assert len(model.variables) == 1 and model.variables[0].dtype == tf.float64
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(model() ** 2)
    np.testing.assert_allclose(tape.gradient(value, model.variables[0]).numpy(), 0.6 * mask)
    assert isinstance(model, ImageModel)


@pytest.mark.parametrize("kwargs, message", [
    (dict(resizes=(1, 2)), "same length"),
    (dict(resizes=(1, 0, 2, 2, 1)), "positive integers"),
    (dict(conv_filters=(128, 64, 32, 16, 2)), "last of conv_filters must be 1"),
    (dict(resizes=(), conv_filters=()), "at least one block"),
    (dict(latent_size=0), "latent_size"),
    (dict(dense_channels=2.5), "dense_channels"),
    (dict(kernel_size=(5, 5, 5)), "kernel_size"),
    (dict(latent_scale=-1.0), "latent_scale"),
    (dict(dense_init_scale=float("nan")), "dense_init_scale"),
    (dict(offset_scale=-10), "offset_scale"),
    (dict(upsampling="nearest"), "upsampling must be one of"),
    (dict(dtype="float16"), "dtype must be one of 'float64', 'float32'"),
    (dict(dtype="half"), "dtype must be one of 'float64', 'float32'"),
])
def test_bad_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CNNConfig(**kwargs)


def test_config_normalizes_sequences_and_bad_models_raise():
    config = CNNConfig(resizes=[1, 2, 2, 2, 1], kernel_size=3)
    assert config.resizes == (1, 2, 2, 2, 1) and config.kernel_size == (3, 3)
    assert config.total_resize == 8
    with pytest.raises(ValueError, match="divisible by the product of resizes"):
        CNNModel(_problem(12, 8), seed=0, config=TINY)
    with pytest.raises(ValueError, match="seed"):
        CNNModel(_problem(), seed=-1, config=TINY)
    with pytest.raises(ValueError, match="mask has shape"):
        PixelModel(_problem(16, 8, mask=np.ones((16, 8), bool)))
    with pytest.raises(TypeError, match="CNNConfig"):
        CNNModel(_problem(), seed=0, config=dict(latent_size=4))
