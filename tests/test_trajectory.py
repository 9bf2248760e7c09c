"""Trajectories on a cluster: frames as jobs, results in frame order, resumable."""

import numpy as np
import pytest

from ase_bodyorder import BodyOrderError
from ase_bodyorder import trajectory as trajectory_module
from ase_bodyorder.decompose import decompose_frames
from ase_bodyorder.models import load_model
from ase_bodyorder.trajectory import decompose_trajectory


@pytest.fixture
def frames(periodic_h):
    out = []
    for k in range(5):
        atoms = periodic_h.repeat((2, 2, 2))
        atoms.rattle(0.05, seed=k)
        out.append(atoms)
    return out


def _same(a, b):
    np.testing.assert_array_equal(a.energies_eV, b.energies_eV)
    np.testing.assert_array_equal(a.energies_per_atom_eV, b.energies_per_atom_eV)
    assert a.residual_eV == b.residual_eV


def test_a_dask_cluster_gives_the_local_results_in_frame_order(frames):
    distributed = pytest.importorskip("distributed")
    kwargs = dict(order=3, r_mbe=2.0, sample_atoms=5, seed=7)
    local = list(decompose_frames(frames, load_model("h-morse-atm"), **kwargs))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = decompose_trajectory(frames, "h-morse-atm", scheduler=client, **kwargs)
    assert len(remote) == len(frames)
    for a, b in zip(local, remote, strict=True):
        _same(a, b)
        assert a.sample_seed == b.sample_seed
    # frames differ, so a mixed-up order could not pass
    assert len({tuple(r.energies_eV) for r in remote}) == len(frames)


def test_an_interrupted_run_resumes_from_its_store(frames, tmp_path, monkeypatch):
    store = tmp_path / "store"
    first = decompose_trajectory(frames, "h-morse-atm", order=2, r_mbe=2.0, store=store)
    (stored_3,) = store.glob("frame-000003-*.json")
    stored_3.unlink()  # as if killed before this frame ended
    (stored_1,) = store.glob("frame-000001-*.json")
    stored_1.write_text('{"fingerprint": "cut o')  # cut off
    computed = []
    run_frame = trajectory_module._run_frame

    def counting(job):
        computed.append(job[0])
        return run_frame(job)

    monkeypatch.setattr(trajectory_module, "_run_frame", counting)
    again = decompose_trajectory(frames, "h-morse-atm", order=2, r_mbe=2.0, store=store)
    assert sorted(computed) == [1, 3]
    for a, b in zip(first, again, strict=True):
        _same(a, b)
    # other settings are other jobs: nothing stored is reused for them
    computed.clear()
    decompose_trajectory(frames, "h-morse-atm", order=3, r_mbe=2.0, store=store)
    assert sorted(computed) == list(range(len(frames)))


def test_a_bad_frame_is_named(frames):
    frames[2].positions[1] = frames[2].positions[0] + 0.01  # overlapping atoms
    with pytest.raises(BodyOrderError, match="1 frame\\(s\\) could not be expanded; frame 2"):
        decompose_trajectory(frames, "h-morse-atm", order=2, r_mbe=2.0)
    with pytest.raises(BodyOrderError, match="unknown model"):
        decompose_trajectory(frames, "no-such-model", order=2, r_mbe=2.0)


def test_the_fingerprint_hashes_the_frame_and_its_expansion_settings(frames):
    from ase_bodyorder import ExpansionSettings
    from ase_bodyorder.trajectory import frame_fingerprint

    settings = ExpansionSettings(order=3, r_mbe=2.0)
    key = frame_fingerprint(frames[0], settings, "h-morse-atm", {"forces": False})
    assert key == frame_fingerprint(
        frames[0], ExpansionSettings(order=3, r_mbe=2.0), "h-morse-atm", {"forces": False}
    )
    others = [
        frame_fingerprint(frames[1], settings, "h-morse-atm", {"forces": False}),
        frame_fingerprint(frames[0], settings, "h-lj", {"forces": False}),
        frame_fingerprint(frames[0], settings, "h-morse-atm", {"forces": True}),
    ]
    others += [
        frame_fingerprint(frames[0], settings.replace(**change), "h-morse-atm", {"forces": False})
        for change in (
            {"order": 2},
            {"r_mbe": 2.5},
            {"precision": "float32"},
            {"max_roundoff_eV": 0.01},
            {"screening": False},
            {"sample_atoms": 4, "seed": 1},
        )
    ]
    assert len({key, *others}) == len(others) + 1
    with pytest.raises(BodyOrderError, match="settings must be ExpansionSettings"):
        frame_fingerprint(frames[0], {"order": 3}, "h-morse-atm")


def test_a_stored_sample_is_reused_by_any_selection_of_the_file(periodic_h, tmp_path, monkeypatch):
    """Each frame's sample is seeded by its index in the file: a store filled from a
    selection serves the whole file, and the same frames give the same samples."""
    from ase_bodyorder import ExpansionSettings

    frames = []
    for k in range(4):
        atoms = periodic_h.copy()
        atoms.rattle(0.05, seed=k)
        frames.append(atoms)
    store = tmp_path / "store"
    settings = ExpansionSettings(order=2, r_mbe=2.0, sample_atoms=2, seed=3)
    part = decompose_trajectory(frames[2:], "h-morse-atm", settings, store=store, indices=[2, 3])
    computed = []
    run_frame = trajectory_module._run_frame

    def counting(job):
        computed.append(job[0])
        return run_frame(job)

    monkeypatch.setattr(trajectory_module, "_run_frame", counting)
    whole = decompose_trajectory(frames, "h-morse-atm", settings, store=store)
    assert sorted(computed) == [0, 1]
    for a, b in zip(part, whole[2:], strict=True):
        _same(a, b)
        assert a.sample_indices.tolist() == b.sample_indices.tolist()
    local = list(decompose_frames(frames, load_model("h-morse-atm"), settings=settings))
    for a, b in zip(local, whole, strict=True):
        _same(a, b)
    assert len({r.sample_seed for r in whole}) == len(frames)
