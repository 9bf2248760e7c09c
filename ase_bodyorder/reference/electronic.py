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

import math
import tempfile
import time
from typing import Annotated, ClassVar

import numpy as np
from ase.units import Bohr, Hartree
from pydantic import Field, StrictBool, field_validator

from .._settings import NonNegativeNumber, PositiveInt, PositiveNumber, Rule, Settings
from ..expansion import BodyOrderError
from ..expansion._geometry import check_structure

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


class ElectronicStructureError(BodyOrderError):
    """A calculation could not give the requested state."""


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
    from pyscf import gto

    try:
        gto.basis.load(basis, "H")
    except Exception as error:  # pyscf raises several types for unknown names
        raise BodyOrderError(f"unknown basis {basis!r} for hydrogen: {error}") from None


def package_versions() -> dict[str, str]:
    """Versions of the packages a record depends on."""
    import ase
    import pyscf

    versions = {"pyscf": pyscf.__version__, "ase": ase.__version__, "numpy": np.__version__}
    try:
        from importlib.metadata import version

        versions["block2"] = version("block2")
    except Exception:  # block2 is optional for non-DMRG methods
        versions["block2"] = "not installed"
    return versions


def _molecule(positions, basis: str, two_s: int):
    from pyscf import gto

    return gto.M(
        atom=[("H", tuple(p)) for p in positions],
        basis=basis,
        unit="Angstrom",
        spin=two_s,
        verbose=0,
    )


def _scf(mol):
    from pyscf import scf

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


def _rdm_gradient(mf, dm1: np.ndarray, dm2: np.ndarray) -> np.ndarray:
    """Nuclear gradient (Hartree/bohr) of a full-space CI energy from its spin-summed RDMs."""
    from pyscf import mcscf

    mol = mf.mol
    mc = mcscf.CASSCF(mf, mol.nao, mol.nelectron)
    mc.mo_coeff = mf.mo_coeff
    mc.fcisolver = _StoredRDMs()
    mc.ci = (dm1, dm2)
    grad = mc.nuc_grad_method()
    return grad.grad_elec(mo_coeff=mf.mo_coeff, ci=(dm1, dm2)) + grad.grad_nuc()


def _mo_integrals(mf):
    from pyscf import ao2mo

    c = mf.mo_coeff
    h1 = c.T @ mf.get_hcore() @ c
    g2 = ao2mo.restore(1, ao2mo.kernel(mf.mol, c), c.shape[1])
    return h1, g2


def _fci_state(mol, h1, g2, two_s: int):
    """FCI ground state of spin S = two_s/2: ``(energy, civec, nelec, <S^2>, solver)``.

    Singlets use the singlet-adapted solver (``direct_spin0``); other spins use the
    Sz = S sector with a spin penalty. If the state found is not the requested spin
    (near-degenerate states can defeat the penalty), several roots of the plain solver
    are computed and the lowest one with the requested <S^2> is taken.
    """
    from pyscf import fci

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
    h1, g2 = _mo_integrals(mf)
    energy, civec, nelec, ss, solver = _fci_state(mol, h1, g2, two_s)
    out = {"energy_Ha": energy, "spin_square": ss}
    if gradient:
        dm1, dm2 = solver.make_rdm12(civec, mol.nao, nelec)
        out["gradient_Ha_per_bohr"] = _rdm_gradient(mf, dm1, dm2)
    return out


def _dmrg(mf, two_s: int, settings: DMRGSettings, gradient: bool):
    from pyblock2.driver.core import DMRGDriver, SymmetryTypes

    mol = mf.mol
    h1, g2 = _mo_integrals(mf)
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
            out["gradient_Ha_per_bohr"] = _rdm_gradient(mf, dm1, dm2)
    return out


def _hf(mf, two_s: int, gradient: bool):
    out = {"energy_Ha": float(mf.e_tot), "spin_square": float(mf.spin_square()[0])}
    if gradient:
        out["gradient_Ha_per_bohr"] = mf.nuc_grad_method().kernel()
    return out


def _cc(mf, two_s: int, triples: bool, gradient: bool):
    from pyscf import cc

    closed = two_s == 0
    if closed:
        mycc = cc.RCCSD(mf)
    else:  # canonical UHF orbitals: pyscf's UCCSD gradients need them
        from pyscf import scf

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
            from pyscf.cc import ccsd_t_lambda
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
    mol = _molecule(positions, calc.basis, two_s)
    mf = _scf(mol)
    if calc.method == "hf":
        return _hf(mf, two_s, gradient)
    if calc.method == "fci":
        return _fci(mf, two_s, gradient)
    if calc.method == "dmrg":
        return _dmrg(mf, two_s, calc.dmrg, gradient)
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
    mf = _scf(_molecule(np.zeros((1, 3)), basis, 1))
    return float(mf.e_tot)
