"""Stochastic Lanczos Quadrature against exact eigen-decompositions and moments."""
import numpy as np
import pytest
from scipy.sparse.linalg import aslinearoperator

from landscape.lanczos import lanczos
from landscape.spectrum import slq, spectrum_from_lanczos


def _random_symmetric(n, seed, spectrum=None):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    if spectrum is None:
        spectrum = rng.uniform(-1.0, 2.0, n)
    return (q * spectrum) @ q.T


def _gaussian(x, sigma):
    return np.exp(-0.5 * (x / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


@pytest.mark.parametrize("reorthogonalize", [True, False])
def test_quadrature_moments_are_exact_below_2m(reorthogonalize):
    n, m = 80, 8
    a = _random_symmetric(n, seed=0)
    v = np.random.default_rng(1).standard_normal(n)
    v /= np.linalg.norm(v)
    run = lanczos(aslinearoperator(a), m, start=v, reorthogonalize=reorthogonalize)
    spectrum = spectrum_from_lanczos([run], n)
    moments = spectrum.moments(2 * m)[0]
    exact, power = [], v.copy()
    for _ in range(2 * m + 1):
        exact.append(v @ power)
        power = a @ power
    exact = np.array(exact)
    scale = 2.0 ** np.arange(2 * m + 1)                  # |A| <= 2
    assert np.all(np.abs(moments[:2 * m] - exact[:2 * m]) <= 1e-11 * scale[:2 * m])
    # ... and no longer exact at order 2m (Gauss quadrature with m nodes).
    assert abs(moments[2 * m] - exact[2 * m]) > 1e-8 * scale[2 * m]


def test_weights_sum_to_one_and_nodes_are_ritz_values():
    a = _random_symmetric(60, seed=2)
    spectrum = slq(aslinearoperator(a), num_runs=3, num_steps=15, seed=4)
    assert spectrum.nodes.shape == spectrum.weights.shape == (3, 15)
    np.testing.assert_allclose(spectrum.weights.sum(axis=1), 1.0, atol=1e-14)
    assert np.all(spectrum.weights >= 0)
    low, high = spectrum.extremes()
    exact = np.linalg.eigvalsh(a)
    assert exact[0] - 1e-12 <= low and high <= exact[-1] + 1e-12       # Ritz values interlace


def test_density_integrates_to_one_and_sigma_is_standard_deviation():
    a = _random_symmetric(50, seed=3)
    spectrum = slq(aslinearoperator(a), num_runs=3, num_steps=20, seed=0)
    grid = np.linspace(-3, 4, 20001)
    assert np.trapezoid(spectrum.density(grid, sigma=0.05), grid) == pytest.approx(1.0, abs=1e-9)
    # One node with weight 1 (A = c I breaks down after one step): peak 1/(sigma sqrt(2 pi)), and
    # e^{-1/2} of that one standard deviation away.
    single = slq(aslinearoperator(1.5 * np.eye(10)), num_runs=2, num_steps=5, seed=0)
    assert np.all(single.steps_per_run == 1)
    sigma = 1e-2
    values = single.density(np.array([1.5, 1.5 + sigma]), sigma)
    np.testing.assert_allclose(values, [1 / (sigma * np.sqrt(2 * np.pi)),
                                        np.exp(-0.5) / (sigma * np.sqrt(2 * np.pi))], rtol=1e-12)


def test_density_with_m_equal_n_is_the_kernel_density_of_exact_eigenvalues():
    # With m = n the quadrature nodes are the eigenvalues lambda_k and the weights are (u_k^T v)^2,
    # so the density is sum_k (u_k^T v)^2 g(t - lambda_k), computed here from numpy's eigh.
    n = 30
    a = _random_symmetric(n, seed=5)
    starts = np.random.default_rng(6).choice([-1.0, 1.0], size=(2, n)) / np.sqrt(n)
    spectrum = slq(aslinearoperator(a), num_runs=2, num_steps=n, seed=0, start_vectors=starts)
    values, vectors = np.linalg.eigh(a)
    grid = np.linspace(-1.5, 2.5, 400)
    sigma = 0.03
    expected = np.zeros_like(grid)
    for v in starts:
        weights = (vectors.T @ v) ** 2
        expected += _gaussian(grid[:, None] - values[None, :], sigma) @ weights
    expected /= 2
    np.testing.assert_allclose(spectrum.density(grid, sigma), expected, rtol=1e-8, atol=1e-10)
    # ... whose average over many start vectors is the uniform-weight kernel density.
    many = slq(aslinearoperator(a), num_runs=200, num_steps=n, seed=7)
    uniform = _gaussian(grid[:, None] - values[None, :], sigma).mean(axis=1)
    assert np.abs(many.density(grid, sigma) - uniform).max() < 0.1 * uniform.max()


def test_trace_and_frobenius_exact_for_diagonal_matrix_with_rademacher_starts():
    # For diagonal A and v = z / sqrt(n) with z_i = +-1: n v^T A v = tr A, n v^T A^2 v = |A|_F^2.
    diagonal = np.random.default_rng(8).uniform(-1, 3, 40)
    spectrum = slq(aslinearoperator(np.diag(diagonal)), num_runs=3, num_steps=4, seed=1)
    assert spectrum.trace() == pytest.approx(diagonal.sum(), rel=1e-12)
    assert spectrum.frobenius_norm() == pytest.approx(np.linalg.norm(diagonal), rel=1e-12)
    assert spectrum.trace_function(np.exp) != pytest.approx(np.exp(diagonal).sum(), rel=1e-6)


def test_slq_validates_inputs():
    op = aslinearoperator(np.eye(4))
    with pytest.raises(ValueError, match="num_runs"):
        slq(op, num_runs=0, num_steps=2, seed=0)
    with pytest.raises(ValueError, match="start_vectors"):
        slq(op, num_runs=2, num_steps=2, seed=0, start_vectors=np.ones((3, 4)))
    spectrum = slq(op, num_runs=1, num_steps=2, seed=0)
    with pytest.raises(ValueError, match="standard deviation"):
        spectrum.density(np.zeros(3), sigma=0.0)
