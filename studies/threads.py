"""Threads, memory allocator and start-up output of the processes nrto starts: one place for the
process-wide settings of TensorFlow, the BLAS and the C allocator.

The libraries (:mod:`solvers`, :mod:`landscape`) hold no global state, so the process-wide choices
live here, and every process that nrto starts makes them once, at its start:

* ``nrto`` commands (:func:`studies.cli.main`) call ``configure_threads()``: one run may use every
  core the process may run on (``os.sched_getaffinity``; both cores of the 2-core machine).
* A study worker calls ``configure_threads(1)`` when it starts, before it builds any objective:
  workers run side by side, one core each.

``configure_threads(n)`` sets, for this process and the processes it spawns:

* the BLAS and OpenMP pools (numpy's OpenBLAS, and any other BLAS already loaded, e.g. the one
  cvxopt's CHOLMOD calls) to ONE thread whatever ``n`` is, through ``threadpoolctl``, and
  ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` = 1 for libraries loaded later
  and for spawned children. Measured on the 2-core machine: with two OpenBLAS threads the
  L-BFGS vector work of a CNN run went from 68 to 655 ms per evaluation (the threads spin beside
  TensorFlow's), and CHOLMOD's factorization ran 2x slower; the BLAS work here is level-1 on
  vectors that do not gain from a second thread;
* TensorFlow's intra-op pool (the threads one op, e.g. a oneDNN convolution, runs on) and inter-op
  pool (independent ops run side by side) to ``n`` each: through ``TF_NUM_INTRAOP_THREADS`` /
  ``TF_NUM_INTEROP_THREADS`` (read by TensorFlow when it builds its pools) and, when TensorFlow is
  imported, through ``tf.config.threading``.

* the C allocator (glibc only; :func:`keep_freed_memory`) to keep the memory it frees for the
  next allocations instead of handing it back to the kernel. TensorFlow's convolutions (forward
  and gradient) allocate large work buffers at every call, 100-200 MB at 128x128 and 256x256
  (the im2col matrix of a 5x5 convolution is 25 times its input); glibc serves them with
  ``mmap`` (above 32 MB) or from per-thread heaps that it shrinks again, so every call made the
  kernel map and zero those pages anew. Measured here (float32 bilinear CNN, L-BFGS, one thread,
  ``python -m studies.benchmark_allocator``): system time was 30-40 % of the CPU time of an
  evaluation of the paper's bilinear CNN, and the settings cut its CPU per evaluation by 1.2-1.4x
  at 128x128 and 1.6x at 256x256, at unchanged peak memory and with bit-identical losses (the
  thesis's transposed CNN, whose calls allocate less: 1.03x). ``NRTO_KEEP_FREED_MEMORY=0`` in the
  environment leaves glibc's defaults.

TensorFlow builds its thread pools once per process, when it first runs an op; from then on they
cannot change. ``configure_threads`` therefore does NOT import TensorFlow (pixel-only runs never
need it): it installs an import hook, so that the settings are applied the moment something
imports ``tensorflow``. Called again with the same ``n`` it does nothing (idempotent); called with
another ``n`` after TensorFlow has run an op it raises ``RuntimeError`` naming both values (the
pools keep the old size; call it earlier, before any CNN is built); before that it takes the new
value.

Start-up output: importing TensorFlow writes, before its logging is configured and so regardless
of ``TF_CPP_MIN_LOG_LEVEL``, absl's "All log messages before absl::InitializeLog()" line, oneDNN's
and the CUDA stub's notices, the CPU-feature notice and, when the first op initializes the
devices, "failed call to cuInit" on machines without a GPU (twice per process). The import hook
runs the import and the device initialization with file descriptor 2 captured, drops exactly the
lines of :data:`_STARTUP_NOISE` and writes everything else (Python warnings, errors) back to
stderr unchanged. Nothing else is filtered, and no warning filter is touched. It also sets
``TF_CPP_MIN_LOG_LEVEL=2`` unless set (TensorFlow's own INFO and WARNING lines after start-up).
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator

import threadpoolctl

__all__ = ["configure_threads", "configured_threads", "available_cores", "keep_freed_memory",
           "quiet_startup"]

_BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_TF_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")

# The lines TensorFlow writes while it is imported and while it initializes its devices, before
# absl logging is set up (TensorFlow 2.16-2.21). Each pattern matches one whole line.
_STARTUP_NOISE = tuple(re.compile(pattern) for pattern in (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"[IWE]\d{4} [\d:. ]+\d+ (port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor|"
    r"cuda_dnn|cuda_fft|cuda_blas|cuda_diagnostics|computation_placer)\.cc:\d+\] .*",
    r"To enable the following instructions: .* in other operations, rebuild TensorFlow with the "
    r"appropriate compiler flags\.",
))

_state: dict[str, int | bool | None] = {"threads": None}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    return max(len(os.sched_getaffinity(0)), 1)


def configured_threads() -> int | None:
    """The ``n`` of the last :func:`configure_threads` call in this process, or None."""
    return _state["threads"]


def configure_threads(n: int | None = None) -> int:
    """Use ``n`` threads for TensorFlow and the BLAS in this process (see the module docstring).

    Args:
        n: threads per pool, a positive integer; None: :func:`available_cores`.

    Returns:
        The ``n`` applied.

    Raises:
        ValueError: ``n`` is not a positive integer.
        RuntimeError: TensorFlow has already built its thread pools with another size.
    """
    if n is None:
        n = available_cores()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be a positive integer; got {n!r}")
    if _state["threads"] == n:
        return n
    if "tensorflow" in sys.modules:
        _apply_to_tensorflow(sys.modules["tensorflow"], n)
    for name in _TF_VARIABLES:
        os.environ[name] = str(n)
    for name in _BLAS_VARIABLES:  # always 1: see the module docstring
        os.environ[name] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    threadpoolctl.threadpool_limits(limits=1)
    keep_freed_memory()
    _state["threads"] = n
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
    return n


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def keep_freed_memory() -> bool:
    """Make glibc's allocator keep the memory this process frees, for its next allocations.

    Three ``mallopt`` settings (see the module docstring for why): one heap for all threads
    (``M_ARENA_MAX`` 1: the per-thread heaps are the ones glibc shrinks after every large
    buffer), no ``mmap`` for large blocks (``M_MMAP_MAX`` 0: they come from that heap and are
    reused), and a heap that is trimmed only when 2 GiB at its top are free
    (``M_TRIM_THRESHOLD``). The memory a process holds is then the most it has used at once, as
    before (its peak), and is given back when it ends. Idempotent; call it early, before other
    threads allocate (as :func:`configure_threads` does).

    Returns:
        True when the settings were made; False where the C library has no ``mallopt`` (not
        glibc: macOS, musl) or ``NRTO_KEEP_FREED_MEMORY=0`` is set.
    """
    if os.environ.get("NRTO_KEEP_FREED_MEMORY", "1").strip() == "0":
        return False
    if _state.get("allocator") is not None:
        return _state["allocator"]
    try:
        mallopt = ctypes.CDLL(None).mallopt     # the process's own symbols: no library search
    except (OSError, AttributeError, TypeError):    # TypeError: Windows takes no None name
        _state["allocator"] = False
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = all(mallopt(name, value) == 1 for name, value in (
        (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2 ** 31 - 1)))
    _state["allocator"] = done
    return done


def _apply_to_tensorflow(tf, n: int) -> None:
    threading = tf.config.threading
    # 0 means TensorFlow's default, one thread per schedulable core for both pools
    current = tuple(value or available_cores() for value in (
        threading.get_intra_op_parallelism_threads(),
        threading.get_inter_op_parallelism_threads()))
    if current == (n, n):
        return
    try:
        threading.set_intra_op_parallelism_threads(n)
        threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        raise RuntimeError(
            f"TensorFlow has already built its thread pools (intra-op, inter-op = {current}); "
            f"they cannot become {n} threads now: call studies.threads.configure_threads({n}) "
            "at the start of the process, before any CNN is built") from None


@contextlib.contextmanager
def quiet_startup() -> Iterator[None]:
    """Run the body with file descriptor 2 captured; write back all but TensorFlow's start-up
    lines (:data:`_STARTUP_NOISE`)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True)
                    if not any(p.fullmatch(line.rstrip("\r\n")) for p in _STARTUP_NOISE)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, with its module execution run under :func:`quiet_startup`,
    followed by the thread settings and the device initialization (the cuInit line)."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name: str):  # resource readers etc. stay TensorFlow's loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with quiet_startup():
            self._loader.exec_module(module)
            if _state["threads"] is not None:
                _apply_to_tensorflow(module, _state["threads"])
            module.config.list_physical_devices()  # device initialization; pools not yet built


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` (the top-level package only) and wraps its loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec
