"""The pixel start from the CNN's output (Hoyer et al. 2019's pipeline for seeds >= 0).

Independent answers: the CNN objective's own first design (the pixel runs must reproduce it),
``volume_fraction * mask`` for the constant start, and a hand-made constrained sigmoid (a
bisection written here with scipy's brentq).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.optimize  # noqa: E402

from solvers import as_objective, optimize  # noqa: E402
from solvers.models import (  # noqa: E402
    CNNConfig, CNNModel, PixelModel, cnn_start_logits, constrained_sigmoid)
from solvers.problems import build_problem  # noqa: E402
from solvers.result import RecordOptions  # noqa: E402
from studies.runner import ConfigurationError, build_objective, validate_config  # noqa: E402
from studies.store import RunConfig  # noqa: E402

TINY = CNNConfig(latent_size=4, dense_channels=2, conv_filters=(4, 3, 2, 2, 1))
FIRST_DESIGN = RecordOptions(designs_at=(0,))


@pytest.fixture(scope="module")
def l_shape():
    """A 16 x 16 L-shape: a mask with void cells, so 'outside the mask' is exercised."""
    return build_problem("l_shape_0.4", 16, 16, 0.3)


def _cnn_first_design(problem, seed, config):
    objective = as_objective(CNNModel(problem, seed=seed, config=config))
    return objective.design(objective.initial())


def test_cnn_start_logits_are_the_cnn_output(l_shape):
    logits = cnn_start_logits(l_shape, 3, TINY)
    expected = CNNModel(l_shape, seed=3, config=TINY)().numpy()
    assert logits.dtype == np.float64 and logits.shape == (16, 16)
    np.testing.assert_array_equal(logits, expected)
    assert not np.allclose(logits, cnn_start_logits(l_shape, 4, TINY))


def test_constrained_sigmoid_against_brentq(l_shape):
    logits = cnn_start_logits(l_shape, 1, TINY)
    mask = np.asarray(l_shape.mask, bool)
    density = constrained_sigmoid(logits, mask, 0.3)
    inside = logits[mask]
    shift = scipy.optimize.brentq(lambda b: np.mean(1 / (1 + np.exp(-(inside + b)))) - 0.3,
                                  -50, 50, xtol=1e-14)
    np.testing.assert_allclose(density[mask], 1 / (1 + np.exp(-(inside + shift))), atol=1e-10)
    assert np.all(density[~mask] == 0) and (~mask).any()
    assert abs(density[mask].mean() - 0.3) < 1e-10


@pytest.mark.parametrize("seed", [0, 2])
def test_pixel_lbfgs_first_design_is_the_cnn_first_design(l_shape, seed):
    expected = _cnn_first_design(l_shape, seed, TINY)
    model = PixelModel(l_shape, initial_logits=cnn_start_logits(l_shape, seed, TINY))
    result = optimize(as_objective(model), "lbfgs", steps=3, record=FIRST_DESIGN)
    assert list(result.design_indices) == [0]
    np.testing.assert_allclose(result.designs[0], expected, rtol=0, atol=1e-12)
    constant = _constant_first_design(l_shape)
    assert np.max(np.abs(expected - constant)) > 1e-3  # the two starts really differ


def _constant_first_design(problem):
    objective = as_objective(PixelModel(problem))
    return objective.design(objective.initial())


def test_pixel_oc_and_mma_first_design_after_the_filter(l_shape):
    expected = _cnn_first_design(l_shape, 1, TINY)
    logits = cnn_start_logits(l_shape, 1, TINY)
    objective = as_objective(PixelModel(l_shape, volume_constraint=False, initial_logits=logits))
    np.testing.assert_allclose(objective.initial().reshape(16, 16),
                               constrained_sigmoid(logits, l_shape.mask, 0.3), atol=0, rtol=0)
    np.testing.assert_allclose(objective.design(objective.initial()), expected, atol=1e-12,
                               rtol=0)
    oc = optimize(objective, "oc", steps=2, record=FIRST_DESIGN)
    np.testing.assert_allclose(oc.designs[0], expected, atol=1e-12, rtol=0)
    # MMA scales a start whose filtered volume exceeds volume_fraction * (1 - start_margin)
    # down by one factor (solvers.optim.constrained): the first design is the CNN's times c <= 1.
    mma = optimize(objective, "mma", steps=2, record=FIRST_DESIGN)
    factor = float(np.sum(mma.designs[0] * expected) / np.sum(expected * expected))
    assert 1 - 1e-2 < factor <= 1.0
    np.testing.assert_allclose(mma.designs[0], factor * expected, atol=1e-12, rtol=0)


def test_constant_start_unchanged(l_shape):
    mask = np.asarray(l_shape.mask, np.float64)
    for volume_constraint in (True, False):
        objective = as_objective(PixelModel(l_shape, volume_constraint=volume_constraint))
        np.testing.assert_array_equal(objective.initial(), (0.3 * mask).ravel())


def test_pixel_model_rejects_bad_logits(l_shape):
    with pytest.raises(ValueError, match=r"shape \(8, 16\).*\(16, 16\)"):
        PixelModel(l_shape, initial_logits=np.zeros((8, 16)))
    bad = np.zeros((16, 16))
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        PixelModel(l_shape, initial_logits=bad)


def _config(optimizer="lbfgs", seed=0, **model_options):
    return RunConfig(problem="mbb_beam_16x8_0.5", family="mbb_beam", width=16, height=8,
                     volume_fraction=0.5, model="pixel", optimizer=optimizer, steps=3, seed=seed,
                     model_options=model_options)


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
def test_runner_start_cnn(upsampling):
    config = _config(seed=1, start="cnn", start_upsampling=upsampling)
    validate_config(config)
    objective = build_objective(config)
    problem = objective.problem
    expected = _cnn_first_design(problem, 1, CNNConfig(upsampling=upsampling))
    np.testing.assert_allclose(objective.design(objective.initial()), expected, atol=1e-12,
                               rtol=0)
    densities = build_objective(_config("oc", seed=1, start="cnn", start_upsampling=upsampling))
    assert not densities.volume_constraint
    np.testing.assert_allclose(densities.design(densities.initial()), expected, atol=1e-12,
                               rtol=0)


def test_runner_constant_start_is_the_default():
    default = build_objective(_config()).initial()
    np.testing.assert_array_equal(build_objective(_config(start="constant")).initial(), default)
    np.testing.assert_array_equal(default, np.full(16 * 8, 0.5))


@pytest.mark.parametrize("options, message", [
    ({"start": "random"}, r"start must be one of \('constant', 'cnn'\); got 'random'"),
    ({"start": "cnn", "start_upsampling": "nearest"}, "start_upsampling must be one of"),
    ({"start_upsampling": "transpose"}, "apply only to start='cnn'"),
])
def test_runner_rejects_bad_start_options(options, message):
    with pytest.raises(ConfigurationError, match=message):
        validate_config(_config(**options))


def test_runner_start_cnn_needs_a_seed():
    with pytest.raises(ConfigurationError, match="needs a seed >= 0"):
        validate_config(_config(seed=None, start="cnn"))
