"""The L-BFGS family: ``lbfgs``, ``gd_ls`` and ``hd`` (thesis Appendix B.2).

* ``lbfgs`` with ``implementation="own"`` (the default): our L-BFGS-B without bounds
  (:mod:`.lbfgs`), ``factr``/``pgtol`` stopping tests of L-BFGS-B (``pgtol`` on ``max |g_i|``,
  also at the start; ``f_old - f <= factr * eps * max(|f_old|, |f|, 1)`` after each step),
  ``maxfun = steps`` tested when an iteration ends (the last line search may take the run a few
  evaluations past ``steps``, as in the paper), memory resets after a failed line search recorded
  in ``reset_iterations``; a failed line search with an empty memory ends the run ("ABNORMAL: ",
  status ``"converged"``, as scipy reports it). The recorded pairs are exactly those that entered
  the memory (``s = stp d``, kept by L-BFGS-B's test), plus the pair ending at the final iterate,
  which L-BFGS-B would store next. Its state (below) can be checkpointed.
* ``lbfgs`` with ``implementation="scipy"``: :func:`scipy.optimize.minimize` with
  ``method="L-BFGS-B"`` (scipy >= 1.15 runs a C port of L-BFGS-B 3.0), no bounds,
  ``ftol = factr * eps``, ``gtol = pgtol``, ``maxcor = memory``, ``maxfun = steps``, unlimited
  iterations: the reference our engine is tested against. Every evaluation's loss is recorded;
  the point scipy reports to its callback is the last evaluated one, which gives ``(x_k, g_k)``
  without extra calls. Pairs are rebuilt from consecutive iterates with the skip rule; memory
  resets are not visible (the message says when scipy's final memory is smaller than expected).
  Its state cannot be saved: a resumed run restarts the memory.
* ``gd_ls``: L-BFGS-B restarted at every iteration (thesis B.2.4): each iteration is the first
  iteration of a fresh L-BFGS-B (our engine, empty memory): the direction ``d = (x - g) - x``,
  the Moré-Thuente search from the step ``min(1 / |d|, 1e10)``, at most ``maxls`` evaluations. It
  stops (``"converged"``) when ``max |g_i| <= pgtol`` at the start of an iteration, when a line
  search fails, or when one step decreases f by at most ``factr * eps * max(|f_old|, |f_new|, 1)``;
  ``steps`` bounds the evaluations as ``maxfun`` does (tested after the decrease test).
* ``hd``: Hessian descent, ``x_{k+1} = x_k - lr * H_k g_k`` with ``H_k g_k`` from the two-loop
  recursion (:class:`~.lbfgs.PairMemory`) over the newest ``memory`` accepted pairs
  ``s = x_{k+1} - x_k``, ``y = g_{k+1} - g_k``, ``H_k^0 = gamma I`` with ``gamma = sᵀy / yᵀy`` of
  the newest pair (``H^0 = I`` before the first pair), the skip rule
  :func:`~.recording.curvature_pair_accepted` and no line search. One evaluation per iteration.

States (:class:`~.state.OptimizerState`) at an iteration boundary, besides the common scalars:
``lbfgs``/``hd``: arrays ``x``, ``g``, ``s``, ``y`` (held pairs, oldest first), ``sy``, ``yy``;
scalars ``f``, and for ``lbfgs`` ``f_old`` (f before the last step), ``first_iteration``.
``gd_ls``: arrays ``x``, ``g``; scalars ``f``, ``f_old``. A resumed run from a state does not
evaluate its start and continues bit for bit; without a state the memory restarts.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import numpy as np
import scipy.optimize

from .lbfgs import PairMemory, lbfgsb_line_search, lbfgsb_pair_accepted
from .options import GDLSOptions, HDOptions, LbfgsOptions
from .recording import (MACHINE_EPSILON, Recorder, curvature_pair_accepted,
                        zero_gradient_outcome)
from .state import OptimizerState, require_arrays, require_scalars

__all__ = ["two_loop_product", "run_lbfgs", "run_gd_ls", "run_hd"]

_UNLIMITED = 2**31 - 1
PGTOL_MESSAGE = "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"
FACTR_MESSAGE = "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"
MAXFUN_MESSAGE = "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"
ABNORMAL_MESSAGE = "ABNORMAL: "


def two_loop_product(vector: np.ndarray, s_pairs: Sequence[np.ndarray],
                     y_pairs: Sequence[np.ndarray]) -> np.ndarray:
    """``H v`` for the L-BFGS inverse Hessian approximation (Nocedal & Wright, Algorithm 7.4).

    Args:
        vector: float64 ``(n,)``.
        s_pairs, y_pairs: the correction pairs, oldest first, each float64 ``(n,)``; all of them
            are used (pass the newest m for memory m). Every pair must have ``sᵀy > 0``.

    Returns:
        float64 ``(n,)``: ``H v`` with ``H^0 = gamma I``, ``gamma = sᵀy / yᵀy`` of the newest pair
        (``H = I`` when there are no pairs).
    """
    if len(s_pairs) != len(y_pairs):
        raise ValueError(f"{len(s_pairs)} s vectors but {len(y_pairs)} y vectors")
    vector = np.asarray(vector, dtype=np.float64)
    memory = PairMemory(vector.size, max(1, len(s_pairs)))
    for s, y in zip(s_pairs, y_pairs):
        s_row, y_row = memory.next_slot()
        s_row[:], y_row[:] = s, y
        memory.commit(float(s @ y), float(y @ y))
    return memory.inverse_product(vector, np.empty_like(vector))


def _relative_reduction_small(f_old: float, f: float, factr: float) -> bool:
    """L-BFGS-B's ``factr`` test: ``f_old - f <= factr * eps * max(|f_old|, |f|, 1)``."""
    return f_old - f <= factr * MACHINE_EPSILON * max(abs(f_old), abs(f), 1.0)


