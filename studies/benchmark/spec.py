"""The paper benchmark as data: its run cells (tasks x methods x seeds) and their settings.

Hoyer, Sohl-Dickstein & Greydanus (2019) run, for every task and every seed ``s`` in
``range(-1, num_seeds)`` (``shared/guides/paper-benchmark.md`` §3-4):

* ``s >= 0``: ``cnn-lbfgs``, ``pixels-lbfgs``, ``pixels-mma``, ``pixels-oc``; the pixel runs
  start from the output of ``CNNModel(seed=s)`` (model option ``start="cnn"``);
* ``s = -1``: the three pixel methods only, from the constant start ``volume_fraction * mask``
  (``start="constant"``); a CNN at ``s = -1`` never runs.

Settings: 1000 steps (L-BFGS: function evaluations; MMA: iterations, ``steps + 1`` evaluations;
OC: updates); L-BFGS with m = 10, ``factr = 1``, ``pgtol = 1e-14``, ``maxls = 20``; MMA with the
volume constraint tolerance 1e-8; OC with move limit 0.2 and the multiplier bisected on
[1e-9, 1e9], no early stop; SIMP p = 3, cone filter radius 2. Precision as the paper's: the CNN
in float32 (model option ``dtype``), the pixels and the physics in float64.

A cell names its method in the paper's naming (``cnn-lbfgs`` ...) and its optimizer in
``solvers``' naming (``lbfgs``, ``mma``, ``oc``). ``seed`` is the paper's seed (-1 the constant
start); :attr:`BenchmarkCell.run_seed` is the seed of a :class:`studies.store.RunConfig`
(None for -1).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from solvers.names import did_you_mean
from studies.benchmark.analysis import CNN_METHOD, CONSTANT_SEED, LARGE_ELEMENTS, METHODS

__all__ = [
    "BenchmarkCell",
    "ISSUE_PLAN_STAGES",
    "QUICK_SEEDS",
    "QUICK_STEPS",
    "QUICK_TASKS",
    "STEPS",
    "TASK_GROUPS",
    "benchmark_cells",
    "cell_counts",
    "issue_plan",
    "method_settings",
    "quick_cells",
    "select_tasks",
]

STEPS = 1000
TASK_GROUPS = ("small", "large", "all")
QUICK_TASKS = ("pure_bending_moment_32x64_0.15", "michell_centered_both_32x64_0.12",
               "hoop_32x64_0.25")  # the three smallest tasks (2,048 elements each)
QUICK_STEPS = 20
QUICK_SEEDS = (-1, 0)
ISSUE_PLAN_STAGES = ("first", "small-seeds")

_MODEL_AND_OPTIMIZER = {"cnn-lbfgs": ("cnn", "lbfgs"), "pixels-lbfgs": ("pixel", "lbfgs"),
                        "pixels-mma": ("pixel", "mma"), "pixels-oc": ("pixel", "oc")}
_OPTIMIZER_OPTIONS = {
    "lbfgs": {"memory": 10, "factr": 1.0, "pgtol": 1e-14, "maxls": 20},
    "mma": {"constraint_tol": 1e-8},
    "oc": {"move": 0.2, "lambda_min": 1e-9, "lambda_max": 1e9, "change_tol": None},
}
_DTYPES = ("float32", "float64")


def _pairs(name: str, value: Any) -> tuple[tuple[str, Any], ...]:
    if isinstance(value, Mapping):
        value = value.items()
    try:
        pairs = tuple((str(key), item) for key, item in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a mapping or (key, value) pairs; got {value!r}") \
            from None
    return tuple(sorted(pairs))


@dataclasses.dataclass(frozen=True)
class BenchmarkCell:
    """One run of the benchmark.

    Attributes:
        problem: task name of :data:`solvers.problems.TASKS`.
        method: the paper's name, one of :data:`~studies.benchmark.analysis.METHODS`.
        model: ``"cnn"`` or ``"pixel"``.
        optimizer: ``solvers.optimize``'s name: ``"lbfgs"``, ``"mma"`` or ``"oc"``.
        seed: the paper's seed, >= -1 (-1: the constant start, pixel methods only).
        steps: the budget (``steps`` of ``solvers.optimize``).
        model_options: ``(key, value)`` pairs, sorted (``dict(cell.model_options)``).
        options: the optimizer's options as sorted ``(key, value)`` pairs.
        penal: SIMP exponent.
        filter_radius: cone-filter radius.
    """

    problem: str
    method: str
    model: str
    optimizer: str
    seed: int
    steps: int
    model_options: tuple[tuple[str, Any], ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    penal: float = 3.0
    filter_radius: float = 2.0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {self.method!r}")
        if (self.model, self.optimizer) != _MODEL_AND_OPTIMIZER[self.method]:
            raise ValueError(f"{self.method} is model {_MODEL_AND_OPTIMIZER[self.method][0]!r} "
                             f"with optimizer {_MODEL_AND_OPTIMIZER[self.method][1]!r}; got "
                             f"{self.model!r} and {self.optimizer!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < -1:
            raise ValueError(f"seed must be an integer >= -1; got {self.seed!r}")
        if self.seed == CONSTANT_SEED and self.method == CNN_METHOD:
            raise ValueError("seed -1 is the constant start of the pixel methods; the CNN runs "
                             "seeds >= 0 only")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive integer; got {self.steps!r}")
        object.__setattr__(self, "model_options", _pairs("model_options", self.model_options))
        object.__setattr__(self, "options", _pairs("options", self.options))

    @property
    def run_seed(self) -> int | None:
        """The seed of the run's ``RunConfig``: None for the constant start (-1)."""
        return None if self.seed == CONSTANT_SEED else self.seed

    @property
    def label(self) -> str:
        """E.g. ``"mbb_beam_96x32_0.5/pixels-mma/seed-1"``."""
        return f"{self.problem}/{self.method}/seed{self.seed}"

    def run_config(self, **changes: Any):
        """The :class:`studies.store.RunConfig` of this cell (``changes``: e.g. ``record``)."""
        from studies.runner import problem_fields
        from studies.store import RunConfig

        return RunConfig(**problem_fields(self.problem), model=self.model,
                         optimizer=self.optimizer, steps=self.steps, seed=self.run_seed,
                         penal=self.penal, filter_radius=self.filter_radius,
                         options=dict(self.options), model_options=dict(self.model_options),
                         **changes)


