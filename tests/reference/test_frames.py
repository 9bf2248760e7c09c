"""The ab initio atom-resolved expansion of frames (store, equal sharing, sampling)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from ase_bodyorder import decompose
from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.models import AxilrodTellerMuto, Morse, SumModel
from ase_bodyorder.reference.frames import EqualShare, frame_expansions, frame_jobs
from ase_bodyorder.reference.store import ReferenceStore

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
    for job in jobs:
        store.write(job, job.calculation.run(job.numbers, job.positions), error=None)


@pytest.fixture
def frame():
    atoms = bulk("H", "bcc", a=2.0, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=3)
    return atoms


def test_the_stored_expansion_of_a_frame_is_the_equal_share_expansion(tmp_path, frame):
    """Sub-cluster totals through jobs and the store give, atom by atom, what the model
    gives when its totals are shared equally; the equal sharing changes atom energies,
    not the sum of a complete cluster expansion."""
    calc = ModelTotals()
    store = ReferenceStore(tmp_path / "frames.db")
    jobs = frame_jobs([frame], calc, order=3, r_mbe=2.2)
    # the single atoms are one job; every other job is a distinct sub-cluster
    assert sum(len(job.numbers) == 1 for job in jobs) == 1
    with pytest.raises(BodyOrderError, match="not done"):
        frame_expansions([frame], store, calc, order=3, r_mbe=2.2)
    _fill(store, jobs)
    (stored,) = frame_expansions([frame], store, calc, order=3, r_mbe=2.2)
    direct = decompose(frame, EqualShare(MODEL), max_order=3, r_mbe=2.2)
    np.testing.assert_allclose(stored.energies_per_atom_eV, direct.energies_per_atom_eV, atol=1e-10)
    assert np.isnan(stored.residual_eV)  # no total energy of the frame was given
    own = decompose(frame, MODEL, max_order=3, r_mbe=2.2)
    # pair sets are symmetric, so E^(2) is the same under any sharing; atom terms are not
    assert direct.energies_eV[1] == pytest.approx(own.energies_eV[1], abs=1e-9)
    assert np.abs(direct.energies_per_atom_eV - own.energies_per_atom_eV).max() > 1e-3

    cluster = Atoms("H5", positions=np.random.default_rng(1).uniform(0, 2.2, (5, 3)))
    shared = decompose(cluster, EqualShare(MODEL), max_order=5)
    own = decompose(cluster, MODEL, max_order=5)
    np.testing.assert_allclose(shared.energies_eV, own.energies_eV, atol=1e-10)


def test_a_sampled_frame_expansion_needs_only_the_sampled_atoms_jobs(tmp_path, frame):
    calc = ModelTotals()
    store = ReferenceStore(tmp_path / "frames.db")
    options = {"order": 3, "r_mbe": 2.2, "sample_atoms": 4, "seed": 11}
    sampled_jobs = frame_jobs([frame, frame], calc, **options)
    all_jobs = frame_jobs([frame], calc, order=3, r_mbe=2.2)
    assert {j.content_key for j in sampled_jobs} < {j.content_key for j in all_jobs}
    _fill(store, sampled_jobs)
    results = frame_expansions([frame, frame], store, calc, **options, totals_eV=[-1.0, -2.0])
    full = decompose(frame, EqualShare(MODEL), max_order=3, r_mbe=2.2)
    for result in results:
        assert result.sampled and result.sample_size == 4
        picked = result.sample_indices
        np.testing.assert_allclose(
            result.energies_per_atom_eV[picked], full.energies_per_atom_eV[picked], atol=1e-10
        )
    # the two frames draw their own samples from the seed
    assert not np.array_equal(results[0].sample_indices, results[1].sample_indices)
    assert np.isfinite(results[0].residual_eV)
    with pytest.raises(BodyOrderError, match="seed"):
        frame_jobs([frame], calc, order=3, r_mbe=2.2, sample_atoms=4)


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
    main(args + ["--model", "soap-bpnn-hbulk-high", "-o", str(result)])
    (record,) = json.loads(result.read_text())["frames"]
    reference = record["reference"]["per_atom_mean_eV"]
    assert reference[0] == pytest.approx(fragments[0].get_potential_energy(), abs=1e-8)
    assert reference[1] < 0  # bound neighbours at 1.9 Angstrom
    assert set(record) == {"reference", "model", "model_equal_share"}
    terms = np.asarray(record["reference"]["atom_terms_eV"])
    assert terms.shape == (len(cell), 2) and record["reference"]["atoms"] == list(range(16))
    np.testing.assert_allclose(terms.mean(axis=0), reference, atol=1e-10)
    # pair sets are symmetric: E^(2)/N is the same under either sharing
    assert record["model"]["per_atom_mean_eV"][1] == pytest.approx(
        record["model_equal_share"]["per_atom_mean_eV"][1], abs=1e-8
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
