"""Every table and figure of the thesis's Chapter 3 and Appendices B-C, as :class:`Item` objects.

An item names the studies it reads (:data:`STUDIES`) and builds its files from their compact
records (and, for landscape figures, from the run files' iterates). Each build returns a
:class:`Section` (files, cells done of all, CPU seconds, a short reading), which is stored as
``<out>/items/<item>.json`` so that ``REPORT.md`` (:mod:`studies.thesis.report`) always covers
every item built so far. Landscape computations are cached in ``<out>/landscape/<item>.npz``.
Layout of ``<out>`` (default ``results/thesis``)::

    records/<study>/            the engine's folder of each study (records/, runs/, tune/)
    table-3.3.csv, table-3.2.csv, table-b1.csv, ...   the machine-readable tables
    <item>.png                  the figures
    landscape/<item>.npz|json   cached landscape results
    items/<item>.json           report sections
    REPORT.md
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from studies.study import Study, StudyFolder
from studies.study.records import atomic_write_bytes, damaged_derived, read_derived_json

from . import figures, specs
from .curves import RunSet, best_so_far, load_runs, summarize
from .protocol import FIXED_STEP_METHODS, GD_LS_ITERATIONS, METHODS, PROBLEMS, TABLE_METHOD, \
    code_of, parse_code, published_step, METHODS_BY_NAME

__all__ = ["CONCLUSIONS_COLUMNS", "ITEMS", "STUDIES", "Context", "Item", "Section",
           "P1_REFERENCE_COLUMNS",
           "TABLE_33_COLUMNS",
           "TABLE_32_COLUMNS", "TABLE_B_COLUMNS"]

TABLE_33_COLUMNS = ("model", "penal", "problem", "optimizer", "median_final_loss", "iqr_low",
                    "iqr_high", "convergence_step", "seeds_done", "steps")
TABLE_32_COLUMNS = ("model", "problem", "optimizer", "median_final_loss", "seeds_done")
P1_REFERENCE_COLUMNS = ("problem", "model", "method", "steps", "median_final_loss",
                        "min_final_loss", "relative_gap", "seeds_done")
TABLE_B_COLUMNS = ("code", "published_step", "tuned_step", "median_final_loss_published",
                   "median_final_loss_tuned", "trials")

EVALUATED_AFTER_TUNING = frozenset({"chapter3-tuned"})
"""Tuning studies whose tuned cells are run after the tuning (Table 3.3's CNN rows at our steps);
the others (Tables B.1-B.3) report their best trials."""

STUDIES: dict[str, Callable[..., Study]] = {
    "chapter3": specs.chapter3,
    "chapter3-tuned": functools.partial(specs.chapter3, steps_source="tuned", models=("cnn",)),
    "gd2000": specs.gd2000,
    "p1-reference": specs.p1_reference,
    "interpolation": specs.interpolation,
    "distance": specs.distance,
    "spectra": specs.spectra,
    **{f"tuning-{t}": functools.partial(specs.tuning, t) for t in TABLE_METHOD},
    **{f"tuning-{t}-published": functools.partial(specs.tuning, t, published=True)
       for t in TABLE_METHOD},
}


@dataclasses.dataclass
class Context:
    """Where and how items are built.

    Attributes:
        out: the results folder.
        quick: toy scale.
        upsampling: the CNN variant.
        progress: progress bars on stderr.
    """

    out: Path
    quick: bool = False
    upsampling: str = "transpose"
    progress: bool = True
    _runs: dict = dataclasses.field(default_factory=dict)

    def study(self, key: str) -> Study:
        """The spec of study ``key`` for this CNN variant. With the paper's architecture
        (``upsampling="bilinear"``) Table 3.3 reruns its CNN rows only (issue 9 item 2): the
        pixel rows do not involve the network beyond their start."""
        if key == "chapter3" and self.upsampling != "transpose":
            return specs.chapter3(self.quick, upsampling=self.upsampling, models=("cnn",))
        return STUDIES[key](self.quick, upsampling=self.upsampling)

    def folder(self, key: str) -> StudyFolder:
        return StudyFolder(self.out / "records" / key)

    def runs(self, key: str) -> RunSet:
        if key not in self._runs:
            self._runs[key] = load_runs(self.study(key), self.folder(key))
        return self._runs[key]

    def status(self, key: str) -> "StudyStatus":
        """What is done of study ``key`` and what it cost.

        A study with a tuning stage counts its trials (and their runs' CPU); its tuned cells
        count only where they are run after the tuning (:data:`EVALUATED_AFTER_TUNING`): the
        other tuning studies' best trials are their results.
        """
        from studies.study.tune import tuning_progress

        runs = self.runs(key)
        if runs.study.tune is None:
            return StudyStatus(len(runs.records), len(runs.cells), 0, 0, runs.cpu_seconds)
        tuning = tuning_progress(runs.study, self.folder(key))
        if key not in EVALUATED_AFTER_TUNING:
            return StudyStatus(0, 0, tuning.trials_done, tuning.trials_total, tuning.cpu_s)
        return StudyStatus(len(runs.records), len(runs.cells), tuning.trials_done,
                           tuning.trials_total, tuning.cpu_s + runs.cpu_seconds)

    def forget(self) -> None:
        self._runs.clear()

    def problems(self, codes=tuple(PROBLEMS)) -> tuple[str, ...]:
        return tuple(c for c in codes if not self.quick or c in specs.QUICK_PROBLEMS)


@dataclasses.dataclass(frozen=True)
class StudyStatus:
    """Cells and tuning trials of one study, done and planned, and their CPU seconds."""

    cells_done: int
    cells_total: int
    trials_done: int
    trials_total: int
    cpu_s: float


@dataclasses.dataclass(frozen=True)
class Section:
    """An item's part of the report."""

    item: str
    title: str
    files: tuple[str, ...]
    settings: str
    defaults: str
    cells_done: int
    cells_total: int
    cpu_s: float
    reading: str
    quick: bool
    trials_done: int = 0
    trials_total: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, allow_nan=True)


@dataclasses.dataclass(frozen=True)
class Item:
    """One table or figure: the studies it reads and how it is built."""

    name: str
    title: str
    studies: tuple[str, ...]
    build: Callable[[Context, "Item"], tuple[tuple[str, ...], str]]
    settings: str
    defaults: str

    def run(self, ctx: Context) -> Section:
        files, reading = self.build(ctx, self)
        done = total = trials_done = trials_total = 0
        cpu = 0.0
        for key in self.studies:
            status = ctx.status(key)
            done, total = done + status.cells_done, total + status.cells_total
            trials_done += status.trials_done
            trials_total += status.trials_total
            cpu += status.cpu_s
        cached = ctx.out / "landscape" / f"{self.name}.json"
        if cached.exists():
            cpu += float(read_derived_json(cached).get("cpu_s", 0.0))
        section = Section(self.name, self.title, tuple(files), self.settings, self.defaults,
                          done, total, cpu, reading, ctx.quick, trials_done, trials_total)
        (ctx.out / "items").mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(ctx.out / "items" / f"{self.name}.json", section.to_json().encode())
        return section


# -- helpers ---------------------------------------------------------------------------------------

def _write_csv(path: Path, columns, rows) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell_text(row.get(k)) for k in columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue().encode())
    return path


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.10g}"
    return str(value)


