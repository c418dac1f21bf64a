"""Figures of the landscape tools: spectra, surfaces, interpolations and trajectory metrics.

Each function takes typed results of :mod:`landscape` and writes one PNG (matplotlib, Agg backend).
Conventions follow the literature: spectral densities with a log density axis (Ghorbani et al.
2019), here over a symmetric-log eigenvalue axis; surfaces as contours of log10 loss (Li et al.
2018).

The spectral density is drawn on the Ritz support of each spectrum: every quadrature node's
Gaussian kernel (in the symmetric-log coordinate) is cut at the smallest and largest Ritz value
and renormalized, so no mass appears below the smallest Ritz value (e.g. negative eigenvalues of
a positive definite L-BFGS matrix) or above the largest. The density is per unit of the
coordinate ``u = sign(x) log10(1 + |x| / t)``: per decade of ``|x|`` where ``|x| >> t``, and
inside the linear zone ``|x| < t`` (shaded) per ``t ln 10`` of ``x``, not per decade.
Symmetric-log axes get at most one labelled tick per ``step`` decades of the drawn axis (with
``step`` chosen so the labels cannot overlap), and no label closer than that to the ``0`` tick.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from studies.plotting import literal, save_figure

__all__ = [
    "plot_interpolations",
    "plot_spectra",
    "plot_surface",
    "plot_trajectory_metrics",
    "spectrum_grid",
    "symlog_coordinate",
    "symlog_density",
]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str | os.PathLike) -> str:
    try:
        save_figure(fig, path, dpi=120)
    finally:
        _pyplot().close(fig)
    return os.fspath(path)


def spectrum_grid(spectra: Sequence, points: int = 2001) -> tuple[np.ndarray, float]:
    """A symmetric-log-spaced eigenvalue grid covering the nodes of all spectra, and the linear
    threshold of the symlog axis (1e-6 of the largest |node|).

    Only the sides of zero that hold nodes are covered beyond the threshold (a positive definite
    L-BFGS matrix gets no negative half).

    Returns:
        grid ``(g,)`` ascending, and the threshold.
    """
    nodes = np.concatenate([s.nodes[s.weights > 0] for s in spectra])
    largest = max(float(np.max(np.abs(nodes))), 1e-300)
    threshold = 1e-6 * largest
    half = max(points // 2, 2)
    parts = [np.linspace(-threshold, threshold, 21)]
    if nodes.max() > threshold:
        parts.append(np.geomspace(threshold, 1.5 * nodes.max(), half))
    if nodes.min() < -threshold:
        parts.append(-np.geomspace(threshold, -1.5 * nodes.min(), half))
    return np.unique(np.concatenate(parts)), threshold


def _symlog_ticks(ax, low: float, high: float, threshold: float, most: int = 9,
                  axis: str = "x") -> None:
    """Ticks at powers of ten labelled ``±10^e``, at least ``step`` displayed decades apart.

    On a symlog axis (``linscale=1``) the tick ``10^e`` sits ``e - log10(threshold) + 1``
    decades from 0; ``step`` is the whole number of decades that keeps the total at ``most``
    ticks or fewer, and a tick nearer than ``step`` to 0 (whose label would touch "0") is left
    out. The largest decade on each side is always kept.
    """
    floor = np.log10(threshold)
    sides = []
    for sign, extreme in ((1.0, high), (-1.0, -low)):
        if extreme > threshold:
            sides.append((sign, np.arange(np.ceil(floor), np.floor(np.log10(extreme)) + 1)))
    span = sum(exponents[-1] - floor + 1 for _, exponents in sides if exponents.size)
    step = max(1, int(np.ceil(span / max(most - 1, 1))), 2 if len(sides) == 2 else 1)
    ticks = [0.0]
    for sign, exponents in sides:
        kept = exponents[::-1][::step][::-1]             # keep the largest decade
        kept = kept[kept - floor + 1 >= step]            # not crowding the 0 label
        ticks += [sign * 10.0 ** e for e in kept]
    ticks = sorted(ticks)
    labels = ["0" if t == 0 else f"${'-' if t < 0 else ''}10^{{{int(round(np.log10(abs(t))))}}}$"
              for t in ticks]
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_ticks(ticks)
    target.set_ticklabels(labels)
    target.set_minor_locator(_null_locator())


def _null_locator():
    from matplotlib.ticker import NullLocator
    return NullLocator()


def symlog_coordinate(values: np.ndarray, threshold: float) -> np.ndarray:
    """``sign(x) log10(1 + |x| / threshold)``: decades away from the linear band ``|x| <
    threshold`` (the coordinate of a symmetric-log axis)."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.log10(1.0 + np.abs(values) / threshold)


