"""The analysis protocol (one registry entry per kind; keys that encode the settings) and figures
that do not mislead (issue 8 "First", issue 11 item 11).

Independent answers: stored arrays compared with the computed record; path length and net
displacement recomputed with numpy from the stored iterates; the density's support and
normalization by quadrature on a fine grid; tick labels' rendered boxes from matplotlib.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import landscape
from solvers.result import RecordOptions
from studies import analysis
from studies import landscape_plots as plots
from studies.runner import RunTask, execute, problem_fields
from studies.store import ResultsFile, RunConfig

PIXEL = RunConfig(model="pixel", optimizer="lbfgs", steps=14, seed=0,
                  record=RecordOptions(iterates_every=1),
                  **problem_fields("mbb_beam", (16, 8), 0.5))
EVERY_THIRD = dataclasses.replace(PIXEL, record=RecordOptions(iterates_every=3))

CHEAP = {"spectrum": {"runs": 2, "steps": 5}, "surface": {"grid": 3},
         "interpolation": {"points": 4}, "trajectory": {}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("protocol") / "runs.h5"
    ids = {name: execute(RunTask(config, path), progress=False).run_id
           for name, config in (("every", PIXEL), ("third", EVERY_THIRD))}
    return path, ids


def test_every_kind_round_trips_through_the_store(runs, tmp_path):
    path, ids = runs
    analyzer = analysis.RunAnalyzer(path, ids["every"])
    assert set(analysis.ANALYSES) == set(CHEAP)
    for kind, options in CHEAP.items():
        record = analyzer.analyse(kind, **options)
        protocol = analysis.ANALYSES[kind]
        assert analysis.analysis_for(record) is protocol
        assert analysis.analysis_for_command(protocol.command) is protocol
        assert record.name == f"{kind}/{protocol.key(record.settings)}"
        loaded = analysis.load_analysis(path, ids["every"], record.name)
        assert type(loaded) is type(record) and loaded.settings == record.settings
        written, _ = protocol.to_arrays(record)
        read, _ = protocol.to_arrays(loaded)
        assert written.keys() == read.keys()
        for name in written:
            np.testing.assert_array_equal(read[name], written[name], err_msg=name)
        assert analysis.summary(loaded).startswith(f"{ids['every']} {record.name}:")
        figure = analysis.draw(loaded, tmp_path / f"{kind}.png")
        assert figure.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(analysis.AnalysisError, match="unknown analysis"):
        analyzer.analyse("histogram")
    with pytest.raises(TypeError, match="not an analysis record"):
        analysis.summary(object())


def test_other_settings_are_stored_beside_the_same_settings_replace(runs):
    path, ids = runs
    analyzer = analysis.RunAnalyzer(path, ids["third"])
    expensive = analyzer.spectrum(runs=3, steps=12, seed=1)
    cheap = analyzer.spectrum(runs=1, steps=2, seed=1)
    assert cheap.name != expensive.name
    again = analyzer.spectrum(runs=3, steps=12, seed=1)
    names = [a.name for a in ResultsFile(path).analyses(ids["third"])]
    assert names.count(expensive.name) == 1 and cheap.name in names
    stored = ResultsFile(path).read_analysis(ids["third"], expensive.name)
    np.testing.assert_array_equal(stored.arrays["nodes"], again.spectrum.nodes)
    assert stored.arrays["nodes"].shape == (3, 12)
    # every setting that changes a result changes its key
    for kind, base, changes in (
            ("spectrum", expensive.settings,
             [{"runs": 4}, {"steps": 11}, {"seed": 2}, {"iterate": 0}, {"operator": "lbfgs",
                                                                         "memory": 10}]),
            ("surface", {"directions": "filter", "iterate": 3, "grid": 5,
                         "requested_extent": None, "seed": 0, "zero_1d": True},
             [{"grid": 7}, {"requested_extent": 0.5}, {"requested_extent": 1e6}, {"seed": 1},
              {"zero_1d": False}, {"directions": "hessian"}, {"iterate": 4}]),
            ("interpolation", {"start_iterate": 0, "end_iterate": 5, "points": 11},
             [{"points": 12}, {"start_iterate": 1}, {"end_iterate": 4}]),
            ("trajectory", {"pca_center": "mean", "pca_every": 1},
             [{"pca_center": "final"}, {"pca_every": 5}, {"pca_every": 0}])):
        key = analysis.ANALYSES[kind].key
        keys = {key(base)} | {key({**base, **change}) for change in changes}
        assert len(keys) == len(changes) + 1, (kind, keys)
        assert all(all(c.isalnum() or c in "_.-" for c in k) for k in keys), keys


def test_trajectory_is_drawn_only_on_planes_that_hold_it(runs):
    path, ids = runs
    analyzer = analysis.RunAnalyzer(path, ids["every"])
    random_plane = analyzer.surface(directions="filter", grid=3, save=False)
    # a random plane misses almost all of the trajectory's displacement: not drawn
    assert random_plane.off_plane_fraction > 0.5
    assert analysis.surface_trajectory(random_plane) is None
    pca_plane = analyzer.surface(directions="pca", grid=3, save=False)
    np.testing.assert_array_equal(analysis.surface_trajectory(pca_plane),
                                  pca_plane.projection.coords)
    assert pca_plane.off_plane_fraction < random_plane.off_plane_fraction
    # a trajectory that does lie in a filter plane is drawn there
    flat = landscape.PlaneProjection(random_plane.projection.coords,
                                     np.zeros_like(random_plane.projection.distances),
                                     random_plane.projection.offsets)
    in_plane = dataclasses.replace(random_plane, projection=flat)
    assert analysis.surface_trajectory(in_plane) is not None
    # numbers of the fraction: distances and offsets recomputed with numpy
    run = analyzer.run
    points = run.result.iterates
    offsets = np.linalg.norm(points - run.result.x, axis=1)
    np.testing.assert_allclose(random_plane.projection.offsets, offsets, rtol=1e-12)
    assert random_plane.off_plane_fraction == pytest.approx(
        np.max(random_plane.projection.distances) / np.max(offsets))


def test_hessian_surface_has_the_same_extent_on_both_axes(runs):
    path, ids = runs
    plane = analysis.RunAnalyzer(path, ids["every"]).surface(directions="hessian", grid=3,
                                                             save=False)
    e1, e2 = plane.settings["extent"]
    assert e1 == e2 > 0
    reach = 1.1 * np.max(np.abs(plane.projection.coords))
    assert e1 == pytest.approx(reach)
    np.testing.assert_allclose(plane.surface.coords1, plane.surface.coords2)


def test_trajectory_reports_path_length_and_net_displacement(runs):
    path, ids = runs
    for name, spacing in (("every", "every iterate"), ("third", "every 3rd iterate")):
        # 14 evaluations: the "third" run stores 0, 3, 6, ... and its last iterate
        record = analysis.RunAnalyzer(path, ids[name]).trajectory(save=False)
        result = analysis.RunAnalyzer(path, ids[name]).run.result
        rows = result.iterates
        if result.iterate_indices[-1] != result.iterations:
            rows = np.vstack([rows, result.x])
        steps = np.linalg.norm(np.diff(rows, axis=0), axis=1)
        assert record.path_length == pytest.approx(steps.sum(), rel=1e-12)
        assert record.net_displacement == pytest.approx(np.linalg.norm(result.x - rows[0]),
                                                        rel=1e-12)
        assert record.path_length > record.net_displacement
        assert record.spacing.startswith(spacing)
        line = analysis.summary(record)
        assert f"net displacement |theta_final - theta_0| {record.net_displacement:.4g}" in line
        assert f"path length {record.path_length:.4g}" in line and spacing in line
        assert "distance travelled" not in line


def _spectrum(nodes, weights) -> landscape.Spectrum:
    nodes, weights = np.atleast_2d(nodes), np.atleast_2d(weights)
    return landscape.Spectrum(nodes=nodes, weights=weights / weights.sum(axis=1, keepdims=True),
                              dimension=100, steps_per_run=np.full(nodes.shape[0], nodes.shape[1]))


@pytest.mark.parametrize("nodes", [
    [[1e-3, 0.2, 0.21, 5.0, 80.0]],                        # positive definite: nothing below 1e-3
    [[-3.0, -1e-4, 2e-5, 0.7, 40.0], [-2.5, 0.0, 1e-3, 1.0, 39.0]],   # indefinite, two runs
    [[0.5]],                                                # one node
    [[1.0, 1.0, 1.0]],                                      # B = I: one distinct value
])
def test_spectrum_density_lives_on_the_ritz_support(nodes):
    nodes = np.asarray(nodes, dtype=float)
    spectrum = _spectrum(nodes, np.linspace(1.0, 2.0, nodes.size).reshape(nodes.shape))
    grid, threshold = plots.spectrum_grid([spectrum], points=20001)
    wide = np.unique(np.concatenate([grid, -np.geomspace(1e-9, 100, 200),
                                     np.geomspace(1e-9, 500, 200)]))
    density = plots.symlog_density(spectrum, wide, threshold)
    low, high = nodes.min(), nodes.max()
    if low == high:  # a support of no width: one uncut kernel, its peak at the node
        assert wide[np.argmax(density)] == pytest.approx(low, rel=1e-3)
        return
    assert np.all(density[(wide < low) | (wide > high)] == 0)
    if low < high:  # the density integrates to 1 over the coordinate u on [u(low), u(high)]
        u = np.linspace(*plots.symlog_coordinate(np.array([low, high]), threshold), 400001)
        x = np.sign(u) * threshold * (10.0 ** np.abs(u) - 1.0)       # the inverse of u(x)
        x[[0, -1]] = low, high
        mass = np.trapezoid(plots.symlog_density(spectrum, x, threshold), u)
        assert mass == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("axis, low, high, threshold, size", [
    ("x", -359.3, 774.7, 7.7e-4, (7, 4)),         # the pixel quickstart's spectrum at the start
    ("x", -5.98e-5, 0.02917, 2.9e-8, (7, 4)),      # ... and at the end
    ("x", 0.1154, 8.538, 8.5e-6, (7, 4)),          # an L-BFGS matrix: one side only
    ("y", -3e2, 1e-2, 3e-4, (5, 2.5)),             # gradient projected to final (a panel)
    ("y", -1e5, 0.6, 0.1, (5, 2.5)),               # star-convexity residual
])
def test_symlog_tick_labels_do_not_overlap(axis, low, high, threshold, size):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = Figure(figsize=size)
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    getattr(ax, f"set_{axis}scale")("symlog", linthresh=threshold)
    getattr(ax, f"set_{axis}lim")(low * 1.5, high * 1.5)
    plots._symlog_ticks(ax, low, high, threshold, axis=axis, most=9 if axis == "x" else 6)
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    boxes = [label.get_window_extent(renderer) for label in labels if label.get_text()]
    assert len(boxes) >= 3
    assert "0" in [label.get_text() for label in labels]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].padded(2).overlaps(boxes[j]), (labels[i].get_text(),
                                                               labels[j].get_text())
