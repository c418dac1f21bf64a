"""A study as data: the frozen, validated :class:`Study` spec and its expansion into :class:`Cell`.

A study is the grid ``problems x models x penalties x methods x option variants x steps x seeds``
with per-cell overrides (the thesis's step sizes per test code, the paper's pixel starts), a list of
exclusions (e.g. the CNN at the constant-start seed -1) and an optional tuning stage
(:mod:`studies.study.tune`). Specs are small TOML, JSON or Python files (:func:`load_study`)::

    name = "tiny"
    problems = ["mbb_beam_96x32_0.5", {name = "mbb_beam", size = [16, 8], volume_fraction = 0.5,
                                       label = "A"}]
    models = ["pixel"]
    penalties = [3.0]
    seeds = [0, 1]
    steps = [10]
    [[methods]]
    name = "LBFGS"              # the label of the method axis
    optimizer = "lbfgs"         # a method of solvers.optimize
    options = {memory = 10}
    [[overrides]]               # later overrides win; match values may be lists ("any of")
    match = {problem = "A", method = "GD"}
    options = {learning_rate = 1e-2}

Conventions:
    * A cell's **key** is the first 16 hex digits of the SHA-256 of the canonical JSON (sorted
      keys, no spaces) of what determines its computation (:meth:`Cell.computation`): the problem
      definition, model and model options, penalty, filter radius, optimizer, options, seed and
      steps. Labels are not part of it, so the same computation always has the same key, and two
      cells of one study with the same key are a duplicate (an error).
    * Seed ``-1`` is the paper's constant start of a pixel run (``RunConfig.seed = None``); the
      CNN needs a seed >= 0.
    * ``steps`` is the method's own budget unit (evaluations for L-BFGS-type methods, iterations
      otherwise); a method entry may give its own ``steps`` and ``seeds`` instead of the grid's.
    * ``model_options`` (per model kind, and per cell through overrides) go unchanged to the
      model of :func:`studies.runner.build_objective`: the CNN's architecture and precision, the
      pixel model's start (e.g. the paper's pixel runs of seed s starting from ``CNNModel(s)``'s
      output), whatever the models accept; the solvers check them when the cell runs.
    * Problems named ``toy/quadratic`` or ``toy/rosenbrock`` are cheap analytic objectives
      (:mod:`studies.study.toy`) run through the same code path, for tests and demonstrations.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import numbers
import re
import reprlib
import runpy
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from solvers.names import did_you_mean
from solvers.result import RecordOptions
from studies.jsontext import loads_json, loads_toml

__all__ = [
    "CURVES",
    "MAX_GRID_CELLS",
    "Cell",
    "MethodEntry",
    "Override",
    "ProblemEntry",
    "Study",
    "StudyError",
    "TuneSpec",
    "canonical_json",
    "expand",
    "load_study",
]

CURVES = ("evaluation", "iterate")
MODELS = ("cnn", "pixel")
_MATCH_KEYS = ("problem", "model", "penal", "method", "optimizer", "variant", "seed", "steps")
_OVERRIDE_FIELDS = ("options", "model_options", "steps", "filter_radius")
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxlist, _SHORT_REPR.maxdict = 3, 8, 8
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 60
#: The most cells a study's grid may have before exclusions. Every cell writes its own record
#: file that ``status`` and ``report`` read, and expanding the grid takes about 0.1 ms per cell,
#: so a larger grid (usually a mistyped range of seeds) is refused before any work.
MAX_GRID_CELLS = 100_000


class StudyError(ValueError):
    """A spec that cannot be run as written (the message is one line saying what and how)."""


def _shown(value: Any) -> str:
    """``repr(value)`` cut to a line: an error echoes what it got, not a megabyte of it."""
    return _SHORT_REPR.repr(value)


def canonical_json(value: Any) -> str:
    """Sorted-key JSON without spaces: the text whose hash is a key."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _plain(value: Any, where: str) -> Any:
    """A JSON-normalized copy (tuples become lists; rejects what JSON cannot hold)."""
    try:
        return loads_json(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise StudyError(f"{where}: {error} (use numbers, strings, booleans, lists, tables)") \
            from None


def _check_keys(data: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    for key in data:
        if key not in allowed:
            hint = did_you_mean(key, allowed, n=1)
            hint = f"{hint} " if hint else ""
            raise StudyError(f"{where}: unknown key {key!r}; {hint}valid keys: "
                             f"{', '.join(allowed)}")


def _int_list(value: Any, where: str, *, low: int) -> tuple[int, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in values:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < low:
            raise StudyError(f"{where} must hold integers >= {low}; got {_shown(item)}")
        out.append(int(item))
    return tuple(out)


def _float_list(value: Any, where: str) -> tuple[float, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in values:
        if isinstance(item, bool) or not isinstance(item, numbers.Real) \
                or not math.isfinite(item) or item <= 0:
            raise StudyError(f"{where} must hold finite positive numbers; got {_shown(item)}")
        out.append(float(item))
    return tuple(out)


def _table(value: Any, where: str) -> dict:
    """``value`` as a dict, or a one-line :class:`StudyError` naming ``where``."""
    if not isinstance(value, Mapping):
        raise StudyError(f"{where}: expected a table {{key = value, ...}}; got {_shown(value)}")
    return dict(value)


def _finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and \
        math.isfinite(value)


def _seconds(value: Any, where: str) -> float:
    if not _finite_number(value) or value < 0:
        raise StudyError(f"{where} must be a number of seconds >= 0 (0: never); got "
                         f"{_shown(value)}")
    return float(value)


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise StudyError(f"{where} must be true or false; got {_shown(value)}")
    return value


def _nonempty(values: Sequence[Any], where: str) -> None:
    if not values:
        raise StudyError(f"{where} is empty: the grid has no cells (give at least one value)")


# -- parts of a study ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProblemEntry:
    """One problem of the grid.

    Attributes:
        label: the name on the problem axis (default: the task name).
        definition: ``problem, family, width, height, volume_fraction, problem_params`` of a
            :class:`~studies.store.RunConfig`, or ``{"toy": kind, "size": n, "delay": s}`` for a
            toy objective.
    """

    label: str
    definition: Mapping[str, Any]

    @property
    def is_toy(self) -> bool:
        return "toy" in self.definition

    @classmethod
    def parse(cls, entry: Any) -> ProblemEntry:
        from studies.runner import ConfigurationError, problem_fields

        from .toy import TOY_KINDS, toy_definition

        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise StudyError(f"a problem is a task name or a table {{name, size, "
                             f"volume_fraction, label, params}}; got {_shown(entry)}")
        if "definition" in entry:  # the resolved form written by Study.to_dict
            _check_keys(entry, ("label", "definition"), "problem")
            return cls(str(entry["label"]), _plain(dict(entry["definition"]), "problem"))
        _check_keys(entry, ("name", "size", "volume_fraction", "label", "params", "delay"),
                    "problem")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise StudyError(f"a problem needs a name; got {_shown(entry)}")
        if name.startswith("toy/"):
            kind = name[len("toy/"):]
            if kind not in TOY_KINDS:
                raise StudyError(f"unknown toy problem {name!r}; known: "
                                 f"{', '.join('toy/' + k for k in TOY_KINDS)}")
            definition = toy_definition(kind, entry.get("size", 8), entry.get("delay", 0.0))
            return cls(str(entry.get("label", name)), definition)
        size = entry.get("size")
        if size is not None:
            if not (isinstance(size, (list, tuple)) and len(size) == 2):
                raise StudyError(f"problem {name!r}: size must be [width, height]; "
                                 f"got {_shown(size)}")
            size = tuple(_int_list(list(size), f"problem {name!r} size", low=1))
        fraction = entry.get("volume_fraction")
        if fraction is not None and not _finite_number(fraction):
            raise StudyError(f"problem {name!r}: volume_fraction must be a number in (0, 1]; "
                             f"got {_shown(fraction)}")
        try:
            fields = problem_fields(name, size, fraction)
        except ConfigurationError as error:
            raise StudyError(str(error).replace("--size WxH", "size = [W, H]")
                             .replace("--volfrac F", "volume_fraction = F")
                             .replace("--volfrac", "volume_fraction")
                             .replace("--size", "size")) from None
        params = _table(entry.get("params") or {}, f"problem {name!r} params")
        if params:
            fields["problem_params"] = {**fields["problem_params"], **params}
        return cls(str(entry.get("label", fields["problem"])), _plain(fields, f"problem {name}"))


@dataclasses.dataclass(frozen=True)
class MethodEntry:
    """One method of the grid: a label, an optimizer of ``solvers.optimize`` and its options.

    Attributes:
        name: the label on the method axis, e.g. ``"HD_M1"``.
        optimizer: the ``solvers.optimize`` method, e.g. ``"hd"``.
        options: its options (e.g. ``{"memory": 1}``).
        steps: budgets replacing the grid's ``steps`` for this method (empty: the grid's).
        seeds: seeds replacing the grid's ``seeds`` (empty: the grid's).
        models: the models this method runs on (empty: all of the grid's).
        curve: which history is the method's loss curve: ``"evaluation"`` or ``"iterate"``
            (default: its budget unit).
    """

    name: str
    optimizer: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    steps: tuple[int, ...] = ()
    seeds: tuple[int, ...] = ()
    models: tuple[str, ...] = ()
    curve: str | None = None

    @classmethod
    def parse(cls, entry: Any) -> MethodEntry:
        if isinstance(entry, str):
            entry = {"name": entry.upper(), "optimizer": entry}
        if not isinstance(entry, Mapping):
            raise StudyError(f"a method is an optimizer name or a table {{name, optimizer, "
                             f"options, steps, seeds, models, curve}}; got {_shown(entry)}")
        _check_keys(entry, ("name", "optimizer", "options", "steps", "seeds", "models", "curve"),
                    "method")
        optimizer = entry.get("optimizer")
        name = entry.get("name", optimizer)
        if not isinstance(optimizer, str) or not isinstance(name, str) or not name:
            raise StudyError(f"a method needs an optimizer name; got {_shown(dict(entry))}")
        _check_method(optimizer, entry.get("options", {}), f"method {name!r}")
        models = tuple(entry.get("models", ()))
        for model in models:
            if model not in MODELS:
                raise StudyError(f"method {name!r}: unknown model {model!r}; known: "
                                 f"{', '.join(MODELS)}")
        curve = entry.get("curve")
        if curve is not None and curve not in CURVES:
            raise StudyError(f"method {name!r}: curve must be one of {CURVES}; "
                             f"got {_shown(curve)}")
        return cls(name, optimizer, _plain(dict(entry.get("options", {})), f"method {name}"),
                   _int_list(entry.get("steps", []), f"method {name!r} steps", low=1),
                   _int_list(entry.get("seeds", []), f"method {name!r} seeds", low=-1),
                   models, curve)


def _check_tuned_option(method: MethodEntry, option: str) -> None:
    from solvers.optim.registry import method_spec

    options_class = method_spec(method.optimizer).options_class
    valid = [field.name for field in dataclasses.fields(options_class)]
    if option not in valid:
        raise StudyError(f"tune: method {method.name!r} ({method.optimizer}) has no option "
                         f"{option!r} to tune; its options: {', '.join(valid)}")


def _check_method(optimizer: str, options: Mapping[str, Any], where: str) -> None:
    from solvers.optim.options import make_options

    if not isinstance(options, Mapping):
        raise StudyError(f"{where}: options must be a table; got {_shown(options)}")
    try:
        make_options(optimizer, dict(options))
    except (TypeError, ValueError) as error:
        raise StudyError(f"{where}: {error}") from None


@dataclasses.dataclass(frozen=True)
class Override:
    """Settings for the cells that match (per-cell overrides, e.g. a step size per test code).

    Attributes:
        match: axis name -> value or list of values (any of); keys among ``problem, model, penal,
            method, optimizer, variant, seed, steps``.
        settings: what to set: ``options`` and ``model_options`` (merged into the cell's),
            ``steps``, ``filter_radius``.
    """

    match: Mapping[str, Any]
    settings: Mapping[str, Any]

    @classmethod
    def parse(cls, entry: Any, where: str = "override") -> Override:
        if not isinstance(entry, Mapping):
            raise StudyError(f"{where}: expected a table {{match = {{...}}, options = {{...}}}}; "
                             f"got {_shown(entry)}")
        _check_keys(entry, ("match", *_OVERRIDE_FIELDS), where)
        match = _table(entry.get("match", {}), f"{where} match")
        _check_keys(match, _MATCH_KEYS, f"{where} match")
        settings = {k: v for k, v in entry.items() if k != "match"}
        if "steps" in settings:
            settings["steps"] = _int_list(settings["steps"], f"{where} steps", low=1)[0]
        if "filter_radius" in settings:
            settings["filter_radius"] = _float_list(settings["filter_radius"],
                                                    f"{where} filter_radius")[0]
        return cls(_plain(dict(match), where), _plain(settings, where))

    def matches(self, axes: Mapping[str, Any]) -> bool:
        return _matches(self.match, axes)


def _matches(match: Mapping[str, Any], axes: Mapping[str, Any]) -> bool:
    for key, wanted in match.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if axes[key] not in options:
            return False
    return True


@dataclasses.dataclass(frozen=True)
class TuneSpec:
    """The hyperopt stage (:mod:`studies.study.tune`): TPE over ``log10(option)`` per group.

    A group is one ``(problem, model, penal, method, variant)`` of the grid. Its trials run the
    group's cell with ``option = 10 ** x`` for each tuning seed; the trial's loss is the median
    over the seeds of the final loss (+inf for a failed or non-finite run; a trial whose median is
    not finite is a failed trial).

    Attributes:
        methods: the method labels to tune.
        seeds: the tuning seeds.
        trials: trials per group.
        steps: the tuning budget (None: the cell's steps).
        option: the option tuned (on a log10 scale).
        ranges: model -> ``(low, high)`` of log10(option); the thesis: ``[-6, 0.3]`` for the CNN,
            ``[-3, 1]`` for pixels.
        q: the quantization of ``hp.quniform``.
        random_state: the fixed seed of TPE.
        overrides: per-group ``steps`` / ``seeds`` / ``trials`` (e.g. Table B.1's budgets).
    """

    methods: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    trials: int = 30
    steps: int | None = None
    option: str = "learning_rate"
    ranges: Mapping[str, tuple[float, float]] = dataclasses.field(
        default_factory=lambda: {"cnn": (-6.0, 0.3), "pixel": (-3.0, 1.0)})
    q: float = 0.1
    random_state: int = 0
    overrides: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def parse(cls, entry: Any) -> TuneSpec:
        if not isinstance(entry, Mapping):
            raise StudyError(f"tune: expected a table; got {_shown(entry)}")
        allowed = [f.name for f in dataclasses.fields(cls)]
        _check_keys(entry, allowed, "tune")
        methods = entry.get("methods")
        if not isinstance(methods, list) or not methods or \
                not all(isinstance(m, str) for m in methods):
            raise StudyError(f"tune.methods must list the method labels to tune (e.g. "
                             f"[\"GD\"]); got {_shown(methods)}")
        ranges = dict(cls.__dataclass_fields__["ranges"].default_factory())
        ranges_entry = entry.get("ranges", {})
        if not isinstance(ranges_entry, Mapping):
            raise StudyError(f"tune.ranges: expected a table {{cnn = [low, high], ...}}; got "
                             f"{_shown(ranges_entry)}")
        for model, bounds in ranges_entry.items():
            if model not in MODELS or not isinstance(bounds, (list, tuple)) or \
                    len(bounds) != 2 or not all(_finite_number(b) for b in bounds) or \
                    not bounds[0] < bounds[1]:
                raise StudyError(f"tune.ranges: expected {{cnn = [low, high], pixel = [low, "
                                 f"high]}} with finite low < high; got {model} = "
                                 f"{_shown(bounds)}")
            ranges[model] = (float(bounds[0]), float(bounds[1]))
        overrides = []
        for item in entry.get("overrides", []):
            if not isinstance(item, Mapping):
                raise StudyError(f"tune.overrides: expected tables; got {_shown(item)}")
            _check_keys(item, ("match", "steps", "seeds", "trials"), "tune override")
            _check_keys(_table(item.get("match", {}), "tune override match"), _MATCH_KEYS,
                        "tune override match")
            item = dict(_plain(dict(item), "tune override"))
            if "steps" in item:
                item["steps"] = _int_list(item["steps"], "tune override steps", low=1)[0]
            if "trials" in item:
                item["trials"] = _int_list(item["trials"], "tune override trials", low=1)[0]
            if "seeds" in item:
                item["seeds"] = list(_int_list(item["seeds"], "tune override seeds", low=-1))
                _nonempty(item["seeds"], "tune override seeds")
            overrides.append(item)
        q = entry.get("q", 0.1)
        if not _finite_number(q) or not q > 0:
            raise StudyError(f"tune.q must be a finite number > 0; got {_shown(q)}")
        q = float(q)
        steps = entry.get("steps")
        return cls(
            methods=tuple(methods),
            seeds=_int_list(entry.get("seeds", [0, 1, 2]), "tune.seeds", low=-1),
            trials=_int_list(entry.get("trials", 30), "tune.trials", low=1)[0],
            steps=None if steps is None else _int_list(steps, "tune.steps", low=1)[0],
            option=str(entry.get("option", "learning_rate")), ranges=ranges, q=q,
            random_state=_int_list(entry.get("random_state", 0), "tune.random_state", low=0)[0],
            overrides=tuple(overrides))

    def for_group(self, axes: Mapping[str, Any]) -> tuple[int | None, tuple[int, ...], int]:
        """``(steps, seeds, trials)`` of the group with these axes (overrides applied)."""
        steps, seeds, trials = self.steps, self.seeds, self.trials
        for item in self.overrides:
            if _matches(item.get("match", {}), axes):
                steps = item.get("steps", steps)
                seeds = tuple(item.get("seeds", seeds))
                trials = item.get("trials", trials)
        return steps, seeds, trials

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self), "tune")


# -- the study -------------------------------------------------------------------------------------

_STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_STUDY_KEYS = ("name", "description", "problems", "models", "penalties", "seeds", "steps",
               "methods", "options", "model_options", "overrides", "exclude", "filter_radius",
               "record", "checkpoint_every", "checkpoint_seconds", "keep_runs", "report_steps",
               "tune")


@dataclasses.dataclass(frozen=True)
class Study:
    """A validated study spec (build it with :meth:`from_dict` or :func:`load_study`).

    Attributes:
        name: a short name.
        problems, models, penalties, methods, variants, steps, seeds: the grid's axes;
            ``variants`` are option sets merged into every method's options (each may have a
            ``name``, used in the method label when there are several).
        model_options: model kind -> options of every cell of that model (e.g. the CNN's
            ``upsampling``).
        overrides: per-cell settings, applied in order.
        exclude: match tables; matching cells are dropped (e.g. ``{model = "cnn", seed = -1}``).
        filter_radius: the cone filter radius of every cell (overridable).
        record: what the optimizer keeps in the (git-ignored) run files.
        checkpoint_every: write the cell's run file every this many iterations (0: never).
        checkpoint_seconds: ... or when this many seconds passed since the last one (0: never).
        keep_runs: keep the run file of a finished cell (otherwise only its compact record).
        report_steps: the steps at which reports tabulate losses (empty: the last).
        tune: the tuning stage, or None.
        description: free text.
    """

    name: str
    problems: tuple[ProblemEntry, ...]
    models: tuple[str, ...]
    penalties: tuple[float, ...]
    methods: tuple[MethodEntry, ...]
    steps: tuple[int, ...]
    seeds: tuple[int, ...]
    variants: tuple[Mapping[str, Any], ...] = ({},)
    model_options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    exclude: tuple[Mapping[str, Any], ...] = ()
    filter_radius: float = 2.0
    record: RecordOptions = RecordOptions(designs_at=(0, -1), pairs=False)
    checkpoint_every: int = 25
    checkpoint_seconds: float = 300.0
    keep_runs: bool = True
    report_steps: tuple[int, ...] = ()
    tune: TuneSpec | None = None
    description: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Study:
        """Validate a spec given as a mapping (the parsed TOML/JSON).

        Raises:
            StudyError: an unknown key, problem, method, option or model; an empty axis; a
                budget <= 0 (one line naming the entry).
        """
        if not isinstance(data, Mapping):
            raise StudyError(f"a study spec is a table; got {type(data).__name__}")
        _check_keys(data, _STUDY_KEYS, "study")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise StudyError("the study needs a name (name = \"...\")")
        if not _STUDY_NAME.fullmatch(name):
            raise StudyError(f"study name {name!r}: it names the default results folder "
                             f"results/studies/<name>, so it must be letters, digits, '.', '_' "
                             f"or '-', starting with a letter or digit (e.g. \"mbb-small\")")
        for axis in ("problems", "methods", "seeds", "steps"):
            if axis not in data:
                raise StudyError(f"study {name!r}: missing {axis} (the grid needs every axis)")
        problems = tuple(ProblemEntry.parse(p) for p in _listed(data["problems"]))
        models = tuple(_listed(data.get("models", ["pixel"])))
        for model in models:
            if model not in MODELS:
                raise StudyError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
        methods = tuple(MethodEntry.parse(m) for m in _listed(data["methods"]))
        variants = tuple(_plain(_table(v, "options (a list of option tables)"),
                                "options variant") for v in _listed(data.get("options", [{}])))
        model_options = _plain(_table(data.get("model_options", {}), "model_options"),
                               "model_options")
        _check_keys(model_options, MODELS, "model_options")
        for model, options in model_options.items():
            _table(options, f"model_options.{model}")
        record = _table(data.get("record", {}), "record")
        _check_keys(record, [f.name for f in dataclasses.fields(RecordOptions)], "record")
        try:
            record_options = RecordOptions(**{"designs_at": (0, -1), "pairs": False, **record})
        except (TypeError, ValueError) as error:
            raise StudyError(f"record: {error}") from None
        exclude = tuple(_plain(_table(e, "exclude (a list of match tables)"), "exclude")
                        for e in _listed(data.get("exclude", [])))
        for item in exclude:
            _check_keys(item, _MATCH_KEYS, "exclude")
        tune = data.get("tune")
        study = cls(
            name=name.strip(), problems=problems, models=models,
            penalties=_float_list(data.get("penalties", [3.0]), "penalties"),
            methods=methods, steps=_int_list(data["steps"], "steps", low=1),
            seeds=_int_list(data["seeds"], "seeds", low=-1), variants=variants,
            model_options=model_options,
            overrides=tuple(Override.parse(o, f"override {i}") for i, o in
                            enumerate(_listed(data.get("overrides", [])))),
            exclude=exclude,
            filter_radius=_float_list(data.get("filter_radius", 2.0), "filter_radius")[0],
            record=record_options,
            checkpoint_every=_int_list(data.get("checkpoint_every", 25), "checkpoint_every",
                                       low=0)[0],
            checkpoint_seconds=_seconds(data.get("checkpoint_seconds", 300.0),
                                        "checkpoint_seconds"),
            keep_runs=_flag(data.get("keep_runs", True), "keep_runs"),
            report_steps=_int_list(data.get("report_steps", []), "report_steps", low=0),
            tune=None if tune is None else TuneSpec.parse(tune),
            description=str(data.get("description", "")))
        for axis in ("problems", "models", "penalties", "methods", "steps", "seeds", "variants"):
            _nonempty(getattr(study, axis), axis)
        labels = [m.name for m in methods]
        if len(set(labels)) != len(labels):
            raise StudyError(f"duplicate method name in {labels}: give each method a unique name")
        if study.tune is not None:
            unknown = sorted(set(study.tune.methods) - set(labels))
            if unknown:
                raise StudyError(f"tune.methods names unknown methods {unknown}; the study's "
                                 f"methods are {labels}")
            for method in methods:
                if method.name in study.tune.methods:
                    _check_tuned_option(method, study.tune.option)
        return study

    def _match_values(self) -> dict[str, list[Any]]:
        """The values each match key (:data:`_MATCH_KEYS`) can take in this grid."""
        variants = ([str(v.get("name", f"v{i}")) for i, v in enumerate(self.variants)]
                    if len(self.variants) > 1 else [""])
        return {"problem": [p.label for p in self.problems], "model": list(self.models),
                "penal": list(self.penalties), "method": [m.name for m in self.methods],
                "optimizer": list(dict.fromkeys(m.optimizer for m in self.methods)),
                "variant": variants,
                "seed": sorted({*self.seeds, *(s for m in self.methods for s in m.seeds)}),
                "steps": sorted({*self.steps, *(s for m in self.methods for s in m.steps)})}

    def check_matches(self) -> Study:
        """Refuse an override, exclusion or tuning override whose match names a value the grid
        does not have: it could never apply (a mistyped label would silently change nothing,
        or compute cells meant to be excluded). :func:`load_study` applies it to the specs
        people write; generated specs (the reproductions) may carry a table of overrides
        broader than their grid on purpose (every test code's step, whatever the grid holds).

        Returns:
            The study itself.
        """
        values = self._match_values()
        entries = [*((f"override {i}", o.match) for i, o in enumerate(self.overrides)),
                   *((f"exclude {i}", e) for i, e in enumerate(self.exclude)),
                   *((f"tune override {i}", o.get("match", {})) for i, o in
                     enumerate(self.tune.overrides if self.tune is not None else ()))]
        for where, match in entries:
            for key, wanted in match.items():
                for value in (wanted if isinstance(wanted, list) else [wanted]):
                    if isinstance(value, bool) or value not in values[key]:
                        raise StudyError(
                            f"{where}: match {key} = {_shown(value)} is not in this study's "
                            f"grid, so the entry could never apply; its {key} values are "
                            f"{_shown(values[key])}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The canonical spec (inverse of :meth:`from_dict`, problems resolved)."""
        return _plain({
            "name": self.name, "description": self.description,
            "problems": [{"label": p.label, "definition": p.definition} for p in self.problems],
            "models": list(self.models), "penalties": list(self.penalties),
            "methods": [dataclasses.asdict(m) for m in self.methods],
            "steps": list(self.steps), "seeds": list(self.seeds),
            "options": list(self.variants), "model_options": self.model_options,
            "overrides": [{"match": o.match, **o.settings} for o in self.overrides],
            "exclude": list(self.exclude), "filter_radius": self.filter_radius,
            "record": dataclasses.asdict(self.record),
            "checkpoint_every": self.checkpoint_every,
            "checkpoint_seconds": self.checkpoint_seconds, "keep_runs": self.keep_runs,
            "report_steps": list(self.report_steps),
            "tune": None if self.tune is None else self.tune.to_dict()}, "study")

    @property
    def grid_size(self) -> int:
        """The number of cells of the grid before exclusions (each method on its own models,
        budgets and seeds); :func:`expand` refuses more than :data:`MAX_GRID_CELLS`."""
        per_model = sum(len(m.steps or self.steps) * len(m.seeds or self.seeds)
                        * sum(1 for model in self.models if not m.models or model in m.models)
                        for m in self.methods)
        return len(self.problems) * len(self.penalties) * len(self.variants) * per_model

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical spec: a results folder belongs to one fingerprint."""
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def load_study(path: str | Path) -> Study:
    """Read a spec from a ``.toml``, ``.json`` or ``.py`` file (the latter defines ``STUDY``, a
    :class:`Study` or a mapping, and is executed: load only Python specs you trust).

    Raises:
        StudyError: unreadable file, unknown suffix, a syntax error, an invalid spec, or an
            override or exclusion that names a value its grid lacks (:meth:`Study.check_matches`).
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"no such study spec: {path}")
    try:
        if path.suffix == ".toml":
            data = loads_toml(path.read_text(encoding="utf-8"))
        elif path.suffix == ".json":
            data = loads_json(path.read_text(encoding="utf-8"))
        elif path.suffix == ".py":
            data = runpy.run_path(str(path)).get("STUDY")
            if data is None:
                raise StudyError(f"{path} defines no STUDY (a Study or a dict)")
            if isinstance(data, Study):
                return data.check_matches()
        else:
            raise StudyError(f"{path}: a study spec is a .toml, .json or .py file")
    except UnicodeDecodeError as error:
        raise StudyError(f"{path} is not UTF-8 text (byte {error.start}: "
                         f"{error.object[error.start:error.start + 1]!r}); a spec is a TOML, "
                         f"JSON or Python text file") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, SyntaxError) as error:
        raise StudyError(f"{path}: {' '.join(str(error).split())}") from None
    return Study.from_dict(data).check_matches()


# -- cells -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a study: a point of the grid with its overrides applied.

    Attributes:
        problem, model, penal, method, seed: the coordinates (labels) of the cell.
        variant: the name of its option variant ("" when the grid has one).
        problem_definition: see :class:`ProblemEntry`.
        optimizer, options: the ``solvers.optimize`` method and options.
        model_options: model keyword options (``CNNConfig`` fields, pixel start, precision).
        steps: the budget, in the method's unit.
        filter_radius: the cone filter radius.
        curve: the history that is the cell's loss curve (``"evaluation"`` or ``"iterate"``).
        stage: ``"evaluate"`` or ``"tune"`` (trial cells of the tuning stage).
    """

    problem: str
    model: str
    penal: float
    method: str
    seed: int
    steps: int
    problem_definition: Mapping[str, Any]
    optimizer: str
    options: Mapping[str, Any]
    model_options: Mapping[str, Any]
    filter_radius: float
    curve: str
    variant: str = ""
    stage: str = "evaluate"

    def computation(self) -> dict[str, Any]:
        """What determines the cell's result (the key hashes this)."""
        return {"problem": self.problem_definition, "model": self.model,
                "model_options": self.model_options, "penal": self.penal,
                "filter_radius": self.filter_radius, "optimizer": self.optimizer,
                "options": self.options, "seed": self.seed, "steps": self.steps}

    @property
    def key(self) -> str:
        return hashlib.sha256(canonical_json(self.computation()).encode()).hexdigest()[:16]

    @property
    def coordinates(self) -> tuple[str, str, float, str, int]:
        """``(problem, model, penal, method, seed)``: unique within a study."""
        return (self.problem, self.model, self.penal, self.method, self.seed)

    @property
    def label(self) -> str:
        return (f"{self.problem}/{self.model}/p{self.penal:g}/{self.method}/seed{self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return _plain({**dataclasses.asdict(self), "key": self.key}, "cell")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def run_config(self, record: RecordOptions):
        """The :class:`~studies.store.RunConfig` of a (non-toy) cell."""
        from studies.store import RunConfig

        return RunConfig(**self.problem_definition, model=self.model, optimizer=self.optimizer,
                         steps=self.steps, seed=None if self.seed < 0 else self.seed,
                         penal=self.penal, filter_radius=self.filter_radius,
                         options=dict(self.options), model_options=dict(self.model_options),
                         record=record)


def group_axes(cell: Cell) -> dict[str, Any]:
    """The match axes of a cell (see :class:`Override`)."""
    return {"problem": cell.problem, "model": cell.model, "penal": cell.penal,
            "method": cell.method.split("[")[0].split("@")[0], "optimizer": cell.optimizer,
            "variant": cell.variant, "seed": cell.seed, "steps": cell.steps}


def _default_curve(optimizer: str) -> str:
    from solvers.optim.registry import method_spec

    return "evaluation" if method_spec(optimizer).budget_unit == "evaluations" else "iterate"


def expand(study: Study, tuned: Mapping[tuple, float] | None = None) -> tuple[Cell, ...]:
    """The study's cells, in grid order.

    Args:
        study: the spec.
        tuned: ``tune.group_id(cell) -> value`` of the tuned option (``10 ** log10``) for the
            groups whose tuning is done; cells of tuned methods whose group is missing are left
            out (they wait for the tuning stage).

    Raises:
        StudyError: a cell the solvers cannot run (a pixel-only method on the CNN, a CNN size it
            cannot produce, the CNN at seed -1, an option the method lacks), a duplicate cell,
            an empty grid after exclusions, or a grid of more than :data:`MAX_GRID_CELLS` cells.
    """
    from .tune import group_id

    if study.grid_size > MAX_GRID_CELLS:
        axes = " x ".join(f"{len(getattr(study, axis))} {axis}" for axis in
                          ("problems", "models", "penalties", "methods", "variants", "steps",
                           "seeds"))
        raise StudyError(f"study {study.name!r}: its grid has {study.grid_size:,} cells before "
                         f"exclusions ({axes}, with the methods' own budgets and seeds); a study "
                         f"holds at most {MAX_GRID_CELLS:,} (each cell writes its own record): "
                         f"shorten an axis (a mistyped range of seeds?) or split it into several "
                         f"studies")

    cells, seen, coordinates = [], {}, {}
    checked: set[str] = set()
    tuned_methods = set(study.tune.methods) if study.tune is not None else set()
    for problem, model, penal, method, (v_index, variant) in itertools.product(
            study.problems, study.models, study.penalties, study.methods,
            enumerate(study.variants)):
        if method.models and model not in method.models:
            continue
        variant_name = str(variant.get("name", f"v{v_index}")) if len(study.variants) > 1 else ""
        variant_options = {k: v for k, v in variant.items() if k != "name"}
        steps_axis = method.steps or study.steps
        for steps, seed in itertools.product(steps_axis, method.seeds or study.seeds):
            label = method.name + (f"[{variant_name}]" if variant_name else "") \
                + (f"@{steps}" if len(steps_axis) > 1 else "")
            axes = {"problem": problem.label, "model": model, "penal": penal,
                    "method": method.name, "optimizer": method.optimizer,
                    "variant": variant_name, "seed": seed, "steps": steps}
            if any(_matches(item, axes) for item in study.exclude):
                continue
            options = {**method.options, **variant_options}
            model_options = dict(study.model_options.get(model, {}))
            settings = {"steps": steps, "filter_radius": study.filter_radius}
            for override in study.overrides:
                if override.matches(axes):
                    options.update(override.settings.get("options", {}))
                    model_options.update(override.settings.get("model_options", {}))
                    for name in ("steps", "filter_radius"):
                        if name in override.settings:
                            settings[name] = override.settings[name]
            cell = Cell(problem=problem.label, model=model, penal=penal, method=label,
                        seed=seed, steps=settings["steps"],
                        problem_definition=problem.definition, optimizer=method.optimizer,
                        options=_plain(options, label), model_options=_plain(model_options, label),
                        filter_radius=settings["filter_radius"],
                        curve=method.curve or _default_curve(method.optimizer),
                        variant=variant_name)
            if method.name in tuned_methods:
                value = ({} if tuned is None else tuned).get(group_id(cell))
                if value is None:
                    continue
                cell = dataclasses.replace(cell, options={**cell.options,
                                                          study.tune.option: value})
            _check_cell(cell, checked, study.record)
            key = cell.key
            if key in seen:
                raise StudyError(f"duplicate cell: {cell.label} computes the same as "
                                 f"{seen[key].label} (key {key}); remove one")
            if cell.coordinates in coordinates:
                raise StudyError(f"duplicate cell: two cells at {cell.label}; give the methods "
                                 f"or option variants distinct names")
            seen[key] = coordinates[cell.coordinates] = cell
            cells.append(cell)
    if not cells and not tuned_methods:
        raise StudyError(f"study {study.name!r}: the grid is empty after the exclusions and "
                         f"method restrictions")
    return tuple(cells)


def _check_cell(cell: Cell, checked: set[str], record: RecordOptions) -> None:
    """Raise :class:`StudyError` unless the solvers can run ``cell`` (checked once per kind)."""
    from studies.runner import ConfigurationError, validate_config

    signature = canonical_json([cell.problem_definition, cell.model, cell.optimizer,
                                cell.options, cell.model_options, cell.seed < 0])
    if signature in checked:
        return
    if "toy" in cell.problem_definition:
        from .toy import check_toy_cell
        check_toy_cell(cell)
    else:
        if cell.seed < 0 and cell.model == "cnn":
            raise StudyError(f"{cell.label}: seed -1 is the constant start of pixel runs; the "
                             f"CNN needs a seed >= 0 (exclude it: exclude = [{{model = \"cnn\", "
                             f"seed = -1}}])")
        try:
            validate_config(cell.run_config(record))
        except (ConfigurationError, ValueError, TypeError) as error:
            raise StudyError(f"{cell.label}: {error}") from None
    _check_method(cell.optimizer, cell.options, cell.label)
    checked.add(signature)
