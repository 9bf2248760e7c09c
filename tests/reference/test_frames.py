"""The ab initio atom-resolved expansion of frames (store, equal sharing, sampling)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from ase_bodyorder import decompose
from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.models import AxilrodTellerMuto, Morse, SumModel, load_model
from ase_bodyorder.models.base import FragmentBatch
from ase_bodyorder.reference.frames import (
    SERIES,
    SHARINGS,
    IncrementShare,
    expansions_from_totals,
    frame_expansions,
    frame_jobs,
    increment_share_weights,
    read_frame_totals,
)
from ase_bodyorder.reference.store import ReferenceStore

VALIDATION_FRAMES = Path(__file__).parents[2] / "reports" / "monitor_validation" / "frames"
MODEL = SumModel(Morse(D_e=4.746, a=1.942, r_e=0.7414, cutoff=2.5), AxilrodTellerMuto(1.9, 2.5))


@dataclass(frozen=True)
class ModelTotals:
    """A stand-in 'electronic-structure method': the analytic model's cluster totals."""

    method: ClassVar[str] = "analytic-totals"
    label: str = "morse+atm"

    def to_dict(self) -> dict:
        return {"label": self.label}

    def run(self, numbers, positions, cell=None) -> dict:
        atoms = Atoms(numbers=numbers, positions=positions)
        return {"energy_eV": float(MODEL.system(atoms, forces=False).energy)}


def _fill(store: ReferenceStore, jobs) -> None:
    """Store every job's record: ModelTotals.run of each, computed in one batch (the
    model's per-atom energies summed per job)."""
    sizes = [len(job.numbers) for job in jobs]
    batch = FragmentBatch(
        positions=torch.as_tensor(np.concatenate([np.asarray(job.positions) for job in jobs])),
        numbers=np.concatenate([np.asarray(job.numbers) for job in jobs]),
        offsets=np.concatenate([[0], np.cumsum(sizes)]),
    )
    owner = torch.as_tensor(batch.fragment)
    energies = MODEL.fragment_energies(batch).detach()
    totals = torch.zeros(len(jobs), dtype=torch.float64).index_add(0, owner, energies)
    assert totals[0].item() == pytest.approx(
        jobs[0].calculation.run(jobs[0].numbers, jobs[0].positions)["energy_eV"], abs=1e-12
    )
    for job, total in zip(jobs, totals.tolist(), strict=True):
        store.write(job, {"energy_eV": total}, error=None)


@pytest.fixture(scope="module")
def dense_frame():
    """Frame 1 of the shipped NVT validation run: 64 atoms, rs 1.6 bohr."""
    import ase.io

    return ase.io.read(VALIDATION_FRAMES / "nvt_frames.extxyz", 1)


@pytest.fixture
def frame():
    atoms = bulk("H", "bcc", a=2.0, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=3)
    return atoms


def test_the_stored_expansion_of_a_frame_is_the_model_shared_by_increments(tmp_path, frame):
    """Sub-cluster totals through jobs and the store give, atom by atom, what the model
    gives when its totals are shared by increments (and by equal shares, each the same
    definition on both sides); a complete cluster expansion is the same under every
    sharing."""
    calc = ModelTotals()
    store = ReferenceStore(tmp_path / "frames.db")
    jobs = frame_jobs([frame], calc, order=3, r_mbe=1.9)
    # the single atoms are one job; every other job is a distinct sub-cluster
    assert sum(len(job.numbers) == 1 for job in jobs) == 1
    with pytest.raises(BodyOrderError, match="not done"):
        frame_expansions([frame], store, calc, order=3, r_mbe=1.9)
    _fill(store, jobs)
    for sharing in SHARINGS:
        (stored,) = frame_expansions([frame], store, calc, order=3, r_mbe=1.9, sharing=sharing)
        direct = decompose(frame, IncrementShare(MODEL, sharing), max_order=3, r_mbe=1.9)
        np.testing.assert_allclose(
            stored.energies_per_atom_eV, direct.energies_per_atom_eV, atol=1e-10
        )
        assert np.isnan(stored.residual_eV)  # no total energy of the frame was given
    own = decompose(frame, MODEL, max_order=3, r_mbe=1.9)
    # pair sets are symmetric, so E^(2) is the same under any sharing; atom terms are not
    assert direct.energies_eV[1] == pytest.approx(own.energies_eV[1], abs=1e-9)
    assert np.abs(direct.energies_per_atom_eV - own.energies_per_atom_eV).max() > 1e-3

    cluster = Atoms("H5", positions=np.random.default_rng(1).uniform(0, 2.2, (5, 3)))
    own = decompose(cluster, MODEL, max_order=5)
    for sharing in SHARINGS:
        shared = decompose(cluster, IncrementShare(MODEL, sharing), max_order=5)
        np.testing.assert_allclose(shared.energies_eV, own.energies_eV, atol=1e-10)


