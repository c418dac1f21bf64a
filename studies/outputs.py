"""Every file nrto writes goes through here: checked before any work, replaced atomically.

The rules (results files, figures, CSVs and lock files alike):

* A path that is a symbolic link is followed: the file it points to is replaced, the link stays a
  link (so ``--out latest.h5 -> runs/2024.h5`` updates ``runs/2024.h5``). A dangling link names
  the file to create.
* What exists at the path must be a regular file: a folder, a device (``/dev/null``), a FIFO or a
  socket is refused, so nothing that nrto does not own is ever replaced.
* An existing file that is read-only (no write permission bit set, or not writable by this user)
  is refused, also for root.
* The replacement keeps the existing file's permission bits (and its owner and group where this
  user may set them); a new file keeps the mode its writer created it with (h5py, matplotlib and
  ``open`` give the usual ``0o666 & ~umask``).
* The folder must accept a new file (a probe file is created and removed at once): a folder that
  does not exist, is read-only or cannot hold files (``/proc``) is refused before any work.
* Writes are atomic: the content goes to ``.NAME.tmp-PID<suffix>`` in the same folder, is
  fsync'ed and renamed over ``NAME`` (``os.replace``), then the folder is fsync'ed; on any error
  the temporary file is removed and ``NAME`` is left as it was.
* A write that fails because the file system is full (or a quota is exceeded) raises
  :class:`NoSpaceError`, one line with the space left, whatever the writer (HDF5 reports it
  inside its own error text); :func:`check_free_space` refuses a write that cannot fit before
  it starts.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NoSpaceError", "OutputError", "atomic_output", "check_free_space", "check_output",
           "describe_size", "no_space", "no_space_error", "replace_with", "temporary_prefix"]

_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class OutputError(Exception):
    """An output path that nrto refuses to write (the message is one line and says why)."""


class NoSpaceError(OutputError):
    """A write that its file system has no room for (full, or over a quota)."""


def no_space(error: BaseException | str) -> str | None:
    """``"No space left on device"`` or ``"Disk quota exceeded"`` when ``error`` (an exception,
    or the text of one) says that a write found its file system full, else None. HDF5 reports
    such a failure inside the text of an ``OSError`` or ``RuntimeError`` of its own, so the text
    is read too."""
    if isinstance(error, OSError) and error.errno in _NO_SPACE_ERRNOS:
        return os.strerror(error.errno)
    text = str(error)
    return next((os.strerror(code) for code in _NO_SPACE_ERRNOS if os.strerror(code) in text),
                None)


def _free_bytes(path: Path) -> int | None:
    """Bytes free for this user in ``path``'s folder; None when the file system does not say
    (some network and FUSE file systems report a size of 0: nothing is refused there)."""
    try:
        usage = shutil.disk_usage(_folder(path))
    except OSError:
        return None
    return usage.free if usage.total > 0 else None


def no_space_error(path: str | os.PathLike, error: BaseException) -> NoSpaceError | None:
    """The one-line :class:`NoSpaceError` for a failed write of ``path`` when ``error`` says
    that its file system is full (see :func:`no_space`), else None; writers of their own raise
    it in place of ``error`` after removing their temporary file."""
    if isinstance(error, NoSpaceError) or not isinstance(error, Exception):
        return None
    reason = no_space(error)
    return None if reason is None else _no_space_error(Path(path), reason)


def _no_space_error(path: Path, reason: str, needed: int | None = None) -> NoSpaceError:
    free = _free_bytes(path)
    need = f"it needs about {_bytes(needed)}, " if needed is not None else ""
    room = f"{need}{_bytes(free)} free there" if free is not None else need.rstrip(", ")
    return NoSpaceError(f"cannot write {path}: {reason}{f' ({room})' if room else ''}; free "
                        f"some space or write elsewhere (nothing was replaced)")


def check_free_space(path: str | os.PathLike, needed: int) -> None:
    """Raise :class:`NoSpaceError` if the file system of ``path``'s folder has fewer than
    ``needed`` bytes free for this user (a quota is not seen here; the write reports it)."""
    real = Path(path)
    free = _free_bytes(real)
    if free is not None and free < needed:
        raise _no_space_error(real, "its file system is too full", needed)


def _bytes(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def temporary_prefix(path: Path) -> str:
    """Name prefix of the temporary files of ``path`` (``.NAME.tmp-``)."""
    return f".{path.name}.tmp-"


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _probe(folder: Path, path: Path) -> None:
    """Create and remove a file in ``folder`` (the only sure test that it accepts files)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.probe-")
    except OSError as error:
        raise OutputError(f"cannot write {path}: folder {folder} does not accept new files "
                          f"({error.strerror or error})") from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: str | os.PathLike, *, create_folder: bool = False) -> Path:
    """Check, before any work, that ``path`` may be written; return the real file to write.

    Args:
        path: the output path (a symbolic link is followed, see the module docstring).
        create_folder: the folder may be missing (it will be created at write time); then the
            nearest existing ancestor must accept new folders.

    Returns:
        The real path (symbolic links resolved), to pass to :func:`atomic_output`.

    Raises:
        OutputError: the path is a folder or a special file, a read-only file, or its folder is
            missing (unless ``create_folder``) or does not accept new files.
    """
    given = Path(path)
    real = Path(os.path.realpath(given))
    shown = str(given) if real == given.absolute() else f"{given} (-> {real})"
    if real.exists():
        mode = real.stat().st_mode
        if stat.S_ISDIR(mode):
            raise OutputError(f"{shown} is a folder; give a file name such as "
                              f"{given / ('runs.h5' if given.suffix == '' else given.name)}")
        if not stat.S_ISREG(mode):
            raise OutputError(f"{shown} is not a regular file (a device, FIFO or socket); nrto "
                              f"only replaces regular files")
        if not mode & 0o222 or not os.access(real, os.W_OK):
            raise OutputError(f"{shown} is read-only (mode {stat.S_IMODE(mode):04o}); make it "
                              f"writable (chmod u+w) or write elsewhere")
    folder = _folder(real)
    if not folder.is_dir():
        if not create_folder:
            raise OutputError(f"cannot write {given}: folder {_folder(given)} does not exist")
        while not folder.is_dir():
            if folder.exists() or folder == folder.parent:
                raise OutputError(f"cannot write {given}: {folder} is not a folder")
            folder = folder.parent
    _probe(folder, real)
    return real


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``'s real file; on success it replaces that file.

    Args:
        path: the output (checked with :func:`check_output`; its folder is created if missing).
        suffix: ending of the temporary name (default: ``path``'s suffix, so that writers that
            choose a format by extension, such as matplotlib, see the right one).

    The caller writes the temporary file; on a normal exit it is fsync'ed, given the existing
    file's mode (if there is one), renamed over the real file, and the folder is fsync'ed.
    On any exception the temporary file is removed and the output is left as it was.
    """
    real = check_output(path, create_folder=True)
    _folder(real).mkdir(parents=True, exist_ok=True)
    suffix = real.suffix if suffix is None else suffix
    temporary = real.with_name(f"{temporary_prefix(real)}{os.getpid()}{suffix}")
    try:
        yield temporary
        _put_in_place(temporary, real)   # ``real`` was checked above: no second probe
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        full = no_space_error(real, error)
        if full is not None:
            raise full from None
        raise


def replace_with(temporary: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Put the finished file ``temporary`` (in the same file system) in place of ``path``: fsync,
    the existing file's mode (a new file keeps its own), ``os.replace``, fsync of the folder.

    Returns:
        The real path written. Raises :class:`OutputError` as :func:`check_output` does.
    """
    real = check_output(path)
    _put_in_place(Path(temporary), real)
    return real


def _put_in_place(temporary: Path, real: Path) -> None:
    """fsync ``temporary``, give it ``real``'s mode, rename it over ``real``, fsync the folder."""
    _fsync(temporary)
    _keep_mode(real, temporary)
    os.replace(temporary, real)
    _fsync(_folder(real), directory=True)


def _keep_mode(real: Path, temporary: Path) -> None:
    """Give ``temporary`` the permission bits (and owner) of the file it replaces."""
    try:
        old = real.stat()
    except FileNotFoundError:  # a new file keeps the mode its writer created it with
        return
    new = temporary.stat()
    if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
        try:
            os.chown(temporary, old.st_uid, old.st_gid)
        except PermissionError:  # only root may give a file away; the mode is kept regardless
            pass
    os.chmod(temporary, stat.S_IMODE(old.st_mode))


def describe_size(path: str | os.PathLike) -> str:
    """``"12.3 MB"``: the size of a written file, for the line that reports it."""
    return _bytes(Path(path).stat().st_size)
