"""Filter normalization, ReLU scale invariance of normalized surfaces, PCA, Hessian directions."""
import numpy as np
import pytest
from scipy.sparse.linalg import aslinearoperator

from landscape.directions import (filter_normalize, filter_normalized_direction,
                                  hessian_directions, pca_directions, random_direction)
from landscape.surfaces import surface
from solvers.flat import CallableObjective, ParameterSpec, flatten, unflatten

SPECS = (
    ParameterSpec("latent", (8,), "latent"),
    ParameterSpec("dense/kernel", (8, 6), "dense_kernel"),
    ParameterSpec("dense/bias", (6,), "bias"),
    ParameterSpec("conv/kernel", (3, 3, 2, 4), "conv_kernel"),
    ParameterSpec("convt/kernel", (3, 3, 5, 4), "conv_transpose_kernel"),
    ParameterSpec("offset", (1, 4, 4, 5), "offset"),
    ParameterSpec("pixels", (4, 6), "pixels"),
    ParameterSpec("gamma", (3,), "other"),
    ParameterSpec("matrix", (3, 2), "other"),
)


def _filter_norms(tensor, axis):
    if axis is None:
        return np.array([np.linalg.norm(tensor)])
    moved = np.moveaxis(tensor, axis, -1)
    return np.linalg.norm(moved.reshape(-1, moved.shape[-1]), axis=0)


FILTER_AXIS = {"latent": None, "dense/kernel": 1, "conv/kernel": 3, "convt/kernel": 2,
               "offset": 3, "pixels": None, "matrix": 1}


def _theta(seed):
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(sum(spec.size for spec in SPECS)) * rng.uniform(0.1, 5)
    parts = unflatten(SPECS, theta.copy())
    parts["offset"][..., 1] = 0.0                      # a zero filter (offsets start at zero)
    return flatten(SPECS, parts)


def test_each_filter_gets_its_parameter_filters_norm():
    theta = _theta(0)
    direction = filter_normalize(random_direction(SPECS, seed=1), theta, SPECS)
    d_parts, t_parts = unflatten(SPECS, direction), unflatten(SPECS, theta)
    for name, axis in FILTER_AXIS.items():
        np.testing.assert_allclose(_filter_norms(d_parts[name], axis),
                                   _filter_norms(t_parts[name], axis), rtol=1e-12, err_msg=name)
    assert not np.any(d_parts["dense/bias"]) and not np.any(d_parts["gamma"])    # zero_1d
    assert not np.any(d_parts["offset"][..., 1])
    # Normalization rescales filters; it does not change their direction.
    raw = unflatten(SPECS, random_direction(SPECS, seed=1))["conv/kernel"][..., 2]
    normalized = d_parts["conv/kernel"][..., 2]
    assert np.isclose(raw.ravel() @ normalized.ravel(),
                      np.linalg.norm(raw) * np.linalg.norm(normalized), rtol=1e-12)


def test_one_dimensional_tensors_are_normalized_whole_without_zero_1d():
    theta = _theta(2)
    direction = filter_normalize(random_direction(SPECS, seed=3), theta, SPECS, zero_1d=False)
    d_parts, t_parts = unflatten(SPECS, direction), unflatten(SPECS, theta)
    for name in ("dense/bias", "gamma"):
        assert np.linalg.norm(d_parts[name]) == pytest.approx(np.linalg.norm(t_parts[name]),
                                                              rel=1e-12)


def test_unknown_kind_and_wrong_layout_are_rejected():
    with pytest.raises(ValueError, match="unknown parameter kind"):
        filter_normalize(np.ones(2), np.ones(2), (ParameterSpec("w", (2,), "weird"),))
    with pytest.raises(ValueError, match="conv_kernel must be"):
        filter_normalize(np.ones(6), np.ones(6), (ParameterSpec("w", (2, 3), "conv_kernel"),))


