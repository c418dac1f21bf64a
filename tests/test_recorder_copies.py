"""The recorder's borrowed buffers (``copy=False``, solvers/optim/recording.py "Copies").

L-BFGS, gd_ls and hd lend their point buffers to the recorder and keep the objective's gradients
uncopied. These tests give them objectives that break that shortcut if the recorder's guards are
missing: a gradient written into one reused buffer, and a gradient that is the point itself. The
histories must equal, bit for bit, those of the same function returning fresh arrays; and the
recorded norms must be exactly ``np.linalg.norm`` of the stored vectors.
"""
from __future__ import annotations

import numpy as np
import pytest

from solvers import RecordOptions, optimize
from solvers.flat import CallableObjective

ALL = RecordOptions(iterates_every=1, designs_at=(), pairs=True)
N = 40
SCALES = np.linspace(1.0, 30.0, N)


def _value(x: np.ndarray) -> float:
    return float(0.5 * np.sum(SCALES * x * x) + 0.25 * np.sum(x**4))


def _gradient(x: np.ndarray) -> np.ndarray:
    return SCALES * x + x**3


def _start() -> np.ndarray:
    return np.random.default_rng(3).standard_normal(N)


def _reused_buffer_objective() -> CallableObjective:
    buffer = np.empty(N)

    def gradient(x):
        np.multiply(SCALES, x, out=buffer)
        np.add(buffer, x**3, out=buffer)
        return buffer  # the same array at every call

    return CallableObjective(_value, gradient, _start())


def _same_fields(a, b) -> None:
    for name in ("loss_per_evaluation", "loss_per_iterate", "grad_norm_per_iterate",
                 "step_length_per_iterate", "iterates", "gradients", "s_pairs", "y_pairs", "x"):
        left, right = getattr(a, name), getattr(b, name)
        assert (left is None and right is None) or np.array_equal(left, right, equal_nan=True), \
            name


@pytest.mark.parametrize("method,options", [("lbfgs", {}), ("gd_ls", {}),
                                            ("hd", {"learning_rate": 0.02})])
def test_a_reused_gradient_buffer_changes_nothing(method, options):
    fresh = optimize(CallableObjective(_value, _gradient, _start()), method, steps=25,
                     record=ALL, **options)
    reused = optimize(_reused_buffer_objective(), method, steps=25, record=ALL, **options)
    assert fresh.iterations >= 5
    _same_fields(fresh, reused)


def test_a_gradient_that_is_the_point_changes_nothing():
    """f = |x|^2 / 2 with grad(x) returning x itself (the method's own buffer)."""
    def value(x):
        return float(0.5 * x @ x)

    fresh = optimize(CallableObjective(value, lambda x: x.copy(), _start()), "lbfgs", steps=10,
                     record=ALL)
    aliased = optimize(CallableObjective(value, lambda x: x, _start()), "lbfgs", steps=10,
                       record=ALL)
    assert fresh.evaluations >= 2
    _same_fields(fresh, aliased)


@pytest.mark.parametrize("method", ["lbfgs", "gd_ls"])
def test_recorded_norms_are_numpy_norms_of_the_stored_vectors(method):
    result = optimize(CallableObjective(_value, _gradient, _start()), method, steps=30,
                      record=ALL)
    norms = [np.linalg.norm(g) for g in result.gradients]
    steps = [np.linalg.norm(b - a) for a, b in zip(result.iterates[:-1], result.iterates[1:])]
    assert result.iterations >= 5
    assert np.array_equal(result.grad_norm_per_iterate, norms)
    assert np.isnan(result.step_length_per_iterate[0])
    assert np.array_equal(result.step_length_per_iterate[1:], steps)
