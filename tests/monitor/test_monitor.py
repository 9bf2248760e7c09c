"""Monitoring: statistics of correlated series, the ASE logger, i-PI file readers, reports."""

import json

import numpy as np
import pytest
from ase.md.verlet import VelocityVerlet
from helpers import png_size, random_cluster

from ase_bodyorder import BodyOrderCalculator, BodyOrderError, decompose
from ase_bodyorder.models import AxilrodTellerMuto, LennardJones, SumModel
from ase_bodyorder.monitor import (
    BodyOrderLogger,
    autocorrelation_time,
    load_trace,
    mean_and_error,
    read_ipi_extras,
    report_text,
    share_ranges,
    write_plots,
)


def _ar1(phi, n, rng):
    x = np.zeros(n)
    noise = rng.normal(size=n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def test_autocorrelation_time_of_an_ar1_process():
    rng = np.random.default_rng(0)
    phi = 0.8
    expected = (1 + phi) / (1 - phi)  # 9
    taus = [autocorrelation_time(_ar1(phi, 20000, rng)) for _ in range(3)]
    assert np.mean(taus) == pytest.approx(expected, rel=0.15)
    assert autocorrelation_time(rng.normal(size=5000)) == pytest.approx(1.0, abs=0.2)


def test_error_of_the_mean_matches_the_spread_of_independent_runs():
    rng = np.random.default_rng(1)
    runs = [_ar1(0.9, 4000, rng) for _ in range(40)]
    spread = np.std([r.mean() for r in runs], ddof=1)
    estimated = np.mean([mean_and_error(r).error for r in runs])
    assert estimated == pytest.approx(spread, rel=0.35)
    naive = np.mean([r.std() / np.sqrt(len(r)) for r in runs])
    assert naive < 0.5 * spread  # ignoring correlation would underestimate the error


ARGON = SumModel(
    LennardJones(epsilon=0.0104, sigma=3.4, cutoff=8.0), AxilrodTellerMuto(C9=50.0, cutoff=8.0)
)


def test_ase_logger_round_trip_and_report(tmp_path):
    atoms = random_cluster(6, seed=8, radius=4.5, min_distance=3.4)
    atoms.set_chemical_symbols(["Ar"] * 6)
    atoms.calc = BodyOrderCalculator(ARGON, max_order=3, stride=0)
    atoms.set_momenta(np.random.default_rng(0).normal(0, 0.3, size=(6, 3)))
    dyn = VelocityVerlet(atoms, timestep=2.0)
    log = tmp_path / "bo.jsonl"
    dyn.attach(BodyOrderLogger(dyn, atoms, log), interval=5)
    dyn.run(20)
    trace = load_trace(log)
    assert len(trace) == 5 and trace.max_order == 3
    assert trace.step.tolist() == [0, 5, 10, 15, 20]
    expected = decompose(atoms, ARGON, max_order=3)
    np.testing.assert_allclose(trace.energies_eV[-1], expected.energies_eV, atol=1e-12)
    np.testing.assert_allclose(trace.energies_per_atom_eV[-1], expected.energies_eV / 6)
    assert np.isnan(trace.shares[:, 0]).all() and np.isfinite(trace.shares[:, 1:]).all()
    # the logger's conserved energy is the dynamics' potential + kinetic energy
    assert trace.properties["conserved_eV"][-1] == pytest.approx(atoms.get_total_energy())
    # the report: frames, and per order the mean energy per atom and share over frames
    lines = report_text(trace).splitlines()
    assert lines[0] == f"{log}: 5 monitored frames, steps 0..20"
    for n in (1, 2, 3):
        row = lines[1 + n].split()
        assert row[0] == str(n)
        mean = trace.energies_per_atom_eV[:, n - 1].mean()
        assert float(row[1]) == pytest.approx(mean, abs=1e-6)
        if n > 1:
            assert float(row[4]) == pytest.approx(trace.shares[:, n - 1].mean(), abs=1e-4)
    assert lines[5].split()[:2] == ["residual", f"{trace.residual_eV.mean():.6f}"]
    conserved = trace.properties["conserved_eV"]
    drift = f"conserved drift: {conserved[-1] - conserved[0]:+.6f} eV over 4 frames"
    assert lines[-1] == drift
    # the plots: time series (7 x 6 in) and one histogram per order n >= 2 (3.2 x 3 in)
    paths = write_plots(trace, tmp_path / "plots")
    assert [p.name for p in paths] == ["body_order_vs_time.png", "body_order_distributions.png"]
    assert [png_size(p) for p in paths] == [(840, 720), (768, 360)]  # 120 dpi
    ranges = share_ranges([trace])
    assert set(ranges) == {2, 3} and ranges[2][0] <= ranges[2][1]


def test_ase_logger_with_an_explicit_model(tmp_path):
    atoms = random_cluster(5, seed=3, radius=4.0, min_distance=3.3)
    atoms.set_chemical_symbols(["Ar"] * 5)
    atoms.calc = BodyOrderCalculator(ARGON, max_order=2, stride=0)
    dyn = VelocityVerlet(atoms, timestep=2.0)
    logger = BodyOrderLogger(dyn, atoms, tmp_path / "x.jsonl", model=ARGON, max_order=3)
    logger()
    trace = load_trace(tmp_path / "x.jsonl")
    assert trace.max_order == 3  # the logger's order, not the calculator's
    expected = decompose(atoms, ARGON, max_order=3)
    np.testing.assert_allclose(trace.energies_eV[0], expected.energies_eV, rtol=0, atol=1e-12)


def test_read_ipi_extras_parses_stacked_keys(tmp_path):
    path = tmp_path / "simulation.bo_status_0"
    path.write_text(
        " #EXTRAS(body_order_residual,body_order_computed)# Step:           1 \n"
        "  1.0e-03  1.0e+00\n"
        " #EXTRAS(body_order_residual,body_order_computed)# Step:           6 \n"
        "  nan  0.0e+00\n"
        " #EXTRAS(body_order_residual,body_order_computed)# Step:          11 \n"
    )
    keys, steps, values = read_ipi_extras(path)
    assert keys == ["body_order_residual", "body_order_computed"]
    assert steps.tolist() == [1, 6]  # the truncated last block is dropped
    assert values[0].tolist() == [1e-3, 1.0] and np.isnan(values[1, 0])


def test_run_without_property_header_uses_the_input_columns(tmp_path):
    """i-PI writes no header when it continues from a checkpoint; ten beads pad to _00."""
    (tmp_path / "input.xml").write_text(
        "<simulation><output prefix='simulation'><properties filename='out'>"
        " [ step, time{picosecond}, temperature{kelvin} ] </properties></output></simulation>"
    )
    (tmp_path / "simulation.out").write_text("5 0.005 300.0\n6 0.006 310.0\n")
    block = " #EXTRAS(body_order_energies)# Step: {} \n -1.0 -0.5 0.25\n"
    (tmp_path / "simulation.bo_00").write_text(block.format(5) + block.format(6))
    from ase_bodyorder.monitor import read_run

    trace = read_run(tmp_path, bead=0)
    assert trace.step.tolist() == [5, 6]
    np.testing.assert_allclose(trace.time_fs, [5.0, 6.0])
    np.testing.assert_allclose(trace.properties["temperature_K"], [300.0, 310.0])
    np.testing.assert_array_equal(trace.energies_eV, [[-1.0, -0.5, 0.25]] * 2)


def _fake_run(directory, energies_per_atom, shares, mean_key="body_order_energies_per_atom_mean"):
    """An i-PI-like run directory: properties and the extras files of the driver
    (``mean_key``: the name of E^(n)/N in the extras header)."""
    (directory / "input.xml").write_text(
        "<simulation><output prefix='simulation'><properties filename='out'>"
        " [ step, time{picosecond}, temperature{kelvin} ] </properties></output></simulation>"
    )
    steps = range(len(energies_per_atom))
    (directory / "simulation.out").write_text("".join(f"{s} {s * 1e-3} 300.0\n" for s in steps))
    for name, key, rows in (
        ("bo", "body_order_energies", 2 * np.asarray(energies_per_atom)),
        ("bo_per_atom", mean_key, energies_per_atom),
        ("bo_shares", "body_order_shares", shares),
    ):
        text = "".join(
            f" #EXTRAS({key})# Step: {s} \n " + " ".join(f"{v:.6e}" for v in row) + "\n"
            for s, row in zip(steps, rows, strict=True)
        )
        (directory / f"simulation.{name}_0").write_text(text)


def test_ipi_extras_and_ase_logger_record_the_same_summary(tmp_path):
    from ase_bodyorder.ipi.extras import expansion_extras
    from ase_bodyorder.summary import SUMMARY_KEYS, logged_key

    atoms = random_cluster(6, seed=5, radius=4.5, min_distance=3.4)
    atoms.set_chemical_symbols(["Ar"] * 6)
    atoms.calc = BodyOrderCalculator(ARGON, max_order=3, sample_atoms=4, sample_seed=2)
    atoms.get_potential_energy()
    body = atoms.calc.body_order
    log = tmp_path / "bo.jsonl"
    BodyOrderLogger(VelocityVerlet(atoms, timestep=2.0), atoms, log)()
    assert atoms.calc.body_order is body  # the logger used this very expansion
    extras = expansion_extras(body, len(atoms), call=0)
    record = json.loads(log.read_text())
    for key in SUMMARY_KEYS:
        logged = record[logged_key(key)]
        logged = [np.nan if v is None else v for v in np.atleast_1d(logged).tolist()]
        np.testing.assert_array_equal(np.atleast_1d(extras[key]), logged, err_msg=key)
    assert extras["body_order_sample_size"] == 4 and extras["body_order_order"] == 3
    np.testing.assert_allclose(
        extras["body_order_energies_per_atom_mean"], body.energies_per_atom_mean_eV, rtol=1e-12
    )


def test_runs_written_with_the_old_key_names_are_still_read(tmp_path):
    """Before the summary, E^(n)/N was ``body_order_energies_per_atom`` in the i-PI extras
    and ``body_order_energies_per_atom_eV`` in the ASE log."""
    from ase_bodyorder.monitor import read_ase_log, read_run

    per_atom = [[-13.0, -1.0, 0.5], [-13.0, -1.1, 0.4]]
    shares = [[np.nan, 2.0, -1.0], [np.nan, 2.1, -1.1]]
    _fake_run(tmp_path, per_atom, shares, mean_key="body_order_energies_per_atom")
    keys, _, _ = read_ipi_extras(tmp_path / "simulation.bo_per_atom_0")
    assert keys == ["body_order_energies_per_atom_mean"]
    np.testing.assert_allclose(read_run(tmp_path).energies_per_atom_eV, per_atom)
    old = {
        "time_fs": 0.0,
        "temperature_K": 300.0,
        "potential_eV": -1.0,
        "conserved_eV": -0.9,
        "body_order_energies_eV": [-26.0, -2.0, 1.0],
        "body_order_shares": [None, 2.0, -1.0],
        "body_order_residual_eV": 0.0,
    }
    log = tmp_path / "old.jsonl"
    lines = [
        {**old, "step": step, "body_order_energies_per_atom_eV": row}
        for step, row in enumerate(per_atom)
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    trace = read_ase_log(log)
    np.testing.assert_allclose(trace.energies_per_atom_eV, per_atom)
    assert trace.energies_per_atom_stderr_eV is None


def test_watch_flags_frames_outside_the_ranges(tmp_path):
    from ase_bodyorder.monitor import watch

    per_atom = [[-13.0, -1.0, 0.5], [-13.0, -1.1, 2.5], [-13.0, -1.2, 0.4]]
    shares = [[np.nan, 2.0, -1.0], [np.nan, 2.1, -1.1], [np.nan, 9.0, -8.0]]
    _fake_run(tmp_path, per_atom, shares)
    flags = watch(tmp_path, {2: (1.0, 3.0), 3: (-2.0, 0.0)}, interval_s=0.05, idle_s=0.3)
    assert len(flags) == 2 and all(f.startswith("step 2:") for f in flags)
    flags = watch(
        tmp_path,
        {3: (0.0, 1.0)},
        interval_s=0.05,
        idle_s=0.3,
        quantity="energies_per_atom",
    )
    assert len(flags) == 1 and flags[0].startswith("step 1: 3-body energy per atom")
    with pytest.raises(BodyOrderError, match="quantity"):
        watch(tmp_path, {}, quantity="share")


def test_training_ranges_are_those_of_the_training_expansions(tmp_path):
    """Ranges on a shipped-style model directory: min and max of the shares (and of the
    energies per atom) that decompose gives on each training structure."""
    import json

    import ase.io

    from ase_bodyorder.models import load_model
    from ase_bodyorder.monitor import training_share_ranges

    model = "h-morse-atm"
    (tmp_path / "models" / model).mkdir(parents=True)
    (tmp_path / "models" / model / "provenance.json").write_text(json.dumps({"dataset": "toy"}))
    (tmp_path / "reference").mkdir()
    frames = [random_cluster(5, seed=s) for s in range(4)]
    ase.io.write(tmp_path / "reference" / "toy_train.xyz", frames)
    results = [decompose(a, load_model(model), max_order=3) for a in frames]
    for quantity, values in (
        ("shares", [r.shares for r in results]),
        ("energies_per_atom", [np.asarray(r.energies_eV) / 5 for r in results]),
    ):
        ranges = training_share_ranges(
            model, order=3, r_mbe=None, data_dir=tmp_path, quantity=quantity
        )
        values = np.asarray(values)
        assert sorted(ranges) == [2, 3]
        for n in (2, 3):
            assert ranges[n] == pytest.approx((values[:, n - 1].min(), values[:, n - 1].max()))
    with pytest.raises(BodyOrderError, match="no training data is known"):
        training_share_ranges("h-morse", order=3, r_mbe=None, data_dir=tmp_path)
