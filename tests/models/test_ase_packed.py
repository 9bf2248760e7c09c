"""ASE calculators evaluated packed: many sub-clusters in one call where the calculator
gives per-atom energies, checked on first use against one call per sub-cluster, with a
stated fallback."""

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones

from ase_bodyorder import BodyOrderError, decompose
from ase_bodyorder.cli import example_path
from ase_bodyorder.models import ASEAtomicModel, ASECalculatorModel

#: a Lennard-Jones hydrogen-like pair potential, eV and Angstrom, truncated at RC
SIGMA, EPSILON, RC = 0.6, 0.2, 3.0


class TotalsOnly(LennardJones):
    """Lennard-Jones that declares no per-atom energies (as most QC calculators)."""

    implemented_properties = ["energy", "free_energy", "forces"]


def lennard_jones():
    return LennardJones(sigma=SIGMA, epsilon=EPSILON, rc=RC)


@pytest.fixture
def cluster():
    return ase.io.read(example_path())


@pytest.mark.parametrize("kind", [ASECalculatorModel, ASEAtomicModel])
def test_packed_equals_one_call_per_subcluster(cluster, kind):
    packed_model = kind(lennard_jones(), cutoff=RC)
    per_call_model = kind(lennard_jones(), cutoff=RC, pack=False)
    forces = kind is ASECalculatorModel  # atomic: no forces per order from ASE
    packed = decompose(cluster, packed_model, max_order=8, forces=forces)
    single = decompose(cluster, per_call_model, max_order=8, forces=forces)
    assert packed_model.evaluation.startswith("packed (checked on 6 sub-clusters")
    assert (
        per_call_model.evaluation == "one call per sub-cluster: packing switched off (pack=False)"
    )
    np.testing.assert_allclose(packed.energies_eV, single.energies_eV, rtol=0, atol=1e-10)
    # a pair potential: nothing beyond 2 bodies, the full expansion is the energy
    np.testing.assert_allclose(packed.energies_eV[2:], 0.0, atol=1e-10)
    assert abs(packed.residual_eV) < 1e-10
    if forces:
        np.testing.assert_allclose(packed.forces_eV_per_A, single.forces_eV_per_A, atol=1e-9)
        # forces per order sum to the calculator's own forces on the cluster
        np.testing.assert_allclose(
            packed.forces_eV_per_A.sum(axis=0), _lj_forces(cluster), atol=1e-9
        )


def _lj_forces(atoms):
    atoms = atoms.copy()
    atoms.calc = lennard_jones()
    return atoms.get_forces()


def test_a_calculator_without_atom_energies_falls_back_and_says_why(cluster):
    model = ASECalculatorModel(TotalsOnly(sigma=SIGMA, epsilon=EPSILON, rc=RC), cutoff=RC)
    reason = "one call per sub-cluster: the calculator gives no per-atom energies ('energies')"
    assert model.evaluation == reason
    body = decompose(cluster[:5], model, max_order=5)
    reference = decompose(cluster[:5], ASECalculatorModel(lennard_jones(), cutoff=RC), max_order=5)
    np.testing.assert_allclose(body.energies_eV, reference.energies_eV, rtol=0, atol=1e-10)
    with pytest.raises(BodyOrderError, match="TotalsOnly gives no per-atom energies"):
        ASEAtomicModel(TotalsOnly())
    unknown = ASEAtomicModel(lennard_jones())
    assert unknown.evaluation.endswith("the model's cutoff is unknown (give cutoff=, Angstrom)")


def test_a_model_reaching_beyond_its_declared_cutoff_fails_the_check(cluster):
    # interactions out to 10 A, declared 3 A: the packing would add cross-fragment terms
    model = ASEAtomicModel(LennardJones(sigma=SIGMA, epsilon=EPSILON, rc=10.0), cutoff=RC)
    body = decompose(cluster, model, max_order=3, screening=False)
    assert model.evaluation.startswith("one call per sub-cluster: packing changed the atom")
    assert "not local within its cutoff 3 A" in model.evaluation
    single = decompose(
        cluster,
        ASEAtomicModel(LennardJones(sigma=SIGMA, epsilon=EPSILON, rc=10.0), pack=False),
        max_order=3,
    )
    np.testing.assert_allclose(body.energies_eV, single.energies_eV, rtol=0, atol=1e-12)


def test_periodic_frames_and_atom_sampling_go_through_the_atomic_wrapper(periodic_h):
    model = ASEAtomicModel(lennard_jones(), cutoff=RC)
    body = decompose(periodic_h, model, max_order=3, r_mbe=2.0)
    assert abs(body.energies_eV[2]) < 1e-10  # pair potential
    assert abs(body.energies_eV[1]) > 1e-3
    sampled = decompose(periodic_h, model, max_order=3, r_mbe=2.0, sample_atoms=2, seed=1)
    chosen = sampled.sample_indices
    np.testing.assert_allclose(
        sampled.energies_per_atom_eV[chosen], body.energies_per_atom_eV[chosen], atol=1e-12
    )
    with pytest.raises(BodyOrderError, match="forces per order need the gradient"):
        decompose(periodic_h, model, max_order=2, r_mbe=2.0, forces=True)


def test_a_model_that_needs_a_cell_gets_a_vacuum_box_wider_than_its_cutoff():
    seen = []

    class NeedsCell(LennardJones):
        def calculate(self, atoms=None, properties=("energy",), system_changes=()):
            if not atoms.pbc.all():
                raise ValueError("singular matrix")  # as CHGNet on a bare cluster
            seen.append((atoms.cell.lengths() - np.ptp(atoms.positions, axis=0)).min())
            super().calculate(atoms, properties, system_changes)

    dimer = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.9]])
    boxed = ASEAtomicModel(
        NeedsCell(sigma=SIGMA, epsilon=EPSILON, rc=RC), cutoff=RC, needs_cell=True
    )
    bare = ASEAtomicModel(lennard_jones(), cutoff=RC)
    assert boxed.system(dimer).energy == pytest.approx(bare.system(dimer).energy, abs=1e-12)
    body = decompose(dimer + Atoms("H", positions=[[1.0, 0, 0]]), boxed, max_order=3)
    assert abs(body.residual_eV) < 1e-12 and min(seen) > RC  # images farther than the cutoff
