"""The C allocator keeps the memory a process frees (``studies.threads.keep_freed_memory``).

Independent answer: the kernel's count of minor page faults (``ru_minflt``). A 64 MiB buffer
allocated and freed again and again costs 16,384 faults per round with glibc's defaults (it is
mapped anew each time) and next to none once freed memory is kept for the next allocation.
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 20
GLIBC = platform.libc_ver()[0] == "glibc"

_CHILD = f"""
import json, resource
from studies.threads import configure_threads, keep_freed_memory
configure_threads(1)
SIZE = 64 * 2 ** 20


def one_round():   # 64 MiB allocated, every 4 KiB page written, freed (plain malloc: a
    buffer = bytearray(SIZE)                  # bytearray, not numpy, which asks for huge pages)
    buffer[::4096] = bytes(SIZE // 4096)
    return buffer[0]


one_round()                                   # the first round may grow the heap
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({ROUNDS}):
    one_round()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({{"kept": keep_freed_memory(), "faults_per_round": faults / {ROUNDS}}}))
"""


def _faults(keep: str) -> dict:
    env = {**os.environ, "NRTO_KEEP_FREED_MEMORY": keep, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=120, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_freed_memory_is_kept_for_the_next_allocation():
    default, kept = _faults("0"), _faults("1")
    assert default["kept"] is False and kept["kept"] is True
    assert default["faults_per_round"] > 8_000, default   # 16,384 pages of 4 KiB mapped anew
    assert kept["faults_per_round"] < 0.05 * default["faults_per_round"], (default, kept)


def test_it_is_idempotent_and_says_whether_it_applied(monkeypatch):
    from studies import threads

    monkeypatch.setitem(threads._state, "allocator", None)
    monkeypatch.setenv("NRTO_KEEP_FREED_MEMORY", "0")
    assert threads.keep_freed_memory() is False
    monkeypatch.setenv("NRTO_KEEP_FREED_MEMORY", "1")
    first = threads.keep_freed_memory()
    assert first is GLIBC
    assert threads.keep_freed_memory() is first


def test_a_platform_without_a_process_symbol_table_is_left_alone(monkeypatch):
    """On Windows ``ctypes.CDLL(None)`` raises TypeError; start-up must go on without mallopt."""
    import ctypes

    from studies import threads
    monkeypatch.setitem(threads._state, "allocator", None)
    monkeypatch.setenv("NRTO_KEEP_FREED_MEMORY", "1")

    def no_none_name(name, *args, **kwargs):
        raise TypeError("LoadLibrary() argument 1 must be str, not None")
    monkeypatch.setattr(ctypes, "CDLL", no_none_name)
    assert threads.keep_freed_memory() is False
