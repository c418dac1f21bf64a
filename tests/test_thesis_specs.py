"""studies.thesis: the specs expand to the thesis's protocol; curve statistics by hand."""
import numpy as np
import pytest

from studies.study import expand
from studies.thesis import specs
from studies.thesis.curves import best_so_far, convergence_step, median_curve, \
    median_holding_last
from studies.thesis.protocol import code_of, parse_code


def test_chapter3_grid_is_the_thesis_protocol():
    cells = expand(specs.chapter3())
    assert len(cells) == 2 * 4 * 2 * 6 * 10
    by = {(c.problem, c.model, c.penal, c.method, c.seed): c for c in cells}
    nn3a = by[("A", "cnn", 3.0, "GD", 0)]
    assert nn3a.options["learning_rate"] == 2.5e-4 and nn3a.steps == 700
    assert nn3a.model_options == {"upsampling": "transpose", "dtype": "float32"}   # ambiguity 25
    assert by[("B", "pixel", 3.0, "GD", 0)].options["learning_rate"] == 1.19
    assert by[("E", "pixel", 3.0, "HD_M10", 0)].options == {"memory": 10, "learning_rate": 0.032}
    assert by[("D", "cnn", 1.0, "HD_M1", 0)].options == {"memory": 1, "learning_rate": 0.63}
    pixel = by[("D", "pixel", 1.0, "LBFGS", 3)]
    assert pixel.model_options == {"start": "cnn", "start_upsampling": "transpose",
                                   "start_dtype": "float32"}
    assert pixel.steps == 300 and pixel.options == {"memory": 10}
    assert by[("A", "cnn", 3.0, "LBFGS_M1", 0)].options == {"memory": 1}
    assert by[("A", "cnn", 3.0, "GD_LS", 0)].curve == "iterate"
    assert by[("A", "cnn", 3.0, "LBFGS", 0)].curve == "evaluation"


def test_paper_architecture_option_keeps_transposed_pixel_starts():
    cells = expand(specs.chapter3(upsampling="bilinear"))
    assert {c.model_options.get("upsampling") for c in cells if c.model == "cnn"} == {"bilinear"}
    assert {c.model_options.get("start_upsampling") for c in cells
            if c.model == "pixel"} == {"transpose"}


def test_the_paper_architecture_reruns_table_33s_cnn_rows_only(tmp_path):
    from studies.thesis.items import Context

    cells = expand(Context(tmp_path, upsampling="bilinear").study("chapter3"))
    assert {c.model for c in cells} == {"cnn"} and len(cells) == 480
    assert {c.model_options.get("upsampling") for c in cells} == {"bilinear"}
    assert {c.model for c in expand(Context(tmp_path).study("chapter3"))} == {"cnn", "pixel"}


def test_tuning_b1_budgets_and_published_steps():
    study = specs.tuning("B.1")
    assert expand(study) == ()                     # the tuned cells wait for the tuning stage
    cells = expand(specs.tuning("B.1", published=True))
    codes = {code_of(c.model, c.penal, c.problem) for c in cells}
    assert codes == set(specs.DEFAULT_TUNING_CODES["B.1"])
    p1a = [c for c in cells if code_of(c.model, c.penal, c.problem) == "P1A"]
    assert {c.seed for c in p1a} == set(range(5)) and {c.steps for c in p1a} == {100}
    assert {c.options["learning_rate"] for c in p1a} == {10.0}
    nn1a = [c for c in cells if code_of(c.model, c.penal, c.problem) == "NN1A"]
    assert {c.seed for c in nn1a} == {0, 1, 2} and {c.steps for c in nn1a} == {500}
    from studies.study.tune import tune_groups
    groups = {g.id: g for g in tune_groups(study)}
    assert len(groups) == 10
    assert groups["A/cnn/p3/GD"].steps == 500 and groups["A/cnn/p3/GD"].seeds == (0, 1, 2, 3, 4)
    assert (groups["A/cnn/p3/GD"].low, groups["A/cnn/p3/GD"].high) == (-6.0, 0.3)
    assert groups["D/pixel/p1/GD"].steps == 150 and groups["D/pixel/p1/GD"].trials == 30


def test_tuned_chapter3_waits_for_its_tuning():
    study = specs.chapter3(steps_source="tuned", models=("cnn",))
    assert expand(study) == ()
    from studies.study.tune import tune_groups
    groups = tune_groups(study)
    assert len(groups) == 8 * 3
    assert {(g.low, g.high) for g in groups} == {specs.CNN_TUNE_RANGE}


def test_codes_round_trip_and_reject():
    assert parse_code("NN3A") == ("cnn", 3.0, "A") and code_of("pixel", 1.0, "E") == "P1E"
    with pytest.raises(ValueError, match="unknown test code"):
        parse_code("NN3C")


def test_median_holding_last_keeps_a_stopped_runs_last_value():
    # run 1 kept steps 0, 25, 50; run 2 stopped (diverged) after step 4; run 3 kept 0, 25
    rows = [(np.array([0, 25, 50]), np.array([0.0, 1.0, 2.0])),
            (np.array([0, 4]), np.array([0.0, 9.0])),
            (np.array([0, 25]), np.array([0.0, 3.0]))]
    steps, median = median_holding_last(rows)
    np.testing.assert_array_equal(steps, [0, 4, 25, 50])
    # at 4: (0, 9, 0); at 25: (1, 9, 3); at 50: (2, 9, 3)
    np.testing.assert_array_equal(median, [0.0, 0.0, 3.0, 3.0])


def test_best_so_far_forward_fills_and_ignores_nan():
    curve = np.array([5.0, 6.0, np.nan, 3.0, 4.0])
    np.testing.assert_array_equal(best_so_far(curve, 7), [5, 5, 5, 3, 3, 3, 3])
    np.testing.assert_array_equal(best_so_far(np.array([np.nan, 2.0]), 3)[1:], [2, 2])
    assert np.isnan(best_so_far(np.array([np.nan, 2.0]), 3)[0])


def test_median_and_convergence_step_by_hand():
    median = median_curve([np.array([10.0, 4, 2, 2]), np.array([8.0, 6, 3, 1]),
                           np.array([9.0, 5, 2.001, 2])])
    np.testing.assert_allclose(median, [9, 5, 2.001, 2])
    assert convergence_step(median, 1e-3) == 2       # |2.001 - 2| / 2 = 5e-4
    assert convergence_step(median, 1e-4) == 3
    assert convergence_step(np.array([]), 1e-3) is None
