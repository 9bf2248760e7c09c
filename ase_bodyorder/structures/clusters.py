"""Hydrogen clusters: the reference sets (``docs/science.md`` section 4) and test clusters.

:class:`HighDensity` (atoms uniform in a sphere) and :class:`LowDensity` (H2 molecules
in a sphere), drawn by :func:`sample_clusters`; :func:`random_cluster` for tests.
Lengths in Angstrom, ``rs_bohr`` in bohr.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms

from ..expansion import BodyOrderError
from .densities import sphere_radius

__all__ = ["HighDensity", "LowDensity", "random_cluster", "sample_clusters"]


def _min_pair_distance(points: np.ndarray) -> float:
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    d[np.diag_indices(len(points))] = math.inf
    return d.min()


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
