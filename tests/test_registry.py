"""The method registry (solvers/optim/registry.py) is the one source of the methods' facts.

Each record's claims are checked against what a run of the method does: its budget unit
against the counts of a short run, ``keeps_pairs`` against the stored pairs, ``needs_densities``
against the density contract, ``checkpointable`` against the state of an interrupted run; and
every layer that lists methods (driver, options, runner, analysis, command line) against it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import solvers
from solvers import PixelModel, as_objective, build_problem, optimize
from solvers.optim import options as options_module
from solvers.optim.registry import METHOD_NAMES, REGISTRY, MethodSpec, method_spec
from solvers.optimizers import EVALUATION_BUDGET_METHODS, METHODS

PROBLEM = build_problem("mbb_beam", 16, 8, 0.5)
STEPS = 6
OPTIONS = {"gd": {"learning_rate": 0.5}, "hd": {"learning_rate": 0.05},
           "adam": {"learning_rate": 0.05}}


@pytest.fixture(scope="module")
def objectives():
    return {False: as_objective(PixelModel(PROBLEM), penal=3.0),
            True: as_objective(PixelModel(PROBLEM, volume_constraint=False), penal=3.0)}


def test_every_layer_lists_the_registry():
    from studies import analysis, runner
    from studies.cli import build_parser

    assert METHODS == METHOD_NAMES == tuple(REGISTRY) == solvers.METHODS
    assert set(METHODS) == {"lbfgs", "gd", "adam", "hd", "gd_ls", "mma", "oc"}
    assert options_module.OPTIONS_BY_METHOD == {n: s.options_class for n, s in REGISTRY.items()}
    assert EVALUATION_BUDGET_METHODS == {"lbfgs", "gd_ls"}
    assert runner.known_methods() == METHODS
    assert set(runner.PIXEL_ONLY_METHODS) == {"mma", "oc"}
    assert set(analysis._PAIR_METHODS) == {"lbfgs", "hd"}
    help_text = build_parser().format_help() + "".join(
        action.format_help() for action in build_parser()._subparsers._group_actions
        for action in action.choices.values())
    assert all(name in help_text for name in METHODS)
    for name in METHODS:
        assert method_spec(name) is REGISTRY[name]
    with pytest.raises(ValueError, match="unknown method 'lbgfs'; expected one of adam"):
        method_spec("lbgfs")
    with pytest.raises(ValueError, match="budget_unit"):
        MethodSpec("x", "", REGISTRY["gd"].options_class, REGISTRY["gd"].run, "steps",
                   False, False, False)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_record_says_what_the_method_does(name, objectives):
    spec = REGISTRY[name]
    objective = objectives[spec.needs_densities]
    options = OPTIONS.get(name, {})
    assert isinstance(spec.options_class(**options), spec.options_class)

    def stop_at_2(info):
        if info.iteration == 2:
            raise StopIteration

    result = optimize(objective, name, steps=STEPS, **options)
    if spec.budget_unit == "evaluations":
        assert result.evaluations >= STEPS and result.status == "max_steps"
    else:
        assert result.iterations == STEPS
    assert (result.s_pairs is not None) == spec.keeps_pairs
    if spec.needs_densities:
        with pytest.raises(TypeError, match="needs an objective of densities"):
            optimize(objectives[False], name, steps=STEPS, **options)
    partial = optimize(objective, name, steps=STEPS, callback=stop_at_2, **options)
    resumed = optimize(objective, name, steps=STEPS, resume=partial, **options)
    if spec.checkpointable:
        assert partial.state.method == name
        assert np.array_equal(resumed.loss_per_evaluation, result.loss_per_evaluation)
        assert resumed.message == result.message
    else:
        assert "restarted from its original start" in resumed.message
    assert dataclasses.is_dataclass(spec.options_class)
