"""Installing a finished training as a shipped model: only with the recipe's settings and
data, copied with its provenance."""

import json

import pytest

from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.io import sha256_file as sha256
from ase_bodyorder.training import shipped


@pytest.fixture
def fake_recipe(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "reference").mkdir(parents=True)
    for part in ("train", "validation", "test"):
        (data / "reference" / f"toy_{part}.xyz").write_text(f"{part}\n")
    monkeypatch.setattr(shipped, "DATA", data)
    settings = shipped.mace_cells(3, channels=8, pair_repulsion=True)
    spec = shipped.ShippedModel("toy-mace", "toy", settings)
    monkeypatch.setitem(shipped.SHIPPED, "toy-mace", spec)
    out = tmp_path / "work" / "toy-mace"
    out.mkdir(parents=True)
    (out / "mace.model").write_bytes(b"weights")
    provenance = {
        "model": "mace.model",
        "settings": spec.settings.to_dict(),
        "data": {
            "train": {"sha256": sha256(spec.split("train"))},
            "valid": {"sha256": sha256(spec.split("validation"))},
            "test": {"sha256": sha256(spec.split("test"))},
        },
    }
    (out / "provenance.json").write_text(json.dumps(provenance))
    return spec, out, provenance


def test_install_copies_model_and_provenance(fake_recipe):
    spec, out, _ = fake_recipe
    assert shipped.main(["toy-mace", "--work", str(out.parent), "--install-only"]) is None
    assert (spec.directory / "model.model").read_bytes() == b"weights"
    installed = json.loads((spec.directory / "provenance.json").read_text())
    assert installed["name"] == "toy-mace" and installed["dataset"] == "toy"
    assert installed["settings"]["hidden_irreps"] == "8x0e+8x1o"
    assert installed["settings"]["extra_args"]["pair_repulsion"] is None


def test_install_refuses_other_settings_or_data(fake_recipe):
    spec, out, provenance = fake_recipe
    settings = shipped.mace_cells(4, channels=8, pair_repulsion=True)
    other = dict(provenance, settings=settings.to_dict())
    (out / "provenance.json").write_text(json.dumps(other))
    with pytest.raises(BodyOrderError, match="other settings"):
        shipped.install_shipped("toy-mace", out)
    spec.split("test").write_text("changed\n")
    (out / "provenance.json").write_text(json.dumps(provenance))
    with pytest.raises(BodyOrderError, match="its test set"):
        shipped.install_shipped("toy-mace", out)
    assert not spec.directory.exists()  # nothing half-installed
    (out / "provenance.json").unlink()
    with pytest.raises(BodyOrderError, match="has not finished"):
        shipped.install_shipped("toy-mace", out)


def test_install_only_of_an_unfinished_training_is_one_line(fake_recipe, capsys):
    _, out, _ = fake_recipe
    (out / "provenance.json").unlink()
    assert shipped.main(["toy-mace", "--work", str(out.parent), "--install-only"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has not finished" in err and str(out) in err


def test_fragment_weights_weigh_isolated_atoms_and_pairs_only(fake_recipe, tmp_path):
    """The weighted recipe trains on a copy of the split with mace's ``config_weight``
    on the isolated fragments of the given sizes (same bytes each time), and installing
    checks that copy's hash."""
    import ase.io
    from ase import Atoms

    spec, out, provenance = fake_recipe
    frames = [
        Atoms("H", positions=[[0, 0, 0]]),
        Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]),
        Atoms("H3", positions=[[0, 0, 0], [0, 0, 0.9], [0, 0.9, 0]]),
        Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[3, 3, 3], pbc=True),
    ]
    for atoms in frames:
        atoms.info["energy"] = -1.0
    ase.io.write(spec.split("train"), frames, format="extxyz")
    weighted = shipped.ShippedModel(
        "toy-mace", "toy", spec.settings, fragment_weights=((1, 20.0), (2, 5.0))
    )
    path = weighted.training_file(tmp_path / "w1")
    again = weighted.training_file(tmp_path / "w2")
    assert path.read_bytes() == again.read_bytes()
    weights = [a.info.get("config_weight") for a in ase.io.read(path, ":")]
    assert weights == [20.0, 5.0, None, None]  # not the triple, not the periodic cell

    shipped.SHIPPED["toy-mace"] = weighted  # monkeypatched by the fixture: restored
    provenance["data"]["train"]["sha256"] = sha256(spec.split("train"))
    (out / "provenance.json").write_text(json.dumps(provenance))
    with pytest.raises(BodyOrderError, match="with fragment weights"):
        shipped.install_shipped("toy-mace", out)
    provenance["data"]["train"]["sha256"] = sha256(path)
    (out / "provenance.json").write_text(json.dumps(provenance))
    shipped.install_shipped("toy-mace", out)
    installed = json.loads((spec.directory / "provenance.json").read_text())
    assert installed["fragment_weights"] == {"1": 20.0, "2": 5.0}


def test_install_records_description_and_convergence(fake_recipe):
    """``ase-bodyorder models`` reads both from the installed provenance."""
    from ase_bodyorder.models.registry import _description

    spec, out, provenance = fake_recipe
    described = shipped.ShippedModel("toy-mace", "toy", spec.settings, description="a toy")
    shipped.SHIPPED["toy-mace"] = described  # monkeypatched by the fixture: restored
    curve = [{"epoch": e, "validation_loss": 1.0} for e in range(40)]
    (out / "provenance.json").write_text(json.dumps(dict(provenance, training_curve=curve)))
    shipped.install_shipped("toy-mace", out)
    installed = json.loads((spec.directory / "provenance.json").read_text())
    assert installed["convergence"] == {"epochs": 40, "improvement": 0.0, "flat": True}
    assert _description(installed) == "a toy; converged (40 epochs) (shipped)"