def test_increment_weights_are_the_shapley_value_of_the_subset_energies():
    """W of increment_share_weights against the Shapley formula written out
    independently: phi_i = sum over R not holding i of |R|!(m-|R|-1)!/m! (E(R+i) - E(R));
    shares of a sub-cluster sum to its total."""
    rng = np.random.default_rng(4)
    for m in range(1, 6):
        energies = {0: 0.0}
        energies.update({mask: rng.normal() for mask in range(1, 1 << m)})
        shares = increment_share_weights(m) @ np.array([energies[k] for k in range(1, 1 << m)])
        for i in range(m):
            phi = 0.0
            for r in range(1 << m):
                if r >> i & 1:
                    continue
                size = bin(r).count("1")
                w = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                phi += w * (energies[r | 1 << i] - energies[r])
            assert shares[i] == pytest.approx(phi, abs=1e-12)
        assert shares.sum() == pytest.approx(energies[(1 << m) - 1], abs=1e-12)


@pytest.mark.parametrize("r_mbe", [2.0, 3.0])
@pytest.mark.parametrize("sample_atoms", [None, 8])
def test_a_pair_potential_shared_by_increments_has_no_third_order(dense_frame, r_mbe, sample_atoms):
    """The invariant of issue 30: h-morse expanded from its sub-cluster totals alone (no
    atom energies) gives E^(3) = 0 to round-off on a periodic dense-hydrogen frame, with
    and without atom sampling, and E^(2) equal to its own (atom energies) E^(2); equal
    shares put tens of eV/atom of pair energy into E^(3)."""
    morse = load_model("h-morse")
    options = {"max_order": 3, "r_mbe": r_mbe}
    if sample_atoms:
        options.update(sample_atoms=sample_atoms, seed=5)
    own = decompose(dense_frame, morse, **options)
    shared = decompose(dense_frame, IncrementShare(morse), **options)
    assert abs(shared.energies_per_atom_mean_eV[2]) < 1e-10
    np.testing.assert_allclose(
        shared.energies_per_atom_mean_eV, own.energies_per_atom_mean_eV, atol=1e-9
    )
    # every sampled atom's own terms agree too (a pair potential's own atom energies
    # are its half pair energies: the same increment shares)
    atoms = own.sample_indices if sample_atoms else slice(None)
    np.testing.assert_allclose(
        shared.energies_per_atom_eV[atoms], own.energies_per_atom_eV[atoms], atol=1e-10
    )
    if r_mbe == 2.0 and sample_atoms is None:
        equal = decompose(dense_frame, IncrementShare(morse, "equal"), **options)
        assert equal.energies_per_atom_mean_eV[2] > 10.0  # the leak this definition removes


