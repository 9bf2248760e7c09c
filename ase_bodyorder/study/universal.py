"""How universal MLIPs split energy into body orders, against the PBE expansion (issue 32).

Three steps, each resumable, each a ``study universal`` subcommand:

1. **reference** (:func:`run_reference`): the PBE jobs of
   :mod:`ase_bodyorder.reference.universal` through the content-keyed store (a killed run
   keeps every finished job), then :func:`export_reference`: per data set, the
   expansions of the clusters that are complete, the dimer curves, the larger-basis
   check and the measured cost per job type, as compact JSON under
   ``ase_bodyorder/data/reference/universal/`` (``complete`` says whether a set is done).
2. **models** (:func:`evaluate_model`): a model's expansion (K = 4 and the whole cluster)
   of the same clusters, its free atoms and its dimer curves, one JSON per model. The
   universal MLIPs run in ``.venv-universal``, the study's H8 models in ``.venv``.
3. **report** (:func:`~.universal_report.write_report`): tables, figures and claims from
   those files only (statistics and claims in :mod:`.universal_stats`, figures in
   :mod:`.universal_figures`).

E^(1) is each model's own isolated-atom energy: universal MLIPs fit a per-element
energy to periodic PAW data, whose zero is not the all-electron atom's, so E^(1) is
compared as an offset per atom only; every order n >= 2 is a difference of energies and
is compared directly. Energies in eV, distances in Angstrom.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ..decompose import decompose
from ..expansion import BodyOrderError
from ..io import atomic_path, write_json_atomically
from ..reference.executor import run_jobs
from ..reference.universal import (
    DATASETS,
    DIMER_DISTANCES_A,
    LEVEL_OF_THEORY,
    MAX_ORDER,
    PSEUDOPOTENTIAL,
    REFERENCE,
    cluster_expansion,
    dataset_names,
    dimer_curve,
    dimer_jobs,
    expansion_jobs,
    load_clusters,
    ordered_jobs,
)

if TYPE_CHECKING:
    from ..models.base import Model
    from ..reference.store import ReferenceStore

__all__ = [
    "DATA_DIR",
    "evaluate_model",
    "export_reference",
    "read_models",
    "read_reference",
    "run_reference",
    "seed_store",
    "write_json",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "reference" / "universal"
#: every finished job's record by content key, exported beside the expansions, so that a
#: machine without the store continues (:func:`seed_store`) instead of recomputing
RECORDS_FILE = "records_pbe.json.gz"


# ---------------------------------------------------------------- reference


def run_reference(
    store: ReferenceStore,
    *,
    names: Iterable[str] | None = None,
    workers: int = 1,
    checks: bool = True,
    progress: bool = True,
) -> Any:
    """Compute every missing PBE job (resumable; failed jobs are retried)."""
    return run_jobs(
        ordered_jobs(names, checks=checks),
        store,
        workers=workers,
        label="universal PBE",
        retry_failed=True,
        progress=progress,
    )


def _cost_group(meta: dict, numbers: Sequence) -> tuple[str, int]:
    group = meta.get("dataset") or f"{meta.get('element', '?')}-{meta.get('kind', '?')}"
    return group, int(meta.get("size", len(numbers)))


def _cost_table(store: ReferenceStore) -> list[dict]:
    """CPU time (s) per job: mean, median and count by data set/kind, basis and size, and
    the jobs the study plans in each group (``planned_jobs``, larger-basis checks
    included), so the report can project the total. Only the planned jobs' rows count:
    rows of superseded settings (another content key) are not this reference's cost."""
    planned: dict[tuple, int] = {}
    planned_keys: set[str] = set()
    groups: dict[tuple, list[float]] = {}
    for job in ordered_jobs(checks=True):
        group, size = _cost_group(job.meta, job.numbers)
        key = (group, getattr(job.calculation, "basis", "?"), size)
        planned[key] = planned.get(key, 0) + 1
        planned_keys.add(job.content_key)
        groups.setdefault(key, [])
    for row in store.rows(status="done"):
        if row.get("content_key") not in planned_keys:
            continue
        record = json.loads(row.data["record"])
        if record.get("method") != "molecular-dft" or "cpu_time_s" not in record:
            continue
        group, size = _cost_group(json.loads(row.data["meta"]), row.numbers)
        groups.setdefault((group, record["basis"], size), []).append(float(record["cpu_time_s"]))
    return [
        {
            "set": group,
            "basis": basis,
            "size": size,
            "jobs": len(times),
            "planned_jobs": planned.get((group, basis, size), 0),
            "cpu_s_mean": float(np.mean(times)) if times else None,
            "cpu_s_median": float(np.median(times)) if times else None,
            "cpu_s_max": float(np.max(times)) if times else None,
        }
        for (group, basis, size), times in sorted(groups.items())
    ]


