"""The ASE calculator: properties, stride, truncated potential, results on disk."""

import ase.io
import numpy as np
import pytest
from ase.calculators.fd import calculate_numerical_forces
from ase.md.verlet import VelocityVerlet
from helpers import random_cluster

from ase_bodyorder import (
    BodyOrderCalculator,
    BodyOrderError,
    decompose,
    read_body_order_results,
    store_body_order_results,
)
from ase_bodyorder.models import AxilrodTellerMuto, LennardJones, SumModel, hydrogen_demo_model


def test_standard_and_body_order_properties(cluster8):
    model = hydrogen_demo_model()
    cluster8.calc = BodyOrderCalculator(model, max_order=3, body_order_forces=True)
    energy = cluster8.get_potential_energy()
    system = model.system(cluster8)
    assert energy == pytest.approx(system.energy)
    np.testing.assert_allclose(cluster8.get_forces(), system.forces)
    np.testing.assert_allclose(cluster8.get_potential_energies(), system.energies)
    calc = cluster8.calc
    assert calc.results["body_order_energies"].shape == (3,)
    assert calc.results["body_order_energies_per_atom"].shape == (8, 3)
    assert calc.results["body_order_forces"].shape == (3, 8, 3)
    expected = decompose(cluster8, model, max_order=3)
    np.testing.assert_allclose(calc.get_property("body_order_energies"), expected.energies_eV)
    assert calc.get_property("body_order_residual") == pytest.approx(expected.residual_eV)


def test_stride_computes_the_expansion_every_nth_call(cluster8):
    calc = BodyOrderCalculator(hydrogen_demo_model(), max_order=2, stride=3)
    has = []
    for step in range(7):
        atoms = cluster8.copy()
        atoms.positions[0, 0] += 0.01 * step
        atoms.calc = calc
        atoms.get_potential_energy()
        has.append("body_order_energies" in calc.results)
    assert has == [True, False, False, True, False, False, True]


def test_stride_zero_computes_only_on_request(cluster8):
    cluster8.calc = BodyOrderCalculator(hydrogen_demo_model(), max_order=2, stride=0)
    cluster8.get_potential_energy()
    assert "body_order_energies" not in cluster8.calc.results
    orders = cluster8.calc.get_property("body_order_energies", cluster8)
    expected = decompose(cluster8, hydrogen_demo_model(), max_order=2).energies_eV
    np.testing.assert_allclose(orders, expected, rtol=0, atol=1e-12)


def test_truncated_potential_energy_and_forces_are_consistent(cluster8):
    model = hydrogen_demo_model()
    calc = BodyOrderCalculator(model, max_order=2, truncated_potential=True)
    cluster8.calc = calc
    energy = cluster8.get_potential_energy()
    full = model.system(cluster8)
    body = decompose(cluster8, model, max_order=2)
    assert energy == pytest.approx(body.truncated_energy_eV, abs=1e-10)
    assert energy != pytest.approx(full.energy, abs=1e-6)
    numeric = calculate_numerical_forces(cluster8, eps=1e-4)
    np.testing.assert_allclose(cluster8.get_forces(), numeric, atol=1e-6)


def test_truncated_potential_conserves_energy_in_md():
    """An argon-like cluster driven by the 2-body truncation of LJ + ATM."""
    atoms = random_cluster(7, seed=8, radius=4.5, min_distance=3.4)
    atoms.set_chemical_symbols(["Ar"] * 7)
    model = SumModel(
        LennardJones(epsilon=0.0104, sigma=3.4, cutoff=8.0), AxilrodTellerMuto(C9=50.0, cutoff=8.0)
    )
    atoms.calc = BodyOrderCalculator(model, max_order=2, truncated_potential=True)
    atoms.set_momenta(np.random.default_rng(0).normal(0, 0.3, size=(7, 3)))
    dyn = VelocityVerlet(atoms, timestep=2.0)
    start = atoms.get_total_energy()
    dyn.run(100)
    assert atoms.get_kinetic_energy() > 0.01  # something moved
    assert abs(atoms.get_total_energy() - start) < 1e-4


def test_results_survive_extxyz(tmp_path, cluster8):
    cluster8.calc = BodyOrderCalculator(hydrogen_demo_model(), max_order=3, body_order_forces=True)
    cluster8.get_potential_energy()
    expected = cluster8.calc.results.copy()
    store_body_order_results(cluster8)
    path = tmp_path / "out.extxyz"
    ase.io.write(path, cluster8)
    back = read_body_order_results(ase.io.read(path))
    for key in ("body_order_energies", "body_order_energies_per_atom", "body_order_forces"):
        # extxyz writes per-atom arrays with 8 decimals
        np.testing.assert_allclose(back[key], expected[key], rtol=0, atol=1e-8)
    assert back["body_order_residual"] == pytest.approx(expected["body_order_residual"], abs=1e-12)


