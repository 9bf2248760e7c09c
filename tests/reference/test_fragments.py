"""Fragment data: sub-clusters of train clusters, computed through the store, exported."""

import hashlib
import json
from itertools import combinations
from pathlib import Path

import ase.io
import numpy as np
import pytest

from ase_bodyorder.cli import build_parser, main
from ase_bodyorder.expansion import BodyOrderError, parse_subcluster_label, plan_expansion
from ase_bodyorder.reference import HighDensity, sample_clusters
from ase_bodyorder.reference.electronic import Calculation, compute
from ase_bodyorder.reference.executor import Job, run_jobs
from ase_bodyorder.reference.fragments import (
    check_split_clusters,
    export_fragments,
    fragment_jobs,
    parse_sizes,
    provenance_path,
    read_split,
    train_clusters,
)
from ase_bodyorder.reference.store import ReferenceStore

pytest.importorskip("pyscf")
DATA = Path(__file__).resolve().parents[2] / "ase_bodyorder" / "data" / "reference"
HF = Calculation(method="hf", basis="sto-6g")


def _dataset(tmp_path, n_atoms=5, count=6):
    """A small data set: clusters file and split file (train 0, 2, 3, 5)."""
    clusters = sample_clusters(HighDensity(n_atoms=n_atoms, rs_bohr=2.0), count, seed=5)
    clusters_file = tmp_path / "t_clusters.xyz"
    ase.io.write(clusters_file, clusters, format="extxyz")
    parts = {"train": [0, 2, 3, 5], "validation": [1], "test": [4]}
    split = {
        "dataset": "t",
        "split_seed": 0,
        "files": {p: {"file": f"t_{p}.xyz", "indices": i} for p, i in parts.items()},
    }
    split_file = tmp_path / "t_split.json"
    split_file.write_text(json.dumps(split))
    return ase.io.read(clusters_file, ":"), clusters_file, split, split_file


def _shipped(name):
    mbe = json.loads((DATA / f"{name}_mbe_fci_sto6g.json").read_text())
    clusters = ase.io.read(DATA / f"{name}_clusters.xyz", ":")
    return mbe, {int(a.info["index"]): a for a in clusters}


def test_jobs_are_the_distinct_subclusters_with_the_mbe_labels():
    cluster = sample_clusters(HighDensity(n_atoms=8, rs_bohr=1.75), 2, seed=1)
    jobs = fragment_jobs(cluster, "x", HF)
    assert len(jobs) == 1 + 2 * sum(len(list(combinations(range(8), k))) for k in range(2, 8))
    assert all(job.calculation.forces for job in jobs)
    atoms = [job for job in jobs if job.meta["size"] == 1]
    assert len(atoms) == 1 and atoms[0].meta["parent"] == 0
    plan = plan_expansion(cluster[1].positions, max_order=8, min_distance=0.0)
    mbe_labels = {label for label, n in zip(plan.labels(), plan.sizes, strict=True) if 1 < n < 8}
    mine = [job for job in jobs if job.meta["parent"] == 1]
    assert {job.meta["label"] for job in mine} == mbe_labels
    for job in mine:
        members = parse_subcluster_label(job.meta["label"])[0]
        assert job.meta["size"] == len(members)
        np.testing.assert_array_equal(job.positions, cluster[1].positions[members])
    assert len(fragment_jobs(cluster, "x", HF, sizes=[2])) == 2 * 28
    with pytest.raises(BodyOrderError, match="sizes run from 1 to 7"):
        fragment_jobs(cluster, "x", HF, sizes=[8])


def test_sizes_are_parsed():
    assert parse_sizes("1..7") == list(range(1, 8))
    assert parse_sizes("2,3") == [2, 3]
    assert parse_sizes("1..3, 6") == [1, 2, 3, 6]
    for bad in ("a", "0..2", "3..1", ""):
        with pytest.raises(BodyOrderError, match="sizes"):
            parse_sizes(bad)


def test_command_defaults_are_the_shipped_mbe_settings():
    shipped = Calculation.from_dict(
        json.loads((DATA / "h8-high_mbe_fci_sto6g.json").read_text())["calculation"]
    )
    argv = "reference fragments c.xyz --db d.db --count 1 --split s.json -o o.xyz"
    args = build_parser().parse_args(argv.split())
    assert args.sizes == "1..7" and args.workers == 1
    calc = Calculation(method=args.method, basis=args.basis, spin_policy=args.spin_policy)
    assert calc == shipped and calc.forces and shipped.spin_policy == "lowest"


