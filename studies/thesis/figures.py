"""Matplotlib drawings of the thesis's figures (Agg canvas, no pyplot state; PNG files).

Every function takes plain arrays and a path and writes one PNG atomically (temporary file, then
``os.replace``). Loss axes are logarithmic; missing panels say so in the panel.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["curve_panels", "distance_panels", "interpolation_panels", "save", "spectra_panels",
           "surface_panels"]

STYLES = {"LBFGS": ("C0", "-"), "GD": ("C1", "--"), "LBFGS_M1": ("C2", "-"),
          "HD_M1": ("C3", "-"), "HD_M10": ("C4", "-"), "GD_LS": ("C5", "-"),
          "GD_2000": ("C1", ":"), "GD (tuned)": ("C1", ":"), "HD_M1 (tuned)": ("C3", ":"),
          "HD_M10 (tuned)": ("C4", ":")}


def _figure(rows: int, columns: int, size: tuple[float, float] = (3.2, 2.6)):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def save(figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` to ``path`` (PNG, 110 dpi) atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from studies.plotting import save_figure

    FigureCanvasAgg(figure)
    return save_figure(figure, path, dpi=110, tight=False)


def _missing(axes, text: str = "no records yet") -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, fontsize=8)


def _positive(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def curve_panels(path, panels: Sequence[Sequence[tuple[str, Mapping[str, np.ndarray]]]], *,
                 title: str, xlabel: str = "step", zoom: bool = False,
                 per_seed: bool = False) -> Path:
    """A grid of loss-curve panels.

    Args:
        panels: rows of ``(panel title, {label: curve})``; a curve is float64 ``(steps + 1,)``
            (or ``(seeds, steps + 1)`` with ``per_seed``).
        zoom: limit the y axis to the curves' last 70 % (the convergence region, Figs C.7, C.8).
        per_seed: draw every row of each array thinly (Figs C.1, C.3, C.4).
    """
    figure, axes = _figure(len(panels), max(len(row) for row in panels))
    for r, row in enumerate(panels):
        for c, (name, curves) in enumerate(row):
            ax = axes[r][c]
            ax.set_title(name, fontsize=9)
            drawn = False
            lows, highs = [], []
            for label, curve in curves.items():
                color, style = STYLES.get(label.split("/")[0], ("k", "-"))
                lines = np.atleast_2d(curve) if per_seed else [curve]
                for i, line in enumerate(lines):
                    line = _positive(line)
                    if not np.isfinite(line).any():
                        continue
                    ax.plot(np.arange(line.size), line, style, color=color,
                            lw=0.7 if per_seed else 1.3, alpha=0.7 if per_seed else 1.0,
                            label=label if i == 0 else None)
                    tail = line[int(0.3 * line.size):]
                    lows.append(np.nanmin(tail))
                    highs.append(np.nanmax(tail))
                    drawn = True
            if not drawn:
                _missing(ax)
                continue
            ax.set_yscale("log")
            if zoom and lows:
                ax.set_ylim(min(lows) * 0.98, max(highs) * 1.02)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    return save(figure, path)


def interpolation_panels(path, panels: Sequence[tuple[str, Mapping[str, tuple]]], *,
                         title: str) -> Path:
    """Panels of 1-D interpolations: ``(panel title, {label: (x, loss)})``."""
    figure, axes = _figure(1, len(panels))
    for c, (name, lines) in enumerate(panels):
        ax = axes[0][c]
        ax.set_title(name, fontsize=9)
        if not lines:
            _missing(ax)
            continue
        for label, (x, loss) in lines.items():
            ax.plot(x, _positive(loss), lw=1.0, label=label)
        ax.set_yscale("log")
        ax.tick_params(labelsize=7)
        if len(lines) <= 12:
            ax.legend(fontsize=6)
    figure.suptitle(title, fontsize=10)
    return save(figure, path)


_SPECTRA_COLUMNS = (("B", "L-BFGS B", "C3"), ("H", "Hessian", "C0"))


def spectra_panels(path, rows: Sequence[tuple[str, Mapping[str, tuple]]], *, title: str,
                   columns: Sequence[tuple[str, str, str]] = _SPECTRA_COLUMNS) -> Path:
    """Rows ``(row title, {key: (grid, density)})``; ``columns`` are ``(key, label, colour)``
    (default: B of L-BFGS left in red, the Hessian right in blue, as the thesis draws them)."""
    figure, axes = _figure(len(rows), len(columns))
    for r, (name, densities) in enumerate(rows):
        for c, (key, label, color) in enumerate(columns):
            ax = axes[r][c]
            ax.set_title(f"{name}: {label}", fontsize=9)
            if key not in densities:
                _missing(ax)
                continue
            grid, density = densities[key]
            ax.semilogy(grid, np.maximum(density, 1e-12), color=color, lw=1.0)
            ax.set_xlabel("eigenvalue", fontsize=8)
            ax.tick_params(labelsize=7)
    figure.suptitle(title, fontsize=10)
    return save(figure, path)


def distance_panels(path, panels: Sequence[tuple[str, Mapping[str, tuple], np.ndarray | None,
                                                str]], *, title: str) -> Path:
    """Panels ``(title, {label: (steps, values)}, loss overlay or None, y label)``."""
    figure, axes = _figure(1, len(panels))
    for c, (name, lines, overlay, ylabel) in enumerate(panels):
        ax = axes[0][c]
        ax.set_title(name, fontsize=9)
        if not lines:
            _missing(ax)
            continue
        for label, (x, y) in lines.items():
            color, style = STYLES.get(label, ("k", "-"))
            ax.plot(x, y, style, color=color, lw=1.2, label=label)
        ax.set_yscale("log")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
        if overlay is not None:
            twin = ax.twinx()
            for label, curve in overlay.items():
                twin.plot(np.arange(curve.size), _positive(curve), color="red", alpha=0.35,
                          lw=1.0)
            twin.set_yscale("log")
            twin.tick_params(which="both", labelsize=6, colors="red")
    figure.suptitle(title, fontsize=10)
    return save(figure, path)


def surface_panels(path, panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], *,
                   title: str, dot: bool = True) -> Path:
    """Contours of log10(loss) ``(title, alphas (g1,), betas (g2,), loss (g1, g2))``."""
    figure, axes = _figure(1, len(panels), (3.2, 3.0))
    for c, (name, alphas, betas, loss) in enumerate(panels):
        ax = axes[0][c]
        ax.set_title(name, fontsize=9)
        values = np.log10(_positive(loss))
        if not np.isfinite(values).any():
            _missing(ax, "no finite losses")
            continue
        grid = ax.contourf(alphas, betas, values.T, levels=20, cmap="viridis")
        figure.colorbar(grid, ax=ax, shrink=0.8)
        if dot:
            ax.plot([0.0], [0.0], "o", color="red", ms=4)
        ax.set_xlabel("alpha", fontsize=8)
        ax.set_ylabel("beta", fontsize=8)
        ax.tick_params(labelsize=7)
    figure.suptitle(title, fontsize=10)
    return save(figure, path)
