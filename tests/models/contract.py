"""The contract every model backend passes, written once.

A backend's test class subclasses :class:`ModelContract` and overrides the ``model``
fixture (one model, or a parametrised family of them); backends that load model files
subclass :class:`SavedModelContract` too and set ``load``. The checks are the ones the
expansion relies on: per-atom energies that add up, forces and stress that are the
gradients of the energy, packed sub-clusters that do not see each other, an expansion
that sums to the model's energy, exact screening from the declared cutoff and layers,
clear errors for unknown elements and bad files, calculators that survive copies.
"""

import copy
import math
import pickle

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from helpers import random_cluster

from ase_bodyorder import BodyOrderCalculator, BodyOrderError, SpeciesError, decompose
from ase_bodyorder.cli import example_path
from ase_bodyorder.expansion import Screening
from ase_bodyorder.models import FragmentBatch

WATER = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])


def _numeric_forces(model, atoms, step=1e-4):
    """Central finite differences of the model's energy, every component."""
    numeric = np.zeros((len(atoms), 3))
    for a in range(len(atoms)):
        for c in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[a, c] += sign * step
                energies.append(model.system(moved, forces=False).energy)
            numeric[a, c] = -(energies[0] - energies[1]) / (2 * step)
    return numeric


def _numeric_stress(model, atoms, step=1e-5):
    """Central finite differences of the energy under symmetric strain, over the volume
    (Voigt order, eV/Angstrom^3)."""
    numeric = np.zeros(6)
    for k, (i, j) in enumerate(((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))):
        energies = []
        for sign in (1, -1):
            deform = np.eye(3)
            deform[i, j] += sign * step / 2
            deform[j, i] += sign * step / 2
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ deform, scale_atoms=True)
            energies.append(model.system(strained, forces=False).energy)
        numeric[k] = (energies[0] - energies[1]) / (2 * step) / atoms.get_volume()
    return numeric


def _fragments(cluster, seed):
    """Sub-clusters of ``cluster`` and random fragments of 1-4 atoms, all in the same
    region (pairs across fragments within the cutoff), some with a pair 6 Angstrom apart."""
    rng = np.random.default_rng(seed)
    fragments = [
        cluster[sorted(rng.choice(len(cluster), size=k, replace=False))]
        for k in (1, 2, 2, 3, 4, 5, len(cluster), 3)
    ]
    for size in rng.integers(1, 5, size=40):
        positions = rng.uniform(-1.2, 1.2, size=(size, 3))
        if size > 1 and rng.uniform() < 0.3:
            positions[0] += [6.0, 0.0, 0.0]
        fragments.append(Atoms(numbers=[1] * size, positions=positions))
    return fragments


