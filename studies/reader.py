"""Reading results files (the schema of ``results/README.md``), and the typed records read.

:class:`ResultsFile` is the reference reader; :mod:`studies.store` is the only writer and
re-exports every name of this module, so ``from studies.store import ResultsFile`` keeps working.
The recorded fields, their axes, dtypes and descriptions come from the field metadata of
:class:`solvers.result.OptimizationResult` (:func:`solvers.result.stored_fields`).

Each call opens, reads and closes the file, so writers may replace it in between. A damaged run
(a missing or unreadable attribute or dataset) makes only the calls that need it fail, with
:class:`BrokenRunError` naming the run and what is broken.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from solvers.flat import ParameterSpec
from solvers.names import did_you_mean
from solvers.optim.state import OptimizerState
from solvers.result import STATUSES, OptimizationResult, length_problem, stored_fields
from studies.config import RunConfig
from studies.jsontext import loads_json

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "STUDY_RUN_FORMAT",
    "AnalysisSummary",
    "BrokenRunError",
    "Provenance",
    "ResultsFile",
    "RunNotFoundError",
    "RunSummary",
    "StoreError",
    "StoreFormatError",
    "StoreLockedError",
    "StoredAnalysis",
    "StoredRun",
    "foreign_storage",
]

SCHEMA = "nrto-results"
SCHEMA_VERSION = 1
# the ``format`` attribute of a study's run files (studies.study.runfile), told apart from
# results files so that opening one says how to read it
STUDY_RUN_FORMAT = "nrto-study-run"
_RUN_ID = re.compile(r"^run-(\d{4,})$")
_ANALYSIS_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# The recorded fields and how each is stored: solvers.result.OptimizationResult's field metadata.
_FIELDS = stored_fields()
_DATASETS = {name: spec for name, spec in _FIELDS.items() if spec.axes is not None}
_ATTRIBUTES = {name: spec for name, spec in _FIELDS.items()
               if spec.axes is None and spec.dtype != "group"}
# Fields kept as a subgroup of the run by their own codec (the optimizer state).
_STATE_FIELD, _STATE_GROUP = "state", "optimizer_state"
assert {n for n, s in _FIELDS.items() if s.dtype == "group"} == {_STATE_FIELD}


class StoreError(Exception):
    """Base class of the errors of the results store (their messages are one line)."""


class StoreFormatError(StoreError):
    """The file is missing, not HDF5, or not an nrto results file of a known schema version."""


class BrokenRunError(StoreFormatError):
    """One run of a results file is damaged (the message names the run and what is broken)."""


class StoreLockedError(StoreError):
    """Another process kept the file's write lock longer than the timeout."""


class RunNotFoundError(StoreError, KeyError):
    """No run with that id or label (the message names close matches)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# -- typed records returned by the reader ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where and with what a run was computed.

    Attributes:
        versions: package name -> version string (``"python"`` included; absent packages omitted).
        git_revision: commit hash of the nrto checkout, or ``"unknown"``.
        git_dirty: whether tracked files differed from that commit (None when unknown).
        hostname: machine name.
        created, updated: ISO 8601 UTC times of the first and the latest write of the run.
    """

    versions: Mapping[str, str]
    git_revision: str
    git_dirty: bool | None
    hostname: str
    created: str
    updated: str


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One row of the table of runs (read from attributes only: cheap).

    ``final_loss`` is the loss at the last iterate and ``best_loss`` the minimum over all
    evaluations; both are NaN for a run that has not completed an iterate yet.
    """

    run_id: str
    label: str
    config: RunConfig
    status: str
    partial: bool
    iterations: int
    evaluations: int
    final_loss: float
    best_loss: float
    elapsed: float
    updated: str

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-compatible dict: the table row plus the full configuration."""
        c = self.config
        return {"run_id": self.run_id, "label": self.label, "problem": c.problem,
                "model": c.model, "optimizer": c.optimizer, "seed": c.seed, "steps": c.steps,
                "iterations": self.iterations, "evaluations": self.evaluations,
                "final_loss": _finite_or_none(self.final_loss),
                "best_loss": _finite_or_none(self.best_loss), "status": self.status,
                "partial": self.partial, "elapsed": self.elapsed, "updated": self.updated,
                "config": c.to_dict()}


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclasses.dataclass(frozen=True)
class StoredRun:
    """A run read back from the store.

    Attributes:
        run_id: e.g. ``"run-0003"``.
        label: ``config.label`` at write time.
        config: the configuration.
        result: the recorded arrays; ``result.designs`` are dequantized to float64 ``(d, H, W)``.
        partial: True for a checkpoint of an unfinished (running, interrupted or killed) run.
        provenance: package versions, git revision, host and times.
        parameter_specs: layout of the flat parameter vector (empty when not recorded).
    """

    run_id: str
    label: str
    config: RunConfig
    result: OptimizationResult
    partial: bool
    provenance: Provenance
    parameter_specs: tuple[ParameterSpec, ...] = ()


