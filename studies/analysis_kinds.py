"""The analysis protocol: one :class:`Analysis` per kind (compute, key, to arrays, from arrays,
draw, summary) and the registry :data:`ANALYSES` that the command line and
:mod:`studies.analysis` dispatch through. Adding an analysis means adding one class here.

Keys encode every setting that changes a result (see each kind's docstring), so an analysis with
other settings is stored beside an earlier one, never over it.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy.sparse.linalg import LinearOperator

import landscape
from studies.analysis_records import (AnalysisError, InterpolationAnalysis, Progress, Record,
                                      SpectrumAnalysis, SurfaceAnalysis, TrajectoryAnalysis,
                                      Where)

if TYPE_CHECKING:
    from studies.analysis import RunAnalyzer

__all__ = ["ANALYSES", "DIRECTIONS", "ON_PLANE_FRACTION", "OPERATORS", "Analysis",
           "InterpolationKind", "SpectrumKind", "SurfaceKind", "TrajectoryKind", "analysis_for",
           "analysis_for_command", "spectrum_label", "summary", "surface_trajectory"]

OPERATORS = ("hessian", "lbfgs")
DIRECTIONS = ("filter", "pca", "hessian")


class _ReportingOperator(LinearOperator):
    """Wraps an operator and reports each product to a callback (SLQ has no progress hook)."""

    def __init__(self, op: LinearOperator, report: Callable[[int], None]):
        super().__init__(dtype=np.dtype(np.float64), shape=op.shape)
        self._op, self._report, self.count = op, report, 0

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        product = np.asarray(self._op.matvec(np.asarray(v, dtype=np.float64).reshape(-1)),
                             dtype=np.float64)
        self.count += 1
        self._report(self.count)
        return product

    def _rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._matvec(v)




def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise AnalysisError(f"{name} must be a positive integer; got {value!r}")


def _check_memory(what: str, needed: float, advice: str) -> None:
    """Refuse settings whose arrays alone exceed the available memory (one line), before the
    allocation fails with a traceback or the kernel's OOM killer ends the process."""
    from studies.resources import format_bytes, shortfall

    if (available := shortfall(needed)) is not None:
        raise AnalysisError(f"{what} needs about {format_bytes(needed)} of memory, more than the "
                            f"{format_bytes(available)} available; {advice}")


def _number_key(value: float) -> str:
    """A float as it appears in a key: ``0.5`` -> ``"0.5"``, ``1e6`` -> ``"1e06"``."""
    return format(float(value), ".12g").replace("+", "")


def _where_text(k: int) -> str:
    return "init" if k == 0 else f"iterate {k}"


# -- the analysis protocol -------------------------------------------------------------------------

Arrays = dict[str, np.ndarray]
Axes = dict[str, tuple[str, ...]]
Common = tuple[Path, str, str, str]
"""``(source, run_id, label, name)``: the fields every record starts with."""


class Analysis(Protocol):
    """One kind of analysis: how it is computed, stored, read back, drawn and summarized.

    Attributes:
        kind: the store group, ``/runs/<id>/analysis/<kind>/<key>``.
        command: the ``nrto`` command computing it.
        record_type: the typed record :meth:`compute` returns.
        command_options: the keyword options of :meth:`compute` that the command line sets (the
            parsed arguments of the same names).
    """

    kind: str
    command: str
    record_type: type
    command_options: tuple[str, ...]

    def key(self, settings: Mapping[str, Any]) -> str:
        """The key of an analysis with these settings: different settings, different keys."""

    def compute(self, analyzer: RunAnalyzer, *, progress: Progress, **options) -> Record:
        """The analysis of the analyzer's run (not stored)."""

    def to_arrays(self, record: Record) -> tuple[Arrays, Axes]:
        """The datasets of a record and their axis names."""

    def from_arrays(self, common: Common, arrays: Mapping[str, np.ndarray],
                    settings: Mapping[str, Any]) -> Record:
        """The record back from what :meth:`to_arrays` stored (and its settings)."""

    def draw(self, record: Record, path: Path, title: str) -> Path:
        """The record's figure, written to ``path``."""

    def summary(self, record: Record) -> str:
        """One line: what was computed and its headline numbers."""


