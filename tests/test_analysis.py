"""Landscape analyses of stored runs (studies.analysis, the nrto analysis commands, the store's
analysis groups, the quickstart).

Independent answers: a dense Hessian built column by column from Hessian-vector products (its
eigenvalues, its trace and the Hutchinson variance that bounds an SLQ trace estimate); the L-BFGS
matrix rebuilt by the recursive BFGS update from the stored pairs; the losses and gradient norms
the optimizer recorded; distances, PCA variances and projections recomputed with numpy.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re

import h5py
import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator

import landscape
from solvers.result import RecordOptions
from studies import analysis
from studies.cli import main
from studies.runner import RunTask, build_objective, execute, problem_fields
from studies.store import ResultsFile, RunConfig, StoreError, write_analysis, write_run

PIXEL = RunConfig(model="pixel", optimizer="lbfgs", steps=15, seed=0,
                  record=RecordOptions(iterates_every=1),
                  **problem_fields("mbb_beam", (16, 8), 0.5))
SPARSE = dataclasses.replace(PIXEL, record=RecordOptions(iterates_at=(3,), pairs_until=3))
CNN = dataclasses.replace(
    PIXEL, model="cnn", steps=8, record=RecordOptions(iterates_every=2),
    model_options={"latent_size": 4, "dense_channels": 4, "resizes": [2, 2],
                   "conv_filters": [4, 1]})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One results file: a pixel run with every iterate, the same run storing only iterate 3
    (and the last) with pairs up to 3, and a tiny CNN run storing every 2nd iterate."""
    path = tmp_path_factory.mktemp("analysis") / "tiny.h5"
    ids = {name: execute(RunTask(config, path), progress=False).run_id
           for name, config in (("pixel", PIXEL), ("sparse", SPARSE), ("cnn", CNN))}
    return path, ids


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _dense_hessian(objective, theta) -> np.ndarray:
    """Column j = hvp(theta, e_j), symmetrized (the exact Hessian to rounding)."""
    columns = [objective.hvp(theta, e) for e in np.eye(objective.size)]
    dense = np.column_stack(columns)
    return 0.5 * (dense + dense.T)


def _assert_png(path) -> None:
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


COMMANDS = {
    "pixel": [
        (["spectrum", "--runs", 2, "--steps", 10], "spectrum/hessian_k{last}_r2_m10_s0"),
        (["spectrum", "--operator", "lbfgs", "--at", 5], "spectrum/lbfgs_k5_r3_m50_s0_mem10"),
        (["surface", "--grid", 5], "surface/filter_k{last}_g5_eauto_s0"),
        (["surface", "--grid", 4, "--directions", "pca", "--at", 7], "surface/pca_k7_g4_eauto"),
        (["surface", "--grid", 3, "--directions", "hessian"],
         "surface/hessian_k{last}_g3_eauto_s0"),
        (["interpolate", "--points", 7, "--from", 2], "interpolation/k2_k{last}_p7"),
        (["trajectory"], "trajectory/metrics_pca-mean-1"),
    ],
    "cnn": [
        (["spectrum", "--runs", 2, "--steps", 6, "--at", "init"], "spectrum/hessian_k0_r2_m6_s0"),
        (["spectrum", "--operator", "lbfgs", "--at", "final"],
         "spectrum/lbfgs_k{last}_r3_m50_s0_mem10"),
        (["surface", "--grid", 3], "surface/filter_k{last}_g3_eauto_s0"),
        (["interpolate", "--points", 5], "interpolation/k0_k{last}_p5"),
        (["trajectory"], "trajectory/metrics_pca-mean-1"),
    ],
}


@pytest.fixture(scope="module")
def analysed(runs):
    """Every command of COMMANDS run once on its run: ``{model: [(name, code, out, err)]}``."""
    path, ids = runs
    done = {}
    for model, commands in COMMANDS.items():
        last = ResultsFile(path).read(ids[model]).result.iterations
        done[model] = []
        for argv, name in commands:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([str(a) for a in (argv[0], path, "--run", ids[model], *argv[1:],
                                              "--no-progress")])
            done[model].append((name.format(last=last), code, out.getvalue(), err.getvalue()))
    return done


