"""Reference data sets: jobs for clusters, the ab initio MBE, and export for training.

Jobs are identified by content: :func:`~.store.content_key` hashes the species, the
positions (to 1e-6 Angstrom, :data:`~.store.POSITION_PRECISION_A`) and the calculation
settings, so a changed geometry (e.g. a cluster file sampled again under the same name)
is a new job, computed and stored beside the old one, never matched with its energies.
Lookups (:func:`export_dataset`, :func:`reference_mbe`) go by content key and check that
the stored positions agree with the frame's.

Each job also has a readable, parseable key (``Job.key``, the ``job_key`` column):

* ``{dataset}/{index}/{method}/{basis}/{spin_policy}``: a whole cluster;
* ``{dataset}/{index}/mbe/{label}/{method}/{basis}/{spin_policy}``: a sub-cluster of it
  (``label`` from :func:`ase_bodyorder.expansion.subcluster_label`, the same keys as the
  model MBE);
* ``H-atom/{method}/{basis}/{spin_policy}``: the 1-body term, shared by every atom (one
  atom at the origin).
"""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.units import Hartree

from ..expansion import BodyOrderError, cluster_orders, plan_expansion
from ..io import sha256_file
from .electronic import Calculation
from .executor import Job
from .store import POSITION_PRECISION_A, ReferenceStore, content_key

__all__ = [
    "POSITION_PRECISION_A",
    "cluster_job",
    "cluster_jobs",
    "cluster_key",
    "cluster_record",
    "content_key",
    "export_dataset",
    "mbe_jobs",
    "reference_mbe",
    "split_indices",
]


def _suffix(calc: Calculation) -> str:
    return f"{calc.method}/{calc.basis}/{calc.spin_policy}"


def cluster_key(dataset: str, index: int, calc: Calculation) -> str:
    """The readable key of a whole-cluster job (not unique: see :attr:`Job.content_key`)."""
    return f"{dataset}/{index}/{_suffix(calc)}"


def _atom_key(calc: Calculation) -> str:
    return f"H-atom/{_suffix(calc)}"


def cluster_job(atoms: Atoms, dataset: str, calc: Calculation) -> Job:
    """The job of one cluster (``atoms.info["index"]``: its index in the data set)."""
    index = int(atoms.info["index"])
    meta = {"dataset": dataset, "cluster": index, "kind": "cluster"}
    return Job(
        cluster_key(dataset, index, calc), atoms.numbers.copy(), atoms.positions.copy(), calc, meta
    )


def cluster_jobs(clusters: list[Atoms], dataset: str, calc: Calculation) -> list[Job]:
    """One job per cluster (energy and, if ``calc.forces``, forces)."""
    return [cluster_job(atoms, dataset, calc) for atoms in clusters]


def cluster_record(
    store: ReferenceStore, atoms: Atoms, dataset: str, calc: Calculation
) -> dict | None:
    """The finished record of one cluster, looked up by content (None if missing/failed)."""
    job = cluster_job(atoms, dataset, calc)
    return store.matching_records([job]).get(job.content_key)


def _mbe_plan(atoms: Atoms):
    return plan_expansion(atoms.positions, max_order=len(atoms), min_distance=0.0)


def _energy_calculation(calc: Calculation) -> Calculation:
    return Calculation(**{**calc.to_dict(), "forces": False, "dmrg": calc.dmrg})


def _subcluster_jobs(plan, atoms: Atoms, dataset: str, calc: Calculation) -> list[Job]:
    """Energy jobs of the sub-clusters of ``plan`` (in its order); one atom sits at the origin."""
    index = int(atoms.info["index"])
    calc_e = _energy_calculation(calc)
    jobs = []
    for f, (label, size) in enumerate(zip(plan.labels(), plan.sizes, strict=True)):
        members = plan.atoms[plan.offsets[f] : plan.offsets[f + 1]]
        meta = {"dataset": dataset, "cluster": index, "kind": "mbe", "size": len(members)}
        if size == 1:
            key, positions = _atom_key(calc), np.zeros((1, 3))
            meta = {"kind": "atom", "size": 1}
        else:
            key = f"{dataset}/{index}/mbe/{label}/{_suffix(calc)}"
            positions = atoms.positions[members].copy()
        jobs.append(Job(key, atoms.numbers[members].copy(), positions, calc_e, meta))
    return jobs


def mbe_jobs(clusters: list[Atoms], dataset: str, calc: Calculation) -> list[Job]:
    """Energies of every sub-cluster of every cluster (the 1-body term once)."""
    jobs = {}
    for atoms in clusters:
        for job in _subcluster_jobs(_mbe_plan(atoms), atoms, dataset, calc):
            jobs.setdefault(job.content_key, job)
    return list(jobs.values())


