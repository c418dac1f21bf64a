"""Figures of the landscape tools: spectra, surfaces, interpolations and trajectory metrics.

Each function takes typed results of :mod:`landscape` and writes one PNG (matplotlib, Agg backend).
Conventions follow the literature: spectral densities on a symmetric-log eigenvalue axis with a
log density axis (Ghorbani et al. 2019), surfaces as contours of log10 loss (Li et al. 2018).
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_spectra", "plot_surface", "plot_interpolations", "plot_trajectory_metrics"]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str | os.PathLike) -> str:
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp.png")
    fig.savefig(temporary, dpi=120, bbox_inches="tight")
    os.replace(temporary, path)  # a reader never sees a half-written figure
    _pyplot().close(fig)
    return path


def spectrum_grid(spectra: Sequence, points: int = 2001) -> tuple[np.ndarray, float]:
    """A symmetric-log-spaced eigenvalue grid covering all spectra, and a linear threshold.

    Returns:
        grid ``(points,)`` and the symlog linear threshold (1e-6 of the largest |node|).
    """
    largest = max(float(np.max(np.abs(s.nodes[s.weights > 0]))) for s in spectra)
    largest = max(largest, 1e-300)
    threshold = 1e-6 * largest
    positive = np.geomspace(threshold, 1.1 * largest, points // 2)
    grid = np.concatenate([-positive[::-1], [0.0], positive])
    return grid, threshold


def plot_spectra(path, spectra: Mapping[str, object], *, relative_sigma: float = 1e-3,
                 title: str = "") -> str:
    """Smoothed eigenvalue densities of several :class:`landscape.Spectrum` objects.

    The Gaussian kernel's standard deviation is ``relative_sigma * max|eigenvalue|`` (spectra of
    the compliance span many orders of magnitude, so a fixed sigma would hide all but one scale);
    the thesis's absolute setting (variance 1e-4) is available through :meth:`Spectrum.density`.
    Quadrature nodes are drawn as ticks at the bottom.
    """
    plt = _pyplot()
    grid, threshold = spectrum_grid(list(spectra.values()))
    sigma = relative_sigma * grid[-1] / 1.1
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, spectrum in spectra.items():
        density = spectrum.density(grid, sigma)
        line, = ax.plot(grid, np.maximum(density, 1e-300), label=label)
        nodes = spectrum.nodes[spectrum.weights > 0]
        ax.plot(nodes, np.full(nodes.shape, 1e-300), "|", color=line.get_color(), alpha=0.5)
    ax.set_xscale("symlog", linthresh=threshold)
    ax.set_yscale("log")
    positive = [spectrum.density(grid, sigma) for spectrum in spectra.values()]
    top = max(float(np.max(d)) for d in positive)
    ax.set_ylim(top * 1e-12, top * 3)
    ax.set_xlabel("eigenvalue (symlog)")
    ax.set_ylabel(f"density (Gaussian kernel, sigma = {relative_sigma:g} x max|eigenvalue|)")
    ax.set_title(title or "Hessian spectral density (SLQ)")
    ax.legend()
    return _save(fig, path)


def plot_surface(path, surface, *, trajectory: np.ndarray | None = None,
                 distances: np.ndarray | None = None, labels: tuple[str, str] = ("d1", "d2"),
                 title: str = "") -> str:
    """Contours of log10 loss on a :class:`landscape.Surface`, with an optional projected
    trajectory ``(r, 2)`` (coloured by its distance from the plane when given)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    losses = np.where(np.isfinite(surface.losses) & (surface.losses > 0), surface.losses, np.nan)
    c1, c2 = np.meshgrid(surface.coords1, surface.coords2, indexing="ij")
    filled = ax.contourf(c1, c2, np.log10(losses), levels=30, cmap="viridis")
    ax.contour(c1, c2, np.log10(losses), levels=15, colors="k", linewidths=0.3)
    fig.colorbar(filled, ax=ax, label="log10 loss")
    if trajectory is not None:
        ax.plot(trajectory[:, 0], trajectory[:, 1], "-", color="w", linewidth=1)
        scatter = ax.scatter(trajectory[:, 0], trajectory[:, 1], s=10,
                             c=distances if distances is not None else "w", cmap="magma", zorder=3)
        if distances is not None:
            fig.colorbar(scatter, ax=ax, label="distance from the plane")
        ax.plot(*trajectory[0], "o", color="r", label="start")
        ax.plot(*trajectory[-1], "*", color="r", markersize=12, label="end")
        ax.legend(loc="upper right")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title or "loss surface")
    return _save(fig, path)


def plot_interpolations(path, interpolations: Mapping[str, object], *, title: str = "") -> str:
    """Loss along straight lines, one curve per :class:`landscape.Interpolation` (log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in interpolations.items():
        ax.plot(curve.alphas, curve.losses, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("alpha  (0: start point, 1: end point)")
    ax.set_ylabel("loss")
    ax.set_title(title or "linear interpolation")
    ax.legend()
    return _save(fig, path)


def plot_trajectory_metrics(path, metrics, *, iterations: np.ndarray | None = None,
                            losses: np.ndarray | None = None, title: str = "") -> str:
    """Panels of :class:`landscape.TrajectoryMetrics` against the iterate index."""
    plt = _pyplot()
    x = np.arange(metrics.gradient_norm.size) if iterations is None else iterations
    panels = [
        ("loss", losses, "log"),
        ("distance from start", metrics.distance_from_start, "linear"),
        ("gradient norm", metrics.gradient_norm, "log"),
        ("cos(successive gradients)", metrics.gradient_cosine, "linear"),
        ("cos(successive steps)", metrics.step_cosine, "linear"),
        ("gradient projected on direction to final", metrics.gradient_projection_to_final, "symlog"),
        ("star-convexity residual", metrics.star_convexity_residual, "symlog"),
        ("PCA explained variance (PC1, PC2)", metrics.pca_explained_variance, "linear"),
    ]
    panels = [panel for panel in panels if panel[1] is not None]
    columns = 2
    rows = (len(panels) + 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(10, 2.4 * rows), sharex=True)
    for ax, (label, values, scale) in zip(np.ravel(axes), panels):
        values = np.asarray(values)
        if values.ndim == 2:
            for column in range(values.shape[1]):
                ax.plot(x, values[:, column], label=f"PC{column + 1}")
            ax.legend(fontsize=7)
        else:
            ax.plot(x, values)
        ax.set_yscale(scale)
        ax.set_title(label, fontsize=9)
    for ax in np.ravel(axes)[len(panels):]:
        ax.set_visible(False)
    for ax in np.ravel(axes)[-columns:]:
        ax.set_xlabel("iterate")
    fig.suptitle(title or "trajectory metrics")
    return _save(fig, path)
