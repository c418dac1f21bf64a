"""Study specs: expansion of the grid, stable keys, overrides, the three file formats, bad input."""
import json
import re

import pytest

from studies.study.spec import Study, StudyError, expand, load_study

TINY = {
    "name": "tiny",
    "problems": [{"name": "mbb_beam", "size": [16, 8], "volume_fraction": 0.5, "label": "A"},
                 {"name": "cantilever_beam_full", "size": [16, 8], "volume_fraction": 0.4,
                  "label": "B"}],
    "models": ["pixel"],
    "seeds": [0, 1],
    "steps": [8],
    "methods": [{"name": "LBFGS", "optimizer": "lbfgs"}, {"name": "OC", "optimizer": "oc"}],
}


def _study(**changes):
    return Study.from_dict({**TINY, **changes})


def test_grid_size_order_and_stable_keys():
    cells = expand(_study())
    assert len(cells) == 2 * 2 * 2
    assert [c.label for c in cells[:3]] == ["A/pixel/p3/LBFGS/seed0", "A/pixel/p3/LBFGS/seed1",
                                            "A/pixel/p3/OC/seed0"]
    again = expand(Study.from_dict(json.loads(json.dumps(TINY))))
    assert [c.key for c in cells] == [c.key for c in again]
    assert len({c.key for c in cells}) == len(cells)
    # the key is a hash of the computation only: a relabelled problem keeps its keys
    relabelled = dict(TINY, problems=[dict(TINY["problems"][0], label="X"), TINY["problems"][1]])
    assert [c.key for c in expand(Study.from_dict(relabelled))] == [c.key for c in cells]
    # ... and any change of the computation changes it
    longer = expand(_study(steps=[9]))
    assert not {c.key for c in longer} & {c.key for c in cells}


def test_overrides_exclusions_and_per_method_axes():
    study = _study(
        models=["pixel", "cnn"], seeds=[-1, 0], penalties=[1, 3],
        methods=[{"name": "GD", "optimizer": "gd", "steps": [5]},
                 {"name": "LBFGS", "optimizer": "lbfgs"},
                 {"name": "OC", "optimizer": "oc", "models": ["pixel"]}],
        overrides=[{"match": {"problem": "A", "method": "GD"}, "options": {"learning_rate": 0.1}},
                   {"match": {"model": "cnn", "penal": [1]}, "model_options":
                    {"upsampling": "transpose"}}],
        exclude=[{"model": "cnn", "seed": -1}])
    cells = expand(study)
    # 2 problems x (pixel: 2 penal x 3 methods x 2 seeds + cnn: 2 penal x 2 methods x 1 seed)
    assert len(cells) == 2 * (2 * 3 * 2 + 2 * 2 * 1)
    gd = [c for c in cells if c.method == "GD"]
    assert {c.steps for c in gd} == {5}
    assert {c.options.get("learning_rate") for c in gd if c.problem == "A"} == {0.1}
    assert {c.options.get("learning_rate") for c in gd if c.problem == "B"} == {None}
    cnn = [c for c in cells if c.model == "cnn"]
    assert all(c.seed == 0 for c in cnn)
    assert {c.model_options.get("upsampling") for c in cnn if c.penal == 1} == {"transpose"}
    assert {c.model_options.get("upsampling") for c in cnn if c.penal == 3} == {None}
    assert {c.curve for c in cells if c.method == "LBFGS"} == {"evaluation"}
    assert {c.curve for c in cells if c.method == "OC"} == {"iterate"}


def test_option_variants_and_several_budgets_get_distinct_labels():
    study = _study(methods=[{"name": "LBFGS", "optimizer": "lbfgs", "steps": [4, 8]}],
                   options=[{"name": "m1", "memory": 1}, {"name": "m10", "memory": 10}])
    labels = sorted({c.method for c in expand(study)})
    assert labels == ["LBFGS[m10]@4", "LBFGS[m10]@8", "LBFGS[m1]@4", "LBFGS[m1]@8"]


