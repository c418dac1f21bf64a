"""The benchmark catalogue: 2D compliance problems of Hoyer, Sohl-Dickstein & Greydanus (2019).

A :class:`Problem` says where a structure is held, where it is loaded, where material may go and
how much of it may be used. One parametric builder per problem family (28 families, named as in
the paper's catalogue) creates a problem at any size; :data:`PROBLEMS` lists the paper's 116
benchmark tasks in the paper's order.

Conventions:
    * The domain is ``width`` (W) by ``height`` (H) unit square elements. Nodes lie on the
      ``(W + 1) x (H + 1)`` grid; node ``(i, j)`` is column ``i`` (x, left to right) and row ``j``
      (y, row 0 at the TOP, rows growing downwards).
    * ``normals``: bool ``(W + 1, H + 1, 2)``, indexed ``[i, j, axis]`` with axis 0 = x, 1 = y;
      True marks a fixed (zero-displacement) degree of freedom.
    * ``forces``: float64 ``(W + 1, H + 1, 2)``, the external nodal load, same indexing; a negative
      y component points down the page.
    * ``mask``: bool ``(H, W)``, indexed ``[row, column]``; True where material may be placed.
    * Global numbering: node ``n = (H + 1) * i + j``, dofs ``2n`` (x) and ``2n + 1`` (y). This is
      exactly the C-order ravel of a ``(W + 1, H + 1, 2)`` array.
    * Task names are ``f"{family}_{width}x{height}_{volume_fraction}"`` with the volume fraction
      printed as Python's ``repr`` of the float (``0.075``, not ``7.5e-02``).

Every builder reproduces the arrays of the original code (google-research/
neural-structural-optimization, ``problems.py``) at the catalogued sizes, including the rounding
with Python's ``round`` (round half to even). Where that code only worked for square domains, the
builders are generalized so that the catalogued sizes are unchanged; each such place is noted in
the builder's docstring.
"""
from __future__ import annotations

import dataclasses
import inspect
import numbers
import re
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from solvers.names import did_you_mean

__all__ = [
    "Problem",
    "UnknownProblemError",
    "TaskSpec",
    "TASKS",
    "PROBLEMS",
    "FAMILIES",
    "get_problem",
    "build_problem",
    "mbb_beam",
    "cantilever_beam_full",
    "cantilever_beam_two_point",
    "pure_bending_moment",
    "ground_structure",
    "michell_centered_both",
    "michell_centered_below",
    "l_shape_02",
    "l_shape_04",
    "crane",
    "center_support",
    "column",
    "roof",
    "causeway_bridge_top",
    "causeway_bridge_middle",
    "causeway_bridge_low",
    "two_level_bridge",
    "free_suspended_bridge",
    "anchored_suspended_bridge",
    "canyon_bridge",
    "thin_support_bridge",
    "drawbridge",
    "hoop",
    "dam",
    "ramp",
    "staircase",
    "staggered_points",
    "multistory_building",
]

_X, _Y = 0, 1
_NAME_PATTERN = re.compile(r"^(?P<family>.+)_(?P<width>\d+)x(?P<height>\d+)_(?P<fraction>[^_]+)$")


