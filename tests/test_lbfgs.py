"""Our L-BFGS engine (solvers/optim/lbfgs.py, line_search.py) against scipy's L-BFGS-B.

Independent answers: scipy's own Moré–Thuente search (``scipy.optimize._dcsrch.DCSRCH``, the
Python port of MINPACK-2's dcsrch) on the test functions of Moré & Thuente (1994, Section 5), and
scipy's L-BFGS-B (its C port of L-BFGS-B 3.0) through ``implementation="scipy"``, which records
the same histories. Iterates are compared relative to their largest entry: the two-loop recursion
and L-BFGS-B's compact form differ by rounding only, which 30 iterations amplify to ~1e-9 here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize._dcsrch import DCSRCH

from solvers import (CNNConfig, CNNModel, PixelModel, RecordOptions, as_objective, build_problem,
                     optimize)
from solvers.flat import CallableObjective
from solvers.optim.line_search import MoreThuenteSearch, SearchTask

ALL_ITERATES = RecordOptions(iterates_every=1)


# -- the line search -------------------------------------------------------------------------
def _mt_functions():
    """Moré & Thuente's six functions phi(a), phi'(a) with their parameters."""
    def f1(a, beta=2.0):
        return -a / (a * a + beta), (a * a - beta) / (a * a + beta) ** 2

    def f2(a, beta=0.004):
        return (a + beta) ** 5 - 2 * (a + beta) ** 4, 5 * (a + beta) ** 4 - 8 * (a + beta) ** 3

    def f3(a, beta=0.01, ell=39):
        if a <= 1 - beta:
            phi0, dphi0 = 1 - a, -1.0
        elif a >= 1 + beta:
            phi0, dphi0 = a - 1, 1.0
        else:
            phi0, dphi0 = (a - 1) ** 2 / (2 * beta) + beta / 2, (a - 1) / beta
        c = 2 * (1 - beta) / (ell * math.pi)
        return (phi0 + c * math.sin(ell * math.pi * a / 2),
                dphi0 + (1 - beta) * math.cos(ell * math.pi * a / 2))

    def yanai(beta1, beta2):
        g1, g2 = math.sqrt(1 + beta1**2) - beta1, math.sqrt(1 + beta2**2) - beta2

        def phi(a):
            r1, r2 = math.sqrt((1 - a) ** 2 + beta2**2), math.sqrt(a * a + beta1**2)
            return g1 * r1 + g2 * r2, -g1 * (1 - a) / r1 + g2 * a / r2
        return phi

    return {"f1": (f1, 1e-3, 0.1), "f2": (f2, 0.1, 0.1), "f3": (f3, 0.1, 0.1),
            "f4": (yanai(0.001, 0.001), 1e-3, 1e-3), "f5": (yanai(0.01, 0.001), 1e-3, 1e-3),
            "f6": (yanai(0.001, 0.01), 1e-3, 1e-3)}


def _ours(function, stp, ftol, gtol, xtol=0.1, stpmax=1e10, maxiter=60):
    f0, g0 = function(0.0)
    search = MoreThuenteSearch(ftol, gtol, xtol, 0.0, stpmax)
    stp = search.start(f0, g0, stp)
    trials = []
    for _ in range(maxiter):
        trials.append(stp)
        task, stp = search.step(stp, *function(stp))
        if task is not SearchTask.EVALUATE:
            return trials, task, stp
    return trials, None, stp


def _scipy(function, stp, ftol, gtol, xtol=0.1, stpmax=1e10, maxiter=60):
    trials = []

    def phi(a):
        trials.append(a)
        return function(a)[0]

    search = DCSRCH(phi, lambda a: function(a)[1], ftol, gtol, xtol, 0.0, stpmax)
    f0, g0 = function(0.0)
    final, _, _, task = search(stp, phi0=f0, derphi0=g0, maxiter=maxiter)
    return trials, task, final


@pytest.mark.parametrize("name", list(_mt_functions()))
@pytest.mark.parametrize("first", [1e-3, 1e-1, 1e1, 1e3])
@pytest.mark.parametrize("constants", ["paper", "lbfgsb"])
def test_line_search_matches_scipy_dcsrch(name, first, constants):
    function, ftol, gtol = _mt_functions()[name]
    if constants == "lbfgsb":
        ftol, gtol = 1e-3, 0.9
    ours, task, stp = _ours(function, first, ftol, gtol)
    theirs, their_task, their_stp = _scipy(function, first, ftol, gtol)
    assert ours == theirs  # the same trial steps, bit for bit
    assert task is not None
    if their_task.startswith(b"CONV"):
        assert task is SearchTask.CONVERGED and stp == their_stp
        f0, g0 = function(0.0)
        f, g = function(stp)
        assert f <= f0 + ftol * stp * g0 and abs(g) <= gtol * abs(g0)  # strong Wolfe
    else:
        assert task is SearchTask.WARNING


def test_line_search_rejects_an_ascent_direction():
    with pytest.raises(ValueError, match="descent direction"):
        MoreThuenteSearch().start(1.0, 0.5, 1.0)


# -- the L-BFGS engine against scipy ---------------------------------------------------------
def _relative_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max |a_k - b_k| / max |b_k| per row k."""
    return np.max(np.abs(a - b), axis=1) / np.max(np.abs(b), axis=1)


