"""The ``nrto`` command line: error exits, listings, inspect/plot of stored runs, optimize/resume.

Independent answers: task names encode their size and volume fraction; the losses that inspect
prints are recomputed from the stored arrays; the loss stored for an optimized run is recomputed
by evaluating the objective at the stored parameters; a resumed run must start with the
interrupted run's history.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from studies.cli import build_parser, main
from studies.store import ResultsFile, write_run

REPO = Path(__file__).resolve().parents[1]
TINY = ["--problem", "mbb_beam", "--size", "16x8", "--volfrac", "0.5", "--model", "pixel"]


@pytest.fixture
def stored(tmp_path, make_result, make_config) -> Path:
    """A results file with a finished run and a partial one (synthetic arrays)."""
    path = tmp_path / "runs.h5"
    write_run(path, make_config(0), make_result(0))
    write_run(path, make_config(1, optimizer="gd", options={"learning_rate": 0.1}),
              make_result(1, iterations=3, evaluations=4, status="interrupted"))
    return path


def _error_cases(tmp_path: Path, stored: Path) -> dict[str, list]:
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    out = ["--out", tmp_path / "new.h5"]
    return {
        "no command": [],
        "unknown command": ["frobnicate"],
        "missing file": ["inspect", tmp_path / "missing.h5"],
        "not hdf5": ["inspect", text],
        "unknown run": ["inspect", stored, "--run", "run-0099"],
        "plot folder missing": ["plot", stored, "--out", tmp_path / "no" / "fig.png"],
        "plot format unknown": ["plot", stored, "--out", tmp_path / "fig.nosuchformat"],
        "unknown family": ["problems", "mbb"],
        "unknown problem": ["optimize", "--problem", "mbb_bem_96x32_0.5", "--model", "pixel",
                            "--optimizer", "lbfgs", "--steps", 3, *out],
        "bad size": ["optimize", *TINY[:3], "16by8", *TINY[4:], "--optimizer", "lbfgs",
                     "--steps", 3, *out],
        "size not for the CNN": ["optimize", *TINY[:3], "12x8", *TINY[4:6], "cnn",
                                 "--optimizer", "lbfgs", "--steps", 3, *out],
        "unknown optimizer": ["optimize", *TINY, "--optimizer", "lbgfs", "--steps", 3, *out],
        "mma with the cnn": ["optimize", *TINY[:6], "cnn", "--optimizer", "mma", "--steps", 3,
                             *out],
        "option without =": ["optimize", *TINY, "--optimizer", "lbfgs", "--steps", 3,
                              "--option", "memory", *out],
        "unknown option": ["optimize", *TINY, "--optimizer", "lbfgs", "--steps", 3,
                           "--option", "learning_rate=0.1", *out],
        "zero steps": ["optimize", *TINY, "--optimizer", "lbfgs", "--steps", 0, *out],
        "unwritable out": ["optimize", *TINY, "--optimizer", "lbfgs", "--steps", 3, "--out",
                           tmp_path / "no" / "such" / "x.h5"],
        "out is not a results file": ["optimize", *TINY, "--optimizer", "lbfgs", "--steps", 3,
                                      "--out", text],
        "resume a finished run": ["resume", stored, "--run", "run-0000"],
        "volfrac -inf": ["optimize", *TINY[:5], "-inf", *TINY[6:], "--optimizer", "lbfgs",
                         "--steps", 3, *out],
        "negative size": ["optimize", *TINY[:3], "-5x10", *TINY[4:], "--optimizer", "lbfgs",
                          "--steps", 3, *out],
        "volfrac without material": ["optimize", *TINY[:5], "1e-300", *TINY[6:], "--optimizer",
                                     "lbfgs", "--steps", 3, *out],
        "seed beyond the store": ["optimize", *TINY, "--optimizer", "lbfgs", "--steps", 3,
                                  "--seed", 2**70, *out],
        "extent that overflows": ["surface", stored, "--run", 0, "--extent", "1e308"],
        "a seed twice": ["optimize", *TINY, "--optimizer", "lbfgs", "--steps", 3, "--seed", 0,
                         1, "--seed", 1, *out],
        "family without volfrac": ["optimize", *TINY[:4], *TINY[6:], "--optimizer", "oc",
                                   "--steps", 3, *out],
    }


# what each message must say (the case names above)
_MESSAGES = {"volfrac -inf": "volume fraction in (0, 1]", "negative size": "WIDTHxHEIGHT",
             "volfrac without material": "at least one", "seed beyond the store": "[0, 2**32)",
             "extent that overflows": "up to 1e+06",
             "a seed twice": "--seed lists 1 more than once",
             "unknown family": "did you mean 'mbb_beam'?",
             "unknown problem": "did you mean 'mbb_beam_96x32_0.5'",
             "family without volfrac": "give --volfrac F (its tasks use 0.3, 0.4, 0.5)"}


def test_usage_errors_exit_2_with_one_line(tmp_path, stored, nrto):
    for name, argv in _error_cases(tmp_path, stored).items():
        code, out, err = nrto(*argv)
        lines = err.strip().splitlines()
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("nrto") and " error: " in lines[0], \
            (name, err)
        assert "Traceback" not in err and out == "", name
        assert _MESSAGES.get(name, "") in err and "expected one argument" not in err, (name, err)
    assert not (tmp_path / "new.h5").exists()  # nothing was written by a refused command


def test_an_unforeseen_memory_error_is_one_line(monkeypatch, nrto):
    import studies.cli

    def allocate(args):
        raise MemoryError("Unable to allocate 1.00 TiB for an array with shape (2 ** 37,)")
    monkeypatch.setitem(studies.cli._COMMANDS, "problems", allocate)
    code, out, err = nrto("problems")
    assert code == 2 and out == "" and err == (
        "nrto problems: error: out of memory (Unable to allocate 1.00 TiB for an array with "
        "shape (2 ** 37,)); use smaller settings or a machine with more memory\n")


def test_console_entry_point_exits_2_in_a_fresh_process(tmp_path):
    result = subprocess.run([sys.executable, "-m", "studies.cli", "inspect",
                             str(tmp_path / "missing.h5")], capture_output=True, text=True,
                            check=False, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"nrto inspect: error: no such results file: " \
                                    f"{tmp_path / 'missing.h5'}"


def test_problems_lists_every_task_with_its_size_and_volume_fraction(nrto):
    code, out, _ = nrto("problems")
    assert code == 0
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    assert len(rows) == 116
    pattern = re.compile(r"^(.+)_(\d+)x(\d+)_([0-9.]+)$")
    for name, family, size, volfrac, *_ in rows:
        match = pattern.match(name)
        assert match[1] == family and f"{match[2]}x{match[3]}" == size
        assert float(match[4]) == float(volfrac)
    code, out, _ = nrto("problems", "staircase", "--json")
    tasks = json.loads(out)
    assert code == 0 and len(tasks) == 4 and {t["family"] for t in tasks} == {"staircase"}
    assert tasks[0]["params"] == {"num_stories": 3}
    assert [t["name"] for t in tasks] == [r[0] for r in rows if r[1] == "staircase"]


def test_inspect_json_and_table_report_the_stored_runs(stored, nrto, make_result):
    code, out, _ = nrto("inspect", stored, "--json")
    assert code == 0
    rows = json.loads(out)
    written = [make_result(0), make_result(1, iterations=3, evaluations=4, status="interrupted")]
    assert [r["run_id"] for r in rows] == ["run-0000", "run-0001"]
    for row, result, seed in zip(rows, written, (0, 1)):
        assert row["best_loss"] == float(np.min(result.loss_per_evaluation))
        assert row["final_loss"] == float(result.loss_per_iterate[-1])
        assert row["iterations"] == result.iterations and row["seed"] == seed
        assert row["status"] == result.status and row["problem"] == "mbb_beam_16x8_0.5"
    assert [r["partial"] for r in rows] == [False, True]
    assert rows[1]["optimizer"] == "gd" and rows[1]["config"]["options"] == {"learning_rate": 0.1}

    code, out, _ = nrto("inspect", stored)
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[1].split()[:4] == ["run-0000", "mbb_beam_16x8_0.5", "pixel", "lbfgs"]
    assert lines[2].split()[-1] == "partial" and lines[1].split()[-1] == "max_steps"

    code, out, _ = nrto("inspect", stored, "--run", "0", "--json")
    detail = json.loads(out)
    assert detail["arrays"]["iterates"] == list(written[0].iterates.shape)
    assert detail["arrays"]["designs"] == list(written[0].designs.shape)
    assert detail["provenance"]["versions"]["numpy"] == np.__version__
    code, out, _ = nrto("inspect", stored, "--run", "run-0001")
    assert code == 0 and "partial: True" in out


def test_plot_writes_an_image_of_the_designs_and_losses(stored, tmp_path, nrto):
    from matplotlib.image import imread

    for argv, name in (([], "all.png"), (["--run", "run-0000"], "one.png")):
        code, _, err = nrto("plot", stored, *argv, "--out", tmp_path / name)
        assert code == 0, err
        image = imread(tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.shape[0] > 200 and image.shape[1] > 400
        assert image[..., :3].std() > 0.05  # something was drawn


def test_plot_draws_free_text_verbatim_not_as_mathtext(stored, tmp_path, nrto):
    """A run label is free text: ``$\\foo{$`` once aborted the figure in matplotlib's mathtext."""
    import h5py

    with h5py.File(stored, "r+") as handle:
        handle["runs/run-0000"].attrs["label"] = "$\\foo{$ cost"
    for argv in ([], ["--run", "run-0000"]):
        code, _, err = nrto("plot", stored, *argv, "--out", tmp_path / "p.png")
        assert code == 0, err


def test_optimize_a_tiny_pixel_problem_then_inspect_and_plot(tmp_path, nrto):
    from studies.runner import build_objective

    path = tmp_path / "tiny.h5"
    code, _, err = nrto("optimize", *TINY, "--optimizer", "lbfgs", "mma", "--steps", 10,
                         "--no-progress", "--out", path)
    assert code == 0, err
    store = ResultsFile(path)
    runs = [store.read(run_id) for run_id in store.run_ids()]
    assert [run.config.optimizer for run in runs] == ["lbfgs", "mma"]
    for run in runs:
        result = run.result
        assert not run.partial and result.status in ("max_steps", "converged")
        assert 1 <= result.iterations <= 10 and result.designs.shape[1:] == (8, 16)
        # independent check: the objective at the stored parameters gives the stored loss
        objective = build_objective(run.config)
        assert objective.value(result.x) == pytest.approx(result.loss_per_iterate[-1], rel=1e-9)
        np.testing.assert_allclose(result.designs[-1], objective.design(result.x), atol=0.5 / 255
                                   + 1e-9)
        assert result.loss_per_iterate[-1] < result.loss_per_iterate[0]
        assert sum(s.size for s in run.parameter_specs) == 16 * 8
    code, out, _ = nrto("inspect", path, "--json")
    assert code == 0 and [row["status"] for row in json.loads(out)] == [
        run.result.status for run in runs]
    code, _, _ = nrto("plot", path, "--out", tmp_path / "tiny.png")
    assert code == 0 and (tmp_path / "tiny.png").stat().st_size > 1000


_HOLD_LEASE = """
import sys, time
from studies.liveness import RunLease
RunLease(sys.argv[1], sys.argv[2]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_lease_from_another_host_is_refused(tmp_path, nrto, make_config, make_result):
    import json as json_module

    from studies.liveness import lease_folder

    path = tmp_path / "shared.h5"
    write_run(path, make_config(0), make_result(0, status="interrupted"))
    folder = lease_folder(path)
    folder.mkdir()
    (folder / "run-0000.lock").touch()
    (folder / "run-0000.json").write_text(json_module.dumps(
        {"pid": 4242, "host": "elsewhere", "started": "2026-01-01T00:00:00+00:00"}))
    code, _, err = nrto("resume", path, "--no-progress")
    assert code == 2 and "pid 4242 on host elsewhere" in err, err
    assert ResultsFile(path).read(0).result.iterations == 5  # untouched


def test_resume_continues_an_interrupted_run(tmp_path, nrto, make_config):
    from solvers import optimize
    from studies.runner import build_objective

    config = dataclasses.replace(make_config(0, optimizer="gd", steps=12,
                                             options={"learning_rate": 0.05}))
    objective = build_objective(config)

    def stop_at_5(info):
        if info.iteration == 5:
            raise StopIteration

    partial = optimize(objective, "gd", steps=12, record=config.record, callback=stop_at_5,
                       learning_rate=0.05)
    assert partial.status == "interrupted" and partial.iterations == 5
    path = tmp_path / "resume.h5"
    run_id = write_run(path, config, partial)
    assert ResultsFile(path).read(run_id).partial

    # a process that held the run's lease and was killed -9 leaves a stale lease: taken over
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LEASE, str(path), run_id],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(timeout=30)
    code, _, err = nrto("resume", path, "--no-progress")
    assert code == 0, err
    assert f"{run_id} was left by pid {holder.pid}" in err and "taking it over" in err
    run = ResultsFile(path).read(run_id)
    assert len(ResultsFile(path)) == 1 and not run.partial
    assert run.result.iterations == 12 and run.result.status == "max_steps"
    np.testing.assert_array_equal(run.result.loss_per_iterate[:6], partial.loss_per_iterate)
    # fixed-step descent continued from x_5 is the same path as an uninterrupted run
    straight = optimize(objective, "gd", steps=12, learning_rate=0.05)
    np.testing.assert_allclose(run.result.loss_per_iterate, straight.loss_per_iterate,
                               rtol=1e-12)


def test_a_live_run_is_refused_by_resume_and_sigterm_stores_it_as_partial(tmp_path, nrto):
    """One real second process: while it computes, its run is marked live (inspect: running)
    and `nrto resume` refuses it naming the pid and host; SIGTERM then stores it as partial and
    releases the lease (no sidecar left)."""
    import socket

    from studies.liveness import lease_folder, live_holder

    path = tmp_path / "term.h5"
    command = [sys.executable, "-m", "studies.cli", "optimize", *TINY, "--optimizer", "gd",
               "--option", "learning_rate=0.05", "--steps", "200000", "--checkpoint-every", "20",
               "--no-progress", "--out", str(path)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO),
                                    "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)
    holder = live_holder(path, "run-0000")
    assert holder is not None and holder.pid == process.pid, holder
    code, _, err = nrto("resume", path, "--no-progress")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"pid {process.pid} on host {socket.gethostname()}" in err and "live" in err, err
    code, out, _ = nrto("inspect", path)
    assert code == 0 and out.splitlines()[1].split()[-1] == "running"
    code, out, _ = nrto("inspect", path, "--json")
    assert json.loads(out)[0]["live"]["pid"] == process.pid
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "nrto resume" in err.strip().splitlines()[-1]
    run = ResultsFile(path).read(0)
    assert run.partial and run.result.status == "interrupted"
    assert 0 < run.result.iterations < 200000
    assert len(run.result.loss_per_iterate) == run.result.iterations + 1
    assert live_holder(path, "run-0000") is None
    assert not (lease_folder(path) / "run-0000.json").exists()


def test_parallel_jobs_store_every_run_once(tmp_path, nrto):
    path = tmp_path / "jobs.h5"
    code, _, err = nrto("optimize", *TINY, "--optimizer", "lbfgs", "--seed", 0, 1, 2,
                         "--steps", 8, "--jobs", 2, "--no-progress", "--out", path)
    assert code == 0, err
    store = ResultsFile(path)
    runs = [store.read(run_id) for run_id in store.run_ids()]
    assert sorted(run.config.seed for run in runs) == [0, 1, 2]
    assert all(not run.partial for run in runs)
    # the pixel model ignores the seed: the three runs are the same computation
    for run in runs[1:]:
        np.testing.assert_array_equal(run.result.loss_per_evaluation,
                                      runs[0].result.loss_per_evaluation)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the divergence
def test_a_run_that_ends_failed_exits_1(tmp_path, nrto):
    """gd with a step of 1e300 saturates every sigmoid: the gradient vanishes at a loss far above
    the start. That is a divergence, stored as failed, and the command exits 1."""
    path = tmp_path / "diverged.h5"
    code, _, err = nrto("optimize", *TINY, "--optimizer", "gd", "--option",
                         "learning_rate=1e300", "--steps", 5, "--no-progress", "--out", path)
    assert code == 1, err
    result = ResultsFile(path).read(0).result
    assert result.status == "failed" and not result.converged
    assert "diverged" in result.message
    assert result.loss_per_iterate[-1] > result.loss_per_iterate[0]
    assert re.search(r"wrote .*diverged\.h5 \(\d+(\.\d)? (kB|MB|bytes)\)", err), err


def test_help_names_defaults_and_what_each_flag_is(capsys):
    code = main(["optimize", "--help"])
    optimize = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "SIMP penalty exponent p (default 3)" in optimize
    assert "cone filter radius in elements (default 2)" in optimize
    assert "cnn: the paper's neural reparameterization" in optimize
    assert "seed(s) in [0, 2**32)" in optimize
    main(["spectrum", "--help"])
    assert "seed of the random start vectors (default 0)" in capsys.readouterr().out
    main(["surface", "--help"])
    assert "seed of the filter-normalized random directions" in capsys.readouterr().out


def test_damaged_runs_are_named_in_one_line_and_the_others_stay_usable(
        tmp_path, nrto, make_config, make_result):
    import h5py

    path = tmp_path / "damaged.h5"
    for seed in range(2):
        write_run(path, make_config(seed, model="pixel"), make_result(seed, status="interrupted"))
    with h5py.File(path, "r+") as handle:
        del handle["runs/run-0001/loss_per_iterate"]
    before = path.read_bytes()
    line = "run-0001 is damaged: dataset 'loss_per_iterate' is missing"
    code, out, err = nrto("inspect", path)
    assert code == 2 and out.splitlines()[1].startswith("run-0000"), (out, err)
    assert len(out.strip().splitlines()) == 2 and err.strip().endswith(line)
    assert nrto("inspect", path, "--run", 0)[0] == 0
    assert nrto("plot", path, "--run", 0, "--out", tmp_path / "ok.png")[0] == 0
    for argv in (["inspect", path, "--run", 1], ["plot", path, "--out", tmp_path / "f.png"],
                 ["resume", path, "--no-progress"], ["resume", path, "--run", 0],
                 ["trajectory", path, "--run", 1, "--no-progress"],
                 ["optimize", *TINY, "--optimizer", "lbfgs", "--steps", 3, "--out", path]):
        code, out, err = nrto(*argv)
        assert code == 2 and line in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert "Traceback" not in err
    assert path.read_bytes() == before  # nothing added, the damaged run not copied along


def test_the_pairs_hint_of_a_cnn_run_says_all_pairs(tmp_path, make_config, make_result):
    from solvers.result import RecordOptions
    from studies.analysis import AnalysisError, RunAnalyzer

    path = tmp_path / "cnn.h5"
    write_run(path, make_config(model="cnn", record=RecordOptions(pairs_until=2)),
              make_result(0))
    with pytest.raises(AnalysisError, match="--pairs-until 5` or `--all-pairs`"):
        RunAnalyzer(path, 0).lbfgs_matrix(5)


@pytest.mark.parametrize("argv, prog", [
    (["inspect", "x.h5", "--bogus"], "nrto inspect"),
    (["--debug", "spectrum", "x.h5", "--run", "0", "--at", "final", "--k", "3"], "nrto spectrum"),
    (["study", "run", "s.toml", "--bogus", "1"], "nrto study run"),
    (["reproduce", "thesis", "--bogus"], "nrto reproduce thesis"),
    (["--bogus"], "nrto")])
def test_an_unknown_option_is_reported_by_the_command_it_was_given_to(argv, prog, nrto):
    code, out, err = nrto(*argv)
    assert code == 2 and out == ""
    assert err.startswith(f"{prog}: error: unrecognized arguments: ") and \
        err.rstrip().endswith(f"(see {prog} --help)") and len(err.splitlines()) == 1, err


def test_a_list_option_given_twice_keeps_both_lists_and_replaces_its_default():
    parser = build_parser()
    base = ["optimize", "--problem", "mbb_beam_96x32_0.5", "--steps", "3", "--out", "x.h5"]
    args = parser.parse_args(base + ["--model", "pixel", "--optimizer", "oc", "--model", "cnn",
                                     "--seed", "0", "1", "--seed", "2", "--designs-at", "5"])
    assert (args.model, args.optimizer, args.seed) == (["pixel", "cnn"], ["oc"], [0, 1, 2])
    assert args.designs_at == [5]  # the default [0, -1] is replaced, not extended
    args = parser.parse_args(base + ["--model", "pixel", "--optimizer", "oc"])
    assert (args.seed, args.designs_at, args.iterates_at) == ([0], [0, -1], [])
    # a second parse does not see the first one's values (the defaults are not mutated)
    assert build_parser().parse_args(base + ["--model", "cnn", "--optimizer", "gd"]).seed == [0]
    args = parser.parse_args(["reproduce", "paper-benchmark", "--tasks", "small", "--seeds",
                              "-1", "--tasks", "mbb_beam_96x32_0.5", "--seeds", "0"])
    assert (args.tasks, args.seeds) == (["small", "mbb_beam_96x32_0.5"], [-1, 0])
    args = parser.parse_args(["reproduce", "thesis", "--items", "table-3.3", "--items", "fig-3.4"])
    assert args.items == ["table-3.3", "fig-3.4"]


def test_a_checkpoint_that_finds_the_disk_full_is_skipped_and_the_run_goes_on(
        tmp_path, nrto, monkeypatch):
    """Space may be freed while a run computes: a checkpoint that cannot be written is skipped
    with one warning, and the run is stored at its end; if the end cannot be written either,
    the command says so on one line (exit 2) and the file stays as it was."""
    import studies.runner
    from studies.outputs import NoSpaceError

    real, calls = studies.runner.write_run, []

    def flaky(path, *args, **kwargs):
        calls.append(kwargs.get("partial"))
        if len(calls) <= 2:
            raise NoSpaceError(f"cannot write {path}: No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(studies.runner, "write_run", flaky)
    out = tmp_path / "r.h5"
    code, _, err = nrto("optimize", *TINY, "--optimizer", "oc", "--steps", 6,
                        "--checkpoint-every", 3, "--no-progress", "--out", out)
    assert code == 0, err
    assert err.count("checkpoint skipped: cannot write") == 1, err
    # the checkpoints at iterates 0 and 3 were refused; the one at 6 and the end were stored
    assert calls == [True, True, True, False]
    stored = ResultsFile(out).read("run-0000")
    assert stored.result.iterations == 6 and not stored.partial

    calls.clear()
    monkeypatch.setattr(studies.runner, "write_run", lambda path, *a, **k: flaky(path))
    before = out.read_bytes()
    code, _, err = nrto("optimize", *TINY, "--optimizer", "oc", "--steps", 2, "--no-progress",
                        "--out", out)
    assert code == 2 and err.splitlines()[-1].startswith("nrto optimize: error: cannot write"), err
    assert out.read_bytes() == before