def test_unknown_parameters_are_rejected():
    with pytest.raises(TypeError):
        BodyOrderCalculator(hydrogen_demo_model(), max_ordr=3)
    calc = BodyOrderCalculator(hydrogen_demo_model())
    with pytest.raises(BodyOrderError, match="max_ordr"):
        calc.set(max_ordr=3)
    with pytest.raises(BodyOrderError, match="stride"):
        BodyOrderCalculator(hydrogen_demo_model(), stride=-1)


def test_model_by_name(cluster8):
    cluster8.calc = BodyOrderCalculator("h-morse-atm", max_order=2)
    assert cluster8.get_potential_energy() == pytest.approx(
        hydrogen_demo_model().system(cluster8).energy
    )


def _moved(atoms, step):
    out = atoms.copy()
    out.positions[0, 0] += 0.01 * step
    return out


def test_stored_results_are_never_stale_at_stride_3(cluster8):
    """Regression: at stride > 1 the skipped frames stored an earlier geometry's expansion."""
    model = hydrogen_demo_model()
    calc = BodyOrderCalculator(model, max_order=3, stride=3)
    stored = []
    for step in range(5):
        atoms = _moved(cluster8, step)
        atoms.calc = calc
        atoms.get_potential_energy()
        try:
            store_body_order_results(atoms)
        except BodyOrderError as error:
            assert "stride 3" in str(error)
            assert calc.body_order is None
            stored.append(False)
            continue
        expected = decompose(atoms, model, max_order=3)
        np.testing.assert_allclose(atoms.info["body_order_energies"], expected.energies_eV)
        stored.append(True)
    assert stored == [True, False, False, True, False]


def test_storing_into_another_structure_is_an_error(cluster8):
    """Regression: a result of 8 atoms was written into a 6-atom structure's arrays."""
    calc = BodyOrderCalculator(hydrogen_demo_model(), max_order=2, stride=1)
    cluster8.calc = calc
    cluster8.get_potential_energy()
    small = random_cluster(6, seed=2)
    with pytest.raises(BodyOrderError, match="another structure"):
        store_body_order_results(small, calc)
    with pytest.raises(BodyOrderError, match="has 8 atoms, the structure 6"):
        store_body_order_results(small, calc.body_order)
    assert "body_order_energies_per_atom" not in small.arrays
    # the calculator moves on to the small structure: the 8-atom result is gone
    small.calc = calc
    small.get_potential_energy()
    with pytest.raises(BodyOrderError, match="another structure"):
        store_body_order_results(cluster8, calc)
    store_body_order_results(small)
    assert small.arrays["body_order_energies_per_atom"].shape == (6, 2)


def test_a_failed_calculation_leaves_no_result(cluster8):
    """Regression: after a failed calculation the previous expansion looked current."""
    calc = BodyOrderCalculator(hydrogen_demo_model(), max_order=2, stride=1)
    cluster8.calc = calc
    cluster8.get_potential_energy()
    assert calc.body_order is not None
    broken = cluster8.copy()
    broken.positions[1] = broken.positions[0] + [0.05, 0.0, 0.0]  # overlapping atoms
    broken.calc = calc
    with pytest.raises(BodyOrderError):
        broken.get_potential_energy()
    assert calc.body_order is None
    with pytest.raises(BodyOrderError):
        store_body_order_results(broken)


def test_asking_for_the_expansion_later_reuses_the_model_result(cluster8):
    model = hydrogen_demo_model()
    calls = []
    whole_structure = model.system
    model.system = lambda *args, **kwargs: calls.append(1) or whole_structure(*args, **kwargs)
    calc = BodyOrderCalculator(model, max_order=2, stride=0)
    cluster8.calc = calc
    energy = cluster8.get_potential_energy()
    assert len(calls) == 1
    orders = calc.get_property("body_order_energies", cluster8)
    assert len(calls) == 1  # only the expansion was computed
    assert calc.n_structures == 1  # and it did not count as another structure
    assert cluster8.get_potential_energy() == energy
    np.testing.assert_allclose(orders, decompose(cluster8, model, max_order=2).energies_eV)


@pytest.mark.parametrize("change", [{"max_order": 9}, {"max_memory_GiB": 1e-9}])
def test_a_failed_calculation_on_the_same_structure_leaves_no_result(cluster8, change):
    """The expansion is dropped when a calculation starts: a calculation of the *same*
    structure that fails (settings it cannot meet) leaves no result to read or store,
    although the structure check alone would take the earlier one as current."""
    calc = BodyOrderCalculator(hydrogen_demo_model(), max_order=2, stride=1)
    cluster8.calc = calc
    cluster8.get_potential_energy()
    assert calc.body_order is not None
    calc.set(**change)
    with pytest.raises(BodyOrderError):
        cluster8.get_potential_energy()
    assert calc.body_order is None
    with pytest.raises(BodyOrderError, match="no current body-order result"):
        store_body_order_results(cluster8)
    assert "body_order_energies" not in cluster8.info


