"""The PBE reference of the universal-MLIP study (issue 32): the all-electron cluster
calculation against pyscf called directly, the samplers' stated density and minimum
distance, and the assembly of the truncated expansion."""

from __future__ import annotations

import numpy as np
import pytest
from ase.units import Hartree

from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.reference.molecular import MolecularDFT, compute_molecular
from ase_bodyorder.reference.universal import (
    DATASETS,
    MAX_ORDER,
    _cluster_jobs,
    cluster_expansion,
    dimer_curve,
    dimer_jobs,
    expansion_jobs,
    load_clusters,
    ordered_jobs,
)
from ase_bodyorder.structures import ElementClusters, sample_element_clusters

FAST = MolecularDFT(basis="def2-svp", grid_level=2, conv_tol_hartree=1e-8)


def _plain_pyscf(positions, two_s: int, restricted: bool, settings=FAST, dm0=None) -> float:
    """Energy (Hartree) of a hydrogen cluster by pyscf alone (no code of ours)."""
    from pyscf import dft, gto

    mol = gto.M(
        atom=[("H", tuple(p)) for p in positions],
        basis=settings.basis,
        spin=two_s,
        unit="Angstrom",
        verbose=0,
    )
    mf = dft.RKS(mol) if restricted else dft.UKS(mol)
    mf.xc = "pbe"
    mf.grids.level = settings.grid_level
    mf.conv_tol = 1e-10
    mf.max_cycle = 300
    mf.kernel(dm0=dm0)
    assert mf.converged
    return float(mf.e_tot)


