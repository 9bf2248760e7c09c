"""The atom-sampled expansion (science.md section 9): plan, estimates, calculator, driver,
monitor and CLI.

Physics: each sampled atom's e_i^(n) is exact; the sample mean is an unbiased estimate
of E^(n)/N whose reported standard error (with the finite-population correction)
matches the spread of the estimates over seeds. Contracts: clear errors, m = N is the
exact expansion, results survive dictionaries, ASE, i-PI extras and the monitor.
"""

import json
import math

import ase.io
import numpy as np
import pytest
from helpers import DENSE_CELL, png_size, random_cluster

from ase_bodyorder import BodyOrderCalculator, BodyOrderError, decompose
from ase_bodyorder.decompose import BodyOrderResult, draw_atom_sample, sample_mean_and_stderr
from ase_bodyorder.expansion import plan_expansion
from ase_bodyorder.models import hydrogen_demo_model, load_model

DENSE = DENSE_CELL
R_MBE = 2.0  # Angstrom; the 64-atom cell is 3.44 Angstrom wide
ORDER = 3


@pytest.fixture(scope="module")
def model():
    return hydrogen_demo_model()


@pytest.fixture(scope="module")
def dense(model):
    """The 64-atom dense periodic cell, the model's result on it and its full expansion."""
    atoms = ase.io.read(DENSE)
    system = model.system(atoms, forces=False)
    full = decompose(atoms, model, max_order=ORDER, r_mbe=R_MBE, system=system)
    return atoms, system, full


# ---------------------------------------------------------------- plan


def test_plan_with_centres_enumerates_only_their_rows(periodic_h):
    full = plan_expansion(
        periodic_h.positions, cell=periodic_h.cell, pbc=True, max_order=3, r_mbe=2.0
    )
    centres = np.array([3, 1])
    plan = plan_expansion(
        periodic_h.positions, cell=periodic_h.cell, pbc=True, max_order=3, r_mbe=2.0,
        centres=centres,
    )  # fmt: skip
    assert plan.centres.tolist() == [1, 3] and plan.n_centres == 2
    assert set(plan.entry_atom.tolist()) == {1, 3}
    assert (plan.singleton_flat[[0, 2]] == -1).all() and (plan.singleton_flat[[1, 3]] >= 0).all()
    assert plan.atoms[plan.singleton_flat[[1, 3]]].tolist() == [1, 3]
    assert plan.cluster_weights is None and plan.n_subclusters <= full.n_subclusters
    # the rows of the centres, no others
    keep = np.isin(full.entry_atom, centres)
    assert len(plan.entry_atom) == int(keep.sum())
    np.testing.assert_allclose(np.sort(plan.entry_weight), np.sort(full.entry_weight[keep]))


def test_plan_with_centres_on_a_cluster_has_no_cluster_weights(cluster8):
    plan = plan_expansion(cluster8.positions, max_order=8, centres=[0, 5])
    assert plan.cluster_weights is None
    # every subset that holds a centre: 2^8 - 1 minus those without 0 and 5
    assert plan.n_subclusters == (2**8 - 1) - (2**6 - 1)
    assert plan.n_rows == 2 * (2**7)
    with pytest.raises(ValueError, match="no cluster weights"):
        from ase_bodyorder.expansion import cluster_orders

        cluster_orders(plan, np.zeros(plan.n_subclusters))


def test_budget_counts_only_the_centres_rows():
    atoms = random_cluster(12, seed=4)
    with pytest.raises(BodyOrderError, match="max_subclusters"):
        plan_expansion(atoms.positions, max_order=5, max_subclusters=1000)  # 1585
    plan = plan_expansion(atoms.positions, max_order=5, max_subclusters=1000, centres=[2])
    assert plan.n_rows == sum(math.comb(11, k) for k in range(5))  # 562