def symlog_density(spectrum, grid: np.ndarray, threshold: float,
                   width_decades: float = 0.05) -> np.ndarray:
    """Smoothed eigenvalue density on the Ritz support, per unit of the symmetric-log coordinate.

    The quadrature nodes ``theta`` and weights ``tau^2`` of a :class:`landscape.Spectrum` are
    smoothed by a Gaussian of standard deviation ``width_decades`` in
    :func:`symlog_coordinate` (every scale gets the same relative resolution; a Gaussian of a
    fixed width in the eigenvalue itself blurs all scales below its width into one plateau).
    Each node's kernel is cut at the coordinates ``u_min, u_max`` of the smallest and largest
    Ritz value with positive weight and renormalized to the node's weight, so the density is
    zero outside ``[min Ritz value, max Ritz value]`` and integrates to 1 over the coordinate
    there (the kernel of Ghorbani et al.'s code, which spreads mass beyond the extreme Ritz
    values, would show negative eigenvalues that the operator does not have). A spectrum with a
    single distinct Ritz value (e.g. ``B = I``) has a support of no width: it is drawn as one
    uncut kernel at that value.

    Returns:
        float64 ``(g,)`` density at ``grid``.
    """
    from scipy.special import ndtr

    used = spectrum.weights > 0
    nodes = symlog_coordinate(spectrum.nodes[used], threshold)
    weights = spectrum.weights[used]
    low, high = float(nodes.min()), float(nodes.max())
    points = symlog_coordinate(grid, threshold)
    if high - low < 1e-9 * width_decades:  # one distinct Ritz value: a support of no width
        low, high = -np.inf, np.inf         # drawn as one uncut kernel
    inside = (points >= low) & (points <= high)
    # mass of each node's Gaussian inside [low, high]
    mass = ndtr((high - nodes) / width_decades) - ndtr((low - nodes) / width_decades)
    scale = np.divide(weights, mass, out=np.zeros_like(weights), where=mass > 0)
    total = np.zeros(points.shape)
    for start in range(0, nodes.size, 256):                       # bounded memory
        diff = (points[:, None] - nodes[None, start:start + 256]) / width_decades
        kernel = np.exp(-0.5 * diff ** 2) / (width_decades * np.sqrt(2.0 * np.pi))
        total += kernel @ scale[start:start + 256]
    return np.where(inside, total, 0.0) / spectrum.num_runs