def _curve_steps(ctx: Context, method: str, cells) -> int:
    """The curve length - 1 of a method: its budget; GD_LS: 700 iterations (quick: its budget)."""
    if method == "GD_LS" and not ctx.quick:
        return GD_LS_ITERATIONS
    steps = {c.steps for c in cells}
    return max(steps) if steps else METHODS_BY_NAME.get(method, METHODS[0]).steps


def _group(ctx: Context, key: str, problem: str, model: str, penal: float, method: str) -> dict:
    runs = ctx.runs(key)
    cells = runs.cells_of(problem=problem, model=model, penal=float(penal), method=method)
    steps = _curve_steps(ctx, method, cells)
    records = runs.group(problem, model, penal, method)
    return {**summarize(records, steps), "steps": steps, "records": records,
            "cells": len(cells)}


def _fmt(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


# -- tables ----------------------------------------------------------------------------------------

def _table_33_rows(ctx: Context, key: str, models=("cnn", "pixel"), methods=None) -> list[dict]:
    rows = []
    for model in models:
        for penal in (3.0, 1.0):
            for problem in ctx.problems():
                for method in methods or [m.name for m in METHODS]:
                    g = _group(ctx, key, problem, model, penal, method)
                    if not g["cells"]:
                        continue
                    rows.append({"model": model, "penal": int(penal), "problem": problem,
                                 "optimizer": method, **{k: g[k] for k in (
                                     "median_final_loss", "iqr_low", "iqr_high",
                                     "convergence_step", "seeds_done", "steps")},
                                 "convergence_step_1e2": g["convergence_step_1e2"],
                                 "median_last_raw": g["median_last_raw"],
                                 "median": g["median"]})
    return rows


def build_table_33(ctx: Context, item: Item):
    rows = _table_33_rows(ctx, "chapter3")
    files = [_write_csv(ctx.out / "table-3.3.csv", TABLE_33_COLUMNS, rows)]
    extra = ("convergence_step_1e2", "median_last_raw")
    files.append(_write_csv(ctx.out / "table-3.3-details.csv", TABLE_33_COLUMNS + extra, rows))
    tuned = _table_33_rows(ctx, "chapter3-tuned", ("cnn",), list(FIXED_STEP_METHODS))
    tuned = [r for r in tuned if r["seeds_done"]]
    if tuned:
        files.append(_write_csv(ctx.out / "table-3.3-cnn-tuned.csv", TABLE_33_COLUMNS, tuned))
    lines = []
    for model in ("cnn", "pixel"):
        for penal in (3, 1):
            done = [r for r in rows if r["model"] == model and r["penal"] == penal
                    and math.isfinite(r["median_final_loss"])]
            for problem in ctx.problems():
                group = [r for r in done if r["problem"] == problem]
                if not group:
                    continue
                best = min(group, key=lambda r: r["median_final_loss"])
                by = {r["optimizer"]: r["median_final_loss"] for r in group}
                gap = ""
                if "GD_LS" in by and "LBFGS" in by:
                    gap = f"; GD_LS/LBFGS = {by['GD_LS'] / by['LBFGS']:.3f}"
                lines.append(f"{code_of(model, penal, problem)}: lowest median "
                             f"{best['optimizer']} ({_fmt(best['median_final_loss'])}){gap}")
    reading = "; ".join(lines) if lines else "No records yet."
    budgets = _evaluation_budgets(ctx)
    if budgets:
        reading += (" | Evaluations per run (median; GD_LS's 700 iterations against L-BFGS's 300 "
                    "evaluations): " + "; ".join(budgets))
    if tuned:
        reading += " | CNN rows with our tuned steps: table-3.3-cnn-tuned.csv."
    return tuple(str(f.relative_to(ctx.out)) for f in files), reading


CONCLUSIONS_COLUMNS = ("architecture", "fixed_steps", "code", "conclusion", "holds", "evidence")


def build_conclusions(ctx: Context, item: Item):
    """The thesis's conclusions (:mod:`studies.thesis.conclusions`) on each CNN that has rows:
    ours at the published steps and, once tuned, at our steps; the paper's architecture once
    its Table 3.3 rows exist (``<out>/paper-architecture``), and at its own tuned steps once
    those have run there."""
    from .conclusions import check_conclusions, summarize_checks

    variants = []
    rows = _table_33_rows(ctx, "chapter3", ("cnn",))
    variants.append((ctx.upsampling, "published", rows))
    tuned = [r for r in _table_33_rows(ctx, "chapter3-tuned", ("cnn",), list(FIXED_STEP_METHODS))
             if r["seeds_done"]]
    if tuned:
        variants.append((ctx.upsampling, "tuned", rows + tuned))   # tuned rows replace GD/HD
    if ctx.upsampling == "transpose":
        paper = Context(ctx.out / "paper-architecture", quick=ctx.quick, upsampling="bilinear",
                        progress=False)
        if paper.folder("chapter3").spec_path.exists():
            published = _table_33_rows(paper, "chapter3", ("cnn",))
            variants.append(("bilinear", "published", published))
            if paper.folder("chapter3-tuned").spec_path.exists():
                tuned = [r for r in _table_33_rows(paper, "chapter3-tuned", ("cnn",),
                                                   list(FIXED_STEP_METHODS)) if r["seeds_done"]]
                if tuned:
                    variants.append(("bilinear", "tuned", published + tuned))
    table, lines = [], []
    for architecture, steps, variant_rows in variants:
        checks = check_conclusions(variant_rows)
        table += [{"architecture": architecture, "fixed_steps": steps, "code": c.code,
                   "conclusion": c.conclusion, "holds": c.holds, "evidence": c.evidence}
                  for c in checks]
        lines.append(f"{architecture} CNN, {steps} fixed steps: {summarize_checks(checks)}")
    path = _write_csv(ctx.out / "conclusions.csv", CONCLUSIONS_COLUMNS, table)
    return (str(path.relative_to(ctx.out)),), "; ".join(lines)


def _evaluation_budgets(ctx: Context) -> list[str]:
    """``"NN3: GD_LS 2128, LBFGS 301"``-style medians of the evaluations each run used, per
    model and p: the budgets behind a GD_LS / L-BFGS comparison."""
    runs = ctx.runs("chapter3")
    texts = []
    for model, prefix in (("cnn", "NN"), ("pixel", "P")):
        for penal in (3.0, 1.0):
            medians = {}
            for method in ("GD_LS", "LBFGS"):
                counts = [r.evaluations for problem in ctx.problems()
                          for r in runs.group(problem, model, penal, method)]
                if counts:
                    medians[method] = int(np.median(counts))
            if medians:
                texts.append(f"{prefix}{penal:g}: " + ", ".join(f"{m} {n}"
                                                               for m, n in medians.items()))
    return texts


def build_table_32(ctx: Context, item: Item):
    rows = []
    for model in ("cnn", "pixel"):
        for problem in ctx.problems():
            for label, key, method in (("LBFGS_300", "chapter3", "LBFGS"),
                                       ("GD_700", "chapter3", "GD"),
                                       ("GD_2000", "gd2000", "GD")):
                g = _group(ctx, key, problem, model, 3.0, method)
                if not g["cells"]:
                    continue
                rows.append({"model": model, "problem": problem, "optimizer": label,
                             "median_final_loss": g["median_final_loss"],
                             "seeds_done": g["seeds_done"],
                             "median_last_raw": g["median_last_raw"]})
    files = [_write_csv(ctx.out / "table-3.2.csv", TABLE_32_COLUMNS, rows),
             _write_csv(ctx.out / "table-3.2-details.csv", TABLE_32_COLUMNS + ("median_last_raw",),
                        rows)]
    best = []
    for model in ("cnn", "pixel"):
        for problem in ctx.problems():
            group = [r for r in rows if r["model"] == model and r["problem"] == problem
                     and math.isfinite(r["median_final_loss"])]
            if group:
                winner = min(group, key=lambda r: r["median_final_loss"])
                best.append(f"{code_of(model, 3, problem)}: {winner['optimizer']}")
    reading = ("Lowest median per case (ambiguity 27: recomputed, not underlined): "
               + ", ".join(best)) if best else "No records yet."
    agreement = _gd_prefix_agreement(ctx)
    if agreement:
        reading += " | " + agreement
    return tuple(str(f.relative_to(ctx.out)) for f in files), reading


def _gd_prefix_agreement(ctx: Context) -> str:
    """How far GD 2000's best-so-far at step 700 is from GD 700's final value, seed by seed.

    Fixed-step GD is deterministic, so on one machine the two agree bit for bit; records made on
    different processors (``provenance.machine``) differ in rounding from the first step, and a
    GD run that saturates the network is chaotic enough to turn that into different outcomes.
    """
    runs_700, runs_2000 = ctx.runs("chapter3"), ctx.runs("gd2000")
    differences, worst = [], ("", 0.0)
    for model in ("cnn", "pixel"):
        for problem in ctx.problems():
            short = runs_700.group(problem, model, 3.0, "GD")
            long = {r.cell.seed: r for r in runs_2000.group(problem, model, 3.0, "GD")}
            for record in short:
                other = long.get(record.cell.seed)
                if other is None:
                    continue
                at = record.cell.steps  # 700 (the quick scale: its own budget)
                a = best_so_far(record.curve, at + 1)[-1]
                b = best_so_far(other.curve, other.curve.size)[min(at, other.curve.size - 1)]
                if not (math.isfinite(a) and math.isfinite(b)) or a == 0:
                    continue
                differences.append(abs(b / a - 1.0))
                if differences[-1] > worst[1]:
                    worst = (f"{code_of(model, 3, problem)} seed {record.cell.seed}",
                             differences[-1])
    if not differences:
        return ""
    exact = sum(d == 0.0 for d in differences)
    largest = f", largest {worst[1]:.2g} ({worst[0]})" if worst[1] > 0 else ""
    return (f"GD 2000 at step 700 against GD 700, seed by seed ({len(differences)} pairs, "
            f"{exact} bit-identical): median |relative difference| "
            f"{np.median(differences):.1e}{largest}. On one machine "
            "the two are bit-identical; records written on different machines differ in "
            "rounding from the first step (provenance.machine, recorded since Dec 2026), and GD "
            "that saturates the network amplifies it.")


def p1_reference_values(ctx: Context, methods: tuple[str, ...] = ("MMA", "OC")
                        ) -> dict[str, dict[str, float]]:
    """``problem -> {method: best}``: the best-so-far final loss of each reference run done
    (:func:`studies.thesis.specs.p1_reference`; ``"MMA"`` and ``"OC"`` constrain the volume
    the thesis's models fix, ``"MMA_filtered"`` and ``"OC_filtered"`` the paper's)."""
    runs = ctx.runs("p1-reference")
    out: dict[str, dict[str, float]] = {}
    for problem in ctx.problems():
        for method in methods:
            for record in runs.group(problem, "pixel", 1.0, method):
                curve = best_so_far(record.curve, record.curve.size)
                if curve.size and math.isfinite(curve[-1]):
                    out.setdefault(problem, {})[method] = float(curve[-1])
    return out


def p1_bounds(ctx: Context) -> dict[str, float]:
    """``problem -> certified lower bound`` of the p = 1 optimum over the thesis's set (the
    best :func:`solvers.certificate.convex_lower_bound` at the final designs of the ``MMA``
    and ``OC`` reference runs). Computed from the run files where they exist and cached in
    ``landscape/p1-reference.json`` (per run key), so that a checkout without run files keeps
    them."""
    from solvers.certificate import convex_lower_bound
    from studies.runner import build_objective

    path = ctx.out / "landscape" / "p1-reference.json"
    cache = read_derived_json(path) if path.exists() else {}
    runs, changed, out = ctx.runs("p1-reference"), False, {}
    options = ctx.study("p1-reference").record
    for problem in ctx.problems():
        for method in ("MMA", "OC"):
            for record in runs.group(problem, "pixel", 1.0, method):
                cell = record.cell
                if cell.key not in cache:
                    checkpoint = _run_file(ctx, "p1-reference", cell)
                    if checkpoint is None or checkpoint.best_x is None:
                        continue
                    objective = build_objective(cell.run_config(options))
                    found = convex_lower_bound(objective, checkpoint.best_x)
                    cache[cell.key] = {"label": cell.label, **dataclasses.asdict(found)}
                    changed = True
                bound = cache[cell.key]["bound"]
                out[problem] = max(out.get(problem, -math.inf), bound)
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(cache, indent=1, sort_keys=True).encode())
    return out


