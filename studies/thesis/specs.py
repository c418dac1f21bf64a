"""The thesis's runs as study-engine specs (:class:`studies.study.Study`), one function per group.

Items that share runs share a study, so no run is repeated (guide §5):

===================  =========================================================================
study                items
===================  =========================================================================
``chapter3``         Table 3.3, Table 3.2 (L-BFGS 300, GD 700), Figs 3.4, 3.6, 3.8, C.1-C.8
``gd2000``           Table 3.2 (GD 2000)
``interpolation``    Figs 3.5, C.13, C.14 (L-BFGS seed 0 of every NN code, iterates kept)
``distance``         Figs 3.9, C.16 (CNN A and D, L-BFGS and GD, seeds 0-2, iterates kept)
``spectra``          Figs 3.7, C.9-C.12 (L-BFGS_M1 seed 0, pairs and iterates 0, 10, 28 kept)
``tuning-B.1..3``    Tables B.1-B.3 (the hyperopt stage; ``...-published``: the published step
                     at the same budgets and seeds)
===================  =========================================================================

Every function takes ``quick``: toy sizes (8x16 and 16x16 grids), a few steps and one or two seeds,
so that all items together run in about a minute; otherwise the thesis's protocol. The default
CNN is the thesis's transposed-convolution variant (``upsampling="transpose"``, guide §1.5,
ambiguity 3); ``upsampling="bilinear"`` is the paper's. The CNN runs in float32 (ambiguity 25).
Pixel runs of seed s start from the output of the float32 ``CNNModel(seed=s)`` of the transposed
variant (§1.6, ambiguity 4).
"""
from __future__ import annotations

from collections.abc import Sequence

from studies.study import Study

from .protocol import (METHODS, METHODS_BY_NAME, PENALTIES, PROBLEMS, SEEDS, TABLE_METHOD,
                       TUNING_BUDGETS, code_of, parse_code, published_step)

__all__ = ["QUICK_STEPS", "chapter3", "distance", "gd2000", "interpolation", "p1_reference",
           "problems", "spectra", "study_names", "tuning"]

QUICK_SIZES = {"A": (8, 16), "B": (8, 16), "D": (16, 16), "E": (16, 16)}
QUICK_STEPS = {"GD": 6, "HD_M1": 6, "HD_M10": 6, "GD_LS": 8, "LBFGS_M1": 8, "LBFGS": 8}
QUICK_SEEDS = (0, 1)
QUICK_TRIALS = 2
QUICK_TUNING_CODES = ("P3A", "NN3A")   # B.2 and B.3 at toy scale (B.1 keeps its default rows)
QUICK_PROBLEMS = ("A", "D")   # one small and one large problem at toy size
QUICK_EXCLUDE = [{"model": "cnn", "seed": 1}]   # the CNN at one seed: its cells cost ~3 s each
INTERPOLATION_ITERATES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 50, 100)
SPECTRA_ITERATES = (0, 10, 28)          # ambiguity 22: L-BFGS iterations {0, 10, 28}
SPECTRA_CODES = {"fig-3.7": "NN3E", "fig-c.9": "NN3A", "fig-c.10": "NN1A",
                 "fig-c.11": "P3B", "fig-c.12": "P1B"}
CNN_TUNE_RANGE = (-9.0, 0.3)
"""log10 range of our own CNN step tuning: the thesis's [-6, 0.3] extended down, because the
start's curvature makes every step above ~1e-6 unstable for our CNNs (see the report)."""


def quick_code(code: str, quick: bool) -> str:
    """The code a quick run uses in place of ``code`` (B -> A and E -> D: quick has A and D)."""
    if not quick:
        return code
    return code[:-1] + {"B": "A", "E": "D"}.get(code[-1], code[-1])


def problems(quick: bool, codes: Sequence[str] = tuple(PROBLEMS)) -> list[dict]:
    """The engine's problem entries, labelled with the thesis's letters (quick: A and D only)."""
    out = []
    for code in codes:
        if quick and code not in QUICK_PROBLEMS:
            continue
        name = PROBLEMS[code]
        if quick:
            family, volume = name.rsplit("_", 2)[0], float(name.rsplit("_", 1)[1])
            out.append({"name": family, "size": list(QUICK_SIZES[code]),
                        "volume_fraction": volume, "label": code})
        else:
            out.append({"name": name, "label": code})
    return out


CNN_DTYPE = "float32"
"""The network's floating-point type in every run (guide ambiguity 25: Hoyer's precision, the CNN
in float32, pixels and physics in float64). The landscape items rebuild the network in float64 at
the stored parameters (:func:`studies.thesis.landscapes.objective_of`)."""


