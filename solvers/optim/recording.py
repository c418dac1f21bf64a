"""What every optimizer run records, and how a run is stopped early.

The :class:`Recorder` is the only gate between a method and the objective: a method calls
:meth:`Recorder.evaluate` for every objective call and :meth:`Recorder.accept` for every accepted
iterate, and the recorder keeps the histories that :class:`~solvers.result.OptimizationResult`
asks for (index conventions in :mod:`solvers.result`), calls the user's callback and turns
problems into a :class:`RunStopped` exception that the driver catches:

* a non-finite loss or gradient, a gradient of the wrong shape, or an exception raised by the
  objective -> status ``"failed"``, message naming the evaluation and the problem;
* ``StopIteration`` raised by the callback -> status ``"interrupted"``.

``KeyboardInterrupt`` is not converted: it travels up to the driver, which keeps what was recorded.

Correction pairs (L-BFGS-type methods): at every accepted iterate ``x_{k+1}`` the pair
``s = x_{k+1} - x_k``, ``y = g_{k+1} - g_k`` is tested with the L-BFGS-B curvature rule
(:func:`curvature_pair_accepted`) and either kept (oldest first, with ``pair_iterations = k + 1``)
or counted in ``skipped_pairs``.

A resumed run (``previous`` given) starts from ``previous.x``: its first evaluation (at that point)
is appended to the evaluation history but not repeated as an iterate, and iterate indices continue
from ``previous.iterations``. A run resumed from an exact state calls :meth:`Recorder.restore`
instead of evaluating the start: nothing is appended.

Copies: by default the recorder copies every point and gradient it is given or returns, so a
method may reuse or change its arrays freely. A method that lends its buffers passes
``copy=False`` to :meth:`Recorder.evaluate` and :meth:`Recorder.accept` and promises that (a) it
does not change a point while the recorder holds it, i.e. until that point's next evaluation or,
once accepted, until the next :meth:`Recorder.accept` has returned, (b) it never changes a
gradient the recorder returned, and (c) it uses such a gradient only while it belongs to the
current iterate or to the last evaluation. The objective then sees the method's own point (an
objective never changes its argument), the objective's gradient is copied into one of three
buffers of the recorder (so an objective may reuse its output array), and the recorder copies
only what it stores (kept iterates and gradients; pairs are copied as before). The recorded
values are the same either way, bit for bit (the norms below are formed exactly as
:func:`numpy.linalg.norm` forms them, ``sqrt(v . v)``).

Optimizer state: a method whose state can be saved passes ``state=`` to :meth:`Recorder.accept`
(and to :meth:`Recorder.boundary` at its start), a function ``state(copy: bool)`` returning its
:class:`~.state.OptimizerState` at that boundary (``copy=False`` only for the final result, when
the method's buffers are no longer used); it must not change what that function reads until its
next :meth:`Recorder.evaluate`. Snapshots and the result carry the state only while no
evaluation has begun since, so a state always matches the histories it is stored with (a run
interrupted inside a line search carries none).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from ..result import OptimizationResult, ProgressInfo, RecordOptions
from .state import OptimizerState, objective_fingerprint, option_scalars

__all__ = ["Recorder", "RunStopped", "curvature_pair_accepted", "MACHINE_EPSILON"]

MACHINE_EPSILON = float(np.finfo(np.float64).eps)


def curvature_pair_accepted(s: np.ndarray, y: np.ndarray, g_old: np.ndarray) -> bool:
    """The L-BFGS-B update test: keep ``(s, y)`` unless ``sᵀy <= eps * (-g_oldᵀ s)``, and never
    a pair with ``sᵀy <= 0``.

    The first part is the skip rule of ``mainlb`` in L-BFGS-B 3.0 (scipy's ``__lbfgsb.c``: ``dr <=
    epsmach * ddum`` with ``dr = (gd - gdold) * stp`` = sᵀy and ``ddum = -gdold * stp`` =
    -g_oldᵀ s), with eps the float64 machine epsilon. It assumes a descent step (``g_oldᵀ s <
    0``), which a line search guarantees; a fixed-step method (``hd``) whose step went uphill
    through rounding (a diverging run) could otherwise store ``sᵀy = 0`` and divide by it. For
    descent steps the two rules agree.

    Args:
        s: float64 ``(n,)`` step ``x_{k+1} - x_k``.
        y: float64 ``(n,)`` gradient change ``g_{k+1} - g_k``.
        g_old: float64 ``(n,)`` gradient at ``x_k``.
    """
    sy = float(s @ y)
    return bool(sy > 0.0 and sy > MACHINE_EPSILON * -float(g_old @ s))


def zero_gradient_outcome(loss: float, start_loss: float) -> tuple[str, str, bool]:
    """``(status, message, converged)`` of a fixed-step method whose gradient is exactly zero.

    Above the starting loss this is a step that saturated the parameterization (tanh/sigmoid
    units with vanishing derivatives), a divergence; otherwise a stationary point.
    """
    if loss > start_loss:
        return ("failed", f"diverged: the gradient vanished at loss {loss:.6g}, above the "
                f"starting loss {start_loss:.6g} (the step saturated the parameterization; "
                f"use a smaller learning_rate)", False)
    return "converged", "the gradient is exactly zero", True


class RunStopped(Exception):
    """Ends a run early; the driver turns it into the result's status and message."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _rows(vectors: list[np.ndarray], n: int) -> np.ndarray:
    """Stack ``(n,)`` vectors into a float64 ``(len(vectors), n)`` array (``(0, n)`` if none)."""
    return np.array(vectors, dtype=np.float64).reshape(-1, n)


