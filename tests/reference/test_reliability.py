"""Reference pipeline reliability: content keys, concurrent runs, orphan workers, bad input."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from helpers import python_path_env

from ase_bodyorder.cli import main
from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.reference import HighDensity, sample_clusters
from ase_bodyorder.reference.electronic import Calculation, compute
from ase_bodyorder.reference.executor import run_jobs
from ase_bodyorder.reference.pipeline import cluster_jobs, export_dataset
from ase_bodyorder.reference.store import ReferenceStore

pytest.importorskip("pyscf")
HF = Calculation(method="hf", basis="sto-3g")
ENV = python_path_env()


def _sample(path, seed, count=4, n_atoms=4, capsys=None):
    argv = ["reference", "sample", "--density", "high", "--n-atoms", str(n_atoms)]
    argv += ["--count", str(count), "--seed", str(seed), "-o", str(path)]
    assert main(argv) == 0
    if capsys is not None:
        capsys.readouterr()


@pytest.mark.slow
def test_resampled_cluster_file_is_computed_again_and_exported_with_its_energies(tmp_path, capsys):
    clusters, db = tmp_path / "h4.xyz", str(tmp_path / "h4.db")
    common = ["--db", db, "--method", "hf", "--basis", "sto-3g"]
    _sample(clusters, seed=1, capsys=capsys)
    assert main(["reference", "compute", str(clusters), *common]) == 0
    assert capsys.readouterr().out.startswith("4 done, 0 failed, 0 already")
    _sample(clusters, seed=99, capsys=capsys)  # new positions, same file name
    assert main(["reference", "compute", str(clusters), *common]) == 0
    assert capsys.readouterr().out.startswith("4 done, 0 failed, 0 already")
    out = tmp_path / "out"
    assert main(["reference", "export", str(clusters), *common, "--out-dir", str(out)]) == 0
    new = {int(a.info["index"]): a for a in ase.io.read(clusters, ":")}
    parts = [out / f"h4_{part}.xyz" for part in ("train", "validation", "test")]
    exported = [a for path in parts if path.stat().st_size for a in ase.io.read(path, ":")]
    assert len(exported) == 4
    for frame in exported:
        source = new[frame.info["index"]]
        np.testing.assert_allclose(frame.positions, source.positions, atol=1e-8)
        direct = compute(source.numbers, source.positions, HF)
        assert frame.get_potential_energy() == pytest.approx(direct["energy_eV"], abs=1e-6)
    # an extxyz copy and the in-memory frames have the same content keys
    sampled = sample_clusters(HighDensity(n_atoms=4), 4, seed=99)
    assert [j.content_key for j in cluster_jobs(sampled, "h4", HF)] == [
        j.content_key for j in cluster_jobs(list(new.values()), "h4", HF)
    ]


def test_export_refuses_a_stored_row_with_other_positions(tmp_path):
    clusters = sample_clusters(HighDensity(n_atoms=4, rs_bohr=2.0), 2, seed=3)
    store = ReferenceStore(tmp_path / "t.db")
    run_jobs(cluster_jobs(clusters, "t", HF), store, workers=1, progress=False)
    row = next(store.rows(job_key="t/0/hf/sto-3g/lowest"))
    moved = row.toatoms()
    moved.positions[0, 0] += 1e-4  # a database edited behind the pipeline's back
    store.db.update(row.id, atoms=moved)
    with pytest.raises(BodyOrderError) as error:
        export_dataset(store, clusters, "t", HF, tmp_path / "out")
    message = str(error.value)
    assert str(store.path) in message and "frame 0 of t" in message and "\n" not in message


_CONCURRENT = textwrap.dedent(
    """
    import json, pathlib, sys, time
    from ase_bodyorder.reference import HighDensity, sample_clusters
    from ase_bodyorder.reference.electronic import Calculation
    from ase_bodyorder.reference.executor import run_jobs
    from ase_bodyorder.reference.pipeline import cluster_jobs
    from ase_bodyorder.reference.store import ReferenceStore

    if __name__ == "__main__":
        db, barrier, me = sys.argv[1:4]
        clusters = sample_clusters(HighDensity(n_atoms=4, rs_bohr=2.0), 8, seed=5)
        jobs = cluster_jobs(clusters, "c", Calculation(method="hf", basis="sto-3g"))
        store = ReferenceStore(db)
        pathlib.Path(barrier, me).touch()
        while len(list(pathlib.Path(barrier).iterdir())) < 2:
            time.sleep(0.01)
        s = run_jobs(jobs, store, workers=1, progress=False, poll_interval_s=0.2)
        print(json.dumps({"done": s.done, "skipped": s.skipped, "elsewhere": s.elsewhere}))
    """
)


@pytest.mark.slow
def test_concurrent_runs_on_one_database_compute_each_job_once(tmp_path):
    script, barrier, db = tmp_path / "run.py", tmp_path / "barrier", tmp_path / "c.db"
    script.write_text(_CONCURRENT)
    barrier.mkdir()
    runs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), str(barrier), name],
            env=ENV,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    summaries = [json.loads(run.communicate(timeout=300)[0]) for run in runs]
    assert all(run.returncode == 0 for run in runs)
    store = ReferenceStore(db)
    rows = list(store.rows())
    assert len(rows) == 8
    assert len({row.job_key for row in rows}) == len({row.content_key for row in rows}) == 8
    assert sum(s["done"] for s in summaries) == 8  # each job computed once
    assert store.claims() == [] and store.counts() == {"done": 8, "failed": 0, "claimed": 0}


def _stat(pid):
    """(parent pid, state, start time) of a process, or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0], fields[19]


