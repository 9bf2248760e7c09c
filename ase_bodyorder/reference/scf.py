"""The pyscf start of every cluster method of :mod:`.electronic`: the molecule, its SCF,
the molecular-orbital integrals, and the nuclear gradient of a full-space CI (FCI, DMRG)
from its density matrices.

pyscf works in Hartree and bohr; positions go in in Angstrom.
"""

from __future__ import annotations

import numpy as np

from ..expansion import BodyOrderError

__all__ = ["ElectronicStructureError", "mo_integrals", "molecule", "rdm_gradient", "run_scf"]


class ElectronicStructureError(BodyOrderError):
    """A calculation could not give the requested state."""


def molecule(positions, basis: str, two_s: int):
    """The pyscf molecule of hydrogen atoms at ``positions`` (Angstrom), spin 2S = ``two_s``."""
    from pyscf import gto  # pyscf

    return gto.M(
        atom=[("H", tuple(p)) for p in positions],
        basis=basis,
        unit="Angstrom",
        spin=two_s,
        verbose=0,
    )


def run_scf(mol):
    """The converged RHF (singlet) or ROHF (other spins) of ``mol``, by second-order SCF
    where the plain one does not converge."""
    from pyscf import scf  # pyscf

    mf = scf.RHF(mol) if mol.spin == 0 else scf.ROHF(mol)
    mf.conv_tol = 1e-11
    mf.max_cycle = 200
    mf.kernel()
    if not mf.converged:
        mf = mf.newton()
        mf.kernel()
    if not mf.converged:
        raise ElectronicStructureError("the SCF did not converge")
    return mf


class _StoredRDMs:
    """A stand-in fcisolver handing pyscf's CASSCF gradient code precomputed RDMs."""

    def make_rdm12(self, ci, ncas, nelecas):
        return ci

    def make_rdm1(self, ci, ncas, nelecas):
        return ci[0]


def rdm_gradient(mf, dm1: np.ndarray, dm2: np.ndarray) -> np.ndarray:
    """Nuclear gradient (Hartree/bohr) of a full-space CI energy from its spin-summed RDMs."""
    from pyscf import mcscf  # pyscf

    mol = mf.mol
    mc = mcscf.CASSCF(mf, mol.nao, mol.nelectron)
    mc.mo_coeff = mf.mo_coeff
    mc.fcisolver = _StoredRDMs()
    mc.ci = (dm1, dm2)
    grad = mc.nuc_grad_method()
    return grad.grad_elec(mo_coeff=mf.mo_coeff, ci=(dm1, dm2)) + grad.grad_nuc()


def mo_integrals(mf):
    """One- and two-electron integrals (Hartree) over the SCF's molecular orbitals."""
    from pyscf import ao2mo  # pyscf

    c = mf.mo_coeff
    h1 = c.T @ mf.get_hcore() @ c
    g2 = ao2mo.restore(1, ao2mo.kernel(mf.mol, c), c.shape[1])
    return h1, g2