def _model_options(upsampling: str) -> dict:
    return {"cnn": {"upsampling": upsampling, "dtype": CNN_DTYPE},
            "pixel": {"start": "cnn", "start_upsampling": "transpose", "start_dtype": CNN_DTYPE}}


def _methods(names: Sequence[str], quick: bool, steps: dict | None = None) -> list[dict]:
    entries = []
    for name in names:
        method = METHODS_BY_NAME[name]
        budget = (steps or {}).get(name, QUICK_STEPS[name] if quick else method.steps)
        entry = {"name": name, "optimizer": method.optimizer, "options": dict(method.options),
                 "steps": [budget]}
        if name == "GD_LS":
            entry["curve"] = "iterate"       # ambiguity 6: GD_LS indexed by iteration
        entries.append(entry)
    return entries


def _step_overrides(names: Sequence[str], models: Sequence[str], penalties: Sequence[float],
                    codes: Sequence[str]) -> list[dict]:
    overrides = []
    for name in names:
        method = METHODS_BY_NAME[name]
        for model in models:
            for penal in penalties:
                for problem in codes:
                    step = published_step(method, model, penal, problem)
                    if step is not None:
                        overrides.append({"match": {"problem": problem, "model": model,
                                                    "penal": penal, "method": name},
                                          "options": {"learning_rate": step}})
    return overrides


def _tune_section(methods: Sequence[str], models: Sequence[str], penalties: Sequence[float],
                  codes: Sequence[str], quick: bool, cnn_range: tuple[float, float]) -> dict:
    overrides = []
    for name in methods:
        table = {v: k for k, v in TABLE_METHOD.items()}[name]
        for model in models:
            for penal in penalties:
                for problem in codes:
                    steps, seeds = TUNING_BUDGETS[table][code_of(model, penal, problem)]
                    if quick:
                        steps, seeds = QUICK_STEPS[name], 1
                    overrides.append({"match": {"problem": problem, "model": model,
                                                "penal": penal, "method": name},
                                      "steps": steps, "seeds": list(range(seeds))})
    return {"methods": list(methods), "trials": QUICK_TRIALS if quick else 30, "q": 0.1,
            "ranges": {"cnn": list(cnn_range), "pixel": [-3.0, 1.0]}, "random_state": 0,
            "overrides": overrides}


def chapter3(quick: bool = False, *, upsampling: str = "transpose", steps_source: str = "published",
             models: Sequence[str] = ("cnn", "pixel")) -> Study:
    """Table 3.3's grid: 2 models x 4 problems x p in {1, 3} x 6 optimizers x 10 seeds.

    Args:
        quick: toy scale.
        upsampling: the CNN variant (``"transpose"``: the thesis; ``"bilinear"``: the paper).
        steps_source: ``"published"`` (Tables B.1-B.3) or ``"tuned"`` (the hyperopt stage tunes
            GD, HD_M1 and HD_M10 per code with the thesis's budgets; CNN range
            :data:`CNN_TUNE_RANGE`).
        models: the models (the tuned variant is meant for the CNN rows).
    """
    if steps_source not in ("published", "tuned"):
        raise ValueError(f"steps_source must be 'published' or 'tuned'; got {steps_source!r}")
    fixed = ["GD", "HD_M1", "HD_M10"]
    # the tuned variant holds only the tuned methods: the others are the published study's cells
    names = [m.name for m in METHODS] if steps_source == "published" else fixed
    name = "thesis-chapter3" + ("" if upsampling == "transpose" else f"-{upsampling}") \
        + ("" if steps_source == "published" else "-tuned") + ("-quick" if quick else "")
    spec = {"name": name, "description": "Thesis Table 3.3 grid (guide §5)",
            "problems": problems(quick), "models": list(models), "penalties": list(PENALTIES),
            "methods": _methods(names, quick), "steps": [1],
            "seeds": list(QUICK_SEEDS if quick else SEEDS),
            "model_options": _model_options(upsampling),
            "exclude": QUICK_EXCLUDE if quick else []}
    if steps_source == "published":
        spec["overrides"] = _step_overrides(fixed, models, PENALTIES, PROBLEMS)
    else:   # quick: GD only, at p = 3
        spec["tune"] = _tune_section(["GD"] if quick else fixed, models,
                                     (3.0,) if quick else PENALTIES, PROBLEMS, quick,
                                     CNN_TUNE_RANGE)
        if quick:
            spec["methods"], spec["penalties"] = _methods(["GD"], quick), [3.0]
    return Study.from_dict(spec)


