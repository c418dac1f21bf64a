"""A certified lower bound on the optimum of a convex (p = 1) volume-constrained compliance.

At SIMP exponent p = 1 the stiffness is linear in the densities and the compliance
``c(x) = fᵀ K(x)⁻¹ f`` is convex in them (a matrix-fractional function of a linear map; the cone
filter is linear too). Over the feasible set ``X = {0 <= y <= upper, wᵀy <= v}`` (``w`` the
gradient of the linear volume, ``v`` the volume fraction) convexity gives, for any ``x``,

    min_{y in X} c(y)  >=  c(x) + min_{y in X} ∇c(x)ᵀ(y - x),

the tangent plane's minimum over ``X``: a linear program with one budget constraint, solved
exactly by the greedy (fractional knapsack) rule: take the cells in increasing order of
``g_j / w_j`` while ``g_j < 0`` and the budget lasts. The bound holds for the equality
``wᵀy = v`` too (a subset of ``X``), so it bounds every model whose densities lie in ``X``: the
pixel logits and the CNN through the sigmoid map (which fixes the mean of the densities before the
filter: ``PixelModel(volume_of="design")``'s volume), or MMA and OC's filtered volume (the
default). It is tight (equal to ``c(x)``) exactly at the optimum, so the gap ``c(x) - bound``
says how far ``x`` is from optimal.

Reference: the Frank-Wolfe duality gap (Jaggi 2013, "Revisiting Frank-Wolfe", §2).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .optim.constrained import density_contract

__all__ = ["ConvexBound", "convex_lower_bound", "knapsack_minimum"]


@dataclasses.dataclass(frozen=True)
class ConvexBound:
    """The bound at one design.

    Attributes:
        value: ``c(x)``, the compliance at the design (an upper bound on the optimum when the
            design is feasible).
        bound: the certified lower bound on the optimum over the feasible set.
        volume: the design's volume (``objective.volume(x)``), for checking feasibility.
    """

    value: float
    bound: float
    volume: float

    @property
    def relative_gap(self) -> float:
        """``value / bound - 1`` (>= 0)."""
        return self.value / self.bound - 1.0


def knapsack_minimum(g: np.ndarray, weights: np.ndarray, capacity: float,
                     upper: np.ndarray | None = None) -> float:
    """``min gᵀy`` subject to ``weightsᵀy <= capacity`` and ``0 <= y <= upper`` (default 1).

    Args:
        g, weights: float64 ``(n,)``; ``weights >= 0``.
        capacity: >= 0.
        upper: float64 ``(n,)`` >= 0, or None for ones.
    """
    g, weights = np.asarray(g, np.float64), np.asarray(weights, np.float64)
    upper = np.ones_like(g) if upper is None else np.asarray(upper, np.float64)
    if g.shape != weights.shape or g.shape != upper.shape or g.ndim != 1:
        raise ValueError(f"g {g.shape}, weights {weights.shape} and upper {upper.shape} must be "
                         "equal 1-D shapes")
    if np.any(weights < 0) or np.any(upper < 0) or not capacity >= 0:
        raise ValueError("knapsack_minimum needs weights >= 0, upper >= 0 and capacity >= 0")
    useful = (g < 0) & (upper > 0)
    free = useful & (weights == 0)
    total = float(g[free] @ upper[free])
    paid = np.flatnonzero(useful & (weights > 0))
    order = paid[np.argsort(g[paid] / weights[paid], kind="stable")]
    cost = weights[order] * upper[order]
    spent = np.cumsum(cost)
    full = int(np.searchsorted(spent, capacity, side="right"))
    total += float(g[order[:full]] @ upper[order[:full]])
    if full < order.size:
        room = capacity - (spent[full - 1] if full else 0.0)
        j = order[full]
        total += g[j] * min(upper[j], room / weights[j])
    return total


def convex_lower_bound(objective: Any, x: np.ndarray) -> ConvexBound:
    """The tangent-plane bound (module docstring) of a density objective at ``x``.

    Args:
        objective: a pixel objective of densities (``as_objective(PixelModel(problem,
            volume_constraint=False, volume_of=...), penal=1.0)``).
        x: float64 ``(objective.size,)`` densities.

    Raises:
        ValueError: the objective's penalty is not 1 (the bound needs convexity), or ``x`` has
            the wrong shape.
    """
    penal = float(objective.physics.penal)
    if penal != 1.0:
        raise ValueError(f"the tangent-plane bound needs a convex objective (penal = 1); this "
                         f"one has penal = {penal:g}")
    lower, upper, volume_fraction = density_contract(objective, "certificate")
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.shape != (objective.size,):
        raise ValueError(f"x has shape {x.shape}; the objective has {objective.size} densities")
    if np.any(lower != 0):
        raise ValueError("convex_lower_bound assumes lower bounds of 0")
    value, grad = objective.value_and_grad(x)
    weights = np.asarray(objective.volume_grad(x), dtype=np.float64)
    bound = value + knapsack_minimum(grad, weights, volume_fraction, upper) - float(grad @ x)
    return ConvexBound(float(value), float(bound), float(objective.volume(x)))
