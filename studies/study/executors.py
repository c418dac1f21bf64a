"""Where cells run: this process, a local process pool, or a Dask cluster, behind one interface.

Every executor offers ``submit(fn, *args, **kwargs) -> future`` and ``wait_any(futures) ->
(done, pending)``; the driver (:mod:`studies.study.schedule`) and the tuner
(:mod:`studies.study.tune`) use nothing else, so a study runs the same way everywhere.

* :class:`InlineExecutor` (``--jobs 1``): runs each call at ``submit`` in this process.
* :class:`LocalExecutor` (``--jobs N``): ``concurrent.futures.ProcessPoolExecutor`` with the spawn
  context (TensorFlow must not be forked); workers are pinned to one thread
  (:func:`~studies.study.execute.configure_worker` as initializer, and the thread environment
  variables set for the spawned processes). A worker killed from outside breaks the pool: the
  executor then starts a new pool (:meth:`LocalExecutor.restart`), and the driver resubmits.
* :class:`DaskExecutor` (``--scheduler ADDRESS`` or ``--dask-local N``): a
  ``distributed.Client`` of a running scheduler (it must answer within ``timeout`` seconds), or
  of a ``LocalCluster`` of N single-threaded worker processes started here. Dask reschedules the
  cells of a worker that dies.
"""
from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import time
from collections.abc import Callable, Iterable
from typing import Any

from .execute import STOP_GRACE_S, configure_pool_worker
from .spec import StudyError

__all__ = ["DaskExecutor", "InlineExecutor", "LocalExecutor", "make_executor"]



def _one_thread_here() -> None:
    """Cells run single-threaded wherever they run, so that a record has the same bits in this
    process, in a pool worker and on a Dask worker (thread counts change the order of BLAS and
    TensorFlow sums). Set in the driver before any worker starts: spawned workers inherit it."""
    from studies.threads import configure_threads

    configure_threads(1)


