"""The CNN reparameterization of Hoyer et al. (2019) in TensorFlow; see :mod:`solvers.models`.

The model's interface (``problem``, ``volume_constraint``, ``variables``, ``parameter_specs``,
``model()``) is the :class:`solvers.models.ImageModel` protocol; the architecture is a
:class:`solvers.models.CNNConfig`. This module imports TensorFlow and Keras (for its seeded
initializers); :mod:`solvers.models` re-exports :class:`CNNModel` on first access.

References:
    S. Hoyer, J. Sohl-Dickstein, S. Greydanus, "Neural reparameterization improves structural
    optimization", arXiv:1909.04240 (2019): the CNN and its defaults.
    MSc thesis "Exploring the optimization process in Neurally Reparameterized Topology
    Optimization", TU Delft (2021), appendix B.1.2: the Conv2DTranspose variant.
"""
from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from solvers.flat import ParameterSpec
from solvers.models import CNNConfig, _problem_mask
from solvers.upsampling import bilinear_upsample

__all__ = ["CNNModel"]

_NORMALIZATION_EPSILON = 1e-6


def _global_normalization(x: tf.Tensor) -> tf.Tensor:
    """``(x - mean) / sqrt(var + 1e-6)`` with mean and variance over ALL axes; no parameters.

    Not ``tf.nn.moments``: it computes the variance around ``stop_gradient(mean)``, which leaves
    the first derivative exact (d var / d mean = 0) but makes the second derivative wrong.
    """
    centered = x - tf.reduce_mean(x)
    variance = tf.reduce_mean(tf.square(centered))
    return centered * tf.math.rsqrt(variance + _NORMALIZATION_EPSILON)


