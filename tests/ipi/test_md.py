"""i-PI: the driver, the bounded client and the runner against a real i-PI server.

Small systems (16 H atoms, analytic models, a few steps); every subprocess and every
wait is bounded.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.stress import voigt_6_to_full_3x3_stress

pytest.importorskip("ipi")

from helpers import R_MBE, SMALL, SUBPROCESS_ENV, data_lines, still  # noqa: E402
from ipi.utils.units import unit_to_internal, unit_to_user  # noqa: E402

from ase_bodyorder import BodyOrderError, SpeciesError, StructureError, decompose, load_model  # noqa: E402
from ase_bodyorder.cli import main  # noqa: E402
from ase_bodyorder.ipi import driver_plugin_path, restart_md, run_md  # noqa: E402
from ase_bodyorder.ipi.cases import CASES, SOCKET_ADDRESS, write_case  # noqa: E402
from ase_bodyorder.ipi.client import ServerGoneError, connect, serve  # noqa: E402
from ase_bodyorder.ipi.driver import BodyOrderDriver  # noqa: E402
from ase_bodyorder.ipi.extras import EXTRAS_KEYS, STATUS_COLUMNS  # noqa: E402
from ase_bodyorder.ipi.runner import MDRun, MDRunError  # noqa: E402
from ase_bodyorder.monitor import read_ipi_extras, read_run  # noqa: E402

BIN = Path(sys.executable).parent
#: i-PI's atomic unit of force per eV/Angstrom, the conversion of i-PI's ASEDriver
FORCE_UNIT = unit_to_internal("force", "ev/ang", 1.0)
ENV = SUBPROCESS_ENV


def _status(run: MDRun, bead: int = 0) -> dict:
    keys, steps, values = run.read_extras("bo_status", bead)
    assert tuple(keys) == STATUS_COLUMNS
    return {"steps": steps, **dict(zip(STATUS_COLUMNS, values.T, strict=True))}


@pytest.fixture(scope="module")
def h16_case(tmp_path_factory):
    """High-density hydrogen, 16 atoms, classical NVT, 4 steps, expansion every 2."""
    case = replace(CASES["nvt"], name="h16", steps=4, stride=2, **SMALL)
    return write_case(case, tmp_path_factory.mktemp("cases") / "h16")


@pytest.fixture(scope="module")
def still_h16_case(tmp_path_factory):
    """The same cell with i-PI's ``dummy`` motion (forces every step, atoms never move),
    for runs that are stopped from outside.

    The analytic pair model collapses the dense crystal within about 7 fs (35 steps of
    0.2 fs, 700 of 0.01 fs): a loaded machine that delays the test's signal would let the
    driver stop on overlapping atoms first. A structure that does not move stays healthy
    for as long as the test needs."""
    directory = write_case(
        replace(CASES["nvt"], name="h16-still", **SMALL),
        tmp_path_factory.mktemp("cases") / "h16-still",
    )
    return still(directory)


@pytest.fixture(scope="module")
def h16_run(h16_case, tmp_path_factory):
    """One real i-PI run with the analytic model that has a 3-body term."""
    out = tmp_path_factory.mktemp("runs") / "h16"
    return run_md(h16_case, model="h-morse-atm", output_dir=out, timeout_s=90, progress=False)


@pytest.mark.slow
def test_run_writes_outputs_and_extras_match_direct_decomposition(h16_run):
    run = h16_run
    assert run.status == "completed" and (run.first_step, run.last_step) == (0, 4)
    manifest = MDRun.load(run.run_dir)
    assert manifest.extras == run.extras and manifest.driver == run.driver
    _, steps, energies = run.read_extras("bo")
    _, _, per_atom = run.read_extras("bo_per_atom")
    _, _, shares = run.read_extras("bo_shares")
    status = _status(run)
    np.testing.assert_array_equal(steps, [0, 2, 4])
    np.testing.assert_array_equal(status["body_order_call"], [0, 2, 4])
    np.testing.assert_array_equal(status["body_order_computed"], [1, 1, 1])
    np.testing.assert_array_equal(status["body_order_order"], [3, 3, 3])
    frames = ase.io.read(run.positions[0], ":")
    steps = [int(re.search(r"Step:\s*(\d+)", f.info["ipi_comment"])[1]) for f in frames]
    assert steps == [0, 2, 4]
    model = load_model("h-morse-atm")
    for k, atoms in enumerate(frames):
        direct = decompose(atoms, model, max_order=3, r_mbe=R_MBE)
        # extras are eV as the driver computed them; positions round-trip through extxyz
        np.testing.assert_allclose(energies[k], direct.energies_eV, rtol=0, atol=1e-6)
        np.testing.assert_allclose(per_atom[k], direct.energies_eV / 16, atol=1e-7)
        np.testing.assert_allclose(shares[k], direct.shares, atol=1e-8, equal_nan=True)
        assert abs(status["body_order_residual"][k] - direct.residual_eV) < 1e-6
        assert abs(direct.energies_eV[2]) > 1e-3  # the 3-body term is really there
    trace = read_run(run.run_dir)  # the monitor reads the run directory as it is
    np.testing.assert_array_equal(trace.step, [0, 2, 4])
    np.testing.assert_allclose(trace.energies_eV, energies)
    properties = np.loadtxt(run.properties)
    columns = list(run.property_columns)
    potential = properties[0, columns.index("potential")]  # i-PI's eV: relative 1e-7
    np.testing.assert_allclose(potential, direct_energy(frames[0], model), rtol=1e-6)


def direct_energy(atoms, model) -> float:
    return model.system(atoms, forces=False).energy


@pytest.mark.slow
def test_restart_continues_the_step_counter(h16_run, tmp_path):
    run = restart_md(h16_run.run_dir, steps=2, output_dir=tmp_path / "again", progress=False)
    assert run.status == "completed" and (run.first_step, run.last_step) == (4, 6)
    assert run.restarted_from.endswith("RESTART")
    steps = np.loadtxt(run.properties, ndmin=2)[:, 0]
    np.testing.assert_array_equal(steps, [5, 6])
    status = _status(run)
    np.testing.assert_array_equal(status["steps"], [6])
    np.testing.assert_array_equal(status["body_order_call"], [6])
    np.testing.assert_array_equal(status["body_order_computed"], [1])


def _nve_deviation(tmp_path, timestep_fs: float) -> tuple[float, float]:
    """Max |E_cons(t) - E_cons(0)| and the swing of the potential energy over 3 fs
    (eV/atom), 16 atoms, pair model."""
    steps = round(3.0 / timestep_fs)
    case = replace(CASES["nve"], name="h16-nve", steps=steps, timestep_fs=timestep_fs, **SMALL)
    run = run_md(
        write_case(case, tmp_path / f"case-{timestep_fs}"),
        model="h-morse",
        stride=steps,
        output_dir=tmp_path / f"run-{timestep_fs}",
        timeout_s=90,
        progress=False,
    )
    data = np.loadtxt(run.properties)
    columns = list(run.property_columns)
    conserved = data[:, columns.index("conserved")]
    potential = data[:, columns.index("potential")]
    assert len(conserved) == steps + 1
    return np.abs(conserved - conserved[0]).max() / 16, np.ptp(potential) / 16


@pytest.mark.slow
def test_nve_conserves_energy_to_second_order_in_the_timestep(tmp_path):
    """Velocity Verlet through the socket: the deviation of the conserved quantity stays
    below 5e-4 eV/atom at dt = 0.1 fs (the crystal heats from 1000 to 3600 K, the potential
    energy swings by 0.35 eV/atom), and falls by about 4 when dt is halved (measured:
    1.6e-4 and 4.0e-5 eV/atom), as it does for forces that are the energy's gradient."""
    coarse, swing = _nve_deviation(tmp_path, 0.1)
    fine, _ = _nve_deviation(tmp_path, 0.05)
    assert coarse < 5e-4 and coarse < 2e-3 * swing, (coarse, swing)
    assert 3.0 < coarse / fine < 5.0, (coarse, fine)


