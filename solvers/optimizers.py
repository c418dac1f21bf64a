"""``optimize``: one driver for every optimizer of the paper and the thesis.

Methods (details in the modules of :mod:`solvers.optim`):

=========  ==========================================================  ======================
method     what it is                                                  ``steps`` counts
=========  ==========================================================  ======================
``lbfgs``  scipy's L-BFGS-B, factr 1, pgtol 1e-14, m = 10, no bounds     evaluations (maxfun)
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
      concatenation. The method's internal state is NOT carried over: L-BFGS/HD memories, Adam
      moments (and its step count t) start afresh, and the resumed start is evaluated once more
      (that evaluation appears in ``loss_per_evaluation``, not as a new iterate).
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
from .optim import constrained, first_order, quasi_newton
from .optim.options import (OPTIONS_BY_METHOD, AdamOptions, GDLSOptions, GDOptions, HDOptions,
                            LbfgsOptions, MMAOptions, OCOptions, make_options)
from .optim.quasi_newton import two_loop_product
from .optim.recording import Recorder, RunStopped, curvature_pair_accepted
from .optim.step_sizes import THESIS_STEP_SIZES, learning_rate_for, tuned_learning_rate
from .result import OptimizationResult, ProgressInfo, RecordOptions

__all__ = [
    "optimize", "METHODS", "EVALUATION_BUDGET_METHODS",
    "LbfgsOptions", "GDOptions", "AdamOptions", "HDOptions", "GDLSOptions", "MMAOptions",
    "OCOptions", "two_loop_product", "curvature_pair_accepted", "THESIS_STEP_SIZES",
    "tuned_learning_rate",
]

METHODS: tuple[str, ...] = tuple(OPTIONS_BY_METHOD)
EVALUATION_BUDGET_METHODS = frozenset({"lbfgs", "gd_ls"})
_PAIR_METHODS = frozenset({"lbfgs", "hd"})
_TABLE_OF = {"gd": "Table B.1", "hd": "Tables B.2 (memory 1) and B.3 (memory 10)"}


def _run(method: str, objective: Any, x0: np.ndarray, budget: int, options: Any,
         rec: Recorder) -> tuple[str, str, bool]:
    if method == "lbfgs":
        return quasi_newton.run_lbfgs(x0, budget, options, rec)
    if method == "gd_ls":
        return quasi_newton.run_gd_ls(x0, budget, options, rec)
    if method == "hd":
        return quasi_newton.run_hd(x0, budget, options, rec)
    if method == "gd":
        return first_order.run_gd(x0, budget, options, rec)
    if method == "adam":
        return first_order.run_adam(x0, budget, options, rec)
    if method == "mma":
        return constrained.run_mma(objective, x0, budget, options, rec)
    return constrained.run_oc(objective, x0, budget, options, rec)


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
    if method in ("mma", "oc"):
        constrained.density_contract(objective, method)
    start = _check_start(objective, x0, resume, method)
    used = 0
    if resume is not None:
        used = resume.evaluations if method in EVALUATION_BUDGET_METHODS else resume.iterations
    budget = int(steps) - used
    if budget < 1:
        unit = "evaluations" if method in EVALUATION_BUDGET_METHODS else "iterations"
        raise ValueError(f"nothing left to resume: the previous run used {used} {unit} of "
                         f"steps={steps}")
    rec = Recorder(objective, method, dataclasses.asdict(options), record, callback, int(steps),
                   start, track_pairs=method in _PAIR_METHODS, previous=resume)
    rec.start_clock()
    try:
        status, message, converged = _run(method, objective, start, budget, options, rec)
    except RunStopped as stop:
        status, message, converged = stop.status, stop.message, False
    except KeyboardInterrupt:
        status, message, converged = ("interrupted", "KeyboardInterrupt at iterate "
                                      f"{rec.iteration}", False)
    return rec.result(status, message, converged=converged)
