"""Compact records and run files: exact round trips, the commit-size bound, checkpoint states."""
import dataclasses

import numpy as np
import pytest

from solvers.result import OptimizationResult
from studies.study.records import CompactRecord, decode_array, design_to_uint8, encode_array
from studies.study.runfile import read_checkpoint, write_checkpoint
from studies.study.spec import Cell


def _cell(width=256, height=256, steps=1000):
    return Cell(problem="P", model="cnn", penal=3.0, method="LBFGS", seed=0, steps=steps,
                problem_definition={"problem": f"x_{width}x{height}", "family": "x",
                                    "width": width, "height": height, "volume_fraction": 0.2,
                                    "problem_params": {}},
                optimizer="lbfgs", options={}, model_options={}, filter_radius=2.0,
                curve="evaluation")


def _synthetic_design(rng, height, width, blur=12, radius=2):
    """What an optimized design looks like: a 0/1 structure of bars and holes (thresholded
    blurred noise, 30 % solid) seen through the physics' cone filter of radius 2, so that its
    edges are grey (about 40 % of the pixels here, more than in a converged design)."""
    from scipy.ndimage import convolve, uniform_filter

    noise = uniform_filter(rng.normal(size=(height, width)), blur, mode="wrap")
    solid = (noise > np.quantile(noise, 0.7)).astype(np.float64)
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    cone = np.maximum(0.0, radius - np.hypot(x, y))
    return convolve(solid, cone / cone.sum(), mode="nearest")


def test_arrays_round_trip_bit_for_bit():
    rng = np.random.default_rng(0)
    for array in (rng.normal(size=1037), np.array([np.nan, np.inf, -0.0, 1e-300]),
                  np.zeros(0), rng.integers(0, 255, size=(7, 5)).astype(np.uint8),
                  rng.normal(size=(3, 4)).astype(np.float32)):
        back = decode_array(encode_array(array))
        assert back.dtype == array.dtype and back.shape == array.shape
        assert back.tobytes() == array.tobytes()


def test_design_quantization_error_is_at_most_half_a_level():
    density = np.linspace(0.0, 1.0, 1001).reshape(7, 143)
    q = design_to_uint8(density)
    assert q.dtype == np.uint8 and q[0, 0] == 0 and q[-1, -1] == 255
    assert np.max(np.abs(q / 255.0 - density)) <= 1 / 510 + 1e-15


def test_compact_record_of_a_256x256_cell_after_1000_steps_is_at_most_50_kb():
    rng = np.random.default_rng(1)
    evaluations = 1039  # L-BFGS runs past maxfun = 1000 by its last line search
    loss = 300.0 * np.exp(-np.linspace(0, 4, evaluations)) + 50 + rng.normal(0, 0.5, evaluations)
    accepted = np.sort(rng.choice(np.arange(1, evaluations), size=949, replace=False))
    iterate_loss = loss[np.r_[0, accepted]]  # L-BFGS: the accepted points are evaluations
    final = _synthetic_design(rng, 256, 256)
    best = final.copy()
    best[100:110, 100:110] = 0.5  # the best evaluation a few steps before the last
    record = CompactRecord(
        cell=_cell(), status="max_steps", message="maxfun reached", converged=False,
        iterations=949, evaluations=evaluations, loss_per_evaluation=loss,
        loss_per_iterate=iterate_loss, grad_norm_per_iterate=np.abs(rng.normal(size=950)),
        final_design=design_to_uint8(final), best_design=design_to_uint8(best),
        best_evaluation=1000,
        dtype="float32", provenance={"wall_s": 1.0, "cpu_s": 1.0, "versions": {"numpy": "2"},
                                     "git_revision": "0" * 40, "host": "h"})
    text = record.to_json()
    print(f"compact record of a 256x256 cell after 1000 steps: {len(text.encode())} bytes")
    assert len(text.encode()) <= 50_000, len(text.encode())
    back = CompactRecord.from_json(text)
    assert back.deterministic_json() == record.deterministic_json()
    assert back.loss_per_evaluation.tobytes() == loss.tobytes()
    assert back.loss_per_iterate.tobytes() == iterate_loss.tobytes()
    assert np.array_equal(back.final_design, record.final_design)
    assert np.array_equal(back.best_design, record.best_design)
    # a best design far from the final one, and iterate losses that are not evaluations
    other = dataclasses.replace(record, best_design=design_to_uint8(_synthetic_design(rng, 256,
                                                                                      256)),
                                loss_per_iterate=iterate_loss + 1.0)
    again = CompactRecord.from_json(other.to_json())
    assert np.array_equal(again.best_design, other.best_design)
    assert again.loss_per_iterate.tobytes() == other.loss_per_iterate.tobytes()
    # the deterministic part holds no timing or provenance
    assert "wall_s" not in record.deterministic_json()
    assert "git_revision" not in record.deterministic_json()


