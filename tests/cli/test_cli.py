"""The command line: tables, JSON, extxyz output, clear errors."""

import json

import ase.io
import numpy as np
import pytest
from helpers import png_size

from ase_bodyorder import decompose, load_model, read_body_order_results
from ase_bodyorder.cli import example_path, main
from ase_bodyorder.monitor import read_run

PLOTS = ("body_order_vs_time.png", "body_order_distributions.png")


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
    lines = capsys.readouterr().out.splitlines()
    # 1. the full expansion of the shipped H8 cluster: the library's orders
    expected = decompose(ase.io.read(example_path()), load_model("h-morse-atm"), max_order=8)
    start = lines.index("   order        energy/eV    per atom/eV     share") + 1
    orders = [float(line.split()[1]) for line in lines[start : start + 8]]
    np.testing.assert_allclose(orders, expected.energies_eV, rtol=0, atol=1e-8)
    assert lines[start + 10].startswith("255 sub-clusters evaluated, 0 skipped")
    # 3. the report of the run: its three frames, each order's mean over them
    trace = read_run(run_dir)
    np.testing.assert_array_equal(trace.step, [0, 2, 4])
    start = lines.index(f"{run_dir}: 3 monitored frames, steps 0..4") + 2
    for n in (1, 2, 3):
        row = lines[start + n - 1].split()
        assert row[0] == str(n)
        assert float(row[1]) == pytest.approx(trace.energies_per_atom_eV[:, n - 1].mean(), abs=1e-6)
    assert [png_size(run_dir / name) for name in PLOTS] == [(840, 720), (768, 360)]
    k = lines.index("4. What the monitored numbers mean")
    assert lines[k - 3 : k - 1] == [f"wrote {run_dir / name}" for name in PLOTS]
    # 4. what the numbers mean: the model's own atom; no ab initio frames for this model
    atom = load_model("h-morse-atm").system(ase.Atoms("H"), forces=False).energy
    assert lines[k + 2].startswith(f"E^(1) = {atom:.4f} eV per atom: h-morse-atm's")
    assert lines[-1].startswith("No shipped ab initio validation of h-morse-atm")


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
    expected = decompose(ase.io.read(example_path()), load_model(), max_order=2, forces=True)
    # extxyz writes per-atom arrays with 8 decimals
    np.testing.assert_allclose(back["body_order_forces"], expected.forces_eV_per_A, atol=1e-8)
    np.testing.assert_allclose(back["body_order_energies"], expected.energies_eV, atol=1e-8)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["decompose", "missing.xyz"], "missing.xyz"),
        (
            ["decompose", "EXAMPLE", "--order", "9"],
            "--order 9 is larger than the system: an isolated cluster of 8 atom(s)",
        ),
        (["decompose", "EXAMPLE", "--model", "nope"], "unknown model 'nope'"),
        # the settings, checked once, name the option
        (["decompose", "EXAMPLE", "--order", "0"], "--order must be a positive integer, got 0"),
        (["decompose", "EXAMPLE", "--r-mbe", "-1"], "--r-mbe must be a positive finite number"),
        (["decompose", "EXAMPLE", "--sample-atoms", "0"], "--sample-atoms must be a positive"),
        (["decompose", "EXAMPLE", "--sample-atoms", "2", "--seed", "-1"], "--seed must be a non"),
        (["decompose", "EXAMPLE", "--seed", "1"], "--seed is the seed of atom sampling"),
        (["decompose", "EXAMPLE", "--max-roundoff-ev", "0"], "--max-roundoff-ev must be a posi"),
        (["decompose", "EXAMPLE", "--max-memory-gib", "-2"], "--max-memory-gib must be a posi"),
        (["decompose", "EXAMPLE", "--sample-atoms", "9"], "1..8 (this structure has 8 atoms)"),
        (["decompose", "EXAMPLE", "--workers", "0"], "--workers must be a positive integer"),
    ],
)
def test_errors_are_one_line(argv, message, capsys):
    argv = [str(example_path()) if a == "EXAMPLE" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if message in line]  # one line
    assert line.startswith("ase-bodyorder: error: ")


