"""Benchmark: CNN runs with glibc's default allocator, and with the memory it frees kept.

Run with ``python -m studies.benchmark_allocator [--problems NAME ...] [--upsampling bilinear]
[--evaluations K] [--repeats R]``.

For each problem, child processes (one thread each, as a study worker) run L-BFGS on the float32
CNN for ``K`` evaluations, recording as a study cell does (no correction pairs, first and last
design), alternately with ``NRTO_KEEP_FREED_MEMORY=0`` (glibc's defaults) and with the setting.
It prints, per setting, the median user and system CPU seconds per evaluation, the peak resident
memory, and the ratio of the total CPU per evaluation (default / kept, measured in this run), and
checks that both give the same losses bit for bit (the allocator must not change a result).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

DEFAULT_PROBLEMS = ("causeway_bridge_middle_128x128_0.1", "l_shape_0.4_256x256_0.2")


def _child(problem: str, upsampling: str, evaluations: int) -> None:
    """Run one measured L-BFGS run in this process and print its numbers as JSON."""
    import resource

    from studies.threads import configure_threads

    configure_threads(1)
    from solvers import CNNModel, as_objective, optimize
    from solvers.models import CNNConfig
    from solvers.problems import PROBLEMS
    from solvers.result import RecordOptions

    model = CNNModel(PROBLEMS[problem], seed=0,
                     config=CNNConfig(dtype="float32", upsampling=upsampling))
    objective = as_objective(model)
    objective.value_and_grad(objective.initial())        # graph building, not measured
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = optimize(objective, "lbfgs", steps=evaluations,
                      record=RecordOptions(pairs=False, designs_at=(0, -1)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    count = result.evaluations
    print(json.dumps({"user": (after.ru_utime - before.ru_utime) / count,
                      "sys": (after.ru_stime - before.ru_stime) / count,
                      "peak_mib": after.ru_maxrss / 1024,
                      "losses": [float(v).hex() for v in result.loss_per_evaluation]}))


def _measure(problem: str, upsampling: str, evaluations: int, keep: bool) -> dict:
    env = {**os.environ, "NRTO_KEEP_FREED_MEMORY": "1" if keep else "0",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = subprocess.run([sys.executable, "-m", "studies.benchmark_allocator", "--child",
                            problem, upsampling, str(evaluations)],
                           capture_output=True, text=True, env=env, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(DEFAULT_PROBLEMS))
    parser.add_argument("--upsampling", choices=("bilinear", "transpose"), default="bilinear")
    parser.add_argument("--evaluations", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    print(f"float32 {args.upsampling} CNN, L-BFGS, {args.evaluations} evaluations, one thread; "
          f"median of {args.repeats} run(s) per setting")
    print(f"{'problem':40s} {'allocator':10s} {'user s/eval':>11s} {'sys s/eval':>10s} "
          f"{'peak MiB':>9s}")
    for problem in args.problems:
        runs = {False: [], True: []}
        for _ in range(args.repeats):
            for keep in (False, True):   # alternated, so that a noisy moment hits both
                runs[keep].append(_measure(problem, args.upsampling, args.evaluations, keep))
        cpu = {}
        for keep, name in ((False, "default"), (True, "kept")):
            user = statistics.median(r["user"] for r in runs[keep])
            system = statistics.median(r["sys"] for r in runs[keep])
            peak = max(r["peak_mib"] for r in runs[keep])
            cpu[keep] = user + system
            print(f"{problem:40s} {name:10s} {user:11.3f} {system:10.3f} {peak:9.0f}")
        same = all(r["losses"] == runs[False][0]["losses"] for r in runs[False] + runs[True])
        print(f"{problem:40s} CPU per evaluation, default / kept: {cpu[False] / cpu[True]:.2f}x; "
              f"losses bit-identical: {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
