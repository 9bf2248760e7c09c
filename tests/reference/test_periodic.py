"""Periodic dense-hydrogen reference: sampling, DFT energies and forces, export."""

import json
import math

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.units import Bohr

from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.reference.periodic import (
    DenseBulk,
    PeriodicDFT,
    compute_periodic,
    export_bulk,
    read_results,
    sample_bulk,
)

pytest.importorskip("pyscf")


def _min_distance(atoms):
    d = atoms.get_all_distances(mic=True)
    return d[np.triu_indices(len(atoms), 1)].min()


def test_sampling_is_reproducible_and_follows_the_protocol():
    protocol = DenseBulk(n_atoms=16, rs_bohr=(1.5, 1.8), min_distance=0.6)
    cells = sample_bulk(protocol, 12, seed=5)
    again = sample_bulk(protocol, 12, seed=5)
    assert {a.info["kind"] for a in cells} == {"bcc", "random"}
    for a, b in zip(cells, again, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        rs = a.info["rs_bohr"]
        assert 1.5 <= rs <= 1.8
        # the density is the one of the drawn Wigner-Seitz radius
        assert math.isclose(a.get_volume(), 16 * 4 / 3 * math.pi * (rs * Bohr) ** 3)
        assert a.pbc.all() and len(a) == 16
        assert _min_distance(a) >= 0.6
    assert not np.allclose(cells[0].positions, sample_bulk(protocol, 1, seed=6)[0].positions)


def test_bcc_cells_need_two_m_cubed_atoms():
    with pytest.raises(BodyOrderError, match="2 m"):
        DenseBulk(n_atoms=12)


def _two_atom_cell():
    atoms = bulk("H", "bcc", a=1.9, cubic=True)
    atoms.positions[1] += [0.12, -0.05, 0.08]
    return atoms


def test_forces_are_the_gradient_of_the_free_energy():
    """Analytic forces against central differences of the Mermin free energy."""
    settings = PeriodicDFT(ke_cutoff_hartree=40.0, conv_tol_hartree=1e-11)
    atoms = _two_atom_cell()
    record = compute_periodic(atoms, settings)
    forces = np.asarray(record["forces_eV_per_A"])
    # no translation check: the real-space grid breaks translation invariance slightly
    # (an "egg-box" net force, ~0.02 eV/A here); the forces are the gradient of the
    # gridded energy, which is what training needs
    h = 1e-3
    for axis in range(3):
        shifted = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[1, axis] += sign * h
            shifted.append(compute_periodic(moved, settings)["energy_eV"])
        numeric = -(shifted[0] - shifted[1]) / (2 * h)
        assert abs(numeric - forces[1, axis]) < 2e-3 * max(1.0, abs(numeric))


def test_isolated_atom_energy_is_the_shipped_baseline():
    from ase_bodyorder.reference.periodic import isolated_atom_energy
    from ase_bodyorder.training.shipped import H_ATOM_LDA_GTH_EV

    assert isolated_atom_energy() == pytest.approx(H_ATOM_LDA_GTH_EV, abs=1e-5)


def test_bad_cells_are_refused():
    with pytest.raises(BodyOrderError, match="periodic in all three"):
        compute_periodic(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]))
    odd = Atoms("H3", positions=np.eye(3), cell=[3, 3, 3], pbc=True)
    with pytest.raises(BodyOrderError, match="even"):
        compute_periodic(odd)


def test_export_keeps_successes_and_lists_failures(tmp_path):
    cells = sample_bulk(DenseBulk(), 10, seed=1)
    records = {}
    for a in cells:
        i = int(a.info["index"])
        if i == 3:
            records[i] = {"index": i, "error": "SCF did not converge"}
        else:
            records[i] = {
                "index": i,
                "energy_eV": -14.0 * len(a) + i,
                "forces_eV_per_A": np.full((len(a), 3), 0.1 * i).tolist(),
                "error": None,
            }
    meta = export_bulk(cells, records, "toy", tmp_path, split_seed=0)
    assert meta["missing"] == [3]
    frames = [
        f
        for part in ("train", "validation", "test")
        for f in ase.io.read(tmp_path / f"toy_{part}.xyz", ":")
    ]
    assert sorted(f.info["index"] for f in frames) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    for frame in frames:
        i = frame.info["index"]
        assert frame.pbc.all()
        np.testing.assert_allclose(frame.cell.array, cells[i].cell.array)
        assert frame.get_potential_energy() == pytest.approx(-14.0 * 16 + i)
        np.testing.assert_allclose(frame.get_forces(), 0.1 * i)
    assert json.loads((tmp_path / "toy_split.json").read_text())["missing"] == [3]


def test_results_file_survives_a_cut_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"index": 0, "energy_eV": -1.0, "error": null}\n{"index": 1, "ene')
    assert list(read_results(path)) == [0]