@pytest.mark.parametrize(
    "centres, message",
    [([], "non-empty"), ([0, 0], "distinct"), ([0, 8], "0..7"), ([-1], "0..7"), ([0.5], "integer")],
)
def test_bad_centres_are_clear_errors(cluster8, centres, message):
    with pytest.raises(BodyOrderError, match=message):
        plan_expansion(cluster8.positions, max_order=2, centres=np.array(centres))


# ---------------------------------------------------------------- physics


def test_sampled_atoms_of_a_cluster_are_exact(cluster8, model):
    full = decompose(cluster8, model, max_order=8)
    sampled = decompose(cluster8, model, max_order=8, sample_atoms=3, seed=5)
    s = sampled.sample_indices
    assert len(s) == 3 and sampled.sample_size == 3 and sampled.n_atoms == 8
    np.testing.assert_allclose(
        sampled.energies_per_atom_eV[s], full.energies_per_atom_eV[s], rtol=0, atol=1e-12
    )
    others = np.setdiff1d(np.arange(8), s)
    assert np.isnan(sampled.energies_per_atom_eV[others]).all()
    assert np.isnan(sampled.residual_per_atom_eV[others]).all()
    np.testing.assert_allclose(
        sampled.residual_per_atom_eV[s], full.residual_per_atom_eV[s], rtol=0, atol=1e-12
    )
    # the estimate is N x the mean over the sample
    mean = full.energies_per_atom_eV[s].mean(axis=0)
    np.testing.assert_allclose(sampled.energies_per_atom_mean_eV, mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sampled.energies_eV, 8 * mean, rtol=0, atol=1e-11)


def test_sampled_atoms_of_a_dense_cell_are_exact(dense, model):
    atoms, system, full = dense
    sampled = decompose(
        atoms, model, max_order=ORDER, r_mbe=R_MBE, system=system, sample_atoms=8, seed=11
    )
    s = sampled.sample_indices
    np.testing.assert_allclose(
        sampled.energies_per_atom_eV[s], full.energies_per_atom_eV[s], rtol=0, atol=1e-12
    )
    assert sampled.n_subclusters < full.n_subclusters  # the cost scales with m
    assert sampled.energy_eV == full.energy_eV
    assert sampled.forces_eV_per_A is None


def test_estimates_are_unbiased_and_their_errors_match_the_spread(dense, model):
    atoms, system, full = dense
    n, m, repeats = len(atoms), 8, 100
    results = [
        decompose(
            atoms, model, max_order=ORDER, r_mbe=R_MBE, system=system, sample_atoms=m, seed=seed
        )
        for seed in range(repeats)
    ]
    means = np.array([r.energies_per_atom_mean_eV for r in results])
    stderrs = np.array([r.energies_per_atom_stderr_eV for r in results])
    exact = np.asarray(full.energies_eV) / n
    # E^(1)/N: every atom alike, exact in every sample
    assert np.allclose(means[:, 0], exact[0], rtol=0, atol=1e-12) and np.all(stderrs[:, 0] < 1e-12)
    for order in (2, 3):
        estimate, spread = means[:, order - 1], means[:, order - 1].std(ddof=1)
        reported = np.sqrt(np.mean(stderrs[:, order - 1] ** 2))
        assert abs(estimate.mean() - exact[order - 1]) < 4 * reported / np.sqrt(repeats)
        assert 1 / 1.5 < reported / spread < 1.5, (order, reported, spread)
    # the residual: E/N - sum_n E^(n)/N, from the sampled atoms' own energies
    residuals = np.array([r.residual_per_atom_mean_eV for r in results])
    residual_errors = np.array([r.residual_per_atom_stderr_eV for r in results])
    reported = np.sqrt(np.mean(residual_errors**2))
    assert abs(residuals.mean() - full.residual_eV / n) < 4 * reported / np.sqrt(repeats)
    assert 1 / 1.5 < reported / residuals.std(ddof=1) < 1.5
    np.testing.assert_allclose([r.residual_eV for r in results], n * residuals, rtol=1e-12)


