"""The command line: tables, JSON, extxyz output, clear errors."""

import json

import ase.io
import numpy as np
import pytest

from ase_bodyorder import decompose, load_model, read_body_order_results
from ase_bodyorder.cli import example_path, main


@pytest.mark.slow
def test_demo_runs_the_main_job(tmp_path, capsys):
    pytest.importorskip("ipi")
    run_dir = tmp_path / "run"
    argv = [
        "demo",
        "--model",
        "h-morse-atm",
        "--md-model",
        "h-morse-atm",
        "--steps",
        "4",
        "--stride",
        "2",
    ]
    assert main([*argv, "--output-dir", str(run_dir), "--timeout", "300"]) == 0
    out = capsys.readouterr().out
    assert "255 sub-clusters" in out  # the full expansion of the shipped H8 cluster
    assert "monitored frames" in out and "residual" in out  # the run's report
    assert (run_dir / "body_order_vs_time.png").stat().st_size > 1000


def test_decompose_json_matches_library(tmp_path, capsys):
    assert main(["decompose", str(example_path()), "--order", "3", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    atoms = ase.io.read(example_path())
    expected = decompose(atoms, load_model(), max_order=3)
    np.testing.assert_allclose(record["energies_eV"], expected.energies_eV, atol=1e-12)


def test_decompose_writes_extxyz(tmp_path, capsys):
    out = tmp_path / "out.extxyz"
    assert (
        main(["decompose", str(example_path()), "--order", "2", "--forces", "--output", str(out)])
        == 0
    )
    back = read_body_order_results(ase.io.read(out))
    assert back["body_order_forces"].shape == (2, 8, 3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["decompose", "missing.xyz"], "missing.xyz"),
        (["decompose", "EXAMPLE", "--order", "9"], "max_order=9 is larger"),
        (["decompose", "EXAMPLE", "--model", "nope"], "unknown model 'nope'"),
    ],
)
def test_errors_are_one_line(argv, message, capsys):
    argv = [str(example_path()) if a == "EXAMPLE" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
