"""Structure files at the edges: gzipped extxyz read in one pass, equal to the plain file."""

import gzip

import ase.io
import numpy as np
import pytest
from ase import Atoms

from ase_bodyorder.io import read_structures


def test_gzipped_extxyz_is_read_in_one_pass_and_equals_the_plain_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    frames = []
    for k in range(30):
        atoms = Atoms("H" * (1 + k % 4), positions=rng.normal(size=(1 + k % 4, 3)))
        atoms.info.update(energy=float(k), label="0-1" if k % 2 else "3", parent=k)
        atoms.arrays["forces"] = rng.normal(size=(len(atoms), 3))
        frames.append(atoms)
    plain = tmp_path / "f.xyz"
    ase.io.write(plain, frames, format="extxyz")
    packed = tmp_path / "f.xyz.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))

    # ASE's own reader seeks back through the gzip stream for every frame (quadratic
    # time: 25,000 fragments took hours); ours must not seek at all
    def no_seek(self, *args, **kwargs):
        raise AssertionError("seek on a gzip stream")

    monkeypatch.setattr(gzip.GzipFile, "seek", no_seek)
    read = read_structures(packed)
    monkeypatch.undo()
    expected = ase.io.read(plain, ":")
    assert len(read) == len(expected) == 30
    for a, b in zip(read, expected, strict=True):
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.get_forces(), b.get_forces())
        assert a.info == b.info
    assert read_structures(packed, "2")[0].info["parent"] == 2
    with pytest.raises(AssertionError, match="seek"):
        monkeypatch.setattr(gzip.GzipFile, "seek", no_seek)
        ase.io.read(packed, ":")  # the pitfall this guards against
