"""Atom-resolved expansion of periodic cells: lattice sums, supercells, forces, stress."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_stress
from ase.calculators.lj import LennardJones as ASELennardJones

from ase_bodyorder import BodyOrderCalculator, decompose
from ase_bodyorder.models import AxilrodTellerMuto, LennardJones, Morse, SumModel

MODEL = SumModel(Morse(D_e=4.746, a=1.942, r_e=0.7414, cutoff=2.5), AxilrodTellerMuto(1.9, 2.5))


@pytest.fixture
def bcc16():
    atoms = bulk("H", "bcc", a=2.0, cubic=True).repeat(2)
    atoms.rattle(0.08, seed=12)
    return atoms


def test_pair_two_body_energy_is_the_lattice_sum():
    atoms = bulk("Ar", "sc", a=1.2).repeat(3)
    atoms.rattle(0.05, seed=1)
    model = LennardJones(epsilon=0.1, sigma=1.0, cutoff=2.5, r_on=1.8)
    body = decompose(atoms, model, max_order=2, r_mbe=2.6)
    atoms.calc = ASELennardJones(epsilon=0.1, sigma=1.0, rc=2.5, ro=1.8, smooth=True)
    lattice_sum = atoms.get_potential_energies()
    np.testing.assert_allclose(body.energies_per_atom_eV[:, 1], lattice_sum, atol=1e-10)
    np.testing.assert_allclose(body.energies_per_atom_eV[:, 0], 0, atol=1e-14)
    assert body.residual_eV == pytest.approx(0, abs=1e-9)


def test_periodic_cell_and_explicit_supercell_agree_per_atom(bcc16):
    small = decompose(bcc16, MODEL, max_order=3, r_mbe=3.0)
    large = decompose(bcc16.repeat((2, 1, 1)), MODEL, max_order=3, r_mbe=3.0)
    per_atom = large.energies_per_atom_eV.reshape(2, len(bcc16), 3)
    np.testing.assert_allclose(per_atom[0], small.energies_per_atom_eV, atol=1e-10)
    np.testing.assert_allclose(per_atom[1], small.energies_per_atom_eV, atol=1e-10)
    assert np.abs(small.energies_eV[2]) > 1e-3


def test_periodic_residual_vanishes_when_r_mbe_covers_the_cutoff(bcc16):
    body = decompose(bcc16, MODEL, max_order=3, r_mbe=3.0)
    assert body.residual_eV == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(body.residual_per_atom_eV, 0, atol=1e-10)
    truncated = decompose(bcc16, MODEL, max_order=2, r_mbe=3.0)
    assert truncated.residual_eV == pytest.approx(body.energies_eV[2], abs=1e-9)


def test_periodic_forces_per_order_match_finite_differences(bcc16):
    body = decompose(bcc16, MODEL, max_order=3, r_mbe=3.0, forces=True)
    step = 1e-4
    for atom, axis in [(0, 0), (5, 2), (11, 1)]:
        orders = []
        for sign in (1, -1):
            moved = bcc16.copy()
            moved.positions[atom, axis] += sign * step
            orders.append(decompose(moved, MODEL, max_order=3, r_mbe=3.0).energies_eV)
        numeric = -(orders[0] - orders[1]) / (2 * step)
        np.testing.assert_allclose(body.forces_eV_per_A[:, atom, axis], numeric, atol=1e-6)
    np.testing.assert_allclose(
        body.forces_eV_per_A.sum(axis=0), MODEL.system(bcc16).forces, atol=1e-9
    )


def test_stress_matches_finite_differences(bcc16):
    calc = BodyOrderCalculator(MODEL, max_order=2, r_mbe=3.0, stride=0)
    bcc16.calc = calc
    stress = bcc16.get_stress()
    numeric = calculate_numerical_stress(bcc16, eps=1e-5)
    np.testing.assert_allclose(stress, numeric, atol=1e-6)
    assert np.abs(stress).max() > 1e-3
