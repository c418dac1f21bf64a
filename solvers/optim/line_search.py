"""The Moré–Thuente line search as L-BFGS-B uses it (MINPACK-2's ``dcsrch`` and ``dcstep``).

Moré & Thuente, "Line search algorithms with guaranteed sufficient decrease", ACM TOMS 20 (1994)
286-307. Along a descent direction ``d`` the search looks at ``phi(stp) = f(x + stp d)`` and
``phi'(stp) = g(x + stp d)ᵀ d`` and ends at a step satisfying the strong Wolfe conditions

    phi(stp) <= phi(0) + ftol * stp * phi'(0)      (sufficient decrease)
    |phi'(stp)| <= gtol * |phi'(0)|                 (curvature)

or with a warning when the interval of uncertainty cannot shrink further. The search is a reverse
communication object: :meth:`MoreThuenteSearch.start` takes ``phi(0)``, ``phi'(0)`` and the first
trial step and returns it; the caller evaluates ``phi`` and ``phi'`` there and passes them to
:meth:`MoreThuenteSearch.step`, which answers with a :class:`SearchTask` and the next step.

Conventions (those of L-BFGS-B 3.0, ``lnsrlb``): ``ftol = 1e-3``, ``gtol = 0.9``, ``xtol = 0.1``,
``stpmin = 0``, ``stpmax = 1e10`` for unbounded problems; extrapolation bounds ``1.1`` and ``4``
times the last move; a bracket that has not shrunk by 2/3 in two steps is bisected. A search that
meets ``stpmax``/``stpmin`` or rounding limits ends with ``WARNING`` and its last step (L-BFGS-B
accepts that point like a converged one). Written from the paper and MINPACK-2's description; the
tests compare it with ``scipy.optimize._dcsrch.DCSRCH`` on the paper's test functions.
"""
from __future__ import annotations

import dataclasses
import enum
import math

__all__ = ["SearchTask", "MoreThuenteSearch", "LBFGSB_FTOL", "LBFGSB_GTOL", "LBFGSB_XTOL",
           "LBFGSB_STPMAX"]

LBFGSB_FTOL = 1e-3
LBFGSB_GTOL = 0.9
LBFGSB_XTOL = 0.1
LBFGSB_STPMAX = 1e10

_EXTRAPOLATE_LOW = 1.1
_EXTRAPOLATE_HIGH = 4.0


class SearchTask(enum.Enum):
    """What the caller must do after :meth:`MoreThuenteSearch.step`."""

    EVALUATE = "evaluate phi and phi' at the returned step"
    CONVERGED = "the strong Wolfe conditions hold at the returned step"
    WARNING = "no further progress possible; the returned step is the last one evaluated"


@dataclasses.dataclass
class _Bracket:
    """The search's interval state: best step ``stx`` and the other end ``sty`` (with values)."""

    stx: float
    fx: float
    gx: float
    sty: float
    fy: float
    gy: float
    bracketed: bool = False


def _cubic_minimizer(s_a: float, f_a: float, g_a: float, s_b: float, f_b: float, g_b: float,
                     *, clip_negative: bool = False) -> tuple[float, float]:
    """Pieces of the minimizer of the cubic through (s_a, f_a, g_a) and (s_b, f_b, g_b).

    Returns ``(gamma, theta)`` with the cubic's discriminant root scaled to avoid overflow (the
    sign of ``gamma`` is set by the caller); ``clip_negative`` treats a negative discriminant as 0
    (the cubic may have no minimizer when the derivative magnitude decreases).
    """
    theta = 3.0 * (f_a - f_b) / (s_b - s_a) + g_a + g_b
    scale = max(abs(theta), abs(g_a), abs(g_b))
    discriminant = (theta / scale) ** 2 - (g_a / scale) * (g_b / scale)
    if clip_negative:
        discriminant = max(0.0, discriminant)
    return scale * math.sqrt(discriminant), theta


