"""Running one cell in a worker: build the objective, optimize with checkpoints, write the record.

:func:`run_cell` is what executors call (a picklable module-level function with plain
arguments). It

1. returns at once when the cell's compact record exists (a finished cell is never rerun);
2. builds the objective (``studies.runner.build_objective`` of the cell's ``RunConfig``, or a toy
   objective) and wraps it in :class:`BestTracker`, which remembers the parameters of the lowest
   loss evaluated (for the best design) and changes nothing else;
3. reads the cell's run file: a checkpoint whose result carries an optimizer ``state`` is
   resumed (``solvers.optimize(..., resume=partial)``, bit-identical to an uninterrupted run by
   the optimizer's contract); a checkpoint without a state is discarded and the cell restarts, so
   the result never depends on where it was interrupted;
4. optimizes, writing the run file every ``checkpoint_every`` iterations or ``checkpoint_seconds``
   seconds (never at the iterate that exhausts the budget: nothing would be left to resume);
5. writes the compact record (atomically), then the full run file or none (``keep_runs``).

The worker's threads: TensorFlow and BLAS use one thread each (:func:`configure_worker`).
"""
from __future__ import annotations

import _thread
import dataclasses
import functools
import math
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from studies.outputs import NoSpaceError, no_space

from .records import CompactRecord, StudyFolder, design_to_uint8, set_aside
from .runfile import DamagedRunFile, read_checkpoint, write_checkpoint
from .spec import Cell

__all__ = ["BestTracker", "CellOutcome", "configure_pool_worker", "configure_worker",
           "run_cell"]


def configure_worker() -> None:
    """Pin this process to one thread for TensorFlow and the BLAS
    (:func:`studies.threads.configure_threads`; idempotent). Every cell runs single-threaded,
    wherever it runs, so that its record does not depend on the executor."""
    from studies.threads import configure_threads

    configure_threads(1)


_stopping = False
"""Set in a pool worker by SIGTERM: the cells still queued to it return at once."""


def _stop_on_sigterm(signum, frame) -> None:
    global _stopping
    _stopping = True
    raise KeyboardInterrupt(f"signal {signum}")


STOP_GRACE_S = 120.0
"""How long an interrupted cell may take to store its state before its worker is killed."""

_in_cell = threading.Event()
"""Set while this process runs a cell (for the orphan watch of a pool worker)."""


def _watch_parent(parent: int, poll_s: float = 2.0, grace_s: float = STOP_GRACE_S) -> None:
    """End this pool worker when its driver is gone (killed with -9: nobody would stop it).

    A running cell is interrupted first, so it stores the state its run reached; queued cells
    are not started; the process exits once the cell has returned (or after ``grace_s``).
    """
    global _stopping
    while os.getppid() == parent:
        time.sleep(poll_s)
    _stopping = True
    if _in_cell.is_set():
        _thread.interrupt_main()
        deadline = time.monotonic() + grace_s
        while _in_cell.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
    os._exit(0)


def configure_pool_worker() -> None:
    """The initializer of a local pool's worker process: :func:`configure_worker`; SIGTERM
    (sent by the driver when it is interrupted) raised as ``KeyboardInterrupt``, so that the
    running cell stores the state its run reached and cells queued after it are not started;
    and a watch that ends the worker the same way when its driver dies."""
    import signal

    configure_worker()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True,
                     name="nrto-parent-watch").start()


@dataclasses.dataclass(frozen=True)
class CellOutcome:
    """What a worker reports to the driver for one cell.

    Attributes:
        key: the cell's key.
        status: the run's status, ``"skipped"`` (it had a record), or ``"error"`` (it raised;
            no record was written, so a rerun retries it).
        final_loss: loss at the last iterate (NaN when none).
        wall_s, cpu_s: seconds spent in this call.
        resumed: whether it continued a checkpoint.
        error: the one-line error of an ``"error"`` outcome.
    """

    key: str
    status: str
    final_loss: float = math.nan
    wall_s: float = 0.0
    cpu_s: float = 0.0
    resumed: bool = False
    error: str | None = None


