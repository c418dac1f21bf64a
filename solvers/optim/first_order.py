"""First-order methods with a fixed step: ``gd`` and ``adam``, one evaluation per iteration.

* ``gd``: ``x_{k+1} = x_k - lr * g_k`` (Keras ``SGD`` without momentum, as in the thesis, B.2.2).
  Stops early on an exactly zero gradient: ``"converged"`` where the loss is not above the
  starting loss, ``"failed"`` (diverged) where it is, since a step so large that the sigmoid of
  every density saturated also zeroes the gradient.
* ``adam``: Keras's Adam (Kingma & Ba 2015, Algorithm 1 with the epsilon of Keras)::

      m_t = m_{t-1} + (1 - beta1) (g - m_{t-1})
      v_t = v_{t-1} + (1 - beta2) (g² - v_{t-1})
      x_t = x_{t-1} - lr sqrt(1 - beta2^t) / (1 - beta1^t) * m_t / (sqrt(v_t) + epsilon)

  with ``m_0 = v_0 = 0``.

A run of ``steps`` iterations makes ``steps + 1`` evaluations (the start and every new iterate).
States (:class:`~.state.OptimizerState`) at an iteration boundary: arrays ``x``, ``g`` and for
``adam`` ``m``, ``v``; scalars ``f`` and for ``adam`` ``t`` (the number of updates made). A run
resumed from a state continues bit for bit without evaluating its start; without one, ``adam``
restarts its moments at zero and ``t`` at 1.
"""
from __future__ import annotations

import numpy as np

from .options import AdamOptions, GDOptions
from .recording import Recorder, zero_gradient_outcome
from .state import OptimizerState, require_arrays, require_scalars

__all__ = ["run_gd", "run_adam"]


def _start(x0: np.ndarray, rec: Recorder, state: OptimizerState | None,
           moments: bool) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], int]:
    """(x, g, {m, v}, t) from the start (evaluated) or from a validated state (restored)."""
    n = x0.size
    if state is None:
        x = np.array(x0, dtype=np.float64, copy=True)
        _, g = rec.evaluate(x)
        extra = {"m": np.zeros(n), "v": np.zeros(n)} if moments else {}
        return x, g, extra, 0
    names = ("x", "g", "m", "v") if moments else ("x", "g")
    arrays = require_arrays(state, {name: (n,) for name in names}, finite=names)
    scalars = require_scalars(state, {"f": float, **({"t": int} if moments else {})})
    if moments and (scalars["t"] < 0 or np.any(arrays["v"] < 0)):
        raise ValueError(f"corrupt optimizer state of 'adam': t = {scalars['t']} and "
                         f"{int(np.sum(arrays['v'] < 0))} negative entries of v")
    x, g = arrays["x"].copy(), arrays["g"].copy()
    rec.restore(x, scalars["f"], g)
    extra = {name: arrays[name].copy() for name in ("m", "v")} if moments else {}
    return x, g, extra, scalars.get("t", 0)


def run_gd(x0: np.ndarray, budget: int, options: GDOptions, rec: Recorder,
           state: OptimizerState | None = None) -> tuple[str, str, bool]:
    """``gd`` for ``budget`` iterations. Returns (status, message, converged)."""
    x, g, _, _ = _start(x0, rec, state, moments=False)

    def state_of(x=x, g=g, f=rec.current[1], copy=True):
        return rec.make_state({"x": x.copy(), "g": g.copy()}, {"f": f})

    rec.boundary(state_of)
    f0, f = rec.start_loss, rec.current[1]
    for _ in range(budget):
        if not np.any(g):
            return zero_gradient_outcome(f, f0)
        x = x - options.learning_rate * g
        f, g = rec.evaluate(x)
        rec.accept(x, f, g, state=lambda copy=True, x=x, g=g, f=f: state_of(x, g, f))
    return "max_steps", f"reached {rec.steps} iterations", False


def run_adam(x0: np.ndarray, budget: int, options: AdamOptions, rec: Recorder,
             state: OptimizerState | None = None) -> tuple[str, str, bool]:
    """``adam`` for ``budget`` iterations. Returns (status, message, converged)."""
    x, g, moments, t0 = _start(x0, rec, state, moments=True)
    m, v = moments["m"], moments["v"]

    def state_of(x=x, g=g, f=rec.current[1], m=m, v=v, t=t0, copy=True):
        return rec.make_state({"x": x.copy(), "g": g.copy(), "m": m.copy(), "v": v.copy()},
                              {"f": f, "t": t})

    rec.boundary(state_of)
    beta1, beta2 = options.beta1, options.beta2
    for t in range(t0 + 1, t0 + budget + 1):
        alpha = options.learning_rate * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        m = m + (g - m) * (1.0 - beta1)  # new arrays: the boundary's state keeps the old ones
        v = v + (np.square(g) - v) * (1.0 - beta2)
        x = x - (m * alpha) / (np.sqrt(v) + options.epsilon)
        f, g = rec.evaluate(x)
        rec.accept(x, f, g, state=lambda copy=True, x=x, g=g, f=f, m=m, v=v, t=t:
                   state_of(x, g, f, m, v, t))
    return "max_steps", f"reached {rec.steps} iterations", False
