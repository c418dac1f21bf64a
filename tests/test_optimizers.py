"""Tests of solvers/optimizers.py and solvers/optim/.

Independent answers: scipy.optimize.minimize (L-BFGS-B) run directly, its final memory
(``hess_inv.sk``), closed forms (gradient descent on a quadratic), a hand-written Adam loop, a dense
BFGS inverse recursion, the strong Wolfe conditions, and the analytic KKT point of a separable
convex "compliance" with a linear volume constraint.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.optimize as so

from solvers.flat import CallableObjective, ParameterSpec
from solvers.optimizers import METHODS, optimize, tuned_learning_rate, two_loop_product
from solvers.result import OptimizationResult, RecordOptions

EPS = np.finfo(np.float64).eps
ALL_ITERATES = RecordOptions(iterates_every=1)


# -- objectives ------------------------------------------------------------------------------
def _rosenbrock(n: int = 5) -> CallableObjective:
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.1, -0.3, 0.4][:n])
    return CallableObjective(so.rosen, so.rosen_der, x0, hessp=so.rosen_hess_prod)


def _quadratic_matrix(n: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q @ np.diag(np.linspace(0.5, 10.0, n)) @ q.T


def _quadratic(n: int = 5, seed: int = 0) -> tuple[CallableObjective, np.ndarray]:
    a = _quadratic_matrix(n, seed)
    x0 = np.random.default_rng(seed + 1).standard_normal(n)
    return CallableObjective(lambda x: 0.5 * x @ a @ x, lambda x: a @ x, x0,
                             hessp=lambda x, v: a @ v), a


def _double_well(n: int = 4) -> CallableObjective:
    """Non-convex near 0 (negative curvature), so Hessian descent meets skipped pairs."""
    b = _quadratic_matrix(n, 3) / 10.0
    fun = lambda x: 0.25 * np.sum((x**2 - 1.0) ** 2) + 0.5 * x @ b @ x  # noqa: E731
    grad = lambda x: x**3 - x + b @ x  # noqa: E731
    return CallableObjective(fun, grad, np.array([0.3, -0.4, 0.2, -0.25]))


class ToyCompliance:
    """Separable convex stand-in for the density objective of MMA/OC.

    f(x) = Σ_{i in mask} c_i / x_i^p, volume(x) = Σ_{i in mask} x_i / |mask|, cells outside the
    mask have bounds [0, 0] and no influence. KKT: x_i ∝ c_i^(1/(p+1)) on the mask with the volume
    constraint active.
    """

    def __init__(self, c: np.ndarray, mask: np.ndarray, penalty: float, volume_fraction: float):
        self.c = np.asarray(c, dtype=np.float64)
        self.mask = np.asarray(mask, dtype=bool)
        self.p = penalty
        self.volume_fraction = volume_fraction
        self.size = self.c.size
        self.parameter_specs = (ParameterSpec("densities", (self.size,), "pixels"),)

    def initial(self) -> np.ndarray:
        return self.volume_fraction * self.mask.astype(np.float64)

    def value(self, x):
        return self.value_and_grad(x)[0]

    def value_and_grad(self, x):
        xm = np.where(self.mask, x, 1.0)
        value = float(np.sum(np.where(self.mask, self.c / xm**self.p, 0.0)))
        return value, np.where(self.mask, -self.p * self.c / xm ** (self.p + 1), 0.0)

    def hvp(self, x, v):
        xm = np.where(self.mask, x, 1.0)
        return np.where(self.mask, self.p * (self.p + 1) * self.c / xm ** (self.p + 2), 0.0) * v

    def design(self, x):
        return np.asarray(x, dtype=np.float64).reshape(1, -1)

    def volume(self, x) -> float:
        return float(np.sum(np.where(self.mask, x, 0.0)) / self.mask.sum())

    def volume_grad(self, x):
        return self.mask / self.mask.sum()

    @property
    def bounds(self):
        return np.zeros(self.size), self.mask.astype(np.float64)

    def optimum(self) -> tuple[np.ndarray, float]:
        weights = np.where(self.mask, self.c, 0.0) ** (1.0 / (self.p + 1.0))
        x = weights * self.volume_fraction * self.mask.sum() / weights.sum()
        return x, self.value(x)


def _toy() -> ToyCompliance:
    rng = np.random.default_rng(7)
    mask = np.ones(24, dtype=bool)
    mask[[3, 11, 20]] = False
    return ToyCompliance(rng.uniform(1.0, 3.0, 24), mask, penalty=2.0, volume_fraction=0.4)


def _scipy_lbfgsb(objective, maxfun, memory=10):
    losses = []

    def fun(x):
        value, grad = objective.value_and_grad(x)
        losses.append(value)
        return value, grad

    result = so.minimize(fun, objective.initial(), jac=True, method="L-BFGS-B",
                         options={"maxcor": memory, "ftol": EPS, "gtol": 1e-14, "maxfun": maxfun,
                                  "maxiter": 10**9})
    return result, np.array(losses)


def _assert_same_result(a: OptimizationResult, b: OptimizationResult) -> None:
    for field in dataclasses.fields(OptimizationResult):
        if field.name == "elapsed":
            continue
        left, right = getattr(a, field.name), getattr(b, field.name)
        if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
            assert left is not None and right is not None, field.name
            assert left.shape == right.shape and np.array_equal(left, right, equal_nan=True), \
                field.name
        else:
            assert left == right, field.name


# -- lbfgs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: _quadratic()[0], _rosenbrock], ids=["quadratic", "rosen"])
def test_lbfgs_matches_scipy(make):
    objective = make()
    result = optimize(objective, "lbfgs", steps=150, implementation="scipy")
    reference, losses = _scipy_lbfgsb(objective, 150)
    assert np.array_equal(result.x, reference.x)
    assert result.evaluations == reference.nfev and result.iterations == reference.nit
    assert np.array_equal(result.loss_per_evaluation, losses)
    assert result.status == "converged" and result.converged
    assert result.options == {"memory": 10, "factr": 1.0, "pgtol": 1e-14, "maxls": 20,
                              "implementation": "scipy"}
    assert result.elapsed > 0
    # our engine: the same evaluations and message, the same point to rounding
    own = optimize(objective, "lbfgs", steps=150)
    assert own.evaluations == reference.nfev and own.iterations == reference.nit
    assert own.message == reference.message and own.status == "converged"
    np.testing.assert_allclose(own.x, reference.x, rtol=0, atol=1e-12)


def test_lbfgs_budget_is_maxfun():
    objective = _rosenbrock()
    result = optimize(objective, "lbfgs", steps=25, implementation="scipy")
    reference, _ = _scipy_lbfgsb(objective, 25)
    assert result.status == "max_steps" and not result.converged
    assert result.evaluations == reference.nfev > 25
    assert np.array_equal(result.x, reference.x)


def test_lbfgs_pairs_rebuilt_in_order():
    objective, memory = _rosenbrock(), 3
    result = optimize(objective, "lbfgs", steps=60, memory=memory, record=ALL_ITERATES,
                      implementation="scipy")
    x, g = result.iterates, result.gradients
    assert np.array_equal(result.iterate_indices, np.arange(result.iterations + 1))
    assert len(result.s_pairs) == result.iterations - result.skipped_pairs > 2 * memory
    assert np.all(np.diff(result.pair_iterations) > 0)
    for s, y, k in zip(result.s_pairs, result.y_pairs, result.pair_iterations):
        assert np.array_equal(s, x[k] - x[k - 1]) and np.array_equal(y, g[k] - g[k - 1])
    assert np.array_equal(x[-1], result.x)
    np.testing.assert_allclose(result.grad_norm_per_iterate, np.linalg.norm(g, axis=1), rtol=1e-14)
    # scipy's final memory: the newest `memory` pairs but the last (stored in a ring buffer).
    reference, _ = _scipy_lbfgsb(objective, 60, memory)
    scipy_pairs = reference.hess_inv.sk
    expected = result.s_pairs[-memory - 1:-1]
    assert len(scipy_pairs) == memory
    for s in expected:
        distances = np.linalg.norm(scipy_pairs - s, axis=1)
        assert distances.min() <= 1e-12 * np.linalg.norm(s)


def test_lbfgs_record_without_pairs():
    result = optimize(_rosenbrock(), "lbfgs", steps=40, record=RecordOptions(pairs=False))
    assert result.s_pairs is None and result.y_pairs is None and result.pair_iterations.size == 0
    assert result.iterates is None and result.gradients is None


# -- first-order methods ---------------------------------------------------------------------
def test_gd_closed_form_on_quadratic():
    objective, a = _quadratic()
    rate, steps = 0.05, 30
    result = optimize(objective, "gd", steps=steps, learning_rate=rate, record=ALL_ITERATES)
    step_matrix = np.eye(len(a)) - rate * a
    expected = np.array([np.linalg.matrix_power(step_matrix, k) @ objective.x0
                         for k in range(steps + 1)])
    np.testing.assert_allclose(result.iterates, expected, rtol=1e-12, atol=1e-14)
    assert result.evaluations == steps + 1 and result.iterations == steps
    np.testing.assert_allclose(result.loss_per_iterate,
                               [0.5 * x @ a @ x for x in expected], rtol=1e-12)
    assert result.status == "max_steps" and result.s_pairs is None


def test_adam_matches_reference_loop():
    objective = _rosenbrock(4)
    rate, beta1, beta2, eps, steps = 0.01, 0.8, 0.99, 1e-7, 40
    result = optimize(objective, "adam", steps=steps, learning_rate=rate, beta1=beta1,
                      beta2=beta2, record=ALL_ITERATES)
    x = objective.x0.copy()
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    expected = [x.copy()]
    for t in range(1, steps + 1):
        g = so.rosen_der(x)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        x = x - rate * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + eps)
        expected.append(x.copy())
    np.testing.assert_allclose(result.iterates, np.array(expected), rtol=1e-12, atol=1e-14)
    assert result.options == {"learning_rate": rate, "beta1": beta1, "beta2": beta2,
                              "epsilon": 1e-7}


def _dense_inverse_bfgs(s_pairs, y_pairs, n):
    s_new, y_new = s_pairs[-1], y_pairs[-1]
    h = (s_new @ y_new) / (y_new @ y_new) * np.eye(n)
    for s, y in zip(s_pairs, y_pairs):
        rho = 1.0 / (y @ s)
        v = np.eye(n) - rho * np.outer(y, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    return h


def test_the_pair_rule_never_keeps_a_pair_without_positive_curvature():
    """L-BFGS-B's rule alone (sᵀy > eps (-gᵀs)) keeps sᵀy = 0 when the step went uphill, which a
    fixed-step method can do in a diverging run; the two-loop product then divides by zero."""
    from solvers.optimizers import curvature_pair_accepted

    s = np.array([1.0, 0.0])
    descent, uphill = np.array([-1.0, 0.0]), np.array([1.0, 0.0])
    for y, g, kept in [(np.array([1.0, 5.0]), descent, True),      # positive curvature
                       (np.array([1e-17, 0.0]), descent, False),   # below eps * (-gᵀs)
                       (np.array([0.0, 3.0]), uphill, False),      # sᵀy = 0: once kept
                       (np.array([-1e-30, 0.0]), uphill, False),   # sᵀy < 0: once kept
                       (np.array([2.0, 0.0]), uphill, True)]:
        assert curvature_pair_accepted(s, y, g) is kept, (y, g)


@pytest.mark.parametrize("memory", [1, 10])
def test_hd_directions_match_dense_bfgs(memory):
    objective, rate, steps = _double_well(), 0.1, 60
    result = optimize(objective, "hd", steps=steps, learning_rate=rate, memory=memory,
                      record=ALL_ITERATES)
    x, g, n = result.iterates, result.gradients, objective.size
    assert np.array_equal(x[1], x[0] - rate * g[0])  # first direction: -g
    kept_s, kept_y, kept_at, skipped = [], [], [], 0
    for k in range(1, steps + 1):
        s, y = x[k] - x[k - 1], g[k] - g[k - 1]
        if s @ y > 0 and s @ y > EPS * -(g[k - 1] @ s):
            kept_s.append(s)
            kept_y.append(y)
            kept_at.append(k)
        else:
            skipped += 1
        if k == steps:
            break
        direction = (x[k + 1] - x[k]) / rate
        if kept_s:
            expected = -_dense_inverse_bfgs(kept_s[-memory:], kept_y[-memory:], n) @ g[k]
        else:
            expected = -g[k]
        np.testing.assert_allclose(direction, expected, rtol=1e-7,
                                   atol=1e-9 * np.linalg.norm(expected))
    assert skipped > 0 and len(kept_s) > memory  # the skip rule and the window both matter
    assert result.skipped_pairs == skipped and result.pair_iterations.tolist() == kept_at
    assert np.array_equal(result.s_pairs, np.array(kept_s))


def test_two_loop_product_is_dense_bfgs():
    rng = np.random.default_rng(5)
    n, a = 6, _quadratic_matrix(6, 9)
    s_pairs = [rng.standard_normal(n) for _ in range(4)]
    y_pairs = [a @ s for s in s_pairs]
    v = rng.standard_normal(n)
    np.testing.assert_allclose(two_loop_product(v, s_pairs, y_pairs),
                               _dense_inverse_bfgs(s_pairs, y_pairs, n) @ v, rtol=1e-10)
    assert np.array_equal(two_loop_product(v, [], []), v)


def test_gd_ls_steps_satisfy_strong_wolfe():
    calls = []
    base = _rosenbrock(4)
    objective = CallableObjective(lambda x: calls.append(1) or so.rosen(x), so.rosen_der,
                                  base.x0)
    steps = 80
    result = optimize(objective, "gd_ls", steps=steps, record=ALL_ITERATES)
    x, g, f = result.iterates, result.gradients, result.loss_per_iterate
    assert result.iterations > 10
    for k in range(result.iterations):
        s = x[k + 1] - x[k]
        slope = g[k] @ s  # = -alpha |g|² for the direction -g
        assert slope < 0
        cosine = -slope / (np.linalg.norm(s) * np.linalg.norm(g[k]))
        assert cosine > 1 - 1e-12  # steepest descent
        assert f[k + 1] <= f[k] + 1e-3 * slope  # sufficient decrease, c1 = 1e-3
        assert abs(g[k + 1] @ s) <= 0.9 * abs(slope)  # curvature, c2 = 0.9
    assert result.evaluations == len(calls) == len(result.loss_per_evaluation)
    assert steps < result.evaluations <= steps + 20
    # its first iteration is that of L-BFGS-B
    lbfgs = optimize(base, "lbfgs", steps=steps, record=ALL_ITERATES)
    assert np.array_equal(lbfgs.iterates[1], x[1])


# -- density methods -------------------------------------------------------------------------
def test_oc_reaches_kkt_point():
    toy = _toy()
    x_star, f_star = toy.optimum()
    result = optimize(toy, "oc", steps=60)
    assert abs(result.fun / f_star - 1) < 1e-3
    assert toy.volume(result.x) <= toy.volume_fraction * (1 + 1e-12)
    assert np.all(result.x[~toy.mask] == 0)
    np.testing.assert_allclose(result.x, x_star, rtol=1e-3, atol=1e-12)
    early = optimize(toy, "oc", steps=200, change_tol=1e-6)
    assert early.status == "converged" and early.converged and early.iterations < 200


def test_oc_first_step_closed_form():
    toy = _toy()
    x0 = toy.initial()
    result = optimize(toy, "oc", steps=1, move=1.0, record=ALL_ITERATES)
    # x1 = x0 sqrt(-dc / (lambda dv)) = w / sqrt(lambda), lambda fixed by the active volume.
    _, dc = toy.value_and_grad(x0)
    dv = toy.volume_grad(x0)
    w = np.where(toy.mask, x0 * np.sqrt(-dc / np.where(toy.mask, dv, 1.0)), 0.0)
    expected = w * toy.volume_fraction * toy.mask.sum() / w.sum()
    assert expected.max() < 1.0  # no clipping, so the closed form holds
    np.testing.assert_allclose(result.iterates[1], expected, rtol=1e-9, atol=0)
    limited = optimize(toy, "oc", steps=1, move=0.05, record=ALL_ITERATES)
    step = limited.iterates[1] - x0
    assert np.max(np.abs(step)) == pytest.approx(0.05, rel=1e-12)


def test_mma_reaches_kkt_point_from_a_feasible_start():
    toy = _toy()
    _, f_star = toy.optimum()
    assert toy.volume(toy.initial()) == toy.volume_fraction  # on the constraint: must be moved
    result = optimize(toy, "mma", steps=100, record=ALL_ITERATES)
    assert toy.volume(result.iterates[0]) < toy.volume_fraction
    assert abs(result.best_loss / f_star - 1) < 1e-3 and abs(result.fun / f_star - 1) < 1e-3
    assert toy.volume(result.x) <= toy.volume_fraction + 1e-7
    assert np.all(result.x[~toy.mask] == 0)
    assert result.evaluations == result.iterations + 1 == 101


def test_density_methods_need_the_volume_contract():
    for method in ("mma", "oc"):
        with pytest.raises(TypeError, match="volume.*PixelModel"):
            optimize(_rosenbrock(), method, steps=3)


# -- common behaviour ------------------------------------------------------------------------
@pytest.mark.parametrize("method,options", [
    ("lbfgs", {}), ("gd_ls", {}), ("hd", {"learning_rate": 0.01}), ("adam", {}),
    ("gd", {"learning_rate": 1e-3}), ("oc", {}), ("mma", {})])
def test_runs_are_bitwise_deterministic(method, options):
    objective = _toy() if method in ("oc", "mma") else _rosenbrock()
    record = RecordOptions(iterates_every=2, designs_at=(0, 1, -1))
    first = optimize(objective, method, steps=30, seed=3, record=record, **options)
    second = optimize(objective, method, steps=30, seed=3, record=record, **options)
    _assert_same_result(first, second)
    assert first.iterations > 0 and first.length_problem() is None


@pytest.mark.parametrize("method,options", [
    ("lbfgs", {}), ("gd", {"learning_rate": 1e-3}), ("mma", {})])
@pytest.mark.parametrize("stop", [KeyboardInterrupt, StopIteration])
def test_callback_interrupts_and_keeps_data(method, options, stop):
    objective = _toy() if method == "mma" else _rosenbrock()
    seen = []

    def callback(info):
        seen.append(info.iteration)
        if info.iteration == 3:
            raise stop

    result = optimize(objective, method, steps=50, callback=callback, record=ALL_ITERATES,
                      **options)
    assert result.status == "interrupted" and not result.converged
    assert seen == [1, 2, 3] and result.iterations == 3
    assert len(result.loss_per_iterate) == 4 and result.iterates.shape == (4, objective.size)
    assert np.array_equal(result.x, result.iterates[-1])
    assert result.evaluations == len(result.loss_per_evaluation) >= 4
    assert stop.__name__ in result.message
    assert result.length_problem() is None


def _failing(after: int, kind: str) -> CallableObjective:
    calls = []

    def fun(x):
        calls.append(1)
        if len(calls) > after:
            if kind == "nan":
                return float("nan")
            raise RuntimeError("boom")
        return so.rosen(x)

    return CallableObjective(fun, so.rosen_der, _rosenbrock().x0)


@pytest.mark.parametrize("method,options", [("lbfgs", {}), ("gd", {"learning_rate": 1e-3})])
def test_nan_loss_fails_and_keeps_data(method, options):
    result = optimize(_failing(6, "nan"), method, steps=50, **options)
    assert result.status == "failed" and "non-finite loss" in result.message
    assert result.evaluations == 7 and np.isnan(result.loss_per_evaluation[-1])
    assert np.isfinite(result.best_loss) and result.iterations >= 1
    assert np.isfinite(result.fun) and result.length_problem() is None


def test_objective_exception_fails_with_its_name():
    result = optimize(_failing(4, "raise"), "gd", steps=50, learning_rate=1e-3)
    assert result.status == "failed"
    assert "RuntimeError" in result.message and "boom" in result.message
    assert result.length_problem() is None
    assert result.iterations == 3 and result.evaluations == 4
    nan_start = optimize(_failing(0, "nan"), "gd", steps=5, learning_rate=1e-3)
    assert nan_start.status == "failed" and nan_start.iterations == 0
    assert nan_start.loss_per_iterate.shape == (1,) and nan_start.x.shape == (5,)


def test_record_options_and_snapshot():
    snapshots = []

    def callback(info):
        if info.iteration == 5:
            snapshots.append(info.snapshot())

    record = RecordOptions(iterates_every=4, designs_at=(0, 3, -1))
    result = optimize(_rosenbrock(), "gd", steps=10, learning_rate=1e-3, record=record,
                      callback=callback)
    assert result.iterate_indices.tolist() == [0, 4, 8, 10]
    assert result.design_indices.tolist() == [0, 3, 10]
    assert result.designs.shape == (3, 1, 5)
    np.testing.assert_array_equal(result.designs[-1, 0], result.x)
    (snapshot,) = snapshots
    assert snapshot.status == "interrupted" and snapshot.iterations == 5
    assert snapshot.iterate_indices.tolist() == [0, 4, 5]
    assert result.status == "max_steps" and result.iterations == 10


def test_resume_concatenates_histories():
    objective = _rosenbrock()
    record = ALL_ITERATES
    whole = optimize(objective, "gd", steps=25, learning_rate=1e-3, record=record)
    first = optimize(objective, "gd", steps=10, learning_rate=1e-3, record=record)
    exact = optimize(objective, "gd", steps=25, learning_rate=1e-3, record=record, resume=first)
    _assert_same_result(exact, whole)  # from the saved state: bit for bit, no re-evaluation
    first = dataclasses.replace(first, state=None)  # as an old file without a state
    resumed = optimize(objective, "gd", steps=25, learning_rate=1e-3, record=record,
                       resume=first)
    assert "without an optimizer state" in resumed.message
    assert resumed.iterations == 25 and resumed.evaluations == 27  # the start is re-evaluated
    assert resumed.length_problem() is None
    for name in ("loss_per_iterate", "grad_norm_per_iterate", "iterates", "gradients", "x",
                 "iterate_indices"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name), equal_nan=True), name
    assert np.array_equal(np.delete(resumed.loss_per_evaluation, 11), whole.loss_per_evaluation)

    part = optimize(objective, "lbfgs", steps=20, implementation="scipy")
    rest = optimize(objective, "lbfgs", steps=60, resume=part, implementation="scipy")
    assert "memory restarted" in rest.message
    assert rest.evaluations > part.evaluations and rest.iterations > part.iterations
    assert rest.length_problem() is None
    assert np.all(np.diff(rest.pair_iterations) > 0)
    assert np.array_equal(rest.loss_per_evaluation[:part.evaluations], part.loss_per_evaluation)
    with pytest.raises(ValueError, match="nothing left"):
        optimize(objective, "lbfgs", steps=part.evaluations, resume=part)
    with pytest.raises(ValueError, match="cannot be continued"):
        optimize(objective, "adam", steps=60, resume=part)


# -- configuration ---------------------------------------------------------------------------
def test_bad_method_and_options_messages():
    objective = _rosenbrock()
    with pytest.raises(ValueError, match="lbfgs.*mma"):
        optimize(objective, "sgd", steps=3)
    with pytest.raises(TypeError, match="valid options: learning_rate, memory"):
        optimize(objective, "hd", steps=3, lr=0.1)
    with pytest.raises(ValueError, match="memory must be an integer >= 1"):
        optimize(objective, "lbfgs", steps=3, memory=0)
    with pytest.raises(ValueError, match="learning_rate.*Table B.1"):
        optimize(objective, "gd", steps=3)
    with pytest.raises(ValueError, match="steps"):
        optimize(objective, "gd", steps=0, learning_rate=0.1)
    with pytest.raises(ValueError, match="lambda_max"):
        optimize(_toy(), "oc", steps=3, lambda_min=2.0, lambda_max=1.0)
    assert set(METHODS) == {"lbfgs", "gd", "adam", "hd", "gd_ls", "mma", "oc"}


def test_thesis_step_sizes_are_used():
    class Named(CallableObjective):
        pass

    base = _rosenbrock()
    objective = Named(base.fun, base.grad, base.x0)
    object.__setattr__(objective, "problem", type("P", (), {"name": "crane_128x128_0.2"})())
    object.__setattr__(objective, "model_kind", "cnn")
    object.__setattr__(objective, "penal", 1.0)
    assert optimize(objective, "gd", steps=1).options["learning_rate"] == 0.5  # NN1E, B.1
    assert optimize(objective, "hd", steps=1, memory=1).options["learning_rate"] == 0.63  # B.2
    assert optimize(objective, "hd", steps=1).options["learning_rate"] == 0.4  # NN1E, B.3
    assert optimize(objective, "gd", steps=1, learning_rate=0.2).options["learning_rate"] == 0.2
    with pytest.raises(ValueError, match="memory=5"):
        optimize(objective, "hd", steps=1, memory=5)
    assert tuned_learning_rate("michell_centered_both_32x64_0.12", "cnn", 3, "gd") == 2.5e-4
    assert tuned_learning_rate("causeway_bridge_middle_128x128_0.1", "pixel", 3, "hd", 10) == 0.159
    assert tuned_learning_rate("crane_64x64_0.3", "pixel", 3, "gd") is None


# -- the real pixel objective (the lead's solvers.as_objective) -------------------------------
def test_density_methods_on_the_pixel_objective():
    pytest.importorskip("tensorflow")
    import solvers

    problem = solvers.get_problem("michell_centered_both_32x64_0.12")
    densities = solvers.as_objective(solvers.PixelModel(problem, volume_constraint=False))
    start = densities.value(densities.initial())
    for method in ("oc", "mma"):
        result = optimize(densities, method, steps=8, record=ALL_ITERATES)
        assert result.status == "max_steps" and result.evaluations == 9
        first = 0 if method == "mma" else 1  # MMA's start is moved inside; OC's first step is
        assert densities.volume(result.iterates[first]) < problem.volume_fraction
        assert densities.volume(result.x) <= problem.volume_fraction + 1e-8
        assert result.best_loss < 0.7 * start
    logits = solvers.as_objective(solvers.PixelModel(problem))
    assert optimize(logits, "gd", steps=1).options["learning_rate"] == 0.1  # P3A, Table B.1
    assert optimize(logits, "hd", steps=1, memory=1).options["learning_rate"] == 0.126  # B.2


@pytest.mark.parametrize("method", ["gd", "hd"])
def test_a_step_that_saturates_to_a_zero_gradient_above_the_start_is_a_failure(method):
    """tanh-saturated quadratic: a huge first step lands where the gradient is exactly zero and
    the loss is above the start. That is a divergence, not a minimum; at a true flat minimum
    below the start the same zero gradient is convergence."""
    def fun(x):   # minimum 0 at x = 0; the step overshoots to tanh = -1, loss 2
        t = np.tanh(x)
        return float(np.sum(t ** 2)), 2.0 * t * (1.0 - t ** 2)

    start = np.array([0.1, 0.2])
    diverged = optimize(CallableObjective(lambda x: fun(x)[0], lambda x: fun(x)[1], start),
                        method, steps=5, learning_rate=1e6)
    assert diverged.status == "failed" and "diverged" in diverged.message
    assert not diverged.converged and diverged.iterations == 1

    def flat(x):   # zero gradient beyond |x| > 1, loss 0 there: a genuine minimum
        inside = np.abs(x) < 1
        return float(np.sum(np.where(inside, 1 - x ** 2, 0.0))), np.where(inside, -2 * x, 0.0)

    done = optimize(CallableObjective(lambda x: flat(x)[0], lambda x: flat(x)[1], start),
                    method, steps=5, learning_rate=100.0)
    assert done.status == "converged" and done.converged
