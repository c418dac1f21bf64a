"""``nrto reproduce paper-benchmark`` without the command line: run cells, read records, report.

A results folder ``OUT`` (default ``results/paper-benchmark``) is a study folder of the engine
(:class:`studies.study.records.StudyFolder`): ``OUT/study.json`` is the spec of the last
invocation, ``OUT/records/<key>.json`` one compact record per finished run (committed; a record's
key hashes its computation, so records of several invocations, stages, machines and shards live
side by side), ``OUT/runs/<key>.h5`` the full run files (git-ignored). The result files of
:func:`studies.benchmark.outputs.write_outputs` are written next to them.

* :func:`run_benchmark`: run benchmark cells through the engine into ``OUT``;
* :func:`read_records`: the records of ``OUT`` that are benchmark runs with the paper's settings
  at one budget, by ``(task, method, seed)``; records of other settings or budgets are listed as
  ignored;
* :func:`write_benchmark_outputs`: consolidate those records into the loss Dataset and write
  every result file (the ``--report-only`` mode: records alone, nothing runs).

Time: a record's ``provenance["cpu_s"]`` (the worker's CPU seconds, its resumed sittings
included) is the run's ``elapsed_time`` in the Dataset, so the report's CPU-hours are CPU time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from studies.benchmark.analysis import CNN_METHOD, CONSTANT_SEED, EVALUATION_STEP, consolidate
from studies.benchmark.engine import STUDY_NAME, benchmark_cell, benchmark_study, engine_cell
from studies.benchmark.outputs import BenchmarkOutputs, write_outputs
from studies.benchmark.spec import (
    ISSUE_PLAN_STAGES, STEPS, BenchmarkCell, benchmark_cells, issue_plan)
from studies.study.records import CompactRecord, StudyFolder
from studies.study.schedule import StudyRun, run_study
from studies.study.spec import Study, StudyError

__all__ = [
    "BenchmarkRecords",
    "evaluation_step",
    "issue_targets",
    "open_benchmark",
    "read_records",
    "run_benchmark",
    "single_threaded",
    "write_benchmark_outputs",
]

Target = tuple[str, Sequence[BenchmarkCell]]


def evaluation_step(steps: int) -> int:
    """The step of every summary: the paper's 1000, or the budget when it is smaller."""
    return min(EVALUATION_STEP, int(steps))


def issue_targets(steps: int = STEPS, **settings) -> list[Target]:
    """The issue's two run stages: ``[("first", cells), ("small-seeds", cells)]``.

    ``settings``: ``cnn_dtype`` and ``upsampling`` of :func:`~studies.benchmark.spec.
    benchmark_cells`.
    """
    return [(stage, issue_plan(stage, steps=steps, **settings)) for stage in ISSUE_PLAN_STAGES]


def _claim(folder: StudyFolder) -> bool:
    """Whether an invocation may replace the folder's spec (it is a benchmark folder)."""
    stored = folder.read_spec()
    if stored is not None:
        return str(stored.get("spec", {}).get("name", "")).startswith(STUDY_NAME)
    return (folder.path / "records").is_dir() or (folder.path / "REPORT.md").is_file()


