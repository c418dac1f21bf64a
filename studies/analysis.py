"""Loss-landscape analyses of stored runs: computed from the results file, stored in it, drawn.

Each analysis rebuilds what it needs from a run of a results file (:mod:`studies.store`): the
objective from the stored configuration (:func:`studies.runner.build_objective`), points from the
stored iterates, L-BFGS matrices from the stored correction pairs. It returns a typed record and,
unless ``save=False``, stores the record's arrays under ``/runs/<id>/analysis/<kind>/<key>``
(:func:`studies.store.write_analysis`; schema in ``results/README.md``). A second analysis with the
same name replaces the first. Figures are drawn by :func:`draw` (default path
``<file folder>/<file stem>/<run id>-<kind>-<key>.png``).

=================  =====================  ==================================================
kind               key                    what (module of :mod:`landscape` doing the work)
=================  =====================  ==================================================
``spectrum``       ``<operator>_k<k>``    SLQ eigenvalue density of the Hessian or of the
                                          L-BFGS matrix ``B`` at iterate ``k``
                                          (``spectrum``, ``operators``)
``surface``        ``<directions>_k<k>``  loss on a plane through iterate ``k``, with the
                                          stored trajectory projected onto it (``surfaces``,
                                          ``directions``)
``interpolation``  ``k<a>_k<b>``          loss on the segment from iterate ``a`` to ``b``
``trajectory``     ``metrics``            metrics of the stored iterates and gradients
                                          (``trajectory``)
=================  =====================  ==================================================

Points are named as on the command line: ``"init"`` (iterate 0), ``"final"`` (the last iterate,
whose parameters ``x`` every run stores) or an iterate index ``k``. Iterate ``k`` must be stored
(``RecordOptions.iterates_every`` / ``iterates_at``); iterate 0 that was not stored is rebuilt
from the configuration, and accepted only if its loss equals the recorded one (relative 1e-6).

Example (a notebook)::

    from studies import analysis
    top = analysis.spectrum("results/quickstart.h5", "run-0000", at="final")
    top.extremes, top.trace                 # Ritz-value bounds and the SLQ trace estimate
    analysis.draw(top)                      # results/quickstart/run-0000-spectrum-hessian_k87.png
    again = analysis.load_analysis("results/quickstart.h5", "run-0000", top.name)
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

import landscape
from solvers.optim.registry import REGISTRY
from studies.store import ResultsFile, StoredRun, write_analysis

__all__ = [
    "DIRECTIONS", "OPERATORS", "AnalysisError", "InterpolationAnalysis", "Progress",
    "RunAnalyzer", "SpectrumAnalysis", "SurfaceAnalysis", "TrajectoryAnalysis", "Where", "draw",
    "draw_spectra", "figure_path", "interpolation", "load_analysis", "parse_where",
    "progress_bar", "spectrum", "surface", "trajectory",
]

OPERATORS = ("hessian", "lbfgs")
DIRECTIONS = ("filter", "pca", "hessian")
_PAIR_METHODS = tuple(name for name, spec in REGISTRY.items() if spec.keeps_pairs)
_INIT_RELATIVE_TOLERANCE = 1e-6

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
        name: ``"spectrum/<operator>_k<k>"``.
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
        source, run_id, label, name (``"surface/<directions>_k<k>"``): as for spectra.
        directions: ``"filter"``, ``"pca"`` or ``"hessian"``.
        iterate: ``k``, the centre.
        surface: :class:`landscape.Surface` (losses ``(g1, g2)``, index order ``[d1, d2]``).
        trajectory_iterates: int ``(r,)`` iterate index of each projected point (the stored
            iterates and the final one).
        projection: least-squares plane coordinates ``(r, 2)`` and distances ``(r,)``.
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


@dataclasses.dataclass(frozen=True)
class InterpolationAnalysis:
    """The loss on the segment ``(1 - alpha) theta_a + alpha theta_b`` (Goodfellow et al. 2015).

    Attributes:
        source, run_id, label, name (``"interpolation/k<a>_k<b>"``): as for spectra.
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
        source, run_id, label, name (``"trajectory/metrics"``): as for spectra.
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


