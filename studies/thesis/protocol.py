"""The thesis's protocol as data (guide ``thesis-studies.md`` §1-§3): codes, optimizers, budgets.

Test codes are ``XyZ``: ``X`` = ``NN`` (CNN) or ``P`` (pixels), ``y`` = SIMP penalty 1 or 3,
``Z`` = problem A, B, D or E (Table 3.1; ambiguity 1: D = causeway, E = crane; ambiguity 2: NN3D
is p = 3). Step sizes of Tables B.1-B.3 live in :mod:`solvers.optim.step_sizes`; their tuning
budgets (Max_iterations, seeds) are here. Budgets are in each method's own unit (§1.7,
ambiguity 6): evaluations for L-BFGS, iterations for GD and HD; GD_LS is the engine's ``gd_ls``
capped at 700 iterations (see :data:`GD_LS_EVALUATIONS`).
"""
from __future__ import annotations

import dataclasses

from solvers.optim.step_sizes import THESIS_TASKS, tuned_learning_rate

__all__ = [
    "CODES", "FIXED_STEP_METHODS", "GD_LS_EVALUATIONS", "GD_LS_ITERATIONS", "METHODS",
    "MODEL_PREFIX", "PENALTIES",
    "PROBLEMS", "SEEDS",
    "TUNING_BUDGETS", "MethodSpec", "code_of", "parse_code", "published_step",
]

PROBLEMS: dict[str, str] = dict(THESIS_TASKS)
"""Problem code -> Hoyer task name (Table 3.1)."""

PENALTIES = (1.0, 3.0)
SEEDS = tuple(range(10))
MODEL_PREFIX = {"cnn": "NN", "pixel": "P"}


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """One of the thesis's six optimizers (guide §2).

    Attributes:
        name: the thesis's label.
        optimizer: the ``solvers.optimize`` method.
        options: fixed options (the memory m).
        steps: the run length in the method's unit (L-BFGS: evaluations, GD/HD: iterations).
        table: the step-size table (``"B.1"``, ``"B.2"``, ``"B.3"``) or None (no fixed step).
    """

    name: str
    optimizer: str
    options: dict
    steps: int
    table: str | None = None

    @property
    def memory(self) -> int | None:
        return self.options.get("memory")


GD_LS_ITERATIONS = 700
"""GD_LS's budget: 700 restarted L-BFGS-B iterations (B.2.4), whatever their line searches cost
(the ``gd_ls`` option ``max_iterations``)."""
GD_LS_EVALUATIONS = 1 + GD_LS_ITERATIONS * 20
"""The evaluation budget ``steps`` of GD_LS: the most that 700 iterations of at most ``maxls = 20``
evaluations can use, so the iteration cap is what ends the run (the curve is indexed by
iteration, ambiguity 6)."""

METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("GD", "gd", {}, 700, "B.1"),
    MethodSpec("HD_M1", "hd", {"memory": 1}, 700, "B.2"),      # ambiguity 9: 700 steps
    MethodSpec("HD_M10", "hd", {"memory": 10}, 700, "B.3"),
    MethodSpec("GD_LS", "gd_ls", {"max_iterations": GD_LS_ITERATIONS}, GD_LS_EVALUATIONS),
    MethodSpec("LBFGS_M1", "lbfgs", {"memory": 1}, 300),      # ambiguity 10: 300 steps
    MethodSpec("LBFGS", "lbfgs", {"memory": 10}, 300),
)
METHODS_BY_NAME = {m.name: m for m in METHODS}

# Tables B.1-B.3: code -> (Max_iterations, number of tuning seeds).
TUNING_BUDGETS: dict[str, dict[str, tuple[int, int]]] = {
    "B.1": {"NN3A": (500, 5), "NN3B": (500, 5), "NN3D": (400, 3), "NN3E": (400, 3),
            "NN1A": (500, 3), "NN1B": (500, 3), "NN1D": (200, 3), "NN1E": (200, 3),
            "P3A": (500, 5), "P3B": (500, 5), "P3D": (200, 3), "P3E": (200, 3),
            "P1A": (100, 5), "P1B": (100, 5), "P1D": (150, 5), "P1E": (150, 5)},
    "B.2": {"NN3A": (500, 5), "NN3B": (500, 5), "NN3D": (200, 3), "NN3E": (200, 3),
            "NN1A": (200, 3), "NN1B": (200, 3), "NN1D": (200, 3), "NN1E": (200, 3),
            "P3A": (500, 5), "P3B": (500, 5), "P3D": (200, 3), "P3E": (200, 3),
            "P1A": (200, 3), "P1B": (200, 3), "P1D": (200, 3), "P1E": (200, 3)},
    "B.3": {"NN3A": (500, 6), "NN3B": (500, 6), "NN3D": (200, 3), "NN3E": (200, 3),
            "NN1A": (300, 6), "NN1B": (300, 6), "NN1D": (200, 3), "NN1E": (200, 3),
            "P3A": (500, 6), "P3B": (500, 6), "P3D": (200, 3), "P3E": (200, 3),
            "P1A": (300, 6), "P1B": (300, 6), "P1D": (200, 3), "P1E": (200, 3)},
}
TABLE_METHOD = {"B.1": "GD", "B.2": "HD_M1", "B.3": "HD_M10"}
FIXED_STEP_METHODS = tuple(TABLE_METHOD.values())
"""The fixed-step optimizers, whose step sizes Tables B.1-B.3 tune (no line search)."""

CODES = tuple(f"{prefix}{p}{problem}" for prefix in ("NN", "P") for p in (3, 1)
              for problem in PROBLEMS)


def code_of(model: str, penal: float, problem: str) -> str:
    """``("cnn", 3.0, "A") -> "NN3A"``."""
    return f"{MODEL_PREFIX[model]}{int(penal)}{problem}"


def parse_code(code: str) -> tuple[str, float, str]:
    """``"NN3A" -> ("cnn", 3.0, "A")``.

    Raises:
        ValueError: not a test code of the thesis.
    """
    for model, prefix in MODEL_PREFIX.items():
        rest = code[len(prefix):]
        if code.startswith(prefix) and len(rest) == 2 and rest[0] in "13" \
                and rest[1] in PROBLEMS:
            return model, float(rest[0]), rest[1]
    raise ValueError(f"unknown test code {code!r}; codes are NN|P, 1|3, A|B|D|E, e.g. NN3A")


def published_step(method: MethodSpec, model: str, penal: float, problem: str) -> float | None:
    """The published step of Tables B.1-B.3 for this method and case (None: no fixed step)."""
    if method.table is None:
        return None
    return tuned_learning_rate(PROBLEMS[problem], model, penal, method.optimizer, method.memory)
