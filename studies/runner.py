"""Run configurations: build the model and objective, optimize, checkpoint into the store.

One run = one :class:`~studies.config.RunConfig`. :func:`execute` runs it in this process with a
tqdm progress bar on stderr (step, loss, best loss) and writes it with :func:`studies.store.
write_run`: first after the first accepted iterate (this assigns the run id), then every
``checkpoint_every`` iterates as ``partial``, finally as complete. :func:`run_many` runs several
one after another or in ``jobs`` worker processes (spawned, so TensorFlow is never forked); each
worker writes its own runs, and the store's file lock keeps writers from colliding. While a run
is computed its process holds the run's lease (:mod:`studies.liveness`), so that a second process
(``nrto resume``) refuses it rather than computing it twice.

Interruptions: a ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM turned into one by
:func:`interrupt_on_sigterm`) during a run saves the run so far as ``partial`` and raises
:class:`RunInterrupted`; ``nrto resume`` continues it later.

The solvers package is imported inside functions, so this module imports without TensorFlow.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from solvers.names import did_you_mean
from solvers.optim.registry import REGISTRY
from solvers.result import OptimizationResult, ProgressInfo
from studies.liveness import RunLease
from studies.outputs import NoSpaceError
from studies.store import ResultsFile, RunConfig, StoreLockedError, check_writable, write_run

__all__ = [
    "PIXEL_ONLY_METHODS",
    "ConfigurationError",
    "RunInterrupted",
    "RunOutcome",
    "RunTask",
    "RunsInterrupted",
    "build_objective",
    "execute",
    "interrupt_on_sigterm",
    "known_methods",
    "problem_fields",
    "run_many",
    "validate_config",
]

PIXEL_ONLY_METHODS = tuple(name for name, spec in REGISTRY.items() if spec.needs_densities)
_DEFAULT_CNN_RESIZE = 8
PIXEL_STARTS = ("constant", "cnn")
_PIXEL_START_OPTIONS = ("start", "start_upsampling", "start_dtype")
_CHECKPOINT_LOCK_TIMEOUT = 10.0  # seconds a checkpoint waits for other writers before skipping


class ConfigurationError(ValueError):
    """A run that cannot start as configured (unknown name, bad option or size)."""


@dataclasses.dataclass(frozen=True)
class RunTask:
    """One run to execute.

    Attributes:
        config: what to run.
        path: the results file.
        resume_id: id of a partial run in ``path`` to continue (``config`` must be its config),
            or None for a new run.
    """

    config: RunConfig
    path: Path
    resume_id: str | None = None


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How one run ended. ``run_id`` is None when nothing was stored (stopped before the first
    iterate); ``error`` holds the one-line reason of a run that raised."""

    label: str
    run_id: str | None
    status: str
    partial: bool
    iterations: int
    evaluations: int
    final_loss: float
    best_loss: float
    elapsed: float
    error: str | None = None


class RunInterrupted(Exception):
    """The run was interrupted; what it had done is stored as ``partial`` (see ``outcome``)."""

    def __init__(self, outcome: RunOutcome):
        super().__init__(f"{outcome.label} interrupted")
        self.outcome = outcome


class RunsInterrupted(Exception):
    """:func:`run_many` was interrupted; ``outcomes`` lists the runs that ended (in any way)."""

    def __init__(self, outcomes: list[RunOutcome]):
        super().__init__("interrupted")
        self.outcomes = outcomes


# -- configuration ---------------------------------------------------------------------------------


def known_methods() -> tuple[str, ...]:
    """Names accepted by ``solvers.optimize`` (the method registry)."""
    return tuple(REGISTRY)


# Peak bytes per node of building a task (its supports and loads as (W+1, H+1, 2) float64 arrays
# and their temporaries): 56-60 measured with tracemalloc for all 28 families at 400x200.
BUILD_BYTES_PER_NODE = 64


