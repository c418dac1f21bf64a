"""The results store: many optimization runs in one HDF5 file, written atomically.

This module is the only writer of the schema documented in ``results/README.md``; its reference
reader is :mod:`studies.reader` (whose names are re-exported here). In short::

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
      file, never a torn one. Writers take an exclusive lock (``filelock``) on the sidecar
      ``.<name>.lock``.
    * A run's ``partial`` flag marks a checkpoint of a run that has not finished (still running,
      interrupted, or killed); writing the same run id again replaces it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import importlib.metadata
import math
import os
import platform
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import filelock
import numpy as np

from solvers.flat import ParameterSpec
from solvers.optim.state import OptimizerState
from solvers.result import OptimizationResult

from studies.config import MODEL_KINDS, RunConfig  # noqa: F401 - re-exported
from studies.config import dumps as _dumps
from studies.jsontext import loads_json
from studies.outputs import atomic_output, check_free_space, check_output, temporary_prefix
from studies.reader import (  # noqa: F401 - the reader's names are the store's too
    _ATTRIBUTES,
    _DATASETS,
    _OPTIONAL_DATASETS,
    _RUN_ID,
    _STATE_GROUP,
    SCHEMA,
    SCHEMA_VERSION,
    AnalysisSummary,
    BrokenRunError,
    Provenance,
    ResultsFile,
    RunNotFoundError,
    RunSummary,
    StoredAnalysis,
    StoredRun,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    _analysis_parts,
    _ANALYSIS_PART,
    _open,
    _run_problem,
    _text,
)

__all__ = [
    "MODEL_KINDS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "AnalysisSummary",
    "BrokenRunError",
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
    "drop_arrays",
    "write_analysis",
    "write_run",
]

_PACKAGES = ("numpy", "scipy", "h5py", "tensorflow", "keras", "autograd", "cvxopt", "nlopt",
             "scikit-image", "xarray", "matplotlib", "tqdm", "nrto")
_COMPRESS_ABOVE = 4096  # arrays with more values are chunked and gzip-compressed (level 1) ...
_UNCOMPRESSED_AXIS = "parameter"  # ... except parameter vectors (float64 noise to gzip)


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


@contextlib.contextmanager
def _write_lock(path: Path, timeout: float) -> Iterator[None]:
    """Exclusive lock (``filelock``: an ``flock``) on the sidecar lock file, for ``timeout`` s."""
    lock = _lock_path(path)
    if lock.is_symlink() or (lock.exists() and not lock.is_file()):
        raise StoreError(f"the lock file {lock} is not a regular file; remove it")
    held = filelock.FileLock(lock, timeout=timeout, poll_interval=0.02)
    try:
        held.acquire()
    except filelock.Timeout:
        raise StoreLockedError(f"{path} is being written by another process (lock {lock} held "
                               f"for more than {timeout:g} s)") from None
    except OSError as error:
        raise StoreError(f"cannot use the lock file {lock}: {error.strerror or error}") from None
    try:
        yield
    finally:
        held.release()


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early (before hours of optimization) if runs cannot be written to ``path``.

    The rules of :mod:`studies.outputs` apply (symbolic links followed, only regular writable
    files replaced, the folder must accept files); an existing file must be a sound results
    file: runs are not added to a file with a damaged run (it would be copied along).

    Returns:
        The real path to write (symbolic links resolved).

    Raises:
        OutputError: the path cannot be written (see :func:`studies.outputs.check_output`).
        StoreError: the lock file cannot be used.
        StoreFormatError: the file exists but is not an nrto results file, or has a damaged run.
    """
    real = check_output(path)
    lock = _lock_path(real)
    if lock.exists() and (not lock.is_file() or not os.access(lock, os.R_OK | os.W_OK)):
        raise StoreError(f"cannot write {path}: its lock file {lock} is not a writable regular "
                         f"file")
    if real.exists():
        damaged = ResultsFile(real).damaged()  # raises StoreFormatError for a foreign file
        if damaged:
            run_id, problem = next(iter(damaged.items()))
            more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
            raise StoreFormatError(f"{path}: {run_id} is damaged: {problem}{more}; runs are not "
                                   f"added to a file with a damaged run (write to another file)")
    return real


