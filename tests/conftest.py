"""Fixtures shared by the test modules (tests never import each other).

``make_result``, ``make_config`` and ``assert_same_result`` are fixtures that return the factory
functions below; a subprocess that needs them (the concurrent-writer tests) imports this file by
path as ``conftest``. ``nrto`` runs the command line in this process and returns
``(exit status, stdout, stderr)``.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from solvers.result import OptimizationResult, RecordOptions
from studies.config import RunConfig
from studies.threads import configure_threads

# The suite runs in one process: one thread for TensorFlow and the BLAS throughout (as a study
# cell and a 2-core CI machine want), chosen before any test builds a network.
configure_threads(1)

ARRAY_FIELDS = ("x", "loss_per_evaluation", "loss_per_iterate", "grad_norm_per_iterate",
                "step_length_per_iterate", "iterate_indices", "iterates", "gradients", "s_pairs",
                "y_pairs", "pair_iterations", "design_indices")


def build_result(seed: int = 0, *, n: int = 12, iterations: int = 5, evaluations: int = 9,
                full: bool = True, status: str = "max_steps") -> OptimizationResult:
    """A synthetic run with every field filled (``full``) or only the required ones."""
    rng = np.random.default_rng(seed)
    losses = np.exp(-np.linspace(0, 3, evaluations)) * 100 + rng.random(evaluations)
    extra = {}
    if full:
        stored = np.array([0, 2, 4, iterations])
        designs = rng.random((3, 4, 6))
        designs[0, 0, :3] = [0.0, 1.0, 0.5]
        extra = {"iterate_indices": stored, "iterates": rng.normal(size=(4, n)),
                 "gradients": rng.normal(size=(4, n)), "s_pairs": rng.normal(size=(3, n)),
                 "y_pairs": rng.normal(size=(3, n)), "pair_iterations": np.array([2, 3, 5]),
                 "skipped_pairs": 1, "design_indices": np.array([0, 3, iterations]),
                 "designs": designs}
    step = rng.random(iterations + 1)
    step[0] = np.nan
    return OptimizationResult(
        method="lbfgs", options={"memory": 10, "factr": 1.0, "nested": {"a": [1, 2]}},
        x=rng.normal(size=n), loss_per_evaluation=losses,
        loss_per_iterate=np.sort(losses)[::-1][: iterations + 1].copy(),
        grad_norm_per_iterate=rng.random(iterations + 1), step_length_per_iterate=step,
        iterations=iterations, evaluations=evaluations, converged=status == "converged",
        status=status, message=f"synthetic {seed}", elapsed=1.25 + seed, **extra)


def build_config(seed: int = 0, **changes) -> RunConfig:
    config = RunConfig(problem="mbb_beam_16x8_0.5", family="mbb_beam", width=16, height=8,
                       volume_fraction=0.5, model="pixel", optimizer="lbfgs", steps=10, seed=seed,
                       options={"memory": 10}, record=RecordOptions(iterates_every=2))
    return dataclasses.replace(config, **changes)


def check_same_result(read: OptimizationResult, written: OptimizationResult) -> None:
    for name in ARRAY_FIELDS:
        expected = getattr(written, name)
        if expected is None:
            assert getattr(read, name) is None, name
        else:
            np.testing.assert_array_equal(getattr(read, name), expected, err_msg=name)
            assert getattr(read, name).dtype == np.asarray(expected).dtype or name.endswith(
                ("indices", "iterations")), name
    for name in ("method", "iterations", "evaluations", "converged", "status", "message",
                 "skipped_pairs", "elapsed"):
        assert getattr(read, name) == getattr(written, name), name
    assert read.options == json.loads(json.dumps(written.options))
    if written.designs is None:
        assert read.designs is None
    else:
        # 8-bit quantization over [0, 1]: error at most half a step, 0 and 1 exact.
        assert np.max(np.abs(read.designs - written.designs)) <= 0.5 / 255 + 1e-12
        exact = np.isin(written.designs, (0.0, 1.0))
        np.testing.assert_array_equal(read.designs[exact], written.designs[exact])




@pytest.fixture
def make_result():
    """``make_result(seed, n=12, iterations=5, evaluations=9, full=True, status="max_steps")``:
    a synthetic :class:`OptimizationResult` (see :func:`build_result`)."""
    return build_result


@pytest.fixture
def make_config():
    """``make_config(seed, **changes)``: a pixel L-BFGS :class:`RunConfig` on mbb_beam 16x8."""
    return build_config


@pytest.fixture
def assert_same_result():
    """``assert_same_result(read, written)``: what the store read back equals what it wrote."""
    return check_same_result


@pytest.fixture
def nrto(capsys):
    """``nrto(*argv)`` -> ``(exit status, stdout, stderr)`` of ``studies.cli.main`` run here."""
    from studies.cli import main

    def run(*argv) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err
    return run
