"""The memory a run needs, estimated before it starts, and the check against the machine's memory.

:func:`estimate_run_memory` is pure arithmetic on a :class:`studies.store.RunConfig` (no
allocation, no problem built), so a run that cannot fit is refused at once instead of growing until
the kernel's OOM killer ends it without a word. :func:`check_memory` compares the estimate of the
runs that will be alive at the same time with ``MemAvailable`` of ``/proc/meminfo`` and raises
:class:`InsufficientMemoryError` (one line with both numbers) when they do not fit.

The model (bytes; ``N = W H`` elements, ``n = 2 (W + 1) (H + 1)`` dofs, ``P`` parameters)::

    baseline      interpreter, numpy/scipy/cvxopt and TensorFlow as imported today     750 MiB
    mesh          stiffness assembly (64 int64 index pairs per element, the unique
                  sort, the moduli-to-values map), autograd working set of one
                  evaluation and its Hessian-vector products                          2,400 N
    factor        CHOLMOD's supernodal factor: 12 bytes per nonzero of L, with
                  nnz(L) = (2.3 + 0.165 log2 n) n log2 n  (nested dissection on a
                  2-D grid; fitted to CHOLMOD's factors of 4,256 to 1,051,136 dofs,
                  within 3 %)
    filter        96 bytes per nonzero of the cone filter (the matrix, its masked
                  copy, their transposes, and the triplets they are built from);
                  nonzeros = N x the stencil's offsets inside the radius, the
                  stencil clamped to the grid
    model         P float64 vectors kept by the model, the optimizer (2 memory + 8
                  for L-BFGS, 8 for the others) and the CNN's activations (16
                  float64 copies of every block output, for nested tapes)
    recording     the kept iterates, gradients (P each), pairs (2 P) and designs (N),
                  twice (the result and the checkpoint snapshot written from it)

Calibration (:data:`CALIBRATION`): the peak RSS (``ru_maxrss``) of pixel L-BFGS runs of 3
evaluations with the default recording, 64x32 to 1024x512 elements, measured on the 2-core
development machine; the estimate lies 7 to 10 % above each. A 5000x5000 pixel run (the one the
OOM killer ended at 23.7 GB) is estimated at 1.9e11 bytes, most of it the factor (93 GiB) and
the assembly (56 GiB).
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from solvers.result import RecordOptions
from studies.runner import ConfigurationError

__all__ = ["CALIBRATION", "InsufficientMemoryError", "MemoryEstimate", "available_memory",
           "check_memory", "estimate_memory", "estimate_run_memory", "factor_nonzeros",
           "filter_nonzeros", "format_bytes"]

_BASELINE = 750 * 2 ** 20
_MESH_PER_ELEMENT = 2400
_FACTOR_PER_NONZERO = 12
_FILTER_PER_NONZERO = 96
_CNN_TAPE_COPIES = 16
_PAIR_METHODS = ("lbfgs", "hd")

CALIBRATION: Mapping[str, int] = {"64x32": 727_207_936, "128x64": 759_214_080,
                                  "256x128": 896_827_392, "512x256": 1_457_033_216,
                                  "1024x512": 3_755_384_832}
"""Peak resident memory (bytes) measured here of a pixel L-BFGS run of 3 evaluations with the
default recording, by size (the tests hold the estimate within 15 % above these)."""


class InsufficientMemoryError(ConfigurationError):
    """The runs would need more memory than the machine has available (one-line message)."""


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """What one run is expected to hold at its peak, by part.

    Attributes:
        label: the run's label (problem/model/optimizer/seed).
        parts: part name -> bytes, in the order of the module docstring.
    """

    label: str
    parts: Mapping[str, int]

    @property
    def total(self) -> int:
        """The sum of the parts, in bytes."""
        return int(sum(self.parts.values()))

    def largest(self, count: int = 3) -> list[tuple[str, int]]:
        """The ``count`` largest parts, largest first."""
        return sorted(self.parts.items(), key=lambda item: -item[1])[:count]


def factor_nonzeros(dofs: int) -> int:
    """Estimated nonzeros of the Cholesky factor of a 2-D Q4 stiffness matrix with ``dofs``
    unknowns, ordered by nested dissection (CHOLMOD's default): ``(2.3 + 0.165 log2 n) n log2 n``
    (George 1973: ``O(n log n)`` fill; constants fitted to CHOLMOD on 4e3 to 1e6 dofs)."""
    if dofs < 2:
        return max(dofs, 0)
    log = math.log2(dofs)
    return int((2.3 + 0.165 * log) * dofs * log)


def filter_nonzeros(width: int, height: int, radius: float) -> int:
    """An upper bound of the cone filter's nonzeros: every element times the number of stencil
    offsets ``(dr, dc)`` with ``|(dr, dc)| < radius``, the stencil clamped to the grid."""
    if radius <= 0:
        return width * height
    reach_rows = min(math.ceil(radius), height - 1)
    reach_cols = min(math.ceil(radius), width - 1)
    offsets = 0
    for d_row in range(-reach_rows, reach_rows + 1):
        room = radius * radius - d_row * d_row
        if room <= 0:
            continue
        half = math.ceil(math.sqrt(room)) - 1          # largest |dc| with dc^2 < room
        while (half + 1) ** 2 < room:
            half += 1
        while half >= 0 and half * half >= room:
            half -= 1
        offsets += 2 * min(half, reach_cols) + 1 if half >= 0 else 0
    return width * height * offsets


def _cnn_sizes(width: int, height: int, model_options: Mapping[str, Any]) -> tuple[int, int]:
    """Parameters and float count of the block outputs of the CNN of these options."""
    from solvers.models import CNNConfig

    config = CNNConfig(**dict(model_options))
    resize = math.prod(config.resizes)
    rows, columns = height // resize, width // resize
    kh, kw = config.kernel_size
    parameters = config.latent_size
    cells = rows * columns * config.dense_channels
    parameters += config.latent_size * cells + cells                 # dense kernel and bias
    channels, activations = config.dense_channels, cells
    for factor, filters in zip(config.resizes, config.conv_filters):
        rows, columns = rows * factor, columns * factor
        parameters += kh * kw * channels * filters + filters          # convolution
        if config.offset_scale:
            parameters += rows * columns * filters                    # the block's offset
        activations += rows * columns * filters
        channels = filters
    return parameters, activations


def _stored_counts(record, optimizer: str, steps: int) -> tuple[int, int, int]:
    """How many iterates (with their gradients), pairs and designs the run will keep."""
    iterates = 0
    if record.iterates_every:
        iterates = steps // record.iterates_every + 2              # and the last
    iterates += len(record.iterates_at)
    pairs = 0
    if record.pairs and optimizer in _PAIR_METHODS:
        pairs = steps if record.pairs_until is None else min(steps, record.pairs_until)
    return min(iterates, steps + 1), pairs, len(record.designs_at)


def estimate_memory(*, width: int, height: int, model: str, optimizer: str, steps: int,
                    filter_radius: float = 2.0, record: RecordOptions = RecordOptions(),
                    options: Mapping[str, Any] | None = None,
                    model_options: Mapping[str, Any] | None = None,
                    label: str = "") -> MemoryEstimate:
    """The peak memory of one run, by part (the module docstring gives the model).

    Pure arithmetic on the run's numbers: nothing is built or allocated (for a CNN, its
    architecture is read from :class:`solvers.models.CNNConfig`).

    Args:
        width, height: the design in elements.
        model: ``"pixel"`` or ``"cnn"``.
        optimizer: the method (its L-BFGS memory is read from ``options``, default 10).
        steps: the run's budget.
        filter_radius: the cone filter's radius.
        record: what the run keeps.
        options, model_options: as in :class:`studies.store.RunConfig`.
        label: names the run in messages.

    Raises:
        ConfigurationError: CNN options that :class:`solvers.models.CNNConfig` refuses.
    """
    options, model_options = dict(options or {}), dict(model_options or {})
    width, height, steps = int(width), int(height), int(steps)
    elements = width * height
    dofs = 2 * (width + 1) * (height + 1)
    if model == "cnn":
        try:
            parameters, activations = _cnn_sizes(width, height, model_options)
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"CNN model options: {error}") from None
    else:
        parameters, activations = elements, 0
    memory = int(options.get("memory", 10)) if optimizer in _PAIR_METHODS else 0
    vectors = 2 * memory + 8 if memory else 8
    iterates, pairs, designs = _stored_counts(record, optimizer, steps)
    parts = {
        "baseline": _BASELINE,
        "mesh": _MESH_PER_ELEMENT * elements,
        "factor": _FACTOR_PER_NONZERO * factor_nonzeros(dofs),
        "filter": _FILTER_PER_NONZERO * filter_nonzeros(width, height, float(filter_radius)),
        "model": 8 * (vectors * parameters + _CNN_TAPE_COPIES * activations),
        "recording": 2 * 8 * (2 * iterates * parameters + 2 * pairs * parameters
                              + designs * elements + 4 * (steps + 1)),
    }
    return MemoryEstimate(label=label or f"{width}x{height}/{model}/{optimizer}", parts=parts)


def estimate_run_memory(config) -> MemoryEstimate:
    """:func:`estimate_memory` of a :class:`studies.store.RunConfig`."""
    return estimate_memory(width=config.width, height=config.height, model=config.model,
                           optimizer=config.optimizer, steps=config.steps,
                           filter_radius=config.filter_radius, record=config.record,
                           options=config.options, model_options=config.model_options,
                           label=config.label)


def available_memory(meminfo: str | os.PathLike = "/proc/meminfo") -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (None where the kernel does not say)."""
    try:
        with open(meminfo) as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    value, unit = line.split()[1:3]
                    return int(value) * (1024 if unit.lower() == "kb" else 1)
    except OSError:
        return None
    return None


