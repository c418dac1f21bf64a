"""``REPORT.md`` of the thesis reproduction, assembled from the stored item sections.

Every built item leaves ``<out>/items/<item>.json`` (:class:`studies.thesis.items.Section`); the
report lists every item of :data:`~studies.thesis.items.ITEMS` in order, with its files, settings,
defaults (pointers to the guide's numbered ambiguities), cells done of all, CPU time and reading;
items never built say so. It closes with the CPU-hours per item and in total.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

from studies.study.records import atomic_write_bytes, read_derived_json

__all__ = ["write_report"]

_HEADER = """# Reproduction of the thesis (Chapter 3, Appendices B and C)

Source: Suryanarayanan M S, *Exploring the optimization process in Neurally Reparameterized
Topology Optimization*, TU Delft MSc thesis, 2021. Protocol and numbered ambiguities:
`shared/guides/thesis-studies.md` (the guide). Command: `nrto reproduce thesis [--items ...]
[--quick] [--jobs N | --scheduler ADDR] [--tune] [--force]`. The CNN is the thesis's
transposed-convolution variant (guide §1.5, ambiguity 3) unless stated; pixel runs of seed s
start from the transposed CNN(seed=s)'s output (§1.6, ambiguity 4). Compact records of every run
are under `records/`.

Precision and budgets, where the thesis is silent or our first runs differed from its protocol:

* The CNN runs in float32, the pixels and the physics in float64 (ambiguity 25: Hoyer's
  precision); pixel starts come from the float32 CNN. The landscape figures (spectra,
  interpolations, planes) rebuild the network in float64 at the runs' parameters, so their
  second derivatives are exact. (The first 42 Chapter 3 records, written with a float64 CNN, were
  discarded and rerun.)
* GD_LS runs 700 iterations (B.2.4), whatever their line searches cost: an iteration cap on the
  restarted L-BFGS-B. A 1400-evaluation budget, used at first, stopped the CNN runs after 427-654
  iterations.
