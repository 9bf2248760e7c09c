"""``ase-bodyorder``: thin parsers over importable functions."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from importlib import resources
from pathlib import Path

from .expansion import BodyOrderError

__all__ = ["EXAMPLE_CLUSTER", "main"]

EXAMPLE_CLUSTER = "h8_high_density.xyz"


def example_path(name: str = EXAMPLE_CLUSTER):
    """Path of a shipped example structure."""
    return resources.files("ase_bodyorder") / "data" / "examples" / name


def _set_threads(threads: int) -> None:
    if threads < 1:
        raise BodyOrderError(f"--threads must be a positive integer, got {threads}")
    import torch

    torch.set_num_threads(threads)


def _os_error_line(error: OSError) -> str:
    """``cannot open PATH: reason`` for a file or OS error (the path when it has one)."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.filename is not None:
        return f"{reason}: {error.filename}"
    return reason


def run_decompose(
    path,
    *,
    model: str,
    order: int | None,
    r_mbe: float | None,
    output=None,
    as_json: bool = False,
    index: str = ":",
    forces: bool = False,
    stream=None,
    max_memory_GiB: float | None = None,
    progress: bool = False,
    sample_atoms: int | None = None,
    seed: int | None = None,
) -> list:
    """Decompose every structure in ``path``; print tables (or JSON lines); return results.

    ``progress``: a progress bar with the time left (stderr) while sub-clusters are
    evaluated. The output file, if any, is checked before anything is computed.
    ``sample_atoms``: the atom-sampled expansion (m atoms per structure, estimates with
    standard errors); each structure draws its own sample, with a seed drawn from a
    generator seeded once with ``seed`` (reproducible; recorded in each result).
    """
    import ase.io
    import numpy as np

    from .calculator import store_body_order_results
    from .decompose import decompose
    from .models import load_model

    stream = sys.stdout if stream is None else stream
    if output is not None:
        _check_writable(Path(output))
    the_model = load_model(model)
    frames = read_structures(path, index)
    results = []
    if seed is not None and sample_atoms is None:
        raise BodyOrderError("--seed is the seed of atom sampling: give --sample-atoms too")
    if seed is not None and seed < 0:
        raise BodyOrderError(f"--seed must be a non-negative integer, got {seed}")
    seeds = np.random.default_rng(seed)
    for k, atoms in enumerate(frames):
        sampling = {}
        if sample_atoms is not None:
            sampling = {"sample_atoms": sample_atoms, "seed": int(seeds.integers(2**63))}
        max_order = len(atoms) if order is None and not atoms.pbc.any() else order
        if max_order is None:
            max_order = 3
        body = decompose(
            atoms,
            the_model,
            max_order=max_order,
            r_mbe=r_mbe,
            forces=forces,
            max_memory_GiB=max_memory_GiB,
            progress=f"structure {k + 1}/{len(frames)}" if progress else None,
            **sampling,
        )
        results.append(body)
        if as_json:
            print(json.dumps({"structure": k, **body.to_dict()}), file=stream)
        else:
            title = f"structure {k}: {atoms.get_chemical_formula()}, model {model}"
            print(body.table(title) + "\n", file=stream)
        if output is not None:
            store_body_order_results(atoms, body)
    if output is not None:
        try:
            ase.io.write(str(output), frames, format="extxyz")
        except OSError as error:
            raise BodyOrderError(f"cannot write {output}: {error.strerror or error}") from None
    return results


