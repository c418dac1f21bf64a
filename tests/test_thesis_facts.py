"""Independent facts the committed full results must show (issue 9, Verification).

Each test reads the compact records under ``results/thesis/records/`` and is skipped, with the
reason printed, while the records of its item are not there yet.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from studies.thesis.curves import load_runs
from studies.thesis.items import Context

RESULTS = Path(__file__).resolve().parents[1] / "results" / "thesis"


def _runs(key: str, minimum: int):
    folder = RESULTS / "records" / key / "records"
    found = len(list(folder.glob("*.json"))) if folder.is_dir() else 0
    if found < minimum:
        reason = f"{folder} holds {found} records (< {minimum}): run `nrto reproduce thesis` first"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    ctx = Context(RESULTS)
    return load_runs(ctx.study(key), ctx.folder(key)), ctx


def _median_final(runs, problem, model, penal, method):
    from studies.thesis.curves import best_so_far

    records = runs.group(problem, model, penal, method)
    steps = max(c.steps for c in runs.cells_of(problem=problem, model=model, penal=penal,
                                               method=method))
    steps = 700 if method == "GD_LS" else steps
    finals = [best_so_far(r.curve, steps + 1)[-1] for r in records]
    return float(np.median(finals)) if finals else math.nan, len(records)


@pytest.mark.xfail(strict=True, reason=(
    "measured: at the thesis's budgets (700 iterations, 300 L-BFGS evaluations) the pixel "
    "optimizers at p = 1 are still descending; their medians lie 0.2-3 % above the certified "
    "optimum (p1-reference.csv), e.g. P1D L-BFGS_M1 ~3 % above HD_M10. Convexity fixes the "
    "optimum, not the speed of reaching it. Strict: if the full records ever show the fact, "
    "this marker must go."))
def test_p1_pixel_optimizers_but_gd_reach_the_same_convex_optimum():
    runs, _ = _runs("chapter3", 40)
    checked = 0
    for problem in ("A", "B", "D", "E"):
        values = {}
        for method in ("HD_M1", "HD_M10", "GD_LS", "LBFGS_M1", "LBFGS"):
            value, seeds = _median_final(runs, problem, "pixel", 1.0, method)
            if seeds == 10:
                values[method] = value
        if len(values) < 2:
            continue
        low, high = min(values.values()), max(values.values())
        assert high <= low * 1.005, f"P1{problem}: {values} spread more than 0.5 %"
        checked += 1
    if not checked:
        pytest.skip("no pixel p = 1 problem has two optimizers with all 10 seeds yet")


def test_cnn_lbfgs_memory_1_and_10_agree_at_p3():
    runs, _ = _runs("chapter3", 40)
    checked = 0
    for problem in ("A", "B", "D", "E"):
        m1, n1 = _median_final(runs, problem, "cnn", 3.0, "LBFGS_M1")
        m10, n10 = _median_final(runs, problem, "cnn", 3.0, "LBFGS")
        if n1 == n10 == 10:
            assert abs(m1 - m10) <= 0.05 * min(m1, m10), f"NN3{problem}: {m1} vs {m10}"
            checked += 1
    if not checked:
        pytest.skip("no CNN p = 3 problem has both L-BFGS variants at 10 seeds yet")


def test_fig_b1_spectra_at_p1_have_no_negative_eigenvalue():
    path = RESULTS / "fig-b.1.json"
    if not path.exists():
        print(f"SKIPPED: {path} not written yet (nrto reproduce thesis --items fig-b.1)")
        pytest.skip(f"{path} not written yet")
    rows = json.loads(path.read_text())
    assert {r["problem"] for r in rows} == {"A", "B", "D", "E"}
    for row in rows:
        assert row["lambda_min"] >= -1e-8 * row["lambda_max"], row



def _p1_reference():
    """``(optimum, bound)`` per problem: the best reference run and its certified bound."""
    folder = RESULTS / "records" / "p1-reference" / "records"
    if not folder.is_dir() or not list(folder.glob("*.json")):
        reason = f"{folder} holds no records: run `nrto reproduce thesis --items p1-reference`"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    from studies.thesis.items import p1_bounds, p1_reference_values

    ctx = Context(RESULTS)
    values, bounds = p1_reference_values(ctx), p1_bounds(ctx)
    both = {p: (min(values[p].values()), bounds[p]) for p in values if p in bounds}
    if not both:
        pytest.skip("no p = 1 reference run with its certified bound yet")
    return both


def test_p1_reference_is_certified_optimal():
    """The reference runs (MMA and OC in density space, 3000 iterations) are within 0.1 % of
    the tangent-plane lower bound: the optimum is known to that accuracy."""
    for problem, (optimum, bound) in _p1_reference().items():
        assert bound <= optimum <= bound * (1 + 1e-3), f"P1{problem}: {optimum} vs {bound}"


def test_no_p1_run_goes_below_the_certified_bound():
    """Convexity: every Chapter 3 run at p = 1, pixel or CNN (their densities lie in the same
    set: the sigmoid map fixes the mean before the filter), stays above the certified bound."""
    reference = _p1_reference()
    runs, _ = _runs("chapter3", 1)
    checked = 0
    for problem, (_, bound) in reference.items():
        for model in ("pixel", "cnn"):
            for method in ("GD", "HD_M1", "HD_M10", "GD_LS", "LBFGS_M1", "LBFGS"):
                for record in runs.group(problem, model, 1.0, method):
                    finite = record.curve[np.isfinite(record.curve)]
                    if finite.size:
                        lowest = float(finite.min())
                        assert lowest >= bound * (1 - 1e-9), (
                            f"{model} p=1 {problem} {method} seed {record.cell.seed}: "
                            f"{lowest} below the certified bound {bound}")
                        checked += 1
    if not checked:
        pytest.skip("no Chapter 3 record at p = 1 yet")
