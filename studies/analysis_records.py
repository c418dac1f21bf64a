"""Typed records of the loss-landscape analyses of stored runs (see :mod:`studies.analysis`).

Each record holds what one analysis computed and the settings it was computed with; the
:class:`studies.analysis_kinds.Analysis` of its kind stores, reads back, draws and summarizes it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import landscape

__all__ = ["AnalysisError", "InterpolationAnalysis", "Progress", "Record", "SpectrumAnalysis",
           "SurfaceAnalysis", "TrajectoryAnalysis", "Where"]

Where = int | str
"""An iterate: ``"init"``, ``"final"`` or an index ``k >= 0`` (also as a string of digits)."""

Progress = Callable[[str, int, int | None], None]
"""``progress(stage, done, total)``: ``total`` None when unknown (e.g. ARPACK's products)."""


class AnalysisError(ValueError):
    """What was asked cannot be computed from what the run stored (message: one line, with the
    way to store what is missing)."""


# -- typed records ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SpectrumAnalysis:
    """An SLQ spectrum of a curvature operator at one iterate.

    Attributes:
        source: the results file.
        run_id, label: the run.
        name: ``"spectrum/<key>"`` (:class:`SpectrumKind`).
        operator: ``"hessian"`` (exact Hessian-vector products) or ``"lbfgs"`` (the L-BFGS matrix
            ``B`` rebuilt from the stored pairs, Byrd, Nocedal & Schnabel 1994).
        iterate: ``k``.
        spectrum: nodes and weights ``(runs, steps)`` (:class:`landscape.Spectrum`).
        settings: runs, steps, seed, memory, dimension, ... as stored.
    """

    source: Path
    run_id: str
    label: str
    name: str
    operator: str
    iterate: int
    spectrum: landscape.Spectrum
    settings: Mapping[str, Any]

    @property
    def extremes(self) -> tuple[float, float]:
        """Smallest and largest Ritz value with positive weight."""
        return self.spectrum.extremes()

    @property
    def trace(self) -> float:
        """SLQ (= Hutchinson, with the runs' Rademacher start vectors) estimate of the trace."""
        return self.spectrum.trace()


@dataclasses.dataclass(frozen=True)
class SurfaceAnalysis:
    """The loss on the plane ``theta_k + a d1 + b d2`` and the trajectory projected onto it.

    Attributes:
        source, run_id, label, name (``"surface/<key>"``, :class:`SurfaceKind`): as for spectra.
        directions: ``"filter"``, ``"pca"`` or ``"hessian"``.
        iterate: ``k``, the centre.
        surface: :class:`landscape.Surface` (losses ``(g1, g2)``, index order ``[d1, d2]``).
        trajectory_iterates: int ``(r,)`` iterate index of each projected point (the stored
            iterates and the final one).
        projection: least-squares plane coordinates ``(r, 2)``, distances from the plane and
            from the centre ``(r,)``.
        direction_info: float64 ``(2,)`` arrays describing ``d1, d2``: ``norms`` always, plus
            ``explained_variance_ratio`` (pca) or ``eigenvalues`` and ``residuals`` (hessian).
        settings: grid, extent, seed, ... as stored.
    """

    source: Path
    run_id: str
    label: str
    name: str
    directions: str
    iterate: int
    surface: landscape.Surface
    trajectory_iterates: np.ndarray
    projection: landscape.PlaneProjection
    direction_info: Mapping[str, np.ndarray]
    settings: Mapping[str, Any]

    @property
    def off_plane_fraction(self) -> float:
        """How far the trajectory lies off the plane relative to its reach from the centre
        (:meth:`landscape.PlaneProjection.off_plane_fraction`; 0: in the plane)."""
        return self.projection.off_plane_fraction()


@dataclasses.dataclass(frozen=True)
class InterpolationAnalysis:
    """The loss on the segment ``(1 - alpha) theta_a + alpha theta_b`` (Goodfellow et al. 2015).

    Attributes:
        source, run_id, label, name (``"interpolation/<key>"``): as for spectra.
        start_iterate, end_iterate: ``a`` and ``b``.
        interpolation: alphas and losses ``(points,)``.
        recorded_losses: float64 ``(2,)``, the losses the run recorded at ``a`` and ``b``.
        settings: as stored.
    """

    source: Path
    run_id: str
    label: str
    name: str
    start_iterate: int
    end_iterate: int
    interpolation: landscape.Interpolation
    recorded_losses: np.ndarray
    settings: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class TrajectoryAnalysis:
    """Metrics of the stored trajectory (thesis Section 2.4.2).

    Attributes:
        source, run_id, label, name (``"trajectory/<key>"``): as for spectra.
        iterate_indices: int ``(r,)`` iterate index of each row.
        losses: float64 ``(r,)`` recorded loss at each row.
        metrics: :class:`landscape.TrajectoryMetrics`, rows aligned with ``iterate_indices``.
        settings: as stored.
    """

    source: Path
    run_id: str
    label: str
    name: str
    iterate_indices: np.ndarray
    losses: np.ndarray
    metrics: landscape.TrajectoryMetrics
    settings: Mapping[str, Any]

    @property
    def spacing(self) -> str:
        """Which iterates the rows are, e.g. ``"every iterate"``, ``"every 10th iterate"``,
        ``"every 10th iterate and the last"`` or ``"irregularly spaced iterates"``: "successive"
        metrics compare successive ROWS."""
        gaps = np.diff(self.iterate_indices)
        regular = np.unique(gaps[:-1]) if gaps.size > 1 else gaps
        if regular.size != 1 or gaps[-1] > regular[0]:
            return "irregularly spaced iterates"
        every = int(regular[0])
        if every == 1:
            return "every iterate"
        return f"every {_ordinal(every)} iterate" + ("" if gaps[-1] == every else
                                                     " and the last")

    @property
    def net_displacement(self) -> float:
        """``|theta_final - theta_0|`` from the first stored row to the final point."""
        return float(self.metrics.distance_to_final[0])

    @property
    def path_length(self) -> float:
        """Sum of the step lengths between the stored rows, and from the last row to the final
        point (a lower bound of the path length when not every iterate is stored)."""
        steps = float(np.nansum(self.metrics.step_length))
        return steps + float(self.metrics.distance_to_final[-1])


Record = SpectrumAnalysis | SurfaceAnalysis | InterpolationAnalysis | TrajectoryAnalysis


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10,
                                                                                "th")
    return f"{number}{suffix}"