def test_run_file_round_trip_with_optimizer_state(tmp_path):
    from solvers.optim.state import OptimizerState

    rng = np.random.default_rng(2)
    state = OptimizerState(method="lbfgs", size=3, fingerprint="Toy|n=3",
                           arrays={"s": rng.normal(size=(2, 3)), "count": np.arange(4),
                                   "valid": np.array([True, False])},
                           scalars={"k": 3, "theta": 0.1 + 0.2, "phase": "search",
                                    "restarted": False})
    result = OptimizationResult(
        method="lbfgs", options={"memory": 10}, x=rng.normal(size=3),
        loss_per_evaluation=rng.normal(size=6), loss_per_iterate=rng.normal(size=4),
        grad_norm_per_iterate=rng.normal(size=4), step_length_per_iterate=rng.normal(size=4),
        iterations=3, evaluations=6, converged=False, status="interrupted", message="snapshot",
        state=state)
    path = tmp_path / "runs" / "cell.h5"
    write_checkpoint(path, {"key": "k"}, result, partial=True, best_x=result.x, best_loss=1.5,
                     best_evaluation=2, wall_s=3.0, cpu_s=2.0)
    assert [p.name for p in path.parent.iterdir()] == ["cell.h5"]  # no temporary left
    back = read_checkpoint(path)
    assert back.partial and back.best_loss == 1.5 and back.best_evaluation == 2
    assert back.wall_s == 3.0 and back.cell == {"key": "k"}
    for field in dataclasses.fields(OptimizationResult):
        value, restored = getattr(result, field.name), getattr(back.result, field.name)
        if isinstance(value, np.ndarray):
            assert restored.dtype == value.dtype and restored.tobytes() == value.tobytes()
        elif field.name != "state":
            assert restored == value, field.name
    restored = back.result.state
    assert (restored.method, restored.size, restored.fingerprint) == ("lbfgs", 3, "Toy|n=3")
    assert restored.scalars == state.scalars
    assert set(restored.arrays) == set(state.arrays)
    for name, array in state.arrays.items():
        assert restored.arrays[name].dtype == array.dtype
        assert restored.arrays[name].tobytes() == array.tobytes()


def test_run_files_and_records_that_find_the_disk_full_are_one_line(tmp_path, monkeypatch):
    """HDF5 reports a full disk inside its own error text; the run file's writer and the
    record's (atomic_write_bytes) both turn it into one NoSpaceError naming the file, leave
    the old file as it was and no temporary."""
    import errno
    import os

    import h5py

    from studies.outputs import NoSpaceError
    from studies.study.records import atomic_write_bytes

    result = OptimizationResult(
        method="oc", options={}, x=np.zeros(3), loss_per_evaluation=np.ones(2),
        loss_per_iterate=np.ones(2), grad_norm_per_iterate=np.ones(2),
        step_length_per_iterate=np.ones(2), iterations=1, evaluations=2, converged=False,
        status="interrupted", message="snapshot")
    path = tmp_path / "cell.h5"
    write_checkpoint(path, {"key": "k"}, result, partial=True, best_x=None, best_loss=1.0,
                     best_evaluation=0, wall_s=1.0, cpu_s=1.0)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise RuntimeError("Can't close file (file write failed: errno = 28, error message = "
                           "'No space left on device')")

    monkeypatch.setattr(h5py, "File", full)
    with pytest.raises(NoSpaceError, match=f"cannot write {path}: No space left on device"):
        write_checkpoint(path, {"key": "k"}, result, partial=False, best_x=None, best_loss=1.0,
                         best_evaluation=0, wall_s=1.0, cpu_s=1.0)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["cell.h5"]

    record = tmp_path / "record.json"

    def no_room(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_room)
    with pytest.raises(NoSpaceError, match=f"cannot write {record}: No space left on device"):
        atomic_write_bytes(record, b"{}")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["cell.h5"]


