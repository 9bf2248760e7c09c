"""`watch` and `report` answer only from complete records, and say what they checked.

They used to print "0 frame(s) flagged" with exit status 0 for a directory that does not
exist, an empty run and a BodyOrderLogger file whose every frame is out of range, and to
read a cut-off last line of an extras file as a number (3.1 for 3151.7).
"""

import json
import time

import numpy as np
import pytest
from ase.md.verlet import VelocityVerlet
from helpers import dead_pid, fake_ipi_run, ipi_line, random_cluster, run_dir_with_runner

from ase_bodyorder import BodyOrderCalculator, BodyOrderError
from ase_bodyorder.cli import main
from ase_bodyorder.models import AxilrodTellerMuto, LennardJones, SumModel
from ase_bodyorder.monitor import (
    BodyOrderLogger,
    load_trace,
    read_ase_log,
    read_ipi_extras,
    read_ipi_properties,
    watch,
)

FAST = {"interval_s": 0.05, "idle_s": 0.5, "timeout_s": 30.0}
FAST_CLI = ["--interval", "0.05", "--idle", "0.5", "--timeout", "30"]
ARGON = SumModel(
    LennardJones(epsilon=0.0104, sigma=3.4, cutoff=8.0), AxilrodTellerMuto(C9=50.0, cutoff=8.0)
)


def _ranges_file(tmp_path, ranges: dict):
    path = tmp_path / "ranges.json"
    path.write_text(json.dumps({str(k): list(v) for k, v in ranges.items()}))
    return str(path)


# ---------------------------------------------------------------- missing or empty