def read_structures(path, index: str = ":") -> list:
    """The frames ``index`` (ASE syntax, e.g. ``:``, ``0``, ``-1``, ``::2``) of a structure
    file as a list; unreadable, empty or missing files give a one-line error naming it."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise BodyOrderError(f"structure file {path} {what}")
    if path.stat().st_size == 0:
        raise BodyOrderError(f"structure file {path} is empty")
    try:
        frames = ase.io.read(str(path), index=index)
    except Exception as error:  # ASE raises many kinds for a file it cannot parse
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BodyOrderError(f"cannot read structures from {path}: {detail}") from None
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise BodyOrderError(f"no structures in {path} at index {index!r}")
    return frames


def _check_writable(path: Path) -> None:
    """One-line error unless ``path`` can be written (before any work is done)."""
    if path.is_dir():
        raise BodyOrderError(f"output {path} is a directory, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BodyOrderError(f"output directory {parent} does not exist")
    import os

    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BodyOrderError(f"output {path} is not writable")


def _build_parser() -> argparse.ArgumentParser:
    from .models import DEFAULT_MD_MODEL, DEFAULT_MODEL

    parser = argparse.ArgumentParser(
        prog="ase-bodyorder",
        description="Many-body (body-order) decomposition of interatomic potentials.",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; see README)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    dec = sub.add_parser("decompose", help="body-order table of every structure in a file")
    dec.add_argument("file", help="any structure file ASE reads (extxyz, xyz, traj, ...)")
    dec.add_argument("--model", default=DEFAULT_MODEL, help=f"model name (default {DEFAULT_MODEL})")
    dec.add_argument(
        "--order",
        type=int,
        default=None,
        help="truncation order K (default: N for clusters, 3 for periodic cells)",
    )
    dec.add_argument("--r-mbe", type=float, default=None, help="expansion radius, Angstrom")
    dec.add_argument("--index", default=":", help="frames to read (ASE index syntax)")
    dec.add_argument("--forces", action="store_true", help="also compute forces per order")
    dec.add_argument("--output", help="write extxyz with the results in info/arrays")
    dec.add_argument("--json", action="store_true", help="print one JSON line per structure")
    dec.add_argument(
        "--max-memory-gib",
        type=float,
        default=None,
        help="refuse plans estimated to need more memory (default: half the available)",
    )
    dec.add_argument(
        "--sample-atoms",
        type=int,
        default=None,
        metavar="M",
        help="atom-sampled expansion: expand M random atoms per structure and report "
        "estimates of E^(n)/N with standard errors (no forces)",
    )
    dec.add_argument(
        "--seed", type=int, default=None, help="seed of the atom sampling (with --sample-atoms)"
    )

    demo = sub.add_parser(
        "demo",
        help="the main job: body orders of the shipped H8 cluster, then a short monitored "
        "i-PI run of high-density hydrogen, ending with the report",
    )
    demo.add_argument("--model", default=DEFAULT_MODEL)
    demo.add_argument(
        "--md-model",
        default=DEFAULT_MD_MODEL,
        help=f"model of the MD part (default {DEFAULT_MD_MODEL}: a SOAP-BPNN trained on "
        "periodic cells; the H8 models are trained on isolated clusters and do not describe "
        "bulk hydrogen)",
    )
    demo.add_argument("--steps", type=int, default=20, help="MD steps (default 20)")
    demo.add_argument("--stride", type=int, default=5, help="expand every S steps")
    demo.add_argument("--output-dir", default=None, help="run directory (default md_runs/...)")
    demo.add_argument("--timeout", type=float, default=1200.0, help="MD time limit, s")

    sub.add_parser("models", help="list the models that can be loaded by name")
    _add_reference_parser(sub)
    _add_train_parser(sub)
    _add_ipi_parsers(sub, DEFAULT_MD_MODEL)
    _add_report_parsers(sub)
    _add_study_parser(sub)
    return parser


def _add_study_parser(sub):
    from .study import ARCHITECTURES, DENSITIES

    study = sub.add_parser("study", help="training studies: learning curves and their report")
    steps = study.add_subparsers(dest="step", required=True)
    curves = steps.add_parser(
        "learning-curves",
        help="train every architecture/density/size/seed (resumable, cached by content)",
    )
    curves.add_argument("--architectures", nargs="+", default=list(ARCHITECTURES))
    curves.add_argument("--densities", nargs="+", default=list(DENSITIES))
    curves.add_argument("--sizes", nargs="+", default=["50", "100", "200", "400", "800"])
    curves.add_argument(
        "--seeds", nargs="+", default=["0", "1", "2"], help="seeds (all at the largest size)"
    )
    curves.add_argument(
        "--settings",
        default=None,
        help="JSON file of setting overrides applied to every architecture's recipe",
    )
    curves.add_argument(
        "--cache", default="study-cache", help="trained models (default %(default)s)"
    )
    curves.add_argument("--timeout", type=float, default=None, help="per training, s")
    ship = steps.add_parser(
        "ship",
        help="ship the models of size --size (default 800) and seed --seed (default 0) of a study, "
        "trained with the recipe's settings, as <arch>-h8-<density>",
    )
    ship.add_argument("--architectures", nargs="+", required=True)
    ship.add_argument("--densities", nargs="+", default=list(DENSITIES))
    ship.add_argument("--size", type=int, default=800)
    ship.add_argument("--seed", type=int, default=0)
    ship.add_argument("--cache", default="study-cache", help="trained models (default %(default)s)")
    report = steps.add_parser(
        "report", help="learning and training curves of a study cache: markdown, PNG, JSON"
    )
    report.add_argument(
        "--cache", default="study-cache", help="trained models (default %(default)s)"
    )
    report.add_argument(
        "--out", default="reports/study", help="output directory (default %(default)s)"
    )


def run_study_command(args) -> None:
    from .study import learning_curve_specs, run_study

    if args.step == "ship":
        from .study import TrainingSpec
        from .study.ship import ship_entry

        for architecture in args.architectures:
            for density in args.densities:
                spec = TrainingSpec(architecture, density, args.size, args.seed)
                path = ship_entry(args.cache, spec.key, f"{architecture}-h8-{density}")
                print(f"shipped {spec.key} as {path}")
        return
    if args.step == "report":
        from .study.report import write_study_report

        command = f"ase-bodyorder study report --cache {args.cache} --out {args.out}"
        for path in write_study_report(args.cache, args.out, command=command):
            print(f"wrote {path}")
        return

    overrides = {}
    if args.settings is not None:
        overrides = _read_json_object(args.settings, "settings")
    specs = learning_curve_specs(
        args.architectures, args.densities, args.sizes, args.seeds, overrides
    )
    entries = run_study(specs, args.cache, timeout=args.timeout)
    failed = [e for e in entries if e.status == "failed"]
    busy = [e for e in entries if e.status == "busy"]
    print(
        f"{len(entries) - len(failed) - len(busy)} of {len(entries)} model(s) trained; "
        f"{len(busy)} busy in another process, {len(failed)} failed"
    )
    for entry in failed:
        print(f"failed: {entry.spec.key}: {entry.error}")
    if failed:
        raise BodyOrderError(f"{len(failed)} training(s) failed")


def _read_json_object(path, what: str) -> dict:
    """A JSON object from a file, or a one-line error naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BodyOrderError(f"{what} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BodyOrderError(f"cannot read {what} file {path}: {error}") from None
    if not isinstance(data, dict):
        raise BodyOrderError(f"{what} file {path} must hold a JSON object")
    return data


SHIPPED_MODELS = [
    f"{arch}-h8-{density}" for density in ("high", "low") for arch in ("pet", "soap-bpnn", "mace")
]
#: the periodic MD model: in the accuracy table (its own LDA test cells), not in the
#: body-order table (whose reference is the FCI MBE of H8 clusters)
MD_MODELS = ["soap-bpnn-hbulk-high"]


def _add_report_parsers(sub):
    rep = sub.add_parser(
        "report",
        help="`report accuracy`, `report bodyorder` (shipped models) or `report RUN_DIR` "
        "(an MD run or a BodyOrderLogger file)",
    )
    rep.add_argument("target", help="accuracy, bodyorder, or a run directory / log file")
    rep.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="models to report (default: the six H8 models, and for `accuracy` also the "
        "periodic MD model)",
    )
    rep.add_argument("--output", help="also write the table (markdown) to this file")
    rep.add_argument("--plots", help="directory for PNG plots (run reports; default RUN_DIR)")
    watch = sub.add_parser(
        "watch",
        help="follow an i-PI run (or a BodyOrderLogger file) and flag frames outside the "
        "ranges of the watched quantity",
    )
    watch.add_argument("run_dir", help="run directory of `md`, or a BodyOrderLogger .jsonl file")
    watch.add_argument(
        "--ranges",
        help='JSON file {"2": [min, max], "3": [min, max], ...} of the --quantity (shares, '
        "or eV/atom; default: the ranges on the run model's training structures, at most "
        "200 evenly spaced, at the run's order and r_mbe, written to "
        "RUN_DIR/training_ranges_<quantity>.json)",
    )
    watch.add_argument(
        "--quantity",
        choices=["shares", "per-atom"],
        default="shares",
        help="compare shares E^(n)/(E-E^(1)) (default) or energies per atom E^(n)/N (eV)",
    )
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    watch.add_argument("--timeout", type=float, default=3600.0, help="give up after (s)")
    watch.add_argument(
        "--idle",
        type=float,
        default=60.0,
        help="stop when no new frame came for this long (s; a run of `md` that is no "
        "longer running stops the watch at once)",
    )