def reference_mbe(
    store: ReferenceStore, atoms: Atoms, dataset: str, calc: Calculation, records=None
) -> dict:
    """The ab initio MBE of one cluster from stored sub-cluster energies.

    Returns ``energies_eV`` (per order), the sub-cluster energies (Hartree) by label, and
    the full-cluster energy; raises if any sub-cluster is missing or failed. ``records``:
    finished records by content key, read once for many clusters
    (``store.records(job.content_key for job in mbe_jobs(...))``); by default they are
    read and checked against the cluster's positions.
    """
    index = int(atoms.info["index"])
    plan = _mbe_plan(atoms)
    jobs = _subcluster_jobs(plan, atoms, dataset, calc)
    if records is None:
        records = store.matching_records(jobs)
    missing = [job.key for job in jobs if job.content_key not in records]
    if missing:
        raise BodyOrderError(
            f"cluster {index} of {dataset}: {len(missing)} sub-cluster energies missing or "
            f"failed in {store.path}, e.g. {missing[0]}"
        )
    found = [records[job.content_key] for job in jobs]
    energies_ha = np.array([record["energy_Ha"] for record in found])
    terms = cluster_orders(plan, energies_ha * Hartree)
    return {
        "dataset": dataset,
        "cluster": index,
        "method": calc.method,
        "basis": calc.basis,
        "spin_policy": calc.spin_policy,
        "energies_eV": terms.energies_eV.tolist(),
        "total_energy_eV": float(energies_ha[-1] * Hartree),
        "subcluster_energies_Ha": dict(zip(plan.labels(), energies_ha.tolist(), strict=True)),
        "two_s": {
            label: record["two_s"] for label, record in zip(plan.labels(), found, strict=True)
        },
    }


def split_indices(n: int, seed: int, fractions=(0.8, 0.1, 0.1)) -> dict[str, list[int]]:
    """A seeded train/validation/test split of ``range(n)``."""
    if abs(sum(fractions) - 1) > 1e-9:
        raise BodyOrderError(f"split fractions must add up to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    return {
        "train": sorted(order[:n_train].tolist()),
        "validation": sorted(order[n_train : n_train + n_val].tolist()),
        "test": sorted(order[n_train + n_val :].tolist()),
    }


def export_dataset(
    store: ReferenceStore,
    clusters: list[Atoms],
    dataset: str,
    calc: Calculation,
    directory,
    *,
    split_seed: int = 0,
    fractions=(0.8, 0.1, 0.1),
) -> dict:
    """Write ``{dataset}_{train,validation,test}.xyz`` with ``energy`` (eV) and ``forces``.

    Records are looked up by content (species, positions, settings) and their stored
    positions checked against each frame's, so a cluster file sampled again under the
    same name is never paired with the old energies. Clusters whose job failed or is
    missing are left out and listed; when none has a result, nothing is written
    (:func:`check_exportable`). Returns the split
    metadata (indices, counts, file hashes), also written as ``{dataset}_split.json``.
    """
    jobs = {int(a.info["index"]): cluster_job(a, dataset, calc) for a in clusters}
    keys = {index: job.content_key for index, job in jobs.items()}
    records = store.matching_records(jobs.values())
    what = f"{_suffix(calc)} result{' with forces' if calc.forces else ''}"
    check_exportable(len(records), len(clusters), dataset, what, store.path)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    split = split_indices(len(clusters), split_seed, fractions)
    by_index = {int(a.info["index"]): a for a in clusters}
    meta = {
        "dataset": dataset,
        "calculation": calc.to_dict(),
        "split_seed": split_seed,
        "fractions": list(fractions),
        "units": {"energy": "eV", "forces": "eV/Angstrom"},
        "missing": sorted(i for i, k in keys.items() if k not in records),
        "files": {},
    }
    for part, indices in split.items():
        frames = []
        for i in indices:
            record = records.get(keys[i])
            if record is None:
                continue
            atoms = by_index[i].copy()
            atoms.info = {
                "index": i,
                "dataset": dataset,
                "energy": record["energy_eV"],
                "energy_Ha": record["energy_Ha"],
                "two_s": record["two_s"],
            }
            if record.get("forces_eV_per_A") is not None:
                atoms.arrays["forces"] = np.asarray(record["forces_eV_per_A"])
            frames.append(atoms)
        write_split_part(directory, dataset, part, frames, meta)
    return write_split_meta(directory, dataset, meta)


def check_exportable(found: int, total: int, dataset: str, what: str, store_path) -> None:
    """Refuse an export of ``dataset`` in which none of its ``total`` structures has a
    finished ``what`` in the store at ``store_path`` (its split files would be empty)."""
    if found == 0:
        raise BodyOrderError(
            f"none of the {total} structures of {dataset} has a finished {what} in "
            f"{store_path} (other settings, another file, or not computed yet): nothing "
            "exported"
        )


def write_split_part(directory: Path, dataset: str, part: str, frames, meta: dict) -> None:
    """Write ``{dataset}_{part}.xyz`` and record its file, count, hash and indices."""
    path = Path(directory) / f"{dataset}_{part}.xyz"
    ase.io.write(path, frames, format="extxyz")
    meta["files"][part] = {
        "file": path.name,
        "count": len(frames),
        "sha256": sha256_file(path),
        "indices": [int(a.info["index"]) for a in frames],
    }


def write_split_meta(directory: Path, dataset: str, meta: dict) -> dict:
    """Write ``{dataset}_split.json``; return ``meta``."""
    (Path(directory) / f"{dataset}_split.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta
