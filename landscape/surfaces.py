"""Loss along lines and over planes in parameter space, and projection of points onto a plane.

Conventions: points are float64 ``(n,)`` flat vectors; only ``objective.value`` is evaluated (no
gradients). A progress callback, if given, is called as ``progress(done, total)`` after each
evaluation. Losses are stored as returned (non-finite values are kept, not masked).

References:
    I. J. Goodfellow, O. Vinyals, A. M. Saxe, "Qualitatively characterizing neural network
    optimization problems", ICLR 2015 (linear interpolation); H. Li et al., "Visualizing the loss
    landscape of neural nets", NeurIPS 2018 (2-D surfaces ``L(theta* + a d1 + b d2)``); thesis
    eq. 2.7 and Figure 3.5.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from solvers.flat import FlatObjective

__all__ = ["Interpolation", "interpolate", "Surface", "surface", "PlaneProjection",
           "project_onto_plane"]

Progress = Callable[[int, int], None]


def _vector(array: np.ndarray, n: int, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {array.shape}")
    return array


@dataclasses.dataclass(frozen=True)
class Interpolation:
    """Loss along ``theta(alpha) = (1 - alpha) theta_a + alpha theta_b``.

    Attributes:
        alphas: float64 ``(g,)``; 0 is ``theta_a``, 1 is ``theta_b``.
        losses: float64 ``(g,)``.
    """

    alphas: np.ndarray
    losses: np.ndarray


def interpolate(objective: FlatObjective, theta_a: np.ndarray, theta_b: np.ndarray,
                alphas: np.ndarray | int = 51, progress: Progress | None = None) -> Interpolation:
    """Linear interpolation of the loss between two points (Goodfellow et al. 2015).

    Args:
        objective: any flat objective.
        theta_a, theta_b: float64 ``(n,)``.
        alphas: float64 ``(g,)`` interpolation coefficients (values outside ``[0, 1]``
            extrapolate), or an int ``g`` for ``linspace(0, 1, g)``.
        progress: optional ``progress(done, total)``.
    """
    n = objective.size
    theta_a = _vector(theta_a, n, "theta_a")
    theta_b = _vector(theta_b, n, "theta_b")
    if np.array_equal(theta_a, theta_b):
        raise ValueError("theta_a and theta_b are the same point: there is no line between them")
    if isinstance(alphas, (int, np.integer)):
        if alphas < 2:
            raise ValueError(f"need at least 2 interpolation points, got {alphas}")
        alphas = np.linspace(0.0, 1.0, int(alphas))
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size < 2:
        raise ValueError(f"alphas must be a 1-D array of at least 2 points, got shape "
                         f"{alphas.shape}")
    if not np.all(np.isfinite(alphas)):
        raise ValueError("alphas must be finite")
    losses = np.empty(alphas.shape)
    for i, alpha in enumerate(alphas):
        losses[i] = objective.value((1.0 - alpha) * theta_a + alpha * theta_b)
        if progress is not None:
            progress(i + 1, alphas.size)
    return Interpolation(alphas=alphas, losses=losses)


@dataclasses.dataclass(frozen=True)
class Surface:
    """Loss on a grid in the plane ``center + c1 d1 + c2 d2``.

    Attributes:
        coords1: float64 ``(g1,)`` coordinates along ``d1``.
        coords2: float64 ``(g2,)`` coordinates along ``d2``.
        losses: float64 ``(g1, g2)``, ``losses[i, j] = L(center + coords1[i] d1 + coords2[j] d2)``
            (index order ``[d1, d2]``, "ij" indexing; transpose for ``imshow``/``contour``).
    """

    coords1: np.ndarray
    coords2: np.ndarray
    losses: np.ndarray


def _grid_axes(grid, extent: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(grid, (int, np.integer)):
        if grid < 2:
            raise ValueError(f"grid size must be >= 2 points per axis, got {grid}")
        low, high = (float(e) for e in extent)
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"extent must be finite (low, high) with low < high, got {extent}")
        axis = np.linspace(low, high, int(grid))
        return axis, axis.copy()
    try:
        coords1, coords2 = grid
    except (TypeError, ValueError):
        raise ValueError("grid must be an int or a pair (coords1, coords2) of 1-D arrays") from None
    coords1 = np.asarray(coords1, dtype=np.float64)
    coords2 = np.asarray(coords2, dtype=np.float64)
    if coords1.ndim != 1 or coords2.ndim != 1 or coords1.size < 2 or coords2.size < 2:
        raise ValueError(f"grid coordinates must be 1-D arrays of at least 2 points each, got "
                         f"shapes {coords1.shape} and {coords2.shape}")
    if not (np.all(np.isfinite(coords1)) and np.all(np.isfinite(coords2))):
        raise ValueError("grid coordinates must be finite")
    return coords1, coords2


def _plane_basis(d1: np.ndarray, d2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thin QR of ``[d1, d2]`` ``(n, 2)``; ValueError unless the directions span a plane."""
    for name, direction in (("d1", d1), ("d2", d2)):
        if not np.all(np.isfinite(direction)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if not np.any(direction):
            raise ValueError(f"{name} is the zero vector: it spans no direction")
    q, r = np.linalg.qr(np.column_stack([d1, d2]))
    if abs(r[1, 1]) <= 1e-12 * abs(r[0, 0]):
        raise ValueError("d1 and d2 are (numerically) parallel, i.e. linearly dependent: "
                         "they span no plane "
                         f"(|d2 off d1| / |d1| = {abs(r[1, 1]) / abs(r[0, 0]):.1e})")
    return q, r


def surface(objective: FlatObjective, center: np.ndarray, d1: np.ndarray, d2: np.ndarray,
            grid: int | tuple[np.ndarray, np.ndarray] = 21,
            extent: tuple[float, float] = (-1.0, 1.0),
            progress: Progress | None = None) -> Surface:
    """The loss over a 2-D slice ``L(center + a d1 + b d2)`` (Li et al. 2018).

    Args:
        objective: any flat objective (only ``value`` is called, ``g1 * g2`` times).
        center: float64 ``(n,)``.
        d1, d2: float64 ``(n,)`` directions (e.g. filter-normalized or PCA directions).
        grid: ``(coords1, coords2)`` 1-D arrays of at least 2 points, or an int ``g >= 2`` for
            ``linspace(*extent, g)`` on both axes.
        extent: range of the coordinates for an int ``grid``.
        progress: optional ``progress(done, total)``.

    Raises:
        ValueError: a zero direction, parallel directions (no plane), fewer than 2 points on an
            axis, or shapes that do not match the objective.
    """
    n = objective.size
    center = _vector(center, n, "center")
    d1, d2 = _vector(d1, n, "d1"), _vector(d2, n, "d2")
    coords1, coords2 = _grid_axes(grid, extent)
    _plane_basis(d1, d2)
    losses = np.empty((coords1.size, coords2.size))
    total, done = losses.size, 0
    for i, a in enumerate(coords1):
        row = center + a * d1
        for j, b in enumerate(coords2):
            losses[i, j] = objective.value(row + b * d2)
            done += 1
            if progress is not None:
                progress(done, total)
    return Surface(coords1=coords1, coords2=coords2, losses=losses)


@dataclasses.dataclass(frozen=True)
class PlaneProjection:
    """Least-squares coordinates of points in the plane ``center + span(d1, d2)``.

    Attributes:
        coords: float64 ``(r, 2)``, ``(a, b)`` minimizing ``|x - center - a d1 - b d2|``.
        distances: float64 ``(r,)``, that minimal distance (how far each point is off the plane;
            PCA planes can hide large off-plane motion).
        offsets: float64 ``(r,)``, ``|x - center|``, the distance of each point from the centre
            (so ``distances / offsets`` says how much of a point's displacement the plane
            misses: 0 in the plane, 1 orthogonal to it).
    """

    coords: np.ndarray
    distances: np.ndarray
    offsets: np.ndarray

    def off_plane_fraction(self) -> float:
        """``max distances / max offsets``: how far the points lie off the plane relative to how
        far they reach from the centre (0 when all lie in it; NaN when all are the centre)."""
        reach = float(np.max(self.offsets)) if self.offsets.size else 0.0
        if not reach > 0:
            return float("nan")
        return float(np.max(self.distances)) / reach


def project_onto_plane(points: np.ndarray, center: np.ndarray, d1: np.ndarray,
                       d2: np.ndarray) -> PlaneProjection:
    """Project points onto a plane by least squares (``d1``, ``d2`` need not be orthonormal).

    Args:
        points: float64 ``(r, n)``.
        center: float64 ``(n,)``.
        d1, d2: float64 ``(n,)``, linearly independent.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be (r, n), got shape {points.shape}")
    n = points.shape[1]
    center = _vector(center, n, "center")
    q, r = _plane_basis(_vector(d1, n, "d1"), _vector(d2, n, "d2"))            # (n, 2), (2, 2)
    offsets = points - center                                                   # (r, n)
    in_plane = offsets @ q                                                      # (r, 2)
    coords = np.linalg.solve(r, in_plane.T).T
    residual = offsets - in_plane @ q.T
    return PlaneProjection(coords=coords, distances=np.linalg.norm(residual, axis=1),
                           offsets=np.linalg.norm(offsets, axis=1))
