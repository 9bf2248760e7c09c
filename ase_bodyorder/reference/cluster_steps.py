"""The cluster steps of ``ase-bodyorder reference`` as functions: ``sample``, ``compute``,
``mbe``, ``export`` and ``fragments``.

Each runs the jobs of its clusters that the store (an ASE SQLite database, ``db``) does
not hold yet (:func:`~.executor.run_jobs`; ``executor``: its ``workers``, ``scheduler``
and ``retry_failed``), writes its outputs and returns what the command line prints.
Energies in eV, lengths in Angstrom.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ase.io
from ase import Atoms

from ..expansion import BodyOrderError
from .clusters import HighDensity, LowDensity, sample_clusters
from .electronic import Calculation
from .executor import RunSummary, run_jobs
from .fragments import export_fragments, fragment_jobs, parse_sizes
from .pipeline import cluster_jobs, export_dataset, mbe_jobs, reference_mbe
from .splits import check_split_clusters, read_split, train_clusters
from .store import ReferenceStore

__all__ = [
    "compute_clusters",
    "compute_fragments",
    "expand_clusters",
    "export_clusters",
    "write_sampled_clusters",
]


def write_sampled_clusters(
    output, density: str, count: int, seed: int, *, n_atoms: int = 8, rs_bohr: float | None = None
) -> int:
    """Sample ``count`` clusters of ``n_atoms`` H atoms at ``density`` (``high`` or
    ``low``; ``rs_bohr``: the Wigner-Seitz radius, bohr, default the sampler's) from
    ``seed`` and write them to ``output`` as extxyz. Returns how many were written."""
    kind = HighDensity if density == "high" else LowDensity
    options: dict[str, Any] = {"n_atoms": n_atoms}
    if rs_bohr is not None:
        options["rs_bohr"] = rs_bohr
    clusters = sample_clusters(kind(**options), count, seed)
    ase.io.write(output, clusters, format="extxyz")
    return len(clusters)


def compute_clusters(
    clusters: list[Atoms], dataset: str, calc: Calculation, db, **executor: Any
) -> RunSummary:
    """Energies (and forces, if ``calc.forces``) of every cluster (``info["index"]``: its
    index in the data set) into the store ``db``."""
    store = ReferenceStore(db)
    return run_jobs(cluster_jobs(clusters, dataset, calc), store, label=dataset, **executor)


def expand_clusters(
    clusters: list[Atoms],
    dataset: str,
    calc: Calculation,
    db,
    output,
    *,
    source: str = "the clusters",
    **executor: Any,
) -> tuple[RunSummary, list[dict]]:
    """The ab initio MBE of hydrogen ``clusters``: every sub-cluster's energy into the
    store ``db``, then each cluster's terms (:func:`~.pipeline.reference_mbe`), written to
    ``output`` as JSON (``dataset``, ``calculation``, ``clusters``). ``source``: the
    clusters' file, named when they hold other elements. Returns the run and the terms."""
    store = ReferenceStore(db)
    others = sorted({s for atoms in clusters for s in atoms.symbols} - {"H"})
    if others:  # the 1-body term is the H atom's
        raise BodyOrderError(
            f"{source}: the ab initio MBE expands hydrogen clusters, these hold {', '.join(others)}"
        )
    summary = run_jobs(mbe_jobs(clusters, dataset, calc), store, label=dataset, **executor)
    results = [reference_mbe(store, atoms, dataset, calc) for atoms in clusters]
    Path(output).write_text(
        json.dumps({"dataset": dataset, "calculation": calc.to_dict(), "clusters": results}) + "\n"
    )
    return summary, results


def export_clusters(
    clusters: list[Atoms], dataset: str, calc: Calculation, db, out_dir, *, split_seed: int = 0
) -> dict:
    """The train/validation/test extxyz files of the clusters done in the store ``db``
    (:func:`~.pipeline.export_dataset`); returns the split's metadata."""
    store = ReferenceStore(db)
    return export_dataset(store, clusters, dataset, calc, out_dir, split_seed=split_seed)


def compute_fragments(
    clusters_file,
    split_file,
    calc: Calculation,
    db,
    output,
    *,
    count: int,
    sizes: str = "1..7",
    dataset: str | None = None,
    command: str | None = None,
    **executor: Any,
) -> tuple[RunSummary, dict, int]:
    """Energies and forces of the fragments (sub-clusters of ``sizes``, e.g. ``1..7`` or
    ``2,3``) of the first ``count`` train clusters of the split ``split_file``, into the
    store ``db`` and then to ``output`` (:func:`~.fragments.export_fragments`, with
    ``command`` in its provenance); ``calc`` with forces, whatever its ``forces``.
    ``dataset``: default the split's, else the file stem. Returns the run, the
    provenance and the number of parent clusters."""
    size_list = parse_sizes(sizes)
    split = read_split(split_file)
    dataset = dataset or split.get("dataset") or Path(clusters_file).stem
    if split.get("dataset") not in (None, dataset):
        raise BodyOrderError(
            f"split {split_file} is of data set {split['dataset']!r}, not {dataset!r}"
        )
    try:
        clusters = ase.io.read(clusters_file, ":")
    except (ValueError, IndexError) as error:
        raise BodyOrderError(f"cannot read clusters of {clusters_file}: {error}") from None
    parents = train_clusters(clusters, split, count=count)
    check_split_clusters(parents, split, split_file)
    store = ReferenceStore(db)
    jobs = fragment_jobs(parents, dataset, calc, size_list)
    summary = run_jobs(jobs, store, label=f"fragments {dataset}", **executor)
    meta = export_fragments(
        store,
        parents,
        dataset,
        calc,
        output,
        sizes=size_list,
        split=split,
        split_file=split_file,
        command=command,
    )
    return summary, meta, len(parents)