def test_damaged_records_are_one_clear_error_naming_the_file():
    """What a half-written, hand-edited or hostile record gets: a StudyError naming the file
    and what is wrong, never a traceback from deep inside the decoder."""
    import json

    import pytest

    from studies.study.spec import StudyError

    small = _cell(8, 4, 3)
    record = CompactRecord(
        cell=small, status="max_steps", message="m", converged=False, iterations=3,
        evaluations=4, loss_per_evaluation=np.arange(4.0), loss_per_iterate=np.arange(4.0),
        grad_norm_per_iterate=np.ones(4), final_design=np.zeros((4, 8), np.uint8),
        best_design=np.zeros((4, 8), np.uint8), best_evaluation=0, dtype="float64")
    good = json.loads(record.to_json())
    assert CompactRecord.from_json(json.dumps(good)).deterministic_json() == \
        record.deterministic_json()

    def damaged(change):
        data = json.loads(json.dumps(good))
        change(data)
        return json.dumps(data)

    cases = [
        ('{"format": "nrto-study-record", "deterministic": {', "is not a compact record"),
        ("[]", r"is not a compact record \(format 'list'\)"),
        ("[" * 100_000 + "]" * 100_000, "is not a compact record .*nested too deeply"),
        (damaged(lambda d: d.update(version="x")), r"version 'x'"),
        (damaged(lambda d: d.update(version=99)), "record version 99"),
        (damaged(lambda d: d.pop("deterministic")), "no field 'deterministic'"),
        (damaged(lambda d: d["deterministic"].pop("status")), "no field 'status'"),
        (damaged(lambda d: d["deterministic"]["cell"].pop("seed")), "no field 'cell.seed'"),
        (damaged(lambda d: d["deterministic"].update(cell=[1])), "cell is not a mapping"),
        (damaged(lambda d: d["deterministic"]["final_design"].update(shape=[3, 3])),
         "damaged compact record .*cannot reshape"),
        (damaged(lambda d: d["deterministic"]["final_design"].update(data="!!!")),
         "damaged compact record"),
        (damaged(lambda d: d["deterministic"]["loss_per_evaluation"].update(dtype="nope")),
         "damaged compact record"),
    ]
    for text, message in cases:
        with pytest.raises(StudyError, match=f"^records/x.json .*{message}"):
            CompactRecord.from_json(text, "records/x.json")


def test_files_that_are_not_text_are_damaged_records_and_specs(tmp_path):
    """Binary garbage where a record, a trial record or study.json belongs (a bad copy, a
    hostile commit): one StudyError naming the file, not a UnicodeDecodeError traceback."""
    import pytest

    from studies.study.records import DamagedRecord, StudyFolder
    from studies.study.spec import StudyError

    record = CompactRecord(
        cell=_cell(8, 4, 3), status="max_steps", message="m", converged=False, iterations=3,
        evaluations=4, loss_per_evaluation=np.arange(4.0), loss_per_iterate=np.arange(4.0),
        grad_norm_per_iterate=np.ones(4), final_design=np.zeros((4, 8), np.uint8),
        best_design=np.zeros((4, 8), np.uint8), best_evaluation=0, dtype="float64",
        provenance={"cpu_s": 2.5})
    good, binary = tmp_path / "good.json", tmp_path / "binary.json"
    good.write_text(record.to_json())
    binary.write_bytes(b'{"a": "\xc8\xff"}')
    assert CompactRecord.read(good).deterministic_json() == record.deterministic_json()
    assert CompactRecord.cpu_s(good) == 2.5
    with pytest.raises(DamagedRecord, match=f"{binary} is not a compact record .*UTF-8"):
        CompactRecord.read(binary)
    for text in (b'{"a": "\xc8\xff"}', b"[1]", b'{"provenance": {"cpu_s": "x"}}'):
        binary.write_bytes(text)
        with pytest.raises(DamagedRecord, match=f"{binary} is not a compact record .*cpu_s"):
            CompactRecord.cpu_s(binary)
    folder = StudyFolder(tmp_path / "study")
    folder.path.mkdir()
    for text, what in ((b"\xc8\xff", "can't decode"), (b"[1]", "format 'list'"),
                       (b'{"format": "x"}', "format 'x'")):
        folder.spec_path.write_bytes(text)
        with pytest.raises(StudyError, match=f"study.json is not a study spec .*{what}"):
            folder.read_spec()
