"""Tests of solvers/problems.py: the 116-task catalogue, the family builders and Problem itself.

Independent answers: the arrays of the original code stored in tests/data/tasks-116.npz, hand
computed positions for sizes outside the catalogue, and the rigid-body modes of a plane solid
(a problem is well posed only if its fixed dofs pin all three).
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pytest

from solvers import problems as P

DATA = pathlib.Path(__file__).parent / "data" / "tasks-116.npz"
ODD_SIZE = (40, 24)
HOOP_SIZE = (20, 40)


@pytest.fixture(scope="module")
def reference():
    with np.load(DATA) as archive:
        arrays = {key: archive[key] for key in archive.files}
    names = sorted({key.rsplit("/", 1)[0] for key in arrays})
    return names, arrays


def _odd_problem(family: str) -> P.Problem:
    width, height = HOOP_SIZE if family == "hoop" else ODD_SIZE
    return P.build_problem(family, width, height, 0.3)


def _rigid_modes_pinned(problem: P.Problem) -> bool:
    """True iff no rigid motion (x, y translation, rotation) leaves every fixed dof at rest."""
    i, j = np.meshgrid(np.arange(problem.width + 1), np.arange(problem.height + 1), indexing="ij")
    modes = np.zeros((problem.width + 1, problem.height + 1, 2, 3))
    modes[..., 0, 0] = 1.0
    modes[..., 1, 1] = 1.0
    modes[..., 0, 2], modes[..., 1, 2] = -j, i
    at_supports = modes.reshape(-1, 3)[problem.fixed_dofs]
    return np.linalg.matrix_rank(at_supports) == 3


def _cells_touching(nodes: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool (H, W): cells having at least one corner among the True nodes of (W+1, H+1)."""
    corners = nodes.T  # (H+1, W+1), [row, column]
    return corners[:-1, :-1] | corners[1:, :-1] | corners[:-1, 1:] | corners[1:, 1:]


# -- the catalogue --------------------------------------------------------------------------------


def test_catalogue_has_the_116_reference_names_in_paper_order(reference):
    names, _ = reference
    assert len(P.PROBLEMS) == 116 and len(P.TASKS) == 116
    assert sorted(P.PROBLEMS) == names
    order = list(P.PROBLEMS)
    assert order[0] == "mbb_beam_96x32_0.5"
    assert order[-1] == "multistory_building_128x512_0.2"
    # Families come in contiguous blocks, in the paper's order (that of FAMILIES).
    families = [P.PROBLEMS[n].family for n in order]
    blocks = [f for k, f in enumerate(families) if k == 0 or f != families[k - 1]]
    assert blocks == list(P.FAMILIES)
    assert [t.name for t in P.TASKS] == order


@pytest.mark.parametrize("name", list(P.PROBLEMS))
def test_catalogued_task_reproduces_reference_arrays(reference, name):
    _, arrays = reference
    problem = P.get_problem(name)
    normals, forces = arrays[f"{name}/normals"], arrays[f"{name}/forces"]
    mask, density = arrays[f"{name}/mask"], arrays[f"{name}/density"]
    assert problem.normals.shape == normals.shape and problem.mask.shape == mask.shape
    assert np.array_equal(problem.normals.astype(np.int8), normals)
    assert np.array_equal(problem.forces, forces)
    assert np.array_equal(problem.mask.astype(np.int8), mask)
    assert problem.volume_fraction == float(density) == problem.density
    assert (problem.width, problem.height) == (mask.shape[1], mask.shape[0])
    assert problem.name == name and name.startswith(problem.family + "_")
    assert _rigid_modes_pinned(problem)


def test_catalogue_is_lazy_and_caches():
    catalogue = P._Catalogue(P.TASKS)
    assert "hoop_32x64_0.25" in catalogue and "hoop_1x2_0.5" not in catalogue
    assert catalogue._built == {}
    first = catalogue["hoop_32x64_0.25"]
    assert catalogue["hoop_32x64_0.25"] is first and len(catalogue._built) == 1


# -- builders at sizes outside the catalogue ------------------------------------------------------


@pytest.mark.parametrize("family", list(P.FAMILIES))
def test_family_builds_valid_problem_at_new_size(family):
    problem = _odd_problem(family)
    width, height = HOOP_SIZE if family == "hoop" else ODD_SIZE
    assert problem.normals.shape == problem.forces.shape == (width + 1, height + 1, 2)
    assert problem.mask.shape == (height, width)
    assert problem.normals.dtype == bool and problem.mask.dtype == bool
    assert problem.forces.dtype == np.float64 and np.isfinite(problem.forces).all()
    assert problem.name == f"{family}_{width}x{height}_0.3" and problem.family == family
    assert problem.forces.any() and problem.mask.any()
    assert _rigid_modes_pinned(problem), "supports leave a rigid-body motion free"
    # Every load and support acts on the design region, not on void.
    loaded = np.abs(problem.forces).sum(axis=-1) > 0
    fixed = problem.normals.any(axis=-1)
    for nodes in (loaded, fixed):
        touching = _cells_touching(nodes, height, width)
        assert (touching & problem.mask).any(axis=None)
    for i, j in zip(*np.nonzero(loaded)):
        neighbours = problem.mask[max(j - 1, 0):j + 1, max(i - 1, 0):i + 1]
        assert neighbours.any(), f"load at node ({i}, {j}) touches no designable cell"