@dataclasses.dataclass(frozen=True)
class AnalysisSummary:
    """One stored analysis of a run, without its arrays (see :meth:`ResultsFile.analyses`).

    Attributes:
        name: ``"<kind>/<key>"``, e.g. ``"spectrum/hessian_k0"``.
        kind, key: the two parts of the name.
        settings: what the analysis was computed with (the ``settings`` JSON attribute).
        created: ISO 8601 UTC time of the write.
        shapes: dataset name -> shape.
    """

    name: str
    kind: str
    key: str
    settings: Mapping[str, Any]
    created: str
    shapes: Mapping[str, tuple[int, ...]]


@dataclasses.dataclass(frozen=True)
class StoredAnalysis:
    """One analysis read back from the store (see :func:`write_analysis`).

    Attributes:
        run_id: the run it belongs to.
        name, kind, key, settings, created: as in :class:`AnalysisSummary`.
        arrays: dataset name -> array, as written.
        axes: dataset name -> names of its axes.
        run_updated: the run's ``updated`` time when the analysis was written.
        git_revision: commit of the checkout that computed it.
    """

    run_id: str
    name: str
    kind: str
    key: str
    settings: Mapping[str, Any]
    created: str
    arrays: Mapping[str, np.ndarray]
    axes: Mapping[str, tuple[str, ...]]
    run_updated: str
    git_revision: str


def _analysis_parts(name: str) -> tuple[str, str]:
    """``"kind/key"`` -> ``(kind, key)``, each a plain name (letters, digits, ``_ . -``)."""
    parts = str(name).split("/")
    if len(parts) != 2 or not all(_ANALYSIS_PART.match(part) for part in parts):
        raise ValueError(f"an analysis name must look like 'kind/key' (letters, digits, '_', '.', "
                         f"'-'), e.g. 'spectrum/hessian_k0'; got {name!r}")
    return parts[0], parts[1]


# -- reading ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _open(path: Path):
    """Open an existing results file for reading, checking the schema."""
    import h5py

    if not path.exists():
        raise StoreFormatError(f"no such results file: {path}")
    if not path.is_file():
        raise StoreFormatError(f"{path} is not a regular file (not an nrto results file)")
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise StoreFormatError(f"{path} is not an HDF5 file (not an nrto results file)") from None
    with handle:
        schema = handle.attrs.get("schema")
        if schema is None and _text(handle.attrs.get("format", "")) == STUDY_RUN_FORMAT:
            raise StoreFormatError(f"{path} is a study's run file (one cell of a study), not an "
                                   f"nrto results file; `nrto study export {path} --out "
                                   f"FILE.h5` copies it into one that every nrto command reads")
        if schema is None or _text(schema) != SCHEMA:
            found = "no schema attribute" if schema is None else f"schema {_text(schema)!r}"
            raise StoreFormatError(f"{path} is an HDF5 file but not an nrto results file "
                                   f"({found}; expected {SCHEMA!r})")
        raw = handle.attrs.get("schema_version")
        try:
            version = int(raw)
            if version != float(raw):
                raise ValueError
        except (TypeError, ValueError):
            raise StoreFormatError(f"{path}: damaged results file: schema_version is {raw!r}, "
                                   f"not an integer") from None
        if version > SCHEMA_VERSION:
            raise StoreFormatError(f"{path} uses schema version {version}; this nrto reads up to "
                                   f"{SCHEMA_VERSION} (update nrto)")
        if "runs" not in handle:
            raise StoreFormatError(f"{path}: damaged results file: it has the schema attribute "
                                   f"but no /runs group")
        for group, name in [(handle, "runs"), *((handle["runs"], n) for n in handle["runs"])]:
            if (foreign := _links_outside(group, name)) is not None:
                raise StoreFormatError(f"{path}: {foreign}; {_NOT_OURS}")
        yield handle


