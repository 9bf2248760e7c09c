"""The shipped fragment data: complete, traceable to its parents, equal to FCI recomputed."""

import json
from math import comb
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.units import Hartree

from ase_bodyorder.expansion import parse_subcluster_label
from ase_bodyorder.io import read_structures
from ase_bodyorder.reference.electronic import Calculation, compute
from ase_bodyorder.reference.fragments import provenance_path

DATA = Path(__file__).resolve().parents[2] / "ase_bodyorder" / "data" / "reference"
DENSITIES = ["high", "low"]


def _shipped(density):
    path = DATA / f"h8-{density}_fragments_fci_sto6g.xyz.gz"
    if not path.is_file():
        pytest.fail(f"{path} is not shipped")
    return path, read_structures(path)


@pytest.mark.parametrize("density", DENSITIES)
def test_every_fragment_of_100_training_clusters_maps_back_to_its_parent(density):
    path, frames = _shipped(density)
    meta = json.loads(provenance_path(path).read_text())
    split = json.loads((DATA / f"h8-{density}_split.json").read_text())
    train = set(split["files"]["train"]["indices"])
    clusters = ase.io.read(DATA / f"h8-{density}_clusters.xyz", ":")
    parents = {int(a.info["index"]): a for a in clusters}
    assert len(meta["parents"]) >= 100 and set(meta["parents"]) <= train
    assert meta["missing"] == []
    expected = {1: 1} | {k: comb(8, k) * len(meta["parents"]) for k in range(2, 8)}
    sizes = np.bincount([len(a) for a in frames], minlength=8)
    assert {k: int(sizes[k]) for k in range(1, 8)} == expected
    seen = set()
    for frame in frames:
        parent = int(frame.info["parent"])
        assert parent in train
        members, _ = parse_subcluster_label(str(frame.info["label"]))
        assert len(members) == len(frame) == frame.info["size"]
        if len(frame) == 1:
            continue  # the isolated atom: at the parent's atom 0, its position irrelevant
        np.testing.assert_allclose(frame.positions, parents[parent].positions[members], atol=1e-7)
        seen.add((parent, tuple(members)))
    assert len(seen) == len(frames) - 1  # no fragment twice


@pytest.mark.parametrize("density", DENSITIES)
def test_the_atom_equals_the_shipped_mbe_and_fragments_equal_fci_recomputed(density):
    pytest.importorskip("pyscf")
    path, frames = _shipped(density)
    mbe = json.loads((DATA / f"h8-{density}_mbe_fci_sto6g.json").read_text())
    atom = next(a for a in frames if len(a) == 1)
    # the only sub-cluster both hold (MBE clusters are held out, fragments are not)
    assert atom.info["energy_Ha"] == pytest.approx(
        mbe["clusters"][0]["subcluster_energies_Ha"]["0"], abs=1e-10
    )
    np.testing.assert_array_equal(atom.get_forces(), 0.0)
    calc = Calculation.from_dict(mbe["calculation"])
    rng = np.random.default_rng(0)
    for size in (2, 3, 5):
        candidates = [a for a in frames if len(a) == size]
        frame = candidates[rng.integers(len(candidates))]
        record = compute(frame.numbers, frame.positions, calc)
        # Stretched open-shell fragments have near-degenerate doublets (measured: an H2
        # with three atoms 3-5 A away, at low density, has three states within 23 ueV),
        # among which the Davidson solver's converged energy depends on the machine's
        # arithmetic by up to 7 ueV (this H5: stored 2.1 ueV above the exact lowest
        # doublet, recomputed on another machine 6.6 ueV above it). 2e-5 eV bounds that.
        # (An exact diagonalisation of these small spaces would remove the ambiguity.)
        assert frame.get_potential_energy() == pytest.approx(record["energy_eV"], abs=2e-5)
        assert frame.info["energy_Ha"] * Hartree == pytest.approx(record["energy_eV"], abs=2e-5)
        # the same mixing moves forces by up to 3e-5 eV/A (this H5)
        np.testing.assert_allclose(frame.get_forces(), record["forces_eV_per_A"], atol=1e-4)
        assert frame.info["two_s"] == size % 2
