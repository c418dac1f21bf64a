"""The method registry: one record per optimizer of :func:`solvers.optimize`.

Every place that lists the methods or needs one of their properties reads :data:`REGISTRY`: the
driver (:mod:`solvers.optimizers`: which run function, budget unit, pairs, density contract,
checkpoints), :func:`~solvers.optim.options.make_options` (options classes), and the command
line and studies (method names, pixel-only methods, pair methods). Adding an optimizer means
adding its record here.

Importing this module is cheap: a record's ``run`` imports the method's module on first call
(so listing methods does not import scipy.optimize or nlopt).

Every ``run`` has the signature ``run(objective, x0, budget, options, rec, state) -> (status,
message, converged)`` with ``x0`` float64 ``(n,)``, ``budget`` in the record's ``budget_unit``
(what is left of ``steps``), ``rec`` the :class:`~solvers.optim.recording.Recorder` and
``state`` an :class:`~solvers.optim.state.OptimizerState` to continue from, or None.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .options import (AdamOptions, GDLSOptions, GDOptions, HDOptions, LbfgsOptions, MMAOptions,
                      OCOptions)

__all__ = ["MethodSpec", "REGISTRY", "METHOD_NAMES", "method_spec", "BUDGET_UNITS"]

BUDGET_UNITS = ("evaluations", "iterations")


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """What the rest of the code needs to know about one optimizer.

    Attributes:
        name: the method name given to :func:`solvers.optimize`.
        summary: one line saying what it is.
        options_class: its frozen options dataclass.
        run: the function that runs it (signature in the module docstring).
        budget_unit: what ``steps`` counts: ``"evaluations"`` (scipy's ``maxfun``, tested when
            an iteration ends) or ``"iterations"``.
        keeps_pairs: it is L-BFGS-type: correction pairs and skip counts are recorded.
        needs_densities: it optimizes densities in [0, 1] under a volume constraint and needs a
            pixel objective without the sigmoid (``volume``, ``volume_grad``, ``bounds``, ...).
        checkpointable: its state can be saved, so ``resume`` continues bit for bit; otherwise
            a resumed run starts again from its recorded start with the whole budget.
    """

    name: str
    summary: str
    options_class: type
    run: Callable[..., tuple[str, str, bool]]
    budget_unit: str
    keeps_pairs: bool
    needs_densities: bool
    checkpointable: bool

    def __post_init__(self):
        if self.budget_unit not in BUDGET_UNITS:
            raise ValueError(f"MethodSpec {self.name!r}: budget_unit must be one of "
                             f"{BUDGET_UNITS}; got {self.budget_unit!r}")
        if not dataclasses.is_dataclass(self.options_class):
            raise ValueError(f"MethodSpec {self.name!r}: options_class must be a dataclass")


def _run_lbfgs(objective: Any, x0, budget, options, rec, state):
    from . import quasi_newton
    return quasi_newton.run_lbfgs(x0, budget, options, rec, state)


def _run_gd_ls(objective: Any, x0, budget, options, rec, state):
    from . import quasi_newton
    return quasi_newton.run_gd_ls(x0, budget, options, rec, state)


def _run_hd(objective: Any, x0, budget, options, rec, state):
    from . import quasi_newton
    return quasi_newton.run_hd(x0, budget, options, rec, state)


def _run_gd(objective: Any, x0, budget, options, rec, state):
    from . import first_order
    return first_order.run_gd(x0, budget, options, rec, state)


def _run_adam(objective: Any, x0, budget, options, rec, state):
    from . import first_order
    return first_order.run_adam(x0, budget, options, rec, state)


def _run_mma(objective: Any, x0, budget, options, rec, state):
    from . import constrained
    return constrained.run_mma(objective, x0, budget, options, rec)


def _run_oc(objective: Any, x0, budget, options, rec, state):
    from . import constrained
    return constrained.run_oc(objective, x0, budget, options, rec, state)


REGISTRY: Mapping[str, MethodSpec] = MappingProxyType({spec.name: spec for spec in (
    MethodSpec("lbfgs", "L-BFGS-B without bounds (ours, or scipy's with implementation='scipy')",
               LbfgsOptions, _run_lbfgs, "evaluations", keeps_pairs=True,
               needs_densities=False, checkpointable=True),
    MethodSpec("gd", "fixed-step gradient descent (Keras SGD)", GDOptions, _run_gd,
               "iterations", keeps_pairs=False, needs_densities=False, checkpointable=True),
    MethodSpec("adam", "Keras Adam", AdamOptions, _run_adam, "iterations", keeps_pairs=False,
               needs_densities=False, checkpointable=True),
    MethodSpec("hd", "Hessian descent: two-loop L-BFGS direction, fixed step", HDOptions,
               _run_hd, "iterations", keeps_pairs=True, needs_densities=False,
               checkpointable=True),
    MethodSpec("gd_ls", "steepest descent + L-BFGS-B line search (restarted L-BFGS)",
               GDLSOptions, _run_gd_ls, "evaluations", keeps_pairs=False,
               needs_densities=False, checkpointable=True),
    MethodSpec("mma", "nlopt's LD_MMA on densities with a volume constraint", MMAOptions,
               _run_mma, "iterations", keeps_pairs=False, needs_densities=True,
               checkpointable=False),
    MethodSpec("oc", "optimality criteria on densities with a volume constraint", OCOptions,
               _run_oc, "iterations", keeps_pairs=False, needs_densities=True,
               checkpointable=True),
)})
"""name -> :class:`MethodSpec`, in the order the methods are listed to users."""

METHOD_NAMES: tuple[str, ...] = tuple(REGISTRY)


def method_spec(name: str) -> MethodSpec:
    """The record of ``name``.

    Raises:
        ValueError: an unknown name (the message lists the methods).
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; expected one of "
                         f"{', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]
