"""Loss-landscape analyses of stored runs: computed from the results file, stored in it, drawn.

Each analysis rebuilds what it needs from a run of a results file (:mod:`studies.store`): the
objective from the stored configuration (:func:`studies.runner.build_objective`), points from the
stored iterates, L-BFGS matrices from the stored correction pairs. It returns a typed record and,
unless ``save=False``, stores the record's arrays under ``/runs/<id>/analysis/<kind>/<key>``
(:func:`studies.store.write_analysis`; schema in ``results/README.md``). Figures are drawn by
:func:`draw` (default path ``<file folder>/<file stem>/<run id>-<kind>-<key>.png``).

Every kind is one :class:`Analysis` in the registry :data:`ANALYSES` (compute, to arrays, from
arrays, draw, summary; :mod:`studies.analysis_kinds`), returning a typed record
(:mod:`studies.analysis_records`); the command line and this module dispatch through it and
re-export both. The key encodes
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
import math
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import landscape
from solvers.optim.registry import REGISTRY
from studies.analysis_kinds import (ANALYSES, DIRECTIONS, ON_PLANE_FRACTION, OPERATORS,
                                    Analysis, InterpolationKind, SpectrumKind, SurfaceKind,
                                    TrajectoryKind, analysis_for, analysis_for_command,
                                    spectrum_label, summary, surface_trajectory)
from studies.analysis_records import (AnalysisError, InterpolationAnalysis, Progress, Record,
                                      SpectrumAnalysis, SurfaceAnalysis, TrajectoryAnalysis,
                                      Where)
from studies.store import ResultsFile, StoredRun, write_analysis

__all__ = [
    "ANALYSES", "DIRECTIONS", "ON_PLANE_FRACTION", "OPERATORS", "Analysis", "AnalysisError",
    "InterpolationAnalysis", "InterpolationKind", "Progress", "RunAnalyzer", "SpectrumAnalysis",
    "SpectrumKind", "SurfaceAnalysis", "SurfaceKind", "TrajectoryAnalysis", "TrajectoryKind",
    "Where", "analysis_for", "analysis_for_command", "draw", "draw_spectra", "figure_path",
    "interpolation", "load_analysis", "parse_where", "progress_bar", "spectrum",
    "spectrum_label", "summary", "surface", "surface_trajectory", "trajectory",
]

_PAIR_METHODS = tuple(name for name, spec in REGISTRY.items() if spec.keeps_pairs)
_INIT_RELATIVE_TOLERANCE = 1e-6
# a float32-trained run's start evaluated by the float64 network: float32 rounding of the network
# (tests/test_float32.py bounds it by 1e-5)
_INIT_RELATIVE_TOLERANCE_FLOAT32 = 1e-5


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

    def __init__(self, path: str | os.PathLike, run_id: str | int, *, objective=None,
                 network_dtype: str = "float64"):
        if network_dtype not in ("float64", "stored"):
            raise ValueError(f"network_dtype must be 'float64' or 'stored'; got {network_dtype!r}")
        self.path = Path(path)
        store = ResultsFile(self.path)
        self.run: StoredRun = store.read(run_id)
        self.run_id = self.run.run_id
        self._updated = self.run.provenance.updated
        self._objective = objective
        config = self.run.config
        self.trained_dtype = config.network_dtype
        self._evaluation_config = config
        self.evaluation_note: str | None = None
        if self.trained_dtype == "float32" and network_dtype == "float64":
            self._evaluation_config = config.with_float64_network()
            self.evaluation_note = (f"{self.run_id} was trained with the float32 network; "
                                    "evaluated with the float64 network at its stored parameters")

    @property
    def objective(self):
        """The run's :class:`solvers.flat.FlatObjective` (built on first use): a float32-trained
        CNN run gets the float64 network unless ``network_dtype='stored'``
        (:attr:`evaluation_note` then says so)."""
        if self._objective is None:
            from studies.runner import build_objective
            self._objective = build_objective(self._evaluation_config)
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
            tolerance = _INIT_RELATIVE_TOLERANCE
            if self.trained_dtype == "float32":  # the float32 run started at float32 values
                start = start.astype(np.float32).astype(np.float64)
                tolerance = _INIT_RELATIVE_TOLERANCE_FLOAT32
            loss, recorded = self.objective.value(start), float(result.loss_per_iterate[0])
            if math.isclose(loss, recorded, rel_tol=tolerance):
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
