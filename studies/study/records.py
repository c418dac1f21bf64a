"""Compact records of finished cells and the layout of a study's results folder.

Folder layout (``DIR``)::

    DIR/study.json            the canonical spec and its fingerprint (written by the first run)
    DIR/records/<key>.json    one compact record per finished cell (small; commit these)
    DIR/runs/<key>.h5         one run file per cell: checkpoints, then the full run (git-ignored)
    DIR/tune/<group>.json     the trials of each tuning group; DIR/tune/records/ their cells
    DIR/REPORT.md, DIR/tables/*.csv, DIR/figures/*.png   written by ``nrto study report``

A compact record is one JSON file with two parts:

* ``"deterministic"``: everything that depends only on the cell (its spec and key, status,
  message, counts, the loss per evaluation and per iterate, the gradient norms, the final and the
  best design as 8-bit images, the dtype). Reruns, resumes and other executors on one machine
  must give the same bytes: :meth:`CompactRecord.deterministic_json` is this part as canonical
  JSON, which the tests compare byte for byte. Another processor rounds differently (its BLAS
  and oneDNN kernels), so a study continued on a new machine holds records of both roundings;
  ``provenance.machine`` says which (see :func:`studies.study.execute.machine`).
* ``"provenance"``: what may differ between runs of the same cell (wall and CPU seconds, package
  versions, git revision, host, processor and BLAS kernels, finish time, executor, how often it
  resumed).

Arrays are stored as ``{"dtype", "shape", "data"}`` with ``data`` = base64 of zlib (level 9) of
the little-endian bytes, byte-shuffled for floats (all first bytes, then all second bytes, ...).
Two savings keep a 256x256 cell of 1000 steps under 50 KB: the loss per iterate is stored as
the positions of those values in the loss per evaluation when they all occur there (L-BFGS's
accepted points; ``{"indices_in", "gaps"}``), and the best design as its difference modulo 256 to
the final design when that is shorter (``{"relative_to", "delta"}``). Designs are uint8
``round(255 * density)`` (``density = q / 255``, error <= 1/510). All files are written
atomically (temporary file in the same folder, fsync, ``os.replace``).
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import sys
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from studies.jsontext import loads_json
from studies.outputs import atomic_output

from .spec import Cell, Study, StudyError, canonical_json

__all__ = [
    "RECORD_FORMAT",
    "CompactRecord",
    "DamagedRecord",
    "StudyFolder",
    "atomic_write_bytes",
    "damaged_derived",
    "decode_array",
    "design_to_uint8",
    "encode_array",
    "read_derived_json",
    "set_aside",
]

RECORD_FORMAT = "nrto-study-record"
RECORD_VERSION = 1
SPEC_FORMAT = "nrto-study"


class DamagedRecord(StudyError):
    """A file in a record's place that cannot be read as a compact record (not JSON, another
    format, a missing or malformed field, another cell's record). A record of a newer version
    is not damaged: it raises a plain :class:`StudyError` (this nrto is too old to read it)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename, fsync folder); a
    full file system is :class:`~studies.outputs.NoSpaceError` naming ``path``."""
    with atomic_output(path, suffix="") as temporary:
        temporary.write_bytes(data)


def read_derived_json(path: Path) -> dict[str, Any]:
    """A JSON table that a reproduction derived and committed (a cache of CPU-costly results,
    a report section).

    Raises:
        StudyError: the file is not such a table (say a bad merge left conflict markers in it):
            one line naming it and how to recover, since a cache may need run files that a
            checkout does not have to be computed again.
    """
    try:
        data = loads_json(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"it holds a {type(data).__name__}, not a table")
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError too
        raise damaged_derived(path, error) from None
    return data


def damaged_derived(path: Path, error: BaseException, *, also: str = "") -> StudyError:
    """The error for a damaged file that a reproduction derived and committed: what is wrong
    and how to recover (``also``: a companion file to delete with it)."""
    delete = f"delete it and {also}" if also else "delete it"
    return StudyError(f"{path} is damaged ({' '.join(str(error).split())[:120]}): restore it "
                      f"(git checkout -- {path}) or {delete} to compute it again")


def set_aside(path: Path, problem: str, consequence: str) -> Path:
    """Move a damaged study file to ``<name>.damaged`` beside it (kept for inspection; an older
    one of that name is replaced) and warn on stderr: ``warning: PROBLEM; moved to NAME,
    CONSEQUENCE``. Returns the new path."""
    aside = path.with_name(path.name + ".damaged")
    os.replace(path, aside)
    print(f"warning: {problem}; moved to {aside.name}, {consequence}", file=sys.stderr,
          flush=True)
    return aside


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """A JSON-able, lossless encoding of a numeric array (see the module docstring)."""
    array = np.ascontiguousarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
    raw = array.astype(dtype, copy=False)
    data = raw.tobytes()
    if raw.dtype.kind == "f" and raw.size:
        data = np.frombuffer(data, np.uint8).reshape(raw.size, raw.dtype.itemsize).T.tobytes()
    return {"dtype": raw.dtype.str, "shape": list(raw.shape),
            "data": base64.b64encode(zlib.compress(data, 9)).decode("ascii")}


def decode_array(encoded: Mapping[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    dtype = np.dtype(encoded["dtype"])
    shape = tuple(encoded["shape"])
    data = zlib.decompress(base64.b64decode(encoded["data"]))
    size = int(np.prod(shape, dtype=np.int64))
    if dtype.kind == "f" and size:
        data = np.frombuffer(data, np.uint8).reshape(dtype.itemsize, size).T.tobytes()
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def design_to_uint8(design: np.ndarray) -> np.ndarray:
    """``round(255 * clip(density, 0, 1))`` as uint8, NaN as 0; shape kept ``(H, W)``."""
    design = np.nan_to_num(np.asarray(design, dtype=np.float64), nan=0.0)
    return np.rint(255.0 * np.clip(design, 0.0, 1.0)).astype(np.uint8)


def _encode_subsequence(values: np.ndarray, source: np.ndarray) -> dict[str, Any]:
    """``values`` as the gaps between the indices where they occur (bit for bit, in order) in
    ``source`` -- the iterate losses of L-BFGS are some of its evaluation losses -- or plainly
    when they do not all occur."""
    indices, position = [], 0
    source_bits, value_bits = source.view(np.int64), values.view(np.int64)
    for bits in value_bits:
        found = np.flatnonzero(source_bits[position:] == bits)
        if not found.size:
            return encode_array(values)
        indices.append(position + int(found[0]))
        position = indices[-1] + 1
    gaps = np.diff(np.asarray([-1, *indices], dtype=np.int64))
    return {"indices_in": "loss_per_evaluation", "gaps": encode_array(gaps)}


def _decode_subsequence(encoded: Mapping[str, Any], source: np.ndarray) -> np.ndarray:
    if "indices_in" not in encoded:
        return decode_array(encoded)
    return source[np.cumsum(decode_array(encoded["gaps"])) - 1].copy()


def _encode_relative(design: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """``design`` as its difference modulo 256 to ``reference`` when that is shorter (the best
    design is often the final one, or close to it)."""
    plain = encode_array(design)
    if design.shape != reference.shape:
        return plain
    delta = encode_array((design.astype(np.int16) - reference).astype(np.uint8))
    if len(delta["data"]) >= len(plain["data"]):
        return plain
    return {"relative_to": "final_design", "delta": delta}


def _decode_relative(encoded: Mapping[str, Any], reference: np.ndarray) -> np.ndarray:
    if "relative_to" not in encoded:
        return decode_array(encoded)
    return (reference.astype(np.int16) + decode_array(encoded["delta"])).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class CompactRecord:
    """What a finished cell leaves behind (see the module docstring).

    Attributes:
        cell: the cell.
        status, message, converged: how the run ended (``solvers.result.STATUSES``).
        iterations, evaluations: accepted steps and objective calls.
        loss_per_evaluation: float64 ``(evaluations,)``.
        loss_per_iterate: float64 ``(iterations + 1,)``.
        grad_norm_per_iterate: float64 ``(iterations + 1,)``.
        final_design: uint8 ``(H, W)``, the design of the last iterate.
        best_design: uint8 ``(H, W)``, the design of the evaluation with the lowest loss.
        best_evaluation: index of that evaluation (-1 when no loss was finite).
        dtype: the network's floating-point type (``"float64"`` for pixels).
        provenance: wall_s, cpu_s, versions, git_revision, git_dirty, host, finished,
            executor, resumed (checkpoints resumed from), restarted (runs started afresh).
    """

    cell: Cell
    status: str
    message: str
    converged: bool
    iterations: int
    evaluations: int
    loss_per_evaluation: np.ndarray
    loss_per_iterate: np.ndarray
    grad_norm_per_iterate: np.ndarray
    final_design: np.ndarray
    best_design: np.ndarray
    best_evaluation: int
    dtype: str
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.cell.key

    @property
    def curve(self) -> np.ndarray:
        """The loss per step in the cell's curve unit (``cell.curve``)."""
        return self.loss_per_evaluation if self.cell.curve == "evaluation" \
            else self.loss_per_iterate

    @property
    def final_loss(self) -> float:
        """Loss at the last iterate."""
        return float(self.loss_per_iterate[-1]) if self.loss_per_iterate.size else float("nan")

    @property
    def best_loss(self) -> float:
        finite = self.loss_per_evaluation[np.isfinite(self.loss_per_evaluation)]
        return float(finite.min()) if finite.size else float("nan")

    def deterministic(self) -> dict[str, Any]:
        """The part that must be identical across reruns and executors."""
        final = np.asarray(self.final_design, np.uint8)
        return {"cell": self.cell.to_dict(), "key": self.key, "status": self.status,
                "message": self.message, "converged": bool(self.converged),
                "iterations": int(self.iterations), "evaluations": int(self.evaluations),
                "dtype": self.dtype, "best_evaluation": int(self.best_evaluation),
                "loss_per_evaluation": encode_array(np.asarray(self.loss_per_evaluation,
                                                               np.float64)),
                "loss_per_iterate": _encode_subsequence(
                    np.asarray(self.loss_per_iterate, np.float64),
                    np.asarray(self.loss_per_evaluation, np.float64)),
                "grad_norm_per_iterate": encode_array(np.asarray(self.grad_norm_per_iterate,
                                                                 np.float64)),
                "final_design": encode_array(final),
                "best_design": _encode_relative(np.asarray(self.best_design, np.uint8), final)}

    def deterministic_json(self) -> str:
        """The deterministic part as canonical JSON (compare these bytes across runs)."""
        return canonical_json(self.deterministic())

    def to_json(self) -> str:
        return json.dumps({"format": RECORD_FORMAT, "version": RECORD_VERSION,
                           "deterministic": self.deterministic(),
                           "provenance": dict(self.provenance)}, sort_keys=True, indent=1,
                          allow_nan=True)

    @classmethod
    def read(cls, path: Path) -> CompactRecord:
        """The record in the file ``path`` (see :meth:`from_json`; text that is not UTF-8 is a
        :class:`DamagedRecord` too)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise DamagedRecord(f"{path} is not a compact record (not UTF-8 text: {error})") \
                from None
        return cls.from_json(text, str(path))

    @staticmethod
    def cpu_s(path: Path) -> float:
        """The CPU seconds in the provenance of the record file ``path``, without decoding its
        arrays (cheap: for the compute totals of reports).

        Raises:
            DamagedRecord: the file is not a record with a numeric ``provenance.cpu_s``.
        """
        try:
            data = loads_json(Path(path).read_text(encoding="utf-8"))
            return float(data.get("provenance", {}).get("cpu_s") or 0.0)
        except (ValueError, TypeError, AttributeError) as error:  # UnicodeDecodeError too
            raise DamagedRecord(f"{path} is not a compact record (its provenance.cpu_s cannot "
                                f"be read: {' '.join(str(error).split())[:120]})") from None

    @classmethod
    def from_json(cls, text: str, where: str = "record") -> CompactRecord:
        """Read :meth:`to_json`'s text; ``where`` names the source in errors.

        Raises:
            DamagedRecord: the text is not a compact record (not JSON, another format, a
                missing or malformed field: the message names it).
            StudyError: a record of a newer version than this nrto reads.
        """
        try:
            data = loads_json(text)
        except json.JSONDecodeError as error:
            raise DamagedRecord(f"{where} is not a compact record ({error})") from None
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise DamagedRecord(f"{where} is not a compact record (format {found!r})")
        try:
            version = int(data.get("version", 0))
        except (TypeError, ValueError):
            raise DamagedRecord(f"{where} is not a compact record (version "
                             f"{data.get('version')!r})") from None
        if version > RECORD_VERSION:
            raise StudyError(f"{where} has record version {data['version']}; this nrto reads up "
                             f"to {RECORD_VERSION}")
        try:
            return cls._from_parts(data["deterministic"], data.get("provenance", {}))
        except KeyError as error:
            raise DamagedRecord(f"{where} is not a complete compact record (no field "
                             f"{error})") from None
        except (TypeError, ValueError, AttributeError, zlib.error, binascii.Error) as error:
            raise DamagedRecord(f"{where} is a damaged compact record ({type(error).__name__}: "
                             f"{error})") from None

    @classmethod
    def _from_parts(cls, d: Mapping[str, Any], provenance: Mapping[str, Any]) -> CompactRecord:
        if not isinstance(d.get("cell"), dict):
            raise TypeError("its cell is not a mapping")
        missing = sorted(field.name for field in dataclasses.fields(Cell)
                         if field.name not in d["cell"] and field.default is dataclasses.MISSING)
        if missing:
            raise KeyError(f"cell.{missing[0]}")
        losses = decode_array(d["loss_per_evaluation"])
        final = decode_array(d["final_design"])
        return cls(cell=Cell.from_dict(d["cell"]), status=d["status"], message=d["message"],
                   converged=bool(d["converged"]), iterations=int(d["iterations"]),
                   evaluations=int(d["evaluations"]), dtype=d["dtype"],
                   best_evaluation=int(d["best_evaluation"]),
                   loss_per_evaluation=losses,
                   loss_per_iterate=_decode_subsequence(d["loss_per_iterate"], losses),
                   grad_norm_per_iterate=decode_array(d["grad_norm_per_iterate"]),
                   final_design=final,
                   best_design=_decode_relative(d["best_design"], final),
                   provenance=dict(provenance))


class StudyFolder:
    """A study's results folder (see the module docstring); creates nothing until written."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def spec_path(self) -> Path:
        return self.path / "study.json"

    def records_dir(self, stage: str = "evaluate") -> Path:
        return self.path / ("records" if stage == "evaluate" else "tune/records")

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def tune_dir(self) -> Path:
        return self.path / "tune"

    def record_path(self, cell: Cell) -> Path:
        return self.records_dir(cell.stage) / f"{cell.key}.json"

    def run_path(self, cell: Cell) -> Path:
        return self.runs_dir / f"{cell.key}.h5"

    # -- the spec ----------------------------------------------------------------------------
    def read_spec(self) -> dict[str, Any] | None:
        """The stored canonical spec, or None when the folder has none."""
        if not self.spec_path.exists():
            return None
        try:
            data = loads_json(self.spec_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError too
            raise StudyError(f"{self.spec_path} is not a study spec "
                             f"({' '.join(str(error).split())[:160]})") from None
        if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise StudyError(f"{self.spec_path} is not a study spec (format {found!r})")
        return data

    def study(self) -> Study:
        """The study stored in the folder (for ``status`` and ``report``)."""
        if self.path.exists() and not self.path.is_dir():
            raise StudyError(f"{self.path} is a file, not a study folder (the folder that "
                             f"holds study.json, records/ and REPORT.md)")
        data = self.read_spec()
        if data is None:
            raise StudyError(f"{self.path} holds no study (no {self.spec_path.name}); run "
                             f"`nrto study run SPEC --out {self.path}` first")
        return Study.from_dict(data["spec"])

    def check_owner(self, study: Study, force: bool) -> None:
        """Refuse (before anything is written) a folder that belongs to another spec.

        Raises:
            StudyError: the folder holds another study's spec and ``force`` is False, or it is
                a file, or it is a non-empty folder that is not a study folder.
        """
        if self.path.exists() and not self.path.is_dir():
            raise StudyError(f"--out {self.path} is a file; give a folder")
        stored = self.read_spec()
        if stored is None:
            # the driver lease of a run refused before it wrote the spec is no content
            ignored = (".gitignore", f".{self.spec_path.name}.live")
            if self.path.is_dir() and any(p.name not in ignored
                                          for p in self.path.iterdir()) and not force:
                raise StudyError(f"{self.path} is not empty and holds no study; choose another "
                                 f"--out (or --force to use it)")
            return
        if stored.get("fingerprint") != study.fingerprint and not force:
            raise StudyError(f"{self.path} holds study {stored['spec'].get('name')!r} written by "
                             f"another spec (fingerprint {stored.get('fingerprint', '?')[:12]} "
                             f"!= {study.fingerprint[:12]}); use another --out, or --force to "
                             f"replace its spec (records of identical cells are kept)")

    def write_spec(self, study: Study) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": SPEC_FORMAT, "fingerprint": study.fingerprint,
                           "spec": study.to_dict()}, sort_keys=True, indent=1)
        if not self.spec_path.exists() or self.spec_path.read_bytes() != text.encode():
            atomic_write_bytes(self.spec_path, text.encode())

    # -- records -----------------------------------------------------------------------------
    def finished(self, cell: Cell) -> bool:
        """Whether ``cell`` has a readable record of its own (so it is not computed again).

        A damaged file in its place (a bad merge or copy, an edit by hand; see
        :class:`DamagedRecord`) is moved aside to ``records/<key>.json.damaged``, kept for
        inspection (it replaces an older one of that name), with a warning on stderr, and the
        cell counts as unfinished: the run computes it again.

        Raises:
            StudyError: the record is of a newer version than this nrto reads (it is left as
                it is).
        """
        path = self.record_path(cell)
        if not path.exists():
            return False
        try:
            self._read(path, cell)
        except DamagedRecord as error:
            set_aside(path, str(error), "its cell is computed again")
            return False
        return True

    def write_record(self, record: CompactRecord) -> Path:
        path = self.record_path(record.cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, record.to_json().encode())
        return path

    def read_record(self, cell: Cell) -> CompactRecord | None:
        """The record of ``cell``, None when it has not finished.

        Raises:
            DamagedRecord: its file is damaged (the message says how to recompute the cell).
        """
        path = self.record_path(cell)
        if not path.exists():
            return None
        try:
            return self._read(path, cell)
        except DamagedRecord as error:
            raise DamagedRecord(f"{error}; `nrto study run` (or the reproduce command) moves it "
                                f"aside and computes its cell again") from None

    @staticmethod
    def _read(path: Path, cell: Cell) -> CompactRecord:
        record = CompactRecord.read(path)
        if record.cell.key != cell.key:
            raise DamagedRecord(f"{path} holds the record of another cell "
                                f"({record.cell.label}, key {record.cell.key})")
        return record

    def read_summary(self, cell: Cell) -> dict[str, Any] | None:
        """``status``, ``evaluations``, ``iterations`` and the provenance of a finished cell
        without decoding its arrays (cheap: for ``status`` over many cells); None if unfinished.

        Raises:
            DamagedRecord: as :meth:`read_record`.
        """
        path = self.record_path(cell)
        if not path.exists():
            return None
        try:
            data = loads_json(path.read_text(encoding="utf-8"))
            d = data["deterministic"]
            if d["cell"]["key"] != cell.key:
                raise KeyError("key")
            return {"status": d["status"], "evaluations": d["evaluations"],
                    "iterations": d["iterations"], "provenance": data.get("provenance", {})}
        except (ValueError, KeyError, TypeError):  # JSONDecodeError and UnicodeDecodeError too
            self.read_record(cell)  # raises, naming what is wrong
            raise  # not reached: a record that reads fully has these fields

    def records(self, cells: tuple[Cell, ...]) -> Iterator[tuple[Cell, CompactRecord | None]]:
        """Each cell with its record (None when it has not finished)."""
        for cell in cells:
            yield cell, self.read_record(cell)
