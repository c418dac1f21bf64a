"""``as_objective``: any model of :mod:`solvers.models` as a :class:`~solvers.flat.FlatObjective`.

``theta`` is the concatenation of the model's trainable tensors in ``model.parameter_specs`` order,
each raveled in C order, float64. The loss is the compliance of the physics
(:class:`solvers.physics.Compliance`) of the model's image.

* Pixel models are evaluated without TensorFlow (which is then never imported): the image is
  ``theta`` reshaped to ``(H, W)`` and autograd differentiates the physics directly (gradients
  and reverse-over-reverse Hessian-vector products).
* The CNN goes through TensorFlow: ``theta`` is assigned to the model's variables, the image is
  computed under ``tf.GradientTape`` and handed to the physics through
  :class:`solvers.bridge.AutogradBridge`; Hessian-vector products use nested tapes
  (reverse over reverse), exact for the whole graph.

The float32 network (``CNNConfig(dtype='float32')``) and the float64 physics meet here, in the
objective, not in the model:

* ``theta`` stays float64 for the optimizer; it is rounded to the network's dtype when assigned to
  the variables (as the paper's code does), so two ``theta`` that differ below float32 resolution
  give the same network.
* The network runs in its dtype up to the logits ``z``; ``z`` is cast to float64
  (``tf.cast``, differentiable) before the :class:`~solvers.bridge.AutogradBridge`, so the volume
  constraint, filter, SIMP and FE solve are float64. ``dL/dz`` comes back float64 and is cast to
  float32 by the cast's gradient; the variables' gradients are float32 and returned as float64.
  Values and gradients of a float32 network therefore carry float32 rounding of the network
  (relative ~1e-6 to 1e-5 on the loss), not of the physics.
* Hessian-vector products of a float32 network are supported at float32 accuracy (the same nested
  tapes through the cast; the physics' ``H_z v`` is float64); exact second derivatives need the
  float64 network, which takes the same ``theta`` (same parameter layout): build it with
  ``dataclasses.replace(config, dtype='float64')`` and the same seed.

An objective mutates its model's variables: it is not thread-safe, and one model should back one
objective at a time.
"""
from __future__ import annotations

import autograd
import numpy as np

from .flat import ParameterSpec, flatten, unflatten
from .models import PixelModel
from .physics import Compliance

__all__ = ["ModelObjective", "as_objective"]