def build_p1_reference(ctx: Context, item: Item):
    """The convex optimum at p = 1 and every Chapter 3 p = 1 group's gap to it."""
    bounds = p1_bounds(ctx)
    references = p1_reference_values(ctx)
    filtered = p1_reference_values(ctx, ("MMA_filtered", "OC_filtered"))
    ref_runs = ctx.runs("p1-reference")
    rows, notes = [], []
    for problem in ctx.problems():
        values = references.get(problem, {})
        if not values:
            continue
        reference = min(values.values())
        if problem in bounds:
            rows.append({"problem": problem, "model": "density", "method": "certified_bound",
                         "median_final_loss": bounds[problem],
                         "relative_gap": bounds[problem] / reference - 1.0})
        for method, value in {**values, **filtered.get(problem, {})}.items():
            steps = max(c.steps for c in ref_runs.cells_of(problem=problem, method=method))
            rows.append({"problem": problem, "model": "density", "method": method,
                         "steps": steps, "median_final_loss": value, "min_final_loss": value,
                         "relative_gap": value / reference - 1.0, "seeds_done": 1})
        gaps = []
        for model in ("pixel", "cnn"):
            for method in (m.name for m in METHODS):
                g = _group(ctx, "chapter3", problem, model, 1.0, method)
                if not g["records"]:
                    continue
                finals = [best_so_far(r.curve, g["steps"] + 1)[-1] for r in g["records"]]
                finite = [f for f in finals if math.isfinite(f)]
                lowest = min(finite) if finite else float("nan")
                gap = g["median_final_loss"] / reference - 1.0
                rows.append({"problem": problem, "model": model, "method": method,
                             "steps": g["steps"], "median_final_loss": g["median_final_loss"],
                             "min_final_loss": lowest, "relative_gap": gap,
                             "seeds_done": g["seeds_done"]})
                if model == "pixel" and method != "GD":
                    gaps.append(f"{method} {100 * gap:+.2f} %")
        spread = ""
        if len(values) == 2:
            spread = f", MMA/OC - 1 = {values['MMA'] / values['OC'] - 1:+.1e}"
        if filtered.get(problem):
            spread += (f", filtered-volume optimum {_fmt(min(filtered[problem].values()))} "
                       f"({100 * (min(filtered[problem].values()) / reference - 1):+.2f} %)")
        if problem in bounds:
            spread += f", certified within {100 * (reference / bounds[problem] - 1):.2g} %"
        notes.append(f"{problem}: optimum {_fmt(reference)}{spread}"
                     + (f"; pixel medians at the thesis's budgets: {', '.join(gaps)}"
                        if gaps else ""))
    path = _write_csv(ctx.out / "p1-reference.csv", P1_REFERENCE_COLUMNS, rows)
    reading = ("; ".join(notes) if notes else "No reference runs yet.") + (
        " | relative_gap = median / optimum - 1; a run below the optimum (min_final_loss < "
        "optimum) would contradict convexity.")
    return (str(path.relative_to(ctx.out)),), reading


