"""``ase-bodyorder reference``: hydrogen reference data (thin wrappers over
:mod:`ase_bodyorder.reference`): ``sample``, ``compute``, ``mbe``, ``export``,
``fragments`` (clusters) and ``periodic`` (periodic DFT of dense cells).

The parser is :mod:`.reference_args`; each handler here reads its arguments, calls one
function of :mod:`ase_bodyorder.reference` (``cluster_steps``, ``cell_steps``,
``finite_size``) and prints what it returns.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .reference_args import add_reference_parser, check_options

__all__ = ["add_parser", "check_options"]


def add_parser(subparsers) -> None:
    add_reference_parser(
        subparsers,
        {
            "sample": run_sample,
            "compute": run_compute,
            "mbe": run_mbe,
            "export": run_export,
            "fragments": run_fragments,
            "cell-fragments": run_cell_fragments,
            "frames": run_frames,
            "validation": run_validation,
            "finite-size": run_finite_size,
            "periodic": run_periodic,
        },
    )


def _executor(args) -> dict:
    return {
        "workers": args.workers,
        "scheduler": args.scheduler,
        "retry_failed": args.retry_failed,
    }


def _calculation(args, *, forces: bool = True):
    """The cluster calculation of ``--method``, ``--basis``, ``--spin-policy``."""
    from ..reference.electronic import Calculation

    return Calculation(
        method=args.method, basis=args.basis, spin_policy=args.spin_policy, forces=forces
    )


def _inputs(args, *, forces: bool = True, index: str = ":"):
    """The calculation, data set name and clusters (``index`` of the file; each with its
    ``info["index"]``, by default its index in the file)."""
    from ..io import read_structures
    from ..trajectory import frame_indices

    calc = _calculation(args, forces=forces)
    dataset = args.dataset or Path(args.clusters).stem
    clusters = read_structures(args.clusters, index)
    positions = frame_indices(args.clusters, index, len(clusters))
    for atoms, position in zip(clusters, positions, strict=True):
        atoms.info.setdefault("index", position)
    return calc, dataset, clusters


def run_sample(args) -> None:
    from ..reference.cluster_steps import write_sampled_clusters

    count = write_sampled_clusters(
        args.output,
        args.density,
        args.count,
        args.seed,
        n_atoms=args.n_atoms,
        rs_bohr=args.rs_bohr,
    )
    print(f"wrote {count} clusters to {args.output}")


def run_compute(args) -> None:
    from ..reference.cluster_steps import compute_clusters

    calc, dataset, clusters = _inputs(args, forces=not args.no_forces)
    summary = compute_clusters(clusters, dataset, calc, args.db, **_executor(args))
    print(summary.line(args.db))


def run_mbe(args) -> None:
    from ..reference.cluster_steps import expand_clusters

    calc, dataset, clusters = _inputs(args, index=args.index)
    summary, results = expand_clusters(
        clusters, dataset, calc, args.db, args.output, source=args.clusters, **_executor(args)
    )
    for result in results:
        terms = " ".join(f"{e:+.5f}" for e in result["energies_eV"])
        print(f"cluster {result['cluster']}: E^(n) / eV = {terms}")
    print(f"{summary.done} sub-clusters computed, {summary.failed} failed; wrote {args.output}")


def run_export(args) -> None:
    from ..reference.cluster_steps import export_clusters

    calc, dataset, clusters = _inputs(args)
    meta = export_clusters(
        clusters, dataset, calc, args.db, args.out_dir, split_seed=args.split_seed
    )
    _print_export(meta, "structures", args.db)


def _print_export(meta: dict, what: str, db: str) -> None:
    """The parts of an export, and a warning for structures left out and for empty parts."""
    for part, info in meta["files"].items():
        print(f"{part}: {info['count']} {what} in {info['file']}")
    if meta["missing"]:
        shown = ", ".join(str(i) for i in meta["missing"][:10])
        more = ", ..." if len(meta["missing"]) > 10 else ""
        print(
            f"warning: {len(meta['missing'])} {what} left out, not done in {db} with these "
            f"settings (failed, not computed, or another geometry): {shown}{more}",
            file=sys.stderr,
        )
    empty = [part for part, info in meta["files"].items() if info["count"] == 0]
    if empty:
        print(
            f"warning: empty {' and '.join(empty)} file(s): too few {what} for the split",
            file=sys.stderr,
        )


def _fragments_command(args) -> str:
    """The command that makes these fragments (executor options left out), for provenance."""
    words = ["ase-bodyorder", "reference", "fragments", args.clusters]
    words += ["--split", args.split, "--count", str(args.count), "--sizes", args.sizes]
    words += ["--method", args.method, "--basis", args.basis, "--spin-policy", args.spin_policy]
    if args.dataset:
        words += ["--dataset", args.dataset]
    words += ["--db", args.db, "-o", args.output]
    return shlex.join(words)


def run_fragments(args) -> None:
    from ..reference.cluster_steps import compute_fragments

    summary, meta, parents = compute_fragments(
        args.clusters,
        args.split,
        _calculation(args),
        args.db,
        args.output,
        count=args.count,
        sizes=args.sizes,
        dataset=args.dataset,
        command=_fragments_command(args),
        **_executor(args),
    )
    counts = ", ".join(f"{n} of size {size}" for size, n in meta["counts"].items())
    print(summary.line(args.db))
    print(
        f"wrote {meta['frames']} fragments of {parents} train clusters to {args.output} "
        f"({counts}; {meta['bytes'] / 1e6:.2f} MB)"
    )
    if meta["missing"]:
        print(
            f"warning: {len(meta['missing'])} fragments missing or failed, left out "
            f"(e.g. {meta['missing'][0]}); rerun with --retry-failed to compute them again",
            file=sys.stderr,
        )


def run_periodic(args) -> None:
    from ..reference.cell_steps import compute_periodic_cells
    from ..reference.periodic import PeriodicDFT

    settings = PeriodicDFT(
        ke_cutoff_hartree=args.ke_cutoff_hartree,
        kpoint_length_angstrom=args.kpoint_length,
        kpoint_grid=args.kpoint_grid,
        gamma_above_rs_bohr=args.gamma_above_rs,
    )
    summary, meta = compute_periodic_cells(
        settings,
        args.db,
        protocol=args.protocol,
        count=args.count,
        seed=args.seed,
        n_atoms=args.n_atoms,
        dataset=args.dataset,
        out_dir=args.out_dir,
        split_seed=args.split_seed,
        **_executor(args),
    )
    print(summary.line(args.db))
    if meta is not None:
        _print_export(meta, "cells", args.db)


def run_cell_fragments(args) -> None:
    from ..reference.cell_steps import compute_cell_fragments

    command = shlex.join(
        ["ase-bodyorder", "reference", "cell-fragments", args.cells, "--sizes", args.sizes]
        + ["--per-cell", str(args.per_cell), "--radius", str(args.radius)]
        + ["--seed", str(args.seed), "--db", args.db, "-o", args.output]
    )
    summary, meta = compute_cell_fragments(
        args.cells,
        args.db,
        args.output,
        dataset=args.dataset,
        sizes=args.sizes,
        per_cell=args.per_cell,
        radius=args.radius,
        seed=args.seed,
        command=command,
        **_executor(args),
    )
    print(summary.line(args.db))
    counts = ", ".join(f"{n} of size {size}" for size, n in meta["counts"].items())
    print(f"wrote {args.output}: {counts}; {len(meta['missing'])} missing")


def run_frames(args) -> None:
    from ..reference.cell_steps import expand_frames

    command = ""  # of the sub-cluster totals, in their provenance
    if args.totals is not None:
        command = shlex.join(
            ["ase-bodyorder", "reference", "frames", args.trajectory, "--index", args.index]
            + ["--order", str(args.order), "--r-mbe", f"{args.r_mbe:g}"]
            + ([] if args.sample_atoms is None else ["--sample-atoms", str(args.sample_atoms)])
            + ["--seed", str(args.seed), "--db", args.db, "--totals", args.totals]
        )
    run = expand_frames(
        args.trajectory,
        args.db,
        args.output,
        r_mbe=args.r_mbe,
        index=args.index,
        order=args.order,
        sample_atoms=args.sample_atoms,
        seed=args.seed,
        model=args.model,
        totals=args.totals,
        command=command,
        **_executor(args),
    )
    print(f"{run.jobs} distinct sub-clusters: {run.summary.line(args.db, elsewhere=False)}")
    if args.totals is not None:
        print(f"wrote {args.totals} ({run.totals} sub-cluster totals)")
    print(f"wrote {args.output} ({run.frames} frames)")


def run_finite_size(args) -> None:
    from ..reference.finite_size import finite_size_report

    words = ["ase-bodyorder", "reference", "finite-size", "--out-dir", args.out_dir]
    policy = {}
    if args.hcells_policy:  # the MD model's data set: its cells and k-point policy
        from ..data.reference.regenerate import HCELLS, HCELLS_DFT

        words += ["--hcells-policy", *(f"{rs:g}" for rs in args.hcells_policy)]
        policy = {"policy": HCELLS_DFT, "sample": HCELLS, "rs_bohr": args.hcells_policy}
    else:
        words += ["--ke-cutoff-hartree", f"{args.ke_cutoff_hartree:g}"]
    path = finite_size_report(
        args.out_dir,
        shlex.join(words),
        ke_cutoff_hartree=args.ke_cutoff_hartree,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        **policy,
    )
    print(f"wrote {path}")


def run_validation(args) -> None:
    from ..monitor.validation import write_validation_report
    from ..reference.cell_steps import read_frame_expansions

    cases = read_frame_expansions(args.cases)
    command = shlex.join(
        ["ase-bodyorder", "reference", "validation", *args.cases, "--out-dir", args.out_dir]
    )
    print(f"wrote {write_validation_report(cases, args.out_dir, command)}")
