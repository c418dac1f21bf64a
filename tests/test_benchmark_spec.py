"""The benchmark's run cells: counts of the paper's rule, selections and settings."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from studies.benchmark.spec import (
    QUICK_TASKS, BenchmarkCell, benchmark_cells, cell_counts, issue_plan, method_settings,
    quick_cells, select_tasks)
from studies.runner import validate_config


def test_selection_counts_and_order():
    assert len(select_tasks("all")) == 116
    assert len(select_tasks("small")) == 62 and len(select_tasks("large")) == 54
    assert set(select_tasks("small")).isdisjoint(select_tasks("large"))
    assert select_tasks("all")[:2] == ("mbb_beam_96x32_0.5", "mbb_beam_192x64_0.4")
    # names come back in catalogue order, whatever order they are given in
    assert select_tasks(["mbb_beam_192x64_0.4", "mbb_beam_96x32_0.5"]) == \
        ("mbb_beam_96x32_0.5", "mbb_beam_192x64_0.4")
    mixed = select_tasks(["small", "mbb_beam_384x128_0.3"])
    assert len(mixed) == 63 and mixed[2] == "mbb_beam_384x128_0.3"
    with pytest.raises(ValueError, match="did you mean 'mbb_beam_96x32_0.5'"):
        select_tasks("mbb_beam_96x32_05")
    with pytest.raises(ValueError, match="got nothing"):
        select_tasks([])


def test_cell_counts_follow_the_papers_rule():
    cells = benchmark_cells("all", (-1, 0))
    assert len(cells) == 116 * 3 + 116 * 4 == 812
    per_seed = collections.Counter((cell.seed, cell.method) for cell in cells)
    assert per_seed[(-1, "cnn-lbfgs")] == 0 and per_seed[(-1, "pixels-oc")] == 116
    assert per_seed[(0, "cnn-lbfgs")] == 116
    assert len(benchmark_cells("small", (-1, 0, 1))) == 62 * (3 + 4 + 4)
    assert len(benchmark_cells("large", (0,), methods=("pixels-mma",))) == 54
    assert len({cell.label for cell in cells}) == len(cells)
    assert len(benchmark_cells("all", range(-1, 101))) == 47_212  # the paper's full run
    assert len(issue_plan("first")) == 464
    assert len(issue_plan("small-seeds")) == 62 * (4 + 3 * 2)
    first = {cell.label for cell in issue_plan("first")}
    assert first.isdisjoint(cell.label for cell in issue_plan("small-seeds"))


def test_quick_selection():
    cells = quick_cells()
    assert {cell.problem for cell in cells} == set(QUICK_TASKS) and len(cells) == 3 * 7
    assert {cell.steps for cell in cells} == {20} and {cell.seed for cell in cells} == {-1, 0}


def test_settings_of_each_method():
    cells = {(cell.method, cell.seed): cell for cell in benchmark_cells("mbb_beam_96x32_0.5")}
    cnn = cells[("cnn-lbfgs", 0)]
    assert (cnn.model, cnn.optimizer, cnn.steps) == ("cnn", "lbfgs", 1000)
    assert dict(cnn.model_options) == {"dtype": "float32"}
    assert dict(cnn.options) == {"memory": 10, "factr": 1.0, "pgtol": 1e-14, "maxls": 20}
    assert dict(cells[("pixels-lbfgs", -1)].model_options) == {"start": "constant"}
    assert dict(cells[("pixels-mma", 0)].model_options) == {
        "start": "cnn", "start_upsampling": "bilinear", "start_dtype": "float32"}
    assert dict(cells[("pixels-mma", 0)].options) == {"constraint_tol": 1e-8}
    assert dict(cells[("pixels-oc", -1)].options) == {
        "move": 0.2, "lambda_min": 1e-9, "lambda_max": 1e9, "change_tol": None}
    assert cells[("pixels-oc", -1)].run_seed is None and cells[("pixels-oc", 0)].run_seed == 0
    model_options, _ = method_settings("cnn-lbfgs", 3, cnn_dtype="float64",
                                       upsampling="transpose")
    assert model_options == {"upsampling": "transpose"}  # float64: CNNConfig's default
    model_options, _ = method_settings("pixels-oc", 3, cnn_dtype="float64")
    assert model_options == {"start": "cnn", "start_upsampling": "bilinear"}


def test_cells_make_valid_run_configs():
    for cell in benchmark_cells("pure_bending_moment_32x64_0.15", (-1, 0)):
        config = cell.run_config()
        assert (config.problem, config.optimizer, config.steps) == \
            (cell.problem, cell.optimizer, 1000)
        assert config.seed == cell.run_seed and dict(config.options) == dict(cell.options)
        if cell.model == "pixel":
            validate_config(config)  # the start options pass the runner's checks


def test_bad_cells_and_arguments():
    with pytest.raises(ValueError, match="the CNN runs seeds >= 0 only"):
        BenchmarkCell("mbb_beam_96x32_0.5", "cnn-lbfgs", "cnn", "lbfgs", -1, 10)
    with pytest.raises(ValueError, match="pixels-mma is model 'pixel' with optimizer 'mma'"):
        BenchmarkCell("mbb_beam_96x32_0.5", "pixels-mma", "pixel", "oc", 0, 10)
    with pytest.raises(ValueError, match="seeds must be integers >= -1"):
        benchmark_cells("small", (-2,))
    with pytest.raises(ValueError, match="seeds repeat"):
        benchmark_cells("small", (0, 0))
    with pytest.raises(ValueError, match="unknown method"):
        benchmark_cells("small", (0,), methods=("adam",))
    with pytest.raises(ValueError, match="cnn_dtype must be one of"):
        benchmark_cells("small", (0,), cnn_dtype="float16")
    with pytest.raises(ValueError, match="stage must be one of"):
        issue_plan("all")


def test_cell_counts():
    cells = benchmark_cells("small", (-1, 0))
    done = [cells[0].label, cells[1].label, cells[4].label]  # seed -1: 3 pixel cells, then seed 0
    counts = cell_counts(cells, done)
    assert list(counts) == ["cnn-lbfgs", "pixels-lbfgs", "pixels-mma", "pixels-oc"]
    assert counts["cnn-lbfgs"] == (0, 62) and counts["pixels-lbfgs"] == (2, 124)
    assert counts["pixels-mma"] == (1, 124) and counts["pixels-oc"] == (0, 124)
    assert cell_counts(benchmark_cells("small", (-1,)), [])["pixels-oc"] == (0, 62)
    assert "cnn-lbfgs" not in cell_counts(benchmark_cells("small", (-1,)), [])


@pytest.mark.parametrize("method", ["pixels-lbfgs", "pixels-mma", "pixels-oc"])
def test_constant_start_cells_are_deterministic(method):
    """Two runs of a constant-start cell give the same losses bit for bit (issue 10)."""
    from solvers import optimize
    from studies.runner import build_objective

    (cell,) = benchmark_cells("hoop_32x64_0.25", (-1,), methods=(method,), steps=4)
    config = cell.run_config()
    runs = [optimize(build_objective(config), config.optimizer, steps=config.steps,
                     **dict(config.options)) for _ in range(2)]
    assert runs[0].evaluations >= 4
    np.testing.assert_array_equal(runs[0].loss_per_evaluation, runs[1].loss_per_evaluation)
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
