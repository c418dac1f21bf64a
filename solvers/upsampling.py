"""Bilinear upsampling by an integer factor as a fixed linear map: exact to every order.

Why this module exists: ``tf.image.resize(..., method='bilinear')`` (and Keras ``UpSampling2D``
with ``interpolation='bilinear'``, which calls it) has a first derivative (the op
``ResizeBilinearGrad``) but no derivative of that derivative, so a Hessian-vector product by nested
``tf.GradientTape`` through it is silently wrong. It also computes in float32 whatever the input
dtype. Bilinear interpolation is linear in the image, so here it is written as two small dense
interpolation matrices applied along the rows and the columns (a separable linear map): its
derivatives of every order are again the same matrices, and it computes in the input's dtype.

Conventions:
    * Images are ``(batch, height, width, channels)`` (Keras ``channels_last``).
    * The interpolation is TensorFlow's (half-pixel centers, no antialiasing): output index ``i``
      samples the input at ``s = (i + 0.5) / factor - 0.5``, between ``floor(s)`` and
      ``floor(s) + 1`` with weights ``1 - frac(s)`` and ``frac(s)``; indices beyond the edge are
      clamped to the edge.
    * Cost: for an ``(1, h, w, c)`` input, ``O(factor**2 * h * w * c * (h + w))``; no matrix of
      size ``(h*w)**2`` is ever formed.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["bilinear_interpolation_matrix", "bilinear_upsample"]


def _check_factor(factor: int) -> int:
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"upsampling factor must be a positive integer; got {factor!r}")
    return int(factor)


def bilinear_interpolation_matrix(size: int, factor: int) -> np.ndarray:
    """The 1-D bilinear interpolation matrix of TensorFlow's half-pixel-center resize.

    Args:
        size: number of input samples ``n`` along the axis (positive).
        factor: integer upsampling factor ``f`` (positive).

    Returns:
        float64 array of shape ``(n * f, n)``: row ``i`` holds the weights with which output
        sample ``i`` combines the input samples. Each row sums to 1 and has at most two nonzeros.
        ``f == 1`` gives the identity.
    """
    factor = _check_factor(factor)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer; got {size!r}")
    out = np.arange(size * factor)
    source = (out + 0.5) / factor - 0.5
    lower = np.floor(source)
    frac = source - lower
    lower = lower.astype(np.int64)
    matrix = np.zeros((size * factor, size), dtype=np.float64)
    np.add.at(matrix, (out, np.clip(lower, 0, size - 1)), 1.0 - frac)
    np.add.at(matrix, (out, np.clip(lower + 1, 0, size - 1)), frac)
    return matrix


def bilinear_upsample(images: tf.Tensor, factor: int) -> tf.Tensor:
    """Upsample ``images`` by ``factor`` along height and width, bilinearly, twice differentiably.

    Equals ``tf.image.resize(images, (factor*h, factor*w), method='bilinear')`` (what Keras
    ``UpSampling2D((factor, factor), interpolation='bilinear')`` computes) up to rounding, but in
    the dtype of ``images`` and with exact derivatives of every order (it is a fixed linear map).

    Args:
        images: float tensor of shape ``(batch, h, w, channels)``; static ``h`` and ``w``.
        factor: positive integer; 1 returns ``images`` unchanged.

    Returns:
        Tensor of shape ``(batch, factor*h, factor*w, channels)``, dtype of ``images``.
    """
    factor = _check_factor(factor)
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4 or images.shape[1] is None or images.shape[2] is None:
        raise ValueError(
            f"images must have shape (batch, height, width, channels) with static height and "
            f"width; got {images.shape}")
    if factor == 1:
        return images
    rows = tf.constant(bilinear_interpolation_matrix(images.shape[1], factor), images.dtype)
    cols = tf.constant(bilinear_interpolation_matrix(images.shape[2], factor), images.dtype)
    upsampled = tf.einsum("ih,bhwc->biwc", rows, images)
    return tf.einsum("jw,biwc->bijc", cols, upsampled)
