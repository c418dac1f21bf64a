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

__all__ = ["RecordOptions", "OptimizationResult", "ProgressInfo", "STATUSES", "StoredField",
           "stored_fields", "length_problem"]

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


@dataclasses.dataclass(frozen=True)
class StoredField:
    """How a field of :class:`OptimizationResult` is kept in a results file (the one place the
    schema of a recorded field is written down; the HDF5 store and its reader follow it).

    Attributes:
        description: one line, stored with the value (dataset attribute ``description``).
        axes: names of the array's axes (an HDF5 dataset), or None for a scalar kept as an
            attribute of the run's group.
        dtype: datasets: ``"float64"``, ``"int64"`` or ``"density8"`` (densities in [0, 1]
            quantized to uint8 with ``scale``/``offset`` attributes); attributes: ``"str"``,
            ``"int"``, ``"float"``, ``"bool"``, ``"json"`` (a JSON text of plain values) or
            ``"group"`` (a subgroup of the run written by the store's own codec: the
            optimizer state).
    """

    description: str
    axes: tuple[str, ...] | None = None
    dtype: str = "float64"

    def __post_init__(self):
        kinds = ("float64", "int64", "density8") if self.axes is not None else (
            "str", "int", "float", "bool", "json", "group")
        if self.dtype not in kinds:
            raise ValueError(f"dtype of a {'dataset' if self.axes is not None else 'attribute'} "
                             f"must be one of {kinds}; got {self.dtype!r}")


_SCHEMA_KEY = "stored"


def _stored(description: str, axes: tuple[str, ...] | None = None, dtype: str | None = None,
            **field_options: Any) -> Any:
    """A dataclass field carrying its :class:`StoredField` as metadata."""
    spec = StoredField(description, axes, dtype or ("float64" if axes is not None else "str"))
    return dataclasses.field(metadata={_SCHEMA_KEY: spec}, **field_options)


def _no_indices() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclasses.dataclass
class OptimizationResult:
    """Everything an optimizer recorded.

    Each field's ``metadata["stored"]`` (a :class:`StoredField`, see :func:`stored_fields`) says
    how it is stored: axes, dtype and description. Adding a recorded field is one field here.

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

    method: str = _stored("optimizer name")
    options: dict[str, Any] = _stored("the method options actually used, defaults included",
                                      dtype="json")
    x: np.ndarray = _stored("the last accepted iterate (flat parameter vector)", ("parameter",))
    loss_per_evaluation: np.ndarray = _stored(
        "loss at every objective call, line-search trials included", ("evaluation",))
    loss_per_iterate: np.ndarray = _stored(
        "loss at each accepted iterate; iterate 0 is the start", ("iterate",))
    grad_norm_per_iterate: np.ndarray = _stored(
        "Euclidean gradient norm at each iterate (NaN: not computed)", ("iterate",))
    step_length_per_iterate: np.ndarray = _stored("|x_k - x_(k-1)|; entry 0 is NaN",
                                                  ("iterate",))
    iterations: int = _stored("number of accepted steps", dtype="int")
    evaluations: int = _stored("number of objective calls", dtype="int")
    converged: bool = _stored("whether the method's own convergence test ended the run",
                              dtype="bool")
    status: str = _stored("converged, max_steps, failed or interrupted")
    message: str = _stored("why the run stopped")
    iterate_indices: np.ndarray = _stored(
        "iterate index k of each row of iterates/gradients", ("stored_iterate",), "int64",
        default_factory=_no_indices)
    iterates: np.ndarray | None = _stored("stored iterates theta_k",
                                          ("stored_iterate", "parameter"), default=None)
    gradients: np.ndarray | None = _stored("gradients at the stored iterates",
                                           ("stored_iterate", "parameter"), default=None)
    s_pairs: np.ndarray | None = _stored(
        "accepted L-BFGS pairs s_j = x_(k+1) - x_k, oldest first", ("pair", "parameter"),
        default=None)
    y_pairs: np.ndarray | None = _stored(
        "accepted L-BFGS pairs y_j = g_(k+1) - g_k, oldest first", ("pair", "parameter"),
        default=None)
    pair_iterations: np.ndarray = _stored(
        "iterate index k+1 of the newer end point of pair j", ("pair",), "int64",
        default_factory=_no_indices)
    skipped_pairs: int = _stored("pairs rejected by the L-BFGS-B curvature test", dtype="int",
                                 default=0)
    reset_iterations: np.ndarray = _stored(
        "iterate index k at which L-BFGS emptied its memory", ("reset",), "int64",
        default_factory=_no_indices)
    design_indices: np.ndarray = _stored("iterate index k of each stored design", ("design",),
                                         "int64", default_factory=_no_indices)
    designs: np.ndarray | None = _stored(
        "physical densities, uint8: density = offset + scale * value",
        ("design", "row", "column"), "density8", default=None)
    elapsed: float = _stored("wall-clock seconds in the optimizer", dtype="float", default=0.0)
    state: OptimizerState | None = _stored(
        "the method's exact state at the run's last iteration boundary (partial runs only)",
        dtype="group", default=None)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.state is not None and not isinstance(self.state, OptimizerState):
            raise TypeError(f"state must be an OptimizerState or None; got "
                            f"{type(self.state).__name__}")

    def length_problem(self) -> str | None:
        """What breaks the index conventions' lengths (see :func:`length_problem`), or None."""
        shapes = {name: np.shape(getattr(self, name)) for name in stored_fields()
                  if isinstance(getattr(self, name), np.ndarray)}
        return length_problem(shapes, self.iterations, self.evaluations)

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


