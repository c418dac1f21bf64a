"""Benchmark: seconds per step of the paper's optimizers, and the cost of recording and saving.

Run with ``python -m studies.benchmark_optimizers [--steps N] [--problems NAME ...]
[--configs NAME ...] [--no-overhead]``.

Configurations (penalty 3, filter radius 2, as ``nrto optimize`` builds them):

    cnn-lbfgs      the paper's CNN (``CNNConfig()``, seed 0, float64), L-BFGS-B
    cnn32-lbfgs    the same CNN in float32 (``CNNConfig(dtype="float32")``), L-BFGS-B
    pixels-lbfgs   pixel logits through the volume-constrained sigmoid, L-BFGS-B
    pixels-mma     pixel densities, nlopt's MMA with the volume constraint
    pixels-oc      pixel densities, optimality criteria

``--steps`` is the budget of :func:`solvers.optimize` (evaluations for L-BFGS, iterations for MMA
and OC). Each configuration is warmed up first (one untimed evaluation and one untimed ``design``
call: TensorFlow traces its graphs on first use; the design's one-off time is printed, since a
fresh ``nrto optimize`` process pays it once when it records designs). Then it is run with
nothing recorded besides the losses (``RecordOptions(iterates_every=0, designs_at=(),
pairs=False)``) and no store. A callback stamps the clock at every accepted iterate, which gives
the per-iteration times (the first one includes the evaluation of the start); the table prints
their median over all bare runs, the mean (total / iterations), and the share of the time spent
inside ``objective.value_and_grad`` (the rest is the optimizer and the recorder).

Overhead of recording and saving (unless ``--no-overhead``): the same configuration is run again
as ``nrto optimize`` runs it by default: designs at the first and last iterate, every accepted
L-BFGS correction pair kept for pixel models and none for the CNN, and the runner's
checkpoint schedule
(:func:`studies.store.write_run` after the first accepted iterate, a partial snapshot every 50
iterates, the complete run at the end), into a fresh HDF5 file in a temporary folder. The CNN
L-BFGS run is also recorded with ``--pairs-until 10`` (what a B spectrum at iterate 10 needs),
because pairs dominate for the CNN: one pair is two vectors of all the network's parameters.
Every recorded run sits between
two bare runs (bare, recorded, bare, recorded, bare), and its overhead is
``its wall time (final write included) / mean wall time of its two neighbours - 1``; every run
must produce the same loss history, bit for bit (checked), so all did the same work. On a shared
CPU that difference of wall times is noisy, so the table also prints the time spent in snapshots
and ``write_run`` (+ the one-off design trace) relative to the bare time, and the time inside the
objective in both runs (when it changes as much as the wall time, the CPU was busier, not the
recording slower).

Step-cost table (issue 7): per problem and configuration, seconds per step (the median accepted
iteration), seconds per ``value_and_grad``, and the share of the step spent outside the
objective (the optimizer's bookkeeping and the recorder: ``1 - objective time / run time``). For
``lbfgs`` configurations, a "scipy / own" column compares the L-BFGS-B implementations on the same
run (seconds per step of each) when ``solvers.optim.options.LbfgsOptions`` has an
``implementation`` field; otherwise it prints "n/a" (see :func:`lbfgs_implementations`).

Benchmark estimate: CPU-hours of one seed of the paper's 116-task benchmark (4 methods x 1000
steps: cnn-lbfgs, pixels-lbfgs, pixels-mma, pixels-oc), from the measured seconds per budget unit
(evaluation for L-BFGS, iteration otherwise; total run time / budget used). Each task is assigned
the measured problem with the nearest number of elements (log scale), and the table shows how
many tasks fall into each group. CPU-hours = wall hours x ``--threads`` (the threads this process
uses, :func:`studies.threads.configure_threads`; 1 by default, as a study worker). Printed once
with the float64 CNN and once with the float32 CNN, when both were measured.

Defaults: the three problems of issue 7 (32x64, 128x128, 256x256). Smoke run:
``python -m studies.benchmark_optimizers --problems michell_centered_both_32x64_0.12 --steps 5
--no-overhead``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

DEFAULT_PROBLEMS = ("michell_centered_both_32x64_0.12", "causeway_bridge_middle_128x128_0.1",
                    "crane_256x256_0.1")
CONFIGS: dict[str, tuple[str, str]] = {
    "cnn-lbfgs": ("cnn", "lbfgs"),
    "cnn32-lbfgs": ("cnn", "lbfgs"),
    "pixels-lbfgs": ("pixel", "lbfgs"),
    "pixels-mma": ("pixel", "mma"),
    "pixels-oc": ("pixel", "oc"),
}
CNN_DTYPES = {"cnn-lbfgs": "float64", "cnn32-lbfgs": "float32"}
# the paper's benchmark: 4 methods x 1000 steps per task; the CNN in either dtype
BENCHMARK_METHODS = ("cnn-lbfgs", "pixels-lbfgs", "pixels-mma", "pixels-oc")
BENCHMARK_STEPS = 1000
CHECKPOINT_EVERY = 50  # the default of `nrto optimize --checkpoint-every`
TARGET_CNN_STEP = 0.25  # seconds, median L-BFGS iteration of the CNN at 128 x 128
TARGET_OVERHEAD = 0.10  # recording and saving, relative to the optimization time


@dataclasses.dataclass(frozen=True)
class Timing:
    """One timed run.

    Attributes:
        seconds: wall time of ``optimize`` (plus the store's writes for a recorded run).
        evaluations, iterations: as in :class:`solvers.OptimizationResult`.
        per_iteration: seconds between consecutive accepted iterates, ``(iterations,)``.
        objective_seconds: time spent inside ``objective.value_and_grad``.
        store_seconds: time spent in snapshots and ``write_run`` (0 for a bare run).
        file_bytes: size of the HDF5 file written (0 for a bare run).
        losses: ``loss_per_evaluation`` of the run.
    """

    seconds: float
    evaluations: int
    iterations: int
    per_iteration: np.ndarray
    best_loss: float
    objective_seconds: float = 0.0
    store_seconds: float = 0.0
    file_bytes: int = 0
    losses: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def mean_iteration(self) -> float:
        return self.seconds / max(self.iterations, 1)


class _TimedObjective:
    """Delegates everything to ``objective`` and adds up the time of ``value_and_grad``."""

    def __init__(self, objective):
        self._objective = objective
        self.seconds = 0.0

    def __getattr__(self, name: str):
        return getattr(self._objective, name)

    def value_and_grad(self, theta):
        start = time.perf_counter()
        try:
            return self._objective.value_and_grad(theta)
        finally:
            self.seconds += time.perf_counter() - start


def _task(name: str):
    from solvers.problems import TASKS

    for task in TASKS:
        if task.name == name:
            return task
    raise SystemExit(f"unknown problem {name!r}; the catalogue's tasks are listed by "
                     f"`nrto problems`")


def _objective(problem, model_kind: str, method: str, dtype: str = "float64"):
    from solvers import PixelModel, as_objective

    if model_kind == "cnn":
        from solvers import CNNConfig, CNNModel
        model = CNNModel(problem, seed=0, config=CNNConfig(dtype=dtype))
    else:
        model = PixelModel(problem, volume_constraint=method not in ("mma", "oc"))
    return as_objective(model, penal=3.0, filter_radius=2.0)


def _run_config(task, config: str, method: str, steps: int, record) -> Any:
    from studies.store import RunConfig

    model_kind = CONFIGS[config][0]
    model_options = {"dtype": CNN_DTYPES[config]} if config in CNN_DTYPES else {}
    return RunConfig(problem=task.name, family=task.family, width=task.width,
                     height=task.height, volume_fraction=task.volume_fraction, model=model_kind,
                     optimizer=method, steps=steps, seed=0, penal=3.0, filter_radius=2.0,
                     model_options=model_options, problem_params=dict(task.params),
                     record=record)


def lbfgs_implementations() -> tuple[str, ...] | None:
    """``("scipy", "own")`` when ``LbfgsOptions`` has an ``implementation`` field, else None.

    HOOK (issue 7 item 1): the L-BFGS of our own is selected with
    ``optimize(..., "lbfgs", implementation="scipy" | "own")``. Until that option exists the
    comparison column prints "n/a". A feature probe on the options dataclass, not an import
    fallback.
    """
    from solvers.optim.options import LbfgsOptions

    names = {field.name for field in dataclasses.fields(LbfgsOptions)}
    return ("scipy", "own") if "implementation" in names else None


def _implementation_steps(objective, steps: int) -> dict[str, float]:
    """Median seconds per accepted iteration of each L-BFGS implementation on the same run."""
    from solvers import RecordOptions, optimize

    medians = {}
    for implementation in lbfgs_implementations() or ():
        stamps: list[float] = []
        start = time.perf_counter()
        optimize(objective, "lbfgs", steps=steps, seed=0, implementation=implementation,
                 record=RecordOptions(iterates_every=0, designs_at=(), pairs=False),
                 callback=lambda info: stamps.append(time.perf_counter()))
        medians[implementation] = float(np.median(np.diff(np.array([start, *stamps]))))
    return medians


def _bare_run(objective, method: str, steps: int) -> Timing:
    from solvers import RecordOptions, optimize

    stamps: list[float] = []
    timed = _TimedObjective(objective)
    start = time.perf_counter()
    result = optimize(timed, method, steps=steps, seed=0,
                      record=RecordOptions(iterates_every=0, designs_at=(), pairs=False),
                      callback=lambda info: stamps.append(time.perf_counter()))
    seconds = time.perf_counter() - start
    return Timing(seconds, result.evaluations, result.iterations,
                  np.diff(np.array([start, *stamps])), result.best_loss,
                  objective_seconds=timed.seconds, losses=result.loss_per_evaluation)


def _recorded_run(objective, method: str, steps: int, record, run_config, folder: Path) -> Timing:
    """``optimize`` + the runner's checkpoints into a fresh file (see the module docstring)."""
    from solvers import optimize
    from studies.store import write_run

    path = folder / f"run-{time.monotonic_ns()}.h5"
    specs = tuple(objective.parameter_specs)
    state: dict[str, Any] = {"run_id": None, "store": 0.0}
    stamps: list[float] = []

    def store(result, partial: bool) -> None:
        begin = time.perf_counter()
        state["run_id"] = write_run(path, run_config, result, run_id=state["run_id"],
                                    partial=partial, parameter_specs=specs)
        state["store"] += time.perf_counter() - begin

    def checkpoint(info) -> None:
        stamps.append(time.perf_counter())
        if state["run_id"] is None or info.iteration % CHECKPOINT_EVERY == 0:
            begin = time.perf_counter()
            snapshot = info.snapshot()
            state["store"] += time.perf_counter() - begin
            store(snapshot, partial=True)

    timed = _TimedObjective(objective)
    start = time.perf_counter()
    result = optimize(timed, method, steps=steps, seed=0, record=record, callback=checkpoint)
    store(result, partial=False)
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    path.unlink()
    return Timing(seconds, result.evaluations, result.iterations,
                  np.diff(np.array([start, *stamps])), result.best_loss,
                  objective_seconds=timed.seconds, store_seconds=state["store"], file_bytes=size,
                  losses=result.loss_per_evaluation)


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """The runs of one configuration on one problem.

    Attributes:
        parameters: size of the flat parameter vector.
        design_trace_seconds: the first ``objective.design`` call (graph tracing for the CNN).
        bare: the bare runs, one before and one after each recorded run.
        recorded: record label -> the recorded and saved run, in the order they ran.
    """

    parameters: int
    design_trace_seconds: float
    bare: tuple[Timing, ...]
    recorded: dict[str, Timing]
    implementations: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def per_evaluation(self) -> float:
        """Mean seconds per ``value_and_grad`` inside the bare runs."""
        return float(np.mean([t.objective_seconds / max(t.evaluations, 1) for t in self.bare]))

    @property
    def outside_share(self) -> float:
        """Share of the bare runs' time spent outside ``value_and_grad``."""
        return float(np.mean([1 - t.objective_seconds / t.seconds for t in self.bare]))

    @property
    def bare_seconds(self) -> float:
        return float(np.mean([t.seconds for t in self.bare]))

    def neighbours(self, label: str) -> tuple[Timing, Timing]:
        """The bare runs just before and just after the recorded run ``label``."""
        index = list(self.recorded).index(label)
        return self.bare[index], self.bare[index + 1]

    @property
    def median_iteration(self) -> float:
        times = np.concatenate([t.per_iteration for t in self.bare])
        return float(np.median(times)) if times.size else float("nan")


def benchmark(name: str, config: str, steps: int, overhead: bool, folder: Path) -> Benchmark:
    """Time one configuration on one problem (see the module docstring)."""
    from solvers import RecordOptions

    task = _task(name)
    problem = task.build()
    model_kind, method = CONFIGS[config]
    objective = _objective(problem, model_kind, method, CNN_DTYPES.get(config, "float64"))
    objective.value_and_grad(objective.initial())  # warm-up: graph tracing, caches
    start = time.perf_counter()
    objective.design(objective.initial())
    design_trace = time.perf_counter() - start
    bare = [_bare_run(objective, method, steps)]
    recorded: dict[str, Timing] = {}
    if overhead:
        # nrto optimize's default: every correction pair for pixel models, none for the CNN
        variants = {"cli default": RecordOptions(pairs=config.startswith("pixels"))}
        if method == "lbfgs" and config.startswith("cnn"):
            variants["--pairs-until 10"] = RecordOptions(pairs_until=10)
        for label, record in variants.items():
            run_config = _run_config(task, config, method, steps, record)
            recorded[label] = _recorded_run(objective, method, steps, record, run_config, folder)
            bare.append(_bare_run(objective, method, steps))
    for label, timing in [*(("bare", t) for t in bare), *recorded.items()]:
        if not np.array_equal(timing.losses, bare[0].losses):
            raise RuntimeError(f"{name} {config}: the {label} run's loss history differs from "
                               f"the first bare run's; the timings are not comparable")
    implementations = _implementation_steps(objective, steps) if method == "lbfgs" else {}
    return Benchmark(objective.size, design_trace, tuple(bare), recorded, implementations)


def _nearest(elements: int, measured: dict[str, int]) -> str:
    return min(measured, key=lambda name: abs(np.log(elements / measured[name])))


def benchmark_estimate(results: dict[tuple[str, str], Benchmark],
                       threads: int) -> dict[str, tuple[float | None, dict[str, int]]]:
    """CPU-hours of one seed of the 116-task benchmark (see the module docstring).

    Returns:
        CNN configuration -> (CPU-hours, or None when a method was not measured on a problem;
        measured problem -> number of tasks assigned to it).
    """
    from solvers.problems import TASKS

    problems = sorted({name for name, _ in results})
    measured = {name: _task(name).width * _task(name).height for name in problems}
    groups: dict[str, int] = {name: 0 for name in problems}
    assignment = [_nearest(task.width * task.height, measured) for task in TASKS]
    for name in assignment:
        groups[name] += 1
    estimates = {}
    for cnn in CNN_DTYPES:
        methods = [cnn, *BENCHMARK_METHODS[1:]]
        seconds = 0.0
        for name in assignment:
            for method in methods:
                if (name, method) not in results:
                    seconds = float("nan")
                    break
                result = results[name, method]
                first = result.bare[0]  # budget unit: evaluations for L-BFGS, else iterations
                used = first.evaluations if CONFIGS[method][1] == "lbfgs" else first.iterations
                seconds += result.bare_seconds / max(used, 1) * BENCHMARK_STEPS
        hours = seconds * threads / 3600
        estimates[cnn] = (None if np.isnan(hours) else hours, groups)
    return estimates


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100,
                        help="budget per run (evaluations for L-BFGS, iterations otherwise)")
    parser.add_argument("--problems", nargs="+", default=list(DEFAULT_PROBLEMS), metavar="NAME")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS),
                        metavar="CONFIG", help=f"any of {', '.join(CONFIGS)}")
    parser.add_argument("--no-overhead", action="store_true",
                        help="skip the recorded runs (recording and saving overhead)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of TensorFlow and the BLAS in this process (default 1, "
                             "as a study worker); CPU-hours count them")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1; got {args.steps}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    for name in args.problems:
        _task(name)  # fail before any run for an unknown name
    from studies.threads import configure_threads

    configure_threads(args.threads)
    print(f"--steps {args.steps}; threads {args.threads}; CPU threads available: "
          f"{os.cpu_count()}")
    rows, overhead_rows, cnn_steps = [], [], {}
    step_rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="nrto-benchmark-") as folder:
        for name in args.problems:
            for config in args.configs:
                result = benchmark(name, config, args.steps, not args.no_overhead, Path(folder))
                first = result.bare[0]
                rows.append([
                    name, config, f"{result.parameters}",
                    " / ".join(f"{t.seconds:.2f}" for t in result.bare),
                    f"{first.evaluations}", f"{first.iterations}",
                    f"{result.bare_seconds / max(first.evaluations, 1):.4f}",
                    f"{result.median_iteration:.4f}",
                    f"{result.bare_seconds / max(first.iterations, 1):.4f}",
                    f"{np.mean([t.objective_seconds / t.seconds for t in result.bare]):.0%}",
                    f"{first.best_loss:.6g}"])
                if config == "cnn-lbfgs":
                    cnn_steps[name] = result.median_iteration
                results[name, config] = result
                compare = "n/a"
                if result.implementations:
                    compare = " / ".join(f"{result.implementations[k]:.4f}"
                                         for k in ("scipy", "own"))
                elif CONFIGS[config][1] != "lbfgs":
                    compare = "-"
                step_rows.append([name, config, f"{result.median_iteration:.4f}",
                                  f"{result.per_evaluation:.4f}",
                                  f"{result.outside_share:.0%}", compare])
                for label, timing in result.recorded.items():
                    before, after = result.neighbours(label)
                    base = (before.seconds + after.seconds) / 2
                    base_objective = (before.objective_seconds + after.objective_seconds) / 2
                    direct = timing.store_seconds + result.design_trace_seconds
                    overhead_rows.append([
                        name, config, label, f"{before.seconds:.2f} / {after.seconds:.2f}",
                        f"{timing.seconds:.2f}", f"{timing.seconds / base - 1:+.3f}",
                        f"{timing.store_seconds:.2f}", f"{result.design_trace_seconds:.2f}",
                        f"{direct / base:.3f}",
                        f"{base_objective:.2f} / {timing.objective_seconds:.2f}",
                        f"{timing.file_bytes / 2**20:.1f}"])
                print(f"  done: {name} {config}", flush=True)
    print("\nBare runs (nothing recorded but the losses, no store); seconds:")
    _table(rows, ["problem", "config", "params", "total (runs)", "evals", "iters", "per eval",
                  "per iter median", "per iter mean", "in objective", "best loss"])
    if overhead_rows:
        print("\nRecording and saving (nrto optimize's defaults; checkpoint every "
              f"{CHECKPOINT_EVERY} iterates); seconds, MiB:")
        _table(overhead_rows, ["problem", "config", "record", "bare before / after",
                               "recorded+saved", "overhead", "in store", "design trace",
                               "(store+trace) / bare", "in objective bare / recorded",
                               "file MiB"])
        print(f"  target: overhead <= {TARGET_OVERHEAD:.0%} of the optimization time")
    for name, seconds in cnn_steps.items():
        if "128x128" in name:
            print(f"  target: cnn-lbfgs median iteration at 128x128 <= {TARGET_CNN_STEP} s: "
                  f"{name} {seconds:.3f} s")
    print("\nStep cost (bare runs); seconds:")
    _table(step_rows, ["problem", "config", "per step", "per value_and_grad",
                       "outside objective", "scipy / own per step"])
    print("  targets: outside objective <= 15 % for the CNN; cnn32-lbfgs per step <= 0.05 / "
          "0.21 / 0.62 s at 32x64 / 128x128 / 256x256; pixels-oc <= 0.25 s at 256x256")
    print(f"\nOne seed of the 116-task benchmark ({len(BENCHMARK_METHODS)} methods x "
          f"{BENCHMARK_STEPS} steps), estimated from the per-step times above "
          f"(x {args.threads} thread(s)):")
    for cnn, (hours, groups) in benchmark_estimate(results, args.threads).items():
        grouping = ", ".join(f"{count} tasks ~ {name}" for name, count in groups.items())
        figure = "n/a (measure cnn, pixels-lbfgs, pixels-mma and pixels-oc)" if hours is None \
            else f"{hours:.1f} CPU-hours"
        print(f"  with {cnn} ({CNN_DTYPES[cnn]}): {figure}   [{grouping}]")
    print("  target: <= 20 CPU-hours (the published code: about 267)")

if __name__ == "__main__":
    main()
