"""Compact records -> loss curves, the statistics of §4.6-§4.7 and the rows of Tables 3.2, 3.3, B.x.

Conventions (guide §4.7, ambiguities 11 and 12):
    * A cell's curve is its loss per step in the method's unit (``CompactRecord.curve``: L-BFGS
      per evaluation, GD/HD/GD_LS per iterate), cut to ``steps + 1`` points (step 0 = the start).
    * The best-so-far curve is the cumulative minimum over the finite losses, forward-filled past
      the run's end (a run that stopped early or failed keeps its best value); NaN before the
      first finite loss.
    * "Final loss" = the best-so-far value at the last step; the table's value is its median over
      seeds, with the 25th and 75th percentiles as the IQR.
    * The convergence step is the first step at which the per-step median best-so-far curve lies
      within ``rtol`` (1e-3; 1e-2 also reported) relative of its final value.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from studies.study import CompactRecord, Study, StudyFolder, expand, tuned_values

__all__ = ["RunSet", "best_so_far", "convergence_step", "load_runs", "median_curve",
           "median_holding_last", "summarize"]


def best_so_far(curve: np.ndarray, length: int) -> np.ndarray:
    """float64 ``(length,)``: cumulative minimum of the finite values, forward-filled."""
    values = np.asarray(curve, np.float64)[:length]
    values = np.where(np.isfinite(values), values, np.inf)
    out = np.full(length, np.nan)
    if values.size:
        running = np.minimum.accumulate(values)
        out[:values.size] = running
        out[values.size:] = running[-1]
    out[~np.isfinite(out)] = np.nan
    return out


def median_curve(curves: Iterable[np.ndarray]) -> np.ndarray:
    """Per-step median over the given equal-length curves (NaN where all are NaN)."""
    stack = np.array(list(curves), dtype=np.float64)
    if stack.size == 0:
        return np.array([])
    with np.errstate(all="ignore"):
        finite = np.isfinite(stack).any(axis=0)
        out = np.full(stack.shape[1], np.nan)
        out[finite] = np.nanmedian(stack[:, finite], axis=0)
    return out


def median_holding_last(rows: Sequence[tuple[np.ndarray, np.ndarray]]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Median over runs ``(steps (k_i,), values (k_i,))`` on the union of their steps.

    A run that stopped early (it diverged, or converged) keeps its last value: its parameters
    stay where it stopped. Returns ``(steps (k,), median (k,))``.
    """
    steps = np.unique(np.concatenate([np.asarray(x) for x, _ in rows]))
    held = [np.asarray(y, np.float64)[np.searchsorted(x, steps, side="right") - 1]
            for x, y in rows]
    return steps, median_curve(held)


def convergence_step(median: np.ndarray, rtol: float = 1e-3) -> int | None:
    """First index where ``median`` is within ``rtol`` relative of its last value (None: empty)."""
    median = np.asarray(median, np.float64)
    if median.size == 0 or not np.isfinite(median[-1]):
        return None
    final = median[-1]
    close = np.abs(median - final) <= rtol * max(abs(final), np.finfo(float).tiny)
    return int(np.argmax(close & np.isfinite(median)))


@dataclasses.dataclass(frozen=True)
class RunSet:
    """The finished records of one study, indexed by ``(problem, model, penal, method, seed)``.

    Attributes:
        study: the spec.
        folder: its results folder.
        records: coordinates -> record, finished cells only.
        cells: every cell of the study (tuned cells only once their tuning finished).
    """

    study: Study
    folder: StudyFolder
    records: Mapping[tuple, CompactRecord]
    cells: tuple

    def group(self, problem: str, model: str, penal: float, method: str
              ) -> list[CompactRecord]:
        """The records of one (problem, model, penal, method), in seed order."""
        found = [(k[4], r) for k, r in self.records.items()
                 if k[:4] == (problem, model, float(penal), method)]
        return [r for _, r in sorted(found, key=lambda item: item[0])]

    def cells_of(self, **match) -> list:
        return [c for c in self.cells if all(getattr(c, k) == v for k, v in match.items())]

    @property
    def cpu_seconds(self) -> float:
        return float(sum(r.provenance.get("cpu_s", 0.0) for r in self.records.values()))


def load_runs(study: Study, folder: StudyFolder) -> RunSet:
    """Read every finished record of ``study`` from ``folder`` (nothing is run)."""
    tuned = tuned_values(study, folder) if study.tune is not None else None
    cells = expand(study, tuned)
    records = {}
    for cell, record in folder.records(cells):
        if record is not None:
            records[cell.coordinates] = record
    return RunSet(study, folder, records, cells)


def summarize(records: list[CompactRecord], steps: int) -> dict:
    """Statistics of one group over its seeds (see the module docstring).

    Returns:
        ``median_final_loss, iqr_low, iqr_high, convergence_step, convergence_step_1e2,
        median_last_raw, seeds_done, median`` (the median best-so-far curve, ``(steps + 1,)``).
    """
    length = steps + 1
    curves = [best_so_far(r.curve, length) for r in records]
    finals = np.array([c[-1] for c in curves]) if curves else np.array([])
    finite = finals[np.isfinite(finals)]
    median = median_curve(curves) if curves else np.full(length, np.nan)
    raw_last = np.array([r.curve[:length][-1] if r.curve.size else np.nan for r in records])
    return {
        "median_final_loss": float(np.median(finite)) if finite.size else float("nan"),
        "iqr_low": float(np.percentile(finite, 25)) if finite.size else float("nan"),
        "iqr_high": float(np.percentile(finite, 75)) if finite.size else float("nan"),
        "convergence_step": convergence_step(median, 1e-3),
        "convergence_step_1e2": convergence_step(median, 1e-2),
        "median_last_raw": float(np.nanmedian(raw_last)) if np.isfinite(raw_last).any()
        else float("nan"),
        "seeds_done": len(records), "median": median}
