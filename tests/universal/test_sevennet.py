"""SevenNet through the plug-in door, packed (runs in .venv-universal: make test)."""

import warnings

import ase.io
import numpy as np
import pytest
import torch

from ase_bodyorder import decompose, resolve_model
from ase_bodyorder.cli import example_path
from ase_bodyorder.models import ASEAtomicModel, available_models

sevenn = pytest.importorskip(
    "sevenn",
    reason="sevenn lives in .venv-universal (make universal-env); make test runs these there",
)

pytestmark = pytest.mark.slow  # loading SevenNet-0 takes 5-20 s


@pytest.fixture(scope="module")
def sevennet_0():
    with warnings.catch_warnings():  # sevenn scripts modules at import (torch.jit)
        warnings.simplefilter("ignore", DeprecationWarning)
        import sevenn.util

    def no_download(*args, **kwargs):
        raise AssertionError(f"sevenn tried to download {args}")

    original = sevenn.util.download_checkpoint
    sevenn.util.download_checkpoint = no_download
    try:
        return resolve_model("7net-0")
    finally:
        sevenn.util.download_checkpoint = original


def test_the_shipped_sevennet_models_are_listed_as_plugins():
    listed = available_models()
    for name in ("7net-0", "7net-0-22may2024", "7net-l3i5", "7net-mf-0-pbe"):
        assert listed[name].endswith("(plug-in)")


def test_sevennet_0_declares_its_cutoff_layers_and_precision(sevennet_0):
    assert isinstance(sevennet_0, ASEAtomicModel)
    assert sevennet_0.cutoff == 5.0 and sevennet_0.interaction_layers == 5
    assert sevennet_0.dtype == torch.float32 and 1 in sevennet_0.atomic_numbers


def test_packed_full_mbe_equals_one_call_per_subcluster(sevennet_0):
    atoms = ase.io.read(example_path())[:6]  # 63 sub-clusters (the benchmark takes H8)
    packed = decompose(atoms, sevennet_0, max_order=len(atoms))
    assert sevennet_0.evaluation.startswith("packed (checked on 6 sub-clusters")
    # the full expansion sums to the model's energy, to float32 round-off
    assert abs(packed.residual_eV) <= packed.roundoff_eV.sum()
    per_call = ASEAtomicModel(
        sevennet_0.calculator, cutoff=5.0, interaction_layers=5, dtype=torch.float32, pack=False
    )
    single = decompose(atoms, per_call, max_order=len(atoms))
    assert per_call.evaluation.startswith("one call per sub-cluster: packing switched off")
    # each order from float32 per-atom energies that the packing changes by a few ulps
    # (the check allows 64 ulps of the largest): within 16 float32 ulps of every term
    difference = np.abs(packed.energies_eV - single.energies_eV)
    assert np.all(difference <= 16 * packed.roundoff_eV)
    assert np.any(difference > 0)  # float32: the two paths are not bitwise equal
