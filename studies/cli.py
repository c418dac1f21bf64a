"""The ``nrto`` command line: list problems, run optimizations, inspect and plot results.

Commands::

    nrto problems [FAMILY] [--json]
    nrto optimize --problem NAME --model cnn|pixel --optimizer METHOD [METHOD ...] --steps N
                  [--seed S ...] [--penal P] [--filter-radius R] [--size WxH --volfrac F]
                  [--option KEY=VALUE ...] [--model-option KEY=VALUE ...] [--jobs J] --out FILE.h5
    nrto resume FILE.h5 [--run ID ...] [--jobs J]
    nrto inspect FILE.h5 [--run ID] [--json]
    nrto plot FILE.h5 [--run ID ...] --out FIGURE.png
    nrto spectrum FILE.h5 --run ID [--at init|final|K] [--operator hessian|lbfgs]
                  [--runs 3 --steps 50] [--seed S] [--memory M] [--out FIGURE.png]
    nrto surface FILE.h5 --run ID [--directions filter|pca|hessian] [--grid 21] [--extent E]
                 [--at final] [--seed S] [--out FIGURE.png]
    nrto interpolate FILE.h5 --run ID [--from init|K] [--to final|K] [--points 51]
    nrto trajectory FILE.h5 --run ID [--out FIGURE.png]

The four analysis commands (``studies.analysis``) store their result in the same file under
``/runs/<id>/analysis/<kind>/<key>``, the key encoding the settings (an earlier analysis with the
same settings is replaced; one with other settings is kept beside it), and draw a figure, by
default ``<file folder>/<file stem>/<run id>-<kind>-<key>.png``.

Exit status: 0 success; 1 a run failed (it raised, or ended with status ``failed``, e.g.
diverged; it is stored so); 2 a usage error (unknown name, bad size or value, an output that is
not a writable regular file, a damaged results file, a run that another process is computing),
reported as ONE line on stderr without a traceback (``--debug`` shows it), checked before any
work so that nothing is written; 130 interrupted by Ctrl-C or SIGTERM (the running runs are
stored as partial; ``nrto resume`` continues them).

Every output goes through :mod:`studies.outputs` (symbolic links followed, special and read-only
files refused, modes kept); a command that writes a file reports it with its size on stderr.

Progress bars and messages go to stderr; tables and JSON go to stdout.
"""
from __future__ import annotations

import argparse
import ast
import itertools
import json
import math
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A problem with what the user asked for; reported as one line, exit status 2."""


class _ExtendList(argparse.Action):
    """``action="extend"`` of every ``nrto`` parser: a list option given twice keeps both lists
    (``--seed 0 1 --seed 2`` is seeds 0, 1, 2), where argparse's plain ``nargs="+"`` would keep
    only the last. Unlike argparse's own "extend", the first use replaces the default instead
    of appending to it (``--designs-at 5`` is [5], not the default [0, -1] plus 5)."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        given = [] if current is None or current is self.default else list(current)
        setattr(namespace, self.dest, given + list(values))


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (no usage block) with exit status 2.

    Values that start with ``-`` followed by a digit, a point or ``inf``/``nan`` (``-5x10``,
    ``-inf``, ``-.5``) are values, not options, so that their own check reports them (argparse
    would say "expected one argument"). Its ``action="extend"`` is :class:`_ExtendList`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)
        self.register("action", "extend", _ExtendList)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an unrecognized argument is reported by the (sub)command it was
        given to (``nrto spectrum: error: ... (see nrto spectrum --help)``), not by ``nrto``."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self
            for token in sys.argv[1:] if args is None else args:
                commands = [a for a in parser._actions
                            if isinstance(a, argparse._SubParsersAction)]
                if commands and token in commands[0].choices:
                    parser = commands[0].choices[token]
                elif not str(token).startswith("-"):
                    break
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


# -- argument types --------------------------------------------------------------------------------


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT with positive integers, e.g. "
                                         f"64x32; got {text!r}")
    return int(parts[0]), int(parts[1])


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0; got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
    return value


