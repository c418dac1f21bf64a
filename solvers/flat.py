"""The flat objective: the one interface that optimizers and the landscape toolkit share.

Every model (pixels or CNN weights) is seen from outside as a function of ONE float64 vector
``theta`` of shape ``(size,)``: the concatenation, in a fixed order, of all trainable parameter
tensors, each raveled in C order. Nothing here knows about TensorFlow.

Conventions:
    * ``theta``, gradients and Hessian-vector products: ``numpy.ndarray``, float64, shape
      ``(size,)``.
    * ``value`` returns a Python ``float``.
    * ``design(theta)`` returns the physical density, float64, shape ``(height, width)``, in [0, 1].
    * ``parameter_specs`` lists ``(name, shape)`` of every parameter tensor, in flattening order,
      shapes in the model's own layout (Keras: conv kernels ``(kh, kw, in, out)``, dense kernels
      ``(in, out)``).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["FlatObjective", "ParameterSpec", "CallableObjective", "unflatten", "flatten"]


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """Name and shape of one parameter tensor inside the flat vector.

    Attributes:
        name: unique name, e.g. ``"conv2d_1/kernel"`` or ``"latent"``.
        shape: the tensor's shape in the model's own layout.
        kind: what the tensor is, for filter normalization: one of ``"conv_kernel"``
            (``(kh, kw, in, out)``), ``"conv_transpose_kernel"`` (``(kh, kw, out, in)``),
            ``"dense_kernel"`` (``(in, out)``), ``"bias"``, ``"offset"``, ``"latent"``,
            ``"pixels"``, ``"other"``.
    """

    name: str
    shape: tuple[int, ...]
    kind: str = "other"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def unflatten(specs: Sequence[ParameterSpec], theta: np.ndarray) -> dict[str, np.ndarray]:
    """Split a flat vector into named tensors (views into ``theta``), in ``specs`` order."""
    theta = np.asarray(theta)
    total = sum(spec.size for spec in specs)
    if theta.shape != (total,):
        raise ValueError(f"theta has shape {theta.shape}; expected ({total},) for these parameters")
    out, start = {}, 0
    for spec in specs:
        out[spec.name] = theta[start:start + spec.size].reshape(spec.shape)
        start += spec.size
    return out


def flatten(specs: Sequence[ParameterSpec], tensors: Mapping[str, np.ndarray]) -> np.ndarray:
    """Inverse of :func:`unflatten`: concatenate named tensors into one float64 vector."""
    parts = []
    for spec in specs:
        if spec.name not in tensors:
            raise KeyError(f"missing parameter tensor {spec.name!r}")
        array = np.asarray(tensors[spec.name], dtype=np.float64)
        if array.shape != spec.shape:
            raise ValueError(f"{spec.name}: shape {array.shape}, expected {spec.shape}")
        parts.append(array.ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


@runtime_checkable
class FlatObjective(Protocol):
    """What optimizers and landscape tools may rely on (see the module docstring)."""

    size: int
    parameter_specs: tuple[ParameterSpec, ...]

    def initial(self) -> np.ndarray: ...
    def value(self, theta: np.ndarray) -> float: ...
    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]: ...
    def hvp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray: ...
    def design(self, theta: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True, eq=False)
class CallableObjective:
    """A :class:`FlatObjective` made of plain callables: for tests and analytic examples.

    Args:
        fun: ``theta -> float``.
        grad: ``theta -> (n,)`` gradient.
        x0: the initial point, shape ``(n,)``.
        hessp: ``(theta, v) -> (n,)`` Hessian-vector product. If omitted, a central difference
            of ``grad`` with step ``1e-6 * max(1, |theta|) / |v|`` is used (error O(step^2)).
        design_fn: optional ``theta -> (H, W)`` density; by default ``theta`` as a (1, n) image.
        parameter_specs: optional layout; by default one tensor ``"theta"`` of shape ``(n,)``.
    """

    fun: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    x0: np.ndarray
    hessp: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    design_fn: Callable[[np.ndarray], np.ndarray] | None = None
    parameter_specs: tuple[ParameterSpec, ...] = ()

    def __post_init__(self):
        x0 = np.array(self.x0, dtype=np.float64).ravel()
        object.__setattr__(self, "x0", x0)
        if not self.parameter_specs:
            object.__setattr__(self, "parameter_specs", (ParameterSpec("theta", x0.shape),))

    @property
    def size(self) -> int:
        return self.x0.size

    def initial(self) -> np.ndarray:
        return self.x0.copy()

    def value(self, theta: np.ndarray) -> float:
        return float(self.fun(np.asarray(theta, dtype=np.float64)))

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=np.float64)
        return float(self.fun(theta)), np.asarray(self.grad(theta), dtype=np.float64)

    def hvp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        if self.hessp is not None:
            return np.asarray(self.hessp(theta, v), dtype=np.float64)
        norm = np.linalg.norm(v)
        if norm == 0:
            return np.zeros_like(theta)
        eps = 1e-6 * max(1.0, np.linalg.norm(theta)) / norm
        return (self.grad(theta + eps * v) - self.grad(theta - eps * v)) / (2 * eps)

    def design(self, theta: np.ndarray) -> np.ndarray:
        if self.design_fn is not None:
            return self.design_fn(theta)
        return np.asarray(theta, dtype=np.float64).reshape(1, -1)
