"""The density scan: a tiny spec end to end through i-PI, resumed without rerunning."""

import json

import numpy as np
import pytest

from ase_bodyorder.cli import main
from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.ipi.scan import DEFAULT_SCAN_EXPANSION, ScanSettings, scan_case
from ase_bodyorder.settings import ExpansionSettings
from tests.helpers import png_size


def test_scan_cases_follow_the_density():
    settings = ScanSettings(rs_bohr=(1.6, 3.0), n_atoms=16, molecular_above_rs_bohr=2.2)
    dense, dilute = scan_case(settings, 0), scan_case(settings, 1)
    assert not dense.molecular and dilute.molecular
    assert dense.r_mbe == pytest.approx(2.0) and dilute.r_mbe == pytest.approx(3.75)
    atoms = dilute.structure()
    rs = (3 * atoms.get_volume() / (4 * np.pi * len(atoms))) ** (1 / 3) / 0.529177210903
    assert rs == pytest.approx(3.0)
    with pytest.raises(BodyOrderError, match="stride"):
        ScanSettings(rs_bohr=(1.6,), steps=4, expansion=ExpansionSettings(stride=5))
    with pytest.raises(BodyOrderError, match="positive"):
        ScanSettings(rs_bohr=())
    with pytest.raises(BodyOrderError, match="equilibration_steps"):
        ScanSettings(rs_bohr=(1.6,), equilibration_steps=-1)
    equilibrated = ScanSettings(rs_bohr=(1.6,), steps=300, equilibration_steps=500)
    assert equilibrated.total_steps == 800 and scan_case(equilibrated, 0).steps == 800


@pytest.mark.slow
def test_density_scan_end_to_end_and_resumed(tmp_path, capsys):
    out = tmp_path / "scan"
    argv = ["scan", "--rs", "1.6", "2.6", "--model", "h-morse-atm", "--steps", "4"]
    argv += ["--stride", "2", "--n-atoms", "16", "--sample-atoms", "0", "--temperature", "300"]
    argv += ["--output-dir", str(out), "--quiet", "--timeout", "120"]
    assert main(argv) == 0
    data = json.loads((out / "scan.json").read_text())
    points = data["points"]
    assert [p["rs_bohr"] for p in points] == [1.6, 2.6]
    assert [p["start"] for p in points] == ["bcc", "molecular"]
    for point in points:
        assert point["frames"] == 3  # steps 0, 2 and 4
        assert len(point["orders"]) == 3
        # the analytic model's 1-body term is its isolated atom at every density
        assert point["orders"][0]["error_eV_per_atom"] == pytest.approx(0, abs=1e-12)
    # denser: more binding per atom in the pair term
    assert points[0]["orders"][1]["mean_eV_per_atom"] != points[1]["orders"][1]["mean_eV_per_atom"]
    assert png_size(out / "scan.png")[0] > 500
    assert "| 1.60 |" in (out / "README.md").read_text()
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["rs1.60", "rs2.60"]
    capsys.readouterr()
    assert main(argv) == 0  # resumed: both runs reused, nothing new
    assert sorted(p.name for p in (out / "runs").iterdir()) == runs
    # the same 4-step runs read as 2 equilibration steps and 2 of statistics: reused,
    # and only the frames at steps 2 and 4 count (temperature over the same steps)
    before = {p["rs_bohr"]: p for p in points}
    argv[argv.index("--steps") + 1] = "2"
    assert main([*argv, "--equilibration", "2"]) == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == runs
    data = json.loads((out / "scan.json").read_text())
    assert "--equilibration 2" in data["command"]
    for point in data["points"]:
        assert point["frames"] == 2 and point["first_step"] == 2
        assert point["temperature_K_mean"] != before[point["rs_bohr"]]["temperature_K_mean"]
    assert "after the first 2 steps" in (out / "README.md").read_text()