def _loss_text(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.6g}"


class SpectrumKind:
    """SLQ spectra (:class:`SpectrumAnalysis`); key ``<operator>_k<k>_r<runs>_m<steps>_s<seed>``
    (``_mem<memory>`` added for the L-BFGS matrix)."""

    kind, command, record_type = "spectrum", "spectrum", SpectrumAnalysis
    command_options = ("at", "operator", "runs", "steps", "seed", "memory")

    def key(self, settings: Mapping[str, Any]) -> str:
        key = (f"{settings['operator']}_k{settings['iterate']}_r{settings['runs']}"
               f"_m{settings['steps']}_s{settings['seed']}")
        return key + (f"_mem{settings['memory']}" if settings["operator"] == "lbfgs" else "")

    def compute(self, analyzer: RunAnalyzer, *, progress: Progress, at: Where = "final",
                operator: str = "hessian", runs: int = 3, steps: int = 50, seed: int = 0,
                memory: int | None = None) -> SpectrumAnalysis:
        """SLQ spectrum (Ubaru et al. 2017; Ghorbani et al. 2019) of the Hessian or of the L-BFGS
        matrix ``B`` at an iterate, ``runs`` Rademacher start vectors x ``steps`` Lanczos steps
        with full reorthogonalization (thesis Appendix B.5: 3 x 50).

        The same settings serve both operators, so their spectra compare. ``steps`` larger than
        the number of parameters ``n`` is reduced to ``n`` (the stored ``steps``). ``operator =
        "lbfgs"`` needs no stored iterate, only the correction pairs up to ``k``.
        """
        if operator not in OPERATORS:
            raise AnalysisError(f"operator must be one of {', '.join(OPERATORS)}; "
                                f"got {operator!r}")
        _check_positive(runs=runs, steps=steps)
        k = analyzer.iterate_index(at)
        settings: dict[str, Any] = {"at": str(at), "iterate": k, "operator": operator,
                                    "runs": runs, "seed": seed, "reorthogonalize": True}
        if operator == "hessian":
            op = landscape.HessianOperator(analyzer.objective, analyzer.iterate(k))
        else:
            matrix = analyzer.lbfgs_matrix(k, memory)
            op = matrix.B
            settings.update(memory=analyzer.lbfgs_memory(memory), pairs=matrix.num_pairs,
                            scaling_theta=matrix.theta)
        n = op.shape[0]
        steps_used = min(steps, n)
        # the start vectors of all runs, and one run's Lanczos basis (full reorthogonalization)
        _check_memory(f"SLQ with {runs} runs of {steps_used} steps on {n} parameters",
                      8.0 * n * (runs + steps_used + 4), "use fewer --runs or --steps")
        settings.update(steps=steps_used, requested_steps=steps, dimension=n)
        total = runs * steps_used
        counted = _ReportingOperator(op, lambda done: progress("slq", done, total))
        progress("slq", 0, total)
        try:
            result = landscape.slq(counted, num_runs=runs, num_steps=steps_used, seed=seed)
        except ValueError as error:  # e.g. a non-finite product at a diverged iterate
            raise AnalysisError(f"{analyzer.run_id} at iterate {k}: {error}") from None
        progress("slq", counted.count, counted.count)  # runs that found an invariant subspace
        name = f"{self.kind}/{self.key(settings)}"
        return SpectrumAnalysis(*analyzer._common(name), operator, k, result, settings)

    def to_arrays(self, record: SpectrumAnalysis) -> tuple[Arrays, Axes]:
        s = record.spectrum
        return ({"nodes": s.nodes, "weights": s.weights, "steps_per_run": s.steps_per_run},
                {"nodes": ("run", "node"), "weights": ("run", "node"), "steps_per_run": ("run",)})

    def from_arrays(self, common: Common, arrays, settings) -> SpectrumAnalysis:
        result = landscape.Spectrum(nodes=arrays["nodes"], weights=arrays["weights"],
                                    dimension=int(settings["dimension"]),
                                    steps_per_run=arrays["steps_per_run"])
        return SpectrumAnalysis(*common, settings["operator"], int(settings["iterate"]), result,
                                settings)

    def draw(self, record: SpectrumAnalysis, path: Path, title: str) -> Path:
        from studies import landscape_plots as plots

        return Path(plots.plot_spectra(path, {spectrum_label(record): record.spectrum},
                                       title=title or f"{_head(record)}\nspectral density"))

    def summary(self, record: SpectrumAnalysis) -> str:
        low, high = record.extremes
        s = record.settings
        return (f"{record.run_id} {record.name}: {record.operator} at iterate {record.iterate}, "
                f"{s['runs']} x {s['steps']} SLQ, n = {s['dimension']}: Ritz values in "
                f"[{low:.6g}, {high:.6g}], trace ~ {record.trace:.6g}")