class CNNModel:
    """The CNN reparameterization of Hoyer et al. (2019), twice differentiable, in float64 or
    float32 (``config.dtype``).

    Layers (``H, W`` the problem's height and width, ``r = config.total_resize``)::

        latent (latent_size,)  ~ N(0, latent_scale**2), trainable
        dense: (1, latent_size) @ kernel + bias -> (1, (H/r)(W/r) dense_channels), no activation
        reshape -> (1, H/r, W/r, dense_channels)
        for each block (resize, filters):
            bilinear:  tanh -> bilinear upsample x resize -> global normalization
                       -> Conv2D(filters, kernel_size, 'same') (+ bias)
            transpose: tanh -> global normalization
                       -> Conv2DTranspose(filters, kernel_size, strides=resize, 'same') (+ bias)
            -> + offset_scale * offset   (offset: (1, h, w, filters), zero-initialized)
        squeeze -> z (H, W)

    Initialization: dense kernel orthogonal with gain ``dense_init_scale*sqrt(max(units /
    latent_size, 1))``; conv kernels VarianceScaling(scale=1, fan_in, truncated normal) as Keras
    computes the fans of the kernel's Keras shape; all biases and offsets zero. Every
    initializer gets its own seed derived from ``seed`` with ``numpy.random.SeedSequence``. The
    initial values are drawn in float64 and rounded to ``config.dtype``: a float32 model starts at
    the float32 rounding of the float64 model of the same seed.

    The volume constraint always applies (``volume_constraint`` is ``True``): the output are logits.

    Variable order (``variables`` and ``parameter_specs``): ``dense/kernel``, ``dense/bias``, then
    per block ``i``: ``conv_i/kernel`` (or ``conv_transpose_i/kernel``), ``conv_i/bias`` (or
    ``conv_transpose_i/bias``), ``offset_i`` (when ``offset_scale != 0``); ``latent`` last.

    Args:
        problem: the problem (``width``, ``height``, ``mask``, ``volume_fraction`` are read);
            width and height must be multiples of ``config.total_resize``.
        seed: non-negative integer; the same seed gives bitwise-identical variables.
        config: the architecture.

    Raises:
        ValueError: the problem's size is not divisible by ``config.total_resize``, or a bad seed.
    """

    volume_constraint = True

    def __init__(self, problem: Any, *, seed: int, config: CNNConfig = CNNConfig()):
        _problem_mask(problem)
        if not isinstance(config, CNNConfig):
            raise TypeError(f"config must be a CNNConfig; got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
        total = config.total_resize
        if problem.height % total or problem.width % total:
            raise ValueError(
                f"problem size height x width = {problem.height} x {problem.width} must be "
                f"divisible by the product of resizes {config.resizes} = {total}; choose a size "
                f"that is a multiple of {total} or other resizes")
        self.problem = problem
        self.seed = int(seed)
        self.config = config
        self.dtype = tf.as_dtype(config.dtype)
        seeds = iter(np.random.SeedSequence(self.seed).generate_state(2 + len(config.resizes)))

        def next_seed() -> int:
            return int(next(seeds) & 0x7FFFFFFF)

        height, width = problem.height // total, problem.width // total
        channels = config.dense_channels
        units = height * width * channels
        gain = config.dense_init_scale * math.sqrt(max(units / config.latent_size, 1.0))
        self._specs: list[ParameterSpec] = []
        self._variables: list[tf.Variable] = []
        self._initial_shape = (1, height, width, channels)
        dense_initializer = keras.initializers.Orthogonal(gain=gain, seed=next_seed())
        self._dense_kernel = self._add("dense/kernel", "dense_kernel", dense_initializer(
            (config.latent_size, units), dtype="float64"))
        self._dense_bias = self._add("dense/bias", "bias", tf.zeros((units,), self.dtype))
        self._blocks = []
        prefix = "conv" if config.upsampling == "bilinear" else "conv_transpose"
        for index, (resize, filters) in enumerate(zip(config.resizes, config.conv_filters)):
            height, width = height * resize, width * resize
            kernel_shape = (*config.kernel_size, channels, filters)
            if config.upsampling == "transpose":  # Keras Conv2DTranspose layout (kh, kw, out, in)
                kernel_shape = (*config.kernel_size, filters, channels)
            initializer = keras.initializers.VarianceScaling(
                scale=1.0, mode="fan_in", distribution="truncated_normal", seed=next_seed())
            kind = "conv_kernel" if config.upsampling == "bilinear" else "conv_transpose_kernel"
            kernel = self._add(f"{prefix}_{index}/kernel", kind,
                               initializer(kernel_shape, dtype="float64"))
            bias = self._add(f"{prefix}_{index}/bias", "bias", tf.zeros((filters,), self.dtype))
            offset = None
            if config.offset_scale != 0:
                offset = self._add(f"offset_{index}", "offset",
                                   tf.zeros((1, height, width, filters), self.dtype))
            self._blocks.append((resize, kernel, bias, offset, (1, height, width, filters)))
            channels = filters
        self._latent = self._add("latent", "latent", keras.initializers.RandomNormal(
            stddev=config.latent_scale, seed=next_seed())((config.latent_size,), dtype="float64"))
        self._specs = tuple(self._specs)

    def _add(self, name: str, kind: str, initial_value: Any) -> tf.Variable:
        variable = tf.Variable(tf.cast(initial_value, self.dtype), trainable=True,
                               dtype=self.dtype, name=name.replace("/", "_"))
        self._variables.append(variable)
        self._specs.append(ParameterSpec(name, tuple(variable.shape), kind))
        return variable

    @property
    def variables(self) -> list[tf.Variable]:
        """The trainable variables (dtype ``config.dtype``), in ``parameter_specs`` order."""
        return list(self._variables)

    @property
    def parameter_specs(self) -> tuple[ParameterSpec, ...]:
        return self._specs

    @property
    def num_parameters(self) -> int:
        """Total number of trainable scalars (567,553 for the paper's defaults at 32 x 64)."""
        return sum(spec.size for spec in self._specs)

    def __call__(self) -> tf.Tensor:
        """The image z: ``(height, width)`` logits in ``config.dtype`` from the current variables
        (the objective casts them to float64 for the physics)."""
        net = tf.matmul(self._latent[tf.newaxis, :], self._dense_kernel) + self._dense_bias
        net = tf.reshape(net, self._initial_shape)
        for resize, kernel, bias, offset, out_shape in self._blocks:
            net = tf.tanh(net)
            if self.config.upsampling == "bilinear":
                net = _global_normalization(bilinear_upsample(net, resize))
                net = tf.nn.conv2d(net, kernel, strides=1, padding="SAME")
            else:
                net = _global_normalization(net)
                net = tf.nn.conv2d_transpose(net, kernel, output_shape=out_shape,
                                             strides=resize, padding="SAME")
            net = net + bias
            if offset is not None:
                net = net + self.config.offset_scale * offset
        return net[0, :, :, 0]
