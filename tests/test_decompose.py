"""The oracles of science.md section 6 on analytic models with known body orders."""

import numpy as np
import pytest
from ase.calculators.lj import LennardJones as ASELennardJones
from helpers import random_cluster
from scipy.spatial.transform import Rotation

from ase_bodyorder import decompose
from ase_bodyorder.models import (
    ASECalculatorModel,
    AtomicBaseline,
    AxilrodTellerMuto,
    LennardJones,
    Morse,
    SumModel,
    hydrogen_demo_model,
)

MORSE = Morse(D_e=4.746, a=1.942, r_e=0.7414, cutoff=4.0)
ATM = AxilrodTellerMuto(C9=1.9, cutoff=4.0)
BASELINE = AtomicBaseline({1: -13.6})


def test_pair_potential_has_no_orders_beyond_two(cluster8):
    body = decompose(cluster8, SumModel(BASELINE, MORSE), max_order=8)
    energy = MORSE.system(cluster8).energy
    assert abs(energy) > 1.0
    assert body.energies_eV[0] == pytest.approx(-13.6 * 8, abs=1e-12)
    assert body.energies_eV[1] == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(body.energies_eV[2:], 0, atol=1e-10)
    assert body.residual_eV == pytest.approx(0, abs=1e-10)


def test_atm_is_purely_three_body(cluster8):
    body = decompose(cluster8, ATM, max_order=8)
    energy = ATM.system(cluster8).energy
    assert abs(energy) > 1e-3
    assert body.energies_eV[2] == pytest.approx(energy, rel=1e-10)
    np.testing.assert_allclose(body.energies_eV[[0, 1, 3, 4, 5, 6, 7]], 0, atol=1e-11)


def test_sum_model_splits_into_its_parts(cluster8):
    body = decompose(cluster8, SumModel(BASELINE, MORSE, ATM), max_order=8)
    expected = np.zeros(8)
    expected[0] = -13.6 * 8
    expected[1] = MORSE.system(cluster8).energy
    expected[2] = ATM.system(cluster8).energy
    np.testing.assert_allclose(body.energies_eV, expected, atol=1e-10)
    # per atom too: the pair part of atom i is half its bonds
    per_atom = body.energies_per_atom_eV
    np.testing.assert_allclose(per_atom[:, 1], MORSE.system(cluster8).energies, atol=1e-11)
    np.testing.assert_allclose(per_atom[:, 2], ATM.system(cluster8).energies, atol=1e-11)


@pytest.mark.parametrize("n_atoms", [3, 6, 9])
def test_full_expansion_equals_energy_and_forces(n_atoms):
    atoms = random_cluster(n_atoms, seed=n_atoms)
    model = hydrogen_demo_model()
    body = decompose(atoms, model, max_order=n_atoms, forces=True)
    system = model.system(atoms)
    assert body.energies_eV.sum() == pytest.approx(system.energy, abs=1e-10)
    np.testing.assert_allclose(body.energies_per_atom_eV.sum(axis=1), system.energies, atol=1e-10)
    np.testing.assert_allclose(body.forces_eV_per_A.sum(axis=0), system.forces, atol=1e-9)
    assert np.all(body.roundoff_eV < 1e-9)


def test_one_body_term_is_the_isolated_atom_energy(cluster8):
    model = hydrogen_demo_model()
    body = decompose(cluster8, model, max_order=2)
    np.testing.assert_allclose(
        body.energies_per_atom_eV[:, 0], model.isolated_atom_energy(1), atol=1e-12
    )


def _finite_difference_orders(atoms, model, max_order, step=1e-4, **kwargs):
    forces = np.zeros((max_order, len(atoms), 3))
    for a in range(len(atoms)):
        for c in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[a, c] += sign * step
                energies.append(decompose(moved, model, max_order=max_order, **kwargs).energies_eV)
            forces[:, a, c] = -(energies[0] - energies[1]) / (2 * step)
    return forces


def test_forces_per_order_match_finite_differences():
    atoms = random_cluster(5, seed=4)
    model = hydrogen_demo_model()
    body = decompose(atoms, model, max_order=3, forces=True)
    numeric = _finite_difference_orders(atoms, model, 3)
    np.testing.assert_allclose(body.forces_eV_per_A, numeric, atol=1e-6)
    assert np.abs(body.forces_eV_per_A[2]).max() > 1e-3  # the 3-body forces are not trivial


def test_orders_are_invariant_under_rotation_translation_and_permutation(cluster8):
    model = hydrogen_demo_model()
    reference = decompose(cluster8, model, max_order=4, forces=True)
    rotation = Rotation.random(random_state=2)
    moved = cluster8.copy()
    moved.positions = rotation.apply(moved.positions) + np.array([3.0, -1.0, 7.5])
    rotated = decompose(moved, model, max_order=4, forces=True)
    np.testing.assert_allclose(rotated.energies_eV, reference.energies_eV, atol=1e-10)
    np.testing.assert_allclose(
        rotated.forces_eV_per_A,
        rotation.apply(reference.forces_eV_per_A.reshape(-1, 3)).reshape(
            reference.forces_eV_per_A.shape
        ),
        atol=1e-9,
    )
    permutation = np.random.default_rng(0).permutation(len(cluster8))
    permuted = decompose(cluster8[permutation], model, max_order=4)
    np.testing.assert_allclose(permuted.energies_eV, reference.energies_eV, atol=1e-10)
    np.testing.assert_allclose(
        permuted.energies_per_atom_eV, reference.energies_per_atom_eV[permutation], atol=1e-11
    )


def test_ase_calculator_backend_agrees_with_torch_backend():
    """ASE's own Lennard-Jones (cluster MBE, its forces) against ours (atom-resolved, autograd)."""
    atoms = random_cluster(6, seed=6, radius=2.5, min_distance=0.9)
    ours = LennardJones(epsilon=0.2, sigma=1.0, cutoff=3.0, r_on=2.0)
    theirs = ASECalculatorModel(
        ASELennardJones(epsilon=0.2, sigma=1.0, rc=3.0, ro=2.0, smooth=True)
    )
    a = decompose(atoms, ours, max_order=4, forces=True)
    b = decompose(atoms, theirs, max_order=4, forces=True)
    assert abs(a.energies_eV[1]) > 1e-3
    np.testing.assert_allclose(b.energies_eV, a.energies_eV, atol=1e-10)
    np.testing.assert_allclose(b.forces_eV_per_A, a.forces_eV_per_A, atol=1e-9)
    np.testing.assert_allclose(b.energies_eV[2:], 0, atol=1e-10)
    assert b.energies_per_atom_eV is None


@pytest.mark.parametrize("periodic", [False, True])
def test_chunked_evaluation_is_exact(cluster8, periodic_h, periodic):
    """Sub-clusters evaluated in many small chunks give the one-call energies and forces."""
    atoms = periodic_h if periodic else cluster8
    kwargs = dict(max_order=3, r_mbe=2.0 if periodic else None, forces=True)
    model = hydrogen_demo_model()
    whole = decompose(atoms, model, chunk_atoms=10**9, **kwargs)
    chunked = decompose(atoms, model, chunk_atoms=7, **kwargs)
    np.testing.assert_allclose(chunked.energies_eV, whole.energies_eV, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        chunked.energies_per_atom_eV, whole.energies_per_atom_eV, rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(chunked.forces_eV_per_A, whole.forces_eV_per_A, atol=1e-11)
