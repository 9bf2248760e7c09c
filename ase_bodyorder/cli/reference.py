"""``ase-bodyorder reference``: hydrogen reference data (thin wrappers over
:mod:`ase_bodyorder.reference`): ``sample``, ``compute``, ``mbe``, ``export``,
``fragments`` (clusters) and ``periodic`` (periodic DFT of dense cells)."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
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
    fragments = steps.add_parser(
        "fragments",
        help="energies and forces of the sub-clusters of train clusters (resumable)",
    )
    fragments.add_argument("clusters", help="extxyz of the data set's clusters")
    _add_calculation_options(fragments)
    for action in fragments._actions:
        if action.dest == "dataset":
            action.help = "data set name (default: the split's)"
    fragments.add_argument(
        "--split", required=True, help="the data set's split JSON (its train indices)"
    )
    fragments.add_argument(
        "--count", type=int, required=True, help="the first N train clusters of the split"
    )
    fragments.add_argument(
        "--sizes", default="1..7", help="fragment sizes, e.g. 1..7 or 2,3 (default 1..7)"
    )
    fragments.add_argument(
        "-o", "--output", required=True, help="extxyz of the fragments (gzipped if .gz)"
    )
    _add_executor_options(fragments)
    fragments.set_defaults(handler=run_fragments)
    cell_fragments = steps.add_parser(
        "cell-fragments",
        help="isolated sub-clusters cut from periodic cells, at the cells' level of theory "
        "(resumable)",
    )
    cell_fragments.add_argument(
        "cells", help="extxyz of periodic cells (each fragment records its parent's index)"
    )
    cell_fragments.add_argument("--db", required=True, help="ASE database (SQLite) of the jobs")
    cell_fragments.add_argument("--dataset", default=None, help="default: the file stem")
    cell_fragments.add_argument("--sizes", default="1..4", help="fragment sizes (default 1..4)")
    cell_fragments.add_argument(
        "--per-cell", type=int, default=20, help="fragments of size 2+ per cell (default 20)"
    )
    cell_fragments.add_argument(
        "--radius", type=float, default=2.5, help="neighbours of the centre within, Angstrom"
    )
    cell_fragments.add_argument("--seed", type=int, default=0)
    cell_fragments.add_argument("-o", "--output", required=True, help="extxyz of the fragments")
    _add_executor_options(cell_fragments)
    cell_fragments.set_defaults(handler=run_cell_fragments)
    frames = steps.add_parser(
        "frames",
        help="ab initio atom-resolved expansion of MD frames (isolated LDA sub-clusters; "
        "resumable), optionally beside a model's",
    )
    frames.add_argument("trajectory", help="extxyz of the frames (Angstrom)")
    frames.add_argument("--index", default=":", help="frames to expand (ASE index syntax)")
    frames.add_argument("--order", type=int, default=3, help="truncation order K (default 3)")
    frames.add_argument("--r-mbe", type=float, required=True, help="expansion radius, Angstrom")
    frames.add_argument("--sample-atoms", type=int, default=None, help="atoms per frame m")
    frames.add_argument("--seed", type=int, default=0, help="seed of the atom samples")
    frames.add_argument(
        "--model", default=None, help="also expand this model: NAME or LABEL=PATH (a file)"
    )
    frames.add_argument("--db", required=True, help="ASE database (SQLite) of the jobs")
    frames.add_argument("-o", "--output", required=True, help="JSON of E^(n)/N per frame")
    frames.add_argument(
        "--totals",
        default=None,
        help="also write the sub-cluster totals (labels and energies, eV) to this .json.gz",
    )
    _add_executor_options(frames)
    frames.set_defaults(handler=run_frames)
    validation = steps.add_parser(
        "validation",
        help="report: a model's frame expansions against the ab initio ones "
        "(JSON files of `reference frames --model`)",
    )
    validation.add_argument("cases", nargs="+", help="LABEL=FILE.json, one per case")
    validation.add_argument("--out-dir", default="reports/monitor_validation")
    validation.set_defaults(handler=run_validation)
    finite = steps.add_parser(
        "finite-size",
        help="k-point convergence of the periodic reference's forces and energies",
    )
    finite.add_argument("--out-dir", default="reports/reference_finite_size")
    finite.add_argument("--ke-cutoff-hartree", type=float, default=60.0)
    finite.add_argument(
        "--hcells-policy",
        type=float,
        nargs="+",
        metavar="RS",
        default=None,
        help="instead: the MD model's cells (hcells) nearest these rs (bohr) on the mesh "
        "of the hcells policy and one k-point denser (its settings; --ke-cutoff-hartree "
        "ignored)",
    )
    finite.set_defaults(handler=run_finite_size)
    periodic = steps.add_parser(
        "periodic",
        help="periodic DFT (LDA, Gamma point or a k-point mesh) of sampled hydrogen cells "
        "(resumable)",
    )
    periodic.add_argument("--count", type=int, default=300, help="cells (default 300)")
    periodic.add_argument("--seed", type=int, default=3001, help="sampling seed (default 3001)")
    periodic.add_argument("--n-atoms", type=int, default=16, help="atoms per cell, 2 m^3")
    periodic.add_argument("--dataset", default="hbulk-high", help="data set name")
    periodic.add_argument("--db", required=True, help="ASE database (SQLite) of the jobs")
    periodic.add_argument(
        "--ke-cutoff-hartree", type=float, default=60.0, help="plane-wave cutoff, Hartree"
    )
    periodic.add_argument(
        "--protocol",
        choices=["dense", "crossover"],
        default="dense",
        help="cells: dense (rs 1.45-1.85 bohr, bcc and random; the default) or crossover "
        "(rs 1.4-3.0 bohr, molecular fluid to atomic phase)",
    )
    periodic.add_argument(
        "--kpoint-length",
        type=float,
        default=0.0,
        help="k-point mesh with n_i |a_i| >= this length, Angstrom (default 0: Gamma point)",
    )
    periodic.add_argument(
        "--gamma-above-rs",
        type=float,
        default=None,
        help="cells more dilute than this rs (bohr) at the Gamma point only (molecular)",
    )
    periodic.add_argument(
        "--kpoint-grid",
        choices=["gamma", "shifted"],
        default="gamma",
        help="mesh through Gamma or Monkhorst-Pack shifted off it (default gamma)",
    )
    periodic.add_argument("--out-dir", default=None, help="also export the train/val/test split")
    periodic.add_argument("--split-seed", type=int, default=7)
    _add_executor_options(periodic)
    periodic.set_defaults(handler=run_periodic)
    for step in steps.choices.values():  # every step's numbers checked before it runs
        step.set_defaults(handler=_checked(step.get_default("handler")))


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


#: what the numeric options of the ``reference`` steps must be, by destination: a
#: count, seed or size that no calculation can use is refused before anything runs
_OPTION_RULES: dict[str, tuple[str, Callable[[float], bool]]] = {
    **dict.fromkeys(
        ("count", "n_atoms", "workers", "order", "sample_atoms"),
        ("a positive integer", lambda v: v >= 1),
    ),
    **dict.fromkeys(
        ("seed", "split_seed", "per_cell"), ("a non-negative integer", lambda v: v >= 0)
    ),
    **dict.fromkeys(
        ("rs_bohr", "ke_cutoff_hartree", "radius", "r_mbe", "gamma_above_rs", "hcells_policy"),
        ("a positive number", lambda v: math.isfinite(v) and v > 0),
    ),
    "kpoint_length": ("a non-negative number", lambda v: math.isfinite(v) and v >= 0),
}


def check_options(args) -> None:
    """One line naming the first numeric option of ``args`` outside its range
    (:data:`_OPTION_RULES`); unset options (None) pass."""
    for dest, (what, valid) in _OPTION_RULES.items():
        value = getattr(args, dest, None)
        for item in value if isinstance(value, list) else [value]:
            if item is not None and not valid(item):
                flag = "--" + dest.replace("_", "-")
                raise BodyOrderError(f"{flag} must be {what}, got {item:g}")


def _checked(handler: Callable) -> Callable:
    """``handler`` run after :func:`check_options`."""

    @functools.wraps(handler)
    def run(args) -> None:
        check_options(args)
        handler(args)

    return run


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
    """The calculation, data set name, clusters (``index`` of the file; each with its
    ``info["index"]``, by default its index in the file) and store."""
    from ..reference.electronic import Calculation
    from ..reference.store import ReferenceStore
    from ..trajectory import frame_indices

    calc = Calculation(
        method=args.method, basis=args.basis, spin_policy=args.spin_policy, forces=forces
    )
    dataset = args.dataset or Path(args.clusters).stem
    clusters = _read_frames(args.clusters, index)
    positions = frame_indices(args.clusters, index, len(clusters))
    for atoms, position in zip(clusters, positions, strict=True):
        atoms.info.setdefault("index", position)
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
    others = sorted({s for atoms in clusters for s in atoms.symbols} - {"H"})
    if others:  # the 1-body term is the H atom's
        raise BodyOrderError(
            f"{args.clusters}: the ab initio MBE expands hydrogen clusters, these hold "
            f"{', '.join(others)}"
        )
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


def _fragments_command(args, sizes: list[int]) -> str:
    """The command that makes these fragments (executor options left out), for provenance."""
    import shlex

    words = ["ase-bodyorder", "reference", "fragments", args.clusters]
    words += ["--split", args.split, "--count", str(args.count), "--sizes", args.sizes]
    words += ["--method", args.method, "--basis", args.basis, "--spin-policy", args.spin_policy]
    if args.dataset:
        words += ["--dataset", args.dataset]
    words += ["--db", args.db, "-o", args.output]
    return shlex.join(words)


def run_fragments(args) -> None:
    import ase.io

    from ..reference.electronic import Calculation
    from ..reference.executor import run_jobs
    from ..reference.fragments import (
        check_split_clusters,
        export_fragments,
        fragment_jobs,
        parse_sizes,
        read_split,
        train_clusters,
    )
    from ..reference.store import ReferenceStore

    sizes = parse_sizes(args.sizes)
    split = read_split(args.split)
    dataset = args.dataset or split.get("dataset") or Path(args.clusters).stem
    if split.get("dataset") not in (None, dataset):
        raise BodyOrderError(
            f"split {args.split} is of data set {split['dataset']!r}, not {dataset!r}"
        )
    calc = Calculation(
        method=args.method, basis=args.basis, spin_policy=args.spin_policy, forces=True
    )
    try:
        clusters = ase.io.read(args.clusters, ":")
    except (ValueError, IndexError) as error:
        raise BodyOrderError(f"cannot read clusters of {args.clusters}: {error}") from None
    parents = train_clusters(clusters, split, count=args.count)
    check_split_clusters(parents, split, args.split)
    store = ReferenceStore(args.db)
    jobs = fragment_jobs(parents, dataset, calc, sizes)
    summary = run_jobs(jobs, store, label=f"fragments {dataset}", **_executor(args))
    meta = export_fragments(
        store,
        parents,
        dataset,
        calc,
        args.output,
        sizes=sizes,
        split=split,
        split_file=args.split,
        command=_fragments_command(args, sizes),
    )
    counts = ", ".join(f"{n} of size {size}" for size, n in meta["counts"].items())
    print(
        f"{summary.done} done, {summary.failed} failed, {summary.skipped} already in "
        f"{args.db}, {summary.elsewhere} by another run, {summary.wall_time_s:.1f} s"
    )
    print(
        f"wrote {meta['frames']} fragments of {len(parents)} train clusters to {args.output} "
        f"({counts}; {meta['bytes'] / 1e6:.2f} MB)"
    )
    if meta["missing"]:
        print(
            f"warning: {len(meta['missing'])} fragments missing or failed, left out "
            f"(e.g. {meta['missing'][0]}); rerun with --retry-failed to compute them again",
            file=sys.stderr,
        )


def run_periodic(args) -> None:
    from ..reference import periodic
    from ..reference.store import ReferenceStore
    from ..structures import CrossoverBulk, DenseBulk, sample_bulk, sample_crossover_bulk

    settings = periodic.PeriodicDFT(
        ke_cutoff_hartree=args.ke_cutoff_hartree,
        kpoint_length_angstrom=args.kpoint_length,
        kpoint_grid=args.kpoint_grid,
        gamma_above_rs_bohr=args.gamma_above_rs,
    )
    if args.protocol == "crossover":
        cells = sample_crossover_bulk(CrossoverBulk(n_atoms=args.n_atoms), args.count, args.seed)
    else:
        cells = sample_bulk(DenseBulk(n_atoms=args.n_atoms), args.count, args.seed)
    store = ReferenceStore(args.db)
    # cheapest k-point meshes first: an interrupted run then holds as many cells as it can
    order = sorted(cells, key=lambda a: math.prod(settings.kmesh(a.cell, len(a))))
    summary = periodic.run_periodic(order, store, settings, dataset=args.dataset, **_executor(args))
    print(
        f"{summary.done} done, {summary.failed} failed, {summary.skipped} already in "
        f"{args.db}, {summary.elsewhere} by another run, {summary.wall_time_s:.1f} s"
    )
    if args.out_dir is not None:
        import ase.io

        # every sampled cell (positions only), the input of `reference cell-fragments`
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        ase.io.write(Path(args.out_dir) / f"{args.dataset}_cells.xyz", cells, format="extxyz")
        records = periodic.periodic_records(store, cells, args.dataset, settings)
        meta = periodic.export_bulk(
            cells, records, args.dataset, args.out_dir, settings, split_seed=args.split_seed
        )
        _print_export(meta, "cells", args.db)


def _read_frames(path, index: str = ":"):
    """The frames ``index`` of ``path``; a missing file, an unreadable one or an empty
    selection is one line (:func:`~ase_bodyorder.io.read_structures`)."""
    from ..io import read_structures

    return read_structures(path, index)


def run_cell_fragments(args) -> None:
    import shlex

    from ..reference.executor import run_jobs
    from ..reference.fragments import parse_sizes
    from ..reference.isolated import IsolatedDFT, cell_fragment_jobs, export_cell_fragments
    from ..reference.store import ReferenceStore
    from ..structures import cell_fragments

    cells = _read_frames(args.cells)
    if not all(atoms.pbc.all() for atoms in cells):
        raise BodyOrderError(f"{args.cells}: cell-fragments cuts from periodic cells only")
    dataset = args.dataset or Path(args.cells).stem
    sizes = tuple(parse_sizes(args.sizes))
    fragments = cell_fragments(cells, sizes, args.per_cell, args.radius, args.seed)
    if not fragments:
        raise BodyOrderError(
            f"no fragment of sizes {args.sizes} in {args.cells}: no atom has enough "
            f"neighbours within {args.radius:g} Angstrom (nothing computed or written)"
        )
    calculation = IsolatedDFT()
    store = ReferenceStore(args.db)
    summary = run_jobs(
        cell_fragment_jobs(fragments, dataset, calculation),
        store,
        label=f"cell fragments {dataset}",
        **_executor(args),
    )
    command = shlex.join(
        ["ase-bodyorder", "reference", "cell-fragments", args.cells, "--sizes", args.sizes]
        + ["--per-cell", str(args.per_cell), "--radius", str(args.radius)]
        + ["--seed", str(args.seed), "--db", args.db, "-o", args.output]
    )
    meta = export_cell_fragments(
        store, fragments, dataset, calculation, args.output, command=command, cells_file=args.cells
    )
    print(
        f"{summary.done} done, {summary.failed} failed, {summary.skipped} already in "
        f"{args.db}, {summary.elsewhere} by another run, {summary.wall_time_s:.1f} s"
    )
    counts = ", ".join(f"{n} of size {size}" for size, n in meta["counts"].items())
    print(f"wrote {args.output}: {counts}; {len(meta['missing'])} missing")


def run_frames(args) -> None:
    import shlex

    from ..reference.executor import run_jobs
    from ..reference.frames import frame_jobs, frame_series, frame_totals, write_frame_totals
    from ..reference.isolated import IsolatedDFT
    from ..reference.store import ReferenceStore

    frames = _read_frames(args.trajectory, args.index)
    calculation = IsolatedDFT(forces=False)
    options = {
        "order": args.order,
        "r_mbe": args.r_mbe,
        "sample_atoms": args.sample_atoms,
        "seed": args.seed,
    }
    model = None
    if args.model is not None:  # before the ab initio jobs: a bad name fails at once
        from ..models.registry import load_model_spec

        _, model = load_model_spec(args.model)
    store = ReferenceStore(args.db)
    jobs = frame_jobs(frames, calculation, **options)
    summary = run_jobs(jobs, store, label="frame sub-clusters", **_executor(args))
    print(
        f"{len(jobs)} distinct sub-clusters: {summary.done} done, {summary.failed} failed, "
        f"{summary.skipped} already in {args.db}, {summary.wall_time_s:.1f} s"
    )
    totals = frame_totals(frames, store, calculation, **options)
    meta = {
        "trajectory": args.trajectory,
        "index": args.index,
        "calculation": {"method": calculation.method, **calculation.to_dict()},
        **options,
    }
    if args.totals is not None:
        command = shlex.join(
            ["ase-bodyorder", "reference", "frames", args.trajectory, "--index", args.index]
            + ["--order", str(args.order), "--r-mbe", f"{args.r_mbe:g}"]
            + ([] if args.sample_atoms is None else ["--sample-atoms", str(args.sample_atoms)])
            + ["--seed", str(args.seed), "--db", args.db, "--totals", args.totals]
        )
        write_frame_totals(args.totals, totals, {**meta, "command": command})
        print(f"wrote {args.totals} ({sum(map(len, totals))} sub-cluster totals)")
    out = {
        **meta,
        "model": None if args.model is None else args.model.partition("=")[0],
        "sharing": "reference and model_increment_share: each subset's many-body increment "
        "in equal parts to its members (docs/science.md section 10); *_equal_share: "
        "E(T)/|T| (leaks pair energy into E^(3) at finite r_mbe); model: the model's own "
        "atom energies (the monitor)",
        "units": "eV/atom: E^(n)/N (per_atom_mean_eV) with its atom-sampling standard "
        "error, and e_i^(n) of the expanded atoms (atom_terms_eV, one row per atom)",
        "frames": frame_series(frames, totals, model, **options),
    }
    Path(args.output).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.output} ({len(frames)} frames)")


def run_finite_size(args) -> None:
    import shlex

    from ..reference.finite_size import default_cells, kpoint_convergence, write_report
    from ..reference.periodic import PeriodicDFT

    words = ["ase-bodyorder", "reference", "finite-size", "--out-dir", args.out_dir]
    if args.hcells_policy:
        from dataclasses import replace

        from ..data.reference.regenerate import HCELLS, HCELLS_DFT
        from ..reference.finite_size import policy_cells
        from ..structures import sample_crossover_bulk

        protocol, count, seed = HCELLS
        cells = policy_cells(
            sample_crossover_bulk(protocol, count, seed), HCELLS_DFT, tuple(args.hcells_policy)
        )
        base = replace(HCELLS_DFT, gamma_above_rs_bohr=None)
        words += ["--hcells-policy", *(f"{rs:g}" for rs in args.hcells_policy)]
    else:
        cells = default_cells()
        base = PeriodicDFT(ke_cutoff_hartree=args.ke_cutoff_hartree)
        words += ["--ke-cutoff-hartree", f"{args.ke_cutoff_hartree:g}"]
    rows = kpoint_convergence(
        cells, base, progress=lambda line: print(line, file=sys.stderr, flush=True)
    )
    command = shlex.join(words)
    print(f"wrote {write_report(rows, args.out_dir, base, command)}")


def run_validation(args) -> None:
    import shlex

    from ..monitor.validation import write_validation_report

    cases = {}
    for item in args.cases:
        label, _, path = item.partition("=")
        if not path:
            raise BodyOrderError(f"case {item!r}: write LABEL=FILE.json")
        try:
            cases[label] = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise BodyOrderError(f"cannot read the frame expansions of {path}: {error}") from None
    command = shlex.join(
        ["ase-bodyorder", "reference", "validation", *args.cases, "--out-dir", args.out_dir]
    )
    print(f"wrote {write_validation_report(cases, args.out_dir, command)}")
