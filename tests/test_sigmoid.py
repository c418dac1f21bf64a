"""The stable logistic primitives of solvers.primitives: values, derivatives, no overflow.

Independent answers: ``scipy.special.expit`` (values), the closed forms ``s' = s(1 - s)`` and
``s'' = s'(1 - 2s)`` evaluated with expit, and autograd's finite-difference ``check_grads`` to
order 2.
"""
from __future__ import annotations

import warnings

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special
from autograd.test_util import check_grads

from solvers.primitives import sigmoid, sigmoid_shift, sigmoid_slope

T = np.array([-1000.0, -745.0, -40.0, -3.0, -0.5, 0.0, 1e-3, 0.7, 5.0, 40.0, 745.0, 1000.0])


def test_values_match_expit_everywhere():
    expit = scipy.special.expit(T)
    # 0.5 tanh(t/2) + 0.5 is accurate to float64 rounding of 1 (absolute), not relative near 0
    np.testing.assert_allclose(sigmoid(T), expit, rtol=1e-14, atol=1.2e-16)
    # s(t) s(-t) = s(t)(1 - s(t)), relatively accurate on both sides
    slope = expit * scipy.special.expit(-T)
    np.testing.assert_allclose(sigmoid_slope(T), slope, rtol=1e-13, atol=1e-320)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_no_warnings_at_large_arguments(order):
    # autograd's own tanh derivative (1 / cosh(t)**2) overflows here with a RuntimeWarning.
    derivative = sigmoid
    for _ in range(order):
        derivative = autograd.elementwise_grad(derivative)
    t = np.array([-1000.0, 1000.0, -800.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = derivative(t)
    assert np.all(np.isfinite(value))
    np.testing.assert_array_equal(value, 0.0)  # every derivative underflows to exactly 0 there


def test_derivatives_match_closed_forms():
    expit, mirrored = scipy.special.expit(T), scipy.special.expit(-T)
    first = autograd.elementwise_grad(sigmoid)(T)
    second = autograd.elementwise_grad(autograd.elementwise_grad(sigmoid))(T)
    np.testing.assert_allclose(first, expit * mirrored, rtol=1e-13, atol=1e-320)
    np.testing.assert_allclose(second, expit * mirrored * (mirrored - expit), rtol=1e-12,
                               atol=1e-320)


def test_check_grads_order_2():
    # central differences in autograd's check_grads (step 1e-6, relative tolerance 1e-6)
    t = np.random.default_rng(0).normal(scale=3.0, size=7)
    weights = np.random.default_rng(1).normal(size=7)
    check_grads(lambda x: anp.dot(weights, sigmoid(x)), modes=["rev"], order=2)(t)
    check_grads(lambda x: anp.dot(weights, sigmoid_slope(x)), modes=["rev"], order=2)(t)


def test_sigmoid_shift_second_order_without_warnings_on_saturated_logits():
    # logits that saturate the sigmoid in both directions: the shift's VJP and its derivative
    # evaluate sigmoid_slope far out, where tanh's derivative overflowed before
    z = np.concatenate([np.full(3, -900.0), np.linspace(-2, 2, 5), np.full(3, 900.0)])
    weights = np.linspace(0.5, 1.5, z.size)
    loss = lambda x: anp.dot(weights, sigmoid(x + sigmoid_shift(x, 0.4, 0.0)))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hvp = autograd.make_hvp(loss)(z)[0](np.ones_like(z))
        gradient = autograd.grad(loss)(z)
    assert np.all(np.isfinite(hvp)) and np.all(np.isfinite(gradient))
