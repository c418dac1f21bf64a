"""``nrto reproduce thesis`` (a target of :mod:`studies.reproduce`).

It runs the studies that the chosen items need (resuming from their records), the tuning stage
with ``--tune``, then builds the items and ``REPORT.md``.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_thesis_target", "reproduce_thesis"]

DEFAULT_OUT = Path("results/thesis")


def reproduce_thesis(items: Sequence[str] | None = None, *, out: Path = DEFAULT_OUT,
                     quick: bool = False, jobs: int = 1, scheduler: str | None = None,
                     tune: bool = False, upsampling: str = "transpose", run: bool = True,
                     progress: bool = True, force: bool = False) -> dict:
    """Run what ``items`` need and build them (all items when None).

    Args:
        items: item names (see ``--list``).
        out: the results folder.
        quick: toy scale.
        jobs, scheduler: the executor (``--jobs N`` local processes, or a Dask scheduler).
        tune: also run the hyperopt stage of the tuning studies the items read.
        upsampling: the CNN variant.
        force: take over study folders written by another version of a spec (the protocol
            changed): their spec is replaced and the records of unchanged cells are kept.
        run: run the studies (False: only build from the records there are).

    Returns:
        item name -> :class:`~studies.thesis.items.Section`.

    Raises:
        StudyError: an unknown item, a folder of another spec, or an executor problem.
    """
    from solvers.names import did_you_mean
    from studies.study import StudyError, make_executor, run_study, tune_study, tuned_values

    from .items import EVALUATED_AFTER_TUNING, ITEMS, Context
    from .report import write_report

    names = list(items) if items else list(ITEMS)
    unknown = [n for n in names if n not in ITEMS]
    if unknown:
        hint = (len(unknown) == 1 and did_you_mean(unknown[0], ITEMS)
                or f"known: {', '.join(ITEMS)} (see --list)")
        raise StudyError(f"unknown item{'s' * (len(unknown) > 1)} "
                         f"{', '.join(map(repr, unknown))}; {hint}")
    ctx = Context(Path(out), quick=quick, upsampling=upsampling, progress=progress)
    keys = list(dict.fromkeys(k for n in names for k in ITEMS[n].studies))
    if run and keys:
        executor = make_executor(jobs=jobs, scheduler=scheduler)
        finished = False
        try:
            for key in keys:
                study, folder = ctx.study(key), ctx.folder(key)
                folder.check_owner(study, force=force)
                if study.tune is not None and tune:
                    tune_study(study, folder, executor, progress=progress)
                if study.tune is None or (tune and key in EVALUATED_AFTER_TUNING):
                    # the tuning studies' best trials are their records: nothing to rerun
                    values = tuned_values(study, folder) if study.tune is not None else None
                    outcome = run_study(study, folder, executor, progress=progress,
                                        tuned=values)
                    for error in outcome.errors:
                        print(f"error: {error.error}", file=sys.stderr)
            finished = True
        finally:
            executor.close(wait=finished)   # interrupted: running cells keep their checkpoints
    ctx.forget()
    sections = {}
    for name in names:
        sections[name] = ITEMS[name].run(ctx)
    total = 0.0
    for key in dict.fromkeys(k for item in ITEMS.values() for k in item.studies):
        if ctx.folder(key).spec_path.exists():
            total += ctx.status(key).cpu_s
    intro = (f"Compute of all study records so far (each run counted once, tuning trials "
             f"included): {total / 3600:.3f} CPU-hours.")
    command = "nrto reproduce thesis" + " --quick" * quick
    if upsampling != "transpose":
        command += f" --upsampling {upsampling}"
        intro = (f"**This folder is the rerun with the paper's {upsampling} CNN** "
                 f"(`--upsampling {upsampling}`, issue 9 item 2) in place of the thesis's "
                 "transposed-convolution one; pixel runs still start from the transposed CNN's "
                 "output. The thesis's own results, and the `conclusions` item that reads both "
                 "CNNs, are in the REPORT.md of the folder above.\n\n" + intro)
    write_report(ctx.out, ITEMS, intro=intro, studies_cpu_s=total, command=command)
    return sections


def add_thesis_target(subparsers) -> None:
    parser = subparsers.add_parser(
        "thesis", help="the 2021 thesis's Chapter 3 and Appendices B-C (issue 9)",
        description="Run the studies the chosen items need (resuming from their records) and "
                    "write the tables, figures and REPORT.md under --out.")
    parser.add_argument("--items", nargs="+", action="extend", metavar="ITEM",
                        help="items to build (default: all; --list shows them)")
    parser.add_argument("--list", action="store_true", help="list the items and exit")
    parser.add_argument("--quick", action="store_true",
                        help="toy scale (seconds to minutes), written to results/thesis-quick")
    executor = parser.add_mutually_exclusive_group()
    executor.add_argument("--jobs", type=int, default=1, help="local worker processes")
    executor.add_argument("--scheduler", metavar="ADDR", help="a Dask scheduler address")
    parser.add_argument("--tune", action="store_true",
                        help="also run the hyperopt stage (Tables B.1-B.3; our CNN steps)")
    parser.add_argument("--upsampling", choices=("transpose", "bilinear"), default="transpose",
                        help="the CNN: the thesis's transposed convolutions (default) or the "
                             "paper's bilinear architecture")
    parser.add_argument("--out", type=Path, help="results folder (default results/thesis, "
                        "results/thesis-quick with --quick, .../paper-architecture for bilinear)")
    parser.add_argument("--no-run", "--report-only", dest="no_run", action="store_true",
                        help="build the items from the records there are; run nothing")
    parser.add_argument("--force", action="store_true",
                        help="use study folders written by another version of a spec (their "
                             "spec is replaced; records of unchanged cells are kept)")
    parser.set_defaults(handler=_run_thesis)


def _run_thesis(args: argparse.Namespace) -> int:
    from studies.study import StudyError

    from .items import ITEMS

    if args.list:
        for name, item in ITEMS.items():
            print(f"{name:12s} {item.title}")
        return 0
    out = args.out
    if out is None:
        out = Path("results/thesis-quick" if args.quick else "results/thesis")
        if args.upsampling == "bilinear":
            out = out / "paper-architecture"
    prog = "nrto reproduce thesis"
    if args.jobs < 1:
        print(f"{prog}: error: --jobs must be >= 1; got {args.jobs}", file=sys.stderr)
        return 2
    try:
        sections = reproduce_thesis(args.items, out=out, quick=args.quick, jobs=args.jobs,
                                    scheduler=args.scheduler, tune=args.tune,
                                    upsampling=args.upsampling, run=not args.no_run,
                                    force=args.force)
    except StudyError as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    for name, section in sections.items():
        trials = f"{section.trials_done}/{section.trials_total} tuning trials, " \
            if section.trials_total else ""
        print(f"{name}: {section.cells_done}/{section.cells_total} cells, {trials}"
              f"{', '.join(section.files)}")
    print(f"report: {out / 'REPORT.md'}")
    return 0