@pytest.mark.slow
def test_path_integrals_four_beads_log_extras_per_bead(tmp_path):
    case = replace(CASES["pimd"], name="h16-pimd", steps=2, stride=1, nbeads=4, **SMALL)
    run = run_md(
        write_case(case, tmp_path / "case"),
        model="h-morse",
        output_dir=tmp_path / "run",
        timeout_s=90,
        progress=False,
    )
    assert run.status == "completed" and run.nbeads == 4
    model = load_model("h-morse")
    bead_energies = []
    for bead in range(4):
        status = _status(run, bead)
        np.testing.assert_array_equal(status["body_order_computed"], [1, 1, 1])
        np.testing.assert_array_equal(status["body_order_call"], [0, 1, 2])
        _, _, energies = run.read_extras("bo", bead)
        last = ase.io.read(run.positions[bead], -1)
        direct = decompose(last, model, max_order=3, r_mbe=R_MBE)
        np.testing.assert_allclose(energies[-1], direct.energies_eV, atol=1e-6)
        bead_energies.append(energies[-1][1])
    assert len(set(np.round(bead_energies, 6))) == 4  # four different structures

    # statistics per bead, averaged over the beads, and of the centroid
    from ase_bodyorder.monitor.pimd import centroid_statistics, pimd_statistics, pimd_text

    stats = pimd_statistics(run.run_dir, 4)
    assert stats["steps"] == [0, 1, 2]
    per_bead = [[s.mean for s in bead] for bead in stats["beads"]]
    np.testing.assert_allclose(
        [s.mean for s in stats["bead_average"]], np.mean(per_bead, axis=0), atol=1e-12
    )
    centroids = ase.io.read(run.run_dir / "simulation.xc.extxyz", ":")
    for frame in centroids:  # i-PI writes the centroid beside zero positions
        frame.positions = frame.arrays["x_centroid"]
    beads_last = [ase.io.read(p, -1).positions for p in run.positions]
    np.testing.assert_allclose(centroids[-1].positions, np.mean(beads_last, axis=0), atol=1e-5)
    centroid = centroid_statistics(run.run_dir, stats["steps"])
    direct = [decompose(a, model, max_order=3, r_mbe=R_MBE) for a in centroids]
    np.testing.assert_allclose(
        [s.mean for s in centroid],
        np.mean([d.energies_per_atom_mean_eV for d in direct], axis=0),
        atol=1e-6,
    )
    text = pimd_text(run.run_dir, 4, centroid=True)
    assert "bead average" in text and "centroid" in text and "bead 3" in text
    # after an equilibration period: only steps >= 1, on every bead and the centroid
    later = pimd_statistics(run.run_dir, 4, first_step=1)
    assert later["steps"] == [1, 2]
    np.testing.assert_allclose(
        [s.mean for s in later["beads"][0]],
        np.mean(read_run(run.run_dir, bead=0).energies_per_atom_eV[1:], axis=0),
        atol=1e-12,
    )
    assert "2 frames" in pimd_text(run.run_dir, 4, first_step=1)
    with pytest.raises(BodyOrderError, match="no step >= 3"):
        pimd_statistics(run.run_dir, 4, first_step=3)
    assert main(["report", str(run.run_dir), "--from-step", "1", "--plots", str(tmp_path)]) == 0


