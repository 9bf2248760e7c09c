"""A monitored i-PI run with a universal MLIP named on the command line (runs in
.venv-universal: make test)."""

import re
import warnings
from dataclasses import replace

import ase.io
import numpy as np
import pytest
from helpers import SMALL

pytest.importorskip(
    "sevenn",
    reason="sevenn lives in .venv-universal (make universal-env); make test runs these there",
)
pytest.importorskip("ipi")

from ase_bodyorder import decompose, resolve_model  # noqa: E402
from ase_bodyorder.cli import main  # noqa: E402
from ase_bodyorder.ipi.cases import CASES, write_case  # noqa: E402
from ase_bodyorder.ipi.runner import MDRun  # noqa: E402

pytestmark = pytest.mark.slow


def test_md_with_sevennet_writes_extras_equal_to_a_direct_decompose(tmp_path, capsys):
    case = write_case(replace(CASES["nvt"], name="h16-7net", **SMALL), tmp_path / "case")
    run_dir = tmp_path / "run"
    argv = ["md", str(case), "--model", "7net-0", "--steps", "20", "--order", "3"]
    argv += ["--stride", "5", "--r-mbe", str(SMALL["r_mbe"]), "--quiet"]
    with warnings.catch_warnings():  # the preflight loads sevenn (torch.jit at import)
        warnings.simplefilter("ignore", DeprecationWarning)
        status = main([*argv, "--output-dir", str(run_dir), "--timeout", "900"])
    assert status == 0, capsys.readouterr().err
    run = MDRun.load(run_dir)
    assert run.status == "completed" and run.last_step == 20
    assert run.driver.model == "7net-0"
    _, steps, energies = run.read_extras("bo")
    np.testing.assert_array_equal(steps, [0, 5, 10, 15, 20])
    frames = ase.io.read(run.positions[0], ":")
    written = [int(re.search(r"Step:\s*(\d+)", f.info["ipi_comment"])[1]) for f in frames]
    assert written == [0, 5, 10, 15, 20]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = resolve_model("7net-0")
    for k, atoms in enumerate(frames):
        direct = decompose(atoms, model, max_order=3, r_mbe=SMALL["r_mbe"])
        # float32 model, positions round-trip through extxyz (1e-8 A): within 1e-4 eV
        np.testing.assert_allclose(energies[k], direct.energies_eV, rtol=0, atol=1e-4)
        assert abs(direct.energies_eV[2]) > 1e-3  # SevenNet has a 3-body part here
