"""``nrto reproduce paper-benchmark``: run the paper's benchmark (or part of it) and report.

Usage::

    nrto reproduce paper-benchmark [--tasks small|large|all|NAME ...] [--seeds -1 0 1 ...]
        [--methods cnn-lbfgs pixels-lbfgs pixels-mma pixels-oc] [--steps 1000]
        [--plan first|small-seeds | --quick]
        [--jobs N | --scheduler ADDRESS | --dask-local N] [--shard I/N]
        [--out results/paper-benchmark] [--report-only | --no-run] [--no-progress]
        [--cnn-dtype float32|float64]

The cells (``tasks x methods x seeds``, the paper's rule: seed -1 is the constant start of the
three pixel methods, seeds >= 0 run all four, pixel runs start from ``CNNModel(seed)``'s output)
run through the study engine into ``OUT/records/`` (one compact record per run: commit them;
the run files ``OUT/runs/*.h5`` are git-ignored), then every result file of ``OUT`` is rebuilt
from the records there (:func:`studies.benchmark.reproduce.write_benchmark_outputs`). A rerun
continues where it stopped; records of other machines or shards are merged by copying them into
``OUT/records/``. ``--report-only`` rebuilds the result files from the records and runs nothing.

* ``--plan first``: every task, seed -1 for the pixel methods and seed 0 for the CNN (464 runs);
  ``--plan small-seeds``: the 62 small tasks, CNN seeds 1-4 and pixel seeds 0-1 (620 runs).
* ``--quick``: the three smallest tasks, seeds -1 and 0, 20 steps (21 runs, under a minute on
  one core), into ``results/paper-benchmark-quick`` by default.

Every run is single-threaded: the command sets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and
``MKL_NUM_THREADS`` to 1 for the workers it starts and limits its own BLAS to one thread, so that
a record has the same bits whichever executor ran it (Dask workers started elsewhere need the
same variables).

Exit status: 0 done; 1 some runs raised (no record; rerun to retry); 2 bad input (one line on
stderr, nothing run); 130 interrupted (rerun to continue).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["DEFAULT_OUT", "QUICK_OUT", "add_paper_benchmark", "paper_benchmark_command"]

DEFAULT_OUT = Path("results") / "paper-benchmark"
QUICK_OUT = Path("results") / "paper-benchmark-quick"
EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_DEFAULT_SEEDS = (-1, 0)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return int(text)


def _paper_seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = None
    if seed is None or seed < -1:
        raise argparse.ArgumentTypeError(f"a seed is an integer >= -1 (-1: the constant start "
                                         f"of the pixel methods); got {text!r}")
    return seed


def add_paper_benchmark(subparsers, targets: dict | None = None) -> argparse.ArgumentParser:
    """Add ``paper-benchmark`` to the ``reproduce`` group's ``subparsers``.

    Args:
        subparsers: the argparse subparsers action of ``nrto reproduce``.
        targets: the group's table (target name -> handler of the parsed arguments); when given,
            ``targets["paper-benchmark"]`` is set to :func:`paper_benchmark_command`.

    Returns:
        The ``paper-benchmark`` parser.
    """
    from studies.benchmark.analysis import METHODS
    from studies.benchmark.spec import ISSUE_PLAN_STAGES

    parser = subparsers.add_parser(
        "paper-benchmark", help="the 116-task benchmark of Hoyer et al. (2019): run and report",
        description="Run the 116-task benchmark of Hoyer, Sohl-Dickstein & Greydanus (2019), "
        "or part of it, through the study engine; then write its results from the records.")
    what = parser.add_argument_group("cells")
    what.add_argument("--tasks", nargs="+", action="extend", metavar="SEL",
                      help="small (62 tasks), large (54), all (116, default) or task names")
    what.add_argument("--seeds", nargs="+", action="extend", type=_paper_seed, metavar="S",
                      help="the paper's seeds: -1 the constant start (pixel methods only), "
                           ">= 0 a CNNModel seed (default: -1 0)")
    what.add_argument("--methods", nargs="+", action="extend", choices=METHODS, metavar="M",
                      help=f"a subset of {', '.join(METHODS)} (default: all)")
    what.add_argument("--steps", type=_positive, metavar="N",
                      help="budget of every run (default 1000); summaries at min(N, 1000)")
    stage = what.add_mutually_exclusive_group()
    stage.add_argument("--plan", choices=ISSUE_PLAN_STAGES,
                       help="a run stage of issue 10: first (464 runs) or small-seeds (620)")
    stage.add_argument("--quick", action="store_true",
                       help="3 small tasks, seeds -1 0, 20 steps (21 runs)")
    what.add_argument("--cnn-dtype", choices=("float32", "float64"), default="float32",
                      help="the CNN's floating-point type (default float32, the paper's)")
    where = parser.add_argument_group("where").add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_positive, default=1, metavar="N",
                       help="local worker processes (default 1: this process)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--dask-local", type=_positive, metavar="N",
                       help="start a Dask LocalCluster of N single-threaded workers")
    parser.add_argument("--shard", metavar="I/N",
                        help="run the I-th of N deterministic shares of the cells")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help=f"results folder (default {DEFAULT_OUT}; --quick: {QUICK_OUT})")
    parser.add_argument("--report-only", "--no-run", dest="report_only", action="store_true",
                        help="rebuild the result files from OUT/records only; run nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    if targets is not None:
        targets["paper-benchmark"] = paper_benchmark_command
    return parser


def _usage(message: str):
    from studies.study.spec import StudyError
    return StudyError(message)


def _selection(args):
    """``(cells, targets, steps, name, out)`` of the arguments."""
    from studies.benchmark.analysis import METHODS
    from studies.benchmark.reproduce import issue_targets
    from studies.benchmark.spec import (
        QUICK_STEPS, STEPS, benchmark_cells, issue_plan, quick_cells)

    settings = {"cnn_dtype": args.cnn_dtype}
    if args.quick:
        given = [flag for flag, value in (("--tasks", args.tasks), ("--seeds", args.seeds),
                                          ("--methods", args.methods), ("--steps", args.steps))
                 if value is not None]
        if given:
            raise _usage(f"--quick fixes the tasks, seeds, methods and steps; drop "
                         f"{', '.join(given)}")
        cells = quick_cells(**settings)
        return cells, [("quick", cells)], QUICK_STEPS, "paper-benchmark-quick", \
            args.out or QUICK_OUT
    steps = args.steps or STEPS
    targets = issue_targets(steps, **settings)
    if args.plan:
        given = [flag for flag, value in (("--tasks", args.tasks), ("--seeds", args.seeds),
                                          ("--methods", args.methods)) if value is not None]
        if given:
            raise _usage(f"--plan {args.plan} fixes the tasks, seeds and methods; drop "
                         f"{', '.join(given)}")
        cells = issue_plan(args.plan, steps=steps, **settings)
    else:
        cells = benchmark_cells(args.tasks or "all", tuple(args.seeds or _DEFAULT_SEEDS),
                                methods=tuple(args.methods or METHODS), steps=steps, **settings)
        planned = {cell.label for _, group in targets for cell in group}
        if any(cell.label not in planned for cell in cells):
            targets.append(("requested", cells))
    return cells, targets, steps, "paper-benchmark", args.out or DEFAULT_OUT


def _run(args, cells, name, out) -> int:
    """Run the cells; the number of runs that raised."""
    from studies.benchmark.reproduce import RUN_ORDER, open_benchmark, single_threaded
    from studies.study.executors import make_executor
    from studies.study.schedule import parse_shard, run_study

    shard = parse_shard(args.shard)
    study, folder = open_benchmark(cells, out, name=name,
                                   description=f"plan {args.plan}" if args.plan else "")
    with single_threaded():  # before the executor: the workers it starts inherit it
        executor = make_executor(jobs=args.jobs, scheduler=args.scheduler,
                                 dask_local=args.dask_local)
        finished = False
        try:
            outcome = run_study(study, folder, executor, shard=shard,
                                progress=not args.no_progress, order=RUN_ORDER)
            finished = True
        finally:
            executor.close(wait=finished)   # interrupted: running cells keep their checkpoints
    done = len(outcome.cells) - len(outcome.errors)
    print(f"paper-benchmark: {done} of {len(outcome.cells)} runs done ({outcome.skipped} "
          f"already), {len(outcome.failed)} failed runs, {len(outcome.errors)} errors; records "
          f"in {folder.records_dir()}", file=sys.stderr)
    for error in outcome.errors[:5]:
        print(f"  error: {error.error}", file=sys.stderr)
    return len(outcome.errors)


def _notes(args, out: Path) -> list[str]:
    """How to continue and rebuild (the same text whether the invocation ran or not)."""
    flags = "--quick" if args.quick else (f"--steps {args.steps}" if args.steps else "")
    flags += "" if args.cnn_dtype == "float32" else f" --cnn-dtype {args.cnn_dtype}"
    where = "" if out in (DEFAULT_OUT, QUICK_OUT) else " --out DIR"
    stage = "" if args.quick else " --plan first"
    return ["", f"Continue a stage (a rerun skips the runs done): `nrto reproduce "
                f"paper-benchmark{stage} {flags}{where} --jobs N`; other machines: add "
                f"`--shard I/N` and copy their `records/` here. Rebuild these files from the "
                f"records alone: `nrto reproduce paper-benchmark {flags}{where} "
                f"--report-only`.".replace("  ", " ")]


def paper_benchmark_command(args) -> int:
    """Run the parsed ``reproduce paper-benchmark`` (see the module docstring)."""
    from studies.benchmark.reproduce import write_benchmark_outputs
    from studies.study.spec import StudyError

    prog = "nrto reproduce paper-benchmark"
    errors = 0
    try:
        cells, targets, steps, name, out = _selection(args)
        errors = 0 if args.report_only else _run(args, cells, name, out)
        outputs = write_benchmark_outputs(out, steps=steps, targets=targets,
                                          cnn_dtype=args.cnn_dtype, notes=_notes(args, out))
    except (StudyError, ValueError) as error:
        if getattr(args, "debug", False):
            raise
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_ERRORS if errors else EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (rerun to continue)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(outputs.report)
    return EXIT_ERRORS if errors else EXIT_OK
