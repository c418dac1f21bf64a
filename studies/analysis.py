"""Loss-landscape analyses of stored runs: computed from the results file, stored in it, drawn.

Each analysis rebuilds what it needs from a run of a results file (:mod:`studies.store`): the
objective from the stored configuration (:func:`studies.runner.build_objective`), points from the
stored iterates, L-BFGS matrices from the stored correction pairs. It returns a typed record and,
unless ``save=False``, stores the record's arrays under ``/runs/<id>/analysis/<kind>/<key>``
(:func:`studies.store.write_analysis`; schema in ``results/README.md``). Figures are drawn by
:func:`draw` (default path ``<file folder>/<file stem>/<run id>-<kind>-<key>.png``).

Every kind is one :class:`Analysis` in the registry :data:`ANALYSES` (compute, to arrays, from
arrays, draw, summary); the command line and this module dispatch through it. The key encodes
every setting that changes the result, so an analysis with other (e.g. cheaper) settings is
stored beside an earlier one, never over it; only the same settings replace it.

=================  ======================================  ====================================
kind               key                                     what (module of :mod:`landscape`)
=================  ======================================  ====================================
``spectrum``       ``<operator>_k<k>_r<runs>_m<steps>``    SLQ eigenvalue density of the
                   ``_s<seed>[_mem<memory>]``              Hessian or of the L-BFGS matrix
                                                           ``B`` at iterate ``k``
                                                           (``spectrum``, ``operators``)
``surface``        ``<directions>_k<k>_g<grid>``           loss on a plane through iterate
                   ``_e<extent|auto>[_s<seed>][_biases]``  ``k`` and the stored trajectory's
                                                           projection (``surfaces``,
                                                           ``directions``)
``interpolation``  ``k<a>_k<b>_p<points>``                 loss on the segment from iterate
                                                           ``a`` to ``b``
``trajectory``     ``metrics_pca-<centre>-<every>``        metrics of the stored iterates and
                                                           gradients (``trajectory``)
=================  ======================================  ====================================

Points are named as on the command line: ``"init"`` (iterate 0), ``"final"`` (the last iterate,
whose parameters ``x`` every run stores) or an iterate index ``k``. Iterate ``k`` must be stored
(``RecordOptions.iterates_every`` / ``iterates_at``); iterate 0 that was not stored is rebuilt
from the configuration, and accepted only if its loss equals the recorded one (relative 1e-6).

Example (a notebook)::

    from studies import analysis
    top = analysis.spectrum("results/quickstart.h5", "run-0000", at="final")
    top.extremes, top.trace                 # Ritz-value bounds and the SLQ trace estimate
    analysis.draw(top)          # results/quickstart/run-0000-spectrum-hessian_k87_r3_m50_s0.png
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
from typing import Any, Protocol

import numpy as np
from scipy.sparse.linalg import LinearOperator

import landscape
from studies.store import ResultsFile, StoredRun, write_analysis

__all__ = [
    "ANALYSES", "DIRECTIONS", "ON_PLANE_FRACTION", "OPERATORS", "Analysis", "AnalysisError",
    "InterpolationAnalysis", "InterpolationKind", "Progress", "RunAnalyzer", "SpectrumAnalysis",
    "SpectrumKind", "SurfaceAnalysis", "SurfaceKind", "TrajectoryAnalysis", "TrajectoryKind",
    "Where", "analysis_for", "analysis_for_command", "draw", "draw_spectra", "figure_path",
    "interpolation", "load_analysis", "parse_where", "progress_bar", "spectrum",
    "spectrum_label", "summary", "surface", "surface_trajectory", "trajectory",
]

OPERATORS = ("hessian", "lbfgs")
DIRECTIONS = ("filter", "pca", "hessian")
_PAIR_METHODS = ("lbfgs", "hd")
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
                f"(`nrto optimize ... --pairs-until {k}` or `--all-pairs`)")
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

    def analyse(self, kind: str, *, progress: Progress | None = None, save: bool = True,
                **options) -> Record:
        """Compute the analysis ``kind`` (a key of :data:`ANALYSES`) with ``options`` and, unless
        ``save=False``, store it under its settings-encoding name (an earlier analysis of the
        same name, i.e. with the same settings, is replaced; other settings are kept beside it).
        """
        if kind not in ANALYSES:
            raise AnalysisError(f"unknown analysis {kind!r}; known: {', '.join(ANALYSES)}")
        record = ANALYSES[kind].compute(self, progress=progress or _quiet, **options)
        if save:
            arrays, axes = ANALYSES[kind].to_arrays(record)
            write_analysis(self.path, self.run_id, record.name, arrays, axes, record.settings,
                           run_updated=self._updated)
        return record

    def spectrum(self, **options) -> SpectrumAnalysis:
        """``analyse("spectrum", ...)``: see :meth:`SpectrumKind.compute`."""
        return self.analyse("spectrum", **options)

    def surface(self, **options) -> SurfaceAnalysis:
        """``analyse("surface", ...)``: see :meth:`SurfaceKind.compute`."""
        return self.analyse("surface", **options)

    def interpolation(self, **options) -> InterpolationAnalysis:
        """``analyse("interpolation", ...)``: see :meth:`InterpolationKind.compute`."""
        return self.analyse("interpolation", **options)

    def trajectory(self, **options) -> TrajectoryAnalysis:
        """``analyse("trajectory", ...)``: see :meth:`TrajectoryKind.compute`."""
        return self.analyse("trajectory", **options)

    def _common(self, name: str) -> tuple[Path, str, str, str]:
        return self.path, self.run_id, self.run.label, name


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise AnalysisError(f"{name} must be a positive integer; got {value!r}")


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
        settings.update(steps=steps_used, requested_steps=steps, dimension=n)
        total = runs * steps_used
        counted = _ReportingOperator(op, lambda done: progress("slq", done, total))
        progress("slq", 0, total)
        result = landscape.slq(counted, num_runs=runs, num_steps=steps_used, seed=seed)
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


# -- one-call functions ----------------------------------------------------------------------------


def spectrum(path: str | os.PathLike, run_id: str | int, **options) -> SpectrumAnalysis:
    """``RunAnalyzer(path, run_id).spectrum(**options)`` (see :meth:`SpectrumKind.compute`)."""
    return RunAnalyzer(path, run_id).spectrum(**options)


def surface(path: str | os.PathLike, run_id: str | int, **options) -> SurfaceAnalysis:
    """``RunAnalyzer(path, run_id).surface(**options)`` (see :meth:`SurfaceKind.compute`)."""
    return RunAnalyzer(path, run_id).surface(**options)


def interpolation(path: str | os.PathLike, run_id: str | int,
                  **options) -> InterpolationAnalysis:
    """``RunAnalyzer(path, run_id).interpolation(**options)``."""
    return RunAnalyzer(path, run_id).interpolation(**options)


def trajectory(path: str | os.PathLike, run_id: str | int, **options) -> TrajectoryAnalysis:
    """``RunAnalyzer(path, run_id).trajectory(**options)``."""
    return RunAnalyzer(path, run_id).trajectory(**options)


# -- storage and figures ---------------------------------------------------------------------------


def load_analysis(path: str | os.PathLike, run_id: str | int, name: str) -> Record:
    """A stored analysis as its typed record (the inverse of storing it).

    Raises:
        studies.store.RunNotFoundError: no such run or analysis.
        AnalysisError: an analysis kind this version does not know.
    """
    store = ResultsFile(path)
    stored = store.read_analysis(run_id, name)
    if stored.kind not in ANALYSES:
        raise AnalysisError(f"unknown analysis kind {stored.kind!r} in {path}; known: "
                            f"{', '.join(ANALYSES)}")
    label = next(row.label for row in store.runs() if row.run_id == stored.run_id)
    common = (Path(path), stored.run_id, label, stored.name)
    return ANALYSES[stored.kind].from_arrays(common, stored.arrays, dict(stored.settings))


def figure_path(results: str | os.PathLike, run_id: str, name: str) -> Path:
    """Default figure of an analysis: ``<folder>/<file stem>/<run id>-<kind>-<key>.png``."""
    results = Path(results)
    return results.parent / results.stem / f"{run_id}-{name.replace('/', '-')}.png"


def draw(record: Record, path: str | os.PathLike | None = None, *, title: str = "") -> Path:
    """Draw an analysis record into a PNG (default :func:`figure_path`); returns the path.

    Spectra: a density on the Ritz support over a symmetric-log eigenvalue axis with a log
    density axis (Ghorbani et al. 2019). Surfaces: contours of log10 loss, with the trajectory
    where the plane holds it (:func:`surface_trajectory`; Li et al. 2018). Interpolations: the
    loss curve (log axis). Trajectories: one panel per metric.
    """
    path = Path(path) if path is not None else figure_path(record.source, record.run_id,
                                                           record.name)
    return analysis_for(record).draw(record, path, title)


def draw_spectra(records: Mapping[str, SpectrumAnalysis], path: str | os.PathLike, *,
                 title: str = "") -> Path:
    """Several spectra in one figure (e.g. the Hessian and the L-BFGS matrix at one iterate)."""
    from studies import landscape_plots as plots

    if not records:
        raise ValueError("draw_spectra needs at least one spectrum")
    return Path(plots.plot_spectra(path, {label: record.spectrum
                                          for label, record in records.items()}, title=title))
