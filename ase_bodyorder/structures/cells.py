"""Periodic hydrogen cells (the periodic DFT training sets) and fragments cut from them.

:class:`DenseBulk` (dense cells), drawn by :func:`sample_bulk`; :class:`CrossoverBulk`
(molecular fluid to atomic phase), drawn by :func:`sample_crossover_bulk`;
:func:`cell_fragments`, the isolated sub-clusters an expansion of such cells evaluates.
Lengths and cells in Angstrom, ``rs_bohr`` in bohr.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from ase.units import Bohr

from ..expansion import BodyOrderError
from .densities import cubic_box_length
from .md_starts import min_image_distance, molecular_hydrogen

__all__ = [
    "CrossoverBulk",
    "DenseBulk",
    "cell_fragments",
    "sample_bulk",
    "sample_crossover_bulk",
]


@dataclass(frozen=True)
class DenseBulk:
    """Cubic periodic cells of ``n_atoms`` H atoms at Wigner-Seitz radius in ``rs_bohr``.

    A fraction ``lattice_fraction`` of the cells are bcc crystals (``n_atoms`` = 2 m^3)
    rattled by a Gaussian of standard deviation drawn uniformly in ``rattle_angstrom``;
    the rest are uniformly random positions, redrawn atom by atom until every pair
    (minimum image) is at least ``min_distance`` (Angstrom) apart. ``rs`` (bohr) is drawn
    uniformly in ``rs_bohr`` for every cell.
    """

    n_atoms: int = 16
    rs_bohr: tuple[float, float] = (1.45, 1.85)
    min_distance: float = 0.6
    lattice_fraction: float = 0.5
    rattle_angstrom: tuple[float, float] = (0.05, 0.3)

    def __post_init__(self) -> None:
        m = round((self.n_atoms / 2) ** (1 / 3))
        if self.lattice_fraction > 0 and 2 * m**3 != self.n_atoms:
            raise BodyOrderError(
                f"bcc cells need n_atoms = 2 m^3 (2, 16, 54, ...), got {self.n_atoms}"
            )
        if not 0 < self.rs_bohr[0] <= self.rs_bohr[1]:
            raise BodyOrderError(f"rs_bohr must be an increasing positive range: {self.rs_bohr}")


def _rattled_bcc_cell(
    protocol: DenseBulk | CrossoverBulk,
    length: float,
    sigma: float,
    rng: np.random.Generator,
    index: int,
) -> Atoms:
    """A cubic bcc cell of edge ``length`` (Angstrom) rattled by a Gaussian of standard
    deviation ``sigma`` (Angstrom), redrawn until every pair (minimum image) is at least
    ``protocol.min_distance`` apart."""
    m = round((protocol.n_atoms / 2) ** (1 / 3))
    lattice = bulk("H", "bcc", a=length / m, cubic=True).repeat(m)
    for _ in range(1000):
        atoms = lattice.copy()
        atoms.positions += rng.normal(scale=sigma, size=atoms.positions.shape)
        if min_image_distance(atoms) >= protocol.min_distance:
            return atoms
    raise BodyOrderError(f"cell {index}: no rattled bcc cell met min_distance")


def _random_cell(
    protocol: DenseBulk | CrossoverBulk, length: float, rng: np.random.Generator
) -> Atoms:
    """A cubic cell of edge ``length`` (Angstrom) with atoms placed uniformly one by one,
    each redrawn until it is ``protocol.min_distance`` from the others (minimum image)."""
    atoms = Atoms(cell=[length] * 3, pbc=True)
    while len(atoms) < protocol.n_atoms:
        trial = atoms + Atoms("H", positions=[rng.uniform(0, length, 3)])
        if len(trial) == 1 or min_image_distance(trial) >= protocol.min_distance:
            atoms = trial
    return atoms


def _recorded(
    atoms: Atoms,
    protocol: DenseBulk | CrossoverBulk,
    index: int,
    seed: int,
    kind: str,
    rs: float,
    sigma: float,
) -> Atoms:
    """``atoms`` wrapped into its cell, with how it was drawn in ``info``: ``index``,
    ``seed``, ``kind``, ``rs_bohr`` (bohr), ``rattle_angstrom`` and the protocol (JSON)."""
    atoms.wrap()
    atoms.info.update(
        index=index,
        seed=seed,
        kind=kind,
        rs_bohr=float(rs),
        rattle_angstrom=float(sigma),
        protocol=json.dumps(asdict(protocol)),
    )
    return atoms


def sample_bulk(protocol: DenseBulk, count: int, seed: int) -> list[Atoms]:
    """``count`` periodic cells from ``protocol``, reproducible from ``seed``.

    Positions and cells in Angstrom, wrapped into the cell. ``info``: ``index``,
    ``seed``, ``kind`` (``bcc`` or ``random``), ``rs_bohr`` (bohr), ``rattle_angstrom``
    and the protocol (JSON).
    """
    rng = np.random.default_rng(seed)
    cells = []
    for index in range(count):
        rs = rng.uniform(*protocol.rs_bohr)
        length = cubic_box_length(protocol.n_atoms, rs)
        if rng.uniform() < protocol.lattice_fraction:
            sigma, kind = rng.uniform(*protocol.rattle_angstrom), "bcc"
            atoms = _rattled_bcc_cell(protocol, length, sigma, rng, index)
        else:
            sigma, kind = 0.0, "random"
            atoms = _random_cell(protocol, length, rng)
        cells.append(_recorded(atoms, protocol, index, seed, kind, rs, sigma))
    return cells


@dataclass(frozen=True)
class CrossoverBulk:
    """Cubic periodic cells of ``n_atoms`` H atoms from the molecular fluid to the
    atomic phase (the MD model's cells, issue 11).

    ``rs`` (bohr) is drawn uniformly in ``rs_bohr``. A cell is molecular with a
    probability rising linearly from 0 at ``molecular_rs_bohr[0]`` to 1 at
    ``molecular_rs_bohr[1]``: ``n_atoms/2`` H2 molecules (bond lengths normal around
    ``bond_length`` with ``bond_length_spread``, Angstrom) with atoms of different
    molecules at least ``intermolecular_factor * 2 rs`` apart (minimum image). Otherwise
    it is atomic: half of those (at random) a bcc crystal rattled by a Gaussian of
    standard deviation drawn in ``rattle_angstrom``, half uniformly random positions,
    every pair at least ``min_distance`` (Angstrom) apart.
    """

    n_atoms: int = 16
    rs_bohr: tuple[float, float] = (1.4, 3.0)
    molecular_rs_bohr: tuple[float, float] = (1.8, 2.6)
    min_distance: float = 0.6
    rattle_angstrom: tuple[float, float] = (0.05, 0.3)
    bond_length: float = 0.74
    bond_length_spread: float = 0.05
    intermolecular_factor: float = 0.55

    def __post_init__(self) -> None:
        m = round((self.n_atoms / 2) ** (1 / 3))
        if 2 * m**3 != self.n_atoms:
            raise BodyOrderError(
                f"bcc cells need n_atoms = 2 m^3 (2, 16, 54, ...), got {self.n_atoms}"
            )
        if not 0 < self.rs_bohr[0] <= self.rs_bohr[1]:
            raise BodyOrderError(f"rs_bohr must be an increasing positive range: {self.rs_bohr}")
        if not self.molecular_rs_bohr[0] < self.molecular_rs_bohr[1]:
            raise BodyOrderError(f"molecular_rs_bohr must increase: {self.molecular_rs_bohr}")

    def molecular_probability(self, rs_bohr: float) -> float:
        """Probability that a cell at ``rs_bohr`` (bohr) is molecular."""
        low, high = self.molecular_rs_bohr
        return float(np.clip((rs_bohr - low) / (high - low), 0.0, 1.0))


def sample_crossover_bulk(protocol: CrossoverBulk, count: int, seed: int) -> list[Atoms]:
    """``count`` cells of ``protocol``, reproducible from ``seed`` (Angstrom, wrapped).

    ``info``: ``index``, ``seed``, ``kind`` (``bcc``, ``random`` or ``molecular``),
    ``rs_bohr`` (bohr), ``rattle_angstrom`` (0 unless bcc) and the protocol (JSON).
    """
    rng = np.random.default_rng(seed)
    cells = []
    for index in range(count):
        rs = rng.uniform(*protocol.rs_bohr)
        length = cubic_box_length(protocol.n_atoms, rs)
        sigma = 0.0
        if rng.uniform() < protocol.molecular_probability(rs):
            kind = "molecular"
            atoms = molecular_hydrogen(
                protocol.n_atoms,
                rs,
                protocol.bond_length,
                protocol.bond_length_spread,
                protocol.intermolecular_factor * 2 * rs * Bohr,
                rng,
            )
        elif rng.uniform() < 0.5:
            kind, sigma = "bcc", float(rng.uniform(*protocol.rattle_angstrom))
            atoms = _rattled_bcc_cell(protocol, length, sigma, rng, index)
        else:
            kind = "random"
            atoms = _random_cell(protocol, length, rng)
        cells.append(_recorded(atoms, protocol, index, seed, kind, rs, sigma))
    return cells


def cell_fragments(
    cells: list[Atoms],
    sizes: tuple[int, ...],
    per_cell: int,
    radius_angstrom: float,
    seed: int,
) -> list[Atoms]:
    """Isolated sub-clusters cut from periodic ``cells``: what an expansion evaluates.

    For each cell, ``per_cell`` fragments: a size drawn uniformly from ``sizes`` (sizes
    of 2 and more), a centre atom drawn uniformly, and the other atoms drawn uniformly
    without replacement from the centre's neighbours within ``radius_angstrom``
    (periodic images included, as the atom-resolved expansion counts them); a draw
    without enough neighbours is skipped. A size of 1 gives the one isolated atom once
    (every H atom is the same fragment), at the start of the list. Positions in
    Angstrom, as in the cell (images unwrapped), no cell, no periodicity. ``info``:
    ``parent`` (the cell's ``index``), ``label`` (the atoms' indices in the cell, joined
    by ``-`` as in the cluster fragments, the centre first; an index may repeat, for
    another periodic image of the same atom), ``size``, and the parent's ``rs_bohr`` and
    ``kind`` where it has them.
    """
    rng = np.random.default_rng(seed)
    out: list[Atoms] = []
    if 1 in sizes:
        out.append(Atoms("H", positions=[[0.0, 0.0, 0.0]], info={"parent": -1, "size": 1}))
    larger = [n for n in sizes if n > 1]
    if not larger:
        return out
    for atoms in cells:
        first, second, shift = neighbor_list("ijS", atoms, radius_angstrom)
        cell = np.asarray(atoms.cell)
        for _ in range(per_cell):
            size = int(rng.choice(larger))
            centre = int(rng.integers(len(atoms)))
            mine = np.flatnonzero(first == centre)
            if len(mine) < size - 1:
                continue
            chosen = rng.choice(mine, size=size - 1, replace=False)
            positions = np.vstack(
                [atoms.positions[centre]]
                + [atoms.positions[second[k]] + shift[k] @ cell for k in chosen]
            )
            indices = [centre] + [int(second[k]) for k in chosen]
            info = {
                "parent": int(atoms.info.get("index", -1)),
                "label": "-".join(str(i) for i in indices),
                "size": size,
            }
            info.update({k: atoms.info[k] for k in ("rs_bohr", "kind") if k in atoms.info})
            out.append(Atoms(f"H{size}", positions=positions, info=info))
    return out