@pytest.mark.parametrize("what", ["missing", "empty"])
def test_watch_fails_on_a_missing_or_empty_run(tmp_path, capsys, what):
    target = tmp_path / "run"
    if what == "empty":
        target.mkdir()
    ranges = _ranges_file(tmp_path, {2: (0.0, 1.0)})
    assert main(["watch", str(target), "--ranges", ranges, *FAST_CLI]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ase-bodyorder: error: ")
    said = "does not exist" if what == "missing" else "empty"
    assert str(target) in lines[0] and said in lines[0]
    assert "flagged" not in captured.out
    with pytest.raises(BodyOrderError, match=said):
        watch(target, {2: (0.0, 1.0)}, **FAST)


def test_report_fails_on_a_missing_or_empty_run(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "nope does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "empty directory" in capsys.readouterr().err


def test_watch_fails_on_a_run_without_frames(tmp_path, capsys):
    """Files, but not one monitored frame within the idle time: nothing was checked."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "simulation.out").write_text("# column   1     --> step\n")
    (run / "simulation.bo_0").write_text(" #EXTRAS(body_order_energies)# Step:  0 \n")
    started = time.monotonic()
    with pytest.raises(BodyOrderError, match="no monitored frames to check"):
        watch(run, {2: (0.0, 1.0)}, **{**FAST, "timeout_s": 600.0})
    assert time.monotonic() - started < 120  # the idle time, not the timeout (wide margin)
    ranges = _ranges_file(tmp_path, {2: (0.0, 1.0)})
    assert main(["watch", str(run), "--ranges", ranges, *FAST_CLI]) == 2
    err = capsys.readouterr().err
    assert "no monitored frames" in err and str(run) in err


# ---------------------------------------------------------------- the logger file


def _logger_file(tmp_path):
    atoms = random_cluster(5, seed=3, radius=4.0, min_distance=3.3)
    atoms.set_chemical_symbols(["Ar"] * 5)
    atoms.calc = BodyOrderCalculator(ARGON, max_order=3, stride=0)
    atoms.set_momenta(np.random.default_rng(0).normal(0, 0.3, size=(5, 3)))
    dyn = VelocityVerlet(atoms, timestep=2.0)
    path = tmp_path / "bo.jsonl"
    dyn.attach(BodyOrderLogger(dyn, atoms, path), interval=2)
    dyn.run(8)
    return path


def test_watch_checks_a_logger_file_and_flags_every_frame_out_of_range(tmp_path, capsys):
    log = _logger_file(tmp_path)
    trace = load_trace(log)
    assert len(trace) == 5
    high = float(np.nanmax(trace.energies_per_atom_eV[:, 1]))
    outside = {2: (high + 1.0, high + 2.0)}  # above every frame's 2-body energy per atom
    flags = watch(log, outside, quantity="energies_per_atom", **FAST)
    assert len(flags) == 5 and flags.frames == 5 and flags.flagged_frames == 5
    assert [f.split(":")[0] for f in flags] == [f"step {s}" for s in (0, 2, 4, 6, 8)]
    inside = {2: (high - 1.0, high)}
    flags = watch(log, inside, quantity="energies_per_atom", **FAST)
    assert len(flags) == 0 and flags.frames == 5
    capsys.readouterr()

    ranges = _ranges_file(tmp_path, outside)
    argv = ["watch", str(log), "--ranges", ranges, "--quantity", "per-atom", *FAST_CLI]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{log}: 5 frame(s) checked (steps 0..8), 5 flagged" in out


def test_watch_without_ranges_on_a_logger_file_asks_for_them(tmp_path, capsys):
    log = _logger_file(tmp_path)
    assert main(["watch", str(log), *FAST_CLI]) == 2
    assert "pass --ranges" in capsys.readouterr().err


def test_logger_file_with_a_cut_off_last_line(tmp_path):
    log = _logger_file(tmp_path)
    text = log.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    log.write_text(text + last[: len(last) // 2])  # a record being written
    trace = read_ase_log(log)
    assert len(trace) == 5 and trace.step[-1] == 8
    log.write_text(text + "not json\n" + last + "\n")  # a complete line that is wrong
    with pytest.raises(BodyOrderError, match=r"bo.jsonl, line 6: not a JSON record"):
        read_ase_log(log)


# ---------------------------------------------------------------- cut-off lines


def test_cut_off_last_line_of_an_extras_file_is_not_read(tmp_path, capsys):
    """i-PI has written step 3's values up to ``3.1`` of ``3.15170000e+03``: that is no
    frame, and neither watch nor report may take it for one."""
    per_atom = [[-13.0, -1.0, 3151.7]] * 3
    run = fake_ipi_run(tmp_path / "run", per_atom)
    full = ipi_line([-13.0, -1.0, 3151.7])
    cut = full[: full.index("3.1") + 3]
    shares = ipi_line([np.nan, -1.0 / 3150.7, 3151.7 / 3150.7])
    appended = (
        ("bo", "body_order_energies", ipi_line([-26.0, -2.0, 6303.4])),
        ("bo_shares", "body_order_shares", shares),
        ("bo_per_atom", "body_order_energies_per_atom", cut),
    )
    for name, key, line in appended:
        with open(run / f"simulation.{name}_0", "a") as handle:
            handle.write(f" #EXTRAS({key})# Step:  {3:10d} \n" + line)
    _, steps, values = read_ipi_extras(run / "simulation.bo_per_atom_0")
    assert steps.tolist() == [0, 1, 2] and values[-1, 2] == pytest.approx(3151.7)

    ranges = {3: (3000.0, 3300.0)}
    flags = watch(run, ranges, quantity="energies_per_atom", **FAST)
    assert list(flags) == [] and flags.frames == 3 and flags.last_step == 2
    trace = load_trace(run)
    assert trace.step.tolist() == [0, 1, 2]
    assert main(["report", str(run), "--plots", str(tmp_path / "plots")]) == 0
    assert "3 monitored frames, steps 0..2" in capsys.readouterr().out

    with open(run / "simulation.bo_per_atom_0", "a") as handle:  # the line completes
        handle.write(full[len(cut) :])
    flags = watch(run, ranges, quantity="energies_per_atom", **FAST)
    assert list(flags) == [] and flags.frames == 4 and flags.last_step == 3
    np.testing.assert_allclose(load_trace(run).energies_per_atom_eV[-1], [-13.0, -1.0, 3151.7])


def test_cut_off_last_line_of_a_property_file_is_not_read(tmp_path):
    path = tmp_path / "simulation.out"
    header = "# column   1     --> step\n# column   2     --> temperature{kelvin}\n"
    path.write_text(header + ipi_line([0, 300.0]) + ipi_line([1, 310.0]) + " 2.0000000e+00  3.1")
    properties = read_ipi_properties(path)
    assert properties["step"].tolist() == [0, 1]
    np.testing.assert_allclose(properties["temperature_K"], [300.0, 310.0])
    path.write_text(header + ipi_line([0, 300.0]) + " 1.0\n" + ipi_line([2, 320.0]))  # fewer values
    assert read_ipi_properties(path)["step"].tolist() == [0, 2]


# ---------------------------------------------------------------- what watch says


def test_watch_counts_frames_not_messages_and_rejects_unknown_orders(tmp_path, capsys):
    per_atom = [[-13.0, -1.0, 0.5], [-13.0, 5.0, 2.5], [-13.0, -1.2, 0.4]]
    run = fake_ipi_run(tmp_path / "run", per_atom)
    ranges = {2: (-2.0, 0.0), 3: (0.0, 1.0)}
    flags = watch(run, ranges, quantity="energies_per_atom", **FAST)
    assert len(flags) == 2 and flags.flagged_frames == 1 and flags.frames == 3
    assert flags.summary() == f"{run}: 3 frame(s) checked (steps 0..2), 1 flagged"
    with pytest.raises(BodyOrderError, match="order 4, but .* holds orders 1..3"):
        watch(run, {4: (0.0, 1.0)}, **FAST)
    bad = tmp_path / "bad.json"
    bad.write_text('{"2": [1.0]}')
    assert main(["watch", str(run), "--ranges", str(bad), *FAST_CLI]) == 2
    assert "is not order: [low, high]" in capsys.readouterr().err


def test_watch_stops_once_a_run_of_md_has_finished(tmp_path, capsys):
    """A run whose run.json says it is over: watch reads its frames and stops, without
    waiting for the idle time; it says how the run ended."""
    from ase_bodyorder.ipi import runner

    run = run_dir_with_runner(tmp_path, {**runner.runner_identity(), "pid": dead_pid()})
    fake_ipi_run(run, [[-13.0, -1.0, 0.5]] * 4)
    started = time.monotonic()
    flags = watch(run, {2: (-2.0, 0.0)}, interval_s=0.05, idle_s=600, quantity="energies_per_atom")
    assert time.monotonic() - started < 120  # not the idle time (a wide margin)
    assert flags.frames == 4 and flags.run.status == "killed"
    ranges = _ranges_file(tmp_path, {2: (-2.0, 0.0)})
    assert main(["watch", str(run), "--ranges", ranges, "--quantity", "per-atom"]) == 0
    out = capsys.readouterr().out
    assert "4 frame(s) checked (steps 0..3), 0 flagged" in out and "run killed" in out


def test_watch_and_report_read_a_manifest_of_the_former_driver_fields(tmp_path, capsys):
    """run.json files written before the expansion was one setting name its parameters
    one by one in ``driver``: read into the same ExpansionSettings."""
    import json

    from ase_bodyorder.ipi import runner
    from ase_bodyorder.monitor.report import run_manifest
    from ase_bodyorder.runs import MDRun
    from ase_bodyorder.settings import ExpansionSettings

    run = run_dir_with_runner(tmp_path, {**runner.runner_identity(), "pid": dead_pid()})
    fake_ipi_run(run, [[-13.0, -1.0, 0.5]] * 4)
    manifest = json.loads((run / "run.json").read_text())
    expansion = manifest["driver"].pop("expansion")
    assert expansion["order"] == 3 and expansion["stride"] == 1
    manifest["driver"].update(
        order=3, stride=1, r_mbe=expansion["r_mbe"], sample_atoms=None, sample_seed=0
    )
    (run / "run.json").write_text(json.dumps(manifest))
    loaded = MDRun.load(run).driver.expansion
    assert loaded == ExpansionSettings(order=3, stride=1, r_mbe=expansion["r_mbe"], seed=0)
    ranges = _ranges_file(tmp_path, {2: (-2.0, 0.0)})
    assert main(["watch", str(run), "--ranges", ranges, "--quantity", "per-atom"]) == 0
    assert "4 frame(s) checked (steps 0..3), 0 flagged" in capsys.readouterr().out
    assert run_manifest(run).driver.expansion == loaded  # what report reads
