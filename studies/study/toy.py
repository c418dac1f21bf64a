"""Cheap analytic objectives that run through the study engine's real code path (for tests).

``toy/quadratic``: ``f(x) = 1/2 sum_i lam_i (x_i - 1)^2`` with ``lam`` log-spaced on [1, 4] over
``size`` coordinates; gradient descent with step ``eta`` contracts coordinate ``i`` by
``|1 - eta lam_i|`` per step, so after a fixed budget the final loss has a single best step near
``2 / (1 + 4) = 0.4`` and diverges for ``eta > 2 / 4 = 0.5``.

``toy/rosenbrock``: the chained Rosenbrock function of ``size`` coordinates (minimum 0 at all ones).

Starts: ``x0 = -1 + 0.5 * N(0, 1)`` per coordinate from ``numpy.random.default_rng(seed)`` (seed
-1: ``x0 = -1``). ``delay`` seconds are slept in every evaluation (to make kill tests land inside
a cell). The design is ``sigmoid(x)`` as a ``(1, size)`` image.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from solvers.flat import CallableObjective

__all__ = ["TOY_KINDS", "check_toy_cell", "toy_definition", "toy_objective"]

TOY_KINDS = ("quadratic", "rosenbrock")


def toy_definition(kind: str, size: Any, delay: Any) -> dict[str, Any]:
    from .spec import StudyError

    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise StudyError(f"toy/{kind}: size must be an integer >= 2; got {size!r}")
    if not isinstance(delay, (int, float)) or delay < 0:
        raise StudyError(f"toy/{kind}: delay must be a number of seconds >= 0; got {delay!r}")
    return {"toy": kind, "size": int(size), "delay": float(delay)}


def check_toy_cell(cell) -> None:
    from .spec import StudyError

    if cell.optimizer in ("mma", "oc"):
        raise StudyError(f"{cell.label}: toy problems have no volume constraint; use an "
                         f"unconstrained method (lbfgs, gd, hd, adam, gd_ls)")


def toy_objective(definition: Mapping[str, Any], seed: int) -> CallableObjective:
    """The toy objective of a cell (see the module docstring)."""
    kind, n, delay = definition["toy"], int(definition["size"]), float(definition["delay"])
    x0 = np.full(n, -1.0) if seed < 0 else -1.0 + 0.5 * np.random.default_rng(seed).normal(size=n)

    def pause() -> None:
        if delay:
            time.sleep(delay)

    if kind == "quadratic":
        lam = np.logspace(0.0, np.log10(4.0), n)

        def fun(x):
            pause()
            with np.errstate(over="ignore", invalid="ignore"):
                return 0.5 * float(np.sum(lam * (x - 1.0) ** 2))

        def grad(x):
            return lam * (x - 1.0)

        def hessp(x, v):
            return lam * v
    else:
        def fun(x):
            pause()
            with np.errstate(over="ignore", invalid="ignore"):  # a diverged run: inf or NaN
                return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))

        def grad(x):
            g = np.zeros_like(x)
            with np.errstate(over="ignore", invalid="ignore"):
                g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
                g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
            return g

        hessp = None

    return CallableObjective(fun=fun, grad=grad, x0=x0, hessp=hessp,
                             design_fn=lambda x: (0.5 + 0.5 * np.tanh(0.5 * x)).reshape(1, -1))