def spectrum_label(record: SpectrumAnalysis) -> str:
    """A legend label: operator, iterate and SLQ settings."""
    which = "Hessian" if record.operator == "hessian" else "L-BFGS matrix B"
    return (f"{which}, {_where_text(record.iterate)} "
            f"({record.settings['runs']} x {record.settings['steps']} SLQ)")


def _head(record: Record) -> str:
    return f"{record.run_id} {record.label}"


class SurfaceKind:
    """Loss surfaces (:class:`SurfaceAnalysis`); key ``<directions>_k<k>_g<grid>_e<extent>``
    (``auto`` for the default extent) and ``_s<seed>`` for the seeded directions (filter,
    hessian), ``_biases`` when filter directions keep the biases."""

    kind, command, record_type = "surface", "surface", SurfaceAnalysis
    command_options = ("at", "directions", "grid", "extent", "seed")

    def key(self, settings: Mapping[str, Any]) -> str:
        extent = settings["requested_extent"]
        key = (f"{settings['directions']}_k{settings['iterate']}_g{settings['grid']}"
               f"_e{'auto' if extent is None else _number_key(extent)}")
        if settings["directions"] in ("filter", "hessian"):
            key += f"_s{settings['seed']}"
        if settings["directions"] == "filter" and not settings["zero_1d"]:
            key += "_biases"
        return key

    def compute(self, analyzer: RunAnalyzer, *, progress: Progress, at: Where = "final",
                directions: str = "filter", grid: int = 21, extent: float | None = None,
                seed: int = 0, zero_1d: bool = True) -> SurfaceAnalysis:
        """The loss on ``theta_k + a d1 + b d2`` on a ``grid x grid`` lattice (Li et al. 2018),
        with the stored trajectory projected onto the plane by least squares.

        Directions: ``"filter"``, two filter-normalized Gaussian directions, ``d1`` then ``d2``
        drawn from ``numpy.random.default_rng(seed)`` (Li et al., Section 4; ``zero_1d`` zeroes
        biases); ``"pca"``, the first two principal directions of the stored iterates (at least
        3 points; Li et al., Section 7); ``"hessian"``, the two eigenvectors of the largest
        Hessian eigenvalues at the centre (ARPACK, seeded).

        ``a`` runs over ``linspace(-e1, e1, grid)`` and ``b`` over ``linspace(-e2, e2, grid)``.
        ``extent`` sets ``e1 = e2``. By default: ``e1 = e2 = 1`` for filter-normalized
        directions (one filter norm); for PCA directions 1.1 times the largest ``|a|`` and
        ``|b|`` of the projected trajectory, each axis its own (Li et al.: the plot covers the
        trajectory, which spreads mostly along PC1); for the unit Hessian eigenvectors the SAME
        extent on both axes, 1.1 times the larger of the two reaches, so that equal coordinates
        are equal distances in parameter space and the contours show the curvature ratio of
        the two directions (per-axis reaches 60x apart made the top direction look flat).
        """
        if directions not in DIRECTIONS:
            raise AnalysisError(f"directions must be one of {', '.join(DIRECTIONS)}; "
                                f"got {directions!r}")
        _check_positive(grid=grid)
        if grid < 2:
            raise AnalysisError(f"grid must be >= 2 points per axis; got {grid}")
        _check_memory(f"a {grid}x{grid} surface", 8.0 * 4 * grid * grid, "use a smaller --grid")
        if extent is not None and not (math.isfinite(extent) and 0 < extent < 1e150):
            raise AnalysisError(f"extent must be a positive number below 1e150; got {extent}")
        k = analyzer.iterate_index(at)
        center = analyzer.iterate(k)
        indices, points = analyzer.trajectory_points()
        objective = analyzer.objective
        info: dict[str, np.ndarray] = {}
        if directions == "filter":
            rng = np.random.default_rng(seed)
            d1 = landscape.filter_normalized_direction(objective, center, rng, zero_1d=zero_1d)
            d2 = landscape.filter_normalized_direction(objective, center, rng, zero_1d=zero_1d)
        elif directions == "pca":
            if points.shape[0] < 3:
                raise AnalysisError(
                    f"{analyzer.run_id} stored {points.shape[0]} point(s) of its trajectory; PCA "
                    f"directions need at least 3 (`nrto optimize ... --iterates-every K`)")
            try:
                pca = landscape.pca_directions(points)
            except ValueError as error:
                raise AnalysisError(f"{analyzer.run_id}: {error}") from None
            d1, d2 = pca.d1, pca.d2
            info["explained_variance_ratio"] = pca.explained_variance_ratio
        else:
            op = _ReportingOperator(landscape.HessianOperator(objective, center),
                                    lambda done: progress("hessian eigenvectors", done, None))
            progress("hessian eigenvectors", 0, None)
            eigen = landscape.hessian_directions(op, 2, seed=seed)
            d1, d2 = eigen.eigenvectors[:, 0], eigen.eigenvectors[:, 1]
            info["eigenvalues"], info["residuals"] = eigen.eigenvalues, eigen.residuals
        info["norms"] = np.array([np.linalg.norm(d1), np.linalg.norm(d2)])
        try:
            projection = landscape.project_onto_plane(points, center, d1, d2)
        except ValueError as error:
            raise AnalysisError(f"{analyzer.run_id}: {directions} directions: {error}") from None
        reach = 1.1 * np.max(np.abs(projection.coords), axis=0)
        if extent is not None:
            extents = (float(extent), float(extent))
        elif directions == "filter":
            extents = (1.0, 1.0)
        elif directions == "hessian":
            common = float(np.max(reach))
            extents = (common, common) if common > 0 else (1.0, 1.0)
        else:
            extents = tuple(float(e) if e > 0 else 1.0 for e in reach)
        coords = tuple(np.linspace(-e, e, grid) for e in extents)
        result = landscape.surface(objective, center, d1, d2, grid=coords,
                                   progress=lambda done, total: progress("surface", done, total))
        settings = {"at": str(at), "iterate": k, "directions": directions, "grid": grid,
                    "extent": list(extents), "requested_extent": extent, "seed": seed,
                    "zero_1d": zero_1d, "dimension": int(center.size)}
        name = f"{self.kind}/{self.key(settings)}"
        return SurfaceAnalysis(*analyzer._common(name), directions, k, result, indices,
                               projection, info, settings)

    def to_arrays(self, record: SurfaceAnalysis) -> tuple[Arrays, Axes]:
        arrays = {"coords1": record.surface.coords1, "coords2": record.surface.coords2,
                  "losses": record.surface.losses,
                  "trajectory_iterates": record.trajectory_iterates,
                  "trajectory_coords": record.projection.coords,
                  "trajectory_distances": record.projection.distances,
                  "trajectory_offsets": record.projection.offsets}
        axes = {"coords1": ("coord1",), "coords2": ("coord2",), "losses": ("coord1", "coord2"),
                "trajectory_iterates": ("point",), "trajectory_coords": ("point", "plane_axis"),
                "trajectory_distances": ("point",), "trajectory_offsets": ("point",)}
        for name, values in record.direction_info.items():
            arrays[f"direction_{name}"], axes[f"direction_{name}"] = values, ("direction",)
        return arrays, axes

    def from_arrays(self, common: Common, arrays, settings) -> SurfaceAnalysis:
        if "trajectory_offsets" not in arrays:
            raise AnalysisError(f"{common[1]} {common[3]} was stored by an older nrto without "
                                f"trajectory_offsets; compute it again")
        info = {n[len("direction_"):]: v for n, v in arrays.items() if n.startswith("direction_")}
        return SurfaceAnalysis(
            *common, settings["directions"], int(settings["iterate"]),
            landscape.Surface(arrays["coords1"], arrays["coords2"], arrays["losses"]),
            arrays["trajectory_iterates"],
            landscape.PlaneProjection(arrays["trajectory_coords"], arrays["trajectory_distances"],
                                      arrays["trajectory_offsets"]),
            info, settings)

    def draw(self, record: SurfaceAnalysis, path: Path, title: str) -> Path:
        from studies import landscape_plots as plots

        info = record.direction_info
        labels = {"filter": ("filter-normalized d1", "filter-normalized d2"),
                  "pca": tuple(f"PC{i + 1} ({100 * r:.1f}% of variance)" for i, r in enumerate(
                      info.get("explained_variance_ratio", [np.nan] * 2))),
                  "hessian": tuple(f"Hessian eigenvector {i + 1} (lambda = {v:.3g})"
                                   for i, v in enumerate(info.get("eigenvalues", [np.nan] * 2)))}
        projection = record.projection
        shown = surface_trajectory(record)
        note = ""
        if shown is None and projection.coords.shape[0] > 1:
            note = (f"trajectory not drawn: its points lie up to "
                    f"{np.max(projection.distances):.3g} off this plane, "
                    f"{record.off_plane_fraction:.0%} of their reach "
                    f"{np.max(projection.offsets):.3g} from the centre\n"
                    f"(a plane that holds it: --directions pca)")
        return Path(plots.plot_surface(
            path, record.surface, trajectory=shown,
            distances=projection.distances if shown is not None else None,
            labels=labels[record.directions], note=note,
            equal_scales=record.directions != "pca",
            title=title or f"{_head(record)}\nloss around {_where_text(record.iterate)} "
                           f"({record.directions} directions)"))

    def summary(self, record: SurfaceAnalysis) -> str:
        losses = record.surface.losses
        far = float(np.max(record.projection.distances))
        fraction = record.off_plane_fraction
        return (f"{record.run_id} {record.name}: {record.directions} directions around iterate "
                f"{record.iterate}, {losses.shape[0]}x{losses.shape[1]} grid: loss in "
                f"[{_loss_text(np.nanmin(losses))}, {_loss_text(np.nanmax(losses))}], "
                f"trajectory up to {far:.4g} off the plane"
                + (f" ({fraction:.0%} of its reach)" if math.isfinite(fraction) else ""))


