"""HessianOperator and the compact L-BFGS matrices against independent answers."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.optimize

from landscape.operators import HessianOperator, LBFGSMatrix, dense_matrix
from solvers.flat import CallableObjective

COEFFICIENTS = np.array([0.3, -0.5, 0.7, 0.2])


def _fun(x):
    return (anp.sum(anp.exp(COEFFICIENTS * x)) + (x[0] * x[1] - 1.0) ** 2
            + anp.sin(x[1]) * x[2] ** 2 + x[2] * x[3] ** 3)


def _grad(x):
    e = COEFFICIENTS * np.exp(COEFFICIENTS * x)
    return np.array([
        e[0] + 2 * (x[0] * x[1] - 1) * x[1],
        e[1] + 2 * (x[0] * x[1] - 1) * x[0] + np.cos(x[1]) * x[2] ** 2,
        e[2] + 2 * np.sin(x[1]) * x[2] + x[3] ** 3,
        e[3] + 3 * x[2] * x[3] ** 2,
    ])


def _hessian(x):
    """Hand-derived Hessian of ``_fun``."""
    e2 = COEFFICIENTS ** 2 * np.exp(COEFFICIENTS * x)
    h = np.diag(e2)
    h[0, 0] += 2 * x[1] ** 2
    h[0, 1] = h[1, 0] = 4 * x[0] * x[1] - 2
    h[1, 1] += 2 * x[0] ** 2 - np.sin(x[1]) * x[2] ** 2
    h[1, 2] = h[2, 1] = 2 * np.cos(x[1]) * x[2]
    h[2, 2] += 2 * np.sin(x[1])
    h[2, 3] = h[3, 2] = 3 * x[3] ** 2
    h[3, 3] += 6 * x[2] * x[3]
    return h


POINT = np.array([0.4, -1.1, 0.8, 1.3])


def test_hand_derivatives_match_autograd():
    # Guards the reference itself: an error in _grad/_hessian would make the next tests vacuous.
    np.testing.assert_allclose(_grad(POINT), autograd.grad(_fun)(POINT), rtol=1e-13)
    np.testing.assert_allclose(_hessian(POINT), autograd.hessian(_fun)(POINT), rtol=1e-13,
                               atol=1e-14)


def test_hessian_operator_matches_analytic_hessian_with_finite_difference_hvp():
    # CallableObjective without hessp: central differences of the gradient, error O(eps^2) with
    # eps ~ 1e-6 -> about 1e-9 relative, plus rounding ~1e-16/1e-6 = 1e-10.
    objective = CallableObjective(_fun, _grad, POINT)
    op = HessianOperator(objective, POINT)
    dense = dense_matrix(op)
    assert op.num_products == 4
    np.testing.assert_allclose(dense, _hessian(POINT), rtol=1e-6, atol=1e-7)


def test_hessian_operator_with_exact_hvp_is_symmetric_and_counts_products():
    hvp = autograd.hessian_vector_product(_fun)
    objective = CallableObjective(_fun, _grad, np.zeros(4), hessp=hvp)
    op = HessianOperator(objective, POINT)
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal(4), rng.standard_normal(4)
    assert np.isclose(u @ op.matvec(v), v @ op.matvec(u), rtol=1e-12)
    block = rng.standard_normal((4, 3))
    np.testing.assert_allclose(op @ block, _hessian(POINT) @ block, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(op.T.matvec(u), _hessian(POINT) @ u, rtol=1e-12, atol=1e-13)
    assert op.num_products == 2 + 3 + 1
    assert op.dtype == np.float64 and op.shape == (4, 4)


def test_hessian_operator_rejects_wrong_point_shape():
    objective = CallableObjective(_fun, _grad, POINT)
    with pytest.raises(ValueError, match="expected"):
        HessianOperator(objective, np.zeros(3))


# ---------------------------------------------------------------------------------------------
# L-BFGS compact representation


def _random_pairs(p, n, seed):
    """Pairs with s^T y > 0: y_j = A_j s_j for random SPD A_j (different per pair)."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((p, n))
    y = np.empty_like(s)
    for j in range(p):
        factor = rng.standard_normal((n, n))
        y[j] = (factor @ factor.T / n + 0.1 * np.eye(n)) @ s[j]
    return s, y


def _recursive_bfgs(s, y):
    """B_{j+1} = B_j - B s s^T B / s^T B s + y y^T / y^T s, from B_0 = theta I (newest pair)."""
    theta = y[-1] @ y[-1] / (s[-1] @ y[-1])
    b = theta * np.eye(s.shape[1])
    for sj, yj in zip(s, y):
        bs = b @ sj
        b = b - np.outer(bs, bs) / (sj @ bs) + np.outer(yj, yj) / (yj @ sj)
    return b


def _two_loop(s, y, g):
    """Nocedal & Wright Algorithm 7.4 with H0 = gamma I, gamma = s^T y / y^T y (newest)."""
    q = g.copy()
    rho = 1.0 / np.einsum("ij,ij->i", s, y)
    a = np.zeros(len(s))
    for i in reversed(range(len(s))):
        a[i] = rho[i] * (s[i] @ q)
        q -= a[i] * y[i]
    r = (s[-1] @ y[-1]) / (y[-1] @ y[-1]) * q
    for i in range(len(s)):
        beta = rho[i] * (y[i] @ r)
        r += s[i] * (a[i] - beta)
    return r


