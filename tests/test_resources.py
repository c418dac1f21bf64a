"""Memory estimated before a run starts, and runs that cannot fit refused (issue 11, item 5).

Independent answers: the nonzeros of CHOLMOD's own factor and of the assembled cone filter; the
peak resident memory of a real run measured by the kernel (``ru_maxrss``, slow test); the
calibration measured on this machine.
"""
from __future__ import annotations

import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from solvers.result import RecordOptions
from studies import resources
from studies.cli import main
from studies.store import RunConfig

REPO = Path(__file__).resolve().parents[1]
HUGE = ["optimize", "--problem", "mbb_beam", "--size", "5000x5000", "--volfrac", "0.5",
        "--model", "pixel", "--optimizer", "lbfgs", "--steps", "3"]
TINY = ["optimize", "--problem", "mbb_beam", "--size", "16x8", "--volfrac", "0.5", "--model",
        "pixel", "--optimizer", "lbfgs", "--steps", "3", "--no-progress"]


def _config(width: int, height: int, **changes) -> RunConfig:
    fields = dict(model="pixel", optimizer="lbfgs", steps=3, seed=0, record=RecordOptions(),
                  problem=f"mbb_beam_{width}x{height}_0.5", family="mbb_beam", width=width,
                  height=height, volume_fraction=0.5)
    return RunConfig(**{**fields, **changes})


def test_the_5000x5000_run_is_refused_at_once_with_numbers(tmp_path):
    out = tmp_path / "sz.h5"
    started = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", "studies.cli", *HUGE, "--out", str(out)],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    assert child.returncode == 2, child.stderr
    lines = [line for line in child.stderr.splitlines() if line.startswith("nrto optimize:")]
    assert len(lines) == 1, child.stderr
    message = lines[0]
    for words in ("5000x5000", "needs about", "GiB", "factor", "available (MemAvailable)",
                  "--ignore-memory-check"):
        assert words in message, (words, message)
    needed, available = (float(x) for x in re.findall(r"\(([0-9.]+e\+[0-9]+) bytes", message))
    assert needed > 1e11 and 0 < available < needed
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # refused before the mesh was built (building it alone takes ~10 s and ~1 GB here)
    assert seconds < 60 and peak < 2.5 * 2 ** 30, (seconds, peak)


def test_check_memory_counts_runs_alive_together():
    small = resources.estimate_run_memory(_config(64, 32))
    big = resources.estimate_run_memory(_config(512, 256))
    assert big.total > small.total > 700 * 2 ** 20
    resources.check_memory([small, big], jobs=1, available=big.total)          # one at a time
    with pytest.raises(resources.InsufficientMemoryError, match="2 runs at once"):
        resources.check_memory([small, big, small], jobs=2, available=big.total)
    with pytest.raises(resources.InsufficientMemoryError, match=r"needs about .* MiB"):
        resources.check_memory([big], available=big.total - 1)
    resources.check_memory([], available=0)


def test_a_refusal_names_what_would_shrink_the_largest_part():
    big = resources.estimate_run_memory(_config(512, 256))
    with pytest.raises(resources.InsufficientMemoryError, match="smaller --size") as refused:
        resources.check_memory([big], available=big.total - 1)
    assert "--steps" not in str(refused.value)
    # a tiny design whose recording is huge: a smaller --size would not help
    kept = resources.estimate_run_memory(_config(16, 8, steps=10 ** 9,
                                                 record=RecordOptions(iterates_every=1)))
    assert kept.largest(1)[0][0] == "recording"
    with pytest.raises(resources.InsufficientMemoryError, match="fewer --steps") as refused:
        resources.check_memory([kept], available=2 ** 30)
    assert "--iterates-every" in str(refused.value) and "--size" not in str(refused.value)
    with pytest.raises(resources.InsufficientMemoryError, match="use a smaller problem$"):
        resources.check_memory([kept], available=2 ** 30, advice="use a smaller problem")

