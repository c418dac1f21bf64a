"""The thesis's conclusions as checks: hand-made Table 3.3 rows with known verdicts."""
import math

import numpy as np

from studies.thesis.conclusions import check_conclusions, summarize_checks


def _rows(penal, problem, medians, steps=None, model="cnn"):
    """Rows as the CSV gives them (strings), one per optimizer of ``medians``."""
    steps = steps or {}
    return [{"model": model, "penal": str(penal), "problem": problem, "optimizer": name,
             "median_final_loss": str(value), "convergence_step": str(steps.get(name, ""))}
            for name, value in medians.items()]


GOOD = {"GD": 300.0, "HD_M1": 250.0, "HD_M10": 260.0, "GD_LS": 20.0, "LBFGS_M1": 19.5,
        "LBFGS": 19.0}
GOOD_STEPS = {"LBFGS": 200, "GD_LS": 500}


def _verdicts(checks):
    return {(c.code, c.conclusion): c.holds for c in checks}


def test_every_conclusion_holds_on_a_clear_case():
    checks = check_conclusions(_rows(3, "A", GOOD, GOOD_STEPS))
    assert _verdicts(checks) == {("NN3A", "line-search"): True,
                                 ("NN3A", "hessian-faster"): True,
                                 ("NN3A", "memory-irrelevant"): True}


def test_each_conclusion_fails_on_its_own_counterexample():
    # a fixed-step optimizer beats the worst line search: line search is not what matters
    medians = dict(GOOD, HD_M10=19.8)
    assert _verdicts(check_conclusions(_rows(1, "B", medians, GOOD_STEPS)))[
        ("NN1B", "line-search")] is False
    # L-BFGS 11 % above GD_LS: not a similar solution; 9 % is
    worse = dict(GOOD, LBFGS=20.0 * 1.11, LBFGS_M1=20.0 * 1.11)
    assert _verdicts(check_conclusions(_rows(3, "D", worse, GOOD_STEPS)))[
        ("NN3D", "hessian-faster")] is False
    close = dict(GOOD, LBFGS=20.0 * 1.09, LBFGS_M1=20.0 * 1.09)
    assert _verdicts(check_conclusions(_rows(3, "D", close, GOOD_STEPS)))[
        ("NN3D", "hessian-faster")] is True
    # similar, but L-BFGS converges later than GD_LS
    slow = {"LBFGS": 600, "GD_LS": 500}
    assert _verdicts(check_conclusions(_rows(3, "E", GOOD, slow)))[
        ("NN3E", "hessian-faster")] is False
    # m = 1 6 % above m = 10: the memory matters; 4 % below does not
    for ratio, holds in ((1.06, False), (0.96, True)):
        medians = dict(GOOD, LBFGS_M1=19.0 * ratio)
        assert _verdicts(check_conclusions(_rows(1, "E", medians, GOOD_STEPS)))[
            ("NN1E", "memory-irrelevant")] is holds


def test_missing_or_diverged_rows_are_not_verdicts():
    medians = {k: v for k, v in GOOD.items() if k != "LBFGS_M1"}
    verdicts = _verdicts(check_conclusions(_rows(3, "A", medians, GOOD_STEPS)))
    assert verdicts[("NN3A", "line-search")] is None
    assert verdicts[("NN3A", "memory-irrelevant")] is None
    assert verdicts[("NN3A", "hessian-faster")] is True
    # a fixed-step median of inf (diverged) is still beaten; a NaN one is skipped
    diverged = dict(GOOD, GD=math.inf, HD_M1=math.nan)
    checks = check_conclusions(_rows(3, "A", diverged, GOOD_STEPS))
    assert _verdicts(checks)[("NN3A", "line-search")] is True
    assert "best fixed step HD_M10 260" in checks[0].evidence
    # without convergence steps "fewer steps" cannot be judged
    assert _verdicts(check_conclusions(_rows(3, "A", GOOD)))[("NN3A", "hessian-faster")] is None


def test_pixel_rows_are_ignored_and_later_rows_replace_earlier_ones():
    rows = _rows(3, "A", GOOD, GOOD_STEPS) + _rows(3, "A", dict(GOOD, GD=1.0), model="pixel")
    assert _verdicts(check_conclusions(rows))[("NN3A", "line-search")] is True
    tuned = _rows(3, "A", {"GD": 15.0})          # our tuned GD beats every line search
    assert _verdicts(check_conclusions(rows + tuned))[("NN3A", "line-search")] is False


def test_summary_counts_per_p_and_names_the_failures():
    rows = (_rows(3, "A", GOOD, GOOD_STEPS) + _rows(1, "A", GOOD, GOOD_STEPS)
            + _rows(3, "B", dict(GOOD, LBFGS_M1=25.0), GOOD_STEPS))
    text = summarize_checks(check_conclusions(rows))
    assert "line-search holds on 3/3 codes (p=1 1/1, p=3 2/2);" in text
    assert "memory-irrelevant holds on 2/3 codes (p=1 1/1, p=3 1/2), not on NN3B" in text
    assert "hessian-faster holds on 3/3 codes (p=1 1/1, p=3 2/2)" in text
    assert summarize_checks([]) == "nothing to check yet"


def test_fewer_steps_means_reaching_gd_ls_loss_sooner_when_curves_are_given():
    """GD_LS stalls at step 50 on a loss 30 % worse; L-BFGS comes within 10 % of that loss at
    evaluation 30 and goes on improving until 250: it reaches GD_LS's solution sooner."""
    gd_ls = np.concatenate([np.linspace(100.0, 26.0, 51), np.full(650, 26.0)])
    lbfgs = np.concatenate([np.linspace(100.0, 28.0, 31), np.linspace(28.0, 20.0, 221)[1:],
                            np.full(50, 20.0)])
    medians = dict(GOOD, GD_LS=26.0, LBFGS=20.0)
    steps = {"LBFGS": 250, "GD_LS": 50}
    rows = _rows(3, "B", medians, steps)
    assert _verdicts(check_conclusions(rows))[("NN3B", "hessian-faster")] is False
    curves = {"GD_LS": gd_ls, "LBFGS": lbfgs}
    rows = [dict(r, median=curves.get(r["optimizer"])) for r in rows]
    check = next(c for c in check_conclusions(rows) if c.conclusion == "hessian-faster")
    reach = int(np.argmax(lbfgs <= 26.0 * 1.1))
    assert reach == 30 and check.holds is True
    assert f"evaluation {reach} (converged at 250), GD_LS converged at iteration 50" in \
        check.evidence
    # an L-BFGS curve that only gets there after GD_LS converged is not faster
    rows = [dict(r, median=np.concatenate([np.full(60, 100.0), lbfgs[60:]]))
            if r["optimizer"] == "LBFGS" else r for r in rows]
    assert _verdicts(check_conclusions(rows))[("NN3B", "hessian-faster")] is False
    # an L-BFGS curve that never gets there is not faster either, and says so
    rows = [dict(r, median=np.full(301, 100.0)) if r["optimizer"] == "LBFGS" else r for r in rows]
    check = next(c for c in check_conclusions(rows) if c.conclusion == "hessian-faster")
    assert check.holds is False and "GD_LS's loss never (converged at 250)" in check.evidence
