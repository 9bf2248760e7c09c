"""Fragment data: energies and forces of the sub-clusters of *training* clusters.

The sub-clusters (fragments) of sizes 1 to N-1 that the many-body expansion evaluates,
cut from training clusters and computed at the level of theory and with the spin policy
of the ab initio MBE (:func:`~.pipeline.reference_mbe`), as extra training data
(``docs/science.md``, section 7, "Makeup"). Jobs go through the resumable store and executor
(:class:`~.store.ReferenceStore`, :func:`~.executor.run_jobs`): content-keyed, claimed,
written as each ends, so a rerun computes only what is missing.

Readable job keys (not unique; the store looks jobs up by content key):

* ``{dataset}/{parent}/fragment/{label}/{method}/{basis}/{spin_policy}``: a fragment of
  the training cluster ``parent`` (``label`` from
  :func:`ase_bodyorder.expansion.subcluster_label`, the keys of the model and reference
  MBE: 0-based atom indices of the parent joined by ``-``, ascending);
* ``H-atom/fragment/{method}/{basis}/{spin_policy}``: the isolated H atom (one atom at
  the origin), computed and exported once: every atom of every parent has its energy,
  and its force is zero.

Fragment jobs always compute forces, so their content keys differ from the MBE's
energy-only jobs even at the same geometry and settings.

Only clusters of a split's ``train`` part may be exported as fragments
(:func:`train_clusters` selects them and refuses others): fragments of validation or
test clusters would leak the held-out clusters' sub-cluster energies into training.

Exported extxyz frames carry ``energy`` (eV), ``forces`` (eV/Angstrom) and info
``parent`` (cluster index), ``label``, ``size``, ``dataset``, ``two_s`` and
``energy_Ha``; positions are the parent's rows (Angstrom). A one-atom label such as
``"0"`` is read back by ASE as an integer: use ``str(atoms.info["label"])``.
"""

from __future__ import annotations

import gzip
import io
import json
import shlex
import sys
import time
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..expansion import BodyOrderError, subcluster_label
from ..io import sha256_file
from .electronic import Calculation
from .executor import Job
from .splits import (
    check_split_clusters,
    cluster_index,
    read_split,
    split_part_indices,
    train_clusters,
)
from .store import ReferenceStore

__all__ = [
    "DEFAULT_SIZES",
    "check_split_clusters",
    "export_fragments",
    "fragment_jobs",
    "parse_sizes",
    "provenance_path",
    "read_split",
    "split_part_indices",
    "train_clusters",
]

#: fragment sizes of an 8-atom cluster: every proper sub-cluster
DEFAULT_SIZES = range(1, 8)

_SPIN_POLICIES = {
    "lowest": "2S = n mod 2 for a sub-cluster of n H atoms (singlet or doublet)",
    "ground": "the lowest energy over the allowed multiplicities of each sub-cluster",
}


def _suffix(calc: Calculation) -> str:
    return f"{calc.method}/{calc.basis}/{calc.spin_policy}"


def _forces_calculation(calc: Calculation) -> Calculation:
    """``calc`` with forces on (fragments are training data: energies and forces)."""
    return calc if calc.forces else calc.replace(forces=True)


def _check_sizes(sizes: Iterable[int], n_atoms: int, index: int) -> list[int]:
    sizes = sorted({int(s) for s in sizes})
    if not sizes:
        raise BodyOrderError("no fragment sizes requested")
    bad = [s for s in sizes if not 1 <= s < n_atoms]
    if bad:
        raise BodyOrderError(
            f"fragment sizes {bad} are not sub-clusters of cluster {index} ({n_atoms} atoms): "
            f"sizes run from 1 to {n_atoms - 1} (the whole cluster is in the training set)"
        )
    return sizes


