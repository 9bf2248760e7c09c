"""The MD door with a user's model file and with a plug-in (one model spec everywhere)."""

import shutil
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import ase.io
import numpy as np
import pytest
from helpers import PLUGIN_NAME, R_MBE, SMALL, install_plugin

pytest.importorskip("ipi")

import ase_bodyorder  # noqa: E402
from ase_bodyorder import decompose, resolve_model  # noqa: E402
from ase_bodyorder.cli import main  # noqa: E402
from ase_bodyorder.ipi.cases import CASES, write_case  # noqa: E402
from ase_bodyorder.ipi.runner import MDRun  # noqa: E402

SHIPPED = Path(ase_bodyorder.__file__).parent / "data" / "models"
pytestmark = pytest.mark.slow


def _check_extras(run_dir: Path, spec: str, steps: list[int]) -> None:
    run = MDRun.load(run_dir)
    assert run.status == "completed"
    _, written, energies = run.read_extras("bo")
    np.testing.assert_array_equal(written, steps)
    frames = ase.io.read(run.positions[0], ":")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = resolve_model(spec)
    for k, atoms in enumerate(frames):
        direct = decompose(atoms, model, max_order=2, r_mbe=R_MBE)
        np.testing.assert_allclose(energies[k], direct.energies_eV, rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_md_takes_a_relative_model_file_and_a_plugin(tmp_path, monkeypatch):
    pytest.importorskip("metatomic.torch")
    case = write_case(replace(CASES["nvt"], name="h16", steps=2, stride=1, **SMALL), tmp_path / "c")
    monkeypatch.chdir(tmp_path)
    shutil.copy(SHIPPED / "soap-bpnn-hbulk-high" / "model.pt", tmp_path / "mine.pt")
    argv = ["md", str(case), "--order", "2", "--r-mbe", str(R_MBE), "--quiet", "--timeout", "300"]
    assert main([*argv, "--model", "mine.pt", "--output-dir", "file-run"]) == 0
    # the drivers run in the run directory: the manifest records the file's absolute path
    assert MDRun.load(tmp_path / "file-run").driver.model == str(tmp_path / "mine.pt")
    _check_extras(tmp_path / "file-run", "mine.pt", [0, 1, 2])

    site = install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", ":".join([str(site), *sys.path]))
    assert main([*argv, "--model", PLUGIN_NAME, "--output-dir", "plugin-run"]) == 0
    assert MDRun.load(tmp_path / "plugin-run").driver.model == PLUGIN_NAME
    _check_extras(tmp_path / "plugin-run", PLUGIN_NAME, [0, 1, 2])
    sys.modules.pop("bodyorder_test_plugin", None)