def write_run(path: str | os.PathLike, config: RunConfig, result: OptimizationResult, *,
              run_id: str | None = None, partial: bool | None = None,
              parameter_specs: tuple[ParameterSpec, ...] = (),
              lock_timeout: float = 60.0,
              on_run_id: Callable[[str], None] | None = None) -> str:
    """Add a run to the results file at ``path`` (created if missing), or replace one.

    The whole file is rebuilt in a temporary file (other runs are copied with ``H5Ocopy``, which
    also reclaims the space of replaced checkpoints), fsync'ed and renamed over ``path`` (the
    rules of :mod:`studies.outputs`: a symbolic link is followed, the file's mode is kept).
    A file with a damaged run is refused (the damaged run would be copied along).

    Args:
        path: the HDF5 file.
        config: the run's configuration.
        result: what the optimizer recorded (e.g. a ``ProgressInfo.snapshot()`` for a checkpoint).
        run_id: None to add a new run (the next id, never reused); an existing id to replace
            that run (its creation time is kept); a new well-formed id to create it.
        partial: whether the run is unfinished; default ``result.status == "interrupted"``.
        parameter_specs: layout of the flat parameter vector, stored for later analysis.
        lock_timeout: seconds to wait for another writer before :class:`StoreLockedError`.
        on_run_id: called with the run id under the write lock, before the file is replaced
            (e.g. to mark the run as live before any other process can see it); if it raises,
            nothing is written.

    Returns:
        The run id, e.g. ``"run-0003"``.

    Raises:
        OutputError: ``path`` cannot be written (see :mod:`studies.outputs`); its subclass
            :class:`~studies.outputs.NoSpaceError` when its file system has no room for the
            new file (checked before writing, and reported if the write finds it full).
        StoreFormatError: ``path`` exists but is not an nrto results file, or has a damaged run.
        StoreLockedError: another writer held the lock too long.
        ValueError: a malformed ``run_id`` or an inconsistent ``result``.
    """
    path = check_output(path)
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig; got {type(config).__name__}")
    if not isinstance(result, OptimizationResult):
        raise TypeError(f"result must be an OptimizationResult; got {type(result).__name__}")
    if run_id is not None and not _RUN_ID.match(run_id):
        raise ValueError(f"run_id must look like 'run-0003'; got {run_id!r}")
    lengths = result.length_problem()
    if lengths:  # stored, it would make the file refuse every later write
        raise ValueError(f"inconsistent result: {lengths}")
    partial = result.status == "interrupted" if partial is None else bool(partial)
    check_free_space(path, _rewrite_bytes(path, result))
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
                    problem = (_run_problem(group) if _RUN_ID.match(name)
                               else "its name is not a run id")
                    if name == run_id:
                        created = group.attrs.get("created")
                    elif problem is not None:
                        raise StoreFormatError(f"{path}: {name} is damaged: {problem}; runs are "
                                               f"not added to a file with a damaged run")
                    else:
                        source.copy(group, runs, name=name)
        if run_id is None:
            run_id = f"run-{next_number:04d}"
        next_number = max(next_number, int(_RUN_ID.match(run_id)[1]) + 1)
        target.attrs["next_run_number"] = next_number
        _write_group(runs.create_group(run_id), config, result, partial,
                     parameter_specs, created)
        if on_run_id is not None:
            on_run_id(run_id)
    return run_id


