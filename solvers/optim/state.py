"""Exact checkpoints of an optimizer's state at an iteration boundary.

An :class:`OptimizerState` is what a method needs, besides the recorded histories, to continue a
run as if it had never stopped: the current point and gradient, L-BFGS pairs, Adam moments,
counters. It holds only plain float64/int64/bool arrays and scalars (int, float, bool, str), so a
store can write it as datasets and attributes and read it back bit for bit
(:meth:`OptimizerState.to_dict` / :meth:`OptimizerState.from_dict`).

The ``fingerprint`` identifies the objective (:func:`objective_fingerprint`): its class, the
problem name, the model kind, the SIMP penalty and the number of parameters n, e.g.
``"ModelObjective|problem=mbb_beam_16x8_0.5|model=cnn|penal=3.0|n=1234"``. A state is only ever
applied to a run of the same method on an objective of the same fingerprint (checked by
:func:`check_compatible`).

Which arrays and scalars each method keeps is documented where the method lives; every state also
has the scalar ``evaluations`` (objective calls of the run at the boundary), which must equal the
``evaluations`` of the result that carries it.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

__all__ = ["OptimizerState", "objective_fingerprint", "check_compatible", "option_scalars",
           "require_arrays", "require_scalars"]

_SCALAR_TYPES = (bool, int, float, str)


@dataclasses.dataclass(frozen=True, eq=False)
class OptimizerState:
    """A method's full state at an iteration boundary (see the module docstring).

    Attributes:
        method: the method name (``"lbfgs"``, ``"adam"``, ...).
        size: n, the number of parameters.
        fingerprint: identifies the objective (:func:`objective_fingerprint`).
        arrays: name -> numpy array (float64, int64 or bool); stored as given, not copied.
        scalars: name -> int, float, bool or str.
    """

    method: str
    size: int
    fingerprint: str
    arrays: Mapping[str, np.ndarray]
    scalars: Mapping[str, int | float | bool | str]

    def __post_init__(self):
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"OptimizerState.method must be a non-empty string; got "
                             f"{self.method!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, numbers.Integral) \
                or self.size < 1:
            raise ValueError(f"OptimizerState.size must be an integer >= 1; got {self.size!r}")
        if not isinstance(self.fingerprint, str):
            raise ValueError(f"OptimizerState.fingerprint must be a string; got "
                             f"{self.fingerprint!r}")
        arrays = {}
        for name, value in dict(self.arrays).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"OptimizerState array names must be non-empty strings; got "
                                 f"{name!r}")
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fib":
                raise ValueError(f"OptimizerState array {name!r} must be a numpy array of "
                                 f"floats, integers or booleans; got {type(value).__name__}")
            arrays[name] = value
        scalars = {}
        for name, value in dict(self.scalars).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"OptimizerState scalar names must be non-empty strings; got "
                                 f"{name!r}")
            if isinstance(value, np.generic):
                value = value.item()
            if not isinstance(value, _SCALAR_TYPES):
                raise ValueError(f"OptimizerState scalar {name!r} must be an int, float, bool or "
                                 f"str; got {type(value).__name__}")
            scalars[name] = value
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "arrays", MappingProxyType(arrays))
        object.__setattr__(self, "scalars", MappingProxyType(scalars))

    def __eq__(self, other: object) -> bool:
        """Equal when every field, array (values bit for bit, dtype, shape) and scalar agree."""
        if not isinstance(other, OptimizerState):
            return NotImplemented
        return (self.method == other.method and self.size == other.size
                and self.fingerprint == other.fingerprint
                and dict(self.scalars) == dict(other.scalars)
                and set(self.arrays) == set(other.arrays)
                and all(self.arrays[k].dtype == other.arrays[k].dtype
                        and self.arrays[k].shape == other.arrays[k].shape
                        and self.arrays[k].tobytes() == other.arrays[k].tobytes()
                        for k in self.arrays))

    __hash__ = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"method", "size", "fingerprint", "arrays": {...}, "scalars": {...}}``."""
        return {"method": self.method, "size": self.size, "fingerprint": self.fingerprint,
                "arrays": dict(self.arrays), "scalars": dict(self.scalars)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimizerState:
        """Inverse of :meth:`to_dict` (validated; ``ValueError`` names a missing key)."""
        missing = [key for key in ("method", "size", "fingerprint", "arrays", "scalars")
                   if key not in data]
        if missing:
            raise ValueError(f"an optimizer state needs the keys method, size, fingerprint, "
                             f"arrays, scalars; missing: {', '.join(missing)}")
        return cls(method=str(data["method"]), size=int(data["size"]),
                   fingerprint=str(data["fingerprint"]),
                   arrays={str(k): np.asarray(v) for k, v in dict(data["arrays"]).items()},
                   scalars=dict(data["scalars"]))


def objective_fingerprint(objective: Any) -> str:
    """``"Class|problem=NAME|model=KIND|penal=P|n=N"`` from what ``objective`` exposes.

    Attributes an objective lacks are written as ``None`` (e.g. a
    :class:`~solvers.flat.CallableObjective` has no problem).
    """
    problem = getattr(objective, "problem", None)
    penal = getattr(objective, "penal", getattr(problem, "penal", None))
    return (f"{type(objective).__name__}|problem={getattr(problem, 'name', None)}"
            f"|model={getattr(objective, 'model_kind', None)}"
            f"|penal={None if penal is None else float(penal)}|n={int(objective.size)}")


def check_compatible(state: OptimizerState, method: str, objective: Any,
                     options: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming what differs between ``state`` and the run to continue.

    Compared: the method, n, the objective's fingerprint and the method's options (stored in
    the state's scalars as ``option.<name>``; an option that is None is not stored).
    """
    if not isinstance(state, OptimizerState):
        raise ValueError(f"the optimizer state must be an OptimizerState; got "
                         f"{type(state).__name__}")
    if state.method != method:
        raise ValueError(f"the checkpoint holds the state of method {state.method!r}; this run "
                         f"uses {method!r}")
    if state.size != objective.size:
        raise ValueError(f"the checkpoint's state has n = {state.size} parameters; the "
                         f"objective has n = {objective.size}")
    fingerprint = objective_fingerprint(objective)
    if state.fingerprint != fingerprint:
        raise ValueError(f"the checkpoint is of another objective: {state.fingerprint!r}; this "
                         f"run's objective is {fingerprint!r}")
    for name, value in option_scalars(options).items():
        stored = state.scalars.get(name)
        if stored != value:
            raise ValueError(f"the checkpoint was made with {name[len('option.'):]}={stored!r}; "
                             f"this run has {value!r}")


def option_scalars(options: Mapping[str, Any]) -> dict[str, int | float | bool | str]:
    """The method's options as state scalars ``option.<name>`` (None values left out)."""
    return {f"option.{name}": value for name, value in options.items() if value is not None}


def require_arrays(state: OptimizerState, shapes: Mapping[str, tuple[int, ...]], *,
                   finite: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The named float64 arrays of ``state`` with the given shapes (-1: any length).

    Raises:
        ValueError: "corrupt optimizer state" and what is missing, misshapen or not finite.
    """
    arrays = {}
    for name, shape in shapes.items():
        if name not in state.arrays:
            raise ValueError(f"corrupt optimizer state of {state.method!r}: array {name!r} is "
                             f"missing (it has {', '.join(sorted(state.arrays)) or 'none'})")
        value = np.asarray(state.arrays[name])
        if value.ndim != len(shape) or any(want not in (-1, got)
                                           for want, got in zip(shape, value.shape)):
            raise ValueError(f"corrupt optimizer state of {state.method!r}: array {name!r} has "
                             f"shape {value.shape}; expected {shape} (-1: any)")
        if value.dtype != np.float64:
            raise ValueError(f"corrupt optimizer state of {state.method!r}: array {name!r} has "
                             f"dtype {value.dtype}; expected float64")
        if name in finite and not np.all(np.isfinite(value)):
            raise ValueError(f"corrupt optimizer state of {state.method!r}: array {name!r} has "
                             f"{int(np.sum(~np.isfinite(value)))} NaN or infinite entries")
        arrays[name] = value
    return arrays


def require_scalars(state: OptimizerState, types: Mapping[str, type]) -> dict[str, Any]:
    """The named scalars of ``state`` with the given Python types (finite when float).

    Raises:
        ValueError: "corrupt optimizer state" and which scalar is missing or wrong.
    """
    values = {}
    for name, kind in types.items():
        if name not in state.scalars:
            raise ValueError(f"corrupt optimizer state of {state.method!r}: scalar {name!r} is "
                             f"missing")
        value = state.scalars[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok or (kind is float and not math.isfinite(value)):
            raise ValueError(f"corrupt optimizer state of {state.method!r}: scalar {name!r} = "
                             f"{value!r}; expected a finite {kind.__name__}")
        values[name] = value
    return values
