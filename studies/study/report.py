"""Status and reports of a study, from its spec (``study.json``) and compact records alone.

Statistics (per group = ``(problem, model, penal, method)``, over the seeds whose cell finished):

* a cell's curve is its loss per step in the method's unit (``Cell.curve``), reduced to the
  running minimum (NaN skipped) and forward-filled to the group's longest curve, as Hoyer et
  al.'s analysis does; "final" is its value at the last step (the best-so-far loss);
* ``median``, ``iqr_low``, ``iqr_high``: the median and the 25th / 75th percentiles over seeds;
* ``convergence_step``: the first step where the median curve is within a relative ``1e-3`` of its
  final value (``convergence_step_1e-2`` with ``1e-2``);
* ``median_last_raw``: the median of the raw loss at each cell's last iterate.

``write_report(DIR)`` writes ``DIR/REPORT.md``, ``DIR/tables/*.csv`` (every table of the report)
and ``DIR/figures/*.png`` (median curves with IQR bands per method on a log axis; final designs of
the median seed; on request the raw curve of every seed).
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studies.plotting import literal, save_figure

from .records import CompactRecord, StudyFolder, atomic_write_bytes
from .spec import Cell, expand

__all__ = ["best_so_far", "group_statistics", "study_status", "write_report"]


def best_so_far(curve: np.ndarray, length: int) -> np.ndarray:
    """Running minimum (NaN and inf skipped) forward-filled to ``length``; NaN before any
    finite value."""
    curve = np.asarray(curve, dtype=np.float64)
    values = np.where(np.isfinite(curve), curve, np.inf)
    running = np.minimum.accumulate(values) if values.size else values
    running = np.where(np.isinf(running), np.nan, running)
    out = np.full(length, np.nan)
    out[:running.size] = running
    if 0 < running.size < length:
        out[running.size:] = running[-1]
    return out


def _load(folder: StudyFolder):
    from .tune import tuned_values

    study = folder.study()
    tuned = tuned_values(study, folder) if study.tune is not None else None
    cells = expand(study, tuned)
    return study, cells, {cell.key: folder.read_record(cell) for cell in cells}


def study_status(path: str | Path) -> dict[str, Any]:
    """Counts of the study's cells (done, failed, partial, pending), CPU-hours, tuning progress."""
    from .tune import group_id, tune_groups, tuned_values, tuning_progress, untuned_groups

    folder = StudyFolder(path)
    study = folder.study()
    cells = expand(study, tuned_values(study, folder) if study.tune is not None else None)
    records = {cell.key: folder.read_summary(cell) for cell in cells}
    done = [r for r in records.values() if r is not None]
    partial = sum(1 for c in cells if records[c.key] is None and folder.run_path(c).exists())
    methods = {}
    for cell in cells:
        row = methods.setdefault(cell.method, {"method": cell.method, "cells": 0, "done": 0,
                                               "failed": 0})
        row["cells"] += 1
        record = records[cell.key]
        row["done"] += record is not None
        row["failed"] += record is not None and record["status"] == "failed"
    cpu = sum(float(r["provenance"].get("cpu_s", 0.0)) for r in done)
    tune = None
    if study.tune is not None:
        groups = tune_groups(study)
        progress = tuning_progress(study, folder)
        tune_cpu = progress.cpu_s
        tuned_methods = set(study.tune.methods)
        untuned = {g.id for g in untuned_groups(study, folder)}
        missing = [c for c in expand(study, {g.id: 1.0 for g in groups})
                   if c.method in tuned_methods] if groups else []
        stuck = sum(1 for c in missing if group_id(c) in untuned)
        waiting = len(missing) - sum(1 for c in cells if c.method in tuned_methods) - stuck
        tune = {"groups": len(groups), "trials": progress.trials_total,
                "trials_done": progress.trials_done,
                "waiting_cells": int(waiting), "untuned_groups": sorted(untuned),
                "untuned_cells": stuck, "cpu_hours": tune_cpu / 3600.0}
        cpu += tune_cpu
    return {"study": study.name, "cells": len(cells), "done": len(done),
            "failed": sum(1 for r in done if r["status"] == "failed"), "partial": partial,
            "pending": len(cells) - len(done), "cpu_hours": cpu / 3600.0,
            "methods": list(methods.values()), "tune": tune}


def _groups(cells: Sequence[Cell]) -> dict[tuple, list[Cell]]:
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.problem, cell.model, cell.penal, cell.method), []).append(cell)
    return groups


def _convergence(median: np.ndarray, tolerance: float) -> int | None:
    if not median.size or not np.isfinite(median[-1]):
        return None
    final = median[-1]
    within = np.abs(median - final) <= tolerance * abs(final)
    return int(np.argmax(within)) if within.any() else None


