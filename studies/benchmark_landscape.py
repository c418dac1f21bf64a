"""Benchmark: cost of the landscape tools against the objective calls they are made of.

Run with ``python -m studies.benchmark_landscape [--problem NAME] [--grid 21]
[--runs 3 --steps 50]``.

On the CNN of the given task (default causeway_bridge_middle_128x128_0.1, seed 0, at its
initial parameters) it prints the median time of one Hessian-vector product and of one loss
evaluation, the time of an SLQ spectrum (runs x steps products) and of a filter-normalized
grid x grid surface (loss evaluations only), and the overhead ratios
    SLQ time / (runs * steps * median HVP time)          target <= 1.2
    surface time / (grid^2 * median loss time)           target <= 1.1
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from studies.benchmark_physics import median_time  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="causeway_bridge_middle_128x128_0.1")
    parser.add_argument("--grid", type=int, default=21)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    import landscape
    from solvers import CNNModel, as_objective, get_problem

    objective = as_objective(CNNModel(get_problem(args.problem), seed=0))
    theta = objective.initial()
    rng = np.random.default_rng(0)
    direction = rng.normal(size=objective.size)
    # inputs made before timing: only the objective calls are measured
    directions = [direction + i for i in range(args.repeats + 1)]
    points = [theta + 1e-4 * i * direction for i in range(args.repeats + 1)]
    hvp_time = median_time(lambda i: objective.hvp(theta, directions[i]), args.repeats)
    loss_time = median_time(lambda i: objective.value(points[i]), args.repeats)

    operator = landscape.HessianOperator(objective, theta)
    start = time.perf_counter()
    landscape.slq(operator, num_runs=args.runs, num_steps=args.steps, seed=0)
    slq_time = time.perf_counter() - start

    d1 = landscape.filter_normalized_direction(objective, theta, seed=1)
    d2 = landscape.filter_normalized_direction(objective, theta, seed=2)
    start = time.perf_counter()
    landscape.surface(objective, theta, d1, d2, grid=args.grid)
    surface_time = time.perf_counter() - start

    products = args.runs * args.steps
    evaluations = args.grid ** 2
    print(f"{args.problem}, CNN with {objective.size:,} parameters "
          f"(median of {args.repeats} for single calls)")
    print(f"  one Hessian-vector product   {hvp_time:8.3f} s")
    print(f"  one loss evaluation          {loss_time:8.3f} s")
    print(f"  SLQ {args.runs} runs x {args.steps} steps     {slq_time:8.1f} s   "
          f"ratio to {products} HVPs = {slq_time / (products * hvp_time):.3f}  (target <= 1.2)")
    print(f"  surface {args.grid}x{args.grid}              {surface_time:8.1f} s   "
          f"ratio to {evaluations} losses = {surface_time / (evaluations * loss_time):.3f}"
          "  (target <= 1.1)")
    print(f"  both within 3 minutes: {slq_time <= 180 and surface_time <= 180}")


if __name__ == "__main__":
    main()