def _check_build_memory(family: str, width: int, height: int) -> None:
    """Refuse a size whose mere construction cannot fit in the available memory (before numpy
    fails, or worse, the kernel's OOM killer ends the process without a word)."""
    from studies.resources import format_bytes, shortfall

    needed = BUILD_BYTES_PER_NODE * (width + 1) * (height + 1)
    if (available := shortfall(needed)) is not None:
        raise ConfigurationError(
            f"{family} at {width}x{height} needs about {format_bytes(needed)} just to be built "
            f"({BUILD_BYTES_PER_NODE} bytes per node), but this machine has "
            f"{format_bytes(available)} available; use a smaller size")


def problem_fields(name: str, size: tuple[int, int] | None = None,
                   volume_fraction: float | None = None, *,
                   check_memory: bool = True) -> dict[str, Any]:
    """The problem part of a :class:`RunConfig` for a task name, or a family at a new size.

    Args:
        name: a catalogued task (``"mbb_beam_96x32_0.5"``) or a family (``"mbb_beam"``).
        size: ``(width, height)`` to build the family (of the family or of the task) at a new size.
        volume_fraction: with ``size``: the volume fraction (default: the task's).
        check_memory: refuse a size whose construction alone exceeds the available memory
            (``--ignore-memory-check`` turns it off with the run's own check).

    Returns:
        ``problem, family, width, height, volume_fraction, problem_params`` keyword arguments.

    Raises:
        ConfigurationError: an unknown name (close matches named), a family without ``size``, a
            bad size or volume fraction, a size that cannot even be built in the available
            memory.
    """
    from solvers.problems import FAMILIES, TASKS, UnknownProblemError, build_problem

    tasks = {task.name: task for task in TASKS}
    if volume_fraction is not None and size is None:
        raise ConfigurationError("--volfrac needs --size (a catalogued task has its own volume "
                                 "fraction)")
    if name in tasks and size is None:
        task = tasks[name]
        return {"problem": task.name, "family": task.family, "width": task.width,
                "height": task.height, "volume_fraction": task.volume_fraction,
                "problem_params": dict(task.params)}
    if name in tasks:
        family, params = tasks[name].family, dict(tasks[name].params)
        volume_fraction = tasks[name].volume_fraction if volume_fraction is None \
            else volume_fraction
    elif name in FAMILIES:
        if size is None or volume_fraction is None:
            examples = [t.name for t in TASKS if t.family == name][:2]
            missing = " and ".join(flag for flag, value in (("--size WxH", size),
                                                            ("--volfrac F", volume_fraction))
                                   if value is None)
            fractions = sorted({t.volume_fraction for t in TASKS if t.family == name})
            used = f" (its tasks use {', '.join(f'{f:g}' for f in fractions)})" \
                if size is not None and fractions else ""
            raise ConfigurationError(
                f"{name!r} is a problem family: give {missing}{used}"
                + (f", or a task name such as {' or '.join(examples)}" if examples else ""))
        family, params = name, {}
    else:
        hint = (did_you_mean(name, [*FAMILIES, *tasks])
                or "see `nrto problems` for the tasks and families")
        raise ConfigurationError(f"unknown problem {name!r}; {hint}")
    width, height = size
    if not 0 < volume_fraction <= 1 or volume_fraction * width * height < 1:
        raise ConfigurationError(
            f"volume fraction {volume_fraction:g} on a {width}x{height} grid leaves "
            f"{max(volume_fraction, 0) * width * height:.3g} elements of material; it must be in "
            f"(0, 1] and leave at least one (>= {1 / (width * height):.3g})")
    if check_memory:
        _check_build_memory(family, width, height)
    try:
        problem = build_problem(family, width, height, volume_fraction, **params)
    except (ValueError, TypeError, UnknownProblemError) as error:
        raise ConfigurationError(f"{family} at {width}x{height}, volume fraction "
                                 f"{volume_fraction}: {error}") from None
    except MemoryError:
        raise ConfigurationError(f"{family} at {width}x{height} does not fit in this machine's "
                                 f"memory even to be built; use a smaller size") from None
    return {"problem": problem.name, "family": family, "width": width, "height": height,
            "volume_fraction": float(volume_fraction), "problem_params": params}