def method_settings(method: str, seed: int, *, cnn_dtype: str = "float32",
                    upsampling: str = "bilinear") -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model_options, optimizer options)`` of ``method`` at the paper's ``seed``.

    Args:
        method: one of :data:`~studies.benchmark.analysis.METHODS`.
        seed: >= -1.
        cnn_dtype: the CNN's floating-point type (the paper: ``"float32"``), for ``cnn-lbfgs`` and
            for the CNN whose output starts the pixel runs of seed >= 0 (``"float64"``, the
            default of ``CNNConfig``, adds no option).
        upsampling: the CNN's upsampling, ``"bilinear"`` (the paper) or ``"transpose"``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if cnn_dtype not in _DTYPES:
        raise ValueError(f"cnn_dtype must be one of {_DTYPES}; got {cnn_dtype!r}")
    model, optimizer = _MODEL_AND_OPTIMIZER[method]
    # float64 is CNNConfig's default: it is left out, so that such a cell is the default CNN
    # (the same key) and runs on a tree without the float32 network path.
    dtype = {} if cnn_dtype == "float64" else {"dtype": cnn_dtype}
    if model == "cnn":
        model_options: dict[str, Any] = dict(dtype)
        if upsampling != "bilinear":
            model_options["upsampling"] = upsampling
    elif seed == CONSTANT_SEED:
        model_options = {"start": "constant"}
    else:
        model_options = {"start": "cnn", "start_upsampling": upsampling,
                         **{f"start_{key}": value for key, value in dtype.items()}}
    return model_options, dict(_OPTIMIZER_OPTIONS[optimizer])


def select_tasks(selection: str | Iterable[str] = "all") -> tuple[str, ...]:
    """Task names of a selection, in catalogue order.

    Args:
        selection: ``"small"`` (62 tasks with fewer than 32,768 elements), ``"large"`` (54),
            ``"all"`` (116), or task names; a list may mix groups and names (their union).

    Raises:
        ValueError: an unknown name (close matches named) or an empty selection.
    """
    from solvers.problems import TASKS

    words = [selection] if isinstance(selection, str) else list(selection)
    if not words:
        raise ValueError(f"select tasks with one of {TASK_GROUPS} or task names; got nothing")
    names = {task.name: task for task in TASKS}
    chosen: set[str] = set()
    for word in words:
        if word == "all":
            chosen.update(names)
        elif word in ("small", "large"):
            large = word == "large"
            chosen.update(name for name, task in names.items()
                          if (task.width * task.height >= LARGE_ELEMENTS) == large)
        elif word in names:
            chosen.add(word)
        else:
            hint = (did_you_mean(word, names)
                    or f"use {', '.join(TASK_GROUPS)} or a task name (`nrto problems`)")
            raise ValueError(f"unknown task {word!r}; {hint}")
    return tuple(name for name in names if name in chosen)


