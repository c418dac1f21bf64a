"""Which runs of a results file are being computed right now: one lease per run.

A process that computes a run (``nrto optimize``, ``nrto resume``) holds the run's lease from the
moment the run gets its id until it has written the run for the last time. The lease is an
exclusive lock (``filelock``, an ``flock`` on Linux, released by the kernel when the process dies,
even by ``kill -9``) plus a small JSON sidecar that says who holds it::

    <folder>/.<file name>.live/<run id>.lock     the lock (an empty file; it stays in place)
    <folder>/.<file name>.live/<run id>.json     {"pid": 1234, "host": "node7", "started": ...}

So a run being written is recognisable: :func:`live_holder` says whether its lock is held and by
whom, and :class:`RunLease` refuses (:class:`RunBusyError`) to take a run that another process
holds. A sidecar whose lock is free was left by a process that died without releasing it (killed
or crashed): on the same host it is taken over, and :meth:`RunLease.acquire` returns the dead
holder so that the caller can say so. A sidecar written on another host is refused, because
whether that process still runs cannot be told from here (``flock`` on network file systems is not
reliable); the message says which file to delete once it is known to be dead.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
from pathlib import Path

import filelock

from studies.jsontext import loads_json
from studies.outputs import atomic_output
from studies.store import StoreError

__all__ = ["LeaseHolder", "RunBusyError", "RunLease", "live_holder", "lease_folder"]


# Seconds to wait for a lease: a holder keeps it for the whole run, while another process's probe
# (live_holder, from `nrto inspect` or `nrto resume`) holds it for microseconds.
_PROBE_WAIT = 0.5


class RunBusyError(StoreError):
    """The run is being computed by another process (the message names its pid and host)."""


@dataclasses.dataclass(frozen=True)
class LeaseHolder:
    """Who holds (or held) a run's lease."""

    pid: int
    host: str
    started: str

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, since {self.started}"


def lease_folder(path: str | os.PathLike) -> Path:
    """``<folder>/.<file name>.live`` of the results file ``path`` (symbolic links resolved)."""
    real = Path(os.path.realpath(path))
    return real.with_name(f".{real.name}.live")


def _read_holder(sidecar: Path) -> LeaseHolder | None:
    try:
        data = loads_json(sidecar.read_text())
        return LeaseHolder(int(data["pid"]), str(data["host"]), str(data["started"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return LeaseHolder(-1, "unknown", "unknown (unreadable lease file)")


def live_holder(path: str | os.PathLike, run_id: str) -> LeaseHolder | None:
    """The process computing ``run_id`` of ``path`` now, or None if no process holds it.

    A lease left on another host (see the module docstring) counts as held.
    """
    folder = lease_folder(path)
    if not (folder / f"{run_id}.lock").exists():
        return None
    holder = _read_holder(folder / f"{run_id}.json")
    lock = filelock.FileLock(folder / f"{run_id}.lock", timeout=_PROBE_WAIT)
    try:
        lock.acquire()
    except filelock.Timeout:
        return holder or LeaseHolder(-1, "unknown", "unknown")
    lock.release()
    if holder is not None and holder.host not in (socket.gethostname(), "unknown"):
        return holder
    return None


class RunLease:
    """The lease of one run (see the module docstring).

    Args:
        path: the results file (or any file whose work is leased, e.g. a study's spec).
        run_id: the run, e.g. ``"run-0003"`` (the lease's name in the lease folder).
        subject: what the messages call the leased work; default ``"<run_id> of <path>"``.
    """

    def __init__(self, path: str | os.PathLike, run_id: str, *, subject: str | None = None):
        self.path = Path(path)
        self.run_id = run_id
        self.subject = subject or f"{run_id} of {path}"
        self.folder = lease_folder(path)
        self.sidecar = self.folder / f"{run_id}.json"
        self._lock = filelock.FileLock(self.folder / f"{run_id}.lock", timeout=_PROBE_WAIT)
        self._held = False

    def acquire(self) -> LeaseHolder | None:
        """Take the lease; returns the dead holder taken over (for a note), or None.

        Raises:
            RunBusyError: another process holds it, or a holder on another host may.
        """
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the lease folder {self.folder}: "
                             f"{error.strerror or error}") from None
        try:
            self._lock.acquire()
        except filelock.Timeout:
            holder = _read_holder(self.sidecar)
            who = holder.describe() if holder else "another process"
            raise RunBusyError(f"{self.subject} is being computed by {who}; wait for it to "
                               f"finish, or stop it first") from None
        previous = _read_holder(self.sidecar)
        here = socket.gethostname()
        if previous is not None and previous.host not in (here, "unknown"):
            self._lock.release()
            raise RunBusyError(f"{self.subject} is marked as being computed by "
                               f"{previous.describe()}; from {here} it cannot be told whether "
                               f"that process still runs: if it does not, delete {self.sidecar}")
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        try:
            with atomic_output(self.sidecar) as temporary:
                temporary.write_text(json.dumps({"pid": os.getpid(), "host": here,
                                                 "started": now}))
        except BaseException:  # e.g. a full disk: give the lock back, or the next try of this
            self._lock.release()  # process would find it "held by another process"
            raise
        self._held = True
        return previous

    def release(self) -> None:
        """Give the lease back (the sidecar is removed first, so a clean end leaves none)."""
        if not self._held:
            return
        self.sidecar.unlink(missing_ok=True)
        self._held = False
        self._lock.release()

    def __enter__(self) -> RunLease:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
