"""Benchmark: cost of one objective evaluation, against the SuperLU solve of the published code.

Run with ``python -m studies.benchmark_physics [--repeats N] [--problems NAME ...]
[--physics-only]`` (e.g. ``--problems crane_256x256_0.1 --physics-only --repeats 5`` for the
256 x 256 profile).

For each problem it prints the median wall time of
    * SuperLU (``scipy.sparse.linalg.splu``) factor + solve of the same free-dof stiffness matrix,
      measured in the same run, with its default COLAMD ordering (what the published code runs)
      and with MMD_AT_PLUS_A; the target ratio is taken against the faster of the two;
    * the physics alone (autograd, logits -> compliance): ``value_and_grad`` and ``hvp``;
    * the pixel and CNN flat objectives: ``value_and_grad`` and ``hvp``;
    * CHOLMOD numeric factorization + solve of the same matrix, with each fill-reducing ordering
      (AMD, METIS nested dissection: :mod:`solvers.ordering`), and which one the physics chose;
      the physics' ``value_and_grad`` should cost at most 1.5x that with the chosen ordering
      (one factorization and two triangular solves, plus the filter, sigmoid and assembly);
and the ratios the project's targets are stated in. Every repetition perturbs the parameters, so
no timing benefits from a cached factorization.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import autograd  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402
import scipy.sparse.linalg  # noqa: E402

DEFAULT_PROBLEMS = ("michell_centered_both_32x64_0.12", "causeway_bridge_middle_128x128_0.1")


def median_time(function, repeats: int) -> float:
    """Median wall time of ``function(i)`` for i = 1..repeats, after an untimed ``function(0)``."""
    function(0)  # warm-up (graph building, caches of the pattern)
    times = []
    for i in range(1, repeats + 1):
        start = time.perf_counter()
        function(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _superlu_time(physics, repeats: int, permc_spec: str) -> float:
    system = physics.system
    moduli = physics.moduli(physics.initial_design())

    def factor_and_solve(i):
        values = system.matrix_values(moduli * (1 + 1e-6 * i))
        lower = scipy.sparse.csc_matrix((values, system.solver.indices, system.solver.indptr),
                                        shape=(system.num_free,) * 2)
        full = (lower + lower.T - scipy.sparse.diags(lower.diagonal())).tocsc()
        scipy.sparse.linalg.splu(full, permc_spec=permc_spec).solve(physics.load)

    return median_time(factor_and_solve, repeats)


def _cholmod_time(physics, repeats: int, ordering: str) -> float:
    from solvers.sparse_cholesky import SymmetricSolver

    system = physics.system
    solver = SymmetricSolver(system.solver.indptr, system.solver.indices, ordering=ordering)
    moduli = physics.moduli(physics.initial_design())
    values = [system.matrix_values(moduli * (1 + 1e-6 * i)) for i in range(repeats + 1)]
    return median_time(lambda i: solver.solve(values[i], physics.load), repeats)


def benchmark(name: str, repeats: int, physics_only: bool = False) -> dict[str, float]:
    from solvers import Compliance, PixelModel, as_objective, get_problem

    problem = get_problem(name)
    physics = Compliance(problem)
    rng = np.random.default_rng(0)
    shape = (problem.height, problem.width)
    z0 = rng.normal(scale=0.5, size=shape)
    perturb = rng.normal(size=shape)
    loss = lambda z: physics(z, True)  # noqa: E731
    value_and_grad = autograd.value_and_grad(loss)
    make_hvp = autograd.make_hvp(loss)
    # Perturbed inputs are made before timing: only the evaluation itself is measured.
    images = [z0 + 1e-6 * i * perturb for i in range(repeats + 1)]
    row = {}
    if not physics_only:
        row["superlu_colamd"] = _superlu_time(physics, repeats, "COLAMD")
        row["superlu_mmd"] = _superlu_time(physics, repeats, "MMD_AT_PLUS_A")
    row["cholmod_amd"] = _cholmod_time(physics, repeats, "amd")
    row["cholmod_metis"] = _cholmod_time(physics, repeats, "metis")
    row["physics_vg"] = median_time(lambda i: value_and_grad(images[i]), repeats)
    row["physics_hvp"] = median_time(lambda i: make_hvp(images[i])[0](perturb), repeats)
    row["chosen"] = physics.system.solver.chosen_ordering
    models = () if physics_only else ("pixel", "cnn")
    for label in models:
        if label == "pixel":
            model = PixelModel(problem)
        else:
            from solvers import CNNModel  # TensorFlow only here
            model = CNNModel(problem, seed=0)
        objective = as_objective(model)
        direction = rng.normal(size=objective.size)
        thetas = [objective.initial() + 1e-6 * i * direction for i in range(repeats + 1)]
        row[f"{label}_vg"] = median_time(lambda i: objective.value_and_grad(thetas[i]), repeats)
        row[f"{label}_hvp"] = median_time(lambda i: objective.hvp(thetas[i], direction), repeats)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--problems", nargs="+", default=list(DEFAULT_PROBLEMS))
    parser.add_argument("--physics-only", action="store_true",
                        help="skip SuperLU and the models (the 256 x 256 profile)")
    args = parser.parse_args(argv)
    print(f"median wall time in seconds over {args.repeats} repetitions "
          f"(CPU threads available: {os.cpu_count()})")
    for name in args.problems:
        row = benchmark(name, args.repeats, args.physics_only)
        chosen = row.pop("chosen")
        print(f"\n{name}")
        for key, value in row.items():
            print(f"  {key:<16} {value:9.4f} s")
        print("  ratios:")
        cholmod = row[f"cholmod_{chosen}"]
        print(f"    CHOLMOD numeric+solve METIS / AMD = "
              f"{row['cholmod_metis'] / row['cholmod_amd']:.3f}; the physics uses {chosen}")
        print(f"    physics value_and_grad / CHOLMOD numeric+solve ({chosen}) = "
              f"{row['physics_vg'] / cholmod:.3f}   (target <= 1.5)")
        if args.physics_only:
            continue
        print(f"    physics value_and_grad / SuperLU(COLAMD) factor+solve = "
              f"{row['physics_vg'] / row['superlu_colamd']:.3f}")
        print(f"    physics value_and_grad / SuperLU(MMD_AT_PLUS_A) factor+solve = "
              f"{row['physics_vg'] / row['superlu_mmd']:.3f}")
        fastest = min(row["superlu_colamd"], row["superlu_mmd"])
        print(f"    physics value_and_grad / faster SuperLU = {row['physics_vg'] / fastest:.3f}"
              "   (target <= 0.25)")
        for label in ("physics", "pixel", "cnn"):
            ratio = row[f"{label}_hvp"] / row[f"{label}_vg"]
            print(f"    {label} hvp / value_and_grad = {ratio:.2f}"
                  "   (target <= 3)")
        print(f"    cnn value_and_grad = {row['cnn_vg']:.3f} s   (target <= 0.2 s at 128x128)")


if __name__ == "__main__":
    main()
