"""First-order methods with a fixed step: ``gd`` and ``adam``, one evaluation per iteration.

* ``gd``: ``x_{k+1} = x_k - lr * g_k`` (Keras ``SGD`` without momentum, as in the thesis, B.2.2).
  Stops early on an exactly zero gradient: ``"converged"`` where the loss is not above the
  starting loss, ``"failed"`` (diverged) where it is, since a step so large that the sigmoid of
  every density saturated also zeroes the gradient.
* ``adam``: Keras's Adam (Kingma & Ba 2015, Algorithm 1 with the epsilon of Keras)::

      m_t = m_{t-1} + (1 - beta1) (g - m_{t-1})
      v_t = v_{t-1} + (1 - beta2) (g² - v_{t-1})
      x_t = x_{t-1} - lr sqrt(1 - beta2^t) / (1 - beta1^t) * m_t / (sqrt(v_t) + epsilon)

  with ``m_0 = v_0 = 0``. A resumed run restarts the moments at zero and ``t`` at 1.

A run of ``steps`` iterations makes ``steps + 1`` evaluations (the start and every new iterate).
"""
from __future__ import annotations

import numpy as np

from .options import AdamOptions, GDOptions
from .recording import Recorder

__all__ = ["run_gd", "run_adam"]


def run_gd(x0: np.ndarray, budget: int, options: GDOptions, rec: Recorder
           ) -> tuple[str, str, bool]:
    """``gd`` for ``budget`` iterations. Returns (status, message, converged)."""
    x = np.array(x0, dtype=np.float64, copy=True)
    f0, g = rec.evaluate(x)
    f = f0
    for _ in range(budget):
        if not np.any(g):
            if f > f0:  # a saturated parameterization (a too large step), not a minimum
                return ("failed", f"diverged: the gradient vanished at loss {f:.6g}, above the "
                        f"starting loss {f0:.6g} (the step saturated the parameterization; "
                        f"use a smaller learning_rate)", False)
            return "converged", "the gradient is exactly zero", True
        x = x - options.learning_rate * g
        f, g = rec.evaluate(x)
        rec.accept(x, f, g)
    return "max_steps", f"reached {budget} iterations", False


def run_adam(x0: np.ndarray, budget: int, options: AdamOptions, rec: Recorder
             ) -> tuple[str, str, bool]:
    """``adam`` for ``budget`` iterations. Returns (status, message, converged)."""
    x = np.array(x0, dtype=np.float64, copy=True)
    _, g = rec.evaluate(x)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    beta1, beta2 = options.beta1, options.beta2
    for t in range(1, budget + 1):
        alpha = options.learning_rate * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        m += (g - m) * (1.0 - beta1)
        v += (np.square(g) - v) * (1.0 - beta2)
        x = x - (m * alpha) / (np.sqrt(v) + options.epsilon)
        f, g = rec.evaluate(x)
        rec.accept(x, f, g)
    return "max_steps", f"reached {budget} iterations", False