def write_json(path: Path, data: dict) -> None:
    """``data`` as indented JSON at ``path`` (its folder made), never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(path, data)


def export_reference(
    store: ReferenceStore, out_dir: str | Path = DATA_DIR, *, command: str = ""
) -> dict:
    """Write the finished PBE results as compact JSON into ``out_dir``; return a summary.

    ``{set}_pbe.json``: each complete cluster's E^(1)..E^(4), total, residual, sub-cluster
    energies by label and spin (2S) by label, the settings, ``complete`` and the missing
    clusters; ``dimers_pbe.json``: the binding curves per element at the reference and
    the check basis; ``{set}_check.json``: the first cluster at the check basis;
    ``costs_pbe.json``: CPU time per job type; ``records_pbe.json.gz``
    (:data:`RECORDS_FILE`): every finished job's record by content key, which
    :func:`seed_store` writes back into a store that lacks them.
    """
    out_dir = Path(out_dir)
    summary = {}
    for name, spec in DATASETS.items():
        clusters = load_clusters(name)
        for calc, suffix, chosen in (
            (spec.calculation, "pbe", clusters),
            (spec.check, "check", clusters[:1]),
        ):
            records = store.matching_records(expansion_jobs(chosen, name, calc))
            done = [cluster_expansion(records, a, name, calc) for a in chosen]
            results = [r for r in done if r is not None]
            if suffix == "check" and not results:
                continue
            missing = [int(a.info["index"]) for a, r in zip(chosen, done, strict=True) if r is None]
            write_json(
                out_dir / f"{name}_{suffix}.json",
                {
                    "dataset": name,
                    "element": spec.element,
                    "calculation": {"method": calc.method, **calc.to_dict()},
                    "sampler": None
                    if spec.sampler is None
                    else {
                        "protocol": spec.sampler.kind,
                        **{
                            k: getattr(spec.sampler, k)
                            for k in ("element", "n_atoms", "density_per_A3", "min_distance")
                        },
                        "seed": spec.seed,
                    },
                    "complete": not missing,
                    "missing_clusters": missing,
                    "units": "eV; sub-cluster labels are 0-based atom indices of the cluster",
                    "command": command,
                    "clusters": results,
                },
            )
            summary[f"{name}_{suffix}"] = f"{len(results)}/{len(chosen)} clusters"
    curves: dict[str, dict] = {}
    for element in REFERENCE:
        levels = (
            ("reference", REFERENCE[element]),
            ("check", LEVEL_OF_THEORY[element]),
            ("pseudo", PSEUDOPOTENTIAL[element]),
        )
        for level, calc in levels:
            jobs = dimer_jobs(element, calc)
            curve = dimer_curve(store.matching_records(jobs), element, calc)
            curve["basis"] = calc.basis
            if calc.pseudo is not None:
                curve["pseudo"] = calc.pseudo
            curve["complete"] = len(curve["distances_A"]) == len(jobs) - 1
            curves.setdefault(element, {})[level] = curve
            summary[f"{element}2 {level}"] = f"{len(curve['distances_A'])}/{len(jobs) - 1}"
    write_json(
        out_dir / "dimers_pbe.json",
        {"units": "binding energy E(X2) - 2 E(X), eV; distances Angstrom", "curves": curves},
    )
    write_json(out_dir / "costs_pbe.json", {"units": "CPU s per job", "rows": _cost_table(store)})
    records = store.matching_records(ordered_jobs(checks=True))
    text = json.dumps(
        {"units": "pyscf records (Hartree, eV, s)", "records": records}, sort_keys=True
    )
    with atomic_path(out_dir / RECORDS_FILE) as tmp:
        tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
    summary["records"] = f"{len(records)} finished jobs"
    return summary


def seed_store(store: ReferenceStore, data_dir: str | Path = DATA_DIR) -> int:
    """Write into ``store`` the exported record of every planned job it lacks (the
    export's :data:`RECORDS_FILE`; none: nothing); return how many were written.

    The records are looked up by content key, so a job whose geometry or settings have
    changed since the export is not seeded: it runs again."""
    path = Path(data_dir) / RECORDS_FILE
    if not path.is_file():
        return 0
    try:
        records = json.loads(gzip.decompress(path.read_bytes()))["records"]
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
        raise BodyOrderError(f"cannot read the exported PBE records {path}: {error}") from None
    finished = store.finished(include_failed=False)
    written = 0
    for job in ordered_jobs(checks=True):
        key = job.content_key
        if key in records and key not in finished:
            written += store.write(job, records[key], error=None)
    return written


def read_reference(data_dir: str | Path = DATA_DIR) -> dict:
    """The exported reference: ``sets`` (by name), ``checks``, ``dimers``, ``costs``
    (whatever files exist); a missing folder is an error."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise BodyOrderError(f"no exported PBE reference: {data_dir} is not a folder")
    out: dict = {"sets": {}, "checks": {}, "dimers": {}, "costs": []}
    for path in sorted(data_dir.glob("*_pbe.json")):
        data = json.loads(path.read_text())
        if path.name == "dimers_pbe.json":
            out["dimers"] = data["curves"]
        elif path.name == "costs_pbe.json":
            out["costs"] = data["rows"]
        else:
            out["sets"][data["dataset"]] = data
    for path in sorted(data_dir.glob("*_check.json")):
        data = json.loads(path.read_text())
        out["checks"][data["dataset"]] = data
    # the study's order (hydrogen, lithium, carbon), not the files' alphabetical one
    rank = {name: i for i, name in enumerate(DATASETS)}
    for key in ("sets", "checks"):
        out[key] = dict(sorted(out[key].items(), key=lambda kv: rank.get(kv[0], len(rank))))
    return out


# ---------------------------------------------------------------- models


def _knows(model: Model, element: str) -> bool:
    known = model.atomic_numbers
    return known is None or atomic_numbers[element] in known


def evaluate_model(
    label: str,
    model: Model,
    *,
    names: Iterable[str] | None = None,
    count: int | None = None,
    max_order: int | None = None,
) -> dict:
    """A model's expansions of the study's clusters, its free atoms and dimer curves.

    Per data set whose element the model knows: per cluster ``energies_eV`` (E^(1)..E^(K)),
    ``total_energy_eV`` and ``residual_eV``; per element the atom energy and the dimer
    binding curve ``E(X2) - 2 E(X)`` at :data:`~ase_bodyorder.reference.universal.
    DIMER_DISTANCES_A`. ``names``: data sets (default all); ``count``: the first clusters
    of each (default all).
    """
    order = MAX_ORDER if max_order is None else max_order
    start = time.perf_counter()
    sets, atoms_eV, dimers = {}, {}, {}
    for name in dataset_names(names):
        element = DATASETS[name].element
        if not _knows(model, element):
            continue
        rows = []
        for atoms in load_clusters(name) if count is None else load_clusters(name, count):
            result = decompose(atoms, model, max_order=order)
            rows.append(
                {
                    "cluster": int(atoms.info["index"]),
                    "energies_eV": [float(e) for e in result.energies_eV],
                    "total_energy_eV": float(result.energy_eV),
                    "residual_eV": float(result.residual_eV),
                }
            )
        sets[name] = rows
    for element in dict.fromkeys(DATASETS[n].element for n in sets):
        atom = float(model.system(Atoms(element), forces=False).energy)
        atoms_eV[element] = atom
        distances = DIMER_DISTANCES_A[element]
        binding = [
            float(
                model.system(
                    Atoms(f"{element}2", positions=[[0, 0, 0], [0, 0, d]]), forces=False
                ).energy
            )
            - 2 * atom
            for d in distances
        ]
        dimers[element] = {"distances_A": list(distances), "binding_eV": binding}
    return {
        "model": label,
        "max_order": order,
        "sets": sets,
        "atom_eV": atoms_eV,
        "dimers": dimers,
        "wall_time_s": time.perf_counter() - start,
    }


def read_models(models_dir: str | Path) -> dict[str, dict]:
    """Every model result (``*.json``) of ``models_dir`` by label; a missing folder is an
    error."""
    if not Path(models_dir).is_dir():
        raise BodyOrderError(f"no model results: {models_dir} is not a folder")
    out = {}
    for path in sorted(Path(models_dir).glob("*.json")):
        data = json.loads(path.read_text())
        out[data["model"]] = data
    return out
