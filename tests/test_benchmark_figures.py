"""The benchmark figures draw from the analysis' outputs (synthetic losses, small images)."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from studies.benchmark.analysis import METHODS, cdf, reduce_losses, summary
from studies.benchmark.figures import plot_cdf, plot_designs, plot_error_against_step

PROBLEMS = ["mbb_beam_96x32_0.5", "mbb_beam_192x64_0.4", "mbb_beam_384x128_0.3"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reduction():
    rng = np.random.default_rng(0)
    data = 1.0 + rng.random((3, 4, 3, 12)) * np.linspace(0.3, 0.0, 12)
    data[:, 0, 0] = np.nan  # no CNN run at seed -1
    losses = xr.DataArray(data, dims=("problem", "method", "seed", "step"),
                          coords={"problem": PROBLEMS, "method": list(METHODS),
                                  "seed": [-1, 0, 1], "step": np.arange(12)})
    return reduce_losses(losses)


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG_SIGNATURE


def test_cdf_figure(tmp_path, reduction):
    path = plot_cdf(cdf(reduction, step=10), summary(reduction, step=10), tmp_path / "cdf.png",
                    dpi=40)
    assert _is_png(path) and not list(tmp_path.glob(".*tmp*"))


def test_error_against_step(tmp_path, reduction):
    assert _is_png(plot_error_against_step(reduction, tmp_path / "e.png", sample="ensemble",
                                           max_step=10, dpi=40))
    with pytest.raises(ValueError, match="sample must be one of"):
        plot_error_against_step(reduction, tmp_path / "e.png", sample="median")


def test_design_grid(tmp_path):
    designs = {(PROBLEMS[0], "cnn-lbfgs"): np.eye(4), (PROBLEMS[0], "pixels-oc"): np.ones((4, 4)),
               (PROBLEMS[1], "pixels-oc"): np.zeros((2, 6))}
    assert _is_png(plot_designs(designs, tmp_path / "d.png", tasks=PROBLEMS[:2], dpi=40))
    with pytest.raises(ValueError, match="expected \\(height, width\\)"):
        plot_designs({(PROBLEMS[0], "cnn-lbfgs"): np.zeros((2, 2, 2))}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no designs"):
        plot_designs({}, tmp_path / "x.png")
