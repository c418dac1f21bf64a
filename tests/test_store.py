"""The HDF5 results store: round trip, documented layout, partial runs, locking, crash safety.

Independent answers: the arrays written (exact equality), the layout read with plain h5py (the
schema of results/README.md), git and numpy asked directly, and processes killed with SIGKILL.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from solvers.flat import ParameterSpec
from solvers.result import OptimizationResult, stored_fields
from studies.store import (
    BrokenRunError,
    ResultsFile,
    RunConfig,
    RunNotFoundError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    check_writable,
    drop_arrays,
    write_analysis,
    write_run,
)

REPO = Path(__file__).resolve().parents[1]
def test_round_trip_every_field(tmp_path, make_result, make_config, assert_same_result):
    path = tmp_path / "runs.h5"
    specs = (ParameterSpec("pixels", (3, 4), "pixels"),)
    written = [make_result(0), make_result(1, full=False, status="converged")]
    ids = [write_run(path, make_config(0), written[0], parameter_specs=specs),
           write_run(path, make_config(1, model="cnn"), written[1])]
    assert ids == ["run-0000", "run-0001"]
    store = ResultsFile(path)
    assert store.run_ids() == ids
    for run_id, result, seed in zip(ids, written, (0, 1)):
        run = store.read(run_id)
        assert_same_result(run.result, result)
        assert run.config == make_config(seed, model="cnn" if seed else "pixel")
        assert run.label == run.config.label and not run.partial
    assert store.read("run-0000").parameter_specs == specs
    assert store.read("run-0001").parameter_specs == ()

    provenance = store.read(0).provenance
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()
    assert provenance.git_revision == (head or "unknown")
    assert provenance.versions["numpy"] == np.__version__
    assert provenance.versions["h5py"] == h5py.__version__

    rows = store.runs()
    assert [row.best_loss for row in rows] == [r.loss_per_evaluation.min() for r in written]
    assert [row.final_loss for row in rows] == [r.loss_per_iterate[-1] for r in written]


def test_layout_matches_the_documented_schema(tmp_path, make_result, make_config):
    path = tmp_path / "runs.h5"
    result = make_result(3)
    write_run(path, make_config(), result)
    with h5py.File(path, "r") as handle:
        assert handle.attrs["schema"] == "nrto-results"
        assert handle.attrs["schema_version"] == 1
        group = handle["runs/run-0000"]
        config = json.loads(group.attrs["config"])
        assert config["problem"] == "mbb_beam_16x8_0.5" and config["options"] == {"memory": 10}
        assert group.attrs["status"] == "max_steps" and not group.attrs["partial"]
        assert group.attrs["optimizer"] == "lbfgs" and group.attrs["seed"] == 0
        for name, dataset in group.items():
            axes = list(dataset.attrs["axes"])
            assert len(axes) == dataset.ndim, name
            assert [dim.label for dim in dataset.dims] == axes, name
        assert list(group["iterates"].attrs["axes"]) == ["stored_iterate", "parameter"]
        designs = group["designs"]
        assert designs.dtype == np.uint8 and list(designs.attrs["axes"]) == [
            "design", "row", "column"]
        dequantized = designs.attrs["offset"] + designs.attrs["scale"] * designs[()]
        np.testing.assert_allclose(dequantized, result.designs, atol=0.5 / 255 + 1e-12)
        np.testing.assert_array_equal(group["loss_per_evaluation"][()],
                                      result.loss_per_evaluation)


def test_nonfinite_designs_and_out_of_range_values(tmp_path, make_result, make_config):
    result = make_result(4)
    result.designs[1, 2, 3] = np.nan
    result.designs[2, 0, 0] = 1.5  # the quantization range grows to cover it
    write_run(tmp_path / "r.h5", make_config(), result)
    read = ResultsFile(tmp_path / "r.h5").read(0).result.designs
    assert np.isnan(read[1, 2, 3]) and np.isnan(read).sum() == 1
    finite = np.isfinite(result.designs)
    assert np.max(np.abs(read[finite] - result.designs[finite])) <= 0.5 * 1.5 / 255 + 1e-12


def test_partial_checkpoint_then_final_replaces_it(tmp_path, make_result, make_config,
                                                   assert_same_result):
    path = tmp_path / "runs.h5"
    other = write_run(path, make_config(9), make_result(9))
    checkpoint = make_result(5, iterations=2, evaluations=4, status="interrupted")
    run_id = write_run(path, make_config(), checkpoint)
    store = ResultsFile(path)
    first = store.read(run_id)
    assert first.partial and first.result.status == "interrupted"
    assert [row.partial for row in store.runs()] == [False, True]
    time.sleep(0.01)
    final = make_result(5)
    assert write_run(path, make_config(), final, run_id=run_id) == run_id
    second = store.read(run_id)
    assert not second.partial and store.run_ids() == [other, run_id]
    assert second.provenance.created == first.provenance.created
    assert second.provenance.updated > first.provenance.updated
    assert_same_result(second.result, final)
    assert_same_result(store.read(other).result, make_result(9))  # untouched by the rewrite
    # ids are never reused and an explicit new id moves the counter on
    assert write_run(path, make_config(), final, run_id="run-0007") == "run-0007"
    assert write_run(path, make_config(), final) == "run-0008"


def test_replacing_a_checkpoint_does_not_grow_the_file(tmp_path, make_result, make_config):
    path = tmp_path / "runs.h5"
    run_id = write_run(path, make_config(), make_result(0, n=20000, status="interrupted"))
    size = path.stat().st_size
    for _ in range(4):
        write_run(path, make_config(), make_result(0, n=20000, status="interrupted"),
                  run_id=run_id)
    assert path.stat().st_size < 1.2 * size


def test_resolve_by_number_label_and_close_matches(tmp_path, make_result, make_config):
    path = tmp_path / "runs.h5"
    write_run(path, make_config(0), make_result(0))
    write_run(path, make_config(1), make_result(1))
    store = ResultsFile(path)
    assert store.resolve(1) == store.resolve("1") == store.resolve("run-0001") == "run-0001"
    assert store.resolve(make_config(0).label) == "run-0000"
    with pytest.raises(RunNotFoundError, match="did you mean 'run-0001'"):
        store.resolve("run-0011")
    with pytest.raises(KeyError):
        store.read("run-0042")


def test_files_that_are_not_results_files(tmp_path, make_result, make_config):
    with pytest.raises(StoreFormatError, match="no such results file"):
        ResultsFile(tmp_path / "missing.h5").runs()
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(StoreFormatError, match="not an HDF5 file"):
        ResultsFile(text).runs()
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["data"] = np.arange(3)
    with pytest.raises(StoreFormatError, match="not an nrto results file"):
        write_run(foreign, make_config(), make_result())
    with h5py.File(foreign, "r") as handle:  # left as it was
        assert list(handle) == ["data"]


def test_config_validates_and_round_trips(make_config):
    config = make_config(seed=None, model_options={"resizes": (1, 2)}, problem_params={"k": 1})
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == dataclasses.replace(
        config, model_options={"resizes": [1, 2]})
    for bad in ({"model": "mlp"}, {"steps": 0}, {"volume_fraction": 1.5}, {"seed": -1},
                {"penal": float("nan")}, {"options": {"f": object()}}, {"problem": ""}):
        with pytest.raises(ValueError):
            make_config(**bad)


def test_to_xarray_view(tmp_path, make_result, make_config):
    result = make_result(6)
    write_run(tmp_path / "r.h5", make_config(), result)
    ds = ResultsFile(tmp_path / "r.h5").to_xarray("run-0000")
    assert ds.loss_per_evaluation.dims == ("evaluation",)
    np.testing.assert_array_equal(ds.loss_per_iterate.values, result.loss_per_iterate)
    np.testing.assert_array_equal(ds.iterates.sel(stored_iterate=2).values, result.iterates[1])
    assert ds.designs.dims == ("design", "row", "column")
    np.testing.assert_allclose(ds.designs.sel(design=3).values, result.designs[1], atol=0.002)
    np.testing.assert_array_equal(ds.pair_iteration.values, result.pair_iterations)
    assert ds.attrs["optimizer"] == "lbfgs" and ds.attrs["run_id"] == "run-0000"


def test_a_held_lock_gives_a_clear_error(tmp_path, make_result, make_config):
    path = tmp_path / "runs.h5"
    write_run(path, make_config(), make_result())
    before = path.read_bytes()
    with open(tmp_path / ".runs.h5.lock", "w") as lock:  # the documented sidecar lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        start = time.monotonic()
        with pytest.raises(StoreLockedError, match="another process"):
            write_run(path, make_config(), make_result(), lock_timeout=0.3)
        assert time.monotonic() - start < 5
    assert path.read_bytes() == before


_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    sys.path.insert(0, {repo!r})
    from conftest import build_config as make_config, build_result as make_result
    from studies.store import write_run
    path, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for i in range(count):
        write_run(path, make_config(i), make_result(i, n=size))
        print(i, flush=True)
""")