def _safeguarded_step(b: _Bracket, stp: float, fp: float, dp: float, stpmin: float,
                      stpmax: float) -> float:
    """One update of the interval of uncertainty and the next trial step (``dcstep``'s four cases).

    ``b`` (the best point ``stx`` and the other end ``sty``) is updated in place with the trial
    ``(stp, fp, dp)``; the new trial step, kept in ``[stpmin, stpmax]`` when not bracketed, is
    returned.
    """
    stx, fx, dx, sty, fy, dy = b.stx, b.fx, b.gx, b.sty, b.fy, b.gy
    same_sign = dp * (dx / abs(dx))  # < 0: the derivatives at stx and stp have opposite signs
    if fp > fx:
        # Case 1: higher value. The minimum is bracketed; take the cubic step if it is closer
        # to stx than the quadratic (value-value-derivative) step, else their midpoint.
        gamma, theta = _cubic_minimizer(stx, fx, dx, stp, fp, dp)
        if stp < stx:
            gamma = -gamma
        ratio = ((gamma - dx) + theta) / (((gamma - dx) + gamma) + dp)
        cubic = stx + ratio * (stp - stx)
        quadratic = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
        new = cubic if abs(cubic - stx) < abs(quadratic - stx) else \
            cubic + (quadratic - cubic) / 2.0
        b.bracketed = True
    elif same_sign < 0.0:
        # Case 2: lower value, derivatives of opposite sign: bracketed; take the cubic or the
        # secant step, whichever is farther from stp.
        gamma, theta = _cubic_minimizer(stx, fx, dx, stp, fp, dp)
        if stp > stx:
            gamma = -gamma
        ratio = ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dx)
        cubic = stp + ratio * (stx - stp)
        secant = stp + (dp / (dp - dx)) * (stx - stp)
        new = cubic if abs(cubic - stp) > abs(secant - stp) else secant
        b.bracketed = True
    elif abs(dp) < abs(dx):
        # Case 3: lower value, same sign, smaller derivative magnitude: the cubic step only if
        # it lies beyond stp in the right direction, otherwise the end of the allowed range.
        gamma, theta = _cubic_minimizer(stx, fx, dx, stp, fp, dp, clip_negative=True)
        if stp > stx:
            gamma = -gamma
        ratio = ((gamma - dp) + theta) / ((gamma + (dx - dp)) + gamma)
        if ratio < 0.0 and gamma != 0.0:
            cubic = stp + ratio * (stx - stp)
        elif stp > stx:
            cubic = stpmax
        else:
            cubic = stpmin
        secant = stp + (dp / (dp - dx)) * (stx - stp)
        if b.bracketed:
            new = cubic if abs(cubic - stp) < abs(secant - stp) else secant
            limit = stp + 0.66 * (sty - stp)
            new = min(limit, new) if stp > stx else max(limit, new)
        else:
            new = cubic if abs(cubic - stp) > abs(secant - stp) else secant
            new = max(stpmin, min(stpmax, new))
    else:
        # Case 4: lower value, same sign, derivative not smaller: the cubic through stp and
        # sty when bracketed, else an end of the range.
        if b.bracketed:
            theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp
            scale = max(abs(theta), abs(dy), abs(dp))
            gamma = scale * math.sqrt((theta / scale) ** 2 - (dy / scale) * (dp / scale))
            if stp > sty:
                gamma = -gamma
            ratio = ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dy)
            new = stp + ratio * (sty - stp)
        elif stp > stx:
            new = stpmax
        else:
            new = stpmin
    # Update the interval: the better point becomes stx.
    if fp > fx:
        b.sty, b.fy, b.gy = stp, fp, dp
    else:
        if same_sign < 0.0:
            b.sty, b.fy, b.gy = stx, fx, dx
        b.stx, b.fx, b.gx = stp, fp, dp
    return new