def group_statistics(cells: Sequence[Cell], records: Mapping[str, CompactRecord | None],
                     report_steps: Sequence[int] = ()) -> tuple[list[dict], dict]:
    """Rows of the summary table and, per group, ``(steps, median, q25, q75)`` curves."""
    rows, curves = [], {}
    for group, members in _groups(cells).items():
        finished = [records[c.key] for c in members if records[c.key] is not None]
        row: dict[str, Any] = dict(zip(("problem", "model", "penal", "method"), group))
        row.update(cells=len(members), done=len(finished),
                   failed=sum(1 for r in finished if r.status == "failed"))
        length = max([r.curve.size for r in finished] or [0])
        if finished and length:
            stack = np.vstack([best_so_far(r.curve, length) for r in finished])
            with np.errstate(all="ignore"):
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    median = np.nanmedian(stack, axis=0)
                    q25, q75 = np.nanpercentile(stack, [25, 75], axis=0)
            curves[group] = (np.arange(length), median, q25, q75)
            row.update(median=median[-1], iqr_low=q25[-1], iqr_high=q75[-1],
                       median_last_raw=float(np.median([r.final_loss for r in finished])),
                       convergence_step=_convergence(median, 1e-3),
                       **{"convergence_step_1e-2": _convergence(median, 1e-2)})
            for step in report_steps:
                at = min(step, length - 1)
                row[f"median@{step}"] = median[at]
                row[f"iqr_low@{step}"] = q25[at]
                row[f"iqr_high@{step}"] = q75[at]
            row["cpu_hours"] = sum(float(r.provenance.get("cpu_s", 0.0)) for r in finished) \
                / 3600.0
        rows.append(row)
    return rows, curves


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell_text(row.get(k)) for k in columns})
    atomic_write_bytes(path, buffer.getvalue().encode())



def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.10g}"
    return str(value)


