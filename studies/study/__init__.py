"""Studies: declarative sweeps of optimization runs that resume exactly and run anywhere.

A study spec (:mod:`~studies.study.spec`) expands into cells with stable keys; each cell runs in a
worker (:mod:`~studies.study.execute`) that checkpoints into its own run file
(:mod:`~studies.study.runfile`) and leaves a compact record (:mod:`~studies.study.records`). The
driver (:mod:`~studies.study.schedule`) runs the cells on an executor
(:mod:`~studies.study.executors`: this process, local processes, Dask); the tuning stage
(:mod:`~studies.study.tune`) runs hyperopt's TPE through the same path; reports
(:mod:`~studies.study.report`) and the consolidated ``xarray.Dataset``
(:mod:`~studies.study.consolidate`) read compact records only. The command line is
:mod:`~studies.study.cli` (``nrto study run|status|report|tune``).
"""
from .consolidate import losses_dataset
from .execute import CellOutcome, run_cell
from .executors import DaskExecutor, InlineExecutor, LocalExecutor, make_executor
from .records import CompactRecord, StudyFolder
from .schedule import StudyRun, in_shard, parse_shard, run_study
from .spec import Cell, Study, StudyError, expand, load_study
from .tune import tune_study, tuned_values

__all__ = [
    "Cell",
    "CellOutcome",
    "CompactRecord",
    "DaskExecutor",
    "InlineExecutor",
    "LocalExecutor",
    "Study",
    "StudyError",
    "StudyFolder",
    "StudyRun",
    "expand",
    "in_shard",
    "load_study",
    "losses_dataset",
    "make_executor",
    "parse_shard",
    "run_cell",
    "run_study",
    "tune_study",
    "tuned_values",
]
