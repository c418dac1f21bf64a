"""write_outputs end to end on synthetic losses of the --quick cells."""
from __future__ import annotations

import numpy as np

from studies.benchmark.analysis import consolidate
from studies.benchmark.outputs import write_outputs
from studies.benchmark.spec import QUICK_TASKS, quick_cells


def test_write_outputs(tmp_path):
    cells = quick_cells()
    rng = np.random.default_rng(3)
    done = [cell for cell in cells if cell.problem != QUICK_TASKS[2]]  # one task not run yet
    curves = {(c.problem, c.method, c.seed): np.sort(1 + rng.random(21))[::-1] for c in done}
    elapsed = {key: 60.0 for key in curves}
    dataset = consolidate(curves, elapsed=elapsed)
    designs = {(c.problem, c.method): rng.random((8, 4)) for c in done}
    outputs = write_outputs(tmp_path, dataset, cells=cells, done=[c.label for c in done],
                            step=20, tasks=QUICK_TASKS, designs=designs, dpi=30)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(["typical-step20.csv", "best-of-ensemble-step20.csv", "seeds.csv",
                            "summary.csv", "cdf.png", "error-typical.png", "error-ensemble.png",
                            "designs.png", "REPORT.md"])
    typical = outputs.typical.read_text().splitlines()
    assert typical[0] == "problem_name,cnn-lbfgs,pixels-lbfgs,pixels-mma,pixels-oc"
    assert [line.split(",")[0] for line in typical[1:]] == list(QUICK_TASKS)
    assert typical[3] == f"{QUICK_TASKS[2]},,,,"
    # pixel typical = the constant-start run's last (smallest) value
    key = (QUICK_TASKS[0], "pixels-oc", -1)
    assert float(typical[1].split(",")[4]) == curves[key].min()
    report = outputs.report.read_text()
    assert "**14 of 21** run cells are done." in report
    assert "CPU-hours spent on the runs done: **0.23**." in report  # 14 runs x 60 s
    assert "![Final designs (the run behind each typical value)](designs.png)" in report
    assert "Projected for one seed of all 116 tasks: not yet" in report  # no large task ran


def test_a_full_disk_leaves_the_previous_report_whole(tmp_path, monkeypatch):
    import errno
    import os

    import pytest

    from studies.benchmark.report import _write_atomically
    from studies.outputs import NoSpaceError

    report = _write_atomically(tmp_path / "REPORT.md", "old report\n")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(NoSpaceError, match="REPORT.md"):
        _write_atomically(report, "new report\n" * 1000)
    assert report.read_text() == "old report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["REPORT.md"]   # no temporary file left
