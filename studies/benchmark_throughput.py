"""Benchmark: runs per hour of a study on this machine, for several worker x thread layouts.

Run with ``python -m studies.benchmark_throughput [--problem NAME] [--runs N] [--steps S]
[--layouts WxT ...] [--model cnn|pixel] [--optimizer METHOD] [--dtype float64|float32]``.

The default batch is 4 CNN L-BFGS runs (seeds 0-3) of michell_centered_both_32x64_0.12, 40
evaluations each, penalty 3, filter radius 2, nothing recorded but the losses and no store. Each
layout ``WxT`` runs the whole batch on ``W`` worker processes (spawned, as the study engine does)
that each call :func:`studies.threads.configure_threads` ``(T)`` when they start; the default
layouts are ``1x2`` (one worker using both cores) and ``2x1`` (two workers, one core each). The
workers are started and have imported TensorFlow before the clock starts (a study pays that once
per worker, not per run); each run builds its objective (graph tracing included) and optimizes.

Printed per layout: wall time of the batch, runs per hour (``runs / wall * 3600``), the median
seconds of one run inside its worker, and its ratio to the best layout. The layouts' best losses
are compared run by run (relative 1e-9); a difference is printed, since thread counts may change
TensorFlow's reduction order and so the rounding, but not the work done. On a shared machine the
figures are only comparable when nothing else runs.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import multiprocessing
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_LAYOUTS = ("1x2", "2x1")


@dataclasses.dataclass(frozen=True)
class Layout:
    """``workers`` processes with ``threads`` threads each (TensorFlow pools and BLAS)."""

    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> "Layout":
        try:
            workers, threads = (int(part) for part in text.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"a layout is WORKERSxTHREADS, e.g. 2x1; got {text!r}") from None
        if workers < 1 or threads < 1:
            raise argparse.ArgumentTypeError(f"workers and threads must be >= 1; got {text!r}")
        return cls(workers, threads)

    def __str__(self) -> str:
        return f"{self.workers}x{self.threads}"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the batch."""

    problem: str
    model: str
    optimizer: str
    steps: int
    seed: int
    dtype: str


@dataclasses.dataclass(frozen=True)
class LayoutTiming:
    """The batch on one layout: wall seconds, per-run seconds (inside the workers), best losses."""

    layout: Layout
    wall: float
    run_seconds: tuple[float, ...]
    best_losses: tuple[float, ...]

    @property
    def runs_per_hour(self) -> float:
        return len(self.run_seconds) / self.wall * 3600.0


def _start_worker(threads: int, model: str) -> None:
    """Worker initializer: thread settings first, then TensorFlow (when a CNN is run)."""
    from studies.threads import configure_threads

    configure_threads(threads)
    if model == "cnn":
        import solvers.cnn  # noqa: F401  (imports TensorFlow; its pools are built at first op)


def _run_cell(cell: Cell) -> tuple[float, float]:
    """Build the objective and optimize; returns (seconds, best loss)."""
    from solvers import RecordOptions, as_objective, get_problem, optimize

    start = time.perf_counter()
    problem = get_problem(cell.problem)
    if cell.model == "cnn":
        from solvers import CNNConfig, CNNModel
        model = CNNModel(problem, seed=cell.seed, config=CNNConfig(dtype=cell.dtype))
    else:
        from solvers import PixelModel
        model = PixelModel(problem, volume_constraint=cell.optimizer not in ("mma", "oc"))
    objective = as_objective(model, penal=3.0, filter_radius=2.0)
    result = optimize(objective, cell.optimizer, steps=cell.steps, seed=cell.seed,
                      record=RecordOptions(iterates_every=0, designs_at=(), pairs=False))
    return time.perf_counter() - start, float(result.best_loss)


def time_layout(layout: Layout, cells: list[Cell]) -> LayoutTiming:
    """Run ``cells`` on ``layout`` (see the module docstring)."""
    context = multiprocessing.get_context("spawn")  # as the study engine: TensorFlow not forked
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=layout.workers, mp_context=context, initializer=_start_worker,
            initargs=(layout.threads, cells[0].model)) as pool:
        # start every worker (initializer included) before the clock starts
        list(pool.map(time.sleep, [0.5] * layout.workers))
        start = time.perf_counter()
        outcomes = list(pool.map(_run_cell, cells))
        wall = time.perf_counter() - start
    return LayoutTiming(layout, wall, tuple(s for s, _ in outcomes),
                        tuple(loss for _, loss in outcomes))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="michell_centered_both_32x64_0.12", metavar="NAME")
    parser.add_argument("--model", choices=("cnn", "pixel"), default="cnn")
    parser.add_argument("--optimizer", default="lbfgs", metavar="METHOD")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="the CNN's dtype")
    parser.add_argument("--runs", type=int, default=4, help="runs in the batch (seeds 0..N-1)")
    parser.add_argument("--steps", type=int, default=40, help="budget of each run")
    parser.add_argument("--layouts", nargs="+", type=Layout.parse,
                        default=[Layout.parse(text) for text in DEFAULT_LAYOUTS],
                        metavar="WxT", help="workers x threads (default: 1x2 2x1)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.steps < 1:
        parser.error("--runs and --steps must be >= 1")
    from solvers import PROBLEMS

    if args.problem not in PROBLEMS:
        parser.error(f"unknown problem {args.problem!r}; see `nrto problems`")
    cells = [Cell(args.problem, args.model, args.optimizer, args.steps, seed, args.dtype)
             for seed in range(args.runs)]
    print(f"{args.runs} x {args.model} {args.optimizer} ({args.dtype}) on {args.problem}, "
          f"{args.steps} steps each; cores available: {len(os.sched_getaffinity(0))}",
          flush=True)
    timings = []
    for layout in args.layouts:
        timings.append(time_layout(layout, cells))
        print(f"  done: {layout}", flush=True)
    reference = timings[0].best_losses
    for timing in timings[1:]:
        for seed, (a, b) in enumerate(zip(reference, timing.best_losses)):
            if abs(a - b) > 1e-9 * abs(a):
                print(f"  note: seed {seed} best loss {b:.12g} on {timing.layout} differs from "
                      f"{a:.12g} on {timings[0].layout} (thread counts changed the rounding)")
    best = max(t.runs_per_hour for t in timings)
    print(f"\n{'layout':>8}  {'wall s':>8}  {'runs/hour':>10}  {'median run s':>12}  "
          f"{'vs best':>7}")
    for timing in timings:
        print(f"{str(timing.layout):>8}  {timing.wall:8.2f}  {timing.runs_per_hour:10.1f}  "
              f"{statistics.median(timing.run_seconds):12.2f}  "
              f"{timing.runs_per_hour / best:7.2f}")
    winner = max(timings, key=lambda t: t.runs_per_hour)
    print(f"\nmost runs per hour: {winner.layout} (workers x threads); a study worker then calls "
          f"studies.threads.configure_threads({winner.layout.threads})")


if __name__ == "__main__":
    main()