def validate_config(config: RunConfig) -> None:
    """Check, before any work, that ``config`` can run.

    Raises:
        ConfigurationError: unknown method, a method the model cannot use, an option the method
            does not have, or a size the CNN cannot produce.
    """
    methods = known_methods()
    if config.optimizer not in methods:
        hint = did_you_mean(config.optimizer, methods, n=2)
        hint = f"{hint} " if hint else ""
        raise ConfigurationError(f"unknown optimizer {config.optimizer!r}; {hint}"
                                 f"known: {', '.join(methods)}")
    if config.optimizer in PIXEL_ONLY_METHODS and config.model != "pixel":
        raise ConfigurationError(f"{config.optimizer} optimizes densities in [0, 1] and needs "
                                 f"--model pixel (got {config.model})")
    if config.model == "pixel":
        _pixel_start(config)
    if config.model == "cnn":
        resizes = config.model_options.get("resizes")
        resize = math.prod(resizes) if resizes else _DEFAULT_CNN_RESIZE
        if config.width % resize or config.height % resize:
            raise ConfigurationError(f"the CNN upsamples by {resize}: width and height must be "
                                     f"multiples of {resize} (got {config.width}x{config.height})")
    from solvers.optim.options import make_options

    try:
        make_options(config.optimizer, dict(config.options))
    except (TypeError, ValueError) as error:
        raise ConfigurationError(str(error)) from None


def build_objective(config: RunConfig):
    """The flat objective of ``config``: problem -> model -> ``solvers.as_objective``.

    MMA and OC get a pixel model without the volume-constraint map (densities in [0, 1]); the
    other methods get the sigmoid + volume-constraint map. ``config.model_options`` override this
    (pixel: ``volume_constraint``) or set the ``CNNConfig`` fields (CNN). Pixel models also take
    ``start``: ``"constant"`` (default, ``volume_fraction * mask``) or ``"cnn"`` (the paper's
    pipeline for seeds >= 0: the output of ``CNNModel(seed=config.seed)`` with upsampling
    ``start_upsampling``, ``"bilinear"`` (the paper, default) or ``"transpose"`` (the thesis),
    and ``start_dtype`` when given; see ``solvers.models.PixelModel``).
    """
    from solvers import as_objective
    from solvers.problems import PROBLEMS, build_problem

    if config.problem in PROBLEMS:
        problem = PROBLEMS[config.problem]
    else:
        problem = build_problem(config.family, config.width, config.height,
                                config.volume_fraction, **config.problem_params)
    if (problem.width, problem.height) != (config.width, config.height):
        raise ConfigurationError(f"{config.problem} is {problem.width}x{problem.height}, but the "
                                 f"configuration says {config.width}x{config.height}")
    if config.model == "pixel":
        from solvers.models import CNNConfig, PixelModel, cnn_start_logits
        start, cnn_options = _pixel_start(config)
        options = {"volume_constraint": config.optimizer not in PIXEL_ONLY_METHODS,
                   **{key: value for key, value in config.model_options.items()
                      if key not in _PIXEL_START_OPTIONS}}
        if start == "cnn":
            options["initial_logits"] = cnn_start_logits(problem, config.seed,
                                                         CNNConfig(**cnn_options))
        model = PixelModel(problem, **options)
    else:
        from solvers.models import CNNConfig, CNNModel
        model = CNNModel(problem, seed=0 if config.seed is None else config.seed,
                         config=CNNConfig(**config.model_options))
    return as_objective(model, penal=config.penal, filter_radius=config.filter_radius)


def _pixel_start(config: RunConfig) -> tuple[str, dict[str, Any]]:
    """The pixel start of ``config.model_options``: ``(start, CNNConfig fields of the start)``.

    Raises:
        ConfigurationError: an unknown start or upsampling, start options without
            ``start="cnn"``, or ``start="cnn"`` without a seed.
    """
    from solvers.models import UPSAMPLING_MODES

    options = config.model_options
    start = options.get("start", "constant")
    if start not in PIXEL_STARTS:
        raise ConfigurationError(f"pixel model option start must be one of {PIXEL_STARTS}; "
                                 f"got {start!r}")
    cnn_options: dict[str, Any] = {"upsampling": options.get("start_upsampling", "bilinear")}
    if "start_dtype" in options:
        cnn_options["dtype"] = options["start_dtype"]
    if start == "constant":
        extra = [key for key in _PIXEL_START_OPTIONS[1:] if key in options]
        if extra:
            raise ConfigurationError(f"pixel model option(s) {', '.join(extra)} apply only to "
                                     "start='cnn' (the start from CNNModel's output)")
        return start, {}
    if cnn_options["upsampling"] not in UPSAMPLING_MODES:
        raise ConfigurationError(f"pixel model option start_upsampling must be one of "
                                 f"{UPSAMPLING_MODES}; got {cnn_options['upsampling']!r}")
    if config.seed is None:
        raise ConfigurationError("pixel start='cnn' starts from CNNModel(seed=config.seed) and "
                                 "needs a seed >= 0; got seed None (use start='constant')")
    return start, cnn_options


