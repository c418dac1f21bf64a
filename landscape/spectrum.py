"""Eigenvalue density and spectral sums by Stochastic Lanczos Quadrature (SLQ).

For a symmetric ``A`` (n x n) and a unit start vector ``v``, ``m`` Lanczos steps give
``T_m = Y diag(theta) Y^T``; the Gauss quadrature rule with nodes ``theta_k`` and weights
``tau_k^2 = Y[0, k]^2`` (squared FIRST components, summing to 1) satisfies
``v^T A^j v = sum_k tau_k^2 theta_k^j`` exactly for ``j < 2m`` (in exact arithmetic; also with
finite-precision Lanczos without reorthogonalization, to rounding). With ``v`` uniformly random
(``E[v v^T] = I / n``), ``tr f(A) ~= (n / n_v) sum_l sum_k tau_k^(l)2 f(theta_k^(l))`` and the
spectral density ``phi(t) = (1/n) sum_i delta(t - lambda_i)`` is approximated by Gaussian
kernels at the nodes.

Conventions: ``nodes`` and ``weights`` are float64 ``(num_runs, m)``, row ``l`` one run; runs that
broke down after ``m_l < m`` steps are padded with weight 0 (node = the run's last node).

References:
    G. H. Golub & G. Meurant, "Matrices, Moments and Quadrature with Applications" (2010);
    S. Ubaru, J. Chen, Y. Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos quadrature",
    SIAM J. Matrix Anal. Appl. 38 (2017); B. Ghorbani, S. Krishnan, Y. Xiao, "An investigation
    into neural net optimization via Hessian eigenvalue density", ICML 2019 (Section 3).
    Thesis settings (Appendix B.5): 3 runs, 50 steps, kernel variance 1e-4 (sigma = 1e-2).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from scipy.sparse.linalg import LinearOperator

from landscape.lanczos import LanczosResult, as_generator, lanczos

__all__ = ["Spectrum", "slq", "spectrum_from_lanczos"]


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """Gauss quadrature rules from several Lanczos runs on one operator.

    Attributes:
        nodes: float64 ``(num_runs, m)`` Ritz values of each run, ascending.
        weights: float64 ``(num_runs, m)`` squared first components of the eigenvectors of
            ``T``; each row sums to 1.
        dimension: ``n``, the operator's size (scales trace-type sums).
        steps_per_run: int ``(num_runs,)``, Lanczos steps each run actually took (<= m).
    """

    nodes: np.ndarray
    weights: np.ndarray
    dimension: int
    steps_per_run: np.ndarray

    def __post_init__(self):
        if self.nodes.ndim != 2 or self.nodes.shape != self.weights.shape:
            raise ValueError(f"nodes and weights must be (num_runs, m) arrays of equal shape, got "
                             f"{self.nodes.shape} and {self.weights.shape}")
        if self.dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {self.dimension}")

    @property
    def num_runs(self) -> int:
        return int(self.nodes.shape[0])

    def density(self, grid: np.ndarray, sigma: float) -> np.ndarray:
        """Smoothed eigenvalue density ``phi(t) = (1/n_v) sum_l sum_k tau^2 g_sigma(t - theta)``.

        Args:
            grid: float64 ``(g,)`` points ``t``.
            sigma: the STANDARD DEVIATION of the Gaussian kernel
                ``g_sigma(x) = exp(-x^2 / (2 sigma^2)) / (sigma sqrt(2 pi))`` (not its variance;
                the thesis's variance 1e-4 is ``sigma = 1e-2``).

        Returns:
            float64 ``(g,)``; integrates to 1 over the real line.
        """
        if not sigma > 0:
            raise ValueError(f"sigma (kernel standard deviation) must be > 0, got {sigma}")
        grid = np.asarray(grid, dtype=np.float64)
        if grid.ndim != 1:
            raise ValueError(f"grid must be 1-D, got shape {grid.shape}")
        nodes, weights = self.nodes.ravel(), self.weights.ravel()
        total = np.zeros(grid.shape)
        for start in range(0, nodes.size, 256):                       # bounded memory
            diff = grid[:, None] - nodes[None, start:start + 256]
            kernel = np.exp(-0.5 * (diff / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))
            total += kernel @ weights[start:start + 256]
        return total / self.num_runs

    def trace_function(self, function: Callable[[np.ndarray], np.ndarray]) -> float:
        """Estimate ``tr f(A) ~= (n / n_v) sum_l sum_k tau^2 f(theta)``; ``f`` is elementwise."""
        values = np.asarray(function(self.nodes), dtype=np.float64)
        return float(self.dimension * np.sum(self.weights * values) / self.num_runs)

    def trace(self) -> float:
        """Estimate of ``tr A``."""
        return self.trace_function(lambda x: x)

    def frobenius_norm(self) -> float:
        """Estimate of ``|A|_F = sqrt(tr A^2)`` (returns the norm, not its square)."""
        return float(np.sqrt(max(self.trace_function(np.square), 0.0)))

    def moments(self, k: int) -> np.ndarray:
        """Per-run quadrature moments ``sum_k tau^2 theta^j`` for ``j = 0..k``.

        For run ``l`` with unit start ``v_l`` these equal ``v_l^T A^j v_l`` for ``j < 2 m_l``.

        Returns:
            float64 ``(num_runs, k + 1)``; column 0 is 1.
        """
        if k < 0:
            raise ValueError(f"moment order k must be >= 0, got {k}")
        powers = self.nodes[:, :, None] ** np.arange(k + 1)
        return np.einsum("rm,rmj->rj", self.weights, powers)

    def extremes(self) -> tuple[float, float]:
        """Smallest and largest node with positive weight (Ritz-value bounds of the spectrum)."""
        used = self.nodes[self.weights > 0]
        return float(used.min()), float(used.max())


def spectrum_from_lanczos(runs: list[LanczosResult], dimension: int) -> Spectrum:
    """Build a :class:`Spectrum` from Lanczos runs (quadrature nodes and weights per run)."""
    if not runs:
        raise ValueError("need at least one Lanczos run")
    width = max(run.steps for run in runs)
    nodes = np.zeros((len(runs), width))
    weights = np.zeros((len(runs), width))
    for row, run in enumerate(runs):
        values, vectors = run.ritz()
        m = values.shape[0]
        nodes[row, :m], nodes[row, m:] = values, values[-1]
        weights[row, :m] = vectors[0] ** 2
        weights[row, :m] /= weights[row, :m].sum()       # exact to rounding; removes drift
    steps = np.array([run.steps for run in runs], dtype=np.int64)
    return Spectrum(nodes=nodes, weights=weights, dimension=int(dimension), steps_per_run=steps)


def slq(op: LinearOperator, num_runs: int, num_steps: int, seed: int | np.random.Generator,
        reorthogonalize: bool = True, start_vectors: np.ndarray | None = None) -> Spectrum:
    """Stochastic Lanczos Quadrature (Ubaru et al. 2017; Ghorbani et al. 2019).

    Each run starts Lanczos from a normalized Rademacher vector ``v = z / sqrt(n)`` (the
    variance-minimizing choice for trace estimation) drawn from ``seed``.

    Args:
        op: symmetric operator ``(n, n)``.
        num_runs: number of independent start vectors ``n_v``.
        num_steps: Lanczos steps per run ``m`` (at most ``n`` with reorthogonalization).
        seed: int or Generator.
        reorthogonalize: full reorthogonalization in each run (moments are exact either way;
            node positions of outliers are not without it).
        start_vectors: optional explicit start vectors ``(num_runs, n)`` (normalized here),
            overriding the random ones.

    Returns:
        :class:`Spectrum` with ``nodes``/``weights`` ``(num_runs, num_steps)``.
    """
    n = op.shape[0]
    if num_runs < 1:
        raise ValueError(f"num_runs must be >= 1, got {num_runs}")
    if start_vectors is None:
        rng = as_generator(seed)
        start_vectors = rng.choice(np.array([-1.0, 1.0]), size=(num_runs, n)) / np.sqrt(n)
    start_vectors = np.asarray(start_vectors, dtype=np.float64)
    if start_vectors.shape != (num_runs, n):
        raise ValueError(f"start_vectors has shape {start_vectors.shape}; expected "
                         f"({num_runs}, {n})")
    runs = [lanczos(op, num_steps, reorthogonalize=reorthogonalize, start=start_vectors[row])
            for row in range(num_runs)]
    return spectrum_from_lanczos(runs, n)
