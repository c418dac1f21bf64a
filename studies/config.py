"""The configuration of one optimization run (:class:`RunConfig`), and its JSON form.

A ``RunConfig`` is everything needed to repeat a run; the store (:mod:`studies.store`) keeps it
as the JSON attribute ``config`` of the run's group and reads it back with
:meth:`RunConfig.from_dict`. Values are validated when the configuration is made, so a bad value
is refused before any work (not when the finished run is written).
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from solvers.result import RecordOptions

__all__ = ["MODEL_KINDS", "SEED_LIMIT", "RunConfig", "dumps", "jsonable"]

MODEL_KINDS = ("cnn", "pixel")
SEED_LIMIT = 2**32  # seeds are in [0, SEED_LIMIT): numpy's legacy RandomState takes no more


def jsonable(value: Any) -> Any:
    """Plain-JSON copy of ``value`` (tuples become lists, numpy scalars/arrays become Python)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{value!r} ({type(value).__name__}) cannot be stored as JSON; "
                    f"use numbers, strings, booleans, lists or dicts")


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), sort_keys=True)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything needed to repeat one optimization run.

    Attributes:
        problem: task name, e.g. ``"mbb_beam_96x32_0.5"`` (``solvers.problems`` naming).
        family: the problem family (a key of ``solvers.problems.FAMILIES``).
        width, height: grid size in elements.
        volume_fraction: in (0, 1].
        model: ``"cnn"`` or ``"pixel"``.
        optimizer: method name for ``solvers.optimize`` (``"lbfgs"``, ``"mma"``, ...).
        steps: the run's budget (``steps`` of ``solvers.optimize``), >= 1.
        seed: seed of the model initialization and of stochastic methods, in [0, 2**32)
            (what every random generator used accepts and the store keeps as int64), or None.
        penal: SIMP penalty exponent p > 0.
        filter_radius: cone-filter radius > 0.
        options: extra keyword options of the optimizer (JSON-serializable).
        model_options: keyword options of the model (``CNNConfig`` fields for the CNN,
            ``volume_constraint`` for pixels).
        problem_params: keyword parameters of the family builder (e.g. ``num_stories``).
        record: what the optimizer records besides the loss.
    """

    problem: str
    family: str
    width: int
    height: int
    volume_fraction: float
    model: str
    optimizer: str
    steps: int
    seed: int | None = 0
    penal: float = 3.0
    filter_radius: float = 2.0
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    problem_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    record: RecordOptions = dataclasses.field(default_factory=RecordOptions)

    def __post_init__(self):
        for name in ("problem", "family", "optimizer"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string; got {getattr(self, name)!r}")
        if self.model not in MODEL_KINDS:
            raise ValueError(f"model must be one of {MODEL_KINDS}; got {self.model!r}")
        for name in ("width", "height", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) \
                    or not 0 <= self.seed < SEED_LIMIT:
                raise ValueError(f"seed must be an integer in [0, 2**32) or None; "
                                 f"got {self.seed!r}")
            object.__setattr__(self, "seed", int(self.seed))
        if not 0.0 < float(self.volume_fraction) <= 1.0:
            raise ValueError(f"volume_fraction must be in (0, 1]; got {self.volume_fraction!r}")
        object.__setattr__(self, "volume_fraction", float(self.volume_fraction))
        if self.volume_fraction * self.width * self.height < 1:
            raise ValueError(f"volume_fraction {self.volume_fraction:g} leaves less than one "
                             f"element of material on a {self.width}x{self.height} grid")
        for name in ("penal", "filter_radius"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite positive number; got {value!r}")
            object.__setattr__(self, name, value)
        for name in ("options", "model_options", "problem_params"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise TypeError(f"{name} must be a mapping of keyword options; got {value!r}")
            try:  # stored as JSON: reject what JSON cannot hold now, not at write time
                object.__setattr__(self, name, json.loads(dumps(dict(value))))
            except TypeError as error:
                raise ValueError(f"{name}: {error}") from None
        if not isinstance(self.record, RecordOptions):
            raise TypeError(f"record must be a RecordOptions; got {self.record!r}")

    @property
    def label(self) -> str:
        """Readable name, e.g. ``"mbb_beam_96x32_0.5/cnn/lbfgs/seed0"``."""
        return f"{self.problem}/{self.model}/{self.optimizer}/seed{self.seed}"

    @property
    def network_dtype(self) -> str:
        """The CNN's floating-point type (``"float64"`` for pixel runs)."""
        return str(self.model_options.get("dtype", "float64")) if self.model == "cnn" \
            else "float64"

    def with_float64_network(self) -> RunConfig:
        """This run with the float64 network (same parameter layout): how the landscape tools
        evaluate a float32-trained run at its stored parameters, for exact second derivatives."""
        if self.network_dtype == "float64":
            return self
        return dataclasses.replace(self, model_options={**self.model_options,
                                                        "dtype": "float64"})

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (inverse: :meth:`from_dict`)."""
        return jsonable(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        data = dict(data)
        record = dict(data.pop("record", {}))
        if "designs_at" in record:
            record["designs_at"] = tuple(record["designs_at"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known},
                   record=RecordOptions(**record))
