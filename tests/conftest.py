"""Fixtures shared by every test folder; shared functions are in helpers.py."""

import pytest
import torch
from ase.build import bulk
from helpers import random_cluster

torch.set_num_threads(1)


@pytest.fixture
def cluster8():
    return random_cluster(8, seed=1)


@pytest.fixture
def periodic_h():
    """A periodic hydrogen crystal (bcc, 4 atoms after repeat), rattled, Angstrom."""
    atoms = bulk("H", "bcc", a=2.3, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=3)
    return atoms
