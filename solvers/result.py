"""Typed records of an optimization run: what to record, and what was recorded.

Index conventions (shared by the optimizers, the HDF5 store and the landscape toolkit):
    * evaluation ``e`` = the e-th call of the objective (line-search trials included), 0-based.
    * iterate ``k`` = the k-th ACCEPTED point; iterate 0 is the starting point, so a run of
      ``iterations`` accepted steps has ``iterations + 1`` iterates.
    * pair ``j`` = the j-th correction pair (s_j, y_j) = (x_{k+1} - x_k, g_{k+1} - g_k) that an
      L-BFGS-type method ACCEPTED (pairs skipped by the curvature test are not stored), oldest
      first;
      ``pair_iterations[j]`` is the k of its newer end point x_{k+1}.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from .optim.state import OptimizerState

__all__ = ["RecordOptions", "OptimizationResult", "ProgressInfo", "STATUSES"]

STATUSES = ("converged", "max_steps", "failed", "interrupted")


@dataclasses.dataclass(frozen=True)
class RecordOptions:
    """What an optimization run keeps besides the loss history.

    Attributes:
        iterates_every: keep every k-th iterate theta_k (k = 0, every, 2*every, ... and the last);
            0 keeps none (unless ``iterates_at`` asks), 1 keeps all.
        iterates_at: further iterate indices to keep (with their gradients), e.g. ``(10,)``;
            when any is given, the last iterate is kept too.
        designs_at: iterate indices at which to keep the physical design; -1 means the last one.
        pairs: keep the accepted L-BFGS correction pairs (L-BFGS-type methods only).
        pairs_until: keep only the pairs whose newer end is iterate <= this (None: all). Enough
            to rebuild the L-BFGS matrix at that iterate while keeping files of large models small.
    """

    iterates_every: int = 0
    iterates_at: tuple[int, ...] = ()
    designs_at: tuple[int, ...] = (0, -1)
    pairs: bool = True
    pairs_until: int | None = None

    def __post_init__(self):
        if self.iterates_every < 0:
            raise ValueError(f"iterates_every must be >= 0, got {self.iterates_every}")
        if self.pairs_until is not None and self.pairs_until < 0:
            raise ValueError(f"pairs_until must be None or >= 0, got {self.pairs_until}")
        if any(int(i) < 0 for i in self.iterates_at):
            raise ValueError(f"iterates_at must hold iterate indices >= 0, got {self.iterates_at}")
        object.__setattr__(self, "designs_at", tuple(int(i) for i in self.designs_at))
        object.__setattr__(self, "iterates_at", tuple(sorted({int(i) for i in self.iterates_at})))

    def keeps_iterate(self, k: int) -> bool:
        """Whether iterate ``k`` is kept (the last iterate is decided by the recorder)."""
        every = self.iterates_every
        return (every > 0 and k % every == 0) or k in self.iterates_at

    def keeps_last_iterate(self) -> bool:
        return self.iterates_every > 0 or bool(self.iterates_at)

    def keeps_pair(self, k: int) -> bool:
        """Whether the pair whose newer end is iterate ``k`` is kept."""
        return self.pairs and (self.pairs_until is None or k <= self.pairs_until)


@dataclasses.dataclass
class OptimizationResult:
    """Everything an optimizer recorded.

    Attributes:
        method: optimizer name (``"lbfgs"``, ``"mma"``, ...).
        options: the method options actually used (step sizes, memory, ...), JSON-serializable.
        x: the last accepted iterate, float64 ``(n,)``.
        loss_per_evaluation: float64 ``(evaluations,)``, every objective call in order.
        loss_per_iterate: float64 ``(iterations + 1,)``, loss at each accepted iterate.
        grad_norm_per_iterate: float64 ``(iterations + 1,)``, Euclidean norm of the gradient there
            (NaN where a method does not compute it).
        step_length_per_iterate: float64 ``(iterations + 1,)``, ``|x_k - x_{k-1}|``; entry 0 is NaN.
        iterations: number of accepted steps.
        evaluations: number of objective calls.
        converged: whether the method's own convergence test ended the run.
        status: one of ``STATUSES``.
        message: human-readable reason the run stopped.
        iterate_indices: int ``(r,)``, which iterates are stored in ``iterates``.
        iterates: float64 ``(r, n)``, or None when none were recorded.
        gradients: float64 ``(r, n)`` gradients at the stored iterates, or None.
        s_pairs, y_pairs: float64 ``(p, n)`` accepted correction pairs, oldest first, or None.
        pair_iterations: int ``(p,)`` (see the module docstring).
        skipped_pairs: number of pairs rejected by the L-BFGS-B curvature test.
        reset_iterations: int ``(r,)`` iterate indices k at which an L-BFGS memory was emptied
            after a failed line search (the search from x_k restarted along -g_k).
        design_indices: int ``(d,)`` iterate index of each stored design.
        designs: float64 ``(d, H, W)`` physical densities, or None.
        elapsed: wall-clock seconds spent in the optimizer (objective calls included).
        state: the method's state at the last iteration boundary
            (:class:`~solvers.optim.state.OptimizerState`), which ``resume`` continues exactly;
            None for methods whose state cannot be saved, or when the run stopped between
            boundaries.
    """

    method: str
    options: dict[str, Any]
    x: np.ndarray
    loss_per_evaluation: np.ndarray
    loss_per_iterate: np.ndarray
    grad_norm_per_iterate: np.ndarray
    step_length_per_iterate: np.ndarray
    iterations: int
    evaluations: int
    converged: bool
    status: str
    message: str
    iterate_indices: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    iterates: np.ndarray | None = None
    gradients: np.ndarray | None = None
    s_pairs: np.ndarray | None = None
    y_pairs: np.ndarray | None = None
    pair_iterations: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    skipped_pairs: int = 0
    reset_iterations: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    design_indices: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    designs: np.ndarray | None = None
    elapsed: float = 0.0
    state: OptimizerState | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.state is not None and not isinstance(self.state, OptimizerState):
            raise TypeError(f"state must be an OptimizerState or None; got "
                            f"{type(self.state).__name__}")

    @property
    def fun(self) -> float:
        """Loss at the last accepted iterate."""
        return float(self.loss_per_iterate[-1])

    @property
    def best_loss(self) -> float:
        """Minimum loss over all evaluations (what the paper reports)."""
        finite = self.loss_per_evaluation[np.isfinite(self.loss_per_evaluation)]
        return float(finite.min()) if finite.size else float("nan")

    @property
    def running_min(self) -> np.ndarray:
        """Running minimum of the loss over evaluations, ``(evaluations,)``."""
        losses = np.where(np.isfinite(self.loss_per_evaluation), self.loss_per_evaluation, np.inf)
        return np.minimum.accumulate(losses)


@dataclasses.dataclass(frozen=True)
class ProgressInfo:
    """What an optimizer tells its ``callback`` after every accepted iterate.

    Attributes:
        iteration: index k of the iterate just accepted (1 after the first step).
        evaluations: objective calls so far.
        loss: loss at iterate k.
        best_loss: minimum loss over all evaluations so far.
        steps: the run's budget (``steps`` argument of :func:`solvers.optimize`).
        snapshot: zero-argument function returning the run so far as an
            :class:`OptimizationResult` with status ``"interrupted"`` (costly: call it only to
            checkpoint, e.g. every 50 iterations).
    """

    iteration: int
    evaluations: int
    loss: float
    best_loss: float
    steps: int
    snapshot: Callable[[], "OptimizationResult"]
