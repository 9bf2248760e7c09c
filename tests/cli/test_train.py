"""`ase-bodyorder train`: clear errors before any training, and one real 1-epoch run."""

import importlib.util
import json
import warnings
from pathlib import Path

import ase.io
import pytest

import ase_bodyorder
from ase_bodyorder.cli import main
from ase_bodyorder.training.reports import set_errors

REFERENCE = Path(ase_bodyorder.__file__).parent / "data" / "reference"

#: a tiny PET (the settings of tests/models/test_metatomic.py), cheapest of the three
TINY_PET = {
    "architecture": "pet",
    "batch_size": 4,
    "learning_rate": 1e-3,
    "seed": 1,
    "cutoff": 3.0,
    "d_pet": 16,
    "d_node": 16,
    "d_head": 16,
    "d_feedforward": 16,
    "num_heads": 2,
    "num_attention_layers": 1,
    "num_gnn_layers": 2,
}


@pytest.fixture
def data(tmp_path):
    """12 training, 4 validation and 4 test structures of the shipped low-density set."""
    frames = ase.io.read(REFERENCE / "h8-low_train.xyz", index=":20")
    paths = {}
    for name, part in (("train", frames[:12]), ("val", frames[12:16]), ("test", frames[16:])):
        paths[name] = tmp_path / f"{name}.xyz"
        ase.io.write(paths[name], part, format="extxyz")
    return paths


def _settings(tmp_path, content) -> str:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(content))
    return str(path)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a recipe is called."""
    import ase_bodyorder.training as training

    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(training, "train_metatrain", refuse)
    monkeypatch.setattr(training, "train_mace", refuse)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing data", "training data file MISSING does not exist"),
        ("missing test", "test data file MISSING does not exist"),
        ("missing settings", "settings file MISSING does not exist"),
        ("unknown key", "unknown metatrain setting(s) 'n_epochs'"),
        ("unknown mace key", "unknown MACE setting(s) 'num_epochs'"),
        ("contradiction", "is for architecture 'soap_bpnn', but --architecture is 'pet'"),
        ("mace contradiction", "is for architecture 'pet', but --architecture is 'mace'"),
        ("bad epochs", "num_epochs must be a positive integer, got 0"),
    ],
)
def test_errors_are_one_line_and_train_nothing(case, message, data, tmp_path, capsys, no_training):
    missing = str(tmp_path / "missing.xyz")
    output = tmp_path / "out"
    argv = ["train", "--architecture", "pet", "--data", str(data["train"])]
    argv += ["--output", str(output)]
    if case == "missing data":
        argv[4] = missing
    elif case == "missing test":
        argv += ["--test", missing]
    elif case == "missing settings":
        argv += ["--settings", missing]
    elif case == "unknown key":
        argv += ["--settings", _settings(tmp_path, {"n_epochs": 3})]
    elif case == "unknown mace key":
        argv[2] = "mace"
        argv += ["--settings", _settings(tmp_path, {"num_epochs": 3})]
    elif case == "contradiction":
        argv += ["--settings", _settings(tmp_path, {"architecture": "soap_bpnn"})]
    elif case == "mace contradiction":
        argv[2] = "mace"
        argv += ["--settings", _settings(tmp_path, TINY_PET)]
    elif case == "bad epochs":
        argv += ["--epochs", "0"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.replace(missing, "MISSING")
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not output.exists() and "training" not in captured.out


def test_settings_file_may_use_the_cli_spelling(tmp_path):
    from ase_bodyorder.training import train_settings

    path = _settings(tmp_path, {"architecture": "soap-bpnn", "num_epochs": 7})
    settings = train_settings("soap-bpnn", path, epochs=2)
    assert settings.architecture == "soap_bpnn" and settings.num_epochs == 2
    mace = train_settings("mace", _settings(tmp_path, {"architecture": "mace"}), epochs=3)
    assert mace.max_num_epochs == 3


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("metatrain") is None, reason="needs metatrain")
def test_train_pet_one_epoch(data, tmp_path, capsys):
    with warnings.catch_warnings():
        # metatensor/metatomic script their modules at import; torch flags TorchScript
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        from ase_bodyorder.models.metatomic import MetatomicModel

    output = tmp_path / "pet"
    settings = _settings(tmp_path, {**TINY_PET, "num_epochs": 50})
    argv = ["train", "--architecture", "pet", "--data", str(data["train"])]
    argv += ["--validation", str(data["val"]), "--test", str(data["test"])]
    argv += ["--settings", settings, "--epochs", "1", "--output", str(output)]
    assert main([*argv, "--timeout", "300"]) == 0
    out = capsys.readouterr().out
    model_path = output / "model.pt"
    provenance_path = output / "provenance.json"
    assert f"model: {model_path}" in out
    assert f"provenance: {provenance_path}" in out
    assert "energy RMSE (per atom)" in out.split("test metrics:", 1)[1]

    provenance = json.loads(provenance_path.read_text())
    assert provenance["settings"]["num_epochs"] == 1  # --epochs overrides the file
    assert provenance["settings"]["d_pet"] == 16
    assert {k: v["structures"] for k, v in provenance["data"].items()} == {
        "train": 12,
        "validation": 4,
        "test": 4,
    }
    assert "energy RMSE (per atom)" in provenance["metrics"]["test"]

    # the exported model is the one metatrain evaluated: its test errors, as we compute
    # them, are the recorded ones (forces: the end-of-training evaluation and the export
    # differ by up to 1%, see tests/training/test_reports.py)
    model = MetatomicModel(model_path)
    errors = set_errors(model, ase.io.read(data["test"], ":"))
    test = provenance["metrics"]["test"]
    assert errors.energy_rmse_meV_per_atom == pytest.approx(
        test["energy RMSE (per atom)"]["value"], rel=2e-3
    )
    assert errors.force_rmse_meV_per_A == pytest.approx(
        test["energy_positions_gradients RMSE"]["value"], rel=2e-2
    )