def test_every_subcommand_has_a_handler():
    import argparse

    from ase_bodyorder.cli import build_parser

    def handlers(parser):
        subactions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subactions:
            yield parser.prog, parser._defaults.get("handler")
        for action in subactions:
            for sub in action.choices.values():
                yield from handlers(sub)

    found = dict(handlers(build_parser()))
    leaves = {"decompose", "demo", "models", "train", "driver", "md", "scan", "report", "watch"}
    leaves |= {"increments"}
    leaves |= {
        f"reference {s}"
        for s in (
            "sample", "compute", "mbe", "export", "fragments", "periodic",
            "cell-fragments", "frames", "validation", "finite-size",
        )
    }  # fmt: skip
    leaves |= {f"study {s}" for s in ("learning-curves", "makeup", "report", "ship")}
    leaves |= {f"study universal {s}" for s in ("reference", "models", "report")}
    assert set(found) == {f"ase-bodyorder {name}" for name in leaves}, found
    assert all(callable(h) for h in found.values()), found


def test_default_order_is_n_for_clusters_and_3_for_cells():
    from ase.build import bulk

    from ase_bodyorder.decompose import default_order

    assert default_order(ase.io.read(example_path())) == 8
    assert default_order(bulk("Cu", cubic=True)) == 3


def test_report_models_come_from_the_registry():
    from ase_bodyorder.models import shipped_models
    from ase_bodyorder.training.reports import accuracy_models, bodyorder_models

    shipped = shipped_models()
    cluster = bodyorder_models()
    assert cluster == [
        *("pet-h8-high", "soap-bpnn-h8-high", "mace-h8-high", "mace-h8-high-f50"),
        *("pet-h8-high-f20", "soap-bpnn-h8-high-f50"),
        *("pet-h8-low", "soap-bpnn-h8-low", "mace-h8-low", "mace-h8-low-f50"),
        *("pet-h8-low-f20", "soap-bpnn-h8-low-f50"),
    ]
    assert all(shipped[name].startswith("h8-") for name in cluster)
    assert accuracy_models() == [*cluster, "soap-bpnn-hbulk-high", "mace-hcells", "mace-hcells-zbl"]


def test_threads_reach_the_trainers_only_when_given(monkeypatch, capsys):
    import torch

    from ase_bodyorder.training._common import THREADS_VARIABLE, trainer_threads

    monkeypatch.setenv(THREADS_VARIABLE, "3")
    try:
        assert main(["models"]) == 0
        assert trainer_threads() == 3 and torch.get_num_threads() == 1
        assert main(["--threads", "2", "models"]) == 0
        assert trainer_threads() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_demo_interpretation_quotes_the_shipped_validation_with_increments():
    """make run's last step: the shipped ab initio validation of the MD default, with the
    model under both definitions, and a verdict computed from the shipped numbers."""
    import json

    import numpy as np

    from ase_bodyorder.demo import VALIDATION, interpretation
    from ase_bodyorder.monitor.readers import BodyOrderTrace

    case = json.loads((VALIDATION / "validation.json").read_text())["cases"]["nvt"]
    per_atom = np.array([[-12.87, -11.7, 55.0], [-12.87, -11.8, 56.0]])
    trace = BodyOrderTrace(
        step=np.array([0, 10]),
        time_fs=np.array([0.0, 2.0]),
        energies_eV=per_atom * 64,
        energies_per_atom_eV=per_atom,
        shares=np.full((2, 3), np.nan),
        residual_eV=np.zeros(2),
    )
    text = interpretation(case["model"], trace)
    third = case["orders"][2]
    assert f"{third['reference_eV_per_atom']:.3f}" in text
    assert f"{third['model_increment_share_eV_per_atom']:.3f}" in text
    assert f"{third['reference_leak_eV_per_atom']:+.2f} eV/atom of pair energy" in text
    assert "does not converge by K = 3" in text  # E^(3)/N is several times E^(2)/N