def run_report(args) -> None:
    """`report`: model tables, or statistics and plots of a run."""
    from pathlib import Path

    if args.target in ("accuracy", "bodyorder"):
        from .training import reports

        make = reports.accuracy_table if args.target == "accuracy" else reports.bodyorder_table
        models = args.models or (
            SHIPPED_MODELS + MD_MODELS if args.target == "accuracy" else SHIPPED_MODELS
        )
        table = make(models)
        command = "ase-bodyorder report " + args.target + " --models " + " ".join(models)
        text = f"{table}\n\nMade by `{command}`.\n"
    else:
        from .monitor import load_trace, report_text, write_plots
        from .monitor.report import run_manifest, status_line

        trace = load_trace(args.target)
        text = report_text(trace) + "\n"
        try:
            run = run_manifest(args.target)
        except BodyOrderError as error:  # the frames are still worth reporting
            text += f"warning: {error}\n"
        else:
            if run is not None:
                text += status_line(run) + "\n"
        target = Path(args.target)
        plots = Path(args.plots) if args.plots else (target if target.is_dir() else target.parent)
        for path in write_plots(trace, plots):
            text += f"wrote {path}\n"
    print(text, end="")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)


def _read_ranges(path) -> dict:
    """Ranges ``{order: (low, high)}`` from a JSON file ``{"2": [low, high], ...}``."""
    ranges = {}
    for key, value in _read_json_object(path, "ranges").items():
        try:
            order, (low, high) = int(key), (float(v) for v in value)
            valid = isinstance(value, list) and order >= 1 and low <= high
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise BodyOrderError(
                f"ranges file {path}: {key!r}: {value!r} is not order: [low, high] "
                "(an order >= 1, low <= high)"
            )
        ranges[order] = (low, high)
    return ranges


