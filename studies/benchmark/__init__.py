"""The paper's 116-task benchmark (Hoyer, Sohl-Dickstein & Greydanus 2019): its run cells, its
analysis, its figures and its result files.

* :mod:`studies.benchmark.spec`: the run cells (tasks x methods x seeds) and their settings;
* :mod:`studies.benchmark.analysis`: the notebook's reductions on the consolidated losses;
* :mod:`studies.benchmark.figures`: the CDF figure, relative error against step, design grids;
* :mod:`studies.benchmark.report`: the CSV files and ``REPORT.md``;
* :mod:`studies.benchmark.outputs`: all of them from the consolidated losses in one call;
* :mod:`studies.benchmark.engine`: the cells as a study of the engine (:mod:`studies.study`);
* :mod:`studies.benchmark.reproduce`: run cells, read their records, write the results;
* :mod:`studies.benchmark.cli`: ``nrto reproduce paper-benchmark``.
"""
from studies.benchmark.analysis import (
    CDF_THRESHOLDS, EVALUATION_STEP, GROUPS, LARGE_ELEMENTS, METHODS, SAMPLES, at_step,
    best_so_far, cdf, consolidate, cpu_hours, forward_fill, fraction_below,
    projected_cpu_hours_per_seed, reduce_losses, running_minimum, size_groups, summary,
    typical_seeds, win_counts)
from studies.benchmark.engine import benchmark_cell, benchmark_study, engine_cell
from studies.benchmark.figures import plot_cdf, plot_designs, plot_error_against_step
from studies.benchmark.outputs import BenchmarkOutputs, write_outputs
from studies.benchmark.reproduce import (
    BenchmarkRecords, evaluation_step, issue_targets, open_benchmark, read_records,
    run_benchmark, single_threaded, write_benchmark_outputs)
from studies.benchmark.report import (
    write_report, write_seeds, write_step_table, write_summary)
from studies.benchmark.spec import (
    BenchmarkCell, benchmark_cells, cell_counts, issue_plan, method_settings, quick_cells,
    select_tasks)

__all__ = [
    "CDF_THRESHOLDS",
    "EVALUATION_STEP",
    "GROUPS",
    "LARGE_ELEMENTS",
    "METHODS",
    "SAMPLES",
    "BenchmarkCell",
    "BenchmarkOutputs",
    "BenchmarkRecords",
    "at_step",
    "benchmark_cell",
    "benchmark_cells",
    "benchmark_study",
    "best_so_far",
    "cdf",
    "cell_counts",
    "consolidate",
    "cpu_hours",
    "engine_cell",
    "evaluation_step",
    "forward_fill",
    "fraction_below",
    "issue_plan",
    "issue_targets",
    "method_settings",
    "open_benchmark",
    "plot_cdf",
    "plot_designs",
    "plot_error_against_step",
    "projected_cpu_hours_per_seed",
    "quick_cells",
    "read_records",
    "reduce_losses",
    "run_benchmark",
    "running_minimum",
    "select_tasks",
    "single_threaded",
    "size_groups",
    "summary",
    "typical_seeds",
    "win_counts",
    "write_benchmark_outputs",
    "write_outputs",
    "write_report",
    "write_seeds",
    "write_step_table",
    "write_summary",
]
