"""Compliance of a design: the exact, twice-differentiable physics of the paper.

The chain (Hoyer et al. 2019, following Andreassen et al. 2011):

    image z (H, W) --[volume constraint]--> x --[cone filter]--> x_phys
                   --[modified SIMP]--> E = E_min + x_phys^p (E_0 - E_min)
                   --[FE solve]--> u = K(E)^{-1} f --> compliance c = f^T u

* With ``volume_constraint=True`` the image holds logits: on the cells inside the mask,
  ``x = sigmoid(z + b)`` with the scalar ``b`` chosen so that ``mean(x) = volume_fraction``
  (:func:`solvers.primitives.sigmoid_shift`); cells outside are 0.
* With ``volume_constraint=False`` the image holds densities in [0, 1] and ``x = z * mask``
  (for MMA and OC, which handle the volume constraint themselves).

Everything is written with autograd: ``autograd.grad`` and reverse-over-reverse Hessian-vector
products of :meth:`Compliance.__call__` are exact.
"""
from __future__ import annotations

import functools

import autograd.numpy as anp
import numpy as np
import scipy.sparse
from autograd.tracer import getval

from .fem import Material, StiffnessSystem
from .filters import cone_filter_matrix
from .primitives import LinearOperatorPair, linear_map, sigmoid, sigmoid_shift, solve_free

__all__ = ["Compliance", "objective", "compliance_function"]


