"""TensorFlow only where a CNN is used, and no start-up noise on the stderr of nrto's processes.

Each check runs a fresh Python process (TensorFlow's start-up lines and thread pools are once per
process) with ``TF_CPP_MIN_LOG_LEVEL`` removed from its environment: the lines in question are
written before TensorFlow reads it.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# what TensorFlow prints at start-up on a machine without GPU (TensorFlow 2.21)
NOISE = re.compile(r"absl|oneDNN|cuInit|cuda|cpu_feature_guard|tensorflow", re.IGNORECASE)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


def test_nrto_problems_stderr_is_empty(tmp_path):
    done = _run(["-m", "studies.cli", "problems"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "michell_centered_both_32x64_0.12" in done.stdout
    assert done.stderr == ""


def test_pixel_optimize_never_imports_tensorflow(tmp_path):
    done = _run(["-m", "studies.cli", "optimize", "--problem", "mbb_beam", "--size", "16x8",
                 "--volfrac", "0.5", "--model", "pixel", "--optimizer", "lbfgs", "oc",
                 "--steps", "3", "--no-progress", "--out", "pixel.h5"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert not NOISE.search(done.stderr), done.stderr
    assert (tmp_path / "pixel.h5").is_file()
    # in-process: import solvers, build and differentiate pixel objectives, optimize
    code = ("import sys, solvers\n"
            "problem = solvers.build_problem('mbb_beam', 16, 8, 0.5)\n"
            "for constrained, method in ((True, 'lbfgs'), (False, 'oc'), (False, 'mma')):\n"
            "    objective = solvers.as_objective(solvers.PixelModel(problem, "
            "volume_constraint=constrained))\n"
            "    objective.value_and_grad(objective.initial())\n"
            "    objective.hvp(objective.initial(), objective.initial())\n"
            "    solvers.optimize(objective, method, steps=2)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras')))\n")
    done = _run(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_tensorflow_startup_lines_dropped_and_warnings_kept(tmp_path):
    code = ("import sys, warnings\n"
            "from studies.threads import configure_threads\n"
            "configure_threads(1)\n"
            "import tensorflow as tf\n"
            "tf.constant(1.0) + 1.0\n"
            "warnings.warn('a warning of our own')\n"
            "print('an error line of our own', file=sys.stderr)\n"
            "threading = tf.config.threading\n"
            "print(threading.get_intra_op_parallelism_threads(), "
            "threading.get_inter_op_parallelism_threads())\n")
    done = _run(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]
    assert "UserWarning: a warning of our own" in done.stderr
    assert "an error line of our own" in done.stderr
    lines = [line for line in done.stderr.splitlines() if NOISE.search(line)]
    assert lines == [], done.stderr
    # without the hook the same process prints the start-up lines (the test can fail)
    done = _run(["-c", "import tensorflow as tf\ntf.constant(1.0) + 1.0\n"], tmp_path)
    assert NOISE.search(done.stderr), "TensorFlow printed nothing: the check above proves nothing"


def test_configure_threads_is_idempotent_and_refuses_late_changes(tmp_path):
    code = ("import numpy, threadpoolctl  # numpy's OpenBLAS loaded first\n"
            "from studies.threads import configure_threads, configured_threads\n"
            "def blas():\n"
            "    return {i['num_threads'] for i in threadpoolctl.threadpool_info()}\n"
            "assert configure_threads(2) == 2 and configure_threads(2) == 2\n"
            "assert blas() == {1}, blas()  # the BLAS stays on one thread whatever n is\n"
            "import os; assert os.environ['TF_NUM_INTRAOP_THREADS'] == '2'\n"
            "assert configure_threads(1) == 1  # TensorFlow not imported yet: takes the new n\n"
            "import os; assert os.environ['OPENBLAS_NUM_THREADS'] == '1'\n"
            "assert blas() == {1}, blas()\n"
            "import tensorflow as tf\n"
            "tf.constant(1.0) + 1.0\n"
            "configure_threads(1)\n"
            "try:\n"
            "    configure_threads(2)\n"
            "except RuntimeError as error:\n"
            "    print(error)\n"
            "print(configured_threads())\n")
    done = _run(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "already built its thread pools" in done.stdout
    assert done.stdout.split()[-1] == "1"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_configure_threads_bad_input(bad):
    from studies.threads import configure_threads

    with pytest.raises(ValueError, match="positive integer"):
        configure_threads(bad)
