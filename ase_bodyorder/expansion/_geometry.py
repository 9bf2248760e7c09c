"""Geometry for the plan: input checks and the pool of neighbouring bodies of each atom."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ase.neighborlist import primitive_neighbor_list
from numpy.typing import ArrayLike

from .errors import StructureError

__all__ = ["Structure", "check_structure", "perpendicular_widths"]


@dataclass(frozen=True)
class Structure:
    """Positions (Angstrom), cell (Angstrom, rows are lattice vectors) and periodicity."""

    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray

    @property
    def n_atoms(self) -> int:
        return len(self.positions)

    @property
    def periodic(self) -> bool:
        return bool(self.pbc.any())


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """Distances (Angstrom) between opposite faces of the cell, one per lattice vector."""
    volume = abs(np.linalg.det(cell))
    widths = np.empty(3)
    for k in range(3):
        a, b = cell[(k + 1) % 3], cell[(k + 2) % 3]
        area = np.linalg.norm(np.cross(a, b))
        widths[k] = volume / area if area > 0 else 0.0
    return widths


def check_structure(
    positions: ArrayLike,
    cell: ArrayLike | None = None,
    pbc: bool | ArrayLike = False,
    *,
    min_distance: float = 0.3,
) -> Structure:
    """Validate a structure and return it as float64 arrays.

    Raises :class:`StructureError` for an empty structure, non-finite positions, a
    degenerate periodic cell, or two atoms closer than ``min_distance`` (Angstrom,
    periodic images included).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise StructureError(f"positions must have shape (N, 3), got {positions.shape}")
    if len(positions) == 0:
        raise StructureError("the structure is empty: there are no atoms to expand")
    bad = ~np.isfinite(positions).all(axis=1)
    if bad.any():
        raise StructureError(
            f"positions of atom(s) {np.flatnonzero(bad).tolist()} are not finite (NaN or inf)"
        )
    flags: np.ndarray = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3):
        raise StructureError(f"cell must have shape (3, 3), got {cell.shape}")
    if flags.any():
        if not np.isfinite(cell).all():
            raise StructureError("the cell contains non-finite values")
        widths = perpendicular_widths(cell)
        if (widths[flags] <= 1e-8).any():
            raise StructureError(
                f"the cell is degenerate along a periodic direction (widths {widths} Angstrom)"
            )
    structure = Structure(positions, cell, flags)
    if min_distance > 0 and len(positions) > 1:
        i, j, d = primitive_neighbor_list(
            "ijd", flags, cell, positions, min_distance, self_interaction=False
        )
        if len(d):
            k = int(np.argmin(d))
            raise StructureError(
                f"atoms {int(i[k])} and {int(j[k])} overlap: {d[k]:.4f} Angstrom apart, closer "
                f"than min_distance={min_distance} Angstrom"
            )
    return structure


def pools(structure: Structure, r_mbe: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Bodies within ``r_mbe`` (Angstrom) of each atom: ``(atoms[i], shifts[i])`` per atom.

    For an isolated cluster with ``r_mbe = inf`` every other atom is a body of every atom.
    Periodic images are distinct bodies, given by an integer cell shift.
    """
    n = structure.n_atoms
    if math.isinf(r_mbe):
        if structure.periodic:
            raise StructureError("a periodic system needs a finite r_mbe (Angstrom)")
        everyone = np.arange(n)
        atoms = [np.delete(everyone, i) for i in range(n)]
        return atoms, [np.zeros((n - 1, 3), dtype=np.int64) for _ in range(n)]
    i, j, shifts = primitive_neighbor_list(
        "ijS", structure.pbc, structure.cell, structure.positions, r_mbe, self_interaction=False
    )
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, i))
    i, j, shifts = i[order], j[order], shifts[order].astype(np.int64)
    bounds = np.searchsorted(i, np.arange(n + 1))
    atoms = [j[bounds[a] : bounds[a + 1]] for a in range(n)]
    shift_list = [shifts[bounds[a] : bounds[a + 1]] for a in range(n)]
    return atoms, shift_list