def _compare_with_scipy(objective, steps: int, iterations: int = 30, **options):
    own = optimize(objective, "lbfgs", steps=steps, record=ALL_ITERATES, **options)
    ref = optimize(objective, "lbfgs", steps=steps, record=ALL_ITERATES, implementation="scipy",
                   **options)
    assert own.evaluations == ref.evaluations and own.iterations == ref.iterations
    assert own.iterations >= iterations
    k = iterations + 1
    assert np.all(_relative_gap(own.iterates[:k], ref.iterates[:k]) <= 1e-8)
    np.testing.assert_allclose(own.loss_per_evaluation[:own.iterations],
                               ref.loss_per_evaluation[:own.iterations], rtol=1e-8)
    assert own.message == ref.message
    return own, ref


@pytest.mark.parametrize("penal", [1.0, 3.0])
def test_lbfgs_matches_scipy_on_pixels(penal):
    objective = as_objective(PixelModel(build_problem("mbb_beam", 16, 8, 0.5)), penal=penal)
    own, ref = _compare_with_scipy(objective, steps=40)
    # the pairs in memory are x_(k+1) - x_k and g_(k+1) - g_k to rounding
    k = own.pair_iterations
    np.testing.assert_allclose(own.s_pairs, own.iterates[k] - own.iterates[k - 1], rtol=0,
                               atol=1e-12 * np.abs(own.iterates).max())


def test_lbfgs_final_loss_matches_scipy_at_p1():
    """p = 1 is convex in the densities: both runs reach the same optimum."""
    objective = as_objective(PixelModel(build_problem("mbb_beam", 16, 8, 0.5)), penal=1.0)
    own = optimize(objective, "lbfgs", steps=2000)
    ref = optimize(objective, "lbfgs", steps=2000, implementation="scipy")
    assert own.converged and ref.converged
    assert abs(own.fun - ref.fun) <= 1e-6 * abs(ref.fun)


def test_lbfgs_matches_scipy_on_a_tiny_cnn():
    config = CNNConfig(latent_size=4, dense_channels=2, conv_filters=(4, 3, 2, 2, 1))
    objective = as_objective(CNNModel(build_problem("mbb_beam", 16, 8, 0.5), seed=0,
                                      config=config))
    _compare_with_scipy(objective, steps=40)


@pytest.mark.parametrize("memory", [1, 3, 10])
def test_lbfgs_matches_scipy_on_rosenbrock(memory):
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.1, -0.3, 0.4])
    objective = CallableObjective(so.rosen, so.rosen_der, x0)
    _compare_with_scipy(objective, steps=60, iterations=20, memory=memory)


def test_memory_resets_are_recorded_and_match_scipy():
    """maxls = 2 makes a line search fail: L-BFGS-B empties its memory and searches along -g
    from the step 1; that search fails too (the memory is now empty): ABNORMAL, as scipy."""
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.1, -0.3, 0.4])
    objective = CallableObjective(so.rosen, so.rosen_der, x0)
    own = optimize(objective, "lbfgs", steps=150, maxls=2, record=ALL_ITERATES)
    ref = optimize(objective, "lbfgs", steps=150, maxls=2, record=ALL_ITERATES,
                   implementation="scipy")
    assert own.reset_iterations.tolist() == [own.iterations] and own.iterations > 5
    assert own.message == "ABNORMAL: " and ref.message.startswith("ABNORMAL: ")
    assert own.evaluations == ref.evaluations and own.iterations == ref.iterations
    np.testing.assert_allclose(own.loss_per_evaluation, ref.loss_per_evaluation, rtol=1e-8)
    # the search after the reset tried x_k - g_k first (step 1 along -g: empty memory, B = I)
    x, g = own.iterates[-1], own.gradients[-1]
    assert own.loss_per_evaluation[-2] == so.rosen(x - g)
    assert ref.reset_iterations.size == 0  # scipy's resets are invisible
    # with maxls = 3 the run goes on after its resets as scipy's does
    own = optimize(objective, "lbfgs", steps=150, maxls=3)
    ref = optimize(objective, "lbfgs", steps=150, maxls=3, implementation="scipy")
    assert own.evaluations == ref.evaluations and own.message == ref.message


