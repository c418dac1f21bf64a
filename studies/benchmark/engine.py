"""The benchmark as a study of the engine (:mod:`studies.study`): cells in, records out.

An adapter in both directions:

* :func:`engine_cell` maps a :class:`~studies.benchmark.spec.BenchmarkCell` to the engine's
  :class:`~studies.study.spec.Cell` (its ``key`` names the cell's record);
* :func:`benchmark_study` writes a set of benchmark cells as one engine :class:`Study` whose
  expansion is exactly those cells (checked): the grid ``tasks x {cnn, pixel} x methods x seeds``
  with each method on its own model and seeds, the pixel start per seed as overrides (seed -1
  the constant start, seed >= 0 the output of ``CNNModel(seed)``), and exclusions for the
  ``(task, method, seed)`` that the cells leave out;
* :func:`benchmark_cell` maps a record's engine cell back (None for a cell that is not one of the
  paper's methods).

Conventions: the engine's problem label is the task name, its method label the paper's name
(``cnn-lbfgs``, ``pixels-lbfgs``, ``pixels-mma``, ``pixels-oc``) and its seed the paper's seed
(-1 the constant start). A benchmark step is one logged objective evaluation for every method
(``OptimizationResult.loss_per_evaluation``; ``shared/guides/paper-benchmark.md`` §3), so every
method's curve is ``"evaluation"``.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from studies.benchmark.analysis import METHODS
from studies.benchmark.spec import BenchmarkCell
from studies.study.spec import Cell, ProblemEntry, Study, StudyError, canonical_json, expand

__all__ = ["CURVE", "STUDY_NAME", "benchmark_cell", "benchmark_study", "engine_cell"]

STUDY_NAME = "paper-benchmark"
CURVE = "evaluation"
_MODEL_ORDER = ("cnn", "pixel")


def _definitions(problems: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {name: dict(ProblemEntry.parse(name).definition) for name in dict.fromkeys(problems)}


def _plain(value: Any) -> Any:
    """JSON-normalized (as the engine stores cells): tuples become lists."""
    return json.loads(canonical_json(value))


def engine_cell(cell: BenchmarkCell, *, _definition: dict | None = None) -> Cell:
    """The engine's cell of ``cell`` (same computation, so the same key as in a study)."""
    definition = _definition if _definition is not None else \
        dict(ProblemEntry.parse(cell.problem).definition)
    return Cell(problem=cell.problem, model=cell.model, penal=float(cell.penal),
                method=cell.method, seed=cell.seed, steps=cell.steps,
                problem_definition=definition, optimizer=cell.optimizer,
                options=_plain(dict(cell.options)), model_options=_plain(dict(cell.model_options)),
                filter_radius=float(cell.filter_radius), curve=CURVE)


def benchmark_cell(cell: Cell) -> BenchmarkCell | None:
    """The benchmark cell of an engine cell; None when it is not one of the paper's methods.

    Raises:
        ValueError: a cell labelled with a paper method whose model or optimizer disagree.
    """
    if cell.method not in METHODS or cell.stage != "evaluate":
        return None
    return BenchmarkCell(problem=cell.problem, method=cell.method, model=cell.model,
                         optimizer=cell.optimizer, seed=int(cell.seed), steps=int(cell.steps),
                         model_options=dict(cell.model_options), options=dict(cell.options),
                         penal=float(cell.penal), filter_radius=float(cell.filter_radius))


def _one(values: Iterable[Any], what: str) -> Any:
    distinct = sorted(set(values), key=repr)
    if len(distinct) != 1:
        raise StudyError(f"the benchmark cells of one study share their {what}; got {distinct} "
                         f"(run them as separate invocations)")
    return distinct[0]


def benchmark_study(cells: Sequence[BenchmarkCell], *, name: str = STUDY_NAME,
                    description: str = "") -> Study:
    """One engine study whose cells are exactly ``cells`` (see the module docstring).

    Args:
        cells: benchmark cells with one budget, one SIMP exponent and one filter radius, each
            method with one set of optimizer options.
        name: the study's name.
        description: free text stored with the spec.

    Raises:
        StudyError: no cells, repeated cells, mixed budgets or settings, or (a bug) an expansion
            that differs from ``cells``.
    """
    cells = tuple(cells)
    if not cells:
        raise StudyError("no benchmark cells to run (check --tasks, --seeds and --plan)")
    labels = [cell.label for cell in cells]
    if len(set(labels)) != len(labels):
        raise StudyError("a benchmark cell repeats: "
                         f"{next(lb for lb in labels if labels.count(lb) > 1)}")
    steps = _one((cell.steps for cell in cells), "steps")
    penal = _one((cell.penal for cell in cells), "SIMP exponent")
    radius = _one((cell.filter_radius for cell in cells), "filter radius")
    from solvers.problems import TASKS
    catalogue = [task.name for task in TASKS]
    present = {cell.problem for cell in cells}
    problems = [p for p in catalogue if p in present] + sorted(present - set(catalogue))
    methods, overrides, exclude = [], [], []
    for method in METHODS:
        own = [cell for cell in cells if cell.method == method]
        if not own:
            continue
        options = _one((canonical_json(dict(cell.options)) for cell in own),
                       f"{method} options")
        seeds = sorted({cell.seed for cell in own})
        methods.append({"name": method, "optimizer": own[0].optimizer,
                        "options": json.loads(options), "seeds": seeds,
                        "models": [own[0].model], "curve": CURVE})
        by_start: dict[str, list[int]] = defaultdict(list)
        for seed in seeds:
            start = _one((canonical_json(dict(c.model_options)) for c in own if c.seed == seed),
                         f"{method} model options at seed {seed}")
            by_start[start].append(seed)
        for start, start_seeds in by_start.items():
            overrides.append({"match": {"method": method, "seed": start_seeds},
                              "model_options": json.loads(start)})
        wanted = {(cell.problem, cell.seed) for cell in own}
        for seed in seeds:
            missing = [p for p in problems if (p, seed) not in wanted]
            if missing:
                exclude.append({"method": method, "seed": seed, "problem": missing})
    models = [m for m in _MODEL_ORDER if any(cell.model == m for cell in cells)]
    study = Study.from_dict({
        "name": name, "description": description, "problems": problems, "models": models,
        "penalties": [penal], "methods": methods, "steps": [steps],
        "seeds": sorted({cell.seed for cell in cells}), "overrides": overrides,
        "exclude": exclude, "filter_radius": radius})
    definitions = _definitions(problems)
    expected = {engine_cell(cell, _definition=definitions[cell.problem]).key for cell in cells}
    got = {cell.key for cell in expand(study)}
    if got != expected:  # the adapter's own check: the spec must be exactly the cells
        raise StudyError(f"internal error: the study of {len(expected)} benchmark cells expands "
                         f"to {len(got)} cells, {len(got ^ expected)} of them different")
    return study

