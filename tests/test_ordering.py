"""The METIS nested-dissection ordering of the stiffness matrix (solvers.ordering) and its use.

Independent answers: dense ``numpy.linalg.solve`` of the same system, CHOLMOD's own AMD ordering
(fill and flops of L read back from CHOLMOD's factor), and the mesh's node numbering.
"""
from __future__ import annotations

import cvxopt
import cvxopt.cholmod
import numpy as np
import pytest

from solvers import build_problem
from solvers.fem import StiffnessSystem
from solvers.ordering import nested_dissection
from solvers.sparse_cholesky import SymmetricSolver


def _system(width: int, height: int) -> StiffnessSystem:
    problem = build_problem("mbb_beam", width, height, 0.5)
    return StiffnessSystem(height, width, problem.fixed_dofs)


def _factor_cost(solver: SymmetricSolver, data: np.ndarray) -> tuple[int, float]:
    """Nonzeros of L and the factorization's flop count (sum of squared column counts)."""
    solver.solve(data, np.ones(solver.n))
    factor = cvxopt.cholmod.getfactor(solver._symbolic)
    counts = np.diff(np.array(factor.CCS[0]).ravel()).astype(float)
    return len(factor.V), float(counts @ counts)


def test_permutation_keeps_each_node_together():
    system = _system(24, 12)
    solver = system.solver
    permutation = nested_dissection(solver.indptr, solver.indices)
    assert permutation.dtype == np.int64
    np.testing.assert_array_equal(np.sort(permutation), np.arange(solver.n))
    nodes = system.free_dofs[permutation] // 2
    # every node's free dofs are consecutive in the elimination order
    changes = np.flatnonzero(np.diff(nodes)) + 1
    blocks = np.split(nodes, changes)
    assert len({block[0] for block in blocks}) == len(blocks)
    assert len(blocks) == np.unique(system.free_dofs // 2).size


@pytest.mark.parametrize("ordering", ["metis", "amd"])
def test_solves_match_dense(ordering):
    system = _system(20, 10)
    rng = np.random.default_rng(0)
    moduli = rng.uniform(0.05, 1.0, system.num_elements)
    rhs = rng.normal(size=(system.num_free, 2))
    solver = SymmetricSolver(system.solver.indptr, system.solver.indices, ordering=ordering)
    assert solver.ordering == ordering
    solution = solver.solve(system.matrix_values(moduli), rhs)
    expected = np.linalg.solve(system.dense_matrix(moduli), rhs)
    np.testing.assert_allclose(solution, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    assert cvxopt.cholmod.options.get("nmethods") is None  # module-wide option restored


@pytest.mark.parametrize("problem, width, height, cheaper", [
    ("mbb_beam", 128, 64, "amd"), ("causeway_bridge_middle", 128, 128, "metis")])
def test_best_ordering_keeps_the_cheaper_factor(problem, width, height, cheaper):
    # measured: AMD 7 % fewer flops on the MBB mesh, nested dissection 23 % on the causeway's
    problem = build_problem(problem, width, height, 0.3)
    system = StiffnessSystem(height, width, problem.fixed_dofs)
    data = system.matrix_values(np.ones(system.num_elements))
    cost = {}
    for ordering in ("metis", "amd"):
        solver = SymmetricSolver(system.solver.indptr, system.solver.indices, ordering=ordering)
        cost[ordering] = _factor_cost(solver, data)
    assert min(cost, key=lambda o: cost[o][1]) == cheaper, cost
    best = system.solver  # the default
    assert best.ordering == "best" and best.chosen_ordering is None
    assert _factor_cost(best, data) == cost[cheaper]
    assert best.chosen_ordering == cheaper


def test_bad_orderings_raise():
    system = _system(8, 4)
    with pytest.raises(ValueError, match="ordering must be one of"):
        SymmetricSolver(system.solver.indptr, system.solver.indices, ordering="nesdis")
    with pytest.raises(ValueError, match="CHOLMOD backend only"):
        SymmetricSolver(system.solver.indptr, system.solver.indices, backend="superlu",
                        ordering="metis")
