"""From TensorFlow to the autograd physics, with gradients of gradients.

The network (TensorFlow, float64) produces an image ``z``; the physics (autograd, float64) maps it
to a scalar loss. :class:`AutogradBridge` makes the physics a TensorFlow function through
``tf.custom_gradient`` twice over:

* ``loss(z)`` returns the physics value; its gradient is ``dy * grad(z)``;
* ``grad(z)`` is itself a custom-gradient function whose vector-Jacobian product is the physics
  Hessian-vector product (the Hessian is symmetric), computed by autograd reverse-over-reverse
  (``autograd.make_hvp``, which reuses one forward pass for the gradient and the product).

So a nested ``tf.GradientTape`` (reverse over reverse) through network and physics gives the exact
Hessian-vector product of the whole graph. Forward-mode TensorFlow (``ForwardAccumulator``) is not
supported through the bridge.

Only ``float64`` tensors cross the bridge; the physics never sees float32.
"""
from __future__ import annotations

from typing import Callable

import autograd
import numpy as np
import tensorflow as tf

__all__ = ["AutogradBridge"]


class AutogradBridge:
    """Wrap a scalar autograd function of one array as a twice-differentiable TF function.

    Args:
        function: ``x (shape) -> scalar``, differentiable by autograd to second order.

    Attributes:
        num_value_calls, num_hvp_calls: counters (for benchmarks and tests).
    """

    def __init__(self, function: Callable[[np.ndarray], float]):
        self.function = function
        self.num_value_calls = 0
        self.num_hvp_calls = 0
        value_and_grad = autograd.value_and_grad(function)
        make_hvp = autograd.make_hvp(function)

        @tf.custom_gradient
        def loss_once(z):
            value, gradient = value_and_grad(z.numpy())
            self.num_value_calls += 1
            gradient = tf.constant(gradient, dtype=tf.float64)
            return tf.constant(value, dtype=tf.float64), lambda dy: dy * gradient

        @tf.custom_gradient
        def gradient_of(z):
            hvp, gradient = make_hvp(z.numpy())

            def backward(v):
                self.num_hvp_calls += 1
                return tf.constant(hvp(v.numpy()), dtype=tf.float64)

            return tf.constant(gradient, dtype=tf.float64), backward

        @tf.custom_gradient
        def loss_twice(z):
            value = function(z.numpy())
            self.num_value_calls += 1
            return tf.constant(value, dtype=tf.float64), lambda dy: dy * gradient_of(z)

        self._loss_once = loss_once
        self._loss_twice = loss_twice

    def __call__(self, z: tf.Tensor, *, second_order: bool = False) -> tf.Tensor:
        """The loss as a TF scalar.

        Args:
            z: float64 tensor, the physics input.
            second_order: build the graph for a second reverse pass (Hessian-vector products).
                With False the gradient is a constant, computed together with the value.
        """
        if z.dtype != tf.float64:
            raise TypeError(f"the bridge takes float64 tensors, got {z.dtype}")
        return (self._loss_twice if second_order else self._loss_once)(z)