def _volume_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a volume fraction in (0, 1]; got {text!r}")
    return value


def _seed(text: str) -> int:
    from studies.config import SEED_LIMIT

    if not text.isdigit() or int(text) >= SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**32) = [0, {SEED_LIMIT - 1}]; "
                                         f"got {text!r}")
    return int(text)


_MAX_EXTENT = 1e6


def _extent(text: str) -> float:
    value = _positive_float(text)
    if value > _MAX_EXTENT:
        raise argparse.ArgumentTypeError(f"expected an extent up to {_MAX_EXTENT:g} (the loss of "
                                         f"points that far out overflows); got {text!r}")
    return value


def _where(text: str):
    from studies.analysis import AnalysisError, parse_where
    try:
        return parse_where(text)
    except AnalysisError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _key_value(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as a Python/JSON literal (number, bool, list), else a
    string: ``learning_rate=0.01`` -> 0.01, ``memory=1`` -> 1, ``upsampling=transpose``."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. learning_rate=0.01; "
                                         f"got {text!r}")
    raw = raw.strip()
    words = {"true": True, "false": False, "none": None, "null": None}
    if raw.lower() in words:
        return key, words[raw.lower()]
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw


# -- the parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``nrto`` argument parser (subcommands problems, optimize, resume, inspect, plot)."""
    from solvers.optim.registry import REGISTRY

    parser = _Parser(prog="nrto", description="Neurally reparameterized topology optimization: "
                     "run optimizations and look at their results.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    from studies.study.cli import add_study_commands
    add_study_commands(commands, _COMMANDS)  # nrto study run|tune|status|report
    from studies.reproduce import add_reproduce_commands
    add_reproduce_commands(commands, _COMMANDS)  # nrto reproduce thesis|paper-benchmark
    problems = commands.add_parser("problems", help="list the benchmark tasks")
    problems.add_argument("family", nargs="?", help="only the tasks of this family")
    problems.add_argument("--json", action="store_true", help="print JSON instead of a table")

    optimize = commands.add_parser("optimize", help="run optimizations into a results file")
    optimize.add_argument("--problem", required=True, metavar="NAME",
                          help="task name (see `nrto problems`), or a family with --size")
    optimize.add_argument("--size", type=_size, metavar="WxH",
                          help="build the task's family at this size (width x height elements)")
    optimize.add_argument("--volfrac", type=_volume_fraction, metavar="F",
                          help="volume fraction in (0, 1] with --size (default: the task's); it "
                               "must leave at least one element of material")
    optimize.add_argument("--model", required=True, nargs="+", action="extend",
                          choices=("cnn", "pixel"),
                          help="cnn: the paper's neural reparameterization; pixel: one density "
                               "per element (several: one run each)")
    optimize.add_argument("--optimizer", required=True, nargs="+", action="extend",
                          metavar="METHOD", help=f"{', '.join(REGISTRY)} (several: one run each)")
    optimize.add_argument("--steps", required=True, type=_positive_int, metavar="N",
                          help="budget of each run (as solvers.optimize counts it)")
    optimize.add_argument("--seed", nargs="+", action="extend", type=_seed, default=[0],
                          metavar="S",
                          help="seed(s) in [0, 2**32) of the CNN initialization and stochastic "
                               "methods (default 0)")
    optimize.add_argument("--penal", type=_positive_float, default=3.0, metavar="P",
                          help="SIMP penalty exponent p (default 3)")
    optimize.add_argument("--filter-radius", type=_positive_float, default=2.0, metavar="R",
                          help="cone filter radius in elements (default 2)")
    optimize.add_argument("--option", type=_key_value, action="append", default=[],
                          metavar="KEY=VALUE", help="optimizer option (repeatable)")
    optimize.add_argument("--model-option", type=_key_value, action="append", default=[],
                          metavar="KEY=VALUE",
                          help="model option, e.g. upsampling=transpose (repeatable)")
    optimize.add_argument("--iterates-every", type=_non_negative_int, default=0, metavar="K",
                          help="store every K-th iterate (0: none)")
    optimize.add_argument("--iterates-at", type=_non_negative_int, nargs="+", action="extend",
                          default=[], metavar="K",
                          help="also store these iterates (e.g. for a spectrum there)")
    optimize.add_argument("--designs-at", type=int, nargs="+", action="extend", default=[0, -1],
                          metavar="K", help="iterates whose design is stored (-1: the last)")
    pairs = optimize.add_mutually_exclusive_group()
    pairs.add_argument("--no-pairs", action="store_true",
                       help="do not store L-BFGS correction pairs")
    pairs.add_argument("--pairs-until", type=_non_negative_int, default=None, metavar="K",
                       help="store only the correction pairs up to iterate K (enough for the "
                            "L-BFGS matrix at K)")
    pairs.add_argument("--all-pairs", action="store_true",
                       help="store every correction pair. Default: all pairs for pixel models, "
                            "none for the CNN, whose pairs (two parameter vectors per "
                            "iteration) would make recording cost more than the run")
    _add_run_arguments(optimize)
    optimize.add_argument("--out", required=True, type=Path, metavar="FILE.h5",
                          help="results file (created, or runs are added)")

    resume = commands.add_parser("resume", help="continue partial (interrupted) runs")
    resume.add_argument("file", type=Path, metavar="FILE.h5")
    resume.add_argument("--run", nargs="+", action="extend", metavar="ID",
                        help="runs to resume (default: all partial runs)")
    _add_run_arguments(resume)

    inspect = commands.add_parser("inspect", help="table of the runs in a results file")
    inspect.add_argument("file", type=Path, metavar="FILE.h5")
    inspect.add_argument("--run", metavar="ID", help="show one run in detail")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")

    plot = commands.add_parser("plot", help="draw designs and loss curves")
    plot.add_argument("file", type=Path, metavar="FILE.h5")
    plot.add_argument("--run", nargs="+", action="extend", metavar="ID",
                      help="runs to draw (default: all)")
    plot.add_argument("--out", required=True, type=Path, metavar="FIGURE.png")

    spectrum = _analysis_parser(commands, "spectrum", "SLQ eigenvalue density of the Hessian or "
                                "of the L-BFGS matrix at an iterate")
    spectrum.add_argument("--at", type=_where, default="final", metavar="init|final|K",
                          help="the iterate (default: final)")
    spectrum.add_argument("--operator", choices=("hessian", "lbfgs"), default="hessian",
                          help="exact Hessian, or the L-BFGS matrix B from the stored pairs")
    spectrum.add_argument("--runs", type=_positive_int, default=3, metavar="R",
                          help="random start vectors (default 3)")
    spectrum.add_argument("--steps", type=_positive_int, default=50, metavar="M",
                          help="Lanczos steps per run (default 50)")
    spectrum.add_argument("--seed", type=_seed, default=0, metavar="S",
                          help="seed of the random start vectors (default 0)")
    spectrum.add_argument("--memory", type=_positive_int, default=None, metavar="M",
                          help="L-BFGS memory (default: the run's own)")

    surface = _analysis_parser(commands, "surface", "loss on a plane through an iterate, with "
                               "the trajectory where the plane holds it (pca; other planes only "
                               "if it lies within 5 percent of its reach from them)")
    surface.add_argument("--directions", choices=("filter", "pca", "hessian"), default="filter",
                         help="filter-normalized random (default), trajectory PCA, or top-2 "
                              "Hessian eigenvectors")
    surface.add_argument("--grid", type=_positive_int, default=21, metavar="G",
                         help="points per axis (default 21)")
    surface.add_argument("--extent", type=_extent, default=None, metavar="E",
                         help="coordinates run from -E to E (default: 1 for filter directions; "
                              "the trajectory's reach along each axis for pca; the larger reach "
                              "on both axes for hessian, so that both unit eigenvectors are "
                              "drawn to the same scale)")
    surface.add_argument("--at", type=_where, default="final", metavar="init|final|K",
                         help="the centre (default: final)")
    surface.add_argument("--seed", type=_seed, default=0, metavar="S",
                         help="seed of the filter-normalized random directions (default 0)")

    interpolate = _analysis_parser(commands, "interpolate", "loss on the straight line between "
                                   "two iterates")
    interpolate.add_argument("--from", dest="start", type=_where, default="init",
                             metavar="init|K", help="alpha = 0 (default: init)")
    interpolate.add_argument("--to", dest="end", type=_where, default="final",
                             metavar="final|K", help="alpha = 1 (default: final)")
    interpolate.add_argument("--points", type=_positive_int, default=51, metavar="P",
                             help="points on the line (default 51)")

    _analysis_parser(commands, "trajectory", "metrics of the stored iterates and gradients")
    return parser


def _analysis_parser(commands, name: str, text: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=text, description=text + "; stored in the file "
                                 "under the run, and drawn.")
    parser.add_argument("file", type=Path, metavar="FILE.h5")
    parser.add_argument("--run", required=True, metavar="ID", help="run id, number or label")
    parser.add_argument("--out", type=Path, metavar="FIGURE.png",
                        help="the figure (default: <file folder>/<file stem>/<run>-<analysis>"
                             ".png)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=_positive_int, default=1, metavar="J",
                        help="worker processes running configurations in parallel")
    parser.add_argument("--checkpoint-every", type=_non_negative_int, default=50, metavar="K",
                        help="store a partial snapshot every K iterates (0: first and last only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--ignore-memory-check", action="store_true",
                        help="run even if the estimated memory of the runs exceeds what the "
                             "machine has available (MemAvailable of /proc/meminfo)")


# -- commands --------------------------------------------------------------------------------------


def _print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def _loss(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.6g}"


def _command_problems(args) -> int:
    from solvers.problems import FAMILIES, TASKS

    tasks = list(TASKS)
    if args.family is not None:
        if args.family not in FAMILIES:
            from solvers.names import did_you_mean
            hint = did_you_mean(args.family, FAMILIES) or f"families: {', '.join(FAMILIES)}"
            raise UsageError(f"unknown family {args.family!r}; {hint}")
        tasks = [task for task in tasks if task.family == args.family]
    rows = [{"name": t.name, "family": t.family, "width": t.width, "height": t.height,
             "volume_fraction": t.volume_fraction, "params": dict(t.params)} for t in tasks]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    _print_table([[r["name"], r["family"], f"{r['width']}x{r['height']}",
                   f"{r['volume_fraction']:g}",
                   " ".join(f"{k}={v}" for k, v in r["params"].items())] for r in rows],
                 ["name", "family", "size", "volfrac", "params"])
    return EXIT_OK


def _record_options(args, model: str):
    """What a run records: the flags, with the default for correction pairs per model."""
    from solvers.result import RecordOptions

    keep_pairs = not args.no_pairs and (
        args.all_pairs or args.pairs_until is not None or model == "pixel")
    return RecordOptions(iterates_every=args.iterates_every, iterates_at=tuple(args.iterates_at),
                         designs_at=tuple(args.designs_at), pairs=keep_pairs,
                         pairs_until=args.pairs_until)


def _check_memory_of_size(args) -> None:
    """With --size, refuse runs that cannot fit in memory before the problem is even built (a
    5000x5000 mesh takes seconds and a gigabyte to build)."""
    from studies import resources

    if args.size is None or args.ignore_memory_check:
        return
    width, height = args.size
    estimates = [resources.estimate_memory(
        width=width, height=height, model=model, optimizer=optimizer, steps=args.steps,
        filter_radius=args.filter_radius, record=_record_options(args, model),
        options=dict(args.option), model_options=dict(args.model_option),
        label=f"{args.problem} {width}x{height}/{model}/{optimizer}/seed{seed}")
        for model, optimizer, seed in itertools.product(args.model, args.optimizer, args.seed)]
    resources.check_memory(estimates, jobs=args.jobs)


def _optimize_configs(args) -> list:
    from studies.runner import ConfigurationError, problem_fields, validate_config
    from studies.store import RunConfig

    for flag, values in (("--model", args.model), ("--optimizer", args.optimizer),
                         ("--seed", args.seed)):
        repeated = [str(value) for value in dict.fromkeys(values) if values.count(value) > 1]
        if repeated:
            raise UsageError(f"{flag} lists {', '.join(repeated)} more than once, which would "
                             f"compute the same runs twice; give each value once")
    try:
        _check_memory_of_size(args)
        problem = problem_fields(args.problem, args.size, args.volfrac,
                                 check_memory=not args.ignore_memory_check)
        configs = [RunConfig(model=model, optimizer=optimizer, steps=args.steps, seed=seed,
                             penal=args.penal, filter_radius=args.filter_radius,
                             options=dict(args.option), model_options=dict(args.model_option),
                             record=_record_options(args, model), **problem)
                   for model, optimizer, seed in
                   itertools.product(args.model, args.optimizer, args.seed)]
        for config in configs:
            validate_config(config)
    except (ConfigurationError, ValueError) as error:
        raise UsageError(str(error)) from None
    return configs


def _report(outcome) -> None:
    from tqdm import tqdm
    where = outcome.run_id or "(not stored)"
    if outcome.error:
        text = f"{where} {outcome.label}: FAILED: {outcome.error}"
    else:
        text = (f"{where} {outcome.label}: {outcome.status}"
                f"{' (partial)' if outcome.partial else ''}, {outcome.iterations} iterations, "
                f"final {_loss(outcome.final_loss)}, best {_loss(outcome.best_loss)}")
    tqdm.write(text, file=sys.stderr)


def _run_tasks(tasks, args, path: Path) -> int:
    from studies.runner import ConfigurationError, RunsInterrupted, run_many

    try:
        outcomes = run_many(tasks, jobs=args.jobs, progress=not args.no_progress,
                            checkpoint_every=args.checkpoint_every, report=_report,
                            check_memory=not args.ignore_memory_check)
    except RunsInterrupted as stop:
        stored = sorted(o.run_id for o in stop.outcomes if o.run_id and o.partial)
        hint = (f"; resume with: nrto resume {path} --run {' '.join(stored)}" if stored else "")
        print(f"nrto: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigurationError as error:
        raise UsageError(str(error)) from None
    if path.exists():
        from studies.outputs import describe_size
        print(f"wrote {path} ({describe_size(path)})", file=sys.stderr)
    failed = any(o.error or o.status == "failed" for o in outcomes)
    return EXIT_RUN_FAILED if failed else EXIT_OK


def _command_optimize(args) -> int:
    from studies.runner import RunTask
    from studies.store import check_writable

    configs = _optimize_configs(args)
    check_writable(args.out)  # before any work: the file, its folder, its lock
    return _run_tasks([RunTask(config, args.out) for config in configs], args, args.out)


def _command_resume(args) -> int:
    from studies.liveness import live_holder
    from studies.runner import RunTask
    from studies.store import ResultsFile, check_writable

    store = ResultsFile(args.file)
    if args.run:
        ids = [store.resolve(key) for key in args.run]
    check_writable(args.file)  # also refuses a file with a damaged run
    summaries = {row.run_id: row for row in store.runs()}
    if args.run:
        finished = [run_id for run_id in ids if not summaries[run_id].partial]
        if finished:
            raise UsageError(f"{', '.join(finished)} finished already (not partial); "
                             f"nothing to resume")
    else:
        ids = [run_id for run_id, row in summaries.items() if row.partial]
        if not ids:
            print(f"nrto resume: no partial runs in {args.file}", file=sys.stderr)
            return EXIT_OK
    for run_id in ids:
        holder = live_holder(args.file, run_id)
        if holder is not None:
            raise UsageError(f"{run_id} is still being computed ({holder.describe()}); "
                             f"resume refuses a live run: wait for it, or stop that process")
    tasks = [RunTask(summaries[run_id].config, args.file, resume_id=run_id) for run_id in ids]
    return _run_tasks(tasks, args, args.file)


def _command_inspect(args) -> int:
    import dataclasses

    from studies.store import ResultsFile

    from studies.liveness import live_holder

    store = ResultsFile(args.file)
    if args.run is not None:
        return _inspect_one(store, args.run, args.json)
    damaged = store.damaged()
    rows = store.runs(skip_damaged=True)
    holders = {row.run_id: live_holder(args.file, row.run_id) for row in rows if row.partial}
    if args.json:  # "live": who computes a partial run now (pid, host, started), else null
        print(json.dumps([{**row.to_dict(), "live": dataclasses.asdict(holders[row.run_id])
                           if holders.get(row.run_id) else None} for row in rows], indent=2))
    elif not rows and not damaged:
        print(f"{args.file}: no runs")
    elif rows:
        def state(row) -> str:
            if not row.partial:
                return row.status
            return "running" if holders[row.run_id] else "partial"

        _print_table([[r.run_id, r.config.problem, r.config.model, r.config.optimizer,
                       str(r.config.seed), f"{r.iterations}/{r.config.steps}",
                       str(r.evaluations), _loss(r.final_loss), _loss(r.best_loss), state(r)]
                      for r in rows],
                     ["run", "problem", "model", "optimizer", "seed", "iters/steps", "evals",
                      "final loss", "best loss", "status"])
    for run_id, problem in damaged.items():
        print(f"nrto inspect: error: {args.file}: {run_id} is damaged: {problem}",
              file=sys.stderr)
    return EXIT_USAGE if damaged else EXIT_OK


def _inspect_one(store, key: str, as_json: bool) -> int:
    import dataclasses

    import numpy as np

    run = store.read(key)
    result = run.result
    arrays = {field.name: list(np.shape(getattr(result, field.name)))
              for field in dataclasses.fields(result)
              if isinstance(getattr(result, field.name), np.ndarray)}
    summary = next(row for row in store.runs(skip_damaged=True)
                   if row.run_id == run.run_id).to_dict()
    detail = {**summary, "message": result.message, "converged": result.converged,
              "options_used": result.options, "skipped_pairs": result.skipped_pairs,
              "provenance": {**dataclasses.asdict(run.provenance),
                             "versions": dict(run.provenance.versions)},
              "parameters": sum(spec.size for spec in run.parameter_specs) or len(result.x),
              "arrays": arrays,
              "analyses": [stored.name for stored in store.analyses(run.run_id)]}
    if as_json:
        print(json.dumps(detail, indent=2))
        return EXIT_OK
    provenance = detail.pop("provenance")
    lines = [(k, v) for k, v in detail.items() if k not in ("config", "arrays", "analyses")]
    lines += [(f"config.{k}", v) for k, v in detail["config"].items()]
    dirty = " (dirty)" if provenance["git_dirty"] else ""
    lines += [("git", f"{provenance['git_revision']}{dirty} on {provenance['hostname']}"),
              ("versions", ", ".join(f"{k} {v}" for k, v in provenance["versions"].items())),
              ("arrays", ", ".join(f"{name} {tuple(shape)}" for name, shape in arrays.items())),
              ("analyses", ", ".join(detail["analyses"]) or "none")]
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:>{width}}: {v}")
    return EXIT_OK


def _command_plot(args) -> int:
    from studies.plotting import plot_runs
    from studies.store import ResultsFile

    from studies.outputs import check_output, describe_size

    store = ResultsFile(args.file)
    ids = [store.resolve(key) for key in args.run] if args.run else store.run_ids()
    if not ids:
        raise UsageError(f"{args.file} holds no runs to plot")
    check_output(args.out)
    _check_figure_format(args.out)
    runs = [store.read(run_id) for run_id in ids]
    try:
        plot_runs(runs, args.out)
    except OSError as error:
        raise UsageError(f"cannot write {args.out}: {error.strerror or error}") from None
    except ValueError as error:  # e.g. an image format matplotlib does not know
        raise UsageError(f"cannot write {args.out}: {error}") from None
    print(f"wrote {args.out} ({len(runs)} run{'s' if len(runs) > 1 else ''}, "
          f"{describe_size(args.out)})", file=sys.stderr)
    return EXIT_OK


def _command_analysis(args) -> int:
    """spectrum, surface, interpolate, trajectory: compute, store, draw, print a summary."""
    from studies import analysis
    from studies.outputs import check_output, describe_size
    from studies.store import check_writable

    check_writable(args.file)  # before any work: the results file, the figure
    if args.out is not None:
        check_output(args.out)
        _check_figure_format(args.out)
    else:  # the default figure folder <file folder>/<file stem>/ (created when drawing)
        check_output(analysis.figure_path(args.file, "run", "kind/key"), create_folder=True)
    try:
        analyzer = analysis.RunAnalyzer(args.file, args.run)
        kind = analysis.analysis_for_command(args.command)
        options = {name: getattr(args, name) for name in kind.command_options}
        if analyzer.evaluation_note and args.command != "trajectory":  # trajectory: stored data
            print(f"nrto {args.command}: {analyzer.evaluation_note}", file=sys.stderr)
        with analysis.progress_bar(f"{analyzer.run_id} {args.command}",
                                   enabled=not args.no_progress) as progress:
            record = analyzer.analyse(kind.kind, progress=progress, **options)
    except analysis.AnalysisError as error:
        raise UsageError(str(error)) from None
    try:
        figure = analysis.draw(record, args.out)
    except ValueError as error:  # e.g. an image format matplotlib does not know
        raise UsageError(f"cannot write {args.out}: {error}") from None
    print(analysis.summary(record))
    print(f"stored {args.file}:/runs/{record.run_id}/analysis/{record.name} "
          f"({describe_size(args.file)}); figure {figure}", file=sys.stderr)
    return EXIT_OK


def _check_figure_format(path: Path) -> None:
    """Refuse, before any work, a figure name whose format matplotlib cannot write."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lstrip(".").lower() not in formats:
        raise UsageError(f"cannot write {path}: unknown figure format {path.suffix or '(none)'!r}"
                         f"; use one of {', '.join('.' + f for f in sorted(formats))}")


_COMMANDS = {"problems": _command_problems, "optimize": _command_optimize,
             "resume": _command_resume, "inspect": _command_inspect, "plot": _command_plot,
             "spectrum": _command_analysis, "surface": _command_analysis,
             "interpolate": _command_analysis, "trajectory": _command_analysis}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nrto`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return int(exit_.code or 0)
    if args.command is None:
        print(f"nrto: error: choose a command: {', '.join(_COMMANDS)} (see nrto --help)",
              file=sys.stderr)
        return EXIT_USAGE
    from studies.outputs import OutputError
    from studies.runner import interrupt_on_sigterm
    from studies.store import StoreError
    from studies.threads import configure_threads, configured_threads

    if configured_threads() is None:  # one run may use every core (a study pins its cells to 1)
        configure_threads()           # and TensorFlow's start-up lines are dropped

    previous_handler = signal.getsignal(signal.SIGTERM)
    interrupt_on_sigterm()
    prog = f"nrto {args.command}"
    try:
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # e.g. `nrto problems | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (UsageError, StoreError, OutputError, OSError) as error:
        if args.debug:
            raise
        message = str(error)
        if isinstance(error, OSError) and error.strerror:
            message = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
        print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as error:  # what no estimate foresaw: one line, not a traceback
        if args.debug:
            raise
        print(f"{prog}: error: out of memory ({' '.join(str(error).split()) or 'MemoryError'}); "
              f"use smaller settings or a machine with more memory", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


if __name__ == "__main__":
    sys.exit(main())
