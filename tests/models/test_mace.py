"""MACE backend: packed sub-cluster evaluation, whole-structure path, and the expansion.

A tiny MACE (two epochs on hydrogen clusters labelled by the analytic demo model) is
trained once per module with the package's own recipe.
"""

import json
import subprocess
import sys

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from helpers import REPO_ROOT

pytest.importorskip("mace")

from ase_bodyorder import BodyOrderError, SpeciesError, decompose  # noqa: E402
from ase_bodyorder.models import FragmentBatch, hydrogen_demo_model  # noqa: E402
from ase_bodyorder.models.analytic import HYDROGEN_ATOM_ENERGY_EV  # noqa: E402
from ase_bodyorder.models.mace import MACEModel  # noqa: E402
from ase_bodyorder.reference import HighDensity, sample_clusters  # noqa: E402
from ase_bodyorder.training import MACESettings, train_mace  # noqa: E402

torch.set_num_threads(1)


def _labelled(clusters):
    model = hydrogen_demo_model()
    for atoms in clusters:
        result = model.system(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=result.energy, forces=result.forces)
    return clusters


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("mace")
    train = []
    for n in (4, 5, 6):
        train += sample_clusters(HighDensity(n_atoms=n), 6, seed=n)
    files = {}
    for name, clusters in (
        ("train", train[:16]),
        ("valid", sample_clusters(HighDensity(n_atoms=5), 3, seed=11)),
        ("test", sample_clusters(HighDensity(n_atoms=4), 3, seed=12)),
    ):
        files[name] = root / f"{name}.xyz"
        ase.io.write(files[name], _labelled(clusters))
    settings = MACESettings(
        max_num_epochs=2, batch_size=4, seed=7, E0s={1: HYDROGEN_ATOM_ENERGY_EV}
    )
    path = train_mace(
        files["train"], files["valid"], files["test"], settings, root / "model", timeout=300
    )
    return path


@pytest.fixture(scope="module")
def model(trained):
    return MACEModel(trained)


@pytest.fixture
def cluster6():
    return sample_clusters(HighDensity(n_atoms=6), 1, seed=21)[0]


def test_training_writes_model_and_provenance(trained):
    provenance = json.loads((trained.parent / "provenance.json").read_text())
    assert provenance["model"] == trained.name
    assert provenance["settings"]["E0s"] == {"1": HYDROGEN_ATOM_ENERGY_EV}
    assert set(provenance["data"]) == {"train", "valid", "test"}
    assert len(provenance["data"]["train"]["sha256"]) == 64
    assert provenance["versions"]["mace-torch"]
    assert provenance["wall_time_s"] > 0
    assert "TEST" in provenance["metrics"]


def test_model_declares_its_locality(model):
    assert model.atomic_numbers == frozenset({1})
    assert model.cutoff == pytest.approx(4.5)
    assert model.interaction_layers == 2
    assert model.dtype == torch.float64
    assert model.e0(1) == pytest.approx(HYDROGEN_ATOM_ENERGY_EV, abs=1e-12)
    # the 1-body term: E0 plus the ScaleShiftMACE shift, the same through mace's data path
    from ase import Atoms

    single = model.system(Atoms("H", positions=[[0, 0, 0]]), forces=False).energy
    assert model.isolated_atom_energy(1) == pytest.approx(single, abs=1e-12)


def test_per_atom_energies_sum_to_energy(model, cluster6):
    result = model.system(cluster6)
    assert result.energies.shape == (6,)
    assert result.energies.sum() == pytest.approx(result.energy, abs=1e-10)


def test_forces_match_finite_differences(model, cluster6):
    forces = model.system(cluster6).forces
    step = 1e-4
    numeric = np.zeros_like(forces)
    for a in range(len(cluster6)):
        for c in range(3):
            energies = []
            for sign in (1, -1):
                moved = cluster6.copy()
                moved.positions[a, c] += sign * step
                energies.append(model.system(moved, forces=False).energy)
            numeric[a, c] = -(energies[0] - energies[1]) / (2 * step)
    np.testing.assert_allclose(forces, numeric, atol=1e-6)


def _fragments(seed):
    """Fragments of 1-4 atoms, some with a pair farther apart than r_max."""
    rng = np.random.default_rng(seed)
    fragments = []
    for size in rng.integers(1, 5, size=60):
        positions = rng.normal(size=(size, 3)) * 1.2
        if size > 1 and rng.uniform() < 0.3:
            positions[0] += [6.0, 0.0, 0.0]
        fragments.append(Atoms(numbers=[1] * size, positions=positions))
    return fragments


