"""All-electron Kohn-Sham DFT of isolated clusters of any element (issue 32).

The reference of the universal MLIPs' study: PBE, the functional of their training data,
in a Gaussian basis (def2 family), every electron, open boundaries (pyscf's molecular
code; optionally a GTH pseudopotential, to measure what replacing the core does).
:class:`MolecularDFT` is the ``calculation`` of a store
:class:`~.executor.Job` (content-keyed, resumable); :func:`compute_molecular` computes one
cluster.

Spin treatment (the package's, :class:`~.isolated.IsolatedDFT`, generalised to atoms
with more than one electron). The candidate spins 2S are ``n_e mod 2`` (``lowest``) or
``n_e mod 2, n_e mod 2 + 2, ...`` up to ``max_two_s_above_lowest`` more (``ground``: an
isolated carbon atom is a triplet, 2.0 eV below its closed-shell singlet in PBE/def2-SVP).
For each 2S: a closed-shell RKS and a broken-symmetry UKS from it (2S = 0), or a UKS
(2S > 0); at the lowest 2S, clusters of 2 to ``localized_max_atoms`` atoms are also
started from every assignment of localized atomic spin densities (each atom's own
ground-state UKS density, spin up on some atoms and flipped on the others, the signed
sum nearest 2S), so that a stretched cluster dissociates into free atoms as the
many-body expansion needs. The lowest converged energy over all starts is kept. The
free atom is computed by the same rules, so an expansion's 1-body term is the atom in
its ground state within the policy.

Energies in Hartree (pyscf) and eV; lengths in Angstrom.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass
from functools import cache
from typing import ClassVar

import numpy as np
from ase.data import chemical_symbols
from ase.units import Hartree

from ..expansion import BodyOrderError
from .electronic import ElectronicStructureError, package_versions
from .isolated import _broken_symmetry_guess

__all__ = ["MolecularDFT", "compute_molecular"]

SPIN_POLICIES = ("lowest", "ground")
SCF_SOLVERS = ("diis", "newton")


@dataclass(frozen=True)
class MolecularDFT:
    """All-electron Kohn-Sham settings of isolated clusters (see the module docstring).

    ``xc``: pyscf/libxc functional; ``basis``: pyscf basis name; ``grid_level``: pyscf's
    Becke grid level; ``conv_tol_hartree``: SCF energy tolerance (Hartree);
    ``diis_cycles``: DIIS iterations before the second-order solver takes over from
    where DIIS stopped, for at most ``max_cycle`` more; ``scf_solver``: ``diis`` (that
    sequence) or ``newton`` (the second-order solver from the start density, for at most
    ``max_cycle`` iterations: stretched carbon clusters, where DIIS wanders; see
    :data:`SCF_SOLVERS`); ``spin_policy``: ``lowest`` or
    ``ground``; ``max_two_s_above_lowest``: how far above ``n_e mod 2`` the ``ground``
    policy looks (2S steps of 2); ``localized_max_atoms``: largest cluster started from
    localized atomic spins; ``pseudo``: None (every electron) or a pyscf GTH
    pseudopotential (``gth-pbe``) with a GTH basis (``gth-qzv3p``): the valence electrons
    only, as the plane-wave codes of the universal models' training data treat them
    (there PAW). The spin rules count the valence electrons.
    """

    method: ClassVar[str] = "molecular-dft"

    basis: str = "def2-tzvp"
    xc: str = "pbe"
    #: ``lowest``: 2S = n_e mod 2; ``ground``: also up to ``max_two_s_above_lowest`` more
    spin_policy: str = "lowest"
    max_two_s_above_lowest: int = 2
    #: sub-clusters of 2 to this many atoms also start from localized atomic spins
    localized_max_atoms: int = 4
    grid_level: int = 3
    conv_tol_hartree: float = 1e-9
    diis_cycles: int = 50
    max_cycle: int = 100
    #: ``diis`` (then second-order where DIIS has not converged) or ``newton``
    scf_solver: str = "diis"
    #: None (all electrons) or a GTH pseudopotential, with a ``gth-`` basis
    pseudo: str | None = None

    def __post_init__(self) -> None:
        if self.pseudo is not None and not self.basis.lower().startswith("gth-"):
            raise BodyOrderError(
                f"pseudopotential {self.pseudo!r} needs a GTH basis (gth-...), "
                f"got basis {self.basis!r}"
            )
        if self.scf_solver not in SCF_SOLVERS:
            raise BodyOrderError(
                f"unknown SCF solver {self.scf_solver!r}; choose one of {SCF_SOLVERS}"
            )
        if self.spin_policy not in SPIN_POLICIES:
            raise BodyOrderError(
                f"unknown spin policy {self.spin_policy!r}; choose one of {SPIN_POLICIES}"
            )
        if self.max_two_s_above_lowest < 0 or self.max_two_s_above_lowest % 2:
            raise BodyOrderError(
                "max_two_s_above_lowest must be an even number >= 0, got "
                f"{self.max_two_s_above_lowest}"
            )

    def to_dict(self) -> dict:
        """The settings; ``scf_solver`` only when it is not the default ``diis`` and
        ``pseudo`` only when set, so the content keys of jobs stored before these options
        existed stay the same."""
        settings = asdict(self)
        if settings["scf_solver"] == "diis":
            del settings["scf_solver"]
        if settings["pseudo"] is None:
            del settings["pseudo"]
        return settings

    def run(self, numbers, positions, cell=None) -> dict:
        """The record of one cluster's job (:func:`compute_molecular`)."""
        if cell is not None:
            raise BodyOrderError("molecular DFT computes clusters; got a periodic cell")
        return compute_molecular(numbers, positions, self)

    def two_s_candidates(self, n_electrons: int) -> list[int]:
        """The spins 2S tried for a cluster of ``n_electrons`` electrons."""
        lowest = n_electrons % 2
        if self.spin_policy == "lowest":
            return [lowest]
        top = min(lowest + self.max_two_s_above_lowest, n_electrons)
        return list(range(lowest, top + 1, 2))