def test_driver_expands_all_structures_of_a_batched_step(h16_case):
    driver = BodyOrderDriver(
        str(h16_case / "init.extxyz"), model="h-morse", order=2, stride=2, r_mbe=R_MBE
    )
    atoms = ase.io.read(h16_case / "init.extxyz")
    # bohr as i-PI reads an extxyz file: its "ase" units (ASE's constants)
    cell = unit_to_internal("length", "ase", atoms.cell.array.T)
    pos = unit_to_internal("length", "ase", atoms.positions)
    for call in range(3):
        results = driver.compute([cell, cell], [pos, pos + 0.01])
        extras = [json.loads(r[3]) for r in results]
        assert all(set(e) == set(EXTRAS_KEYS) for e in extras)
        assert [e["body_order_call"] for e in extras] == [call, call]
        computed = call % 2 == 0
        assert [e["body_order_computed"] for e in extras] == [float(computed)] * 2
        assert np.isfinite(extras[0]["body_order_energies"]).all() == computed
        assert np.isnan(extras[0]["body_order_shares"][0])
    pot, force, vir, _ = driver.compute_structure(cell, pos)  # Hartree, Hartree/bohr
    np.testing.assert_allclose(unit_to_user("length", "ase", pos), atoms.positions, atol=1e-12)
    system = load_model("h-morse").system(atoms, stress=True)
    hartree = unit_to_internal("energy", "electronvolt", 1.0)  # Hartree per eV
    bohr = unit_to_internal("length", "ase", 1.0)  # bohr per Angstrom
    assert pot == pytest.approx(system.energy * hartree, rel=1e-10)
    # i-PI's force unit (eV/Angstrom) is 1e-7 off its energy per length: i-PI's value
    np.testing.assert_allclose(force, system.forces * FORCE_UNIT, rtol=1e-10, atol=1e-14)
    assert FORCE_UNIT == pytest.approx(hartree / bohr, rel=2e-7)
    # i-PI's virial: minus the stress times the volume (Hartree)
    virial = -voigt_6_to_full_3x3_stress(system.stress) * atoms.get_volume() * hartree
    np.testing.assert_allclose(vir, virial, rtol=1e-10, atol=1e-14)


