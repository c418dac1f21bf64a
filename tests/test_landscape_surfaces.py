"""Interpolations, 2-D surfaces and plane projections against direct evaluation."""
import numpy as np
import pytest

from landscape.surfaces import interpolate, project_onto_plane, surface
from solvers.flat import CallableObjective

RNG = np.random.default_rng(0)
N = 6
A = RNG.standard_normal((N, N))
A = A @ A.T + np.eye(N)
B = RNG.standard_normal(N)


def _loss(theta):
    return 0.5 * theta @ A @ theta - B @ theta + np.sin(theta[0]) * theta[1]


def _no_gradient(theta):
    raise AssertionError("value only")


OBJECTIVE = CallableObjective(_loss, _no_gradient, np.zeros(N))


def test_interpolation_endpoints_and_quadratic_profile():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(N), rng.standard_normal(N)
    calls = []
    result = interpolate(OBJECTIVE, a, b, alphas=np.array([0.0, 0.25, 0.5, 1.0, 1.5]),
                         progress=lambda done, total: calls.append((done, total)))
    assert result.losses[0] == _loss(a) and result.losses[3] == _loss(b)
    assert result.losses[1] == pytest.approx(_loss(0.75 * a + 0.25 * b), rel=1e-14)
    assert result.losses[4] == pytest.approx(_loss(-0.5 * a + 1.5 * b), rel=1e-14)
    assert calls == [(i, 5) for i in range(1, 6)]
    default = interpolate(OBJECTIVE, a, b, alphas=11)
    np.testing.assert_allclose(default.alphas, np.linspace(0, 1, 11))


def test_surface_centre_orientation_and_progress():
    rng = np.random.default_rng(2)
    center, d1, d2 = rng.standard_normal((3, N))
    coords1, coords2 = np.linspace(-1, 2, 4), np.linspace(-0.5, 0.5, 3)
    calls = []
    result = surface(OBJECTIVE, center, d1, d2, grid=(coords1, coords2),
                     progress=lambda done, total: calls.append(done))
    assert result.losses.shape == (4, 3)
    assert result.losses[1, 1] != result.losses[1, 0]
    for i, a in enumerate(coords1):
        for j, b in enumerate(coords2):
            assert result.losses[i, j] == pytest.approx(_loss(center + a * d1 + b * d2), rel=1e-14)
    assert calls == list(range(1, 13))
    odd = surface(OBJECTIVE, center, d1, d2, grid=5, extent=(-2, 2))
    assert odd.losses[2, 2] == _loss(center)                      # centre of an odd grid
    np.testing.assert_allclose(odd.coords1, np.linspace(-2, 2, 5))


def test_projection_of_in_plane_and_off_plane_points():
    rng = np.random.default_rng(3)
    center = rng.standard_normal(N)
    d1 = rng.standard_normal(N)
    d2 = d1 + 0.3 * rng.standard_normal(N)                         # not orthogonal
    normal = np.linalg.svd(np.column_stack([d1, d2]))[0][:, 2]       # unit, orthogonal to both
    points = np.array([center + 0.7 * d1 - 1.3 * d2,
                       center + 2.0 * d1 + 0.5 * d2 + 0.4 * normal,
                       center])
    result = project_onto_plane(points, center, d1, d2)
    np.testing.assert_allclose(result.coords, [[0.7, -1.3], [2.0, 0.5], [0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(result.distances, [0.0, 0.4, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="linearly dependent"):
        project_onto_plane(points, center, d1, 2 * d1)


def test_shape_errors_are_explained():
    with pytest.raises(ValueError, match="theta_b must have shape"):
        interpolate(OBJECTIVE, np.zeros(N), np.zeros(N + 1), alphas=3)
    with pytest.raises(ValueError, match="grid"):
        surface(OBJECTIVE, np.zeros(N), np.ones(N), np.ones(N), grid=(np.zeros(2),))
