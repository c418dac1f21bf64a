"""The float32 network path: CNNConfig(dtype='float32') against the float64 network.

The float64 network is the independent answer: at the same ``theta`` (rounded to float32, which
both networks then hold exactly) the two compute the same function, one with float32 rounding in
every network op. Bounds (relative): value 1e-5, gradient 2e-5 (norm-wise). Why: float32's unit
roundoff is u = 2**-24 = 6e-8; the network's longest reductions are the convolutions' sums over
5 x 5 x 128 = 3200 terms and the global normalizations, whose rounding errors grow like
sqrt(length) u ~ 3e-6 in the worst layer, and the loss and gradient inherit the relative error
of the logits (the float64 physics adds none). Measured here: value <= 4e-7, gradient <= 1.6e-6
at 32 x 64 with the paper's network; 1e-5 / 2e-5 leave a 10x margin while a float16 network
(u = 5e-4) or any layout or cast error fails them by orders of magnitude.
"""
from __future__ import annotations

import dataclasses
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from solvers import CNNConfig, CNNModel, as_objective, build_problem, get_problem  # noqa: E402
from solvers import optimize  # noqa: E402

TINY = CNNConfig(latent_size=4, dense_channels=2, conv_filters=(4, 3, 2, 2, 1))
VALUE_RTOL, GRADIENT_RTOL = 1e-5, 2e-5


def _pair(problem, config, seed=0):
    wide = as_objective(CNNModel(problem, seed=seed, config=dataclasses.replace(
        config, dtype="float64")))
    narrow = as_objective(CNNModel(problem, seed=seed, config=dataclasses.replace(
        config, dtype="float32")))
    return wide, narrow


def _relative(actual, expected) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def test_float32_model_variables_output_and_start():
    problem = build_problem("mbb_beam", 16, 8, 0.4)
    wide = CNNModel(problem, seed=3, config=TINY)
    narrow = CNNModel(problem, seed=3, config=dataclasses.replace(TINY, dtype="float32"))
    assert {v.dtype for v in narrow.variables} == {tf.float32}
    assert {v.dtype for v in wide.variables} == {tf.float64}
    assert narrow().dtype == tf.float32 and narrow().shape == (8, 16)
    assert narrow.parameter_specs == wide.parameter_specs  # the same theta fits both
    for a, b in zip(narrow.variables, wide.variables):  # start: float32 rounding of float64's
        np.testing.assert_array_equal(a.numpy(), b.numpy().astype(np.float32))


@pytest.mark.parametrize("problem_name, config", [
    ("mbb_beam_16x8", TINY), ("michell_centered_both_32x64_0.12", CNNConfig())])
def test_value_and_gradient_agree_with_float64(problem_name, config):
    problem = (build_problem("mbb_beam", 16, 8, 0.4) if problem_name == "mbb_beam_16x8"
               else get_problem(problem_name))
    wide, narrow = _pair(problem, config)
    rng = np.random.default_rng(0)
    start = narrow.initial()
    np.testing.assert_array_equal(start, start.astype(np.float32))
    for scale in (0.0, 0.01, 0.05):
        theta = (start + scale * rng.normal(size=start.size)).astype(np.float32).astype(float)
        value, gradient = narrow.value_and_grad(theta)
        expected_value, expected_gradient = wide.value_and_grad(theta)
        assert isinstance(value, float) and gradient.dtype == np.float64
        assert gradient.shape == (narrow.size,)
        assert abs(value - expected_value) <= VALUE_RTOL * abs(expected_value)
        assert _relative(gradient, expected_gradient) <= GRADIENT_RTOL
        assert narrow.value(theta) == pytest.approx(value, rel=1e-12)
        # the float32 network really rounds: it is not the float64 one in disguise
        assert value != expected_value or not np.array_equal(gradient, expected_gradient)


def test_theta_is_rounded_to_float32_on_assignment():
    problem = build_problem("mbb_beam", 16, 8, 0.4)
    _, narrow = _pair(problem, TINY)
    theta = narrow.initial() + 0.01
    below = theta * (1 + 2.0 ** -30)  # differs from theta below float32 resolution
    assert narrow.value_and_grad(theta)[0] == narrow.value_and_grad(below)[0]
    # the variables hold exactly TensorFlow's own float64 -> float32 rounding of theta
    narrow.value_and_grad(theta)
    assigned = np.concatenate([v.numpy().ravel() for v in narrow.model.variables])
    np.testing.assert_array_equal(assigned, tf.cast(tf.constant(theta), tf.float32).numpy())


def test_hvp_of_float32_network_is_float32_accurate():
    # exactness of HVPs is tested on float64 (tests/test_models.py, tests/test_objective.py);
    # here only that the float32 network's HVP is the float64 one to float32 accuracy
    problem = build_problem("mbb_beam", 16, 8, 0.4)
    wide, narrow = _pair(problem, TINY)
    direction = np.random.default_rng(1).normal(size=narrow.size)
    theta = narrow.initial()
    product = narrow.hvp(theta, direction)
    assert product.dtype == np.float64
    assert _relative(product, wide.hvp(theta, direction)) <= 1e-4


@pytest.mark.slow
def test_float32_run_reaches_the_float64_best_loss():
    # the criterion: median over 3 seeds of best-loss ratio within 1 % (100 L-BFGS
    # evaluations on michell_centered_both_32x64_0.12)
    problem = get_problem("michell_centered_both_32x64_0.12")
    ratios = []
    for seed in range(3):
        wide, narrow = _pair(problem, CNNConfig(), seed=seed)
        best64 = optimize(wide, "lbfgs", steps=100).best_loss
        best32 = optimize(narrow, "lbfgs", steps=100).best_loss
        ratios.append(best32 / best64 - 1)
    assert abs(statistics.median(ratios)) <= 0.01, ratios


def test_float32_run_records_its_dtype_and_is_analysed_in_float64(tmp_path, capsys):
    from studies.analysis import RunAnalyzer
    from studies.cli import main
    from studies.store import ResultsFile

    path = tmp_path / "f32.h5"
    tiny = ["--model-option", "latent_size=4", "--model-option", "dense_channels=2",
            "--model-option", "conv_filters=(4, 3, 2, 2, 1)"]
    assert main(["optimize", "--problem", "mbb_beam", "--size", "16x8", "--volfrac", "0.4",
                 "--model", "cnn", "--optimizer", "lbfgs", "--steps", "4", "--no-progress",
                 "--iterates-every", "0", *tiny, "--model-option", "dtype=float32",
                 "--out", str(path)]) == 0
    run = ResultsFile(path).read(0)
    assert run.config.model_options["dtype"] == "float32"
    analyzer = RunAnalyzer(path, 0)
    assert analyzer.trained_dtype == "float32"
    assert analyzer.objective.model.config.dtype == "float64"
    assert "evaluated with the float64 network" in analyzer.evaluation_note
    # iterate 0 was not stored: rebuilt (float32-rounded start) and checked against the loss
    start = analyzer.iterate(0)
    np.testing.assert_array_equal(start, start.astype(np.float32))
    kept = RunAnalyzer(path, 0, network_dtype="stored")
    assert kept.objective.model.config.dtype == "float32" and kept.evaluation_note is None
    capsys.readouterr()
    assert main(["interpolate", str(path), "--run", "0", "--points", "3", "--no-progress",
                 "--out", str(tmp_path / "line.png")]) == 0
    assert "trained with the float32 network; evaluated with the float64" in capsys.readouterr().err
    with pytest.raises(ValueError, match="network_dtype"):
        RunAnalyzer(path, 0, network_dtype="float32")