# nrto writes plain groups and datasets only. A soft or external link, a dataset whose data lie
# in external raw files or a virtual dataset comes from another tool or a crafted file: reading
# it would read (and a rewrite would copy into this file) another file's bytes, e.g. a private
# file read as a run's parameters. Such runs are damaged; nothing of them is read.
_NOT_OURS = "nrto writes no such object, so it is not read (the file was made by another tool)"
_LINK_KINDS = {1: "a soft link", 64: "an external link (to another file)"}


def _links_outside(group, name: str) -> str | None:
    """What is foreign about the link ``name`` of ``group`` (not a hard link), or None."""
    from h5py import h5l

    kind = group.id.links.get_info(name.encode()).type
    if kind == h5l.TYPE_HARD:
        return None
    where = f"{group.name.rstrip('/')}/{name}"
    return f"{where} is {_LINK_KINDS.get(kind, f'a link of type {kind}')}"


def foreign_storage(group) -> str | None:
    """What in ``group`` (an h5py group: a run with its optimizer state and analyses, or a whole
    file) is not a plain group or a dataset stored in its file, or None (about 1 ms per run).

    nrto writes no links and keeps every dataset in its own file, so what this finds comes from
    another tool or a crafted file, and would read another file's bytes as nrto data."""
    from h5py import h5d, h5l, h5o

    links: list[tuple[bytes, int]] = []

    def visit_link(name: bytes, info) -> bool | None:  # a value stops the visit
        if info.type != h5l.TYPE_HARD:
            links.append((name, info.type))
            return True
        return None
    group.id.links.visit(visit_link, info=True)
    if links:
        name, kind = links[0]
        return f"{_text(name)!r} is {_LINK_KINDS.get(kind, f'a link of type {kind}')}"

    def visit_object(name: bytes, info) -> str | None:
        if info.type == h5o.TYPE_DATASET:
            plist = h5d.open(group.id, name).get_create_plist()
            if plist.get_external_count():
                return f"dataset {_text(name)!r} keeps its data in an external file"
            if plist.get_layout() == h5d.VIRTUAL:
                return f"dataset {_text(name)!r} is virtual (its data lie in other files)"
        return None
    return h5o.visit(group.id, visit_object, info=True)


_ATTRIBUTE_READERS = {"str": lambda v: _text(v), "int": int, "float": float, "bool": bool,
                      "json": lambda v: loads_json(_text(v))}


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _sorted_ids(runs) -> list[str]:
    """The well-named run groups, in creation order (others are reported by the checks)."""
    return sorted((name for name in runs if _RUN_ID.match(name)),
                  key=lambda name: int(_RUN_ID.match(name)[1]))


_REQUIRED_DATASETS = tuple(
    field.name for field in dataclasses.fields(OptimizationResult) if field.name in _DATASETS
    and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING)
_OPTIONAL_DATASETS = tuple(field.name for field in dataclasses.fields(OptimizationResult)
                           if field.name in _DATASETS and field.default is None)
_RUN_ATTRIBUTES = ("label", "config", "partial", "final_loss", "best_loss", "parameter_specs",
                   "versions", "git_revision", "git_dirty", "hostname", "created", "updated")


# numpy dtype kinds a dataset of each stored dtype may have (integers read as floats exactly
# enough; strings, complex, compound and variable-length values are damage)
_DTYPE_KINDS = {"float64": "fiu", "int64": "iu", "density8": "u"}
_DTYPE_NAMES = {"float64": "real numbers", "int64": "integers", "density8": "uint8 densities"}