@pytest.mark.parametrize("model", ["pixel", "cnn"])
def test_each_command_stores_its_group_and_draws_a_png(runs, analysed, model):
    path, ids = runs
    run_id = ids[model]
    for name, code, out, err in analysed[model]:
        assert code == 0, err
        assert out.startswith(f"{run_id} {name}:"), out
        _assert_png(analysis.figure_path(path, run_id, name))
        with h5py.File(path, "r") as handle:
            group = handle[f"runs/{run_id}/analysis/{name}"]
            assert json.loads(group.attrs["settings"])  # the settings are stored
            for dataset in group.values():
                axes = list(dataset.attrs["axes"])
                assert len(axes) == dataset.ndim and [d.label for d in dataset.dims] == axes
    names = [stored.name for stored in ResultsFile(path).analyses(run_id)]
    assert sorted(name for name, *_ in analysed[model]) == names


def test_hessian_spectrum_against_the_dense_hessian(runs, analysed, tmp_path, capsys):
    path, ids = runs
    run = ResultsFile(path).read(ids["pixel"])
    objective = build_objective(run.config)
    hessian = _dense_hessian(objective, run.result.x)
    n = objective.size
    eigenvalues = np.linalg.eigvalsh(hessian)
    out = tmp_path / "spectrum.png"
    # m = n Lanczos steps with full reorthogonalization: the extreme Ritz values are eigenvalues
    code, _, err = _cli(capsys, "spectrum", path, "--run", ids["pixel"], "--runs", 2,
                        "--steps", n, "--out", out, "--no-progress")
    assert code == 0, err
    _assert_png(out)
    name = f"spectrum/hessian_k{run.result.iterations}_r2_m{n}_s0"
    stored = ResultsFile(path).read_analysis(ids["pixel"], name)
    assert stored.arrays["nodes"].shape[0] == 2 and stored.settings["dimension"] == n
    low, high = analysis.load_analysis(path, ids["pixel"], name).extremes
    scale = np.max(np.abs(eigenvalues))
    assert abs(low - eigenvalues[0]) <= 1e-8 * scale
    assert abs(high - eigenvalues[-1]) <= 1e-8 * scale
    # many short runs: the trace estimate is Hutchinson's, within 4 of its standard deviations
    runs_count = 60
    record = analysis.spectrum(path, ids["pixel"], runs=runs_count, steps=3)
    off_diagonal = np.sum(hessian ** 2) - np.sum(np.diag(hessian) ** 2)
    deviation = np.sqrt(2 * off_diagonal / runs_count)
    assert 4 * deviation < 0.5 * abs(np.trace(hessian))  # the check can tell a wrong trace
    assert abs(record.trace - np.trace(hessian)) <= 4 * deviation
    # the cheaper rerun is stored beside the m = n spectrum, which is untouched
    assert record.name == f"spectrum/hessian_k{run.result.iterations}_r{runs_count}_m3_s0"
    assert ResultsFile(path).read_analysis(ids["pixel"], name).arrays["nodes"].shape == (2, n)
    assert ResultsFile(path).read_analysis(ids["pixel"], record.name).arrays["nodes"].shape \
        == (runs_count, 3)


def _recursive_bfgs(s_pairs, y_pairs) -> np.ndarray:
    """B from theta I by the BFGS update with each pair in order (Nocedal & Wright eq. 6.19)."""
    theta = y_pairs[-1] @ y_pairs[-1] / (s_pairs[-1] @ y_pairs[-1])
    b = theta * np.eye(s_pairs.shape[1])
    for s, y in zip(s_pairs, y_pairs):
        bs = b @ s
        b = b - np.outer(bs, bs) / (s @ bs) + np.outer(y, y) / (y @ s)
    return b


