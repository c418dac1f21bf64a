"""``optimize``: one driver for every optimizer of the paper and the thesis.

Methods (details in the modules of :mod:`solvers.optim`):

=========  ==========================================================  ======================
method     what it is                                                  ``steps`` counts
=========  ==========================================================  ======================
``lbfgs``  L-BFGS-B without bounds (ours or scipy's), factr 1, m = 10     evaluations (maxfun)
``gd_ls``  steepest descent + L-BFGS-B line search (restarted L-BFGS)   evaluations (maxfun)
``gd``     fixed-step gradient descent (Keras SGD)                      iterations
``adam``   Keras Adam                                                   iterations
``hd``     Hessian descent: two-loop L-BFGS direction, fixed step       iterations
``mma``    nlopt LD_MMA on densities with a volume constraint           iterations
``oc``     optimality criteria on densities with a volume constraint    iterations
=========  ==========================================================  ======================

"evaluations" budgets behave like scipy's ``maxfun``: tested when an iteration ends, so the last
line search may go a few evaluations past ``steps``. An "iterations" budget of ``steps`` makes
``steps + 1`` evaluations (the start and each new iterate).

Common behaviour:
    * ``x0`` defaults to ``objective.initial()``. Every method is deterministic: the same inputs
      give bitwise identical histories. ``seed`` is accepted for a uniform interface and for
      future stochastic methods; none of the present methods draws random numbers.
    * ``callback(ProgressInfo)`` runs after every accepted iterate. ``StopIteration`` raised there
      ends the run cleanly (status ``"interrupted"``); ``KeyboardInterrupt`` raised anywhere in the
      run also ends it with status ``"interrupted"`` and the result keeps what was computed (it
      is returned, not re-raised). Other exceptions of the callback propagate.
    * A non-finite loss or gradient, or an exception in the objective, ends the run with status
      ``"failed"`` and a message naming the evaluation and the problem; what was computed is kept.
    * ``resume=previous`` continues ``previous`` (same method) from ``previous.x`` with the rest
      of the budget (``steps - previous.evaluations`` for evaluation budgets,
      ``steps - previous.iterations`` otherwise) and returns ONE result whose histories are the
      concatenation. When ``previous.state`` holds the method's state
      (:class:`~solvers.optim.state.OptimizerState`: ``lbfgs`` with our implementation, ``gd_ls``,
      ``hd``, ``gd``, ``adam``, ``oc``), the run continues from it without evaluating its start
      and the result is bit for bit that of an uninterrupted run of ``steps`` (a state of another
      method, objective or options, or a corrupt one, is a ``ValueError`` naming what differs).
      Without a state (``implementation="scipy"``, older files, a run stopped inside a line
      search) L-BFGS/HD memories and Adam moments start afresh, the resumed start is evaluated once
      more (in ``loss_per_evaluation``, not as a new iterate) and the message says so. ``mma``
      never continues: nlopt's state cannot be saved, so a resumed MMA run starts again from its
      recorded start with the full budget and its message says so.
    * ``gd`` and ``hd`` without ``learning_rate`` take the thesis's tuned step (Tables B.1-B.3,
      :mod:`solvers.optim.step_sizes`) when the objective says which test case it is
      (``problem.name``, ``model_kind``, ``penal``); otherwise they raise ``ValueError``.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Callable

import numpy as np

from .flat import FlatObjective
from .optim import constrained
from .optim.options import (AdamOptions, GDLSOptions, GDOptions, HDOptions, LbfgsOptions,
                            MMAOptions, OCOptions, make_options)
from .optim.quasi_newton import two_loop_product
from .optim.recording import Recorder, RunStopped, curvature_pair_accepted
from .optim.registry import REGISTRY, MethodSpec, method_spec
from .optim.state import OptimizerState, check_compatible
from .optim.step_sizes import THESIS_STEP_SIZES, learning_rate_for, tuned_learning_rate
from .result import OptimizationResult, ProgressInfo, RecordOptions

__all__ = [
    "optimize", "METHODS", "EVALUATION_BUDGET_METHODS", "REGISTRY", "MethodSpec", "method_spec",
    "LbfgsOptions", "GDOptions", "AdamOptions", "HDOptions", "GDLSOptions", "MMAOptions",
    "OCOptions", "two_loop_product", "curvature_pair_accepted", "THESIS_STEP_SIZES",
    "tuned_learning_rate",
]

METHODS: tuple[str, ...] = tuple(REGISTRY)
EVALUATION_BUDGET_METHODS = frozenset(name for name, spec in REGISTRY.items()
                                      if spec.budget_unit == "evaluations")
_TABLE_OF = {"gd": "Table B.1", "hd": "Tables B.2 (memory 1) and B.3 (memory 10)"}


def _resume_state(objective: Any, method: str, options: Any, resume: OptimizationResult
                  ) -> OptimizerState | None:
    """The validated state to continue ``resume`` from, or None (the memory restarts)."""
    state = resume.state
    if state is None:
        return None
    check_compatible(state, method, objective, dataclasses.asdict(options))
    for name in ("evaluations", "iterations"):
        if state.scalars.get(name) != getattr(resume, name):
            raise ValueError(f"corrupt optimizer state of {method!r}: it was taken after "
                             f"{state.scalars.get(name)!r} {name}, the run it comes with has "
                             f"{getattr(resume, name)}")
    x = state.arrays.get("x")
    if not isinstance(x, np.ndarray) or x.shape != resume.x.shape \
            or x.tobytes() != np.asarray(resume.x, dtype=np.float64).tobytes():
        raise ValueError(f"corrupt optimizer state of {method!r}: its point x is not the run's "
                         "last iterate")
    return state


def _restart_point(objective: Any, method: str, resume: OptimizationResult) -> np.ndarray:
    """Where a resumed run of a method without checkpoints (MMA) starts again: its recorded
    start, else iterate 0, else the objective's initial point."""
    if resume.state is not None:
        if resume.state.method != method:
            raise ValueError(f"the checkpoint holds the state of method "
                             f"{resume.state.method!r}; this run uses {method!r}")
        return constrained.mma_start(resume.state, objective.size)
    if resume.iterates is not None and len(resume.iterate_indices) \
            and resume.iterate_indices[0] == 0:
        return np.array(resume.iterates[0], dtype=np.float64, copy=True)
    return np.array(objective.initial(), dtype=np.float64, copy=True)