Record = SpectrumAnalysis | SurfaceAnalysis | InterpolationAnalysis | TrajectoryAnalysis


# -- progress --------------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Progress]:
    """A tqdm bar on stderr driven by a :data:`Progress` callback; a new stage restarts it."""
    from tqdm import tqdm

    state: dict[str, Any] = {"bar": None, "stage": None}

    def update(stage: str, done: int, total: int | None) -> None:
        bar = state["bar"]
        if stage != state["stage"]:
            if bar is not None:
                bar.close()
            state["stage"] = stage
            state["bar"] = bar = tqdm(desc=f"{description} [{stage}]", total=total,
                                      file=sys.stderr, dynamic_ncols=True, disable=not enabled,
                                      leave=True, unit="call")
        elif total != bar.total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].close()


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


def _quiet(stage: str, done: int, total: int | None) -> None:
    return None


# -- points of a run -------------------------------------------------------------------------------


def parse_where(text: Where) -> Where:
    """``"init"``, ``"final"`` or a non-negative integer (from text as the command line gives it).

    Raises:
        AnalysisError: anything else.
    """
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        if text < 0:
            raise AnalysisError(f"an iterate index must be >= 0; got {text}")
        return int(text)
    if isinstance(text, str):
        word = text.strip().lower()
        if word in ("init", "final"):
            return word
        if word.isdigit():
            return int(word)
    raise AnalysisError(f"expected 'init', 'final' or an iterate index (an integer >= 0); "
                        f"got {text!r}")


def _list_indices(indices: np.ndarray, limit: int = 12) -> str:
    values = [str(int(i)) for i in indices]
    if len(values) > limit:
        values = values[: limit - 2] + ["...", values[-1]]
    return ", ".join(values) or "none"