def test_non_square_generalizations_by_hand():
    bridge = P.two_level_bridge(40, 24, 0.2)  # decks at round(9.6) = 10 and round(14.4) = 14
    loaded_rows = np.nonzero(bridge.forces.any(axis=(0, 2)))[0]
    assert loaded_rows.tolist() == [10, 14]
    assert np.all(bridge.forces[:, [10, 14], :] == -1 / 80)  # both x and y, as the original

    crane = P.crane(40, 24, 0.2)  # row round(1 - 12) = -11 -> 25 - 11 = 14, column 36
    assert np.argwhere(crane.forces).tolist() == [[36, 14, 1]]
    void = np.argwhere(~crane.mask)
    assert void[:, 0].min() == 14 and void[:, 1].min() == 20 and len(void) == 10 * 20

    thin = P.thin_support_bridge(40, 24, 0.2)  # void: rows >= 24 - 18, columns < 30
    void = np.argwhere(~thin.mask)
    assert void[:, 0].min() == 6 and void[:, 1].max() == 29 and len(void) == 18 * 30

    ell = P.l_shape_04(40, 24, 0.2)  # void: rows < round(14.4) = 14, columns >= 16
    void = np.argwhere(~ell.mask)
    assert void[:, 0].max() == 13 and void[:, 1].min() == 16 and len(void) == 14 * 24
    assert np.argwhere(ell.forces).tolist() == [[40, 19, 1]]  # round(0.8 * 24) = 19
    assert np.argwhere(ell.normals[:, :, 0]).tolist() == [[i, 0] for i in range(16)]

    ground = P.ground_structure(40, 24, 0.2)
    assert np.argwhere(ground.forces).tolist() == [[20, 24, 1]]


def test_family_parameters_and_staircase_loads():
    stairs = P.staircase(64, 64, 0.3, num_stories=3)
    # Each shallow story carries a total load near -1/3 (its pixel values sum to about W + 1).
    assert stairs.forces[..., 0].sum() == 0
    assert -1.2 < stairs.forces[..., 1].sum() < -0.9
    one = P.multistory_building(32, 64, 0.3, interval=32)
    assert np.nonzero(one.forces.any(axis=(0, 2)))[0].tolist() == [0, 32, 64]
    shifted = P.staggered_points(32, 32, 0.3, break_symmetry=True)
    assert shifted.forces[9, 0, 1] == -0.25 and shifted.forces[8, 0, 1] == 0


def test_hoop_needs_circular_shape():
    with pytest.raises(ValueError, match=r"height == 2 \* width"):
        P.hoop(32, 32, 0.25)


# -- lookup errors --------------------------------------------------------------------------------


def test_get_problem_typo_names_close_match():
    with pytest.raises(P.UnknownProblemError, match="mbb_beam_96x32_0.5") as info:
        P.get_problem("mbb_beam_96x23_0.5")
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith("unknown task 'mbb_beam_96x23_0.5'")
    with pytest.raises(KeyError, match="cantilever_beam_full_96x32_0.4"):
        P.get_problem("cantilever_beam_ful_96x32_0.4")
    with pytest.raises(KeyError, match="families: .*hoop"):
        P.get_problem("xyz")


def test_build_problem_errors_and_equivalence():
    with pytest.raises(P.UnknownProblemError, match="l_shape_0.4"):
        P.build_problem("l_shape_0.44", 32, 32, 0.3)
    with pytest.raises(TypeError, match="num_stories"):
        P.build_problem("staircase", 32, 32, 0.3, stories=3)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        P.build_problem("mbb_beam", 0, 32, 0.3)
    with pytest.raises(ValueError, match="height must be a positive integer"):
        P.build_problem("mbb_beam", 32, 2.5, 0.3)
    with pytest.raises(ValueError, match="force_position"):
        P.build_problem("crane", 32, 32, 0.3, force_position=1.5)
    rebuilt = P.build_problem("staircase", 128, 512, 0.15, num_stories=6)
    assert rebuilt == P.PROBLEMS["staircase_128x512_0.15"]
    # Not divisible by 8 is fine here (that is the CNN's business).
    assert P.build_problem("mbb_beam", 13, 7, 0.5).num_dofs == 2 * 14 * 8


