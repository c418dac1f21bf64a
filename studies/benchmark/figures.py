"""Figures of the paper benchmark (matplotlib only; drawn with the Agg canvas, no display).

* :func:`plot_cdf`: the paper's Figure 3, a 2 x 2 grid (rows: typical sample, best of ensemble;
  columns: small and large problems with their N) of the cumulative fraction of problems whose
  relative error at the evaluation step is below a threshold, one line per method, with a short
  vertical tick under the axis at each method's mean relative error (unclipped when it lies
  beyond the axis).
* :func:`plot_error_against_step`: relative error against step, one thin line per problem,
  rows the size groups and columns the methods, y from 0 to 0.2 (the notebook's figure 7(a)).
* :func:`plot_designs`: a grid of final designs, rows tasks and columns methods.

Every function writes its image atomically and returns the path.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from studies.benchmark.analysis import METHODS, SAMPLES
from studies.benchmark.report import METHOD_TITLES, SAMPLE_TITLES

__all__ = ["plot_cdf", "plot_designs", "plot_error_against_step"]

_COLORS = {"cnn-lbfgs": "tab:blue", "pixels-lbfgs": "tab:orange", "pixels-mma": "tab:green",
           "pixels-oc": "tab:red"}
_GROUP_TITLES = {"small": "Small problems", "large": "Large problems", "all": "All problems"}


_CDF_RIGHT = 0.21  # the right end of the CDF axes; means beyond it are drawn as arrows

def _figure(rows: int, columns: int, size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def _save(figure, path: str | os.PathLike, dpi: int) -> Path:
    from studies.plotting import save_figure

    return save_figure(figure, path, dpi=dpi)


def plot_cdf(fractions: xr.DataArray, table: xr.Dataset, path: str | os.PathLike, *,
             group_sizes: Mapping[str, int] | None = None, dpi: int = 120) -> Path:
    """Draw the CDF figure.

    Args:
        fractions: :func:`~studies.benchmark.analysis.cdf`, ``(sample, group, method,
            threshold)`` with groups ``small`` and ``large``.
        table: :func:`~studies.benchmark.analysis.summary` at the same step (its means give the
            ticks under the axis).
        path: the image file (format from the suffix).
        group_sizes: N in the column titles (default: the largest ``tasks`` count of the group
            in ``table``, i.e. the problems of the group that some method has a value for).
    """
    groups = [str(g) for g in fractions["group"].values]
    figure, axes = _figure(len(SAMPLES), len(groups), (4.2 * len(groups), 3.4 * len(SAMPLES)))
    thresholds = fractions["threshold"].values
    for row, sample in enumerate(SAMPLES):
        for column, group in enumerate(groups):
            ax = axes[row, column]
            for method in METHODS:
                if method not in fractions["method"].values:
                    continue
                cell = {"sample": sample, "group": group, "method": method}
                ax.plot(thresholds, fractions.sel(cell),
                        color=_COLORS[method], label=METHOD_TITLES[method], linewidth=1.5)
                mean = float(table["mean_relative_error"].sel(cell))
                if np.isfinite(mean) and mean <= _CDF_RIGHT:
                    ax.plot([mean, mean], [-0.06, 0.02], color=_COLORS[method], linewidth=2,
                            clip_on=False)
                elif np.isfinite(mean):  # off the axis: an arrow head at its right edge
                    ax.plot([_CDF_RIGHT], [-0.02], marker=">", markersize=6,
                            color=_COLORS[method], clip_on=False)
            if group_sizes is not None and group in group_sizes:
                count = group_sizes[group]
            else:
                count = int(table["tasks"].sel(group=group).max())
            ax.set_title(f"{_GROUP_TITLES[group]} (N={count})" if row == 0 else "")
            ax.set_xlim(-0.01, _CDF_RIGHT)
            ax.set_xticks(np.arange(0.0, 0.2001, 0.05))
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if row == len(SAMPLES) - 1:
                ax.set_xlabel("Relative error threshold")
            if column == 0:
                ax.set_ylabel(f"{SAMPLE_TITLES[sample]}\nCumulative probability")
    axes[0, -1].legend(loc="lower right", fontsize=8)
    return _save(figure, path, dpi)


def plot_error_against_step(reduction: xr.Dataset, path: str | os.PathLike, *,
                            sample: str = "typical", max_step: int | None = None,
                            dpi: int = 120) -> Path:
    """Relative error of every problem against step, rows size groups, columns methods.

    Args:
        reduction: :func:`~studies.benchmark.analysis.reduce_losses`.
        sample: ``typical`` or ``ensemble``.
        max_step: the last step drawn (default: all).
    """
    if sample not in SAMPLES:
        raise ValueError(f"sample must be one of {SAMPLES}; got {sample!r}")
    errors = reduction["relative_error"].sel(sample=sample)
    if max_step is not None:
        errors = errors.sel(step=errors["step"] <= max_step)
    methods = [m for m in METHODS if m in errors["method"].values]
    large = reduction["large"]
    figure, axes = _figure(2, len(methods), (3.2 * len(methods), 5.6))
    steps = errors["step"].values
    for row, (group, members) in enumerate((("small", ~large), ("large", large))):
        chosen = errors.sel(problem=members.values)
        for column, method in enumerate(methods):
            ax = axes[row, column]
            for curve in chosen.sel({"method": method}).values:
                ax.plot(steps, curve, color=_COLORS[method], linewidth=0.6, alpha=0.5)
            ax.set_ylim(0.0, 0.2)
            ax.set_title(f"{METHOD_TITLES[method]}, {_GROUP_TITLES[group].lower()} "
                         f"(N={chosen.sizes['problem']})", fontsize=9)
            if row == 1:
                ax.set_xlabel("Step")
            if column == 0:
                ax.set_ylabel(f"Relative error ({SAMPLE_TITLES[sample].lower()})")
    return _save(figure, path, dpi)


def plot_designs(designs: Mapping[tuple[str, str], np.ndarray], path: str | os.PathLike, *,
                 tasks: Sequence[str] | None = None, dpi: int = 120) -> Path:
    """A grid of designs: rows tasks, columns methods; density 0 white, 1 black, row 0 on top.

    Args:
        designs: ``{(task, method): float (height, width)}`` physical densities in [0, 1]; a
            missing pair is an empty cell.
        tasks: the rows, in order (default: the tasks of ``designs`` in sorted order).

    Raises:
        ValueError: no designs, or a design that is not a 2-D array.
    """
    if not designs:
        raise ValueError("no designs to draw")
    tasks = sorted({task for task, _ in designs}) if tasks is None else list(tasks)
    methods = [m for m in METHODS if any(method == m for _, method in designs)]
    figure, axes = _figure(len(tasks), len(methods),
                           (2.4 * len(methods), 1.3 * len(tasks) + 0.6))
    for row, task in enumerate(tasks):
        for column, method in enumerate(methods):
            ax = axes[row, column]
            ax.set_xticks([])
            ax.set_yticks([])
            design = designs.get((task, method))
            if design is not None:
                design = np.asarray(design, dtype=np.float64)
                if design.ndim != 2:
                    raise ValueError(f"design of {task}/{method} has shape {design.shape}; "
                                     "expected (height, width)")
                ax.imshow(design, cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest")
            if row == 0:
                ax.set_title(METHOD_TITLES[method], fontsize=9)
            if column == 0:
                ax.set_ylabel(task, fontsize=6, rotation=0, ha="right", va="center")
    return _save(figure, path, dpi)