def test_a_triple_potential_shared_by_increments_is_the_truncated_triple_sum(dense_frame):
    """h-atm from totals alone: E^(2) = 0, and E^(3) is the triple sum the truncation
    includes: atom i counts a third of the energy of every triple {i, j, k} whose other
    two atoms (or their images) lie within r_mbe of i; brute force over ASE's neighbour
    list and the model's energy of each isolated triple."""
    from ase.neighborlist import neighbor_list

    atm = load_model("h-atm")
    r_mbe = 2.0
    shared = decompose(dense_frame, IncrementShare(atm), max_order=3, r_mbe=r_mbe)
    assert abs(shared.energies_eV[1]) < 1e-10
    first, second, shifts = neighbor_list("ijS", dense_frame, r_mbe)
    cell = np.asarray(dense_frame.cell)
    triples = []
    for i in range(len(dense_frame)):
        mine = np.nonzero(first == i)[0]
        others = dense_frame.positions[second[mine]] + shifts[mine] @ cell
        for a, b in itertools.combinations(range(len(mine)), 2):
            triples.append([dense_frame.positions[i], others[a], others[b]])
    # the model's energy of every isolated triple, in one batch of its own
    batch = FragmentBatch(
        positions=torch.as_tensor(np.concatenate(triples)),
        numbers=np.ones(3 * len(triples), dtype=np.int64),
        offsets=np.arange(0, 3 * len(triples) + 1, 3),
    )
    expected = float(atm.fragment_energies(batch).sum()) / 3
    assert abs(expected) > 1e-3
    assert shared.energies_eV[2] == pytest.approx(expected, rel=1e-9)


def test_complete_ab_initio_expansion_of_a_tiny_cluster_sums_to_its_energy(tmp_path):
    """Isolated LDA sub-clusters through the executor: the complete expansion of H4
    (every sub-cluster once) sums to the H4 energy computed directly."""
    pytest.importorskip("pyscf")
    from ase_bodyorder.reference.executor import run_jobs
    from ase_bodyorder.reference.isolated import IsolatedDFT, compute_isolated

    calc = IsolatedDFT(forces=False)
    atoms = Atoms("H4", positions=[[0, 0, 0], [0, 0, 0.9], [0.1, 1.3, 0], [0.8, 1.2, 1.0]])
    store = ReferenceStore(tmp_path / "h4.db")
    jobs = frame_jobs([atoms], calc, order=4, r_mbe=None)
    assert len(jobs) == 1 + 6 + 4 + 1  # one atom job serves all four atoms
    summary = run_jobs(jobs, store, workers=1, progress=False)
    assert summary.done == len(jobs) and summary.failed == 0
    (result,) = frame_expansions([atoms], store, calc, order=4, r_mbe=None)
    direct = compute_isolated(atoms, calc)["energy_eV"]
    assert result.energies_eV.sum() == pytest.approx(direct, abs=1e-8)
    # E^(1) is four isolated doublet atoms
    atom = compute_isolated(Atoms("H", positions=[[0, 0, 0]]), calc)["energy_eV"]
    assert result.energies_eV[0] == pytest.approx(4 * atom, abs=1e-8)