def _training_ranges(run_dir, quantity: str) -> dict:
    """Ranges of the run's model on its training data (cached in the run directory)."""
    from .expansion import BodyOrderError
    from .ipi.runner import MDRun
    from .monitor import training_share_ranges

    if not run_dir.is_dir():
        raise BodyOrderError(
            f"{run_dir} is not a run directory of `md`: pass --ranges FILE, the ranges to "
            "check its frames against"
        )
    cache = run_dir / f"training_ranges_{quantity}.json"
    if cache.is_file():
        return _read_ranges(cache)
    try:
        driver = MDRun.load(run_dir).driver
    except FileNotFoundError as error:
        raise BodyOrderError(f"{error}; pass --ranges for runs not made by `md`") from None
    print(
        f"{quantity} of {driver.model} on its training structures (order "
        f"{driver.order}, r_mbe {driver.r_mbe} A) ...",
        flush=True,
    )
    ranges = training_share_ranges(
        driver.model, order=driver.order, r_mbe=driver.r_mbe, quantity=quantity
    )
    cache.write_text(json.dumps({str(k): list(v) for k, v in ranges.items()}, indent=1) + "\n")
    for n, (low, high) in ranges.items():
        print(f"  order {n}: {low:+.4f} .. {high:+.4f}")
    return ranges


def run_watch(args) -> None:
    """`watch`: check the frames of a run (or a logger file) against ranges; say how many
    were checked and flagged. A missing or empty run is an error."""
    from .monitor import watch
    from .monitor.report import check_source, status_line

    source = check_source(args.run_dir)
    quantity = "shares" if args.quantity == "shares" else "energies_per_atom"
    if args.ranges:
        ranges = _read_ranges(args.ranges)
    else:
        ranges = _training_ranges(source, quantity)
    result = watch(
        source,
        ranges,
        interval_s=args.interval,
        timeout_s=args.timeout,
        idle_s=args.idle,
        quantity=quantity,
    )
    print(result.summary())
    if result.run is not None:
        print(status_line(result.run))