def test_lbfgs_spectrum_equals_the_matrix_rebuilt_from_the_stored_pairs(runs, capsys):
    path, ids = runs
    result = ResultsFile(path).read(ids["pixel"]).result
    k, memory = 9, 4
    code, _, err = _cli(capsys, "spectrum", path, "--run", ids["pixel"], "--operator", "lbfgs",
                        "--at", k, "--memory", memory, "--steps", 128, "--no-progress")
    assert code == 0, err
    kept = np.flatnonzero(result.pair_iterations <= k)[-memory:]
    dense = _recursive_bfgs(result.s_pairs[kept], result.y_pairs[kept])
    eigenvalues = np.linalg.eigvalsh(dense)
    record = analysis.load_analysis(path, ids["pixel"],
                                    f"spectrum/lbfgs_k{k}_r3_m128_s0_mem{memory}")
    assert record.settings["pairs"] == memory and record.settings["memory"] == memory
    # B = theta I + rank 2m: Lanczos stops on an invariant subspace after <= 2m + 1 steps, and
    # every node is an eigenvalue of B
    assert record.spectrum.steps_per_run.max() <= 2 * memory + 1
    nodes = record.spectrum.nodes[record.spectrum.weights > 0]
    scale = np.max(np.abs(eigenvalues))
    assert np.min(np.abs(nodes[:, None] - eigenvalues[None, :]), axis=1).max() <= 1e-8 * scale
    low, high = record.extremes
    assert abs(low - eigenvalues[0]) <= 1e-8 * scale and abs(high - eigenvalues[-1]) <= 1e-8 * scale
    # first moment of each run: v^T B v of its unit start vector, so the trace estimate of B is
    # within Hutchinson's error of the exact trace (B is theta I plus a low-rank part)
    assert np.isclose(record.trace, np.trace(dense), rtol=0.2)


