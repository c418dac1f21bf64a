"""One tiny study (2 problems x 2 methods x 2 seeds, pixel model, 16x8, 8 steps) run in this
process, by the local spawned pool, by a Dask LocalCluster and as the union of two shards: the
deterministic parts of the compact records must be identical bit for bit."""
import pytest

from studies.study import (DaskExecutor, InlineExecutor, LocalExecutor, Study, StudyFolder,
                           expand, run_study)
from studies.study.schedule import in_shard, parse_shard
from studies.study.spec import StudyError

TINY = {
    "name": "tiny",
    "problems": [{"name": "mbb_beam", "size": [16, 8], "volume_fraction": 0.5, "label": "A"},
                 {"name": "cantilever_beam_full", "size": [16, 8], "volume_fraction": 0.4,
                  "label": "B"}],
    "models": ["pixel"], "seeds": [0, 1], "steps": [8], "checkpoint_every": 3,
    "methods": [{"name": "LBFGS", "optimizer": "lbfgs"}, {"name": "OC", "optimizer": "oc"}],
}


def _records(folder: StudyFolder, study: Study) -> dict[str, str]:
    return {cell.key: folder.read_record(cell).deterministic_json() for cell in expand(study)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    study = Study.from_dict(TINY)
    folder = StudyFolder(tmp_path_factory.mktemp("inline"))
    run = run_study(study, folder, InlineExecutor(), progress=False)
    assert not run.errors and len(run.outcomes) == 8
    return study, _records(folder, study)


def test_records_are_complete_and_differ_between_cells(reference):
    study, records = reference
    assert len(records) == 8 and len(set(records.values())) == 8


def test_provenance_names_the_processor_and_blas_and_stays_out_of_the_bits(tmp_path):
    """Records are the same bytes on one machine only: the provenance says which machine
    (processor and BLAS kernels), and the deterministic part does not depend on it."""
    from studies.study.execute import machine

    study = Study.from_dict({**TINY, "seeds": [0], "problems": TINY["problems"][:1]})
    folder = StudyFolder(tmp_path)
    run_study(study, folder, InlineExecutor(), progress=False)
    for cell in expand(study):
        record = folder.read_record(cell)
        assert record.provenance["machine"] == machine()
        assert set(machine()) == {"cpu", "blas"} and all(machine().values())
        assert "machine" not in record.deterministic_json()


def test_cells_run_seed_by_seed_or_problem_by_problem_in_grid_order(tmp_path):
    # a study stopped part way must leave every row with the same seeds done
    study = Study.from_dict({
        "name": "order", "problems": ["toy/rosenbrock", {"name": "toy/quadratic", "size": 3}],
        "seeds": [0, 1, 2], "steps": [3],
        "methods": [{"name": "LBFGS", "optimizer": "lbfgs"},
                    {"name": "GD", "optimizer": "gd", "options": {"learning_rate": 1e-3}}]})
    cells = expand(study)
    run = run_study(study, StudyFolder(tmp_path), InlineExecutor(), progress=False)
    ran = [next(c for c in cells if c.key == o.key) for o in run.outcomes]
    assert [c.seed for c in ran] == [0] * 4 + [1] * 4 + [2] * 4
    grid = [(c.problem, c.method) for c in cells if c.seed == 0]
    assert [(c.problem, c.method) for c in ran[:4]] == grid

    # problem by problem (the paper benchmark's order): whole problems first, seeds within
    run = run_study(study, StudyFolder(tmp_path / "by-problem"), InlineExecutor(),
                    progress=False, order="problem")
    ran = [next(c for c in cells if c.key == o.key) for o in run.outcomes]
    first, second = cells[0].problem, cells[-1].problem
    assert first != second
    assert [c.problem for c in ran] == [first] * 6 + [second] * 6
    assert [c.seed for c in ran[:6]] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(StudyError, match="order must be one of"):
        run_study(study, StudyFolder(tmp_path / "bad"), InlineExecutor(), progress=False,
                  order="random")

def test_a_full_disk_skips_run_files_and_stops_the_study_at_the_first_record(
        tmp_path, monkeypatch, capsys):
    """A run file (optional: checkpoints, the finished run) that finds no room is skipped with
    one warning; a record that finds none stops the study at once (every later cell would
    compute for nothing), keeping the records written; a rerun with room continues."""
    import errno
    import os

    import studies.study.execute
    from studies.outputs import NoSpaceError
    from studies.study.records import StudyFolder as Folder

    study = Study.from_dict({
        "name": "full", "problems": ["toy/rosenbrock"], "seeds": [0, 1, 2], "steps": [4],
        "checkpoint_every": 2, "methods": [{"name": "LBFGS", "optimizer": "lbfgs"}]})
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    written = []
    real_record = Folder.write_record

    def record_until_full(self, record):
        if len(written) == 2:
            raise full
        written.append(record.cell.seed)
        return real_record(self, record)

    def no_room(path, *args, **kwargs):  # what write_checkpoint raises on a full disk
        raise NoSpaceError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(Folder, "write_record", record_until_full)
    monkeypatch.setattr(studies.study.execute, "write_checkpoint", no_room)
    folder = StudyFolder(tmp_path)
    with pytest.raises(StudyError, match="stopped, the disk is full: .*seed2: OSError: .*No "
                                         "space left on device; the cells finished so far are "
                                         "kept"):
        run_study(study, folder, InlineExecutor(), progress=False)
    assert written == [0, 1] and not list((tmp_path / "runs").glob("*"))
    err = capsys.readouterr().err
    assert err.count("not written (No space left on device); the run goes on") == 3, err
    monkeypatch.undo()
    run = run_study(study, folder, InlineExecutor(), progress=False)
    assert (run.skipped, len(run.outcomes), run.errors) == (2, 1, ())


@pytest.mark.slow  # each spawned worker imports TensorFlow (~10-25 s on a busy machine)
def test_local_pool_gives_the_same_records(reference, tmp_path):
    study, expected = reference
    folder = StudyFolder(tmp_path)
    executor = LocalExecutor(2)
    try:
        run = run_study(study, folder, executor, progress=False)
    finally:
        executor.close()
    assert not run.errors
    assert _records(folder, study) == expected


def test_local_pool_gives_the_same_records_as_this_process_on_toy_problems(tmp_path):
    study = Study.from_dict({
        "name": "toy", "problems": ["toy/rosenbrock", {"name": "toy/quadratic", "size": 5}],
        "seeds": [0, 1], "steps": [30], "checkpoint_every": 4,
        "methods": [{"name": "LBFGS", "optimizer": "lbfgs"},
                    {"name": "GD", "optimizer": "gd", "options": {"learning_rate": 1e-3}}]})
    inline = StudyFolder(tmp_path / "inline")
    run_study(study, inline, InlineExecutor(), progress=False)
    pooled = StudyFolder(tmp_path / "pool")
    executor = LocalExecutor(2)
    try:
        run = run_study(study, pooled, executor, progress=False)
    finally:
        executor.close()
    assert not run.errors and len(run.outcomes) == 8
    assert _records(pooled, study) == _records(inline, study)


def test_dask_local_cluster_gives_the_same_records(reference, tmp_path):
    study, expected = reference
    folder = StudyFolder(tmp_path)
    executor = DaskExecutor(local_workers=2, processes=False)
    try:
        run = run_study(study, folder, executor, progress=False)
    finally:
        executor.close()
    assert not run.errors
    assert _records(folder, study) == expected


def test_two_shards_partition_the_cells_and_give_the_same_records(reference, tmp_path):
    study, expected = reference
    keys = [cell.key for cell in expand(study)]
    first = {k for k in keys if in_shard(k, (1, 2))}
    second = {k for k in keys if in_shard(k, (2, 2))}
    assert first and second and not first & second and first | second == set(keys)
    folder = StudyFolder(tmp_path)
    for shard in ("1/2", "2/2"):
        run = run_study(study, folder, InlineExecutor(), shard=parse_shard(shard),
                        progress=False)
        assert {c.key for c in run.cells} == (first if shard == "1/2" else second)
    assert _records(folder, study) == expected
    # a rerun of the whole study finds every cell finished and runs nothing
    rerun = run_study(study, folder, InlineExecutor(), progress=False)
    assert rerun.skipped == 8 and not rerun.outcomes


def test_a_real_cell_resumed_from_a_checkpoint_gives_the_uninterrupted_record(reference,
                                                                              tmp_path):
    """A checkpoint written mid-run (as a killed worker leaves it) is resumed bit for bit."""
    import dataclasses

    from solvers import optimize
    from studies.study.execute import BestTracker, _objective, run_cell
    from studies.study.runfile import write_checkpoint

    study, expected = reference
    folder = StudyFolder(tmp_path)
    for cell in expand(study)[::2]:  # LBFGS and OC cells of both problems
        record = dataclasses.replace(study.record, designs_at=(0, -1))
        objective = BestTracker(_objective(cell, record))

        def stop_at_4(info):
            if info.iteration == 4:
                snapshot = info.snapshot()
                write_checkpoint(folder.run_path(cell), cell.to_dict(), snapshot, partial=True,
                                 best_x=objective.best_x, best_loss=objective.best_loss,
                                 best_evaluation=objective.best_evaluation, wall_s=0, cpu_s=0)
                raise StopIteration
        optimize(objective, cell.optimizer, steps=cell.steps, record=record,
                 callback=stop_at_4, **cell.options)
        outcome = run_cell(cell.to_dict(), str(folder.path), record=dataclasses.asdict(record))
        assert outcome.status == "max_steps" and outcome.resumed, outcome
        assert folder.read_record(cell).deterministic_json() == expected[cell.key], cell.label



def test_a_second_driver_of_the_same_study_and_shard_stops_at_once(tmp_path):
    """A forgotten background run and a new one would compute every cell twice: the second
    driver is refused, naming the first one's pid, while another shard may run beside it."""
    import os
    import subprocess
    import sys
    import textwrap

    from studies.study.tune import tune_study, tuned_values

    spec = {**TINY, "problems": ["toy/rosenbrock"], "seeds": [0],
            "methods": [{"name": "GD", "optimizer": "gd"}],
            "tune": {"methods": ["GD"], "seeds": [0], "trials": 2, "ranges": {"pixel": [-4, -2]}}}
    study, folder = Study.from_dict(spec), StudyFolder(tmp_path / "study")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from studies.study import Study, StudyFolder
        from studies.study.schedule import driving
        with driving(Study.from_dict({spec!r}), StudyFolder({str(folder.path)!r}), None):
            print("held", flush=True)
            time.sleep(300)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = rf"study 'tiny' in {folder.path} is being computed by pid {holder.pid} on host"
        with pytest.raises(StudyError, match=busy):
            tune_study(study, folder, InlineExecutor(), progress=False)
        with pytest.raises(StudyError, match=busy):
            run_study(study, folder, InlineExecutor(), progress=False, tuned={})
        assert not folder.tune_dir.exists() and not folder.records_dir().exists()
        # shards are driven separately: shard 1/1 (all the cells) runs beside the holder
        history = tune_study(study, folder, InlineExecutor(), shard=(1, 1), progress=False)
        assert [len(trials) for trials in history.values()] == [2]
    finally:
        holder.kill()
        holder.wait()
    # the kernel drops a killed holder's lock: the next driver takes over, runs, and cleans up
    run = run_study(study, folder, InlineExecutor(), progress=False,
                    tuned=tuned_values(study, folder))
    assert len(run.outcomes) == 1 and not run.errors
    assert sorted(os.listdir(folder.path / ".study.json.live")) == ["driver-1-of-1.lock",
                                                                     "driver.lock"]