def _add_ipi_parsers(sub, default_model: str):
    drv = sub.add_parser("driver", help="i-PI driver with body-order extras (socket client)")
    drv.add_argument("--address", required=True, help="UNIX socket name, or host name")
    drv.add_argument("--unix", action="store_true", help="UNIX socket (default: TCP)")
    drv.add_argument("--port", type=int, default=None, help="TCP port")
    drv.add_argument("--sockets-prefix", default=None, help="UNIX socket path prefix")
    drv.add_argument("--model", default=default_model, help=f"model (default {default_model})")
    drv.add_argument("--order", type=int, default=3, help="truncation order K (default 3)")
    drv.add_argument("--stride", type=int, default=1, help="expand every S-th step (default 1)")
    drv.add_argument("--r-mbe", type=float, default=None, help="expansion radius, Angstrom")
    drv.add_argument("--template", required=True, help="structure file giving the species")
    drv.add_argument("--first-call", type=int, default=0, help="first value of the step counter")
    drv.add_argument(
        "--sample-atoms", type=int, default=None, help="expand M random atoms per structure"
    )
    drv.add_argument("--sample-seed", type=int, default=None, help="seed of the atom draws")
    drv.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up after this many silent seconds (default: the client's 600 s)",
    )

    md = sub.add_parser("md", help="run an i-PI case of md_inputs/ with body-order drivers")
    md.add_argument("case", nargs="?", help="case directory holding input.xml")
    md.add_argument("--restart", metavar="RUN_DIR", help="continue a run from its RESTART")
    md.add_argument(
        "--model", default=None, help=f"model (default: the case's, else {default_model})"
    )
    md.add_argument("--steps", type=int, default=None, help="MD steps (default: the case's)")
    md.add_argument(
        "--order", type=int, default=None, help="truncation order K (default: the case's, else 3)"
    )
    md.add_argument(
        "--stride",
        type=int,
        default=None,
        help="expand every S-th step (default: the case's, else 1)",
    )
    md.add_argument("--r-mbe", type=float, default=None, help="expansion radius, Angstrom")
    md.add_argument(
        "--sample-atoms",
        type=int,
        default=None,
        help="expand M random atoms per expanded step: E^(n)/N estimated with its error",
    )
    md.add_argument("--sample-seed", type=int, default=0, help="seed of the atom draws (default 0)")
    md.add_argument("--output-dir", default=None, help="new run directory")
    md.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit, s")
    md.add_argument("--drivers", type=int, default=1, help="driver processes (default 1)")
    md.add_argument("--quiet", action="store_true", help="no progress line")


def _add_calculation_options(parser):
    parser.add_argument("--method", default="fci", help="hf, ccsd, ccsd(t), fci, dmrg")
    parser.add_argument("--basis", default="sto-6g", help="any pyscf basis name")
    parser.add_argument("--spin-policy", default="lowest", choices=["lowest", "ground"])
    parser.add_argument("--dataset", default=None, help="data set name (default: file stem)")
    parser.add_argument("--db", required=True, help="ASE database (SQLite) of the jobs")


def _add_executor_options(parser):
    parser.add_argument("--workers", type=int, default=1, help="local processes")
    parser.add_argument("--scheduler", default=None, help="dask.distributed scheduler address")
    parser.add_argument("--retry-failed", action="store_true", help="run failed jobs again")


def _add_reference_parser(sub):
    ref = sub.add_parser("reference", help="hydrogen-cluster reference data (pyscf, block2)")
    steps = ref.add_subparsers(dest="step", required=True)
    sample = steps.add_parser("sample", help="sample hydrogen clusters to an extxyz file")
    sample.add_argument("--density", choices=["high", "low"], required=True)
    sample.add_argument("--n-atoms", type=int, default=8)
    sample.add_argument("--count", type=int, required=True)
    sample.add_argument("--seed", type=int, required=True)
    sample.add_argument("--rs-bohr", type=float, default=None, help="Wigner-Seitz radius, bohr")
    sample.add_argument("-o", "--output", required=True)
    compute = steps.add_parser("compute", help="energies and forces of every cluster")
    compute.add_argument("clusters", help="extxyz from `reference sample`")
    _add_calculation_options(compute)
    compute.add_argument("--no-forces", action="store_true")
    _add_executor_options(compute)
    mbe = steps.add_parser("mbe", help="ab initio many-body expansion of clusters")
    mbe.add_argument("clusters")
    _add_calculation_options(mbe)
    mbe.add_argument("--index", default=":", help="clusters to expand (ASE index syntax)")
    mbe.add_argument("-o", "--output", required=True, help="JSON file of the per-order terms")
    _add_executor_options(mbe)
    export = steps.add_parser("export", help="extxyz train/validation/test split for training")
    export.add_argument("clusters")
    _add_calculation_options(export)
    export.add_argument("--out-dir", required=True)
    export.add_argument("--split-seed", type=int, default=0)