class MoreThuenteSearch:
    """One Moré–Thuente search (see the module docstring).

    Args:
        ftol: sufficient-decrease constant (L-BFGS-B: 1e-3), >= 0.
        gtol: curvature constant (L-BFGS-B: 0.9), >= 0.
        xtol: relative width of the interval at which the search stops (L-BFGS-B: 0.1), >= 0.
        stpmin, stpmax: the range of steps, ``0 <= stpmin <= stpmax``.
    """

    def __init__(self, ftol: float = LBFGSB_FTOL, gtol: float = LBFGSB_GTOL,
                 xtol: float = LBFGSB_XTOL, stpmin: float = 0.0,
                 stpmax: float = LBFGSB_STPMAX):
        for name, value in (("ftol", ftol), ("gtol", gtol), ("xtol", xtol), ("stpmin", stpmin)):
            if not value >= 0.0:
                raise ValueError(f"MoreThuenteSearch: {name} must be >= 0; got {value!r}")
        if not stpmax >= stpmin:
            raise ValueError(f"MoreThuenteSearch: stpmax ({stpmax}) must be >= stpmin ({stpmin})")
        self.ftol, self.gtol, self.xtol = float(ftol), float(gtol), float(xtol)
        self.stpmin, self.stpmax = float(stpmin), float(stpmax)
        self.message = ""
        self._bracket: _Bracket | None = None

    def start(self, f0: float, g0: float, stp: float) -> float:
        """Begin at ``phi(0) = f0``, ``phi'(0) = g0 < 0``, first trial ``stp``; returns ``stp``.

        Raises:
            ValueError: ``g0 >= 0`` (not a descent direction) or ``stp`` outside
                ``[stpmin, stpmax]``.
        """
        if not g0 < 0.0:
            raise ValueError(f"the line search needs a descent direction: phi'(0) = {g0} >= 0")
        if not self.stpmin <= stp <= self.stpmax:
            raise ValueError(f"the first step {stp} lies outside [{self.stpmin}, {self.stpmax}]")
        self._finit, self._ginit = float(f0), float(g0)
        self._gtest = self.ftol * self._ginit
        self._width = self.stpmax - self.stpmin
        self._width_before = self._width / 0.5
        self._bracket = _Bracket(0.0, self._finit, self._ginit, 0.0, self._finit, self._ginit)
        self._stage = 1
        self._low, self._high = 0.0, stp + _EXTRAPOLATE_HIGH * stp
        self.message = ""
        return float(stp)

    def step(self, stp: float, f: float, g: float) -> tuple[SearchTask, float]:
        """Take ``phi(stp) = f``, ``phi'(stp) = g``; return what to do next and the step."""
        b = self._bracket
        if b is None:
            raise RuntimeError("MoreThuenteSearch.step() before start()")
        ftest = self._finit + stp * self._gtest
        if self._stage == 1 and f <= ftest and g >= 0.0:
            self._stage = 2
        warning = ""
        if b.bracketed and (stp <= self._low or stp >= self._high):
            warning = "ROUNDING ERRORS PREVENT PROGRESS"
        if b.bracketed and self._high - self._low <= self.xtol * self._high:
            warning = "XTOL TEST SATISFIED"
        if stp == self.stpmax and f <= ftest and g <= self._gtest:
            warning = "STP = STPMAX"
        if stp == self.stpmin and (f > ftest or g >= self._gtest):
            warning = "STP = STPMIN"
        if f <= ftest and abs(g) <= self.gtol * -self._ginit:
            self.message = "CONVERGENCE"
            return SearchTask.CONVERGED, stp
        if warning:
            self.message = warning
            return SearchTask.WARNING, stp
        if self._stage == 1 and f <= b.fx and f > ftest:
            # Stage 1 with a lower but not sufficiently lower value: work on the modified
            # function psi(s) = phi(s) - phi(0) - ftol s phi'(0) (Moré & Thuente, Section 2).
            gt = self._gtest
            modified = _Bracket(b.stx, b.fx - b.stx * gt, b.gx - gt, b.sty, b.fy - b.sty * gt,
                                b.gy - gt, b.bracketed)
            new = _safeguarded_step(modified, stp, f - stp * gt, g - gt, self._low, self._high)
            b.stx, b.sty, b.bracketed = modified.stx, modified.sty, modified.bracketed
            b.fx, b.fy = modified.fx + b.stx * gt, modified.fy + b.sty * gt
            b.gx, b.gy = modified.gx + gt, modified.gy + gt
        else:
            new = _safeguarded_step(b, stp, f, g, self._low, self._high)
        if b.bracketed:
            if abs(b.sty - b.stx) >= 0.66 * self._width_before:
                new = b.stx + 0.5 * (b.sty - b.stx)
            self._width_before = self._width
            self._width = abs(b.sty - b.stx)
            self._low, self._high = min(b.stx, b.sty), max(b.stx, b.sty)
        else:
            self._low = new + _EXTRAPOLATE_LOW * (new - b.stx)
            self._high = new + _EXTRAPOLATE_HIGH * (new - b.stx)
        new = min(max(new, self.stpmin), self.stpmax)
        if b.bracketed and (new <= self._low or new >= self._high
                            or self._high - self._low <= self.xtol * self._high):
            new = b.stx
        return SearchTask.EVALUATE, new
