"""Bad input gets a clear, specific error."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from ase_bodyorder import (
    BodyOrderError,
    PlanTooLargeError,
    SpeciesError,
    StructureError,
    decompose,
    load_model,
)
from ase_bodyorder.models import ASECalculatorModel, hydrogen_demo_model


@pytest.fixture
def model():
    return hydrogen_demo_model()


def test_unknown_species(model):
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.9, 0, 0], [0, 1.5, 0]])
    with pytest.raises(SpeciesError, match="does not know element.* O; it knows H"):
        decompose(atoms, model, max_order=2)


def test_empty_structure(model):
    with pytest.raises(StructureError, match="empty"):
        decompose(Atoms(), model, max_order=1)


def test_nan_positions(model):
    atoms = Atoms("H3", positions=[[0, 0, 0], [np.nan, 0, 0], [0, 1, 0]])
    with pytest.raises(StructureError, match=r"atom\(s\) \[1\] are not finite"):
        decompose(atoms, model, max_order=2)


def test_overlapping_atoms(model):
    atoms = Atoms("H3", positions=[[0, 0, 0], [0.1, 0, 0], [0, 1, 0]])
    with pytest.raises(StructureError, match="atoms 0 and 1 overlap: 0.1000 Angstrom"):
        decompose(atoms, model, max_order=2)


def test_order_larger_than_the_system(model):
    atoms = Atoms("H3", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    with pytest.raises(BodyOrderError, match="max_order=4 is larger than the system"):
        decompose(atoms, model, max_order=4)
    with pytest.raises(BodyOrderError, match="positive integer"):
        decompose(atoms, model, max_order=0)


def test_plan_over_budget(model):
    rng = np.random.default_rng(0)
    atoms = Atoms("H14", positions=rng.uniform(0, 3, (14, 3)))
    atoms.positions = np.array([[k * 0.8, (k % 3) * 0.7, 0] for k in range(14)])
    with pytest.raises(PlanTooLargeError, match=r"needs \d+ distinct sub-clusters.*raise max_sub"):
        decompose(atoms, model, max_order=14, max_subclusters=1000, screening=False)


def test_periodic_budget_refused_before_enumeration(model):
    atoms = bulk("H", "bcc", a=2.0, cubic=True).repeat(4)
    with pytest.raises(PlanTooLargeError, match="max_subclusters=10000"):
        decompose(atoms, model, max_order=4, r_mbe=3.5, max_subclusters=10_000)


def test_cell_too_small(model):
    atoms = bulk("H", "bcc", a=2.0, cubic=True)
    with pytest.raises(StructureError, match="cell is too small for r_mbe=3.0.*supercell"):
        decompose(atoms, model, max_order=2, r_mbe=3.0)


def test_periodic_needs_r_mbe(model):
    atoms = bulk("H", "bcc", a=2.0, cubic=True).repeat(2)
    with pytest.raises(BodyOrderError, match="needs r_mbe"):
        decompose(atoms, model, max_order=2)


def test_total_energy_model_refuses_periodic_systems():
    from ase.calculators.lj import LennardJones

    atoms = bulk("H", "bcc", a=2.0, cubic=True).repeat(2)
    with pytest.raises(BodyOrderError, match="isolated cluster"):
        decompose(atoms, ASECalculatorModel(LennardJones()), max_order=2, r_mbe=1.5)


def test_unknown_model_name():
    with pytest.raises(BodyOrderError, match="unknown model 'pet-h9'; available models: "):
        load_model("pet-h9")


def test_decompose_and_calculator_take_a_model_spec(tmp_path):
    """Regression (issue 35 tour): ``decompose(atoms, "h-morse-atm")`` raised
    AttributeError ('str' object has no attribute 'check_species'); a spec is resolved
    as in every other door, and anything that is neither a model nor a spec is one line."""
    from pathlib import Path

    from ase_bodyorder import BodyOrderCalculator

    atoms = Atoms("H3", positions=[[0, 0, 0], [0.9, 0, 0], [0.3, 0.8, 0]])
    by_name = decompose(atoms, "h-morse-atm")
    by_model = decompose(atoms, load_model("h-morse-atm"))
    np.testing.assert_array_equal(by_name.energies_eV, by_model.energies_eV)
    assert abs(by_name.energies_eV[2]) > 0  # the ATM triple term is there
    for bad in (3, None, [1]):
        with pytest.raises(
            BodyOrderError, match="a model is an ase_bodyorder Model or a model spec"
        ):
            decompose(atoms, bad)
        with pytest.raises(
            BodyOrderError, match="a model is an ase_bodyorder Model or a model spec"
        ):
            BodyOrderCalculator(model=bad)
    missing = Path(tmp_path) / "missing.model"
    with pytest.raises(BodyOrderError, match="missing.model"):
        decompose(atoms, missing)
    with pytest.raises(BodyOrderError, match="missing.model"):
        BodyOrderCalculator(model=missing)