def _rewrite_bytes(path: Path, result: OptimizationResult) -> int:
    """An upper bound of the bytes a rewrite of ``path`` with ``result`` needs in its folder:
    the file as it is (copied into the new one) plus the result's arrays uncompressed, plus
    128 KiB for HDF5's own structures and the run's attributes."""
    values = (getattr(result, field.name) for field in dataclasses.fields(result))
    arrays = [value for value in values if isinstance(value, np.ndarray)]
    if result.state is not None:
        arrays += list(result.state.arrays.values())
    existing = path.stat().st_size if path.exists() else 0
    return existing + sum(array.nbytes for array in arrays) + 2 ** 17


@contextlib.contextmanager
def _atomic_rewrite(path: Path, lock_timeout: float):
    """Under the write lock, yield a new (empty, writable) ``h5py.File`` that replaces ``path``.

    The caller fills it (reading ``path`` if it wants to carry its content over); on a normal exit
    it replaces ``path`` as :func:`studies.outputs.atomic_output` does (fsync, mode kept, rename).
    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    import h5py

    path = check_output(path)
    with _write_lock(path, lock_timeout):
        for stale in path.parent.iterdir():
            if stale.name.startswith(temporary_prefix(path)) and stale.is_file():
                stale.unlink(missing_ok=True)  # left by a killed writer; we hold the lock
        with atomic_output(path, suffix="") as temporary:
            with h5py.File(temporary, "w") as target:
                yield target


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
    path = check_output(path)
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
                problem = (_run_problem(group) if _RUN_ID.match(run_name)
                           else "its name is not a run id")
                if problem is not None:
                    raise StoreFormatError(f"{path}: {run_name} is damaged: {problem}; nothing "
                                           f"is written into a file with a damaged run")
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


def drop_arrays(path: str | os.PathLike, run_id: str | int, names: Sequence[str], *,
                lock_timeout: float = 60.0) -> str:
    """Remove optional arrays of a stored run (e.g. a CNN's iterates once they were analysed),
    keeping everything else: its attributes, its other arrays, its analyses and its ``updated``
    time (the run's history is unchanged, so its analyses stay valid).

    The names are recorded in the run's attribute ``dropped_arrays`` (JSON list). Dropping
    ``iterates`` also drops ``gradients`` and ``iterate_indices``; dropping ``s_pairs`` or
    ``y_pairs`` drops both and ``pair_iterations``. The file is rebuilt atomically.

    Args:
        path: an existing results file.
        run_id: the run (id, number or unique label).
        names: optional arrays of :class:`~solvers.result.OptimizationResult` (those that may be
            None): ``iterates``, ``gradients``, ``s_pairs``, ``y_pairs``, ``designs``.

    Returns:
        The resolved run id.

    Raises:
        ValueError: a name that is not an optional array.
    """
    unknown = [name for name in names if name not in _OPTIONAL_DATASETS]
    if unknown:
        raise ValueError(f"only optional arrays can be dropped ({', '.join(_OPTIONAL_DATASETS)})"
                         f"; got {', '.join(map(repr, unknown))}")
    drop = set(names)
    if "iterates" in drop:
        drop |= {"gradients", "iterate_indices"}
    if drop & {"s_pairs", "y_pairs"}:
        drop |= {"s_pairs", "y_pairs", "pair_iterations"}
    if "designs" in drop:
        drop |= {"designs", "design_indices", "designs_nonfinite"}
    path = check_output(path)
    run_id = ResultsFile(path).resolve(run_id)
    with _atomic_rewrite(path, lock_timeout) as target:
        with _open(path) as source:
            target.attrs.update(source.attrs)
            runs = target.create_group("runs")
            for name, group in source["runs"].items():
                if name != run_id:
                    source.copy(group, runs, name=name)
                    continue
                slim = runs.create_group(name)
                slim.attrs.update(group.attrs)
                for member in group:
                    if member not in drop:
                        source.copy(group[member], slim, name=member)
                before = loads_json(_text(group.attrs.get("dropped_arrays", "[]")))
                slim.attrs["dropped_arrays"] = _dumps(sorted(set(before) | (drop & set(
                    _DATASETS))))
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
        "partial": partial,
        "final_loss": float(result.loss_per_iterate[-1]) if len(result.loss_per_iterate)
        else math.nan,
        "best_loss": float(finite.min()) if finite.size else math.nan,
        "parameter_specs": _dumps([[s.name, list(s.shape), s.kind] for s in parameter_specs]),
        "versions": _dumps(dict(_versions())), "git_revision": revision,
        "git_dirty": "unknown" if dirty is None else ("yes" if dirty else "no"),
        "hostname": socket.gethostname(), "created": created or now, "updated": now,
        "schema_version": SCHEMA_VERSION,
    }
    for name, spec in _ATTRIBUTES.items():
        attrs[name] = _ATTRIBUTE_WRITERS[spec.dtype](getattr(result, name))
    group.attrs.update(attrs)
    for name, spec in _DATASETS.items():
        value = getattr(result, name)
        if value is None:
            continue
        if spec.dtype == "density8":
            dataset = _write_designs(group, name, np.asarray(value, dtype=np.float64), spec.axes)
        else:
            value = np.asarray(value, dtype=spec.dtype)
            if value.ndim != len(spec.axes):
                raise ValueError(f"result.{name} has {value.ndim} axes; expected "
                                 f"{len(spec.axes)} ({', '.join(spec.axes)})")
            # Parameter vectors (iterates, gradients, pairs) are float64 noise to gzip: it saves
            # a few percent at a large cost in time, so they are stored uncompressed.
            big = value.size > _COMPRESS_ABOVE and _UNCOMPRESSED_AXIS not in spec.axes
            dataset = group.create_dataset(name, data=value, chunks=True if big else None,
                                           compression="gzip" if big else None,
                                           compression_opts=1 if big else None)
        dataset.attrs["axes"] = list(spec.axes)
        dataset.attrs["description"] = spec.description
        for axis, label in enumerate(spec.axes):
            dataset.dims[axis].label = label
    if result.state is not None and partial:  # a finished run is not resumed: keep files small
        _write_state(group.create_group(_STATE_GROUP), result.state)


def _write_state(group, state: OptimizerState) -> None:
    """The optimizer state of a run: arrays as uncompressed datasets, scalars as attributes of
    the subgroup ``scalars``; method, size and fingerprint as the group's attributes."""
    group.attrs.update({"method": state.method, "size": state.size,
                        "fingerprint": state.fingerprint})
    for name, value in state.arrays.items():
        group.create_dataset(name, data=value)
    group.create_group("scalars").attrs.update(dict(state.scalars))


_ATTRIBUTE_WRITERS = {"str": str, "int": int, "float": float, "bool": bool, "json": _dumps}


def _write_designs(group, name: str, designs: np.ndarray, axes: tuple[str, ...]):
    """Densities as uint8 ``q`` with ``density = offset + scale * q`` (and a ``<name>_nonfinite``
    mask where they were NaN or infinite)."""
    if designs.ndim != len(axes):
        raise ValueError(f"result.{name} has shape {designs.shape}; expected axes {axes}")
    finite = np.isfinite(designs)
    low = min(0.0, float(designs[finite].min())) if finite.any() else 0.0
    high = max(1.0, float(designs[finite].max())) if finite.any() else 1.0
    scale = (high - low) / 255.0
    quantized = np.rint((np.where(finite, designs, low) - low) / scale)
    dataset = group.create_dataset(name, data=np.clip(quantized, 0, 255).astype(np.uint8),
                                   chunks=True if designs.size else None,
                                   compression="gzip" if designs.size else None)
    dataset.attrs["scale"] = scale
    dataset.attrs["offset"] = low
    if not finite.all():
        mask = group.create_dataset(f"{name}_nonfinite", data=~finite, compression="gzip")
        mask.attrs["axes"] = list(axes)
        mask.attrs["description"] = "True where the design was NaN or infinite (stored as offset)"
    return dataset
