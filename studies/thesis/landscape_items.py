"""Builders of the landscape items (interpolations, spectra, distances, planes, B.1, B.2, steps).

Each builder returns ``(files, reading)`` like the table builders of :mod:`studies.thesis.items`,
computes once and caches under ``<out>/landscape/`` (``items._cache``), and reads the iterates
and pairs it needs from the studies' run files (``runs/<key>.h5``, kept because the specs ask for
them). The caches are committed with the records, since run files are not. A run file that is
missing (the run has not finished, or its folder came without run files) leaves the panel empty,
the reading says so, and nothing is cached until it exists.
"""
from __future__ import annotations

import numpy as np

from . import figures, specs
from .landscapes import eds, objective_of, slq_spectrum
from .protocol import code_of, parse_code

__all__ = ["build_b1", "build_b2", "build_distance", "build_interpolation", "build_spectra",
           "build_step_sizes", "build_surface"]


def _points(ctx, full: int, quick: int) -> int:
    return quick if ctx.quick else full


def _cell(ctx, key: str, code: str, method: str, seed: int = 0, *, run: bool = True):
    """The study's cell of ``code``/``method``/``seed`` (``run=False``: from the spec alone)."""
    from studies.study import expand

    model, penal, problem = parse_code(specs.quick_code(code, ctx.quick))
    cells = ctx.runs(key).cells if run else expand(ctx.study(key))
    for cell in cells:
        if (cell.model, cell.penal, cell.problem, cell.method, cell.seed) == (
                model, penal, problem, method, seed):
            return cell
    return None


