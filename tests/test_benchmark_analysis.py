"""The paper benchmark's analysis on synthetic losses with hand-computed answers.

The numbers in the comments are worked out by hand from the arrays written here (no code of the
module is used to make the expectations).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from studies.benchmark.analysis import (
    CDF_THRESHOLDS, METHODS, at_step, best_so_far, cdf, comparable, consolidate, cpu_hours,
    forward_fill, fraction_below, loss_array, projected_cpu_hours_per_seed, reduce_losses,
    running_minimum, size_groups, summary, typical_seeds, win_counts)
from studies.benchmark.report import (
    catalogue_tasks, write_report, write_seeds, write_step_table, write_summary)

NAN = math.nan
SMALL = "mbb_beam_96x32_0.5"      # 3,072 elements
LARGE = "mbb_beam_384x128_0.3"    # 49,152 elements
SEEDS = [-1, 0, 1, 2]


def _losses() -> xr.DataArray:
    """Two problems x 4 methods x seeds -1..2 x steps 0..4 (evaluation at step 2)."""
    data = np.full((2, 4, 4, 5), NAN)
    cnn, pl, mma = 0, 1, 2  # pixels-oc (3) is never run
    # SMALL: CNN seeds 0, 1, 2 (seed 1 stops early, seed 2 improves after step 2)
    data[0, cnn, 1] = [10, 8, 6, 6, 6]
    data[0, cnn, 2] = [12, 9, 7, NAN, NAN]
    data[0, cnn, 3] = [11, 11, 4, 2, 2]
    data[0, pl, 0] = [9, 7, 5, 5, 3]          # constant start: 3 only after the evaluation step
    data[0, pl, 1] = [20, 20, 20, 1, 1]        # seed 0: the ensemble's best, after step 2
    data[0, mma, 0] = [8, NAN, 6.5, NAN, NAN]
    # LARGE: every method ties at step 2 except MMA
    data[1, cnn, 1] = [4, 2, 2, 2, 2]
    data[1, pl, 0] = [4, 3, 2, 2, 2]
    data[1, mma, 0] = [4, 3, 3, 3, 3]
    data[1, 3, 0] = [4, 2.5, 2.2, 2.2, 2.2]
    return xr.DataArray(data, dims=("problem", "method", "seed", "step"),
                        coords={"problem": [SMALL, LARGE], "method": list(METHODS),
                                "seed": SEEDS, "step": np.arange(5)})


def test_running_minimum_and_forward_fill():
    values = np.array([NAN, 5.0, NAN, 3.0, 4.0, NAN, 7.0])
    np.testing.assert_array_equal(running_minimum(values), [NAN, 5, NAN, 3, 3, NAN, 3])
    np.testing.assert_array_equal(forward_fill(running_minimum(values)), [NAN, 5, 5, 3, 3, 3, 3])
    np.testing.assert_array_equal(forward_fill(np.array([[1.0, NAN], [NAN, 2.0]]), axis=0),
                                  [[1, NAN], [1, 2]])


def test_best_so_far_is_monotone_and_fills_stopped_runs():
    filtered = best_so_far(_losses())
    np.testing.assert_array_equal(filtered.sel({"problem": SMALL, "method": "cnn-lbfgs",
                                                "seed": 1}),
                                  [12, 9, 7, 7, 7])
    np.testing.assert_array_equal(filtered.sel({"problem": SMALL, "method": "pixels-mma",
                                                "seed": -1}),
                                  [8, 8, 6.5, 6.5, 6.5])
    assert filtered.sel({"method": "pixels-oc", "problem": SMALL}).isnull().all()


def test_typical_and_ensemble_curves_and_references():
    reduction = reduce_losses(_losses())
    typical = reduction["curve"].sel(sample="typical", problem=SMALL)
    # CNN median over seeds 0..2: step 0 median(10, 12, 11) = 11, step 2 median(6, 7, 4) = 6
    np.testing.assert_array_equal(typical.sel({"method": "cnn-lbfgs"}), [11, 9, 6, 6, 6])
    # pixel methods: the constant start alone (seed 0's 1 is ignored)
    np.testing.assert_array_equal(typical.sel({"method": "pixels-lbfgs"}), [9, 7, 5, 5, 3])
    ensemble = reduction["curve"].sel(sample="ensemble", problem=SMALL)
    np.testing.assert_array_equal(ensemble.sel({"method": "cnn-lbfgs"}), [10, 8, 4, 2, 2])
    np.testing.assert_array_equal(ensemble.sel({"method": "pixels-lbfgs"}), [9, 7, 5, 1, 1])
    # references include the steps after the evaluation step: 3 (typical) and 1 (ensemble)
    assert float(reduction["reference"].sel(sample="typical", problem=SMALL)) == 3.0
    assert float(reduction["reference"].sel(sample="ensemble", problem=SMALL)) == 1.0
    errors = at_step(reduction["relative_error"], 2).sel(problem=SMALL)
    np.testing.assert_allclose(errors.sel(sample="typical"), [1.0, 2 / 3, 6.5 / 3 - 1, NAN])
    np.testing.assert_allclose(errors.sel(sample="ensemble"), [3.0, 4.0, 5.5, NAN])
    assert reduction["large"].values.tolist() == [False, True]


def test_seeds_behind_typical_values():
    seeds = typical_seeds(reduce_losses(_losses()), 2)
    assert seeds[(SMALL, "cnn-lbfgs")] == (0, 1, 2)
    assert seeds[(SMALL, "pixels-lbfgs")] == (-1,)
    assert seeds[(SMALL, "pixels-oc")] == ()
    assert seeds[(LARGE, "cnn-lbfgs")] == (0,)


def test_summary_and_wins():
    reduction = reduce_losses(_losses())
    table = summary(reduction, 2)
    mean = table["mean_relative_error"]
    # LARGE typical: reference 2 -> cnn 0, pl 0, mma 0.5, oc 0.1
    def cell(group, method):
        return {"sample": "typical", "group": group, "method": method}

    assert float(mean.sel(cell("large", "pixels-mma"))) == 0.5
    np.testing.assert_allclose(float(mean.sel(cell("all", "cnn-lbfgs"))), (1.0 + 0.0) / 2)
    np.testing.assert_allclose(float(mean.sel(cell("all", "pixels-oc"))), 0.1)  # NaN skipped
    assert int(table["tasks"].sel(cell("all", "pixels-oc"))) == 1
    assert int(table["tasks"].sel(cell("small", "pixels-oc"))) == 0
    assert np.isnan(float(mean.sel(cell("small", "pixels-oc"))))
    wins = win_counts(reduction, 2)
    # SMALL typical: pixels-lbfgs (2/3) wins; LARGE: cnn and pixels-lbfgs tie at 0
    assert wins.sel(sample="typical", group="all").values.tolist() == [1, 2, 0, 0]
    # SMALL ensemble: cnn (3) wins; LARGE ensemble: cnn and pixels-lbfgs tie
    assert wins.sel(sample="ensemble", group="small").values.tolist() == [1, 0, 0, 0]


def test_comparable_keeps_the_tasks_where_every_method_ran():
    reduction = reduce_losses(_losses())
    # SMALL lacks pixels-oc; LARGE has a typical value of all four methods at step 2
    kept = comparable(reduction, 2)
    assert kept["problem"].values.tolist() == [LARGE]
    table = summary(kept, 2)
    assert table["tasks"].sel(sample="typical", group="all").values.tolist() == [1, 1, 1, 1]
    # LARGE alone: cnn 0, pl 0, mma 0.5, oc 0.1 (reference 2)
    np.testing.assert_allclose(
        table["mean_relative_error"].sel(sample="typical", group="all"), [0, 0, 0.5, 0.1])
    # a typical value must exist at the evaluation step: at step 0 LARGE's four are there too
    assert comparable(reduction, 0)["problem"].values.tolist() == [LARGE]
    losses = _losses()
    losses.loc[{"problem": SMALL, "method": "pixels-oc", "seed": -1}] = [9, 8, 7, 6, 5]
    assert comparable(reduce_losses(losses), 2)["problem"].values.tolist() == [SMALL, LARGE]


def test_cdf_threshold_is_strict_and_nan_is_never_below():
    threshold = CDF_THRESHOLDS[500]  # 0.05
    errors = np.array([[0.0, threshold, NAN, 0.3]])  # one method, 4 small problems
    reduction = xr.Dataset({
        "relative_error": xr.DataArray(
            errors[None, :, :, None].transpose(0, 2, 1, 3), dims=("sample", "problem",
                                                                   "method", "step"),
            coords={"sample": ["typical"], "method": ["cnn-lbfgs"], "step": [7],
                    "problem": ["a", "b", "c", "d"]}),
        "large": xr.DataArray([False] * 4, dims="problem"),
    })
    fractions = cdf(reduction, step=7).sel(
        {"sample": "typical", "group": "small", "method": "cnn-lbfgs"})
    assert fractions.sizes["threshold"] == 2001 and float(fractions["threshold"][-1]) == 0.2
    assert float(fractions[0]) == 0.0            # 0.0 < 0 is false
    assert float(fractions[1]) == 0.25           # 0.0 < 1e-4
    assert float(fractions[500]) == 0.25         # 0.05 < 0.05 is false
    assert float(fractions[501]) == 0.5
    assert float(fractions[-1]) == 0.5           # NaN and 0.3 never below 0.2
    assert cdf(reduction, step=7).sel(group="large").isnull().all()  # no large problems
    below = fraction_below(reduction, taus=(0.06,), max_step=7)
    assert float(below.sel({"sample": "typical", "group": "small", "method": "cnn-lbfgs",
                            "tau": 0.06, "step": 7})) == 0.5


def test_catalogue_split_and_input_checks():
    names = xr.DataArray(list(catalogue_tasks()), dims="problem",
                         coords={"problem": list(catalogue_tasks())})
    large = size_groups(names)
    assert (int((~large).sum()), int(large.sum())) == (62, 54)
    renamed = _losses().rename(method="method_name")
    assert loss_array(xr.Dataset({"loss": renamed})).dims == ("problem", "method", "seed", "step")
    with pytest.raises(ValueError, match="dims"):
        loss_array(_losses().isel(seed=0))
    with pytest.raises(ValueError, match="unknown method"):
        loss_array(_losses().assign_coords(method=["cnn", "b", "c", "d"]))
    with pytest.raises(ValueError, match="step 9 is not in the data"):
        at_step(reduce_losses(_losses())["relative_error"], 9)
    with pytest.raises(ValueError, match="not catalogued"):
        reduce_losses(_losses().assign_coords(problem=["x", "y"]))
    with_sizes = _losses().assign_coords(problem=["x", "y"]).assign_coords(
        elements=("problem", [40_000, 10]))
    assert reduce_losses(with_sizes)["large"].values.tolist() == [True, False]


def test_csv_formats_exactly(tmp_path):
    reduction = reduce_losses(_losses())
    typical = at_step(reduction["curve"].sel(sample="typical", drop=True), 2)
    path = write_step_table(tmp_path / "typical-step1000.csv", typical,
                            tasks=[SMALL, "cantilever_beam_full_96x32_0.4", LARGE])
    assert path.read_text() == (
        "problem_name,cnn-lbfgs,pixels-lbfgs,pixels-mma,pixels-oc\n"
        f"{SMALL},6.0,5.0,6.5,\n"
        "cantilever_beam_full_96x32_0.4,,,,\n"
        f"{LARGE},2.0,2.0,3.0,2.2\n")
    full = write_step_table(tmp_path / "full.csv", typical).read_text().splitlines()
    assert len(full) == 117 and full[1].startswith("mbb_beam_96x32_0.5,6.0,")
    assert full[3] == "mbb_beam_384x128_0.3,2.0,2.0,3.0,2.2"
    with pytest.raises(ValueError, match="not among the tasks"):
        write_step_table(tmp_path / "x.csv", typical, tasks=[SMALL])
    behind = {key: seeds for key, seeds in typical_seeds(reduction, 2).items() if SMALL in key}
    seeds = write_seeds(tmp_path / "seeds.csv", behind, tasks=[SMALL])
    assert seeds.read_text() == (
        "problem_name,method,seeds\n"
        f"{SMALL},cnn-lbfgs,0 1 2\n{SMALL},pixels-lbfgs,-1\n{SMALL},pixels-mma,-1\n"
        f"{SMALL},pixels-oc,\n")
    lines = write_summary(tmp_path / "summary.csv", summary(reduction, 2)).read_text()
    lines = lines.splitlines()
    assert lines[0] == "sample,group,method,mean_relative_error,tasks"
    assert len(lines) == 1 + 2 * 3 * 4
    assert lines[1] == "typical,small,cnn-lbfgs,1.0,1"
    assert lines[4] == "typical,small,pixels-oc,,0"
    assert lines[8] == "typical,large,pixels-oc,0.10000000000000009,1"
    assert lines[13] == "ensemble,small,cnn-lbfgs,3.0,1"


def test_report_says_cells_done_and_compute(tmp_path):
    reduction = reduce_losses(_losses())
    text = write_report(
        tmp_path / "REPORT.md", table=summary(reduction, 2), wins=win_counts(reduction, 2),
        cells={"cnn-lbfgs": (4, 10), "pixels-lbfgs": (2, 10)},
        cpu_hours={("cnn-lbfgs", "small"): 1.25, ("cnn-lbfgs", "large"): 2.0},
        evaluation_step=2, projected_cpu_hours_per_seed=123.4,
        figures=[("CDF", "cdf.png")]).read_text()
    assert "**6 of 20** run cells are done." in text
    assert "CPU-hours spent on the runs done: **3.25**." in text
    assert "| cnn-lbfgs | 1.25 | 2.00 | 3.25 |" in text
    assert "123.4 CPU-hours (the paper: about 267 CPU-hours per seed)" in text
    assert "| Typical sample | large | 0.0000 (1) | 0.0000 (1) | 0.5000 (1) | 0.1000 (1) |" in text
    assert "![CDF](cdf.png)" in text


def test_consolidate_pads_orders_and_times():
    curves = {(LARGE, "pixels-oc", -1): [3.0, 2.0], (SMALL, "cnn-lbfgs", 0): [5.0, 4.0, 3.5],
              ("hoop_32x64_0.25", "pixels-mma", 1): [1.0]}
    elapsed = {(LARGE, "pixels-oc", -1): 7200.0, (SMALL, "cnn-lbfgs", 0): 1800.0,
               ("hoop_32x64_0.25", "pixels-mma", 1): 360.0}
    data = consolidate(curves, elapsed=elapsed)
    assert data["problem"].values.tolist() == [SMALL, LARGE, "hoop_32x64_0.25"]  # catalogue
    assert data["method"].values.tolist() == list(METHODS)
    assert data["seed"].values.tolist() == [-1, 0, 1] and data.sizes["step"] == 3
    np.testing.assert_array_equal(
        data["loss"].sel({"problem": LARGE, "method": "pixels-oc", "seed": -1}), [3, 2, NAN])
    assert int(data["loss"].notnull().sum()) == 6
    hours = cpu_hours(data)
    assert float(hours.sel({"method": "pixels-oc", "group": "large"})) == 2.0
    assert float(hours.sel({"method": "cnn-lbfgs", "group": "small"})) == 0.5
    assert float(hours.sel({"method": "pixels-lbfgs", "group": "small"})) == 0.0
    assert math.isnan(projected_cpu_hours_per_seed(data))  # pixels-lbfgs never timed
    with pytest.raises(ValueError, match="more than length=2"):
        consolidate(curves, length=2)
    with pytest.raises(ValueError, match="unknown method"):
        consolidate({(SMALL, "adam", 0): [1.0]})


def test_projected_cpu_hours_per_seed():
    curves, elapsed = {}, {}
    for problem, seconds in ((SMALL, 36.0), (LARGE, 360.0)):
        for method in METHODS:
            curves[(problem, method, 0)] = [1.0]
            elapsed[(problem, method, 0)] = seconds
    # 4 methods x (62 tasks x 0.01 h + 54 tasks x 0.1 h) = 4 x 6.02
    assert projected_cpu_hours_per_seed(consolidate(curves, elapsed=elapsed)) == \
        pytest.approx(4 * (62 * 0.01 + 54 * 0.1))