def test_driver_of_a_cluster_returns_a_zero_virial(tmp_path):
    """No stress for a cluster: the virial is zero and the forces are the model's."""
    from ase_bodyorder.structures import random_cluster

    atoms = random_cluster(6, seed=3)
    ase.io.write(tmp_path / "h6.extxyz", atoms)
    driver = BodyOrderDriver(str(tmp_path / "h6.extxyz"), model="h-morse", order=2)
    pos = unit_to_internal("length", "ase", atoms.positions)
    pot, force, vir, extras = driver.compute(np.eye(3) * 40.0, pos)
    hartree = unit_to_internal("energy", "electronvolt", 1.0)  # Hartree per eV
    system = load_model("h-morse").system(atoms)
    assert pot == pytest.approx(system.energy * hartree, rel=1e-10)
    np.testing.assert_allclose(force, system.forces * FORCE_UNIT, rtol=1e-10)
    np.testing.assert_array_equal(vir, np.zeros((3, 3)))
    assert json.loads(extras)["body_order_computed"] == 1.0


# ---------------------------------------------------------------- failures


def _ipi_server(case_dir: Path, steps: int):
    """Start i-PI on a copy of a case with its own socket; wait for the socket."""
    address = f"bo-test-{uuid.uuid4().hex[:10]}"
    text = (case_dir / "input.xml").read_text()
    text = text.replace(f"<address> {SOCKET_ADDRESS} </address>", f"<address> {address} </address>")
    text = re.sub(
        r"<total_steps>\s*\d+\s*</total_steps>", f"<total_steps> {steps} </total_steps>", text
    )
    (case_dir / "input.xml").write_text(text)
    log = open(case_dir / "ipi.log", "w")  # noqa: SIM115
    ipi = subprocess.Popen(
        [str(BIN / "i-pi"), "input.xml"],
        cwd=case_dir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=ENV,
        start_new_session=True,
    )
    path = Path(f"/tmp/ipi_{address}")
    deadline = time.monotonic() + 30
    while not path.exists():
        assert ipi.poll() is None and time.monotonic() < deadline, "i-PI did not start"
        time.sleep(0.1)
    return ipi, address, log


