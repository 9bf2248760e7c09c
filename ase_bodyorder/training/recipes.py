"""The H8 cluster recipes that the shipped models and the training study share.

PET and SOAP-BPNN on the FCI/STO-6G clusters, with the exact STO-6G H atom as their
1-body baseline: the one place their hyperparameters are written
(:mod:`~ase_bodyorder.training.shipped` trains them for a few epochs,
:func:`ase_bodyorder.study.study_settings` for the study's schedule).
"""

from __future__ import annotations

from ase.units import Hartree

from .metatrain import MetatrainSettings

__all__ = ["H_ATOM_STO6G_EV", "pet_h8", "soap_bpnn_h8"]

#: energy of one H atom in STO-6G (ROHF = exact for one electron), eV
H_ATOM_STO6G_EV = -0.47103905418349024 * Hartree


def _sto6g_baseline() -> dict:
    return {"training": {"atomic_baseline": {"energy": {1: H_ATOM_STO6G_EV}}}}


def pet_h8(epochs: int) -> MetatrainSettings:
    """PET for the H8 clusters (4.5 Angstrom cutoff, one attention layer, two GNN layers)."""
    return MetatrainSettings(
        architecture="pet",
        num_epochs=epochs,
        batch_size=16,
        learning_rate=3e-4,
        cutoff=4.5,
        d_pet=64,
        d_node=128,
        num_attention_layers=1,
        num_gnn_layers=2,
        extra_hypers=_sto6g_baseline(),
    )


def soap_bpnn_h8(epochs: int) -> MetatrainSettings:
    """SOAP-BPNN for the H8 clusters (4.5 Angstrom cutoff)."""
    return MetatrainSettings(
        architecture="soap_bpnn",
        num_epochs=epochs,
        batch_size=16,
        cutoff=4.5,
        extra_hypers=_sto6g_baseline(),
    )