def build_table_b(ctx: Context, item: Item):
    from studies.study.tune import trials_table

    table = {"table-b1": "B.1", "table-b2": "B.2", "table-b3": "B.3"}[item.name]
    name = TABLE_METHOD[table]
    key = f"tuning-{table}"
    study = ctx.study(key)
    folder = ctx.folder(key)
    trials: dict[str, list] = {}
    if folder.spec_path.exists():
        for row in trials_table(study, folder):
            trials.setdefault(row["group"], []).append(row)
    rows, notes = [], []
    runs = ctx.runs(f"{key}-published")
    codes = sorted({code_of(c.model, c.penal, c.problem) for c in runs.cells})
    for code in codes:
        model, penal, problem = parse_code(code)
        published = published_step(METHODS_BY_NAME[name], model, penal, problem)
        records = runs.group(problem, model, penal, name)
        finals = [r.final_loss if r.status != "failed" else math.inf for r in records]
        pub_loss = float(np.median(finals)) if finals else float("nan")
        group = trials.get(f"{problem}/{model}/p{penal:g}/{name}", [])
        ok = [t for t in group if t["status"] == "ok"]
        best = min(ok, key=lambda t: (t["loss"], t["tid"])) if ok else None
        rows.append({"code": code, "published_step": published,
                     "tuned_step": best["value"] if best else None,
                     "median_final_loss_published": pub_loss,
                     "median_final_loss_tuned": best["loss"] if best else None,
                     "trials": len(group)})
        if best:
            ratio = best["value"] / published
            notes.append(f"{code}: tuned {best['value']:.3g} vs published {published:.3g} "
                         f"(x{ratio:.3g}), loss {_fmt(best['loss'])} vs {_fmt(pub_loss)}")
    path = _write_csv(ctx.out / f"table-{table.replace('.', '').lower()}.csv", TABLE_B_COLUMNS,
                      rows)
    reading = "; ".join(notes) if notes else (
        "Tuning not run yet (run with --tune); the published-step column is filled as its "
        "cells finish.")
    return (str(path.relative_to(ctx.out)),), reading