class RunAnalyzer:
    """One stored run opened for analysis: its data is read once, its objective built on first
    use, so several analyses of the run share both.

    Args:
        path: the results file.
        run_id: id, number or unique label of the run.
        objective: the run's flat objective if already built (default: rebuilt from the stored
            configuration with :func:`studies.runner.build_objective` when first needed).

    Attributes:
        path: the results file.
        run: the :class:`studies.store.StoredRun`.
        run_id: its id.
    """

    def __init__(self, path: str | os.PathLike, run_id: str | int, *, objective=None):
        self.path = Path(path)
        store = ResultsFile(self.path)
        self.run: StoredRun = store.read(run_id)
        self.run_id = self.run.run_id
        self._updated = self.run.provenance.updated
        self._objective = objective

    @property
    def objective(self):
        """The run's :class:`solvers.flat.FlatObjective` (built on first use)."""
        if self._objective is None:
            from studies.runner import build_objective
            self._objective = build_objective(self.run.config)
        return self._objective

    # points

    def iterate_index(self, where: Where) -> int:
        """The iterate index ``k`` that ``where`` names (checked against the run's length)."""
        where = parse_where(where)
        last = self.run.result.iterations
        if where == "init":
            return 0
        if where == "final":
            return last
        if where > last:
            raise AnalysisError(f"{self.run_id} has iterates 0 to {last}; there is no iterate "
                                f"{where}")
        return where

    def iterate(self, k: int) -> np.ndarray:
        """The parameters ``theta_k``, float64 ``(n,)``: the stored iterate, ``x`` for the last
        one, or (``k = 0`` only) the rebuilt starting point whose loss matches the recorded one.

        Raises:
            AnalysisError: iterate ``k`` was not stored (the message lists the stored ones).
        """
        result = self.run.result
        if k == result.iterations:
            return np.asarray(result.x, dtype=np.float64)
        if result.iterates is not None:
            rows = np.flatnonzero(result.iterate_indices == k)
            if rows.size:
                return np.asarray(result.iterates[rows[0]], dtype=np.float64)
        if k == 0:
            start = np.asarray(self.objective.initial(), dtype=np.float64)
            loss, recorded = self.objective.value(start), float(result.loss_per_iterate[0])
            if math.isclose(loss, recorded, rel_tol=_INIT_RELATIVE_TOLERANCE):
                return start
            raise AnalysisError(
                f"{self.run_id} did not store iterate 0, and the rebuilt starting point has loss "
                f"{loss:.10g}, not the recorded {recorded:.10g}; store it with `nrto optimize "
                f"... --iterates-at 0`")
        stored = result.iterate_indices if result.iterates is not None else np.zeros(0, int)
        raise AnalysisError(
            f"{self.run_id} did not store iterate {k} (stored iterates: "
            f"{_list_indices(stored)}; the final one, {result.iterations}, is always available); "
            f"store iterates with `nrto optimize ... --iterates-every K` or `--iterates-at {k}`")

    def trajectory_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The stored iterates and the final one: indices int ``(r,)``, points ``(r, n)``."""
        result = self.run.result
        last = result.iterations
        if result.iterates is None or not len(result.iterate_indices):
            return np.array([last]), np.asarray(result.x, dtype=np.float64)[None, :]
        indices = np.asarray(result.iterate_indices, dtype=np.int64)
        points = np.asarray(result.iterates, dtype=np.float64)
        if indices[-1] != last:
            indices = np.append(indices, last)
            points = np.vstack([points, result.x[None, :]])
        return indices, points

    def lbfgs_matrix(self, k: int, memory: int | None = None) -> landscape.LBFGSMatrix:
        """The L-BFGS matrix the run used at iterate ``k``, from its stored pairs.

        ``memory`` defaults to the run's own (option ``memory``; 10 if absent).
        """
        result, record = self.run.result, self.run.config.record
        if result.s_pairs is None or result.y_pairs is None:
            raise AnalysisError(
                f"{self.run_id} stored no L-BFGS correction pairs (optimizer "
                f"{self.run.config.optimizer}); the lbfgs operator needs a run of "
                f"{' or '.join(_PAIR_METHODS)} stored without --no-pairs")
        if record.pairs_until is not None and k > record.pairs_until:
            raise AnalysisError(
                f"{self.run_id} stored its correction pairs only up to iterate "
                f"{record.pairs_until}; the L-BFGS matrix at iterate {k} needs them up to {k} "
                f"(`nrto optimize ... --pairs-until {k}`, or no --pairs-until)")
        return landscape.LBFGSMatrix.at_iterate(result.s_pairs, result.y_pairs,
                                                result.pair_iterations, k,
                                                memory=self.lbfgs_memory(memory))

    def lbfgs_memory(self, memory: int | None = None) -> int:
        """``memory`` if given, else the run's own L-BFGS memory (option ``memory``, 10 if
        absent)."""
        if memory is None:
            memory = self.run.result.options.get("memory",
                                                 self.run.config.options.get("memory", 10))
        if isinstance(memory, bool) or not isinstance(memory, (int, np.integer)) or memory < 1:
            raise AnalysisError(f"memory must be a positive integer; got {memory!r}")
        return int(memory)

    # analyses

    def spectrum(self, *, at: Where = "final", operator: str = "hessian", runs: int = 3,
                 steps: int = 50, seed: int = 0, memory: int | None = None,
                 progress: Progress | None = None, save: bool = True) -> SpectrumAnalysis:
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
        progress = progress or _quiet
        k = self.iterate_index(at)
        settings: dict[str, Any] = {"at": str(at), "iterate": k, "operator": operator,
                                    "runs": runs, "seed": seed, "reorthogonalize": True}
        if operator == "hessian":
            op = landscape.HessianOperator(self.objective, self.iterate(k))
        else:
            matrix = self.lbfgs_matrix(k, memory)
            op = matrix.B
            settings.update(memory=self.lbfgs_memory(memory), pairs=matrix.num_pairs,
                            scaling_theta=matrix.theta)
        n = op.shape[0]
        steps_used = min(steps, n)
        settings.update(steps=steps_used, requested_steps=steps, dimension=n)
        total = runs * steps_used
        counted = _ReportingOperator(op, lambda done: progress("slq", done, total))
        progress("slq", 0, total)
        result = landscape.slq(counted, num_runs=runs, num_steps=steps_used, seed=seed)
        progress("slq", counted.count, counted.count)  # runs that found an invariant subspace
        record = SpectrumAnalysis(self.path, self.run_id, self.run.label,
                                  f"spectrum/{operator}_k{k}", operator, k, result, settings)
        return self._saved(record, save)

    def surface(self, *, at: Where = "final", directions: str = "filter", grid: int = 21,
                extent: float | None = None, seed: int = 0, zero_1d: bool = True,
                progress: Progress | None = None, save: bool = True) -> SurfaceAnalysis:
        """The loss on ``theta_k + a d1 + b d2`` on a ``grid x grid`` lattice (Li et al. 2018),
        with the stored trajectory projected onto the plane by least squares.

        Directions: ``"filter"``, two filter-normalized Gaussian directions, ``d1`` then ``d2``
        drawn from ``numpy.random.default_rng(seed)`` (Li et al., Section 4; ``zero_1d`` zeroes
        biases); ``"pca"``, the first two principal directions of the stored iterates (at least
        3 points; Li et al., Section 7); ``"hessian"``, the two eigenvectors of the largest
        Hessian eigenvalues at the centre (ARPACK, seeded).

        ``a`` runs over ``linspace(-e1, e1, grid)`` and ``b`` over ``linspace(-e2, e2, grid)``
        with ``e1 = e2 = extent``; ``extent=None`` takes 1 for filter-normalized directions (one
        filter norm) and, for the unit pca and hessian directions, 1.1 times the largest
        ``|a|`` and ``|b|`` of the projected trajectory, so that the plot covers it.
        """
        if directions not in DIRECTIONS:
            raise AnalysisError(f"directions must be one of {', '.join(DIRECTIONS)}; "
                                f"got {directions!r}")
        _check_positive(grid=grid)
        if grid < 2:
            raise AnalysisError(f"grid must be >= 2 points per axis; got {grid}")
        if extent is not None and not (math.isfinite(extent) and extent > 0):
            raise AnalysisError(f"extent must be a positive number; got {extent}")
        progress = progress or _quiet
        k = self.iterate_index(at)
        center = self.iterate(k)
        indices, points = self.trajectory_points()
        objective = self.objective
        info: dict[str, np.ndarray] = {}
        if directions == "filter":
            rng = np.random.default_rng(seed)
            d1 = landscape.filter_normalized_direction(objective, center, rng, zero_1d=zero_1d)
            d2 = landscape.filter_normalized_direction(objective, center, rng, zero_1d=zero_1d)
        elif directions == "pca":
            if points.shape[0] < 3:
                raise AnalysisError(
                    f"{self.run_id} stored {points.shape[0]} point(s) of its trajectory; PCA "
                    f"directions need at least 3 (`nrto optimize ... --iterates-every K`)")
            try:
                pca = landscape.pca_directions(points)
            except ValueError as error:
                raise AnalysisError(f"{self.run_id}: {error}") from None
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
            raise AnalysisError(f"{self.run_id}: {directions} directions: {error}") from None
        if extent is not None:
            extents = (float(extent), float(extent))
        elif directions == "filter":
            extents = (1.0, 1.0)
        else:
            reach = 1.1 * np.max(np.abs(projection.coords), axis=0)
            extents = tuple(float(e) if e > 0 else 1.0 for e in reach)
        coords = tuple(np.linspace(-e, e, grid) for e in extents)
        result = landscape.surface(objective, center, d1, d2, grid=coords,
                                   progress=lambda done, total: progress("surface", done, total))
        settings = {"at": str(at), "iterate": k, "directions": directions, "grid": grid,
                    "extent": list(extents), "requested_extent": extent, "seed": seed,
                    "zero_1d": zero_1d, "dimension": int(center.size)}
        record = SurfaceAnalysis(self.path, self.run_id, self.run.label,
                                 f"surface/{directions}_k{k}", directions, k, result, indices,
                                 projection, info, settings)
        return self._saved(record, save)

    def interpolation(self, *, start: Where = "init", end: Where = "final", points: int = 51,
                      progress: Progress | None = None,
                      save: bool = True) -> InterpolationAnalysis:
        """The loss at ``points`` equally spaced points from iterate ``start`` to ``end``
        (alpha 0 to 1; Goodfellow, Vinyals & Saxe 2015)."""
        if points < 2:
            raise AnalysisError(f"points must be >= 2; got {points}")
        progress = progress or _quiet
        a, b = self.iterate_index(start), self.iterate_index(end)
        if a == b:
            raise AnalysisError(f"start and end are the same iterate ({a}); choose two")
        theta_a, theta_b = self.iterate(a), self.iterate(b)
        curve = landscape.interpolate(self.objective, theta_a, theta_b, alphas=points,
                                      progress=lambda done, total: progress("loss", done, total))
        recorded = self.run.result.loss_per_iterate[[a, b]].astype(np.float64)
        settings = {"from": str(start), "to": str(end), "start_iterate": a, "end_iterate": b,
                    "points": points}
        record = InterpolationAnalysis(self.path, self.run_id, self.run.label,
                                       f"interpolation/k{a}_k{b}", a, b, curve, recorded, settings)
        return self._saved(record, save)

    def trajectory(self, *, pca_center: str = "mean", pca_every: int = 1,
                   save: bool = True) -> TrajectoryAnalysis:
        """Trajectory metrics of the stored iterates and gradients (no objective calls)."""
        result = self.run.result
        count = 0 if result.iterates is None else len(result.iterate_indices)
        if result.iterates is None or result.gradients is None or count < 2:
            raise AnalysisError(
                f"{self.run_id} stored {count} iterate(s) with gradients; trajectory metrics need "
                f"at least 2 (`nrto optimize ... --iterates-every K`)")
        indices = np.asarray(result.iterate_indices, dtype=np.int64)
        losses = result.loss_per_iterate[indices].astype(np.float64)
        final = {}
        if indices[-1] != result.iterations:  # the last row is not the final point: give it
            final = {"final": result.x, "final_loss": float(result.loss_per_iterate[-1])}
        metrics = landscape.trajectory_metrics(result.iterates, losses, result.gradients,
                                               pca_center=pca_center, pca_every=pca_every,
                                               **final)
        settings = {"pca_center": pca_center, "pca_every": pca_every,
                    "final_iterate": int(result.iterations), "rows": int(indices.size)}
        record = TrajectoryAnalysis(self.path, self.run_id, self.run.label, "trajectory/metrics",
                                    indices, losses, metrics, settings)
        return self._saved(record, save)

    def _saved(self, record: Record, save: bool) -> Record:
        if save:
            arrays, axes = _arrays(record)
            write_analysis(self.path, self.run_id, record.name, arrays, axes, record.settings,
                           run_updated=self._updated)
        return record


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise AnalysisError(f"{name} must be a positive integer; got {value!r}")


# -- one-call functions ----------------------------------------------------------------------------


def spectrum(path: str | os.PathLike, run_id: str | int, **options) -> SpectrumAnalysis:
    """``RunAnalyzer(path, run_id).spectrum(**options)`` (see :meth:`RunAnalyzer.spectrum`)."""
    return RunAnalyzer(path, run_id).spectrum(**options)


def surface(path: str | os.PathLike, run_id: str | int, **options) -> SurfaceAnalysis:
    """``RunAnalyzer(path, run_id).surface(**options)`` (see :meth:`RunAnalyzer.surface`)."""
    return RunAnalyzer(path, run_id).surface(**options)


def interpolation(path: str | os.PathLike, run_id: str | int,
                  **options) -> InterpolationAnalysis:
    """``RunAnalyzer(path, run_id).interpolation(**options)``."""
    return RunAnalyzer(path, run_id).interpolation(**options)


def trajectory(path: str | os.PathLike, run_id: str | int, **options) -> TrajectoryAnalysis:
    """``RunAnalyzer(path, run_id).trajectory(**options)``."""
    return RunAnalyzer(path, run_id).trajectory(**options)


# -- storage ---------------------------------------------------------------------------------------

_METRIC_FIELDS = tuple(field.name for field in dataclasses.fields(landscape.TrajectoryMetrics))


def _arrays(record: Record) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """The datasets of a record and their axis names."""
    if isinstance(record, SpectrumAnalysis):
        s = record.spectrum
        return ({"nodes": s.nodes, "weights": s.weights, "steps_per_run": s.steps_per_run},
                {"nodes": ("run", "node"), "weights": ("run", "node"), "steps_per_run": ("run",)})
    if isinstance(record, SurfaceAnalysis):
        arrays = {"coords1": record.surface.coords1, "coords2": record.surface.coords2,
                  "losses": record.surface.losses,
                  "trajectory_iterates": record.trajectory_iterates,
                  "trajectory_coords": record.projection.coords,
                  "trajectory_distances": record.projection.distances}
        axes = {"coords1": ("coord1",), "coords2": ("coord2",), "losses": ("coord1", "coord2"),
                "trajectory_iterates": ("point",), "trajectory_coords": ("point", "plane_axis"),
                "trajectory_distances": ("point",)}
        for name, values in record.direction_info.items():
            arrays[f"direction_{name}"], axes[f"direction_{name}"] = values, ("direction",)
        return arrays, axes
    if isinstance(record, InterpolationAnalysis):
        return ({"alphas": record.interpolation.alphas, "losses": record.interpolation.losses,
                 "recorded_losses": record.recorded_losses},
                {"alphas": ("point",), "losses": ("point",), "recorded_losses": ("endpoint",)})
    if isinstance(record, TrajectoryAnalysis):
        arrays = {"iterate_indices": record.iterate_indices, "losses": record.losses}
        axes = {"iterate_indices": ("stored_iterate",), "losses": ("stored_iterate",)}
        for name in _METRIC_FIELDS:
            values = getattr(record.metrics, name)
            arrays[name] = values
            axes[name] = ("stored_iterate",) if values.ndim == 1 else ("stored_iterate",
                                                                       "component")
        return arrays, axes
    raise TypeError(f"not an analysis record: {type(record).__name__}")


def load_analysis(path: str | os.PathLike, run_id: str | int, name: str) -> Record:
    """A stored analysis as its typed record (the inverse of storing it).

    Raises:
        studies.store.RunNotFoundError: no such run or analysis.
    """
    store = ResultsFile(path)
    stored = store.read_analysis(run_id, name)
    label = next(row.label for row in store.runs() if row.run_id == stored.run_id)
    a, s = stored.arrays, dict(stored.settings)
    common = (Path(path), stored.run_id, label, stored.name)
    if stored.kind == "spectrum":
        result = landscape.Spectrum(nodes=a["nodes"], weights=a["weights"],
                                    dimension=int(s["dimension"]), steps_per_run=a["steps_per_run"])
        return SpectrumAnalysis(*common, s["operator"], int(s["iterate"]), result, s)
    if stored.kind == "surface":
        info = {n[len("direction_"):]: v for n, v in a.items() if n.startswith("direction_")}
        return SurfaceAnalysis(
            *common, s["directions"], int(s["iterate"]),
            landscape.Surface(a["coords1"], a["coords2"], a["losses"]), a["trajectory_iterates"],
            landscape.PlaneProjection(a["trajectory_coords"], a["trajectory_distances"]), info, s)
    if stored.kind == "interpolation":
        return InterpolationAnalysis(*common, int(s["start_iterate"]), int(s["end_iterate"]),
                                     landscape.Interpolation(a["alphas"], a["losses"]),
                                     a["recorded_losses"], s)
    if stored.kind == "trajectory":
        metrics = landscape.TrajectoryMetrics(**{n: a[n] for n in _METRIC_FIELDS})
        return TrajectoryAnalysis(*common, a["iterate_indices"], a["losses"], metrics, s)
    raise AnalysisError(f"unknown analysis kind {stored.kind!r} in {path}")


# -- figures ---------------------------------------------------------------------------------------


def figure_path(results: str | os.PathLike, run_id: str, name: str) -> Path:
    """Default figure of an analysis: ``<folder>/<file stem>/<run id>-<kind>-<key>.png``."""
    results = Path(results)
    return results.parent / results.stem / f"{run_id}-{name.replace('/', '-')}.png"


def _where_text(k: int) -> str:
    return "init" if k == 0 else f"iterate {k}"


def draw(record: Record, path: str | os.PathLike | None = None, *, title: str = "") -> Path:
    """Draw an analysis record into a PNG (default :func:`figure_path`); returns the path.

    Spectra: smoothed density on a symmetric-log eigenvalue axis and a log density axis
    (Ghorbani et al. 2019). Surfaces: contours of log10 loss with the projected trajectory
    coloured by each point's distance from the plane (Li et al. 2018). Interpolations: the loss
    curve (log axis). Trajectories: one panel per metric.
    """
    from studies import landscape_plots as plots

    path = Path(path) if path is not None else figure_path(record.source, record.run_id,
                                                           record.name)
    head = f"{record.run_id} {record.label}"
    if isinstance(record, SpectrumAnalysis):
        which = "Hessian" if record.operator == "hessian" else "L-BFGS matrix B"
        label = (f"{which}, {_where_text(record.iterate)} "
                 f"({record.settings['runs']} x {record.settings['steps']} SLQ)")
        return Path(plots.plot_spectra(path, {label: record.spectrum},
                                       title=title or f"{head}\nspectral density"))
    if isinstance(record, SurfaceAnalysis):
        labels = {"filter": ("filter-normalized d1", "filter-normalized d2"),
                  "pca": tuple(f"PC{i + 1} ({100 * r:.1f}% of variance)" for i, r in enumerate(
                      record.direction_info.get("explained_variance_ratio", [np.nan] * 2))),
                  "hessian": tuple(f"Hessian eigenvector {i + 1} (lambda = {v:.3g})"
                                   for i, v in enumerate(
                                       record.direction_info.get("eigenvalues", [np.nan] * 2)))}
        return Path(plots.plot_surface(
            path, record.surface, trajectory=record.projection.coords,
            distances=record.projection.distances, labels=labels[record.directions],
            title=title or f"{head}\nloss around {_where_text(record.iterate)} "
                           f"({record.directions} directions)"))
    if isinstance(record, InterpolationAnalysis):
        label = f"{_where_text(record.start_iterate)} -> iterate {record.end_iterate}"
        return Path(plots.plot_interpolations(
            path, {label: record.interpolation},
            title=title or f"{head}\nlinear interpolation"))
    if isinstance(record, TrajectoryAnalysis):
        return Path(plots.plot_trajectory_metrics(
            path, record.metrics, iterations=record.iterate_indices, losses=record.losses,
            title=title or f"{head}: trajectory metrics"))
    raise TypeError(f"not an analysis record: {type(record).__name__}")


def draw_spectra(records: Mapping[str, SpectrumAnalysis], path: str | os.PathLike, *,
                 title: str = "") -> Path:
    """Several spectra in one figure (e.g. the Hessian and the L-BFGS matrix at one iterate)."""
    from studies import landscape_plots as plots

    if not records:
        raise ValueError("draw_spectra needs at least one spectrum")
    return Path(plots.plot_spectra(path, {label: record.spectrum
                                          for label, record in records.items()}, title=title))