def test_interpolation_surface_and_trajectory_values(runs, analysed):
    path, ids = runs
    for model, rtol in (("pixel", 1e-10), ("cnn", 1e-5)):
        run = ResultsFile(path).read(ids[model])
        losses = run.result.loss_per_iterate
        last = run.result.iterations
        line = analysis.load_analysis(path, ids[model], f"interpolation/k"
                                      f"{2 if model == 'pixel' else 0}_k{last}"
                                      f"_p{7 if model == 'pixel' else 5}")
        start = line.start_iterate
        np.testing.assert_allclose(line.interpolation.losses[[0, -1]], losses[[start, last]],
                                   rtol=rtol)
        np.testing.assert_allclose(line.recorded_losses, losses[[start, last]])
        # the centre of the filter surface is the final point; the grid is recomputable
        plane = analysis.load_analysis(path, ids[model], f"surface/filter_k{last}_g"
                                       f"{5 if model == 'pixel' else 3}_eauto_s0")
        grid = plane.surface.losses
        assert np.isclose(grid[grid.shape[0] // 2, grid.shape[1] // 2], losses[last], rtol=rtol)
        objective = build_objective(run.config)
        rng = np.random.default_rng(plane.settings["seed"])
        d1, d2 = (landscape.filter_normalized_direction(objective, run.result.x, rng)
                  for _ in range(2))
        corner = objective.value(run.result.x + plane.surface.coords1[0] * d1
                                 + plane.surface.coords2[-1] * d2)
        assert np.isclose(grid[0, -1], corner, rtol=1e-10)
        # projected trajectory: every stored iterate and the final point, least squares in numpy
        points = np.vstack([run.result.iterates, run.result.x]) \
            if run.result.iterate_indices[-1] != last else run.result.iterates
        basis = np.column_stack([d1, d2])
        coords, *_ = np.linalg.lstsq(basis, (points - run.result.x).T, rcond=None)
        np.testing.assert_allclose(plane.projection.coords, coords.T, atol=1e-8)
        residual = points - run.result.x - coords.T @ basis.T
        np.testing.assert_allclose(plane.projection.distances, np.linalg.norm(residual, axis=1),
                                   rtol=1e-6, atol=1e-8)
        # trajectory metrics against numpy and the optimizer's own records
        path_metrics = analysis.load_analysis(path, ids[model], "trajectory/metrics_pca-mean-1")
        indices = run.result.iterate_indices
        np.testing.assert_array_equal(path_metrics.iterate_indices, indices)
        np.testing.assert_allclose(path_metrics.metrics.distance_from_start,
                                   np.linalg.norm(run.result.iterates - run.result.iterates[0],
                                                  axis=1))
        np.testing.assert_allclose(path_metrics.metrics.gradient_norm,
                                   run.result.grad_norm_per_iterate[indices], rtol=1e-12)
    # PCA plane of the pixel run: explained variance from numpy's SVD of the centred iterates
    run = ResultsFile(path).read(ids["pixel"])
    pca = analysis.load_analysis(path, ids["pixel"], "surface/pca_k7_g4_eauto")
    data = run.result.iterates[:-1] - run.result.iterates[-1]
    singular = np.linalg.svd(data - data.mean(axis=0), compute_uv=False)
    np.testing.assert_allclose(pca.direction_info["explained_variance_ratio"],
                               singular[:2] ** 2 / np.sum(singular ** 2), rtol=1e-8)


def test_what_was_not_stored_is_a_one_line_usage_error(runs, capsys):
    path, ids = runs
    before = path.stat().st_mtime_ns, ResultsFile(path).analyses(ids["sparse"])
    for argv, words in (
            (["spectrum", "--at", 2], ["did not store iterate 2", "stored iterates: 3,",
                                       "--iterates-every"]),
            (["surface", "--at", 5], ["did not store iterate 5"]),
            (["surface", "--directions", "pca"], ["PCA directions need at least 3"]),
            (["spectrum", "--operator", "lbfgs", "--at", "final"], ["pairs only up to iterate 3",
                                                                   "--pairs-until"]),
            (["interpolate", "--from", 99], ["there is no iterate 99"]),
            (["spectrum", "--at", "middle"], ["expected 'init', 'final' or an iterate"]),
            # settings whose arrays cannot fit: one line before any allocation, not a traceback
            (["spectrum", "--runs", 10 ** 11, "--steps", 5], [
                "SLQ with 100000000000 runs of 5 steps on", "TiB of memory, more than the",
                "use fewer --runs or --steps"]),
            (["surface", "--grid", 10 ** 6], ["a 1000000x1000000 surface needs about 29.1 TiB",
                                              "use a smaller --grid"]),
            (["interpolate", "--points", 10 ** 13], ["interpolating at 10000000000000 points",
                                                     "use fewer --points"])):
        code, out, err = _cli(capsys, argv[0], path, "--run", ids["sparse"], *argv[1:],
                              "--no-progress")
        assert code == 2 and out == "", (argv, err)
        assert err.count("\n") == 1 and err.startswith(f"nrto {argv[0]}: error:"), err
        assert all(word in err for word in words), (words, err)
    assert (path.stat().st_mtime_ns, ResultsFile(path).analyses(ids["sparse"])) == before
    # iterate 0 was not stored either, but it is rebuilt from the configuration (its loss is
    # checked against the recorded one), and the pairs up to 3 give the L-BFGS matrix there
    code, _, err = _cli(capsys, "interpolate", path, "--run", ids["sparse"], "--to", 3,
                        "--points", 3, "--no-progress")
    assert code == 0, err
    losses = ResultsFile(path).read(ids["sparse"]).result.loss_per_iterate
    line = analysis.load_analysis(path, ids["sparse"], "interpolation/k0_k3_p3")
    np.testing.assert_allclose(line.interpolation.losses[[0, -1]], losses[[0, 3]], rtol=1e-10)
    assert _cli(capsys, "spectrum", path, "--run", ids["sparse"], "--operator", "lbfgs", "--at",
                3, "--steps", 5, "--no-progress")[0] == 0


def test_a_curvature_that_is_not_finite_is_a_one_line_error(runs, capsys, monkeypatch):
    """A Hessian-vector product with NaN (as at a diverged iterate) names the run and the
    iterate on one line; nothing is stored."""
    path, ids = runs
    before = ResultsFile(path).analyses(ids["pixel"])

    def poisoned(objective, theta):
        return LinearOperator((theta.size, theta.size), matvec=lambda v: np.full(v.size, np.nan),
                              dtype=np.float64)

    monkeypatch.setattr(landscape, "HessianOperator", poisoned)
    code, out, err = _cli(capsys, "spectrum", path, "--run", ids["pixel"], "--at", 2,
                          "--steps", 5, "--no-progress")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"{ids['pixel']} at iterate 2:" in err and "is not finite" in err, err
    assert ResultsFile(path).analyses(ids["pixel"]) == before


def test_write_analysis_validates_replaces_and_is_dropped_with_its_run(tmp_path, make_config,
                                                                      make_result,
                                                                      assert_same_result):
    path = tmp_path / "runs.h5"
    run_id = write_run(path, make_config(), make_result(0))
    other = write_run(path, make_config(1), make_result(1))
    arrays, axes = {"values": np.arange(6.0).reshape(2, 3)}, {"values": ("row", "column")}
    with pytest.raises(ValueError, match="kind/key"):
        write_analysis(path, run_id, "spectrum", arrays, axes, {})
    with pytest.raises(ValueError, match="axes"):
        write_analysis(path, run_id, "spectrum/x", arrays, {"values": ("row",)}, {})
    with pytest.raises(StoreError, match="rewritten"):
        write_analysis(path, run_id, "spectrum/x", arrays, axes, {}, run_updated="long ago")
    for repeat in range(3):
        write_analysis(path, run_id, "spectrum/x", {"values": arrays["values"] + repeat}, axes,
                       {"repeat": repeat})
    size = path.stat().st_size
    write_analysis(path, run_id, "spectrum/x", arrays, axes, {"repeat": 3})
    assert path.stat().st_size < 1.1 * size
    store = ResultsFile(path)
    [summary] = store.analyses(run_id)
    assert summary.name == "spectrum/x" and summary.settings == {"repeat": 3}
    stored = store.read_analysis(run_id, "spectrum/x")
    np.testing.assert_array_equal(stored.arrays["values"], arrays["values"])
    assert stored.axes == {"values": ("row", "column")} and store.analyses(other) == []
    # the runs themselves are untouched by analysis writes
    assert_same_result(store.read(run_id).result, make_result(0))
    # a rewritten run (checkpoint, resume) loses its analyses: they may describe other iterates
    write_run(path, make_config(), make_result(0), run_id=run_id)
    assert store.analyses(run_id) == []


@pytest.mark.parametrize("damage, words", [
    (lambda g: g.create_dataset("labels", data=np.array([b"a", b"b"])), "dataset 'labels' "
     "holds values of type |S1, not numbers"),
    (lambda g: g.create_group("extra"), "'extra' is not a dataset"),
    (lambda g: g["values"].attrs.__setitem__("axes", ["row"]), "dataset 'values' does not "
     "name each of its 2 axes"),
    (lambda g: g.attrs.__setitem__("settings", "{"), "attribute 'settings' is not valid JSON"),
    (lambda g: g.attrs.__delitem__("created"), "attribute 'created' is missing")])
def test_a_damaged_analysis_is_one_line_not_odd_values(tmp_path, make_config, make_result,
                                                       damage, words):
    path = tmp_path / "runs.h5"
    run_id = write_run(path, make_config(), make_result(0))
    write_analysis(path, run_id, "spectrum/x", {"values": np.ones((2, 3))},
                   {"values": ("row", "column")}, {})
    with h5py.File(path, "r+") as handle:
        damage(handle[f"runs/{run_id}/analysis/spectrum/x"])
    with pytest.raises(StoreError, match=re.escape(f"{run_id} analysis spectrum/x is damaged: "
                                                   f"{words}")) as caught:
        ResultsFile(path).read_analysis(run_id, "spectrum/x")
    assert "\n" not in str(caught.value)


def test_quickstart_runs_end_to_end_on_a_tiny_setting(tmp_path, capsys):
    from studies import quickstart

    out = tmp_path / "results" / "quick.h5"
    code = quickstart.main(["--problem", "mbb_beam_16x8_0.5", "--steps", "6", "--grid", "3",
                            "--slq-runs", "2", "--slq-steps", "4", "--points", "5",
                            "--compare-at", "2", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    store = ResultsFile(out)
    rows = store.runs()
    assert [row.config.model for row in rows] == ["cnn", "pixel"]
    for row in rows:
        names = [a.name for a in store.analyses(row.run_id)]
        last = row.iterations
        expected = {"spectrum/hessian_k0_r2_m4_s0", f"spectrum/hessian_k{last}_r2_m4_s0",
                    "spectrum/hessian_k2_r2_m4_s0", "spectrum/lbfgs_k2_r2_m4_s0_mem10",
                    f"interpolation/k0_k{last}_p5", f"surface/filter_k{last}_g3_eauto_s0",
                    "trajectory/metrics_pca-mean-1"}
        assert set(names) == expected, names
        assert f"{row.best_loss:.4g}" in printed
    figures = sorted(p.name for p in (out.parent / "quick").glob("*.png"))
    assert len(figures) == 11 and "runs.png" in figures, figures
    assert "trace (SLQ)" in printed and str(out) in printed
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []
    # the CNN's iterates, gradients and pairs are dropped once analysed (issue 11, item 10): the
    # file holds one CNN vector (x) and small arrays, not the ~40 vectors recorded at full size
    cnn = store.read(rows[0].run_id)
    assert cnn.result.iterates is None and cnn.result.s_pairs is None
    assert out.stat().st_size < 2 * 8 * cnn.result.x.size
