"""``nrto reproduce TARGET``: one sub-command per published study this project reproduces.

:data:`REPRODUCE_TARGETS` maps a target's name to the function that adds its parser to the
group's subparsers; each target's parser sets ``handler`` (the function that runs it). Targets:
``thesis`` (:mod:`studies.thesis`, issue 9) and ``paper-benchmark`` (:mod:`studies.benchmark`,
issue 10). A new target is one entry here.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

__all__ = ["REPRODUCE_TARGETS", "add_reproduce_commands"]


def _thesis(subparsers) -> None:
    from studies.thesis.cli import add_thesis_target

    add_thesis_target(subparsers)


def _paper_benchmark(subparsers) -> None:
    from studies.benchmark.cli import add_paper_benchmark, paper_benchmark_command

    add_paper_benchmark(subparsers).set_defaults(handler=paper_benchmark_command)


REPRODUCE_TARGETS: dict[str, Callable] = {"thesis": _thesis, "paper-benchmark": _paper_benchmark}
"""Target name -> function adding its sub-parser (with a ``handler`` default) to ``reproduce``."""


def add_reproduce_commands(subparsers, commands: dict | None = None
                           ) -> argparse.ArgumentParser:
    """Add ``reproduce`` with every target of :data:`REPRODUCE_TARGETS` to ``subparsers``.

    Args:
        subparsers: an argparse subparsers action (``nrto``'s commands).
        commands: the caller's command table; when given, ``commands["reproduce"]`` is set to
            the handler that runs the chosen target.
    """
    parser = subparsers.add_parser("reproduce", help="reproduce a publication's tables and "
                                   "figures", description="Reproduce a publication's results.")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True,
                                    parser_class=type(parser))
    for add in REPRODUCE_TARGETS.values():
        add(targets)
    if commands is not None:
        commands["reproduce"] = _run_target
    return parser


def _run_target(args: argparse.Namespace) -> int:
    out = getattr(args, "out", None)
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        print(f"nrto reproduce {args.target}: error: --out {out} is not a folder (it is a file or "
              "a device); give the results folder, new or one this command wrote before",
              file=sys.stderr)
        return 2
    return args.handler(args)
