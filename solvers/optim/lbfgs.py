"""Our L-BFGS engine: L-BFGS-B 3.0 without bounds, step for step, on preallocated buffers.

For an unbounded problem, one iteration of L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995; scipy's C port
of version 3.0, ``mainlb``) reduces to

1. the point ``z = x - H g``: with an empty memory the generalized Cauchy point along ``-g`` with
   ``B = I`` (``z = x - g``), otherwise the subspace minimization over all variables, i.e. the
   L-BFGS inverse product ``H g`` (computed here by the two-loop recursion, Nocedal & Wright
   Algorithm 7.4, instead of the compact representation: equal in exact arithmetic);
2. the direction ``d = z - x`` and the Moré–Thuente search (:mod:`.line_search`) along it with
   ``ftol = 1e-3``, ``gtol = 0.9``, ``xtol = 0.1``, ``stpmin = 0``, ``stpmax = 1e10``, the first
   trial ``min(1 / ||d||_2, stpmax)`` in the run's first iteration (L-BFGS-B's ``iter == 0``) and
   1 afterwards, also after a memory reset; a trial at step 1 is the point ``z`` itself, others
   are ``x + stp d``; at most ``maxls`` evaluations;
3. a failed search (``maxls`` evaluations without an acceptable step, or ``gᵀd >= 0``) returns to
   ``x``; with pairs in memory the memory is emptied and the iteration restarts (a *reset*), with
   an empty memory the run ends ("ABNORMAL");
4. after an accepted step: the pair ``s = stp d``, ``y = g_new - g_old`` is skipped when
   ``sᵀy <= eps * (-g_oldᵀ s)`` with both sides formed from directional derivatives as
   L-BFGS-B does (``dr = (g_newᵀd - g_oldᵀd) stp``, ``ddum = -g_oldᵀd stp``); a kept pair
   enters the ring of the ``m`` newest with ``sᵀy = dr`` and ``theta = yᵀy / dr``, ``H0 = I/theta``.

Not reproduced: L-BFGS-B's resets after a singular Cholesky factorization of its middle matrices
(``formk``/``formt``/``bmv``), which the two-loop recursion does not form; they need nearly
dependent pairs. Vector work is numpy dot products and BLAS ``daxpy`` on the ring buffers; the
only n-vectors allocated per iteration are the gradients the objective returns.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
from scipy.linalg.blas import daxpy

from .line_search import LBFGSB_STPMAX, MoreThuenteSearch, SearchTask
from .recording import MACHINE_EPSILON

__all__ = ["PairMemory", "LineSearchOutcome", "lbfgsb_line_search", "lbfgsb_pair_accepted"]


class PairMemory:
    """The ``m`` newest correction pairs in a ring buffer, and the two-loop product ``H v``.

    Args:
        size: n, the length of the vectors.
        memory: m >= 1, the number of pairs kept.

    Attributes:
        count: number of pairs held (<= m).
    """

    def __init__(self, size: int, memory: int):
        if memory < 1:
            raise ValueError(f"PairMemory: memory must be >= 1; got {memory}")
        self.size, self.memory = int(size), int(memory)
        self._s = np.empty((self.memory, self.size))
        self._y = np.empty((self.memory, self.size))
        self._sy = np.zeros(self.memory)
        self._yy = np.zeros(self.memory)
        self._head = 0  # slot of the oldest pair
        self.count = 0
        self._alpha = np.zeros(self.memory)

    def clear(self) -> None:
        """Forget every pair (L-BFGS-B's memory reset)."""
        self._head, self.count = 0, 0

    def _slots(self) -> list[int]:
        return [(self._head + i) % self.memory for i in range(self.count)]

    def next_slot(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(s, y)`` rows the next :meth:`commit` will make the newest pair (write them)."""
        slot = (self._head + self.count) % self.memory
        return self._s[slot], self._y[slot]

    def commit(self, sy: float, yy: float) -> None:
        """Make the rows returned by :meth:`next_slot` the newest pair with ``sᵀy``, ``yᵀy``."""
        slot = (self._head + self.count) % self.memory
        self._sy[slot], self._yy[slot] = sy, yy
        if self.count < self.memory:
            self.count += 1
        else:
            self._head = (self._head + 1) % self.memory

    def inverse_product(self, vector: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out = H vector`` by the two-loop recursion; ``H0 = (sᵀy / yᵀy) I`` of the newest pair.

        ``H = I`` with no pairs. ``out`` (float64 ``(n,)``, not ``vector``) is overwritten and
        returned.
        """
        np.copyto(out, vector)
        slots = self._slots()
        if not slots:
            return out
        for slot in reversed(slots):
            self._alpha[slot] = float(self._s[slot] @ out) / self._sy[slot]
            daxpy(self._y[slot], out, a=-self._alpha[slot])
        newest = slots[-1]
        out *= self._sy[newest] / self._yy[newest]
        for slot in slots:
            beta = float(self._y[slot] @ out) / self._sy[slot]
            daxpy(self._s[slot], out, a=self._alpha[slot] - beta)
        return out

    def export(self, copy: bool = True) -> dict[str, np.ndarray]:
        """The held pairs, oldest first: ``s``, ``y`` ``(count, n)``, ``sy``, ``yy``.

        ``copy=False`` returns views of the ring where its order allows (the memory must then
        not be changed while they are in use).
        """
        slots = self._slots()
        if not copy:
            self._rotate_to_front()
            count = self.count
            return {"s": self._s[:count], "y": self._y[:count], "sy": self._sy[:count].copy(),
                    "yy": self._yy[:count].copy()}
        return {"s": self._s[slots], "y": self._y[slots], "sy": self._sy[slots],
                "yy": self._yy[slots]}  # fancy indexing copies

    def _rotate_to_front(self) -> None:
        """Reorder the ring in place so that the oldest pair is in row 0 (one spare row)."""
        shift, m = self._head, self.memory
        if shift == 0:
            return
        spare = np.empty(self.size)
        for rows in (self._s, self._y):
            for start in range(math.gcd(m, shift)):  # the cycles of the rotation by `shift`
                spare[:] = rows[start]
                i = start
                while (j := (i + shift) % m) != start:
                    rows[i] = rows[j]
                    i = j
                rows[i] = spare
        self._sy[:] = np.roll(self._sy, -shift)
        self._yy[:] = np.roll(self._yy, -shift)
        self._head = 0

    def load(self, s: np.ndarray, y: np.ndarray, sy: np.ndarray, yy: np.ndarray) -> None:
        """Replace the memory by the given pairs (oldest first), as :meth:`export` wrote them."""
        count = len(sy)
        if count > self.memory or s.shape != (count, self.size) or y.shape != s.shape \
                or yy.shape != (count,):
            raise ValueError(f"pairs of shapes s {s.shape}, y {y.shape}, sy {sy.shape}, yy "
                             f"{yy.shape} do not fit a memory of {self.memory} pairs of size "
                             f"{self.size}")
        self.clear()
        for i in range(count):
            s_row, y_row = self.next_slot()
            s_row[:], y_row[:] = s[i], y[i]
            self.commit(float(sy[i]), float(yy[i]))


def lbfgsb_pair_accepted(gd_new: float, gd_old: float, stp: float) -> tuple[bool, float]:
    """L-BFGS-B's update test from directional derivatives; returns ``(kept, sᵀy)``.

    ``gd_new = g_newᵀd``, ``gd_old = g_oldᵀd``, ``s = stp d``. The pair is skipped when
    ``dr <= eps * ddum`` with ``dr = (gd_new - gd_old) stp`` (= sᵀy) and ``ddum = -gd_old stp``;
    at ``stp == 1`` the products are not formed (as in ``mainlb``).
    """
    if stp == 1.0:
        dr, ddum = gd_new - gd_old, -gd_old
    else:
        dr, ddum = (gd_new - gd_old) * stp, -gd_old * stp
    return bool(not dr <= MACHINE_EPSILON * ddum), dr


@dataclasses.dataclass
class LineSearchOutcome:
    """The end of one L-BFGS-B line search.

    Attributes:
        success: an acceptable step was found (strong Wolfe, or a search warning).
        x, f, g: the accepted point (the trial buffer it was evaluated in), its loss and gradient;
            None when the search failed.
        stp: the accepted step; gd_new, gd_old: ``g_newᵀd`` and ``g_oldᵀd``.
        evaluations: objective calls made by the search.
    """

    success: bool
    x: np.ndarray | None
    f: float | None
    g: np.ndarray | None
    stp: float
    gd_new: float
    gd_old: float
    evaluations: int


def lbfgsb_line_search(evaluate: Callable[[np.ndarray], tuple[float, np.ndarray]],
                       x: np.ndarray, f: float, g: np.ndarray, z: np.ndarray, d: np.ndarray,
                       trial: np.ndarray, *, first_iteration: bool,
                       maxls: int) -> LineSearchOutcome:
    """The line search of ``lnsrlb`` from ``x`` along ``d = z - x`` (module docstring, step 2).

    Args:
        evaluate: ``x -> (f, g)`` (the recorder's evaluate).
        x, f, g: the current point, float64 ``(n,)``, its loss and gradient.
        z: float64 ``(n,)`` the point ``x - H g`` (evaluated as is for a trial step of 1).
        d: float64 ``(n,)`` the direction ``z - x``.
        trial: float64 ``(n,)`` buffer for the other trial points (overwritten).
        first_iteration: the run's first iteration (first trial ``1 / ||d||``; else 1).
        maxls: the most evaluations.
    """
    gd_old = float(g @ d)
    if not gd_old < 0.0:
        return LineSearchOutcome(False, None, None, None, 0.0, gd_old, gd_old, 0)
    stp = min(1.0 / float(np.linalg.norm(d)), LBFGSB_STPMAX) if first_iteration else 1.0
    search = MoreThuenteSearch()
    search.start(f, gd_old, stp)
    for count in range(1, maxls + 1):
        if stp == 1.0:
            point = z
        else:
            np.multiply(d, stp, out=trial)
            trial += x
            point = trial
        f_new, g_new = evaluate(point)
        gd_new = float(g_new @ d)
        task, next_stp = search.step(stp, f_new, gd_new)
        if task is not SearchTask.EVALUATE:
            return LineSearchOutcome(True, point, f_new, g_new, stp, gd_new, gd_old, count)
        stp = next_stp
    return LineSearchOutcome(False, None, None, None, stp, 0.0, gd_old, maxls)
