"""Trajectory metrics against closed forms and an independent per-prefix PCA."""
import numpy as np
import pytest

from landscape.directions import pca_directions
from landscape.trajectory import prefix_pca_explained_variance, trajectory_metrics

RNG = np.random.default_rng(0)
N = 12
FACTOR = RNG.standard_normal((N, N))
A = FACTOR @ FACTOR.T / N + np.eye(N)


def _quadratic(theta):
    return 0.5 * theta @ A @ theta


def test_straight_line_to_the_minimum_of_a_quadratic():
    # theta_i = s_i theta_0 with s decreasing from 1 to 0 (the minimizer) at uneven steps:
    #   g_i = s_i A theta_0, L_i = s_i^2 L_0,
    #   distance from start (1 - s_i)|theta_0|, gradient norm s_i |A theta_0|,
    #   successive gradient and step cosines 1, <g_i, theta_T - theta_i> = -2 L_i,
    #   projection on the unit direction to the final point -s_i theta_0^T A theta_0 / |theta_0|,
    #   star-convexity residual L_i - 0 - 2 L_i = -L_i, PCA of collinear points: ratios (1, 0).
    rng = np.random.default_rng(1)
    theta0 = rng.standard_normal(N)
    s = np.array([1.0, 0.9, 0.75, 0.5, 0.2, 0.05, 0.0])
    iterates = s[:, None] * theta0
    losses = np.array([_quadratic(x) for x in iterates])
    gradients = iterates @ A
    metrics = trajectory_metrics(iterates, losses, gradients)
    norm0, curvature = np.linalg.norm(theta0), theta0 @ A @ theta0
    np.testing.assert_allclose(metrics.distance_from_start, (1 - s) * norm0, atol=1e-14)
    np.testing.assert_allclose(metrics.distance_to_final, s * norm0, atol=1e-14)
    np.testing.assert_allclose(metrics.gradient_norm, s * np.linalg.norm(A @ theta0), atol=1e-14)
    np.testing.assert_allclose(metrics.step_length[1:], -np.diff(s) * norm0, rtol=1e-12)
    np.testing.assert_allclose(metrics.gradient_cosine[1:-1], 1.0, rtol=1e-12)
    assert np.isnan(metrics.gradient_cosine[0]) and np.isnan(metrics.gradient_cosine[-1])
    np.testing.assert_allclose(metrics.step_cosine[2:], 1.0, rtol=1e-12)
    assert np.all(np.isnan(metrics.step_cosine[:2]))
    np.testing.assert_allclose(metrics.gradient_dot_to_final, -2 * losses, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(metrics.gradient_projection_to_final[:-1],
                               -s[:-1] * curvature / norm0, rtol=1e-12)
    assert np.isnan(metrics.gradient_projection_to_final[-1])
    np.testing.assert_allclose(metrics.star_convexity_residual, -losses, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(metrics.pca_explained_variance[3:], [[1.0, 0.0]] * 4, atol=1e-10)
    assert np.all(np.isnan(metrics.pca_explained_variance[:2]))


def test_star_convexity_residual_with_explicit_final_point():
    rng = np.random.default_rng(2)
    iterates = rng.standard_normal((5, N))
    gradients = rng.standard_normal((5, N))
    losses = rng.standard_normal(5)
    final, final_loss = rng.standard_normal(N), 0.3
    metrics = trajectory_metrics(iterates, losses, gradients, final=final, final_loss=final_loss,
                                 pca_every=0)
    expected = [losses[i] - final_loss + (final - iterates[i]) @ gradients[i] for i in range(5)]
    np.testing.assert_allclose(metrics.star_convexity_residual, expected, rtol=1e-12)
    cosine = gradients[2] @ gradients[3] / np.linalg.norm(gradients[2]) / np.linalg.norm(
        gradients[3])
    assert metrics.gradient_cosine[3] == pytest.approx(cosine, rel=1e-12)
    steps = np.diff(iterates, axis=0)
    cosine = steps[0] @ steps[1] / np.linalg.norm(steps[0]) / np.linalg.norm(steps[1])
    assert metrics.step_cosine[2] == pytest.approx(cosine, rel=1e-12)
    assert np.all(np.isnan(metrics.pca_explained_variance))
    with pytest.raises(ValueError, match="both final and final_loss"):
        trajectory_metrics(iterates, losses, gradients, final=final)


@pytest.mark.parametrize("center", ["mean", "final"])
def test_prefix_pca_matches_svd_of_each_prefix(center):
    # A curving random walk far from the origin (tests the Gram matrix's anchoring).
    rng = np.random.default_rng(3)
    steps = rng.standard_normal((15, N)) * np.linspace(0.1, 3.0, 15)[:, None]
    iterates = 100.0 + np.cumsum(steps, axis=0)
    ratios = prefix_pca_explained_variance(iterates, center=center)
    for i in range(2, 15):
        expected = pca_directions(iterates[:i + 1], center=center).explained_variance_ratio
        np.testing.assert_allclose(ratios[i], expected, rtol=1e-8, atol=1e-12,
                                   err_msg=f"prefix {i}")
    assert ratios[-1].sum() < 0.999            # a 12-D walk is not planar
    sparse = prefix_pca_explained_variance(iterates, center=center, every=5)
    np.testing.assert_allclose(sparse[[5, 10, 14]], ratios[[5, 10, 14]])
    assert np.all(np.isnan(sparse[[3, 4, 6, 13]]))