def _run_problem(group) -> str | None:
    """What is wrong with a run group (cheap: attributes and dataset shapes), or None."""
    import h5py

    if not isinstance(group, h5py.Group):
        return "it is not an HDF5 group"
    foreign = foreign_storage(group)
    if foreign is not None:
        return f"{foreign}; {_NOT_OURS}"
    a = group.attrs
    missing = [name for name in (*_RUN_ATTRIBUTES, *_ATTRIBUTES) if name not in a]
    if missing:
        return f"attribute {missing[0]!r} is missing"
    try:
        RunConfig.from_dict(loads_json(_text(a["config"])))
    except (ValueError, TypeError, AttributeError) as error:
        return f"attribute 'config' is broken ({' '.join(str(error).split())[:120]})"
    for name, spec in _ATTRIBUTES.items():
        try:
            _ATTRIBUTE_READERS[spec.dtype](a[name])
        except (ValueError, TypeError):
            return f"attribute {name!r} is not a valid {spec.dtype}: {a[name]!r}"[:200]
    if _text(a["status"]) not in STATUSES:
        return f"unknown status {_text(a['status'])!r}"
    for name in ("versions", "parameter_specs"):
        try:
            loads_json(_text(a[name]))
        except ValueError:
            return f"attribute {name!r} is not valid JSON"
    try:
        parameters = sum(math.prod(int(n) for n in shape)
                         for _, shape, _ in loads_json(_text(a["parameter_specs"])))
    except (ValueError, TypeError):
        return "attribute 'parameter_specs' is not a list of [name, shape, kind]"
    for name in _REQUIRED_DATASETS:
        if name not in group:
            return f"dataset {name!r} is missing"
    for name, spec in _DATASETS.items():
        if name in group:
            dataset = group[name]
            if not isinstance(dataset, h5py.Dataset) or dataset.ndim != len(spec.axes):
                return f"dataset {name!r} should have {len(spec.axes)} axes " \
                       f"({', '.join(spec.axes)})"
            if dataset.dtype.kind not in _DTYPE_KINDS[spec.dtype] or (
                    spec.dtype == "density8" and dataset.dtype.itemsize != 1):
                return f"dataset {name!r} holds values of type {dataset.dtype}, not " \
                       f"{_DTYPE_NAMES[spec.dtype]}"
            if spec.dtype == "density8" and not {"scale", "offset"} <= set(dataset.attrs):
                return f"dataset {name!r} lacks its scale/offset attributes"
    if parameters and "x" in group and group["x"].shape != (parameters,):
        return f"dataset 'x' has {group['x'].shape[0]} entries, not the {parameters} " \
               f"parameters of its attribute 'parameter_specs'"
    lengths = length_problem({name: group[name].shape for name in _DATASETS if name in group},
                             int(a["iterations"]), int(a["evaluations"]))
    return f"dataset {lengths}" if lengths else None


def _analysis_problem(group) -> str | None:
    """What is wrong with an analysis group (its attributes, and datasets of real numbers or
    booleans with one axis name per axis), or None."""
    import h5py

    if not isinstance(group, h5py.Group):
        return "it is not an HDF5 group"
    missing = [name for name in ("settings", "created", "run_updated", "git_revision")
               if name not in group.attrs]
    if missing:
        return f"attribute {missing[0]!r} is missing"
    try:
        loads_json(_text(group.attrs["settings"]))
    except ValueError:
        return "attribute 'settings' is not valid JSON"
    for name, item in group.items():
        if not isinstance(item, h5py.Dataset):
            return f"{name!r} is not a dataset"
        if item.dtype.kind not in "fiub":
            return f"dataset {name!r} holds values of type {item.dtype}, not numbers"
        if len(item.attrs.get("axes", ())) != item.ndim:
            return f"dataset {name!r} does not name each of its {item.ndim} axes"
    return None