# -- one run ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while the interrupted run is saved (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise ``KeyboardInterrupt`` in the main thread (a clean interruption)."""
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _raise)


def _outcome(config: RunConfig, run_id: str | None, result: OptimizationResult | None,
             partial: bool, error: str | None = None) -> RunOutcome:
    if result is None:
        return RunOutcome(config.label, run_id, "interrupted", True, 0, 0, math.nan, math.nan,
                          0.0, error)
    final = float(result.loss_per_iterate[-1]) if len(result.loss_per_iterate) else math.nan
    return RunOutcome(config.label, run_id, result.status, partial, result.iterations,
                      result.evaluations, final, result.best_loss, result.elapsed, error)


def execute(task: RunTask, *, progress: bool = True, position: int = 0,
            checkpoint_every: int = 50) -> RunOutcome:
    """Run one task in this process and store it, holding the run's lease meanwhile.

    The lease (:mod:`studies.liveness`) marks the run as being computed by this process from the
    moment it has an id (a resumed run: before any work) until its last write, so that
    ``nrto resume`` refuses it meanwhile.

    Args:
        task: the configuration, the results file and possibly a partial run to resume.
        progress: draw a tqdm bar on stderr.
        position: the bar's line (for several processes).
        checkpoint_every: store a partial snapshot every this many iterates (0: only after the
            first iterate and at the end).

    Returns:
        The outcome. A run whose optimizer raised after storing progress is stored with status
        ``"failed"`` and reported with ``error`` set.

    Raises:
        RunInterrupted: after a ``KeyboardInterrupt``, once the run so far is stored as partial.
        ConfigurationError: the optimizer rejected the configuration before the first iterate.
        RunBusyError: the run to resume is being computed by another process.
    """
    leases: list[RunLease] = []
    try:
        return _execute(task, leases, progress, position, checkpoint_every)
    finally:
        for lease in leases:
            lease.release()


def _take_lease(path: Path, run_id: str, leases: list) -> None:
    from tqdm import tqdm

    lease = RunLease(path, run_id)
    dead = lease.acquire()
    leases.append(lease)
    if dead is not None:
        tqdm.write(f"nrto: note: {run_id} was left by {dead.describe()}, which no longer runs; "
                   f"taking it over", file=sys.stderr)