def _molecule(numbers, positions, basis: str, two_s: int, pseudo: str | None = None):
    from pyscf import gto  # pyscf

    return gto.M(
        atom=[
            (chemical_symbols[int(z)], tuple(float(x) for x in p))
            for z, p in zip(numbers, positions, strict=True)
        ],
        unit="Angstrom",
        basis=basis,
        spin=two_s,
        verbose=0,
        **({} if pseudo is None else {"pseudo": pseudo}),
    )


class _Solver:
    """SCF runs of one cluster geometry that share one integration grid."""

    def __init__(self, mol_of_two_s, settings: MolecularDFT):
        self.mol_of_two_s = mol_of_two_s
        self.settings = settings
        self.runs = 0
        self.unconverged = 0
        self._grids = None

    def solve(self, kind: str, two_s: int, dm0=None):
        from pyscf import dft  # pyscf

        mol = self.mol_of_two_s(two_s)
        mf = dft.RKS(mol) if kind == "rks" else dft.UKS(mol)
        mf.xc = self.settings.xc
        if self._grids is None:
            mf.grids.level = self.settings.grid_level
            mf.grids.build()
            self._grids = mf.grids
        mf.grids = self._grids
        mf.conv_tol = self.settings.conv_tol_hartree
        if self.settings.scf_solver == "newton":
            newton = mf.newton()
            newton.max_cycle = self.settings.max_cycle
            newton.conv_tol = self.settings.conv_tol_hartree
            newton.kernel(dm0=mf.get_init_guess() if dm0 is None else dm0)
            mf = newton
        else:
            mf.max_cycle = self.settings.diis_cycles
            mf.kernel(dm0=dm0)
        if not mf.converged and self.settings.scf_solver == "diis":
            newton = mf.newton()
            newton.max_cycle = self.settings.max_cycle
            newton.conv_tol = self.settings.conv_tol_hartree
            newton.kernel(dm0=mf.make_rdm1())
            mf = newton
        self.runs += 1
        self.unconverged += not mf.converged
        return mf


@cache
def _free_atom(number: int, settings: MolecularDFT) -> tuple[int, np.ndarray, np.ndarray]:
    """The free atom's ground state under ``settings``: ``(2S, alpha, beta)`` densities in
    its AO basis (cached per process)."""
    record, mf = _compute(np.array([number]), np.zeros((1, 3)), settings)
    dm = np.asarray(mf.make_rdm1())
    if dm.ndim == 2:
        dm = np.array([dm / 2, dm / 2])
    return int(record["two_s"]), dm[0], dm[1]


