"""CHGNet through the plug-in door: a vacuum box for isolated structures, packed
(runs in .venv-universal: make test)."""

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms

from ase_bodyorder import decompose, resolve_model
from ase_bodyorder.cli import example_path
from ase_bodyorder.models import ASEAtomicModel

pytest.importorskip(
    "chgnet",
    reason="chgnet lives in .venv-universal (make universal-env); make test runs these there",
)

pytestmark = [
    pytest.mark.slow,  # loading CHGNet takes a few seconds
    # chgnet 0.4.2 turns a grad-requiring tensor into a scalar when it builds volumes
    pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True:UserWarning"),
]


@pytest.fixture(scope="module")
def chgnet():
    return resolve_model("chgnet")


def test_a_bare_molecule_gets_a_vacuum_box_wider_than_the_cutoff(chgnet):
    assert chgnet.cutoff == 6.0 and chgnet.dtype == torch.float32
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    bare = chgnet.system(h2, forces=True)
    boxed = h2.copy()
    boxed.cell = np.eye(3) * 15.0  # the 15 Angstrom box: -6.66 eV
    boxed.pbc = True
    boxed.center()
    in_box = chgnet.system(boxed, forces=False)
    assert bare.energy == pytest.approx(-6.66, abs=0.01)
    assert bare.energy == pytest.approx(in_box.energy, abs=1e-5)
    # the forces on a bare dimer are equal and opposite, along the bond
    np.testing.assert_allclose(bare.forces[0], -bare.forces[1], atol=1e-5)
    np.testing.assert_allclose(bare.forces[:, :2], 0.0, atol=1e-5)
    assert np.isfinite(chgnet.isolated_atom_energy(1))


def test_packed_full_mbe_equals_one_call_per_subcluster(chgnet):
    atoms = ase.io.read(example_path())[:5]
    packed = decompose(atoms, chgnet, max_order=len(atoms))
    assert chgnet.evaluation.startswith("packed (checked on 6 sub-clusters")
    assert abs(packed.residual_eV) <= packed.roundoff_eV.sum()
    per_call = ASEAtomicModel(
        chgnet.calculator, cutoff=6.0, needs_cell=True, dtype=torch.float32, pack=False
    )
    single = decompose(atoms, per_call, max_order=len(atoms))
    difference = np.abs(packed.energies_eV - single.energies_eV)
    assert np.all(difference <= 16 * packed.roundoff_eV)
