"""From TensorFlow to the autograd physics, with gradients of gradients.

The network (TensorFlow, float64) produces an image ``z``; the physics (autograd, float64) maps it
to a scalar loss ``L(z)``. :class:`AutogradBridge` exposes the physics to TensorFlow in the two
forms that reverse-mode differentiation of the whole graph needs:

* :meth:`AutogradBridge.value_and_grad` -> ``(L(z), dL/dz)`` as tensors (a ``tf.numpy_function``);
  the gradient with respect to the network's variables is then one backward pass of the network
  with ``output_gradients = dL/dz``.
* :meth:`AutogradBridge.gradient` -> ``dL/dz`` as a TensorFlow function whose own vector-Jacobian
  product is the physics Hessian-vector product ``H_z v`` (the Hessian is symmetric), computed by
  autograd reverse-over-reverse (``autograd.make_hvp``: one forward pass serves the gradient and
  the product). Differentiating ``J^T dL/dz`` with an outer ``tf.GradientTape`` therefore gives the
  exact Hessian-vector product ``J^T H_z J v + sum_k (dL/dz_k) d^2 z_k v`` of the whole graph.

Both work eagerly and inside ``tf.function``. Only float64 tensors cross the bridge: a float32
network's logits are cast to float64 before it (in :mod:`solvers.objective`, where the boundary is
documented), so the physics is float64 whatever the network's dtype. Forward-mode
TensorFlow (``ForwardAccumulator``) through the bridge is not supported.
"""
from __future__ import annotations

import weakref
from typing import Callable

import autograd
import numpy as np
import tensorflow as tf

__all__ = ["AutogradBridge"]


class AutogradBridge:
    """A scalar autograd function of one array, seen from TensorFlow (see the module docstring).

    Args:
        function: ``x (shape) -> scalar``, differentiable by autograd to second order.

    Attributes:
        num_gradient_calls, num_hvp_calls: how often the physics was differentiated.
    """

    def __init__(self, function: Callable[[np.ndarray], float]):
        self.function = function
        self.num_gradient_calls = 0
        self.num_hvp_calls = 0
        self._value_and_grad = autograd.value_and_grad(function)
        self._make_hvp = autograd.make_hvp(function)
        self._pending_hvp = None
        # weak: in graph mode tf.custom_gradient keeps these functions in TensorFlow's global
        # gradient registry for the life of the process (see _weak)
        gradient_of = _weak(self._gradient_keeping_hvp)
        hvp_of = _weak(self._apply_hvp)

        @tf.custom_gradient
        def gradient(z):
            g = tf.numpy_function(gradient_of, [z], tf.float64, stateful=True)
            g = tf.ensure_shape(g, z.shape)

            def backward(v):
                product = tf.numpy_function(hvp_of, [v], tf.float64, stateful=True)
                return tf.ensure_shape(product, z.shape)

            return g, backward

        self._gradient = gradient

    # -- numpy side ----------------------------------------------------------------------------
    def _numpy_value_and_grad(self, z: np.ndarray):
        self.num_gradient_calls += 1
        value, gradient = self._value_and_grad(np.asarray(z, dtype=np.float64))
        return np.float64(value), np.asarray(gradient, dtype=np.float64)

    def _gradient_keeping_hvp(self, z: np.ndarray) -> np.ndarray:
        self.num_gradient_calls += 1
        self._pending_hvp, gradient = self._make_hvp(np.asarray(z, dtype=np.float64))
        return np.asarray(gradient, dtype=np.float64)

    def _apply_hvp(self, v: np.ndarray) -> np.ndarray:
        if self._pending_hvp is None:
            raise RuntimeError("Hessian-vector product requested before the gradient was computed")
        self.num_hvp_calls += 1
        return np.asarray(self._pending_hvp(np.asarray(v, dtype=np.float64)), dtype=np.float64)

    # -- TensorFlow side ---------------------------------------------------------------------
    def value_and_grad(self, z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(L(z), dL/dz)``: a float64 scalar and a tensor shaped like ``z`` (not differentiable
        further)."""
        _check_dtype(z)
        value, gradient = tf.numpy_function(_weak(self._numpy_value_and_grad), [z],
                                            [tf.float64, tf.float64], stateful=True)
        return tf.ensure_shape(value, ()), tf.ensure_shape(gradient, z.shape)

    def gradient(self, z: tf.Tensor) -> tf.Tensor:
        """``dL/dz``, differentiable once more: its VJP with ``v`` is ``H_z v``."""
        _check_dtype(z)
        return self._gradient(z)


def _weak(method: Callable) -> Callable:
    """``method`` (bound to a bridge) behind a weak reference.

    TensorFlow keeps every function given to ``tf.numpy_function`` in a process-wide registry
    until the graph that uses it is deleted, and the functions of ``tf.custom_gradient`` (graph
    mode) in its gradient registry for ever; a strong reference from there to the bridge (and so
    to its physics and the objective that owns the graph) would keep every objective a process
    ever built alive: ~100 MB per 128x128 CNN cell in a study worker. Through a weak reference
    the objective and its graphs are freed together.
    """
    reference = weakref.WeakMethod(method)

    def call(*args):
        bound = reference()
        if bound is None:
            raise RuntimeError("the AutogradBridge of this TensorFlow function was released")
        return bound(*args)

    return call


def _check_dtype(z: tf.Tensor) -> None:
    if z.dtype != tf.float64:
        raise TypeError(f"the bridge takes float64 tensors, got {z.dtype}: cast a float32 "
                        "network's output with tf.cast(z, tf.float64) first")
