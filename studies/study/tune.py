"""The tuning stage: hyperopt's TPE over log10(step size), per group, through the executor.

For every group (a ``(problem, model, penal, method, variant)`` of a tuned method) the stage runs
``trials`` trials. Trial ``t`` asks ``hyperopt.tpe.suggest`` (the first 20 trials are hyperopt's
random start-up draws) for ``x`` in ``hp.quniform("log10_step", low, high, q)`` with the seed
``_trial_seed(random_state, t)`` -- a function of the trial number only, so a tuning restarted
from its stored trials asks exactly what an uninterrupted one would. The trial runs the group's
cell with ``option = 10 ** x`` (``x`` rounded to 10 decimals) for every tuning seed, in parallel on
the executor; these cells are ordinary cells (stage ``"tune"``, records under ``DIR/tune/records``,
checkpoints and resume as in any study). Its loss is the median over seeds of the final loss (the
loss at the last iterate after the group's budget), counting a failed or non-finite run as +inf; a
trial whose median is not finite is a failed trial (``STATUS_FAIL``), never an error.

Trials are stored as JSON (``DIR/tune/<group hash>.json``) after every trial; groups interleave
(every group with a free trial submits its cells), so a cluster stays busy. The tuned value of a
group is ``10 ** x`` of its lowest-loss trial (the first on ties); the evaluation cells of the group
then use it (:func:`studies.study.spec.expand` with ``tuned``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import statistics
import sys
from collections.abc import Mapping
from typing import Any

from studies.jsontext import loads_json

from .records import CompactRecord, StudyFolder, atomic_write_bytes, set_aside
from .schedule import cell_settings, in_shard, stop_if_disk_full
from .spec import Cell, Study, StudyError

__all__ = ["TuneGroup", "group_id", "tune_groups", "tune_study", "tuned_values",
           "untuned_groups"]

_PARAMETER = "log10_step"


def group_id(cell: Cell) -> str:
    """The tuning group of a cell, e.g. ``"A/pixel/p3/GD"``."""
    return f"{cell.problem}/{cell.model}/p{cell.penal:g}/{cell.method}" \
        + (f"/{cell.variant}" if cell.variant else "")


def _trial_seed(random_state: int, trial: int) -> int:
    return (random_state * 1_000_003 + trial * 7_919 + 17) % (2 ** 31 - 1)


@dataclasses.dataclass(frozen=True)
class TuneGroup:
    """One tuning group: its base cell, budget, seeds, trials and range of log10(option)."""

    id: str
    base: Cell
    steps: int
    seeds: tuple[int, ...]
    trials: int
    low: float
    high: float

    @property
    def file_name(self) -> str:
        return hashlib.sha256(self.id.encode()).hexdigest()[:16] + ".json"

    def trial_cell(self, option: str, value: float, seed: int) -> Cell:
        return dataclasses.replace(self.base, seed=seed, steps=self.steps, stage="tune",
                                   options={**self.base.options, option: value})


class _Placeholder(dict):
    """``tuned`` for listing the groups: every group tuned to a valid placeholder value."""

    def get(self, key, default=None):
        return 1.0


def tune_groups(study: Study, shard: tuple[int, int] | None = None) -> list[TuneGroup]:
    """The study's tuning groups (of one shard: by the hash of the group id)."""
    from .spec import expand, group_axes

    if study.tune is None:
        return []
    spec = study.tune
    groups: dict[str, TuneGroup] = {}
    for cell in expand(study, _Placeholder()):
        if cell.method not in spec.methods or group_id(cell) in groups:
            continue
        gid = group_id(cell)
        if not in_shard(hashlib.sha256(gid.encode()).hexdigest()[:16], shard):
            continue
        steps, seeds, trials = spec.for_group(group_axes(cell))
        low, high = spec.ranges[cell.model]
        groups[gid] = TuneGroup(gid, cell, steps or cell.steps, tuple(seeds), int(trials),
                                low, high)
    return list(groups.values())


_TRIAL_FIELDS = ("tid", "x", "value", "status", "loss")