def _finite_min(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.min()) if finite.size else float("inf")


class Recorder:
    """Histories of one run (see the module docstring).

    Args:
        objective: the :class:`~solvers.flat.FlatObjective` being minimized.
        method: the method name stored in the result.
        options: the options dict stored in the result.
        record: what to keep besides the loss history.
        callback: called with a :class:`~solvers.result.ProgressInfo` after every accepted iterate.
        steps: the run's budget (reported to the callback).
        start: float64 ``(n,)`` the point the run starts from (reported as ``x`` if the run
            stops before its first evaluation).
        track_pairs: whether the method is L-BFGS-type (pairs and skip counts are computed).
        previous: the result being resumed, or None.
    """

    def __init__(self, objective: Any, method: str, options: dict[str, Any],
                 record: RecordOptions, callback: Callable[[ProgressInfo], Any] | None,
                 steps: int, start: np.ndarray, *, track_pairs: bool,
                 previous: OptimizationResult | None = None):
        self.objective = objective
        self.method = method
        self.options = options
        self.record = record
        self.callback = callback
        self.steps = steps
        self.track_pairs = track_pairs
        self.previous = previous
        self.local_evaluations = 0
        self.local_pair_flags: list[bool] = []
        self.current: tuple[np.ndarray, float, np.ndarray] | None = None
        self.last_evaluation: tuple[np.ndarray, float, np.ndarray] | None = None
        self._first_x = np.array(start, dtype=np.float64, copy=True)
        self._evaluated = False
        self._designs_at = {i for i in record.designs_at if i >= 0}
        self._t0 = time.perf_counter()
        self._previous_elapsed = 0.0
        self._losses: list[float] = []
        self._iterate_losses: list[float] = []
        self._grad_norms: list[float] = []
        self._step_lengths: list[float] = []
        self._iterate_indices: list[int] = []
        self._iterates: list[np.ndarray] = []
        self._gradients: list[np.ndarray] = []
        self._design_indices: list[int] = []
        self._designs: list[np.ndarray] = []
        self._pair_iterations: list[int] = []
        self._s_pairs: list[np.ndarray] = []
        self._y_pairs: list[np.ndarray] = []
        self._skipped = 0
        self._resets: list[int] = []
        self._state_source: tuple[Callable[..., OptimizerState], int] | None = None
        self._k = 0
        self._best = float("inf")
        self._scratch: np.ndarray | None = None  # (n,) for x - x_old, allocated on first use
        self._last_norm: tuple[np.ndarray, float] | None = None  # (gradient, its norm)
        self._current_lent = False  # the current x and gradient are lent or reused arrays
        self._gradient_buffers: list[np.ndarray] = []  # evaluate(copy=False) copies into these
        if previous is not None:
            self._load(previous)

    def _load(self, previous: OptimizationResult) -> None:
        """Start the histories with those of a run being resumed."""
        n = self.objective.size
        self._losses = [float(v) for v in previous.loss_per_evaluation]
        self._iterate_losses = [float(v) for v in previous.loss_per_iterate]
        self._grad_norms = [float(v) for v in previous.grad_norm_per_iterate]
        self._step_lengths = [float(v) for v in previous.step_length_per_iterate]
        self._iterate_indices = [int(i) for i in previous.iterate_indices]
        if previous.iterates is not None:
            self._iterates = list(np.asarray(previous.iterates, dtype=np.float64))
            gradients = previous.gradients
            self._gradients = (list(np.asarray(gradients, dtype=np.float64)) if gradients
                               is not None else [np.full(n, np.nan) for _ in self._iterates])
        self._design_indices = [int(i) for i in previous.design_indices]
        if previous.designs is not None:
            self._designs = list(np.asarray(previous.designs, dtype=np.float64))
        if previous.s_pairs is not None and previous.y_pairs is not None:
            self._s_pairs = list(np.asarray(previous.s_pairs, dtype=np.float64))
            self._y_pairs = list(np.asarray(previous.y_pairs, dtype=np.float64))
            self._pair_iterations = [int(i) for i in previous.pair_iterations]
        # The previous result added its last iterate and design although the rules may not keep
        # them (RecordOptions: "and the last"); that iterate is no longer the last one.
        k = int(previous.iterations)
        if self._iterate_indices and self._iterate_indices[-1] == k \
                and not self.record.keeps_iterate(k):
            del self._iterate_indices[-1], self._iterates[-1], self._gradients[-1]
        if self._design_indices and self._design_indices[-1] == k and k not in self._designs_at:
            del self._design_indices[-1], self._designs[-1]
        self._skipped = int(previous.skipped_pairs)
        self._resets = [int(i) for i in previous.reset_iterations]
        self._k = int(previous.iterations)
        self._previous_elapsed = float(previous.elapsed)
        self._best = _finite_min(np.asarray(self._losses, dtype=np.float64))

    # -- counters ------------------------------------------------------------------------------
    @property
    def evaluations(self) -> int:
        """Objective calls so far, previous run included."""
        return len(self._losses)

    @property
    def iteration(self) -> int:
        """Index k of the current iterate."""
        return self._k

    @property
    def start_loss(self) -> float:
        """Loss at iterate 0 of the whole run (a resumed run's original start)."""
        return self._iterate_losses[0]

    def start_clock(self) -> None:
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return self._previous_elapsed + time.perf_counter() - self._t0

    # -- the two entry points of a method ------------------------------------------------------
    def evaluate(self, x: np.ndarray, *, copy: bool = True) -> tuple[float, np.ndarray]:
        """Call the objective at ``x`` (float64 ``(n,)``), record the loss, return ``(f, g)``.

        The first evaluation of a run is its starting iterate. Returns a copy of the gradient,
        or with ``copy=False`` the recorder's own gradient, which the method must not change
        (see "Copies" in the module docstring).

        Raises:
            RunStopped: status ``"failed"`` if the objective raises or returns a non-finite loss,
                a non-finite gradient or a gradient of the wrong shape.
        """
        self._state_source = None  # the method leaves its last boundary
        if copy or not self._evaluated:
            x = np.array(x, dtype=np.float64, copy=True)
        if not self._evaluated:
            self._first_x, self._evaluated = x, True
        index = self.evaluations
        try:
            loss, grad = self.objective.value_and_grad(x)
            loss = float(loss)
            grad = (np.array(grad, dtype=np.float64, copy=True) if copy
                    else np.asarray(grad, dtype=np.float64))
        except Exception as error:  # noqa: BLE001 - any objective error ends the run as failed
            raise RunStopped("failed", f"the objective raised {type(error).__name__} at "
                                       f"evaluation {index}: {error}") from error
        self._losses.append(loss)
        self.local_evaluations += 1
        if not np.isfinite(loss):
            raise RunStopped("failed", f"non-finite loss {loss} at evaluation {index}")
        if grad.shape != x.shape:
            raise RunStopped("failed", f"the gradient at evaluation {index} has shape "
                                       f"{grad.shape}; expected {x.shape}")
        if not copy:
            grad = self._into_free_buffer(grad)
        squared = float(grad.dot(grad))  # finite unless an entry is not (or it overflows)
        if not math.isfinite(squared) and not np.all(np.isfinite(grad)):
            raise RunStopped("failed", f"non-finite gradient at evaluation {index} "
                                       f"({int(np.sum(~np.isfinite(grad)))} entries)")
        self._last_norm = (grad, math.sqrt(squared))  # = np.linalg.norm(grad), bit for bit
        self._best = min(self._best, loss)
        self.last_evaluation = (x, loss, grad)
        if self.current is None:
            self._current_lent = not copy
            self._start(x, loss, grad)
        return loss, (grad.copy() if copy else grad)

    def _into_free_buffer(self, grad: np.ndarray) -> np.ndarray:
        """A copy of ``grad`` in a buffer that is neither the current nor the last evaluated
        gradient (at most three buffers exist; see "Copies" in the module docstring)."""
        held = [entry[2] for entry in (self.current, self.last_evaluation) if entry is not None]
        free = [buffer for buffer in self._gradient_buffers
                if not any(buffer is other for other in held)]
        if free:
            buffer = free[0]
        else:
            buffer = np.empty(grad.shape)
            self._gradient_buffers.append(buffer)
        np.copyto(buffer, grad)
        return buffer

    def _grad_norm(self, grad: np.ndarray) -> float:
        """``np.linalg.norm(grad)``; the value formed in :meth:`evaluate` when it is that one."""
        if self._last_norm is not None and self._last_norm[0] is grad:
            return self._last_norm[1]
        return float(np.linalg.norm(grad))

    def _distance(self, x: np.ndarray, x_old: np.ndarray) -> float:
        """``np.linalg.norm(x - x_old)`` (bit for bit) without a temporary vector."""
        if self._scratch is None or self._scratch.shape != x.shape:
            self._scratch = np.empty(x.shape)
        difference = np.subtract(x, x_old, out=self._scratch)
        return math.sqrt(float(difference.dot(difference)))

    def restore(self, x: np.ndarray, loss: float, grad: np.ndarray) -> None:
        """Continue a resumed run at its last iterate ``(x, loss, grad)`` without evaluating."""
        if self.previous is None or self.current is not None:
            raise RuntimeError("restore() is for the start of a resumed run only")
        x = np.array(x, dtype=np.float64, copy=True)
        self._first_x, self._evaluated = x, True
        self.current = (x, float(loss), np.array(grad, dtype=np.float64, copy=True))
        self.last_evaluation = self.current

    def boundary(self, state: Callable[..., OptimizerState]) -> None:
        """Register the method's state function for the iteration boundary being reached."""
        self._state_source = (state, self.evaluations)

    def make_state(self, arrays: dict[str, np.ndarray], scalars: dict[str, Any]
                   ) -> OptimizerState:
        """The method's state with the common entries added: the fingerprint, the options
        (``option.<name>``), ``evaluations`` and ``iterations`` at this boundary."""
        common = {**option_scalars(self.options), "evaluations": self.evaluations,
                  "iterations": self._k}
        return OptimizerState(method=self.method, size=int(self.objective.size),
                              fingerprint=objective_fingerprint(self.objective), arrays=arrays,
                              scalars={**scalars, **common})

    def note_reset(self) -> None:
        """Record that the method emptied its L-BFGS memory at the current iterate."""
        self._resets.append(self._k)

    def accept(self, x: np.ndarray, loss: float, grad: np.ndarray, pair: Any = "compute",
               state: Callable[..., OptimizerState] | None = None, *, copy: bool = True
               ) -> tuple[np.ndarray, np.ndarray] | None:
        """Record ``(x, loss, grad)`` as the next accepted iterate and call the callback.

        Args:
            pair: for L-BFGS-type methods that decide their pairs themselves: the kept pair
                ``(s, y)`` (copied if recorded) or None (skipped); by default the recorder forms
                ``s = x - x_old``, ``y = grad - g_old`` and applies
                :func:`curvature_pair_accepted`.
            state: the method's state function at this boundary (see the module docstring).
            copy: False: keep ``x`` and ``grad`` without copying them (see "Copies" in the
                module docstring).

        Returns:
            For L-BFGS-type methods the correction pair ``(s, y)`` if it is kept, else None
            (always None for other methods).

        Raises:
            RunStopped: status ``"interrupted"`` when the callback raises ``StopIteration``.
        """
        if self.current is None:
            raise RuntimeError("accept() before the first evaluation")
        if copy:
            x = np.array(x, dtype=np.float64, copy=True)
            grad = np.array(grad, dtype=np.float64, copy=True)
        x_old, _, g_old = self.current
        if state is not None:
            self.boundary(state)
        self._k += 1
        self._iterate_losses.append(float(loss))
        self._grad_norms.append(self._grad_norm(grad))
        self._step_lengths.append(self._distance(x, x_old))
        self.current = (x, float(loss), grad)
        self._current_lent = not copy
        self._store_iterate()
        given = not isinstance(pair, str)
        if not given:
            pair = None
        if self.track_pairs:
            if not given:
                s, y = x - x_old, grad - g_old
                pair = (s, y) if curvature_pair_accepted(s, y, g_old) else None
            self.local_pair_flags.append(pair is not None)
            if pair is not None:
                if self.record.keeps_pair(self._k):
                    copy = given  # the method's own buffers are reused later
                    self._s_pairs.append(np.array(pair[0], dtype=np.float64, copy=copy))
                    self._y_pairs.append(np.array(pair[1], dtype=np.float64, copy=copy))
                    self._pair_iterations.append(self._k)
            else:
                self._skipped += 1
        self._notify()
        return pair

    def accept_last_evaluation(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Accept the last evaluated point, which must be ``x`` (bitwise)."""
        if self.last_evaluation is None or not np.array_equal(self.last_evaluation[0], x):
            raise RuntimeError("the accepted point is not the last evaluated one; the optimizer "
                               "did not behave as L-BFGS-B does")
        return self.accept(*self.last_evaluation)

    # -- internals -----------------------------------------------------------------------------
    def _start(self, x: np.ndarray, loss: float, grad: np.ndarray) -> None:
        self.current = (x, loss, grad)
        if self.previous is not None:
            return  # the starting iterate is the previous run's last one
        self._iterate_losses.append(loss)
        self._grad_norms.append(self._grad_norm(grad))
        self._step_lengths.append(float("nan"))
        self._store_iterate()

    def _store_iterate(self) -> None:
        x, _, grad = self.current
        if self.record.keeps_iterate(self._k):
            self._iterate_indices.append(self._k)
            self._iterates.append(x.copy() if self._current_lent else x)
            self._gradients.append(grad.copy() if self._current_lent else grad)
        if self._k in self._designs_at:
            self._design_indices.append(self._k)
            self._designs.append(self._design(x))

    def _design(self, x: np.ndarray) -> np.ndarray:
        try:
            return np.array(self.objective.design(x), dtype=np.float64, copy=True)
        except Exception as error:  # noqa: BLE001
            raise RunStopped("failed", f"objective.design raised {type(error).__name__} at "
                                       f"iterate {self._k}: {error}") from error

    def _notify(self) -> None:
        if self.callback is None:
            return
        info = ProgressInfo(
            iteration=self._k, evaluations=self.evaluations, loss=self.current[1],
            best_loss=self._best, steps=self.steps,
            snapshot=lambda k=self._k: self.result(
                "interrupted", f"snapshot at iterate {k}", converged=False))
        try:
            self.callback(info)
        except StopIteration as stop:
            raise RunStopped("interrupted",
                             f"the callback raised StopIteration at iterate {self._k}") from stop

    # -- the result ----------------------------------------------------------------------------
    def result(self, status: str, message: str, *, converged: bool, final: bool = False
               ) -> OptimizationResult:
        """The run so far as an :class:`~solvers.result.OptimizationResult` (state unchanged).

        ``final``: the method has returned; its state may hand over its buffers uncopied.
        """
        n = self.objective.size
        iterate_losses = list(self._iterate_losses)
        grad_norms = list(self._grad_norms)
        step_lengths = list(self._step_lengths)
        indices, iterates, gradients = (list(self._iterate_indices), list(self._iterates),
                                        list(self._gradients))
        design_indices, designs = list(self._design_indices), list(self._designs)
        if self.current is not None:
            x_last, _, g_last = self.current
        else:  # stopped at or before the first evaluation: iterate 0 without a usable loss
            x_last, g_last = self._first_x, np.full(n, np.nan)
            if self.previous is None:
                iterate_losses.append(self._losses[0] if self._losses else float("nan"))
                grad_norms.append(float("nan"))
                step_lengths.append(float("nan"))
        if self.record.keeps_last_iterate() and (not indices or indices[-1] != self._k):
            indices.append(self._k)
            iterates.append(x_last)
            gradients.append(g_last)
        if -1 in self.record.designs_at and (not design_indices or
                                             design_indices[-1] != self._k):
            try:
                designs.append(np.array(self.objective.design(x_last), dtype=np.float64))
                design_indices.append(self._k)
            except Exception as error:  # noqa: BLE001 - keep the run's data regardless
                message += (f"; the design of the last iterate could not be computed "
                            f"({type(error).__name__}: {error})")
        state = None
        if self._state_source is not None and self._state_source[1] == self.evaluations:
            state = self._state_source[0](copy=not final)
        keep_iterates = self.record.keeps_last_iterate() or bool(iterates)
        keep_pairs = (self.track_pairs and self.record.pairs) or bool(self._s_pairs)
        return OptimizationResult(
            method=self.method,
            options=dict(self.options),
            x=np.array(x_last, dtype=np.float64, copy=True),
            loss_per_evaluation=np.array(self._losses, dtype=np.float64),
            loss_per_iterate=np.array(iterate_losses, dtype=np.float64),
            grad_norm_per_iterate=np.array(grad_norms, dtype=np.float64),
            step_length_per_iterate=np.array(step_lengths, dtype=np.float64),
            iterations=self._k,
            evaluations=self.evaluations,
            converged=converged,
            status=status,
            message=message,
            iterate_indices=np.array(indices, dtype=int),
            iterates=_rows(iterates, n) if keep_iterates else None,
            gradients=_rows(gradients, n) if keep_iterates else None,
            s_pairs=_rows(self._s_pairs, n) if keep_pairs else None,
            y_pairs=_rows(self._y_pairs, n) if keep_pairs else None,
            pair_iterations=np.array(self._pair_iterations, dtype=int),
            skipped_pairs=self._skipped,
            reset_iterations=np.array(self._resets, dtype=int),
            design_indices=np.array(design_indices, dtype=int),
            designs=np.array(designs, dtype=np.float64) if designs else None,
            elapsed=self.elapsed(),
            state=state,
        )

