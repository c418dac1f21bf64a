"""The flat objective of both models: gradients and exact Hessian-vector products of the whole
graph (network -> image -> density -> compliance) against independent answers."""
import numpy as np
import pytest

from solvers import (CNNConfig, CNNModel, CallableObjective, FlatObjective, PixelModel,
                     as_objective, build_problem)

TINY_CNN = CNNConfig(latent_size=4, dense_channels=2, conv_filters=(4, 3, 2, 2, 1))
EXACT = dict(root_tolerance=0.0)  # full-precision volume-constraint root for finite differences


@pytest.fixture(scope="module")
def problem():
    return build_problem("mbb_beam", 16, 8, 0.5)


def _objectives(problem):
    return {
        "pixel": as_objective(PixelModel(problem), filter_radius=1.5, **EXACT),
        "cnn": as_objective(CNNModel(problem, seed=0, config=TINY_CNN), **EXACT),
        "cnn_transpose": as_objective(CNNModel(
            problem, seed=1, config=CNNConfig(latent_size=4, dense_channels=2,
                                              conv_filters=(4, 3, 2, 2, 1),
                                              upsampling="transpose")),
            **EXACT),
    }


@pytest.fixture(scope="module")
def objectives(problem):
    return _objectives(problem)


def _start(objective, seed=0):
    rng = np.random.default_rng(seed)
    theta = objective.initial()
    # move away from the symmetric start (zero offsets, uniform pixels) to a generic point
    return theta + 0.1 * rng.normal(size=theta.size) * max(1.0, np.std(theta))


@pytest.mark.parametrize("kind", ["pixel", "cnn", "cnn_transpose"])
def test_is_a_flat_objective(objectives, kind):
    objective = objectives[kind]
    assert isinstance(objective, FlatObjective)
    assert objective.initial().shape == (objective.size,)
    assert sum(spec.size for spec in objective.parameter_specs) == objective.size
    theta = objective.initial()
    tensors = objective.unflatten(theta)
    np.testing.assert_array_equal(objective.flatten(tensors), theta)
    design = objective.design(theta)
    assert design.shape == (8, 16) and design.min() >= 0 and design.max() <= 1


@pytest.mark.parametrize("kind", ["pixel", "cnn", "cnn_transpose"])
def test_gradient_against_central_differences(objectives, kind):
    objective = objectives[kind]
    theta = _start(objective)
    value, gradient = objective.value_and_grad(theta)
    assert value == pytest.approx(objective.value(theta), rel=1e-12)
    direction = np.random.default_rng(1).normal(size=objective.size)
    eps = 1e-6
    difference = (objective.value(theta + eps * direction)
                  - objective.value(theta - eps * direction)) / (2 * eps)
    assert gradient @ direction == pytest.approx(difference, rel=1e-6)


@pytest.mark.parametrize("kind", ["pixel", "cnn", "cnn_transpose"])
def test_hvp_against_differences_of_gradients(objectives, kind):
    objective = objectives[kind]
    theta = _start(objective)
    v = np.random.default_rng(2).normal(size=objective.size)
    # Central difference of gradients: truncation O(eps^2 |third derivative|), rounding
    # O(1e-16 |g| / eps); eps = 1e-5 balances both well below the 1e-6 bound.
    eps = 1e-5 / np.linalg.norm(v) * np.sqrt(objective.size)
    fd = (objective.value_and_grad(theta + eps * v)[1]
          - objective.value_and_grad(theta - eps * v)[1]) / (2 * eps)
    hv = objective.hvp(theta, v)
    assert np.linalg.norm(hv - fd) / np.linalg.norm(fd) < 1e-6


@pytest.mark.parametrize("kind", ["pixel", "cnn"])
def test_hvp_is_symmetric(objectives, kind):
    objective = objectives[kind]
    theta = _start(objective)
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=(2, objective.size))
    assert u @ objective.hvp(theta, v) == pytest.approx(v @ objective.hvp(theta, u), rel=1e-9)


