"""MD starting structures (the i-PI cases of :mod:`ase_bodyorder.ipi.cases`): a rattled
bcc crystal and molecular hydrogen in periodic cubic cells; the minimum-image distance
they are checked with. Lengths in Angstrom, ``rs_bohr`` in bohr.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk

from ..expansion import BodyOrderError
from .densities import cubic_box_length

__all__ = ["bcc_repeat", "min_image_distance", "molecular_hydrogen", "rattled_bcc"]


def min_image_distance(atoms: Atoms) -> float:
    """Smallest pair distance (Angstrom) of ``atoms``, minimum image across the cell."""
    d = atoms.get_all_distances(mic=True)
    return float(d[np.triu_indices(len(atoms), 1)].min())


def _minimum_image(vectors: np.ndarray, length: float) -> np.ndarray:
    return vectors - length * np.round(vectors / length)


def bcc_repeat(n_atoms: int) -> tuple[int, int, int]:
    """The most nearly cubic repetition (n1 >= n2 >= n3) of the 2-atom cubic bcc cell
    giving ``n_atoms`` atoms."""
    if n_atoms < 2 or n_atoms % 2:
        raise BodyOrderError(f"a bcc cell needs an even number of atoms, got {n_atoms}")
    cells = n_atoms // 2
    shapes = [
        (cells // (b * c), b, c)
        for c in range(1, cells + 1)
        for b in range(c, cells + 1)
        if cells % (b * c) == 0 and cells // (b * c) >= b
    ]
    return min(shapes, key=lambda shape: shape[0] / shape[2])


def rattled_bcc(n_atoms: int, rs_bohr: float, rattle: float, rng: np.random.Generator) -> Atoms:
    """A bcc hydrogen crystal of ``n_atoms`` atoms at ``rs_bohr`` (bohr), every coordinate
    displaced by a normal deviate of standard deviation ``rattle`` (Angstrom), wrapped."""
    a = cubic_box_length(2, rs_bohr)  # the 2-atom cubic bcc cell
    atoms = bulk("H", "bcc", a=a, cubic=True).repeat(bcc_repeat(n_atoms))
    atoms.positions += rng.normal(0.0, rattle, size=atoms.positions.shape)
    atoms.wrap()
    return atoms


def molecular_hydrogen(
    n_atoms: int,
    rs_bohr: float,
    bond_length: float,
    bond_length_spread: float,
    min_intermolecular: float,
    rng: np.random.Generator,
    max_tries: int = 200_000,
) -> Atoms:
    """``n_atoms / 2`` H2 molecules (bond lengths normal around ``bond_length``, random
    orientations) in a periodic cubic cell at ``rs_bohr`` (bohr); atoms of different
    molecules at least ``min_intermolecular`` apart (minimum image). Lengths in Angstrom."""
    if n_atoms % 2:
        raise BodyOrderError(f"molecular hydrogen needs an even n_atoms, got {n_atoms}")
    length = cubic_box_length(n_atoms, rs_bohr)
    points = np.empty((0, 3))
    for _ in range(max_tries):
        if len(points) == n_atoms:
            return Atoms(f"H{n_atoms}", positions=points, cell=[length] * 3, pbc=True)
        axis = rng.normal(size=3)
        half = 0.5 * rng.normal(bond_length, bond_length_spread) * axis / np.linalg.norm(axis)
        centre = rng.uniform(0, length, size=3)
        pair = np.array([centre - half, centre + half])
        d = np.linalg.norm(_minimum_image(points[:, None] - pair[None], length), axis=-1)
        if len(points) == 0 or d.min() >= min_intermolecular:
            points = np.vstack([points, pair])
    raise BodyOrderError(
        f"could not place {n_atoms // 2} H2 molecules {min_intermolecular} Angstrom apart in "
        f"a cubic cell of {length:.3f} Angstrom after {max_tries} tries"
    )