def _resolve_learning_rate(method: str, options: Any, objective: Any) -> Any:
    """Fill a missing ``learning_rate`` of gd/hd from the thesis's tables, or explain."""
    if method not in _TABLE_OF or options.learning_rate is not None:
        return options
    memory = getattr(options, "memory", None)
    rate = learning_rate_for(objective, method, memory)
    if rate is None:
        problem = getattr(objective, "problem", None)
        found = (f"problem.name={getattr(problem, 'name', None)!r}, "
                 f"model_kind={getattr(objective, 'model_kind', None)!r}, "
                 f"penal={getattr(objective, 'penal', getattr(problem, 'penal', None))!r}")
        raise ValueError(
            f"method {method!r} needs learning_rate=<step size>: the thesis's {_TABLE_OF[method]} "
            f"have no tuned step for this objective ({found}"
            + (f", memory={memory}" if memory is not None else "") + ")")
    return dataclasses.replace(options, learning_rate=rate)


def _check_start(objective: Any, x0: Any, resume: OptimizationResult | None, method: str
                 ) -> np.ndarray:
    n = objective.size
    if resume is not None:
        if x0 is not None:
            raise ValueError("give either x0 or resume, not both (a resumed run starts at "
                             "resume.x)")
        if not isinstance(resume, OptimizationResult):
            raise TypeError(f"resume must be an OptimizationResult; got {type(resume).__name__}")
        if resume.method != method:
            raise ValueError(f"resume is a {resume.method!r} run; it cannot be continued with "
                             f"{method!r}")
        x0 = resume.x
    elif x0 is None:
        x0 = objective.initial()
    x0 = np.array(x0, dtype=np.float64, copy=True)
    if x0.shape != (n,):
        raise ValueError(f"the start has shape {x0.shape}; the objective expects ({n},)")
    if not np.all(np.isfinite(x0)):
        raise ValueError("the start contains NaN or infinite values")
    return x0


