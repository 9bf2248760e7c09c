"""The hydrogen samplers of ``ase_bodyorder.structures`` reproduce every shipped structure.

The samplers moved here from ``reference/clusters.py``, ``reference/periodic.py``,
``ipi/cases.py`` and ``tests/helpers.py``; the shipped files (written by the old code)
are the reference: the same parameters and seeds must give the same positions.
"""

import json
import math
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.units import Bohr

import ase_bodyorder
from ase_bodyorder import structures
from ase_bodyorder.structures import (
    DenseBulk,
    HighDensity,
    LowDensity,
    cubic_box_length,
    density_g_cm3,
    number_density_per_A3,
    random_cluster,
    rs_bohr_from_density_g_cm3,
    rs_bohr_from_number_density,
    sample_bulk,
    sample_clusters,
)

PACKAGE = Path(ase_bodyorder.__file__).parent
REFERENCE = PACKAGE / "data" / "reference"
EXAMPLES = PACKAGE / "data" / "examples"
MD_INPUTS = PACKAGE.parent / "md_inputs"
#: extxyz writes positions with 8 decimals
TEXT_ATOL_A = 1e-8


def _assert_same_frames(sampled, shipped):
    assert len(sampled) == len(shipped)
    for new, old in zip(sampled, shipped, strict=True):
        assert new.get_chemical_symbols() == old.get_chemical_symbols()
        np.testing.assert_allclose(new.positions, old.positions, rtol=0, atol=TEXT_ATOL_A)
        np.testing.assert_allclose(new.cell.array, old.cell.array, rtol=0, atol=1e-12)
        assert (new.pbc == old.pbc).all()


def _provenance():
    return json.loads((REFERENCE / "provenance.json").read_text())


@pytest.mark.parametrize("name", ["h8-high", "h8-low"])
def test_reference_cluster_sets_are_reproduced(name):
    from ase_bodyorder.data.reference.regenerate import DATASETS, N_CLUSTERS

    protocol, seed = DATASETS[name]
    recorded = _provenance()["datasets"][name]
    assert (type(protocol).__name__, seed, N_CLUSTERS) == (
        recorded["protocol"],
        recorded["seed"],
        recorded["count"],
    )
    assert vars(protocol) == recorded["parameters"]
    sampled = sample_clusters(protocol, N_CLUSTERS, seed)
    _assert_same_frames(sampled, ase.io.read(REFERENCE / f"{name}_clusters.xyz", ":"))


@pytest.mark.parametrize("name", ["h12-high", "h12-low"])
def test_transfer_cluster_sets_are_reproduced(name):
    from ase_bodyorder.data.reference.regenerate import N_TRANSFER, TRANSFER

    protocol, seed = TRANSFER[name]
    recorded = _provenance()["transfer_sets"][name]
    assert (type(protocol).__name__, seed) == (recorded["protocol"], recorded["seed"])
    sampled = sample_clusters(protocol, N_TRANSFER, seed)
    _assert_same_frames(sampled, ase.io.read(REFERENCE / f"{name}_clusters.xyz", ":"))


def test_example_clusters_are_reproduced():
    from ase_bodyorder.data.examples.regenerate import EXAMPLES as GENERATED

    for name, (protocol, seed) in GENERATED.items():
        recorded = json.loads((EXAMPLES / f"{name}.provenance.json").read_text())
        assert recorded["seed"] == seed and recorded["protocol"] == type(protocol).__name__
        _assert_same_frames(sample_clusters(protocol, 1, seed), [ase.io.read(EXAMPLES / name)])


def test_periodic_training_cells_are_reproduced():
    """Every exported cell of ``hbulk-high`` is the cell of its index, sampled again."""
    recorded = _provenance()["bulk_sets"]["hbulk-high"]
    parameters = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in recorded["parameters"].items()
    }
    cells = sample_bulk(DenseBulk(**parameters), recorded["count"], recorded["seed"])
    shipped = [
        frame
        for part in ("train", "validation", "test")
        for frame in ase.io.read(REFERENCE / f"hbulk-high_{part}.xyz", ":")
    ]
    split = json.loads((REFERENCE / "hbulk-high_split.json").read_text())
    assert len(shipped) == recorded["count"] - len(split["missing"])
    for frame in shipped:
        cell = cells[frame.info["index"]]
        _assert_same_frames([cell], [frame])
        assert cell.info["kind"] == frame.info["kind"]
        assert cell.info["rs_bohr"] == pytest.approx(frame.info["rs_bohr"], rel=1e-15)