def test_toml_json_and_python_specs_agree(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('name = "tiny"\nmodels = ["pixel"]\nseeds = [0, 1]\nsteps = [8]\n'
                    'problems = [{name = "mbb_beam", size = [16, 8], volume_fraction = 0.5, '
                    'label = "A"}, {name = "cantilever_beam_full", size = [16, 8], '
                    'volume_fraction = 0.4, label = "B"}]\n'
                    '[[methods]]\nname = "LBFGS"\noptimizer = "lbfgs"\n'
                    '[[methods]]\nname = "OC"\noptimizer = "oc"\n')
    (tmp_path / "s.json").write_text(json.dumps(TINY))
    (tmp_path / "s.py").write_text(f"STUDY = {TINY!r}\n")
    fingerprints = {load_study(tmp_path / f"s.{ext}").fingerprint for ext in ("toml", "json",
                                                                                 "py")}
    assert len(fingerprints) == 1
    assert Study.from_dict(_study().to_dict()) == _study()


@pytest.mark.parametrize("changes, message", [
    ({"problems": ["no_such_problem_16x8"]}, "unknown problem"),
    ({"methods": [{"name": "X", "optimizer": "newton"}]}, "unknown method"),
    ({"methods": [{"name": "L", "optimizer": "lbfgs", "options": {"momentum": 0.9}}]},
     "has no option"),
    ({"seeds": []}, "empty"),
    ({"methods": [{"name": "OC", "optimizer": "oc", "models": ["cnn"]}]}, "empty"),
    ({"seeds": [0, 0]}, "duplicate cell"),
    ({"methods": [{"name": "A", "optimizer": "lbfgs"}, {"name": "B", "optimizer": "lbfgs"}]},
     "duplicate cell"),
    ({"steps": [0]}, "steps must hold integers >= 1"),
    ({"steps": [-3]}, "steps must hold integers >= 1"),
    ({"models": ["cnn"], "seeds": [-1]}, "seed -1"),
    ({"models": ["cnn"], "methods": [{"name": "OC", "optimizer": "oc"}]}, "needs --model pixel"),
    ({"stpes": [3]}, "did you mean 'steps'"),
    ({"checkpoint_seconds": -5.0}, "checkpoint_seconds must be a number of seconds >= 0"),
    ({"checkpoint_seconds": float("nan")}, "checkpoint_seconds must be a number of seconds"),
    ({"checkpoint_seconds": "often"}, "checkpoint_seconds must be a number of seconds"),
    ({"keep_runs": "no"}, "keep_runs must be true or false; got 'no'"),
    ({"model_options": [1]}, "model_options: expected a table"),
    ({"model_options": {"pixel": 5}}, "model_options.pixel: expected a table"),
    ({"options": [5]}, "options (a list of option tables): expected a table"),
    ({"record": 5}, "record: expected a table"),
    ({"exclude": [5]}, "exclude (a list of match tables): expected a table"),
    ({"overrides": [{"match": 5}]}, "override 0 match: expected a table"),
    ({"problems": [{"name": "mbb_beam", "size": [16, 8], "volume_fraction": "0.5"}]},
     "volume_fraction must be a number in (0, 1]; got '0.5'"),
    ({"problems": [{"name": "mbb_beam", "size": [16, 8], "volume_fraction": 0.5,
                    "params": [1]}]}, "problem 'mbb_beam' params: expected a table"),
])
def test_bad_specs_raise_one_line(changes, message):
    with pytest.raises(StudyError, match=re.escape(message)) as error:
        expand(_study(**changes))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("changes, message", [
    ({"overrides": [{"match": {"problem": "a"}, "options": {"memory": 5}}]},
     "override 0: match problem = 'a' is not in this study's grid"),
    ({"exclude": [{"method": "LBFGS", "seed": 0}, {"method": ["OC", "MMA"], "seed": 1}]},
     "exclude 1: match method = 'MMA' is not in this study's grid, so the entry could never "
     "apply; its method values are \\['LBFGS', 'OC'\\]"),
    ({"exclude": [{"seed": 2}]}, "match seed = 2"),
    ({"exclude": [{"penal": "3"}]}, "match penal = '3'"),
    ({"exclude": [{"variant": "fast"}]}, "match variant = 'fast'"),
    ({"methods": [{"name": "GD", "optimizer": "gd"}],
      "tune": {"methods": ["GD"], "overrides": [{"match": {"steps": 9}, "trials": 2}]}},
     "tune override 0: match steps = 9"),
])
def test_a_spec_file_whose_override_or_exclusion_could_never_apply_is_refused(
        changes, message, tmp_path):
    """A mistyped match value silently changes nothing (or computes cells meant to be left
    out); the files people write are checked (the generated reproduction specs are not)."""
    path = tmp_path / "s.json"
    path.write_text(json.dumps({**TINY, **changes}))
    with pytest.raises(StudyError, match=message) as error:
        load_study(path)
    assert "\n" not in str(error.value)
    expand(_study(**changes))  # valid as data: the grid simply has no cell it applies to
    # the same entries with values of the grid load
    fine = {**TINY, "overrides": [{"match": {"problem": ["A", "B"], "penal": 3,
                                             "optimizer": "oc", "seed": 1, "steps": 8,
                                             "variant": ""}, "options": {"move": 0.1}}],
            "exclude": [{"method": "OC", "seed": 0}]}
    path.write_text(json.dumps(fine))
    assert len(expand(load_study(path))) == 6  # 2 problems x 2 seeds x 2 methods, less OC at 0


@pytest.mark.parametrize("tune, message", [
    ({"methods": "GD"}, "tune.methods must list the method labels to tune"),
    ({"methods": ["GD"], "ranges": {"pixel": ["a", "b"]}}, "with finite low < high; got pixel"),
    ({"methods": ["GD"], "ranges": {"pixel": [float("-inf"), 0]}}, "finite low < high"),
    ({"methods": ["GD"], "ranges": {"pixel": 5}}, "finite low < high; got pixel = 5"),
    ({"methods": ["GD"], "ranges": [1, 2]}, "tune.ranges: expected a table"),
    ({"methods": ["GD"], "q": "x"}, "tune.q must be a finite number > 0; got 'x'"),
    ({"methods": ["GD"], "q": float("inf")}, "tune.q must be a finite number > 0"),
    ({"methods": ["GD"], "overrides": [{"match": {"seed": 0}, "seeds": "x"}]},
     "tune override seeds must hold integers >= -1; got 'x'"),
    ({"methods": ["GD"], "overrides": [{"match": {"seed": 0}, "seeds": []}]},
     "tune override seeds is empty"),
    ({"methods": ["GD"], "overrides": [{"match": {"seed": 0}, "trials": 0}]},
     "tune override trials must hold integers >= 1; got 0"),
    ({"methods": ["GD"], "overrides": [{"match": {"seed": 0}, "steps": 2.5}]},
     "tune override steps must hold integers >= 1; got 2.5"),
])
def test_a_bad_tuning_section_is_one_line(tune, message):
    with pytest.raises(StudyError, match=re.escape(message)) as error:
        _study(methods=[{"name": "GD", "optimizer": "gd"}], tune=tune)
    assert "\n" not in str(error.value)


def test_tuning_an_option_the_method_lacks_is_refused():
    with pytest.raises(StudyError, match="tune: method 'LBFGS' \\(lbfgs\\) has no option "
                                         "'learning_rate' to tune; its options: memory"):
        _study(tune={"methods": ["LBFGS"]})
    with pytest.raises(StudyError, match="has no option 'momentum'"):
        _study(methods=[{"name": "GD", "optimizer": "gd"}],
               tune={"methods": ["GD"], "option": "momentum"})


def test_a_spec_nested_too_deeply_or_not_text_is_one_line_not_a_traceback(tmp_path):
    """Python's JSON and TOML parsers recurse: 100 000 nested brackets raised RecursionError."""
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "s.json").write_text(f'{{"name": "x", "problems": {deep}}}')
    (tmp_path / "s.toml").write_text(f'name = "x"\nproblems = {deep}\n')
    for name in ("s.json", "s.toml"):
        with pytest.raises(StudyError, match=f"{name}: nested too deeply to parse") as error:
            load_study(tmp_path / name)
        assert "\n" not in str(error.value)
    # ... and so is a file that is not text at all
    for name in ("b.json", "b.toml"):
        (tmp_path / name).write_bytes(b'name = "\xc8\x00"')
        with pytest.raises(StudyError, match=rf"{name} is not UTF-8 text \(byte 8: b'\\xc8'\)"):
            load_study(tmp_path / name)
    # what a bad entry got is echoed cut short, not in full
    with pytest.raises(StudyError, match=r"got \[\[\[\[\.\.\.\]\]\]\]$"):
        _study(problems=[[[[[[["mbb_beam_96x32_0.5"]]]]]]])
    with pytest.raises(StudyError, match=r"got 'aaa+\.\.\.a+'$") as error:
        _study(seeds=[0, "a" * 10_000])
    assert len(str(error.value)) < 120