# -- loss-curve figures ----------------------------------------------------------------------------

def _curve_figure(ctx: Context, item: Item, problems: tuple[str, ...], methods: tuple[str, ...],
                  zoom: bool = False):
    panels = []
    for penal in (1.0, 3.0):
        row = []
        for model in ("cnn", "pixel"):
            for problem in problems:
                curves = {}
                for method in methods:
                    g = _group(ctx, "chapter3", problem, model, penal, method)
                    if g["seeds_done"]:
                        curves[method] = g["median"]
                curves.update({label: g["median"] for label, g in _tuned_groups(
                    ctx, problem, model, penal, methods).items()})
                row.append((f"{code_of(model, penal, problem)}", curves))
        panels.append(row)
    path = figures.curve_panels(ctx.out / f"{item.name}.png", panels, title=item.title,
                                zoom=zoom)
    finals = []
    for penal in (1.0, 3.0):
        for model in ("cnn", "pixel"):
            for problem in problems:
                values = {m: _group(ctx, "chapter3", problem, model, penal, m)[
                    "median_final_loss"] for m in methods}
                values.update({label: g["median_final_loss"] for label, g in _tuned_groups(
                    ctx, problem, model, penal, methods).items()})
                values = {m: v for m, v in values.items() if math.isfinite(v)}
                if values:
                    finals.append(f"{code_of(model, penal, problem)} "
                                  + " / ".join(f"{m} {_fmt(v)}" for m, v in values.items()))
    return (path.name,), ("Median final (best-so-far) losses: " + "; ".join(finals)) \
        if finals else "No records yet."


def _tuned_groups(ctx: Context, problem: str, model: str, penal: float,
                  methods: tuple[str, ...]) -> dict[str, dict]:
    """``{"GD (tuned)": its _group}`` for the CNN's fixed-step methods at our tuned steps
    (study ``chapter3-tuned``), where its cells have run: drawn beside the published steps'
    curves (issue 9 item 3: report both)."""
    if model != "cnn" or not ctx.folder("chapter3-tuned").spec_path.exists():
        return {}
    curves = {}
    for method in methods:
        if method in FIXED_STEP_METHODS:
            g = _group(ctx, "chapter3-tuned", problem, model, penal, method)
            if g["seeds_done"]:
                curves[f"{method} (tuned)"] = g
    return curves


def _per_seed_figure(ctx: Context, item: Item, method: str, models, penalties, problem="D"):
    panels = [[]]
    notes = []
    for model in models:
        for penal in penalties:
            g = _group(ctx, "chapter3", problem, model, penal, method)
            length = g["steps"] + 1
            raw = np.full((len(g["records"]), length), np.nan)
            for i, record in enumerate(g["records"]):
                curve = record.curve[:length]
                raw[i, :curve.size] = curve
            panels[0].append((code_of(model, penal, problem),
                              {method: raw} if g["records"] else {}))
            if g["records"]:
                start = raw[:, 0]
                worse = int(np.sum(~(np.nanmin(raw[:, 1:], axis=1) < start))) \
                    if length > 1 else 0
                diverged = int(np.sum(~np.isfinite(raw[:, -1]) | (raw[:, -1] > 10 * start)))
                notes.append(f"{code_of(model, penal, problem)}: {len(g['records'])} seeds, "
                             f"{diverged} end above 10x their start or non-finite, {worse} never "
                             f"improve on the start")
    path = figures.curve_panels(ctx.out / f"{item.name}.png", panels, title=item.title,
                                per_seed=True)
    return (path.name,), "; ".join(notes) if notes else "No records yet."


