"""The universal-MLIP study's model step with SevenNet-0 (runs in .venv-universal)."""

import warnings

import numpy as np
import pytest
from ase import Atoms

from ase_bodyorder import resolve_model
from ase_bodyorder.reference.universal import DIMER_DISTANCES_A, MAX_ORDER, load_clusters
from ase_bodyorder.study.universal import evaluate_model

pytest.importorskip(
    "sevenn",
    reason="sevenn lives in .venv-universal (make universal-env); make test runs these there",
)

pytestmark = pytest.mark.slow  # loading SevenNet-0 takes 5-20 s


@pytest.fixture(scope="module")
def sevennet_0():
    with warnings.catch_warnings():  # sevenn scripts modules at import (torch.jit)
        warnings.simplefilter("ignore", DeprecationWarning)
        return resolve_model("7net-0")


def test_model_expansion_adds_up_and_dimers_are_binding_energies(sevennet_0):
    result = evaluate_model("7net-0", sevennet_0, names=["li6"], count=2)
    assert list(result["sets"]) == ["li6"] and result["max_order"] == MAX_ORDER
    atom = result["atom_eV"]["Li"]
    assert atom == pytest.approx(float(sevennet_0.system(Atoms("Li"), forces=False).energy))
    clusters = load_clusters("li6", 2)
    for row, atoms in zip(result["sets"]["li6"], clusters, strict=True):
        assert row["cluster"] == atoms.info["index"]
        terms = np.array(row["energies_eV"])
        assert len(terms) == MAX_ORDER
        # E^(1) is the model's own atom energy; orders and residual add up to its total
        assert terms[0] == pytest.approx(len(atoms) * atom, abs=1e-4)
        total = float(sevennet_0.system(atoms, forces=False).energy)
        assert row["total_energy_eV"] == pytest.approx(total, abs=1e-4)
        assert terms.sum() + row["residual_eV"] == pytest.approx(total, abs=1e-4)
    curve = result["dimers"]["Li"]
    assert curve["distances_A"] == list(DIMER_DISTANCES_A["Li"])
    d = curve["distances_A"][3]
    dimer = Atoms("Li2", positions=[[0, 0, 0], [0, 0, d]])
    expected = float(sevennet_0.system(dimer, forces=False).energy) - 2 * atom
    assert curve["binding_eV"][3] == pytest.approx(expected, abs=1e-5)


def test_shipped_model_results_are_reproduced(sevennet_0):
    """reports/universal/models/7net-0.json (what the report reads) against SevenNet-0
    evaluated again on the first lithium cluster, its atom and its dimer curve."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "reports" / "universal" / "models" / "7net-0.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: ase-bodyorder study universal models --models 7net-0")
    shipped = json.loads(path.read_text())
    again = evaluate_model("7net-0", sevennet_0, names=["li6"], count=1)
    first = shipped["sets"]["li6"][0]
    assert again["sets"]["li6"][0]["cluster"] == first["cluster"]
    assert again["sets"]["li6"][0]["energies_eV"] == pytest.approx(first["energies_eV"], abs=1e-4)
    assert again["atom_eV"]["Li"] == pytest.approx(shipped["atom_eV"]["Li"], abs=1e-5)
    assert again["dimers"]["Li"]["binding_eV"] == pytest.approx(
        shipped["dimers"]["Li"]["binding_eV"], abs=1e-4
    )
