"""Exact resume from optimizer checkpoints (solvers/optim/state.py and the methods' states).

The independent answer is the uninterrupted run: a run stopped at an iteration boundary and
resumed from its state must give the same result bit for bit (every history, iterate, pair and
design, with the same dtypes, the counts, status and message); ``elapsed`` is the only field
allowed to differ.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from solvers import (CNNConfig, CNNModel, OptimizationResult, PixelModel, RecordOptions,
                     as_objective, build_problem, optimize)
from solvers.optim.state import OptimizerState

REPO = Path(__file__).resolve().parents[1]
RECORD = RecordOptions(iterates_every=1, designs_at=(0, 3, -1))
PROBLEM = build_problem("mbb_beam", 16, 8, 0.5)

# method -> (objective kind, steps, options)
CASES = {
    "lbfgs": ("logits", 30, {}),
    "gd_ls": ("logits", 30, {}),
    "gd_ls_max9": ("logits", 400, {"max_iterations": 9}),   # the iteration cap counts resumed
    "hd_m1": ("logits", 12, {"learning_rate": 0.05, "memory": 1}),
    "hd_m3": ("logits", 12, {"learning_rate": 0.05, "memory": 3}),
    "gd": ("logits", 12, {"learning_rate": 0.5}),
    "adam": ("logits", 12, {"learning_rate": 0.05}),
    "oc": ("densities", 12, {}),
}


@pytest.fixture(scope="module")
def objectives():
    return {"logits": as_objective(PixelModel(PROBLEM), penal=3.0),
            "densities": as_objective(PixelModel(PROBLEM, volume_constraint=False), penal=3.0)}


def assert_identical(a: OptimizationResult, b: OptimizationResult) -> None:
    for field in dataclasses.fields(OptimizationResult):
        if field.name == "elapsed":
            continue
        left, right = getattr(a, field.name), getattr(b, field.name)
        if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
            assert isinstance(left, np.ndarray) and isinstance(right, np.ndarray), field.name
            assert left.dtype == right.dtype and left.shape == right.shape, field.name
            assert np.array_equal(left, right, equal_nan=True), field.name
        else:
            assert left == right, field.name


def _stop_at(k: int):
    def callback(info):
        if info.iteration == k:
            raise StopIteration
    return callback


def _method(case: str) -> str:
    return case.split("_m")[0]


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_and_resumed_runs_are_bit_identical(case, objectives):
    kind, steps, options = CASES[case]
    objective, method = objectives[kind], _method(case)
    whole = optimize(objective, method, steps=steps, record=RECORD, **options)
    assert whole.state is not None and whole.iterations >= 8
    for k in (1, 2, 7):
        partial = optimize(objective, method, steps=steps, record=RECORD, callback=_stop_at(k),
                           **options)
        assert partial.status == "interrupted" and partial.iterations == k
        assert isinstance(partial.state, OptimizerState) and partial.state.method == method
        resumed = optimize(objective, method, steps=steps, record=RECORD, resume=partial,
                           **options)
        assert_identical(resumed, whole)
    # twice interrupted (at 2, then at 5), and through the snapshot a checkpoint would store
    snapshots = []

    def keep(info):
        if info.iteration == 2:
            snapshots.append(info.snapshot())
    optimize(objective, method, steps=steps, record=RECORD, callback=keep, **options)
    second = optimize(objective, method, steps=steps, record=RECORD, resume=snapshots[0],
                      callback=_stop_at(5), **options)
    assert second.iterations == 5
    assert_identical(optimize(objective, method, steps=steps, record=RECORD, resume=second,
                              **options), whole)


def test_cnn_lbfgs_resume_is_bit_identical():
    config = CNNConfig(latent_size=4, dense_channels=2, conv_filters=(4, 3, 2, 2, 1))
    objective = as_objective(CNNModel(PROBLEM, seed=0, config=config))
    record = RecordOptions(iterates_every=5)
    whole = optimize(objective, "lbfgs", steps=30, record=record)
    for k in (1, 7):
        partial = optimize(objective, "lbfgs", steps=30, record=record, callback=_stop_at(k))
        assert_identical(optimize(objective, "lbfgs", steps=30, record=record, resume=partial),
                         whole)


def test_a_state_of_another_method_problem_or_options_is_refused(objectives):
    logits = objectives["logits"]
    partial = optimize(logits, "lbfgs", steps=20, callback=_stop_at(3))
    with pytest.raises(ValueError, match="cannot be continued"):
        optimize(logits, "gd_ls", steps=20, resume=partial)
    other_state = optimize(logits, "gd_ls", steps=20, callback=_stop_at(3)).state
    with pytest.raises(ValueError, match="state of method 'gd_ls'"):
        optimize(logits, "lbfgs", steps=20, resume=dataclasses.replace(partial,
                                                                          state=other_state))
    other = as_objective(PixelModel(build_problem("mbb_beam", 8, 16, 0.5)), penal=3.0)
    with pytest.raises(ValueError, match="another objective"):
        optimize(other, "lbfgs", steps=20, resume=partial)
    p1 = as_objective(PixelModel(PROBLEM), penal=1.0)
    with pytest.raises(ValueError, match="penal=1.0"):
        optimize(p1, "lbfgs", steps=20, resume=partial)
    with pytest.raises(ValueError, match="memory=10; this run has 5"):
        optimize(logits, "lbfgs", steps=20, resume=partial, memory=5)


def _corrupt(state: OptimizerState, **changes) -> OptimizerState:
    arrays = dict(state.arrays)
    for name, value in changes.items():
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    return dataclasses.replace(state, arrays=arrays)


@pytest.mark.parametrize("method, options", [("lbfgs", {}), ("adam", {"learning_rate": 0.05}),
                                             ("hd", {"learning_rate": 0.05, "memory": 3})])
def test_a_corrupt_state_is_refused(method, options, objectives):
    logits = objectives["logits"]
    partial = optimize(logits, method, steps=20, callback=_stop_at(4), **options)
    state, n = partial.state, logits.size
    g_nan = np.array(state.arrays["g"])
    g_nan[3] = np.nan
    bad = {"missing": (_corrupt(state, g=None), "array 'g' is missing"),
           "shape": (_corrupt(state, g=np.zeros(n + 1)), "array 'g' has shape"),
           "nan": (_corrupt(state, g=g_nan), "NaN or infinite"),
           "x": (_corrupt(state, x=state.arrays["x"] + 1.0), "not the run's last iterate")}
    for name, (corrupt, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            optimize(logits, method, steps=20, resume=dataclasses.replace(partial, state=corrupt),
                     **options)
    counted = dataclasses.replace(state, scalars={**state.scalars, "evaluations": 3})
    with pytest.raises(ValueError, match="corrupt optimizer state"):
        optimize(logits, method, steps=20, resume=dataclasses.replace(partial, state=counted),
                 **options)


def test_state_round_trips_through_plain_data(objectives):
    state = optimize(objectives["logits"], "lbfgs", steps=20, callback=_stop_at(4)).state
    data = state.to_dict()
    assert set(data) == {"method", "size", "fingerprint", "arrays", "scalars"}
    assert all(isinstance(v, np.ndarray) for v in data["arrays"].values())
    assert all(isinstance(v, (bool, int, float, str)) for v in data["scalars"].values())
    assert OptimizerState.from_dict(data) == state
    assert state.arrays["s"].shape == (4, objectives["logits"].size)  # 4 pairs held
    with pytest.raises(ValueError, match="missing: fingerprint"):
        OptimizerState.from_dict({k: v for k, v in data.items() if k != "fingerprint"})
    with pytest.raises(ValueError, match="must be an int, float, bool or str"):
        OptimizerState("lbfgs", 3, "", {}, {"bad": [1, 2]})


def test_resume_without_state_restarts_the_memory(objectives):
    logits = objectives["logits"]
    partial = optimize(logits, "lbfgs", steps=20, implementation="scipy", callback=_stop_at(3))
    assert partial.state is None
    resumed = optimize(logits, "lbfgs", steps=20, implementation="scipy", resume=partial)
    assert "memory restarted" in resumed.message
    assert resumed.evaluations > partial.evaluations


def test_mma_resume_restarts_from_its_start(objectives):
    densities = objectives["densities"]
    whole = optimize(densities, "mma", steps=6, record=RECORD)
    partial = optimize(densities, "mma", steps=6, record=RECORD, callback=_stop_at(3))
    assert partial.state is not None and partial.state.scalars["restart_only"] is True
    assert np.array_equal(partial.state.arrays["start"], densities.initial())
    resumed = optimize(densities, "mma", steps=6, record=RECORD, resume=partial)
    assert "restarted from its original start with the full budget" in resumed.message
    assert resumed.iterations == whole.iterations
    assert np.array_equal(resumed.loss_per_evaluation, whole.loss_per_evaluation)
    # an old MMA partial without a state restarts from its iterate 0
    old = dataclasses.replace(partial, state=None)
    again = optimize(densities, "mma", steps=6, record=RECORD, resume=old)
    assert np.array_equal(again.loss_per_evaluation, whole.loss_per_evaluation)


# -- through the store and the command line --------------------------------------------------
def _stored_identical(a, b) -> None:
    """Two stored runs agree in everything but their times and provenance."""
    assert_identical(a.result, b.result)
    assert a.partial == b.partial


def test_store_round_trips_the_state_exactly(tmp_path, objectives):
    from studies.runner import build_objective, problem_fields
    from studies.store import ResultsFile, RunConfig, write_run

    config = RunConfig(**problem_fields("mbb_beam", (16, 8), 0.5), model="pixel",
                       optimizer="adam", steps=12, seed=0, options={"learning_rate": 0.05},
                       record=RECORD)
    objective = build_objective(config)
    whole = optimize(objective, "adam", steps=12, record=RECORD, learning_rate=0.05)
    partial = optimize(objective, "adam", steps=12, record=RECORD, learning_rate=0.05,
                       callback=_stop_at(4))
    path = tmp_path / "state.h5"
    run_id = write_run(path, config, partial)
    stored = ResultsFile(path).read(run_id).result
    assert stored.state == partial.state  # bit for bit, same dtypes and scalar types
    assert {k: type(v) for k, v in stored.state.scalars.items()} == \
        {k: type(v) for k, v in partial.state.scalars.items()}
    resumed = optimize(objective, "adam", steps=12, record=RECORD, learning_rate=0.05,
                       resume=stored)
    for name in ("loss_per_evaluation", "loss_per_iterate", "iterates", "x", "gradients"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name)), name
    assert resumed.state == whole.state and resumed.message == whole.message


def _nrto(*args: str) -> list[str]:
    return [sys.executable, "-m", "studies.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_nrto_resume_is_bit_identical(tmp_path):
    """``nrto optimize`` killed with SIGKILL after a checkpoint, then ``nrto resume``."""
    from studies.store import ResultsFile

    run = ["optimize", "--problem", "mbb_beam", "--size", "32x16", "--volfrac", "0.5",
           "--model", "pixel", "--optimizer", "lbfgs", "--steps", "150", "--iterates-every", "1",
           "--checkpoint-every", "5", "--no-progress"]
    whole_path, killed_path = tmp_path / "whole.h5", tmp_path / "killed.h5"
    subprocess.run(_nrto(*run, "--out", str(whole_path)), env=_env(), check=True,
                   capture_output=True, timeout=300)
    process = subprocess.Popen(_nrto(*run, "--out", str(killed_path)), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, iterations = time.monotonic() + 240, 0
    while time.monotonic() < deadline and process.poll() is None and iterations < 10:
        time.sleep(0.02)
        if killed_path.exists():
            try:
                rows = ResultsFile(killed_path).runs()
            except Exception:  # noqa: BLE001 - a file being replaced: look again
                continue
            iterations = rows[0].iterations if rows and rows[0].partial else 0
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    partial = ResultsFile(killed_path).read(0)
    assert partial.partial and partial.result.state is not None
    assert 10 <= partial.result.iterations < ResultsFile(whole_path).read(0).result.iterations
    subprocess.run(_nrto("resume", str(killed_path), "--no-progress"), env=_env(), check=True,
                   capture_output=True, timeout=300)
    _stored_identical(ResultsFile(killed_path).read(0), ResultsFile(whole_path).read(0))


def test_nrto_resume_refuses_a_foreign_state_and_writes_nothing(tmp_path, objectives):
    from studies.cli import main
    from studies.runner import build_objective, problem_fields
    from studies.store import ResultsFile, RunConfig, write_run

    config = RunConfig(**problem_fields("mbb_beam", (16, 8), 0.5), model="pixel",
                       optimizer="lbfgs", steps=30, seed=0, record=RECORD)
    objective = build_objective(config)
    partial = optimize(objective, "lbfgs", steps=30, record=RECORD, callback=_stop_at(3))
    foreign = optimize(objective, "gd_ls", steps=30, callback=_stop_at(3)).state
    path = tmp_path / "foreign.h5"
    write_run(path, config, dataclasses.replace(partial, state=foreign))
    before = path.read_bytes()
    assert main(["resume", str(path), "--no-progress"]) == 2
    assert path.read_bytes() == before
    assert ResultsFile(path).read(0).partial
