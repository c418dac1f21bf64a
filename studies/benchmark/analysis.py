"""The paper's analysis of the 116-task benchmark, as pure functions on xarray.

Hoyer, Sohl-Dickstein & Greydanus (2019), "Neural reparameterization improves structural
optimization", reduce their consolidated losses in the notebook ``analyze-results.ipynb``; this
module restates those reductions from the protocol (``shared/guides/paper-benchmark.md`` §7):

1. the **monotone filter**: along ``step``, the running minimum skipping NaN (a NaN entry stays
   NaN), then a forward fill, so each curve is the best loss so far and a run that stopped early
   keeps its last value (:func:`best_so_far`);
2. the **typical** curve ``T[p, m, t]``: the median over seeds >= 0 for ``cnn-lbfgs``, and the
   constant-start run (seed -1) alone for the pixel methods; its reference
   ``best_typ[p] = min over m and ALL t of T`` (steps past the evaluation step included);
3. the **best-of-ensemble** curve ``E[p, m, t] = min over all seeds``, with the reference
   ``best_ens[p] = min over m and all t of E``;
4. the relative error ``curve / reference - 1`` per sample, evaluated at step 1000 (the 1001st
   logged evaluation, index 0 the initial design);
5. the CDF of the relative error at that step over the problems of each size group (thresholds
   ``linspace(0, 0.2, 2001)``, strict ``<``, NaN never below), the arithmetic mean per group, and
   the win counts.

Conventions: the losses are a ``DataArray`` (or the ``loss`` variable of a ``Dataset``) with dims
``(problem, method, seed, step)``, float, NaN where a run has no value; ``problem`` holds task names
of :data:`solvers.problems.TASKS` (or the data carries an ``elements`` coordinate on ``problem``),
``method`` the paper's names :data:`METHODS`, ``seed`` integers with -1 the constant start,
``step`` the integers 0, 1, ... A task is *large* when ``width * height >= 32,768`` (62 small and
54 large tasks in the catalogue). Outputs keep these dims and add ``sample`` (``typical``,
``ensemble``), ``group`` (``small``, ``large``, ``all``) and ``threshold``.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

__all__ = [
    "CDF_THRESHOLDS",
    "CNN_METHOD",
    "CONSTANT_SEED",
    "EVALUATION_STEP",
    "FRACTION_TAUS",
    "GROUPS",
    "LARGE_ELEMENTS",
    "METHODS",
    "SAMPLES",
    "at_step",
    "best_so_far",
    "cdf",
    "comparable",
    "consolidate",
    "cpu_hours",
    "elements",
    "forward_fill",
    "fraction_below",
    "loss_array",
    "projected_cpu_hours_per_seed",
    "reduce_losses",
    "running_minimum",
    "size_groups",
    "summary",
    "typical_seeds",
    "win_counts",
]

METHODS = ("cnn-lbfgs", "pixels-lbfgs", "pixels-mma", "pixels-oc")
CNN_METHOD = "cnn-lbfgs"
CONSTANT_SEED = -1
LARGE_ELEMENTS = 32_768  # 128 * 256
EVALUATION_STEP = 1000
CDF_THRESHOLDS = np.linspace(0.0, 0.2, 2001)
FRACTION_TAUS = (0.005, 0.01, 0.02, 0.05, 0.1)
SAMPLES = ("typical", "ensemble")
GROUPS = ("small", "large", "all")
_DIMS = ("problem", "method", "seed", "step")


def loss_array(losses: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """The losses as a float64 ``DataArray`` with dims ``(problem, method, seed, step)``.

    Accepts the ``loss`` variable of a ``Dataset`` and the published file's dim name
    ``method_name`` (renamed to ``method``, the guide's ambiguity 5).

    Raises:
        TypeError: not an xarray object.
        ValueError: missing or extra dims, an unknown method name, duplicate labels.
    """
    if isinstance(losses, xr.Dataset):
        if "loss" not in losses:
            raise ValueError(f"the Dataset has no 'loss' variable; it has {list(losses)}")
        losses = losses["loss"]
    if not isinstance(losses, xr.DataArray):
        raise TypeError(f"losses must be an xarray Dataset or DataArray; got "
                        f"{type(losses).__name__}")
    if "method_name" in losses.dims and "method" not in losses.dims:
        losses = losses.rename(method_name="method")
    if set(losses.dims) != set(_DIMS):
        raise ValueError(f"losses must have dims {_DIMS}; got {losses.dims}")
    losses = losses.transpose(*_DIMS).astype(np.float64)
    for dim in _DIMS:
        if dim not in losses.coords:
            raise ValueError(f"losses need a {dim!r} coordinate (labels along {dim})")
        labels = losses[dim].values
        if len(set(labels.tolist())) != labels.size:
            raise ValueError(f"duplicate labels along {dim!r}: {labels.tolist()}")
    unknown = sorted(set(losses["method"].values.tolist()) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; the paper's are {METHODS}")
    return losses


def running_minimum(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Running minimum along ``axis`` that skips NaN, as pandas' ``cummin``.

    A NaN entry stays NaN; the entries after it continue from the minimum before it. Leading NaN
    stay NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    running = np.fmin.accumulate(values, axis=axis)  # fmin ignores NaN when one side is a number
    return np.where(np.isnan(values), np.nan, running)


def forward_fill(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Replace each NaN along ``axis`` by the last non-NaN value before it (leading NaN stay)."""
    values = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    positions = np.where(np.isnan(values), 0, np.arange(values.shape[-1]))
    np.maximum.accumulate(positions, axis=-1, out=positions)
    filled = np.take_along_axis(values, positions, axis=-1)
    return np.moveaxis(filled, -1, axis)


def best_so_far(losses: xr.DataArray) -> xr.DataArray:
    """The monotone filter (step 1 of the module docstring): running minimum, then forward fill."""
    losses = loss_array(losses)
    axis = losses.get_axis_num("step")
    return losses.copy(data=forward_fill(running_minimum(losses.values, axis), axis))


def elements(problems: xr.DataArray) -> xr.DataArray:
    """Number of elements ``width * height`` of each problem (a ``problem`` DataArray).

    Read from an ``elements`` coordinate when the labels carry one, otherwise from the catalogue
    :data:`solvers.problems.TASKS`.

    Raises:
        ValueError: a problem that is not in the catalogue (and no ``elements`` coordinate).
    """
    if "elements" in problems.coords:
        return problems["elements"].astype(np.int64).reset_coords(drop=True)
    from solvers.problems import TASKS

    sizes = {task.name: task.width * task.height for task in TASKS}
    names = [str(name) for name in problems["problem"].values]
    unknown = [name for name in names if name not in sizes]
    if unknown:
        raise ValueError(f"problem(s) {unknown[:3]} are not catalogued tasks of solvers.problems; "
                         "give the losses an 'elements' coordinate along 'problem'")
    return xr.DataArray(np.array([sizes[name] for name in names], np.int64), dims="problem",
                        coords={"problem": problems["problem"].values})


def size_groups(problems: xr.DataArray) -> xr.DataArray:
    """``True`` for the large problems (``width * height >= 32,768``), dims ``(problem,)``."""
    return elements(problems) >= LARGE_ELEMENTS


def _quiet(function, *args, **kwargs):
    """Reductions over all-NaN slices give NaN; numpy's warning about it is expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(*args, **kwargs)


def reduce_losses(losses: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """Typical and best-of-ensemble curves, their references and relative errors.

    Args:
        losses: see :func:`loss_array`.

    Returns:
        A Dataset with dims ``sample`` (``typical``, ``ensemble``), ``problem``, ``method``,
        ``step``:

        * ``best_so_far`` ``(problem, method, seed, step)``: the monotone filter of the losses;
        * ``curve`` ``(sample, problem, method, step)``: T and E;
        * ``reference`` ``(sample, problem)``: best_typ and best_ens (minima over methods and
          all steps);
        * ``relative_error`` ``(sample, problem, method, step)``: ``curve / reference - 1``;
        * ``elements`` and ``large`` ``(problem,)``.
    """
    filtered = best_so_far(losses)
    seeds = filtered["seed"]
    random_starts = filtered.where(seeds >= 0)
    constant = filtered.sel(seed=CONSTANT_SEED) if CONSTANT_SEED in seeds.values else \
        xr.full_like(filtered.isel(seed=0), np.nan)
    cnn_median = _quiet(random_starts.median, "seed", skipna=True)
    is_cnn = filtered["method"] == CNN_METHOD
    typical = xr.where(is_cnn, cnn_median, constant.drop_vars("seed", errors="ignore"))
    typical = typical.transpose("problem", "method", "step")
    ensemble = _quiet(filtered.min, "seed", skipna=True).transpose("problem", "method", "step")
    curve = xr.concat([typical, ensemble], dim=xr.DataArray(list(SAMPLES), dims="sample"))
    curve = curve.assign_coords(sample=list(SAMPLES))
    reference = _quiet(curve.min, ("method", "step"), skipna=True)
    relative_error = curve / reference - 1.0
    sizes = elements(filtered["problem"])
    return xr.Dataset({
        "best_so_far": filtered,
        "curve": curve,
        "reference": reference,
        "relative_error": relative_error,
        "elements": sizes,
        "large": sizes >= LARGE_ELEMENTS,
    })


def at_step(values: xr.DataArray, step: int = EVALUATION_STEP) -> xr.DataArray:
    """``values`` at the logged evaluation ``step`` (index 0 the initial design).

    Raises:
        ValueError: the data has no such step (e.g. fewer steps were run: pass the smaller
            evaluation step, as ``--quick`` does).
    """
    steps = values["step"].values
    if step not in steps:
        raise ValueError(f"step {step} is not in the data (steps {steps.min()}..{steps.max()}); "
                         "evaluate at a step that was run")
    return values.sel(step=step, drop=True)


def comparable(reduction: xr.Dataset, step: int = EVALUATION_STEP) -> xr.Dataset:
    """``reduction`` on the problems where every method has a typical value at ``step``.

    A relative error is measured against the best method on its problem, so on a problem where
    some method has not run yet the others are compared with a weaker reference (a lone method
    is always "best", with error 0). The summary, the wins and the CDF of a benchmark that is
    partly done are therefore taken over these problems only; on the complete benchmark (every
    method on every task, as in the paper) this keeps every problem.
    """
    typical = at_step(reduction["curve"].sel(sample="typical", drop=True), step)
    keep = typical.notnull().all("method")
    return reduction.isel(problem=np.flatnonzero(keep.values))


def _group_masks(large: xr.DataArray, groups: Sequence[str]) -> xr.DataArray:
    """Bool ``(group, problem)``: which problems belong to each of ``groups``."""
    unknown = [group for group in groups if group not in GROUPS]
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; choose from {GROUPS}")
    rows = {"small": ~large, "large": large, "all": xr.ones_like(large, dtype=bool)}
    return xr.concat([rows[group] for group in groups], dim="group").assign_coords(
        group=list(groups))


def cdf(reduction: xr.Dataset, step: int = EVALUATION_STEP,
        thresholds: np.ndarray = CDF_THRESHOLDS,
        groups: Sequence[str] = ("small", "large")) -> xr.DataArray:
    """Fraction of a group's problems whose relative error at ``step`` is ``< threshold``.

    NaN (a method not run on a problem) counts as not below; the denominator is the number of
    problems of the group in the data.

    Returns:
        float64 ``(sample, group, method, threshold)``.
    """
    errors = at_step(reduction["relative_error"], step)
    thresholds = xr.DataArray(np.asarray(thresholds, np.float64), dims="threshold",
                              coords={"threshold": np.asarray(thresholds, np.float64)})
    below = (errors < thresholds)  # NaN < x is False
    masks = _group_masks(reduction["large"], groups)
    counts = (below & masks).sum("problem")
    return (counts / masks.sum("problem")).transpose("sample", "group", "method", "threshold")


def summary(reduction: xr.Dataset, step: int = EVALUATION_STEP,
            groups: Sequence[str] = GROUPS) -> xr.Dataset:
    """Mean relative error at ``step`` over the problems of each group (the paper's table).

    The mean is arithmetic over the problems that have a value (NaN skipped); ``tasks`` is how
    many that are.

    Returns:
        Dataset of ``mean_relative_error`` (float64) and ``tasks`` (int64), each
        ``(sample, group, method)``.
    """
    errors = at_step(reduction["relative_error"], step)
    masks = _group_masks(reduction["large"], groups)
    present = errors.notnull() & masks
    tasks = present.sum("problem")
    total = errors.where(present, 0.0).sum("problem")
    mean = (total / tasks).where(tasks > 0)
    return xr.Dataset({"mean_relative_error": mean.transpose("sample", "group", "method"),
                       "tasks": tasks.transpose("sample", "group", "method").astype(np.int64)})


def win_counts(reduction: xr.Dataset, step: int = EVALUATION_STEP,
               groups: Sequence[str] = GROUPS) -> xr.DataArray:
    """How many problems of each group each method wins at ``step``.

    A method wins a problem when its relative error there is the smallest of the methods that
    have a value (ties: every tied method wins); a problem where no method has a value counts
    for none.

    Returns:
        int64 ``(sample, group, method)``.
    """
    errors = at_step(reduction["relative_error"], step)
    best = _quiet(errors.min, "method", skipna=True)
    wins = (errors == best) & errors.notnull()
    masks = _group_masks(reduction["large"], groups)
    return (wins & masks).sum("problem").transpose("sample", "group", "method").astype(np.int64)


def fraction_below(reduction: xr.Dataset, taus: Sequence[float] = FRACTION_TAUS,
                   max_step: int = EVALUATION_STEP,
                   groups: Sequence[str] = ("small", "large")) -> xr.DataArray:
    """Fraction of a group's problems with relative error ``< tau`` against step (<= max_step).

    The notebook's figure 7(b); NaN counts as not below.

    Returns:
        float64 ``(sample, group, method, tau, step)``.
    """
    errors = reduction["relative_error"].sel(step=reduction["step"] <= max_step)
    taus = xr.DataArray(np.asarray(taus, np.float64), dims="tau",
                        coords={"tau": np.asarray(taus, np.float64)})
    masks = _group_masks(reduction["large"], groups)
    counts = ((errors < taus) & masks).sum("problem")
    return (counts / masks.sum("problem")).transpose("sample", "group", "method", "tau", "step")


def typical_seeds(reduction: xr.Dataset, step: int = EVALUATION_STEP) -> dict[tuple[str, str],
                                                                          tuple[int, ...]]:
    """The seeds behind each typical value at ``step``: ``{(problem, method): seeds}``.

    ``cnn-lbfgs``: the seeds >= 0 whose best-so-far loss at ``step`` is a number; pixel methods:
    ``(-1,)`` when the constant-start run has a value there, else ``()``. Every
    ``(problem, method)`` of the data is a key, in the data's order.
    """
    filtered = at_step(reduction["best_so_far"], step)
    seeds = [int(seed) for seed in filtered["seed"].values]
    has_value = filtered.notnull().transpose("problem", "method", "seed").values
    result = {}
    for i, problem in enumerate(filtered["problem"].values):
        for j, method in enumerate(filtered["method"].values):
            chosen = [seed for k, seed in enumerate(seeds) if has_value[i, j, k]
                      and (seed >= 0 if method == CNN_METHOD else seed == CONSTANT_SEED)]
            result[(str(problem), str(method))] = tuple(sorted(chosen))
    return result


def consolidate(curves: Mapping[tuple[str, str, int], Sequence[float]], *,
                elapsed: Mapping[tuple[str, str, int], float] | None = None,
                problems: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                length: int | None = None) -> xr.Dataset:
    """The consolidated losses (the paper's ``all_losses.nc``) from one curve per run.

    Args:
        curves: ``{(problem, method, seed): loss per logged evaluation}``; a step of every method
            is one entry of ``OptimizationResult.loss_per_evaluation`` (L-BFGS: function
            evaluations, line-search trials included; MMA: objective evaluations; OC: the design
            before each update, then the final one).
        elapsed: ``{(problem, method, seed): seconds}`` of the runs (optional).
        problems: the ``problem`` labels in order (default: catalogue order of those present,
            then any others sorted).
        seeds: the ``seed`` labels (default: those present, sorted).
        length: the number of step slots (default: the longest curve); longer curves are an
            error.

    Returns:
        Dataset with ``loss`` ``(problem, method, seed, step)`` (NaN where a run has no value),
        ``elapsed_time`` ``(problem, method, seed)`` seconds (NaN where not given), and the
        ``method`` dim in the paper's order.
    """
    unknown = sorted({method for _, method, _ in curves} - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; the paper's are {METHODS}")
    present = {problem for problem, _, _ in curves}
    if problems is None:
        from solvers.problems import TASKS
        order = [task.name for task in TASKS if task.name in present]
        problems = order + sorted(present - set(order))
    seeds = sorted({seed for _, _, seed in curves}) if seeds is None else list(seeds)
    longest = max((len(curve) for curve in curves.values()), default=0)
    length = longest if length is None else int(length)
    if longest > length:
        raise ValueError(f"a curve has {longest} entries, more than length={length} step slots")
    index = {name: i for i, name in enumerate(problems)}
    seed_index = {seed: i for i, seed in enumerate(seeds)}
    loss = np.full((len(problems), len(METHODS), len(seeds), length), np.nan)
    times = np.full(loss.shape[:3], np.nan)
    for (problem, method, seed), curve in curves.items():
        if problem not in index or seed not in seed_index:
            raise ValueError(f"run {problem}/{method}/seed{seed} is outside the given problems "
                             "or seeds")
        where = (index[problem], METHODS.index(method), seed_index[seed])
        values = np.asarray(curve, dtype=np.float64).ravel()
        loss[where][:values.size] = values
        if elapsed is not None and (problem, method, seed) in elapsed:
            times[where] = float(elapsed[(problem, method, seed)])
    coords = {"problem": list(problems), "method": list(METHODS), "seed": seeds,
              "step": np.arange(length)}
    return xr.Dataset({"loss": (_DIMS, loss), "elapsed_time": (_DIMS[:3], times)},
                      coords=coords)


def cpu_hours(dataset: xr.Dataset) -> xr.DataArray:
    """CPU-hours spent per method and size group: the sum of ``elapsed_time`` / 3600.

    Each run is single-threaded, so its wall time is its CPU time.

    Returns:
        float64 ``(method, group)`` with groups ``small``, ``large`` (0 where nothing ran).
    """
    hours = dataset["elapsed_time"].fillna(0.0).sum("seed") / 3600.0
    masks = _group_masks(size_groups(dataset["problem"]), ("small", "large"))
    return (hours * masks).sum("problem").transpose("method", "group")


def projected_cpu_hours_per_seed(dataset: xr.Dataset) -> float:
    """CPU-hours of one seed of all 116 tasks (four runs per task), from the runs done.

    The mean time of the runs of each method and size group, times the tasks of that group in
    the catalogue (62 small, 54 large), summed. NaN when some method and group has no timed run.
    """
    from solvers.problems import TASKS

    times = dataset["elapsed_time"]
    large = size_groups(dataset["problem"])
    counts = {"small": sum(t.width * t.height < LARGE_ELEMENTS for t in TASKS),
              "large": sum(t.width * t.height >= LARGE_ELEMENTS for t in TASKS)}
    total = 0.0
    for group, members in (("small", ~large), ("large", large)):
        chosen = times.sel(problem=members.values)
        for method in METHODS:
            values = chosen.sel({"method": method}).values
            values = values[np.isfinite(values)]
            if values.size == 0:
                return math.nan
            total += float(values.mean()) * counts[group] / 3600.0
    return total
