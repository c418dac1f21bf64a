"""``nrto study``: bad input is one line, exit status 2 and nothing written; status and report
work from compact records alone; a study carried elsewhere by its records resumes there."""
import json
import shutil
import socket
import time

import pytest

from studies.cli import main as nrto
from studies.study.cli import main

TOY = {
    "name": "toy-cli", "problems": ["toy/rosenbrock", {"name": "toy/quadratic", "size": 5}],
    "seeds": [0, 1], "steps": [20], "report_steps": [5],
    "methods": [{"name": "LBFGS", "optimizer": "lbfgs"},
                {"name": "GD", "optimizer": "gd", "options": {"learning_rate": 1e-3}}],
}


def _spec(tmp_path, file_name="spec.json", **changes):
    path = tmp_path / file_name
    path.write_text(json.dumps({**TOY, **changes}))
    return path


def _one_line_usage_error(capsys, argv, fragment):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and fragment in err, err
    return err


@pytest.mark.parametrize("changes, fragment", [
    ({"problems": ["mbb_bean_96x32_0.5"]}, "did you mean 'mbb_beam_96x32_0.5'"),
    ({"methods": [{"name": "X", "optimizer": "lbgfs"}]}, "unknown method 'lbgfs'"),
    ({"methods": [{"name": "X", "optimizer": "gd", "options": {"rate": 1}}]}, "no option(s) rate"),
    ({"seeds": []}, "empty"),
    ({"seeds": [1, 1]}, "duplicate cell"),
    ({"steps": [0]}, "steps must hold integers >= 1"),
    ({"name": "../../../escape"}, "study name '../../../escape'"),   # names the default --out
    ({"name": "a/b"}, "must be letters, digits"),
    ({"name": ".hidden"}, "starting with a letter or digit"),
    ({"problems": [{"name": "mbb_beam", "size": [400000, 200000], "volume_fraction": 0.5}]},
     "needs about 4.66 TiB just to be built"),   # refused before numpy tries
])
def test_bad_specs_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, changes, fragment):
    out = tmp_path / "out"
    _one_line_usage_error(capsys, ["run", str(_spec(tmp_path, **changes)), "--out", str(out)],
                          fragment)
    assert not out.exists()


def test_a_scheduler_that_does_not_answer_is_a_clear_error_within_10_s(tmp_path, capsys):
    with socket.socket() as probe:  # a free port: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out"
    start = time.monotonic()
    _one_line_usage_error(capsys, ["run", str(_spec(tmp_path)), "--out", str(out), "--scheduler",
                                   f"tcp://127.0.0.1:{port}"], "did not answer")
    assert time.monotonic() - start < 10
    assert not out.exists()


@pytest.mark.parametrize("address", ["notanaddr", "tcp://host-without-port"])
def test_a_malformed_scheduler_address_is_a_clear_error(tmp_path, capsys, address):
    out = tmp_path / "out"
    _one_line_usage_error(capsys, ["run", str(_spec(tmp_path)), "--out", str(out), "--scheduler",
                                   address], "expected e.g. tcp://")
    assert not out.exists()


def test_other_bad_arguments(tmp_path, capsys):
    spec = str(_spec(tmp_path))
    _one_line_usage_error(capsys, ["run", spec, "--shard", "3/2"], "--shard expects I/N")
    _one_line_usage_error(capsys, ["run", str(tmp_path / "missing.toml")], "no such study spec")
    _one_line_usage_error(capsys, ["status", str(tmp_path / "nothing")], "holds no study")
    for command in ("status", "report"):  # the spec (or REPORT.md) given instead of its folder
        _one_line_usage_error(capsys, [command, spec], "is a file, not a study folder")
    _one_line_usage_error(capsys, ["run", spec, "--jobs", "0"], "positive integer")
    assert not (tmp_path / "results").exists()