def _pgtol_reached(g: np.ndarray, pgtol: float) -> bool:
    """``max |g_i| <= pgtol`` (L-BFGS-B's projected-gradient test without bounds)."""
    return (max(float(g.max()), -float(g.min())) if g.size else 0.0) <= pgtol


# -- lbfgs -----------------------------------------------------------------------------------
@dataclasses.dataclass
class _Point:
    """The mutable iterate of a run: x, f, g, f before the last step, counters."""

    x: np.ndarray
    f: float
    g: np.ndarray
    f_old: float = float("nan")
    first_iteration: bool = True
    pending: bool = False  # the end-of-iteration tests of the last step are still to do


def _move_to(point: _Point, search, z: np.ndarray, trial: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Make the line search's accepted point the iterate; returns the ``(z, trial)`` scratch
    buffers for the next iteration (the old iterate's array takes the place of the one that was
    accepted, so no n-vector is allocated)."""
    if search.x is z:
        z = point.x
    else:
        trial = point.x
    point.x, point.f_old, point.f, point.g = search.x, point.f, search.f, search.g
    point.pending = True
    return z, trial


def _pairs_state(rec: Recorder, point: _Point, memory: PairMemory | None, copy: bool = True
                 ) -> OptimizerState:
    arrays = {"x": point.x.copy() if copy else point.x, "g": point.g.copy() if copy else point.g}
    if memory is not None:
        arrays.update(memory.export(copy=copy))
    scalars = {"f": point.f, "f_old": point.f_old, "first_iteration": point.first_iteration,
               "pending": point.pending}
    return rec.make_state(arrays, scalars)


def _load_point(state: OptimizerState, n: int, memory: PairMemory | None) -> _Point:
    """The iterate (and the pairs, into ``memory``) of a validated state."""
    shapes = {"x": (n,), "g": (n,)}
    if memory is not None:
        shapes.update({"s": (-1, n), "y": (-1, n), "sy": (-1,), "yy": (-1,)})
    arrays = require_arrays(state, shapes, finite=tuple(shapes))
    scalars = require_scalars(state, {"f": float, "first_iteration": bool, "pending": bool})
    f_old = state.scalars.get("f_old", float("nan"))
    if scalars["pending"] and not (isinstance(f_old, float) and np.isfinite(f_old)):
        raise ValueError(f"corrupt optimizer state of {state.method!r}: scalar 'f_old' = "
                         f"{f_old!r}; expected a finite float")
    if memory is not None:
        count = len(arrays["sy"])
        if count > memory.memory or arrays["s"].shape[0] != count or arrays["y"].shape[0] != count \
                or len(arrays["yy"]) != count or np.any(arrays["sy"] <= 0) \
                or np.any(arrays["yy"] <= 0):
            raise ValueError(f"corrupt optimizer state of {state.method!r}: {count} pairs with "
                             f"s {arrays['s'].shape}, y {arrays['y'].shape}, yy "
                             f"{arrays['yy'].shape} for a memory of {memory.memory} (sᵀy and "
                             "yᵀy must be > 0)")
        memory.load(arrays["s"], arrays["y"], arrays["sy"], arrays["yy"])
    return _Point(arrays["x"].copy(), scalars["f"], arrays["g"].copy(), float(f_old),
                  scalars["first_iteration"], scalars["pending"])


def _start_point(x0: np.ndarray, rec: Recorder, state: OptimizerState | None,
                 memory: PairMemory | None) -> "_Point":
    """The first point of an L-BFGS-type run: ``x0`` evaluated, or the point (and the pairs,
    into ``memory``) of a validated saved state."""
    if state is None:
        return _Point(np.array(x0, dtype=np.float64, copy=True), *rec.evaluate(x0, copy=False))
    point = _load_point(state, x0.size, memory)
    rec.restore(point.x, point.f, point.g)
    return point


def run_lbfgs(x0: np.ndarray, budget: int, options: LbfgsOptions, rec: Recorder,
              state: OptimizerState | None = None) -> tuple[str, str, bool]:
    """``lbfgs`` (module docstring); ``budget`` = ``maxfun`` for the evaluations of this call.

    Returns (status, message, converged).
    """
    if options.implementation == "scipy":
        return _run_lbfgs_scipy(x0, budget, options, rec)
    n = x0.size
    memory = PairMemory(n, options.memory)
    point = _start_point(x0, rec, state, memory)
    state_of = lambda copy=True: _pairs_state(rec, point, memory, copy)  # noqa: E731
    rec.boundary(state_of)
    evaluate = functools.partial(rec.evaluate, copy=False)  # buffers lent (rotation below)
    if not point.pending and _pgtol_reached(point.g, options.pgtol):
        return "converged", PGTOL_MESSAGE, True
    z, d, trial = np.empty(n), np.empty(n), np.empty(n)
    while True:
        if point.pending:
            if rec.local_evaluations > budget:
                return "max_steps", MAXFUN_MESSAGE, False
            if _pgtol_reached(point.g, options.pgtol):
                return "converged", PGTOL_MESSAGE, True
            if _relative_reduction_small(point.f_old, point.f, options.factr):
                return "converged", FACTR_MESSAGE, True
            point.pending = False
        if memory.count:
            memory.inverse_product(point.g, d)
            np.subtract(point.x, d, out=z)
        else:
            np.subtract(point.x, point.g, out=z)
        np.subtract(z, point.x, out=d)
        search = lbfgsb_line_search(evaluate, point.x, point.f, point.g, z, d, trial,
                                    first_iteration=point.first_iteration, maxls=options.maxls)
        if not search.success:
            if memory.count == 0:
                return "converged", ABNORMAL_MESSAGE, True
            memory.clear()
            rec.note_reset()
            continue
        kept, sy = lbfgsb_pair_accepted(search.gd_new, search.gd_old, search.stp)
        pair = None
        if kept:
            s_row, y_row = memory.next_slot()
            if search.stp == 1.0:
                np.copyto(s_row, d)
            else:
                np.multiply(d, search.stp, out=s_row)
            np.subtract(search.g, point.g, out=y_row)
            memory.commit(sy, float(y_row @ y_row))
            pair = (s_row, y_row)
        z, trial = _move_to(point, search, z, trial)
        point.first_iteration = False
        rec.accept(point.x, point.f, point.g, pair=pair, state=state_of, copy=False)


def _lbfgsb(fun, x0: np.ndarray, *, memory: int, factr: float, pgtol: float, maxls: int,
            maxfun: int, maxiter: int, callback) -> scipy.optimize.OptimizeResult:
    return scipy.optimize.minimize(
        fun, x0, jac=True, method="L-BFGS-B", callback=callback,
        options={"maxcor": memory, "ftol": factr * MACHINE_EPSILON, "gtol": pgtol,
                 "maxfun": maxfun, "maxiter": maxiter, "maxls": maxls})


def _run_lbfgs_scipy(x0: np.ndarray, budget: int, options: LbfgsOptions, rec: Recorder
                     ) -> tuple[str, str, bool]:
    """``lbfgs`` through scipy's L-BFGS-B; ``budget`` = scipy's ``maxfun``."""
    def on_iterate(intermediate_result):
        rec.accept_last_evaluation(intermediate_result.x)

    res = _lbfgsb(rec.evaluate, x0, memory=options.memory, factr=options.factr,
                  pgtol=options.pgtol, maxls=options.maxls, maxfun=budget, maxiter=_UNLIMITED,
                  callback=on_iterate)
    message = str(res.message)
    # scipy's final memory holds the kept pairs of all iterates but the last (L-BFGS-B stops
    # before storing that one), at most `memory` of them, unless it was emptied on the way.
    expected = min(sum(rec.local_pair_flags[:-1]), options.memory)
    held = getattr(getattr(res, "hess_inv", None), "n_corrs", expected)
    if held < expected:
        message += (f"; note: L-BFGS-B emptied its memory during the run (it ends with {held} "
                    f"pairs, {expected} expected), so not all recorded pairs were in use")
    if res.status == 1:
        return "max_steps", message, False
    return "converged", message, True


# -- gd_ls -----------------------------------------------------------------------------------
def run_gd_ls(x0: np.ndarray, budget: int, options: GDLSOptions, rec: Recorder,
              state: OptimizerState | None = None) -> tuple[str, str, bool]:
    """``gd_ls`` (module docstring); ``budget`` bounds evaluations like ``maxfun``."""
    n = x0.size
    point = _start_point(x0, rec, state, None)
    state_of = lambda copy=True: _pairs_state(rec, point, None, copy)  # noqa: E731
    rec.boundary(state_of)
    evaluate = functools.partial(rec.evaluate, copy=False)  # buffers lent, as in run_lbfgs
    z, d, trial = np.empty(n), np.empty(n), np.empty(n)
    while True:
        if point.pending:
            if _relative_reduction_small(point.f_old, point.f, options.factr):
                return "converged", "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH", True
            if rec.local_evaluations > budget:
                return "max_steps", (f"{MAXFUN_MESSAGE} ({rec.evaluations} > {rec.steps})"),\
                    False
            point.pending = False
        if options.max_iterations is not None and rec.iteration >= options.max_iterations:
            return "max_steps", f"reached {options.max_iterations} iterations", False
        if _pgtol_reached(point.g, options.pgtol):
            return "converged", PGTOL_MESSAGE, True
        np.subtract(point.x, point.g, out=z)
        np.subtract(z, point.x, out=d)
        search = lbfgsb_line_search(evaluate, point.x, point.f, point.g, z, d, trial,
                                    first_iteration=True, maxls=options.maxls)
        if not search.success:
            return "converged", ABNORMAL_MESSAGE, True
        z, trial = _move_to(point, search, z, trial)
        rec.accept(point.x, point.f, point.g, state=state_of, copy=False)


# -- hd --------------------------------------------------------------------------------------
def run_hd(x0: np.ndarray, budget: int, options: HDOptions, rec: Recorder,
           state: OptimizerState | None = None) -> tuple[str, str, bool]:
    """``hd`` (module docstring); ``budget`` = number of iterations."""
    n = x0.size
    memory = PairMemory(n, options.memory)
    if state is None:
        point = _Point(np.array(x0, dtype=np.float64, copy=True), *rec.evaluate(x0))
    else:
        point = _load_point(state, n, memory)
        rec.restore(point.x, point.f, point.g)
    state_of = lambda copy=True: _pairs_state(rec, point, memory, copy)  # noqa: E731
    rec.boundary(state_of)
    direction = np.empty(n)
    for _ in range(budget):
        if not np.any(point.g):
            return zero_gradient_outcome(point.f, rec.start_loss)
        memory.inverse_product(point.g, direction)
        x = point.x - options.learning_rate * direction  # a new array: lent to the recorder
        f, g = rec.evaluate(x, copy=False)
        s, y = x - point.x, g - point.g
        pair = None
        if curvature_pair_accepted(s, y, point.g):
            s_row, y_row = memory.next_slot()
            s_row[:], y_row[:] = s, y
            memory.commit(float(s @ y), float(y @ y))
            pair = (s, y)
        point.x, point.f_old, point.f, point.g = x, point.f, f, g
        rec.accept(x, f, g, pair=pair, state=state_of, copy=False)
    return "max_steps", f"reached {rec.steps} iterations", False
