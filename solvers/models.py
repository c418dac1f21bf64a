"""The two parameterizations of the image z: pixels, and the CNN of Hoyer et al. (2019).

A model maps its trainable variables to the image ``z`` (logits or densities, before the
physics' volume constraint and filter) of shape ``(height, width)``, row 0 at the top: float64,
or float32 for a CNN with ``CNNConfig(dtype='float32')``.
Seen from outside, a model is:

    * ``problem``: the :class:`solvers.problems.Problem` it was built for (only ``width``,
      ``height``, ``mask`` (bool ``(height, width)``) and ``volume_fraction`` are read here);
    * ``volume_constraint``: whether the physics must map ``z`` through the sigmoid with the
      volume-fraction shift (``True``: ``z`` are logits) or use ``z * mask`` as densities;
    * ``variables``: list of trainable ``tf.Variable`` (float64; float32 for a float32 CNN),
      always in the same order;
    * ``parameter_specs``: tuple of :class:`solvers.flat.ParameterSpec`, same order, shapes
      in Keras layout (dense kernel ``(in, out)``, conv kernel ``(kh, kw, in, out)``,
      transposed-conv kernel ``(kh, kw, out, in)``);
    * ``model()``: the image ``z`` as a ``tf.Tensor`` ``(height, width)`` computed from the
      current variable values; differentiable twice (nested ``tf.GradientTape``) with respect to
      the variables.

TensorFlow is imported only where a network is used: this module (the protocol, :class:`PixelModel`
and :class:`CNNConfig`) imports it only when a pixel model's ``variables`` or ``model()`` are asked
for (the flat objective of a pixel model never asks: it differentiates the physics with autograd
alone); :class:`CNNModel` lives in :mod:`solvers.cnn` and is re-exported here on first access.

The CNN is built from TensorFlow ops and ``tf.Variable`` directly (no Keras layers, so the global
Keras ``floatx`` is never touched). Weights are drawn with Keras initializers
given explicit integer seeds derived from the model's ``seed`` (Keras initializers without a seed
draw one from Python's ``random`` module and would not be reproducible).

References:
    S. Hoyer, J. Sohl-Dickstein, S. Greydanus, "Neural reparameterization improves structural
    optimization", arXiv:1909.04240 (2019): the CNN and its defaults.
    MSc thesis "Exploring the optimization process in Neurally Reparameterized Topology
    Optimization", TU Delft (2021), appendix B.1.2: the Conv2DTranspose variant.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from solvers.flat import ParameterSpec
from solvers.primitives import sigmoid, sigmoid_shift

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["CNNConfig", "CNNModel", "ImageModel", "PixelModel",  # noqa: F822 (CNNModel: lazy)
           "NETWORK_DTYPES", "UPSAMPLING_MODES", "cnn_start_logits", "constrained_sigmoid"]

UPSAMPLING_MODES = ("bilinear", "transpose")
NETWORK_DTYPES = ("float64", "float32")
_IN_CNN_MODULE = ("CNNModel", "_global_normalization")  # TensorFlow code, in solvers.cnn


def __getattr__(name: str):
    if name in _IN_CNN_MODULE:
        return getattr(importlib.import_module("solvers.cnn"), name)
    raise AttributeError(f"module 'solvers.models' has no attribute {name!r}")


@runtime_checkable
class ImageModel(Protocol):
    """What the objective (``solvers.as_objective``) relies on; see the module docstring."""

    problem: Any
    volume_constraint: bool

    @property
    def variables(self) -> list[tf.Variable]: ...

    @property
    def parameter_specs(self) -> tuple[ParameterSpec, ...]: ...

    def __call__(self) -> tf.Tensor: ...


def _problem_mask(problem: Any) -> np.ndarray:
    """Validate the few fields of ``problem`` read here; return its mask, bool ``(H, W)``."""
    for field in ("width", "height", "mask", "volume_fraction"):
        if not hasattr(problem, field):
            raise TypeError(f"problem must have a {field!r} attribute (a solvers.problems."
                            f"Problem); got {type(problem).__name__}")
    width, height = problem.width, problem.height
    for label, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"problem.{label} must be a positive integer; got {value!r}")
    mask = np.asarray(problem.mask)
    if mask.shape != (height, width):
        raise ValueError(f"problem.mask has shape {mask.shape}; expected (height, width) = "
                         f"({height}, {width})")
    return mask.astype(bool)


VOLUME_MEASURES = ("physical", "design")


class PixelModel:
    """The image is the variable itself: one float64 ``(height, width)`` tensor.

    Initialized to ``volume_fraction * mask`` (the paper's constant start for the pixel baselines),
    or from given logits (the paper's pipeline starts pixel runs of seed ``s >= 0`` from the
    output of ``CNNModel(seed=s)``, see :func:`cnn_start_logits`):

    * ``volume_constraint=True`` (logits): the pixels are ``initial_logits`` themselves, so the
      first physical design is that of the model that produced them;
    * ``volume_constraint=False`` (densities): the pixels are
      ``constrained_sigmoid(initial_logits)``, the densities before the cone filter, so after the
      physics' filter the first physical design is again that model's.

    Args:
        problem: the problem (``width``, ``height``, ``mask``, ``volume_fraction`` are read).
        volume_constraint: ``True`` when ``z`` are logits for the sigmoid + volume-constraint map
            (pixels + L-BFGS in the paper); ``False`` when ``z`` are densities in [0, 1] used as
            ``z * mask`` (MMA, OC).
        initial_logits: None (the constant start) or float64 ``(height, width)`` finite logits.
        volume_of: the volume MMA and OC constrain (densities only): ``"physical"`` (the
            filtered density, the paper's choice) or ``"design"`` (the densities before the
            filter, the volume the logit models' sigmoid map fixes).
    """

    def __init__(self, problem: Any, *, volume_constraint: bool = True,
                 initial_logits: Any = None, volume_of: str = "physical"):
        if volume_of not in VOLUME_MEASURES:
            raise ValueError(f"volume_of must be one of {VOLUME_MEASURES}; got {volume_of!r}")
        if volume_of != "physical" and volume_constraint:
            raise ValueError("volume_of applies to densities (volume_constraint=False, MMA and "
                             "OC); logits have their volume fixed by the sigmoid map")
        self.volume_of = volume_of
        mask = _problem_mask(problem)
        volume_fraction = float(problem.volume_fraction)
        if not 0.0 < volume_fraction <= 1.0:
            raise ValueError(f"problem.volume_fraction must be in (0, 1]; got {volume_fraction}")
        self.problem = problem
        self.volume_constraint = bool(volume_constraint)
        self._start = _initial_pixels(mask, volume_fraction, self.volume_constraint,
                                      initial_logits)
        self._pixels = None  # the tf.Variable, made on first use of `variables` or `model()`
        self._specs = (ParameterSpec("pixels", (problem.height, problem.width), "pixels"),)

    def pixel_values(self) -> np.ndarray:
        """The current pixel values, float64 ``(height, width)`` (a copy); needs no TensorFlow
        unless the variable exists already."""
        if self._pixels is None:
            return self._start.copy()
        return np.asarray(self._pixels.numpy(), dtype=np.float64)

    @property
    def variables(self) -> list[tf.Variable]:
        """``[pixels]``: one float64 variable of shape ``(height, width)`` (imports TensorFlow)."""
        if self._pixels is None:
            import tensorflow as tf
            self._pixels = tf.Variable(self._start, trainable=True, dtype=tf.float64,
                                       name="pixels")
        return [self._pixels]

    @property
    def parameter_specs(self) -> tuple[ParameterSpec, ...]:
        return self._specs

    def __call__(self) -> tf.Tensor:
        """The image z: float64 ``(height, width)``, the current pixel values."""
        import tensorflow as tf
        return tf.identity(self.variables[0])


def _check_logits(logits: Any, shape: tuple[int, int]) -> np.ndarray:
    logits = np.array(logits, dtype=np.float64, copy=True)
    if logits.shape != shape:
        raise ValueError(f"initial_logits has shape {logits.shape}; the problem needs "
                         f"(height, width) = {shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("initial_logits contains NaN or infinite values")
    return logits


def _initial_pixels(mask: np.ndarray, volume_fraction: float, volume_constraint: bool,
                    initial_logits: Any) -> np.ndarray:
    """The start of a :class:`PixelModel`, float64 ``(H, W)`` (see its docstring)."""
    if initial_logits is None:
        return volume_fraction * mask.astype(np.float64)
    logits = _check_logits(initial_logits, mask.shape)
    return logits if volume_constraint else constrained_sigmoid(logits, mask, volume_fraction)


def constrained_sigmoid(logits: Any, mask: Any, volume_fraction: float,
                        tolerance: float = 1e-12) -> np.ndarray:
    """Densities ``sigmoid(z + b)`` inside the mask (0 outside), ``b`` giving the mean ``v``.

    The physics' volume-constraint map (:class:`solvers.physics.Compliance` with
    ``volume_constraint=True``) without the cone filter: the paper's ``constrained_logits``
    start of MMA and OC. With the same ``tolerance`` as the physics' ``root_tolerance`` (the
    paper: 1e-12) the shift ``b`` is bit for bit the physics' own.

    Args:
        logits: float64 ``(H, W)``.
        mask: bool ``(H, W)``, the cells that may hold material.
        volume_fraction: the target mean density over the mask, in (0, 1].
        tolerance: bracket width of the bisection for ``b``.

    Returns:
        float64 ``(H, W)`` densities in [0, 1] whose mean over the mask is ``volume_fraction``.
    """
    mask = np.asarray(mask, dtype=bool)
    logits = _check_logits(logits, mask.shape)
    density = np.zeros(mask.shape)
    if volume_fraction >= 1.0:
        density[mask] = 1.0
        return density
    inside = logits[mask]
    density[mask] = sigmoid(inside + sigmoid_shift(inside, float(volume_fraction), tolerance))
    return density


def cnn_start_logits(problem: Any, seed: int, config: "CNNConfig | None" = None) -> np.ndarray:
    """The raw output logits of ``CNNModel(problem, seed=seed, config=config)``, float64 ``(H, W)``.

    The start of the paper's pixel runs of seed ``s >= 0`` (pass it to ``PixelModel(...,
    initial_logits=...)``). ``config`` None means ``CNNConfig()`` (the paper's architecture).
    """
    from solvers.models import CNNModel as cnn_model  # the module attribute, wherever it lives

    model = cnn_model(problem, seed=seed, config=CNNConfig() if config is None else config)
    return np.asarray(model().numpy(), dtype=np.float64).reshape(problem.height, problem.width)


def _is_positive_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 1


@dataclasses.dataclass(frozen=True)
class CNNConfig:
    """Architecture of :class:`CNNModel`; the defaults are those of Hoyer et al. (2019).

    Attributes:
        latent_size: size of the trainable latent input vector.
        dense_channels: channels of the dense layer's output once reshaped to
            ``(H / prod(resizes), W / prod(resizes), dense_channels)``.
        resizes: upsampling factor of each block (integers >= 1).
        conv_filters: output channels of each block's convolution; same length as ``resizes``;
            the last must be 1 (the image has one channel).
        offset_scale: each block adds ``offset_scale * offset`` with a trainable ``offset`` of the
            block's full output shape ``(1, h, w, c)``; 0 removes the offsets (and their
            parameters).
        kernel_size: ``(kh, kw)`` of the convolutions.
        latent_scale: standard deviation of the latent vector's normal initialization.
        dense_init_scale: the dense kernel's orthogonal initializer has gain
            ``dense_init_scale * sqrt(max(units / latent_size, 1))``.
        upsampling: ``'bilinear'`` (the paper: tanh -> bilinear upsampling -> global
            normalization -> 'same' Conv2D -> offset; made twice differentiable here) or
            ``'transpose'`` (the thesis: tanh -> global normalization -> 'same' Conv2DTranspose with
            ``strides = resize`` -> offset).
        dtype: ``'float64'`` (the default: exact second derivatives for the landscape analyses)
            or ``'float32'`` (the paper's and the thesis's choice; TensorFlow's oneDNN float32
            kernels). It is the dtype of the network's variables and of every op up to its output
            logits; the physics is float64 whatever it is (see :mod:`solvers.objective` for the
            boundary). The parameter layout does not depend on it: the same ``theta`` evaluates
            with either network, e.g. a float32-trained run with
            ``dataclasses.replace(config, dtype='float64')``.
    """

    latent_size: int = 128
    dense_channels: int = 32
    resizes: tuple[int, ...] = (1, 2, 2, 2, 1)
    conv_filters: tuple[int, ...] = (128, 64, 32, 16, 1)
    offset_scale: float = 10.0
    kernel_size: tuple[int, int] = (5, 5)
    latent_scale: float = 1.0
    dense_init_scale: float = 1.0
    upsampling: str = "bilinear"
    dtype: str = "float64"

    def __post_init__(self):
        for name in ("resizes", "conv_filters", "kernel_size"):
            value = getattr(self, name)
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                value = (value,) * 2 if name == "kernel_size" else (value,)
            try:
                value = tuple(value)
            except TypeError:
                raise TypeError(f"{name} must be a tuple of positive integers; got {value!r}")
            if not all(_is_positive_int(v) for v in value):
                raise ValueError(f"{name} must contain positive integers only; got {value!r}")
            object.__setattr__(self, name, tuple(int(v) for v in value))
        for name in ("latent_size", "dense_channels"):
            if not _is_positive_int(getattr(self, name)):
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)!r}")
        if not self.resizes:
            raise ValueError("resizes must name at least one block; got ()")
        if len(self.resizes) != len(self.conv_filters):
            raise ValueError(f"resizes {self.resizes} and conv_filters {self.conv_filters} must "
                             f"have the same length (one entry per block)")
        if self.conv_filters[-1] != 1:
            raise ValueError(f"the last of conv_filters must be 1 (the image has one channel); "
                             f"got {self.conv_filters}")
        if len(self.kernel_size) != 2:
            raise ValueError(f"kernel_size must be (kh, kw); got {self.kernel_size}")
        for name in ("latent_scale", "dense_init_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value)
                    and value > 0):
                raise ValueError(f"{name} must be a finite positive number; got {value!r}")
        if not (isinstance(self.offset_scale, (int, float, np.floating))
                and math.isfinite(self.offset_scale) and self.offset_scale >= 0):
            raise ValueError(
                f"offset_scale must be a finite number >= 0; got {self.offset_scale!r}")
        if self.upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}; "
                             f"got {self.upsampling!r}")
        if self.dtype not in NETWORK_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(map(repr, NETWORK_DTYPES))} (the "
                             f"network's floating-point type); got {self.dtype!r}")

    @property
    def total_resize(self) -> int:
        """Product of ``resizes``: the problem's width and height must be multiples of it."""
        return int(np.prod(self.resizes))