def gd2000(quick: bool = False, *, upsampling: str = "transpose") -> Study:
    """Table 3.2's extra GD run: 2000 steps at p = 3, both models, 10 seeds."""
    return Study.from_dict({
        "name": "thesis-gd2000" + ("" if upsampling == "transpose" else f"-{upsampling}")
        + ("-quick" if quick else ""),
        "description": "Thesis Table 3.2: GD at 2000 steps, p = 3",
        "problems": problems(quick), "models": ["cnn", "pixel"], "penalties": [3.0],
        "methods": _methods(["GD"], quick, {"GD": 10 if quick else 2000}), "steps": [1],
        "seeds": list(QUICK_SEEDS if quick else SEEDS),
        "model_options": _model_options(upsampling), "exclude": QUICK_EXCLUDE if quick else [],
        "overrides": _step_overrides(["GD"], ["cnn", "pixel"], [3.0], PROBLEMS)})


P1_REFERENCE_STEPS = 3000
"""Iterations of the p = 1 reference runs: far past the thesis's budgets (700 / 300)."""


def p1_reference(quick: bool = False, *, upsampling: str = "transpose") -> Study:
    """The convex optimum of every pixel problem at p = 1, by two independent methods.

    At p = 1 the compliance is convex in the (filtered) densities and the volume constraint is
    linear, so the optimum value is unique. MMA and OC work in density space (not through the
    thesis's sigmoid logits), from the constant start, for :data:`P1_REFERENCE_STEPS`
    iterations; their agreement is the check, and the lower one is the reference that the
    Chapter 3 runs at p = 1 are compared with (issue 9's p = 1 fact).

    ``MMA`` and ``OC`` constrain the mean of the densities before the filter
    (``PixelModel(volume_of="design")``), the volume that the thesis's models (pixel logits and
    CNN through the sigmoid map) fix; ``MMA_filtered`` and ``OC_filtered`` constrain the mean of
    the filtered density, as the paper's MMA and OC do. The two optima differ because the cone
    filter does not preserve the mean near the boundary. ``upsampling`` is accepted for a
    uniform signature (no CNN runs here).
    """
    del upsampling
    steps = 20 if quick else P1_REFERENCE_STEPS
    optimizers = {"MMA": "mma", "OC": "oc", "MMA_filtered": "mma", "OC_filtered": "oc"}
    methods = [{"name": name, "optimizer": optimizer, "options": {}, "steps": [steps]}
               for name, optimizer in optimizers.items()]
    return Study.from_dict({
        "name": "thesis-p1-reference" + ("-quick" if quick else ""),
        "description": "Convex optimum at p = 1 of A B D E (MMA and OC in density space)",
        "problems": problems(quick), "models": ["pixel"], "penalties": [1.0],
        "methods": methods, "steps": [1], "seeds": [-1],
        "overrides": [{"match": {"method": ["MMA", "OC"]},
                       "model_options": {"volume_of": "design"}}]})


def interpolation(quick: bool = False, *, upsampling: str = "transpose") -> Study:
    """L-BFGS (300 evaluations) of every NN code at seed 0 with the iterates of §4.4 kept."""
    return Study.from_dict({
        "name": "thesis-interpolation" + ("-quick" if quick else ""),
        "description": "Figs 3.5, C.13, C.14: CNN L-BFGS runs with iterates (guide §4.4)",
        "problems": problems(quick), "models": ["cnn"], "penalties": list(PENALTIES),
        "methods": _methods(["LBFGS"], quick), "steps": [1], "seeds": [0],
        "model_options": _model_options(upsampling),
        "record": {"iterates_at": list(INTERPOLATION_ITERATES), "pairs": False}})


def distance(quick: bool = False, *, upsampling: str = "transpose") -> Study:
    """CNN on A and D, p in {1, 3}, L-BFGS 300 and GD 700, seeds 0-2, every 25th iterate kept.

    (The engine keeps iterates, not a per-step distance history, so the distance from the start
    is drawn at the kept iterates; the gradient norm is the record's per-iterate history.)
    """
    return Study.from_dict({
        "name": "thesis-distance" + ("-quick" if quick else ""),
        "description": "Figs 3.9 and C.16: distance from the start and gradient norm (§4.5)",
        "problems": problems(quick, ("A", "D")), "models": ["cnn"],
        "penalties": list(PENALTIES), "methods": _methods(["LBFGS", "GD"], quick),
        "steps": [1], "seeds": [0] if quick else [0, 1, 2],
        "model_options": _model_options(upsampling),
        "overrides": _step_overrides(["GD"], ["cnn"], PENALTIES, ("A", "D")),
        "record": {"iterates_every": 2 if quick else 25, "pairs": False}})


