"""Clusters of other elements than hydrogen (the universal-MLIP study, issue 32).

:class:`ElementClusters` (atoms uniform in a sphere at a stated number density, in
atoms per Angstrom^3, and minimum distance, in Angstrom), drawn by
:func:`sample_element_clusters`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ..expansion import BodyOrderError
from .clusters import HighDensity
from .densities import rs_bohr_from_number_density

__all__ = ["ElementClusters", "sample_element_clusters"]


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
