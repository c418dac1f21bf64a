"""Loss-landscape toolkit: curvature operators, Lanczos/SLQ spectra, randomized estimators,
directions, 1-D/2-D slices and trajectory metrics.

Everything works on a :class:`solvers.flat.FlatObjective` or a
:class:`scipy.sparse.linalg.LinearOperator`; nothing here imports TensorFlow, reads or writes
files, or plots.
"""
from landscape.directions import (KINDS, PCADirections, filter_normalize,
                                  filter_normalized_direction, hessian_directions,
                                  pca_directions, random_direction)
from landscape.estimators import (Estimate, curvature_along, frobenius_norm,
                                  frobenius_norm_squared, gradient_hessian_overlap,
                                  hutchinson_trace, trace_to_frobenius_ratio)
from landscape.lanczos import EigenResult, LanczosResult, as_generator, lanczos, top_eigenvalues
from landscape.operators import HessianOperator, LBFGSMatrix, dense_matrix
from landscape.spectrum import Spectrum, slq, spectrum_from_lanczos
from landscape.surfaces import (Interpolation, PlaneProjection, Surface, interpolate,
                                project_onto_plane, surface)
from landscape.trajectory import (TrajectoryMetrics, prefix_pca_explained_variance,
                                  trajectory_metrics)

__all__ = [
    # operators
    "HessianOperator", "LBFGSMatrix", "dense_matrix",
    # lanczos
    "LanczosResult", "EigenResult", "lanczos", "top_eigenvalues", "as_generator",
    # spectrum
    "Spectrum", "slq", "spectrum_from_lanczos",
    # estimators
    "Estimate", "hutchinson_trace", "frobenius_norm", "frobenius_norm_squared",
    "trace_to_frobenius_ratio", "curvature_along", "gradient_hessian_overlap",
    # directions
    "KINDS", "random_direction", "filter_normalize", "filter_normalized_direction",
    "PCADirections", "pca_directions", "hessian_directions",
    # surfaces
    "Interpolation", "interpolate", "Surface", "surface", "PlaneProjection",
    "project_onto_plane",
    # trajectory
    "TrajectoryMetrics", "trajectory_metrics", "prefix_pca_explained_variance",
]