class UnknownProblemError(KeyError):
    """A task or family name that the catalogue does not know (message names close matches)."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


def _as_binary(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}; expected {shape}")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0/1 (or bool) values")
    return array.astype(bool)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Problem:
    """One compliance-minimization problem on a W x H grid of unit square elements.

    Instances are immutable (their arrays are read-only copies) and hashable, so they may be used
    as cache keys: the hash is built from name, size and volume fraction; equality also compares
    every array.

    Attributes:
        width: number of element columns W (positive int).
        height: number of element rows H (positive int).
        volume_fraction: allowed mean density, float in (0, 1) (the paper's "density").
        normals: bool ``(W + 1, H + 1, 2)``; True marks a fixed dof (last axis: x, y).
        forces: float64 ``(W + 1, H + 1, 2)``; external nodal loads (last axis: x, y).
        mask: bool ``(H, W)``; True where material may go. ``None`` means everywhere.
        name: task name, ``f"{family}_{W}x{H}_{volume_fraction}"`` for catalogue problems.

    Raises:
        ValueError: on wrong shapes (expected vs got), a volume fraction outside (0, 1), an empty
            mask, no fixed dof, no nonzero or non-finite forces, or a non-positive size.
    """

    width: int
    height: int
    volume_fraction: float
    normals: np.ndarray
    forces: np.ndarray
    mask: np.ndarray | None = None
    name: str = "unnamed"

    def __post_init__(self):
        for label in ("width", "height"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
            object.__setattr__(self, label, int(value))
        fraction = self.volume_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
            raise ValueError(f"volume_fraction must be a real number in (0, 1), got {fraction!r}")
        if not 0.0 < float(fraction) < 1.0:
            raise ValueError(f"volume_fraction must lie strictly between 0 and 1, got {fraction!r}")
        object.__setattr__(self, "volume_fraction", float(fraction))
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a str, got {type(self.name).__name__}")

        node_shape = (self.width + 1, self.height + 1, 2)
        normals = _as_binary("normals", self.normals, node_shape)
        forces = np.asarray(self.forces)
        if forces.shape != node_shape:
            raise ValueError(f"forces has shape {forces.shape}; expected {node_shape}")
        if not np.issubdtype(forces.dtype, np.number) or np.iscomplexobj(forces):
            raise ValueError(f"forces must be real numbers, got dtype {forces.dtype}")
        forces = forces.astype(np.float64)
        mask_shape = (self.height, self.width)
        if self.mask is None:
            mask = np.ones(mask_shape, dtype=bool)
        else:
            mask = _as_binary("mask", self.mask, mask_shape)

        if not mask.any():
            raise ValueError("mask has no cells where material may go; at least one must be True")
        if not normals.any():
            raise ValueError("normals fixes no degree of freedom; the structure would float freely")
        if not np.isfinite(forces).all():
            raise ValueError("forces contain NaN or infinite values; all loads must be finite")
        if not forces.any():
            raise ValueError("forces are all zero; at least one nonzero load is needed")

        object.__setattr__(self, "normals", _readonly(normals))
        object.__setattr__(self, "forces", _readonly(forces))
        object.__setattr__(self, "mask", _readonly(mask))

    # -- identity --------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return (
            self is other
            or (self.name, self.width, self.height, self.volume_fraction)
            == (other.name, other.width, other.height, other.volume_fraction)
            and np.array_equal(self.normals, other.normals)
            and np.array_equal(self.forces, other.forces)
            and np.array_equal(self.mask, other.mask)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.width, self.height, self.volume_fraction))

    def __repr__(self) -> str:
        return (f"Problem(name={self.name!r}, width={self.width}, height={self.height}, "
                f"volume_fraction={self.volume_fraction!r})")

    # -- derived quantities ----------------------------------------------------------------------

    @property
    def density(self) -> float:
        """Alias of ``volume_fraction`` (the original code's name)."""
        return self.volume_fraction

    @property
    def family(self) -> str | None:
        """The catalogue family parsed from ``name``, or None if the name follows no family."""
        match = _NAME_PATTERN.match(self.name)
        if match is None or match["family"] not in FAMILIES:
            return None
        return match["family"]

    @property
    def num_nodes(self) -> int:
        """``(W + 1) * (H + 1)``."""
        return (self.width + 1) * (self.height + 1)

    @property
    def num_dofs(self) -> int:
        """``2 * num_nodes``."""
        return 2 * self.num_nodes

    @property
    def fixed_dofs(self) -> np.ndarray:
        """int64 ``(n_fixed,)``, sorted global numbers of the fixed dofs."""
        return np.flatnonzero(self.normals.ravel()).astype(np.int64)

    @property
    def free_dofs(self) -> np.ndarray:
        """int64 ``(num_dofs - n_fixed,)``, sorted global numbers of the free dofs."""
        return np.flatnonzero(~self.normals.ravel()).astype(np.int64)

    @property
    def force_vector(self) -> np.ndarray:
        """float64 ``(num_dofs,)``, the load in global dof order (a fresh, writable copy)."""
        return self.forces.ravel().copy()


# -- builder helpers ------------------------------------------------------------------------------


def _check_size(width: int, height: int) -> None:
    for label, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")


def _check_fraction(label: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{label} must be a number in [0, 1], got {value!r}")


def _check_count(label: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{label} must be a positive integer, got {value!r}")


def _blank(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero normals (bool) and forces (float64), both ``(W + 1, H + 1, 2)``."""
    _check_size(width, height)
    return (np.zeros((width + 1, height + 1, 2), dtype=bool),
            np.zeros((width + 1, height + 1, 2), dtype=np.float64))


def _problem(family: str, width: int, height: int, volume_fraction: float,
             normals: np.ndarray, forces: np.ndarray, mask: np.ndarray | None = None) -> Problem:
    return Problem(width, height, volume_fraction, normals, forces, mask,
                   name=f"{family}_{width}x{height}_{volume_fraction}")


# -- beams and cantilevers ------------------------------------------------------------------------


def mbb_beam(width: int, height: int, volume_fraction: float) -> Problem:
    """Half MBB beam: left edge symmetric (x fixed), roller at the bottom right, load top left."""
    normals, forces = _blank(width, height)
    normals[0, :, _X] = True
    normals[-1, -1, _Y] = True
    forces[0, 0, _Y] = -1.0
    return _problem("mbb_beam", width, height, volume_fraction, normals, forces)


def cantilever_beam_full(width: int, height: int, volume_fraction: float, *,
                         force_position: float = 0.0) -> Problem:
    """Cantilever clamped along the whole left edge; unit load down on the right edge.

    Args:
        force_position: height of the load above the bottom, as a fraction of H (0 = bottom).
    """
    _check_fraction("force_position", force_position)
    normals, forces = _blank(width, height)
    normals[0, :, :] = True
    forces[-1, round((1 - force_position) * height), _Y] = -1.0
    return _problem("cantilever_beam_full", width, height, volume_fraction, normals, forces)


def cantilever_beam_two_point(width: int, height: int, volume_fraction: float, *,
                              support_position: float = 0.25,
                              force_position: float = 0.5) -> Problem:
    """Cantilever clamped at two points of the left edge; unit load down on the right edge.

    Args:
        support_position: the clamps sit at rows ``round(H * s)`` and ``round(H * (1 - s))``.
        force_position: height of the load above the bottom, as a fraction of H.
    """
    _check_fraction("support_position", support_position)
    _check_fraction("force_position", force_position)
    normals, forces = _blank(width, height)
    normals[0, round(height * (1 - support_position)), :] = True
    normals[0, round(height * support_position), :] = True
    forces[-1, round((1 - force_position) * height), _Y] = -1.0
    return _problem("cantilever_beam_two_point", width, height, volume_fraction, normals, forces)


def pure_bending_moment(width: int, height: int, volume_fraction: float, *,
                        support_position: float = 0.45) -> Problem:
    """A couple of unit horizontal loads on the left edge; right edge symmetric (x fixed).

    The two loaded nodes (rows ``round(H * (1 - s))`` and ``round(H * s)``) also have their y dof
    fixed, which removes the vertical rigid-body motion.
    """
    _check_fraction("support_position", support_position)
    normals, forces = _blank(width, height)
    lower, upper = round(height * (1 - support_position)), round(height * support_position)
    normals[-1, :, _X] = True
    normals[0, lower, _Y] = True
    normals[0, upper, _Y] = True
    forces[0, lower, _X] = 1.0
    forces[0, upper, _X] = -1.0
    return _problem("pure_bending_moment", width, height, volume_fraction, normals, forces)


def ground_structure(width: int, height: int, volume_fraction: float, *,
                     force_position: float = 0.5) -> Problem:
    """Pinned at the bottom-left corner, right edge symmetric, unit load down on the bottom edge.

    Generalization: the original placed the load at column ``round(force_position * height)``;
    here it is ``round(force_position * width)`` (identical on the catalogue's square sizes).
    """
    _check_fraction("force_position", force_position)
    normals, forces = _blank(width, height)
    normals[-1, :, _X] = True
    normals[0, -1, :] = True
    forces[round(force_position * width), -1, _Y] = -1.0
    return _problem("ground_structure", width, height, volume_fraction, normals, forces)


def michell_centered_both(width: int, height: int, volume_fraction: float, *,
                          position: float = 0.05) -> Problem:
    """Michell structure: y support at mid-height near the left, unit load down at mid-height right.

    The right edge is a symmetry plane (x fixed), so the full structure is twice as wide.
    """
    _check_fraction("position", position)
    normals, forces = _blank(width, height)
    normals[round(position * width), round(height / 2), _Y] = True
    normals[-1, :, _X] = True
    forces[-1, round(height / 2), _Y] = -1.0
    return _problem("michell_centered_both", width, height, volume_fraction, normals, forces)


def michell_centered_below(width: int, height: int, volume_fraction: float, *,
                           position: float = 0.25) -> Problem:
    """Michell structure: y support on the top edge, unit load down at the top right corner."""
    _check_fraction("position", position)
    normals, forces = _blank(width, height)
    normals[round(position * width), 0, _Y] = True
    normals[-1, :, _X] = True
    forces[-1, 0, _Y] = -1.0
    return _problem("michell_centered_below", width, height, volume_fraction, normals, forces)


# -- simple constrained designs -------------------------------------------------------------------


def _l_shape(family: str, width: int, height: int, volume_fraction: float, aspect: float,
             force_position: float) -> Problem:
    """L-shaped region: clamped along the top of the vertical arm, loaded at the horizontal arm.

    The vertical arm has width ``round(aspect * W)``, the horizontal arm height ``aspect * H``; the
    upper-right block (rows ``< round((1 - aspect) * H)``, columns ``>= round(aspect * W)``) is
    void. Generalization: the original mixed W and H in that block (it swapped them); the two agree
    on the catalogue's square sizes.
    """
    _check_fraction("force_position", force_position)
    normals, forces = _blank(width, height)
    normals[:round(aspect * width), 0, :] = True
    forces[-1, round((1 - aspect * force_position) * height), _Y] = -1.0
    mask = np.ones((height, width), dtype=bool)
    mask[:round(height * (1 - aspect)), round(width * aspect):] = False
    return _problem(family, width, height, volume_fraction, normals, forces, mask)


def l_shape_02(width: int, height: int, volume_fraction: float, *,
               force_position: float = 0.5) -> Problem:
    """Family ``l_shape_0.2``: the L-shape (see ``_l_shape``) with arms 0.2 of the domain wide."""
    return _l_shape("l_shape_0.2", width, height, volume_fraction, 0.2, force_position)


def l_shape_04(width: int, height: int, volume_fraction: float, *,
               force_position: float = 0.5) -> Problem:
    """Family ``l_shape_0.4``: the L-shape (see ``_l_shape``) with arms 0.4 of the domain wide."""
    return _l_shape("l_shape_0.4", width, height, volume_fraction, 0.4, force_position)


def crane(width: int, height: int, volume_fraction: float, *, aspect: float = 0.5,
          force_position: float = 0.9) -> Problem:
    """A crane clamped along the bottom, carrying a unit load down at the tip of its arm.

    The block below the arm (rows ``>= round(aspect * H) + 2``, columns ``>= round(aspect * W)``)
    is void. Quirk reproduced: the original computes the load row as ``round(1 - aspect * H)``, a
    negative number that numpy wraps to ``H + 1 + round(1 - aspect * H)``; for integral
    ``aspect * H`` this is ``round(aspect * H) + 2``, the lower edge of the arm. The same
    expression (with the same wrap) is used at every size.
    """
    _check_fraction("aspect", aspect)
    _check_fraction("force_position", force_position)
    normals, forces = _blank(width, height)
    normals[:, -1, :] = True
    row = round(1 - aspect * height)
    if row < 0:
        row += height + 1
    forces[round(force_position * width), row, _Y] = -1.0
    mask = np.ones((height, width), dtype=bool)
    mask[round(height * aspect) + 2:, round(aspect * width):] = False
    return _problem("crane", width, height, volume_fraction, normals, forces, mask)


# -- vertical support structures ------------------------------------------------------------------


def center_support(width: int, height: int, volume_fraction: float) -> Problem:
    """Uniform load ``-1/W`` per top node; a single y support at the bottom right corner.

    The right edge is a symmetry plane (x fixed).
    """
    normals, forces = _blank(width, height)
    normals[-1, -1, _Y] = True
    normals[-1, :, _X] = True
    forces[:, 0, _Y] = -1.0 / width
    return _problem("center_support", width, height, volume_fraction, normals, forces)


def column(width: int, height: int, volume_fraction: float) -> Problem:
    """Uniform load ``-1/W`` per top node; bottom edge on rollers, right edge symmetric."""
    normals, forces = _blank(width, height)
    normals[:, -1, _Y] = True
    normals[-1, :, _X] = True
    forces[:, 0, _Y] = -1.0 / width
    return _problem("column", width, height, volume_fraction, normals, forces)


def roof(width: int, height: int, volume_fraction: float) -> Problem:
    """Like :func:`column`, with both side edges symmetric (a repeating structure)."""
    normals, forces = _blank(width, height)
    normals[0, :, _X] = True
    normals[-1, :, _X] = True
    normals[:, -1, _Y] = True
    forces[:, 0, _Y] = -1.0 / width
    return _problem("roof", width, height, volume_fraction, normals, forces)


# -- bridges --------------------------------------------------------------------------------------


def _causeway_bridge(family: str, width: int, height: int, volume_fraction: float,
                     deck_level: float) -> Problem:
    """Deck at ``deck_level`` (fraction of H above the bottom), load ``-1/W`` per deck node.

    Both side edges are symmetry planes (x fixed); one y support at the bottom right corner.
    """
    normals, forces = _blank(width, height)
    normals[-1, -1, _Y] = True
    normals[-1, :, _X] = True
    normals[0, :, _X] = True
    forces[:, round(height * (1 - deck_level)), _Y] = -1.0 / width
    return _problem(family, width, height, volume_fraction, normals, forces)


def causeway_bridge_top(width: int, height: int, volume_fraction: float) -> Problem:
    """Causeway bridge with the deck on the top edge (deck level 1)."""
    return _causeway_bridge("causeway_bridge_top", width, height, volume_fraction, 1.0)


def causeway_bridge_middle(width: int, height: int, volume_fraction: float) -> Problem:
    """Causeway bridge with the deck at mid-height (deck level 0.5)."""
    return _causeway_bridge("causeway_bridge_middle", width, height, volume_fraction, 0.5)


def causeway_bridge_low(width: int, height: int, volume_fraction: float) -> Problem:
    """Causeway bridge with the deck at 0.3 of the height above the bottom."""
    return _causeway_bridge("causeway_bridge_low", width, height, volume_fraction, 0.3)


def two_level_bridge(width: int, height: int, volume_fraction: float, *,
                     deck_height: float = 0.2) -> Problem:
    """Two decks at rows ``round(H * (1 -+ deck_height) / 2)``, pinned at the bottom left.

    Quirks reproduced: each deck node gets ``-1/(2W)`` in BOTH x and y (the original assigns the
    whole last axis). Generalization: the original allocated ``(W + 1, W + 1, 2)`` arrays, which
    only fit square domains; here they are ``(W + 1, H + 1, 2)``.
    """
    _check_fraction("deck_height", deck_height)
    normals, forces = _blank(width, height)
    normals[0, -1, :] = True
    normals[0, :, _X] = True
    normals[-1, :, _X] = True
    forces[:, round(height * (1 - deck_height) / 2), :] = -1.0 / (2 * width)
    forces[:, round(height * (1 + deck_height) / 2), :] = -1.0 / (2 * width)
    return _problem("two_level_bridge", width, height, volume_fraction, normals, forces)


def _suspended_bridge(family: str, width: int, height: int, volume_fraction: float,
                      span_position: float, anchored: bool) -> Problem:
    """Deck on the bottom edge (``-1/W`` per node), supported on its first ``span_position`` part.

    The right edge is a symmetry plane. Anchored: the supports also fix x.
    """
    _check_fraction("span_position", span_position)
    normals, forces = _blank(width, height)
    normals[-1, :, _X] = True
    normals[:round(span_position * width), -1, _Y] = True
    if anchored:
        normals[:round(span_position * width), -1, _X] = True
    forces[:, -1, _Y] = -1.0 / width
    return _problem(family, width, height, volume_fraction, normals, forces)


def free_suspended_bridge(width: int, height: int, volume_fraction: float, *,
                          span_position: float = 0.2) -> Problem:
    """Suspended bridge on rollers (y fixed) along the first 0.2 of the bottom edge."""
    return _suspended_bridge("free_suspended_bridge", width, height, volume_fraction,
                             span_position, anchored=False)


def anchored_suspended_bridge(width: int, height: int, volume_fraction: float, *,
                              span_position: float = 0.1) -> Problem:
    """Suspended bridge pinned (x and y fixed) along the first 0.1 of the bottom edge."""
    return _suspended_bridge("anchored_suspended_bridge", width, height, volume_fraction,
                             span_position, anchored=True)


def canyon_bridge(width: int, height: int, volume_fraction: float, *,
                  deck_level: float = 1.0) -> Problem:
    """Deck at ``deck_level``, clamped on the right edge below the deck; left edge symmetric."""
    _check_fraction("deck_level", deck_level)
    deck_row = round(height * (1 - deck_level))
    normals, forces = _blank(width, height)
    normals[-1, deck_row:, :] = True
    normals[0, :, _X] = True
    forces[:, deck_row, _Y] = -1.0 / width
    return _problem("canyon_bridge", width, height, volume_fraction, normals, forces)


def thin_support_bridge(width: int, height: int, volume_fraction: float, *,
                        design_width: float = 0.25) -> Problem:
    """Deck on top (``-1/W`` per node), bottom on rollers, a thin pier at the right.

    The bottom-left block (the last ``round(H * (1 - d))`` rows, the first ``round(W * (1 - d))``
    columns) is void. Generalization: the original built this block in a ``(W, H)`` array and
    used it as ``(H, W)`` without transposing (so it only fit square domains); here rows count
    with H and columns with W, identical on the catalogue's square sizes.
    """
    _check_fraction("design_width", design_width)
    normals, forces = _blank(width, height)
    normals[:, -1, _Y] = True
    normals[0, :, _X] = True
    normals[-1, :, _X] = True
    forces[:, 0, _Y] = -1.0 / width
    mask = np.ones((height, width), dtype=bool)
    mask[height - round(height * (1 - design_width)):, :round(width * (1 - design_width))] = False
    return _problem("thin_support_bridge", width, height, volume_fraction, normals, forces, mask)


def drawbridge(width: int, height: int, volume_fraction: float) -> Problem:
    """Clamped along the left edge, deck on the bottom edge (``-1/W`` per node)."""
    normals, forces = _blank(width, height)
    normals[0, :, :] = True
    forces[:, -1, _Y] = -1.0 / width
    return _problem("drawbridge", width, height, volume_fraction, normals, forces)


# -- more complex designs -------------------------------------------------------------------------


def hoop(width: int, height: int, volume_fraction: float) -> Problem:
    """Downward loads along a half circle of radius W centred on the right edge; bottom on rollers.

    The loads follow scikit-image's anti-aliased circle (``circle_perimeter_aa``) centred at node
    ``(W, W)`` and clipped to the grid; each pixel gets ``-value / (2 pi W)``, and where the
    drawing lists a pixel twice its LAST value counts (as in the original's fancy assignment).

    Raises:
        ValueError: unless ``height == 2 * width`` (the hoop must be a circle).
    """
    _check_size(width, height)
    if height != 2 * width:
        raise ValueError(f"hoop needs height == 2 * width (a circle); got {width}x{height}, "
                         f"e.g. use {width}x{2 * width}")
    import skimage.draw  # heavy import, only needed here

    normals, forces = _blank(width, height)
    normals[-1, :, _X] = True
    normals[:, -1, _Y] = True
    i, j, value = skimage.draw.circle_perimeter_aa(width, width, width, shape=forces.shape[:2])
    flat = np.ravel_multi_index((i, j), forces.shape[:2])
    _, last = np.unique(flat[::-1], return_index=True)
    keep = len(flat) - 1 - last
    forces[i[keep], j[keep], _Y] = -value[keep] / (2 * np.pi * width)
    return _problem("hoop", width, height, volume_fraction, normals, forces)


def dam(width: int, height: int, volume_fraction: float) -> Problem:
    """Horizontal loads on the left edge growing with depth (``2 (j + 1) / H**2`` at row j).

    Clamped along the bottom edge.
    """
    normals, forces = _blank(width, height)
    normals[:, -1, :] = True
    forces[0, :, _X] = 2 * np.arange(1, height + 2) / height ** 2
    return _problem("dam", width, height, volume_fraction, normals, forces)


def _stairs(family: str, width: int, height: int, volume_fraction: float,
            num_stories: int) -> Problem:
    """Zig-zag ramps loaded downwards, clamped along the bottom edge.

    Story ``s`` runs from node ``(0, (s + p) H // n)`` to ``(W, (s + 1 - p) H // n)`` with
    ``p = s % 2``, drawn with scikit-image's anti-aliased line (``line_aa``); each pixel's y load is
    ``-value / (W n)``, and where stories share a node the most negative load wins. The
    normalization by W (kept from the original) makes each story carry a total near ``-1/n`` only
    for shallow lines (``H / n <= W``); steeper stories carry proportionally more. As a safeguard,
    pixels that fall outside the grid would be dropped (none do for lines between grid nodes).
    """
    _check_count("num_stories", num_stories)
    import skimage.draw  # heavy import, only needed here

    normals, forces = _blank(width, height)
    normals[:, -1, :] = True
    for story in range(num_stories):
        parity = story % 2
        start_row = (story + parity) * height // num_stories
        stop_row = (story + 1 - parity) * height // num_stories
        i, j, value = skimage.draw.line_aa(0, start_row, width, stop_row)
        inside = (i >= 0) & (i <= width) & (j >= 0) & (j <= height)
        np.minimum.at(forces[:, :, _Y], (i[inside], j[inside]),
                      -value[inside] / (width * num_stories))
    return _problem(family, width, height, volume_fraction, normals, forces)


def ramp(width: int, height: int, volume_fraction: float) -> Problem:
    """A single ramp from the top left to the bottom right (a one-story :func:`staircase`)."""
    return _stairs("ramp", width, height, volume_fraction, 1)


def staircase(width: int, height: int, volume_fraction: float, *, num_stories: int = 2) -> Problem:
    """``num_stories`` zig-zag ramps stacked over the height (see ``_stairs``)."""
    return _stairs("staircase", width, height, volume_fraction, num_stories)


def staggered_points(width: int, height: int, volume_fraction: float, *, interval: int = 16,
                     break_symmetry: bool = False) -> Problem:
    """Point loads ``-interval**2 / (W H)`` on a staggered grid; bottom on rollers, sides symmetric.

    Loads sit at columns ``interval//2 + b, +interval, ...`` of rows ``0, interval, ...`` and at
    columns ``b, b + interval, ...`` of rows ``interval//2, +interval, ...``, where ``b`` is 1 when
    ``break_symmetry`` is set.
    """
    _check_count("interval", interval)
    normals, forces = _blank(width, height)
    normals[:, -1, _Y] = True
    normals[0, :, _X] = True
    normals[-1, :, _X] = True
    load = interval ** 2 / (width * height)
    shift = int(bool(break_symmetry))
    forces[interval // 2 + shift::interval, ::interval, _Y] = -load
    forces[shift::interval, interval // 2::interval, _Y] = -load
    return _problem("staggered_points", width, height, volume_fraction, normals, forces)


def multistory_building(width: int, height: int, volume_fraction: float, *,
                        interval: int = 16) -> Problem:
    """Floors every ``interval`` rows from the top (``-1/W`` per node); bottom on rollers.

    The right edge is a symmetry plane (x fixed).
    """
    _check_count("interval", interval)
    normals, forces = _blank(width, height)
    normals[:, -1, _Y] = True
    normals[-1, :, _X] = True
    forces[:, ::interval, _Y] = -1.0 / width
    return _problem("multistory_building", width, height, volume_fraction, normals, forces)


FAMILIES: Mapping[str, Callable[..., Problem]] = {
    "mbb_beam": mbb_beam,
    "cantilever_beam_full": cantilever_beam_full,
    "cantilever_beam_two_point": cantilever_beam_two_point,
    "pure_bending_moment": pure_bending_moment,
    "ground_structure": ground_structure,
    "michell_centered_both": michell_centered_both,
    "michell_centered_below": michell_centered_below,
    "l_shape_0.2": l_shape_02,
    "l_shape_0.4": l_shape_04,
    "crane": crane,
    "center_support": center_support,
    "column": column,
    "roof": roof,
    "causeway_bridge_top": causeway_bridge_top,
    "causeway_bridge_middle": causeway_bridge_middle,
    "causeway_bridge_low": causeway_bridge_low,
    "two_level_bridge": two_level_bridge,
    "free_suspended_bridge": free_suspended_bridge,
    "anchored_suspended_bridge": anchored_suspended_bridge,
    "canyon_bridge": canyon_bridge,
    "thin_support_bridge": thin_support_bridge,
    "drawbridge": drawbridge,
    "hoop": hoop,
    "dam": dam,
    "ramp": ramp,
    "staircase": staircase,
    "staggered_points": staggered_points,
    "multistory_building": multistory_building,
}
"""Family name (as in the paper) -> builder ``(width, height, volume_fraction, **params)``."""


def build_problem(family: str, width: int, height: int, volume_fraction: float,
                  **params: Any) -> Problem:
    """Build a problem of a named family at any size.

    Args:
        family: a key of :data:`FAMILIES`, e.g. ``"l_shape_0.4"``.
        width, height: grid size in elements (positive; the CNN's divisibility by 8 is not
            checked here).
        volume_fraction: in (0, 1).
        **params: the family's keyword parameters (see its builder).

    Raises:
        UnknownProblemError: for an unknown family (the message names close matches).
        TypeError: for a parameter the family does not take (the message lists those it does).
        ValueError: for a bad size, volume fraction or parameter value.
    """
    builder = FAMILIES.get(family)
    if builder is None:
        raise UnknownProblemError(_unknown_message("family", family, list(FAMILIES)))
    accepted = [p.name for p in inspect.signature(builder).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unexpected = sorted(set(params) - set(accepted))
    if unexpected:
        raise TypeError(f"family {family!r} takes no parameter(s) {unexpected}; "
                        f"it accepts {accepted or 'none'}")
    return builder(width, height, volume_fraction, **params)


# -- the catalogue --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One benchmark task of the paper: a family at a size, with its parameters.

    Attributes:
        family: a key of :data:`FAMILIES`.
        width, height: grid size in elements.
        volume_fraction: in (0, 1).
        params: extra keyword parameters of the builder, as ``((key, value), ...)``.
    """

    family: str
    width: int
    height: int
    volume_fraction: float
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """``f"{family}_{width}x{height}_{volume_fraction}"``."""
        return f"{self.family}_{self.width}x{self.height}_{self.volume_fraction}"

    def build(self) -> Problem:
        """Construct the task's :class:`Problem`."""
        return build_problem(self.family, self.width, self.height, self.volume_fraction,
                             **dict(self.params))


def _tasks(family: str, *entries: tuple) -> list[TaskSpec]:
    """``entries``: ``(width, height, volume_fraction)`` or ``(..., {param: value})``."""
    specs = []
    for width, height, fraction, *extra in entries:
        params = tuple(sorted(extra[0].items())) if extra else ()
        specs.append(TaskSpec(family, width, height, fraction, params))
    return specs


TASKS: tuple[TaskSpec, ...] = tuple(
    _tasks("mbb_beam", (96, 32, 0.5), (192, 64, 0.4), (384, 128, 0.3), (192, 32, 0.5),
           (384, 64, 0.4))
    + _tasks("cantilever_beam_full", (96, 32, 0.4), (192, 64, 0.3), (384, 128, 0.2),
             (384, 128, 0.15))
    + _tasks("cantilever_beam_two_point", (64, 48, 0.4), (128, 96, 0.3), (256, 192, 0.2),
             (256, 192, 0.15))
    + _tasks("pure_bending_moment", (32, 64, 0.15), (64, 128, 0.125), (128, 256, 0.1))
    + _tasks("ground_structure", (64, 64, 0.12), (128, 128, 0.1), (256, 256, 0.07),
             (256, 256, 0.05))
    + _tasks("michell_centered_both", (32, 64, 0.12), (64, 128, 0.12), (128, 256, 0.12),
             (128, 256, 0.06))
    + _tasks("michell_centered_below", (64, 64, 0.12), (128, 128, 0.12), (256, 256, 0.12),
             (256, 256, 0.06))
    + _tasks("l_shape_0.2", (64, 64, 0.4), (128, 128, 0.3), (256, 256, 0.2))
    + _tasks("l_shape_0.4", (64, 64, 0.4), (128, 128, 0.3), (256, 256, 0.2))
    + _tasks("crane", (64, 64, 0.3), (128, 128, 0.2), (256, 256, 0.15), (256, 256, 0.1))
    + _tasks("center_support", (64, 64, 0.15), (128, 128, 0.1), (256, 256, 0.1),
             (256, 256, 0.05))
    + _tasks("column", (32, 128, 0.3), (64, 256, 0.3), (128, 512, 0.1), (128, 512, 0.3),
             (128, 512, 0.5))
    + _tasks("roof", (64, 64, 0.2), (128, 128, 0.15), (256, 256, 0.4), (256, 256, 0.2),
             (256, 256, 0.1))
    + _tasks("causeway_bridge_top", (64, 64, 0.3), (128, 128, 0.2), (256, 256, 0.1),
             (128, 64, 0.3), (256, 128, 0.2))
    + _tasks("causeway_bridge_middle", (64, 64, 0.12), (128, 128, 0.1), (256, 256, 0.08))
    + _tasks("causeway_bridge_low", (64, 64, 0.12), (128, 128, 0.1), (256, 256, 0.08))
    + _tasks("two_level_bridge", (64, 64, 0.2), (128, 128, 0.16), (256, 256, 0.12))
    + _tasks("free_suspended_bridge", (64, 64, 0.15), (128, 128, 0.1), (256, 256, 0.075),
             (256, 256, 0.05))
    + _tasks("anchored_suspended_bridge", (64, 64, 0.15), (128, 128, 0.1), (256, 256, 0.075),
             (256, 256, 0.05))
    + _tasks("canyon_bridge", (64, 64, 0.16), (128, 128, 0.12), (256, 256, 0.1),
             (256, 256, 0.05))
    + _tasks("thin_support_bridge", (64, 64, 0.3), (128, 128, 0.2), (256, 256, 0.15),
             (256, 256, 0.1))
    + _tasks("drawbridge", (64, 64, 0.2), (128, 128, 0.15), (256, 256, 0.1))
    + _tasks("hoop", (32, 64, 0.25), (64, 128, 0.2), (128, 256, 0.15))
    + _tasks("dam", (64, 64, 0.2), (128, 128, 0.15), (256, 256, 0.05), (256, 256, 0.1),
             (256, 256, 0.2))
    + _tasks("ramp", (64, 64, 0.3), (128, 128, 0.2), (256, 256, 0.2), (256, 256, 0.1))
    + _tasks("staircase", (64, 64, 0.3, {"num_stories": 3}), (128, 128, 0.2, {"num_stories": 3}),
             (256, 256, 0.15, {"num_stories": 3}), (128, 512, 0.15, {"num_stories": 6}))
    + _tasks("staggered_points", (64, 64, 0.3), (128, 128, 0.3), (256, 256, 0.3),
             (256, 256, 0.5), (64, 128, 0.3), (128, 256, 0.3), (32, 128, 0.3), (64, 256, 0.3),
             (128, 512, 0.3), (128, 512, 0.15, {"interval": 32}))
    + _tasks("multistory_building", (32, 64, 0.5), (64, 128, 0.4, {"interval": 32}),
             (128, 256, 0.3, {"interval": 64}), (128, 512, 0.25, {"interval": 64}),
             (128, 512, 0.2, {"interval": 128}))
)
"""The paper's 116 tasks, in the paper's catalogue order."""


class _Catalogue(Mapping[str, Problem]):
    """Read-only ordered mapping task name -> Problem that builds each problem on first access.

    Membership tests and iteration over names build nothing; ``values()``/``items()`` build all.
    """

    def __init__(self, tasks: tuple[TaskSpec, ...]):
        self._specs = {task.name: task for task in tasks}
        if len(self._specs) != len(tasks):
            raise ValueError("duplicate task names in the catalogue")
        self._built: dict[str, Problem] = {}

    def __getitem__(self, name: str) -> Problem:
        problem = self._built.get(name)
        if problem is None:
            spec = self._specs.get(name) if isinstance(name, str) else None
            if spec is None:
                raise UnknownProblemError(_unknown_message("task", name, list(self._specs)))
            problem = self._built.setdefault(name, spec.build())
        return problem

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"<catalogue of {len(self)} topology optimization tasks>"


def _unknown_message(kind: str, name: object, known: list[str]) -> str:
    hint = did_you_mean(name, known)
    if not hint and kind == "task":
        families = sorted({_NAME_PATTERN.match(k)["family"] for k in known})
        hint = (f"names look like 'family_WIDTHxHEIGHT_VOLFRAC'; families: {', '.join(families)}")
    elif not hint:
        hint = f"known families: {', '.join(known)}"
    return f"unknown {kind} {name!r}; {hint}"


PROBLEMS: Mapping[str, Problem] = _Catalogue(TASKS)
"""The 116 benchmark tasks: name -> Problem, in the paper's order, built lazily."""


def get_problem(name: str) -> Problem:
    """The catalogued problem called ``name``.

    Raises:
        UnknownProblemError: (a KeyError) naming the closest known task names.
    """
    return PROBLEMS[name]

