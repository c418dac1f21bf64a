"""The symmetric Lanczos process and extreme eigenpairs of matrix-free symmetric operators.

Conventions:
    * ``op`` is any symmetric :class:`scipy.sparse.linalg.LinearOperator` (or anything with
      ``shape`` and ``matvec``), float64, shape ``(n, n)``.
    * After ``m`` steps from a unit vector ``q_1``, ``A Q_m = Q_m T_m + beta_m q_{m+1} e_m^T`` with
      ``Q_m`` of shape ``(n, m)`` (orthonormal columns) and ``T_m = tridiag(betas, alphas, betas)``.

References:
    C. Lanczos (1950); G. H. Golub & C. F. Van Loan, "Matrix Computations", 4th ed., Algorithm
    10.1.1 (Lanczos) and Section 10.3.1 (complete reorthogonalization; "twice is enough",
    Parlett 1998 Section 6.9). Loss of orthogonality without reorthogonalization produces "ghost"
    copies of converged Ritz values (Paige 1971; Parlett 1998 Chapter 13).
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
from scipy.sparse.linalg import LinearOperator, aslinearoperator

__all__ = ["LanczosResult", "EigenResult", "lanczos", "top_eigenvalues", "as_generator"]


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from an int seed or a Generator (None is refused)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a numpy.random.Generator, got {seed!r}: "
                        "randomness is explicit in this library")
    return np.random.default_rng(int(seed))


@dataclasses.dataclass(frozen=True)
class LanczosResult:
    """What ``m`` Lanczos steps produced.

    Attributes:
        alphas: float64 ``(m,)``, diagonal of ``T_m``.
        betas: float64 ``(m - 1,)``, off-diagonal of ``T_m``.
        residual_norm: ``beta_m = |A q_m - alpha_m q_m - beta_{m-1} q_{m-1}|`` after the last step
            (the norm that would have become the next off-diagonal); ~0 on breakdown.
        invariant_subspace: True if the process stopped early because ``beta`` fell below the
            breakdown tolerance (``span Q_m`` is then an invariant subspace of ``A`` to working
            precision, and the Ritz values are exact eigenvalues).
        requested_steps: the number of steps asked for; ``m <= requested_steps``.
        basis: float64 ``(n, m)`` Lanczos vectors ``Q_m`` if ``keep_basis`` was set, else None.
        start: float64 ``(n,)`` the unit start vector ``q_1``.
    """

    alphas: np.ndarray
    betas: np.ndarray
    residual_norm: float
    invariant_subspace: bool
    requested_steps: int
    basis: np.ndarray | None
    start: np.ndarray

    @property
    def steps(self) -> int:
        """``m``, the number of steps actually taken."""
        return int(self.alphas.shape[0])

    def tridiagonal(self) -> np.ndarray:
        """``T_m`` as a dense float64 ``(m, m)`` array."""
        return np.diag(self.alphas) + np.diag(self.betas, 1) + np.diag(self.betas, -1)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigen-decomposition of ``T_m`` (symmetric tridiagonal solver).

        Returns:
            ``(values (m,), vectors (m, m))``, values ascending, ``vectors[:, k]`` the eigenvector
            of ``T_m`` for ``values[k]`` (Ritz vector = ``basis @ vectors[:, k]``).
        """
        if self.steps == 1:
            return self.alphas.copy(), np.ones((1, 1))
        return scipy.linalg.eigh_tridiagonal(self.alphas, self.betas)


