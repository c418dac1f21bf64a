"""The results store: many optimization runs in one HDF5 file, written atomically.

This module is the only writer (and the reference reader) of the schema documented in
``results/README.md``. In short::

    /                       attrs: schema = "nrto-results", schema_version, next_run_number, created
    /runs/<run_id>/         one group per run, e.g. "run-0003"; attrs: the configuration (JSON and
                            flat copies), status, partial flag, provenance (package versions, git)
    /runs/<run_id>/<name>   float64 / int64 / uint8 datasets with an ``axes`` attribute naming every
                            axis (also set as HDF5 dimension labels)
    /runs/<run_id>/optimizer_state/
                            a partial run's exact optimizer state at its last iteration boundary
                            (absent for finished runs and methods without one): attrs method, size,
                            fingerprint; its arrays as
                            uncompressed datasets; its scalars as attrs of the subgroup ``scalars``.
                            ``nrto resume`` continues from it bit for bit.
    /runs/<run_id>/analysis/<kind>/<key>/
                            one group per analysis of the run (``studies.analysis``): attrs
                            ``settings`` (JSON), kind, key, created, run_updated, git_revision;
                            datasets with ``axes`` attributes. Written by :func:`write_analysis`
                            (same atomic rewrite); rewriting the run drops them.

Conventions:
    * Indices follow :mod:`solvers.result`: evaluation ``e``, iterate ``k`` (0 = start), pair ``j``.
    * Designs are stored as uint8 ``q`` with dataset attributes ``scale`` and ``offset``:
      ``density = offset + scale * q``; the range always covers [0, 1], so 0 and 1 are exact and
      the rounding error is at most ``scale / 2`` (``1 / 510`` for densities in [0, 1]).
    * Writes are atomic: the new file is built in a temporary file next to the target, fsync'ed,
      then renamed over it (``os.replace``); a crash or a kill leaves either the old or the new
      file, never a torn one. Writers take an exclusive ``flock`` on the sidecar ``.<name>.lock``.
    * A run's ``partial`` flag marks a checkpoint of a run that has not finished (still running,
      interrupted, or killed); writing the same run id again replaces it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import difflib
import fcntl
import functools
import importlib.metadata
import json
import math
import os
import platform
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from solvers.flat import ParameterSpec
from solvers.result import STATUSES, OptimizationResult, RecordOptions
from solvers.optim.state import OptimizerState

__all__ = [
    "MODEL_KINDS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "AnalysisSummary",
    "Provenance",
    "ResultsFile",
    "RunConfig",
    "RunNotFoundError",
    "RunSummary",
    "StoreError",
    "StoreFormatError",
    "StoreLockedError",
    "StoredAnalysis",
    "StoredRun",
    "check_writable",
    "write_analysis",
    "write_run",
]

SCHEMA = "nrto-results"
SCHEMA_VERSION = 1
MODEL_KINDS = ("cnn", "pixel")
_RUN_ID = re.compile(r"^run-(\d{4,})$")
_ANALYSIS_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PACKAGES = ("numpy", "scipy", "h5py", "tensorflow", "keras", "autograd", "cvxopt", "nlopt",
             "scikit-image", "xarray", "matplotlib", "tqdm", "nrto")

# name -> (axes, description); the order is the order of OptimizationResult's fields.
_DATASETS: dict[str, tuple[tuple[str, ...], str]] = {
    "loss_per_evaluation": (("evaluation",),
                            "loss at every objective call, line-search trials included"),
    "loss_per_iterate": (("iterate",), "loss at each accepted iterate; iterate 0 is the start"),
    "grad_norm_per_iterate": (("iterate",),
                              "Euclidean gradient norm at each iterate (NaN: not computed)"),
    "step_length_per_iterate": (("iterate",), "|x_k - x_(k-1)|; entry 0 is NaN"),
    "x": (("parameter",), "the last accepted iterate (flat parameter vector)"),
    "iterate_indices": (("stored_iterate",), "iterate index k of each row of iterates/gradients"),
    "iterates": (("stored_iterate", "parameter"), "stored iterates theta_k"),
    "gradients": (("stored_iterate", "parameter"), "gradients at the stored iterates"),
    "s_pairs": (("pair", "parameter"), "accepted L-BFGS pairs s_j = x_(k+1) - x_k, oldest first"),
    "y_pairs": (("pair", "parameter"), "accepted L-BFGS pairs y_j = g_(k+1) - g_k, oldest first"),
    "pair_iterations": (("pair",), "iterate index k+1 of the newer end point of pair j"),
    "reset_iterations": (("reset",), "iterate index k at which L-BFGS emptied its memory"),
    "design_indices": (("design",), "iterate index k of each stored design"),
    "designs": (("design", "row", "column"),
                "physical densities, uint8: density = offset + scale * value"),
}
_INTEGER = ("iterate_indices", "pair_iterations", "reset_iterations", "design_indices")


class StoreError(Exception):
    """Base class of the errors of the results store (their messages are one line)."""


class StoreFormatError(StoreError):
    """The file is missing, not HDF5, or not an nrto results file of a known schema version."""


class StoreLockedError(StoreError):
    """Another process kept the file's write lock longer than the timeout."""