def test_cli_cell_fragments_and_frames(tmp_path, capsys):
    """`reference cell-fragments` cuts and computes isolated fragments of cells (their
    labels map back to the parent's atoms); `reference frames` writes the ab initio
    E^(n)/N of a frame next to a model's, and a rerun computes nothing."""
    pytest.importorskip("pyscf")
    import json

    import ase.io

    from ase_bodyorder.cli import main

    cell = bulk("H", "bcc", a=2.2, cubic=True).repeat(2)
    cell.rattle(0.05, seed=2)
    cell.info["index"] = 7
    ase.io.write(tmp_path / "cells.xyz", [cell])
    db = str(tmp_path / "ref.db")
    out = tmp_path / "fragments.xyz"
    args = ["reference", "cell-fragments", str(tmp_path / "cells.xyz"), "--db", db]
    main(args + ["--sizes", "1..3", "--per-cell", "3", "--radius", "2.0", "-o", str(out)])
    fragments = ase.io.read(out, ":")
    assert [len(a) for a in fragments][0] == 1 and len(fragments) == 4
    for fragment in fragments[1:]:
        assert fragment.info["parent"] == 7
        indices = [int(i) for i in str(fragment.info["label"]).split("-")]
        # each atom is one of the cell's, displaced by a lattice vector
        for position, index in zip(fragment.positions, indices, strict=True):
            fractional = np.linalg.solve(cell.cell.T, position - cell.positions[index])
            np.testing.assert_allclose(fractional, np.round(fractional), atol=1e-8)
        assert np.isfinite(fragment.get_potential_energy())
    meta = json.loads((tmp_path / "fragments.xyz.provenance.json").read_text())
    assert meta["counts"]["1"] == 1 and not meta["missing"]

    frame = tmp_path / "frame.xyz"
    ase.io.write(frame, [cell])
    result = tmp_path / "frames.json"
    args = ["reference", "frames", str(frame), "--order", "2", "--r-mbe", "1.95", "--db", db]
    totals_file = tmp_path / "totals.json.gz"
    main(
        args + ["--model", "soap-bpnn-hbulk-high", "-o", str(result), "--totals", str(totals_file)]
    )
    (record,) = json.loads(result.read_text())["frames"]
    # the shipped totals re-assemble the reference without the store
    meta, totals = read_frame_totals(totals_file)
    assert meta["order"] == 2 and meta["calculation"]["method"] == "isolated-dft"
    (again,) = expansions_from_totals([cell], totals, order=2, r_mbe=1.95)
    np.testing.assert_allclose(
        again.energies_per_atom_eV, record["reference"]["atom_terms_eV"], atol=1e-12
    )
    reference = record["reference"]["per_atom_mean_eV"]
    assert reference[0] == pytest.approx(fragments[0].get_potential_energy(), abs=1e-8)
    assert reference[1] < 0  # bound neighbours at 1.9 Angstrom
    assert set(record) == set(SERIES)
    terms = np.asarray(record["reference"]["atom_terms_eV"])
    assert terms.shape == (len(cell), 2) and record["reference"]["atoms"] == list(range(16))
    np.testing.assert_allclose(terms.mean(axis=0), reference, atol=1e-10)
    # pair sets are symmetric: E^(2)/N is the same under every sharing
    for name in ("model_increment_share", "model_equal_share"):
        assert record["model"]["per_atom_mean_eV"][1] == pytest.approx(
            record[name]["per_atom_mean_eV"][1], abs=1e-8
        )
    assert reference[1] == pytest.approx(
        record["reference_equal_share"]["per_atom_mean_eV"][1], abs=1e-8
    )
    capsys.readouterr()
    main(args + ["-o", str(result)])
    assert "0 done" in capsys.readouterr().out

    # the validation report of a model's expansions against the ab initio ones
    capsys.readouterr()
    assert main(["reference", "validation", f"x={result}", "--out-dir", str(tmp_path / "v")]) == 2
    assert "--model" in capsys.readouterr().err
    with_model = tmp_path / "with-model.json"
    main(args + ["--model", "soap-bpnn-hbulk-high", "-o", str(with_model)])
    main(["reference", "validation", f"bcc={with_model}", "--out-dir", str(tmp_path / "v")])
    summary = json.loads((tmp_path / "v" / "validation.json").read_text())["cases"]["bcc"]
    second = summary["orders"][1]
    assert second["reference_eV_per_atom"] == pytest.approx(reference[1], abs=1e-10)
    assert second["model_error_eV_per_atom"] == pytest.approx(
        record["model"]["per_atom_mean_eV"][1] - reference[1], abs=1e-10
    )
    from tests.helpers import png_size

    assert png_size(tmp_path / "v" / "validation.png")[0] > 500