def test_the_calculator_holds_one_expansion_settings_object(cluster8):
    from ase_bodyorder import ExpansionSettings

    settings = ExpansionSettings(order=2, stride=2)
    calc = BodyOrderCalculator(hydrogen_demo_model(), settings=settings, sample_atoms=4)
    assert calc.settings == settings.replace(sample_atoms=4)
    assert calc.parameters["max_order"] == 2 and calc.parameters["sample_atoms"] == 4
    cluster8.calc = calc
    body = calc.get_property("body_order_energies", cluster8)
    assert body.shape == (2,) and calc.body_order.sample_size == 4
    calc.set(sample_atoms=None, max_order=3)
    assert calc.settings.order == 3 and calc.settings.sample_atoms is None
    # order None: the full expansion of a cluster, as decompose's default
    full = BodyOrderCalculator(hydrogen_demo_model(), settings=ExpansionSettings())
    cluster8.calc = full
    assert full.get_property("body_order_energies", cluster8).shape == (8,)
    # one validation, one line naming the setting
    with pytest.raises(BodyOrderError, match="precision must be"):
        BodyOrderCalculator(hydrogen_demo_model(), precision="float16")
    with pytest.raises(BodyOrderError, match="unknown expansion setting"):
        calc.set(max_ordr=3)
    assert calc.settings.order == 3  # a refused change leaves the settings as they were


def test_decompose_takes_the_same_settings_object(periodic_h):
    from ase_bodyorder import ExpansionSettings, decompose

    model = hydrogen_demo_model()
    settings = ExpansionSettings(order=3, r_mbe=2.0, sample_atoms=2, seed=5)
    by_settings = decompose(periodic_h, model, settings=settings)
    by_keywords = decompose(periodic_h, model, max_order=3, r_mbe=2.0, sample_atoms=2, seed=5)
    np.testing.assert_array_equal(by_settings.energies_eV, by_keywords.energies_eV)
    np.testing.assert_array_equal(by_settings.sample_indices, by_keywords.sample_indices)
    with pytest.raises(BodyOrderError, match="not both: max_order"):
        decompose(periodic_h, model, max_order=3, settings=settings)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_order": 0},
        {"r_mbe": -1.0},
        {"stride": -1},
        {"sample_atoms": 2.5},
        {"sample_seed": -1},
        {"precision": "float16"},
        {"max_roundoff_eV": float("nan")},
    ],
)
def test_set_checks_as_init_does_and_a_refused_change_changes_nothing(cluster8, bad):
    """calc.set(...) refuses what the constructor refuses, with the same one line naming
    the parameter as the calculator calls it, and leaves the calculator as it was: the
    same parameters, settings and sequence of samples."""
    model = hydrogen_demo_model()
    with pytest.raises(BodyOrderError) as at_init:
        BodyOrderCalculator(model, **bad)
    (name,) = bad
    assert str(at_init.value).startswith(f"{name} must be ")
    assert "\n" not in str(at_init.value)
    calc = BodyOrderCalculator(model, max_order=3, sample_atoms=3, sample_seed=4, stride=1)
    before, settings = dict(calc.parameters), calc.settings
    with pytest.raises(BodyOrderError) as at_set:
        calc.set(**bad)
    assert str(at_set.value) == str(at_init.value)
    assert dict(calc.parameters) == before and calc.settings is settings
    # the calculator goes on as one that was never asked
    fresh = BodyOrderCalculator(model, max_order=3, sample_atoms=3, sample_seed=4, stride=1)
    for c in (calc, fresh):
        c.get_potential_energy(cluster8)
    assert calc.body_order.sample_seed == fresh.body_order.sample_seed
    np.testing.assert_array_equal(calc.body_order.energies_eV, fresh.body_order.energies_eV)


def test_set_refuses_combinations_and_names_as_init_does(cluster8):
    from ase_bodyorder import ExpansionSettings

    model = hydrogen_demo_model()
    calc = BodyOrderCalculator(model, max_order=2, sample_atoms=3)
    before = dict(calc.parameters)
    with pytest.raises(BodyOrderError, match="cannot be combined") as at_set:
        calc.set(body_order_forces=True)
    with pytest.raises(BodyOrderError) as at_init:
        BodyOrderCalculator(model, max_order=2, sample_atoms=3, body_order_forces=True)
    assert str(at_set.value) == str(at_init.value)
    # the settings' own name of a renamed parameter is no calculator parameter
    with pytest.raises(BodyOrderError, match="'order'.*order is called max_order"):
        calc.set(order=3)
    with pytest.raises(BodyOrderError, match="settings must be ExpansionSettings"):
        calc.set(settings={"order": 3})
    assert dict(calc.parameters) == before
    # settings as one object, as in __init__: keywords given with them replace values
    calc.set(settings=ExpansionSettings(order=3, stride=2), max_order=4)
    assert calc.settings == ExpansionSettings(order=4, stride=2)
    assert calc.parameters["max_order"] == 4 and calc.parameters["sample_atoms"] is None
