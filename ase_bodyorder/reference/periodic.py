"""Periodic dense-hydrogen reference: cells sampled from a seed, Kohn-Sham DFT with pyscf.

The cluster sets (FCI/STO-6G on 8-atom clusters) teach a model isolated clusters only: a
model trained on them has never seen an atom with more than seven neighbours, and in a
periodic cell at the same density (about 150 neighbours within 4.5 Angstrom) its
energies and forces are far outside anything it was fitted to. Molecular dynamics of
bulk hydrogen needs a model trained on periodic cells, and correlated wave functions of
periodic cells are out of reach here, so this set uses Gamma-point Kohn-Sham DFT:

* LDA (``lda,vwn``), GTH pseudopotential (``gth-pade``) and minimal basis (``gth-szv``),
  plane-wave density fitting with a kinetic-energy cutoff (``ke_cutoff_hartree``), on
  pyscf's multigrid integrator (the one pyscf's periodic RKS gradients need);
* Fermi-Dirac smearing (``smearing_hartree``, 0.01 Ha = 3158 K) because dense hydrogen is
  a metal (without it the SCF does not converge). The energy is the Mermin free energy
  (pyscf's ``e_free``): the analytic forces are its exact gradient (checked against
  finite differences in the tests), so energy and forces are consistent for training;
* the 1-body term for a model trained on these cells is the spin-polarised energy of one
  H atom at the same level (:func:`isolated_atom_energy`), in a large cubic box.

Every cell is a :class:`~.executor.Job` (:func:`periodic_jobs`), run by
:func:`~.executor.run_jobs` on local processes or a dask cluster into a
:class:`~.store.ReferenceStore`, keyed by content (species, positions, cell, settings):
a rerun computes only the cells missing, and several runs may share one store
(``ase-bodyorder reference periodic``). :func:`read_results` and :func:`import_results`
read the JSON-lines files of the earlier runs, which had their own process pool.

Energies in eV, forces in eV/Angstrom, lengths in Angstrom (Hartree and bohr only inside
pyscf). The cells are sampled by :mod:`ase_bodyorder.structures` (:class:`DenseBulk`,
:func:`sample_bulk`, importable from here as before).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from ..expansion import BodyOrderError
from ..structures import DenseBulk, sample_bulk
from .executor import Job, RunSummary, run_jobs
from .store import ReferenceStore

__all__ = [
    "DenseBulk",
    "IsolatedDFT",
    "PeriodicDFT",
    "compute_isolated",
    "compute_periodic",
    "isolated_atom_energy",
    "isolated_cluster_energy",
    "export_bulk",
    "import_results",
    "periodic_job",
    "periodic_jobs",
    "periodic_key",
    "periodic_records",
    "read_results",
    "run_periodic",
    "sample_bulk",
]


@dataclass(frozen=True)
class PeriodicDFT:
    """Gamma-point Kohn-Sham settings (see the module docstring); the ``calculation`` of a
    periodic :class:`~.executor.Job`."""

    method: ClassVar[str] = "periodic-dft"

    xc: str = "lda,vwn"
    basis: str = "gth-szv"
    pseudo: str = "gth-pade"
    ke_cutoff_hartree: float = 60.0
    smearing_hartree: float = 0.01
    conv_tol_hartree: float = 1e-9
    max_cycle: int = 200

    def to_dict(self) -> dict:
        return asdict(self)

    def run(self, numbers, positions, cell) -> dict:
        """The record of one cell's job (:func:`compute_periodic`, with method and basis)."""
        if cell is None:
            raise BodyOrderError("periodic DFT needs a cell; got an isolated cluster")
        atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
        return {"method": self.method, "basis": self.basis, **compute_periodic(atoms, self)}


