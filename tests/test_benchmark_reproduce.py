"""``nrto reproduce paper-benchmark`` end to end: --quick through the engine, Dask, reruns,
--report-only, and the exact formats of the CSV files.

The CNN runs in float32 and the physics in float64, as in the paper; the cells, records and
outputs are those of the paper's settings at toy scale.
"""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from studies.benchmark.analysis import METHODS
from studies.benchmark.engine import benchmark_cell, benchmark_study, engine_cell
from studies.benchmark.reproduce import (
    filtered_volumes, open_benchmark, read_records, run_benchmark, write_benchmark_outputs)
from studies.benchmark.spec import (
    QUICK_TASKS, benchmark_cells, issue_plan, quick_cells, select_tasks)
from studies.cli import main
from studies.study.executors import DaskExecutor
from studies.study.records import CompactRecord, StudyFolder
from studies.study.spec import StudyError, expand

QUICK = ["reproduce", "paper-benchmark", "--quick", "--no-progress"]  # CNN float32, as the paper
RESULT_FILES = ("typical-step20.csv", "best-of-ensemble-step20.csv", "seeds.csv", "summary.csv",
                "REPORT.md")


def _deterministic(folder) -> dict[str, str]:
    return {path.stem: CompactRecord.from_json(path.read_text()).deterministic_json()
            for path in sorted((folder / "records").glob("*.json"))}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--quick`` run in this process (21 cells of 20 steps); its folder."""
    out = tmp_path_factory.mktemp("quick")
    assert main([*QUICK, "--out", str(out)]) == 0
    return out


def test_the_adapter_expands_to_exactly_the_cells():
    for cells in (quick_cells(), issue_plan("first"), issue_plan("small-seeds")):
        study = benchmark_study(cells)
        assert {c.key for c in expand(study)} == {engine_cell(c).key for c in cells}
    # not a grid: two cells of the first plan left out -> exclusions, still exact
    cells = issue_plan("first")
    partial = tuple(c for c in cells if c.label not in
                    {cells[0].label, cells[-1].label})
    study = benchmark_study(partial)
    assert len(study.exclude) == 2
    expanded = expand(study)
    assert len(expanded) == 462
    assert {c.key for c in expanded} == {engine_cell(c).key for c in partial}
    # the engine's cells carry the paper's labels and map back
    by_label = {c.label: c for c in partial}
    for cell in expanded[:8]:
        back = benchmark_cell(cell)
        assert back == by_label[back.label]
        assert cell.curve == "evaluation" and cell.method in METHODS
    with pytest.raises(StudyError, match="share their steps"):
        benchmark_study(benchmark_cells(QUICK_TASKS[:1], (-1,), steps=5)
                        + benchmark_cells(QUICK_TASKS[1:2], (-1,), steps=6))
    with pytest.raises(StudyError, match="no benchmark cells"):
        benchmark_study(())


def test_quick_end_to_end(quick_run):
    records = read_records(quick_run, 20, cnn_dtype="float32")
    assert len(records.records) == 21 and not records.ignored
    assert {(p, m, s) for p, m, s in records.records} == {
        (c.problem, c.method, c.seed) for c in quick_cells()}
    for file in (*RESULT_FILES, "cdf.png", "error-typical.png", "error-ensemble.png",
                 "designs.png", "study.json"):
        assert (quick_run / file).is_file(), file
    assert len(list((quick_run / "runs").glob("*.h5"))) == 21  # full run files, git-ignored
    report = (quick_run / "REPORT.md").read_text()
    assert "**21 of 21** run cells are done." in report
    assert "| quick | 21 | 21 |" in report
    assert "CPU-hours spent on the runs done" in report
    # the runs behind the values: 3 tasks; the CNN one seed each, the pixel methods two
    assert "| cnn-lbfgs | 3 | 1 | 0 |" in report
    for method in METHODS[1:]:
        assert f"| {method} | 3 | 2 | -1 0 |" in report
    assert "the two samples agree" not in report   # the pixel methods have two runs per task
    # a second invocation runs nothing and rewrites the same result files
    before = {name: (quick_run / name).read_bytes() for name in RESULT_FILES}
    assert main([*QUICK, "--out", str(quick_run)]) == 0
    assert {name: (quick_run / name).read_bytes() for name in RESULT_FILES} == before


def test_csv_formats_and_values(quick_run):
    """The exact layouts of issue 10 item 4, and values recomputed from the records by hand."""
    catalogue = select_tasks("all")
    records = read_records(quick_run, 20, cnn_dtype="float32").records

    def at20(curve):  # running minimum over the first 21 evaluations (index 0 the start)
        curve = np.asarray(curve, float)[:21]
        return float(np.nanmin(curve))

    for name, pick in (("typical-step20.csv", "typical"),
                       ("best-of-ensemble-step20.csv", "ensemble")):
        lines = (quick_run / name).read_text().split("\n")
        assert lines[0] == "problem_name,cnn-lbfgs,pixels-lbfgs,pixels-mma,pixels-oc"
        assert lines[-1] == "" and len(lines) == 1 + 116 + 1  # header, 116 rows, final newline
        rows = list(csv.reader(lines[1:-1]))
        assert [row[0] for row in rows] == list(catalogue)
        for row in rows:
            if row[0] not in QUICK_TASKS:
                assert row[1:] == ["", "", "", ""]
                continue
            for method, text in zip(METHODS, row[1:]):
                seeds = [s for (p, m, s) in records if p == row[0] and m == method]
                values = [at20(records[(row[0], method, s)].loss_per_evaluation)
                          for s in seeds]
                if pick == "typical":
                    expected = values[seeds.index(0)] if method == "cnn-lbfgs" else \
                        values[seeds.index(-1)]
                else:
                    expected = min(values)
                assert float(text) == expected and text == repr(expected)
    seeds = list(csv.reader((quick_run / "seeds.csv").read_text().splitlines()))
    assert seeds[0] == ["problem_name", "method", "seeds"] and len(seeds) == 1 + 116 * 4
    assert [(row[0], row[1]) for row in seeds[1:]] == [(t, m) for t in catalogue
                                                        for m in METHODS]
    chosen = {(row[0], row[1]): row[2] for row in seeds[1:]}
    assert chosen[(QUICK_TASKS[0], "cnn-lbfgs")] == "0"
    assert chosen[(QUICK_TASKS[0], "pixels-mma")] == "-1"
    assert chosen[("mbb_beam_96x32_0.5", "pixels-oc")] == ""
    summary = list(csv.reader((quick_run / "summary.csv").read_text().splitlines()))
    assert summary[0] == ["sample", "group", "method", "mean_relative_error", "tasks"]
    assert [tuple(row[:3]) for row in summary[1:]] == [
        (s, g, m) for s in ("typical", "ensemble") for g in ("small", "large", "all")
        for m in METHODS]
    for row in summary[1:]:
        assert row[4] == ("0" if row[1] == "large" else "3")
        assert (row[3] == "") == (row[1] == "large")
        if row[3]:
            assert float(row[3]) >= 0.0


def test_rerunning_cells_gives_the_same_records_bit_for_bit(quick_run, tmp_path):
    expected = _deterministic(quick_run)
    shutil.copytree(quick_run / "records", tmp_path / "records")
    shutil.copy(quick_run / "study.json", tmp_path / "study.json")
    # rerun a CNN, a pixel run started from the CNN's output and a constant-start run
    again = [c for c in quick_cells(cnn_dtype="float32") if c.problem == QUICK_TASKS[1]
             and (c.method, c.seed) in {("cnn-lbfgs", 0), ("pixels-lbfgs", 0),
                                        ("pixels-mma", -1)}]
    assert len(again) == 3
    for cell in again:
        (tmp_path / "records" / f"{engine_cell(cell).key}.json").unlink()
    assert main([*QUICK, "--out", str(tmp_path)]) == 0
    assert _deterministic(tmp_path) == expected


def test_a_dask_local_cluster_gives_the_same_records(quick_run, tmp_path):
    cells = [c for c in quick_cells(cnn_dtype="float32") if c.problem == QUICK_TASKS[2]
             and c.method in ("cnn-lbfgs", "pixels-oc")]  # seed 0 CNN and OC, OC at -1
    assert len(cells) == 3
    executor = DaskExecutor(local_workers=2, processes=False)
    try:
        run = run_benchmark(cells, tmp_path, executor, name="paper-benchmark-quick",
                            progress=False)
    finally:
        executor.close()
    assert not run.errors and len(run.outcomes) == 3
    expected = _deterministic(quick_run)
    got = _deterministic(tmp_path)
    assert len(got) == 3 and all(got[key] == expected[key] for key in got)


def test_report_only_from_the_records_alone(quick_run, tmp_path):
    shutil.copytree(quick_run / "records", tmp_path / "records")  # no spec, no run files
    assert main([*QUICK, "--out", str(tmp_path), "--report-only"]) == 0
    for name in RESULT_FILES:
        assert (tmp_path / name).read_bytes() == (quick_run / name).read_bytes(), name
    assert not (tmp_path / "runs").exists() and not (tmp_path / "study.json").exists()
    # records of another budget are not these results
    with pytest.raises(StudyError, match="holds no record of the benchmark at 1000 steps "
                                         r"\(21 records of other budgets or settings\)"):
        write_benchmark_outputs(tmp_path, steps=1000)


def test_filtered_volumes_of_the_final_designs(quick_run):
    """MMA and OC constrain the filtered volume (<= the fraction): their final designs read back
    within it (8-bit designs: up to 1/255 above); the logit models fix the volume before the
    filter, which the filter does not keep, so theirs may differ, and the report says by how
    much."""
    from solvers.problems import TASKS

    found = read_records(quick_run, 20)
    volumes = filtered_volumes(found)
    assert set(volumes) == set(found.records)
    fractions = {task.name: task.volume_fraction for task in TASKS}
    for (problem, method, _), (volume, fraction) in volumes.items():
        assert fraction == fractions[problem]
        if method in ("pixels-mma", "pixels-oc"):
            assert volume <= fraction + 1 / 255, (problem, method, volume)
        assert 0.0 < volume < 1.0
    logit = [v for (_, m, _), v in volumes.items() if m in ("cnn-lbfgs", "pixels-lbfgs")]
    assert logit and any(abs(v - f) > 1e-4 for v, f in logit)  # the filter moved their mean
    report = (quick_run / "REPORT.md").read_text()
    assert "Filtered volume of the final designs" in report
    assert "| pixels-oc | 6 |" in report


def test_bad_input_is_one_line_and_runs_nothing(tmp_path, capsys):
    assert main([*QUICK, "--steps", "5", "--out", str(tmp_path)]) == 2
    assert "--quick fixes the tasks" in capsys.readouterr().err
    assert main(["reproduce", "paper-benchmark", "--plan", "first", "--tasks", "small",
                 "--out", str(tmp_path)]) == 2
    assert main(["reproduce", "paper-benchmark", "--report-only", "--out", str(tmp_path)]) == 2
    assert "holds no record" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a study")
    assert main([*QUICK, "--out", str(other)]) == 2
    assert "not empty and holds no study" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    assert not StudyFolder(tmp_path).spec_path.exists()


def test_cnn_settings_the_models_refuse_are_an_error_before_anything_runs(tmp_path):
    cells = benchmark_cells(QUICK_TASKS[0], (0,), methods=("cnn-lbfgs",), steps=5,
                            cnn_dtype="float64", upsampling="nearest-ish")
    with pytest.raises(StudyError, match="cnn-lbfgs/seed0: the CNN settings .* are not "
                                         "accepted here"):
        open_benchmark(cells, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # two spawned workers start TensorFlow: about a minute
def test_a_local_pool_gives_the_same_records(quick_run, tmp_path):
    """Workers are single-threaded like this process: a CNN record has the same bits."""
    assert main(["reproduce", "paper-benchmark", "--tasks", QUICK_TASKS[2], "--seeds", "0",
                 "--methods", "cnn-lbfgs", "pixels-mma", "--steps", "20", "--cnn-dtype",
                 "float64", "--jobs", "2", "--no-progress", "--out", str(tmp_path)]) == 0
    expected = _deterministic(quick_run)
    got = _deterministic(tmp_path)
    assert len(got) == 2 and all(got[key] == expected[key] for key in got)


def test_the_report_says_how_many_runs_stand_behind_each_value():
    import xarray as xr

    from studies.benchmark.reproduce import _seed_lines

    times = np.full((3, 4, 3), np.nan)                # (problem, method, seed -1 0 1)
    times[:, 0, 1] = 10.0                             # the CNN: seed 0 on every task
    times[:2, 1:, 0] = 1.0                            # the pixel methods: s = -1 on two tasks
    dataset = xr.Dataset({"elapsed_time": (("problem", "method", "seed"), times)},
                         coords={"problem": ["a", "b", "c"], "method": list(METHODS),
                                 "seed": [-1, 0, 1]})
    text = "\n".join(_seed_lines(dataset))
    assert "| cnn-lbfgs | 3 | 1 | 0 |" in text and "| pixels-oc | 2 | 1 | -1 |" in text
    assert "the two samples agree on every task compared" in text
    times[0, 0, 2] = 10.0                             # a second CNN seed on one task
    text = "\n".join(_seed_lines(dataset))
    assert "| cnn-lbfgs | 3 | 1-2 (median 1) | 0 1 |" in text
    assert "agree" not in text
