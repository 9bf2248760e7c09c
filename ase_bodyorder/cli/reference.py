"""``ase-bodyorder reference``: hydrogen-cluster reference data (thin wrappers over
:mod:`ase_bodyorder.reference`): ``sample``, ``compute``, ``mbe``, ``export``."""

from __future__ import annotations

import json
from pathlib import Path

from ..expansion import BodyOrderError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "reference", help="hydrogen-cluster reference data (pyscf, block2)"
    )
    steps = parser.add_subparsers(dest="step", required=True)
    sample = steps.add_parser("sample", help="sample hydrogen clusters to an extxyz file")
    sample.add_argument("--density", choices=["high", "low"], required=True)
    sample.add_argument("--n-atoms", type=int, default=8)
    sample.add_argument("--count", type=int, required=True)
    sample.add_argument("--seed", type=int, required=True)
    sample.add_argument("--rs-bohr", type=float, default=None, help="Wigner-Seitz radius, bohr")
    sample.add_argument("-o", "--output", required=True)
    sample.set_defaults(handler=run_sample)
    compute = steps.add_parser("compute", help="energies and forces of every cluster")
    compute.add_argument("clusters", help="extxyz from `reference sample`")
    _add_calculation_options(compute)
    compute.add_argument("--no-forces", action="store_true")
    _add_executor_options(compute)
    compute.set_defaults(handler=run_compute)
    mbe = steps.add_parser("mbe", help="ab initio many-body expansion of clusters")
    mbe.add_argument("clusters")
    _add_calculation_options(mbe)
    mbe.add_argument("--index", default=":", help="clusters to expand (ASE index syntax)")
    mbe.add_argument("-o", "--output", required=True, help="JSON file of the per-order terms")
    _add_executor_options(mbe)
    mbe.set_defaults(handler=run_mbe)
    export = steps.add_parser("export", help="extxyz train/validation/test split for training")
    export.add_argument("clusters")
    _add_calculation_options(export)
    export.add_argument("--out-dir", required=True)
    export.add_argument("--split-seed", type=int, default=0)
    export.set_defaults(handler=run_export)


def _add_calculation_options(parser) -> None:
    parser.add_argument("--method", default="fci", help="hf, ccsd, ccsd(t), fci, dmrg")
    parser.add_argument("--basis", default="sto-6g", help="any pyscf basis name")
    parser.add_argument("--spin-policy", default="lowest", choices=["lowest", "ground"])
    parser.add_argument("--dataset", default=None, help="data set name (default: file stem)")
    parser.add_argument("--db", required=True, help="ASE database (SQLite) of the jobs")


def _add_executor_options(parser) -> None:
    parser.add_argument("--workers", type=int, default=1, help="local processes")
    parser.add_argument("--scheduler", default=None, help="dask.distributed scheduler address")
    parser.add_argument("--retry-failed", action="store_true", help="run failed jobs again")


def run_sample(args) -> None:
    import ase.io

    from ..reference import HighDensity, LowDensity, sample_clusters

    kind = HighDensity if args.density == "high" else LowDensity
    options = {"n_atoms": args.n_atoms}
    if args.rs_bohr is not None:
        options["rs_bohr"] = args.rs_bohr
    clusters = sample_clusters(kind(**options), args.count, args.seed)
    ase.io.write(args.output, clusters, format="extxyz")
    print(f"wrote {len(clusters)} clusters to {args.output}")


def _inputs(args, *, forces: bool = True, index: str = ":"):
    """The calculation, data set name, clusters (``index`` of the file) and store."""
    import ase.io

    from ..reference.electronic import Calculation
    from ..reference.store import ReferenceStore

    calc = Calculation(
        method=args.method, basis=args.basis, spin_policy=args.spin_policy, forces=forces
    )
    dataset = args.dataset or Path(args.clusters).stem
    try:
        clusters = ase.io.read(args.clusters, index)
    except (ValueError, IndexError) as error:
        raise BodyOrderError(f"cannot read clusters {index} of {args.clusters}: {error}") from None
    if not isinstance(clusters, list):  # a single index such as --index 0
        clusters = [clusters]
    return calc, dataset, clusters, ReferenceStore(args.db)


def _executor(args) -> dict:
    return {
        "workers": args.workers,
        "scheduler": args.scheduler,
        "retry_failed": args.retry_failed,
    }


def run_compute(args) -> None:
    from ..reference.executor import run_jobs
    from ..reference.pipeline import cluster_jobs

    calc, dataset, clusters, store = _inputs(args, forces=not args.no_forces)
    summary = run_jobs(
        cluster_jobs(clusters, dataset, calc), store, label=dataset, **_executor(args)
    )
    print(
        f"{summary.done} done, {summary.failed} failed, {summary.skipped} already in "
        f"{args.db}, {summary.elsewhere} by another run, {summary.wall_time_s:.1f} s"
    )


def run_mbe(args) -> None:
    from ..reference.executor import run_jobs
    from ..reference.pipeline import mbe_jobs, reference_mbe

    calc, dataset, clusters, store = _inputs(args, index=args.index)
    summary = run_jobs(mbe_jobs(clusters, dataset, calc), store, label=dataset, **_executor(args))
    results = [reference_mbe(store, atoms, dataset, calc) for atoms in clusters]
    Path(args.output).write_text(
        json.dumps({"dataset": dataset, "calculation": calc.to_dict(), "clusters": results}) + "\n"
    )
    for result in results:
        terms = " ".join(f"{e:+.5f}" for e in result["energies_eV"])
        print(f"cluster {result['cluster']}: E^(n) / eV = {terms}")
    print(f"{summary.done} sub-clusters computed, {summary.failed} failed; wrote {args.output}")


def run_export(args) -> None:
    from ..reference.pipeline import export_dataset

    calc, dataset, clusters, store = _inputs(args)
    meta = export_dataset(store, clusters, dataset, calc, args.out_dir, split_seed=args.split_seed)
    for part, info in meta["files"].items():
        print(f"{part}: {info['count']} structures in {info['file']}")
