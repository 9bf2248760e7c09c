"""Electronic-structure energies and forces of hydrogen clusters (pyscf, block2).

Methods: ``hf`` (RHF for singlets, ROHF otherwise), ``ccsd`` and ``ccsd(t)`` (RCCSD on
RHF for singlets, UCCSD on ROHF otherwise), ``fci`` (full-space CASCI with the spin
fixed) and ``dmrg`` (block2, SU(2) symmetry, a bond-dimension schedule, converged by
energy change and discarded weight).

Spin policy per cluster: ``lowest`` (2S = n mod 2) or ``ground`` (lowest energy over the
allowed multiplicities). FCI is forced to the requested spin and its <S^2> is checked;
DMRG with SU(2) symmetry is a pure spin state by construction.

Forces: analytic for HF, CCSD, CCSD(T) (closed shell), and for FCI and DMRG through the
full-space CASSCF gradient built from their 1- and 2-particle density matrices (exact for
a full active space: every orbital rotation is redundant). Central finite differences
otherwise (open-shell CCSD(T)), with the step recorded. pyscf works in Hartree and bohr;
records keep those raw values and give eV and eV/Angstrom beside them.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from typing import ClassVar

import ase
import numpy as np
from ase.units import Bohr, Hartree
from pydantic import Field, StrictBool, field_validator

from .._settings import NonNegativeNumber, PositiveNumber, Settings
from ..expansion import BodyOrderError, check_structure
from .dmrg import DMRGNotConverged, DMRGSettings, run_dmrg
from .scf import ElectronicStructureError, mo_integrals, molecule, rdm_gradient, run_scf

__all__ = [
    "METHODS",
    "SPIN_POLICIES",
    "Calculation",
    "DMRGNotConverged",
    "DMRGSettings",
    "ElectronicStructureError",
    "compute",
    "hydrogen_atom_energy",
    "package_versions",
]

METHODS = ("hf", "ccsd", "ccsd(t)", "fci", "dmrg")
SPIN_POLICIES = ("lowest", "ground")


class Calculation(Settings):
    """What to compute for a cluster.

    ``basis``: any pyscf basis name. ``fd_step``: finite-difference step (Angstrom)
    where no analytic gradient exists. ``min_distance``: clusters with atoms closer than
    this (Angstrom) are refused.
    """

    settings_name: ClassVar[str] = "calculation"

    method: str = "fci"
    basis: str = "sto-6g"
    spin_policy: str = "lowest"
    forces: StrictBool = True
    fd_step: PositiveNumber = 1e-3
    min_distance: NonNegativeNumber = 0.4
    dmrg: DMRGSettings = Field(default_factory=DMRGSettings)

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method not in METHODS:
            raise BodyOrderError(f"unknown method {method!r}; choose one of {METHODS}")
        return method

    @field_validator("spin_policy")
    @classmethod
    def _known_spin_policy(cls, policy: str) -> str:
        if policy not in SPIN_POLICIES:
            raise BodyOrderError(f"unknown spin policy {policy!r}; choose one of {SPIN_POLICIES}")
        return policy

    @field_validator("basis")
    @classmethod
    def _known_basis(cls, basis: str) -> str:
        _check_basis(basis)
        return basis

    def run(self, numbers, positions, cell=None) -> dict:
        """The record of one cluster job (:func:`compute`); a periodic ``cell`` is refused."""
        if cell is not None:
            raise BodyOrderError(f"{self.method} is for isolated clusters, not periodic cells")
        return compute(numbers, positions, self)

    @classmethod
    def from_dict(cls, data: dict) -> Calculation:
        """Settings from a dictionary (e.g. a record's JSON: lists for the DMRG schedule);
        ``"dmrg": None`` stands for the default DMRG settings."""
        if isinstance(data, dict) and data.get("dmrg", ...) is None:
            data = {k: v for k, v in data.items() if k != "dmrg"}
        return super().from_dict(data)


def _check_basis(basis: str) -> None:
    from pyscf import gto  # pyscf

    try:
        gto.basis.load(basis, "H")
    except Exception as error:  # pyscf raises several types for unknown names
        raise BodyOrderError(f"unknown basis {basis!r} for hydrogen: {error}") from None


def package_versions() -> dict[str, str]:
    """Versions of the packages a record depends on."""
    import pyscf  # pyscf

    versions = {"pyscf": pyscf.__version__, "ase": ase.__version__, "numpy": np.__version__}
    try:
        versions["block2"] = version("block2")
    except Exception:  # block2 is optional for non-DMRG methods
        versions["block2"] = "not installed"
    return versions


def _fci_state(mol, h1, g2, two_s: int):
    """FCI ground state of spin S = two_s/2: ``(energy, civec, nelec, <S^2>, solver)``.

    Singlets use the singlet-adapted solver (``direct_spin0``); other spins use the
    Sz = S sector with a spin penalty. If the state found is not the requested spin
    (near-degenerate states can defeat the penalty), several roots of the plain solver
    are computed and the lowest one with the requested <S^2> is taken.
    """
    from pyscf import fci  # pyscf

    n = mol.nelectron
    nelec = ((n + two_s) // 2, (n - two_s) // 2)
    target = (two_s / 2) * (two_s / 2 + 1)
    if two_s == 0:
        solver = fci.direct_spin0.FCI(mol)
    else:
        solver = fci.addons.fix_spin_(fci.direct_spin1.FCI(mol), ss=target, shift=0.5)
    solver.conv_tol = 1e-12
    solver.max_cycle = 500
    ecore = mol.energy_nuc()
    energy, civec = solver.kernel(h1, g2, mol.nao, nelec, ecore=ecore)
    ss = solver.spin_square(civec, mol.nao, nelec)[0]
    if abs(ss - target) <= 1e-6:
        return float(energy), civec, nelec, float(ss), solver
    solver = fci.direct_spin1.FCI(mol)
    solver.conv_tol = 1e-12
    solver.max_cycle = 500
    solver.nroots = min(
        8, fci.cistring.num_strings(mol.nao, nelec[0]) * fci.cistring.num_strings(mol.nao, nelec[1])
    )
    energies, civecs = solver.kernel(h1, g2, mol.nao, nelec, ecore=ecore)
    roots = zip(np.atleast_1d(energies), civecs, strict=True)
    for e, c in sorted(roots, key=lambda item: item[0]):
        ss = solver.spin_square(c, mol.nao, nelec)[0]
        if abs(ss - target) <= 1e-6:
            return float(e), c, nelec, float(ss), solver
    raise ElectronicStructureError(
        f"FCI found no state with <S^2> = {target:.2f} (2S = {two_s}) among the "
        f"{solver.nroots} lowest roots"
    )


def _fci(mf, two_s: int, gradient: bool):
    mol = mf.mol
    h1, g2 = mo_integrals(mf)
    energy, civec, nelec, ss, solver = _fci_state(mol, h1, g2, two_s)
    out = {"energy_Ha": energy, "spin_square": ss}
    if gradient:
        dm1, dm2 = solver.make_rdm12(civec, mol.nao, nelec)
        out["gradient_Ha_per_bohr"] = rdm_gradient(mf, dm1, dm2)
    return out


def _hf(mf, two_s: int, gradient: bool):
    out = {"energy_Ha": float(mf.e_tot), "spin_square": float(mf.spin_square()[0])}
    if gradient:
        out["gradient_Ha_per_bohr"] = mf.nuc_grad_method().kernel()
    return out


def _cc(mf, two_s: int, triples: bool, gradient: bool):
    from pyscf import cc  # pyscf

    closed = two_s == 0
    if closed:
        mycc = cc.RCCSD(mf)
    else:  # canonical UHF orbitals: pyscf's UCCSD gradients need them
        from pyscf import scf  # pyscf

        uhf = scf.UHF(mf.mol)
        uhf.conv_tol = 1e-11
        uhf.kernel(dm0=mf.make_rdm1())
        if not uhf.converged:
            raise ElectronicStructureError("the UHF reference did not converge")
        mycc = cc.UCCSD(uhf)
    mycc.conv_tol = 1e-10
    mycc.max_cycle = 300
    mycc.kernel()
    if not mycc.converged:
        raise ElectronicStructureError("CCSD did not converge")
    energy = mycc.e_tot
    out = {"iterations": None}
    if triples:
        energy += mycc.ccsd_t()
    out["energy_Ha"] = float(energy)
    if gradient and (closed or not triples):
        if triples:
            from pyscf.cc import ccsd_t_lambda  # pyscf
            from pyscf.grad import ccsd_t as ccsd_t_grad

            # the (T) gradient needs the CCSD(T) Lagrange multipliers, not the CCSD ones
            eris = mycc.ao2mo()
            converged, l1, l2 = ccsd_t_lambda.kernel(mycc, eris, mycc.t1, mycc.t2, verbose=0)
            if not converged:
                raise ElectronicStructureError("the CCSD(T) lambda equations did not converge")
            out["gradient_Ha_per_bohr"] = ccsd_t_grad.Gradients(mycc).kernel(
                t1=mycc.t1, t2=mycc.t2, l1=l1, l2=l2, eris=eris
            )
        else:
            out["gradient_Ha_per_bohr"] = mycc.nuc_grad_method().kernel()
    return out


def _energy_and_gradient(positions, calc: Calculation, two_s: int, gradient: bool) -> dict:
    mol = molecule(positions, calc.basis, two_s)
    mf = run_scf(mol)
    if calc.method == "hf":
        return _hf(mf, two_s, gradient)
    if calc.method == "fci":
        return _fci(mf, two_s, gradient)
    if calc.method == "dmrg":
        return run_dmrg(mf, two_s, calc.dmrg, gradient)
    return _cc(mf, two_s, calc.method == "ccsd(t)", gradient)


def _finite_difference_gradient(positions, calc, two_s):
    step = calc.fd_step
    grad = np.zeros_like(positions)
    for a in range(len(positions)):
        for c in range(3):
            energies = []
            for sign in (1, -1):
                moved = positions.copy()
                moved[a, c] += sign * step
                energies.append(_energy_and_gradient(moved, calc, two_s, False)["energy_Ha"])
            grad[a, c] = (energies[0] - energies[1]) / (2 * step / Bohr)
    return grad


def _validate(numbers, positions, calc: Calculation):
    numbers = np.asarray(numbers)
    if len(numbers) and (numbers != 1).any():
        raise BodyOrderError(
            "the reference protocol is for hydrogen clusters; found atomic numbers "
            f"{sorted(set(numbers.tolist()) - {1})}"
        )
    structure = check_structure(positions, min_distance=calc.min_distance)
    return structure.positions


def compute(numbers, positions, calc: Calculation) -> dict:
    """Energy (and forces) of a hydrogen cluster.

    Returns a JSON-compatible record: ``energy_eV``, ``forces_eV_per_A`` (N x 3),
    ``energy_Ha``, ``gradient_Ha_per_bohr``, ``two_s`` (2S of the state), ``spin_square``
    (<S^2> where the method defines it), ``forces_method``, method details
    (``iterations``, ``discarded_weight``), ``wall_time_s`` and ``versions``.
    """
    start = time.perf_counter()
    positions = _validate(numbers, positions, calc)
    n = len(positions)
    if calc.spin_policy == "lowest":
        candidates = [n % 2]
    else:
        candidates = list(range(n % 2, n + 1, 2))
    gradient_here = calc.forces and not (calc.method == "ccsd(t)" and n % 2)
    results = []
    for two_s in candidates:
        want = gradient_here and len(candidates) == 1
        results.append((two_s, _energy_and_gradient(positions, calc, two_s, want)))
    two_s, best = min(results, key=lambda item: item[1]["energy_Ha"])
    if calc.forces and "gradient_Ha_per_bohr" not in best:
        if gradient_here:
            best = _energy_and_gradient(positions, calc, two_s, True)
            forces_method = "analytic"
        else:
            best["gradient_Ha_per_bohr"] = _finite_difference_gradient(positions, calc, two_s)
            forces_method = f"central finite differences, step {calc.fd_step} Angstrom"
    else:
        forces_method = "analytic" if calc.forces else None
    record = {
        "method": calc.method,
        "basis": calc.basis,
        "spin_policy": calc.spin_policy,
        "two_s": int(two_s),
        "energy_Ha": best["energy_Ha"],
        "energy_eV": best["energy_Ha"] * Hartree,
        "spin_square": best.get("spin_square"),
        "iterations": best.get("iterations"),
        "discarded_weight": best.get("discarded_weight"),
        "forces_method": forces_method,
        "candidate_energies_Ha": {str(s): r["energy_Ha"] for s, r in results},
    }
    if calc.forces:
        gradient = np.asarray(best["gradient_Ha_per_bohr"], dtype=float)
        record["gradient_Ha_per_bohr"] = gradient.tolist()
        record["forces_eV_per_A"] = (-gradient * Hartree / Bohr).tolist()
    record["wall_time_s"] = time.perf_counter() - start
    record["versions"] = package_versions()
    return record


def hydrogen_atom_energy(basis: str = "sto-6g") -> float:
    """Energy (Hartree) of one H atom in ``basis``: its ROHF energy, exact for one electron."""
    _check_basis(basis)
    mf = run_scf(molecule(np.zeros((1, 3)), basis, 1))
    return float(mf.e_tot)