def test_a_grid_too_large_is_refused_before_expansion():
    """A mistyped range of seeds must not spend minutes and gigabytes expanding the grid."""
    import time

    from studies.study.spec import MAX_GRID_CELLS

    methods = [{"name": "LBFGS", "optimizer": "lbfgs"},
               {"name": "OC", "optimizer": "oc", "models": ["pixel"], "seeds": [0]}]
    study = _study(models=["pixel", "cnn"], methods=methods, seeds=list(range(10 ** 6)))
    assert study.grid_size == 2 * (2 * 10 ** 6 + 1)
    start = time.perf_counter()
    with pytest.raises(StudyError, match=r"4,000,002 cells before exclusions \(2 problems x 2 "
                                         r"models .* 1000000 seeds.*at most 100,000") as error:
        expand(study)
    assert "\n" not in str(error.value) and time.perf_counter() - start < 5
    # the bound counts each method on its own models, budgets and seeds, like the expansion
    fits = _study(seeds=list(range(MAX_GRID_CELLS // 4)))
    assert fits.grid_size == MAX_GRID_CELLS // 4 * 2 * 2
    small = _study(methods=methods)
    assert small.grid_size == len(expand(small))


def test_the_thesis_table_3_3_grid_with_step_sizes_per_test_code():
    """16 test codes x 6 optimizers x 10 seeds, the published steps as per-cell overrides."""
    from solvers.optim.step_sizes import THESIS_STEP_SIZES, THESIS_TASKS

    overrides = []
    for (task, model, penal, method, memory), step in THESIS_STEP_SIZES.items():
        label = {("gd", None): "GD", ("hd", 1): "HD_M1", ("hd", 10): "HD_M10"}[(method, memory)]
        code = next(c for c, t in THESIS_TASKS.items() if t == task)
        overrides.append({"match": {"problem": code, "model": model, "penal": penal,
                                    "method": label}, "options": {"learning_rate": step}})
    study = Study.from_dict({
        "name": "thesis-table-3.3",
        "problems": [{"name": task, "label": code} for code, task in THESIS_TASKS.items()],
        "models": ["cnn", "pixel"], "penalties": [1, 3], "seeds": list(range(10)),
        "steps": [300], "model_options": {"cnn": {"upsampling": "transpose"}},
        "methods": [{"name": "GD", "optimizer": "gd", "steps": [700]},
                    {"name": "HD_M1", "optimizer": "hd", "options": {"memory": 1},
                     "steps": [700]},
                    {"name": "HD_M10", "optimizer": "hd", "options": {"memory": 10},
                     "steps": [700]},
                    {"name": "GD_LS", "optimizer": "gd_ls", "steps": [700], "curve": "iterate"},
                    {"name": "LBFGS_M1", "optimizer": "lbfgs", "options": {"memory": 1}},
                    {"name": "LBFGS", "optimizer": "lbfgs"}],
        "overrides": overrides})
    cells = expand(study)
    assert len(cells) == 16 * 6 * 10
    nn3a_gd = [c for c in cells if (c.problem, c.model, c.penal, c.method) == ("A", "cnn", 3.0,
                                                                              "GD")]
    assert len(nn3a_gd) == 10 and {c.options["learning_rate"] for c in nn3a_gd} == {2.5e-4}
    assert {c.options["learning_rate"] for c in cells if c.method == "HD_M10" and
            (c.problem, c.model, c.penal) == ("E", "pixel", 3.0)} == {0.032}
    assert {c.model_options.get("upsampling") for c in cells if c.model == "cnn"} == \
        {"transpose"}
    assert {(c.method, c.steps, c.curve) for c in cells if c.method.startswith("GD")} == {
        ("GD", 700, "iterate"), ("GD_LS", 700, "iterate")}


def test_the_paper_benchmark_grid_of_116_tasks():
    """Tasks x {cnn-lbfgs, pixels-lbfgs, pixels-mma, pixels-oc} x seeds -1.. (no CNN at -1)."""
    from solvers.problems import TASKS

    seeds = [-1, 0, 1]
    study = Study.from_dict({
        "name": "paper-benchmark", "problems": [task.name for task in TASKS],
        "models": ["cnn", "pixel"], "seeds": seeds, "steps": [1000],
        "methods": [{"name": "cnn-lbfgs", "optimizer": "lbfgs", "models": ["cnn"]},
                    {"name": "pixels-lbfgs", "optimizer": "lbfgs", "models": ["pixel"]},
                    {"name": "pixels-mma", "optimizer": "mma", "models": ["pixel"]},
                    {"name": "pixels-oc", "optimizer": "oc", "models": ["pixel"]}],
        "exclude": [{"model": "cnn", "seed": -1}]})
    cells = expand(study)
    assert len(TASKS) == 116
    assert len(cells) == 116 * (3 + 4 * (len(seeds) - 1))  # the paper's 3 + 4 N per task
    assert {c.curve for c in cells if c.method == "cnn-lbfgs"} == {"evaluation"}
