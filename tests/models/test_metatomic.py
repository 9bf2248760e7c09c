"""Exported metatomic models (PET, SOAP-BPNN) trained for a few epochs by the recipe.

The models are barely trained: the tests check what the backend declares, the
provenance the recipe writes, PET's reach, and the backend contract (models/contract.py:
packed fragments vs separate evaluations, expansion vs energy, autograd vs finite
differences, declared screening vs no screening), not accuracy.
"""

import hashlib
import importlib.metadata
import importlib.util
import json
import os
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

from ase_bodyorder.models import hydrogen_demo_model  # noqa: E402
from ase_bodyorder.models.metatomic import MetatomicModel  # noqa: E402
from ase_bodyorder.reference import HighDensity, sample_clusters  # noqa: E402
from ase_bodyorder.training import MetatrainSettings, train_metatrain  # noqa: E402
from ase_bodyorder.training.metatrain import CHECKPOINT_INTERVAL_EPOCHS, latest_checkpoint  # noqa: E402
from ase_bodyorder.training.reports import set_errors  # noqa: E402
from models.contract import ModelContract  # noqa: E402

torch.set_num_threads(1)
#: every test here uses a model trained for it
pytestmark = pytest.mark.slow

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
#: hops an atom's energy sees: 2-layer feedforward PET sees 3 (see pet_hops)
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


class TestTrainedContract(ModelContract):
    """The PET and SOAP-BPNN models the recipe trains today pass the backend contract."""

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, trained):
        return trained[2]


def test_declarations(trained):
    architecture, _, model = trained
    assert model.atomic_numbers == frozenset({1})
    assert model.dtype == torch.float64
    assert model.cutoff == pytest.approx(CUTOFF)
    assert model.interaction_layers == LAYERS[architecture]


def test_provenance(trained, data_files):
    architecture, path, model = trained
    provenance = json.loads((path.parent / "provenance.json").read_text())
    assert provenance["settings"]["architecture"] == architecture
    assert provenance["options"]["base_precision"] == 64
    assert set(provenance["data"]) == {"train", "validation", "test"}
    for name, file in zip(("train", "validation", "test"), data_files, strict=True):
        data = provenance["data"][name]
        assert data["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
        assert data["structures"] == len(ase.io.read(file, ":"))
    assert provenance["data"]["train"]["structures"] == 16
    assert provenance["versions"]["metatrain"] == importlib.metadata.version("metatrain")
    assert provenance["wall_time_s"] > 0
    # regression: the epochs were guessed from the logged curve (metatrain logs epoch 0
    # of these two, which made one); the final checkpoint counts them
    assert provenance["epochs"] == 2
    assert provenance["best_epoch"] in (0, 1)
    # regression: metatrain's default checkpoint interval (100 epochs for PET) lost up to
    # 100 epochs of a killed training; the interval is not a setting, and the resumable
    # checkpoints go once the model is exported
    training = provenance["options"]["architecture"]["training"]
    assert training["checkpoint_interval"] == CHECKPOINT_INTERVAL_EPOCHS
    assert "checkpoint_interval" not in json.dumps(provenance["settings"])
    assert not list((path.parent / "outputs").glob("*/*/model_*.ckpt"))
    assert (path.parent / "model.ckpt").is_file()
    # metatrain's own test-set errors are those of the exported model, as we evaluate it
    # (forces: metatrain's end-of-training evaluation and the export differ by up to 1%)
    test = provenance["metrics"]["test"]
    errors = set_errors(model, ase.io.read(data_files[2], ":"))
    assert errors.energy_rmse_meV_per_atom == pytest.approx(
        test["energy RMSE (per atom)"]["value"], rel=2e-3
    )
    assert errors.force_rmse_meV_per_A == pytest.approx(
        test["energy_positions_gradients RMSE"]["value"], rel=2e-2
    )


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


def test_an_interrupted_training_resumes_from_its_latest_epoch(data_files, tmp_path):
    """Regression: resuming went through ``mtt train --restart auto``, which takes the
    newest ``.ckpt`` file by time, the scaler's or composition model's when a run was
    killed in its first epoch; and metatrain's default interval (100 epochs for PET)
    lost up to 100 epochs of a killed training."""
    import subprocess
    import sys

    settings = dict(batch_size=8, learning_rate=1e-3, seed=1, cutoff=CUTOFF, **TINY["soap_bpnn"])
    interrupted = MetatrainSettings(num_epochs=CHECKPOINT_INTERVAL_EPOCHS + 2, **settings)
    # the state a run killed after epoch 11 leaves: metatrain's own outputs, unexported
    train_metatrain(*data_files, interrupted, tmp_path / "first", timeout=300)
    options = (tmp_path / "first" / "options.yaml").read_text()
    run = tmp_path / "run"
    run.mkdir()
    (run / "options.yaml").write_text(options)
    subprocess.run(
        [sys.executable, "-m", "metatrain", "train", "options.yaml", "-o", "model.pt"],
        cwd=run,
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    (run / "model.pt").unlink()
    (checkpoint,) = run.glob(f"outputs/*/*/model_{CHECKPOINT_INTERVAL_EPOCHS}.ckpt")
    assert latest_checkpoint(run) == checkpoint
    for name in ("scaler.ckpt", "composition_model.ckpt"):  # newer by time, not epochs
        (checkpoint.parent / name).touch()
    assert latest_checkpoint(run) == checkpoint

    longer = MetatrainSettings(num_epochs=CHECKPOINT_INTERVAL_EPOCHS + 4, **settings)
    path = train_metatrain(*data_files, longer, run, timeout=300, resume=True)
    log = (run / "mtt_train.log").read_text()
    assert f"model_{CHECKPOINT_INTERVAL_EPOCHS}.ckpt" in log
    provenance = json.loads((path.parent / "provenance.json").read_text())
    assert provenance["epochs"] == CHECKPOINT_INTERVAL_EPOCHS + 4
    assert latest_checkpoint(run) is None  # removed once the model is exported


def test_reading_a_checkpoint_leaves_metatomic_importable_under_warnings_as_errors():
    """Regression: ``trained_epochs`` imported metatomic inside its ``try``; under
    ``-W error`` (this suite's setting) torch's TorchScript deprecation warning stopped
    that import half-way, the ``except`` hid it, and every later import of
    metatensor.torch in the process failed (``metatensor._c_lib is not defined``):
    ``tests/cli/test_train.py`` failed when run on its own."""
    import subprocess
    import sys

    script = (
        "from ase_bodyorder.training.metatrain import trained_epochs\n"
        "assert trained_epochs('no-such-file.ckpt') == {}\n"
        "from ase_bodyorder.models.metatomic_loading import import_metatomic\n"
        "import_metatomic()\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
