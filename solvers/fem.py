"""Bilinear (Q4) plane-stress finite elements on a regular grid, and the free-dof stiffness system.

Conventions (those of the paper's code and of Andreassen et al. 2011, "Efficient topology
optimization in MATLAB using 88 lines of code"):
    * Elements are unit squares; element ``(row, col)`` of an ``(H, W)`` design; its flat index is
      ``e = row * W + col`` (C order of the design image).
    * Node ``(col, row)`` has number ``n = (H + 1) * col + row``; dofs ``2n`` (x) and
      ``2n + 1`` (y).
    * Element nodes in the order upper-left, upper-right, lower-right, lower-left, so that the
      element dof vector is ``[2n1, 2n1+1, 2n2, 2n2+1, 2n3, 2n3+1, 2n4, 2n4+1]``.
    * Only free x free entries of the stiffness matrix are assembled; fixed dofs have zero
      displacement.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse

from .sparse_cholesky import SingularMatrixError, SymmetricSolver

__all__ = ["Material", "element_stiffness", "element_dofs", "StiffnessSystem",
           "SingularStiffnessError", "check_supports"]


class SingularStiffnessError(SingularMatrixError):
    """The structure's stiffness matrix is singular: its supports allow a rigid-body motion."""


@dataclasses.dataclass(frozen=True)
class Material:
    """Isotropic material of the modified SIMP model: E(x) = young_min + x^p (young - young_min)."""

    young: float = 1.0
    young_min: float = 1e-9
    poisson: float = 0.3

    def __post_init__(self):
        if not self.young > 0:
            raise ValueError(f"young must be > 0, got {self.young}")
        if not 0 < self.young_min < self.young:
            raise ValueError(f"young_min must be in (0, young), got {self.young_min}")
        if not -1 < self.poisson < 0.5:
            raise ValueError(f"poisson must be in (-1, 0.5), got {self.poisson}")


def element_stiffness(poisson: float = 0.3) -> np.ndarray:
    """Stiffness matrix of a unit-square Q4 element in plane stress with unit Young's modulus.

    Returns:
        float64 ``(8, 8)`` symmetric matrix, dof order as in the module docstring
        (the matrix ``KE`` of the 88-line code).
    """
    nu = poisson
    k = np.array([1 / 2 - nu / 6, 1 / 8 + nu / 8, -1 / 4 - nu / 12, -1 / 8 + 3 * nu / 8,
                  -1 / 4 + nu / 12, -1 / 8 - nu / 8, nu / 6, 1 / 8 - 3 * nu / 8])
    # Which entry of k sits at (i, j): the matrix is fixed by the element's symmetries.
    pattern = np.array([
        [0, 1, 2, 3, 4, 5, 6, 7],
        [1, 0, 7, 6, 5, 4, 3, 2],
        [2, 7, 0, 5, 6, 3, 4, 1],
        [3, 6, 5, 0, 7, 2, 1, 4],
        [4, 5, 6, 7, 0, 1, 2, 3],
        [5, 4, 3, 2, 1, 0, 7, 6],
        [6, 3, 4, 1, 2, 7, 0, 5],
        [7, 2, 1, 4, 3, 6, 5, 0]])
    return k[pattern] / (1 - nu ** 2)


def element_dofs(height: int, width: int) -> np.ndarray:
    """Global dof numbers of every element.

    Returns:
        int64 ``(height * width, 8)``; row ``e = row * width + col``.
    """
    row, col = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    row, col = row.ravel(), col.ravel()
    n1 = (height + 1) * col + row
    n2 = (height + 1) * (col + 1) + row
    n3 = n2 + 1
    n4 = n1 + 1
    return np.stack([2 * n1, 2 * n1 + 1, 2 * n2, 2 * n2 + 1,
                     2 * n3, 2 * n3 + 1, 2 * n4, 2 * n4 + 1], axis=1).astype(np.int64)


def check_supports(height: int, width: int, fixed_dofs: np.ndarray) -> None:
    """Raise :class:`SingularStiffnessError` unless the supports exclude every rigid-body motion.

    A planar rigid motion is u = (a - c y, b + c x); each fixed dof imposes one linear equation on
    (a, b, c). The supports are sufficient exactly when these equations have rank 3.
    """
    fixed_dofs = np.asarray(fixed_dofs, dtype=np.int64)
    node, direction = np.divmod(fixed_dofs, 2)
    x, y = np.divmod(node, height + 1)  # column, row
    rows = np.where(direction[:, None] == 0,
                    np.stack([np.ones_like(x), np.zeros_like(x), -y], 1),
                    np.stack([np.zeros_like(x), np.ones_like(x), x], 1)).astype(float)
    rank = np.linalg.matrix_rank(rows) if rows.size else 0
    if rank < 3:
        free = {0: "translation", 1: "translation and rotation", 2: "rotation"}.get(rank, "motion")
        raise SingularStiffnessError(
            f"the supports do not prevent rigid-body {free} ({fixed_dofs.size} fixed dofs, "
            f"rank {rank} of 3): fix at least one x dof, one y dof, and a third dof that stops "
            "rotation (e.g. another x dof in a different row)")


