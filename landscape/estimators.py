"""Randomized estimators of Hessian trace and Frobenius norm, and directional curvature metrics.

Conventions: ``op`` is a symmetric float64 ``LinearOperator`` ``(n, n)``; every estimator draws its
probe vectors from an explicit seed; probes are unnormalized with ``E[v v^T] = I``
(Rademacher entries +-1 or standard Gaussian entries).

References:
    M. F. Hutchinson, "A stochastic estimator of the trace of the influence matrix for Laplacian
    smoothing splines" (1990): ``tr A = E[v^T A v]``.
    ``|A|_F^2 = E[|A v|^2]`` for isotropic ``v`` (used by L. Wu, Z. Zhu, W. E (2017)).
    S. Fort & S. Ganguli, "Emergent properties of the local geometry of neural loss landscapes"
    (2019): the ratio ``tr H / |H|_F``. G. Gur-Ari, D. A. Roberts, E. Dyer, "Gradient descent
    happens in a tiny subspace" (2018): the overlap ``g^T H g / (|g| |H g|)`` (thesis eq. 2.9).
    Thesis settings (Appendix B.5): 3 seeds x 50 probes.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from scipy.sparse.linalg import LinearOperator

from landscape.lanczos import as_generator

__all__ = ["Estimate", "hutchinson_trace", "frobenius_norm_squared", "frobenius_norm",
           "trace_to_frobenius_ratio", "curvature_along", "gradient_hessian_overlap"]

Distribution = Literal["rademacher", "gaussian"]


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A Monte-Carlo estimate.

    Attributes:
        value: the estimate.
        standard_error: its standard error (sample standard deviation / sqrt(num_samples), or
            the delta-method error for a derived quantity).
        samples: float64 per-probe values; their meaning is given by the producing function.
    """

    value: float
    standard_error: float
    samples: np.ndarray

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])


def _probes(n: int, num_samples: int, seed, distribution: str) -> np.ndarray:
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2 to report a standard error, got {num_samples}")
    rng = as_generator(seed)
    if distribution == "rademacher":
        return rng.choice(np.array([-1.0, 1.0]), size=(num_samples, n))
    if distribution == "gaussian":
        return rng.standard_normal((num_samples, n))
    raise ValueError(f"distribution must be 'rademacher' or 'gaussian', got {distribution!r}")


def _products(op: LinearOperator, probes: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(op.matvec(v), dtype=np.float64).reshape(-1) for v in probes])


def _mean_estimate(samples: np.ndarray) -> Estimate:
    return Estimate(value=float(samples.mean()),
                    standard_error=float(samples.std(ddof=1) / np.sqrt(samples.shape[0])),
                    samples=samples)


def hutchinson_trace(op: LinearOperator, num_samples: int, seed: int | np.random.Generator,
                     distribution: Distribution = "rademacher") -> Estimate:
    """Hutchinson's estimator ``tr A ~= mean_i v_i^T A v_i``.

    Returns:
        :class:`Estimate` with ``samples`` = ``v_i^T A v_i``, float64 ``(num_samples,)``.
    """
    probes = _probes(op.shape[0], num_samples, seed, distribution)
    images = _products(op, probes)
    return _mean_estimate(np.einsum("ij,ij->i", probes, images))


def frobenius_norm_squared(op: LinearOperator, num_samples: int,
                           seed: int | np.random.Generator,
                           distribution: Distribution = "gaussian") -> Estimate:
    """``|A|_F^2 ~= mean_i |A v_i|^2``.

    Returns:
        :class:`Estimate` of the SQUARED norm, ``samples`` = ``|A v_i|^2`` ``(num_samples,)``.
    """
    probes = _probes(op.shape[0], num_samples, seed, distribution)
    images = _products(op, probes)
    return _mean_estimate(np.einsum("ij,ij->i", images, images))


def frobenius_norm(op: LinearOperator, num_samples: int, seed: int | np.random.Generator,
                   distribution: Distribution = "gaussian") -> Estimate:
    """``|A|_F ~= sqrt(mean_i |A v_i|^2)``.

    Returns:
        :class:`Estimate` of the norm (not squared) with delta-method standard error
        ``se(|A|_F^2) / (2 |A|_F)``; ``samples`` = ``|A v_i|^2`` (squared, as averaged).
    """
    squared = frobenius_norm_squared(op, num_samples, seed, distribution)
    value = float(np.sqrt(max(squared.value, 0.0)))
    error = squared.standard_error / (2 * value) if value > 0 else float("inf")
    return Estimate(value=value, standard_error=float(error), samples=squared.samples)


def trace_to_frobenius_ratio(op: LinearOperator, num_samples: int,
                             seed: int | np.random.Generator,
                             distribution: Distribution = "rademacher") -> Estimate:
    """Fort & Ganguli's ``tr A / |A|_F`` from one product per probe.

    Both ``v^T A v`` and ``|A v|^2`` come from the same products; the standard error is the
    delta method with their sample covariance.

    Returns:
        :class:`Estimate`; ``samples`` is float64 ``(num_samples, 2)`` with columns
        ``(v_i^T A v_i, |A v_i|^2)``.
    """
    probes = _probes(op.shape[0], num_samples, seed, distribution)
    images = _products(op, probes)
    quadratic = np.einsum("ij,ij->i", probes, images)
    squared = np.einsum("ij,ij->i", images, images)
    t, f = quadratic.mean(), squared.mean()
    if f <= 0:
        raise ValueError("the operator annihilated every probe: |A|_F estimate is 0")
    value = t / np.sqrt(f)
    covariance = np.cov(np.stack([quadratic, squared]), ddof=1) / num_samples
    gradient = np.array([1.0 / np.sqrt(f), -0.5 * t * f ** -1.5])
    error = float(np.sqrt(max(gradient @ covariance @ gradient, 0.0)))
    return Estimate(value=float(value), standard_error=error,
                    samples=np.column_stack([quadratic, squared]))


def _as_vector(vector: np.ndarray, n: int, name: str) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64).reshape(-1)
    if vector.shape != (n,):
        raise ValueError(f"{name} has shape {vector.shape}; expected ({n},)")
    if not np.any(vector):
        raise ValueError(f"{name} is the zero vector; the quantity is undefined")
    return vector


def curvature_along(op: LinearOperator, direction: np.ndarray) -> float:
    """Rayleigh quotient ``d^T A d / d^T d``: curvature per unit squared length along ``d``.

    Normalized by ``|d|^2``, so it does not depend on the scale of ``d`` and lies in
    ``[lambda_min, lambda_max]``. One operator product.
    """
    d = _as_vector(direction, op.shape[0], "direction")
    return float(d @ op.matvec(d) / (d @ d))


def gradient_hessian_overlap(op: LinearOperator, gradient: np.ndarray) -> float:
    """Gur-Ari et al.'s overlap ``g^T A g / (|g| |A g|)`` in ``[-1, 1]`` (thesis eq. 2.9).

    Equals 1 when ``g`` is an eigenvector with a positive eigenvalue. NaN if ``A g = 0``.
    """
    g = _as_vector(gradient, op.shape[0], "gradient")
    image = np.asarray(op.matvec(g), dtype=np.float64).reshape(-1)
    image_norm = np.linalg.norm(image)
    if image_norm == 0:
        return float("nan")
    return float(g @ image / (np.linalg.norm(g) * image_norm))