def optimize(objective: FlatObjective, method: str, *, steps: int, seed: int | None = None,
             record: RecordOptions = RecordOptions(),
             callback: Callable[[ProgressInfo], Any] | None = None,
             x0: np.ndarray | None = None, resume: OptimizationResult | None = None,
             **method_options: Any) -> OptimizationResult:
    """Minimize ``objective`` with ``method`` (see the module docstring).

    Args:
        objective: a :class:`~solvers.flat.FlatObjective`; ``mma`` and ``oc`` also need
            ``volume``, ``volume_grad``, ``volume_fraction`` and ``bounds``.
        method: one of :data:`METHODS`.
        steps: the budget, an integer >= 1 (evaluations for ``lbfgs``/``gd_ls``, iterations
            otherwise).
        seed: None or an integer >= 0 (no present method is random).
        record: what to keep besides the losses (iterates and their gradients every
            ``iterates_every`` iterates and at the last, designs at ``designs_at``, pairs).
        callback: called with a :class:`~solvers.result.ProgressInfo` after every accepted
            iterate.
        x0: float64 ``(n,)`` start; default ``objective.initial()``.
        resume: a previous result of the same method to continue.
        **method_options: fields of the method's options dataclass (e.g. ``learning_rate``,
            ``memory``); ``result.options`` holds all of them, as used.

    Returns:
        An :class:`~solvers.result.OptimizationResult` with every field filled.

    Raises:
        ValueError: unknown method (listing the methods), invalid option value, steps, seed,
            start or designs_at, missing learning rate, or no budget left to resume.
        TypeError: unknown option name (listing the valid ones), or an objective that lacks what
            the method needs.
    """
    options = make_options(method, method_options)
    if not isinstance(objective, FlatObjective):
        raise TypeError(f"objective must implement solvers.flat.FlatObjective (size, "
                        f"parameter_specs, initial, value, value_and_grad, hvp, design); got "
                        f"{type(objective).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):
        raise ValueError(f"seed must be None or an integer >= 0; got {seed!r}")
    if not isinstance(record, RecordOptions):
        raise TypeError(f"record must be a RecordOptions; got {type(record).__name__}")
    if any(i < -1 for i in record.designs_at):
        raise ValueError(f"record.designs_at accepts iterate indices >= 0 and -1 (the last); "
                         f"got {record.designs_at}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got {type(callback).__name__}")
    options = _resolve_learning_rate(method, options, objective)
    spec: MethodSpec = method_spec(method)
    if spec.needs_densities:
        constrained.density_contract(objective, method)
    start = _check_start(objective, x0, resume, method)
    state, note = None, ""
    if resume is not None and not spec.checkpointable:
        start = _check_start(objective, _restart_point(objective, method, resume), None, method)
        note = (f"; restarted from its original start with the full budget ({method}'s state "
                f"cannot be saved; the interrupted run had {resume.iterations} iterations)")
        resume = None
    elif resume is not None:
        state = _resume_state(objective, method, options, resume)
        if state is None:
            note = (f"; resumed at iterate {resume.iterations} without an optimizer state: the "
                    "method's memory restarted and the start was evaluated again")
    used = 0
    if resume is not None:
        used = resume.evaluations if spec.budget_unit == "evaluations" else resume.iterations
    budget = int(steps) - used
    if budget < 1:
        unit = spec.budget_unit
        raise ValueError(f"nothing left to resume: the previous run used {used} {unit} of "
                         f"steps={steps}")
    rec = Recorder(objective, method, dataclasses.asdict(options), record, callback, int(steps),
                   start, track_pairs=spec.keeps_pairs, previous=resume)
    rec.start_clock()
    try:
        status, message, converged = spec.run(objective, start, budget, options, rec, state)
    except RunStopped as stop:
        status, message, converged = stop.status, stop.message, False
    except KeyboardInterrupt:
        status, message, converged = ("interrupted", "KeyboardInterrupt at iterate "
                                      f"{rec.iteration}", False)
    return rec.result(status, message + note, converged=converged, final=True)
