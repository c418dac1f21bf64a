"""``nrto study``: run, continue, inspect, report and tune studies.

Commands::

    nrto study run SPEC [--out DIR] [--jobs N | --scheduler ADDR | --dask-local N]
                   [--shard I/N] [--force] [--no-progress]
    nrto study tune SPEC [--out DIR] [executor options] [--shard I/N] [--force] [--max-trials K]
    nrto study status DIR [--json]
    nrto study report DIR [--per-seed]
    nrto study export RUN_FILE [RUN_FILE ...] --out FILE.h5

``run`` first runs the tuning stage when the spec has one, then the evaluation cells; rerunning
it continues where it stopped. ``--out`` defaults to ``results/studies/<name>``. Exit status: 0
done (cells whose optimizer diverged are results, not errors); 1 some cells raised (no record;
rerun to retry); 2 bad input (one line on stderr, nothing written); 130 interrupted.

Everything that can be checked is checked before anything is written: the spec, the shard, the
folder (a folder written by another spec is refused unless ``--force``) and the executor (a
scheduler that does not answer within 3 s).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_study_commands", "main"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return int(text)


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_positive, default=1, metavar="N",
                       help="local worker processes (default 1: this process)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--dask-local", type=_positive, metavar="N",
                       help="start a Dask LocalCluster of N single-threaded worker processes")
    parser.add_argument("--shard", metavar="I/N", help="run the I-th of N deterministic shares")
    parser.add_argument("--force", action="store_true",
                        help="use a folder written by another spec (its spec is replaced)")
    parser.add_argument("--out", metavar="DIR", help="results folder "
                        "(default results/studies/<name>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--ignore-memory-check", action="store_true",
                        help="start cells even when their estimated memory (the largest, one "
                             "per local worker) exceeds the available memory")


def add_study_commands(subparsers, commands: dict | None = None) -> argparse.ArgumentParser:
    """Add ``study`` with its subcommands to ``subparsers`` (an argparse subparsers action).

    Args:
        subparsers: where to add the ``study`` parser.
        commands: the caller's command table (name -> handler of the parsed arguments); when
            given, ``commands["study"]`` is set to the handler.

    Returns:
        The ``study`` parser.
    """
    study = subparsers.add_parser("study", help="declarative sweeps: run, tune, status, report",
                                  description=__doc__.split("\n\n")[0])
    sub = study.add_subparsers(dest="study_command", metavar="STUDY_COMMAND")
    run = sub.add_parser("run", help="run (or continue) a study")
    run.add_argument("spec", help="study spec (.toml, .json or .py)")
    _add_executor_options(run)
    tune = sub.add_parser("tune", help="run (or continue) a study's tuning stage only")
    tune.add_argument("spec", help="study spec with a [tune] section")
    _add_executor_options(tune)
    tune.add_argument("--max-trials", type=_positive, metavar="K",
                      help="stop each group after K trials (continue later)")
    status = sub.add_parser("status", help="cells done, failed, pending; tuning progress")
    status.add_argument("dir", help="the study's results folder")
    status.add_argument("--json", action="store_true", help="print JSON")
    report = sub.add_parser("report", help="write REPORT.md, tables (CSV) and figures")
    report.add_argument("dir", help="the study's results folder")
    report.add_argument("--per-seed", action="store_true",
                        help="also draw the raw loss curve of every seed")
    export = sub.add_parser("export", help="copy run files into a results file that nrto "
                                           "inspect, plot, resume and the analyses read")
    export.add_argument("run_files", nargs="+", metavar="RUN_FILE",
                        help="a study's run files (<study folder>/runs/<cell key>.h5)")
    export.add_argument("--out", required=True, metavar="FILE.h5",
                        help="results file (created, or the runs are added)")
    if commands is not None:
        commands["study"] = study_command
    return study


def _executor(args):
    from .executors import make_executor

    return make_executor(jobs=args.jobs, scheduler=args.scheduler, dask_local=args.dask_local)


def _prepare(args):
    """Spec, folder, shard and executor, all checked before anything is written."""
    from .records import StudyFolder
    from .schedule import parse_shard
    from .spec import expand, load_study

    study = load_study(args.spec)
    if study.tune is None:
        expand(study)  # the grid's errors now, not after the executor started
    else:
        from .tune import tune_groups
        tune_groups(study)
    shard = parse_shard(args.shard)
    out = Path(args.out) if args.out else Path("results") / "studies" / study.name
    folder = StudyFolder(out)
    folder.check_owner(study, args.force)
    return study, folder, shard, _executor(args)


def _command_run(args) -> int:
    from .schedule import run_study
    from .tune import tune_study, tuned_values

    study, folder, shard, executor = _prepare(args)
    finished = False
    try:
        tuned = None
        if study.tune is not None:
            tune_study(study, folder, executor, shard=shard, progress=not args.no_progress,
                       check_memory=not args.ignore_memory_check)
            tuned = tuned_values(study, folder)
            _warn_untuned(study, folder)
        outcome = run_study(study, folder, executor, shard=shard, tuned=tuned,
                            progress=not args.no_progress,
                            check_memory=not args.ignore_memory_check)
        finished = True
    finally:
        executor.close(wait=finished)
    done = len(outcome.cells) - len(outcome.errors)
    print(f"study {study.name}: {done} of {len(outcome.cells)} cells done "
          f"({outcome.skipped} already), {len(outcome.failed)} failed runs, "
          f"{len(outcome.errors)} errors; results in {folder.path}", file=sys.stderr)
    return EXIT_ERRORS if outcome.errors else EXIT_OK


def _command_tune(args) -> int:
    from .tune import _best_trial, tune_study

    study, folder, shard, executor = _prepare(args)
    if study.tune is None:
        executor.close()
        raise _usage(f"{args.spec} has no [tune] section")
    finished = False
    try:
        history = tune_study(study, folder, executor, shard=shard,
                             progress=not args.no_progress, max_trials=args.max_trials,
                             check_memory=not args.ignore_memory_check)
        finished = True
    finally:
        executor.close(wait=finished)
    for group, trials in history.items():
        best = _best_trial(trials)
        print(f"{group}: {len(trials)} trials, best "
              + (f"log10 = {best['x']:g} (loss {best['loss']:.6g})" if best else "none"))
    _warn_untuned(study, folder)
    return EXIT_OK


def _warn_untuned(study, folder) -> None:
    """One warning line per tuning group whose trials all failed (its cells never run)."""
    from .tune import untuned_groups

    for group in untuned_groups(study, folder):
        print(f"warning: tuning {group.id}: all {group.trials} trials failed (no finite median "
              f"loss after {group.steps} steps for log10 {study.tune.option} in [{group.low:g}, "
              f"{group.high:g}]), so its evaluation cells are not run; widen tune.ranges or "
              f"raise tune.trials", file=sys.stderr)


def _usage(message: str):
    from .spec import StudyError
    return StudyError(message)


def _command_status(args) -> int:
    from .report import study_status

    status = study_status(args.dir)
    if args.json:
        print(json.dumps(status, indent=1, sort_keys=True))
        return EXIT_OK
    print(f"study {status['study']}: {status['done']} of {status['cells']} cells done, "
          f"{status['failed']} failed runs, {status['partial']} partial, {status['pending']} "
          f"pending; {status['cpu_hours']:.3g} CPU-hours")
    if status["tune"]:
        t = status["tune"]
        print(f"tuning: {t['trials_done']} of {t['trials']} trials in {t['groups']} groups; "
              f"{t['waiting_cells']} evaluation cells wait for it")
        if t["untuned_groups"]:
            print(f"tuning: every trial failed in {len(t['untuned_groups'])} groups "
                  f"({', '.join(t['untuned_groups'])}): their {t['untuned_cells']} evaluation "
                  f"cells are not run (widen tune.ranges or raise tune.trials)")
    for row in status["methods"]:
        print(f"  {row['method']:<16} {row['done']:>5}/{row['cells']:<5} failed {row['failed']}")
    return EXIT_OK


def _command_report(args) -> int:
    from .report import write_report

    path = write_report(args.dir, per_seed=args.per_seed)
    print(path)
    return EXIT_OK


def _command_export(args) -> int:
    from .export import export_runs

    for run in export_runs(args.run_files, args.out):
        print(f"{run.run_file} -> {args.out} {run.run_id} ({run.label})")
    return EXIT_OK


_HANDLERS = {"run": _command_run, "tune": _command_tune, "status": _command_status,
             "report": _command_report, "export": _command_export}


def study_command(args) -> int:
    """Run the parsed ``study`` subcommand; errors of the input are one line with status 2."""
    from .spec import StudyError

    prog = f"nrto study {args.study_command or ''}".strip()
    if args.study_command is None:
        print(f"{prog}: error: choose one of {', '.join(_HANDLERS)} (see nrto study --help)",
              file=sys.stderr)
        return EXIT_USAGE
    from studies.outputs import OutputError
    from studies.store import StoreError

    try:
        return _HANDLERS[args.study_command](args)
    except (StudyError, OutputError, StoreError) as error:  # e.g. a full disk: one line
        if getattr(args, "debug", False):
            raise
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (rerun to continue)", file=sys.stderr)
        return EXIT_INTERRUPTED


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m studies.study ...``: the same commands without the rest of ``nrto``."""
    parser = _Parser(prog="nrto")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    add_study_commands(commands)
    try:
        args = parser.parse_args(["study", *(sys.argv[1:] if argv is None else argv)])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    import signal

    from studies.runner import interrupt_on_sigterm

    previous = signal.getsignal(signal.SIGTERM)
    interrupt_on_sigterm()   # as `nrto`: SIGTERM stops the study like Ctrl-C
    try:
        return study_command(args)
    finally:
        signal.signal(signal.SIGTERM, previous)
