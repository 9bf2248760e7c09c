"""Mixed precision: sub-clusters in float32, the expansion in float64, round-off bounded."""

from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read

import ase_bodyorder
from ase_bodyorder import BodyOrderError, decompose, load_model, plan_expansion
from ase_bodyorder.expansion import atomic_orders, evaluation_roundoff
from ase_bodyorder.models import hydrogen_demo_model
from ase_bodyorder.precision import RoundoffWarning, check_roundoff, check_subclusters

H8 = Path(ase_bodyorder.__file__).parent / "data" / "reference" / "h8-high_test.xyz"


@pytest.fixture(scope="module")
def models():
    """The float64 shipped models of the two packed backends (metatomic, MACE)."""
    return {name: load_model(name) for name in ("soap-bpnn-h8-high", "mace-h8-high")}


def _h8():
    return read(H8, 0)


def _cell():
    """16 hydrogen atoms in a 4 Angstrom periodic box (expanded to K=3 within 2 Angstrom)."""
    rng = np.random.default_rng(0)
    return Atoms("H16", positions=rng.random((16, 3)) * 4.0, cell=np.eye(3) * 4.0, pbc=True)


CASES = {"h8": (_h8, {"max_order": 8}), "cell": (_cell, {"max_order": 3, "r_mbe": 2.0})}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", ["soap-bpnn-h8-high", "mace-h8-high"])
def test_float32_within_reported_roundoff(models, name, case):
    build, options = CASES[case]
    atoms, model = build(), models[name]
    exact = decompose(atoms, model, **options)
    mixed = decompose(atoms, model, precision="float32", max_roundoff_eV=1.0, **options)
    difference = np.abs(mixed.energies_eV - exact.energies_eV)
    assert np.all(difference > 0)  # the sub-clusters really ran in float32
    assert np.all(difference <= mixed.roundoff_eV)
    # not absurdly loose: the worst order's bound within 1000x of the worst difference
    assert mixed.roundoff_eV.max() < 1000 * difference.max()
    # the whole structure stays in float64
    assert mixed.energy_eV == exact.energy_eV


def test_float64_default_unchanged_bit_for_bit(models):
    atoms, model = _h8(), models["soap-bpnn-h8-high"]
    default = decompose(atoms, model, max_order=3, forces=True)
    explicit = decompose(atoms, model, max_order=3, forces=True, precision="float64")
    for field in ("energies_eV", "roundoff_eV", "energies_per_atom_eV", "forces_eV_per_A"):
        assert np.array_equal(getattr(default, field), getattr(explicit, field))
    assert np.array_equal(default.roundoff_eV, np.finfo(np.float64).eps * default.cancellation_eV)


def test_threshold_refuses_with_one_line(models):
    atoms, model = _h8(), models["mace-h8-high"]
    with pytest.raises(BodyOrderError, match=r"round-off estimate of E\^\(\d\) is .* eV") as info:
        decompose(atoms, model, max_order=4, precision="float32", max_roundoff_eV=1e-9)
    assert "\n" not in str(info.value)


def test_threshold_none_warns():
    with pytest.warns(RoundoffWarning, match=r"E\^\(2\)"):
        check_roundoff(np.array([0.0, 1.0, 0.5]), None)
    check_roundoff(np.array([0.0, 1e-3]), None)  # below the default: silent
    with pytest.raises(BodyOrderError, match="max_roundoff_eV must be"):
        check_roundoff(np.zeros(2), -1.0)


def test_forces_in_float32_close_to_float64(models):
    atoms, model = _h8(), models["mace-h8-high"]
    exact = decompose(atoms, model, max_order=3, forces=True)
    mixed = decompose(atoms, model, max_order=3, forces=True, precision="float32")
    assert mixed.forces_eV_per_A.dtype == np.float64
    np.testing.assert_allclose(mixed.forces_eV_per_A, exact.forces_eV_per_A, atol=1e-3)