ON_PLANE_FRACTION = 0.05
"""A trajectory is drawn on a plane of random or Hessian directions only if it lies this close to
it: at most this fraction of its reach from the centre (:attr:`SurfaceAnalysis.off_plane_fraction`).
"""


def surface_trajectory(record: SurfaceAnalysis) -> np.ndarray | None:
    """The plane coordinates ``(r, 2)`` of the trajectory to draw on a surface, or None.

    A PCA plane is fitted to the trajectory: it is always drawn there, coloured by each point's
    distance from the plane (what the plane misses is shown, not hidden). A plane of random or
    Hessian directions generally does not contain the trajectory, and its projection collapses
    onto the centre (Li et al. 2018, Section 7): it is drawn only if every point lies within
    :data:`ON_PLANE_FRACTION` of its reach from the plane.
    """
    projection = record.projection
    if projection.coords.shape[0] < 2:
        return None
    if record.directions == "pca" or record.off_plane_fraction <= ON_PLANE_FRACTION:
        return projection.coords
    return None


class InterpolationKind:
    """Linear interpolations (:class:`InterpolationAnalysis`); key ``k<a>_k<b>_p<points>``."""

    kind, command, record_type = "interpolation", "interpolate", InterpolationAnalysis
    command_options = ("start", "end", "points")

    def key(self, settings: Mapping[str, Any]) -> str:
        return f"k{settings['start_iterate']}_k{settings['end_iterate']}_p{settings['points']}"

    def compute(self, analyzer: RunAnalyzer, *, progress: Progress, start: Where = "init",
                end: Where = "final", points: int = 51) -> InterpolationAnalysis:
        """The loss at ``points`` equally spaced points from iterate ``start`` to ``end``
        (alpha 0 to 1; Goodfellow, Vinyals & Saxe 2015)."""
        _check_positive(points=points)
        if points < 2:
            raise AnalysisError(f"points must be >= 2; got {points}")
        _check_memory(f"interpolating at {points} points", 8.0 * 4 * points,
                      "use fewer --points")
        a, b = analyzer.iterate_index(start), analyzer.iterate_index(end)
        if a == b:
            raise AnalysisError(f"start and end are the same iterate ({a}); choose two")
        theta_a, theta_b = analyzer.iterate(a), analyzer.iterate(b)
        if np.array_equal(theta_a, theta_b):
            raise AnalysisError(f"iterates {a} and {b} of {analyzer.run_id} are the same point; "
                                f"there is no line between them")
        curve = landscape.interpolate(analyzer.objective, theta_a, theta_b, alphas=points,
                                      progress=lambda done, total: progress("loss", done, total))
        recorded = analyzer.run.result.loss_per_iterate[[a, b]].astype(np.float64)
        settings = {"from": str(start), "to": str(end), "start_iterate": a, "end_iterate": b,
                    "points": points}
        name = f"{self.kind}/{self.key(settings)}"
        return InterpolationAnalysis(*analyzer._common(name), a, b, curve, recorded, settings)

    def to_arrays(self, record: InterpolationAnalysis) -> tuple[Arrays, Axes]:
        return ({"alphas": record.interpolation.alphas, "losses": record.interpolation.losses,
                 "recorded_losses": record.recorded_losses},
                {"alphas": ("point",), "losses": ("point",), "recorded_losses": ("endpoint",)})

    def from_arrays(self, common: Common, arrays, settings) -> InterpolationAnalysis:
        return InterpolationAnalysis(*common, int(settings["start_iterate"]),
                                     int(settings["end_iterate"]),
                                     landscape.Interpolation(arrays["alphas"], arrays["losses"]),
                                     arrays["recorded_losses"], settings)

    def draw(self, record: InterpolationAnalysis, path: Path, title: str) -> Path:
        from studies import landscape_plots as plots

        label = f"{_where_text(record.start_iterate)} -> iterate {record.end_iterate}"
        return Path(plots.plot_interpolations(
            path, {label: record.interpolation},
            title=title or f"{_head(record)}\nlinear interpolation"))

    def summary(self, record: InterpolationAnalysis) -> str:
        losses = record.interpolation.losses
        return (f"{record.run_id} {record.name}: iterate {record.start_iterate} -> "
                f"{record.end_iterate}, {losses.size} points: loss {_loss_text(losses[0])} -> "
                f"{_loss_text(losses[-1])}, highest {_loss_text(np.nanmax(losses))}")