# -- Problem validation ---------------------------------------------------------------------------


def _valid_arrays(width=4, height=3):
    normals = np.zeros((width + 1, height + 1, 2), dtype=np.int8)
    normals[0, :, :] = 1
    forces = np.zeros((width + 1, height + 1, 2))
    forces[-1, 0, 1] = -1.0
    return dict(width=width, height=height, volume_fraction=0.4, normals=normals, forces=forces,
                mask=np.ones((height, width), dtype=np.int8), name="tiny")


@pytest.mark.parametrize("change, message", [
    (dict(normals=np.zeros((4, 4, 2))), r"normals has shape \(4, 4, 2\); expected \(5, 4, 2\)"),
    (dict(forces=np.zeros((5, 4))), r"forces has shape \(5, 4\); expected \(5, 4, 2\)"),
    (dict(mask=np.ones((4, 3))), r"mask has shape \(4, 3\); expected \(3, 4\)"),
    (dict(volume_fraction=1.0), "volume_fraction must lie strictly between 0 and 1"),
    (dict(volume_fraction=0.0), "volume_fraction must lie strictly between 0 and 1"),
    (dict(volume_fraction=-0.2), "volume_fraction must lie strictly between 0 and 1"),
    (dict(volume_fraction="0.5"), "volume_fraction must be a real number"),
    (dict(mask=np.zeros((3, 4))), "mask has no cells"),
    (dict(mask=np.full((3, 4), 0.5)), "mask must hold only 0/1"),
    (dict(normals=np.zeros((5, 4, 2))), "fixes no degree of freedom"),
    (dict(forces=np.zeros((5, 4, 2))), "forces are all zero"),
    (dict(forces=np.full((5, 4, 2), np.nan)), "NaN or infinite"),
    (dict(forces=np.full((5, 4, 2), np.inf)), "NaN or infinite"),
    (dict(width=0), "width must be a positive integer"),
    (dict(height=True), "height must be a positive integer"),
])
def test_validation_errors(change, message):
    arguments = _valid_arrays()
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        P.Problem(**arguments)


def test_dof_numbering_against_explicit_loops():
    rng = np.random.default_rng(0)
    normals = rng.random((5, 4, 2)) < 0.3
    normals[0, 0, 0] = True
    forces = rng.normal(size=(5, 4, 2))
    problem = P.Problem(4, 3, 0.5, normals, forces)
    fixed, vector = [], np.zeros(2 * 5 * 4)
    for i in range(5):
        for j in range(4):
            for axis in range(2):
                dof = 2 * (4 * i + j) + axis
                vector[dof] = forces[i, j, axis]
                if normals[i, j, axis]:
                    fixed.append(dof)
    assert problem.num_nodes == 20 and problem.num_dofs == 40
    assert problem.fixed_dofs.tolist() == fixed
    assert problem.free_dofs.tolist() == sorted(set(range(40)) - set(fixed))
    assert np.array_equal(problem.force_vector, vector)
    assert problem.mask.all() and problem.family is None and problem.name == "unnamed"


# -- immutability, equality and hashing -----------------------------------------------------------


def test_problem_is_immutable_and_copies_inputs():
    arguments = _valid_arrays()
    problem = P.Problem(**arguments)
    arguments["forces"][-1, 0, 1] = 5.0  # the caller's array, not the problem's
    assert problem.forces[-1, 0, 1] == -1.0
    for array in (problem.normals, problem.forces, problem.mask):
        with pytest.raises(ValueError):
            array[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.width = 8
    vector = problem.force_vector
    vector[0] = 3.0  # a fresh copy each time
    assert problem.force_vector[0] == 0.0


def test_hash_and_equality_are_stable():
    name = "crane_64x64_0.3"
    cached = P.get_problem(name)
    rebuilt = P.crane(64, 64, 0.3)
    assert cached is P.get_problem(name) and rebuilt is not cached
    assert rebuilt == cached and hash(rebuilt) == hash(cached)
    assert {cached: "value"}[rebuilt] == "value"
    assert hash(cached) == hash(P.crane(64, 64, 0.3))

    moved = P.crane(64, 64, 0.3, force_position=0.8)  # same name, other arrays
    assert moved != cached and hash(moved) == hash(cached)
    assert len({cached, moved, rebuilt}) == 2
    assert cached != P.get_problem("crane_128x128_0.2")
    assert cached != "crane_64x64_0.3"

    replaced = dataclasses.replace(cached, volume_fraction=0.25)
    assert replaced.volume_fraction == 0.25 and replaced != cached
    assert np.array_equal(replaced.forces, cached.forces)
    assert "crane_64x64_0.3" in repr(cached) and len(repr(cached)) < 120
