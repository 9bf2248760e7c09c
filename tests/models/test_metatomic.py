"""Exported metatomic models (PET, SOAP-BPNN) trained for a few epochs by the recipe.

The models are barely trained: the tests check the backend's consistency (packed
fragments vs separate evaluations, expansion vs energy, autograd vs finite differences,
declared screening vs no screening), not accuracy.
"""

import importlib.util
import json
import warnings

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

with warnings.catch_warnings():
    # metatensor/metatomic script their modules at import; torch flags TorchScript
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
    )
    pytest.importorskip("metatomic.torch")
    pytest.importorskip("vesin.metatomic")
if importlib.util.find_spec("metatrain") is None:
    pytest.skip("metatrain is not installed", allow_module_level=True)

from ase_bodyorder import BodyOrderError, SpeciesError, decompose  # noqa: E402
from ase_bodyorder.models import FragmentBatch, hydrogen_demo_model  # noqa: E402
from ase_bodyorder.models.metatomic import MetatomicModel  # noqa: E402
from ase_bodyorder.reference import HighDensity, sample_clusters  # noqa: E402
from ase_bodyorder.training import MetatrainSettings, train_metatrain  # noqa: E402

torch.set_num_threads(1)

CUTOFF = 3.0
TINY = {
    "pet": dict(
        architecture="pet",
        d_pet=16,
        d_node=16,
        d_head=16,
        d_feedforward=16,
        num_heads=2,
        num_attention_layers=1,
        num_gnn_layers=2,
    ),
    "soap_bpnn": dict(
        architecture="soap_bpnn",
        soap_max_angular=2,
        soap_max_radial=3,
        bpnn_num_hidden_layers=1,
        bpnn_num_neurons_per_layer=16,
    ),
}
#: hops an atom's energy sees: 2-layer feedforward PET sees 3 (see _pet_hops)
LAYERS = {"pet": 3, "soap_bpnn": 1}


def _labelled(frames):
    model = hydrogen_demo_model()
    for atoms in frames:
        result = model.system(atoms)
        atoms.info.clear()
        atoms.calc = SinglePointCalculator(atoms, energy=result.energy, forces=result.forces)
    return frames


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    frames = []
    for n_atoms in (4, 5, 6):
        frames += sample_clusters(HighDensity(n_atoms=n_atoms), 7, seed=10 + n_atoms)
    frames = _labelled(frames)
    rng = np.random.default_rng(0)
    frames = [frames[i] for i in rng.permutation(len(frames))]
    folder = tmp_path_factory.mktemp("data")
    paths = []
    for name, part in (("train", frames[:16]), ("val", frames[16:19]), ("test", frames[19:])):
        path = folder / f"{name}.xyz"
        ase.io.write(path, part, format="extxyz")
        paths.append(path)
    return paths


@pytest.fixture(scope="module", params=["pet", "soap_bpnn"])
def trained(request, data_files, tmp_path_factory):
    settings = MetatrainSettings(
        num_epochs=2,
        batch_size=8,
        learning_rate=1e-3,
        seed=1,
        cutoff=CUTOFF,
        **TINY[request.param],
    )
    output = tmp_path_factory.mktemp(request.param)
    path = train_metatrain(*data_files, settings, output, timeout=300)
    extensions = path.parent / "extensions"
    model = MetatomicModel(path, extensions_directory=extensions if extensions.is_dir() else None)
    return request.param, path, model


def _cluster(n_atoms, seed):
    return sample_clusters(HighDensity(n_atoms=n_atoms), 1, seed=seed)[0]


def test_declarations(trained):
    architecture, _, model = trained
    assert model.atomic_numbers == frozenset({1})
    assert model.dtype == torch.float64
    assert model.cutoff == pytest.approx(CUTOFF)
    assert model.interaction_layers == LAYERS[architecture]


def test_provenance(trained, data_files):
    architecture, path, _ = trained
    provenance = json.loads((path.parent / "provenance.json").read_text())
    assert provenance["settings"]["architecture"] == architecture
    assert provenance["options"]["base_precision"] == 64
    assert set(provenance["data"]) == {"train", "validation", "test"}
    assert provenance["data"]["train"]["structures"] == 16
    assert len(provenance["data"]["test"]["sha256"]) == 64
    assert provenance["versions"]["metatrain"]
    assert provenance["wall_time_s"] > 0
    assert "energy RMSE (per atom)" in provenance["metrics"]["test"]


def test_per_atom_energies_sum_to_energy(trained):
    _, _, model = trained
    result = model.system(_cluster(5, seed=1))
    assert result.energies.shape == (5,)
    assert result.energies.sum() == pytest.approx(result.energy, abs=1e-10)


def test_forces_match_finite_differences(trained):
    _, _, model = trained
    atoms = _cluster(4, seed=2)
    forces = model.system(atoms).forces
    step = 1e-5
    numeric = np.zeros_like(forces)
    for a in range(len(atoms)):
        for c in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[a, c] += sign * step
                energies.append(model.system(moved, forces=False).energy)
            numeric[a, c] = -(energies[0] - energies[1]) / (2 * step)
    assert np.abs(forces).max() > 1e-3
    np.testing.assert_allclose(forces, numeric, atol=1e-6)


