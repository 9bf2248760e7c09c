"""Regenerate the shipped reference data sets (resumable; rerun to continue).

    python -m ase_bodyorder.data.reference.regenerate [--workers 2] [--work DIR] [--stage S]

Stages: ``sample`` (clusters), ``fci`` (FCI/STO-6G energies and forces of every
cluster), ``export`` (train/validation/test extxyz), ``mbe`` (ab initio MBE of the first
50 test clusters of each density), ``dmrg`` (DMRG against FCI on 10 H8 clusters, and DMRG
energies and forces of 24 H12 clusters), ``bulk`` (periodic 16-atom cells of dense
hydrogen, Gamma-point LDA with smearing: the training set of the MD model, see
:mod:`ase_bodyorder.reference.periodic`). Working databases go to ``--work`` (not
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
    DenseBulk,
    HighDensity,
    LowDensity,
    sample_bulk,
    sample_clusters,
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
        "--stage", action="append", choices=["sample", "fci", "export", "mbe", "dmrg", "bulk"]
    )
    args = parser.parse_args(argv)
    stages = args.stage or ["sample", "fci", "export", "mbe", "dmrg", "bulk"]
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


if __name__ == "__main__":
    main()