def benchmark_cells(tasks: str | Iterable[str] = "all", seeds: Sequence[int] = (-1, 0), *,
                    methods: Sequence[str] = METHODS, steps: int = STEPS,
                    cnn_dtype: str = "float32", upsampling: str = "bilinear"
                    ) -> tuple[BenchmarkCell, ...]:
    """The run cells of the benchmark: tasks x seeds x methods, the paper's rule applied.

    Seed -1 gives the three pixel methods, each seed >= 0 all four; ``methods`` keeps a subset.
    Order: tasks in catalogue order, then seeds as given, then methods in the paper's order.

    Args:
        tasks: see :func:`select_tasks`.
        seeds: integers >= -1, without repeats.
        methods: the paper's method names to keep.
        steps: the budget of every run (the paper: 1000).
        cnn_dtype, upsampling: see :func:`method_settings`.

    Raises:
        ValueError: a bad selection, seed, method or steps.
    """
    names = select_tasks(tasks)
    seeds = tuple(seeds)
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < -1:
            raise ValueError(f"seeds must be integers >= -1; got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {list(seeds)}")
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; the paper's are {METHODS}")
    cells = []
    for problem in names:
        for seed in seeds:
            for method in METHODS:
                if method not in methods or (seed == CONSTANT_SEED and method == CNN_METHOD):
                    continue
                model, optimizer = _MODEL_AND_OPTIMIZER[method]
                model_options, options = method_settings(method, seed, cnn_dtype=cnn_dtype,
                                                         upsampling=upsampling)
                cells.append(BenchmarkCell(problem, method, model, optimizer, seed, steps,
                                           model_options, options))
    return tuple(cells)


def quick_cells(**settings: Any) -> tuple[BenchmarkCell, ...]:
    """``--quick``: the three smallest tasks, seeds -1 and 0, 20 steps (21 cells).

    ``settings``: ``cnn_dtype`` and ``upsampling`` of :func:`method_settings`.
    """
    return benchmark_cells(QUICK_TASKS, QUICK_SEEDS, steps=QUICK_STEPS, **settings)


def issue_plan(stage: str, **settings: Any) -> tuple[BenchmarkCell, ...]:
    """The runs issue 10 asks for, by stage.

    * ``"first"``: every task at seed -1 for the three pixel methods and seed 0 for the CNN
      (116 * 4 = 464 cells);
    * ``"small-seeds"``: on the 62 small tasks, CNN seeds 1-4 and the pixel runs of seeds 0-1
      (62 * (4 + 3 * 2) = 620 cells).

    ``settings``: ``steps``, ``cnn_dtype`` and ``upsampling`` of :func:`benchmark_cells`.
    """
    if stage == "first":
        return benchmark_cells("all", (-1,), **settings) + benchmark_cells(
            "all", (0,), methods=(CNN_METHOD,), **settings)
    if stage == "small-seeds":
        pixels = tuple(method for method in METHODS if method != CNN_METHOD)
        return (benchmark_cells("small", (1, 2, 3, 4), methods=(CNN_METHOD,), **settings)
                + benchmark_cells("small", (0, 1), methods=pixels, **settings))
    raise ValueError(f"stage must be one of {ISSUE_PLAN_STAGES}; got {stage!r}")


def cell_counts(cells: Iterable[BenchmarkCell], done: Iterable[str]
                ) -> dict[str, tuple[int, int]]:
    """``{method: (cells done, cells)}`` in the paper's method order (methods with cells only).

    Args:
        cells: the benchmark's cells.
        done: labels (:attr:`BenchmarkCell.label`) of the runs that are complete.
    """
    done = set(done)
    counts: dict[str, list[int]] = {method: [0, 0] for method in METHODS}
    for cell in cells:
        counts[cell.method][1] += 1
        counts[cell.method][0] += cell.label in done
    return {method: (d, t) for method, (d, t) in counts.items() if t}
