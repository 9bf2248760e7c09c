"""Electronic-structure reference: textbook values, DMRG = FCI, forces, spin policy."""

import numpy as np
import pytest

from ase_bodyorder import BodyOrderError, StructureError
from ase_bodyorder.reference import HighDensity, sample_clusters
from ase_bodyorder.reference.electronic import (
    Calculation,
    DMRGNotConverged,
    DMRGSettings,
    compute,
    hydrogen_atom_energy,
)

pytest.importorskip("pyscf")

H2 = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.74]])


def _cluster(n, seed=0):
    (atoms,) = sample_clusters(HighDensity(n_atoms=n, rs_bohr=2.0), 1, seed=seed)
    return atoms.numbers, atoms.positions


def test_h2_sto3g_fci_matches_the_textbook_value():
    record = compute([1, 1], H2, Calculation(method="fci", basis="sto-3g", forces=False))
    # Szabo & Ostlund: minimal-basis H2 near R = 1.4 bohr, E(FCI) = -1.1373 Hartree
    assert record["energy_Ha"] == pytest.approx(-1.13728, abs=2e-5)
    hf = compute([1, 1], H2, Calculation(method="hf", basis="sto-3g", forces=False))
    assert hf["energy_Ha"] == pytest.approx(-1.1167, abs=2e-4)


@pytest.mark.parametrize("basis", ["sto-3g", "sto-6g", "6-31g"])
def test_hydrogen_atom_energy_is_its_uhf_energy(basis):
    from pyscf import gto, scf

    mol = gto.M(atom="H 0 0 0", basis=basis, spin=1, verbose=0)
    uhf = scf.UHF(mol).run().e_tot
    assert hydrogen_atom_energy(basis) == pytest.approx(uhf, abs=1e-9)
    record = compute([1], [[0, 0, 0]], Calculation(method="fci", basis=basis, forces=False))
    assert record["energy_Ha"] == pytest.approx(uhf, abs=1e-9)


def test_dmrg_equals_fci_on_six_atoms():
    numbers, positions = _cluster(6, seed=1)
    fci = compute(numbers, positions, Calculation(method="fci"))
    dmrg = compute(numbers, positions, Calculation(method="dmrg"))
    assert dmrg["energy_Ha"] == pytest.approx(fci["energy_Ha"], abs=1e-6)
    np.testing.assert_allclose(dmrg["forces_eV_per_A"], fci["forces_eV_per_A"], atol=1e-4)
    assert dmrg["discarded_weight"] < 1e-7


def _fd_forces(numbers, positions, calc, components, step=2e-4):
    """Central finite differences of the energy (eV / Angstrom) at chosen components."""
    from ase.units import Hartree

    out = []
    for atom, axis in components:
        energies = []
        for sign in (1, -1):
            moved = positions.copy()
            moved[atom, axis] += sign * step
            plain = Calculation(**{**calc.to_dict(), "forces": False, "dmrg": calc.dmrg})
            energies.append(compute(numbers, moved, plain)["energy_Ha"] * Hartree)
        out.append(-(energies[0] - energies[1]) / (2 * step))
    return np.array(out)


@pytest.mark.parametrize(
    "method, n_atoms",
    [
        ("hf", 4),
        ("hf", 3),
        ("ccsd", 4),
        ("ccsd", 3),
        ("ccsd(t)", 4),
        ("fci", 4),
        ("fci", 5),
        pytest.param("dmrg", 5, marks=pytest.mark.slow),
    ],
)
def test_analytic_forces_match_finite_differences(method, n_atoms):
    numbers, positions = _cluster(n_atoms, seed=n_atoms)
    calc = Calculation(method=method)
    record = compute(numbers, positions, calc)
    assert record["forces_method"] == "analytic"
    components = [(0, 0), (n_atoms - 1, 2)]
    analytic = np.array([record["forces_eV_per_A"][a][c] for a, c in components])
    np.testing.assert_allclose(
        analytic, _fd_forces(numbers, positions, calc, components), atol=1e-5
    )


def test_open_shell_ccsd_t_forces_fall_back_to_finite_differences():
    numbers, positions = _cluster(3, seed=2)
    record = compute(numbers, positions, Calculation(method="ccsd(t)", fd_step=2e-3))
    assert record["forces_method"] == "central finite differences, step 0.002 Angstrom"
    forces = np.array(record["forces_eV_per_A"])
    assert np.abs(forces.sum(axis=0)).max() < 1e-5  # no net force on an isolated cluster


@pytest.mark.parametrize("n_atoms", [3, 4, 5, 6])
def test_lowest_spin_policy_gives_doublets_and_singlets(n_atoms):
    numbers, positions = _cluster(n_atoms, seed=10 + n_atoms)
    record = compute(numbers, positions, Calculation(method="fci", forces=False))
    expected = 0.75 if n_atoms % 2 else 0.0
    assert record["two_s"] == n_atoms % 2
    assert record["spin_square"] == pytest.approx(expected, abs=1e-8)


def test_ground_spin_policy_takes_the_lowest_multiplicity():
    # a stretched H4 square: singlet and triplet nearly degenerate
    positions = np.array([[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [2.5, 2.5, 0]], dtype=float)
    ground = compute([1] * 4, positions, Calculation(method="fci", spin_policy="ground"))
    lowest = compute([1] * 4, positions, Calculation(method="fci", forces=False))
    candidates = {int(k): v for k, v in ground["candidate_energies_Ha"].items()}
    assert set(candidates) == {0, 2, 4}
    assert ground["energy_Ha"] == pytest.approx(min(candidates.values()))
    assert ground["energy_Ha"] <= lowest["energy_Ha"] + 1e-12
    s = ground["two_s"] / 2
    assert ground["spin_square"] == pytest.approx(s * (s + 1), abs=1e-8)


def test_bad_input_is_refused():
    with pytest.raises(BodyOrderError, match="unknown basis 'sto-99g'"):
        Calculation(basis="sto-99g")
    with pytest.raises(BodyOrderError, match="unknown method"):
        Calculation(method="mp7")
    with pytest.raises(BodyOrderError, match="hydrogen clusters; found atomic numbers \\[8\\]"):
        compute([1, 8], H2, Calculation())
    with pytest.raises(StructureError, match="overlap"):
        compute([1, 1], [[0, 0, 0], [0, 0, 0.2]], Calculation())


def test_unconverged_dmrg_raises():
    numbers, positions = _cluster(6, seed=3)
    settings = DMRGSettings(bond_dims=(2,), noises=(0.0,), max_sweeps=2, discarded_weight_tol=1e-12)
    with pytest.raises(DMRGNotConverged, match="did not converge"):
        compute(numbers, positions, Calculation(method="dmrg", dmrg=settings))