class ModelContract:
    """Tests every backend passes; subclasses provide the ``model`` fixture."""

    #: the elements the models of the subclass know
    elements = frozenset({1})

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls):
        raise NotImplementedError("a backend's contract class overrides the model fixture")

    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls):
        """The shipped H8 cluster (the structures the shipped models were trained on)."""
        return ase.io.read(example_path())

    # ------------------------------------------------------------ declarations

    def test_declarations(self, model):
        assert model.atomic_numbers == self.elements
        assert model.dtype == torch.float64
        assert 0 < model.cutoff < math.inf
        assert model.interaction_layers is None or model.interaction_layers >= 1
        assert model.screening == Screening(model.cutoff, model.interaction_layers)
        # the 1-body term is the model's energy of one isolated atom
        single = model.system(Atoms("H", positions=[[0, 0, 0]]), forces=False).energy
        assert model.isolated_atom_energy(1) == pytest.approx(single, abs=1e-12)

    # ------------------------------------------------------------ the whole structure

    def test_per_atom_energies_sum_to_the_energy(self, model, cluster):
        result = model.system(cluster)
        assert result.energies.shape == (len(cluster),)
        assert result.energies.sum() == pytest.approx(result.energy, abs=1e-10)

    def test_forces_match_finite_differences(self, model, cluster):
        forces = model.system(cluster).forces
        assert forces.shape == (len(cluster), 3) and np.abs(forces).max() > 1e-3
        np.testing.assert_allclose(forces, _numeric_forces(model, cluster), atol=1e-5)

    def test_stress_matches_finite_differences(self, model, periodic_h):
        stress = model.system(periodic_h, stress=True).stress
        assert stress.shape == (6,) and np.abs(stress).max() > 1e-4
        np.testing.assert_allclose(stress, _numeric_stress(model, periodic_h), atol=1e-6)

    def test_a_cluster_has_no_stress(self, model, cluster):
        assert model.system(cluster, stress=True).stress is None

    # ------------------------------------------------------------ packed sub-clusters

    def test_packed_fragments_equal_separate_evaluations(self, model, cluster):
        """Many fragments in one call (with autograd) equal each fragment on its own."""
        fragments = _fragments(cluster, seed=4)
        offsets = np.concatenate([[0], np.cumsum([len(f) for f in fragments])])
        positions = np.concatenate([f.positions for f in fragments])
        numbers = np.concatenate([f.numbers for f in fragments])
        leaf = torch.tensor(positions, dtype=torch.float64, requires_grad=True)
        packed = model.fragment_energies(FragmentBatch(leaf, numbers, offsets))
        assert packed.dtype == torch.float64 and packed.shape == (offsets[-1],)
        (grad,) = torch.autograd.grad(packed.sum(), leaf)
        separate = [model.system(f) for f in fragments]
        np.testing.assert_allclose(
            packed.detach().numpy(), np.concatenate([s.energies for s in separate]), atol=1e-10
        )
        np.testing.assert_allclose(
            -grad.numpy(), np.concatenate([s.forces for s in separate]), atol=1e-9
        )
        # without grad, in several calls of whole fragments: the same energies, input kept
        if not hasattr(model, "max_atoms_per_call"):
            return
        plain = leaf.detach().clone()
        before, model.max_atoms_per_call = model.max_atoms_per_call, 17
        try:
            chunked = model.fragment_energies(FragmentBatch(plain, numbers, offsets))
        finally:
            model.max_atoms_per_call = before
        # float64 round-off only: batches of another composition sum in another order (the
        # converged PET: 2.9e-12 eV on atom energies of ~13 eV, about 1,600 ulp)
        np.testing.assert_allclose(
            chunked.detach().numpy(), packed.detach().numpy(), rtol=0, atol=1e-11
        )
        assert not plain.requires_grad

    # ------------------------------------------------------------ the expansion

    def test_full_expansion_sums_to_the_energy(self, model, cluster):
        body = decompose(cluster, model, max_order=len(cluster), forces=True)
        system = model.system(cluster)
        assert abs(body.energies_eV[1]) > 1e-4  # the model does interact
        assert body.residual_eV == pytest.approx(0, abs=1e-8)
        np.testing.assert_allclose(
            body.energies_per_atom_eV.sum(axis=1), system.energies, atol=1e-8
        )
        np.testing.assert_allclose(body.forces_eV_per_A.sum(axis=0), system.forces, atol=1e-8)
        np.testing.assert_allclose(
            body.energies_per_atom_eV[:, 0], model.isolated_atom_energy(1), atol=1e-10
        )

    def test_screening_of_distant_groups_is_exact(self, model):
        """Two groups farther apart than the cutoff: screening skips the sub-clusters
        that span both, and changes nothing."""
        first, second = random_cluster(3, seed=1), random_cluster(3, seed=2)
        second.positions += [model.cutoff + 2.5, 0, 0]
        atoms = first + second
        screened = decompose(atoms, model, max_order=6, screening=True)
        full = decompose(atoms, model, max_order=6, screening=False)
        assert screened.n_screened_out > 0
        assert screened.n_subclusters == 2 * (2**3 - 1)
        np.testing.assert_allclose(screened.energies_eV, full.energies_eV, atol=1e-10)
        assert abs(full.residual_eV) < 1e-8

    def test_screening_of_a_chain_is_exact(self, model):
        """A chain with neighbours within the cutoff, next neighbours beyond it: screening
        keeps the sub-clusters an atom's energy can see through the declared layers."""
        spacing = 0.83 * model.cutoff
        atoms = Atoms("H7", positions=[[spacing * i, 0.1 * (i % 2), 0] for i in range(7)])
        screened = decompose(atoms, model, max_order=7)
        full = decompose(atoms, model, max_order=7, screening=False)
        assert screened.n_screened_out > 0
        np.testing.assert_allclose(
            screened.energies_per_atom_eV, full.energies_per_atom_eV, atol=1e-10
        )

    # ------------------------------------------------------------ errors

    def test_unknown_species_are_refused_by_the_expansion(self, model):
        with pytest.raises(SpeciesError, match="does not know element.* O"):
            decompose(WATER, model, max_order=2)
        with pytest.raises(SpeciesError, match="O"):
            model.isolated_atom_energy(8)

    def test_unknown_species_are_refused_by_the_model(self, model):
        with pytest.raises(SpeciesError, match="O"):
            model.system(WATER)
        batch = FragmentBatch(
            positions=torch.zeros((1, 3), dtype=torch.float64),
            numbers=np.array([8]),
            offsets=np.array([0, 1]),
        )
        with pytest.raises(SpeciesError, match="O"):
            model.fragment_energies(batch)

    # ------------------------------------------------------------ the ASE calculator

    def test_calculator_survives_copy_and_pickle(self, model, cluster):
        """Regression: the PET and SOAP-BPNN calculators could not be copied or pickled."""
        calc = BodyOrderCalculator(model, max_order=2)
        atoms = cluster.copy()
        atoms.calc = calc
        energy = atoms.get_potential_energy()
        for clone in (copy.deepcopy(calc), pickle.loads(pickle.dumps(calc))):
            other = cluster.copy()
            other.calc = clone
            assert other.get_potential_energy() == pytest.approx(energy, abs=1e-10)


class SavedModelContract:
    """For backends that load model files: ``load(path)`` builds the backend's model."""

    @staticmethod
    def load(path):
        raise NotImplementedError("a backend's contract class sets load")

    def test_missing_and_corrupt_model_files(self, tmp_path):
        missing = tmp_path / "missing.pt"
        with pytest.raises(BodyOrderError, match="missing.pt"):
            self.load(missing)
        for name, content in (
            ("text.pt", b"not a model at all" * 10),
            ("random.pt", np.random.default_rng(0).bytes(512)),
        ):
            corrupt = tmp_path / name
            corrupt.write_bytes(content)
            with pytest.raises(BodyOrderError, match=name):
                self.load(corrupt)