def test_cells_and_fragments_merge_by_the_parent_cells_split(tmp_path):
    import json

    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    from ase_bodyorder.reference.isolated import merge_cells_and_fragments, parent_part
    from ase_bodyorder.structures import cell_fragments

    cells = []
    for index in range(9):  # cells 6-8: not done, so not in the split
        atoms = bulk("H", "bcc", a=2.0, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=index)
        atoms.info.update(index=index, kind="bcc", rs_bohr=1.5)
        cells.append(atoms)
    split = {"train": [0, 1, 2, 3], "validation": [4], "test": [5]}
    meta = {"files": {part: {"indices": indices} for part, indices in split.items()}}
    for part, indices in split.items():
        ase.io.write(tmp_path / f"c_{part}.xyz", [cells[i] for i in indices])
    (tmp_path / "c_split.json").write_text(json.dumps(meta))
    fragments = cell_fragments(cells, (1, 2, 3), 5, 2.0, seed=1)
    far_pairs = cell_fragments(cells, (2,), 3, 3.5, seed=2)
    for f in fragments + far_pairs:
        f.calc = SinglePointCalculator(f, energy=-1.0 * len(f), forces=np.zeros((len(f), 3)))
    ase.io.write(tmp_path / "fragments.xyz", fragments)
    ase.io.write(tmp_path / "pairs.xyz", far_pairs)
    files = [tmp_path / "fragments.xyz", tmp_path / "pairs.xyz"]
    out = merge_cells_and_fragments(tmp_path, "c", files, tmp_path, "m")
    drawn = {parent: parent_part(parent) for parent in (6, 7, 8)}
    for part, indices in split.items():
        merged = ase.io.read(tmp_path / f"m_{part}.xyz", ":")
        kinds = [a.info["structure"] for a in merged]
        assert kinds.count("cell") == len(indices) == out["files"][part]["cells"]
        parents = {a.info["parent"] for a in merged if a.info["structure"] == "fragment"}
        mine = {p for p, drawn_part in drawn.items() if drawn_part == part}
        assert -1 in parents and parents - {-1} <= set(indices) | mine
        assert {p for p in parents if p in drawn} == mine  # a cell's fragments stay together
    assert sum(out["files"][p]["fragments"] for p in split) == len(fragments + far_pairs) + 2
    assert {parent_part(p) for p in range(200)} == {"train", "validation", "test"}


@pytest.mark.parametrize("dataset", ["h8-high", "h8-low"])
def test_shipped_complete_fci_expansions_do_not_depend_on_the_sharing(dataset):
    """The shipped H8 FCI MBE (complete cluster expansions) re-assembled from its own
    sub-cluster energies by label through the atom-resolved path: every sharing gives the
    shipped E^(n) per cluster to 1e-10 eV."""
    import json

    import ase.io
    from ase.units import Hartree

    shipped = Path(__file__).parents[2] / "ase_bodyorder" / "data" / "reference"
    mbe = json.loads((shipped / f"{dataset}_mbe_fci_sto6g.json").read_text())
    clusters = ase.io.read(shipped / f"{dataset}_clusters.xyz", ":")
    for record in mbe["clusters"][:2]:
        cluster = clusters[int(record["cluster"])]
        assert cluster.info["index"] == int(record["cluster"])
        totals = {label: e * Hartree for label, e in record["subcluster_energies_Ha"].items()}
        for sharing in SHARINGS:
            (result,) = expansions_from_totals(
                [cluster], [totals], order=len(cluster), r_mbe=None, sharing=sharing
            )
            np.testing.assert_allclose(result.energies_eV, record["energies_eV"], atol=1e-10)


@pytest.mark.parametrize("case", ["nvt", "low-density"])
def test_shipped_subcluster_totals_reassemble_the_shipped_validation(case):
    """The shipped sub-cluster totals of the validation frames, re-assembled by label for
    the settings they record, give the shipped reference terms (increments and equal
    shares), atom by atom; and the equal shares leak pair energy into E^(3) there."""
    import json

    import ase.io

    meta, totals = read_frame_totals(VALIDATION_FRAMES / f"{case}_subclusters.json.gz")
    shipped = json.loads((VALIDATION_FRAMES / f"{case}-mace-hcells-zbl.json").read_text())
    frames = ase.io.read(VALIDATION_FRAMES / f"{case}_frames.extxyz", meta["index"])
    options = {k: meta[k] for k in ("order", "r_mbe", "sample_atoms", "seed")}
    leaks = []
    for name, sharing in (("reference", "increment"), ("reference_equal_share", "equal")):
        results = expansions_from_totals(frames, totals, sharing=sharing, **options)
        for result, record in zip(results, shipped["frames"], strict=True):
            assert result.sample_indices.tolist() == record[name]["atoms"]
            terms = result.energies_per_atom_eV[result.sample_indices]
            np.testing.assert_allclose(terms, record[name]["atom_terms_eV"], atol=1e-9)
        leaks.append(np.mean([r.energies_per_atom_mean_eV[2] for r in results]))
    assert leaks[1] - leaks[0] > 1.0  # eV/atom of pair energy at third order