def test_sampled_roundoff_scaled(models):
    atoms, model = _cell(), models["soap-bpnn-h8-high"]
    options = dict(max_order=3, r_mbe=2.0, sample_atoms=4, seed=1, precision="float32")
    sampled = decompose(atoms, model, **options)
    assert np.all(sampled.roundoff_eV > np.finfo(np.float32).eps / 2 * sampled.cancellation_eV)


def test_model_that_cannot_run_in_float32_is_named(cluster8):
    model = hydrogen_demo_model()
    with pytest.raises(BodyOrderError, match=r"SumModel|Morse|cannot evaluate in float32"):
        decompose(cluster8, model, max_order=2, precision="float32")
    with pytest.raises(BodyOrderError, match="precision must be one of"):
        decompose(cluster8, model, max_order=2, precision="half")


def test_cast_copies_are_cached(models):
    model = models["mace-h8-high"]
    single = model.with_dtype(torch.float32)
    assert single.dtype == torch.float32 and model.with_dtype(torch.float32) is single
    assert model.with_dtype(torch.float64) is model


def test_check_subclusters_deterministic_and_per_size(cluster8):
    plan = plan_expansion(cluster8.positions, max_order=4)
    chosen = check_subclusters(plan, per_size=3)
    assert np.array_equal(chosen, check_subclusters(plan, per_size=3))
    sizes = plan.sizes[chosen]
    assert sorted(set(sizes)) == [1, 2, 3, 4]
    assert all(np.sum(sizes == s) == 3 for s in (1, 2, 3, 4))


def test_evaluation_roundoff_bounds_any_perturbation(cluster8):
    """The bound against random perturbations of the flat energies within it."""
    plan = plan_expansion(cluster8.positions, max_order=4)
    rng = np.random.default_rng(0)
    energies = -13.6 + rng.normal(size=len(plan.atoms))
    relative = np.full(len(energies), 1e-6)
    bound = evaluation_roundoff(plan, energies, relative)
    base = atomic_orders(plan, energies).energies_eV
    worst = np.zeros(plan.max_order)
    for _ in range(20):
        signs = rng.choice([-1.0, 1.0], size=len(energies))
        moved = atomic_orders(plan, energies * (1 + signs * relative)).energies_eV
        worst = np.maximum(worst, np.abs(moved - base))
    assert np.all(worst <= bound * (1 + 1e-9)) and np.all(worst > 0)


def test_calculator_passes_precision(models):
    from ase_bodyorder import BodyOrderCalculator

    atoms = _h8()
    model = models["mace-h8-high"]
    atoms.calc = BodyOrderCalculator(model, max_order=3, precision="float32", max_roundoff_eV=1.0)
    mixed = atoms.calc.get_property("body_order_energies", atoms)
    exact = decompose(atoms, model, max_order=3)
    assert np.all(np.abs(mixed - exact.energies_eV) <= atoms.calc.body_order.roundoff_eV)
    assert atoms.get_potential_energy() == exact.energy_eV  # the model's own float64
    with pytest.raises(BodyOrderError, match="cannot evaluate in float32"):
        BodyOrderCalculator(hydrogen_demo_model(), precision="float32")


def test_cli_precision(tmp_path, capsys):
    from ase_bodyorder.cli import main

    out = tmp_path / "out.txt"
    with out.open("w") as stream:
        from ase_bodyorder.cli.decompose import run_decompose

        (body,) = run_decompose(
            H8,
            model="mace-h8-high",
            order=2,
            r_mbe=None,
            index="0",
            stream=stream,
            precision="float32",
            max_roundoff_eV=1.0,
        )
    assert body.roundoff_eV[1] > np.finfo(np.float32).eps / 2 * body.cancellation_eV[1]
    argv = ["decompose", str(H8), "--index", "0", "--order", "2", "--precision", "float32"]
    assert main([*argv, "--max-roundoff-ev", "1e-12"]) == 2
    assert "round-off estimate of E^(" in capsys.readouterr().err
