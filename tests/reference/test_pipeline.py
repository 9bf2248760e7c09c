"""Reference pipeline: sampling, resumable storage, executors, ab initio MBE, export."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from io import StringIO

import ase.io
import numpy as np
import pytest
from ase.units import Hartree
from helpers import python_path_env

from ase_bodyorder.reference import HighDensity, LowDensity, sample_clusters
from ase_bodyorder.reference.electronic import (
    Calculation,
    DMRGSettings,
    compute,
    hydrogen_atom_energy,
)
from ase_bodyorder.reference.executor import Job, run_jobs
from ase_bodyorder.reference.pipeline import (
    cluster_jobs,
    export_dataset,
    mbe_jobs,
    reference_mbe,
)
from ase_bodyorder.reference.store import ReferenceStore

pytest.importorskip("pyscf")
CALC = Calculation(method="fci", basis="sto-3g")


def test_sampling_is_reproducible_and_respects_the_protocol():
    high = HighDensity(n_atoms=8, rs_bohr=1.75, min_distance=0.6)
    a = sample_clusters(high, 5, seed=3)
    b = sample_clusters(high, 5, seed=3)
    c = sample_clusters(high, 5, seed=4)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0].positions, c[0].positions)
    for atoms in a:
        d = atoms.get_all_distances()[np.triu_indices(8, 1)]
        assert d.min() >= 0.6
        assert np.linalg.norm(atoms.positions, axis=1).max() <= 2 * high.sphere_radius
        assert atoms.info["seed"] == 3 and atoms.info["rs_bohr"] == 1.75
    low = LowDensity(n_atoms=8)
    for atoms in sample_clusters(low, 5, seed=1):
        d = atoms.get_all_distances()
        bonds = [d[2 * k, 2 * k + 1] for k in range(4)]
        assert np.allclose(bonds, 0.74, atol=0.15)
        other = np.ones((8, 8), bool)
        for k in range(4):
            other[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = False
        assert d[other].min() >= low.min_intermolecular


def _clusters(n_atoms=4, count=6):
    return sample_clusters(HighDensity(n_atoms=n_atoms, rs_bohr=2.0), count, seed=11)


def test_store_records_and_skips_finished_jobs(tmp_path):
    clusters = _clusters()
    store = ReferenceStore(tmp_path / "a.db")
    first = run_jobs(cluster_jobs(clusters, "t", CALC), store, workers=1, progress=False)
    assert (first.done, first.failed, first.skipped) == (6, 0, 0)
    again = run_jobs(cluster_jobs(clusters, "t", CALC), store, workers=1, progress=False)
    assert (again.done, again.skipped) == (0, 6)
    row = next(store.rows(job_key="t/0/fci/sto-3g/lowest"))
    direct = compute(clusters[0].numbers, clusters[0].positions, CALC)
    assert row.energy == pytest.approx(direct["energy_eV"], abs=1e-8)
    np.testing.assert_allclose(row.forces, direct["forces_eV_per_A"], atol=1e-7)
    assert row.method == "fci" and row.basis == "sto-3g" and row.spin_square == pytest.approx(0)
    import pyscf

    assert store.record("t/0/fci/sto-3g/lowest")["versions"]["pyscf"] == pyscf.__version__


def test_progress_counts_done_and_failed_jobs_with_the_time_left(tmp_path):
    hf = Calculation(method="hf", basis="sto-3g", forces=False)

    def h2(key, bond):
        return Job(key, (1, 1), ((0.0, 0.0, 0.0), (0.0, 0.0, bond)), hf)

    jobs = [h2("a", 0.74), h2("b", 0.8), h2("overlap", 0.1)]  # the last one fails
    stream = StringIO()
    summary = run_jobs(jobs, ReferenceStore(tmp_path / "p.db"), progress=True, stream=stream)
    assert (summary.done, summary.failed) == (2, 1)
    final = stream.getvalue().split("\r")[-1]
    assert final.startswith("jobs: 100%") and "3/3" in final
    assert "2 done, 1 failed" in final and "<00:00" in final  # elapsed<left
    quiet = StringIO()
    run_jobs(jobs, ReferenceStore(tmp_path / "q.db"), progress=False, stream=quiet)
    assert quiet.getvalue() == ""


@pytest.mark.slow
def test_failed_jobs_are_recorded_and_do_not_stop_the_others(tmp_path):
    clusters = _clusters(n_atoms=6, count=3)
    bad = Calculation(
        method="dmrg",
        basis="sto-3g",
        dmrg=DMRGSettings(bond_dims=(2,), noises=(0.0,), max_sweeps=2, discarded_weight_tol=1e-14),
    )
    store = ReferenceStore(tmp_path / "f.db")
    jobs = cluster_jobs(clusters, "t", bad) + cluster_jobs(clusters, "t", CALC)
    summary = run_jobs(jobs, store, workers=2, progress=False)
    assert (summary.done, summary.failed) == (3, 3)
    failed = list(store.rows(status="failed"))
    assert len(failed) == 3 and all("did not converge" in row.error for row in failed)
    assert store.record("t/0/dmrg/sto-3g/lowest") is None
    rerun = run_jobs(jobs, store, workers=1, progress=False)
    assert rerun.skipped == 6


_SCRIPT = textwrap.dedent(
    """
    import sys
    from ase_bodyorder.reference import HighDensity, sample_clusters
    from ase_bodyorder.reference.electronic import Calculation
    from ase_bodyorder.reference.executor import Job, run_jobs
    from ase_bodyorder.reference.pipeline import cluster_jobs
    from ase_bodyorder.reference.store import ReferenceStore

    if __name__ == "__main__":
        clusters = sample_clusters(HighDensity(n_atoms=4, rs_bohr=2.0), 12, seed=5)
        jobs = cluster_jobs(clusters, "r", Calculation(method="fci", basis="sto-3g"))
        run_jobs(jobs, ReferenceStore(sys.argv[1]), workers=1, progress=False)
    """
)


def _snapshot(path):
    store = ReferenceStore(path)
    rows = list(store.rows())
    return {row.job_key: (row.energy, row.status) for row in rows}, len(rows)


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_database(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    env = python_path_env()
    clean, interrupted = tmp_path / "clean.db", tmp_path / "interrupted.db"
    subprocess.run([sys.executable, str(script), str(clean)], env=env, check=True, timeout=300)
    process = subprocess.Popen(
        [sys.executable, str(script), str(interrupted)], env=env, start_new_session=True
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if interrupted.exists() and ReferenceStore(interrupted).counts()["done"] >= 3:
                break
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    partial, _ = _snapshot(interrupted)
    assert 3 <= len(partial) < 12
    subprocess.run(
        [sys.executable, str(script), str(interrupted)], env=env, check=True, timeout=300
    )
    expected, n_expected = _snapshot(clean)
    got, n_got = _snapshot(interrupted)
    assert n_got == n_expected == 12  # no duplicates
    assert got.keys() == expected.keys()
    for key, (energy, status) in expected.items():
        assert got[key][1] == status == "done"
        assert got[key][0] == pytest.approx(energy, abs=1e-8)


def test_dask_local_cluster_gives_the_same_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    clusters = _clusters(count=4)
    local = ReferenceStore(tmp_path / "local.db")
    run_jobs(cluster_jobs(clusters, "t", CALC), local, workers=1, progress=False)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        with distributed.Client(cluster) as client:
            remote = ReferenceStore(tmp_path / "dask.db")
            summary = run_jobs(
                cluster_jobs(clusters, "t", CALC), remote, scheduler=client, progress=False
            )
    assert summary.done == 4
    for key in local.finished():
        assert remote.record(key)["energy_Ha"] == pytest.approx(
            local.record(key)["energy_Ha"], abs=1e-10
        )


@pytest.mark.slow
def test_ab_initio_mbe_of_a_cluster(tmp_path):
    clusters = _clusters(n_atoms=5, count=2)
    store = ReferenceStore(tmp_path / "mbe.db")
    jobs = mbe_jobs(clusters, "t", CALC)
    assert len(jobs) == 2 * (2**5 - 1 - 5) + 1  # the 1-body term is computed once
    run_jobs(jobs, store, workers=2, progress=False)
    result = reference_mbe(store, clusters[0], "t", CALC)
    orders = np.array(result["energies_eV"])
    assert orders[0] == pytest.approx(5 * hydrogen_atom_energy("sto-3g") * Hartree, abs=1e-8)
    full = compute(
        clusters[0].numbers,
        clusters[0].positions,
        Calculation(method="fci", basis="sto-3g", forces=False),
    )
    assert orders.sum() == pytest.approx(full["energy_eV"], abs=1e-8)
    assert result["two_s"]["0-1-2"] == 1 and result["two_s"]["0-1"] == 0


@pytest.mark.slow
def test_export_writes_a_recorded_split(tmp_path):
    clusters = _clusters(count=10)
    store = ReferenceStore(tmp_path / "e.db")
    run_jobs(cluster_jobs(clusters, "t", CALC), store, workers=1, progress=False)
    meta = export_dataset(store, clusters, "t", CALC, tmp_path / "out", split_seed=2)
    counts = {part: info["count"] for part, info in meta["files"].items()}
    assert counts == {"train": 8, "validation": 1, "test": 1}
    indices = sum((info["indices"] for info in meta["files"].values()), [])
    assert sorted(indices) == list(range(10))
    frames = ase.io.read(tmp_path / "out" / "t_train.xyz", ":")
    record = store.record(f"t/{frames[0].info['index']}/fci/sto-3g/lowest")
    assert frames[0].get_potential_energy() == pytest.approx(record["energy_eV"], abs=1e-6)
    np.testing.assert_allclose(frames[0].get_forces(), record["forces_eV_per_A"], atol=1e-6)


@pytest.mark.slow
def test_reference_command_line(tmp_path, capsys):
    import json

    from ase_bodyorder.cli import main

    clusters = tmp_path / "h4.xyz"
    assert (
        main(
            [
                "reference",
                "sample",
                "--density",
                "high",
                "--n-atoms",
                "4",
                "--count",
                "5",
                "--seed",
                "1",
                "-o",
                str(clusters),
            ]
        )
        == 0
    )
    db = str(tmp_path / "h4.db")
    common = ["--db", db, "--basis", "sto-3g"]
    assert main(["reference", "compute", str(clusters), *common, "--workers", "2"]) == 0
    assert (
        main(["reference", "export", str(clusters), *common, "--out-dir", str(tmp_path / "out")])
        == 0
    )
    out = tmp_path / "mbe.json"
    assert (
        main(
            [
                "reference",
                "mbe",
                str(clusters),
                "--db",
                str(tmp_path / "m.db"),
                "--basis",
                "sto-3g",
                "--index",
                ":2",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert [c["cluster"] for c in data["clusters"]] == [0, 1]
    # the orders of each cluster add up to its FCI energy, computed here directly
    for record, atoms in zip(data["clusters"], ase.io.read(clusters, ":2"), strict=True):
        orders = np.array(record["energies_eV"])
        assert orders.shape == (4,)
        assert orders[0] == pytest.approx(4 * hydrogen_atom_energy("sto-3g") * Hartree, abs=1e-8)
        full = compute(atoms.numbers, atoms.positions, Calculation(basis="sto-3g", forces=False))
        assert orders.sum() == pytest.approx(full["energy_eV"], abs=1e-8)
    assert main(["reference", "compute", str(clusters), "--db", db, "--basis", "nope"]) == 2
    assert "unknown basis 'nope'" in capsys.readouterr().err
