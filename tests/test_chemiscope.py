"""chemiscope datasets written by ``decompose --chemiscope``: read back with chemiscope's
own loader, the right shapes, and the numbers of ``decompose --json``."""

import io
import json
import re

import ase.io
import numpy as np
import pytest
from helpers import DENSE_CELL

from ase_bodyorder import decompose, load_model
from ase_bodyorder.chemiscope import write_chemiscope
from ase_bodyorder.cli import example_path, main, run_decompose
from ase_bodyorder.expansion import BodyOrderError

chemiscope = pytest.importorskip("chemiscope")


def _read_back(path) -> dict:
    """The dataset as chemiscope's viewer gets it (``chemiscope.show_input``)."""
    widget = chemiscope.show_input(str(path), cache_structures=False)
    return json.loads(widget.value)


def _values(dataset: dict, name: str) -> np.ndarray:
    return np.array(dataset["properties"][name]["values"], dtype=float)


def _decompose_to_chemiscope(tmp_path, frames, name="data.json.gz", **options):
    source = tmp_path / "frames.extxyz"
    ase.io.write(source, frames)
    out = io.StringIO()
    options.setdefault("r_mbe", None)
    run_decompose(
        source,
        model=options.pop("model", "h-morse-atm"),
        as_json=True,
        stream=out,
        chemiscope=tmp_path / name,
        **options,
    )
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    return _read_back(tmp_path / name), records


@pytest.mark.parametrize("name", ["data.json.gz", "data.json"])
def test_decompose_dataset_reads_back_with_the_json_numbers(tmp_path, name):
    frames = [
        ase.io.read(example_path("h8_high_density.xyz")),
        ase.io.read(example_path("h8_low_density.xyz"))[:6],
    ]
    dataset, records = _decompose_to_chemiscope(tmp_path, frames, name, order=3)
    structures = dataset["structures"]
    assert [s["size"] for s in structures] == [8, 6]
    np.testing.assert_allclose(structures[1]["x"], frames[1].positions[:, 0], rtol=1e-12)
    properties = dataset["properties"]
    per_atom = np.concatenate([np.array(r["energies_per_atom_eV"]) for r in records])
    assert per_atom.shape == (14, 3)
    for n in (1, 2, 3):
        values = _values(dataset, f"e_i^({n})")
        assert properties[f"e_i^({n})"]["target"] == "atom"
        assert properties[f"e_i^({n})"]["units"] == "eV"
        assert values.shape == (14,)
        np.testing.assert_array_equal(values, per_atom[:, n - 1])
        mean = _values(dataset, f"E^({n})/N")
        assert properties[f"E^({n})/N"]["target"] == "structure"
        assert properties[f"E^({n})/N"]["units"] == "eV/atom"
        assert mean.shape == (2,)
        expected = [r["energies_eV"][n - 1] / len(f) for r, f in zip(records, frames, strict=True)]
        np.testing.assert_allclose(mean, expected, rtol=1e-14)
    np.testing.assert_allclose(
        _values(dataset, "residual/N"),
        [r["residual_eV"] / len(f) for r, f in zip(records, frames, strict=True)],
        rtol=1e-12,
        atol=1e-15,
    )
    for n in (2, 3):
        expected = [
            r["energies_eV"][n - 1] / (r["energy_eV"] - r["energies_eV"][0]) for r in records
        ]
        np.testing.assert_allclose(_values(dataset, f"share^({n})"), expected, rtol=1e-14)
        assert "units" not in properties[f"share^({n})"]
    assert "share^(1)" not in properties
    # every atom has an environment, so per-atom properties colour the structures
    assert len(dataset["environments"]) == 14
    assert dataset["settings"]["structure"][0]["color"]["property"] == "e_i^(3)"
    assert all(p["description"] for p in properties.values())


def test_sampled_periodic_frame_keeps_nan_for_atoms_not_drawn(tmp_path):
    cell = ase.io.read(DENSE_CELL)
    dataset, records = _decompose_to_chemiscope(
        tmp_path, [cell], order=2, r_mbe=1.5, sample_atoms=5, seed=3
    )
    per_atom = _values(dataset, "e_i^(2)")
    assert per_atom.shape == (len(cell),)
    drawn = np.isfinite(per_atom)
    assert drawn.sum() == 5
    expected = np.array(records[0]["energies_per_atom_eV"], dtype=float)[:, 1]
    np.testing.assert_array_equal(per_atom[drawn], expected[drawn])
    np.testing.assert_allclose(
        _values(dataset, "E^(2)/N"), [records[0]["energies_per_atom_mean_eV"][1]], rtol=1e-14
    )
    assert dataset["settings"]["structure"][0]["unitCell"] is True