def spectra(quick: bool = False, *, upsampling: str = "transpose") -> Study:
    """L-BFGS_M1 seed 0 of NN3E, NN3A, NN1A, P3B, P1B with pairs and iterates 0, 10, 28 kept."""
    codes = sorted({quick_code(c, quick) for c in SPECTRA_CODES.values()})
    at = (0, 2, 4) if quick else SPECTRA_ITERATES
    exclude = []
    for model in ("cnn", "pixel"):
        for penal in PENALTIES:
            for problem in PROBLEMS:
                if code_of(model, penal, problem) not in codes:
                    exclude.append({"model": model, "penal": penal, "problem": problem})
    return Study.from_dict({
        "name": "thesis-spectra" + ("-quick" if quick else ""),
        "description": "Figs 3.7, C.9-C.12: true Hessian against L-BFGS_M1's B (§4.1)",
        "problems": problems(quick), "models": ["cnn", "pixel"], "penalties": list(PENALTIES),
        "methods": _methods(["LBFGS_M1"], quick), "steps": [1], "seeds": [0],
        "model_options": _model_options(upsampling), "exclude": exclude,
        "record": {"iterates_at": list(at), "pairs": True, "pairs_until": max(at)}})


DEFAULT_TUNING_CODES = {
    "B.1": ("P3A", "P3B", "P3D", "P3E", "P1A", "P1B", "P1D", "P1E", "NN3A", "NN1A"),
    "B.2": (), "B.3": (),
}
"""Codes tuned by default (issue 9 item 3); an empty tuple means all 16."""


def tuning(table: str, quick: bool = False, *, codes: Sequence[str] | None = None,
           upsampling: str = "transpose", published: bool = False) -> Study:
    """Table B.1, B.2 or B.3 redone: TPE (30 trials, q = 0.1, the thesis's ranges) per code with
    the table's budgets and seeds; with ``published``, instead the published step run at the same
    budgets and seeds (its own study: a tuned value equal to the published one would otherwise be
    a duplicate cell).

    Args:
        table: ``"B.1"``, ``"B.2"`` or ``"B.3"``.
        codes: test codes (default :data:`DEFAULT_TUNING_CODES`, all 16 when empty).
    """
    if table not in TABLE_METHOD:
        raise ValueError(f"table must be one of {sorted(TABLE_METHOD)}; got {table!r}")
    name = TABLE_METHOD[table]
    if codes is None and quick and table != "B.1":
        codes = QUICK_TUNING_CODES
    codes = tuple(codes if codes is not None else DEFAULT_TUNING_CODES[table]) or tuple(
        code_of(m, p, c) for m in ("cnn", "pixel") for p in PENALTIES for c in PROBLEMS)
    for code in codes:
        parse_code(code)
    method = METHODS_BY_NAME[name]
    max_seeds = 1 if quick else max(TUNING_BUDGETS[table][c][1] for c in codes)
    exclude, overrides = [], []
    for model in ("cnn", "pixel"):
        for penal in PENALTIES:
            for problem in PROBLEMS:
                code = code_of(model, penal, problem)
                where = {"model": model, "penal": penal, "problem": problem}
                if code not in codes:
                    exclude.append(where)
                    continue
                steps, seeds = TUNING_BUDGETS[table][code]
                if quick:
                    steps, seeds = QUICK_STEPS[name], 1
                overrides.append({"match": {**where, "method": name}, "steps": steps})
                if published:
                    overrides.append({"match": {**where, "method": name},
                                      "options": {"learning_rate": published_step(
                                          method, model, penal, problem)}})
                if seeds < max_seeds:
                    exclude.append({**where, "seed": list(range(seeds, max_seeds))})
    spec = {
        "name": f"thesis-tuning-{table}" + ("-published" if published else "")
        + ("-quick" if quick else ""),
        "description": f"Thesis Table {table}: " + (
            f"{name} at the published steps" if published else f"TPE step tuning of {name}"),
        "problems": problems(quick), "models": ["cnn", "pixel"], "penalties": list(PENALTIES),
        "methods": _methods([name], quick), "steps": [1], "seeds": list(range(max_seeds)),
        "model_options": _model_options(upsampling), "exclude": exclude,
        "overrides": overrides}
    if not published:
        tune = _tune_section([name], ("cnn", "pixel"), PENALTIES, PROBLEMS, quick, (-6.0, 0.3))
        tune["overrides"] = [o for o in tune["overrides"] if code_of(
            o["match"]["model"], o["match"]["penal"], o["match"]["problem"]) in codes]
        spec["tune"] = tune
    return Study.from_dict(spec)


def study_names() -> tuple[str, ...]:
    return ("chapter3", "chapter3-tuned", "gd2000", "interpolation", "distance", "spectra",
            "p1-reference",
            *(f"tuning-{t}{s}" for t in TABLE_METHOD for s in ("", "-published")))