def _execute(task: RunTask, leases: list, progress: bool, position: int,
             checkpoint_every: int) -> RunOutcome:
    from tqdm import tqdm

    from solvers import optimize
    from solvers.optimizers import EVALUATION_BUDGET_METHODS

    config = task.config
    try:
        objective = build_objective(config)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{config.label}: {error}") from error
    specs = tuple(objective.parameter_specs)
    run_id, resume = task.resume_id, None
    if run_id is not None:
        _take_lease(task.path, run_id, leases)
        stored = ResultsFile(task.path).read(run_id)
        resume = stored.result if stored.result.iterations > 0 else None
    state: dict[str, Any] = {"last": None, "run_id": run_id}

    def store(result: OptimizationResult, partial: bool, lock_timeout: float = 600.0) -> None:
        state["run_id"] = write_run(
            task.path, config, result, run_id=state["run_id"], partial=partial,
            parameter_specs=specs, lock_timeout=lock_timeout,
            on_run_id=None if leases else lambda new: _take_lease(task.path, new, leases))

    counts_evaluations = config.optimizer in EVALUATION_BUDGET_METHODS
    done = 0 if resume is None else (resume.evaluations if counts_evaluations
                                     else resume.iterations)
    bar = tqdm(total=config.steps, desc=f"{run_id or 'new run'} {config.label}", file=sys.stderr,
               position=position, leave=True, dynamic_ncols=True, disable=not progress,
               unit="eval" if counts_evaluations else "it", initial=done)

    def callback(info: ProgressInfo) -> None:
        state["last"] = info
        bar.n = min(config.steps, info.evaluations if counts_evaluations else info.iteration)
        bar.set_postfix_str(f"step={info.iteration} loss={info.loss:.6g} "
                            f"best={info.best_loss:.6g}", refresh=False)
        bar.refresh()
        first = state["run_id"] is None and not state.get("no_space")
        if first or (checkpoint_every and info.iteration % checkpoint_every == 0):
            try:
                store(info.snapshot(), partial=True, lock_timeout=_CHECKPOINT_LOCK_TIMEOUT)
            except StoreLockedError:  # other writers are busy: skip this checkpoint, not the run
                return
            except NoSpaceError as error:  # the run goes on: space may be freed before its end
                if not state.get("no_space"):
                    retry = (f"in {checkpoint_every} iterations, then at its end"
                             if checkpoint_every else "at its end")
                    tqdm.write(f"nrto: warning: {config.label}: checkpoint skipped: {error}; "
                               f"the run continues (next try {retry})", file=sys.stderr)
                state["no_space"] = True
                return
            bar.set_description_str(f"{state['run_id']} {config.label}", refresh=False)

    kwargs = {"steps": config.steps, "seed": config.seed, "record": config.record,
              "callback": callback, **config.options}
    if resume is not None:
        kwargs["resume"] = resume
    try:
        # optimize() itself turns KeyboardInterrupt into status "interrupted" and a failing
        # objective into status "failed"; what escapes is a rejected configuration (before any
        # iterate) or an error of our callback (e.g. the store), or an interrupt outside the loop.
        result = optimize(objective, config.optimizer, **kwargs)
    except KeyboardInterrupt:
        result = _safe_snapshot(state["last"])
        if result is None:
            bar.close()
            raise RunInterrupted(_outcome(config, state["run_id"], None, True)) from None
    except Exception as error:
        bar.close()
        message = f"{type(error).__name__}: {error}".replace("\n", " ")
        snapshot = _safe_snapshot(state["last"])
        if snapshot is None:  # nothing new was computed: leave the store as it is
            if isinstance(error, (TypeError, ValueError)):
                raise ConfigurationError(f"{config.label}: {message}") from error
            raise
        failed = dataclasses.replace(snapshot, status="failed", converged=False,
                                     message=f"raised {message}")
        store(failed, partial=False)
        return _outcome(config, state["run_id"], failed, False, message)
    bar.close()
    partial = result.status == "interrupted"
    with _signals_deferred():
        store(result, partial=partial)
    outcome = _outcome(config, state["run_id"], result, partial)
    if partial:
        raise RunInterrupted(outcome)
    return outcome


def _safe_snapshot(info: ProgressInfo | None) -> OptimizationResult | None:
    if info is None:
        return None
    try:
        return info.snapshot()
    except Exception:  # noqa: BLE001 - a torn optimizer state: keep the last checkpoint
        return None


# -- several runs ----------------------------------------------------------------------------------


