"""The driver: expand a study, pick this shard's unfinished cells, run them on an executor.

Cells are submitted seed by seed (every cell of the first seed, in grid order, then the next
seed): a study stopped part way leaves every table row with the same seeds done, so its medians
are over a balanced subset rather than over whichever rows happened to come first. With
``order="problem"`` they go problem by problem instead (the study's problem order, then seed by
seed, grid order within): a comparison across methods per problem (the paper's benchmark, whose
relative errors need every method on a task) then has whole problems done.

``run_study`` submits every unfinished cell of the shard at once and collects outcomes as they
complete, with one overall tqdm bar on stderr (cells done/total, failures, ETA). A finished cell
(one with a compact record) is never submitted again; a partial one resumes in its worker
(:func:`studies.study.execute.run_cell`). When a local worker is killed the pool breaks: the driver
starts a new pool and resubmits the cells that have no record yet (at most ``max_restarts``
times). The driver itself writes only the spec (``study.json``); each worker writes its own cell's
files.

Shards: ``--shard I/N`` runs the cells whose key, read as a hexadecimal number, is ``I - 1``
modulo ``N``: a deterministic split that does not depend on the other cells or on the order.

One driver per folder and shard: ``run_study`` and ``tune_study`` hold the study's driver lease
(:func:`driving`, a :class:`studies.liveness.RunLease` on ``study.json``) while they run, so a
second driver of the same study (a forgotten background run, a second terminal) stops at once
with the first one's pid and host instead of computing every cell twice.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool

from studies.outputs import no_space

from .execute import CellOutcome, cell_record_options, run_cell
from .records import StudyFolder
from .spec import Cell, Study, StudyError

__all__ = ["StudyRun", "driving", "in_shard", "parse_shard", "run_cells", "run_study"]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` -> ``(I, N)`` with ``1 <= I <= N``.

    Raises:
        StudyError: malformed or out of range.
    """
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise StudyError(f"--shard expects I/N with 1 <= I <= N, e.g. 1/4; got {text!r}")
    return int(index), int(count)


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Whether the cell with this key belongs to ``shard`` (None: all)."""
    return shard is None or int(key, 16) % shard[1] == shard[0] - 1


@contextlib.contextmanager
def driving(study: Study, folder: StudyFolder, shard: tuple[int, int] | None) -> Iterator[None]:
    """Hold the driver lease of ``study``'s ``shard`` in ``folder`` (see the module docstring).

    Raises:
        StudyError: another live process drives the same folder and shard (naming its pid and
            host), or the lease cannot be created.
    """
    from studies.liveness import RunLease
    from studies.store import StoreError

    name, where = "driver", f"study {study.name!r} in {folder.path}"
    if shard is not None:
        name, where = f"driver-{shard[0]}-of-{shard[1]}", f"{where} (shard {shard[0]}/{shard[1]})"
    try:
        folder.path.mkdir(parents=True, exist_ok=True)
        lease = RunLease(folder.spec_path, name, subject=where)
        lease.acquire()
    except OSError as error:
        raise StudyError(f"cannot create {folder.path}: {error.strerror or error}") from None
    except StoreError as error:
        raise StudyError(str(error)) from None
    try:
        yield
    finally:
        lease.release()


@dataclasses.dataclass(frozen=True)
class StudyRun:
    """What one ``run_study`` call did.

    Attributes:
        cells: the cells of the shard.
        skipped: cells that already had a record.
        outcomes: the outcome of every cell submitted.
    """

    cells: tuple[Cell, ...]
    skipped: int
    outcomes: tuple[CellOutcome, ...]

    @property
    def errors(self) -> tuple[CellOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "error")

    @property
    def failed(self) -> tuple[CellOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")


def cell_settings(study: Study, executor_name: str) -> dict:
    """The keyword arguments of :func:`run_cell` that come from the study."""
    return {"record": dataclasses.asdict(study.record),
            "checkpoint_every": study.checkpoint_every,
            "checkpoint_seconds": study.checkpoint_seconds, "keep_runs": study.keep_runs,
            "executor": executor_name}


def check_cells_memory(cells: Sequence[Cell], study: Study, executor) -> None:
    """Refuse, before any cell starts, cells that cannot fit in this machine's memory when the
    executor's workers run the largest of them at once (:func:`studies.resources.check_memory`).

    Only where the workers share this machine (``executor.local``): a scheduler's workers are
    elsewhere, with memory this driver cannot see. Toy cells are not estimated.

    Raises:
        StudyError: one line with the estimate, its largest parts and the available memory.
    """
    from studies import resources

    if not getattr(executor, "local", False):
        return
    record = cell_record_options(dataclasses.asdict(study.record))
    estimates = [dataclasses.replace(resources.estimate_run_memory(cell.run_config(record)),
                                     label=cell.label)
                 for cell in cells if "toy" not in cell.problem_definition]
    try:
        resources.check_memory(estimates, jobs=executor.workers, workers="workers:",
                               advice="use fewer --jobs, smaller problems, or "
                                      "--ignore-memory-check to run anyway")
    except resources.InsufficientMemoryError as error:
        raise StudyError(str(error)) from None


def stop_if_disk_full(error: str, done: str) -> None:
    """Raise :class:`StudyError` when a cell's ``error`` says that its disk is full: every later
    cell would compute for nothing (stopped like Ctrl-C: what is finished is kept)."""
    if no_space(error):
        raise StudyError(f"stopped, the disk is full: {error}; the {done} finished so far are "
                         f"kept: free some space and rerun to continue")


def run_cells(cells: Sequence[Cell], folder: StudyFolder, executor, settings: dict, *,
              on_outcome: Callable[[CellOutcome], None] = lambda outcome: None,
              max_restarts: int = 3) -> list[CellOutcome]:
    """Run ``cells`` (none with a record) on ``executor``; outcomes in completion order."""
    outcomes: list[CellOutcome] = []
    todo = {cell.key: cell for cell in cells}
    restarts = 0
    while todo:
        futures = {executor.submit(run_cell, cell.to_dict(), str(folder.path), **settings): key
                   for key, cell in todo.items()}
        broken = False
        pending = set(futures)
        while pending:
            done, pending = executor.wait_any(pending)
            for future in done:
                key = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                except Exception as error:  # noqa: BLE001 - e.g. dask's KilledWorker
                    outcome = CellOutcome(key, "error", error=f"{todo[key].label}: "
                                          f"{type(error).__name__}: {error}")
                todo.pop(key, None)
                outcomes.append(outcome)
                on_outcome(outcome)
                if outcome.status == "error":
                    stop_if_disk_full(outcome.error or "", "cells")
        if broken:
            restarts += 1
            if restarts > max_restarts:
                raise StudyError(f"the worker pool broke {restarts} times (workers killed or "
                                 f"out of memory); rerun to continue where it stopped")
            executor.restart()
            todo = {key: cell for key, cell in todo.items() if not folder.finished(cell)}
    return outcomes


ORDERS = ("seed", "problem")


def run_study(study: Study, folder: StudyFolder, executor, *, shard: tuple[int, int] | None = None,
              progress: bool = True, tuned: dict | None = None, order: str = "seed",
              check_memory: bool = True) -> StudyRun:
    """Run the unfinished evaluation cells of ``study`` (of one shard) into ``folder``.

    Args:
        study: the spec (its tuning stage must have run when it has one; see ``tuned``).
        folder: the results folder; its spec must be ``study``'s (``check_owner``).
        executor: see :mod:`studies.study.executors`.
        shard: ``(I, N)`` or None.
        progress: draw the overall bar on stderr.
        tuned: the tuned options of the tuning stage (``tune.tuned_values``).
        order: ``"seed"`` or ``"problem"`` (see the module docstring).
        check_memory: refuse, before any cell starts, unfinished cells that cannot fit in
            memory (:func:`check_cells_memory`).

    Returns:
        What was run.

    Raises:
        StudyError: a bad ``order``, cells that cannot fit in memory, or a live process drives
            this folder and shard (:func:`driving`).
    """
    from .spec import expand

    if order not in ORDERS:
        raise StudyError(f"order must be one of {ORDERS}; got {order!r}")
    cells = tuple(c for c in expand(study, tuned) if in_shard(c.key, shard))
    rank = {entry.label: index for index, entry in enumerate(study.problems)}
    key = (lambda cell: cell.seed) if order == "seed" else \
        (lambda cell: (rank.get(cell.problem, len(rank)), cell.seed))
    with driving(study, folder, shard):
        return _run_todo(study, folder, executor, cells, key, progress, check_memory)


def _run_todo(study: Study, folder: StudyFolder, executor, cells: tuple[Cell, ...],
              key: Callable[[Cell], object], progress: bool, check_memory: bool) -> StudyRun:
    """``run_study``'s work under its driver lease: the cells without a record, in ``key`` order."""
    from tqdm import tqdm

    todo = sorted((cell for cell in cells if not folder.finished(cell)),
                  key=key)    # stable: grid order within a seed
    if check_memory:
        check_cells_memory(todo, study, executor)
    folder.write_spec(study)
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=f"study {study.name}",
               unit="cell", file=sys.stderr, disable=not progress, dynamic_ncols=True,
               smoothing=0.05)
    counts = {"failed": 0, "errors": 0}

    def on_outcome(outcome: CellOutcome) -> None:
        if outcome.status == "failed":
            counts["failed"] += 1
        elif outcome.status == "error":
            counts["errors"] += 1
            bar.write(f"error: {outcome.error}")
        bar.update(1)
        bar.set_postfix(failed=counts["failed"], errors=counts["errors"], refresh=False)

    try:
        outcomes = run_cells(todo, folder, executor, cell_settings(study, executor.name),
                             on_outcome=on_outcome)
    finally:
        bar.close()
    return StudyRun(cells, len(cells) - len(todo), tuple(outcomes))
