"""Autograd primitives of the physics, each differentiable to any order.

Every primitive's vector-Jacobian product (VJP) is written with differentiable operations (often
the primitive itself), so that reverse-over-reverse differentiation gives exact Hessian-vector
products:

* :func:`linear_map`: ``y = A x`` for a fixed sparse matrix; VJP ``A^T g`` (the same primitive).
* :func:`solve_free`: ``u = K(E)^{-1} f`` on the free dofs. VJPs: ``g -> K^{-1} g`` for ``f`` and
  ``g -> -(lambda_e^T KE u_e)_e`` with ``lambda = K^{-1} g`` for the element moduli ``E``
  (the adjoint method; the factorization of ``K(E)`` is cached and reused).
* :func:`sigmoid` and :func:`sigmoid_slope`: the logistic function and its derivative, each with
  its own VJP (``s' = s(1 - s)``, ``s'' = s'(1 - 2s)``) that never overflows, unlike autograd's
  derivative of ``tanh`` (``1 / cosh**2``, ``cosh`` overflowing beyond ``|t| ~ 710``).
* :func:`sigmoid_shift`: the scalar ``b(z)`` with ``mean(sigmoid(z + b)) = v``, found by bisection;
  its VJP comes from the implicit function theorem,
  ``db/dz_i = -sigmoid'(z_i + b) / sum_j sigmoid'(z_j + b)``, not from the bisection.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import scipy.sparse
from autograd.extend import defvjp, primitive

from .fem import StiffnessSystem

__all__ = ["LinearOperatorPair", "linear_map", "solve_free", "element_energy", "sigmoid",
           "sigmoid_slope", "logit", "sigmoid_shift"]


class LinearOperatorPair:
    """A fixed sparse matrix and its transpose, as seen by :func:`linear_map`.

    Args:
        matrix: ``scipy.sparse`` matrix ``(m, n)``.
    """

    def __init__(self, matrix, _transpose: "LinearOperatorPair | None" = None):
        self.matrix = scipy.sparse.csr_matrix(matrix)
        self._transpose = _transpose

    @property
    def T(self) -> "LinearOperatorPair":
        if self._transpose is None:
            self._transpose = LinearOperatorPair(self.matrix.T, _transpose=self)
        return self._transpose

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape


@primitive
def linear_map(x: np.ndarray, operator: LinearOperatorPair) -> np.ndarray:
    """``operator.matrix @ x`` for ``x`` of shape ``(n,)``; returns ``(m,)``."""
    return operator.matrix @ x


defvjp(linear_map, lambda ans, x, operator: lambda g: linear_map(g, operator.T), None)


@primitive
def solve_free(moduli: np.ndarray, rhs: np.ndarray, system: StiffnessSystem) -> np.ndarray:
    """Displacements on the free dofs, ``K(moduli) u = rhs``.

    Args:
        moduli: float64 ``(n_elements,)`` element Young's moduli.
        rhs: float64 ``(n_free,)`` load on the free dofs.
        system: the mesh's :class:`~solvers.fem.StiffnessSystem` (pattern, cached factorization).

    Returns:
        float64 ``(n_free,)``.
    """
    return system.solve(moduli, rhs)


def element_energy(a, b, system: StiffnessSystem):
    """Bilinear element energies ``(a_e^T KE b_e)_e``, shape ``(n_elements,)``.

    ``a`` and ``b`` are free-dof vectors ``(n_free,)``; differentiable in both.
    """
    gather = _gather_operator(system)
    a_e = anp.reshape(linear_map(a, gather), (system.num_elements, 8))
    b_e = anp.reshape(linear_map(b, gather), (system.num_elements, 8))
    # einsum's own loops, not BLAS: see Compliance.from_physical_density
    return anp.einsum("ei,ij,ej->e", a_e, system.ke, b_e)


def _gather_operator(system: StiffnessSystem) -> LinearOperatorPair:
    """Sparse ``(8 n_elements, n_free)`` matrix picking each element's free-dof values."""
    cached = getattr(system, "_gather_operator", None)
    if cached is None:
        columns = system.element_free_dofs.ravel()
        rows = np.arange(columns.size)
        keep = columns < system.num_free
        matrix = scipy.sparse.csr_matrix(
            (np.ones(keep.sum()), (rows[keep], columns[keep])),
            shape=(columns.size, system.num_free))
        cached = LinearOperatorPair(matrix)
        system._gather_operator = cached
    return cached


