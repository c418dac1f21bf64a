"""The landscape computations of the thesis's figures, on objectives rebuilt from study cells.

Every function takes a cell (whose run file holds the iterates or pairs it needs) or a
``RunConfig``, computes with :mod:`landscape`, and returns plain arrays; :mod:`studies.thesis.items`
caches them under ``<out>/landscape/`` and draws them. Settings follow the guide:

* EDS (§4.1): SLQ with k = 3 runs of o = 50 Lanczos steps; the density on 10,000 points over
  ``[min node - 0.01, max node + 0.01]`` with Gaussian variance ``1e-4 * max(1, range)``
  (Ghorbani et al.'s ``density.py`` convention, ambiguity 16); B of L-BFGS_M1 from its stored pairs
  (``LBFGSMatrix.at_iterate``, memory 1).
* Filter-normalized planes (§4.3, ambiguity 19): directions of seeds 0 and 1, alpha, beta in
  [-1, 1] on a 51 x 51 grid, centred at the start.
* Interpolations (§4.4, ambiguity 20): 101 points; theta_T = the best evaluation of the run.
"""
from __future__ import annotations

import numpy as np

__all__ = ["eds", "objective_of", "slq_spectrum"]

SLQ_RUNS, SLQ_STEPS, SLQ_VARIANCE = 3, 50, 1e-4


def objective_of(cell, record=None):
    """The flat objective of a cell as its worker built it, but with the network in float64.

    The runs train the CNN in float32 (ambiguity 25); curvature and interpolations are taken
    with the float64 network at the same parameters, so that second derivatives are exact
    (the float32 HVP's rounding is ~1e-7 relative, far above the spectra's small eigenvalues).
    """
    from solvers.result import RecordOptions
    from studies.runner import build_objective

    return build_objective(cell.run_config(record or RecordOptions()).with_float64_network())


def slq_spectrum(op, seed: int = 0, runs: int = SLQ_RUNS, steps: int = SLQ_STEPS):
    """SLQ of a symmetric operator (steps capped at its size)."""
    from landscape.spectrum import slq

    return slq(op, runs, min(steps, op.shape[0]), seed)


def eds(spectrum, points: int = 10_000, variance: float = SLQ_VARIANCE
        ) -> tuple[np.ndarray, np.ndarray]:
    """``(grid, density)``, float64 ``(points,)`` each (see the module docstring)."""
    nodes = spectrum.nodes[spectrum.weights > 0]
    low, high = float(nodes.min()) - 0.01, float(nodes.max()) + 0.01
    grid = np.linspace(low, high, points)
    sigma = np.sqrt(variance * max(1.0, high - low))
    density = spectrum.density(grid, sigma)
    area = np.trapezoid(density, grid)
    return grid, density / area if area > 0 else density
