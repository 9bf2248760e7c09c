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
import math
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
from .isolated import IsolatedDFT, compute_isolated
from .kpoint_gradient import AO_CHUNK_BYTES, cached_hcore_class
from .pipeline import check_exportable, split_indices, write_split_meta, write_split_part
from .store import ReferenceStore

__all__ = [
    "DenseBulk",
    "PeriodicDFT",
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
    """Kohn-Sham settings of periodic cells (see the module docstring); the
    ``calculation`` of a periodic :class:`~.executor.Job`. Gamma-point sampling unless
    ``kpoint_length_angstrom`` asks for a k-point mesh (:meth:`kmesh`)."""

    method: ClassVar[str] = "periodic-dft"

    xc: str = "lda,vwn"
    basis: str = "gth-szv"
    pseudo: str = "gth-pade"
    ke_cutoff_hartree: float = 60.0
    smearing_hartree: float = 0.01
    conv_tol_hartree: float = 1e-9
    max_cycle: int = 200
    #: k-point sampling: a Monkhorst-Pack mesh with n_i |a_i| >= this length (Angstrom)
    #: along each lattice vector a_i; 0 samples the Gamma point only
    kpoint_length_angstrom: float = 0.0
    #: ``gamma`` (a mesh through Gamma) or ``shifted`` (Monkhorst-Pack, off Gamma)
    kpoint_grid: str = "gamma"
    #: cells more dilute than this Wigner-Seitz radius (bohr; molecular insulators, whose
    #: forces converge at Gamma) are sampled at the Gamma point only; None: no exception
    gamma_above_rs_bohr: float | None = None

    def __post_init__(self) -> None:
        # numbers as floats, so that 90 and 90.0 are the same job (content keys hash the
        # settings' JSON, where 90 and 90.0 differ)
        for name in (
            "ke_cutoff_hartree",
            "smearing_hartree",
            "conv_tol_hartree",
            "kpoint_length_angstrom",
            "gamma_above_rs_bohr",
        ):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        object.__setattr__(self, "max_cycle", int(self.max_cycle))
        if self.kpoint_grid not in ("gamma", "shifted"):
            raise BodyOrderError(
                f"kpoint_grid must be 'gamma' or 'shifted', got {self.kpoint_grid!r}"
            )
        if not self.kpoint_length_angstrom >= 0:
            raise BodyOrderError("kpoint_length_angstrom must be >= 0 (0: the Gamma point)")
        # pyscf takes a cutoff of 0 (no plane waves) and crashes in C, without a message
        for name in ("ke_cutoff_hartree", "smearing_hartree", "conv_tol_hartree"):
            if not 0 < getattr(self, name) < math.inf:
                raise BodyOrderError(f"{name} must be a positive number, got {getattr(self, name)}")
        if self.gamma_above_rs_bohr is not None and not self.gamma_above_rs_bohr > 0:
            raise BodyOrderError(
                f"gamma_above_rs_bohr must be positive, got {self.gamma_above_rs_bohr}"
            )
        if self.max_cycle < 1:
            raise BodyOrderError(f"max_cycle must be a positive integer, got {self.max_cycle}")

    def to_dict(self) -> dict:
        """The settings; the k-point ones only when they differ from Gamma-point sampling
        (so the content keys of the Gamma-point cells are unchanged)."""
        settings = asdict(self)
        if self.kpoint_length_angstrom == 0 and self.kpoint_grid == "gamma":
            del settings["kpoint_length_angstrom"], settings["kpoint_grid"]
        if self.gamma_above_rs_bohr is None:
            del settings["gamma_above_rs_bohr"]
        return settings

    def kmesh(self, lattice, n_atoms: int | None = None) -> tuple[int, int, int]:
        """The k-point mesh of a cell with lattice vectors ``lattice`` (3 x 3, Angstrom)
        holding ``n_atoms`` atoms (needed with ``gamma_above_rs_bohr``)."""
        if self.kpoint_length_angstrom == 0:
            return (1, 1, 1)
        if self.gamma_above_rs_bohr is not None:
            if n_atoms is None:
                raise BodyOrderError("gamma_above_rs_bohr needs the number of atoms of the cell")
            volume = abs(float(np.linalg.det(np.asarray(lattice, dtype=float))))
            rs_bohr = (3 * volume / (4 * math.pi * n_atoms)) ** (1 / 3) / Bohr
            if rs_bohr > self.gamma_above_rs_bohr:
                return (1, 1, 1)
        lengths = np.linalg.norm(np.asarray(lattice, dtype=float), axis=1)
        mesh = [max(1, math.ceil(self.kpoint_length_angstrom / a - 1e-9)) for a in lengths]
        return (mesh[0], mesh[1], mesh[2])

    def run(self, numbers, positions, cell) -> dict:
        """The record of one cell's job (:func:`compute_periodic`, with method and basis)."""
        if cell is None:
            raise BodyOrderError("periodic DFT needs a cell; got an isolated cluster")
        atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
        return {"method": self.method, "basis": self.basis, **compute_periodic(atoms, self)}


def _cell(atoms: Atoms, settings: PeriodicDFT, spin: int = 0):
    from pyscf.pbc import gto  # pyscf

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
    from pyscf.pbc import dft  # pyscf
    from pyscf.pbc.dft.multigrid import MultiGridNumInt2  # pyscf

    if not atoms.pbc.all() or atoms.cell.rank != 3:
        raise BodyOrderError("periodic reference needs a cell periodic in all three directions")
    if int(atoms.numbers.sum()) % 2:
        raise BodyOrderError(
            f"{len(atoms)} electrons: closed-shell periodic DFT needs an even count"
        )
    start = time.perf_counter()
    cell = _cell(atoms, settings)
    mesh = settings.kmesh(atoms.cell, len(atoms))
    if mesh == (1, 1, 1):  # a shifted 1x1x1 mesh is Gamma too (the shift is for even n)
        mf = dft.RKS(cell)
        mf._numint = MultiGridNumInt2(cell)
    else:  # pyscf's k-point gradients need its plain FFT density fitting
        kpts = cell.make_kpts(mesh, with_gamma_point=settings.kpoint_grid == "gamma")
        mf = dft.KRKS(cell, kpts)
    mf.xc = settings.xc
    mf = mf.smearing(sigma=settings.smearing_hartree, method="fermi")
    mf.conv_tol = settings.conv_tol_hartree
    mf.max_cycle = settings.max_cycle
    mf.kernel()
    if not mf.converged:
        raise BodyOrderError(f"SCF did not converge in {settings.max_cycle} cycles")
    gradient = _gradients(mf).kernel()
    return {
        "energy_eV": float(mf.e_free) * Hartree,
        "energy_zero_smearing_eV": float(mf.e_zero) * Hartree,
        "forces_eV_per_A": (-np.asarray(gradient) * Hartree / Bohr).tolist(),
        "kmesh": list(mesh),
        "converged": True,
        "wall_time_s": time.perf_counter() - start,
    }


def _gradients(mf):
    """pyscf's nuclear-gradient object of ``mf``; with k-points, its core-Hamiltonian
    derivative evaluates the AOs on the grid once per k-point
    (:func:`~.kpoint_gradient.hcore_generator`, :data:`_AO_CHUNK_BYTES` at a time)."""
    grad = mf.nuc_grad_method()
    if hasattr(mf, "kpts") and mf.cell._pseudo and not mf.cell._ecp:
        grad.__class__ = cached_hcore_class(type(grad), _AO_CHUNK_BYTES)
    return grad


#: memory of the AOs and their derivatives on the grid per call of the k-point gradient's
#: core-Hamiltonian derivative (:func:`~.kpoint_gradient.hcore_generator`)
_AO_CHUNK_BYTES = AO_CHUNK_BYTES


def isolated_atom_energy(settings: PeriodicDFT = PeriodicDFT(), box_angstrom: float = 8.0) -> float:
    """Spin-polarised energy (eV) of one H atom in a cubic box (the 1-body term)."""
    from pyscf.pbc import dft  # pyscf

    atoms = Atoms("H", positions=[[box_angstrom / 2] * 3], cell=[box_angstrom] * 3, pbc=True)
    mf = dft.UKS(_cell(atoms, settings, spin=1))
    mf.xc = settings.xc
    mf.conv_tol = settings.conv_tol_hartree
    energy = mf.kernel()
    if not mf.converged:
        raise BodyOrderError("SCF of the isolated H atom did not converge")
    return float(energy) * Hartree


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
    ok = {i for i, r in records.items() if r.get("error") is None and "energy_eV" in r}
    check_exportable(len(ok), len(cells), dataset, "periodic DFT result", "the store")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    split = split_indices(len(cells), split_seed, fractions)
    by_index = {int(a.info["index"]): a for a in cells}
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
