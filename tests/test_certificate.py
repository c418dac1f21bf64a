"""The tangent-plane lower bound at p = 1 (solvers/certificate.py) and PixelModel's volume_of.

Independent answers: scipy's linprog for the knapsack; long MMA and OC runs for the optimum
(the bound must lie below every feasible value and close the gap at the optimum).
"""
import numpy as np
import pytest
import scipy.optimize

from solvers import PixelModel, as_objective, build_problem, optimize
from solvers.certificate import convex_lower_bound, knapsack_minimum


@pytest.mark.parametrize("seed", range(5))
def test_knapsack_minimum_matches_linprog(seed):
    rng = np.random.default_rng(seed)
    n = 40
    g = rng.normal(size=n)
    weights = rng.uniform(0.0, 2.0, n)
    weights[:3] = 0.0                       # free cells
    upper = rng.choice([0.0, 0.5, 1.0], n)  # some cells fixed at 0
    capacity = 0.3 * float(weights @ upper)
    ours = knapsack_minimum(g, weights, capacity, upper)
    lp = scipy.optimize.linprog(g, A_ub=weights[None], b_ub=[capacity],
                                bounds=list(zip(np.zeros(n), upper)), method="highs")
    assert lp.status == 0
    assert ours == pytest.approx(lp.fun, rel=1e-10, abs=1e-12)


def test_knapsack_minimum_rejects_bad_input():
    with pytest.raises(ValueError, match="weights >= 0"):
        knapsack_minimum(np.ones(3), -np.ones(3), 1.0)
    with pytest.raises(ValueError, match="1-D shapes"):
        knapsack_minimum(np.ones(3), np.ones(4), 1.0)


def _densities(volume_of: str, penal: float = 1.0):
    problem = build_problem("mbb_beam", 16, 8, 0.4)
    model = PixelModel(problem, volume_constraint=False, volume_of=volume_of)
    return problem, as_objective(model, penal=penal, filter_radius=2.0)


def test_design_volume_is_the_mean_of_the_densities_before_the_filter():
    problem, objective = _densities("design")
    _, filtered = _densities("physical")
    mask = np.asarray(problem.mask, bool).ravel()
    x = np.random.default_rng(0).uniform(0, 1, objective.size) * mask
    assert objective.volume(x) == pytest.approx(x[mask].mean(), rel=1e-14)
    np.testing.assert_allclose(objective.volume_grad(x), mask / mask.sum(), rtol=1e-14)
    assert abs(filtered.volume(x) - objective.volume(x)) > 1e-4   # the filter moves the mean


def test_volume_of_rejects_bad_input():
    problem = build_problem("mbb_beam", 16, 8, 0.4)
    with pytest.raises(ValueError, match="volume_of must be one of"):
        PixelModel(problem, volume_constraint=False, volume_of="filtered")
    with pytest.raises(ValueError, match="applies to densities"):
        PixelModel(problem, volume_of="design")


@pytest.mark.parametrize("volume_of", ["design", "physical"])
def test_bound_brackets_the_optimum_of_its_own_set(volume_of):
    problem, objective = _densities(volume_of)
    runs = {method: optimize(objective, method, steps=600) for method in ("mma", "oc")}
    for method, result in runs.items():
        assert objective.volume(result.x) <= 0.4 * (1 + 2e-6), method
    best = min(r.fun for r in runs.values())
    # at the (near-)optimum the bound closes the gap; at the start it is valid but loose
    at_optimum = max(convex_lower_bound(objective, r.x).bound for r in runs.values())
    assert at_optimum <= best <= at_optimum * (1 + 2e-3), (at_optimum, best)
    start = convex_lower_bound(objective, objective.initial())
    assert start.bound <= best and start.relative_gap > 0.05
    rng = np.random.default_rng(1)
    for _ in range(3):   # any design gives a valid bound
        y = rng.uniform(0, 1, objective.size) * np.asarray(problem.mask, float).ravel()
        assert convex_lower_bound(objective, y).bound <= best * (1 + 1e-12)


def test_the_design_volume_optimum_bounds_the_logit_model():
    """The sigmoid map fixes the design volume: L-BFGS on logits stays above that bound."""
    problem, objective = _densities("design")
    logits = as_objective(PixelModel(problem), penal=1.0, filter_radius=2.0)
    result = optimize(logits, "lbfgs", steps=300)
    densities = optimize(objective, "mma", steps=600)
    bound = convex_lower_bound(objective, densities.x).bound
    assert result.fun >= bound * (1 - 1e-12)
    assert result.fun <= bound * (1 + 2e-3)


def test_bound_needs_p1():
    _, objective = _densities("design", penal=3.0)
    with pytest.raises(ValueError, match="penal = 1"):
        convex_lower_bound(objective, objective.initial())