def plot_spectra(path, spectra: Mapping[str, object], *, width_decades: float = 0.05,
                 title: str = "") -> str:
    """Smoothed eigenvalue densities of several :class:`landscape.Spectrum` objects.

    A log density axis over a symmetric-log eigenvalue axis (the compliance's spectra span many
    orders of magnitude, and differ by orders of magnitude between iterates); the density is on
    each spectrum's Ritz support, per unit of the symmetric-log coordinate
    (:func:`symlog_density`; Ghorbani et al. 2019 smooth with a Gaussian of fixed width on a
    linear axis, available as :meth:`landscape.Spectrum.density`). The linear zone of the axis
    is shaded, and the quadrature nodes are drawn as ticks at the bottom.
    """
    plt = _pyplot()
    spectra = dict(spectra)
    grid, threshold = spectrum_grid(list(spectra.values()))
    densities = {label: symlog_density(spectrum, grid, threshold, width_decades)
                 for label, spectrum in spectra.items()}
    top = max(float(np.max(d)) for d in densities.values())
    bottom = top * 1e-10
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.axvspan(-threshold, threshold, color="0.85", zorder=0)
    for label, spectrum in spectra.items():
        density = densities[label]
        line, = ax.plot(grid, np.where(density > 0, np.maximum(density, bottom * 1e-3), np.nan),
                        label=literal(label))
        nodes = spectrum.nodes[spectrum.weights > 0]
        ax.plot(nodes, np.full(nodes.shape, bottom * 3), "|", color=line.get_color(),
                alpha=0.6, markersize=10)
    ax.set_xscale("symlog", linthresh=threshold)
    ax.set_yscale("log")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(bottom, top * 3)
    _symlog_ticks(ax, grid[0], grid[-1], threshold)
    ax.set_xlabel(f"eigenvalue (symmetric log axis; shaded: linear within ±{threshold:.1e})")
    ax.set_ylabel("density per unit of u = sign(λ) log10(1 + |λ|/t)", fontsize=8)
    ax.set_title(literal(title or "spectral density (SLQ)"), fontsize=10)
    ax.legend(fontsize=8, title=f"Gaussian kernel of {width_decades:g} in u, cut at the extreme "
              f"Ritz values; per decade where |λ| ≫ t; ticks: quadrature nodes",
              title_fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    return _save(fig, path)


def plot_surface(path, surface, *, trajectory: np.ndarray | None = None,
                 distances: np.ndarray | None = None, labels: tuple[str, str] = ("d1", "d2"),
                 note: str = "", equal_scales: bool = False, title: str = "") -> str:
    """Contours of log10 loss on a :class:`landscape.Surface`.

    Args:
        trajectory: optional plane coordinates ``(r, 2)`` of a trajectory to draw (the caller
            decides whether the plane holds it, e.g.
            :func:`studies.analysis.surface_trajectory`).
        distances: ``(r,)`` distance of each point from the plane; colours the points.
        note: a line written under the axes (e.g. why no trajectory is drawn).
        equal_scales: the same data scale on both axes (for directions of equal length, so
            that the contours' shapes show the curvature ratio).
    """
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
    if equal_scales:
        ax.set_aspect("equal")
    if note:
        ax.text(0.5, -0.14, note, transform=ax.transAxes, ha="center", va="top", fontsize=7,
                wrap=True)
    ax.set_xlabel(literal(labels[0]))
    ax.set_ylabel(literal(labels[1]))
    ax.set_title(literal(title or "loss surface"))
    return _save(fig, path)


def plot_interpolations(path, interpolations: Mapping[str, object], *, title: str = "") -> str:
    """Loss along straight lines, one curve per :class:`landscape.Interpolation` (log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in interpolations.items():
        ax.plot(curve.alphas, curve.losses, label=literal(label))
    ax.set_yscale("log")
    ax.set_xlabel("alpha  (0: start point, 1: end point)")
    ax.set_ylabel("loss")
    ax.set_title(literal(title or "linear interpolation"))
    ax.legend()
    return _save(fig, path)


def plot_trajectory_metrics(path, metrics, *, iterations: np.ndarray | None = None,
                            losses: np.ndarray | None = None, spacing: str = "every iterate",
                            title: str = "") -> str:
    """Panels of :class:`landscape.TrajectoryMetrics` against the iterate index.

    ``spacing`` names which iterates the rows are (e.g. ``"every 10th iterate"``); the
    "successive" panels say it, since they compare successive stored rows.
    """
    plt = _pyplot()
    x = np.arange(metrics.gradient_norm.size) if iterations is None else iterations
    rows_of = "" if spacing == "every iterate" else f"\n(stored rows: {spacing})"
    panels = [
        ("loss", losses, "log"),
        ("distance from start", metrics.distance_from_start, "linear"),
        ("gradient norm", metrics.gradient_norm, "log"),
        ("cos(successive gradients)" + rows_of, metrics.gradient_cosine, "linear"),
        ("cos(successive steps)" + rows_of, metrics.step_cosine, "linear"),
        ("gradient projected on direction to final", metrics.gradient_projection_to_final,
         "symlog"),
        ("star-convexity residual", metrics.star_convexity_residual, "symlog"),
        ("PCA explained variance (PC1, PC2)", metrics.pca_explained_variance, "linear"),
    ]
    panels = [panel for panel in panels if panel[1] is not None]
    columns = 2
    rows = (len(panels) + 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(10, 2.5 * rows), sharex=True)
    for ax, (label, values, scale) in zip(np.ravel(axes), panels):
        values = np.asarray(values)
        if values.ndim == 2:
            for column in range(values.shape[1]):
                ax.plot(x, values[:, column], label=f"PC{column + 1}")
            ax.legend(fontsize=7)
        else:
            ax.plot(x, values)
        if scale == "symlog":
            _symlog_values_axis(ax, values)
        else:
            ax.set_yscale(scale)
        ax.set_title(label, fontsize=9)
    for ax in np.ravel(axes)[len(panels):]:
        ax.set_visible(False)
    for ax in np.ravel(axes)[-columns:]:
        ax.set_xlabel("iterate")
    fig.suptitle(literal(title or "trajectory metrics"))
    fig.tight_layout()
    return _save(fig, path)


def _symlog_values_axis(ax, values: np.ndarray) -> None:
    """A symmetric-log y axis for ``values``: linear within 1e-6 of the largest |value|, ticks
    that do not overlap (:func:`_symlog_ticks`)."""
    finite = np.abs(values[np.isfinite(values)])
    largest = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    threshold = 1e-6 * largest
    ax.set_yscale("symlog", linthresh=threshold)
    low = float(np.nanmin(values)) if finite.size else -largest
    high = float(np.nanmax(values)) if finite.size else largest
    ax.set_ylim(min(low, 0.0) * 3 - threshold, max(high, 0.0) * 3 + threshold)
    _symlog_ticks(ax, min(low, 0.0), max(high, 0.0), threshold, most=6, axis="y")
