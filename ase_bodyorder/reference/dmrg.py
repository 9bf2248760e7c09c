"""DMRG energies and gradients of hydrogen clusters (block2, SU(2) symmetry).

A bond-dimension schedule, converged by energy change and discarded weight; the
gradient is the full-space CASSCF gradient of its 1- and 2-particle density matrices
(:func:`~.scf.rdm_gradient`). The settings are part of a
:class:`~.electronic.Calculation` (``method="dmrg"``). Hartree and bohr inside.
"""

from __future__ import annotations

import math
import tempfile
from typing import Annotated, ClassVar

import numpy as np

from .._settings import NonNegativeNumber, PositiveInt, PositiveNumber, Rule, Settings
from .scf import ElectronicStructureError, mo_integrals, rdm_gradient

__all__ = ["DMRGNotConverged", "DMRGSettings", "run_dmrg"]


class DMRGNotConverged(ElectronicStructureError):
    """DMRG did not reach the energy or discarded-weight tolerance."""


class DMRGSettings(Settings):
    """block2 DMRG settings.

    ``bond_dims``/``noises``: the schedule, four sweeps per stage, then sweeps at the last
    bond dimension without noise until converged or ``max_sweeps``. Converged when the
    energy changes by less than ``energy_tol`` (Hartree) over the last two sweeps and the
    largest discarded weight of the last sweep is below ``discarded_weight_tol``.
    """

    settings_name: ClassVar[str] = "DMRG"

    bond_dims: Annotated[tuple[PositiveInt, ...], Rule("positive integers")] = (100, 250, 500)
    noises: Annotated[tuple[NonNegativeNumber, ...], Rule("non-negative numbers")] = (
        1e-4,
        1e-5,
        1e-6,
    )
    max_sweeps: PositiveInt = 40
    energy_tol: PositiveNumber = 1e-8
    discarded_weight_tol: PositiveNumber = 1e-7
    davidson_tol: PositiveNumber = 1e-10
    n_threads: PositiveInt = 1


def run_dmrg(mf, two_s: int, settings: DMRGSettings, gradient: bool) -> dict:
    """DMRG of spin 2S = ``two_s`` on the orbitals of the SCF ``mf``: ``energy_Ha``,
    ``spin_square``, sweeps (``iterations``), ``discarded_weight``, ``energy_change_Ha``
    and, with ``gradient``, ``gradient_Ha_per_bohr``; :class:`DMRGNotConverged` when the
    tolerances are not met."""
    from pyblock2.driver.core import DMRGDriver, SymmetryTypes  # block2

    mol = mf.mol
    h1, g2 = mo_integrals(mf)
    with tempfile.TemporaryDirectory(prefix="block2-") as scratch:
        driver = DMRGDriver(
            scratch=scratch,
            symm_type=SymmetryTypes.SU2,
            n_threads=settings.n_threads,
            stack_mem=int(2e9),
        )
        driver.initialize_system(n_sites=mol.nao, n_elec=mol.nelectron, spin=two_s)
        mpo = driver.get_qc_mpo(h1e=h1, g2e=g2, ecore=mol.energy_nuc(), iprint=0)
        ket = driver.get_random_mps(tag="KET", bond_dim=settings.bond_dims[0], nroots=1)
        bond_dims, noises = [], []
        for m, noise in zip(settings.bond_dims, settings.noises, strict=True):
            bond_dims += [m] * 4
            noises += [noise] * 4
        n_sweeps = max(settings.max_sweeps, len(bond_dims) + 2)
        bond_dims += [settings.bond_dims[-1]] * (n_sweeps - len(bond_dims))
        noises += [0.0] * (n_sweeps - len(noises))
        energy = driver.dmrg(
            mpo,
            ket,
            n_sweeps=n_sweeps,
            bond_dims=bond_dims,
            noises=noises,
            thrds=[settings.davidson_tol] * n_sweeps,
            tol=settings.energy_tol,
            iprint=0,
        )
        sweep_energies = [float(min(e)) for e in driver._dmrg.energies]
        # the largest discarded weight of the last sweep (earlier sweeps carry the noise);
        # block2 keeps one value per sweep in ``discarded_weights``
        per_sweep = list(driver._dmrg.discarded_weights)
        discarded = float(per_sweep[-1]) if per_sweep else 0.0
        sweeps = len(sweep_energies)
        change = abs(sweep_energies[-1] - sweep_energies[-2]) if sweeps > 1 else math.inf
        out = {
            "energy_Ha": float(energy),
            "spin_square": (two_s / 2) * (two_s / 2 + 1),
            "iterations": sweeps,
            "discarded_weight": discarded,
            "energy_change_Ha": change,
        }
        if change > settings.energy_tol or discarded > settings.discarded_weight_tol:
            raise DMRGNotConverged(
                f"DMRG did not converge in {sweeps} sweeps: last energy change {change:.2e} Ha "
                f"(tolerance {settings.energy_tol:.0e}), discarded weight {discarded:.2e} "
                f"(tolerance {settings.discarded_weight_tol:.0e})"
            )
        if gradient:
            dm1 = np.asarray(driver.get_1pdm(ket))
            dm2 = np.asarray(driver.get_2pdm(ket)).transpose(0, 3, 1, 2)
            out["gradient_Ha_per_bohr"] = rdm_gradient(mf, dm1, dm2)
    return out
