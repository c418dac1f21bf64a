"""Hutchinson trace, Frobenius norm and curvature metrics against matrices with known spectra."""
import numpy as np
import pytest
from scipy.sparse.linalg import aslinearoperator

from landscape.estimators import (curvature_along, frobenius_norm, frobenius_norm_squared,
                                  gradient_hessian_overlap, hutchinson_trace,
                                  trace_to_frobenius_ratio)


def _matrix_with_spectrum(spectrum, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((len(spectrum), len(spectrum))))
    return (q * spectrum) @ q.T, q


SPECTRUM = np.concatenate([np.linspace(-0.5, 1.0, 57), [4.0, 7.0, 12.0]])
MATRIX, EIGENVECTORS = _matrix_with_spectrum(SPECTRUM, seed=0)
OP = aslinearoperator(MATRIX)


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
@pytest.mark.parametrize("seed", [0, 2, 3])
def test_hutchinson_trace_within_three_standard_errors(distribution, seed):
    estimate = hutchinson_trace(OP, num_samples=200, seed=seed, distribution=distribution)
    assert abs(estimate.value - SPECTRUM.sum()) < 3 * estimate.standard_error
    assert estimate.samples.shape == (200,)
    # The error is a real standard error: Var(v^T A v) = 2 (|A|_F^2 - sum A_ii^2) for Rademacher,
    # 2 |A|_F^2 for Gaussian probes.
    off_diagonal = np.sum(np.diag(MATRIX) ** 2) if distribution == "rademacher" else 0.0
    exact_error = np.sqrt(2 * (np.sum(SPECTRUM ** 2) - off_diagonal) / 200)
    assert estimate.standard_error == pytest.approx(exact_error, rel=0.3)


def test_hutchinson_standard_error_is_calibrated():
    # A single 3-sigma check fails for ~0.3% of seeds (seed 1 above is one): check calibration
    # over many seeds instead of trusting a handful.
    z = np.array([(e.value - SPECTRUM.sum()) / e.standard_error
                  for e in (hutchinson_trace(OP, 100, seed=s) for s in range(200))])
    assert abs(z.mean()) < 0.25 and 0.8 < z.std() < 1.2
    assert np.mean(np.abs(z) > 3) < 0.02


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frobenius_norm_within_three_standard_errors(seed):
    exact_squared = np.sum(SPECTRUM ** 2)
    squared = frobenius_norm_squared(OP, num_samples=200, seed=seed)
    assert abs(squared.value - exact_squared) < 3 * squared.standard_error
    norm = frobenius_norm(OP, num_samples=200, seed=seed)
    assert norm.value == pytest.approx(np.sqrt(squared.value), rel=1e-14)
    assert abs(norm.value - np.sqrt(exact_squared)) < 3 * norm.standard_error
    # Gaussian probes: Var |A v|^2 = 2 tr A^4.
    assert squared.standard_error == pytest.approx(np.sqrt(2 * np.sum(SPECTRUM ** 4) / 200),
                                                   rel=0.3)


def test_trace_to_frobenius_ratio_within_three_standard_errors():
    exact = SPECTRUM.sum() / np.linalg.norm(SPECTRUM)
    for seed in range(3):
        estimate = trace_to_frobenius_ratio(OP, num_samples=300, seed=seed)
        assert abs(estimate.value - exact) < 3 * estimate.standard_error
        assert estimate.samples.shape == (300, 2)


def test_estimators_are_reproducible_and_validate():
    first = hutchinson_trace(OP, 10, seed=5)
    np.testing.assert_array_equal(first.samples, hutchinson_trace(OP, 10, seed=5).samples)
    with pytest.raises(ValueError, match="distribution"):
        hutchinson_trace(OP, 10, seed=0, distribution="uniform")
    with pytest.raises(ValueError, match="num_samples"):
        frobenius_norm(OP, 1, seed=0)
    with pytest.raises(TypeError, match="seed"):
        hutchinson_trace(OP, 10, seed=None)


def test_curvature_along_is_a_scale_free_rayleigh_quotient():
    top = EIGENVECTORS[:, -1]
    assert curvature_along(OP, 3.7 * top) == pytest.approx(12.0, rel=1e-12)
    d = np.random.default_rng(3).standard_normal(60)
    assert curvature_along(OP, d) == pytest.approx(d @ MATRIX @ d / (d @ d), rel=1e-12)
    assert curvature_along(OP, 10 * d) == pytest.approx(curvature_along(OP, d), rel=1e-12)
    with pytest.raises(ValueError, match="zero"):
        curvature_along(OP, np.zeros(60))


def test_gradient_hessian_overlap():
    assert gradient_hessian_overlap(OP, EIGENVECTORS[:, -1]) == pytest.approx(1.0, abs=1e-12)
    assert gradient_hessian_overlap(OP, EIGENVECTORS[:, 0]) == pytest.approx(-1.0, abs=1e-12)
    g = np.random.default_rng(4).standard_normal(60)
    hg = MATRIX @ g
    assert gradient_hessian_overlap(OP, g) == pytest.approx(
        g @ hg / (np.linalg.norm(g) * np.linalg.norm(hg)), rel=1e-12)
    singular = aslinearoperator(np.diag([1.0, 0.0]))
    assert np.isnan(gradient_hessian_overlap(singular, np.array([0.0, 1.0])))
