"""The L-BFGS family: ``lbfgs`` (scipy's L-BFGS-B), ``gd_ls`` and ``hd`` (thesis Appendix B.2).

* ``lbfgs``: :func:`scipy.optimize.minimize` with ``method="L-BFGS-B"`` (scipy >= 1.15 runs a C
  port of L-BFGS-B 3.0), no bounds, ``ftol = factr * eps``, ``gtol = pgtol``, ``maxcor = memory``,
  ``maxfun = steps`` and an unlimited iteration count. scipy tests ``maxfun`` only when an
  iteration ends, so the last line search may take the run a few evaluations past ``steps``
  (as in the paper). Every evaluation's loss is recorded (line-search trials included); the point
  scipy reports to its callback is the last evaluated one, which gives ``(x_k, g_k)`` without extra
  calls. The correction pairs are rebuilt from consecutive accepted iterates with L-BFGS-B's skip
  rule; the pair that ends at the final iterate is kept although L-BFGS-B stopped before storing
  it (it is the pair the next step would use). L-BFGS-B empties its memory after a failed line
  search or a singular factorization; the pairs do not show this, but the result's message says so
  when scipy's final memory holds fewer pairs than expected. An abnormal line-search termination
  (no decrease possible, usually rounding at a minimum) is reported as status ``"converged"`` with
  scipy's message.
* ``gd_ls``: L-BFGS-B restarted at every iteration (thesis B.2.4), i.e. scipy's L-BFGS-B with
  ``maxiter = 1`` called from each accepted iterate. Its first iteration has an empty memory, so
  its direction is ``-g`` and its line search (Moré-Thuente ``dcsrch``, strong Wolfe with
  ``ftol = 1e-3``, ``gtol = 0.9``) starts from the step ``1 / |g|``. The restart re-asks for
  ``(f, g)`` at the iterate, which is served from the last evaluation and not counted. ``steps``
  bounds the evaluations as scipy's ``maxfun`` does; the run also stops (``"converged"``) when one
  step decreases f by at most ``factr * eps * max(|f_old|, |f_new|, 1)`` (L-BFGS-B's own test) or
  when ``max |g_i| <= pgtol``.
* ``hd``: Hessian descent, ``x_{k+1} = x_k - lr * H_k g_k`` with ``H_k g_k`` from the two-loop
  recursion (Nocedal & Wright, Algorithm 7.4) over the newest ``memory`` accepted pairs,
  ``H_k^0 = gamma I`` with ``gamma = sᵀy / yᵀy`` of the newest pair (``H^0 = I`` before the first
  pair), the same skip rule as L-BFGS-B and no line search. One evaluation per iteration.

A resumed run starts with an empty memory (the pairs of the previous run are not reused).
"""
from __future__ import annotations

import collections
from typing import Sequence

import numpy as np
import scipy.optimize

from .options import GDLSOptions, HDOptions, LbfgsOptions
from .recording import MACHINE_EPSILON, Recorder

__all__ = ["two_loop_product", "run_lbfgs", "run_gd_ls", "run_hd"]

_UNLIMITED = 2**31 - 1


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
    q = np.array(vector, dtype=np.float64, copy=True)
    if len(s_pairs) != len(y_pairs):
        raise ValueError(f"{len(s_pairs)} s vectors but {len(y_pairs)} y vectors")
    if not len(s_pairs):
        return q
    rho = [1.0 / float(s @ y) for s, y in zip(s_pairs, y_pairs)]
    alpha = [0.0] * len(s_pairs)
    for i in range(len(s_pairs) - 1, -1, -1):
        alpha[i] = rho[i] * float(s_pairs[i] @ q)
        q -= alpha[i] * y_pairs[i]
    s_new, y_new = s_pairs[-1], y_pairs[-1]
    r = (float(s_new @ y_new) / float(y_new @ y_new)) * q
    for i in range(len(s_pairs)):
        beta = rho[i] * float(y_pairs[i] @ r)
        r += (alpha[i] - beta) * s_pairs[i]
    return r


def _lbfgsb(fun, x0: np.ndarray, *, memory: int, factr: float, pgtol: float, maxls: int,
            maxfun: int, maxiter: int, callback) -> scipy.optimize.OptimizeResult:
    return scipy.optimize.minimize(
        fun, x0, jac=True, method="L-BFGS-B", callback=callback,
        options={"maxcor": memory, "ftol": factr * MACHINE_EPSILON, "gtol": pgtol,
                 "maxfun": maxfun, "maxiter": maxiter, "maxls": maxls})


def run_lbfgs(x0: np.ndarray, budget: int, options: LbfgsOptions, rec: Recorder
              ) -> tuple[str, str, bool]:
    """``lbfgs`` (module docstring); ``budget`` = scipy's ``maxfun``. Returns (status, message,
    converged)."""
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


def run_gd_ls(x0: np.ndarray, budget: int, options: GDLSOptions, rec: Recorder
              ) -> tuple[str, str, bool]:
    """``gd_ls`` (module docstring); ``budget`` bounds evaluations like ``maxfun``."""
    def fun(x):
        if np.array_equal(x, rec.current[0]):
            return rec.current[1], rec.current[2].copy()
        return rec.evaluate(x)

    def on_iterate(intermediate_result):
        rec.accept_last_evaluation(intermediate_result.x)

    x = np.array(x0, dtype=np.float64, copy=True)
    rec.evaluate(x)
    tolerance = options.factr * MACHINE_EPSILON
    while True:
        iteration_before, f_old = rec.iteration, rec.current[1]
        res = _lbfgsb(fun, x, memory=1, factr=options.factr, pgtol=options.pgtol,
                      maxls=options.maxls, maxfun=_UNLIMITED, maxiter=1, callback=on_iterate)
        if rec.iteration == iteration_before:  # gradient test at the start, or line search failed
            return "converged", str(res.message), True
        x, f_new = rec.current[0], rec.current[1]
        if f_old - f_new <= tolerance * max(abs(f_old), abs(f_new), 1.0):
            return "converged", "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH", True
        if rec.local_evaluations > budget:
            return "max_steps", ("STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT "
                                 f"({rec.local_evaluations} > {budget})"), False


def run_hd(x0: np.ndarray, budget: int, options: HDOptions, rec: Recorder
           ) -> tuple[str, str, bool]:
    """``hd`` (module docstring); ``budget`` = number of iterations."""
    x = np.array(x0, dtype=np.float64, copy=True)
    _, g = rec.evaluate(x)
    s_memory: collections.deque = collections.deque(maxlen=options.memory)
    y_memory: collections.deque = collections.deque(maxlen=options.memory)
    for _ in range(budget):
        if not np.any(g):
            return "converged", "the gradient is exactly zero", True
        x = x - options.learning_rate * two_loop_product(g, s_memory, y_memory)
        f, g = rec.evaluate(x)
        pair = rec.accept(x, f, g)
        if pair is not None:
            s_memory.append(pair[0])
            y_memory.append(pair[1])
    return "max_steps", f"reached {budget} iterations", False
