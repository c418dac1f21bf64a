"""Machine-readable results and ``REPORT.md`` of the paper benchmark (issue 10, item 4).

Formats (tests and readers depend on them; every file is written atomically):

* ``typical-step1000.csv`` and ``best-of-ensemble-step1000.csv``: header
  ``problem_name,cnn-lbfgs,pixels-lbfgs,pixels-mma,pixels-oc``, one row per task in catalogue
  order (:data:`solvers.problems.TASKS`, or the tasks given), the compliance at the evaluation
  step, empty where not run;
* ``seeds.csv``: ``problem_name,method,seeds``, one row per task and method in the same orders,
  ``seeds`` the seeds behind the typical value separated by single spaces (empty: none);
* ``summary.csv``: ``sample,group,method,mean_relative_error,tasks``, ``sample`` in
  ``typical|ensemble``, ``group`` in ``small|large|all``, one row per sample, group and method in
  those orders; ``tasks`` the problems with a value (``mean_relative_error`` empty when 0),
  among the tasks on which every method has run (all 116 once the benchmark is complete; see
  :func:`studies.benchmark.analysis.comparable`).

Numbers are written with Python's ``repr`` of the float64 (shortest exact round trip).
"""
from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import xarray as xr

from studies.benchmark.analysis import GROUPS, METHODS, SAMPLES

__all__ = [
    "PAPER_CPU_HOURS_PER_SEED",
    "METHOD_TITLES",
    "SAMPLE_TITLES",
    "catalogue_tasks",
    "write_report",
    "write_seeds",
    "write_step_table",
    "write_summary",
]

PAPER_CPU_HOURS_PER_SEED = 267.0  # about 27,000 CPU-hours for 101 seeds (the paper's README)
SAMPLE_TITLES = {"typical": "Typical sample", "ensemble": "Best of ensemble"}
METHOD_TITLES = {"cnn-lbfgs": "CNN-LBFGS", "pixels-lbfgs": "Pixel-LBFGS", "pixels-mma": "MMA",
                 "pixels-oc": "OC"}


def catalogue_tasks() -> tuple[str, ...]:
    """The 116 task names in the paper's order."""
    from solvers.problems import TASKS
    return tuple(task.name for task in TASKS)


def _number(value: float) -> str:
    value = float(value)
    return "" if math.isnan(value) else repr(value)