def _localized_spin_guesses(mol, numbers, two_s: int, settings: MolecularDFT) -> list:
    """UKS density guesses with each atom's ground-state density on it, up or flipped.

    Assignments whose signed sum of atomic 2S is nearest ``two_s``, one of each pair
    related by flipping every atom."""
    atoms = [_free_atom(int(z), settings) for z in numbers]
    spins = np.array([a[0] for a in atoms])
    if not spins.any():
        return []
    blocks = [slice(int(a), int(b)) for a, b in mol.aoslice_by_atom()[:, 2:4]]
    n = len(numbers)
    signs = [np.array(s) for s in itertools.product((1, -1), repeat=n)]
    distance = [abs(int(s @ spins) - two_s) for s in signs]
    best = min(distance)
    guesses, seen = [], set()
    for s, d in zip(signs, distance, strict=True):
        if d != best or tuple(-s) in seen:
            continue
        seen.add(tuple(s))
        alpha, beta = np.zeros((mol.nao, mol.nao)), np.zeros((mol.nao, mol.nao))
        for atom, (block, sign) in enumerate(zip(blocks, s, strict=True)):
            _, up, down = atoms[atom]
            alpha[block, block] = up if sign > 0 else down
            beta[block, block] = down if sign > 0 else up
        guesses.append(np.array([alpha, beta]))
    return guesses


def _compute(numbers, positions, settings: MolecularDFT):
    numbers = np.asarray(numbers, dtype=int)
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    molecules: dict[int, object] = {}

    def mol_of_two_s(two_s: int):
        if two_s not in molecules:
            molecules[two_s] = _molecule(numbers, positions, settings.basis, two_s, settings.pseudo)
        return molecules[two_s]

    solver = _Solver(mol_of_two_s, settings)
    # a pseudopotential's core holds an even number of electrons: the parity is the
    # all-electron one, the count the valence one
    n_electrons = int(mol_of_two_s(int(numbers.sum()) % 2).nelectron)
    candidates = settings.two_s_candidates(n_electrons)
    solutions = []
    for two_s in candidates:
        if two_s == 0:
            closed = solver.solve("rks", 0)
            solutions.append((0, "rks", closed))
            if len(numbers) > 1 or settings.spin_policy == "ground":
                broken = solver.solve("uks", 0, _broken_symmetry_guess(closed))
                solutions.append((0, "uks-broken-symmetry", broken))
        else:
            solutions.append((two_s, "uks", solver.solve("uks", two_s)))
        if two_s == candidates[0] and 2 <= len(numbers) <= settings.localized_max_atoms:
            mol = mol_of_two_s(two_s)
            for guess in _localized_spin_guesses(mol, numbers, two_s, settings):
                solutions.append((two_s, "uks-localized", solver.solve("uks", two_s, guess)))
    converged = [item for item in solutions if item[2].converged]
    if not converged:
        raise ElectronicStructureError(
            f"no SCF of the isolated {len(numbers)}-atom cluster converged "
            f"({solver.runs} starts, {settings.diis_cycles} DIIS + {settings.max_cycle} "
            "second-order cycles each)"
        )
    # a broken-symmetry solution that returned to the closed shell is the same state
    two_s, kind, mf = min(
        converged, key=lambda item: (round(float(item[2].e_tot), 9), item[1] != "rks")
    )
    by_spin: dict[str, float] = {}
    for s, _, m in converged:
        by_spin[str(s)] = min(by_spin.get(str(s), np.inf), float(m.e_tot))
    record = {
        "method": settings.method,
        "basis": settings.basis,
        **({} if settings.pseudo is None else {"pseudo": settings.pseudo}),
        "spin_policy": settings.spin_policy,
        "energy_Ha": float(mf.e_tot),
        "energy_eV": float(mf.e_tot) * Hartree,
        "two_s": int(two_s),
        "solution": kind,
        "spin_square": float(mf.spin_square()[0]) if kind != "rks" else 0.0,
        "converged": True,
        "candidate_energies_Ha": by_spin,
        "scf_starts": solver.runs,
        "scf_unconverged": solver.unconverged,
    }
    return record, mf


def compute_molecular(numbers, positions, settings: MolecularDFT = MolecularDFT()) -> dict:
    """Energy and spin solution of one isolated cluster (:class:`MolecularDFT`).

    Record keys: ``energy_Ha``, ``energy_eV``, ``two_s`` (2S of the kept state),
    ``solution`` (``rks``, ``uks``, ``uks-broken-symmetry`` or ``uks-localized``),
    ``spin_square``, ``candidate_energies_Ha`` (lowest converged energy per 2S),
    ``scf_starts``, ``scf_unconverged``, ``wall_time_s``, ``cpu_time_s`` and
    ``versions``. Raises :class:`~.electronic.ElectronicStructureError` when no start
    converges.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    if len(np.asarray(numbers).reshape(-1)) == 0:
        raise BodyOrderError("molecular DFT needs at least one atom")
    record, _ = _compute(numbers, positions, settings)
    record["wall_time_s"] = time.perf_counter() - wall
    record["cpu_time_s"] = time.process_time() - cpu
    versions = package_versions()
    record["versions"] = {name: versions[name] for name in ("pyscf", "ase", "numpy")}
    return record