def _kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize(
    "program",
    [["ase_bodyorder.cli", "driver"], ["ase_bodyorder.ipi.client"]],
    ids=["cli", "client"],
)
def test_driver_exits_soon_after_the_server_is_killed(h16_case, tmp_path, program):
    # atoms that do not move: see still_h16_case
    case_dir = still(write_case(replace(CASES["nvt"], name="h16", stride=1, **SMALL), tmp_path))
    ipi, address, log = _ipi_server(case_dir, steps=10_000_000)
    driver = None
    try:
        command = [sys.executable, "-m", *program, "--unix"]
        command += ["--address", address, "--model", "h-morse", "--template", "init.extxyz"]
        # silence timeout far above the bound below: the exit must come from the EOF
        command += ["--r-mbe", str(R_MBE), "--timeout", "600"]
        driver = subprocess.Popen(
            command,
            cwd=case_dir,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while data_lines(case_dir / "simulation.out") < 3:
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        os.killpg(ipi.pid, signal.SIGKILL)
        killed = time.monotonic()
        _, err = driver.communicate(timeout=120)
        assert time.monotonic() - killed < 60  # seconds, not the 600 s silence timeout
        assert driver.returncode == 2
        lines = err.strip().splitlines()
        assert "i-PI at /tmp/ipi_" in lines[-1] and "error" in lines[-1]
        assert "Traceback" not in err
    finally:
        _kill_group(ipi)
        if driver is not None:
            _kill_group(driver)
        log.close()
        Path(f"/tmp/ipi_{address}").unlink(missing_ok=True)


class _SilentServer:
    """A UNIX socket server that accepts, optionally asks for STATUS, then does
    ``then`` ("wait": nothing; "close": closes the connection)."""

    def __init__(self, path: Path, then: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.then = then
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conn, _ = self.sock.accept()
        conn.sendall(b"STATUS      ")
        conn.recv(12)
        if self.then == "close":
            conn.close()
        self.done.wait(timeout=30)
        conn.close()

    def stop(self):
        self.done.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.mark.parametrize(
    "then, message", [("wait", "no message from i-PI"), ("close", "closed the connection")]
)
def test_client_gives_up_on_a_silent_or_closed_server(tmp_path, then, message):
    server = _SilentServer(tmp_path / "ipi_s", then)
    try:
        conn = connect("s", unix=True, sockets_prefix=str(tmp_path / "ipi_"), timeout_s=1.0)
        start = time.monotonic()
        with pytest.raises(ServerGoneError, match=message):
            serve(lambda cell, pos: None, conn)
        assert time.monotonic() - start < 20  # seconds; the server closes only after 30 s
        conn.sock.close()
    finally:
        server.stop()


def _children(pattern: str) -> list[int]:
    """Pids of this process's children whose command line contains ``pattern``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and pattern in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_runner_reports_a_killed_driver_and_stops_ipi(still_h16_case, tmp_path):
    out = tmp_path / "run"
    killed = []

    def kill_driver():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = _children("ase_bodyorder.ipi.client")
            if pids and data_lines(out / "simulation.out") >= 2:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_driver, daemon=True)
    killer.start()
    with pytest.raises(MDRunError, match=r"driver 0 \(pid \d+\) exited with status -9"):
        run_md(
            still_h16_case,
            model="h-morse",
            steps=10_000_000,
            output_dir=out,
            timeout_s=90,
            progress=False,
        )
    killer.join(timeout=5)
    assert killed
    assert _children("i-pi") == [] and _children("ase_bodyorder.ipi.client") == []
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_stops_both_and_keeps_outputs(still_h16_case, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "ase_bodyorder.cli", "md", str(still_h16_case), "--quiet"]
    # far more steps than can run before the signal, however late it comes
    command += ["--model", "h-morse", "--steps", "10000000", "--output-dir", str(out)]
    md = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
        # a suite started in the background of a non-interactive shell (as CI may be)
        # ignores SIGINT, and an ignored signal stays ignored across exec: give the
        # child the default disposition, as a terminal's Ctrl-C would find it
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while data_lines(out / "simulation.out") < 2:
            assert md.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        md.send_signal(signal.SIGINT)
        _, err = md.communicate(timeout=30)
    finally:
        _kill_group(md)
    assert md.returncode == 130 and "interrupted" in err, err
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    # the outputs are kept and agree: the manifest's last step is the last property line,
    # and the checkpoint continues from it
    run = MDRun.load(out)
    steps = np.loadtxt(out / "simulation.out", ndmin=2)[:, 0]
    assert run.status == "interrupted" and run.last_step == steps[-1] >= 1
    restart = re.search(r"<step>\s*(\d+)\s*</step>", (out / "RESTART").read_text())
    assert int(restart[1]) == run.last_step


@pytest.mark.slow
def test_stock_ipi_client_loads_the_driver_file(tmp_path):
    case_dir = write_case(replace(CASES["nvt"], name="h16", stride=1, **SMALL), tmp_path)
    ipi, address, log = _ipi_server(case_dir, steps=2)
    options = f"template=init.extxyz,model=h-morse,order=2,stride=1,r_mbe={R_MBE}"
    command = [str(BIN / "i-pi-py_driver"), "-u", "-a", address, "-m", "custom"]
    command += ["-P", str(driver_plugin_path()), "-o", options]
    driver = subprocess.Popen(
        command, cwd=case_dir, stdout=subprocess.DEVNULL, env=ENV, start_new_session=True
    )
    try:
        assert driver.wait(timeout=60) == 0 and ipi.wait(timeout=30) == 0
    finally:
        _kill_group(ipi)
        _kill_group(driver)
        log.close()
    _, _, status = read_ipi_extras(case_dir / "simulation.bo_status_0")
    np.testing.assert_array_equal(status[:, 2], [1, 1, 1])  # computed at every step


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"model": "nope"}, BodyOrderError, "unknown model 'nope'"),
        ({"stride": 0}, BodyOrderError, "stride must be >= 1"),
        ({"stride": -3}, BodyOrderError, "stride must be >= 1"),
        ({"order": 0}, BodyOrderError, "order must be >= 1"),
        ({"template": "missing.xyz"}, BodyOrderError, "'missing.xyz' not found"),
        ({"r_mbe": None}, BodyOrderError, "give r_mbe"),
        ({"r_mbe": 4.0}, StructureError, "width"),
    ],
)
def test_driver_rejects_bad_parameters(h16_case, change, error, message):
    parameters = {"template": str(h16_case / "init.extxyz"), "model": "h-morse"}
    parameters.update(stride=1, r_mbe=R_MBE)
    with pytest.raises(error, match=message):
        BodyOrderDriver(**{**parameters, **change})


def test_driver_rejects_unknown_species(tmp_path):
    atoms = ase.io.read(write_case(replace(CASES["nvt"], **SMALL), tmp_path) / "init.extxyz")
    atoms.symbols[3] = "He"
    ase.io.write(tmp_path / "he.extxyz", atoms)
    with pytest.raises(SpeciesError, match="does not know element.*He"):
        BodyOrderDriver(str(tmp_path / "he.extxyz"), model="h-morse", r_mbe=R_MBE)


def test_runner_checks_settings_before_starting_ipi(h16_case, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(BodyOrderError, match="unknown model"):
        run_md(h16_case, model="nope", output_dir=out, progress=False)
    assert not out.exists() and _children("i-pi") == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["driver", "--address", "x", "--unix", "--stride", "0"], "stride must be >= 1"),
        (["driver", "--address", "x", "--unix", "--model", "nope"], "unknown model 'nope'"),
        (["md", "CASE", "--model", "nope"], "unknown model 'nope'"),
        (["md", "CASE", "--stride", "0"], "stride must be >= 1"),
    ],
)
def test_cli_errors_are_one_line(h16_case, argv, message, capsys):
    argv = [str(h16_case) if a == "CASE" else a for a in argv]
    if argv[0] == "driver":
        argv += ["--template", str(h16_case / "init.extxyz"), "--r-mbe", str(R_MBE)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--address", "x", "--unix", "--stride", "0"], "stride must be >= 1"),
        (["--address", "x", "--unix", "--model", "nope"], "unknown model 'nope'"),
        (["--address", "x", "--unix", "--threads", "0"], "threads must be"),
    ],
)
def test_client_errors_are_one_line(h16_case, argv, message, capsys):
    from ase_bodyorder.ipi import client

    argv += ["--template", str(h16_case / "init.extxyz"), "--r-mbe", str(R_MBE)]
    assert client.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert err.startswith("ase-bodyorder: error: ")


def test_runner_starts_drivers_as_the_client_module():
    """The driver's command line carries the whole expansion, which the client reads
    back as the same settings (the options of ``md`` replacing its fields where given)."""
    import argparse

    from ase_bodyorder.ipi.client import add_arguments, expansion_from_arguments
    from ase_bodyorder.runs import DriverSettings
    from ase_bodyorder.settings import ExpansionSettings

    expansion = ExpansionSettings(order=3, stride=2, r_mbe=2.0, sample_atoms=4, seed=7)
    expansion = expansion.replace(screening=False, max_subclusters=1000)
    settings = DriverSettings(model="h-morse", expansion=expansion, template="t.xyz")
    command = settings.command("addr", "/tmp/ipi_")
    assert command[1:3] == ["-m", "ase_bodyorder.ipi.client"] and "--unix" in command
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int)
    add_arguments(parser)
    args = parser.parse_args(command[3:])
    assert expansion_from_arguments(args) == expansion
    assert (args.model, args.template, args.first_call) == ("h-morse", "t.xyz", 0)
    args = parser.parse_args([*command[3:], "--stride", "5", "--seed", "1"])
    assert expansion_from_arguments(args) == expansion.replace(stride=5, seed=1)
    plain = parser.parse_args(["--address", "a", "--template", "t.xyz"])
    assert expansion_from_arguments(plain) == ExpansionSettings(order=3, stride=1)


def test_driver_settings_read_the_former_fields():
    """Manifests before the expansion was one setting named its parameters one by one
    (``md --restart``, ``report`` and ``watch`` read them); by keyword or position too."""
    from ase_bodyorder.runs import DriverSettings
    from ase_bodyorder.settings import ExpansionSettings

    former = {
        "model": "mace-hcells",
        "order": 3,
        "stride": 10,
        "r_mbe": 2.0,
        "template": "init.extxyz",
        "threads": 1,
        "first_call": 0,
        "timeout_s": 3600.0,
        "sample_atoms": 8,
        "sample_seed": 0,
    }  # the driver of a scan run's run.json of that version
    settings = DriverSettings.from_dict(former)
    expected = ExpansionSettings(order=3, stride=10, r_mbe=2.0, sample_atoms=8, seed=0)
    assert settings.expansion == expected
    assert (settings.model, settings.template, settings.timeout_s) == (
        "mace-hcells",
        "init.extxyz",
        3600.0,
    )
    assert DriverSettings.from_dict(settings.to_dict()) == settings
    assert settings.to_dict()["expansion"] == expected.to_dict()
    assert DriverSettings("m", 3, 1, None, "t.xyz").expansion == ExpansionSettings(order=3)
    with pytest.raises(BodyOrderError, match="expansion twice"):
        DriverSettings.from_dict({**former, "expansion": expected.to_dict()})
    with pytest.raises(BodyOrderError, match="stride must be a non-negative integer"):
        DriverSettings.from_dict({**former, "stride": -1})