def test_run_status_report_refuse_another_spec_and_resume_elsewhere(tmp_path, capsys):
    spec, out = _spec(tmp_path), tmp_path / "out"
    assert nrto(["study", "run", str(spec), "--out", str(out), "--no-progress"]) == 0
    assert len(list((out / "records").glob("*.json"))) == 8
    capsys.readouterr()
    # a folder written by another spec is refused (nothing changes), unless --force
    other = _spec(tmp_path, "other.json", seeds=[0, 1, 2])
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _one_line_usage_error(capsys, ["run", str(other), "--out", str(out)], "another spec")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # status and report need only the spec and the compact records
    shutil.rmtree(out / "runs")
    capsys.readouterr()
    assert main(["status", str(out), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["cells"], status["done"], status["pending"]) == (8, 8, 0)
    assert main(["report", str(out), "--per-seed"]) == 0
    report = (out / "REPORT.md").read_text()
    assert "8 of 8" in report and "median@5" in report
    summary = (out / "tables" / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("problem,model,penal,method,cells,done,failed,median")
    assert len(summary) == 1 + 4
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert "designs.png" in figures and "curves-toy_rosenbrock-pixel-p3.png" in figures
    assert "seeds-toy_rosenbrock-pixel-p3.png" in figures
    # a record damaged from outside (a bad merge) is one line naming it, for status and report
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    broken = sorted((damaged / "records").glob("*.json"))[0]
    broken.write_text('{"truncated')
    for command in (["status", str(damaged)], ["report", str(damaged)]):
        err = _one_line_usage_error(capsys, command, f"{broken} is not a compact record")
        assert "moves it aside and computes its cell again" in err
    # carried to another machine by its committed files, the study runs nothing again ...
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(out / "study.json", moved)
    shutil.copytree(out / "records", moved / "records")
    assert main(["run", str(spec), "--out", str(moved), "--no-progress"]) == 0
    assert "(8 already)" in capsys.readouterr().err
    assert not (moved / "runs").exists()
    # ... and with --force the other spec reuses the records of its identical cells
    assert main(["run", str(other), "--out", str(moved), "--no-progress", "--force"]) == 0
    assert "(8 already)" in capsys.readouterr().err
    assert len(list((moved / "records").glob("*.json"))) == 12


def test_run_moves_a_damaged_record_aside_and_computes_its_cell_again(tmp_path, capsys):
    """A damaged record (truncated, another cell's, not UTF-8) must not count as done: the cell
    is computed again to the same bytes, the damaged file is kept beside it; a record of a
    newer version is no damage and stops the run untouched."""
    spec, out = _spec(tmp_path), tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    records = sorted((out / "records").glob("*.json"))
    good = {p.name: json.loads(p.read_text())["deterministic"] for p in records}
    truncated, foreign, binary = records[:3]
    truncated.write_text(truncated.read_text()[:200])
    foreign.write_bytes(records[3].read_bytes())   # another cell's record under this key
    binary.write_bytes(b"\xff\xfe\x00garbage")
    damaged = {p: p.read_bytes() for p in (truncated, foreign, binary)}
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "8 of 8 cells done (5 already)" in err, err
    assert err.count("its cell is computed again") == 3 and "holds the record of another cell" \
        in err and "not UTF-8" in err, err
    for path, data in damaged.items():
        assert path.with_name(path.name + ".damaged").read_bytes() == data
    assert {p.name: json.loads(p.read_text())["deterministic"]
            for p in sorted((out / "records").glob("*.json"))} == good
    assert main(["status", str(out)]) == 0
    # a newer record version is left alone: this nrto is too old to judge it
    newer = json.loads(records[0].read_text())
    newer["version"] += 1
    records[0].write_text(json.dumps(newer))
    before = records[0].read_bytes()
    capsys.readouterr()
    _one_line_usage_error(capsys, ["run", str(spec), "--out", str(out), "--no-progress"],
                          f"record version {newer['version']}")
    assert records[0].read_bytes() == before


def test_cells_that_cannot_fit_in_memory_are_refused_before_any_starts(tmp_path, capsys,
                                                                       monkeypatch):
    import studies.resources

    spec = _spec(tmp_path, problems=["mbb_beam_96x32_0.5"], models=["pixel"], seeds=[-1],
                 steps=[2], methods=[{"name": "OC", "optimizer": "oc"}], report_steps=[1])
    out = tmp_path / "out"
    monkeypatch.setattr(studies.resources, "available_memory", lambda: 10 ** 6)
    _one_line_usage_error(capsys, ["run", str(spec), "--out", str(out), "--no-progress"],
                          "mbb_beam_96x32_0.5/pixel/p3/OC/seed-1 needs about")
    tuned = _spec(tmp_path, "tuned.json", problems=["mbb_beam_96x32_0.5"], models=["pixel"],
                  seeds=[0], steps=[2], methods=[{"name": "GD", "optimizer": "gd"}],
                  tune={"methods": ["GD"], "seeds": [0, 1], "trials": 2})
    for command in ("run", "tune"):   # the trials are checked before the first starts
        _one_line_usage_error(capsys, [command, str(tuned), "--out", str(tmp_path / "t"),
                                       "--jobs", "2"],
                              "2 runs at once (workers: 2) need about")
    assert not (out / "records").exists() and not (tmp_path / "t" / "tune").exists()
    # a refused run leaves no folder that a later run would take for a foreign one
    assert main(["run", str(spec), "--out", str(out), "--no-progress",
                 "--ignore-memory-check"]) == 0
    assert "1 of 1 cells done (0 already)" in capsys.readouterr().err


def test_report_draws_labels_verbatim_not_as_mathtext(tmp_path):
    """Problem and method labels are free text: ``$\\foo{$`` once aborted the report's figures
    (matplotlib parsed it as mathtext) after the whole study had run."""
    spec = _spec(tmp_path, problems=[{"name": "toy/quadratic", "size": 3,
                                      "label": "$\\foo{$ a|b"}],
                 seeds=[0], steps=[3], report_steps=[],
                 methods=[{"name": "M$\\bar{$", "optimizer": "lbfgs"}])
    out = tmp_path / "study"
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    assert main(["report", str(out)]) == 0
    curves, designs = sorted(p.name for p in (out / "figures").iterdir())
    assert (curves, designs) == ("curves-__foo___a_b-pixel-p3.png", "designs.png")
    # ... and a '|' in a label does not split the report's table rows
    rows = [line for line in (out / "REPORT.md").read_text().splitlines() if "a\\|b" in line]
    assert rows and all(line.count(" | ") == rows[0].count(" | ") for line in rows)


def test_a_report_that_finds_the_disk_full_keeps_the_old_files_whole(tmp_path, capsys,
                                                                      monkeypatch):
    """Figures, tables and REPORT.md are written atomically: one that finds no room is one
    line naming it, and leaves the previous version (no half file, no temporary)."""
    import errno
    import os

    from matplotlib.figure import Figure

    spec = _spec(tmp_path, seeds=[0], steps=[3], report_steps=[])
    out = tmp_path / "study"
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    assert main(["report", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and "records" not in
              p.parts and p.suffix in (".png", ".csv", ".md")}
    capsys.readouterr()

    def full(self, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half a png")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Figure, "savefig", full)
    code = nrto(["study", "report", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("nrto study report: error: cannot write") and \
        ".png: No space left on device" in err, err
    assert {p: p.read_bytes() for p in before} == before
    assert not [p for p in out.rglob(".*tmp*")]


def test_figure_names_of_labels_are_distinct_and_short():
    from studies.study.report import _file_names

    labels = ("A", "mbb_beam_96x32_0.5", "toy/quadratic", "a|b", "a_b", "a b", "é", ".", "..",
              "", "x" * 10_000, "x" * 9_999)
    names = _file_names(labels)
    assert names["A"] == "A" and names["mbb_beam_96x32_0.5"] == "mbb_beam_96x32_0.5"
    assert names["toy/quadratic"] == "toy_quadratic"     # unambiguous: no hash
    assert len(set(names.values())) == len(labels)
    assert all(len(name) < 80 and not name.startswith(".") and "/" not in name
               for name in names.values())


def test_export_makes_study_runs_readable_by_every_nrto_command(tmp_path, capsys):
    """A study's run files are not results files; `nrto study export` copies them into one whose
    configs rebuild the very objective each cell ran (the loss at the stored final iterate is
    the recorded one), and `nrto inspect` on a run file says so instead of a bare refusal."""
    import numpy as np

    from studies.runner import build_objective
    from studies.store import ResultsFile

    spec = _spec(tmp_path, problems=["mbb_beam_96x32_0.5"], models=["pixel"], seeds=[-1],
                 steps=[4], report_steps=[2], penalties=[1.0, 3.0],
                 methods=[{"name": "OC", "optimizer": "oc"},
                          {"name": "LBFGS", "optimizer": "lbfgs", "options": {"memory": 3}}])
    out = tmp_path / "study"
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    run_files = sorted((out / "runs").glob("*.h5"))
    assert len(run_files) == 4
    capsys.readouterr()
    assert nrto(["inspect", str(run_files[0])]) == 2
    assert "is a study's run file" in capsys.readouterr().err
    results = tmp_path / "exported.h5"
    assert main(["export", *map(str, run_files), "--out", str(results)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and all(" -> " in line and "run-000" in line for line in printed)
    stored = ResultsFile(results)
    assert len(stored.run_ids()) == 4
    seen = set()
    for run_id in stored.run_ids():
        run = stored.read(run_id)
        config, result = run.config, run.result
        assert not run.partial and run.label == config.label
        seen.add((config.penal, config.optimizer, dict(config.options).get("memory")))
        loss = build_objective(config).value(np.asarray(result.x))
        assert loss == pytest.approx(result.loss_per_iterate[-1], rel=1e-9), (config, loss)
    assert seen == {(1.0, "oc", None), (3.0, "oc", None), (1.0, "lbfgs", 3), (3.0, "lbfgs", 3)}
    assert nrto(["inspect", str(results)]) == 0
    # refused before anything is written: a results file, a missing file, a toy run
    toy = tmp_path / "toy"
    assert main(["run", str(_spec(tmp_path, "toy.json", seeds=[0], steps=[3],
                                  methods=[{"name": "LBFGS", "optimizer": "lbfgs"}],
                                  problems=["toy/rosenbrock"])),
                 "--out", str(toy), "--no-progress"]) == 0
    capsys.readouterr()
    fresh = tmp_path / "fresh.h5"
    for bad, fragment in ((results, "already a results file"),
                          (tmp_path / "none.h5", "no such run file"),
                          (next((toy / "runs").glob("*.h5")), "toy problem")):
        _one_line_usage_error(capsys, ["export", str(run_files[0]), str(bad), "--out",
                                       str(fresh)], fragment)
    assert not fresh.exists()
    # nor over a run file, whatever it is called
    err = _one_line_usage_error(capsys, ["export", str(run_files[0]), "--out",
                                         str(run_files[1])], "is a study's run file")
    assert err.startswith("nrto study export: error: ")


def test_an_exported_checkpoint_resumes_as_the_study_would_have(tmp_path, monkeypatch, capsys):
    """The checkpoint of an interrupted cell exports as a partial run; `nrto resume` continues
    it to the very run the study gives when it continues the cell itself."""
    import solvers
    from studies.store import ResultsFile

    real = solvers.optimize

    def interrupted(objective, method, *, callback=None, **options):
        def stop(info):
            if callback is not None:
                callback(info)
            if info.iteration >= 12:
                raise KeyboardInterrupt
        return real(objective, method, callback=stop, **options)

    spec = _spec(tmp_path, problems=["mbb_beam_96x32_0.5"], models=["pixel"], seeds=[-1],
                 steps=[60], checkpoint_every=5,
                 methods=[{"name": "LBFGS", "optimizer": "lbfgs"}])
    out = tmp_path / "study"
    monkeypatch.setattr(solvers, "optimize", interrupted)
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 130
    monkeypatch.setattr(solvers, "optimize", real)
    run_file = next((out / "runs").glob("*.h5"))
    exported = tmp_path / "exported.h5"
    assert main(["export", str(run_file), "--out", str(exported)]) == 0
    assert ResultsFile(exported).read(0).partial
    assert nrto(["resume", str(exported), "--no-progress"]) == 0
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0   # the study's way
    finished = tmp_path / "finished.h5"
    assert main(["export", str(run_file), "--out", str(finished)]) == 0
    mine, theirs = ResultsFile(exported).read(0), ResultsFile(finished).read(0)
    assert not mine.partial and mine.result.iterations > 12
    assert mine.result.evaluations == theirs.result.evaluations
    assert (mine.result.loss_per_evaluation == theirs.result.loss_per_evaluation).all()
    assert (mine.result.x == theirs.result.x).all()
