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

Energies in eV, forces in eV/Angstrom, lengths in Angstrom (Hartree and bohr only inside
pyscf). The cells are sampled by :mod:`ase_bodyorder.structures` (:class:`DenseBulk`,
:func:`sample_bulk`, importable from here as before).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from ..expansion import BodyOrderError
from ..structures import DenseBulk, sample_bulk

__all__ = [
    "DenseBulk",
    "PeriodicDFT",
    "compute_periodic",
    "isolated_atom_energy",
    "export_bulk",
    "read_results",
    "run_periodic",
    "sample_bulk",
]


@dataclass(frozen=True)
class PeriodicDFT:
    """Gamma-point Kohn-Sham settings (see the module docstring)."""

    xc: str = "lda,vwn"
    basis: str = "gth-szv"
    pseudo: str = "gth-pade"
    ke_cutoff_hartree: float = 60.0
    smearing_hartree: float = 0.01
    conv_tol_hartree: float = 1e-9
    max_cycle: int = 200

    def to_dict(self) -> dict:
        return asdict(self)


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


def _job(args):
    index, numbers, positions, cell, settings = args
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    try:
        from pyscf import lib

        lib.num_threads(1)
        atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
        return index, compute_periodic(atoms, settings), None
    except Exception as error:  # recorded; the other cells go on
        return index, None, f"{type(error).__name__}: {error}"


def run_periodic(
    cells: list[Atoms],
    results_path: Path,
    settings: PeriodicDFT = PeriodicDFT(),
    *,
    workers: int = 1,
    stream=None,
) -> dict[int, dict]:
    """Compute every cell not yet in ``results_path`` (JSON lines, appended as they finish).

    Resumable: rerunning skips the indices already recorded (failed ones included; delete
    their lines to retry). Returns ``{index: record}`` of all recorded cells.
    """
    stream = sys.stderr if stream is None else stream
    results_path = Path(results_path)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    done = read_results(results_path)
    todo = [a for a in cells if int(a.info["index"]) not in done]
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max(1, workers)) as pool:
        futures = [
            pool.submit(
                _job,
                (
                    int(a.info["index"]),
                    a.numbers.tolist(),
                    a.positions.tolist(),
                    np.asarray(a.cell).tolist(),
                    settings,
                ),
            )
            for a in todo
        ]
        for count, future in enumerate(concurrent.futures.as_completed(futures), 1):
            index, record, error = future.result()
            record = {"index": index, **(record or {}), "error": error}
            with results_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            done[index] = record
            elapsed = time.perf_counter() - start
            print(
                f"\rperiodic DFT: {count}/{len(todo)} cells, {elapsed:.0f} s, "
                f"about {elapsed / count * (len(todo) - count):.0f} s left",
                end="",
                file=stream,
                flush=True,
            )
    if todo:
        print(file=stream)
    return done


def read_results(path: Path) -> dict[int, dict]:
    """``{index: record}`` from a JSON-lines results file (empty if it does not exist)."""
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


def main(argv=None):
    parser = argparse.ArgumentParser(description="periodic DFT reference of dense hydrogen")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=3001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--results", default="reference-work/hbulk-high.jsonl")
    args = parser.parse_args(argv)
    cells = sample_bulk(DenseBulk(), args.count, args.seed)
    run_periodic(cells, Path(args.results), workers=args.workers)


if __name__ == "__main__":
    main()
