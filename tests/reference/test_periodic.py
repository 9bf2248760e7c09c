"""Periodic dense-hydrogen reference: sampling, DFT energies and forces, jobs in the
reference store (local processes and dask), the CLI, export, old results files."""

import hashlib
import json
import math

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.units import Bohr

from ase_bodyorder.cli import main
from ase_bodyorder.expansion import BodyOrderError
from ase_bodyorder.reference.electronic import Calculation
from ase_bodyorder.reference.executor import Job
from ase_bodyorder.reference.periodic import (
    DenseBulk,
    PeriodicDFT,
    compute_periodic,
    export_bulk,
    import_results,
    periodic_jobs,
    periodic_records,
    read_results,
    run_periodic,
    sample_bulk,
)
from ase_bodyorder.reference.store import ReferenceStore, content_key

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


#: the smallest settings the tests use: two-atom cells, a low plane-wave cutoff
SMALL_DFT = PeriodicDFT(ke_cutoff_hartree=40.0)


def _small_cells(count=2, seed=1):
    return sample_bulk(DenseBulk(n_atoms=2), count, seed)


def test_periodic_jobs_run_into_the_store_and_a_rerun_computes_nothing(tmp_path):
    cells = _small_cells()
    store = ReferenceStore(tmp_path / "bulk.db")
    summary = run_periodic(cells, store, SMALL_DFT, dataset="t", workers=1, progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (2, 0, 0)
    records = periodic_records(store, cells, "t", SMALL_DFT)
    assert sorted(records) == [0, 1]
    for atoms in cells:
        direct = compute_periodic(atoms, SMALL_DFT)
        record = records[int(atoms.info["index"])]
        assert record["energy_eV"] == pytest.approx(direct["energy_eV"], abs=1e-6)
        np.testing.assert_allclose(record["forces_eV_per_A"], direct["forces_eV_per_A"], atol=1e-5)
    rows = list(store.rows())
    assert all(row.pbc.all() and row.get("method") == "periodic-dft" for row in rows)
    again = run_periodic(cells, store, SMALL_DFT, dataset="t", workers=1, progress=False)
    assert (again.done, again.skipped) == (0, 2)
    # one more cell: only it is computed
    more = run_periodic(
        _small_cells(count=3), store, SMALL_DFT, dataset="t", workers=1, progress=False
    )
    assert (more.done, more.skipped) == (1, 2)


def test_periodic_content_keys_are_the_store_key_of_species_positions_cell_and_settings():
    (atoms,) = _small_cells(count=1)
    (job,) = periodic_jobs([atoms], "t", SMALL_DFT)
    assert isinstance(job, Job)
    assert job.content_key == content_key(atoms.numbers, atoms.positions, SMALL_DFT, atoms.cell)
    # the same positions in another cell, or other settings, are other jobs
    stretched = atoms.copy()
    stretched.set_cell(atoms.cell * 1.01, scale_atoms=False)
    (other_cell,) = periodic_jobs([stretched], "t", SMALL_DFT)
    (other_settings,) = periodic_jobs([atoms], "t", PeriodicDFT(ke_cutoff_hartree=41.0))
    assert len({job.content_key, other_cell.content_key, other_settings.content_key}) == 3
    # an integer setting is the same job as its float (regression: a script's cutoff of
    # 90 did not find the cells the CLI had computed at 90.0)
    assert content_key(atoms.numbers, atoms.positions, PeriodicDFT(ke_cutoff_hartree=41), None) == (
        content_key(atoms.numbers, atoms.positions, PeriodicDFT(ke_cutoff_hartree=41.0), None)
    )
    # the readable key does not enter the content key
    assert periodic_jobs([atoms], "other-name", SMALL_DFT)[0].content_key == job.content_key


def test_cluster_content_keys_keep_their_recipe():
    """A cluster job (no cell) gets the key the stores written before periodic jobs hold."""
    calc = Calculation(method="hf", basis="sto-3g")
    positions = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.74123456789]])
    content = {
        "version": 1,
        "numbers": [1, 1],
        "positions_per_1e-6_A": [[0, 0, 0], [0, 0, 741235]],
        # the result-changing settings: the DMRG ones only for method "dmrg"
        "calculation": {k: v for k, v in calc.to_dict().items() if k != "dmrg"},
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    assert content_key([1, 1], positions, calc) == hashlib.sha256(text.encode()).hexdigest()


def test_a_dask_cluster_gives_the_local_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    cells = _small_cells()
    local = ReferenceStore(tmp_path / "local.db")
    run_periodic(cells, local, SMALL_DFT, dataset="t", workers=1, progress=False)
    # a worker process, as on a real cluster: pyscf's periodic gradients crashed the
    # interpreter (segmentation fault) when run in a thread of the test's own process
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        with distributed.Client(cluster) as client:
            remote = ReferenceStore(tmp_path / "dask.db")
            summary = run_periodic(
                cells, remote, SMALL_DFT, dataset="t", scheduler=client, progress=False
            )
    assert summary.done == 2
    expected = periodic_records(local, cells, "t", SMALL_DFT)
    got = periodic_records(remote, cells, "t", SMALL_DFT)
    assert got.keys() == expected.keys() == {0, 1}
    for index, record in expected.items():
        assert got[index]["energy_eV"] == pytest.approx(record["energy_eV"], abs=1e-6)


def test_cli_computes_resumes_and_exports(tmp_path, capsys):
    db, out = tmp_path / "cli.db", tmp_path / "out"
    argv = ["reference", "periodic", "--n-atoms", "2", "--count", "3", "--seed", "1"]
    argv += ["--ke-cutoff-hartree", "40", "--dataset", "toy", "--db", str(db)]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("3 done, 0 failed, 0 already")
    assert main([*argv, "--out-dir", str(out), "--workers", "2"]) == 0
    assert capsys.readouterr().out.startswith("0 done, 0 failed, 3 already")
    meta = json.loads((out / "toy_split.json").read_text())
    assert meta["missing"] == []
    assert sum(info["count"] for info in meta["files"].values()) == 3
    # every sampled cell, for `reference cell-fragments`
    assert len(ase.io.read(out / "toy_cells.xyz", ":")) == 3


def test_a_store_is_required_and_an_old_results_file_is_imported(tmp_path):
    cells = _small_cells()
    with pytest.raises(BodyOrderError, match="ReferenceStore"):
        run_periodic(cells, tmp_path / "old.jsonl", SMALL_DFT, progress=False)
    old = tmp_path / "old.jsonl"
    lines = [
        {"index": 0, "energy_eV": -20.5, "forces_eV_per_A": [[0.1] * 3, [-0.1] * 3]},
        {"index": 1, "error": "BodyOrderError: SCF did not converge in 200 cycles"},
    ]
    old.write_text("".join(json.dumps({"error": None, **line}) + "\n" for line in lines))
    store = ReferenceStore(tmp_path / "bulk.db")
    assert import_results(old, cells, store, "t", SMALL_DFT) == 2
    assert import_results(old, cells, store, "t", SMALL_DFT) == 0  # already there
    summary = run_periodic(cells, store, SMALL_DFT, dataset="t", progress=False)
    assert (summary.done, summary.skipped) == (0, 2)  # nothing computed
    records = periodic_records(store, cells, "t", SMALL_DFT)
    assert list(records) == [0] and records[0]["energy_eV"] == -20.5
    assert store.counts() == {"done": 1, "failed": 1, "claimed": 0}


def test_a_kpoint_mesh_is_the_gamma_point_of_the_supercell():
    """Band theory's identity: a cell sampled on a Gamma-centred n1 x n2 x n3 mesh is
    the n1 x n2 x n3 supercell at the Gamma point (energy per atom and forces). The
    supercell runs through pyscf directly, with the same plane-wave integrals (the
    Gamma-point route of compute_periodic integrates on multigrids, which differ by a
    few meV at this low cutoff)."""
    from ase.units import Hartree
    from pyscf.pbc import dft

    from ase_bodyorder.reference.periodic import _cell

    atoms = _two_atom_cell()
    meshed = PeriodicDFT(ke_cutoff_hartree=40.0, conv_tol_hartree=1e-11, kpoint_length_angstrom=3.0)
    assert meshed.kmesh(atoms.cell) == (2, 2, 2)
    # this cell is at rs 1.77 bohr: its mesh; twice as long (rs 3.53), Gamma when asked
    dilute = PeriodicDFT(kpoint_length_angstrom=3.0, gamma_above_rs_bohr=2.4)
    assert dilute.kmesh(atoms.cell, 2) == (2, 2, 2)
    assert dilute.kmesh(atoms.cell * 2, 2) == (1, 1, 1)
    assert meshed.kmesh(atoms.cell * 2, 2) == (1, 1, 1)  # 3.8 Angstrom > 3.0 anyway
    assert dilute.to_dict()["gamma_above_rs_bohr"] == 2.4
    record = compute_periodic(atoms, meshed)
    assert record["kmesh"] == [2, 2, 2]
    # the identity is exact on commensurate grids: the supercell's FFT mesh twice the cell's
    supercell = _cell(atoms.repeat(2), meshed)
    supercell.build(mesh=[2 * int(n) for n in _cell(atoms, meshed).mesh])
    mf = dft.KRKS(supercell, np.zeros((1, 3)))
    mf.xc = meshed.xc
    mf = mf.smearing(sigma=meshed.smearing_hartree, method="fermi")
    mf.conv_tol = 1e-11
    mf.kernel()
    supercell_forces = -np.asarray(mf.nuc_grad_method().kernel()) * Hartree / Bohr
    assert record["energy_eV"] == pytest.approx(mf.e_free * Hartree / 8, abs=1e-6)
    np.testing.assert_allclose(record["forces_eV_per_A"], supercell_forces[:2], atol=1e-5)
    # Gamma-point settings keep their content keys: no k-point entries in their dict
    assert set(PeriodicDFT().to_dict()) == {
        "xc", "basis", "pseudo", "ke_cutoff_hartree", "smearing_hartree",
        "conv_tol_hartree", "max_cycle",
    }  # fmt: skip
    assert meshed.to_dict()["kpoint_length_angstrom"] == 3.0
    with pytest.raises(BodyOrderError, match="kpoint_grid"):
        PeriodicDFT(kpoint_grid="baldereschi")


def test_kpoint_forces_are_the_gradient_of_the_free_energy():
    settings = PeriodicDFT(
        ke_cutoff_hartree=40.0,
        conv_tol_hartree=1e-11,
        kpoint_length_angstrom=3.0,
        kpoint_grid="shifted",
    )
    atoms = _two_atom_cell()
    forces = np.asarray(compute_periodic(atoms, settings)["forces_eV_per_A"])
    h = 1e-3
    shifted = []
    for sign in (1, -1):
        moved = atoms.copy()
        moved.positions[1, 2] += sign * h
        shifted.append(compute_periodic(moved, settings)["energy_eV"])
    numeric = -(shifted[0] - shifted[1]) / (2 * h)
    assert abs(numeric - forces[1, 2]) < 2e-3 * max(1.0, abs(numeric))


def test_finite_size_report_compares_meshes_with_the_reference(tmp_path):
    from ase_bodyorder.reference.finite_size import (
        kpoint_convergence,
        mesh_settings,
        write_report,
    )

    atoms = _two_atom_cell()
    base = PeriodicDFT(ke_cutoff_hartree=30.0)
    assert mesh_settings("g3", atoms, base).kmesh(atoms.cell) == (3, 3, 3)
    assert mesh_settings("s2", atoms, base).kpoint_grid == "shifted"
    with pytest.raises(BodyOrderError, match="mesh"):
        mesh_settings("k2", atoms, base)
    rows = kpoint_convergence([("two atoms", atoms, (("gamma", "g2"), "g2"))], base)
    by_mesh = {r["mesh"]: r for r in rows}
    assert by_mesh["g2"]["force_rms_difference_eV_per_A"] == 0
    assert by_mesh["gamma"]["force_rms_difference_eV_per_A"] > 0.01  # a 1.9 A metal cell
    path = write_report(rows, tmp_path, base, "cmd")
    assert "| two atoms |" in path.read_text()
    assert (tmp_path / "finite_size.json").exists()


@pytest.mark.parametrize("grid, chunk_bytes", [("gamma", 2**28), ("shifted", 1)])
def test_cached_core_hamiltonian_gradient_equals_pyscfs(grid, chunk_bytes, monkeypatch):
    """The k-point gradient evaluates each k-point's AOs once, several k-points per call
    (pyscf: once per atom and k-point); the core-Hamiltonian derivatives and the whole
    gradient are pyscf's, with all k-points in one call or one per call."""
    from pyscf.pbc import dft

    from ase_bodyorder.reference import periodic
    from ase_bodyorder.reference.periodic import _cell, _gradients

    monkeypatch.setattr(periodic, "_AO_CHUNK_BYTES", chunk_bytes)  # 1: one k-point per call
    settings = PeriodicDFT(ke_cutoff_hartree=40.0, kpoint_length_angstrom=3.0, kpoint_grid=grid)
    atoms = _two_atom_cell()
    cell = _cell(atoms, settings)
    mesh = settings.kmesh(atoms.cell)
    mf = dft.KRKS(cell, cell.make_kpts(mesh, with_gamma_point=grid == "gamma"))
    mf = mf.smearing(sigma=settings.smearing_hartree, method="fermi")
    mf.xc = settings.xc
    mf.kernel()
    stock, cached = mf.nuc_grad_method(), _gradients(mf)
    assert cached.hcore_generator != stock.hcore_generator
    for atom in range(len(atoms)):
        expected = stock.hcore_generator()(atom)
        assert np.abs(cached.hcore_generator()(atom) - expected).max() < 1e-10
    assert np.abs(cached.kernel() - stock.kernel()).max() < 1e-10


def test_policy_cells_pair_the_policy_mesh_with_a_denser_one():
    """The finite-size check of a data set's k-point policy: each picked cell (nearest in
    rs) on the mesh the policy gives it and on the shifted mesh one k-point denser."""
    from ase_bodyorder.reference.finite_size import mesh_settings, policy_cells, policy_mesh
    from ase_bodyorder.structures import CrossoverBulk, sample_crossover_bulk

    policy = PeriodicDFT(kpoint_length_angstrom=9.5, gamma_above_rs_bohr=2.4)
    cells = sample_crossover_bulk(CrossoverBulk(), 40, 4001)
    picked = policy_cells(cells, policy, (1.5, 2.8))
    (_, dense, (dense_meshes, dense_ref)), (_, dilute, (dilute_meshes, _)) = picked
    assert abs(dense.info["rs_bohr"] - 1.5) == min(abs(a.info["rs_bohr"] - 1.5) for a in cells)
    n = math.ceil(9.5 / dense.cell.lengths()[0])
    assert dense_meshes == (f"g{n}", f"s{n + 1}") and dense_ref == f"s{n + 1}"
    # the named mesh is the policy's own mesh of that cell
    own = mesh_settings(dense_meshes[0], dense, policy).kmesh(dense.cell.array, len(dense))
    assert own == policy.kmesh(dense.cell.array, len(dense)) == (n, n, n)
    assert dilute.info["rs_bohr"] > 2.4 and dilute_meshes == ("gamma", "s2")
    assert policy_mesh(dilute, policy) == "gamma"