def _descendants(pid):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if (stat := _stat(child)) is not None:
                found[child] = stat[2]
                todo.append(child)
    return found


def _alive(pid, start):
    stat = _stat(pid)
    return stat is not None and stat[1] not in ("Z", "X") and stat[2] == start


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_compute(tmp_path, capsys):
    clusters, db = tmp_path / "h8.xyz", tmp_path / "h8.db"
    _sample(clusters, seed=2, count=12, n_atoms=8, capsys=capsys)
    argv = ["reference", "compute", str(clusters), "--db", str(db), "--basis", "sto-3g"]
    process = subprocess.Popen(
        [sys.executable, "-m", "ase_bodyorder.cli", *argv, "--workers", "2"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    workers, left = {}, None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            if db.exists() and ReferenceStore(db).counts()["done"] >= 1:
                workers = _descendants(process.pid)
                if len(workers) >= 2:
                    break
            time.sleep(0.2)
        status = process.poll()
        assert status is None and len(workers) >= 2, f"no running workers seen (status {status})"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.monotonic() + 60  # a wide margin: it ends when they are gone
        while time.monotonic() < deadline and any(_alive(*w) for w in workers.items()):
            time.sleep(0.1)
        left = [pid for pid, start in workers.items() if _alive(pid, start)]
    finally:  # clean up after a failure
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        for pid, start in workers.items():
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)
    assert left == [], f"workers {left} outlived their killed parent"


def _one_line_error(argv, capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("ase-bodyorder: error: ")
    return err


def test_a_file_that_is_not_a_database_is_a_one_line_error(tmp_path, capsys):
    clusters, db = tmp_path / "h4.xyz", tmp_path / "x.db"
    _sample(clusters, seed=1, count=2)
    db.write_text("not a database\n")
    argv = ["reference", "compute", str(clusters), "--db", str(db), "--basis", "sto-3g"]
    assert str(db) in _one_line_error(argv, capsys)
    assert db.read_text() == "not a database\n"


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "no-port-here"])
def test_a_bad_scheduler_address_is_a_one_line_error(tmp_path, capsys, address):
    pytest.importorskip("distributed")
    clusters, db = tmp_path / "h4.xyz", tmp_path / "s.db"
    _sample(clusters, seed=1, count=2)
    argv = ["reference", "compute", str(clusters), "--db", str(db), "--basis", "sto-3g"]
    start = time.monotonic()
    err = _one_line_error([*argv, "--scheduler", address], capsys)
    assert address in err and "scheduler" in err
    assert time.monotonic() - start < 120  # fails, not hangs (a wide margin)
    assert ReferenceStore(db).claims() == []