def _parent_fragments(
    atoms: Atoms, dataset: str, calc: Calculation, sizes: Iterable[int]
) -> list[tuple[str, np.ndarray, Job]]:
    """``(label, members, job)`` per fragment of one parent cluster, by size then label.

    Size 1 gives only atom 0, with the shared H-atom job (one atom at the origin).
    """
    index = cluster_index(atoms)
    calc = _forces_calculation(calc)
    out = []
    for size in _check_sizes(sizes, len(atoms), index):
        if size == 1:
            members = np.array([0])
            # no "label" here: ASE's database refuses the string "0" as a key-value pair
            # (it reads as an integer); the label is subcluster_label([atom]) = "0"
            meta = {
                "kind": "atom",
                "dataset": dataset,
                "cluster": index,
                "parent": index,
                "atom": 0,
                "size": 1,
            }
            job = Job(
                f"H-atom/fragment/{_suffix(calc)}",
                atoms.numbers[members].copy(),
                np.zeros((1, 3)),
                calc,
                meta,
            )
            out.append(("0", members, job))
            continue
        for combination in combinations(range(len(atoms)), size):
            members = np.array(combination)
            label = subcluster_label(members)
            meta = {
                "kind": "fragment",
                "dataset": dataset,
                "cluster": index,
                "parent": index,
                "label": label,
                "size": size,
            }
            job = Job(
                f"{dataset}/{index}/fragment/{label}/{_suffix(calc)}",
                atoms.numbers[members].copy(),
                atoms.positions[members].copy(),
                calc,
                meta,
            )
            out.append((label, members, job))
    return out


def fragment_jobs(
    clusters: Sequence[Atoms],
    dataset: str,
    calc: Calculation,
    sizes: Iterable[int] = DEFAULT_SIZES,
) -> list[Job]:
    """One job (energy and forces) per distinct sub-cluster of ``clusters`` of ``sizes``.

    ``clusters``: parent clusters (``atoms.info["index"]``: index in the data set;
    positions in Angstrom); select training clusters with :func:`train_clusters`.
    ``sizes``: fragment sizes, each from 1 to N-1. The isolated atom is one job, shared by
    all parents. Each job's ``meta`` carries ``parent`` (cluster index), ``label`` (as in
    the MBE) and ``size``; the atom's carries ``atom`` (0, the first parent's atom 0,
    label ``"0"``) instead of ``label``, which ASE's database would refuse as a string.
    ``calc`` is used with forces on, whatever its ``forces``.
    """
    sizes = list(sizes)
    jobs: dict[str, Job] = {}
    for atoms in clusters:
        for _, _, job in _parent_fragments(atoms, dataset, calc, sizes):
            jobs.setdefault(job.content_key, job)
    return list(jobs.values())


