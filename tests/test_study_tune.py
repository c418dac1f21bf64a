"""The tuning stage: TPE finds a 1-D grid search's optimum, fails diverged trials instead of
crashing, continues an interrupted tuning with the same trials, and feeds the evaluation cells."""
import math

import numpy as np
import pytest

from solvers import optimize
from studies.study import InlineExecutor, Study, StudyFolder, expand, run_study
from studies.study.toy import toy_objective
from studies.study.tune import tune_groups, tune_study, tuned_values

STEPS, SEEDS, LOW, HIGH = 60, (0, 1), -3.0, 3.0
SPEC = {
    "name": "tune-toy", "problems": [{"name": "toy/quadratic", "size": 6}],
    "seeds": [5], "steps": [STEPS], "methods": [{"name": "GD", "optimizer": "gd"}],
    "tune": {"methods": ["GD"], "seeds": list(SEEDS), "trials": 30, "random_state": 3,
             "ranges": {"pixel": [LOW, HIGH]}},
}


def _grid_search():
    """The median final loss on the quniform grid, computed directly with solvers.optimize."""
    grid = np.round(np.arange(LOW, HIGH + 1e-9, 0.1), 10)
    losses = []
    for x in grid:
        finals = []
        for seed in SEEDS:
            result = optimize(toy_objective({"toy": "quadratic", "size": 6, "delay": 0.0}, seed),
                              "gd", steps=STEPS, learning_rate=float(10.0 ** x))
            ok = result.status != "failed" and math.isfinite(result.fun)
            finals.append(result.fun if ok else math.inf)
        losses.append(np.median(finals))
    return grid, np.array(losses)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    study = Study.from_dict(SPEC)
    folder = StudyFolder(tmp_path_factory.mktemp("tuned"))
    history = tune_study(study, folder, InlineExecutor(), progress=False)
    return study, folder, history


def test_tpe_finds_the_grid_optimum_and_fails_diverged_trials(tuned):
    study, folder, history = tuned
    (trials,) = history.values()
    assert len(trials) == 30
    grid, losses = _grid_search()
    assert math.isinf(losses[-1])  # the largest steps overflow: those trials must fail
    best = min((t for t in trials if t["status"] == "ok"), key=lambda t: t["loss"])
    assert abs(best["x"] - grid[np.argmin(losses)]) <= 0.2 + 1e-9
    failed = [t for t in trials if t["status"] == "fail"]
    assert failed and all(t["x"] >= 1.0 for t in failed) and all(t["loss"] is None
                                                                  for t in failed)
    # the trial's loss is the median of the seeds' final losses of its cells
    index = int(np.argmin(np.abs(grid - best["x"])))
    assert best["loss"] == pytest.approx(losses[index], rel=0, abs=0)


def test_trials_keep_their_records_not_their_run_files(tuned):
    study, folder, history = tuned
    assert study.keep_runs    # the evaluation cells keep theirs; the trials never do
    (trials,) = history.values()
    distinct = {t["x"] for t in trials}      # TPE may suggest a value twice: one cell each
    assert len(list(folder.records_dir("tune").glob("*.json"))) == len(distinct) * len(SEEDS)
    assert not list(folder.runs_dir.glob("*.h5"))


def test_an_interrupted_tuning_continues_with_the_same_trials(tuned, tmp_path):
    study, _, history = tuned
    folder = StudyFolder(tmp_path)
    partial = tune_study(study, folder, InlineExecutor(), progress=False, max_trials=11)
    assert [len(t) for t in partial.values()] == [11]
    resumed = tune_study(study, folder, InlineExecutor(), progress=False)

    def essence(trials):
        return [(t["tid"], t["x"], t["status"], t["loss"]) for t in trials]
    assert essence(*resumed.values()) == essence(*history.values())


def test_the_tuned_step_feeds_the_evaluation_cells(tuned):
    study, folder, history = tuned
    assert expand(study) == ()  # before the tuning, the tuned method's cells wait
    values = tuned_values(study, folder)
    (group,) = tune_groups(study)
    (trials,) = history.values()
    best = min((t for t in trials if t["status"] == "ok"), key=lambda t: (t["loss"], t["tid"]))
    assert values == {group.id: 10.0 ** best["x"]}
    run = run_study(study, folder, InlineExecutor(), tuned=values, progress=False)
    (cell,) = run.cells
    assert cell.seed == 5 and cell.options["learning_rate"] == 10.0 ** best["x"]
    assert folder.read_record(cell).status == "max_steps"
