"""One contract, every backend: the analytic model and the shipped trained models."""

import numpy as np
import pytest
from ase import Atoms

from ase_bodyorder import BodyOrderError, SpeciesError, decompose, load_model
from ase_bodyorder.cli import example_path
from ase_bodyorder.models import FragmentBatch

MODELS = [
    "h-morse-atm",
    "pet-h8-high",
    "pet-h8-low",
    "soap-bpnn-h8-high",
    "soap-bpnn-h8-low",
    "mace-h8-high",
    "mace-h8-low",
    "soap-bpnn-hbulk-high",
]

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    name = request.param
    if name.startswith(("pet", "soap")):
        pytest.importorskip("metatomic.torch")
    if name.startswith("mace"):
        pytest.importorskip("mace")
    return load_model(name)


@pytest.fixture(scope="module")
def cluster():
    import ase.io

    return ase.io.read(example_path())


def test_per_atom_energies_sum_to_the_energy(model, cluster):
    result = model.system(cluster)
    assert result.energies.shape == (len(cluster),)
    assert result.energies.sum() == pytest.approx(result.energy, abs=1e-9)


def test_forces_match_finite_differences(model, cluster):
    forces = model.system(cluster).forces
    step = 1e-4
    for atom, axis in [(0, 0), (5, 2)]:
        energies = []
        for sign in (1, -1):
            moved = cluster.copy()
            moved.positions[atom, axis] += sign * step
            energies.append(model.system(moved, forces=False).energy)
        assert forces[atom, axis] == pytest.approx(
            -(energies[0] - energies[1]) / (2 * step), abs=1e-5
        )


def test_packed_evaluation_equals_one_structure_at_a_time(model, cluster):
    rng = np.random.default_rng(0)
    fragments = [
        cluster[sorted(rng.choice(8, size=k, replace=False))] for k in (1, 2, 2, 3, 4, 5, 8, 3)
    ]
    offsets = np.cumsum([0] + [len(f) for f in fragments])
    import torch

    batch = FragmentBatch(
        torch.tensor(np.concatenate([f.positions for f in fragments])),
        np.concatenate([f.numbers for f in fragments]),
        offsets,
    )
    packed = model.fragment_energies(batch).detach().numpy()
    alone = np.concatenate([model.system(f, forces=False).energies for f in fragments])
    np.testing.assert_allclose(packed, alone, atol=1e-8)


def test_full_expansion_equals_the_energy(model, cluster):
    body = decompose(cluster, model, max_order=len(cluster))
    assert body.residual_eV == pytest.approx(0, abs=1e-8)
    np.testing.assert_allclose(
        body.energies_per_atom_eV[:, 0], model.isolated_atom_energy(1), atol=1e-10
    )


def test_unknown_species_are_refused(model):
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    if model.atomic_numbers is not None:
        with pytest.raises(SpeciesError, match="does not know element"):
            decompose(water, model, max_order=2)


@pytest.mark.parametrize("kind", ["metatomic", "mace"])
def test_missing_and_corrupt_model_files(tmp_path, kind):
    if kind == "metatomic":
        pytest.importorskip("metatomic.torch")
        from ase_bodyorder.models.metatomic import MetatomicModel as Backend
    else:
        pytest.importorskip("mace")
        from ase_bodyorder.models.mace import MACEModel as Backend
    missing = tmp_path / "missing.pt"
    with pytest.raises(BodyOrderError, match="missing.pt"):
        Backend(missing)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a model at all" * 10)
    with pytest.raises(BodyOrderError, match="corrupt.pt"):
        Backend(corrupt)


def test_calculator_survives_copy_and_pickle(model, cluster):
    """Regression: the PET and SOAP-BPNN calculators could not be copied or pickled."""
    import copy
    import pickle

    from ase_bodyorder import BodyOrderCalculator

    calc = BodyOrderCalculator(model, max_order=2)
    atoms = cluster.copy()
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    for clone in (copy.deepcopy(calc), pickle.loads(pickle.dumps(calc))):
        other = cluster.copy()
        other.calc = clone
        assert other.get_potential_energy() == pytest.approx(energy, abs=1e-10)