def test_a_scan_reuses_only_runs_of_the_same_settings(tmp_path, monkeypatch):
    """Regression: a finished run in the output folder was reused whatever settings made
    it (another --model, --temperature or --sample-atoms reported the old runs' numbers
    under the new settings). Runs here are stand-ins: what is tested is which run each
    density's point comes from, and that no finished run is overwritten."""
    from ase_bodyorder.ipi import runner, scan

    made = []

    def fake_run_md(case_dir, *, output_dir, **kwargs):
        output_dir.mkdir()
        case = json.loads((case_dir / "case.json").read_text())
        made_with = {**case, **kwargs, "settings": kwargs["settings"].to_dict()}
        (output_dir / "made.json").write_text(json.dumps(made_with))
        made.append(output_dir.name)

    monkeypatch.setattr(runner, "run_md", fake_run_md)
    monkeypatch.setattr(scan, "_finished", lambda run_dir, steps: (run_dir / "made.json").exists())
    monkeypatch.setattr(
        scan, "scan_point", lambda run_dir, case, first_step: {"run_dir": run_dir.name}
    )

    def points(sample_atoms=8, **changes):
        expansion = DEFAULT_SCAN_EXPANSION.replace(stride=2, sample_atoms=sample_atoms)
        settings = ScanSettings(
            rs_bohr=(1.6, 2.6), steps=4, expansion=expansion, n_atoms=16, **changes
        )
        made.clear()
        return [p["run_dir"] for p in scan.run_density_scan(settings, tmp_path, progress=False)]

    assert points() == ["rs1.60", "rs2.60"] and made == ["rs1.60", "rs2.60"]
    assert points() == ["rs1.60", "rs2.60"] and made == []  # resumed: nothing new
    changes = ({"temperature_K": 500.0}, {"model": "h-morse-atm"}, {"sample_atoms": 4})
    for attempt, change in enumerate(changes, start=2):  # each beside the others
        runs = [f"rs1.60-{attempt}", f"rs2.60-{attempt}"]
        assert points(**change) == runs and made == runs, change
        assert points(**change) == runs and made == [], change
    written = {p.name: (p / "made.json").read_text() for p in (tmp_path / "runs").iterdir()}
    assert len(written) == 8
    for attempt, change in [(1, {}), *enumerate(changes, start=2)]:  # all still reused
        suffix = "" if attempt == 1 else f"-{attempt}"
        assert points(**change) == [f"rs1.60{suffix}", f"rs2.60{suffix}"] and made == []
    assert {p.name: (p / "made.json").read_text() for p in (tmp_path / "runs").iterdir()} == (
        written
    )
    # the default model named is the same run as the default model left out
    from ase_bodyorder.models import DEFAULT_MD_MODEL

    assert points(model=DEFAULT_MD_MODEL) == ["rs1.60", "rs2.60"] and made == []


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--temperature", "-5", "temperature_K must be a positive number, got -5.0"),
        ("--molecular-above-rs", "nan", "molecular_above_rs_bohr must be a positive number"),
        ("--r-mbe-per-rs", "0", "r_mbe_per_rs must be a positive number, got 0.0"),
        ("--n-atoms", "0", "n_atoms must be even and >= 2"),
        ("--sample-atoms", "-1", "sample_atoms must be a positive integer, got -1"),
        ("--order", "0", "order must be a positive integer, got 0"),
        ("--stride", "0", "must be at least stride (0) >= 1"),
    ],
)
def test_bad_scan_settings_are_refused_before_anything_is_made(
    tmp_path, capsys, option, value, said
):
    """Regression (tour): a negative temperature started i-PI, which failed; an rs of
    nan ran; every bad value made the output folder first."""
    out = tmp_path / "scan"
    assert main(["scan", "--rs", "1.6", option, value, "--output-dir", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_scan_reuses_a_run_of_the_former_record_only_for_its_expansion(tmp_path, monkeypatch):
    """Runs of an earlier version recorded the case and ``sample_atoms`` (their expansion:
    the case's order, stride and r_mbe, the sample, seed 0): reused for that expansion
    only, not for another seed."""
    from ase_bodyorder.ipi import scan

    settings = ScanSettings(rs_bohr=(1.6,), steps=10, n_atoms=16)
    record = scan.run_settings(settings, 0)
    assert record["expansion"] == {**DEFAULT_SCAN_EXPANSION.to_dict(), "r_mbe": 2.0}
    run_dir = tmp_path / "rs1.60"
    run_dir.mkdir()
    former = {"case": record["case"], "sample_atoms": 8}
    (run_dir / scan.RUN_SETTINGS).write_text(json.dumps(former))
    monkeypatch.setattr(scan, "_finished", lambda run_dir, steps: True)
    assert scan._reusable(run_dir, record, 10)
    other_seed = scan.run_settings(
        ScanSettings(
            rs_bohr=(1.6,), steps=10, n_atoms=16, expansion=DEFAULT_SCAN_EXPANSION.replace(seed=1)
        ),
        0,
    )
    assert not scan._reusable(run_dir, other_seed, 10)