def _load(folder: StudyFolder, group: TuneGroup, repair: bool = False) -> list[dict[str, Any]]:
    """The stored trials of ``group`` (``[]`` before its first).

    A damaged trials file (not JSON, another group's, a trial without its fields: a bad merge
    or an edit by hand) is an error naming it; with ``repair`` (the tuning driver) it is moved
    aside to ``<file>.damaged`` with a warning instead, and the group starts again from no
    trials: TPE's suggestions are seeded per trial and the trial cells' records are kept, so the
    same trials are replayed from those records, without computing their runs again.

    Raises:
        StudyError: the file is damaged and ``repair`` is False.
    """
    path = folder.tune_dir / group.file_name
    if not path.exists():
        return []
    try:
        data = loads_json(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("group") != group.id:
            found = data.get("group") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"it holds the trials of {found!r}, not {group.id!r}")
        trials = data["trials"]
        if not isinstance(trials, list) or not all(
                isinstance(t, dict) and all(k in t for k in _TRIAL_FIELDS) for t in trials):
            raise ValueError(f"its trials are not a list of tables with {_TRIAL_FIELDS}")
    except (ValueError, KeyError) as error:  # JSONDecodeError and UnicodeDecodeError too
        problem = f"{path} is a damaged trials file ({type(error).__name__}: {error})"
        if not repair:
            raise StudyError(f"{problem}; `nrto study run` (or tune) moves it aside and "
                             f"replays its trials from their cells' records") from None
        set_aside(path, problem, "its trials are replayed from their cells' records")
        return []
    return list(trials)


def _save(folder: StudyFolder, group: TuneGroup, trials: list[dict[str, Any]]) -> None:
    folder.tune_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"group": group.id, "steps": group.steps, "seeds": list(group.seeds),
                       "range": [group.low, group.high], "trials": trials}, indent=1,
                      allow_nan=True)
    atomic_write_bytes(folder.tune_dir / group.file_name, text.encode())


def _suggest(group: TuneGroup, q: float, random_state: int, trials: list[dict[str, Any]]
             ) -> float:
    """TPE's suggestion for trial ``len(trials)`` given the finished ``trials``."""
    from hyperopt import JOB_STATE_DONE, STATUS_FAIL, STATUS_OK, Trials, hp, tpe
    from hyperopt.base import Domain

    domain = Domain(lambda value: 0.0, hp.quniform(_PARAMETER, group.low, group.high, q))
    history = Trials()
    for trial in trials:
        tid = int(trial["tid"])
        ok = trial["status"] == "ok"
        result = {"status": STATUS_OK, "loss": trial["loss"]} if ok else {"status": STATUS_FAIL}
        misc = {"tid": tid, "cmd": domain.cmd, "workdir": domain.workdir,
                "idxs": {_PARAMETER: [tid]}, "vals": {_PARAMETER: [trial["x"]]}}
        docs = history.new_trial_docs([tid], [None], [result], [misc])
        docs[0]["state"] = JOB_STATE_DONE
        history.insert_trial_docs(docs)
    history.refresh()
    tid = len(trials)
    docs = tpe.suggest([tid], domain, history, _trial_seed(random_state, tid))
    return round(float(docs[0]["misc"]["vals"][_PARAMETER][0]), 10)