def test_failed_search_with_empty_memory_is_abnormal():
    """gd_ls (an empty memory every iteration) with maxls = 1 on Rosenbrock: a search fails."""
    objective = CallableObjective(so.rosen, so.rosen_der, np.array([-1.2, 1.0]))
    result = optimize(objective, "gd_ls", steps=500, maxls=1)
    assert result.status == "converged" and result.message == "ABNORMAL: "
    assert result.evaluations < 500


def _scipy_restarted(objective, steps: int, maxls: int = 20):
    """gd_ls as scipy's L-BFGS-B restarted every iteration (maxiter = 1); a point evaluated
    before is served from memory and not counted."""
    losses, seen = [], {}

    def fun(z):
        key = z.tobytes()
        if key not in seen:
            seen[key] = objective.value_and_grad(z)
            losses.append(seen[key][0])
        return seen[key]

    x = objective.initial()
    while len(losses) <= steps:
        f_old = fun(x)[0]
        res = so.minimize(fun, x, jac=True, method="L-BFGS-B",
                          options={"maxcor": 1, "ftol": np.finfo(float).eps, "gtol": 1e-14,
                                   "maxiter": 1, "maxls": maxls})
        if res.nit == 0 or np.array_equal(res.x, x):
            break
        x = res.x
        if f_old - res.fun <= np.finfo(float).eps * max(abs(f_old), abs(res.fun), 1.0):
            break
    return np.array(losses)


def test_gd_ls_matches_restarted_scipy():
    objective = as_objective(PixelModel(build_problem("mbb_beam", 16, 8, 0.5)), penal=3.0)
    result = optimize(objective, "gd_ls", steps=60)
    losses = _scipy_restarted(objective, 60)
    assert result.evaluations == len(losses)
    np.testing.assert_allclose(result.loss_per_evaluation, losses, rtol=1e-10)


def test_gd_ls_iteration_cap_stops_the_same_run_early():
    objective = as_objective(PixelModel(build_problem("mbb_beam", 16, 8, 0.5)), penal=3.0)
    whole = optimize(objective, "gd_ls", steps=400)
    capped = optimize(objective, "gd_ls", steps=400, max_iterations=7)
    assert whole.iterations > 7 and capped.iterations == 7
    assert capped.status == "max_steps" and capped.message == "reached 7 iterations"
    np.testing.assert_array_equal(capped.loss_per_iterate, whole.loss_per_iterate[:8])
    np.testing.assert_array_equal(capped.loss_per_evaluation,
                                  whole.loss_per_evaluation[:capped.evaluations])
    with pytest.raises(ValueError, match="max_iterations must be an integer >= 1"):
        optimize(objective, "gd_ls", steps=400, max_iterations=0)


@pytest.mark.parametrize("memory", [1, 3, 4, 6])
def test_pair_ring_keeps_the_newest_in_order(memory):
    """The ring holds the newest m pairs oldest first, also after the in-place rotation that
    hands the final state over without copies; H v is unchanged by it."""
    from solvers.optim.lbfgs import PairMemory

    rng = np.random.default_rng(memory)
    for pushes in range(3 * memory + 2):
        ring, pushed = PairMemory(5, memory), []
        for i in range(pushes):
            s, y = ring.next_slot()
            s[:], y[:] = rng.standard_normal(5), rng.standard_normal(5)
            pushed.append((s.copy(), y.copy(), float(i + 1)))
            ring.commit(float(i + 1), float(i + 2))
        v = rng.standard_normal(5)
        before = ring.inverse_product(v, np.empty(5)).copy()
        copied, handed = ring.export(), ring.export(copy=False)
        newest = pushed[-memory:] if pushes else []
        for exported in (copied, handed):
            assert np.array_equal(exported["s"], np.array([p[0] for p in newest]).reshape(-1, 5))
            assert np.array_equal(exported["y"], np.array([p[1] for p in newest]).reshape(-1, 5))
            assert exported["sy"].tolist() == [p[2] for p in newest]
        assert np.array_equal(ring.inverse_product(v, np.empty(5)), before)
