"""Directions in parameter space: filter-normalized random, trajectory PCA, Hessian eigenvectors.

Conventions: directions are float64 ``(n,)`` flat vectors in the layout of
:func:`solvers.flat.flatten`; tensor shapes follow the model's own (Keras) layout, and each
:class:`solvers.flat.ParameterSpec` ``kind`` decides how its tensor is split into "filters".

Filter normalization (Li, Xu, Taylor, Studer & Goldstein, "Visualizing the loss landscape of
neural nets", NeurIPS 2018, Section 4): for every filter ``j`` of every tensor,
``d_j <- d_j * |theta_j| / |d_j|`` (Frobenius norms). What a filter is, per ``kind``:

    ============================  =============================================================
    ``conv_kernel``               Conv2D kernel ``(kh, kw, in, out)``: one filter per output
                                  channel, ``[..., j]``.
    ``conv_transpose_kernel``     Conv2DTranspose kernel ``(kh, kw, out, in)``: one filter per
                                  output channel, ``[..., j, :]``.
    ``dense_kernel``              ``(in, out)``: one filter per output unit, ``[:, j]``.
    ``bias``                      1-D: zeroed when ``zero_1d`` (Li et al.'s ``ignore='biasbn'``),
                                  otherwise normalized as one filter.
    ``offset``                    full activation shape ``(1, h, w, c)``, added to the output of
                                  a convolution: one filter per channel ``[..., j]``, like the
                                  output filter it is added to. Offsets are initialized at zero
                                  in the paper's CNN, so at initialization their filters have
                                  norm 0 and the direction is zero there (the rule
                                  ``|theta_j| / |d_j|`` applied literally).
    ``latent``                    the trainable latent vector: one filter (the whole tensor).
    ``pixels``                    the pixel image: one filter (the whole tensor). There is no
                                  scale symmetry to respect, and per-cell normalization would
                                  turn a Gaussian direction into ``+-|theta_i|``.
    ``other``                     1-D: as ``bias``; 2-D and more: one filter per last-axis
                                  index (Keras puts output units last).
    ============================  =============================================================

Directions are Gaussian with zero mean (Li et al.), not uniform.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, Sequence

import numpy as np
from scipy.sparse.linalg import LinearOperator

from landscape.lanczos import EigenResult, as_generator, top_eigenvalues
from solvers.flat import FlatObjective, ParameterSpec, flatten, unflatten

__all__ = ["random_direction", "filter_normalize", "filter_normalized_direction",
           "PCADirections", "pca_directions", "hessian_directions", "KINDS"]

KINDS = ("conv_kernel", "conv_transpose_kernel", "dense_kernel", "bias", "offset", "latent",
         "pixels", "other")

SpecsLike = FlatObjective | Sequence[ParameterSpec]


def _specs(specs_or_objective: SpecsLike) -> tuple[ParameterSpec, ...]:
    specs = getattr(specs_or_objective, "parameter_specs", specs_or_objective)
    specs = tuple(specs)
    if not specs or not all(isinstance(spec, ParameterSpec) for spec in specs):
        raise TypeError("expected a FlatObjective or a non-empty sequence of ParameterSpec")
    return specs


def random_direction(specs_or_objective: SpecsLike, seed: int | np.random.Generator) -> np.ndarray:
    """A standard Gaussian direction, float64 ``(n,)`` with ``n = sum of spec sizes``."""
    size = sum(spec.size for spec in _specs(specs_or_objective))
    return as_generator(seed).standard_normal(size)


def _filter_axis(spec: ParameterSpec, zero_1d: bool) -> int | None | Literal["zero"]:
    """The axis indexing filters, None for "whole tensor is one filter", or "zero"."""
    kind, ndim = spec.kind, len(spec.shape)
    if kind not in KINDS:
        raise ValueError(f"{spec.name}: unknown parameter kind {kind!r}; expected one of {KINDS}")
    if kind in ("bias",) or (kind == "other" and ndim <= 1):
        return "zero" if zero_1d else None
    if kind in ("latent", "pixels"):
        return None
    if kind == "conv_kernel":
        if ndim != 4:
            raise ValueError(f"{spec.name}: conv_kernel must be (kh, kw, in, out), got "
                             f"{spec.shape}")
        return 3
    if kind == "conv_transpose_kernel":
        if ndim != 4:
            raise ValueError(f"{spec.name}: conv_transpose_kernel must be (kh, kw, out, in), got "
                             f"{spec.shape}")
        return 2
    if kind == "dense_kernel":
        if ndim != 2:
            raise ValueError(f"{spec.name}: dense_kernel must be (in, out), got {spec.shape}")
        return 1
    if kind == "offset":
        if ndim < 1:
            raise ValueError(f"{spec.name}: offset must have a channel axis, got {spec.shape}")
        return ndim - 1
    return ndim - 1                                            # 'other' with ndim >= 2


def filter_normalize(direction: np.ndarray, theta: np.ndarray, specs: SpecsLike, *,
                     zero_1d: bool = True) -> np.ndarray:
    """Filter-normalize a direction against the parameters ``theta`` (Li et al. 2018).

    Each filter of ``direction`` (see the module table) is rescaled to the Frobenius norm of the
    same filter of ``theta``. A filter of ``direction`` with norm 0 stays 0.

    Args:
        direction: float64 ``(n,)``.
        theta: float64 ``(n,)`` the parameters the plot is centred at (or relative to).
        specs: parameter layout (a FlatObjective or its ``parameter_specs``).
        zero_1d: zero the direction on ``bias`` tensors and 1-D ``other`` tensors (Li et al.'s
            ``ignore='biasbn'``); if False they are normalized as one filter each.

    Returns:
        float64 ``(n,)``, a new array.
    """
    specs = _specs(specs)
    direction_parts = unflatten(specs, np.asarray(direction, dtype=np.float64))
    theta_parts = unflatten(specs, np.asarray(theta, dtype=np.float64))
    normalized = {}
    for spec in specs:
        d, t = direction_parts[spec.name], theta_parts[spec.name]
        axis = _filter_axis(spec, zero_1d)
        if isinstance(axis, str):
            normalized[spec.name] = np.zeros(spec.shape)
            continue
        if axis is None:
            d_norm, t_norm = np.linalg.norm(d), np.linalg.norm(t)
            scale = t_norm / d_norm if d_norm > 0 else 0.0
            normalized[spec.name] = d * scale
            continue
        other_axes = tuple(a for a in range(d.ndim) if a != axis)
        d_norm = np.sqrt(np.sum(d * d, axis=other_axes, keepdims=True))
        t_norm = np.sqrt(np.sum(t * t, axis=other_axes, keepdims=True))
        scale = np.divide(t_norm, d_norm, out=np.zeros_like(d_norm), where=d_norm > 0)
        normalized[spec.name] = d * scale
    return flatten(specs, normalized)


def filter_normalized_direction(objective: SpecsLike, theta: np.ndarray,
                                seed: int | np.random.Generator, *,
                                zero_1d: bool = True) -> np.ndarray:
    """``filter_normalize(random_direction(objective, seed), theta, objective)``."""
    return filter_normalize(random_direction(objective, seed), theta, objective, zero_1d=zero_1d)


@dataclasses.dataclass(frozen=True)
class PCADirections:
    """The first two principal directions of a set of points.

    Attributes:
        d1, d2: float64 ``(n,)`` orthonormal principal directions, signed so that the first
            data row has a non-negative coordinate on each.
        explained_variance_ratio: float64 ``(2,)``, fraction of the total variance along each.
        singular_values: float64 ``(k,)`` all singular values of the data matrix.
    """

    d1: np.ndarray
    d2: np.ndarray
    explained_variance_ratio: np.ndarray
    singular_values: np.ndarray


def _pca_data(iterates: np.ndarray, final: np.ndarray | None, center: str) -> np.ndarray:
    iterates = np.asarray(iterates, dtype=np.float64)
    if iterates.size == 0:
        raise ValueError(f"iterates is empty (shape {iterates.shape}): PCA needs at least 3 "
                         f"points of n >= 1 parameters (2 besides the final one)")
    if iterates.ndim != 2:
        raise ValueError(f"iterates must be (r, n), got shape {iterates.shape}")
    if final is None:
        final, rows = iterates[-1], iterates[:-1]
    else:
        final = np.asarray(final, dtype=np.float64)
        if final.shape != iterates.shape[1:]:
            raise ValueError(f"final has shape {final.shape}; expected ({iterates.shape[1]},)")
        rows = iterates
    if rows.shape[0] < 2:
        raise ValueError(f"need at least 2 points besides the final one, got {rows.shape[0]}")
    data = rows - final
    if center == "mean":
        data = data - data.mean(axis=0)
    elif center != "final":
        raise ValueError(f"center must be 'mean' or 'final', got {center!r}")
    return data


def pca_directions(iterates: np.ndarray, final: np.ndarray | None = None,
                   center: Literal["mean", "final"] = "mean") -> PCADirections:
    """PCA directions of a trajectory (Li et al. 2018, Section 7; thesis eq. 2.8).

    The data matrix has rows ``theta_i - theta_T`` (``theta_T = final``; by default the last row
    of ``iterates``, which is then excluded). ``center='mean'`` also subtracts the rows' mean, as
    the PCA in Li et al.'s public code does (scikit-learn's PCA centres its data); ``'final'`` is
    eq. 2.8 taken literally (no mean removal, the final point as origin).

    Args:
        iterates: float64 ``(r, n)`` points, in order.
        final: optional float64 ``(n,)``.
        center: see above.

    Returns:
        :class:`PCADirections`; each direction's sign is fixed so that the first row's
        coordinate is >= 0.
    """
    data = _pca_data(iterates, final, center)
    _, singular_values, right = np.linalg.svd(data, full_matrices=False)
    total = np.sum(singular_values ** 2)
    if total == 0 or singular_values.shape[0] < 2:
        raise ValueError("the points do not spread in at least one direction: PCA is undefined")
    directions = right[:2].copy()
    signs = np.where(directions @ data[0] < 0, -1.0, 1.0)
    directions *= signs[:, None]
    ratio = singular_values[:2] ** 2 / total
    return PCADirections(d1=directions[0], d2=directions[1], explained_variance_ratio=ratio,
                         singular_values=singular_values)


def hessian_directions(op: LinearOperator, k: int = 2, *, seed: int | np.random.Generator,
                       which: Literal["largest", "smallest", "magnitude"] = "largest"
                       ) -> EigenResult:
    """Top-``k`` Hessian eigenvectors as plot directions (Chatzimichailidis et al. 2019).

    Returns the :class:`landscape.lanczos.EigenResult`; the directions are the unit columns of
    ``eigenvectors`` ``(n, k)``.
    """
    return top_eigenvalues(op, k, seed, which=which)
