"""MACE backend: the training recipe, what it declares, agreement with mace's own
calculator, files it refuses; and the backend contract (models/contract.py) on the model
the recipe trains today.

A tiny MACE (two epochs on hydrogen clusters labelled by the analytic demo model) is
trained once per module with the package's own recipe.
"""

import hashlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from helpers import REPO_ROOT

pytest.importorskip("mace")

from ase_bodyorder import BodyOrderError  # noqa: E402
from ase_bodyorder.models import hydrogen_demo_model  # noqa: E402
from ase_bodyorder.models.analytic import HYDROGEN_ATOM_ENERGY_EV  # noqa: E402
from ase_bodyorder.models.mace import MACEModel  # noqa: E402
from ase_bodyorder.reference import HighDensity, sample_clusters  # noqa: E402
from ase_bodyorder.training import MACESettings, train_mace  # noqa: E402
from ase_bodyorder.training.reports import set_errors  # noqa: E402
from models.contract import ModelContract  # noqa: E402

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


@pytest.mark.slow
class TestTrainedMACEContract(ModelContract):
    """The model the recipe trains today passes the backend contract."""

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, trained):
        return MACEModel(trained)


@pytest.mark.slow
def test_training_writes_model_and_provenance(trained):
    provenance = json.loads((trained.parent / "provenance.json").read_text())
    assert provenance["model"] == trained.name
    assert provenance["settings"]["E0s"] == {"1": HYDROGEN_ATOM_ENERGY_EV}
    assert provenance["model_sha256"] == hashlib.sha256(trained.read_bytes()).hexdigest()
    assert set(provenance["data"]) == {"train", "valid", "test"}
    for name, count in (("train", 16), ("valid", 3), ("test", 3)):
        data = provenance["data"][name]
        assert data["sha256"] == hashlib.sha256(Path(data["path"]).read_bytes()).hexdigest()
        assert data["structures"] == len(ase.io.read(data["path"], ":")) == count
    assert provenance["versions"]["mace-torch"] == importlib.metadata.version("mace-torch")
    assert provenance["wall_time_s"] > 0
    # mace's own test-set errors are those of the saved model, as we evaluate it
    (test,) = provenance["metrics"]["TEST"]
    errors = set_errors(MACEModel(trained), ase.io.read(provenance["data"]["test"]["path"], ":"))
    assert errors.energy_rmse_meV_per_atom == pytest.approx(test["RMSE E / meV / atom"], rel=1e-3)
    assert errors.force_rmse_meV_per_A == pytest.approx(test["RMSE F / meV / A"], rel=1e-3)


@pytest.mark.slow
def test_model_declares_its_locality(model):
    assert model.atomic_numbers == frozenset({1})
    assert model.cutoff == pytest.approx(4.5)
    assert model.interaction_layers == 2
    assert model.dtype == torch.float64
    assert model.e0(1) == pytest.approx(HYDROGEN_ATOM_ENERGY_EV, abs=1e-12)


@pytest.mark.slow
# mace's calculator calls torch.load without weights_only, and mace sets
# TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD at import, so torch warns (checked: mace-torch 0.3.16)
@pytest.mark.filterwarnings("ignore:Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
# mace's calculator loads TorchScript modules (torch.jit.load: deprecated in torch 2.13)
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
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
    # the energy-only call runs without autograd: same energies
    energy_only = model.system(atoms, forces=False)
    assert energy_only.forces is None
    assert energy_only.energy == pytest.approx(result.energy, abs=1e-10)
    np.testing.assert_allclose(energy_only.energies, result.energies, atol=1e-10)


@pytest.mark.slow
def test_compiled_and_foreign_model_files_raise(tmp_path, trained):
    """Missing and corrupt files: the contract; here the files that are torch files."""
    compiled = trained.parent / "mace_compiled.model"  # mace_run_train writes it too
    with pytest.raises(BodyOrderError, match="mace_compiled.model is a TorchScript"):
        MACEModel(compiled)
    other = tmp_path / "other.model"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(BodyOrderError, match="other.model"):
        MACEModel(other)


def test_importing_the_package_does_not_import_mace():
    code = "import sys, ase_bodyorder, ase_bodyorder.models; assert 'mace' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=REPO_ROOT)
