"""Metrics of an optimization trajectory (thesis Section 2.4.2 and Figure 3.9).

Conventions:
    * ``iterates`` float64 ``(r, n)``, ``losses`` ``(r,)`` and ``gradients`` ``(r, n)`` are the rows
      a run recorded (possibly every k-th accepted iterate, see
      :class:`solvers.result.RecordOptions`); "successive" means successive recorded rows. The
      final point ``theta_T`` is the last row unless given explicitly.
    * Every metric is a float64 ``(r,)`` array aligned with the rows (``(r, 2)`` for the PCA
      ratios); entries that are undefined (no previous step, a zero vector in a cosine, ...) are
      NaN.

References:
    Distance from initialization and cosines of successive gradients: C. Xing, D. Arpit,
    C. Tsirigotis, Y. Bengio, "A walk with SGD" (2018). Gradient along the direction to the
    solution: B. Ghorbani, S. Krishnan, Y. Xiao, ICML 2019. Star-convexity residual
    ``L(theta_i) - L(theta_T) + <theta_T - theta_i, grad L(theta_i)>`` (<= 0 on a star-convex
    path): Y. Zhou et al., "SGD converges to global minimum in deep learning via star-convex path",
    ICLR 2019; R. Kleinberg, Y. Li, Y. Yuan, ICML 2018. Explained variance of PCA directions of the
    trajectory: H. Li et al., NeurIPS 2018; thesis Chapter 4 ("Performing PCA on iterates can be
    misleading"), computed here for every prefix of the trajectory.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import scipy.linalg

__all__ = ["TrajectoryMetrics", "trajectory_metrics", "prefix_pca_explained_variance"]

_COLUMN_BLOCK = 16384


@dataclasses.dataclass(frozen=True)
class TrajectoryMetrics:
    """Per-row metrics of a trajectory ``theta_0, ..., theta_{r-1}`` with final point ``theta_T``.

    Attributes:
        distance_from_start: ``|theta_i - theta_0|``.
        distance_to_final: ``|theta_T - theta_i|``.
        step_length: ``|theta_i - theta_{i-1}|``; entry 0 NaN.
        gradient_norm: ``|g_i|``.
        gradient_cosine: ``cos(g_{i-1}, g_i)``; entry 0 NaN.
        step_cosine: ``cos(s_{i-1}, s_i)`` with ``s_i = theta_i - theta_{i-1}``; entries 0, 1 NaN.
        gradient_dot_to_final: ``<g_i, theta_T - theta_i>`` (Ghorbani et al.; thesis Section
            2.4.2), unnormalized.
        gradient_projection_to_final: ``<g_i, theta_T - theta_i> / |theta_T - theta_i|``, the
            scalar projection of the gradient on the unit direction to the final point (negative
            when the negative gradient points towards it); NaN where ``theta_i = theta_T``.
        star_convexity_residual: ``L_i - L_T + <theta_T - theta_i, g_i>``.
        pca_explained_variance: ``(r, 2)`` explained-variance ratios of the first two principal
            components of the trajectory up to row ``i`` (see
            :func:`prefix_pca_explained_variance`); NaN rows where undefined or not computed.
    """

    distance_from_start: np.ndarray
    distance_to_final: np.ndarray
    step_length: np.ndarray
    gradient_norm: np.ndarray
    gradient_cosine: np.ndarray
    step_cosine: np.ndarray
    gradient_dot_to_final: np.ndarray
    gradient_projection_to_final: np.ndarray
    star_convexity_residual: np.ndarray
    pca_explained_variance: np.ndarray


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of ``(k, n)`` arrays; NaN where a row is zero."""
    dots = np.einsum("ij,ij->i", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide(dots, norms, out=np.full(dots.shape, np.nan), where=norms > 0)


def _gram(points: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """``(x_j - anchor) . (x_k - anchor)`` for all rows, by column blocks (bounded memory)."""
    r, n = points.shape
    gram = np.zeros((r, r))
    for start in range(0, n, _COLUMN_BLOCK):
        block = points[:, start:start + _COLUMN_BLOCK] - anchor[start:start + _COLUMN_BLOCK]
        gram += block @ block.T
    return gram


def prefix_pca_explained_variance(iterates: np.ndarray,
                                  center: Literal["mean", "final"] = "mean",
                                  every: int = 1) -> np.ndarray:
    """Explained-variance ratios of the first two PCA components of each trajectory prefix.

    Row ``i`` is ``pca_directions(iterates[:i + 1], center=center).explained_variance_ratio``:
    the PCA of ``theta_j - theta_i`` for ``j < i`` (the prefix's last point plays the final point
    of thesis eq. 2.8), mean-centred or not (see :func:`landscape.directions.pca_directions`).
    Computed from one Gram matrix (``O(r^2 n)``) and one small symmetric eigenproblem per row.

    Args:
        iterates: float64 ``(r, n)``.
        center: ``'mean'`` (Li et al.'s code) or ``'final'`` (eq. 2.8 literally).
        every: compute rows ``0, every, 2 every, ...`` and the last; others are NaN.

    Returns:
        float64 ``(r, 2)``; rows ``i < 2`` (fewer than two data points) and rows whose data have
        zero variance are NaN.
    """
    iterates = np.asarray(iterates, dtype=np.float64)
    if iterates.ndim != 2:
        raise ValueError(f"iterates must be (r, n), got shape {iterates.shape}")
    if center not in ("mean", "final"):
        raise ValueError(f"center must be 'mean' or 'final', got {center!r}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    r = iterates.shape[0]
    ratios = np.full((r, 2), np.nan)
    if r < 3:
        return ratios
    gram = _gram(iterates, iterates[-1])
    rows = sorted(i for i in set(range(0, r, every)) | {r - 1} if i >= 2)
    for i in rows:
        block = gram[:i, :i]
        if center == "mean":
            column_mean = block.mean(axis=0)
            data_gram = block - column_mean[None, :] - column_mean[:, None] + column_mean.mean()
        else:
            cross = gram[:i, i]
            data_gram = block - cross[None, :] - cross[:, None] + gram[i, i]
        total = np.trace(data_gram)
        if not total > 0:
            continue
        top = scipy.linalg.eigh(data_gram, eigvals_only=True, subset_by_index=[i - 2, i - 1])
        ratios[i] = np.clip(top[::-1], 0.0, None) / total
    return ratios


def trajectory_metrics(iterates: np.ndarray, losses: np.ndarray, gradients: np.ndarray,
                       final: np.ndarray | None = None, final_loss: float | None = None,
                       pca_center: Literal["mean", "final"] = "mean",
                       pca_every: int = 1) -> TrajectoryMetrics:
    """Compute the trajectory metrics of thesis Section 2.4.2 / Figure 3.9.

    Args:
        iterates: float64 ``(r, n)`` recorded points, in order.
        losses: float64 ``(r,)`` loss at each point.
        gradients: float64 ``(r, n)`` gradient at each point.
        final: optional ``theta_T`` ``(n,)``; default the last row. Give ``final_loss`` with it.
        final_loss: ``L(theta_T)``; default the last loss.
        pca_center: centring of the per-prefix PCA (see :func:`prefix_pca_explained_variance`).
        pca_every: compute the PCA ratios every ``pca_every`` rows; 0 skips them (all NaN).

    Returns:
        :class:`TrajectoryMetrics`.
    """
    iterates = np.asarray(iterates, dtype=np.float64)
    gradients = np.asarray(gradients, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if iterates.ndim != 2 or iterates.shape[0] < 1:
        raise ValueError(f"iterates must be (r, n) with r >= 1, got shape {iterates.shape}")
    r, n = iterates.shape
    if gradients.shape != (r, n):
        raise ValueError(f"gradients has shape {gradients.shape}; expected {(r, n)}")
    if losses.shape != (r,):
        raise ValueError(f"losses has shape {losses.shape}; expected ({r},)")
    if (final is None) != (final_loss is None):
        raise ValueError("give both final and final_loss, or neither (then the last row is used)")
    if final is None:
        final, final_loss = iterates[-1], float(losses[-1])
    final = np.asarray(final, dtype=np.float64)
    if final.shape != (n,):
        raise ValueError(f"final has shape {final.shape}; expected ({n},)")
    if pca_every < 0:
        raise ValueError(f"pca_every must be >= 0, got {pca_every}")

    to_final = final - iterates                                    # (r, n)
    distance_to_final = np.linalg.norm(to_final, axis=1)
    dot_to_final = np.einsum("ij,ij->i", gradients, to_final)
    steps = np.diff(iterates, axis=0)                              # (r - 1, n), steps[i-1] = s_i

    nan_row = np.full(r, np.nan)
    step_length = nan_row.copy()
    step_length[1:] = np.linalg.norm(steps, axis=1)
    gradient_cosine = nan_row.copy()
    gradient_cosine[1:] = _cosine(gradients[:-1], gradients[1:])
    step_cosine = nan_row.copy()
    step_cosine[2:] = _cosine(steps[:-1], steps[1:])
    projection = np.divide(dot_to_final, distance_to_final, out=nan_row.copy(),
                           where=distance_to_final > 0)
    if pca_every:
        pca = prefix_pca_explained_variance(iterates, center=pca_center, every=pca_every)
    else:
        pca = np.full((r, 2), np.nan)
    return TrajectoryMetrics(
        distance_from_start=np.linalg.norm(iterates - iterates[0], axis=1),
        distance_to_final=distance_to_final,
        step_length=step_length,
        gradient_norm=np.linalg.norm(gradients, axis=1),
        gradient_cosine=gradient_cosine,
        step_cosine=step_cosine,
        gradient_dot_to_final=dot_to_final,
        gradient_projection_to_final=projection,
        star_convexity_residual=losses - final_loss + dot_to_final,
        pca_explained_variance=pca,
    )