class StiffnessSystem:
    """The free x free stiffness matrix of one mesh as a function of the element moduli.

    The sparsity pattern, the map from element moduli to the stored lower-triangle values and the
    symbolic Cholesky analysis are computed once; :meth:`solve` then costs one numeric
    factorization per new set of moduli (cached) plus triangular solves.

    Args:
        height, width: design size (elements).
        fixed_dofs: int array of fixed global dofs.
        poisson: Poisson's ratio of the element stiffness.
        backend: sparse solver backend (see :class:`SymmetricSolver`).

    Attributes:
        ke: float64 ``(8, 8)`` element stiffness for E = 1.
        free_dofs: int64 ``(n_free,)`` global numbers of the free dofs, ascending.
        element_free_dofs: int64 ``(n_elements, 8)``: free-dof index of each element dof, or
            ``n_free`` for a fixed dof (index into a vector padded with one trailing zero).
        assembly: ``scipy.sparse.csr_matrix`` ``(nnz, n_elements)`` mapping element moduli to the
            stored lower-triangle values.
    """

    def __init__(self, height: int, width: int, fixed_dofs: np.ndarray, *, poisson: float = 0.3,
                 backend: str | None = None):
        check_supports(height, width, fixed_dofs)
        self.height, self.width = height, width
        self.num_elements = height * width
        num_dofs = 2 * (height + 1) * (width + 1)
        self.ke = element_stiffness(poisson)
        free = np.ones(num_dofs, dtype=bool)
        free[np.asarray(fixed_dofs, dtype=np.int64)] = False
        self.free_dofs = np.flatnonzero(free)
        self.num_free = self.free_dofs.size
        index = np.full(num_dofs, self.num_free, dtype=np.int64)
        index[self.free_dofs] = np.arange(self.num_free)
        self.element_free_dofs = index[element_dofs(height, width)]

        # Every (element, a, b) contribution E_e * ke[a, b] that lands in the free lower triangle.
        a, b = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
        rows = self.element_free_dofs[:, a.ravel()]           # (n_elements, 64)
        cols = self.element_free_dofs[:, b.ravel()]
        keep = (rows < self.num_free) & (cols < self.num_free) & (rows >= cols)
        element = np.broadcast_to(np.arange(self.num_elements)[:, None], rows.shape)[keep]
        values = np.broadcast_to(self.ke.ravel()[None, :], rows.shape)[keep]
        rows, cols = rows[keep], cols[keep]
        # CSC order of the lower triangle: sort by (column, row).
        key = cols * self.num_free + rows
        unique_keys, entry = np.unique(key, return_inverse=True)
        entry_cols, entry_rows = np.divmod(unique_keys, self.num_free)
        self.nnz = unique_keys.size
        self.assembly = scipy.sparse.csr_matrix(
            (values, (entry, element)), shape=(self.nnz, self.num_elements))
        self.assembly.sum_duplicates()
        indptr = np.searchsorted(entry_cols, np.arange(self.num_free + 1))
        self._entry_rows, self._entry_cols = entry_rows, entry_cols
        self.solver = SymmetricSolver(indptr, entry_rows, backend=backend)

    def matrix_values(self, moduli: np.ndarray) -> np.ndarray:
        """Lower-triangle CSC values ``(nnz,)`` of K for element moduli ``(n_elements,)``."""
        return self.assembly @ moduli

    def dense_matrix(self, moduli: np.ndarray) -> np.ndarray:
        """The full symmetric free x free matrix as a dense array (small meshes, tests)."""
        values = self.matrix_values(moduli)
        k = np.zeros((self.num_free, self.num_free))
        k[self._entry_rows, self._entry_cols] = values
        k[self._entry_cols, self._entry_rows] = values
        return k

    def solve(self, moduli: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Solve ``K(moduli) u = rhs`` on the free dofs (cached factorization).

        Args:
            moduli: float64 ``(n_elements,)`` Young's modulus of each element.
            rhs: float64 ``(n_free,)`` or ``(n_free, k)``.
        """
        try:
            return self.solver.solve(self.matrix_values(moduli), rhs)
        except SingularMatrixError as error:
            raise SingularStiffnessError(
                f"the stiffness matrix is singular or indefinite ({error}); check that every "
                "element modulus is positive and finite") from None

    def gather(self, free_vector: np.ndarray) -> np.ndarray:
        """Element dof values ``(n_elements, 8)`` of a free-dof vector (zero at fixed dofs)."""
        padded = np.concatenate([free_vector, np.zeros(1, dtype=free_vector.dtype)])
        return padded[self.element_free_dofs]
