"""One HDF5 run file per cell: its checkpoints while it runs, the full run once it finished.

Written only by the worker that runs the cell, atomically (temporary file in the same folder,
fsync, ``os.replace``): a kill leaves the previous checkpoint or the new one, never a torn file.
The layout follows the fields of :class:`solvers.result.OptimizationResult` (so a field added
there is saved without a change here)::

    /                 attrs: format = "nrto-study-run", cell (JSON), partial, best_loss,
                      best_evaluation, wall_s, cpu_s (time spent before this checkpoint)
    /result/          one dataset per array field; attrs: every other field (JSON, key "fields")
    /result/state/    the optimizer's state when the result has one (``state.to_dict()``):
                      nested groups of datasets (arrays) and a JSON attribute of the rest;
                      attrs ``class`` = "module:qualname" of the state's type
    /best_x           float64 ``(n,)``: the parameters of the lowest loss evaluated so far

Restoring a state calls ``<class>.from_dict`` of the class named in the file, which must be an
:class:`solvers.optim.state.OptimizerState` of the ``solvers`` package (a file cannot make the
reader import anything else). A file that cannot be read back (truncated, another cell's, a
foreign state class) raises :class:`DamagedRunFile`; the study moves it aside and restarts the
cell (:func:`studies.study.execute.run_cell`).
"""
from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from solvers.result import OptimizationResult
from studies.jsontext import loads_json
from studies.outputs import atomic_output
from studies.reader import STUDY_RUN_FORMAT, foreign_storage

__all__ = ["RUN_FORMAT", "Checkpoint", "DamagedRunFile", "read_checkpoint", "write_checkpoint"]

RUN_FORMAT = STUDY_RUN_FORMAT


class DamagedRunFile(OSError):
    """A cell's run file that cannot be read back (the message names the file and the fault)."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A run file read back.

    Attributes:
        result: the run so far (with ``state`` restored when it was saved).
        partial: True for a checkpoint of an unfinished run.
        best_x: parameters of the best evaluation so far, or None.
        best_loss: its loss (inf when none).
        best_evaluation: its index (-1 when none).
        wall_s, cpu_s: seconds spent on the cell before this checkpoint was written.
        cell: the cell's JSON dict.
    """

    result: OptimizationResult
    partial: bool
    best_x: np.ndarray | None
    best_loss: float
    best_evaluation: int
    wall_s: float
    cpu_s: float
    cell: Mapping[str, Any]


def _write_tree(group, value: Mapping[str, Any]) -> None:
    """Arrays as datasets, mappings as subgroups, everything else in the JSON attr ``plain``."""
    plain = {}
    for name, item in value.items():
        if isinstance(item, np.ndarray):
            group.create_dataset(name, data=item)
        elif isinstance(item, Mapping):
            _write_tree(group.create_group(name), item)
        elif isinstance(item, np.generic):
            plain[name] = item.item()
        else:
            plain[name] = item
    group.attrs["plain"] = json.dumps(plain, allow_nan=True)


def _read_tree(group) -> dict[str, Any]:
    import h5py

    out = loads_json(group.attrs.get("plain", "{}"))
    for name, item in group.items():
        out[name] = _read_tree(item) if isinstance(item, h5py.Group) else item[()]
    return out


def write_checkpoint(path: Path, cell: Mapping[str, Any], result: OptimizationResult, *,
                     partial: bool, best_x: np.ndarray | None, best_loss: float,
                     best_evaluation: int, wall_s: float, cpu_s: float) -> None:
    """Write the run file atomically (see the module docstring); a full file system is
    :class:`~studies.outputs.NoSpaceError` naming ``path``."""
    import h5py

    with atomic_output(path, suffix="") as temporary, h5py.File(temporary, "w") as handle:
        handle.attrs.update({"format": RUN_FORMAT, "cell": json.dumps(dict(cell)),
                             "partial": bool(partial), "best_loss": float(best_loss),
                             "best_evaluation": int(best_evaluation),
                             "wall_s": float(wall_s), "cpu_s": float(cpu_s)})
        group = handle.create_group("result")
        fields = {}
        for field in dataclasses.fields(result):
            value = getattr(result, field.name)
            if field.name == "state":
                if value is not None:
                    state = group.create_group("state")
                    _write_tree(state, value.to_dict())
                    kind = type(value)
                    state.attrs["class"] = f"{kind.__module__}:{kind.__qualname__}"
            elif isinstance(value, np.ndarray):
                group.create_dataset(field.name, data=value)
            else:
                fields[field.name] = value
        group.attrs["fields"] = json.dumps(fields, allow_nan=True)
        if best_x is not None:
            handle.create_dataset("best_x", data=np.asarray(best_x, np.float64))


def read_checkpoint(path: Path, key: str | None = None) -> Checkpoint | None:
    """The run file at ``path``, or None when there is none.

    Args:
        path: the run file.
        key: the cell's key, when known: a file written for another cell is damage.

    Raises:
        DamagedRunFile: the file exists but cannot be read as this cell's run file.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        checkpoint = _read_checkpoint(path)
    except DamagedRunFile:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as error:
        raise DamagedRunFile(f"{path} is a damaged run file ({type(error).__name__}: "
                             f"{' '.join(str(error).split())[:200]})") from None
    if key is not None and checkpoint.cell.get("key") != key:
        raise DamagedRunFile(f"{path} is the run file of another cell (key "
                             f"{checkpoint.cell.get('key')!r}, not {key!r})")
    return checkpoint


def _state_class(name: str):
    """The OptimizerState class named ``"module:qualname"`` (only within ``solvers``)."""
    from solvers.optim.state import OptimizerState

    module, _, qualname = name.partition(":")
    if module.split(".")[0] != "solvers":
        raise DamagedRunFile(f"its optimizer state names the class {name!r}, outside solvers")
    kind = importlib.import_module(module)
    for part in qualname.split("."):
        kind = getattr(kind, part)
    if not (isinstance(kind, type) and issubclass(kind, OptimizerState)):
        raise DamagedRunFile(f"its optimizer state names {name!r}, not an OptimizerState")
    return kind


def _read_checkpoint(path: Path) -> Checkpoint:
    import h5py

    with h5py.File(path, "r") as handle:
        if handle.attrs.get("format") != RUN_FORMAT:
            raise DamagedRunFile(f"{path} is not a study run file")
        if (foreign := foreign_storage(handle)) is not None:
            raise DamagedRunFile(f"{path}: {foreign} (nrto writes no such object)")
        group = handle["result"]
        kwargs = loads_json(group.attrs["fields"])
        names = {field.name for field in dataclasses.fields(OptimizationResult)}
        for name, item in group.items():
            if name == "state":
                try:
                    kind = _state_class(str(item.attrs["class"]))
                except DamagedRunFile as error:
                    raise DamagedRunFile(f"{path}: {error}") from None
                kwargs["state"] = kind.from_dict(_read_tree(item))
            elif name in names:
                kwargs[name] = item[()]
        result = OptimizationResult(**{k: v for k, v in kwargs.items() if k in names})
        best_x = handle["best_x"][()] if "best_x" in handle else None
        a = handle.attrs
        return Checkpoint(result=result, partial=bool(a["partial"]), best_x=best_x,
                          best_loss=float(a["best_loss"]),
                          best_evaluation=int(a["best_evaluation"]), wall_s=float(a["wall_s"]),
                          cpu_s=float(a["cpu_s"]), cell=loads_json(a["cell"]))
