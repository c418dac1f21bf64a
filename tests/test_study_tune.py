"""The tuning stage: TPE finds a 1-D grid search's optimum, fails diverged trials instead of
crashing, continues an interrupted tuning with the same trials, and feeds the evaluation cells."""
import math

import numpy as np
import pytest

from solvers import optimize
from studies.study import InlineExecutor, Study, StudyFolder, expand, run_study
from studies.study.spec import Cell
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


def test_a_damaged_trials_file_is_replayed_from_the_trial_records(tuned, tmp_path):
    """A trials file broken from outside (a bad merge) stops read-only commands with a clear
    error; the tuning driver moves it aside and replays the same trials from the trial cells'
    records, computing none of them again."""
    import shutil

    from studies.study.spec import StudyError

    study, folder, _ = tuned
    copy = StudyFolder(tmp_path / "copy")
    shutil.copytree(folder.path, copy.path)
    (group,) = tune_groups(study)
    path = copy.tune_dir / group.file_name
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(StudyError, match="damaged trials file .* replays its trials"):
        tuned_values(study, copy)
    records = {p: p.stat().st_mtime_ns for p in copy.records_dir("tune").glob("*.json")}

    class NoComputing(InlineExecutor):
        def submit(self, fn, cell, folder_path, **settings):
            assert copy.finished(Cell.from_dict(cell)), "a trial cell was computed again"
            return super().submit(fn, cell, folder_path, **settings)

    tune_study(study, copy, NoComputing(), progress=False)
    assert path.read_bytes() == good
    assert path.with_name(path.name + ".damaged").read_bytes() == good[: len(good) // 2]
    assert {p: p.stat().st_mtime_ns for p in copy.records_dir("tune").glob("*.json")} == records


def test_a_group_whose_trials_all_fail_is_reported_not_left_waiting(tmp_path, capsys):
    """Steps of 10**2.5 and more overflow on the quadratic: the group has no tuned value, and
    `run` and `status` say so (with the remedy) instead of showing its cells as waiting."""
    import json

    from studies.study.cli import main
    from studies.study.report import study_status
    from studies.study.tune import untuned_groups

    spec = {**SPEC, "tune": {**SPEC["tune"], "trials": 3, "ranges": {"pixel": [2.5, 3.0]}}}
    path, out = tmp_path / "spec.json", tmp_path / "out"
    path.write_text(json.dumps(spec))
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "warning: tuning toy/quadratic/pixel/p3/GD: all 3 trials failed" in err, err
    assert "widen tune.ranges" in err
    study, folder = Study.from_dict(spec), StudyFolder(out)
    assert [g.id for g in untuned_groups(study, folder)] == ["toy/quadratic/pixel/p3/GD"]
    tune = study_status(out)["tune"]
    assert (tune["waiting_cells"], tune["untuned_cells"]) == (0, 1)
    assert tune["untuned_groups"] == ["toy/quadratic/pixel/p3/GD"]
    assert main(["status", str(out)]) == 0
    assert "every trial failed in 1 groups" in capsys.readouterr().out


def test_a_trial_that_finds_the_disk_full_stops_the_tuning_and_is_not_a_failed_trial(
        tmp_path, monkeypatch):
    """A record that cannot be written is not a diverged step size: the stage stops, and the
    trial is not stored (TPE would avoid that step forever after); a rerun continues."""
    import errno
    import os

    from studies.study.records import StudyFolder as Folder
    from studies.study.spec import StudyError
    from studies.study.tune import _load

    spec = {**SPEC, "tune": {**SPEC["tune"], "trials": 3}}
    study, folder = Study.from_dict(spec), StudyFolder(tmp_path)
    real, calls = Folder.write_record, []

    def full_after_two(self, record):
        calls.append(record.cell.key)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, record)

    monkeypatch.setattr(Folder, "write_record", full_after_two)
    with pytest.raises(StudyError, match="stopped, the disk is full: .*No space left on device; "
                                         "the trials finished so far are kept"):
        tune_study(study, folder, InlineExecutor(), progress=False)
    group = tune_groups(study)[0]
    assert len(_load(folder, group)) == 1  # the first trial (2 seeds) only
    monkeypatch.undo()
    history = tune_study(study, folder, InlineExecutor(), progress=False)
    assert [t["status"] for t in history[group.id]] == ["ok"] * 3