def test_packed_fragments_equal_one_call_each(model):
    fragments = _fragments(seed=5)
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in fragments])])
    positions = torch.tensor(
        np.concatenate([f.positions for f in fragments]), dtype=torch.float64, requires_grad=True
    )
    batch = FragmentBatch(
        positions=positions, numbers=np.ones(offsets[-1], dtype=int), offsets=offsets
    )
    energies = model.fragment_energies(batch)
    assert energies.dtype == torch.float64 and energies.shape == (offsets[-1],)
    singles = [model.system(f) for f in fragments]
    expected = np.concatenate([s.energies for s in singles])
    np.testing.assert_allclose(energies.detach().numpy(), expected, atol=1e-10, rtol=0)
    # autograd flows back to the batch positions: the forces of each fragment
    (grad,) = torch.autograd.grad(energies.sum(), positions)
    np.testing.assert_allclose(
        -grad.numpy(), np.concatenate([s.forces for s in singles]), atol=1e-10, rtol=0
    )
    # without grad, and in chunks of whole fragments: same energies, input untouched
    plain = positions.detach().clone()
    chunked = MACEModel(model.path, max_atoms_per_call=17)
    batch = FragmentBatch(positions=plain, numbers=batch.numbers, offsets=offsets)
    np.testing.assert_allclose(chunked.fragment_energies(batch).numpy(), expected, atol=1e-10)
    assert not plain.requires_grad


@pytest.mark.filterwarnings("ignore:Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_system_agrees_with_mace_calculator_on_a_periodic_cell(model, trained):
    from mace.calculators import MACECalculator

    atoms = bulk("H", "bcc", a=2.3, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=3)
    result = model.system(atoms, forces=True, stress=True)
    atoms.calc = MACECalculator(model_paths=str(trained), default_dtype="float64")
    assert result.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(result.forces, atoms.get_forces(), atol=1e-10)
    np.testing.assert_allclose(result.stress, atoms.get_stress(), atol=1e-10)
    np.testing.assert_allclose(result.energies, atoms.calc.results["energies"], atol=1e-10)
    assert np.abs(result.stress).max() > 1e-4


def test_full_expansion_sums_to_the_energy(model, cluster6):
    body = decompose(cluster6, model, max_order=6, forces=True)
    system = model.system(cluster6)
    assert abs(body.residual_eV) < 1e-8
    np.testing.assert_allclose(body.energies_per_atom_eV.sum(axis=1), system.energies, atol=1e-8)
    np.testing.assert_allclose(body.forces_eV_per_A.sum(axis=0), system.forces, atol=1e-8)
    # the 1-body term is the model's isolated-atom energy
    np.testing.assert_allclose(
        body.energies_per_atom_eV[:, 0], model.isolated_atom_energy(1), atol=1e-12
    )


def test_exact_screening_agrees_with_the_unscreened_expansion(model):
    first = sample_clusters(HighDensity(n_atoms=3), 1, seed=1)[0]
    second = sample_clusters(HighDensity(n_atoms=3), 1, seed=2)[0]
    second.positions += [model.cutoff + 2.5, 0, 0]
    atoms = first + second
    screened = decompose(atoms, model, max_order=6, screening=True)
    full = decompose(atoms, model, max_order=6, screening=False)
    assert screened.n_screened_out > 0
    np.testing.assert_allclose(screened.energies_eV, full.energies_eV, atol=1e-10)
    assert abs(full.residual_eV) < 1e-8


def test_unknown_species_raise(model, cluster6):
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    with pytest.raises(SpeciesError, match="O"):
        decompose(water, model, max_order=2)
    with pytest.raises(SpeciesError):
        model.system(water)
    batch = FragmentBatch(
        positions=torch.zeros((1, 3), dtype=torch.float64),
        numbers=np.array([8]),
        offsets=np.array([0, 1]),
    )
    with pytest.raises(SpeciesError):
        model.fragment_energies(batch)


def test_bad_model_files_raise(tmp_path, trained):
    missing = tmp_path / "missing.model"
    with pytest.raises(BodyOrderError, match="missing.model"):
        MACEModel(missing)
    corrupt = tmp_path / "corrupt.model"
    corrupt.write_bytes(b"this is not a torch file")
    with pytest.raises(BodyOrderError, match="corrupt.model"):
        MACEModel(corrupt)
    compiled = trained.parent / "mace_compiled.model"
    if compiled.is_file():
        with pytest.raises(BodyOrderError, match="TorchScript"):
            MACEModel(compiled)
    other = tmp_path / "other.model"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(BodyOrderError, match="other.model"):
        MACEModel(other)


def test_settings_from_dict():
    settings = MACESettings.from_dict({"max_num_epochs": 3, "E0s": {"1": -13.6}})
    assert settings.E0s == {1: -13.6}
    assert settings.r_max == 4.5
    assert MACESettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(BodyOrderError, match="r_maxx"):
        MACESettings.from_dict({"r_maxx": 5.0})
    with pytest.raises(BodyOrderError, match="E0s"):
        MACESettings(E0s="median")
    with pytest.raises(BodyOrderError, match="r_max"):
        MACESettings(extra_args={"r_max": 3.0})


def test_importing_the_package_does_not_import_mace():
    code = "import sys, ase_bodyorder, ase_bodyorder.models; assert 'mace' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=REPO_ROOT)
