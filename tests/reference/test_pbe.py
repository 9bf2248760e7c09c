"""The PBE reference of the universal-MLIP study (issue 32): the all-electron cluster
calculation against pyscf called directly, the samplers' stated density and minimum
distance, and the assembly of the truncated expansion."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from ase.units import Hartree

from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.reference.molecular import MolecularDFT, compute_molecular
from ase_bodyorder.reference.universal import (
    DATASETS,
    MAX_ORDER,
    PSEUDOPOTENTIAL,
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


@pytest.mark.slow
def test_second_order_solver_reaches_the_diis_solution():
    """``scf_solver="newton"`` (carbon's) starts the second-order solver from the start
    densities: on a stretched C2, every start converges and the kept state and energy
    are those of the DIIS path."""
    positions = [[0, 0, 0], [0, 0, 2.4]]
    diis = MolecularDFT(basis="sto-3g", grid_level=1, spin_policy="ground")
    newton = MolecularDFT(basis="sto-3g", grid_level=1, spin_policy="ground", scf_solver="newton")
    a, b = compute_molecular([6, 6], positions, diis), compute_molecular([6, 6], positions, newton)
    assert b["scf_unconverged"] == 0 and b["scf_starts"] == a["scf_starts"]
    assert b["two_s"] == a["two_s"]
    assert b["energy_Ha"] == pytest.approx(a["energy_Ha"], abs=1e-6)


def test_default_solver_keeps_the_content_keys_of_stored_jobs():
    """The ``scf_solver`` option came after jobs were stored: at its default it is not
    part of the settings (nor of the content key); ``newton`` is."""
    from ase_bodyorder.reference.store import content_key

    assert "scf_solver" not in FAST.to_dict()
    newton = MolecularDFT(
        basis="def2-svp", grid_level=2, conv_tol_hartree=1e-8, scf_solver="newton"
    )
    assert newton.to_dict()["scf_solver"] == "newton"
    assert {k: v for k, v in newton.to_dict().items() if k != "scf_solver"} == FAST.to_dict()
    args = ([1, 1], [[0, 0, 0], [0, 0, 1.0]])
    assert content_key(*args, FAST) != content_key(*args, newton)
    assert DATASETS["c6"].calculation.scf_solver == "newton"
    assert DATASETS["h8-high"].calculation.scf_solver == "diis"


def test_pseudopotential_is_outside_the_content_keys_of_all_electron_jobs():
    """``pseudo`` came after jobs were stored: unset, it is not in the settings."""
    from ase_bodyorder.reference.store import content_key

    assert "pseudo" not in FAST.to_dict()
    core = MolecularDFT(basis="gth-dzvp", grid_level=2, conv_tol_hartree=1e-8, pseudo="gth-pbe")
    assert core.to_dict()["pseudo"] == "gth-pbe"
    args = ([3], [[0, 0, 0]])
    assert content_key(*args, FAST) != content_key(*args, core)
    assert PSEUDOPOTENTIAL["C"].basis == "gth-qzv3p" and PSEUDOPOTENTIAL["C"].pseudo == "gth-pbe"


@pytest.mark.slow
def test_pseudopotential_counts_the_valence_electrons():
    """With GTH-PBE, carbon has 4 electrons: the ground policy still finds the triplet
    atom, and the record is pyscf's own UKS energy with that pseudopotential."""
    core = MolecularDFT(
        basis="gth-dzvp",
        grid_level=2,
        conv_tol_hartree=1e-9,
        spin_policy="ground",
        pseudo="gth-pbe",
    )
    atom = compute_molecular([6], [[0, 0, 0]], core)
    assert atom["two_s"] == 2 and atom["pseudo"] == "gth-pbe"
    expected = _lowest_plain_pyscf(["C"], [[0, 0, 0]], "gth-dzvp", 2, 2, 2, "gth-pbe")
    assert atom["energy_Ha"] == pytest.approx(expected, abs=1e-6)


def test_bad_settings_and_inputs_are_one_line_errors():
    with pytest.raises(BodyOrderError, match="needs a GTH basis .* got basis 'def2-svp'"):
        MolecularDFT(basis="def2-svp", pseudo="gth-pbe")
    with pytest.raises(BodyOrderError, match="SCF solver 'adiis'"):
        MolecularDFT(scf_solver="adiis")
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


# ---------------------------------------------------------------- the shipped reference
#
# These read the exported PBE reference (ase_bodyorder/data/reference/universal/, or the
# folder named by ASE_BODYORDER_UNIVERSAL_DATA to check an export before shipping it) and
# fail, naming the file, when it is missing.


def _shipped_dir():
    import os

    from ase_bodyorder.study.universal import DATA_DIR

    return Path(os.environ.get("ASE_BODYORDER_UNIVERSAL_DATA", DATA_DIR))


def _shipped(filename: str) -> dict:
    path = _shipped_dir() / filename
    if not path.is_file():
        pytest.fail(
            f"the shipped PBE reference {path} is missing: export it with "
            "`ase-bodyorder study universal reference --export-only`"
        )
    return json.loads(path.read_text())


def _shipped_clusters(name: str) -> list[dict]:
    """The shipped clusters of set ``name``: each one whose every job is done (a set still
    computing ships its finished clusters and names the missing ones). A set with none
    yet is a skip that says so (its completeness is what the report states)."""
    data = _shipped(f"{name}_pbe.json")
    if not data["clusters"]:
        pytest.skip(
            f"{_shipped_dir() / f'{name}_pbe.json'}: no cluster complete yet "
            f"({len(data['missing_clusters'])} missing)"
        )
    return data["clusters"]


@pytest.mark.parametrize("name", list(DATASETS))
def test_shipped_sets_state_their_settings_and_which_clusters_they_hold(name):
    """Each shipped set names its settings; its clusters are the set's own, in its order,
    and ``complete`` / ``missing_clusters`` say exactly which are not there yet."""
    data = _shipped(f"{name}_pbe.json")
    assert data["calculation"] == {
        "method": "molecular-dft",
        **DATASETS[name].calculation.to_dict(),
    }
    indices = [int(a.info["index"]) for a in load_clusters(name)]
    shipped = [c["cluster"] for c in data["clusters"]]
    assert shipped == [i for i in indices if i in shipped]
    assert sorted(shipped + list(data["missing_clusters"])) == sorted(indices)
    assert data["complete"] == (shipped == indices)


def _inclusion_exclusion(energies: dict[str, float], n_atoms: int, order: int) -> list[float]:
    """E^(n) = sum over n-atom sets S of sum over T in S of (-1)^(|S|-|T|) E(T), E() = 0:
    the many-body expansion written out, independent of the package's plan."""
    terms = []
    for n in range(1, order + 1):
        total = 0.0
        for s in itertools.combinations(range(n_atoms), n):
            for k in range(1, n + 1):
                for t in itertools.combinations(s, k):
                    total += (-1) ** (n - k) * energies["-".join(map(str, t))]
        terms.append(total)
    return terms


@pytest.mark.parametrize("name", list(DATASETS))
def test_shipped_orders_reassemble_from_the_subcluster_energies(name):
    """The exported E^(n) from the exported sub-cluster energies by label, written out;
    the orders and the residual add up to the whole cluster's energy."""
    for row in _shipped_clusters(name):
        energies = row["subcluster_energies_eV"]
        n_atoms = 1 + max(int(i) for label in energies if label != "full" for i in label.split("-"))
        terms = _inclusion_exclusion(energies, n_atoms, MAX_ORDER)
        assert row["energies_eV"] == pytest.approx(terms, abs=1e-7)
        total = sum(row["energies_eV"]) + row["residual_eV"]
        assert total == pytest.approx(energies["full"], abs=1e-7)
        assert row["total_energy_eV"] == energies["full"]
        assert set(row["two_s"]) == set(energies)


def _separated_distance(curve: dict, tolerance_eV: float) -> float | None:
    """The shortest distance of the PBE dimer curve from which on every |binding| is
    within ``tolerance_eV`` (Angstrom); None when there is none."""
    out = None
    for d, b in sorted(zip(curve["distances_A"], curve["binding_eV"], strict=True), reverse=True):
        if abs(b) > tolerance_eV:
            break
        out = d
    return out


@pytest.mark.parametrize("name", list(DATASETS))
def test_shipped_subclusters_separate_into_a_free_atom(name):
    """Size consistency of the reference: a sub-cluster with an atom beyond the distance at
    which the element's PBE dimer is unbound (|E_b| <= 25 meV) has the energy of the rest
    plus a free atom, within 0.1 eV (an SCF stuck in an excited state breaks this by eV).
    """
    element = DATASETS[name].element
    separated = _separated_distance(
        _shipped("dimers_pbe.json")["curves"][element]["reference"], 0.025
    )
    if separated is None:
        pytest.skip(f"the {element}2 PBE curve is bound at every distance it has")
    clusters = {int(a.info["index"]): a for a in load_clusters(name)}
    bad, checked = [], 0
    for row in _shipped_clusters(name):
        energies = row["subcluster_energies_eV"]
        d = clusters[row["cluster"]].get_all_distances()
        for label, energy in energies.items():
            members = [int(i) for i in label.split("-")] if label != "full" else []
            for i in members if len(members) > 1 else []:
                rest = [j for j in members if j != i]
                if min(d[i, j] for j in rest) >= separated:
                    checked += 1
                    gap = energy - energies["-".join(map(str, rest))] - energies[str(i)]
                    if abs(gap) > 0.1:
                        bad.append(f"cluster {row['cluster']} {label} (atom {i}): {gap:+.2f} eV")
    if not checked:
        pytest.skip(f"no {name} sub-cluster has an atom {separated} Angstrom from the rest")
    assert not bad, f"{len(bad)} of {checked} separations fail: " + "; ".join(bad[:5])


def _lowest_plain_pyscf(
    symbols,
    positions,
    basis: str,
    grid_level: int,
    atom_two_s: int = 1,
    above: int = 0,
    pseudo: str | None = None,
) -> float:
    """The lowest PBE energy (Hartree) by pyscf alone: 2S = n_e mod 2 (and up to
    ``above`` more, in steps of 2), RKS or UKS from pyscf's guess at each 2S, and UKS at
    the lowest 2S started from free-atom spin densities (each atom 2S = ``atom_two_s``:
    1 for H and Li, 2 for C), one start per assignment of up and down atoms with the
    smallest total. DIIS, or the second-order solver from the start where DIIS fails."""
    from pyscf import dft, gto

    def molecule(atoms, two_s):
        extra = {} if pseudo is None else {"pseudo": pseudo}
        return gto.M(atom=atoms, basis=basis, spin=two_s, unit="Angstrom", verbose=0, **extra)

    def scf(mf, dm0=None):
        mf.xc, mf.grids.level, mf.conv_tol, mf.max_cycle = "pbe", grid_level, 1e-9, 200
        energy = mf.kernel(dm0=dm0)
        if not mf.converged:
            newton = mf.newton()
            energy = newton.kernel(dm0=mf.get_init_guess() if dm0 is None else dm0)
            assert newton.converged
        return float(energy)

    n = len(symbols)
    atoms = list(zip(symbols, map(tuple, positions), strict=True))
    lowest = (n * atom_two_s) % 2
    energies = []
    for two_s in range(lowest, lowest + above + 1, 2):
        mol = molecule(atoms, two_s)
        energies.append(scf(dft.RKS(mol) if two_s == 0 else dft.UKS(mol)))
    mol = molecule(atoms, lowest)
    free = []
    for s in symbols:
        atom = dft.UKS(molecule([(s, (0, 0, 0))], atom_two_s))
        scf(atom)
        free.append(atom.make_rdm1())
    for ups in itertools.combinations(range(n), (n + n % 2) // 2):
        if n % 2 == 0 and 0 not in ups:
            continue  # the flipped assignment: the same energy
        dm = np.zeros((2, mol.nao, mol.nao))
        start = 0
        for i, (a, b) in enumerate(free):
            block = slice(start, start + a.shape[0])
            dm[0][block, block], dm[1][block, block] = (a, b) if i in ups else (b, a)
            start += a.shape[0]
        energies.append(scf(dft.UKS(mol), dm))
    return min(energies)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, pick",
    [
        ("h8-high", "0-1"),
        ("h8-high", "0-1-2"),
        ("h8-low", "highest 4-atom"),
        ("li6", "0-1"),
        ("c6", "0-1"),
    ],
)
def test_shipped_subcluster_energies_match_pyscf_from_scratch(name, pick):
    """A few shipped sub-cluster energies recomputed by pyscf alone (same basis,
    functional, grid): of the first cluster, a pair, a triple, and the 4-atom sub-cluster
    whose energy lies highest above its free atoms (where a wrong SCF state would show)."""
    row = _shipped_clusters(name)[0]
    energies = row["subcluster_energies_eV"]
    if pick.startswith("highest"):
        four = [k for k in energies if k.count("-") == 3]
        pick = max(four, key=lambda k: energies[k])
    atoms = next(a for a in load_clusters(name) if a.info["index"] == row["cluster"])
    members = [int(i) for i in pick.split("-")]
    settings = DATASETS[name].calculation
    expected = _lowest_plain_pyscf(
        [atoms.get_chemical_symbols()[i] for i in members],
        atoms.positions[members],
        settings.basis,
        settings.grid_level,
        atom_two_s=2 if name == "c6" else 1,
        above=settings.max_two_s_above_lowest if settings.spin_policy == "ground" else 0,
    )
    # carbon: stretched pairs have UKS solutions microhartrees apart (c6 cluster 0, atoms
    # 0-1: the policy's -75.5128973 Ha, DIIS from the localized start -75.5129009 Ha,
    # 0.1 meV lower; -75.5128973 again at a 1e-10 Ha tolerance)
    tolerance_Ha = 1e-5 if name == "c6" else 1e-6
    assert energies[pick] / Hartree == pytest.approx(expected, abs=tolerance_Ha), pick


@pytest.mark.slow
@pytest.mark.parametrize("element, distance_A", [("H", 0.74), ("Li", 2.7)])
def test_shipped_pseudopotential_dimers_match_pyscf_from_scratch(element, distance_A):
    """The GTH-PBE dimer curve's atom and dimer at one distance, by pyscf alone."""
    curve = _shipped("dimers_pbe.json")["curves"][element]["pseudo"]
    if distance_A not in curve["distances_A"]:
        pytest.fail(f"the shipped {element}2 pseudopotential curve lacks {distance_A} A")
    settings = PSEUDOPOTENTIAL[element]
    args = (settings.basis, settings.grid_level, 1, 0, settings.pseudo)
    atom = _lowest_plain_pyscf([element], [[0, 0, 0]], *args)
    dimer = _lowest_plain_pyscf([element] * 2, [[0, 0, 0], [0, 0, distance_A]], *args)
    assert curve["pseudo"] == "gth-pbe" and curve["atom_eV"] / Hartree == pytest.approx(
        atom, abs=1e-6
    )
    binding = curve["binding_eV"][curve["distances_A"].index(distance_A)]
    assert binding / Hartree == pytest.approx(dimer - 2 * atom, abs=2e-6)
