"""Every writer goes through studies.outputs: links followed, special and read-only files refused,
modes kept, and every output checked before any work (a refused command leaves nothing behind).

Independent answers: ``os.stat``/``os.lstat`` of the paths (file type, mode, link target), the
bytes of files that must stay untouched, and the folder listings (no temporary file left).
"""
from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

import pytest

from studies.outputs import NoSpaceError, OutputError, atomic_output, check_output
from studies.store import ResultsFile, write_run


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_symlink_is_followed_and_stays_a_link(tmp_path, make_config, make_result):
    target = tmp_path / "real" / "runs.h5"
    target.parent.mkdir()
    write_run(target, make_config(0), make_result(0))
    link = tmp_path / "latest.h5"
    link.symlink_to(target)
    write_run(link, make_config(1), make_result(1))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert ResultsFile(target).run_ids() == ["run-0000", "run-0001"]
    # the lock and the temporaries live next to the real file (shared by every link to it)
    assert (target.parent / ".runs.h5.lock").is_file()
    assert not (tmp_path / ".latest.h5.lock").exists()


def test_special_files_and_folders_are_refused(tmp_path, make_config, make_result):
    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    for path, words in ((Path("/dev/null"), "not a regular file"), (fifo, "not a regular file"),
                        (tmp_path, "is a folder")):
        with pytest.raises(OutputError, match=words):
            write_run(path, make_config(), make_result())
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(OutputError, match="does not accept new files"):
        check_output("/proc/x.h5")
    with pytest.raises(OutputError, match="folder .* does not exist"):
        check_output(tmp_path / "missing" / "x.h5")
    assert check_output(tmp_path / "missing" / "x.h5", create_folder=True) == \
        tmp_path / "missing" / "x.h5"
    assert not (tmp_path / "missing").exists()  # a check creates nothing


def test_modes_are_kept_and_read_only_files_refused(tmp_path, make_config, make_result):
    private = tmp_path / "private.h5"
    write_run(private, make_config(0), make_result(0))
    assert stat.S_IMODE(private.stat().st_mode) == 0o666 & ~_umask()  # a new file
    private.chmod(0o600)
    write_run(private, make_config(1), make_result(1))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and len(ResultsFile(private)) == 2
    private.chmod(0o444)  # read-only: refused even for root, whom os.access lets write
    before = private.read_bytes()
    with pytest.raises(OutputError, match=r"read-only \(mode 0444\)"):
        write_run(private, make_config(2), make_result(2))
    assert private.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old\n")
    path.chmod(0o640)
    with pytest.raises(RuntimeError):
        with atomic_output(path) as temporary:
            temporary.write_text("half")
            raise RuntimeError("writer failed")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["table.csv"]
    with atomic_output(path) as temporary:
        assert temporary.suffix == ".csv" and temporary.parent == tmp_path
        temporary.write_text("new\n")
    assert path.read_text() == "new\n" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_figures_follow_the_same_rules(tmp_path, nrto, make_config, make_result):
    results = tmp_path / "runs.h5"
    write_run(results, make_config(0), make_result(0))
    figure = tmp_path / "fig.png"
    figure.write_bytes(b"")
    figure.chmod(0o600)
    link = tmp_path / "link.png"
    link.symlink_to(figure)
    code, _, err = nrto("plot", results, "--out", link)
    assert code == 0, err
    assert link.is_symlink() and figure.read_bytes()[:4] == b"\x89PNG"
    assert stat.S_IMODE(figure.stat().st_mode) == 0o600
    assert "wrote" in err and ("kB" in err or "MB" in err)
    code, _, err = nrto("plot", results, "--out", "/dev/null")
    assert code == 2 and "not a regular file" in err and len(err.strip().splitlines()) == 1
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_refused_analysis_stores_nothing_and_leaves_nothing(tmp_path, nrto, make_config,
                                                              make_result):
    results = tmp_path / "an.h5"
    write_run(results, make_config(0), make_result(0))
    before = results.read_bytes()
    folder = tmp_path / "SOMEFOLDER"
    folder.mkdir()
    cases = {"a folder": folder, "a device": "/dev/null", "unknown format": tmp_path / "f.xyz",
             "missing folder": tmp_path / "no" / "f.png"}
    for name, out in cases.items():
        code, out_text, err = nrto("spectrum", results, "--run", 0, "--runs", 1,
                                   "--steps", 3, "--out", out, "--no-progress")
        assert code == 2 and len(err.strip().splitlines()) == 1, (name, err)
        assert out_text == "" and "Traceback" not in err, name
    assert results.read_bytes() == before and ResultsFile(results).analyses(0) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".an.h5.lock", "SOMEFOLDER", "an.h5"]
    assert list(folder.iterdir()) == []