class ModelObjective:
    """Flat view of a model + physics (see the module docstring).

    Attributes:
        model: the wrapped model.
        problem: its :class:`~solvers.problems.Problem`.
        model_kind: ``"pixel"`` or ``"cnn"``.
        volume_constraint: whether the image holds logits for the constrained sigmoid.
        physics: the :class:`~solvers.physics.Compliance` used.
        compiled: run the CNN's TensorFlow side as ``tf.function`` graphs (faster; False runs
            eagerly, e.g. for debugging).
        size: number of parameters.
        parameter_specs: tensor layout of ``theta``.
    """

    def __init__(self, model, *, penal: float = 3.0, filter_radius: float = 2.0,
                 root_tolerance: float = 1e-12, physics: Compliance | None = None,
                 compiled: bool = True):
        if not (np.isfinite(root_tolerance) and root_tolerance >= 0):
            raise ValueError(f"root_tolerance must be a finite number >= 0 (the paper: 1e-12; 0 "
                             f"for full precision), got {root_tolerance}")
        self.model = model
        self.problem = model.problem
        self.volume_constraint = bool(model.volume_constraint)
        self.model_kind = "pixel" if _is_pixel_model(model) else "cnn"
        self.physics = physics if physics is not None else Compliance(
            self.problem, penal=penal, filter_radius=filter_radius, root_tolerance=root_tolerance)
        self.parameter_specs: tuple[ParameterSpec, ...] = tuple(model.parameter_specs)
        self.size = sum(spec.size for spec in self.parameter_specs)
        if isinstance(model, PixelModel):  # without TensorFlow (see solvers.models)
            self._initial = model.pixel_values().ravel()
        else:
            self._initial = np.concatenate([np.asarray(v.numpy(), dtype=np.float64).ravel()
                                            for v in model.variables])
        self._shape = (self.problem.height, self.problem.width)
        loss = self._loss_of_image
        self._image_value_and_grad = autograd.value_and_grad(loss)
        self._image_hvp = autograd.make_hvp(loss)
        self.compiled = compiled
        self._functions = None

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def penal(self) -> float:
        return self.physics.penal

    @property
    def filter_radius(self) -> float:
        return self.physics.filter_radius

    def _loss_of_image(self, image):
        return self.physics(image, self.volume_constraint)

    def _check_theta(self, theta: np.ndarray, name: str = "theta") -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (self.size,):
            raise ValueError(f"{name} has shape {theta.shape}; this {self.model_kind} objective "
                             f"has {self.size} parameters, so ({self.size},) is expected")
        # theta . theta is finite unless an entry is not (or it overflows): one pass, no mask
        if not np.isfinite(theta.dot(theta)) and not np.all(np.isfinite(theta)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return theta

    def _assign(self, theta: np.ndarray) -> None:
        """Copy ``theta`` into the model's variables: one TF call, split inside the graph,
        each part rounded to its variable's dtype (float32 for a float32 network)."""
        self._tf_functions()["assign"](theta)

    def _image(self, theta: np.ndarray) -> np.ndarray:
        if self.model_kind == "pixel":
            return theta.reshape(self._shape)
        self._assign(theta)
        image = self._tf_functions()["image"]()  # in the network's dtype
        return np.asarray(image.numpy(), dtype=np.float64).reshape(self._shape)

    def _tf_functions(self) -> dict:
        """The CNN's value-and-gradient and Hessian-vector product as (compiled) TF functions."""
        if self._functions is None:
            import tensorflow as tf

            from .bridge import AutogradBridge
            bridge = AutogradBridge(self._loss_of_image)
            model, variables = self.model, self.model.variables

            def physics_image():  # the float64 boundary (see the module docstring)
                return tf.cast(model(), tf.float64)

            def value_and_grad():
                with tf.GradientTape() as tape:
                    image = physics_image()
                value, image_gradient = bridge.value_and_grad(image)
                return value, tape.gradient(image, variables, output_gradients=image_gradient)

            def hvp(directions):
                with tf.GradientTape() as outer:
                    with tf.GradientTape() as inner:
                        image = physics_image()
                    image_gradient = bridge.gradient(image)
                    gradients = inner.gradient(image, variables, output_gradients=image_gradient)
                    projection = tf.add_n([tf.reduce_sum(g * d) for g, d in
                                           zip(gradients, directions) if g is not None])
                return outer.gradient(projection, variables)

            sizes = [spec.size for spec in self.parameter_specs]
            # one dtype for every variable (float32 networks): theta is rounded in numpy into
            # a reused buffer, so TensorFlow copies half the bytes and casts nothing (the
            # rounding is the same IEEE round-to-nearest either way)
            dtypes = {variable.dtype for variable in variables}
            input_dtype = dtypes.pop() if len(dtypes) == 1 else tf.float64

            def assign(theta):
                for variable, part in zip(variables, tf.split(theta, sizes)):
                    variable.assign(tf.reshape(tf.cast(part, variable.dtype), variable.shape))

            wrap = tf.function if self.compiled else (lambda f: f)
            signature = [tf.TensorSpec([self.size], input_dtype)]
            assign_tf = (tf.function(assign, input_signature=signature) if self.compiled
                         else lambda theta: assign(tf.constant(theta)))
            if input_dtype == tf.float64:
                assign_fn = assign_tf
            else:
                buffer = np.empty(self.size, dtype=input_dtype.as_numpy_dtype)

                def assign_fn(theta):
                    np.copyto(buffer, theta, casting="same_kind")
                    assign_tf(buffer)

            self._functions = {"assign": assign_fn,
                               "image": wrap(lambda: model()),
                               "value_and_grad": wrap(value_and_grad),
                               "hvp": wrap(hvp), "bridge": bridge}
        return self._functions

    # -- FlatObjective -----------------------------------------------------------------------
    def initial(self) -> np.ndarray:
        """The model's parameters when the objective was made, float64 ``(size,)``."""
        return self._initial.copy()

    def unflatten(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named parameter tensors (views) of a flat vector, in ``parameter_specs`` order."""
        return unflatten(self.parameter_specs, self._check_theta(theta))

    def flatten(self, tensors) -> np.ndarray:
        """Inverse of :meth:`unflatten`."""
        return flatten(self.parameter_specs, tensors)

    def image(self, theta: np.ndarray) -> np.ndarray:
        """The model's output image ``z`` (logits or densities), float64 ``(H, W)``."""
        return self._image(self._check_theta(theta))

    def value(self, theta: np.ndarray) -> float:
        """Compliance at ``theta`` (no derivatives)."""
        return float(self._loss_of_image(self._image(self._check_theta(theta))))

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Compliance and its gradient ``(size,)`` at ``theta``."""
        theta = self._check_theta(theta)
        if self.model_kind == "pixel":
            value, gradient = self._image_value_and_grad(theta.reshape(self._shape))
            return float(value), np.asarray(gradient, dtype=np.float64).ravel()
        self._assign(theta)
        value, gradients = self._tf_functions()["value_and_grad"]()
        return float(value.numpy()), self._flat_tensors(gradients)

    def hvp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Hessian-vector product ``H(theta) v`` of the whole graph, float64 ``(size,)``: exact for
        pixels and the float64 CNN, at float32 accuracy for the float32 CNN."""
        theta = self._check_theta(theta)
        v = self._check_theta(v, "v")
        if self.model_kind == "pixel":
            product, _ = self._image_hvp(theta.reshape(self._shape))
            return np.asarray(product(v.reshape(self._shape)), dtype=np.float64).ravel()
        self._assign(theta)
        directions = [value.reshape(variable.shape).astype(variable.dtype.as_numpy_dtype)
                      for value, variable in
                      zip(unflatten(self.parameter_specs, v).values(), self.model.variables)]
        return self._flat_tensors(self._tf_functions()["hvp"](directions))

    def design(self, theta: np.ndarray) -> np.ndarray:
        """Physical (filtered) density in [0, 1], float64 ``(H, W)``."""
        image = self._image(self._check_theta(theta))
        return np.asarray(self.physics.physical_density(image, self.volume_constraint))

    # -- for MMA and OC (pixel model without the sigmoid) ----------------------------------
    @property
    def volume_fraction(self) -> float:
        return float(self.problem.volume_fraction)

    def volume(self, theta: np.ndarray) -> float:
        """Mean density over the mask, of the physical (filtered) density or, for a
        ``PixelModel(volume_of="design")``, of the densities themselves; the constraint is
        ``volume <= volume_fraction``."""
        self._require_densities("volume")
        image = self._image(self._check_theta(theta))
        return float(self.physics.volume(image, filtered=self._volume_filtered))

    def volume_grad(self, theta: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`volume` (constant: the volume is linear), ``(size,)``."""
        self._require_densities("volume_grad")
        theta = self._check_theta(theta)
        gradient = autograd.grad(lambda x: self.physics.volume(
            x, filtered=self._volume_filtered))(theta.reshape(self._shape))
        return np.asarray(gradient).ravel()

    @property
    def linear_volume(self) -> bool:
        """True: :meth:`volume` is ``volume_grad . x`` with a nonnegative ``volume_grad`` (a
        mean of filtered or plain densities over the mask); OC's bisection uses this
        (:func:`solvers.optim.constrained.oc_update`)."""
        self._require_densities("linear_volume")
        return True

    @property
    def _volume_filtered(self) -> bool:
        return getattr(self.model, "volume_of", "physical") == "physical"

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Box bounds of the densities: [0, 1] inside the mask, [0, 0] outside; each ``(size,)``."""
        self._require_densities("bounds")
        upper = np.asarray(self.problem.mask, dtype=np.float64).ravel()
        return np.zeros(self.size), upper

    def _require_densities(self, what: str) -> None:
        if self.model_kind != "pixel" or self.volume_constraint:
            raise AttributeError(
                f"{what} is defined for a pixel model of densities only: use "
                "as_objective(PixelModel(problem, volume_constraint=False))")

    def _flat_tensors(self, tensors) -> np.ndarray:
        # np.asarray reads a CPU tensor's buffer in place (Tensor.numpy() would copy it first);
        # the concatenation is the one copy, into a new float64 vector.
        parts = [np.zeros(spec.size) if tensor is None else np.asarray(tensor).reshape(-1)
                 for tensor, spec in zip(tensors, self.parameter_specs)]
        return np.concatenate(parts, dtype=np.float64)


def _is_pixel_model(model) -> bool:
    specs = tuple(model.parameter_specs)
    return len(specs) == 1 and specs[0].kind == "pixels"


def as_objective(model, *, penal: float = 3.0, filter_radius: float = 2.0,
                 root_tolerance: float = 1e-12) -> ModelObjective:
    """The flat objective of ``model`` (a ``PixelModel`` or ``CNNModel``) and its problem's physics.

    Args:
        model: a model of :mod:`solvers.models`.
        penal: SIMP penalty p.
        filter_radius: cone filter radius (0: none).
        root_tolerance: bracket width of the volume-constraint bisection (the paper: 1e-12;
            0 for full precision, e.g. for finite-difference checks).

    Raises:
        ValueError: ``root_tolerance`` negative or not finite.

    Returns:
        A :class:`ModelObjective` (implements :class:`~solvers.flat.FlatObjective`, plus
        ``volume``/``volume_grad``/``bounds`` for a density pixel model).
    """
    return ModelObjective(model, penal=penal, filter_radius=filter_radius,
                          root_tolerance=root_tolerance)