def build_interpolation(ctx, item, codes, full: bool = False):
    import dataclasses

    from landscape.surfaces import interpolate

    from .items import _cache, _run_file

    alphas = np.linspace(0.0, 1.0, _points(ctx, 101, 5))
    segment = np.linspace(0.0, 1.0, _points(ctx, 11, 3))

    def compute():
        out = {"missing": 0}
        for code in dict.fromkeys(specs.quick_code(c, ctx.quick) for c in codes):
            cell = _cell(ctx, "interpolation", code, "LBFGS")
            run = _run_file(ctx, "interpolation", cell) if cell else None
            if run is None or run.result.iterates is None:
                out["missing"] += 1
                continue
            objective = objective_of(cell)
            target = run.best_x
            kept = list(np.asarray(run.result.iterate_indices))
            iterates = np.asarray(run.result.iterates)
            last = len(kept) - 1
            chosen = [i for i, k in enumerate(kept) if k in (0, 1, 2, 5, 10, 20, 50, 100)]
            if last - 1 > 0 and last - 1 not in chosen:
                chosen.append(last - 1)      # the last kept iterate before theta_T
            for i in chosen:
                line = interpolate(objective, iterates[i], target, alphas)
                out[f"{code}/b/{kept[i]}"] = line.losses
            if full:
                inits = []
                for seed in range(1, 6 if not ctx.quick else 3):
                    other = objective_of(dataclasses.replace(cell, seed=seed)).initial()
                    inits.append(other)
                    out[f"{code}/c/{seed}"] = interpolate(objective, other, target,
                                                          alphas).losses
                out[f"{code}/a/0-1"] = interpolate(objective, iterates[0], inits[0],
                                                   alphas).losses
                trail = [i for i, k in enumerate(kept) if k <= 10 or k in (20, 50, 100)]
                losses = []
                for a, b in zip(trail[:-1], trail[1:]):
                    losses.append(interpolate(objective, iterates[a], iterates[b],
                                              segment).losses)
                if losses:
                    out[f"{code}/d/path"] = np.concatenate(losses)
        return out

    data = _cache(ctx, item, compute)
    data.pop("cpu_s", None)
    data.pop("missing", None)
    panels, notes = [], []
    variants = ("a", "b", "c", "d") if full else ("b",)
    for code in dict.fromkeys(specs.quick_code(c, ctx.quick) for c in codes):
        for variant in variants:
            lines = {}
            for key, loss in data.items():
                parts = key.split("/")
                if parts[0] == code and parts[1] == variant:
                    x = np.linspace(0, max(1, len(loss) // segment.size), len(loss)) \
                        if variant == "d" else alphas
                    lines[f"{parts[2]}"] = (x, np.asarray(loss))
            panels.append((f"{code} ({variant})", lines))
            bumps = [k for k, (x, y) in lines.items() if variant in "bc"
                     and np.nanmax(y[1:-1], initial=-np.inf) > max(y[0], y[-1])]
            if lines and variant in "bc":
                notes.append(f"{code}({variant}): {len(bumps)} of {len(lines)} lines rise above "
                             f"both ends")
    path = figures.interpolation_panels(ctx.out / f"{item.name}.png", panels, title=item.title)
    return (path.name,), "; ".join(notes) if notes else "No run files with iterates yet."


def build_spectra(ctx, item, code: str):
    from landscape.operators import HessianOperator, LBFGSMatrix

    from .items import _cache, _run_file

    code = specs.quick_code(code, ctx.quick)
    at = (0, 2, 4) if ctx.quick else specs.SPECTRA_ITERATES

    def compute():
        cell = _cell(ctx, "spectra", code, "LBFGS_M1")
        run = _run_file(ctx, "spectra", cell) if cell else None
        if run is None or run.result.iterates is None:
            return {"missing": 1}
        out = {}
        objective = objective_of(cell)
        indices = list(np.asarray(run.result.iterate_indices))
        r = run.result
        for k in at:
            if k not in indices:
                continue
            theta = np.asarray(r.iterates)[indices.index(k)]
            h = slq_spectrum(HessianOperator(objective, theta), seed=0)
            out[f"H/{k}/grid"], out[f"H/{k}/density"] = eds(h)
            out[f"H/{k}/nodes"] = h.nodes
            if r.s_pairs is not None and len(r.s_pairs):
                b = LBFGSMatrix.at_iterate(r.s_pairs, r.y_pairs, r.pair_iterations, k, memory=1)
            else:
                b = LBFGSMatrix(np.zeros((0, objective.size)), np.zeros((0, objective.size)))
            bs = slq_spectrum(b.B, seed=0)
            out[f"B/{k}/grid"], out[f"B/{k}/density"] = eds(bs)
            out[f"B/{k}/nodes"] = bs.nodes
        return out

    data = _cache(ctx, item, compute)
    rows, notes = [], []
    for k in at:
        densities = {kind: (data[f"{kind}/{k}/grid"], data[f"{kind}/{k}/density"])
                     for kind in ("B", "H") if f"{kind}/{k}/grid" in data}
        rows.append((f"{code} iteration {k}", densities))
        if f"H/{k}/nodes" in data:
            h, b = data[f"H/{k}/nodes"], data[f"B/{k}/nodes"]
            notes.append(f"it {k}: H nodes [{h.min():.3g}, {h.max():.3g}], "
                         f"B nodes [{b.min():.3g}, {b.max():.3g}]")
    path = figures.spectra_panels(ctx.out / f"{item.name}.png", rows, title=item.title)
    return (path.name,), "; ".join(notes) if notes else "No run file with pairs yet."


def build_distance(ctx, item, penal: float):
    """Figs 3.9 / C.16: ``||theta_k - theta_0||`` at the kept iterates and ``||grad_k||``.

    The distances need the run files' iterates, so they are computed once and cached under
    ``landscape/`` (committed with the records, like the other landscape items); the gradient
    norms come from the compact records. Nothing is cached while a run file is missing.
    """
    from .curves import median_holding_last
    from .items import _cache, _group, _run_file

    problems = ctx.problems(("A", "D"))
    runs = ctx.runs("distance")

    def find(problem, method, seed):
        return _cell(ctx, "distance", code_of("cnn", penal, problem), method, seed)

    def compute():
        out, missing = {}, 0
        for problem in problems:
            for method in ("LBFGS", "GD"):
                for seed in _DISTANCE_SEEDS:
                    cell = find(problem, method, seed)
                    if cell is None:        # not a cell of this study (a --quick run's seeds)
                        continue
                    run = _run_file(ctx, "distance", cell)
                    if run is None or run.result.iterates is None:
                        missing += 1
                        continue
                    iterates = np.asarray(run.result.iterates)
                    key = f"{code_of('cnn', penal, problem)}/{method}/{seed}"
                    out[key + "/iterate"] = np.asarray(run.result.iterate_indices)
                    out[key + "/distance"] = np.linalg.norm(iterates - iterates[0], axis=1)
        out["missing"] = missing
        return out

    cached = _cache(ctx, item, compute)
    panels, notes = [], []
    for problem in problems:
        code = code_of("cnn", penal, problem)
        distances, norms = {}, {}
        for method in ("LBFGS", "GD"):
            keys = [f"{code}/{method}/{s}" for s in _DISTANCE_SEEDS]
            rows = [(cached[k + "/iterate"], cached[k + "/distance"]) for k in keys
                    if k + "/distance" in cached]
            if rows:
                distances[method] = median_holding_last(rows)
            grads = [record.grad_norm_per_iterate for seed in _DISTANCE_SEEDS
                     if (cell := find(problem, method, seed)) is not None
                     and (record := runs.records.get(cell.coordinates)) is not None]
            if grads:
                norms[method] = median_holding_last([(np.arange(g.size), g) for g in grads])
        overlay = {}
        if ctx.folder("chapter3").spec_path.exists():   # the 10-seed loss, when it has run
            overlay = {m: _group(ctx, "chapter3", problem, "cnn", penal, m)["median"]
                       for m in ("LBFGS", "GD")}
            overlay = {m: v for m, v in overlay.items() if np.isfinite(v).any()}
        panels.append((f"{code} distance", distances, overlay or None, "||theta - theta0||"))
        panels.append((f"{code} gradient norm", norms, overlay or None, "||grad||"))
        for method, (x, y) in distances.items():
            notes.append(f"{code} {method}: distance {y[-1]:.3g} at iterate {x[-1]}")
    path = figures.distance_panels(ctx.out / f"{item.name}.png", panels, title=item.title)
    if cached["missing"]:
        notes.append(f"{int(cached['missing'])} run files with iterates missing: their distances "
                     "are not drawn (rerun the distance study's cells to restore them)")
    return (path.name,), "; ".join(notes)


_DISTANCE_SEEDS = (0, 1, 2)


def build_surface(ctx, item, codes):
    from landscape.directions import filter_normalized_direction
    from landscape.surfaces import surface

    from .items import _cache

    grid = _points(ctx, 51, 5)
    codes = tuple(dict.fromkeys(specs.quick_code(c, ctx.quick) for c in codes))

    def compute():
        out = {}
        for code in codes:
            cell = _cell(ctx, "chapter3", code, "LBFGS", run=False)   # only its start
            if cell is None:
                continue
            objective = objective_of(cell)
            theta = objective.initial()
            d1 = filter_normalized_direction(objective, theta, 0)
            d2 = filter_normalized_direction(objective, theta, 1)
            result = surface(objective, theta, d1, d2, grid=grid)
            out[f"{code}/loss"] = np.asarray(result.losses)
            out[f"{code}/alphas"] = np.asarray(result.coords1)
            out[f"{code}/betas"] = np.asarray(result.coords2)
        return out

    data = _cache(ctx, item, compute)
    panels, notes = [], []
    for code in codes:
        if f"{code}/loss" not in data:
            continue
        loss = data[f"{code}/loss"]
        panels.append((code, data[f"{code}/alphas"], data[f"{code}/betas"], loss))
        center = loss[loss.shape[0] // 2, loss.shape[1] // 2]
        notes.append(f"{code}: loss at theta0 {center:.4g}, min on the plane "
                     f"{np.nanmin(loss):.4g}, max {np.nanmax(loss):.4g}")
    if not panels:
        panels = [(c, np.zeros(1), np.zeros(1), np.full((1, 1), np.nan)) for c in codes]
    path = figures.surface_panels(ctx.out / f"{item.name}.png", panels, title=item.title)
    return (path.name,), "; ".join(notes)


def _density_objective(ctx, problem: str, start: str):
    """The p = 1 physics on volume-constrained densities (the pixel model without the map)."""
    from studies.runner import build_objective
    from studies.store import RunConfig

    entry = specs.problems(ctx.quick, (problem,))[0]
    from studies.study.spec import ProblemEntry
    definition = ProblemEntry.parse(entry).definition
    options = {"start": "cnn", "start_upsampling": "transpose"} if start == "cnn" else {}
    config = RunConfig(**definition, model="pixel", optimizer="mma", steps=1, seed=0, penal=1.0,
                       model_options=options)
    return build_objective(config)


DENSE_LIMIT = 4096


def _extremes(op) -> tuple[float, float]:
    """``(lambda_min, lambda_max)``: exact (dense ``eigvalsh``) for ``n <= DENSE_LIMIT``,
    else the extreme Ritz values of 150 fully reorthogonalized Lanczos steps (the smallest is an
    upper bound of lambda_min: Ritz values lie inside the spectrum). ARPACK's ``which='SA'`` does
    not converge here: p = 1 leaves a large cluster of eigenvalues at 0."""
    from landscape.lanczos import lanczos
    from landscape.operators import dense_matrix

    if op.shape[0] <= DENSE_LIMIT:
        values = np.linalg.eigvalsh(dense_matrix(op, max_size=DENSE_LIMIT))
    else:
        values = np.linalg.eigvalsh(lanczos(op, 150, seed=0).tridiagonal())
    return float(values.min()), float(values.max())


def build_b1(ctx, item):
    from landscape.operators import HessianOperator

    from .items import _cache

    def compute():
        out = {}
        for problem in ctx.problems():
            for start in ("uniform", "cnn"):
                objective = _density_objective(ctx, problem, start)
                theta = objective.initial()
                op = HessianOperator(objective, theta)
                spectrum = slq_spectrum(op, seed=0)
                out[f"{problem}/{start}/grid"], out[f"{problem}/{start}/density"] = eds(spectrum)
                low, high = _extremes(op)
                out[f"{problem}/{start}/extremes"] = np.array([low, high])
        return out

    data = _cache(ctx, item, compute)
    rows, notes, summary = [], [], []
    for problem in ctx.problems():
        for start in ("uniform", "cnn"):
            key = f"{problem}/{start}"
            if f"{key}/grid" not in data:
                continue
            rows.append((f"{problem} ({start} design)",
                         {"H": (data[f"{key}/grid"], data[f"{key}/density"])}))
            low, high = data[f"{key}/extremes"]
            summary.append({"problem": problem, "design": start, "lambda_min": float(low),
                            "lambda_max": float(high), "relative_min": float(low / high)})
            notes.append(f"{problem} {start}: lambda_min/lambda_max = {low / high:.3g} "
                         f"(lambda_max {high:.3g})")
    import json

    from studies.study.records import atomic_write_bytes
    atomic_write_bytes(ctx.out / "fig-b.1.json", json.dumps(summary, indent=1).encode())
    path = figures.spectra_panels(ctx.out / f"{item.name}.png", rows, title=item.title,
                                  columns=(("H", "Hessian", "C0"),))
    return (path.name, "fig-b.1.json"), "; ".join(notes)


def _small_cnn_objective(ctx):
    """A small CNN on A (no offsets, 2-channel dense layer) with at most ~8.2k parameters."""
    from solvers import as_objective
    from solvers.models import CNNConfig, CNNModel
    from solvers.problems import build_problem

    width, height = (8, 16) if ctx.quick else (32, 64)
    problem = build_problem("michell_centered_both", width, height, 0.12)
    config = CNNConfig(latent_size=4 if ctx.quick else 16, dense_channels=2,
                       conv_filters=(8, 8, 8, 4, 1) if not ctx.quick else (2, 2, 2, 2, 1),
                       offset_scale=0.0, upsampling="transpose")
    return as_objective(CNNModel(problem, seed=0, config=config), penal=3.0)


def build_b2(ctx, item):
    from landscape.estimators import frobenius_norm
    from landscape.operators import HessianOperator, dense_matrix

    from .items import _cache

    def compute():
        out = {}
        pixel = _density_objective(ctx, "A", "cnn")
        for name, objective in (("cnn", _small_cnn_objective(ctx)), ("pixel", pixel)):
            theta = objective.initial()
            op = HessianOperator(objective, theta)
            exact = np.linalg.eigvalsh(dense_matrix(op))
            out[f"{name}/exact"] = exact
            for steps in (10, 50):
                spectrum = slq_spectrum(op, seed=0, steps=steps)
                out[f"{name}/o{steps}/grid"], out[f"{name}/o{steps}/density"] = eds(spectrum)
            estimates = [frobenius_norm(op, 50 if not ctx.quick else 5, seed).value
                         for seed in range(6)]
            out[f"{name}/frobenius"] = np.array(estimates)
            out[f"{name}/frobenius_exact"] = np.array([np.sqrt(np.sum(exact ** 2))])
        return out

    data = _cache(ctx, item, compute)
    rows, notes = [], []
    for name in ("cnn", "pixel"):
        if f"{name}/exact" not in data:
            continue
        exact = data[f"{name}/exact"]
        grid = data[f"{name}/o50/grid"]
        sigma = np.sqrt(1e-4 * max(1.0, grid[-1] - grid[0]))
        reference = np.exp(-0.5 * ((grid[:, None] - exact[None, :]) / sigma) ** 2).sum(axis=1)
        reference /= max(np.trapezoid(reference, grid), 1e-300)
        rows.append((f"{name} ({exact.size} parameters)",
                     {"o10": (data[f"{name}/o10/grid"], data[f"{name}/o10/density"]),
                      "o50": (grid, data[f"{name}/o50/density"]), "exact": (grid, reference)}))
        estimates = data[f"{name}/frobenius"]
        notes.append(f"{name}: Hutchinson ||H||_F {estimates.mean():.4g} +- "
                     f"{3 * estimates.std():.3g} (3 sigma, 6 seeds) vs exact "
                     f"{data[f'{name}/frobenius_exact'][0]:.4g}; exact eigenvalues "
                     f"[{exact.min():.3g}, {exact.max():.3g}]")
    path = figures.spectra_panels(ctx.out / f"{item.name}.png", rows, title=item.title,
                                  columns=(("o10", "SLQ k=3, o=10", "C2"),
                                           ("o50", "SLQ k=3, o=50", "C0"),
                                           ("exact", "exact eigenvalues", "k")))
    return (path.name,), "; ".join(notes)


def build_step_sizes(ctx, item):
    from studies.runner import build_objective
    from studies.store import RunConfig
    from studies.study.spec import ProblemEntry

    from .items import _cache, _write_csv
    from .stability import gd_probe, measure_stability

    definition = ProblemEntry.parse(specs.problems(ctx.quick, ("A",))[0]).definition
    steps = (2.5e-4, 1e-5, 1e-6, 1e-7, 1e-8) if not ctx.quick else (2.5e-4, 1e-6)
    probe_steps = 4 if ctx.quick else 30

    def objective(upsampling: str, offset_scale: float = 10.0):
        return build_objective(RunConfig(**definition, model="cnn", optimizer="gd", steps=1,
                                         seed=0, penal=3.0, model_options={
                                             "upsampling": upsampling,
                                             "offset_scale": offset_scale}))

    def compute():
        out = {"rows": []}
        for upsampling in ("transpose", "bilinear"):
            for offset_scale in (10.0, 1.0):
                report = measure_stability(objective(upsampling, offset_scale),
                                           lanczos_steps=4 if ctx.quick else 10)
                for group in (None, *report.groups):
                    out["rows"].append({
                        "variant": upsampling, "offset_scale": offset_scale,
                        "group": "all" if group is None else group.kind,
                        "size": sum(g.size for g in report.groups) if group is None
                        else group.size,
                        "grad_norm": report.grad_norm if group is None else group.grad_norm,
                        "top_eigenvalue": report.top_eigenvalue if group is None
                        else group.top_eigenvalue,
                        "stable_step": report.stable_step if group is None
                        else group.stable_step, "loss": report.loss})
            for step in steps:
                out[f"{upsampling}/{step:g}"] = gd_probe(objective(upsampling), step,
                                                         probe_steps)
        return out

    data = _cache(ctx, item, compute)
    rows = data["rows"]
    files = [_write_csv(ctx.out / "step-sizes.csv", ("variant", "offset_scale", "group", "size",
                                                      "grad_norm", "top_eigenvalue",
                                                      "stable_step", "loss"), rows)]
    probe_rows = []
    for upsampling in ("transpose", "bilinear"):
        for step in steps:
            losses = np.asarray(data[f"{upsampling}/{step:g}"])
            probe_rows.append({"variant": upsampling, "learning_rate": step,
                               "loss_0": losses[0], "loss_1": losses[1],
                               "loss_last": losses[-1],
                               "best": float(np.nanmin(losses))})
    files.append(_write_csv(ctx.out / "step-sizes-gd.csv", ("variant", "learning_rate", "loss_0",
                                                             "loss_1", "loss_last", "best"),
                            probe_rows))
    notes = [_step_size_reading(rows, probe_rows)]
    return tuple(str(f.relative_to(ctx.out)) for f in files), "; ".join(notes)



def _step_size_reading(rows, probe_rows) -> str:
    """The interpretation of the stability numbers, computed from them."""
    text = []
    for upsampling in ("transpose", "bilinear"):
        pick = {(r["offset_scale"], r["group"]): r for r in rows if r["variant"] == upsampling}
        whole, whole1 = pick.get((10.0, "all")), pick.get((1.0, "all"))
        if whole is None:
            continue
        top = max((r for (scale, g), r in pick.items() if scale == 10.0 and g != "all"),
                  key=lambda r: r["top_eigenvalue"])
        text.append(
            f"{upsampling}: start loss {whole['loss']:.4g}, |g| {whole['grad_norm']:.3g}, "
            f"lambda_max {whole['top_eigenvalue']:.3g}, so fixed-step GD is stable (quadratic "
            f"model) only below 2/lambda_max = {whole['stable_step']:.2g}: the published 2.5e-4 "
            f"is {2.5e-4 / whole['stable_step']:.3g} times larger; the largest block is "
            f"{top['group']} ({top['top_eigenvalue']:.3g}); offsets' factor 10 -> 1 changes "
            f"lambda_max by {100 * (1 - whole1['top_eigenvalue'] / whole['top_eigenvalue']):.0f} %"
            if whole1 else "")
    for upsampling in ("transpose", "bilinear"):
        probes = [r for r in probe_rows if r["variant"] == upsampling]
        if probes:
            text.append(f"{upsampling} GD: " + ", ".join(
                f"eta {r['learning_rate']:g} -> best {r['best']:.4g} (last {r['loss_last']:.3g})"
                for r in probes))
    return ". ".join(t for t in text if t) + "."
