"""Everything ``results/paper-benchmark/`` holds, from the consolidated losses in one call.

:func:`write_outputs` reduces the losses (:mod:`studies.benchmark.analysis`), writes the CSV
files and ``REPORT.md`` (:mod:`studies.benchmark.report`) and draws the figures
(:mod:`studies.benchmark.figures`). File names carry the evaluation step, so the default (1000)
gives the issue's names: ``typical-step1000.csv``, ``best-of-ensemble-step1000.csv``,
``seeds.csv``, ``summary.csv``, ``cdf.png``, ``error-typical.png``, ``error-ensemble.png``,
``designs.png`` (when designs are given) and ``REPORT.md``.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from studies.benchmark.analysis import (
    EVALUATION_STEP, at_step, cdf, comparable, cpu_hours, projected_cpu_hours_per_seed,
    reduce_losses, summary, typical_seeds, win_counts)
from studies.benchmark.figures import plot_cdf, plot_designs, plot_error_against_step
from studies.benchmark.report import (
    catalogue_tasks, write_report, write_seeds, write_step_table, write_summary)
from studies.benchmark.spec import BenchmarkCell, cell_counts

__all__ = ["BenchmarkOutputs", "write_outputs"]

_DESIGN_DPI = 80  # one row per task: 116 rows are about 150 inches tall


def _tasks_with_runs(reduction: xr.Dataset, step: int) -> int:
    """How many problems have a curve of at least one method at ``step``."""
    curves = at_step(reduction["curve"], step)
    return int(curves.notnull().any(("sample", "method")).sum())


@dataclasses.dataclass(frozen=True)
class BenchmarkOutputs:
    """The files :func:`write_outputs` wrote (paths) and the reduction they came from."""

    reduction: xr.Dataset
    typical: Path
    ensemble: Path
    seeds: Path
    summary: Path
    report: Path
    figures: tuple[Path, ...]


def write_outputs(out: str | os.PathLike, dataset: xr.Dataset, *,
                  cells: Iterable[BenchmarkCell], done: Iterable[str],
                  step: int = EVALUATION_STEP, tasks: Sequence[str] | None = None,
                  designs: Mapping[tuple[str, str], np.ndarray] | None = None,
                  notes: Sequence[str] = (), dpi: int = 120) -> BenchmarkOutputs:
    """Reduce ``dataset`` and write the benchmark's result files into ``out``.

    Args:
        out: the folder (created if missing), e.g. ``results/paper-benchmark``.
        dataset: :func:`~studies.benchmark.analysis.consolidate`'s Dataset (``loss`` and
            ``elapsed_time``).
        cells: the benchmark's cells (for the count of cells done).
        done: labels of the cells whose runs are complete.
        step: the evaluation step (1000; ``--quick`` uses its own budget).
        tasks: the rows of the CSV tables (default: the catalogue's 116 tasks).
        designs: ``{(task, method): final design}`` for the design grid (optional).
        notes: lines for the report's notes.
        dpi: resolution of the figures.
    """
    out = Path(out)
    reduction = reduce_losses(dataset)
    typical = write_step_table(out / f"typical-step{step}.csv",
                               at_step(reduction["curve"].sel(sample="typical", drop=True), step),
                               tasks)
    ensemble = write_step_table(out / f"best-of-ensemble-step{step}.csv",
                                at_step(reduction["curve"].sel(sample="ensemble", drop=True),
                                        step), tasks)
    seeds = write_seeds(out / "seeds.csv", typical_seeds(reduction, step), tasks)
    compared = comparable(reduction, step)  # the tasks on which every method has run
    table = summary(compared, step)
    summary_path = write_summary(out / "summary.csv", table)
    figures = [("Fraction of tasks below a relative error at step {step} (the paper's "
                "Figure 3)", plot_cdf(cdf(compared, step), table, out / "cdf.png", dpi=dpi))]
    for sample in ("typical", "ensemble"):
        figures.append((f"Relative error against step, {sample} sample",
                        plot_error_against_step(compared, out / f"error-{sample}.png",
                                                sample=sample, max_step=step, dpi=dpi)))
    if designs:
        rows = [task for task in (catalogue_tasks() if tasks is None else tasks)
                if any(key[0] == task for key in designs)]
        rows += sorted({task for task, _ in designs} - set(rows))
        figures.append(("Final designs (the run behind each typical value)",
                        plot_designs(designs, out / "designs.png", tasks=rows,
                                     dpi=min(dpi, _DESIGN_DPI))))
    hours = cpu_hours(dataset)
    report = write_report(
        out / "REPORT.md", table=table, wins=win_counts(compared, step),
        cells=cell_counts(cells, done),
        cpu_hours={(str(m), str(g)): float(hours.sel({"method": m, "group": g}))
                   for m in hours["method"].values for g in hours["group"].values},
        evaluation_step=step,
        projected_cpu_hours_per_seed=projected_cpu_hours_per_seed(dataset),
        figures=[(caption.format(step=step), path.name) for caption, path in figures],
        notes=notes, compared=(compared.sizes["problem"], _tasks_with_runs(reduction, step)))
    return BenchmarkOutputs(reduction, typical, ensemble, seeds, summary_path, report,
                            tuple(path for _, path in figures))