def test_stress_matches_finite_differences(trained, periodic_h):
    _, _, model = trained
    atoms = periodic_h
    stress = model.system(atoms, stress=True).stress
    volume = atoms.get_volume()
    step = 1e-5
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
        numeric[k] = (energies[0] - energies[1]) / (2 * step) / volume
    np.testing.assert_allclose(stress, numeric, atol=1e-6)
    assert model.system(_cluster(3, seed=3), stress=True).stress is None


def test_packed_fragments_equal_separate_evaluations(trained):
    """Many overlapping fragments in one call equal each fragment on its own."""
    _, _, model = trained
    rng = np.random.default_rng(4)
    sizes = rng.integers(1, 5, size=60)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    # all fragments in the same small region: pairs across fragments within the cutoff
    positions = rng.uniform(-1.2, 1.2, size=(offsets[-1], 3))
    leaf = torch.tensor(positions, requires_grad=True)
    batch = FragmentBatch(positions=leaf, numbers=np.ones(offsets[-1], int), offsets=offsets)
    packed = model.fragment_energies(batch)
    assert packed.dtype == torch.float64 and packed.shape == (offsets[-1],)
    (grad,) = torch.autograd.grad(packed.sum(), leaf)
    separate, forces = [], []
    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
        result = model.system(Atoms(numbers=[1] * (b - a), positions=positions[a:b]))
        separate.append(result.energies)
        forces.append(result.forces)
    np.testing.assert_allclose(packed.detach().numpy(), np.concatenate(separate), atol=1e-10)
    np.testing.assert_allclose(-grad.numpy(), np.concatenate(forces), atol=1e-9)
    model.max_atoms_per_call = 17  # several calls, whole fragments each
    try:
        chunked = model.fragment_energies(batch)
    finally:
        model.max_atoms_per_call = None
    np.testing.assert_allclose(chunked.detach().numpy(), packed.detach().numpy(), atol=1e-12)


def test_full_expansion_sums_to_model_energy(trained):
    _, _, model = trained
    atoms = _cluster(6, seed=5)
    body = decompose(atoms, model, max_order=6, forces=True)
    system = model.system(atoms)
    assert abs(body.energies_eV[1]) > 1e-4  # the model does interact
    assert body.residual_eV == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(body.energies_per_atom_eV.sum(axis=1), system.energies, atol=1e-9)
    np.testing.assert_allclose(body.forces_eV_per_A.sum(axis=0), system.forces, atol=1e-8)
    np.testing.assert_allclose(
        body.energies_per_atom_eV[:, 0], model.isolated_atom_energy(1), atol=1e-12
    )


def test_declared_screening_is_exact(trained):
    """A chain 2.5 A apart (cutoff 3 A): screening skips sub-clusters, changes nothing."""
    _, _, model = trained
    atoms = Atoms("H7", positions=[[2.5 * i, 0.1 * (i % 2), 0] for i in range(7)])
    screened = decompose(atoms, model, max_order=7)
    full = decompose(atoms, model, max_order=7, screening=False)
    assert screened.n_screened_out > 0
    np.testing.assert_allclose(screened.energies_per_atom_eV, full.energies_per_atom_eV, atol=1e-10)


@pytest.mark.parametrize("trained", ["pet"], indirect=True)
def test_feedforward_pet_sees_one_hop_beyond_its_layers(trained):
    """Why ``interaction_layers`` is num_gnn_layers + 1 for PET's default featurizer."""
    _, _, model = trained
    atoms = Atoms("H6", positions=[[2.5 * i, 0, 0] for i in range(6)])
    reference = model.system(atoms, forces=False).energies[0]
    changes = []
    for k in (3, 4):
        moved = atoms.copy()
        moved.positions[k, 1] += 0.1
        changes.append(model.system(moved, forces=False).energies[0] - reference)
    assert abs(changes[0]) > 1e-12  # 3 hops away, 7.5 A > 2 layers * 3 A
    assert changes[1] == 0.0


def test_unknown_species_raise(trained):
    _, _, model = trained
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.9, 0, 0], [0, 1.0, 0]])
    with pytest.raises(SpeciesError, match="O"):
        decompose(atoms, model, max_order=2)
    with pytest.raises(SpeciesError):
        model.system(atoms)
    with pytest.raises(SpeciesError):
        model.isolated_atom_energy(8)


def test_missing_and_corrupt_model_files(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(BodyOrderError, match="missing.pt"):
        MetatomicModel(missing)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(BodyOrderError, match="corrupt.pt"):
        MetatomicModel(corrupt)


def test_settings_are_checked():
    with pytest.raises(BodyOrderError, match="'n_epochs'"):
        MetatrainSettings.from_dict({"n_epochs": 3})
    with pytest.raises(BodyOrderError, match="architecture"):
        MetatrainSettings(architecture="mace")
    with pytest.raises(BodyOrderError, match="model.cutoff"):
        MetatrainSettings(extra_hypers={"model": {"cutoff": 5.0}})
    with pytest.raises(BodyOrderError, match="num_epochs"):
        MetatrainSettings(num_epochs=0)
    settings = MetatrainSettings.from_dict({"architecture": "soap_bpnn", "cutoff": 4.0})
    assert settings.architecture_options()["model"]["soap"]["cutoff"]["radius"] == 4.0
    assert MetatrainSettings.from_dict(settings.to_dict()) == settings
