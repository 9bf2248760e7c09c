"""Helpers shared by tests in several folders.

Importable as ``helpers`` from any test: pyproject's pytest ``pythonpath`` puts tests/
on ``sys.path``. Test modules never import each other; what two of them share is here
(structures and fake run directories) or in conftest.py (fixtures).
"""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ase_bodyorder.structures import random_cluster  # noqa: F401 (tests import it from here)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: the 64-atom high-density hydrogen cell of the shipped NVT case (rs = 1.6 bohr)
DENSE_CELL = REPO_ROOT / "md_inputs" / "nvt" / "init.extxyz"
#: for subprocesses that run the package: one thread, this checkout first on the path
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
#: the i-PI tests' cells: 16 H atoms, expansion radius (Angstrom; the cells are 3.44 wide)
R_MBE = 1.5
SMALL = {"n_atoms": 16, "r_mbe": R_MBE}


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels of a PNG file, from its IHDR chunk; fails on non-PNG."""
    header = Path(path).read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR", path
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


# ---------------------------------------------------------------- i-PI-like runs


def ipi_line(values) -> str:
    """A line of numbers as i-PI writes them (``%16.8e``)."""
    return " ".join(f"{v:16.8e}" for v in values) + "\n"


def fake_ipi_run(directory: Path, per_atom) -> Path:
    """An i-PI-like run directory: properties, and the extras of the driver
    (energies per cell of 2 atoms, per atom, shares)."""
    directory.mkdir(exist_ok=True)
    (directory / "input.xml").write_text(
        "<simulation><output prefix='simulation'><properties filename='out'>"
        " [ step, time{picosecond}, temperature{kelvin} ] </properties></output></simulation>"
    )
    steps = range(len(per_atom))
    (directory / "simulation.out").write_text(
        "".join(ipi_line([s, s * 1e-3, 300.0]) for s in steps)
    )
    per_atom = np.asarray(per_atom, dtype=float)
    shares = per_atom / per_atom[:, 1:].sum(axis=1, keepdims=True)
    shares[:, 0] = np.nan
    for name, key, rows in (
        ("bo", "body_order_energies", 2 * per_atom),
        ("bo_per_atom", "body_order_energies_per_atom", per_atom),
        ("bo_shares", "body_order_shares", shares),
    ):
        text = "".join(
            f" #EXTRAS({key})# Step:  {s:10d} \n" + ipi_line(row)
            for s, row in zip(steps, rows, strict=True)
        )
        (directory / f"simulation.{name}_0").write_text(text)
    return directory


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait(timeout=10)
    return process.pid


def run_dir_with_runner(directory: Path, runner_record: dict | None) -> Path:
    """A run directory whose run.json says "running", with this runner record, and
    eight complete property lines (steps 0..7) followed by one being written."""
    import xml.etree.ElementTree as ET

    from ase_bodyorder.ipi import runner
    from ase_bodyorder.ipi.cases import CASES, write_case

    case = replace(CASES["nvt"], name="h16", **SMALL)
    case_dir = write_case(case, directory / "case")
    root = ET.parse(case_dir / "input.xml").getroot()
    driver = runner.DriverSettings("h-morse", 3, 1, R_MBE, "init.extxyz")
    run_dir = directory / "run"
    run_dir.mkdir()
    run = runner._layout(run_dir, root, "h16", driver, 0, 100, 1, None)
    replace(run, runner=runner_record).write()
    (run_dir / "simulation.out").write_text(
        "# column   1     --> step : The current simulation time step.\n"
        + "".join(f"{s} {s * 0.001} -1.0 300.0 0.1 -1.1 0.0\n" for s in range(8))
        + "8 0.00"  # the step being written: not a complete line
    )
    return run_dir


def still(directory: Path) -> Path:
    """Replace the i-PI case's motion by i-PI's ``dummy`` motion (atoms never move)."""
    path = directory / "input.xml"
    text = path.read_text()
    start, end = text.index("<motion"), text.index("</motion>") + len("</motion>")
    path.write_text(text[:start] + '<motion mode="dummy"> </motion>' + text[end:])
    return directory


def data_lines(path: Path) -> int:
    """Complete data lines (not comments) of an i-PI output file, 0 if there is none."""
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line and not line.startswith("#"))


def python_path_env() -> dict:
    """The environment for a subprocess that must import exactly what this one does."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------- a plug-in model

#: the test plug-in's model: a Morse H2 pair potential (so E^(n) = 0 for n >= 3)
PLUGIN_NAME = "test-plugin-morse"
PLUGIN_MODULE = '''
"""A plug-in model package (installed by the test suite)."""


def morse():
    """Morse H2 pair potential, 5 A cutoff (a test plug-in)"""
    from ase_bodyorder.models import Morse

    return Morse(D_e=4.746, a=1.942, r_e=0.7414, cutoff=5.0)


def needs_missing():
    """A plug-in whose package is not installed"""
    raise AssertionError("never called: its requirement is missing")


needs_missing.requires = ("a_package_that_is_not_installed",)
needs_missing.extra = "not-installed"


def not_a_model():
    return 42
'''


def install_plugin(directory: Path) -> Path:
    """Install a plug-in package into ``directory`` (put it on ``sys.path``, or on
    ``PYTHONPATH`` for subprocesses): entry points of group ``ase_bodyorder.models``
    named :data:`PLUGIN_NAME` (a pair potential), ``test-plugin-missing`` (a missing
    requirement) and ``test-plugin-not-a-model``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bodyorder_test_plugin.py").write_text(PLUGIN_MODULE)
    info = directory / "bodyorder_test_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: bodyorder-test-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[ase_bodyorder.models]\n"
        f"{PLUGIN_NAME} = bodyorder_test_plugin:morse\n"
        "test-plugin-missing = bodyorder_test_plugin:needs_missing\n"
        "test-plugin-not-a-model = bodyorder_test_plugin:not_a_model\n"
    )
    return directory