def run_reference(args) -> None:
    """The `reference` subcommands (thin wrappers over ase_bodyorder.reference)."""
    from pathlib import Path

    import ase.io

    if args.step == "sample":
        from .reference import HighDensity, LowDensity, sample_clusters

        kind = HighDensity if args.density == "high" else LowDensity
        options = {"n_atoms": args.n_atoms}
        if args.rs_bohr is not None:
            options["rs_bohr"] = args.rs_bohr
        clusters = sample_clusters(kind(**options), args.count, args.seed)
        ase.io.write(args.output, clusters, format="extxyz")
        print(f"wrote {len(clusters)} clusters to {args.output}")
        return

    from .reference.electronic import Calculation
    from .reference.executor import run_jobs
    from .reference.pipeline import cluster_jobs, export_dataset, mbe_jobs, reference_mbe
    from .reference.store import ReferenceStore

    calc = Calculation(
        method=args.method,
        basis=args.basis,
        spin_policy=args.spin_policy,
        forces=not getattr(args, "no_forces", False),
    )
    dataset = args.dataset or Path(args.clusters).stem
    index = getattr(args, "index", ":")
    try:
        clusters = ase.io.read(args.clusters, index)
    except (ValueError, IndexError) as error:
        raise BodyOrderError(f"cannot read clusters {index} of {args.clusters}: {error}") from None
    if not isinstance(clusters, list):  # a single index such as --index 0
        clusters = [clusters]
    store = ReferenceStore(args.db)
    executor = {
        "workers": getattr(args, "workers", 1),
        "scheduler": getattr(args, "scheduler", None),
        "retry_failed": getattr(args, "retry_failed", False),
    }
    if args.step == "compute":
        summary = run_jobs(cluster_jobs(clusters, dataset, calc), store, label=dataset, **executor)
        print(
            f"{summary.done} done, {summary.failed} failed, {summary.skipped} already in "
            f"{args.db}, {summary.elsewhere} by another run, {summary.wall_time_s:.1f} s"
        )
    elif args.step == "mbe":
        summary = run_jobs(mbe_jobs(clusters, dataset, calc), store, label=dataset, **executor)
        results = [reference_mbe(store, atoms, dataset, calc) for atoms in clusters]
        Path(args.output).write_text(
            json.dumps({"dataset": dataset, "calculation": calc.to_dict(), "clusters": results})
            + "\n"
        )
        for result in results:
            terms = " ".join(f"{e:+.5f}" for e in result["energies_eV"])
            print(f"cluster {result['cluster']}: E^(n) / eV = {terms}")
        print(f"{summary.done} sub-clusters computed, {summary.failed} failed; wrote {args.output}")
    elif args.step == "export":
        meta = export_dataset(
            store, clusters, dataset, calc, args.out_dir, split_seed=args.split_seed
        )
        for part, info in meta["files"].items():
            print(f"{part}: {info['count']} structures in {info['file']}")


#: ``--architecture`` choices: the recipe and its name for the architecture
TRAIN_ARCHITECTURES = {"pet": "pet", "soap-bpnn": "soap_bpnn", "mace": "mace"}


def _add_train_parser(sub):
    train = sub.add_parser(
        "train",
        help="train a model (PET, SOAP-BPNN or MACE) on extxyz files with the recipes of "
        "ase_bodyorder.training; writes the model and provenance.json",
    )
    train.add_argument(
        "--architecture",
        required=True,
        choices=list(TRAIN_ARCHITECTURES),
        help="pet, soap-bpnn (metatrain) or mace (mace-torch)",
    )
    train.add_argument(
        "--data", required=True, help="training set: extxyz with energy (eV) and forces"
    )
    train.add_argument(
        "--validation", default=None, help="validation set (default: part of --data)"
    )
    train.add_argument("--test", default=None, help="test set (default: none)")
    train.add_argument(
        "--settings",
        default=None,
        help="JSON file of MetatrainSettings (pet, soap-bpnn) or MACESettings (mace) fields; "
        "unknown keys are an error",
    )
    train.add_argument(
        "--epochs", type=int, default=None, help="number of epochs (overrides --settings)"
    )
    train.add_argument(
        "--output", default=None, help="output directory (default training-work/ARCHITECTURE)"
    )
    train.add_argument("--timeout", type=float, default=None, help="training time limit, s")