def _check_cnn_settings(cells: Sequence[BenchmarkCell]) -> None:
    """Refuse, before anything runs, CNN settings that ``CNNConfig`` does not take.

    ``studies.runner.validate_config`` leaves the CNN's fields (and those of the CNN that starts
    a pixel run) to the run itself; 464 cells failing one by one would say it too late.
    """
    from solvers.models import CNNConfig

    seen = set()
    for cell in cells:
        options = dict(cell.model_options)
        if cell.model == "pixel":
            if options.get("start") != "cnn":
                continue
            options = {"upsampling": options.get("start_upsampling", "bilinear"),
                       **({"dtype": options["start_dtype"]} if "start_dtype" in options
                          else {})}
        key = tuple(sorted(options.items()))
        if key in seen:
            continue
        seen.add(key)
        try:
            CNNConfig(**options)
        except (TypeError, ValueError) as error:
            raise StudyError(f"{cell.label}: the CNN settings {options} are not accepted here "
                             f"({type(error).__name__}: {error}); --cnn-dtype float64 needs no "
                             f"float32 network path") from None


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Runs inside are single-threaded: this process and the workers it spawns
    (:func:`studies.threads.configure_threads`, as every study executor does); every benchmark run
    uses one core, as the CPU-hours count them, and a record has the same bits everywhere."""
    from studies.threads import configure_threads

    configure_threads(1)
    yield


def open_benchmark(cells: Sequence[BenchmarkCell], out: str | os.PathLike, *,
                   name: str = STUDY_NAME, description: str = "") -> tuple[Study, StudyFolder]:
    """The engine study of ``cells`` and the folder ``out``, checked; nothing is written.

    A benchmark folder (one whose spec is a ``paper-benchmark`` study, or that holds records or
    a report without a spec) takes the new spec; the records of earlier invocations stay. A
    folder that holds another study, or other files, is refused.

    Raises:
        StudyError: no cells, CNN settings the models do not take, or a folder that is not a
            benchmark folder.
    """
    study = benchmark_study(cells, name=name, description=description)
    _check_cnn_settings(cells)
    folder = StudyFolder(out)
    folder.check_owner(study, force=_claim(folder))
    return study, folder


RUN_ORDER = "problem"
"""Cells run task by task (:func:`studies.study.schedule.run_study`): a relative error needs
every method on its task, so a partly done benchmark should have whole tasks."""


def run_benchmark(cells: Sequence[BenchmarkCell], out: str | os.PathLike, executor, *,
                  name: str = STUDY_NAME, shard: tuple[int, int] | None = None,
                  progress: bool = True) -> StudyRun:
    """Run the unfinished ``cells`` (of ``shard``) on ``executor`` into the folder ``out``.

    The folder is checked first (:func:`open_benchmark`); the runs are single-threaded
    (:func:`single_threaded`); each finished cell leaves ``out/records/<key>.json``.
    """
    study, folder = open_benchmark(cells, out, name=name)
    with single_threaded():
        return run_study(study, folder, executor, shard=shard, progress=progress,
                         order=RUN_ORDER)


@dataclasses.dataclass(frozen=True)
class BenchmarkRecords:
    """The benchmark's records of a folder at one budget.

    Attributes:
        steps: the budget of the runs.
        records: ``{(task, method, seed): record}`` of the finished runs.
        ignored: file names of records that are not the benchmark at ``steps`` with the paper's
            settings (another budget, precision or upsampling, another study's cells).
    """

    steps: int
    records: Mapping[tuple[str, str, int], CompactRecord]
    ignored: tuple[str, ...] = ()

    @property
    def done(self) -> frozenset[str]:
        """Labels (:attr:`BenchmarkCell.label`) of the finished runs."""
        return frozenset(f"{p}/{m}/seed{s}" for p, m, s in self.records)

    def cells(self) -> tuple[BenchmarkCell, ...]:
        return tuple(benchmark_cell(record.cell) for record in self.records.values())

    def dataset(self, step: int | None = None) -> xr.Dataset:
        """The consolidated losses (:func:`studies.benchmark.analysis.consolidate`).

        ``loss`` ``(problem, method, seed, step)``: each run's loss per logged evaluation, NaN
        past its end, with at least ``step + 1`` step slots; ``problem`` the tasks with a record,
        in catalogue order; ``elapsed_time`` the runs' CPU seconds.
        """
        step = evaluation_step(self.steps) if step is None else int(step)
        curves = {key: record.loss_per_evaluation for key, record in self.records.items()}
        elapsed = {key: float(record.provenance.get("cpu_s", np.nan))
                   for key, record in self.records.items()}
        longest = max((curve.size for curve in curves.values()), default=0)
        return consolidate(curves, elapsed=elapsed, length=max(longest, step + 1))

    def designs(self) -> dict[tuple[str, str], np.ndarray]:
        """The final design behind each typical value: ``{(task, method): float (H, W)}``.

        Pixel methods: the constant-start run (seed -1). ``cnn-lbfgs``: the seed at sorted index
        ``n // 2`` of the runs' lowest losses (the notebook's upper median).
        """
        runs: dict[tuple[str, str], list[tuple[float, int, CompactRecord]]] = {}
        for (problem, method, seed), record in self.records.items():
            if (method == CNN_METHOD) != (seed != CONSTANT_SEED):
                continue
            runs.setdefault((problem, method), []).append((record.best_loss, seed, record))
        designs = {}
        for key, candidates in runs.items():
            candidates.sort(key=lambda item: (np.nan_to_num(item[0], nan=np.inf), item[1]))
            record = candidates[len(candidates) // 2][2]
            designs[key] = record.final_design.astype(np.float64) / 255.0
        return designs


def read_records(out: str | os.PathLike, steps: int, *, cnn_dtype: str = "float32",
                 upsampling: str = "bilinear") -> BenchmarkRecords:
    """The records under ``out/records/`` that are benchmark runs of budget ``steps``.

    A record belongs when its cell is a paper method on a catalogue task and its key equals the
    key of :func:`~studies.benchmark.spec.benchmark_cells`' cell with these settings.

    Raises:
        StudyError: a record file that cannot be read (named).
    """
    folder = StudyFolder(out)
    directory = folder.records_dir()
    records: dict[tuple[str, str, int], CompactRecord] = {}
    ignored: list[str] = []
    definitions: dict[str, dict] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
        record = CompactRecord.read(path)
        try:
            cell = benchmark_cell(record.cell)
            if cell is None or cell.steps != steps:
                ignored.append(path.name)
                continue
            expected = benchmark_cells(cell.problem, (cell.seed,), methods=(cell.method,),
                                       steps=steps, cnn_dtype=cnn_dtype, upsampling=upsampling)
        except ValueError:  # not a catalogue task, or not the paper's model and optimizer
            ignored.append(path.name)
            continue
        if cell.problem not in definitions:
            definitions[cell.problem] = dict(engine_cell(expected[0]).problem_definition)
        if engine_cell(expected[0], _definition=definitions[cell.problem]).key != record.key \
                or path.stem != record.key:
            ignored.append(path.name)
            continue
        records[(cell.problem, cell.method, cell.seed)] = record
    return BenchmarkRecords(int(steps), records, tuple(ignored))


def _stage_lines(targets: Sequence[Target], done: frozenset[str]) -> list[str]:
    lines = ["Run stages (a cell is one run; done = its compact record is in `records/`):", "",
             "| stage | cells | done |", "|---|---|---|"]
    for name, cells in targets:
        labels = {cell.label for cell in cells}
        lines.append(f"| {name} | {len(labels)} | {len(labels & done)} |")
    return lines


def _time_lines(dataset: xr.Dataset) -> list[str]:
    """Runs done and their mean CPU seconds per method and size group (for sizing runs)."""
    from studies.benchmark.analysis import METHODS, size_groups

    large = size_groups(dataset["problem"]).values
    lines = ["", "CPU seconds per run (mean over the runs done; runs in parentheses):", "",
             "| method | small | large |", "|---|---|---|"]
    for method in METHODS:
        times = dataset["elapsed_time"].sel({"method": method}).values  # (problem, seed)
        texts = []
        for members in (~large, large):
            values = times[members].ravel()
            values = values[np.isfinite(values)]
            texts.append(f"{values.mean():.1f} ({values.size})" if values.size else "")
        lines.append(f"| {method} | {texts[0]} | {texts[1]} |")
    return lines


def _seed_lines(dataset: xr.Dataset) -> list[str]:
    """Runs per task behind each method's values: the paper's typical CNN value is a median
    over seeds 0-100, its typical pixel values the constant start alone (s = -1); the best of
    ensemble is the minimum over every seed run."""
    from studies.benchmark.analysis import METHODS

    lines = ["", "Runs per task behind the values (the paper: CNN seeds 0-100, whose median "
                 "is the typical value; pixel methods seeds -1-100, the typical value being "
                 "the constant start s = -1; the best of ensemble is the minimum over every "
                 "seed run):", "",
             "| method | tasks | runs per task | seeds |", "|---|---|---|---|"]
    most = 0
    for method in METHODS:
        ran = np.isfinite(dataset["elapsed_time"].sel({"method": method}).values)  # (task, seed)
        counts = ran.sum(axis=1)[ran.any(axis=1)]
        if not counts.size:
            continue
        most = max(most, int(counts.max()))
        seeds = dataset["seed"].values[ran.any(axis=0)]
        spread = f"{counts.min()}" if counts.min() == counts.max() else \
            f"{counts.min()}-{counts.max()} (median {np.median(counts):g})"
        lines.append(f"| {method} | {counts.size} | {spread} | "
                     f"{' '.join(str(int(s)) for s in seeds)} |")
    if most == 1:
        lines += ["", "With one run per task and method so far, the two samples agree on every "
                      "task compared (its one run is both); they part once the small-seeds "
                      "stage has run."]
    return lines

def filtered_volumes(found: BenchmarkRecords) -> dict[tuple[str, str, int], tuple[float, float]]:
    """The filtered volume each run's final design uses: ``{(task, method, seed): (volume,
    volume_fraction)}``, ``volume`` the mean physical density over the task's mask.

    The logit models (the CNN, pixel L-BFGS) fix the mean density before the cone filter, MMA and
    OC the mean after it (as the paper's code does); the filter does not keep the mean near the
    boundary, so the two methods' feasible sets differ. From the records' 8-bit designs (density
    error <= 1/510 per pixel; the 1000-step MMA and OC runs read back within 0.01 % of their
    volume fraction).
    """
    from solvers.problems import TASKS

    tasks = {task.name: task for task in TASKS}
    masks: dict[str, np.ndarray] = {}
    volumes = {}
    for (problem, method, seed), record in found.records.items():
        if problem not in masks:
            mask = getattr(tasks[problem].build(), "mask", None)
            masks[problem] = np.ones(record.final_design.shape, bool) if mask is None \
                else np.broadcast_to(np.asarray(mask, bool), record.final_design.shape)
        design = record.final_design.astype(np.float64) / 255.0
        volumes[(problem, method, seed)] = (float(design.sum() / masks[problem].sum()),
                                            float(tasks[problem].volume_fraction))
    return volumes


def _volume_lines(volumes: Mapping[tuple[str, str, int], tuple[float, float]]) -> list[str]:
    """Per method: runs, median and largest excess of the filtered volume over the fraction."""
    from studies.benchmark.analysis import METHODS

    lines = ["", "Filtered volume of the final designs against the volume fraction "
                 "(`volume / fraction - 1`; the logit models constrain the volume before the "
                 "filter, MMA and OC after it, as in the paper's code, so more material after "
                 "the filter is a head start, not a violation):", "",
             "| method | runs | median | largest |", "|---|---|---|---|"]
    for method in METHODS:
        excess = np.array([v / f - 1.0 for (_, m, _), (v, f) in volumes.items() if m == method])
        if excess.size:
            lines.append(f"| {method} | {excess.size} | {100 * np.median(excess):+.2f} % | "
                         f"{100 * excess[np.argmax(np.abs(excess))]:+.2f} % |")
    return lines


def write_benchmark_outputs(out: str | os.PathLike, *, steps: int,
                            targets: Sequence[Target] = (), step: int | None = None,
                            cnn_dtype: str = "float32", upsampling: str = "bilinear",
                            tasks: Sequence[str] | None = None,
                            notes: Sequence[str] = ()) -> BenchmarkOutputs:
    """Consolidate the records of ``out`` at budget ``steps`` and write every result file.

    Args:
        out: the results folder.
        steps: the budget of the runs reported (records of other budgets are ignored).
        targets: ``(stage name, cells)`` pairs: the report counts their cells done (and every
            recorded run); e.g. :func:`issue_targets`.
        step: the evaluation step (default :func:`evaluation_step` of ``steps``).
        cnn_dtype, upsampling: the settings whose records count (the paper's by default).
        tasks: the rows of the CSV tables (default: the catalogue's 116 tasks).
        notes: more lines for the report's notes.

    Raises:
        StudyError: the folder holds no record of the benchmark at ``steps``.
    """
    step = evaluation_step(steps) if step is None else int(step)
    found = read_records(out, steps, cnn_dtype=cnn_dtype, upsampling=upsampling)
    if not found.records:
        extra = f" ({len(found.ignored)} records of other budgets or settings)" \
            if found.ignored else ""
        raise StudyError(f"{Path(out) / 'records'} holds no record of the benchmark at {steps} "
                         f"steps{extra}; run `nrto reproduce paper-benchmark` first")
    cells = {cell.label: cell for _, group in targets for cell in group}
    cells.update({cell.label: cell for cell in found.cells()})
    lines = _stage_lines(targets, found.done) if targets else []
    if found.ignored:
        lines += ["", f"{len(found.ignored)} records in `records/` are other budgets or "
                      f"settings and are not part of these results."]
    dataset = found.dataset(step)
    lines += _seed_lines(dataset)
    lines += _time_lines(dataset)
    lines += _volume_lines(filtered_volumes(found))
    return write_outputs(out, dataset, cells=cells.values(), done=found.done, step=step,
                         tasks=tasks, designs=found.designs(), notes=[*lines, *notes])