def _solve_vjp_moduli(u, moduli, rhs, system):
    return lambda g: -element_energy(solve_free(moduli, g, system), u, system)


def _solve_vjp_rhs(u, moduli, rhs, system):
    return lambda g: solve_free(moduli, g, system)


defvjp(solve_free, _solve_vjp_moduli, _solve_vjp_rhs, None)


@primitive
def sigmoid(t):
    """Logistic function ``1 / (1 + exp(-t))``, elementwise, as ``0.5 tanh(t / 2) + 0.5``.

    A primitive with its own VJP ``g * sigmoid_slope(t)``: autograd's derivative of ``tanh`` is
    ``g / cosh(t)**2``, whose ``cosh`` overflows (a RuntimeWarning, and ``inf`` intermediates) for
    ``|t| > ~710``; :func:`sigmoid_slope` never overflows.
    """
    return 0.5 * np.tanh(0.5 * t) + 0.5


@primitive
def sigmoid_slope(t):
    """Derivative of :func:`sigmoid`, ``s(t)(1 - s(t))``, elementwise, without overflow.

    Written as ``e / (1 + e)**2`` with ``e = exp(-|t|)`` in (0, 1] (the expression is even in
    ``t``), so no intermediate exceeds 4 for any float64 ``t``; it underflows to 0 smoothly for
    ``|t| > ~745``. Its own VJP is ``g * sigmoid_slope(t) * (1 - 2 sigmoid(t))`` (``s'' = s'(1 -
    2s)``), written with the two primitives, so every order of derivative exists.
    """
    decay = np.exp(-np.abs(t))
    return decay / (1.0 + decay) ** 2


defvjp(sigmoid, lambda ans, t: lambda g: g * sigmoid_slope(t))
defvjp(sigmoid_slope, lambda ans, t: lambda g: g * sigmoid_slope(t) * (1.0 - 2.0 * sigmoid(t)))


def logit(p: float) -> float:
    """Inverse of :func:`sigmoid` for ``p`` in (0, 1)."""
    return float(np.log(p) - np.log1p(-p))


@primitive
def sigmoid_shift(z: np.ndarray, volume_fraction: float, tolerance: float = 1e-12) -> float:
    """The shift ``b`` such that ``mean(sigmoid(z + b)) = volume_fraction``.

    Bisection on ``[logit(v) - max z, logit(v) - min z]`` (where the mean is <= v and >= v) until
    the bracket is narrower than ``tolerance`` (the paper: 1e-12) or cannot be halved any more in
    float64 (``tolerance=0`` asks for full precision); at most 200 halvings.

    Args:
        z: float64 ``(n,)`` logits.
        volume_fraction: target mean in (0, 1).

    Returns:
        The midpoint of the final bracket, a float.
    """
    target = logit(volume_fraction)
    lower, upper = target - float(np.max(z)), target - float(np.min(z))
    for _ in range(200):
        middle = 0.5 * (lower + upper)
        if upper - lower < tolerance or not lower < middle < upper:
            break
        if np.mean(sigmoid(z + middle)) > volume_fraction:
            upper = middle
        else:
            lower = middle
    return 0.5 * (lower + upper)


def _sigmoid_shift_vjp(b, z, volume_fraction, tolerance=1e-12):
    def vjp(g):
        slope = sigmoid_slope(z + b)
        return -g * slope / anp.sum(slope)
    return vjp


defvjp(sigmoid_shift, _sigmoid_shift_vjp, None, None)
