"""`ase-bodyorder increments`: frames of a run expanded by increments and by the model's
own atom energies, on the same atoms."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from ase_bodyorder import decompose
from ase_bodyorder.cli import main
from ase_bodyorder.decompose import frame_settings
from ase_bodyorder.models import load_model
from ase_bodyorder.models.sharing import IncrementShare

INPUT = """<simulation><output prefix="simulation">
<trajectory filename="pos" stride="5" format="ase"> positions </trajectory>
</output></simulation>"""


@pytest.fixture
def run_dir(tmp_path):
    """A run directory as the MD runner leaves it: case, input, positions (8 frames
    every 5 steps) of a 16-atom dense cell, model h-morse-atm."""
    run = tmp_path / "scan" / "runs" / "rs1.60"
    run.mkdir(parents=True)
    case = {
        "name": "rs1.60",
        "rs_bohr": 1.6,
        "driver_defaults": {"model": "h-morse-atm", "order": 3, "stride": 5, "r_mbe": 1.9},
    }
    (run / "case.json").write_text(json.dumps(case))
    (run / "input.xml").write_text(INPUT)
    frames = []
    for k in range(8):
        atoms = bulk("H", "bcc", a=2.0, cubic=True).repeat(2)
        atoms.rattle(0.08, seed=k)
        frames.append(atoms)
    ase.io.write(run / "simulation.pos_0.extxyz", frames)
    return run


def test_increments_report_equals_direct_expansions_of_the_chosen_frames(run_dir, tmp_path):
    out = tmp_path / "report"
    # steps 0, 5, ..., 35: equilibration 10 steps leaves frames 2..7, every 2nd: 2, 4, 6
    args = ["increments", str(run_dir.parent.parent), "--out-dir", str(out)]
    assert main(args + ["--equilibration", "10", "--every", "2", "--sample-atoms", "4"]) == 0
    (run,) = json.loads((out / "increments.json").read_text())["runs"]
    assert run["frame_steps"] == [10, 20, 30] and run["frames"] == 3
    frames = ase.io.read(run_dir / "simulation.pos_0.extxyz", ":")
    chosen = [frames[2], frames[4], frames[6]]
    model = load_model("h-morse-atm")
    settings = frame_settings(chosen, order=3, sample_atoms=4, seed=0)
    for name, evaluated in (("own", model), ("increment", IncrementShare(model))):
        values = [
            decompose(atoms, evaluated, r_mbe=1.9, **own).energies_per_atom_mean_eV
            for atoms, own in zip(chosen, settings, strict=True)
        ]
        np.testing.assert_allclose(run[name]["per_atom_mean_eV"], np.mean(values, axis=0))
    # Morse pairs and ATM triples: each definition gives the same body orders here
    np.testing.assert_allclose(
        run["own"]["per_atom_mean_eV"], run["increment"]["per_atom_mean_eV"], atol=1e-9
    )
    assert run["increment"]["per_atom_mean_eV"][2] > 0  # ATM triples are there
    assert (out / "increments.png").stat().st_size > 10_000
    assert "| rs1.60 | 1.6 | h-morse-atm |" in (out / "increments.md").read_text()


def test_increments_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["increments", str(tmp_path), "--out-dir", str(tmp_path / "o")]) == 2
    assert "neither a run directory" in capsys.readouterr().err


def test_increments_reads_the_model_from_the_run_manifest(run_dir, tmp_path):
    """Regression (issue 35 tour): a run made with the default model has no model in
    case.json's driver_defaults, and `increments` refused it ("not the case of a
    monitored run ('model')"); the manifest run.json says what the drivers ran."""
    from ase_bodyorder.runs import DriverSettings, MDRun
    from ase_bodyorder.settings import ExpansionSettings

    case = json.loads((run_dir / "case.json").read_text())
    del case["driver_defaults"]["model"]
    (run_dir / "case.json").write_text(json.dumps(case))
    expansion = ExpansionSettings(order=3, r_mbe=1.9, stride=5)
    driver = DriverSettings(model="h-morse-atm", expansion=expansion, template="init.extxyz")
    files = {name: run_dir / name for name in ("input.xml", "simulation.out", "RESTART")}
    MDRun(
        run_dir=run_dir,
        case="rs1.60",
        driver=driver,
        nbeads=1,
        property_columns=("step",),
        first_step=0,
        total_steps=35,
        last_step=35,
        status="finished",
        wall_time_s=1.0,
        input_xml=files["input.xml"],
        properties=files["simulation.out"],
        positions=(run_dir / "simulation.pos_0.extxyz",),
        extras={},
        checkpoint=files["RESTART"],
        restart=files["RESTART"],
        ipi_log=run_dir / "ipi.log",
        driver_logs=(),
    ).write()
    out = tmp_path / "report"
    args = ["increments", str(run_dir), "--out-dir", str(out), "--sample-atoms", "2"]
    assert main(args + ["--equilibration", "25", "--every", "1"]) == 0
    (run,) = json.loads((out / "increments.json").read_text())["runs"]
    assert run["frame_steps"] == [25, 30, 35]
    assert "| h-morse-atm |" in (out / "increments.md").read_text()