def test_mbe_of_a_single_index(tmp_path, capsys):
    clusters, out = tmp_path / "h3.xyz", tmp_path / "mbe.json"
    _sample(clusters, seed=1, count=3, n_atoms=3)
    argv = ["reference", "mbe", str(clusters), "--db", str(tmp_path / "m.db")]
    argv += ["--method", "hf", "--basis", "sto-3g", "--index", "0", "-o", str(out)]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert [c["cluster"] for c in data["clusters"]] == [0]
    # the orders of cluster 0 add up to its HF energy, computed here directly
    orders = np.array(data["clusters"][0]["energies_eV"])
    atoms = ase.io.read(clusters, index=0)
    full = compute(atoms.numbers, atoms.positions, Calculation(method="hf", basis="sto-3g"))
    assert orders.shape == (3,) and orders.sum() == pytest.approx(full["energy_eV"], abs=1e-8)


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_job_and_the_others_go_on(tmp_path):
    """Regression: pyscf dies of a segmentation fault on a plane-wave cutoff of 0, and
    the run ended with a ``BrokenProcessPool`` traceback; now that job is recorded as
    failed with the cause, and the jobs in flight with it are run again."""
    from ase_bodyorder.reference.executor import WORKER_DIED, Job
    from ase_bodyorder.reference.periodic import PeriodicDFT

    with pytest.raises(BodyOrderError, match="ke_cutoff_hartree must be a positive"):
        PeriodicDFT(ke_cutoff_hartree=0)
    crashing = PeriodicDFT()
    object.__setattr__(crashing, "ke_cutoff_hartree", 0.0)  # as settings made elsewhere
    cell = ((3.0, 0, 0), (0, 3.0, 0), (0, 0, 3.0))
    h2 = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.74]])
    hf = Calculation(method="hf", basis="sto-3g", forces=False)
    jobs = [Job(f"h2/{x}", (1, 1), tuple(map(tuple, h2 + [x, 0, 0])), hf) for x in (0, 5)]
    jobs.insert(1, Job("cell", (1, 1), tuple(map(tuple, h2)), crashing, cell=cell))
    store = ReferenceStore(tmp_path / "crash.db")
    summary = run_jobs(jobs, store, workers=2, progress=False)
    assert (summary.done, summary.failed) == (2, 1)
    assert summary.errors == {"cell": WORKER_DIED}
    records = store.matching_records(jobs)
    assert set(records) == {jobs[0].content_key, jobs[2].content_key}
    expected = compute((1, 1), h2, hf)["energy_eV"]
    for job in (jobs[0], jobs[2]):  # translated H2: the same energy
        assert records[job.content_key]["energy_eV"] == pytest.approx(expected, abs=1e-8)
    assert store.claims() == []
    # recorded as failed: a rerun leaves it alone
    assert run_jobs(jobs, store, workers=2, progress=False).skipped == 3


def test_an_export_without_results_is_an_error_and_a_partial_one_warns(tmp_path, capsys):
    """Regression: an export of a method the database does not hold (computed with
    ``--method hf --basis sto-3g``, exported with the defaults), or of a file sampled
    again under the same name, wrote three empty split files and exited 0."""
    clusters, db, out = tmp_path / "h2.xyz", str(tmp_path / "h2.db"), tmp_path / "out"
    hf = ["--db", db, "--method", "hf", "--basis", "sto-3g"]
    _sample(clusters, seed=1, count=2, n_atoms=2, capsys=capsys)
    store = ReferenceStore(db)
    for job in cluster_jobs(ase.io.read(clusters, ":"), "h2", HF):  # `reference compute`
        store.write(job, HF.run(job.numbers, job.positions), error=None)
    export = ["reference", "export", str(clusters), "--out-dir", str(out)]
    assert main([*export, "--db", db]) == 2
    err = _one_line_error_of(capsys)
    assert "none of the 2 structures of h2 has a finished fci/sto-6g/lowest result" in err
    assert db in err and not out.exists()
    # all there: written; too few for a validation and a test part, which is said
    assert main([*export, *hf]) == 0
    captured = capsys.readouterr()
    assert "train: 2 structures" in captured.out
    assert "warning: empty validation and test file(s)" in captured.err
    # one more cluster, not computed: exported without it, and named
    _sample(clusters, seed=1, count=3, n_atoms=2, capsys=capsys)
    assert main([*export, *hf]) == 0
    assert "warning: 1 structures left out, not done in" in capsys.readouterr().err
    assert json.loads((out / "h2_split.json").read_text())["missing"] == [2]
    # the same name, sampled again: nothing of it is in the database
    _sample(clusters, seed=2, count=3, n_atoms=2, capsys=capsys)
    assert main([*export, *hf]) == 2
    assert "none of the 3 structures of h2" in _one_line_error_of(capsys)


def _one_line_error_of(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ase-bodyorder: error:"), err
    return err


@pytest.mark.parametrize("step_A", [1e-4, 2e-6])
def test_positions_or_cells_apart_by_more_than_the_key_precision_are_other_jobs(step_A):
    """A job's key tells apart positions (and cells) that differ by more than 1e-6
    Angstrom, and not those that extxyz's 8 decimals cannot tell apart."""
    from ase_bodyorder.reference.store import content_key

    positions = np.array([[0.0, 0.0, 0.0], [0.123456, 0.25, 0.74]])  # on the 1e-6 grid
    cell = 4.0 * np.eye(3)
    key = content_key([1, 1], positions, HF)
    for atom, axis in ((0, 0), (1, 2)):
        moved = positions.copy()
        moved[atom, axis] += step_A
        assert content_key([1, 1], moved, HF) != key
        tiny = positions.copy()
        tiny[atom, axis] += 1e-9  # below the 8 decimals extxyz writes
        assert content_key([1, 1], tiny, HF) == key
    cell_key = content_key([1, 1], positions, HF, cell)
    assert cell_key != key
    assert content_key([1, 1], positions, HF, cell + step_A * np.eye(3)) != cell_key
    assert content_key([1, 1], positions, HF, cell + 1e-9) == cell_key