def test_the_whole_sample_is_the_exact_expansion(dense, model):
    atoms, system, full = dense
    n = len(atoms)
    every = decompose(
        atoms, model, max_order=ORDER, r_mbe=R_MBE, system=system, sample_atoms=n, seed=3
    )
    assert every.sampled and every.sample_indices.tolist() == list(range(n))
    np.testing.assert_allclose(every.energies_eV, full.energies_eV, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(every.energies_per_atom_eV, full.energies_per_atom_eV, atol=1e-12)
    assert every.residual_eV == pytest.approx(full.residual_eV, rel=1e-12, abs=1e-10)
    assert (every.energies_per_atom_stderr_eV == 0).all() and every.residual_per_atom_stderr_eV == 0
    assert every.n_subclusters == full.n_subclusters


def test_standard_error_formula():
    values = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
    mean, stderr = sample_mean_and_stderr(values, n_atoms=10)
    np.testing.assert_allclose(mean, [3.0, 2.0])
    np.testing.assert_allclose(stderr, [2.0 / np.sqrt(3) * np.sqrt(1 - 3 / 10), 0.0])
    assert (sample_mean_and_stderr(values, n_atoms=3)[1] == 0).all()
    assert np.isnan(sample_mean_and_stderr(values[:1], n_atoms=10)[1]).all()


def test_the_sample_is_drawn_from_the_seed():
    a, b = draw_atom_sample(64, 8, seed=2), draw_atom_sample(64, 8, seed=2)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 8 and a.tolist() == sorted(a)
    rng = np.random.default_rng(2)
    assert a.tolist() == sorted(rng.choice(64, size=8, replace=False).tolist())
    assert draw_atom_sample(64, 8, seed=3).tolist() != a.tolist()


# ---------------------------------------------------------------- contracts


@pytest.mark.parametrize("m", [9, 0, -1, 2.5, True, "3"])
def test_bad_sample_sizes_are_clear_errors(cluster8, model, m):
    with pytest.raises(BodyOrderError, match="sample_atoms"):
        decompose(cluster8, model, max_order=2, sample_atoms=m, seed=0)


def test_sampling_refuses_forces_and_a_lone_seed(cluster8, model):
    with pytest.raises(BodyOrderError, match="forces per order are not available"):
        decompose(cluster8, model, max_order=2, sample_atoms=3, forces=True)
    with pytest.raises(BodyOrderError, match="give sample_atoms too"):
        decompose(cluster8, model, max_order=2, seed=1)
    with pytest.raises(BodyOrderError, match="seed"):
        decompose(cluster8, model, max_order=2, sample_atoms=3, seed=-1)


def test_without_a_seed_the_drawn_seed_is_recorded(cluster8, model):
    first = decompose(cluster8, model, max_order=3, sample_atoms=3)
    again = decompose(cluster8, model, max_order=3, sample_atoms=3, seed=first.sample_seed)
    assert again.sample_indices.tolist() == first.sample_indices.tolist()
    np.testing.assert_array_equal(again.energies_eV, first.energies_eV)


def test_dictionary_round_trip_is_strict_json(cluster8, model):
    sampled = decompose(cluster8, model, max_order=3, sample_atoms=3, seed=4)
    text = json.dumps(sampled.to_dict(), allow_nan=False)  # NaN rows as null
    back = BodyOrderResult.from_dict(json.loads(text))
    assert back.sampled and back.sample_indices.dtype == np.int64
    assert (back.sample_indices == sampled.sample_indices).all()
    assert (back.sample_size, back.sample_seed, back.n_atoms) == (3, 4, 8)
    for name in (
        "energies_eV",
        "energies_per_atom_eV",
        "residual_per_atom_eV",
        "energies_per_atom_mean_eV",
        "energies_per_atom_stderr_eV",
    ):
        np.testing.assert_array_equal(getattr(back, name), getattr(sampled, name))
    assert back.residual_per_atom_stderr_eV == sampled.residual_per_atom_stderr_eV
    assert back.table() == sampled.table()


def test_table_states_the_estimate_and_its_errors(cluster8, model):
    text = decompose(cluster8, model, max_order=3, sample_atoms=4, seed=1).table()
    assert "atom-sampled estimate: 4 of 8 atoms" in text and "+-/eV" in text
    assert "N x mean" in text
    assert "+-" not in decompose(cluster8, model, max_order=3).table()


# ---------------------------------------------------------------- calculator


def test_calculator_draws_a_new_reproducible_sample_per_structure(cluster8, model):
    def run(seed):
        calc = BodyOrderCalculator(model, max_order=3, sample_atoms=3, sample_seed=seed)
        atoms = cluster8.copy()
        atoms.calc = calc
        out = []
        for step in range(3):
            atoms.positions[0, 0] += 0.01 * step
            atoms.get_potential_energy()
            body = calc.body_order_for(atoms)
            assert calc.results["body_order_energies_per_atom_mean"].shape == (3,)
            assert calc.results["body_order_energies_per_atom_stderr"].shape == (3,)
            np.testing.assert_array_equal(
                calc.results["body_order_energies_per_atom_mean"], body.energies_per_atom_mean_eV
            )
            assert calc.results["body_order_energies_per_atom"].shape == (8, 3)
            out.append((body.sample_seed, tuple(body.sample_indices)))
        return out

    first = run(17)
    assert first == run(17)
    assert len({seed for seed, _ in first}) == 3  # each structure its own sample
    assert first != run(18)


def test_calculator_without_sampling_reports_exact_means(cluster8, model):
    cluster8.calc = BodyOrderCalculator(model, max_order=3)
    mean = cluster8.calc.get_property("body_order_energies_per_atom_mean", cluster8)
    stderr = cluster8.calc.get_property("body_order_energies_per_atom_stderr", cluster8)
    np.testing.assert_allclose(mean, cluster8.calc.results["body_order_energies"] / 8)
    assert (stderr == 0).all()


def test_calculator_set_switches_sampling_and_restarts_the_sequence(cluster8, model):
    calc = BodyOrderCalculator(model, max_order=3)
    cluster8.calc = calc
    cluster8.get_potential_energy()
    assert not calc.body_order.sampled
    calc.set(sample_atoms=3, sample_seed=2)
    cluster8.get_potential_energy()
    first = calc.body_order.sample_seed
    assert calc.body_order.sampled and calc.body_order.sample_size == 3
    calc.set(sample_seed=2)  # the same seed again: the sequence starts over
    cluster8.positions[0, 0] += 0.01
    cluster8.get_potential_energy()
    assert calc.body_order.sample_seed == first
    with pytest.raises(BodyOrderError, match="truncated_potential"):
        calc.set(truncated_potential=True)
    calc.set(sample_atoms=None)
    cluster8.get_potential_energy()
    assert not calc.body_order.sampled


def test_calculator_sampling_contracts(cluster8, model, tmp_path):
    with pytest.raises(BodyOrderError, match="truncated_potential or body_order_forces"):
        BodyOrderCalculator(model, sample_atoms=3, truncated_potential=True)
    with pytest.raises(BodyOrderError, match="sample_atoms"):
        BodyOrderCalculator(model, sample_atoms=0)
    calc = BodyOrderCalculator(model, max_order=3, sample_atoms=3, sample_seed=1)
    with pytest.raises(BodyOrderError, match="body_order_forces"):
        calc.get_property("body_order_forces", cluster8)
    big = BodyOrderCalculator(model, max_order=2, sample_atoms=9)
    with pytest.raises(BodyOrderError, match="1..8"):
        big.get_property("body_order_energies", cluster8)
    # stored with the atoms: extxyz keeps the estimate and the sample
    from ase_bodyorder import read_body_order_results, store_body_order_results

    cluster8.calc = calc
    cluster8.get_potential_energy()
    store_body_order_results(cluster8)
    path = tmp_path / "sampled.extxyz"
    ase.io.write(path, cluster8)
    back = read_body_order_results(ase.io.read(path))
    body = calc.body_order
    assert back["body_order_sample_indices"].tolist() == body.sample_indices.tolist()
    assert back["body_order_sample_seed"] == body.sample_seed
    np.testing.assert_allclose(
        back["body_order_energies_per_atom_stderr"], body.energies_per_atom_stderr_eV
    )


# ---------------------------------------------------------------- i-PI driver


def test_driver_extras_carry_the_sampled_means_and_errors(tmp_path):
    pytest.importorskip("ipi")
    import ase.units

    from ase_bodyorder.ipi.driver import BodyOrderDriver
    from ase_bodyorder.ipi.extras import EXTRAS_KEYS

    template = tmp_path / "h8.extxyz"
    atoms = random_cluster(8, seed=1)
    ase.io.write(template, atoms)
    driver = BodyOrderDriver(
        str(template), model="h-morse-atm", order=3, stride=2, sample_atoms=4, sample_seed=5
    )
    pos = atoms.positions / ase.units.Bohr
    cell = np.eye(3) * 20.0
    extras, samples = [], []
    for k in range(3):
        extras.append(json.loads(driver.compute_structure(cell, pos + 1e-3 * k)[3]))
        body = driver.calculator.body_order
        samples.append(None if body is None else (body.sample_seed, tuple(body.sample_indices)))
    assert all(set(e) == set(EXTRAS_KEYS) for e in extras)
    first, skipped = extras[0], extras[1]
    assert first["body_order_sample_size"] == 4 and first["body_order_computed"] == 1.0
    assert np.all(np.asarray(first["body_order_energies_per_atom_stderr"][1:]) > 0)
    np.testing.assert_allclose(
        first["body_order_energies_per_atom_mean"], first["body_order_energies_per_atom"]
    )
    assert np.isnan(skipped["body_order_energies_per_atom_stderr"]).all()
    # the third call expands its structure with a new sample
    assert extras[2]["body_order_sample_size"] == 4
    assert samples[1] is None and samples[2][0] != samples[0][0]
    for bad, message in ((9, "larger than the template"), (0, ">= 1"), (1.5, "integer")):
        with pytest.raises(BodyOrderError, match=message):
            BodyOrderDriver(str(template), model="h-morse-atm", sample_atoms=bad)


# ---------------------------------------------------------------- monitor


def _ar1(phi, n, rng):
    x = np.zeros(n)
    noise = rng.normal(size=n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def test_frame_average_error_combines_sampling_and_time_correlation_once():
    """x_t = mu_t (AR(1), tau 9) + independent sampling noise of known stderr: the
    reported error matches the spread of the means of independent runs, and is not the
    double count sqrt(error^2 + sampling^2)."""
    from ase_bodyorder.monitor import mean_and_error

    rng = np.random.default_rng(7)
    n, sigma = 2000, 3.0
    means, errors, sampling, doubled = [], [], [], []
    for _ in range(40):
        stderr = sigma * rng.uniform(0.5, 1.5, size=n)
        x = _ar1(0.8, n, rng) + stderr * rng.normal(size=n)
        stats = mean_and_error(x, stderr=stderr)
        means.append(stats.mean)
        errors.append(stats.error)
        sampling.append(stats.sampling_error)
        doubled.append(math.hypot(stats.error, stats.sampling_error))
        assert stats.error >= stats.sampling_error > 0 and stats.time_error > 0
        assert stats.sampling_error == pytest.approx(np.sqrt(np.mean(stderr**2) / n))
    spread = np.std(means, ddof=1)
    assert np.mean(errors) == pytest.approx(spread, rel=0.3)
    assert abs(np.mean(errors) - spread) < abs(np.mean(doubled) - spread)
    # one frame: no time information, but the sampling part is known
    single = mean_and_error([1.0], stderr=[0.5])
    assert math.isnan(single.error) and single.sampling_error == 0.5
    # without stderr: the same as before
    plain = mean_and_error(_ar1(0.5, 500, rng))
    assert plain.sampling_error == 0.0 and plain.time_error == plain.error


def test_logger_report_and_plots_of_a_sampled_run(tmp_path, model):
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    from ase_bodyorder.monitor import BodyOrderLogger, read_ase_log, report_text, write_plots

    atoms = random_cluster(8, seed=1)
    atoms.calc = BodyOrderCalculator(model, max_order=3, stride=0, sample_atoms=4, sample_seed=0)
    dyn = VelocityVerlet(atoms, timestep=0.1 * fs)
    log = tmp_path / "bo.jsonl"
    dyn.attach(BodyOrderLogger(dyn, atoms, log), interval=1)
    dyn.run(5)
    trace = read_ase_log(log)
    assert trace.energies_per_atom_stderr_eV.shape == (6, 3)
    assert trace.residual_stderr_eV.shape == (6,)
    assert np.all(trace.energies_per_atom_stderr_eV[:, 1] > 0)
    # the last frame is the calculator's expansion of the final structure
    body = atoms.calc.body_order
    np.testing.assert_allclose(trace.energies_per_atom_eV[-1], body.energies_per_atom_mean_eV)
    np.testing.assert_allclose(
        trace.energies_per_atom_stderr_eV[-1], body.energies_per_atom_stderr_eV
    )
    # the report's sampling column: sqrt(mean(stderr^2) / frames) per order
    lines = report_text(trace).splitlines()
    assert lines[1].split()[:5] == ["order", "per", "atom/eV", "+-", "sampling"]
    for n in (2, 3):
        row = lines[1 + n].split()
        sampling = np.sqrt(np.mean(trace.energies_per_atom_stderr_eV[:, n - 1] ** 2) / 6)
        assert row[0] == str(n) and float(row[3]) == pytest.approx(sampling, abs=1e-6)
        assert float(row[2]) >= float(row[3])  # the total error includes the sampling part
    assert lines[6].startswith("atom-sampled estimates: +- combines")
    paths = write_plots(trace, tmp_path / "plots")
    assert [png_size(p) for p in paths] == [(840, 720), (768, 360)]
    # the model= route samples too: each frame's seed is drawn from the seeded generator
    log2 = tmp_path / "bo2.jsonl"
    BodyOrderLogger(None, atoms, log2, model=model, sample_atoms=2, sample_seed=1)()
    record = json.loads(log2.read_text())
    assert record["body_order_sample_size"] == 2
    seed = int(np.random.default_rng(1).integers(2**63))
    expected = decompose(atoms, model, max_order=3, sample_atoms=2, seed=seed)
    np.testing.assert_allclose(
        record["body_order_energies_per_atom_mean_eV"],
        expected.energies_per_atom_mean_eV,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        record["body_order_energies_per_atom_stderr_eV"],
        expected.energies_per_atom_stderr_eV,
        atol=1e-12,
    )


def test_ipi_run_reader_picks_up_the_stderr_extras(tmp_path):
    from ase_bodyorder.monitor import read_run, report_text

    (tmp_path / "input.xml").write_text(
        "<simulation><output prefix='simulation'><properties filename='out'>"
        " [ step, time{picosecond}, temperature{kelvin} ] </properties></output></simulation>"
    )
    steps = range(4)
    (tmp_path / "simulation.out").write_text("".join(f"{s} {s * 1e-3} 300.0\n" for s in steps))
    per_atom = np.array([[-13.6, -1.0 - 0.1 * s, 0.5] for s in steps])
    stderr = np.array([[0.0, 0.05, 0.01]] * 4)
    files = {
        "bo": ("body_order_energies", 8 * per_atom),
        "bo_per_atom": ("body_order_energies_per_atom", per_atom),
        "bo_stderr": ("body_order_energies_per_atom_stderr", stderr),
        "bo_sample": (
            "body_order_residual,body_order_residual_stderr,body_order_sample_size,"
            "body_order_computed",
            np.array([[0.3, 0.02, 4, 1.0]] * 4),
        ),
    }
    for name, (key, rows) in files.items():
        text = "".join(
            f" #EXTRAS({key})# Step: {s} \n " + " ".join(f"{v:.6e}" for v in row) + "\n"
            for s, row in zip(steps, rows, strict=True)
        )
        (tmp_path / f"simulation.{name}_0").write_text(text)
    trace = read_run(tmp_path)
    np.testing.assert_allclose(trace.energies_per_atom_stderr_eV, stderr)
    np.testing.assert_allclose(trace.residual_stderr_eV, 0.02)
    # the sampling part of each order's error: sqrt(mean(stderr^2) / frames)
    lines = report_text(trace).splitlines()
    assert [float(lines[1 + n].split()[3]) for n in (1, 2, 3)] == [0.0, 0.025, 0.005]
    assert lines[5].endswith("(eV per cell) (sampling 0.010000)")


# ---------------------------------------------------------------- CLI


def test_cli_decompose_with_atom_sampling(capsys):
    from ase_bodyorder.cli import main

    argv = ["decompose", str(DENSE), "--model", "h-morse-atm", "--order", "3", "--r-mbe", "2.0"]
    assert main([*argv, "--sample-atoms", "8", "--seed", "1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    # each structure's seed is drawn from a generator seeded once with --seed
    seed = int(np.random.default_rng(1).integers(2**63))
    assert record["sample_seed"] == seed
    atoms, model = ase.io.read(DENSE), load_model("h-morse-atm")
    expected = decompose(atoms, model, max_order=3, r_mbe=2.0, sample_atoms=8, seed=seed)
    assert record["sample_size"] == 8
    assert record["sample_indices"] == expected.sample_indices.tolist()
    np.testing.assert_allclose(record["energies_eV"], expected.energies_eV, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        record["energies_per_atom_stderr_eV"], expected.energies_per_atom_stderr_eV, atol=1e-12
    )
    assert main([*argv, "--sample-atoms", "65"]) != 0
    assert "1..64" in capsys.readouterr().err


def test_cli_prints_how_to_draw_each_sample_again(tmp_path, capsys):
    """Issue 35: the instructions printed with a sampled structure reproduce its sample:
    the command for that structure alone (its index in the file, the run's seed, drawn
    and printed when none is given) prints the same table, and decompose() in Python with
    the structure's own seed gives the same atoms and energies."""
    import shlex

    from ase_bodyorder.cli import main

    path = tmp_path / "clusters.extxyz"
    ase.io.write(path, [random_cluster(8, seed=k) for k in range(3)])
    frames = ase.io.read(path, ":")  # as the command reads them
    argv = ["decompose", str(path), "--model", "h-morse-atm", "--order", "3"]
    assert main([*argv, "--sample-atoms", "3"]) == 0  # no seed: one is drawn and printed
    blocks = capsys.readouterr().out.strip().split("\n\n")
    assert len(blocks) == 3
    samples = set()
    for k, block in enumerate(blocks):
        command = block.splitlines()[-2]
        assert command.startswith("same sample: ase-bodyorder decompose ")
        assert f" --index {k} " in command
        assert main(shlex.split(command.removeprefix("same sample: "))[1:]) == 0
        assert capsys.readouterr().out.strip() == block  # the same structure, seed, terms
        assert main([*shlex.split(command.removeprefix("same sample: "))[1:], "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        python = block.splitlines()[-1]
        assert python.endswith(f"sample_atoms=3, seed={record['sample_seed']})")
        again = decompose(
            frames[k],
            load_model("h-morse-atm"),
            max_order=3,
            sample_atoms=3,
            seed=record["sample_seed"],
        )
        assert again.sample_indices.tolist() == record["sample_indices"]
        np.testing.assert_array_equal(again.energies_eV, record["energies_eV"])
        samples.add((record["sample_seed"], record["run_seed"]))
    assert len({seed for seed, _ in samples}) == 3  # each structure its own sample
    assert len({run for _, run in samples}) == 1  # of one run seed
