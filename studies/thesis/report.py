"""``REPORT.md`` of the thesis reproduction, assembled from the stored item sections.

Every built item leaves ``<out>/items/<item>.json`` (:class:`studies.thesis.items.Section`); the
report lists every item of :data:`~studies.thesis.items.ITEMS` in order, with its files, settings,
defaults (pointers to the guide's numbered ambiguities), cells done of all, CPU time and reading;
items never built say so. It closes with the CPU-hours per item and in total.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from studies.study.records import atomic_write_bytes

__all__ = ["write_report"]

_HEADER = """# Reproduction of the thesis (Chapter 3, Appendices B and C)

Source: Suryanarayanan M S, *Exploring the optimization process in Neurally Reparameterized
Topology Optimization*, TU Delft MSc thesis, 2021. Protocol and numbered ambiguities:
`shared/guides/thesis-studies.md` (the guide). Command: `nrto reproduce thesis [--items ...]
[--quick] [--jobs N | --scheduler ADDR] [--tune]`. The CNN is the thesis's transposed-convolution
variant (guide §1.5, ambiguity 3) unless stated; pixel runs of seed s start from the transposed
CNN(seed=s)'s output (§1.6, ambiguity 4). Compact records of every run are under `records/`.
"""


def write_report(out: Path, items, *, intro: str = "") -> Path:
    """Write ``<out>/REPORT.md`` from the sections stored under ``<out>/items``."""
    out = Path(out)
    lines = [_HEADER]
    if intro:
        lines += [intro, ""]
    lines.append(f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with Python "
                 f"{platform.python_version()}.\n")
    total = 0.0
    hours = []
    for name, item in items.items():
        path = out / "items" / f"{name}.json"
        lines.append(f"## {item.title} (`{name}`)\n")
        if not path.exists():
            lines.append("Not built yet: run `nrto reproduce thesis --items "
                         f"{name}`.\n")
            continue
        section = json.loads(path.read_text())
        files = ", ".join(f"`{f}`" for f in section["files"]) or "none"
        scale = " (QUICK toy run: not the thesis's protocol)" if section["quick"] else ""
        done = (f"{section['cells_done']} of {section['cells_total']} cells done"
                if section["cells_total"] else "no study cells (computed directly)")
        lines += [f"- Files: {files}{scale}", f"- Settings: {section['settings']}",
                  f"- Defaults taken: {section['defaults']}",
                  f"- Progress: {done}; compute {section['cpu_s'] / 3600:.3f} CPU-hours",
                  f"- Reading: {section['reading']}", ""]
        if section["cells_total"] and section["cells_done"] < section["cells_total"]:
            lines.append(f"  Records missing for {section['cells_total'] - section['cells_done']}"
                         " cells: the numbers above cover the finished cells only.\n")
        total += section["cpu_s"]
        hours.append(f"| {name} | {section['cpu_s'] / 3600:.3f} |")
    lines += ["## Compute", "", "| item | CPU-hours (its studies' records; shared studies are "
              "counted in each item) |", "|---|---|", *hours,
              f"| **sum** | {total / 3600:.3f} |", ""]
    path = out / "REPORT.md"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path
