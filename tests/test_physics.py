"""The physics against independent answers: finite differences (orders 1 and 2), dense solves,
a Gauss-integrated element, brute-force filters, and convexity at p = 1."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from autograd.test_util import check_grads

from solvers import (Compliance, SingularStiffnessError, StiffnessSystem, build_problem,
                     cone_filter_matrix, element_stiffness, get_problem, objective)
from solvers.primitives import (LinearOperatorPair, element_energy, linear_map, sigmoid,
                                sigmoid_shift, solve_free)


@pytest.fixture(autouse=True)
def finite_difference_settings(monkeypatch):
    """Deterministic random directions for ``check_grads`` (it draws from numpy's global RNG),
    and a central-difference step of 1e-5 instead of autograd's 1e-6: a sparse FE solve carries
    a relative rounding error of about 1e-13, which a 1e-6 step turns into ~1e-7 relative noise
    in the numerical derivative, the size of check_grads' tolerance. With 1e-5 the truncation
    error (~1e-10) and the rounding error (~1e-8) are both well below it."""
    import autograd.test_util
    monkeypatch.setattr(autograd.test_util, "EPS", 1e-5)
    np.random.seed(0)


@pytest.fixture(scope="module")
def tiny():
    return build_problem("mbb_beam", 6, 4, 0.5)


@pytest.fixture(scope="module")
def tiny_masked():
    return build_problem("l_shape_0.4", 8, 8, 0.4)


# -- the element --------------------------------------------------------------------------------
def _gauss_q4_stiffness(poisson):
    """Plane-stress Q4 stiffness of the unit square, 2x2 Gauss quadrature, E = 1.

    Nodes (x, y) = (0,0), (1,0), (1,1), (0,1) with y along the row index (downwards), which is
    the node order upper-left, upper-right, lower-right, lower-left of the mesh.
    """
    d = np.array([[1, poisson, 0], [poisson, 1, 0], [0, 0, (1 - poisson) / 2]]) / (1 - poisson ** 2)
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    k = np.zeros((8, 8))
    for gx in (0.5 - 0.5 / np.sqrt(3), 0.5 + 0.5 / np.sqrt(3)):
        for gy in (0.5 - 0.5 / np.sqrt(3), 0.5 + 0.5 / np.sqrt(3)):
            # bilinear shape functions N_i = (1 - |x - x_i|)(1 - |y - y_i|) on the unit square
            dndx = np.array([(1 if cx else -1) * (1 - abs(gy - cy)) for cx, cy in corners])
            dndy = np.array([(1 if cy else -1) * (1 - abs(gx - cx)) for cx, cy in corners])
            b = np.zeros((3, 8))
            b[0, 0::2], b[1, 1::2] = dndx, dndy
            b[2, 0::2], b[2, 1::2] = dndy, dndx
            k += 0.25 * b.T @ d @ b
    return k


@pytest.mark.parametrize("poisson", [0.3, 0.0, 0.45])
def test_element_stiffness_equals_gauss_integration(poisson):
    np.testing.assert_allclose(element_stiffness(poisson), _gauss_q4_stiffness(poisson),
                               rtol=1e-12, atol=1e-14)


# -- the global system --------------------------------------------------------------------------
def _dense_compliance(problem, density, penal, poisson=0.3):
    """Independent dense assembly with explicit loops and numpy.linalg.solve."""
    h, w = problem.height, problem.width
    ke = _gauss_q4_stiffness(poisson)
    n = 2 * (h + 1) * (w + 1)
    k = np.zeros((n, n))
    for col in range(w):
        for row in range(h):
            nodes = [(h + 1) * col + row, (h + 1) * (col + 1) + row,
                     (h + 1) * (col + 1) + row + 1, (h + 1) * col + row + 1]
            dofs = [d for node in nodes for d in (2 * node, 2 * node + 1)]
            young = 1e-9 + density[row, col] ** penal * (1 - 1e-9)
            k[np.ix_(dofs, dofs)] += young * ke
    free = np.setdiff1d(np.arange(n), problem.fixed_dofs)
    f = problem.force_vector
    u = np.linalg.solve(k[np.ix_(free, free)], f[free])
    return f[free] @ u


@pytest.mark.parametrize("name", ["mbb_beam", "cantilever_beam_two_point", "l_shape_0.2"])
def test_uniform_compliance_equals_dense_solve(name):
    height = 8 if name == "l_shape_0.2" else 6
    problem = build_problem(name, 8, height, 0.4)
    physics = Compliance(problem, filter_radius=0)
    x = problem.volume_fraction * problem.mask.astype(float)
    expected = _dense_compliance(problem, x, 3.0)
    assert physics(x) == pytest.approx(expected, rel=1e-10)


def test_random_design_compliance_equals_dense_solve(tiny):
    x = np.random.default_rng(0).uniform(0.05, 1.0, size=(tiny.height, tiny.width))
    physics = Compliance(tiny, penal=3.0, filter_radius=0)
    assert physics(x) == pytest.approx(_dense_compliance(tiny, x, 3.0), rel=1e-10)


def test_dense_matrix_matches_element_sum(tiny):
    system = StiffnessSystem(tiny.height, tiny.width, tiny.fixed_dofs)
    moduli = np.random.default_rng(1).uniform(0.1, 1, tiny.height * tiny.width)
    k = system.dense_matrix(moduli)
    u = np.random.default_rng(2).normal(size=system.num_free)
    # u^T K u equals the sum of element energies E_e u_e^T KE u_e
    assert u @ k @ u == pytest.approx(np.sum(moduli * element_energy(u, u, system)), rel=1e-12)
    np.testing.assert_allclose(k, k.T)


def test_superlu_backend_agrees_with_cholmod(tiny):
    moduli = np.random.default_rng(3).uniform(0.1, 1, tiny.height * tiny.width)
    a = StiffnessSystem(tiny.height, tiny.width, tiny.fixed_dofs, backend="cholmod")
    b = StiffnessSystem(tiny.height, tiny.width, tiny.fixed_dofs, backend="superlu")
    rhs = np.random.default_rng(4).normal(size=a.num_free)
    np.testing.assert_allclose(a.solve(moduli, rhs), b.solve(moduli, rhs), rtol=1e-9)
    np.testing.assert_allclose(a.dense_matrix(moduli) @ a.solve(moduli, rhs), rhs, atol=1e-9)


def test_factorization_is_reused_for_the_same_values(tiny):
    system = StiffnessSystem(tiny.height, tiny.width, tiny.fixed_dofs)
    moduli = np.full(tiny.height * tiny.width, 0.5)
    rhs = np.ones(system.num_free)
    system.solve(moduli, rhs)
    system.solve(moduli.copy(), 2 * rhs)
    assert system.solver.num_factorizations == 1
    moduli[0] = 0.7
    system.solve(moduli, rhs)
    assert system.solver.num_factorizations == 2


def test_gradient_and_hessian_reuse_one_factorization(tiny):
    physics = Compliance(tiny)
    z = np.random.default_rng(5).normal(size=(tiny.height, tiny.width))
    hvp, _ = autograd.make_hvp(lambda x: physics(x, True))(z)
    hvp(np.ones_like(z))
    assert physics.system.solver.num_factorizations == 1


def test_value_and_gradient_cost_one_solve_and_match_two_solves(tiny):
    """The adjoint of the compliance is its displacement (the adjoint right-hand side is the
    load): a value-and-gradient does one factorization and one solve, and gives bit for bit what
    a second, uncached solve gives. The cached answer is a copy: changing it changes nothing."""
    z = np.random.default_rng(7).normal(size=(tiny.height, tiny.width))
    physics = Compliance(tiny)
    value, grad = autograd.value_and_grad(lambda x: physics(x, True))(z)
    solver = physics.system.solver
    assert (solver.num_factorizations, solver.num_solves) == (1, 1)

    uncached = Compliance(tiny)
    uncached.system.solver._cached_rhs = None
    original = uncached.system.solver.solve

    def solve_without_cache(data, rhs):
        uncached.system.solver._cached_rhs = None
        return original(data, rhs)

    uncached.system.solver.solve = solve_without_cache
    value2, grad2 = autograd.value_and_grad(lambda x: uncached(x, True))(z)
    assert uncached.system.solver.num_solves == 2
    assert value == value2 and np.array_equal(grad, grad2)

    moduli = np.full(tiny.height * tiny.width, 0.5)
    first = physics.system.solve(moduli, physics.load)
    first[:] = 0.0
    again = physics.system.solve(moduli, physics.load)
    assert np.any(again != 0.0)
    np.testing.assert_array_equal(again, physics.system.solve(moduli, physics.load.copy()))

# -- the filter ---------------------------------------------------------------------------------
def test_cone_filter_matches_brute_force(tiny_masked):
    mask = tiny_masked.mask
    radius = 2.0
    x = np.random.default_rng(6).uniform(size=mask.shape) * mask
    expected = np.zeros(mask.shape)
    for r in range(mask.shape[0]):
        for c in range(mask.shape[1]):
            if not mask[r, c]:
                continue
            num = den = 0.0
            for rr in range(mask.shape[0]):
                for cc in range(mask.shape[1]):
                    w = max(0.0, radius - np.hypot(r - rr, c - cc))
                    if mask[rr, cc]:
                        num += w * x[rr, cc]
                        den += w
            expected[r, c] = num / den
    filtered = (cone_filter_matrix(mask, radius) @ x.ravel()).reshape(mask.shape)
    np.testing.assert_allclose(filtered, expected, rtol=1e-13)


def test_cone_filter_rows_sum_to_one_inside_mask(tiny_masked):
    f = cone_filter_matrix(tiny_masked.mask, 2.4)
    sums = np.asarray(f.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums[tiny_masked.mask.ravel()], 1.0)
    assert np.all(sums[~tiny_masked.mask.ravel()] == 0)


# -- custom primitives, orders 1 and 2 -----------------------------------------------------------
def test_linear_map_derivatives():
    rng = np.random.default_rng(7)
    op = LinearOperatorPair(rng.normal(size=(5, 4)))
    check_grads(lambda x: anp.sum(anp.sin(linear_map(x, op))), modes=["rev"],
                order=2)(rng.normal(size=4))


def test_solve_derivatives(tiny):
    system = StiffnessSystem(tiny.height, tiny.width, tiny.fixed_dofs)
    rng = np.random.default_rng(8)
    moduli = rng.uniform(0.2, 1.0, tiny.height * tiny.width)
    rhs = rng.normal(size=system.num_free)
    weights = rng.normal(size=system.num_free)
    check_grads(lambda e: anp.dot(weights, solve_free(e, rhs, system)), modes=["rev"],
                order=2)(moduli)
    check_grads(lambda b: anp.dot(weights, solve_free(moduli, b, system)) ** 2,
                modes=["rev"], order=2)(rhs)


def test_sigmoid_shift_derivatives_and_root():
    rng = np.random.default_rng(9)
    z = rng.normal(size=20) * 3
    b = sigmoid_shift(z, 0.3, 0.0)
    assert np.mean(sigmoid(z + b)) == pytest.approx(0.3, abs=1e-15)
    weights = rng.normal(size=20)
    check_grads(lambda z: anp.dot(weights, sigmoid(z + sigmoid_shift(z, 0.3, 0.0))),
                modes=["rev"], order=2)(z)


def test_bisection_tolerance_of_the_paper():
    z = np.linspace(-4, 4, 50)
    b = sigmoid_shift(z, 0.2)  # default bracket width 1e-12
    assert abs(b - sigmoid_shift(z, 0.2, 0.0)) < 1e-12


@pytest.mark.parametrize("volume_constraint", [True, False])
def test_full_chain_second_order(tiny_masked, volume_constraint):
    physics = Compliance(tiny_masked, filter_radius=1.5, root_tolerance=0.0)
    rng = np.random.default_rng(10)
    z = rng.normal(size=(tiny_masked.height, tiny_masked.width))
    x = 0.3 * z if volume_constraint else 0.5 + 0.3 * np.tanh(z)
    check_grads(lambda x: physics(x, volume_constraint), modes=["rev"], order=2)(x)


def test_hvp_against_difference_of_gradients(tiny):
    physics = Compliance(tiny, root_tolerance=0.0)
    rng = np.random.default_rng(11)
    z = rng.normal(size=(tiny.height, tiny.width))
    v = rng.normal(size=z.shape)
    hvp, _ = autograd.make_hvp(lambda x: physics(x, True))(z)
    grad = autograd.grad(lambda x: physics(x, True))
    eps = 1e-5  # central difference: truncation O(eps^2) ~ 1e-10, rounding ~ 1e-16/eps ~ 1e-11
    fd = (grad(z + eps * v) - grad(z - eps * v)) / (2 * eps)
    assert np.linalg.norm(hvp(v) - fd) / np.linalg.norm(fd) < 1e-6


def _dense_hessian(function, x):
    hvp, _ = autograd.make_hvp(function)(x)
    basis = np.eye(x.size)
    return np.stack([np.ravel(hvp(e.reshape(x.shape))) for e in basis])


def test_pixel_physics_is_convex_in_density_at_p1_but_not_at_p3():
    problem = build_problem("cantilever_beam_full", 6, 4, 0.5)
    x = np.random.default_rng(12).uniform(0.1, 0.9, size=(problem.height, problem.width))
    eigenvalues = {}
    for penal in (1.0, 3.0):
        physics = Compliance(problem, penal=penal, filter_radius=1.5)
        hessian = _dense_hessian(lambda d: physics(d, False), x)
        np.testing.assert_allclose(hessian, hessian.T, rtol=1e-8,
                                   atol=1e-10 * np.abs(hessian).max())
        eigenvalues[penal] = np.linalg.eigvalsh(0.5 * (hessian + hessian.T))
    scale1 = np.abs(eigenvalues[1.0]).max()
    assert eigenvalues[1.0].min() >= -1e-10 * scale1          # thesis Appendix B.3
    assert eigenvalues[3.0].min() < -1e-3 * np.abs(eigenvalues[3.0]).max()


def test_volume_constraint_holds(tiny_masked):
    physics = Compliance(tiny_masked)
    z = np.random.default_rng(13).normal(size=(tiny_masked.height, tiny_masked.width)) * 4
    flat = z.ravel()[physics.mask_indices]
    x = sigmoid(flat + sigmoid_shift(flat, tiny_masked.volume_fraction))
    assert np.mean(x) == pytest.approx(tiny_masked.volume_fraction, abs=1e-11)
    density = physics.physical_density(z, True)
    assert np.all(density[~tiny_masked.mask] == 0)


# -- public entry point and bad input ------------------------------------------------------------
def test_objective_entry_point_matches_compliance():
    problem = get_problem("michell_centered_both_32x64_0.12")
    x = np.full((64, 32), 0.12)
    assert objective(problem, x) == pytest.approx(Compliance(problem)(x), rel=1e-14)
    g = autograd.grad(lambda x: objective(problem, x, volume_constraint=True))(np.zeros((64, 32)))
    assert g.shape == (64, 32) and np.all(np.isfinite(g))


def test_bad_designs_raise_clear_errors(tiny):
    physics = Compliance(tiny)
    with pytest.raises(ValueError, match=r"shape \(3, 3\).*\(4, 6\)"):
        physics(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        physics(np.full((4, 6), np.nan), True)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        physics(np.full((4, 6), 2.0))
    with pytest.raises(ValueError, match="penal"):
        Compliance(tiny, penal=-1)
    with pytest.raises(ValueError, match="radius"):
        Compliance(tiny, filter_radius=-1)


def test_supports_that_allow_rigid_motion_are_rejected():
    # only x fixed along the left edge: the body can translate vertically
    with pytest.raises(SingularStiffnessError, match="rigid-body"):
        StiffnessSystem(4, 6, np.arange(0, 10, 2))
    # one node fully fixed: the body can rotate about it
    with pytest.raises(SingularStiffnessError, match="rotation"):
        StiffnessSystem(4, 6, np.array([0, 1]))


def test_non_positive_moduli_are_reported(tiny):
    system = StiffnessSystem(tiny.height, tiny.width, tiny.fixed_dofs)
    moduli = np.full(tiny.height * tiny.width, -1.0)
    with pytest.raises(SingularStiffnessError, match="positive"):
        system.solve(moduli, np.ones(system.num_free))
