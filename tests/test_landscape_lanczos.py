"""Lanczos and top eigenpairs against dense eigensolvers."""
import numpy as np
import pytest
from scipy.sparse.linalg import aslinearoperator

from landscape.lanczos import lanczos, top_eigenvalues


def _random_symmetric(n, seed, spectrum=None):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    if spectrum is None:
        spectrum = rng.uniform(-2.0, 3.0, n)
    return (q * spectrum) @ q.T, np.sort(spectrum)


@pytest.mark.parametrize("n", [1, 7, 40])
def test_full_lanczos_recovers_eigenvalues_and_matrix(n):
    a, exact = _random_symmetric(n, seed=n)
    result = lanczos(aslinearoperator(a), steps=n, seed=0, keep_basis=True)
    assert result.steps == n and not result.invariant_subspace
    values, _ = result.ritz()
    np.testing.assert_allclose(values, np.linalg.eigvalsh(a), atol=1e-12 * np.abs(exact).max())
    q, t = result.basis, result.tridiagonal()
    np.testing.assert_allclose(q.T @ q, np.eye(n), atol=1e-13)
    np.testing.assert_allclose(q @ t @ q.T, a, atol=1e-12)


def test_partial_lanczos_satisfies_the_three_term_relation():
    a, _ = _random_symmetric(50, seed=1)
    start = np.random.default_rng(5).standard_normal(50)
    result = lanczos(aslinearoperator(a), steps=12, start=start, keep_basis=True)
    q, t = result.basis, result.tridiagonal()
    np.testing.assert_allclose(q[:, 0], start / np.linalg.norm(start), atol=1e-15)
    remainder = a @ q - q @ t                          # = beta_m q_{m+1} e_m^T
    np.testing.assert_allclose(remainder[:, :-1], 0, atol=1e-12)
    assert np.isclose(np.linalg.norm(remainder[:, -1]), result.residual_norm, rtol=1e-10)
    np.testing.assert_allclose(q.T @ remainder[:, -1], 0, atol=1e-12)


def test_breakdown_on_invariant_subspace_stops_early_with_exact_eigenvalues():
    spectrum = np.repeat([-1.0, 0.5, 4.0], [5, 7, 8])
    a, _ = _random_symmetric(20, seed=2, spectrum=spectrum)
    result = lanczos(aslinearoperator(a), steps=15, seed=3)
    assert result.invariant_subspace
    assert result.steps == 3 and result.betas.shape == (2,)
    np.testing.assert_allclose(result.ritz()[0], [-1.0, 0.5, 4.0], atol=1e-12)


def test_ghost_eigenvalues_appear_without_reorthogonalization_only():
    # Two well-separated outliers above a bulk in [0, 1]. After they converge, plain Lanczos loses
    # orthogonality and produces repeated copies of them (Paige 1971); full reorthogonalization
    # keeps exactly one copy of each.
    rng = np.random.default_rng(0)
    n = 200
    eigenvalues = np.concatenate([rng.uniform(0.0, 1.0, n - 2), [10.0, 20.0]])
    op = aslinearoperator(np.diag(eigenvalues))
    plain = lanczos(op, steps=120, seed=1, reorthogonalize=False)
    clean = lanczos(op, steps=120, seed=1, reorthogonalize=True)
    for outlier in (10.0, 20.0):
        assert np.sum(np.abs(plain.ritz()[0] - outlier) < 1e-6) >= 3
        assert np.sum(np.abs(clean.ritz()[0] - outlier) < 1e-6) == 1
    assert np.sum(clean.ritz()[0] > 1.0 + 1e-8) == 2


def test_lanczos_input_checks_and_reproducibility():
    a, _ = _random_symmetric(6, seed=4)
    op = aslinearoperator(a)
    with pytest.raises(ValueError, match="at most n"):
        lanczos(op, steps=7, seed=0)
    with pytest.raises(ValueError, match="seed"):
        lanczos(op, steps=3)
    with pytest.raises(ValueError, match="nonzero"):
        lanczos(op, steps=3, start=np.zeros(6))
    with pytest.raises(TypeError, match="steps must be an integer, got 2.5"):
        lanczos(op, steps=2.5, seed=0)
    # A product that is not finite (a diverged point) names itself instead of failing later in
    # the tridiagonal eigensolver (here the very first product has an inf entry).
    poisoned = aslinearoperator(np.diag([1.0, np.inf, 1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="Lanczos vector 1 is not finite"):
        lanczos(poisoned, steps=3, seed=0)
    first, second = lanczos(op, 4, seed=9), lanczos(op, 4, seed=9)
    np.testing.assert_array_equal(first.alphas, second.alphas)
    # Without reorthogonalization more than n steps are allowed (and nothing is stored).
    assert lanczos(op, 9, seed=0, reorthogonalize=False, breakdown_tol=0).basis is None


@pytest.mark.parametrize("which", ["largest", "smallest", "magnitude"])
def test_top_eigenvalues_match_eigh(which):
    a, _ = _random_symmetric(60, seed=6)
    values, vectors = np.linalg.eigh(a)
    if which == "largest":
        order = np.argsort(values)[::-1]
    elif which == "smallest":
        order = np.argsort(values)
    else:
        order = np.argsort(np.abs(values))[::-1]
    result = top_eigenvalues(aslinearoperator(a), k=3, seed=0, which=which)
    np.testing.assert_allclose(result.eigenvalues, values[order[:3]], atol=1e-10)
    overlaps = np.abs(np.sum(result.eigenvectors * vectors[:, order[:3]], axis=0))
    np.testing.assert_allclose(overlaps, 1.0, atol=1e-8)
    assert np.all(result.residuals < 1e-8)
    assert result.eigenvectors.shape == (60, 3)
    assert result.num_products >= 3


def test_top_eigenvalues_rejects_bad_k():
    a, _ = _random_symmetric(5, seed=7)
    with pytest.raises(ValueError, match="k must satisfy"):
        top_eigenvalues(aslinearoperator(a), k=5, seed=0)


def test_basis_stays_orthonormal_with_outliers():
    # Converging outliers are where a single Gram-Schmidt pass would lose orthogonality; the
    # adaptive second pass must keep Q^T Q = I to working precision up to m = n.
    rng = np.random.default_rng(0)
    n = 300
    eigenvalues = np.concatenate([rng.uniform(0, 1, n - 3), [10.0, 20.0, 1e4]])
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    op = aslinearoperator((q * eigenvalues) @ q.T)
    for steps in (50, 300):
        basis = lanczos(op, steps, seed=1, keep_basis=True).basis
        assert np.abs(basis.T @ basis - np.eye(basis.shape[1])).max() < 1e-13
