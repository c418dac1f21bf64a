"""Settings of every optimizer of :func:`solvers.optimize`, one frozen dataclass per method.

Each dataclass validates itself in ``__post_init__`` (wrong type or range -> ``ValueError`` saying
what would be right). :func:`make_options` turns the keyword arguments given to
:func:`solvers.optimize` into the right dataclass and rejects unknown names with a ``TypeError``
that lists the valid ones. ``dataclasses.asdict(options)`` is JSON-friendly (floats, ints, None).

Defaults follow the paper (Hoyer et al. 2019) and the thesis (Appendix B.2):
L-BFGS-B with ``factr = 1``, ``pgtol = 1e-14``, ``m = 10``; Keras Adam
(``beta1 = 0.9``, ``beta2 = 0.999``, ``eps = 1e-7``); MMA with a volume tolerance of ``1e-8``;
OC with a move limit of 0.2 and lambda bisected on ``[1e-9, 1e9]``.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

__all__ = [
    "LbfgsOptions", "GDOptions", "AdamOptions", "HDOptions", "GDLSOptions", "MMAOptions",
    "OCOptions", "make_options",
]


def _check_real(owner: str, name: str, value: Any, *, low: float | None = None,
                high: float | None = None, low_open: bool = False, high_open: bool = False,
                allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite real number in the given range."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        expected = "a finite number" + (" or None" if allow_none else "")
        raise ValueError(f"{owner}.{name} must be {expected}; got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{owner}.{name} must be {'>' if low_open else '>='} {low}; got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{owner}.{name} must be {'<' if high_open else '<='} {high}; "
                         f"got {value!r}")


def _check_int(owner: str, name: str, value: Any, *, low: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{owner}.{name} must be an integer >= {low}; got {value!r}")


def _as_float(options: Any, *names: str) -> None:
    """Store the named (validated) real fields as Python floats, so ``asdict`` is JSON-friendly."""
    for name in names:
        value = getattr(options, name)
        if value is not None:
            object.__setattr__(options, name, float(value))


@dataclasses.dataclass(frozen=True)
class LbfgsOptions:
    """``lbfgs``: L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995) without bounds.

    Attributes:
        memory: number of correction pairs m kept by L-BFGS-B (``maxcor``).
        factr: stop when the relative decrease of f is <= ``factr * eps`` (``ftol = factr*eps``).
        pgtol: stop when ``max |g_i| <= pgtol``.
        maxls: maximum line-search trials per iteration.
        implementation: ``"own"`` (our engine, :mod:`solvers.optim.lbfgs`, checkpointable) or
            ``"scipy"`` (:func:`scipy.optimize.minimize`, the reference).
    """

    memory: int = 10
    factr: float = 1.0
    pgtol: float = 1e-14
    maxls: int = 20
    implementation: str = "own"

    def __post_init__(self):
        if self.implementation not in ("own", "scipy"):
            raise ValueError(f"LbfgsOptions.implementation must be 'own' or 'scipy'; got "
                             f"{self.implementation!r}")
        _check_int("LbfgsOptions", "memory", self.memory, low=1)
        _check_real("LbfgsOptions", "factr", self.factr, low=0.0)
        _check_real("LbfgsOptions", "pgtol", self.pgtol, low=0.0)
        _check_int("LbfgsOptions", "maxls", self.maxls, low=1)
        object.__setattr__(self, "memory", int(self.memory))
        object.__setattr__(self, "maxls", int(self.maxls))
        _as_float(self, "factr", "pgtol")


@dataclasses.dataclass(frozen=True)
class GDOptions:
    """``gd``: gradient descent with a fixed step, ``x <- x - learning_rate * g`` (Keras SGD).

    Attributes:
        learning_rate: the step size; None means "take it from the thesis's Table B.1"
            (see :mod:`solvers.optim.step_sizes`).
    """

    learning_rate: float | None = None

    def __post_init__(self):
        _check_real("GDOptions", "learning_rate", self.learning_rate, low=0.0, low_open=True,
                    allow_none=True)
        _as_float(self, "learning_rate")


@dataclasses.dataclass(frozen=True)
class AdamOptions:
    """``adam``: Adam as Keras implements it (Kingma & Ba 2015, epsilon outside the correction).

    Attributes:
        learning_rate: the step size (Keras default 0.001).
        beta1: decay of the first moment, in [0, 1).
        beta2: decay of the second moment, in [0, 1).
        epsilon: added to ``sqrt(v)``, > 0.
    """

    learning_rate: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7

    def __post_init__(self):
        _check_real("AdamOptions", "learning_rate", self.learning_rate, low=0.0, low_open=True)
        _check_real("AdamOptions", "beta1", self.beta1, low=0.0, high=1.0, high_open=True)
        _check_real("AdamOptions", "beta2", self.beta2, low=0.0, high=1.0, high_open=True)
        _check_real("AdamOptions", "epsilon", self.epsilon, low=0.0, low_open=True)
        _as_float(self, "learning_rate", "beta1", "beta2", "epsilon")


@dataclasses.dataclass(frozen=True)
class HDOptions:
    """``hd``: Hessian descent, the L-BFGS two-loop direction with a fixed step (thesis B.2.3).

    Attributes:
        learning_rate: the fixed step; None means "take it from the thesis's Table B.2
            (memory 1) or B.3 (memory 10)".
        memory: number of correction pairs m (the thesis used 1 and 10).
    """

    learning_rate: float | None = None
    memory: int = 10

    def __post_init__(self):
        _check_real("HDOptions", "learning_rate", self.learning_rate, low=0.0, low_open=True,
                    allow_none=True)
        _check_int("HDOptions", "memory", self.memory, low=1)
        object.__setattr__(self, "memory", int(self.memory))
        _as_float(self, "learning_rate")


@dataclasses.dataclass(frozen=True)
class GDLSOptions:
    """``gd_ls``: steepest descent with the line search of L-BFGS-B (L-BFGS-B restarted each step).

    Attributes:
        factr: stop when the relative decrease of f in one step is <= ``factr * eps``.
        pgtol: stop when ``max |g_i| <= pgtol``.
        maxls: maximum line-search trials per iteration.
        max_iterations: stop after this many iterations in all (a resumed run counts the
            earlier ones), besides the evaluation budget ``steps``; None: no iteration cap. The
            thesis's GD_LS is 700 restarted L-BFGS-B iterations, whatever they cost.
    """

    factr: float = 1.0
    pgtol: float = 1e-14
    maxls: int = 20
    max_iterations: int | None = None

    def __post_init__(self):
        _check_real("GDLSOptions", "factr", self.factr, low=0.0)
        _check_real("GDLSOptions", "pgtol", self.pgtol, low=0.0)
        _check_int("GDLSOptions", "maxls", self.maxls, low=1)
        object.__setattr__(self, "maxls", int(self.maxls))
        if self.max_iterations is not None:
            _check_int("GDLSOptions", "max_iterations", self.max_iterations, low=1)
            object.__setattr__(self, "max_iterations", int(self.max_iterations))
        _as_float(self, "factr", "pgtol")


@dataclasses.dataclass(frozen=True)
class MMAOptions:
    """``mma``: nlopt's LD_MMA (Svanberg 2002) on densities with a volume constraint.

    Attributes:
        constraint_tol: nlopt tolerance of the inequality ``volume - volume_fraction <= 0``.
        start_margin: relative margin of the strictly feasible start: a start whose volume
            exceeds ``volume_fraction * (1 - start_margin)`` is scaled down to it.
    """

    constraint_tol: float = 1e-8
    start_margin: float = 1e-6

    def __post_init__(self):
        _check_real("MMAOptions", "constraint_tol", self.constraint_tol, low=0.0)
        _check_real("MMAOptions", "start_margin", self.start_margin, low=0.0, high=1.0,
                    high_open=True)
        _as_float(self, "constraint_tol", "start_margin")


@dataclasses.dataclass(frozen=True)
class OCOptions:
    """``oc``: optimality criteria (Bendsoe & Sigmund; the 88-line code's update).

    ``x <- clip(x * sqrt(max(-dc / (lambda dv), 0)), max(lower, x - move), min(upper, x + move))``
    with lambda bisected on ``[lambda_min, lambda_max]`` until the bracket's relative width
    ``(hi - lo) / (hi + lo)`` is <= ``bisection_tol``; the upper end of the bracket is used, so the
    new design satisfies ``volume <= volume_fraction`` whenever any lambda in the bracket does.

    Attributes:
        move: move limit per iteration, > 0.
        change_tol: stop early (status ``converged``) once ``max |x_new - x| < change_tol``;
            None runs all steps.
        lambda_min, lambda_max: the bisection bracket of the Lagrange multiplier.
        bisection_tol: relative bracket width at which the bisection stops.
    """

    move: float = 0.2
    change_tol: float | None = None
    lambda_min: float = 1e-9
    lambda_max: float = 1e9
    bisection_tol: float = 1e-12

    def __post_init__(self):
        _check_real("OCOptions", "move", self.move, low=0.0, low_open=True)
        _check_real("OCOptions", "change_tol", self.change_tol, low=0.0, low_open=True,
                    allow_none=True)
        _check_real("OCOptions", "lambda_min", self.lambda_min, low=0.0, low_open=True)
        _check_real("OCOptions", "lambda_max", self.lambda_max, low=0.0, low_open=True)
        if self.lambda_max <= self.lambda_min:
            raise ValueError(f"OCOptions.lambda_max ({self.lambda_max}) must exceed lambda_min "
                             f"({self.lambda_min})")
        _check_real("OCOptions", "bisection_tol", self.bisection_tol, low=0.0, low_open=True)
        _as_float(self, "move", "change_tol", "lambda_min", "lambda_max", "bisection_tol")


def __getattr__(name: str):
    """``OPTIONS_BY_METHOD``: method name -> options class, read from the method registry."""
    if name == "OPTIONS_BY_METHOD":
        from .registry import REGISTRY
        return {method: spec.options_class for method, spec in REGISTRY.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_options(method: str, method_options: dict[str, Any]) -> Any:
    """Build the options dataclass of ``method`` from keyword arguments.

    Raises:
        ValueError: unknown method (the message lists the methods) or an invalid value.
        TypeError: an option name the method does not have (the message lists the valid ones).
    """
    from .registry import method_spec

    options_class = method_spec(method).options_class
    valid = [field.name for field in dataclasses.fields(options_class)]
    unknown = sorted(set(method_options) - set(valid))
    if unknown:
        raise TypeError(f"method {method!r} has no option(s) {', '.join(unknown)}; "
                        f"valid options: {', '.join(valid)}")
    return options_class(**method_options)
