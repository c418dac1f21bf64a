"""Benchmark: the study engine's overhead against the cells' own compute.

Run with ``python -m studies.benchmark_study [--cells 20] [--steps 30] [--workers 2]``.

A study of small pixel cells (mbb_beam and cantilever_beam_full at 32x16, L-BFGS and OC, as many
seeds as needed for ``--cells``) runs in this process, on the local spawned pool and on a Dask
LocalCluster of worker processes, each into a fresh folder. For each executor it prints

* ``compute``: the sum over cells of the seconds spent inside ``run_cell`` (objective building,
  optimization, checkpoints and the record included: what a cell costs wherever it runs);
* ``wall``: the study's wall time, and ``wall x workers``;
* ``overhead = wall x workers / compute - 1``: spec expansion, scheduling, shipping, worker
  start-up (spawn + imports, TensorFlow among them) and idle workers at the end;
* "cold" is a first study on fresh workers (their start-up included; a worker's first cell also
  pays the TensorFlow import inside ``run_cell``), "warm" a second study of the same size (other
  keys) on the same workers: the steady state of a long study;
* throughput in cells per hour.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _study(cells: int, steps: int):
    from studies.study import Study

    seeds = max(1, cells // 4)
    return Study.from_dict({
        "name": "overhead",
        "problems": [{"name": "mbb_beam", "size": [32, 16], "volume_fraction": 0.5},
                     {"name": "cantilever_beam_full", "size": [32, 16], "volume_fraction": 0.4}],
        "models": ["pixel"], "seeds": list(range(seeds)), "steps": [steps],
        "checkpoint_every": 10, "keep_runs": False,
        "methods": [{"name": "LBFGS", "optimizer": "lbfgs"}, {"name": "OC", "optimizer": "oc"}]})


def _run(study, executor, workers: int) -> dict:
    from studies.study import StudyFolder, run_study

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run = run_study(study, StudyFolder(folder), executor, progress=False)
        wall = time.perf_counter() - start
    assert not run.errors, run.errors
    compute = sum(o.wall_s for o in run.outcomes)
    return {"cells": len(run.outcomes), "compute": compute, "wall": wall,
            "overhead": wall * workers / compute - 1.0,
            "cells_per_hour": 3600.0 * len(run.outcomes) / wall}


def _measure(study, warm_up, executor, workers: int) -> tuple[dict, dict]:
    """(cold, warm): the study on fresh workers, then again (new keys) on the same workers."""
    try:
        cold = _run(warm_up, executor, workers)
        warm = _run(study, executor, workers)
    finally:
        executor.close()
    return cold, warm


def main(argv=None) -> None:
    from studies.study import DaskExecutor, InlineExecutor, LocalExecutor

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    study = _study(args.cells, args.steps)
    warm_up = _study(args.cells, args.steps + 1)  # the same cells with other keys
    rows = [("this process", *_measure(study, warm_up, InlineExecutor(), 1)),
            (f"local pool x{args.workers}",
             *_measure(study, warm_up, LocalExecutor(args.workers), args.workers)),
            (f"dask LocalCluster x{args.workers}",
             *_measure(study, warm_up, DaskExecutor(local_workers=args.workers), args.workers))]
    print(f"{'executor':<24} {'state':<6} {'cells':>5} {'compute s':>10} {'wall s':>8} "
          f"{'overhead':>9} {'cells/h':>9}")
    for name, cold, warm in rows:
        for state, row in (("cold", cold), ("warm", warm)):
            print(f"{name:<24} {state:<6} {row['cells']:>5} {row['compute']:>10.2f} "
                  f"{row['wall']:>8.2f} {row['overhead']:>8.1%} {row['cells_per_hour']:>9.0f}")
    serial = rows[0][2]["wall"]
    for name, _, warm in rows[1:]:
        print(f"throughput of {name} (warm) against this process, one cell after another: "
              f"{serial / warm['wall']:.2f}x")

if __name__ == "__main__":
    main()