def test_memory_estimate_grows_with_what_is_recorded_and_the_model():
    plain = resources.estimate_run_memory(_config(64, 32, steps=100))
    every = resources.estimate_run_memory(_config(64, 32, steps=100,
                                                  record=RecordOptions(iterates_every=1)))
    # 101 iterates and gradients of 2,048 float64, held twice (result and snapshot)
    grown = every.parts["recording"] - plain.parts["recording"]
    assert grown == pytest.approx(2 * 8 * 2 * 101 * 2048, rel=0.05)
    cnn = resources.estimate_run_memory(_config(32, 64, model="cnn"))
    # the paper's CNN on a 32x64 task has 567,553 parameters, 28 float64 vectors of them
    assert cnn.parts["model"] > 28 * 8 * 567_553
    parameters, _ = resources._cnn_sizes(32, 64, {})
    assert parameters == 567_553


def test_estimate_against_the_calibration_runs():
    for size, measured in resources.CALIBRATION.items():
        width, height = (int(v) for v in size.split("x"))
        estimate = resources.estimate_run_memory(_config(width, height)).total
        assert measured <= estimate <= 1.15 * measured, (size, estimate / measured)


def test_factor_nonzeros_against_cholmod():
    import cvxopt.cholmod

    from solvers.fem import StiffnessSystem
    from solvers.problems import build_problem

    for width, height in ((64, 32), (96, 96)):
        problem = build_problem("mbb_beam", width, height, 0.5)
        system = StiffnessSystem(height, width, problem.fixed_dofs)
        system.solve(np.ones(width * height), np.ones(system.num_free))
        factor = cvxopt.cholmod.getfactor(system.solver._symbolic)
        ratio = resources.factor_nonzeros(system.num_free) / len(factor.V)
        assert 0.9 < ratio < 1.1, ratio


@pytest.mark.parametrize("radius", [0.0, 1.0, 1.5, 2.0, 3.7, 40.0, 1e6])
def test_filter_nonzeros_bounds_the_filter(radius):
    from solvers.filters import cone_filter_matrix

    for width, height in ((12, 5), (7, 9)):
        actual = cone_filter_matrix(np.ones((height, width), dtype=bool), radius).nnz
        bound = resources.filter_nonzeros(width, height, radius)
        assert actual <= bound <= 4 * actual, (width, height, radius, actual, bound)


def test_run_many_and_the_cli_refuse_unless_told_to_ignore(tmp_path, monkeypatch, capsys):
    from studies.runner import RunTask, run_many

    monkeypatch.setattr(resources, "available_memory", lambda: 1000)
    out = tmp_path / "tiny.h5"
    with pytest.raises(resources.InsufficientMemoryError, match="1e\\+03 bytes"):
        run_many([RunTask(_config(16, 8), out)], progress=False)
    assert not out.exists()
    assert main([*TINY, "--out", str(out)]) == 2
    assert "--ignore-memory-check" in capsys.readouterr().err and not out.exists()
    assert main([*TINY, "--out", str(out), "--ignore-memory-check"]) == 0
    assert out.exists()


def test_available_memory_reads_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683664 kB\nMemAvailable:   23981576 kB\n")
    assert resources.available_memory(meminfo) == 23981576 * 1024
    meminfo.write_text("MemTotal:       24683664 kB\n")
    assert resources.available_memory(meminfo) is None
    assert resources.available_memory(tmp_path / "missing") is None
    assert resources.format_bytes(1.5 * 2 ** 30) == "1.5 GiB"


@pytest.mark.slow
def test_a_real_run_stays_below_its_estimate(tmp_path):
    """Peak RSS of a 256x128 pixel run in a fresh process, against the estimate (~20 s)."""
    script = ("import resource, sys\n"
              "from studies.cli import main\n"
              "code = main(sys.argv[1:])\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)\n"
              "sys.exit(code)\n")
    argv = [*TINY[:4], "256x128", *TINY[5:], "--out", str(tmp_path / "r.h5")]
    child = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                           text=True, cwd=REPO, timeout=600)
    assert child.returncode == 0, child.stderr
    peak = int(child.stdout.split()[-1])
    estimate = resources.estimate_run_memory(_config(256, 128)).total
    assert peak <= estimate <= 1.3 * peak, (peak, estimate)
