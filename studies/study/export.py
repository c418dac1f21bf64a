"""``nrto study export``: copy a study's run files into an nrto results file.

A study keeps each cell's full run in a run file of its own (``<study>/runs/<key>.h5``,
:mod:`studies.study.runfile`) that ``nrto inspect``, ``plot``, ``resume`` and the landscape
analyses do not read: they read results files (:mod:`studies.store`). Exporting adds each run to a
results file with the :class:`~studies.store.RunConfig` its cell ran with, so that those tools
rebuild the same objective. What the run recorded is copied as it is; its recording options are
read off the result (the iterates, pairs and designs it holds), since a run file does not name
them. The checkpoint of an unfinished cell becomes a partial run that ``nrto resume`` continues.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from studies.jsontext import loads_json

from .spec import Cell, StudyError

__all__ = ["ExportedRun", "export_runs"]


@dataclasses.dataclass(frozen=True)
class ExportedRun:
    """One run file copied: where from, the run id it got, and its cell's label."""

    run_file: Path
    run_id: str
    label: str


def _recorded(result):
    """The :class:`~solvers.result.RecordOptions` that describe what ``result`` holds."""
    from solvers.result import RecordOptions

    return RecordOptions(iterates_every=0,
                         iterates_at=tuple(int(i) for i in result.iterate_indices),
                         designs_at=tuple(int(i) for i in result.design_indices),
                         pairs=result.s_pairs is not None)


def _as_plain_run(result):
    """``result`` with its optimizer state fingerprinted as a plain run's.

    A study runs each cell's objective inside :class:`~studies.study.execute.BestTracker`, whose
    class name the state's objective fingerprint carries; ``nrto resume`` rebuilds the plain
    :class:`~solvers.objective.ModelObjective` of the same config and would refuse the state.
    The tracker only watches the calls, so the objective is the same one.
    """
    from solvers.objective import ModelObjective

    from .execute import BestTracker

    state, tracked = result.state, f"{BestTracker.__name__}|"
    if state is None or not state.fingerprint.startswith(tracked):
        return result
    plain = f"{ModelObjective.__name__}|{state.fingerprint[len(tracked):]}"
    return dataclasses.replace(result, state=dataclasses.replace(state, fingerprint=plain))


def _check_run_file(path: Path) -> None:
    """Refuse, before anything is written, a path that is not a study run file."""
    import h5py

    from .runfile import RUN_FORMAT

    if not path.is_file():
        raise StudyError(f"{path}: no such run file (a study's run files are "
                         f"<study folder>/runs/<cell key>.h5)")
    try:
        with h5py.File(path, "r") as handle:
            kind = handle.attrs.get("format")
            schema = handle.attrs.get("schema")
            cell = handle.attrs.get("cell")
    except OSError:
        raise StudyError(f"{path} is not an HDF5 file (not a study run file)") from None
    if schema is not None:
        raise StudyError(f"{path} is already a results file: read it with nrto inspect")
    if kind != RUN_FORMAT:
        raise StudyError(f"{path} is not a study run file (format attribute {kind!r}; "
                         f"expected {RUN_FORMAT!r})")
    try:
        definition = loads_json(cell).get("problem_definition", {})
    except (TypeError, ValueError, AttributeError):
        raise StudyError(f"{path} is a damaged run file (its cell is not readable)") from None
    if "toy" in definition:
        raise StudyError(f"{path} is a run of a toy problem, which the nrto tools cannot "
                         f"rebuild; only runs of real tasks export")


def export_runs(run_files: Sequence[str | os.PathLike],
                out: str | os.PathLike) -> list[ExportedRun]:
    """Add the run of each study run file to the results file ``out``.

    Args:
        run_files: paths of run files (``<study folder>/runs/<key>.h5``); a finished run or the
            checkpoint of an unfinished one (exported as a partial run, which ``nrto resume``
            continues).
        out: the results file (created, or the runs are added).

    Returns:
        One :class:`ExportedRun` per file, in the order given.

    Raises:
        StudyError: a path that is not a study run file, or the run of a toy problem (which has
            no :class:`~studies.store.RunConfig`), checked for every file before any is written;
            a damaged run file (the runs before it are written).
        OutputError: ``out`` cannot be written (:mod:`studies.outputs`).
    """
    from studies.store import check_writable, write_run

    from .runfile import DamagedRunFile, read_checkpoint

    paths = [Path(p) for p in run_files]
    if not paths:
        raise StudyError("no run file given")
    repeated = sorted({str(p) for p in paths if paths.count(p) > 1})
    if repeated:
        raise StudyError(f"run file(s) given twice: {', '.join(repeated)}")
    for path in paths:
        _check_run_file(path)
    check_writable(out)
    exported = []
    for path in paths:
        try:
            checkpoint = read_checkpoint(path)
        except DamagedRunFile as error:
            raise StudyError(str(error)) from None
        cell = Cell.from_dict(checkpoint.cell)
        config = cell.run_config(_recorded(checkpoint.result))
        run_id = write_run(out, config, _as_plain_run(checkpoint.result),
                           partial=checkpoint.partial)
        exported.append(ExportedRun(path, run_id, cell.label))
    return exported