def test_md_model_cells_and_fragments_are_reproduced():
    """``hcells``: every shipped cell is the cell of its index sampled again; every
    fragment is cut from its parent cell (its atoms, periodic images allowed) and is in
    the parent's part of the split; no cell is in two parts."""
    from ase_bodyorder.structures import CrossoverBulk, sample_crossover_bulk

    recorded = _provenance()["bulk_sets"]["hcells"]
    parameters = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in recorded["parameters"].items()
    }
    cells = sample_crossover_bulk(CrossoverBulk(**parameters), recorded["count"], recorded["seed"])
    part_of_cell: dict[int, str] = {}
    fragments = []
    for part in ("train", "validation", "test"):
        for frame in ase.io.read(REFERENCE / f"hcells_{part}.xyz", ":"):
            if frame.info["structure"] == "cell":
                assert frame.info["index"] not in part_of_cell
                part_of_cell[frame.info["index"]] = part
                cell = cells[frame.info["index"]]
                _assert_same_frames([cell], [frame])
                assert cell.info["rs_bohr"] == pytest.approx(frame.info["rs_bohr"], rel=1e-15)
            else:
                fragments.append((part, frame))
    assert len(part_of_cell) == recorded["cells_done"]
    # the records that a fresh machine resumes from hold the shipped cells' labels (and
    # cells computed after the set was exported)
    records = {}
    for line in (REFERENCE / "hcells_cells.jsonl").read_text().splitlines():
        record = json.loads(line)
        records[record["index"]] = record
    assert set(part_of_cell) <= set(records)
    for part in ("train", "test"):
        for frame in ase.io.read(REFERENCE / f"hcells_{part}.xyz", ":"):
            if frame.info["structure"] == "cell":
                record = records[frame.info["index"]]
                assert frame.get_potential_energy() == pytest.approx(record["energy_eV"], abs=1e-8)
                assert np.allclose(frame.get_forces(), record["forces_eV_per_A"], atol=1e-8)
    assert {len(f) for _, f in fragments} == {1, 2, 3, 4}
    for part, fragment in fragments:
        parent = fragment.info["parent"]
        if parent == -1:
            continue
        if parent in part_of_cell:
            assert part_of_cell[parent] == part
        cell = cells[parent]
        indices = [int(i) for i in str(fragment.info["label"]).split("-")]
        inverse = np.linalg.inv(np.asarray(cell.cell))
        for index, position in zip(indices, fragment.positions, strict=True):
            shift = (position - cell.positions[index]) @ inverse  # whole lattice vectors
            assert np.abs(shift - np.round(shift)).max() < 1e-6


@pytest.mark.skipif(not MD_INPUTS.is_dir(), reason="md_inputs/ is not in this checkout")
def test_md_starting_structures_are_reproduced():
    from ase_bodyorder.ipi.cases import CASES, STRUCTURE_FILE

    for name, case in CASES.items():
        shipped = ase.io.read(MD_INPUTS / name / STRUCTURE_FILE)
        _assert_same_frames([case.structure()], [shipped])
        recorded = json.loads((MD_INPUTS / name / "case.json").read_text())
        assert round(density_g_cm3(case.rs_bohr), 6) == recorded["density_g_cm3"]


def test_random_test_cluster_is_unchanged():
    """``random_cluster`` (formerly in tests/helpers.py): positions it gave before the move."""
    expected = np.array(
        [
            [-1.0495891857506903, -0.2135379306044936, -0.07656752030213756],
            [0.44221233087287587, -0.33764762519328667, -0.916410516222392],
            [-0.33599302679790694, 0.06386401480324926, 0.19654026843605857],
            [1.1535135736831945, 0.26678554930013004, -0.5338639164686768],
        ]
    )
    # to round-off: the same draws give positions 1 ulp apart on other CPUs (numpy's norm
    # uses the machine's SIMD kernels; seen on an AMD EPYC against the recorded values)
    np.testing.assert_allclose(random_cluster(4, seed=21).positions, expected, rtol=0, atol=1e-12)


def test_the_old_modules_give_the_moved_samplers():
    from ase_bodyorder import reference
    from ase_bodyorder.ipi import cases
    from ase_bodyorder.reference import clusters, periodic

    assert reference.sample_clusters is clusters.sample_clusters is structures.sample_clusters
    assert clusters.HighDensity is HighDensity and clusters.LowDensity is LowDensity
    assert periodic.DenseBulk is DenseBulk and periodic.sample_bulk is sample_bulk
    for name in ("bcc_repeat", "cubic_box_length", "density_g_cm3", "rattled_bcc"):
        assert getattr(cases, name) is getattr(structures, name)
    assert cases.molecular_hydrogen is structures.molecular_hydrogen