class _Deferred(concurrent.futures.Future):
    """A future of :class:`InlineExecutor`: computed when it is first waited for."""

    _submitted = itertools.count()

    def __init__(self, fn: Callable, args: tuple, kwargs: dict):
        super().__init__()
        self._call = (fn, args, kwargs)
        self.order = next(self._submitted)

    def compute(self) -> None:
        if self.done():
            return
        fn, args, kwargs = self._call
        try:
            self.set_result(fn(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - delivered through the future, as a pool does
            self.set_exception(error)


class InlineExecutor:
    """Runs the calls in this process, one at a time, as they are waited for (``--jobs 1``)."""

    name = "inline"
    workers = 1
    local = True  # the workers share this machine's memory

    def __init__(self):
        _one_thread_here()

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        return _Deferred(fn, args, kwargs)

    def wait_any(self, futures: Iterable) -> tuple[set, set]:
        futures = sorted(futures, key=lambda f: f.order)   # in submission order, as a pool
        done = {f for f in futures if f.done()}
        if not done and futures:
            futures[0].compute()
            done = {futures[0]}
        return done, set(futures) - done

    def restart(self) -> None:
        """Nothing to restart."""

    def close(self, wait: bool = True) -> None:
        """Nothing to close."""


class LocalExecutor:
    """A spawned process pool of ``jobs`` single-threaded workers."""

    name = "local"
    local = True
    STOP_GRACE_S = STOP_GRACE_S

    def __init__(self, jobs: int):
        if jobs < 1:
            raise StudyError(f"--jobs must be >= 1; got {jobs}")
        self.workers = jobs
        self._pool = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        _one_thread_here()  # spawned children copy the environment when they start
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=configure_pool_worker)

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        return self._pool.submit(fn, *args, **kwargs)

    def wait_any(self, futures: Iterable) -> tuple[set, set]:
        done, pending = concurrent.futures.wait(set(futures),
                                                return_when=concurrent.futures.FIRST_COMPLETED)
        return done, pending

    def restart(self) -> None:
        """Replace a broken pool (a worker was killed) by a fresh one."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def close(self, wait: bool = True) -> None:
        """Stop the workers. ``wait=False`` (after Ctrl-C) does not wait for running cells: the
        queued ones are cancelled, and every worker gets SIGTERM, stores the state its run
        reached as a checkpoint and ends; one still alive after ``STOP_GRACE_S`` is killed (its
        cell resumes from its previous checkpoint)."""
        if wait:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        processes = [p for p in getattr(self._pool, "_processes", {}).values()]
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + self.STOP_GRACE_S
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()


def _check_address(address: str) -> None:
    """Raise a StudyError naming the expected form when ``address`` cannot be a scheduler's
    address (before a Client is built: a Client that fails on its address leaves a traceback at
    exit)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except ValueError as error:
        raise StudyError(f"--scheduler {address!r} is not a Dask scheduler address ({error}); "
                         f"expected e.g. tcp://10.0.0.5:8786") from None


class DaskExecutor:
    """A Dask ``distributed`` client: of ``address``, or of a LocalCluster of ``local_workers``.

    Args:
        address: the scheduler, e.g. ``tcp://10.0.0.5:8786``.
        local_workers: start a ``LocalCluster`` with this many single-threaded workers.
        processes: LocalCluster workers as processes (True) or threads of this process.
        timeout: seconds to wait for the scheduler before giving up.

    Raises:
        StudyError: ``address`` is malformed, or the scheduler does not answer within
            ``timeout`` seconds.
    """

    name = "dask"

    def __init__(self, address: str | None = None, local_workers: int | None = None, *,
                 processes: bool = True, timeout: float = 3.0):
        from distributed import Client, LocalCluster

        if (address is None) == (local_workers is None):
            raise StudyError("give either a scheduler address or a number of local workers")
        from distributed import as_completed

        self._cluster = None
        self._finished: set = set()
        self.local = address is None  # a scheduler's workers: memory this driver cannot see
        if address is None:
            if local_workers < 1:
                raise StudyError(f"--dask-local must be >= 1; got {local_workers}")
            _one_thread_here()  # threads of this process, or processes that inherit it
            self._cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1,
                                         processes=processes, dashboard_address=None,
                                         silence_logs=50)
            self._client = Client(self._cluster, set_as_default=False)
            self.workers = local_workers
        else:
            _check_address(address)
            try:
                self._client = Client(address, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as error:
                raise StudyError(f"the Dask scheduler at {address} did not answer within "
                                 f"{timeout:g} s ({type(error).__name__}); start it with "
                                 f"`dask scheduler` or check the address") from None
            self.workers = max(1, sum(self._client.nthreads().values()))
        self._completed = as_completed(loop=self._client.loop)

    def submit(self, fn: Callable, *args: Any, **kwargs: Any):
        future = self._client.submit(fn, *args, pure=False, **kwargs)
        self._completed.add(future)
        return future

    def wait_any(self, futures: Iterable) -> tuple[set, set]:
        futures = set(futures)
        while True:
            done = futures & self._finished
            if done:
                self._finished -= done
                return done, futures - done
            self._finished.add(next(self._completed))
            self._finished.update(self._completed.next_batch(block=False))

    def restart(self) -> None:
        """Dask reschedules lost work itself."""

    def close(self, wait: bool = True) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(*, jobs: int = 1, scheduler: str | None = None,
                  dask_local: int | None = None, processes: bool = True):
    """The executor the command line asked for (at most one of the three options)."""
    chosen = [name for name, value in (("--jobs", jobs if jobs != 1 else None),
                                       ("--scheduler", scheduler),
                                       ("--dask-local", dask_local)) if value is not None]
    if len(chosen) > 1:
        raise StudyError(f"choose one of {', '.join(chosen)}")
    if scheduler is not None:
        return DaskExecutor(address=scheduler)
    if dask_local is not None:
        return DaskExecutor(local_workers=dask_local, processes=processes)
    return InlineExecutor() if jobs == 1 else LocalExecutor(jobs)