def test_bad_file_name_is_one_line_before_any_work(tmp_path, capsys):
    status = main(["decompose", str(example_path("h8_high_density.xyz")), "--chemiscope", "x.xyz"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err == (
        "ase-bodyorder: error: a chemiscope dataset is a .json or .json.gz file, got x.xyz"
    )
    status = main(
        [
            "decompose",
            str(example_path("h8_high_density.xyz")),
            "--chemiscope",
            str(tmp_path / "missing" / "x.json"),
        ]
    )
    assert status == 2
    assert "does not exist" in capsys.readouterr().err


def test_frames_of_different_orders_and_clashing_names_are_refused(tmp_path):
    atoms = ase.io.read(example_path("h8_high_density.xyz"))
    model = load_model("h-morse-atm")
    two, three = decompose(atoms, model, max_order=2), decompose(atoms, model, max_order=3)
    with pytest.raises(BodyOrderError, match="one truncation order"):
        write_chemiscope(tmp_path / "x.json", [atoms, atoms], [two, three], name="x")
    with pytest.raises(BodyOrderError, match="already in the dataset"):
        write_chemiscope(
            tmp_path / "x.json",
            [atoms],
            [two],
            name="x",
            properties={"E/N": {"target": "structure", "values": [0.0]}},
        )
    extra = {"FCI e_i^(2)": {"target": "atom", "values": np.arange(8.0), "units": "eV"}}
    extra["FCI e_i^(2)"]["description"] = "NaN where missing"
    write_chemiscope(tmp_path / "x.json", [atoms], [two], name="x NaN", properties=extra)
    assert _values(_read_back(tmp_path / "x.json"), "FCI e_i^(2)").tolist() == list(range(8))
    # chemiscope's viewer reads NaN values by replacing the word NaN everywhere in the
    # file: a string holding it breaks the file in the browser
    assert not re.search(r"\bNaN\b", (tmp_path / "x.json").read_text())


@pytest.mark.slow
def test_report_writes_the_monitored_frames_of_a_run(tmp_path, capsys):
    """A real i-PI run (16 atoms, 4 steps, expansion every 2): ``report --chemiscope``
    expands the frames at the monitored steps in full, with the run's settings."""
    pytest.importorskip("ipi")
    from dataclasses import replace

    from helpers import R_MBE, SMALL

    from ase_bodyorder.ipi import run_md
    from ase_bodyorder.ipi.cases import CASES, write_case

    case = write_case(
        replace(CASES["nvt"], name="h16", steps=4, stride=2, **SMALL), tmp_path / "case"
    )
    run = run_md(case, model="h-morse-atm", output_dir=tmp_path / "run", progress=False)
    assert run.status == "completed"
    target = tmp_path / "frames.json.gz"
    status = main(
        ["report", str(run.run_dir), "--chemiscope", str(target), "--chemiscope-frames", "2"]
    )
    assert status == 0, capsys.readouterr().err
    assert f"wrote {target}" in capsys.readouterr().out
    dataset = _read_back(target)
    # steps 0, 2, 4 monitored: two frames spread over them are the first and the last
    assert _values(dataset, "step").tolist() == [0.0, 4.0]
    assert dataset["properties"]["time"]["units"] == "fs"
    np.testing.assert_allclose(_values(dataset, "time"), [0.0, 0.8], atol=1e-9)
    frames = ase.io.read(run.positions[0], ":")
    model = load_model("h-morse-atm")
    expected = [decompose(frames[k], model, max_order=3, r_mbe=R_MBE) for k in (0, 2)]
    per_atom = np.concatenate([r.energies_per_atom_eV for r in expected])
    np.testing.assert_allclose(_values(dataset, "e_i^(3)"), per_atom[:, 2], atol=1e-9)
    np.testing.assert_allclose(
        _values(dataset, "E^(2)/N"), [r.energies_eV[1] / 16 for r in expected], atol=1e-9
    )
    assert dataset["settings"]["map"]["x"]["property"] == "time"
    assert dataset["settings"]["structure"][0]["color"]["property"] == "e_i^(3)"


def test_report_chemiscope_needs_a_run_directory(tmp_path, capsys):
    """A directory with i-PI's outputs but no run manifest has no positions to show."""
    from helpers import fake_ipi_run

    run_dir = fake_ipi_run(tmp_path / "run", [[-1.0, -0.5, 0.1]] * 3)
    status = main(["report", str(run_dir), "--chemiscope", str(tmp_path / "x.json")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not a run directory of `ase-bodyorder md` (no run.json)" in err
    assert not (tmp_path / "x.json").exists()
    status = main(["report", "accuracy", "--chemiscope", str(tmp_path / "x.json")])
    assert status == 2
    assert "give a run directory" in capsys.readouterr().err
