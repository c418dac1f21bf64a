"""Fill-reducing orderings of the free-dof stiffness matrix: METIS nested dissection of the nodes.

CHOLMOD orders the matrix with AMD unless it is given a permutation. On the regular Q4 meshes of
the paper's tasks, nested dissection (George 1973; METIS, Karypis & Kumar 1998, through the
``pymetis`` wheel) of the NODE graph, each node's dofs kept together, needs fewer floating-point
operations to factor than AMD, and about as many nonzeros in L. Measured (flops = sum of squared
column counts of L; nonzeros of L), AMD -> nested dissection:

    michell_centered_both_32x64_0.12        1.59e7 -> 1.56e7 flops   226 k -> 226 k
    causeway_bridge_middle_128x128_0.1      4.47e8 -> 3.43e8         2.65 M -> 2.52 M
    michell_centered_both_128x256_0.12      9.66e8 -> 9.09e8         5.44 M -> 5.45 M
    crane_256x256_0.1                       3.13e9 -> 2.68e9         12.0 M -> 12.0 M
    cantilever_beam_two_point_256x192_0.2   3.02e9 -> 1.65e9         9.94 M -> 8.47 M

Nested dissection of the dof graph instead (the two dofs of a node split) gave 2.81e9 at
crane_256x256_0.1: keeping a node's dofs adjacent gives CHOLMOD larger supernodes. The ordering
costs about a second at 256 x 256, once per problem. CHOLMOD's own choice among several methods
(``nmethods``) picks by fill and so keeps AMD; the given permutation is therefore imposed
(``nmethods = 1``). The wheel's CHOLMOD has no METIS of its own.

The nodes are found from the pattern alone (the two dofs of a node have the same row pattern),
so nothing here knows the mesh.

Conventions: the matrix is ``n x n``, given by its lower-triangle CSC pattern
(:class:`solvers.sparse_cholesky.SymmetricSolver`). A permutation ``p`` is int64 ``(n,)`` with
``p[k]`` the unknown eliminated ``k``-th (CHOLMOD's convention: it factors ``A[p][:, p]``).
"""
from __future__ import annotations

import numpy as np
import pymetis
import scipy.sparse

__all__ = ["ORDERINGS", "nested_dissection"]

ORDERINGS = ("amd", "metis")


def nested_dissection(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """METIS nested dissection of a symmetric pattern, indistinguishable unknowns kept together.

    Unknowns whose rows of the symmetric pattern (diagonal included) are identical (the two dofs of
    a mesh node, "supervariables") are merged into one vertex before METIS orders the graph, and
    expanded again, consecutively, afterwards. Which rows are identical is found by hashing each
    row's column set (a random weighted sum); a collision could only merge unknowns that are
    not indistinguishable, which makes the ordering worse, never the factorization wrong.

    Args:
        indptr: int ``(n + 1,)`` CSC column pointers of the lower triangle.
        indices: int ``(nnz,)`` row indices of the lower triangle, all >= their column.

    Returns:
        int64 ``(n,)``: the permutation (see the module docstring).
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    n = indptr.size - 1
    rows = np.asarray(indices, dtype=np.int64)
    columns = np.repeat(np.arange(n), np.diff(indptr))
    lower = scipy.sparse.csr_matrix((np.ones(rows.size), (rows, columns)), shape=(n, n))
    pattern = ((lower + lower.T + scipy.sparse.identity(n, format="csr")) != 0).astype(np.float64)
    weights = np.random.default_rng(0).random(n)
    signature = np.stack([pattern @ weights, np.diff(pattern.indptr).astype(np.float64)], axis=1)
    _, group = np.unique(signature, axis=0, return_inverse=True)
    group = group.ravel()
    groups = int(group.max()) + 1 if n else 0
    merge = scipy.sparse.csr_matrix((np.ones(n), (group, np.arange(n))), shape=(groups, n))
    graph = (merge @ pattern @ merge.T).tocsr()
    graph.setdiag(0)
    graph.eliminate_zeros()
    graph.sort_indices()
    if graph.nnz == 0:  # no edges: any order
        return np.arange(n, dtype=np.int64)
    group_order, _ = pymetis.nested_dissection(pymetis.CSRAdjacency(
        graph.indptr.astype(np.int64), graph.indices.astype(np.int64)))
    position = np.empty(groups, dtype=np.int64)
    position[np.asarray(group_order, dtype=np.int64)] = np.arange(groups)
    return np.lexsort((np.arange(n), position[group])).astype(np.int64)