@pytest.mark.parametrize("kind", ["pixel", "cnn"])
def test_dense_hessian_of_a_tiny_model_on_a_tiny_mesh(kind):
    """Every column H e_i against an explicit dense Hessian that does not go through the double
    backward pass: Richardson-extrapolated central differences of gradients,
    (4 D(eps/2) - D(eps)) / 3 with D(eps) the central difference, whose error is O(eps^4)
    truncation plus ~1e-13/eps rounding (about 1e-10 here for eps = 3e-4)."""
    problem = build_problem("cantilever_beam_full", 8, 8, 0.4)
    if kind == "cnn":
        config = CNNConfig(latent_size=2, dense_channels=1, conv_filters=(2, 2, 1, 1, 1),
                           kernel_size=3)
        objective = as_objective(CNNModel(problem, seed=3, config=config), **EXACT)
    else:
        objective = as_objective(PixelModel(problem), **EXACT)
    theta = _start(objective, seed=4)
    n = objective.size
    assert n < 400
    basis = np.eye(n)
    hessian = np.stack([objective.hvp(theta, e) for e in basis], axis=1)

    def central(eps):
        return np.stack([(objective.value_and_grad(theta + eps * e)[1]
                          - objective.value_and_grad(theta - eps * e)[1]) / (2 * eps)
                         for e in basis], axis=1)

    eps = 3e-4
    reference = (4 * central(eps / 2) - central(eps)) / 3
    scale = np.abs(hessian).max()
    np.testing.assert_allclose(hessian, reference, rtol=1e-8, atol=1e-8 * scale)
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-9, atol=1e-10 * scale)


def test_pixel_objective_matches_the_physics(problem):
    objective = as_objective(PixelModel(problem), filter_radius=1.5)
    theta = _start(objective)
    from solvers import objective as physics_objective
    expected = physics_objective(problem, theta.reshape(8, 16), volume_constraint=True,
                                 filter_radius=1.5)
    assert objective.value(theta) == pytest.approx(expected, rel=1e-14)


def test_density_objective_for_mma_and_oc(problem):
    objective = as_objective(PixelModel(problem, volume_constraint=False))
    theta = objective.initial()
    assert objective.volume(theta) == pytest.approx(problem.volume_fraction)
    lower, upper = objective.bounds
    assert lower.shape == upper.shape == (objective.size,)
    direction = np.random.default_rng(5).normal(size=objective.size)
    step = 1e-3
    change = objective.volume(np.clip(theta + step * direction, 0, 1)) - objective.volume(theta)
    assert objective.volume_grad(theta) @ (np.clip(theta + step * direction, 0, 1) - theta) == \
        pytest.approx(change, rel=1e-10)
    with pytest.raises(AttributeError, match="volume_constraint=False"):
        as_objective(PixelModel(problem)).volume(theta)


def test_same_seed_same_model_different_seed_different_model(problem):
    a = as_objective(CNNModel(problem, seed=7, config=TINY_CNN))
    b = as_objective(CNNModel(problem, seed=7, config=TINY_CNN))
    c = as_objective(CNNModel(problem, seed=8, config=TINY_CNN))
    np.testing.assert_array_equal(a.initial(), b.initial())
    assert not np.array_equal(a.initial(), c.initial())
    assert a.value(a.initial()) == b.value(b.initial())


def test_bad_parameters_raise(objectives):
    objective = objectives["cnn"]
    with pytest.raises(ValueError, match=rf"\({objective.size},\)"):
        objective.value(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        objective.value_and_grad(np.full(objective.size, np.nan))


def test_callable_objective_for_analytic_functions():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    quadratic = CallableObjective(lambda x: 0.5 * x @ a @ x, lambda x: a @ x, np.ones(2))
    np.testing.assert_allclose(quadratic.hvp(np.zeros(2), np.array([1.0, 0.0])), a[:, 0], rtol=1e-6)


def test_a_released_cnn_objective_is_freed_with_its_physics(problem):
    """A study worker builds one objective per cell: after value_and_grad and hvp (the three
    numpy_function bridges), dropping the objective must free it, its model and its physics
    (TensorFlow's registry of numpy functions must not keep them alive)."""
    import gc
    import weakref

    objective = as_objective(CNNModel(problem, seed=0, config=TINY_CNN))
    theta = objective.initial()
    objective.value_and_grad(theta)
    objective.hvp(theta, np.ones_like(theta))
    refs = [weakref.ref(objective), weakref.ref(objective.physics),
            weakref.ref(objective.model)]
    del objective
    gc.collect()
    assert [ref() is None for ref in refs] == [True, True, True]