def _check_loadable(where: str, group) -> None:
    """Refuse to load the datasets of ``group`` (an h5py group: a run with its optimizer state,
    or an analysis; uint8 designs count as the float64 they become) when they need more than
    the available memory: a damaged or crafted file can declare shapes of terabytes that hold
    nothing (HDF5 fills unwritten chunks).

    Raises:
        StoreError: one line with what is needed, the largest dataset and what is available.
    """
    import h5py

    from studies.resources import format_bytes, shortfall

    datasets: dict[str, Any] = {}

    def collect(name: str, item) -> None:  # returning a value would stop the visit
        if isinstance(item, h5py.Dataset) and not name.startswith("analysis/"):
            datasets[name] = item
    group.visititems(collect)
    sizes = {name: math.prod(d.shape) * (8 if d.dtype == np.uint8 else d.dtype.itemsize)
             for name, d in datasets.items()}
    needed = sum(sizes.values())
    if sizes and (available := shortfall(needed)) is not None:
        name = max(sizes, key=sizes.__getitem__)
        raise StoreError(f"{where} needs {format_bytes(needed)} of memory to load (its "
                         f"dataset {name!r} has shape {datasets[name].shape}, "
                         f"{datasets[name].dtype}), more than the {format_bytes(available)} "
                         f"available")


def _read_state(run_id: str, group) -> OptimizerState | None:
    """The optimizer state a store wrote under ``optimizer_state`` (None when there is none):
    attrs method, size, fingerprint; arrays as datasets; scalars as attrs of ``scalars``."""
    if _STATE_GROUP not in group:
        return None
    state = group[_STATE_GROUP]
    try:
        scalars = {name: value.item() if isinstance(value, np.generic) else _text(value)
                   if isinstance(value, bytes) else value
                   for name, value in state["scalars"].attrs.items()}
        return OptimizerState(
            method=_text(state.attrs["method"]), size=int(state.attrs["size"]),
            fingerprint=_text(state.attrs["fingerprint"]),
            arrays={name: state[name][()] for name in state if name != "scalars"},
            scalars=scalars)
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"its optimizer state is unreadable: {error}") from None