@pytest.mark.slow
def test_hydrogen_atom_and_bound_dimer_match_pyscf_directly():
    atom = compute_molecular([1], [[0, 0, 0]], FAST)
    assert atom["two_s"] == 1 and atom["solution"] == "uks"
    assert atom["energy_Ha"] == pytest.approx(_plain_pyscf([[0, 0, 0]], 1, False), abs=1e-7)
    assert atom["energy_eV"] == pytest.approx(atom["energy_Ha"] * Hartree, rel=1e-14)
    dimer = compute_molecular([1, 1], [[0, 0, 0], [0, 0, 0.74]], FAST)
    closed = _plain_pyscf([[0, 0, 0], [0, 0, 0.74]], 0, True)
    # at equilibrium the closed shell is the ground state; no start goes below it
    assert dimer["energy_Ha"] == pytest.approx(closed, abs=1e-7)
    assert dimer["spin_square"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_stretched_dimer_dissociates_into_free_atoms():
    """The spin policy's broken-symmetry start: E(H2, 3 A) - 2 E(H) -> 0 (the closed
    shell stays about 1 eV above, as pyscf's RKS shows)."""
    atom = compute_molecular([1], [[0, 0, 0]], FAST)["energy_Ha"]
    positions = [[0, 0, 0], [0, 0, 3.0]]
    dimer = compute_molecular([1, 1], positions, FAST)
    binding_eV = (dimer["energy_Ha"] - 2 * atom) * Hartree
    assert abs(binding_eV) < 0.03  # PBE: -14 meV at 3 Angstrom
    assert dimer["solution"] in ("uks-broken-symmetry", "uks-localized")
    assert (_plain_pyscf(positions, 0, True) - 2 * atom) * Hartree > 0.5


@pytest.mark.slow
def test_ground_policy_finds_the_triplet_carbon_atom():
    settings = MolecularDFT(basis="sto-3g", grid_level=1, spin_policy="ground")
    record = compute_molecular([6], [[0, 0, 0]], settings)
    assert record["two_s"] == 2
    assert set(record["candidate_energies_Ha"]) == {"0", "2"}
    assert record["candidate_energies_Ha"]["2"] < record["candidate_energies_Ha"]["0"]
    lowest = compute_molecular([6], [[0, 0, 0]], MolecularDFT(basis="sto-3g", grid_level=1))
    assert lowest["two_s"] == 0 and lowest["energy_Ha"] > record["energy_Ha"]


def test_bad_settings_and_inputs_are_one_line_errors():
    with pytest.raises(BodyOrderError, match="spin policy"):
        MolecularDFT(spin_policy="highest")
    with pytest.raises(BodyOrderError, match="even number"):
        MolecularDFT(max_two_s_above_lowest=1)
    with pytest.raises(BodyOrderError, match="periodic cell"):
        FAST.run([1], [[0, 0, 0]], cell=np.eye(3) * 5)
    with pytest.raises(BodyOrderError, match="chemical symbol"):
        ElementClusters("Xx", 6, 0.05, 2.0)


@pytest.mark.parametrize("name", ["li6", "c6"])
def test_samplers_keep_their_stated_density_and_minimum_distance(name):
    protocol = DATASETS[name].sampler
    clusters = sample_element_clusters(protocol, 10, DATASETS[name].seed)
    radius = (3 * protocol.n_atoms / (4 * np.pi * protocol.density_per_A3)) ** (1 / 3)
    assert protocol.sphere_radius == pytest.approx(radius)
    for atoms in clusters:
        assert atoms.get_chemical_symbols() == [protocol.element] * protocol.n_atoms
        d = atoms.get_all_distances()[np.triu_indices(protocol.n_atoms, 1)]
        assert d.min() >= protocol.min_distance
        # centred on their mean, inside a sphere of twice the radius around it
        assert np.abs(atoms.positions.mean(0)).max() < 1e-12
        assert np.linalg.norm(atoms.positions, axis=1).max() <= 2 * radius
    again = sample_element_clusters(protocol, 10, DATASETS[name].seed)
    assert all(
        np.array_equal(a.positions, b.positions) for a, b in zip(clusters, again, strict=True)
    )
    assert not np.allclose(
        clusters[0].positions, sample_element_clusters(protocol, 1, 1)[0].positions
    )


@pytest.mark.slow
def test_h8_sets_are_the_shipped_mbe_clusters():
    import json
    from pathlib import Path

    import ase_bodyorder

    data = Path(ase_bodyorder.__file__).parent / "data" / "reference"
    for name in ("h8-high", "h8-low"):
        clusters = load_clusters(name, 3)
        shipped = json.loads((data / f"{name}_mbe_fci_sto6g.json").read_text())["clusters"]
        assert [int(a.info["index"]) for a in clusters] == [r["cluster"] for r in shipped[:3]]


def _pair_records(atoms, dataset, calc, pair_eV, atom_eV):
    """Records of a pure pair potential for every job of one cluster (by content key)."""
    records = {}
    for job in _cluster_jobs(atoms, dataset, calc, MAX_ORDER):
        positions = np.asarray(job.positions)
        d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
        energy = len(positions) * atom_eV + sum(
            pair_eV(d[i, j]) for i in range(len(d)) for j in range(i)
        )
        records[job.content_key] = {"energy_Ha": energy / Hartree, "two_s": 0}
    return records


def test_assembly_of_a_pair_potential_has_no_many_body_terms():
    """The oracle of docs/science.md section 6 through the reference's own assembly."""
    atoms = load_clusters("c6", 1)[0]
    calc = DATASETS["c6"].calculation

    def morse(r):
        return 2.0 * (1 - np.exp(-1.5 * (r - 1.4))) ** 2 - 2.0

    records = _pair_records(atoms, "c6", calc, morse, -1027.0)
    result = cluster_expansion(records, atoms, "c6", calc)
    d = atoms.get_all_distances()
    pairs = sum(morse(d[i, j]) for i in range(6) for j in range(i))
    assert result["energies_eV"][0] == pytest.approx(6 * -1027.0, abs=1e-9)
    assert result["energies_eV"][1] == pytest.approx(pairs, abs=1e-9)
    assert np.abs(result["energies_eV"][2:]).max() < 1e-9
    assert abs(result["residual_eV"]) < 1e-9
    total = result["total_energy_eV"]
    assert sum(result["energies_eV"]) + result["residual_eV"] == pytest.approx(total, abs=1e-9)
    # a missing job: no expansion
    del records[next(iter(records))]
    assert cluster_expansion(records, atoms, "c6", calc) is None


@pytest.mark.slow
def test_jobs_are_distinct_and_ordered_cheap_first():
    clusters = load_clusters("h8-high", 2)
    calc = DATASETS["h8-high"].calculation
    jobs = expansion_jobs(clusters, "h8-high", calc)
    # 1 atom, and per cluster 28 + 56 + 70 sub-clusters and the whole cluster
    assert len(jobs) == 1 + 2 * (28 + 56 + 70 + 1)
    assert len({j.content_key for j in jobs}) == len(jobs)
    order = ordered_jobs(["h8-high", "li6"], count=1, checks=False)
    kinds = [j.meta["kind"] for j in order]
    assert kinds[0] == "atom" and kinds[1] == "dimer"
    assert order[-1].meta == {"dataset": "li6", "cluster": 0, "kind": "full", "size": 6}
    curve = dimer_curve({}, "H", calc)
    assert curve["distances_A"] == [] and len(dimer_jobs("H", calc)) == 14