# -- landscape figures (cached) ------------------------------------------------------------------

def _cache(ctx: Context, item: Item, compute: Callable[[], dict]) -> dict:
    """``compute()`` once per item and out folder (arrays in .npz, the rest in .json).

    A result whose ``missing`` count (inputs such as run files that were not there) is above
    zero is returned but not cached, so it is computed again once its inputs exist.
    """
    import time

    folder = ctx.out / "landscape"
    arrays_path, meta_path = folder / f"{item.name}.npz", folder / f"{item.name}.json"
    if arrays_path.exists() and meta_path.exists():
        meta = read_derived_json(meta_path)
        try:
            with np.load(arrays_path) as data:  # allow_pickle stays False: arrays only
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise damaged_derived(arrays_path, error, also=meta_path.name) from None
        return {**meta, **arrays}
    cpu0 = time.process_time()
    result = compute()
    if result.get("missing", 0):
        return result
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in result.items() if isinstance(v, np.ndarray)}
    meta = {k: v for k, v in result.items() if not isinstance(v, np.ndarray)}
    meta["cpu_s"] = time.process_time() - cpu0
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(arrays_path, buffer.getvalue())
    atomic_write_bytes(meta_path, json.dumps(meta, indent=1, allow_nan=True).encode())
    return {**meta, **arrays}


def _run_file(ctx: Context, key: str, cell):
    from studies.study.runfile import read_checkpoint

    checkpoint = read_checkpoint(ctx.folder(key).run_path(cell))
    return None if checkpoint is None or checkpoint.partial else checkpoint


from .landscape_items import (build_b1, build_b2, build_distance, build_interpolation,  # noqa: E402
                              build_spectra, build_step_sizes, build_surface)

_CURVE_DEFAULTS = ("Best-so-far median over seeds 0-9 (§4.7, ambiguity 11); L-BFGS steps are "
                   "evaluations, GD/HD iterations, GD_LS iterations (ambiguity 6); HD 700 steps, "
                   "H0 = (s'y / y'y) I of the newest pair and I before the first (ambiguity 9), "
                   "a pair skipped by L-BFGS-B's own test, s'y <= eps (-g's) (the guide's "
                   "eps y'y is not what L-BFGS-B tests), or when s'y <= 0 (a fixed step may go "
                   "uphill); L-BFGS_M1 300 (ambiguity 10); pixel starts from the "
                   "transposed CNN's output (ambiguity 4); the CNN in float32, pixels and "
                   "physics in float64 (ambiguity 25).")
_PUBLISHED = ("Step sizes: the published Tables B.1-B.3 (guide §3); dotted, '(tuned)': the "
              "CNN's GD and HD at our tuned steps (study chapter3-tuned), once they have run.")


def _curves(problems, methods, zoom=False):
    return lambda ctx, item: _curve_figure(ctx, item, ctx.problems(problems), methods, zoom)