def test_an_unwritable_results_path_fails_before_any_work(nrto):
    start = time.monotonic()
    code, _, err = nrto("optimize", "--problem", "mbb_beam", "--size", "16x8",
                        "--volfrac", "0.5", "--model", "pixel", "--optimizer", "lbfgs",
                        "--steps", 100000, "--no-progress", "--out", "/proc/x.h5")
    assert code == 2 and "/proc" in err and len(err.strip().splitlines()) == 1, err
    assert time.monotonic() - start < 10  # refused up front, not after 100000 evaluations


# an HDF5 write that found its disk full: the text of the error h5py raises (errno 28)
_HDF5_FULL = ("Can't close file (file write failed: time = Mon Dec  7 08:49:07 2026\n, filename "
              "= '/x/.a.h5.tmp-1', file descriptor = 4, errno = 28, error message = 'No space "
              "left on device', buf = 0x5, total write size = 23832)")


def test_a_full_disk_is_one_line_before_and_during_a_write(tmp_path, make_config, make_result,
                                                           monkeypatch):
    """A results file that cannot fit is refused before the write (free space against the file
    plus the new arrays); a write that finds the disk full anyway (a quota, HDF5's own error
    text) is the same one-line error; the file stays as it was and no temporary is left."""
    import studies.outputs
    import studies.store

    path = tmp_path / "runs.h5"
    write_run(path, make_config(0), make_result(0))
    before = path.read_bytes()
    usage = studies.outputs.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(studies.outputs.shutil, "disk_usage",
                        lambda _: usage._replace(free=1000))
    with pytest.raises(NoSpaceError, match=r"cannot write .*runs.h5: its file system is too full "
                                           r"\(it needs about .* kB, 1.0 kB free there\)"):
        write_run(path, make_config(1), make_result(1))
    # a file system that reports no size at all (some FUSE mounts) is not taken for a full one
    monkeypatch.setattr(studies.outputs.shutil, "disk_usage",
                        lambda _: usage._replace(total=0, free=0))
    write_run(path, make_config(1), make_result(1))
    monkeypatch.undo()
    path.write_bytes(before)

    def full(*args, **kwargs):
        raise RuntimeError(_HDF5_FULL)

    monkeypatch.setattr(studies.store, "_write_group", full)
    with pytest.raises(NoSpaceError, match="No space left on device") as error:
        write_run(path, make_config(1), make_result(1))
    assert "\n" not in str(error.value) and "nothing was replaced" in str(error.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".runs.h5.lock", "runs.h5"]
    # other writers: an errno that says "quota" is recognised as well, other errors pass through
    with pytest.raises(NoSpaceError, match="Disk quota exceeded"):
        with atomic_output(tmp_path / "t.csv"):
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    with pytest.raises(OSError, match="Permission denied"):
        with atomic_output(tmp_path / "t.csv"):
            raise PermissionError(errno.EACCES, "Permission denied")


def test_a_lease_whose_file_cannot_be_written_is_given_back(tmp_path, monkeypatch):
    """Otherwise the same process, trying again, finds its own lock 'held by another process'."""
    import studies.liveness
    from studies.liveness import RunLease

    real = studies.liveness.atomic_output

    def full(path):
        raise NoSpaceError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(studies.liveness, "atomic_output", full)
    with pytest.raises(NoSpaceError):
        RunLease(tmp_path / "a.h5", "run-0000").acquire()
    monkeypatch.setattr(studies.liveness, "atomic_output", real)
    lease = RunLease(tmp_path / "a.h5", "run-0000")
    assert lease.acquire() is None
    lease.release()