@pytest.mark.parametrize("p, n", [(1, 5), (4, 8), (7, 12)])
def test_compact_b_equals_recursive_bfgs(p, n):
    s, y = _random_pairs(p, n, seed=p)
    matrix = LBFGSMatrix(s, y)
    reference = _recursive_bfgs(s, y)
    np.testing.assert_allclose(matrix.dense_B(), reference, rtol=1e-9,
                               atol=1e-10 * np.abs(reference).max())


@pytest.mark.parametrize("p, n", [(1, 5), (4, 8), (7, 12)])
def test_compact_h_is_inverse_secant_spd(p, n):
    s, y = _random_pairs(p, n, seed=10 + p)
    matrix = LBFGSMatrix(s, y)
    b, h = matrix.dense_B(), matrix.dense_H()
    np.testing.assert_allclose(h @ b, np.eye(n), atol=1e-9)
    np.testing.assert_allclose(b @ s[-1], y[-1], rtol=1e-10, atol=1e-12)    # secant
    np.testing.assert_allclose(h @ y[-1], s[-1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, b.T, atol=1e-12 * np.abs(b).max())
    np.testing.assert_allclose(h, h.T, atol=1e-12 * np.abs(h).max())
    assert np.linalg.eigvalsh(b).min() > 0
    rng = np.random.default_rng(p)
    v, block = rng.standard_normal(n), rng.standard_normal((n, 3))
    np.testing.assert_allclose(matrix.B.matvec(v), b @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(matrix.H @ block, h @ block, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(matrix.direction(v), -_two_loop(s, y, v), rtol=1e-10,
                               atol=1e-12)


def test_theta_is_from_newest_pair_and_memory_keeps_newest():
    s, y = _random_pairs(6, 7, seed=3)
    matrix = LBFGSMatrix(s, y, memory=3)
    assert matrix.num_pairs == 3
    assert np.isclose(matrix.theta, y[-1] @ y[-1] / (s[-1] @ y[-1]))
    np.testing.assert_allclose(matrix.dense_B(), LBFGSMatrix(s[-3:], y[-3:]).dense_B())
    np.testing.assert_allclose(matrix.dense_B(), _recursive_bfgs(s[-3:], y[-3:]), rtol=1e-9,
                               atol=1e-10)


def test_at_iterate_selects_pairs_available_at_k():
    s, y = _random_pairs(5, 6, seed=4)
    pair_iterations = np.array([1, 2, 4, 5, 7])        # iterate index of each pair's newer end
    at4 = LBFGSMatrix.at_iterate(s, y, pair_iterations, k=4, memory=2)
    np.testing.assert_allclose(at4.dense_B(), LBFGSMatrix(s[1:3], y[1:3]).dense_B())
    at6 = LBFGSMatrix.at_iterate(s, y, pair_iterations, k=6, memory=10)
    np.testing.assert_allclose(at6.dense_B(), LBFGSMatrix(s[:4], y[:4]).dense_B())
    at0 = LBFGSMatrix.at_iterate(s, y, pair_iterations, k=0)
    assert at0.num_pairs == 0
    np.testing.assert_array_equal(at0.dense_B(), np.eye(6))
    np.testing.assert_array_equal(at0.dense_H(), np.eye(6))


def test_rejects_nonpositive_curvature_and_bad_shapes():
    s, y = _random_pairs(3, 4, seed=5)
    y[1] = -s[1]
    with pytest.raises(ValueError, match="s\\^T y <= 0"):
        LBFGSMatrix(s, y)
    with pytest.raises(ValueError, match="same shape"):
        LBFGSMatrix(s, y[:, :3])
    with pytest.raises(ValueError, match="non-decreasing"):
        LBFGSMatrix.at_iterate(s, y, [3, 1, 2], k=2)


def test_direction_reproduces_the_steps_of_scipy_lbfgsb():
    # scipy's L-BFGS-B on a convex quadratic with no bounds: each step is a multiple of
    # -H_k g_k, with H_k built from the newest m pairs of the recorded iterates.
    rng = np.random.default_rng(7)
    n, memory = 30, 4
    factor = rng.standard_normal((n, n))
    a = factor @ factor.T / n + np.diag(np.linspace(0.1, 5, n))
    b = rng.standard_normal(n)
    fun = lambda x: 0.5 * x @ a @ x - b @ x        # noqa: E731
    grad = lambda x: a @ x - b                     # noqa: E731
    iterates = [np.zeros(n)]
    scipy.optimize.minimize(fun, iterates[0], jac=grad, method="L-BFGS-B",
                            callback=lambda x: iterates.append(np.array(x)),
                            options={"maxcor": memory, "maxiter": 12, "gtol": 1e-14,
                                     "ftol": 1e-16})
    x = np.array(iterates)
    g = np.array([grad(point) for point in x])
    s, y = np.diff(x, axis=0), np.diff(g, axis=0)
    assert np.all(np.einsum("ij,ij->i", s, y) > 0)
    pair_iterations = np.arange(1, len(x))
    checked = 0
    for k in range(len(x) - 1):
        matrix = LBFGSMatrix.at_iterate(s, y, pair_iterations, k, memory=memory)
        direction = matrix.direction(g[k])
        cosine = direction @ s[k] / (np.linalg.norm(direction) * np.linalg.norm(s[k]))
        assert cosine > 1 - 1e-8, (k, cosine)
        checked += 1
    assert checked >= 8