_METRIC_FIELDS = tuple(field.name for field in dataclasses.fields(landscape.TrajectoryMetrics))


class TrajectoryKind:
    """Trajectory metrics (:class:`TrajectoryAnalysis`); key ``metrics_pca-<centre>-<every>``
    (``metrics_pca-none`` when the PCA ratios were skipped)."""

    kind, command, record_type = "trajectory", "trajectory", TrajectoryAnalysis
    command_options = ()

    def key(self, settings: Mapping[str, Any]) -> str:
        if not settings["pca_every"]:
            return "metrics_pca-none"
        return f"metrics_pca-{settings['pca_center']}-{settings['pca_every']}"

    def compute(self, analyzer: RunAnalyzer, *, progress: Progress, pca_center: str = "mean",
                pca_every: int = 1) -> TrajectoryAnalysis:
        """Trajectory metrics of the stored iterates and gradients (no objective calls)."""
        result = analyzer.run.result
        count = 0 if result.iterates is None else len(result.iterate_indices)
        if result.iterates is None or result.gradients is None or count < 2:
            raise AnalysisError(
                f"{analyzer.run_id} stored {count} iterate(s) with gradients; trajectory metrics "
                f"need at least 2 (`nrto optimize ... --iterates-every K`)")
        if pca_center not in ("mean", "final"):
            raise AnalysisError(f"pca_center must be 'mean' or 'final'; got {pca_center!r}")
        if isinstance(pca_every, bool) or not isinstance(pca_every, (int, np.integer)) \
                or pca_every < 0:
            raise AnalysisError(f"pca_every must be an integer >= 0; got {pca_every!r}")
        indices = np.asarray(result.iterate_indices, dtype=np.int64)
        losses = result.loss_per_iterate[indices].astype(np.float64)
        final = {}
        if indices[-1] != result.iterations:  # the last row is not the final point: give it
            final = {"final": result.x, "final_loss": float(result.loss_per_iterate[-1])}
        metrics = landscape.trajectory_metrics(result.iterates, losses, result.gradients,
                                               pca_center=pca_center, pca_every=pca_every,
                                               **final)
        settings = {"pca_center": pca_center, "pca_every": int(pca_every),
                    "final_iterate": int(result.iterations), "rows": int(indices.size)}
        name = f"{self.kind}/{self.key(settings)}"
        return TrajectoryAnalysis(*analyzer._common(name), indices, losses, metrics, settings)

    def to_arrays(self, record: TrajectoryAnalysis) -> tuple[Arrays, Axes]:
        arrays = {"iterate_indices": record.iterate_indices, "losses": record.losses}
        axes = {"iterate_indices": ("stored_iterate",), "losses": ("stored_iterate",)}
        for name in _METRIC_FIELDS:
            values = getattr(record.metrics, name)
            arrays[name] = values
            axes[name] = ("stored_iterate",) if values.ndim == 1 else ("stored_iterate",
                                                                       "component")
        return arrays, axes

    def from_arrays(self, common: Common, arrays, settings) -> TrajectoryAnalysis:
        metrics = landscape.TrajectoryMetrics(**{n: arrays[n] for n in _METRIC_FIELDS})
        return TrajectoryAnalysis(*common, arrays["iterate_indices"], arrays["losses"], metrics,
                                  settings)

    def draw(self, record: TrajectoryAnalysis, path: Path, title: str) -> Path:
        from studies import landscape_plots as plots

        return Path(plots.plot_trajectory_metrics(
            path, record.metrics, iterations=record.iterate_indices, losses=record.losses,
            spacing=record.spacing,
            title=title or f"{_head(record)}: trajectory metrics"))

    def summary(self, record: TrajectoryAnalysis) -> str:
        metrics = record.metrics
        return (f"{record.run_id} {record.name}: {record.iterate_indices.size} stored iterates "
                f"({record.spacing}): net displacement |theta_final - theta_0| "
                f"{record.net_displacement:.4g}, path length {record.path_length:.4g} "
                f"(through the stored iterates), final gradient norm "
                f"{metrics.gradient_norm[-1]:.4g}")


ANALYSES: dict[str, Analysis] = {kind.kind: kind for kind in (
    SpectrumKind(), SurfaceKind(), InterpolationKind(), TrajectoryKind())}
"""The analysis kinds by store group name; adding an analysis means adding one entry."""

_BY_RECORD = {kind.record_type: kind for kind in ANALYSES.values()}


def analysis_for(record: Record) -> Analysis:
    """The :class:`Analysis` that made ``record``."""
    try:
        return _BY_RECORD[type(record)]
    except KeyError:
        raise TypeError(f"not an analysis record: {type(record).__name__}") from None


def analysis_for_command(command: str) -> Analysis:
    """The :class:`Analysis` computed by the ``nrto`` command ``command``."""
    for kind in ANALYSES.values():
        if kind.command == command:
            return kind
    raise KeyError(f"no analysis is computed by {command!r}")


def summary(record: Record) -> str:
    """One line: what was computed and its headline numbers (``nrto`` prints it)."""
    return analysis_for(record).summary(record)