def parse_sizes(text: str) -> list[int]:
    """Fragment sizes from ``"1..7"``, ``"2,3"`` or ``"1..3,6"`` (ranges inclusive)."""
    sizes: set[int] = set()
    try:
        for item in text.split(","):
            item = item.strip()
            if ".." in item:
                low, high = (int(x) for x in item.split(".."))
                if low > high:
                    raise ValueError(f"empty range {item}")
                sizes.update(range(low, high + 1))
            else:
                sizes.add(int(item))
    except ValueError as error:
        raise BodyOrderError(
            f"cannot read fragment sizes {text!r} (e.g. 1..7 or 2,3): {error}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise BodyOrderError(f"fragment sizes must be positive integers, got {text!r}")
    return sorted(sizes)


def provenance_path(path) -> Path:
    """The provenance JSON written next to the fragments file ``path``.

    ``out/h8-high_fragments.xyz`` (or ``.xyz.gz``) gives
    ``out/h8-high_fragments_provenance.json``.
    """
    path = Path(path)
    name = path.name.removesuffix(".gz")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return path.with_name(f"{stem}_provenance.json")


def _write_extxyz(path: Path, frames: list[Atoms]) -> None:
    """Write ``frames`` as extxyz; gzipped (level 9, no time stamp) if ``path`` ends in .gz.

    The gzip header carries no file name or time, so the same frames give the same bytes
    (and hash) on every run. Read it back with :func:`ase_bodyorder.io.read_structures`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix != ".gz":
        ase.io.write(path, frames, format="extxyz")
        return
    text = io.StringIO()
    ase.io.write(text, frames, format="extxyz")
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as out,
    ):
        out.write(text.getvalue().encode())


def export_fragments(
    store: ReferenceStore,
    clusters: Sequence[Atoms],
    dataset: str,
    calc: Calculation,
    path,
    *,
    sizes: Iterable[int] = DEFAULT_SIZES,
    split: dict | None = None,
    split_file=None,
    command: str | None = None,
) -> dict:
    """Write the fragments of ``clusters`` as extxyz and their provenance JSON next to it.

    ``path``: the extxyz file, gzipped if it ends in ``.gz`` (about 6 times smaller; read
    it with :func:`ase_bodyorder.io.read_structures`: ``ase.io.read`` of a gzipped file
    takes time quadratic in its frames).

    Frames, per parent in the order of ``clusters`` then by size and label: positions are
    the parent's rows (Angstrom), ``energy`` (eV), ``forces`` (eV/Angstrom), info
    ``parent``, ``label``, ``size``, ``dataset``, ``two_s``, ``energy_Ha``. The isolated
    atom is written once (the first parent's atom 0). Records are looked up by content
    key and their stored geometry checked against each fragment's (a mismatch is a
    :class:`BodyOrderError`); fragments whose job is missing or failed are left out and
    listed. ``split``: if given, every parent must be one of its train clusters.
    ``command``: recorded in the provenance (default: this process's command line).

    Returns the provenance (also written to :func:`provenance_path`): calculation,
    spin policy, sizes, parents, counts per size, file name, size and SHA-256, missing
    jobs, summed job wall time per size (s), package versions and the command.
    """
    path = Path(path)
    sizes = list(sizes)
    if split is not None:
        train_clusters(clusters, split, indices=[cluster_index(a) for a in clusters])
    calc = _forces_calculation(calc)
    per_parent = [(atoms, _parent_fragments(atoms, dataset, calc, sizes)) for atoms in clusters]
    records = store.matching_records(job for _, items in per_parent for _, _, job in items)
    frames, missing = [], []
    counts: dict[int, int] = {}
    wall_s: dict[int, float] = {}
    versions: dict[str, set] = {}
    atom_written = False
    for atoms, items in per_parent:
        parent = cluster_index(atoms)
        for label, members, job in items:
            size = len(members)
            if size == 1 and (atom_written or job.key in missing):
                continue  # the isolated atom: once
            record = records.get(job.content_key)
            if record is None:
                missing.append(job.key)
                continue
            atom_written = atom_written or size == 1
            frame = Atoms(numbers=atoms.numbers[members], positions=atoms.positions[members])
            frame.info = {
                "parent": parent,
                "label": label,
                "size": size,
                "dataset": dataset,
                "energy": record["energy_eV"],
                "energy_Ha": record["energy_Ha"],
                "two_s": record["two_s"],
            }
            frame.arrays["forces"] = np.asarray(record["forces_eV_per_A"], dtype=float)
            frames.append(frame)
            counts[size] = counts.get(size, 0) + 1
            wall_s[size] = wall_s.get(size, 0.0) + float(record.get("wall_time_s") or 0.0)
            for name, version in (record.get("versions") or {}).items():
                versions.setdefault(name, set()).add(str(version))
    _write_extxyz(path, frames)
    meta = {
        "kind": "fragments of training clusters",
        "dataset": dataset,
        "method": calc.method,
        "basis": calc.basis,
        "spin_policy": calc.spin_policy,
        "spin_policy_meaning": _SPIN_POLICIES.get(calc.spin_policy, calc.spin_policy),
        "calculation": calc.to_dict(),
        "units": {"energy": "eV", "forces": "eV/Angstrom", "positions": "Angstrom"},
        "sizes": sorted(set(sizes)),
        "parents": [cluster_index(a) for a in clusters],
        "counts": {str(size): counts[size] for size in sorted(counts)},
        "frames": len(frames),
        "missing": missing,
        "file": path.name,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "job_wall_time_s": {str(size): wall_s[size] for size in sorted(wall_s)},
        "versions": {name: sorted(v) for name, v in sorted(versions.items())},
        "command": command if command is not None else shlex.join(sys.argv),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if 1 in sizes:
        meta["single_atom"] = (
            "the isolated H atom once (first parent, atom 0): every atom has its energy, "
            "and its force is zero"
        )
    if split is not None:
        meta["split"] = {"part": "train", "split_seed": split.get("split_seed")}
        if split_file is not None:
            meta["split"]["file"] = Path(split_file).name
            meta["split"]["sha256"] = sha256_file(split_file)
    provenance_path(path).write_text(json.dumps(meta, indent=1) + "\n")
    return meta
