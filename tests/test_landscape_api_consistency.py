"""The landscape API refuses what the command line refuses (issue 11, item 8): degenerate planes,
1-point grids, lines between identical points, empty PCA input, L-BFGS matrices without a size,
and bad root tolerances. Each error is one clear ValueError raised before any evaluation."""
from __future__ import annotations

import numpy as np
import pytest

import landscape
from solvers.flat import CallableObjective

N = 5


def _never(theta):
    raise AssertionError("the objective must not be evaluated for a refused request")


OBJECTIVE = CallableObjective(_never, _never, np.zeros(N))
RNG = np.random.default_rng(0)
CENTER, D1, D2 = RNG.standard_normal((3, N))


@pytest.mark.parametrize("d1, d2, words", [
    (np.zeros(N), D2, "d1 is the zero vector"),
    (D1, np.zeros(N), "d2 is the zero vector"),
    (D1, -3.0 * D1, "parallel"),
    (D1, D1 * (1 + 1e-15), "parallel"),
    (D1, np.full(N, np.nan), "NaN"),
])
def test_surface_refuses_directions_that_span_no_plane(d1, d2, words):
    with pytest.raises(ValueError, match=words):
        landscape.surface(OBJECTIVE, CENTER, d1, d2, grid=3)
    with pytest.raises(ValueError, match=words):
        landscape.project_onto_plane(CENTER[None, :], CENTER, d1, d2)


@pytest.mark.parametrize("grid", [1, 0, (np.zeros(1), np.zeros(3)), (np.zeros(3), np.zeros(0))])
def test_surface_refuses_fewer_than_two_points_per_axis(grid):
    with pytest.raises(ValueError, match="at least 2|>= 2"):
        landscape.surface(OBJECTIVE, CENTER, D1, D2, grid=grid)


def test_surface_refuses_an_empty_or_infinite_extent():
    for extent in ((1.0, 1.0), (1.0, -1.0), (-np.inf, 1.0), (0.0, np.nan)):
        with pytest.raises(ValueError, match="extent"):
            landscape.surface(OBJECTIVE, CENTER, D1, D2, grid=3, extent=extent)


def test_interpolation_refuses_identical_endpoints_and_single_points():
    with pytest.raises(ValueError, match="same point"):
        landscape.interpolate(OBJECTIVE, CENTER, CENTER.copy(), alphas=5)
    for alphas in (1, np.array([0.5]), np.array([0.0, np.inf])):
        with pytest.raises(ValueError, match="at least 2|finite"):
            landscape.interpolate(OBJECTIVE, CENTER, D1, alphas=alphas)


@pytest.mark.parametrize("points", [np.zeros((0,)), np.zeros((0, 4)), np.zeros((3, 0)), []])
def test_pca_of_nothing_is_a_clear_value_error(points):
    with pytest.raises(ValueError, match="empty.*at least 3 points"):
        landscape.pca_directions(points)


def test_lbfgs_matrix_without_pairs():
    # (0, n): the documented identity of L-BFGS-B's first step, every product exact
    empty = landscape.LBFGSMatrix(np.zeros((0, N)), np.zeros((0, N)))
    assert (empty.num_pairs, empty.size, empty.theta) == (0, N, 1.0)
    np.testing.assert_array_equal(empty.dense_B(), np.eye(N))
    np.testing.assert_array_equal(empty.dense_H(), np.eye(N))
    np.testing.assert_array_equal(empty.direction(D1), -D1)
    np.testing.assert_array_equal(empty.B.matmat(np.eye(N)[:, :2]), np.eye(N)[:, :2])
    low, high = landscape.slq(empty.B, num_runs=2, num_steps=3, seed=0).extremes()
    assert low == pytest.approx(1.0, rel=1e-14) and high == pytest.approx(1.0, rel=1e-14)
    # no pairs and no size: refused at construction, not at the first product
    for nothing in (np.zeros(0), []):
        with pytest.raises(ValueError, match=r"shape \(0, n\)"):
            landscape.LBFGSMatrix(nothing, nothing)


@pytest.mark.parametrize("tolerance", [-1.0, np.nan, np.inf])
def test_as_objective_refuses_a_bad_root_tolerance(tolerance):
    from solvers import as_objective
    from solvers.models import PixelModel
    from solvers.problems import build_problem

    model = PixelModel(build_problem("mbb_beam", 8, 4, 0.5))
    with pytest.raises(ValueError, match="root_tolerance must be a finite number >= 0"):
        as_objective(model, root_tolerance=tolerance)
    assert as_objective(model, root_tolerance=0.0).physics.root_tolerance == 0.0
