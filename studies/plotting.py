"""Figures of stored runs: designs and loss curves (matplotlib, no display needed).

Figures are built with :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state, rendered
by the Agg canvas), so they work on headless machines and in worker processes.

Conventions: designs are drawn row 0 at the top, density 0 white and 1 black; losses on a log
axis against the evaluation index (every objective call, line-search trials included, as the
paper reports them), with the running minimum in bold.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the store (h5py) is not needed to label a figure
    from studies.store import StoredRun

__all__ = ["literal", "plot_runs", "save_figure"]


def literal(text: object) -> str:
    """``text`` as matplotlib should draw it, verbatim: with ``$`` escaped, a label such as
    ``cost $5`` or ``$\\foo$`` (a study's or a results file's free text) is not parsed as
    mathtext, whose unknown commands would abort the whole figure."""
    return str(text).replace("$", r"\$")


def _positive(values: np.ndarray) -> np.ndarray:
    """``values`` with non-finite and non-positive entries masked (NaN) for a log axis."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _running_min(values: np.ndarray) -> np.ndarray:
    finite = np.where(np.isfinite(values), values, np.inf)
    running = np.minimum.accumulate(finite) if finite.size else finite
    return np.where(np.isinf(running), np.nan, running)


def _draw_design(axes, design: np.ndarray, title: str) -> None:
    axes.imshow(design, cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes.set_title(literal(title), fontsize=8)
    axes.set_xticks([])
    axes.set_yticks([])


def plot_runs(runs: Sequence[StoredRun], path: str | os.PathLike, *,
              max_designs: int = 8, dpi: int = 120) -> Path:
    """Draw designs and loss curves of stored runs into an image file.

    One run: every stored design (up to ``max_designs``, titled with its iterate index) above
    its loss per evaluation and the running minimum. Several runs: the last design of each (up to
    ``max_designs``) above the running minimum of each run's loss, one line per run.

    Args:
        runs: runs read with :meth:`studies.store.ResultsFile.read`.
        path: the image file; the format follows the suffix (``.png``, ``.pdf``, ``.svg``).
        max_designs: the most designs drawn.
        dpi: resolution of raster formats.

    Returns:
        The path written.

    Raises:
        ValueError: no runs given.
    """
    from matplotlib.figure import Figure

    if not runs:
        raise ValueError("plot_runs needs at least one run")
    path = Path(path)
    panels: list[tuple[np.ndarray, str]] = []
    for run in runs:
        result = run.result
        if result.designs is None or not len(result.designs):
            continue
        if len(runs) == 1:
            panels += [(design, f"iterate {k}") for k, design in
                       zip(result.design_indices, result.designs)]
        else:
            panels.append((result.designs[-1], f"{run.run_id}\nbest {result.best_loss:.4g}"))
    panels = panels[:max_designs]

    columns = max(len(panels), 1)
    height, width = (panels[0][0].shape if panels else (1, 2))
    design_height = min(3.0, max(1.2, 9.0 / columns * height / width))
    figure = Figure(figsize=(9.0, design_height + 3.6), layout="constrained")
    grid = figure.add_gridspec(2 if panels else 1, columns,
                               height_ratios=[design_height, 3.6] if panels else None)
    for column, (design, title) in enumerate(panels):
        _draw_design(figure.add_subplot(grid[0, column]), design, title)
    curves = figure.add_subplot(grid[-1, :])

    for run in runs:
        losses = run.result.loss_per_evaluation
        evaluations = np.arange(len(losses))
        label = run.run_id + (" (partial)" if run.partial else "")
        if len(runs) == 1:
            curves.plot(evaluations, _positive(losses), lw=0.8, alpha=0.5, color="C0",
                        label="loss per evaluation")
            curves.plot(evaluations, _positive(_running_min(losses)), lw=1.8, color="C1",
                        label="running minimum")
        else:
            curves.plot(evaluations, _positive(_running_min(losses)), lw=1.4,
                        label=literal(f"{label} {run.config.model}/{run.config.optimizer}/"
                                      f"seed{run.config.seed}"))
    curves.set_yscale("log")
    curves.set_xlabel("evaluation (objective calls)")
    curves.set_ylabel("loss (compliance)")
    curves.grid(True, which="both", alpha=0.3)
    if len(runs) == 1:
        run = runs[0]
        curves.set_title(literal(f"{run.run_id}  {run.label}  ({run.result.status}"
                                 f"{', partial' if run.partial else ''})"), fontsize=9)
    else:
        curves.set_title(f"running minimum of the loss, {len(runs)} runs", fontsize=9)
    curves.legend(fontsize=7, loc="upper right")
    return save_figure(figure, path, dpi=dpi, tight=False)


def save_figure(figure, path: str | os.PathLike, *, dpi: int, tight: bool = True) -> Path:
    """Write a matplotlib figure to ``path`` atomically, by the rules of :mod:`studies.outputs`
    (a reader never sees half a figure; a full disk is one line); the format follows the
    suffix. ``tight`` crops the figure to its drawn content (``bbox_inches="tight"``).

    Returns:
        ``path``.
    """
    from studies.outputs import atomic_output

    with atomic_output(path) as temporary:
        figure.savefig(temporary, dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    return Path(path)