class BestTracker:
    """A flat objective that forwards everything to ``objective`` and keeps the best evaluation.

    Attributes:
        best_x: float64 ``(n,)`` parameters of the lowest finite loss seen (first one on ties).
        best_loss: that loss (inf before any).
        best_evaluation: its 0-based evaluation index (-1 before any).
        evaluations: calls of ``value`` / ``value_and_grad`` so far (including those of the
            checkpoint it was restored from).
    """

    def __init__(self, objective: Any):
        self._objective = objective
        self.size = objective.size
        self.parameter_specs = objective.parameter_specs
        self.best_x: np.ndarray | None = None
        self.best_loss = math.inf
        self.best_evaluation = -1
        self.evaluations = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._objective, name)

    def restore(self, best_x: np.ndarray | None, best_loss: float, best_evaluation: int,
                evaluations: int) -> None:
        self.best_x, self.best_loss = best_x, best_loss
        self.best_evaluation, self.evaluations = best_evaluation, evaluations

    def _seen(self, theta: np.ndarray, loss: float) -> None:
        if math.isfinite(loss) and loss < self.best_loss:
            self.best_x = np.array(theta, dtype=np.float64, copy=True)
            self.best_loss, self.best_evaluation = float(loss), self.evaluations
        self.evaluations += 1

    def initial(self) -> np.ndarray:
        return self._objective.initial()

    def value(self, theta: np.ndarray) -> float:
        loss = self._objective.value(theta)
        self._seen(theta, float(loss))
        return loss

    def value_and_grad(self, theta: np.ndarray):
        loss, grad = self._objective.value_and_grad(theta)
        self._seen(theta, float(loss))
        return loss, grad

    def hvp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self._objective.hvp(theta, v)

    def design(self, theta: np.ndarray) -> np.ndarray:
        return self._objective.design(theta)


def cell_record_options(record: Mapping[str, Any]):
    """The :class:`~solvers.result.RecordOptions` a cell runs with, from ``dataclasses.asdict``
    of the study's: its designs always include the last iterate (the record's final design)."""
    from solvers.result import RecordOptions

    options = RecordOptions(**{**record, "designs_at": tuple(record.get("designs_at", (0, -1)))})
    if -1 not in options.designs_at:
        options = dataclasses.replace(options, designs_at=(*options.designs_at, -1))
    return options


def _objective(cell: Cell, record_options) -> Any:
    if "toy" in cell.problem_definition:
        from .toy import toy_objective
        return toy_objective(cell.problem_definition, cell.seed)
    from studies.runner import build_objective
    return build_objective(cell.run_config(record_options))


def _dtype(objective: Any) -> str:
    model = getattr(objective, "model", None)
    dtype = getattr(model, "dtype", None)
    if dtype is None:
        return "float64"
    return str(getattr(dtype, "name", dtype))