def _write_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) so that a reader sees the old file or the new one, never half of
    one; a full disk is one :class:`~studies.outputs.NoSpaceError` and leaves the old file."""
    from studies.study.records import atomic_write_bytes

    atomic_write_bytes(Path(path), text.encode("utf-8"))   # creates a missing folder
    return Path(path)


def _tasks(tasks: Sequence[str] | None, problems: Sequence[str]) -> tuple[str, ...]:
    tasks = catalogue_tasks() if tasks is None else tuple(tasks)
    missing = [problem for problem in problems if problem not in tasks]
    if missing:
        raise ValueError(f"problem(s) {missing[:3]} are not among the tasks to write; pass "
                         "tasks=None for the catalogue or list them")
    return tasks


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_step_table(path: str | os.PathLike, values: xr.DataArray,
                     tasks: Sequence[str] | None = None) -> Path:
    """Write compliances at the evaluation step, ``(problem, method)``, as the CSV above.

    Args:
        path: e.g. ``results/paper-benchmark/typical-step1000.csv``.
        values: float ``(problem, method)``, e.g. ``at_step(reduction.curve.sel(sample=...))``.
        tasks: the rows, in order (default: the catalogue's 116 tasks).

    Raises:
        ValueError: a problem of ``values`` is not among ``tasks``, or unknown dims.
    """
    if set(values.dims) != {"problem", "method"}:
        raise ValueError(f"values must have dims (problem, method); got {values.dims}")
    problems = [str(p) for p in values["problem"].values]
    methods = [str(m) for m in values["method"].values]
    table = values.transpose("problem", "method").values
    lookup = {(p, m): table[i, j] for i, p in enumerate(problems) for j, m in enumerate(methods)}
    rows = [["problem_name", *METHODS]]
    for task in _tasks(tasks, problems):
        rows.append([task, *(_number(lookup.get((task, method), math.nan))
                             for method in METHODS)])
    return _write_atomically(path, _csv(rows))


def write_seeds(path: str | os.PathLike, seeds: Mapping[tuple[str, str], Sequence[int]],
                tasks: Sequence[str] | None = None) -> Path:
    """Write ``seeds.csv`` from ``{(problem, method): seeds}`` (e.g. ``typical_seeds``)."""
    problems = sorted({problem for problem, _ in seeds})
    rows = [["problem_name", "method", "seeds"]]
    for task in _tasks(tasks, problems):
        for method in METHODS:
            chosen = sorted(int(seed) for seed in seeds.get((task, method), ()))
            rows.append([task, method, " ".join(str(seed) for seed in chosen)])
    return _write_atomically(path, _csv(rows))


def write_summary(path: str | os.PathLike, table: xr.Dataset) -> Path:
    """Write ``summary.csv`` from :func:`studies.benchmark.analysis.summary`'s Dataset."""
    rows = [["sample", "group", "method", "mean_relative_error", "tasks"]]
    for sample in SAMPLES:
        for group in GROUPS:
            if group not in table["group"].values:
                continue
            for method in METHODS:
                if method in table["method"].values:
                    cell = table.sel({"sample": sample, "group": group, "method": method})
                    mean, tasks = float(cell["mean_relative_error"]), int(cell["tasks"])
                else:
                    mean, tasks = math.nan, 0
                rows.append([sample, group, method, _number(mean), str(tasks)])
    return _write_atomically(path, _csv(rows))


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def write_report(path: str | os.PathLike, *, table: xr.Dataset,
                 cells: Mapping[str, tuple[int, int]],
                 cpu_hours: Mapping[tuple[str, str], float],
                 evaluation_step: int,
                 wins: xr.DataArray | None = None,
                 projected_cpu_hours_per_seed: float | None = None,
                 figures: Sequence[tuple[str, str]] = (),
                 notes: Sequence[str] = (),
                 compared: tuple[int, int] | None = None) -> Path:
    """Write ``REPORT.md``: cells done, compute spent, the summary table, wins and figures.

    Args:
        path: e.g. ``results/paper-benchmark/REPORT.md``.
        table: :func:`~studies.benchmark.analysis.summary` at ``evaluation_step``.
        cells: ``{method: (done, total)}`` run cells of the benchmark.
        cpu_hours: ``{(method, group): CPU-hours}`` of the runs done, ``group`` small|large.
        evaluation_step: the step of every summary (1000 in the paper).
        wins: :func:`~studies.benchmark.analysis.win_counts` at that step, or None.
        projected_cpu_hours_per_seed: the projected cost of one seed of all 116 tasks (all four
            methods), shown beside the paper's ~267 CPU-hours per seed; NaN says it cannot be
            projected yet; None leaves it out.
        figures: ``(caption, path relative to the report)`` pairs.
        notes: free lines appended at the end.
        compared: ``(tasks on which every method has run, tasks with any run)``: the relative
            errors, wins and CDF are over the first (see
            :func:`~studies.benchmark.analysis.comparable`); None leaves the sentence out.
    """
    done = sum(d for d, _ in cells.values())
    total = sum(t for _, t in cells.values())
    lines = ["# Paper benchmark (Hoyer, Sohl-Dickstein & Greydanus 2019): reproduction", "",
             f"Every summary is at step {evaluation_step} (index 0 is the initial design).", "",
             "## Cells done", "", f"**{done} of {total}** run cells are done.", ""]
    lines += _markdown_table(["method", "done", "of"],
                             [[m, str(d), str(t)] for m, (d, t) in cells.items()])
    spent = sum(cpu_hours.values())
    lines += ["", "## Compute", "", f"CPU-hours spent on the runs done: **{spent:.2f}**.", ""]
    lines += _markdown_table(["method", "small", "large", "total"], [
        [method, *(f"{cpu_hours.get((method, g), 0.0):.2f}" for g in ("small", "large")),
         f"{cpu_hours.get((method, 'small'), 0.0) + cpu_hours.get((method, 'large'), 0.0):.2f}"]
        for method in METHODS if any((method, g) in cpu_hours for g in ("small", "large"))])
    if projected_cpu_hours_per_seed is not None and math.isnan(projected_cpu_hours_per_seed):
        lines += ["", "Projected for one seed of all 116 tasks: not yet (it needs a timed run of "
                      "every method on small and on large tasks)."]
    elif projected_cpu_hours_per_seed is not None:
        lines += ["", f"Projected for one seed of all 116 tasks: "
                      f"{projected_cpu_hours_per_seed:.1f} CPU-hours (the paper: about "
                      f"{PAPER_CPU_HOURS_PER_SEED:.0f} CPU-hours per seed)."]
    lines += ["", "## Mean relative error", "",
              "Arithmetic mean over the tasks with a value (their number in parentheses), "
              "rounded to 4 decimals.", ""]
    if compared is not None:
        lines[-1:-1] = ["", f"Relative errors, wins and the CDF are over the **{compared[0]} of "
                        f"{compared[1]} tasks** that have a typical value of every method at "
                        f"step {evaluation_step}: an error is relative to the best method on "
                        "its task, so a task where some methods have not run yet would flatter "
                        "the others (a lone method is always best)."]
    rows = []
    for sample in SAMPLES:
        for group in table["group"].values:
            cells_text = []
            for method in METHODS:
                if method not in table["method"].values:
                    cells_text.append("")
                    continue
                cell = table.sel({"sample": sample, "group": group, "method": method})
                mean, tasks = float(cell["mean_relative_error"]), int(cell["tasks"])
                cells_text.append("" if math.isnan(mean) else f"{mean:.4f} ({tasks})")
            rows.append([SAMPLE_TITLES[sample], str(group), *cells_text])
    lines += _markdown_table(["sample", "group", *(METHOD_TITLES[m] for m in METHODS)], rows)
    if wins is not None:
        lines += ["", "## Wins", "", "Tasks on which a method has the smallest relative error "
                  "(ties count for each tied method).", ""]
        rows = [[SAMPLE_TITLES[sample], str(group),
                 *(str(int(wins.sel({"sample": sample, "group": group, "method": m})))
                   if m in wins["method"].values else "" for m in METHODS)]
                for sample in SAMPLES for group in wins["group"].values]
        lines += _markdown_table(["sample", "group", *(METHOD_TITLES[m] for m in METHODS)], rows)
    if figures:
        lines += ["", "## Figures", ""]
        for caption, figure in figures:
            lines += [f"![{caption}]({figure})", "", f"*{caption}*", ""]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return _write_atomically(path, "\n".join(lines).rstrip() + "\n")