class ResultsFile:
    """Read access to a results file (each call opens and closes the file, so writers may
    replace it in between).

    A damaged run (a missing or unreadable attribute or dataset) makes the calls that need it
    raise :class:`BrokenRunError`, naming the run and what is broken; the other runs stay
    readable (:meth:`damaged` lists the damaged ones, ``runs(skip_damaged=True)`` the others).

    Example::

        store = ResultsFile("results/mbb.h5")
        for row in store.runs():
            print(row.run_id, row.label, row.best_loss)
        run = store.read("run-0000")        # StoredRun
        ds = store.to_xarray("run-0000")    # xarray.Dataset
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ResultsFile({str(self.path)!r})"

    def run_ids(self) -> list[str]:
        """All run ids, in creation order (damaged runs included)."""
        with _open(self.path) as handle:
            return _sorted_ids(handle["runs"])

    def __len__(self) -> int:
        return len(self.run_ids())

    def __contains__(self, run_id: object) -> bool:
        return run_id in self.run_ids()

    def damaged(self) -> dict[str, str]:
        """Damaged runs: group name -> what is wrong (empty for a sound file)."""
        with _open(self.path) as handle:
            runs = handle["runs"]
            found = {name: "its name is not a run id like 'run-0003'" for name in runs
                     if not _RUN_ID.match(name)}
            for name in _sorted_ids(runs):
                problem = _run_problem(runs[name])
                if problem is not None:
                    found[name] = problem
            return found

    def _broken(self, run_id: str, problem: str) -> BrokenRunError:
        return BrokenRunError(f"{self.path}: {run_id} is damaged: {problem}")

    def resolve(self, key: str | int) -> str:
        """The run id for ``key``: a run id, its number (``3`` or ``"3"``) or a unique label.

        Raises:
            RunNotFoundError: naming close matches.
        """
        with _open(self.path) as handle:
            runs = handle["runs"]
            if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.isdigit()):
                key = f"run-{int(key):04d}"
            if key in runs:
                return key
            labels = {name: _text(runs[name].attrs.get("label", "")) for name in
                      _sorted_ids(runs)}
            matches = [name for name, label in labels.items() if label == key]
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise RunNotFoundError(f"label {key!r} names several runs ({', '.join(matches)}); "
                                       f"give a run id")
            hint = did_you_mean(key, [*runs, *labels.values()]) or (
                f"the file holds {len(runs)} run(s)" + (f": {', '.join(list(runs)[:5])}"
                                                       + (", ..." if len(runs) > 5 else "")
                                                       if len(runs) else ""))
            raise RunNotFoundError(f"no run {key!r} in {self.path}; {hint}")

    def runs(self, *, skip_damaged: bool = False) -> list[RunSummary]:
        """Summaries of all runs, in creation order (attributes only; no arrays are read).

        Raises:
            BrokenRunError: a run is damaged (unless ``skip_damaged``: then it is left out).
        """
        with _open(self.path) as handle:
            groups = handle["runs"]
            found = []
            for name in _sorted_ids(groups):
                problem = _run_problem(groups[name])
                if problem is None:
                    found.append(self._summary(name, groups[name]))
                elif not skip_damaged:
                    raise self._broken(name, problem)
            return found

    @staticmethod
    def _summary(run_id: str, group) -> RunSummary:
        a = group.attrs
        return RunSummary(
            run_id=run_id, label=_text(a["label"]),
            config=RunConfig.from_dict(loads_json(_text(a["config"]))),
            status=_text(a["status"]), partial=bool(a["partial"]),
            iterations=int(a["iterations"]), evaluations=int(a["evaluations"]),
            final_loss=float(a["final_loss"]), best_loss=float(a["best_loss"]),
            elapsed=float(a["elapsed"]), updated=_text(a["updated"]))

    def read(self, run_id: str | int) -> StoredRun:
        """The full run (all arrays; designs dequantized to float64).

        Raises:
            RunNotFoundError: no such run.
            BrokenRunError: the run is damaged (the message says what is broken).
        """
        run_id = self.resolve(run_id)
        with _open(self.path) as handle:
            group = handle["runs"][run_id]
            problem = _run_problem(group)
            if problem is not None:
                raise self._broken(run_id, problem)
            _check_loadable(f"{self.path}: {run_id}", group)
            try:
                return self._read(run_id, group)
            except (KeyError, ValueError, TypeError, OSError) as error:
                raise self._broken(run_id, " ".join(str(error).split())[:200]) from None

    def _read(self, run_id: str, group) -> StoredRun:
        a = group.attrs
        fields: dict[str, Any] = {name: _ATTRIBUTE_READERS[spec.dtype](a[name])
                                  for name, spec in _ATTRIBUTES.items()}
        for name, spec in _DATASETS.items():
            if name in group:
                fields[name] = (_read_designs(group, name) if spec.dtype == "density8"
                                else group[name][()])
        fields[_STATE_FIELD] = _read_state(run_id, group)
        result = OptimizationResult(**fields)
        dirty = _text(a["git_dirty"])
        provenance = Provenance(
            versions=loads_json(_text(a["versions"])), git_revision=_text(a["git_revision"]),
            git_dirty=None if dirty == "unknown" else dirty == "yes",
            hostname=_text(a["hostname"]), created=_text(a["created"]),
            updated=_text(a["updated"]))
        specs = tuple(ParameterSpec(name, tuple(shape), kind) for name, shape, kind
                      in loads_json(_text(a["parameter_specs"])))
        return StoredRun(run_id=run_id, label=_text(a["label"]),
                         config=RunConfig.from_dict(loads_json(_text(a["config"]))),
                         result=result, partial=bool(a["partial"]), provenance=provenance,
                         parameter_specs=specs)

    def analyses(self, run_id: str | int) -> list[AnalysisSummary]:
        """The analyses stored for a run (names, settings, shapes; no arrays), sorted by name."""
        run_id = self.resolve(run_id)
        with _open(self.path) as handle:
            root = handle["runs"][run_id].get("analysis")
            if root is None:
                return []
            found = []
            for kind, kind_group in sorted(root.items()):
                for key, group in sorted(kind_group.items()):
                    found.append(AnalysisSummary(
                        name=f"{kind}/{key}", kind=kind, key=key,
                        settings=loads_json(_text(group.attrs["settings"])),
                        created=_text(group.attrs["created"]),
                        shapes={name: tuple(dataset.shape) for name, dataset in group.items()}))
            return found

    def read_analysis(self, run_id: str | int, name: str) -> StoredAnalysis:
        """One stored analysis with its arrays.

        Raises:
            RunNotFoundError: no such run, or the run has no analysis of that name (the message
                lists the ones it has).
        """
        run_id = self.resolve(run_id)
        kind, key = _analysis_parts(name)
        with _open(self.path) as handle:
            root = handle["runs"][run_id].get("analysis")
            group = root.get(f"{kind}/{key}") if root is not None else None
            if group is None:
                have = [f"{k}/{key_}" for k, g in (root or {}).items() for key_ in g]
                raise RunNotFoundError(f"{run_id} has no analysis {name!r}; stored: "
                                       f"{', '.join(sorted(have)) or 'none'}")
            problem = _analysis_problem(group)
            if problem is not None:
                raise BrokenRunError(f"{self.path}: {run_id} analysis {kind}/{key} is damaged: "
                                     f"{problem}")
            _check_loadable(f"{self.path}: {run_id} analysis {name}", group)
            a = group.attrs
            return StoredAnalysis(
                run_id=run_id, name=f"{kind}/{key}", kind=kind, key=key,
                settings=loads_json(_text(a["settings"])), created=_text(a["created"]),
                arrays={n: d[()] for n, d in group.items()},
                axes={n: tuple(_text(axis) for axis in d.attrs["axes"])
                      for n, d in group.items()},
                run_updated=_text(a["run_updated"]), git_revision=_text(a["git_revision"]))

    def to_xarray(self, run_id: str | int):
        """One run as an ``xarray.Dataset`` for notebooks.

        Dimensions: ``evaluation``, ``iterate``, ``parameter``, ``stored_iterate`` (coordinate:
        the iterate index k of each stored iterate), ``pair`` (non-index coordinate
        ``pair_iteration``), ``design`` (coordinate: iterate index), ``row``, ``column``.
        Attributes: run id, label, status, partial, the configuration fields (nested ones as
        JSON strings) and the provenance.
        """
        import xarray

        run = self.read(run_id)
        r = run.result
        data = {name: (spec.axes, getattr(r, name)) for name, spec in _DATASETS.items()
                if getattr(r, name) is not None and spec.dtype != "int64"}
        coords = {"evaluation": np.arange(len(r.loss_per_evaluation)),
                  "iterate": np.arange(len(r.loss_per_iterate))}
        if r.iterates is not None or r.gradients is not None:
            coords["stored_iterate"] = r.iterate_indices
        if r.designs is not None:
            coords["design"] = r.design_indices
        if r.s_pairs is not None:
            coords["pair_iteration"] = ("pair", r.pair_iterations)
        config = run.config.to_dict()
        attrs = {"run_id": run.run_id, "label": run.label, "status": r.status,
                 "partial": int(run.partial), "message": r.message, "method": r.method,
                 "iterations": r.iterations, "evaluations": r.evaluations,
                 "options": json.dumps(r.options, sort_keys=True),
                 "git_revision": run.provenance.git_revision,
                 "versions": json.dumps(dict(run.provenance.versions), sort_keys=True)}
        for key, value in config.items():
            attrs[key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) \
                else ("none" if value is None else value)
        return xarray.Dataset(data, coords=coords, attrs=attrs)


def _read_designs(group, name: str) -> np.ndarray:
    dataset = group[name]
    designs = float(dataset.attrs["offset"]) + float(dataset.attrs["scale"]) \
        * dataset[()].astype(np.float64)
    if f"{name}_nonfinite" in group:
        designs[group[f"{name}_nonfinite"][()]] = np.nan
    return designs