@functools.lru_cache(maxsize=1)
def machine() -> dict[str, str]:
    """The processor and the BLAS kernels in use, for a record's provenance.

    Records of one cell are the same bytes on one machine; on another processor the BLAS (and
    TensorFlow's oneDNN) kernels round differently, the first loss differs at ~1e-13 relative
    and a chaotic run ends elsewhere (measured: 0.01-0.5 % in the final loss of four Chapter 3
    cells rerun on a second machine). This says which records share their rounding.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        import threadpoolctl
        kernels = sorted({f"{info.get('internal_api')} {info.get('architecture', '?')}"
                          for info in threadpoolctl.threadpool_info()
                          if info.get("user_api") == "blas"})
    except Exception:  # noqa: BLE001 - provenance only; never fail a cell over it
        kernels = []
    return {"cpu": cpu, "blas": ", ".join(kernels) or "unknown"}


def _provenance(wall: float, cpu: float, executor: str, resumed: int,
                restarted: int) -> dict[str, Any]:
    from studies.store import _git_state, _versions

    revision, dirty = _git_state()
    return {"wall_s": wall, "cpu_s": cpu, "versions": dict(_versions()),
            "git_revision": revision, "git_dirty": dirty, "host": socket.gethostname(),
            "machine": machine(),
            "python": platform.python_version(), "finished": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "executor": executor,
            "resumed": resumed, "restarted": restarted}


def _uses(result, optimizer: str) -> int:
    from solvers.optim.registry import method_spec

    return result.evaluations if method_spec(optimizer).budget_unit == "evaluations" \
        else result.iterations


def run_cell(cell_data: Mapping[str, Any], folder: str, *, record: Mapping[str, Any],
             checkpoint_every: int = 25, checkpoint_seconds: float = 300.0,
             keep_runs: bool = True, executor: str = "local") -> CellOutcome:
    """Run one cell (see the module docstring); plain arguments so that any executor can ship it.

    Args:
        cell_data: ``Cell.to_dict()``.
        folder: the study's results folder.
        record: ``dataclasses.asdict`` of the study's ``RecordOptions``.
        checkpoint_every: iterations between checkpoints (0: none by count).
        checkpoint_seconds: seconds between checkpoints (0: none by time).
        keep_runs: keep the full run file after the record is written.
        executor: a name for the provenance.

    Returns:
        The outcome. Exceptions of the objective or optimizer become ``status="error"``.
    """
    configure_worker()
    cell = Cell.from_dict(cell_data)
    if _stopping:
        return CellOutcome(cell.key, "error", error=f"{cell.label}: not started (the study "
                                                    f"was interrupted)")
    _in_cell.set()
    try:
        return _run_cell(cell, StudyFolder(folder), record, checkpoint_every,
                         checkpoint_seconds, keep_runs, executor)
    finally:
        _in_cell.clear()


def _usable_checkpoint(run_path: Path, key: str):
    """``(checkpoint, damaged)``: the cell's run file read back (None when there is none), and
    whether a damaged one was moved aside (to ``<key>.h5.damaged``, with a warning): then the
    cell starts again from its beginning."""
    try:
        return read_checkpoint(run_path, key), False
    except DamagedRunFile as error:
        set_aside(run_path, str(error), "the cell starts again")
        return None, True


def _run_cell(cell: Cell, study_folder: StudyFolder, record: Mapping[str, Any],
              checkpoint_every: int, checkpoint_seconds: float, keep_runs: bool,
              executor: str) -> CellOutcome:
    from solvers import optimize

    if study_folder.finished(cell):
        return CellOutcome(cell.key, "skipped")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    record_options = cell_record_options(record)
    run_path = study_folder.run_path(cell)
    for target in (run_path, study_folder.record_path(cell)):  # left by a killed writer
        for stale in target.parent.glob(f".{target.name}.tmp-*") if target.parent.exists() \
                else ():
            stale.unlink(missing_ok=True)
    try:
        objective = BestTracker(_objective(cell, record_options))
        checkpoint, damaged = _usable_checkpoint(run_path, cell.key)
        resume, previous_wall, previous_cpu, restarted = None, 0.0, 0.0, int(damaged)
        if checkpoint is not None and checkpoint.partial:
            if getattr(checkpoint.result, "state", None) is not None:
                resume = checkpoint.result
                objective.restore(checkpoint.best_x, checkpoint.best_loss,
                                  checkpoint.best_evaluation, checkpoint.result.evaluations)
                previous_wall, previous_cpu = checkpoint.wall_s, checkpoint.cpu_s
            else:
                restarted = 1
        last = {"time": time.monotonic(), "iteration": 0 if resume is None
                else resume.iterations}

        def save(result, partial: bool) -> None:
            """Write the run file; one its file system has no room for is skipped with one
            warning (the run goes on; the record, written at the end, is what a cell needs)."""
            try:
                write_checkpoint(run_path, cell.to_dict(), result, partial=partial,
                                 best_x=objective.best_x, best_loss=objective.best_loss,
                                 best_evaluation=objective.best_evaluation,
                                 wall_s=previous_wall + time.perf_counter() - wall0,
                                 cpu_s=previous_cpu + time.process_time() - cpu0)
            except NoSpaceError as error:
                if not last.get("warned"):
                    print(f"warning: {cell.label}: run file {run_path} not written "
                          f"({no_space(error)}); the run goes on", file=sys.stderr, flush=True)
                last["warned"] = True

        def callback(info) -> None:
            due = (checkpoint_every and info.iteration - last["iteration"] >= checkpoint_every) \
                or (checkpoint_seconds and time.monotonic() - last["time"] >= checkpoint_seconds)
            if not due:
                return
            snapshot = info.snapshot()
            if _uses(snapshot, cell.optimizer) >= cell.steps:
                return  # the run ends here: a checkpoint would leave nothing to resume
            save(snapshot, partial=True)
            last["time"], last["iteration"] = time.monotonic(), info.iteration

        result = optimize(objective, cell.optimizer, steps=cell.steps,
                          seed=None if cell.seed < 0 else cell.seed, record=record_options,
                          callback=callback, resume=resume, **dict(cell.options))
        if result.status == "interrupted":  # Ctrl-C or SIGTERM: store the state reached
            if result.state is not None:
                save(result, partial=True)
            raise KeyboardInterrupt
        final = design_to_uint8(result.designs[-1]) if result.designs is not None \
            else design_to_uint8(objective.design(result.x))
        best = design_to_uint8(objective.design(objective.best_x)) \
            if objective.best_x is not None else final
        wall = previous_wall + time.perf_counter() - wall0
        cpu = previous_cpu + time.process_time() - cpu0
        compact = CompactRecord(
            cell=cell, status=result.status, message=result.message,
            converged=bool(result.converged), iterations=int(result.iterations),
            evaluations=int(result.evaluations),
            loss_per_evaluation=result.loss_per_evaluation,
            loss_per_iterate=result.loss_per_iterate,
            grad_norm_per_iterate=result.grad_norm_per_iterate, final_design=final,
            best_design=best, best_evaluation=objective.best_evaluation,
            dtype=_dtype(objective._objective),
            provenance=_provenance(wall, cpu, executor, int(resume is not None), restarted))
        if keep_runs:  # the finished run without the optimizer state (nothing to resume)
            save(dataclasses.replace(result, state=None), partial=False)
        study_folder.write_record(compact)
        if not keep_runs:
            Path(run_path).unlink(missing_ok=True)
        return CellOutcome(cell.key, result.status, compact.final_loss,
                           time.perf_counter() - wall0, time.process_time() - cpu0,
                           resume is not None)
    except Exception as error:  # noqa: BLE001 - reported to the driver; a rerun retries it
        message = f"{type(error).__name__}: {' '.join(str(error).split())}"
        return CellOutcome(cell.key, "error", wall_s=time.perf_counter() - wall0,
                           cpu_s=time.process_time() - cpu0, error=f"{cell.label}: {message}")
