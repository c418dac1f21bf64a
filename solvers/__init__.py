"""solvers: the exact, twice-differentiable physics, the paper's tasks, models and optimizers.

The TensorFlow models (``PixelModel``, ``CNNModel``, ``CNNConfig``) and the bridge are imported on
first use, so that ``import solvers`` stays fast for code that needs only the physics.
"""
from __future__ import annotations

import importlib

from .fem import Material, SingularStiffnessError, StiffnessSystem, element_stiffness
from .filters import cone_filter_matrix
from .flat import CallableObjective, FlatObjective, ParameterSpec, flatten, unflatten
from .objective import ModelObjective, as_objective
from .physics import Compliance, objective
from .problems import (FAMILIES, PROBLEMS, TASKS, Problem, TaskSpec, UnknownProblemError,
                       build_problem, get_problem)
from .result import STATUSES, OptimizationResult, ProgressInfo, RecordOptions
from .sparse_cholesky import SingularMatrixError, SymmetricSolver, available_backends

_LAZY = {
    "PixelModel": "solvers.models",
    "CNNModel": "solvers.models",
    "CNNConfig": "solvers.models",
    "AutogradBridge": "solvers.bridge",
    "optimize": "solvers.optimizers",
    "METHODS": "solvers.optimizers",
    "REGISTRY": "solvers.optim.registry",
    "MethodSpec": "solvers.optim.registry",
    "method_spec": "solvers.optim.registry",
    "OptimizerState": "solvers.optim.state",
}

__all__ = [
    "FAMILIES", "PROBLEMS", "TASKS", "Problem", "TaskSpec", "UnknownProblemError", "build_problem",
    "get_problem",
    "Material", "StiffnessSystem", "SingularStiffnessError", "element_stiffness",
    "cone_filter_matrix", "Compliance", "objective",
    "SymmetricSolver", "SingularMatrixError", "available_backends",
    "CallableObjective", "FlatObjective", "ParameterSpec", "flatten", "unflatten",
    "ModelObjective", "as_objective",
    "STATUSES", "OptimizationResult", "ProgressInfo", "RecordOptions",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'solvers' has no attribute {name!r}")