def test_command_exports_train_fragments_that_map_back_to_their_parents(tmp_path, capsys):
    clusters, clusters_file, split, split_file = _dataset(tmp_path)
    by_index = {int(a.info["index"]): a for a in clusters}
    out, db = tmp_path / "out" / "t_fragments.xyz", tmp_path / "f.db"
    argv = [
        "reference", "fragments", str(clusters_file), "--split", str(split_file),
        "--count", "2", "--sizes", "1..4", "--method", "hf", "--db", str(db), "-o", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    assert "51 done, 0 failed" in capsys.readouterr().out
    frames = ase.io.read(out, ":")
    assert len(frames) == 1 + 2 * (10 + 10 + 5)
    seen = set()
    for frame in frames:
        label, parent = str(frame.info["label"]), int(frame.info["parent"])
        assert parent in (0, 2)  # the first two train indices
        members = parse_subcluster_label(label)[0]
        assert frame.info["size"] == len(members) == len(frame)
        np.testing.assert_allclose(frame.positions, by_index[parent].positions[members], atol=1e-8)
        assert frame.info["dataset"] == "t" and frame.info["two_s"] == len(frame) % 2
        assert frame.get_forces().shape == (len(frame), 3)
        seen.add((parent, label))
    assert len(seen) == len(frames)
    direct = compute(frames[-1].numbers, frames[-1].positions, HF)
    assert frames[-1].get_potential_energy() == pytest.approx(direct["energy_eV"], abs=1e-8)
    np.testing.assert_allclose(frames[-1].get_forces(), direct["forces_eV_per_A"], atol=1e-6)
    meta = json.loads(provenance_path(out).read_text())
    assert meta["counts"] == {"1": 1, "2": 20, "3": 20, "4": 10} and meta["missing"] == []
    assert meta["parents"] == [0, 2] and meta["method"] == "hf" and meta["spin_policy"] == "lowest"
    assert meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert meta["command"].startswith("ase-bodyorder reference fragments")
    assert meta["split"]["sha256"] == hashlib.sha256(split_file.read_bytes()).hexdigest()

    # rerunning the same command computes nothing and writes the same frames
    rows = ReferenceStore(db).counts()
    assert main(argv) == 0
    assert "0 done, 0 failed, 51 already in" in capsys.readouterr().out
    assert ReferenceStore(db).counts() == rows
    assert json.loads(provenance_path(out).read_text())["sha256"] == meta["sha256"]

    # gzipped: the same frames, the same bytes on every export
    gz = tmp_path / "t_fragments.xyz.gz"
    parents = train_clusters(clusters, split, count=2)
    store = ReferenceStore(db)
    first = export_fragments(store, parents, "t", HF, gz, sizes=[1, 2, 3, 4], split=split)
    again = export_fragments(store, parents, "t", HF, gz, sizes=[1, 2, 3, 4], split=split)
    assert first["sha256"] == again["sha256"] and first["bytes"] < meta["bytes"] / 3
    assert provenance_path(gz) == tmp_path / "t_fragments_provenance.json"
    unpacked = ase.io.read(gz, ":")
    assert [str(a.info["label"]) for a in unpacked] == [str(a.info["label"]) for a in frames]
    np.testing.assert_array_equal(unpacked[7].get_forces(), frames[7].get_forces())


def test_clusters_outside_the_train_part_are_refused(tmp_path, capsys):
    clusters, clusters_file, split, split_file = _dataset(tmp_path)
    assert [int(a.info["index"]) for a in train_clusters(clusters, split, count=3)] == [0, 2, 3]
    with pytest.raises(BodyOrderError, match="cluster 4 is a test cluster"):
        train_clusters(clusters, split, indices=[0, 4])
    with pytest.raises(BodyOrderError, match="cluster 1 is a validation cluster"):
        train_clusters(clusters, split, indices=[1])
    with pytest.raises(BodyOrderError, match="cluster 9 is not in the split"):
        train_clusters(clusters, split, indices=[9])
    with pytest.raises(BodyOrderError, match="between 1 and the 4 train clusters"):
        train_clusters(clusters, split, count=5)
    with pytest.raises(BodyOrderError, match="a validation cluster"):
        export_fragments(ReferenceStore(tmp_path / "x.db"), [clusters[1]], "t", HF,
                         tmp_path / "x.xyz", split=split)  # fmt: skip
    overlapping = json.loads(json.dumps(split))
    overlapping["files"]["test"]["indices"] = [4, 5]
    with pytest.raises(BodyOrderError, match="cluster 5 is in both train and test"):
        train_clusters(clusters, overlapping, count=1)
    base = ["reference", "fragments", str(clusters_file), "--split", str(split_file)]
    tail = ["--method", "hf", "--db", str(tmp_path / "f.db"), "-o", str(tmp_path / "o.xyz")]
    assert main([*base, "--count", "5", *tail]) == 2
    assert "between 1 and the 4 train clusters" in capsys.readouterr().err
    assert main([*base, "--count", "1", "--dataset", "other", *tail]) == 2
    assert "is of data set 't', not 'other'" in capsys.readouterr().err
    assert not (tmp_path / "o.xyz").exists()
    # the shipped split: its test clusters are refused, and another density's clusters too
    shipped = read_split(DATA / "h8-high_split.json")
    _, high = _shipped("h8-high")
    with pytest.raises(BodyOrderError, match="cluster 11 is a test cluster"):
        train_clusters(list(high.values()), shipped, indices=[11])
    low = ase.io.read(DATA / "h8-low_clusters.xyz", ":3")
    parents = train_clusters(low, shipped, count=2)
    with pytest.raises(BodyOrderError, match="not the one this split was made from"):
        check_split_clusters(parents, shipped, DATA / "h8-high_split.json")
    parents = train_clusters(list(high.values()), shipped, count=2)
    assert check_split_clusters(parents, shipped, DATA / "h8-high_split.json") == 2


def test_a_stored_record_of_other_atoms_is_an_error(tmp_path):
    clusters, *_ = _dataset(tmp_path, n_atoms=3, count=1)
    store = ReferenceStore(tmp_path / "f.db")
    job = next(j for j in fragment_jobs(clusters, "t", HF, sizes=[2]) if j.meta["label"] == "0-1")
    wrong = Job(job.key, job.numbers, np.asarray(job.positions) + 0.01, job.calculation, job.meta)
    wrong.__dict__["content_key"] = job.content_key  # a corrupted row under this content key
    record = {"energy_eV": -1.0, "energy_Ha": -0.04, "two_s": 0, "forces_eV_per_A": [[0] * 3] * 2}
    assert store.write(wrong, record, error=None)
    with pytest.raises(BodyOrderError, match="does not hold the atoms"):
        export_fragments(store, clusters, "t", HF, tmp_path / "x.xyz", sizes=[2])


@pytest.mark.parametrize("name", ["h8-high", "h8-low"])
def test_fci_fragments_equal_the_shipped_mbe_subcluster_energies(tmp_path, name):
    """FCI/STO-6G fragments of ONE held-out cluster (in a temporary file, never shipped)."""
    mbe, clusters = _shipped(name)
    shipped = mbe["clusters"][0]
    atoms = clusters[shipped["cluster"]]
    calc = Calculation.from_dict(mbe["calculation"])
    wanted = {"0-1", "2-5", "3-7", "0-4-6", "1-2-3", "0-1-2-3-4-5-6"}
    jobs = [
        job
        for job in fragment_jobs([atoms], name, calc, sizes=[1, 2, 3, 7])
        if job.meta["size"] == 1 or job.meta["label"] in wanted
    ]
    store = ReferenceStore(tmp_path / "f.db")
    assert run_jobs(jobs, store, progress=False).done == len(jobs) == 7
    out = tmp_path / "held-out.xyz"
    meta = export_fragments(store, [atoms], name, calc, out, sizes=[1, 2, 3, 7])
    assert meta["counts"] == {"1": 1, "2": 3, "3": 2, "7": 1}
    assert len(meta["missing"]) == 28 + 56 + 8 - 6  # not computed: left out and listed
    for frame in ase.io.read(out, ":"):
        label = str(frame.info["label"])
        assert frame.info["energy_Ha"] == pytest.approx(
            shipped["subcluster_energies_Ha"][label], abs=1e-8
        )
        assert frame.info["two_s"] == shipped["two_s"][label]