def _writer(path: Path, count: int, size: int) -> subprocess.Popen:
    code = _WRITER.format(tests=str(Path(__file__).parent), repo=str(REPO))
    return subprocess.Popen([sys.executable, "-c", code, str(path), str(count), str(size)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_writers_lose_no_run(tmp_path):
    path = tmp_path / "shared.h5"
    writers = [_writer(path, 6, 200) for _ in range(2)]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    store = ResultsFile(path)
    assert store.run_ids() == [f"run-{i:04d}" for i in range(12)]
    assert sorted(row.config.seed for row in store.runs()) == sorted(list(range(6)) * 2)


def test_a_writer_killed_mid_write_leaves_a_readable_file(tmp_path, make_result, make_config,
                                                         assert_same_result):
    """SIGKILL a process that does nothing but write runs (each copies the whole file), at
    several moments; every run the file lists must read back completely and exactly. (A writer
    that modifies the file in place and flushes part of a run fails this test.)"""
    path = tmp_path / "killed.h5"
    completed, killed_mid_write = 0, 0
    for delay in (0.1, 0.5, 0.9):
        writer = _writer(path, 1000, 60000)  # ~1 MB of float64 per run
        writer.stdout.readline()  # its first run is written (imports take long on a busy machine)
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        killed_mid_write += any(".tmp-" in p.name for p in tmp_path.iterdir())
        store = ResultsFile(path)
        ids = store.run_ids()
        assert len(ids) >= completed
        for run_id in ids:
            run = store.read(run_id)
            assert_same_result(run.result, make_result(run.config.seed, n=60000))
        completed = len(ids)
    assert completed >= 1
    assert killed_mid_write >= 1  # the kills did land inside writes (writing is most of the loop)
    # the next writer removes what a killed writer left behind and carries on
    write_run(path, make_config(99), make_result(99))
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    assert len(ResultsFile(path)) == completed + 1


# -- damaged files ----------------------------------------------------------------------------


def _damage(path: Path, how: str) -> None:
    """Break run-0001 of ``path`` (or the file) the way a bad tool or a bit flip would."""
    with h5py.File(path, "r+") as handle:
        group = handle["runs/run-0001"]
        if how == "missing dataset":
            del group["loss_per_iterate"]
        elif how == "broken config":
            group.attrs["config"] = '{"problem": "mbb'
        elif how == "deep config":  # deeper than Python's recursive JSON parser can go
            group.attrs["config"] = "[" * 100_000 + "]" * 100_000
        elif how == "bad status":
            group.attrs["status"] = "exploded"
        elif how == "wrong axes":
            data = group["x"][()]
            del group["x"]
            group["x"] = data.reshape(3, -1)
        elif how == "short curve":  # e.g. a tool that rewrote the curve and not `iterations`
            data = group["loss_per_iterate"][:1]
            del group["loss_per_iterate"]
            group["loss_per_iterate"] = data
        elif how == "rows":
            data = group["gradients"][1:]
            del group["gradients"]
            group["gradients"] = data
        elif how in ("text losses", "complex x", "compound designs"):  # values of a foreign type
            name, dtype = {"text losses": ("loss_per_iterate", "S8"), "complex x": ("x", complex),
                           "compound designs": ("designs", [("a", "u1"), ("b", "u1")])}[how]
            data = group[name][()]
            del group[name]
            group[name] = np.zeros(data.shape, dtype)
        elif how == "parameters":  # x no longer matches the layout it declares
            group.attrs["parameter_specs"] = '[["theta", [5], "other"]]'
        elif how == "schema_version":
            handle.attrs["schema_version"] = "one"


@pytest.mark.parametrize("how, words", [("missing dataset", "dataset 'loss_per_iterate' is "
                                         "missing"),
                                        ("broken config", "attribute 'config' is broken"),
                                        ("deep config", "attribute 'config' is broken"),
                                        ("bad status", "not a valid|unknown status"),
                                        ("wrong axes", "dataset 'x' should have 1 axes"),
                                        ("text losses", "dataset 'loss_per_iterate' holds "
                                         "values of type \\|S8, not real numbers"),
                                        ("complex x", "dataset 'x' holds values of type "
                                         "complex128, not real numbers"),
                                        ("compound designs", "dataset 'designs' holds values "
                                         "of type .*, not uint8 densities"),
                                        ("short curve", "dataset 'loss_per_iterate' has 1 "
                                         r"entries, not iterations \+ 1 = \d+"),
                                        ("rows", "dataset 'gradients' has \\d+ rows but "
                                         "'iterate_indices' \\d+ entries"),
                                        ("parameters", "dataset 'x' has 12 entries, not the 5 "
                                         "parameters of its attribute 'parameter_specs'")])
def test_a_damaged_run_is_named_and_the_others_stay_readable(tmp_path, how, words, make_config,
                                                             make_result, assert_same_result):
    path = tmp_path / "runs.h5"
    for seed in range(3):
        write_run(path, make_config(seed), make_result(seed))
    _damage(path, how)
    store = ResultsFile(path)
    assert list(store.damaged()) == ["run-0001"]
    assert re.search(words, store.damaged()["run-0001"]), store.damaged()
    with pytest.raises(BrokenRunError, match=rf"run-0001 is damaged: ({words})") as caught:
        store.read(1)
    assert "\n" not in str(caught.value)
    with pytest.raises(BrokenRunError, match="run-0001"):
        store.runs()
    assert [row.run_id for row in store.runs(skip_damaged=True)] == ["run-0000", "run-0002"]
    assert_same_result(store.read(2).result, make_result(2))
    before = path.read_bytes()
    with pytest.raises(StoreFormatError, match="run-0001 is damaged"):  # not copied along
        write_run(path, make_config(5), make_result(5))
    with pytest.raises(StoreFormatError, match="run-0001 is damaged"):
        check_writable(path)
    with pytest.raises(StoreFormatError, match="run-0001 is damaged"):
        write_analysis(path, 0, "trajectory/metrics", {"a": np.zeros(2)}, {"a": ["k"]}, {})
    assert path.read_bytes() == before


def test_an_inconsistent_result_is_refused_before_the_file_is_touched(tmp_path, make_config,
                                                                      make_result):
    path = tmp_path / "runs.h5"
    write_run(path, make_config(0), make_result(0))
    before = path.read_bytes()
    short = dataclasses.replace(make_result(1), evaluations=make_result(1).evaluations + 1)
    with pytest.raises(ValueError, match="inconsistent result: 'loss_per_evaluation' has"):
        write_run(path, make_config(1), short)
    assert path.read_bytes() == before and not ResultsFile(path).damaged()


def test_file_level_damage_gets_its_own_message(tmp_path, make_config, make_result):
    path = tmp_path / "runs.h5"
    for seed in range(2):
        write_run(path, make_config(seed), make_result(seed))
    _damage(path, "schema_version")
    with pytest.raises(StoreFormatError, match="schema_version is 'one', not an integer"):
        ResultsFile(path).runs()
    no_runs = tmp_path / "no_runs.h5"
    with h5py.File(no_runs, "w") as handle:
        handle.attrs["schema"] = "nrto-results"
        handle.attrs["schema_version"] = 1
    with pytest.raises(StoreFormatError, match="has the schema attribute but no /runs group"):
        ResultsFile(no_runs).runs()
    with pytest.raises(StoreFormatError, match="no schema attribute"):
        with h5py.File(tmp_path / "plain.h5", "w") as handle:
            handle["a"] = 1
        ResultsFile(tmp_path / "plain.h5").runs()


# -- the schema is the result type's ------------------------------------------------------------


def test_the_stored_schema_follows_the_result_fields_and_the_readme(tmp_path, make_config,
                                                                    make_result):
    """Every field of OptimizationResult carries its storage; the file and the schema document
    (results/README.md's dataset table) agree with it."""
    specs = stored_fields()
    assert set(specs) == {field.name for field in dataclasses.fields(OptimizationResult)}
    path = tmp_path / "runs.h5"
    write_run(path, make_config(), make_result(n=5000, evaluations=4200))
    readme = (REPO / "results" / "README.md").read_text()
    dtype_codes = {"float64": "f8", "int64": "i8", "density8": "**u1**"}
    with h5py.File(path, "r") as handle:
        group = handle["runs/run-0000"]
        for name, spec in specs.items():
            if spec.dtype == "group":  # the optimizer state: its own subgroup (test_resume)
                continue
            if spec.axes is None:
                assert name in group.attrs, name
                continue
            dataset = group[name]
            assert tuple(dataset.attrs["axes"]) == spec.axes, name
            assert dataset.attrs["description"] == spec.description, name
            row = next(line for line in readme.splitlines() if f"`{name}`" in line
                       and line.startswith("| `"))
            assert f"| {dtype_codes[spec.dtype]} |" in row, (name, row)
            assert ", ".join(spec.axes) in row, (name, row)
            # the README's rule: > 4096 values chunked and gzip'ed, except parameter vectors
            big = dataset.size > 4096
            if "parameter" in spec.axes:
                assert dataset.compression is None and dataset.chunks is None, name
            elif big:
                assert dataset.compression == "gzip" and dataset.chunks is not None, name


def test_drop_arrays_keeps_the_rest_and_the_analyses(tmp_path, make_config, make_result,
                                                     assert_same_result):
    path = tmp_path / "runs.h5"
    write_run(path, make_config(0), make_result(0))
    run_id = write_run(path, make_config(1), make_result(1, n=50000))
    write_analysis(path, run_id, "trajectory/metrics", {"a": np.arange(3.0)}, {"a": ["k"]}, {})
    size = path.stat().st_size
    updated = ResultsFile(path).read(run_id).provenance.updated
    drop_arrays(path, run_id, ("iterates", "s_pairs"))
    assert path.stat().st_size < size - 0.8 * 10 * 50000 * 8  # 4 iterates, 4 gradients, 2x3 pairs
    run = ResultsFile(path).read(run_id)
    full = make_result(1, n=50000)
    for name in ("iterates", "gradients", "s_pairs", "y_pairs"):
        assert getattr(run.result, name) is None, name
    assert run.result.iterate_indices.size == 0 and run.result.pair_iterations.size == 0
    np.testing.assert_array_equal(run.result.x, full.x)
    np.testing.assert_array_equal(run.result.loss_per_evaluation, full.loss_per_evaluation)
    assert run.provenance.updated == updated
    assert [a.name for a in ResultsFile(path).analyses(run_id)] == ["trajectory/metrics"]
    with h5py.File(path, "r") as handle:
        assert json.loads(handle["runs"][run_id].attrs["dropped_arrays"]) == [
            "gradients", "iterate_indices", "iterates", "pair_iterations", "s_pairs", "y_pairs"]
    assert_same_result(ResultsFile(path).read(0).result, make_result(0))
    with pytest.raises(ValueError, match="only optional arrays"):
        drop_arrays(path, run_id, ("x",))


def test_seeds_are_bounded_to_what_every_generator_and_the_store_take(make_config):
    assert make_config(seed=2**32 - 1).seed == 2**32 - 1
    for seed in (2**32, 2**70, -1):
        with pytest.raises(ValueError, match=r"\[0, 2\*\*32\)"):
            make_config(seed=seed)
    with pytest.raises(ValueError, match="less than one element of material"):
        make_config(volume_fraction=1e-300)


def test_a_run_larger_than_the_memory_is_refused_before_loading(tmp_path, monkeypatch,
                                                                 make_config, make_result):
    """HDF5 fills unwritten chunks, so a file of kilobytes may declare terabytes (damage or a
    crafted file): reading refuses, naming the need, instead of dying in the allocation."""
    import studies.resources

    path = tmp_path / "runs.h5"
    write_run(path, make_config(0), make_result(0))
    write_analysis(path, 0, "trajectory/metrics", {"a": np.zeros(4)}, {"a": ["k"]}, {})
    with h5py.File(path, "a") as handle:
        group = handle["runs/run-0000"]
        attrs = dict(group["designs"].attrs)
        del group["designs"]
        huge = group.create_dataset("designs", shape=(3, 10 ** 6, 10 ** 6), dtype="uint8",
                                    chunks=(1, 1000, 1000), fillvalue=0)
        huge.attrs.update(attrs)
    assert path.stat().st_size < 10 ** 6
    store = ResultsFile(path)
    assert not store.damaged()  # the shapes agree with each other: not damage but size
    with pytest.raises(StoreError, match=r"run-0000 needs 2[0-9.]+ TiB of memory to load \(its "
                       r"dataset 'designs' has shape \(3, 1000000, 1000000\), uint8\), more "
                       r"than the [0-9.]+ \w+ available"):
        store.read(0)
    monkeypatch.setattr(studies.resources, "available_memory", lambda: 16)
    with pytest.raises(StoreError, match="analysis trajectory/metrics needs 32 B of memory .* "
                       "than the 16 B available"):
        store.read_analysis(0, "trajectory/metrics")
    monkeypatch.setattr(studies.resources, "available_memory", lambda: 10 ** 6)
    assert store.read_analysis(0, "trajectory/metrics").arrays["a"].shape == (4,)


def _craft(path: Path, how: str, elsewhere: Path) -> None:
    """Make run-0001 of ``path`` reach outside the file, as another tool or an attacker could."""
    with h5py.File(path, "r+") as handle:
        group = handle["runs/run-0001"]
        size = group["x"].shape[0]
        if how == "external storage":
            del group["x"]
            group.create_dataset("x", shape=(size,), dtype="f8",
                                 external=[(str(elsewhere), 0, 8 * size)])
        elif how == "virtual dataset":
            with h5py.File(elsewhere.with_suffix(".h5"), "w") as other:
                other["data"] = np.zeros(size)
            layout = h5py.VirtualLayout(shape=(size,), dtype="f8")
            layout[:] = h5py.VirtualSource(str(elsewhere.with_suffix(".h5")), "data", (size,))
            del group["x"]
            group.create_virtual_dataset("x", layout)
        elif how == "external link":
            with h5py.File(elsewhere.with_suffix(".h5"), "w") as other:
                other["data"] = np.zeros(size)
            del group["x"]
            group["x"] = h5py.ExternalLink(str(elsewhere.with_suffix(".h5")), "data")
        elif how == "soft link":
            group["loss_copy"] = h5py.SoftLink("/runs/run-0000/loss_per_iterate")
        elif how == "external run":
            handle.copy(group, handle, name="stash")
            del handle["runs/run-0001"]
            with h5py.File(elsewhere.with_suffix(".h5"), "w") as other:
                handle.copy(handle["stash"], other, name="run")
            handle["runs/run-0001"] = h5py.ExternalLink(str(elsewhere.with_suffix(".h5")), "run")


@pytest.mark.parametrize("how, words", [
    ("external storage", "dataset 'x' keeps its data in an external file"),
    ("virtual dataset", r"dataset 'x' is virtual \(its data lie in other files\)"),
    ("external link", r"'x' is an external link \(to another file\)"),
    ("soft link", "'loss_copy' is a soft link")])
def test_a_run_reaching_outside_its_file_is_damaged_and_never_read(
        tmp_path, how, words, make_config, make_result, assert_same_result):
    """A crafted file must not make nrto read another file's bytes (say a private key) as a
    run's data, nor copy them into the file on the next write."""
    path, secret = tmp_path / "runs.h5", tmp_path / "secret.txt"
    secret.write_bytes(b"PRIVATE KEY " * 400)
    for seed in range(3):
        write_run(path, make_config(seed), make_result(seed))
    _craft(path, how, secret)
    store = ResultsFile(path)
    assert list(store.damaged()) == ["run-0001"]
    assert re.search(f"{words}; nrto writes no such object", store.damaged()["run-0001"])
    with pytest.raises(BrokenRunError, match=f"run-0001 is damaged: {words}"):
        store.read(1)
    assert_same_result(store.read(2).result, make_result(2))
    before = path.read_bytes()
    with pytest.raises(StoreFormatError, match="run-0001 is damaged"):
        write_run(path, make_config(5), make_result(5))
    assert path.read_bytes() == before and b"PRIVATE KEY" not in before


def test_a_run_that_is_a_link_to_another_file_refuses_the_file(tmp_path, make_config,
                                                               make_result):
    path, elsewhere = tmp_path / "runs.h5", tmp_path / "other"
    for seed in range(2):
        write_run(path, make_config(seed), make_result(seed))
    _craft(path, "external run", elsewhere)
    with pytest.raises(StoreFormatError, match=r"/runs/run-0001 is an external link \(to another "
                                               r"file\); nrto writes no such object"):
        ResultsFile(path).runs()
