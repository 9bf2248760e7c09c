"""Regenerate the shipped reference data sets (resumable; rerun to continue).

    python -m ase_bodyorder.data.reference.regenerate [--workers 2] [--work DIR] [--stage S]

Stages: ``sample`` (clusters), ``fci`` (FCI/STO-6G energies and forces of every
cluster), ``export`` (train/validation/test extxyz), ``mbe`` (ab initio MBE of the first
50 test clusters of each density), ``dmrg`` (DMRG against FCI on 10 H8 clusters, and DMRG
energies and forces of 24 H12 clusters), ``bulk`` (periodic 16-atom cells of dense
hydrogen, Gamma-point LDA with smearing: the training set of the first MD model, see
:mod:`ase_bodyorder.reference.periodic`), ``hcells`` (200 periodic 16-atom cells across
the molecular-to-atomic crossover, rs 1.4-3.0 bohr, LDA on k-point meshes, with isolated
fragments cut from them at the same level of theory: the training set of the MD model,
``hcells_{train,validation,test}.xyz``; see ``docs/science.md``, section 8;
``hcells-export`` exports what the stores hold without computing). Working
databases go to ``--work`` (not
shipped); the outputs and ``provenance.json`` are written next to this file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase.io
import numpy as np

from ase_bodyorder.reference.electronic import Calculation, DMRGSettings, package_versions
from ase_bodyorder.reference.executor import run_jobs
from ase_bodyorder.reference.isolated import (
    IsolatedDFT,
    cell_fragment_jobs,
    export_cell_fragments,
    merge_cells_and_fragments,
)
from ase_bodyorder.reference.periodic import (
    PeriodicDFT,
    export_bulk,
    import_results,
    isolated_atom_energy,
    periodic_records,
    run_periodic,
)
from ase_bodyorder.reference.pipeline import (
    cluster_jobs,
    cluster_record,
    export_dataset,
    mbe_jobs,
    reference_mbe,
    split_indices,
)
from ase_bodyorder.reference.store import ReferenceStore
from ase_bodyorder.structures import (
    CrossoverBulk,
    DenseBulk,
    HighDensity,
    LowDensity,
    cell_fragments,
    sample_bulk,
    sample_clusters,
    sample_crossover_bulk,
)

HERE = Path(__file__).parent
N_CLUSTERS = 1000
N_MBE = 50
SPLIT_SEED = 7
DATASETS = {
    "h8-high": (HighDensity(n_atoms=8, rs_bohr=1.75, min_distance=0.6), 1001),
    "h8-low": (LowDensity(n_atoms=8, rs_bohr=3.5), 1002),
}
TRANSFER = {
    "h12-low": (LowDensity(n_atoms=12, rs_bohr=3.5), 2002),
    "h12-high": (HighDensity(n_atoms=12, rs_bohr=1.75, min_distance=0.6), 2001),
}
N_TRANSFER = 12
BULK = {"hbulk-high": (DenseBulk(), 3001)}
N_BULK = 300
PERIODIC_DFT = PeriodicDFT()
#: the MD model's cells: 200 crossover cells, LDA at 90 Ha (cells and isolated fragments
#: agree to 0.3 meV there) on k-meshes of 9.5 Angstrom (forces within 0.2 eV/A of denser
#: meshes), the Gamma point for molecular cells (rs > 2.4 bohr)
HCELLS = (CrossoverBulk(), 200, 4001)
HCELLS_DFT = PeriodicDFT(
    ke_cutoff_hartree=90.0, kpoint_length_angstrom=9.5, gamma_above_rs_bohr=2.4
)
#: isolated fragments cut from every cell (sizes, per cell, radius in Angstrom, seed):
#: near sub-clusters of 1-4 atoms, far pairs out to the models' 4.5 Angstrom cutoff, and
#: compact trimers and tetramers (neighbours within 1.6 Angstrom, from the dense cells)
HCELLS_FRAGMENTS = (
    ((1, 2, 3, 4), 10, 2.5, 4002),
    ((2,), 2, 4.5, 4003),
    ((3, 4), 3, 1.6, 4004),
)
FCI = Calculation(method="fci", basis="sto-6g", spin_policy="lowest", forces=True)
DMRG = Calculation(method="dmrg", basis="sto-6g", spin_policy="lowest", forces=True)
#: H12 at high density needs bond dimensions beyond 500 for a discarded weight of 1e-7
#: (2e-5 at M = 500, 5e-5 at M = 400); the transfer set accepts 1e-4 and records it
DMRG_TRANSFER = Calculation(
    method="dmrg",
    basis="sto-6g",
    spin_policy="lowest",
    forces=True,
    dmrg=DMRGSettings(bond_dims=(100, 250, 500), max_sweeps=24, discarded_weight_tol=1e-4),
)


def _clusters(name, protocol, seed, count):
    path = HERE / f"{name}_clusters.xyz"
    if path.exists():
        return ase.io.read(path, ":")
    clusters = sample_clusters(protocol, count, seed)
    ase.io.write(path, clusters, format="extxyz")
    return clusters


def _log(timings, stage, summary):
    timings[stage] = timings.get(stage, 0.0) + summary.wall_time_s
    print(
        f"{stage}: {summary.done} done, {summary.failed} failed, {summary.skipped} skipped, "
        f"{summary.wall_time_s:.0f} s",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", default="reference-work")
    parser.add_argument("--retry-failed", action="store_true", help="run failed jobs again")
    parser.add_argument(
        "--stage",
        action="append",
        choices=["sample", "fci", "export", "mbe", "dmrg", "bulk", "hcells", "hcells-export"],
    )
    args = parser.parse_args(argv)
    stages = args.stage or ["sample", "fci", "export", "mbe", "dmrg", "bulk", "hcells"]
    work = Path(args.work)
    provenance_path = HERE / "provenance.json"
    provenance = json.loads(provenance_path.read_text()) if provenance_path.exists() else {}
    timings = provenance.get("wall_time_s", {})
    clusters = {name: _clusters(name, p, seed, N_CLUSTERS) for name, (p, seed) in DATASETS.items()}
    transfer = {name: _clusters(name, p, seed, N_TRANSFER) for name, (p, seed) in TRANSFER.items()}
    stores = {name: ReferenceStore(work / f"{name}.db") for name in [*DATASETS, *TRANSFER]}
    tests = {name: split_indices(N_CLUSTERS, SPLIT_SEED)["test"] for name in DATASETS}
    if args.retry_failed:
        for name, store in stores.items():
            print(f"{name}: {store.delete_failed()} failed jobs will run again", flush=True)

    if "fci" in stages:
        for name, frames in clusters.items():
            _log(
                timings,
                f"fci {name}",
                run_jobs(
                    cluster_jobs(frames, name, FCI),
                    stores[name],
                    workers=args.workers,
                    label=f"FCI {name}",
                ),
            )
    if "export" in stages:
        for name, frames in clusters.items():
            export_dataset(stores[name], frames, name, FCI, HERE, split_seed=SPLIT_SEED)
    if "mbe" in stages:
        for name, frames in clusters.items():
            chosen = [frames[i] for i in tests[name][:N_MBE]]
            mbe_store = ReferenceStore(work / f"{name}-mbe.db")
            _log(
                timings,
                f"mbe {name}",
                run_jobs(
                    mbe_jobs(chosen, name, FCI),
                    mbe_store,
                    workers=args.workers,
                    label=f"MBE {name}",
                ),
            )
            jobs = mbe_jobs(chosen, name, FCI)
            records = mbe_store.matching_records(jobs)
            results = [reference_mbe(mbe_store, a, name, FCI, records) for a in chosen]
            out = HERE / f"{name}_mbe_fci_sto6g.json"
            out.write_text(
                json.dumps({"dataset": name, "calculation": FCI.to_dict(), "clusters": results})
                + "\n"
            )
    if "dmrg" in stages:
        rows = []
        for name, frames in clusters.items():
            chosen = [frames[i] for i in tests[name][:5]]
            _log(
                timings,
                f"dmrg-validation {name}",
                run_jobs(
                    cluster_jobs(chosen, name, DMRG),
                    stores[name],
                    workers=args.workers,
                    label=f"DMRG {name}",
                ),
            )
            for atoms in chosen:
                i = int(atoms.info["index"])
                fci = cluster_record(stores[name], atoms, name, FCI)
                dmrg = cluster_record(stores[name], atoms, name, DMRG)
                if fci is None or dmrg is None:
                    continue
                rows.append(
                    {
                        "dataset": name,
                        "cluster": i,
                        "fci_energy_Ha": fci["energy_Ha"],
                        "dmrg_energy_Ha": dmrg["energy_Ha"],
                        "energy_difference_Ha": dmrg["energy_Ha"] - fci["energy_Ha"],
                        "max_force_difference_eV_per_A": float(
                            np.abs(
                                np.subtract(dmrg["forces_eV_per_A"], fci["forces_eV_per_A"])
                            ).max()
                        ),
                        "dmrg_sweeps": dmrg["iterations"],
                        "dmrg_discarded_weight": dmrg["discarded_weight"],
                        "fci_wall_time_s": fci["wall_time_s"],
                        "dmrg_wall_time_s": dmrg["wall_time_s"],
                    }
                )
        (HERE / "dmrg_validation_h8.json").write_text(json.dumps(rows, indent=1) + "\n")
        for name, frames in transfer.items():
            _log(
                timings,
                f"dmrg {name}",
                run_jobs(
                    cluster_jobs(frames, name, DMRG_TRANSFER),
                    stores[name],
                    workers=args.workers,
                    label=f"DMRG {name}",
                ),
            )
            jobs = cluster_jobs(frames, name, DMRG_TRANSFER)
            records = stores[name].matching_records(jobs)
            out = []
            for atoms, job in zip(frames, jobs, strict=True):
                record = records.get(job.content_key)
                if record is None:
                    continue
                atoms = atoms.copy()
                atoms.info = {
                    "index": int(atoms.info["index"]),
                    "dataset": name,
                    "energy": record["energy_eV"],
                    "energy_Ha": record["energy_Ha"],
                    "two_s": record["two_s"],
                    "dmrg_sweeps": record["iterations"],
                    "dmrg_discarded_weight": record["discarded_weight"],
                }
                atoms.arrays["forces"] = np.asarray(record["forces_eV_per_A"])
                out.append(atoms)
            ase.io.write(HERE / f"{name}_dmrg_sto6g.xyz", out, format="extxyz")

    if "bulk" in stages:
        for name, (protocol, seed) in BULK.items():
            cells = sample_bulk(protocol, N_BULK, seed)
            store = ReferenceStore(work / f"{name}.db")
            legacy = work / f"{name}.jsonl"  # the results of the runs before the store
            if legacy.exists():
                import_results(legacy, cells, store, name, PERIODIC_DFT)
            summary = run_periodic(
                cells,
                store,
                PERIODIC_DFT,
                dataset=name,
                workers=args.workers,
                retry_failed=args.retry_failed,
            )
            _log(timings, f"periodic-dft {name}", summary)
            records = periodic_records(store, cells, name, PERIODIC_DFT)
            export_bulk(cells, records, name, HERE, PERIODIC_DFT, split_seed=SPLIT_SEED)
            provenance.setdefault("bulk_sets", {})[name] = {
                "protocol": type(protocol).__name__,
                "parameters": vars(protocol) | {},
                "seed": seed,
                "count": N_BULK,
                "calculation": {"method": "periodic-dft", **PERIODIC_DFT.to_dict()},
                "isolated_atom_energy_eV": isolated_atom_energy(PERIODIC_DFT),
                "cell_wall_time_s": {
                    "mean": float(
                        np.mean([r["wall_time_s"] for r in records.values() if "wall_time_s" in r])
                    ),
                },
            }

    if "hcells" in stages or "hcells-export" in stages:
        _hcells(work / "hcells", args, timings, provenance, compute="hcells" in stages)

    provenance.update(
        {
            "generator": "python -m ase_bodyorder.data.reference.regenerate",
            "datasets": {
                name: {
                    "protocol": type(p).__name__,
                    "parameters": vars(p) | {},
                    "seed": seed,
                    "count": N_CLUSTERS,
                }
                for name, (p, seed) in {**DATASETS}.items()
            },
            "transfer_sets": {
                name: {"protocol": type(p).__name__, "seed": seed, "count": N_TRANSFER}
                for name, (p, seed) in TRANSFER.items()
            },
            "split_seed": SPLIT_SEED,
            "mbe_clusters": f"first {N_MBE} test clusters of each density",
            "calculations": {
                "fci": FCI.to_dict(),
                "dmrg_validation": DMRG.to_dict(),
                "dmrg_transfer": DMRG_TRANSFER.to_dict(),
            },
            "versions": package_versions(),
            "wall_time_s": timings,
            "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    provenance_path.write_text(json.dumps(provenance, indent=1, default=str) + "\n")


def _hcells(work: Path, args, timings: dict, provenance: dict, compute: bool = True) -> None:
    """The MD model's set: crossover cells, their fragments, one split of both (with
    ``compute`` False: of the cells and fragments already in the stores)."""
    protocol, count, seed = HCELLS
    cells = sample_crossover_bulk(protocol, count, seed)
    store = ReferenceStore(work / "cells.db")
    # the cells are the costly part (minutes each): their records are kept in the
    # repository, so that a fresh machine resumes where the last run stopped
    records_file = HERE / "hcells_cells.jsonl"
    import_results(records_file, cells, store, "hcells", HCELLS_DFT)
    if compute:
        summary = run_periodic(
            cells,
            store,
            HCELLS_DFT,
            dataset="hcells",
            workers=args.workers,
            retry_failed=args.retry_failed,
        )
        _log(timings, "periodic-dft hcells", summary)
    records = periodic_records(store, cells, "hcells", HCELLS_DFT)
    partial = records_file.with_name(records_file.name + ".partial")
    partial.write_text(
        "".join(json.dumps({"index": i, **records[i]}) + "\n" for i in sorted(records))
    )
    partial.replace(records_file)
    export_bulk(cells, records, "hcells", work / "split", HCELLS_DFT, split_seed=SPLIT_SEED)
    isolated = IsolatedDFT()
    fragment_store = ReferenceStore(work / "fragments.db")
    files, counts = [], {}
    for sizes, per_cell, radius, fragment_seed in HCELLS_FRAGMENTS:
        fragments = cell_fragments(cells, sizes, per_cell, radius, fragment_seed)
        if compute:
            jobs = cell_fragment_jobs(fragments, "hcells", isolated)
            summary = run_jobs(jobs, fragment_store, workers=args.workers, label="hcells fragments")
            _log(timings, "isolated-dft hcells", summary)
        path = work / f"fragments-{fragment_seed}.xyz"
        meta = export_cell_fragments(fragment_store, fragments, "hcells", isolated, path)
        counts[str(fragment_seed)] = meta["counts"] | {"missing": len(meta["missing"])}
        files.append(path)
    merged = merge_cells_and_fragments(work / "split", "hcells", files, HERE, "hcells")
    provenance.setdefault("bulk_sets", {})["hcells"] = {
        "protocol": type(protocol).__name__,
        "parameters": vars(protocol) | {},
        "seed": seed,
        "count": count,
        "cells_done": len(records),
        "calculation": {"method": "periodic-dft", **HCELLS_DFT.to_dict()},
        "fragments": {
            "calculation": isolated.to_dict(),
            "sets": [
                {"sizes": list(sizes), "per_cell": n, "radius_angstrom": r, "seed": s}
                for sizes, n, r, s in HCELLS_FRAGMENTS
            ],
            "counts_by_seed": counts,
        },
        "files": merged["files"],
    }


if __name__ == "__main__":
    main()
