import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

torch.set_num_threads(1)


def random_cluster(n_atoms: int, seed: int, *, radius: float = 1.6, min_distance: float = 0.7):
    """A random hydrogen cluster (rejection sampling in a sphere), Angstrom."""
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


@pytest.fixture
def cluster8():
    return random_cluster(8, seed=1)


@pytest.fixture
def periodic_h():
    """A periodic hydrogen crystal (bcc, 4 atoms after repeat), rattled, Angstrom."""
    atoms = bulk("H", "bcc", a=2.3, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=3)
    return atoms
