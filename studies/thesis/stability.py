"""Why the thesis's fixed GD steps diverge for our CNNs: gradient and curvature per parameter group.

For a flat objective at a point ``theta`` (float64 ``(n,)``) this measures, per parameter group
(``ParameterSpec.kind``: ``dense_kernel``, ``bias``, ``conv_kernel`` / ``conv_transpose_kernel``,
``offset``, ``latent``):

* the gradient norm ``||g_G||_2`` of the group's coordinates;
* the largest eigenvalue of the group's diagonal Hessian block ``H_GG`` (Lanczos with full
  reorthogonalization on the restricted operator ``v_G -> (H [v_G; 0])_G``);

and of the whole Hessian. Fixed-step gradient descent on a quadratic is stable iff
``step < 2 / lambda_max`` (Nocedal & Wright, §3.3), and ``lambda_max(H) >= lambda_max(H_GG)`` for
every block (Cauchy interlacing), so ``2 / lambda_max`` of any block bounds every stable step.

:func:`gd_probe` runs a short fixed-step GD and returns its loss per step, to compare the bound
with what happens. Nothing here writes files; ``nrto reproduce thesis`` reports the numbers.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from scipy.sparse.linalg import LinearOperator

__all__ = ["GroupCurvature", "StabilityReport", "gd_probe", "group_slices", "measure_stability"]


def group_slices(specs) -> dict[str, np.ndarray]:
    """``kind -> int64 indices`` of the flat vector's coordinates of that kind (spec order)."""
    groups: dict[str, list[np.ndarray]] = {}
    offset = 0
    for spec in specs:
        kind = "conv_kernel" if spec.kind.startswith("conv") else spec.kind
        groups.setdefault(kind, []).append(np.arange(offset, offset + spec.size))
        offset += spec.size
    return {kind: np.concatenate(parts) for kind, parts in groups.items()}


@dataclasses.dataclass(frozen=True)
class GroupCurvature:
    """One group: its size, gradient norm and top eigenvalue of its diagonal Hessian block."""

    kind: str
    size: int
    grad_norm: float
    top_eigenvalue: float

    @property
    def stable_step(self) -> float:
        """``2 / lambda_max`` (inf when the block has no positive curvature)."""
        return 2.0 / self.top_eigenvalue if self.top_eigenvalue > 0 else float("inf")


@dataclasses.dataclass(frozen=True)
class StabilityReport:
    """The measurement at one point: the loss, the whole Hessian and every group."""

    loss: float
    grad_norm: float
    top_eigenvalue: float
    groups: tuple[GroupCurvature, ...]

    @property
    def stable_step(self) -> float:
        return 2.0 / self.top_eigenvalue if self.top_eigenvalue > 0 else float("inf")


def _restricted(objective, theta: np.ndarray, index: np.ndarray | None) -> LinearOperator:
    n = objective.size

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float64).reshape(-1)
        if index is None:
            return objective.hvp(theta, v)
        full = np.zeros(n)
        full[index] = v
        return objective.hvp(theta, full)[index]

    size = n if index is None else index.size
    return LinearOperator((size, size), matvec=matvec, rmatvec=matvec, dtype=np.float64)


def _top_eigenvalue(op: LinearOperator, steps: int, seed: int) -> float:
    from landscape.lanczos import lanczos

    run = lanczos(op, min(steps, op.shape[0]), seed=seed)
    return float(np.max(np.linalg.eigvalsh(run.tridiagonal())))


def measure_stability(objective, theta: np.ndarray | None = None, *, lanczos_steps: int = 12,
                      seed: int = 0, groups: bool = True) -> StabilityReport:
    """Gradient norms and top Hessian eigenvalues at ``theta`` (default: the start).

    Args:
        objective: a flat objective with ``hvp`` and ``parameter_specs``.
        theta: float64 ``(n,)``.
        lanczos_steps: Lanczos steps per operator (the top Ritz value is a lower bound of the top
            eigenvalue that converges fastest of all).
        seed: the Lanczos start vector's seed.
        groups: also measure every group's diagonal block.
    """
    theta = objective.initial() if theta is None else np.asarray(theta, np.float64)
    loss, grad = objective.value_and_grad(theta)
    top = _top_eigenvalue(_restricted(objective, theta, None), lanczos_steps, seed)
    parts = []
    if groups:
        for kind, index in group_slices(objective.parameter_specs).items():
            parts.append(GroupCurvature(
                kind, int(index.size), float(np.linalg.norm(grad[index])),
                _top_eigenvalue(_restricted(objective, theta, index), lanczos_steps, seed)))
    return StabilityReport(float(loss), float(np.linalg.norm(grad)), top, tuple(parts))


def gd_probe(objective, learning_rate: float, steps: int,
             scales: Mapping[str, float] | None = None) -> np.ndarray:
    """Loss per step of fixed-step GD ``theta -= lr * s_G * g`` (``s_G`` per group, default 1).

    Returns:
        float64 ``(steps + 1,)``; NaN after the first non-finite loss.
    """
    theta = objective.initial()
    factor = np.ones(objective.size)
    for kind, index in group_slices(objective.parameter_specs).items():
        factor[index] = (scales or {}).get(kind, 1.0)
    losses = np.full(steps + 1, np.nan)
    for step in range(steps + 1):
        try:
            loss, grad = objective.value_and_grad(theta)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            break
        losses[step] = loss
        if not np.isfinite(loss) or step == steps:
            break
        theta = theta - learning_rate * factor * grad
    return losses
