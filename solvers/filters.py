"""The masked cone (density) filter of topology optimization.

Each design cell ``i`` inside the mask becomes the weighted mean of the cells ``j`` inside the mask
around it, with weights ``w_ij = max(0, r - |c_i - c_j|)`` (Bruns & Tortorelli 2001; the density
filter of Andreassen et al. 2011), normalized by the sum of the weights that cell ``i`` received
from cells inside the mask. Cells outside the mask are 0 after filtering. A radius of 0 means no
filter. The stencil is clamped to the grid (offsets beyond it reach no cell), so any radius at
least the grid's size costs what a radius of the grid's size costs and gives the dense filter
``w_ij = r - |c_i - c_j|`` over all cells.

Index convention: cells are numbered in C order of the ``(H, W)`` design, ``e = row * W + col``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

__all__ = ["cone_filter_matrix"]


def cone_filter_matrix(mask: np.ndarray, radius: float) -> scipy.sparse.csr_matrix:
    """The normalized cone filter as a sparse matrix.

    Args:
        mask: bool ``(H, W)``, True where material may be placed.
        radius: filter radius in elements (>= 0); 0 gives the mask's diagonal projection.

    Returns:
        float64 CSR ``(H*W, H*W)`` matrix ``F``; ``F @ x.ravel()`` is the filtered design.
        Rows and columns of cells outside the mask are zero; each row inside the mask sums to 1.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    if not (np.isfinite(radius) and radius >= 0):
        raise ValueError(f"filter radius must be a finite number >= 0, got {radius}")
    height, width = mask.shape
    size = height * width
    if radius == 0:
        return scipy.sparse.diags(mask.ravel().astype(float), format="csr")
    # Offsets beyond the grid reach no cell: the stencil is clamped to the grid, so a radius
    # larger than the design costs no more than one the size of the design.
    reach_rows = min(int(np.ceil(radius)), height - 1)
    reach_cols = min(int(np.ceil(radius)), width - 1)
    cell = np.arange(size).reshape(height, width)
    rows, cols, weights = [], [], []
    for d_row in range(-reach_rows, reach_rows + 1):
        for d_col in range(-reach_cols, reach_cols + 1):
            weight = radius - np.hypot(d_row, d_col)
            if weight <= 0:
                continue
            # cells (r, c) whose neighbour (r + d_row, c + d_col) lies on the grid
            here = (slice(max(0, -d_row), height - max(0, d_row)),
                    slice(max(0, -d_col), width - max(0, d_col)))
            there = (slice(max(0, d_row), height - max(0, -d_row)),
                     slice(max(0, d_col), width - max(0, -d_col)))
            inside = mask[here] & mask[there]
            rows.append(cell[here][inside])
            cols.append(cell[there][inside])
            weights.append(np.full(int(inside.sum()), weight))
    raw = scipy.sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))
    totals = np.asarray(raw.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return scipy.sparse.diags(scale) @ raw
