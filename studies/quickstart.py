"""``make run``: the whole pipeline on one task in a few minutes (``python -m studies.quickstart``).

On ``michell_centered_both_32x64_0.12`` (SIMP penalty p = 3) it optimizes the paper's CNN (seed 0)
and the pixel model with L-BFGS for 100 steps (objective evaluations), then analyses both runs
with :mod:`studies.analysis`:

* the Hessian spectrum (SLQ, 3 runs x 50 Lanczos steps) at the start and at the end;
* the spectra of the L-BFGS matrix ``B`` (rebuilt from the stored correction pairs) and of the true
  Hessian at iterate 10, with the same SLQ settings, so that they compare;
* the loss on the straight line from the start to the end;
* the loss on a plane through the end spanned by two filter-normalized random directions, with
  the stored trajectory projected onto it;
* the trajectory metrics of the stored iterates.

What is stored: the pixel model keeps every iterate, gradient and correction pair. The CNN
(567,553 parameters, 4.5 MB per float64 vector) records every 10th iterate (and iterate 10) with
its gradient and the correction pairs up to iterate 10, which the analyses need; once they are
analysed these ~40 vectors (~190 MB) are dropped from the file (``studies.store.drop_arrays``;
the run's attribute ``dropped_arrays`` says so), which keeps ``x``, every loss history, the
designs and all analyses, so the file stays near 12 MB. ``--keep-vectors`` keeps them.

Output: ``results/quickstart.h5`` (the runs and their analyses; built in a temporary folder and
renamed over an earlier quickstart file only when complete) and ``results/quickstart/*.png``.
It prints where they are and a summary table. Options shrink the job (the tests use them)::

    python -m studies.quickstart --problem mbb_beam_16x8_0.5 --steps 6 --grid 3 --slq-steps 4 \\
        --out /tmp/quick.h5
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["main"]

_PROBLEM = "michell_centered_both_32x64_0.12"
_MODELS = ("cnn", "pixel")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studies.quickstart",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default=_PROBLEM, help=f"task name (default {_PROBLEM})")
    parser.add_argument("--steps", type=int, default=100,
                        help="L-BFGS budget in objective evaluations (default 100)")
    parser.add_argument("--grid", type=int, default=21, help="surface points per axis (21)")
    parser.add_argument("--slq-runs", type=int, default=3, help="SLQ start vectors (3)")
    parser.add_argument("--slq-steps", type=int, default=50, help="Lanczos steps per run (50)")
    parser.add_argument("--compare-at", type=int, default=10,
                        help="iterate of the L-BFGS matrix vs Hessian comparison (10)")
    parser.add_argument("--points", type=int, default=51, help="interpolation points (51)")
    parser.add_argument("--models", nargs="+", choices=_MODELS, default=list(_MODELS))
    parser.add_argument("--out", type=Path, default=Path("results/quickstart.h5"),
                        help="results file (default results/quickstart.h5); figures go to the "
                             "folder of the same name without .h5")
    parser.add_argument("--keep-vectors", action="store_true",
                        help="keep the CNN's stored iterates, gradients and pairs (~190 MB at the "
                             "default size) instead of dropping them once analysed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _problem(name: str) -> dict:
    """RunConfig fields of a catalogued task, or of ``{family}_{W}x{H}_{volfrac}`` at any size."""
    from studies.runner import ConfigurationError, problem_fields

    try:
        return problem_fields(name)
    except ConfigurationError:
        match = re.fullmatch(r"(\w+?)_(\d+)x(\d+)_(\d*\.?\d+)", name)
        if match is None:
            raise
        family, width, height, volume_fraction = match.groups()
        return problem_fields(family, (int(width), int(height)), float(volume_fraction))


def _configs(args) -> list:
    from solvers.result import RecordOptions
    from studies.store import RunConfig

    problem = _problem(args.problem)
    records = {
        "cnn": RecordOptions(iterates_every=10, iterates_at=(args.compare_at,),
                             pairs_until=args.compare_at),
        "pixel": RecordOptions(iterates_every=1),
    }
    return [RunConfig(model=model, optimizer="lbfgs", steps=args.steps, seed=0, penal=3.0,
                      record=records[model], **problem)
            for model in args.models]


def _say(text: str) -> None:
    from tqdm import tqdm
    tqdm.write(text, file=sys.stderr)


def _analyse(path: Path, run_id: str, figures: Path, args, progress_on: bool) -> dict:
    """All analyses of one run; returns the records by short name."""
    from studies import analysis

    analyzer = analysis.RunAnalyzer(path, run_id)
    model = analyzer.run.config.model
    last = analyzer.run.result.iterations
    compare = min(args.compare_at, last)
    slq = {"runs": args.slq_runs, "steps": args.slq_steps, "seed": 0}
    jobs = {
        "hessian_init": lambda p: analyzer.spectrum(at="init", progress=p, **slq),
        "hessian_final": lambda p: analyzer.spectrum(at="final", progress=p, **slq),
        "hessian_compare": lambda p: analyzer.spectrum(at=compare, progress=p, **slq),
        "lbfgs_compare": lambda p: analyzer.spectrum(at=compare, operator="lbfgs", progress=p,
                                                     **slq),
        "interpolation": lambda p: analyzer.interpolation(points=args.points, progress=p),
        "surface": lambda p: analyzer.surface(directions="filter", grid=args.grid, progress=p),
        "trajectory": lambda p: analyzer.trajectory(),
    }
    records = {}
    for name, job in jobs.items():
        if name == "hessian_compare" and compare == last:  # the same as the final spectrum
            records[name] = records["hessian_final"]
            continue
        with analysis.progress_bar(f"{model} {name}", enabled=progress_on) as progress:
            records[name] = job(progress)
    where = {0: "start", last: "end"}
    analysis.draw_spectra(
        {"Hessian at the start (iterate 0)": records["hessian_init"],
         f"Hessian at the end (iterate {last})": records["hessian_final"]},
        figures / f"{model}-spectra-start-end.png",
        title=f"{model}: Hessian spectral density, {args.slq_runs} x {args.slq_steps} SLQ")
    analysis.draw_spectra(
        {f"Hessian at iterate {compare}": records["hessian_compare"],
         f"L-BFGS matrix B at iterate {compare}": records["lbfgs_compare"]},
        figures / f"{model}-spectra-hessian-vs-lbfgs-k{compare}.png",
        title=f"{model}: true Hessian vs L-BFGS matrix at iterate {compare}"
              + (f" (the {where[compare]})" if compare in where else ""))
    for name in ("interpolation", "surface", "trajectory"):
        analysis.draw(records[name], figures / f"{model}-{name}.png")
    return records


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(cell).rjust(width) if i else str(cell).ljust(width)
                               for i, (cell, width) in enumerate(zip(row, widths))).rstrip()
                     for row in [header, *rows])


def _number(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.4g}"


def _relative(excess: float, reference: float) -> str:
    """``excess / reference`` as a percentage; "none" when there is none."""
    if not (math.isfinite(excess) and math.isfinite(reference) and reference > 0):
        return "-"
    return "none" if excess <= 0 else f"{100 * excess / reference:.3g}%"


def _summary(results: dict, path: Path, figures: Path, seconds: float) -> str:
    import numpy as np

    from studies.store import ResultsFile

    rows = {row.run_id: row for row in ResultsFile(path).runs()}
    run_rows, spectrum_rows = [], []
    for run_id, records in results.items():
        row = rows[run_id]
        parameters = records["hessian_final"].settings["dimension"]
        surface = records["surface"].surface.losses
        line = records["interpolation"].interpolation.losses
        centre = surface[surface.shape[0] // 2, surface.shape[1] // 2]
        run_rows.append([row.config.model, run_id, f"{parameters:,}", str(row.iterations),
                         str(row.evaluations), _number(row.best_loss), _number(row.final_loss),
                         _relative(float(np.nanmax(line)) - max(line[0], line[-1]),
                                   max(line[0], line[-1])),
                         _relative(centre - float(np.nanmin(surface)), centre)])
        for name in ("hessian_init", "hessian_final", "hessian_compare", "lbfgs_compare"):
            record = records[name]
            low, high = record.extremes
            spectrum_rows.append([row.config.model, "Hessian" if record.operator == "hessian"
                                  else "L-BFGS B", str(record.iterate), _number(low),
                                  _number(high), _number(record.trace)])
    from studies.outputs import describe_size

    lines = [
        f"quickstart finished in {seconds:.0f} s",
        f"results file: {path} ({describe_size(path)}; nrto inspect {path}; analyses under "
        f"/runs/<id>/analysis)",
        f"figures:      {figures}/ ({len(list(figures.glob('*.png')))} PNG files)",
        "",
        _table(run_rows, ["model", "run", "parameters", "iterations", "evaluations",
                          "best loss", "final loss", "line barrier", "lower on plane"]),
        "line barrier: how far the loss on the straight line start -> end rises above its "
        "higher end;\nlower on plane: how far the lowest point of the filter-direction surface "
        "lies below the final loss\n(both relative to that loss; none: the line falls all the "
        "way, the end is the plane's lowest point)",
        "",
        _table(spectrum_rows, ["model", "operator", "iterate", "lambda_min", "lambda_max",
                               "trace (SLQ)"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the quickstart; returns the exit status (0, or 1 if a run failed)."""
    args = _parser().parse_args(argv)
    for name in ("steps", "grid", "slq_runs", "slq_steps", "points"):
        if getattr(args, name) < 1:
            _parser().error(f"--{name.replace('_', '-')} must be >= 1")
    started = time.perf_counter()
    from studies.threads import configure_threads, configured_threads

    if configured_threads() is None:  # as nrto does: every core for TensorFlow, start-up quiet
        configure_threads()
    from studies.plotting import plot_runs
    from studies.runner import ConfigurationError, RunTask, run_many
    from studies.store import ResultsFile, drop_arrays

    try:
        configs = _configs(args)
    except ConfigurationError as error:
        _parser().error(str(error))

    from studies.outputs import OutputError, check_output, replace_with

    try:  # before any work: the results file and the figure folder
        out = check_output(args.out, create_folder=True)
        check_output(out.parent / out.stem / "runs.png", create_folder=True)
    except OutputError as error:
        _parser().error(str(error))
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = out.parent / out.stem
    figures.mkdir(exist_ok=True)
    progress_on = not args.no_progress
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}-building-") as folder:
        building = Path(folder) / out.name
        _say(f"optimizing {', '.join(args.models)} on {args.problem} with L-BFGS "
             f"({args.steps} evaluations each) into {out}")
        outcomes = run_many([RunTask(config, building) for config in configs],
                            progress=progress_on, checkpoint_every=0)
        failed = [o for o in outcomes if o.error or o.run_id is None]
        if failed:
            for outcome in failed:
                print(f"quickstart: {outcome.label} failed: {outcome.error}", file=sys.stderr)
            return 1
        results = {}
        for outcome in outcomes:
            _say(f"analysing {outcome.run_id} {outcome.label}")
            results[outcome.run_id] = _analyse(building, outcome.run_id, figures, args,
                                               progress_on)
        store = ResultsFile(building)
        plot_runs([store.read(run_id) for run_id in results], figures / "runs.png")
        if not args.keep_vectors:
            for run_id in results:
                if store.read(run_id).config.model == "cnn":
                    drop_arrays(building, run_id, ("iterates", "s_pairs"))
        replace_with(building, out)  # same folder: atomic; an earlier quickstart file is replaced
    print(_summary(results, out, figures, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
