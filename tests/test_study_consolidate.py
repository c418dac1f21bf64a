"""The consolidated losses of a study: one xarray.Dataset with dims (problem, model, penal,
method, seed, step), NaN where a cell has not finished or its run has ended."""
import numpy as np

from studies.study import InlineExecutor, Study, StudyFolder, expand, losses_dataset, run_study


def test_losses_dataset_holds_every_records_curve(tmp_path):
    study = Study.from_dict({
        "name": "consolidate", "problems": ["toy/rosenbrock", {"name": "toy/quadratic",
                                                               "size": 3}],
        "seeds": [0, 1, 2], "steps": [12],
        "methods": [{"name": "LBFGS", "optimizer": "lbfgs"},
                    {"name": "GD", "optimizer": "gd", "options": {"learning_rate": 1e-3}}]})
    folder = StudyFolder(tmp_path)
    cells = expand(study)
    unfinished = cells[-1]
    run_study(study, folder, InlineExecutor(), progress=False)
    folder.record_path(unfinished).unlink()
    ds = losses_dataset(folder)
    assert ds["loss"].dims == ("problem", "model", "penal", "method", "seed", "step")
    assert list(ds.problem.values) == ["toy/rosenbrock", "toy/quadratic"]
    assert list(ds.method.values) == ["LBFGS", "GD"] and list(ds.seed.values) == [0, 1, 2]
    for cell in cells:
        at = dict(problem=cell.problem, model=cell.model, penal=cell.penal, method=cell.method,
                  seed=cell.seed)
        loss = ds["loss"].sel(at).values
        if cell is unfinished:
            assert np.isnan(loss).all() and int(ds["evaluations"].sel(at)) == -1
            continue
        curve = folder.read_record(cell).curve
        assert loss[:curve.size].tobytes() == curve.tobytes()
        assert np.isnan(loss[curve.size:]).all()
        assert int(ds["evaluations"].sel(at)) == folder.read_record(cell).evaluations
    # (a dim named "method" must be selected with a dict: .sel(method=...) is xarray's option)
    gd = ds["loss"].sel({"method": "GD", "problem": "toy/quadratic", "seed": 0}).squeeze()
    assert np.isfinite(gd.values[:13]).all()  # GD: steps + 1 iterates