ITEMS: dict[str, Item] = {item.name: item for item in (
    Item("table-3.3", "Table 3.3: median final loss and convergence step, 16 codes x 6 "
         "optimizers", ("chapter3", "chapter3-tuned"), build_table_33,
         "GD 700, HD_M1/HD_M10 700, GD_LS 700 iterations (any number of evaluations), L-BFGS_M1 "
         "and L-BFGS 300 evaluations; seeds 0-9. " + _PUBLISHED,
         "Final loss = best-so-far at the last step (ambiguity 11); convergence step at 1e-3 "
         "relative, 1e-2 in table-3.3-details.csv (ambiguity 12); 10 seeds for GD_LS on the "
         "large problems too (ambiguity 7). " + _CURVE_DEFAULTS),
    Item("conclusions", "The thesis's conclusions, checked on Table 3.3's CNN rows",
         ("chapter3", "chapter3-tuned"), build_conclusions,
         "CNN rows of Table 3.3 (10 seeds): line search (every GD_LS / L-BFGS_M1 / L-BFGS "
         "median below every GD / HD_M1 / HD_M10 median), Hessian approximation (L-BFGS at "
         "most 10 % above GD_LS, and its median curve within 10 % of GD_LS's final loss in fewer "
         "steps than GD_LS takes to converge), memory (L-BFGS_M1 within 5 % "
         "of L-BFGS); our transposed CNN at the published and at our tuned fixed steps, and "
         "the paper's bilinear CNN once its rows exist.",
         "The thesis gives no tolerances: 10 % for 'similar', 5 % for 'not relevant' (issue "
         "9's 'few percent'); steps in the thesis's units (L-BFGS evaluations, GD_LS "
         "iterations; ambiguity 6). At the published steps GD and HD saturate our CNNs (see "
         "step-sizes), so 'line search' is decided there by divergence; the row at our tuned "
         "steps is the informative one. The paper's bilinear CNN runs at the published steps "
         "only (`--upsampling bilinear`): its hessian-faster and memory rows compare line-search "
         "methods, which take no fixed step, so they answer as ours do, while its line-search "
         "row is decided by divergence; fair fixed steps for it need a tuning of its own "
         "(`--items table-3.3 --tune --upsampling bilinear`: 720 trials, about 14 CPU-h at our "
         "CNN's cost). conclusions.csv: one row per CNN, fixed steps, code and conclusion."),
    Item("p1-reference", "The convex optimum at p = 1 (issue 9's p = 1 fact)",
         ("p1-reference",), build_p1_reference,
         f"Pixel densities (no sigmoid), p = 1, A B D E, constant start; MMA and OC "
         f"{specs.P1_REFERENCE_STEPS} iterations each, constraining the mean of the densities "
         "before the filter (the volume the thesis's sigmoid map fixes); Chapter 3's p = 1 "
         "groups (both models) compared with the lower of the two. MMA_filtered and "
         "OC_filtered constrain the filtered density's mean instead (the paper's MMA and OC).",
         "Not an item of the thesis: the independent answer its p = 1 rows are checked "
         "against (compliance is convex in the densities at p = 1)."),
    Item("table-3.2", "Table 3.2: L-BFGS 300 vs GD 700 vs GD 2000 at p = 3",
         ("chapter3", "gd2000"), build_table_32,
         "p = 3, both models, A B D E; seeds 0-9; GD step from Table B.1.",
         "Final loss = best-so-far at the last step; the raw last value in "
         "table-3.2-details.csv (ambiguity 11); best recomputed (ambiguity 27)."),
    Item("fig-3.4", "Fig 3.4: L-BFGS (solid) vs GD (dashed), large problems",
         ("chapter3",), _curves(("D", "E"), ("LBFGS", "GD")),
         "Both models, D and E, rows p = 1 and p = 3. " + _PUBLISHED, _CURVE_DEFAULTS),
    Item("fig-c.2", "Fig C.2: L-BFGS vs GD, small problems", ("chapter3",),
         _curves(("A", "B"), ("LBFGS", "GD")), "Both models, A and B, p = 1 and 3.",
         _CURVE_DEFAULTS),
    Item("fig-3.6", "Fig 3.6: L-BFGS_M1 vs L-BFGS, large problems", ("chapter3",),
         _curves(("D", "E"), ("LBFGS_M1", "LBFGS")), "Both models, D and E, p = 1 and 3.",
         _CURVE_DEFAULTS),
    Item("fig-c.5", "Fig C.5: L-BFGS_M1 vs L-BFGS, small problems", ("chapter3",),
         _curves(("A", "B"), ("LBFGS_M1", "LBFGS")), "Both models, A and B, p = 1 and 3.",
         _CURVE_DEFAULTS),
    Item("fig-3.8", "Fig 3.8: HD_M1, HD_M10, GD_LS, large problems", ("chapter3",),
         _curves(("D", "E"), ("HD_M1", "HD_M10", "GD_LS")),
         "Both models, D and E, p = 1 and 3. " + _PUBLISHED, _CURVE_DEFAULTS),
    Item("fig-c.6", "Fig C.6: HD_M1, HD_M10, GD_LS, small problems", ("chapter3",),
         _curves(("A", "B"), ("HD_M1", "HD_M10", "GD_LS")), "Both models, A and B.",
         _CURVE_DEFAULTS),
    Item("fig-c.7", "Fig C.7: Fig C.6 zoomed", ("chapter3",),
         _curves(("A", "B"), ("HD_M1", "HD_M10", "GD_LS"), zoom=True),
         "As C.6, y axis limited to the last 70 % of the curves.", _CURVE_DEFAULTS),
    Item("fig-c.8", "Fig C.8: Fig 3.8 zoomed", ("chapter3",),
         _curves(("D", "E"), ("HD_M1", "HD_M10", "GD_LS"), zoom=True),
         "As 3.8, y axis limited to the last 70 % of the curves.", _CURVE_DEFAULTS),
    Item("fig-c.1", "Fig C.1: per-seed GD on D, p = 3 (raw losses)", ("chapter3",),
         lambda ctx, item: _per_seed_figure(ctx, item, "GD", ("cnn", "pixel"), (3.0,)),
         "GD 700 steps, eta = 1e-3 (NN3D) and 1 (P3D), seeds 0-9, raw losses (§4.7).",
         "700 steps (guide §5)."),
    Item("fig-c.3", "Fig C.3: per-seed L-BFGS, CNN on D, p = 1 (left) and 3 (right)",
         ("chapter3",),
         lambda ctx, item: _per_seed_figure(ctx, item, "LBFGS", ("cnn",), (1.0, 3.0)),
         "L-BFGS 300 evaluations, seeds 0-9, raw losses.", "L-BFGS 300 (not stated; §5)."),
    Item("fig-c.4", "Fig C.4: per-seed L-BFGS, pixels on D, p = 1 and 3", ("chapter3",),
         lambda ctx, item: _per_seed_figure(ctx, item, "LBFGS", ("pixel",), (1.0, 3.0)),
         "L-BFGS 300 evaluations, seeds 0-9, raw losses.",
         "L-BFGS 300 (not stated; §5); pixel starts from CNN(seed) (ambiguity 4)."),
    Item("fig-3.5", "Fig 3.5: linear interpolations, NN3A L-BFGS", ("interpolation",),
         lambda ctx, item: build_interpolation(ctx, item, ("NN3A",), full=True),
         "CNN, A, p = 3, L-BFGS 300, seed 0; (a) theta0(seed 0) to theta0(seed 1); (b) iterates "
         "0,1,2,5,10,20,50,100 and the last kept before T to theta_T; (c) theta0 of seeds 1-5 to "
         "theta_T; (d) successive kept iterates 0-10, 20, 50, 100, 11 points per segment.",
         "101 points, theta_T = the best evaluation (ambiguity 20); (d) uses the kept iterates "
         "(0-10 every iterate, then 20, 50, 100), not all accepted ones: the engine keeps "
         "iterates per study, and all iterates of the CNN would be ~1 GB per run."),
    Item("fig-c.13", "Fig C.13: interpolation iterates -> solution, NN3A/B/D/E",
         ("interpolation",),
         lambda ctx, item: build_interpolation(ctx, item, ("NN3A", "NN3B", "NN3D", "NN3E")),
         "CNN, p = 3, L-BFGS 300, seed 0, variant (b).",
         "L-BFGS 300, one run (seed 0), 101 points (ambiguity 20)."),
    Item("fig-c.14", "Fig C.14: interpolation iterates -> solution, NN1A/B/D/E",
         ("interpolation",),
         lambda ctx, item: build_interpolation(ctx, item, ("NN1A", "NN1B", "NN1D", "NN1E")),
         "CNN, p = 1, L-BFGS 300, seed 0, variant (b).",
         "L-BFGS 300, one run (seed 0), 101 points (ambiguity 20)."),
    *[Item(name, f"Fig {name[4:].upper()}: EDS of the Hessian and of L-BFGS_M1's B, {code}",
           ("spectra",), functools.partial(build_spectra, code=code),
           f"{code}, L-BFGS_M1, seed 0; SLQ k = 3, o = 50, sigma^2 = 1e-4 at L-BFGS iterations "
           f"0, 10, 28.",
           "Steps are L-BFGS iterations, 28 as 'near convergence' for every code (ambiguity 22); "
           "Ghorbani density conventions (ambiguity 16); the run trains the CNN in float32 "
           "(ambiguity 25); SLQ and its products in float64, with the network rebuilt in "
           "float64 at the run's parameters (exact second derivatives).")
      for name, code in specs.SPECTRA_CODES.items()],
    Item("fig-3.9", "Fig 3.9: distance from the start and gradient norm, p = 3",
         ("distance",), functools.partial(build_distance, penal=3.0),
         "CNN, A and D, p = 3, L-BFGS 300 and GD 700; distance and gradient norm median of 3 "
         "seeds, loss median of 10 (red).",
         "Euclidean norm with the root (ambiguity 24); distance at every 25th iterate and the "
         "gradient norm per iterate (the engine records no per-evaluation norm); a run that "
         "stopped early (a diverged GD run) holds its last value in the median; the loss "
         "overlay appears once the chapter3 study has records."),
    Item("fig-c.16", "Fig C.16: distance from the start and gradient norm, p = 1",
         ("distance",), functools.partial(build_distance, penal=1.0),
         "As Fig 3.9 at p = 1.", "As Fig 3.9 (ambiguity 24)."),
    Item("fig-3.3", "Fig 3.3: filter-normalized plane around the start, NN1D and NN3D",
         (), functools.partial(build_surface, codes=("NN1D", "NN3D")),
         "CNN seed 0 start, directions of seeds 0 and 1, alpha, beta in [-1, 1], 51 x 51, "
         "contours of log10(loss), red dot at theta0.",
         "Grid, range, filters and seeds: ambiguities 19 and 21 (both p, seed 0)."),
    Item("fig-c.15", "Fig C.15: filter-normalized planes, all 8 NN codes", (),
         functools.partial(build_surface, codes=tuple(
             f"NN{p}{c}" for p in (3, 1) for c in PROBLEMS)),
         "As Fig 3.3 for every NN code.", "All 8 NN codes, seed 0 (ambiguities 19, 21)."),
    Item("fig-b.1", "Fig B.1: Hessian EDS at p = 1 w.r.t. the volume-constrained densities",
         (), build_b1,
         "Pixel densities (after sigmoid and volume constraint, before the cone filter), p = 1, "
         "A B D E; SLQ k = 3, o = 50; lambda_min and lambda_max by ARPACK.",
         "Uniform design and the seed-0 CNN start design, filter included (ambiguity 23)."),
    Item("fig-b.2", "Fig B.2: SLQ and Hutchinson against exact values", (), build_b2,
         "A small CNN (no offsets, a tiny dense layer) and a PixelModel on A; SLQ k = 3, o = 50 "
         "and o = 10 against the exact eigenvalues; Hutchinson Frobenius norm, 6 seeds x 50 "
         "Rademacher probes, mean +- 3 sigma.",
         "Reconstructed test CNN (ambiguity 18: the thesis's 8,345-parameter net is not "
         "specified; ours keeps a dense layer because CNNConfig has one); ambiguity 17."),
    Item("table-b1", "Table B.1: GD step tuning",
         ("tuning-B.1", "tuning-B.1-published"), build_table_b,
         "TPE, 30 trials, quniform q = 0.1, CNN x in [-6, 0.3], pixels [-3, 1]; budgets and "
         "seeds of Table B.1; the published step at the same budget and seeds.",
         "NaN as a failed trial, rstate fixed, last value (ambiguity 15); seeds 0..n-1 "
         "(ambiguity 5); 8 pixel rows, NN3A and NN1A by default."),
    Item("table-b2", "Table B.2: HD_M1 step tuning",
         ("tuning-B.2", "tuning-B.2-published"), build_table_b,
         "As B.1 with Table B.2's budgets.", "As B.1 (ambiguities 13-15)."),
    Item("table-b3", "Table B.3: HD_M10 step tuning",
         ("tuning-B.3", "tuning-B.3-published"), build_table_b,
         "As B.1 with Table B.3's budgets.", "As B.1 (ambiguities 13-15)."),
    Item("step-sizes", "Why GD at the published steps diverges on our CNNs (issue 9 item 3)",
         (), build_step_sizes,
         "NN3A start (seed 0), both CNN variants: gradient norm and top Hessian eigenvalue per "
         "parameter group (10 Lanczos steps); offset scale 10 vs 1; 30 GD steps at several "
         "steps.", "float64 CNN at the float32 start's parameters (the stability limit does not "
         "depend on the precision); see the reading."),
)}