* A fixed-step run (GD, HD) whose gradient becomes exactly zero at a loss above its start (the
  step saturated the network's tanh/sigmoid units) is recorded as *failed* ("diverged"), not as
  converged; its best-so-far curve keeps the best loss it reached.
* Cells are run seed by seed: while a study is incomplete, every row has the same seeds done.
* A cell's record is the same bytes whenever it is rerun on one machine; the studies ran over
  several sittings on different machines, whose BLAS and oneDNN kernels round differently from
  the first step (records name their machine in `provenance.machine` since December 2026). A
  rerun elsewhere therefore agrees to rounding at first and, for chaotic runs, not at the end;
  Table 3.2's reading measures how much.
"""

STEP_SIZE_CONCLUSION = """## The published step sizes on our CNNs (issue 9 item 3)

Measured by the `step-sizes` item below (numbers in `step-sizes.csv`, `step-sizes-gd.csv`; NN3A,
seed 0, both CNN variants, float64). At the CNN's start the largest Hessian eigenvalue is of the
order 1e7 (the paper's bilinear CNN) to 1e8-1e9 (the thesis's transposed CNN), carried by the
convolution kernels (every kernel weight moves all pixels of its block's output at once, so its
curvature is about the pixel Hessian times the number of pixels); fixed-step GD is then stable
only below ~1e-9 to 1e-7, and Table B.1's 2.5e-4 is 1e3-1e5 times too large. What happens at
2.5e-4: one step takes the network into saturation (tanh and sigmoid), the loss jumps to ~1e9 and
stays there because the gradients vanish: a flat curve that "converges" without ever improving on
the start (best-so-far = the start loss). Readings tested or checked against the sources:

* the offsets' factor 10: 10 -> 1 divides only the offsets' block curvature by 100; the whole
  Hessian's top eigenvalue changes by under 20 %: not the cause;
* the initializer: the transposed variant follows Keras's fan computation for Conv2DTranspose
  (fan_in from the kernel's output-filter axis), which gives its start logits a standard
  deviation of 4.0 against 0.66 for the bilinear CNN (A, seed 0), a more saturated start and a
  ~20x larger top eigenvalue; the bilinear CNN, with the standard fans, is
  still ~4000x beyond the published step's stability limit;
* the global normalization keeps every block's input at unit variance, so a smaller
  initialization does not shrink the last blocks' curvature;
* Keras SGD in TF 2 applies ``w -= lr * g`` (momentum 0), and Hoyer's loss is the plain compliance
  (``reduce_mean`` over a batch of one): no hidden rescaling of the step;
* float32 (the thesis's CNN and our runs) against float64 (this analysis) changes rounding, not
  the curvature scale.

A loss normalized by its starting value (~1e4) would make 2.5e-4 act like ~2.7e-8, a step that
does converge here (cf. the 1e-8 and 1e-7 probes), but neither the thesis nor Hoyer's code
normalizes the compliance. The same bound applies to HD's published CNN steps (Tables B.2 and
B.3, 4e-3 to 0.63): HD's first step is a plain GD step (H0 = I, ambiguity 9). So no faithful
reading makes the published CNN steps stable. Of our probes (30 steps), 1e-6, the lower edge of
the thesis's search range, is the largest step that improves steadily on both variants (1e-5
still improves the transposed CNN and sends the bilinear one to ~4e9), although it exceeds
2/lambda_max at the start: the first steps leave the sharpest region. The reproduction
therefore runs Chapter 3 with the published steps (as the protocol says) and, with `--tune`,
tunes its own CNN steps (study `chapter3-tuned`, log10 range [-9, 0.3], the thesis's budgets and
seeds) and reports both (`table-3.3-cnn-tuned.csv`).
"""


def write_report(out: Path, items, *, intro: str = "", studies_cpu_s: float | None = None,
                 command: str = "nrto reproduce thesis") -> Path:
    """Write ``<out>/REPORT.md`` from the sections stored under ``<out>/items``.

    ``studies_cpu_s``: the CPU of every study record, each run counted once, for the compute
    table's last row (items share studies, so their own rows do not add up to it).
    ``command``: the command (with the flags of this folder, e.g. ``--upsampling bilinear``)
    that an item not built yet is told to run.
    """
    out = Path(out)
    lines = [_HEADER, STEP_SIZE_CONCLUSION]
    if intro:
        lines += [intro, ""]
    lines.append(f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with Python "
                 f"{platform.python_version()}.\n")
    hours = []
    for name, item in items.items():
        path = out / "items" / f"{name}.json"
        lines.append(f"## {item.title} (`{name}`)\n")
        if not path.exists():
            lines.append(f"Not built yet: run `{command} --items {name}`.\n")
            continue
        section = read_derived_json(path)
        files = ", ".join(f"`{f}`" for f in section["files"]) or "none"
        scale = " (QUICK toy run: not the thesis's protocol)" if section["quick"] else ""
        parts = []
        if section["cells_total"]:
            parts.append(f"{section['cells_done']} of {section['cells_total']} cells done")
        if section.get("trials_total"):
            parts.append(f"{section['trials_done']} of {section['trials_total']} tuning trials "
                         "done")
        done = ", ".join(parts) or "no study cells (computed directly)"
        lines += [f"- Files: {files}{scale}", f"- Settings: {section['settings']}",
                  f"- Defaults taken: {section['defaults']}",
                  f"- Progress: {done}; compute {section['cpu_s'] / 3600:.3f} CPU-hours",
                  f"- Reading: {section['reading']}", ""]
        if section["cells_total"] and section["cells_done"] < section["cells_total"]:
            lines.append(f"  Records missing for {section['cells_total'] - section['cells_done']}"
                         " cells: the numbers above cover the finished cells only.\n")
        hours.append(f"| {name} | {section['cpu_s'] / 3600:.3f} |")
    if studies_cpu_s is not None:
        hours.append(f"| **all study records, each run counted once** | "
                     f"{studies_cpu_s / 3600:.3f} |")
    lines += ["## Compute", "", "| item | CPU-hours (its studies' records; a study shared by "
              "several items is counted in each, so the rows do not add up) |", "|---|---|",
              *hours, ""]
    path = out / "REPORT.md"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path