def _train_settings(architecture: str, settings_file=None, epochs: int | None = None):
    """The recipe's settings for ``--architecture``, ``--settings`` and ``--epochs``.

    A settings file may name its architecture (``"architecture"``, also in a MACE
    file); it must then be the one asked for.
    """
    from pathlib import Path

    from .expansion import BodyOrderError
    from .training import MACESettings, MetatrainSettings

    if architecture not in TRAIN_ARCHITECTURES:
        raise BodyOrderError(
            f"architecture must be one of {', '.join(TRAIN_ARCHITECTURES)}, got {architecture!r}"
        )
    name = TRAIN_ARCHITECTURES[architecture]
    data: dict = {}
    if settings_file is not None:
        path = Path(settings_file)
        if not path.is_file():
            raise BodyOrderError(f"settings file {path} does not exist")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BodyOrderError(f"settings file {path} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise BodyOrderError(f"settings file {path} must hold a JSON object")
        if "architecture" in data:
            named = data["architecture"]
            if TRAIN_ARCHITECTURES.get(named, named) != name:
                raise BodyOrderError(
                    f"settings file {path} is for architecture {named!r}, "
                    f"but --architecture is {architecture!r}"
                )
            data = {**data, "architecture": name}
    if name == "mace":
        data.pop("architecture", None)
        if epochs is not None:
            data["max_num_epochs"] = epochs
        return MACESettings.from_dict(data)
    data = {**data, "architecture": name}
    if epochs is not None:
        data["num_epochs"] = epochs
    return MetatrainSettings.from_dict(data)


def _metric_lines(metrics) -> list[str]:
    """Test-set metrics of a provenance record (metatrain or MACE format), one per line."""
    if isinstance(metrics, dict):  # metatrain: {metric: {"value", "unit"}}
        return [f"{key}: {item['value']:g} {item['unit']}" for key, item in metrics.items()]
    lines = []  # MACE: error-table rows
    for row in metrics:
        cells = [f"{key} = {value:g}" for key, value in row.items() if not isinstance(value, str)]
        label = row.get("config_type", "")
        lines.append(f"{label}: {', '.join(cells)}" if label else ", ".join(cells))
    return lines


def run_train(
    architecture: str,
    data,
    *,
    validation=None,
    test=None,
    settings=None,
    epochs: int | None = None,
    output=None,
    timeout_s: float | None = None,
    stream=None,
):
    """Train ``architecture`` (pet, soap-bpnn, mace) with the ase_bodyorder.training recipe;
    print the model, its provenance and the test metrics; return the model path."""
    from pathlib import Path

    from .expansion import BodyOrderError

    stream = sys.stdout if stream is None else stream
    the_settings = _train_settings(architecture, settings, epochs)
    for role, source in (("training", data), ("validation", validation), ("test", test)):
        if source is not None and not Path(source).is_file():
            raise BodyOrderError(f"{role} data file {source} does not exist")
    output = Path(output) if output is not None else Path("training-work") / architecture
    if TRAIN_ARCHITECTURES[architecture] == "mace":
        from .training import train_mace as recipe
    else:
        from .training import train_metatrain as recipe
    print(f"training {architecture} in {output} (log and options there)", file=stream, flush=True)
    model = recipe(
        data, validation, test, the_settings, output, timeout=timeout_s, progress=sys.stderr
    )
    provenance_path = model.parent / "provenance.json"
    provenance = json.loads(provenance_path.read_text())
    print(f"model: {model}", file=stream)
    print(f"provenance: {provenance_path}", file=stream)
    metrics = provenance.get("metrics", {})
    found = metrics.get("test", metrics.get("TEST"))
    if test is None:
        print("test metrics: none (no --test set)", file=stream)
    elif not found:
        print("test metrics: not found in the training log", file=stream)
    else:
        print("test metrics:", file=stream)
        for line in _metric_lines(found):
            print(f"  {line}", file=stream)
    return model


def run_driver_command(args) -> None:
    """The `driver` subcommand (a thin wrapper over ase_bodyorder.ipi.client.run_driver)."""
    from .ipi import client

    options = {}
    if args.port is not None:
        options["port"] = args.port
    if args.sockets_prefix is not None:
        options["sockets_prefix"] = args.sockets_prefix
    if args.timeout is not None:
        options["timeout_s"] = args.timeout
    client.run_driver(
        args.address,
        unix=args.unix,
        model=args.model,
        order=args.order,
        stride=args.stride,
        r_mbe=args.r_mbe,
        template=args.template,
        threads=args.threads,
        first_call=args.first_call,
        sample_atoms=args.sample_atoms,
        sample_seed=args.sample_seed,
        log=sys.stderr,
        **options,
    )


def run_md_command(args) -> None:
    """The `md` subcommand (a thin wrapper over ase_bodyorder.ipi.runner)."""
    from .expansion import BodyOrderError
    from .ipi.runner import restart_md, run_md

    common = {
        "output_dir": args.output_dir,
        "timeout_s": args.timeout,
        "n_drivers": args.drivers,
        "progress": not args.quiet,
    }
    if args.restart is not None:
        if args.case is not None or args.steps is None:
            raise BodyOrderError("--restart RUN_DIR takes no case, and needs --steps")
        run = restart_md(args.restart, steps=args.steps, **common)
    elif args.case is None:
        raise BodyOrderError("give a case directory (e.g. md_inputs/nvt) or --restart RUN_DIR")
    else:
        run = run_md(
            args.case,
            model=args.model,
            steps=args.steps,
            order=args.order,
            stride=args.stride,
            r_mbe=args.r_mbe,
            sample_atoms=args.sample_atoms,
            sample_seed=args.sample_seed,
            threads=args.threads,
            **common,
        )
    print(f"{run.status}: steps {run.first_step}-{run.last_step} in {run.wall_time_s:.1f} s")
    print(f"run directory: {run.run_dir} (files listed in run.json)")


def run_demo(
    model: str,
    *,
    md_model: str,
    steps: int,
    stride: int,
    output_dir=None,
    timeout_s: float = 1200.0,
) -> None:
    """The main job: the full expansion of the shipped H8 cluster with ``model``, then a
    short i-PI NVT run of 64-atom high-density hydrogen with ``md_model`` (the case written
    afresh from ``ase_bodyorder.ipi.cases``) monitored every ``stride`` steps, ending with
    the report and plots."""
    import tempfile
    from pathlib import Path

    from .ipi.cases import CASES, write_case
    from .ipi.runner import run_md
    from .monitor import load_trace, report_text, write_plots

    path = example_path()
    print(f"1. Full many-body expansion of {path.name} with model {model!r}\n")
    run_decompose(path, model=model, order=None, r_mbe=None)
    print(
        f"2. i-PI NVT of high-density hydrogen with {md_model!r} ({steps} steps, body "
        f"orders every {stride})\n"
    )
    with tempfile.TemporaryDirectory() as scratch:
        case = write_case(CASES["nvt"], Path(scratch) / "nvt")
        run = run_md(
            case,
            model=md_model,
            steps=steps,
            stride=stride,
            output_dir=output_dir,
            timeout_s=timeout_s,
        )
    print(f"\n3. Report of {run.run_dir}\n")
    trace = load_trace(run.run_dir)
    print(report_text(trace))
    for plot in write_plots(trace, run.run_dir):
        print(f"wrote {plot}")


def main(argv=None) -> int:
    from .expansion import BodyOrderError

    args = _build_parser().parse_args(argv)
    try:
        _set_threads(args.threads)
        if args.command == "decompose":
            run_decompose(
                args.file,
                model=args.model,
                order=args.order,
                r_mbe=args.r_mbe,
                output=args.output,
                as_json=args.json,
                index=args.index,
                forces=args.forces,
                max_memory_GiB=args.max_memory_gib,
                progress=not args.json,
                sample_atoms=args.sample_atoms,
                seed=args.seed,
            )
        elif args.command == "demo":
            run_demo(
                args.model,
                md_model=args.md_model,
                steps=args.steps,
                stride=args.stride,
                output_dir=args.output_dir,
                timeout_s=args.timeout,
            )
        elif args.command == "reference":
            run_reference(args)
        elif args.command == "train":
            run_train(
                args.architecture,
                args.data,
                validation=args.validation,
                test=args.test,
                settings=args.settings,
                epochs=args.epochs,
                output=args.output,
                timeout_s=args.timeout,
            )
        elif args.command == "driver":
            run_driver_command(args)
        elif args.command == "md":
            run_md_command(args)
        elif args.command == "report":
            run_report(args)
        elif args.command == "watch":
            run_watch(args)
        elif args.command == "study":
            run_study_command(args)
        elif args.command == "models":
            from .models import available_models

            for name, description in available_models().items():
                print(f"{name:16s} {description}")
    except (BodyOrderError, ImportError) as error:
        print(f"ase-bodyorder: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # files, directories, permissions, sockets: one line
        print(f"ase-bodyorder: error: {_os_error_line(error)}", file=sys.stderr)
        return 2
    except (json.JSONDecodeError, sqlite3.DatabaseError) as error:
        print(f"ase-bodyorder: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    except _runtime_errors(args.command) as error:
        print(f"ase-bodyorder: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ase-bodyorder: interrupted", file=sys.stderr)
        return 130
    return 0


def _runtime_errors(command: str) -> tuple:
    """Failures of a running simulation, reported as one line (exit status 2)."""
    if command == "driver":
        from .ipi.client import ProtocolError, ServerGoneError

        return (ServerGoneError, ProtocolError)
    if command == "md":
        from .ipi.runner import MDRunError

        return (MDRunError,)
    return ()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