class Compliance:
    """Compliance of designs of one problem; holds the precomputed mesh, filter and factorization.

    Args:
        problem: a :class:`solvers.problems.Problem`.
        penal: SIMP penalty p (> 0; the paper uses 3, the thesis also 1).
        filter_radius: cone filter radius in elements (>= 0; 0 means no filter).
        material: Young's moduli and Poisson's ratio.
        backend: sparse Cholesky backend (see :class:`solvers.sparse_cholesky.SymmetricSolver`).
        root_tolerance: bracket width at which the bisection for the sigmoid shift stops
            (the paper: 1e-12; 0 for full float64 precision, useful for finite-difference checks).
    """

    def __init__(self, problem, *, penal: float = 3.0, filter_radius: float = 2.0,
                 material: Material = Material(), backend: str | None = None,
                 root_tolerance: float = 1e-12):
        if not (np.isfinite(penal) and penal > 0):
            raise ValueError(f"penal must be a finite number > 0, got {penal}")
        self.problem = problem
        self.penal = float(penal)
        self.filter_radius = float(filter_radius)
        self.material = material
        self.root_tolerance = float(root_tolerance)
        self.shape = (problem.height, problem.width)
        self.system = StiffnessSystem(problem.height, problem.width, problem.fixed_dofs,
                                      poisson=material.poisson, backend=backend)
        self.load = np.asarray(problem.force_vector, dtype=np.float64)[self.system.free_dofs]
        mask = np.asarray(problem.mask, dtype=bool)
        self.mask = mask
        self.mask_indices = np.flatnonzero(mask.ravel())
        size = mask.size
        select = scipy.sparse.csr_matrix(
            (np.ones(self.mask_indices.size),
             (np.arange(self.mask_indices.size), self.mask_indices)),
            shape=(self.mask_indices.size, size))
        filter_matrix = cone_filter_matrix(mask, self.filter_radius)
        self._select = LinearOperatorPair(select)                        # (n_mask, n_cells)
        self._filter = LinearOperatorPair(filter_matrix)                 # (n_cells, n_cells)
        self._filter_masked = LinearOperatorPair(filter_matrix @ select.T)  # (n_cells, n_mask)

    # -- the pipeline ----------------------------------------------------------------------
    def _check(self, x) -> None:
        value = np.asarray(getval(x))
        if value.shape != self.shape:
            raise ValueError(f"design has shape {value.shape}; problem {self.problem.name!r} "
                             f"needs (height, width) = {self.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError("design contains NaN or infinite values")

    def physical_density(self, x, volume_constraint: bool = False):
        """Filtered density ``x_phys``, shape ``(H, W)``, differentiable in ``x``.

        Args:
            x: ``(H, W)`` logits (``volume_constraint=True``) or densities in [0, 1].
        """
        self._check(x)
        flat = anp.reshape(x, (-1,))
        if volume_constraint:
            logits = linear_map(flat, self._select)
            shift = sigmoid_shift(logits, self.problem.volume_fraction, self.root_tolerance)
            phys = linear_map(sigmoid(logits + shift), self._filter_masked)
        else:
            value = np.asarray(getval(x))
            if value.min() < -1e-12 or value.max() > 1 + 1e-12:
                raise ValueError(
                    f"densities must lie in [0, 1] without the volume constraint, got range "
                    f"[{value.min():.3g}, {value.max():.3g}]; pass logits with "
                    "volume_constraint=True")
            phys = linear_map(flat, self._filter)
        return anp.reshape(phys, self.shape)

    def moduli(self, physical_density):
        """Modified SIMP Young's moduli ``E_min + x^p (E_0 - E_min)``, flat ``(H*W,)``."""
        flat = anp.reshape(physical_density, (-1,))
        material = self.material
        return material.young_min + _power(flat, self.penal) * (material.young - material.young_min)

    def displacements(self, physical_density):
        """Displacements of the free dofs, ``(n_free,)``."""
        return solve_free(self.moduli(physical_density), self.load, self.system)

    def from_physical_density(self, physical_density):
        """Compliance ``f^T u`` of a filtered density ``(H, W)``."""
        # (sum of products, not np.dot: a BLAS call here wakes numpy's OpenBLAS threads, whose
        # spinning then slows the sparse factorization that follows by ~2x on 2 cores)
        return anp.sum(self.load * self.displacements(physical_density))

    def __call__(self, x, volume_constraint: bool = False):
        """Compliance (float64 scalar) of the image ``x`` ``(H, W)``; see the module docstring."""
        return self.from_physical_density(self.physical_density(x, volume_constraint))

    def volume(self, x, volume_constraint: bool = False, filtered: bool = True):
        """Mean density over the mask (compare with ``problem.volume_fraction``).

        ``filtered=True``: of the physical (filtered) density, the volume the paper's MMA and OC
        constrain. ``filtered=False``: of the densities ``x`` themselves (densities only), the
        volume that the sigmoid map of the logit models fixes; the cone filter does not
        preserve the mean near the boundary, so the two differ (by ~1 % on the thesis's
        problems at their optima).
        """
        if filtered:
            return anp.sum(self.physical_density(x, volume_constraint)) / self.mask_indices.size
        if volume_constraint:
            raise ValueError("filtered=False measures densities, not logits; pass "
                             "volume_constraint=False")
        self._check(x)
        return anp.sum(linear_map(anp.reshape(x, (-1,)), self._select)) / self.mask_indices.size

    def initial_design(self) -> np.ndarray:
        """The uniform start of the paper, ``volume_fraction * mask``, float64 ``(H, W)``."""
        return self.problem.volume_fraction * self.mask.astype(np.float64)


def _power(x, p: float):
    """``x ** p``, written as products for integer p so that all derivatives exist at x = 0."""
    if float(p).is_integer() and 1 <= p <= 8:
        result = x
        for _ in range(int(p) - 1):
            result = result * x
        return result
    return anp.power(x, p)


@functools.lru_cache(maxsize=16)
def compliance_function(problem, penal: float = 3.0, filter_radius: float = 2.0) -> Compliance:
    """A cached :class:`Compliance` for ``(problem, penal, filter_radius)``."""
    return Compliance(problem, penal=penal, filter_radius=filter_radius)


def objective(problem, x, *, penal: float = 3.0, volume_constraint: bool = False,
              filter_radius: float = 2.0):
    """Compliance of the design image ``x`` of ``problem``.

    Args:
        problem: a :class:`solvers.problems.Problem`.
        x: ``(H, W)`` image: logits if ``volume_constraint`` else densities in [0, 1].
        penal: SIMP penalty.
        volume_constraint: apply the sigmoid with constrained mean (see the module docstring).
        filter_radius: cone filter radius (0: no filter).

    Returns:
        The compliance, a float64 scalar; differentiable by autograd to any order in ``x``.
    """
    return compliance_function(problem, float(penal), float(filter_radius))(x, volume_constraint)