def _best_trial(trials: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [t for t in trials if t["status"] == "ok"]
    return min(ok, key=lambda t: (t["loss"], t["tid"])) if ok else None


def tuned_values(study: Study, folder: StudyFolder) -> dict[str, float]:
    """Group id -> tuned option value, for the groups whose tuning finished with an ok trial."""
    values = {}
    for group in tune_groups(study):
        trials = _load(folder, group)
        best = _best_trial(trials) if len(trials) >= group.trials else None
        if best is not None:
            values[group.id] = float(10.0 ** best["x"])
    return values


def untuned_groups(study: Study, folder: StudyFolder) -> list[TuneGroup]:
    """The groups whose tuning finished with every trial failed (no finite median loss in
    their range): they have no tuned value, so their evaluation cells are never run."""
    return [group for group in tune_groups(study)
            if len(trials := _load(folder, group)) >= group.trials and _best_trial(trials) is None]


def _trial_loss(losses: list[float]) -> tuple[str, float | None]:
    median = statistics.median(losses)
    return ("ok", float(median)) if math.isfinite(median) else ("fail", None)


def tune_study(study: Study, folder: StudyFolder, executor, *,
               shard: tuple[int, int] | None = None, progress: bool = True,
               max_trials: int | None = None,
               check_memory: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Run (or continue) the tuning stage; returns group id -> its trials.

    Args:
        max_trials: stop every group after this many trials in all (for tests of resumption).
        check_memory: refuse, before any trial starts, trial cells that cannot fit in memory
            (:func:`studies.study.schedule.check_cells_memory`).

    Raises:
        StudyError: no tune section, trial cells that cannot fit in memory, or a live process
            drives this folder and shard (:func:`studies.study.schedule.driving`).
    """
    from .schedule import check_cells_memory, driving

    if study.tune is None:
        raise StudyError(f"study {study.name!r} has no tune section")
    if check_memory:  # the step size does not change the memory: any value stands for all
        check_cells_memory([group.trial_cell(study.tune.option, 1.0, seed)
                            for group in tune_groups(study, shard) for seed in group.seeds],
                           study, executor)
    with driving(study, folder, shard):
        return _tune(study, folder, executor, shard, progress, max_trials)


def _tune(study: Study, folder: StudyFolder, executor, shard: tuple[int, int] | None,
          progress: bool, max_trials: int | None) -> dict[str, list[dict[str, Any]]]:
    """``tune_study``'s work under its driver lease."""
    from tqdm import tqdm

    from .schedule import run_cell

    spec = study.tune
    folder.write_spec(study)
    # a trial is judged by its compact record; its full run file (tens of MB for a CNN, and
    # thousands of trials) is dropped once the record is written, whatever keep_runs says
    settings = {**cell_settings(study, executor.name), "keep_runs": False}
    groups = tune_groups(study, shard)
    history = {g.id: _load(folder, g, repair=True) for g in groups}
    limit = {g.id: g.trials if max_trials is None else min(g.trials, max_trials) for g in groups}
    total = sum(limit.values())
    bar = tqdm(total=total, initial=sum(min(len(history[g]), limit[g]) for g in history),
               desc=f"tune {study.name}", unit="trial", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    active: dict[str, tuple[int, float, dict]] = {}
    futures: dict[Any, str] = {}
    by_id = {g.id: g for g in groups}
    try:
        while True:
            for group in groups:
                trials = history[group.id]
                if group.id in active or len(trials) >= limit[group.id]:
                    continue
                x = _suggest(group, spec.q, spec.random_state, trials)
                value = float(10.0 ** x)
                cells = {seed: group.trial_cell(spec.option, value, seed) for seed in group.seeds}
                waiting = {}
                for seed, cell in cells.items():
                    future = executor.submit(run_cell, cell.to_dict(), str(folder.path),
                                             **settings)
                    futures[future] = group.id
                    waiting[future] = cell
                active[group.id] = (len(trials), x, waiting)
            if not futures:
                break
            done, _ = executor.wait_any(list(futures))
            for future in done:
                gid = futures.pop(future)
                tid, x, waiting = active[gid]
                outcome_error = None
                try:
                    outcome = future.result()
                    outcome_error = outcome.error
                except Exception as error:  # noqa: BLE001 - counted as a failed run
                    outcome_error = f"{type(error).__name__}: {error}"
                if outcome_error:
                    bar.write(f"tune error: {outcome_error}")
                    stop_if_disk_full(outcome_error, "trials")  # not a failed step size
                if any(f in futures for f in waiting):
                    continue
                losses, keys = [], []
                for cell in waiting.values():
                    record = folder.read_record(cell)
                    final = record.final_loss if record is not None and \
                        record.status != "failed" else math.inf
                    losses.append(final if math.isfinite(final) else math.inf)
                    keys.append(cell.key)
                status, loss = _trial_loss(losses)
                history[gid].append({"tid": tid, "x": x, "value": float(10.0 ** x),
                                     "status": status, "loss": loss,
                                     "losses": [v if math.isfinite(v) else None for v in losses],
                                     "seeds": list(by_id[gid].seeds), "cells": keys})
                _save(folder, by_id[gid], history[gid])
                del active[gid]
                bar.update(1)
    finally:
        bar.close()
    return history


@dataclasses.dataclass(frozen=True)
class TuningProgress:
    """How far a study's tuning stage is, and what its trials cost.

    Attributes:
        trials_done, trials_total: stored trials, and the trials of every group.
        cpu_s: CPU seconds of the trials' runs (each run counted once: a value suggested twice
            reuses its cells).
    """

    trials_done: int
    trials_total: int
    cpu_s: float


def tuning_progress(study: Study, folder: StudyFolder) -> TuningProgress:
    """Trials done of all and their CPU seconds (from the trial cells' records)."""
    done = total = 0
    keys: set[str] = set()
    for group in tune_groups(study):
        trials = _load(folder, group)
        done += min(len(trials), group.trials)
        total += group.trials
        keys.update(key for trial in trials for key in trial.get("cells", ()))
    cpu = 0.0
    for key in sorted(keys):
        path = folder.tune_dir / "records" / f"{key}.json"
        if path.exists():  # the provenance only: no need to decode the record's arrays
            cpu += CompactRecord.cpu_s(path)
    return TuningProgress(done, total, cpu)


def trials_table(study: Study, folder: StudyFolder) -> list[Mapping[str, Any]]:
    """One row per stored trial of every group (for reports)."""
    rows = []
    for group in tune_groups(study):
        for trial in _load(folder, group):
            rows.append({"group": group.id, **{k: trial[k] for k in
                                               ("tid", "x", "value", "status", "loss")}})
    return rows