def stored_fields() -> dict[str, StoredField]:
    """Field name -> :class:`StoredField` for every stored field of :class:`OptimizationResult`,
    in field order (datasets have ``axes``; the others are attributes of the run's group)."""
    return {field.name: field.metadata[_SCHEMA_KEY] for field in dataclasses.fields(
        OptimizationResult) if _SCHEMA_KEY in field.metadata}


# Datasets whose first axis has one row per index of another dataset (the module docstring).
_ROWS_OF = {"iterates": "iterate_indices", "gradients": "iterate_indices",
            "s_pairs": "pair_iterations", "y_pairs": "pair_iterations",
            "designs": "design_indices"}


def length_problem(shapes: dict[str, tuple[int, ...]], iterations: int,
                   evaluations: int) -> str | None:
    """The first way a run's array shapes contradict the module's index conventions, or None.

    Works on shapes alone, so a reader can check a stored run without loading its arrays.

    Args:
        shapes: field name -> shape, for the array fields present (absent ones are not checked).
        iterations: accepted steps; the per-iterate arrays have ``iterations + 1`` entries.
        evaluations: objective calls; ``loss_per_evaluation`` has that many entries.

    Returns:
        A phrase such as ``"'loss_per_iterate' has 1 entries, not iterations + 1 = 6"``.
    """
    expected = {"loss_per_evaluation": (evaluations, "evaluations"),
                **{name: (iterations + 1, "iterations + 1") for name in (
                    "loss_per_iterate", "grad_norm_per_iterate", "step_length_per_iterate")}}
    for name, (length, meaning) in expected.items():
        if name in shapes and shapes[name][:1] != (length,):
            return f"{name!r} has {shapes[name][0] if shapes[name] else 0} entries, not " \
                   f"{meaning} = {length}"
    for name, index in _ROWS_OF.items():
        if name in shapes and index in shapes and shapes[name][:1] != shapes[index][:1]:
            return f"{name!r} has {shapes[name][0]} rows but {index!r} {shapes[index][0]} entries"
    if "x" in shapes:
        for name in ("iterates", "gradients", "s_pairs", "y_pairs"):
            if name in shapes and shapes[name][1:] != shapes["x"]:
                return f"{name!r} rows have {shapes[name][1:]} parameters, 'x' has {shapes['x']}"
    return None