@pytest.mark.parametrize("rs_bohr", [1.2, 1.6, 3.0, 3.5])
def test_density_conversions_agree(rs_bohr):
    n = number_density_per_A3(rs_bohr)
    # a cubic box of N atoms at rs holds N / n Angstrom^3
    assert cubic_box_length(64, rs_bohr) ** 3 == pytest.approx(64 / n, rel=1e-12)
    assert 4 / 3 * math.pi * (rs_bohr * Bohr) ** 3 == pytest.approx(1 / n, rel=1e-12)
    assert rs_bohr_from_number_density(n) == pytest.approx(rs_bohr, rel=1e-12)
    assert rs_bohr_from_density_g_cm3(density_g_cm3(rs_bohr)) == pytest.approx(rs_bohr, rel=1e-12)
    # mass density = number density x the mass of an H atom (ASE: 1.008 u)
    assert density_g_cm3(rs_bohr) == pytest.approx(n * 1e24 * 1.008 * 1.66053906660e-24)
    assert HighDensity(n_atoms=8, rs_bohr=rs_bohr).sphere_radius ** 3 == pytest.approx(
        3 / (4 * math.pi) * 8 / n, rel=1e-12
    )


def test_samplers_refuse_impossible_requests():
    from ase_bodyorder.expansion import BodyOrderError

    with pytest.raises(BodyOrderError, match="even"):
        sample_clusters(LowDensity(n_atoms=7), 1, 0)
    with pytest.raises(BodyOrderError, match="2 m"):
        DenseBulk(n_atoms=12)
    with pytest.raises(BodyOrderError, match="even"):
        structures.bcc_repeat(7)


def test_crossover_cells_span_molecular_to_atomic_reproducibly():
    import math

    from ase.units import Bohr

    from ase_bodyorder.structures import CrossoverBulk, sample_crossover_bulk

    protocol = CrossoverBulk()
    cells = sample_crossover_bulk(protocol, 60, seed=4)
    again = sample_crossover_bulk(protocol, 60, seed=4)
    for a, b in zip(cells, again, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
    kinds = {a.info["kind"] for a in cells}
    assert kinds == {"bcc", "random", "molecular"}
    for atoms in cells:
        rs = atoms.info["rs_bohr"]
        assert 1.4 <= rs <= 3.0 and len(atoms) == 16
        assert math.isclose(atoms.get_volume(), 16 * 4 / 3 * math.pi * (rs * Bohr) ** 3)
        if atoms.info["kind"] == "molecular":
            assert rs > protocol.molecular_rs_bohr[0]
            d = atoms.get_all_distances(mic=True)
            # each atom's nearest neighbour is its molecule partner, at a bond length
            np.fill_diagonal(d, np.inf)
            assert d.min(axis=1).max() < 0.74 + 5 * 0.05
        else:
            assert rs < protocol.molecular_rs_bohr[1]
    assert protocol.molecular_probability(1.5) == 0 and protocol.molecular_probability(2.9) == 1


def test_cell_fragments_are_neighbours_of_a_centre_with_their_images():
    from ase.build import bulk

    from ase_bodyorder.structures import cell_fragments

    cell = bulk("H", "bcc", a=2.0, cubic=True).repeat(2)
    cell.rattle(0.05, seed=1)
    cell.info.update(index=3, rs_bohr=1.5, kind="bcc")
    fragments = cell_fragments([cell], (1, 2, 3, 4), 40, 2.1, seed=5)
    assert len(fragments[0]) == 1 and sum(len(f) == 1 for f in fragments) == 1
    assert {len(f) for f in fragments[1:]} == {2, 3, 4}
    for fragment in fragments[1:]:
        assert not fragment.pbc.any() and fragment.info["parent"] == 3
        centre = fragment.positions[0]
        assert np.linalg.norm(fragment.positions - centre, axis=1).max() <= 2.1 + 1e-9
        assert fragment.info["kind"] == "bcc"
    again = cell_fragments([cell], (1, 2, 3, 4), 40, 2.1, seed=5)
    labels = [f.info.get("label") for f in fragments]
    assert [f.info.get("label") for f in again] == labels and len(set(labels)) > 20
