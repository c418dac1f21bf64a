"""Reproduction of the 2021 TU Delft thesis's Chapter 3 and Appendices B-C (issue 9).

Modules: :mod:`~studies.thesis.protocol` (codes, optimizers, budgets), :mod:`~studies.thesis.specs`
(the runs as study-engine specs), :mod:`~studies.thesis.curves` (records -> loss curves and tables),
:mod:`~studies.thesis.items` (every table and figure), :mod:`~studies.thesis.stability` (why the
published GD steps diverge), :mod:`~studies.thesis.cli` (``nrto reproduce thesis``).
"""
