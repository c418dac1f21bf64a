"""The paper's 116-task benchmark (Hoyer, Sohl-Dickstein & Greydanus 2019): its run cells, its
analysis, its figures and its result files.

* :mod:`studies.benchmark.spec`: the run cells (tasks x methods x seeds) and their settings;
* :mod:`studies.benchmark.analysis`: the notebook's reductions on the consolidated losses;
* :mod:`studies.benchmark.figures`: the CDF figure, relative error against step, design grids;
* :mod:`studies.benchmark.report`: the CSV files and ``REPORT.md``;
* :mod:`studies.benchmark.outputs`: all of them from the consolidated losses in one call.
"""
from studies.benchmark.analysis import (
    CDF_THRESHOLDS, EVALUATION_STEP, GROUPS, LARGE_ELEMENTS, METHODS, SAMPLES, at_step,
    best_so_far, cdf, consolidate, cpu_hours, forward_fill, fraction_below,
    projected_cpu_hours_per_seed, reduce_losses, running_minimum, size_groups, summary,
    typical_seeds, win_counts)
from studies.benchmark.figures import plot_cdf, plot_designs, plot_error_against_step
from studies.benchmark.outputs import BenchmarkOutputs, write_outputs
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
    "at_step",
    "benchmark_cells",
    "best_so_far",
    "cdf",
    "cell_counts",
    "consolidate",
    "cpu_hours",
    "forward_fill",
    "fraction_below",
    "issue_plan",
    "method_settings",
    "plot_cdf",
    "plot_designs",
    "plot_error_against_step",
    "projected_cpu_hours_per_seed",
    "quick_cells",
    "reduce_losses",
    "running_minimum",
    "select_tasks",
    "size_groups",
    "summary",
    "typical_seeds",
    "win_counts",
    "write_outputs",
    "write_report",
    "write_seeds",
    "write_step_table",
    "write_summary",
]