class RunNotFoundError(StoreError, KeyError):
    """No run with that id or label (the message names close matches)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# -- configuration ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Plain-JSON copy of ``value`` (tuples become lists, numpy scalars/arrays become Python)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{value!r} ({type(value).__name__}) cannot be stored as JSON; "
                    f"use numbers, strings, booleans, lists or dicts")


def _dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), sort_keys=True)


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
        seed: seed of the model initialization and of stochastic methods, or None.
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
                    or self.seed < 0:
                raise ValueError(f"seed must be a non-negative integer or None; got {self.seed!r}")
            object.__setattr__(self, "seed", int(self.seed))
        if not 0.0 < float(self.volume_fraction) <= 1.0:
            raise ValueError(f"volume_fraction must be in (0, 1]; got {self.volume_fraction!r}")
        object.__setattr__(self, "volume_fraction", float(self.volume_fraction))
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
                object.__setattr__(self, name, json.loads(_dumps(dict(value))))
            except TypeError as error:
                raise ValueError(f"{name}: {error}") from None
        if not isinstance(self.record, RecordOptions):
            raise TypeError(f"record must be a RecordOptions; got {self.record!r}")

    @property
    def label(self) -> str:
        """Readable name, e.g. ``"mbb_beam_96x32_0.5/cnn/lbfgs/seed0"``."""
        return f"{self.problem}/{self.model}/{self.optimizer}/seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (inverse: :meth:`from_dict`)."""
        return _jsonable(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        data = dict(data)
        record = dict(data.pop("record", {}))
        if "designs_at" in record:
            record["designs_at"] = tuple(record["designs_at"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known},
                   record=RecordOptions(**record))


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


# -- provenance ------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    found = [("python", platform.python_version())]
    for package in _PACKAGES:
        try:
            found.append((package, importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            pass
    return tuple(found)


@functools.lru_cache(maxsize=1)
def _git_state() -> tuple[str, bool | None]:
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        revision = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    try:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return revision, dirty


# -- writing ---------------------------------------------------------------------------------------


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


@contextlib.contextmanager
def _write_lock(path: Path, timeout: float) -> Iterator[None]:
    """Exclusive ``flock`` on the sidecar lock file, polled until ``timeout`` seconds."""
    try:
        fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StoreError(f"cannot create the lock file {_lock_path(path)}: "
                         f"{error.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"{path} is being written by another process (lock {_lock_path(path)} "
                        f"held for more than {timeout:g} s)") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early (before hours of optimization) if runs cannot be written to ``path``.

    Returns:
        The path as a :class:`Path`.

    Raises:
        StoreError: the folder does not exist or is not writable, or the path is a folder.
        StoreFormatError: the file exists but is not an nrto results file.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise StoreError(f"{path} is a folder; give a file name such as {path / 'runs.h5'}")
    if not folder.is_dir():
        raise StoreError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write {path}: folder {folder} is not writable")
    if path.exists():
        ResultsFile(path).run_ids()  # raises StoreFormatError for a foreign file
    return path


def write_run(path: str | os.PathLike, config: RunConfig, result: OptimizationResult, *,
              run_id: str | None = None, partial: bool | None = None,
              parameter_specs: tuple[ParameterSpec, ...] = (),
              lock_timeout: float = 60.0) -> str:
    """Add a run to the results file at ``path`` (created if missing), or replace one.

    The whole file is rebuilt in a temporary file (other runs are copied with ``H5Ocopy``, which
    also reclaims the space of replaced checkpoints), fsync'ed and renamed over ``path``.

    Args:
        path: the HDF5 file.
        config: the run's configuration.
        result: what the optimizer recorded (e.g. a ``ProgressInfo.snapshot()`` for a checkpoint).
        run_id: None to add a new run (the next id, never reused); an existing id to replace
            that run (its creation time is kept); a new well-formed id to create it.
        partial: whether the run is unfinished; default ``result.status == "interrupted"``.
        parameter_specs: layout of the flat parameter vector, stored for later analysis.
        lock_timeout: seconds to wait for another writer before :class:`StoreLockedError`.

    Returns:
        The run id, e.g. ``"run-0003"``.

    Raises:
        StoreFormatError: ``path`` exists but is not an nrto results file.
        StoreLockedError: another writer held the lock too long.
        ValueError: a malformed ``run_id`` or an inconsistent ``result``.
    """
    path = Path(path)
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig; got {type(config).__name__}")
    if not isinstance(result, OptimizationResult):
        raise TypeError(f"result must be an OptimizationResult; got {type(result).__name__}")
    if run_id is not None and not _RUN_ID.match(run_id):
        raise ValueError(f"run_id must look like 'run-0003'; got {run_id!r}")
    partial = result.status == "interrupted" if partial is None else bool(partial)
    with _atomic_rewrite(path, lock_timeout) as target:
        created = None
        target.attrs["schema"] = SCHEMA
        target.attrs["schema_version"] = SCHEMA_VERSION
        target.attrs["created"] = _now()
        runs = target.create_group("runs")
        next_number = 0
        if path.exists():
            with _open(path) as source:
                target.attrs["created"] = source.attrs.get("created", _now())
                next_number = int(source.attrs.get("next_run_number", 0))
                for name, group in source["runs"].items():
                    if name == run_id:
                        created = group.attrs.get("created")
                    else:
                        source.copy(group, runs, name=name)
        if run_id is None:
            run_id = f"run-{next_number:04d}"
        next_number = max(next_number, int(_RUN_ID.match(run_id)[1]) + 1)
        target.attrs["next_run_number"] = next_number
        _write_group(runs.create_group(run_id), config, result, partial,
                     parameter_specs, created)
    return run_id


@contextlib.contextmanager
def _atomic_rewrite(path: Path, lock_timeout: float):
    """Under the write lock, yield a new (empty, writable) ``h5py.File`` that replaces ``path``.

    The caller fills it (reading ``path`` if it wants to carry its content over); on a normal exit
    it is fsync'ed and renamed over ``path`` and the folder is fsync'ed. On any exception the
    temporary file is removed and ``path`` is left as it was.
    """
    import h5py

    with _write_lock(path, lock_timeout):
        for stale in (path.parent if str(path.parent) else Path(".")).iterdir():
            if stale.name.startswith(_temporary_prefix(path)):
                stale.unlink(missing_ok=True)  # left by a killed writer; we hold the lock
        temporary = path.with_name(f"{_temporary_prefix(path)}{os.getpid()}")
        try:
            with h5py.File(temporary, "w") as target:
                yield target
            _fsync(temporary)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync(path.parent if str(path.parent) else Path("."), directory=True)


def _analysis_parts(name: str) -> tuple[str, str]:
    """``"kind/key"`` -> ``(kind, key)``, each a plain name (letters, digits, ``_ . -``)."""
    parts = str(name).split("/")
    if len(parts) != 2 or not all(_ANALYSIS_PART.match(part) for part in parts):
        raise ValueError(f"an analysis name must look like 'kind/key' (letters, digits, '_', '.', "
                         f"'-'), e.g. 'spectrum/hessian_k0'; got {name!r}")
    return parts[0], parts[1]


def write_analysis(path: str | os.PathLike, run_id: str | int, name: str,
                   arrays: Mapping[str, np.ndarray], axes: Mapping[str, Sequence[str]],
                   settings: Mapping[str, Any], *, run_updated: str | None = None,
                   lock_timeout: float = 60.0) -> str:
    """Store an analysis of a run as ``/runs/<run_id>/analysis/<kind>/<key>``, replacing any
    analysis of the same name.

    The write is atomic like :func:`write_run`: the file is rebuilt in a temporary file (every
    run copied, the run's old analysis of this name left out), fsync'ed and renamed over ``path``.
    Rewriting a run with :func:`write_run` (a checkpoint, a resume) drops its analyses.

    Args:
        path: an existing results file.
        run_id: the run (id, number or unique label, as :meth:`ResultsFile.resolve` takes).
        name: ``"<kind>/<key>"``, e.g. ``"spectrum/hessian_k0"``.
        arrays: dataset name -> numeric or boolean array (stored as given; more than 4096 values
            are chunked and gzip-compressed).
        axes: dataset name -> one name per axis of that array (the ``axes`` attribute and the
            HDF5 dimension labels).
        settings: JSON-serializable settings and facts of the computation (the ``settings``
            attribute).
        run_updated: if given, the run's ``updated`` time the analysis was computed from; the
            write is refused if the run was rewritten since (the analysis would describe an older
            version of it).
        lock_timeout: seconds to wait for another writer before :class:`StoreLockedError`.

    Returns:
        The resolved run id.

    Raises:
        StoreFormatError: ``path`` is missing or not an nrto results file.
        RunNotFoundError: no such run.
        StoreError: the run changed since ``run_updated``.
        ValueError: a bad name, a missing or wrong ``axes`` entry, or settings JSON cannot hold.
    """
    path = Path(path)
    kind, key = _analysis_parts(name)
    settings_json = _dumps(dict(settings))
    prepared: dict[str, tuple[np.ndarray, list[str]]] = {}
    for dataset, values in arrays.items():
        if not _ANALYSIS_PART.match(str(dataset)):
            raise ValueError(f"dataset name {dataset!r} must be a plain name (letters, digits, "
                             f"'_', '.', '-')")
        values = np.asarray(values)
        if values.dtype.kind not in "biuf":
            raise ValueError(f"{dataset}: only numeric and boolean arrays are stored; got "
                             f"dtype {values.dtype}")
        if dataset not in axes:
            raise ValueError(f"{dataset}: give its axis names in axes[{dataset!r}]")
        names = [str(axis) for axis in axes[dataset]]
        if len(names) != values.ndim:
            raise ValueError(f"{dataset} has {values.ndim} axes but axes[{dataset!r}] names "
                             f"{len(names)}: {names}")
        prepared[str(dataset)] = (values, names)
    run_id = ResultsFile(path).resolve(run_id)
    with _atomic_rewrite(path, lock_timeout) as target:
        with _open(path) as source:
            if run_id not in source["runs"]:
                raise RunNotFoundError(f"run {run_id} was removed from {path} meanwhile")
            current = _text(source["runs"][run_id].attrs["updated"])
            if run_updated is not None and current != run_updated:
                raise StoreError(f"{run_id} was rewritten ({current}) after the analysis read it "
                                 f"({run_updated}); compute the analysis again")
            target.attrs.update(source.attrs)
            for run_name, group in source["runs"].items():
                source.copy(group, target.require_group("runs"), name=run_name)
        group = target["runs"][run_id].require_group("analysis").require_group(kind)
        if key in group:
            del group[key]  # its space is reclaimed by the next rewrite of the file
        analysis = group.create_group(key)
        revision, _ = _git_state()
        analysis.attrs.update({"kind": kind, "key": key, "settings": settings_json,
                               "created": _now(), "run_updated": current,
                               "git_revision": revision})
        for dataset, (values, names) in prepared.items():
            big = values.size > 4096
            stored = analysis.create_dataset(dataset, data=values, chunks=True if big else None,
                                             compression="gzip" if big else None,
                                             compression_opts=1 if big else None)
            stored.attrs["axes"] = names
            for axis, label in enumerate(names):
                stored.dims[axis].label = label
    return run_id


def _write_group(group, config: RunConfig, result: OptimizationResult, partial: bool,
                 parameter_specs: tuple[ParameterSpec, ...], created: str | None) -> None:
    revision, dirty = _git_state()
    now = _now()
    finite = result.loss_per_evaluation[np.isfinite(result.loss_per_evaluation)]
    attrs = {
        "label": config.label, "config": _dumps(config),
        "problem": config.problem, "family": config.family, "width": config.width,
        "height": config.height, "volume_fraction": config.volume_fraction,
        "model": config.model, "optimizer": config.optimizer, "steps": config.steps,
        "seed": -1 if config.seed is None else config.seed,
        "method": result.method, "options": _dumps(result.options),
        "status": result.status, "partial": partial, "message": result.message,
        "converged": bool(result.converged), "iterations": int(result.iterations),
        "evaluations": int(result.evaluations), "skipped_pairs": int(result.skipped_pairs),
        "elapsed": float(result.elapsed),
        "final_loss": float(result.loss_per_iterate[-1]) if len(result.loss_per_iterate)
        else math.nan,
        "best_loss": float(finite.min()) if finite.size else math.nan,
        "parameter_specs": _dumps([[s.name, list(s.shape), s.kind] for s in parameter_specs]),
        "versions": _dumps(dict(_versions())), "git_revision": revision,
        "git_dirty": "unknown" if dirty is None else ("yes" if dirty else "no"),
        "hostname": socket.gethostname(), "created": created or now, "updated": now,
        "schema_version": SCHEMA_VERSION,
    }
    group.attrs.update(attrs)
    for name, (axes, description) in _DATASETS.items():
        value = getattr(result, name)
        if value is None:
            continue
        if name == "designs":
            dataset = _write_designs(group, np.asarray(value, dtype=np.float64))
        else:
            dtype = np.int64 if name in _INTEGER else np.float64
            value = np.asarray(value, dtype=dtype)
            if value.ndim != len(axes):
                raise ValueError(f"result.{name} has {value.ndim} axes; expected {len(axes)} "
                                 f"({', '.join(axes)})")
            # Parameter vectors (iterates, gradients, pairs) are float64 noise to gzip: it saves
            # a few percent at a large cost in time, so they are stored uncompressed.
            big = value.size > 4096 and "parameter" not in axes
            dataset = group.create_dataset(name, data=value, chunks=True if big else None,
                                           compression="gzip" if big else None,
                                           compression_opts=1 if big else None)
        dataset.attrs["axes"] = list(axes)
        dataset.attrs["description"] = description
        for axis, label in enumerate(axes):
            dataset.dims[axis].label = label
    if result.state is not None and partial:  # a finished run is not resumed: keep files small
        _write_state(group.create_group(_STATE_GROUP), result.state)


_STATE_GROUP = "optimizer_state"


def _write_state(group, state: OptimizerState) -> None:
    """The optimizer state of a run: arrays as uncompressed datasets, scalars as attributes of
    the subgroup ``scalars``; method, size and fingerprint as the group's attributes."""
    group.attrs.update({"method": state.method, "size": state.size,
                        "fingerprint": state.fingerprint})
    for name, value in state.arrays.items():
        group.create_dataset(name, data=value)
    group.create_group("scalars").attrs.update(dict(state.scalars))


def _read_state(group) -> OptimizerState | None:
    """Inverse of :func:`_write_state` (None for runs stored without a state)."""
    if _STATE_GROUP not in group:
        return None
    state = group[_STATE_GROUP]
    scalars = {name: value.item() if isinstance(value, np.generic) else _text(value)
               if isinstance(value, bytes) else value
               for name, value in state["scalars"].attrs.items()}
    try:
        return OptimizerState(
            method=_text(state.attrs["method"]), size=int(state.attrs["size"]),
            fingerprint=_text(state.attrs["fingerprint"]),
            arrays={name: state[name][()] for name in state if name != "scalars"},
            scalars=scalars)
    except (KeyError, ValueError) as error:
        raise StoreFormatError(f"the optimizer state of run {group.name} is unreadable: "
                               f"{error}") from None


def _write_designs(group, designs: np.ndarray):
    if designs.ndim != 3:
        raise ValueError(f"result.designs has shape {designs.shape}; expected (d, H, W)")
    finite = np.isfinite(designs)
    low = min(0.0, float(designs[finite].min())) if finite.any() else 0.0
    high = max(1.0, float(designs[finite].max())) if finite.any() else 1.0
    scale = (high - low) / 255.0
    quantized = np.rint((np.where(finite, designs, low) - low) / scale)
    dataset = group.create_dataset("designs", data=np.clip(quantized, 0, 255).astype(np.uint8),
                                   chunks=True if designs.size else None,
                                   compression="gzip" if designs.size else None)
    dataset.attrs["scale"] = scale
    dataset.attrs["offset"] = low
    if not finite.all():
        mask = group.create_dataset("designs_nonfinite", data=~finite, compression="gzip")
        mask.attrs["axes"] = ["design", "row", "column"]
        mask.attrs["description"] = "True where the design was NaN or infinite (stored as offset)"
    return dataset


# -- reading ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _open(path: Path):
    """Open an existing results file for reading, checking the schema."""
    import h5py

    if not path.exists():
        raise StoreFormatError(f"no such results file: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise StoreFormatError(f"{path} is not an HDF5 file (not an nrto results file)") from None
    with handle:
        schema = handle.attrs.get("schema")
        if schema != SCHEMA or "runs" not in handle:
            raise StoreFormatError(f"{path} is an HDF5 file but not an nrto results file "
                                   f"(no schema attribute {SCHEMA!r})")
        version = int(handle.attrs.get("schema_version", -1))
        if version > SCHEMA_VERSION:
            raise StoreFormatError(f"{path} uses schema version {version}; this nrto reads up to "
                                   f"{SCHEMA_VERSION} (update nrto)")
        yield handle


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ResultsFile:
    """Read access to a results file (each call opens and closes the file, so writers may
    replace it in between).

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
        """All run ids, in creation order."""
        with _open(self.path) as handle:
            return sorted(handle["runs"], key=lambda name: int(_RUN_ID.match(name)[1]))

    def __len__(self) -> int:
        return len(self.run_ids())

    def __contains__(self, run_id: object) -> bool:
        return run_id in self.run_ids()

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
            labels = [_text(group.attrs["label"]) for group in runs.values()]
            matches = [name for name, group in runs.items()
                       if _text(group.attrs["label"]) == key]
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise RunNotFoundError(f"label {key!r} names several runs ({', '.join(matches)}); "
                                       f"give a run id")
            close = difflib.get_close_matches(str(key), [*runs, *labels], n=3, cutoff=0.6)
            hint = ("did you mean " + " or ".join(repr(c) for c in close) + "?") if close else (
                f"the file holds {len(runs)} run(s)" + (f": {', '.join(list(runs)[:5])}"
                                                       + (", ..." if len(runs) > 5 else "")
                                                       if len(runs) else ""))
            raise RunNotFoundError(f"no run {key!r} in {self.path}; {hint}")

    def runs(self) -> list[RunSummary]:
        """Summaries of all runs, in creation order (attributes only; no arrays are read)."""
        with _open(self.path) as handle:
            groups = handle["runs"]
            return [self._summary(name, groups[name]) for name in
                    sorted(groups, key=lambda name: int(_RUN_ID.match(name)[1]))]

    @staticmethod
    def _summary(run_id: str, group) -> RunSummary:
        a = group.attrs
        return RunSummary(
            run_id=run_id, label=_text(a["label"]),
            config=RunConfig.from_dict(json.loads(_text(a["config"]))),
            status=_text(a["status"]), partial=bool(a["partial"]),
            iterations=int(a["iterations"]), evaluations=int(a["evaluations"]),
            final_loss=float(a["final_loss"]), best_loss=float(a["best_loss"]),
            elapsed=float(a["elapsed"]), updated=_text(a["updated"]))

    def read(self, run_id: str | int) -> StoredRun:
        """The full run (all arrays; designs dequantized to float64)."""
        run_id = self.resolve(run_id)
        with _open(self.path) as handle:
            group = handle["runs"][run_id]
            a = group.attrs
            arrays: dict[str, Any] = {}
            for name in _DATASETS:
                if name not in group:
                    continue
                if name == "designs":
                    arrays[name] = _read_designs(group)
                else:
                    arrays[name] = group[name][()]
            status = _text(a["status"])
            if status not in STATUSES:
                raise StoreFormatError(f"run {run_id} has unknown status {status!r}")
            result = OptimizationResult(
                method=_text(a["method"]), options=json.loads(_text(a["options"])),
                iterations=int(a["iterations"]), evaluations=int(a["evaluations"]),
                converged=bool(a["converged"]), status=status, message=_text(a["message"]),
                skipped_pairs=int(a["skipped_pairs"]), elapsed=float(a["elapsed"]),
                state=_read_state(group), **arrays)
            dirty = _text(a["git_dirty"])
            provenance = Provenance(
                versions=json.loads(_text(a["versions"])), git_revision=_text(a["git_revision"]),
                git_dirty=None if dirty == "unknown" else dirty == "yes",
                hostname=_text(a["hostname"]), created=_text(a["created"]),
                updated=_text(a["updated"]))
            specs = tuple(ParameterSpec(name, tuple(shape), kind) for name, shape, kind
                          in json.loads(_text(a["parameter_specs"])))
            return StoredRun(run_id=run_id, label=_text(a["label"]),
                             config=RunConfig.from_dict(json.loads(_text(a["config"]))),
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
                        settings=json.loads(_text(group.attrs["settings"])),
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
            a = group.attrs
            return StoredAnalysis(
                run_id=run_id, name=f"{kind}/{key}", kind=kind, key=key,
                settings=json.loads(_text(a["settings"])), created=_text(a["created"]),
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
        data = {name: (_DATASETS[name][0], getattr(r, name)) for name in _DATASETS
                if getattr(r, name) is not None and name not in _INTEGER}
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


def _read_designs(group) -> np.ndarray:
    dataset = group["designs"]
    designs = float(dataset.attrs["offset"]) + float(dataset.attrs["scale"]) \
        * dataset[()].astype(np.float64)
    if "designs_nonfinite" in group:
        designs[group["designs_nonfinite"][()]] = np.nan
    return designs

