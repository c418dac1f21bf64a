"""The cone filter's stencil is clamped to the grid (issue 11, item 6).

Independent answers: the filter built the unclamped way (every offset of the ``(2 ceil(r) + 1)^2``
stencil tested against the grid, as before the clamp), and the dense weights
``max(0, r - |c_i - c_j|)`` between every pair of cells, normalized by numpy.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse

from solvers.filters import cone_filter_matrix


def _unclamped(mask: np.ndarray, radius: float) -> scipy.sparse.csr_matrix:
    """The filter with the full stencil and whole-grid masks (the implementation before)."""
    height, width = mask.shape
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
                      & (other_col >= 0) & (other_col < width)) & mask
            inside[inside] &= mask[other_row[inside], other_col[inside]]
            rows.append((row * width + col)[inside])
            cols.append((other_row * width + other_col)[inside])
            weights.append(np.full(int(inside.sum()), weight))
    size = height * width
    raw = scipy.sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(size, size))
    totals = np.asarray(raw.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return scipy.sparse.diags(scale) @ raw


def _dense(mask: np.ndarray, radius: float) -> np.ndarray:
    height, width = mask.shape
    row, col = np.divmod(np.arange(height * width), width)
    distance = np.hypot(row[:, None] - row[None, :], col[:, None] - col[None, :])
    inside = mask.ravel()
    weights = np.maximum(0.0, radius - distance) * inside[:, None] * inside[None, :]
    totals = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)


def _masks() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    holes = rng.random((7, 11)) > 0.2
    return [np.ones((6, 9), dtype=bool), holes, np.ones((1, 5), dtype=bool),
            np.ones((4, 1), dtype=bool)]


@pytest.mark.parametrize("radius", [0.5, 1.0, 1.5, 2.0, 2.7, 4.0, 12.0])
def test_clamped_stencil_equals_the_unclamped_one(radius):
    for mask in _masks():
        clamped = cone_filter_matrix(mask, radius).toarray()
        reference = _unclamped(mask, radius).toarray()
        np.testing.assert_array_equal(clamped, reference)
        np.testing.assert_allclose(clamped, _dense(mask, radius), rtol=1e-13, atol=1e-15)


def test_a_huge_radius_is_as_fast_as_one_the_size_of_the_grid():
    mask = np.ones((8, 16), dtype=bool)
    mask[3, 4:9] = False
    start = time.perf_counter()
    huge = cone_filter_matrix(mask, 1e6)
    seconds = time.perf_counter() - start
    # unclamped: (2e6 + 1)^2 = 4e12 offsets, which never finishes; clamped: 15 x 31 offsets
    assert seconds < 2.0, seconds
    np.testing.assert_allclose(huge.toarray(), _dense(mask, 1e6), rtol=1e-10, atol=1e-16)
    # every cell in the mask reaches every other: rows are nearly uniform over the mask
    inside = mask.ravel()
    row = huge.toarray()[0]
    assert np.count_nonzero(row) == inside.sum()
    np.testing.assert_allclose(row[inside], 1.0 / inside.sum(), rtol=1e-4)


def test_huge_radius_in_the_objective_terminates():
    from solvers import as_objective
    from solvers.models import PixelModel
    from solvers.problems import build_problem

    problem = build_problem("mbb_beam", 16, 8, 0.5)
    start = time.perf_counter()
    objective = as_objective(PixelModel(problem), filter_radius=1e6)
    value = objective.value(objective.initial())
    assert time.perf_counter() - start < 10.0
    assert np.isfinite(value) and value > 0
