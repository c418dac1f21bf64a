"""Reproduction of the 2021 TU Delft thesis's Chapter 3 and Appendices B-C (issue 9).

Modules: :mod:`~studies.thesis.protocol` (codes, optimizers, budgets), :mod:`~studies.thesis.specs`
(the runs as study-engine specs), :mod:`~studies.thesis.curves` (records -> loss curves and table
statistics), :mod:`~studies.thesis.items` (every table and figure, the registry ``ITEMS``),
:mod:`~studies.thesis.landscape_items` and :mod:`~studies.thesis.landscapes` (interpolations,
spectra, planes, distances on the stored runs), :mod:`~studies.thesis.figures` (drawing),
:mod:`~studies.thesis.report` (``REPORT.md``), :mod:`~studies.thesis.stability` (why the published
GD steps diverge) and :mod:`~studies.thesis.cli` (``nrto reproduce thesis``).
"""
from .cli import add_thesis_target, reproduce_thesis

__all__ = ["add_thesis_target", "reproduce_thesis"]
