"""Sparse symmetric positive-definite solves with a fixed sparsity pattern.

The stiffness matrix of one problem always has the same sparsity pattern; only its values change
from one design to the next. :class:`SymmetricSolver` therefore does the symbolic analysis
(fill-reducing ordering, elimination tree) once, and per matrix only the numeric factorization.

Backends:
    * ``"cholmod"``: CHOLMOD's supernodal Cholesky (Chen, Davis, Hager & Rajamanickam 2008) as
      bundled in the ``cvxopt`` wheel. CHOLMOD reads the LOWER triangle only. Its fill-reducing
      ordering is METIS nested dissection (:mod:`solvers.ordering`) or CHOLMOD's AMD, by default
      whichever gives the cheaper factor for the pattern (nested dissection needs 2-46 % fewer
      flops on the paper's tasks at 32x64-256x256, AMD 7-11 % fewer on MBB-beam meshes).
    * ``"superlu"``: SciPy's SuperLU with the MMD_AT_PLUS_A ordering, used only when cvxopt is
      missing (it is several times slower; a warning says so once per process).

Conventions: the pattern is the lower triangle (diagonal included) of an ``n x n`` matrix in
compressed sparse column (CSC) form with sorted row indices; ``data`` has one float64 value per
stored entry, in CSC order.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .ordering import ORDERINGS, nested_dissection

__all__ = ["SymmetricSolver", "SingularMatrixError", "available_backends"]


class SingularMatrixError(ValueError):
    """The matrix is singular or not positive definite (e.g. a structure free to move rigidly)."""


def available_backends() -> tuple[str, ...]:
    """Backends usable in this environment, fastest first."""
    try:
        import cvxopt.cholmod  # noqa: F401
    except ImportError:
        return ("superlu",)
    return ("cholmod", "superlu")


class SymmetricSolver:
    """Factorize-and-solve for SPD matrices sharing one lower-triangle CSC pattern.

    The most recent factorization is cached together with a copy of its values: solving again
    with the same ``data`` (the backward pass, Hessian-vector products) reuses it; new values
    replace it. The most recent one-dimensional solution is cached as well, with a copy of its
    right-hand side: solving the same matrix for an equal right-hand side returns a copy of it
    without a solve. The compliance's adjoint solve is such a repeat (its right-hand side is the
    load itself, compliance being self-adjoint), so a value-and-gradient costs one factorization
    and one solve; the answer is bit for bit the one a second solve would give.

    Args:
        indptr: int ``(n + 1,)`` CSC column pointers of the lower triangle.
        indices: int ``(nnz,)`` row indices, sorted within each column, all >= the column.
        backend: ``"cholmod"``, ``"superlu"`` or None for the fastest available.
        ordering: fill-reducing ordering of the CHOLMOD backend: ``"metis"`` (nested dissection
            of the pattern's nodes, :func:`solvers.ordering.nested_dissection`), ``"amd"``
            (CHOLMOD's), or ``"best"``: at the first factorization both are analysed and
            factored once, and the one whose factor needs fewer flops (sum of squared column
            counts of L, a function of the pattern only, so the choice is deterministic) is kept;
            None: ``"best"`` for CHOLMOD. SuperLU always uses its MMD_AT_PLUS_A ordering (None
            only).
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, backend: str | None = None,
                 ordering: str | None = None):
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.n = self.indptr.size - 1
        self.nnz = self.indices.size
        backends = available_backends()
        if backend is None:
            backend = backends[0]
            if backend != "cholmod":
                warnings.warn(
                    "cvxopt (which bundles CHOLMOD) is not installed: falling back to SuperLU, "
                    "which is several times slower. Install it with `pip install cvxopt`.",
                    RuntimeWarning, stacklevel=2)
        elif backend not in ("cholmod", "superlu"):
            raise ValueError(f"backend must be 'cholmod' or 'superlu', got {backend!r}")
        elif backend not in backends:
            raise ValueError(f"backend {backend!r} is not available here (have {backends})")
        self.backend = backend
        if ordering is not None and ordering not in (*ORDERINGS, "best"):
            raise ValueError(f"ordering must be one of {(*ORDERINGS, 'best')} or None; got "
                             f"{ordering!r}")
        if backend == "superlu" and ordering is not None:
            raise ValueError(f"ordering={ordering!r} applies to the CHOLMOD backend only; SuperLU "
                             "orders with MMD_AT_PLUS_A (pass ordering=None)")
        self.ordering = "best" if ordering is None and backend == "cholmod" else ordering
        self._columns = np.repeat(np.arange(self.n), np.diff(self.indptr))
        self._cached_data: np.ndarray | None = None
        self._solve = None
        self._symbolic = None
        self._cvx_matrix = None
        self._permutation: np.ndarray | None = None
        self._chosen_ordering: str | None = None
        self.num_factorizations = 0
        self.num_solves = 0  # solves done (a repeated right-hand side served from the cache: 0)
        self._cached_rhs: np.ndarray | None = None
        self._cached_solution: np.ndarray | None = None

    # -- factorization -------------------------------------------------------------------
    def _factorize(self, data: np.ndarray):
        if self.backend == "cholmod":
            return self._factorize_cholmod(data)
        return self._factorize_superlu(data)

    def _factorize_cholmod(self, data: np.ndarray):
        import cvxopt
        import cvxopt.cholmod

        if self._cvx_matrix is None:
            # Triplets given in CSC order, so the matrix's value array follows ``data``'s order.
            self._cvx_matrix = cvxopt.spmatrix(
                cvxopt.matrix(data), cvxopt.matrix(self.indices), cvxopt.matrix(self._columns),
                (self.n, self.n))
        else:
            self._cvx_matrix.V = cvxopt.matrix(data)
        if self._symbolic is None:
            self._symbolic = self._analyze_cholmod()
        factor = self._symbolic
        try:
            cvxopt.cholmod.numeric(self._cvx_matrix, factor)
        except ArithmeticError as error:
            self._symbolic = None  # CHOLMOD leaves a failed factor unusable
            raise SingularMatrixError(
                "the matrix is not positive definite (CHOLMOD failed at a pivot): "
                f"{error}") from None

        def solve(rhs: np.ndarray) -> np.ndarray:
            columns = np.ascontiguousarray(rhs, dtype=np.float64).reshape(self.n, -1, order="F")
            b = cvxopt.matrix(columns)
            cvxopt.cholmod.solve(factor, b)
            return np.array(b).reshape(np.shape(rhs), order="F")

        return solve

    def _analyze_cholmod(self):
        """CHOLMOD's symbolic factorization with :attr:`ordering`."""
        import cvxopt
        import cvxopt.cholmod

        if self.ordering == "best":
            if self._chosen_ordering is None:
                costs = {}
                for ordering in ("metis", "amd"):
                    factor = self._analyze_cholmod_with(ordering)
                    try:
                        cvxopt.cholmod.numeric(self._cvx_matrix, factor)
                    except ArithmeticError as error:
                        raise SingularMatrixError(
                            "the matrix is not positive definite (CHOLMOD failed at a pivot): "
                            f"{error}") from None
                    costs[ordering] = _factor_flops(factor)
                self._chosen_ordering = min(costs, key=costs.get)  # ties: metis
            return self._analyze_cholmod_with(self._chosen_ordering)
        return self._analyze_cholmod_with(self.ordering)

    @property
    def chosen_ordering(self) -> str | None:
        """The ordering in use: :attr:`ordering`, or for ``"best"`` the one it chose (None until
        the first factorization)."""
        return self._chosen_ordering if self.ordering == "best" else self.ordering

    def _analyze_cholmod_with(self, ordering: str):
        import cvxopt
        import cvxopt.cholmod

        if ordering == "amd":
            return cvxopt.cholmod.symbolic(self._cvx_matrix, uplo="L")
        if self._permutation is None:
            self._permutation = nested_dissection(self.indptr, self.indices)
        options = cvxopt.cholmod.options  # module-wide: set for this call only
        previous = options.get("nmethods")
        options["nmethods"] = 1  # use the given permutation, not the best of it and AMD
        try:
            return cvxopt.cholmod.symbolic(
                self._cvx_matrix, p=cvxopt.matrix(self._permutation.tolist(), tc="i"), uplo="L")
        finally:
            if previous is None:
                del options["nmethods"]
            else:
                options["nmethods"] = previous

    def _factorize_superlu(self, data: np.ndarray):
        lower = scipy.sparse.csc_matrix((data, self.indices, self.indptr), shape=(self.n, self.n))
        full = (lower + lower.T - scipy.sparse.diags(lower.diagonal())).tocsc()
        try:
            lu = scipy.sparse.linalg.splu(full, permc_spec="MMD_AT_PLUS_A")
        except RuntimeError as error:
            raise SingularMatrixError(f"the matrix is singular (SuperLU: {error})") from None
        return lu.solve

    # -- public ----------------------------------------------------------------------------
    def solve(self, data: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Solve ``K(data) u = rhs``.

        Args:
            data: float64 ``(nnz,)`` values of the lower triangle, CSC order.
            rhs: float64 ``(n,)`` or ``(n, k)``.

        Returns:
            float64 array of the shape of ``rhs``.

        Raises:
            SingularMatrixError: if the matrix is singular / not positive definite, or the
                solution is not finite.
        """
        data = np.asarray(data, dtype=np.float64)
        if data.shape != (self.nnz,):
            raise ValueError(f"data has shape {data.shape}, expected ({self.nnz},)")
        if self._solve is None or not np.array_equal(data, self._cached_data):
            self.clear()
            self._solve = self._factorize(data)
            self._cached_data = data.copy()
            self.num_factorizations += 1
        rhs = np.asarray(rhs, dtype=np.float64)
        if rhs.ndim == 1 and self._cached_rhs is not None and np.array_equal(rhs, self._cached_rhs):
            return self._cached_solution.copy()
        solution = self._solve(rhs)
        self.num_solves += 1
        if not np.all(np.isfinite(solution)):
            raise SingularMatrixError(
                "the solve produced non-finite values: the matrix is singular")
        if rhs.ndim == 1:
            self._cached_rhs, self._cached_solution = rhs.copy(), solution.copy()
        return solution

    def clear(self) -> None:
        """Forget the cached factorization and solution (the symbolic analysis is kept)."""
        self._solve = None
        self._cached_data = None
        self._cached_rhs = None
        self._cached_solution = None


def _factor_flops(factor) -> float:
    """Flops of a numeric CHOLMOD factor: sum over columns of L of the squared column count."""
    import cvxopt.cholmod

    counts = np.diff(np.asarray(cvxopt.cholmod.getfactor(factor).CCS[0]).ravel())
    return float(counts.astype(np.float64) @ counts.astype(np.float64))
