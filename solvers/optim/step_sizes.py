"""Tuned step sizes of the thesis (Appendix B.7, Tables B.1-B.3) for ``gd`` and ``hd``.

The thesis tuned one fixed step per test case with hyperopt (TPE, 30 trials, step = 10^x on a 0.1
grid of x). A test case is a task, a model ("cnn" or "pixel") and a SIMP penalty p (1 or 3); the
thesis's codes are ``NN3A`` = CNN, p = 3, task A, ``P1D`` = pixels, p = 1, task D, and so on, with
the tasks of its Table 3.1:

    A = michell_centered_both_32x64_0.12     B = pure_bending_moment_32x64_0.15
    D = causeway_bridge_middle_128x128_0.1   E = crane_128x128_0.2

Table B.1 is Keras SGD (method ``gd``), Table B.2 Hessian descent with m = 1 and Table B.3 with
m = 10 (method ``hd``). No other (method, memory) has a tuned value.
"""
from __future__ import annotations

from typing import Any

__all__ = ["THESIS_TASKS", "THESIS_STEP_SIZES", "tuned_learning_rate", "learning_rate_for"]

THESIS_TASKS: dict[str, str] = {
    "A": "michell_centered_both_32x64_0.12",
    "B": "pure_bending_moment_32x64_0.15",
    "D": "causeway_bridge_middle_128x128_0.1",
    "E": "crane_128x128_0.2",
}

# (method, memory) -> {thesis test code: best step size}; memory is None for gd.
_TABLES: dict[tuple[str, int | None], dict[str, float]] = {
    ("gd", None): {  # Table B.1 (SGD)
        "NN3A": 2.5e-4, "NN3B": 4.3e-3, "NN3D": 1e-3, "NN3E": 1.3e-3,
        "NN1A": 0.252, "NN1B": 1.585, "NN1D": 1.995, "NN1E": 0.5,
        "P3A": 0.1, "P3B": 1.19, "P3D": 1.0, "P3E": 1.0,
        "P1A": 10.0, "P1B": 10.0, "P1D": 7.94, "P1E": 10.0,
    },
    ("hd", 1): {  # Table B.2 (HD_M1)
        "NN3A": 0.004, "NN3B": 0.016, "NN3D": 0.01, "NN3E": 0.016,
        "NN1A": 0.2, "NN1B": 0.5, "NN1D": 0.63, "NN1E": 0.63,
        "P3A": 0.126, "P3B": 0.398, "P3D": 0.32, "P3E": 0.4,
        "P1A": 1.0, "P1B": 0.63, "P1D": 1.0, "P1E": 1.26,
    },
    ("hd", 10): {  # Table B.3 (HD_M10)
        "NN3A": 0.005, "NN3B": 0.0063, "NN3D": 0.025, "NN3E": 0.02,
        "NN1A": 0.25, "NN1B": 0.32, "NN1D": 0.32, "NN1E": 0.4,
        "P3A": 0.1, "P3B": 0.25, "P3D": 0.159, "P3E": 0.032,
        "P1A": 1.0, "P1B": 0.79, "P1D": 1.0, "P1E": 0.79,
    },
}
_MODEL_PREFIX = {"cnn": "NN", "pixel": "P"}
_CODE_OF_TASK = {name: code for code, name in THESIS_TASKS.items()}

THESIS_STEP_SIZES: dict[tuple[str, str, float, str, int | None], float] = {
    (THESIS_TASKS[code[-1]], model, float(code[len(prefix)]), method, memory): step
    for (method, memory), table in _TABLES.items()
    for code, step in table.items()
    for model, prefix in _MODEL_PREFIX.items()
    if code.startswith(prefix) and code[len(prefix)].isdigit()
}
"""(task name, model kind, penalty p, method, memory or None) -> tuned step size."""


def tuned_learning_rate(task: str, model_kind: str, penalty: float, method: str,
                        memory: int | None = None) -> float | None:
    """The thesis's tuned step for one test case, or None when the thesis has none.

    Args:
        task: task name, e.g. ``"crane_128x128_0.2"``.
        model_kind: ``"cnn"`` or ``"pixel"``.
        penalty: SIMP penalty p (the thesis used 1 and 3).
        method: ``"gd"`` or ``"hd"``.
        memory: the ``hd`` memory m (1 or 10); ignored for ``gd``.
    """
    key_memory = None if method == "gd" else memory
    return THESIS_STEP_SIZES.get((task, model_kind, float(penalty), method, key_memory))


def learning_rate_for(objective: Any, method: str, memory: int | None = None) -> float | None:
    """The tuned step for ``objective`` if it says which test case it is, else None.

    The objective must expose ``objective.problem.name``, ``objective.model_kind`` and its SIMP
    penalty as ``objective.penal`` (or ``objective.problem.penal``); otherwise None.
    """
    problem = getattr(objective, "problem", None)
    task = getattr(problem, "name", None)
    model_kind = getattr(objective, "model_kind", None)
    penalty = getattr(objective, "penal", getattr(problem, "penal", None))
    if not isinstance(task, str) or model_kind not in _MODEL_PREFIX or penalty is None:
        return None
    return tuned_learning_rate(task, model_kind, penalty, method, memory)