def format_bytes(count: float) -> str:
    """``1.5e9`` -> ``"1.4 GiB"`` (binary units, 3 significant digits at most)."""
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{int(count)} B"


def shortfall(needed: float) -> int | None:
    """The available bytes when ``needed`` exceeds them, else None (also where the kernel does
    not say): ``if (available := shortfall(n)) is not None: raise ...``."""
    available = available_memory()
    return available if available is not None and needed > available else None


_RUN_ADVICE = "use a smaller --size, fewer --jobs, or --ignore-memory-check to run anyway"
# where what the run keeps is the largest part, a smaller design would not help
_RECORDING_ADVICE = ("use fewer --steps, keep fewer iterates (--iterates-every) or pairs "
                     "(--no-pairs), fewer --jobs, or --ignore-memory-check to run anyway")


def check_memory(estimates: Sequence[MemoryEstimate], *, jobs: int = 1,
                 available: int | None = None, workers: str = "--jobs",
                 advice: str = _RUN_ADVICE) -> None:
    """Refuse runs that cannot fit in memory, before any of them starts.

    With ``jobs`` worker processes the ``jobs`` largest runs may be alive at once, each in its
    own process (its own baseline); one after another, the largest alone.

    Args:
        estimates: the runs' :class:`MemoryEstimate` objects.
        jobs: worker processes.
        available: bytes available (default: :func:`available_memory`; where that is None, e.g.
            on a system without ``/proc/meminfo``, nothing is checked).
        workers: how the message names the workers (``"--jobs"`` for the command line).
        advice: the message's last clause, what to do instead (the command line's default
            advice names the recording options instead of --size where what the largest run
            keeps is its largest part).

    Raises:
        InsufficientMemoryError: the estimate exceeds the available memory; the message names
            the largest run, its largest parts, the total and the available memory.
    """
    if not estimates:
        return
    available = available_memory() if available is None else available
    if available is None:
        return
    together = sorted(estimates, key=lambda e: -e.total)[:max(1, min(jobs, len(estimates)))]
    needed = sum(e.total for e in together)
    if needed <= available:
        return
    worst = together[0]
    parts = ", ".join(f"{name} {format_bytes(size)}" for name, size in worst.largest())
    if advice == _RUN_ADVICE and worst.largest(1)[0][0] == "recording":
        advice = _RECORDING_ADVICE
    if len(together) > 1:
        what = (f"{len(together)} runs at once ({workers} {jobs}) need about "
                f"{format_bytes(needed)} ({needed:.3g} bytes; the largest, {worst.label}: "
                f"{parts})")
    else:
        what = (f"{worst.label} needs about {format_bytes(needed)} ({needed:.3g} bytes: "
                f"{parts})")
    raise InsufficientMemoryError(
        f"{what}, but this machine has {format_bytes(available)} ({available:.3g} bytes) "
        f"available (MemAvailable); {advice}")