def run_many(tasks: Sequence[RunTask], *, jobs: int = 1, progress: bool = True,
             checkpoint_every: int = 50,
             report: Callable[[RunOutcome], None] | None = None,
             check_memory: bool = True) -> list[RunOutcome]:
    """Run tasks one after another (``jobs == 1``) or in ``jobs`` spawned worker processes.

    Args:
        tasks: the runs, in order.
        jobs: number of worker processes (1: this process).
        progress: draw progress bars (one line per worker).
        checkpoint_every: see :func:`execute`.
        report: called in this process with each outcome as it arrives.
        check_memory: refuse, before any run starts, runs whose estimated memory
            (:mod:`studies.resources`) exceeds what the machine has available.

    Returns:
        The outcomes in task order.

    Raises:
        RunsInterrupted: Ctrl-C or SIGTERM; running workers save their runs as partial first.
        ConfigurationError: a run was rejected before its first iterate (remaining runs skipped),
            or (:class:`studies.resources.InsufficientMemoryError`) the runs cannot fit in memory.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {jobs}")
    for task in tasks:
        check_writable(task.path)
    if check_memory:
        from studies import resources
        resources.check_memory([resources.estimate_run_memory(task.config) for task in tasks],
                               jobs=jobs)
    report = report or (lambda outcome: None)
    if jobs == 1 or len(tasks) <= 1:
        outcomes = []
        for task in tasks:
            try:
                outcome = execute(task, progress=progress, checkpoint_every=checkpoint_every)
            except RunInterrupted as stop:
                report(stop.outcome)
                raise RunsInterrupted(outcomes + [stop.outcome]) from None
            except KeyboardInterrupt:
                raise RunsInterrupted(outcomes) from None
            outcomes.append(outcome)
            report(outcome)
        return outcomes
    return _run_parallel(list(tasks), min(jobs, len(tasks)), progress, checkpoint_every, report)


def _worker(slot: int, tasks, results, lock, progress: bool, checkpoint_every: int) -> None:
    """Body of a worker process: run tasks from ``tasks`` until the ``None`` sentinel."""
    interrupt_on_sigterm()
    try:
        from tqdm import tqdm
        tqdm.set_lock(lock)
        while True:
            item = tasks.get()
            if item is None:
                return
            index, task = item
            try:
                outcome = execute(task, progress=progress, position=slot,
                                  checkpoint_every=checkpoint_every)
                results.put((index, outcome, None))
            except RunInterrupted as stop:
                results.put((index, stop.outcome, "interrupted"))
                return
            except ConfigurationError as error:
                results.put((index, None, f"configuration: {error}"))
            except Exception as error:  # noqa: BLE001 - reported as a failed run; next task
                results.put((index, None, f"{type(error).__name__}: {error}"))
    except KeyboardInterrupt:
        results.put((-1, None, "interrupted"))


def _run_parallel(tasks: list[RunTask], jobs: int, progress: bool, checkpoint_every: int,
                  report: Callable[[RunOutcome], None]) -> list[RunOutcome]:
    context = multiprocessing.get_context("spawn")  # TensorFlow must not be forked
    task_queue, result_queue = context.Queue(), context.Queue()
    for item in enumerate(tasks):
        task_queue.put(item)
    for _ in range(jobs):
        task_queue.put(None)
    lock = context.RLock()
    workers = [context.Process(target=_worker, name=f"nrto-worker-{slot}", daemon=False,
                               args=(slot, task_queue, result_queue, lock, progress,
                                     checkpoint_every))
               for slot in range(jobs)]
    for worker in workers:
        worker.start()
    outcomes: dict[int, RunOutcome] = {}
    pending, interrupted, configuration_error = set(range(len(tasks))), False, None

    def receive(timeout: float) -> None:
        nonlocal interrupted, configuration_error
        index, outcome, problem = result_queue.get(timeout=timeout)
        pending.discard(index)
        if outcome is not None:
            outcomes[index] = outcome
            report(outcome)
        if problem == "interrupted":
            interrupted = True
        elif problem is not None and problem.startswith("configuration: "):
            configuration_error = configuration_error or problem[len("configuration: "):]
        elif problem is not None:
            failed = RunOutcome(tasks[index].config.label, None, "failed", False, 0, 0, math.nan,
                                math.nan, 0.0, problem)
            outcomes[index] = failed
            report(failed)

    try:
        while pending and not interrupted:
            try:
                receive(timeout=0.5)
            except queue.Empty:
                if not any(worker.is_alive() for worker in workers):
                    break
    except KeyboardInterrupt:
        interrupted = True
    if interrupted:
        with _signals_deferred():
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()  # SIGTERM: the worker stores its run as partial
            for worker in workers:
                worker.join(timeout=120)
                if worker.is_alive():
                    worker.kill()
            while True:
                try:
                    receive(timeout=0.2)
                except (queue.Empty, ValueError, OSError):
                    break
        raise RunsInterrupted([outcomes[i] for i in sorted(outcomes)])
    for worker in workers:
        worker.join()
    if configuration_error is not None:
        raise ConfigurationError(configuration_error)
    return [outcomes[i] for i in sorted(outcomes)]