def _markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def text(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.6g}"
        # labels are free text: a '|' or a line break would split the row
        return "" if value is None else " ".join(str(value).split()).replace("|", "\\|")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(text(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _per_seed_figures(folder: StudyFolder, cells, records) -> list[Path]:
    """Raw loss per step of every finished seed (divergence shows here), one figure per panel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = folder.path / "figures"
    out.mkdir(parents=True, exist_ok=True)
    panels: dict[tuple, list] = {}
    for (problem, model, penal, method), members in _groups(cells).items():
        panels.setdefault((problem, model, penal), []).append((method, members))
    written, names = [], _file_names(problem for problem, _, _ in panels)
    for (problem, model, penal), groups in panels.items():
        figure, axis = plt.subplots(figsize=(6, 4))
        for index, (method, members) in enumerate(groups):
            color = f"C{index % 10}"
            for n, cell in enumerate(members):
                record = records[cell.key]
                if record is None:
                    continue
                with np.errstate(invalid="ignore"):
                    values = np.where(record.curve > 0, record.curve, np.nan)
                axis.plot(values, color=color, alpha=0.5, linewidth=0.8,
                          label=literal(method) if n == 0 else None)
        axis.set_yscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel("loss (raw, per seed)")
        axis.set_title(literal(f"{problem} / {model} / p = {penal:g}: every seed"))
        axis.legend()
        path = out / f"seeds-{names[problem]}-{model}-p{penal:g}.png"
        save_figure(figure, path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def _figures(folder: StudyFolder, cells, records, curves) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = folder.path / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    panels: dict[tuple, list] = {}
    for group, curve in curves.items():
        panels.setdefault(group[:3], []).append((group[3], curve))
    names = _file_names(problem for problem, _, _ in panels)
    for (problem, model, penal), lines in panels.items():
        figure, axis = plt.subplots(figsize=(6, 4))
        for method, (steps, median, q25, q75) in lines:
            (line,) = axis.plot(steps, median, label=literal(method))
            axis.fill_between(steps, q25, q75, color=line.get_color(), alpha=0.2, linewidth=0)
        axis.set_yscale("log")
        axis.set_xlabel("step (evaluation or iteration, per method)")
        axis.set_ylabel("best loss so far (median, IQR)")
        axis.set_title(literal(f"{problem} / {model} / p = {penal:g}"))
        axis.legend()
        path = out / f"curves-{names[problem]}-{model}-p{penal:g}.png"
        save_figure(figure, path, dpi=100)
        plt.close(figure)
        written.append(path)
    groups = _groups(cells)
    rows = sorted({g[:3] for g in groups}, key=lambda g: list(map(str, g)))
    methods = list(dict.fromkeys(g[3] for g in groups))
    if rows and methods:
        figure, axes = plt.subplots(len(rows), len(methods), squeeze=False,
                                    figsize=(2.5 * len(methods), 1.6 * len(rows) + 0.4))
        for i, row in enumerate(rows):
            for j, method in enumerate(methods):
                axis = axes[i][j]
                axis.set_axis_off()
                finished = [records[c.key] for c in groups.get((*row, method), [])
                            if records[c.key] is not None]
                if not finished:
                    continue
                finished.sort(key=lambda r: (r.best_loss if math.isfinite(r.best_loss)
                                             else math.inf, r.cell.seed))
                chosen = finished[(len(finished) - 1) // 2]
                axis.imshow(1.0 - chosen.final_design / 255.0, cmap="gray", vmin=0, vmax=1,
                            interpolation="nearest")
                axis.set_title(literal(f"{row[0]} {row[1]} p{row[2]:g}\n{method} seed "
                                       f"{chosen.cell.seed}"), fontsize=7)
        path = out / "designs.png"
        save_figure(figure, path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def _file_names(labels) -> dict[str, str]:
    """A file-name part per label: ASCII letters, digits and ``._-`` kept, others ``_``, and
    8 hex digits of the label's hash added where the result would be ambiguous (two labels such
    as ``a|b`` and ``a_b``), longer than 60 characters, empty or hidden (``.x``)."""
    labels = sorted(set(labels))
    plain = {label: "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_"
                            for ch in label) for label in labels}
    taken: dict[str, int] = {}
    for name in plain.values():
        taken[name] = taken.get(name, 0) + 1
    names = {}
    for label, name in plain.items():
        if taken[name] > 1 or not 0 < len(name) <= 60 or name.startswith("."):
            name = name[:60].replace(".", "_", 1) if name.startswith(".") else name[:60]
            name = f"{name}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
        names[label] = name
    return names


def write_report(path: str | Path, per_seed: bool = False) -> Path:
    """Write ``REPORT.md``, the CSV tables and the figures of the study in ``path``
    (``per_seed``: also the raw curve of every seed, one figure per panel)."""
    from .tune import trials_table

    folder = StudyFolder(path)
    study, cells, records = _load(folder)
    status = study_status(path)
    rows, curves = group_statistics(cells, records, study.report_steps)
    cell_rows = []
    for cell in cells:
        record = records[cell.key]
        cell_rows.append({"key": cell.key, "problem": cell.problem, "model": cell.model,
                          "penal": cell.penal, "method": cell.method, "seed": cell.seed,
                          "steps": cell.steps,
                          "status": record.status if record else "pending",
                          "evaluations": record.evaluations if record else None,
                          "iterations": record.iterations if record else None,
                          "final_loss": record.final_loss if record else None,
                          "best_loss": record.best_loss if record else None,
                          "wall_s": record.provenance.get("wall_s") if record else None,
                          "cpu_s": record.provenance.get("cpu_s") if record else None})
    tables = folder.path / "tables"
    _write_csv(tables / "summary.csv", rows)
    _write_csv(tables / "cells.csv", cell_rows)
    trials = trials_table(study, folder) if study.tune is not None else []
    if trials:
        _write_csv(tables / "tuning.csv", trials)
    figures = _figures(folder, cells, records, curves)
    if per_seed:
        figures += _per_seed_figures(folder, cells, records)
    columns = ["problem", "model", "penal", "method", "done", "cells", "failed", "median",
               "iqr_low", "iqr_high", "convergence_step", "median_last_raw"]
    steps_columns = [f"{name}@{s}" for s in study.report_steps
                     for name in ("median", "iqr_low", "iqr_high")]
    lines = [f"# Study {study.name}", "", study.description, "",
             f"Cells done: **{status['done']} of {status['cells']}**; failed runs: "
             f"{status['failed']}; partial: {status['partial']}; CPU-hours spent: "
             f"{status['cpu_hours']:.3g}.", "",
             "## Final loss (best so far at the last step; median and IQR over seeds)", "",
             _markdown(rows, columns), ""]
    if steps_columns:
        lines += ["## Losses at chosen steps", "",
                  _markdown(rows, ["problem", "model", "penal", "method", *steps_columns]), ""]
    if trials:
        lines += ["## Tuning trials", "", f"{len(trials)} trials; all in "
                  "[tables/tuning.csv](tables/tuning.csv).", ""]
    lines += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in figures] + [
        "", "Tables as CSV: [summary](tables/summary.csv), [cells](tables/cells.csv).", ""]
    report = folder.path / "REPORT.md"
    atomic_write_bytes(report, "\n".join(lines).encode())
    return report
