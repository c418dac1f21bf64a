"""Curvature as matrix-free operators: the exact Hessian and the L-BFGS quasi-Newton matrices.

Conventions:
    * Every operator is a :class:`scipy.sparse.linalg.LinearOperator` of shape ``(n, n)`` and dtype
      float64 acting on flat parameter vectors (see :mod:`solvers.flat`); all are symmetric, so
      ``rmatvec`` is ``matvec``.
    * Correction pairs are given as arrays ``s, y`` of shape ``(p, n)``, one pair per ROW, oldest
      first (the layout of :class:`solvers.result.OptimizationResult`). Internally the column
      matrices ``S = s.T`` and ``Y = y.T`` of Byrd, Nocedal & Schnabel (1994) are used.

References:
    R. H. Byrd, J. Nocedal, R. B. Schnabel, "Representations of quasi-Newton matrices and their use
    in limited memory methods", Math. Programming 63 (1994): Theorem 2.2 (inverse, eq. 2.6) and
    Theorem 2.3 (direct, eq. 2.17), with ``B0 = theta I`` as in L-BFGS-B (Byrd, Lu, Nocedal & Zhu
    1995, and thesis Appendix B.4).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator

from solvers.flat import FlatObjective

__all__ = ["HessianOperator", "LBFGSMatrix", "dense_matrix"]

_MAX_DENSE_SIZE = 8192


class HessianOperator(LinearOperator):
    """The Hessian of a flat objective at a fixed point, as a symmetric ``LinearOperator``.

    Each product calls ``objective.hvp(theta, v)`` once and increments :attr:`num_products`
    (a block product ``H @ V`` with ``V`` of shape ``(n, k)`` costs ``k`` products).

    Args:
        objective: any :class:`solvers.flat.FlatObjective`.
        theta: the point, float64 ``(objective.size,)``; a private read-only copy is kept.

    Attributes:
        objective: the objective.
        theta: float64 ``(n,)`` read-only copy of the point.
        num_products: number of Hessian-vector products evaluated so far.
    """

    def __init__(self, objective: FlatObjective, theta: np.ndarray):
        theta = np.array(theta, dtype=np.float64, copy=True)
        if theta.shape != (objective.size,):
            raise ValueError(
                f"theta has shape {theta.shape}; expected ({objective.size},) for this objective")
        theta.setflags(write=False)
        super().__init__(dtype=np.dtype(np.float64), shape=(objective.size, objective.size))
        self.objective = objective
        self.theta = theta
        self.num_products = 0

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        self.num_products += 1
        product = np.asarray(self.objective.hvp(self.theta, v), dtype=np.float64)
        if product.shape != (self.shape[0],):
            raise ValueError(f"objective.hvp returned shape {product.shape}; expected "
                             f"({self.shape[0]},)")
        return product

    def _rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._matvec(v)

    def _adjoint(self) -> "HessianOperator":
        return self


def dense_matrix(operator: LinearOperator, max_size: int = _MAX_DENSE_SIZE) -> np.ndarray:
    """Materialize a square operator column by column (``n`` products): for small ``n`` only.

    Args:
        operator: square ``LinearOperator`` of shape ``(n, n)``.
        max_size: refuse ``n`` above this, to avoid an accidental ``n x n`` allocation.

    Returns:
        float64 ``(n, n)``, column ``j`` = ``operator @ e_j``.
    """
    n, m = operator.shape
    if n != m:
        raise ValueError(f"operator must be square, got shape {operator.shape}")
    if n > max_size:
        raise ValueError(f"n = {n} exceeds max_size = {max_size}; raise max_size explicitly if "
                         "an n x n float64 array is really wanted")
    identity = np.eye(n)
    return np.column_stack([operator.matvec(identity[:, j]) for j in range(n)])


def _symmetric_operator(n: int, product: Callable[[np.ndarray], np.ndarray]) -> LinearOperator:
    """A symmetric float64 ``LinearOperator`` with block product ``product((n, k)) -> (n, k)``."""

    def matvec(v):
        return product(np.asarray(v, dtype=np.float64).reshape(n, 1))[:, 0]

    def matmat(block):
        return product(np.asarray(block, dtype=np.float64).reshape(n, -1))

    return LinearOperator((n, n), matvec=matvec, rmatvec=matvec, matmat=matmat,
                          rmatmat=matmat, dtype=np.float64)


class LBFGSMatrix:
    """The L-BFGS Hessian approximation ``B`` and its inverse ``H`` in compact form.

    With ``S``, ``Y`` the ``n x m`` matrices of the kept pairs (oldest column first),
    ``S^T Y = L + D + R`` (``L`` strictly lower, ``D`` diagonal, ``R`` upper triangle with the
    diagonal), ``theta = y^T y / s^T y`` of the NEWEST pair and ``gamma = 1 / theta``:

        B = theta I - W M W^T,  W = [Y, theta S],  M = [[-D, L^T], [L, theta S^T S]]^{-1}
        H = gamma I + [S, gamma Y] [[R^{-T} (D + gamma Y^T Y) R^{-1}, -R^{-T}], [-R^{-1}, 0]]
            [S^T; gamma Y^T]

    (Byrd, Nocedal & Schnabel 1994, eqs. 2.17 and 2.6). ``B`` equals ``m`` recursive BFGS updates
    of ``theta I`` with the pairs in chronological order, and ``H = B^{-1}``. With no pairs
    (``s`` and ``y`` of shape ``(0, n)``), ``theta = 1`` and ``B = H = I`` exactly: the matrix
    L-BFGS-B uses for its first step (along the negative gradient), so a run's matrix at iterate
    0 is well defined; every product and ``dense_B``/``dense_H`` work as for ``m >= 1``.

    Args:
        s: float64 ``(p, n)``, ``s_j = x_{k+1} - x_k``, one pair per row, oldest first.
        y: float64 ``(p, n)``, ``y_j = g_{k+1} - g_k``, same layout.
        memory: keep only the newest ``memory`` pairs (``None`` keeps all ``p``).

    Raises:
        ValueError: on mismatched shapes, empty 1-D arrays (no size ``n``), non-finite entries,
            or a pair with ``s^T y <= 0`` (such pairs are never accepted by L-BFGS-B and make
            ``B`` indefinite).

    Attributes:
        num_pairs: ``m``, the number of pairs kept.
        size: ``n``.
        theta: the scaling of ``B0 = theta I``.
        gamma: ``1 / theta``, the scaling of ``H0``.
        s, y: float64 ``(m, n)`` kept pairs (read-only).
        B, H: symmetric ``LinearOperator`` s of shape ``(n, n)``.
    """

    def __init__(self, s: np.ndarray, y: np.ndarray, memory: int | None = None):
        s, y = np.asarray(s, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if s.size == 0 and (s.ndim < 2 or y.ndim < 2):
            raise ValueError(f"no pairs, but no size either (s has shape {s.shape}, y "
                             f"{y.shape}): give s and y of shape (0, n) for the identity B = H = "
                             f"I of size n")
        s, y = np.atleast_2d(s), np.atleast_2d(y)
        if s.ndim != 2 or s.shape != y.shape:
            raise ValueError(f"s and y must both be (p, n) arrays of the same shape, got {s.shape} "
                             f"and {y.shape}")
        if memory is not None:
            if memory < 1:
                raise ValueError(f"memory must be >= 1 (or None to keep all pairs), got {memory}")
            s, y = s[-memory:], y[-memory:]
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(y))):
            raise ValueError("correction pairs contain non-finite values")
        s, y = s.copy(), y.copy()
        s.setflags(write=False)
        y.setflags(write=False)
        self.s, self.y = s, y
        self.num_pairs, self.size = s.shape
        if self.size == 0:
            raise ValueError("pairs must have at least one coordinate (n >= 1)")
        sty = s @ y.T                                   # (S^T Y)_{ij} = s_i . y_j
        curvature = np.diag(sty).copy()
        if np.any(curvature <= 0):
            bad = np.flatnonzero(curvature <= 0).tolist()
            raise ValueError(f"pairs {bad} (among the kept ones) have s^T y <= 0; L-BFGS only "
                             "stores pairs with positive curvature")
        if self.num_pairs:
            self.theta = float(y[-1] @ y[-1] / curvature[-1])
        else:
            self.theta = 1.0
        self.gamma = 1.0 / self.theta
        self._lower = np.tril(sty, -1)                  # L
        self._diag = curvature                          # diag of D
        self._upper = np.triu(sty)                      # R
        self._sts = s @ s.T
        self._yty = y @ y.T
        if self.num_pairs:
            middle = np.block([[-np.diag(curvature), self._lower.T],
                               [self._lower, self.theta * self._sts]])
            self._middle_lu = scipy.linalg.lu_factor(middle)
        self.B = _symmetric_operator(self.size, self._apply_b)
        self.H = _symmetric_operator(self.size, self._apply_h)

    @classmethod
    def at_iterate(cls, s_pairs: np.ndarray, y_pairs: np.ndarray, pair_iterations: np.ndarray,
                   k: int, memory: int = 10) -> "LBFGSMatrix":
        """The matrix L-BFGS used to choose its step from iterate ``k``.

        Uses the newest ``memory`` pairs whose newer end point is iterate ``k`` or earlier, i.e.
        ``pair_iterations[j] <= k`` where ``pair_iterations[j]`` is the iterate index of the
        pair's newer end point ``x_{k'+1}`` (see :mod:`solvers.result`).

        Args:
            s_pairs, y_pairs: float64 ``(p, n)`` all accepted pairs of a run, oldest first.
            pair_iterations: int ``(p,)``, non-decreasing.
            k: iterate index (0 = starting point, which has no pairs: ``B = I``).
            memory: the optimizer's memory ``m``.
        """
        s_pairs = np.atleast_2d(np.asarray(s_pairs, dtype=np.float64))
        y_pairs = np.atleast_2d(np.asarray(y_pairs, dtype=np.float64))
        pair_iterations = np.asarray(pair_iterations).reshape(-1)
        if pair_iterations.shape[0] != s_pairs.shape[0]:
            raise ValueError(f"pair_iterations has {pair_iterations.shape[0]} entries for "
                             f"{s_pairs.shape[0]} pairs")
        if np.any(np.diff(pair_iterations) < 0):
            raise ValueError("pair_iterations must be non-decreasing (pairs oldest first)")
        if k < 0:
            raise ValueError(f"iterate index k must be >= 0, got {k}")
        if memory < 1:
            raise ValueError(f"memory must be >= 1, got {memory}")
        count = int(np.searchsorted(pair_iterations, k, side="right"))
        start = max(0, count - memory)
        return cls(s_pairs[start:count], y_pairs[start:count])

    # -- products -------------------------------------------------------------------------------

    def _apply_b(self, block: np.ndarray) -> np.ndarray:
        """``B @ block`` for ``block`` of shape ``(n, k)``."""
        out = self.theta * block
        if self.num_pairs:
            w_t_v = np.vstack([self.y @ block, self.theta * (self.s @ block)])    # W^T V, (2m, k)
            coefficients = scipy.linalg.lu_solve(self._middle_lu, w_t_v)
            m = self.num_pairs
            out -= self.y.T @ coefficients[:m] + self.theta * (self.s.T @ coefficients[m:])
        return out

    def _apply_h(self, block: np.ndarray) -> np.ndarray:
        """``H @ block`` for ``block`` of shape ``(n, k)``."""
        out = self.gamma * block
        if self.num_pairs:
            s_t_v = self.s @ block                                                # (m, k)
            y_t_v = self.gamma * (self.y @ block)                                 # gamma Y^T V
            r_inv_s = scipy.linalg.solve_triangular(self._upper, s_t_v)          # R^{-1} S^T V
            inner = (self._diag[:, None] * r_inv_s
                     + self.gamma * (self._yty @ r_inv_s) - y_t_v)
            top = scipy.linalg.solve_triangular(self._upper, inner, trans="T")   # R^{-T} (...)
            bottom = -r_inv_s
            out += self.s.T @ top + self.gamma * (self.y.T @ bottom)
        return out

    def direction(self, gradient: np.ndarray) -> np.ndarray:
        """The quasi-Newton search direction ``-H g``, float64 ``(n,)``."""
        gradient = np.asarray(gradient, dtype=np.float64)
        if gradient.shape != (self.size,):
            raise ValueError(f"gradient has shape {gradient.shape}; expected ({self.size},)")
        return -self.H.matvec(gradient)

    def dense_B(self, max_size: int = _MAX_DENSE_SIZE) -> np.ndarray:
        """``B`` as a float64 ``(n, n)`` array (formed from the compact factors; small ``n``)."""
        self._check_dense(max_size)
        return self._apply_b(np.eye(self.size))

    def dense_H(self, max_size: int = _MAX_DENSE_SIZE) -> np.ndarray:
        """``H = B^{-1}`` as a float64 ``(n, n)`` array (small ``n``)."""
        self._check_dense(max_size)
        return self._apply_h(np.eye(self.size))

    def _check_dense(self, max_size: int) -> None:
        if self.size > max_size:
            raise ValueError(f"n = {self.size} exceeds max_size = {max_size}; use the B/H "
                             "operators, or raise max_size explicitly")
