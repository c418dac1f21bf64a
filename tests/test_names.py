"""The close-name suggestions that error messages make (`solvers.names`)."""
from __future__ import annotations

from solvers.names import close_names, did_you_mean
from solvers.problems import FAMILIES


def test_a_name_cut_short_is_matched_by_its_start():
    # difflib alone finds nothing for 'mbb' (ratio 0.55 with 'mbb_beam')
    assert close_names("mbb", FAMILIES) == ["mbb_beam"]
    assert close_names("l_shape", FAMILIES) == ["l_shape_0.2", "l_shape_0.4"]


def test_letter_case_comes_first_then_the_start_then_difflib():
    known = ["lbfgs", "LBFGS_B", "gd", "gd_ls"]
    assert close_names("Lbfgs", known) == ["lbfgs", "LBFGS_B"]
    assert close_names("lbgfs", known) == ["lbfgs"]  # difflib, case-sensitive
    assert close_names("gd_l", known, n=1) == ["gd_ls"]


def test_nothing_close_gives_an_empty_hint_and_the_name_itself_is_never_offered():
    assert close_names("zzz", FAMILIES) == []
    assert did_you_mean("zzz", FAMILIES) == ""
    assert close_names("gd", ["gd", "gd_ls"]) == ["gd_ls"]
    assert close_names("m", FAMILIES) == []  # one letter is too short to be a start


def test_the_hint_reads_as_one_question():
    assert did_you_mean("cantilever", FAMILIES) == (
        "did you mean 'cantilever_beam_full' or 'cantilever_beam_two_point'?")
    assert did_you_mean(3, ["3d", "x"]) == "did you mean '3d'?"
