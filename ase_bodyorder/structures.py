"""Every hydrogen-structure sampler, and the density conversions they share.

Units: lengths and positions in Angstrom, the Wigner-Seitz radius ``rs_bohr`` in bohr,
number densities in atoms per Angstrom^3, mass densities in g/cm^3. ``rs`` is the
radius of the sphere whose volume is the volume per proton: ``4/3 pi rs^3 = V / N``.

* **clusters** (the reference sets, ``docs/science.md`` section 4): :class:`HighDensity`
  (atoms uniform in a sphere) and :class:`LowDensity` (H2 molecules in a sphere), drawn
  by :func:`sample_clusters`;
* **periodic cells** (the periodic DFT training sets): :class:`DenseBulk` (dense cells),
  drawn by :func:`sample_bulk`, and :class:`CrossoverBulk` (molecular fluid to atomic
  phase), drawn by :func:`sample_crossover_bulk`;
* **MD starting structures** (the i-PI cases of :mod:`ase_bodyorder.ipi.cases`):
  :func:`rattled_bcc` and :func:`molecular_hydrogen`;
* **test clusters**: :func:`random_cluster`;
* **clusters of other elements** (the universal-MLIP study, issue 32):
  :class:`ElementClusters` (atoms uniform in a sphere at a stated number density and
  minimum distance), drawn by :func:`sample_element_clusters`.

Every sampler takes a seed or a ``numpy.random.Generator`` and gives the same structure
for the same seed; the shipped data sets depend on it (``tests/test_structures.py``
checks them against the shipped files).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_masses
from ase.units import Bohr

from .expansion import BodyOrderError

__all__ = [
    "CrossoverBulk",
    "DenseBulk",
    "ElementClusters",
    "HighDensity",
    "LowDensity",
    "bcc_repeat",
    "cell_fragments",
    "cubic_box_length",
    "density_g_cm3",
    "min_image_distance",
    "molecular_hydrogen",
    "number_density_per_A3",
    "random_cluster",
    "rattled_bcc",
    "rs_bohr_from_density_g_cm3",
    "rs_bohr_from_number_density",
    "sample_bulk",
    "sample_clusters",
    "sample_crossover_bulk",
    "sample_element_clusters",
    "sphere_radius",
]

#: grams per atomic mass unit (CODATA 2018)
_GRAMS_PER_AMU = 1.66053906660e-24


# ---------------------------------------------------------------- densities


def number_density_per_A3(rs_bohr: float) -> float:
    """Number density (atoms per Angstrom^3) at Wigner-Seitz radius ``rs_bohr`` (bohr)."""
    return 1.0 / (4 / 3 * math.pi * (rs_bohr * Bohr) ** 3)


def rs_bohr_from_number_density(atoms_per_A3: float) -> float:
    """Wigner-Seitz radius (bohr) at a number density in atoms per Angstrom^3."""
    return (3 / (4 * math.pi * atoms_per_A3)) ** (1 / 3) / Bohr


def density_g_cm3(rs_bohr: float) -> float:
    """Mass density (g/cm^3) of hydrogen at Wigner-Seitz radius ``rs_bohr`` (bohr)."""
    grams = atomic_masses[1] * _GRAMS_PER_AMU
    volume_cm3 = 4 / 3 * math.pi * (rs_bohr * Bohr) ** 3 * 1e-24
    return grams / volume_cm3


def rs_bohr_from_density_g_cm3(density: float) -> float:
    """Wigner-Seitz radius (bohr) of hydrogen at a mass density in g/cm^3."""
    atoms_per_A3 = density / (atomic_masses[1] * _GRAMS_PER_AMU) * 1e-24
    return rs_bohr_from_number_density(atoms_per_A3)


def cubic_box_length(n_atoms: int, rs_bohr: float) -> float:
    """Edge (Angstrom) of the cubic cell holding ``n_atoms`` protons at ``rs_bohr`` (bohr)."""
    return (n_atoms * 4 / 3 * math.pi * (rs_bohr * Bohr) ** 3) ** (1 / 3)


def sphere_radius(n_atoms: int, rs_bohr: float) -> float:
    """Radius (Angstrom) of the sphere holding ``n_atoms`` protons at ``rs_bohr`` (bohr)."""
    return rs_bohr * Bohr * n_atoms ** (1 / 3)


# ---------------------------------------------------------------- distances


def _min_pair_distance(points: np.ndarray) -> float:
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    d[np.diag_indices(len(points))] = math.inf
    return d.min()


def min_image_distance(atoms: Atoms) -> float:
    """Smallest pair distance (Angstrom) of ``atoms``, minimum image across the cell."""
    d = atoms.get_all_distances(mic=True)
    return float(d[np.triu_indices(len(atoms), 1)].min())


def _minimum_image(vectors: np.ndarray, length: float) -> np.ndarray:
    return vectors - length * np.round(vectors / length)


# ---------------------------------------------------------------- clusters


@dataclass(frozen=True)
class HighDensity:
    """Atoms uniform in a sphere of volume ``n_atoms * 4/3 pi rs^3``.

    ``rs_bohr``: Wigner-Seitz radius (bohr); ``min_distance``: minimum pair distance
    (Angstrom).
    """

    n_atoms: int = 8
    rs_bohr: float = 1.75
    min_distance: float = 0.6

    kind = "high-density"

    @property
    def sphere_radius(self) -> float:
        """Radius (Angstrom) of the sampling sphere."""
        return sphere_radius(self.n_atoms, self.rs_bohr)

    def expected_tries(self) -> float:
        """Rough number of tries one cluster needs (each pair closer than
        ``min_distance`` with probability ``(min_distance / radius)^3``, pairs independent)."""
        pairs = self.n_atoms * (self.n_atoms - 1) / 2
        return _poisson_tries(pairs, (self.min_distance / self.sphere_radius) ** 3)

    def sample(self, rng: np.random.Generator, max_tries: int = 100_000) -> np.ndarray:
        """Positions (Angstrom, centred on the sphere) of one cluster drawn from ``rng``."""
        radius = self.sphere_radius
        _check_feasible(self, max_tries, f"{self.n_atoms} atoms {self.min_distance} Angstrom")
        for _ in range(max_tries):
            points = _uniform_in_sphere(rng, self.n_atoms, radius)
            if _min_pair_distance(points) >= self.min_distance:
                return points
        raise BodyOrderError(
            f"could not place {self.n_atoms} atoms {self.min_distance} Angstrom apart in a "
            f"sphere of radius {radius:.3f} Angstrom after {max_tries} tries"
        )


@dataclass(frozen=True)
class LowDensity:
    """``n_atoms/2`` H2 molecules with random orientations in a sphere.

    Bond lengths are drawn from a normal distribution (``bond_length``,
    ``bond_length_spread``, Angstrom); molecular centres lie uniformly in a sphere of
    volume ``n_atoms * 4/3 pi rs^3`` (``rs_bohr`` in bohr); atoms of different molecules
    are at least ``min_intermolecular`` Angstrom apart.
    """

    n_atoms: int = 8
    rs_bohr: float = 3.5
    bond_length: float = 0.74
    bond_length_spread: float = 0.03
    min_intermolecular: float = 1.6

    kind = "low-density"

    @property
    def sphere_radius(self) -> float:
        """Radius (Angstrom) of the sphere of the molecular centres."""
        return sphere_radius(self.n_atoms, self.rs_bohr)

    def expected_tries(self) -> float:
        """Rough number of tries one cluster needs (two molecules clash when their centres
        are closer than ``min_intermolecular + bond_length``; pairs independent)."""
        n_mol = self.n_atoms // 2
        reach = self.min_intermolecular + self.bond_length
        return _poisson_tries(n_mol * (n_mol - 1) / 2, (reach / self.sphere_radius) ** 3)

    def sample(self, rng: np.random.Generator, max_tries: int = 100_000) -> np.ndarray:
        """Positions (Angstrom; atoms 2k and 2k+1 form molecule k) drawn from ``rng``."""
        if self.n_atoms % 2:
            raise BodyOrderError(f"low-density clusters need an even n_atoms, got {self.n_atoms}")
        n_mol = self.n_atoms // 2
        _check_feasible(self, max_tries, f"{n_mol} H2 molecules {self.min_intermolecular} Angstrom")
        for _ in range(max_tries):
            centres = _uniform_in_sphere(rng, n_mol, self.sphere_radius)
            axes = rng.normal(size=(n_mol, 3))
            axes /= np.linalg.norm(axes, axis=1, keepdims=True)
            bonds = rng.normal(self.bond_length, self.bond_length_spread, size=n_mol)
            half = 0.5 * bonds[:, None] * axes
            points = np.stack([centres - half, centres + half], axis=1).reshape(-1, 3)
            molecule = np.repeat(np.arange(n_mol), 2)
            d = np.linalg.norm(points[:, None] - points[None], axis=-1)
            other = molecule[:, None] != molecule[None, :]
            if d[other].min() >= self.min_intermolecular:
                return points
        raise BodyOrderError(
            f"could not place {n_mol} H2 molecules {self.min_intermolecular} Angstrom apart "
            f"in a sphere of radius {self.sphere_radius:.3f} Angstrom after {max_tries} tries"
        )


def _poisson_tries(pairs: float, clash_probability: float) -> float:
    """1 / P(no pair clashes) with independent pairs: ``exp(pairs * p)``."""
    return math.exp(min(pairs * clash_probability, 700.0))


#: refuse at once only when the estimate exceeds the allowed tries this many times over
#: (the estimate is rough: it ignores correlations and the sphere's boundary)
_FEASIBILITY_MARGIN = 100.0


def _check_feasible(protocol: HighDensity | LowDensity, max_tries: int, what: str) -> None:
    expected = protocol.expected_tries()
    if expected > _FEASIBILITY_MARGIN * max_tries:
        raise BodyOrderError(
            f"cannot place {what} apart in a sphere of radius {protocol.sphere_radius:.3f} "
            f"Angstrom by rejection sampling: about {expected:.1e} tries per cluster are "
            f"expected, over the limit of {max_tries}; lower n_atoms or the minimum distance, "
            "or raise rs_bohr"
        )


def _uniform_in_sphere(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * radius * rng.uniform(size=(n, 1)) ** (1 / 3)


def sample_clusters(protocol: HighDensity | LowDensity, count: int, seed: int) -> list[Atoms]:
    """``count`` hydrogen clusters from ``protocol``, reproducible from ``seed``.

    Positions in Angstrom, centred on their mean. Each ``Atoms`` carries its protocol,
    parameters, seed and index in ``info``.
    """
    if count < 0:
        raise BodyOrderError(f"count must be >= 0, got {count}")
    rng = np.random.default_rng(seed)
    parameters = asdict(protocol)
    clusters = []
    for index in range(count):
        points = protocol.sample(rng)
        atoms = Atoms(f"H{protocol.n_atoms}", positions=points - points.mean(axis=0))
        atoms.info.update(protocol=protocol.kind, seed=seed, index=index, **parameters)
        clusters.append(atoms)
    return clusters


@dataclass(frozen=True)
class ElementClusters:
    """Atoms of one element uniform in a sphere of volume ``n_atoms / density_per_A3``.

    ``element``: chemical symbol; ``density_per_A3``: number density (atoms per
    Angstrom^3) of the sampling sphere; ``min_distance``: minimum pair distance
    (Angstrom). The same rejection sampling as :class:`HighDensity`, whose ``rs`` is the
    Wigner-Seitz radius of this density.
    """

    element: str
    n_atoms: int
    density_per_A3: float
    min_distance: float

    kind = "element-cluster"

    def __post_init__(self) -> None:
        from ase.data import atomic_numbers

        if self.element not in atomic_numbers or self.element == "X":
            raise BodyOrderError(f"unknown chemical symbol {self.element!r}")
        if self.n_atoms < 1 or not self.density_per_A3 > 0 or self.min_distance < 0:
            raise BodyOrderError(
                "element clusters need n_atoms >= 1, density_per_A3 > 0 and "
                f"min_distance >= 0, got {self.n_atoms}, {self.density_per_A3}, "
                f"{self.min_distance}"
            )

    @property
    def _sphere(self) -> HighDensity:
        rs = rs_bohr_from_number_density(self.density_per_A3)
        return HighDensity(n_atoms=self.n_atoms, rs_bohr=rs, min_distance=self.min_distance)

    @property
    def sphere_radius(self) -> float:
        """Radius (Angstrom) of the sampling sphere."""
        return self._sphere.sphere_radius

    def sample(self, rng: np.random.Generator, max_tries: int = 100_000) -> np.ndarray:
        """Positions (Angstrom, centred on the sphere) of one cluster drawn from ``rng``."""
        return self._sphere.sample(rng, max_tries)


def sample_element_clusters(protocol: ElementClusters, count: int, seed: int) -> list[Atoms]:
    """``count`` clusters from ``protocol``, reproducible from ``seed``.

    Positions in Angstrom, centred on their mean; ``info`` carries the protocol, its
    parameters, the seed and the index.
    """
    if count < 0:
        raise BodyOrderError(f"count must be >= 0, got {count}")
    rng = np.random.default_rng(seed)
    clusters = []
    for index in range(count):
        points = protocol.sample(rng)
        atoms = Atoms(
            f"{protocol.element}{protocol.n_atoms}", positions=points - points.mean(axis=0)
        )
        atoms.info.update(protocol=protocol.kind, seed=seed, index=index, **asdict(protocol))
        clusters.append(atoms)
    return clusters


def random_cluster(
    n_atoms: int, seed: int, *, radius: float = 1.6, min_distance: float = 0.7
) -> Atoms:
    """A random hydrogen cluster for tests (rejection sampling in a sphere), Angstrom.

    Not a protocol of ``docs/science.md``: radial distances are scaled by a uniform
    factor in [0.2, 1] of ``radius``; every pair is more than ``min_distance`` apart.
    """
    rng = np.random.default_rng(seed)
    while True:
        points = rng.normal(size=(n_atoms, 3))
        points *= radius * rng.uniform(size=(n_atoms, 1)) ** (1 / 3)
        points /= np.linalg.norm(points, axis=1, keepdims=True) / radius
        points = points * rng.uniform(0.2, 1.0, size=(n_atoms, 1))
        d = np.linalg.norm(points[:, None] - points[None], axis=-1)
        d[np.diag_indices(n_atoms)] = np.inf
        if d.min() > min_distance:
            return Atoms(f"H{n_atoms}", positions=points)


# ---------------------------------------------------------------- periodic cells


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
        atoms.wrap()
        atoms.info.update(
            index=index,
            seed=seed,
            kind=kind,
            rs_bohr=float(rs),
            rattle_angstrom=float(sigma),
            protocol=json.dumps(asdict(protocol)),
        )
        cells.append(atoms)
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
        atoms.wrap()
        atoms.info.update(
            index=index,
            seed=seed,
            kind=kind,
            rs_bohr=float(rs),
            rattle_angstrom=sigma,
            protocol=json.dumps(asdict(protocol)),
        )
        cells.append(atoms)
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
    from ase.neighborlist import neighbor_list

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


# ---------------------------------------------------------------- MD starting structures


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
