"""The masked cone (density) filter of topology optimization.

Each design cell ``i`` inside the mask becomes the weighted mean of the cells ``j`` inside the mask
around it, with weights ``w_ij = max(0, r - |c_i - c_j|)`` (Bruns & Tortorelli 2001; the density
filter of Andreassen et al. 2011), normalized by the sum of the weights that cell ``i`` received
from cells inside the mask. Cells outside the mask are 0 after filtering. A radius of 0 means no
filter.

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
    reach = int(np.ceil(radius))
    row, col = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    rows, cols, weights = [], [], []
    for d_row in range(-reach, reach + 1):
        for d_col in range(-reach, reach + 1):
            weight = radius - np.hypot(d_row, d_col)
            if weight <= 0:
                continue
            other_row, other_col = row + d_row, col + d_col
            inside = ((other_row >= 0) & (other_row < height)
                      & (other_col >= 0) & (other_col < width))
            inside &= mask
            inside[inside] &= mask[other_row[inside], other_col[inside]]
            rows.append((row * width + col)[inside])
            cols.append((other_row * width + other_col)[inside])
            weights.append(np.full(int(inside.sum()), weight))
    raw = scipy.sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))
    totals = np.asarray(raw.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return scipy.sparse.diags(scale) @ raw