def _cell(atoms: Atoms, settings: PeriodicDFT, spin: int = 0):
    from pyscf.pbc import gto

    cell = gto.Cell()
    cell.atom = [
        (s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
    ]
    cell.a = np.asarray(atoms.cell)
    cell.unit = "A"
    cell.basis = settings.basis
    cell.pseudo = settings.pseudo
    cell.ke_cutoff = settings.ke_cutoff_hartree
    cell.spin = spin
    cell.verbose = 0
    cell.build()
    return cell


def compute_periodic(atoms: Atoms, settings: PeriodicDFT = PeriodicDFT()) -> dict:
    """Free energy (eV) and forces (eV/Angstrom) of one periodic cell.

    Raises :class:`BodyOrderError` when the cell is not fully periodic, holds an odd
    number of electrons (closed-shell RKS) or the SCF does not converge.
    """
    from pyscf.pbc import dft
    from pyscf.pbc.dft.multigrid import MultiGridNumInt2

    if not atoms.pbc.all() or atoms.cell.rank != 3:
        raise BodyOrderError("periodic reference needs a cell periodic in all three directions")
    if int(atoms.numbers.sum()) % 2:
        raise BodyOrderError(
            f"{len(atoms)} electrons: closed-shell periodic DFT needs an even count"
        )
    start = time.perf_counter()
    cell = _cell(atoms, settings)
    mf = dft.RKS(cell)
    mf.xc = settings.xc
    mf._numint = MultiGridNumInt2(cell)
    mf = mf.smearing(sigma=settings.smearing_hartree, method="fermi")
    mf.conv_tol = settings.conv_tol_hartree
    mf.max_cycle = settings.max_cycle
    mf.kernel()
    if not mf.converged:
        raise BodyOrderError(f"SCF did not converge in {settings.max_cycle} cycles")
    gradient = mf.nuc_grad_method().kernel()
    return {
        "energy_eV": float(mf.e_free) * Hartree,
        "energy_zero_smearing_eV": float(mf.e_zero) * Hartree,
        "forces_eV_per_A": (-np.asarray(gradient) * Hartree / Bohr).tolist(),
        "converged": True,
        "wall_time_s": time.perf_counter() - start,
    }


def isolated_atom_energy(settings: PeriodicDFT = PeriodicDFT(), box_angstrom: float = 8.0) -> float:
    """Spin-polarised energy (eV) of one H atom in a cubic box (the 1-body term)."""
    from pyscf.pbc import dft

    atoms = Atoms("H", positions=[[box_angstrom / 2] * 3], cell=[box_angstrom] * 3, pbc=True)
    mf = dft.UKS(_cell(atoms, settings, spin=1))
    mf.xc = settings.xc
    mf.conv_tol = settings.conv_tol_hartree
    energy = mf.kernel()
    if not mf.converged:
        raise BodyOrderError("SCF of the isolated H atom did not converge")
    return float(energy) * Hartree


@dataclass(frozen=True)
class IsolatedDFT:
    """Kohn-Sham settings of isolated clusters at a periodic set's level of theory.

    The same functional, GTH pseudopotential and basis as :class:`PeriodicDFT`
    (:meth:`matching`), with open boundaries (pyscf's molecular code: no box, no
    plane-wave cutoff, a Becke grid of ``grid_level``). The ``calculation`` of a fragment
    :class:`~.executor.Job`; its record holds the energy (eV), the analytic forces
    (eV/Angstrom) and the spin solution.

    Spin treatment: each cluster in its lowest-energy spin density at the lowest
    multiplicity, 2S = n mod 2. An odd cluster is a spin-polarised doublet (UKS; an
    isolated H atom is a doublet). An even cluster is computed closed-shell (RKS) and
    spin-polarised from a broken-symmetry guess (UKS, S_z = 0, the HOMO and LUMO mixed),
    and the lower energy is kept: a stretched H2 then dissociates into two doublet atoms,
    as the many-body expansion needs (its 2-body term vanishes at large distance),
    instead of the closed-shell curve that stays about 1 eV above them. Dense hydrogen,
    the periodic cells, is non-magnetic (RKS with smearing); a compact cluster's
    broken-symmetry solution collapses onto the closed-shell one, so both treatments
    agree where the cells' environments are. No smearing: a cluster has a gap.
    """

    method: ClassVar[str] = "isolated-dft"

    xc: str = "lda,vwn"
    basis: str = "gth-szv"
    pseudo: str = "gth-pade"
    grid_level: int = 3
    conv_tol_hartree: float = 1e-10
    max_cycle: int = 200
    forces: bool = True

    @classmethod
    def matching(cls, periodic: PeriodicDFT, **options) -> IsolatedDFT:
        """The isolated-cluster settings at ``periodic``'s functional, basis and pseudo."""
        return cls(xc=periodic.xc, basis=periodic.basis, pseudo=periodic.pseudo, **options)

    def to_dict(self) -> dict:
        return asdict(self)

    def run(self, numbers, positions, cell=None) -> dict:
        """The record of one cluster's job (:func:`compute_isolated`)."""
        if cell is not None:
            raise BodyOrderError("isolated DFT computes clusters; got a periodic cell")
        atoms = Atoms(numbers=numbers, positions=positions)
        return {"method": self.method, "basis": self.basis, **compute_isolated(atoms, self)}


def _broken_symmetry_guess(restricted) -> np.ndarray:
    """A UKS density guess from a closed-shell solution: its HOMO and LUMO mixed by 45
    degrees, one way for the alpha and the other for the beta electrons."""
    mo, occupied = restricted.mo_coeff, int(np.count_nonzero(restricted.mo_occ > 0))
    alpha, beta = mo[:, :occupied].copy(), mo[:, :occupied].copy()
    if 0 < occupied < mo.shape[1]:
        homo, lumo = mo[:, occupied - 1], mo[:, occupied]
        alpha[:, -1] = (homo + lumo) / np.sqrt(2)
        beta[:, -1] = (homo - lumo) / np.sqrt(2)
    return np.array([alpha @ alpha.T, beta @ beta.T])


class _LocalOnlyPseudoGradient:
    """pyscf 2.14's molecular GTH gradient fails for pseudopotentials without non-local
    projectors (hydrogen's ``gth-pade``): ``vppnl_nuc_grad`` then has nothing to
    contract and returns None where it needs arrays. Inside this context it returns the
    exact value, zero, for such molecules (checked against finite differences in the
    tests) and calls pyscf's own code otherwise."""

    def __enter__(self):
        from pyscf.gto import pp_int
        from pyscf.pbc.gto.pseudo import pp_int as pbc_pp_int

        self._module, self._original = pp_int, pp_int.vppnl_nuc_grad
        original = self._original

        def gradient(mol, dm):
            if not pbc_pp_int.fake_cell_vnl(mol)[1]:
                return np.zeros((mol.natm, 3))
            return original(mol, dm)

        pp_int.vppnl_nuc_grad = gradient
        return self

    def __exit__(self, *exc):
        self._module.vppnl_nuc_grad = self._original
        return False


def compute_isolated(atoms: Atoms, settings: IsolatedDFT = IsolatedDFT()) -> dict:
    """Energy (eV), forces (eV/Angstrom) and spin solution of one isolated cluster.

    The spin treatment is :class:`IsolatedDFT`'s. Record keys: ``energy_eV``,
    ``forces_eV_per_A`` (when ``settings.forces``), ``two_s`` (2S), ``solution`` (``rks``,
    ``uks`` or ``uks-broken-symmetry``), ``spin_square`` (<S^2> of the kept solution),
    ``converged``, ``wall_time_s``. Raises :class:`BodyOrderError` for a periodic input
    or when no SCF converges.
    """
    from pyscf import dft, gto

    if atoms.pbc.any():
        raise BodyOrderError("isolated DFT needs a cluster without periodicity")
    start = time.perf_counter()
    spin = int(atoms.numbers.sum()) % 2
    mol = gto.M(
        atom=[
            (s, tuple(p))
            for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
        ],
        unit="A",
        basis=settings.basis,
        pseudo=settings.pseudo,
        spin=spin,
        verbose=0,
    )

    def solver(kind):
        mf = dft.UKS(mol) if kind == "uks" else dft.RKS(mol)
        mf.xc = settings.xc
        mf.grids.level = settings.grid_level
        mf.conv_tol = settings.conv_tol_hartree
        mf.max_cycle = settings.max_cycle
        return mf

    solutions = []
    if spin:
        mf = solver("uks")
        mf.kernel()
        solutions.append(("uks", mf))
    else:
        mf = solver("rks")
        mf.kernel()
        solutions.append(("rks", mf))
        if len(atoms) > 1 and mf.converged:
            broken = solver("uks")
            broken.kernel(dm0=_broken_symmetry_guess(mf))
            solutions.append(("uks-broken-symmetry", broken))
    converged = [(kind, mf) for kind, mf in solutions if mf.converged]
    if not converged:
        raise BodyOrderError(
            f"SCF of the isolated {atoms.get_chemical_formula()} did not converge "
            f"in {settings.max_cycle} cycles"
        )
    # a broken-symmetry solution that returned to the closed shell is the same state
    kind, mf = min(converged, key=lambda item: (round(float(item[1].e_tot), 9), item[0] != "rks"))
    record = {
        "energy_eV": float(mf.e_tot) * Hartree,
        "two_s": spin,
        "solution": kind,
        "spin_square": float(mf.spin_square()[0]) if kind != "rks" else 0.0,
        "converged": True,
    }
    if settings.forces:
        with _LocalOnlyPseudoGradient():
            gradient = mf.nuc_grad_method().kernel()
        record["forces_eV_per_A"] = (-np.asarray(gradient) * Hartree / Bohr).tolist()
    record["wall_time_s"] = time.perf_counter() - start
    return record


def isolated_cluster_energy(atoms: Atoms, settings: PeriodicDFT = PeriodicDFT()) -> float:
    """Kohn-Sham energy (eV) of an isolated cluster at the periodic set's level of theory
    (:func:`compute_isolated` with :meth:`IsolatedDFT.matching` settings, no forces).

    Used to check that a cluster in a large periodic box and the same cluster isolated
    agree (``docs/science.md``, section 8).
    """
    if atoms.pbc.any():
        raise BodyOrderError("isolated_cluster_energy needs a cluster without periodicity")
    return compute_isolated(atoms, IsolatedDFT.matching(settings, forces=False))["energy_eV"]


def periodic_key(dataset: str, index: int, settings: PeriodicDFT) -> str:
    """The readable key of a cell's job (not unique: see :attr:`Job.content_key`)."""
    return f"{dataset}/{index}/{settings.method}/{settings.xc}/{settings.basis}"


def periodic_job(atoms: Atoms, dataset: str, settings: PeriodicDFT = PeriodicDFT()) -> Job:
    """The job of one cell (``atoms.info["index"]``: its index in the data set).

    Its content key (:func:`~.store.content_key`) covers the species, positions, cell
    and settings.
    """
    index = int(atoms.info["index"])
    meta = {"dataset": dataset, "frame": index, "kind": "periodic"}
    return Job(
        periodic_key(dataset, index, settings),
        atoms.numbers.copy(),
        atoms.positions.copy(),
        settings,
        meta,
        cell=np.asarray(atoms.cell).copy(),
    )


def periodic_jobs(cells: list[Atoms], dataset: str, settings: PeriodicDFT = PeriodicDFT()):
    """One job per cell (free energy and forces)."""
    return [periodic_job(atoms, dataset, settings) for atoms in cells]


def run_periodic(
    cells: list[Atoms],
    store: ReferenceStore,
    settings: PeriodicDFT = PeriodicDFT(),
    *,
    dataset: str = "bulk",
    workers: int = 1,
    scheduler=None,
    retry_failed: bool = False,
    progress: bool = True,
    stream=None,
) -> RunSummary:
    """Compute every cell not yet in ``store``, on local processes or a dask cluster.

    The cells are jobs of :func:`~.executor.run_jobs` (see there for claims, resuming
    and ``scheduler``): a rerun computes only the cells missing from the store; failed
    ones run again with ``retry_failed``. Read the results with :func:`periodic_records`.
    """
    if not isinstance(store, ReferenceStore):
        raise BodyOrderError(
            f"run_periodic writes to a ReferenceStore (an SQLite database), got {store!r}; "
            "import an old JSON-lines results file with import_results"
        )
    return run_jobs(
        periodic_jobs(cells, dataset, settings),
        store,
        workers=workers,
        scheduler=scheduler,
        retry_failed=retry_failed,
        progress=progress,
        label=f"periodic DFT {dataset}",
        stream=stream,
    )


def periodic_records(
    store: ReferenceStore,
    cells: list[Atoms],
    dataset: str,
    settings: PeriodicDFT = PeriodicDFT(),
) -> dict[int, dict]:
    """``{index: record}`` of the cells done in ``store``, looked up by content.

    Failed and missing cells are left out; a stored row whose positions or cell differ
    from the cell's is an error (:meth:`~.store.ReferenceStore.matching_records`).
    """
    jobs = {int(atoms.info["index"]): periodic_job(atoms, dataset, settings) for atoms in cells}
    records = store.matching_records(jobs.values())
    return {
        index: records[job.content_key] for index, job in jobs.items() if job.content_key in records
    }


def read_results(path: Path) -> dict[int, dict]:
    """``{index: record}`` of an old JSON-lines results file (empty if it does not exist).

    The format of the periodic reference before it went through the store (one record per
    line, ``index`` and ``error`` in each); :func:`import_results` moves it into a store.
    """
    path = Path(path)
    if not path.exists():
        return {}
    records = {}
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by an interrupted run
                continue
            records[int(record["index"])] = record
    return records


def import_results(
    path: Path,
    cells: list[Atoms],
    store: ReferenceStore,
    dataset: str,
    settings: PeriodicDFT = PeriodicDFT(),
) -> int:
    """Store the records of an old JSON-lines results file as the jobs of ``cells``.

    The old file names cells by index only: ``cells`` must be the ones it was computed
    for (the same protocol, seed and settings). Failed records are stored as failed (run
    again with ``retry_failed``); cells already in the store are kept. Returns how many
    records were stored.
    """
    by_index = {int(atoms.info["index"]): atoms for atoms in cells}
    stored = 0
    for index, record in read_results(path).items():
        if index not in by_index:
            raise BodyOrderError(f"{path}: cell {index} is not one of the {len(cells)} cells")
        job = periodic_job(by_index[index], dataset, settings)
        error = record.get("error")
        kept = {name: value for name, value in record.items() if name not in ("index", "error")}
        if error is None:
            kept = {"method": settings.method, "basis": settings.basis, **kept}
        stored += store.write(job, None if error else kept, error=error)
    return stored


def export_bulk(
    cells: list[Atoms],
    records: dict[int, dict],
    dataset: str,
    directory,
    settings: PeriodicDFT = PeriodicDFT(),
    *,
    split_seed: int = 0,
    fractions=(0.8, 0.1, 0.1),
) -> dict:
    """Write ``{dataset}_{train,validation,test}.xyz`` (``energy`` eV, ``forces`` eV/A).

    Same layout as the cluster sets (:func:`~ase_bodyorder.reference.pipeline.export_dataset`);
    cells whose calculation failed or is missing are left out and listed in
    ``{dataset}_split.json``, which also holds the settings, counts and file hashes.
    """
    from .pipeline import split_indices, write_split_meta, write_split_part

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    split = split_indices(len(cells), split_seed, fractions)
    by_index = {int(a.info["index"]): a for a in cells}
    ok = {i for i, r in records.items() if r.get("error") is None and "energy_eV" in r}
    meta = {
        "dataset": dataset,
        "calculation": {"method": "periodic-dft", **settings.to_dict()},
        "split_seed": split_seed,
        "fractions": list(fractions),
        "units": {"energy": "eV (Mermin free energy)", "forces": "eV/Angstrom"},
        "missing": sorted(i for i in by_index if i not in ok),
        "files": {},
    }
    for part, indices in split.items():
        frames = []
        for i in indices:
            if i not in ok:
                continue
            atoms = by_index[i].copy()
            atoms.info = {
                "index": i,
                "dataset": dataset,
                "energy": records[i]["energy_eV"],
                "kind": by_index[i].info["kind"],
                "rs_bohr": by_index[i].info["rs_bohr"],
            }
            atoms.arrays["forces"] = np.asarray(records[i]["forces_eV_per_A"])
            frames.append(atoms)
        write_split_part(directory, dataset, part, frames, meta)
    return write_split_meta(directory, dataset, meta)


if __name__ == "__main__":
    sys.exit(
        "the periodic reference is a subcommand now: ase-bodyorder reference periodic --db FILE.db "
        "(results go to a reference database; an old .jsonl file is read by import_results)"
    )