@dataclasses.dataclass(frozen=True)
class EigenResult:
    """Extreme eigenpairs of a symmetric operator.

    Attributes:
        eigenvalues: float64 ``(k,)``, ordered from the most extreme inward (descending for
            ``which='largest'``, ascending for ``'smallest'``, by decreasing magnitude for
            ``'magnitude'``).
        eigenvectors: float64 ``(n, k)``, unit columns matching ``eigenvalues``.
        residuals: float64 ``(k,)``, ``|A v - lambda v|`` (unit ``v``), recomputed with ``k``
            extra products.
        num_products: operator products used, residuals included.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    residuals: np.ndarray
    num_products: int


def _check_square(op) -> int:
    shape = getattr(op, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"operator must be square (n, n), got shape {shape}")
    return int(shape[0])


def lanczos(op: LinearOperator, steps: int, seed: int | np.random.Generator | None = None,
            reorthogonalize: bool = True, start: np.ndarray | None = None,
            keep_basis: bool = False, breakdown_tol: float = 1e-12) -> LanczosResult:
    """Run ``steps`` steps of symmetric Lanczos (Golub & Van Loan, Algorithm 10.1.1).

    With ``reorthogonalize=True`` every new vector is orthogonalized against all previous
    Lanczos vectors by classical Gram-Schmidt, repeated once when the first pass cancelled more
    than 1 - 1/sqrt(2) of its norm (full reorthogonalization, "twice is enough"); this
    stores the basis (``n * steps`` floats). Without it only three vectors are kept (unless
    ``keep_basis``), and in finite precision converged Ritz values reappear as spurious copies.

    Args:
        op: symmetric operator ``(n, n)``.
        steps: number of steps ``m >= 1``; with reorthogonalization at most ``n``.
        seed: int or Generator for the Gaussian start vector (ignored when ``start`` is given).
        reorthogonalize: full reorthogonalization (one or two Gram-Schmidt passes).
        start: optional start vector ``(n,)`` (normalized here; must be nonzero).
        keep_basis: return ``Q_m`` ``(n, m)`` in :attr:`LanczosResult.basis`.
        breakdown_tol: stop early when ``beta_j <= breakdown_tol * max(|T|)``, i.e. when an
            invariant subspace has been found to working precision.

    Returns:
        A :class:`LanczosResult` (``m = steps`` unless it broke down early).
    """
    n = _check_square(op)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps must be an integer, got {steps!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if reorthogonalize and steps > n:
        raise ValueError(f"with reorthogonalization at most n = {n} orthogonal Lanczos vectors "
                         f"exist; got steps = {steps}")
    if start is None:
        if seed is None:
            raise ValueError("give a seed (int or Generator) or an explicit start vector")
        start = as_generator(seed).standard_normal(n)
    start = np.asarray(start, dtype=np.float64).reshape(-1)
    if start.shape != (n,):
        raise ValueError(f"start has shape {start.shape}; expected ({n},)")
    start_norm = np.linalg.norm(start)
    if not np.isfinite(start_norm) or start_norm == 0:
        raise ValueError("start vector must be finite and nonzero")
    q = start / start_norm

    store = reorthogonalize or keep_basis
    basis_rows = np.empty((steps, n)) if store else None     # row j = q_{j+1}
    alphas, betas = [], []
    q_previous, beta_previous = np.zeros(n), 0.0
    scale = 0.0
    residual_norm, breakdown = 0.0, False
    for j in range(steps):
        if store:
            basis_rows[j] = q
        w = np.asarray(op.matvec(q), dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(w)):
            raise ValueError(
                f"the operator's product with Lanczos vector {j + 1} is not finite (NaN or inf); "
                "the curvature at this point is undefined (e.g. the loss itself is not finite)")
        alpha = float(q @ w)
        w = w - alpha * q - beta_previous * q_previous
        if reorthogonalize:
            # Classical Gram-Schmidt against all kept vectors; a second pass only when the first
            # removed most of w ("twice is enough" with Kahan's criterion, Parlett 1998 Section
            # 6.9). Each pass reads the whole basis, the dominant cost besides the products.
            kept = basis_rows[:j + 1]
            norm_before = np.linalg.norm(w)
            w -= kept.T @ (kept @ w)
            if np.linalg.norm(w) < _SECOND_PASS_RATIO * norm_before:
                w -= kept.T @ (kept @ w)
        beta = float(np.linalg.norm(w))
        alphas.append(alpha)
        scale = max(scale, abs(alpha), beta_previous, beta)
        residual_norm = beta
        if j == steps - 1:
            break
        if beta <= breakdown_tol * scale:
            breakdown = True
            break
        betas.append(beta)
        q_previous, q, beta_previous = q, w / beta, beta

    m = len(alphas)
    basis = basis_rows[:m].T.copy() if keep_basis else None
    return LanczosResult(alphas=np.array(alphas), betas=np.array(betas),
                         residual_norm=residual_norm, invariant_subspace=breakdown,
                         requested_steps=steps, basis=basis, start=start / start_norm)


_SECOND_PASS_RATIO = 1 / np.sqrt(2)


class _CountingOperator(LinearOperator):
    """Wraps an operator and counts its matrix-vector products (one per column)."""

    def __init__(self, op: LinearOperator):
        super().__init__(dtype=np.dtype(np.float64), shape=op.shape)
        self._op = op
        self.count = 0

    def _matvec(self, v):
        self.count += 1
        return np.asarray(self._op.matvec(np.asarray(v, dtype=np.float64).reshape(-1)),
                          dtype=np.float64)

    def _rmatvec(self, v):
        return self._matvec(v)


_WHICH = {"largest": "LA", "smallest": "SA", "magnitude": "LM"}


def top_eigenvalues(op: LinearOperator, k: int, seed: int | np.random.Generator,
                    which: Literal["largest", "smallest", "magnitude"] = "largest",
                    tol: float = 0.0, max_iterations: int | None = None,
                    num_lanczos_vectors: int | None = None) -> EigenResult:
    """The ``k`` most extreme eigenpairs of a symmetric operator (implicitly restarted Lanczos).

    Uses ARPACK through :func:`scipy.sparse.linalg.eigsh` with a seeded Gaussian start vector, so
    results are reproducible; residuals are recomputed independently of ARPACK.

    Args:
        op: symmetric operator ``(n, n)``.
        k: number of eigenpairs, ``1 <= k < n``.
        seed: int or Generator for the start vector.
        which: ``'largest'`` (algebraic), ``'smallest'`` (algebraic) or ``'magnitude'``.
        tol: ARPACK relative accuracy (0 = machine precision).
        max_iterations: ARPACK restart limit (None = its default, ``10 n``).
        num_lanczos_vectors: ARPACK ``ncv`` (None = its default ``max(2k + 1, 20)``, capped at n).

    Returns:
        :class:`EigenResult`.
    """
    n = _check_square(op)
    if which not in _WHICH:
        raise ValueError(f"which must be one of {sorted(_WHICH)}, got {which!r}")
    if not 1 <= k < n:
        raise ValueError(f"k must satisfy 1 <= k < n = {n}, got {k}; for k >= n form the dense "
                         "matrix and use numpy.linalg.eigh")
    counting = _CountingOperator(aslinearoperator(op))
    start = as_generator(seed).standard_normal(n)
    values, vectors = scipy.sparse.linalg.eigsh(counting, k=k, which=_WHICH[which], v0=start,
                                                tol=tol, maxiter=max_iterations,
                                                ncv=num_lanczos_vectors)
    if which == "largest":
        order = np.argsort(values)[::-1]
    elif which == "smallest":
        order = np.argsort(values)
    else:
        order = np.argsort(np.abs(values))[::-1]
    values, vectors = values[order], vectors[:, order]
    vectors = vectors / np.linalg.norm(vectors, axis=0)
    images = np.column_stack([counting.matvec(vectors[:, i]) for i in range(k)])
    residuals = np.linalg.norm(images - vectors * values, axis=0)
    return EigenResult(eigenvalues=values, eigenvectors=vectors, residuals=residuals,
                       num_products=counting.count)
