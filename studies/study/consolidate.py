"""One ``xarray.Dataset`` of all losses of a study, as the paper's ``all_losses`` file.

``losses_dataset(folder)`` reads the compact records of the study's evaluation cells (unfinished
cells are NaN) into variables with dims ``(problem, model, penal, method, seed, step)``:

* ``loss``: the raw loss per step in each method's curve unit (``Cell.curve``: evaluations for
  L-BFGS-type methods, iterations otherwise; step 0 is the start), NaN past a run's end;
* ``evaluations``, ``iterations``: counts per cell (-1 where not finished);
* ``wall_s``, ``cpu_s``: time per cell.

Coordinates are the labels of the spec in its order; ``step`` runs to the longest curve. Select
with a dict, ``ds.loss.sel({"method": "LBFGS", "seed": 0})``: ``.sel(method=...)`` is xarray's
own keyword.
"""
from __future__ import annotations

import numpy as np

from .records import StudyFolder
from .spec import expand

__all__ = ["losses_dataset"]


def losses_dataset(folder: StudyFolder | str, tuned: dict | None = None):
    """The study's losses (see the module docstring)."""
    import xarray

    from .tune import tuned_values

    folder = folder if isinstance(folder, StudyFolder) else StudyFolder(folder)
    study = folder.study()
    tuned = tuned_values(study, folder) if tuned is None else tuned
    cells = expand(study, tuned)
    axes = {"problem": [p.label for p in study.problems], "model": list(study.models),
            "penal": list(study.penalties),
            "method": list(dict.fromkeys(c.method for c in cells)),
            "seed": sorted({c.seed for c in cells})}
    index = {name: {v: i for i, v in enumerate(values)} for name, values in axes.items()}
    records = [(cell, folder.read_record(cell)) for cell in cells]
    length = max([r.curve.size for _, r in records if r is not None] or [0])
    shape = tuple(len(v) for v in axes.values())
    loss = np.full(shape + (length,), np.nan)
    counts = {name: np.full(shape, -1, dtype=np.int64) for name in ("evaluations", "iterations")}
    times = {name: np.full(shape, np.nan) for name in ("wall_s", "cpu_s")}
    for cell, record in records:
        if record is None:
            continue
        at = tuple(index[name][getattr(cell, name)] for name in axes)
        loss[at + (slice(0, record.curve.size),)] = record.curve
        counts["evaluations"][at] = record.evaluations
        counts["iterations"][at] = record.iterations
        for name in times:
            times[name][at] = float(record.provenance.get(name, np.nan))
    dims = tuple(axes)
    data = {"loss": (dims + ("step",), loss),
            **{name: (dims, value) for name, value in {**counts, **times}.items()}}
    return xarray.Dataset(data, coords={**axes, "step": np.arange(length)},
                          attrs={"study": study.name, "fingerprint": study.fingerprint})