def _relu_network(scale):
    """Two-layer ReLU regression net; layer 1 (kernel and bias) scaled by a, layer 2 by 1/a."""
    rng = np.random.default_rng(11)
    inputs, targets = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    specs = (ParameterSpec("w1", (3, 5), "dense_kernel"), ParameterSpec("b1", (5,), "bias"),
             ParameterSpec("w2", (5, 1), "dense_kernel"), ParameterSpec("b2", (1,), "bias"))

    def loss(theta):
        p = unflatten(specs, theta)
        hidden = np.maximum(inputs @ p["w1"] + p["b1"], 0.0)
        return float(np.mean((hidden @ p["w2"] + p["b2"] - targets) ** 2))

    def no_gradient(theta):
        raise AssertionError("surfaces must evaluate values only")

    base = {"w1": rng.standard_normal((3, 5)), "b1": rng.standard_normal(5),
            "w2": rng.standard_normal((5, 1)), "b2": rng.standard_normal(1)}
    theta = flatten(specs, {"w1": scale * base["w1"], "b1": scale * base["b1"],
                            "w2": base["w2"] / scale, "b2": base["b2"]})
    return CallableObjective(loss, no_gradient, theta, parameter_specs=specs), theta


def test_filter_normalized_surface_is_invariant_to_relu_rescaling():
    surfaces, raw_surfaces = [], []
    for scale in (1.0, 7.0):
        objective, theta = _relu_network(scale)
        d1 = filter_normalized_direction(objective, theta, seed=0)
        d2 = filter_normalized_direction(objective, theta, seed=1)
        surfaces.append(surface(objective, theta, d1, d2, grid=7).losses)
        r1, r2 = random_direction(objective, 0), random_direction(objective, 1)
        raw_surfaces.append(surface(objective, theta, r1, r2, grid=7).losses)
    assert surfaces[0][3, 3] == pytest.approx(surfaces[1][3, 3], rel=1e-12)     # same network
    np.testing.assert_allclose(surfaces[0], surfaces[1], rtol=1e-10)
    # Without normalization the same seeds give a different picture.
    assert np.abs(raw_surfaces[0] - raw_surfaces[1]).max() > 0.1 * np.abs(raw_surfaces[0]).max()


def test_pca_directions_recover_a_known_plane_and_variances():
    rng = np.random.default_rng(5)
    n = 40
    basis, _ = np.linalg.qr(rng.standard_normal((n, 3)))
    # Orthogonal, zero-mean coordinate vectors with norms 3, 2, 1 (rows of a scaled Hadamard).
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    coordinates = np.column_stack([3 * hadamard[1], 2 * hadamard[2], 1 * hadamard[3]])
    final = rng.standard_normal(n)
    points = final + 5.0 + coordinates @ basis.T        # constant shift removed by mean centering
    iterates = np.vstack([points, final])
    result = pca_directions(iterates, center="mean")
    np.testing.assert_allclose(result.explained_variance_ratio, [9 / 14, 4 / 14], rtol=1e-12)
    assert abs(result.d1 @ basis[:, 0]) == pytest.approx(1.0, abs=1e-12)
    assert abs(result.d2 @ basis[:, 1]) == pytest.approx(1.0, abs=1e-12)
    assert result.d1 @ result.d2 == pytest.approx(0.0, abs=1e-12)
    given = pca_directions(points, final=final, center="mean")
    np.testing.assert_allclose(given.explained_variance_ratio, [9 / 14, 4 / 14], rtol=1e-12)
    # 'final' (eq. 2.8 literally): no mean removal, so the common shift dominates.
    literal = pca_directions(iterates, center="final")
    shift = np.full(n, 5.0)
    assert abs(literal.d1 @ shift) / np.linalg.norm(shift) > 0.99


def test_hessian_directions_are_top_eigenvectors():
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    spectrum = np.linspace(-1, 1, 30)
    spectrum[-2:] = [5.0, 9.0]
    result = hessian_directions(aslinearoperator((q * spectrum) @ q.T), k=2, seed=0)
    np.testing.assert_allclose(result.eigenvalues, [9.0, 5.0], rtol=1e-10)
    np.testing.assert_allclose(np.abs(q[:, [-1, -2]].T @ result.eigenvectors).diagonal(), 1.0,
                               atol=1e-8)
